//! A deterministic order-flow generator, shared by the native criterion benchmark and the same
//! workload run in headless Chromium, so both measure exactly the same operations.
//!
//! The mixed workload is 70% passive limit orders around a fixed mid price, 20% cancels of
//! earlier orders (some already filled, as in real flow) and 10% aggressive immediate-or-cancel
//! orders that sweep into the opposite side.

use crate::book::{Fill, OrderBook};
use crate::order::{LimitOrder, OrderId, Price, Side};

/// Mid price of the generated flow (quote units per 10⁸ base units).
pub const MID_PRICE: u64 = 1_000_000;
/// Passive orders rest within this many ticks of the mid price.
pub const PASSIVE_SPREAD_TICKS: u64 = 200;
/// Aggressive orders reach this many ticks through the mid price.
pub const AGGRESSIVE_REACH_TICKS: u64 = 100;

/// SplitMix64: tiny, fast, and the same sequence on every platform for a given seed.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting from `seed`; equal seeds give equal sequences.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next value of the sequence, uniform over all of `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the tiny modulo bias is irrelevant for load generation).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// One operation of a workload. Ids are small integers so any book implementation can use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A limit order that rests (it never crosses the passive side of the mid price).
    Place {
        /// Order id, a fresh one; books use [`OrderId::from_u64`] of it.
        id: u64,
        /// Buy or sell, with equal odds.
        side: Side,
        /// Limit price, the inner value of a [`Price`]: 1 to [`PASSIVE_SPREAD_TICKS`] ticks
        /// below [`MID_PRICE`] for a buy, above it for a sell.
        price: u64,
        /// Base units, 1 to 1 000.
        amount: u64,
    },
    /// Cancel an earlier order, which may already be gone.
    Cancel {
        /// Id of an earlier [`Op::Place`] (which may have been filled since); no id is cancelled
        /// twice.
        id: u64,
    },
    /// Immediate-or-cancel: fill what is available up to `price`, drop the rest.
    Aggressive {
        /// A fresh id; the order never rests, so [`run`] does not use it.
        id: u64,
        /// The taking side: a buy sweeps asks, a sell sweeps bids.
        side: Side,
        /// Limit price, the inner value of a [`Price`]: [`AGGRESSIVE_REACH_TICKS`] ticks through
        /// [`MID_PRICE`] (above it for a buy, below it for a sell).
        price: u64,
        /// Base units wanted, 1 to 3 000.
        amount: u64,
    },
}

/// Generates `count` operations of the 70/20/10 mixed workload from `seed`.
pub fn mixed(seed: u64, count: usize) -> Vec<Op> {
    let mut rng = SplitMix64::new(seed);
    let mut ops = Vec::with_capacity(count);
    let mut live: Vec<u64> = Vec::new();
    let mut next_id = 0u64;
    for _ in 0..count {
        let roll = rng.below(100);
        if roll < 20 && !live.is_empty() {
            let i = rng.below(live.len() as u64) as usize;
            ops.push(Op::Cancel {
                id: live.swap_remove(i),
            });
            continue;
        }
        next_id += 1;
        let side = if rng.below(2) == 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        if roll >= 90 {
            let price = match side {
                Side::Buy => MID_PRICE + AGGRESSIVE_REACH_TICKS,
                Side::Sell => MID_PRICE - AGGRESSIVE_REACH_TICKS,
            };
            ops.push(Op::Aggressive {
                id: next_id,
                side,
                price,
                amount: 1 + rng.below(3_000),
            });
        } else {
            let offset = 1 + rng.below(PASSIVE_SPREAD_TICKS);
            let price = match side {
                Side::Buy => MID_PRICE - offset,
                Side::Sell => MID_PRICE + offset,
            };
            ops.push(Op::Place {
                id: next_id,
                side,
                price,
                amount: 1 + rng.below(1_000),
            });
            live.push(next_id);
        }
    }
    ops
}

/// What a run did; two correct books given the same operations agree on all of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Passive orders the book accepted.
    pub placed: u64,
    /// Cancels that found their order still in the book.
    pub cancelled: u64,
    /// Fills made by the aggressive orders.
    pub fills: u64,
    /// Base units those fills took in total.
    pub filled_amount: u64,
}

/// Applies a workload to a DarkSwap book.
pub fn run(book: &mut OrderBook, ops: &[Op]) -> Tally {
    let mut tally = Tally::default();
    for op in ops {
        let took_effect = apply(book, *op, |fill| {
            tally.fills += 1;
            tally.filled_amount += fill.amount;
        });
        match (op, took_effect) {
            (Op::Place { .. }, true) => tally.placed += 1,
            (Op::Cancel { .. }, true) => tally.cancelled += 1,
            _ => {}
        }
    }
    tally
}

/// Applies one operation, reporting each fill of an aggressive one to `on_fill`; returns
/// whether a placement was accepted or a cancel found its order.
pub fn apply(book: &mut OrderBook, op: Op, on_fill: impl FnMut(Fill)) -> bool {
    match op {
        Op::Place {
            id,
            side,
            price,
            amount,
        } => book.insert(order(id, side, price, amount), 0).is_ok(),
        Op::Cancel { id } => book.cancel(&OrderId::from_u64(id)).is_some(),
        Op::Aggressive {
            id: _,
            side,
            price,
            amount,
        } => {
            book.sweep(side, Price(price), amount, 0, on_fill);
            false
        }
    }
}

