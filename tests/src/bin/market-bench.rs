//! Order-book network benchmark on loopback, through the real relay binary:
//! - propagation: one maker and `--peers` traders (default 20) follow a pair; the maker places
//!   `--orders` orders (default 100) one at a time; each trader notes when the order shows in its
//!   book. Prints p50 / p99 / max of place → visible;
//! - joiner sync: `--book` orders (default 10,000) from 100 makers (more when the per-maker cap
//!   needs it) are published to the relay,
//!   then a new trader follows the pair; prints the time until its book holds them all.
//!
//! Run through `scripts/bench-market` (release build). Prints figures; no pass/fail.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::{unix_time_ms, Command, NodeEvent, TradingEvent};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::{sign_order_message, OrderAction, OrderBody, OrderSpec};
use darkswap_tests::stats::percentile;
use darkswap_tests::{sell, Peer, Ports, RawPublisher, Relay};
use futures::StreamExt;
use tokio::sync::mpsc;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() -> Result<()> {
    let (mut peers, mut orders, mut book) = (20usize, 100usize, 10_000usize);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--peers" => peers = value.parse()?,
            "--orders" => orders = value.parse()?,
            "--book" => book = value.parse()?,
            other => bail!("unknown argument {other} (--peers N, --orders N, --book N)"),
        }
    }
    propagation(peers, orders).await?;
    joiner_sync(book).await?;
    Ok(())
}

async fn propagation(peers: usize, orders: usize) -> Result<()> {
    let pair = Pair::parse("RUNE:BENCH/BTC")?;
    let dir = tempfile::tempdir()?;
    let limit = (peers * 4 + 16).to_string();
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--reservation-rate-per-ip",
            &limit,
            "--auth-challenge-rate-per-ip",
            &limit,
            "--max-connections",
            &limit,
            "--max-connections-per-ip",
            &limit,
            "--max-pending-per-ip",
            "512",
            "--pending-kept-for-new-addresses",
            "0",
        ],
    )?;
    let mut maker = Peer::reserved_on(&relay).await?;
    maker
        .handle
        .command(Command::WatchPair { pair: pair.clone() })?;
    let (seen_tx, mut seen_rx) = mpsc::channel::<(usize, OrderId, Instant)>(100_000);
    let mut handles = Vec::new();
    for n in 0..peers {
        let mut peer = Peer::reserved_on(&relay).await?;
        peer.handle
            .command(Command::WatchPair { pair: pair.clone() })?;
        peer.book_where(Duration::from_secs(10), &pair, |_| true)
            .await?;
        // The node runs while a handle exists: keep one here, the task only reads events.
        handles.push(peer.handle.clone());
        let tx = seen_tx.clone();
        tokio::spawn(async move {
            let mut known = std::collections::HashSet::new();
            let mut events = peer.events;
            while let Some(event) = events.next().await {
                if let NodeEvent::Trading(TradingEvent::Book(view)) = event {
                    for o in &view.orders {
                        if known.insert(o.id) {
                            let _ = tx.send((n, o.id, Instant::now())).await;
                        }
                    }
                }
            }
        });
    }
    drop(seen_tx);
    // Let subscriptions settle (the relay grafts everyone on its next heartbeat).
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut placed: HashMap<OrderId, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    for i in 0..orders {
        let id = maker
            .handle
            .place_order(pair.clone(), sell(10 + i as u64, 1_000 + i as u64))?;
        placed.insert(id, Instant::now());
        // One order at a time: wait until every trader saw it (or 5 s).
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = 0;
        while got < peers && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), seen_rx.recv()).await {
                Ok(Some((_, seen_id, at))) => {
                    if let Some(start) = placed.get(&seen_id) {
                        latencies.push(at.duration_since(*start));
                        if seen_id == id {
                            got += 1;
                        }
                    }
                }
                _ => break,
            }
        }
        while maker.events.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    latencies.sort();
    if latencies.is_empty() {
        bail!("no order reached any trader");
    }
    println!(
        "propagation through one relay, {peers} traders, {orders} orders: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} deliveries of {} expected)",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(*latencies.last().unwrap_or(&Duration::ZERO)),
        latencies.len(),
        peers * orders
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
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--order-publish-burst",
            &(per_maker + 10).to_string(),
            "--gossip-rate-per-peer",
            "1000000",
        ],
    )?;
    let mut raw = RawPublisher::connect(&relay, &pair).await?;
    let now = unix_time_ms();
    let mut published = 0;
    for m in 0..makers {
        let key = Keypair::generate_ed25519();
        for n in 0..per_maker {
            if published == book {
                break;
            }
            let body = OrderBody {
                pair: pair.clone(),
                seq: n as u64 + 1,
                sent_at_ms: now,
                action: OrderAction::Order(OrderSpec {
                    nonce: n as u64,
                    side: if n % 2 == 0 { Side::Buy } else { Side::Sell },
                    price: Price(if n % 2 == 0 {
                        900 - (n as u64 % 100)
                    } else {
                        1_100 + (n as u64 % 100)
                    }),
                    amount: 1 + (m * n) as u64 % 1_000,
                    min_fill: 0,
                    expires_at_ms: now + 3_600_000,
                }),
            };
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
