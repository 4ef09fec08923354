//! Two traders' real cores, wired to each other in memory: every envelope one sends is handed to
//! the other as the network would, or held back, delayed, altered or dropped by the test.

use super::*;
use darkswap_market::MarketLimits;
use darkswap_orderbook::Price;
use darkswap_proto::order::OrderSpec;
use darkswap_proto::trade::CONFIRM_WINDOW_MS;

use crate::orders::{OrdersAction, OrdersEvent};

const T0: u64 = 1_800_000_000_000;

struct Trader {
    keypair: Keypair,
    id: PeerId,
    orders: Orders,
    negotiation: Negotiation,
    events: Vec<NegotiationEvent>,
    order_events: Vec<OrdersEvent>,
}

impl Trader {
    fn new() -> Self {
        Self::with_rekey(RekeyPolicy::default())
    }

    fn with_rekey(rekey: RekeyPolicy) -> Self {
        let keypair = Keypair::generate_ed25519();
        let mut orders = Orders::new(keypair.clone(), MarketLimits::default(), T0);
        orders.relay_connected(T0);
        orders.set_publishing(true, T0);
        Trader {
            id: keypair.public().to_peer_id(),
            negotiation: Negotiation::new(keypair.clone(), rekey),
            keypair,
            orders,
            events: Vec::new(),
            order_events: Vec::new(),
        }
    }

    /// Restarts the negotiation (a reload): trades and sessions in memory are gone.
    fn restart(&mut self) {
        self.negotiation = Negotiation::new(self.keypair.clone(), RekeyPolicy::default());
    }

    fn record(&mut self, out: &NegotiationOutput) {
        self.events.extend(out.events.iter().cloned());
        self.order_events.extend(out.orders.events.iter().cloned());
    }

    fn trades(&self) -> Vec<Trade> {
        self.events
            .iter()
            .filter_map(|e| match e {
                NegotiationEvent::Trade(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }

    fn sessions_established(&self) -> usize {
        self.events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    NegotiationEvent::E2e(E2eEvent::SessionEstablished { .. })
                )
            })
            .count()
    }

    fn last_state(&self, id: &TradeId) -> Option<TradeState> {
        self.negotiation.trade(id).map(|t| t.state.clone())
    }
}

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

/// The maker places an order of `amount` (minimum fill `min_fill`) and the takers see it by gossip.
fn market(maker: &mut Trader, takers: &mut [&mut Trader], amount: u64, min_fill: u64) -> OrderId {
    let spec = OrderSpec {
        nonce: 1,
        side: Side::Sell,
        price: Price::parse_decimal("0.000025").unwrap(),
        amount,
        min_fill,
        expires_at_ms: T0 + 3_600_000,
    };
    let placed = maker.orders.place(pair(), spec, T0);
    let Some(OrdersAction::Publish(publication)) = placed
        .actions
        .into_iter()
        .find(|a| matches!(a, OrdersAction::Publish(_)))
    else {
        panic!("the order goes out at once")
    };
    for taker in takers.iter_mut() {
        taker.orders.watch(pair(), T0);
        taker
            .orders
            .on_gossip(&publication.topic, &publication.bytes, T0);
    }
    order_id(&maker.id, 1)
}

fn order_id(maker: &PeerId, nonce: u64) -> OrderId {
    darkswap_proto::order::order_id(maker, nonce)
}

type Sent = (RequestToken, TradeEnvelope);

fn sends(out: &NegotiationOutput) -> Vec<Sent> {
    out.actions
        .iter()
        .filter_map(|a| match a {
            NegotiationAction::Send {
                token, envelope, ..
            } => Some((*token, envelope.clone())),
            NegotiationAction::Connect(_) => None,
        })
        .collect()
}

/// Hands one request to the maker and its answer back to the taker; returns what the taker
/// does next.
fn exchange(taker: &mut Trader, maker: &mut Trader, sent: Sent, now: u64) -> NegotiationOutput {
    let (token, envelope) = sent;
    let (answer, out) = maker
        .negotiation
        .on_request(taker.id, envelope, &mut maker.orders, now);
    maker.record(&out);
    let out = taker.negotiation.on_response(token, maker.id, answer, now);
    taker.record(&out);
    out
}

/// Delivers everything until the taker has nothing more to send.
fn settle(taker: &mut Trader, maker: &mut Trader, out: NegotiationOutput, now: u64) {
    let mut queue: VecDeque<Sent> = sends(&out).into();
    while let Some(sent) = queue.pop_front() {
        let out = exchange(taker, maker, sent, now);
        queue.extend(sends(&out));
    }
}

fn take(taker: &mut Trader, order: OrderId, amount: u64, now: u64) -> NegotiationOutput {
    let out = taker.negotiation.take(
        &taker.orders,
        &pair(),
        order,
        amount,
        crate::negotiation::new_trade_id(),
        TakeSettlement::default(),
        true,
        now,
    );
    taker.record(&out);
    out
}

