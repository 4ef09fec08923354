//! The trader's Bitcoin wallet, shared by the page (wasm32) and the CLI: keys, the mnemonic
//! sealed at rest, runestones, UTXOs and what they carry, and building and signing sends. No
//! I/O: chain data comes in as [`utxo::Utxo`] values, transactions go out as bytes, and the
//! caller (page or CLI) talks to the chain.
//!
//! - [`mnemonic`]: BIP39 (English), generated from the OS's randomness or imported; entropy,
//!   words and seed only in zeroizing buffers.
//! - [`keys`]: BIP32/BIP86 taproot keys in two accounts, **payment** (`m/86'/coin'/0'`) and
//!   **runes** (`m/86'/coin'/1'`), so rune outputs never mix with fee money (the module says why
//!   account 1).
//! - [`keystore`]: the entropy sealed with Argon2id and XChaCha20-Poly1305, header as associated
//!   data, parameters capped when read; an unlock throttle and an idle lock (sans-IO).
//! - [`runestone`]: encode transfers and etchings as ord does, decipher any runestone, every
//!   cenotaph rule.
//! - [`effect`]: where each rune unit of a transaction goes, per ord's allocation rules.
//! - [`utxo`]: outputs with their runes and inscriptions (unknown counts as "may carry
//!   something"), trade locks, balances by state.
//! - [`send`]: BTC and rune sends, and etchings under a reserved name (a regtest faucet's),
//!   with exact fees, funded only from plain bitcoin, each checked (runestone, rune effect)
//!   before it is returned.
//! - [`sign`]: BIP86 key-path signatures (`SIGHASH_DEFAULT`), each input's script checked
//!   against the key of the path it claims.
//! - [`esplora`] and [`ord_api`]: what to ask an Esplora-compatible API and `ord`'s JSON API, and
//!   the answers read without trusting the server (caps, txids recomputed, outputs checked
//!   against their transactions, ord's view checked against the transaction's).
//! - [`sync`]: a scan of the wallet's addresses (gap limit 20) as a sans-IO state machine that
//!   names each request and takes its answer, driven by the page's `fetch` and the CLI's client;
//!   it keeps each rune's name and divisibility as ord reports them.
//! - [`retry`]: when a read of a chain server is tried again (3 tries, 0.5 s then 1 s), for the
//!   page and the CLI alike.
//! - [`history`]: the wallet's transactions from each address's Esplora history (the same gap
//!   limit), what each did to the wallet worked out from the checked bytes.
//! - [`units`]: amounts in a rune's display units (its divisibility), exactly, both ways.
//! - [`swap`]: settlement's atomic swap (runes for bitcoin in one transaction), built the same
//!   way by both sides from their offers; each signs its own inputs and checks the other's
//!   transaction and signatures, naming what a cheat changed.
//! - [`faucet`]: a relay's regtest faucet call and its rune gift's answer, read with a cap.
//!
//! # Rules the wallet keeps
//! - It never spends an output that carries runes or inscriptions, or whose contents the indexer
//!   has not reported, as fee money; a send that would need to is refused with what was held
//!   back.
//! - It never returns a transaction whose runestone is a cenotaph or whose rune effect differs
//!   from the one asked for; nothing else is signed.
//! - Addresses are checked against the wallet's network.
//!
//! The HTTP itself is the caller's: the page's `fetch` (`web/src/wallet.rs`) and the CLI's
//! client, each with a timeout and [`retry`]'s policy.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod effect;
pub mod esplora;
pub mod faucet;
pub mod history;
pub mod keys;
pub mod keystore;
pub mod mnemonic;
pub mod network;
pub mod ord_api;
pub mod retry;
pub mod runestone;
pub mod send;
pub mod sign;
pub mod swap;
pub mod sync;
pub mod units;
pub mod utxo;
pub mod vault;
#[cfg(feature = "workloads")]
pub mod workload;

pub use keys::{Account, Chain, Derived, KeyPath, Keychain};
pub use mnemonic::{Mnemonic, WordCount};
pub use network::Network;
pub use runestone::{Edict, RuneId, Runestone};
pub use send::{etch, send_btc, send_runes, FeeRate, NewRune, Unsigned};
pub use sign::sign;
pub use utxo::{Assets, Locks, Utxo};
