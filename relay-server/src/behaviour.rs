//! The relay's network behaviour: the ban list and connection limits first (so a banned or
//! over-limit connection is refused before any protocol runs), then circuit relay v2 (whose
//! reservations and circuits first pass the authorization [`Gate`]), identify, ping, the
//! directory, order gossip, book sync and authentication.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use darkswap_auth::{Operation, AUTH_PROTOCOL};
use darkswap_net::auth::AuthCodec;
use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::access::Access;
use crate::audit::Audit;
use crate::metrics::DenialLabels;

use darkswap_net::gossip::{gossipsub_behaviour, BookSyncCodec, GossipRole};
use darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL;
use darkswap_proto::{
    DirectoryRequest, DirectoryResponse, DIRECTORY_PROTOCOL, IDENTIFY_PROTOCOL_VERSION,
    MAX_DIRECTORY_REQUEST_BYTES, MAX_DIRECTORY_RESPONSE_BYTES,
};
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::request_response::{self, json, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{gossipsub, identify, identity, ping, relay, StreamProtocol};
use std::time::Duration;

use crate::config::Limits;
use crate::defaults;

pub type DirectoryCodec = json::codec::Codec<DirectoryRequest, DirectoryResponse>;

/// The authorization check on circuit relay v2's own path: a reservation or a circuit from a peer
/// below the level the permission table asks for is refused before libp2p-relay accepts it.
#[derive(Clone)]
pub struct Gate {
    pub access: Arc<Mutex<Access>>,
    pub audit: Arc<Audit>,
    pub denials: Family<DenialLabels, Counter>,
    /// Peers refused here and not yet seen in libp2p-relay's denial event (so that event is
    /// counted as "unauthorized", not as the status code libp2p-relay reports). Bounded.
    pub refused: Arc<Mutex<HashSet<PeerId>>>,
}

/// Most refused peers remembered between the check and libp2p-relay's event.
const MAX_REFUSED_REMEMBERED: usize = 1024;

impl Gate {
    pub fn check(&self, peer: PeerId, addr: &Multiaddr, op: Operation) -> bool {
        let now_ms = darkswap_net::unix_time_ms();
        // A poisoned lock cannot decide: refuse.
        let verdict = match self.access.lock() {
            Ok(access) => access.permits(&peer, op, now_ms),
            Err(_) => Err(darkswap_auth::Level::Anonymous),
        };
        match verdict {
            Ok(()) => true,
            Err(level) => {
                crate::auth::deny_with(&self.audit, &self.denials, &peer, Some(addr), op, level);
                if let Ok(mut refused) = self.refused.lock() {
                    if refused.len() >= MAX_REFUSED_REMEMBERED {
                        refused.clear();
                    }
                    refused.insert(peer);
                }
                false
            }
        }
    }

    /// Whether libp2p-relay's denial of `peer` was ours.
    pub fn take_refused(&self, peer: &PeerId) -> bool {
        self.refused.lock().is_ok_and(|mut r| r.remove(peer))
    }
}

#[derive(NetworkBehaviour)]
pub struct RelayBehaviour {
    pub blocked: allow_block_list::Behaviour<BlockedPeers>,
    pub limits: connection_limits::Behaviour,
    pub relay: relay::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub directory: request_response::Behaviour<DirectoryCodec>,
    pub gossip: gossipsub::Behaviour,
    pub book_sync: request_response::Behaviour<BookSyncCodec>,
    pub auth: request_response::Behaviour<AuthCodec>,
}

const MINUTE: Duration = Duration::from_secs(60);

impl RelayBehaviour {
    pub fn new(key: &identity::Keypair, limits: &Limits, gate: Gate) -> Result<Self, String> {
        let peer_id = key.public().to_peer_id();
        let reserve_gate = gate.clone();
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
            limits: connection_limits::Behaviour::new(connection_limits),
            relay: relay::Behaviour::new(peer_id, relay_config),
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.to_string(),
                key.public(),
            )),
            ping: ping::Behaviour::new(ping::Config::new().with_interval(defaults::PING_INTERVAL)),
            directory: request_response::Behaviour::with_codec(
                DirectoryCodec::default()
                    .set_request_size_maximum(MAX_DIRECTORY_REQUEST_BYTES)
                    .set_response_size_maximum(MAX_DIRECTORY_RESPONSE_BYTES),
                [(
                    StreamProtocol::new(DIRECTORY_PROTOCOL),
                    ProtocolSupport::Inbound,
                )],
                request_response::Config::default(),
            ),
            gossip: gossipsub_behaviour(GossipRole::Relay)?,
            book_sync: request_response::Behaviour::with_codec(
                BookSyncCodec::default(),
                [(
                    StreamProtocol::new(BOOK_SYNC_PROTOCOL),
                    ProtocolSupport::Inbound,
                )],
                request_response::Config::default().with_max_concurrent_streams(256),
            ),
            auth: request_response::Behaviour::with_codec(
                AuthCodec::default(),
                [(StreamProtocol::new(AUTH_PROTOCOL), ProtocolSupport::Inbound)],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(64),
            ),
        })
    }
}
