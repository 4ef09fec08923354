//! The HTTP listener: accepts connections under caps and deadlines, then hands each to the
//! router (`http`). One address (an IPv6 /64) may hold `http_max_connections_per_ip`
//! connections and all together `http_max_connections`, so slow clients cannot take every file
//! descriptor the relay's libp2p side needs; a client must send its request headers within
//! `http_header_timeout_secs` (an idle keep-alive connection, its next request) and read its
//! response without stalling for `http_write_stall_secs`. Every refusal and every connection
//! closed for slowness is counted.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use darkswap_proto::addr::subscriber;
use darkswap_rate::{Full, Slots};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::metrics::{ReasonLabels, RelayMetrics};

/// How long open connections get to finish their responses when the relay stops.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The pause after a failed accept (out of file descriptors, say), so that it is not retried
/// in a tight loop.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The caps and deadlines in force.
#[derive(Debug, Clone, Copy)]
pub struct HttpLimits {
    pub per_ip: u32,
    pub total: u32,
    pub header_timeout: Duration,
    pub write_stall: Duration,
}

/// What the listener counts.
#[derive(Clone)]
pub struct HttpCounters {
    pub open: Gauge,
    pub refused: Family<ReasonLabels, Counter>,
    pub dropped: Family<ReasonLabels, Counter>,
}

impl HttpCounters {
    /// The relay's HTTP series.
    pub fn of(metrics: &RelayMetrics) -> Self {
        HttpCounters {
            open: metrics.http_connections_open.clone(),
            refused: metrics.http_connections_refused.clone(),
            dropped: metrics.http_connections_dropped.clone(),
        }
    }

    fn count(family: &Family<ReasonLabels, Counter>, reason: &str) {
        family.get_or_create(&RelayMetrics::reason(reason)).inc();
    }
}

/// Serves `router` on `listener` until `shutdown` changes; then lets open connections finish
/// for a few seconds and closes the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    counters: HttpCounters,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Mutex::new(Slots::new(limits.per_ip, limits.total)));
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, from) = match accepted {
                    Ok(accepted) => accepted,
                    Err(_) => {
                        HttpCounters::count(&counters.refused, "accept_failed");
                        tokio::time::sleep(ACCEPT_RETRY).await;
                        continue;
                    }
                };
                let Some(slot) = Slot::take(&slots, subscriber(from.ip()), &counters) else {
                    continue; // dropping the stream closes it
                };
                conns.spawn(serve_one(
                    stream,
                    router.clone(),
                    limits,
                    counters.clone(),
                    shutdown.clone(),
                    slot,
                ));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while conns.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        conns.abort_all();
    }
}

/// One connection's share of the caps, given back when the connection ends.
struct Slot {
    slots: Arc<Mutex<Slots<IpAddr>>>,
    ip: IpAddr,
    open: Gauge,
}

impl Slot {
    fn take(
        slots: &Arc<Mutex<Slots<IpAddr>>>,
        ip: IpAddr,
        counters: &HttpCounters,
    ) -> Option<Slot> {
        // A poisoned lock cannot tell how many slots are held: refuse.
        let taken = slots
            .lock()
            .map_err(|_| Full::Total)
            .and_then(|mut s| s.try_take(&ip));
        match taken {
            Ok(()) => {
                counters.open.inc();
                Some(Slot {
                    slots: slots.clone(),
                    ip,
                    open: counters.open.clone(),
                })
            }
            Err(Full::Key) => {
                HttpCounters::count(&counters.refused, "ip_limit");
                None
            }
            Err(Full::Total) => {
                HttpCounters::count(&counters.refused, "total_limit");
                None
            }
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.give_back(&self.ip);
        }
        self.open.dec();
    }
}

async fn serve_one(
    stream: TcpStream,
    router: Router,
    limits: HttpLimits,
    counters: HttpCounters,
    mut shutdown: watch::Receiver<bool>,
    _slot: Slot,
) {
    let io = TokioIo::new(StallGuard::new(stream, limits.write_stall));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let conn = builder.serve_connection(io, TowerToHyperService::new(router));
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        if e.is_timeout() {
            HttpCounters::count(&counters.dropped, "header_timeout");
        } else if stalled(&e) {
            HttpCounters::count(&counters.dropped, "write_stall");
        }
    }
}

/// Whether hyper gave up because [`StallGuard`] said the client stopped reading.
fn stalled(e: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            return io.kind() == io::ErrorKind::TimedOut;
        }
        source = s.source();
    }
    false
}

/// A stream whose writes fail with `TimedOut` once they have waited `stall` without progress
/// (the client stopped reading its response).
struct StallGuard {
    io: TcpStream,
    stall: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
}

impl StallGuard {
    fn new(io: TcpStream, stall: Duration) -> Self {
        StallGuard {
            io,
            stall,
            deadline: None,
        }
    }

    /// After the stream said Pending to a write: Pending until the deadline, then the error.
    fn waiting<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let stall = self.stall;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading its response",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(&mut self, ready: io::Result<T>) -> Poll<io::Result<T>> {
        self.deadline = None;
        Poll::Ready(ready)
    }
}

impl AsyncRead for StallGuard {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for StallGuard {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write(cx, buf) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.waiting(cx),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.waiting(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_shutdown(cx) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.waiting(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => self.progressed(r),
            Poll::Pending => self.waiting(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
