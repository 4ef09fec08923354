//! The `/darkswap/trade/2` envelope and the associated-data rules of its sealed frames.
//!
//! Every `/darkswap/trade/2` message, request or response, is one [`TradeEnvelope`]: a
//! `darkswap-e2e` handshake message, a frame sealed in the session, or a refusal. A trade
//! message ([`crate::trade`]) never travels in the clear.
//!
//! Associated data of a sealed request: `"/darkswap/trade/2 request taker->maker\0" ‖ taker ‖
//! maker` (PeerId bytes); of its answer: `"/darkswap/trade/2 response maker->taker\0" ‖ taker ‖
//! maker ‖ SHA-256(request frame)`. So a relay on the path cannot move an answer to another
//! request, reflect a frame back to its sender, or pass a frame between two other traders.
//!
//! ```proto
//! message TradeEnvelope { oneof kind { bytes handshake = 1; bytes sealed = 2; uint32 refused = 3; } }
//! ```

use libp2p_identity::PeerId;
use prost::Message as _;
use sha2::{Digest, Sha256};

use crate::trade::{MAX_TRADE_FRAME_BYTES, TRADE_PROTOCOL};

/// Cap on one trade envelope: a sealed trade message (at most [`MAX_TRADE_FRAME_BYTES`]) plus
/// the frame header (12), the inner kind byte (1), the tag (16) and the protobuf framing; a
/// sealed rekey handshake (at most 512 bytes) fits too.
pub const MAX_TRADE_ENVELOPE_BYTES: u64 = MAX_TRADE_FRAME_BYTES + 128;

/// Why a trade envelope was refused without a sealed answer. Unauthenticated (anyone on the
/// path could forge one), so it only ever makes the taker start a new session or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No session with you (it expired, was evicted, or I restarted): handshake again.
    NoSession = 1,
    /// Your frame is from a key epoch I no longer use: handshake again.
    StaleEpoch = 2,
    /// Your frame did not open (altered, replayed, malformed).
    BadFrame = 3,
    /// Your handshake did not verify.
    BadHandshake = 4,
    /// I have no room for another session now (every one carries a live trade): try later.
    Busy = 5,
}

impl Refusal {
    fn from_wire(v: u32) -> Option<Refusal> {
        Some(match v {
            1 => Refusal::NoSession,
            2 => Refusal::StaleEpoch,
            3 => Refusal::BadFrame,
            4 => Refusal::BadHandshake,
            5 => Refusal::Busy,
            _ => return None,
        })
    }

    /// Whether a new session may help (the request was not read).
    pub fn retry_with_new_session(self) -> bool {
        matches!(self, Refusal::NoSession | Refusal::StaleEpoch)
    }
}

/// One `/darkswap/trade/2` message, request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeEnvelope {
    /// A `darkswap-e2e` handshake message (`init` in a request, `resp` in a response).
    Handshake(Vec<u8>),
    /// A frame sealed in the session: a trade message or a rekey message.
    Sealed(Vec<u8>),
    /// The request could not be read (response only).
    Refused(Refusal),
}

/// Why bytes are not a trade envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The envelope (its length in bytes) is over [`MAX_TRADE_ENVELOPE_BYTES`]; checked before
    /// parsing.
    #[error("trade envelope of {0} bytes exceeds {MAX_TRADE_ENVELOPE_BYTES}")]
    TooLarge(usize),
    /// The bytes are not a protobuf envelope.
    #[error("malformed trade envelope: {0}")]
    Malformed(#[from] prost::DecodeError),
    /// A refusal code that is not one of [`Refusal`]'s.
    #[error("unknown refusal code {0}")]
    UnknownRefusal(u32),
    /// No kind is set (the empty message, for one).
    #[error("empty trade envelope")]
    Empty,
}

/// Associated data of a sealed request from `taker` to `maker`.
pub fn request_aad(taker: &PeerId, maker: &PeerId) -> Vec<u8> {
    let mut aad = TRADE_PROTOCOL.as_bytes().to_vec();
    aad.extend_from_slice(b" request taker->maker\0");
    aad.extend_from_slice(&taker.to_bytes());
    aad.extend_from_slice(&maker.to_bytes());
    aad
}

