//! The page's reducer without a browser.

use std::time::Duration;

use darkswap_net::libp2p::{identity::Keypair, Multiaddr, PeerId};
use darkswap_net::{AuthEvent, TradeRole, TradeState, TransportKind};
use darkswap_orderbook::{OrderId, Price, Side};
use darkswap_proto::auth::Grant;
use darkswap_proto::order::OrderSpec;

use super::*;
use crate::alerts::ALERT_SHOWN_MS;

fn peer() -> PeerId {
    Keypair::generate_ed25519().public().to_peer_id()
}

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

fn node(event: NodeEvent) -> Action {
    Action::Node(Box::new(event))
}

fn trading(event: TradingEvent) -> Action {
    node(NodeEvent::Trading(event))
}

fn start() -> Rc<AppState> {
    Rc::new(AppState::new("http://relay/api/relay-info".into()))
}

fn own(n: u64) -> OwnOrder {
    OwnOrder {
        id: OrderId::from_u64(n),
        pair: pair(),
        spec: OrderSpec {
            nonce: n,
            side: Side::Sell,
            price: Price(25_000),
            amount: 100,
            min_fill: 0,
            expires_at_ms: 2_000_000_000_000,
        },
    }
}

fn trade(n: u8, updated_at_ms: u64) -> Trade {
    Trade {
        id: [n; 16],
        role: TradeRole::Taker,
        counterparty: peer(),
        pair: pair(),
        order_id: OrderId::from_u64(n.into()),
        maker_side: Side::Sell,
        price: Price(1),
        amount: 1,
        state: TradeState::Requested,
        agreement: None,
        maker_signature: None,
        taker_signature: None,
        deadline_ms: None,
        updated_at_ms,
        fee_rate: 0,
        taker_offer: Vec::new(),
    }
}

fn book(total_orders: usize) -> BookView {
    BookView {
        pair: pair(),
        bids: Vec::new(),
        asks: Vec::new(),
        orders: Vec::new(),
        total_orders,
        trades: Vec::new(),
    }
}

#[test]
fn a_book_update_copies_no_other_slice() {
    let mut s = start();
    s = s.reduce(trading(TradingEvent::OrderPlaced(own(1))));
    s = s.reduce(trading(TradingEvent::Trade(Box::new(trade(1, 1)))));
    s = s.reduce(node(NodeEvent::MessageReceived {
        from: peer(),
        text: "hi".into(),
        sent_at_ms: 1,
    }));
    let before = Rc::clone(&s);
    let after = Rc::clone(&s).reduce(trading(TradingEvent::Book(book(1_000))));
    assert_eq!(after.trading.books[&pair()].total_orders, 1_000);
    assert!(Rc::ptr_eq(&before.trading.own, &after.trading.own));
    assert!(Rc::ptr_eq(&before.trading.trades, &after.trading.trades));
    assert!(Rc::ptr_eq(&before.trading.notices, &after.trading.notices));
    assert!(Rc::ptr_eq(&before.log, &after.log));
    assert!(Rc::ptr_eq(&before.links, &after.links));
    // The previous state is untouched (Yew may still render from it).
    assert!(before.trading.books.is_empty());
    assert_eq!(after.metrics.orders_seen.get("RUNE:DOG/BTC"), Some(&1_000));
}

#[test]
fn own_orders_follow_placed_reduced_cancelled_and_withdrawn() {
    let mut s = start();
    s = s.reduce(trading(TradingEvent::OrderPlaced(own(1))));
    s = s.reduce(trading(TradingEvent::OrderPlaced(own(2))));
    assert_eq!(s.trading.own.len(), 2);
    let mut reduced = own(1);
    reduced.spec.amount = 40;
    s = s.reduce(trading(TradingEvent::OrderReduced(reduced)));
    assert_eq!(s.trading.own[&own(1).id.to_hex()].spec.amount, 40);
    s = s.reduce(trading(TradingEvent::OrderCancelled {
        id: own(1).id,
        pair: pair(),
    }));
    s = s.reduce(trading(TradingEvent::OrderWithdrawn {
        id: own(2).id,
        pair: pair(),
        reason: "expired".into(),
    }));
    assert!(s.trading.own.is_empty());
    assert!(s.trading.notices.back().unwrap().contains("expired"));
    for n in 0..(MAX_NOTICES as u64 + 5) {
        s = s.reduce(trading(TradingEvent::OrderPlaced(own(100 + n))));
    }
    assert_eq!(s.trading.notices.len(), MAX_NOTICES);
}

