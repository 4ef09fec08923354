//! Auth CPU costs natively (the same workloads run in Chromium in tests/wasm.rs).
//! `cargo bench -p darkswap-auth --bench auth`

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    let mut c = criterion::Criterion::default().configure_from_args();
    let f = darkswap_auth::bench::Fixture::new();
    assert!(f.verify_identity() && f.verify_shared_key() && f.verify_token());
    c.bench_function("identity answer (client signs)", |b| {
        b.iter(|| f.sign_answer())
    });
    c.bench_function("identity answer check (relay)", |b| {
        b.iter(|| f.verify_identity())
    });
    c.bench_function("shared-key answer check (relay)", |b| {
        b.iter(|| f.verify_shared_key())
    });
    c.bench_function("token check (relay)", |b| b.iter(|| f.verify_token()));
    c.bench_function("identity stamp check (relay)", |b| {
        b.iter(|| f.check_stamp())
    });
    // Per slice of STAMP_TRIES hashes: 2^bits hashes is a stamp's expected cost.
    c.bench_function("identity stamp search, 1,024 tries (client)", |b| {
        b.iter(|| f.search_stamp())
    });
    c.final_summary();
}
