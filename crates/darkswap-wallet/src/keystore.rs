//! The mnemonic at rest: its entropy sealed under a key derived from the user's password, so
//! what the page keeps in IndexedDB (and the CLI in its wallet file) never holds the mnemonic,
//! the seed or a private key in the clear.
//!
//! - **KDF**: Argon2id (memory-hard, RFC 9106) over the password and a random 16-byte salt.
//!   [`KdfParams::default`] is 64 MiB, 3 passes, 1 lane: Bitwarden's default and above RFC
//!   9106's second recommended option's memory per pass. Parameters read back from storage are
//!   capped ([`KdfParams::MAX_MEMORY_KIB`] and the rest) before anything is allocated, so a
//!   tampered record cannot make the page allocate gigabytes; parameters below the floor are
//!   refused when sealing.
//! - **AEAD**: XChaCha20-Poly1305 with a random 24-byte nonce (random nonces are safe at that
//!   size). The header (format version, network, KDF parameters, salt, nonce) is the associated
//!   data, so any edit of it fails to open, as does a wrong password: both are
//!   [`OpenError::WrongPasswordOrTampered`], which the caller rate-limits with
//!   [`UnlockThrottle`].
//! - Everything secret passes through [`Zeroizing`] buffers.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::mnemonic::{Mnemonic, MnemonicError};
use crate::network::Network;

const MAGIC: &[u8; 4] = b"DSW1";
const FORMAT_VERSION: u8 = 1;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// magic, version, network, m, t, p, salt, nonce.
const HEADER_LEN: usize = 4 + 1 + 1 + 4 + 4 + 4 + SALT_LEN + NONCE_LEN;
/// BIP39 entropy is 16 to 32 bytes.
const MAX_ENTROPY: usize = 32;
/// The longest sealed record there can be; anything longer is refused unread.
pub const MAX_SEALED_LEN: usize = HEADER_LEN + MAX_ENTROPY + TAG_LEN;
/// Shorter passwords are refused when sealing (the page asks for at least this many characters).
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// No sealed record may ask for more memory than this (256 MiB): a browser tab may not get more.
    pub const MAX_MEMORY_KIB: u32 = 256 * 1024;
    /// Nor fewer than this (19 MiB, OWASP's minimum for Argon2id) when sealing.
    pub const MIN_MEMORY_KIB: u32 = 19 * 1024;
    /// Most passes a record may ask for.
    pub const MAX_ITERATIONS: u32 = 16;
    /// Most lanes a record may ask for.
    pub const MAX_PARALLELISM: u32 = 4;

    fn check_readable(&self) -> Result<(), OpenError> {
        if self.memory_kib > Self::MAX_MEMORY_KIB
            || self.iterations == 0
            || self.iterations > Self::MAX_ITERATIONS
            || self.parallelism == 0
            || self.parallelism > Self::MAX_PARALLELISM
        {
            return Err(OpenError::KdfOutOfBounds(*self));
        }
        Ok(())
    }

    fn argon2(&self) -> Result<Argon2<'static>, argon2::Error> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

/// Sealing refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The password is shorter than [`MIN_PASSWORD_CHARS`].
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    /// The parameters are below the floor or above the caps.
    #[error("Argon2id parameters {0:?} are outside the allowed range")]
    WeakKdf(KdfParams),
    /// Argon2 itself refused.
    #[error("key derivation failed: {0}")]
    Kdf(argon2::Error),
    /// The cipher refused (cannot happen for these sizes; kept rather than unwrapped).
    #[error("encryption failed")]
    Encrypt,
}

/// Opening refused.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not a sealed wallet of this format (wrong magic, version, or length).
    #[error("not a sealed DarkSwap record of this kind (format or length)")]
    Format,
    /// Sealed for another network than the caller expects.
    #[error("the wallet was sealed for {found}, not {expected}")]
    WrongNetwork {
        /// The network in the record.
        found: Network,
        /// The network asked for.
        expected: Network,
    },
    /// The record asks for KDF work beyond the caps.
    #[error("the stored Argon2id parameters {0:?} exceed what this wallet accepts")]
    KdfOutOfBounds(KdfParams),
    /// Argon2 itself refused.
    #[error("key derivation failed: {0}")]
    Kdf(argon2::Error),
    /// The password is wrong, or the record was altered: the two cannot be told apart.
    #[error("wrong password (or the stored wallet was altered)")]
    WrongPasswordOrTampered,
    /// It opened, but what was inside is not BIP39 entropy.
    #[error("the unsealed entropy is not a mnemonic: {0}")]
    Mnemonic(#[source] MnemonicError),
}

