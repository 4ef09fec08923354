//! The node's event loop: routes swarm events, commands and timer ticks to the part that owns
//! them — the relay link ([`RelayLink`]), the auth glue ([`RelayAuth`]), the standby
//! reservations ([`Standbys`]), direct messages and the
//! directory ([`Direct`]), the order book ([`Orders`]) and trade negotiation ([`Negotiation`]) —
//! and carries out what they ask for on the swarm. Only this module touches the swarm.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use darkswap_auth::RefuseReason;
use darkswap_proto::addr::{circuit_addr, transport_kind, TransportKind};
use darkswap_proto::auth::{AuthRequest, AuthResponse};
use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse};
use darkswap_proto::order::order_topic;
use darkswap_proto::trade_envelope::TradeEnvelope;
use darkswap_proto::{unix_time_ms, DirectAck, DirectMessage, DirectoryRequest, DirectoryResponse};
use futures::channel::mpsc;
use futures::future::FusedFuture;
use futures::{FutureExt, SinkExt, StreamExt};
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{identity::Keypair, ping, relay, Multiaddr, PeerId, Swarm};
use web_time::Instant;

use crate::behaviour::{ClientBehaviour, ClientBehaviourEvent};
use crate::direct::Direct;
use crate::event::{AuthEvent, MessageId, NodeEvent, RelayStatus, TradingEvent};
use crate::handle::{Command, NodeError, NodeHandle};
use crate::negotiation::{Negotiation, NegotiationAction, NegotiationOutput, RequestToken};
use crate::orders::{Orders, OrdersAction, OrdersOutput, SyncToken};
use crate::relay_auth::{AuthOutcome, RelayAuth};
use crate::relay_link::RelayLink;
use crate::relay_probe::RelayProbes;
use crate::standby::{Standby, Standbys, MAX_RESERVATIONS};
use crate::NodeConfig;
use darkswap_proto::relay_record::{RelayRecordsRequest, RelayRecordsResponse};
use darkswap_relays::Failure;

/// How often the loop wakes up to check timers (redial, directory refresh).
const TICK: Duration = Duration::from_millis(200);
/// Probe connections remembered at once (probes in flight are at most
/// [`crate::relay_probe::MAX_PROBES_IN_FLIGHT`]; a few more may be closing).
const MAX_PROBE_CONNS: usize = 16;
/// Stamps tried per slice of an identity-stamp search: a few milliseconds natively, about ten
/// in a browser, so the page stays responsive while it works.
const STAMP_SLICE: u32 = 32_768;

