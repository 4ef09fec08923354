//! Signing BIP86 key-path inputs (BIP341 signature hash, `SIGHASH_DEFAULT`, BIP340 Schnorr with
//! fresh auxiliary randomness). Before it signs an input the wallet derives the key for the path
//! the output claims and checks that the output's script is that key's: an output the chain API
//! attributed to the wallet wrongly is refused, not signed. Each signature is verified before it
//! is placed.

use bitcoin::hashes::Hash;
use bitcoin::key::TapTweak;
use bitcoin::secp256k1::Message;
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{taproot, Transaction, TxOut, Witness};
use rand_core::{OsRng, RngCore};

use crate::keys::{KeyError, KeyPath, Keychain};
use crate::send::Unsigned;

/// Signing refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// One previous output per input is needed for a taproot signature hash.
    #[error("{inputs} inputs but {prevouts} previous outputs")]
    Prevouts {
        /// Inputs.
        inputs: usize,
        /// Previous outputs given.
        prevouts: usize,
    },
    /// No such input.
    #[error("input {0} does not exist")]
    NoInput(usize),
    /// The output spent by `input` is not the key at the path it claims.
    #[error("input {input} does not belong to this wallet's key at {path:?}")]
    NotOurs {
        /// The input.
        input: usize,
        /// The path claimed.
        path: KeyPath,
    },
    /// Key derivation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The signature hash could not be computed.
    #[error("signature hash: {0}")]
    Sighash(#[source] bitcoin::sighash::TaprootError),
    /// A fresh signature did not verify (cannot happen with a sound library; fail closed).
    #[error("a signature did not verify")]
    Verify,
}

/// Signs every input of a transaction the wallet built.
pub fn sign(keys: &Keychain, unsigned: &Unsigned) -> Result<Transaction, SignError> {
    let mut tx = unsigned.tx.clone();
    let prevouts: Vec<TxOut> = unsigned.inputs.iter().map(|u| u.txout.clone()).collect();
    let ours: Vec<(usize, KeyPath)> = unsigned
        .inputs
        .iter()
        .enumerate()
        .map(|(i, u)| (i, u.path))
        .collect();
    sign_inputs(keys, &mut tx, &prevouts, &ours)?;
    Ok(tx)
}

/// Signs the inputs listed in `ours` (index and key path) of `tx`, whose inputs spend
/// `prevouts`; leaves every other input as it is (a shared transaction's other side signs
/// those).
pub fn sign_inputs(
    keys: &Keychain,
    tx: &mut Transaction,
    prevouts: &[TxOut],
    ours: &[(usize, KeyPath)],
) -> Result<(), SignError> {
    if prevouts.len() != tx.input.len() {
        return Err(SignError::Prevouts {
            inputs: tx.input.len(),
            prevouts: prevouts.len(),
        });
    }
    let secp = keys.secp();
    let mut witnesses = Vec::with_capacity(ours.len());
    {
        let mut cache = SighashCache::new(&*tx);
        for &(input, path) in ours {
            let spent = prevouts.get(input).ok_or(SignError::NoInput(input))?;
            if keys.derive(path)?.script_pubkey != spent.script_pubkey {
                return Err(SignError::NotOurs { input, path });
            }
            let hash = cache
                .taproot_key_spend_signature_hash(
                    input,
                    &Prevouts::All(prevouts),
                    TapSighashType::Default,
                )
                .map_err(SignError::Sighash)?;
            let tweaked = keys.keypair(path)?.tap_tweak(secp, None).to_keypair();
            let msg = Message::from_digest(hash.to_byte_array());
            let mut aux = [0u8; 32];
            OsRng.fill_bytes(&mut aux);
            let signature = secp.sign_schnorr_with_aux_rand(&msg, &tweaked, &aux);
            secp.verify_schnorr(&signature, &msg, &tweaked.x_only_public_key().0)
                .map_err(|_| SignError::Verify)?;
            witnesses.push((
                input,
                Witness::p2tr_key_spend(&taproot::Signature {
                    signature,
                    sighash_type: TapSighashType::Default,
                }),
            ));
        }
    }
    for (input, witness) in witnesses {
        tx.input[input].witness = witness;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Account;
    use crate::send::{send_btc, FeeRate};
    use crate::utxo::{Assets, Locks, Utxo};
    use bitcoin::{Amount, OutPoint, Txid};

    fn keys() -> Keychain {
        crate::keys::tests::regtest_keys()
    }

    fn own(k: &Keychain, n: u8, sats: u64) -> Utxo {
        let path = KeyPath::receive(Account::Payment, u32::from(n));
        Utxo {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: 0,
            },
            txout: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: k.derive(path).unwrap().script_pubkey,
            },
            path,
            confirmations: 1,
            assets: Assets::none(),
        }
    }

    #[test]
    fn signatures_verify_against_the_output_keys_and_sighash() {
        let k = keys();
        let utxos = vec![own(&k, 1, 30_000), own(&k, 2, 30_000)];
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let to = k
            .derive(KeyPath::receive(Account::Payment, 9))
            .unwrap()
            .address;
        let u = send_btc(
            &utxos,
            &Locks::<u8>::new(4),
            &to,
            Amount::from_sat(45_000),
            FeeRate::sat_per_vb(1).unwrap(),
            &change,
        )
        .unwrap();
        let tx = sign(&k, &u).unwrap();
        let prevouts: Vec<TxOut> = u.inputs.iter().map(|i| i.txout.clone()).collect();
        let secp = k.secp();
        for (i, input) in tx.input.iter().enumerate() {
            assert_eq!(input.witness.len(), 1);
            let sig = taproot::Signature::from_slice(&input.witness[0]).unwrap();
            assert_eq!(
                sig.sighash_type,
                TapSighashType::Default,
                "64 bytes, no sighash byte"
            );
            let hash = SighashCache::new(&tx)
                .taproot_key_spend_signature_hash(
                    i,
                    &Prevouts::All(&prevouts),
                    TapSighashType::Default,
                )
                .unwrap();
            let out = k
                .derive(u.inputs[i].path)
                .unwrap()
                .output_key
                .to_x_only_public_key();
            secp.verify_schnorr(
                &sig.signature,
                &Message::from_digest(hash.to_byte_array()),
                &out,
            )
            .unwrap();
        }
        // The exact weight the builder assumed.
        assert_eq!(tx.weight().to_vbytes_ceil(), u.fee.to_sat());
    }

    #[test]
    fn an_output_claimed_for_the_wrong_path_is_not_signed() {
        let k = keys();
        let mut utxos = vec![own(&k, 1, 30_000)];
        utxos[0].path = KeyPath::receive(Account::Payment, 2);
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let to = k
            .derive(KeyPath::receive(Account::Payment, 9))
            .unwrap()
            .address;
        let u = send_btc(
            &utxos,
            &Locks::<u8>::new(4),
            &to,
            Amount::from_sat(10_000),
            FeeRate::sat_per_vb(1).unwrap(),
            &change,
        )
        .unwrap();
        assert!(matches!(
            sign(&k, &u),
            Err(SignError::NotOurs { input: 0, .. })
        ));
    }

    #[test]
    fn prevout_count_must_match() {
        let k = keys();
        let mut tx = Transaction {
            version: bitcoin::transaction::Version::TWO,
            lock_time: bitcoin::absolute::LockTime::ZERO,
            input: vec![Default::default()],
            output: vec![],
        };
        assert!(matches!(
            sign_inputs(&k, &mut tx, &[], &[]),
            Err(SignError::Prevouts { .. })
        ));
    }
}
