//! The order book as the network sees it.
//!
//! A [`Market`] takes order messages that passed `darkswap_proto::order::verify_order_message`
//! (signature, schema, time bounds) and applies the rules that need memory:
//!
//! - **sequence numbers**: per maker and pair, a message not newer than the last accepted one is a
//!   replay (or arrived out of order) and is refused, so replays and reordering are harmless;
//! - **cancel tombstones**: a cancelled order's id is remembered until the order's own expiry, so
//!   the order cannot come back through a snapshot or a peer that missed the cancel; a cancel
//!   that overtook its order (the book never saw it) is remembered too, for that maker only
//!   and for as long as any order can live, at most [`MAX_EARLY_CANCELS_PER_MAKER`] of them per
//!   maker and [`MAX_EARLY_CANCELS`] in all;
//! - **liveness**: a maker that sends nothing (orders, cancels or keep-alives) for
//!   [`MarketLimits::maker_timeout_ms`] is gone, and all its orders leave the book: no ghost
//!   orders after a maker closes the page;
//! - **keep-alive digests**: a maker's keep-alive carries a digest of its live orders on a pair;
//!   a mismatch means this book missed something, and the caller pulls that maker's orders;
//! - **limits**: live orders per maker, a token-bucket publish rate per maker, a total order cap
//!   per book, and a cap on the number of pairs and makers tracked, so memory stays bounded
//!   whatever peers send.
//!
//! The relay runs this before forwarding anything, and every client runs it again on what it
//! receives (a client never trusts its relay's filtering). Time is always passed in.

#![warn(missing_docs)]

use darkswap_orderbook::{BookError, LimitOrder, OrderBook, OrderId, Pair, ReserveError};
use darkswap_proto::limits::{AnnouncedLimits, MAX_ANNOUNCED_LIMIT};
use darkswap_proto::order::{
    live_orders_digest, order_id, OrderAction, OrderReject, OrderSpec, VerifiedOrderMessage,
    MAX_CLOCK_SKEW_MS, MAX_ORDER_LIFETIME_MS,
};
use darkswap_rate::{Rate, TokenBucket};
use libp2p_identity::PeerId;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// How often a maker's client sends a keep-alive per pair it has orders on.
pub const KEEP_ALIVE_INTERVAL_MS: u64 = 10_000;
/// A maker silent this long is gone: three missed keep-alives. This is the documented bound on
/// how long a closed page's orders stay visible.
pub const MAKER_TIMEOUT_MS: u64 = 3 * KEEP_ALIVE_INTERVAL_MS;
/// A maker's sequence numbers are remembered this long after its last message, longer than
/// the clock-skew window during which a captured message could be replayed.
pub const MAKER_MEMORY_MS: u64 = 4 * MAX_CLOCK_SKEW_MS;

/// Whether `maker`'s order `id` was cancelled, before or after this book saw it.
fn cancelled(
    tombstones: &HashMap<OrderId, u64>,
    early_cancels: &HashMap<(PeerId, OrderId), u64>,
    id: &OrderId,
    maker: &PeerId,
) -> bool {
    tombstones.contains_key(id) || early_cancels.contains_key(&(*maker, *id))
}

/// Cancels of orders a market never saw that it remembers at most, all makers together. Beyond
/// it a cancel still applies and is forwarded; only its order, should it come later through a
/// snapshot, is not stopped.
pub const MAX_EARLY_CANCELS: usize = 32_768;
/// Of those, one maker's at most: a cancel overtakes its order rarely (two messages sent
/// moments apart that took different paths), so an honest maker needs few; filling
/// [`MAX_EARLY_CANCELS`] takes thousands of identities.
pub const MAX_EARLY_CANCELS_PER_MAKER: usize = 16;

/// Bounds on what one market holds and accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketLimits {
    /// Live orders one maker may have across all pairs.
    pub max_orders_per_maker: usize,
    /// Burst of messages a maker may send at once.
    pub publish_burst: u32,
    /// Sustained messages per second a maker may send.
    pub publish_per_second: u32,
    /// Orders per pair.
    pub max_orders_per_book: usize,
    /// Pairs tracked.
    pub max_pairs: usize,
    /// Makers tracked.
    pub max_makers: usize,
    /// A maker silent this long is gone (see [`MAKER_TIMEOUT_MS`]).
    pub maker_timeout_ms: u64,
}