/// Why another trader cannot be dialed.
#[derive(Debug, thiserror::Error)]
pub enum PeerDialError {
    /// The PeerId is the relay's or our own.
    #[error("not a trader's PeerId")]
    NotATrader,
    /// We have no connection to the relay to open a circuit through.
    #[error("not connected to a relay")]
    NoRelay,
    /// The swarm refused the dial (a dial already in progress is not an error).
    #[error(transparent)]
    Dial(#[from] DialError),
}

/// The running node. Create it with [`new_node`], then spawn [`Node::run`].
pub struct Node {
    swarm: Swarm<ClientBehaviour>,
    config: NodeConfig,
    keypair: Keypair,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    link: RelayLink,
    /// The relay pool and its probes.
    probes: RelayProbes,
    auth: RelayAuth,
    direct: Direct,
    orders: Orders,
    negotiation: Negotiation,
    /// Our book-sync requests in flight, by the order book's token.
    syncs: HashMap<OutboundRequestId, SyncToken>,
    /// Our trade requests in flight, by the negotiation's token.
    trade_requests: HashMap<OutboundRequestId, RequestToken>,
    /// The open probe connections to other relays (at most one per probe in flight): the one
    /// to a relay the link moves to becomes the link.
    probe_conns: HashMap<PeerId, (ConnectionId, Multiaddr)>,
    /// A probe's dial to the relay the link moved to is under way: its connection becomes the
    /// link (a second dial would give the relay two connections from us, which it resets).
    probe_dialing: Option<PeerId>,
    /// The link went down since it was last up (lost, unreachable, or left for a refusal):
    /// each redial weighs the pool again. Not before the first failure: the first dial is to
    /// the relay we were given.
    link_failed: bool,
    /// The reservations held on other relays besides the link's.
    standbys: Standbys,
    /// Our circuit addresses as last reported ([`NodeEvent::Reachable`]).
    reachable: Vec<Multiaddr>,
}

/// Creates a node for `keypair` and the channel on which it reports.
pub async fn new_node(
    keypair: Keypair,
    config: NodeConfig,
) -> Result<(Node, NodeHandle, mpsc::Receiver<NodeEvent>), NodeError> {
    let now = Instant::now();
    let link = RelayLink::new(
        &config.relay_addrs,
        config.backoff_initial,
        config.backoff_max,
        now,
    )?;
    let local_peer_id = keypair.public().to_peer_id();
    let probes = RelayProbes::new(
        config.relay_pool,
        config.saved_relay_pool.as_ref(),
        link.relay(),
        config.relay_addrs.clone(),
        config.records_interval,
        config.probe_relays,
        unix_time_ms(),
    )
    .with_failover(config.fail_over);
    let orders = Orders::new(
        keypair.clone(),
        config.market_limits.clone(),
        unix_time_ms(),
    );
    let negotiation = Negotiation::new(keypair.clone(), config.e2e_rekey);
    let auth = RelayAuth::new(
        config.credential.clone(),
        config.auth_token.clone(),
        config.identity_stamp,
        config.auth_retry,
    );
    let direct = Direct::new(
        config.max_pending_peers,
        config.max_pending_per_peer,
        config.directory_interval,
        now,
    );
    let swarm = crate::transport::build_swarm(keypair.clone(), &config).await?;
    let (command_tx, command_rx) = mpsc::channel(config.command_buffer);
    let (event_tx, event_rx) = mpsc::channel(config.event_buffer);
    let node = Node {
        swarm,
        keypair,
        commands: command_rx,
        events: event_tx,
        link,
        probes,
        auth,
        direct,
        orders,
        negotiation,
        syncs: HashMap::new(),
        trade_requests: HashMap::new(),
        probe_conns: HashMap::new(),
        probe_dialing: None,
        link_failed: false,
        standbys: Standbys::new(if config.fail_over {
            config.reservations.clamp(1, MAX_RESERVATIONS) - 1
        } else {
            0
        }),
        reachable: Vec::new(),
        config,
    };
    Ok((node, NodeHandle::new(command_tx, local_peer_id), event_rx))
}

impl Node {
    /// Runs until every [`NodeHandle`] is dropped or the event receiver is dropped.
    pub async fn run(mut self) {
        let mut tick = futures_timer::Delay::new(Duration::ZERO).fuse();
        // A slice of the identity-stamp search, when one runs: network events and commands
        // are served between slices.
        let mut work = futures::future::Fuse::terminated();
        loop {
            if self.auth.searching() && work.is_terminated() {
                work = futures_timer::Delay::new(Duration::ZERO).fuse();
            }
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
                _ = work => self.stamp_work().await,
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

    async fn emit_all(&mut self, events: impl IntoIterator<Item = NodeEvent>) -> bool {
        for event in events {
            if !self.emit(event).await {
                return false;
            }
        }
        true
    }

    async fn emit_trading(&mut self, events: impl IntoIterator<Item = TradingEvent>) -> bool {
        self.emit_all(events.into_iter().map(NodeEvent::Trading))
            .await
    }

    async fn status(&mut self, status: RelayStatus) -> bool {
        self.emit(NodeEvent::Relay(status)).await
    }

    // ---- the order book and the negotiation: carry out what they ask for ----

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
        let relay = self.link.connected_relay();
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
        let mut queue = VecDeque::from([out]);
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
            Err(e) => self.negotiation.peer_unreachable(peer, &e.to_string(), now),
        }
    }

    async fn book_views(&mut self) -> bool {
        let views = self.orders.book_views(unix_time_ms());
        self.emit_trading(views.into_iter().map(TradingEvent::from))
            .await
    }

    // ---- timers ----

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
        let now_ms = unix_time_ms();
        if !self.probe_relays(now_ms).await || !self.standby_tick(now, now_ms).await {
            return false;
        }
        if !self.leave_if_refused().await || !self.reachable().await {
            return false;
        }
        if self.link.dial_due(now) {
            // After a failure, a standby may hold its reservation by now, or the relay we wait
            // for may have been overtaken while we waited (its backoff in the pool, a probe
            // that found another).
            if self.link_failed {
                if let Some(moving) = self.promote_standby(now_ms) {
                    return self.status(moving).await && self.link_taken_over().await;
                }
                if let Some(moving) = self.fail_over(now_ms) {
                    if !self.status(moving).await {
                        return false;
                    }
                }
            }
            return self.dial_relay().await;
        }
        if self.auth.grant_expired(now_ms) {
            let out = self.orders.set_publishing(false, now_ms);
            if !self.orders_output(out).await {
                return false;
            }
        }
        if self.link.is_up() {
            if let Some(refresh) = self.auth.due(&self.link.relay(), now, now_ms) {
                if !self.authenticate(refresh).await {
                    return false;
                }
            }
        }
        if self.link.reserve_due(self.auth.is_authed(), now) {
            return self.reserve().await;
        }
        if self.direct.directory_due(self.link.is_reserved(), now) {
            self.request_directory(now);
        }
        if self.link.is_reserved() {
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

    // ---- the relay pool ----

    /// Asks the relay for the records it knows when due, dials the relays due a probe, gives
    /// up on silent ones, and reports the pool when it changed.
    async fn probe_relays(&mut self, now_ms: u64) -> bool {
        if self.auth.is_authed() && self.link.is_up() && self.probes.records_due(now_ms) {
            let relay = self.link.relay();
            self.swarm
                .behaviour_mut()
                .records
                .send_request(&relay, RelayRecordsRequest {});
        }
        for (relay, addrs) in self.probes.due(now_ms) {
            let opts = DialOpts::peer_id(relay)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(%relay, "cannot probe relay: {e}");
                self.probes
                    .probe_failed(&relay, Failure::Unreachable, now_ms);
            }
        }
        for relay in self.probes.timed_out(now_ms) {
            self.probe_conns.remove(&relay);
            let _ = self.swarm.disconnect_peer_id(relay);
        }
        match self.probes.report(now_ms) {
            Some(report) => self.emit(NodeEvent::RelayPool(report)).await,
            None => true,
        }
    }

