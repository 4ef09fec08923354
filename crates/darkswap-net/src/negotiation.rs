//! Trade negotiation (`/darkswap/trade/2`), both roles, as a sans-IO state machine per trade,
//! carried sealed in end-to-end sessions.
//!
//! [`Negotiation`] does no I/O and reads no clock. Each input (a take, an envelope from a peer,
//! an answer to one of our requests, a failure, a tick) carries the time and returns a
//! [`NegotiationOutput`]: envelopes to send ([`NegotiationAction::Send`], each with a
//! [`RequestToken`] the node hands back with the answer), peers to connect to, and events. The
//! maker's side works on the trader's [`Orders`] (reserve, release, fill), which the caller passes
//! in; what that changes comes back in [`NegotiationOutput::orders`].
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
//! `TradeResponse` travels as a frame sealed in that session ([`TradeEnvelope`]). The associated
//! data binds the protocol name, the direction, both PeerIds, and for an answer the SHA-256 of
//! the request frame it answers, so a relay cannot move an answer to another request, reflect a
//! frame, or replay one (the session's counters refuse replays). The taker rekeys in-band when
//! the session's policy says so (no request in flight meanwhile).
//!
//! A frame that fails to open is refused (the maker answers `Refused`, the taker aborts the
//! trade), reported as [`E2eEvent::FrameRejected`] and counted in the client metrics. A maker
//! without the session (expired, evicted, restarted) answers `Refused(NoSession)`: the taker
//! handshakes again and resends once. A taker that restarts starts with no session, so a resumed
//! trade always begins with a fresh handshake.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use zeroize::Zeroizing;

use darkswap_e2e::{E2eError, ManagerLimits, Opened, RekeyPolicy, Role, SessionManager};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::trade::{Agreement, TradeId, TradeRequest, TradeResponse, MAX_TRADE_FEE_RATE};
use darkswap_proto::trade_envelope::{digest, request_aad, response_aad, Refusal, TradeEnvelope};
use libp2p::identity::Keypair;
use libp2p::PeerId;

use crate::orders::{Orders, OrdersOutput};

/// An agreed trade's session is kept from eviction this long after the trade last changed
/// (while its settlement messages flow); see `Negotiation::trading_with`.
const SETTLING_KEEP_MS: u64 = 60 * 60_000;
/// At most this many agreed trades' peers are kept so (the most recent): with the trades in
/// negotiation (64 per role) that is at most 192 peers, 384 sessions of the 512.
const MAX_SETTLING_KEPT: usize = 64;
/// Ended trades remembered without agreement (rejected, aborted): dropped oldest first beyond
/// this. Agreed trades are never dropped (the only records both sides signed).
pub const MAX_TRADES: usize = 1_000;
/// Trades in negotiation at once in each role: takes of our orders by others, and our takes.
/// The budgets are separate, so takes that others leave hanging never stop us from taking.
pub const MAX_OPEN_TRADES: usize = 64;
/// Takes of our orders one counterparty may have in negotiation at once.
pub const MAX_OPEN_PER_COUNTERPARTY: usize = 4;
/// Requests queued for a counterparty we are still connecting to or securing a session with.
const MAX_WAITING_PER_PEER: usize = 8;
/// Times a take or a confirmation is sent again after the connection carrying it closed.
pub const MAX_RESENDS_AFTER_LOSS: u8 = 2;
/// Counterparties with requests waiting at once.
const MAX_WAITING_PEERS: usize = MAX_OPEN_TRADES;
/// How long after an accepted trade's deadline its taker's confirmation may still arrive before
/// the maker gives up on it (clocks and transit differ a little).
const DEADLINE_GRACE_MS: u64 = 5_000;

/// What the end-to-end layer of the trade protocol reports (counted in the client metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum E2eEvent {
    /// A session with `peer` is up: we started it (`initiator`, as a taker) or answered it.
    SessionEstablished {
        /// The counterparty.
        peer: PeerId,
        /// Whether we sent the handshake (as the taker).
        initiator: bool,
        /// The AEAD the two sides chose (`aes-256-gcm`, `chacha20-poly1305`).
        cipher: &'static str,
    },
    /// The session with `peer` moved to fresh keys.
    Rekeyed {
        /// The counterparty.
        peer: PeerId,
        /// The session's key epoch from now on.
        epoch: u32,
    },
    /// A handshake or sealed frame from `peer` was refused; `reason` is from a closed set.
    FrameRejected {
        /// Who sent it.
        peer: PeerId,
        /// A `darkswap_e2e::E2eError` label (`replay`, `forged`, `no_session`, …), or
        /// `unexpected_kind` for an envelope of the wrong kind.
        reason: &'static str,
    },
}

/// Which side of the trade we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeRole {
    /// The order is ours; we answer the taker.
    Maker,
    /// We take someone else's order; we ask its maker.
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
    Rejected {
        /// The maker's reason, as it gave it.
        reason: String,
    },
    /// Ended without agreement after being accepted or requested (timeout, abort, lost link).
    Aborted {
        /// Why, in words (ours, or the counterparty's).
        reason: String,
    },
}

impl TradeState {
    /// Whether the trade is still in negotiation.
    pub fn is_open(&self) -> bool {
        matches!(self, TradeState::Requested | TradeState::Accepted)
    }

    /// A short machine-readable name.
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
    /// Chosen at random by the taker; the same on both sides.
    pub id: TradeId,
    /// Our side.
    pub role: TradeRole,
    /// The other trader: the maker when we take, the taker when we make.
    pub counterparty: PeerId,
    /// The order's pair.
    pub pair: Pair,
    /// The maker's order being taken.
    pub order_id: OrderId,
    /// The maker's side of the order.
    pub maker_side: Side,
    /// The order's price, at which the trade is made.
    pub price: Price,
    /// Base units traded.
    pub amount: u64,
    /// Where the trade stands.
    pub state: TradeState,
    /// The signed agreement's encoding, once there is one.
    pub agreement: Option<Vec<u8>>,
    /// The maker's signature over `agreement`, once the maker accepted.
    pub maker_signature: Option<Vec<u8>>,
    /// The taker's signature over `agreement`: on the taker's side from when it countersigns,
    /// on the maker's once the taker's confirmation verified.
    pub taker_signature: Option<Vec<u8>>,
    /// When an accepted trade must be confirmed by.
    pub deadline_ms: Option<u64>,
    /// When the trade last changed, Unix milliseconds.
    pub updated_at_ms: u64,
    /// The settlement's fee rate the taker named (sat/vB; 0: not settled on Bitcoin).
    pub fee_rate: u64,
    /// The taker's settlement offer as it came with the take (an encoded
    /// `darkswap_proto::settle::SettleMessage`; empty when none came).
    pub taker_offer: Vec<u8>,
}

/// Drops the least recently updated trades until at most `max` are left (a bounded list of
/// trades on a page).
pub fn keep_newest_trades<K: Ord + Clone>(trades: &mut BTreeMap<K, Trade>, max: usize) {
    while trades.len() > max {
        let oldest = trades
            .iter()
            .min_by_key(|(_, t)| t.updated_at_ms)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => trades.remove(&k),
            None => break,
        };
    }
}