impl MarketLimits {
    /// The shared defaults: every relay's unless its operator changes them, and what a client
    /// assumes until its relay tells it its own.
    pub const DEFAULT: MarketLimits = MarketLimits {
        // A market maker quoting ladders on a few pairs stays well under this.
        max_orders_per_maker: 200,
        // Enough to republish a full ladder after a reconnect, not enough to flood.
        publish_burst: 50,
        // Orders, cancels and keep-alives together.
        publish_per_second: 10,
        // Far above real depth, bounded memory (~300 B an order).
        max_orders_per_book: 100_000,
        max_pairs: 1_000,
        max_makers: 100_000,
        maker_timeout_ms: MAKER_TIMEOUT_MS,
    };

    /// The per-maker publish rate as a token-bucket rate.
    pub fn publish_rate(&self) -> Rate {
        Rate::per_second(self.publish_per_second, self.publish_burst)
    }

    /// What a relay tells its clients of these limits.
    pub fn announced(&self) -> AnnouncedLimits {
        let clamp = |v: u64| v.clamp(1, u64::from(MAX_ANNOUNCED_LIMIT)) as u32;
        AnnouncedLimits {
            max_orders_per_maker: clamp(self.max_orders_per_maker as u64),
            publish_burst: clamp(u64::from(self.publish_burst)),
            publish_per_second: clamp(u64::from(self.publish_per_second)),
        }
    }

    /// These limits with what a relay announced in place of the per-maker ones (a client keeps
    /// under its relay's limits, not the defaults).
    pub fn with_announced(self, announced: AnnouncedLimits) -> MarketLimits {
        MarketLimits {
            max_orders_per_maker: announced.max_orders_per_maker as usize,
            publish_burst: announced.publish_burst,
            publish_per_second: announced.publish_per_second,
            ..self
        }
    }
}

impl Default for MarketLimits {
    fn default() -> Self {
        MarketLimits::DEFAULT
    }
}

/// What the market stores with each order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderInfo {
    /// Who signed the order.
    pub maker: PeerId,
    /// The pair it rests on.
    pub pair: Pair,
    /// What it offers, as last accepted (the amount shrinks after trades).
    pub spec: OrderSpec,
    /// The latest accepted signed message for this order, served unchanged in snapshots.
    pub raw: Arc<[u8]>,
}

/// What applying a message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// A new order entered the book.
    Added(OrderId),
    /// The maker republished an order with a smaller amount (after a trade).
    Reduced(OrderId),
    /// Same order, same amount: nothing changed (a maker re-announcing).
    Unchanged(OrderId),
    /// The maker cancelled the order; it left the book.
    Cancelled(OrderId),
    /// A cancel for an order this book never had: nothing to remove; the sequence number still
    /// blocks the order if it arrives late, and an early-cancel tombstone (within its caps) if
    /// it comes through a snapshot.
    CancelledUnknown(OrderId),
    /// A keep-alive whose digest matches our copy of the maker's orders.
    KeepAlive,
    /// The maker's digest disagrees with ours: pull its orders on this pair.
    KeepAliveMismatch {
        /// The maker whose orders to pull.
        maker: PeerId,
        /// The pair to pull them on.
        pair: Pair,
    },
}

/// What [`Market::repair_maker`] did with a snapshot of one maker's orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repaired {
    /// The snapshot hashed to the maker's signed digest, so it replaced what the book held.
    pub complete: bool,
    /// Orders new to the book.
    pub added: usize,
    /// Orders that left the book (missing from a complete snapshot).
    pub removed: usize,
    /// Orders of the snapshot the book refused (cancelled here, over a cap, conflicting).
    pub refused: usize,
}

/// Why an order left the book in [`Market::expire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The order reached its own expiry.
    Expired,
    /// Its maker sent nothing for [`MarketLimits::maker_timeout_ms`].
    MakerGone,
}

