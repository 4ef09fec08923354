//! Recent refusals of traders' own orders. Gossip tells a publisher nothing when a relay refuses
//! its message, so the relay remembers, for each connected trader, its last few orders it
//! refused and why; the trader learns them by asking for its own orders by book sync
//! (`darkswap_proto::book_sync`). Bounded: [`PER_PEER`] refusals per trader, each kept
//! [`KEPT_MS`], all of a trader's forgotten when it disconnects.

use std::collections::{HashMap, VecDeque};

use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::book_sync::MAX_REFUSALS;
use darkswap_proto::order::OrderReject;
use libp2p::PeerId;

/// Refusals kept per trader (the oldest goes first).
pub const PER_PEER: usize = 8;
/// How long a refusal is kept: a client asks about its new order a second or two after
/// publishing it.
pub const KEPT_MS: u64 = 60_000;

const _: () = assert!(PER_PEER <= MAX_REFUSALS);

struct Refusal {
    pair: Pair,
    id: OrderId,
    reason: OrderReject,
    at_ms: u64,
}

/// See the module documentation.
#[derive(Default)]
pub struct Refusals {
    by_peer: HashMap<PeerId, VecDeque<Refusal>>,
}

impl Refusals {
    /// `peer`'s own order `id` on `pair` was refused for `reason`.
    pub fn note(
        &mut self,
        peer: PeerId,
        pair: &Pair,
        id: OrderId,
        reason: OrderReject,
        now_ms: u64,
    ) {
        let kept = self.by_peer.entry(peer).or_default();
        kept.retain(|r| r.id != id);
        if kept.len() >= PER_PEER {
            kept.pop_front();
        }
        kept.push_back(Refusal {
            pair: pair.clone(),
            id,
            reason,
            at_ms: now_ms,
        });
    }

    /// `peer`'s refusals on `pair` from the last [`KEPT_MS`], oldest first, with their
    /// [`OrderReject`] labels.
    pub fn of(&self, peer: &PeerId, pair: &Pair, now_ms: u64) -> Vec<(OrderId, String)> {
        self.by_peer.get(peer).map_or_else(Vec::new, |kept| {
            kept.iter()
                .filter(|r| r.pair == *pair && now_ms.saturating_sub(r.at_ms) < KEPT_MS)
                .map(|r| (r.id, r.reason.as_str().to_string()))
                .collect()
        })
    }

    /// `peer` disconnected.
    pub fn forget(&mut self, peer: &PeerId) {
        self.by_peer.remove(peer);
    }

    /// Drops refusals older than [`KEPT_MS`].
    pub fn prune(&mut self, now_ms: u64) {
        self.by_peer.retain(|_, kept| {
            kept.retain(|r| now_ms.saturating_sub(r.at_ms) < KEPT_MS);
            !kept.is_empty()
        });
    }

    /// Traders with refusals kept.
    #[cfg(test)]
    pub fn peers(&self) -> usize {
        self.by_peer.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_per_pair_bounded_and_aged() {
        let mut r = Refusals::default();
        let (me, other) = (PeerId::random(), PeerId::random());
        let (a, b) = (
            Pair::parse("RUNE:A/BTC").unwrap(),
            Pair::parse("RUNE:B/BTC").unwrap(),
        );
        r.note(me, &a, OrderId([1; 16]), OrderReject::AddressOverCap, 0);
        r.note(me, &b, OrderId([2; 16]), OrderReject::OpenPairRefused, 0);
        assert_eq!(
            r.of(&me, &a, 1),
            vec![(OrderId([1; 16]), "address_over_cap".to_string())]
        );
        assert!(r.of(&other, &a, 1).is_empty());
        // The same order refused again is one entry, with the latest reason.
        r.note(me, &a, OrderId([1; 16]), OrderReject::OverCap, 5);
        assert_eq!(
            r.of(&me, &a, 6),
            vec![(OrderId([1; 16]), "over_cap".to_string())]
        );
        // At most PER_PEER, the oldest dropped.
        for n in 0..20u8 {
            r.note(me, &a, OrderId([100 + n; 16]), OrderReject::BookFull, 10);
        }
        let kept = r.of(&me, &a, 11);
        assert_eq!(kept.len(), PER_PEER);
        assert_eq!(kept.last().unwrap().0, OrderId([119; 16]));
        // Aged out, and forgotten with the peer.
        assert!(r.of(&me, &a, 10 + KEPT_MS).is_empty());
        r.prune(10 + KEPT_MS);
        assert_eq!(r.peers(), 0);
        r.note(me, &a, OrderId([1; 16]), OrderReject::OverCap, 0);
        r.forget(&me);
        assert_eq!(r.peers(), 0);
    }
}
