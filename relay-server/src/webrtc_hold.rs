//! WebRTC-direct connections on which the relay opens no stream before the browser opened one.
//!
//! A browser on libp2p-webrtc-websys 0.5 listens for the data channels the relay opens
//! (`ondatachannel`) only once its side of the Noise handshake is over, closing the handshake's
//! own channel included. A channel the relay opens before that reaches no one: its stream hangs in
//! protocol negotiation until that times out, 10 s later. Gossipsub opens its stream to a new peer
//! at once, so a page learnt the relay's subscriptions ten seconds late and could not publish an
//! order until then (measured: a first order took 9 s to reach the relay over WebRTC-direct).
//!
//! The browser opens its own streams (identify, auth, the reservation) only after its listener is
//! in place, so its first stream proves the relay's will be heard. [`HoldOutbound`] keeps the
//! relay's outbound streams waiting until then, or until [`HOLD_MAX`] has passed (a peer that
//! opens nothing gets the old behaviour). Which of the two ended the wait is counted in
//! `darkswap_relay_webrtc_outbound_holds_total{released_by}`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use libp2p::core::muxing::{StreamMuxer, StreamMuxerEvent};
use prometheus_client::metrics::counter::Counter;

/// The longest a connection's outbound streams wait for the peer's first stream.
pub const HOLD_MAX: Duration = Duration::from_secs(5);

/// What ended a hold: counted per connection.
#[derive(Clone)]
pub struct HoldCounters {
    /// The peer opened a stream.
    pub by_inbound: Counter,
    /// [`HOLD_MAX`] passed first.
    pub by_deadline: Counter,
}

/// A WebRTC connection whose outbound streams wait for its first inbound one.
pub struct HoldOutbound<M> {
    inner: Pin<Box<M>>,
    /// `None` once outbound streams may open.
    hold: Option<Hold>,
    counters: HoldCounters,
}

struct Hold {
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// The task waiting to open an outbound stream.
    waiting: Option<Waker>,
}

impl<M> HoldOutbound<M> {
    /// Wraps a new connection; call it inside the Tokio runtime (the hold's deadline is a Tokio
    /// timer).
    pub fn new(inner: M, counters: HoldCounters) -> Self {
        HoldOutbound {
            inner: Box::pin(inner),
            hold: Some(Hold {
                deadline: Box::pin(tokio::time::sleep(HOLD_MAX)),
                waiting: None,
            }),
            counters,
        }
    }

    fn release(&mut self, counter: &Counter) {
        if let Some(hold) = self.hold.take() {
            counter.inc();
            if let Some(waker) = hold.waiting {
                waker.wake();
            }
        }
    }
}

impl<M: StreamMuxer> StreamMuxer for HoldOutbound<M> {
    type Substream = M::Substream;
    type Error = M::Error;

    fn poll_inbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        let polled = this.inner.as_mut().poll_inbound(cx);
        if matches!(polled, Poll::Ready(Ok(_))) {
            let counter = this.counters.by_inbound.clone();
            this.release(&counter);
        }
        polled
    }

    fn poll_outbound(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Self::Substream, Self::Error>> {
        let this = self.get_mut();
        if let Some(hold) = this.hold.as_mut() {
            if hold.deadline.as_mut().poll(cx).is_pending() {
                hold.waiting = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let counter = this.counters.by_deadline.clone();
            this.release(&counter);
        }
        this.inner.as_mut().poll_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().inner.as_mut().poll_close(cx)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        self.get_mut().inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A muxer whose inbound streams arrive when the test says; outbound ones open at once.
    struct Scripted {
        inbound: VecDeque<u32>,
        opened: u32,
    }

    impl StreamMuxer for Scripted {
        type Substream = futures::io::Cursor<Vec<u8>>;
        type Error = std::io::Error;

        fn poll_inbound(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<Self::Substream, Self::Error>> {
            match self.get_mut().inbound.pop_front() {
                Some(_) => Poll::Ready(Ok(futures::io::Cursor::new(Vec::new()))),
                None => Poll::Pending,
            }
        }

        fn poll_outbound(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<Self::Substream, Self::Error>> {
            self.get_mut().opened += 1;
            Poll::Ready(Ok(futures::io::Cursor::new(Vec::new())))
        }

        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Ready(Ok(()))
        }

        fn poll(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
            Poll::Pending
        }
    }

    fn counters() -> HoldCounters {
        HoldCounters {
            by_inbound: Counter::default(),
            by_deadline: Counter::default(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn outbound_streams_wait_for_the_peers_first_stream() {
        let c = counters();
        let mut conn = HoldOutbound::new(
            Scripted {
                inbound: VecDeque::new(),
                opened: 0,
            },
            c.clone(),
        );
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_pending());
        assert!(Pin::new(&mut conn).poll_inbound(&mut cx).is_pending());
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_pending());
        conn.inner.as_mut().get_mut().inbound.push_back(1);
        assert!(Pin::new(&mut conn).poll_inbound(&mut cx).is_ready());
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_ready());
        assert_eq!(conn.inner.opened, 1);
        assert_eq!((c.by_inbound.get(), c.by_deadline.get()), (1, 0));
        // Released for good: later inbound streams count nothing more.
        conn.inner.as_mut().get_mut().inbound.push_back(2);
        assert!(Pin::new(&mut conn).poll_inbound(&mut cx).is_ready());
        assert_eq!(c.by_inbound.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_opens_nothing_gets_outbound_streams_after_the_deadline() {
        let c = counters();
        let mut conn = HoldOutbound::new(
            Scripted {
                inbound: VecDeque::new(),
                opened: 0,
            },
            c.clone(),
        );
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_pending());
        tokio::time::advance(HOLD_MAX - Duration::from_millis(1)).await;
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_pending());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(Pin::new(&mut conn).poll_outbound(&mut cx).is_ready());
        assert_eq!((c.by_inbound.get(), c.by_deadline.get()), (0, 1));
    }
}
