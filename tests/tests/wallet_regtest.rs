//! The wallet against a real Bitcoin Core in regtest: coins mined to a fresh wallet's BIP86
//! address are found, a send the wallet builds and signs is accepted by Core's mempool at
//! exactly the fee rate asked for, confirms, and leaves both balances right; Core refuses the
//! same transaction with a tampered signature or a changed output (so the signatures are checked
//! for real, and this test can fail).

use std::str::FromStr;

use anyhow::{Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use darkswap_tests::regtest::{btc_to_sats, Bitcoind};
use darkswap_wallet::{
    send_btc, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, Utxo,
    WordCount,
};

fn wallet() -> Keychain {
    Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest).unwrap()
}

/// The wallet's outputs at `path`, as the chain has them. Coinbase outputs count only once
/// mature. No indexer runs here, so "carries no rune" is known only because nothing but this
/// test ever paid the address (a page learns it from ord).
fn utxos_at(node: &Bitcoind, keys: &Keychain, path: KeyPath) -> Result<Vec<Utxo>> {
    let derived = keys.derive(path)?;
    let mut out = Vec::new();
    for s in node.scan(&derived.address.to_string())? {
        if s.coinbase && s.confirmations < 100 {
            continue;
        }
        assert_eq!(
            ScriptBuf::from_hex(&s.script_pubkey)?,
            derived.script_pubkey,
            "the node's output is the wallet's script"
        );
        out.push(Utxo {
            outpoint: OutPoint {
                txid: Txid::from_str(&s.txid)?,
                vout: s.vout,
            },
            txout: TxOut {
                value: Amount::from_sat(s.sats),
                script_pubkey: derived.script_pubkey.clone(),
            },
            path,
            confirmations: s.confirmations,
            assets: Assets::none(),
        });
    }
    Ok(out)
}

fn mempool_accepts(node: &Bitcoind, tx: &Transaction) -> Result<(bool, serde_json::Value)> {
    let v = node.cli(&["testmempoolaccept", &format!("[\"{}\"]", serialize_hex(tx))])?;
    let r = v[0].clone();
    Ok((r["allowed"].as_bool().context("allowed")?, r))
}

