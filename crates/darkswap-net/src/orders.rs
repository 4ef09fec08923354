//! The trader's side of the order book, as a sans-IO state machine: follows pairs, keeps a
//! verified book of them (darkswap-market), syncs it from the relay when joining, publishes the
//! trader's own signed orders, cancels and keep-alives, and reports what changed.
//!
//! [`Orders`] does no I/O and reads no clock: every input carries the time (`now_ms`, Unix
//! milliseconds), and every input returns an [`OrdersOutput`]: the [`OrdersAction`]s for the
//! node to carry out on the network (subscribe to a topic, publish a message, ask the relay for
//! a page of the book) and the [`OrdersEvent`]s for the application. What the network answers
//! comes back in as inputs ([`Orders::on_gossip`], [`Orders::on_sync_page`],
//! [`Orders::publish_failed`], …).
//!
//! Traders never forward gossip (the node reports `Ignore` for every message): relays are the
//! hubs that validate and forward. A trader still verifies everything it receives itself.
//!
//! Publishing is paced by a token bucket sized from the relay's market limits
//! ([`Orders::set_limits`]), so a republish of many orders after a reconnect is spread out
//! instead of refused by the relay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use darkswap_market::{Applied, Market, MarketLimits, OrderInfo, Removal, KEEP_ALIVE_INTERVAL_MS};
use darkswap_orderbook::{
    BookError, LevelView, LimitOrder, OrderId, Pair, Price, ReserveError, Side,
};
use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse, MAX_BOOK_SYNC_PAGE};
use darkswap_proto::order::{
    live_orders_digest, order_id, order_topic, parse_order_topic, sign_order_message,
    verify_order_message, Freshness, OrderAction, OrderBody, OrderReject, OrderSpec,
    VerifiedOrderMessage, MIN_ORDER_LIFETIME_MS,
};
use darkswap_proto::order_batch::verify_order_messages;
use libp2p::identity::Keypair;
use libp2p::PeerId;

use darkswap_rate::{Rate, TokenBucket};

use tape::{Tape, TapeFill};

/// Pairs one trader follows at once.
pub const MAX_WATCHED_PAIRS: usize = 32;
/// Price levels per side in a [`BookView`].
pub const BOOK_VIEW_LEVELS: usize = 50;
/// Orders per side in a [`BookView`] (a UI shows the top of the book; the rest is in depth).
pub const BOOK_VIEW_ORDERS: usize = 200;
/// Own messages waiting for the relay to accept our subscription.
const MAX_UNPUBLISHED: usize = 256;
/// How long a newly placed order may wait to be published before it is withdrawn.
const PUBLISH_DEADLINE_MS: u64 = 30_000;
/// Book syncs in flight at once (joins plus keep-alive repairs).
const MAX_SYNCS: usize = 64;
/// A maker's orders on a pair are pulled again (after a keep-alive mismatch) at most this often:
/// one forged keep-alive must not make every page ask the relay over and over.
const REPAIR_INTERVAL_MS: u64 = KEEP_ALIVE_INTERVAL_MS;
/// Makers whose last repair is remembered (a full table repairs no newcomer until it clears).
const MAX_RECENT_REPAIRS: usize = 4_096;
/// A page the relay refused (over its rate) is asked for again after this, doubling up to
/// [`SYNC_RETRY_MAX_MS`].
const SYNC_RETRY_FIRST_MS: u64 = 1_000;
/// See [`SYNC_RETRY_FIRST_MS`].
const SYNC_RETRY_MAX_MS: u64 = 30_000;
/// After publishing one of our orders, we ask the relay for our own orders this long after, to
/// learn whether it took the order (gossip does not tell a publisher about a refusal); then
/// twice and four times as long, at most [`CONFIRM_TRIES`] times.
const CONFIRM_AFTER_MS: u64 = 1_500;
/// See [`CONFIRM_AFTER_MS`].
const CONFIRM_TRIES: u32 = 3;
/// Minimum time between two book views of one pair: bursts of gossip become one update.
const BOOK_VIEW_INTERVAL_MS: u64 = 100;
/// We publish at this share of the relay's per-maker rate and burst, so that our republish
/// after a reconnect is never refused (clocks and batching differ a little between the two).
pub const PUBLISH_PACE_PERCENT: u32 = 80;

/// An order of ours: what the application may persist to restore after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOrder {
    /// Made from our PeerId and `spec.nonce` ([`order_id`]).
    pub id: OrderId,
    /// The pair it rests on.
    pub pair: Pair,
    /// As we last signed it: `amount` is what is left after our fills.
    pub spec: OrderSpec,
}

/// One order as shown in a book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    /// The order's id.
    pub id: OrderId,
    /// Who signed it.
    pub maker: PeerId,
    /// Whether it buys or sells the base asset.
    pub side: Side,
    /// Its limit price.
    pub price: Price,
    /// Base units takers can still have: unfilled, less what is reserved for a taker (the
    /// maker's own book reserves while a take is negotiated), as the price levels count it.
    pub amount: u64,
    /// Smallest amount one fill may take (0 or 1 = any).
    pub min_fill: u64,
    /// Unix milliseconds after which the order is dead.
    pub expires_at_ms: u64,
    /// Whether we are its maker.
    pub mine: bool,
}

