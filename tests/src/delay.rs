//! A TCP forwarder on loopback that delays every byte by a fixed time in each direction: a
//! relay "far away" for the tests, where this machine's kernel has no `netem` queueing
//! discipline (`tc qdisc add dev lo root netem delay 10ms` answers "Specified qdisc kind is
//! unknown"). Data keeps its order and is not throttled; only its arrival is late, as on a
//! long link. A relay behind one announces the forwarder's address (`--external-addr`), so
//! that clients reach it, and measure it, only through the delay. What clients send can be slowed
//! further while it runs ([`Delay::slow_outbound`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Chunks in flight per direction of one connection, at most (each up to 16 KiB).
const CHUNKS_IN_FLIGHT: usize = 256;

/// A running forwarder; it stops (with its connections) when dropped.
pub struct Delay {
    pub addr: SocketAddr,
    target: Arc<OnceLock<SocketAddr>>,
    /// Milliseconds added to what clients send (see [`Delay::slow_outbound`]).
    outbound_extra_ms: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Delay {
    /// Listens on a free loopback port; once told where to ([`Delay::forward_to`]), forwards
    /// each connection there, every chunk delivered `one_way` after it was read. (A relay
    /// behind it must know the forwarder's address before it starts, and binds its own ports
    /// then.) Connections that come before are closed.
    pub async fn start(one_way: Duration) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let target = Arc::new(OnceLock::new());
        let to = Arc::clone(&target);
        let outbound_extra_ms = Arc::new(AtomicU64::new(0));
        let extra = Arc::clone(&outbound_extra_ms);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let Some(to) = to.get().copied() else {
                    continue;
                };
                let (extra, none) = (Arc::clone(&extra), Arc::new(AtomicU64::new(0)));
                connections.spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(to).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let (ri, wi) = inbound.into_split();
                        let (ro, wo) = outbound.into_split();
                        tokio::join!(pipe(ri, wo, one_way, extra), pipe(ro, wi, one_way, none));
                    }
                });
            }
        });
        Ok(Delay {
            addr,
            target,
            outbound_extra_ms,
            task,
        })
    }

    /// From now on, what clients send arrives `extra` later still (what the target sends is
    /// not slowed): a client's answer can be kept on its way for as long as a test needs.
    pub fn slow_outbound(&self, extra: Duration) {
        let ms = u64::try_from(extra.as_millis()).unwrap_or(u64::MAX);
        self.outbound_extra_ms.store(ms, Ordering::SeqCst);
    }

    /// Where to forward to from now on (set once).
    pub fn forward_to(&self, to: SocketAddr) {
        let _ = self.target.set(to);
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

/// Copies `from` to `to`, each chunk written `delay` and `extra_ms` after it was read.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
    extra_ms: Arc<AtomicU64>,
) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(CHUNKS_IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || tx
                    .send((
                        Instant::now()
                            + delay
                            + Duration::from_millis(extra_ms.load(Ordering::SeqCst)),
                        buf[..n].to_vec(),
                    ))
                    .await
                    .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
