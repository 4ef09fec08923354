//! One capped frame per stream: the framing of every DarkSwap request-response protocol.
//!
//! A [`Frame`] is a message with an encoding and a cap. The reader takes at most the cap plus
//! one byte from the stream and refuses a longer frame before any decoding; the writer closes the
//! stream after one frame. With the `libp2p` feature, [`FrameCodec`] is the
//! `libp2p::request_response::Codec` for a request type and a response type; made with
//! [`FrameCodec::counting`], it tells its owner of every frame it refuses (libp2p's
//! request-response does not report a request that failed to read, so this is the only place a
//! relay can count them).

/// A message that travels as one capped frame.
pub trait Frame: Sized + Send + 'static {
    /// Largest encoding accepted; a bigger frame is an error before any decoding.
    const MAX_BYTES: u64;
    /// Why bytes are not this message.
    type Error: std::error::Error + Send + Sync + 'static;
    /// The encoding.
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes one frame (already known to be within [`Frame::MAX_BYTES`]).
    fn from_bytes(bytes: &[u8]) -> Result<Self, Self::Error>;
}

/// Implements [`Frame`] for a message type with `encode(&self) -> Vec<u8>` and
/// `decode(&[u8]) -> Result<Self, E>`, its cap and its error type.
#[macro_export]
macro_rules! impl_frame {
    ($ty:ty, $max:expr, $err:ty) => {
        impl $crate::frame::Frame for $ty {
            const MAX_BYTES: u64 = $max;
            type Error = $err;
            fn to_bytes(&self) -> Vec<u8> {
                self.encode()
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self, $err> {
                <$ty>::decode(bytes)
            }
        }
    };
}

/// A frame longer than its message's cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("frame of {len} bytes exceeds the {max}-byte cap")]
pub struct TooLong {
    /// Its length.
    pub len: usize,
    /// The cap.
    pub max: u64,
}

/// Checks `bytes` against the cap `max`, before any decoding.
pub fn within(bytes: &[u8], max: u64) -> Result<(), TooLong> {
    if bytes.len() as u64 > max {
        return Err(TooLong {
            len: bytes.len(),
            max,
        });
    }
    Ok(())
}

/// Why a frame read from the network was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// Longer than the message's cap (refused before decoding).
    TooLarge,
    /// Not the protocol's message.
    Malformed,
}

impl Refusal {
    /// Its metrics label.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TooLarge => "too_large",
            Refusal::Malformed => "malformed",
        }
    }
}

/// Told of each frame a [`FrameCodec`] refuses.
pub type OnRefusal = std::sync::Arc<dyn Fn(Refusal) + Send + Sync>;

#[cfg(feature = "libp2p")]
pub use codec::FrameCodec;

#[cfg(feature = "libp2p")]
mod codec {
    use std::io;
    use std::marker::PhantomData;

    use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use libp2p::StreamProtocol;

    use super::{Frame, OnRefusal, Refusal};

    /// The request-response codec for a request type and a response type.
    pub struct FrameCodec<Req, Resp> {
        on_refusal: Option<OnRefusal>,
        types: PhantomData<fn() -> (Req, Resp)>,
    }

    impl<Req, Resp> FrameCodec<Req, Resp> {
        /// A codec that calls `on_refusal` for every frame it refuses, requests and responses.
        pub fn counting(on_refusal: OnRefusal) -> Self {
            FrameCodec {
                on_refusal: Some(on_refusal),
                types: PhantomData,
            }
        }

        fn refused(&self, why: Refusal) {
            if let Some(f) = &self.on_refusal {
                f(why);
            }
        }
    }

    impl<Req, Resp> Default for FrameCodec<Req, Resp> {
        fn default() -> Self {
            FrameCodec {
                on_refusal: None,
                types: PhantomData,
            }
        }
    }

    impl<Req, Resp> Clone for FrameCodec<Req, Resp> {
        fn clone(&self) -> Self {
            FrameCodec {
                on_refusal: self.on_refusal.clone(),
                types: PhantomData,
            }
        }
    }

    async fn read_frame<F: Frame, T: AsyncRead + Unpin + Send>(
        io: &mut T,
        refused: impl Fn(Refusal),
    ) -> io::Result<F> {
        let mut bytes = Vec::new();
        io.take(F::MAX_BYTES + 1).read_to_end(&mut bytes).await?;
        if bytes.len() as u64 > F::MAX_BYTES {
            refused(Refusal::TooLarge);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame exceeds {} bytes", F::MAX_BYTES),
            ));
        }
        F::from_bytes(&bytes).map_err(|e| {
            refused(Refusal::Malformed);
            io::Error::new(io::ErrorKind::InvalidData, e)
        })
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
            read_frame(io, |why| self.refused(why)).await
        }

        async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
        where
            T: AsyncRead + Unpin + Send,
        {
            read_frame(io, |why| self.refused(why)).await
        }

        async fn write_request<T>(
            &mut self,
            _: &StreamProtocol,
            io: &mut T,
            req: Req,
        ) -> io::Result<()>
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
}
