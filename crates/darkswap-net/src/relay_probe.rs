//! The node's relay pool (`darkswap_relays::RelayPool`) and its probes: which relays to ask for
//! records and when, which to dial now to measure, and what a ping, a failed dial or a silence
//! means for the pool. The serving relay is measured by the link's own pings; every other relay
//! by a short connection that ends after its first ping. [`RelayProbes`] decides; the node dials,
//! pings and disconnects, and tells it what happened.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use darkswap_relays::{Choice, Failure, PoolConfig, RelayPool, RelayView, SavedPool};
use libp2p::{Multiaddr, PeerId};

use crate::addr::sort_for_dialing;

/// Relays whose answering address is remembered (the pool holds at most 64 relays by default;
/// entries of relays gone from the pool are dropped when this fills).
const MAX_ANSWERED_ON: usize = 256;
/// Probes in flight at once.
pub const MAX_PROBES_IN_FLIGHT: usize = 4;
/// A probe with no ping by then failed.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The pool is reported at most this often (the serving relay's pings change it every few
/// seconds).
const REPORT_EVERY_MS: u64 = 1_000;

/// What the node should report of the pool.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolReport {
    /// Every relay, best first.
    pub relays: Vec<RelayView>,
    /// The pool to keep across a restart.
    pub saved: SavedPool,
    /// When the relay last answered with the records it knows (unix ms), if it has.
    pub records_at_ms: Option<u64>,
    /// The relay the link uses now (the serving one until the link moves).
    pub linked: PeerId,
    /// The relays that hold a standby reservation of ours besides the link's (connected and
    /// kept; see `NodeConfig::reservations`).
    pub standbys: Vec<PeerId>,
}