fn trade_id(out: &NegotiationOutput) -> TradeId {
    out.events
        .iter()
        .find_map(|e| match e {
            NegotiationEvent::Trade(t) => Some(t.id),
            _ => None,
        })
        .expect("a trade event")
}

/// A maker with an order of 100 and a taker that took `amount` of it at `now`: the handshake is
/// done, the sealed take not delivered yet.
fn taken(amount: u64, now: u64) -> (Trader, Trader, OrderId, TradeId, Sent) {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 0);
    let (id, sealed) = sealed_take(&mut taker, &mut maker, order, amount, now);
    (maker, taker, order, id, sealed)
}

/// Takes `amount` of `order` and runs the handshake: the trade's id and the sealed take request,
/// not delivered yet.
fn sealed_take(
    taker: &mut Trader,
    maker: &mut Trader,
    order: OrderId,
    amount: u64,
    now: u64,
) -> (TradeId, Sent) {
    let out = take(taker, order, amount, now);
    let id = trade_id(&out);
    let [hs] = &sends(&out)[..] else {
        panic!("a handshake first: {out:?}")
    };
    let [sealed] = &sends(&exchange(taker, maker, hs.clone(), now))[..] else {
        panic!("then the sealed take")
    };
    (id, sealed.clone())
}

#[test]
fn a_take_ends_agreed_on_both_sides_with_one_agreement_signed_by_both() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100_000, 0);
    let out = take(&mut taker, order, 40_000, T0 + 1);
    let id = trade_id(&out);
    assert!(matches!(
        &sends(&out)[..],
        [(_, TradeEnvelope::Handshake(_))]
    ));
    settle(&mut taker, &mut maker, out, T0 + 2);

    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
    let (t, m) = (
        taker.negotiation.trade(&id).unwrap(),
        maker.negotiation.trade(&id).unwrap(),
    );
    assert_eq!(t.agreement, m.agreement);
    let agreement = t.agreement.as_deref().unwrap();
    Agreement::verify(agreement, &maker.id, t.maker_signature.as_deref().unwrap()).unwrap();
    Agreement::verify(agreement, &taker.id, m.taker_signature.as_deref().unwrap()).unwrap();
    let states: Vec<_> = taker.trades().iter().map(|t| t.state.label()).collect();
    assert_eq!(states, ["requested", "accepted", "agreed"]);
    // The maker's order shrank by what was traded, and says so.
    assert!(maker
        .order_events
        .iter()
        .any(|e| matches!(e, OrdersEvent::OrderReduced(o) if o.spec.amount == 60_000)));
    assert!(taker.events.iter().any(|e| matches!(
        e,
        NegotiationEvent::E2e(E2eEvent::SessionEstablished {
            initiator: true,
            ..
        })
    )));
}

#[test]
fn two_takers_racing_for_the_same_units_never_both_get_them() {
    let (mut maker, mut a, mut b) = (Trader::new(), Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut a, &mut b], 100, 0);
    let out_a = take(&mut a, order, 60, T0 + 1);
    let out_b = take(&mut b, order, 60, T0 + 1);
    let (id_a, id_b) = (trade_id(&out_a), trade_id(&out_b));
    // Both handshakes, then both takes reach the maker before either confirms.
    let [hs_a] = &sends(&out_a)[..] else { panic!() };
    let [hs_b] = &sends(&out_b)[..] else { panic!() };
    let take_a = sends(&exchange(&mut a, &mut maker, hs_a.clone(), T0 + 2));
    let take_b = sends(&exchange(&mut b, &mut maker, hs_b.clone(), T0 + 2));
    let confirm_a = sends(&exchange(&mut a, &mut maker, take_a[0].clone(), T0 + 3));
    let after_b = exchange(&mut b, &mut maker, take_b[0].clone(), T0 + 3);
    assert!(sends(&after_b).is_empty());
    assert!(matches!(
        b.last_state(&id_b),
        Some(TradeState::Rejected { reason }) if reason.contains("40")
    ));
    exchange(&mut a, &mut maker, confirm_a[0].clone(), T0 + 4);
    assert_eq!(a.last_state(&id_a), Some(TradeState::Agreed));
    assert_eq!(maker.orders.available(&pair(), &order), Some(40));
}

