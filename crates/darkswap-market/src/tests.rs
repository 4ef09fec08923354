use super::*;
use darkswap_orderbook::{Price, Side};
use darkswap_proto::order::{
    sign_order_message, verify_order_message, Freshness, OrderBody, MIN_ORDER_LIFETIME_MS,
};
use libp2p_identity::Keypair;

const T0: u64 = 1_800_000_000_000;

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

struct Maker {
    key: Keypair,
    seq: u64,
}

impl Maker {
    fn new() -> Self {
        Maker {
            key: Keypair::generate_ed25519(),
            seq: 0,
        }
    }

    fn peer(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    fn message(&mut self, action: OrderAction, now: u64) -> VerifiedOrderMessage {
        self.seq += 1;
        let body = OrderBody {
            pair: pair(),
            seq: self.seq,
            sent_at_ms: now,
            action,
        };
        let bytes = sign_order_message(&self.key, &body, now).unwrap();
        verify_order_message(&bytes, Some(&pair()), Freshness::Live, now).unwrap()
    }

    fn order(&mut self, nonce: u64, amount: u64, now: u64) -> VerifiedOrderMessage {
        self.message(OrderAction::Order(spec(nonce, amount)), now)
    }

    fn cancel(&mut self, nonce: u64, now: u64) -> VerifiedOrderMessage {
        let order_id = order_id(&self.peer(), nonce);
        self.message(
            OrderAction::Cancel {
                order_id,
                filled: false,
            },
            now,
        )
    }

    fn keep_alive(&mut self, live: &mut [(OrderId, u64)], now: u64) -> VerifiedOrderMessage {
        let digest = live_orders_digest(live);
        self.message(
            OrderAction::KeepAlive {
                digest,
                live_orders: live.len() as u32,
            },
            now,
        )
    }
}

fn spec(nonce: u64, amount: u64) -> OrderSpec {
    OrderSpec {
        nonce,
        side: Side::Sell,
        price: Price(1_000 + nonce),
        amount,
        min_fill: 0,
        expires_at_ms: T0 + 3_600_000,
    }
}

#[test]
fn orders_enter_and_replays_are_refused() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let first = maker.order(1, 100, T0);
    let id = order_id(&maker.peer(), 1);
    assert_eq!(market.apply(&first, T0), Ok(Applied::Added(id)));
    assert_eq!(market.apply(&first, T0), Err(OrderReject::Replay));
    assert_eq!(market.book(&pair()).unwrap().len(), 1);
    let (page, more) = market.snapshot(&pair(), None, None, 10);
    assert_eq!((page.len(), more), (1, false));
    assert_eq!(&*page[0], first.raw.as_slice());
}

#[test]
fn replays_do_not_spend_the_makers_tokens() {
    // Anyone can resend a maker's last message; if that cost the maker's rate tokens, a stranger
    // replaying it could get the maker's own cancels refused.
    let limits = MarketLimits {
        publish_burst: 3,
        publish_per_second: 1,
        ..MarketLimits::default()
    };
    let mut market = Market::new(limits);
    let mut maker = Maker::new();
    let first = maker.order(1, 100, T0);
    market.apply(&first, T0).unwrap();
    for _ in 0..100 {
        assert_eq!(market.apply(&first, T0), Err(OrderReject::Replay));
    }
    let cancel = maker.cancel(1, T0);
    assert!(matches!(
        market.apply(&cancel, T0),
        Ok(Applied::Cancelled(_))
    ));
    // The maker's own messages still spend its tokens.
    market.apply(&maker.order(2, 100, T0), T0).unwrap();
    assert_eq!(
        market.apply(&maker.order(3, 100, T0), T0),
        Err(OrderReject::RateLimited)
    );
}

