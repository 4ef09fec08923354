//! DarkSwap wire messages and protocol names.
//!
//! Everything a DarkSwap peer or relay puts on the wire is declared here, once, so that the
//! browser, the CLI and the relay cannot disagree. Every message has a size cap that a decoder
//! applies *before* it parses, and every protocol name carries a version.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

#[cfg(feature = "libp2p")]
pub mod addr;
pub mod book_sync;
pub mod directory;
pub mod frame;
#[cfg(feature = "libp2p")]
pub mod gossip;
pub mod limits;
pub mod message;
pub mod order;
pub mod relay_info;
mod time;
pub mod trade;
pub mod trade_envelope;

pub use directory::{DirectoryRequest, DirectoryResponse, MAX_DIRECTORY_PEERS};
pub use message::{DirectAck, DirectMessage, MessageError, MAX_MESSAGE_TEXT_BYTES};
pub use relay_info::{RelayInfo, RelayInfoError, MAX_RELAY_INFO_BYTES};
pub use time::unix_time_ms;

/// Direct peer-to-peer messages (hello / ping with round-trip time), request-response.
pub const MESSAGE_PROTOCOL: &str = "/darkswap/msg/1";
/// Ask a relay which peers currently hold a reservation on it, request-response.
pub const DIRECTORY_PROTOCOL: &str = "/darkswap/directory/1";
/// Sent in identify so peers can tell a DarkSwap node from any other libp2p node.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/darkswap/1.0.0";

/// Cap on one encoded `/darkswap/msg/1` request; the text cap plus room for the JSON frame.
pub const MAX_MESSAGE_FRAME_BYTES: u64 = MAX_MESSAGE_TEXT_BYTES as u64 + 1024;
/// Cap on one encoded `/darkswap/msg/1` response.
pub const MAX_ACK_FRAME_BYTES: u64 = 1024;
/// Cap on one encoded directory request (it has no fields).
pub const MAX_DIRECTORY_REQUEST_BYTES: u64 = 256;
/// Cap on one encoded directory response: `MAX_DIRECTORY_PEERS` base58 PeerIds (≤ 60 bytes each
/// quoted) plus the frame.
pub const MAX_DIRECTORY_RESPONSE_BYTES: u64 = MAX_DIRECTORY_PEERS as u64 * 64 + 1024;
