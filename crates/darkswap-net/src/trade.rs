//! Trade negotiation (`/darkswap/trade/2`), both roles, as a state machine per trade, carried
//! sealed in end-to-end sessions.
//!
//! The taker asks, the maker answers (see `darkswap_proto::trade` for the protocol). The maker
//! reserves the amount in its own book before accepting, so two racing takers can never buy the
//! same unit; every path that does not end in an agreement (rejection, abort, timeout, lost
//! connection) releases the reservation. An agreed trade is "agreed, awaiting settlement":
//! settlement is not built yet, and nothing here pretends funds moved.
//!
//! # Sealed
//! No trade message crosses the wire in the clear. Before its first request to a maker, the
//! taker runs the `darkswap-e2e` handshake (request `Handshake(init)`, answer `Handshake(resp)`:
//! ephemeral X25519 keys signed by both identities); then every `TradeRequest` and
//! `TradeResponse` travels as a frame sealed in that session ([`crate::codec::TradeEnvelope`]).
//! The associated data binds the protocol name, the direction, both PeerIds, and for an answer
//! the SHA-256 of the request frame it answers, so a relay cannot move an answer to another
//! request, reflect a frame, or replay one (the session's counters refuse replays). The taker
//! rekeys in-band when the session's policy says so (no request in flight meanwhile).
//!
//! A frame that fails to open is refused (the maker answers `Refused`, the taker aborts the
//! trade), reported as [`E2eEvent::FrameRejected`] and counted in the client metrics. A maker
//! without the session (expired, evicted, restarted) answers `Refused(NoSession)`: the taker
//! handshakes again and resends once. A taker that restarts starts with no session, so a resumed
//! trade always begins with a fresh handshake.

use std::collections::{HashMap, VecDeque};

use darkswap_e2e::{E2eError, ManagerLimits, Opened, RekeyPolicy, Role, SessionManager};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::OrderAction;
use darkswap_proto::trade::{Agreement, TradeId, TradeRequest, TradeResponse};
use libp2p::gossipsub;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;

use crate::codec::{digest, request_aad, response_aad, Refusal, TradeCodec, TradeEnvelope};
use crate::trading::{Trading, TradingEvent};
use crate::unix_time_ms;

/// Trades remembered (finished ones are dropped oldest first beyond this).
pub const MAX_TRADES: usize = 1_000;
/// Trades in negotiation at once, both roles together.
pub const MAX_OPEN_TRADES: usize = 64;
/// Requests queued for a counterparty we are still connecting to or securing a session with.
const MAX_WAITING_PER_PEER: usize = 8;

/// What the end-to-end layer of the trade protocol reports (counted in the client metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum E2eEvent {
    /// A session with `peer` is up: we started it (`initiator`, as a taker) or answered it.
    SessionEstablished {
        peer: PeerId,
        initiator: bool,
        cipher: &'static str,
    },
    /// The session with `peer` moved to fresh keys.
    Rekeyed { peer: PeerId, epoch: u32 },
    /// A handshake or sealed frame from `peer` was refused; `reason` is from a closed set.
    FrameRejected { peer: PeerId, reason: &'static str },
}

/// A trade request waiting to be sealed and sent.
struct Queued {
    id: TradeId,
    request: TradeRequest,
    /// Already resent once after the maker had lost our session.
    retried: bool,
}

/// What one of our outbound requests was.
enum Outbound {
    Trade {
        id: TradeId,
        peer: PeerId,
        request: TradeRequest,
        frame_digest: [u8; 32],
        retried: bool,
    },
    Handshake {
        peer: PeerId,
    },
    Rekey {
        peer: PeerId,
        frame_digest: [u8; 32],
    },
}

fn refusal_for(error: &E2eError) -> Refusal {
    match error {
        E2eError::NoSession => Refusal::NoSession,
        E2eError::Session(darkswap_e2e::SessionError::WrongEpoch) => Refusal::StaleEpoch,
        E2eError::Handshake(_) => Refusal::BadHandshake,
        _ => Refusal::BadFrame,
    }
}

/// Which side of the trade we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeRole {
    Maker,
    Taker,
}

/// Where a trade stands. Every state is in this one enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeState {
    /// Taker: take request sent, waiting for the maker.
    Requested,
    /// Maker: amount reserved and agreement signed, waiting for the taker's signature.
    /// Taker: agreement received and countersigned, waiting for the maker's final answer.
    Accepted,
    /// Signed by both: agreed, awaiting settlement.
    Agreed,
    /// The maker refused the take.
    Rejected { reason: String },
    /// Ended without agreement after being accepted or requested (timeout, abort, lost link).
    Aborted { reason: String },
}

impl TradeState {
    pub fn is_open(&self) -> bool {
        matches!(self, TradeState::Requested | TradeState::Accepted)
    }

    pub fn label(&self) -> &'static str {
        match self {
            TradeState::Requested => "requested",
            TradeState::Accepted => "accepted",
            TradeState::Agreed => "agreed",
            TradeState::Rejected { .. } => "rejected",
            TradeState::Aborted { .. } => "aborted",
        }
    }
}

