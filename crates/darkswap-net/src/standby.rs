//! The reservations a node holds besides its link's: `NodeConfig::reservations` − 1 standbys,
//! each on another relay of the pool (the best-ranked that is free when one is added), with a
//! connection, an authentication and a reservation of its own. Other traders reach us through
//! any of them, and a trader on one of those relays reaches us without crossing relays. When the
//! link's relay is lost, a standby that holds its reservation becomes the link at once: no dial,
//! no authentication, no reservation to wait for.
//!
//! [`Standbys`] holds their state; the node dials, sends and listens, and tells it what
//! happened. A standby that fails is dropped (the pool backs its relay off), and another is
//! chosen on a later tick.

use libp2p::core::transport::ListenerId;
use libp2p::{Multiaddr, PeerId};

use crate::relay_auth::RelayAuth;
use crate::relay_link::RelayLink;
use darkswap_proto::addr::circuit_addr;
use darkswap_proto::limits::AnnouncedLimits;

/// Most reservations a node holds at once (`NodeConfig::reservations` is capped here).
pub(crate) const MAX_RESERVATIONS: usize = 4;

/// One standby: the link to its relay, our authentication there, and the market limits its
/// grant announced (kept under once it becomes the link).
pub(crate) struct Standby {
    pub link: RelayLink,
    pub auth: RelayAuth,
    pub limits: Option<AnnouncedLimits>,
}

/// The standbys (see the module documentation), best-ranked first.
pub(crate) struct Standbys {
    list: Vec<Standby>,
    max: usize,
}

impl Standbys {
    /// Room for `max` standbys (0: the node holds only its link's reservation).
    pub fn new(max: usize) -> Self {
        Standbys {
            list: Vec::with_capacity(max),
            max,
        }
    }

    /// Whether another standby may be added.
    pub fn has_room(&self) -> bool {
        self.list.len() < self.max
    }

    /// The standbys' relays, best-ranked first.
    pub fn relays(&self) -> Vec<PeerId> {
        self.list.iter().map(|s| s.link.relay()).collect()
    }

    pub fn is_standby(&self, relay: &PeerId) -> bool {
        self.list.iter().any(|s| s.link.relay() == *relay)
    }

    pub fn add(&mut self, standby: Standby) {
        debug_assert!(self.has_room() && !self.is_standby(&standby.link.relay()));
        if self.has_room() {
            self.list.push(standby);
        }
    }

    pub fn get_mut(&mut self, relay: &PeerId) -> Option<&mut Standby> {
        self.list.iter_mut().find(|s| s.link.relay() == *relay)
    }

    /// Drops the standby on `relay`: returned, so its reservation's listener can be removed.
    pub fn remove(&mut self, relay: &PeerId) -> Option<Standby> {
        let i = self.list.iter().position(|s| s.link.relay() == *relay)?;
        Some(self.list.remove(i))
    }

    /// The standby whose reservation `listener` is.
    pub fn by_listener(&self, listener: ListenerId) -> Option<PeerId> {
        self.list
            .iter()
            .find(|s| s.link.is_reservation(listener))
            .map(|s| s.link.relay())
    }

    /// The best-ranked standby holding its reservation, taken out to become the link.
    pub fn take_reserved(&mut self) -> Option<Standby> {
        let i = self.list.iter().position(|s| s.link.is_reserved())?;
        Some(self.list.remove(i))
    }

    /// The relay addresses (ending in `/p2p/<relay>`) of the standbys holding a reservation:
    /// other traders reach us through each.
    pub fn reserved_addrs(&self) -> Vec<Multiaddr> {
        self.list
            .iter()
            .filter(|s| s.link.is_reserved())
            .filter_map(|s| s.link.addr().cloned())
            .collect()
    }

    /// Our circuit addresses through the standbys holding a reservation.
    pub fn circuit_addrs(&self, local: PeerId) -> Vec<Multiaddr> {
        self.reserved_addrs()
            .iter()
            .map(|addr| circuit_addr(addr, local))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use darkswap_auth::client::Credential;
    use darkswap_proto::addr::TransportKind;
    use libp2p::swarm::ConnectionId;
    use web_time::Instant;

    fn standby(now: Instant) -> (PeerId, Multiaddr, Standby) {
        let (relay, addr, link) = crate::relay_link::relay_link(now);
        let auth = RelayAuth::new(Credential::Identity, None, None, Duration::from_secs(30));
        (
            relay,
            addr,
            Standby {
                link,
                auth,
                limits: None,
            },
        )
    }

    #[test]
    fn only_reserved_standbys_are_reachable_and_promoted_best_first() {
        let now = Instant::now();
        let local = PeerId::random();
        let mut standbys = Standbys::new(2);
        let (a, addr_a, sa) = standby(now);
        let (b, addr_b, sb) = standby(now);
        standbys.add(sa);
        assert!(standbys.has_room());
        standbys.add(sb);
        assert!(!standbys.has_room());
        assert_eq!(standbys.relays(), vec![a, b]);
        // Connected, nothing reserved: no address to give, none to promote.
        for (relay, addr) in [(a, &addr_a), (b, &addr_b)] {
            let s = standbys.get_mut(&relay).unwrap();
            assert!(s
                .link
                .established(ConnectionId::new_unchecked(1), addr, TransportKind::Tcp)
                .is_some());
        }
        assert!(standbys.circuit_addrs(local).is_empty());
        assert!(standbys.take_reserved().is_none());
        // Only the second holds a reservation: it alone is given and promoted.
        let s = standbys.get_mut(&b).unwrap();
        s.link.reservation_requested(ListenerId::next());
        assert!(s.link.reservation_accepted(b, local).is_some());
        assert_eq!(
            standbys.circuit_addrs(local),
            vec![circuit_addr(&addr_b, local)]
        );
        assert_eq!(standbys.take_reserved().unwrap().link.relay(), b);
        assert_eq!(standbys.relays(), vec![a]);
        assert!(standbys.remove(&a).is_some());
        assert!(standbys.remove(&a).is_none());
    }

    #[test]
    fn none_allowed_holds_none() {
        let standbys = Standbys::new(0);
        assert!(!standbys.has_room());
    }
}
