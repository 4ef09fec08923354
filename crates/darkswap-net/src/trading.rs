//! The trader's side of the order book: follows pairs (gossip topics), keeps a verified book
//! of them (darkswap-market), syncs it from the relay when joining, publishes the trader's own
//! signed orders, cancels and keep-alives, and reports what changed.
//!
//! Traders never forward gossip (they report `Ignore` after reading a message): relays are the
//! hubs that validate and forward. A trader still verifies everything it receives itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use darkswap_market::{Applied, Market, MarketLimits, Removal, KEEP_ALIVE_INTERVAL_MS};
use darkswap_orderbook::{LevelView, OrderId, Pair, Price, Side};
use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse, MAX_BOOK_SYNC_PAGE};
use darkswap_proto::order::{
    live_orders_digest, order_id, order_topic, parse_order_topic, sign_order_message,
    verify_order_message, Freshness, OrderAction, OrderBody, OrderReject, OrderSpec,
    VerifiedOrderMessage,
};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::PeerId;
use web_time::Instant;

use crate::gossip::BookSyncCodec;
use crate::unix_time_ms;

/// Pairs one trader follows at once.
pub const MAX_WATCHED_PAIRS: usize = 32;
/// Price levels per side in a [`BookView`].
pub const BOOK_VIEW_LEVELS: usize = 50;
/// Orders per side in a [`BookView`] (a UI shows the top of the book; the rest is in depth).
pub const BOOK_VIEW_ORDERS: usize = 200;
/// Own messages waiting for the relay to accept our subscription.
const MAX_UNPUBLISHED: usize = 256;
/// How long a newly placed order may wait to be published before it is withdrawn.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(30);
/// Book syncs in flight at once (joins plus keep-alive repairs).
const MAX_SYNCS: usize = 64;
/// Minimum time between two book views of one pair: bursts of gossip become one update.
const BOOK_VIEW_INTERVAL: Duration = Duration::from_millis(100);

/// An order of ours: what the application may persist to restore after a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnOrder {
    pub id: OrderId,
    pub pair: Pair,
    pub spec: OrderSpec,
}

/// One order as shown in a book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub id: OrderId,
    pub maker: PeerId,
    pub side: Side,
    pub price: Price,
    pub amount: u64,
    pub min_fill: u64,
    pub expires_at_ms: u64,
    pub mine: bool,
}

/// The top of one pair's book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookView {
    pub pair: Pair,
    /// Best first.
    pub bids: Vec<LevelView>,
    /// Best first.
    pub asks: Vec<LevelView>,
    /// Best first on each side, bids then asks.
    pub orders: Vec<OrderView>,
    pub total_orders: usize,
}

/// What the trading layer reports (wrapped in `NodeEvent::Trading`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradingEvent {
    Book(BookView),
    /// Our order is in our book and on its way to the relay.
    OrderPlaced(OwnOrder),
    /// Part of our order was traded; what is left was republished.
    OrderReduced(OwnOrder),
    OrderCancelled {
        id: OrderId,
        pair: Pair,
    },
    /// Our order left the book by itself (expired), or could not be published.
    OrderWithdrawn {
        id: OrderId,
        pair: Pair,
        reason: String,
    },
    /// A place, cancel or take command was refused.
    OrderFailed {
        reason: String,
    },
    /// A trade was created or changed state.
    Trade(crate::trade::Trade),
    /// A book sync from the relay finished.
    BookSynced {
        pair: Pair,
        orders: usize,
        elapsed: Duration,
    },
    /// A message from the network was refused (counted in the client's metrics).
    MessageRejected {
        reason: &'static str,
    },
    /// The end-to-end sessions that carry trades (counted in the client's metrics).
    E2e(crate::trade::E2eEvent),
}

struct SyncJob {
    pair: Pair,
    maker: Option<PeerId>,
    started: Instant,
    received: usize,
    /// For a maker repair: the maker's orders, reconciled when the last page arrives.
    collected: Vec<VerifiedOrderMessage>,
}

struct Unpublished {
    pair: Pair,
    bytes: Vec<u8>,
    order: Option<OrderId>,
    since: Instant,
    /// A new order the trader just placed is withdrawn if it cannot go out in time (the trader
    /// is told); republications, cancels and keep-alives keep trying while they matter.
    withdraw_after: Option<Duration>,
}

