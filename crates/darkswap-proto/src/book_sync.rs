//! `/darkswap/book-sync/1`: a joiner asks a relay for the live orders of a pair, page by page.
//!
//! ```proto
//! message BookSyncRequest {        // at most MAX_BOOK_SYNC_REQUEST_BYTES
//!   string pair = 1;               // canonical BASE/QUOTE
//!   bytes maker = 2;               // optional: only this maker's orders (PeerId bytes)
//!   bytes after = 3;               // optional: order id to continue after (16 bytes)
//!   uint32 limit = 4;              // at most MAX_BOOK_SYNC_PAGE
//! }
//! message BookSyncResponse {       // at most MAX_BOOK_SYNC_RESPONSE_BYTES
//!   repeated bytes orders = 1;     // signed order messages exactly as gossiped, by order id
//!   bool more = 2;                 // ask again with `after` = the last order's id
//!   string error = 3;              // set when the request was refused
//!   repeated Refusal refused = 4;  // to a maker asking for its own orders: what was refused
//! }
//! message Refusal { bytes order_id = 1; string reason = 2; }  // reason: an OrderReject label
//! ```
//!
//! Gossip tells a publisher nothing when a relay refuses its message, so a maker that asks for
//! its own orders (`maker` = itself) also learns which of its recent orders on the pair the relay
//! refused and why (at most [`MAX_REFUSALS`]; the relay keeps them a minute).
//!
//! The orders are the makers' own signed messages, so a client verifies every one of them
//! itself: a relay can withhold orders but cannot forge or alter them.

use darkswap_orderbook::{OrderId, Pair};
use libp2p_identity::PeerId;
use prost::Message as _;

use crate::order::MAX_ORDER_MESSAGE_BYTES;

/// Refusals in one response, at most.
pub const MAX_REFUSALS: usize = 16;
/// Longest refusal reason, in bytes (an [`OrderReject`](crate::order::OrderReject) label).
pub const MAX_REFUSAL_REASON_BYTES: usize = 32;

/// The book-sync protocol's name.
pub const BOOK_SYNC_PROTOCOL: &str = "/darkswap/book-sync/1";
/// Orders per page: 1,000 orders of ~250 bytes keep a page near 256 KiB.
pub const MAX_BOOK_SYNC_PAGE: u32 = 1_000;
/// Largest request accepted, in bytes, checked before decoding.
pub const MAX_BOOK_SYNC_REQUEST_BYTES: u64 = 256;
/// Largest response accepted, in bytes, checked before decoding: a full page of orders at
/// their cap ([`MAX_ORDER_MESSAGE_BYTES`]) with 8 bytes of framing each, plus 1 KiB for the rest
/// (about 1 MiB in all).
pub const MAX_BOOK_SYNC_RESPONSE_BYTES: u64 =
    MAX_BOOK_SYNC_PAGE as u64 * (MAX_ORDER_MESSAGE_BYTES as u64 + 8) + 1024;

/// A validated request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookSyncRequest {
    /// The pair whose orders are wanted.
    pub pair: Pair,
    /// Only this maker's orders; `None` for every maker's.
    pub maker: Option<PeerId>,
    /// Start after this order id (the last one of the previous page); `None` for the first page.
    pub after: Option<OrderId>,
    /// Most orders wanted in this page; decoding clamps it to 1..=[`MAX_BOOK_SYNC_PAGE`].
    pub limit: u32,
}

/// A response: the signed messages are verified by the receiver, one by one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BookSyncResponse {
    /// The makers' signed order messages, exactly as gossiped, sorted by order id: at most
    /// [`MAX_BOOK_SYNC_PAGE`] of them, each at most [`MAX_ORDER_MESSAGE_BYTES`].
    pub orders: Vec<Vec<u8>>,
    /// More orders follow: ask again with `after` set to the last order's id.
    pub more: bool,
    /// Why the relay refused the request; `None` when it answered.
    pub error: Option<String>,
    /// For a maker asking for its own orders: its recent orders on the pair that the relay
    /// refused, with the [`OrderReject`](crate::order::OrderReject) label saying why.
    pub refused: Vec<(OrderId, String)>,
}