#[test]
fn out_of_order_delivery_is_harmless() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let order = maker.order(1, 100, T0);
    let cancel = maker.cancel(1, T0 + 1);
    // The cancel overtakes the order: the order, older, is then refused.
    assert!(matches!(
        market.apply(&cancel, T0 + 2),
        Ok(Applied::CancelledUnknown(_))
    ));
    assert_eq!(market.apply(&order, T0 + 2), Err(OrderReject::Replay));
    assert!(market.book(&pair()).is_none_or(|b| b.is_empty()));

    // The cancel that overtook its order is remembered for that maker.
    assert_eq!(market.early_cancels(), 1);
    // A peer that missed the cancel serves the order in a snapshot (no sequence rules there).
    assert_eq!(
        market.apply_stored(&order, T0 + 3),
        Err(OrderReject::Cancelled)
    );
    // Nor does it come back live once the maker's sequence numbers are forgotten.
    market.expire(T0 + 3 + MAKER_MEMORY_MS);
    assert_eq!(
        market.apply(&order, T0 + 3 + MAKER_MEMORY_MS),
        Err(OrderReject::Cancelled)
    );
    // Remembered as long as any order can live, then gone.
    let end = T0 + 2 + MAX_ORDER_LIFETIME_MS + MAX_CLOCK_SKEW_MS;
    market.expire(end - 1);
    assert_eq!(market.early_cancels(), 1);
    market.expire(end);
    assert_eq!(market.early_cancels(), 0);
}

#[test]
fn nobody_cancels_another_makers_order_in_advance() {
    let mut market = Market::new(MarketLimits::default());
    let mut victim = Maker::new();
    let mut attacker = Maker::new();
    let order = victim.order(1, 100, T0);
    // The attacker signs a cancel of the victim's (future) order id.
    let id = order_id(&victim.peer(), 1);
    let forged = attacker.message(
        OrderAction::Cancel {
            order_id: id,
            filled: false,
        },
        T0,
    );
    assert!(matches!(
        market.apply(&forged, T0),
        Ok(Applied::CancelledUnknown(_))
    ));
    assert_eq!(market.apply(&order, T0 + 1), Ok(Applied::Added(id)));
    let mut market = Market::new(MarketLimits::default());
    market.apply(&forged, T0).unwrap();
    assert_eq!(market.apply_stored(&order, T0 + 1), Ok(Applied::Added(id)));
}

#[test]
fn early_cancels_are_capped_per_maker() {
    let limits = MarketLimits {
        publish_burst: 100,
        ..MarketLimits::default()
    };
    let mut market = Market::new(limits);
    let mut flooder = Maker::new();
    for nonce in 0..MAX_EARLY_CANCELS_PER_MAKER as u64 + 10 {
        market.apply(&flooder.cancel(nonce, T0), T0).unwrap();
    }
    assert_eq!(market.early_cancels(), MAX_EARLY_CANCELS_PER_MAKER);
    // Another maker still has its own allowance.
    let mut other = Maker::new();
    market.apply(&other.cancel(1, T0), T0).unwrap();
    assert_eq!(market.early_cancels(), MAX_EARLY_CANCELS_PER_MAKER + 1);
}

#[test]
fn nobody_takes_the_place_of_another_makers_early_cancel() {
    let mut market = Market::new(MarketLimits::default());
    let mut victim = Maker::new();
    let mut squatter = Maker::new();
    let order = victim.order(1, 100, T0);
    let id = order_id(&victim.peer(), 1);
    // The squatter cancels the victim's id first (on any pair); then the victim's own cancel
    // overtakes its order.
    market
        .apply(
            &squatter.message(
                OrderAction::Cancel {
                    order_id: id,
                    filled: false,
                },
                T0,
            ),
            T0,
        )
        .unwrap();
    market.apply(&victim.cancel(1, T0 + 1), T0 + 1).unwrap();
    assert_eq!(market.early_cancels(), 2);
    assert_eq!(
        market.apply_stored(&order, T0 + 2),
        Err(OrderReject::Cancelled)
    );
}

