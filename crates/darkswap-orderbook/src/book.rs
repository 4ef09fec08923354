//! The book of one pair: resting orders in price-time priority.
//!
//! Layout, chosen for the operations a trader's client and a relay do most (insert, cancel, read
//! the best prices and the top of the depth): each side is a `BTreeMap` from price to a level, a
//! level is a doubly linked FIFO list threaded through one slab of nodes, and a hash map finds an
//! order's node by id. Insert and cancel are O(log levels), best price is O(log levels), a fill
//! touches only the orders it fills. Nothing allocates per order except the slab's growth.

use crate::order::{LimitOrder, OrderId, Price, Side};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::ops::Bound;

/// Orders one book holds unless told otherwise: far above any real pair's depth, low enough that
/// a flood of orders cannot exhaust a browser tab's memory (a node is ~100 bytes plus `T`).
pub const DEFAULT_MAX_ORDERS: usize = 200_000;

const NIL: u32 = u32::MAX;

/// Why an order cannot enter the book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The order's amount is zero.
    #[error("order amount is zero")]
    ZeroAmount,
    /// The order's price is zero.
    #[error("order price is zero")]
    ZeroPrice,
    /// The order's expiry is at or before `now_ms`.
    #[error("order has expired")]
    Expired,
    /// An order with this id already rests in the book.
    #[error("an order with this id is already in the book")]
    Duplicate,
    /// The book already holds [`OrderBook::max_orders`] orders. Only [`OrderBook::insert`]
    /// returns this; [`OrderBook::place`] reports what it cannot rest as unplaced instead.
    #[error("the book is full ({max} orders)")]
    Full {
        /// The book's cap on orders.
        max: usize,
    },
    /// No order with this id is in the book.
    #[error("no such order")]
    NotFound,
    /// The amount conflicts with the order's reservations: [`OrderBook::reduce`] to less than
    /// is reserved, or [`OrderBook::settle`] of more than is reserved.
    #[error("the new amount {amount} is below the {reserved} reserved for takers")]
    BelowReserved {
        /// The amount asked for, in base units.
        amount: u64,
        /// What takers hold reserved on the order, in base units.
        reserved: u64,
    },
    /// [`OrderBook::reduce`] was asked for more than the order's current amount.
    #[error("an order's amount can only go down")]
    AmountIncrease,
}

/// Why a reservation (a taker's claim on part of an order) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReserveError {
    /// The order is not (or no longer) in the book.
    #[error("the order is no longer in the book")]
    NotFound,
    /// The order's expiry is at or before `now_ms`.
    #[error("the order has expired")]
    Expired,
    /// More was asked than is free of other reservations.
    #[error("only {available} is still available")]
    Insufficient {
        /// What could still be reserved, in base units.
        available: u64,
    },
    /// The amount is below the order's minimum fill for what is available now
    /// ([`LimitOrder::effective_min_fill`]).
    #[error("the order's minimum fill is {min_fill}")]
    BelowMinFill {
        /// The smallest amount that could be reserved now, in base units.
        min_fill: u64,
    },
    /// The amount asked for is zero.
    #[error("amount is zero")]
    ZeroAmount,
}

/// One execution against a resting (maker) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    /// The resting order taken from.
    pub maker_order: OrderId,
    /// The maker's price: a taker always trades at the resting order's price.
    pub price: Price,
    /// Base units taken; the quote paid is [`quote_amount`](crate::quote_amount)`(amount, price)`.
    pub amount: u64,
    /// What remains of the maker's order after this fill (0 = gone from the book).
    pub maker_remaining: u64,
}

/// The outcome of [`OrderBook::place`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placed {
    /// Executions against resting orders, in the order they happened (best price, then
    /// earliest order first).
    pub fills: Vec<Fill>,
    /// Amount that now rests in the book under the order's id (0 = nothing rests).
    pub rested: u64,
    /// Amount neither filled nor rested: it could only rest at a price crossing orders it could
    /// not take (reserved for another taker, or with a minimum fill it does not meet), and a
    /// book never rests crossed.
    pub unplaced: u64,
}

