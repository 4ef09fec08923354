//! Request-response codecs for DarkSwap's protobuf protocols: one frame per stream, read with a
//! cap before anything is decoded.

use std::io;
use std::marker::PhantomData;

use darkswap_proto::book_sync::{
    BookSyncRequest, BookSyncResponse, MAX_BOOK_SYNC_REQUEST_BYTES, MAX_BOOK_SYNC_RESPONSE_BYTES,
};
use darkswap_proto::trade::{TradeRequest, TradeResponse, MAX_TRADE_FRAME_BYTES};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

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
frame!(TradeRequest, MAX_TRADE_FRAME_BYTES);
frame!(TradeResponse, MAX_TRADE_FRAME_BYTES);

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
/// `/darkswap/trade/1`.
pub type TradeCodec = FrameCodec<TradeRequest, TradeResponse>;

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
