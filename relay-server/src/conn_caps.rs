//! Per-address connection caps: how many handshakes one IP address (an IPv6 /64) may have in
//! progress, how many connections it may hold, and how many WebRTC-direct handshakes may be in
//! progress at once. libp2p's own limits count only totals, so one address could hold every
//! pending slot (half-open WebSocket upgrades, a STUN flood) and lock honest traders out.
//!
//! WebRTC-direct handshakes start from a single UDP packet whose source address is not proven,
//! so they get a share of the pending slots of their own: a flood of them (spoofed or not)
//! never takes the slots that TCP and WebSocket traders need. Of the TCP and WebSocket share,
//! most is kept for each address's first few handshakes: an attacker holding its whole
//! per-address allowance from several addresses fills only the rest, and honest traders (who
//! hold one handshake for a moment) still find a slot until the attacker brings dozens of
//! addresses.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use darkswap_proto::addr::{subscriber_of, transport_kind, TransportKind};
use darkswap_rate::Slots;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::gauge::Gauge;

/// An address's first handshakes in progress that come from the kept part of the TCP and
/// WebSocket share.
pub const LIGHT_PER_IP: u32 = 4;

/// The caps in force.
#[derive(Debug, Clone, Copy)]
pub struct CapsConfig {
    /// Handshakes in progress per address.
    pub pending_per_ip: u32,
    /// TCP and WebSocket handshakes in progress in all.
    pub pending_stream: u32,
    /// Of those, the part kept for each address's first [`LIGHT_PER_IP`].
    pub pending_stream_light: u32,
    /// WebRTC-direct handshakes in progress in all.
    pub pending_webrtc: u32,
    /// Established inbound connections per address.
    pub established_per_ip: u32,
    /// Established inbound connections in all.
    pub established_total: u32,
}

/// Why a connection was refused here; the relay counts it under [`Refused::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The address has as many handshakes in progress as it may.
    #[error("too many handshakes in progress from this address")]
    PendingPerIp,
    /// Every WebRTC-direct handshake slot is taken.
    #[error("too many WebRTC-direct handshakes in progress")]
    PendingWebrtc,
    /// Every TCP and WebSocket handshake slot this address could use is taken.
    #[error("too many TCP and WebSocket handshakes in progress")]
    PendingStream,
    /// The address holds as many connections as it may.
    #[error("too many connections from this address")]
    PerIp,
    /// The remote address names no IP, so no cap can be applied: refused.
    #[error("the remote address names no IP")]
    NoIp,
}

impl Refused {
    /// The metrics label (`darkswap_relay_connections_denied_total{reason}`).
    pub fn label(self) -> &'static str {
        match self {
            Refused::PendingPerIp => "ip_pending_limit",
            Refused::PendingWebrtc => "webrtc_pending_limit",
            Refused::PendingStream => "stream_pending_limit",
            Refused::PerIp => "ip_connection_limit",
            Refused::NoIp => "no_ip",
        }
    }
}

/// Which share a handshake in progress holds a slot of.
#[derive(Debug, Clone, Copy)]
enum Share {
    Webrtc,
    Light,
    Heavy,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Pending(Share),
    Established,
}

/// The counting core: what each connection holds, taken and given back by connection id.
#[derive(Debug)]
pub struct Caps {
    pending: Slots<IpAddr>,
    webrtc: Slots<()>,
    light: Slots<IpAddr>,
    heavy: Slots<()>,
    established: Slots<IpAddr>,
    held: HashMap<ConnectionId, (IpAddr, Stage)>,
}

impl Caps {
    /// Empty caps.
    pub fn new(config: CapsConfig) -> Self {
        Caps {
            pending: Slots::new(config.pending_per_ip, u32::MAX),
            webrtc: Slots::new(config.pending_webrtc, config.pending_webrtc),
            light: Slots::new(LIGHT_PER_IP, config.pending_stream_light),
            heavy: {
                let rest = config
                    .pending_stream
                    .saturating_sub(config.pending_stream_light);
                Slots::new(rest, rest)
            },
            established: Slots::new(config.established_per_ip, config.established_total),
            held: HashMap::new(),
        }
    }

