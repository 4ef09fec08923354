//! The link to our relay: which relay, the connection we use to it, when to dial it again
//! (exponential backoff with jitter), and the circuit-relay reservation on it.
//!
//! [`RelayLink`] holds the state and decides; the node does what it says on the swarm and tells
//! it what happened. It reads the clock only through the `now` it is given.

use std::time::Duration;

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId};
use web_time::Instant;

use crate::addr::sort_for_dialing;

/// `base` stretched or shrunk at random by up to `spread` (0.2: ±20 %), so that many clients
/// told to wait the same time do not come back in lockstep.
pub(crate) fn jittered(base: Duration, spread: f64) -> Duration {
    base.mul_f64(1.0 - spread + rand::random::<f64>() * 2.0 * spread)
}
use crate::event::RelayStatus;
use darkswap_proto::addr::{circuit_addr, relay_peer_id, with_peer, AddrError, TransportKind};

/// Why a relay address list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayAddrError {
    /// The list is empty, an address does not end in `/p2p/<relay>`, or the addresses name two
    /// different relays.
    #[error("invalid relay address: {0}")]
    Addr(#[from] AddrError),
    /// No address has a transport this target dials (natively TCP or WebSocket; in the browser
    /// WebRTC-direct or WebSocket).
    #[error("none of the relay's addresses can be dialed from this platform")]
    NoDialableAddress,
}

/// The connection to the relay we use, with the address it was made on.
#[derive(Debug, Clone)]
struct Link {
    connection: ConnectionId,
    addr: Multiaddr,
    transport: TransportKind,
}

/// The relay link's state (see the module documentation).
pub(crate) struct RelayLink {
    relay: PeerId,
    addrs: Vec<Multiaddr>,
    link: Option<Link>,
    dialing: bool,
    /// Failed attempts since the last success (dials and reservations), for the backoff.
    attempt: u32,
    next_dial_at: Option<Instant>,
    circuit_listener: Option<ListenerId>,
    reserved: bool,
    next_reserve_at: Option<Instant>,
    backoff_initial: Duration,
    backoff_max: Duration,
}

impl RelayLink {
    /// A link to the relay that every address in `addrs` names, dialed in this target's order
    /// of preference, first at `now`.
    pub fn new(
        addrs: &[Multiaddr],
        backoff_initial: Duration,
        backoff_max: Duration,
        now: Instant,
    ) -> Result<Self, RelayAddrError> {
        let relay = relay_peer_id(addrs)?;
        let addrs = sort_for_dialing(addrs);
        if addrs.is_empty() {
            return Err(RelayAddrError::NoDialableAddress);
        }
        Ok(RelayLink {
            relay,
            addrs,
            link: None,
            dialing: false,
            attempt: 0,
            next_dial_at: Some(now),
            circuit_listener: None,
            reserved: false,
            next_reserve_at: None,
            backoff_initial,
            backoff_max,
        })
    }

    /// Moves the link to another relay (a failover), dialed at once: only while the link is
    /// down, so nothing granted or reserved on the old relay is left behind. The addresses must
    /// all name the new relay and include one this target dials; otherwise the link is left as
    /// it was.
    pub fn retarget(&mut self, addrs: &[Multiaddr], now: Instant) -> Result<(), RelayAddrError> {
        debug_assert!(self.link.is_none() && self.circuit_listener.is_none());
        let relay = relay_peer_id(addrs)?;
        let addrs = sort_for_dialing(addrs);
        if addrs.is_empty() {
            return Err(RelayAddrError::NoDialableAddress);
        }
        self.relay = relay;
        self.addrs = addrs;
        self.dialing = false;
        self.attempt = 0;
        self.next_dial_at = Some(now);
        self.reserved = false;
        self.next_reserve_at = None;
        Ok(())
    }

    /// The relay's PeerId.
    pub fn relay(&self) -> PeerId {
        self.relay
    }

    /// The relay, while we are connected to it.
    pub fn connected_relay(&self) -> Option<PeerId> {
        self.link.as_ref().map(|_| self.relay)
    }

    /// The address our connection to the relay was made on (ends in `/p2p/<relay>`).
    pub fn addr(&self) -> Option<&Multiaddr> {
        self.link.as_ref().map(|l| &l.addr)
    }

    pub fn is_up(&self) -> bool {
        self.link.is_some()
    }

    pub fn is_reserved(&self) -> bool {
        self.reserved
    }