struct MakerState {
    last_seq: HashMap<Pair, u64>,
    /// The maker's live orders and the pair each rests on.
    orders: HashMap<OrderId, Pair>,
    last_seen_ms: u64,
    bucket: TokenBucket,
}

/// The verified order books of every pair this node follows.
pub struct Market {
    limits: MarketLimits,
    books: HashMap<Pair, OrderBook<OrderInfo>>,
    makers: HashMap<PeerId, MakerState>,
    /// Cancelled order ids and the time until which they are remembered.
    tombstones: HashMap<OrderId, u64>,
    /// Cancels that overtook their orders, by the maker that cancelled and the id (only that
    /// maker's order is stopped, so nobody can cancel another's order in advance, nor take the
    /// place of its cancel), and until when; with how many each maker has.
    early_cancels: HashMap<(PeerId, OrderId), u64>,
    early_cancels_of: HashMap<PeerId, usize>,
    /// Books keep their ids in order, for [`Market::snapshot`] (see
    /// [`Market::serving_snapshots`]).
    id_order: bool,
}

impl Market {
    /// An empty market that applies `limits`.
    pub fn new(limits: MarketLimits) -> Self {
        Market {
            limits,
            books: HashMap::new(),
            makers: HashMap::new(),
            tombstones: HashMap::new(),
            early_cancels: HashMap::new(),
            early_cancels_of: HashMap::new(),
            id_order: false,
        }
    }

    /// This market, with books that keep their order ids in order so that
    /// [`snapshot`](Self::snapshot) pages a large pair without sorting it (what a relay that
    /// serves book syncs wants; a client's books skip the cost).
    pub fn serving_snapshots(mut self) -> Self {
        self.id_order = true;
        self
    }

    /// Changes the limits from now on (a client learned its relay's). Makers' rate buckets keep
    /// their tokens; caps apply to what arrives next.
    pub fn set_limits(&mut self, limits: MarketLimits) {
        self.limits = limits;
    }

    /// The limits in force.
    pub fn limits(&self) -> &MarketLimits {
        &self.limits
    }

    /// The book of one pair, if any order ever rested on it.
    pub fn book(&self, pair: &Pair) -> Option<&OrderBook<OrderInfo>> {
        self.books.get(pair)
    }

    /// The pairs with a book.
    pub fn pairs(&self) -> impl Iterator<Item = &Pair> {
        self.books.keys()
    }

    /// Live orders per pair, for metrics.
    pub fn order_counts(&self) -> impl Iterator<Item = (&Pair, usize)> {
        self.books.iter().map(|(p, b)| (p, b.len()))
    }

    /// An order resting in a pair's book.
    pub fn order(&self, pair: &Pair, id: &OrderId) -> Option<&LimitOrder<OrderInfo>> {
        self.books.get(pair)?.get(id)
    }

    /// Makers tracked (with live orders or a recent message).
    pub fn makers(&self) -> usize {
        self.makers.len()
    }

    /// Live orders one maker has on one pair in this book.
    pub fn live_orders_of(&self, maker: &PeerId, pair: &Pair) -> usize {
        self.makers.get(maker).map_or(0, |state| {
            state.orders.values().filter(|p| *p == pair).count()
        })
    }

    /// The pair of each live order of one maker (a pair once per order).
    pub fn order_pairs_of(&self, maker: &PeerId) -> impl Iterator<Item = &Pair> {
        self.makers
            .get(maker)
            .into_iter()
            .flat_map(|state| state.orders.values())
    }

    /// Cancelled order ids remembered until their orders' expiry.
    pub fn tombstones(&self) -> usize {
        self.tombstones.len()
    }

    /// Cancels remembered of orders this book never saw.
    pub fn early_cancels(&self) -> usize {
        self.early_cancels.len()
    }

