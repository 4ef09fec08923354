//! DarkSwap wire messages and protocol names.
//!
//! Everything a DarkSwap peer or relay puts on the wire is declared here, once, so that the
//! browser, the CLI and the relay cannot disagree. Every message has a size cap that a decoder
//! applies *before* it parses, and every protocol name carries a version.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

#[cfg(feature = "libp2p")]
pub mod addr;
pub mod auth;
pub mod book_sync;
#[cfg(feature = "libp2p")]
pub mod codecs;
pub mod directory;
pub mod frame;
#[cfg(feature = "libp2p")]
pub mod gossip;
pub mod limits;
pub mod message;
pub mod order;
pub mod order_batch;
pub mod relay_info;
pub mod relay_record;
pub mod settle;
mod text;
mod time;
pub mod trade;
pub mod trade_envelope;

pub use directory::{
    DirectoryRequest, DirectoryResponse, DIRECTORY_PROTOCOL, MAX_DIRECTORY_PEERS,
    MAX_DIRECTORY_REQUEST_BYTES, MAX_DIRECTORY_RESPONSE_BYTES,
};
pub use message::{
    DirectAck, DirectMessage, MessageError, MAX_ACK_FRAME_BYTES, MAX_MESSAGE_FRAME_BYTES,
    MAX_MESSAGE_TEXT_BYTES, MESSAGE_PROTOCOL,
};
pub use relay_info::{ChainInfo, RelayInfo, RelayInfoError, MAX_RELAY_INFO_BYTES};
pub use time::unix_time_ms;

/// Sent in identify so peers can tell a DarkSwap node from any other libp2p node.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/darkswap/1.0.0";
