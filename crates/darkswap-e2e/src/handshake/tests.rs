use super::*;

const NOW: u64 = 1_000_000;

fn pair() -> (Keypair, Keypair) {
    (Keypair::generate_ed25519(), Keypair::generate_ed25519())
}

fn id(k: &Keypair) -> PeerId {
    k.public().to_peer_id()
}

#[test]
fn both_sides_derive_matching_directional_keys() {
    let (alice, bob) = pair();
    let (initiator, init) = Initiator::start(&alice, id(&bob)).unwrap();
    let (mut bob_session, resp) = Responder::respond(&bob, id(&alice), &init, NOW).unwrap();
    let mut alice_session = initiator.finish(&resp, NOW).unwrap();
    assert_eq!(alice_session.cipher(), bob_session.cipher());
    assert_eq!(alice_session.remote(), id(&bob));
    let frame = alice_session.seal(b"", b"take").unwrap();
    assert_eq!(bob_session.open(b"", &frame).unwrap(), b"take");
    let frame = bob_session.seal(b"", b"accepted").unwrap();
    assert_eq!(alice_session.open(b"", &frame).unwrap(), b"accepted");
    // A frame sent one way cannot be reflected back: each direction has its own key.
    let frame = alice_session.seal(b"", b"x").unwrap();
    assert!(alice_session.open(b"", &frame).is_err());
}

#[test]
fn a_relay_in_the_middle_cannot_substitute_keys() {
    let (alice, bob) = pair();
    let mallory = Keypair::generate_ed25519();
    // Mallory replaces Alice's ephemeral key (and must re-sign: with her own key it fails).
    let (_, init) = Initiator::start(&alice, id(&bob)).unwrap();
    let (_, forged) = Initiator::start(&mallory, id(&bob)).unwrap();
    let mut spliced = init.clone();
    let n = init[1] as usize;
    spliced[2 + n..2 + n + 32].copy_from_slice(&forged[2 + n..2 + n + 32]);
    assert_eq!(
        Responder::respond(&bob, id(&alice), &spliced, NOW).err(),
        Some(HandshakeError::BadSignature)
    );
    // Mallory answers in Bob's place with her own ephemeral key: Bob's signature no longer
    // matches, and she cannot sign as Bob.
    let (initiator, init) = Initiator::start(&alice, id(&bob)).unwrap();
    let (_, resp) = Responder::respond(&bob, id(&alice), &init, NOW).unwrap();
    let mut spliced = resp.clone();
    let mallory_e = PublicKey::from(&EphemeralSecret::random_from_rng(OsRng)).to_bytes();
    spliced[2..34].copy_from_slice(&mallory_e);
    assert_eq!(
        initiator.finish(&spliced, NOW).err(),
        Some(HandshakeError::BadSignature)
    );
    let _ = mallory;
}

#[test]
fn an_init_for_someone_else_is_refused() {
    let (alice, bob) = pair();
    let carol = Keypair::generate_ed25519();
    let (_, init) = Initiator::start(&alice, id(&carol)).unwrap();
    assert_eq!(
        Responder::respond(&bob, id(&alice), &init, NOW).err(),
        Some(HandshakeError::BadSignature)
    );
}

#[test]
fn malformed_messages_are_refused_and_never_panic() {
    let (alice, bob) = pair();
    let (initiator, init) = Initiator::start(&alice, id(&bob)).unwrap();
    for len in 0..init.len() {
        assert!(Responder::respond(&bob, id(&alice), &init[..len], NOW).is_err());
    }
    let (_, resp) = Responder::respond(&bob, id(&alice), &init, NOW).unwrap();
    for i in 0..resp.len() {
        let mut bad = resp.clone();
        bad[i] ^= 0x04;
        let (fresh, _) = Initiator::start(&alice, id(&bob)).unwrap();
        assert!(fresh.finish(&bad, NOW).is_err());
    }
    assert!(initiator.finish(&vec![0u8; 600], NOW).is_err());
}

fn hex32(s: &str) -> [u8; 32] {
    let v: Vec<u8> = (0..64)
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

/// RFC 7748 §5.2 and §6.1 vectors for X25519, the function our key exchange uses.
#[test]
fn rfc7748_x25519_vectors() {
    let out = x25519_dalek::x25519(
        hex32("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
        hex32("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"),
    );
    assert_eq!(
        out,
        hex32("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552")
    );
    let alice = hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    let bob = hex32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    let alice_pub = x25519_dalek::x25519(alice, x25519_dalek::X25519_BASEPOINT_BYTES);
    let bob_pub = x25519_dalek::x25519(bob, x25519_dalek::X25519_BASEPOINT_BYTES);
    assert_eq!(
        alice_pub,
        hex32("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
    );
    assert_eq!(
        bob_pub,
        hex32("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
    );
    let shared = hex32("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
    assert_eq!(x25519_dalek::x25519(alice, bob_pub), shared);
    assert_eq!(x25519_dalek::x25519(bob, alice_pub), shared);
}

/// Wycheproof's X25519 set: every valid or acceptable case computes the expected secret, and
/// the all-zero secrets (low-order points) are the ones our handshake refuses as degenerate.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wycheproof_x25519() {
    use wycheproof::xdh::{TestName, TestSet};
    use wycheproof::TestResult;
    let set = TestSet::load(TestName::X25519).unwrap();
    let mut checked = 0;
    for group in set.test_groups {
        for t in group.tests {
            let (Ok(private), Ok(public)) = (
                <[u8; 32]>::try_from(&t.private_key[..]),
                <[u8; 32]>::try_from(&t.public_key[..]),
            ) else {
                assert_eq!(t.result, TestResult::Invalid, "tc {}", t.tc_id);
                continue;
            };
            let secret = x25519_dalek::StaticSecret::from(private);
            let shared = secret.diffie_hellman(&PublicKey::from(public));
            if t.result != TestResult::Invalid {
                assert_eq!(
                    &shared.as_bytes()[..],
                    &t.shared_secret[..],
                    "tc {}",
                    t.tc_id
                );
                assert_eq!(
                    shared.was_contributory(),
                    t.shared_secret.iter().any(|b| *b != 0),
                    "tc {}",
                    t.tc_id
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} vectors");
}

#[test]
fn the_initiators_preferred_cipher_wins() {
    let (alice, bob) = pair();
    for offer in [
        [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm],
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305],
    ] {
        let (initiator, init) = Initiator::start_offering(&alice, id(&bob), &offer).unwrap();
        let (b, resp) = Responder::respond(&bob, id(&alice), &init, NOW).unwrap();
        let a = initiator.finish(&resp, NOW).unwrap();
        assert_eq!((a.cipher(), b.cipher()), (offer[0], offer[0]));
    }
    // A responder that answers with a cipher we did not offer is refused (an unknown first
    // entry is skipped by the responder; ours only offered ChaCha20 here).
    let (initiator, init) =
        Initiator::start_offering(&alice, id(&bob), &[Cipher::ChaCha20Poly1305]).unwrap();
    let (_, resp) = Responder::respond(&bob, id(&alice), &init, NOW).unwrap();
    let mut forged = resp.clone();
    forged[1] = Cipher::Aes256Gcm as u8;
    assert_eq!(
        initiator.finish(&forged, NOW).err(),
        Some(HandshakeError::NoCommonCipher)
    );
}
