//! Other secrets at rest under the wallet's password (the page's identity key and relay shared
//! key). A random [`DataKey`] seals each record (XChaCha20-Poly1305, a random nonce, the
//! record's label as associated data, so a record cannot be passed off as another); the data
//! key itself is kept wrapped under the password exactly as the mnemonic is sealed
//! ([`crate::keystore`]: Argon2id, XChaCha20-Poly1305, an authenticated header with its own
//! magic). One password prompt unwraps it, and records can be sealed again afterwards (a new
//! shared key) without asking again: the caller holds the data key while it is unlocked.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::keystore::{self, KdfParams, OpenError, RecordKind, SealError};

/// The wrapped data key: a password-sealed record of its own kind.
const WRAPPED: RecordKind = RecordKind {
    magic: b"DSK1",
    min_secret: KEY_LEN,
    max_secret: KEY_LEN,
};
const KEY_LEN: usize = 32;
const RECORD_MAGIC: &[u8; 4] = b"DSV1";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The longest secret a record holds.
pub const MAX_SECRET_LEN: usize = 4096;
/// The longest sealed record read; anything longer is refused unread.
pub const MAX_RECORD_LEN: usize = RECORD_MAGIC.len() + NONCE_LEN + MAX_SECRET_LEN + TAG_LEN;