pub(crate) struct Trading {
    pub(crate) keypair: Keypair,
    pub(crate) me: PeerId,
    pub(crate) market: Market,
    watched: HashSet<Pair>,
    pub(crate) own: HashMap<OrderId, OwnOrder>,
    last_seq: u64,
    unpublished: VecDeque<Unpublished>,
    /// Whether the relay lets us publish (we are authenticated on the current connection).
    publishing: bool,
    pub(crate) dirty: HashSet<Pair>,
    pub(crate) negotiations: crate::trade::Negotiations,
    /// Events produced deep inside a handler, emitted with its result.
    pub(crate) pending_events: Vec<TradingEvent>,
    last_view: HashMap<Pair, Instant>,
    syncs: HashMap<OutboundRequestId, SyncJob>,
    next_keep_alive: Instant,
    /// Paces our publishing below the relay's per-maker rate, so a republish of many orders
    /// after a reconnect is spread out instead of refused.
    tokens: f64,
    tokens_at: Instant,
    publish_burst: u32,
    publish_per_second: u32,
}

type Events = Vec<TradingEvent>;

impl Trading {
    pub fn new(keypair: Keypair, publish_burst: u32, publish_per_second: u32) -> Self {
        let me = keypair.public().to_peer_id();
        Trading {
            keypair,
            me,
            market: Market::new(MarketLimits::default()),
            watched: HashSet::new(),
            own: HashMap::new(),
            last_seq: 0,
            unpublished: VecDeque::new(),
            publishing: false,
            dirty: HashSet::new(),
            last_view: HashMap::new(),
            syncs: HashMap::new(),
            negotiations: Default::default(),
            pending_events: Vec::new(),
            next_keep_alive: Instant::now(),
            tokens: publish_burst as f64,
            tokens_at: Instant::now(),
            publish_burst,
            publish_per_second,
        }
    }

    fn take_token(&mut self) -> bool {
        let now = Instant::now();
        let elapsed = now.duration_since(self.tokens_at).as_secs_f64();
        self.tokens_at = now;
        self.tokens =
            (self.tokens + elapsed * self.publish_per_second as f64).min(self.publish_burst as f64);
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }

    /// Sequence numbers increase across restarts too: they start from the clock.
    fn next_seq(&mut self) -> u64 {
        self.last_seq = (self.last_seq + 1).max(unix_time_ms().saturating_mul(1_000));
        self.last_seq
    }

    /// Follows a pair: subscribes to its topic and, when the relay is there, syncs its book.
    pub fn watch(
        &mut self,
        pair: Pair,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: Option<PeerId>,
    ) -> Result<(), String> {
        if self.watched.contains(&pair) {
            // Already followed: show the book again (a new page view asked for it).
            self.dirty.insert(pair);
            return Ok(());
        }
        if self.watched.len() >= MAX_WATCHED_PAIRS {
            return Err(format!("already following {MAX_WATCHED_PAIRS} pairs"));
        }
        gossip
            .subscribe(&IdentTopic::new(order_topic(&pair)))
            .map_err(|e| format!("cannot follow {pair}: {e}"))?;
        self.watched.insert(pair.clone());
        self.dirty.insert(pair.clone());
        if let Some(relay) = relay {
            self.start_sync(sync, relay, pair, None);
        }
        Ok(())
    }

    fn start_sync(
        &mut self,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: PeerId,
        pair: Pair,
        maker: Option<PeerId>,
    ) {
        if self.syncs.len() >= MAX_SYNCS
            || self
                .syncs
                .values()
                .any(|j| j.pair == pair && j.maker == maker)
        {
            return;
        }
        let request = BookSyncRequest {
            pair: pair.clone(),
            maker,
            after: None,
            limit: MAX_BOOK_SYNC_PAGE,
        };
        let id = sync.send_request(&relay, request);
        self.syncs.insert(
            id,
            SyncJob {
                pair,
                maker,
                started: Instant::now(),
                received: 0,
                collected: Vec::new(),
            },
        );
    }

    /// The relay link is (back) up: sync every followed pair and republish our orders, since a
    /// restarted relay has forgotten them.
    /// Allows or stops publishing (authenticated with the relay, or not any more).
    pub fn set_publishing(&mut self, on: bool) {
        self.publishing = on;
    }

    pub fn relay_ready(
        &mut self,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: PeerId,
    ) {
        for pair in self.watched.clone() {
            self.start_sync(sync, relay, pair, None);
        }
        let own: Vec<OwnOrder> = self.own.values().cloned().collect();
        for order in own {
            if let Ok(bytes) = self.sign(&order.pair, OrderAction::Order(order.spec)) {
                self.queue(order.pair.clone(), bytes, Some(order.id));
            }
        }
        self.flush(gossip);
        self.next_keep_alive = Instant::now() + Duration::from_millis(KEEP_ALIVE_INTERVAL_MS);
    }

