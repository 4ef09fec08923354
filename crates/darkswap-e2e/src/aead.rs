//! The two AEADs behind one small interface, with keys that zeroize themselves.

use aes_gcm::Aes256Gcm;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The ciphers a session can use. The wire value is the enum's discriminant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// AES-256-GCM, wire value 1: fastest with hardware AES, preferred natively.
    Aes256Gcm = 1,
    /// ChaCha20-Poly1305, wire value 2: fast in software, preferred in wasm32.
    ChaCha20Poly1305 = 2,
}

impl Cipher {
    /// What this platform prefers: ChaCha20-Poly1305 in wasm (no hardware AES there),
    /// AES-256-GCM natively.
    pub fn preferred() -> Cipher {
        if cfg!(target_arch = "wasm32") {
            Cipher::ChaCha20Poly1305
        } else {
            Cipher::Aes256Gcm
        }
    }

    /// Both, the preferred one first.
    pub fn offered() -> [Cipher; 2] {
        match Cipher::preferred() {
            Cipher::Aes256Gcm => [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305],
            Cipher::ChaCha20Poly1305 => [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm],
        }
    }

    /// The cipher with wire value `value`; `None` for a value this build does not know.
    pub fn from_wire(value: u8) -> Option<Cipher> {
        match value {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// A short, fixed name (`aes-256-gcm` or `chacha20-poly1305`), for logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }
}

/// Authentication tag length of both ciphers.
pub const TAG_BYTES: usize = 16;
/// Nonce length of both ciphers.
pub const NONCE_BYTES: usize = 12;

/// A 256-bit key, wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key(pub(crate) [u8; 32]);

impl Key {
    /// Wraps 32 raw key bytes (the handshake derives them with HKDF; benchmarks pass fixed
    /// ones). Only the returned key is wiped on drop, not the caller's copy of `bytes`.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// Encrypts and authenticates `plaintext` and authenticates `aad`; returns ciphertext ‖ tag.
pub fn seal(
    cipher: Cipher,
    key: &Key,
    nonce: &[u8; NONCE_BYTES],
    aad: &[u8],
    plaintext: &[u8],
) -> Vec<u8> {
    let payload = Payload {
        msg: plaintext,
        aad,
    };
    // Encryption with a valid key and nonce cannot fail for these ciphers (inputs < 2^36 bytes).
    let sealed = match cipher {
        Cipher::Aes256Gcm => Aes256Gcm::new((&key.0).into()).encrypt(nonce.into(), payload),
        Cipher::ChaCha20Poly1305 => {
            ChaCha20Poly1305::new((&key.0).into()).encrypt(nonce.into(), payload)
        }
    };
    sealed.unwrap_or_default()
}

/// Checks and decrypts ciphertext ‖ tag; `None` when anything was altered.
pub fn open(
    cipher: Cipher,
    key: &Key,
    nonce: &[u8; NONCE_BYTES],
    aad: &[u8],
    sealed: &[u8],
) -> Option<Vec<u8>> {
    if sealed.len() < TAG_BYTES {
        return None;
    }
    let payload = Payload { msg: sealed, aad };
    match cipher {
        Cipher::Aes256Gcm => Aes256Gcm::new((&key.0).into())
            .decrypt(nonce.into(), payload)
            .ok(),
        Cipher::ChaCha20Poly1305 => ChaCha20Poly1305::new((&key.0).into())
            .decrypt(nonce.into(), payload)
            .ok(),
    }
}

#[cfg(test)]
mod tests;
