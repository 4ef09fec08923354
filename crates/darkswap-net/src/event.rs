//! What a node tells the application.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use darkswap_auth::{Method, RefuseReason};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::addr::TransportKind;
use darkswap_proto::auth::{AdminEntry, Grant};
use darkswap_proto::trade::TradeId;

use crate::negotiation::{E2eEvent, NegotiationEvent, TakeError, Trade};
use crate::orders::{BookView, OrdersError, OrdersEvent, OwnOrder};

/// Identifies one outgoing message, so the application can match delivery reports.
pub type MessageId = u64;

/// The state of our link to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayStatus {
    /// Dialing; `attempt` counts from 1 since the last success.
    Connecting {
        /// Which attempt this is.
        attempt: u32,
    },
    /// Connected, reservation requested.
    Connected {
        /// How the connection is carried (TCP, WebSocket, WebRTC-direct).
        transport: TransportKind,
        /// The relay's address we are connected on, ending in `/p2p/<relay>`.
        addr: Multiaddr,
    },
    /// Holding a reservation: other traders can reach us at `circuit_addr`.
    Reserved {
        /// How the connection to the relay is carried.
        transport: TransportKind,
        /// `<relay addr>/p2p-circuit/p2p/<us>`.
        circuit_addr: Multiaddr,
    },
    /// Lost or failed; retrying after `retry_in`.
    Failed {
        /// What went wrong, in words.
        reason: String,
        /// The wait before the next try: a dial when the link was lost or could not be made
        /// (backoff with jitter), a reservation request when only the reservation failed, an
        /// authentication when the relay refused us.
        retry_in: Duration,
    },
    /// The link's relay was lost or refused us, and the link moves to the best other relay of
    /// the pool, dialed at once: our orders are published again there once we are granted.
    FailingOver {
        /// The relay we leave.
        from: PeerId,
        /// The relay we go to.
        to: PeerId,
    },
}

impl RelayStatus {
    /// A short machine-readable name (used in the UI's `data-state`).
    pub fn name(&self) -> &'static str {
        match self {
            RelayStatus::Connecting { .. } => "connecting",
            RelayStatus::Connected { .. } => "connected",
            RelayStatus::Reserved { .. } => "reserved",
            RelayStatus::Failed { .. } => "error",
            RelayStatus::FailingOver { .. } => "failing-over",
        }
    }
}