/// One trade, as shown and as persisted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trade {
    pub id: TradeId,
    pub role: TradeRole,
    pub counterparty: PeerId,
    pub pair: Pair,
    pub order_id: OrderId,
    /// The maker's side of the order.
    pub maker_side: Side,
    pub price: Price,
    pub amount: u64,
    pub state: TradeState,
    /// The signed agreement's encoding, once there is one.
    pub agreement: Option<Vec<u8>>,
    pub maker_signature: Option<Vec<u8>>,
    pub taker_signature: Option<Vec<u8>>,
    /// When an accepted trade must be confirmed by.
    pub deadline_ms: Option<u64>,
    pub updated_at_ms: u64,
}

impl Trade {
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The negotiation state kept in [`Trading`].
#[derive(Default)]
pub(crate) struct Negotiations {
    trades: HashMap<TradeId, Trade>,
    /// Finished trades, oldest first, for pruning.
    finished: VecDeque<TradeId>,
    waiting: HashMap<PeerId, VecDeque<Queued>>,
    outbound: HashMap<OutboundRequestId, Outbound>,
    /// End-to-end sessions with counterparties, made on first use (it needs our identity).
    sessions: Option<SessionManager>,
    /// When those sessions take fresh keys ([`RekeyPolicy::default`] unless configured).
    rekey: RekeyPolicy,
}

impl Negotiations {
    fn open(&self) -> usize {
        self.trades.values().filter(|t| t.state.is_open()).count()
    }
}

fn abort(trade: &mut Trade, reason: impl Into<String>) {
    trade.state = TradeState::Aborted {
        reason: reason.into(),
    };
    trade.updated_at_ms = unix_time_ms();
}

impl Trading {
    fn finish(&mut self, id: TradeId) {
        let n = &mut self.negotiations;
        n.finished.push_back(id);
        while n.finished.len() > MAX_TRADES {
            if let Some(old) = n.finished.pop_front() {
                n.trades.remove(&old);
            }
        }
    }

    fn trade_event(&self, id: &TradeId) -> Vec<TradingEvent> {
        self.negotiations
            .trades
            .get(id)
            .map(|t| vec![TradingEvent::Trade(t.clone())])
            .unwrap_or_default()
    }

    /// Brings back trades from storage. A taker that had countersigned resumes: it sends its
    /// confirmation again (the maker answers `Done` if it had agreed, or refuses if the window
    /// closed), so both sides end in the same state. Any other trade still in negotiation is
    /// aborted: what the maker had reserved lived in the previous session's memory, and the
    /// counterparty's own timeout ends it there too.
    pub fn restore_trades(&mut self, trades: Vec<Trade>) -> Vec<TradingEvent> {
        let mut events = Vec::new();
        for mut trade in trades.into_iter().take(MAX_TRADES) {
            if self.negotiations.trades.contains_key(&trade.id) {
                continue;
            }
            let id = trade.id;
            let resumable = trade.role == TradeRole::Taker
                && trade.state == TradeState::Accepted
                && trade.deadline_ms.is_some_and(|d| d > unix_time_ms());
            if let (Some(signature), true) = (&trade.taker_signature, resumable) {
                let confirm = TradeRequest::Confirm {
                    trade_id: id,
                    taker_signature: signature.clone(),
                };
                let waiting = self
                    .negotiations
                    .waiting
                    .entry(trade.counterparty)
                    .or_default();
                if waiting.len() < MAX_WAITING_PER_PEER {
                    waiting.push_back(Queued {
                        id,
                        request: confirm,
                        retried: false,
                    });
                }
                events.push(TradingEvent::Trade(trade.clone()));
                self.negotiations.trades.insert(id, trade);
                continue;
            }
            if trade.state.is_open() {
                abort(
                    &mut trade,
                    "interrupted: the client restarted during negotiation",
                );
            }
            events.push(TradingEvent::Trade(trade.clone()));
            self.negotiations.trades.insert(id, trade);
            self.finish(id);
        }
        events
    }

    /// Counterparties with requests waiting for a connection (the node dials them).
    pub fn peers_waiting(&self) -> Vec<PeerId> {
        self.negotiations.waiting.keys().copied().collect()
    }

    /// Starts taking `amount` of someone's order. Returns the maker to connect to.
    pub fn take(
        &mut self,
        pair: &Pair,
        order_id: OrderId,
        amount: u64,
        rr: &mut request_response::Behaviour<TradeCodec>,
        connected: bool,
    ) -> Result<(PeerId, Vec<TradingEvent>), String> {
        if self.negotiations.open() >= MAX_OPEN_TRADES {
            return Err(format!(
                "{MAX_OPEN_TRADES} trades are already in negotiation"
            ));
        }
        let order = self
            .market
            .order(pair, &order_id)
            .ok_or("that order is no longer in the book")?;
        let maker = order.data.maker;
        if maker == self.me {
            return Err("that is your own order".into());
        }
        let available = self.market.book(pair).and_then(|b| b.available(&order_id));
        let available = available.unwrap_or(0);
        if amount == 0 || amount > available {
            return Err(format!("amount must be between 1 and {available}"));
        }
        let min = order.effective_min_fill(available);
        if amount < min {
            return Err(format!("this order's minimum fill is {min}"));
        }
        let trade = Trade {
            id: rand::random(),
            role: TradeRole::Taker,
            counterparty: maker,
            pair: pair.clone(),
            order_id,
            maker_side: order.side,
            price: order.price,
            amount,
            state: TradeState::Requested,
            agreement: None,
            maker_signature: None,
            taker_signature: None,
            deadline_ms: None,
            updated_at_ms: unix_time_ms(),
        };
        let id = trade.id;
        self.negotiations.trades.insert(id, trade);
        let request = TradeRequest::Take {
            trade_id: id,
            order_id,
            pair: pair.clone(),
            amount,
        };
        self.send_trade(maker, id, request, rr, connected)?;
        Ok((maker, self.trade_event(&id)))
    }

