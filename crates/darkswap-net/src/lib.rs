//! The DarkSwap trader's libp2p node, the same code in the browser (wasm32) and in native peers
//! (the `darkswap` CLI, tests, bots).
//!
//! A [`Node`] dials one relay, keeps a circuit-relay reservation there so that other traders can
//! reach it at `<relay>/p2p-circuit/p2p/<us>`, asks the relay who else is reachable, and exchanges
//! direct messages with them. It reconnects by itself with exponential backoff. The application
//! drives it through a [`NodeHandle`] and reads [`NodeEvent`]s from a bounded channel.
//!
//! Trading is two sans-IO state machines that the node drives: [`orders::Orders`] (the verified
//! books of the pairs we follow and our own orders) and [`negotiation::Negotiation`] (trades,
//! both roles, sealed in end-to-end sessions). Each takes inputs with the time and returns the
//! actions for the node to carry out on the network and the events for the application; their
//! unit tests need no network.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod addr;
mod behaviour;
#[cfg(target_arch = "wasm32")]
mod browser_ws;
mod config;
mod direct;
mod event;
mod handle;
pub mod metrics;
pub mod negotiation;
mod node;
pub mod orders;
pub mod persist;
mod relay_auth;
#[cfg(target_arch = "wasm32")]
pub mod relay_info;
mod relay_link;
mod relay_probe;
pub mod saved;
mod standby;
mod transport;

pub use addr::{order_for_page, sort_for_dialing, url_host};
pub use config::NodeConfig;
pub use darkswap_proto::addr::{
    circuit_addr, relay_peer_id, transport_kind, AddrError, TransportKind,
};
pub use darkswap_proto::unix_time_ms;
pub use darkswap_relays::{Choice, Failure, PoolConfig, RelayView, SavedPool};
pub use direct::QueueError;
pub use event::{AuthEvent, MessageId, NodeEvent, RelayStatus, TradingError, TradingEvent};
pub use handle::{Command, NodeError, NodeHandle};
pub use negotiation::{
    new_trade_id, trade_id_hex, E2eEvent, TakeError, TakeSettlement, Trade, TradeRole, TradeState,
    MAX_OPEN_TRADES, MAX_TRADES,
};
pub use node::{new_node, Node, PeerDialError};
pub use orders::tape::TapeFill;
pub use orders::{
    BookView, OrderView, OwnOrder, BOOK_VIEW_LEVELS, BOOK_VIEW_ORDERS, MAX_WATCHED_PAIRS,
};
pub use relay_link::RelayAddrError;
pub use relay_probe::PoolReport;
pub use transport::BuildError;

/// The libp2p version this crate is built on, for consumers that need its types (PeerId,
/// Multiaddr, Keypair) without depending on it twice.
pub use libp2p;
