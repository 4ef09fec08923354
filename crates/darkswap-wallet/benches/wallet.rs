//! Wallet costs a trader waits for: unlocking (Argon2id at the default parameters), deriving
//! an address, building and signing a 10-input taproot send, and settling a swap (both sides
//! build, sign and check; 4 inputs).
//! `cargo bench -p darkswap-wallet --bench wallet`; the same workloads run in headless Chromium
//! in `tests/wasm.rs`.

fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use bitcoin::hashes::Hash;
    use bitcoin::{Amount, OutPoint, TxOut, Txid};
    use criterion::Criterion;
    use darkswap_wallet::keystore::{self, KdfParams};
    use darkswap_wallet::{
        send_btc, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, Utxo,
    };

    fn wallet() -> Keychain {
        let m = Mnemonic::parse(
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
        )
        .unwrap();
        Keychain::new(&m, "", Network::Regtest).unwrap()
    }

    fn utxos(k: &Keychain, n: u32) -> Vec<Utxo> {
        (0..n)
            .map(|i| {
                let path = KeyPath::receive(Account::Payment, i);
                Utxo {
                    outpoint: OutPoint {
                        txid: Txid::from_byte_array([i as u8; 32]),
                        vout: i,
                    },
                    txout: TxOut {
                        value: Amount::from_sat(10_000),
                        script_pubkey: k.derive(path).unwrap().script_pubkey,
                    },
                    path,
                    confirmations: 1,
                    assets: Assets::none(),
                }
            })
            .collect()
    }

    pub fn main() {
        let mut c = Criterion::default().configure_from_args();
        let c = &mut c;
        let k = wallet();
        let m = Mnemonic::parse(
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
        )
        .unwrap();
        let sealed =
            keystore::seal(&m, "correct horse", Network::Regtest, KdfParams::default()).unwrap();
        let mut g = c.benchmark_group("unlock");
        g.sample_size(10);
        g.bench_function("argon2id_64MiB_t3_open", |b| {
            b.iter(|| keystore::open(&sealed, "correct horse", Network::Regtest).unwrap())
        });
        g.finish();

        c.bench_function("derive_address", |b| {
            let mut i = 0;
            b.iter(|| {
                i += 1;
                k.derive(KeyPath::receive(Account::Payment, i % 1000))
                    .unwrap()
            })
        });

        let ten = utxos(&k, 10);
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let to = k
            .derive(KeyPath::receive(Account::Payment, 500))
            .unwrap()
            .address;
        let locks = Locks::<u8>::new(16);
        let unsigned = send_btc(
            &ten,
            &locks,
            &to,
            Amount::from_sat(95_000),
            FeeRate::sat_per_vb(2).unwrap(),
            &change,
        )
        .unwrap();
        assert_eq!(unsigned.inputs.len(), 10);
        c.bench_function("build_10_input_send", |b| {
            b.iter(|| {
                send_btc(
                    &ten,
                    &locks,
                    &to,
                    Amount::from_sat(95_000),
                    FeeRate::sat_per_vb(2).unwrap(),
                    &change,
                )
                .unwrap()
            })
        });
        c.bench_function("sign_10_input_taproot", |b| {
            b.iter(|| sign(&k, &unsigned).unwrap())
        });
        // Settlement: both sides build the swap, sign their halves and check each other's.
        let swap = darkswap_wallet::workload::SwapWorkload::new();
        c.bench_function("swap_build_check_sign_both_sides", |b| {
            b.iter(|| swap.settle())
        });
        c.final_summary();
    }
}
