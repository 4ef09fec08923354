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
//!
//! Established connections keep a share for peers at the level that holds reservations: every
//! connection starts below it (nobody has proved anything yet), and those still below it may
//! fill only `established_total - established_kept`. When that part is full, a newcomer takes
//! the place of the oldest connection still below the level once it is older than the grace
//! (honest traders authenticate within a second); if none is, the newcomer is refused. Peers
//! that proved themselves are moved out of that part every second (and whenever a newcomer
//! needs room), never closed for one. So anonymous connections, however many addresses they
//! come from, cannot take the kept share, and a flood that stops retrying keeps newcomers out
//! no longer than the grace; one that keeps reconnecting competes with newcomers for every
//! place that frees up. At most [`MAX_EVICTING`] closes are in flight at once (a close can
//! take its time), and the grace is measured on a monotonic clock. One address may hold at
//! most `anonymous_per_ip` of those places: a flood from one address holds that many and
//! competes with nobody for the rest.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll, Waker};

use darkswap_proto::addr::{subscriber_of, transport_kind, TransportKind};
use darkswap_rate::Slots;
use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::{
    dummy, CloseConnection, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

use crate::gate::Gate;

/// An address's first handshakes in progress that come from the kept part of the TCP and
/// WebSocket share.
pub const LIGHT_PER_IP: u32 = 4;

/// Anonymous connections closed for newcomers and not yet gone, at most: past it newcomers
/// are refused rather than more closes started (a close waits for the peer to read).
pub const MAX_EVICTING: u32 = 64;

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
    /// Of those, the part only peers at the level that holds reservations may use.
    pub established_kept: u32,
    /// How long a connection below that level is safe from giving its place to a newcomer.
    pub anonymous_grace_ms: u64,
    /// Connections below that level one address may hold.
    pub anonymous_per_ip: u32,
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
    /// The relay holds as many connections as it may.
    #[error("too many connections")]
    Total,
    /// The connections of peers below the reservation level fill their part, and none is old
    /// enough to give its place.
    #[error("too many connections from peers that have not proved themselves")]
    AnonymousFull,
    /// The address holds as many connections below the reservation level as it may.
    #[error("too many connections from this address that have not proved themselves")]
    AnonymousPerIp,
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
            Refused::Total => "connection_limit",
            Refused::AnonymousFull => "anonymous_limit",
            Refused::AnonymousPerIp => "ip_anonymous_limit",
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

/// Which part of the established connections one counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// A peer at the reservation level (or one moved out after proving itself).
    Kept,
    /// A peer below the reservation level.
    Anonymous,
    /// Closed for a newcomer, not yet gone.
    Evicting,
}

#[derive(Debug, Clone, Copy)]
enum Stage {
    Pending(Share),
    Established(Part),
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
    /// Connections counted as anonymous, oldest first (entries of connections that closed or
    /// moved out are skipped when reached, and swept when they pile up).
    anonymous: VecDeque<(ConnectionId, PeerId, u64)>,
    anonymous_now: u32,
    /// The anonymous places each address holds.
    anonymous_ip: Slots<IpAddr>,
    anonymous_cap: u32,
    anonymous_grace_ms: u64,
    evicting_now: u32,
}

/// What admitting a connection did besides counting it.
#[derive(Debug, PartialEq, Eq)]
pub enum Admitted {
    /// Nothing else.
    Plainly,
    /// It took the place of this older anonymous connection, to be closed.
    InPlaceOf(PeerId, ConnectionId),
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
            anonymous: VecDeque::new(),
            anonymous_now: 0,
            anonymous_ip: Slots::new(config.anonymous_per_ip, u32::MAX),
            anonymous_cap: config
                .established_total
                .saturating_sub(config.established_kept),
            anonymous_grace_ms: config.anonymous_grace_ms,
            evicting_now: 0,
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