    fn on_records_event(
        &mut self,
        event: request_response::Event<RelayRecordsRequest, RelayRecordsResponse>,
    ) {
        if let request_response::Event::Message {
            peer,
            message: request_response::Message::Response { response, .. },
            ..
        } = event
        {
            if peer == self.link.relay() {
                self.probes.records(&response.records, unix_time_ms());
            }
        }
    }

    // ---- the relay link ----

    /// The link's connection is up (dialed, or a probe's adopted): the book is synced and our
    /// orders published again; publishing and reserving wait for the relay's grant.
    async fn link_up(&mut self, connection: ConnectionId, addr: &Multiaddr) -> bool {
        let Some(status) = self
            .link
            .established(connection, addr, transport_kind(addr))
        else {
            return true;
        };
        self.link_failed = false;
        let out = self.orders.relay_connected(unix_time_ms());
        self.orders_output(out).await && self.status(status).await && self.authenticate(false).await
    }

    async fn dial_relay(&mut self) -> bool {
        let relay = self.link.relay();
        if self.swarm.is_connected(&relay) {
            // A probe's connection to the relay the link moved to: it becomes the link. One
            // on its way out (measured, being closed) is waited for: a second connection
            // would make the relay reset both.
            return match self.probe_conns.remove(&relay) {
                Some((connection, addr)) => self.link_up(connection, &addr).await,
                None => true,
            };
        }
        if self.probe_dialing == Some(relay) {
            // A probe is dialing it: that connection becomes the link, or its failure is the
            // link's.
            let (_, attempt) = self.link.dial();
            self.link.dialing();
            return self.status(RelayStatus::Connecting { attempt }).await;
        }
        let (opts, attempt) = self.link.dial();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.link.dialing();
                self.status(RelayStatus::Connecting { attempt }).await
            }
            Err(e) => self.relay_lost(format!("cannot dial the relay: {e}")).await,
        }
    }

    /// The link is gone: everything granted and reserved on it goes too; report why, and
    /// where and when we dial next.
    async fn relay_lost(&mut self, reason: String) -> bool {
        let now_ms = unix_time_ms();
        self.probes.serving_failed(Failure::Lost, now_ms);
        let statuses = self.drop_link(reason, now_ms);
        self.statuses(statuses).await && self.link_taken_over().await
    }

    /// Forgets everything granted and reserved on the link (it is gone, or we leave its
    /// relay), and makes a reserved standby the link, or else moves it to the pool's best other
    /// relay when there is one. Returns what to report: the failure, and the move or the wait
    /// before the next dial (the caller then runs [`Node::link_taken_over`]).
    fn drop_link(&mut self, reason: String, now_ms: u64) -> Vec<RelayStatus> {
        self.link_failed = true;
        let (retry_in, listener) = self.link.lost(Instant::now());
        self.auth.reset();
        self.orders.relay_lost();
        if let Some(id) = listener {
            self.swarm.remove_listener(id);
        }
        match self
            .promote_standby(now_ms)
            .or_else(|| self.fail_over(now_ms))
        {
            Some(moving) => vec![
                RelayStatus::Failed {
                    reason,
                    retry_in: Duration::ZERO,
                },
                moving,
            ],
            None => vec![RelayStatus::Failed { reason, retry_in }],
        }
    }

    /// While the link is down: moves it to the pool's best other relay, if there is one, to
    /// be dialed at once. Returns the move to report.
    fn fail_over(&mut self, now_ms: u64) -> Option<RelayStatus> {
        let (to, addrs) = self.probes.fail_over_target(now_ms)?;
        let from = self.link.relay();
        if let Err(e) = self.link.retarget(&addrs, Instant::now()) {
            tracing::debug!(%to, "cannot move to relay: {e}");
            return None;
        }
        self.probe_dialing = None;
        if self.probes.linked(to) && !self.probe_conns.contains_key(&to) {
            self.probe_dialing = Some(to);
        }
        tracing::info!(%from, %to, "moving to another relay");
        Some(RelayStatus::FailingOver { from, to })
    }

    /// While the link's relay refuses us (connected, not granted): leaves it when the pool has
    /// another relay to offer.
    async fn leave_if_refused(&mut self) -> bool {
        let now_ms = unix_time_ms();
        if !self.link.is_up()
            || self.auth.is_authed()
            || !self.probes.serving_refused()
            || self.probes.fail_over_target(now_ms).is_none()
        {
            return true;
        }
        let relay = self.link.relay();
        let _ = self.swarm.disconnect_peer_id(relay);
        let statuses = self.drop_link("the relay refused us".to_string(), now_ms);
        self.statuses(statuses).await && self.link_taken_over().await
    }

    async fn statuses(&mut self, statuses: Vec<RelayStatus>) -> bool {
        for status in statuses {
            if !self.status(status).await {
                return false;
            }
        }
        true
    }

    // ---- standby reservations ----

    /// Adds a standby while there is room and the link holds its own reservation, and moves
    /// each standby along: dial, authenticate (and refresh), reserve.
    async fn standby_tick(&mut self, now: Instant, now_ms: u64) -> bool {
        if self.link.is_reserved() && self.standbys.has_room() {
            self.add_standby(now, now_ms);
        } else if self.link.is_reserved() {
            // A much nearer relay than the worst standby: that standby makes way (the next
            // tick takes the nearer one).
            let standbys = self.standbys.relays();
            let mut taken = standbys.clone();
            taken.extend(self.probe_conns.keys().copied());
            if let Some(worse) = self.probes.standby_to_replace(&standbys, &taken, now_ms) {
                tracing::debug!(%worse, "a standby makes way for a nearer relay");
                if !self.standby_dropped(worse).await {
                    return false;
                }
            }
        }
        for relay in self.standbys.relays() {
            if !self.standby_step(relay, now, now_ms).await {
                return false;
            }
        }
        true
    }

    /// Keeps a standby on the pool's best relay that is free: not the link's, not a standby,
    /// not being probed, and with no probe connection still closing.
    fn add_standby(&mut self, now: Instant, now_ms: u64) {
        let mut taken = self.standbys.relays();
        taken.extend(self.probe_conns.keys().copied());
        let Some((relay, addrs)) = self.probes.standby_target(&taken, now_ms) else {
            return;
        };
        match RelayLink::new(
            &addrs,
            self.config.backoff_initial,
            self.config.backoff_max,
            now,
        ) {
            Ok(link) => {
                tracing::debug!(%relay, "keeping a standby reservation");
                self.probes.standby(relay, true);
                self.standbys.add(Standby {
                    link,
                    // Our cached token is the link's relay's: a standby proves itself afresh.
                    auth: RelayAuth::new(
                        self.config.credential.clone(),
                        None,
                        self.config.identity_stamp,
                        self.config.auth_retry,
                    ),
                    limits: None,
                });
            }
            Err(e) => tracing::debug!(%relay, "cannot keep a standby on the relay: {e}"),
        }
    }

    /// One standby's next step: its dial (once), its authentication when due, its reservation
    /// once granted.
    async fn standby_step(&mut self, relay: PeerId, now: Instant, now_ms: u64) -> bool {
        let local = *self.swarm.local_peer_id();
        let connected = self.swarm.is_connected(&relay);
        let Some(s) = self.standbys.get_mut(&relay) else {
            return true;
        };
        if s.link.dial_due(now) {
            if connected {
                // A connection of ours on its way out: dial once it is gone.
                return true;
            }
            let (opts, _) = s.link.dial();
            return match self.swarm.dial(opts) {
                Ok(()) => {
                    s.link.dialing();
                    true
                }
                Err(e) => {
                    tracing::debug!(%relay, "cannot dial the standby relay: {e}");
                    self.standby_lost(relay, Failure::Unreachable, now_ms).await
                }
            };
        }
        s.auth.grant_expired(now_ms);
        if s.link.is_up() {
            if let Some(refresh) = s.auth.due(&relay, now, now_ms) {
                let (request, _) = s.auth.start(refresh, &relay, &local, now_ms);
                let id = self
                    .swarm
                    .behaviour_mut()
                    .auth
                    .send_request(&relay, request);
                s.auth.sent(id);
            }
        }
        if s.link.reserve_due(s.auth.is_authed(), now) {
            if let Some(listen) = s.link.reservation_addr() {
                match self.swarm.listen_on(listen) {
                    Ok(id) => s.link.reservation_requested(id),
                    Err(e) => {
                        tracing::debug!(%relay, "cannot request a standby reservation: {e}");
                        s.link.reservation_failed(now);
                    }
                }
            }
        }
        true
    }

    /// A connection to a standby's relay is up: prove ourselves there.
    fn standby_up(&mut self, relay: PeerId, connection: ConnectionId, addr: &Multiaddr) {
        let local = *self.swarm.local_peer_id();
        let Some(s) = self.standbys.get_mut(&relay) else {
            return;
        };
        if s.link
            .established(connection, addr, transport_kind(addr))
            .is_none()
        {
            return;
        }
        let (request, _) = s.auth.start(false, &relay, &local, unix_time_ms());
        let id = self
            .swarm
            .behaviour_mut()
            .auth
            .send_request(&relay, request);
        s.auth.sent(id);
    }

    /// Lets the standby on `relay` go: its reservation and its connection. False when there
    /// was none.
    fn release_standby(&mut self, relay: PeerId) -> bool {
        let Some(mut s) = self.standbys.remove(&relay) else {
            return false;
        };
        let (_, listener) = s.link.lost(Instant::now());
        if let Some(id) = listener {
            self.swarm.remove_listener(id);
        }
        let _ = self.swarm.disconnect_peer_id(relay);
        true
    }

    /// A standby failed: dropped, its connection and reservation let go, its relay backed off
    /// in the pool (another is chosen on a later tick).
    async fn standby_lost(&mut self, relay: PeerId, why: Failure, now_ms: u64) -> bool {
        if !self.release_standby(relay) {
            return true;
        }
        tracing::debug!(%relay, ?why, "standby reservation lost");
        self.probes.standby_failed(&relay, why, now_ms);
        self.reachable().await
    }

    /// The trader excluded a standby's relay: the standby goes, with no failure counted.
    async fn standby_dropped(&mut self, relay: PeerId) -> bool {
        if !self.release_standby(relay) {
            return true;
        }
        self.probes.standby(relay, false);
        self.reachable().await
    }

    /// The standby relay answered an auth request, or the request failed.
    async fn on_standby_auth(
        &mut self,
        relay: PeerId,
        event: request_response::Event<AuthRequest, AuthResponse>,
    ) -> bool {
        let Some(s) = self.standbys.get_mut(&relay) else {
            return true;
        };
        let backoff = s.link.backoff();
        let outcome = s
            .auth
            .on_event(event, &self.keypair, &relay, backoff, Instant::now());
        match outcome {
            AuthOutcome::Send(request) => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .auth
                    .send_request(&relay, request);
                s.auth.sent(id);
                true
            }
            AuthOutcome::Granted { grant, .. } => {
                // Reserved on the next tick.
                s.limits = grant.limits.or(s.limits);
                true
            }
            AuthOutcome::Refused {
                status: Some(_), ..
            } => {
                self.standby_lost(relay, Failure::AuthRefused, unix_time_ms())
                    .await
            }
            // An identity stamp is searched for on the link's behalf only: this relay asks
            // more of us than the link's did, and is left.
            AuthOutcome::Working(_) => {
                self.standby_lost(relay, Failure::AuthRefused, unix_time_ms())
                    .await
            }
            // A refused refresh runs to its grant's expiry; a relay without auth decides alone.
            AuthOutcome::Refused { status: None, .. }
            | AuthOutcome::Unsupported { .. }
            | AuthOutcome::Admin(_)
            | AuthOutcome::Nothing => true,
        }
    }

    /// The link is down: the best standby holding its reservation becomes the link (connected,
    /// granted and reserved already), its relay the pool's serving one. Returns the move to
    /// report; the caller runs [`Node::link_taken_over`].
    fn promote_standby(&mut self, now_ms: u64) -> Option<RelayStatus> {
        if self.link.is_up() {
            return None;
        }
        let standby = self.standbys.take_reserved()?;
        let from = self.link.relay();
        let to = standby.link.relay();
        self.link = standby.link;
        self.auth = standby.auth;
        self.probes.linked(to);
        self.probe_dialing = None;
        if let Some(announced) = standby.limits {
            let limits = self.config.market_limits.clone().with_announced(announced);
            self.orders.set_limits(limits, now_ms);
        }
        tracing::info!(%from, %to, "a standby reservation takes over the link");
        Some(RelayStatus::FailingOver { from, to })
    }

    /// After a standby became the link: what a link that comes up does (the book synced and
    /// our orders published again, publishing on, the directory asked), reported as connected
    /// and reserved. Nothing when the link is not up (no standby took over).
    async fn link_taken_over(&mut self) -> bool {
        if !self.link.is_up() {
            return true;
        }
        self.link_failed = false;
        let now_ms = unix_time_ms();
        let local = *self.swarm.local_peer_id();
        let out = self.orders.relay_connected(now_ms);
        if !self.orders_output(out).await || !self.statuses(self.link.statuses(local)).await {
            return false;
        }
        if self.auth.is_authed() {
            self.probes.serving_admitted();
            let out = self.orders.set_publishing(true, now_ms);
            if !self.orders_output(out).await {
                return false;
            }
        }
        if self.link.is_reserved() {
            self.request_directory(Instant::now());
        }
        self.reachable().await
    }

    /// Reports where other traders reach us ([`NodeEvent::Reachable`]) when that changed.
    async fn reachable(&mut self) -> bool {
        let local = *self.swarm.local_peer_id();
        let mut addrs = Vec::new();
        if self.link.is_reserved() {
            if let Some(addr) = self.link.addr() {
                addrs.push(circuit_addr(addr, local));
            }
        }
        addrs.extend(self.standbys.circuit_addrs(local));
        if addrs == self.reachable {
            return true;
        }
        self.reachable = addrs.clone();
        self.emit(NodeEvent::Reachable {
            circuit_addrs: addrs,
        })
        .await
    }

    async fn reserve(&mut self) -> bool {
        let Some(listen) = self.link.reservation_addr() else {
            return true;
        };
        match self.swarm.listen_on(listen) {
            Ok(id) => {
                self.link.reservation_requested(id);
                true
            }
            Err(e) => {
                let retry_in = self.link.reservation_failed(Instant::now());
                self.status(RelayStatus::Failed {
                    reason: format!("cannot request a reservation: {e}"),
                    retry_in,
                })
                .await
            }
        }
    }

    // ---- authentication with the relay ----

    /// Sends the next auth request (see [`RelayAuth::start`]).
    async fn authenticate(&mut self, refresh: bool) -> bool {
        let local = *self.swarm.local_peer_id();
        let relay = self.link.relay();
        let (request, method) = self.auth.start(refresh, &relay, &local, unix_time_ms());
        self.send_auth(request);
        match method {
            Some(method) => {
                self.emit(NodeEvent::Auth(AuthEvent::Authenticating { method }))
                    .await
            }
            None => true,
        }
    }

    /// One slice of the identity-stamp search; once found, a fresh challenge goes out (if the
    /// relay is still connected; else the next connection answers with the stamp).
    async fn stamp_work(&mut self) -> bool {
        let Some((event, request)) = self.auth.work(STAMP_SLICE, Instant::now()) else {
            return true;
        };
        if self.link.connected_relay().is_some() {
            self.send_auth(request);
        }
        self.emit(NodeEvent::Auth(event)).await
    }

    fn send_auth(&mut self, request: AuthRequest) {
        let relay = self.link.relay();
        let id = self
            .swarm
            .behaviour_mut()
            .auth
            .send_request(&relay, request);
        self.auth.sent(id);
    }

    /// The relay lets us in: publish what waited, and reserve on a first grant.
    async fn auth_granted(&mut self, first: bool) -> bool {
        let out = self.orders.set_publishing(true, unix_time_ms());
        if !self.orders_output(out).await {
            return false;
        }
        if first && self.link.reserve_due(true, Instant::now()) {
            return self.reserve().await;
        }
        true
    }

    async fn on_auth_event(
        &mut self,
        event: request_response::Event<AuthRequest, AuthResponse>,
    ) -> bool {
        let relay = self.link.relay();
        let backoff = self.link.backoff();
        let outcome = self
            .auth
            .on_event(event, &self.keypair, &relay, backoff, Instant::now());
        match outcome {
            AuthOutcome::Nothing => true,
            AuthOutcome::Send(request) => {
                self.send_auth(request);
                true
            }
            AuthOutcome::Admin(event) | AuthOutcome::Working(event) => {
                self.emit(NodeEvent::Auth(event)).await
            }
            AuthOutcome::Granted { grant, first } => {
                self.probes.serving_admitted();
                if let Some(announced) = grant.limits {
                    // From now on we keep under what this relay enforces.
                    let limits = self.config.market_limits.clone().with_announced(announced);
                    self.orders.set_limits(limits, unix_time_ms());
                }
                self.emit(NodeEvent::Auth(AuthEvent::Granted(grant))).await
                    && self.auth_granted(first).await
            }
            AuthOutcome::Unsupported { first } => {
                // An older relay without auth: it alone decides what we may do.
                self.emit(NodeEvent::Auth(AuthEvent::Unsupported)).await
                    && self.auth_granted(first).await
            }
            AuthOutcome::Refused { event, status } => {
                if !self.emit(NodeEvent::Auth(event)).await {
                    return false;
                }
                let Some(status) = status else {
                    // A refused refresh: what we hold runs to its expiry.
                    return true;
                };
                // Not let in: the pool ranks this relay last until it lets us in, and we leave
                // it for another as soon as the pool has one (at once, or on a later tick).
                self.probes
                    .serving_failed(Failure::AuthRefused, unix_time_ms());
                self.status(status).await && self.leave_if_refused().await
            }
        }
    }

    // ---- direct messages and the directory ----

    fn request_directory(&mut self, now: Instant) {
        self.direct.directory_requested(now);
        let relay = self.link.relay();
        self.swarm
            .behaviour_mut()
            .directory
            .send_request(&relay, DirectoryRequest {});
    }

    fn dial_peer(&mut self, peer: PeerId) -> Result<(), PeerDialError> {
        if peer == self.link.relay()
            || peer == *self.swarm.local_peer_id()
            || self.standbys.is_standby(&peer)
        {
            return Err(PeerDialError::NotATrader);
        }
        // Through the link's relay, and through each relay we hold a standby reservation on:
        // the peer may hold its reservation on any of them.
        let relay_addr = self.link.addr().ok_or(PeerDialError::NoRelay)?;
        let mut addrs = vec![circuit_addr(relay_addr, peer)];
        addrs.extend(
            self.standbys
                .reserved_addrs()
                .iter()
                .map(|relay| circuit_addr(relay, peer)),
        );
        let opts = DialOpts::peer_id(peer)
            .addresses(addrs)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .build();
        match self.swarm.dial(opts) {
            // Already dialing: what waits goes when that dial completes.
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn send_now(&mut self, id: MessageId, peer: PeerId, message: DirectMessage) {
        let request = self
            .swarm
            .behaviour_mut()
            .messages
            .send_request(&peer, message);
        self.direct.sent(request, id, peer, Instant::now());
    }

    async fn send_message(&mut self, id: MessageId, peer: PeerId, text: String) -> bool {
        let failed = |reason: String| NodeEvent::MessageFailed {
            id,
            to: peer,
            reason,
        };
        let message = match DirectMessage::new(text, unix_time_ms()) {
            Ok(m) => m,
            Err(e) => return self.emit(failed(e.to_string())).await,
        };
        if self.swarm.is_connected(&peer) {
            self.send_now(id, peer, message);
            return true;
        }
        if let Err(e) = self.direct.queue(id, peer, message) {
            return self.emit(failed(e.to_string())).await;
        }
        if let Err(e) = self.dial_peer(peer) {
            let events = self.direct.fail_pending(peer, &e.to_string());
            return self.emit_all(events).await;
        }
        true
    }

    // ---- commands ----

    async fn on_command(&mut self, command: Command) -> bool {
        let now_ms = unix_time_ms();
        match command {
            Command::RefreshPeers => {
                if self.link.is_reserved() {
                    self.request_directory(Instant::now());
                }
                true
            }
            Command::WatchPair { pair } => {
                let out = self.orders.watch(pair, now_ms);
                self.orders_output(out).await
            }
            Command::PlaceOrder { pair, spec } => {
                let out = self.orders.place(pair, spec, now_ms);
                self.orders_output(out).await
            }
            Command::Restore { orders, trades } => {
                let out = self.negotiation.restore(trades, now_ms);
                if !self.negotiation_output(out).await {
                    return false;
                }
                let out = self.orders.restore(orders, now_ms);
                self.orders_output(out).await
            }
            Command::CancelOrder { id } => {
                let out = self.orders.cancel(id, now_ms);
                self.orders_output(out).await
            }
            Command::TakeOrder {
                pair,
                order_id,
                amount,
                trade_id,
                settlement,
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
                    trade_id,
                    settlement,
                    connected,
                    now_ms,
                );
                self.negotiation_output(out).await
            }
            Command::Settle { trade_id, message } => {
                let connected = self
                    .negotiation
                    .trade(&trade_id)
                    .is_some_and(|t| self.swarm.is_connected(&t.counterparty));
                let out = self
                    .negotiation
                    .settle_send(trade_id, message, connected, now_ms);
                self.negotiation_output(out).await
            }
            Command::SetCredential { credential } => {
                self.auth.set_credential(credential);
                if self.link.is_up() {
                    return self.authenticate(false).await;
                }
                true
            }
            Command::Admin { action } => {
                let refused = |message: &str| {
                    NodeEvent::Auth(AuthEvent::Admin {
                        message: message.into(),
                        entries: Vec::new(),
                        refused: Some(RefuseReason::Busy),
                    })
                };
                if !self.link.is_up() {
                    return self.emit(refused("not connected to the relay")).await;
                }
                if !self.auth.admin_room() {
                    return self
                        .emit(refused("too many admin requests in flight"))
                        .await;
                }
                let relay = self.link.relay();
                let id = self
                    .swarm
                    .behaviour_mut()
                    .auth
                    .send_request(&relay, AuthRequest::Admin(action));
                self.auth.admin_sent(id);
                true
            }
            Command::Connect { peer } => {
                if self.swarm.is_connected(&peer) {
                    return true;
                }
                match self.dial_peer(peer) {
                    Ok(()) => true,
                    Err(e) => {
                        self.emit(NodeEvent::PeerConnectFailed {
                            peer,
                            reason: e.to_string(),
                        })
                        .await
                    }
                }
            }
            Command::Send { id, peer, text } => self.send_message(id, peer, text).await,
            Command::ChooseRelay { relay, choice } => {
                self.probes.choose(&relay, choice);
                if choice == darkswap_relays::Choice::Excluded {
                    // Excluded: not even a standby.
                    return self.standby_dropped(relay).await;
                }
                true
            }
        }
    }

    // ---- swarm events ----

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
                if self.standbys.is_standby(&peer_id) {
                    self.standby_up(peer_id, connection_id, &addr);
                    return true;
                }
                if peer_id == self.link.relay() {
                    if self.probe_dialing == Some(peer_id) {
                        self.probe_dialing = None;
                    }
                    return self.link_up(connection_id, &addr).await;
                }
                // A probe of another relay: not a trader; its first ping ends it.
                if self.probes.is_other_relay(&peer_id) {
                    self.probes
                        .connected_on(peer_id, darkswap_proto::addr::with_peer(&addr, peer_id));
                    if self.probe_conns.len() < MAX_PROBE_CONNS {
                        self.probe_conns.insert(peer_id, (connection_id, addr));
                    }
                    return true;
                }
                for (id, message) in self.direct.take_pending(&peer_id) {
                    self.send_now(id, peer_id, message);
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
                if let Some(s) = self.standbys.get_mut(&peer_id) {
                    if s.link.is_link(connection_id) {
                        return self
                            .standby_lost(peer_id, Failure::Lost, unix_time_ms())
                            .await;
                    }
                    return true;
                }
                if peer_id == self.link.relay() {
                    if self.link.is_link(connection_id) {
                        if let Some(e) = &cause {
                            tracing::info!(error = %e, "connection to the relay closed");
                        }
                        let reason = match cause {
                            Some(_) => "the connection to the relay dropped (the network, or a relay restart)".to_string(),
                            None => "the relay closed the connection".to_string(),
                        };
                        return self.relay_lost(reason).await;
                    }
                    return true;
                }
                if self.probes.is_other_relay(&peer_id) {
                    if self
                        .probe_conns
                        .get(&peer_id)
                        .is_some_and(|(c, _)| *c == connection_id)
                    {
                        self.probe_conns.remove(&peer_id);
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
                if let Some(s) = self.standbys.get_mut(&peer) {
                    if !s.link.is_up() {
                        tracing::debug!(%peer, %error, "cannot reach the standby relay");
                        return self
                            .standby_lost(peer, Failure::Unreachable, unix_time_ms())
                            .await;
                    }
                    return true;
                }
                if peer == self.link.relay() {
                    if !self.link.is_up() {
                        tracing::info!(%error, "cannot reach the relay");
                        return self
                            .relay_lost(
                                "cannot reach the relay (check your connection; the relay may be down)"
                                    .to_string(),
                            )
                            .await;
                    }
                    return true;
                }
                if self
                    .probes
                    .probe_failed(&peer, Failure::Unreachable, unix_time_ms())
                {
                    tracing::debug!(%peer, %error, "cannot reach a relay of the pool");
                    return true;
                }
                // The trader reads this (a take aborted, the peer list): a sentence; the
                // transport's own chain goes to the log.
                tracing::debug!(%peer, %error, "cannot reach the peer through the relay");
                let detail = error.to_string();
                let reason = if detail.contains("no reservation") {
                    "they are offline (the relay holds no place for them)".to_string()
                } else {
                    "they are not reachable through the relay (offline, or the relay refused the circuit)".to_string()
                };
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
                let events = self.direct.fail_pending(peer, &reason);
                self.emit_all(events).await
            }
            SwarmEvent::ListenerClosed { listener_id, .. }
                if self.standbys.by_listener(listener_id).is_some() =>
            {
                // Asked for again after the link's backoff, while the standby is connected.
                if let Some(relay) = self.standbys.by_listener(listener_id) {
                    if let Some(s) = self.standbys.get_mut(&relay) {
                        s.link.listener_closed(listener_id, Instant::now());
                    }
                }
                self.reachable().await
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } if self.link.is_reservation(listener_id) => {
                let Some(retry_in) = self.link.listener_closed(listener_id, Instant::now()) else {
                    return true;
                };
                let reason = match reason {
                    Ok(()) => "reservation closed by the relay".to_string(),
                    Err(e) => {
                        tracing::info!(error = %e, "reservation refused");
                        "reservation refused: the relay would not keep a place for you (it is full, or your access is not granted yet)".to_string()
                    }
                };
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
            }) => {
                let local = *self.swarm.local_peer_id();
                if let Some(s) = self.standbys.get_mut(&relay_peer_id) {
                    s.link.reservation_accepted(relay_peer_id, local);
                    return self.reachable().await;
                }
                match self.link.reservation_accepted(relay_peer_id, local) {
                    Some(status) => {
                        self.request_directory(Instant::now());
                        self.status(status).await
                    }
                    None => true,
                }
            }
            ClientBehaviourEvent::Ping(ping::Event {
                peer,
                result: Ok(rtt),
                ..
            }) => {
                let now_ms = unix_time_ms();
                if peer == self.link.relay() {
                    self.probes.serving_rtt(rtt, now_ms);
                    self.emit(NodeEvent::RelayRtt(rtt)).await
                } else if self.standbys.is_standby(&peer) {
                    self.probes.standby_rtt(&peer, rtt, now_ms);
                    true
                } else if self.probes.pinged(&peer, rtt, now_ms) {
                    // Measured: the probe's connection is not kept.
                    self.probe_conns.remove(&peer);
                    let _ = self.swarm.disconnect_peer_id(peer);
                    true
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
                if peer == self.link.relay() || self.standbys.is_standby(&peer) {
                    self.swarm.close_connection(connection);
                } else if self
                    .probes
                    .probe_failed(&peer, Failure::NoPing, unix_time_ms())
                {
                    let _ = self.swarm.disconnect_peer_id(peer);
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
            ClientBehaviourEvent::Auth(event) => {
                let peer = match &event {
                    request_response::Event::Message { peer, .. }
                    | request_response::Event::OutboundFailure { peer, .. }
                    | request_response::Event::InboundFailure { peer, .. }
                    | request_response::Event::ResponseSent { peer, .. } => *peer,
                };
                if self.standbys.is_standby(&peer) {
                    self.on_standby_auth(peer, event).await
                } else {
                    self.on_auth_event(event).await
                }
            }
            ClientBehaviourEvent::BookSync(event) => self.on_book_sync_event(event).await,
            ClientBehaviourEvent::Records(event) => {
                self.on_records_event(event);
                true
            }
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
                Some(token) => self.negotiation.on_failure(
                    token,
                    &error.to_string(),
                    matches!(error, request_response::OutboundFailure::ConnectionClosed),
                    now,
                ),
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
        event: request_response::Event<DirectoryRequest, DirectoryResponse>,
    ) -> bool {
        match event {
            request_response::Event::Message {
                message: request_response::Message::Response { response, .. },
                ..
            } => {
                let me = *self.swarm.local_peer_id();
                match self.direct.directory(&response, &me) {
                    Some(event) => self.emit(event).await,
                    None => true,
                }
            }
            request_response::Event::OutboundFailure { .. } => {
                self.direct.directory_failed();
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
                    let report = self.direct.acknowledged(
                        request_id,
                        response.accepted,
                        response.reason,
                        Instant::now(),
                    );
                    match report {
                        Some(event) => self.emit(event).await,
                        None => true,
                    }
                }
            },
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => match self.direct.failed(request_id, error.to_string()) {
                Some(event) => self.emit(event).await,
                None => true,
            },
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