/// One price level as shown in a depth view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelView {
    /// Price of every order at this level.
    pub price: Price,
    /// Sum of what can still be taken at this price (reservations excluded).
    pub amount: u64,
    /// Orders resting at this price, fully reserved ones included (so `amount` may be 0).
    pub orders: u32,
}

struct Node<T> {
    order: LimitOrder<T>,
    reserved: u64,
    prev: u32,
    next: u32,
}

impl<T> Node<T> {
    fn available(&self) -> u64 {
        self.order.amount - self.reserved
    }
}

#[derive(Clone, Copy)]
struct Level {
    head: u32,
    tail: u32,
    orders: u32,
    available: u64,
}

/// The resting orders of one pair. `T` is attached to each order and handed back when it leaves.
pub struct OrderBook<T = ()> {
    bids: BTreeMap<Price, Level>,
    asks: BTreeMap<Price, Level>,
    nodes: Vec<Option<Node<T>>>,
    free: Vec<u32>,
    /// Slots by order id (and, when asked for, the ids in order).
    index: Index,
    /// Min-heap of (expiry, id) for orders that expire; stale entries are skipped when popped.
    expiries: BinaryHeap<Reverse<(u64, OrderId)>>,
    max_orders: usize,
}

impl<T> Default for OrderBook<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> OrderBook<T> {
    /// An empty book that holds at most [`DEFAULT_MAX_ORDERS`] orders.
    pub fn new() -> Self {
        Self::with_max_orders(DEFAULT_MAX_ORDERS)
    }

    /// This book, also keeping its order ids in order, so that [`by_id_after`](Self::by_id_after)
    /// pages without sorting (a relay serving snapshots of large books). Costs a little on every
    /// insert and removal, so the matching engine's own books leave it off.
    pub fn with_id_order(mut self) -> Self {
        let mut ids = BTreeSet::new();
        ids.extend(self.index.slots.keys().copied());
        self.index.by_id = Some(ids);
        self
    }

    /// An empty book that holds at most `max_orders` orders: beyond that
    /// [`insert`](Self::insert) fails with [`BookError::Full`] and [`place`](Self::place)
    /// leaves the remainder unplaced.
    pub fn with_max_orders(max_orders: usize) -> Self {
        OrderBook {
            bids: BTreeMap::new(),
            asks: BTreeMap::new(),
            nodes: Vec::new(),
            free: Vec::new(),
            index: Index::default(),
            expiries: BinaryHeap::new(),
            max_orders,
        }
    }

    /// Orders in the book, both sides, reserved or not (expired ones count until removed).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the book holds no orders.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The most orders this book holds.
    pub fn max_orders(&self) -> usize {
        self.max_orders
    }

    /// Whether an order with this id is in the book (an expired one is until it is removed).
    pub fn contains(&self, id: &OrderId) -> bool {
        self.index.contains_key(id)
    }

    /// An order as it rests now: its `amount` is what is still unfilled, reservations included.
    pub fn get(&self, id: &OrderId) -> Option<&LimitOrder<T>> {
        self.node(id).map(|n| &n.order)
    }

    /// The caller's data attached to an order (the order's own fields stay read-only, so the
    /// book's totals cannot drift).
    pub fn data_mut(&mut self, id: &OrderId) -> Option<&mut T> {
        let slot = *self.index.get(id)?;
        self.nodes[slot as usize]
            .as_mut()
            .map(|n| &mut n.order.data)
    }

    /// What can still be taken from an order: its amount minus its reservations.
    pub fn available(&self, id: &OrderId) -> Option<u64> {
        self.node(id).map(Node::available)
    }

    /// How much of an order takers hold reserved, in base units; `None` if it is not in the
    /// book.
    pub fn reserved(&self, id: &OrderId) -> Option<u64> {
        self.node(id).map(|n| n.reserved)
    }

    fn node(&self, id: &OrderId) -> Option<&Node<T>> {
        let slot = *self.index.get(id)?;
        self.nodes[slot as usize].as_ref()
    }