/// The top of one pair's book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    /// The pair.
    pub pair: Pair,
    /// Best first.
    pub bids: Vec<LevelView>,
    /// Best first.
    pub asks: Vec<LevelView>,
    /// Best first on each side, bids then asks.
    pub orders: Vec<OrderView>,
    /// Orders in the whole book, both sides (`orders` holds at most [`BOOK_VIEW_ORDERS`] a
    /// side).
    pub total_orders: usize,
    /// Trades seen on the pair since we follow it, newest first (at most
    /// [`tape::MAX_TAPE_FILLS`]), as their makers reported them.
    pub trades: Vec<TapeFill>,
}

/// Why a watch, place or cancel was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrdersError {
    /// We already follow [`MAX_WATCHED_PAIRS`] pairs.
    #[error("already following {MAX_WATCHED_PAIRS} pairs")]
    TooManyPairs,
    /// Gossip refused our subscription to the pair's topic; we no longer follow it.
    #[error("cannot follow {pair}: {reason}")]
    Subscribe {
        /// The pair.
        pair: Pair,
        /// Gossip's error.
        reason: String,
    },
    /// We already have as many live orders as the market limits allow
    /// (`max_orders_per_maker`, the relay's once it told us); carries how many.
    #[error("you already have {0} live orders, the most your relay accepts")]
    TooManyOrders(usize),
    /// A cancel of an id that is not one of our live orders (gone already, or not ours).
    #[error("order {0} is not one of your live orders")]
    NotYourOrder(OrderId),
    /// Our order or cancel could not be signed (its body fails the checks every relay makes,
    /// e.g. an expiry out of range), or our own book refused the order.
    #[error("{0}")]
    Order(#[from] OrderReject),
}

/// What the order book reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrdersEvent {
    /// A followed pair's book as it is now (see [`Orders::book_views`]).
    Book(BookView),
    /// Our order is in our book and on its way to the relay.
    OrderPlaced(OwnOrder),
    /// Part of our order was traded; what is left was republished.
    OrderReduced(OwnOrder),
    /// We cancelled our order: it left our book and the cancel is on its way to the relay.
    OrderCancelled {
        /// The order.
        id: OrderId,
        /// Its pair.
        pair: Pair,
    },
    /// Our order left the book by itself (expired, filled), or could not be published.
    OrderWithdrawn {
        /// The order.
        id: OrderId,
        /// Its pair.
        pair: Pair,
        /// Why, in words: `expired`, `filled`, our book saw no keep-alive for it in time, or
        /// gossip still refused the new order 30 s after it was placed.
        reason: String,
    },
    /// A watch, place or cancel was refused.
    Failed(OrdersError),
    /// A book sync from the relay finished.
    BookSynced {
        /// The pair synced.
        pair: Pair,
        /// Verified orders the relay sent, over all pages (ours included).
        orders: usize,
        /// From the first request to the last page.
        elapsed: Duration,
    },
    /// The relay refused a book-sync page (it was over its rate): asked again after `retry_in`.
    SyncDeferred {
        /// The pair being synced.
        pair: Pair,
        /// The relay's words.
        reason: String,
        /// When the page is asked for again.
        retry_in: Duration,
    },
    /// A message from the network was refused (counted in the client's metrics).
    MessageRejected {
        /// The [`OrderReject`] label of the check that refused it.
        reason: &'static str,
    },
}

/// Identifies one book-sync request between [`OrdersAction::Sync`] and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncToken(u64);

/// A signed message on its way to the order gossip. The node publishes `bytes` on `topic`;
/// if gossip does not take it, the node hands it back through [`Orders::publish_failed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The pair's order topic ([`order_topic`]).
    pub topic: String,
    /// The signed order message (an order, a cancel or a keep-alive).
    pub bytes: Vec<u8>,
    pair: Pair,
    order: Option<OrderId>,
    since_ms: u64,
    /// A new order the trader just placed is withdrawn if it cannot go out in time (the trader
    /// is told); republications, cancels and keep-alives keep trying while they matter.
    withdraw_after_ms: Option<u64>,
}

/// What the node must do for the order book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrdersAction {
    /// Subscribe to the pair's order topic; on failure call [`Orders::subscribe_failed`].
    Subscribe(Pair),
    /// Publish on the order gossip; on failure call [`Orders::publish_failed`].
    Publish(Publication),
    /// Send this book-sync request to the relay; answer with [`Orders::on_sync_page`] or
    /// [`Orders::on_sync_failed`].
    Sync {
        /// Hand back with the answer or the failure.
        token: SyncToken,
        /// The page to ask for (the first, or the one after the last order received).
        request: BookSyncRequest,
    },
}

/// What one input produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OrdersOutput {
    /// For the node to carry out, in order.
    pub actions: Vec<OrdersAction>,
    /// For the application, in order.
    pub events: Vec<OrdersEvent>,
}

impl OrdersOutput {
    fn event(event: OrdersEvent) -> Self {
        OrdersOutput {
            actions: Vec::new(),
            events: vec![event],
        }
    }

    /// Appends another output after this one.
    pub fn extend(&mut self, other: OrdersOutput) {
        self.actions.extend(other.actions);
        self.events.extend(other.events);
    }
}

struct SyncJob {
    pair: Pair,
    maker: Option<PeerId>,
    started_ms: u64,
    received: usize,
    /// For a maker repair: the maker's orders, reconciled when the last page arrives.
    collected: Vec<VerifiedOrderMessage>,
    /// The last order id received: the next page starts after it.
    after: Option<OrderId>,
    /// Pages the relay refused in a row (it was over its rate).
    refusals: u32,
    /// A refused page's request and when to send it again.
    retry: Option<(u64, BookSyncRequest)>,
    /// For our own orders: those the relay says it refused, and why (an `OrderReject` label).
    refused: Vec<(OrderId, String)>,
}