#[test]
fn trades_are_kept_within_the_cap_oldest_dropped_first() {
    let mut s = start();
    for n in 0..250u64 {
        let mut t = trade(0, n);
        t.id = [(n % 256) as u8; 16];
        t.id[1] = (n / 256) as u8;
        s = s.reduce(trading(TradingEvent::Trade(Box::new(t))));
    }
    assert_eq!(s.trading.trades.len(), MAX_TRADES_SHOWN);
    let oldest = s.trading.trades.values().map(|t| t.updated_at_ms).min();
    assert_eq!(oldest, Some(50), "the 50 oldest trades were dropped");
    // A state change of a known trade replaces it.
    let mut agreed = s.trading.trades.values().next().unwrap().clone();
    agreed.state = TradeState::Agreed;
    agreed.updated_at_ms = 1_000;
    s = s.reduce(trading(TradingEvent::Trade(Box::new(agreed.clone()))));
    assert_eq!(s.trading.trades.len(), MAX_TRADES_SHOWN);
    assert_eq!(s.trading.trades[&agreed.id_hex()].state, TradeState::Agreed);
}

#[test]
fn the_message_log_is_bounded_and_reports_deliveries() {
    let mut s = start();
    let to = peer();
    s = s.reduce(Action::Sent {
        id: 7,
        to: to.to_base58(),
        text: "hello".into(),
    });
    s = s.reduce(node(NodeEvent::MessageDelivered {
        id: 7,
        to,
        rtt: Duration::from_millis(12),
        accepted: true,
        reason: None,
    }));
    assert!(matches!(
        s.log.back(),
        Some(Entry::Sent { delivery: Delivery::Delivered { rtt_ms }, .. }) if *rtt_ms == 12.0
    ));
    for n in 0..(MAX_LOG + 10) {
        s = s.reduce(node(NodeEvent::MessageReceived {
            from: to,
            text: format!("{n}"),
            sent_at_ms: 0,
        }));
    }
    assert_eq!(s.log.len(), MAX_LOG);
}

#[test]
fn relay_status_counts_reconnects_and_a_new_connection_resets_the_grant() {
    let mut s = start();
    let circuit_addr: Multiaddr = "/ip4/127.0.0.1/tcp/4001/p2p-circuit".parse().unwrap();
    s = s.reduce(node(NodeEvent::Auth(AuthEvent::Granted(Grant {
        level: darkswap_auth::Level::Authenticated,
        method: darkswap_auth::Method::Identity,
        expires_at_ms: 9,
        token: Vec::new(),
        limits: None,
    }))));
    assert!(matches!(
        s.auth,
        AuthStatus::Granted {
            level: "authenticated",
            ..
        }
    ));
    s = s.reduce(node(NodeEvent::Relay(RelayStatus::Reserved {
        transport: TransportKind::WebSocket,
        circuit_addr,
    })));
    s = s.reduce(node(NodeEvent::RelayRtt(Duration::from_millis(3))));
    assert_eq!(s.relay_rtt_ms, Some(3.0));
    s = s.reduce(node(NodeEvent::Relay(RelayStatus::Failed {
        reason: "gone".into(),
        retry_in: Duration::from_secs(1),
    })));
    assert_eq!(s.reconnects, 1);
    assert_eq!(s.relay_rtt_ms, None);
    s = s.reduce(node(NodeEvent::Relay(RelayStatus::Connecting {
        attempt: 1,
    })));
    assert!(matches!(s.auth, AuthStatus::Waiting));
    assert_eq!(s.reconnects, 1, "only a lost reservation counts");
}

