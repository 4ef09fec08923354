//! Property tests of the book's invariants over random sequences of operations.

use super::*;
use proptest::prelude::*;
use std::collections::HashMap as Map;

#[derive(Debug, Clone)]
enum Op {
    Place {
        side: Side,
        price: u64,
        amount: u64,
        min_fill: u64,
        ttl: Option<u64>,
    },
    Cancel(usize),
    Reserve(usize, u64),
    Release(usize),
    Settle(usize),
    Reduce(usize, u64),
    Advance(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<bool>(), 90u64..110, 1u64..60, 0u64..40, proptest::option::of(1u64..500)).prop_map(
            |(buy, price, amount, min_fill, ttl)| Op::Place {
                side: if buy { Side::Buy } else { Side::Sell },
                price,
                amount,
                min_fill,
                ttl,
            }
        ),
        2 => any::<usize>().prop_map(Op::Cancel),
        1 => (any::<usize>(), 1u64..60).prop_map(|(i, a)| Op::Reserve(i, a)),
        1 => any::<usize>().prop_map(Op::Release),
        1 => any::<usize>().prop_map(Op::Settle),
        1 => (any::<usize>(), 0u64..60).prop_map(|(i, a)| Op::Reduce(i, a)),
        1 => (0u64..200).prop_map(Op::Advance),
    ]
}

type Snapshot = Vec<(OrderId, Side, u64, u64, u64)>;

fn snapshot(book: &OrderBook) -> Snapshot {
    book.iter()
        .map(|o| {
            (
                o.id,
                o.side,
                o.price.0,
                o.amount,
                book.reserved(&o.id).unwrap(),
            )
        })
        .collect()
}

