//! AEAD throughput per cipher at 64 B, 1 KiB and 16 KiB, and the handshake's cost, natively.
//! Run: `cargo bench -p darkswap-e2e --bench e2e`.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    native::main()
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use criterion::{black_box, Criterion, Throughput};
    use darkswap_e2e::aead::{open, seal, Cipher, Key};
    use darkswap_e2e::{Initiator, Responder};
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
    }

    pub fn main() {
        let mut criterion = Criterion::default().configure_from_args();
        benches(&mut criterion);
        criterion.final_summary();
    }
}