/// What storage keeps: every agreed trade and every trade in negotiation, and of the trades
/// that ended without agreement the `max_ended` most recently updated.
pub fn keep_trades_worth_storing<K: Ord + Clone>(
    trades: &mut BTreeMap<K, Trade>,
    max_ended: usize,
) {
    let ended = |t: &Trade| !t.state.is_open() && t.state != TradeState::Agreed;
    let mut count = trades.values().filter(|t| ended(t)).count();
    while count > max_ended {
        let oldest = trades
            .iter()
            .filter(|(_, t)| ended(t))
            .min_by_key(|(_, t)| t.updated_at_ms)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => trades.remove(&k),
            None => break,
        };
        count -= 1;
    }
}

impl Trade {
    /// The trade id in hex.
    pub fn id_hex(&self) -> String {
        trade_id_hex(&self.id)
    }
}

/// A trade id in hex.
pub fn trade_id_hex(id: &TradeId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a sealed answer could not be read.
enum Unread {
    /// It opened but does not decode.
    Malformed,
    /// It opened to something other than data (a handshake message).
    Unexpected,
    /// It did not open.
    Sealed(E2eError),
}

/// Why a take was refused before anything was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TakeError {
    /// [`MAX_OPEN_TRADES`] of our takes are already in negotiation.
    #[error("{MAX_OPEN_TRADES} of our takes are already in negotiation")]
    TooManyOpen,
    /// The order is not in our book of that pair (cancelled, expired, filled, or the pair is
    /// not followed).
    #[error("that order is no longer in the book")]
    OrderGone,
    /// We are the order's maker.
    #[error("that is your own order")]
    OwnOrder,
    /// The amount is 0 or more than the order has free in our book.
    #[error("{}", amount_refusal(.available))]
    Amount {
        /// Base units of the order free to take (may be 0).
        available: u64,
    },
    /// The amount is below the order's minimum fill.
    #[error("this order's minimum fill is {min}")]
    BelowMinimum {
        /// The smallest amount accepted now: the order's minimum fill, or all that is
        /// available when less remains.
        min: u64,
    },
    /// Requests already wait for this maker's connection or session (8 at most), or for too
    /// many makers (64 at most).
    #[error("too many take requests are waiting to be sent (for this trader, or for 64 traders)")]
    TooManyWaiting,
    /// A fee rate over the cap, one named for a pair that does not settle on Bitcoin, or an
    /// offer without one.
    #[error("fee rate {0} sat/vB does not suit this take")]
    FeeRate(u64),
    /// A settlement message for a trade that is not agreed with that peer.
    #[error("no agreed trade with that trader to settle")]
    NotAgreed,
    /// The trade id chosen for a take is already one of ours.
    #[error("that trade id is already in use")]
    DuplicateId,
}

/// A fresh trade id, drawn at random (the taker chooses it, before the take, so that whatever
/// it prepares for the trade can be named by it).
pub fn new_trade_id() -> TradeId {
    rand::random()
}

fn amount_refusal(available: &u64) -> String {
    match available {
        0 => "nothing of that order is free to take now (others are taking it)".into(),
        n => format!("amount must be between 1 and {n}"),
    }
}

/// Why a taker refused the maker's agreement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementRefused {
    /// The agreement does not decode.
    #[error("the maker's agreement is malformed: {0}")]
    Malformed(#[from] darkswap_proto::trade::TradeWireError),
    /// Its trade id, pair, order, maker, taker, side, price or amount differs from our take.
    #[error("the maker's agreement does not match the order and amount taken")]
    Mismatch,
    /// The signature is not the maker's over the agreement.
    #[error("the maker's signature does not verify")]
    Signature,
    /// Its deadline has passed.
    #[error("the maker's agreement has already expired")]
    Expired,
}

/// What the negotiation reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationEvent {
    /// A trade was created or changed state.
    Trade(Box<Trade>),
    /// The end-to-end sessions that carry trades.
    E2e(E2eEvent),
    /// A take was refused before anything was sent.
    TakeFailed {
        /// The id the take would have had.
        trade_id: TradeId,
        /// Why.
        error: TakeError,
    },
    /// A trade message from the network was refused (counted in the client's metrics).
    MessageRejected {
        /// `trade_request_malformed` or `trade_response_malformed`.
        reason: &'static str,
    },
    /// A settlement message about one of our agreed trades arrived from its counterparty.
    Settle {
        /// The trade.
        trade_id: TradeId,
        /// Who sent it (the trade's counterparty).
        from: PeerId,
        /// An encoded `darkswap_proto::settle::SettleMessage`, still to be decoded.
        message: Vec<u8>,
    },
    /// A settlement message we sent was not delivered (refused, unanswered, no session); the
    /// settlement sends it again when it resumes.
    SettleUndelivered {
        /// The trade.
        trade_id: TradeId,
        /// Why.
        reason: String,
    },
}

/// What a take brings for settlement on Bitcoin.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TakeSettlement {
    /// The fee rate (sat/vB) the taker proposes; 0 for a trade that is not settled on Bitcoin.
    pub fee_rate: u64,
    /// The taker's offer (an encoded `darkswap_proto::settle::SettleMessage`), or empty.
    pub offer: Vec<u8>,
}

impl TakeSettlement {
    /// Whether it suits a take on `pair`: a fee rate within the cap, named only for a pair that
    /// settles on Bitcoin, and an offer only with a fee rate.
    pub fn fits(&self, pair: &Pair) -> bool {
        self.fee_rate <= MAX_TRADE_FEE_RATE
            && (self.fee_rate == 0 || pair.settles_on_bitcoin())
            && (self.fee_rate > 0 || self.offer.is_empty())
    }
}

/// Identifies one of our requests between [`NegotiationAction::Send`] and its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestToken(u64);

/// What the node must do for the negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationAction {
    /// Send `envelope` to `peer` as a `/darkswap/trade/2` request; give its answer to
    /// [`Negotiation::on_response`], or its failure to [`Negotiation::on_failure`].
    Send {
        /// The counterparty.
        peer: PeerId,
        /// Hand back with the answer or the failure.
        token: RequestToken,
        /// The request: a handshake, or a sealed frame.
        envelope: TradeEnvelope,
    },
    /// Requests wait for `peer`: connect to it, then call [`Negotiation::peer_connected`] (or
    /// [`Negotiation::peer_unreachable`] if that fails).
    Connect(PeerId),
}

/// What one input produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NegotiationOutput {
    /// For the node to carry out, in order.
    pub actions: Vec<NegotiationAction>,
    /// For the application, in order.
    pub events: Vec<NegotiationEvent>,
    /// What the maker's side changed in the trader's order book.
    pub orders: OrdersOutput,
}

impl NegotiationOutput {
    fn trade(&mut self, trade: Option<&Trade>) {
        if let Some(t) = trade {
            self.events
                .push(NegotiationEvent::Trade(Box::new(t.clone())));
        }
    }

    fn rejected(&mut self, peer: PeerId, reason: &'static str) {
        self.events
            .push(NegotiationEvent::E2e(E2eEvent::FrameRejected {
                peer,
                reason,
            }));
    }
}

/// A trade request waiting to be sealed and sent.
struct Queued {
    id: TradeId,
    request: TradeRequest,
    /// Already resent once after the maker had lost our session.
    retried: bool,
    /// Times it was sent again because the connection carrying it closed (at most
    /// [`MAX_RESENDS_AFTER_LOSS`]).
    lost: u8,
}