    /// A handshake starts on `local` (the listener) from `remote`.
    pub fn pending(
        &mut self,
        id: ConnectionId,
        local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), Refused> {
        let ip = subscriber_of(remote).ok_or(Refused::NoIp)?;
        self.pending
            .try_take(&ip)
            .map_err(|_| Refused::PendingPerIp)?;
        let share = if transport_kind(local) == TransportKind::WebRtcDirect {
            self.webrtc
                .try_take(&())
                .map(|()| Share::Webrtc)
                .map_err(|_| Refused::PendingWebrtc)
        } else {
            self.light
                .try_take(&ip)
                .map(|()| Share::Light)
                .or_else(|_| self.heavy.try_take(&()).map(|()| Share::Heavy))
                .map_err(|_| Refused::PendingStream)
        };
        match share {
            Ok(share) => {
                self.held.insert(id, (ip, Stage::Pending(share)));
                Ok(())
            }
            Err(refused) => {
                self.pending.give_back(&ip);
                Err(refused)
            }
        }
    }

    /// The handshake finished: the connection now holds a connection slot of its address.
    pub fn established(&mut self, id: ConnectionId, remote: &Multiaddr) -> Result<(), Refused> {
        self.ended(id);
        let ip = subscriber_of(remote).ok_or(Refused::NoIp)?;
        self.established.try_take(&ip).map_err(|_| Refused::PerIp)?;
        self.held.insert(id, (ip, Stage::Established));
        Ok(())
    }

    /// The connection failed, was refused or closed: whatever it held is given back.
    pub fn ended(&mut self, id: ConnectionId) {
        match self.held.remove(&id) {
            Some((ip, Stage::Pending(share))) => {
                self.pending.give_back(&ip);
                match share {
                    Share::Webrtc => self.webrtc.give_back(&()),
                    Share::Light => self.light.give_back(&ip),
                    Share::Heavy => self.heavy.give_back(&()),
                }
            }
            Some((ip, Stage::Established)) => self.established.give_back(&ip),
            None => {}
        }
    }

    /// Handshakes in progress.
    pub fn pending_now(&self) -> u32 {
        self.pending.in_use()
    }
}

/// [`Caps`] as a network behaviour, listed before every other so that a refused connection
/// costs nothing more; keeps the pending-handshakes gauge current.
pub struct ConnCaps {
    caps: Caps,
    pending_gauge: Gauge,
}

impl ConnCaps {
    /// Caps with `config`, reporting handshakes in progress on `pending_gauge`.
    pub fn new(config: CapsConfig, pending_gauge: Gauge) -> Self {
        ConnCaps {
            caps: Caps::new(config),
            pending_gauge,
        }
    }

    fn report(&self) {
        self.pending_gauge.set(i64::from(self.caps.pending_now()));
    }
}

impl NetworkBehaviour for ConnCaps {
    // libp2p's handler for a behaviour that speaks no protocol: this one only counts and refuses.
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        let taken = self.caps.pending(id, local_addr, remote_addr);
        self.report();
        taken.map_err(ConnectionDenied::new)
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let taken = self.caps.established(id, remote_addr);
        self.report();
        taken.map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        let id = match event {
            FromSwarm::ListenFailure(f) => f.connection_id,
            FromSwarm::ConnectionClosed(c) => c.connection_id,
            _ => return,
        };
        self.caps.ended(id);
        self.report();
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: CapsConfig = CapsConfig {
        pending_per_ip: 2,
        pending_stream: 5,
        pending_stream_light: 3,
        pending_webrtc: 3,
        established_per_ip: 2,
        established_total: 10,
    };

    fn ws() -> Multiaddr {
        "/ip4/0.0.0.0/tcp/4002/ws".parse().unwrap()
    }

    fn webrtc() -> Multiaddr {
        "/ip4/0.0.0.0/udp/4003/webrtc-direct".parse().unwrap()
    }

    fn from(ip: &str) -> Multiaddr {
        format!("/ip4/{ip}/tcp/50000").parse().unwrap()
    }

    #[test]
    fn one_address_cannot_hold_every_handshake() {
        let mut caps = Caps::new(CONFIG);
        let (a, b, c) = (
            ConnectionId::new_unchecked(1),
            ConnectionId::new_unchecked(2),
            ConnectionId::new_unchecked(3),
        );
        assert_eq!(caps.pending(a, &ws(), &from("192.0.2.1")), Ok(()));
        assert_eq!(caps.pending(b, &ws(), &from("192.0.2.1")), Ok(()));
        assert_eq!(
            caps.pending(c, &ws(), &from("192.0.2.1")),
            Err(Refused::PendingPerIp)
        );
        assert_eq!(caps.pending(c, &ws(), &from("192.0.2.2")), Ok(()));
        caps.ended(a);
        assert_eq!(
            caps.pending(ConnectionId::new_unchecked(4), &ws(), &from("192.0.2.1")),
            Ok(()),
            "a failed handshake gives its slot back"
        );
    }

