//! Discovery of a new relay, with real relays on loopback: A and B peer; C starts and peers with
//! B only. Measured from C's "ready": when A serves C's record in relay-info (one hop through B),
//! and when a native client of A (the node's relay pool, asking A for records at the same period)
//! has C in its pool, measured. Prints median, p95 and max over the runs, for the announce period
//! given. Run through `scripts/bench-federation`.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::PeerId;
use darkswap_net::{NodeConfig, NodeEvent};
use darkswap_proto::relay_record::SignedRelayRecord;
use darkswap_proto::{unix_time_ms, RelayInfo};
use darkswap_tests::stats::percentile;
use darkswap_tests::{Peer, Ports, Relay};

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: median {:.2} s, p95 {:.2} s, max {:.2} s over {} runs",
        percentile(&samples, 0.5).as_secs_f64(),
        percentile(&samples, 0.95).as_secs_f64(),
        samples.last().map_or(0.0, Duration::as_secs_f64),
        samples.len()
    );
}

fn serves(relay: &Relay, who: PeerId) -> Result<bool> {
    let (_, body) = relay.get("/api/relay-info")?;
    let info = RelayInfo::parse(body.as_bytes())?;
    Ok(info.records.iter().any(|h| {
        darkswap_relays::from_hex(h)
            .and_then(|b| SignedRelayRecord::verify(&b, unix_time_ms()).ok())
            .is_some_and(|r| r.relay() == who)
    }))
}

/// What a relay's metrics say of its federation, for a run that failed: its connections, its
/// peer relays, its proofs both ways and its records (non-zero series only).
fn federation_state(relay: &Relay) -> String {
    let Ok((_, body)) = relay.get("/metrics") else {
        return "  /metrics unreadable".into();
    };
    body.lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.starts_with("darkswap_relay_federation_proofs_total")
                    || l.starts_with("darkswap_relay_relay_record")
                    || l.starts_with("darkswap_relay_peer_relay")
                    || l.starts_with("darkswap_relay_auth_attempts_total{method=\"relay\"")
                    || l.starts_with("darkswap_relay_connections_active")
                    || l.starts_with("darkswap_relay_connections_denied_total")
                    || l.starts_with("darkswap_relay_requests_unreadable_total"))
                && !l.ends_with(" 0")
        })
        .map(|l| format!("  {l}\n"))
        .collect()
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10);
    let period: u64 = args.next().and_then(|n| n.parse().ok()).unwrap_or(5);
    let announce = period.to_string();
    let ttl = (period * 10).to_string();
    let flags = |name: &'static str| -> Vec<String> {
        [
            "--record-announce-secs",
            &announce,
            "--record-ttl-secs",
            &ttl,
            "--relay-name",
            name,
        ]
        .map(String::from)
        .to_vec()
    };
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    // B lists nobody and takes any relay that proves itself: A, then each C.
    let mut b_args = flags("relay B");
    b_args.extend(["--federation-accept".into(), "any".into()]);
    let b = Relay::start(
        db.path(),
        Ports::default(),
        &b_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let mut a_args = flags("relay A");
    a_args.extend(["--peer".into(), b.tcp_addr().to_string()]);
    let a = Relay::start(
        da.path(),
        Ports::default(),
        &a_args.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    let (mut at_relay, mut at_client) = (Vec::new(), Vec::new());
    for run in 0..runs {
        // A client of A that asks for records at the announce period.
        let mut config = NodeConfig::new(vec![a.tcp_addr()]);
        config.records_interval = Duration::from_secs(period);
        let mut client = Peer::start_with(config).await?;
        client.reserved().await?;
        let dc = tempfile::tempdir()?;
        let mut c_args = flags("relay C");
        c_args.extend(["--peer".into(), b.tcp_addr().to_string()]);
        // B takes C as a peer relay by C's proof (B lists nobody): one side listing is enough.
        let t0 = Instant::now();
        let c = Relay::start(
            dc.path(),
            Ports::default(),
            &c_args.iter().map(String::as_str).collect::<Vec<_>>(),
        )?;
        let started = t0.elapsed();
        let deadline = Instant::now() + Duration::from_secs(period * 6 + 30);
        let mut relay_at = None;
        let mut client_at = None;
        while relay_at.is_none() || client_at.is_none() {
            if Instant::now() > deadline {
                for (name, relay) in [("A", &a), ("B", &b), ("C", &c)] {
                    eprintln!("{name} ({}):\n{}", relay.peer_id, federation_state(relay));
                }
                bail!("run {run}: C not discovered (relay {relay_at:?}, client {client_at:?})");
            }
            if relay_at.is_none() && serves(&a, c.peer_id)? {
                relay_at = Some(t0.elapsed() - started);
            }
            if client_at.is_none() {
                let seen = client
                    .wait_for(Duration::from_millis(100), |e| match e {
                        NodeEvent::RelayPool(report) => report
                            .relays
                            .iter()
                            .any(|r| r.relay == c.peer_id && r.rtt_ms.is_some())
                            .then_some(()),
                        _ => None,
                    })
                    .await;
                if seen.is_ok() {
                    client_at = Some(t0.elapsed() - started);
                }
            }
        }
        at_relay.extend(relay_at);
        at_client.extend(client_at);
        c.stop()?;
    }
    println!("announce period {period} s (relays and the client ask for records that often)");
    report(
        "a new relay's record served by a relay one hop away",
        at_relay,
    );
    report("a new relay in a client's pool, measured", at_client);
    Ok(())
}
