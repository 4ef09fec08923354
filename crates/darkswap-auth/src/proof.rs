//! Challenge answers. Every method covers the same domain-separated message:
//!
//! ```text
//! domain || 0x00 || nonce (32) || len16 || relay PeerId || len16 || client PeerId || expiry (u64 BE)
//! ```
//!
//! so an answer is valid for one nonce, one relay, one client and one expiry only, and an answer
//! for one method can never be replayed as another's (different domains): a trader's identity
//! answer does not pass for a relay's, nor the other way round.

use hmac::{Hmac, Mac};
use libp2p_identity::{Keypair, PeerId};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::NONCE_BYTES;

const SHARED_KEY_DOMAIN: &[u8] = b"darkswap/auth/v1/shared-key";
const IDENTITY_DOMAIN: &[u8] = b"darkswap/auth/v1/identity";
const RELAY_DOMAIN: &[u8] = b"darkswap/auth/v1/relay";
/// Shortest shared key a relay accepts (bytes).
pub const MIN_SHARED_KEY_BYTES: usize = 16;

/// What one challenge binds.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The challenge's single-use random nonce, from the relay.
    pub nonce: &'a [u8; NONCE_BYTES],
    /// The relay that issued the challenge.
    pub relay: &'a PeerId,
    /// The client answering it.
    pub client: &'a PeerId,
    /// The challenge's expiry as the relay sent it, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
}

impl Binding<'_> {
    fn message(&self, domain: &[u8]) -> Vec<u8> {
        let relay = self.relay.to_bytes();
        let client = self.client.to_bytes();
        let mut out = Vec::with_capacity(domain.len() + 1 + NONCE_BYTES + 4 + 80 + 8);
        out.extend_from_slice(domain);
        out.push(0);
        out.extend_from_slice(self.nonce);
        for id in [&relay, &client] {
            // PeerIds are at most a few dozen bytes; the cast cannot truncate.
            out.extend_from_slice(&(id.len() as u16).to_be_bytes());
            out.extend_from_slice(id);
        }
        out.extend_from_slice(&self.expires_at_ms.to_be_bytes());
        out
    }
}

/// An operator-set shared key, wiped from memory when dropped.
#[derive(Clone)]
pub struct SharedKey(Zeroizing<Vec<u8>>);

const SHARED_KEY_FINGERPRINT_DOMAIN: &[u8] = b"darkswap/auth/v1/shared-key-fingerprint\0";

impl SharedKey {
    /// `None` for keys shorter than [`MIN_SHARED_KEY_BYTES`].
    pub fn new(bytes: &[u8]) -> Option<SharedKey> {
        (bytes.len() >= MIN_SHARED_KEY_BYTES).then(|| SharedKey(Zeroizing::new(bytes.to_vec())))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// Which key this is, as tokens earned with it record: the first 8 bytes of
    /// HMAC-SHA256(key, domain). A relay that rotates its key refuses tokens earned with the
    /// old one. (Whoever holds a token can test guesses of the key against it, as whoever
    /// holds a recorded proof could; a shared key must be long and random in any case.)
    pub fn fingerprint(&self) -> [u8; 8] {
        let mut mac = self.mac();
        mac.update(SHARED_KEY_FINGERPRINT_DOMAIN);
        let digest = mac.finalize().into_bytes();
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }

    /// The client's answer: HMAC-SHA256 over the bound message.
    pub fn answer(&self, binding: &Binding) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(&binding.message(SHARED_KEY_DOMAIN));
        mac.finalize().into_bytes().to_vec()
    }

    /// The relay's check, in constant time.
    pub fn verify(&self, binding: &Binding, proof: &[u8]) -> bool {
        let mut mac = self.mac();
        mac.update(&binding.message(SHARED_KEY_DOMAIN));
        mac.verify_slice(proof).is_ok()
    }
}

impl std::fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedKey(..)")
    }
}

/// The client's answer with its identity key (ed25519 signature).
pub fn identity_answer(key: &Keypair, binding: &Binding) -> Option<Vec<u8>> {
    key.sign(&binding.message(IDENTITY_DOMAIN)).ok()
}

/// The relay's check: the signature must verify under the key inside the client's PeerId
/// (identity-multihash ed25519 PeerIds; any other kind cannot be checked and is refused).
pub fn verify_identity(binding: &Binding, proof: &[u8]) -> bool {
    verify_signed(binding, proof, IDENTITY_DOMAIN)
}

