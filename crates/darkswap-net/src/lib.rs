//! The DarkSwap trader's libp2p node, the same code in the browser (wasm32) and in native peers
//! (the `darkswap` CLI, tests, bots).
//!
//! A [`Node`] dials one relay, keeps a circuit-relay reservation there so that other traders can
//! reach it at `<relay>/p2p-circuit/p2p/<us>`, asks the relay who else is reachable, and exchanges
//! direct messages with them. It reconnects by itself with exponential backoff. The application
//! drives it through a [`NodeHandle`] and reads [`NodeEvent`]s from a bounded channel.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod addr;
pub mod auth;
mod behaviour;
pub mod codec;
mod config;
mod event;
pub mod gossip;
#[cfg(not(target_arch = "wasm32"))]
pub mod keyfile;
pub mod metrics;
mod node;
pub mod persist;
#[cfg(target_arch = "wasm32")]
pub mod relay_info;
mod time;
mod trade;
mod trading;
mod transport;

pub use addr::{
    circuit_addr, relay_peer_id, sort_for_dialing, transport_kind, AddrError, TransportKind,
};
pub use config::NodeConfig;
pub use event::{AuthEvent, MessageId, NodeEvent, RelayStatus};
pub use node::{new_node, Command, Node, NodeError, NodeHandle};
pub use time::unix_time_ms;
pub use trade::{E2eEvent, Trade, TradeRole, TradeState, MAX_OPEN_TRADES, MAX_TRADES};
pub use trading::{
    BookView, OrderView, OwnOrder, TradingEvent, BOOK_VIEW_LEVELS, BOOK_VIEW_ORDERS,
    MAX_WATCHED_PAIRS,
};

/// The libp2p version this crate is built on, for consumers that need its types (PeerId,
/// Multiaddr, Keypair) without depending on it twice.
pub use libp2p;
