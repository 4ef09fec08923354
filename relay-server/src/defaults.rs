//! Every port, limit and timeout of the relay, with the reason for its value. All of them can be
//! changed in the config file, by flag or by environment variable.

use std::time::Duration;

/// Where the identity key and the WebRTC certificate live. Relative to the working directory.
pub const DATA_DIR: &str = "relay-data";
/// Where `trunk build` puts the web app.
pub const WEB_DIR: &str = "web/dist";
/// Listen on every interface: a relay exists to be reached from outside.
pub const LISTEN_IP: &str = "0.0.0.0";
/// libp2p over TCP (native peers, other relays). 4001 is the customary libp2p port.
pub const TCP_PORT: u16 = 4001;
/// libp2p over WebSocket (browsers without WebRTC, or behind a TLS-terminating proxy).
pub const WS_PORT: u16 = 4002;
/// libp2p over WebRTC-direct, UDP (browsers, no TLS certificate needed).
pub const WEBRTC_PORT: u16 = 4003;
/// HTTP: the web app, `/metrics`, `/health`, `/api/relay-info`.
pub const HTTP_PORT: u16 = 8080;

/// Metrics on: an operator needs them, and their cost on the forwarding path is measured by
/// `scripts/bench-relay` (circuit throughput with metrics on and off).
pub const METRICS_ENABLED: bool = true;
/// Off: holding the mDNS address blocks mDNS for every program on the host (a browser on the same
/// machine, avahi), so it is for dedicated relay hosts (see `mdns_guard.rs`).
pub const WEBRTC_BLOCK_MDNS: bool = false;

/// Reservations held at once. A reservation is one trader reachable through this relay; the
/// relay is sized for ~1,000 traders on a small VPS, with headroom.
pub const MAX_RESERVATIONS: usize = 4096;
/// Reservations per peer: one, plus one for a renewal that overlaps a reconnect.
pub const MAX_RESERVATIONS_PER_PEER: usize = 2;
/// A reservation lasts one hour; clients renew before it ends.
pub const RESERVATION_DURATION: Duration = Duration::from_secs(3600);
/// Circuits (trader-to-trader connections through the relay) at once.
pub const MAX_CIRCUITS: usize = 8192;
/// Circuits per peer: a market maker talks to many takers at once.
pub const MAX_CIRCUITS_PER_PEER: usize = 64;
/// A circuit may last a whole trading session (libp2p's default of 2 minutes cuts
/// negotiations off mid-trade).
pub const MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(24 * 3600);
/// Bytes one circuit may carry (libp2p's default of 128 KiB cannot hold one order-book sync).
pub const MAX_CIRCUIT_BYTES: u64 = 256 * 1024 * 1024;
/// New reservations per peer per minute: a reconnecting browser needs a few, a flood needs more.
pub const RESERVATION_RATE_PER_PEER_PER_MINUTE: u32 = 30;
/// New reservations per IP per minute (libp2p's limiter allows them all at once): sized, like
/// the auth rate per IP, for several hundred traders behind one address reconnecting together.
pub const RESERVATION_RATE_PER_IP_PER_MINUTE: u32 = 600;
/// New circuits a peer may open per minute.
pub const CIRCUIT_RATE_PER_PEER_PER_MINUTE: u32 = 120;
/// New circuits per source IP per minute.
pub const CIRCUIT_RATE_PER_IP_PER_MINUTE: u32 = 480;