    /// Remembers `maker`'s cancel of `id`, an order this book never saw, within the caps.
    fn remember_early_cancel(&mut self, id: OrderId, maker: PeerId, now_ms: u64) {
        let key = (maker, id);
        if self.early_cancels.contains_key(&key) || self.early_cancels.len() >= MAX_EARLY_CANCELS {
            return;
        }
        let held = self.early_cancels_of.entry(maker).or_insert(0);
        if *held >= MAX_EARLY_CANCELS_PER_MAKER {
            return;
        }
        *held += 1;
        let until = now_ms.saturating_add(MAX_ORDER_LIFETIME_MS + MAX_CLOCK_SKEW_MS);
        self.early_cancels.insert(key, until);
    }

    /// Applies a gossiped message (already verified with `Freshness::Live`).
    pub fn apply(
        &mut self,
        message: &VerifiedOrderMessage,
        now_ms: u64,
    ) -> Result<Applied, OrderReject> {
        let maker = message.maker;
        let pair = &message.body.pair;
        let limits = self.limits.clone();
        let state = maker_state(&mut self.makers, &limits, maker, now_ms)?;
        // Replays first: anyone can send a maker's old messages again, and they must not spend
        // the maker's tokens (that would let a stranger silence the maker). Then the rate, before
        // any book work: a flood costs the flooder, not our books.
        if state
            .last_seq
            .get(pair)
            .is_some_and(|last| message.body.seq <= *last)
        {
            return Err(OrderReject::Replay);
        }
        if !state.bucket.try_take(&limits.publish_rate(), now_ms) {
            return Err(OrderReject::RateLimited);
        }
        let outcome = match &message.body.action {
            OrderAction::Order(spec) => {
                let id = order_id(&maker, spec.nonce);
                if cancelled(&self.tombstones, &self.early_cancels, &id, &maker) {
                    return Err(OrderReject::Cancelled);
                }
                let info = OrderInfo {
                    maker,
                    pair: pair.clone(),
                    spec: *spec,
                    raw: message.raw.as_slice().into(),
                };
                if !state.last_seq.contains_key(pair) && state.last_seq.len() >= limits.max_pairs {
                    return Err(OrderReject::BookFull);
                }
                upsert(
                    &mut self.books,
                    self.id_order,
                    state,
                    &limits,
                    id,
                    info,
                    now_ms,
                )?
            }
            OrderAction::Cancel { order_id, .. } => {
                let book = self.books.get_mut(pair);
                match book.and_then(|b| b.get(order_id).map(|o| o.data.maker)) {
                    Some(owner) if owner != maker => return Err(OrderReject::Conflict),
                    Some(_) => {
                        let order = self
                            .books
                            .get_mut(pair)
                            .and_then(|b| b.cancel(order_id))
                            .ok_or(OrderReject::Malformed)?;
                        state.orders.remove(order_id);
                        self.tombstones.insert(*order_id, order.expires_at_ms);
                        Applied::Cancelled(*order_id)
                    }
                    None => Applied::CancelledUnknown(*order_id),
                }
            }
            OrderAction::KeepAlive { digest, .. } => {
                let ours = maker_digest(self.books.get(pair), &state.orders, pair);
                if ours == *digest {
                    Applied::KeepAlive
                } else {
                    Applied::KeepAliveMismatch {
                        maker,
                        pair: pair.clone(),
                    }
                }
            }
        };
        state.last_seq.insert(pair.clone(), message.body.seq);
        state.last_seen_ms = now_ms;
        if let Applied::CancelledUnknown(id) = outcome {
            self.remember_early_cancel(id, maker, now_ms);
        }
        Ok(outcome)
    }

    /// Applies an order from a snapshot (verified with `Freshness::Stored`): no sequence or rate
    /// rules (a snapshot replays old messages by design), but tombstones, caps and conflicts
    /// still hold. Cancels and keep-alives never appear in snapshots.
    pub fn apply_stored(
        &mut self,
        message: &VerifiedOrderMessage,
        now_ms: u64,
    ) -> Result<Applied, OrderReject> {
        let OrderAction::Order(spec) = &message.body.action else {
            return Err(OrderReject::Malformed);
        };
        let maker = message.maker;
        let id = order_id(&maker, spec.nonce);
        if cancelled(&self.tombstones, &self.early_cancels, &id, &maker) {
            return Err(OrderReject::Cancelled);
        }
        let limits = self.limits.clone();
        let state = maker_state(&mut self.makers, &limits, maker, now_ms)?;
        let info = OrderInfo {
            maker,
            pair: message.body.pair.clone(),
            spec: *spec,
            raw: message.raw.as_slice().into(),
        };
        upsert(
            &mut self.books,
            self.id_order,
            state,
            &limits,
            id,
            info,
            now_ms,
        )
    }