    /// The handshake finished: the connection of `peer` now holds a connection slot of its
    /// address, and, while `kept(peer)` says the peer is below the reservation level, a place
    /// in the anonymous part (perhaps an older one's, see [`Admitted`]). `now_ms` is the time.
    pub fn established(
        &mut self,
        id: ConnectionId,
        peer: PeerId,
        remote: &Multiaddr,
        now_ms: u64,
        kept: impl Fn(&PeerId) -> bool,
    ) -> Result<Admitted, Refused> {
        self.ended(id);
        let ip = subscriber_of(remote).ok_or(Refused::NoIp)?;
        self.established.try_take(&ip).map_err(|full| match full {
            darkswap_rate::Full::Total => Refused::Total,
            darkswap_rate::Full::Key => Refused::PerIp,
        })?;
        if kept(&peer) {
            self.held.insert(id, (ip, Stage::Established(Part::Kept)));
            return Ok(Admitted::Plainly);
        }
        if self.anonymous_ip.try_take(&ip).is_err() {
            self.established.give_back(&ip);
            return Err(Refused::AnonymousPerIp);
        }
        let admitted = if self.anonymous_now < self.anonymous_cap {
            Admitted::Plainly
        } else {
            match self.make_room(now_ms, &kept) {
                Some(admitted) => admitted,
                None => {
                    self.established.give_back(&ip);
                    self.anonymous_ip.give_back(&ip);
                    return Err(Refused::AnonymousFull);
                }
            }
        };
        self.held
            .insert(id, (ip, Stage::Established(Part::Anonymous)));
        self.anonymous.push_back((id, peer, now_ms));
        self.anonymous_now += 1;
        self.sweep();
        Ok(admitted)
    }

    /// Frees one anonymous place, oldest first: a peer that proved itself meanwhile moves out;
    /// else the oldest past the grace gives its place (it stays counted as a connection until
    /// it closes). `None` when neither can be done.
    fn make_room(&mut self, now_ms: u64, kept: &impl Fn(&PeerId) -> bool) -> Option<Admitted> {
        while let Some((id, peer, at_ms)) = self.anonymous.pop_front() {
            let Some((ip, stage)) = self.held.get_mut(&id) else {
                continue;
            };
            if !matches!(stage, Stage::Established(Part::Anonymous)) {
                continue;
            }
            if kept(&peer) {
                *stage = Stage::Established(Part::Kept);
                self.anonymous_now -= 1;
                self.anonymous_ip.give_back(ip);
                return Some(Admitted::Plainly);
            }
            if now_ms.saturating_sub(at_ms) >= self.anonymous_grace_ms
                && self.evicting_now < MAX_EVICTING
            {
                *stage = Stage::Established(Part::Evicting);
                self.anonymous_now -= 1;
                self.anonymous_ip.give_back(ip);
                self.evicting_now += 1;
                return Some(Admitted::InPlaceOf(peer, id));
            }
            self.anonymous.push_front((id, peer, at_ms));
            return None;
        }
        None
    }

    /// Drops queue entries of connections no longer counted as anonymous once they outnumber
    /// the live ones (the queue stays within twice its cap, plus a little).
    fn sweep(&mut self) {
        if self.anonymous.len() > 2 * self.anonymous_now as usize + 64 {
            let held = &self.held;
            self.anonymous.retain(|(id, _, _)| {
                matches!(held.get(id), Some((_, Stage::Established(Part::Anonymous))))
            });
        }
    }

    /// Moves every anonymous connection whose peer `kept` now says is at the reservation
    /// level out of the anonymous part (run every second: the part then counts only peers
    /// below the level), dropping queue entries of connections gone meanwhile.
    pub fn recheck(&mut self, kept: impl Fn(&PeerId) -> bool) {
        let (held, moved, per_ip) = (
            &mut self.held,
            &mut self.anonymous_now,
            &mut self.anonymous_ip,
        );
        self.anonymous.retain(|(id, peer, _)| {
            let Some((ip, stage)) = held.get_mut(id) else {
                return false;
            };
            if !matches!(stage, Stage::Established(Part::Anonymous)) {
                return false;
            }
            if kept(peer) {
                *stage = Stage::Established(Part::Kept);
                *moved -= 1;
                per_ip.give_back(ip);
                return false;
            }
            true
        });
    }

