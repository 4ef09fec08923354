//! Trade negotiation (`/darkswap/trade/1`), both roles, as a state machine per trade.
//!
//! The taker asks, the maker answers (see `darkswap_proto::trade` for the protocol). The maker
//! reserves the amount in its own book before accepting, so two racing takers can never buy the
//! same unit; every path that does not end in an agreement (rejection, abort, timeout, lost
//! connection) releases the reservation. An agreed trade is "agreed, awaiting settlement":
//! settlement is not built yet, and nothing here pretends funds moved.

use std::collections::{HashMap, VecDeque};

use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::OrderAction;
use darkswap_proto::trade::{Agreement, TradeId, TradeRequest, TradeResponse};
use libp2p::gossipsub;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::PeerId;

use crate::codec::TradeCodec;
use crate::trading::{Trading, TradingEvent};
use crate::unix_time_ms;

/// Trades remembered (finished ones are dropped oldest first beyond this).
pub const MAX_TRADES: usize = 1_000;
/// Trades in negotiation at once, both roles together.
pub const MAX_OPEN_TRADES: usize = 64;
/// Requests queued for a counterparty we are still connecting to.
const MAX_WAITING_PER_PEER: usize = 8;

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
    waiting: HashMap<PeerId, Vec<TradeRequest>>,
    outbound: HashMap<OutboundRequestId, TradeId>,
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
                    waiting.push(confirm);
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

    fn send_trade(
        &mut self,
        peer: PeerId,
        id: TradeId,
        request: TradeRequest,
        rr: &mut request_response::Behaviour<TradeCodec>,
        connected: bool,
    ) -> Result<(), String> {
        if connected {
            let request_id = rr.send_request(&peer, request);
            self.negotiations.outbound.insert(request_id, id);
            return Ok(());
        }
        let waiting = self.negotiations.waiting.entry(peer).or_default();
        if waiting.len() >= MAX_WAITING_PER_PEER {
            return Err("too many requests waiting for this trader".into());
        }
        waiting.push(request);
        Ok(())
    }

    /// A connection to `peer` is up: send what waited for it.
    pub fn peer_connected(
        &mut self,
        peer: PeerId,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) {
        for request in self.negotiations.waiting.remove(&peer).unwrap_or_default() {
            let id = match &request {
                TradeRequest::Take { trade_id, .. }
                | TradeRequest::Confirm { trade_id, .. }
                | TradeRequest::Abort { trade_id, .. } => *trade_id,
            };
            let request_id = rr.send_request(&peer, request);
            self.negotiations.outbound.insert(request_id, id);
        }
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

    /// A trade request from another trader (we are the maker).
    pub fn on_trade_request(
        &mut self,
        peer: PeerId,
        request: TradeRequest,
        channel: ResponseChannel<TradeResponse>,
        rr: &mut request_response::Behaviour<TradeCodec>,
        gossip: &mut gossipsub::Behaviour,
    ) -> Vec<TradingEvent> {
        let (response, changed) = match request {
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
        };
        // The taker may be gone; its side then times out.
        let _ = rr.send_response(channel, response);
        let mut events = changed.map(|id| self.trade_event(&id)).unwrap_or_default();
        events.append(&mut self.pending_events);
        events.extend(self.book_views());
        events
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

    /// The maker answered one of our requests (we are the taker).
    pub fn on_trade_response(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        response: TradeResponse,
        rr: &mut request_response::Behaviour<TradeCodec>,
    ) -> Vec<TradingEvent> {
        let Some(id) = self.negotiations.outbound.remove(&request_id) else {
            return Vec::new();
        };
        let Some(trade) = self.negotiations.trades.get(&id).cloned() else {
            return Vec::new();
        };
        if trade.role != TradeRole::Taker || trade.counterparty != peer {
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
                        let request_id = rr.send_request(&peer, confirm);
                        self.negotiations.outbound.insert(request_id, id);
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
        // Tell the maker so it releases the amount now rather than at the deadline.
        let request_id = rr.send_request(
            &peer,
            TradeRequest::Abort {
                trade_id: id,
                reason: reason.clone(),
            },
        );
        self.negotiations.outbound.insert(request_id, id);
        if let Some(t) = self.negotiations.trades.get_mut(&id) {
            abort(t, reason);
        }
        self.finish(id);
        self.trade_event(&id)
    }

    /// A request of ours failed (timeout, connection lost, refused stream).
    pub fn on_trade_failure(
        &mut self,
        request_id: OutboundRequestId,
        error: String,
    ) -> Vec<TradingEvent> {
        let Some(id) = self.negotiations.outbound.remove(&request_id) else {
            return Vec::new();
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

    /// Maker side: accepted trades not confirmed in time release their amount.
    pub fn expire_trades(&mut self) -> Vec<TradingEvent> {
        let now = unix_time_ms();
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
