//! A client's relay pool: the relays it knows (the one that served it, and those learned from
//! checked relay records), how each answered when probed (round-trip time as an exponentially
//! weighted average, successes, failures in a row and the backoff they earn, the auth outcome),
//! the trader's pins and exclusions, and the ranking that decides where to hold reservations.
//!
//! Sans-IO: the caller probes, dials and authenticates, and reports here with the time; the pool
//! decides what is due and who ranks first. It is bounded ([`PoolConfig::capacity`]) and can be
//! saved and restored ([`SavedPool`]) so that a reload starts from what the last session learned.

use std::collections::HashMap;

use darkswap_proto::relay_record::SignedRelayRecord;
use libp2p_identity::PeerId;
use multiaddr::Multiaddr;
use serde::{Deserialize, Serialize};

use crate::records::{Offered, RecordSet, SetRefusal};

/// The pool's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolConfig {
    /// Most relays kept (the serving relay and pinned ones are never dropped for room).
    pub capacity: usize,
    /// Relays to hold reservations on (K).
    pub reserve_on: usize,
    /// How often a relay is probed again after an answer.
    pub probe_every_ms: u64,
    /// The first wait after a failure; doubled with each failure in a row.
    pub backoff_initial_ms: u64,
    /// The longest wait after failures.
    pub backoff_max_ms: u64,
    /// Weight of a new round-trip time in the average (0 to 1).
    pub rtt_weight: f64,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            capacity: 64,
            reserve_on: 2,
            probe_every_ms: 60_000,
            backoff_initial_ms: 5_000,
            backoff_max_ms: 600_000,
            rtt_weight: 0.3,
        }
    }
}

/// What the trader chose for a relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    /// Ranked like any other.
    #[default]
    Auto,
    /// Always among the relays reserved on, while it answers.
    Pinned,
    /// Never dialed.
    Excluded,
}

/// Why a relay was dropped from use for a while.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// It could not be reached (dial failed or timed out).
    Unreachable,
    /// It did not answer a ping in time.
    NoPing,
    /// It refused our authentication.
    AuthRefused,
    /// It refused our reservation.
    ReservationRefused,
    /// The connection closed under us.
    Lost,
}

impl Failure {
    /// Its label, for metrics and the page.
    pub fn label(self) -> &'static str {
        match self {
            Failure::Unreachable => "unreachable",
            Failure::NoPing => "no_ping",
            Failure::AuthRefused => "auth_refused",
            Failure::ReservationRefused => "reservation_refused",
            Failure::Lost => "lost",
        }
    }
}

/// One relay as the pool knows it.
#[derive(Debug, Clone)]
struct Entry {
    /// The relay that served the client: known without a record.
    serving: bool,
    /// Addresses from the serving relay's relay-info (records bring their own).
    addrs: Vec<Multiaddr>,
    rtt_ms: Option<f64>,
    successes: u32,
    failures: u32,
    last_failure: Option<Failure>,
    next_try_ms: u64,
    last_probe_ms: Option<u64>,
    choice: Choice,
}

impl Entry {
    fn new(serving: bool) -> Self {
        Entry {
            serving,
            addrs: Vec::new(),
            rtt_ms: None,
            successes: 0,
            failures: 0,
            last_failure: None,
            next_try_ms: 0,
            last_probe_ms: None,
            choice: Choice::Auto,
        }
    }

    /// The relay refused to let us in, and has not granted us a level since.
    fn refused(&self) -> bool {
        self.last_failure == Some(Failure::AuthRefused)
    }
}

/// A relay's line in the pool, best first in [`RelayPool::ranked`].
#[derive(Debug, Clone, PartialEq)]
pub struct RelayView {
    /// Its PeerId.
    pub relay: PeerId,
    /// Its rank, from 1; `None` when it is not usable now (excluded, backing off).
    pub rank: Option<usize>,
    /// Its record's name and region (empty without a record).
    pub name: String,
    /// See `name`.
    pub region: String,
    /// The average round-trip time, once probed.
    pub rtt_ms: Option<f64>,
    /// Its load figure (reservations per thousand), from its record.
    pub load_permille: Option<u16>,
    /// Probes and connections that succeeded, and failures in a row.
    pub successes: u32,
    /// See `successes`.
    pub failures: u32,
    /// Why it was last dropped, if it was.
    pub last_failure: Option<Failure>,
    /// When it was last probed (answered or failed), unix ms; `None` in this session yet.
    pub last_probe_ms: Option<u64>,
    /// Backing off until then (unix ms), if it is.
    pub backoff_until_ms: Option<u64>,
    /// The trader's choice.
    pub choice: Choice,
    /// The relay that served the page (or the CLI's configured relay).
    pub serving: bool,
    /// Where to dial it.
    pub addrs: Vec<Multiaddr>,
}

