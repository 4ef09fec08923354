use super::*;
use crate::handshake::{Initiator, Responder};
use libp2p_identity::Keypair;

fn between(alice: &Keypair, bob: &Keypair, now: u64) -> (Session, Session) {
    let (initiator, init) = Initiator::start(alice, bob.public().to_peer_id()).unwrap();
    let (b, resp) = Responder::respond(bob, alice.public().to_peer_id(), &init, now).unwrap();
    (initiator.finish(&resp, now).unwrap(), b)
}

fn sessions(now: u64) -> (Session, Session) {
    between(
        &Keypair::generate_ed25519(),
        &Keypair::generate_ed25519(),
        now,
    )
}

#[test]
fn tampering_with_any_part_fails() {
    let (mut a, mut b) = sessions(0);
    let frame = a.seal(b"trade-1", b"confirm").unwrap();
    for i in 0..frame.len() {
        let mut bad = frame.clone();
        bad[i] ^= 0x80;
        assert!(b.open(b"trade-1", &bad).is_err(), "byte {i}");
    }
    assert_eq!(
        b.open(b"trade-2", &frame),
        Err(SessionError::Forged),
        "other AAD"
    );
    // Nothing refused moved the window: the genuine frame still opens, once.
    assert_eq!(b.open(b"trade-1", &frame).unwrap(), b"confirm");
    assert_eq!(b.open(b"trade-1", &frame), Err(SessionError::Replay));
}

#[test]
fn replay_window_accepts_reordering_and_refuses_duplicates_and_stale_frames() {
    let (mut a, mut b) = sessions(0);
    let frames: Vec<Vec<u8>> = (0..200).map(|i| a.seal(b"", &[i as u8]).unwrap()).collect();
    assert!(b.open(b"", &frames[5]).is_ok());
    assert!(
        b.open(b"", &frames[3]).is_ok(),
        "out of order, inside the window"
    );
    assert_eq!(b.open(b"", &frames[3]), Err(SessionError::Replay));
    assert!(b.open(b"", &frames[150]).is_ok());
    assert_eq!(b.open(b"", &frames[80]), Err(SessionError::TooOld));
    assert!(b.open(b"", &frames[100]).is_ok(), "150 - 100 < 64");
    assert_eq!(b.open(b"", &frames[150]), Err(SessionError::Replay));
}

#[test]
fn rekey_is_due_by_time_and_moves_to_new_keys() {
    let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (mut a, mut b) = between(&alice, &bob, 1_000);
    assert!(!a.rekey_due(1_000 + REKEY_AFTER_MS - 1));
    assert!(a.rekey_due(1_000 + REKEY_AFTER_MS));
    let old = a.seal(b"", b"before").unwrap();
    // A fresh handshake between the same peers (new ephemeral keys) becomes the next epoch.
    let (fresh_a, fresh_b) = between(&alice, &bob, 1_000 + REKEY_AFTER_MS);
    a.rekey(fresh_a).unwrap();
    b.rekey(fresh_b).unwrap();
    assert_eq!((a.epoch(), b.epoch()), (1, 1));
    assert!(!a.rekey_due(1_000 + REKEY_AFTER_MS + 1));
    let new = a.seal(b"", b"after").unwrap();
    assert_eq!(b.open(b"", &new).unwrap(), b"after");
    // A frame recorded before the rekey is refused: its keys are gone.
    assert_eq!(b.open(b"", &old), Err(SessionError::WrongEpoch));
}
