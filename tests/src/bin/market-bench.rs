//! Order-book network benchmark on loopback, through the real relay binary:
//! - propagation: one maker and `--peers` traders (default 20) follow a pair; the maker places
//!   `--orders` orders (default 100) one at a time; each trader notes when the order shows in its
//!   book. Prints p50 / p99 / max of place → visible;
//! - federated propagation: the same across three relays that peer with each other, with
//!   `--fed-traders` traders (default 100) spread over them and one maker on each relay; the p99
//!   over every trader, and apart for traders on the maker's relay and on another;
//! - joiner sync: `--book` orders (default 10,000) from 100 makers (more when the per-maker cap
//!   needs it) are published to the relay,
//!   then a new trader follows the pair; prints the time until its book holds them all;
//! - load: `--load-traders` watchers (default 1,000) follow a pair while `--load-makers` makers
//!   (default 20) publish `--load-rate` orders a second in all (default 100) for
//!   `--load-seconds` (default 20). Prints p50 / p99 / max of publish → arrival over every
//!   delivery, the share delivered, and the relay's CPU per accepted order. The watchers are bare
//!   gossipsub subscribers that timestamp arrivals and skip the signature checks a page makes, so
//!   the figures are the relay's, not those of 1,000 verifiers sharing its two cores.
//!
//! Run through `scripts/bench-market` (release build). Prints figures; no pass/fail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::gossipsub::MessageId;
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::libp2p::PeerId;
use darkswap_net::{unix_time_ms, Command, NodeEvent, TradingEvent};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::{sign_order_message, OrderAction, OrderBody, OrderSpec};
use darkswap_tests::stats::percentile;
use darkswap_tests::{sell, Peer, Ports, RawPublisher, Relay};
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mut peers, mut orders, mut book) = (20usize, 100usize, 10_000usize);
    let mut fed_traders = 100usize;
    let mut load = Load {
        traders: 1_000,
        makers: 20,
        rate: 100,
        seconds: 20,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--peers" => peers = value.parse()?,
            "--fed-traders" => fed_traders = value.parse()?,
            "--orders" => orders = value.parse()?,
            "--book" => book = value.parse()?,
            "--load-traders" => load.traders = value.parse()?,
            "--load-makers" => load.makers = value.parse()?,
            "--load-rate" => load.rate = value.parse()?,
            "--load-seconds" => load.seconds = value.parse()?,
            other => bail!(
                "unknown argument {other} (--peers N, --fed-traders N, --orders N, --book N, --load-traders N, --load-makers N, --load-rate N, --load-seconds N)"
            ),
        }
    }
    propagation(peers, orders).await?;
    federated_propagation(fed_traders, orders).await?;
    joiner_sync(book).await?;
    market_load(&load).await?;
    Ok(())
}

/// Relay flags for a crowd of `traders` on 127.0.0.1: per-IP limits raised so they stand for
/// traders at as many addresses.
fn crowd_flags(traders: usize) -> Vec<String> {
    let limit = (traders * 4 + 16).to_string();
    let mut flags: Vec<String> = Vec::new();
    for flag in [
        "--reservation-rate-per-ip",
        "--auth-challenge-rate-per-ip",
        "--max-connections",
        "--max-connections-per-ip",
    ] {
        flags.extend([flag.into(), limit.clone()]);
    }
    flags.extend(
        [
            "--max-pending-per-ip",
            "512",
            "--pending-kept-for-new-addresses",
            "0",
            "--max-orders-per-address",
            "1000000",
        ]
        .map(String::from),
    );
    flags
}