#[test]
fn an_unconfirmed_take_times_out_on_both_sides_and_releases_the_reservation() {
    let (mut maker, mut taker, order, id, sealed) = taken(30, T0 + 1);
    // The maker accepts; its answer reaches the taker, whose confirmation is lost.
    let _lost_confirm = sends(&exchange(&mut taker, &mut maker, sealed.clone(), T0 + 2));
    assert_eq!(maker.orders.available(&pair(), &order), Some(70));
    let deadline = T0 + 2 + CONFIRM_WINDOW_MS;
    // Not before the deadline and its grace.
    let out = maker
        .negotiation
        .tick(&mut maker.orders, deadline + DEADLINE_GRACE_MS);
    assert!(out.events.is_empty());
    let out = maker
        .negotiation
        .tick(&mut maker.orders, deadline + DEADLINE_GRACE_MS + 1);
    maker.record(&out);
    assert!(matches!(
        maker.last_state(&id),
        Some(TradeState::Aborted { reason }) if reason.contains("did not confirm")
    ));
    assert_eq!(maker.orders.available(&pair(), &order), Some(100));
    let out = taker
        .negotiation
        .tick(&mut taker.orders, deadline + DEADLINE_GRACE_MS + 1);
    taker.record(&out);
    assert!(matches!(
        taker.last_state(&id),
        Some(TradeState::Aborted { .. })
    ));
}

#[test]
fn a_taker_that_aborts_tells_the_maker_who_releases_the_amount_at_once() {
    let (mut maker, mut taker, order, id, sealed) = taken(30, T0 + 1);
    // The maker's acceptance reaches the taker after the agreement expired.
    let (answer, out) =
        maker
            .negotiation
            .on_request(taker.id, sealed.1.clone(), &mut maker.orders, T0 + 2);
    maker.record(&out);
    assert_eq!(maker.orders.available(&pair(), &order), Some(70));
    let late = T0 + 2 + CONFIRM_WINDOW_MS + 1;
    let out = taker
        .negotiation
        .on_response(sealed.0, maker.id, answer, late);
    taker.record(&out);
    assert!(matches!(
        taker.last_state(&id),
        Some(TradeState::Aborted { reason }) if reason.contains("expired")
    ));
    let abort = sends(&out);
    assert_eq!(abort.len(), 1, "the abort goes to the maker");
    exchange(&mut taker, &mut maker, abort[0].clone(), late);
    assert!(matches!(
        maker.last_state(&id),
        Some(TradeState::Aborted { reason }) if reason.contains("the taker aborted")
    ));
    assert_eq!(maker.orders.available(&pair(), &order), Some(100));
}

#[test]
fn a_countersigned_take_resumes_after_the_taker_restarts() {
    let (mut maker, mut taker, _, id, sealed) = taken(25, T0 + 1);
    let confirm = sends(&exchange(&mut taker, &mut maker, sealed.clone(), T0 + 2));
    assert_eq!(confirm.len(), 1);
    // The page reloads before the confirmation leaves: only the stored trade survives.
    let stored = taker.negotiation.trade(&id).cloned().unwrap();
    assert_eq!(stored.state, TradeState::Accepted);
    taker.restart();
    let out = taker.negotiation.restore(vec![stored], T0 + 3);
    taker.record(&out);
    assert_eq!(taker.negotiation.peers_waiting(), vec![maker.id]);
    // Connected again: a fresh handshake, then the same confirmation.
    let out = taker.negotiation.peer_connected(maker.id, T0 + 4);
    assert!(matches!(
        &sends(&out)[..],
        [(_, TradeEnvelope::Handshake(_))]
    ));
    settle(&mut taker, &mut maker, out, T0 + 4);
    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
}