    /// Queues a request for `peer`; when `connected`, sends what can go now (sealed).
    fn send_trade(
        &mut self,
        peer: PeerId,
        id: TradeId,
        request: TradeRequest,
        rr: &mut request_response::Behaviour<TradeCodec>,
        connected: bool,
    ) -> Result<(), String> {
        let waiting = self.negotiations.waiting.entry(peer).or_default();
        if waiting.len() >= MAX_WAITING_PER_PEER {
            return Err("too many requests waiting for this trader".into());
        }
        waiting.push_back(Queued {
            id,
            request,
            retried: false,
        });
        if connected {
            let mut events = self.pump(peer, rr);
            self.pending_events.append(&mut events);
        }
        Ok(())
    }

    /// A connection to `peer` is up: send what waited for it (after a handshake if needed).
    pub fn peer_connected(
        &mut self,
        peer: PeerId,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) {
        let mut events = self.pump(peer, rr);
        self.pending_events.append(&mut events);
    }

    fn sessions(&mut self) -> &mut SessionManager {
        let keypair = &self.keypair;
        let limits = ManagerLimits {
            rekey: self.negotiations.rekey,
            ..ManagerLimits::default()
        };
        self.negotiations
            .sessions
            .get_or_insert_with(|| SessionManager::new(keypair.clone(), limits))
    }

    /// Sets when end-to-end sessions rekey (before the first session is made).
    pub fn set_rekey_policy(&mut self, policy: RekeyPolicy) {
        self.negotiations.rekey = policy;
    }

    /// Moves the requests waiting for `peer` forward, as far as the session allows: starts the
    /// handshake if there is no session, rekeys if due (once nothing is in flight), else seals
    /// and sends them. Idempotent while a handshake or rekey is waiting for its answer.
    fn pump(
        &mut self,
        peer: PeerId,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        let now = unix_time_ms();
        let me = self.me;
        let aad = request_aad(&me, &peer);
        if self
            .negotiations
            .waiting
            .get(&peer)
            .is_none_or(|w| w.is_empty())
        {
            return Vec::new();
        }
        let sessions = self.sessions();
        if sessions.handshake_pending(&peer) || sessions.rekeying(&peer) {
            return Vec::new();
        }
        if sessions.rekey_due(&peer, now) {
            let in_flight = self
                .negotiations
                .outbound
                .values()
                .any(|o| matches!(o, Outbound::Trade { peer: p, .. } if *p == peer));
            if in_flight {
                // Rekey once the answers are in (they would be sealed in the old epoch).
                return Vec::new();
            }
            match self.sessions().start_rekey(peer, &aad, now) {
                Ok(frame) => {
                    let frame_digest = digest(&frame);
                    let request_id = rr.send_request(&peer, TradeEnvelope::Sealed(frame));
                    self.negotiations
                        .outbound
                        .insert(request_id, Outbound::Rekey { peer, frame_digest });
                    return Vec::new();
                }
                // Session gone meanwhile (idle or too old): start over below.
                Err(_) => {
                    self.sessions().remove(&peer, Role::Initiator);
                }
            }
        }
        let queue = self.negotiations.waiting.remove(&peer).unwrap_or_default();
        let mut queue = queue.into_iter();
        let mut events = Vec::new();
        while let Some(queued) = queue.next() {
            let plaintext = queued.request.encode();
            match self
                .sessions()
                .seal(peer, Role::Initiator, &aad, &plaintext, now)
            {
                Ok(frame) => {
                    let frame_digest = digest(&frame);
                    let request_id = rr.send_request(&peer, TradeEnvelope::Sealed(frame));
                    self.negotiations.outbound.insert(
                        request_id,
                        Outbound::Trade {
                            id: queued.id,
                            peer,
                            request: queued.request,
                            frame_digest,
                            retried: queued.retried,
                        },
                    );
                }
                Err(E2eError::NoSession) => {
                    // No session (first contact, or it expired): handshake, then send all.
                    let mut rest: VecDeque<Queued> = VecDeque::from([queued]);
                    rest.extend(queue);
                    self.negotiations.waiting.insert(peer, rest);
                    match self.sessions().start(peer, now) {
                        Ok(init) => {
                            let request_id = rr.send_request(&peer, TradeEnvelope::Handshake(init));
                            self.negotiations
                                .outbound
                                .insert(request_id, Outbound::Handshake { peer });
                        }
                        Err(e) => {
                            events.extend(self.fail_waiting(
                                peer,
                                &format!("cannot secure a session with the maker: {e}"),
                            ));
                        }
                    }
                    return events;
                }
                Err(e) => {
                    // Nonces used up or the like: this trade cannot go out in this session.
                    self.sessions().remove(&peer, Role::Initiator);
                    events.extend(
                        self.abort_open_taker(queued.id, &format!("cannot seal the request: {e}")),
                    );
                }
            }
        }
        events
    }