/// A relay's answer to another relay's challenge, with its identity key.
pub fn relay_answer(key: &Keypair, binding: &Binding) -> Option<Vec<u8>> {
    key.sign(&binding.message(RELAY_DOMAIN)).ok()
}

/// The check of [`relay_answer`], as [`verify_identity`] but in the relay domain.
pub fn verify_relay(binding: &Binding, proof: &[u8]) -> bool {
    verify_signed(binding, proof, RELAY_DOMAIN)
}

fn verify_signed(binding: &Binding, proof: &[u8], domain: &[u8]) -> bool {
    darkswap_proto::trade::public_key_of(binding.client)
        .is_some_and(|key| key.verify(&binding.message(domain), proof))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peers() -> (Keypair, PeerId, PeerId) {
        let client = Keypair::generate_ed25519();
        let relay = Keypair::generate_ed25519().public().to_peer_id();
        let id = client.public().to_peer_id();
        (client, relay, id)
    }

    #[test]
    fn identity_answers_bind_everything() {
        let (key, relay, client) = peers();
        let nonce = [1u8; 32];
        let b = Binding {
            nonce: &nonce,
            relay: &relay,
            client: &client,
            expires_at_ms: 1000,
        };
        let sig = identity_answer(&key, &b).unwrap();
        assert!(verify_identity(&b, &sig));
        let other_nonce = [2u8; 32];
        let other = Keypair::generate_ed25519().public().to_peer_id();
        for changed in [
            Binding {
                nonce: &other_nonce,
                ..b
            },
            Binding { relay: &other, ..b },
            Binding {
                client: &other,
                ..b
            },
            Binding {
                expires_at_ms: 1001,
                ..b
            },
        ] {
            assert!(!verify_identity(&changed, &sig));
        }
        let mut bad = sig.clone();
        bad[10] ^= 1;
        assert!(!verify_identity(&b, &bad));
        assert!(!verify_identity(&b, &[0u8; 64]), "64 arbitrary bytes");
        assert!(!verify_identity(&b, &[]));
    }

    #[test]
    fn shared_key_answers_need_the_key() {
        let (_, relay, client) = peers();
        let nonce = [9u8; 32];
        let b = Binding {
            nonce: &nonce,
            relay: &relay,
            client: &client,
            expires_at_ms: 5,
        };
        let key = SharedKey::new(b"correct horse battery staple").unwrap();
        let wrong = SharedKey::new(b"correct horse battery stapler").unwrap();
        let tag = key.answer(&b);
        assert!(key.verify(&b, &tag));
        assert!(!wrong.verify(&b, &tag));
        assert!(!key.verify(&b, &tag[..31]), "truncated tag");
        assert!(!key.verify(
            &Binding {
                expires_at_ms: 6,
                ..b
            },
            &tag
        ));
        assert!(SharedKey::new(b"short").is_none());
    }

    #[test]
    fn methods_are_domain_separated() {
        let (_, relay, client) = peers();
        let nonce = [4u8; 32];
        let b = Binding {
            nonce: &nonce,
            relay: &relay,
            client: &client,
            expires_at_ms: 5,
        };
        assert_ne!(b.message(SHARED_KEY_DOMAIN), b.message(IDENTITY_DOMAIN));
        assert_ne!(b.message(RELAY_DOMAIN), b.message(IDENTITY_DOMAIN));
    }

    /// A trader's identity answer does not pass as a relay's, nor the other way round: the same
    /// key signing the same challenge in the two domains.
    #[test]
    fn relay_answers_are_not_identity_answers() {
        let (key, relay, client) = peers();
        let nonce = [7u8; 32];
        let b = Binding {
            nonce: &nonce,
            relay: &relay,
            client: &client,
            expires_at_ms: 5,
        };
        let as_relay = relay_answer(&key, &b).unwrap();
        let as_trader = identity_answer(&key, &b).unwrap();
        assert!(verify_relay(&b, &as_relay));
        assert!(!verify_relay(&b, &as_trader));
        assert!(!verify_identity(&b, &as_relay));
        let stranger = Keypair::generate_ed25519();
        assert!(!verify_relay(&b, &relay_answer(&stranger, &b).unwrap()));
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_are_stable() {
        let a = SharedKey::new(b"a long enough operator secret").unwrap();
        let a2 = SharedKey::new(b"a long enough operator secret").unwrap();
        let b = SharedKey::new(b"a long enough operator secreT").unwrap();
        assert_eq!(a.fingerprint(), a2.fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
    }
}
