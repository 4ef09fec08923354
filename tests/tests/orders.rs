//! The order book across the real relay binary and real native traders on loopback:
//! propagation, cancel, joiner sync, makers that leave, hostile messages refused and counted,
//! two peered relays sharing one book, and a relay that joined late repairing its book.

use std::time::{Duration, Instant};

use darkswap_net::libp2p::{identity::Keypair, Multiaddr, PeerId};
use darkswap_net::{unix_time_ms, Command, NodeEvent, TradingEvent};
use darkswap_orderbook::{Pair, Price, Side};
use darkswap_proto::order::{
    sign_order_message, OrderAction, OrderBody, OrderSpec, MAX_ORDER_MESSAGE_BYTES,
};
use darkswap_tests::{sell, signed_sell, Peer, Ports, RawPublisher, Relay};

fn pair_numbered(n: usize) -> Pair {
    darkswap_tests::numbered_pair("PAIR", n)
}

const T: Duration = Duration::from_secs(20);

fn pair() -> Pair {
    Pair::parse("RUNE:DOGGOTOTHEMOON/BTC").unwrap()
}

async fn trader(relay: &Relay) -> anyhow::Result<Peer> {
    Peer::trader(relay, &pair()).await
}

#[tokio::test]
async fn orders_propagate_cancel_everywhere_and_joiners_sync() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    // Let both subscriptions reach the relay before publishing.

    let first = maker.handle.place_order(pair(), sell(1_000, 250))?;
    let started = Instant::now();
    let view = taker
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == first))
        .await?;
    println!(
        "order visible to another trader after {:?}",
        started.elapsed()
    );
    let seen = view.orders.iter().find(|o| o.id == first).unwrap();
    assert_eq!(
        (seen.side, seen.price, seen.amount),
        (Side::Sell, Price(250), 1_000)
    );
    assert_eq!(seen.maker, maker.id());
    assert!(!seen.mine);
    assert_eq!(view.asks[0].amount, 1_000);

    // A trader that joins later gets the live book from the relay.
    let second = maker.handle.place_order(pair(), sell(500, 260))?;
    taker
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == second))
        .await?;
    // Not `trader()`: its wait for a first book view could swallow the sync report.
    let mut joiner = Peer::reserved_on(&relay).await?;
    joiner.handle.command(Command::WatchPair { pair: pair() })?;
    let synced = joiner
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::BookSynced { orders, .. }) => Some(*orders),
            _ => None,
        })
        .await?;
    assert_eq!(synced, 2);
    joiner
        .book_where(T, &pair(), |v| v.total_orders == 2)
        .await?;

    // Cancel: gone from every book.
    maker.handle.command(Command::CancelOrder { id: first })?;
    taker
        .book_where(T, &pair(), |v| v.orders.iter().all(|o| o.id != first))
        .await?;
    joiner
        .book_where(T, &pair(), |v| v.total_orders == 1)
        .await?;
    let live = "darkswap_relay_live_orders{pair=\"RUNE:DOGGOTOTHEMOON/BTC\"}";
    relay.metric_eventually(live, T, |v| v == 1.0).await?;
    assert!(relay.metric("darkswap_relay_order_messages_accepted_total{kind=\"cancel\"}")? >= 1.0);
    Ok(())
}

#[tokio::test]
async fn a_makers_orders_vanish_when_it_leaves() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let id = maker.handle.place_order(pair(), sell(10, 100))?;
    taker
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == id))
        .await?;
    // Keep-alives hold the order while the maker is there...
    tokio::time::sleep(Duration::from_millis(
        darkswap_market::MAKER_TIMEOUT_MS + 2_000,
    ))
    .await;
    let live = "darkswap_relay_live_orders{pair=\"RUNE:DOGGOTOTHEMOON/BTC\"}";
    relay.metric_eventually(live, T, |v| v == 1.0).await?;
    // ...and when the maker's client goes away, the order leaves every book within the timeout.
    drop(maker);
    let left = Instant::now();
    taker
        .book_where(
            Duration::from_millis(darkswap_market::MAKER_TIMEOUT_MS + 10_000),
            &pair(),
            |v| v.total_orders == 0,
        )
        .await?;
    println!("maker's order gone {:?} after it left", left.elapsed());
    // The relay drops it on its own clock, within a tick of the trader.
    let gone = "darkswap_relay_orders_removed_total{reason=\"maker_gone\"}";
    relay
        .metric_eventually(gone, Duration::from_secs(5), |v| v >= 1.0)
        .await?;
    Ok(())
}

