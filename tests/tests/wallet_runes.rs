//! Runes with the wallet against the reference implementation: a real `ord` (0.29.1) indexing a
//! real regtest `bitcoind`. ord's own wallet etches a rune and sends some to our wallet's rune
//! address; our wallet learns its outputs' runes from ord's JSON API, builds and signs a rune
//! send, and ord then reports exactly the amount on the recipient's output and the rest on our
//! rune change, nothing burned; the recipient sends part onwards. Finally a transaction with a
//! cenotaph, built by hand past the wallet's builder (which refuses one) and signed by our keys,
//! burns what our `effect` said it would, as ord counts it.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid, Witness};
use darkswap_tests::regtest::{Bitcoind, Ord};
use darkswap_wallet::effect::effect;
use darkswap_wallet::ord_api::{output_path, parse_output, parse_rune, RuneInfo};
use darkswap_wallet::runestone::{Edict, Runestone};
use darkswap_wallet::sign::sign_inputs;
use darkswap_wallet::{
    send_runes, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network,
    RuneId, Utxo, WordCount,
};

const RUNE: &str = "DARKSWAPTESTRUNE";
const SPACED: &str = "DARKSWAP•TEST•RUNE";

fn wallet() -> Keychain {
    Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest).unwrap()
}

/// Our outputs at `path`, with what ord says each carries (checked against the transaction).
fn utxos_at(
    node: &Bitcoind,
    ord: &Ord,
    keys: &Keychain,
    path: KeyPath,
    rune: &RuneInfo,
) -> Result<Vec<Utxo>> {
    let derived = keys.derive(path)?;
    let ids: BTreeMap<String, RuneId> = [(rune.spaced_name.clone(), rune.id)].into_iter().collect();
    let mut out = Vec::new();
    for s in node.scan(&derived.address.to_string())? {
        if s.coinbase && s.confirmations < 100 {
            continue;
        }
        let outpoint = OutPoint {
            txid: Txid::from_str(&s.txid)?,
            vout: s.vout,
        };
        let txout = TxOut {
            value: Amount::from_sat(s.sats),
            script_pubkey: ScriptBuf::from_hex(&s.script_pubkey)?,
        };
        assert_eq!(txout.script_pubkey, derived.script_pubkey);
        let answer = ord.get(&output_path(&outpoint))?;
        let assets = parse_output(answer.as_bytes(), outpoint, &txout)
            .with_context(|| format!("ord /output answer: {answer}"))?
            .to_assets(&ids)?;
        out.push(Utxo {
            outpoint,
            txout,
            path,
            confirmations: s.confirmations,
            assets,
        });
    }
    Ok(out)
}

fn runes_on(ord: &Ord, outpoint: OutPoint, txout: &TxOut, rune: &RuneInfo) -> Result<u128> {
    let ids: BTreeMap<String, RuneId> = [(rune.spaced_name.clone(), rune.id)].into_iter().collect();
    let answer = ord.get(&output_path(&outpoint))?;
    match parse_output(answer.as_bytes(), outpoint, txout)?.to_assets(&ids)? {
        Assets::Known { runes, .. } => Ok(runes.get(&rune.id).copied().unwrap_or(0)),
        Assets::Unknown => bail!("ord has not indexed {outpoint}"),
    }
}

fn burned(ord: &Ord) -> Result<u128> {
    let v: serde_json::Value = serde_json::from_str(&ord.get(&format!("/rune/{RUNE}"))?)?;
    v["entry"]["burned"]
        .as_u64()
        .map(u128::from)
        .context("burned")
}

fn mine_and_index(node: &Bitcoind, ord: &Ord, n: u32, to: &str) -> Result<()> {
    node.mine_to(n, to)?;
    ord.synced_to(node.height()?)
}

fn broadcast(node: &Bitcoind, tx: &Transaction) -> Result<()> {
    let v = node.cli(&["testmempoolaccept", &format!("[\"{}\"]", serialize_hex(tx))])?;
    if v[0]["allowed"] != serde_json::Value::Bool(true) {
        bail!("Core refused the transaction: {}", v[0]);
    }
    node.cli(&["sendrawtransaction", &serialize_hex(tx)])?;
    Ok(())
}