#[test]
fn a_move_to_another_relay_is_remembered_and_counted() {
    let mut s = start();
    let (a, b) = (
        darkswap_net::libp2p::PeerId::random(),
        darkswap_net::libp2p::PeerId::random(),
    );
    assert_eq!(s.failover, None);
    s = s.reduce(node(NodeEvent::Relay(RelayStatus::FailingOver {
        from: a,
        to: b,
    })));
    assert_eq!(s.failover, Some((a, b)));
    s = s.reduce(node(NodeEvent::Relay(RelayStatus::FailingOver {
        from: b,
        to: a,
    })));
    assert_eq!((s.failover, s.failovers), (Some((b, a)), 2));
    assert_eq!(
        s.metrics.relay_state,
        Some("failing-over"),
        "the client metrics see it too"
    );
    assert_eq!(s.metrics.failovers, 2);
}

#[test]
fn the_metrics_tick_records_history_at_the_time_it_carries() {
    let mut s = start();
    s = s.reduce(Action::MetricsTick(10_000));
    s = s.reduce(Action::MetricsTick(11_000));
    assert_eq!(s.metrics.history.len(), 1, "within one interval");
    s = s.reduce(Action::MetricsTick(
        10_000 + darkswap_net::metrics::SAMPLE_INTERVAL_MS,
    ));
    assert_eq!(s.metrics.history.len(), 2);
}

#[test]
fn a_taken_order_raises_one_alert_and_the_title_counts_it_until_seen() {
    let mut s = start();
    let now = s.started_ms;
    s = s.reduce(Action::PageVisible {
        visible: false,
        at_ms: now,
    });
    let mut t = trade(1, now + 1);
    t.role = TradeRole::Maker;
    s = s.reduce(trading(TradingEvent::Trade(Box::new(t.clone()))));
    assert!(s.alerts.shown.is_empty(), "a request is not yet a trade");
    t.state = TradeState::Agreed;
    t.updated_at_ms = now + 2;
    s = s.reduce(trading(TradingEvent::Trade(Box::new(t.clone()))));
    assert_eq!(s.alerts.shown.len(), 1);
    let alert = s.alerts.shown[0].clone();
    assert_eq!(alert.title, "Your order was taken");
    assert_eq!(alert.trade, t.id_hex());
    assert!(alert.body.contains("sell 1 RUNE:DOG for"), "{}", alert.body);
    assert_eq!(crate::alerts::title(s.alerts.unseen), "(1) DarkSwap");
    // The same state again (a repeated report) raises nothing new.
    s = s.reduce(trading(TradingEvent::Trade(Box::new(t.clone()))));
    assert_eq!((s.alerts.shown.len(), s.alerts.unseen), (1, 1));
    // Hidden, the alert stays however long it waits.
    s = s.reduce(Action::MetricsTick(now + 60_000));
    assert_eq!(s.alerts.shown.len(), 1);
    s = s.reduce(Action::PageVisible {
        visible: true,
        at_ms: now + 60_000,
    });
    assert_eq!(crate::alerts::title(s.alerts.unseen), "DarkSwap");
    assert_eq!(s.alerts.shown.len(), 1, "seen is not dismissed");
    // Raised while the trader looks at the page: shown, not counted.
    let mut other = trade(2, now + 3);
    other.state = TradeState::Agreed;
    s = s.reduce(trading(TradingEvent::Trade(Box::new(other))));
    assert_eq!((s.alerts.shown.len(), s.alerts.unseen), (2, 0));
    assert_eq!(s.alerts.shown[1].title, "Your trade is agreed");
    s = s.reduce(Action::DismissAlert(alert.seq));
    assert_eq!(s.alerts.shown.len(), 1);
    assert_ne!(s.alerts.shown[0].seq, alert.seq);
    // Once in front of the trader for ALERT_SHOWN_MS, an alert goes by itself.
    s = s.reduce(Action::MetricsTick(now + 60_000 + ALERT_SHOWN_MS - 1));
    assert_eq!(s.alerts.shown.len(), 1);
    s = s.reduce(Action::MetricsTick(now + 60_000 + ALERT_SHOWN_MS));
    assert!(s.alerts.shown.is_empty());
}