/// The pool (see the module documentation).
#[derive(Debug)]
pub struct RelayPool {
    config: PoolConfig,
    records: RecordSet,
    entries: HashMap<PeerId, Entry>,
}

/// Why the pool did not take a relay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolRefusal {
    /// Its record did not check, or is older than the one held.
    #[error(transparent)]
    Record(#[from] SetRefusal),
    /// The pool is full of relays it keeps for a reason (serving, pinned, answering).
    #[error("the relay pool is full")]
    Full,
}

impl RelayPool {
    /// An empty pool.
    pub fn new(config: PoolConfig) -> Self {
        RelayPool {
            config,
            records: RecordSet::new(config.capacity.max(1), None),
            entries: HashMap::new(),
        }
    }

    /// The relay that served us (or the one configured), with its addresses: always kept.
    pub fn serving(&mut self, relay: PeerId, addrs: Vec<Multiaddr>) {
        let entry = self
            .entries
            .entry(relay)
            .or_insert_with(|| Entry::new(true));
        entry.serving = true;
        entry.addrs = addrs;
    }

    /// A relay record from relay-info or a relays' answer: checked, and its relay entered.
    pub fn learn(&mut self, bytes: &[u8], now_ms: u64) -> Result<Offered, PoolRefusal> {
        let record = SignedRelayRecord::verify(bytes, now_ms).map_err(SetRefusal::from)?;
        let relay = record.relay();
        if !self.entries.contains_key(&relay) && self.entries.len() >= self.config.capacity {
            self.make_room(now_ms)?;
        }
        let offered = self.records.offer(bytes, now_ms)?;
        self.entries
            .entry(relay)
            .or_insert_with(|| Entry::new(false));
        Ok(offered)
    }

    /// Drops the relay least worth keeping: no record any more, or the most failures, among
    /// those neither serving nor pinned.
    fn make_room(&mut self, now_ms: u64) -> Result<(), PoolRefusal> {
        let victim = self
            .entries
            .iter()
            .filter(|(_, e)| !e.serving && e.choice != Choice::Pinned)
            .max_by_key(|(peer, e)| {
                let live = self.records.get(peer).is_some_and(|r| r.is_live(now_ms));
                (!live, e.failures, e.successes == 0)
            })
            .map(|(peer, _)| *peer)
            .ok_or(PoolRefusal::Full)?;
        self.entries.remove(&victim);
        self.records.remove(&victim);
        Ok(())
    }

    /// A probe of `relay` answered in `rtt_ms`.
    pub fn probed(&mut self, relay: &PeerId, rtt_ms: f64, now_ms: u64) {
        let weight = self.config.rtt_weight.clamp(0.0, 1.0);
        if let Some(e) = self.entries.get_mut(relay) {
            e.rtt_ms = Some(match e.rtt_ms {
                Some(avg) => avg + weight * (rtt_ms - avg),
                None => rtt_ms,
            });
            e.successes = e.successes.saturating_add(1);
            // An answer proves the relay is there, not that it lets us in: a refusal keeps
            // its backoff.
            if e.last_failure != Some(Failure::AuthRefused) {
                e.failures = 0;
                e.next_try_ms = 0;
            }
            e.last_probe_ms = Some(now_ms);
        }
    }

    /// `relay` failed: it is not tried again before its backoff, doubled with each failure in
    /// a row.
    pub fn failed(&mut self, relay: &PeerId, why: Failure, now_ms: u64) {
        let (initial, max) = (self.config.backoff_initial_ms, self.config.backoff_max_ms);
        if let Some(e) = self.entries.get_mut(relay) {
            e.failures = e.failures.saturating_add(1);
            e.last_failure = Some(why);
            e.last_probe_ms = Some(now_ms);
            let wait = initial
                .saturating_mul(1u64 << (e.failures - 1).min(30))
                .min(max);
            e.next_try_ms = now_ms.saturating_add(wait);
        }
    }

