//! Wallet sync from an Esplora API on regtest: a real bitcoind, the real relay's gateway, a
//! wallet whose first payment address holds N spendable outputs (N + 99 coinbases mined to
//! it); prints the time the wallet's address scan takes to read and check them all (each output's
//! transaction fetched and hashed), then the time to build and sign a 10-input send.
//! Usage: wallet-bench [N] (default 1000); scripts/bench-wallet runs it.

use std::time::Instant;

use anyhow::{bail, Result};
use bitcoin::Amount;
use darkswap_tests::regtest::Bitcoind;
use darkswap_tests::{http_get, Ports, Relay};
use darkswap_wallet::sync::{Scan, Server};
use darkswap_wallet::{
    send_btc, sign, Account, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, WordCount,
};

fn main() -> Result<()> {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1000);
    let node = Bitcoind::start()?;
    let dir = tempfile::tempdir()?;
    let flags = node.relay_flags(&dir.path().join("rpc.password"), None, false)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &flags)?;
    let keys = Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest)?;
    let pay = keys.derive(KeyPath::receive(Account::Payment, 0))?;
    let t = Instant::now();
    // Mined in batches: one RPC per 500 blocks.
    // A coinbase is spendable at 100 confirmations: n + 99 blocks leave n of them spendable.
    let mut left = n + 99;
    while left > 0 {
        let k = left.min(500);
        node.mine_to(k, &pay.address.to_string())?;
        left -= k;
    }
    println!(
        "mined {} blocks to one address in {:.1} s",
        n + 99,
        t.elapsed().as_secs_f64()
    );

    let esplora = format!("{}/esplora", relay.http);
    let mut requests = 0u32;
    let t = Instant::now();
    let mut scan = Scan::new(&keys, false)?;
    while let Some(req) = scan.next_request() {
        if req.server != Server::Esplora {
            bail!("asked ord without an ord server");
        }
        let (status, body) = http_get(&format!("{esplora}{}", req.path))?;
        scan.on_answer(status, body.as_bytes())?;
        scan.derive_ahead(&keys)?;
        requests += 1;
    }
    let utxos = scan.finish()?;
    let took = t.elapsed();
    println!(
        "sync: {} spendable outputs (of {} listed) read and checked in {:.2} s ({requests} requests, {:.2} ms each)",
        utxos.len(),
        n + 99,
        took.as_secs_f64(),
        took.as_secs_f64() * 1e3 / f64::from(requests)
    );
    if utxos.len() != n as usize {
        bail!("expected {n} spendable outputs, found {}", utxos.len());
    }

    // The history walk: every coinbase, in pages of 25, each transaction's bytes checked. The
    // first walk also has the gateway index the chain's blocks; the second finds it warm.
    for walk in [
        "first (the gateway indexes the blocks)",
        "second (index warm)",
    ] {
        let t = Instant::now();
        let mut requests = 0u32;
        let mut h = darkswap_wallet::history::HistoryScan::new(&keys)?;
        while let Some(req) = h.next_request() {
            let (status, body) = http_get(&format!("{esplora}{}", req.path))?;
            h.on_answer(status, body.as_bytes())?;
            h.derive_ahead(&keys)?;
            requests += 1;
        }
        let entries = h.finish()?;
        if entries.len() != (n + 99) as usize {
            bail!(
                "expected {} transactions in the history, found {}",
                n + 99,
                entries.len()
            );
        }
        println!(
            "history, {walk}: {} transactions read and checked in {:.2} s ({requests} requests)",
            entries.len(),
            t.elapsed().as_secs_f64()
        );
    }

    // Ten of the smallest (late, halved) coinbases: a 10-input send. No indexer runs here, so
    // the scan marks every output unknown; nothing but this bench paid the address.
    let mut small: Vec<_> = utxos
        .iter()
        .cloned()
        .map(|mut u| {
            u.assets = darkswap_wallet::Assets::none();
            u
        })
        .collect();
    small.sort_by_key(|u| u.txout.value);
    small.truncate(10);
    let total: Amount = small.iter().map(|u| u.txout.value).sum();
    let change = keys.derive(KeyPath::change(Account::Payment, 0))?;
    let to = keys.derive(KeyPath::receive(Account::Payment, 1))?;
    let runs = 50u32;
    let t = Instant::now();
    for _ in 0..runs {
        let unsigned = send_btc(
            &small,
            &Locks::<u8>::new(1),
            &to.address,
            total - Amount::from_sat(10_000),
            FeeRate::sat_per_vb(1)?,
            &change,
        )?;
        assert_eq!(unsigned.inputs.len(), 10);
        sign(&keys, &unsigned)?;
    }
    println!(
        "build and sign a 10-input taproot send: {:.2} ms",
        t.elapsed().as_secs_f64() * 1e3 / f64::from(runs)
    );
    Ok(())
}
