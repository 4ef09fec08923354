//! `/darkswap/auth/1` (darkswap-auth): `AuthRequest::decode`, `AuthResponse::decode`, the token
//! decoder and verifier (`token::peek`, `token::verify`) and the challenge-answer checks, all run
//! on every input.
//!
//! Asserts: decode → encode → decode gives the same request and response, within their caps and
//! field limits; a token never verifies under a relay key generated in this process (no input can
//! carry its signature), and one that verifies under the fixed relay key of the seeds says what
//! `peek` says, names that relay and is unexpired; re-issuing peeked claims round-trips; an
//! identity answer for a client key generated in this process, or a shared-key answer under a key
//! generated in this process, never verifies, whatever the proof bytes.
#![no_main]

use std::sync::OnceLock;

use darkswap_auth::proof::{verify_identity, Binding, SharedKey};
use darkswap_auth::token;
use darkswap_fuzz::{identity, Input, SEED_NOW_MS};
use darkswap_proto::auth::{
    AdminAction, AuthRequest, AuthResponse, MAX_ADMIN_ENTRIES, MAX_AUTH_REQUEST_BYTES,
    MAX_PROOF_BYTES, MAX_TEXT_BYTES, MAX_TOKEN_BYTES,
};
use libfuzzer_sys::fuzz_target;
use libp2p_identity::Keypair;

fn stranger() -> &'static (Keypair, SharedKey) {
    static KEY: OnceLock<(Keypair, SharedKey)> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = Keypair::generate_ed25519();
        let secret = key.sign(b"fuzz shared key").unwrap();
        (key, SharedKey::new(&secret).unwrap())
    })
}

fn check_token(bytes: &[u8]) {
    let Ok(claims) = token::peek(bytes) else {
        return;
    };
    assert!(bytes.len() <= MAX_TOKEN_BYTES);
    let (stranger, _) = stranger();
    assert!(token::verify(bytes, &stranger.public(), &claims.peer, claims.issued_at_ms).is_err());
    let relay = identity(4);
    if let Ok(verified) = token::verify(bytes, &relay.public(), &claims.peer, SEED_NOW_MS) {
        assert_eq!(verified, claims);
        assert_eq!(verified.relay, relay.public().to_peer_id());
        assert!(SEED_NOW_MS < verified.expires_at_ms);
    }
    let reissued = token::issue(&relay, &claims).unwrap();
    assert_eq!(token::peek(&reissued).as_ref(), Ok(&claims));
    if claims.relay == relay.public().to_peer_id() && claims.expires_at_ms > 0 {
        let now = claims.expires_at_ms - 1;
        assert_eq!(
            token::verify(&reissued, &relay.public(), &claims.peer, now).as_ref(),
            Ok(&claims)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = AuthRequest::decode(data) {
        assert!(data.len() as u64 <= MAX_AUTH_REQUEST_BYTES);
        match &request {
            AuthRequest::Answer { proof, .. } => {
                assert!(!proof.is_empty() && proof.len() <= MAX_PROOF_BYTES)
            }
            AuthRequest::Token { token } => {
                assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
                check_token(token);
            }
            AuthRequest::Admin(AdminAction::Ban { reason, .. }) => {
                assert!(reason.len() <= MAX_TEXT_BYTES && !reason.chars().any(char::is_control))
            }
            _ => {}
        }
        assert_eq!(AuthRequest::decode(&request.encode()), Ok(request));
    }

    if let Ok(response) = AuthResponse::decode(data) {
        match &response {
            AuthResponse::Granted(grant) => {
                assert!(grant.token.len() <= MAX_TOKEN_BYTES);
                check_token(&grant.token);
            }
            AuthResponse::Admin { message, entries } => {
                assert!(entries.len() <= MAX_ADMIN_ENTRIES);
                assert!(message.len() <= MAX_TEXT_BYTES);
                assert!(entries.iter().all(|e| e.note.len() <= MAX_TEXT_BYTES));
            }
            _ => {}
        }
        assert_eq!(AuthResponse::decode(&response.encode()), Ok(response));
    }

    check_token(data);

    // Challenge answers from bytes: never valid for a key no input can know.
    let mut input = Input(data);
    let nonce: [u8; 32] = std::array::from_fn(|_| input.u8());
    let expires_at_ms = input.u64();
    let proof = input.rest();
    let (stranger, shared) = stranger();
    let relay = identity(4).public().to_peer_id();
    let client = stranger.public().to_peer_id();
    let binding = Binding {
        nonce: &nonce,
        relay: &relay,
        client: &client,
        expires_at_ms,
    };
    assert!(!verify_identity(&binding, proof));
    assert!(!shared.verify(&binding, proof));
});