/// What one of our outbound requests was.
enum Outbound {
    Trade {
        id: TradeId,
        peer: PeerId,
        request: TradeRequest,
        frame_digest: [u8; 32],
        retried: bool,
        lost: u8,
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

fn abort(trade: &mut Trade, reason: impl Into<String>, now_ms: u64) {
    trade.state = TradeState::Aborted {
        reason: reason.into(),
    };
    trade.updated_at_ms = now_ms;
}

/// Every trade of this trader, both roles, and the sessions that carry them (see the module
/// documentation).
pub struct Negotiation {
    keypair: Keypair,
    me: PeerId,
    trades: HashMap<TradeId, Trade>,
    /// Finished trades, oldest first, for pruning.
    finished: VecDeque<TradeId>,
    waiting: HashMap<PeerId, VecDeque<Queued>>,
    outbound: HashMap<RequestToken, Outbound>,
    next_token: u64,
    sessions: SessionManager,
}

impl Negotiation {
    /// The negotiation of the trader whose identity is `keypair`; its sessions take fresh keys
    /// as `rekey` says.
    pub fn new(keypair: Keypair, rekey: RekeyPolicy) -> Self {
        let limits = ManagerLimits {
            rekey,
            ..ManagerLimits::default()
        };
        Negotiation {
            me: keypair.public().to_peer_id(),
            sessions: SessionManager::new(keypair.clone(), limits),
            keypair,
            trades: HashMap::new(),
            finished: VecDeque::new(),
            waiting: HashMap::new(),
            outbound: HashMap::new(),
            next_token: 0,
        }
    }

    /// A trade we know.
    pub fn trade(&self, id: &TradeId) -> Option<&Trade> {
        self.trades.get(id)
    }

    /// The peers of live trades, whose sessions are never evicted to make room for another (a
    /// flood of handshakes from fresh identities cannot cut a live trade): trades in
    /// negotiation, and agreed trades that changed in the last [`SETTLING_KEEP_MS`] (their
    /// settlement is sealed over the same session), the [`MAX_SETTLING_KEPT`] most recent of
    /// those. Agreed trades are kept for ever, so only recent ones count.
    fn trading_with(&self, now_ms: u64) -> HashSet<PeerId> {
        let mut settling: Vec<(u64, PeerId)> = self
            .trades
            .values()
            .filter(|t| {
                t.state == TradeState::Agreed
                    && now_ms.saturating_sub(t.updated_at_ms) < SETTLING_KEEP_MS
            })
            .map(|t| (t.updated_at_ms, t.counterparty))
            .collect();
        settling.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        settling.truncate(MAX_SETTLING_KEPT);
        self.trades
            .values()
            .filter(|t| t.state.is_open())
            .map(|t| t.counterparty)
            .chain(settling.into_iter().map(|(_, peer)| peer))
            .collect()
    }

    /// Trades in negotiation.
    pub fn open_trades(&self) -> usize {
        self.trades.values().filter(|t| t.state.is_open()).count()
    }

    /// Trades in negotiation in one role, and of those, with `counterparty` when given.
    fn open_as(&self, role: TradeRole, counterparty: Option<&PeerId>) -> usize {
        self.trades
            .values()
            .filter(|t| t.state.is_open() && t.role == role)
            .filter(|t| counterparty.is_none_or(|c| t.counterparty == *c))
            .count()
    }

    /// Counterparties with requests waiting for a connection (the node connects to them).
    pub fn peers_waiting(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self.waiting.keys().copied().collect();
        peers.sort();
        peers
    }

    fn finish(&mut self, id: TradeId) {
        // An agreed trade is kept for good: a counterparty that takes and aborts over and over
        // must not push out the records both sides signed.
        if self
            .trades
            .get(&id)
            .is_some_and(|t| t.state == TradeState::Agreed)
        {
            return;
        }
        self.finished.push_back(id);
        while self.finished.len() > MAX_TRADES {
            if let Some(old) = self.finished.pop_front() {
                self.trades.remove(&old);
            }
        }
    }

    fn send(&mut self, peer: PeerId, envelope: TradeEnvelope, what: Outbound) -> NegotiationAction {
        self.next_token += 1;
        let token = RequestToken(self.next_token);
        self.outbound.insert(token, what);
        NegotiationAction::Send {
            peer,
            token,
            envelope,
        }
    }

    /// Brings back trades from storage. A taker that had countersigned resumes: it sends its
    /// confirmation again (the maker answers `Done` if it had agreed, or refuses if the window
    /// closed), so both sides end in the same state. Any other trade still in negotiation is
    /// aborted: what the maker had reserved lived in the previous session's memory, and the
    /// counterparty's own timeout ends it there too.
    pub fn restore(&mut self, trades: Vec<Trade>, now_ms: u64) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        // Storage holds what `keep_trades_worth_storing` kept: every agreed trade, and ended
        // ones within their cap (`finish` applies it again here).
        for mut trade in trades {
            if self.trades.contains_key(&trade.id) {
                continue;
            }
            let id = trade.id;
            let resumable = trade.role == TradeRole::Taker
                && trade.state == TradeState::Accepted
                && trade.deadline_ms.is_some_and(|d| d > now_ms);
            if let (Some(signature), true) = (&trade.taker_signature, resumable) {
                let confirm = TradeRequest::Confirm {
                    trade_id: id,
                    taker_signature: signature.clone(),
                };
                if self.enqueue(trade.counterparty, id, confirm).is_ok() {
                    out.trade(Some(&trade));
                    self.trades.insert(id, trade);
                    continue;
                }
                abort(
                    &mut trade,
                    "could not resume: too many requests waiting",
                    now_ms,
                );
            }
            if trade.state.is_open() {
                abort(
                    &mut trade,
                    "interrupted: the client restarted during negotiation",
                    now_ms,
                );
            }
            out.trade(Some(&trade));
            self.trades.insert(id, trade);
            self.finish(id);
        }
        out
    }

    /// Starts taking `amount` of someone's order in `orders`. When we are not `connected` to its
    /// maker, the output asks the node to connect.
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        &mut self,
        orders: &Orders,
        pair: &Pair,
        order_id: OrderId,
        amount: u64,
        id: TradeId,
        settlement: TakeSettlement,
        connected: bool,
        now_ms: u64,
    ) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        let checked = self
            .check_take(orders, pair, &order_id, amount, &id, &settlement)
            .and_then(|order| {
                let request = TradeRequest::Take {
                    trade_id: id,
                    order_id,
                    pair: pair.clone(),
                    amount,
                    fee_rate: settlement.fee_rate,
                    settle: settlement.offer.clone(),
                };
                self.enqueue(order.0, id, request).map(|()| order)
            });
        let (maker, maker_side, price) = match checked {
            Ok(order) => order,
            Err(e) => {
                out.events.push(NegotiationEvent::TakeFailed {
                    trade_id: id,
                    error: e,
                });
                return out;
            }
        };
        let trade = Trade {
            id,
            role: TradeRole::Taker,
            counterparty: maker,
            pair: pair.clone(),
            order_id,
            maker_side,
            price,
            amount,
            state: TradeState::Requested,
            agreement: None,
            maker_signature: None,
            taker_signature: None,
            deadline_ms: None,
            updated_at_ms: now_ms,
            fee_rate: settlement.fee_rate,
            taker_offer: settlement.offer,
        };
        out.trade(Some(&trade));
        self.trades.insert(id, trade);
        if connected {
            self.pump(maker, now_ms, &mut out);
        } else {
            out.actions.push(NegotiationAction::Connect(maker));
        }
        out
    }

    /// Whether our book lets us take `amount` of the order: its maker, side and price.
    fn check_take(
        &self,
        orders: &Orders,
        pair: &Pair,
        order_id: &OrderId,
        amount: u64,
        id: &TradeId,
        settlement: &TakeSettlement,
    ) -> Result<(PeerId, Side, Price), TakeError> {
        if self.open_as(TradeRole::Taker, None) >= MAX_OPEN_TRADES {
            return Err(TakeError::TooManyOpen);
        }
        if self.trades.contains_key(id) {
            return Err(TakeError::DuplicateId);
        }
        if !settlement.fits(pair) {
            return Err(TakeError::FeeRate(settlement.fee_rate));
        }
        let order = orders.order(pair, order_id).ok_or(TakeError::OrderGone)?;
        if order.data.maker == self.me {
            return Err(TakeError::OwnOrder);
        }
        let available = orders.available(pair, order_id).unwrap_or(0);
        if amount == 0 || amount > available {
            return Err(TakeError::Amount { available });
        }
        let min = order.effective_min_fill(available);
        if amount < min {
            return Err(TakeError::BelowMinimum { min });
        }
        Ok((order.data.maker, order.side, order.price))
    }

    /// Queues a request for `peer` (sent by [`Negotiation::pump`]).
    fn enqueue(
        &mut self,
        peer: PeerId,
        id: TradeId,
        request: TradeRequest,
    ) -> Result<(), TakeError> {
        if !self.waiting.contains_key(&peer) && self.waiting.len() >= MAX_WAITING_PEERS {
            return Err(TakeError::TooManyWaiting);
        }
        let waiting = self.waiting.entry(peer).or_default();
        if waiting.len() >= MAX_WAITING_PER_PEER {
            return Err(TakeError::TooManyWaiting);
        }
        waiting.push_back(Queued {
            id,
            request,
            retried: false,
            lost: 0,
        });
        Ok(())
    }

    /// Sends a settlement message about agreed trade `trade_id` to its counterparty. Either role
    /// sends them: the sender asks, in a session it starts itself when it has none. When we are
    /// not `connected` to the counterparty, the output asks the node to connect.
    pub fn settle_send(
        &mut self,
        trade_id: TradeId,
        message: Vec<u8>,
        connected: bool,
        now_ms: u64,
    ) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        let undelivered = |out: &mut NegotiationOutput, reason: String| {
            out.events
                .push(NegotiationEvent::SettleUndelivered { trade_id, reason })
        };
        let peer = match self.trades.get(&trade_id) {
            Some(t) if t.state == TradeState::Agreed => t.counterparty,
            _ => {
                undelivered(&mut out, TakeError::NotAgreed.to_string());
                return out;
            }
        };
        if let Err(e) = self.enqueue(peer, trade_id, TradeRequest::Settle { trade_id, message }) {
            undelivered(&mut out, e.to_string());
            return out;
        }
        if connected {
            self.pump(peer, now_ms, &mut out);
        } else {
            out.actions.push(NegotiationAction::Connect(peer));
        }
        out
    }

    /// A connection to `peer` is up: send what waited for it (after a handshake if needed).
    pub fn peer_connected(&mut self, peer: PeerId, now_ms: u64) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        self.pump(peer, now_ms, &mut out);
        out
    }

    /// Moves the requests waiting for `peer` forward, as far as the session allows: starts the
    /// handshake if there is no session, rekeys if due (once nothing is in flight), else seals
    /// and sends them. Idempotent while a handshake or rekey is waiting for its answer.
    fn pump(&mut self, peer: PeerId, now_ms: u64, out: &mut NegotiationOutput) {
        let aad = request_aad(&self.me, &peer);
        if self.waiting.get(&peer).is_none_or(|w| w.is_empty()) {
            self.waiting.remove(&peer);
            return;
        }
        if self.sessions.handshake_pending(&peer) || self.sessions.rekeying(&peer) {
            return;
        }
        if self.sessions.rekey_due(&peer, now_ms) {
            let in_flight = self
                .outbound
                .values()
                .any(|o| matches!(o, Outbound::Trade { peer: p, .. } if *p == peer));
            if in_flight {
                // Rekey once the answers are in (they would be sealed in the old epoch).
                return;
            }
            match self.sessions.start_rekey(peer, &aad, now_ms) {
                Ok(frame) => {
                    let frame_digest = digest(&frame);
                    let action = self.send(
                        peer,
                        TradeEnvelope::Sealed(frame),
                        Outbound::Rekey { peer, frame_digest },
                    );
                    out.actions.push(action);
                    return;
                }
                // Session gone meanwhile (idle or too old): start over below.
                Err(_) => {
                    self.sessions.remove(&peer, Role::Initiator);
                }
            }
        }
        let mut queue = self.waiting.remove(&peer).unwrap_or_default();
        while let Some(queued) = queue.pop_front() {
            let plaintext = Zeroizing::new(queued.request.encode());
            match self
                .sessions
                .seal(peer, Role::Initiator, &aad, &plaintext, now_ms)
            {
                Ok(frame) => {
                    let frame_digest = digest(&frame);
                    let action = self.send(
                        peer,
                        TradeEnvelope::Sealed(frame),
                        Outbound::Trade {
                            id: queued.id,
                            peer,
                            request: queued.request,
                            frame_digest,
                            retried: queued.retried,
                            lost: queued.lost,
                        },
                    );
                    out.actions.push(action);
                }
                Err(E2eError::NoSession) => {
                    // No session (first contact, or it expired): handshake, then send all.
                    queue.push_front(queued);
                    self.waiting.insert(peer, queue);
                    match self.sessions.start(peer, now_ms) {
                        Ok(init) => {
                            let action = self.send(
                                peer,
                                TradeEnvelope::Handshake(init),
                                Outbound::Handshake { peer },
                            );
                            out.actions.push(action);
                        }
                        Err(e) => self.fail_waiting(
                            peer,
                            &format!("cannot secure a session with the maker: {e}"),
                            now_ms,
                            out,
                        ),
                    }
                    return;
                }
                Err(e) => {
                    // Nonces used up or the like: this request cannot go out in this session.
                    self.sessions.remove(&peer, Role::Initiator);
                    self.drop_queued(
                        queued,
                        &format!("cannot seal the request: {e}"),
                        now_ms,
                        out,
                    );
                }
            }
        }
    }

    /// Ends (as the taker) every trade whose request waited for `peer`.
    fn fail_waiting(
        &mut self,
        peer: PeerId,
        reason: &str,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let queue = self.waiting.remove(&peer).unwrap_or_default();
        for queued in queue {
            self.drop_queued(queued, reason, now_ms, out);
        }
    }

    /// A request that cannot go out: a settlement message is reported undelivered, a trade in
    /// negotiation ends.
    fn drop_queued(
        &mut self,
        queued: Queued,
        reason: &str,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        match queued.request {
            TradeRequest::Settle { trade_id, .. } => {
                out.events.push(NegotiationEvent::SettleUndelivered {
                    trade_id,
                    reason: reason.to_string(),
                })
            }
            _ => self.abort_open_taker(queued.id, reason, now_ms, out),
        }
    }

    /// Ends one of our open taker trades locally, if it is still open.
    fn abort_open_taker(
        &mut self,
        id: TradeId,
        reason: &str,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        match self.trades.get_mut(&id) {
            Some(t) if t.state.is_open() && t.role == TradeRole::Taker => {
                abort(t, reason, now_ms);
            }
            _ => return,
        }
        self.finish(id);
        out.trade(self.trades.get(&id));
    }

    /// We could not reach `peer`: its trades in negotiation end.
    pub fn peer_unreachable(
        &mut self,
        peer: PeerId,
        reason: &str,
        now_ms: u64,
    ) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        self.waiting.remove(&peer);
        let mut ids: Vec<TradeId> = self
            .trades
            .values()
            .filter(|t| t.counterparty == peer && t.role == TradeRole::Taker && t.state.is_open())
            .map(|t| t.id)
            .collect();
        ids.sort();
        for id in ids {
            self.abort_open_taker(
                id,
                &format!("cannot reach the maker: {reason}; nothing was agreed"),
                now_ms,
                &mut out,
            );
        }
        out
    }

    /// A trade envelope from another trader (we are the maker): a handshake to answer, or a
    /// sealed request to open, handle, and answer sealed. Whatever does not open is refused.
    /// Returns the answer for the node to send back on the request's stream.
    pub fn on_request(
        &mut self,
        peer: PeerId,
        envelope: TradeEnvelope,
        orders: &mut Orders,
        now_ms: u64,
    ) -> (TradeEnvelope, NegotiationOutput) {
        let mut out = NegotiationOutput::default();
        let answer = match envelope {
            TradeEnvelope::Handshake(init) => {
                match self
                    .sessions
                    .respond_keeping(peer, &init, now_ms, &self.trading_with(now_ms))
                {
                    Ok((resp, cipher)) => {
                        out.events
                            .push(NegotiationEvent::E2e(E2eEvent::SessionEstablished {
                                peer,
                                initiator: false,
                                cipher: cipher.label(),
                            }));
                        TradeEnvelope::Handshake(resp)
                    }
                    Err(e) => {
                        out.rejected(peer, e.label());
                        TradeEnvelope::Refused(if e == E2eError::SessionsFull {
                            Refusal::Busy
                        } else {
                            Refusal::BadHandshake
                        })
                    }
                }
            }
            TradeEnvelope::Sealed(frame) => {
                self.on_sealed_request(peer, &frame, orders, now_ms, &mut out)
            }
            TradeEnvelope::Refused(_) => {
                out.rejected(peer, "unexpected_kind");
                TradeEnvelope::Refused(Refusal::BadFrame)
            }
        };
        (answer, out)
    }

    fn on_sealed_request(
        &mut self,
        peer: PeerId,
        frame: &[u8],
        orders: &mut Orders,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) -> TradeEnvelope {
        let aad = request_aad(&peer, &self.me);
        let reply_aad = response_aad(&peer, &self.me, &digest(frame));
        match self
            .sessions
            .open(peer, Role::Responder, &aad, frame, now_ms)
        {
            Ok(Opened::Data(plaintext)) => {
                let plaintext = Zeroizing::new(plaintext);
                let response = match TradeRequest::decode(&plaintext) {
                    Ok(request) => self.handle_request(peer, request, orders, now_ms, out),
                    Err(_) => {
                        out.events.push(NegotiationEvent::MessageRejected {
                            reason: "trade_request_malformed",
                        });
                        TradeResponse::Rejected {
                            reason: "malformed trade request".into(),
                        }
                    }
                };
                match self.sessions.seal(
                    peer,
                    Role::Responder,
                    &reply_aad,
                    &Zeroizing::new(response.encode()),
                    now_ms,
                ) {
                    Ok(sealed) => TradeEnvelope::Sealed(sealed),
                    Err(e) => TradeEnvelope::Refused(refusal_for(&e)),
                }
            }
            Ok(Opened::RekeyRequested(init)) => {
                match self.sessions.answer_rekey(peer, &init, &reply_aad, now_ms) {
                    Ok((sealed, epoch)) => {
                        out.events
                            .push(NegotiationEvent::E2e(E2eEvent::Rekeyed { peer, epoch }));
                        TradeEnvelope::Sealed(sealed)
                    }
                    Err(e) => {
                        out.rejected(peer, e.label());
                        TradeEnvelope::Refused(refusal_for(&e))
                    }
                }
            }
            Ok(Opened::Rekeyed { .. }) => {
                out.rejected(peer, "unexpected_kind");
                TradeEnvelope::Refused(Refusal::BadFrame)
            }
            Err(e) => {
                out.rejected(peer, e.label());
                TradeEnvelope::Refused(refusal_for(&e))
            }
        }
    }

    /// A trade request that opened (we are the maker): the answer.
    fn handle_request(
        &mut self,
        peer: PeerId,
        request: TradeRequest,
        orders: &mut Orders,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) -> TradeResponse {
        match request {
            TradeRequest::Take {
                trade_id,
                order_id,
                pair,
                amount,
                fee_rate,
                settle,
            } => {
                let settlement = TakeSettlement {
                    fee_rate,
                    offer: settle,
                };
                let take = (trade_id, order_id, pair, amount, settlement);
                self.on_take(peer, take, orders, now_ms, out)
            }
            TradeRequest::Settle { trade_id, message } => match self.trades.get(&trade_id) {
                Some(t) if t.counterparty == peer && t.state == TradeState::Agreed => {
                    out.events.push(NegotiationEvent::Settle {
                        trade_id,
                        from: peer,
                        message,
                    });
                    TradeResponse::Settled { trade_id }
                }
                _ => TradeResponse::Rejected {
                    reason: TakeError::NotAgreed.to_string(),
                },
            },
            TradeRequest::Confirm {
                trade_id,
                taker_signature,
            } => self.on_confirm(peer, trade_id, taker_signature, orders, now_ms, out),
            TradeRequest::Abort { trade_id, reason } => match self.trades.get(&trade_id) {
                Some(t)
                    if t.counterparty == peer
                        && t.role == TradeRole::Maker
                        && t.state.is_open() =>
                {
                    self.release_maker(
                        &trade_id,
                        format!("the taker aborted: {reason}"),
                        orders,
                        now_ms,
                        out,
                    );
                    TradeResponse::Aborted { trade_id }
                }
                _ => TradeResponse::Rejected {
                    reason: "no such trade in negotiation".into(),
                },
            },
        }
    }

    fn on_take(
        &mut self,
        peer: PeerId,
        (trade_id, order_id, pair, amount, settlement): (
            TradeId,
            OrderId,
            Pair,
            u64,
            TakeSettlement,
        ),
        orders: &mut Orders,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) -> TradeResponse {
        let reject = |reason: String| TradeResponse::Rejected { reason };
        if let Some(known) = self.trades.get(&trade_id) {
            // The same take again from the same taker (our answer was lost with the connection
            // that carried it): the same answer, while it stands. Anything else is refused.
            return match (&known.state, &known.agreement, &known.maker_signature) {
                (TradeState::Accepted, Some(agreement), Some(signature))
                    if known.role == TradeRole::Maker
                        && known.counterparty == peer
                        && known.order_id == order_id
                        && known.pair == pair
                        && known.amount == amount
                        && known.fee_rate == settlement.fee_rate
                        && known.taker_offer == settlement.offer =>
                {
                    TradeResponse::Accepted {
                        agreement: agreement.clone(),
                        maker_signature: signature.clone(),
                    }
                }
                _ => reject("duplicate trade id".into()),
            };
        }
        if !settlement.fits(&pair) {
            return reject(TakeError::FeeRate(settlement.fee_rate).to_string());
        }
        if self.open_as(TradeRole::Maker, Some(&peer)) >= MAX_OPEN_PER_COUNTERPARTY {
            return reject(format!(
                "you already have {MAX_OPEN_PER_COUNTERPARTY} takes in negotiation with this maker"
            ));
        }
        if self.open_as(TradeRole::Maker, None) >= MAX_OPEN_TRADES {
            return reject("the maker is busy; try again shortly".into());
        }
        let Some(own) = orders.own_order(&order_id).cloned() else {
            return reject("that order is no longer live".into());
        };
        if own.pair != pair {
            return reject("that order is on another pair".into());
        }
        if let Err(e) = orders.reserve(&pair, &order_id, amount, now_ms) {
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
            settlement.fee_rate,
            now_ms,
        ) else {
            orders.release(&pair, &order_id, amount);
            return reject("amount × price is too large".into());
        };
        let encoded = agreement.encode();
        let Ok(signature) = Agreement::sign(&encoded, &self.keypair) else {
            orders.release(&pair, &order_id, amount);
            return reject("the maker could not sign".into());
        };
        let trade = Trade {
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
            updated_at_ms: now_ms,
            fee_rate: settlement.fee_rate,
            taker_offer: settlement.offer,
        };
        out.trade(Some(&trade));
        self.trades.insert(trade_id, trade);
        TradeResponse::Accepted {
            agreement: encoded,
            maker_signature: signature,
        }
    }

    fn on_confirm(
        &mut self,
        peer: PeerId,
        trade_id: TradeId,
        taker_signature: Vec<u8>,
        orders: &mut Orders,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) -> TradeResponse {
        let reject = |reason: &str| TradeResponse::Rejected {
            reason: reason.into(),
        };
        let Some(trade) = self.trades.get(&trade_id).cloned() else {
            return reject("no such trade (it may have expired)");
        };
        if trade.counterparty != peer || trade.role != TradeRole::Maker {
            return reject("no such trade");
        }
        if trade.state == TradeState::Agreed {
            // A repeated confirm (the first answer was lost): same answer.
            return TradeResponse::Done { trade_id };
        }
        if trade.state != TradeState::Accepted {
            return reject("the trade is no longer in negotiation");
        }
        let encoded = trade.agreement.clone().unwrap_or_default();
        if Agreement::verify(&encoded, &peer, &taker_signature).is_err() {
            self.release_maker(
                &trade_id,
                "the taker's signature did not verify".into(),
                orders,
                now_ms,
                out,
            );
            return reject("your signature does not verify");
        }
        if trade.deadline_ms.is_some_and(|d| now_ms > d) {
            self.release_maker(&trade_id, "confirmed too late".into(), orders, now_ms, out);
            return reject("the agreement expired before your confirmation");
        }
        match orders.fill(&trade.pair, &trade.order_id, trade.amount, now_ms) {
            Ok(filled) => out.orders.extend(filled),
            Err(e) => {
                self.release_maker(
                    &trade_id,
                    format!("cannot settle: {e}"),
                    orders,
                    now_ms,
                    out,
                );
                return reject("the order changed; the trade is off");
            }
        }
        if let Some(t) = self.trades.get_mut(&trade_id) {
            t.state = TradeState::Agreed;
            t.taker_signature = Some(taker_signature);
            t.updated_at_ms = now_ms;
        }
        self.finish(trade_id);
        out.trade(self.trades.get(&trade_id));
        TradeResponse::Done { trade_id }
    }

    /// Ends our maker trade, giving back its reservation if it held one.
    fn release_maker(
        &mut self,
        trade_id: &TradeId,
        reason: String,
        orders: &mut Orders,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let Some(trade) = self.trades.get_mut(trade_id) else {
            return;
        };
        if trade.role == TradeRole::Maker && trade.state == TradeState::Accepted {
            orders.release(&trade.pair, &trade.order_id, trade.amount);
        }
        abort(trade, reason, now_ms);
        self.finish(*trade_id);
        out.trade(self.trades.get(trade_id));
    }

    /// The maker answered one of our requests (we are the taker): a handshake answer, a rekey
    /// answer, a sealed trade answer, or a refusal.
    pub fn on_response(
        &mut self,
        token: RequestToken,
        peer: PeerId,
        envelope: TradeEnvelope,
        now_ms: u64,
    ) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        let Some(outbound) = self.outbound.remove(&token) else {
            return out;
        };
        match outbound {
            Outbound::Handshake { peer: p } if p == peer => {
                self.on_handshake_answer(peer, envelope, now_ms, &mut out)
            }
            Outbound::Rekey {
                peer: p,
                frame_digest,
            } if p == peer => self.on_rekey_answer(peer, envelope, frame_digest, now_ms, &mut out),
            Outbound::Trade {
                id,
                peer: p,
                request,
                frame_digest,
                retried,
                lost,
            } if p == peer => {
                let queued = Queued {
                    id,
                    request,
                    retried,
                    lost,
                };
                self.on_trade_answer(peer, queued, frame_digest, envelope, now_ms, &mut out)
            }
            // An answer from someone other than the peer we asked: ignore it.
            _ => {}
        }
        self.pump(peer, now_ms, &mut out);
        out
    }

    fn on_handshake_answer(
        &mut self,
        peer: PeerId,
        envelope: TradeEnvelope,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        match envelope {
            TradeEnvelope::Handshake(resp) => {
                match self
                    .sessions
                    .finish_keeping(peer, &resp, now_ms, &self.trading_with(now_ms))
                {
                    Ok(cipher) => {
                        out.events
                            .push(NegotiationEvent::E2e(E2eEvent::SessionEstablished {
                                peer,
                                initiator: true,
                                cipher: cipher.label(),
                            }))
                    }
                    Err(e) => {
                        out.rejected(peer, e.label());
                        let why = if e == E2eError::SessionsFull {
                            "no room here for another trade session now (each carries a live trade): try again later".to_string()
                        } else {
                            format!("the maker's end-to-end handshake failed: {e}")
                        };
                        self.fail_waiting(peer, &why, now_ms, out);
                    }
                }
            }
            other => {
                self.sessions.cancel_handshake(&peer);
                if !matches!(other, TradeEnvelope::Refused(_)) {
                    out.rejected(peer, "unexpected_kind");
                }
                let why = if other == TradeEnvelope::Refused(Refusal::Busy) {
                    "the maker has no room for another trade session now (each carries a live trade): try again later"
                } else {
                    "the maker refused the end-to-end handshake"
                };
                self.fail_waiting(peer, why, now_ms, out);
            }
        }
    }

    fn on_rekey_answer(
        &mut self,
        peer: PeerId,
        envelope: TradeEnvelope,
        frame_digest: [u8; 32],
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let opened = match envelope {
            TradeEnvelope::Sealed(frame) => self
                .sessions
                .open(
                    peer,
                    Role::Initiator,
                    &response_aad(&self.me, &peer, &frame_digest),
                    &frame,
                    now_ms,
                )
                .map_err(|e| Some(e.label())),
            TradeEnvelope::Refused(_) => Err(None),
            TradeEnvelope::Handshake(_) => Err(Some("unexpected_kind")),
        };
        match opened {
            Ok(Opened::Rekeyed { epoch }) => out
                .events
                .push(NegotiationEvent::E2e(E2eEvent::Rekeyed { peer, epoch })),
            other => {
                // Whatever went wrong, the two sides may disagree on the keys: start over with
                // a full handshake.
                match other {
                    Err(None) => {}
                    Err(Some(reason)) => out.rejected(peer, reason),
                    Ok(_) => out.rejected(peer, "unexpected_kind"),
                }
                self.sessions.remove(&peer, Role::Initiator);
            }
        }
    }

    fn on_trade_answer(
        &mut self,
        peer: PeerId,
        queued: Queued,
        frame_digest: [u8; 32],
        envelope: TradeEnvelope,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let id = queued.id;
        if matches!(queued.request, TradeRequest::Settle { .. }) {
            return self.on_settle_answer(peer, queued, frame_digest, envelope, now_ms, out);
        }
        match envelope {
            TradeEnvelope::Sealed(frame) => {
                match self.open_answer(peer, &frame_digest, &frame, now_ms, out) {
                    Ok(response) => self.on_plain_response(peer, id, response, now_ms, out),
                    Err(Unread::Malformed) => self.abort_taker(
                        id,
                        "malformed answer from the maker".into(),
                        peer,
                        now_ms,
                        out,
                    ),
                    Err(Unread::Unexpected) => self.unexpected_answer(id, peer, now_ms, out),
                    Err(Unread::Sealed(e)) => self.abort_taker(
                        id,
                        format!("the maker's sealed answer did not open ({e})"),
                        peer,
                        now_ms,
                        out,
                    ),
                }
            }
            TradeEnvelope::Refused(refusal)
                if refusal.retry_with_new_session() && !queued.retried =>
            {
                // The maker lost our session (expired, evicted, restarted) and did not read the
                // request: handshake again and resend it, once.
                self.sessions.remove(&peer, Role::Initiator);
                self.waiting.entry(peer).or_default().push_front(Queued {
                    retried: true,
                    ..queued
                });
            }
            TradeEnvelope::Refused(refusal) => self.abort_open_taker(
                id,
                &format!("the maker could not open our request ({refusal:?})"),
                now_ms,
                out,
            ),
            TradeEnvelope::Handshake(_) => self.unexpected_answer(id, peer, now_ms, out),
        }
    }

    /// The answer to one of our settlement messages: taken, or reported undelivered.
    fn on_settle_answer(
        &mut self,
        peer: PeerId,
        queued: Queued,
        frame_digest: [u8; 32],
        envelope: TradeEnvelope,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let id = queued.id;
        let problem = match envelope {
            TradeEnvelope::Sealed(frame) => {
                match self.open_answer(peer, &frame_digest, &frame, now_ms, out) {
                    Ok(TradeResponse::Settled { trade_id }) if trade_id == id => return,
                    Ok(TradeResponse::Rejected { reason }) => reason,
                    Ok(_) | Err(Unread::Unexpected) => {
                        out.rejected(peer, "unexpected_kind");
                        "unexpected answer".into()
                    }
                    Err(Unread::Malformed) => "malformed answer".into(),
                    Err(Unread::Sealed(e)) => format!("the sealed answer did not open ({e})"),
                }
            }
            TradeEnvelope::Refused(refusal)
                if refusal.retry_with_new_session() && !queued.retried =>
            {
                self.sessions.remove(&peer, Role::Initiator);
                self.waiting.entry(peer).or_default().push_front(Queued {
                    retried: true,
                    ..queued
                });
                return;
            }
            TradeEnvelope::Refused(refusal) => format!("our message was not opened ({refusal:?})"),
            TradeEnvelope::Handshake(_) => {
                out.rejected(peer, "unexpected_kind");
                "unexpected answer".into()
            }
        };
        out.events.push(NegotiationEvent::SettleUndelivered {
            trade_id: id,
            reason: problem,
        });
    }

    /// Opens and decodes a sealed answer to one of our requests; what does not open or decode
    /// is counted here, an answer of the wrong kind by the caller.
    fn open_answer(
        &mut self,
        peer: PeerId,
        frame_digest: &[u8; 32],
        frame: &[u8],
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) -> Result<TradeResponse, Unread> {
        let aad = response_aad(&self.me, &peer, frame_digest);
        match self
            .sessions
            .open(peer, Role::Initiator, &aad, frame, now_ms)
        {
            Ok(Opened::Data(plaintext)) => TradeResponse::decode(&Zeroizing::new(plaintext))
                .map_err(|_| {
                    out.events.push(NegotiationEvent::MessageRejected {
                        reason: "trade_response_malformed",
                    });
                    Unread::Malformed
                }),
            Ok(_) => Err(Unread::Unexpected),
            Err(e) => {
                out.rejected(peer, e.label());
                Err(Unread::Sealed(e))
            }
        }
    }

    /// The maker answered our request with something else than an answer to it: refused,
    /// counted, and the trade ends.
    fn unexpected_answer(
        &mut self,
        id: TradeId,
        peer: PeerId,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        out.rejected(peer, "unexpected_kind");
        let reason = "unexpected answer from the maker".to_string();
        self.abort_taker(id, reason, peer, now_ms, out);
    }

    /// An opened answer from the maker to our request about trade `id`.
    fn on_plain_response(
        &mut self,
        peer: PeerId,
        id: TradeId,
        response: TradeResponse,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        let Some(trade) = self.trades.get(&id).cloned() else {
            return;
        };
        // Answers about a trade that already ended (e.g. to our abort) change nothing.
        if trade.role != TradeRole::Taker || trade.counterparty != peer || !trade.state.is_open() {
            return;
        }
        match response {
            TradeResponse::Accepted {
                agreement,
                maker_signature,
            } if trade.state == TradeState::Requested => {
                let deadline =
                    match self.check_agreement(&trade, &agreement, &maker_signature, now_ms) {
                        Ok(deadline) => deadline,
                        Err(reason) => {
                            return self.abort_taker(id, reason.to_string(), peer, now_ms, out)
                        }
                    };
                let signature = match Agreement::sign(&agreement, &self.keypair) {
                    Ok(s) => s,
                    Err(e) => return self.abort_taker(id, e.to_string(), peer, now_ms, out),
                };
                let confirm = TradeRequest::Confirm {
                    trade_id: id,
                    taker_signature: signature.clone(),
                };
                if let Err(e) = self.enqueue(peer, id, confirm) {
                    return self.abort_taker(id, e.to_string(), peer, now_ms, out);
                }
                if let Some(t) = self.trades.get_mut(&id) {
                    t.state = TradeState::Accepted;
                    t.agreement = Some(agreement);
                    t.maker_signature = Some(maker_signature);
                    t.taker_signature = Some(signature);
                    t.deadline_ms = Some(deadline);
                    t.updated_at_ms = now_ms;
                }
            }
            TradeResponse::Done { trade_id }
                if trade_id == id && trade.state == TradeState::Accepted =>
            {
                if let Some(t) = self.trades.get_mut(&id) {
                    t.state = TradeState::Agreed;
                    t.updated_at_ms = now_ms;
                }
                self.finish(id);
            }
            TradeResponse::Rejected { reason } => {
                if let Some(t) = self.trades.get_mut(&id) {
                    t.state = if t.state == TradeState::Requested {
                        TradeState::Rejected { reason }
                    } else {
                        TradeState::Aborted { reason }
                    };
                    t.updated_at_ms = now_ms;
                }
                self.finish(id);
            }
            TradeResponse::Aborted { .. } => return,
            other => {
                return self.abort_taker(
                    id,
                    format!(
                        "the maker's software answered out of turn ({}); nothing was agreed",
                        other.kind()
                    ),
                    peer,
                    now_ms,
                    out,
                );
            }
        }
        out.trade(self.trades.get(&id));
    }

    /// Checks that the maker's agreement is what we asked for and that it signed it; returns its
    /// deadline.
    fn check_agreement(
        &self,
        trade: &Trade,
        encoded: &[u8],
        maker_signature: &[u8],
        now_ms: u64,
    ) -> Result<u64, AgreementRefused> {
        let agreement = Agreement::decode(encoded)?;
        let expected = (
            trade.id,
            &trade.pair,
            trade.order_id,
            trade.counterparty,
            self.me,
            trade.maker_side,
            trade.price,
            trade.amount,
            trade.fee_rate,
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
            agreement.fee_rate,
        );
        if expected != got {
            return Err(AgreementRefused::Mismatch);
        }
        Agreement::verify(encoded, &trade.counterparty, maker_signature)
            .map_err(|_| AgreementRefused::Signature)?;
        if agreement.expires_at_ms <= now_ms {
            return Err(AgreementRefused::Expired);
        }
        Ok(agreement.expires_at_ms)
    }

    /// Ends our open taker trade `id` (nothing if it already ended) and tells the maker so it
    /// releases the amount now rather than at its deadline (best effort: if the abort cannot be
    /// queued, the maker's deadline does it).
    fn abort_taker(
        &mut self,
        id: TradeId,
        reason: String,
        peer: PeerId,
        now_ms: u64,
        out: &mut NegotiationOutput,
    ) {
        match self.trades.get_mut(&id) {
            Some(t) if t.state.is_open() && t.role == TradeRole::Taker => {
                abort(t, reason.clone(), now_ms)
            }
            _ => return,
        }
        self.finish(id);
        out.trade(self.trades.get(&id));
        let request = TradeRequest::Abort {
            trade_id: id,
            reason,
        };
        if self.enqueue(peer, id, request).is_ok() {
            self.pump(peer, now_ms, out);
        }
    }

    /// A request of ours failed (timeout, connection lost, refused stream). When the
    /// connection carrying it closed (`connection_lost`: its relay died, say), a take or a
    /// confirmation of an open trade, and a handshake, wait for a new connection instead (the
    /// node dials the maker again through the relays it holds reservations on, once it holds
    /// one): the take is sent again at most [`MAX_RESENDS_AFTER_LOSS`] times, and a maker that
    /// already answered it answers the same (see [`Negotiation::on_request`]); a maker no
    /// relay of ours reaches ends the trade ([`Negotiation::peer_unreachable`]).
    pub fn on_failure(
        &mut self,
        token: RequestToken,
        error: &str,
        connection_lost: bool,
        now_ms: u64,
    ) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        let id = match self.outbound.remove(&token) {
            None => return out,
            Some(Outbound::Trade {
                request: TradeRequest::Settle { trade_id, .. },
                ..
            }) => {
                out.events.push(NegotiationEvent::SettleUndelivered {
                    trade_id,
                    reason: format!("no answer: {error}"),
                });
                return out;
            }
            Some(Outbound::Trade {
                id,
                peer,
                request: request @ (TradeRequest::Take { .. } | TradeRequest::Confirm { .. }),
                retried,
                lost,
                ..
            }) if connection_lost
                && lost < MAX_RESENDS_AFTER_LOSS
                && self.trades.get(&id).is_some_and(|t| t.state.is_open()) =>
            {
                tracing::debug!(%error, "the connection to the maker closed: sending again");
                let queued = Queued {
                    id,
                    request,
                    retried,
                    lost: lost + 1,
                };
                if self
                    .waiting
                    .get(&peer)
                    .is_some_and(|w| w.len() >= MAX_WAITING_PER_PEER)
                    || (!self.waiting.contains_key(&peer)
                        && self.waiting.len() >= MAX_WAITING_PEERS)
                {
                    self.drop_queued(
                        queued,
                        &TakeError::TooManyWaiting.to_string(),
                        now_ms,
                        &mut out,
                    );
                } else {
                    self.waiting.entry(peer).or_default().push_front(queued);
                }
                return out;
            }
            Some(Outbound::Trade { id, .. }) => id,
            Some(Outbound::Handshake { peer }) if connection_lost => {
                // What waits for the session waits for the next connection too.
                self.sessions.cancel_handshake(&peer);
                return out;
            }
            Some(Outbound::Handshake { peer }) => {
                self.sessions.cancel_handshake(&peer);
                self.fail_waiting(
                    peer,
                    &format!("no answer to the end-to-end handshake: {error}"),
                    now_ms,
                    &mut out,
                );
                return out;
            }
            Some(Outbound::Rekey { peer, .. }) => {
                // The maker may or may not have switched keys: start over. What waits is sent
                // after a new handshake (the node retries waiting requests).
                self.sessions.remove(&peer, Role::Initiator);
                return out;
            }
        };
        match self.trades.get_mut(&id) {
            Some(t) if t.state.is_open() => {
                tracing::debug!(%error, "no answer from the maker");
                abort(
                    t,
                    "the maker did not answer in time (offline or slow); nothing was agreed"
                        .to_string(),
                    now_ms,
                );
            }
            _ => return out,
        }
        self.finish(id);
        out.trade(self.trades.get(&id));
        out
    }

    /// Periodic work. Maker side: accepted trades not confirmed in time release their amount;
    /// taker side: accepted trades the maker did not finish by their deadline (plus a grace)
    /// end. A take request that gets no answer at all ends through [`Negotiation::on_failure`]
    /// (the request timeout). Also prunes idle end-to-end sessions and unanswered handshakes.
    pub fn tick(&mut self, orders: &mut Orders, now_ms: u64) -> NegotiationOutput {
        let mut out = NegotiationOutput::default();
        self.sessions.prune(now_ms);
        let mut late: Vec<(TradeId, TradeRole)> = self
            .trades
            .values()
            .filter(|t| {
                t.state == TradeState::Accepted
                    && t.deadline_ms
                        .is_some_and(|d| now_ms > d + DEADLINE_GRACE_MS)
            })
            .map(|t| (t.id, t.role))
            .collect();
        late.sort_by_key(|(id, _)| *id);
        for (id, role) in late {
            match role {
                TradeRole::Maker => self.release_maker(
                    &id,
                    "the taker did not confirm in time".into(),
                    orders,
                    now_ms,
                    &mut out,
                ),
                TradeRole::Taker => {
                    if let Some(t) = self.trades.get_mut(&id) {
                        abort(t, "the maker did not answer in time", now_ms);
                    }
                    self.finish(id);
                    out.trade(self.trades.get(&id));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;