#[test]
fn a_restart_aborts_trades_in_negotiation_and_keeps_finished_ones() {
    let mut trader = Trader::new();
    let counterparty = Trader::new().id;
    let trade = |state: TradeState, role: TradeRole| Trade {
        role,
        counterparty,
        updated_at_ms: 0,
        ..record(state, 0)
    };
    let open = trade(TradeState::Accepted, TradeRole::Maker);
    let done = trade(TradeState::Agreed, TradeRole::Maker);
    // A countersigned take past its deadline cannot resume either.
    let mut late = trade(TradeState::Accepted, TradeRole::Taker);
    late.taker_signature = Some(vec![1; 64]);
    late.deadline_ms = Some(T0 - 1);
    let out = trader
        .negotiation
        .restore(vec![open.clone(), done.clone(), late.clone()], T0);
    let states: Vec<_> = out
        .events
        .iter()
        .map(|e| match e {
            NegotiationEvent::Trade(t) => (t.id, t.state.label()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (open.id, "aborted"),
            (done.id, "agreed"),
            (late.id, "aborted")
        ]
    );
    assert!(trader.negotiation.peers_waiting().is_empty());
    // Restoring twice changes nothing.
    assert!(trader.negotiation.restore(vec![done], T0).events.is_empty());
}

#[test]
fn sessions_rekey_in_band_mid_trade_and_every_trade_still_agrees() {
    let rekey = RekeyPolicy {
        after_messages: 2,
        after_ms: 3_600_000,
    };
    let (mut maker, mut taker) = (Trader::with_rekey(rekey), Trader::with_rekey(rekey));
    let order = market(&mut maker, &mut [&mut taker], 1_000, 0);
    let mut ids = Vec::new();
    for n in 0..3u64 {
        let out = take(&mut taker, order, 10, T0 + 10 * n + 1);
        ids.push(trade_id(&out));
        settle(&mut taker, &mut maker, out, T0 + 10 * n + 2);
    }
    for id in &ids {
        assert_eq!(taker.last_state(id), Some(TradeState::Agreed));
        assert_eq!(maker.last_state(id), Some(TradeState::Agreed));
    }
    let epochs: Vec<u32> = taker
        .events
        .iter()
        .filter_map(|e| match e {
            NegotiationEvent::E2e(E2eEvent::Rekeyed { epoch, .. }) => Some(*epoch),
            _ => None,
        })
        .collect();
    assert!(epochs.len() >= 2, "{epochs:?}");
    assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
    let sessions = taker.sessions_established();
    assert_eq!(sessions, 1, "one session, rekeyed in band");
    assert_eq!(maker.orders.available(&pair(), &order), Some(970));
}

#[test]
fn an_altered_frame_is_refused_and_counted_and_the_trade_ends() {
    let (mut maker, mut taker, order, id, (token, sealed)) = taken(10, T0 + 1);
    let TradeEnvelope::Sealed(frame) = &sealed else {
        panic!("{sealed:?}")
    };
    let token = &token;
    let mut altered = frame.clone();
    altered[20] ^= 0x01;
    let out = exchange(
        &mut taker,
        &mut maker,
        (*token, TradeEnvelope::Sealed(altered)),
        T0 + 2,
    );
    assert!(maker
        .events
        .iter()
        .any(|e| matches!(e, NegotiationEvent::E2e(E2eEvent::FrameRejected { .. }))));
    assert!(matches!(
        taker.last_state(&id),
        Some(TradeState::Aborted { reason }) if reason.contains("could not open")
    ));
    assert!(sends(&out).is_empty());
    assert_eq!(
        maker.orders.available(&pair(), &order),
        Some(100),
        "nothing reserved"
    );
}

#[test]
fn a_maker_that_lost_the_session_gets_a_new_handshake_and_the_request_once_more() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 0);
    let out = take(&mut taker, order, 10, T0 + 1);
    settle(&mut taker, &mut maker, out, T0 + 1);
    // The maker restarts: its sessions are gone, its order book is not.
    maker.restart();
    let out = take(&mut taker, order, 10, T0 + 2);
    let id = trade_id(&out);
    let [(_, TradeEnvelope::Sealed(_))] = &sends(&out)[..] else {
        panic!("sealed in the old session")
    };
    settle(&mut taker, &mut maker, out, T0 + 2);
    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
    let handshakes = taker.sessions_established();
    assert_eq!(handshakes, 2);
}

#[test]
fn takes_the_book_cannot_honour_are_refused_before_anything_is_sent() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 30);
    let failed = |out: NegotiationOutput| -> TakeError {
        assert!(out.actions.is_empty(), "{out:?}");
        match &out.events[..] {
            [NegotiationEvent::TakeFailed { error, .. }] => error.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(
        failed(take(&mut taker, order, 101, T0)),
        TakeError::Amount { available: 100 }
    );
    assert_eq!(
        failed(take(&mut taker, order, 0, T0)),
        TakeError::Amount { available: 100 }
    );
    assert_eq!(
        failed(take(&mut taker, order, 29, T0)),
        TakeError::BelowMinimum { min: 30 }
    );
    assert_eq!(
        failed(take(&mut taker, OrderId([7; 16]), 10, T0)),
        TakeError::OrderGone
    );
    let own = maker.negotiation.take(
        &maker.orders,
        &pair(),
        order,
        40,
        crate::negotiation::new_trade_id(),
        TakeSettlement::default(),
        true,
        T0,
    );
    assert_eq!(failed(own), TakeError::OwnOrder);
    assert_eq!(taker.negotiation.open_trades(), 0);
    // The taker chooses the id; one already in use is refused, and the failure names it.
    let id = crate::negotiation::new_trade_id();
    let again = |taker: &mut Trader| {
        taker.negotiation.take(
            &taker.orders,
            &pair(),
            order,
            40,
            id,
            TakeSettlement::default(),
            true,
            T0,
        )
    };
    let first = again(&mut taker);
    assert!(first
        .events
        .iter()
        .any(|e| matches!(e, NegotiationEvent::Trade(t) if t.id == id)));
    let second = again(&mut taker);
    assert!(second.actions.is_empty());
    assert!(matches!(
        &second.events[..],
        [NegotiationEvent::TakeFailed { trade_id, error: TakeError::DuplicateId }] if *trade_id == id
    ));
}

#[test]
fn a_maker_out_of_reach_ends_the_take_and_an_unanswered_handshake_too() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 0);
    let out = taker.negotiation.take(
        &taker.orders,
        &pair(),
        order,
        10,
        crate::negotiation::new_trade_id(),
        TakeSettlement::default(),
        false,
        T0,
    );
    assert_eq!(out.actions, vec![NegotiationAction::Connect(maker.id)]);
    let id = trade_id(&out);
    let out = taker
        .negotiation
        .peer_unreachable(maker.id, "no route", T0 + 1);
    assert!(matches!(
        &out.events[..],
        [NegotiationEvent::Trade(t)] if t.id == id && t.state.label() == "aborted"
    ));
    assert!(taker.negotiation.peers_waiting().is_empty());

    let out = take(&mut taker, order, 10, T0 + 2);
    let id = trade_id(&out);
    let [(token, _)] = &sends(&out)[..] else {
        panic!()
    };
    let out = taker
        .negotiation
        .on_failure(*token, "timeout", false, T0 + 22);
    assert!(matches!(
        &out.events[..],
        [NegotiationEvent::Trade(t)] if t.id == id
            && matches!(&t.state, TradeState::Aborted { reason } if reason.contains("handshake"))
    ));
    // An answer to a request we no longer know changes nothing.
    let late = taker.negotiation.on_response(
        *token,
        maker.id,
        TradeEnvelope::Refused(Refusal::BadFrame),
        T0 + 23,
    );
    assert_eq!(late, NegotiationOutput::default());
}