#[test]
fn cancel_removes_everywhere_and_leaves_a_tombstone() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let order = maker.order(1, 100, T0);
    market.apply(&order, T0).unwrap();
    let id = order_id(&maker.peer(), 1);
    assert_eq!(
        market.apply(&maker.cancel(1, T0 + 1), T0 + 1),
        Ok(Applied::Cancelled(id))
    );
    assert_eq!(market.tombstones(), 1);
    // The order cannot come back, neither republished nor from a snapshot.
    assert_eq!(
        market.apply(&maker.order(1, 100, T0 + 2), T0 + 2),
        Err(OrderReject::Cancelled)
    );
    assert_eq!(
        market.apply_stored(&order, T0 + 3),
        Err(OrderReject::Cancelled)
    );
    // The tombstone lasts until the order would have expired, then goes.
    market.expire(T0 + 3_599_999);
    assert_eq!(market.tombstones(), 1);
    market.expire(T0 + 3_600_000);
    assert_eq!(market.tombstones(), 0);
}

#[test]
fn only_the_maker_can_cancel_or_change_its_order() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let mut thief = Maker::new();
    market.apply(&maker.order(1, 100, T0), T0).unwrap();
    let victim = order_id(&maker.peer(), 1);
    let forged = thief.message(
        OrderAction::Cancel {
            order_id: victim,
            filled: false,
        },
        T0,
    );
    assert_eq!(market.apply(&forged, T0), Err(OrderReject::Conflict));
    assert!(market.book(&pair()).unwrap().contains(&victim));
}

#[test]
fn a_maker_republishes_what_is_left_but_cannot_grow_or_reprice() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let id = order_id(&maker.peer(), 1);
    market.apply(&maker.order(1, 100, T0), T0).unwrap();
    let reduced = maker.order(1, 60, T0 + 1);
    assert_eq!(market.apply(&reduced, T0 + 1), Ok(Applied::Reduced(id)));
    assert_eq!(market.order(&pair(), &id).unwrap().amount, 60);
    let (page, _) = market.snapshot(&pair(), None, None, 10);
    assert_eq!(
        &*page[0],
        reduced.raw.as_slice(),
        "snapshots carry the newest message"
    );
    assert_eq!(
        market.apply(&maker.order(1, 80, T0 + 2), T0 + 2),
        Err(OrderReject::Conflict)
    );
    let mut repriced = spec(1, 60);
    repriced.price = Price(1);
    let message = maker.message(OrderAction::Order(repriced), T0 + 3);
    assert_eq!(market.apply(&message, T0 + 3), Err(OrderReject::Conflict));
    assert_eq!(
        market.apply(&maker.order(1, 60, T0 + 4), T0 + 4),
        Ok(Applied::Unchanged(id))
    );
}

#[test]
fn what_is_left_below_the_minimum_fill_is_republished_with_that_minimum() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let id = order_id(&maker.peer(), 1);
    let with_min = |amount, min_fill| OrderSpec {
        min_fill,
        ..spec(1, amount)
    };
    let first = maker.message(OrderAction::Order(with_min(150, 100)), T0);
    market.apply(&first, T0).unwrap();
    // 100 taken: 50 left, below the minimum of 100, so 50 is the minimum now.
    let left = maker.message(OrderAction::Order(with_min(50, 50)), T0 + 1);
    assert_eq!(market.apply(&left, T0 + 1), Ok(Applied::Reduced(id)));
    assert_eq!(market.order(&pair(), &id).unwrap().amount, 50);
    // Any other minimum is a change of terms.
    let lower = maker.message(OrderAction::Order(with_min(40, 30)), T0 + 2);
    assert_eq!(market.apply(&lower, T0 + 2), Err(OrderReject::Conflict));
    let same = maker.message(OrderAction::Order(with_min(50, 50)), T0 + 3);
    assert_eq!(market.apply(&same, T0 + 3), Ok(Applied::Unchanged(id)));
    // Above the original minimum the original stays.
    let mut other = Maker::new();
    let other_id = order_id(&other.peer(), 1);
    market
        .apply(
            &other.message(OrderAction::Order(with_min(150, 100)), T0),
            T0,
        )
        .unwrap();
    let lowered = other.message(OrderAction::Order(with_min(120, 50)), T0 + 1);
    assert_eq!(market.apply(&lowered, T0 + 1), Err(OrderReject::Conflict));
    let kept = other.message(OrderAction::Order(with_min(120, 100)), T0 + 2);
    assert_eq!(market.apply(&kept, T0 + 2), Ok(Applied::Reduced(other_id)));
}

