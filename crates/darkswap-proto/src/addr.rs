//! Addresses: which transport a multiaddr names, which relay a list of addresses names, and how
//! to reach a peer through a relay (`<relay>/p2p-circuit/p2p/<peer>`).

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// How a connection is carried, as shown to the trader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// WebRTC-direct (`/webrtc-direct`).
    WebRtcDirect,
    /// WebSocket (`/ws` or `/wss`).
    WebSocket,
    /// Plain TCP: `/tcp` with neither WebSocket nor WebRTC-direct on top.
    Tcp,
    /// Through another peer's circuit relay.
    Relayed,
    /// Anything else (QUIC, for one).
    Other,
}

impl TransportKind {
    /// A short machine-readable name (metrics labels, the UI).
    pub fn label(self) -> &'static str {
        match self {
            TransportKind::WebRtcDirect => "webrtc-direct",
            TransportKind::WebSocket => "websocket",
            TransportKind::Tcp => "tcp",
            TransportKind::Relayed => "relayed",
            TransportKind::Other => "other",
        }
    }
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// The transport an address names.
pub fn transport_kind(addr: &Multiaddr) -> TransportKind {
    let mut kind = TransportKind::Other;
    for p in addr.iter() {
        match p {
            Protocol::P2pCircuit => return TransportKind::Relayed,
            Protocol::WebRTCDirect => kind = TransportKind::WebRtcDirect,
            Protocol::Ws(_) | Protocol::Wss(_) => kind = TransportKind::WebSocket,
            Protocol::Tcp(_) if kind == TransportKind::Other => kind = TransportKind::Tcp,
            _ => {}
        }
    }
    kind
}

/// The key under which per-address limits count a remote IP: an IPv4 address itself, or an
/// IPv6 address's /64 (what one subscriber is given, so an attacker cannot spread over it).
pub fn subscriber(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => ip,
        std::net::IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            std::net::IpAddr::V6(prefix.into())
        }
    }
}

/// [`subscriber`] of the first IP an address names; `None` when it names none.
pub fn subscriber_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(subscriber(ip.into())),
        Protocol::Ip6(ip) => Some(subscriber(ip.into())),
        _ => None,
    })
}

/// The key of a per-address limit: [`subscriber_of`] the address, or one shared key (the
/// unspecified IPv6 address) for a peer whose address is unknown or names no IP, so that such
/// peers are limited together rather than not at all.
pub fn limit_key(addr: Option<&Multiaddr>) -> std::net::IpAddr {
    addr.and_then(subscriber_of)
        .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// Why a relay address list is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The list is empty.
    #[error("no relay address given")]
    Empty,
    /// This address (as text) does not end in `/p2p/<relay PeerId>`.
    #[error("relay address {0} does not end in /p2p/<peer id>")]
    MissingPeerId(String),
    /// Two addresses end in different PeerIds: the one seen first, then the other.
    #[error("relay addresses name two different relays ({0} and {1})")]
    MixedPeers(String, String),
}

/// The one relay PeerId that every address names.
pub fn relay_peer_id(addrs: &[Multiaddr]) -> Result<PeerId, AddrError> {
    let mut found: Option<PeerId> = None;
    for addr in addrs {
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => peer,
            _ => return Err(AddrError::MissingPeerId(addr.to_string())),
        };
        match found {
            Some(other) if other != peer => {
                return Err(AddrError::MixedPeers(other.to_string(), peer.to_string()))
            }
            _ => found = Some(peer),
        }
    }
    found.ok_or(AddrError::Empty)
}

/// `<relay addr>/p2p-circuit/p2p/<peer>`: how to reach `peer` through the relay at `relay_addr`
/// (which must end in `/p2p/<relay>`).
pub fn circuit_addr(relay_addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    relay_addr
        .clone()
        .with(Protocol::P2pCircuit)
        .with(Protocol::P2p(peer))
}

/// Appends `/p2p/<peer>` unless the address already ends with it.
pub fn with_peer(addr: &Multiaddr, peer: PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(p)) if p == peer => addr.clone(),
        _ => addr.clone().with(Protocol::P2p(peer)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn limits_count_an_ipv6_subscriber_by_its_64() {
        let a: Multiaddr = "/ip6/2001:db8:1:2:aaaa::1/tcp/1".parse().unwrap();
        let b: Multiaddr = "/ip6/2001:db8:1:2:bbbb::9/udp/2/webrtc-direct"
            .parse()
            .unwrap();
        let c: Multiaddr = "/ip6/2001:db8:1:3::1/tcp/1".parse().unwrap();
        assert_eq!(subscriber_of(&a), subscriber_of(&b));
        assert_ne!(subscriber_of(&a), subscriber_of(&c));
        let v4: Multiaddr = "/ip4/198.51.100.7/tcp/1/ws".parse().unwrap();
        assert_eq!(
            subscriber_of(&v4),
            Some("198.51.100.7".parse::<std::net::IpAddr>().unwrap())
        );
        assert_eq!(
            subscriber_of(&"/dns4/example.org/tcp/1".parse().unwrap()),
            None
        );
    }

    #[test]
    fn kinds() {
        let p = peer();
        let tcp: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{p}").parse().unwrap();
        let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/2/ws/p2p/{p}").parse().unwrap();
        assert_eq!(transport_kind(&tcp), TransportKind::Tcp);
        assert_eq!(transport_kind(&ws), TransportKind::WebSocket);
        assert_eq!(
            transport_kind(&circuit_addr(&tcp, peer())),
            TransportKind::Relayed
        );
    }

    #[test]
    fn relay_ids() {
        let (a, b) = (peer(), peer());
        let x: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{a}").parse().unwrap();
        let y: Multiaddr = format!("/ip4/127.0.0.1/tcp/2/p2p/{b}").parse().unwrap();
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        assert_eq!(relay_peer_id(std::slice::from_ref(&x)), Ok(a));
        assert_eq!(relay_peer_id(&[]), Err(AddrError::Empty));
        assert!(matches!(
            relay_peer_id(&[x, y]),
            Err(AddrError::MixedPeers(..))
        ));
        assert!(matches!(
            relay_peer_id(std::slice::from_ref(&bare)),
            Err(AddrError::MissingPeerId(_))
        ));
        assert_eq!(with_peer(&bare, a), with_peer(&with_peer(&bare, a), a));
    }
}