#[test]
fn a_taproot_send_built_and_signed_by_the_wallet_confirms_on_regtest() -> Result<()> {
    let node = Bitcoind::start()?;
    let alice = wallet();
    let bob = wallet();
    let alice_addr = alice.derive(KeyPath::receive(Account::Payment, 0))?;
    // 111 blocks: the first 11 coinbase outputs (50 BTC each) are mature.
    node.mine_to(111, &alice_addr.address.to_string())?;
    let utxos = utxos_at(&node, &alice, KeyPath::receive(Account::Payment, 0))?;
    assert_eq!(
        utxos.len(),
        12,
        "11 mature coinbase outputs plus the one at 100 confirmations"
    );
    let total: Amount = utxos.iter().map(|u| u.txout.value).sum();

    // 520 BTC needs 11 inputs: a multi-input taproot transaction, every signature checked.
    let to = bob.derive(KeyPath::receive(Account::Payment, 0))?;
    let change = alice.derive(KeyPath::change(Account::Payment, 0))?;
    let amount = Amount::from_btc(520.0)?;
    let rate = FeeRate::sat_per_vb(3)?;
    let locks = Locks::<u8>::new(16);
    let unsigned = send_btc(&utxos, &locks, &to.address, amount, rate, &change)?;
    assert_eq!(unsigned.inputs.len(), 11);
    let tx = sign(&alice, &unsigned)?;

    let (allowed, answer) = mempool_accepts(&node, &tx)?;
    assert!(allowed, "Core refused the wallet's transaction: {answer}");
    let vsize = answer["vsize"].as_u64().context("vsize")?;
    assert_eq!(vsize, tx.weight().to_vbytes_ceil());
    assert_eq!(btc_to_sats(&answer["fees"]["base"])?, unsigned.fee.to_sat());
    assert_eq!(
        unsigned.fee.to_sat(),
        3 * vsize,
        "exactly the rate asked for"
    );

    // Hostile copies: a flipped signature bit, and an output changed after signing.
    let mut flipped = tx.clone();
    let mut sig = flipped.input[4].witness.to_vec();
    sig[0][10] ^= 1;
    flipped.input[4].witness = bitcoin::Witness::from_slice(&sig);
    let (allowed, answer) = mempool_accepts(&node, &flipped)?;
    assert!(
        !allowed,
        "a flipped signature bit must be refused: {answer}"
    );
    let mut redirected = tx.clone();
    redirected.output[0].script_pubkey = change.script_pubkey.clone();
    let (allowed, answer) = mempool_accepts(&node, &redirected)?;
    assert!(
        !allowed,
        "an output changed after signing must be refused: {answer}"
    );

    let txid = node.cli(&["sendrawtransaction", &serialize_hex(&tx)])?;
    assert_eq!(txid.as_str(), Some(tx.compute_txid().to_string().as_str()));
    // Mine it to a third party, so the balances below are the send's alone.
    let miner = wallet().derive(KeyPath::receive(Account::Payment, 0))?;
    node.mine_to(1, &miner.address.to_string())?;

    let bob_has = utxos_at(&node, &bob, KeyPath::receive(Account::Payment, 0))?;
    assert_eq!(bob_has.len(), 1);
    assert_eq!(bob_has[0].txout.value, amount);
    assert_eq!(bob_has[0].confirmations, 1);
    let change_has = utxos_at(&node, &alice, KeyPath::change(Account::Payment, 0))?;
    assert_eq!(change_has.len(), 1);
    let spent: Amount = unsigned.inputs.iter().map(|u| u.txout.value).sum();
    assert_eq!(change_has[0].txout.value, spent - amount - unsigned.fee);
    let left = utxos_at(&node, &alice, KeyPath::receive(Account::Payment, 0))?;
    let left: Amount = left.iter().map(|u| u.txout.value).sum();
    // What alice had, less what she spent, plus the coinbase that matured with the new block.
    assert_eq!(left + spent, total + Amount::from_btc(50.0)?);

    // Bob spends what he received onwards: his keys sign on the same chain.
    let bob_change = bob.derive(KeyPath::change(Account::Payment, 0))?;
    let back = send_btc(
        &bob_has,
        &locks,
        &alice_addr.address,
        Amount::from_btc(100.0)?,
        FeeRate::sat_per_vb(1)?,
        &bob_change,
    )?;
    let back = sign(&bob, &back)?;
    node.cli(&["sendrawtransaction", &serialize_hex(&back)])?;
    node.mine_to(1, &miner.address.to_string())?;
    let bob_change_has = utxos_at(&node, &bob, KeyPath::change(Account::Payment, 0))?;
    assert_eq!(bob_change_has.len(), 1);
    Ok(())
}

#[test]
fn a_wallet_only_signs_outputs_whose_script_is_its_key() -> Result<()> {
    // Another wallet's coins, claimed as ours at a path: the wallet refuses to sign.
    let node = Bitcoind::start()?;
    let alice = wallet();
    let mallory = wallet();
    let m_addr = mallory.derive(KeyPath::receive(Account::Payment, 0))?;
    node.mine_to(101, &m_addr.address.to_string())?;
    let mut theirs = utxos_at(&node, &mallory, KeyPath::receive(Account::Payment, 0))?;
    assert!(!theirs.is_empty());
    theirs.truncate(1);
    let change = alice.derive(KeyPath::change(Account::Payment, 0))?;
    let to = alice.derive(KeyPath::receive(Account::Payment, 1))?;
    let unsigned = send_btc(
        &theirs,
        &Locks::<u8>::new(4),
        &to.address,
        Amount::from_btc(1.0)?,
        FeeRate::sat_per_vb(1)?,
        &change,
    )?;
    let err = sign(&alice, &unsigned).unwrap_err();
    assert!(
        matches!(
            err,
            darkswap_wallet::sign::SignError::NotOurs { input: 0, .. }
        ),
        "{err}"
    );
    Ok(())
}