/// Established connections in total: reservations plus relay peers plus slack.
pub const MAX_CONNECTIONS: u32 = 8192;
/// Connections per peer: a browser may hold WebRTC and WebSocket briefly during a reconnect.
pub const MAX_CONNECTIONS_PER_PEER: u32 = 4;
/// Handshakes in progress at once; bounds the memory an unauthenticated flood can take.
pub const MAX_PENDING_INCOMING: u32 = 512;
/// Established connections from one IP address (an IPv6 /64): an office or a carrier-grade NAT
/// holds one per trader, one laptop cannot take every slot.
pub const MAX_CONNECTIONS_PER_IP: u32 = 256;
/// Of `max_connections`, those only peers at the reservation level may hold: a quarter.
pub fn kept_for_authenticated(max_connections: u32) -> u32 {
    max_connections / 4
}
/// How long a connection below the reservation level is safe from giving its place to a
/// newcomer when their part is full (honest traders authenticate within a second).
pub const ANONYMOUS_GRACE: Duration = Duration::from_secs(10);
/// Connections below the reservation level one address (an IPv6 /64) may hold at once. Honest
/// traders are below it only until their grant moves them out, so this is how many traders
/// behind one address (an office, carrier-grade NAT) may be proving themselves at once; a flood
/// from one address holds this many places and no more.
pub const MAX_ANONYMOUS_PER_IP: u32 = 64;
/// Handshakes in progress from one IP address (half-open WebSocket upgrades, STUN floods).
pub const MAX_PENDING_PER_IP: u32 = 32;
/// WebRTC-direct handshakes in progress at once: half the pending slots, so that a UDP flood,
/// whose source addresses are not proven, never takes the slots TCP and WebSocket need.
pub const MAX_PENDING_WEBRTC: u32 = MAX_PENDING_INCOMING / 2;
/// TCP and WebSocket handshakes in progress at once: the other half.
pub const MAX_PENDING_STREAM: u32 = MAX_PENDING_INCOMING - MAX_PENDING_WEBRTC;
/// Of those, the slots kept for each address's first four handshakes: addresses that hold
/// their whole allowance share only the remaining 64.
pub const PENDING_KEPT_FOR_NEW_ADDRESSES: u32 = 192;
/// HTTP connections open at once (web app, metrics, health).
pub const HTTP_MAX_CONNECTIONS: u32 = 1024;
/// HTTP connections open at once from one IP address (a browser opens about six).
pub const HTTP_MAX_CONNECTIONS_PER_IP: u32 = 64;
/// Seconds an HTTP client has to send a request's headers (and an idle keep-alive connection
/// to send its next request) before the connection is closed.
pub const HTTP_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// An HTTP response that the client has not read for this long is abandoned.
pub const HTTP_WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Connections without any protocol activity close after this.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How often to ping peers; drives the RTT histogram.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long to wait for the listeners' first addresses before reporting readiness anyway.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// The market limits are the shared ones, with their reasons (`MarketLimits::DEFAULT`); clients
/// assume them too until the relay tells them its own.
const MARKET: darkswap_market::MarketLimits = darkswap_market::MarketLimits::DEFAULT;
pub const MAX_ORDERS_PER_MAKER: usize = MARKET.max_orders_per_maker;
pub const ORDER_PUBLISH_BURST: u32 = MARKET.publish_burst;
pub const ORDER_PUBLISH_RATE_PER_SECOND: u32 = MARKET.publish_per_second;
pub const MAX_ORDERS_PER_PAIR: usize = MARKET.max_orders_per_book;
pub const MAX_PAIRS: usize = MARKET.max_pairs;
/// Pairs one trader may follow: twice what a client follows (`darkswap_net::MAX_WATCHED_PAIRS`).
/// Gossip cannot refuse one subscription of a peer, so a peer past it is cut off.
pub const MAX_PAIRS_PER_PEER: usize = 64;
/// How long a pair with no live order and no trader following it stays followed.
pub const PAIR_IDLE: Duration = Duration::from_secs(600);
/// Time a peer has after connecting to reach the level publishing needs before it is
/// disconnected (an anonymous reader reconnects and reads again; a connection slot is not free
/// for good to someone who proves nothing).
pub const AUTH_DEADLINE: Duration = Duration::from_secs(120);
/// Live orders the makers connected from one address hold together: five makers at the
/// per-maker cap. Keys are free; addresses are not.
pub const MAX_ORDERS_PER_ADDRESS: usize = 5 * MARKET.max_orders_per_maker;
/// Pairs the makers connected from one address hold orders on: 32 addresses to fill the
/// default 1,000 pairs, where one address with 16 throwaway keys used to.
pub const MAX_PAIRS_PER_ADDRESS: usize = 32;
/// Whether only trusted peers may open a pair (put its first order).
pub const OPEN_PAIRS_TRUSTED_ONLY: bool = false;
/// Gossip messages per second accepted from one connected peer (a peer relay is exempt): a
/// trader's client never needs this many, a flood is cut at the first hop.
pub const GOSSIP_RATE_PER_PEER_PER_SECOND: u32 = 50;
/// How often the relay retries a configured peer relay it is not connected to.
pub const PEER_REDIAL_INTERVAL: Duration = Duration::from_secs(5);

