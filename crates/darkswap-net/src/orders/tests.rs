//! The order book core without a network: inputs in, actions and events out, time passed in.

use super::*;
use darkswap_market::MarketLimits;
use darkswap_proto::order::{verify_order_message, Freshness, OrderReject};

const T0: u64 = 1_800_000_000_000;

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

fn spec(nonce: u64, amount: u64, now_ms: u64) -> OrderSpec {
    OrderSpec {
        nonce,
        side: Side::Sell,
        price: Price::parse_decimal("0.000025").unwrap(),
        amount,
        min_fill: 0,
        expires_at_ms: now_ms + 3_600_000,
    }
}

fn publications(out: &OrdersOutput) -> Vec<Publication> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            OrdersAction::Publish(p) => Some(p.clone()),
            _ => None,
        })
        .collect()
}

fn syncs(out: &OrdersOutput) -> Vec<(SyncToken, BookSyncRequest)> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            OrdersAction::Sync { token, request } => Some((*token, request.clone())),
            _ => None,
        })
        .collect()
}

/// A trader connected to its relay and allowed to publish.
fn online(limits: MarketLimits) -> Orders {
    let mut orders = Orders::new(Keypair::generate_ed25519(), limits, T0);
    orders.relay_connected(T0);
    orders.set_publishing(true, T0);
    orders
}

#[test]
fn a_placed_order_waits_for_the_relay_and_the_grant_then_goes_out_signed() {
    let mut orders = Orders::new(Keypair::generate_ed25519(), MarketLimits::default(), T0);
    let out = orders.place(pair(), spec(1, 100_000, T0), T0);
    assert_eq!(out.actions, vec![OrdersAction::Subscribe(pair())]);
    assert!(matches!(&out.events[..], [OrdersEvent::OrderPlaced(o)] if o.spec.amount == 100_000));
    // Connected but not granted: the book is synced, nothing is published.
    let out = orders.relay_connected(T0 + 10);
    assert_eq!(syncs(&out).len(), 1);
    assert!(publications(&out).is_empty());
    // Granted: what waited goes out, as our own signed message on the pair's topic.
    let out = orders.set_publishing(true, T0 + 20);
    let published = publications(&out);
    assert_eq!(
        published.len(),
        2,
        "the order and its republication after the connect"
    );
    for p in &published {
        assert_eq!(p.topic, order_topic(&pair()));
        let verified =
            verify_order_message(&p.bytes, Some(&pair()), Freshness::Live, T0 + 20).unwrap();
        assert_eq!(verified.maker, orders.me);
    }
}

#[test]
fn pacing_follows_the_relays_limits_and_a_relay_with_those_limits_refuses_nothing() {
    // A relay configured well below the defaults.
    let limits = MarketLimits {
        publish_burst: 5,
        publish_per_second: 2,
        ..MarketLimits::default()
    };
    let mut orders = online(limits.clone());
    let mut relay = Market::new(limits);
    let mut published = Vec::new();
    let mut now = T0;
    // A trader placing an order every 600 ms, faster than the pace for a while.
    for n in 0..20 {
        now += 600;
        let mut out = orders.place(pair(), spec(n, 1_000 + n, now), now);
        assert!(
            matches!(out.events.last(), Some(OrdersEvent::OrderPlaced(_))),
            "{out:?}"
        );
        out.extend(orders.tick(now));
        published.extend(publications(&out).into_iter().map(|p| (now, p)));
    }
    // A reconnect republishes all twenty at once: still paced.
    orders.relay_lost();
    let mut out = orders.relay_connected(now);
    out.extend(orders.set_publishing(true, now));
    assert!(
        publications(&out).len() <= 4,
        "at most 80% of the relay's burst at once"
    );
    assert!(
        orders.unpublished.len() >= 16,
        "the rest waits for the pace"
    );
    published.extend(publications(&out).into_iter().map(|p| (now, p)));
    while now < T0 + 120_000 {
        now += 100;
        let out = orders.tick(now);
        published.extend(publications(&out).into_iter().map(|p| (now, p)));
    }
    assert!(orders.unpublished.is_empty());
    assert!(published.len() >= 40, "{} published", published.len());
    // Every message reaches a relay with those limits at the time it was sent: none is
    // refused for pace (replays are the republications of identical orders' older copies).
    let mut refused = Vec::new();
    for (at, p) in &published {
        let verified = verify_order_message(&p.bytes, Some(&pair()), Freshness::Live, *at).unwrap();
        if let Err(e) = relay.apply(&verified, *at) {
            refused.push(e);
        }
    }
    assert!(
        !refused.contains(&OrderReject::RateLimited),
        "refused for pace: {refused:?}"
    );
}

