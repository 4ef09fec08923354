//! The e2e session handshake: `Responder::respond` on an arbitrary `init` and `Initiator::finish`
//! on an arbitrary response.
//!
//! Input: `mode u8 | rest`.
//! - mode 0: `rest` is an `init` claimed to come from a peer whose key was generated in this
//!   process: no input can carry its signature, so `respond` must refuse it.
//! - mode 1: `rest` is the response to a fresh `init` (new ephemeral key every run): no input can
//!   carry a signature over that transcript, so `finish` must refuse it.
//! - modes 2 and 3: a real `init` (2) or real response (3), then edited by `rest` (triples
//!   `op, position, value`: flip bits, truncate, append). Asserts the edited message is accepted
//!   exactly when it is unchanged, and that an accepted handshake gives two sessions that open
//!   each other's frames.
#![no_main]

use std::sync::OnceLock;

use darkswap_e2e::handshake::{Initiator, Responder, HANDSHAKE_VERSION};
use darkswap_e2e::Session;
use darkswap_fuzz::{identity, Input, SEED_NOW_MS};
use libfuzzer_sys::fuzz_target;
use libp2p_identity::Keypair;

fn stranger() -> &'static Keypair {
    static KEY: OnceLock<Keypair> = OnceLock::new();
    KEY.get_or_init(Keypair::generate_ed25519)
}

fn edit(message: &[u8], edits: &mut Input) -> Vec<u8> {
    let mut m = message.to_vec();
    while !edits.is_empty() {
        let (op, pos, value) = (edits.u8(), edits.u16() as usize, edits.u8());
        match op % 3 {
            0 if !m.is_empty() => {
                let i = pos % m.len();
                m[i] ^= value;
            }
            1 => m.truncate(pos % (m.len() + 1)),
            _ => m.push(value),
        }
    }
    m
}

fn talk(a: &mut Session, b: &mut Session) {
    let frame = a.seal(b"aad", b"ping").unwrap();
    assert_eq!(b.open(b"aad", &frame).unwrap(), b"ping");
    let frame = b.seal(b"aad", b"pong").unwrap();
    assert_eq!(a.open(b"aad", &frame).unwrap(), b"pong");
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let mode = input.u8() % 4;
    let initiator_key = identity(0);
    let responder_key = identity(1);
    let i = initiator_key.public().to_peer_id();
    let r = responder_key.public().to_peer_id();
    let now = SEED_NOW_MS;
    match mode {
        0 => {
            let init = input.rest();
            let from_stranger = stranger().public().to_peer_id();
            assert!(Responder::respond(&responder_key, from_stranger, init, now).is_err());
            // From a fixed identity the seeds may carry a valid init (a replay is answered with a
            // fresh key); whatever is answered is a well-formed response.
            if let Ok((_, resp)) = Responder::respond(&responder_key, i, init, now) {
                assert_eq!(resp[0], HANDSHAKE_VERSION);
                assert_eq!(resp.len(), 2 + 32 + 2 + 64);
            }
        }
        1 => {
            let (initiator, _) = Initiator::start(&initiator_key, r).unwrap();
            assert!(initiator.finish(input.rest(), now).is_err());
        }
        2 => {
            let (initiator, init) = Initiator::start(&initiator_key, r).unwrap();
            let edited = edit(&init, &mut input);
            match Responder::respond(&responder_key, i, &edited, now) {
                Ok((mut b, resp)) => {
                    assert_eq!(edited, init, "an altered init was accepted");
                    let mut a = initiator.finish(&resp, now).unwrap();
                    talk(&mut a, &mut b);
                }
                Err(_) => assert_ne!(edited, init, "a genuine init was refused"),
            }
        }
        _ => {
            let (initiator, init) = Initiator::start(&initiator_key, r).unwrap();
            let (mut b, resp) = Responder::respond(&responder_key, i, &init, now).unwrap();
            let edited = edit(&resp, &mut input);
            match initiator.finish(&edited, now) {
                Ok(mut a) => {
                    assert_eq!(edited, resp, "an altered response was accepted");
                    talk(&mut a, &mut b);
                }
                Err(_) => assert_ne!(edited, resp, "a genuine response was refused"),
            }
        }
    }
});
