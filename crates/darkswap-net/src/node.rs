//! The node's event loop: keeps the relay link and reservation alive, serves messages, and turns
//! swarm events into [`NodeEvent`]s.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse};
use darkswap_proto::trade_envelope::TradeEnvelope;
use darkswap_proto::{DirectAck, DirectMessage, DirectoryRequest};
use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identity::Keypair, ping, relay, Multiaddr, PeerId, Swarm};
use web_time::Instant;

use crate::addr::sort_for_dialing;
use crate::behaviour::{ClientBehaviour, ClientBehaviourEvent};
use crate::event::{AuthEvent, MessageId, NodeEvent, RelayStatus, TradingEvent};
use crate::negotiation::{Negotiation, NegotiationAction, NegotiationOutput, RequestToken};
use crate::orders::{Orders, OrdersAction, OrdersOutput, SyncToken};
use crate::NodeConfig;
use darkswap_auth::client::{ClientAuth, Credential, Step};
use darkswap_auth::wire::{AdminAction, AuthRequest, AuthResponse};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::addr::{
    circuit_addr, relay_peer_id, transport_kind, with_peer, AddrError, TransportKind,
};
use darkswap_proto::order::{order_topic, OrderSpec};
use darkswap_proto::unix_time_ms;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};

/// How often the loop wakes up to check timers (redial, directory refresh).
const TICK: Duration = Duration::from_millis(200);

/// Why a node could not be created or a command not accepted.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("invalid relay address: {0}")]
    RelayAddr(#[from] AddrError),
    #[error("none of the relay's addresses can be dialed from this platform")]
    NoDialableAddress,
    #[error(transparent)]
    Build(#[from] crate::transport::BuildError),
    #[error("the node has stopped")]
    Stopped,
    #[error("the node is busy (command queue full); try again")]
    Busy,
}

/// What the application asks of a node.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a text message to a peer, opening a relayed connection first if needed.
    Send {
        id: MessageId,
        peer: PeerId,
        text: String,
    },
    /// Open a relayed connection to a peer.
    Connect { peer: PeerId },
    /// Ask the relay for its directory now.
    RefreshPeers,
    /// Follow a pair's order book (gossip topic and a sync from the relay).
    WatchPair { pair: Pair },
    /// Publish an order of ours (see [`NodeHandle::place_order`]).
    PlaceOrder { pair: Pair, spec: OrderSpec },
    /// Cancel an order of ours everywhere.
    CancelOrder { id: OrderId },
    /// After a restart: republish our orders that have not expired, and bring back our trades
    /// (one that was still in negotiation is aborted: its reservation is gone).
    Restore {
        orders: Vec<crate::OwnOrder>,
        trades: Vec<crate::Trade>,
    },
    /// Take `amount` of another trader's order: negotiate a trade with its maker.
    TakeOrder {
        pair: Pair,
        order_id: OrderId,
        amount: u64,
    },
    /// Use another way to prove ourselves to the relay (forgets the cached token) and
    /// authenticate again now.
    SetCredential { credential: Credential },
    /// An admin request to the relay (needs the Admin level there); the answer comes back as
    /// `AuthEvent::Admin`.
    Admin { action: AdminAction },
}

/// The application's side of a node: cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    next_id: Arc<AtomicU64>,
    local_peer_id: PeerId,
}

impl NodeHandle {
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Queues a message; the returned id appears in the delivery report.
    pub fn send_message(&self, peer: PeerId, text: String) -> Result<MessageId, NodeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.command(Command::Send { id, peer, text })?;
        Ok(id)
    }

    /// Publishes a limit order; its id comes back in `TradingEvent::OrderPlaced`. The nonce is
    /// random, so ids never repeat across reloads.
    pub fn place_order(&self, pair: Pair, mut spec: OrderSpec) -> Result<OrderId, NodeError> {
        spec.nonce = rand::random();
        let id = darkswap_proto::order::order_id(&self.local_peer_id, spec.nonce);
        self.command(Command::PlaceOrder { pair, spec })?;
        Ok(id)
    }

    /// Queues a command without waiting; fails when the queue is full or the node stopped.
    pub fn command(&self, command: Command) -> Result<(), NodeError> {
        self.commands.clone().try_send(command).map_err(|e| {
            if e.is_disconnected() {
                NodeError::Stopped
            } else {
                NodeError::Busy
            }
        })
    }
}

/// Messages waiting for a connection to their peer.
struct Pending {
    messages: VecDeque<(MessageId, DirectMessage)>,
}