#[test]
fn a_hostile_maker_cannot_make_the_taker_agree_to_other_terms() {
    let (mut maker, mut taker, order, id, (token, sealed)) = taken(10, T0 + 1);
    let TradeEnvelope::Sealed(frame) = &sealed else {
        panic!("{sealed:?}")
    };
    let token = &token;
    // The maker opens the take with the real session, then answers with an agreement for 90
    // units instead of 10, signed with its own key and sealed properly.
    let aad = request_aad(&taker.id, &maker.id);
    let Ok(Opened::Data(_)) =
        maker
            .negotiation
            .sessions
            .open(taker.id, Role::Responder, &aad, frame, T0 + 2)
    else {
        panic!()
    };
    let spec = maker.orders.own_order(&order).unwrap().spec;
    let agreement = Agreement::new(
        id,
        pair(),
        order,
        maker.id,
        taker.id,
        spec.side,
        spec.price,
        90,
        0,
        T0 + 2,
    )
    .unwrap()
    .encode();
    let signature = Agreement::sign(&agreement, &maker.keypair).unwrap();
    let response = TradeResponse::Accepted {
        agreement,
        maker_signature: signature,
    };
    let reply_aad = response_aad(&taker.id, &maker.id, &digest(frame));
    let sealed = maker
        .negotiation
        .sessions
        .seal(
            taker.id,
            Role::Responder,
            &reply_aad,
            &response.encode(),
            T0 + 2,
        )
        .unwrap();
    let out =
        taker
            .negotiation
            .on_response(*token, maker.id, TradeEnvelope::Sealed(sealed), T0 + 2);
    assert!(matches!(
        taker.last_state(&id),
        Some(TradeState::Aborted { reason }) if reason.contains("does not match")
    ));
    assert!(
        taker
            .negotiation
            .trade(&id)
            .unwrap()
            .taker_signature
            .is_none(),
        "nothing signed"
    );
    assert_eq!(sends(&out).len(), 1, "the abort");
}

/// A trade record in `state`, for the storage and restore tests.
fn record(state: TradeState, updated_at_ms: u64) -> Trade {
    Trade {
        id: rand::random(),
        role: TradeRole::Maker,
        counterparty: Trader::new().id,
        pair: pair(),
        order_id: OrderId([1; 16]),
        maker_side: Side::Sell,
        price: Price(1),
        amount: 1,
        state,
        agreement: None,
        maker_signature: None,
        taker_signature: None,
        deadline_ms: None,
        updated_at_ms,
        fee_rate: 0,
        taker_offer: Vec::new(),
    }
}

fn aborted() -> TradeState {
    TradeState::Aborted {
        reason: "the taker went away".into(),
    }
}

#[test]
fn take_and_abort_never_pushes_out_an_agreed_trade() {
    // The oldest trade is the one both sides signed; a counterparty then takes and aborts more
    // times than the cap on ended trades.
    let agreed = record(TradeState::Agreed, T0);
    let mut all = vec![agreed.clone()];
    all.extend((0..MAX_TRADES as u64 + 5).map(|n| record(aborted(), T0 + 1 + n)));
    // In memory, after a restore that goes through the same eviction as live trades.
    let mut trader = Trader::new();
    trader.negotiation.restore(all.clone(), T0);
    assert!(trader.negotiation.trade(&agreed.id).is_some());
    // In storage.
    let mut stored: BTreeMap<TradeId, Trade> = all.into_iter().map(|t| (t.id, t)).collect();
    keep_trades_worth_storing(&mut stored, MAX_TRADES);
    assert!(stored.contains_key(&agreed.id), "the agreed trade stays");
    assert_eq!(stored.len(), MAX_TRADES + 1, "ended ones down to their cap");
    assert!(
        stored
            .values()
            .all(|t| t.updated_at_ms > T0 + 5 || t.id == agreed.id),
        "the oldest ended ones went first"
    );
}

