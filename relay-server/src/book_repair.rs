//! Repairs of the relay's book from its peer relays, as bookkeeping without I/O.
//!
//! Gossip does not replay what a relay missed: after a partition heals, or when a relay joins
//! the mesh late, each side holds orders the other never saw, and orders the other saw
//! cancelled. Every maker tells the mesh, every 10 s per pair, a digest of its live orders
//! (signed keep-alives). When one reaches this relay from a peer relay and disagrees with what
//! this relay holds of the maker, the relay asks that peer relay for the maker's orders on the
//! pair (`/darkswap/book-sync/1`, one maker, one page) and repairs its book with them
//! (`darkswap_market::Market::repair_maker`: taken whole only when they hash to the maker's own
//! digest, so a peer relay can add a maker's signed orders but cannot make us drop one).
//!
//! Here: which pulls are due (one per maker and pair per [`REPAIR_INTERVAL_MS`]), which are in
//! flight (at most [`MAX_REPAIRS_IN_FLIGHT`], each answer up to ~1 MiB), and what each was for.
//! The request ids are the caller's (`K`).

use std::collections::HashMap;
use std::hash::Hash;

use darkswap_orderbook::Pair;
use darkswap_proto::book_sync::{BookSyncRequest, MAX_BOOK_SYNC_PAGE};
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;

/// One maker's orders on one pair are pulled at most this often: half the keep-alive period,
/// so that a repair that came out partial (the maker changed something meanwhile) is tried
/// again on the next keep-alive, and a flood of mismatching keep-alives costs one pull.
pub const REPAIR_INTERVAL_MS: u64 = darkswap_market::KEEP_ALIVE_INTERVAL_MS / 2;
/// Pulls asked for and not answered yet, at most (queued ones included).
pub const MAX_REPAIRS_IN_FLIGHT: usize = 64;
/// Pulls sent to one peer relay and not answered yet, at most: well under the book-sync streams
/// a relay serves per connection (16, `defaults::BOOK_SYNC_STREAMS_PER_CONNECTION`), which
/// resets the streams over its limit. The others wait in the queue.
pub const MAX_REPAIRS_PER_PEER: usize = 8;
/// (maker, pair) pulls remembered for [`REPAIR_INTERVAL_MS`], at most; a full table pulls for no
/// newcomer until it clears.
pub const MAX_RECENT_REPAIRS: usize = 8_192;

/// What a pull is for: the maker, the pair and the digest the maker signed; and the keep-alive
/// that showed the mismatch, held back from gossip until the repair ends (then passed on, so
/// that the relays and pages behind this one pull from a repaired book, not from the old one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub maker: PeerId,
    pub pair: Pair,
    pub digest: [u8; 32],
    pub held: (MessageId, PeerId),
}

/// Why no pull was started for a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The same maker and pair were pulled less than [`REPAIR_INTERVAL_MS`] ago.
    Recent,
    /// [`MAX_REPAIRS_IN_FLIGHT`] pulls are open, or the table of recent ones is full.
    Busy,
}

/// A pull to send: to `peer`, `request`; hand the request id and `ticket` to
/// [`BookRepairs::sent`].
#[derive(Debug, Clone)]
pub struct Pull {
    pub peer: PeerId,
    pub request: BookSyncRequest,
    pub ticket: Ticket,
}

pub struct BookRepairs<K> {
    queued: Vec<Pull>,
    in_flight: HashMap<K, Ticket>,
    recent: HashMap<(PeerId, Pair), u64>,
}

