//! The benchmark workload shared by `benches/verify.rs` and `tests/wasm_bench.rs`: a book-sync
//! page as a relay serves it.

use darkswap_orderbook::{Pair, Price, Side};
use darkswap_proto::order::{sign_order_message, OrderAction, OrderBody, OrderSpec};
use libp2p_identity::Keypair;

/// When the page's orders were signed, and when they are checked.
pub const NOW: u64 = 1_800_000_000_000;

/// The pair the page is for.
pub fn pair() -> Pair {
    Pair::parse("RUNE:BENCH/BTC").expect("a valid pair")
}

/// A full page (1,000 signed orders) from 100 makers, 10 orders each, interleaved as a page
/// sorted by order id mixes makers.
pub fn sync_page() -> Vec<Vec<u8>> {
    let makers: Vec<Keypair> = (0..100).map(|_| Keypair::generate_ed25519()).collect();
    (0..10u64)
        .flat_map(|n| {
            makers.iter().map(move |key| {
                let body = OrderBody {
                    pair: pair(),
                    seq: n + 1,
                    sent_at_ms: NOW,
                    action: OrderAction::Order(OrderSpec {
                        nonce: n,
                        side: if n.is_multiple_of(2) {
                            Side::Buy
                        } else {
                            Side::Sell
                        },
                        price: Price(1_000 + n),
                        amount: 10_000 + n,
                        min_fill: 0,
                        expires_at_ms: NOW + 3_600_000,
                    }),
                };
                sign_order_message(key, &body, NOW).expect("a valid order")
            })
        })
        .collect()
}
