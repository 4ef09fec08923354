//! The session crypto in headless Chromium (wasm32): a full handshake and session, the RFC 8439
//! vector through our API, and AEAD throughput per cipher (printed with `-- --nocapture`).
#![cfg(target_arch = "wasm32")]

use darkswap_e2e::aead::{open, seal, Cipher, Key};
use darkswap_e2e::{Initiator, Responder};
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
