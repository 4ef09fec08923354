//! Edge benchmark: how long an honest trader takes to reserve (over WebSocket, as a page does)
//! and to fetch `/api/relay-info`, on a relay with its default limits, quiet and under each
//! attack at its edges, sustained for the whole measurement:
//! - `half-open`: 8 addresses each keeping 100 WebSocket upgrades half-open (re-opened as the
//!   relay closes them);
//! - `stun`: a STUN flood on the WebRTC-direct port from 40 addresses, each packet a new
//!   handshake (new source port, new ufrag). Native clients cannot dial WebRTC-direct, so only
//!   the other transports' traders are measured: a WebRTC-direct dial during this flood finds
//!   the WebRTC share of handshake slots full, and a page then falls back to WebSocket;
//! - `slow-http`: 8 addresses each keeping 100 HTTP connections whose headers never end;
//! - `all` of them at once.
//!
//! Each attack runs `--warm-up` seconds (default 5) before the honest traders come, then on
//! until they are done. For each: the honest reservation and fetch times (median, 99th percentile, worst), the
//! relay's CPU time and RSS, and what it refused, by reason. Prints figures; pass/fail is not its
//! business. Run through `scripts/bench-edges`; `--quick` (fewer traders, short floods) runs in
//! `scripts/test-all`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::Multiaddr;
use darkswap_net::{NodeConfig, NodeEvent, RelayStatus};
use darkswap_tests::hostile::{
    attacker, connect_from, socket_of, stun_binding_request, UNFINISHED_REQUEST,
};
use darkswap_tests::stats::percentile;
use darkswap_tests::{http_get, Peer, Ports, Relay};
use tokio::io::AsyncWriteExt;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;

#[derive(Clone, Copy, PartialEq)]
enum Attack {
    Quiet,
    HalfOpen,
    Stun,
    SlowHttp,
    All,
}

impl Attack {
    fn name(self) -> &'static str {
        match self {
            Attack::Quiet => "quiet",
            Attack::HalfOpen => "half-open",
            Attack::Stun => "stun",
            Attack::SlowHttp => "slow-http",
            Attack::All => "all",
        }
    }

    fn includes(self, other: Attack) -> bool {
        self == other || self == Attack::All
    }
}

/// Keeps `per_address` TCP connections from each of `hosts` open to `to`, each sending `opening`
/// and never finishing it; re-opens what the relay closes, until `stop`.
fn hold_half_open(
    tasks: &mut JoinSet<()>,
    hosts: std::ops::Range<u8>,
    per_address: usize,
    to: SocketAddr,
    opening: &'static [u8],
    stop: Arc<AtomicBool>,
) {
    for host in hosts {
        for _ in 0..per_address {
            let stop = stop.clone();
            tasks.spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(mut s) = connect_from(attacker(host), to).await else {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    };
                    let _ = s.write_all(opening).await;
                    // Wait for the relay to close it (or the end), then open another.
                    let mut buf = [0u8; 512];
                    loop {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        match tokio::time::timeout(Duration::from_millis(200), s.readable()).await {
                            Err(_) => continue,
                            Ok(_) => match s.try_read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(_) => continue,
                            },
                        }
                    }
                }
            });
        }
    }
}

/// Sends STUN binding requests from fresh sockets on 40 addresses at about `per_second`, until
/// `stop`; counts what it sent in `sent`.
fn stun_flood(
    tasks: &mut JoinSet<()>,
    to: SocketAddr,
    per_second: u64,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) {
    tasks.spawn(async move {
        let mut n: u64 = 0;
        let batch = (per_second / 50).max(1);
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            for _ in 0..batch {
                let host = (n % 40) as u8;
                let Ok(s) = UdpSocket::bind(SocketAddr::new(attacker(host), 0)).await else {
                    continue;
                };
                let ufrag = format!("libp2p+webrtc+v1/flood{n:016}");
                if s.send_to(&stun_binding_request(&ufrag, n), to)
                    .await
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }
    });
}

fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, worst {:.1} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    )
}

/// One honest trader after another reserves over `addr`; the time each took, and how many
/// did not within `timeout`.
async fn honest_reservations(
    addr: &Multiaddr,
    traders: usize,
    timeout: Duration,
) -> Result<(Vec<Duration>, usize)> {
    let (mut times, mut failed) = (Vec::new(), 0);
    for _ in 0..traders {
        let started = Instant::now();
        let mut config = NodeConfig::new(vec![addr.clone()]);
        config.directory_interval = Duration::from_secs(3600);
        let mut peer = Peer::start_with(config).await?;
        let reserved = peer
            .wait_for(timeout, |e| {
                matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
            })
            .await;
        match reserved {
            Ok(()) => times.push(started.elapsed()),
            Err(_) => failed += 1,
        }
    }
    Ok((times, failed))
}