/// Fail closed: a relay requires authentication unless its operator opens it on purpose.
pub const AUTH_OPEN: bool = false;
/// Challenge-response with the trader's identity key: on, so a trader's first try works
/// without anything to enter, and every privilege is tied to an identity that can be banned.
pub const AUTH_IDENTITY: bool = true;
/// Any identity that answers a challenge is authenticated (false: only listed peers).
pub const AUTH_IDENTITY_ANYONE: bool = true;
/// Peers listed in `[auth.peers]` get their level as soon as they connect (the connection's
/// Noise handshake already proved the key).
pub const AUTH_PUBLIC_KEY: bool = true;
/// The level the shared-key method grants unless the operator says `trusted`.
pub const AUTH_SHARED_KEY_LEVEL: darkswap_auth::Level = darkswap_auth::Level::Authenticated;
/// A token lasts an hour; clients renew it a minute before it ends.
pub const AUTH_TOKEN_TTL: Duration = Duration::from_secs(3600);
/// How long after its grant ran out a peer may still hold the reservation and circuits it
/// bought: more than a client's renewal margin (a minute before the end) plus the clock skew the
/// relay tolerates (30 s) and one rate-limited retry, so an honest client that renews late is
/// never cut off; a peer that does not renew at all loses them after this.
pub const AUTH_LAPSE_GRACE: Duration = Duration::from_secs(120);
/// A challenge must be answered within this time (one round trip, with generous slack).
pub const AUTH_CHALLENGE_TTL: Duration = Duration::from_secs(30);
/// No identity stamp by default: a relay under a flood of throwaway keys raises it (20 bits is
/// about a million hashes: a fraction of a second natively, a second or two in a browser, once
/// per identity and token lifetime). Every client in this repository can pay it.
pub const AUTH_IDENTITY_STAMP_BITS: u32 = 0;
/// Challenge requests per peer per minute (a reconnecting client needs one or two).
pub const AUTH_CHALLENGE_RATE_PER_PEER_PER_MINUTE: u32 = 20;
/// Auth requests per IP per minute, all of them allowed at once. Sized for traders who share one
/// address (carrier-grade NAT, an office): each needs one request per connection (a token, or a
/// challenge), so 600 of them can reconnect at the same moment and 10 more every second after;
/// an answer costs the relay one signature check.
pub const AUTH_CHALLENGE_RATE_PER_IP_PER_MINUTE: u32 = 600;
/// Challenges outstanding at once, all peers together (~100 B each).
pub const AUTH_MAX_PENDING_CHALLENGES: usize = 10_000;
/// Challenges outstanding per peer.
pub const AUTH_MAX_PENDING_PER_PEER: usize = 4;
/// Peers and IPs tracked by the challenge rate limits (a full table refuses newcomers).
pub const AUTH_RATE_TABLE_CAPACITY: usize = 50_000;
/// Book-sync pages one peer may ask for per second, with a burst of [`BOOK_SYNC_BURST_PER_PEER`]:
/// a joiner reads a full pair (100,000 orders, 100 pages) at once, a reloading page again soon.
pub const BOOK_SYNC_PAGES_PER_PEER_PER_SECOND: u32 = 10;
/// See [`BOOK_SYNC_PAGES_PER_PEER_PER_SECOND`].
pub const BOOK_SYNC_BURST_PER_PEER: u32 = 250;
/// Book-sync pages per second from one IP address (IPv6: one /64), all its peers together, with
/// a burst of [`BOOK_SYNC_BURST_PER_IP`]: fresh identities from one address share it.
pub const BOOK_SYNC_PAGES_PER_IP_PER_SECOND: u32 = 40;
/// See [`BOOK_SYNC_PAGES_PER_IP_PER_SECOND`].
pub const BOOK_SYNC_BURST_PER_IP: u32 = 1_000;
/// Book-sync requests one connection may have open at once.
pub const BOOK_SYNC_STREAMS_PER_CONNECTION: usize = 16;
/// Peers and IPs tracked by the book-sync limits (a full table refuses newcomers).
pub const BOOK_SYNC_RATE_TABLE_CAPACITY: usize = 50_000;
/// Bans and trusted peers changed at run time (the access file stays small).
pub const AUTH_MAX_RUNTIME_ENTRIES: usize = 10_000;
/// Security audit events written per second at most (the rest are counted).
pub const AUDIT_EVENTS_PER_SECOND: u32 = 50;
/// The audit log is rotated (one old file kept) when it reaches this size.
pub const AUDIT_LOG_MAX_BYTES: u64 = 16 * 1024 * 1024;