pub(crate) struct RelayProbes {
    pool: RelayPool,
    serving: PeerId,
    /// Probes in flight, with when each started (unix ms).
    in_flight: HashMap<PeerId, u64>,
    records_every_ms: u64,
    next_records_ms: u64,
    probing: bool,
    /// Whether the link may move to another relay of the pool when its own fails.
    failover: bool,
    /// Relays the node keeps a standby connection to: measured by that connection's pings,
    /// never probed.
    standbys: BTreeSet<PeerId>,
    /// The address each relay last answered a probe on, dialed first next time (a relay lists
    /// every interface it listens on, and a browser tries them one at a time, each WebRTC
    /// address with its dial timeout).
    answered_on: HashMap<PeerId, Multiaddr>,
    changed: bool,
    last_report_ms: u64,
    records_at_ms: Option<u64>,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl RelayProbes {
    /// A pool restored from `saved` (if any), with `serving` (at `addrs`) as the serving relay.
    /// With `probing` off the pool learns records and ranks by what it is told, but dials no
    /// other relay.
    pub fn new(
        config: PoolConfig,
        saved: Option<&SavedPool>,
        serving: PeerId,
        addrs: Vec<Multiaddr>,
        records_every: Duration,
        probing: bool,
        now_ms: u64,
    ) -> Self {
        let mut pool = match saved {
            Some(saved) => RelayPool::restore(config, saved, now_ms),
            None => RelayPool::new(config),
        };
        pool.serving(serving, addrs);
        RelayProbes {
            pool,
            serving,
            in_flight: HashMap::new(),
            records_every_ms: ms(records_every),
            next_records_ms: 0,
            probing,
            failover: false,
            standbys: BTreeSet::new(),
            answered_on: HashMap::new(),
            changed: true,
            last_report_ms: 0,
            records_at_ms: None,
        }
    }

    /// Lets the link move to another relay of the pool when its own fails (see
    /// [`RelayProbes::fail_over`]).
    pub fn with_failover(mut self, on: bool) -> Self {
        self.failover = on;
        self
    }

    /// A relay of the pool other than the serving one: its connections are probes, not traders
    /// (the node asks about standbys first).
    pub fn is_other_relay(&self, peer: &PeerId) -> bool {
        *peer != self.serving && (self.in_flight.contains_key(peer) || self.pool.contains(peer))
    }

    /// Whether to ask the serving relay for the records it knows now (then not again for a
    /// period).
    pub fn records_due(&mut self, now_ms: u64) -> bool {
        if now_ms < self.next_records_ms {
            return false;
        }
        self.next_records_ms = now_ms.saturating_add(self.records_every_ms);
        true
    }

    /// The records the serving relay answered with; each checked by the pool (a bad one is
    /// dropped: the relay already refused what it could check, and this one is counted there).
    pub fn records(&mut self, records: &[Vec<u8>], now_ms: u64) {
        self.records_at_ms = Some(now_ms);
        self.changed = true;
        for bytes in records {
            if self.pool.learn(bytes, now_ms).is_ok() {
                self.changed = true;
            }
        }
    }

    /// The serving relay answered a ping of the link.
    pub fn serving_rtt(&mut self, rtt: Duration, now_ms: u64) {
        self.pool
            .probed(&self.serving, rtt.as_secs_f64() * 1e3, now_ms);
        self.changed = true;
    }

    /// The link's relay failed (lost, unreachable, or it refused our authentication).
    pub fn serving_failed(&mut self, why: Failure, now_ms: u64) {
        self.pool.failed(&self.serving, why, now_ms);
        self.changed = true;
    }

    /// Where the link should go now that it is down: the best usable relay of the pool when
    /// that is another one than the link's (the link's own relay just failed, so it backs off
    /// in the pool and ranks out), with its addresses in this platform's order (a probe of it
    /// in flight becomes the link's: see [`RelayProbes::linked`]). `None`: stay and redial the link's relay after its backoff (no other relay is usable,
    /// or failover is off).
    pub fn fail_over_target(&self, now_ms: u64) -> Option<(PeerId, Vec<Multiaddr>)> {
        if !self.failover {
            return None;
        }
        let (relay, addrs) = self
            .pool
            .ranked(now_ms)
            .into_iter()
            .filter(|v| v.rank.is_some())
            .find_map(|v| {
                let addrs = self.dial_order(&v.relay, &v.addrs);
                (!addrs.is_empty()).then_some((v.relay, addrs))
            })?;
        (relay != self.serving).then_some((relay, addrs))
    }

    /// Where to keep a standby reservation: the best usable relay of the pool that is neither
    /// the link's nor in `taken` (the standbys held), measured (unless probing is off), with no
    /// probe in flight (its connection would be the standby's), and with an address this
    /// platform dials. `None` with failover off: a node that stays on one relay holds no other.
    pub fn standby_target(
        &self,
        taken: &[PeerId],
        now_ms: u64,
    ) -> Option<(PeerId, Vec<Multiaddr>)> {
        self.standby_candidate(taken, now_ms)
            .map(|(v, addrs)| (v.relay, addrs))
    }

    fn standby_candidate(
        &self,
        taken: &[PeerId],
        now_ms: u64,
    ) -> Option<(RelayView, Vec<Multiaddr>)> {
        if !self.failover {
            return None;
        }
        self.pool
            .ranked(now_ms)
            .into_iter()
            .filter(|v| {
                v.rank.is_some()
                    && (v.rtt_ms.is_some() || !self.probing)
                    && v.relay != self.serving
                    && !taken.contains(&v.relay)
                    && !self.in_flight.contains_key(&v.relay)
            })
            .find_map(|v| {
                let addrs = self.dial_order(&v.relay, &v.addrs);
                (!addrs.is_empty()).then_some((v, addrs))
            })
    }

    /// A standby to give up for a better relay: the worst-ranked of `standbys` when a free
    /// relay (see [`RelayProbes::standby_target`]) ranks above it and answers in under half
    /// its round trip (so that two relays about as near do not take turns).
    pub fn standby_to_replace(
        &self,
        standbys: &[PeerId],
        taken: &[PeerId],
        now_ms: u64,
    ) -> Option<PeerId> {
        let (better, _) = self.standby_candidate(taken, now_ms)?;
        let ranked = self.pool.ranked(now_ms);
        let worst = ranked.iter().rev().find(|v| standbys.contains(&v.relay))?;
        let ranks_above = match (better.rank, worst.rank) {
            (Some(b), Some(w)) => b < w,
            (Some(_), None) => true,
            _ => false,
        };
        let much_nearer = match (better.rtt_ms, worst.rtt_ms) {
            (Some(b), Some(w)) => b * 2.0 < w,
            (Some(_), None) => true,
            _ => false,
        };
        (ranks_above && much_nearer).then_some(worst.relay)
    }

    /// The node keeps (`on`) or no longer keeps a standby connection to `relay`.
    pub fn standby(&mut self, relay: PeerId, on: bool) {
        let changed = if on {
            self.standbys.insert(relay)
        } else {
            self.standbys.remove(&relay)
        };
        self.changed |= changed;
    }

    /// A standby relay answered a ping.
    pub fn standby_rtt(&mut self, relay: &PeerId, rtt: Duration, now_ms: u64) {
        self.pool.probed(relay, rtt.as_secs_f64() * 1e3, now_ms);
        self.changed = true;
    }

    /// A standby relay failed (lost, unreachable, refused us or our reservation): it backs off
    /// in the pool like any relay, and is no longer a standby.
    pub fn standby_failed(&mut self, relay: &PeerId, why: Failure, now_ms: u64) {
        self.standbys.remove(relay);
        self.pool.failed(relay, why, now_ms);
        self.changed = true;
    }

    /// `addrs` in this platform's order, the one `relay` last answered on first.
    fn dial_order(&self, relay: &PeerId, addrs: &[Multiaddr]) -> Vec<Multiaddr> {
        let mut sorted = sort_for_dialing(addrs);
        if let Some(good) = self.answered_on.get(relay) {
            if let Some(i) = sorted.iter().position(|a| a == good) {
                let good = sorted.remove(i);
                sorted.insert(0, good);
            }
        }
        sorted
    }

    /// A probe's connection to `relay` is up, on `addr` (one of those it was given).
    pub fn connected_on(&mut self, relay: PeerId, addr: Multiaddr) {
        if !self.in_flight.contains_key(&relay) {
            return;
        }
        if self.answered_on.len() >= MAX_ANSWERED_ON {
            let pool = &self.pool;
            self.answered_on.retain(|r, _| pool.contains(r));
        }
        if self.answered_on.len() < MAX_ANSWERED_ON {
            self.answered_on.insert(relay, addr);
        }
    }

    /// The link moved to `relay`: its pings measure that relay from now on, and the one it
    /// left is probed like any other. A probe of `relay` in flight is the link's from now on
    /// (its connection, or its failure): returns whether there was one.
    pub fn linked(&mut self, relay: PeerId) -> bool {
        self.serving = relay;
        self.standbys.remove(&relay);
        self.changed = true;
        self.in_flight.remove(&relay).is_some()
    }

    /// Whether the link's relay refused us and has not let us in since.
    pub fn serving_refused(&self) -> bool {
        self.pool.refused(&self.serving)
    }

    /// The link's relay granted us a level: a refusal it made before is forgotten.
    pub fn serving_admitted(&mut self) {
        if self.pool.admitted(&self.serving) {
            self.changed = true;
        }
    }

    /// The relays to dial now, with their addresses in this platform's order, each marked in
    /// flight. A relay with no address this platform dials fails at once.
    pub fn due(&mut self, now_ms: u64) -> Vec<(PeerId, Vec<Multiaddr>)> {
        if !self.probing {
            return Vec::new();
        }
        let mut out = Vec::new();
        for relay in self.pool.due(now_ms) {
            if self.in_flight.len() >= MAX_PROBES_IN_FLIGHT {
                break;
            }
            if relay == self.serving
                || self.in_flight.contains_key(&relay)
                || self.standbys.contains(&relay)
            {
                continue;
            }
            let addrs = self.dial_order(&relay, &self.pool.addrs(&relay, now_ms));
            if addrs.is_empty() {
                self.pool.failed(&relay, Failure::Unreachable, now_ms);
                self.changed = true;
                continue;
            }
            self.in_flight.insert(relay, now_ms);
            out.push((relay, addrs));
        }
        out
    }

    /// A probed relay answered a ping: true when it was a probe (the node then closes the
    /// connection).
    pub fn pinged(&mut self, relay: &PeerId, rtt: Duration, now_ms: u64) -> bool {
        if self.in_flight.remove(relay).is_none() {
            return false;
        }
        self.pool.probed(relay, rtt.as_secs_f64() * 1e3, now_ms);
        self.changed = true;
        true
    }

    /// A probe failed (the dial, or the ping): true when it was a probe.
    pub fn probe_failed(&mut self, relay: &PeerId, why: Failure, now_ms: u64) -> bool {
        if self.in_flight.remove(relay).is_none() {
            return false;
        }
        self.pool.failed(relay, why, now_ms);
        self.changed = true;
        true
    }

    /// Probes past [`PROBE_TIMEOUT`]: failed; the node closes their connections.
    pub fn timed_out(&mut self, now_ms: u64) -> Vec<PeerId> {
        let late: Vec<PeerId> = self
            .in_flight
            .iter()
            .filter(|(_, started)| now_ms >= started.saturating_add(ms(PROBE_TIMEOUT)))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &late {
            self.probe_failed(peer, Failure::NoPing, now_ms);
        }
        late
    }

    /// The trader's choice for a relay.
    pub fn choose(&mut self, relay: &PeerId, choice: Choice) {
        self.pool.choose(relay, choice);
        self.changed = true;
    }

    /// The pool, if it changed since the last report and a report is due.
    pub fn report(&mut self, now_ms: u64) -> Option<PoolReport> {
        if !self.changed || now_ms < self.last_report_ms.saturating_add(REPORT_EVERY_MS) {
            return None;
        }
        self.changed = false;
        self.last_report_ms = now_ms;
        Some(PoolReport {
            relays: self.pool.ranked(now_ms),
            saved: self.pool.save(),
            records_at_ms: self.records_at_ms,
            linked: self.serving,
            standbys: self.standbys.iter().copied().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_proto::relay_record::RelayRecord;
    use libp2p::identity::Keypair;

    const NOW: u64 = 1_800_000_000_000;

    fn record(key: &Keypair) -> Vec<u8> {
        let me = key.public().to_peer_id();
        RelayRecord {
            seq: 1,
            issued_at_ms: NOW,
            expires_at_ms: NOW + 600_000,
            name: "other".into(),
            region: String::new(),
            addrs: vec![
                format!("/ip4/127.0.0.1/tcp/4001/p2p/{me}").parse().unwrap(),
                format!("/ip4/127.0.0.1/tcp/4002/ws/p2p/{me}")
                    .parse()
                    .unwrap(),
            ],
            auth_methods: vec![],
            limits: None,
            load_permille: 0,
        }
        .sign(key, NOW)
        .unwrap()
        .bytes()
        .to_vec()
    }

    fn probes() -> (RelayProbes, PeerId) {
        let serving = Keypair::generate_ed25519().public().to_peer_id();
        let p = RelayProbes::new(
            PoolConfig::default(),
            None,
            serving,
            vec![format!("/ip4/127.0.0.1/tcp/1/p2p/{serving}")
                .parse()
                .unwrap()],
            Duration::from_secs(60),
            true,
            NOW,
        );
        (p, serving)
    }

    #[test]
    fn probes_other_relays_and_reports_what_they_answered() {
        let (mut p, serving) = probes();
        assert!(p.records_due(NOW));
        assert!(!p.records_due(NOW + 1));
        assert!(p.records_due(NOW + 60_000));
        let others: Vec<Keypair> = (0..6).map(|_| Keypair::generate_ed25519()).collect();
        let records: Vec<Vec<u8>> = others.iter().map(record).collect();
        p.records(&records, NOW);
        // At most four at once; never the serving relay (its link measures it).
        let due = p.due(NOW);
        assert_eq!(due.len(), MAX_PROBES_IN_FLIGHT);
        assert!(due
            .iter()
            .all(|(r, addrs)| *r != serving && !addrs.is_empty()));
        assert!(p.is_other_relay(&due[0].0));
        assert!(!p.is_other_relay(&serving));
        assert!(p.due(NOW).len() <= 2, "no relay is probed twice at once");
        assert!(p.pinged(&due[0].0, Duration::from_millis(7), NOW));
        assert!(!p.pinged(&due[0].0, Duration::from_millis(7), NOW), "once");
        assert!(p.probe_failed(&due[1].0, Failure::Unreachable, NOW));
        p.serving_rtt(Duration::from_millis(3), NOW);
        // The other two in flight time out.
        let late = p.timed_out(NOW + ms(PROBE_TIMEOUT));
        assert_eq!(late.len(), 2);
        let at = NOW + ms(PROBE_TIMEOUT) + 500;
        let report = p.report(at).unwrap();
        assert_eq!(report.relays.len(), 7);
        assert_eq!(report.relays[0].relay, serving);
        assert_eq!(report.relays[1].relay, due[0].0);
        assert_eq!(report.relays[1].rtt_ms, Some(7.0));
        // Two not probed yet rank behind (an unknown round trip counts as a second), and the
        // unreachable one, whose 5 s backoff is over, behind them (its failure doubles its
        // cost); the two that timed out just now are backing off, unranked.
        assert_eq!(report.relays.iter().filter(|v| v.rank.is_some()).count(), 5);
        assert_eq!(report.relays[4].relay, due[1].0);
        assert!(report.relays[5..]
            .iter()
            .all(|v| v.rank.is_none() && v.last_failure == Some(Failure::NoPing)));
        assert!(p.report(at + 1).is_none(), "nothing changed");
        p.choose(&due[0].0, Choice::Excluded);
        assert!(p.report(at + 1).is_none(), "not yet due");
        let report = p.report(at + 1_001).unwrap();
        assert_eq!(report.relays[0].relay, serving);
        assert_eq!(report.saved.relays.len(), 7);
    }

    #[test]
    fn standbys_go_to_the_nearest_measured_relays_and_make_way_for_a_much_nearer_one() {
        let (p, serving) = probes();
        let mut p = p.with_failover(true);
        let others: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
        p.records(&others.iter().map(record).collect::<Vec<_>>(), NOW);
        let ids: Vec<PeerId> = others.iter().map(|k| k.public().to_peer_id()).collect();
        // Nothing measured, all being probed: no standby yet.
        let due = p.due(NOW);
        assert_eq!(due.len(), 3);
        assert_eq!(p.standby_target(&[], NOW), None);
        // The far one answers first: it is the only candidate, and becomes the standby.
        p.pinged(&ids[2], Duration::from_millis(240), NOW);
        let (first, addrs) = p.standby_target(&[], NOW).unwrap();
        assert_eq!(first, ids[2]);
        assert!(!addrs.is_empty());
        p.standby(first, true);
        assert!(
            p.due(NOW + 3_600_000).iter().all(|(r, _)| *r != first),
            "never probed"
        );
        assert_eq!(p.report(NOW + 1_000).unwrap().standbys, vec![first]);
        // A relay about as far does not replace it; one much nearer does.
        p.pinged(&ids[1], Duration::from_millis(200), NOW);
        assert_eq!(p.standby_to_replace(&[first], &[first], NOW), None);
        p.pinged(&ids[0], Duration::from_millis(10), NOW);
        assert_eq!(p.standby_to_replace(&[first], &[first], NOW), Some(first));
        assert_ne!(p.standby_target(&[first], NOW).unwrap().0, serving);
        // A standby that fails is one no longer, and backs off.
        p.standby_failed(&first, Failure::Lost, NOW);
        let report = p.report(NOW + 2_000).unwrap();
        assert!(report.standbys.is_empty());
        let view = report.relays.iter().find(|v| v.relay == first).unwrap();
        assert_eq!(view.rank, None);
        // With failover off, no standby at all.
        let (p, _) = probes();
        assert_eq!(p.standby_target(&[], NOW), None);
    }

    #[test]
    fn without_probing_nothing_is_dialed() {
        let serving = Keypair::generate_ed25519().public().to_peer_id();
        let mut p = RelayProbes::new(
            PoolConfig::default(),
            None,
            serving,
            vec![],
            Duration::from_secs(60),
            false,
            NOW,
        );
        p.records(&[record(&Keypair::generate_ed25519())], NOW);
        assert!(p.due(NOW).is_empty());
    }

    #[test]
    fn a_failed_link_moves_to_the_best_other_relay_and_takes_over_its_probe() {
        let (p, serving) = probes();
        let mut p = p.with_failover(true);
        let others: Vec<Keypair> = (0..2).map(|_| Keypair::generate_ed25519()).collect();
        p.records(&others.iter().map(record).collect::<Vec<_>>(), NOW);
        let (fast, slow) = (
            others[0].public().to_peer_id(),
            others[1].public().to_peer_id(),
        );
        p.serving_rtt(Duration::from_millis(5), NOW);
        assert_eq!(
            p.fail_over_target(NOW),
            None,
            "the link's relay is the best"
        );
        let due = p.due(NOW);
        assert_eq!(due.len(), 2);
        // The fast one answered on its second address: dialed first from now on.
        let (_, fast_addrs) = due.iter().find(|(r, _)| *r == fast).unwrap();
        assert_eq!(fast_addrs.len(), 2);
        p.connected_on(fast, fast_addrs[1].clone());
        p.pinged(&fast, Duration::from_millis(20), NOW);
        p.serving_failed(Failure::Lost, NOW);
        // The fast one, measured, first.
        let (to, addrs) = p.fail_over_target(NOW).unwrap();
        assert_eq!(to, fast);
        assert_eq!(addrs, vec![fast_addrs[1].clone(), fast_addrs[0].clone()]);
        assert!(!p.linked(to), "its probe was over");
        assert_eq!(p.serving, fast);
        assert!(
            p.is_other_relay(&serving),
            "the old link's relay is probed now"
        );
        // The new relay refuses us: ranked last, and we would leave it for the slow one once
        // its probe is over.
        p.serving_failed(Failure::AuthRefused, NOW);
        assert!(p.serving_refused());
        // The slow one, still being probed (unmeasured), is next: its probe becomes the link's.
        assert_eq!(p.fail_over_target(NOW).map(|t| t.0), Some(slow));
        assert!(p.linked(slow), "its probe was in flight");
        assert!(
            !p.pinged(&slow, Duration::from_millis(90), NOW),
            "no longer a probe"
        );
        assert!(p.timed_out(NOW + ms(PROBE_TIMEOUT)).is_empty());
        p.linked(fast);
        p.serving_admitted();
        assert!(!p.serving_refused());
        // Off, nothing moves.
        let mut off = probes().0;
        off.serving_failed(Failure::Lost, NOW);
        off.records(&[record(&others[0])], NOW);
        assert_eq!(off.fail_over_target(NOW), None);
    }
}
