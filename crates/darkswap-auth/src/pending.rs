//! Outstanding challenges: single use, short-lived, bounded in total and per peer.

use std::collections::HashMap;

use libp2p_identity::PeerId;

use crate::NONCE_BYTES;
use darkswap_proto::auth::{Method, RefuseReason};

/// One challenge the relay issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    /// The peer it was issued to, the only one that may answer it.
    pub peer: PeerId,
    /// The method the answer must use.
    pub method: Method,
    /// Milliseconds since the Unix epoch; an answer at or after this is refused.
    pub expires_at_ms: u64,
}

/// The table of outstanding challenges.
#[derive(Debug)]
pub struct PendingChallenges {
    by_nonce: HashMap<[u8; NONCE_BYTES], Pending>,
    per_peer: HashMap<PeerId, usize>,
    capacity: usize,
    per_peer_capacity: usize,
    ttl_ms: u64,
}

impl PendingChallenges {
    /// An empty table holding at most `capacity` challenges in all and `per_peer_capacity` per
    /// peer, each valid for `ttl_ms` milliseconds from its issue.
    pub fn new(capacity: usize, per_peer_capacity: usize, ttl_ms: u64) -> Self {
        PendingChallenges {
            by_nonce: HashMap::new(),
            per_peer: HashMap::new(),
            capacity,
            per_peer_capacity,
            ttl_ms,
        }
    }

    /// Challenges held, including expired ones not yet dropped.
    pub fn len(&self) -> usize {
        self.by_nonce.len()
    }

    /// Whether no challenge is held.
    pub fn is_empty(&self) -> bool {
        self.by_nonce.is_empty()
    }

    /// Records a fresh challenge; refuses when the peer or the table is at its cap (after
    /// dropping expired entries). Returns the challenge's expiry.
    pub fn issue(
        &mut self,
        nonce: [u8; NONCE_BYTES],
        peer: PeerId,
        method: Method,
        now_ms: u64,
    ) -> Result<u64, RefuseReason> {
        if self.by_nonce.len() >= self.capacity
            || self.per_peer.get(&peer).copied().unwrap_or(0) >= self.per_peer_capacity
        {
            self.prune(now_ms);
        }
        if self.by_nonce.len() >= self.capacity {
            return Err(RefuseReason::Busy);
        }
        if self.per_peer.get(&peer).copied().unwrap_or(0) >= self.per_peer_capacity {
            return Err(RefuseReason::RateLimited);
        }
        if self.by_nonce.contains_key(&nonce) {
            // A repeated random nonce: never reuse one.
            return Err(RefuseReason::Busy);
        }
        let expires_at_ms = now_ms.saturating_add(self.ttl_ms);
        self.by_nonce.insert(
            nonce,
            Pending {
                peer,
                method,
                expires_at_ms,
            },
        );
        *self.per_peer.entry(peer).or_default() += 1;
        Ok(expires_at_ms)
    }

    /// Consumes the challenge `nonce` answered by `peer`: it can never be used again, whatever
    /// the answer's fate. A nonce issued to someone else is unknown to this peer (and stays
    /// for its owner).
    pub fn take(
        &mut self,
        nonce: &[u8; NONCE_BYTES],
        peer: &PeerId,
        now_ms: u64,
    ) -> Result<Pending, RefuseReason> {
        match self.by_nonce.get(nonce) {
            Some(p) if p.peer == *peer => {}
            _ => return Err(RefuseReason::UnknownChallenge),
        }
        let pending = self
            .by_nonce
            .remove(nonce)
            .ok_or(RefuseReason::UnknownChallenge)?;
        self.release(&pending.peer);
        if now_ms >= pending.expires_at_ms {
            return Err(RefuseReason::ExpiredChallenge);
        }
        Ok(pending)
    }

    /// Drops a departed peer's challenges.
    pub fn forget_peer(&mut self, peer: &PeerId) {
        if self.per_peer.remove(peer).is_some() {
            self.by_nonce.retain(|_, p| p.peer != *peer);
        }
    }

    /// Drops expired challenges.
    pub fn prune(&mut self, now_ms: u64) {
        let per_peer = &mut self.per_peer;
        self.by_nonce.retain(|_, p| {
            let keep = now_ms < p.expires_at_ms;
            if !keep {
                if let Some(n) = per_peer.get_mut(&p.peer) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        per_peer.remove(&p.peer);
                    }
                }
            }
            keep
        });
    }

    fn release(&mut self, peer: &PeerId) {
        if let Some(n) = self.per_peer.get_mut(peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        libp2p_identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn a_challenge_is_used_once() {
        let mut t = PendingChallenges::new(10, 2, 1_000);
        let p = peer();
        t.issue([1; 32], p, Method::Identity, 0).unwrap();
        assert!(t.take(&[1; 32], &p, 10).is_ok());
        assert_eq!(
            t.take(&[1; 32], &p, 20),
            Err(RefuseReason::UnknownChallenge)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn expired_and_foreign_challenges_are_refused() {
        let mut t = PendingChallenges::new(10, 2, 1_000);
        let (a, b) = (peer(), peer());
        t.issue([1; 32], a, Method::Identity, 0).unwrap();
        assert_eq!(
            t.take(&[1; 32], &b, 10),
            Err(RefuseReason::UnknownChallenge)
        );
        assert_eq!(
            t.take(&[1; 32], &a, 1_000),
            Err(RefuseReason::ExpiredChallenge)
        );
        assert_eq!(
            t.take(&[1; 32], &a, 1_001),
            Err(RefuseReason::UnknownChallenge)
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut t = PendingChallenges::new(3, 2, 1_000);
        let (a, b) = (peer(), peer());
        t.issue([1; 32], a, Method::Identity, 0).unwrap();
        t.issue([2; 32], a, Method::Identity, 0).unwrap();
        assert_eq!(
            t.issue([3; 32], a, Method::Identity, 0),
            Err(RefuseReason::RateLimited)
        );
        t.issue([4; 32], b, Method::Identity, 0).unwrap();
        assert_eq!(
            t.issue([5; 32], peer(), Method::Identity, 0),
            Err(RefuseReason::Busy)
        );
        // Expired entries make room.
        t.issue([6; 32], peer(), Method::Identity, 1_000).unwrap();
        assert_eq!(t.len(), 1);
        t.forget_peer(&a);
        assert_eq!(t.len(), 1);
    }
}
