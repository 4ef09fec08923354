//! e2e session frames: `Session::open` on arbitrary, replayed, reordered, altered and reflected
//! frames, checked against a model of what it must accept.
//!
//! Each run makes a fresh handshake (so fresh keys no input can know), then plays the input as
//! operations: A seals a message; B opens one of A's frames (as sent, with the wrong associated
//! data, altered, or truncated); B opens raw bytes; B opens a frame B sealed itself (reflection);
//! both sides rekey. Asserts that B accepts a frame exactly when it is byte for byte one A sealed
//! in the current epoch, with the same associated data, not accepted before and not behind the
//! replay window, and that it then returns A's plaintext; everything else is refused.
#![no_main]

use darkswap_e2e::handshake::{Initiator, Responder};
use darkswap_e2e::{Session, REPLAY_WINDOW};
use darkswap_fuzz::{identity, Input, SEED_NOW_MS};
use libfuzzer_sys::fuzz_target;

const AADS: [&[u8]; 3] = [b"", b"trade/1", b"trade/2"];

struct Sent {
    epoch: u32,
    counter: u64,
    aad: &'static [u8],
    plaintext: Vec<u8>,
    frame: Vec<u8>,
}

/// What B must do: the receive window of the current epoch.
#[derive(Default)]
struct Model {
    epoch: u32,
    max: Option<u64>,
    accepted: Vec<u64>,
}

impl Model {
    fn accepts(&self, s: &Sent, aad: &[u8], frame: &[u8]) -> bool {
        s.frame == frame
            && s.aad == aad
            && s.epoch == self.epoch
            && !self.accepted.contains(&s.counter)
            && self
                .max
                .is_none_or(|max| s.counter > max || max - s.counter < REPLAY_WINDOW)
    }

    fn accept(&mut self, counter: u64) {
        self.accepted.push(counter);
        self.max = Some(self.max.map_or(counter, |m| m.max(counter)));
    }
}

fn handshake() -> (Session, Session) {
    let (ik, rk) = (identity(0), identity(1));
    let (initiator, init) = Initiator::start(&ik, rk.public().to_peer_id()).unwrap();
    let (b, resp) = Responder::respond(&rk, ik.public().to_peer_id(), &init, SEED_NOW_MS).unwrap();
    (initiator.finish(&resp, SEED_NOW_MS).unwrap(), b)
}

fn deliver(b: &mut Session, model: &mut Model, sent: &[Sent], aad: &[u8], frame: &[u8]) {
    let expected = sent.iter().find(|s| model.accepts(s, aad, frame));
    match (b.open(aad, frame), expected) {
        (Ok(plaintext), Some(s)) => {
            assert_eq!(plaintext, s.plaintext);
            model.accept(s.counter);
        }
        (Err(_), None) => {}
        (Ok(_), None) => panic!("opened a frame that A did not seal, or a replay"),
        (Err(e), Some(s)) => panic!("refused A's frame {} of epoch {}: {e}", s.counter, s.epoch),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let (mut a, mut b) = handshake();
    let mut model = Model::default();
    let mut sent: Vec<Sent> = Vec::new();
    let mut counter = 0u64;
    let mut ops = 0;
    let mut rekeys = 0;
    while !input.is_empty() && ops < 128 {
        ops += 1;
        let op = input.u8();
        let aad = AADS[usize::from(op >> 4) % AADS.len()];
        let pick = |input: &mut Input, sent: &[Sent]| -> Option<usize> {
            let i = input.u8() as usize;
            (!sent.is_empty()).then(|| sent.len() - 1 - i % sent.len())
        };
        match op % 7 {
            0 => {
                let plaintext = input.chunk().to_vec();
                let frame = a.seal(aad, &plaintext).unwrap();
                sent.push(Sent {
                    epoch: model.epoch,
                    counter,
                    aad,
                    plaintext,
                    frame,
                });
                counter += 1;
            }
            // One of A's frames, as sealed, with associated data chosen by the input.
            1 => {
                if let Some(i) = pick(&mut input, &sent) {
                    let frame = sent[i].frame.clone();
                    deliver(&mut b, &mut model, &sent, aad, &frame);
                }
            }
            // Altered: one byte xored.
            2 => {
                if let Some(i) = pick(&mut input, &sent) {
                    let mut frame = sent[i].frame.clone();
                    let pos = input.u16() as usize % frame.len();
                    frame[pos] ^= input.u8();
                    deliver(&mut b, &mut model, &sent, sent[i].aad, &frame);
                }
            }
            // Truncated.
            3 => {
                if let Some(i) = pick(&mut input, &sent) {
                    let frame = sent[i].frame.clone();
                    let len = input.u16() as usize % (frame.len() + 1);
                    deliver(&mut b, &mut model, &sent, sent[i].aad, &frame[..len]);
                }
            }
            // Raw bytes from the input.
            4 => {
                let frame = input.chunk().to_vec();
                deliver(&mut b, &mut model, &sent, aad, &frame);
            }
            // Reflection: B's own frame sent back to B.
            5 => {
                let plaintext = input.chunk().to_vec();
                let frame = b.seal(aad, &plaintext).unwrap();
                deliver(&mut b, &mut model, &sent, aad, &frame);
            }
            // Rekey both sides with a fresh handshake: old frames are of another epoch now.
            // (At most twice per run: a handshake costs as much as a thousand frames.)
            _ if rekeys < 2 => {
                rekeys += 1;
                let (fresh_a, fresh_b) = handshake();
                a.rekey(fresh_a).unwrap();
                b.rekey(fresh_b).unwrap();
                model = Model {
                    epoch: model.epoch + 1,
                    ..Model::default()
                };
                counter = 0;
            }
            _ => {}
        }
    }
});
