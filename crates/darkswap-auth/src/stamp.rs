//! Identity stamps: a price on new identities that a relay operator can set. A stamp is a
//! number that, hashed with the client's PeerId, gives a SHA-256 digest starting with at least
//! the relay's number of zero bits ([`stamp_bits`]); finding one takes 2^bits hashes on average,
//! checking one takes a single hash. A relay that asks for `b` bits makes every throwaway key
//! cost that work before it earns the authenticated level by identity; an honest client pays
//! once per identity and token lifetime (the relay's token remembers the bits proven).
//!
//! The stamp is bound to the PeerId only, not to a challenge: it is no secret, may be reused
//! with any relay that asks for as many bits or fewer, and cannot be moved to another key.
//!
//! ```text
//! stamp_bits(peer, stamp) = leading zero bits of
//!     SHA-256("darkswap/identity-stamp/1\0" || peer.to_bytes() || stamp as 8 bytes big-endian)
//! ```
//!
//! [`StampSearch`] finds one in slices of bounded work, so a client runs it between its network
//! events (the browser has one thread) instead of blocking for the whole search.

use libp2p_identity::PeerId;
use sha2::{Digest, Sha256};

pub use darkswap_proto::auth::MAX_STAMP_BITS;

/// Prefix of every hashed stamp, so a stamp's work can never count for anything else.
pub const STAMP_DOMAIN: &[u8] = b"darkswap/identity-stamp/1\0";

/// The work `stamp` proves for `peer`: the number of leading zero bits of its digest (0 to 256).
pub fn stamp_bits(peer: &PeerId, stamp: u64) -> u32 {
    digest_bits(&prefix(peer), stamp)
}

fn prefix(peer: &PeerId) -> Sha256 {
    let mut hash = Sha256::new();
    hash.update(STAMP_DOMAIN);
    hash.update(peer.to_bytes());
    hash
}

fn digest_bits(prefix: &Sha256, stamp: u64) -> u32 {
    let digest = prefix.clone().chain_update(stamp.to_be_bytes()).finalize();
    let mut bits = 0;
    for byte in digest {
        bits += byte.leading_zeros();
        if byte != 0 {
            break;
        }
    }
    bits
}

/// A search for a stamp of at least `bits` for one PeerId, run a slice at a time.
#[derive(Clone)]
pub struct StampSearch {
    prefix: Sha256,
    bits: u32,
    next: u64,
    tries: u64,
}

impl std::fmt::Debug for StampSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StampSearch")
            .field("bits", &self.bits)
            .field("tries", &self.tries)
            .finish()
    }
}

impl StampSearch {
    /// A search for `peer`, from stamp 0; `bits` above [`MAX_STAMP_BITS`] is searched at that.
    pub fn new(peer: &PeerId, bits: u32) -> Self {
        StampSearch {
            prefix: prefix(peer),
            bits: bits.min(MAX_STAMP_BITS),
            next: 0,
            tries: 0,
        }
    }

    /// The bits searched for.
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Stamps tried so far.
    pub fn tries(&self) -> u64 {
        self.tries
    }

    /// Tries at most `budget` more stamps; the first that has the bits, if one did.
    pub fn run(&mut self, budget: u32) -> Option<u64> {
        for _ in 0..budget {
            let stamp = self.next;
            self.next = self.next.wrapping_add(1);
            self.tries += 1;
            if digest_bits(&self.prefix, stamp) >= self.bits {
                return Some(stamp);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The PeerId of RFC 8032's first test key (secret 9d61b1…7f60), so the vectors below can
    /// be recomputed by anyone from public values.
    fn rfc8032_peer() -> PeerId {
        let secret: [u8; 32] = [
            0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4, 0x92, 0xec,
            0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19, 0x70, 0x3b, 0xac, 0x03,
            0x1c, 0xae, 0x7f, 0x60,
        ];
        libp2p_identity::Keypair::ed25519_from_bytes(secret)
            .unwrap()
            .public()
            .to_peer_id()
    }

    #[test]
    fn bits_match_vectors_computed_elsewhere() {
        // Computed outside Rust (Python's hashlib over the bytes the module doc names): the
        // digests of stamps 0, 1 and 2 for this PeerId begin 175a…, 3d63… and c743… (3, 2 and
        // 0 zero bits); the first stamps with 8 and 16 zero bits are 4 and 48,170.
        let peer = rfc8032_peer();
        assert_eq!(
            peer.to_base58(),
            "12D3KooWQK1wnefoLrcVHbbnf5tLzbopUd3K3bFAoJpA7YJgL5pV"
        );
        assert_eq!(
            [0, 1, 2].map(|s| stamp_bits(&peer, s)),
            [3, 2, 0],
            "stamps 0, 1, 2"
        );
        let mut search = StampSearch::new(&peer, 8);
        assert_eq!(search.run(1 << 20), Some(4));
        assert_eq!(search.tries(), 5);
        let mut search = StampSearch::new(&peer, 16);
        assert_eq!(search.run(1 << 22), Some(48_170));
        assert_eq!(stamp_bits(&peer, 48_170), 16);
        assert!((0..48_170).all(|s| stamp_bits(&peer, s) < 16));
    }

    #[test]
    fn a_stamp_counts_for_its_own_peer_only() {
        let peer = rfc8032_peer();
        let other = libp2p_identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let stamp = StampSearch::new(&peer, 12).run(1 << 24).unwrap();
        assert!(stamp_bits(&peer, stamp) >= 12);
        // Another key gets 12 bits from the same number one time in 4,096; try the next few
        // stamps as well so that a chance hit cannot pass for a transferable stamp.
        let transferable = (stamp..stamp + 4).all(|s| stamp_bits(&other, s) >= 12);
        assert!(!transferable);
    }

    #[test]
    fn a_search_runs_in_slices_and_is_capped() {
        let peer = rfc8032_peer();
        let mut whole = StampSearch::new(&peer, 10);
        let at_once = whole.run(u32::MAX).unwrap();
        let mut sliced = StampSearch::new(&peer, 10);
        let mut found = None;
        for _ in 0..100_000 {
            if let Some(s) = sliced.run(7) {
                found = Some(s);
                break;
            }
        }
        assert_eq!(found, Some(at_once));
        assert_eq!(sliced.tries(), whole.tries());
        assert_eq!(StampSearch::new(&peer, 200).bits(), MAX_STAMP_BITS);
        assert_eq!(StampSearch::new(&peer, 0).run(1), Some(0));
    }
}