fn signed_order(key: &Keypair, seq: u64, nonce: u64, sent_at: u64) -> Vec<u8> {
    let body = OrderBody {
        pair: pair(),
        seq,
        sent_at_ms: sent_at,
        action: OrderAction::Order(OrderSpec {
            nonce,
            side: Side::Buy,
            price: Price(100),
            amount: 10,
            min_fill: 0,
            expires_at_ms: sent_at + 60_000,
        }),
    };
    sign_order_message(key, &body, sent_at).expect("valid order")
}

#[tokio::test]
async fn hostile_order_messages_are_refused_and_counted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-orders-per-maker",
            "2",
            "--order-publish-burst",
            "5",
            "--order-publish-rate",
            "1",
        ],
    )?;
    let mut watcher = trader(&relay).await?;
    let mut raw = RawPublisher::connect(&relay, &pair()).await?;
    let now = unix_time_ms();

    // Forged: a valid message with one signature byte changed.
    let mut forged = signed_order(&Keypair::generate_ed25519(), 1, 1, now);
    let last = forged.len() - 1;
    forged[last] ^= 1;
    raw.publish(forged).await?;
    // Oversized.
    raw.publish(vec![7u8; MAX_ORDER_MESSAGE_BYTES + 500])
        .await?;
    // Garbage.
    raw.publish(b"not an order".to_vec()).await?;
    // Stale (a captured message replayed a minute later).
    raw.publish(signed_order(
        &Keypair::generate_ed25519(),
        1,
        1,
        now - 60_000,
    ))
    .await?;
    // Expired: signed 25 s ago with a lifetime of 10 s.
    let key = Keypair::generate_ed25519();
    let body = OrderBody {
        pair: pair(),
        seq: 1,
        sent_at_ms: now - 25_000,
        action: OrderAction::Order(OrderSpec {
            nonce: 9,
            side: Side::Buy,
            price: Price(100),
            amount: 10,
            min_fill: 0,
            expires_at_ms: now - 15_000,
        }),
    };
    raw.publish(sign_order_message(&key, &body, now - 25_000)?)
        .await?;
    // One maker (the publisher itself: a trader publishes only its own orders): two orders
    // accepted, then over its cap, then too fast.
    let maker = raw.key().clone();
    for n in 0..8 {
        raw.publish(signed_order(&maker, 10 + n, 100 + n, unix_time_ms()))
            .await?;
    }
    raw.run_for(Duration::from_millis(500)).await;

    let rejected = |reason: &str| {
        relay.metric(&format!(
            "darkswap_relay_order_messages_rejected_total{{reason=\"{reason}\"}}"
        ))
    };
    assert_eq!(rejected("bad_signature")?, 1.0);
    assert_eq!(rejected("too_large")?, 1.0);
    assert_eq!(rejected("malformed")?, 1.0);
    assert_eq!(rejected("clock_skew")?, 1.0);
    assert_eq!(rejected("expired")?, 1.0);
    assert_eq!(rejected("over_cap")?, 3.0);
    assert_eq!(rejected("rate_limited")?, 3.0);
    assert_eq!(
        relay.metric("darkswap_relay_order_messages_accepted_total{kind=\"order\"}")?,
        2.0
    );
    // Only the two valid orders reached the honest trader.
    let view = watcher
        .book_where(T, &pair(), |v| v.total_orders == 2)
        .await?;
    assert!(view.orders.iter().all(|o| o.amount == 10));
    Ok(())
}