    /// Ends (as the taker) every trade whose request waited for `peer`.
    fn fail_waiting(&mut self, peer: PeerId, reason: &str) -> Vec<TradingEvent> {
        let queue = self.negotiations.waiting.remove(&peer).unwrap_or_default();
        let mut events = Vec::new();
        for queued in queue {
            events.extend(self.abort_open_taker(queued.id, reason));
        }
        events
    }

    /// Ends one of our open taker trades locally, if it is still open.
    fn abort_open_taker(&mut self, id: TradeId, reason: &str) -> Vec<TradingEvent> {
        match self.negotiations.trades.get_mut(&id) {
            Some(t) if t.state.is_open() && t.role == TradeRole::Taker => {
                abort(t, reason);
            }
            _ => return Vec::new(),
        }
        self.finish(id);
        self.trade_event(&id)
    }

    /// We could not reach `peer`: its trades in negotiation end.
    pub fn peer_unreachable(&mut self, peer: PeerId, reason: &str) -> Vec<TradingEvent> {
        self.negotiations.waiting.remove(&peer);
        let ids: Vec<TradeId> = self
            .negotiations
            .trades
            .values()
            .filter(|t| t.counterparty == peer && t.role == TradeRole::Taker && t.state.is_open())
            .map(|t| t.id)
            .collect();
        let mut events = Vec::new();
        for id in ids {
            if let Some(t) = self.negotiations.trades.get_mut(&id) {
                abort(t, format!("cannot reach the maker: {reason}"));
            }
            self.finish(id);
            events.extend(self.trade_event(&id));
        }
        events
    }

    /// A trade envelope from another trader (we are the maker): a handshake to answer, or a
    /// sealed request to open, handle, and answer sealed. Whatever does not open is refused.
    pub fn on_trade_request(
        &mut self,
        peer: PeerId,
        envelope: TradeEnvelope,
        channel: ResponseChannel<TradeEnvelope>,
        rr: &mut request_response::Behaviour<TradeCodec>,
        gossip: &mut gossipsub::Behaviour,
    ) -> Vec<TradingEvent> {
        let now = unix_time_ms();
        let me = self.me;
        let mut events = Vec::new();
        let rejected =
            |reason: &'static str| TradingEvent::E2e(E2eEvent::FrameRejected { peer, reason });
        let answer = match envelope {
            TradeEnvelope::Handshake(init) => match self.sessions().respond(peer, &init, now) {
                Ok((resp, cipher)) => {
                    events.push(TradingEvent::E2e(E2eEvent::SessionEstablished {
                        peer,
                        initiator: false,
                        cipher: cipher.label(),
                    }));
                    TradeEnvelope::Handshake(resp)
                }
                Err(e) => {
                    events.push(rejected(e.label()));
                    TradeEnvelope::Refused(Refusal::BadHandshake)
                }
            },
            TradeEnvelope::Sealed(frame) => {
                let aad = request_aad(&peer, &me);
                let reply_aad = response_aad(&peer, &me, &digest(&frame));
                match self
                    .sessions()
                    .open(peer, Role::Responder, &aad, &frame, now)
                {
                    Ok(Opened::Data(plaintext)) => {
                        let response = match TradeRequest::decode(&plaintext) {
                            Ok(request) => {
                                let (response, changed) =
                                    self.handle_trade_request(peer, request, gossip);
                                events.extend(
                                    changed.map(|id| self.trade_event(&id)).unwrap_or_default(),
                                );
                                response
                            }
                            Err(_) => {
                                events.push(TradingEvent::MessageRejected {
                                    reason: "trade_request_malformed",
                                });
                                TradeResponse::Rejected {
                                    reason: "malformed trade request".into(),
                                }
                            }
                        };
                        match self.sessions().seal(
                            peer,
                            Role::Responder,
                            &reply_aad,
                            &response.encode(),
                            now,
                        ) {
                            Ok(sealed) => TradeEnvelope::Sealed(sealed),
                            Err(e) => TradeEnvelope::Refused(refusal_for(&e)),
                        }
                    }
                    Ok(Opened::RekeyRequested(init)) => {
                        match self.sessions().answer_rekey(peer, &init, &reply_aad, now) {
                            Ok((sealed, epoch)) => {
                                events.push(TradingEvent::E2e(E2eEvent::Rekeyed { peer, epoch }));
                                TradeEnvelope::Sealed(sealed)
                            }
                            Err(e) => {
                                events.push(rejected(e.label()));
                                TradeEnvelope::Refused(refusal_for(&e))
                            }
                        }
                    }
                    Ok(Opened::Rekeyed { .. }) => {
                        events.push(rejected("unexpected_kind"));
                        TradeEnvelope::Refused(Refusal::BadFrame)
                    }
                    Err(e) => {
                        events.push(rejected(e.label()));
                        TradeEnvelope::Refused(refusal_for(&e))
                    }
                }
            }
            TradeEnvelope::Refused(_) => {
                events.push(rejected("unexpected_kind"));
                TradeEnvelope::Refused(Refusal::BadFrame)
            }
        };
        // The taker may be gone; its side then times out.
        let _ = rr.send_response(channel, answer);
        events.append(&mut self.pending_events);
        events.extend(self.book_views());
        events
    }