/// One of our published orders whose arrival at the relay is still to be checked.
struct Confirm {
    pair: Pair,
    due_ms: u64,
    tries: u32,
}

/// The trader's order books and own orders (see the module documentation).
pub struct Orders {
    keypair: Keypair,
    me: PeerId,
    market: Market,
    watched: HashSet<Pair>,
    own: HashMap<OrderId, OwnOrder>,
    last_seq: u64,
    unpublished: VecDeque<Publication>,
    /// Whether the relay lets us publish (we are authenticated on the current connection).
    publishing: bool,
    /// Whether the relay link is up (book syncs go to it; keep-alives are published).
    relay_up: bool,
    dirty: HashSet<Pair>,
    last_view_ms: HashMap<Pair, u64>,
    syncs: HashMap<SyncToken, SyncJob>,
    /// When each (maker, pair) was last repaired, for [`REPAIR_INTERVAL_MS`].
    recent_repairs: HashMap<(PeerId, Pair), u64>,
    next_sync: u64,
    next_keep_alive_ms: u64,
    /// Paces our publishing below the relay's per-maker rate.
    pace: Rate,
    pacing: TokenBucket,
    /// Our published orders to check with the relay (at most one per own order).
    confirms: HashMap<OrderId, Confirm>,
    /// Trades seen on the pairs we follow.
    tape: Tape,
}

impl Orders {
    /// Books for the trader whose identity is `keypair`, paced for a relay with `limits`.
    pub fn new(keypair: Keypair, limits: MarketLimits, now_ms: u64) -> Self {
        let me = keypair.public().to_peer_id();
        let pace = limits.publish_rate().scaled(PUBLISH_PACE_PERCENT);
        Orders {
            keypair,
            me,
            market: Market::new(limits),
            watched: HashSet::new(),
            own: HashMap::new(),
            last_seq: 0,
            unpublished: VecDeque::new(),
            publishing: false,
            relay_up: false,
            dirty: HashSet::new(),
            last_view_ms: HashMap::new(),
            syncs: HashMap::new(),
            recent_repairs: HashMap::new(),
            next_sync: 0,
            next_keep_alive_ms: now_ms,
            pace,
            pacing: TokenBucket::full(&pace, now_ms),
            confirms: HashMap::new(),
            tape: Tape::default(),
        }
    }

    /// The relay told us its market limits: check and pace against those from now on.
    pub fn set_limits(&mut self, limits: MarketLimits, now_ms: u64) {
        if *self.market.limits() == limits {
            return;
        }
        self.pace = limits.publish_rate().scaled(PUBLISH_PACE_PERCENT);
        self.pacing = TokenBucket::full(&self.pace, now_ms);
        self.market.set_limits(limits);
    }

    /// The market limits in force (the relay's, once it told us).
    pub fn limits(&self) -> &MarketLimits {
        self.market.limits()
    }

    /// Our live orders.
    pub fn own_orders(&self) -> impl Iterator<Item = &OwnOrder> {
        self.own.values()
    }

    /// One of our live orders.
    pub fn own_order(&self, id: &OrderId) -> Option<&OwnOrder> {
        self.own.get(id)
    }

    /// An order in our book.
    pub fn order(&self, pair: &Pair, id: &OrderId) -> Option<&LimitOrder<OrderInfo>> {
        self.market.order(pair, id)
    }

    /// How much of an order in our book is not reserved by a trade in negotiation.
    pub fn available(&self, pair: &Pair, id: &OrderId) -> Option<u64> {
        self.market.book(pair).and_then(|b| b.available(id))
    }

    /// Sequence numbers increase across restarts too: they start from the clock.
    fn next_seq(&mut self, now_ms: u64) -> u64 {
        self.last_seq = (self.last_seq + 1).max(now_ms.saturating_mul(1_000));
        self.last_seq
    }

    fn sign(
        &mut self,
        pair: &Pair,
        action: OrderAction,
        now_ms: u64,
    ) -> Result<Vec<u8>, OrderReject> {
        let body = OrderBody {
            pair: pair.clone(),
            seq: self.next_seq(now_ms),
            sent_at_ms: now_ms,
            action,
        };
        sign_order_message(&self.keypair, &body, now_ms)
    }