#[tokio::test]
async fn re_encoded_copies_of_a_makers_message_cannot_silence_it() -> anyhow::Result<()> {
    // The signature covers the body, not the envelope, and gossip tells duplicates apart by
    // their bytes: an attacker who re-encodes a maker's order (an unknown field appended) gets
    // copies that used to verify, pass as new, and spend the maker's rate tokens until the
    // maker's own cancel was refused. The relay now refuses them as non-canonical, and replays
    // never spend a maker's tokens.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--order-publish-burst", "5", "--order-publish-rate", "1"],
    )?;
    let maker = trader(&relay).await?;
    let mut watcher = trader(&relay).await?;
    let mut attacker = RawPublisher::connect(&relay, &pair()).await?;
    let id = maker.handle.place_order(pair(), sell(1_000, 250))?;
    let captured = attacker.next_message(T).await?;
    watcher
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == id))
        .await?;
    // 30 copies, each with other bytes, at 30 a second (under the relay's 50 a second per peer).
    for k in 1..=30u8 {
        let mut copy = captured.clone();
        copy.extend_from_slice(&[0x78, k]);
        attacker.publish_now(copy)?;
        attacker.run_for(Duration::from_millis(33)).await;
    }
    maker.handle.command(Command::CancelOrder { id })?;
    watcher
        .book_where(T, &pair(), |v| v.orders.iter().all(|o| o.id != id))
        .await?;
    let rejected = |reason: &str| {
        relay.metric(&format!(
            "darkswap_relay_order_messages_rejected_total{{reason=\"{reason}\"}}"
        ))
    };
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_rejected_total{reason=\"non_canonical\"}",
            T,
            |v| v == 30.0,
        )
        .await?;
    assert_eq!(rejected("rate_limited")?, 0.0, "the maker kept its tokens");
    assert_eq!(
        relay.metric("darkswap_relay_order_messages_accepted_total{kind=\"cancel\"}")?,
        1.0
    );
    Ok(())
}

#[tokio::test]
async fn book_sync_pages_are_rationed_per_peer() -> anyhow::Result<()> {
    // A page is up to 1,000 orders for a request of a few bytes: one peer asking without end
    // gets its burst (250 pages, a 100,000-order pair twice and a half), then refusals it can
    // see, counted; another peer at the same address is still served.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let id = maker.handle.place_order(pair(), sell(1_000, 250))?;
    let mut greedy = RawPublisher::connect_unauthenticated(&relay, &pair()).await?;
    let (answered, refused) = greedy.book_sync_pages(relay.peer_id, &pair(), 400).await?;
    println!("one peer asked 400 times: {answered} pages answered, {refused} refused");
    assert!((250..=260).contains(&answered), "{answered} answered");
    assert_eq!(answered + refused, 400);
    assert_eq!(
        relay.metric("darkswap_relay_book_sync_requests_total{outcome=\"rate_limited\"}")?,
        refused as f64
    );
    let mut joiner = trader(&relay).await?;
    joiner
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == id))
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_keep_alive_with_a_wrong_digest_from_a_maker_with_no_orders_goes_nowhere(
) -> anyhow::Result<()> {
    // Every page that sees a keep-alive disagreeing with its book asks the relay for that
    // maker's orders. From a maker with no order on the pair, forwarding it would make every
    // watching page ask, for one cheap message, and learn nothing.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut watchers = Vec::new();
    for _ in 0..3 {
        watchers.push(trader(&relay).await?);
    }
    let mut junk = RawPublisher::connect(&relay, &pair()).await?;
    let syncs = "darkswap_relay_book_sync_requests_total{outcome=\"ok\"}";
    let before = relay.metric(syncs)?;
    let now = unix_time_ms();
    let body = OrderBody {
        pair: pair(),
        seq: 1,
        sent_at_ms: now,
        action: OrderAction::KeepAlive {
            digest: [7; 32],
            live_orders: 100,
        },
    };
    let key = junk.key().clone();
    junk.publish(sign_order_message(&key, &body, now)?).await?;
    relay
        .metric_eventually("darkswap_relay_keep_alives_not_forwarded_total", T, |v| {
            v == 1.0
        })
        .await?;
    // Time for the watchers to have asked, had they got it.
    junk.run_for(Duration::from_secs(2)).await;
    assert_eq!(relay.metric(syncs)?, before, "no page asked for a repair");
    Ok(())
}

