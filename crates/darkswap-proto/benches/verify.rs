//! Verifying a book-sync page of 1,000 signed orders from 100 makers: one message at a time
//! (`verify_order_message`, what live gossip uses) against the page at once
//! (`verify_order_messages`, what a joiner's sync uses). `scripts/bench-verify` runs this and the
//! same workload in headless Chromium (tests/wasm_bench.rs).

// criterion is native-only; the wasm workload is tests/wasm_bench.rs.
fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
#[path = "support/page.rs"]
mod page;

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::page;
    use criterion::{Criterion, Throughput};
    use darkswap_proto::order::{verify_order_message, Freshness};
    use darkswap_proto::order_batch::verify_order_messages;

    fn benches(c: &mut Criterion) {
        let messages = page::sync_page();
        let pair = page::pair();
        let mut group = c.benchmark_group("verify a book-sync page (1,000 orders, 100 makers)");
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function("one by one", |b| {
            b.iter(|| {
                messages
                    .iter()
                    .filter(|m| {
                        verify_order_message(m, Some(&pair), Freshness::Stored, page::NOW).is_ok()
                    })
                    .count()
            })
        });
        group.bench_function("as a batch", |b| {
            b.iter(|| {
                verify_order_messages(&messages, Some(&pair), Freshness::Stored, page::NOW)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            })
        });
        group.finish();
    }

    pub fn main() {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
}
