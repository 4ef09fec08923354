//! The DarkSwap relay (`darkswap-relay`) as a library: configuration ([`Config`], from a file,
//! flags and the environment) and a [`Server`] to spawn and shut down. The binary in `main.rs`
//! only parses the command line, waits for a signal and reports a one-line error.
//!
//! Module map: `swarm` builds the libp2p swarm and its addresses; `behaviour` combines the
//! protocols; `gate` is the authorization check in front of the permission table; `auth` serves
//! `/darkswap/auth/1`; `access` holds bans, trusted peers and the allowlist; `orders` validates
//! order gossip and serves book sync; `directory` lists reserved peers; `federation` signs the relay's record and
//! gathers its peer relays' records; `conn_caps` caps
//! connections and handshakes per address; `http` serves the web app, `/metrics`, `/health` and
//! `/api/relay-info`, and `http_listener` accepts its connections under caps and deadlines; `mdns_guard` keeps
//! libp2p-webrtc from leaking a socket per failed handshake;
//! `server` runs the event loop.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod access;
mod audit;
mod auth;
mod auth_deadline;
mod behaviour;
mod bitcoind_rpc;
mod book_repair;
mod chain_gateway;
mod chain_index;
mod config;
mod conn_caps;
mod defaults;
mod directory;
mod federation;
mod gate;
mod http;
mod http_listener;
mod identity;
mod mdns_guard;
mod metrics;
mod orders;
mod pair_follow;
mod process_metrics;
mod proxy_header;
mod proxy_transport;
mod refusals;
mod rune_faucet;
mod server;
mod source_caps;
mod swarm;
mod webrtc_hold;

pub use config::{documented_defaults, Cli, Config, ConfigError};
pub use server::{Server, SpawnError};
pub use swarm::BuildError;