/// What one kind of password-sealed record is: its magic, and how long its secret may be.
/// Every kind has the same header (magic, version, a tag byte, KDF parameters, salt, nonce),
/// authenticated as associated data.
pub(crate) struct RecordKind {
    pub magic: &'static [u8; 4],
    pub min_secret: usize,
    pub max_secret: usize,
}

/// The sealed mnemonic: its entropy, the tag byte its network.
const MNEMONIC: RecordKind = RecordKind {
    magic: MAGIC,
    min_secret: 16,
    max_secret: MAX_ENTROPY,
};

/// Seals `secret` under `password` as a record of `kind`, with `tag` in its header.
pub(crate) fn seal_record(
    kind: &RecordKind,
    tag: u8,
    secret: &[u8],
    password: &str,
    params: KdfParams,
) -> Result<Vec<u8>, SealError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(SealError::PasswordTooShort);
    }
    if params.memory_kib < KdfParams::MIN_MEMORY_KIB || params.check_readable().is_err() {
        return Err(SealError::WeakKdf(params));
    }
    if secret.len() < kind.min_secret || secret.len() > kind.max_secret {
        return Err(SealError::Encrypt);
    }
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let header = header(kind.magic, tag, params, &salt, &nonce);
    let key = derive_key(password, &salt, params).map_err(SealError::Kdf)?;
    let cipher = XChaCha20Poly1305::new((&*key).into());
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: secret,
                aad: &header,
            },
        )
        .map_err(|_| SealError::Encrypt)?;
    let mut out = header;
    out.extend_from_slice(&sealed);
    Ok(out)
}

/// Reads a record's header (checked and capped) without the password: its tag byte and KDF
/// parameters.
pub(crate) fn read_header(kind: &RecordKind, sealed: &[u8]) -> Result<(u8, KdfParams), OpenError> {
    if sealed.len() > HEADER_LEN + kind.max_secret + TAG_LEN
        || sealed.len() < HEADER_LEN + kind.min_secret + TAG_LEN
    {
        return Err(OpenError::Format);
    }
    if &sealed[..4] != kind.magic || sealed[4] != FORMAT_VERSION {
        return Err(OpenError::Format);
    }
    let word = |at: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&sealed[at..at + 4]);
        u32::from_le_bytes(b)
    };
    let kdf = KdfParams {
        memory_kib: word(6),
        iterations: word(10),
        parallelism: word(14),
    };
    kdf.check_readable()?;
    Ok((sealed[5], kdf))
}

/// Opens a record of `kind` with `password`.
pub(crate) fn open_record(
    kind: &RecordKind,
    sealed: &[u8],
    password: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let (_, kdf) = read_header(kind, sealed)?;
    let (header, body) = sealed.split_at(HEADER_LEN);
    let salt = &header[18..18 + SALT_LEN];
    let nonce = &header[18 + SALT_LEN..];
    let key = derive_key(password, salt, kdf).map_err(OpenError::Kdf)?;
    let cipher = XChaCha20Poly1305::new((&*key).into());
    Ok(Zeroizing::new(
        cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: header,
                },
            )
            .map_err(|_| OpenError::WrongPasswordOrTampered)?,
    ))
}

/// Seals `mnemonic`'s entropy for `network` under `password`.
pub fn seal(
    mnemonic: &Mnemonic,
    password: &str,
    network: Network,
    params: KdfParams,
) -> Result<Vec<u8>, SealError> {
    seal_record(
        &MNEMONIC,
        network.tag(),
        &mnemonic.entropy(),
        password,
        params,
    )
}

/// What a sealed record says about itself without the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedInfo {
    /// The network it was sealed for.
    pub network: Network,
    /// Its KDF parameters.
    pub kdf: KdfParams,
}

/// Reads a record's header (checked and capped), without the password.
pub fn inspect(sealed: &[u8]) -> Result<SealedInfo, OpenError> {
    let (tag, kdf) = read_header(&MNEMONIC, sealed)?;
    let network = Network::from_tag(tag).ok_or(OpenError::Format)?;
    Ok(SealedInfo { network, kdf })
}

/// Opens a record sealed for `network` with `password`.
pub fn open(sealed: &[u8], password: &str, network: Network) -> Result<Mnemonic, OpenError> {
    let info = inspect(sealed)?;
    if info.network != network {
        return Err(OpenError::WrongNetwork {
            found: info.network,
            expected: network,
        });
    }
    let entropy = open_record(&MNEMONIC, sealed, password)?;
    Mnemonic::from_entropy(&entropy).map_err(OpenError::Mnemonic)
}

