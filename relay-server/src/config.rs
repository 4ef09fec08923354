//! Relay configuration: command-line flags (each also an environment variable) override the
//! TOML config file, which overrides the defaults in [`crate::defaults`].

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use libp2p::Multiaddr;
use serde::Deserialize;

use crate::defaults;
use darkswap_auth::proof::{SharedKey, MIN_SHARED_KEY_BYTES};
use darkswap_auth::Level;
use darkswap_market::MarketLimits;
use libp2p::PeerId;

/// darkswap-relay: a DarkSwap relay node. Browsers reach each other through it (circuit relay v2
/// over WebRTC-direct or WebSocket); it also serves the web app, Prometheus metrics and health.
/// Every config-file key (`[section.]key`) with its default as the README's settings table
/// prints it, rendered from `defaults.rs` like the flags' help (a test keeps the README equal).
pub fn documented_defaults() -> Vec<(&'static str, String)> {
    let s = |v: &dyn std::fmt::Display| v.to_string();
    vec![
        ("data_dir", s(&defaults::DATA_DIR)),
        ("web_dir", s(&defaults::WEB_DIR)),
        ("listen_ip", s(&defaults::LISTEN_IP)),
        ("tcp_port", s(&defaults::TCP_PORT)),
        ("ws_port", s(&defaults::WS_PORT)),
        ("webrtc_port", s(&defaults::WEBRTC_PORT)),
        ("http_port", s(&defaults::HTTP_PORT)),
        ("metrics", s(&defaults::METRICS_ENABLED)),
        ("webrtc_block_mdns", s(&defaults::WEBRTC_BLOCK_MDNS)),
        ("limits.max_reservations", s(&defaults::MAX_RESERVATIONS)),
        (
            "limits.max_reservations_per_peer",
            s(&defaults::MAX_RESERVATIONS_PER_PEER),
        ),
        (
            "limits.reservation_duration_secs",
            s(&defaults::RESERVATION_DURATION.as_secs()),
        ),
        ("limits.max_circuits", s(&defaults::MAX_CIRCUITS)),
        (
            "limits.max_circuits_per_peer",
            s(&defaults::MAX_CIRCUITS_PER_PEER),
        ),
        (
            "limits.max_circuit_duration_secs",
            s(&defaults::MAX_CIRCUIT_DURATION.as_secs()),
        ),
        ("limits.max_circuit_bytes", s(&defaults::MAX_CIRCUIT_BYTES)),
        (
            "limits.reservation_rate_per_peer",
            s(&defaults::RESERVATION_RATE_PER_PEER_PER_MINUTE),
        ),
        (
            "limits.reservation_rate_per_ip",
            s(&defaults::RESERVATION_RATE_PER_IP_PER_MINUTE),
        ),
        (
            "limits.circuit_rate_per_peer",
            s(&defaults::CIRCUIT_RATE_PER_PEER_PER_MINUTE),
        ),
        (
            "limits.circuit_rate_per_ip",
            s(&defaults::CIRCUIT_RATE_PER_IP_PER_MINUTE),
        ),
        ("limits.max_connections", s(&defaults::MAX_CONNECTIONS)),
        (
            "limits.max_connections_per_peer",
            s(&defaults::MAX_CONNECTIONS_PER_PEER),
        ),
        (
            "limits.max_connections_per_ip",
            s(&defaults::MAX_CONNECTIONS_PER_IP),
        ),
        (
            "limits.connections_kept_for_authenticated",
            "a quarter of limits.max_connections".to_string(),
        ),
        (
            "limits.anonymous_grace_secs",
            s(&defaults::ANONYMOUS_GRACE.as_secs()),
        ),
        (
            "limits.max_anonymous_per_ip",
            s(&defaults::MAX_ANONYMOUS_PER_IP),
        ),
        (
            "limits.max_pending_per_ip",
            s(&defaults::MAX_PENDING_PER_IP),
        ),
        (
            "limits.pending_kept_for_new_addresses",
            s(&defaults::PENDING_KEPT_FOR_NEW_ADDRESSES),
        ),
        (
            "limits.http_max_connections",
            s(&defaults::HTTP_MAX_CONNECTIONS),
        ),
        (
            "limits.http_max_connections_per_ip",
            s(&defaults::HTTP_MAX_CONNECTIONS_PER_IP),
        ),
        (
            "limits.http_header_timeout_secs",
            s(&defaults::HTTP_HEADER_TIMEOUT.as_secs()),
        ),
        (
            "limits.http_write_stall_secs",
            s(&defaults::HTTP_WRITE_STALL_TIMEOUT.as_secs()),
        ),
        (
            "limits.max_orders_per_maker",
            s(&defaults::MAX_ORDERS_PER_MAKER),
        ),
        (
            "limits.order_publish_burst",
            s(&defaults::ORDER_PUBLISH_BURST),
        ),
        (
            "limits.order_publish_rate",
            s(&defaults::ORDER_PUBLISH_RATE_PER_SECOND),
        ),
        (
            "limits.max_orders_per_pair",
            s(&defaults::MAX_ORDERS_PER_PAIR),
        ),
        ("limits.max_pairs", s(&defaults::MAX_PAIRS)),
        (
            "limits.max_pairs_per_peer",
            s(&defaults::MAX_PAIRS_PER_PEER),
        ),
        ("limits.pair_idle_secs", s(&defaults::PAIR_IDLE.as_secs())),
        (
            "limits.auth_deadline_secs",
            s(&defaults::AUTH_DEADLINE.as_secs()),
        ),
        (
            "limits.max_orders_per_address",
            s(&defaults::MAX_ORDERS_PER_ADDRESS),
        ),
        (
            "limits.max_pairs_per_address",
            s(&defaults::MAX_PAIRS_PER_ADDRESS),
        ),
        (
            "limits.open_pairs_trusted_only",
            s(&defaults::OPEN_PAIRS_TRUSTED_ONLY),
        ),
        (
            "limits.gossip_rate_per_peer",
            s(&defaults::GOSSIP_RATE_PER_PEER_PER_SECOND),
        ),
        ("auth.open", s(&defaults::AUTH_OPEN)),
        ("auth.identity", s(&defaults::AUTH_IDENTITY)),
        ("auth.identity_anyone", s(&defaults::AUTH_IDENTITY_ANYONE)),
        ("auth.public_key", s(&defaults::AUTH_PUBLIC_KEY)),
        (
            "auth.shared_key_level",
            s(&defaults::AUTH_SHARED_KEY_LEVEL.label()),
        ),
        (
            "auth.token_ttl_secs",
            s(&defaults::AUTH_TOKEN_TTL.as_secs()),
        ),
        (
            "auth.lapse_grace_secs",
            s(&defaults::AUTH_LAPSE_GRACE.as_secs()),
        ),
        (
            "auth.challenge_ttl_secs",
            s(&defaults::AUTH_CHALLENGE_TTL.as_secs()),
        ),
        (
            "auth.identity_stamp_bits",
            s(&defaults::AUTH_IDENTITY_STAMP_BITS),
        ),
        (
            "auth.challenge_rate_per_peer",
            s(&defaults::AUTH_CHALLENGE_RATE_PER_PEER_PER_MINUTE),
        ),
        (
            "auth.challenge_rate_per_ip",
            s(&defaults::AUTH_CHALLENGE_RATE_PER_IP_PER_MINUTE),
        ),
        ("chain.network", s(&defaults::CHAIN_NETWORK)),
        ("chain.mainnet", s(&defaults::CHAIN_MAINNET)),
        (
            "federation.announce_secs",
            s(&defaults::RECORD_ANNOUNCE.as_secs()),
        ),
        (
            "federation.record_ttl_secs",
            s(&defaults::RECORD_TTL.as_secs()),
        ),
        ("federation.accept", s(&defaults::FEDERATION_ACCEPT)),
    ]
}

/// A flag's help text with its default, rendered from the constant in `defaults.rs` (the one
/// source of every default: the flags, the config, the example config and the README).
fn with_default(text: &str, default: impl std::fmt::Display) -> String {
    format!("{text} [default: {default}]")
}

