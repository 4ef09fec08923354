//! Failover of a trader's relay link, with real relays on loopback: A peers with B; a maker on
//! A has B in its pool (learned from A's records, measured by a probe) and an order live on
//! both relays. A is killed (SIGKILL); measured from the kill: when the maker's node moves the
//! link to B, when it is reserved on B, and when B accepts the maker's order again (published
//! again through B: with A dead nothing else can bring B an order message). Twice: with a
//! standby reservation on B held before the kill (K = 2, the default), and with one reservation
//! only (K = 1: the node dials B, authenticates and reserves after the kill). Prints median,
//! p95 and max over the runs. Run through `scripts/bench-failover`.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use darkswap_net::{NodeConfig, NodeEvent, RelayStatus};
use darkswap_tests::stats::percentile;
use darkswap_tests::{http_get, metric_value, sell, Peer, Ports, Relay};
use futures::StreamExt;

const T: Duration = Duration::from_secs(30);
const ACCEPTED_ORDERS: &str = "darkswap_relay_order_messages_accepted_total{kind=\"order\"}";

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: median {:.0} ms, p95 {:.0} ms, max {:.0} ms over {} runs",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.95).as_secs_f64() * 1e3,
        samples.last().map_or(0.0, Duration::as_secs_f64) * 1e3,
        samples.len()
    );
}

fn accepted(http: &str) -> Result<f64> {
    let (_, body) = http_get(&format!("{http}/metrics"))?;
    metric_value(&body, ACCEPTED_ORDERS).ok_or_else(|| anyhow!("{ACCEPTED_ORDERS} not exported"))
}

/// One run: (moving, reserved, orders accepted again), each from the kill.
async fn run(
    pair: &darkswap_orderbook::Pair,
    reservations: usize,
) -> Result<(Duration, Duration, Duration)> {
    let fast = ["--record-announce-secs", "1", "--record-ttl-secs", "4"];
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut b_args = fast.to_vec();
    b_args.extend(["--federation-accept", "any"]);
    let b = Relay::start(db.path(), Ports::default(), &b_args)?;
    let b_addr = b.tcp_addr().to_string();
    let mut a_args = fast.to_vec();
    a_args.extend(["--peer", &b_addr]);
    let a = Relay::start(da.path(), Ports::default(), &a_args)?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut config = NodeConfig::new(vec![a.tcp_addr()]);
    config.records_interval = Duration::from_secs(1);
    config.reservations = reservations;
    let mut maker = Peer::trader_with(config, pair).await?;
    let b_id = b.peer_id;
    maker
        .wait_for(T, |e| match e {
            NodeEvent::RelayPool(r) => r
                .relays
                .iter()
                .any(|v| v.relay == b_id && v.rtt_ms.is_some() && v.rank.is_some())
                .then_some(()),
            _ => None,
        })
        .await?;
    // With K = 2, the standby on B holds its reservation.
    maker.reachable_through(reservations, T).await?;
    // An order live on both relays (gossip meshes form on a heartbeat: retried).
    let mut on_b = false;
    for _ in 0..10 {
        maker.handle.place_order(pair.clone(), sell(42, 300))?;
        if b.metric_eventually(ACCEPTED_ORDERS, Duration::from_secs(2), |v| v >= 1.0)
            .await
            .is_ok()
        {
            on_b = true;
            break;
        }
    }
    if !on_b {
        bail!("the maker's order never reached B through A");
    }
    let before = b.metric(ACCEPTED_ORDERS)?;
    let http = b.http.clone();
    let t0 = Instant::now();
    a.kill()?;
    let again = tokio::task::spawn_blocking(move || -> Result<Duration> {
        while t0.elapsed() < T {
            if accepted(&http)? > before {
                return Ok(t0.elapsed());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        bail!("B never accepted the maker's order again")
    });
    let moving = maker
        .wait_for(T, |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::FailingOver { to, .. }) if *to == b_id)
                .then(|| t0.elapsed())
        })
        .await?;
    let reserved = maker
        .wait_for(T, |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then(|| t0.elapsed())
        })
        .await?;
    // Keep reading the maker's events while B's counter is polled.
    let again = tokio::select! {
        again = again => again??,
        _ = async { while maker.events.next().await.is_some() {} } => bail!("the maker's node stopped"),
    };
    b.stop()?;
    Ok((moving, reserved, again))
}

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let pair = darkswap_orderbook::Pair::parse("RUNE:FAILOVERBENCH/BTC")?;
    for (reservations, how) in [
        (2, "a standby reservation on B (K = 2)"),
        (1, "one reservation (K = 1)"),
    ] {
        let (mut moving, mut reserved, mut again) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..runs {
            let (m, r, a) = run(&pair, reservations)
                .await
                .map_err(|e| e.context(format!("K = {reservations}, run {i}")))?;
            moving.push(m);
            reserved.push(r);
            again.push(a);
        }
        println!("failover: relay A killed (SIGKILL) under a maker with B in its pool, {how}");
        report("  the link moves to B", moving);
        report("  reserved on B", reserved);
        report("  B accepts the maker's order again", again);
    }
    Ok(())
}