/// The running node. Create it with [`new_node`], then spawn [`Node::run`].
pub struct Node {
    swarm: Swarm<ClientBehaviour>,
    config: NodeConfig,
    relay: PeerId,
    relay_addrs: Vec<Multiaddr>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    /// The connection to the relay we use, with the address it was made on.
    relay_conn: Option<(ConnectionId, Multiaddr, TransportKind)>,
    circuit_listener: Option<ListenerId>,
    reserved: bool,
    dialing_relay: bool,
    attempt: u32,
    next_dial_at: Option<Instant>,
    next_reserve_at: Option<Instant>,
    next_directory_at: Instant,
    directory_inflight: bool,
    peers: Vec<PeerId>,
    pending: HashMap<PeerId, Pending>,
    outbound: HashMap<OutboundRequestId, (MessageId, PeerId, Instant)>,
    keypair: Keypair,
    orders: Orders,
    negotiation: Negotiation,
    /// Our book-sync requests in flight, by the order book's token.
    syncs: HashMap<OutboundRequestId, SyncToken>,
    /// Our trade requests in flight, by the negotiation's token.
    trade_requests: HashMap<OutboundRequestId, RequestToken>,
    auth: ClientAuth,
    /// Granted on the current relay connection.
    authed: bool,
    auth_request: Option<OutboundRequestId>,
    next_auth_at: Option<Instant>,
    /// When the relay's current grant runs out (unix ms).
    grant_expires_at_ms: Option<u64>,
    /// Admin requests in flight (bounded by the command queue; answered or failed).
    admin_requests: std::collections::HashSet<OutboundRequestId>,
}

/// Creates a node for `keypair` and the channel on which it reports.
pub async fn new_node(
    keypair: Keypair,
    config: NodeConfig,
) -> Result<(Node, NodeHandle, mpsc::Receiver<NodeEvent>), NodeError> {
    let relay = relay_peer_id(&config.relay_addrs)?;
    let relay_addrs = sort_for_dialing(&config.relay_addrs);
    if relay_addrs.is_empty() {
        return Err(NodeError::NoDialableAddress);
    }
    let local_peer_id = keypair.public().to_peer_id();
    let orders = Orders::new(
        keypair.clone(),
        config.market_limits.clone(),
        unix_time_ms(),
    );
    let negotiation = Negotiation::new(keypair.clone(), config.e2e_rekey);
    let swarm = crate::transport::build_swarm(keypair.clone(), &config).await?;
    let (command_tx, command_rx) = mpsc::channel(config.command_buffer);
    let (event_tx, event_rx) = mpsc::channel(config.event_buffer);
    let node = Node {
        swarm,
        relay,
        relay_addrs,
        commands: command_rx,
        events: event_tx,
        relay_conn: None,
        circuit_listener: None,
        reserved: false,
        dialing_relay: false,
        attempt: 0,
        next_dial_at: Some(Instant::now()),
        next_reserve_at: None,
        next_directory_at: Instant::now(),
        directory_inflight: false,
        peers: Vec::new(),
        pending: HashMap::new(),
        outbound: HashMap::new(),
        keypair,
        orders,
        negotiation,
        syncs: HashMap::new(),
        trade_requests: HashMap::new(),
        auth: ClientAuth::new(config.credential.clone(), config.auth_token.clone()),
        authed: false,
        auth_request: None,
        next_auth_at: None,
        grant_expires_at_ms: None,
        admin_requests: std::collections::HashSet::new(),
        config,
    };
    let handle = NodeHandle {
        commands: command_tx,
        next_id: Arc::new(AtomicU64::new(1)),
        local_peer_id,
    };
    Ok((node, handle, event_rx))
}