    /// `relay` granted us a level: a refusal it made before no longer keeps it out of the
    /// ranking.
    /// Returns whether that changed anything.
    pub fn admitted(&mut self, relay: &PeerId) -> bool {
        match self.entries.get_mut(relay) {
            Some(e) if e.refused() => {
                e.last_failure = None;
                e.failures = 0;
                e.next_try_ms = 0;
                true
            }
            _ => false,
        }
    }

    /// Whether `relay` refused us and has not let us in since.
    pub fn refused(&self, relay: &PeerId) -> bool {
        self.entries.get(relay).is_some_and(Entry::refused)
    }

    /// The trader's choice for `relay` (a relay not in the pool is ignored).
    pub fn choose(&mut self, relay: &PeerId, choice: Choice) {
        if let Some(e) = self.entries.get_mut(relay) {
            e.choice = choice;
        }
    }

    /// Where to dial `relay`: its record's addresses, or those the serving relay gave.
    pub fn addrs(&self, relay: &PeerId, now_ms: u64) -> Vec<Multiaddr> {
        match self.records.get(relay).filter(|r| r.is_live(now_ms)) {
            Some(r) => r.record().addrs.clone(),
            None => self
                .entries
                .get(relay)
                .map(|e| e.addrs.clone())
                .unwrap_or_default(),
        }
    }

    /// Relays to probe now: not excluded, not backing off, not probed within the probe period,
    /// and with somewhere to dial.
    pub fn due(&self, now_ms: u64) -> Vec<PeerId> {
        let mut due: Vec<PeerId> = self
            .entries
            .iter()
            .filter(|(peer, e)| {
                e.choice != Choice::Excluded
                    && now_ms >= e.next_try_ms
                    && e.last_probe_ms
                        .is_none_or(|t| now_ms >= t.saturating_add(self.config.probe_every_ms))
                    && !self.addrs(peer, now_ms).is_empty()
            })
            .map(|(peer, _)| *peer)
            .collect();
        due.sort();
        due
    }

    fn usable(&self, peer: &PeerId, e: &Entry, now_ms: u64) -> bool {
        e.choice != Choice::Excluded
            && now_ms >= e.next_try_ms
            && !self.addrs(peer, now_ms).is_empty()
    }

    /// Lower is better: the average round-trip time (a relay not probed yet counts as 1 s),
    /// stretched by its load (a full relay counts double) and by failures seen.
    fn cost(&self, peer: &PeerId, e: &Entry) -> f64 {
        let rtt = e.rtt_ms.unwrap_or(1_000.0);
        let load = self
            .records
            .get(peer)
            .map_or(0.0, |r| f64::from(r.record().load_permille) / 1_000.0);
        rtt * (1.0 + load) * (1.0 + f64::from(e.failures))
    }

    /// Every relay, usable ones first by rank (pinned first among them, those that refused us
    /// last), then the rest.
    pub fn ranked(&self, now_ms: u64) -> Vec<RelayView> {
        let mut usable: Vec<(&PeerId, &Entry)> = Vec::new();
        let mut rest: Vec<(&PeerId, &Entry)> = Vec::new();
        for (peer, e) in &self.entries {
            if self.usable(peer, e, now_ms) {
                usable.push((peer, e));
            } else {
                rest.push((peer, e));
            }
        }
        usable.sort_by(|(pa, a), (pb, b)| {
            (b.choice == Choice::Pinned)
                .cmp(&(a.choice == Choice::Pinned))
                .then(a.refused().cmp(&b.refused()))
                .then(self.cost(pa, a).total_cmp(&self.cost(pb, b)))
                .then(pa.cmp(pb))
        });
        rest.sort_by_key(|(peer, _)| **peer);
        let view = |(peer, e): (&PeerId, &Entry), rank: Option<usize>| {
            let record = self.records.get(peer).map(|r| r.record());
            RelayView {
                relay: *peer,
                rank,
                name: record.map(|r| r.name.clone()).unwrap_or_default(),
                region: record.map(|r| r.region.clone()).unwrap_or_default(),
                rtt_ms: e.rtt_ms,
                load_permille: record.map(|r| r.load_permille),
                successes: e.successes,
                failures: e.failures,
                last_failure: e.last_failure,
                last_probe_ms: e.last_probe_ms,
                backoff_until_ms: (e.next_try_ms > now_ms).then_some(e.next_try_ms),
                choice: e.choice,
                serving: e.serving,
                addrs: self.addrs(peer, now_ms),
            }
        };
        let mut out: Vec<RelayView> = usable
            .into_iter()
            .enumerate()
            .map(|(i, entry)| view(entry, Some(i + 1)))
            .collect();
        out.extend(rest.into_iter().map(|entry| view(entry, None)));
        out
    }