    /// Follows a pair: subscribes to its topic and, when the relay is there, syncs its book.
    pub fn watch(&mut self, pair: Pair, now_ms: u64) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        if let Err(e) = self.watch_into(pair, now_ms, &mut out) {
            out.events.push(OrdersEvent::Failed(e));
        }
        out
    }

    fn watch_into(
        &mut self,
        pair: Pair,
        now_ms: u64,
        out: &mut OrdersOutput,
    ) -> Result<(), OrdersError> {
        if self.watched.contains(&pair) {
            // Already followed: show the book again (a new page view asked for it).
            self.dirty.insert(pair);
            return Ok(());
        }
        if self.watched.len() >= MAX_WATCHED_PAIRS {
            return Err(OrdersError::TooManyPairs);
        }
        self.watched.insert(pair.clone());
        self.dirty.insert(pair.clone());
        out.actions.push(OrdersAction::Subscribe(pair.clone()));
        self.start_sync(pair, None, now_ms, out);
        Ok(())
    }

    /// Gossip refused our subscription to `pair`: we no longer follow it.
    pub fn subscribe_failed(&mut self, pair: Pair, reason: String) -> OrdersOutput {
        self.watched.remove(&pair);
        self.dirty.remove(&pair);
        self.tape.forget(&pair);
        self.syncs.retain(|_, j| j.pair != pair);
        OrdersOutput::event(OrdersEvent::Failed(OrdersError::Subscribe { pair, reason }))
    }

    fn start_sync(
        &mut self,
        pair: Pair,
        maker: Option<PeerId>,
        now_ms: u64,
        out: &mut OrdersOutput,
    ) {
        if !self.relay_up
            || self.syncs.len() >= MAX_SYNCS
            || self
                .syncs
                .values()
                .any(|j| j.pair == pair && j.maker == maker)
        {
            return;
        }
        self.next_sync += 1;
        let token = SyncToken(self.next_sync);
        let request = BookSyncRequest {
            pair: pair.clone(),
            maker,
            after: None,
            limit: MAX_BOOK_SYNC_PAGE,
        };
        self.syncs.insert(
            token,
            SyncJob {
                pair,
                maker,
                started_ms: now_ms,
                received: 0,
                collected: Vec::new(),
                after: None,
                refusals: 0,
                retry: None,
                refused: Vec::new(),
            },
        );
        out.actions.push(OrdersAction::Sync { token, request });
    }

    /// Allows or stops publishing (authenticated with the relay, or not any more). Turning it
    /// on publishes what waited.
    pub fn set_publishing(&mut self, on: bool, now_ms: u64) -> OrdersOutput {
        self.publishing = on;
        self.flush(now_ms)
    }

    /// The relay link is up: sync every followed pair and republish our orders, since a
    /// restarted relay has forgotten them.
    pub fn relay_connected(&mut self, now_ms: u64) -> OrdersOutput {
        self.relay_up = true;
        let mut out = OrdersOutput::default();
        let mut watched: Vec<Pair> = self.watched.iter().cloned().collect();
        watched.sort();
        for pair in watched {
            self.start_sync(pair, None, now_ms, &mut out);
        }
        let mut own: Vec<OwnOrder> = self.own.values().cloned().collect();
        own.sort_by_key(|o| o.id);
        for order in own {
            if let Ok(bytes) = self.sign(&order.pair, OrderAction::Order(order.spec), now_ms) {
                self.queue(order.pair.clone(), bytes, Some(order.id), None, now_ms);
            }
        }
        out.extend(self.flush(now_ms));
        self.next_keep_alive_ms = now_ms + KEEP_ALIVE_INTERVAL_MS;
        out
    }

    /// The relay link is down: nothing is published or synced until it is back; syncs in
    /// flight are forgotten (their requests fail with the connection).
    pub fn relay_lost(&mut self) {
        self.relay_up = false;
        self.publishing = false;
        self.syncs.clear();
    }

    fn queue(
        &mut self,
        pair: Pair,
        bytes: Vec<u8>,
        order: Option<OrderId>,
        withdraw_after_ms: Option<u64>,
        now_ms: u64,
    ) {
        if self.unpublished.len() >= MAX_UNPUBLISHED {
            self.unpublished.pop_front();
        }
        // Sequence numbers order messages for the same maker: keep them in order.
        self.unpublished.push_back(Publication {
            topic: order_topic(&pair),
            bytes,
            pair,
            order,
            since_ms: now_ms,
            withdraw_after_ms,
        });
    }

    /// Places an order of ours: signs it, enters it in our book, and publishes it.
    pub fn place(&mut self, pair: Pair, spec: OrderSpec, now_ms: u64) -> OrdersOutput {
        self.place_with(pair, spec, Some(PUBLISH_DEADLINE_MS), now_ms)
    }

    fn place_with(
        &mut self,
        pair: Pair,
        spec: OrderSpec,
        withdraw_after_ms: Option<u64>,
        now_ms: u64,
    ) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        match self.place_into(pair, spec, withdraw_after_ms, now_ms, &mut out) {
            Ok(order) => {
                out.extend(self.flush(now_ms));
                out.events.push(OrdersEvent::OrderPlaced(order));
            }
            Err(e) => out.events.push(OrdersEvent::Failed(e)),
        }
        out
    }

    fn place_into(
        &mut self,
        pair: Pair,
        spec: OrderSpec,
        withdraw_after_ms: Option<u64>,
        now_ms: u64,
        out: &mut OrdersOutput,
    ) -> Result<OwnOrder, OrdersError> {
        let cap = self.market.limits().max_orders_per_maker;
        if self.own.len() >= cap {
            return Err(OrdersError::TooManyOrders(self.own.len()));
        }
        self.watch_into(pair.clone(), now_ms, out)?;
        let bytes = self.sign(&pair, OrderAction::Order(spec), now_ms)?;
        let id = order_id(&self.me, spec.nonce);
        self.apply_own(&bytes, now_ms)?;
        let order = OwnOrder { id, pair, spec };
        self.own.insert(id, order.clone());
        self.queue(
            order.pair.clone(),
            bytes,
            Some(id),
            withdraw_after_ms,
            now_ms,
        );
        Ok(order)
    }

    /// Republishes our stored orders that have not expired (same nonce, so the same ids).
    pub fn restore(&mut self, orders: Vec<OwnOrder>, now_ms: u64) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        for order in orders {
            if order.spec.expires_at_ms <= now_ms + MIN_ORDER_LIFETIME_MS
                || self.own.contains_key(&order.id)
                || order.id != order_id(&self.me, order.spec.nonce)
            {
                continue;
            }
            // A restored order keeps trying until it is published or expires.
            out.extend(self.place_with(order.pair, order.spec, None, now_ms));
        }
        out
    }

    /// Cancels an order of ours, everywhere.
    pub fn cancel(&mut self, id: OrderId, now_ms: u64) -> OrdersOutput {
        match self.take_back(id, now_ms) {
            Ok((pair, mut out)) => {
                out.events.push(OrdersEvent::OrderCancelled { id, pair });
                out
            }
            Err(e) => OrdersOutput::event(OrdersEvent::Failed(e)),
        }
    }

    /// Takes one of our orders off every book: signs and queues its cancel, applies it to our
    /// own book and drops any unsent copy of the order. Returns its pair.
    fn take_back(&mut self, id: OrderId, now_ms: u64) -> Result<(Pair, OrdersOutput), OrdersError> {
        let Some(order) = self.own.get(&id).cloned() else {
            return Err(OrdersError::NotYourOrder(id));
        };
        let bytes = self.sign(
            &order.pair,
            OrderAction::Cancel {
                order_id: id,
                filled: false,
            },
            now_ms,
        )?;
        // Our own cancel of our own order: it applies (a failure would only mean the order had
        // already left our book).
        let _ = self.apply_own(&bytes, now_ms);
        self.own.remove(&id);
        // A cancel must go out even if the order never did: drop any unsent copy of it.
        self.unpublished.retain(|u| u.order != Some(id));
        self.queue(order.pair.clone(), bytes, None, None, now_ms);
        Ok((order.pair, self.flush(now_ms)))
    }

    fn apply_own(&mut self, bytes: &[u8], now_ms: u64) -> Result<Applied, OrderReject> {
        let verified = verify_order_message(bytes, None, Freshness::Live, now_ms)?;
        let applied = self.market.apply(&verified, now_ms)?;
        self.dirty.insert(verified.body.pair);
        Ok(applied)
    }

    /// Hands out what waits to be published, as far as pacing allows. Nothing goes out while
    /// the relay would refuse it (not authenticated, or no relay).
    fn flush(&mut self, now_ms: u64) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        if !self.publishing || !self.relay_up {
            return out;
        }
        while !self.unpublished.is_empty() && self.pacing.try_take(&self.pace, now_ms) {
            if let Some(item) = self.unpublished.pop_front() {
                if let Some(id) = item.order.filter(|id| self.own.contains_key(id)) {
                    self.confirms.insert(
                        id,
                        Confirm {
                            pair: item.pair.clone(),
                            due_ms: now_ms.saturating_add(CONFIRM_AFTER_MS),
                            tries: 0,
                        },
                    );
                }
                out.actions.push(OrdersAction::Publish(item));
            }
        }
        out
    }

    /// Gossip did not take these publications (in the order they were handed out): they wait
    /// again, first in line, except a new order past its deadline, which is withdrawn.
    pub fn publish_failed(
        &mut self,
        failed: Vec<(Publication, String)>,
        now_ms: u64,
    ) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        let mut again = Vec::new();
        for (item, reason) in failed {
            // Not sent: the token is not spent.
            self.pacing.refund(&self.pace);
            let late = item
                .withdraw_after_ms
                .is_some_and(|d| now_ms.saturating_sub(item.since_ms) > d);
            if !late {
                again.push(item);
                continue;
            }
            if let Some(id) = item.order {
                if self.own.remove(&id).is_some() {
                    self.withdraw_local(&item.pair, &id, now_ms);
                    out.events.push(OrdersEvent::OrderWithdrawn {
                        id,
                        pair: item.pair.clone(),
                        reason: format!("could not reach the relay's order gossip: {reason}"),
                    });
                }
            }
        }
        for item in again.into_iter().rev() {
            self.unpublished.push_front(item);
        }
        while self.unpublished.len() > MAX_UNPUBLISHED {
            self.unpublished.pop_front();
        }
        out
    }

    fn withdraw_local(&mut self, pair: &Pair, id: &OrderId, now_ms: u64) {
        if let Ok(bytes) = self.sign(
            pair,
            OrderAction::Cancel {
                order_id: *id,
                filled: false,
            },
            now_ms,
        ) {
            let _ = self.apply_own(&bytes, now_ms);
        }
    }

    /// A gossiped message on `topic` arrived: verify it and apply it to our book.
    pub fn on_gossip(&mut self, topic: &str, data: &[u8], now_ms: u64) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        let outcome = parse_order_topic(topic)
            .ok_or(OrderReject::BadPair)
            .and_then(|pair| {
                if !self.watched.contains(&pair) {
                    return Err(OrderReject::BadPair);
                }
                verify_order_message(data, Some(&pair), Freshness::Live, now_ms)
            })
            .and_then(|verified| {
                if verified.maker == self.me {
                    // Our own message coming back: already applied.
                    return Err(OrderReject::Replay);
                }
                let pair = &verified.body.pair;
                let before = verified
                    .order_id()
                    .and_then(|id| self.market.order(pair, &id))
                    .map(|o| o.data.spec);
                let applied = self.market.apply(&verified, now_ms)?;
                if matches!(applied, Applied::Reduced(_) | Applied::Cancelled(_)) {
                    if let Some((maker_side, price, amount)) =
                        tape::traded(before.as_ref(), &verified.body.action)
                    {
                        let fill = TapeFill {
                            maker_side,
                            price,
                            amount,
                            at_ms: now_ms,
                            maker: verified.maker,
                        };
                        self.tape.record(pair, fill);
                    }
                }
                // Only what the book shows changed makes a view: a keep-alive (every 10 s
                // per maker) or a repeat would otherwise hold the next order's view back to
                // the next tick (`BOOK_VIEW_INTERVAL_MS`).
                if matches!(
                    applied,
                    Applied::Added(_) | Applied::Reduced(_) | Applied::Cancelled(_)
                ) {
                    self.dirty.insert(pair.clone());
                }
                Ok(applied)
            });
        match outcome {
            Ok(Applied::KeepAliveMismatch { maker, pair }) => {
                if self.repair_due(maker, &pair, now_ms) {
                    self.start_sync(pair, Some(maker), now_ms, &mut out)
                }
            }
            Ok(_) | Err(OrderReject::Replay) => {}
            Err(reason) => out.events.push(OrdersEvent::MessageRejected {
                reason: reason.as_str(),
            }),
        }
        // A change after a quiet moment is shown at once; bursts are batched.
        out.events.extend(self.book_views(now_ms));
        out
    }

    /// A book-sync page arrived from the relay.
    pub fn on_sync_page(
        &mut self,
        token: SyncToken,
        response: BookSyncResponse,
        now_ms: u64,
    ) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        let Some(mut job) = self.syncs.remove(&token) else {
            return out;
        };
        if let Some(reason) = &response.error {
            // Refused (the relay is over its page rate): the same page again, later.
            job.refusals = job.refusals.saturating_add(1);
            let delay = SYNC_RETRY_FIRST_MS
                .saturating_mul(1 << job.refusals.min(16).saturating_sub(1))
                .min(SYNC_RETRY_MAX_MS);
            let request = BookSyncRequest {
                pair: job.pair.clone(),
                maker: job.maker,
                after: job.after,
                limit: MAX_BOOK_SYNC_PAGE,
            };
            out.events.push(OrdersEvent::SyncDeferred {
                pair: job.pair.clone(),
                reason: reason.clone(),
                retry_in: Duration::from_millis(delay),
            });
            job.retry = Some((now_ms.saturating_add(delay), request));
            self.syncs.insert(token, job);
            return out;
        }
        job.refusals = 0;
        if job.maker == Some(self.me) {
            // Only about our own orders, and never more than one page's worth in all.
            for refusal in response.refused {
                if job.refused.len() < darkswap_proto::book_sync::MAX_REFUSALS
                    && !job.refused.iter().any(|(id, _)| *id == refusal.0)
                {
                    job.refused.push(refusal);
                }
            }
        }
        let mut last = None;
        // A page is checked as a batch: the same verdict per order, a fraction of the cost.
        let verdicts =
            verify_order_messages(&response.orders, Some(&job.pair), Freshness::Stored, now_ms);
        for verdict in verdicts {
            match verdict {
                Ok(verified) => {
                    last = verified.order_id();
                    job.received += 1;
                    if job.maker.is_some() {
                        job.collected.push(verified);
                    } else if verified.maker != self.me {
                        if let Err(e) = self.market.apply_stored(&verified, now_ms) {
                            if e != OrderReject::Cancelled {
                                out.events
                                    .push(OrdersEvent::MessageRejected { reason: e.as_str() });
                            }
                        }
                    }
                }
                Err(e) => out
                    .events
                    .push(OrdersEvent::MessageRejected { reason: e.as_str() }),
            }
        }
        // A check of our own orders changes nothing in the book: no view to send for it.
        if job.maker != Some(self.me) {
            self.dirty.insert(job.pair.clone());
        }
        if last.is_some() {
            job.after = last;
        }
        if job.maker.is_some()
            && job.maker != Some(self.me)
            && job.collected.len() > self.market.limits().max_orders_per_maker
        {
            // More orders for one maker than a maker may have: a relay that pages on without
            // end. The repair stops here; what we hold of the maker stays as it was.
            out.events.push(OrdersEvent::MessageRejected {
                reason: OrderReject::OverCap.as_str(),
            });
            return out;
        }
        // Our own orders fit in one page; a relay that pages on about them is not followed
        // (the confirms are settled with what came).
        let own_done = job.maker == Some(self.me)
            && job.collected.len() > self.market.limits().max_orders_per_maker;
        if response.more && last.is_some() && self.relay_up && !own_done {
            let request = BookSyncRequest {
                pair: job.pair.clone(),
                maker: job.maker,
                after: last,
                limit: MAX_BOOK_SYNC_PAGE,
            };
            self.next_sync += 1;
            let token = SyncToken(self.next_sync);
            self.syncs.insert(token, job);
            out.actions.push(OrdersAction::Sync { token, request });
            return out;
        }
        match job.maker {
            Some(maker) if maker == self.me => self.confirmed(job, now_ms, &mut out),
            Some(maker) => {
                for result in self
                    .market
                    .reconcile_maker(&maker, &job.pair, &job.collected, now_ms)
                {
                    if let Err(e) = result {
                        out.events
                            .push(OrdersEvent::MessageRejected { reason: e.as_str() });
                    }
                }
            }
            None => out.events.push(OrdersEvent::BookSynced {
                pair: job.pair,
                orders: job.received,
                elapsed: Duration::from_millis(now_ms.saturating_sub(job.started_ms)),
            }),
        }
        out
    }

    /// The relay's answer about our own orders on a pair: those it holds are confirmed; those it
    /// refused leave our book and the trader is told why; the others are asked about again
    /// later, [`CONFIRM_TRIES`] times in all.
    fn confirmed(&mut self, job: SyncJob, now_ms: u64, out: &mut OrdersOutput) {
        let held: HashSet<OrderId> = job.collected.iter().filter_map(|m| m.order_id()).collect();
        let mut ids: Vec<OrderId> = self
            .confirms
            .iter()
            .filter(|(_, c)| c.pair == job.pair && c.due_ms <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        for id in ids {
            if held.contains(&id) {
                self.confirms.remove(&id);
                continue;
            }
            if let Some((_, label)) = job.refused.iter().rev().find(|(r, _)| *r == id) {
                self.confirms.remove(&id);
                if self.own.remove(&id).is_some() {
                    self.withdraw_local(&job.pair, &id, now_ms);
                    let why = OrderReject::ALL
                        .iter()
                        .find(|r| r.as_str() == label)
                        .map_or_else(|| label.replace('_', " "), |r| r.to_string());
                    out.events.push(OrdersEvent::OrderWithdrawn {
                        id,
                        pair: job.pair.clone(),
                        reason: format!("the relay refused it: {why}"),
                    });
                }
                continue;
            }
            if let Some(confirm) = self.confirms.get_mut(&id) {
                confirm.tries += 1;
                if confirm.tries >= CONFIRM_TRIES {
                    self.confirms.remove(&id);
                } else {
                    confirm.due_ms = now_ms.saturating_add(CONFIRM_AFTER_MS << confirm.tries);
                }
            }
        }
    }

    /// Whether a maker's orders on `pair` may be pulled again now (see [`REPAIR_INTERVAL_MS`]);
    /// notes the repair when so.
    fn repair_due(&mut self, maker: PeerId, pair: &Pair, now_ms: u64) -> bool {
        let key = (maker, pair.clone());
        if self
            .recent_repairs
            .get(&key)
            .is_some_and(|at| now_ms.saturating_sub(*at) < REPAIR_INTERVAL_MS)
        {
            return false;
        }
        if !self.recent_repairs.contains_key(&key)
            && self.recent_repairs.len() >= MAX_RECENT_REPAIRS
        {
            return false;
        }
        self.recent_repairs.insert(key, now_ms);
        true
    }

    /// A book-sync request failed (the relay went away mid-sync: [`Orders::relay_connected`]
    /// starts it again).
    pub fn on_sync_failed(&mut self, token: SyncToken) {
        self.syncs.remove(&token);
    }

    /// Periodic work: expiry, keep-alives, publishing, book views.
    pub fn tick(&mut self, now_ms: u64) -> OrdersOutput {
        let mut out = OrdersOutput::default();
        if now_ms >= self.next_keep_alive_ms {
            self.next_keep_alive_ms = now_ms + KEEP_ALIVE_INTERVAL_MS;
            self.send_keep_alives(now_ms);
        }
        self.recent_repairs
            .retain(|_, at| now_ms.saturating_sub(*at) < REPAIR_INTERVAL_MS);
        // Our orders gone meanwhile (cancelled, filled, expired) need no check.
        let own = &self.own;
        self.confirms.retain(|id, _| own.contains_key(id));
        if self.relay_up && self.publishing {
            let mut due: Vec<Pair> = self
                .confirms
                .values()
                .filter(|c| c.due_ms <= now_ms)
                .map(|c| c.pair.clone())
                .collect();
            due.sort();
            due.dedup();
            for pair in due {
                self.start_sync(pair, Some(self.me), now_ms, &mut out);
            }
        }
        if self.relay_up {
            for (token, job) in &mut self.syncs {
                if job.retry.as_ref().is_some_and(|(at, _)| *at <= now_ms) {
                    if let Some((_, request)) = job.retry.take() {
                        out.actions.push(OrdersAction::Sync {
                            token: *token,
                            request,
                        });
                    }
                }
            }
        }
        for (order, why) in self.market.expire(now_ms) {
            self.dirty.insert(order.data.pair.clone());
            if let Some(own) = self.own.remove(&order.id) {
                let reason = match why {
                    Removal::Expired => "expired",
                    Removal::MakerGone => "this client stopped announcing it",
                };
                out.events.push(OrdersEvent::OrderWithdrawn {
                    id: own.id,
                    pair: own.pair,
                    reason: reason.into(),
                });
            }
        }
        out.extend(self.flush(now_ms));
        out
    }

    /// Announces that our orders are alive: to our own book always (so they do not time out
    /// here while the relay is away), to the network when the relay is there.
    fn send_keep_alives(&mut self, now_ms: u64) {
        let mut per_pair: HashMap<Pair, Vec<(OrderId, u64)>> = HashMap::new();
        for order in self.own.values() {
            let amount = self
                .market
                .order(&order.pair, &order.id)
                .map_or(order.spec.amount, |o| o.amount);
            per_pair
                .entry(order.pair.clone())
                .or_default()
                .push((order.id, amount));
        }
        let mut pairs: Vec<_> = per_pair.into_iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        for (pair, mut live) in pairs {
            let digest = live_orders_digest(&mut live);
            let action = OrderAction::KeepAlive {
                digest,
                live_orders: live.len() as u32,
            };
            if let Ok(bytes) = self.sign(&pair, action, now_ms) {
                let _ = self.apply_own(&bytes, now_ms);
                if self.relay_up {
                    self.queue(pair, bytes, None, None, now_ms);
                }
            }
        }
    }

    /// Holds `amount` of our order `id` for a taker (the maker's side of a take).
    pub fn reserve(
        &mut self,
        pair: &Pair,
        id: &OrderId,
        amount: u64,
        now_ms: u64,
    ) -> Result<(), ReserveError> {
        self.market.reserve(pair, id, amount, now_ms)?;
        self.dirty.insert(pair.clone());
        Ok(())
    }

    /// Gives back a reservation (the trade did not happen).
    pub fn release(&mut self, pair: &Pair, id: &OrderId, amount: u64) {
        if self.market.release(pair, id, amount) {
            self.dirty.insert(pair.clone());
        }
    }

    /// Turns our reservation into a fill and tells everyone what is left of the order (or that
    /// it is gone).
    pub fn fill(
        &mut self,
        pair: &Pair,
        id: &OrderId,
        amount: u64,
        now_ms: u64,
    ) -> Result<OrdersOutput, BookError> {
        let terms = self.market.order(pair, id).map(|o| (o.side, o.price));
        let remaining = self.market.settle(pair, id, amount)?;
        if let Some((maker_side, price)) = terms {
            let fill = TapeFill {
                maker_side,
                price,
                amount,
                at_ms: now_ms,
                maker: self.me,
            };
            self.tape.record(pair, fill);
        }
        let mut out = OrdersOutput::default();
        self.dirty.insert(pair.clone());
        let Some(mut own) = self.own.get(id).cloned() else {
            return Ok(out);
        };
        if remaining == 0 {
            self.own.remove(id);
            let filled = OrderAction::Cancel {
                order_id: *id,
                filled: true,
            };
            if let Ok(bytes) = self.sign(&own.pair, filled, now_ms) {
                self.queue(own.pair.clone(), bytes, None, None, now_ms);
            }
            out.events.push(OrdersEvent::OrderWithdrawn {
                id: *id,
                pair: own.pair,
                reason: "filled".into(),
            });
        } else {
            own.spec.amount = remaining;
            // What is left below the minimum fill can be taken whole (the market's rule).
            own.spec.min_fill = own.spec.min_fill.min(remaining);
            match self.sign(&own.pair, OrderAction::Order(own.spec), now_ms) {
                Ok(bytes) => {
                    self.queue(own.pair.clone(), bytes, Some(*id), None, now_ms);
                    self.own.insert(*id, own.clone());
                    out.events.push(OrdersEvent::OrderReduced(own));
                }
                Err(e) => {
                    // Too close to its expiry to announce again (or otherwise unsignable):
                    // withdraw the rest rather than leave other books showing the old amount.
                    if let Ok((_, taken_back)) = self.take_back(*id, now_ms) {
                        out.extend(taken_back);
                    }
                    out.events.push(OrdersEvent::OrderWithdrawn {
                        id: *id,
                        pair: own.pair,
                        reason: format!("the {remaining} left cannot be announced again: {e}"),
                    });
                }
            }
        }
        out.extend(self.flush(now_ms));
        Ok(out)
    }

    /// Views of the pairs that changed, each at most every `BOOK_VIEW_INTERVAL_MS`.
    pub fn book_views(&mut self, now_ms: u64) -> Vec<OrdersEvent> {
        let mut ready: Vec<Pair> = self
            .dirty
            .iter()
            .filter(|p| {
                self.last_view_ms
                    .get(*p)
                    .is_none_or(|at| now_ms.saturating_sub(*at) >= BOOK_VIEW_INTERVAL_MS)
            })
            .cloned()
            .collect();
        ready.sort();
        let mut events = Vec::new();
        for pair in ready {
            self.dirty.remove(&pair);
            if !self.watched.contains(&pair) {
                continue;
            }
            self.last_view_ms.insert(pair.clone(), now_ms);
            events.push(OrdersEvent::Book(self.view(&pair)));
        }
        events
    }

    /// The current view of a pair's book.
    pub fn view(&self, pair: &Pair) -> BookView {
        let Some(book) = self.market.book(pair) else {
            return BookView {
                pair: pair.clone(),
                bids: Vec::new(),
                asks: Vec::new(),
                orders: Vec::new(),
                total_orders: 0,
                trades: self.tape.of(pair),
            };
        };
        let order_view = |o: &LimitOrder<OrderInfo>| OrderView {
            id: o.id,
            maker: o.data.maker,
            side: o.side,
            price: o.price,
            // What takers can still have, as the price levels count it.
            amount: o.amount - book.reserved(&o.id).unwrap_or(0),
            min_fill: o.min_fill,
            expires_at_ms: o.expires_at_ms,
            mine: o.data.maker == self.me,
        };
        let orders = book
            .orders(Side::Buy)
            .take(BOOK_VIEW_ORDERS)
            .chain(book.orders(Side::Sell).take(BOOK_VIEW_ORDERS))
            .map(order_view)
            .collect();
        BookView {
            pair: pair.clone(),
            bids: book.depth(Side::Buy, BOOK_VIEW_LEVELS),
            asks: book.depth(Side::Sell, BOOK_VIEW_LEVELS),
            orders,
            total_orders: book.len(),
            trades: self.tape.of(pair),
        }
    }
}

pub mod tape;
#[cfg(test)]
mod tests;
