//! Trade execution speed on a regtest chain: two `darkswap market --wallet` traders on the real
//! relay (its chain gateway, ord), a real bitcoind and ord. The maker sells `--rounds` × `--units`
//! of the relay faucet's rune in one order; the taker takes `--units` of it `--rounds` times
//! (default 20 × 1,000), one after the other. For each take it times:
//! - take → broadcast: from the take command to the taker's "broadcast" line (the offer went with
//!   the take; both sides read their wallets, looked the other's outputs up, built, checked and
//!   signed the swap; the maker broadcast it and sent it back);
//! - take → settled: a block is mined as soon as the swap is broadcast (blocks on demand), until
//!   the taker reports it settled (its watch of the swap saw the confirmation); and from the
//!   block to that report alone (the watch's period, `--watch-every 1` here, bounds it).
//!
//! Prints the median, p90 and max of each. Run through `scripts/bench-settle`; `--rounds 2` is the
//! short form `scripts/test-all` runs. No pass/fail on the figures.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_tests::market_cli::{faucet_rune, take, wallet, wallet_file, Market};
use darkswap_tests::regtest::Regtest;
use darkswap_tests::stats::percentile;

/// Blocks go to an address of nobody's in the bench.
const MINE_TO: &str = "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: median {:.0} ms, p90 {:.0} ms, max {:.0} ms (n={})",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.9)),
        ms(percentile(&samples, 1.0)),
        samples.len()
    );
}

fn main() -> Result<()> {
    let (mut rounds, mut units) = (20u64, 1_000u64);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--rounds" => rounds = value.parse()?,
            "--units" => units = value.parse()?,
            other => bail!("unknown argument {other} (--rounds N, --units N)"),
        }
    }
    if rounds * units > 100_000 {
        bail!("the faucet gives 100,000 units: --rounds × --units must not exceed it");
    }
    let Regtest {
        node,
        ord,
        relay,
        dir,
    } = Regtest::start()?;
    for name in ["maker", "taker"] {
        wallet(&relay, &wallet_file(dir.path(), name), &["create"])?;
    }
    let (_, pair) = faucet_rune(&relay, &node, &ord, &wallet_file(dir.path(), "maker"))?;
    wallet(&relay, &wallet_file(dir.path(), "taker"), &["faucet"])?;
    ord.synced_to(node.height()?)?;
    let mut maker = Market::start("maker", &relay, dir.path(), &pair)?;
    let mut taker = Market::start("taker", &relay, dir.path(), &pair)?;
    let order = maker.make(&format!("sell {} 5", rounds * units))?;

    let (mut to_broadcast, mut to_settled, mut block_to_seen) =
        (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=rounds {
        // A take comes after ord indexed the last block, as one minutes later would: ord's
        // server looks for new blocks every 5 s, and both sides wait for it before they read
        // their wallets or each other's outputs, so without this the figure is ord's cadence.
        ord.synced_to(node.height()?)?;
        let t0 = Instant::now();
        let trade = take(&mut taker, &order, units)?;
        taker.step(&trade, "broadcast")?;
        to_broadcast.push(t0.elapsed());
        node.mine_to(1, MINE_TO)?;
        let mined = Instant::now();
        taker.step(&trade, "settled")?;
        to_settled.push(t0.elapsed());
        block_to_seen.push(mined.elapsed());
        // The maker's rune change is what the next take spends: wait until it saw the block.
        maker.step(&trade, "settled")?;
        eprintln!(
            "round {round}: broadcast after {:.0} ms, settled after {:.0} ms",
            ms(to_broadcast[to_broadcast.len() - 1]),
            ms(to_settled[to_settled.len() - 1])
        );
    }
    report("take → broadcast", to_broadcast);
    report("take → settled (a block mined at broadcast)", to_settled);
    report("block → taker sees it settled", block_to_seen);
    Ok(())
}
