//! The relay's network behaviour: the ban list, the per-address caps and connection limits first (so a banned or
//! over-limit connection is refused before any protocol runs), then circuit relay v2 (whose
//! reservations and circuits first pass the authorization gate, `gate.rs`), identify, ping, the
//! directory, order gossip, book sync and authentication.

use darkswap_auth::{Operation, AUTH_PROTOCOL};
use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::{Multiaddr, PeerId};

use crate::gate::Gate;

use darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL;
use darkswap_proto::codecs::{AuthCodec, BookSyncCodec, DirectoryCodec, RelayRecordsCodec};
use darkswap_proto::gossip::{gossipsub_behaviour, Gossip, GossipRole};
use darkswap_proto::relay_record::RELAY_RECORDS_PROTOCOL;
use darkswap_proto::{DIRECTORY_PROTOCOL, IDENTIFY_PROTOCOL_VERSION};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, identity, ping, relay, StreamProtocol};
use std::time::Duration;

use crate::config::Limits;
use crate::conn_caps::{CapsConfig, ConnCaps};
use crate::defaults;
use crate::metrics::RelayMetrics;

#[derive(NetworkBehaviour)]
pub struct RelayBehaviour {
    pub blocked: allow_block_list::Behaviour<BlockedPeers>,
    // First of the connection checks. (With `limits` first, a newcomer it refused could not
    // cost an older anonymous connection its place, but 1,000 clients took 2.8-3.1 s to
    // reserve instead of 2.4-2.5 s in `scripts/bench-relay`; an anonymous connection past its
    // grace closed for nothing is the cheaper price.)
    pub caps: ConnCaps,
    pub limits: connection_limits::Behaviour,
    pub relay: relay::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub directory: request_response::Behaviour<DirectoryCodec>,
    pub gossip: Gossip,
    pub book_sync: request_response::Behaviour<BookSyncCodec>,
    pub auth: request_response::Behaviour<AuthCodec>,
    /// Both ways: peers ask for the records this relay knows; it asks its peer relays.
    pub records: request_response::Behaviour<RelayRecordsCodec>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl RelayBehaviour {
    pub fn new(
        key: &identity::Keypair,
        limits: &Limits,
        gate: Gate,
        metrics: &RelayMetrics,
    ) -> Result<Self, darkswap_proto::gossip::GossipConfigError> {
        let peer_id = key.public().to_peer_id();
        let reserve_gate = gate.clone();
        let caps_gate = gate.clone();
        let circuit_gate = gate;
        // The authorization checks run first: a refused request spends no rate-limit token.
        let reservation_rate_limiters: Vec<Box<dyn relay::RateLimiter>> = vec![Box::new(
            move |peer: PeerId, addr: &Multiaddr, _: web_time::Instant| {
                reserve_gate.check(peer, addr, Operation::Reserve)
            },
        )];
        let circuit_src_rate_limiters: Vec<Box<dyn relay::RateLimiter>> = vec![Box::new(
            move |peer: PeerId, addr: &Multiaddr, _: web_time::Instant| {
                circuit_gate.check(peer, addr, Operation::OpenCircuit)
            },
        )];
        let relay_config = relay::Config {
            max_reservations: limits.max_reservations,
            max_reservations_per_peer: limits.max_reservations_per_peer,
            reservation_duration: limits.reservation_duration,
            max_circuits: limits.max_circuits,
            max_circuits_per_peer: limits.max_circuits_per_peer,
            max_circuit_duration: limits.max_circuit_duration,
            max_circuit_bytes: limits.max_circuit_bytes,
            reservation_rate_limiters,
            circuit_src_rate_limiters,
        }
        .reservation_rate_per_peer(limits.reservation_rate_per_peer, MINUTE)
        .reservation_rate_per_ip(limits.reservation_rate_per_ip, MINUTE)
        .circuit_src_per_peer(limits.circuit_rate_per_peer, MINUTE)
        .circuit_src_per_ip(limits.circuit_rate_per_ip, MINUTE);
        let connection_limits = ConnectionLimits::default()
            .with_max_established(Some(limits.max_connections))
            .with_max_established_per_peer(Some(limits.max_connections_per_peer))
            .with_max_pending_incoming(Some(defaults::MAX_PENDING_INCOMING));
        Ok(Self {
            blocked: allow_block_list::Behaviour::default(),
            caps: ConnCaps::new(
                CapsConfig {
                    pending_per_ip: limits.max_pending_per_ip,
                    pending_stream: defaults::MAX_PENDING_STREAM,
                    pending_stream_light: limits.pending_kept_for_new_addresses,
                    pending_webrtc: defaults::MAX_PENDING_WEBRTC,
                    established_per_ip: limits.max_connections_per_ip,
                    established_total: limits.max_connections,
                    established_kept: limits.connections_kept_for_authenticated,
                    anonymous_grace_ms: u64::try_from(limits.anonymous_grace.as_millis())
                        .unwrap_or(u64::MAX),
                    anonymous_per_ip: limits.max_anonymous_per_ip,
                },
                (
                    metrics.handshakes_pending.clone(),
                    metrics.anonymous_connections.clone(),
                ),
                caps_gate,
                metrics.anonymous_evicted.clone(),
            ),
            limits: connection_limits::Behaviour::new(connection_limits),
            relay: relay::Behaviour::new(peer_id, relay_config),
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.to_string(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(defaults::PING_INTERVAL)),
            directory: request_response::Behaviour::with_codec(
                DirectoryCodec::counting(metrics.unreadable_counter("directory")),
                [(
                    StreamProtocol::new(DIRECTORY_PROTOCOL),
                    ProtocolSupport::Inbound,
                )],
                request_response::Config::default(),
            ),
            gossip: gossipsub_behaviour(GossipRole::Relay)?,
            book_sync: request_response::Behaviour::with_codec(
                BookSyncCodec::counting(metrics.unreadable_counter("book_sync")),
                // Outbound too: the relay pulls makers' orders from its peer relays
                // (`book_repair`).
                [(
                    StreamProtocol::new(BOOK_SYNC_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(defaults::BOOK_SYNC_STREAMS_PER_CONNECTION),
            ),
            auth: request_response::Behaviour::with_codec(
                AuthCodec::counting(metrics.unreadable_counter("auth")),
                // Outbound too: the relay proves itself to its configured peer relays.
                [(StreamProtocol::new(AUTH_PROTOCOL), ProtocolSupport::Full)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            ),
            records: request_response::Behaviour::with_codec(
                RelayRecordsCodec::counting(metrics.unreadable_counter("relay_records")),
                [(
                    StreamProtocol::new(RELAY_RECORDS_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(defaults::RECORD_STREAMS_PER_CONNECTION),
            ),
        })
    }
}