    /// A trade request that opened (we are the maker): the answer, and the trade it changed.
    fn handle_trade_request(
        &mut self,
        peer: PeerId,
        request: TradeRequest,
        gossip: &mut gossipsub::Behaviour,
    ) -> (TradeResponse, Option<TradeId>) {
        match request {
            TradeRequest::Take {
                trade_id,
                order_id,
                pair,
                amount,
            } => self.on_take(peer, trade_id, order_id, pair, amount),
            TradeRequest::Confirm {
                trade_id,
                taker_signature,
            } => self.on_confirm(peer, trade_id, taker_signature, gossip),
            TradeRequest::Abort { trade_id, reason } => {
                match self.negotiations.trades.get(&trade_id) {
                    Some(t)
                        if t.counterparty == peer
                            && t.role == TradeRole::Maker
                            && t.state.is_open() =>
                    {
                        self.release_maker(&trade_id, format!("the taker aborted: {reason}"));
                        (TradeResponse::Aborted { trade_id }, Some(trade_id))
                    }
                    _ => (
                        TradeResponse::Rejected {
                            reason: "no such trade in negotiation".into(),
                        },
                        None,
                    ),
                }
            }
        }
    }

    fn on_take(
        &mut self,
        peer: PeerId,
        trade_id: TradeId,
        order_id: OrderId,
        pair: Pair,
        amount: u64,
    ) -> (TradeResponse, Option<TradeId>) {
        let reject = |reason: String| (TradeResponse::Rejected { reason }, None);
        if self.negotiations.trades.contains_key(&trade_id) {
            return reject("duplicate trade id".into());
        }
        if self.negotiations.open() >= MAX_OPEN_TRADES {
            return reject("the maker is busy; try again shortly".into());
        }
        let Some(own) = self.own.get(&order_id).cloned() else {
            return reject("that order is no longer live".into());
        };
        if own.pair != pair {
            return reject("that order is on another pair".into());
        }
        let now = unix_time_ms();
        if let Err(e) = self.market.reserve(&pair, &order_id, amount, now) {
            return reject(e.to_string());
        }
        let Some(agreement) = Agreement::new(
            trade_id,
            pair.clone(),
            order_id,
            self.me,
            peer,
            own.spec.side,
            own.spec.price,
            amount,
            now,
        ) else {
            self.market.release(&pair, &order_id, amount);
            return reject("amount × price is too large".into());
        };
        let encoded = agreement.encode();
        let Ok(signature) = Agreement::sign(&encoded, &self.keypair) else {
            self.market.release(&pair, &order_id, amount);
            return reject("the maker could not sign".into());
        };
        self.negotiations.trades.insert(
            trade_id,
            Trade {
                id: trade_id,
                role: TradeRole::Maker,
                counterparty: peer,
                pair,
                order_id,
                maker_side: own.spec.side,
                price: own.spec.price,
                amount,
                state: TradeState::Accepted,
                agreement: Some(encoded.clone()),
                maker_signature: Some(signature.clone()),
                taker_signature: None,
                deadline_ms: Some(agreement.expires_at_ms),
                updated_at_ms: now,
            },
        );
        self.dirty.insert(own.pair);
        (
            TradeResponse::Accepted {
                agreement: encoded,
                maker_signature: signature,
            },
            Some(trade_id),
        )
    }

    fn on_confirm(
        &mut self,
        peer: PeerId,
        trade_id: TradeId,
        taker_signature: Vec<u8>,
        gossip: &mut gossipsub::Behaviour,
    ) -> (TradeResponse, Option<TradeId>) {
        let reject = |reason: &str| {
            (
                TradeResponse::Rejected {
                    reason: reason.into(),
                },
                None,
            )
        };
        let Some(trade) = self.negotiations.trades.get(&trade_id).cloned() else {
            return reject("no such trade (it may have expired)");
        };
        if trade.counterparty != peer || trade.role != TradeRole::Maker {
            return reject("no such trade");
        }
        if trade.state == TradeState::Agreed {
            // A repeated confirm (the first answer was lost): same answer.
            return (TradeResponse::Done { trade_id }, None);
        }
        if trade.state != TradeState::Accepted {
            return reject("the trade is no longer in negotiation");
        }
        let encoded = trade.agreement.clone().unwrap_or_default();
        if Agreement::verify(&encoded, &peer, &taker_signature).is_err() {
            self.release_maker(&trade_id, "the taker's signature did not verify".into());
            return (
                TradeResponse::Rejected {
                    reason: "your signature does not verify".into(),
                },
                Some(trade_id),
            );
        }
        if trade.deadline_ms.is_some_and(|d| unix_time_ms() > d) {
            self.release_maker(&trade_id, "confirmed too late".into());
            return (
                TradeResponse::Rejected {
                    reason: "the agreement expired before your confirmation".into(),
                },
                Some(trade_id),
            );
        }
        let remaining = match self
            .market
            .settle(&trade.pair, &trade.order_id, trade.amount)
        {
            Ok(r) => r,
            Err(e) => {
                self.release_maker(&trade_id, format!("cannot settle: {e}"));
                return (
                    TradeResponse::Rejected {
                        reason: "the order changed; the trade is off".into(),
                    },
                    Some(trade_id),
                );
            }
        };
        if let Some(t) = self.negotiations.trades.get_mut(&trade_id) {
            t.state = TradeState::Agreed;
            t.taker_signature = Some(taker_signature);
            t.updated_at_ms = unix_time_ms();
        }
        self.finish(trade_id);
        self.republish_after_fill(&trade.order_id, remaining);
        self.flush(gossip);
        (TradeResponse::Done { trade_id }, Some(trade_id))
    }