    /// `peer` has just proved itself (an auth grant at the reservation level): its anonymous
    /// connections move out of the part at once, so its address's places free up without
    /// waiting for [`Caps::recheck`] (the traders behind one address reconnecting together
    /// would otherwise come in one address's allowance a second).
    pub fn promote(&mut self, peer: &PeerId) {
        let (held, moved, per_ip) = (
            &mut self.held,
            &mut self.anonymous_now,
            &mut self.anonymous_ip,
        );
        for (id, who, _) in self.anonymous.iter() {
            if who != peer {
                continue;
            }
            if let Some((ip, stage)) = held.get_mut(id) {
                if matches!(stage, Stage::Established(Part::Anonymous)) {
                    *stage = Stage::Established(Part::Kept);
                    *moved -= 1;
                    per_ip.give_back(ip);
                }
            }
        }
        // The moved entries are skipped when reached and swept with the others.
        self.sweep();
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
            Some((ip, Stage::Established(part))) => {
                self.established.give_back(&ip);
                match part {
                    Part::Kept => {}
                    Part::Anonymous => {
                        self.anonymous_now -= 1;
                        self.anonymous_ip.give_back(&ip);
                    }
                    Part::Evicting => self.evicting_now -= 1,
                }
            }
            None => {}
        }
    }

    /// Handshakes in progress.
    pub fn pending_now(&self) -> u32 {
        self.pending.in_use()
    }

    /// Connections counted as anonymous.
    pub fn anonymous_now(&self) -> u32 {
        self.anonymous_now
    }
}

/// [`Caps`] as a network behaviour, listed before every other so that a refused connection
/// costs nothing more; keeps the pending-handshakes gauge current.
pub struct ConnCaps {
    caps: Caps,
    pending_gauge: Gauge,
    /// Connections counted as anonymous now.
    anonymous_gauge: Gauge,
    /// Who is at the reservation level.
    gate: Gate,
    /// Anonymous connections that gave their place to a newcomer.
    evicted: Counter,
    /// Those connections, to close (one per admission at most; drained by `poll`).
    to_close: VecDeque<(PeerId, ConnectionId)>,
    waker: Option<Waker>,
    /// The grace's clock: monotonic, from this behaviour's start.
    started: std::time::Instant,
}

impl ConnCaps {
    /// Caps with `config`, reporting handshakes in progress on `gauges.0` and anonymous
    /// connections on `gauges.1`, asking `gate` who holds the reservation level, counting
    /// anonymous connections closed for a newcomer in `evicted`.
    pub fn new(config: CapsConfig, gauges: (Gauge, Gauge), gate: Gate, evicted: Counter) -> Self {
        let (pending_gauge, anonymous_gauge) = gauges;
        ConnCaps {
            caps: Caps::new(config),
            pending_gauge,
            anonymous_gauge,
            gate,
            evicted,
            to_close: VecDeque::new(),
            waker: None,
            started: std::time::Instant::now(),
        }
    }

    /// `peer` was just granted a level: if it is the reservation level, its connections leave
    /// the anonymous part now rather than at the next tick.
    pub fn granted(&mut self, peer: &PeerId) {
        if self.gate.allows(peer, darkswap_auth::Operation::Reserve) {
            self.caps.promote(peer);
            self.report();
        }
    }

    /// Moves peers that proved themselves out of the anonymous part (the relay's 1 s tick).
    pub fn recheck(&mut self) {
        let gate = &self.gate;
        self.caps
            .recheck(|p: &PeerId| gate.allows(p, darkswap_auth::Operation::Reserve));
        self.report();
    }