    pub(crate) fn sign(
        &mut self,
        pair: &Pair,
        action: OrderAction,
    ) -> Result<Vec<u8>, OrderReject> {
        let body = OrderBody {
            pair: pair.clone(),
            seq: self.next_seq(),
            sent_at_ms: unix_time_ms(),
            action,
        };
        sign_order_message(&self.keypair, &body, unix_time_ms())
    }

    pub(crate) fn queue(&mut self, pair: Pair, bytes: Vec<u8>, order: Option<OrderId>) {
        self.queue_with(pair, bytes, order, None);
    }

    fn queue_with(
        &mut self,
        pair: Pair,
        bytes: Vec<u8>,
        order: Option<OrderId>,
        withdraw_after: Option<Duration>,
    ) {
        if self.unpublished.len() >= MAX_UNPUBLISHED {
            self.unpublished.pop_front();
        }
        // A newer message for the same order or pair supersedes an older unsent one of the
        // same kind only through sequence numbers; keep them in order.
        self.unpublished.push_back(Unpublished {
            pair,
            bytes,
            order,
            since: Instant::now(),
            withdraw_after,
        });
    }

    /// Places an order of ours: signs it, enters it in our book, and publishes it.
    pub fn place(
        &mut self,
        pair: Pair,
        spec: OrderSpec,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: Option<PeerId>,
    ) -> Events {
        self.place_with(pair, spec, gossip, sync, relay, Some(PUBLISH_DEADLINE))
    }

    fn place_with(
        &mut self,
        pair: Pair,
        spec: OrderSpec,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: Option<PeerId>,
        withdraw_after: Option<Duration>,
    ) -> Events {
        if self.own.len() >= self.market.limits().max_orders_per_maker {
            return vec![TradingEvent::OrderFailed {
                reason: format!(
                    "you already have {} live orders, the most a relay accepts",
                    self.own.len()
                ),
            }];
        }
        if let Err(reason) = self.watch(pair.clone(), gossip, sync, relay) {
            return vec![TradingEvent::OrderFailed { reason }];
        }
        let bytes = match self.sign(&pair, OrderAction::Order(spec)) {
            Ok(bytes) => bytes,
            Err(e) => {
                return vec![TradingEvent::OrderFailed {
                    reason: e.to_string(),
                }]
            }
        };
        let id = order_id(&self.me, spec.nonce);
        if let Err(e) = self.apply_own(&bytes) {
            return vec![TradingEvent::OrderFailed {
                reason: e.to_string(),
            }];
        }
        let order = OwnOrder { id, pair, spec };
        self.own.insert(id, order.clone());
        self.queue_with(order.pair.clone(), bytes, Some(id), withdraw_after);
        self.flush(gossip);
        vec![TradingEvent::OrderPlaced(order)]
    }

    /// Republishes our stored orders that have not expired (same nonce, so the same ids) and
    /// brings back our trades.
    pub fn restore(
        &mut self,
        orders: Vec<OwnOrder>,
        trades: Vec<crate::Trade>,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: Option<PeerId>,
    ) -> Events {
        let mut events = self.restore_trades(trades);
        let now = unix_time_ms();
        for order in orders {
            if order.spec.expires_at_ms <= now + darkswap_proto::order::MIN_ORDER_LIFETIME_MS
                || self.own.contains_key(&order.id)
                || order.id != order_id(&self.me, order.spec.nonce)
            {
                continue;
            }
            // A restored order keeps trying until it is published or expires.
            events.extend(self.place_with(order.pair, order.spec, gossip, sync, relay, None));
        }
        events
    }

    /// Cancels an order of ours, everywhere.
    pub fn cancel(&mut self, id: OrderId, gossip: &mut gossipsub::Behaviour) -> Events {
        let Some(order) = self.own.get(&id).cloned() else {
            return vec![TradingEvent::OrderFailed {
                reason: format!("order {id} is not one of your live orders"),
            }];
        };
        let bytes = match self.sign(&order.pair, OrderAction::Cancel { order_id: id }) {
            Ok(bytes) => bytes,
            Err(e) => {
                return vec![TradingEvent::OrderFailed {
                    reason: e.to_string(),
                }]
            }
        };
        let _ = self.apply_own(&bytes);
        self.own.remove(&id);
        // A cancel must go out even if the order never did: drop any unsent copy of it.
        self.unpublished.retain(|u| u.order != Some(id));
        self.queue(order.pair.clone(), bytes, None);
        self.flush(gossip);
        vec![TradingEvent::OrderCancelled {
            id,
            pair: order.pair,
        }]
    }