fn start_relay(dir: &tempfile::TempDir, flags: &[String]) -> Result<Relay> {
    Relay::start(
        dir.path(),
        Ports::default(),
        &flags.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// A trader watching `pair` whose book views are read by a task of its own: every order id it
/// sees for the first time goes to `seen` as (`n`, id, when). Returns its handle (the node runs
/// while one exists).
async fn watcher(
    n: usize,
    relay: &Relay,
    pair: &Pair,
    seen: mpsc::Sender<(usize, OrderId, Instant)>,
) -> Result<darkswap_net::NodeHandle> {
    // One reservation each (K = 1): a trader is on one relay, and an order reaches the traders
    // of the other relays across the relays' mesh, which is what is measured.
    let mut config = darkswap_net::NodeConfig::new(vec![relay.tcp_addr()]);
    config.reservations = 1;
    let mut peer = Peer::start_with(config).await?;
    peer.reserved().await?;
    peer.handle
        .command(Command::WatchPair { pair: pair.clone() })?;
    peer.book_where(Duration::from_secs(20), pair, |_| true)
        .await?;
    let handle = peer.handle.clone();
    tokio::spawn(async move {
        let mut known = std::collections::HashSet::new();
        let mut events = peer.events;
        while let Some(event) = events.next().await {
            if let NodeEvent::Trading(TradingEvent::Book(view)) = event {
                for o in &view.orders {
                    if known.insert(o.id) {
                        let _ = seen.send((n, o.id, Instant::now())).await;
                    }
                }
            }
        }
    });
    Ok(handle)
}

/// Place → visible, for each of `orders` orders placed one at a time, by the makers in turn
/// (`makers[i % len]`, an index into `handles`): the delay until each other trader's book shows
/// it (waiting up to 5 s for all of them). Samples are tagged with whether the trader shares the
/// maker's relay (`relay_of`).
async fn measure(
    pair: &Pair,
    handles: &[darkswap_net::NodeHandle],
    makers: &[usize],
    relay_of: impl Fn(usize) -> usize,
    orders: usize,
    seen: &mut mpsc::Receiver<(usize, OrderId, Instant)>,
) -> Result<Vec<(bool, Duration)>> {
    let mut placed: HashMap<OrderId, (Instant, usize)> = HashMap::new();
    let mut latencies = Vec::new();
    let others = handles.len() - 1;
    for i in 0..orders {
        let maker = makers[i % makers.len()];
        let id = handles[maker].place_order(pair.clone(), sell(10 + i as u64, 1_000 + i as u64))?;
        placed.insert(id, (Instant::now(), maker));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < others && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), seen.recv()).await {
                Ok(Some((n, seen_id, at))) => {
                    let Some(&(start, by)) = placed.get(&seen_id) else {
                        continue;
                    };
                    if n == by {
                        continue;
                    }
                    latencies.push((relay_of(n) == relay_of(by), at.duration_since(start)));
                    if seen_id == id {
                        got += 1;
                    }
                }
                _ => break,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if latencies.is_empty() {
        bail!("no order reached any trader");
    }
    Ok(latencies)
}

fn figures(samples: &[Duration]) -> String {
    let mut samples = samples.to_vec();
    samples.sort();
    if samples.is_empty() {
        return "no deliveries".into();
    }
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries)",
        ms(percentile(&samples, 0.5)),
        ms(percentile(&samples, 0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
        samples.len()
    )
}

async fn propagation(peers: usize, orders: usize) -> Result<()> {
    let pair = Pair::parse("RUNE:BENCH/BTC")?;
    let dir = tempfile::tempdir()?;
    let relay = start_relay(&dir, &crowd_flags(peers))?;
    let (seen_tx, mut seen_rx) = mpsc::channel::<(usize, OrderId, Instant)>(100_000);
    let mut handles = Vec::new();
    // Trader 0 is the maker.
    for n in 0..=peers {
        handles.push(watcher(n, &relay, &pair, seen_tx.clone()).await?);
    }
    drop(seen_tx);
    // Let subscriptions settle (the relay grafts everyone on its next heartbeat).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let latencies = measure(&pair, &handles, &[0], |_| 0, orders, &mut seen_rx).await?;
    let all: Vec<Duration> = latencies.iter().map(|(_, d)| *d).collect();
    println!(
        "propagation through one relay, {peers} traders, {orders} orders: {} of {} expected",
        figures(&all),
        peers * orders
    );
    Ok(())
}

/// Three relays, each listing the ones started before it (A; B → A; C → A, B), and `traders`
/// traders spread over them in turn; the first trader of each relay is a maker, and the makers
/// take turns placing `orders` orders. Each is timed to every other trader's book: the p99 over
/// all of them, and apart for traders on the maker's relay and on another.
async fn federated_propagation(traders: usize, orders: usize) -> Result<()> {
    const RELAYS: usize = 3;
    if traders < RELAYS + 1 {
        bail!("--fed-traders must be at least {}", RELAYS + 1);
    }
    let pair = Pair::parse("RUNE:FED/BTC")?;
    let dirs: Vec<tempfile::TempDir> = (0..RELAYS)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let mut relays: Vec<Relay> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        let mut flags = crowd_flags(traders.div_ceil(RELAYS));
        flags.extend(["--relay-name".into(), format!("R{i}")]);
        flags.extend(["--federation-accept".into(), "any".into()]);
        for earlier in &relays {
            flags.extend(["--peer".into(), earlier.tcp_addr().to_string()]);
        }
        relays.push(start_relay(dir, &flags)?);
    }
    // Every relay peered with both others before the traders come.
    let deadline = Instant::now() + Duration::from_secs(30);
    while relays.iter().any(|r| {
        r.metric("darkswap_relay_peer_relays_connected")
            .unwrap_or(0.0)
            < (RELAYS - 1) as f64
    }) {
        if Instant::now() > deadline {
            bail!("the three relays did not all peer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let relay_of = |n: usize| n % RELAYS;
    let (seen_tx, mut seen_rx) = mpsc::channel::<(usize, OrderId, Instant)>(200_000);
    let mut handles = Vec::new();
    for n in 0..traders {
        handles.push(watcher(n, &relays[relay_of(n)], &pair, seen_tx.clone()).await?);
    }
    drop(seen_tx);
    // Gossip meshes between the relays and to their traders form on the next heartbeats.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let makers: Vec<usize> = (0..RELAYS).collect();
    let latencies = measure(&pair, &handles, &makers, relay_of, orders, &mut seen_rx).await?;
    let pick = |same: Option<bool>| -> Vec<Duration> {
        latencies
            .iter()
            .filter(|(s, _)| same.is_none_or(|want| *s == want))
            .map(|(_, d)| *d)
            .collect()
    };
    println!(
        "propagation across {RELAYS} federated relays, {traders} traders, {orders} orders: {} of {} expected",
        figures(&pick(None)),
        (traders - 1) * orders
    );
    println!(
        "  traders on the maker's relay: {}",
        figures(&pick(Some(true)))
    );
    println!(
        "  traders on another relay: {}",
        figures(&pick(Some(false)))
    );
    Ok(())
}

async fn joiner_sync(book: usize) -> Result<()> {
    let pair = Pair::parse("RUNE:SYNC/BTC")?;
    let dir = tempfile::tempdir()?;
    // At least 100 makers, and enough that none holds more than a relay's per-maker cap.
    let makers = book
        .div_ceil(darkswap_market::MarketLimits::DEFAULT.max_orders_per_maker)
        .max(100);
    let per_maker = book.div_ceil(makers);
    // The publisher stands for a peer relay forwarding many makers' orders: trusted, since a
    // trader's own connection carries only its own orders.
    let forwarder = Keypair::generate_ed25519();
    let trusted = format!("{}=trusted", PeerId::from(forwarder.public()));
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--order-publish-burst",
            &(per_maker + 10).to_string(),
            "--auth-peer",
            &trusted,
        ],
    )?;
    let mut raw = RawPublisher::connect_as(&relay, &pair, forwarder).await?;
    let now = unix_time_ms();
    let mut published = 0;
    for m in 0..makers {
        let key = Keypair::generate_ed25519();
        for n in 0..per_maker {
            if published == book {
                break;
            }
            let body = bench_order(
                &pair,
                n,
                n as u64 % 100,
                1 + (m * n) as u64 % 1_000,
                now,
                3_600_000,
            );
            raw.publish_now(sign_order_message(&key, &body, now)?)?;
            published += 1;
        }
        raw.run_for(Duration::from_millis(20)).await;
    }
    let series = format!("darkswap_relay_live_orders{{pair=\"{pair}\"}}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        raw.run_for(Duration::from_millis(200)).await;
        let live = relay.metric(&series).unwrap_or(0.0) as usize;
        if live >= book {
            break;
        }
        if Instant::now() > deadline {
            bail!("the relay holds {live} of {book} orders after 60 s");
        }
    }
    let mut joiner = Peer::reserved_on(&relay).await?;
    let started = Instant::now();
    joiner
        .handle
        .command(Command::WatchPair { pair: pair.clone() })?;
    let (orders, reported) = joiner
        .wait_for(Duration::from_secs(60), |e| match e {
            NodeEvent::Trading(TradingEvent::BookSynced {
                orders, elapsed, ..
            }) => Some((*orders, *elapsed)),
            _ => None,
        })
        .await?;
    let view = joiner
        .book_where(Duration::from_secs(60), &pair, |v| v.total_orders >= book)
        .await?;
    println!(
        "joiner book sync: {} orders in {:.0} ms (sync reported {:.0} ms for {orders}; book shows {} orders)",
        book,
        ms(started.elapsed()),
        ms(reported),
        view.total_orders
    );
    Ok(())
}

/// The sustained-load phase's shape.
struct Load {
    traders: usize,
    makers: usize,
    rate: usize,
    seconds: u64,
}

async fn market_load(load: &Load) -> Result<()> {
    if load.makers == 0 || load.rate == 0 {
        bail!("--load-makers and --load-rate must be at least 1");
    }
    let pair = Pair::parse("RUNE:LOAD/BTC")?;
    let dir = tempfile::tempdir()?;
    let connections = (load.traders + load.makers + 16).to_string();
    // Each maker sends its share of the rate; its bucket must hold that, with room for the
    // bursts of a publisher that fell behind on a busy machine and catches up.
    let per_maker_rate = load.rate.div_ceil(load.makers);
    let per_maker_orders = per_maker_rate * load.seconds as usize + 10;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--reservation-rate-per-ip",
            &connections,
            "--auth-challenge-rate-per-ip",
            &connections,
            "--max-connections",
            &connections,
            "--max-connections-per-ip",
            &connections,
            "--max-pending-per-ip",
            "512",
            "--pending-kept-for-new-addresses",
            "0",
            // All on 127.0.0.1, standing for traders at as many addresses.
            "--max-orders-per-address",
            "1000000",
            "--order-publish-rate",
            &(per_maker_rate * 2).to_string(),
            "--order-publish-burst",
            &(per_maker_rate * 10 + 10).to_string(),
            "--max-orders-per-maker",
            &per_maker_orders.to_string(),
            "--gossip-rate-per-peer",
            "1000000",
        ],
    )?;
    let connect_start = Instant::now();
    // Arrivals are collected as they come, so the channel stays short.
    let (arrivals_tx, mut arrivals_rx) = tokio::sync::mpsc::channel(100_000);
    let collector = tokio::spawn(async move {
        let mut arrivals = Vec::new();
        while let Some(arrival) = arrivals_rx.recv().await {
            arrivals.push(arrival);
        }
        arrivals
    });
    let refused = Arc::new(AtomicU64::new(0));
    let mut watchers = tokio::task::JoinSet::new();
    for _ in 0..load.traders {
        let watcher = RawPublisher::connect(&relay, &pair).await?;
        watchers.spawn(watcher.watch(arrivals_tx.clone(), refused.clone()));
    }
    drop(arrivals_tx);
    let mut makers = Vec::new();
    for _ in 0..load.makers {
        makers.push(RawPublisher::connect(&relay, &pair).await?);
    }
    println!(
        "market load: {} watchers and {} makers connected and following {pair} in {:.1} s",
        load.traders,
        load.makers,
        connect_start.elapsed().as_secs_f64()
    );
    // Let the relay graft everyone into its mesh (its heartbeat is one second).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let accepted_series = "darkswap_relay_order_messages_accepted_total{kind=\"order\"}";
    let accepted_before = relay.metric(accepted_series).unwrap_or(0.0);
    let cpu_before = relay.cpu_seconds()?;
    let started = Instant::now();
    let period = Duration::from_secs_f64(load.makers as f64 / load.rate as f64);
    let per_maker = (load.rate * load.seconds as usize).div_ceil(load.makers);
    let mut publishers = tokio::task::JoinSet::new();
    for (m, mut maker) in makers.into_iter().enumerate() {
        let key = maker.key().clone();
        let pair = pair.clone();
        // Spread the makers over one period so the rate is even.
        let offset = period.mul_f64(m as f64 / load.makers as f64);
        publishers.spawn(async move {
            let mut sent: Vec<(MessageId, Instant)> = Vec::with_capacity(per_maker);
            let start = tokio::time::Instant::now() + offset;
            for n in 0..per_maker {
                let slot = start + period.mul_f64(n as f64);
                maker
                    .run_for(slot.saturating_duration_since(tokio::time::Instant::now()))
                    .await;
                let now = unix_time_ms();
                let body = bench_order(&pair, n, 0, 1 + n as u64, now, 600_000);
                let bytes = sign_order_message(&key, &body, now)?;
                let id = MessageId::from(Sha256::digest(&bytes).to_vec());
                sent.push((id, Instant::now()));
                maker.publish_now(bytes)?;
            }
            // Keep the last messages flowing out.
            maker.run_for(Duration::from_secs(2)).await;
            anyhow::Ok(sent)
        });
    }
    let mut sent: HashMap<MessageId, Instant> = HashMap::new();
    while let Some(result) = publishers.join_next().await {
        sent.extend(result??);
    }
    // The publishing window: first slot to last publish, plus the last one's period.
    let publish_secs = sent
        .values()
        .max()
        .map_or(0.0, |last| last.duration_since(started).as_secs_f64())
        + period.as_secs_f64();
    // Arrivals still in flight get a few seconds more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cpu = relay.cpu_seconds()? - cpu_before;
    let cpu_window = started.elapsed().as_secs_f64();
    let accepted = relay.metric(accepted_series).unwrap_or(0.0) - accepted_before;
    // Stopping the watchers drops the last senders, which ends the collector.
    watchers.abort_all();
    while watchers.join_next().await.is_some() {}
    let mut latencies: Vec<Duration> = collector
        .await?
        .into_iter()
        .filter_map(|(id, at)| sent.get(&id).map(|start| at.duration_since(*start)))
        .collect();
    let refused = refused.load(Ordering::Relaxed);
    latencies.sort();
    let expected = sent.len() * load.traders;
    println!(
        "market load: {} orders in {publish_secs:.1} s ({:.0}/s) to {} watchers: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} of {expected} deliveries ({:.1} %){}",
        sent.len(),
        sent.len() as f64 / publish_secs,
        load.traders,
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        latencies.len(),
        100.0 * latencies.len() as f64 / expected.max(1) as f64,
        if refused > 0 { format!(", {refused} arrivals lost by the bench's own full channel") } else { String::new() }
    );
    println!(
        "market load: relay accepted {accepted:.0} orders using {cpu:.1} s of CPU ({:.2} ms per accepted order, {:.0} % of one core); RSS {:.0} MiB",
        if accepted > 0.0 { cpu * 1e3 / accepted } else { 0.0 },
        100.0 * cpu / cpu_window,
        relay.rss_bytes()? as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}

/// Order `n` of a bench maker, sent at `now`: a buy at 900 − `spread` for even `n`, a sell at
/// 1,100 + `spread` for odd, living `lifetime_ms`.
fn bench_order(
    pair: &Pair,
    n: usize,
    spread: u64,
    amount: u64,
    now: u64,
    lifetime_ms: u64,
) -> OrderBody {
    let buy = n.is_multiple_of(2);
    OrderBody {
        pair: pair.clone(),
        seq: n as u64 + 1,
        sent_at_ms: now,
        action: OrderAction::Order(OrderSpec {
            nonce: n as u64,
            side: if buy { Side::Buy } else { Side::Sell },
            price: Price(if buy { 900 - spread } else { 1_100 + spread }),
            amount,
            min_fill: 0,
            expires_at_ms: now + lifetime_ms,
        }),
    }
}
