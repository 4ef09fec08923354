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
//! - [`wire`]: the `/darkswap/auth/1` messages, capped and validated while decoding.
//! - [`pending`] and [`limiter`]: bounded tables for outstanding challenges and request rates
//!   (full tables refuse: they never grow and never let a request through undecided).
//! - [`client`]: the client's side of the exchange as a small state machine.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bench;
pub mod client;
pub mod level;
pub mod limiter;
pub mod pending;
pub mod proof;
pub mod token;
pub mod wire;

pub use level::{required_level, Level, Operation, PERMISSIONS};
pub use wire::{Method, RefuseReason};

/// The auth protocol's name.
pub const AUTH_PROTOCOL: &str = "/darkswap/auth/1";
/// Nonces are this long (random, from the relay).
pub const NONCE_BYTES: usize = 32;
