//! The relay's chain gateway against a real regtest bitcoind: relay-info names the chain; the
//! faucet mines to a fresh wallet; the wallet reads its outputs through `/esplora` with the same
//! checks it applies to any Esplora server (each listed output checked against its
//! transaction, fetched and hashed), builds and signs a send, broadcasts it through the
//! gateway, sees it in the mempool overlay (the recipient's output unconfirmed, the spent
//! output gone) and confirmed after a block. Bad input gets a 400 and a counter.

use std::time::Duration;

use anyhow::{Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, TxOut};
use darkswap_proto::RelayInfo;
use darkswap_tests::regtest::Bitcoind;
use darkswap_tests::{http_get, http_request, Ports, Relay};
use darkswap_wallet::esplora::{
    check_listed, parse_broadcast, parse_tip_height, parse_tx_hex, parse_utxos, tx_hex_path,
    utxo_path,
};
use darkswap_wallet::{
    send_btc, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, Utxo,
    WordCount,
};

fn wallet() -> Keychain {
    Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest).unwrap()
}

fn get_ok(url: &str) -> Result<String> {
    let (status, body) = http_get(url)?;
    anyhow::ensure!(status == 200, "GET {url}: {status} {body}");
    Ok(body)
}

/// The wallet's view of `path` through the gateway, every output checked.
fn utxos(relay: &Relay, keys: &Keychain, path: KeyPath, tip: u32) -> Result<Vec<Utxo>> {
    let d = keys.derive(path)?;
    let listed = parse_utxos(
        get_ok(&format!("{}/esplora{}", relay.http, utxo_path(&d.address)))?.as_bytes(),
    )?;
    let mut out = Vec::new();
    for l in listed {
        let tx = parse_tx_hex(
            get_ok(&format!(
                "{}/esplora{}",
                relay.http,
                tx_hex_path(&l.outpoint.txid)
            ))?
            .as_bytes(),
            l.outpoint.txid,
        )?;
        check_listed(&l, &tx, &d.address)?;
        let confirmations = l.height.map(|h| tip + 1 - h).unwrap_or(0);
        // Coinbase outputs are spendable at 100 confirmations.
        if tx.is_coinbase() && confirmations < 100 {
            continue;
        }
        out.push(Utxo {
            outpoint: l.outpoint,
            txout: TxOut {
                value: l.value,
                script_pubkey: d.script_pubkey.clone(),
            },
            path,
            confirmations,
            // No indexer here; nothing but this test paid these addresses.
            assets: Assets::none(),
        });
    }
    Ok(out)
}

