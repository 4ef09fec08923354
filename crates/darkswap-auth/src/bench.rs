//! The auth workloads measured by the native criterion benchmark and by the wasm test in
//! headless Chromium (the same code on both).

use libp2p_identity::{Keypair, PeerId};

use crate::proof::{identity_answer, verify_identity, Binding, SharedKey};
use crate::token::{self, Claims};
use crate::{Level, Method};

/// Stamps tried by [`Fixture::search_stamp`].
pub const STAMP_TRIES: u32 = 1_024;

/// Keys, a challenge and a token, made once.
pub struct Fixture {
    /// The client's identity key (ed25519).
    pub client: Keypair,
    /// The client's PeerId.
    pub client_id: PeerId,
    /// The relay's identity key (ed25519), which signs the token.
    pub relay: Keypair,
    /// The relay's PeerId.
    pub relay_id: PeerId,
    /// The challenge's nonce (fixed; the challenge never expires).
    pub nonce: [u8; 32],
    /// The client's identity answer to the challenge.
    pub signature: Vec<u8>,
    /// The shared key of the shared-key method.
    pub shared: SharedKey,
    /// The client's shared-key answer to the challenge (HMAC-SHA256).
    pub mac: Vec<u8>,
    /// A relay-signed token for the client: authenticated, by identity, never expiring.
    pub token: Vec<u8>,
}

impl Fixture {
    /// Fresh ed25519 keys for both sides, with the answers and the token made for them.
    pub fn new() -> Fixture {
        let client = Keypair::generate_ed25519();
        let relay = Keypair::generate_ed25519();
        let (client_id, relay_id) = (client.public().to_peer_id(), relay.public().to_peer_id());
        let nonce = [9u8; 32];
        let b = Binding {
            nonce: &nonce,
            relay: &relay_id,
            client: &client_id,
            expires_at_ms: u64::MAX,
        };
        let signature = identity_answer(&client, &b).unwrap_or_default();
        let shared = SharedKey::new(b"a benchmark shared key").unwrap_or_else(|| unreachable!());
        let mac = shared.answer(&b);
        let token = token::issue(
            &relay,
            &Claims {
                relay: relay_id,
                peer: client_id,
                level: Level::Authenticated,
                method: Method::Identity,
                issued_at_ms: 0,
                expires_at_ms: u64::MAX,
                shared_key: None,
                stamp_bits: 0,
            },
        )
        .unwrap_or_default();
        Fixture {
            client,
            client_id,
            relay,
            relay_id,
            nonce,
            signature,
            shared,
            mac,
            token,
        }
    }

    fn binding(&self) -> Binding<'_> {
        Binding {
            nonce: &self.nonce,
            relay: &self.relay_id,
            client: &self.client_id,
            expires_at_ms: u64::MAX,
        }
    }

    /// The relay's check of an identity answer.
    pub fn verify_identity(&self) -> bool {
        verify_identity(&self.binding(), &self.signature)
    }

    /// The relay's check of a shared-key answer.
    pub fn verify_shared_key(&self) -> bool {
        self.shared.verify(&self.binding(), &self.mac)
    }

    /// The client's identity answer.
    pub fn sign_answer(&self) -> usize {
        identity_answer(&self.client, &self.binding()).map_or(0, |s| s.len())
    }

    /// The relay's check of a presented token.
    pub fn verify_token(&self) -> bool {
        token::verify(&self.token, &self.relay.public(), &self.client_id, 1).is_ok()
    }

    /// The relay's check of an identity stamp (one hash): the work it proves.
    pub fn check_stamp(&self) -> u32 {
        crate::stamp::stamp_bits(&self.client_id, STAMP_TRIES as u64)
    }

    /// One slice of [`STAMP_TRIES`] tries of a stamp search for more work than any slice finds:
    /// the client's cost per hash, from which 2^bits hashes is the expected cost of a stamp.
    pub fn search_stamp(&self) -> u64 {
        let mut search = crate::stamp::StampSearch::new(&self.client_id, 256);
        let _ = search.run(STAMP_TRIES);
        search.tries()
    }
}

impl Default for Fixture {
    fn default() -> Self {
        Fixture::new()
    }
}