/// Everything a node reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    /// The link to the relay changed state.
    Relay(RelayStatus),
    /// Round trip to the relay (libp2p ping).
    RelayRtt(Duration),
    /// Where other traders reach us now: our circuit address on each relay that holds a
    /// reservation of ours, the link's first, then the standbys' (see
    /// `NodeConfig::reservations`). Sent when the list changes; empty when we hold none.
    Reachable {
        /// `<relay addr>/p2p-circuit/p2p/<us>`, one per relay.
        circuit_addrs: Vec<Multiaddr>,
    },
    /// The relay pool changed: the relays known (the serving one, and those from checked
    /// records), best first, and the pool to keep for the next session.
    RelayPool(crate::relay_probe::PoolReport),
    /// Peers reachable through the relay (without ourselves); sent when the list changes.
    Peers {
        /// Traders holding a reservation at the relay, sorted by PeerId: the relay lists the
        /// most recent ones, at most
        /// [`MAX_DIRECTORY_PEERS`](darkswap_proto::directory::MAX_DIRECTORY_PEERS).
        peers: Vec<PeerId>,
        /// How many peers hold a reservation at the relay in all, us included (may exceed
        /// what is listed).
        total: u64,
    },
    /// A connection to another trader opened (reported for each connection, so possibly again
    /// for a peer already connected).
    PeerConnected {
        /// The trader.
        peer: PeerId,
        /// How the connection is carried: `Relayed` through the relay's circuit.
        transport: TransportKind,
    },
    /// The last connection to another trader closed.
    PeerDisconnected {
        /// The trader.
        peer: PeerId,
    },
    /// A dial of another trader could not start (see [`PeerDialError`](crate::PeerDialError))
    /// or did not get through the relay.
    PeerConnectFailed {
        /// The trader.
        peer: PeerId,
        /// Why, in words.
        reason: String,
    },
    /// Round trip to a connected peer (libp2p ping).
    PeerRtt {
        /// The trader.
        peer: PeerId,
        /// The last ping's round trip.
        rtt: Duration,
    },
    /// A trader sent us a text message and we accepted it (an invalid one is refused in our
    /// acknowledgement and not reported).
    MessageReceived {
        /// The sender.
        from: PeerId,
        /// The text: at most
        /// [`MAX_MESSAGE_TEXT_BYTES`](darkswap_proto::message::MAX_MESSAGE_TEXT_BYTES) bytes,
        /// no control characters but newline.
        text: String,
        /// The sender's clock when it sent the message, Unix milliseconds (informational, not
        /// checked).
        sent_at_ms: u64,
    },
    /// The peer acknowledged our message; `rtt` is request to acknowledgement.
    MessageDelivered {
        /// The id [`NodeHandle::send_message`](crate::NodeHandle::send_message) returned.
        id: MessageId,
        /// The recipient.
        to: PeerId,
        /// From sending the request to receiving the acknowledgement.
        rtt: Duration,
        /// Whether the peer accepted the message (it refuses invalid ones).
        accepted: bool,
        /// The peer's reason, when it refused.
        reason: Option<String>,
    },
    /// Our message did not reach the peer: its text was invalid, too many messages were
    /// waiting (see [`QueueError`](crate::QueueError)), the peer could not be dialed or
    /// reached, or the request failed (no answer within
    /// [`NodeConfig::request_timeout`](crate::NodeConfig::request_timeout), connection lost).
    MessageFailed {
        /// The id [`NodeHandle::send_message`](crate::NodeHandle::send_message) returned.
        id: MessageId,
        /// The intended recipient.
        to: PeerId,
        /// Why, in words.
        reason: String,
    },
    /// Order book and own orders.
    Trading(TradingEvent),
    /// Authentication with the relay.
    Auth(AuthEvent),
}

/// Where our authentication with the relay stands.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthEvent {
    /// Proving ourselves (a challenge or a cached token is on its way).
    Authenticating {
        /// The cached token, or our credential's method.
        method: Method,
    },
    /// The relay granted a level until the grant's expiry; its token is worth caching for the
    /// next connection, and the node keeps under its market limits.
    Granted(Grant),
    /// The relay said no; we ask again after `retry_in`. Without a grant the relay lets us read
    /// the order book but not reserve, trade or publish.
    Refused {
        /// The relay's reason.
        reason: RefuseReason,
        /// When we ask again ([`NodeConfig::auth_retry`](crate::NodeConfig::auth_retry)).
        retry_in: Duration,
    },
    /// The relay does not speak `/darkswap/auth/1` (an older relay): we go on, and the relay
    /// decides what we may do.
    Unsupported,
    /// The relay asks new identities for a proof of work (`darkswap_auth::stamp`) that ours
    /// has not done: the node is searching, a slice at a time between network events.
    Working {
        /// The work asked for, in zero bits (2^bits hashes on average).
        bits: u32,
    },
    /// The search found our stamp; the node asks for a fresh challenge and answers with it.
    /// Worth keeping with the identity ([`NodeConfig::identity_stamp`](crate::NodeConfig)): it
    /// never expires and serves every relay that asks for as many bits or fewer.
    Stamped {
        /// The stamp.
        stamp: u64,
        /// The work the stamp proves (at least what was asked).
        bits: u32,
        /// Hashes tried.
        tries: u64,
        /// From the relay's request to the stamp.
        elapsed: Duration,
    },
    /// The answer to an admin request.
    Admin {
        /// The relay's message for the operator, or why the request got no answer.
        message: String,
        /// The listing, for a list request; empty otherwise.
        entries: Vec<AdminEntry>,
        /// Set when nothing was done: the relay's refusal; `Busy` when the request could not
        /// be sent (no relay, too many in flight) or failed; `Malformed` when the relay
        /// answered with something else than an admin answer.
        refused: Option<RefuseReason>,
    },
}