/// Associated data of a sealed answer to the request frame whose SHA-256 is `request_digest`.
pub fn response_aad(taker: &PeerId, maker: &PeerId, request_digest: &[u8; 32]) -> Vec<u8> {
    let mut aad = TRADE_PROTOCOL.as_bytes().to_vec();
    aad.extend_from_slice(b" response maker->taker\0");
    aad.extend_from_slice(&taker.to_bytes());
    aad.extend_from_slice(&maker.to_bytes());
    aad.extend_from_slice(request_digest);
    aad
}

/// SHA-256 of a request frame, bound into its answer's associated data.
pub fn digest(frame: &[u8]) -> [u8; 32] {
    Sha256::digest(frame).into()
}

mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TradeEnvelope {
        #[prost(oneof = "Kind", tags = "1, 2, 3")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(bytes, tag = "1")]
        Handshake(Vec<u8>),
        #[prost(bytes, tag = "2")]
        Sealed(Vec<u8>),
        #[prost(uint32, tag = "3")]
        Refused(u32),
    }
}

impl TradeEnvelope {
    /// The protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self {
            TradeEnvelope::Handshake(b) => wire::Kind::Handshake(b.clone()),
            TradeEnvelope::Sealed(b) => wire::Kind::Sealed(b.clone()),
            TradeEnvelope::Refused(r) => wire::Kind::Refused(*r as u32),
        };
        wire::TradeEnvelope { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes an envelope, refusing anything over the cap before parsing.
    pub fn decode(bytes: &[u8]) -> Result<TradeEnvelope, EnvelopeError> {
        if bytes.len() as u64 > MAX_TRADE_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(bytes.len()));
        }
        match wire::TradeEnvelope::decode(bytes)?.kind {
            Some(wire::Kind::Handshake(b)) => Ok(TradeEnvelope::Handshake(b)),
            Some(wire::Kind::Sealed(b)) => Ok(TradeEnvelope::Sealed(b)),
            Some(wire::Kind::Refused(r)) => Refusal::from_wire(r)
                .map(TradeEnvelope::Refused)
                .ok_or(EnvelopeError::UnknownRefusal(r)),
            None => Err(EnvelopeError::Empty),
        }
    }
}

crate::impl_frame!(TradeEnvelope, MAX_TRADE_ENVELOPE_BYTES, EnvelopeError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_bad_bytes_are_refused_without_panicking() {
        for e in [
            TradeEnvelope::Handshake(vec![1; 200]),
            TradeEnvelope::Sealed(vec![2; 2_000]),
            TradeEnvelope::Refused(Refusal::StaleEpoch),
            TradeEnvelope::Refused(Refusal::Busy),
        ] {
            assert_eq!(TradeEnvelope::decode(&e.encode()), Ok(e.clone()));
            let bytes = e.encode();
            for cut in 0..bytes.len() {
                let _ = TradeEnvelope::decode(&bytes[..cut]);
            }
            for i in 0..bytes.len().min(64) {
                let mut bad = bytes.clone();
                bad[i] ^= 0xa5;
                let _ = TradeEnvelope::decode(&bad);
            }
        }
        assert_eq!(TradeEnvelope::decode(&[]), Err(EnvelopeError::Empty));
        let over = MAX_TRADE_ENVELOPE_BYTES as usize;
        let big = TradeEnvelope::Sealed(vec![0; over]).encode();
        assert_eq!(
            TradeEnvelope::decode(&big),
            Err(EnvelopeError::TooLarge(big.len()))
        );
        // A sealed frame carrying the largest trade message fits.
        let largest = TradeEnvelope::Sealed(vec![0; MAX_TRADE_FRAME_BYTES as usize + 29]);
        assert_eq!(TradeEnvelope::decode(&largest.encode()), Ok(largest));
        assert_eq!(
            TradeEnvelope::decode(&[0x18, 9]),
            Err(EnvelopeError::UnknownRefusal(9))
        );
    }

    #[test]
    fn request_and_answer_associated_data_differ_by_direction_and_request() {
        let a = libp2p_identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let b = libp2p_identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        assert_ne!(request_aad(&a, &b), request_aad(&b, &a));
        let d1 = digest(b"one");
        let d2 = digest(b"two");
        assert_ne!(response_aad(&a, &b, &d1), response_aad(&a, &b, &d2));
        assert!(!response_aad(&a, &b, &d1).starts_with(&request_aad(&a, &b)));
    }
}