#[tokio::test]
async fn two_peered_relays_share_one_book() -> anyhow::Result<()> {
    let dir1 = tempfile::tempdir()?;
    let dir2 = tempfile::tempdir()?;
    let first = Relay::start(dir1.path(), Ports::default(), &[])?;
    let first_addr: Multiaddr = first.tcp_addr();
    let peer_flag = first_addr.to_string();
    let second = Relay::start(dir2.path(), Ports::default(), &["--peer", &peer_flag])?;
    let first_id: PeerId = first.peer_id;
    assert_ne!(first_id, second.peer_id);

    let maker = trader(&first).await?;
    let mut taker = trader(&second).await?;
    // Wait for the relays to peer.
    second
        .metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    // Gossip meshes form on the next heartbeat; retry the first order until it crosses.
    let mut crossed = false;
    for _ in 0..5 {
        let id = maker.handle.place_order(pair(), sell(42, 300))?;
        if taker
            .book_where(Duration::from_secs(4), &pair(), |v| {
                v.orders.iter().any(|o| o.id == id)
            })
            .await
            .is_ok()
        {
            crossed = true;
            break;
        }
    }
    assert!(
        crossed,
        "an order on the first relay never reached a trader on the second"
    );
    assert!(second.metric("darkswap_relay_order_messages_accepted_total{kind=\"order\"}")? >= 1.0);
    Ok(())
}

/// Gossip does not replay what a relay missed. A relay that joins after a maker placed its order
/// learns the order at the maker's next keep-alive, which its peer relay forwards: the digest
/// disagrees with its book, so it pulls the maker's orders from that peer relay, checks them
/// against the digest, and passes the keep-alive on, so its own traders pull from it.
#[tokio::test]
async fn a_relay_that_joined_late_repairs_its_book_from_its_peer_relay() -> anyhow::Result<()> {
    let (dir1, dir2) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let first = Relay::start(dir1.path(), Ports::default(), &[])?;
    let maker = trader(&first).await?;
    let id = maker.handle.place_order(pair(), sell(42, 300))?;
    first
        .metric_eventually(
            &format!("darkswap_relay_live_orders{{pair=\"{}\"}}", pair()),
            T,
            |v| v == 1.0,
        )
        .await?;
    // Gossip itself offers a recent message to newcomers (IHAVE, seen up to 8 s after it
    // passed here): the late relay comes after the maker's first keep-alive, 10 s on.
    first
        .metric_eventually(
            "darkswap_relay_order_messages_accepted_total{kind=\"keep_alive\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    let peer_flag = first.tcp_addr().to_string();
    let late = Relay::start(dir2.path(), Ports::default(), &["--peer", &peer_flag])?;
    late.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut watcher = trader(&late).await?;
    // The maker's keep-alives come every 10 s.
    watcher
        .book_where(Duration::from_secs(30), &pair(), |v| {
            v.orders.iter().any(|o| o.id == id)
        })
        .await
        .map_err(|e| anyhow::anyhow!("the late relay's trader never saw the order: {e}"))?;
    // The gauge follows on the relay's next tick.
    late.metric_eventually(
        &format!("darkswap_relay_live_orders{{pair=\"{}\"}}", pair()),
        T,
        |v| v == 1.0,
    )
    .await?;
    let (_, metrics) = late.get("/metrics")?;
    let said: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("book_repair") || l.contains("order_messages"))
        .collect();
    assert!(
        late.metric("darkswap_relay_book_repairs_total{outcome=\"complete\"}")? >= 1.0,
        "the order did not come by a repair: {said:#?}"
    );
    assert!(late.metric("darkswap_relay_book_repair_orders_total{outcome=\"added\"}")? >= 1.0);
    assert_eq!(
        late.metric("darkswap_relay_book_repair_orders_total{outcome=\"invalid\"}")?,
        0.0
    );
    Ok(())
}