    #[test]
    fn addresses_at_their_allowance_leave_the_kept_share_to_newcomers() {
        let config = CapsConfig {
            pending_per_ip: 8,
            pending_stream: 16,
            pending_stream_light: 12,
            ..CONFIG
        };
        let mut caps = Caps::new(config);
        let mut n = 0;
        let mut next = || {
            n += 1;
            ConnectionId::new_unchecked(n)
        };
        // The first attacker takes its 4 kept slots and the 4 others there are.
        for _ in 0..8 {
            assert_eq!(caps.pending(next(), &ws(), &from("192.0.2.1")), Ok(()));
        }
        // The second gets its 4 kept slots and nothing more.
        for _ in 0..4 {
            assert_eq!(caps.pending(next(), &ws(), &from("192.0.2.2")), Ok(()));
        }
        assert_eq!(
            caps.pending(next(), &ws(), &from("192.0.2.2")),
            Err(Refused::PendingStream)
        );
        // An honest newcomer still finds a kept slot.
        assert_eq!(caps.pending(next(), &ws(), &from("198.51.100.7")), Ok(()));
    }

    #[test]
    fn webrtc_handshakes_have_a_share_of_their_own() {
        let mut caps = Caps::new(CONFIG);
        for (n, ip) in ["192.0.2.1", "192.0.2.2", "192.0.2.3"].iter().enumerate() {
            let id = ConnectionId::new_unchecked(n + 1);
            assert_eq!(caps.pending(id, &webrtc(), &from(ip)), Ok(()));
        }
        assert_eq!(
            caps.pending(
                ConnectionId::new_unchecked(9),
                &webrtc(),
                &from("192.0.2.4")
            ),
            Err(Refused::PendingWebrtc),
            "a flood from many addresses fills only the WebRTC share"
        );
        assert_eq!(
            caps.pending(ConnectionId::new_unchecked(10), &ws(), &from("192.0.2.4")),
            Ok(()),
            "WebSocket traders still get in"
        );
    }

    #[test]
    fn established_connections_are_capped_per_address_and_given_back_on_close() {
        let mut caps = Caps::new(CONFIG);
        let ip = from("198.51.100.9");
        for n in 1..=2 {
            let id = ConnectionId::new_unchecked(n);
            caps.pending(id, &ws(), &ip).unwrap();
            assert_eq!(caps.established(id, &ip), Ok(()));
        }
        assert_eq!(
            caps.pending_now(),
            0,
            "established connections hold no handshake slot"
        );
        let third = ConnectionId::new_unchecked(3);
        caps.pending(third, &ws(), &ip).unwrap();
        assert_eq!(caps.established(third, &ip), Err(Refused::PerIp));
        assert_eq!(
            caps.pending_now(),
            0,
            "the refused one gave its handshake slot back"
        );
        caps.ended(ConnectionId::new_unchecked(1));
        let fourth = ConnectionId::new_unchecked(4);
        caps.pending(fourth, &ws(), &ip).unwrap();
        assert_eq!(caps.established(fourth, &ip), Ok(()));
    }

    #[test]
    fn every_refusal_has_its_series_from_the_start() {
        for r in [
            Refused::PendingPerIp,
            Refused::PendingWebrtc,
            Refused::PendingStream,
            Refused::PerIp,
            Refused::NoIp,
        ] {
            assert!(crate::metrics::CONNECTION_DENIAL_REASONS.contains(&r.label()));
        }
    }

    #[test]
    fn an_address_without_an_ip_is_refused() {
        let mut caps = Caps::new(CONFIG);
        let dns: Multiaddr = "/dns4/example.org/tcp/1".parse().unwrap();
        assert_eq!(
            caps.pending(ConnectionId::new_unchecked(1), &ws(), &dns),
            Err(Refused::NoIp)
        );
        assert_eq!(caps.pending_now(), 0);
    }
}