    /// Repairs what this book holds of one maker on one pair from a snapshot that a third party
    /// served (a peer relay), checked against the digest the maker itself signed in the
    /// keep-alive that showed the mismatch. When the snapshot's live orders hash to that
    /// digest, it is the maker's whole state: the book takes it as
    /// [`reconcile_maker`](Self::reconcile_maker) does, and orders missing from it go. When it
    /// does not (the maker changed something since, or the server withheld an order), only
    /// the orders it adds are taken: a server can then add the maker's own signed orders but
    /// never make this book drop one. Orders of other makers or pairs in `snapshot` are ignored.
    pub fn repair_maker(
        &mut self,
        maker: &PeerId,
        pair: &Pair,
        snapshot: &[VerifiedOrderMessage],
        signed_digest: &[u8; 32],
        now_ms: u64,
    ) -> Repaired {
        let theirs: Vec<&VerifiedOrderMessage> = snapshot
            .iter()
            .filter(|m| m.maker == *maker && m.body.pair == *pair)
            .collect();
        let mut live: Vec<(OrderId, u64)> = theirs
            .iter()
            .filter_map(|m| match &m.body.action {
                OrderAction::Order(spec) if spec.expires_at_ms > now_ms => {
                    Some((order_id(maker, spec.nonce), spec.amount))
                }
                _ => None,
            })
            .collect();
        let complete = live_orders_digest(&mut live) == *signed_digest;
        let before = self.live_orders_of(maker, pair);
        let results = if complete {
            self.reconcile_maker(maker, pair, snapshot, now_ms)
        } else {
            theirs
                .into_iter()
                .map(|m| self.apply_stored(m, now_ms))
                .collect()
        };
        let added = results
            .iter()
            .filter(|r| matches!(r, Ok(Applied::Added(_))))
            .count();
        let refused = results.iter().filter(|r| r.is_err()).count();
        let after = self.live_orders_of(maker, pair);
        // What left: the held orders minus those kept (after - added).
        let removed = before.saturating_sub(after.saturating_sub(added));
        Repaired {
            complete,
            added,
            removed,
            refused,
        }
    }

    /// Replaces what this book holds of one maker on one pair with a fresh snapshot of it
    /// (after a keep-alive mismatch): orders missing from the snapshot were cancelled or filled
    /// while we were not listening, and go.
    pub fn reconcile_maker(
        &mut self,
        maker: &PeerId,
        pair: &Pair,
        snapshot: &[VerifiedOrderMessage],
        now_ms: u64,
    ) -> Vec<Result<Applied, OrderReject>> {
        let keep: HashSet<OrderId> = snapshot
            .iter()
            .filter(|m| m.maker == *maker && m.body.pair == *pair)
            .filter_map(VerifiedOrderMessage::order_id)
            .collect();
        if let (Some(book), Some(state)) = (self.books.get_mut(pair), self.makers.get_mut(maker)) {
            let stale: Vec<OrderId> = state
                .orders
                .iter()
                .filter(|(id, p)| *p == pair && !keep.contains(*id))
                .map(|(id, _)| *id)
                .collect();
            for id in stale {
                book.cancel(&id);
                state.orders.remove(&id);
            }
        }
        snapshot
            .iter()
            .filter(|m| m.maker == *maker && m.body.pair == *pair)
            .map(|m| self.apply_stored(m, now_ms))
            .collect()
    }

