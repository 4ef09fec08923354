//! The relay as a library: [`Server::spawn`] loads the identity, builds the swarm, opens the
//! listeners and the HTTP server, and runs the event loop that turns swarm events into metrics,
//! directory entries and the relay-info document, until [`Server::shutdown`].

use std::collections::HashMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use darkswap_proto::addr::TransportKind;
use darkswap_proto::relay_record::{RelayRecordsRequest, RelayRecordsResponse};
use darkswap_proto::RelayInfo;
use futures::StreamExt;
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::metrics::Recorder;
use libp2p::request_response;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, ListenError, SwarmEvent};
use libp2p::{relay, Multiaddr, PeerId, Swarm};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use web_time::Instant;

use crate::access::{Access, AccessError};
use crate::audit::Audit;
use crate::auth::{AuthService, Effect, Origin};
use crate::behaviour::{RelayBehaviour, RelayBehaviourEvent};
use crate::config::Config;
use crate::defaults;
use crate::directory::Directory;
use crate::federation::Federation;
use crate::gate::Gate;
use crate::http::{Health, HttpState};
use crate::http_listener::{HttpCounters, HttpLimits};
use crate::identity::{self, IdentityError};
use crate::metrics::{ConnectionLabels, Direction, RelayMetrics, Transport, TransportLabels};
use crate::orders::OrderGossip;
use crate::swarm::{build_swarm, listen_addrs, with_certhash, BuildError};
use darkswap_auth::{Level, Operation};
use libp2p::swarm::ConnectionId;

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("cannot bind HTTP listener on {addr}: {source}")]
    BindHttp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: Multiaddr,
        source: libp2p::TransportError<std::io::Error>,
    },
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error("chain gateway: {0}")]
    Chain(#[source] crate::bitcoind_rpc::RpcError),
}

