//! The relay's own metrics (`darkswap_relay_*`), declared in one place with their help text.
//! libp2p's metric families (`libp2p_*`) are registered beside them in the same registry.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Transport {
    tcp,
    websocket,
    webrtc_direct,
    other,
}

#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Direction {
    inbound,
    outbound,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectionLabels {
    pub transport: Transport,
    pub direction: Direction,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    pub transport: Transport,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// Why an incoming connection was refused (label `reason`).
pub const CONNECTION_DENIAL_REASONS: &[&str] = &[
    "connection_limit",
    "aborted",
    "wrong_peer_id",
    "handshake_failed",
    "banned",
    "ip_pending_limit",
    "webrtc_pending_limit",
    "stream_pending_limit",
    "ip_connection_limit",
    "anonymous_limit",
    "ip_anonymous_limit",
    "no_ip",
];
/// Why an HTTP connection was refused on accept.
pub const HTTP_REFUSAL_REASONS: &[&str] = &["ip_limit", "total_limit", "accept_failed"];
/// Why an open HTTP connection was closed by the relay.
pub const HTTP_DROP_REASONS: &[&str] = &["header_timeout", "write_stall"];
/// Why a reservation or circuit was refused: circuit relay v2 status codes, and failures to
/// answer.
pub const RELAY_DENIAL_REASONS: &[&str] = &[
    "reservation_refused",
    "resource_limit_exceeded",
    "permission_denied",
    "connection_failed",
    "no_reservation",
    "malformed_message",
    "unexpected_message",
    "accept_failed",
    "unauthorized",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReleasedByLabels {
    /// `inbound` (the peer opened a stream) or `deadline`.
    pub released_by: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub event: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PairLabels {
    pub pair: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub method: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DenialLabels {
    pub operation: String,
    pub level: String,
}

/// What a peer held when it was disconnected.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HeldLabels {
    pub held: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScopeLabels {
    pub scope: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub action: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UnreadableLabels {
    pub protocol: String,
    pub reason: String,
}

impl RelayMetrics {
    /// A codec hook that counts what it refuses under `protocol`.
    pub fn unreadable_counter(&self, protocol: &'static str) -> darkswap_proto::frame::OnRefusal {
        let family = self.requests_unreadable.clone();
        std::sync::Arc::new(move |why: darkswap_proto::frame::Refusal| {
            family
                .get_or_create(&UnreadableLabels {
                    protocol: protocol.into(),
                    reason: why.label().into(),
                })
                .inc();
        })
    }
}

/// A chain gateway request: which endpoint, and how it ended.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GatewayLabels {
    pub endpoint: &'static str,
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// Every `darkswap_relay_*` metric.
pub struct RelayMetrics {
    pub connections_opened: Family<ConnectionLabels, Counter>,
    pub connections_closed: Family<TransportLabels, Counter>,
    pub connections_active: Family<TransportLabels, Gauge>,
    pub handshakes_pending: Gauge,
    pub webrtc_mdns_blocked: Gauge,
    pub http_connections_open: Gauge,
    pub http_connections_refused: Family<ReasonLabels, Counter>,
    pub http_connections_dropped: Family<ReasonLabels, Counter>,
    pub connections_denied: Family<ReasonLabels, Counter>,
    /// Connections to the WebSocket port behind the TLS proxy, by what became of their PROXY
    /// header (see `proxy_transport`).
    pub ws_proxy_headers: Family<OutcomeLabels, Counter>,
    pub reservations_accepted: Counter,
    pub reservations_renewed: Counter,
    pub reservations_denied: Family<ReasonLabels, Counter>,
    pub reservations_ended: Family<ReasonLabels, Counter>,
    pub reservations_active: Gauge,
    pub circuits_accepted: Counter,
    pub circuits_denied: Family<ReasonLabels, Counter>,
    pub circuits_closed: Family<ReasonLabels, Counter>,
    pub circuits_active: Gauge,
    pub circuit_duration: Histogram,
    pub directory_requests: Counter,
    /// Requests refused unread (over their cap, or not the protocol's message), counted by the
    /// codec since libp2p does not report them.
    pub requests_unreadable: Family<UnreadableLabels, Counter>,
    pub order_messages_accepted: Family<KindLabels, Counter>,
    pub order_messages_rejected: Family<ReasonLabels, Counter>,
    pub orders_removed: Family<ReasonLabels, Counter>,
    pub live_orders: Family<PairLabels, Gauge>,
    pub order_makers: Gauge,
    /// Pairs the relay follows on gossip (see `pair_follow`).
    pub pairs_followed: Gauge,
    /// Peers in the relay's gossip mesh on any pair (peers below publishing are kept out).
    pub gossip_mesh_peers: Gauge,
    /// Peers disconnected because they were still below publishing when their time to
    /// authenticate (limits.auth_deadline_secs) was up.
    pub unauthenticated_dropped: Counter,
    /// Connections of peers below the reservation level closed to make room for a newcomer
    /// (their part of the connection slots was full and they were past the grace).
    pub anonymous_evicted: Counter,
    /// Established inbound connections of peers below the reservation level.
    pub anonymous_connections: Gauge,
    /// Peers disconnected because they held a reservation or a circuit past the end of the
    /// level it needs (a token that ran out unrenewed, trust withdrawn), by what they held.
    pub lapsed_dropped: Family<HeldLabels, Counter>,
    /// What happened to pair follows: followed, unfollowed_idle, refused_full, refused_address,
    /// and peers cut off for following too many (peer_over_cap).
    pub pair_follow_events: Family<EventLabels, Counter>,
    pub book_sync_requests: Family<OutcomeLabels, Counter>,
    /// Pulls of one maker's orders from a peer relay after the maker's keep-alive disagreed
    /// with this relay's book (`book_repair`), by outcome: complete, partial, refused, timeout,
    /// closed, stream_failed, unreachable, busy.
    pub book_repairs: Family<OutcomeLabels, Counter>,
    /// Orders those pulls changed, by outcome: added, removed, refused (by this relay's book),
    /// invalid (failed their checks: a peer relay served a bad order).
    pub book_repair_orders: Family<OutcomeLabels, Counter>,
    pub peer_relays_connected: Gauge,
    /// Peer relays the operator configured (`peers`): with `peer_relays_connected` at 0, the
    /// relay has lost its whole mesh.
    pub peer_relays_configured: Gauge,
    /// Dials to configured peer relays that failed, by reason: refused (nothing listens),
    /// address_in_use (no local address/port to dial from), timeout, wrong_peer_id, denied (our
    /// own limits), other.
    pub peer_relay_dial_failures: Family<ReasonLabels, Counter>,
    /// Connections to peer relays closed because a ping got no answer (a stalled link).
    pub peer_relay_links_stalled: Counter,
    /// Relay records taken from peer relays, by outcome: new, updated.
    pub relay_records_accepted: Family<OutcomeLabels, Counter>,
    /// Relay records refused, by reason (every check of the record, and replayed, own, full).
    pub relay_records_refused: Family<ReasonLabels, Counter>,
    /// Relay records held now, this relay's own among them.
    pub relay_records_known: Gauge,
    /// Requests for records sent to peer relays, by outcome: ok, failed (no answer, or an
    /// answer that did not read).
    pub relay_record_pulls: Family<OutcomeLabels, Counter>,
    /// This relay's proofs to its configured peer relays, by outcome: ok, the other relay's
    /// refusal reason, failed (no answer).
    pub federation_proofs: Family<OutcomeLabels, Counter>,
    pub duplicate_connections_reset: Counter,
    /// WebRTC-direct connections whose outbound streams waited for the peer's first stream, by
    /// what ended the wait (see `webrtc_hold`).
    pub webrtc_outbound_holds: Family<ReleasedByLabels, Counter>,
    /// Keep-alives not forwarded: their digest disagrees with the relay's book and the relay
    /// holds no order of their maker on the pair, so every page that got one would ask the relay
    /// for that maker's orders and get nothing.
    pub keep_alives_not_forwarded: Counter,
    pub auth_attempts: Family<AuthLabels, Counter>,
    pub auth_denials: Family<DenialLabels, Counter>,
    pub auth_rate_limited: Family<ScopeLabels, Counter>,
    pub auth_peers: Family<LevelLabels, Gauge>,
    pub auth_pending_challenges: Gauge,
    pub bans: Family<ActionLabels, Counter>,
    pub banned_peers: Gauge,
    pub audit_events_dropped: Counter,
    /// Chain gateway requests (only with `chain.bitcoind_rpc_url`), by endpoint and outcome.
    pub chain_gateway_requests: Family<GatewayLabels, Counter>,
}

impl RelayMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let r = registry.sub_registry_with_prefix("darkswap_relay");
        let m = Self {
            connections_opened: Family::default(),
            connections_closed: Family::default(),
            connections_active: Family::default(),
            handshakes_pending: Gauge::default(),
            webrtc_mdns_blocked: Gauge::default(),
            http_connections_open: Gauge::default(),
            http_connections_refused: Family::default(),
            http_connections_dropped: Family::default(),
            connections_denied: Family::default(),
            ws_proxy_headers: Family::default(),
            reservations_accepted: Counter::default(),
            reservations_renewed: Counter::default(),
            reservations_denied: Family::default(),
            reservations_ended: Family::default(),
            reservations_active: Gauge::default(),
            circuits_accepted: Counter::default(),
            circuits_denied: Family::default(),
            circuits_closed: Family::default(),
            circuits_active: Gauge::default(),
            // 1 s to ~18 h in ×4 steps: a hello, a negotiation, a whole trading session.
            circuit_duration: Histogram::new(exponential_buckets(1.0, 4.0, 9)),
            directory_requests: Counter::default(),
            requests_unreadable: Family::default(),
            order_messages_accepted: Family::default(),
            order_messages_rejected: Family::default(),
            orders_removed: Family::default(),
            live_orders: Family::default(),
            order_makers: Gauge::default(),
            pairs_followed: Gauge::default(),
            gossip_mesh_peers: Gauge::default(),
            unauthenticated_dropped: Counter::default(),
            anonymous_evicted: Counter::default(),
            anonymous_connections: Gauge::default(),
            lapsed_dropped: Family::default(),
            pair_follow_events: Family::default(),
            book_sync_requests: Family::default(),
            book_repairs: Family::default(),
            peer_relay_links_stalled: Counter::default(),
            book_repair_orders: Family::default(),
            peer_relays_connected: Gauge::default(),
            peer_relays_configured: Gauge::default(),
            peer_relay_dial_failures: Family::default(),
            relay_records_accepted: Family::default(),
            relay_records_refused: Family::default(),
            relay_records_known: Gauge::default(),
            relay_record_pulls: Family::default(),
            federation_proofs: Family::default(),
            duplicate_connections_reset: Counter::default(),
            webrtc_outbound_holds: Family::default(),
            keep_alives_not_forwarded: Counter::default(),
            auth_attempts: Family::default(),
            auth_denials: Family::default(),
            auth_rate_limited: Family::default(),
            auth_peers: Family::default(),
            auth_pending_challenges: Gauge::default(),
            bans: Family::default(),
            banned_peers: Gauge::default(),
            audit_events_dropped: Counter::default(),
            chain_gateway_requests: Family::default(),
        };
        r.register(
            "chain_gateway_requests",
            "Chain gateway (Esplora over bitcoind, faucet) requests, by endpoint and outcome (ok, bad_request, upstream_error, not_found, mempool_too_large, rate_limited, failed, unavailable)",
            m.chain_gateway_requests.clone(),
        );
        r.register(
            "connections_opened",
            "Connections established, by transport and direction",
            m.connections_opened.clone(),
        );
        r.register(
            "connections_closed",
            "Connections closed, by transport",
            m.connections_closed.clone(),
        );
        r.register(
            "connections_active",
            "Connections open now, by transport",
            m.connections_active.clone(),
        );
        r.register(
            "handshakes_pending",
            "Incoming connections still in their handshake now",
            m.handshakes_pending.clone(),
        );
        r.register(
            "webrtc_mdns_blocked",
            "1 when WebRTC-direct handshakes cannot open (and leak) mDNS sockets, 0 when they can",
            m.webrtc_mdns_blocked.clone(),
        );
        r.register(
            "http_connections_open",
            "HTTP connections open now",
            m.http_connections_open.clone(),
        );
        r.register(
            "http_connections_refused",
            "HTTP connections closed on accept, by reason (per-address or total cap)",
            m.http_connections_refused.clone(),
        );
        r.register(
            "http_connections_dropped",
            "HTTP connections the relay closed, by reason (headers too slow, response unread)",
            m.http_connections_dropped.clone(),
        );
        r.register(
            "connections_denied",
            "Incoming connections refused, by reason",
            m.connections_denied.clone(),
        );
        r.register(
            "ws_proxy_headers",
            "Connections to the WebSocket port from the TLS proxy (ws_trusted_proxies), by what became of their PROXY header: accepted, proxy_itself, or closed (untrusted_source, no_signature, malformed, too_long, closed, timeout, overloaded)",
            m.ws_proxy_headers.clone(),
        );
        r.register(
            "reservations_accepted",
            "New circuit-relay reservations accepted",
            m.reservations_accepted.clone(),
        );
        r.register(
            "reservations_renewed",
            "Circuit-relay reservations renewed",
            m.reservations_renewed.clone(),
        );
        r.register(
            "reservations_denied",
            "Circuit-relay reservations refused, by reason",
            m.reservations_denied.clone(),
        );
        r.register(
            "reservations_ended",
            "Reservations that ended, by reason (closed, timed_out)",
            m.reservations_ended.clone(),
        );
        r.register(
            "reservations_active",
            "Reservations held now",
            m.reservations_active.clone(),
        );
        r.register(
            "circuits_accepted",
            "Circuits opened between two peers",
            m.circuits_accepted.clone(),
        );
        r.register(
            "circuits_denied",
            "Circuit requests refused, by reason",
            m.circuits_denied.clone(),
        );
        r.register(
            "circuits_closed",
            "Circuits closed, by reason (ok, error)",
            m.circuits_closed.clone(),
        );
        r.register(
            "circuits_active",
            "Circuits open now",
            m.circuits_active.clone(),
        );
        r.register(
            "circuit_duration_seconds",
            "How long closed circuits lasted",
            m.circuit_duration.clone(),
        );
        r.register(
            "directory_requests",
            "Directory (who is reachable here) requests answered",
            m.directory_requests.clone(),
        );
        r.register(
            "requests_unreadable",
            "Requests refused unread, by protocol (auth, book_sync, directory) and reason (too_large, malformed)",
            m.requests_unreadable.clone(),
        );
        r.register(
            "order_messages_accepted",
            "Order gossip messages validated and forwarded, by kind (order, cancel, keep_alive)",
            m.order_messages_accepted.clone(),
        );
        r.register(
            "order_messages_rejected",
            "Order gossip messages refused and not forwarded, by reason",
            m.order_messages_rejected.clone(),
        );
        r.register(
            "orders_removed",
            "Orders that left the book without a cancel, by reason (expired, maker_gone)",
            m.orders_removed.clone(),
        );
        r.register(
            "live_orders",
            "Live orders in this relay's book, by pair",
            m.live_orders.clone(),
        );
        r.register(
            "order_makers",
            "Makers this relay currently tracks",
            m.order_makers.clone(),
        );
        r.register(
            "pairs_followed",
            "Pairs this relay follows on gossip",
            m.pairs_followed.clone(),
        );
        r.register(
            "gossip_mesh_peers",
            "Peers in this relay's gossip mesh on any pair (peers below the level publishing needs are kept out and read by lazy gossip)",
            m.gossip_mesh_peers.clone(),
        );
        r.register(
            "unauthenticated_dropped",
            "Peers disconnected because they had not reached the level publishing needs within limits.auth_deadline_secs of connecting",
            m.unauthenticated_dropped.clone(),
        );
        r.register(
            "anonymous_connections",
            "Established inbound connections of peers below the reservation level, rechecked every second (at most limits.max_connections - limits.connections_kept_for_authenticated)",
            m.anonymous_connections.clone(),
        );
        r.register(
            "anonymous_evicted",
            "Connections of peers below the reservation level closed to make room for a newcomer (limits.connections_kept_for_authenticated, limits.anonymous_grace_secs)",
            m.anonymous_evicted.clone(),
        );
        r.register(
            "lapsed_dropped",
            "Peers disconnected for holding a reservation or a circuit past the end of the level it needs (token expired unrenewed, trust withdrawn), by what they held",
            m.lapsed_dropped.clone(),
        );
        for held in ["reservation", "circuit"] {
            let _ = m.lapsed_dropped.get_or_create(&HeldLabels { held });
        }
        r.register(
            "pair_follow_events",
            "Pair follows by event: followed, unfollowed_idle (no order and no trader for the idle time), refused_full (max_pairs reached), refused_address (the traders at one address started max_pairs_per_address follows), peer_over_cap (a peer following more pairs than one trader may, cut off)",
            m.pair_follow_events.clone(),
        );
        r.register(
            "book_sync_requests",
            "Book-sync (snapshot) requests, by outcome (ok, refused)",
            m.book_sync_requests.clone(),
        );
        r.register(
            "book_repairs",
            "Pulls of a maker's orders from a peer relay after its keep-alive disagreed with this relay's book, by outcome: complete (they hashed to the maker's signed digest and replaced what was held), partial (they did not: only new orders taken), refused (the peer relay refused the request), timeout (no answer in 10 s), closed (the connection went first, e.g. closed as stalled), stream_failed (the request's stream failed: reset, refused, or the protocol unsupported), unreachable, busy (not asked: too many pulls open)",
            m.book_repairs.clone(),
        );
        r.register(
            "book_repair_orders",
            "Orders changed by those pulls, by outcome: added, removed (missing from a complete answer: cancelled or filled while this relay did not hear), refused (by this relay's book, e.g. cancelled here), invalid (failed their checks)",
            m.book_repair_orders.clone(),
        );
        for outcome in [
            "complete",
            "partial",
            "refused",
            "timeout",
            "closed",
            "stream_failed",
            "unreachable",
            "busy",
        ] {
            let _ = m.book_repairs.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        for outcome in ["added", "removed", "refused", "invalid"] {
            let _ = m.book_repair_orders.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        r.register(
            "peer_relay_links_stalled",
            "Connections to peer relays closed because a ping got no answer within 20 s (a stalled link, e.g. a partition): the peer relay is dialed again at once, where TCP would resume the old link only at its next retransmission",
            m.peer_relay_links_stalled.clone(),
        );
        r.register(
            "peer_relays_connected",
            "Configured peer relays connected now",
            m.peer_relays_connected.clone(),
        );
        r.register(
            "peer_relays_configured",
            "Peer relays the operator configured",
            m.peer_relays_configured.clone(),
        );
        r.register(
            "peer_relay_dial_failures",
            "Dials to configured peer relays that failed, by reason (refused, address_in_use, timeout, wrong_peer_id, denied, other)",
            m.peer_relay_dial_failures.clone(),
        );
        r.register(
            "relay_records_accepted",
            "Relay records taken from peer relays, by outcome (new, updated)",
            m.relay_records_accepted.clone(),
        );
        r.register(
            "relay_records_refused",
            "Relay records refused, by reason (a failed check of the record, replayed, own, full)",
            m.relay_records_refused.clone(),
        );
        r.register(
            "relay_records_known",
            "Relay records held now, this relay's own among them",
            m.relay_records_known.clone(),
        );
        r.register(
            "relay_record_pulls",
            "Requests for records sent to peer relays, by outcome (ok, failed)",
            m.relay_record_pulls.clone(),
        );
        r.register(
            "federation_proofs",
            "This relay's proofs to its configured peer relays, by outcome (ok, the refusal reason, failed)",
            m.federation_proofs.clone(),
        );
        r.register(
            "duplicate_connections_reset",
            "Traders that connected again while an older connection was open (a reloaded page), reset so that they reconnect cleanly",
            m.duplicate_connections_reset.clone(),
        );
        r.register(
            "webrtc_outbound_holds",
            "WebRTC-direct connections whose first outbound streams waited for the browser's first stream (a browser hears the relay's data channels only from then), by what ended the wait: inbound or deadline",
            m.webrtc_outbound_holds.clone(),
        );
        r.register(
            "keep_alives_not_forwarded",
            "Keep-alives whose digest disagrees with this relay's book from makers with no order on the pair here, dropped so that they cannot make every page ask for a full repair",
            m.keep_alives_not_forwarded.clone(),
        );
        r.register(
            "auth_attempts",
            "Authentication attempts by method and outcome (reason ok, or why refused)",
            m.auth_attempts.clone(),
        );
        r.register(
            "auth_denials",
            "Operations refused because the peer's level was too low, by operation and the level it had",
            m.auth_denials.clone(),
        );
        r.register(
            "auth_rate_limited",
            "Authentication requests dropped by the per-peer or per-IP rate limit",
            m.auth_rate_limited.clone(),
        );
        r.register(
            "auth_peers",
            "Connected peers by authorization level",
            m.auth_peers.clone(),
        );
        r.register(
            "auth_pending_challenges",
            "Challenges issued and not yet answered",
            m.auth_pending_challenges.clone(),
        );
        r.register(
            "bans",
            "Bans and unbans through the admin API",
            m.bans.clone(),
        );
        r.register(
            "banned_peers",
            "Peers banned now (config and admin API)",
            m.banned_peers.clone(),
        );
        r.register(
            "audit_events_dropped",
            "Security audit events not written because of the audit log's rate limit",
            m.audit_events_dropped.clone(),
        );
        m.create_known_series();
        r.register(
            "build",
            "Relay build information",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        m
    }

    /// Creates every series whose label values are known in advance, at 0, so that rates and
    /// dashboards show a flat zero rather than "no data" until the first event.
    fn create_known_series(&self) {
        use Transport::*;
        for transport in [tcp, websocket, webrtc_direct] {
            for direction in [Direction::inbound, Direction::outbound] {
                let _ = self.connections_opened.get_or_create(&ConnectionLabels {
                    transport,
                    direction,
                });
            }
            let _ = self
                .connections_closed
                .get_or_create(&TransportLabels { transport });
            let _ = self
                .connections_active
                .get_or_create(&TransportLabels { transport });
        }
        for reason in HTTP_REFUSAL_REASONS {
            let _ = self
                .http_connections_refused
                .get_or_create(&Self::reason(*reason));
        }
        for reason in HTTP_DROP_REASONS {
            let _ = self
                .http_connections_dropped
                .get_or_create(&Self::reason(*reason));
        }
        for reason in CONNECTION_DENIAL_REASONS {
            let _ = self
                .connections_denied
                .get_or_create(&Self::reason(*reason));
        }
        for reason in RELAY_DENIAL_REASONS {
            let _ = self
                .reservations_denied
                .get_or_create(&Self::reason(*reason));
            let _ = self.circuits_denied.get_or_create(&Self::reason(*reason));
        }
        let _ = self
            .circuits_denied
            .get_or_create(&Self::reason("destination_unreachable"));
        for reason in ["closed", "timed_out"] {
            let _ = self.reservations_ended.get_or_create(&Self::reason(reason));
        }
        for reason in ["ok", "error"] {
            let _ = self.circuits_closed.get_or_create(&Self::reason(reason));
        }
        for kind in ["order", "cancel", "keep_alive"] {
            let _ = self.order_messages_accepted.get_or_create(&KindLabels {
                kind: kind.to_string(),
            });
        }
        for reason in darkswap_proto::order::OrderReject::ALL {
            let _ = self
                .order_messages_rejected
                .get_or_create(&Self::reason(reason.as_str()));
        }
        let _ = self
            .order_messages_rejected
            .get_or_create(&Self::reason("unauthorized"));
        for reason in ["expired", "maker_gone"] {
            let _ = self.orders_removed.get_or_create(&Self::reason(reason));
        }
        for reason in darkswap_relays::SetRefusal::labels() {
            let _ = self
                .relay_records_refused
                .get_or_create(&Self::reason(reason));
        }
        for reason in [
            "refused",
            "address_in_use",
            "timeout",
            "wrong_peer_id",
            "denied",
            "other",
        ] {
            let _ = self
                .peer_relay_dial_failures
                .get_or_create(&Self::reason(reason));
        }
        for outcome in ["new", "updated"] {
            let _ = self.relay_records_accepted.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        for outcome in ["ok", "failed"] {
            let _ = self.relay_record_pulls.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        for outcome in ["ok", "failed", "not_allowed", "bad_record"] {
            let _ = self.federation_proofs.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        // Every method's success, and every refusal of the methods a client answers or presents.
        use darkswap_auth::Method;
        for method in Method::ALL {
            let _ = self.auth_attempts.get_or_create(&AuthLabels {
                method: method.label().into(),
                reason: "ok".into(),
            });
        }
        for method in [
            Method::SharedKey,
            Method::Identity,
            Method::Token,
            Method::Relay,
        ] {
            for reason in darkswap_auth::RefuseReason::ALL {
                let _ = self.auth_attempts.get_or_create(&AuthLabels {
                    method: method.label().into(),
                    reason: reason.label().into(),
                });
            }
        }
        for scope in ["peer", "ip"] {
            let _ = self.auth_rate_limited.get_or_create(&ScopeLabels {
                scope: scope.into(),
            });
        }
        for level in darkswap_auth::Level::ALL {
            let _ = self.auth_peers.get_or_create(&LevelLabels {
                level: level.label().into(),
            });
        }
        for op in ["reserve", "open_circuit", "publish_order", "connect"] {
            let _ = self.auth_denials.get_or_create(&DenialLabels {
                operation: op.into(),
                level: "anonymous".into(),
            });
        }
        for action in ["ban", "unban"] {
            let _ = self.bans.get_or_create(&ActionLabels {
                action: action.into(),
            });
        }
        for outcome in ["ok", "refused", "rate_limited"] {
            let _ = self.book_sync_requests.get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            });
        }
    }

    pub fn reason(reason: impl Into<String>) -> ReasonLabels {
        ReasonLabels {
            reason: reason.into(),
        }
    }
}

/// The metrics label of a circuit relay v2 status code.
pub fn relay_status_label(status: libp2p::relay::StatusCode) -> &'static str {
    match status {
        libp2p::relay::StatusCode::OK => "ok",
        libp2p::relay::StatusCode::ReservationRefused => "reservation_refused",
        libp2p::relay::StatusCode::ResourceLimitExceeded => "resource_limit_exceeded",
        libp2p::relay::StatusCode::PermissionDenied => "permission_denied",
        libp2p::relay::StatusCode::ConnectionFailed => "connection_failed",
        libp2p::relay::StatusCode::NoReservation => "no_reservation",
        libp2p::relay::StatusCode::MalformedMessage => "malformed_message",
        libp2p::relay::StatusCode::UnexpectedMessage => "unexpected_message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_conventions() {
        let mut registry = Registry::default();
        let m = RelayMetrics::register(&mut registry);
        m.reservations_denied
            .get_or_create(&RelayMetrics::reason("resource_limit_exceeded"))
            .inc();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains(
            "darkswap_relay_reservations_denied_total{reason=\"resource_limit_exceeded\"} 1"
        ));
        assert!(text.contains("darkswap_relay_build_info{version="));
        assert!(text.contains("# HELP darkswap_relay_circuits_active Circuits open now"));
    }
}
