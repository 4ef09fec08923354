//! Node configuration with documented defaults.

use std::time::Duration;

use darkswap_auth::client::Credential;
use darkswap_market::MarketLimits;
use libp2p::Multiaddr;

/// How a [`crate::Node`] behaves. Every field has a default chosen for an interactive trader.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The relay's addresses, each ending in `/p2p/<relay>`; tried in the order of
    /// [`crate::sort_for_dialing`], one at a time.
    pub relay_addrs: Vec<Multiaddr>,
    /// First wait before redialing a lost relay; doubles on each failure.
    pub backoff_initial: Duration,
    /// Longest wait between redials, so a relay that comes back is found within this time.
    pub backoff_max: Duration,
    /// How often to ask the relay who is reachable while we hold a reservation.
    pub directory_interval: Duration,
    /// How often to ping connected peers (relay RTT, peer RTT).
    pub ping_interval: Duration,
    /// A ping unanswered for this long means the peer is gone; for the relay, the connection
    /// is dropped and redialed.
    pub ping_timeout: Duration,
    /// How long an unused connection to another trader stays open.
    pub idle_connection_timeout: Duration,
    /// A WebRTC-direct dial that has not completed by then falls back to the next address.
    pub webrtc_dial_timeout: Duration,
    /// How long to wait for the answer to any request (direct messages, the directory, book
    /// sync, trade negotiation, authentication).
    pub request_timeout: Duration,
    /// Capacity of the event channel to the application (the node waits when it is full).
    pub event_buffer: usize,
    /// Capacity of the command channel from the application.
    pub command_buffer: usize,
    /// Messages queued for one peer while a connection to it is being opened.
    pub max_pending_per_peer: usize,
    /// Peers with queued messages at once.
    pub max_pending_peers: usize,
    /// The relay's market limits until it tells us its own (in its auth grant): the live-order
    /// cap we check before publishing, and the per-maker rate we pace our publishing below
    /// (at [`crate::orders::PUBLISH_PACE_PERCENT`] of it).
    pub market_limits: MarketLimits,
    /// How we prove ourselves to the relay (`/darkswap/auth/1`).
    pub credential: Credential,
    /// A token from an earlier session with this relay, presented instead of a challenge while
    /// it is good (the browser keeps it in IndexedDB).
    pub auth_token: Option<Vec<u8>>,
    /// Our identity's proof of work from an earlier session (`AuthEvent::Stamped`), answered
    /// to relays that ask for one instead of searching again.
    pub identity_stamp: Option<u64>,
    /// After the relay refused us, ask again after about this long (±50 % at random, so that
    /// clients refused together do not come back together).
    pub auth_retry: Duration,
    /// When end-to-end trade sessions take fresh keys (frames sent, or age).
    pub e2e_rekey: darkswap_e2e::RekeyPolicy,
    /// The relay pool's settings.
    pub relay_pool: darkswap_relays::PoolConfig,
    /// The pool a previous session kept (IndexedDB, a file), restored with every record checked.
    pub saved_relay_pool: Option<darkswap_relays::SavedPool>,
    /// Dial the pool's other relays to measure them (off: rank by what the records say).
    pub probe_relays: bool,
    /// When the link's relay is lost or refuses us, move to the best other relay of the pool
    /// (off: wait for that relay and redial it after its backoff).
    pub fail_over: bool,
    /// Reservations held at once (K): the link's, and K − 1 standbys on the best other relays
    /// of the pool, each connected, authenticated and reserved, so that other traders reach us
    /// through any of them and a lost link is replaced at once. 1 holds only the link's; with
    /// `fail_over` off the node holds only the link's whatever this says.
    pub reservations: usize,
    /// How often the relay is asked for the relay records it knows (the relays' own announce
    /// period by default).
    pub records_interval: Duration,
}

impl NodeConfig {
    /// A configuration for the relay at `relay_addrs` (all naming the same relay), every other
    /// field at its default: redial after 500 ms doubling up to 8 s, directory every 2 s, ping
    /// every 5 s with a 5 s timeout, idle connections closed after 300 s, WebRTC dials given up
    /// after 8 s, requests timed out after 20 s, 256 events and 64 commands buffered, 16
    /// messages for each of at most 64 peers waiting for a connection,
    /// [`MarketLimits::default`], the identity credential, no cached token, auth retried 30 s
    /// after a refusal, the default rekey policy, the default relay pool (probed, records asked
    /// for every 30 s), reservations on two relays when the pool has two.
    pub fn new(relay_addrs: Vec<Multiaddr>) -> Self {
        Self {
            relay_addrs,
            ..Self::default()
        }
    }
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            relay_addrs: Vec::new(),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            directory_interval: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(5),
            idle_connection_timeout: Duration::from_secs(300),
            webrtc_dial_timeout: Duration::from_secs(8),
            request_timeout: Duration::from_secs(20),
            event_buffer: 256,
            command_buffer: 64,
            max_pending_per_peer: 16,
            max_pending_peers: 64,
            market_limits: MarketLimits::default(),
            credential: Credential::Identity,
            auth_token: None,
            identity_stamp: None,
            auth_retry: Duration::from_secs(30),
            e2e_rekey: darkswap_e2e::RekeyPolicy::default(),
            relay_pool: darkswap_relays::PoolConfig::default(),
            saved_relay_pool: None,
            probe_relays: true,
            fail_over: true,
            reservations: 2,
            records_interval: Duration::from_secs(30),
        }
    }
}