#[test]
fn gossip_that_did_not_go_out_waits_first_in_line_and_a_new_order_past_its_deadline_is_withdrawn() {
    let mut orders = online(MarketLimits::default());
    let out = orders.place(pair(), spec(1, 500, T0), T0);
    let first = publications(&out);
    assert_eq!(first.len(), 1);
    let out = orders.place(pair(), spec(2, 600, T0), T0);
    let second = publications(&out);
    // Gossip had no peer for the topic yet: both come back, in order.
    let failed: Vec<_> = first
        .iter()
        .chain(&second)
        .map(|p| (p.clone(), "no peers".to_string()))
        .collect();
    let out = orders.publish_failed(failed, T0 + 1);
    assert!(out.events.is_empty());
    let again = publications(&orders.tick(T0 + 2));
    assert_eq!(again, [first.clone(), second].concat());
    // Still failing after the deadline: the new order is withdrawn, and the trader is told.
    let late = T0 + PUBLISH_DEADLINE_MS + 1;
    let out = orders.publish_failed(vec![(first[0].clone(), "no peers".into())], late);
    assert!(matches!(
        &out.events[..],
        [OrdersEvent::OrderWithdrawn { reason, .. }] if reason.contains("no peers")
    ));
    assert_eq!(orders.own_orders().count(), 1);
}

#[test]
fn a_restored_order_keeps_trying_past_the_deadline() {
    let keypair = Keypair::generate_ed25519();
    let me = keypair.public().to_peer_id();
    let mut orders = Orders::new(keypair, MarketLimits::default(), T0);
    orders.relay_connected(T0);
    orders.set_publishing(true, T0);
    let s = spec(7, 900, T0);
    let stored = OwnOrder {
        id: order_id(&me, 7),
        pair: pair(),
        spec: s,
    };
    // Someone else's order, or one about to expire, is not restored.
    let foreign = OwnOrder {
        id: OrderId([9; 16]),
        ..stored.clone()
    };
    let out = orders.restore(vec![stored.clone(), foreign], T0);
    let published = publications(&out);
    assert_eq!(published.len(), 1);
    let late = T0 + PUBLISH_DEADLINE_MS * 10;
    let out = orders.publish_failed(vec![(published[0].clone(), "no peers".into())], late);
    assert!(out.events.is_empty());
    assert_eq!(orders.own_order(&stored.id), Some(&stored));
}