/// The book's own counters agree with its orders, and it is never crossed.
fn check_consistent(book: &OrderBook) -> Result<(), TestCaseError> {
    for (levels, side) in [(&book.bids, Side::Buy), (&book.asks, Side::Sell)] {
        let mut count = 0;
        for (price, level) in levels {
            let orders: Vec<_> = LevelIter {
                nodes: &book.nodes,
                cursor: level.head,
            }
            .collect();
            prop_assert!(!orders.is_empty(), "empty level left behind");
            prop_assert_eq!(orders.len() as u32, level.orders);
            let available: u64 = orders.iter().map(|o| book.available(&o.id).unwrap()).sum();
            prop_assert_eq!(available, level.available);
            for o in &orders {
                prop_assert_eq!(o.price, *price);
                prop_assert_eq!(o.side, side);
                prop_assert!(o.amount > 0);
                prop_assert!(book.reserved(&o.id).unwrap() <= o.amount);
            }
            count += orders.len();
        }
        prop_assert_eq!(count, book.orders(side).count());
    }
    prop_assert_eq!(book.len(), book.iter().count());
    if let (Some(bid), Some(ask)) = (book.bids.keys().next_back(), book.asks.keys().next()) {
        prop_assert!(bid < ask, "crossed book: bid {:?} >= ask {:?}", bid, ask);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn invariants_hold_over_random_operations(ops in proptest::collection::vec(op(), 1..120)) {
        let mut book = OrderBook::new();
        let mut now = 0u64;
        let mut ids: Vec<OrderId> = Vec::new();
        let mut reservations: Map<OrderId, u64> = Map::new();
        let mut next_id = 0u64;
        let pick = |ids: &Vec<OrderId>, i: usize| ids.get(i % ids.len().max(1)).copied();

        for op in ops {
            match op {
                Op::Place { side, price, amount, min_fill, ttl } => {
                    next_id += 1;
                    let order = LimitOrder {
                        id: OrderId::from_u64(next_id),
                        side,
                        price: Price(price),
                        amount,
                        min_fill,
                        expires_at_ms: ttl.map_or(u64::MAX, |t| now + t),
                        data: (),
                    };
                    let before: Map<OrderId, (u64, u64)> =
                        book.iter().map(|o| (o.id, (o.amount, o.expires_at_ms))).collect();
                    let placed = book.place(order, now).unwrap();
                    // Conservation: every unit of the order is filled, rested or handed back.
                    let filled: u64 = placed.fills.iter().map(|f| f.amount).sum();
                    prop_assert_eq!(filled + placed.rested + placed.unplaced, amount);
                    // Fills respect the limit price, best price first, never more than a maker had.
                    let mut taken: Map<OrderId, u64> = Map::new();
                    for pair in placed.fills.windows(2) {
                        match side {
                            Side::Buy => prop_assert!(pair[0].price <= pair[1].price),
                            Side::Sell => prop_assert!(pair[0].price >= pair[1].price),
                        }
                    }
                    for f in &placed.fills {
                        match side {
                            Side::Buy => prop_assert!(f.price.0 <= price),
                            Side::Sell => prop_assert!(f.price.0 >= price),
                        }
                        *taken.entry(f.maker_order).or_default() += f.amount;
                    }
                    // Every maker lost exactly what it was filled for, or expired.
                    for (id, (amount_before, expires_at)) in &before {
                        let t = taken.get(id).copied().unwrap_or(0);
                        match book.get(id) {
                            Some(o) => prop_assert_eq!(o.amount, amount_before - t),
                            None => prop_assert!(
                                t == *amount_before || *expires_at <= now,
                                "an order vanished without being filled or expiring"
                            ),
                        }
                    }
                    if placed.rested > 0 {
                        ids.push(OrderId::from_u64(next_id));
                    }
                }
                Op::Cancel(i) => {
                    if let Some(id) = pick(&ids, i) {
                        book.cancel(&id);
                        let after = snapshot(&book);
                        prop_assert!(book.cancel(&id).is_none(), "cancel is idempotent");
                        prop_assert_eq!(snapshot(&book), after);
                        reservations.remove(&id);
                    }
                }
                Op::Reserve(i, amount) => {
                    if let Some(id) = pick(&ids, i) {
                        let available = book.available(&id);
                        match book.reserve(&id, amount, now) {
                            Ok(()) => {
                                prop_assert!(amount <= available.unwrap());
                                *reservations.entry(id).or_default() += amount;
                            }
                            Err(ReserveError::Insufficient { available: a }) => {
                                prop_assert_eq!(Some(a), available);
                                prop_assert!(amount > a);
                            }
                            Err(_) => {}
                        }
                    }
                }
                Op::Release(i) => {
                    if let Some(id) = pick(&ids, i) {
                        if let Some(amount) = reservations.remove(&id) {
                            prop_assert_eq!(book.release(&id, amount), book.contains(&id));
                        }
                    }
                }
                Op::Settle(i) => {
                    if let Some(id) = pick(&ids, i) {
                        if let Some(amount) = reservations.remove(&id) {
                            if let Some(before) = book.get(&id).map(|o| o.amount) {
                                prop_assert_eq!(book.settle(&id, amount), Ok(before - amount));
                            }
                        }
                    }
                }
                Op::Reduce(i, amount) => {
                    if let Some(id) = pick(&ids, i) {
                        if book.reduce(&id, amount).is_ok() && amount == 0 {
                            prop_assert!(!book.contains(&id));
                        }
                    }
                }
                Op::Advance(ms) => {
                    now += ms;
                    let gone = book.expire(now);
                    for o in &gone {
                        prop_assert!(o.is_expired(now));
                        prop_assert!(!reservations.contains_key(&o.id));
                    }
                    let after = snapshot(&book);
                    prop_assert!(book.expire(now).is_empty(), "expiry is idempotent");
                    prop_assert_eq!(snapshot(&book), after);
                    prop_assert!(book.iter().all(|o| !o.is_expired(now) || book.reserved(&o.id).unwrap() > 0));
                }
            }
            check_consistent(&book)?;
        }
    }

    #[test]
    fn reservations_never_oversell(amounts in proptest::collection::vec(1u64..40, 1..30)) {
        // Many takers reserve against one order in turn: the sum granted never exceeds it.
        let mut book = OrderBook::new();
        let id = OrderId::from_u64(1);
        book.insert(LimitOrder { id, side: Side::Sell, price: Price(100), amount: 100, min_fill: 0, expires_at_ms: u64::MAX, data: () }, 0).unwrap();
        let granted: u64 = amounts.iter().filter(|a| book.reserve(&id, **a, 0).is_ok()).sum();
        prop_assert!(granted <= 100);
        prop_assert_eq!(book.available(&id), Some(100 - granted));
    }
}