/// Why a book-sync frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BookSyncError {
    /// The frame is over [`MAX_BOOK_SYNC_REQUEST_BYTES`] (a request) or
    /// [`MAX_BOOK_SYNC_RESPONSE_BYTES`] (a response); checked before parsing.
    #[error("frame of {len} bytes exceeds the {max} allowed")]
    TooLarge {
        /// The frame's length, in bytes.
        len: usize,
        /// The cap it exceeds, in bytes.
        max: u64,
    },
    /// Not a protobuf message of the expected kind, or a response with more than
    /// [`MAX_BOOK_SYNC_PAGE`] orders or an order over [`MAX_ORDER_MESSAGE_BYTES`].
    #[error("malformed book-sync frame")]
    Malformed,
    /// The request's pair does not parse as a pair.
    #[error("invalid pair")]
    BadPair,
    /// The request's maker is set but is not a valid PeerId.
    #[error("invalid maker id")]
    BadMaker,
    /// The request's `after` is set but is not 16 bytes long.
    #[error("invalid order id")]
    BadOrderId,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RequestWire {
    #[prost(string, tag = "1")]
    pair: String,
    #[prost(bytes = "vec", tag = "2")]
    maker: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    after: Vec<u8>,
    #[prost(uint32, tag = "4")]
    limit: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResponseWire {
    #[prost(bytes = "vec", repeated, tag = "1")]
    orders: Vec<Vec<u8>>,
    #[prost(bool, tag = "2")]
    more: bool,
    #[prost(string, tag = "3")]
    error: String,
    #[prost(message, repeated, tag = "4")]
    refused: Vec<RefusalWire>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct RefusalWire {
    #[prost(bytes = "vec", tag = "1")]
    order_id: Vec<u8>,
    #[prost(string, tag = "2")]
    reason: String,
}

impl BookSyncRequest {
    /// The protobuf encoding (`None` fields are sent empty).
    pub fn encode(&self) -> Vec<u8> {
        RequestWire {
            pair: self.pair.to_string(),
            maker: self.maker.map(|m| m.to_bytes()).unwrap_or_default(),
            after: self.after.map(|a| a.0.to_vec()).unwrap_or_default(),
            limit: self.limit,
        }
        .encode_to_vec()
    }

    /// Decodes a request; the limit is clamped to [`MAX_BOOK_SYNC_PAGE`].
    pub fn decode(bytes: &[u8]) -> Result<Self, BookSyncError> {
        if bytes.len() as u64 > MAX_BOOK_SYNC_REQUEST_BYTES {
            return Err(BookSyncError::TooLarge {
                len: bytes.len(),
                max: MAX_BOOK_SYNC_REQUEST_BYTES,
            });
        }
        let wire = RequestWire::decode(bytes).map_err(|_| BookSyncError::Malformed)?;
        let pair = Pair::parse(&wire.pair).map_err(|_| BookSyncError::BadPair)?;
        let maker = if wire.maker.is_empty() {
            None
        } else {
            Some(PeerId::from_bytes(&wire.maker).map_err(|_| BookSyncError::BadMaker)?)
        };
        let after = if wire.after.is_empty() {
            None
        } else {
            Some(OrderId(
                wire.after
                    .as_slice()
                    .try_into()
                    .map_err(|_| BookSyncError::BadOrderId)?,
            ))
        };
        Ok(BookSyncRequest {
            pair,
            maker,
            after,
            limit: wire.limit.clamp(1, MAX_BOOK_SYNC_PAGE),
        })
    }
}

impl BookSyncResponse {
    /// The protobuf encoding. Not capped here: the sender keeps to the caps that
    /// [`BookSyncResponse::decode`] checks.
    pub fn encode(&self) -> Vec<u8> {
        ResponseWire {
            orders: self.orders.clone(),
            more: self.more,
            error: self.error.clone().unwrap_or_default(),
            refused: self
                .refused
                .iter()
                .map(|(id, reason)| RefusalWire {
                    order_id: id.0.to_vec(),
                    reason: reason.clone(),
                })
                .collect(),
        }
        .encode_to_vec()
    }

    /// Decodes a response. Each order is capped here; its signature is checked by the caller.
    pub fn decode(bytes: &[u8]) -> Result<Self, BookSyncError> {
        if bytes.len() as u64 > MAX_BOOK_SYNC_RESPONSE_BYTES {
            return Err(BookSyncError::TooLarge {
                len: bytes.len(),
                max: MAX_BOOK_SYNC_RESPONSE_BYTES,
            });
        }
        let wire = ResponseWire::decode(bytes).map_err(|_| BookSyncError::Malformed)?;
        if wire.orders.len() > MAX_BOOK_SYNC_PAGE as usize
            || wire
                .orders
                .iter()
                .any(|o| o.len() > MAX_ORDER_MESSAGE_BYTES)
            || wire.refused.len() > MAX_REFUSALS
        {
            return Err(BookSyncError::Malformed);
        }
        let refused = wire
            .refused
            .into_iter()
            .map(|r| {
                let id = OrderId(
                    r.order_id
                        .as_slice()
                        .try_into()
                        .map_err(|_| BookSyncError::BadOrderId)?,
                );
                if r.reason.is_empty()
                    || r.reason.len() > MAX_REFUSAL_REASON_BYTES
                    || !r
                        .reason
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_')
                {
                    return Err(BookSyncError::Malformed);
                }
                Ok((id, r.reason))
            })
            .collect::<Result<_, _>>()?;
        Ok(BookSyncResponse {
            orders: wire.orders,
            more: wire.more,
            error: (!wire.error.is_empty()).then_some(wire.error),
            refused,
        })
    }
}

crate::impl_frame!(BookSyncRequest, MAX_BOOK_SYNC_REQUEST_BYTES, BookSyncError);
crate::impl_frame!(
    BookSyncResponse,
    MAX_BOOK_SYNC_RESPONSE_BYTES,
    BookSyncError
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_clamps() {
        let request = BookSyncRequest {
            pair: Pair::parse("RUNE:DOG/BTC").unwrap(),
            maker: Some(PeerId::random()),
            after: Some(OrderId([3; 16])),
            limit: 50_000,
        };
        let decoded = BookSyncRequest::decode(&request.encode()).unwrap();
        assert_eq!(decoded.limit, MAX_BOOK_SYNC_PAGE);
        assert_eq!(decoded.maker, request.maker);
        assert_eq!(decoded.after, request.after);
        let response = BookSyncResponse {
            orders: vec![vec![1, 2, 3]; 3],
            more: true,
            error: None,
            refused: vec![(OrderId([9; 16]), "address_over_cap".into())],
        };
        assert_eq!(
            BookSyncResponse::decode(&response.encode()).unwrap(),
            response
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        assert_eq!(
            BookSyncRequest::decode(&[0u8; 300]),
            Err(BookSyncError::TooLarge { len: 300, max: 256 })
        );
        let bad_pair = RequestWire {
            pair: "nope".into(),
            ..Default::default()
        };
        assert_eq!(
            BookSyncRequest::decode(&bad_pair.encode_to_vec()),
            Err(BookSyncError::BadPair)
        );
        let bad_after = RequestWire {
            pair: "BTC/USDT".into(),
            after: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(
            BookSyncRequest::decode(&bad_after.encode_to_vec()),
            Err(BookSyncError::BadOrderId)
        );
        let oversized_order = ResponseWire {
            orders: vec![vec![0; MAX_ORDER_MESSAGE_BYTES + 1]],
            ..Default::default()
        };
        assert_eq!(
            BookSyncResponse::decode(&oversized_order.encode_to_vec()),
            Err(BookSyncError::Malformed)
        );
        let refusal = |order_id: Vec<u8>, reason: &str| ResponseWire {
            refused: vec![RefusalWire {
                order_id,
                reason: reason.into(),
            }],
            ..Default::default()
        };
        for (wire, error) in [
            (refusal(vec![1; 15], "over_cap"), BookSyncError::BadOrderId),
            (refusal(vec![1; 16], ""), BookSyncError::Malformed),
            (refusal(vec![1; 16], "Over Cap"), BookSyncError::Malformed),
            (
                refusal(vec![1; 16], &"x".repeat(33)),
                BookSyncError::Malformed,
            ),
            (
                ResponseWire {
                    refused: vec![
                        RefusalWire {
                            order_id: vec![1; 16],
                            reason: "over_cap".into()
                        };
                        MAX_REFUSALS + 1
                    ],
                    ..Default::default()
                },
                BookSyncError::Malformed,
            ),
        ] {
            assert_eq!(BookSyncResponse::decode(&wire.encode_to_vec()), Err(error));
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048)) {
            let _ = BookSyncRequest::decode(&bytes);
            let _ = BookSyncResponse::decode(&bytes);
        }
    }
}
