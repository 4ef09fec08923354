//! The relay's network behaviour: the ban list and connection limits first (so a banned or
//! over-limit connection is refused before any protocol runs), then circuit relay v2 (whose
//! reservations and circuits first pass the authorization [`Gate`]), identify, ping, the
//! directory, order gossip, book sync and authentication.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use darkswap_auth::wire::AuthCodec;
use darkswap_auth::{Operation, AUTH_PROTOCOL};
use libp2p::allow_block_list::{self, BlockedPeers};
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::access::Access;
use crate::audit::Audit;
use crate::metrics::DenialLabels;

use darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL;
use darkswap_proto::frame::BookSyncCodec;
use darkswap_proto::gossip::{gossipsub_behaviour, GossipRole};
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
    /// Whether `peer` may do `op` now; a refusal is counted (by operation and the level the
    /// peer had) and audited. A poisoned lock cannot decide: refused.
    pub fn verdict(&self, peer: &PeerId, addr: Option<&Multiaddr>, op: Operation) -> bool {
        let now_ms = darkswap_proto::unix_time_ms();
        let verdict = match self.access.lock() {
            Ok(access) => access.permits(peer, op, now_ms),
            Err(_) => Err(darkswap_auth::Level::Anonymous),
        };
        match verdict {
            Ok(()) => true,
            Err(level) => {
                crate::auth::deny(&self.audit, &self.denials, peer, addr, op, level);
                false
            }
        }
    }

    /// Whether `peer` may do `op`, without counting a refusal (a question, not a request).
    pub fn allows(&self, peer: &PeerId, op: Operation) -> bool {
        self.access
            .lock()
            .is_ok_and(|a| a.permits(peer, op, darkswap_proto::unix_time_ms()).is_ok())
    }

    /// [`Gate::verdict`] for libp2p-relay's own checks, remembering our refusals so that
    /// libp2p-relay's denial event is counted as "unauthorized".
    pub fn check(&self, peer: PeerId, addr: &Multiaddr, op: Operation) -> bool {
        if self.verdict(&peer, Some(addr), op) {
            return true;
        }
        if let Ok(mut refused) = self.refused.lock() {
            if refused.len() >= MAX_REFUSED_REMEMBERED {
                refused.clear();
            }
            refused.insert(peer);
        }
        false
    }

    /// The reason label of libp2p-relay's denial of `peer`: ours, or its status code.
    pub fn denial_reason(&self, peer: &PeerId, status: libp2p::relay::StatusCode) -> &'static str {
        if self.take_refused(peer) {
            "unauthorized"
        } else {
            crate::server::status_reason(status)
        }
    }

    /// Whether libp2p-relay's denial of `peer` was ours.
    fn take_refused(&self, peer: &PeerId) -> bool {
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
    pub fn new(
        key: &identity::Keypair,
        limits: &Limits,
        gate: Gate,
    ) -> Result<Self, darkswap_proto::gossip::GossipConfigError> {
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