/// A running relay: its event loop and its HTTP server run on the tokio runtime until
/// [`Server::shutdown`].
pub struct Server {
    peer_id: PeerId,
    http_addr: SocketAddr,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// The relay's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where the HTTP listener (web app, `/metrics`, `/health`, `/api/relay-info`) is bound.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops the relay: the event loop ends, open connections close, the HTTP server finishes
    /// the requests it is answering.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
        tracing::info!("stopped");
    }

    /// Loads (or creates) the identity, binds every listener and starts the relay. Every way it
    /// can fail at start is a [`SpawnError`]; after this returns, the relay runs.
    pub async fn spawn(config: Config) -> Result<Server, SpawnError> {
        let identity = identity::load_or_create(&config.data_dir)?;
        let record_key = identity.keypair.clone();
        let peer_id = identity.keypair.public().to_peer_id();
        let certhash = identity.certificate.fingerprint().to_multihash();

        let http_addr = SocketAddr::new(config.listen_ip, config.http_port);
        let bind_error = |source| SpawnError::BindHttp {
            addr: http_addr,
            source,
        };
        let http_listener = TcpListener::bind(http_addr).await.map_err(bind_error)?;
        let http_addr = http_listener.local_addr().map_err(bind_error)?;

        let mut registry = Registry::default();
        // With metrics off (an operator's choice, and the baseline of the overhead benchmark)
        // nothing is recorded per event or per byte, and /metrics says it is disabled.
        let libp2p_metrics = config
            .metrics
            .then(|| libp2p::metrics::Metrics::new(&mut registry));
        let metrics = RelayMetrics::register(&mut registry);
        if config.metrics {
            registry.register_collector(Box::new(crate::process_metrics::ProcessCollector::new()));
        }
        let peer_relays: HashMap<PeerId, Multiaddr> = config
            .peers
            .iter()
            .filter_map(|a| {
                Some((
                    darkswap_proto::addr::relay_peer_id(std::slice::from_ref(a)).ok()?,
                    a.clone(),
                ))
            })
            .collect();
        let access = Arc::new(std::sync::Mutex::new(
            Access::load(
                config.auth.clone(),
                peer_relays.keys().copied().collect(),
                &config.data_dir,
            )?
            .federate(
                config.federation.relays.iter().copied(),
                config.federation.accept_any,
            ),
        ));
        let audit = Arc::new(Audit::open(
            &config.data_dir,
            metrics.audit_events_dropped.clone(),
        ));
        let gate = Gate {
            access: access.clone(),
            audit: audit.clone(),
            denials: metrics.auth_denials.clone(),
            refused: Arc::default(),
        };
        let auth = AuthService::new(
            &config.auth,
            identity.keypair.clone(),
            access.clone(),
            audit.clone(),
            config.limits.market.announced(),
        );
        let mdns = config
            .webrtc_block_mdns
            .then(crate::mdns_guard::MdnsGuard::hold);
        let blocked = mdns.as_ref().is_some_and(|m| m.blocks());
        if config.webrtc_block_mdns && !blocked {
            tracing::warn!("webrtc_block_mdns is on, but another program holds 224.0.0.251:5353 with address reuse (an mDNS daemon?): every failed WebRTC-direct handshake will leave a socket open (libp2p-webrtc); stop that program or watch the relay's file descriptors");
        }
        metrics.webrtc_mdns_blocked.set(i64::from(blocked));
        let mut swarm =
            build_swarm(identity, &config, &mut registry, gate.clone(), &metrics).await?;
        let banned = access.lock().map(|a| a.banned()).unwrap_or_default();
        metrics.banned_peers.set(banned.len() as i64);
        for peer in banned {
            swarm.behaviour_mut().blocked.block_peer(peer);
        }

        let mut listeners: HashMap<ListenerId, Vec<Multiaddr>> = HashMap::new();
        for addr in listen_addrs(&config) {
            let id = swarm
                .listen_on(addr.clone())
                .map_err(|source| SpawnError::Listen { addr, source })?;
            listeners.insert(id, Vec::new());
        }
        for addr in &config.external_addrs {
            swarm.add_external_address(with_certhash(addr, &certhash));
        }

        let state = Arc::new(HttpState {
            metrics_enabled: config.metrics,
            registry,
            relay_info: RwLock::new(RelayInfo {
                peer_id: peer_id.to_base58(),
                addrs: Vec::new(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                limits: Some(config.limits.market.announced()),
                chain: config
                    .chain
                    .network
                    .map(|network| darkswap_proto::ChainInfo {
                        network: network.as_str().to_string(),
                        esplora: config.chain.esplora_url.clone(),
                        ord: config.chain.ord_url.clone(),
                        faucet: config.chain.faucet,
                    }),
                records: Vec::new(),
            }),
            health: RwLock::new(Health {
                status: "starting",
                peer_id: peer_id.to_base58(),
                uptime_secs: 0,
                connections: 0,
                reservations: 0,
            }),
        });
        if !config.web_dir.join("index.html").is_file() {
            tracing::warn!(web_dir = %config.web_dir.display(), "web app not found; serving an explanation instead (build it with `trunk build --release`)");
        }
        let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
        let mut router = crate::http::router(state.clone(), &config.web_dir);
        if let (Some((url, user, password)), Some(network)) =
            (&config.chain.bitcoind, config.chain.network)
        {
            let rpc =
                crate::bitcoind_rpc::Rpc::new(url, user, password).map_err(SpawnError::Chain)?;
            let gateway = crate::chain_gateway::Gateway::new(
                rpc,
                network,
                config.chain.faucet,
                metrics.chain_gateway_requests.clone(),
            );
            // The gateway's routes first: the web app's fallback serves every other path.
            router = crate::chain_gateway::router(std::sync::Arc::new(gateway)).merge(router);
        }
        let http_limits = HttpLimits {
            per_ip: config.limits.http_max_connections_per_ip,
            total: config.limits.http_max_connections,
            header_timeout: config.limits.http_header_timeout,
            write_stall: config.limits.http_write_stall,
        };
        let http_task = tokio::spawn(crate::http_listener::serve(
            http_listener,
            router,
            http_limits,
            HttpCounters::of(&metrics),
            shutdown_rx.clone(),
        ));
        let orders = OrderGossip::new(&config.limits);
        metrics.peer_relays_configured.set(peer_relays.len() as i64);
        let federation = Federation::new(
            record_key,
            peer_relays,
            &config.federation,
            crate::federation::auth_methods(&config.auth),
            config.limits.market.announced(),
            defaults::MAX_RELAY_RECORDS,
        );
        let auth_deadline = crate::auth_deadline::AuthDeadline::new(
            config.limits.auth_deadline.as_millis() as u64,
            4 * config.limits.max_connections as usize,
        );
        let loop_state = LoopState {
            peer_id,
            config,
            metrics,
            libp2p_metrics,
            directory: Directory::default(),
            open_circuits: HashMap::new(),
            listeners,
            http_addr,
            ready: false,
            connections: 0,
            state,
            orders,
            federation,
            resetting: std::collections::HashSet::new(),
            auth,
            gate,
            conn_addrs: HashMap::new(),
            auth_deadline,
            lapsed: std::collections::HashSet::new(),
        };
        let task = tokio::spawn(async move {
            // Held for as long as the relay runs.
            let _mdns = mdns;
            run_loop(swarm, loop_state, shutdown_rx).await;
            let _ = http_task.await;
        });
        Ok(Server {
            peer_id,
            http_addr,
            shutdown: shutdown_tx,
            task,
        })
    }
}

/// The event loop, until the shutdown signal.
async fn run_loop(
    mut swarm: Swarm<RelayBehaviour>,
    mut loop_state: LoopState,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let started = Instant::now();
    let ready_deadline = tokio::time::sleep(defaults::READY_TIMEOUT);
    tokio::pin!(ready_deadline);
    let mut health_tick = tokio::time::interval(Duration::from_secs(1));
    let mut orders_tick = tokio::time::interval(crate::orders::TICK);
    let mut peer_tick = tokio::time::interval(defaults::PEER_REDIAL_INTERVAL);
    let mut record_tick = tokio::time::interval(loop_state.config.federation.announce);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => loop_state.on_event(&mut swarm, event),
            _ = shutdown.changed() => break,
            _ = &mut ready_deadline, if !loop_state.ready => {
                tracing::warn!("not every listener reported an address within {:?}", defaults::READY_TIMEOUT);
                loop_state.announce_ready();
            }
            _ = health_tick.tick() => {
                loop_state.update_health(started);
                loop_state.update_auth(&swarm);
                loop_state.drop_lapsed(&mut swarm);
                swarm.behaviour_mut().caps.recheck();
            }
            _ = orders_tick.tick() => {
                let now_ms = darkswap_proto::unix_time_ms();
                loop_state.orders.tick(
                    &mut swarm.behaviour_mut().gossip,
                    &loop_state.metrics,
                    now_ms,
                );
                for peer in loop_state.auth_deadline.due(now_ms) {
                    loop_state.drop_if_below_publishing(&mut swarm, peer);
                }
            }
            _ = peer_tick.tick() => loop_state.dial_peer_relays(&mut swarm),
            // The first tick, at once, waits for the listeners: a record needs addresses.
            _ = record_tick.tick(), if loop_state.ready => loop_state.announce_record(&mut swarm),
        }
    }
}