#[derive(Debug, Parser, Default)]
#[command(version, about, long_about = None)]
pub struct Cli {
    /// TOML config file (see example.config.toml). Flags and environment override it.
    #[arg(long, short = 'c', env = "DARKSWAP_RELAY_CONFIG")]
    pub config: Option<PathBuf>,
    #[arg(long, env = "DARKSWAP_RELAY_DATA_DIR", help = with_default("Directory for the identity key and WebRTC certificate", defaults::DATA_DIR))]
    pub data_dir: Option<PathBuf>,
    #[arg(long, env = "DARKSWAP_RELAY_WEB_DIR", help = with_default("Directory of the built web app to serve", defaults::WEB_DIR))]
    pub web_dir: Option<PathBuf>,
    #[arg(long, env = "DARKSWAP_RELAY_LISTEN_IP", help = with_default("IP address to listen on", defaults::LISTEN_IP))]
    pub listen_ip: Option<IpAddr>,
    #[arg(long, env = "DARKSWAP_RELAY_TCP_PORT", help = with_default("libp2p TCP port, 0 for any", defaults::TCP_PORT))]
    pub tcp_port: Option<u16>,
    #[arg(long, env = "DARKSWAP_RELAY_WS_PORT", help = with_default("libp2p WebSocket port, 0 for any", defaults::WS_PORT))]
    pub ws_port: Option<u16>,
    #[arg(long, env = "DARKSWAP_RELAY_WEBRTC_PORT", help = with_default("libp2p WebRTC-direct UDP port, 0 for any", defaults::WEBRTC_PORT))]
    pub webrtc_port: Option<u16>,
    #[arg(long, env = "DARKSWAP_RELAY_HTTP_PORT", help = with_default("HTTP port (web app, /metrics, /health, /api/relay-info), 0 for any", defaults::HTTP_PORT))]
    pub http_port: Option<u16>,
    /// Public address to announce instead of the listen addresses (repeatable), e.g.
    /// /ip4/203.0.113.7/udp/4003/webrtc-direct
    #[arg(
        long = "external-addr",
        env = "DARKSWAP_RELAY_EXTERNAL_ADDRS",
        value_delimiter = ','
    )]
    pub external_addrs: Vec<Multiaddr>,
    #[arg(long, env = "DARKSWAP_RELAY_METRICS", help = with_default("Export Prometheus metrics on /metrics (true or false)", defaults::METRICS_ENABLED))]
    pub metrics: Option<bool>,
    #[arg(long, env = "DARKSWAP_RELAY_WEBRTC_BLOCK_MDNS", help = with_default("Hold 224.0.0.251:5353 so that failed WebRTC-direct handshakes cannot leak mDNS sockets; blocks mDNS for every program on the host (true or false)", defaults::WEBRTC_BLOCK_MDNS))]
    pub webrtc_block_mdns: Option<bool>,
    /// Another relay to peer with so that one order book spans both (repeatable), with its
    /// PeerId, e.g. /ip4/198.51.100.4/tcp/4001/p2p/12D3KooW...
    #[arg(long = "peer", env = "DARKSWAP_RELAY_PEERS", value_delimiter = ',')]
    pub peers: Vec<Multiaddr>,
    /// Address of your TLS proxy in front of ws_port (repeatable). When set, the WebSocket port
    /// accepts connections only from these addresses, each starting with a PROXY protocol header
    /// (v1 or v2, e.g. nginx's `proxy_protocol on` in a `stream` block) naming the client, whose
    /// address every per-address limit then counts.
    #[arg(
        long = "ws-trusted-proxy",
        env = "DARKSWAP_RELAY_WS_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub ws_trusted_proxies: Vec<IpAddr>,
    #[command(flatten)]
    pub limits: LimitsArgs,
    #[command(flatten)]
    pub auth: AuthArgs,
    #[command(flatten)]
    pub chain: ChainArgs,
    #[command(flatten)]
    pub federation: FederationArgs,
}

/// What the relay says of itself in its signed record, and how often (flags).
#[derive(Debug, clap::Args, Default, Clone)]
pub struct FederationArgs {
    /// A name for this relay, shown to traders choosing among relays (at most 64 bytes)
    #[arg(long = "relay-name", env = "DARKSWAP_RELAY_NAME")]
    pub name: Option<String>,
    /// Where this relay runs, e.g. eu-west (at most 32 bytes)
    #[arg(long = "relay-region", env = "DARKSWAP_RELAY_REGION")]
    pub region: Option<String>,
    #[arg(long = "record-announce-secs", env = "DARKSWAP_RELAY_RECORD_ANNOUNCE_SECS", help = with_default("Seconds between re-signing this relay's record and asking peer relays for theirs", defaults::RECORD_ANNOUNCE.as_secs()))]
    pub announce_secs: Option<u64>,
    #[arg(long = "record-ttl-secs", env = "DARKSWAP_RELAY_RECORD_TTL_SECS", help = with_default("How long others believe one of this relay's records", defaults::RECORD_TTL.as_secs()))]
    pub record_ttl_secs: Option<u64>,
    /// A relay (PeerId) accepted as a peer relay when it proves itself, without its address in
    /// `peers` (repeatable): it dials this relay
    #[arg(
        long = "federate-with",
        env = "DARKSWAP_RELAY_FEDERATE_WITH",
        value_delimiter = ','
    )]
    pub relays: Vec<String>,
    #[arg(long = "federation-accept", env = "DARKSWAP_RELAY_FEDERATION_ACCEPT", help = with_default("Which relays that prove themselves become peer relays: listed (in peers or federation.relays) or any (every relay whose signed record checks)", defaults::FEDERATION_ACCEPT))]
    pub accept: Option<String>,
}

/// The `[federation]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FederationFile {
    name: Option<String>,
    region: Option<String>,
    announce_secs: Option<u64>,
    record_ttl_secs: Option<u64>,
    #[serde(default)]
    relays: Vec<String>,
    accept: Option<String>,
}

/// The relay record settings in force.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    pub name: String,
    pub region: String,
    pub announce: Duration,
    pub record_ttl: Duration,
    /// Relays accepted when they prove themselves, besides those in `peers`.
    pub relays: std::collections::BTreeSet<PeerId>,
    /// Any relay whose record checks is accepted (`accept = "any"`).
    pub accept_any: bool,
}

fn federation_config(
    args: &FederationArgs,
    file: FederationFile,
) -> Result<FederationConfig, ConfigError> {
    use darkswap_proto::relay_record::{
        MAX_RECORD_LIFETIME_MS, MAX_RECORD_NAME_BYTES, MAX_RECORD_REGION_BYTES,
    };
    let text = |name: &'static str, value: Option<String>, max: usize| {
        let value = value.unwrap_or_default();
        if value.len() > max || value.chars().any(char::is_control) {
            return Err(invalid(
                name,
                format!("at most {max} bytes of printable text"),
            ));
        }
        Ok(value)
    };
    let announce = args
        .announce_secs
        .or(file.announce_secs)
        .map_or(defaults::RECORD_ANNOUNCE, Duration::from_secs);
    let record_ttl = args
        .record_ttl_secs
        .or(file.record_ttl_secs)
        .map_or(defaults::RECORD_TTL, Duration::from_secs);
    if announce.is_zero() {
        return Err(invalid("federation.announce_secs", "must be at least 1"));
    }
    if record_ttl <= announce * 2 || record_ttl.as_millis() > u128::from(MAX_RECORD_LIFETIME_MS) {
        return Err(invalid(
            "federation.record_ttl_secs",
            format!(
                "must be over twice announce_secs (a record must outlive the next one) and at most {} s",
                MAX_RECORD_LIFETIME_MS / 1000
            ),
        ));
    }
    let relays = if args.relays.is_empty() {
        file.relays
    } else {
        args.relays.clone()
    }
    .iter()
    .map(|p| parse_peer("federation.relays", p))
    .collect::<Result<_, _>>()?;
    let accept_any = match args
        .accept
        .clone()
        .or(file.accept)
        .as_deref()
        .unwrap_or(defaults::FEDERATION_ACCEPT)
    {
        "listed" => false,
        "any" => true,
        other => {
            return Err(invalid(
                "federation.accept",
                format!("{other:?} is not listed or any"),
            ))
        }
    };
    Ok(FederationConfig {
        relays,
        accept_any,
        name: text(
            "federation.name",
            args.name.clone().or(file.name),
            MAX_RECORD_NAME_BYTES,
        )?,
        region: text(
            "federation.region",
            args.region.clone().or(file.region),
            MAX_RECORD_REGION_BYTES,
        )?,
        announce,
        record_ttl,
    })
}