    fn validate(&self, order: &LimitOrder<T>, now_ms: u64) -> Result<(), BookError> {
        if order.amount == 0 {
            return Err(BookError::ZeroAmount);
        }
        if order.price.0 == 0 {
            return Err(BookError::ZeroPrice);
        }
        if order.is_expired(now_ms) {
            return Err(BookError::Expired);
        }
        if self.index.contains_key(&order.id) {
            return Err(BookError::Duplicate);
        }
        Ok(())
    }

    /// Adds an order without matching it: the book of a network node holds what makers
    /// published, and two makers' orders may cross (they trade only when someone takes).
    pub fn insert(&mut self, order: LimitOrder<T>, now_ms: u64) -> Result<(), BookError> {
        self.validate(&order, now_ms)?;
        if self.index.len() >= self.max_orders {
            return Err(BookError::Full {
                max: self.max_orders,
            });
        }
        self.rest(order);
        Ok(())
    }

    /// Matches an order against the opposite side in price-time priority, then rests what is
    /// left unless it would cross. Expired resting orders met on the way are removed.
    pub fn place(&mut self, mut order: LimitOrder<T>, now_ms: u64) -> Result<Placed, BookError> {
        self.validate(&order, now_ms)?;
        let mut placed = Placed::default();
        let limit = order.price;
        let remaining = self.sweep(order.side, limit, order.amount, now_ms, |fill| {
            placed.fills.push(fill)
        });
        if remaining > 0 {
            // Any opposite order still at a crossing price is one this order could not take
            // (reserved, or a minimum fill it does not meet): resting there would cross.
            let crosses = match order.side {
                Side::Buy => self.asks.keys().next().is_some_and(|p| *p <= limit),
                Side::Sell => self.bids.keys().next_back().is_some_and(|p| *p >= limit),
            };
            if crosses || self.index.len() >= self.max_orders {
                placed.unplaced = remaining;
            } else {
                order.amount = remaining;
                placed.rested = remaining;
                self.rest(order);
            }
        }
        Ok(placed)
    }

    /// Immediate-or-cancel: takes up to `amount` from the side opposite `side`, at prices no
    /// worse than `limit`, best price then earliest order first, skipping orders whose minimum
    /// fill the remaining amount does not meet, and removing expired orders met on the way.
    /// Reports each fill to `on_fill` and returns the amount that found no match.
    pub fn sweep(
        &mut self,
        side: Side,
        limit: Price,
        amount: u64,
        now_ms: u64,
        mut on_fill: impl FnMut(Fill),
    ) -> u64 {
        let mut remaining = amount;
        let opposite = side_mut(&mut self.bids, &mut self.asks, side.opposite());
        let mut emptied: Vec<Price> = Vec::new();
        // Best price first: lowest ask for a buy, highest bid for a sell.
        let levels: Box<dyn Iterator<Item = (&Price, &mut Level)>> = match side {
            Side::Buy => Box::new(opposite.range_mut(..=limit)),
            Side::Sell => Box::new(opposite.range_mut(limit..).rev()),
        };
        for (&price, level) in levels {
            let mut cursor = level.head;
            while cursor != NIL && remaining > 0 {
                let node = self.nodes[cursor as usize]
                    .as_mut()
                    .expect("linked node is live");
                let next = node.next;
                // An expired order goes unless reserved; a live one gives what it can.
                let gone = if node.order.is_expired(now_ms) {
                    node.reserved == 0
                } else {
                    let available = node.available();
                    let take = remaining.min(available);
                    if take == 0 || take < node.order.effective_min_fill(available) {
                        false
                    } else {
                        node.order.amount -= take;
                        level.available -= take;
                        remaining -= take;
                        on_fill(Fill {
                            maker_order: node.order.id,
                            price,
                            amount: take,
                            maker_remaining: node.order.amount,
                        });
                        node.order.amount == 0
                    }
                };
                if gone {
                    unlink(
                        &mut self.nodes,
                        &mut self.free,
                        &mut self.index,
                        level,
                        cursor,
                    );
                }
                cursor = next;
            }
            if level.orders == 0 {
                emptied.push(price);
            }
            if remaining == 0 {
                break;
            }
        }
        for price in emptied {
            opposite.remove(&price);
        }
        remaining
    }