/// A relay configured below the default market limits tells its clients (in the auth grant and
/// relay-info), and a maker's client keeps under them: its orders and its republication of all
/// of them after the relay restarts are never refused for pace.
#[tokio::test]
async fn clients_keep_under_a_relays_lower_limits() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = Ports::fixed();
    let limits = [
        "--order-publish-burst",
        "6",
        "--order-publish-rate",
        "2",
        "--max-orders-per-maker",
        "20",
    ];
    let relay = Relay::start(dir.path(), ports, &limits)?;
    let (_, info) = relay.get("/api/relay-info")?;
    let info = darkswap_proto::RelayInfo::parse(info.as_bytes())?;
    let announced = info.limits.expect("relay-info announces the limits");
    assert_eq!(
        (
            announced.publish_burst,
            announced.publish_per_second,
            announced.max_orders_per_maker
        ),
        (6, 2, 20)
    );
    let mut maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    // The grant told the maker's node the relay's limits.
    let mut ids = Vec::new();
    for n in 0..12u64 {
        ids.push(maker.handle.place_order(pair(), sell(100 + n, 200 + n))?);
        tokio::time::sleep(Duration::from_millis(550)).await;
    }
    taker
        .book_where(T, &pair(), |v| v.total_orders == 12)
        .await?;
    let rate_limited = "darkswap_relay_order_messages_rejected_total{reason=\"rate_limited\"}";
    assert_eq!(relay.metric(rate_limited).unwrap_or(0.0), 0.0);

    // The relay restarts and has forgotten every order: the maker republishes all twelve at
    // once after it reconnects, paced below the relay's burst of 6.
    relay.stop()?;
    maker
        .wait_for(T, |e| {
            matches!(
                e,
                NodeEvent::Relay(darkswap_net::RelayStatus::Failed { .. })
            )
            .then_some(())
        })
        .await?;
    let relay = Relay::start(dir.path(), ports, &limits)?;
    maker.reserved().await?;
    let live = "darkswap_relay_live_orders{pair=\"RUNE:DOGGOTOTHEMOON/BTC\"}";
    relay
        .metric_eventually(live, Duration::from_secs(30), |v| v == 12.0)
        .await?;
    assert_eq!(
        relay.metric(rate_limited).unwrap_or(0.0),
        0.0,
        "no message of the maker was refused for pace"
    );
    Ok(())
}

#[tokio::test]
async fn a_trader_publishes_only_its_own_orders() -> anyhow::Result<()> {
    // Identities cost nothing, so caps per maker key are caps per key: one connection signing
    // with as many throwaway keys as it likes used to get a full allowance for each. A trader's
    // direct connection now carries only what its own key signed.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut watcher = trader(&relay).await?;
    let mut raw = RawPublisher::connect(&relay, &pair()).await?;
    let now = unix_time_ms();
    for n in 0..5 {
        raw.publish(signed_order(&Keypair::generate_ed25519(), 1, n, now))
            .await?;
    }
    let own = raw.key().clone();
    raw.publish(signed_order(&own, 1, 77, now)).await?;
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_rejected_total{reason=\"not_own\"}",
            T,
            |v| v == 5.0,
        )
        .await?;
    let own_id = PeerId::from(own.public());
    watcher
        .book_where(T, &pair(), |v| {
            v.total_orders == 1 && v.orders[0].maker == own_id
        })
        .await?;
    assert_eq!(
        relay.metric("darkswap_relay_order_messages_accepted_total{kind=\"order\"}")?,
        1.0
    );
    Ok(())
}

