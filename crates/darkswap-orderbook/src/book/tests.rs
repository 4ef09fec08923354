use super::*;

use crate::workload::order;

fn id(n: u64) -> OrderId {
    OrderId::from_u64(n)
}

#[test]
fn price_time_priority_and_partial_fills() {
    let mut book = OrderBook::new();
    book.insert(order(1, Side::Sell, 101, 5), 0).unwrap();
    book.insert(order(2, Side::Sell, 100, 5), 0).unwrap();
    book.insert(order(3, Side::Sell, 100, 5), 0).unwrap();
    let placed = book.place(order(4, Side::Buy, 101, 12), 0).unwrap();
    let fills: Vec<_> = placed
        .fills
        .iter()
        .map(|f| (f.maker_order, f.price.0, f.amount, f.maker_remaining))
        .collect();
    assert_eq!(
        fills,
        vec![(id(2), 100, 5, 0), (id(3), 100, 5, 0), (id(1), 101, 2, 3)]
    );
    assert_eq!(placed.rested, 0);
    assert_eq!(book.best_ask(), Some((Price(101), 3)));
    assert_eq!(book.levels(Side::Sell), 1);
    assert_eq!(book.len(), 1);
}

#[test]
fn remainder_rests_and_book_is_not_crossed() {
    let mut book = OrderBook::new();
    book.insert(order(1, Side::Sell, 100, 5), 0).unwrap();
    let placed = book.place(order(2, Side::Buy, 105, 8), 0).unwrap();
    assert_eq!(placed.rested, 3);
    assert_eq!(book.best_bid(), Some((Price(105), 3)));
    assert_eq!(book.best_ask(), None);
    assert_eq!(book.get(&id(2)).unwrap().amount, 3);
}

#[test]
fn min_fill_is_respected_and_never_crosses() {
    let mut book = OrderBook::new();
    let mut big = order(1, Side::Sell, 100, 100);
    big.min_fill = 50;
    book.insert(big, 0).unwrap();
    let placed = book.place(order(2, Side::Buy, 100, 10), 0).unwrap();
    assert!(placed.fills.is_empty());
    assert_eq!(placed.unplaced, 10, "resting at 100 would cross the ask");
    let placed = book.place(order(3, Side::Buy, 100, 60), 0).unwrap();
    assert_eq!(placed.fills[0].amount, 60);
    // 40 left, less than the minimum fill: it can be taken whole.
    assert_eq!(
        book.reserve(&id(1), 30, 0),
        Err(ReserveError::BelowMinFill { min_fill: 40 })
    );
    assert_eq!(book.reserve(&id(1), 40, 0), Ok(()));
}

#[test]
fn cancel_is_idempotent() {
    let mut book = OrderBook::new();
    book.insert(order(1, Side::Buy, 100, 5), 0).unwrap();
    book.insert(order(2, Side::Buy, 100, 7), 0).unwrap();
    assert_eq!(book.cancel(&id(1)).unwrap().amount, 5);
    assert_eq!(book.cancel(&id(1)), None);
    assert_eq!(book.best_bid(), Some((Price(100), 7)));
    assert_eq!(book.cancel(&id(2)).unwrap().amount, 7);
    assert!(book.is_empty());
    assert_eq!(book.levels(Side::Buy), 0);
}

#[test]
fn expiry_removes_orders_once_and_skips_them_when_matching() {
    let mut book = OrderBook::new();
    let mut soon = order(1, Side::Sell, 100, 5);
    soon.expires_at_ms = 1_000;
    book.insert(soon, 0).unwrap();
    book.insert(order(2, Side::Sell, 101, 5), 0).unwrap();
    let placed = book.place(order(3, Side::Buy, 101, 5), 1_000).unwrap();
    assert_eq!(
        placed.fills[0].maker_order,
        id(2),
        "the expired ask is skipped"
    );
    assert!(!book.contains(&id(1)), "and removed on the way");
    assert!(book.expire(2_000).is_empty());

    let mut later = order(4, Side::Buy, 90, 5);
    later.expires_at_ms = 3_000;
    book.insert(later, 0).unwrap();
    assert!(book.expire(2_999).is_empty());
    assert_eq!(book.expire(3_000).len(), 1);
    assert!(book.expire(3_000).is_empty());
    assert_eq!(book.insert(order(5, Side::Buy, 90, 5), 5_000), Ok(()));
    let mut dead = order(6, Side::Buy, 90, 5);
    dead.expires_at_ms = 10;
    assert_eq!(book.insert(dead, 10), Err(BookError::Expired));
}