    fn rest(&mut self, order: LimitOrder<T>) {
        let id = order.id;
        let price = order.price;
        let side = order.side;
        let amount = order.amount;
        if order.expires_at_ms != u64::MAX {
            self.expiries.push(Reverse((order.expires_at_ms, id)));
        }
        let node = Node {
            order,
            reserved: 0,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.nodes[slot as usize] = Some(node);
                slot
            }
            None => {
                self.nodes.push(Some(node));
                (self.nodes.len() - 1) as u32
            }
        };
        let level = side_mut(&mut self.bids, &mut self.asks, side)
            .entry(price)
            .or_insert(Level {
                head: NIL,
                tail: NIL,
                orders: 0,
                available: 0,
            });
        if level.tail == NIL {
            level.head = slot;
        } else if let Some(tail) = self.nodes[level.tail as usize].as_mut() {
            tail.next = slot;
        }
        if let Some(node) = self.nodes[slot as usize].as_mut() {
            node.prev = level.tail;
        }
        level.tail = slot;
        level.orders += 1;
        level.available += amount;
        self.index.insert(id, slot);
    }

    /// Removes an order. Idempotent: a second cancel of the same id returns `None` and changes
    /// nothing. Reservations die with the order.
    pub fn cancel(&mut self, id: &OrderId) -> Option<LimitOrder<T>> {
        let slot = *self.index.get(id)?;
        let (side, price) = {
            let node = self.nodes[slot as usize].as_ref()?;
            (node.order.side, node.order.price)
        };
        let levels = side_mut(&mut self.bids, &mut self.asks, side);
        let level = levels.get_mut(&price)?;
        let node = unlink(
            &mut self.nodes,
            &mut self.free,
            &mut self.index,
            level,
            slot,
        );
        if level.orders == 0 {
            levels.remove(&price);
        }
        Some(node.order)
    }

    /// Removes every order whose expiry is at or before `now_ms` and that no taker holds a
    /// reservation on (those go when their reservation is settled or released). Idempotent.
    pub fn expire(&mut self, now_ms: u64) -> Vec<LimitOrder<T>> {
        let mut gone = Vec::new();
        let mut held = Vec::new();
        while let Some(Reverse((at, id))) = self.expiries.peek().copied() {
            if at > now_ms {
                break;
            }
            self.expiries.pop();
            match self.node(&id) {
                Some(node) if node.order.expires_at_ms == at && node.reserved > 0 => {
                    held.push(Reverse((at, id)))
                }
                Some(node) if node.order.expires_at_ms == at => {
                    if let Some(order) = self.cancel(&id) {
                        gone.push(order);
                    }
                }
                _ => {}
            }
        }
        self.expiries.extend(held);
        if self.expiries.len() > 2 * self.index.len() + 1024 {
            self.rebuild_expiries();
        }
        gone
    }

    fn rebuild_expiries(&mut self) {
        self.expiries = self
            .nodes
            .iter()
            .flatten()
            .filter(|n| n.order.expires_at_ms != u64::MAX)
            .map(|n| Reverse((n.order.expires_at_ms, n.order.id)))
            .collect();
    }

    /// Claims `amount` of an order for a taker while the trade is negotiated: no one else can
    /// take it until [`release`](Self::release) or [`settle`](Self::settle). This is what makes
    /// two racing takers unable to buy the same unit twice.
    pub fn reserve(&mut self, id: &OrderId, amount: u64, now_ms: u64) -> Result<(), ReserveError> {
        if amount == 0 {
            return Err(ReserveError::ZeroAmount);
        }
        let slot = *self.index.get(id).ok_or(ReserveError::NotFound)?;
        let node = self.nodes[slot as usize]
            .as_mut()
            .ok_or(ReserveError::NotFound)?;
        if node.order.is_expired(now_ms) {
            return Err(ReserveError::Expired);
        }
        let available = node.available();
        if amount > available {
            return Err(ReserveError::Insufficient { available });
        }
        let min_fill = node.order.effective_min_fill(available);
        if amount < min_fill {
            return Err(ReserveError::BelowMinFill { min_fill });
        }
        node.reserved += amount;
        let (side, price) = (node.order.side, node.order.price);
        if let Some(level) = side_mut(&mut self.bids, &mut self.asks, side).get_mut(&price) {
            level.available -= amount;
        }
        Ok(())
    }

    /// Gives a reservation back (the trade was rejected, timed out or aborted). Returns whether
    /// the order was still there to receive it.
    pub fn release(&mut self, id: &OrderId, amount: u64) -> bool {
        let Some(&slot) = self.index.get(id) else {
            return false;
        };
        let Some(node) = self.nodes[slot as usize].as_mut() else {
            return false;
        };
        let amount = amount.min(node.reserved);
        node.reserved -= amount;
        let (side, price) = (node.order.side, node.order.price);
        if let Some(level) = side_mut(&mut self.bids, &mut self.asks, side).get_mut(&price) {
            level.available += amount;
        }
        true
    }

    /// Turns a reservation into a fill: the amount leaves the order for good. Returns what
    /// remains of the order; an order with nothing left leaves the book.
    pub fn settle(&mut self, id: &OrderId, amount: u64) -> Result<u64, BookError> {
        let slot = *self.index.get(id).ok_or(BookError::NotFound)?;
        let node = self.nodes[slot as usize]
            .as_mut()
            .ok_or(BookError::NotFound)?;
        if amount > node.reserved {
            return Err(BookError::BelowReserved {
                amount,
                reserved: node.reserved,
            });
        }
        node.reserved -= amount;
        node.order.amount -= amount;
        let remaining = node.order.amount;
        if remaining == 0 {
            self.cancel(id);
        }
        Ok(remaining)
    }

    /// Lowers an order's amount (the maker republished what is left after a trade elsewhere).
    /// The order keeps its place in the queue; zero removes it.
    pub fn reduce(&mut self, id: &OrderId, amount: u64) -> Result<(), BookError> {
        let slot = *self.index.get(id).ok_or(BookError::NotFound)?;
        let node = self.nodes[slot as usize]
            .as_mut()
            .ok_or(BookError::NotFound)?;
        if amount > node.order.amount {
            return Err(BookError::AmountIncrease);
        }
        if amount < node.reserved {
            return Err(BookError::BelowReserved {
                amount,
                reserved: node.reserved,
            });
        }
        let removed = node.order.amount - amount;
        node.order.amount = amount;
        let (side, price) = (node.order.side, node.order.price);
        if let Some(level) = side_mut(&mut self.bids, &mut self.asks, side).get_mut(&price) {
            level.available -= removed;
        }
        if amount == 0 {
            self.cancel(id);
        }
        Ok(())
    }

    /// Highest bid with something available, and how much is available there.
    pub fn best_bid(&self) -> Option<(Price, u64)> {
        self.bids
            .iter()
            .rev()
            .find(|(_, l)| l.available > 0)
            .map(|(p, l)| (*p, l.available))
    }

    /// Lowest ask with something available, and how much is available there.
    pub fn best_ask(&self) -> Option<(Price, u64)> {
        self.asks
            .iter()
            .find(|(_, l)| l.available > 0)
            .map(|(p, l)| (*p, l.available))
    }

    /// The best `max_levels` levels of one side, best first.
    pub fn depth(&self, side: Side, max_levels: usize) -> Vec<LevelView> {
        let view = |(p, l): (&Price, &Level)| LevelView {
            price: *p,
            amount: l.available,
            orders: l.orders,
        };
        match side {
            Side::Buy => self.bids.iter().rev().take(max_levels).map(view).collect(),
            Side::Sell => self.asks.iter().take(max_levels).map(view).collect(),
        }
    }

    /// Number of price levels on one side.
    pub fn levels(&self, side: Side) -> usize {
        match side {
            Side::Buy => self.bids.len(),
            Side::Sell => self.asks.len(),
        }
    }

    /// Every order of one side in priority order (best price, then earliest).
    pub fn orders(&self, side: Side) -> impl Iterator<Item = &LimitOrder<T>> + '_ {
        let levels: Box<dyn Iterator<Item = &Level>> = match side {
            Side::Buy => Box::new(self.bids.values().rev()),
            Side::Sell => Box::new(self.asks.values()),
        };
        levels.flat_map(move |level| LevelIter {
            nodes: &self.nodes,
            cursor: level.head,
        })
    }

    /// Every order, bids then asks, each in priority order.
    pub fn iter(&self) -> impl Iterator<Item = &LimitOrder<T>> + '_ {
        self.orders(Side::Buy).chain(self.orders(Side::Sell))
    }

    /// Every order in id order, starting after `after` (exclusive) when given: a listing that
    /// pages stably while the book changes. With [`with_id_order`](Self::with_id_order) it
    /// starts with one lookup; otherwise it sorts the book's ids first.
    pub fn by_id_after(
        &self,
        after: Option<&OrderId>,
    ) -> Box<dyn Iterator<Item = &LimitOrder<T>> + '_> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        match &self.index.by_id {
            Some(ids) => Box::new(
                ids.range((start, Bound::Unbounded))
                    .filter_map(|id| self.get(id)),
            ),
            None => {
                let mut ids: Vec<&OrderId> = self
                    .index
                    .slots
                    .keys()
                    .filter(|id| after.is_none_or(|a| *id > a))
                    .collect();
                ids.sort_unstable();
                Box::new(ids.into_iter().filter_map(|id| self.get(id)))
            }
        }
    }
}

