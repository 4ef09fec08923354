//! The wallet's decoders of chain and stored input: `Runestone::decipher` on any runestone
//! script (input: byte 0 = extra outputs, 0..7; the rest follows `OP_RETURN OP_13`), the rune
//! `effect` of that transaction with its inputs holding what the edicts name, and
//! `keystore::inspect` on the same bytes as a sealed record, an Esplora address-history page
//! and a typed rune amount (byte 0 its divisibility). Properties: nothing panics; an
//! effect conserves runes (outputs + burned = inputs) and a cenotaph burns everything; a
//! re-enciphered transfer deciphers to itself; an inspected record's KDF parameters are within
//! the caps.
#![no_main]

use std::collections::BTreeMap;

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use darkswap_wallet::effect::effect;
use darkswap_wallet::keystore::{self, KdfParams};
use darkswap_wallet::runestone::{Artifact, Runestone};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // An address history page and a typed amount: refused or read, never a panic; what reads
    // as an amount writes back to the same amount.
    let _ = darkswap_wallet::esplora::parse_address_txs(data);
    if let (Some(&d), Ok(text)) = (data.first(), std::str::from_utf8(data.get(1..).unwrap_or_default())) {
        let d = d % 40;
        if let Ok(units) = darkswap_wallet::units::parse_units(text, d) {
            let written = darkswap_wallet::units::format_units(units, d);
            assert_eq!(darkswap_wallet::units::parse_units(&written, d), Ok(units));
        }
    }
    if let Ok(info) = keystore::inspect(data) {
        assert!(info.kdf.memory_kib <= KdfParams::MAX_MEMORY_KIB);
        assert!(info.kdf.iterations <= KdfParams::MAX_ITERATIONS);
    }
    let Some((&extra, rest)) = data.split_first() else { return };
    let mut script = vec![0x6a, 0x5d];
    script.extend_from_slice(rest);
    let mut output = vec![TxOut { value: Amount::ZERO, script_pubkey: ScriptBuf::from_bytes(script) }];
    for _ in 0..(extra % 8) {
        output.push(TxOut { value: Amount::from_sat(546), script_pubkey: ScriptBuf::from_bytes(vec![0x51; 34]) });
    }
    let input = TxIn {
        previous_output: OutPoint::null(),
        script_sig: ScriptBuf::new(),
        sequence: Sequence::MAX,
        witness: Witness::new(),
    };
    let tx = Transaction { version: Version::TWO, lock_time: LockTime::ZERO, input: vec![input], output };
    let artifact = Runestone::decipher(&tx).expect("the first output starts with OP_RETURN OP_13");
    let mut held = BTreeMap::new();
    if let Artifact::Runestone(stone) = &artifact {
        for e in &stone.edicts {
            held.insert(e.id, 1_000_000u128);
        }
        if stone.etching.is_none() && stone.mint.is_none() {
            let mut again = tx.clone();
            again.output[0].script_pubkey = stone.encipher();
            let back = Runestone::decipher(&again);
            let mut sorted = stone.clone();
            sorted.edicts.sort_by_key(|e| e.id);
            let mut back_sorted = match back { Some(Artifact::Runestone(r)) => r, other => panic!("{other:?}") };
            back_sorted.edicts.sort_by_key(|e| e.id);
            assert_eq!(back_sorted, sorted);
        }
    }
    if let Ok(e) = effect(&tx, &[held.clone()]) {
        let mut total: BTreeMap<_, u128> = e.burned.clone();
        for o in &e.outputs {
            for (id, n) in o {
                *total.entry(*id).or_default() += n;
            }
        }
        total.retain(|_, n| *n > 0);
        assert_eq!(total, held, "runes are conserved");
        if e.cenotaph {
            assert_eq!(e.burned, held);
        }
    }
});