#[test]
fn another_makers_order_arrives_by_gossip_and_bad_messages_are_counted_not_applied() {
    let mut maker = online(MarketLimits::default());
    let mut taker = online(MarketLimits::default());
    let placed = maker.place(pair(), spec(1, 100, T0), T0);
    let message = publications(&placed).remove(0);
    // Not followed yet: refused.
    let out = taker.on_gossip(&message.topic, &message.bytes, T0);
    assert_eq!(
        out.events,
        vec![OrdersEvent::MessageRejected { reason: "bad_pair" }]
    );
    taker.watch(pair(), T0);
    let out = taker.on_gossip(&message.topic, &message.bytes, T0 + 1);
    let view = out
        .events
        .iter()
        .find_map(|e| match e {
            OrdersEvent::Book(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(view.total_orders, 1);
    assert!(!view.orders[0].mine);
    // The same message again is a replay: silently ignored.
    assert!(taker
        .on_gossip(&message.topic, &message.bytes, T0 + 2)
        .events
        .is_empty());
    // A flipped bit breaks the signature.
    let mut bad = message.bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let out = taker.on_gossip(&message.topic, &bad, T0 + 3);
    assert!(matches!(
        &out.events[..],
        [OrdersEvent::MessageRejected { .. }]
    ));
    // Our own message coming back changes nothing.
    maker.book_views(T0);
    assert!(maker
        .on_gossip(&message.topic, &message.bytes, T0)
        .events
        .is_empty());
}

#[test]
fn a_book_sync_follows_the_pages_and_reports_when_done() {
    let mut maker = online(MarketLimits::default());
    let mut raw = Vec::new();
    for n in 0..3 {
        raw.push(
            publications(&maker.place(pair(), spec(n, 10 + n, T0), T0))
                .remove(0)
                .bytes,
        );
    }
    let mut joiner = online(MarketLimits::default());
    let out = joiner.watch(pair(), T0);
    let [(token, request)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!(request.after, None);
    let page = BookSyncResponse {
        orders: raw[..2].to_vec(),
        more: true,
        error: None,
        refused: Vec::new(),
    };
    let out = joiner.on_sync_page(*token, page, T0 + 5);
    let [(next, request)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    assert!(request.after.is_some(), "continues after the last order");
    let page = BookSyncResponse {
        orders: raw[2..].to_vec(),
        more: false,
        error: None,
        refused: Vec::new(),
    };
    let out = joiner.on_sync_page(*next, page, T0 + 25);
    assert!(out.events.contains(&OrdersEvent::BookSynced {
        pair: pair(),
        orders: 3,
        elapsed: Duration::from_millis(25),
    }));
    assert_eq!(joiner.view(&pair()).total_orders, 3);
    // An answer nobody asked for changes nothing.
    assert_eq!(
        joiner.on_sync_page(*token, BookSyncResponse::default(), T0 + 30),
        OrdersOutput::default()
    );
}

#[test]
fn no_sync_goes_out_without_a_relay_and_a_failed_one_starts_again_on_reconnect() {
    let mut orders = Orders::new(Keypair::generate_ed25519(), MarketLimits::default(), T0);
    let out = orders.watch(pair(), T0);
    assert!(syncs(&out).is_empty());
    let out = orders.relay_connected(T0);
    let [(token, _)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    orders.on_sync_failed(*token);
    orders.relay_lost();
    assert_eq!(syncs(&orders.relay_connected(T0 + 1)).len(), 1);
}

#[test]
fn own_orders_expire_with_an_event_and_keep_alives_go_out_every_ten_seconds() {
    let mut orders = online(MarketLimits::default());
    let mut s = spec(1, 100, T0);
    s.expires_at_ms = T0 + 60_000;
    orders.place(pair(), s, T0);
    let keep_alives = |out: &OrdersOutput| publications(out).len();
    assert_eq!(keep_alives(&orders.tick(T0 + 1_000)), 0);
    assert_eq!(keep_alives(&orders.tick(T0 + 10_000)), 1);
    assert_eq!(keep_alives(&orders.tick(T0 + 15_000)), 0);
    let out = orders.tick(T0 + 60_000);
    assert!(out.events.iter().any(|e| matches!(
        e,
        OrdersEvent::OrderWithdrawn { reason, .. } if reason == "expired"
    )));
    assert_eq!(orders.own_orders().count(), 0);
}

#[test]
fn cancel_goes_out_even_for_an_order_that_never_did_and_refuses_others_orders() {
    let mut orders = Orders::new(Keypair::generate_ed25519(), MarketLimits::default(), T0);
    let placed = orders.place(pair(), spec(1, 100, T0), T0);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let out = orders.cancel(order.id, T0 + 1);
    assert_eq!(
        out.events,
        vec![OrdersEvent::OrderCancelled {
            id: order.id,
            pair: pair()
        }]
    );
    orders.relay_connected(T0 + 2);
    let out = orders.set_publishing(true, T0 + 2);
    let kinds: Vec<_> = publications(&out)
        .iter()
        .map(|p| {
            verify_order_message(&p.bytes, None, Freshness::Live, T0 + 2)
                .unwrap()
                .body
                .action
                .kind()
        })
        .collect();
    assert_eq!(kinds, vec!["cancel"], "the unsent order was dropped");
    let out = orders.cancel(OrderId([3; 16]), T0 + 3);
    assert_eq!(
        out.events,
        vec![OrdersEvent::Failed(OrdersError::NotYourOrder(OrderId(
            [3; 16]
        )))]
    );
}

#[test]
fn caps_on_pairs_and_live_orders_refuse_with_a_reason() {
    let limits = MarketLimits {
        max_orders_per_maker: 2,
        ..MarketLimits::default()
    };
    let mut orders = online(limits);
    for n in 0..2 {
        orders.place(pair(), spec(n, 10, T0), T0);
    }
    let out = orders.place(pair(), spec(9, 10, T0), T0);
    assert_eq!(
        out.events,
        vec![OrdersEvent::Failed(OrdersError::TooManyOrders(2))]
    );
    for n in 0..MAX_WATCHED_PAIRS {
        orders.watch(Pair::parse(&format!("T{n}/BTC")).unwrap(), T0);
    }
    let out = orders.watch(Pair::parse("ZZZ/BTC").unwrap(), T0);
    assert_eq!(
        out.events,
        vec![OrdersEvent::Failed(OrdersError::TooManyPairs)]
    );
    // A pair gossip refused to subscribe to is no longer followed.
    let out = orders.subscribe_failed(pair(), "not allowed".into());
    assert!(matches!(
        &out.events[..],
        [OrdersEvent::Failed(OrdersError::Subscribe { .. })]
    ));
    assert!(orders
        .watch(pair(), T0)
        .actions
        .contains(&OrdersAction::Subscribe(pair())));
}

#[test]
fn a_fill_republishes_what_is_left_and_a_full_fill_withdraws_the_order() {
    let mut orders = online(MarketLimits::default());
    let placed = orders.place(pair(), spec(1, 100, T0), T0);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let id = order.id;
    orders.reserve(&pair(), &id, 60, T0).unwrap();
    assert_eq!(orders.available(&pair(), &id), Some(40));
    // The view shows what can still be taken, in the level and in the order alike.
    let shown = |orders: &Orders| {
        let view = orders.view(&pair());
        (view.asks[0].amount, view.orders[0].amount)
    };
    assert_eq!(shown(&orders), (40, 40));
    assert!(
        orders.reserve(&pair(), &id, 41, T0).is_err(),
        "never oversold"
    );
    let out = orders.fill(&pair(), &id, 60, T0 + 1).unwrap();
    assert!(matches!(&out.events[..], [OrdersEvent::OrderReduced(o)] if o.spec.amount == 40));
    assert_eq!(shown(&orders), (40, 40));
    assert_eq!(publications(&out).len(), 1);
    orders.reserve(&pair(), &id, 40, T0 + 2).unwrap();
    let out = orders.fill(&pair(), &id, 40, T0 + 3).unwrap();
    assert!(matches!(
        &out.events[..],
        [OrdersEvent::OrderWithdrawn { reason, .. }] if reason == "filled"
    ));
    assert_eq!(orders.own_orders().count(), 0);
    // A release gives a reservation back.
    let placed = orders.place(pair(), spec(2, 10, T0), T0 + 4);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    orders.reserve(&pair(), &order.id, 10, T0 + 4).unwrap();
    orders.release(&pair(), &order.id, 10);
    assert_eq!(orders.available(&pair(), &order.id), Some(10));
}

/// A watcher's book learns each trade from the maker's signed messages: the smaller republish
/// and the cancel marked filled; a plain cancel and a re-announcement are no trades.
#[test]
fn a_watcher_sees_each_fill_the_maker_reports_and_no_other() {
    let mut maker = online(MarketLimits::default());
    let mut watcher = online(MarketLimits::default());
    watcher.watch(pair(), T0);
    let deliver = |watcher: &mut Orders, out: &OrdersOutput, at: u64| {
        for p in publications(out) {
            watcher.on_gossip(&p.topic, &p.bytes, at);
        }
    };
    let placed = maker.place(pair(), spec(1, 100, T0), T0);
    deliver(&mut watcher, &placed, T0);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let id = order.id;
    assert!(watcher.view(&pair()).trades.is_empty());
    maker.reserve(&pair(), &id, 60, T0 + 1).unwrap();
    let out = maker.fill(&pair(), &id, 60, T0 + 2).unwrap();
    deliver(&mut watcher, &out, T0 + 2);
    let trades = watcher.view(&pair()).trades;
    assert_eq!(trades.len(), 1);
    assert_eq!(
        (
            trades[0].amount,
            trades[0].price,
            trades[0].maker_side,
            trades[0].maker
        ),
        (60, spec(1, 0, T0).price, Side::Sell, maker.me)
    );
    maker.reserve(&pair(), &id, 40, T0 + 3).unwrap();
    let out = maker.fill(&pair(), &id, 40, T0 + 4).unwrap();
    deliver(&mut watcher, &out, T0 + 4);
    let amounts: Vec<u64> = watcher
        .view(&pair())
        .trades
        .iter()
        .map(|t| t.amount)
        .collect();
    assert_eq!(
        amounts,
        vec![40, 60],
        "newest first; the filled cancel traded what was left"
    );
    assert_eq!(watcher.view(&pair()).total_orders, 0);
    // The maker's own book has the same tape.
    let own: Vec<u64> = maker
        .view(&pair())
        .trades
        .iter()
        .map(|t| t.amount)
        .collect();
    assert_eq!(own, vec![40, 60]);
    // A plain cancel is no trade.
    let placed = maker.place(pair(), spec(2, 10, T0), T0 + 5);
    deliver(&mut watcher, &placed, T0 + 5);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let out = maker.cancel(order.id, T0 + 6);
    deliver(&mut watcher, &out, T0 + 6);
    assert_eq!(watcher.view(&pair()).trades.len(), 2);
}

/// What is left below the minimum fill goes out with that minimum, and a relay's market (the
/// same rules) takes it; what is left too close to expiry to announce again is withdrawn.
#[test]
fn what_is_left_below_the_minimum_fill_goes_out_and_is_accepted() {
    let mut orders = online(MarketLimits::default());
    let mut relay = darkswap_market::Market::new(MarketLimits::default());
    let placed = orders.place(
        pair(),
        OrderSpec {
            min_fill: 100,
            ..spec(1, 150, T0)
        },
        T0,
    );
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let id = order.id;
    for p in publications(&placed) {
        let v = verify_order_message(&p.bytes, None, Freshness::Live, T0).unwrap();
        relay.apply(&v, T0).unwrap();
    }
    orders.reserve(&pair(), &id, 100, T0).unwrap();
    let out = orders.fill(&pair(), &id, 100, T0 + 1).unwrap();
    assert!(
        matches!(&out.events[..], [OrdersEvent::OrderReduced(o)] if o.spec.amount == 50 && o.spec.min_fill == 50),
        "{out:?}"
    );
    let sent = publications(&out);
    assert_eq!(sent.len(), 1);
    let v = verify_order_message(&sent[0].bytes, None, Freshness::Live, T0 + 1).unwrap();
    assert_eq!(
        relay.apply(&v, T0 + 1),
        Ok(darkswap_market::Applied::Reduced(id))
    );
    assert_eq!(relay.order(&pair(), &id).unwrap().amount, 50);

    // Seconds before its expiry what is left cannot be announced again: it is withdrawn.
    let placed = orders.place(pair(), spec(2, 100, T0), T0);
    let [OrdersEvent::OrderPlaced(order)] = &placed.events[..] else {
        panic!("{placed:?}")
    };
    let (late_id, expires) = (order.id, order.spec.expires_at_ms);
    let late = expires - 5_000;
    orders.reserve(&pair(), &late_id, 30, late).unwrap();
    let out = orders.fill(&pair(), &late_id, 30, late).unwrap();
    assert!(
        matches!(&out.events[..], [OrdersEvent::OrderWithdrawn { id, reason, .. }] if *id == late_id && reason.contains("70 left")),
        "{out:?}"
    );
    assert!(orders.own_orders().all(|o| o.id != late_id));
    assert_eq!(orders.available(&pair(), &late_id), None);
}

#[test]
fn book_views_are_batched_per_pair() {
    let mut orders = online(MarketLimits::default());
    orders.place(pair(), spec(1, 100, T0), T0);
    assert_eq!(orders.book_views(T0).len(), 1);
    orders.place(pair(), spec(2, 100, T0), T0 + 10);
    assert!(
        orders.book_views(T0 + 50).is_empty(),
        "within 100 ms of the last view"
    );
    assert_eq!(orders.book_views(T0 + 100).len(), 1);
    assert!(orders.book_views(T0 + 300).is_empty(), "nothing changed");
}

#[test]
fn a_page_the_relay_refuses_is_asked_for_again_later_with_backoff() {
    let mut joiner = online(MarketLimits::default());
    let out = joiner.watch(pair(), T0);
    let [(token, first)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    let refused = || BookSyncResponse {
        orders: Vec::new(),
        more: false,
        error: Some("rate limited".into()),
        refused: Vec::new(),
    };
    let out = joiner.on_sync_page(*token, refused(), T0 + 10);
    assert!(syncs(&out).is_empty());
    assert!(
        !out.events
            .iter()
            .any(|e| matches!(e, OrdersEvent::BookSynced { .. })),
        "a refusal is not a finished sync"
    );
    assert!(out.events.contains(&OrdersEvent::SyncDeferred {
        pair: pair(),
        reason: "rate limited".into(),
        retry_in: Duration::from_secs(1),
    }));
    assert!(syncs(&joiner.tick(T0 + 500)).is_empty());
    let out = joiner.tick(T0 + 1_010);
    let [(again, request)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    assert_eq!((again, request), (token, first), "the same page again");
    // A second refusal in a row waits twice as long.
    let out = joiner.on_sync_page(*again, refused(), T0 + 1_020);
    assert!(out.events.contains(&OrdersEvent::SyncDeferred {
        pair: pair(),
        reason: "rate limited".into(),
        retry_in: Duration::from_secs(2),
    }));
    assert!(syncs(&joiner.tick(T0 + 2_500)).is_empty());
    let [(again, _)] = &syncs(&joiner.tick(T0 + 3_020))[..] else {
        panic!("no retry")
    };
    let out = joiner.on_sync_page(*again, BookSyncResponse::default(), T0 + 3_030);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(e, OrdersEvent::BookSynced { orders: 0, .. })));
}

/// A maker whose every message stays with it (none reached `watcher`), and the watcher.
fn maker_unseen_by(limits: MarketLimits) -> (Orders, Orders) {
    let mut maker = online(MarketLimits::default());
    let mut watcher = online(limits);
    watcher.watch(pair(), T0);
    maker.place(pair(), spec(1, 100, T0), T0);
    (maker, watcher)
}

/// The maker's keep-alive from its tick at `at`.
fn keep_alive(maker: &mut Orders, at: u64) -> Publication {
    let mut published = publications(&maker.tick(at));
    assert_eq!(published.len(), 1, "one keep-alive");
    published.remove(0)
}

#[test]
fn a_makers_orders_are_repaired_at_most_once_per_keep_alive_interval() {
    let (mut maker, mut watcher) = maker_unseen_by(MarketLimits::default());
    let repairs = |out: &OrdersOutput| {
        syncs(out)
            .into_iter()
            .filter(|(_, r)| r.maker.is_some())
            .collect::<Vec<_>>()
    };
    let first = keep_alive(&mut maker, T0 + 10_000);
    let out = watcher.on_gossip(&first.topic, &first.bytes, T0 + 10_000);
    let [(token, request)] = &repairs(&out)[..] else {
        panic!("a mismatch starts a repair: {out:?}")
    };
    assert_eq!(request.maker, Some(maker.me));
    // The relay answers with nothing (it has nothing of the maker either): the mismatch stays.
    watcher.on_sync_page(*token, BookSyncResponse::default(), T0 + 10_010);
    let second = keep_alive(&mut maker, T0 + 20_000);
    let out = watcher.on_gossip(&second.topic, &second.bytes, T0 + 15_000);
    assert!(repairs(&out).is_empty(), "not again within the interval");
    let third = keep_alive(&mut maker, T0 + 30_000);
    let out = watcher.on_gossip(&third.topic, &third.bytes, T0 + 20_001);
    assert_eq!(repairs(&out).len(), 1, "again once the interval is over");
}

#[test]
fn a_repair_that_pages_on_past_a_makers_cap_stops() {
    let limits = MarketLimits {
        max_orders_per_maker: 2,
        ..MarketLimits::default()
    };
    let (mut maker, mut watcher) = maker_unseen_by(limits);
    let mut page = Vec::new();
    for n in 2..5 {
        page.push(
            publications(&maker.place(pair(), spec(n, 10, T0), T0))
                .remove(0)
                .bytes,
        );
    }
    let ka = keep_alive(&mut maker, T0 + 10_000);
    let out = watcher.on_gossip(&ka.topic, &ka.bytes, T0 + 10_000);
    let [(token, _)] = &syncs(&out)[..] else {
        panic!("{out:?}")
    };
    let out = watcher.on_sync_page(
        *token,
        BookSyncResponse {
            orders: page,
            more: true,
            error: None,
            refused: Vec::new(),
        },
        T0 + 10_010,
    );
    assert!(syncs(&out).is_empty(), "no next page: {out:?}");
    assert!(out.events.contains(&OrdersEvent::MessageRejected {
        reason: OrderReject::OverCap.as_str()
    }));
}

#[test]
fn the_relay_is_asked_about_our_orders_and_a_refusal_reaches_the_trader() {
    let mut orders = online(MarketLimits::default());
    let placed = orders.place(pair(), spec(1, 100_000, T0), T0);
    let published = publications(&placed);
    assert_eq!(published.len(), 1);
    let kept = orders.place(pair(), spec(2, 50_000, T0), T0);
    assert_eq!(publications(&kept).len(), 1);
    let (refused_id, kept_id) = (order_id(&orders.me, 1), order_id(&orders.me, 2));
    // Not before the delay; then one request for our own orders on the pair.
    assert!(syncs(&orders.tick(T0 + 1_000)).is_empty());
    let due = syncs(&orders.tick(T0 + CONFIRM_AFTER_MS));
    let [(token, request)] = &due[..] else {
        panic!("{due:?}")
    };
    assert_eq!(request.maker, Some(orders.me));
    // The relay holds the second and says why it refused the first.
    let held = publications(&kept)[0].bytes.clone();
    let out = orders.on_sync_page(
        *token,
        BookSyncResponse {
            orders: vec![held],
            more: false,
            error: None,
            refused: vec![(refused_id, "address_over_cap".into())],
        },
        T0 + CONFIRM_AFTER_MS + 50,
    );
    let withdrawn: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            OrdersEvent::OrderWithdrawn { id, reason, .. } => Some((*id, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        withdrawn,
        vec![(
            refused_id,
            "the relay refused it: too many live orders from this address".to_string()
        )]
    );
    assert!(orders.own_order(&refused_id).is_none());
    assert!(
        orders.order(&pair(), &refused_id).is_none(),
        "out of our book too"
    );
    assert!(orders.own_order(&kept_id).is_some());
    // Both are settled: no more questions.
    for dt in [5_000, 10_000, 20_000] {
        assert!(syncs(&orders.tick(T0 + dt)).is_empty());
    }
    // Our own orders are never reconciled away by the answer (a repair would drop them).
    assert!(orders.order(&pair(), &kept_id).is_some());
}

#[test]
fn an_order_the_relay_has_not_seen_is_asked_about_three_times_then_left_alone() {
    let mut orders = online(MarketLimits::default());
    orders.place(pair(), spec(1, 100_000, T0), T0);
    let mut now = T0;
    let mut asked = 0;
    for _ in 0..200 {
        now += 250;
        for (token, _) in syncs(&orders.tick(now)) {
            asked += 1;
            orders.on_sync_page(token, BookSyncResponse::default(), now);
        }
    }
    assert_eq!(asked, CONFIRM_TRIES);
    assert!(orders.own_order(&order_id(&orders.me, 1)).is_some(), "kept");
}

/// A keep-alive that changes nothing shown makes no book view, so the next order is shown at
/// once instead of waiting out the batching interval behind it.
#[test]
fn a_keep_alive_makes_no_view_and_holds_no_order_back() {
    let mut maker = online(MarketLimits::default());
    let mut watcher = online(MarketLimits::default());
    watcher.watch(pair(), T0);
    let views = |out: &OrdersOutput| {
        out.events
            .iter()
            .filter(|e| matches!(e, OrdersEvent::Book(_)))
            .count()
    };
    let first = publications(&maker.place(pair(), spec(1, 100, T0), T0)).remove(0);
    assert_eq!(views(&watcher.on_gossip(&first.topic, &first.bytes, T0)), 1);
    let ka = keep_alive(&mut maker, T0 + 10_000);
    let out = watcher.on_gossip(&ka.topic, &ka.bytes, T0 + 10_000);
    assert!(syncs(&out).is_empty(), "the digests agree");
    assert_eq!(views(&out), 0, "nothing shown changed");
    let second = publications(&maker.place(pair(), spec(2, 100, T0), T0 + 10_050)).remove(0);
    assert_eq!(
        views(&watcher.on_gossip(&second.topic, &second.bytes, T0 + 10_050)),
        1,
        "shown at once"
    );
}