/// The key that seals the records. Never stored in the clear; wiped when dropped.
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random key.
    pub fn generate() -> DataKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        OsRng.fill_bytes(&mut *key);
        DataKey(key)
    }

    /// The key sealed under `password`, to store.
    pub fn wrap(&self, password: &str, params: KdfParams) -> Result<Vec<u8>, SealError> {
        keystore::seal_record(&WRAPPED, 0, &*self.0, password, params)
    }

    /// The key from its stored, wrapped form. A wrong password and an altered record both
    /// give [`OpenError::WrongPasswordOrTampered`].
    pub fn unwrap(wrapped: &[u8], password: &str) -> Result<DataKey, OpenError> {
        let (tag, _) = keystore::read_header(&WRAPPED, wrapped)?;
        if tag != 0 {
            return Err(OpenError::Format);
        }
        let bytes = keystore::open_record(&WRAPPED, wrapped, password)?;
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        key.copy_from_slice(&bytes);
        Ok(DataKey(key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&*self.0).into())
    }

    /// Seals `secret` as the record called `label`.
    pub fn seal(&self, label: &str, secret: &[u8]) -> Result<Vec<u8>, SealError> {
        if secret.len() > MAX_SECRET_LEN {
            return Err(SealError::Encrypt);
        }
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = associated(label);
        let sealed = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Encrypt)?;
        let mut out = Vec::with_capacity(RECORD_MAGIC.len() + NONCE_LEN + sealed.len());
        out.extend_from_slice(RECORD_MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens the record called `label`. Another key, another label or any change to the
    /// record gives [`OpenError::WrongPasswordOrTampered`].
    pub fn open(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        let head = RECORD_MAGIC.len() + NONCE_LEN;
        if sealed.len() > MAX_RECORD_LEN
            || sealed.len() < head + TAG_LEN
            || &sealed[..RECORD_MAGIC.len()] != RECORD_MAGIC
        {
            return Err(OpenError::Format);
        }
        let aad = associated(label);
        let plain = self
            .cipher()
            .decrypt(
                XNonce::from_slice(&sealed[RECORD_MAGIC.len()..head]),
                Payload {
                    msg: &sealed[head..],
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::WrongPasswordOrTampered)?;
        Ok(Zeroizing::new(plain))
    }
}

/// The associated data of a record: the format and its label.
fn associated(label: &str) -> Vec<u8> {
    let mut aad = RECORD_MAGIC.to_vec();
    aad.extend_from_slice(label.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::QUICK;
    const SECRET: &[u8] = b"an ed25519 identity key's 32 secret bytes..";

    #[test]
    fn a_record_opens_with_the_unwrapped_key_and_its_own_label_only() {
        let key = DataKey::generate();
        let wrapped = key.wrap("correct horse", QUICK).unwrap();
        let record = key.seal("identity", SECRET).unwrap();
        let again = DataKey::unwrap(&wrapped, "correct horse").unwrap();
        assert_eq!(&*again.open("identity", &record).unwrap(), SECRET);
        // Another label, another key, a wrong password: refused, never guessed at.
        assert!(matches!(
            again.open("shared-key", &record),
            Err(OpenError::WrongPasswordOrTampered)
        ));
        assert!(matches!(
            DataKey::generate().open("identity", &record),
            Err(OpenError::WrongPasswordOrTampered)
        ));
        assert!(matches!(
            DataKey::unwrap(&wrapped, "correct horsf"),
            Err(OpenError::WrongPasswordOrTampered)
        ));
    }

    #[test]
    fn nothing_stored_holds_a_secret_in_the_clear() {
        let key = DataKey::generate();
        let wrapped = key.wrap("correct horse", QUICK).unwrap();
        let record = key.seal("identity", SECRET).unwrap();
        assert!(!wrapped.windows(KEY_LEN).any(|w| w == &key.0[..]));
        assert!(!record.windows(8).any(|w| SECRET.windows(8).any(|s| s == w)));
        assert!(!wrapped.windows(7).any(|w| w == b"correct"));
        // Two seals of one secret differ (random nonces).
        assert_ne!(record, key.seal("identity", SECRET).unwrap());
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }

    #[test]
    fn every_flipped_bit_fails_closed() {
        let key = DataKey::generate();
        let wrapped = key.wrap("correct horse", QUICK).unwrap();
        let record = key.seal("identity", SECRET).unwrap();
        for i in 0..record.len() {
            let mut t = record.clone();
            t[i] ^= 0x04;
            assert!(key.open("identity", &t).is_err(), "record byte {i}");
        }
        // The wrapped key: past the KDF parameters (salt, nonce, ciphertext, tag).
        for i in 18..wrapped.len() {
            let mut t = wrapped.clone();
            t[i] ^= 0x04;
            assert!(
                matches!(
                    DataKey::unwrap(&t, "correct horse"),
                    Err(OpenError::WrongPasswordOrTampered)
                ),
                "wrapped byte {i}"
            );
        }
    }

    #[test]
    fn sizes_are_capped_and_kinds_kept_apart() {
        let key = DataKey::generate();
        assert!(key.seal("x", &vec![0; MAX_SECRET_LEN + 1]).is_err());
        assert!(matches!(
            key.open("x", &vec![0; MAX_RECORD_LEN + 1]),
            Err(OpenError::Format)
        ));
        assert!(matches!(key.open("x", b"DSV1"), Err(OpenError::Format)));
        // A sealed mnemonic is not a wrapped key, nor the other way round.
        let m = crate::mnemonic::Mnemonic::parse(
            "legal winner thank year wave sausage worth useful legal winner thank yellow",
        )
        .unwrap();
        let mnemonic =
            keystore::seal(&m, "correct horse", crate::network::Network::Regtest, QUICK).unwrap();
        assert!(matches!(
            DataKey::unwrap(&mnemonic, "correct horse"),
            Err(OpenError::Format)
        ));
        let wrapped = key.wrap("correct horse", QUICK).unwrap();
        assert!(matches!(
            keystore::open(&wrapped, "correct horse", crate::network::Network::Regtest),
            Err(OpenError::Format)
        ));
        // A tampered header asking for too much memory is refused before any work.
        let mut greedy = wrapped.clone();
        greedy[6..10].copy_from_slice(&(KdfParams::MAX_MEMORY_KIB + 1).to_le_bytes());
        assert!(matches!(
            DataKey::unwrap(&greedy, "correct horse"),
            Err(OpenError::KdfOutOfBounds(_))
        ));
    }
}
