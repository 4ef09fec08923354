//! AEAD throughput per cipher at 64 B, 1 KiB and 16 KiB, the handshake's cost, and an in-band
//! rekey through the session manager (both sides), natively.
//! Run: `cargo bench -p darkswap-e2e --bench e2e`.

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{black_box, Criterion, Throughput};
    use darkswap_e2e::aead::{open, seal, Cipher, Key};
    use darkswap_e2e::{Initiator, Opened, Responder, Role, SessionManager};
    use libp2p_identity::Keypair;

    fn benches(c: &mut Criterion) {
        let key = Key::from_bytes([7; 32]);
        let nonce = [1u8; 12];
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let mut group = c.benchmark_group(format!("aead {}", cipher.label()));
            for size in [64usize, 1024, 16 * 1024] {
                let plaintext = vec![0x5a; size];
                group.throughput(Throughput::Bytes(size as u64));
                group.bench_function(format!("seal {size} B"), |b| {
                    b.iter(|| seal(cipher, &key, &nonce, b"aad", black_box(&plaintext)))
                });
                let sealed = seal(cipher, &key, &nonce, b"aad", &plaintext);
                group.bench_function(format!("open {size} B"), |b| {
                    b.iter(|| open(cipher, &key, &nonce, b"aad", black_box(&sealed)))
                });
            }
            group.finish();
        }
        let (alice, bob) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (alice_id, bob_id) = (alice.public().to_peer_id(), bob.public().to_peer_id());
        c.bench_function("handshake (both sides, in memory)", |b| {
            b.iter(|| {
                let (initiator, init) = Initiator::start(&alice, bob_id).expect("start");
                let (_, resp) = Responder::respond(&bob, alice_id, &init, 0).expect("respond");
                initiator.finish(&resp, 0).expect("finish")
            })
        });
        // One in-band rekey: sealed init, open, answer, open and switch; both sides.
        let mut taker = SessionManager::new(alice.clone(), Default::default());
        let mut maker = SessionManager::new(bob.clone(), Default::default());
        let init = taker.start(bob_id, 0).expect("start");
        let (resp, _) = maker.respond(alice_id, &init, 0).expect("respond");
        taker.finish(bob_id, &resp, 0).expect("finish");
        c.bench_function("in-band rekey (both sides, session manager)", |b| {
            b.iter(|| {
                let request = taker.start_rekey(bob_id, b"req", 0).expect("rekey");
                let Ok(Opened::RekeyRequested(init)) =
                    maker.open(alice_id, Role::Responder, b"req", &request, 0)
                else {
                    panic!("not a rekey request");
                };
                let (answer, _) = maker
                    .answer_rekey(alice_id, &init, b"resp", 0)
                    .expect("answer");
                taker
                    .open(bob_id, Role::Initiator, b"resp", &answer, 0)
                    .expect("rekeyed")
            })
        });
    }

    pub fn main() {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
}