/// Etches the test rune with ord's wallet, mining a block a second until the batch (which waits
/// for its commit to mature) finishes.
fn etch(node: &Bitcoind, ord: &Ord, ord_addr: &str) -> Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("rune.txt"), "DarkSwap test rune")?;
    let batch = dir.path().join("batch.yaml");
    std::fs::write(
        &batch,
        format!(
            "mode: separate-outputs\netching:\n  rune: {SPACED}\n  divisibility: 2\n  premine: '10000.00'\n  supply: '10000.00'\n  symbol: '$'\n  turbo: false\ninscriptions:\n  - file: {}\n",
            dir.path().join("rune.txt").display()
        ),
    )?;
    let mut child = ord
        .wallet_command(&[
            "batch",
            "--fee-rate",
            "1",
            "--batch",
            &batch.display().to_string(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            if !status.success() {
                bail!("ord wallet batch: {}", String::from_utf8_lossy(&out.stderr));
            }
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            bail!("ord wallet batch did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(700));
        mine_and_index(node, ord, 1, ord_addr)?;
    }
    mine_and_index(node, ord, 1, ord_addr)
}

#[test]
fn runes_etched_by_ord_move_through_the_wallet_exactly_as_ord_counts_them() -> Result<()> {
    let node = Bitcoind::start_with_wallet()?;
    let ord = Ord::start(&node)?;
    ord.wallet(&["create"])?;
    let ord_addr = ord.wallet(&["receive"])?["addresses"][0]
        .as_str()
        .context("ord receive address")?
        .to_string();
    let (alice, bob, carol) = (wallet(), wallet(), wallet());
    let pay = |k: &Keychain| k.derive(KeyPath::receive(Account::Payment, 0)).unwrap();
    let runes_at = |k: &Keychain| k.derive(KeyPath::receive(Account::Runes, 0)).unwrap();
    // One coinbase each for alice's and bob's fees, then ord's wallet's coins.
    node.mine_to(1, &pay(&alice).address.to_string())?;
    node.mine_to(1, &pay(&bob).address.to_string())?;
    mine_and_index(&node, &ord, 110, &ord_addr)?;

    etch(&node, &ord, &ord_addr)?;
    let rune = parse_rune(ord.get(&format!("/rune/{RUNE}"))?.as_bytes())?;
    assert_eq!(rune.spaced_name, SPACED);
    assert_eq!(rune.divisibility, 2);

    // ord's wallet sends 1,000.00 (100,000 units) to alice's rune address.
    ord.wallet(&[
        "send",
        "--fee-rate",
        "1",
        &runes_at(&alice).address.to_string(),
        &format!("1000.00:{SPACED}"),
    ])?;
    mine_and_index(&node, &ord, 1, &ord_addr)?;

    let mut utxos = utxos_at(
        &node,
        &ord,
        &alice,
        KeyPath::receive(Account::Runes, 0),
        &rune,
    )?;
    assert_eq!(utxos.len(), 1);
    assert_eq!(
        utxos[0].rune(rune.id),
        100_000,
        "ord's view, read by the wallet"
    );
    let money = utxos_at(
        &node,
        &ord,
        &alice,
        KeyPath::receive(Account::Payment, 0),
        &rune,
    )?;
    assert_eq!(money.len(), 1);
    assert!(
        money[0].is_money(),
        "ord says the coinbase carries nothing: {:?}",
        money[0].assets
    );
    utxos.extend(money);

    // Alice sends 250.00 to bob.
    let locks = Locks::<u8>::new(16);
    let rune_change = alice.derive(KeyPath::change(Account::Runes, 0))?;
    let btc_change = alice.derive(KeyPath::change(Account::Payment, 0))?;
    let unsigned = send_runes(
        &utxos,
        &locks,
        rune.id,
        25_000,
        &runes_at(&bob).address,
        FeeRate::sat_per_vb(2)?,
        &rune_change,
        &btc_change,
    )?;
    let tx = sign(&alice, &unsigned)?;
    broadcast(&node, &tx)?;
    mine_and_index(&node, &ord, 1, &ord_addr)?;
    let txid = tx.compute_txid();
    assert_eq!(
        runes_on(&ord, OutPoint { txid, vout: 0 }, &tx.output[0], &rune)?,
        25_000,
        "bob's output"
    );
    assert_eq!(
        runes_on(&ord, OutPoint { txid, vout: 1 }, &tx.output[1], &rune)?,
        75_000,
        "alice's rune change"
    );
    assert_eq!(
        runes_on(&ord, OutPoint { txid, vout: 3 }, &tx.output[3], &rune)?,
        0,
        "alice's bitcoin change"
    );
    assert_eq!(burned(&ord)?, 0);

    // Bob sends 50.00 of his onwards to carol, paying the fee from his own coinbase.
    let mut bob_utxos = utxos_at(
        &node,
        &ord,
        &bob,
        KeyPath::receive(Account::Runes, 0),
        &rune,
    )?;
    bob_utxos.extend(utxos_at(
        &node,
        &ord,
        &bob,
        KeyPath::receive(Account::Payment, 0),
        &rune,
    )?);
    let bob_rune_change = bob.derive(KeyPath::change(Account::Runes, 0))?;
    let bob_btc_change = bob.derive(KeyPath::change(Account::Payment, 0))?;
    let onward = send_runes(
        &bob_utxos,
        &locks,
        rune.id,
        5_000,
        &runes_at(&carol).address,
        FeeRate::sat_per_vb(1)?,
        &bob_rune_change,
        &bob_btc_change,
    )?;
    let onward = sign(&bob, &onward)?;
    broadcast(&node, &onward)?;
    mine_and_index(&node, &ord, 1, &ord_addr)?;
    let carol_has = utxos_at(
        &node,
        &ord,
        &carol,
        KeyPath::receive(Account::Runes, 0),
        &rune,
    )?;
    assert_eq!(
        carol_has.iter().map(|u| u.rune(rune.id)).sum::<u128>(),
        5_000
    );
    let bob_left = utxos_at(&node, &ord, &bob, KeyPath::change(Account::Runes, 0), &rune)?;
    assert_eq!(
        bob_left.iter().map(|u| u.rune(rune.id)).sum::<u128>(),
        20_000
    );

    // A cenotaph, built by hand (an edict to output 5 of 2) and signed by alice: our effect says
    // all 75,000 units burn, and ord agrees.
    let change_utxos = utxos_at(
        &node,
        &ord,
        &alice,
        KeyPath::change(Account::Runes, 0),
        &rune,
    )?;
    assert_eq!(change_utxos.len(), 1);
    let spent = &change_utxos[0];
    let fee_money = utxos_at(
        &node,
        &ord,
        &alice,
        KeyPath::change(Account::Payment, 0),
        &rune,
    )?;
    let fee_input = &fee_money[0];
    let bad = Runestone {
        edicts: vec![Edict {
            id: rune.id,
            amount: 1,
            output: 5,
        }],
        ..Runestone::default()
    };
    let mut tx = Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: [spent, fee_input]
            .iter()
            .map(|u| TxIn {
                previous_output: u.outpoint,
                script_sig: ScriptBuf::new(),
                sequence: bitcoin::Sequence::MAX,
                witness: Witness::new(),
            })
            .collect(),
        output: vec![
            TxOut {
                value: Amount::ZERO,
                script_pubkey: bad.encipher(),
            },
            TxOut {
                value: fee_input.txout.value + spent.txout.value - Amount::from_sat(1_000),
                script_pubkey: btc_change.script_pubkey.clone(),
            },
        ],
    };
    let predicted = effect(&tx, &[spent.runes(), fee_input.runes()])?;
    assert!(predicted.cenotaph);
    assert_eq!(predicted.burned.get(&rune.id), Some(&75_000));
    let prevouts = vec![spent.txout.clone(), fee_input.txout.clone()];
    sign_inputs(
        &alice,
        &mut tx,
        &prevouts,
        &[(0, spent.path), (1, fee_input.path)],
    )?;
    broadcast(&node, &tx)?;
    mine_and_index(&node, &ord, 1, &ord_addr)?;
    assert_eq!(
        burned(&ord)?,
        75_000,
        "ord burned what the wallet's effect predicted"
    );
    Ok(())
}