    fn report(&self) {
        self.pending_gauge.set(i64::from(self.caps.pending_now()));
        self.anonymous_gauge
            .set(i64::from(self.caps.anonymous_now()));
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
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        let gate = &self.gate;
        let taken = self.caps.established(
            id,
            peer,
            remote_addr,
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            |p: &PeerId| gate.allows(p, darkswap_auth::Operation::Reserve),
        );
        self.report();
        if let Admitted::InPlaceOf(old_peer, old_id) = taken.map_err(ConnectionDenied::new)? {
            self.evicted.inc();
            self.to_close.push_back((old_peer, old_id));
            if let Some(waker) = self.waker.take() {
                waker.wake();
            }
        }
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

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        match self.to_close.pop_front() {
            Some((peer_id, id)) => Poll::Ready(ToSwarm::CloseConnection {
                peer_id,
                connection: CloseConnection::One(id),
            }),
            None => {
                self.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
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
        established_kept: 4,
        anonymous_grace_ms: 1_000,
        anonymous_per_ip: 1_000,
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
            assert_eq!(
                caps.established(id, PeerId::random(), &ip, 0, |_| true),
                Ok(Admitted::Plainly)
            );
        }
        assert_eq!(
            caps.pending_now(),
            0,
            "established connections hold no handshake slot"
        );
        let third = ConnectionId::new_unchecked(3);
        caps.pending(third, &ws(), &ip).unwrap();
        assert_eq!(
            caps.established(third, PeerId::random(), &ip, 0, |_| true),
            Err(Refused::PerIp)
        );
        assert_eq!(
            caps.pending_now(),
            0,
            "the refused one gave its handshake slot back"
        );
        caps.ended(ConnectionId::new_unchecked(1));
        let fourth = ConnectionId::new_unchecked(4);
        caps.pending(fourth, &ws(), &ip).unwrap();
        assert_eq!(
            caps.established(fourth, PeerId::random(), &ip, 0, |_| true),
            Ok(Admitted::Plainly)
        );
    }

    #[test]
    fn every_refusal_has_its_series_from_the_start() {
        for r in [
            Refused::PendingPerIp,
            Refused::PendingWebrtc,
            Refused::PendingStream,
            Refused::PerIp,
            Refused::Total,
            Refused::AnonymousFull,
            Refused::NoIp,
        ] {
            assert!(crate::metrics::CONNECTION_DENIAL_REASONS.contains(&r.label()));
        }
    }

    /// One connection of a peer of its own from each of `n` addresses, all established at
    /// `now_ms` under `kept`; the ids and peers.
    fn many(
        caps: &mut Caps,
        first: usize,
        n: usize,
        now_ms: u64,
        kept: &dyn Fn(&PeerId) -> bool,
    ) -> Vec<Result<Admitted, Refused>> {
        (first..first + n)
            .map(|i| {
                let id = ConnectionId::new_unchecked(i);
                let ip = from(&format!("203.0.113.{}", i % 250 + 1));
                caps.pending(id, &ws(), &ip).unwrap();
                caps.established(id, PeerId::random(), &ip, now_ms, kept)
            })
            .collect()
    }

    #[test]
    fn anonymous_connections_cannot_take_the_kept_share() {
        let mut caps = Caps::new(CONFIG);
        let nobody = |_: &PeerId| false;
        // 10 in all, 4 kept: 6 anonymous fit; the 7th, within the grace, is refused.
        assert!(many(&mut caps, 1, 6, 0, &nobody)
            .iter()
            .all(|r| *r == Ok(Admitted::Plainly)));
        assert_eq!(caps.anonymous_now(), 6);
        assert_eq!(
            many(&mut caps, 7, 1, 999, &nobody),
            vec![Err(Refused::AnonymousFull)]
        );
        // Peers at the reservation level still get in, up to the total.
        let everyone = |_: &PeerId| true;
        assert!(many(&mut caps, 8, 4, 999, &everyone)
            .iter()
            .all(|r| *r == Ok(Admitted::Plainly)));
        assert_eq!(caps.anonymous_now(), 6);
    }

    #[test]
    fn past_the_grace_the_oldest_anonymous_connection_gives_its_place() {
        let mut caps = Caps::new(CONFIG);
        let nobody = |_: &PeerId| false;
        many(&mut caps, 1, 3, 0, &nobody);
        many(&mut caps, 4, 3, 500, &nobody);
        // At 1,000 ms the first (oldest) is past the grace: a newcomer takes its place.
        let took = many(&mut caps, 7, 1, 1_000, &nobody);
        assert!(
            matches!(took[0], Ok(Admitted::InPlaceOf(_, id)) if id == ConnectionId::new_unchecked(1)),
            "{took:?}"
        );
        assert_eq!(caps.anonymous_now(), 6, "the evicted one counts no more");
        // Its close gives its connection slot back without counting it anonymous twice.
        caps.ended(ConnectionId::new_unchecked(1));
        assert_eq!(caps.anonymous_now(), 6);
        // The next two oldest go the same way; then those of 500 ms are within the grace.
        for (i, want) in [(8, 2), (9, 3)] {
            let took = many(&mut caps, i, 1, 1_000, &nobody);
            assert!(
                matches!(took[0], Ok(Admitted::InPlaceOf(_, id)) if id == ConnectionId::new_unchecked(want))
            );
        }
        assert_eq!(
            many(&mut caps, 10, 1, 1_000, &nobody),
            vec![Err(Refused::AnonymousFull)]
        );
    }

    #[test]
    fn a_peer_that_proved_itself_moves_out_instead_of_being_closed() {
        let nobody = |_: &PeerId| false;
        let mut caps = Caps::new(CONFIG);
        many(&mut caps, 1, 6, 0, &nobody);
        // Everyone but the newcomer proved themselves meanwhile: the oldest moves out and the
        // newcomer takes the freed place; no connection is closed.
        let id = ConnectionId::new_unchecked(7);
        let ip = from("198.51.100.1");
        caps.pending(id, &ws(), &ip).unwrap();
        let newcomer = PeerId::random();
        let took = caps.established(id, newcomer, &ip, 5_000, |p| *p != newcomer);
        assert_eq!(took, Ok(Admitted::Plainly));
        assert_eq!(caps.anonymous_now(), 6);
        // The second's tick moves the other five out at once.
        caps.recheck(|p| *p != newcomer);
        assert_eq!(caps.anonymous_now(), 1);
        assert_eq!(caps.anonymous.len(), 1);
    }

    #[test]
    fn closes_in_flight_are_bounded() {
        let config = CapsConfig {
            established_per_ip: 1_000,
            established_total: 1_100,
            established_kept: 100,
            ..CONFIG
        };
        let mut caps = Caps::new(config);
        let nobody = |_: &PeerId| false;
        // The whole part full of old anonymous connections whose closes never finish.
        let mut next = 1;
        for _ in 0..1_000 {
            let ip = from(&format!("203.0.113.{}", next % 250 + 1));
            let id = ConnectionId::new_unchecked(next);
            caps.pending(id, &ws(), &ip).unwrap();
            caps.established(id, PeerId::random(), &ip, 0, nobody)
                .unwrap();
            next += 1;
        }
        let (mut evicted, mut refused) = (0, 0);
        for _ in 0..(2 * MAX_EVICTING) {
            let ip = from(&format!("198.51.100.{}", next % 250 + 1));
            let id = ConnectionId::new_unchecked(next);
            next += 1;
            caps.pending(id, &ws(), &ip).unwrap();
            match caps.established(id, PeerId::random(), &ip, 60_000, nobody) {
                Ok(Admitted::InPlaceOf(..)) => evicted += 1,
                Ok(Admitted::Plainly) => {}
                Err(Refused::AnonymousFull) | Err(Refused::Total) => refused += 1,
                Err(other) => panic!("{other:?}"),
            }
        }
        assert_eq!(evicted, MAX_EVICTING, "closes in flight");
        assert_eq!(refused, MAX_EVICTING);
        // As the closes finish, newcomers get places again.
        caps.ended(ConnectionId::new_unchecked(1));
        let ip = from("192.0.2.200");
        let id = ConnectionId::new_unchecked(next);
        caps.pending(id, &ws(), &ip).unwrap();
        assert!(caps
            .established(id, PeerId::random(), &ip, 60_000, nobody)
            .is_ok());
    }

    #[test]
    fn the_queue_of_anonymous_connections_stays_bounded() {
        let mut caps = Caps::new(CONFIG);
        let nobody = |_: &PeerId| false;
        for round in 0..1_000 {
            let first = round * 6 + 1;
            many(&mut caps, first, 6, 0, &nobody);
            for i in first..first + 6 {
                caps.ended(ConnectionId::new_unchecked(i));
            }
        }
        assert_eq!(caps.anonymous_now(), 0);
        assert!(
            caps.anonymous.len() <= 2 * 6 + 64 + 1,
            "{}",
            caps.anonymous.len()
        );
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

    #[test]
    fn one_address_holds_at_most_its_share_of_anonymous_places() {
        let config = CapsConfig {
            established_per_ip: 8,
            established_total: 20,
            established_kept: 4,
            anonymous_per_ip: 3,
            ..CONFIG
        };
        let mut caps = Caps::new(config);
        let peers: Vec<PeerId> = (0..8).map(|_| PeerId::random()).collect();
        let proved = std::cell::RefCell::new(std::collections::HashSet::new());
        let kept = |p: &PeerId| proved.borrow().contains(p);
        let id = ConnectionId::new_unchecked;
        for (i, peer) in peers.iter().take(3).enumerate() {
            assert_eq!(
                caps.established(id(i), *peer, &from("192.0.2.1"), 0, kept),
                Ok(Admitted::Plainly)
            );
        }
        // The fourth from that address is refused, whatever room the relay has...
        assert_eq!(
            caps.established(id(3), peers[3], &from("192.0.2.1"), 5_000, kept),
            Err(Refused::AnonymousPerIp)
        );
        // ...and costs no connection slot; another address is not affected.
        assert_eq!(
            caps.established(id(4), peers[4], &from("192.0.2.2"), 0, kept),
            Ok(Admitted::Plainly)
        );
        // One of the three proves itself: it leaves the address's share, and a newcomer from
        // there gets the place.
        proved.borrow_mut().insert(peers[0]);
        caps.recheck(kept);
        assert_eq!(caps.anonymous_now(), 3);
        assert_eq!(
            caps.established(id(5), peers[5], &from("192.0.2.1"), 0, kept),
            Ok(Admitted::Plainly)
        );
        // One that closes gives its place back too.
        caps.ended(id(1));
        assert_eq!(
            caps.established(id(6), peers[6], &from("192.0.2.1"), 0, kept),
            Ok(Admitted::Plainly)
        );
        assert_eq!(
            caps.established(id(7), peers[7], &from("192.0.2.1"), 0, kept),
            Err(Refused::AnonymousPerIp)
        );
        assert_eq!(caps.anonymous_now(), 4);
    }

    #[test]
    fn a_peer_that_proves_itself_frees_its_place_at_once() {
        let config = CapsConfig {
            established_per_ip: 8,
            established_total: 20,
            established_kept: 4,
            anonymous_per_ip: 2,
            ..CONFIG
        };
        let mut caps = Caps::new(config);
        let nobody = |_: &PeerId| false;
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let id = ConnectionId::new_unchecked;
        let here = from("192.0.2.1");
        assert!(caps.established(id(1), a, &here, 0, nobody).is_ok());
        assert!(caps.established(id(2), b, &here, 0, nobody).is_ok());
        assert_eq!(
            caps.established(id(3), c, &here, 0, nobody),
            Err(Refused::AnonymousPerIp)
        );
        // Without waiting for the tick.
        caps.promote(&a);
        assert_eq!(caps.anonymous_now(), 1);
        assert!(caps.established(id(3), c, &here, 0, nobody).is_ok());
        // Promoting again, or a peer with no anonymous connection, changes nothing; the
        // promoted connection closing gives back its connection slot only.
        caps.promote(&a);
        caps.promote(&PeerId::random());
        assert_eq!(caps.anonymous_now(), 2);
        caps.ended(id(1));
        assert_eq!(caps.anonymous_now(), 2);
        assert_eq!(
            caps.established(id(4), PeerId::random(), &here, 0, nobody),
            Err(Refused::AnonymousPerIp)
        );
    }
}
