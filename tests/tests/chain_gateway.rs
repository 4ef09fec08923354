//! The relay's chain gateway against a real regtest bitcoind: relay-info names the chain; the
//! faucet mines to a fresh wallet; the wallet reads its outputs through `/esplora` with the same
//! checks it applies to any Esplora server (each listed output checked against its
//! transaction, fetched and hashed), builds and signs a send, broadcasts it through the
//! gateway, sees it in the mempool overlay (the recipient's output unconfirmed, the spent
//! output gone) and confirmed after a block. Bad input gets a 400 and a counter. Address
//! histories: paged as Esplora pages them, the mempool first, the wallet's walk through them, and
//! a reorg followed.

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

/// A fresh regtest bitcoind and a relay serving the gateway and the faucet over it (the
/// directory holds the RPC password and the relay's files).
fn gateway_relay() -> Result<(Bitcoind, tempfile::TempDir, Relay)> {
    let node = Bitcoind::start()?;
    let dir = tempfile::tempdir()?;
    let flags = node.relay_flags(&dir.path().join("rpc.password"), None, true)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &flags)?;
    Ok((node, dir, relay))
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
    let (node, _dir, relay) = gateway_relay()?;
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

/// The wallet's history walk through the gateway.
fn history(relay: &Relay, keys: &Keychain) -> Result<Vec<darkswap_wallet::history::Entry>> {
    let mut h = darkswap_wallet::history::HistoryScan::new(keys)?;
    while let Some(req) = h.next_request() {
        let (status, body) = http_get(&format!("{}/esplora{}", relay.http, req.path))?;
        h.on_answer(status, body.as_bytes())?;
        h.derive_ahead(keys)?;
    }
    Ok(h.finish()?)
}

/// One page of an address's history: (txid, height) newest first.
fn txs_page(relay: &Relay, path: &str) -> Result<Vec<(String, Option<u32>)>> {
    let listed = darkswap_wallet::esplora::parse_address_txs(
        get_ok(&format!("{}/esplora{path}", relay.http))?.as_bytes(),
    )?;
    Ok(listed
        .into_iter()
        .map(|l| (l.txid.to_string(), l.height))
        .collect())
}

