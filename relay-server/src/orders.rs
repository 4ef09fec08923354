//! Order gossip at the relay: every message is verified and checked against the relay's own
//! book (darkswap-market) *before* gossipsub may forward it; refusals are counted by reason.
//! The relay also answers `/darkswap/book-sync/1` from that book, and peers with other relays
//! so that one book spans all of them. Which pairs it follows is `pair_follow`'s to say.
//!
//! A trader connected to this relay may publish only what its own key signed; messages signed
//! by other keys come only from trusted peers (peer relays forward their traders' orders).
//! A trader's own orders that the relay refuses are remembered for a minute (`refusals`), and
//! told to the trader when it asks for its own orders by book sync.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use darkswap_market::{Applied, Market, Removal};
use darkswap_orderbook::Pair;
use darkswap_proto::book_sync::MAX_BOOK_SYNC_PAGE;
use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse};
use darkswap_proto::gossip::Gossip;
use darkswap_proto::order::{
    order_topic, parse_order_topic, verify_order_message, Freshness, OrderAction, OrderReject,
    VerifiedOrderMessage,
};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::OutboundRequestId;
use libp2p::PeerId;
use prometheus_client::metrics::{counter::Counter, family::Family};

use crate::book_repair::{BookRepairs, Pull, Skip, Ticket};

use crate::config::Limits;
use crate::defaults;
use crate::metrics::{EventLabels, KindLabels, OutcomeLabels, PairLabels, RelayMetrics};
use crate::pair_follow::{FollowLimits, Follower, PairFollow, Step};
use crate::refusals::Refusals;
use crate::source_caps::{Over, SourceCaps};
use darkswap_rate::{KeyedLimiter, Rate, TokenBucket};

/// What the relay's access check says about the peer a gossip message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceAccess {
    /// Below the level publishing needs (e.g. it never authenticated).
    Refused,
    /// May publish its own messages, within the per-peer rate.
    Limited,
    /// Trusted by the operator: may forward others' messages, not rate-limited as one peer.
    Trusted,
    /// A configured peer relay: as trusted (it forwards its traders' orders).
    PeerRelay,
}

impl SourceAccess {
    /// Trusted peers and peer relays: not rate-limited as one peer.
    pub fn unlimited(self) -> bool {
        matches!(self, SourceAccess::Trusted | SourceAccess::PeerRelay)
    }

    fn follower(self) -> Follower {
        match self {
            SourceAccess::Refused => Follower::Anonymous,
            SourceAccess::Limited => Follower::Trader,
            SourceAccess::Trusted => Follower::Trusted,
            SourceAccess::PeerRelay => Follower::Relay,
        }
    }
}

/// What became of a valid message.
struct Verdict {
    /// Its kind, for the metrics.
    kind: &'static str,
    /// Whether gossip passes it on.
    forward: bool,
    /// A keep-alive that disagreed with our book: the maker, the pair and its signed digest.
    mismatch: Option<(PeerId, Pair, [u8; 32])>,
}

pub struct OrderGossip {
    market: Market,
    /// Per connected peer; entries leave when the peer disconnects.
    sources: HashMap<PeerId, TokenBucket>,
    /// Gossip messages per second from one peer, with a burst of four seconds' worth.
    rate_per_peer: Rate,
    follow: PairFollow,
    /// Caps shared by the makers connected from one address.
    caps: SourceCaps,
    /// Only trusted peers may put the first order on a pair (an operator's price on pairs).
    open_pairs_trusted_only: bool,
    /// Book-sync pages per peer and per address: a page is up to 1,000 orders (~256 KiB) for a
    /// request of a few bytes.
    sync_per_peer: KeyedLimiter<PeerId>,
    sync_per_ip: KeyedLimiter<IpAddr>,
    /// Pairs with a live-orders series, so that a pair that empties is reset to zero once.
    reported_pairs: HashSet<Pair>,
    /// Traders' own orders refused lately, told to them by book sync.
    refusals: Refusals,
    /// Pulls of makers' orders from peer relays, to repair what gossip did not bring.
    repairs: BookRepairs<OutboundRequestId>,
}