fn header(magic: &[u8; 4], tag: u8, params: KdfParams, salt: &[u8], nonce: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER_LEN + MAX_ENTROPY + TAG_LEN);
    h.extend_from_slice(magic);
    h.push(FORMAT_VERSION);
    h.push(tag);
    h.extend_from_slice(&params.memory_kib.to_le_bytes());
    h.extend_from_slice(&params.iterations.to_le_bytes());
    h.extend_from_slice(&params.parallelism.to_le_bytes());
    h.extend_from_slice(salt);
    h.extend_from_slice(nonce);
    h
}

fn derive_key(
    password: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, argon2::Error> {
    let mut key = Zeroizing::new([0u8; 32]);
    params
        .argon2()?
        .hash_password_into(password.as_bytes(), salt, &mut *key)?;
    Ok(key)
}

/// Slows down password guessing at the unlock prompt. The first [`UnlockThrottle::FREE_TRIES`]
/// wrong passwords cost nothing extra (typos); after that each one doubles the wait, from 1 s up
/// to [`UnlockThrottle::MAX_WAIT_MS`]. The page keeps this state beside the sealed record, so a
/// reload does not reset it. No clock inside: every call takes `now_ms`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnlockThrottle {
    /// Wrong passwords since the last success.
    pub failures: u32,
    /// When the last wrong password was given (ms since the Unix epoch).
    pub last_failure_ms: u64,
}

impl UnlockThrottle {
    /// Wrong passwords allowed before waits start.
    pub const FREE_TRIES: u32 = 3;
    /// The longest wait between tries (5 minutes).
    pub const MAX_WAIT_MS: u64 = 5 * 60 * 1000;

    /// When the next try is allowed; `None` means now.
    pub fn retry_at(&self, now_ms: u64) -> Option<u64> {
        if self.failures < Self::FREE_TRIES {
            return None;
        }
        let doublings = (self.failures - Self::FREE_TRIES).min(20);
        let wait = (1000u64 << doublings).min(Self::MAX_WAIT_MS);
        let at = self.last_failure_ms.saturating_add(wait);
        (at > now_ms).then_some(at)
    }

    /// Counts a wrong password.
    pub fn failed(&mut self, now_ms: u64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure_ms = now_ms;
    }

    /// The right password: waits start over.
    pub fn succeeded(&mut self) {
        *self = UnlockThrottle::default();
    }
}

/// Locks an unlocked wallet after it sat idle: the page drops its keychain when
/// [`IdleLock::expired`] says so. No clock inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdleLock {
    idle_ms: u64,
    last_use_ms: u64,
}

impl IdleLock {
    /// The default: 5 minutes without use.
    pub const DEFAULT_IDLE_MS: u64 = 5 * 60 * 1000;

    /// Unlocked at `now_ms`, locking after `idle_ms` without use.
    pub fn new(idle_ms: u64, now_ms: u64) -> Self {
        IdleLock {
            idle_ms,
            last_use_ms: now_ms,
        }
    }

    /// The wallet was used.
    pub fn touch(&mut self, now_ms: u64) {
        self.last_use_ms = self.last_use_ms.max(now_ms);
    }

    /// Whether it is time to lock.
    pub fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_use_ms) >= self.idle_ms
    }
}

/// The floor, to keep tests quick (debug builds of Argon2 are slow).
#[cfg(test)]
pub(crate) const QUICK: KdfParams = KdfParams {
    memory_kib: KdfParams::MIN_MEMORY_KIB,
    iterations: 1,
    parallelism: 1,
};

#[cfg(test)]
mod tests {
    use super::*;
    const WORDS: &str =
        "legal winner thank year wave sausage worth useful legal winner thank yellow";

    fn sealed() -> Vec<u8> {
        seal(
            &Mnemonic::parse(WORDS).unwrap(),
            "correct horse",
            Network::Regtest,
            QUICK,
        )
        .unwrap()
    }

