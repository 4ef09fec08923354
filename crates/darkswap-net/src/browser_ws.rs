//! The browser's WebSocket under libp2p, with a flush that does not wait on a timer.
//!
//! `libp2p::websocket_websys` finishes a flush only once the socket's `bufferedAmount` is back to
//! zero, and learns that from a 100 ms interval: every flush (each noise handshake message, each
//! request and answer) waited 50 ms on average, which made a dial over WebSocket take ~200 ms on
//! loopback and each request-response round trip ~50 ms. A browser gives no event for
//! `bufferedAmount`; what `send()` accepted is the browser's to transmit, as a write to a kernel
//! socket is the kernel's. So here a flush is done once the bytes are handed over. Back-pressure
//! is unchanged: a write still waits while the browser's buffer is full.
//!
//! It also notices a closed socket. Upstream's read waits for the next message and nothing wakes
//! it when the socket closes (its close event wakes only a pending close), so an idle link to a
//! relay that died was noticed only when something else polled it: 0.75–1.3 s in the failover
//! test, the time a standby waited to take over. While a read waits, the socket's state is
//! looked at again every [`RECHECK`]; a closed socket then fails the read.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{AsyncRead, AsyncWrite};
use futures_timer::Delay;

/// How often a waiting read looks at the socket's state again.
const RECHECK: Duration = Duration::from_millis(100);

/// A connection whose flush completes when its writes are with the browser, and whose reads
/// fail soon after the socket closes.
pub(crate) struct HandedOver<C> {
    inner: C,
    recheck: Option<Delay>,
}

impl<C> HandedOver<C> {
    pub fn new(inner: C) -> Self {
        HandedOver {
            inner,
            recheck: None,
        }
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for HandedOver<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Pending => {
                let timer = this.recheck.get_or_insert_with(|| Delay::new(RECHECK));
                if Pin::new(timer).poll(cx).is_ready() {
                    // Read again: a closed socket fails it at once.
                    this.recheck = None;
                    cx.waker().wake_by_ref();
                }
                Poll::Pending
            }
            ready => {
                this.recheck = None;
                ready
            }
        }
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for HandedOver<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Every accepted write already went to `WebSocket.send()`; a broken socket shows on the
        // next write or read.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