#[test]
fn per_maker_cap_and_rate_are_enforced() {
    let limits = MarketLimits {
        max_orders_per_maker: 2,
        publish_burst: 4,
        publish_per_second: 1,
        ..MarketLimits::default()
    };
    let mut market = Market::new(limits);
    let mut maker = Maker::new();
    market.apply(&maker.order(1, 10, T0), T0).unwrap();
    market.apply(&maker.order(2, 10, T0), T0).unwrap();
    assert_eq!(
        market.apply(&maker.order(3, 10, T0), T0),
        Err(OrderReject::OverCap)
    );
    // Cancelling one makes room (fourth message: the burst is now spent).
    market.apply(&maker.cancel(1, T0), T0).unwrap();
    assert_eq!(
        market.apply(&maker.order(3, 10, T0), T0),
        Err(OrderReject::RateLimited)
    );
    assert!(matches!(
        market.apply(&maker.order(4, 10, T0 + 1_000), T0 + 1_000),
        Ok(Applied::Added(_))
    ));
    // Another maker is not affected by the first one's limits.
    let mut other = Maker::new();
    assert!(market
        .apply(&other.order(1, 10, T0 + 1_000), T0 + 1_000)
        .is_ok());
}

#[test]
fn a_silent_maker_disappears_after_the_timeout() {
    let mut market = Market::new(MarketLimits::default());
    let mut gone = Maker::new();
    let mut alive = Maker::new();
    market.apply(&gone.order(1, 10, T0), T0).unwrap();
    market.apply(&alive.order(1, 10, T0), T0).unwrap();
    let alive_id = order_id(&alive.peer(), 1);
    let mut t = T0;
    let mut removed = Vec::new();
    while t < T0 + MAKER_TIMEOUT_MS {
        t += KEEP_ALIVE_INTERVAL_MS;
        let ka = alive.keep_alive(&mut [(alive_id, 10)], t);
        assert_eq!(market.apply(&ka, t), Ok(Applied::KeepAlive));
        removed.extend(market.expire(t));
    }
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].0.id, order_id(&gone.peer(), 1));
    assert_eq!(removed[0].1, Removal::MakerGone);
    let book = market.book(&pair()).unwrap();
    assert_eq!(book.len(), 1);
    assert!(book.contains(&alive_id));
    // The silent maker is forgotten entirely later (a replay of its old messages is by then
    // refused by the clock check); the live one is still known.
    market.expire(T0 + MAKER_MEMORY_MS + 1);
    assert_eq!(market.makers(), 1);
}

#[test]
fn keep_alive_mismatch_leads_to_reconciliation() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let a = maker.order(1, 10, T0);
    let b = maker.order(2, 20, T0);
    let c = maker.order(3, 30, T0);
    market.apply(&a, T0).unwrap();
    market.apply(&c, T0).unwrap(); // we missed b, and the maker has since cancelled c
    let maker_id = maker.peer();
    let ids = |n: u64| order_id(&maker_id, n);
    let mut live = vec![(ids(1), 10), (ids(2), 20)];
    let ka = maker.keep_alive(&mut live, T0 + 10);
    let outcome = market.apply(&ka, T0 + 10).unwrap();
    assert_eq!(
        outcome,
        Applied::KeepAliveMismatch {
            maker: maker.peer(),
            pair: pair()
        }
    );
    let stored = |m: &VerifiedOrderMessage| {
        verify_order_message(&m.raw, None, Freshness::Stored, T0 + 20).unwrap()
    };
    let results =
        market.reconcile_maker(&maker.peer(), &pair(), &[stored(&a), stored(&b)], T0 + 20);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let book = market.book(&pair()).unwrap();
    assert!(book.contains(&ids(1)) && book.contains(&ids(2)) && !book.contains(&ids(3)));
    let ka = maker.keep_alive(&mut live, T0 + 30);
    assert_eq!(market.apply(&ka, T0 + 30), Ok(Applied::KeepAlive));
}