    /// Whether `connection` is the one we use to the relay.
    pub fn is_link(&self, connection: ConnectionId) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.connection == connection)
    }

    /// Whether it is time to dial the relay again.
    pub fn dial_due(&self, now: Instant) -> bool {
        self.link.is_none() && !self.dialing && self.next_dial_at.is_some_and(|at| now >= at)
    }

    /// A dial of the relay (all its addresses, one at a time); the attempt number for the
    /// status. Call [`RelayLink::dialing`] if the swarm took it.
    pub fn dial(&mut self) -> (DialOpts, u32) {
        self.attempt += 1;
        self.next_dial_at = None;
        let opts = DialOpts::peer_id(self.relay)
            .addresses(self.addrs.clone())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        (opts, self.attempt)
    }

    /// The swarm is dialing the relay.
    pub fn dialing(&mut self) {
        self.dialing = true;
    }

    /// A connection to the relay is up. Returns the status to report, or `None` when we already
    /// use another connection to it.
    pub fn established(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
        transport: TransportKind,
    ) -> Option<RelayStatus> {
        if self.link.is_some() {
            return None;
        }
        self.dialing = false;
        self.attempt = 0;
        let addr = with_peer(remote, self.relay);
        self.link = Some(Link {
            connection,
            addr: addr.clone(),
            transport,
        });
        Some(RelayStatus::Connected { transport, addr })
    }

    /// The link is gone (closed, failed to dial, or refused): everything on it is forgotten,
    /// and the next dial waits for the backoff. Returns that wait and the circuit listener to
    /// remove.
    pub fn lost(&mut self, now: Instant) -> (Duration, Option<ListenerId>) {
        self.dialing = false;
        self.link = None;
        self.reserved = false;
        self.next_reserve_at = None;
        let retry_in = self.backoff();
        self.next_dial_at = Some(now + retry_in);
        (retry_in, self.circuit_listener.take())
    }

    /// The next wait: `backoff_initial` doubling per failed attempt up to `backoff_max`, ±20 %
    /// jitter so that many clients of a restarted relay do not redial in lockstep.
    pub fn backoff(&self) -> Duration {
        let exp = self.attempt.saturating_sub(1).min(16);
        let base = self
            .backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.backoff_max);
        jittered(base, 0.2)
    }

    /// Whether to ask for a reservation now: connected, allowed (`authed`), none held or
    /// requested, and any backoff over.
    pub fn reserve_due(&self, authed: bool, now: Instant) -> bool {
        self.link.is_some()
            && authed
            && self.circuit_listener.is_none()
            && self.next_reserve_at.is_none_or(|at| now >= at)
    }

    /// The address to listen on for a reservation (`<relay addr>/p2p-circuit`).
    pub fn reservation_addr(&self) -> Option<Multiaddr> {
        self.addr()
            .map(|addr| addr.clone().with(Protocol::P2pCircuit))
    }

    /// The swarm is listening on the relay (the reservation request is on its way).
    pub fn reservation_requested(&mut self, listener: ListenerId) {
        self.circuit_listener = Some(listener);
        self.next_reserve_at = None;
    }

    /// The reservation could not be requested: try again after the returned wait.
    pub fn reservation_failed(&mut self, now: Instant) -> Duration {
        let retry_in = self.backoff();
        self.next_reserve_at = Some(now + retry_in);
        retry_in
    }

    /// The relay accepted our reservation. The first acceptance on a link returns the status to
    /// report (renewals return `None`).
    pub fn reservation_accepted(&mut self, relay: PeerId, local: PeerId) -> Option<RelayStatus> {
        let link = self.link.as_ref()?;
        if relay != self.relay {
            return None;
        }
        let first = !self.reserved;
        self.reserved = true;
        self.attempt = 0;
        first.then(|| RelayStatus::Reserved {
            transport: link.transport,
            circuit_addr: circuit_addr(&link.addr, local),
        })
    }

    /// A listener closed. When it was our reservation and the link is still up, returns the
    /// wait before asking again.
    pub fn listener_closed(&mut self, listener: ListenerId, now: Instant) -> Option<Duration> {
        if self.circuit_listener != Some(listener) {
            return None;
        }
        self.circuit_listener = None;
        self.reserved = false;
        self.link.as_ref()?;
        let retry_in = self.backoff();
        self.attempt += 1;
        self.next_reserve_at = Some(now + retry_in);
        Some(retry_in)
    }

    /// What a link taken over up (a standby's) reports: connected, and reserved if it is.
    pub fn statuses(&self, local: PeerId) -> Vec<RelayStatus> {
        let Some(link) = &self.link else {
            return Vec::new();
        };
        let mut out = vec![RelayStatus::Connected {
            transport: link.transport,
            addr: link.addr.clone(),
        }];
        if self.reserved {
            out.push(RelayStatus::Reserved {
                transport: link.transport,
                circuit_addr: circuit_addr(&link.addr, local),
            });
        }
        out
    }

    /// Whether `listener` is our reservation.
    pub fn is_reservation(&self, listener: ListenerId) -> bool {
        self.circuit_listener == Some(listener)
    }
}