fn honest_fetches(url: &str, n: usize) -> (Vec<Duration>, usize) {
    let (mut times, mut failed) = (Vec::new(), 0);
    for _ in 0..n {
        let started = Instant::now();
        match http_get(url) {
            Ok((200, _)) => times.push(started.elapsed()),
            _ => failed += 1,
        }
    }
    (times, failed)
}

const REFUSALS: &[&str] = &[
    r#"darkswap_relay_connections_denied_total{reason="ip_pending_limit"}"#,
    r#"darkswap_relay_connections_denied_total{reason="webrtc_pending_limit"}"#,
    r#"darkswap_relay_connections_denied_total{reason="stream_pending_limit"}"#,
    r#"darkswap_relay_connections_denied_total{reason="connection_limit"}"#,
    r#"darkswap_relay_http_connections_refused_total{reason="ip_limit"}"#,
    r#"darkswap_relay_http_connections_dropped_total{reason="header_timeout"}"#,
];

async fn phase(attack: Attack, traders: usize, warm_up: Duration) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let idle_rss = relay.rss_bytes()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stun_sent = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    if attack.includes(Attack::HalfOpen) {
        let ws = socket_of(&relay.ws_addr())?;
        let opening = b"GET / HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n";
        hold_half_open(&mut tasks, 0..8, 100, ws, opening, stop.clone());
    }
    if attack.includes(Attack::SlowHttp) {
        let http: SocketAddr = relay.http.trim_start_matches("http://").parse()?;
        hold_half_open(
            &mut tasks,
            8..16,
            100,
            http,
            UNFINISHED_REQUEST,
            stop.clone(),
        );
    }
    if attack.includes(Attack::Stun) {
        let webrtc = socket_of(&relay.webrtc_addr())?;
        stun_flood(&mut tasks, webrtc, 2_000, stop.clone(), stun_sent.clone());
    }
    tokio::time::sleep(warm_up).await;
    let cpu_before = relay.cpu_seconds()?;
    let started = Instant::now();
    let (reservations, failed) =
        honest_reservations(&relay.ws_addr(), traders, Duration::from_secs(20)).await?;
    let (fetches, fetch_failed) =
        honest_fetches(&format!("{}/api/relay-info", relay.http), traders);
    let cpu = relay.cpu_seconds()? - cpu_before;
    let secs = started.elapsed().as_secs_f64();
    let rss = relay.rss_bytes()?;
    let pending = relay.metric("darkswap_relay_handshakes_pending")?;
    let http_open = relay.metric("darkswap_relay_http_connections_open")?;
    stop.store(true, Ordering::Relaxed);
    println!("attack {}:", attack.name());
    println!(
        "  honest WebSocket reservations: {} of {traders} ({})",
        reservations.len(),
        summary(reservations)
    );
    if failed > 0 {
        println!("  {failed} honest traders not reserved within 20 s");
    }
    println!(
        "  honest GET /api/relay-info: {} of {traders} ({})",
        traders - fetch_failed,
        summary(fetches)
    );
    println!(
        "  relay CPU {:.0} % of one core, RSS {:.1} MiB ({:+.1} MiB from idle), handshakes pending {pending}, HTTP connections open {http_open}",
        cpu / secs * 100.0,
        rss as f64 / 1048576.0,
        (rss as f64 - idle_rss as f64) / 1048576.0
    );
    if attack.includes(Attack::Stun) {
        println!(
            "  STUN packets sent: {} (each a new handshake)",
            stun_sent.load(Ordering::Relaxed)
        );
    }
    let mut refused = Vec::new();
    for series in REFUSALS {
        let v = relay.metric(series)?;
        if v > 0.0 {
            refused.push(format!("{series} {v}"));
        }
    }
    println!(
        "  refused: {}",
        if refused.is_empty() {
            "nothing".to_string()
        } else {
            refused.join(", ")
        }
    );
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mut traders, mut warm_up, mut only) = (50usize, Duration::from_secs(5), None);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                traders = 5;
                warm_up = Duration::from_secs(1);
            }
            "--traders" => traders = args.next().unwrap_or_default().parse()?,
            "--attack" => only = args.next(),
            "--warm-up" => {
                warm_up = Duration::from_secs(args.next().unwrap_or_default().parse()?)
            }
            other => bail!(
                "unknown argument {other} (--traders N, --attack quiet|half-open|stun|slow-http|all, --warm-up SECS, --quick)"
            ),
        }
    }
    for attack in [
        Attack::Quiet,
        Attack::HalfOpen,
        Attack::Stun,
        Attack::SlowHttp,
        Attack::All,
    ] {
        if only.as_deref().is_none_or(|o| o == attack.name()) {
            phase(attack, traders, warm_up).await?;
        }
    }
    Ok(())
}