impl OrderGossip {
    pub fn new(limits: &Limits) -> Self {
        OrderGossip {
            market: Market::new(limits.market.clone()).serving_snapshots(),
            sources: HashMap::new(),
            rate_per_peer: Rate::per_second(
                limits.gossip_rate_per_peer,
                limits.gossip_rate_per_peer.saturating_mul(4),
            ),
            follow: PairFollow::new(FollowLimits {
                max_pairs: limits.market.max_pairs,
                max_per_peer: limits.max_pairs_per_peer,
                max_starts_per_address: limits.max_pairs_per_address,
                idle_ms: limits.pair_idle.as_millis() as u64,
            }),
            caps: SourceCaps::new(limits.max_orders_per_address, limits.max_pairs_per_address),
            open_pairs_trusted_only: limits.open_pairs_trusted_only,
            sync_per_peer: KeyedLimiter::new(
                Rate::per_second(
                    defaults::BOOK_SYNC_PAGES_PER_PEER_PER_SECOND,
                    defaults::BOOK_SYNC_BURST_PER_PEER,
                ),
                defaults::BOOK_SYNC_RATE_TABLE_CAPACITY,
            ),
            sync_per_ip: KeyedLimiter::new(
                Rate::per_second(
                    defaults::BOOK_SYNC_PAGES_PER_IP_PER_SECOND,
                    defaults::BOOK_SYNC_BURST_PER_IP,
                ),
                defaults::BOOK_SYNC_RATE_TABLE_CAPACITY,
            ),
            reported_pairs: HashSet::new(),
            refusals: Refusals::default(),
            repairs: BookRepairs::default(),
        }
    }