    /// After a fill, tell everyone what is left of the order (or that it is gone).
    fn republish_after_fill(&mut self, order_id: &OrderId, remaining: u64) {
        let Some(mut own) = self.own.get(order_id).cloned() else {
            return;
        };
        self.dirty.insert(own.pair.clone());
        if remaining == 0 {
            self.own.remove(order_id);
            if let Ok(bytes) = self.sign(
                &own.pair,
                OrderAction::Cancel {
                    order_id: *order_id,
                },
            ) {
                self.queue(own.pair.clone(), bytes, None);
            }
            self.pending_events.push(TradingEvent::OrderWithdrawn {
                id: *order_id,
                pair: own.pair,
                reason: "filled".into(),
            });
        } else {
            own.spec.amount = remaining;
            if let Ok(bytes) = self.sign(&own.pair, OrderAction::Order(own.spec)) {
                self.queue(own.pair.clone(), bytes, Some(*order_id));
            }
            self.own.insert(*order_id, own.clone());
            self.pending_events.push(TradingEvent::OrderReduced(own));
        }
    }

    fn release_maker(&mut self, trade_id: &TradeId, reason: String) {
        let Some(trade) = self.negotiations.trades.get(trade_id).cloned() else {
            return;
        };
        if trade.role == TradeRole::Maker && trade.state == TradeState::Accepted {
            self.market
                .release(&trade.pair, &trade.order_id, trade.amount);
            self.dirty.insert(trade.pair.clone());
        }
        if let Some(t) = self.negotiations.trades.get_mut(trade_id) {
            abort(t, reason);
        }
        self.finish(*trade_id);
    }

    /// The maker answered one of our requests (we are the taker): a handshake answer, a rekey
    /// answer, a sealed trade answer, or a refusal.
    pub fn on_trade_response(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        envelope: TradeEnvelope,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        let Some(outbound) = self.negotiations.outbound.remove(&request_id) else {
            return Vec::new();
        };
        let now = unix_time_ms();
        let me = self.me;
        let rejected =
            |reason: &'static str| TradingEvent::E2e(E2eEvent::FrameRejected { peer, reason });
        let mut events = Vec::new();
        match outbound {
            Outbound::Handshake { peer: p } if p == peer => match envelope {
                TradeEnvelope::Handshake(resp) => match self.sessions().finish(peer, &resp, now) {
                    Ok(cipher) => events.push(TradingEvent::E2e(E2eEvent::SessionEstablished {
                        peer,
                        initiator: true,
                        cipher: cipher.label(),
                    })),
                    Err(e) => {
                        events.push(rejected(e.label()));
                        events.extend(self.fail_waiting(
                            peer,
                            &format!("the maker's end-to-end handshake failed: {e}"),
                        ));
                    }
                },
                other => {
                    self.sessions().cancel_handshake(&peer);
                    if !matches!(other, TradeEnvelope::Refused(_)) {
                        events.push(rejected("unexpected_kind"));
                    }
                    events.extend(
                        self.fail_waiting(peer, "the maker refused the end-to-end handshake"),
                    );
                }
            },
            Outbound::Rekey {
                peer: p,
                frame_digest,
            } if p == peer => {
                let opened = match envelope {
                    TradeEnvelope::Sealed(frame) => self
                        .sessions()
                        .open(
                            peer,
                            Role::Initiator,
                            &response_aad(&me, &peer, &frame_digest),
                            &frame,
                            now,
                        )
                        .map_err(|e| e.label()),
                    TradeEnvelope::Refused(_) => Err("refused"),
                    TradeEnvelope::Handshake(_) => Err("unexpected_kind"),
                };
                match opened {
                    Ok(Opened::Rekeyed { epoch }) => {
                        events.push(TradingEvent::E2e(E2eEvent::Rekeyed { peer, epoch }))
                    }
                    other => {
                        // Whatever went wrong, the two sides may disagree on the keys: start
                        // over with a full handshake.
                        match other {
                            Err("refused") => {}
                            Err(reason) => events.push(rejected(reason)),
                            Ok(_) => events.push(rejected("unexpected_kind")),
                        }
                        self.sessions().remove(&peer, Role::Initiator);
                    }
                }
            }
            Outbound::Trade {
                id,
                peer: p,
                request,
                frame_digest,
                retried,
            } if p == peer => match envelope {
                TradeEnvelope::Sealed(frame) => {
                    let aad = response_aad(&me, &peer, &frame_digest);
                    match self
                        .sessions()
                        .open(peer, Role::Initiator, &aad, &frame, now)
                    {
                        Ok(Opened::Data(plaintext)) => match TradeResponse::decode(&plaintext) {
                            Ok(response) => {
                                events.extend(self.on_plain_response(peer, id, response, rr))
                            }
                            Err(_) => {
                                events.push(TradingEvent::MessageRejected {
                                    reason: "trade_response_malformed",
                                });
                                events.extend(self.abort_if_open(
                                    id,
                                    "malformed answer from the maker".into(),
                                    peer,
                                    rr,
                                ));
                            }
                        },
                        Ok(_) => {
                            events.push(rejected("unexpected_kind"));
                            events.extend(self.abort_if_open(
                                id,
                                "unexpected answer from the maker".into(),
                                peer,
                                rr,
                            ));
                        }
                        Err(e) => {
                            events.push(rejected(e.label()));
                            events.extend(self.abort_if_open(
                                id,
                                format!("the maker's sealed answer did not open ({e})"),
                                peer,
                                rr,
                            ));
                        }
                    }
                }
                TradeEnvelope::Refused(refusal) if refusal.retry_with_new_session() && !retried => {
                    // The maker lost our session (expired, evicted, restarted) and did not read
                    // the request: handshake again and resend it, once.
                    self.sessions().remove(&peer, Role::Initiator);
                    self.negotiations
                        .waiting
                        .entry(peer)
                        .or_default()
                        .push_front(Queued {
                            id,
                            request,
                            retried: true,
                        });
                }
                TradeEnvelope::Refused(refusal) => {
                    events.extend(self.abort_open_taker(
                        id,
                        &format!("the maker could not open our request ({refusal:?})"),
                    ));
                }
                TradeEnvelope::Handshake(_) => {
                    events.push(rejected("unexpected_kind"));
                    events.extend(self.abort_if_open(
                        id,
                        "unexpected answer from the maker".into(),
                        peer,
                        rr,
                    ));
                }
            },
            // An answer from someone other than the peer we asked: ignore it.
            _ => {}
        }
        events.extend(self.pump(peer, rr));
        events.append(&mut self.pending_events);
        events
    }