/// Repairs `maker`'s orders in `market` at T0 + 20 from `served` (as a peer relay serves them:
/// stored messages), against the digest the maker signed over `signed`.
fn repair(
    market: &mut Market,
    maker: &Maker,
    served: &[&VerifiedOrderMessage],
    signed: &mut [(OrderId, u64)],
) -> Repaired {
    let now = T0 + 20;
    let served: Vec<VerifiedOrderMessage> = served
        .iter()
        .map(|m| verify_order_message(&m.raw, None, Freshness::Stored, now).unwrap())
        .collect();
    market.repair_maker(
        &maker.peer(),
        &pair(),
        &served,
        &live_orders_digest(signed),
        now,
    )
}

#[test]
fn a_repair_matching_the_makers_digest_replaces_what_the_book_held() {
    // A relay on the far side of a partition: it holds a (still live) and c (cancelled over
    // there), never saw b. The peer relay serves a and b; the maker signed a + b.
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let (a, b, c) = (
        maker.order(1, 10, T0),
        maker.order(2, 20, T0),
        maker.order(3, 30, T0),
    );
    market.apply(&a, T0).unwrap();
    market.apply(&c, T0).unwrap();
    let id = |n: u64| order_id(&maker.peer(), n);
    let repaired = repair(
        &mut market,
        &maker,
        &[&a, &b],
        &mut [(id(1), 10), (id(2), 20)],
    );
    let expected = Repaired {
        complete: true,
        added: 1,
        removed: 1,
        refused: 0,
    };
    assert_eq!(repaired, expected);
    let book = market.book(&pair()).unwrap();
    assert!(book.contains(&id(1)) && book.contains(&id(2)) && !book.contains(&id(3)));
}

#[test]
fn a_repair_that_disagrees_with_the_makers_digest_only_adds() {
    // The server withheld a: it cannot make us drop it. b is the maker's own signed order, so
    // it is taken; another maker's order in the answer is not.
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let mut other = Maker::new();
    let (a, b) = (maker.order(1, 10, T0), maker.order(2, 20, T0));
    let stranger = other.order(9, 90, T0);
    market.apply(&a, T0).unwrap();
    let id = |n: u64| order_id(&maker.peer(), n);
    let repaired = repair(
        &mut market,
        &maker,
        &[&b, &stranger],
        &mut [(id(1), 10), (id(2), 20)],
    );
    let expected = Repaired {
        complete: false,
        added: 1,
        removed: 0,
        refused: 0,
    };
    assert_eq!(repaired, expected);
    let book = market.book(&pair()).unwrap();
    assert!(book.contains(&id(1)) && book.contains(&id(2)));
    assert!(
        !book.contains(&order_id(&other.peer(), 9)),
        "another maker's order rode along"
    );
}

#[test]
fn a_repair_never_brings_back_an_order_cancelled_here() {
    // We saw the cancel of c; a server that still holds c (and a digest that, from an older
    // keep-alive, counts it) cannot put it back.
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let c = maker.order(3, 30, T0);
    market.apply(&c, T0).unwrap();
    market.apply(&maker.cancel(3, T0 + 1), T0 + 1).unwrap();
    let id = order_id(&maker.peer(), 3);
    let repaired = repair(&mut market, &maker, &[&c], &mut [(id, 30)]);
    assert_eq!((repaired.added, repaired.refused), (0, 1));
    assert!(!market.book(&pair()).unwrap().contains(&id));
}