#[test]
fn reservations_stop_double_selling() {
    let mut book = OrderBook::new();
    book.insert(order(1, Side::Sell, 100, 10), 0).unwrap();
    assert_eq!(book.reserve(&id(1), 7, 0), Ok(()));
    assert_eq!(
        book.reserve(&id(1), 7, 0),
        Err(ReserveError::Insufficient { available: 3 })
    );
    assert_eq!(book.best_ask(), Some((Price(100), 3)));
    // A matching order cannot take the reserved part either.
    let placed = book.place(order(2, Side::Buy, 100, 10), 0).unwrap();
    assert_eq!(placed.fills.iter().map(|f| f.amount).sum::<u64>(), 3);
    assert_eq!(book.available(&id(1)), Some(0));
    // The first taker's trade aborts: its 7 come back.
    assert!(book.release(&id(1), 7));
    assert_eq!(book.available(&id(1)), Some(7));
    book.reserve(&id(1), 7, 0).unwrap();
    assert_eq!(book.settle(&id(1), 7), Ok(0));
    assert!(!book.contains(&id(1)));
    assert!(!book.release(&id(1), 7));
}

#[test]
fn expiry_waits_for_reservations() {
    let mut book = OrderBook::new();
    let mut o = order(1, Side::Sell, 100, 10);
    o.expires_at_ms = 100;
    book.insert(o, 0).unwrap();
    book.reserve(&id(1), 4, 50).unwrap();
    assert!(
        book.expire(200).is_empty(),
        "a held order outlives its expiry"
    );
    assert_eq!(book.reserve(&id(1), 1, 200), Err(ReserveError::Expired));
    assert_eq!(book.settle(&id(1), 4), Ok(6));
    assert_eq!(book.expire(200).len(), 1);
}

#[test]
fn reduce_keeps_priority_and_refuses_increases() {
    let mut book = OrderBook::new();
    book.insert(order(1, Side::Sell, 100, 10), 0).unwrap();
    book.insert(order(2, Side::Sell, 100, 10), 0).unwrap();
    book.reduce(&id(1), 4).unwrap();
    assert_eq!(book.reduce(&id(1), 5), Err(BookError::AmountIncrease));
    let ids: Vec<_> = book.orders(Side::Sell).map(|o| o.id).collect();
    assert_eq!(ids, vec![id(1), id(2)]);
    assert_eq!(book.depth(Side::Sell, 5)[0].amount, 14);
    book.reduce(&id(1), 0).unwrap();
    assert_eq!(book.len(), 1);
}

#[test]
fn bad_orders_are_refused() {
    let mut book = OrderBook::with_max_orders(1);
    assert_eq!(
        book.insert(order(1, Side::Buy, 1, 0), 0),
        Err(BookError::ZeroAmount)
    );
    assert_eq!(
        book.insert(order(1, Side::Buy, 0, 1), 0),
        Err(BookError::ZeroPrice)
    );
    book.insert(order(1, Side::Buy, 1, 1), 0).unwrap();
    assert_eq!(
        book.insert(order(1, Side::Buy, 1, 1), 0),
        Err(BookError::Duplicate)
    );
    assert_eq!(
        book.insert(order(2, Side::Buy, 1, 1), 0),
        Err(BookError::Full { max: 1 })
    );
}

#[test]
fn depth_lists_best_levels_first() {
    let mut book = OrderBook::new();
    for (i, p) in [100u64, 98, 99, 98].iter().enumerate() {
        book.insert(order(i as u64, Side::Buy, *p, 1), 0).unwrap();
    }
    for (i, p) in [103u64, 101, 102].iter().enumerate() {
        book.insert(order(10 + i as u64, Side::Sell, *p, 2), 0)
            .unwrap();
    }
    let bids: Vec<_> = book
        .depth(Side::Buy, 2)
        .iter()
        .map(|l| (l.price.0, l.amount, l.orders))
        .collect();
    assert_eq!(bids, vec![(100, 1, 1), (99, 1, 1)]);
    let asks: Vec<_> = book
        .depth(Side::Sell, 10)
        .iter()
        .map(|l| l.price.0)
        .collect();
    assert_eq!(asks, vec![101, 102, 103]);
    assert_eq!(
        book.depth(Side::Buy, 10)[2],
        LevelView {
            price: Price(98),
            amount: 2,
            orders: 2
        }
    );
}

#[test]
fn lists_by_id_from_any_point() {
    // The same listing whether the book keeps its ids in order or sorts them when asked; and
    // keeping them can be turned on for a book that already has orders.
    for keep_order in [false, true] {
        let mut book = OrderBook::new();
        book.insert(order(7, Side::Sell, 107, 5), 0).unwrap();
        if keep_order {
            book = book.with_id_order();
        }
        for n in [3, 9, 1, 5] {
            book.insert(order(n, Side::Sell, 100 + n, 5), 0).unwrap();
        }
        book.insert(order(4, Side::Buy, 50, 5), 0).unwrap();
        book.cancel(&id(9));
        // A fill that empties an order takes it out of the listing too.
        book.place(order(10, Side::Buy, 101, 5), 0).unwrap();
        let ids = |after: Option<u64>| -> Vec<OrderId> {
            book.by_id_after(after.map(id).as_ref())
                .map(|o| o.id)
                .collect()
        };
        assert_eq!(ids(None), [3, 4, 5, 7].map(id), "keep_order {keep_order}");
        assert_eq!(ids(Some(4)), [5, 7].map(id), "after is exclusive");
        assert_eq!(ids(Some(6)), [7].map(id), "after need not be in the book");
        assert_eq!(ids(Some(7)), []);
    }
}
