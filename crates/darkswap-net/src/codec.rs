//! Request-response codecs for DarkSwap's protobuf protocols: one frame per stream, read with a
//! cap before anything is decoded.
//!
//! `/darkswap/trade/2` carries [`TradeEnvelope`]s, never a trade message in the clear: first a
//! `darkswap-e2e` handshake, then frames sealed in that session (see `trade.rs`).
//!
//! Associated data of a sealed request: `"/darkswap/trade/2 request taker->maker\0" ‖ taker ‖
//! maker` (PeerId bytes); of its answer: `"/darkswap/trade/2 response maker->taker\0" ‖ taker ‖
//! maker ‖ SHA-256(request frame)`.
//!
//! ```proto
//! message TradeEnvelope { oneof kind { bytes handshake = 1; bytes sealed = 2; uint32 refused = 3; } }
//! ```

use std::io;
use std::marker::PhantomData;

use darkswap_proto::book_sync::{
    BookSyncRequest, BookSyncResponse, MAX_BOOK_SYNC_REQUEST_BYTES, MAX_BOOK_SYNC_RESPONSE_BYTES,
};
use darkswap_proto::trade::{MAX_TRADE_FRAME_BYTES, TRADE_PROTOCOL};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::PeerId;
use libp2p::StreamProtocol;
use prost::Message as _;
use sha2::{Digest, Sha256};

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
}

impl Refusal {
    fn from_wire(v: u32) -> Option<Refusal> {
        Some(match v {
            1 => Refusal::NoSession,
            2 => Refusal::StaleEpoch,
            3 => Refusal::BadFrame,
            4 => Refusal::BadHandshake,
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
    pub fn encode(&self) -> Vec<u8> {
        let kind = match self {
            TradeEnvelope::Handshake(b) => wire::Kind::Handshake(b.clone()),
            TradeEnvelope::Sealed(b) => wire::Kind::Sealed(b.clone()),
            TradeEnvelope::Refused(r) => wire::Kind::Refused(*r as u32),
        };
        wire::TradeEnvelope { kind: Some(kind) }.encode_to_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<TradeEnvelope, String> {
        if bytes.len() as u64 > MAX_TRADE_ENVELOPE_BYTES {
            return Err(format!("trade envelope of {} bytes", bytes.len()));
        }
        let w = wire::TradeEnvelope::decode(bytes).map_err(|e| e.to_string())?;
        match w.kind {
            Some(wire::Kind::Handshake(b)) => Ok(TradeEnvelope::Handshake(b)),
            Some(wire::Kind::Sealed(b)) => Ok(TradeEnvelope::Sealed(b)),
            Some(wire::Kind::Refused(r)) => Refusal::from_wire(r)
                .map(TradeEnvelope::Refused)
                .ok_or_else(|| format!("unknown refusal {r}")),
            None => Err("empty trade envelope".into()),
        }
    }
}

/// A message that travels as one capped frame.
pub trait Frame: Sized + Send + 'static {
    /// Largest encoding accepted; a bigger frame is an error before any decoding.
    const MAX_BYTES: u64;
    fn to_bytes(&self) -> Vec<u8>;
    fn from_bytes(bytes: &[u8]) -> Result<Self, String>;
}

macro_rules! frame {
    ($ty:ty, $max:expr) => {
        impl Frame for $ty {
            const MAX_BYTES: u64 = $max;
            fn to_bytes(&self) -> Vec<u8> {
                self.encode()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
                <$ty>::decode(bytes).map_err(|e| e.to_string())
            }
        }
    };
}

frame!(BookSyncRequest, MAX_BOOK_SYNC_REQUEST_BYTES);
frame!(BookSyncResponse, MAX_BOOK_SYNC_RESPONSE_BYTES);
frame!(TradeEnvelope, MAX_TRADE_ENVELOPE_BYTES);

/// The codec for a request type and a response type.
pub struct FrameCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for FrameCodec<Req, Resp> {
    fn default() -> Self {
        FrameCodec(PhantomData)
    }
}

impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
    fn clone(&self) -> Self {
        FrameCodec(PhantomData)
    }
}

/// `/darkswap/book-sync/1`.
pub type BookSyncCodec = FrameCodec<BookSyncRequest, BookSyncResponse>;
/// `/darkswap/trade/2`: envelopes both ways.
pub type TradeCodec = FrameCodec<TradeEnvelope, TradeEnvelope>;

async fn read_frame<F: Frame, T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<F> {
    let mut bytes = Vec::new();
    io.take(F::MAX_BYTES + 1).read_to_end(&mut bytes).await?;
    if bytes.len() as u64 > F::MAX_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame exceeds {} bytes", F::MAX_BYTES),
        ));
    }
    F::from_bytes(&bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

async fn write_frame<F: Frame, T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    frame: F,
) -> io::Result<()> {
    io.write_all(&frame.to_bytes()).await?;
    io.close().await
}

impl<Req: Frame, Resp: Frame> libp2p::request_response::Codec for FrameCodec<Req, Resp> {
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, res).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_bad_bytes_are_refused_without_panicking() {
        for e in [
            TradeEnvelope::Handshake(vec![1; 200]),
            TradeEnvelope::Sealed(vec![2; 2_000]),
            TradeEnvelope::Refused(Refusal::StaleEpoch),
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
        assert!(TradeEnvelope::decode(&[]).is_err());
        assert!(TradeEnvelope::decode(&TradeEnvelope::Sealed(vec![0; 2_300]).encode()).is_err());
        assert!(
            TradeEnvelope::decode(&[0x18, 9]).is_err(),
            "unknown refusal"
        );
    }
}