/// A relay at one address, and a link to it first dialed at `now` (for tests).
#[cfg(test)]
pub(crate) fn relay_link(now: Instant) -> (PeerId, Multiaddr, RelayLink) {
    let relay = PeerId::random();
    let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{relay}")
        .parse()
        .expect("a relay address");
    let link = RelayLink::new(
        std::slice::from_ref(&addr),
        Duration::from_millis(500),
        Duration::from_secs(8),
        now,
    )
    .expect("a link");
    (relay, addr, link)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_a_connection_resets_it() {
        let now = Instant::now();
        let (relay, addr, mut link) = relay_link(now);
        assert_eq!(link.relay(), relay);
        assert!(link.dial_due(now));
        let mut waits = Vec::new();
        for _ in 0..8 {
            let (_, attempt) = link.dial();
            link.dialing();
            assert!(!link.dial_due(now), "no second dial while one is running");
            let (wait, _) = link.lost(now);
            waits.push((attempt, wait));
        }
        for (attempt, wait) in &waits {
            let base = Duration::from_millis(500 * (1 << (attempt - 1).min(4)))
                .min(Duration::from_secs(8));
            assert!(
                *wait >= base.mul_f64(0.8) && *wait <= base.mul_f64(1.2),
                "{attempt}: {wait:?}"
            );
        }
        assert!(!link.dial_due(now));
        assert!(link.dial_due(now + Duration::from_secs(10)));
        link.dial();
        let status = link.established(ConnectionId::new_unchecked(1), &addr, TransportKind::Tcp);
        assert!(matches!(status, Some(RelayStatus::Connected { .. })));
        assert!(link
            .established(ConnectionId::new_unchecked(2), &addr, TransportKind::Tcp)
            .is_none());
        assert!(link.is_link(ConnectionId::new_unchecked(1)));
        let (wait, _) = link.lost(now);
        assert!(
            wait <= Duration::from_millis(600),
            "reset after a success: {wait:?}"
        );
    }

    #[test]
    fn a_reservation_waits_for_the_grant_and_is_asked_again_after_it_closes() {
        let me = PeerId::random();
        let now = Instant::now();
        let (relay, addr, mut link) = relay_link(now);
        link.established(
            ConnectionId::new_unchecked(1),
            &addr,
            TransportKind::WebSocket,
        );
        assert!(
            !link.reserve_due(false, now),
            "not before the relay granted us a level"
        );
        assert!(link.reserve_due(true, now));
        assert_eq!(
            link.reservation_addr().unwrap().to_string(),
            format!("{addr}/p2p-circuit")
        );
        let listener = ListenerId::next();
        link.reservation_requested(listener);
        assert!(!link.reserve_due(true, now));
        let status = link.reservation_accepted(relay, me);
        assert!(matches!(
            status,
            Some(RelayStatus::Reserved {
                transport: TransportKind::WebSocket,
                ..
            })
        ));
        assert!(link.is_reserved());
        assert!(
            link.reservation_accepted(relay, me).is_none(),
            "a renewal is not news"
        );
        let wait = link.listener_closed(listener, now).unwrap();
        assert!(!link.is_reserved());
        assert!(!link.reserve_due(true, now));
        assert!(link.reserve_due(true, now + wait));
    }

    #[test]
    fn a_lost_link_moves_to_another_relay_and_dials_it_at_once() {
        let now = Instant::now();
        let (_, addr, mut link) = relay_link(now);
        link.dial();
        link.dialing();
        link.established(ConnectionId::new_unchecked(1), &addr, TransportKind::Tcp);
        let (wait, _) = link.lost(now);
        assert!(!link.dial_due(now), "the old relay waits {wait:?}");
        let other = PeerId::random();
        let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{other}")
            .parse()
            .unwrap();
        let foreign: Multiaddr = format!("/ip4/127.0.0.1/tcp/4003/p2p/{}", PeerId::random())
            .parse()
            .unwrap();
        assert!(
            link.retarget(&[ws.clone(), foreign], now).is_err(),
            "addresses of two relays"
        );
        assert_ne!(link.relay(), other, "a refused target changes nothing");
        link.retarget(std::slice::from_ref(&ws), now).unwrap();
        assert_eq!(link.relay(), other);
        assert!(link.dial_due(now));
        let (_, attempt) = link.dial();
        assert_eq!(attempt, 1, "the new relay's attempts count from 1");
    }
}
