//! The WebSocket port behind the operator's TLS proxy: a transport under the WebSocket one that,
//! when `ws_trusted_proxies` is set, accepts connections only from those addresses, takes the
//! PROXY protocol header ([`crate::proxy_header`]) off each, and hands the connection on with the
//! client's address as its remote address. Every per-address limit (connection caps, auth and
//! reservation rates, orders and pairs per address) then counts the trader, not the proxy.
//!
//! The connection reaches libp2p (and its pending-connection caps) only once its header is read,
//! so the reads in progress have their own bound ([`MAX_READING`]) and deadline
//! ([`HEADER_TIMEOUT`]). Without trusted proxies the transport passes connections through as
//! they are.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{AsyncRead, AsyncReadExt, FutureExt, StreamExt};
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::metrics::OutcomeLabels;
use crate::proxy_header::{self, HeaderError, Progress, V2_MAX_AFTER_FIXED};

/// How long a trusted proxy has to send the whole header once its connection is accepted (a
/// proxy writes it first thing, so this only ends connections that went wrong).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// Headers being read at once; a connection arriving past it is closed and counted
/// (`overloaded`). Only trusted proxies get this far.
pub const MAX_READING: usize = 256;

const BUF_BYTES: usize = 16 + V2_MAX_AFTER_FIXED;

/// What became of an accepted connection (`darkswap_relay_ws_proxy_headers_total{outcome}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A header naming the client: the connection goes on with the client's address.
    Accepted,
    /// A header in which the proxy speaks for itself (`UNKNOWN`, `LOCAL`): it goes on with the
    /// proxy's address.
    ProxyItself,
    /// The connection came from an address not in `ws_trusted_proxies`: closed.
    UntrustedSource,
    /// Not a header we accept: closed.
    Refused(HeaderError),
    /// Closed (or failed) before the header was whole.
    Closed,
    /// No whole header within [`HEADER_TIMEOUT`]: closed.
    Timeout,
    /// [`MAX_READING`] headers were being read already: closed.
    Overloaded,
}

impl Outcome {
    /// Every label [`Outcome::label`] gives.
    pub const LABELS: [&'static str; 9] = [
        "accepted",
        "proxy_itself",
        "untrusted_source",
        "no_signature",
        "malformed",
        "too_long",
        "closed",
        "timeout",
        "overloaded",
    ];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::ProxyItself => "proxy_itself",
            Outcome::UntrustedSource => "untrusted_source",
            Outcome::Refused(e) => e.label(),
            Outcome::Closed => "closed",
            Outcome::Timeout => "timeout",
            Outcome::Overloaded => "overloaded",
        }
    }
}

/// A connection whose header is read, ready to be handed on.
struct Ready<S> {
    listener_id: ListenerId,
    stream: S,
    local_addr: Multiaddr,
    send_back_addr: Multiaddr,
    outcome: Outcome,
}

type Reading<S> = BoxFuture<'static, Result<Ready<S>, Outcome>>;

/// See the module documentation.
pub struct ProxiedTransport<T: Transport> {
    inner: T,
    trusted: Vec<IpAddr>,
    reading: FuturesUnordered<Reading<T::Output>>,
    outcomes: Family<OutcomeLabels, Counter>,
}

impl<T: Transport> ProxiedTransport<T> {
    /// `trusted`: the proxies' addresses; empty passes every connection through untouched.
    pub fn new(inner: T, trusted: &[IpAddr], outcomes: Family<OutcomeLabels, Counter>) -> Self {
        // Every outcome is exported from the start (at 0), so a dashboard or an alert reads a
        // rate of nothing rather than no data.
        for label in Outcome::LABELS {
            let _ = outcomes.get_or_create(&OutcomeLabels {
                outcome: label.into(),
            });
        }
        ProxiedTransport {
            inner,
            trusted: trusted.iter().map(IpAddr::to_canonical).collect(),
            reading: FuturesUnordered::new(),
            outcomes,
        }
    }

    fn count(&self, outcome: Outcome) {
        self.outcomes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label().into(),
            })
            .inc();
    }
}

/// The first IP an address names, IPv4-mapped IPv6 addresses as IPv4.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip).to_canonical()),
        _ => None,
    })
}

/// `/ip4|ip6/<ip>/tcp/<port>` for a client the proxy named.
fn tcp_addr(client: SocketAddr) -> Multiaddr {
    let ip = match client.ip().to_canonical() {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    };
    Multiaddr::empty()
        .with(ip)
        .with(Protocol::Tcp(client.port()))
}

/// Reads the header off `stream`, never past it.
async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<proxy_header::Header, Outcome> {
    let mut buf = [0u8; BUF_BYTES];
    let mut have = 0;
    loop {
        match proxy_header::parse(&buf[..have]).map_err(Outcome::Refused)? {
            Progress::Done(header) => return Ok(header),
            Progress::Need(n) => {
                let to = n.min(BUF_BYTES);
                stream
                    .read_exact(&mut buf[have..to])
                    .await
                    .map_err(|_| Outcome::Closed)?;
                have = to;
            }
        }
    }
}

