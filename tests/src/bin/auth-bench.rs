//! Auth round trips against the real relay on loopback: a full identity challenge-response
//! (two request/response exchanges: challenge, then answer → token) and a token presentation
//! (one exchange), over one TCP connection. Prints median and p99. Run through
//! `scripts/bench-auth` (release build).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_proto::auth::{AuthResponse, Grant};
use darkswap_tests::probe::Probe;
use darkswap_tests::stats::percentile;
use darkswap_tests::{Ports, Relay};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: median {:.0} µs, p99 {:.0} µs, min {:.0} µs over {} runs",
        percentile(&samples, 0.5).as_secs_f64() * 1e6,
        percentile(&samples, 0.99).as_secs_f64() * 1e6,
        samples[0].as_secs_f64() * 1e6,
        samples.len()
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(500);
    let dir = tempfile::tempdir()?;
    // The bench is one peer asking many times: lift the per-peer and per-IP challenge limits.
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--auth-challenge-rate-per-peer",
            "1000000",
            "--auth-challenge-rate-per-ip",
            "1000000",
        ],
    )?;
    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    // Warm up the stream machinery.
    let mut token = Vec::new();
    for _ in 0..20 {
        if let AuthResponse::Granted(Grant { token: t, .. }) = probe.authenticate().await? {
            token = t;
        }
    }
    if token.is_empty() {
        bail!("the relay never granted the probe");
    }
    let mut full = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let answer = probe.authenticate().await?;
        full.push(t0.elapsed());
        if !matches!(answer, AuthResponse::Granted(_)) {
            bail!("refused: {answer:?}");
        }
    }
    let mut presented = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t0 = Instant::now();
        let answer = probe
            .request(darkswap_proto::auth::AuthRequest::Token {
                token: token.clone(),
            })
            .await?;
        presented.push(t0.elapsed());
        if !matches!(answer, AuthResponse::Granted(_)) {
            bail!("token refused: {answer:?}");
        }
    }
    report("identity challenge-response (2 round trips)", full);
    report("token presentation (1 round trip)", presented);
    Ok(())
}