    /// RFC 9106 section 5.3: Argon2id test vector (32 KiB, 3 passes, 4 lanes, with secret and
    /// associated data), through the same crate and version the keystore uses.
    #[test]
    fn argon2id_rfc9106_vector() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let a = Argon2::new_with_secret(&[3u8; 8], Algorithm::Argon2id, Version::V0x13, params)
            .unwrap();
        let mut out = [0u8; 32];
        a.hash_password_into(&[1u8; 32], &[2u8; 16], &mut out)
            .unwrap();
        assert_eq!(
            hex::encode(out),
            "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659"
        );
    }

    #[test]
    fn round_trip() {
        let s = sealed();
        assert!(s.len() <= MAX_SEALED_LEN);
        let m = open(&s, "correct horse", Network::Regtest).unwrap();
        assert_eq!(&*m.words(), WORDS);
        assert_eq!(
            inspect(&s).unwrap(),
            SealedInfo {
                network: Network::Regtest,
                kdf: QUICK
            }
        );
    }

    #[test]
    fn the_record_holds_no_secret_in_the_clear() {
        let s = sealed();
        let entropy = Mnemonic::parse(WORDS).unwrap().entropy();
        assert!(!s.windows(entropy.len()).any(|w| w == &entropy[..]));
        assert!(!s.windows(5).any(|w| w == b"legal"));
        // Two seals of the same mnemonic share nothing but the header's fixed part.
        let t = sealed();
        assert_ne!(s[18..], t[18..]);
    }

    #[test]
    fn wrong_password_and_every_flipped_bit_fail_closed() {
        let s = sealed();
        assert!(matches!(
            open(&s, "correct horsf", Network::Regtest),
            Err(OpenError::WrongPasswordOrTampered)
        ));
        // Flip one bit in each byte past the KDF parameters (salt, nonce, ciphertext, tag).
        for i in 18..s.len() {
            let mut t = s.clone();
            t[i] ^= 0x10;
            assert!(
                matches!(
                    open(&t, "correct horse", Network::Regtest),
                    Err(OpenError::WrongPasswordOrTampered)
                ),
                "byte {i}"
            );
        }
    }

    #[test]
    fn headers_are_checked_before_any_work() {
        let s = sealed();
        assert!(matches!(
            open(&s, "correct horse", Network::Mainnet),
            Err(OpenError::WrongNetwork {
                found: Network::Regtest,
                expected: Network::Mainnet
            })
        ));
        let mut huge = s.clone();
        huge[6..10].copy_from_slice(&(4u32 * 1024 * 1024).to_le_bytes());
        assert!(matches!(
            open(&huge, "correct horse", Network::Regtest),
            Err(OpenError::KdfOutOfBounds(_))
        ));
        let mut lanes = s.clone();
        lanes[14..18].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(inspect(&lanes), Err(OpenError::KdfOutOfBounds(_))));
        // A weaker memory cost in the header is not an error to read, but it is authenticated.
        let mut weaker = s.clone();
        weaker[6..10].copy_from_slice(&(8u32 * 1024).to_le_bytes());
        assert!(matches!(
            open(&weaker, "correct horse", Network::Regtest),
            Err(OpenError::WrongPasswordOrTampered)
        ));
        let mut magic = s.clone();
        magic[0] = b'X';
        assert!(matches!(inspect(&magic), Err(OpenError::Format)));
        assert!(matches!(inspect(&s[..40]), Err(OpenError::Format)));
        let mut long = s.clone();
        long.extend_from_slice(&[0; 64]);
        assert!(matches!(inspect(&long), Err(OpenError::Format)));
    }

    #[test]
    fn weak_passwords_and_parameters_are_refused_when_sealing() {
        let m = Mnemonic::parse(WORDS).unwrap();
        assert!(matches!(
            seal(&m, "short", Network::Regtest, QUICK),
            Err(SealError::PasswordTooShort)
        ));
        let weak = KdfParams {
            memory_kib: 1024,
            ..QUICK
        };
        assert!(matches!(
            seal(&m, "long enough", Network::Regtest, weak),
            Err(SealError::WeakKdf(_))
        ));
    }

    #[test]
    fn throttle_waits_double_after_the_free_tries() {
        let mut t = UnlockThrottle::default();
        for i in 0..UnlockThrottle::FREE_TRIES {
            assert_eq!(t.retry_at(1_000 * u64::from(i)), None);
            t.failed(1_000 * u64::from(i));
        }
        let last = t.last_failure_ms;
        assert_eq!(t.retry_at(last), Some(last + 1_000));
        assert_eq!(t.retry_at(last + 1_000), None);
        t.failed(last + 1_000);
        assert_eq!(t.retry_at(last + 1_000), Some(last + 3_000));
        for _ in 0..40 {
            t.failed(10_000_000);
        }
        assert_eq!(
            t.retry_at(10_000_000),
            Some(10_000_000 + UnlockThrottle::MAX_WAIT_MS)
        );
        t.succeeded();
        assert_eq!(t.retry_at(10_000_000), None);
    }

    #[test]
    fn idle_lock() {
        let mut l = IdleLock::new(1_000, 5_000);
        assert!(!l.expired(5_999));
        l.touch(5_500);
        assert!(!l.expired(6_400));
        assert!(l.expired(6_500));
        l.touch(100); // a clock going backwards does not extend it
        assert!(l.expired(6_500));
    }
}