/// The Bitcoin network the relay's traders use and where their wallets read the chain (flags).
/// The bitcoind RPC password is read from a file or from DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD,
/// never from a flag.
#[derive(Debug, clap::Args, Default, Clone)]
pub struct ChainArgs {
    #[arg(long = "chain-network", env = "DARKSWAP_RELAY_CHAIN_NETWORK", help = with_default("Bitcoin network of this relay's traders: regtest, signet, testnet, mainnet, or none (pages offer no wallet)", defaults::CHAIN_NETWORK))]
    pub network: Option<String>,
    #[arg(long = "chain-mainnet", env = "DARKSWAP_RELAY_CHAIN_MAINNET", help = with_default("Allow chain.network = mainnet (real money)", defaults::CHAIN_MAINNET))]
    pub mainnet: Option<bool>,
    /// Esplora-compatible API the pages use (default with a bitcoind gateway: this relay's /esplora)
    #[arg(long = "chain-esplora-url", env = "DARKSWAP_RELAY_CHAIN_ESPLORA_URL")]
    pub esplora_url: Option<String>,
    /// ord server JSON API the pages use for runes on outputs (its answers are CORS-open)
    #[arg(long = "chain-ord-url", env = "DARKSWAP_RELAY_CHAIN_ORD_URL")]
    pub ord_url: Option<String>,
    /// bitcoind RPC (http://host:port): serve an Esplora-compatible gateway over it at /esplora
    #[arg(long = "bitcoind-rpc-url", env = "DARKSWAP_RELAY_BITCOIND_RPC_URL")]
    pub bitcoind_rpc_url: Option<String>,
    /// bitcoind RPC user
    #[arg(long = "bitcoind-rpc-user", env = "DARKSWAP_RELAY_BITCOIND_RPC_USER")]
    pub bitcoind_rpc_user: Option<String>,
    /// File holding the bitcoind RPC password (or set DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD)
    #[arg(
        long = "bitcoind-rpc-password-file",
        env = "DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD_FILE"
    )]
    pub bitcoind_rpc_password_file: Option<PathBuf>,
    /// Serve a regtest faucet at POST /api/faucet (mines blocks to an address) and POST /api/faucet/runes (sends the relay's test rune) (regtest with a bitcoind gateway only)
    #[arg(long = "chain-faucet", env = "DARKSWAP_RELAY_CHAIN_FAUCET")]
    pub faucet: Option<bool>,
}

/// The `[chain]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChainFile {
    network: Option<String>,
    mainnet: Option<bool>,
    esplora_url: Option<String>,
    ord_url: Option<String>,
    bitcoind_rpc_url: Option<String>,
    bitcoind_rpc_user: Option<String>,
    bitcoind_rpc_password_file: Option<PathBuf>,
    faucet: Option<bool>,
}

/// The chain settings in force.
#[derive(Clone, Default)]
pub struct ChainConfig {
    /// `None`: the relay names no chain.
    pub network: Option<darkswap_wallet::Network>,
    pub esplora_url: Option<String>,
    pub ord_url: Option<String>,
    /// URL, user and password of the bitcoind behind the gateway.
    pub bitcoind: Option<(String, String, String)>,
    pub faucet: bool,
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("network", &self.network)
            .field("esplora_url", &self.esplora_url)
            .field("ord_url", &self.ord_url)
            .field(
                "bitcoind",
                &self
                    .bitcoind
                    .as_ref()
                    .map(|(url, user, _)| (url, user, "<hidden>")),
            )
            .field("faucet", &self.faucet)
            .finish()
    }
}

fn chain_config(args: &ChainArgs, file: ChainFile) -> Result<ChainConfig, ConfigError> {
    let name = args
        .network
        .clone()
        .or(file.network)
        .unwrap_or_else(|| defaults::CHAIN_NETWORK.to_string());
    let network = match name.as_str() {
        "none" => None,
        other => Some(
            other
                .parse::<darkswap_wallet::Network>()
                .map_err(|e| invalid("chain.network", e.to_string()))?,
        ),
    };
    let mainnet = args
        .mainnet
        .or(file.mainnet)
        .unwrap_or(defaults::CHAIN_MAINNET);
    if network == Some(darkswap_wallet::Network::Mainnet) && !mainnet {
        return Err(invalid(
            "chain.network",
            "mainnet moves real money: set chain.mainnet = true as well to allow it",
        ));
    }
    let url = args.bitcoind_rpc_url.clone().or(file.bitcoind_rpc_url);
    let bitcoind = match url {
        None => None,
        Some(url) => {
            if network.is_none() {
                return Err(invalid("chain.bitcoind_rpc_url", "needs chain.network"));
            }
            crate::bitcoind_rpc::Rpc::new(&url, "", "")
                .map_err(|e| invalid("chain.bitcoind_rpc_url", e.to_string()))?;
            let user = args
                .bitcoind_rpc_user
                .clone()
                .or(file.bitcoind_rpc_user)
                .unwrap_or_default();
            let password = match args
                .bitcoind_rpc_password_file
                .as_ref()
                .or(file.bitcoind_rpc_password_file.as_ref())
            {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| {
                        invalid(
                            "chain.bitcoind_rpc_password_file",
                            format!("{}: {e}", path.display()),
                        )
                    })?
                    .trim()
                    .to_string(),
                None => std::env::var("DARKSWAP_RELAY_BITCOIND_RPC_PASSWORD").unwrap_or_default(),
            };
            Some((url, user, password))
        }
    };
    let faucet = args.faucet.or(file.faucet).unwrap_or(false);
    if faucet && (network != Some(darkswap_wallet::Network::Regtest) || bitcoind.is_none()) {
        return Err(invalid(
            "chain.faucet",
            "a faucet needs chain.network = regtest and chain.bitcoind_rpc_url",
        ));
    }
    let esplora_url = args
        .esplora_url
        .clone()
        .or(file.esplora_url)
        .or_else(|| bitcoind.as_ref().map(|_| "/esplora".to_string()));
    let ord_url = args.ord_url.clone().or(file.ord_url);
    // Pages refuse a relay-info with a longer field: refuse it here, where the operator sees why.
    for (name, v) in [
        ("chain.esplora_url", &esplora_url),
        ("chain.ord_url", &ord_url),
    ] {
        if v.as_ref()
            .is_some_and(|u| u.len() > darkswap_proto::relay_info::MAX_CHAIN_FIELD)
        {
            return Err(invalid(name, "too long"));
        }
    }
    Ok(ChainConfig {
        network,
        esplora_url,
        ord_url,
        bitcoind,
        faucet,
    })
}