#[tokio::test]
async fn past_a_hundred_pairs_traders_still_publish_on_every_pair() -> anyhow::Result<()> {
    // gossipsub's defaults let a peer follow 100 topics, announce 100 in one message, and
    // send 16 KiB of them at once (subscriptions count as control). A relay following more
    // sent its traders a hello they refused whole (past ~380 pairs it broke their gossip
    // stream), so they did not know it followed their pair, and their orders went nowhere
    // (NoPeersSubscribedToTopic). 500 live pairs, from eight makers.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        // Eight makers on 127.0.0.1 stand for eight addresses.
        &[
            "--order-publish-burst",
            "100",
            "--max-pairs-per-address",
            "1000",
        ],
    )?;
    let pairs: Vec<Pair> = (0..500).map(pair_numbered).collect();
    let now = unix_time_ms();
    let mut makers = Vec::new();
    for chunk in pairs.chunks(63) {
        let mut maker = RawPublisher::connect_following_nothing(&relay, true).await?;
        maker.follow(chunk).await?;
        let key = maker.key().clone();
        for (n, p) in chunk.iter().enumerate() {
            maker
                .publish_on(p, signed_sell(&key, p, n as u64 + 1, now)?)
                .await?;
        }
        makers.push(maker);
    }
    relay
        .metric_eventually("darkswap_relay_pairs_followed", T, |v| v == 500.0)
        .await?;
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_accepted_total{kind=\"order\"}",
            T,
            |v| v == 500.0,
        )
        .await?;
    // Honest traders join: one pair from the relay's hello, the last of them, and a new one.
    for p in [pair_numbered(499), pair_numbered(500)] {
        let maker = Peer::trader(&relay, &p).await?;
        let mut watcher = Peer::trader(&relay, &p).await?;
        let id = maker.handle.place_order(p.clone(), sell(1_000, 250))?;
        watcher
            .book_where(T, &p, |v| v.orders.iter().any(|o| o.id == id))
            .await?;
    }
    relay
        .metric_eventually("darkswap_relay_pairs_followed", T, |v| v == 501.0)
        .await?;
    Ok(())
}

#[tokio::test]
async fn the_relays_pair_table_is_not_fillable_by_junk() -> anyhow::Result<()> {
    // Any subscription used to make the relay follow the pair, for good. Now: only a peer that
    // may publish starts a follow, the traders at one address start at most
    // --max-pairs-per-address, one trader follows at most --max-pairs-per-peer, and a pair with
    // no order and no trader following it is let go after --pair-idle-secs.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-pairs-per-peer",
            "8",
            "--pair-idle-secs",
            "2",
            "--max-pairs-per-address",
            "12",
        ],
    )?;
    let followed = "darkswap_relay_pairs_followed";
    let junk: Vec<Pair> = (0..8).map(pair_numbered).collect();
    // Anonymous: remembered, not followed.
    let mut anonymous = RawPublisher::connect_following_nothing(&relay, false).await?;
    anonymous.subscribe(&junk)?;
    anonymous.run_for(Duration::from_secs(2)).await;
    assert_eq!(relay.metric(followed)?, 0.0);
    // A trader past auth: followed.
    let mut authenticated = RawPublisher::connect_following_nothing(&relay, true).await?;
    authenticated.follow(&junk).await?;
    relay.metric_eventually(followed, T, |v| v == 8.0).await?;
    // Another key at the same address: its address may start 12 follows in all, so 4 more.
    let mut second = RawPublisher::connect_following_nothing(&relay, true).await?;
    let more: Vec<Pair> = (10..18).map(pair_numbered).collect();
    second.subscribe(&more)?;
    relay.metric_eventually(followed, T, |v| v == 12.0).await?;
    relay
        .metric_eventually(
            "darkswap_relay_pair_follow_events_total{event=\"refused_address\"}",
            T,
            |v| v == 4.0,
        )
        .await?;
    drop(second);
    // One pair more than a trader may follow: cut off.
    authenticated.subscribe(&[pair_numbered(8)])?;
    let cut = Instant::now() + T;
    while authenticated.connected() && Instant::now() < cut {
        authenticated.run_for(Duration::from_millis(100)).await;
    }
    assert!(!authenticated.connected(), "cut off past its cap");
    assert_eq!(
        relay.metric("darkswap_relay_pair_follow_events_total{event=\"peer_over_cap\"}")?,
        1.0
    );
    // Nobody who counts follows them any more and they hold no order: let go. The anonymous
    // peer still subscribed does not keep them.
    relay.metric_eventually(followed, T, |v| v == 0.0).await?;
    assert_eq!(
        relay.metric("darkswap_relay_pair_follow_events_total{event=\"unfollowed_idle\"}")?,
        12.0
    );
    anonymous.run_for(Duration::from_millis(100)).await;
    assert!(anonymous.connected());
    // An honest trader on one of them is served as before.
    let maker = trader(&relay).await?;
    let mut watcher = trader(&relay).await?;
    let id = maker.handle.place_order(pair(), sell(10, 100))?;
    watcher
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == id))
        .await?;
    Ok(())
}