impl<K: Eq + Hash> Default for BookRepairs<K> {
    fn default() -> Self {
        BookRepairs {
            queued: Vec::new(),
            in_flight: HashMap::new(),
            recent: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> BookRepairs<K> {
    /// A keep-alive (gossip message `message`) from `maker` with `digest` on `pair`, forwarded
    /// by the peer relay `from`, disagreed with our book: queues a pull of the maker's orders
    /// from `from` unless one was made lately or too many are open.
    pub fn mismatch(
        &mut self,
        from: PeerId,
        message: MessageId,
        maker: PeerId,
        pair: Pair,
        digest: [u8; 32],
        now_ms: u64,
    ) -> Result<(), Skip> {
        let key = (maker, pair);
        if self
            .recent
            .get(&key)
            .is_some_and(|at| now_ms.saturating_sub(*at) < REPAIR_INTERVAL_MS)
        {
            return Err(Skip::Recent);
        }
        if self.queued.len() + self.in_flight.len() >= MAX_REPAIRS_IN_FLIGHT
            || (!self.recent.contains_key(&key) && self.recent.len() >= MAX_RECENT_REPAIRS)
        {
            return Err(Skip::Busy);
        }
        let (maker, pair) = key;
        self.recent.insert((maker, pair.clone()), now_ms);
        self.queued.push(Pull {
            peer: from,
            request: BookSyncRequest {
                pair: pair.clone(),
                maker: Some(maker),
                after: None,
                limit: MAX_BOOK_SYNC_PAGE,
            },
            ticket: Ticket {
                maker,
                pair,
                digest,
                held: (message, from),
            },
        });
        Ok(())
    }

    /// The pulls to send now: those whose peer relay has fewer than [`MAX_REPAIRS_PER_PEER`]
    /// unanswered; the others stay queued.
    pub fn take_queued(&mut self) -> Vec<Pull> {
        let mut open: HashMap<PeerId, usize> = HashMap::new();
        for ticket in self.in_flight.values() {
            *open.entry(ticket.held.1).or_default() += 1;
        }
        let mut ready = Vec::new();
        self.queued.retain(|pull| {
            let n = open.entry(pull.peer).or_default();
            if *n < MAX_REPAIRS_PER_PEER {
                *n += 1;
                ready.push(pull.clone());
                false
            } else {
                true
            }
        });
        ready
    }

    /// A pull went out as request `id`.
    pub fn sent(&mut self, id: K, ticket: Ticket) {
        self.in_flight.insert(id, ticket);
    }

    /// The answer to request `id` came (or it failed): what it was for, if it was ours.
    pub fn finished(&mut self, id: &K) -> Option<Ticket> {
        self.in_flight.remove(id)
    }

    /// Pulls open, queued ones included.
    #[cfg(test)]
    pub fn open(&self) -> usize {
        self.queued.len() + self.in_flight.len()
    }

    /// Forgets pulls older than [`REPAIR_INTERVAL_MS`].
    pub fn prune(&mut self, now_ms: u64) {
        self.recent
            .retain(|_, at| now_ms.saturating_sub(*at) < REPAIR_INTERVAL_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Pair {
        Pair::parse("RUNE:DOG/BTC").unwrap()
    }

    fn msg() -> MessageId {
        MessageId::new(b"keep-alive")
    }

    #[test]
    fn one_pull_per_maker_and_pair_per_interval() {
        let mut repairs = BookRepairs::<u32>::default();
        let (relay, maker) = (PeerId::random(), PeerId::random());
        assert_eq!(
            repairs.mismatch(relay, msg(), maker, pair(), [1; 32], 0),
            Ok(())
        );
        assert_eq!(
            repairs.mismatch(relay, msg(), maker, pair(), [2; 32], REPAIR_INTERVAL_MS - 1),
            Err(Skip::Recent)
        );
        let pulls = repairs.take_queued();
        assert_eq!(pulls.len(), 1);
        assert_eq!(pulls[0].peer, relay);
        assert_eq!(pulls[0].request.maker, Some(maker));
        assert_eq!(pulls[0].ticket.digest, [1; 32]);
        repairs.sent(7, pulls[0].ticket.clone());
        assert_eq!(repairs.finished(&7).map(|t| t.maker), Some(maker));
        assert_eq!(repairs.finished(&7), None, "an answer is taken once");
        repairs.prune(REPAIR_INTERVAL_MS);
        assert_eq!(
            repairs.mismatch(relay, msg(), maker, pair(), [3; 32], REPAIR_INTERVAL_MS),
            Ok(())
        );
    }

    #[test]
    fn one_peer_relay_is_asked_a_few_pulls_at_a_time() {
        let mut repairs = BookRepairs::<usize>::default();
        let (busy, other) = (PeerId::random(), PeerId::random());
        for _ in 0..MAX_REPAIRS_PER_PEER + 3 {
            repairs
                .mismatch(busy, msg(), PeerId::random(), pair(), [0; 32], 0)
                .unwrap();
        }
        repairs
            .mismatch(other, msg(), PeerId::random(), pair(), [0; 32], 0)
            .unwrap();
        let first = repairs.take_queued();
        assert_eq!(
            first.iter().filter(|p| p.peer == busy).count(),
            MAX_REPAIRS_PER_PEER
        );
        assert_eq!(first.iter().filter(|p| p.peer == other).count(), 1);
        for (id, pull) in first.into_iter().enumerate() {
            repairs.sent(id, pull.ticket);
        }
        assert!(
            repairs.take_queued().is_empty(),
            "the rest wait for answers"
        );
        assert!(repairs.finished(&0).is_some());
        assert_eq!(
            repairs.take_queued().len(),
            1,
            "one answer lets one more go"
        );
        // Two still queued, eight sent (the one taken last is the caller's to send).
        assert_eq!(repairs.open(), MAX_REPAIRS_PER_PEER + 2);
    }

    #[test]
    fn pulls_in_flight_are_bounded() {
        let mut repairs = BookRepairs::<usize>::default();
        let relay = PeerId::random();
        let mut ids = 0..;
        for n in 0..MAX_REPAIRS_IN_FLIGHT {
            assert_eq!(
                repairs.mismatch(relay, msg(), PeerId::random(), pair(), [0; 32], 0),
                Ok(())
            );
            // Some sent, some still queued: both count.
            if n % 2 == 0 {
                for pull in repairs.take_queued() {
                    repairs.sent(ids.next().unwrap(), pull.ticket);
                }
            }
        }
        assert_eq!(repairs.open(), MAX_REPAIRS_IN_FLIGHT);
        assert_eq!(
            repairs.mismatch(relay, msg(), PeerId::random(), pair(), [0; 32], 0),
            Err(Skip::Busy)
        );
        assert!(repairs.finished(&0).is_some());
        assert_eq!(
            repairs.mismatch(relay, msg(), PeerId::random(), pair(), [0; 32], 0),
            Ok(())
        );
    }
}