/// The metrics label for the transport an address names (one classification, in darkswap-net).
fn transport_of(addr: &Multiaddr) -> Transport {
    match darkswap_proto::addr::transport_kind(addr) {
        TransportKind::Tcp => Transport::tcp,
        TransportKind::WebSocket => Transport::websocket,
        TransportKind::WebRtcDirect => Transport::webrtc_direct,
        TransportKind::Relayed | TransportKind::Other => Transport::other,
    }
}

fn endpoint_labels(endpoint: &ConnectedPoint) -> ConnectionLabels {
    match endpoint {
        ConnectedPoint::Dialer { address, .. } => ConnectionLabels {
            transport: transport_of(address),
            direction: Direction::outbound,
        },
        ConnectedPoint::Listener { local_addr, .. } => ConnectionLabels {
            transport: transport_of(local_addr),
            direction: Direction::inbound,
        },
    }
}

struct LoopState {
    peer_id: PeerId,
    config: Config,
    metrics: RelayMetrics,
    libp2p_metrics: Option<libp2p::metrics::Metrics>,
    directory: Directory,
    /// When each open circuit started, per (source, destination); bounded by the relay's
    /// circuit limit, since only accepted circuits are entered.
    open_circuits: HashMap<(PeerId, PeerId), Vec<Instant>>,
    listeners: HashMap<ListenerId, Vec<Multiaddr>>,
    http_addr: SocketAddr,
    ready: bool,
    connections: u64,
    state: Arc<HttpState>,
    orders: OrderGossip,
    /// This relay's record, the records its peer relays know, and which peers are peer relays.
    federation: Federation,
    /// Peers being reset after a duplicate connection, until all their connections are closed
    /// (bounded: beyond the cap a duplicate is left alone rather than tracked).
    resetting: std::collections::HashSet<PeerId>,
    auth: AuthService,
    gate: Gate,
    /// The remote address of every open connection (bounded by the connection limit).
    conn_addrs: HashMap<ConnectionId, Multiaddr>,
    /// Peers to drop if still below publishing when their time to authenticate is up.
    auth_deadline: crate::auth_deadline::AuthDeadline,
    /// Peers disconnected for a lapsed grant whose connections are not all closed yet (bounded
    /// by the reservations and circuits they held).
    lapsed: std::collections::HashSet<PeerId>,
}

