//! The mixed workload of `benches/book.rs`, run in headless Chromium (wasm32), printing ops/s.
//! Run with `scripts/bench-orderbook`, which also runs the native benchmark and prints the ratio.
#![cfg(target_arch = "wasm32")]

use darkswap_orderbook::workload;
use darkswap_orderbook::OrderBook;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SEED: u64 = 42;
const OPS: usize = 100_000;

#[wasm_bindgen_test]
fn mixed_workload_in_the_browser() {
    let ops = workload::mixed(SEED, OPS);
    let mut times = Vec::new();
    let mut tally = workload::Tally::default();
    for _ in 0..7 {
        let mut book = OrderBook::new();
        let start = web_time::Instant::now();
        tally = workload::run(&mut book, &ops);
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[times.len() / 2];
    let ops_per_s = OPS as f64 / median.as_secs_f64();
    console_log!(
        "wasm mixed workload: {ops_per_s:.0} ops/s (median of 7, {OPS} ops, seed {SEED}) {tally:?}"
    );
    assert!(tally.fills > 0 && tally.cancelled > 0);
}
