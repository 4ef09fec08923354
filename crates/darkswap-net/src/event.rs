//! What a node tells the application.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use darkswap_auth::{Method, RefuseReason};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::addr::TransportKind;
use darkswap_proto::auth::{AdminEntry, Grant};

use crate::negotiation::{E2eEvent, NegotiationEvent, TakeError, Trade};
use crate::orders::{BookView, OrdersError, OrdersEvent, OwnOrder};

/// Identifies one outgoing message, so the application can match delivery reports.
pub type MessageId = u64;

/// The state of our link to the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayStatus {
    /// Dialing; `attempt` counts from 1 since the last success.
    Connecting { attempt: u32 },
    /// Connected, reservation requested.
    Connected {
        transport: TransportKind,
        addr: Multiaddr,
    },
    /// Holding a reservation: other traders can reach us at `circuit_addr`.
    Reserved {
        transport: TransportKind,
        circuit_addr: Multiaddr,
    },
    /// Lost or failed; retrying after `retry_in`.
    Failed { reason: String, retry_in: Duration },
}

impl RelayStatus {
    /// A short machine-readable name (used in the UI's `data-state`).
    pub fn name(&self) -> &'static str {
        match self {
            RelayStatus::Connecting { .. } => "connecting",
            RelayStatus::Connected { .. } => "connected",
            RelayStatus::Reserved { .. } => "reserved",
            RelayStatus::Failed { .. } => "error",
        }
    }
}

/// Everything a node reports.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEvent {
    Relay(RelayStatus),
    /// Round trip to the relay (libp2p ping).
    RelayRtt(Duration),
    /// Peers reachable through the relay (without ourselves); sent when the list changes.
    Peers {
        peers: Vec<PeerId>,
        total: u64,
    },
    PeerConnected {
        peer: PeerId,
        transport: TransportKind,
    },
    PeerDisconnected {
        peer: PeerId,
    },
    PeerConnectFailed {
        peer: PeerId,
        reason: String,
    },
    /// Round trip to a connected peer (libp2p ping).
    PeerRtt {
        peer: PeerId,
        rtt: Duration,
    },
    MessageReceived {
        from: PeerId,
        text: String,
        sent_at_ms: u64,
    },
    /// The peer acknowledged our message; `rtt` is request to acknowledgement.
    MessageDelivered {
        id: MessageId,
        to: PeerId,
        rtt: Duration,
        accepted: bool,
        reason: Option<String>,
    },
    MessageFailed {
        id: MessageId,
        to: PeerId,
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
    Authenticating { method: Method },
    /// The relay granted a level until the grant's expiry; its token is worth caching for the
    /// next connection, and the node keeps under its market limits.
    Granted(Grant),
    /// The relay said no; we ask again after `retry_in`. Without a grant the relay lets us read
    /// the order book but not reserve, trade or publish.
    Refused {
        reason: RefuseReason,
        retry_in: Duration,
    },
    /// The relay does not speak `/darkswap/auth/1` (an older relay): we go on, and the relay
    /// decides what we may do.
    Unsupported,
    /// The answer to an admin request.
    Admin {
        message: String,
        entries: Vec<AdminEntry>,
        refused: Option<RefuseReason>,
    },
}

/// Why a place, cancel, watch or take command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradingError {
    #[error(transparent)]
    Orders(#[from] OrdersError),
    #[error(transparent)]
    Take(#[from] TakeError),
}

/// What the order book and the trade negotiation report (wrapped in [`NodeEvent::Trading`]).
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
    /// Our order left the book by itself (expired, filled), or could not be published.
    OrderWithdrawn {
        id: OrderId,
        pair: Pair,
        reason: String,
    },
    /// A place, cancel, watch or take command was refused.
    OrderFailed(TradingError),
    /// A trade was created or changed state.
    Trade(Trade),
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
    E2e(E2eEvent),
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
            OrdersEvent::MessageRejected { reason } => TradingEvent::MessageRejected { reason },
        }
    }
}

impl From<NegotiationEvent> for TradingEvent {
    fn from(event: NegotiationEvent) -> Self {
        match event {
            NegotiationEvent::Trade(t) => TradingEvent::Trade(*t),
            NegotiationEvent::E2e(e) => TradingEvent::E2e(e),
            NegotiationEvent::TakeFailed(e) => TradingEvent::OrderFailed(e.into()),
            NegotiationEvent::MessageRejected { reason } => {
                TradingEvent::MessageRejected { reason }
            }
        }
    }
}