#[tokio::test]
async fn makers_sharing_an_address_share_its_caps() -> anyhow::Result<()> {
    // Keys are free and a trader's connection carries only its own orders, so an attacker runs
    // one connection per throwaway key; the makers connected from one address now share its
    // caps on live orders and on pairs. Before, each key had a full allowance and a handful of
    // keys filled every pair slot.
    let dir = tempfile::tempdir()?;
    // A trusted peer (not charged) makes the relay follow pairs 5 and 6, so that the third key
    // can follow them without starting a follow of its own (traders at one address start at
    // most --max-pairs-per-address follows, which the first two keys use up).
    let opener = Keypair::generate_ed25519();
    let trusted = format!("{}=trusted", PeerId::from(opener.public()));
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-pairs-per-address",
            "4",
            "--max-orders-per-address",
            "6",
            "--auth-peer",
            &trusted,
        ],
    )?;
    let rejected = |reason: &str| {
        relay.metric(&format!(
            "darkswap_relay_order_messages_rejected_total{{reason=\"{reason}\"}}"
        ))
    };
    let pairs: Vec<Pair> = (0..6).map(pair_numbered).collect();
    let mut opening = RawPublisher::connect_as(&relay, &pairs[4], opener).await?;
    opening.follow(&pairs[4..6]).await?;
    let now = unix_time_ms();
    let order = |key: &Keypair, pair: &Pair, nonce: u64| signed_sell(key, pair, nonce, now);
    // Three throwaway keys, one connection each, all from 127.0.0.1: two pairs each.
    let mut keys = Vec::new();
    for k in 0..3 {
        let mut raw = RawPublisher::connect_following_nothing(&relay, true).await?;
        raw.follow(&pairs[2 * k..2 * k + 2]).await?;
        let key = raw.key().clone();
        for (n, p) in pairs[2 * k..2 * k + 2].iter().enumerate() {
            raw.publish_on(p, order(&key, p, n as u64 + 1)?).await?;
        }
        keys.push(raw);
    }
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_accepted_total{kind=\"order\"}",
            T,
            |v| v == 4.0,
        )
        .await?;
    assert_eq!(rejected("address_pairs_over_cap")?, 2.0, "pairs 5 and 6");
    // More orders on pairs the address holds, up to its order cap.
    let first = &mut keys[0];
    let key = first.key().clone();
    for n in 10..14 {
        first
            .publish_on(&pairs[0], order(&key, &pairs[0], n)?)
            .await?;
    }
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_rejected_total{reason=\"address_over_cap\"}",
            T,
            |v| v == 2.0,
        )
        .await?;
    assert_eq!(
        relay.metric("darkswap_relay_order_messages_accepted_total{kind=\"order\"}")?,
        6.0
    );
    Ok(())
}