    /// The relays to hold reservations on: the first [`PoolConfig::reserve_on`] usable ones.
    pub fn best(&self, now_ms: u64) -> Vec<PeerId> {
        self.ranked(now_ms)
            .into_iter()
            .filter(|v| v.rank.is_some())
            .take(self.config.reserve_on)
            .map(|v| v.relay)
            .collect()
    }

    /// Whether the pool holds `relay`.
    pub fn contains(&self, relay: &PeerId) -> bool {
        self.entries.contains_key(relay)
    }

    /// How many relays the pool holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What to keep across a reload: each relay's record, statistics and the trader's choice.
    pub fn save(&self) -> SavedPool {
        SavedPool {
            version: SAVED_POOL_VERSION,
            relays: self
                .entries
                .iter()
                .map(|(peer, e)| SavedRelay {
                    relay: peer.to_base58(),
                    record: self.records.get(peer).map(|r| crate::to_hex(r.bytes())),
                    addrs: e.addrs.iter().map(|a| a.to_string()).collect(),
                    rtt_ms: e.rtt_ms,
                    successes: e.successes,
                    failures: e.failures,
                    last_failure: e.last_failure,
                    next_try_ms: e.next_try_ms,
                    choice: e.choice,
                })
                .collect(),
        }
    }

    /// A pool from a saved one: every record checked again (an expired one is dropped with
    /// its relay, unless the trader chose something for it), at most `capacity` relays. The
    /// serving relay is set again by the caller.
    pub fn restore(config: PoolConfig, saved: &SavedPool, now_ms: u64) -> Self {
        let mut pool = RelayPool::new(config);
        if saved.version != SAVED_POOL_VERSION {
            return pool;
        }
        for s in saved.relays.iter().take(config.capacity) {
            let Ok(relay) = s.relay.parse::<PeerId>() else {
                continue;
            };
            let record = s
                .record
                .as_deref()
                .and_then(crate::from_hex)
                .filter(|bytes| pool.learn(bytes, now_ms).is_ok());
            if record.is_none() && s.choice == Choice::Auto {
                continue;
            }
            let e = pool
                .entries
                .entry(relay)
                .or_insert_with(|| Entry::new(false));
            e.addrs = s
                .addrs
                .iter()
                .take(darkswap_proto::relay_record::MAX_RECORD_ADDRS)
                .filter_map(|a| a.parse().ok())
                .collect();
            e.rtt_ms = s.rtt_ms.filter(|r| r.is_finite() && *r >= 0.0);
            e.successes = s.successes;
            e.failures = s.failures;
            e.last_failure = s.last_failure;
            e.next_try_ms = s
                .next_try_ms
                .min(now_ms.saturating_add(config.backoff_max_ms));
            e.choice = s.choice;
        }
        pool
    }
}

/// Version of [`SavedPool`]; another version is ignored (the pool starts empty).
pub const SAVED_POOL_VERSION: u32 = 1;

/// The pool as kept in IndexedDB or a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPool {
    /// [`SAVED_POOL_VERSION`].
    pub version: u32,
    /// Each relay.
    pub relays: Vec<SavedRelay>,
}

/// One relay of a [`SavedPool`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRelay {
    /// Base58 PeerId.
    pub relay: String,
    /// Its signed record, hex, if one is held.
    pub record: Option<String>,
    /// Addresses known without a record.
    pub addrs: Vec<String>,
    /// See [`RelayView`].
    pub rtt_ms: Option<f64>,
    /// See [`RelayView`].
    pub successes: u32,
    /// See [`RelayView`].
    pub failures: u32,
    /// See [`RelayView`].
    pub last_failure: Option<Failure>,
    /// Backing off until then (unix ms).
    pub next_try_ms: u64,
    /// See [`RelayView`].
    pub choice: Choice,
}

#[cfg(test)]
mod tests;
