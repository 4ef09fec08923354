//! The wallet in headless Chromium (wasm32): the BIP39 and BIP86 published vectors, sealing and
//! opening at the default Argon2id parameters, building and signing a 10-input taproot send, and
//! settling a swap (both sides);
//! the timings print with `-- --nocapture` (`scripts/wasm-tests` runs this file).
#![cfg(target_arch = "wasm32")]

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, TxOut, Txid};
use darkswap_wallet::keystore::{self, KdfParams, OpenError};
use darkswap_wallet::{
    send_btc, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, Utxo,
    WordCount,
};
use wasm_bindgen_test::*;
use web_time::Instant;

wasm_bindgen_test_configure!(run_in_browser);

const ABANDON: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

#[wasm_bindgen_test]
fn bip39_and_bip86_vectors_in_the_browser() {
    let m = Mnemonic::parse(ABANDON).unwrap();
    // BIP39 (trezor vectors.json, passphrase "TREZOR").
    assert_eq!(
        hex::encode(*m.seed("TREZOR")),
        "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04"
    );
    // BIP86 test vectors.
    let k = Keychain::new(&m, "", Network::Mainnet).unwrap();
    let d = k.derive(KeyPath::receive(Account::Payment, 0)).unwrap();
    assert_eq!(
        d.internal_key.to_string(),
        "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115"
    );
    assert_eq!(
        d.address.to_string(),
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    );
    let c = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
    assert_eq!(
        c.address.to_string(),
        "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"
    );
    // The browser's randomness makes fresh mnemonics.
    let a = Mnemonic::generate(WordCount::Twelve);
    let b = Mnemonic::generate(WordCount::Twelve);
    assert_ne!(&*a.entropy(), &*b.entropy());
}

#[wasm_bindgen_test]
fn sealing_at_the_default_parameters_in_the_browser() {
    let m = Mnemonic::generate(WordCount::Twelve);
    let t0 = Instant::now();
    let sealed =
        keystore::seal(&m, "correct horse", Network::Regtest, KdfParams::default()).unwrap();
    let seal_ms = t0.elapsed().as_millis();
    let t1 = Instant::now();
    let opened = keystore::open(&sealed, "correct horse", Network::Regtest).unwrap();
    let open_ms = t1.elapsed().as_millis();
    assert_eq!(&*opened.entropy(), &*m.entropy());
    assert!(matches!(
        keystore::open(&sealed, "wrong horse", Network::Regtest),
        Err(OpenError::WrongPasswordOrTampered)
    ));
    console_log!(
        "wallet in Chromium: seal {seal_ms} ms, open {open_ms} ms (Argon2id 64 MiB, 3 passes)"
    );
}

#[wasm_bindgen_test]
fn signing_ten_taproot_inputs_in_the_browser() {
    let k = Keychain::new(&Mnemonic::parse(ABANDON).unwrap(), "", Network::Regtest).unwrap();
    let utxos: Vec<Utxo> = (0..10u32)
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
        .collect();
    let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
    let to = k
        .derive(KeyPath::receive(Account::Payment, 500))
        .unwrap()
        .address;
    let unsigned = send_btc(
        &utxos,
        &Locks::<u8>::new(16),
        &to,
        Amount::from_sat(95_000),
        FeeRate::sat_per_vb(2).unwrap(),
        &change,
    )
    .unwrap();
    assert_eq!(unsigned.inputs.len(), 10);
    let runs = 20;
    let t0 = Instant::now();
    for _ in 0..runs {
        let tx = sign(&k, &unsigned).unwrap();
        assert!(tx.input.iter().all(|i| i.witness.len() == 1));
    }
    let per = t0.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
    console_log!("wallet in Chromium: sign a 10-input taproot send {per:.2} ms");
}

#[wasm_bindgen_test]
fn settling_a_swap_in_the_browser() {
    let w = darkswap_wallet::workload::SwapWorkload::new();
    let runs = 10;
    let t0 = Instant::now();
    for _ in 0..runs {
        let tx = w.settle();
        assert!(tx.input.iter().all(|i| i.witness.len() == 1));
    }
    let per = t0.elapsed().as_secs_f64() * 1000.0 / f64::from(runs);
    console_log!(
        "wallet in Chromium: settle a swap (both sides build, sign, check; 4 inputs) {per:.2} ms"
    );
}
