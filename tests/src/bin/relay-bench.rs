//! Relay benchmark: RSS idle and with N native clients holding reservations, time for all of
//! them to reserve, and message throughput through one circuit. Prints figures; pass/fail is not
//! its business. Run through `scripts/bench-relay` (release build, raised fd limit).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::{NodeConfig, NodeEvent};
use darkswap_tests::{Peer, Ports, Relay};
use futures::StreamExt;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut clients = 1000usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--clients" => clients = args.next().unwrap_or_default().parse()?,
            other => bail!("unknown argument {other} (expected --clients N)"),
        }
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
        ],
    )?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = relay.rss_bytes()?;
    println!("relay RSS idle: {:.1} MiB", mib(idle));

    // Throughput through one circuit, before the load.
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
    let total_msgs = 4096usize;
    let window = 32usize;
    let start = Instant::now();
    let (mut sent, mut done) = (0usize, 0usize);
    while done < total_msgs {
        while sent < total_msgs && sent - done < window {
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
    let bytes = (total_msgs * chunk.len()) as f64;
    println!(
        "circuit throughput (native → relay → native, {total_msgs} × 4 KiB messages, {window} in flight): {:.1} MiB/s, {:.0} msg/s",
        bytes / secs / (1024.0 * 1024.0),
        total_msgs as f64 / secs
    );
    drop(a);
    drain.abort();

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