#[test]
fn the_gateway_pages_address_histories_with_the_mempool_and_follows_a_reorg() -> Result<()> {
    use darkswap_wallet::esplora::{txs_chain_path, txs_path};
    let (node, _dir, relay) = gateway_relay()?;
    let (alice, bob) = (wallet(), wallet());
    let alice_pay = alice.derive(KeyPath::receive(Account::Payment, 0))?;
    node.mine_to(101, &alice_pay.address.to_string())?;

    // 101 coinbases: pages of 25, newest first, each page after the last txid of the one before.
    let mut all = Vec::new();
    let mut page = txs_page(&relay, &txs_path(&alice_pay.address))?;
    loop {
        assert!(page.len() <= 25);
        all.extend(page.clone());
        if page.len() < 25 {
            break;
        }
        let last = page.last().context("a page")?.0.parse()?;
        page = txs_page(&relay, &txs_chain_path(&alice_pay.address, &last))?;
    }
    assert_eq!(all.len(), 101);
    let heights: Vec<u32> = all.iter().map(|(_, h)| h.unwrap()).collect();
    assert_eq!(heights, (1..=101).rev().collect::<Vec<_>>());

    // A send in the mempool comes first on both sides; the wallet's walk sees what it did.
    let have = utxos(&relay, &alice, KeyPath::receive(Account::Payment, 0), 101)?;
    let to = bob.derive(KeyPath::receive(Account::Payment, 0))?;
    let change = alice.derive(KeyPath::change(Account::Payment, 0))?;
    let unsigned = send_btc(
        &have,
        &Locks::<u8>::new(4),
        &to.address,
        Amount::from_btc(1.0)?,
        FeeRate::sat_per_vb(3)?,
        &change,
    )?;
    let tx = sign(&alice, &unsigned)?;
    node.cli(&["sendrawtransaction", &serialize_hex(&tx)])?;
    let txid = tx.compute_txid().to_string();
    assert_eq!(
        txs_page(&relay, &txs_path(&alice_pay.address))?[0],
        (txid.clone(), None)
    );
    assert_eq!(
        txs_page(&relay, &txs_path(&to.address))?,
        vec![(txid.clone(), None)]
    );
    let entries = history(&relay, &alice)?;
    assert_eq!(entries.len(), 102);
    assert_eq!(entries[0].txid.to_string(), txid);
    assert_eq!(entries[0].confirmations, 0);
    assert_eq!(entries[0].fee, Some(unsigned.fee));
    assert_eq!(
        entries[0].net().to_sat(),
        -(100_000_000 + unsigned.fee.to_sat() as i64)
    );
    let bobs = history(&relay, &bob)?;
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].net().to_sat(), 100_000_000);
    assert_eq!(bobs[0].fee, None, "alice's inputs, not bob's fee");

    // A reorg: block 101 (alice's last coinbase) replaced by two blocks paying someone else.
    let tip_hash = node.cli(&["getbestblockhash"])?;
    let tip_hash = tip_hash.as_str().context("a hash")?.to_string();
    node.cli(&["invalidateblock", &tip_hash])?;
    node.mine_to(
        2,
        &wallet()
            .derive(KeyPath::receive(Account::Payment, 0))?
            .address
            .to_string(),
    )?;
    let after = txs_page(&relay, &txs_path(&alice_pay.address))?;
    assert!(
        after.iter().all(|(t, _)| *t != all[0].0),
        "the replaced block's coinbase is gone"
    );
    // Alice's coinbases now end at 100 (the send may have been mined or dropped as premature).
    let coinbases: Vec<Option<u32>> = after
        .iter()
        .filter(|(t, _)| *t != txid)
        .map(|(_, h)| *h)
        .collect();
    assert_eq!(coinbases[0], Some(100));
    assert!(coinbases.windows(2).all(|w| w[0] > w[1]));

    // Bad input: refused and counted.
    let mainnet = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";
    let bad = [
        format!("/address/{mainnet}/txs"),
        format!("/address/{}/txs/chain/nothex", alice_pay.address),
        format!(
            "/address/{}/txs/chain/{}",
            alice_pay.address,
            "ab".repeat(32)
        ),
    ];
    for path in &bad {
        let (status, _) = http_get(&format!("{}/esplora{path}", relay.http))?;
        assert_eq!(status, 400, "{path}");
    }
    std::thread::sleep(Duration::from_millis(50));
    let metrics = get_ok(&format!("{}/metrics", relay.http))?;
    let count = |outcome: &str| {
        darkswap_tests::metric_value(
            &metrics,
            &format!("darkswap_relay_chain_gateway_requests_total{{endpoint=\"address_txs\",outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(count("bad_request"), 3.0);
    assert!(count("ok") >= 10.0);
    Ok(())
}

/// The regtest rune faucet: its first call etches a rune under a reserved name (the block's
/// bytes hold the etching at the id it names) and sends 1,000.00 of it; the second sends the
/// same from the first gift's rune change. Each gift is mined at once. A wrong network's
/// address is refused and counted.
#[test]
fn the_rune_faucet_etches_once_then_sends_from_its_change() -> Result<()> {
    use darkswap_wallet::effect::{etching_effect, Balances, ETCHED};
    use darkswap_wallet::faucet::RuneGift;
    use darkswap_wallet::runestone::{Artifact, Runestone};

    let (node, _dir, relay) = gateway_relay()?;
    let gift_to = |keys: &Keychain| -> Result<(bitcoin::Address, RuneGift)> {
        let to = keys.derive(KeyPath::receive(Account::Runes, 0))?.address;
        let body = relay.faucet("/api/faucet/runes", &to)?;
        Ok((to, RuneGift::parse(body.as_bytes())?))
    };
    let fetch_tx = |txid: &bitcoin::Txid| -> Result<bitcoin::Transaction> {
        Ok(parse_tx_hex(
            get_ok(&format!("{}/esplora{}", relay.http, tx_hex_path(txid)))?.as_bytes(),
            *txid,
        )?)
    };
    let confirmations = |txid: &bitcoin::Txid| -> Result<u64> {
        let v = node.cli(&["getrawtransaction", &txid.to_string(), "1"])?;
        Ok(v["confirmations"].as_u64().unwrap_or(0))
    };

    let (alice_to, first) = gift_to(&wallet())?;
    assert_eq!((first.amount, first.divisibility), (100_000, 2));
    assert_eq!(confirmations(&first.txid)?, 1, "mined at once");
    // The etching is where the rune's id says: block height, index in the block.
    let hash = node.cli(&["getblockhash", &first.rune.block.to_string()])?;
    let block = node.cli(&["getblock", hash.as_str().context("hash")?, "1"])?;
    let etch_txid: bitcoin::Txid = block["tx"][first.rune.tx as usize]
        .as_str()
        .context("no transaction at the rune's index")?
        .parse()?;
    let etching = fetch_tx(&etch_txid)?;
    let Some(Artifact::Runestone(stone)) = Runestone::decipher(&etching) else {
        anyhow::bail!("the etching has no runestone");
    };
    let e = stone.etching.context("no etching")?;
    assert_eq!((e.rune, e.divisibility, e.terms), (None, Some(2), None));
    let premine = e.premine.context("a premine")?;
    let etched = etching_effect(&etching, &vec![Balances::new(); etching.input.len()])?;
    assert_eq!(etched.outputs[0], Balances::from([(ETCHED, premine)]));

    // The first gift spends the premine's output: 1,000.00 to alice, the rest back.
    let gift = fetch_tx(&first.txid)?;
    assert!(gift
        .input
        .iter()
        .any(|i| i.previous_output == bitcoin::OutPoint::new(etch_txid, 0)));
    let mut inputs = vec![Balances::new(); gift.input.len()];
    for (i, input) in gift.input.iter().enumerate() {
        if input.previous_output == bitcoin::OutPoint::new(etch_txid, 0) {
            inputs[i] = Balances::from([(first.rune, premine)]);
        }
    }
    let moved = darkswap_wallet::effect::effect(&gift, &inputs)?;
    assert_eq!(gift.output[0].script_pubkey, alice_to.script_pubkey());
    assert_eq!(moved.outputs[0], Balances::from([(first.rune, 100_000)]));
    assert_eq!(
        moved.outputs[1],
        Balances::from([(first.rune, premine - 100_000)])
    );
    assert!(moved.burned.is_empty());

    // The second: the same rune, from the first gift's rune change.
    let (_, second) = gift_to(&wallet())?;
    assert_eq!(second.rune, first.rune, "etched once");
    let next = fetch_tx(&second.txid)?;
    assert!(next
        .input
        .iter()
        .any(|i| i.previous_output == bitcoin::OutPoint::new(first.txid, 1)));
    assert_eq!(confirmations(&second.txid)?, 1);

    let mainnet = "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr";
    let (status, _) = http_request(
        "POST",
        &format!("{}/api/faucet/runes", relay.http),
        &[],
        format!(r#"{{"address":"{mainnet}"}}"#).as_bytes(),
    )?;
    assert_eq!(status, 400);
    std::thread::sleep(Duration::from_millis(50));
    let metrics = get_ok(&format!("{}/metrics", relay.http))?;
    let count = |outcome: &str| {
        darkswap_tests::metric_value(
            &metrics,
            &format!("darkswap_relay_chain_gateway_requests_total{{endpoint=\"faucet_runes\",outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(count("ok"), 2.0);
    assert_eq!(count("bad_request"), 1.0);
    Ok(())
}
