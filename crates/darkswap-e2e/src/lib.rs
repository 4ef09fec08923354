//! End-to-end encrypted sessions between two DarkSwap peers, so that a relay carrying their
//! circuit can neither read nor alter what they say (trade negotiation, later settlement).
//!
//! - [`handshake`]: each side sends a fresh X25519 ephemeral key **signed by its identity key**
//!   together with both PeerIds, so a relay in the middle cannot substitute keys; the keys are
//!   derived with HKDF-SHA256 from the shared secret, salted with the hash of the whole
//!   transcript, with one key per direction. The initiator offers its ciphers, preferred first,
//!   and the responder takes the first it supports: **the initiator's preference wins**.
//! - [`aead`]: AES-256-GCM or ChaCha20-Poly1305, negotiated.
//! - [`session`]: counters as nonces, a sliding 64-frame replay window, rekey thresholds, keys
//!   zeroized when dropped or replaced.
//! - [`manager`]: sessions with many peers, keyed by PeerId and role, bounded (512 sessions,
//!   least recently used evicted; 64 unanswered handshakes), dropped after 15 minutes idle or
//!   when a key is 20 minutes old, and the **in-band rekey**: a fresh signed X25519 exchange
//!   sealed inside the session, after which the old keys are zeroized and old-epoch frames
//!   refused. No clock inside: every call takes `now_ms`, so tests inject time.
//!
//! # Cipher per platform
//! Measured seal throughput at 64 B / 1 KiB / 16 KiB (`cargo bench -p darkswap-e2e --bench e2e`,
//! and `tests/wasm.rs` in headless Chromium):
//!
//! | | 64 B | 1 KiB | 16 KiB |
//! |---|---|---|---|
//! | Chromium, ChaCha20-Poly1305 | 132 MiB/s | 461 MiB/s | 422 MiB/s |
//! | Chromium, AES-256-GCM (software) | 26 MiB/s | 62 MiB/s | 66 MiB/s |
//! | native x86-64 (AES-NI), AES-256-GCM | 249 MiB/s | 1.02 GiB/s | 1.31 GiB/s |
//! | native x86-64, ChaCha20-Poly1305 | 46 MiB/s | 490 MiB/s | 1060 MiB/s |
//!
//! So [`Cipher::preferred`] is ChaCha20-Poly1305 in wasm32 and AES-256-GCM natively. Between a
//! browser and a native peer the initiator's choice wins; trade messages are a few hundred bytes,
//! so even the slower cipher costs microseconds. A full handshake (both sides) takes about 0.2 ms
//! natively and 0.4 ms in Chromium.
//!
//! # Rekey thresholds
//! [`session::RekeyPolicy::default`]: after [`session::REKEY_AFTER_MESSAGES`] (4096) frames sent
//! under one key or [`session::REKEY_AFTER_MS`] (10 minutes), whichever comes first. What a thief
//! of a session's current keys can read is bounded by that; what was recorded before a rekey
//! stays unreadable with the new keys and with the identity keys.
//!
//! # What a relay sees
//! It cannot read, alter, replay or reflect sealed frames, nor substitute handshake keys. It does
//! see who talks to whom and when, frame sizes and counts, the handshake (ephemeral public keys,
//! signatures, offered ciphers), frame headers (epoch, counter) and whatever the protocol sends
//! unsealed (refusals); it can drop or delay frames.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod aead;
pub mod handshake;
pub mod manager;
pub mod session;

pub use aead::{Cipher, Key};
pub use handshake::{HandshakeError, Initiator, Responder};
pub use manager::{E2eError, ManagerLimits, Opened, Role, SessionManager};
pub use session::{RekeyPolicy, Session, SessionError, REPLAY_WINDOW};
