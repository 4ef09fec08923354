//! Relay benchmark: RSS idle and with N native clients holding reservations, time for all of
//! them to reserve, message throughput through one circuit, and the same throughput through a
//! relay with metrics off (the metrics overhead on the forwarding path). Prints figures; pass/fail is not
//! its business. Run through `scripts/bench-relay` (release build, raised fd limit); its
//! `--quick` form (a few clients, short runs, debug build) runs in `scripts/test-all`.
//!
//! Arguments: `--clients N` (default 1000), `--messages N` per throughput run (default 4096),
//! `--runs N` alternating metrics-on/off throughput runs (default 5), `--storm`: then stop the
//! relay under all N clients and start it again on the same ports and data (every client drops
//! at once and reconnects, presenting the token it got the first time), and report the time
//! until 50 %, 99 % and 100 % hold a reservation again, the relay's peak RSS meanwhile, and how
//! the clients proved themselves.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::{NodeConfig, NodeEvent, RelayStatus};
use darkswap_tests::{rss_of, Peer, Ports, Relay};
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
    let (mut clients, mut messages, mut runs, mut storm) = (1000usize, 4096usize, 5usize, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--storm" {
            storm = true;
            continue;
        }
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--clients" => clients = value.parse()?,
            "--messages" => messages = value.parse()?,
            "--runs" => runs = value.parse()?,
            other => {
                bail!("unknown argument {other} (--clients N, --messages N, --runs N, --storm)")
            }
        }
    }
    if runs == 0 || messages == 0 {
        bail!("--runs and --messages must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let n = clients.to_string();
    let limit = (clients * 2 + 16).to_string();
    // Every client comes from 127.0.0.1: lift the per-IP rate limits and caps for this
    // measurement only (it stands for clients at as many addresses).
    let mut flags = vec![
        "--max-reservations",
        limit.as_str(),
        "--max-connections",
        limit.as_str(),
        "--reservation-rate-per-ip",
        limit.as_str(),
        "--reservation-rate-per-peer",
        "10",
        "--auth-challenge-rate-per-ip",
        limit.as_str(),
        "--max-connections-per-ip",
        limit.as_str(),
        "--max-pending-per-ip",
        "512",
        "--pending-kept-for-new-addresses",
        "0",
    ];
    // The cap on one address's connections still below the reservation level too, on a relay
    // that has it (`DARKSWAP_RELAY_BIN` may name an older build).
    let help = std::process::Command::new(darkswap_tests::relay_bin())
        .arg("--help")
        .output()?;
    if String::from_utf8_lossy(&help.stdout).contains("--max-anonymous-per-ip") {
        flags.extend(["--max-anonymous-per-ip", limit.as_str()]);
    }
    let ports = Ports::fixed();
    let relay = Relay::start(dir.path(), ports, &flags)?;
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
    let cpu_before = relay.cpu_seconds()?;
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
    let cpu = relay.cpu_seconds()? - cpu_before;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let loaded = relay.rss_bytes()?;
    let active = relay.metric("darkswap_relay_reservations_active")?;
    println!(
        "{reserved} clients reserved in {:.1} s; relay reports {active} active reservations; relay CPU {cpu:.1} s while they came",
        took.as_secs_f64()
    );
    println!(
        "relay RSS with {n} reservations: {:.1} MiB ({:.1} KiB per client above idle)",
        mib(loaded),
        (loaded.saturating_sub(idle)) as f64 / 1024.0 / clients as f64
    );
    if storm {
        reconnect_storm(relay, dir.path(), ports, &flags, peers).await?;
    }
    Ok(())
}

/// Stops the relay under `peers` (all drop at once), starts it again on the same ports and data
/// (same PeerId and key, so their tokens stay good), and reports how long until they hold
/// reservations again.
async fn reconnect_storm(
    relay: Relay,
    dir: &Path,
    ports: Ports,
    flags: &[&str],
    peers: Vec<Peer>,
) -> Result<()> {
    let n = peers.len();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(n);
    let mut tasks = Vec::with_capacity(n);
    for mut peer in peers {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            let failed = |e: &NodeEvent| {
                matches!(e, NodeEvent::Relay(RelayStatus::Failed { .. })).then_some(())
            };
            let reserved = |e: &NodeEvent| {
                matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
            };
            peer.wait_for(Duration::from_secs(60), failed).await?;
            peer.wait_for(Duration::from_secs(300), reserved).await?;
            let _ = tx.send(Instant::now()).await;
            anyhow::Ok(peer)
        }));
    }
    drop(tx);
    relay.stop()?;
    let relay = Relay::start(dir, ports, flags)?;
    let back = Instant::now();
    // The relay's peak memory while its clients come back.
    let (peak, done) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicBool::new(false)),
    );
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), relay.pid());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(rss) = rss_of(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut times = Vec::with_capacity(n);
    while let Some(at) = rx.recv().await {
        times.push(at.saturating_duration_since(back));
    }
    done.store(true, Ordering::Relaxed);
    sampler.await?;
    let mut kept = Vec::with_capacity(n);
    for task in tasks {
        if let Ok(Ok(peer)) = task.await {
            kept.push(peer);
        }
    }
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len().max(1)) - 1;
        times.get(i).map_or(f64::NAN, |d| d.as_secs_f64())
    };
    let count = |series: &str| relay.metric(series).unwrap_or(0.0);
    println!(
        "reconnect storm: relay restarted under {n} clients; {} reserved again (50 % after {:.2} s, 99 % after {:.2} s, 100 % after {:.2} s from the relay being ready); relay peak RSS {:.1} MiB",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0),
        mib(peak.load(Ordering::Relaxed)),
    );
    println!(
        "  they proved themselves with a token {} times and a challenge {} times; refused for rate {} times",
        count("darkswap_relay_auth_attempts_total{method=\"token\",reason=\"ok\"}"),
        count("darkswap_relay_auth_attempts_total{method=\"identity\",reason=\"ok\"}"),
        count("darkswap_relay_auth_rate_limited_total{scope=\"ip\"}")
            + count("darkswap_relay_auth_rate_limited_total{scope=\"peer\"}"),
    );
    drop(kept);
    Ok(())
}
