//! End-to-end encrypted sessions between two DarkSwap peers, so that a relay carrying their
//! circuit can neither read nor alter what they say (trade negotiation, later settlement).
//!
//! - [`handshake`]: each side sends a fresh X25519 ephemeral key **signed by its identity key**
//!   together with both PeerIds, so a relay in the middle cannot substitute keys; the keys are
//!   derived with HKDF-SHA256 from the shared secret, salted with the hash of the whole
//!   transcript, with one key per direction.
//! - [`aead`]: AES-256-GCM or ChaCha20-Poly1305, negotiated. Each platform prefers what is fast
//!   there: ChaCha20-Poly1305 in the browser (software AES-GCM in wasm is several times slower),
//!   AES-256-GCM natively (hardware AES).
//! - [`session`]: counters as nonces, a sliding replay window, rekey thresholds, keys zeroized
//!   when dropped or replaced.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod aead;
pub mod handshake;
pub mod manager;
pub mod session;

pub use aead::{Cipher, Key};
pub use handshake::{HandshakeError, Initiator, Responder};
pub use manager::{E2eError, ManagerLimits, Opened, Role, SessionManager};
pub use session::{RekeyPolicy, Session, SessionError, REPLAY_WINDOW};
