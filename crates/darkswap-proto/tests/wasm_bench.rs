//! The workload of `benches/verify.rs` in headless Chromium (wasm32): a book-sync page of 1,000
//! orders verified one by one and as a batch, printing µs per order. Run with
//! `scripts/bench-verify`, which also runs the native benchmark.
#![cfg(target_arch = "wasm32")]

use darkswap_proto::order::{verify_order_message, Freshness};
use darkswap_proto::order_batch::verify_order_messages;
use wasm_bindgen_test::*;

#[path = "../benches/support/page.rs"]
mod page;

wasm_bindgen_test_configure!(run_in_browser);

fn median_us_per_order(runs: usize, orders: usize, mut run: impl FnMut() -> usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = web_time::Instant::now();
        assert_eq!(run(), orders, "every order verifies");
        times.push(start.elapsed());
    }
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6 / orders as f64
}

#[wasm_bindgen_test]
fn verify_a_sync_page_in_the_browser() {
    let messages = page::sync_page();
    let pair = page::pair();
    let n = messages.len();
    let single = median_us_per_order(5, n, || {
        messages
            .iter()
            .filter(|m| verify_order_message(m, Some(&pair), Freshness::Stored, page::NOW).is_ok())
            .count()
    });
    let batch = median_us_per_order(5, n, || {
        verify_order_messages(&messages, Some(&pair), Freshness::Stored, page::NOW)
            .iter()
            .filter(|r| r.is_ok())
            .count()
    });
    console_log!(
        "wasm verify a {n}-order sync page: one by one {single:.1} µs/order, as a batch {batch:.1} µs/order (median of 5); a 100,000-order book: {:.2} s / {:.2} s",
        single * 1e5 / 1e6,
        batch * 1e5 / 1e6
    );
}
