//! The newest checked record of each relay, at most `capacity` of them.

use std::collections::HashMap;

use darkswap_proto::relay_record::{RecordError, SignedRelayRecord};
use libp2p_identity::PeerId;

/// What became of a record that was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// A relay not known before.
    New,
    /// A newer record of a known relay.
    Updated,
    /// The record already held (a relay's peers hand it on every round).
    Unchanged,
}

/// Why a record was not taken. [`SetRefusal::label`] names it in metrics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SetRefusal {
    /// The record itself fails a check.
    #[error(transparent)]
    Invalid(#[from] RecordError),
    /// Not newer than the one held: a lower sequence number, or the same number over another
    /// body (an equivocation).
    #[error("relay record replays sequence {seq}, not above the {held} held")]
    Replayed {
        /// Its sequence number.
        seq: u64,
        /// The sequence number held.
        held: u64,
    },
    /// A record of this set's own relay that it did not make: only the relay itself says what
    /// it is.
    #[error("a record of this relay that it did not sign now")]
    Own,
    /// The set is full of records that outlive this one.
    #[error("relay record set is full")]
    Full,
}

impl SetRefusal {
    /// Its metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            SetRefusal::Invalid(e) => e.label(),
            SetRefusal::Replayed { .. } => "replayed",
            SetRefusal::Own => "own",
            SetRefusal::Full => "full",
        }
    }

    /// Every label, for metrics that list each reason from the start.
    pub fn labels() -> impl Iterator<Item = &'static str> {
        RecordError::LABELS
            .into_iter()
            .chain(["replayed", "own", "full"])
    }
}

/// The newest record of each relay. A relay's own record, if it has one, is always kept.
#[derive(Debug)]
pub struct RecordSet {
    records: HashMap<PeerId, SignedRelayRecord>,
    own: Option<PeerId>,
    capacity: usize,
}

impl RecordSet {
    /// An empty set holding at most `capacity` records (at least one). `own`: the relay whose
    /// records only [`RecordSet::put_own`] may change, if the set belongs to one.
    pub fn new(capacity: usize, own: Option<PeerId>) -> Self {
        Self {
            records: HashMap::new(),
            own,
            capacity: capacity.max(1),
        }
    }

    /// Checks a record received at `now_ms` and keeps it if it is the newest of its relay. A
    /// full set makes room by dropping the record that expires first, if it expires before this
    /// one.
    pub fn offer(&mut self, bytes: &[u8], now_ms: u64) -> Result<Offered, SetRefusal> {
        let record = SignedRelayRecord::verify(bytes, now_ms)?;
        let relay = record.relay();
        if self.own == Some(relay) {
            // Our own record coming back from a peer is the one we hold, or an old one.
            return match self.records.get(&relay) {
                Some(held) if held.bytes() == bytes => Ok(Offered::Unchanged),
                _ => Err(SetRefusal::Own),
            };
        }
        if let Some(held) = self.records.get(&relay) {
            let (seq, held_seq) = (record.record().seq, held.record().seq);
            if seq == held_seq && held.body() == record.body() {
                return Ok(Offered::Unchanged);
            }
            if seq <= held_seq {
                return Err(SetRefusal::Replayed {
                    seq,
                    held: held_seq,
                });
            }
            self.records.insert(relay, record);
            return Ok(Offered::Updated);
        }
        self.prune(now_ms);
        if self.records.len() >= self.capacity {
            let expires = record.record().expires_at_ms;
            let soonest = self
                .records
                .iter()
                .filter(|(peer, _)| Some(**peer) != self.own)
                .min_by_key(|(_, r)| r.record().expires_at_ms)
                .map(|(peer, r)| (*peer, r.record().expires_at_ms));
            match soonest {
                Some((peer, at)) if at < expires => {
                    self.records.remove(&peer);
                }
                _ => return Err(SetRefusal::Full),
            }
        }
        self.records.insert(relay, record);
        Ok(Offered::New)
    }

    /// Sets the owner's own record (made and signed by the owner, so not checked again).
    pub fn put_own(&mut self, record: SignedRelayRecord) {
        if self.own == Some(record.relay()) {
            self.records.insert(record.relay(), record);
        }
    }

    /// Forgets `relay`'s record (not the owner's).
    pub fn remove(&mut self, relay: &PeerId) {
        if self.own != Some(*relay) {
            self.records.remove(relay);
        }
    }

    /// Drops the records that expired by `now_ms`; returns how many.
    pub fn prune(&mut self, now_ms: u64) -> usize {
        let before = self.records.len();
        self.records.retain(|_, r| r.is_live(now_ms));
        before - self.records.len()
    }

    /// The record held of `relay`.
    pub fn get(&self, relay: &PeerId) -> Option<&SignedRelayRecord> {
        self.records.get(relay)
    }

    /// At most `max` live records: the owner's first, then the most recently issued.
    pub fn newest(&self, max: usize, now_ms: u64) -> Vec<&SignedRelayRecord> {
        let mut all: Vec<&SignedRelayRecord> = self
            .records
            .values()
            .filter(|r| r.is_live(now_ms))
            .collect();
        all.sort_by_key(|r| {
            (
                Some(r.relay()) != self.own,
                std::cmp::Reverse(r.record().issued_at_ms),
            )
        });
        all.truncate(max);
        all
    }

    /// How many records are held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when none is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests;
