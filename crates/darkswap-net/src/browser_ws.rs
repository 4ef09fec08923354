//! The browser's WebSocket under libp2p, with a flush that does not wait on a timer.
//!
//! `libp2p::websocket_websys` finishes a flush only once the socket's `bufferedAmount` is back to
//! zero, and learns that from a 100 ms interval: every flush (each noise handshake message, each
//! request and answer) waited 50 ms on average, which made a dial over WebSocket take ~200 ms on
//! loopback and each request-response round trip ~50 ms. A browser gives no event for
//! `bufferedAmount`; what `send()` accepted is the browser's to transmit, as a write to a kernel
//! socket is the kernel's. So here a flush is done once the bytes are handed over. Back-pressure
//! is unchanged: a write still waits while the browser's buffer is full.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{AsyncRead, AsyncWrite};

/// A connection whose flush completes when its writes are with the browser.
pub(crate) struct HandedOver<C>(pub C);

impl<C: AsyncRead + Unpin> AsyncRead for HandedOver<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for HandedOver<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every accepted write already went to `WebSocket.send()`; a broken socket shows on the
        // next write or read.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}