impl Node {
    /// Runs until every [`NodeHandle`] is dropped or the event receiver is dropped.
    pub async fn run(mut self) {
        let mut tick = futures_timer::Delay::new(Duration::ZERO).fuse();
        loop {
            let keep_going = futures::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event).await,
                command = self.commands.next() => match command {
                    Some(command) => self.on_command(command).await,
                    None => false,
                },
                _ = tick => {
                    tick = futures_timer::Delay::new(TICK).fuse();
                    self.on_tick().await
                }
            };
            if !keep_going {
                break;
            }
        }
    }

    /// Sends an event to the application, waiting if its queue is full. False once nobody listens.
    async fn emit(&mut self, event: NodeEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    async fn emit_trading(&mut self, events: impl IntoIterator<Item = TradingEvent>) -> bool {
        for event in events {
            if !self.emit(NodeEvent::Trading(event)).await {
                return false;
            }
        }
        true
    }

    /// Carries out what the order book asked for, feeds back what the network refused at once,
    /// and reports its events.
    async fn orders_output(&mut self, out: OrdersOutput) -> bool {
        let mut next = Some(out);
        while let Some(out) = next.take() {
            let follow = self.run_orders_actions(out.actions);
            if !self
                .emit_trading(out.events.into_iter().map(TradingEvent::from))
                .await
            {
                return false;
            }
            if !follow.actions.is_empty() || !follow.events.is_empty() {
                next = Some(follow);
            }
        }
        true
    }

    fn run_orders_actions(&mut self, actions: Vec<OrdersAction>) -> OrdersOutput {
        let now = unix_time_ms();
        let relay = self.relay_if_connected();
        let mut follow = OrdersOutput::default();
        let mut unpublished = Vec::new();
        for action in actions {
            let behaviour = self.swarm.behaviour_mut();
            match action {
                OrdersAction::Subscribe(pair) => {
                    let topic = IdentTopic::new(order_topic(&pair));
                    if let Err(e) = behaviour.gossip.subscribe(&topic) {
                        follow.extend(self.orders.subscribe_failed(pair, e.to_string()));
                    }
                }
                OrdersAction::Publish(publication) => {
                    let topic = IdentTopic::new(publication.topic.clone());
                    match behaviour.gossip.publish(topic, publication.bytes.clone()) {
                        Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                        Err(e) => unpublished.push((publication, e.to_string())),
                    }
                }
                OrdersAction::Sync { token, request } => match relay {
                    Some(relay) => {
                        let id = behaviour.book_sync.send_request(&relay, request);
                        self.syncs.insert(id, token);
                    }
                    None => self.orders.on_sync_failed(token),
                },
            }
        }
        if !unpublished.is_empty() {
            follow.extend(self.orders.publish_failed(unpublished, now));
        }
        follow
    }

    /// Carries out what the negotiation asked for (sending envelopes, connecting to
    /// counterparties) and reports its events, then the order book's.
    async fn negotiation_output(&mut self, out: NegotiationOutput) -> bool {
        let mut queue = std::collections::VecDeque::from([out]);
        while let Some(out) = queue.pop_front() {
            for action in out.actions {
                match action {
                    NegotiationAction::Send {
                        peer,
                        token,
                        envelope,
                    } => {
                        let id = self
                            .swarm
                            .behaviour_mut()
                            .trades
                            .send_request(&peer, envelope);
                        self.trade_requests.insert(id, token);
                    }
                    NegotiationAction::Connect(peer) => {
                        queue.push_back(self.connect_for_trade(peer))
                    }
                }
            }
            if !self
                .emit_trading(out.events.into_iter().map(TradingEvent::from))
                .await
            {
                return false;
            }
            if !self.orders_output(out.orders).await {
                return false;
            }
        }
        true
    }

    /// Makes sure we are connected (or connecting) to a counterparty that requests wait for.
    fn connect_for_trade(&mut self, peer: PeerId) -> NegotiationOutput {
        let now = unix_time_ms();
        if self.swarm.is_connected(&peer) {
            return self.negotiation.peer_connected(peer, now);
        }
        match self.dial_peer(peer) {
            Ok(()) => NegotiationOutput::default(),
            Err(reason) => self.negotiation.peer_unreachable(peer, &reason, now),
        }
    }

    async fn book_views(&mut self) -> bool {
        let views = self.orders.book_views(unix_time_ms());
        self.emit_trading(views.into_iter().map(TradingEvent::from))
            .await
    }

    fn relay_if_connected(&self) -> Option<PeerId> {
        self.relay_conn.as_ref().map(|_| self.relay)
    }

    async fn status(&mut self, status: RelayStatus) -> bool {
        self.emit(NodeEvent::Relay(status)).await
    }

    async fn on_tick(&mut self) -> bool {
        let out = self.orders.tick(unix_time_ms());
        if !self.orders_output(out).await {
            return false;
        }
        let out = self.negotiation.tick(&mut self.orders, unix_time_ms());
        if !self.negotiation_output(out).await || !self.book_views().await {
            return false;
        }
        let now = Instant::now();
        if self.relay_conn.is_none() && !self.dialing_relay {
            if let Some(at) = self.next_dial_at {
                if now >= at {
                    return self.dial_relay().await;
                }
            }
        }
        let now_ms = unix_time_ms();
        if self.authed && self.grant_expires_at_ms.is_some_and(|t| now_ms >= t) {
            // The grant ran out before a refresh succeeded: the relay would refuse what we
            // publish, so stop until we are granted again (a retry is scheduled already).
            self.authed = false;
            let out = self.orders.set_publishing(false, now_ms);
            if !self.orders_output(out).await {
                return false;
            }
        }
        if self.relay_conn.is_some() && self.auth_request.is_none() {
            // A scheduled retry (after a refusal or a failure) alone decides when to ask again;
            // otherwise a token near its expiry is refreshed.
            let due = match self.next_auth_at {
                Some(at) => now >= at,
                None => self.authed && self.auth.refresh_due(&self.relay, now_ms),
            };
            if due {
                self.next_auth_at = None;
                if !self.authenticate(self.authed).await {
                    return false;
                }
            }
        }
        if self.relay_conn.is_some() && self.authed && self.circuit_listener.is_none() {
            if let Some(at) = self.next_reserve_at {
                if now >= at {
                    self.next_reserve_at = None;
                    return self.reserve().await;
                }
            }
        }
        if self.reserved && !self.directory_inflight && now >= self.next_directory_at {
            self.request_directory();
        }
        if self.reserved {
            // Trade requests waiting for their counterparty (e.g. a confirmation resumed after
            // a restart): dial it; a dial in progress is not repeated.
            for peer in self.negotiation.peers_waiting() {
                let out = self.connect_for_trade(peer);
                if !self.negotiation_output(out).await {
                    return false;
                }
            }
        }
        true
    }

    async fn dial_relay(&mut self) -> bool {
        self.attempt += 1;
        self.next_dial_at = None;
        let opts = DialOpts::peer_id(self.relay)
            .addresses(self.relay_addrs.clone())
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.dialing_relay = true;
                self.status(RelayStatus::Connecting {
                    attempt: self.attempt,
                })
                .await
            }
            Err(e) => self.relay_lost(format!("cannot dial the relay: {e}")).await,
        }
    }

    /// Schedules the next relay dial with exponential backoff and reports why.
    async fn relay_lost(&mut self, reason: String) -> bool {
        self.dialing_relay = false;
        self.relay_conn = None;
        self.reserved = false;
        self.authed = false;
        self.auth_request = None;
        self.next_auth_at = None;
        self.grant_expires_at_ms = None;
        self.orders.relay_lost();
        if let Some(id) = self.circuit_listener.take() {
            self.swarm.remove_listener(id);
        }
        let retry_in = self.backoff();
        self.next_dial_at = Some(Instant::now() + retry_in);
        self.status(RelayStatus::Failed { reason, retry_in }).await
    }

    fn backoff(&self) -> Duration {
        let exp = self.attempt.saturating_sub(1).min(16);
        let base = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        // ±20% jitter so that many clients of a restarted relay do not redial in lockstep.
        let jitter = 0.8 + rand::random::<f64>() * 0.4;
        base.mul_f64(jitter)
    }

    async fn reserve(&mut self) -> bool {
        let Some((_, addr, _)) = &self.relay_conn else {
            return true;
        };
        let listen = addr.clone().with(libp2p::multiaddr::Protocol::P2pCircuit);
        match self.swarm.listen_on(listen) {
            Ok(id) => {
                self.circuit_listener = Some(id);
                true
            }
            Err(e) => {
                let retry_in = self.backoff();
                self.next_reserve_at = Some(Instant::now() + retry_in);
                self.status(RelayStatus::Failed {
                    reason: format!("cannot request a reservation: {e}"),
                    retry_in,
                })
                .await
            }
        }
    }

    /// Sends the next auth request: a fresh challenge when `refresh`, else our cached token if
    /// it is still good, else a challenge.
    async fn authenticate(&mut self, refresh: bool) -> bool {
        let local = *self.swarm.local_peer_id();
        let request = if refresh {
            self.auth.challenge()
        } else {
            self.auth.start(&self.relay, &local, unix_time_ms())
        };
        let method = match &request {
            AuthRequest::Token { .. } => darkswap_auth::Method::Token,
            _ => self.auth.credential().method(),
        };
        self.send_auth(request);
        if refresh {
            return true;
        }
        self.emit(NodeEvent::Auth(AuthEvent::Authenticating { method }))
            .await
    }

    fn send_auth(&mut self, request: AuthRequest) {
        let id = self
            .swarm
            .behaviour_mut()
            .auth
            .send_request(&self.relay, request);
        self.auth_request = Some(id);
    }

    /// The relay granted us a level: publish what waited, and reserve.
    async fn auth_granted(&mut self) -> bool {
        let first = !self.authed;
        self.authed = true;
        let out = self.orders.set_publishing(true, unix_time_ms());
        if !self.orders_output(out).await {
            return false;
        }
        if first && self.circuit_listener.is_none() {
            return self.reserve().await;
        }
        true
    }

    async fn on_auth_event(
        &mut self,
        event: request_response::Event<AuthRequest, AuthResponse>,
    ) -> bool {
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if self.admin_requests.remove(&request_id) {
                    let event = match response {
                        AuthResponse::Admin { message, entries } => AuthEvent::Admin {
                            message,
                            entries,
                            refused: None,
                        },
                        AuthResponse::Refused { reason } => AuthEvent::Admin {
                            message: reason.explain().to_string(),
                            entries: Vec::new(),
                            refused: Some(reason),
                        },
                        _ => AuthEvent::Admin {
                            message: "unexpected answer".into(),
                            entries: Vec::new(),
                            refused: Some(darkswap_auth::RefuseReason::Malformed),
                        },
                    };
                    return self.emit(NodeEvent::Auth(event)).await;
                }
                if self.auth_request != Some(request_id) {
                    return true;
                }
                self.auth_request = None;
                match self.auth.on_response(response, &self.keypair, &self.relay) {
                    Step::Send(request) => {
                        self.send_auth(request);
                        true
                    }
                    Step::Granted {
                        level,
                        method,
                        token,
                        expires_at_ms,
                        limits,
                    } => {
                        self.grant_expires_at_ms = Some(expires_at_ms);
                        if let Some(announced) = limits {
                            // From now on we keep under what this relay enforces.
                            let limits =
                                self.config.market_limits.clone().with_announced(announced);
                            self.orders.set_limits(limits, unix_time_ms());
                        }
                        if !self
                            .emit(NodeEvent::Auth(AuthEvent::Granted {
                                level,
                                method,
                                expires_at_ms,
                                token,
                                limits,
                            }))
                            .await
                        {
                            return false;
                        }
                        self.auth_granted().await
                    }
                    Step::Refused(reason) => self.auth_refused(reason).await,
                }
            }
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                if self.admin_requests.remove(&request_id) {
                    return self
                        .emit(NodeEvent::Auth(AuthEvent::Admin {
                            message: format!("admin request failed: {error}"),
                            entries: Vec::new(),
                            refused: Some(darkswap_auth::RefuseReason::Busy),
                        }))
                        .await;
                }
                if self.auth_request != Some(request_id) {
                    return true;
                }
                self.auth_request = None;
                if matches!(
                    error,
                    request_response::OutboundFailure::UnsupportedProtocols
                ) {
                    // An older relay without auth: it alone decides what we may do.
                    if !self.emit(NodeEvent::Auth(AuthEvent::Unsupported)).await {
                        return false;
                    }
                    return self.auth_granted().await;
                }
                let retry_in = self.backoff();
                self.next_auth_at = Some(Instant::now() + retry_in);
                true
            }
            _ => true,
        }
    }

    async fn auth_refused(&mut self, reason: darkswap_auth::RefuseReason) -> bool {
        let retry_in = self.config.auth_retry;
        self.next_auth_at = Some(Instant::now() + retry_in);
        if !self
            .emit(NodeEvent::Auth(AuthEvent::Refused { reason, retry_in }))
            .await
        {
            return false;
        }
        if self.authed {
            // A refused refresh: what we were granted runs out at its expiry; nothing to undo.
            return true;
        }
        self.status(RelayStatus::Failed {
            reason: format!("the relay refused us: {}", reason.explain()),
            retry_in,
        })
        .await
    }

    fn request_directory(&mut self) {
        self.directory_inflight = true;
        self.next_directory_at = Instant::now() + self.config.directory_interval;
        self.swarm
            .behaviour_mut()
            .directory
            .send_request(&self.relay, DirectoryRequest {});
    }

    async fn on_command(&mut self, command: Command) -> bool {
        match command {
            Command::RefreshPeers => {
                if self.reserved {
                    self.request_directory();
                }
                true
            }
            Command::WatchPair { pair } => {
                let out = self.orders.watch(pair, unix_time_ms());
                self.orders_output(out).await
            }
            Command::PlaceOrder { pair, spec } => {
                let out = self.orders.place(pair, spec, unix_time_ms());
                self.orders_output(out).await
            }
            Command::Restore { orders, trades } => {
                let out = self.negotiation.restore(trades, unix_time_ms());
                if !self.negotiation_output(out).await {
                    return false;
                }
                let out = self.orders.restore(orders, unix_time_ms());
                self.orders_output(out).await
            }
            Command::CancelOrder { id } => {
                let out = self.orders.cancel(id, unix_time_ms());
                self.orders_output(out).await
            }
            Command::TakeOrder {
                pair,
                order_id,
                amount,
            } => {
                let connected = self
                    .orders
                    .order(&pair, &order_id)
                    .is_some_and(|o| self.swarm.is_connected(&o.data.maker));
                let out = self.negotiation.take(
                    &self.orders,
                    &pair,
                    order_id,
                    amount,
                    connected,
                    unix_time_ms(),
                );
                self.negotiation_output(out).await
            }
            Command::SetCredential { credential } => {
                self.auth = ClientAuth::new(credential, None);
                self.auth_request = None;
                self.next_auth_at = None;
                if self.relay_conn.is_some() {
                    return self.authenticate(false).await;
                }
                true
            }
            Command::Admin { action } => {
                if self.relay_conn.is_none() {
                    return self
                        .emit(NodeEvent::Auth(AuthEvent::Admin {
                            message: "not connected to the relay".into(),
                            entries: Vec::new(),
                            refused: Some(darkswap_auth::RefuseReason::Busy),
                        }))
                        .await;
                }
                let id = self
                    .swarm
                    .behaviour_mut()
                    .auth
                    .send_request(&self.relay, AuthRequest::Admin(action));
                self.admin_requests.insert(id);
                true
            }
            Command::Connect { peer } => {
                if self.swarm.is_connected(&peer) {
                    return true;
                }
                match self.dial_peer(peer) {
                    Ok(()) => true,
                    Err(reason) => {
                        self.emit(NodeEvent::PeerConnectFailed { peer, reason })
                            .await
                    }
                }
            }
            Command::Send { id, peer, text } => {
                let message = match DirectMessage::new(text, unix_time_ms()) {
                    Ok(m) => m,
                    Err(e) => {
                        return self
                            .emit(NodeEvent::MessageFailed {
                                id,
                                to: peer,
                                reason: e.to_string(),
                            })
                            .await
                    }
                };
                if self.swarm.is_connected(&peer) {
                    self.send_now(id, peer, message);
                    return true;
                }
                if let Err(reason) = self.queue(id, peer, message) {
                    return self
                        .emit(NodeEvent::MessageFailed {
                            id,
                            to: peer,
                            reason,
                        })
                        .await;
                }
                if let Err(reason) = self.dial_peer(peer) {
                    return self.fail_pending(peer, reason).await;
                }
                true
            }
        }
    }

    fn queue(&mut self, id: MessageId, peer: PeerId, message: DirectMessage) -> Result<(), String> {
        if !self.pending.contains_key(&peer) && self.pending.len() >= self.config.max_pending_peers
        {
            return Err("too many peers with messages waiting for a connection".into());
        }
        let pending = self.pending.entry(peer).or_insert_with(|| Pending {
            messages: VecDeque::new(),
        });
        if pending.messages.len() >= self.config.max_pending_per_peer {
            return Err("too many messages waiting for this peer".into());
        }
        pending.messages.push_back((id, message));
        Ok(())
    }

    fn dial_peer(&mut self, peer: PeerId) -> Result<(), String> {
        if peer == self.relay || peer == *self.swarm.local_peer_id() {
            return Err("not a trader's PeerId".into());
        }
        let Some((_, relay_addr, _)) = &self.relay_conn else {
            return Err("not connected to a relay".into());
        };
        let opts = DialOpts::peer_id(peer)
            .addresses(vec![circuit_addr(relay_addr, peer)])
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            Ok(()) => Ok(()),
            // Already dialing: the queued messages go when that dial completes.
            Err(libp2p::swarm::DialError::DialPeerConditionFalse(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn send_now(&mut self, id: MessageId, peer: PeerId, message: DirectMessage) {
        let request = self
            .swarm
            .behaviour_mut()
            .messages
            .send_request(&peer, message);
        self.outbound.insert(request, (id, peer, Instant::now()));
    }

    async fn fail_pending(&mut self, peer: PeerId, reason: String) -> bool {
        let Some(pending) = self.pending.remove(&peer) else {
            return true;
        };
        for (id, _) in pending.messages {
            let event = NodeEvent::MessageFailed {
                id,
                to: peer,
                reason: reason.clone(),
            };
            if !self.emit(event).await {
                return false;
            }
        }
        true
    }

    async fn on_swarm_event(&mut self, event: SwarmEvent<ClientBehaviourEvent>) -> bool {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let addr = endpoint.get_remote_address().clone();
                let transport = transport_kind(&addr);
                if peer_id == self.relay {
                    if self.relay_conn.is_some() {
                        return true;
                    }
                    self.dialing_relay = false;
                    self.attempt = 0;
                    let addr = with_peer(&addr, self.relay);
                    self.relay_conn = Some((connection_id, addr.clone(), transport));
                    // Reading the book needs no authentication; publishing and reserving wait
                    // for the relay's grant.
                    let out = self.orders.relay_connected(unix_time_ms());
                    if !self.orders_output(out).await {
                        return false;
                    }
                    if !self
                        .status(RelayStatus::Connected { transport, addr })
                        .await
                    {
                        return false;
                    }
                    return self.authenticate(false).await;
                }
                if let Some(pending) = self.pending.remove(&peer_id) {
                    for (id, message) in pending.messages {
                        self.send_now(id, peer_id, message);
                    }
                }
                let out = self.negotiation.peer_connected(peer_id, unix_time_ms());
                if !self.negotiation_output(out).await {
                    return false;
                }
                let transport = if matches!(endpoint, ConnectedPoint::Listener { .. })
                    && endpoint_is_relayed(&endpoint)
                {
                    TransportKind::Relayed
                } else {
                    transport
                };
                self.emit(NodeEvent::PeerConnected {
                    peer: peer_id,
                    transport,
                })
                .await
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                cause,
                ..
            } => {
                if peer_id == self.relay {
                    let ours = matches!(&self.relay_conn, Some((id, _, _)) if *id == connection_id);
                    if ours {
                        let reason = match cause {
                            Some(e) => format!("connection to the relay closed: {e}"),
                            None => "connection to the relay closed".to_string(),
                        };
                        return self.relay_lost(reason).await;
                    }
                    return true;
                }
                if num_established == 0 {
                    return self
                        .emit(NodeEvent::PeerDisconnected { peer: peer_id })
                        .await;
                }
                true
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } => {
                if peer == self.relay {
                    if self.relay_conn.is_none() {
                        return self
                            .relay_lost(format!("cannot reach the relay: {error}"))
                            .await;
                    }
                    return true;
                }
                let reason = format!("cannot reach peer through the relay: {error}");
                if !self
                    .emit(NodeEvent::PeerConnectFailed {
                        peer,
                        reason: reason.clone(),
                    })
                    .await
                {
                    return false;
                }
                let out = self
                    .negotiation
                    .peer_unreachable(peer, &reason, unix_time_ms());
                if !self.negotiation_output(out).await {
                    return false;
                }
                self.fail_pending(peer, reason).await
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if Some(listener_id) == self.circuit_listener => {
                self.circuit_listener = None;
                self.reserved = false;
                if self.relay_conn.is_none() {
                    return true;
                }
                let reason = match reason {
                    Ok(()) => "reservation closed by the relay".to_string(),
                    Err(e) => format!("reservation refused: {e}"),
                };
                let retry_in = self.backoff();
                self.attempt += 1;
                self.next_reserve_at = Some(Instant::now() + retry_in);
                self.status(RelayStatus::Failed { reason, retry_in }).await
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event).await,
            _ => true,
        }
    }

    async fn on_behaviour_event(&mut self, event: ClientBehaviourEvent) -> bool {
        match event {
            ClientBehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                ..
            }) if relay_peer_id == self.relay => {
                let Some((_, addr, transport)) = self.relay_conn.clone() else {
                    return true;
                };
                let first = !self.reserved;
                self.reserved = true;
                self.attempt = 0;
                if first {
                    self.request_directory();
                    let circuit_addr = circuit_addr(&addr, *self.swarm.local_peer_id());
                    return self
                        .status(RelayStatus::Reserved {
                            transport,
                            circuit_addr,
                        })
                        .await;
                }
                true
            }
            ClientBehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                if peer == self.relay {
                    self.emit(NodeEvent::RelayRtt(rtt)).await
                } else {
                    self.emit(NodeEvent::PeerRtt { peer, rtt }).await
                }
            }
            ClientBehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(_),
            }) => {
                // A relay that vanished without closing (WebRTC has no RST) is only noticed by
                // a failed ping: drop the connection so the reconnect logic takes over.
                if peer == self.relay {
                    self.swarm.close_connection(connection);
                }
                true
            }
            ClientBehaviourEvent::Directory(event) => self.on_directory_event(event).await,
            ClientBehaviourEvent::Messages(event) => self.on_message_event(event).await,
            ClientBehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                // Traders never forward: relays are the hubs that validate and forward.
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                let out =
                    self.orders
                        .on_gossip(message.topic.as_str(), &message.data, unix_time_ms());
                self.orders_output(out).await
            }
            ClientBehaviourEvent::Trades(event) => self.on_trade_event(event).await,
            ClientBehaviourEvent::Auth(event) => self.on_auth_event(event).await,
            ClientBehaviourEvent::BookSync(event) => self.on_book_sync_event(event).await,
            _ => true,
        }
    }

    async fn on_trade_event(
        &mut self,
        event: request_response::Event<TradeEnvelope, TradeEnvelope>,
    ) -> bool {
        let now = unix_time_ms();
        let out = match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let (answer, out) =
                    self.negotiation
                        .on_request(peer, request, &mut self.orders, now);
                // The taker may be gone; its side then times out.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .trades
                    .send_response(channel, answer);
                out
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => match self.trade_requests.remove(&request_id) {
                Some(token) => self.negotiation.on_response(token, peer, response, now),
                None => return true,
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => match self.trade_requests.remove(&request_id) {
                Some(token) => self.negotiation.on_failure(token, &error.to_string(), now),
                None => return true,
            },
            _ => return true,
        };
        self.negotiation_output(out).await && self.book_views().await
    }

    async fn on_book_sync_event(
        &mut self,
        event: request_response::Event<BookSyncRequest, BookSyncResponse>,
    ) -> bool {
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                let Some(token) = self.syncs.remove(&request_id) else {
                    return true;
                };
                let out = self.orders.on_sync_page(token, response, unix_time_ms());
                self.orders_output(out).await
            }
            request_response::Event::OutboundFailure { request_id, .. } => {
                if let Some(token) = self.syncs.remove(&request_id) {
                    self.orders.on_sync_failed(token);
                }
                true
            }
            _ => true,
        }
    }

    async fn on_directory_event(
        &mut self,
        event: request_response::Event<DirectoryRequest, darkswap_proto::DirectoryResponse>,
    ) -> bool {
        match event {
            request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            } => {
                self.directory_inflight = false;
                let me = *self.swarm.local_peer_id();
                let mut peers: Vec<PeerId> = response
                    .peers
                    .iter()
                    .filter_map(|p| p.parse().ok())
                    .filter(|p| *p != me)
                    .collect();
                peers.sort();
                if peers != self.peers {
                    self.peers = peers.clone();
                    return self
                        .emit(NodeEvent::Peers {
                            peers,
                            total: response.total,
                        })
                        .await;
                }
                true
            }
            request_response::Event::OutboundFailure { .. } => {
                self.directory_inflight = false;
                true
            }
            _ => true,
        }
    }

    async fn on_message_event(
        &mut self,
        event: request_response::Event<DirectMessage, DirectAck>,
    ) -> bool {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => {
                    let ack = DirectAck::for_message(&request);
                    let accepted = ack.accepted;
                    // The peer may have gone already; nothing to do then.
                    let _ = self
                        .swarm
                        .behaviour_mut()
                        .messages
                        .send_response(channel, ack);
                    if accepted {
                        return self
                            .emit(NodeEvent::MessageReceived {
                                from: peer,
                                text: request.text,
                                sent_at_ms: request.sent_at_ms,
                            })
                            .await;
                    }
                    true
                }
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some((id, to, sent)) = self.outbound.remove(&request_id) else {
                        return true;
                    };
                    self.emit(NodeEvent::MessageDelivered {
                        id,
                        to,
                        rtt: sent.elapsed(),
                        accepted: response.accepted,
                        reason: response.reason,
                    })
                    .await
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                let Some((id, to, _)) = self.outbound.remove(&request_id) else {
                    return true;
                };
                self.emit(NodeEvent::MessageFailed {
                    id,
                    to,
                    reason: error.to_string(),
                })
                .await
            }
            _ => true,
        }
    }
}

fn endpoint_is_relayed(endpoint: &ConnectedPoint) -> bool {
    match endpoint {
        ConnectedPoint::Listener { local_addr, .. } => {
            transport_kind(local_addr) == TransportKind::Relayed
        }
        ConnectedPoint::Dialer { address, .. } => transport_kind(address) == TransportKind::Relayed,
    }
}