/// Slots by order id, and the ids in order when the book keeps them.
#[derive(Default)]
struct Index {
    slots: HashMap<OrderId, u32>,
    by_id: Option<BTreeSet<OrderId>>,
}

impl Index {
    fn get(&self, id: &OrderId) -> Option<&u32> {
        self.slots.get(id)
    }

    fn contains_key(&self, id: &OrderId) -> bool {
        self.slots.contains_key(id)
    }

    fn len(&self) -> usize {
        self.slots.len()
    }

    fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn insert(&mut self, id: OrderId, slot: u32) {
        self.slots.insert(id, slot);
        if let Some(ids) = &mut self.by_id {
            ids.insert(id);
        }
    }

    fn remove(&mut self, id: &OrderId) {
        self.slots.remove(id);
        if let Some(ids) = &mut self.by_id {
            ids.remove(id);
        }
    }
}

struct LevelIter<'a, T> {
    nodes: &'a [Option<Node<T>>],
    cursor: u32,
}

impl<'a, T> Iterator for LevelIter<'a, T> {
    type Item = &'a LimitOrder<T>;
    fn next(&mut self) -> Option<Self::Item> {
        let node = self.nodes.get(self.cursor as usize)?.as_ref()?;
        self.cursor = node.next;
        Some(&node.order)
    }
}

fn side_mut<'a>(
    bids: &'a mut BTreeMap<Price, Level>,
    asks: &'a mut BTreeMap<Price, Level>,
    side: Side,
) -> &'a mut BTreeMap<Price, Level> {
    match side {
        Side::Buy => bids,
        Side::Sell => asks,
    }
}

/// Takes a node out of its level's list and the slab; the level's counters follow.
fn unlink<T>(
    nodes: &mut [Option<Node<T>>],
    free: &mut Vec<u32>,
    index: &mut Index,
    level: &mut Level,
    slot: u32,
) -> Node<T> {
    let node = nodes[slot as usize].take().expect("unlinking a live node");
    if node.prev == NIL {
        level.head = node.next;
    } else if let Some(prev) = nodes[node.prev as usize].as_mut() {
        prev.next = node.next;
    }
    if node.next == NIL {
        level.tail = node.prev;
    } else if let Some(next) = nodes[node.next as usize].as_mut() {
        next.prev = node.prev;
    }
    level.orders -= 1;
    level.available -= node.available();
    free.push(slot);
    index.remove(&node.order.id);
    node
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod properties;
#[cfg(test)]
mod tests;