    /// Aborts our open taker trade `id` and tells the maker; nothing if it already ended.
    fn abort_if_open(
        &mut self,
        id: TradeId,
        reason: String,
        peer: PeerId,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        match self.negotiations.trades.get(&id) {
            Some(t) if t.state.is_open() && t.role == TradeRole::Taker => {
                self.abort_taker(id, reason, peer, rr)
            }
            _ => Vec::new(),
        }
    }

    /// An opened answer from the maker to our request about trade `id`.
    fn on_plain_response(
        &mut self,
        peer: PeerId,
        id: TradeId,
        response: TradeResponse,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        let Some(trade) = self.negotiations.trades.get(&id).cloned() else {
            return Vec::new();
        };
        // Answers about a trade that already ended (e.g. to our abort) change nothing.
        if trade.role != TradeRole::Taker || trade.counterparty != peer || !trade.state.is_open() {
            return Vec::new();
        }
        match response {
            TradeResponse::Accepted {
                agreement,
                maker_signature,
            } if trade.state == TradeState::Requested => {
                match self.check_agreement(&trade, &agreement, &maker_signature) {
                    Ok(deadline) => {
                        let signature = match Agreement::sign(&agreement, &self.keypair) {
                            Ok(s) => s,
                            Err(e) => return self.abort_taker(id, e.to_string(), peer, rr),
                        };
                        if let Some(t) = self.negotiations.trades.get_mut(&id) {
                            t.state = TradeState::Accepted;
                            t.agreement = Some(agreement);
                            t.maker_signature = Some(maker_signature);
                            t.taker_signature = Some(signature.clone());
                            t.deadline_ms = Some(deadline);
                            t.updated_at_ms = unix_time_ms();
                        }
                        let confirm = TradeRequest::Confirm {
                            trade_id: id,
                            taker_signature: signature,
                        };
                        if let Err(e) = self.send_trade(peer, id, confirm, rr, true) {
                            return self.abort_taker(id, e, peer, rr);
                        }
                    }
                    Err(reason) => return self.abort_taker(id, reason, peer, rr),
                }
            }
            TradeResponse::Done { trade_id }
                if trade_id == id && trade.state == TradeState::Accepted =>
            {
                if let Some(t) = self.negotiations.trades.get_mut(&id) {
                    t.state = TradeState::Agreed;
                    t.updated_at_ms = unix_time_ms();
                }
                self.finish(id);
            }
            TradeResponse::Rejected { reason } if trade.state.is_open() => {
                if let Some(t) = self.negotiations.trades.get_mut(&id) {
                    t.state = if t.state == TradeState::Requested {
                        TradeState::Rejected { reason }
                    } else {
                        TradeState::Aborted { reason }
                    };
                    t.updated_at_ms = unix_time_ms();
                }
                self.finish(id);
            }
            TradeResponse::Aborted { .. } => {}
            other => {
                return self.abort_taker(
                    id,
                    format!("unexpected answer from the maker: {other:?}"),
                    peer,
                    rr,
                );
            }
        }
        self.trade_event(&id)
    }

    /// Checks that the maker's agreement is what we asked for and that it signed it.
    fn check_agreement(
        &self,
        trade: &Trade,
        encoded: &[u8],
        maker_signature: &[u8],
    ) -> Result<u64, String> {
        let agreement = Agreement::decode(encoded).map_err(|e| e.to_string())?;
        let expected = (
            trade.id,
            &trade.pair,
            trade.order_id,
            trade.counterparty,
            self.me,
            trade.maker_side,
            trade.price,
            trade.amount,
        );
        let got = (
            agreement.trade_id,
            &agreement.pair,
            agreement.order_id,
            agreement.maker,
            agreement.taker,
            agreement.maker_side,
            agreement.price,
            agreement.amount,
        );
        if expected != got {
            return Err("the maker's agreement does not match the order and amount taken".into());
        }
        Agreement::verify(encoded, &trade.counterparty, maker_signature)
            .map_err(|_| "the maker's signature does not verify".to_string())?;
        if agreement.expires_at_ms <= unix_time_ms() {
            return Err("the maker's agreement has already expired".into());
        }
        Ok(agreement.expires_at_ms)
    }