/// Why a place, cancel or watch command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradingError {
    /// The order book refused a watch, place or cancel.
    #[error(transparent)]
    Orders(#[from] OrdersError),
}

/// What the order book and the trade negotiation report (wrapped in [`NodeEvent::Trading`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradingEvent {
    /// A followed pair's book as it is now: after changes (a burst becomes one view, at most
    /// one per pair every 100 ms), or again when the pair is watched again.
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
    /// A place, cancel or watch command was refused.
    OrderFailed(TradingError),
    /// A take was refused before anything was sent.
    TakeFailed {
        /// The id we chose for it.
        trade_id: TradeId,
        /// Why.
        error: TakeError,
    },
    /// A trade was created or changed state.
    Trade(Box<Trade>),
    /// A book sync from the relay finished.
    BookSynced {
        /// The pair synced.
        pair: Pair,
        /// Verified orders the relay sent, over all pages (ours included).
        orders: usize,
        /// From the first request to the last page.
        elapsed: Duration,
    },
    /// The relay refused a book-sync page (over its rate); it is asked for again after
    /// `retry_in`.
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
        /// Which check refused it, from a closed set (an
        /// [`OrderReject`](darkswap_proto::order::OrderReject) label, or a malformed trade
        /// message).
        reason: &'static str,
    },
    /// The end-to-end sessions that carry trades (counted in the client's metrics).
    E2e(E2eEvent),
    /// A settlement message about one of our agreed trades, from its counterparty.
    Settle {
        /// The trade.
        trade_id: TradeId,
        /// Its counterparty, who sent it.
        from: PeerId,
        /// An encoded `darkswap_proto::settle::SettleMessage`, still to be decoded.
        message: Vec<u8>,
    },
    /// A settlement message we sent was not delivered (sent again when the settlement resumes).
    SettleUndelivered {
        /// The trade.
        trade_id: TradeId,
        /// Why.
        reason: String,
    },
}

impl From<OrdersEvent> for TradingEvent {
    fn from(event: OrdersEvent) -> Self {
        match event {
            OrdersEvent::Book(view) => TradingEvent::Book(view),
            OrdersEvent::OrderPlaced(o) => TradingEvent::OrderPlaced(o),
            OrdersEvent::OrderReduced(o) => TradingEvent::OrderReduced(o),
            OrdersEvent::OrderCancelled { id, pair } => TradingEvent::OrderCancelled { id, pair },
            OrdersEvent::OrderWithdrawn { id, pair, reason } => {
                TradingEvent::OrderWithdrawn { id, pair, reason }
            }
            OrdersEvent::Failed(e) => TradingEvent::OrderFailed(e.into()),
            OrdersEvent::BookSynced {
                pair,
                orders,
                elapsed,
            } => TradingEvent::BookSynced {
                pair,
                orders,
                elapsed,
            },
            OrdersEvent::SyncDeferred {
                pair,
                reason,
                retry_in,
            } => TradingEvent::SyncDeferred {
                pair,
                reason,
                retry_in,
            },
            OrdersEvent::MessageRejected { reason } => TradingEvent::MessageRejected { reason },
        }
    }
}

impl From<NegotiationEvent> for TradingEvent {
    fn from(event: NegotiationEvent) -> Self {
        match event {
            NegotiationEvent::Trade(t) => TradingEvent::Trade(t),
            NegotiationEvent::E2e(e) => TradingEvent::E2e(e),
            NegotiationEvent::TakeFailed { trade_id, error } => {
                TradingEvent::TakeFailed { trade_id, error }
            }
            NegotiationEvent::MessageRejected { reason } => {
                TradingEvent::MessageRejected { reason }
            }
            NegotiationEvent::Settle {
                trade_id,
                from,
                message,
            } => TradingEvent::Settle {
                trade_id,
                from,
                message,
            },
            NegotiationEvent::SettleUndelivered { trade_id, reason } => {
                TradingEvent::SettleUndelivered { trade_id, reason }
            }
        }
    }
}
