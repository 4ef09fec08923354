//! The auth code in headless Chromium (wasm32): the same proofs, tokens and client state machine
//! the browser runs, checked against the same rules as natively.
//! `wasm-pack test --headless --chrome crates/darkswap-auth`
#![cfg(target_arch = "wasm32")]

use darkswap_auth::client::{ClientAuth, Credential, Step};
use darkswap_auth::proof::{identity_answer, verify_identity, Binding, SharedKey};
use darkswap_auth::token::{self, Claims};
use darkswap_auth::{Level, Method, RefuseReason};
use darkswap_proto::auth::{AuthRequest, AuthResponse};
use libp2p_identity::Keypair;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn identity_and_shared_key_proofs() {
    let key = Keypair::generate_ed25519();
    let client = key.public().to_peer_id();
    let relay = Keypair::generate_ed25519().public().to_peer_id();
    let nonce = [7u8; 32];
    let b = Binding {
        nonce: &nonce,
        relay: &relay,
        client: &client,
        expires_at_ms: 42,
    };
    let sig = identity_answer(&key, &b).unwrap();
    assert!(verify_identity(&b, &sig));
    assert!(!verify_identity(&b, &[0u8; 64]));
    let shared = SharedKey::new(b"sixteen bytes at least").unwrap();
    let tag = shared.answer(&b);
    assert!(shared.verify(&b, &tag));
    assert!(!SharedKey::new(b"sixteen bytes at least!")
        .unwrap()
        .verify(&b, &tag));
}

#[wasm_bindgen_test]
fn tokens_and_the_client_flow() {
    let relay_key = Keypair::generate_ed25519();
    let relay = relay_key.public().to_peer_id();
    let key = Keypair::generate_ed25519();
    let me = key.public().to_peer_id();
    let now = darkswap_auth_wasm_now();
    let claims = Claims {
        relay,
        peer: me,
        level: Level::Authenticated,
        method: Method::Identity,
        issued_at_ms: now,
        expires_at_ms: now + 3_600_000,
        shared_key: None,
        stamp_bits: 0,
    };
    let t = token::issue(&relay_key, &claims).unwrap();
    assert_eq!(token::verify(&t, &relay_key.public(), &me, now), Ok(claims));
    let mut forged = t.clone();
    forged[5] ^= 1;
    assert!(token::verify(&forged, &relay_key.public(), &me, now).is_err());

    let mut client = ClientAuth::new(Credential::Identity, Some(t.clone()));
    assert_eq!(
        client.start(&relay, &me, now),
        AuthRequest::Token { token: t }
    );
    let step = client.on_response(
        AuthResponse::Refused {
            reason: RefuseReason::RevokedToken,
        },
        &key,
        &relay,
    );
    assert_eq!(
        step,
        Step::Send(AuthRequest::Challenge {
            method: Method::Identity
        })
    );
    let wire = AuthRequest::Challenge {
        method: Method::Identity,
    }
    .encode();
    assert!(AuthRequest::decode(&wire).is_ok());
}

/// The native benchmark's workloads, timed in the browser (`-- --nocapture` prints them).
#[wasm_bindgen_test]
fn auth_costs_in_the_browser() {
    let f = darkswap_auth::bench::Fixture::new();
    let time = |name: &str, runs: u32, work: &dyn Fn() -> bool| {
        let t0 = js_sys_now();
        for _ in 0..runs {
            assert!(work());
        }
        let us = (js_sys_now() - t0) * 1e3 / f64::from(runs);
        wasm_bindgen_test::console_log!("{name}: {us:.1} µs");
    };
    time("identity answer (client signs)", 200, &|| {
        f.sign_answer() == 64
    });
    time("identity answer check (relay)", 200, &|| {
        f.verify_identity()
    });
    time("shared-key answer check (relay)", 2000, &|| {
        f.verify_shared_key()
    });
    time("token check (relay)", 200, &|| f.verify_token());
    time("identity stamp check (relay)", 2000, &|| {
        f.check_stamp() < 64
    });
    time("identity stamp search, 1,024 tries (client)", 50, &|| {
        f.search_stamp() == u64::from(darkswap_auth::bench::STAMP_TRIES)
    });
}

fn darkswap_auth_wasm_now() -> u64 {
    js_sys_now() as u64
}

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Date, js_name = now)]
    fn js_sys_now() -> f64;
}