impl LoopState {
    fn on_event(
        &mut self,
        swarm: &mut Swarm<RelayBehaviour>,
        event: SwarmEvent<RelayBehaviourEvent>,
    ) {
        if let Some(m) = &self.libp2p_metrics {
            m.record(&event);
        }
        match event {
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                if self.config.external_addrs.is_empty() {
                    swarm.add_external_address(address.clone());
                }
                if let Some(addrs) = self.listeners.get_mut(&listener_id) {
                    addrs.push(address);
                }
                self.publish_addrs(swarm);
                if !self.ready && self.listeners.values().all(|a| !a.is_empty()) {
                    self.announce_ready();
                }
            }
            SwarmEvent::ExpiredListenAddr {
                listener_id,
                address,
            } => {
                if self.config.external_addrs.is_empty() {
                    swarm.remove_external_address(&address);
                }
                if let Some(addrs) = self.listeners.get_mut(&listener_id) {
                    addrs.retain(|a| *a != address);
                }
                self.publish_addrs(swarm);
            }
            SwarmEvent::ListenerClosed {
                addresses, reason, ..
            } => {
                tracing::error!(?addresses, ?reason, "listener closed");
            }
            SwarmEvent::ListenerError { error, .. } => {
                tracing::error!("listener error: {error}");
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.conn_addrs
                    .insert(connection_id, endpoint.get_remote_address().clone());
                if num_established.get() == 1 {
                    self.orders.peer_connected(
                        peer_id,
                        darkswap_proto::addr::limit_key(Some(endpoint.get_remote_address())),
                    );
                    let now_ms = darkswap_proto::unix_time_ms();
                    if let Some(early) = self.auth_deadline.connected(peer_id, now_ms) {
                        self.drop_if_below_publishing(swarm, early);
                    }
                }
                if self.federation.is_configured(&peer_id) {
                    self.count_peer_relays(swarm);
                    if num_established.get() == 1 {
                        // A peer relay (back) in reach: prove ourselves to it, and learn what
                        // it knows now, not a period later.
                        self.prove_to(swarm, peer_id);
                        swarm
                            .behaviour_mut()
                            .records
                            .send_request(&peer_id, RelayRecordsRequest {});
                    }
                } else if num_established.get() > 1 || self.resetting.contains(&peer_id) {
                    // A trader never opens a second connection to us on purpose: this one comes
                    // from a restarted client (a reloaded page) while the old one is not yet
                    // known dead (WebRTC has no FIN). Gossipsub keeps one message queue per
                    // peer and announces subscriptions only on a peer's first connection, so
                    // the new session would be half-deaf. Reset the peer, and refuse it until
                    // every old connection is gone: its next connection then starts clean.
                    if self.resetting.len() < defaults::MAX_PENDING_INCOMING as usize {
                        if self.resetting.insert(peer_id) {
                            self.metrics.duplicate_connections_reset.inc();
                        }
                        swarm.disconnect_peer_id(peer_id).ok();
                    }
                }
                let labels = endpoint_labels(&endpoint);
                self.metrics.connections_opened.get_or_create(&labels).inc();
                self.metrics
                    .connections_active
                    .get_or_create(&TransportLabels {
                        transport: labels.transport,
                    })
                    .inc();
                self.connections += 1;
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                self.conn_addrs.remove(&connection_id);
                let transport = endpoint_labels(&endpoint).transport;
                let labels = TransportLabels { transport };
                self.metrics.connections_closed.get_or_create(&labels).inc();
                self.metrics.connections_active.get_or_create(&labels).dec();
                self.connections = self.connections.saturating_sub(1);
                if num_established == 0 {
                    if let Ok(mut access) = self.gate.access.lock() {
                        access.forget(&peer_id);
                    }
                    self.federation.gone(&peer_id);
                    self.auth.peer_gone(&peer_id);
                    self.resetting.remove(&peer_id);
                    self.directory.remove(&peer_id);
                    self.orders.peer_disconnected(&peer_id);
                    self.count_peer_relays(swarm);
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                let reason = match error {
                    ListenError::Denied { cause }
                        if cause
                            .downcast_ref::<libp2p::allow_block_list::Blocked>()
                            .is_some() =>
                    {
                        "banned"
                    }
                    ListenError::Denied { cause } => cause
                        .downcast_ref::<crate::conn_caps::Refused>()
                        .map_or("connection_limit", |r| r.label()),
                    ListenError::Aborted => "aborted",
                    ListenError::WrongPeerId { .. } | ListenError::LocalPeerId { .. } => {
                        "wrong_peer_id"
                    }
                    ListenError::Transport(_) => "handshake_failed",
                };
                self.metrics
                    .connections_denied
                    .get_or_create(&RelayMetrics::reason(reason))
                    .inc();
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } if self.federation.is_configured(&peer) => {
                let reason = dial_failure(&error);
                tracing::debug!(%peer, reason, "cannot reach peer relay: {error}");
                self.metrics
                    .peer_relay_dial_failures
                    .get_or_create(&RelayMetrics::reason(reason))
                    .inc();
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(swarm, event),
            _ => {}
        }
    }

    fn on_behaviour_event(
        &mut self,
        swarm: &mut Swarm<RelayBehaviour>,
        event: RelayBehaviourEvent,
    ) {
        match event {
            RelayBehaviourEvent::Relay(event) => {
                if let Some(m) = &self.libp2p_metrics {
                    m.record(&event);
                }
                self.on_relay_event(event);
            }
            RelayBehaviourEvent::Identify(event) => {
                if let Some(m) = &self.libp2p_metrics {
                    m.record(&event);
                }
            }
            RelayBehaviourEvent::Ping(event) => {
                if let Some(m) = &self.libp2p_metrics {
                    m.record(&event);
                }
                // A link to a peer relay whose ping got no answer has stalled (a partition, a
                // cut cable): TCP would resume it only at its next retransmission, up to
                // minutes after the path is back, while a new connection works at once. So it
                // is closed, and dialed again (if we list the peer relay) or dialed by it. Only
                // a timeout says so: a peer that does not speak ping is not stalled.
                if matches!(event.result, Err(libp2p::ping::Failure::Timeout))
                    && self.federation.is_peer_relay(&event.peer)
                {
                    self.metrics.peer_relay_links_stalled.inc();
                    swarm.close_connection(event.connection);
                }
            }
            RelayBehaviourEvent::Directory(request_response::Event::Message {
                peer,
                connection_id,
                message: request_response::Message::Request { channel, .. },
            }) => {
                if !self.permitted(&peer, connection_id, Operation::ReadDirectory) {
                    // Dropping the channel refuses the request.
                    return;
                }
                self.metrics.directory_requests.inc();
                // The requester may be gone already; nothing to do then.
                let _ = swarm
                    .behaviour_mut()
                    .directory
                    .send_response(channel, self.directory.response());
            }
            RelayBehaviourEvent::Gossip(event) => {
                let now_ms = darkswap_proto::unix_time_ms();
                let (gate, federation) = (&self.gate, &self.federation);
                let cut = self.orders.on_gossip_event(
                    &mut swarm.behaviour_mut().gossip,
                    event,
                    &self.metrics,
                    now_ms,
                    |peer, audit| standing(gate, federation, peer, audit),
                );
                cut_off(swarm, cut);
                self.send_repairs(swarm);
            }
            RelayBehaviourEvent::Auth(request_response::Event::Message {
                peer,
                connection_id,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            }) => {
                let origin = Origin {
                    peer,
                    addr: self.conn_addrs.get(&connection_id),
                };
                let (response, effect) = self.auth.handle(
                    &origin,
                    request,
                    &self.metrics,
                    darkswap_proto::unix_time_ms(),
                );
                let _ = swarm.behaviour_mut().auth.send_response(channel, response);
                // A peer that proved itself frees its address's anonymous place at once.
                swarm.behaviour_mut().caps.granted(&peer);
                match effect {
                    // Closes the peer's connections at once and refuses new ones.
                    Effect::Block(target) => {
                        swarm.behaviour_mut().blocked.block_peer(target);
                    }
                    Effect::Unblock(target) => {
                        swarm.behaviour_mut().blocked.unblock_peer(target);
                    }
                    // A relay that proved itself: a peer relay before its standing is taken
                    // below, and asked for the records it knows.
                    Effect::Federated(relay, record) => {
                        let now_ms = darkswap_proto::unix_time_ms();
                        self.federation
                            .proven(relay, &record, &self.metrics, now_ms);
                        self.publish_records(now_ms);
                        self.count_peer_relays(swarm);
                        swarm
                            .behaviour_mut()
                            .records
                            .send_request(&relay, RelayRecordsRequest {});
                    }
                    Effect::None => {}
                }
                // A grant (or its loss) changes which of the peer's pairs the relay follows.
                let now = standing(&self.gate, &self.federation, &peer, false);
                let cut = self.orders.reclassify(
                    &mut swarm.behaviour_mut().gossip,
                    peer,
                    now,
                    &self.metrics,
                );
                cut_off(swarm, cut);
            }
            // The answers to our own proofs to configured peer relays.
            RelayBehaviourEvent::Auth(request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            }) => {
                let now_ms = darkswap_proto::unix_time_ms();
                if let Some(next) =
                    self.federation
                        .on_proof_response(&peer, response, &self.metrics, now_ms)
                {
                    swarm.behaviour_mut().auth.send_request(&peer, next);
                }
            }
            RelayBehaviourEvent::Auth(request_response::Event::OutboundFailure {
                peer, ..
            }) => self.federation.on_proof_failure(&peer, &self.metrics),
            RelayBehaviourEvent::BookSync(request_response::Event::Message {
                peer,
                connection_id,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            }) => {
                let ip = darkswap_proto::addr::limit_key(self.conn_addrs.get(&connection_id));
                // Peer relays repairing their books (and trusted peers) are not rationed.
                let unlimited = standing(&self.gate, &self.federation, &peer, false).unlimited();
                let response = self.orders.book_sync(
                    peer,
                    ip,
                    &request,
                    &self.metrics,
                    darkswap_proto::unix_time_ms(),
                    unlimited,
                );
                let _ = swarm
                    .behaviour_mut()
                    .book_sync
                    .send_response(channel, response);
            }
            // Answers to our pulls of makers' orders from peer relays.
            RelayBehaviourEvent::BookSync(request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            }) => {
                self.orders.repaired(
                    &mut swarm.behaviour_mut().gossip,
                    &request_id,
                    response,
                    &self.metrics,
                    darkswap_proto::unix_time_ms(),
                );
                self.send_repairs(swarm);
            }
            RelayBehaviourEvent::BookSync(request_response::Event::OutboundFailure {
                request_id,
                error,
                ..
            }) => {
                let why = match error {
                    request_response::OutboundFailure::Timeout => "timeout",
                    request_response::OutboundFailure::DialFailure => "unreachable",
                    request_response::OutboundFailure::ConnectionClosed => "closed",
                    _ => "stream_failed",
                };
                self.orders.repair_failed(
                    &mut swarm.behaviour_mut().gossip,
                    &request_id,
                    why,
                    &self.metrics,
                );
                self.send_repairs(swarm);
            }
            RelayBehaviourEvent::BookSync(request_response::Event::InboundFailure { .. }) => {
                self.metrics
                    .book_sync_requests
                    .get_or_create(&crate::metrics::OutcomeLabels {
                        outcome: "refused".into(),
                    })
                    .inc();
            }
            RelayBehaviourEvent::Records(event) => self.on_records(swarm, event),
            RelayBehaviourEvent::BookSync(_)
            | RelayBehaviourEvent::Directory(_)
            | RelayBehaviourEvent::Auth(_)
            | RelayBehaviourEvent::Blocked(_)
            | RelayBehaviourEvent::Limits(_) => {}
        }
    }

    fn on_relay_event(&mut self, event: relay::Event) {
        let m = &self.metrics;
        #[allow(deprecated)]
        match event {
            relay::Event::ReservationReqAccepted {
                src_peer_id,
                renewed,
            } => {
                if renewed {
                    m.reservations_renewed.inc();
                } else {
                    m.reservations_accepted.inc();
                }
                self.directory.reserved(src_peer_id);
            }
            relay::Event::ReservationReqDenied {
                src_peer_id,
                status,
            } => {
                let reason = self.gate.denial_reason(&src_peer_id, status);
                m.reservations_denied
                    .get_or_create(&RelayMetrics::reason(reason))
                    .inc();
            }
            relay::Event::ReservationReqAcceptFailed { .. } => {
                m.reservations_denied
                    .get_or_create(&RelayMetrics::reason("accept_failed"))
                    .inc();
            }
            relay::Event::ReservationClosed { src_peer_id } => {
                m.reservations_ended
                    .get_or_create(&RelayMetrics::reason("closed"))
                    .inc();
                self.directory.remove(&src_peer_id);
            }
            relay::Event::ReservationTimedOut { src_peer_id } => {
                m.reservations_ended
                    .get_or_create(&RelayMetrics::reason("timed_out"))
                    .inc();
                self.directory.remove(&src_peer_id);
            }
            relay::Event::CircuitReqAccepted {
                src_peer_id,
                dst_peer_id,
            } => {
                m.circuits_accepted.inc();
                m.circuits_active.inc();
                self.open_circuits
                    .entry((src_peer_id, dst_peer_id))
                    .or_default()
                    .push(Instant::now());
            }
            relay::Event::CircuitReqDenied {
                src_peer_id,
                status,
                ..
            } => {
                let reason = self.gate.denial_reason(&src_peer_id, status);
                m.circuits_denied
                    .get_or_create(&RelayMetrics::reason(reason))
                    .inc();
            }
            relay::Event::CircuitReqOutboundConnectFailed { .. } => {
                m.circuits_denied
                    .get_or_create(&RelayMetrics::reason("destination_unreachable"))
                    .inc();
            }
            relay::Event::CircuitReqAcceptFailed { .. } => {
                m.circuits_denied
                    .get_or_create(&RelayMetrics::reason("accept_failed"))
                    .inc();
            }
            relay::Event::CircuitClosed {
                src_peer_id,
                dst_peer_id,
                error,
            } => {
                m.circuits_active.dec();
                let key = (src_peer_id, dst_peer_id);
                if let Some(started) = self.open_circuits.get_mut(&key) {
                    if !started.is_empty() {
                        m.circuit_duration
                            .observe(started.remove(0).elapsed().as_secs_f64());
                    }
                    if started.is_empty() {
                        self.open_circuits.remove(&key);
                    }
                }
                let reason = if error.is_some() { "error" } else { "ok" };
                m.circuits_closed
                    .get_or_create(&RelayMetrics::reason(reason))
                    .inc();
            }
            _ => {}
        }
        m.reservations_active.set(self.directory.len() as i64);
    }

    /// The addresses we tell browsers to dial: the configured external ones, or else what the
    /// listeners bound; each with `/p2p/<us>`.
    fn dial_addrs(&self, swarm: &Swarm<RelayBehaviour>) -> Vec<String> {
        let base: Vec<Multiaddr> = if self.config.external_addrs.is_empty() {
            let mut all: Vec<Multiaddr> = self.listeners.values().flatten().cloned().collect();
            all.sort_by_key(|a| a.to_string());
            all
        } else {
            swarm.external_addresses().cloned().collect()
        };
        base.into_iter()
            .map(|a| a.with_p2p(self.peer_id).unwrap_or_else(|a| a).to_string())
            .collect()
    }

    fn publish_addrs(&self, swarm: &Swarm<RelayBehaviour>) {
        let addrs = self.dial_addrs(swarm);
        if let Ok(mut info) = self.state.relay_info.write() {
            info.addrs = addrs;
        }
    }

    fn announce_ready(&mut self) {
        self.ready = true;
        // /health says ok from the moment "ready" is printed, not a tick later.
        if let Ok(mut h) = self.state.health.write() {
            h.status = "ok";
        }
        let http = if self.http_addr.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), self.http_addr.port())
        } else {
            self.http_addr
        };
        let addrs = self
            .state
            .relay_info
            .read()
            .map(|i| i.addrs.clone())
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "darkswap-relay {}", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "peer id: {}", self.peer_id);
        for addr in addrs {
            let _ = writeln!(out, "address: {addr}");
        }
        // What it binds, which differs from what it announces behind `external_addrs`.
        let mut bound: Vec<String> = self
            .listeners
            .values()
            .flatten()
            .map(ToString::to_string)
            .collect();
        bound.sort();
        for addr in bound {
            let _ = writeln!(out, "listening: {addr}");
        }
        let _ = writeln!(out, "web app: http://{http}/");
        let _ = writeln!(out, "ready");
        let _ = out.flush();
    }

    /// A peer whose time to authenticate is up: disconnected if it is still below the level
    /// publishing needs.
    fn drop_if_below_publishing(&mut self, swarm: &mut Swarm<RelayBehaviour>, peer: PeerId) {
        if !swarm.is_connected(&peer) {
            return;
        }
        if standing(&self.gate, &self.federation, &peer, false)
            == crate::orders::SourceAccess::Refused
        {
            self.metrics.unauthenticated_dropped.inc();
            swarm.disconnect_peer_id(peer).ok();
        }
    }

    /// A grant's end ends what it bought: peers holding a reservation or a circuit that their
    /// level no longer allows (a grant that ran out more than `auth.lapse_grace_secs` ago
    /// unrenewed, trust withdrawn) are disconnected, which ends both; the refusal is counted
    /// and audited as any other, once per peer (its connections may take a moment to close).
    fn drop_lapsed(&mut self, swarm: &mut Swarm<RelayBehaviour>) {
        let grace_ms = u64::try_from(self.config.auth.lapse_grace.as_millis()).unwrap_or(u64::MAX);
        let at_ms = darkswap_proto::unix_time_ms().saturating_sub(grace_ms);
        self.lapsed.retain(|peer| swarm.is_connected(peer));
        let mut lapsed: Vec<(PeerId, Operation, &'static str)> = {
            // One lock for the whole sweep; a poisoned lock cannot decide: nobody is dropped
            // here (new requests are refused by the gate meanwhile).
            let Ok(access) = self.gate.access.lock() else {
                return;
            };
            let held = |peer: &PeerId, op| {
                !self.lapsed.contains(peer) && access.permits(peer, op, at_ms).is_err()
            };
            let reservations = self
                .directory
                .peers()
                .filter(|p| held(p, Operation::Reserve))
                .map(|p| (*p, Operation::Reserve, "reservation"));
            let circuits = self
                .open_circuits
                .keys()
                .map(|(src, _)| src)
                .filter(|p| held(p, Operation::OpenCircuit))
                .map(|p| (*p, Operation::OpenCircuit, "circuit"));
            reservations.chain(circuits).collect()
        };
        lapsed.sort_by_key(|(p, ..)| *p);
        lapsed.dedup_by_key(|(p, ..)| *p);
        for (peer, op, held) in lapsed {
            // Counted and audited as the refusal it is.
            let _ = self.gate.verdict(&peer, None, op);
            self.metrics
                .lapsed_dropped
                .get_or_create(&crate::metrics::HeldLabels { held })
                .inc();
            self.lapsed.insert(peer);
            swarm.disconnect_peer_id(peer).ok();
        }
    }

    /// Re-signs this relay's record (addresses and load now), serves the set in relay-info, and
    /// asks every connected peer relay for the records it knows.
    fn announce_record(&mut self, swarm: &mut Swarm<RelayBehaviour>) {
        let now_ms = darkswap_proto::unix_time_ms();
        let addrs: Vec<Multiaddr> = self
            .dial_addrs(swarm)
            .iter()
            .filter_map(|a| a.parse().ok())
            .take(darkswap_proto::relay_record::MAX_RECORD_ADDRS)
            .collect();
        let load = (self.directory.len() as u64 * 1000)
            .checked_div(self.config.limits.max_reservations as u64)
            .unwrap_or(0);
        if let Err(e) = self
            .federation
            .refresh(addrs, u16::try_from(load).unwrap_or(1000), now_ms)
        {
            tracing::warn!("cannot sign this relay's record: {e}");
        }
        self.publish_records(now_ms);
        let connected: Vec<PeerId> = self
            .federation
            .peer_relays()
            .filter(|p| swarm.is_connected(p))
            .copied()
            .collect();
        for peer in connected {
            swarm
                .behaviour_mut()
                .records
                .send_request(&peer, RelayRecordsRequest {});
            // A configured relay that refused us may have listed us since.
            self.prove_to(swarm, peer);
        }
    }

    /// Starts our proof to the configured peer relay `peer`, unless one runs or succeeded.
    fn prove_to(&mut self, swarm: &mut Swarm<RelayBehaviour>, peer: PeerId) {
        let now_ms = darkswap_proto::unix_time_ms();
        if let Some(request) = self.federation.start_proof(peer, now_ms) {
            swarm.behaviour_mut().auth.send_request(&peer, request);
        }
    }

    fn publish_records(&self, now_ms: u64) {
        self.metrics
            .relay_records_known
            .set(self.federation.known() as i64);
        if let Ok(mut info) = self.state.relay_info.write() {
            info.records = self.federation.hex_records(now_ms);
        }
    }

    /// `/darkswap/relay-records/1`: answers peers that may read the directory; takes in the
    /// answers of peer relays (only those were asked).
    fn on_records(
        &mut self,
        swarm: &mut Swarm<RelayBehaviour>,
        event: request_response::Event<RelayRecordsRequest, RelayRecordsResponse>,
    ) {
        let now_ms = darkswap_proto::unix_time_ms();
        match event {
            request_response::Event::Message {
                peer,
                connection_id,
                message: request_response::Message::Request { channel, .. },
            } => {
                if !self.permitted(&peer, connection_id, Operation::ReadDirectory) {
                    return;
                }
                let response = self.federation.response(now_ms);
                let _ = swarm
                    .behaviour_mut()
                    .records
                    .send_response(channel, response);
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => {
                if self.federation.is_peer_relay(&peer) {
                    self.federation
                        .on_response(&peer, response, &self.metrics, now_ms);
                    self.publish_records(now_ms);
                }
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "peer relay gave no records: {error}");
                self.metrics
                    .relay_record_pulls
                    .get_or_create(&crate::metrics::OutcomeLabels {
                        outcome: "failed".into(),
                    })
                    .inc();
            }
            request_response::Event::InboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Dials every configured peer relay we are neither connected to nor dialing. From a new
    /// local port: libp2p's default binds the dial to our listening port (for hole punching,
    /// which relays do not do), and on Linux that bind fails with "address in use" while a
    /// closed connection on that port sits in TIME_WAIT (60 s); libp2p retries without the
    /// bind only for "address not available". Seen in CI after benchmarks left ~1,600 such
    /// sockets on loopback: a new relay could not reach its peer relay for a minute.
    fn dial_peer_relays(&mut self, swarm: &mut Swarm<RelayBehaviour>) {
        for (peer, addr) in self.federation.configured() {
            if !swarm.is_connected(peer) {
                let opts = DialOpts::peer_id(*peer)
                    .addresses(vec![addr.clone()])
                    .allocate_new_port()
                    .build();
                if let Err(e) = swarm.dial(opts) {
                    tracing::debug!(%peer, "cannot dial peer relay: {e}");
                }
            }
        }
    }

    /// Sends the pulls of makers' orders that `orders` has ready for peer relays.
    fn send_repairs(&mut self, swarm: &mut Swarm<RelayBehaviour>) {
        for pull in self.orders.take_repairs() {
            let id = swarm
                .behaviour_mut()
                .book_sync
                .send_request(&pull.peer, pull.request);
            self.orders.repair_sent(id, pull.ticket);
        }
    }

    fn count_peer_relays(&self, swarm: &Swarm<RelayBehaviour>) {
        let connected = self
            .federation
            .peer_relays()
            .filter(|p| swarm.is_connected(p))
            .count();
        self.metrics.peer_relays_connected.set(connected as i64);
    }

    /// Whether `peer` may do `op`; a refusal is counted and audited.
    fn permitted(&self, peer: &PeerId, connection: ConnectionId, op: Operation) -> bool {
        self.gate
            .verdict(peer, self.conn_addrs.get(&connection), op)
    }

    /// Auth gauges and housekeeping, once a second.
    fn update_auth(&mut self, swarm: &Swarm<RelayBehaviour>) {
        let now_ms = darkswap_proto::unix_time_ms();
        self.auth.prune(now_ms);
        self.metrics
            .auth_pending_challenges
            .set(self.auth.pending_challenges() as i64);
        let Ok(access) = self.gate.access.lock() else {
            return;
        };
        let mut counts = [0i64; Level::ALL.len()];
        for peer in swarm.connected_peers() {
            let level = access.level(peer, now_ms);
            if let Some(i) = Level::ALL.iter().position(|l| *l == level) {
                counts[i] += 1;
            }
        }
        for (level, n) in Level::ALL.iter().zip(counts) {
            self.metrics
                .auth_peers
                .get_or_create(&crate::metrics::LevelLabels {
                    level: level.label().into(),
                })
                .set(n);
        }
    }

    fn update_health(&self, started: Instant) {
        if let Ok(mut h) = self.state.health.write() {
            h.status = if self.ready { "ok" } else { "starting" };
            h.uptime_secs = started.elapsed().as_secs();
            h.connections = self.connections;
            h.reservations = self.directory.len() as u64;
        }
    }
}

/// A peer's standing for order gossip. `audit`: a refusal goes to the audit log (for a message
/// refused; not for a subscription noted, which anyone may send at no cost).
fn standing(
    gate: &Gate,
    federation: &Federation,
    peer: &PeerId,
    audit: bool,
) -> crate::orders::SourceAccess {
    use crate::orders::SourceAccess;
    let may_publish = if audit {
        gate.verdict(peer, None, Operation::PublishOrder)
    } else {
        gate.allows(peer, Operation::PublishOrder)
    };
    if !may_publish {
        SourceAccess::Refused
    } else if !gate.allows(peer, Operation::SkipRateLimits) {
        SourceAccess::Limited
    } else if federation.is_peer_relay(peer) {
        SourceAccess::PeerRelay
    } else {
        SourceAccess::Trusted
    }
}

/// Closes the connections of peers `pair_follow` cut off (following more pairs than one trader
/// may).
fn cut_off(swarm: &mut Swarm<RelayBehaviour>, peers: Vec<PeerId>) {
    for peer in peers {
        swarm.disconnect_peer_id(peer).ok();
    }
}

/// Why a dial to a peer relay failed, as a metrics label. The OS error sits under the DNS, TCP
/// and `Either` wrappers of the transport stack, which hide it from `Error::source` (an
/// `Either` passes on its inner error's source, not the error itself), so it is read from the
/// last "(os error N)" in the message: N is the errno, typed again by `from_raw_os_error`.
fn dial_failure(error: &DialError) -> &'static str {
    match error {
        DialError::WrongPeerId { .. } | DialError::LocalPeerId { .. } => "wrong_peer_id",
        DialError::Denied { .. } => "denied",
        DialError::Transport(_) => {
            let text = error.to_string();
            let errno = text.rsplit_once("(os error ").and_then(|(_, rest)| {
                rest.split_once(')')
                    .and_then(|(n, _)| n.parse::<i32>().ok())
            });
            match errno.map(|n| std::io::Error::from_raw_os_error(n).kind()) {
                Some(std::io::ErrorKind::ConnectionRefused) => "refused",
                Some(std::io::ErrorKind::AddrInUse | std::io::ErrorKind::AddrNotAvailable) => {
                    "address_in_use"
                }
                Some(std::io::ErrorKind::TimedOut) => "timeout",
                _ => "other",
            }
        }
        _ => "other",
    }
}
