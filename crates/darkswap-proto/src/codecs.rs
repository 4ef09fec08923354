//! The request-response codec of each DarkSwap protocol: [`FrameCodec`] over the protocol's
//! request and response (the messages live in their own modules, the framing in `frame`).

use crate::auth::{AuthRequest, AuthResponse};
use crate::book_sync::{BookSyncRequest, BookSyncResponse};
use crate::directory::{DirectoryRequest, DirectoryResponse};
use crate::frame::FrameCodec;
use crate::message::{DirectAck, DirectMessage};
use crate::relay_record::{RelayRecordsRequest, RelayRecordsResponse};
use crate::trade_envelope::TradeEnvelope;

/// `/darkswap/book-sync/1`.
pub type BookSyncCodec = FrameCodec<BookSyncRequest, BookSyncResponse>;
/// `/darkswap/trade/2`: envelopes both ways.
pub type TradeCodec = FrameCodec<TradeEnvelope, TradeEnvelope>;
/// `/darkswap/auth/1`.
pub type AuthCodec = FrameCodec<AuthRequest, AuthResponse>;
/// `/darkswap/directory/2`.
pub type DirectoryCodec = FrameCodec<DirectoryRequest, DirectoryResponse>;
/// `/darkswap/msg/2`.
pub type MessageCodec = FrameCodec<DirectMessage, DirectAck>;
/// `/darkswap/relay-records/1`.
pub type RelayRecordsCodec = FrameCodec<RelayRecordsRequest, RelayRecordsResponse>;