/// Authentication and authorization (flags). The shared key itself is read from a file or from
/// the environment variable DARKSWAP_RELAY_AUTH_SHARED_KEY, never from a flag (flags show in
/// `ps`).
#[derive(Debug, clap::Args, Default, Clone)]
pub struct AuthArgs {
    #[arg(long = "auth-open", env = "DARKSWAP_RELAY_AUTH_OPEN", help = with_default("Open relay: every connected peer that is not banned counts as authenticated", defaults::AUTH_OPEN))]
    pub open: Option<bool>,
    #[arg(long = "auth-identity", env = "DARKSWAP_RELAY_AUTH_IDENTITY", help = with_default("Accept challenge-response with the trader's identity key", defaults::AUTH_IDENTITY))]
    pub identity: Option<bool>,
    #[arg(
        long = "auth-identity-anyone",
        env = "DARKSWAP_RELAY_AUTH_IDENTITY_ANYONE",
        help = with_default("With identity challenges, accept any identity (false: only peers in auth.peers)", defaults::AUTH_IDENTITY_ANYONE)
    )]
    pub identity_anyone: Option<bool>,
    #[arg(long = "auth-public-key", env = "DARKSWAP_RELAY_AUTH_PUBLIC_KEY", help = with_default("Give peers listed in auth.peers their level as soon as they connect", defaults::AUTH_PUBLIC_KEY))]
    pub public_key: Option<bool>,
    /// File holding the shared key (at least 16 bytes); setting it enables the shared-key method
    #[arg(
        long = "auth-shared-key-file",
        env = "DARKSWAP_RELAY_AUTH_SHARED_KEY_FILE"
    )]
    pub shared_key_file: Option<PathBuf>,
    #[arg(
        long = "auth-shared-key-level",
        env = "DARKSWAP_RELAY_AUTH_SHARED_KEY_LEVEL",
        help = with_default(
            "Level granted for the shared key: authenticated or trusted",
            defaults::AUTH_SHARED_KEY_LEVEL.label()
        )
    )]
    pub shared_key_level: Option<String>,
    /// A peer and its level, PEERID=LEVEL (banned, authenticated, trusted, admin); repeatable
    #[arg(
        id = "auth_peers",
        long = "auth-peer",
        env = "DARKSWAP_RELAY_AUTH_PEERS",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    #[arg(
        long = "auth-token-ttl-secs",
        env = "DARKSWAP_RELAY_AUTH_TOKEN_TTL_SECS",
        help = with_default("Token lifetime in seconds", defaults::AUTH_TOKEN_TTL.as_secs())
    )]
    pub token_ttl_secs: Option<u64>,
    #[arg(
        long = "auth-lapse-grace-secs",
        env = "DARKSWAP_RELAY_AUTH_LAPSE_GRACE_SECS",
        help = with_default("Seconds after a peer's grant ended before the reservation and circuits it bought are ended", defaults::AUTH_LAPSE_GRACE.as_secs())
    )]
    pub lapse_grace_secs: Option<u64>,
    #[arg(
        long = "auth-challenge-ttl-secs",
        env = "DARKSWAP_RELAY_AUTH_CHALLENGE_TTL_SECS",
        help = with_default("Seconds a challenge may take to be answered", defaults::AUTH_CHALLENGE_TTL.as_secs())
    )]
    pub challenge_ttl_secs: Option<u64>,
    #[arg(
        long = "auth-identity-stamp-bits",
        env = "DARKSWAP_RELAY_AUTH_IDENTITY_STAMP_BITS",
        help = with_default("Proof of work asked of an identity authenticating by its key, in zero bits of a hash (0 to 24; each bit doubles the work)", defaults::AUTH_IDENTITY_STAMP_BITS)
    )]
    pub identity_stamp_bits: Option<u32>,
    #[arg(
        long = "auth-challenge-rate-per-peer",
        env = "DARKSWAP_RELAY_AUTH_CHALLENGE_RATE_PER_PEER",
        help = with_default("Challenge requests per peer per minute", defaults::AUTH_CHALLENGE_RATE_PER_PEER_PER_MINUTE)
    )]
    pub challenge_rate_per_peer: Option<u32>,
    #[arg(
        long = "auth-challenge-rate-per-ip",
        env = "DARKSWAP_RELAY_AUTH_CHALLENGE_RATE_PER_IP",
        help = with_default("Challenge requests per IP per minute", defaults::AUTH_CHALLENGE_RATE_PER_IP_PER_MINUTE)
    )]
    pub challenge_rate_per_ip: Option<u32>,
}

/// The `[auth]` table of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthFile {
    open: Option<bool>,
    identity: Option<bool>,
    identity_anyone: Option<bool>,
    public_key: Option<bool>,
    shared_key_file: Option<PathBuf>,
    shared_key_level: Option<String>,
    token_ttl_secs: Option<u64>,
    lapse_grace_secs: Option<u64>,
    challenge_ttl_secs: Option<u64>,
    identity_stamp_bits: Option<u32>,
    challenge_rate_per_peer: Option<u32>,
    challenge_rate_per_ip: Option<u32>,
    /// PeerId = level.
    #[serde(default)]
    peers: std::collections::BTreeMap<String, String>,
}

/// Authentication and authorization in force.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub open: bool,
    pub identity: bool,
    pub identity_anyone: bool,
    pub public_key: bool,
    pub shared_key: Option<SharedKey>,
    pub shared_key_level: Level,
    /// Listed peers and their levels (config); `Banned` entries are config bans.
    pub peers: std::collections::BTreeMap<PeerId, Level>,
    pub token_ttl: Duration,
    /// See [`defaults::AUTH_LAPSE_GRACE`].
    pub lapse_grace: Duration,
    pub challenge_ttl: Duration,
    /// The identity-stamp work asked of a peer authenticating by identity (0: none).
    pub identity_stamp_bits: u32,
    pub challenge_rate_per_peer: u32,
    pub challenge_rate_per_ip: u32,
}