#[test]
fn restored_trades_raise_no_alert_and_alerts_are_bounded() {
    let mut s = start().reduce(Action::PageVisible {
        visible: false,
        at_ms: 0,
    });
    let now = s.started_ms;
    // A trade agreed before this page started (restored from storage on load).
    let mut old = trade(1, now.saturating_sub(60_000));
    old.state = TradeState::Agreed;
    s = s.reduce(trading(TradingEvent::Trade(Box::new(old))));
    assert!(s.alerts.shown.is_empty());
    for n in 0..(crate::alerts::MAX_ALERTS as u8 + 3) {
        let mut t = trade(10 + n, now + 1);
        t.state = TradeState::Rejected {
            reason: "order gone".into(),
        };
        s = s.reduce(trading(TradingEvent::Trade(Box::new(t))));
    }
    assert_eq!(s.alerts.shown.len(), crate::alerts::MAX_ALERTS);
    assert_eq!(s.alerts.unseen, crate::alerts::MAX_ALERTS as u32 + 3);
    assert_eq!(s.alerts.shown[0].title, "The maker turned your take down");
    assert!(s.alerts.shown[0]
        .body
        .ends_with(": the maker said \"order gone\""));
}

fn settlement(trade_id: [u8; 16], step: Option<darkswap_settle::Step>) -> Action {
    Action::Settlement(Box::new(darkswap_settle::driver::View {
        trade_id,
        deal: None,
        step,
        reason: Some("the maker did not answer within 120 s".into()),
        txid: None,
        confirmations: (1, 1),
        fee: None,
        cancel_offered: false,
        cancel_fee: None,
    }))
}

#[test]
fn a_settled_swap_and_a_settlement_that_needs_the_trader_each_raise_one_alert() {
    use darkswap_settle::Step;
    let mut s = start();
    let t = trade(7, s.started_ms + 1);
    s = s.reduce(trading(TradingEvent::Trade(Box::new(t.clone()))));
    // A settlement the page restored on load (first seen already settled) raises nothing.
    s = s.reduce(settlement([9; 16], Some(Step::Settled)));
    assert!(s.alerts.shown.is_empty());
    s = s.reduce(settlement(t.id, Some(Step::Offered)));
    s = s.reduce(settlement(t.id, Some(Step::Broadcast)));
    assert!(s.alerts.shown.is_empty(), "steps on the way raise nothing");
    s = s.reduce(settlement(t.id, Some(Step::Settled)));
    assert_eq!(s.alerts.shown.len(), 1);
    assert_eq!(s.alerts.shown[0].title, "Your trade settled");
    assert!(
        s.alerts.shown[0].body.contains("1 confirmations"),
        "{}",
        s.alerts.shown[0].body
    );
    s = s.reduce(settlement(t.id, Some(Step::Settled)));
    assert_eq!(
        s.alerts.shown.len(),
        1,
        "the same step again raises nothing"
    );

    let other = trade(8, s.started_ms + 2);
    s = s.reduce(trading(TradingEvent::Trade(Box::new(other.clone()))));
    s = s.reduce(settlement(other.id, Some(Step::Signed)));
    let Action::Settlement(mut quiet) = settlement(other.id, Some(Step::Signed)) else {
        unreachable!()
    };
    quiet.cancel_offered = true;
    s = s.reduce(Action::Settlement(quiet));
    assert_eq!(s.alerts.shown.len(), 2);
    assert_eq!(s.alerts.shown[1].title, "A trade needs you");
    assert!(s.alerts.shown[1].body.contains("cancel"));
}