#[tokio::test]
async fn an_operator_can_let_only_trusted_peers_open_a_pair() -> anyhow::Result<()> {
    // A price on pairs the operator may choose: with --open-pairs-trusted-only, the first order
    // on a pair must come from a trusted peer; traders then trade on the pairs it opened.
    let opener = Keypair::generate_ed25519();
    let trusted = format!("{}=trusted", PeerId::from(opener.public()));
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--open-pairs-trusted-only", "true", "--auth-peer", &trusted],
    )?;
    let mut maker = trader(&relay).await?;
    let mut watcher = trader(&relay).await?;
    let early = maker.handle.place_order(pair(), sell(10, 100))?;
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_rejected_total{reason=\"open_pair_refused\"}",
            T,
            |v| v == 1.0,
        )
        .await?;
    // Gossip does not tell a publisher it was refused; the maker asks the relay about its new
    // order and hears why, and the order leaves its own book and list.
    let reason = maker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::OrderWithdrawn { id, reason, .. }) if *id == early => {
                Some(reason.clone())
            }
            _ => None,
        })
        .await?;
    assert_eq!(
        reason,
        "the relay refused it: this relay lets only trusted peers open a pair"
    );
    let mut opening = RawPublisher::connect_as(&relay, &pair(), opener).await?;
    let key = opening.key().clone();
    opening
        .publish(signed_order(&key, 1, 1, unix_time_ms()))
        .await?;
    // The pair is open: the trader's next order goes through, its first one stays refused.
    let later = maker.handle.place_order(pair(), sell(20, 100))?;
    let view = watcher
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == later))
        .await?;
    assert!(view.orders.iter().all(|o| o.id != early));
    assert_eq!(view.total_orders, 2, "the opener's and the later order");
    Ok(())
}

#[tokio::test]
async fn a_peer_below_publishing_reads_by_lazy_gossip_and_is_dropped_at_its_deadline(
) -> anyhow::Result<()> {
    // Anonymous subscribers used to join the relay's gossip mesh and hold a connection slot
    // for as long as they liked. Now the relay scores a peer below publishing under zero, which
    // keeps it out of the mesh (it still reads the book, by lazy gossip and book sync), and
    // disconnects it when its time to authenticate is up.
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-deadline-secs", "10"],
    )?;
    let maker = trader(&relay).await?;
    let mut reader = RawPublisher::connect_unauthenticated(&relay, &pair()).await?;
    // Three heartbeats: a grafted peer is in the mesh by then (and the reader's deadline, ten
    // seconds, is not up).
    reader.run_for(Duration::from_secs(3)).await;
    assert!(reader.connected());
    assert_eq!(
        relay.metric("darkswap_relay_gossip_mesh_peers")?,
        1.0,
        "only the maker is in the mesh"
    );
    let id = maker.handle.place_order(pair(), sell(10, 100))?;
    let order = reader.next_message(T).await?;
    let verified = darkswap_proto::order::verify_order_message(
        &order,
        Some(&pair()),
        darkswap_proto::order::Freshness::Live,
        unix_time_ms(),
    )?;
    assert_eq!(verified.order_id(), Some(id), "the reader got the order");
    assert_eq!(relay.metric("darkswap_relay_gossip_mesh_peers")?, 1.0);
    // Its ten seconds are up: dropped and counted; the authenticated maker stays.
    let started = Instant::now();
    while reader.connected() && started.elapsed() < T {
        reader.run_for(Duration::from_millis(200)).await;
    }
    assert!(
        !reader.connected(),
        "still connected after {:?}",
        started.elapsed()
    );
    assert_eq!(
        relay.metric("darkswap_relay_unauthenticated_dropped_total")?,
        1.0
    );
    maker.handle.place_order(pair(), sell(20, 100))?;
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_accepted_total{kind=\"order\"}",
            T,
            |v| v == 2.0,
        )
        .await?;
    Ok(())
}
