//! The session crypto in headless Chromium (wasm32): a full handshake and session, the session
//! manager with an in-band rekey, and AEAD throughput per cipher and handshake time (printed with
//! `-- --nocapture`).
#![cfg(target_arch = "wasm32")]

use darkswap_e2e::aead::{open, seal, Cipher, Key};
use darkswap_e2e::{
    Initiator, ManagerLimits, Opened, RekeyPolicy, Responder, Role, SessionManager,
};
use libp2p_identity::Keypair;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn a_session_works_in_the_browser_with_the_browser_cipher() {
    let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (initiator, init) = Initiator::start(&alice, bob.public().to_peer_id()).unwrap();
    let (mut b, resp) = Responder::respond(&bob, alice.public().to_peer_id(), &init, 0).unwrap();
    let mut a = initiator.finish(&resp, 0).unwrap();
    assert_eq!(a.cipher(), Cipher::ChaCha20Poly1305);
    let frame = a.seal(b"t", b"take 100").unwrap();
    assert_eq!(b.open(b"t", &frame).unwrap(), b"take 100");
    assert!(b.open(b"t", &frame).is_err(), "replay refused");
}

#[wasm_bindgen_test]
fn aead_throughput_in_the_browser() {
    let key = Key::from_bytes([7; 32]);
    let nonce = [1u8; 12];
    for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
        for size in [64usize, 1024, 16 * 1024] {
            let plaintext = vec![0x5a; size];
            let rounds = (8 * 1024 * 1024 / size).max(1000);
            let start = web_time::Instant::now();
            let mut last = Vec::new();
            for _ in 0..rounds {
                last = seal(cipher, &key, &nonce, b"aad", &plaintext);
            }
            let secs = start.elapsed().as_secs_f64();
            assert!(open(cipher, &key, &nonce, b"aad", &last).is_some());
            console_log!(
                "wasm {} seal {size} B: {:.1} MiB/s",
                cipher.label(),
                (rounds * size) as f64 / secs / (1024.0 * 1024.0)
            );
        }
    }
}

#[wasm_bindgen_test]
fn handshake_time_in_the_browser() {
    let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (alice_id, bob_id) = (alice.public().to_peer_id(), bob.public().to_peer_id());
    const N: usize = 101;
    let mut micros = Vec::with_capacity(N);
    for _ in 0..N {
        let start = web_time::Instant::now();
        let (initiator, init) = Initiator::start(&alice, bob_id).unwrap();
        let (_, resp) = Responder::respond(&bob, alice_id, &init, 0).unwrap();
        let session = initiator.finish(&resp, 0).unwrap();
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        assert_eq!(session.remote(), bob_id);
    }
    micros.sort_by(|a, b| a.total_cmp(b));
    console_log!(
        "wasm handshake (both sides, {N} runs): median {:.0} µs, min {:.0} µs, max {:.0} µs",
        micros[N / 2],
        micros[0],
        micros[N - 1]
    );
}

#[wasm_bindgen_test]
fn the_session_manager_works_in_the_browser() {
    let limits = ManagerLimits {
        max_sessions: 2,
        rekey: RekeyPolicy {
            after_messages: 3,
            after_ms: 60_000,
        },
        ..ManagerLimits::default()
    };
    let (maker_key, taker_key) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (maker_id, taker_id) = (
        maker_key.public().to_peer_id(),
        taker_key.public().to_peer_id(),
    );
    let mut maker = SessionManager::new(maker_key, limits);
    let mut taker = SessionManager::new(taker_key, limits);
    let init = taker.start(maker_id, 0).unwrap();
    let (resp, cipher) = maker.respond(taker_id, &init, 0).unwrap();
    assert_eq!(
        cipher,
        Cipher::ChaCha20Poly1305,
        "the browser initiator's choice"
    );
    assert_eq!(taker.finish(maker_id, &resp, 0).unwrap(), cipher);
    let mut late = Vec::new();
    for i in 0..3u8 {
        let frame = taker
            .seal(maker_id, Role::Initiator, b"req", &[i], 1)
            .unwrap();
        late = frame.clone();
        assert_eq!(
            maker.open(taker_id, Role::Responder, b"req", &frame, 1),
            Ok(Opened::Data(vec![i]))
        );
    }
    // Three messages: a rekey is due, run in-band.
    assert!(taker.rekey_due(&maker_id, 1));
    let request = taker.start_rekey(maker_id, b"req", 2).unwrap();
    let Ok(Opened::RekeyRequested(init)) =
        maker.open(taker_id, Role::Responder, b"req", &request, 2)
    else {
        panic!("not a rekey request");
    };
    let (answer, epoch) = maker.answer_rekey(taker_id, &init, b"resp", 2).unwrap();
    assert_eq!(
        taker.open(maker_id, Role::Initiator, b"resp", &answer, 2),
        Ok(Opened::Rekeyed { epoch })
    );
    assert_eq!(epoch, 1);
    // A frame of the old epoch is refused; the new keys work.
    assert!(maker
        .open(taker_id, Role::Responder, b"req", &late, 3)
        .is_err());
    let frame = taker
        .seal(maker_id, Role::Initiator, b"req", b"after", 3)
        .unwrap();
    assert_eq!(
        maker.open(taker_id, Role::Responder, b"req", &frame, 3),
        Ok(Opened::Data(b"after".to_vec()))
    );
    // Bounded: a third peer evicts the least recently used session; idle ones are pruned.
    for _ in 0..2 {
        let other = Keypair::generate_ed25519();
        let mut m = SessionManager::new(other.clone(), limits);
        let init = m.start(maker_id, 10).unwrap();
        maker
            .respond(other.public().to_peer_id(), &init, 10)
            .unwrap();
    }
    assert_eq!(maker.len(), 2);
    assert!(!maker.has_session(&taker_id, Role::Responder));
    assert_eq!(maker.prune(10 + limits.idle_ttl_ms + 1), 2);
    assert!(maker.is_empty());
}