/// A plain resting order: no minimum fill, no expiry.
pub(crate) fn order(id: u64, side: Side, price: u64, amount: u64) -> LimitOrder {
    LimitOrder {
        id: OrderId::from_u64(id),
        side,
        price: Price(price),
        amount,
        min_fill: 0,
        expires_at_ms: u64::MAX,
        data: (),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_deterministic_and_has_the_advertised_mix() {
        let ops = mixed(7, 10_000);
        assert_eq!(ops, mixed(7, 10_000));
        let cancels = ops
            .iter()
            .filter(|o| matches!(o, Op::Cancel { .. }))
            .count();
        let aggressive = ops
            .iter()
            .filter(|o| matches!(o, Op::Aggressive { .. }))
            .count();
        assert!((1_800..2_200).contains(&cancels), "{cancels}");
        assert!((800..1_200).contains(&aggressive), "{aggressive}");
    }

    #[test]
    fn a_run_fills_and_cancels() {
        let ops = mixed(7, 10_000);
        let mut book = OrderBook::new();
        let tally = run(&mut book, &ops);
        assert!(tally.fills > 0 && tally.cancelled > 0, "{tally:?}");
        // Passive orders never cross the mid and aggressive ones never rest.
        assert!(book.best_bid().unwrap().0 .0 < MID_PRICE);
        assert!(book.best_ask().unwrap().0 .0 > MID_PRICE);
        assert!(book.len() as u64 <= tally.placed - tally.cancelled);
    }

    /// An obviously correct book: per side, orders keyed by (price priority, arrival), so the
    /// first entry is the one to take from.
    #[derive(Default)]
    struct Model {
        bids: std::collections::BTreeMap<(std::cmp::Reverse<u64>, u64), (u64, u64)>,
        asks: std::collections::BTreeMap<(u64, u64), (u64, u64)>,
        where_is: std::collections::HashMap<u64, (Side, u64, u64)>,
        arrivals: u64,
    }

    impl Model {
        fn place(&mut self, op: Op) {
            let Op::Place {
                id,
                side,
                price,
                amount,
            } = op
            else {
                return;
            };
            self.arrivals += 1;
            match side {
                Side::Buy => {
                    self.bids
                        .insert((std::cmp::Reverse(price), self.arrivals), (id, amount));
                }
                Side::Sell => {
                    self.asks.insert((price, self.arrivals), (id, amount));
                }
            }
            self.where_is.insert(id, (side, price, self.arrivals));
        }

        /// Applies `op`; returns the fills of an aggressive order as (maker id, amount).
        fn apply(&mut self, op: Op) -> Vec<(u64, u64)> {
            let mut fills = Vec::new();
            match op {
                Op::Place { .. } => self.place(op),
                Op::Cancel { id } => {
                    if let Some((side, price, at)) = self.where_is.remove(&id) {
                        match side {
                            Side::Buy => self.bids.remove(&(std::cmp::Reverse(price), at)),
                            Side::Sell => self.asks.remove(&(price, at)),
                        };
                    }
                }
                Op::Aggressive {
                    side,
                    price,
                    mut amount,
                    ..
                } => {
                    while amount > 0 {
                        let best = match side {
                            Side::Buy => take_first(&mut self.asks, |k| k.0 <= price, amount),
                            Side::Sell => take_first(&mut self.bids, |k| k.0 .0 >= price, amount),
                        };
                        let Some((id, take, left)) = best else {
                            break;
                        };
                        if left == 0 {
                            self.where_is.remove(&id);
                        }
                        amount -= take;
                        fills.push((id, take));
                    }
                }
            }
            fills
        }
    }

    /// Takes up to `amount` from the first order of `side` if `reachable` says its key is:
    /// (its id, what was taken, what is left of it).
    fn take_first<K: Ord>(
        side: &mut std::collections::BTreeMap<K, (u64, u64)>,
        reachable: impl Fn(&K) -> bool,
        amount: u64,
    ) -> Option<(u64, u64, u64)> {
        let mut first = side.first_entry().filter(|e| reachable(e.key()))?;
        let take = amount.min(first.get().1);
        first.get_mut().1 -= take;
        let (id, left) = *first.get();
        if left == 0 {
            first.remove();
        }
        Some((id, take, left))
    }

    /// The book against the model, operation by operation, on the benchmark's own workload: the
    /// same fills (maker and amount, in order) and the same cancels.
    #[test]
    fn the_mixed_workload_fills_as_a_plain_price_time_book_does() {
        let mut book = OrderBook::new();
        let mut model = Model::default();
        for (n, op) in mixed(42, 100_000).into_iter().enumerate() {
            let expected = model.apply(op);
            let mut got = Vec::new();
            apply(&mut book, op, |f| got.push((f.maker_order, f.amount)));
            let expected: Vec<(OrderId, u64)> = expected
                .into_iter()
                .map(|(id, a)| (OrderId::from_u64(id), a))
                .collect();
            assert_eq!(got, expected, "operation {n}: {op:?}");
        }
        assert_eq!(book.len(), model.bids.len() + model.asks.len());
    }
}