    /// Holds `amount` of an order for a taker while a trade is negotiated (see
    /// `OrderBook::reserve`): what the maker's client does before accepting a take.
    pub fn reserve(
        &mut self,
        pair: &Pair,
        id: &OrderId,
        amount: u64,
        now_ms: u64,
    ) -> Result<(), ReserveError> {
        self.books
            .get_mut(pair)
            .ok_or(ReserveError::NotFound)?
            .reserve(id, amount, now_ms)
    }

    /// Gives a reservation back (the trade was rejected, aborted or timed out).
    pub fn release(&mut self, pair: &Pair, id: &OrderId, amount: u64) -> bool {
        self.books
            .get_mut(pair)
            .is_some_and(|b| b.release(id, amount))
    }

    /// Turns a reservation into a fill; returns what remains of the order (0: it left the book).
    pub fn settle(&mut self, pair: &Pair, id: &OrderId, amount: u64) -> Result<u64, BookError> {
        let book = self.books.get_mut(pair).ok_or(BookError::NotFound)?;
        let maker = book
            .get(id)
            .map(|o| o.data.maker)
            .ok_or(BookError::NotFound)?;
        let remaining = book.settle(id, amount)?;
        if remaining == 0 {
            if let Some(state) = self.makers.get_mut(&maker) {
                state.orders.remove(id);
            }
        }
        Ok(remaining)
    }

    /// Removes expired orders, the orders of makers gone silent, old tombstones and forgotten
    /// makers. Call it every second or so. Returns what left the book and why.
    pub fn expire(&mut self, now_ms: u64) -> Vec<(LimitOrder<OrderInfo>, Removal)> {
        let mut removed = Vec::new();
        for book in self.books.values_mut() {
            for order in book.expire(now_ms) {
                if let Some(state) = self.makers.get_mut(&order.data.maker) {
                    state.orders.remove(&order.id);
                }
                removed.push((order, Removal::Expired));
            }
        }
        let timeout = self.limits.maker_timeout_ms;
        for state in self.makers.values_mut() {
            if now_ms.saturating_sub(state.last_seen_ms) < timeout || state.orders.is_empty() {
                continue;
            }
            for (id, pair) in state.orders.drain() {
                if let Some(order) = self.books.get_mut(&pair).and_then(|b| b.cancel(&id)) {
                    removed.push((order, Removal::MakerGone));
                }
            }
        }
        self.makers.retain(|_, s| {
            !s.orders.is_empty() || now_ms.saturating_sub(s.last_seen_ms) < MAKER_MEMORY_MS
        });
        self.tombstones.retain(|_, until| *until > now_ms);
        let counts = &mut self.early_cancels_of;
        self.early_cancels.retain(|(maker, _), until| {
            let keep = *until > now_ms;
            if !keep {
                if let Some(n) = counts.get_mut(maker) {
                    *n = n.saturating_sub(1);
                }
            }
            keep
        });
        counts.retain(|_, n| *n > 0);
        self.books.retain(|_, b| !b.is_empty());
        removed
    }

    /// The signed messages of every live order on a pair, in order-id order (stable for paging
    /// while the book changes), starting after `after` (exclusive) and at most `limit` of them, plus whether more follow.
    /// This is what a joiner's `/darkswap/book-sync/1` request is answered with.
    pub fn snapshot(
        &self,
        pair: &Pair,
        maker: Option<&PeerId>,
        after: Option<&OrderId>,
        limit: usize,
    ) -> (Vec<Arc<[u8]>>, bool) {
        let Some(book) = self.books.get(pair) else {
            return (Vec::new(), false);
        };
        // Ids order the snapshot, so paging is stable while the book changes. Neither form
        // walks the whole pair when serving snapshots: the book keeps its ids in order, and a
        // maker has at most `max_orders_per_maker` orders.
        let mut page: Vec<Arc<[u8]>> = match maker {
            None => book
                .by_id_after(after)
                .take(limit.saturating_add(1))
                .map(|o| o.data.raw.clone())
                .collect(),
            Some(maker) => {
                let mut ids: Vec<&OrderId> = self
                    .makers
                    .get(maker)
                    .map(|state| {
                        state
                            .orders
                            .iter()
                            .filter(|(id, p)| *p == pair && after.is_none_or(|a| *id > a))
                            .map(|(id, _)| id)
                            .collect()
                    })
                    .unwrap_or_default();
                ids.sort_unstable();
                ids.into_iter()
                    .filter_map(|id| book.get(id))
                    .take(limit.saturating_add(1))
                    .map(|o| o.data.raw.clone())
                    .collect()
            }
        };
        let more = page.len() > limit;
        page.truncate(limit);
        (page, more)
    }
}