    fn apply_own(&mut self, bytes: &[u8]) -> Result<Applied, OrderReject> {
        let verified = verify_order_message(bytes, None, Freshness::Live, unix_time_ms())?;
        let applied = self.market.apply(&verified, unix_time_ms())?;
        self.dirty.insert(verified.body.pair);
        Ok(applied)
    }

    /// Publishes what waits; what cannot go out within the deadline is withdrawn.
    pub fn flush(&mut self, gossip: &mut gossipsub::Behaviour) -> Events {
        let mut events = Vec::new();
        if !self.publishing {
            // Not authenticated with the relay yet: it would refuse what we publish, so
            // everything waits in the (bounded) queue.
            return events;
        }
        let mut waiting = VecDeque::new();
        while let Some(item) = self.unpublished.pop_front() {
            if !self.take_token() {
                waiting.push_back(item);
                waiting.extend(self.unpublished.drain(..));
                break;
            }
            let topic = IdentTopic::new(order_topic(&item.pair));
            match gossip.publish(topic, item.bytes.clone()) {
                Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                Err(e)
                    if item
                        .withdraw_after
                        .is_some_and(|d| item.since.elapsed() > d) =>
                {
                    self.tokens += 1.0;
                    if let Some(id) = item.order {
                        if self.own.remove(&id).is_some() {
                            self.withdraw_local(&item.pair, &id);
                            events.push(TradingEvent::OrderWithdrawn {
                                id,
                                pair: item.pair.clone(),
                                reason: format!("could not reach the relay's order gossip: {e}"),
                            });
                        }
                    }
                }
                Err(_) => {
                    // Not sent: the token is not spent.
                    self.tokens += 1.0;
                    waiting.push_back(item);
                }
            }
        }
        self.unpublished = waiting;
        events
    }

    fn withdraw_local(&mut self, pair: &Pair, id: &OrderId) {
        if let Ok(bytes) = self.sign(pair, OrderAction::Cancel { order_id: *id }) {
            let _ = self.apply_own(&bytes);
        }
    }

    /// A gossiped message arrived: verify, apply, and tell gossipsub not to forward it.
    pub fn on_gossip(
        &mut self,
        event: gossipsub::Event,
        gossip: &mut gossipsub::Behaviour,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
        relay: Option<PeerId>,
    ) -> Events {
        let gossipsub::Event::Message {
            propagation_source,
            message_id,
            message,
        } = event
        else {
            return Vec::new();
        };
        gossip.report_message_validation_result(
            &message_id,
            &propagation_source,
            MessageAcceptance::Ignore,
        );
        let now = unix_time_ms();
        let outcome = parse_order_topic(message.topic.as_str())
            .ok_or(OrderReject::BadPair)
            .and_then(|pair| {
                if !self.watched.contains(&pair) {
                    return Err(OrderReject::BadPair);
                }
                verify_order_message(&message.data, Some(&pair), Freshness::Live, now)
            })
            .and_then(|verified| {
                if verified.maker == self.me {
                    // Our own message coming back: already applied.
                    return Err(OrderReject::Replay);
                }
                let applied = self.market.apply(&verified, now)?;
                self.dirty.insert(verified.body.pair.clone());
                Ok(applied)
            });
        let mut events = match outcome {
            Ok(Applied::KeepAliveMismatch { maker, pair }) => {
                if let Some(relay) = relay {
                    self.start_sync(sync, relay, pair, Some(maker));
                }
                Vec::new()
            }
            Ok(_) | Err(OrderReject::Replay) => Vec::new(),
            Err(reason) => vec![TradingEvent::MessageRejected {
                reason: reason.as_str(),
            }],
        };
        // A change after a quiet moment is shown at once; bursts are batched.
        events.extend(self.book_views());
        events
    }