    /// Validates one gossiped message and tells gossipsub whether to forward it; follows the
    /// pairs peers follow, within `pair_follow`'s rules. Returns the peers to cut off.
    /// `access(peer, audit)` is the peer's standing; `audit` says a refusal is worth a line in
    /// the audit log (a message refused, not a subscription noted).
    pub fn on_gossip_event(
        &mut self,
        gossip: &mut Gossip,
        event: gossipsub::Event,
        metrics: &RelayMetrics,
        now_ms: u64,
        access: impl Fn(&PeerId, bool) -> SourceAccess,
    ) -> Vec<PeerId> {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                // Below the level publishing needs (a peer that skipped auth): refused before
                // any work is spent on the message, and not forwarded. (Peer scoring counts the
                // application's score only, so a rejection does not score the sender down; a
                // peer below publishing is scored down as such, see `score`.)
                let access = access(&propagation_source, true);
                if access == SourceAccess::Refused {
                    metrics
                        .order_messages_rejected
                        .get_or_create(&RelayMetrics::reason("unauthorized"))
                        .inc();
                    gossip.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Reject,
                    );
                    return Vec::new();
                }
                let outcome =
                    self.validate(&propagation_source, &message, now_ms, access.unlimited());
                let mut held = false;
                if let (
                    Ok(Verdict {
                        mismatch: Some((maker, pair, digest)),
                        ..
                    }),
                    SourceAccess::PeerRelay,
                ) = (&outcome, access)
                {
                    // What a peer relay forwarded disagrees with our book: ask it for the
                    // maker's orders (gossip does not replay what we missed), and pass the
                    // keep-alive on once our book is repaired.
                    match self.repairs.mismatch(
                        propagation_source,
                        message_id.clone(),
                        *maker,
                        pair.clone(),
                        *digest,
                        now_ms,
                    ) {
                        Ok(()) => held = true,
                        Err(Skip::Busy) => count(&metrics.book_repairs, "busy", 1),
                        Err(Skip::Recent) => {}
                    }
                }
                let acceptance = match &outcome {
                    Ok(verdict) => {
                        metrics
                            .order_messages_accepted
                            .get_or_create(&KindLabels {
                                kind: verdict.kind.to_string(),
                            })
                            .inc();
                        if held {
                            // Reported when the repair ends (`pass_on`).
                            return Vec::new();
                        }
                        if verdict.forward {
                            MessageAcceptance::Accept
                        } else {
                            metrics.keep_alives_not_forwarded.inc();
                            MessageAcceptance::Ignore
                        }
                    }
                    Err(reason) => {
                        metrics
                            .order_messages_rejected
                            .get_or_create(&RelayMetrics::reason(reason.as_str()))
                            .inc();
                        match reason {
                            // Late or repeated copies of honest messages: drop without blame.
                            OrderReject::Replay | OrderReject::Cancelled => {
                                MessageAcceptance::Ignore
                            }
                            _ => MessageAcceptance::Reject,
                        }
                    }
                };
                gossip.report_message_validation_result(
                    &message_id,
                    &propagation_source,
                    acceptance,
                );
                Vec::new()
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                // The subscription filter let through order topics only.
                let Some(pair) = parse_order_topic(topic.as_str()) else {
                    return Vec::new();
                };
                let standing = access(&peer_id, false);
                score(gossip, &peer_id, standing);
                let kind = standing.follower();
                // Unknown (not connected any more): charged with every other unknown peer.
                let addr = self
                    .caps
                    .address_of(&peer_id)
                    .unwrap_or_else(|| darkswap_proto::addr::limit_key(None));
                let steps = self.follow.subscribed(peer_id, addr, kind, pair);
                self.carry_out(gossip, steps, metrics)
            }
            gossipsub::Event::Unsubscribed { peer_id, topic } => {
                if let Some(pair) = parse_order_topic(topic.as_str()) {
                    self.follow.unsubscribed(&peer_id, &pair);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// `peer`'s standing may have changed (after an auth exchange): the pairs it follows count
    /// as its new standing says. Returns the peers to cut off.
    pub fn reclassify(
        &mut self,
        gossip: &mut Gossip,
        peer: PeerId,
        access: SourceAccess,
        metrics: &RelayMetrics,
    ) -> Vec<PeerId> {
        score(gossip, &peer, access);
        let steps = self.follow.reclassify(peer, access.follower());
        self.carry_out(gossip, steps, metrics)
    }

    fn carry_out(
        &mut self,
        gossip: &mut Gossip,
        steps: Vec<Step>,
        metrics: &RelayMetrics,
    ) -> Vec<PeerId> {
        let mut cut = Vec::new();
        for step in steps {
            let event = match step {
                Step::Follow(pair) => {
                    // Subscribing fails only for a topic our own filter refuses, and `pair`
                    // came from one it let through.
                    let _ = gossip.subscribe(&IdentTopic::new(order_topic(&pair)));
                    "followed"
                }
                Step::Unfollow(pair) => {
                    gossip.unsubscribe(&IdentTopic::new(order_topic(&pair)));
                    "unfollowed_idle"
                }
                Step::Full(_) => "refused_full",
                Step::AddressFull(_) => "refused_address",
                Step::CutOff(peer) => {
                    cut.push(peer);
                    "peer_over_cap"
                }
            };
            metrics
                .pair_follow_events
                .get_or_create(&EventLabels { event })
                .inc();
        }
        metrics.pairs_followed.set(self.follow.followed() as i64);
        cut
    }

    fn validate(
        &mut self,
        source: &PeerId,
        message: &gossipsub::Message,
        now_ms: u64,
        unlimited: bool,
    ) -> Result<Verdict, OrderReject> {
        if !unlimited && !self.take_token(*source, now_ms) {
            return Err(OrderReject::RateLimited);
        }
        let pair = parse_order_topic(message.topic.as_str()).ok_or(OrderReject::BadPair)?;
        let verified = verify_order_message(&message.data, Some(&pair), Freshness::Live, now_ms)?;
        // A trader publishes its own orders; a message signed by another key from a peer that
        // is not trusted is someone else's (throwaway keys behind one connection, or a copy).
        if !unlimited && verified.maker != *source {
            return Err(OrderReject::NotOwn);
        }
        let outcome = self.take(source, &verified, now_ms, unlimited);
        if let (Err(reason), false, OrderAction::Order(_), Some(id)) = (
            outcome.as_ref(),
            unlimited,
            &verified.body.action,
            verified.order_id(),
        ) {
            // A late copy is nothing to tell; anything else is the trader's to know.
            if *reason != OrderReject::Replay {
                self.refusals
                    .note(*source, &verified.body.pair, id, *reason, now_ms);
            }
        }
        outcome
    }

    /// A verified message from `source`, within its address's caps when not `unlimited`,
    /// applied to the relay's book.
    fn take(
        &mut self,
        source: &PeerId,
        verified: &VerifiedOrderMessage,
        now_ms: u64,
        unlimited: bool,
    ) -> Result<Verdict, OrderReject> {
        if !unlimited {
            self.admit(source, verified)?;
        }
        let kind = verified.body.action.kind();
        // A keep-alive whose digest differs from our copy of the maker's orders is still valid
        // and goes on, so traders that see the mismatch pull the maker's orders from us; unless
        // we hold none of them: then every trader would ask and get nothing (a maker with no
        // orders and a wrong digest would make every watching page sync, for free).
        let mut mismatch = None;
        let forward = match self.market.apply(verified, now_ms)? {
            Applied::KeepAliveMismatch { maker, pair } => {
                if let OrderAction::KeepAlive { digest, .. } = &verified.body.action {
                    mismatch = Some((maker, pair.clone(), *digest));
                }
                self.market.live_orders_of(&maker, &pair) > 0
            }
            _ => true,
        };
        Ok(Verdict {
            kind,
            forward,
            mismatch,
        })
    }

    /// A trader's new order within what its address may hold, and on a pair it may open.
    fn admit(
        &mut self,
        source: &PeerId,
        verified: &VerifiedOrderMessage,
    ) -> Result<(), OrderReject> {
        let Some(id) = verified.order_id() else {
            return Ok(());
        };
        let pair = &verified.body.pair;
        if self.market.order(pair, &id).is_some() {
            // A re-publish (a smaller amount after a trade): nothing new is held.
            return Ok(());
        }
        let opens = self.market.book(pair).is_none_or(|book| book.is_empty());
        if opens && self.open_pairs_trusted_only {
            return Err(OrderReject::OpenPairRefused);
        }
        self.caps
            .admit(source, pair, &self.market)
            .map_err(|over| match over {
                Over::Orders => OrderReject::AddressOverCap,
                Over::Pairs => OrderReject::AddressPairsOverCap,
            })
    }

    /// `peer`'s first connection came from `addr` (its `darkswap_proto::addr::limit_key`).
    pub fn peer_connected(&mut self, peer: PeerId, addr: IpAddr) {
        self.caps.connected(peer, addr);
    }

    fn take_token(&mut self, source: PeerId, now_ms: u64) -> bool {
        let rate = self.rate_per_peer;
        self.sources
            .entry(source)
            .or_insert_with(|| TokenBucket::full(&rate, now_ms))
            .try_take(&rate, now_ms)
    }

    pub fn peer_disconnected(&mut self, peer: &PeerId) {
        self.sources.remove(peer);
        self.follow.gone(peer);
        self.caps.disconnected(peer);
        self.refusals.forget(peer);
    }

    /// Answers a book-sync request from the relay's book, within the per-peer and per-address
    /// page rates (`ip`: the peer's `darkswap_proto::addr::limit_key`) unless the peer is
    /// `unlimited` (a peer relay repairing its book, a trusted peer).
    pub fn book_sync(
        &mut self,
        peer: PeerId,
        ip: IpAddr,
        request: &BookSyncRequest,
        metrics: &RelayMetrics,
        now_ms: u64,
        unlimited: bool,
    ) -> BookSyncResponse {
        // A page within the peer's budget is charged to its address's too, so an address's many
        // identities cannot each spend a full budget of their own. A trader asking for its own
        // orders (to learn whether they were taken) is charged to its own budget only: its
        // answer is at most what it published itself, and the makers behind one address must
        // not crowd out each other's joins.
        let own = request.maker == Some(peer);
        let allowed = unlimited
            || (self.sync_per_peer.allow(&peer, now_ms)
                && (own || self.sync_per_ip.allow(&ip, now_ms)));
        let outcome = if allowed { "ok" } else { "rate_limited" };
        metrics
            .book_sync_requests
            .get_or_create(&crate::metrics::OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        if !allowed {
            return BookSyncResponse {
                orders: Vec::new(),
                more: false,
                error: Some("rate limited: too many book-sync pages; ask again later".into()),
                refused: Vec::new(),
            };
        }
        let (orders, more) = self.market.snapshot(
            &request.pair,
            request.maker.as_ref(),
            request.after.as_ref(),
            request.limit as usize,
        );
        BookSyncResponse {
            orders: orders.iter().map(|o| o.to_vec()).collect(),
            more,
            error: None,
            // A trader asking for its own orders also hears which the relay refused lately.
            refused: match request.maker {
                Some(maker) if maker == peer => self.refusals.of(&peer, &request.pair, now_ms),
                _ => Vec::new(),
            },
        }
    }

    /// The pulls of makers' orders to send to peer relays now; each request id goes back
    /// through [`OrderGossip::repair_sent`].
    pub fn take_repairs(&mut self) -> Vec<Pull> {
        self.repairs.take_queued()
    }

    /// A pull went out as request `id`.
    pub fn repair_sent(&mut self, id: OutboundRequestId, ticket: Ticket) {
        self.repairs.sent(id, ticket);
    }

    /// The peer relay answered pull `id`: the maker's orders it holds are checked one by one
    /// and repair our book (whole only if they hash to the digest the maker signed).
    pub fn repaired(
        &mut self,
        gossip: &mut Gossip,
        id: &OutboundRequestId,
        response: BookSyncResponse,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) {
        let Some(ticket) = self.repairs.finished(id) else {
            return;
        };
        if response.error.is_some() {
            count(&metrics.book_repairs, "refused", 1);
            self.pass_on(gossip, &ticket, metrics);
            return;
        }
        let mut invalid = 0;
        let snapshot: Vec<VerifiedOrderMessage> = response
            .orders
            .iter()
            .take(MAX_BOOK_SYNC_PAGE as usize)
            .filter_map(|raw| {
                let checked =
                    verify_order_message(raw, Some(&ticket.pair), Freshness::Stored, now_ms)
                        .ok()
                        .filter(|m| m.maker == ticket.maker);
                invalid += usize::from(checked.is_none());
                checked
            })
            .collect();
        let repaired = self.market.repair_maker(
            &ticket.maker,
            &ticket.pair,
            &snapshot,
            &ticket.digest,
            now_ms,
        );
        let outcome = if repaired.complete {
            "complete"
        } else {
            "partial"
        };
        count(&metrics.book_repairs, outcome, 1);
        count(&metrics.book_repair_orders, "added", repaired.added);
        count(&metrics.book_repair_orders, "removed", repaired.removed);
        count(&metrics.book_repair_orders, "refused", repaired.refused);
        count(&metrics.book_repair_orders, "invalid", invalid);
        self.pass_on(gossip, &ticket, metrics);
    }

    /// Pull `id` got no answer: `why` is timeout, closed (the connection went, e.g. closed as
    /// stalled) or unreachable.
    pub fn repair_failed(
        &mut self,
        gossip: &mut Gossip,
        id: &OutboundRequestId,
        why: &str,
        metrics: &RelayMetrics,
    ) {
        if let Some(ticket) = self.repairs.finished(id) {
            count(&metrics.book_repairs, why, 1);
            self.pass_on(gossip, &ticket, metrics);
        }
    }

    /// The keep-alive held for a repair goes on as any other would: forwarded when we hold
    /// some of the maker's orders on the pair (those behind us then pull from a repaired
    /// book), dropped otherwise. Gossip may have let go of it meanwhile: nothing to do then.
    fn pass_on(&self, gossip: &mut Gossip, ticket: &Ticket, metrics: &RelayMetrics) {
        let forward = self.market.live_orders_of(&ticket.maker, &ticket.pair) > 0;
        if !forward {
            metrics.keep_alives_not_forwarded.inc();
        }
        let (message, from) = &ticket.held;
        let acceptance = if forward {
            MessageAcceptance::Accept
        } else {
            MessageAcceptance::Ignore
        };
        gossip.report_message_validation_result(message, from, acceptance);
    }

    /// Removes expired orders and silent makers' orders; lets go of idle pairs; refreshes the
    /// book gauges.
    pub fn tick(&mut self, gossip: &mut Gossip, metrics: &RelayMetrics, now_ms: u64) {
        self.repairs.prune(now_ms);
        self.sync_per_peer.prune(now_ms);
        self.sync_per_ip.prune(now_ms);
        self.refusals.prune(now_ms);
        for (_, why) in self.market.expire(now_ms) {
            let reason = match why {
                Removal::Expired => "expired",
                Removal::MakerGone => "maker_gone",
            };
            metrics
                .orders_removed
                .get_or_create(&RelayMetrics::reason(reason))
                .inc();
        }
        let mut live: HashSet<Pair> = HashSet::new();
        for (pair, count) in self.market.order_counts() {
            metrics
                .live_orders
                .get_or_create(&PairLabels {
                    pair: pair.to_string(),
                })
                .set(count as i64);
            live.insert(pair.clone());
        }
        for gone in self.reported_pairs.difference(&live) {
            metrics.live_orders.remove(&PairLabels {
                pair: gone.to_string(),
            });
        }
        let idle = self.follow.tick(now_ms, |pair| live.contains(pair));
        self.carry_out(gossip, idle, metrics);
        metrics
            .gossip_mesh_peers
            .set(gossip.all_mesh_peers().count() as i64);
        self.reported_pairs = live;
        metrics.order_makers.set(self.market.makers() as i64);
    }
}

/// Keeps a peer below the level publishing needs out of the gossip mesh: its connection then
/// closes when idle (the mesh kept it open), and it reads the book by lazy gossip and sync.
fn score(gossip: &mut Gossip, peer: &PeerId, standing: SourceAccess) {
    let score = match standing {
        SourceAccess::Refused => darkswap_proto::gossip::BELOW_PUBLISHING_SCORE,
        _ => 0.0,
    };
    // False only for a peer gossip does not know (gone already): nothing to score then.
    let _ = gossip.set_application_score(peer, score);
}

/// Adds `n` to `family`'s `outcome` series.
fn count(family: &Family<OutcomeLabels, Counter>, outcome: &str, n: usize) {
    family
        .get_or_create(&OutcomeLabels {
            outcome: outcome.into(),
        })
        .inc_by(n as u64);
}

/// How often [`OrderGossip::tick`] runs.
pub const TICK: Duration = Duration::from_secs(1);