/// The state of a maker, created on its first message within the cap on makers tracked.
fn maker_state<'a>(
    makers: &'a mut HashMap<PeerId, MakerState>,
    limits: &MarketLimits,
    maker: PeerId,
    now_ms: u64,
) -> Result<&'a mut MakerState, OrderReject> {
    if !makers.contains_key(&maker) && makers.len() >= limits.max_makers {
        return Err(OrderReject::BookFull);
    }
    Ok(makers.entry(maker).or_insert_with(|| MakerState {
        last_seq: HashMap::new(),
        orders: HashMap::new(),
        last_seen_ms: now_ms,
        bucket: TokenBucket::full(&limits.publish_rate(), now_ms),
    }))
}

fn upsert(
    books: &mut HashMap<Pair, OrderBook<OrderInfo>>,
    id_order: bool,
    state: &mut MakerState,
    limits: &MarketLimits,
    id: OrderId,
    info: OrderInfo,
    now_ms: u64,
) -> Result<Applied, OrderReject> {
    let pair = info.pair.clone();
    if !books.contains_key(&info.pair) && books.len() >= limits.max_pairs {
        return Err(OrderReject::BookFull);
    }
    let book = books.entry(info.pair.clone()).or_insert_with(|| {
        let book = OrderBook::with_max_orders(limits.max_orders_per_book);
        if id_order {
            book.with_id_order()
        } else {
            book
        }
    });
    let spec = info.spec;
    if let Some(existing) = book.get(&id) {
        // The minimum fill of what is left is the order's own, or all of it when less remains
        // (a message's minimum fill is never above its amount).
        let same_terms = existing.side == spec.side
            && existing.price == spec.price
            && existing.min_fill.min(spec.amount) == spec.min_fill
            && existing.expires_at_ms == spec.expires_at_ms;
        if !same_terms || spec.amount > existing.amount {
            // An order's terms never change and it never grows: a new order needs a new nonce.
            return Err(OrderReject::Conflict);
        }
        if spec.amount == existing.amount {
            return Ok(Applied::Unchanged(id));
        }
        book.reduce(&id, spec.amount)
            .map_err(|_| OrderReject::Conflict)?;
        // Keep the newest signed message so snapshots carry the reduced amount.
        if let Some(order) = book.data_mut(&id) {
            order.raw = info.raw;
            order.spec = spec;
        }
        return Ok(Applied::Reduced(id));
    }
    if state.orders.len() >= limits.max_orders_per_maker {
        return Err(OrderReject::OverCap);
    }
    let order = LimitOrder {
        id,
        side: spec.side,
        price: spec.price,
        amount: spec.amount,
        min_fill: spec.min_fill,
        expires_at_ms: spec.expires_at_ms,
        data: info,
    };
    match book.insert(order, now_ms) {
        Ok(()) => {
            state.orders.insert(id, pair);
            Ok(Applied::Added(id))
        }
        Err(BookError::Full { .. }) => Err(OrderReject::BookFull),
        Err(BookError::Expired) => Err(OrderReject::Expired),
        Err(_) => Err(OrderReject::BadOrder),
    }
}

fn maker_digest(
    book: Option<&OrderBook<OrderInfo>>,
    orders: &HashMap<OrderId, Pair>,
    pair: &Pair,
) -> [u8; 32] {
    let mut live: Vec<(OrderId, u64)> = match book {
        Some(book) => orders
            .iter()
            .filter(|(_, p)| *p == pair)
            .filter_map(|(id, _)| book.get(id))
            .map(|o| (o.id, o.amount))
            .collect(),
        None => Vec::new(),
    };
    live_orders_digest(&mut live)
}

#[cfg(test)]
mod tests;