/// Circuit-relay and connection limits (flags).
#[derive(Debug, clap::Args, Default, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LimitsArgs {
    #[arg(long, env = "DARKSWAP_RELAY_MAX_RESERVATIONS", help = with_default("Reservations held at once", defaults::MAX_RESERVATIONS))]
    pub max_reservations: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_RESERVATIONS_PER_PEER", help = with_default("Reservations per peer", defaults::MAX_RESERVATIONS_PER_PEER))]
    pub max_reservations_per_peer: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_RESERVATION_DURATION_SECS", help = with_default("Reservation lifetime in seconds", defaults::RESERVATION_DURATION.as_secs()))]
    pub reservation_duration_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CIRCUITS", help = with_default("Circuits at once", defaults::MAX_CIRCUITS))]
    pub max_circuits: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CIRCUITS_PER_PEER", help = with_default("Circuits per peer", defaults::MAX_CIRCUITS_PER_PEER))]
    pub max_circuits_per_peer: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CIRCUIT_DURATION_SECS", help = with_default("Longest circuit in seconds", defaults::MAX_CIRCUIT_DURATION.as_secs()))]
    pub max_circuit_duration_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CIRCUIT_BYTES", help = with_default("Bytes one circuit may carry", defaults::MAX_CIRCUIT_BYTES))]
    pub max_circuit_bytes: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_RESERVATION_RATE_PER_PEER", help = with_default("New reservations per peer per minute", defaults::RESERVATION_RATE_PER_PEER_PER_MINUTE))]
    pub reservation_rate_per_peer: Option<NonZeroU32>,
    #[arg(long, env = "DARKSWAP_RELAY_RESERVATION_RATE_PER_IP", help = with_default("New reservations per IP per minute", defaults::RESERVATION_RATE_PER_IP_PER_MINUTE))]
    pub reservation_rate_per_ip: Option<NonZeroU32>,
    #[arg(long, env = "DARKSWAP_RELAY_CIRCUIT_RATE_PER_PEER", help = with_default("New circuits per peer per minute", defaults::CIRCUIT_RATE_PER_PEER_PER_MINUTE))]
    pub circuit_rate_per_peer: Option<NonZeroU32>,
    #[arg(long, env = "DARKSWAP_RELAY_CIRCUIT_RATE_PER_IP", help = with_default("New circuits per IP per minute", defaults::CIRCUIT_RATE_PER_IP_PER_MINUTE))]
    pub circuit_rate_per_ip: Option<NonZeroU32>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CONNECTIONS", help = with_default("Established connections at once", defaults::MAX_CONNECTIONS))]
    pub max_connections: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CONNECTIONS_PER_PEER", help = with_default("Connections per peer", defaults::MAX_CONNECTIONS_PER_PEER))]
    pub max_connections_per_peer: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_CONNECTIONS_PER_IP", help = with_default("Connections per IP address (IPv6: per /64)", defaults::MAX_CONNECTIONS_PER_IP))]
    pub max_connections_per_ip: Option<u32>,
    #[arg(
        long,
        env = "DARKSWAP_RELAY_CONNECTIONS_KEPT_FOR_AUTHENTICATED",
        help = "Of max_connections, those only peers at the reservation level may hold [default: a quarter of max_connections]"
    )]
    pub connections_kept_for_authenticated: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_ANONYMOUS_GRACE_SECS", help = with_default("Seconds a connection below the reservation level keeps its place when a newcomer needs one", defaults::ANONYMOUS_GRACE.as_secs()))]
    pub anonymous_grace_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_ANONYMOUS_PER_IP", help = with_default("Connections below the reservation level per IP address (IPv6: per /64)", defaults::MAX_ANONYMOUS_PER_IP))]
    pub max_anonymous_per_ip: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_PENDING_PER_IP", help = with_default("Handshakes in progress per IP address", defaults::MAX_PENDING_PER_IP))]
    pub max_pending_per_ip: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_PENDING_KEPT_FOR_NEW_ADDRESSES", help = with_default("Of the 256 TCP and WebSocket handshake slots, those kept for each address's first four", defaults::PENDING_KEPT_FOR_NEW_ADDRESSES))]
    pub pending_kept_for_new_addresses: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_HTTP_MAX_CONNECTIONS", help = with_default("HTTP connections at once", defaults::HTTP_MAX_CONNECTIONS))]
    pub http_max_connections: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_HTTP_MAX_CONNECTIONS_PER_IP", help = with_default("HTTP connections per IP address", defaults::HTTP_MAX_CONNECTIONS_PER_IP))]
    pub http_max_connections_per_ip: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_HTTP_HEADER_TIMEOUT_SECS", help = with_default("Seconds an HTTP client has to send its request headers", defaults::HTTP_HEADER_TIMEOUT.as_secs()))]
    pub http_header_timeout_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_HTTP_WRITE_STALL_SECS", help = with_default("Seconds an HTTP response may wait unread before it is abandoned", defaults::HTTP_WRITE_STALL_TIMEOUT.as_secs()))]
    pub http_write_stall_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_ORDERS_PER_MAKER", help = with_default("Live orders per maker, all pairs together", defaults::MAX_ORDERS_PER_MAKER))]
    pub max_orders_per_maker: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_ORDER_PUBLISH_BURST", help = with_default("Order messages a maker may send in a burst", defaults::ORDER_PUBLISH_BURST))]
    pub order_publish_burst: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_ORDER_PUBLISH_RATE", help = with_default("Order messages per second a maker may sustain", defaults::ORDER_PUBLISH_RATE_PER_SECOND))]
    pub order_publish_rate: Option<u32>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_ORDERS_PER_PAIR", help = with_default("Orders per pair", defaults::MAX_ORDERS_PER_PAIR))]
    pub max_orders_per_pair: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_PAIRS", help = with_default("Pairs followed", defaults::MAX_PAIRS))]
    pub max_pairs: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_PAIRS_PER_PEER", help = with_default("Pairs one trader may follow; past it the trader is cut off", defaults::MAX_PAIRS_PER_PEER))]
    pub max_pairs_per_peer: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_PAIR_IDLE_SECS", help = with_default("Seconds a pair with no live order and no trader following it stays followed", defaults::PAIR_IDLE.as_secs()))]
    pub pair_idle_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_AUTH_DEADLINE_SECS", help = with_default("Seconds a peer has after connecting to reach the level publishing needs before it is disconnected", defaults::AUTH_DEADLINE.as_secs()))]
    pub auth_deadline_secs: Option<u64>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_ORDERS_PER_ADDRESS", help = with_default("Live orders the makers connected from one address may hold together", defaults::MAX_ORDERS_PER_ADDRESS))]
    pub max_orders_per_address: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_MAX_PAIRS_PER_ADDRESS", help = with_default("Pairs the makers connected from one address may hold orders on", defaults::MAX_PAIRS_PER_ADDRESS))]
    pub max_pairs_per_address: Option<usize>,
    #[arg(long, env = "DARKSWAP_RELAY_OPEN_PAIRS_TRUSTED_ONLY", help = with_default("Only trusted peers may put the first order on a pair", defaults::OPEN_PAIRS_TRUSTED_ONLY))]
    pub open_pairs_trusted_only: Option<bool>,
    #[arg(long, env = "DARKSWAP_RELAY_GOSSIP_RATE_PER_PEER", help = with_default("Gossip messages per second from one connected peer", defaults::GOSSIP_RATE_PER_PEER_PER_SECOND))]
    pub gossip_rate_per_peer: Option<u32>,
}

/// The config file's shape. Unknown keys are errors, so a typo is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    web_dir: Option<PathBuf>,
    listen_ip: Option<IpAddr>,
    tcp_port: Option<u16>,
    ws_port: Option<u16>,
    webrtc_port: Option<u16>,
    http_port: Option<u16>,
    #[serde(default)]
    external_addrs: Vec<Multiaddr>,
    #[serde(default)]
    peers: Vec<Multiaddr>,
    #[serde(default)]
    ws_trusted_proxies: Vec<IpAddr>,
    metrics: Option<bool>,
    webrtc_block_mdns: Option<bool>,
    #[serde(default)]
    limits: LimitsArgs,
    #[serde(default)]
    auth: AuthFile,
    #[serde(default)]
    chain: ChainFile,
    #[serde(default)]
    federation: FederationFile,
}

/// Limits in force.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_reservations: usize,
    pub max_reservations_per_peer: usize,
    pub reservation_duration: Duration,
    pub max_circuits: usize,
    pub max_circuits_per_peer: usize,
    pub max_circuit_duration: Duration,
    pub max_circuit_bytes: u64,
    pub reservation_rate_per_peer: NonZeroU32,
    pub reservation_rate_per_ip: NonZeroU32,
    pub circuit_rate_per_peer: NonZeroU32,
    pub circuit_rate_per_ip: NonZeroU32,
    pub max_connections: u32,
    pub max_connections_per_peer: u32,
    pub max_connections_per_ip: u32,
    pub connections_kept_for_authenticated: u32,
    pub anonymous_grace: Duration,
    /// Connections below the reservation level per address.
    pub max_anonymous_per_ip: u32,
    pub max_pending_per_ip: u32,
    pub pending_kept_for_new_addresses: u32,
    pub http_max_connections: u32,
    pub http_max_connections_per_ip: u32,
    pub http_header_timeout: Duration,
    pub http_write_stall: Duration,
    pub market: MarketLimits,
    pub max_pairs_per_peer: usize,
    pub pair_idle: Duration,
    pub auth_deadline: Duration,
    pub max_orders_per_address: usize,
    pub max_pairs_per_address: usize,
    pub open_pairs_trusted_only: bool,
    pub gossip_rate_per_peer: u32,
}

