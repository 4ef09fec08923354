//! Relay authentication and authorization for DarkSwap, shared by the relay and its clients (the
//! browser and the CLI run the same client code).
//!
//! - [`level`]: the levels `Banned < Anonymous < Authenticated < Trusted < Admin` and the ONE table
//!   that says which level each relay operation needs.
//! - [`proof`]: what a client signs (identity key, ed25519) or MACs (shared key, HMAC-SHA256) to
//!   answer a challenge: a domain-separated message binding the single-use nonce, the relay's
//!   PeerId, the client's PeerId and the challenge's expiry.
//! - [`token`]: relay-signed tokens bound to one client PeerId and one relay, carrying a level and
//!   an expiry, verified without server state.
//! - The `/darkswap/auth/1` messages themselves live with every other wire format in
//!   `darkswap_proto::auth` (the level, method and refusal types are re-exported here).
//! - [`pending`]: the bounded table of outstanding challenges (a full table refuses: it never
//!   grows and never lets a request through undecided); request rates are limited with
//!   `darkswap_rate::KeyedLimiter`, which behaves the same way.
//! - [`client`]: the client's side of the exchange as a small state machine.
//! - [`stamp`]: identity stamps, the proof of work a relay may ask of a new identity.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

#[cfg(feature = "workloads")]
pub mod bench;
pub mod client;
#[cfg(not(target_arch = "wasm32"))]
pub mod keyfile;
pub mod level;
pub mod pending;
pub mod proof;
pub mod stamp;
pub mod token;

pub use darkswap_proto::auth::{Method, RefuseReason, AUTH_PROTOCOL, NONCE_BYTES};
pub use level::{required_level, Level, Operation, PERMISSIONS};