/// No chain is named unless the operator names one: a relay that says nothing about a chain
/// offers its pages no wallet, rather than one on a network the operator did not choose.
pub const CHAIN_NETWORK: &str = "none";
/// Mainnet stays off unless the operator turns it on: pages refuse real money by default.
pub const CHAIN_MAINNET: bool = false;
/// A bitcoind RPC call that takes longer than this is abandoned (a UTXO-set scan on regtest
/// takes milliseconds; on mainnet minutes, which is why the gateway is meant for regtest and
/// small chains).
pub const BITCOIND_RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest bitcoind answer read (a 4 MB transaction in hex and JSON around it).
pub const BITCOIND_RPC_MAX_ANSWER: usize = 16 * 1024 * 1024;
/// Mempool transactions the gateway inspects to add unconfirmed outputs to an address's list;
/// above this it answers 503 (Esplora's own servers index the mempool instead).
pub const GATEWAY_MAX_MEMPOOL: usize = 2_000;
/// (script, transaction) entries the gateway's address index holds (about 100 bytes each);
/// past it `/address/{addr}/txs` answers 503 and the operator points pages at an Esplora server.
pub const GATEWAY_MAX_INDEX_ENTRIES: usize = 2_000_000;
/// Blocks the address index takes in while answering one request; a longer catch-up (the first
/// request on a long chain) answers 503 with how far it got, and the next request goes on.
pub const GATEWAY_INDEX_BLOCKS_PER_REQUEST: u32 = 5_000;
/// Transactions of an address's history in one answer, as Esplora pages them: all the
/// mempool's up to 50, then 25 confirmed.
pub const GATEWAY_TXS_MEMPOOL_PAGE: usize = 50;
/// See [`GATEWAY_TXS_MEMPOOL_PAGE`].
pub const GATEWAY_TXS_CHAIN_PAGE: usize = 25;
/// The largest transaction a page may broadcast through the gateway, hex (a standard
/// transaction is at most 400,000 weight units, 100 kB).
pub const GATEWAY_MAX_TX_HEX: usize = 400_000;
/// Faucet calls per minute, all callers together: each mines blocks, which costs the regtest
/// chain its subsidy (it halves every 150 blocks).
pub const FAUCET_PER_MINUTE: u32 = 12;
/// Blocks a faucet call mines to the caller's address: 1 whose coinbase pays the caller, and
/// 100 more so that it is spendable at once (coinbase maturity).
pub const FAUCET_BLOCKS: u32 = 101;
/// Units of the faucet's test rune per call (1,000.00 at [`FAUCET_RUNE_DIVISIBILITY`]).
pub const FAUCET_RUNES: u128 = 100_000;
/// Decimal places of the faucet's test rune.
pub const FAUCET_RUNE_DIVISIBILITY: u8 = 2;
/// The test rune's symbol: the runic letter dagaz, for DarkSwap.
pub const FAUCET_RUNE_SYMBOL: char = '\u{16DE}';
/// The test rune's premine: ten million calls' worth.
pub const FAUCET_RUNE_PREMINE: u128 = FAUCET_RUNES * 10_000_000;
/// Fee rate of the faucet's own transactions, sat/vB (regtest has no fee market; above every
/// node's minimum relay fee).
pub const FAUCET_FEE_RATE: u64 = 2;

/// How often a relay re-signs its record (its addresses and load may have changed) and asks its
/// peer relays for the records they know. A relay that joins the network is known everywhere
/// after one period per hop of the relay mesh.
pub const RECORD_ANNOUNCE: Duration = Duration::from_secs(30);
/// How long others believe one of the relay's records: ten announce periods, so a relay missed
/// for a few rounds stays known, and a dead one is forgotten within minutes.
pub const RECORD_TTL: Duration = Duration::from_secs(300);
/// Most relay records a relay keeps (its own always among them).
pub const MAX_RELAY_RECORDS: usize = 256;
/// Record requests in flight on one connection: a peer relay asks once per announce period.
pub const RECORD_STREAMS_PER_CONNECTION: usize = 4;
/// Which relays that prove themselves become peer relays: `listed` (in `peers` or
/// `federation.relays`); `any` takes every relay whose signed record checks.
pub const FEDERATION_ACCEPT: &str = "listed";