/// The configuration in force.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub web_dir: PathBuf,
    pub listen_ip: IpAddr,
    pub tcp_port: u16,
    pub ws_port: u16,
    pub webrtc_port: u16,
    pub http_port: u16,
    pub external_addrs: Vec<Multiaddr>,
    pub peers: Vec<Multiaddr>,
    /// The TLS proxies whose PROXY headers the WebSocket port reads; empty: no proxy.
    pub ws_trusted_proxies: Vec<IpAddr>,
    pub metrics: bool,
    pub webrtc_block_mdns: bool,
    pub limits: Limits,
    pub auth: AuthConfig,
    pub chain: ChainConfig,
    pub federation: FederationConfig,
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid setting {name}: {message}")]
    Invalid { name: &'static str, message: String },
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl Config {
    /// Merges flags, environment (through clap), the config file and the defaults.
    pub fn from_cli(cli: Cli) -> Result<Self, ConfigError> {
        let file = match &cli.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let l = &cli.limits;
        let f = &file.limits;
        let limits = Limits {
            max_reservations: l
                .max_reservations
                .or(f.max_reservations)
                .unwrap_or(defaults::MAX_RESERVATIONS),
            max_reservations_per_peer: l
                .max_reservations_per_peer
                .or(f.max_reservations_per_peer)
                .unwrap_or(defaults::MAX_RESERVATIONS_PER_PEER),
            reservation_duration: l
                .reservation_duration_secs
                .or(f.reservation_duration_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::RESERVATION_DURATION),
            max_circuits: l
                .max_circuits
                .or(f.max_circuits)
                .unwrap_or(defaults::MAX_CIRCUITS),
            max_circuits_per_peer: l
                .max_circuits_per_peer
                .or(f.max_circuits_per_peer)
                .unwrap_or(defaults::MAX_CIRCUITS_PER_PEER),
            max_circuit_duration: l
                .max_circuit_duration_secs
                .or(f.max_circuit_duration_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::MAX_CIRCUIT_DURATION),
            max_circuit_bytes: l
                .max_circuit_bytes
                .or(f.max_circuit_bytes)
                .unwrap_or(defaults::MAX_CIRCUIT_BYTES),
            reservation_rate_per_peer: l
                .reservation_rate_per_peer
                .or(f.reservation_rate_per_peer)
                .unwrap_or(nz(defaults::RESERVATION_RATE_PER_PEER_PER_MINUTE)),
            reservation_rate_per_ip: l
                .reservation_rate_per_ip
                .or(f.reservation_rate_per_ip)
                .unwrap_or(nz(defaults::RESERVATION_RATE_PER_IP_PER_MINUTE)),
            circuit_rate_per_peer: l
                .circuit_rate_per_peer
                .or(f.circuit_rate_per_peer)
                .unwrap_or(nz(defaults::CIRCUIT_RATE_PER_PEER_PER_MINUTE)),
            circuit_rate_per_ip: l
                .circuit_rate_per_ip
                .or(f.circuit_rate_per_ip)
                .unwrap_or(nz(defaults::CIRCUIT_RATE_PER_IP_PER_MINUTE)),
            max_connections: l
                .max_connections
                .or(f.max_connections)
                .unwrap_or(defaults::MAX_CONNECTIONS),
            max_connections_per_peer: l
                .max_connections_per_peer
                .or(f.max_connections_per_peer)
                .unwrap_or(defaults::MAX_CONNECTIONS_PER_PEER),
            max_connections_per_ip: l
                .max_connections_per_ip
                .or(f.max_connections_per_ip)
                .unwrap_or(defaults::MAX_CONNECTIONS_PER_IP),
            connections_kept_for_authenticated: l
                .connections_kept_for_authenticated
                .or(f.connections_kept_for_authenticated)
                .unwrap_or_else(|| {
                    defaults::kept_for_authenticated(
                        l.max_connections
                            .or(f.max_connections)
                            .unwrap_or(defaults::MAX_CONNECTIONS),
                    )
                }),
            anonymous_grace: l
                .anonymous_grace_secs
                .or(f.anonymous_grace_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::ANONYMOUS_GRACE),
            max_anonymous_per_ip: l
                .max_anonymous_per_ip
                .or(f.max_anonymous_per_ip)
                .unwrap_or(defaults::MAX_ANONYMOUS_PER_IP),
            max_pending_per_ip: l
                .max_pending_per_ip
                .or(f.max_pending_per_ip)
                .unwrap_or(defaults::MAX_PENDING_PER_IP),
            pending_kept_for_new_addresses: l
                .pending_kept_for_new_addresses
                .or(f.pending_kept_for_new_addresses)
                .unwrap_or(defaults::PENDING_KEPT_FOR_NEW_ADDRESSES),
            http_max_connections: l
                .http_max_connections
                .or(f.http_max_connections)
                .unwrap_or(defaults::HTTP_MAX_CONNECTIONS),
            http_max_connections_per_ip: l
                .http_max_connections_per_ip
                .or(f.http_max_connections_per_ip)
                .unwrap_or(defaults::HTTP_MAX_CONNECTIONS_PER_IP),
            http_header_timeout: l
                .http_header_timeout_secs
                .or(f.http_header_timeout_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::HTTP_HEADER_TIMEOUT),
            http_write_stall: l
                .http_write_stall_secs
                .or(f.http_write_stall_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::HTTP_WRITE_STALL_TIMEOUT),
            market: MarketLimits {
                max_orders_per_maker: l
                    .max_orders_per_maker
                    .or(f.max_orders_per_maker)
                    .unwrap_or(defaults::MAX_ORDERS_PER_MAKER),
                publish_burst: l
                    .order_publish_burst
                    .or(f.order_publish_burst)
                    .unwrap_or(defaults::ORDER_PUBLISH_BURST),
                publish_per_second: l
                    .order_publish_rate
                    .or(f.order_publish_rate)
                    .unwrap_or(defaults::ORDER_PUBLISH_RATE_PER_SECOND),
                max_orders_per_book: l
                    .max_orders_per_pair
                    .or(f.max_orders_per_pair)
                    .unwrap_or(defaults::MAX_ORDERS_PER_PAIR),
                max_pairs: l.max_pairs.or(f.max_pairs).unwrap_or(defaults::MAX_PAIRS),
                ..MarketLimits::default()
            },
            max_pairs_per_peer: l
                .max_pairs_per_peer
                .or(f.max_pairs_per_peer)
                .unwrap_or(defaults::MAX_PAIRS_PER_PEER),
            pair_idle: l
                .pair_idle_secs
                .or(f.pair_idle_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::PAIR_IDLE),
            auth_deadline: l
                .auth_deadline_secs
                .or(f.auth_deadline_secs)
                .map(Duration::from_secs)
                .unwrap_or(defaults::AUTH_DEADLINE),
            max_orders_per_address: l
                .max_orders_per_address
                .or(f.max_orders_per_address)
                .unwrap_or(defaults::MAX_ORDERS_PER_ADDRESS),
            max_pairs_per_address: l
                .max_pairs_per_address
                .or(f.max_pairs_per_address)
                .unwrap_or(defaults::MAX_PAIRS_PER_ADDRESS),
            open_pairs_trusted_only: l
                .open_pairs_trusted_only
                .or(f.open_pairs_trusted_only)
                .unwrap_or(defaults::OPEN_PAIRS_TRUSTED_ONLY),
            gossip_rate_per_peer: l
                .gossip_rate_per_peer
                .or(f.gossip_rate_per_peer)
                .unwrap_or(defaults::GOSSIP_RATE_PER_PEER_PER_SECOND),
        };
        let default_ip: IpAddr = defaults::LISTEN_IP
            .parse()
            .map_err(|_| ConfigError::Invalid {
                name: "listen_ip",
                message: "built-in default does not parse".into(),
            })?;
        let config = Config {
            data_dir: cli
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| defaults::DATA_DIR.into()),
            web_dir: cli
                .web_dir
                .or(file.web_dir)
                .unwrap_or_else(|| defaults::WEB_DIR.into()),
            listen_ip: cli.listen_ip.or(file.listen_ip).unwrap_or(default_ip),
            tcp_port: cli.tcp_port.or(file.tcp_port).unwrap_or(defaults::TCP_PORT),
            ws_port: cli.ws_port.or(file.ws_port).unwrap_or(defaults::WS_PORT),
            webrtc_port: cli
                .webrtc_port
                .or(file.webrtc_port)
                .unwrap_or(defaults::WEBRTC_PORT),
            http_port: cli
                .http_port
                .or(file.http_port)
                .unwrap_or(defaults::HTTP_PORT),
            external_addrs: if cli.external_addrs.is_empty() {
                file.external_addrs
            } else {
                cli.external_addrs
            },
            peers: if cli.peers.is_empty() {
                file.peers
            } else {
                cli.peers
            },
            ws_trusted_proxies: if cli.ws_trusted_proxies.is_empty() {
                file.ws_trusted_proxies
            } else {
                cli.ws_trusted_proxies
            },
            metrics: cli
                .metrics
                .or(file.metrics)
                .unwrap_or(defaults::METRICS_ENABLED),
            webrtc_block_mdns: cli
                .webrtc_block_mdns
                .or(file.webrtc_block_mdns)
                .unwrap_or(defaults::WEBRTC_BLOCK_MDNS),
            limits,
            auth: auth_config(&cli.auth, file.auth)?,
            chain: chain_config(&cli.chain, file.chain)?,
            federation: federation_config(&cli.federation, file.federation)?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        let positive: [(&'static str, u64); 27] = [
            ("max_reservations", l.max_reservations as u64),
            (
                "max_reservations_per_peer",
                l.max_reservations_per_peer as u64,
            ),
            (
                "reservation_duration_secs",
                l.reservation_duration.as_secs(),
            ),
            ("max_circuits", l.max_circuits as u64),
            ("max_circuits_per_peer", l.max_circuits_per_peer as u64),
            (
                "max_circuit_duration_secs",
                l.max_circuit_duration.as_secs(),
            ),
            ("max_circuit_bytes", l.max_circuit_bytes),
            ("max_connections", l.max_connections as u64),
            ("max_connections_per_ip", l.max_connections_per_ip as u64),
            ("max_pending_per_ip", l.max_pending_per_ip as u64),
            ("http_max_connections", l.http_max_connections as u64),
            (
                "http_max_connections_per_ip",
                l.http_max_connections_per_ip as u64,
            ),
            ("http_header_timeout_secs", l.http_header_timeout.as_secs()),
            ("http_write_stall_secs", l.http_write_stall.as_secs()),
            ("max_orders_per_maker", l.market.max_orders_per_maker as u64),
            ("order_publish_burst", l.market.publish_burst as u64),
            ("order_publish_rate", l.market.publish_per_second as u64),
            ("max_orders_per_pair", l.market.max_orders_per_book as u64),
            ("max_pairs", l.market.max_pairs as u64),
            ("max_pairs_per_peer", l.max_pairs_per_peer as u64),
            ("pair_idle_secs", l.pair_idle.as_secs()),
            ("auth_deadline_secs", l.auth_deadline.as_secs()),
            ("anonymous_grace_secs", l.anonymous_grace.as_secs()),
            ("max_anonymous_per_ip", l.max_anonymous_per_ip as u64),
            ("max_orders_per_address", l.max_orders_per_address as u64),
            ("max_pairs_per_address", l.max_pairs_per_address as u64),
            ("gossip_rate_per_peer", l.gossip_rate_per_peer as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    name,
                    message: "must be greater than 0".into(),
                });
            }
        }
        // Every trader must accept every pair its relay announces.
        let ceiling = darkswap_proto::gossip::MAX_FOLLOWED_PAIRS;
        for (name, value) in [
            ("max_pairs", l.market.max_pairs),
            ("max_pairs_per_peer", l.max_pairs_per_peer),
        ] {
            if value > ceiling {
                return Err(ConfigError::Invalid {
                    name,
                    message: format!("at most {ceiling} (the pairs a peer may follow on gossip)"),
                });
            }
        }
        if l.connections_kept_for_authenticated >= l.max_connections {
            return Err(ConfigError::Invalid {
                name: "connections_kept_for_authenticated",
                message: format!(
                    "must be below max_connections ({}): peers that have not proved themselves yet need room to connect and do so",
                    l.max_connections
                ),
            });
        }
        if l.pending_kept_for_new_addresses > defaults::MAX_PENDING_STREAM {
            return Err(ConfigError::Invalid {
                name: "pending_kept_for_new_addresses",
                message: format!(
                    "at most {} (the TCP and WebSocket handshake slots)",
                    defaults::MAX_PENDING_STREAM
                ),
            });
        }
        if l.max_connections_per_peer == 0 {
            return Err(ConfigError::Invalid {
                name: "max_connections_per_peer",
                message: "must be greater than 0".into(),
            });
        }
        for peer in &self.peers {
            if darkswap_proto::addr::relay_peer_id(std::slice::from_ref(peer)).is_err() {
                return Err(ConfigError::Invalid {
                    name: "peers",
                    message: format!("{peer} must end with /p2p/<the peer relay's PeerId>"),
                });
            }
        }
        let fixed: Vec<u16> = [self.tcp_port, self.ws_port, self.http_port]
            .into_iter()
            .filter(|p| *p != 0)
            .collect();
        for (i, p) in fixed.iter().enumerate() {
            if fixed[i + 1..].contains(p) {
                return Err(ConfigError::Invalid {
                    name: "ports",
                    message: format!("TCP port {p} is used twice (tcp_port, ws_port, http_port)"),
                });
            }
        }
        Ok(())
    }
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

fn parse_level(name: &'static str, text: &str) -> Result<Level, ConfigError> {
    Level::parse(text.trim()).ok_or_else(|| {
        invalid(
            name,
            format!("unknown level {text:?} (banned, anonymous, authenticated, trusted, admin)"),
        )
    })
}

fn parse_peer(name: &'static str, text: &str) -> Result<PeerId, ConfigError> {
    text.trim()
        .parse()
        .map_err(|_| invalid(name, format!("{text:?} is not a PeerId")))
}

fn read_shared_key(path: &Path) -> Result<SharedKey, ConfigError> {
    let text = std::fs::read(path).map_err(|e| {
        invalid(
            "auth.shared_key_file",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    let trimmed = text.trim_ascii_end();
    SharedKey::new(trimmed).ok_or_else(|| {
        invalid(
            "auth.shared_key_file",
            format!("the key must be at least {MIN_SHARED_KEY_BYTES} bytes"),
        )
    })
}

fn auth_config(args: &AuthArgs, file: AuthFile) -> Result<AuthConfig, ConfigError> {
    let shared_key = match args
        .shared_key_file
        .as_ref()
        .or(file.shared_key_file.as_ref())
    {
        Some(path) => Some(read_shared_key(path)?),
        None => match std::env::var("DARKSWAP_RELAY_AUTH_SHARED_KEY") {
            Ok(key) if !key.is_empty() => {
                Some(SharedKey::new(key.as_bytes()).ok_or_else(|| {
                    invalid(
                        "DARKSWAP_RELAY_AUTH_SHARED_KEY",
                        format!("the key must be at least {MIN_SHARED_KEY_BYTES} bytes"),
                    )
                })?)
            }
            _ => None,
        },
    };
    let shared_key_level = match args
        .shared_key_level
        .as_deref()
        .or(file.shared_key_level.as_deref())
    {
        Some(text) => parse_level("auth.shared_key_level", text)?,
        None => defaults::AUTH_SHARED_KEY_LEVEL,
    };
    if !matches!(shared_key_level, Level::Authenticated | Level::Trusted) {
        return Err(invalid(
            "auth.shared_key_level",
            "must be authenticated or trusted",
        ));
    }
    let mut peers = std::collections::BTreeMap::new();
    let listed: Vec<(String, String)> = if args.peers.is_empty() {
        file.peers.into_iter().collect()
    } else {
        args.peers
            .iter()
            .map(|entry| {
                entry
                    .split_once('=')
                    .map(|(p, l)| (p.to_string(), l.to_string()))
                    .ok_or_else(|| invalid("auth.peers", format!("{entry:?} is not PEERID=LEVEL")))
            })
            .collect::<Result<_, _>>()?
    };
    for (peer, level) in listed {
        let peer = parse_peer("auth.peers", &peer)?;
        let level = parse_level("auth.peers", &level)?;
        if level == Level::Anonymous {
            return Err(invalid(
                "auth.peers",
                format!("{peer}: listing a peer as anonymous means nothing; remove it"),
            ));
        }
        peers.insert(peer, level);
    }
    let secs = |name: &'static str, v: Option<u64>, default: Duration| match v {
        Some(0) => Err(invalid(name, "must be greater than 0")),
        Some(s) => Ok(Duration::from_secs(s)),
        None => Ok(default),
    };
    let auth = AuthConfig {
        open: args.open.or(file.open).unwrap_or(defaults::AUTH_OPEN),
        identity: args
            .identity
            .or(file.identity)
            .unwrap_or(defaults::AUTH_IDENTITY),
        identity_anyone: args
            .identity_anyone
            .or(file.identity_anyone)
            .unwrap_or(defaults::AUTH_IDENTITY_ANYONE),
        public_key: args
            .public_key
            .or(file.public_key)
            .unwrap_or(defaults::AUTH_PUBLIC_KEY),
        shared_key,
        shared_key_level,
        peers,
        token_ttl: secs(
            "auth.token_ttl_secs",
            args.token_ttl_secs.or(file.token_ttl_secs),
            defaults::AUTH_TOKEN_TTL,
        )?,
        lapse_grace: secs(
            "auth.lapse_grace_secs",
            args.lapse_grace_secs.or(file.lapse_grace_secs),
            defaults::AUTH_LAPSE_GRACE,
        )?,
        challenge_ttl: secs(
            "auth.challenge_ttl_secs",
            args.challenge_ttl_secs.or(file.challenge_ttl_secs),
            defaults::AUTH_CHALLENGE_TTL,
        )?,
        identity_stamp_bits: match args.identity_stamp_bits.or(file.identity_stamp_bits) {
            Some(bits @ 0..=darkswap_proto::auth::MAX_STAMP_BITS) => bits,
            Some(_) => {
                return Err(invalid(
                    "auth.identity_stamp_bits",
                    format!(
                        "at most {}: clients refuse to do more work",
                        darkswap_proto::auth::MAX_STAMP_BITS
                    ),
                ))
            }
            None => defaults::AUTH_IDENTITY_STAMP_BITS,
        },
        challenge_rate_per_peer: args
            .challenge_rate_per_peer
            .or(file.challenge_rate_per_peer)
            .unwrap_or(defaults::AUTH_CHALLENGE_RATE_PER_PEER_PER_MINUTE),
        challenge_rate_per_ip: args
            .challenge_rate_per_ip
            .or(file.challenge_rate_per_ip)
            .unwrap_or(defaults::AUTH_CHALLENGE_RATE_PER_IP_PER_MINUTE),
    };
    if auth.challenge_rate_per_peer == 0 || auth.challenge_rate_per_ip == 0 {
        return Err(invalid(
            "auth.challenge_rate_per_peer/ip",
            "must be greater than 0",
        ));
    }
    let listed_can_pass =
        auth.public_key && auth.peers.values().any(|l| *l >= Level::Authenticated);
    if !auth.open && !auth.identity && auth.shared_key.is_none() && !listed_can_pass {
        return Err(invalid(
            "auth",
            "no way to authenticate: enable identity, set a shared key, list peers with public_key on, or set open = true",
        ));
    }
    Ok(auth)
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        // toml's message spans several lines; the operator gets one.
        message: e.message().replace('\n', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn defaults_apply() {
        let c = Config::from_cli(Cli::default()).unwrap();
        assert_eq!(c.tcp_port, defaults::TCP_PORT);
        assert_eq!(c.limits.max_circuit_bytes, defaults::MAX_CIRCUIT_BYTES);
    }

    #[test]
    fn flags_override_file() {
        let (_d, path) = write("tcp_port = 5001\nws_port = 5002\n[limits]\nmax_reservations = 7\n");
        let cli = Cli {
            config: Some(path),
            ws_port: Some(6002),
            ..Cli::default()
        };
        let c = Config::from_cli(cli).unwrap();
        assert_eq!(c.tcp_port, 5001);
        assert_eq!(c.ws_port, 6002);
        assert_eq!(c.limits.max_reservations, 7);
    }

    #[test]
    fn bad_files_are_errors() {
        let (_d, path) = write("tcp_portt = 1\n");
        let e = Config::from_cli(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
        let (_d, path) = write("[limits]\nmax_circuits = 0\n");
        let e = Config::from_cli(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("max_circuits"), "{e}");
        let e = Config::from_cli(Cli {
            config: Some("/nonexistent/relay.toml".into()),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(matches!(e, ConfigError::Read { .. }));
    }

    #[test]
    fn flags_are_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn auth_defaults_fail_closed_and_bad_auth_settings_are_errors() {
        let c = Config::from_cli(Cli::default()).unwrap().auth;
        assert!(!c.open && c.identity && c.shared_key.is_none());
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let (_d, path) = write(&format!(
            "[auth]\nidentity = false\n[auth.peers]\n\"{peer}\" = \"admin\"\n"
        ));
        let c = Config::from_cli(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap();
        assert_eq!(c.auth.peers.get(&peer), Some(&Level::Admin));
        for (text, name) in [
            ("[auth]\nidentity = false\n", "auth"),
            ("[auth]\nshared_key_level = \"admin\"\n", "shared_key_level"),
            ("[auth.peers]\n\"notapeer\" = \"admin\"\n", "auth.peers"),
            (
                &format!("[auth.peers]\n\"{peer}\" = \"boss\"\n"),
                "auth.peers",
            ),
            ("[auth]\ntoken_ttl_secs = 0\n", "token_ttl_secs"),
        ] {
            let (_d, path) = write(text);
            let e = Config::from_cli(Cli {
                config: Some(path),
                ..Cli::default()
            })
            .unwrap_err();
            assert!(e.to_string().contains(name), "{text}: {e}");
        }
        let (dir, path) = write("[auth]\nshared_key_file = \"short.key\"\n");
        std::fs::write(dir.path().join("short.key"), "too short").unwrap();
        let cli = Cli {
            config: Some(path),
            auth: AuthArgs {
                shared_key_file: Some(dir.path().join("short.key")),
                ..AuthArgs::default()
            },
            ..Cli::default()
        };
        let e = Config::from_cli(cli).unwrap_err();
        assert!(e.to_string().contains("at least 16 bytes"), "{e}");
    }

    #[test]
    fn same_port_twice_is_an_error() {
        let cli = Cli {
            tcp_port: Some(7000),
            http_port: Some(7000),
            ..Cli::default()
        };
        assert!(Config::from_cli(cli).is_err());
    }
}

#[cfg(test)]
mod example_config {
    use super::*;

    /// Chain URLs longer than pages accept are refused at start, from the file as from a flag.
    #[test]
    fn chain_urls_are_capped_from_the_file_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        let long = "x".repeat(darkswap_proto::relay_info::MAX_CHAIN_FIELD + 1);
        std::fs::write(
            &path,
            format!("[chain]\nnetwork = \"regtest\"\nord_url = \"{long}\"\n"),
        )
        .unwrap();
        let err = Config::from_cli(Cli {
            config: Some(path),
            ..Cli::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("chain.ord_url"), "{err}");
    }

    /// The shipped example must parse and must state the real defaults.
    #[test]
    fn example_config_matches_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("example.config.toml");
        let from_example = Config::from_cli(Cli {
            config: Some(example),
            ..Cli::default()
        })
        .unwrap();
        let defaults = Config::from_cli(Cli::default()).unwrap();
        assert_eq!(format!("{from_example:?}"), format!("{defaults:?}"));
    }

    /// The README's settings table states every key's default as the code has it.
    #[test]
    fn readme_settings_table_matches_the_defaults() {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(readme).unwrap();
        let rows: std::collections::BTreeMap<String, String> = readme
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
                let value = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
                Some((key.to_string(), value.to_string()))
            })
            .collect();
        for (key, default) in documented_defaults() {
            assert_eq!(
                rows.get(key),
                Some(&default),
                "README settings table, key `{key}`"
            );
        }
    }

    /// Each flag's help states the default the code uses.
    #[test]
    fn flag_help_states_the_defaults() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for (text, default) in [
            (
                "Reservations held at once",
                defaults::MAX_RESERVATIONS.to_string(),
            ),
            (
                "Order messages a maker may send in a burst",
                defaults::ORDER_PUBLISH_BURST.to_string(),
            ),
            ("libp2p TCP port, 0 for any", defaults::TCP_PORT.to_string()),
        ] {
            assert!(
                help.contains(&format!("{text} [default: {default}]")),
                "{text}"
            );
        }
    }
}