#[test]
fn the_wallet_reads_and_broadcasts_through_the_relay_gateway() -> Result<()> {
    let node = Bitcoind::start()?;
    let dir = tempfile::tempdir()?;
    let flags = node.relay_flags(&dir.path().join("rpc.password"), None, true)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &flags)?;
    let info = RelayInfo::parse(get_ok(&format!("{}/api/relay-info", relay.http))?.as_bytes())?;
    let chain = info.chain.context("relay-info names a chain")?;
    assert_eq!(chain.network, "regtest");
    assert_eq!(chain.esplora.as_deref(), Some("/esplora"));
    assert!(chain.faucet);

    let (alice, bob) = (wallet(), wallet());
    let alice_pay = alice.derive(KeyPath::receive(Account::Payment, 0))?;
    let (status, body) = http_request(
        "POST",
        &format!("{}/api/faucet", relay.http),
        &[("Content-Type", "application/json")],
        format!(r#"{{"address":"{}"}}"#, alice_pay.address).as_bytes(),
    )?;
    assert_eq!(status, 200, "{body}");
    let tip =
        parse_tip_height(get_ok(&format!("{}/esplora/blocks/tip/height", relay.http))?.as_bytes())?;
    assert_eq!(tip, 101);

    let have = utxos(&relay, &alice, KeyPath::receive(Account::Payment, 0), tip)?;
    assert_eq!(
        have.len(),
        2,
        "the coinbases at heights 1 and 2 are mature at tip 101"
    );
    let to = bob.derive(KeyPath::receive(Account::Payment, 0))?;
    let change = alice.derive(KeyPath::change(Account::Payment, 0))?;
    let unsigned = send_btc(
        &have,
        &Locks::<u8>::new(4),
        &to.address,
        Amount::from_btc(60.0)?,
        FeeRate::sat_per_vb(2)?,
        &change,
    )?;
    let tx = sign(&alice, &unsigned)?;
    let (status, body) = http_request(
        "POST",
        &format!("{}/esplora/tx", relay.http),
        &[],
        serialize_hex(&tx).as_bytes(),
    )?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(parse_broadcast(body.as_bytes(), &tx)?, tx.compute_txid());

    // The mempool overlay: bob's output unconfirmed, alice's spent outputs gone.
    let bobs = parse_utxos(
        get_ok(&format!("{}/esplora{}", relay.http, utxo_path(&to.address)))?.as_bytes(),
    )?;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].height, None);
    assert_eq!(bobs[0].value, Amount::from_btc(60.0)?);
    let alices = parse_utxos(
        get_ok(&format!(
            "{}/esplora{}",
            relay.http,
            utxo_path(&alice_pay.address)
        ))?
        .as_bytes(),
    )?;
    assert!(alices
        .iter()
        .all(|l| unsigned.inputs.iter().all(|i| i.outpoint != l.outpoint)));
    assert_eq!(alices.len(), 101 - unsigned.inputs.len());

    node.mine_to(
        1,
        &wallet()
            .derive(KeyPath::receive(Account::Payment, 0))?
            .address
            .to_string(),
    )?;
    let bobs = utxos(&relay, &bob, KeyPath::receive(Account::Payment, 0), tip + 1)?;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].confirmations, 1);

    // Bad input: refused with a reason, and counted.
    let mainnet = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";
    let (status, _) = http_get(&format!("{}/esplora/address/{mainnet}/utxo", relay.http))?;
    assert_eq!(status, 400);
    let (status, _) = http_get(&format!("{}/esplora/tx/nothex/hex", relay.http))?;
    assert_eq!(status, 400);
    let (status, _) = http_request(
        "POST",
        &format!("{}/esplora/tx", relay.http),
        &[],
        b"not hex",
    )?;
    assert_eq!(status, 400);
    let (status, body) = http_request(
        "POST",
        &format!("{}/esplora/tx", relay.http),
        &[],
        b"0200000000",
    )?;
    assert_eq!(status, 400, "Core refuses a malformed transaction: {body}");
    let (status, _) = http_request(
        "POST",
        &format!("{}/api/faucet", relay.http),
        &[],
        format!(r#"{{"address":"{mainnet}"}}"#).as_bytes(),
    )?;
    assert_eq!(status, 400);
    std::thread::sleep(Duration::from_millis(50));
    let metrics = get_ok(&format!("{}/metrics", relay.http))?;
    let count = |endpoint: &str, outcome: &str| {
        darkswap_tests::metric_value(
            &metrics,
            &format!("darkswap_relay_chain_gateway_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(count("address_utxo", "bad_request") >= 1.0);
    assert!(count("tx_hex", "bad_request") >= 1.0);
    assert!(count("broadcast", "bad_request") >= 1.0);
    assert!(count("broadcast", "upstream_error") >= 1.0);
    assert!(count("faucet", "bad_request") >= 1.0);
    assert!(count("broadcast", "ok") >= 1.0);
    Ok(())
}

#[test]
fn a_relay_names_no_chain_unless_told_and_no_faucet_off_regtest() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &[])?;
    let info = RelayInfo::parse(get_ok(&format!("{}/api/relay-info", relay.http))?.as_bytes())?;
    assert_eq!(info.chain, None);
    let (status, _) = http_request("POST", &format!("{}/api/faucet", relay.http), &[], b"{}")?;
    assert_ne!(status, 200, "no faucet without a gateway");
    drop(relay);
    // Mainnet without chain.mainnet, and a faucet off regtest: the relay refuses to start.
    for flags in [
        vec!["--chain-network", "mainnet"],
        vec![
            "--chain-network",
            "signet",
            "--bitcoind-rpc-url",
            "http://127.0.0.1:1",
            "--chain-faucet",
            "true",
        ],
    ] {
        assert!(
            Relay::start(&dir.path().join("relay2"), Ports::default(), &flags).is_err(),
            "{flags:?}"
        );
    }
    Ok(())
}