/// Another take of `order` by a taker that already has a session with the maker; the maker's
/// answer goes back to the taker, whose confirmation (if any) is never delivered.
fn take_and_leave_hanging(taker: &mut Trader, maker: &mut Trader, order: OrderId) -> TradeId {
    let out = take(taker, order, 1, T0);
    let id = trade_id(&out);
    let [sent] = &sends(&out)[..] else {
        panic!("with a session, the sealed take at once: {out:?}")
    };
    exchange(taker, maker, sent.clone(), T0);
    id
}

#[test]
fn one_counterparty_holds_at_most_four_takes_and_others_still_trade() {
    let (mut maker, mut hostile, mut honest) = (Trader::new(), Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut hostile, &mut honest], 100, 0);
    // Takes of one unit, accepted by the maker (which reserves) and never confirmed.
    let (first, sealed) = sealed_take(&mut hostile, &mut maker, order, 1, T0);
    exchange(&mut hostile, &mut maker, sealed, T0);
    let mut ids = vec![first];
    for _ in 1..=MAX_OPEN_PER_COUNTERPARTY {
        ids.push(take_and_leave_hanging(&mut hostile, &mut maker, order));
    }
    for id in &ids[..MAX_OPEN_PER_COUNTERPARTY] {
        assert_eq!(hostile.last_state(id), Some(TradeState::Accepted));
    }
    let Some(TradeState::Rejected { reason }) = hostile.last_state(&ids[MAX_OPEN_PER_COUNTERPARTY])
    else {
        panic!("the fifth take is refused")
    };
    assert!(
        reason.contains("takes in negotiation with this maker"),
        "{reason}"
    );
    assert_eq!(maker.negotiation.open_trades(), MAX_OPEN_PER_COUNTERPARTY);
    // Another taker is not affected.
    let out = take(&mut honest, order, 10, T0);
    let id = trade_id(&out);
    settle(&mut honest, &mut maker, out, T0);
    assert_eq!(honest.last_state(&id), Some(TradeState::Agreed));
}

#[test]
fn takes_left_hanging_on_our_orders_never_stop_us_from_taking() {
    // Sixteen counterparties hold four takes each of our order: every maker slot is taken.
    let mut maker = Trader::new();
    let mut hostiles: Vec<Trader> = (0..MAX_OPEN_TRADES / MAX_OPEN_PER_COUNTERPARTY)
        .map(|_| Trader::new())
        .collect();
    let mut late = Trader::new();
    let order = {
        let mut takers: Vec<&mut Trader> = hostiles.iter_mut().collect();
        takers.push(&mut late);
        market(&mut maker, &mut takers, 1_000, 0)
    };
    for hostile in &mut hostiles {
        let (_, sealed) = sealed_take(hostile, &mut maker, order, 1, T0);
        exchange(hostile, &mut maker, sealed, T0);
        for _ in 1..MAX_OPEN_PER_COUNTERPARTY {
            take_and_leave_hanging(hostile, &mut maker, order);
        }
    }
    assert_eq!(maker.negotiation.open_trades(), MAX_OPEN_TRADES);
    let (busy, sealed) = sealed_take(&mut late, &mut maker, order, 1, T0);
    exchange(&mut late, &mut maker, sealed, T0);
    assert!(matches!(
        late.last_state(&busy),
        Some(TradeState::Rejected { reason }) if reason.contains("busy")
    ));
    // The maker still takes someone else's order, from its own budget.
    let mut seller = Trader::new();
    let theirs = market(&mut seller, &mut [&mut maker], 100, 0);
    let out = take(&mut maker, theirs, 10, T0);
    let id = trade_id(&out);
    settle(&mut maker, &mut seller, out, T0);
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
}

fn settle_events(t: &Trader) -> Vec<(TradeId, PeerId, Vec<u8>)> {
    t.events
        .iter()
        .filter_map(|e| match e {
            NegotiationEvent::Settle {
                trade_id,
                from,
                message,
            } => Some((*trade_id, *from, message.clone())),
            _ => None,
        })
        .collect()
}

