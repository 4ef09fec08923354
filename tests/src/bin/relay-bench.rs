//! Relay benchmark: RSS idle and with N native clients holding reservations, time for all of
//! them to reserve, message throughput through one circuit, and the same throughput through a
//! relay with metrics off (the metrics overhead on the forwarding path). Prints figures; pass/fail is not
//! its business. Run through `scripts/bench-relay` (release build, raised fd limit); its
//! `--quick` form (a few clients, short runs, debug build) runs in `scripts/test-all`.
//!
//! Arguments: `--clients N` (default 1000), `--messages N` per throughput run (default 4096),
//! `--runs N` alternating metrics-on/off throughput runs (default 5).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::{NodeConfig, NodeEvent};
use darkswap_tests::{Peer, Ports, Relay};
use futures::StreamExt;

const WINDOW: usize = 32;

/// `messages` messages of 4 KiB from one native peer to another through `relay`, `WINDOW` in
/// flight: returns MiB/s and messages/s.
async fn circuit_throughput(relay: &Relay, messages: usize) -> Result<(f64, f64)> {
    let mut a = Peer::start(vec![relay.tcp_addr()]).await?;
    let mut b = Peer::start(vec![relay.tcp_addr()]).await?;
    a.reserved().await?;
    b.reserved().await?;
    let b_id = b.id();
    let drain = tokio::spawn(async move { while b.events.next().await.is_some() {} });
    let chunk = "x".repeat(darkswap_proto::MAX_MESSAGE_TEXT_BYTES);
    // Warm up: open the circuit.
    let id = a.handle.send_message(b_id, "warm-up".into())?;
    a.wait_for(Duration::from_secs(20), |e| match e {
        NodeEvent::MessageDelivered { id: got, .. } if *got == id => Some(()),
        _ => None,
    })
    .await?;
    let start = Instant::now();
    let (mut sent, mut done) = (0usize, 0usize);
    while done < messages {
        while sent < messages && sent - done < WINDOW {
            a.handle.send_message(b_id, chunk.clone())?;
            sent += 1;
        }
        a.wait_for(Duration::from_secs(20), |e| match e {
            NodeEvent::MessageDelivered { .. } => Some(()),
            NodeEvent::MessageFailed { reason, .. } => panic!("message failed: {reason}"),
            _ => None,
        })
        .await?;
        done += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    drop(a);
    drain.abort();
    let bytes = (messages * chunk.len()) as f64;
    Ok((bytes / secs / (1024.0 * 1024.0), messages as f64 / secs))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mut clients, mut messages, mut runs) = (1000usize, 4096usize, 5usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--clients" => clients = value.parse()?,
            "--messages" => messages = value.parse()?,
            "--runs" => runs = value.parse()?,
            other => bail!("unknown argument {other} (--clients N, --messages N, --runs N)"),
        }
    }
    if runs == 0 || messages == 0 {
        bail!("--runs and --messages must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let n = clients.to_string();
    let limit = (clients * 2 + 16).to_string();
    // Every client comes from 127.0.0.1: lift the per-IP rate limits for this measurement only.
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-reservations",
            &limit,
            "--max-connections",
            &limit,
            "--reservation-rate-per-ip",
            &limit,
            "--reservation-rate-per-peer",
            "10",
            "--auth-challenge-rate-per-ip",
            &limit,
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = relay.rss_bytes()?;
    println!("relay RSS idle: {:.1} MiB", mib(idle));

    // Throughput through one circuit, before the load.
    let (mib_s, msg_s) = circuit_throughput(&relay, messages).await?;
    println!(
        "circuit throughput (native → relay → native, {messages} × 4 KiB messages, {WINDOW} in flight): {mib_s:.1} MiB/s, {msg_s:.0} msg/s"
    );

    // The same with a relay that records no metrics, alternating, in the same run.
    let off_dir = tempfile::tempdir()?;
    let relay_off = Relay::start(off_dir.path(), Ports::default(), &["--metrics", "false"])?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        on.push(circuit_throughput(&relay, messages).await?.0);
        off.push(circuit_throughput(&relay_off, messages).await?.0);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (on, off) = (median(&mut on), median(&mut off));
    println!(
        "metrics overhead on the forwarding path: {on:.1} MiB/s with metrics, {off:.1} MiB/s without ({:+.1} %), median of {runs} alternating runs",
        (off - on) / off * 100.0
    );
    drop(relay_off);

    // N clients holding reservations.
    let start = Instant::now();
    let mut peers = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
        config.directory_interval = Duration::from_secs(3600);
        peers.push(Peer::start_with(config).await?);
    }
    let mut reserved = 0;
    for p in peers.iter_mut() {
        p.reserved().await?;
        reserved += 1;
    }
    let took = start.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = relay.rss_bytes()?;
    let active = relay.metric("darkswap_relay_reservations_active")?;
    println!(
        "{reserved} clients reserved in {:.1} s; relay reports {active} active reservations",
        took.as_secs_f64()
    );
    println!(
        "relay RSS with {n} reservations: {:.1} MiB ({:.1} KiB per client above idle)",
        mib(loaded),
        (loaded.saturating_sub(idle)) as f64 / 1024.0 / clients as f64
    );
    Ok(())
}