    /// A book-sync page arrived (or failed).
    pub fn on_sync(
        &mut self,
        event: request_response::Event<BookSyncRequest, BookSyncResponse>,
        sync: &mut request_response::Behaviour<BookSyncCodec>,
    ) -> Events {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(mut job) = self.syncs.remove(&request_id) else {
                    return Vec::new();
                };
                let mut events = Vec::new();
                let now = unix_time_ms();
                let mut last = None;
                for raw in &response.orders {
                    match verify_order_message(raw, Some(&job.pair), Freshness::Stored, now) {
                        Ok(verified) => {
                            last = verified.order_id();
                            job.received += 1;
                            if job.maker.is_some() {
                                job.collected.push(verified);
                            } else if verified.maker != self.me {
                                if let Err(e) = self.market.apply_stored(&verified, now) {
                                    if e != OrderReject::Cancelled {
                                        events.push(TradingEvent::MessageRejected {
                                            reason: e.as_str(),
                                        });
                                    }
                                }
                            }
                        }
                        Err(e) => events.push(TradingEvent::MessageRejected { reason: e.as_str() }),
                    }
                }
                self.dirty.insert(job.pair.clone());
                if response.more && last.is_some() {
                    let request = BookSyncRequest {
                        pair: job.pair.clone(),
                        maker: job.maker,
                        after: last,
                        limit: MAX_BOOK_SYNC_PAGE,
                    };
                    let id = sync.send_request(&peer, request);
                    self.syncs.insert(id, job);
                    return events;
                }
                match job.maker {
                    Some(maker) => {
                        for result in
                            self.market
                                .reconcile_maker(&maker, &job.pair, &job.collected, now)
                        {
                            if let Err(e) = result {
                                events.push(TradingEvent::MessageRejected { reason: e.as_str() });
                            }
                        }
                    }
                    None => events.push(TradingEvent::BookSynced {
                        pair: job.pair,
                        orders: job.received,
                        elapsed: job.started.elapsed(),
                    }),
                }
                events
            }
            request_response::Event::OutboundFailure { request_id, .. } => {
                // The relay went away mid-sync: `relay_ready` starts it again.
                self.syncs.remove(&request_id);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// Periodic work: expiry, keep-alives, publishing, book views.
    pub fn tick(&mut self, gossip: &mut gossipsub::Behaviour, relay_up: bool) -> Events {
        let now = unix_time_ms();
        let mut events = Vec::new();
        if Instant::now() >= self.next_keep_alive {
            self.next_keep_alive = Instant::now() + Duration::from_millis(KEEP_ALIVE_INTERVAL_MS);
            self.send_keep_alives(relay_up);
        }
        for (order, why) in self.market.expire(now) {
            self.dirty.insert(order.data.pair.clone());
            if let Some(own) = self.own.remove(&order.id) {
                let reason = match why {
                    Removal::Expired => "expired",
                    Removal::MakerGone => "withdrawn: this client stopped announcing it",
                };
                events.push(TradingEvent::OrderWithdrawn {
                    id: own.id,
                    pair: own.pair,
                    reason: reason.into(),
                });
            }
        }
        if relay_up {
            events.extend(self.flush(gossip));
        }
        events.extend(self.expire_trades());
        events.append(&mut self.pending_events);
        events.extend(self.book_views());
        events
    }

    /// Announces that our orders are alive: to our own book always (so they do not time out
    /// here while the relay is away), to the network when the relay is there.
    fn send_keep_alives(&mut self, relay_up: bool) {
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
        for (pair, mut live) in per_pair {
            let digest = live_orders_digest(&mut live);
            let action = OrderAction::KeepAlive {
                digest,
                live_orders: live.len() as u32,
            };
            if let Ok(bytes) = self.sign(&pair, action) {
                let _ = self.apply_own(&bytes);
                if relay_up {
                    self.queue(pair, bytes, None);
                }
            }
        }
    }

    /// Views of the pairs that changed, each at most every `BOOK_VIEW_INTERVAL`.
    pub fn book_views(&mut self) -> Events {
        let now = Instant::now();
        let ready: Vec<Pair> = self
            .dirty
            .iter()
            .filter(|p| {
                self.last_view
                    .get(*p)
                    .is_none_or(|at| now.duration_since(*at) >= BOOK_VIEW_INTERVAL)
            })
            .cloned()
            .collect();
        let mut events = Vec::new();
        for pair in ready {
            self.dirty.remove(&pair);
            if !self.watched.contains(&pair) {
                continue;
            }
            self.last_view.insert(pair.clone(), now);
            events.push(TradingEvent::Book(self.view(&pair)));
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
            };
        };
        let order_view =
            |o: &darkswap_orderbook::LimitOrder<darkswap_market::OrderInfo>| OrderView {
                id: o.id,
                maker: o.data.maker,
                side: o.side,
                price: o.price,
                amount: o.amount,
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
        }
    }

    /// The maker of an order in our book.
    pub fn market_maker(&self, pair: &Pair, id: &OrderId) -> Option<PeerId> {
        self.market.order(pair, id).map(|o| o.data.maker)
    }
}