fn undelivered(t: &Trader) -> Vec<String> {
    t.events
        .iter()
        .filter_map(|e| match e {
            NegotiationEvent::SettleUndelivered { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_settling_take_signs_its_fee_rate_and_settlement_messages_flow_both_ways() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100_000, 0);
    let offer = vec![1, 2, 3];
    let settlement = TakeSettlement {
        fee_rate: 3,
        offer: offer.clone(),
    };
    let out = taker.negotiation.take(
        &taker.orders,
        &pair(),
        order,
        40_000,
        crate::negotiation::new_trade_id(),
        settlement,
        true,
        T0 + 1,
    );
    taker.record(&out);
    let id = trade_id(&out);
    // Before the agreement, nothing about settlement goes out.
    let early = taker.negotiation.settle_send(id, vec![9], true, T0 + 1);
    taker.record(&early);
    assert!(sends(&early).is_empty());
    assert_eq!(undelivered(&taker), [TakeError::NotAgreed.to_string()]);
    settle(&mut taker, &mut maker, out, T0 + 2);
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    let m = maker.negotiation.trade(&id).unwrap();
    assert_eq!((m.fee_rate, m.taker_offer.clone()), (3, offer));
    let signed = Agreement::decode(m.agreement.as_deref().unwrap()).unwrap();
    assert_eq!(signed.fee_rate, 3, "the fee rate is in what both signed");

    // The maker speaks first here: it starts its own session with the taker, as its initiator.
    let big = vec![7; darkswap_proto::settle::MAX_SETTLE_MESSAGE_BYTES];
    let out = maker.negotiation.settle_send(id, big.clone(), true, T0 + 3);
    maker.record(&out);
    assert!(matches!(
        &sends(&out)[..],
        [(_, TradeEnvelope::Handshake(_))]
    ));
    settle(&mut maker, &mut taker, out, T0 + 3);
    assert_eq!(settle_events(&taker), [(id, maker.id, big)]);
    // And the taker, in the session it already has.
    let out = taker.negotiation.settle_send(id, vec![8], true, T0 + 4);
    taker.record(&out);
    assert!(matches!(&sends(&out)[..], [(_, TradeEnvelope::Sealed(_))]));
    settle(&mut taker, &mut maker, out, T0 + 4);
    assert_eq!(settle_events(&maker), [(id, taker.id, vec![8])]);
    assert_eq!(undelivered(&maker), Vec::<String>::new());
    assert_eq!(undelivered(&taker).len(), 1, "only the early one");
}

#[test]
fn a_stranger_cannot_speak_for_someone_elses_trade_and_hears_so() {
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 0);
    let out = take(&mut taker, order, 10, T0 + 1);
    let id = trade_id(&out);
    settle(&mut taker, &mut maker, out, T0 + 2);
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
    let mut stranger = Trader::new();
    stranger
        .negotiation
        .enqueue(
            maker.id,
            id,
            TradeRequest::Settle {
                trade_id: id,
                message: vec![1],
            },
        )
        .unwrap();
    let out = stranger.negotiation.peer_connected(maker.id, T0 + 3);
    stranger.record(&out);
    settle(&mut stranger, &mut maker, out, T0 + 3);
    assert!(settle_events(&maker).is_empty());
    assert_eq!(undelivered(&stranger), [TakeError::NotAgreed.to_string()]);
}

#[test]
fn fee_rates_suit_only_pairs_that_settle_on_bitcoin() {
    let rune = Pair::parse("RUNE:DOG/BTC").unwrap();
    let fiat = Pair::parse("BTC/USDT").unwrap();
    let with = |fee_rate: u64, offer: Vec<u8>| TakeSettlement { fee_rate, offer };
    assert!(with(0, vec![]).fits(&rune));
    assert!(with(0, vec![]).fits(&fiat));
    assert!(with(2, vec![1]).fits(&rune));
    assert!(!with(2, vec![]).fits(&fiat));
    assert!(!with(0, vec![1]).fits(&rune), "an offer needs a fee rate");
    assert!(!with(MAX_TRADE_FEE_RATE + 1, vec![]).fits(&rune));
    let (mut maker, mut taker) = (Trader::new(), Trader::new());
    let order = market(&mut maker, &mut [&mut taker], 100, 0);
    let out = taker.negotiation.take(
        &taker.orders,
        &pair(),
        order,
        10,
        crate::negotiation::new_trade_id(),
        with(MAX_TRADE_FEE_RATE + 1, vec![]),
        true,
        T0,
    );
    assert!(sends(&out).is_empty());
    assert!(out.events.iter().any(|e| matches!(
        e,
        NegotiationEvent::TakeFailed {
            error: TakeError::FeeRate(_),
            ..
        }
    )));
}

/// The taker's take reached the maker, whose answer was lost with the connection (its relay
/// died): the taker sends it again once connected anew, the maker answers the same agreement,
/// and the trade ends agreed, the amount reserved once.
#[test]
fn a_take_whose_connection_closed_is_sent_again_and_answered_the_same() {
    let (mut maker, mut taker, order, id, sent) = taken(30, T0 + 1);
    let (token, envelope) = sent;
    let (first, out) = maker
        .negotiation
        .on_request(taker.id, envelope, &mut maker.orders, T0 + 2);
    maker.record(&out);
    let TradeEnvelope::Sealed(_) = first else {
        panic!("{first:?}")
    };
    // The answer never arrives: the connection closed.
    let out = taker
        .negotiation
        .on_failure(token, "connection closed", true, T0 + 3);
    assert_eq!(out, NegotiationOutput::default(), "nothing ends");
    assert_eq!(taker.last_state(&id), Some(TradeState::Requested));
    assert_eq!(taker.negotiation.peers_waiting(), vec![maker.id]);
    // Connected again (through another relay): the same take, sealed anew, gets the same
    // agreement, and the trade ends agreed on both sides.
    let out = taker.negotiation.peer_connected(maker.id, T0 + 4);
    settle(&mut taker, &mut maker, out, T0 + 4);
    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
    let order_now = maker.orders.own_order(&order).unwrap();
    assert_eq!(order_now.spec.amount, 70, "30 traded once, not twice");
}

/// A confirmation lost with its connection is sent again too; the maker's answer to a repeated
/// confirmation is the same.
#[test]
fn a_confirmation_whose_connection_closed_is_sent_again() {
    let (mut maker, mut taker, _, id, sent) = taken(10, T0 + 1);
    let [confirm] = &sends(&exchange(&mut taker, &mut maker, sent, T0 + 2))[..] else {
        panic!("a confirmation")
    };
    assert_eq!(taker.last_state(&id), Some(TradeState::Accepted));
    let out = taker
        .negotiation
        .on_failure(confirm.0, "connection closed", true, T0 + 3);
    assert_eq!(out, NegotiationOutput::default());
    let out = taker.negotiation.peer_connected(maker.id, T0 + 4);
    settle(&mut taker, &mut maker, out, T0 + 4);
    assert_eq!(taker.last_state(&id), Some(TradeState::Agreed));
    assert_eq!(maker.last_state(&id), Some(TradeState::Agreed));
}

/// Connections that keep closing end the trade after two resends (a timeout ends it at once:
/// `a_maker_out_of_reach_ends_the_take_and_an_unanswered_handshake_too`).
#[test]
fn resends_after_lost_connections_are_bounded() {
    let (maker, mut taker, _, id, mut sent) = taken(10, T0 + 1);
    let maker_id = maker.id;
    for n in 0..MAX_RESENDS_AFTER_LOSS {
        let out = taker
            .negotiation
            .on_failure(sent.0, "connection closed", true, T0 + 2);
        assert_eq!(out, NegotiationOutput::default(), "resend {n}");
        let out = taker.negotiation.peer_connected(maker_id, T0 + 3);
        let [again] = &sends(&out)[..] else {
            panic!("sent again: {out:?}")
        };
        sent = again.clone();
    }
    let out = taker
        .negotiation
        .on_failure(sent.0, "connection closed", true, T0 + 4);
    assert!(matches!(
        &out.events[..],
        [NegotiationEvent::Trade(t)] if t.id == id && t.state.label() == "aborted"
    ));
    assert!(taker.negotiation.peers_waiting().is_empty());
}

/// The same trade id again from another taker, or with other terms, is still refused: only the
/// very take the maker answered gets its answer again.
#[test]
fn a_repeated_trade_id_with_other_terms_or_from_another_taker_is_refused() {
    let (mut maker, taker, order, id, sent) = taken(10, T0 + 1);
    let (first, _) = maker
        .negotiation
        .on_request(taker.id, sent.1, &mut maker.orders, T0 + 2);
    assert!(matches!(first, TradeEnvelope::Sealed(_)));
    let mut out = NegotiationOutput::default();
    let other_terms = maker.negotiation.on_take(
        taker.id,
        (id, order, pair(), 11, TakeSettlement::default()),
        &mut maker.orders,
        T0 + 3,
        &mut out,
    );
    assert!(
        matches!(&other_terms, TradeResponse::Rejected { reason } if reason == "duplicate trade id"),
        "{other_terms:?}"
    );
    let stranger = PeerId::random();
    let from_another = maker.negotiation.on_take(
        stranger,
        (id, order, pair(), 10, TakeSettlement::default()),
        &mut maker.orders,
        T0 + 3,
        &mut out,
    );
    assert!(
        matches!(&from_another, TradeResponse::Rejected { reason } if reason == "duplicate trade id"),
        "{from_another:?}"
    );
    let same = maker.negotiation.on_take(
        taker.id,
        (id, order, pair(), 10, TakeSettlement::default()),
        &mut maker.orders,
        T0 + 3,
        &mut out,
    );
    assert!(matches!(same, TradeResponse::Accepted { .. }), "{same:?}");
}