    fn abort_taker(
        &mut self,
        id: TradeId,
        reason: String,
        peer: PeerId,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        if let Some(t) = self.negotiations.trades.get_mut(&id) {
            abort(t, reason.clone());
        }
        self.finish(id);
        // Tell the maker so it releases the amount now rather than at the deadline (best
        // effort: if it cannot be queued, the maker's deadline does it).
        let _ = self.send_trade(
            peer,
            id,
            TradeRequest::Abort {
                trade_id: id,
                reason,
            },
            rr,
            true,
        );
        let mut events = self.trade_event(&id);
        events.append(&mut self.pending_events);
        events
    }

    /// A request of ours failed (timeout, connection lost, refused stream).
    pub fn on_trade_failure(
        &mut self,
        request_id: OutboundRequestId,
        error: String,
    ) -> Vec<TradingEvent> {
        let id = match self.negotiations.outbound.remove(&request_id) {
            None => return Vec::new(),
            Some(Outbound::Trade { id, .. }) => id,
            Some(Outbound::Handshake { peer }) => {
                self.sessions().cancel_handshake(&peer);
                return self.fail_waiting(
                    peer,
                    &format!("no answer to the end-to-end handshake: {error}"),
                );
            }
            Some(Outbound::Rekey { peer, .. }) => {
                // The maker may or may not have switched keys: start over. What waits is
                // sent after a new handshake (the node retries waiting requests).
                self.sessions().remove(&peer, Role::Initiator);
                return Vec::new();
            }
        };
        match self.negotiations.trades.get_mut(&id) {
            Some(t) if t.state.is_open() => {
                abort(t, format!("no answer from the maker: {error}"));
            }
            _ => return Vec::new(),
        }
        self.finish(id);
        self.trade_event(&id)
    }

    /// Maker side: accepted trades not confirmed in time release their amount. Also prunes
    /// idle end-to-end sessions and unanswered handshakes.
    pub fn expire_trades(&mut self) -> Vec<TradingEvent> {
        let now = unix_time_ms();
        if let Some(sessions) = self.negotiations.sessions.as_mut() {
            sessions.prune(now);
        }
        let late: Vec<TradeId> = self
            .negotiations
            .trades
            .values()
            .filter(|t| {
                t.state == TradeState::Accepted && t.deadline_ms.is_some_and(|d| now > d + 5_000)
            })
            .map(|t| t.id)
            .collect();
        let mut events = Vec::new();
        for id in late {
            let role = self.negotiations.trades.get(&id).map(|t| t.role);
            match role {
                Some(TradeRole::Maker) => {
                    self.release_maker(&id, "the taker did not confirm in time".into())
                }
                _ => {
                    if let Some(t) = self.negotiations.trades.get_mut(&id) {
                        abort(t, "the maker did not answer in time");
                    }
                    self.finish(id);
                }
            }
            events.extend(self.trade_event(&id));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    fn trade(state: TradeState) -> Trade {
        Trade {
            id: rand::random(),
            role: TradeRole::Maker,
            counterparty: Keypair::generate_ed25519().public().to_peer_id(),
            pair: Pair::parse("RUNE:DOG/BTC").unwrap(),
            order_id: OrderId([1; 16]),
            maker_side: Side::Sell,
            price: Price(1),
            amount: 1,
            state,
            agreement: None,
            maker_signature: None,
            taker_signature: None,
            deadline_ms: None,
            updated_at_ms: 0,
        }
    }

    #[test]
    fn a_countersigned_take_resumes_after_a_restart() {
        let mut trading = Trading::new(Keypair::generate_ed25519(), 10, 1);
        let mut t = trade(TradeState::Accepted);
        t.role = TradeRole::Taker;
        t.taker_signature = Some(vec![1; 64]);
        t.deadline_ms = Some(unix_time_ms() + 10_000);
        let events = trading.restore_trades(vec![t.clone()]);
        assert!(matches!(&events[..], [TradingEvent::Trade(r)] if r.state == TradeState::Accepted));
        assert_eq!(trading.peers_waiting(), vec![t.counterparty]);
        // Past its deadline it cannot resume: aborted.
        let mut late = trade(TradeState::Accepted);
        late.role = TradeRole::Taker;
        late.taker_signature = Some(vec![1; 64]);
        late.deadline_ms = Some(1);
        let events = trading.restore_trades(vec![late]);
        assert!(matches!(&events[..], [TradingEvent::Trade(r)] if r.state.label() == "aborted"));
    }

    #[test]
    fn a_restart_aborts_open_trades_and_keeps_finished_ones() {
        let mut trading = Trading::new(Keypair::generate_ed25519(), 10, 1);
        let open = trade(TradeState::Accepted);
        let done = trade(TradeState::Agreed);
        let events = trading.restore_trades(vec![open.clone(), done.clone()]);
        let states: Vec<_> = events
            .iter()
            .map(|e| match e {
                TradingEvent::Trade(t) => (t.id, t.state.label()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(states, vec![(open.id, "aborted"), (done.id, "agreed")]);
        // Restoring twice changes nothing.
        assert!(trading.restore_trades(vec![done]).is_empty());
    }
}