/// Pages through a snapshot of `pair` (optionally one maker's), `size` orders at a time, calling
/// `between` after each page; returns the ids in the order they came.
fn page_through(
    market: &mut Market,
    maker: Option<&PeerId>,
    size: usize,
    mut between: impl FnMut(&mut Market, usize),
) -> Vec<OrderId> {
    let mut seen = Vec::new();
    let mut after: Option<OrderId> = None;
    for n in 0.. {
        let (page, more) = market.snapshot(&pair(), maker, after.as_ref(), size);
        assert!(page.len() <= size);
        for raw in &page {
            let m = verify_order_message(raw, None, Freshness::Stored, T0).unwrap();
            after = m.order_id();
            seen.push(after.unwrap());
        }
        if !more {
            break;
        }
        between(market, n);
    }
    seen
}

#[test]
fn snapshots_page_through_a_large_book() {
    snapshots_page_through(Market::new(big_limits()));
}

#[test]
fn snapshots_page_through_a_large_book_that_keeps_its_ids_in_order() {
    snapshots_page_through(Market::new(big_limits()).serving_snapshots());
}

fn big_limits() -> MarketLimits {
    MarketLimits {
        max_orders_per_maker: 1_000,
        publish_burst: 1_000,
        ..MarketLimits::default()
    }
}

fn snapshots_page_through(mut market: Market) {
    let (mut a, mut b) = (Maker::new(), Maker::new());
    for n in 0..25 {
        market.apply(&a.order(n, 10, T0), T0).unwrap();
        market.apply(&b.order(n, 10, T0), T0).unwrap();
    }
    let all = page_through(&mut market, None, 10, |_, _| {});
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "by id, each once");

    let only_a = page_through(&mut market, Some(&a.peer()), 7, |_, _| {});
    let mut expected: Vec<OrderId> = (0..25).map(|n| order_id(&a.peer(), n)).collect();
    expected.sort();
    assert_eq!(only_a, expected, "one maker's orders, by id");

    // The book changes while a joiner pages: nothing is listed twice, what stays is listed,
    // and what is cancelled before its page comes is not.
    let (a_last, b_first) = (a.cancel(24, T0 + 1), b.order(100, 10, T0 + 1));
    let mut changes = Some((a_last, b_first));
    let seen = page_through(&mut market, None, 10, |market, _| {
        if let Some((cancel, order)) = changes.take() {
            market.apply(&cancel, T0 + 1).unwrap();
            market.apply(&order, T0 + 1).unwrap();
        }
    });
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "by id, each once");
    let cancelled = order_id(&a.peer(), 24);
    let first_page: Vec<_> = all.iter().take(10).collect();
    assert_eq!(
        seen.contains(&cancelled),
        first_page.contains(&&cancelled),
        "a cancelled order shows only if its page came before the cancel"
    );
    for id in all.iter().filter(|id| **id != cancelled) {
        assert!(seen.contains(id), "an order that stayed is listed");
    }
}

#[test]
fn orders_expire() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    let mut s = spec(1, 10);
    s.expires_at_ms = T0 + MIN_ORDER_LIFETIME_MS;
    let m = maker.message(OrderAction::Order(s), T0);
    market.apply(&m, T0).unwrap();
    // keep the maker alive so only expiry acts
    let removed = market.expire(T0 + MIN_ORDER_LIFETIME_MS);
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].1, Removal::Expired);
    assert!(market.expire(T0 + MIN_ORDER_LIFETIME_MS).is_empty());
}

#[test]
fn reservations_settle_into_the_book() {
    let mut market = Market::new(MarketLimits::default());
    let mut maker = Maker::new();
    market.apply(&maker.order(1, 100, T0), T0).unwrap();
    let id = order_id(&maker.peer(), 1);
    market.reserve(&pair(), &id, 60, T0).unwrap();
    assert!(
        market.reserve(&pair(), &id, 60, T0).is_err(),
        "no unit is sold twice"
    );
    assert_eq!(market.settle(&pair(), &id, 60), Ok(40));
    market.reserve(&pair(), &id, 40, T0).unwrap();
    assert!(market.release(&pair(), &id, 40));
    market.reserve(&pair(), &id, 40, T0).unwrap();
    assert_eq!(market.settle(&pair(), &id, 40), Ok(0));
    assert!(market.order(&pair(), &id).is_none());
}