impl<T> Transport for ProxiedTransport<T>
where
    T: Transport + Unpin,
    T::Output: AsyncRead + Unpin + Send + 'static,
    T::ListenerUpgrade: Send + 'static,
    T::Error: Send + 'static,
{
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = BoxFuture<'static, Result<T::Output, T::Error>>;
    type Dial = T::Dial;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        self.inner.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        let this = self.get_mut();
        loop {
            if let Poll::Ready(Some(read)) = this.reading.poll_next_unpin(cx) {
                match read {
                    Ok(ready) => {
                        this.count(ready.outcome);
                        return Poll::Ready(TransportEvent::Incoming {
                            listener_id: ready.listener_id,
                            upgrade: futures::future::ready(Ok(ready.stream)).boxed(),
                            local_addr: ready.local_addr,
                            send_back_addr: ready.send_back_addr,
                        });
                    }
                    Err(outcome) => {
                        this.count(outcome);
                        continue;
                    }
                }
            }
            let event = match Pin::new(&mut this.inner).poll(cx) {
                Poll::Ready(event) => event,
                Poll::Pending => return Poll::Pending,
            };
            let TransportEvent::Incoming {
                listener_id,
                upgrade,
                local_addr,
                send_back_addr,
            } = event
            else {
                return Poll::Ready(event.map_upgrade(|u| u.boxed()));
            };
            if this.trusted.is_empty() {
                return Poll::Ready(TransportEvent::Incoming {
                    listener_id,
                    upgrade: upgrade.boxed(),
                    local_addr,
                    send_back_addr,
                });
            }
            // Dropping `upgrade` closes the connection.
            if !ip_of(&send_back_addr).is_some_and(|ip| this.trusted.contains(&ip)) {
                this.count(Outcome::UntrustedSource);
                continue;
            }
            if this.reading.len() >= MAX_READING {
                this.count(Outcome::Overloaded);
                continue;
            }
            this.reading.push(
                async move {
                    let read = async {
                        let mut stream = upgrade.await.map_err(|_| Outcome::Closed)?;
                        let header = read_header(&mut stream).await?;
                        Ok((stream, header))
                    };
                    let (stream, header) = tokio::time::timeout(HEADER_TIMEOUT, read)
                        .await
                        .map_err(|_| Outcome::Timeout)??;
                    let (send_back_addr, outcome) = match header.source {
                        Some(client) => (tcp_addr(client), Outcome::Accepted),
                        None => (send_back_addr, Outcome::ProxyItself),
                    };
                    Ok(Ready {
                        listener_id,
                        stream,
                        local_addr,
                        send_back_addr,
                        outcome,
                    })
                }
                .boxed(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::io::Cursor;

    #[tokio::test]
    async fn the_header_comes_off_and_the_clients_bytes_stay() {
        let mut stream =
            Cursor::new(b"PROXY TCP4 198.51.100.7 10.0.0.1 40000 4443\r\n/multistream".to_vec());
        let header = read_header(&mut stream).await.unwrap();
        assert_eq!(header.source, Some("198.51.100.7:40000".parse().unwrap()));
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"/multistream");
        assert_eq!(
            tcp_addr(header.source.unwrap()),
            "/ip4/198.51.100.7/tcp/40000".parse::<Multiaddr>().unwrap()
        );
    }

    #[tokio::test]
    async fn a_connection_without_a_header_or_cut_short_is_refused() {
        let mut plain = Cursor::new(b"GET / HTTP/1.1\r\n".to_vec());
        assert_eq!(
            read_header(&mut plain).await,
            Err(Outcome::Refused(HeaderError::NoSignature))
        );
        let mut short = Cursor::new(b"PROXY TCP4 198.51.100.7".to_vec());
        assert_eq!(read_header(&mut short).await, Err(Outcome::Closed));
    }

    #[test]
    fn every_outcome_label_is_exported_from_the_start() {
        let errors = [
            HeaderError::NoSignature,
            HeaderError::V1TooLong,
            HeaderError::V1Syntax,
            HeaderError::V2VersionOrCommand,
            HeaderError::V2TooLong,
            HeaderError::V2AddressLength,
            HeaderError::V2Family,
        ];
        let outcomes = [
            Outcome::Accepted,
            Outcome::ProxyItself,
            Outcome::UntrustedSource,
            Outcome::Closed,
            Outcome::Timeout,
            Outcome::Overloaded,
        ]
        .into_iter()
        .chain(errors.map(Outcome::Refused));
        for outcome in outcomes {
            assert!(Outcome::LABELS.contains(&outcome.label()), "{outcome:?}");
        }
    }

    #[test]
    fn mapped_ipv6_counts_as_its_ipv4() {
        let mapped: Multiaddr = "/ip6/::ffff:127.0.0.1/tcp/1".parse().unwrap();
        assert_eq!(ip_of(&mapped), Some("127.0.0.1".parse().unwrap()));
        let client: SocketAddr = "[::ffff:198.51.100.7]:5".parse().unwrap();
        assert_eq!(
            tcp_addr(client),
            "/ip4/198.51.100.7/tcp/5".parse::<Multiaddr>().unwrap()
        );
    }
}
