//! Every settlement of one trader, sans-IO: what the page and the CLI both drive.
//!
//! The desk holds each trade's [`Settlement`], the outputs they lock (one lock table, so a
//! second trade or a send never picks an output a settlement holds), the taker's offers
//! reserved before the maker agreed, and the messages that arrived before their settlement
//! began (bounded). The caller does the IO: it sends [`Task::Send`] through the trade session,
//! broadcasts [`Task::Broadcast`], runs the [`crate::chain`] plans for
//! [`Desk::lookups_due`] and [`Desk::watched`], and feeds the answers back.

use std::collections::{BTreeMap, VecDeque};

use bitcoin::{OutPoint, Transaction, Txid};
use darkswap_proto::settle::SettleMessage;
use darkswap_proto::trade::TradeId;
use darkswap_wallet::keys::Keychain;
use darkswap_wallet::utxo::{LockError, Locks};

use crate::deal::Deal;
use crate::machine::{Action, ChainStatus, Found, LocalError, Output, Params, Settlement};
use crate::select::Ours;
use crate::store::StoreError;

/// The most settlements a desk holds (ended ones are dropped oldest first past it).
pub const MAX_SETTLEMENTS: usize = 256;
/// The most trades with messages waiting for their settlement to begin.
pub const MAX_EARLY_TRADES: usize = 32;
/// The most messages waiting for one trade.
pub const MAX_EARLY_PER_TRADE: usize = 4;
/// The most takes reserved before their agreement.
pub const MAX_RESERVED: usize = 32;

/// Something the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Send this encoded `SettleMessage` to the trade's counterparty.
    Send {
        /// The trade.
        trade_id: TradeId,
        /// The message's encoding.
        message: Vec<u8>,
    },
    /// Broadcast this fully signed swap.
    Broadcast {
        /// The trade.
        trade_id: TradeId,
        /// The swap.
        tx: Transaction,
    },
}

/// What one input to the desk produced.
#[derive(Debug, Default)]
pub struct DeskOutput {
    /// For the caller, in order.
    pub tasks: Vec<Task>,
    /// Trades whose settlement changed (to show and persist).
    pub changed: Vec<TradeId>,
    /// What the other side sent that was refused, by counter label.
    pub refused: Vec<(TradeId, &'static str)>,
}

/// Why the desk refused a request.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// The outputs chosen are already reserved, or the lock table is full.
    #[error("cannot reserve the outputs: {0}")]
    Lock(#[from] LockError),
    /// Too many settlements or reservations are open.
    #[error("too many settlements are open ({0} at most)")]
    Full(usize),
    /// That trade already has a settlement (or a reservation).
    #[error("that trade is already being settled")]
    Exists,
    /// No settlement for that trade.
    #[error("no settlement for that trade")]
    Unknown,
    /// The agreement is not what our reserved offer was made for.
    #[error("the agreement differs from the take our offer was made for")]
    Mismatch,
    /// The settlement refused a local request.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// A stored settlement did not decode.
    #[error("a stored settlement was refused: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug)]
struct Reserved {
    deal: Deal,
    ours: Ours,
    expires_ms: u64,
}

/// One trader's settlements.
#[derive(Debug)]
pub struct Desk {
    params: Params,
    settlements: BTreeMap<TradeId, Settlement>,
    reserved: BTreeMap<TradeId, Reserved>,
    early: BTreeMap<TradeId, VecDeque<SettleMessage>>,
    lookups: BTreeMap<TradeId, Vec<OutPoint>>,
    locks: Locks<TradeId>,
}

impl Desk {
    /// An empty desk whose settlements use `params`.
    pub fn new(params: Params) -> Self {
        Desk {
            params,
            settlements: BTreeMap::new(),
            reserved: BTreeMap::new(),
            early: BTreeMap::new(),
            lookups: BTreeMap::new(),
            locks: Locks::new(Locks::<TradeId>::DEFAULT_CAP),
        }
    }

    /// The outputs held by settlements and reserved takes (choose new offers and sends from
    /// what these leave free).
    pub fn locks(&self) -> &Locks<TradeId> {
        &self.locks
    }

    /// Every settlement, by trade.
    pub fn settlements(&self) -> impl Iterator<Item = (&TradeId, &Settlement)> {
        self.settlements.iter()
    }

    /// One trade's settlement.
    pub fn get(&self, trade_id: &TradeId) -> Option<&Settlement> {
        self.settlements.get(trade_id)
    }

    /// Whether a take is reserved for `trade_id` (the taker, before the agreement).
    pub fn is_reserved(&self, trade_id: &TradeId) -> bool {
        self.reserved.contains_key(trade_id)
    }

    /// The taker, before its take: locks `ours` for `deal` and returns the encoded offer that
    /// goes with the take. The reservation lapses after the step deadline unless the
    /// agreement comes ([`Desk::begin`]) or the take fails ([`Desk::ended`]).
    pub fn reserve(&mut self, deal: Deal, ours: Ours, now_ms: u64) -> Result<Vec<u8>, DeskError> {
        let id = deal.trade_id;
        if self.settlements.contains_key(&id) || self.reserved.contains_key(&id) {
            return Err(DeskError::Exists);
        }
        if self.reserved.len() >= MAX_RESERVED {
            return Err(DeskError::Full(MAX_RESERVED));
        }
        self.locks.lock(&ours.offer.outpoints(), id)?;
        let offer = SettleMessage::Offer(ours.offer.to_wire()).encode();
        self.reserved.insert(
            id,
            Reserved {
                deal,
                ours,
                expires_ms: now_ms.saturating_add(self.params.step_timeout_ms),
            },
        );
        Ok(offer)
    }

    /// The trade is agreed: its settlement begins. The taker passes `None` for `ours` (its
    /// reserved offer is used, and `deal` must be the one it reserved for); the maker passes
    /// what it chose, and `first`, the taker's offer that came with the take, if any.
    pub fn begin(
        &mut self,
        deal: Deal,
        ours: Option<Ours>,
        first: Option<&[u8]>,
        keys: &Keychain,
        now_ms: u64,
    ) -> Result<DeskOutput, DeskError> {
        let id = deal.trade_id;
        if self.settlements.contains_key(&id) {
            return Err(DeskError::Exists);
        }
        let ours = match ours {
            Some(ours) => {
                if self.reserved.contains_key(&id) {
                    return Err(DeskError::Exists);
                }
                ours
            }
            None => {
                let r = self.reserved.remove(&id).ok_or(DeskError::Unknown)?;
                if r.deal != deal {
                    // Never settle terms other than those our offer was made for.
                    self.locks.release(&id);
                    return Err(DeskError::Mismatch);
                }
                r.ours
            }
        };
        self.make_room()?;
        let (s, out) = Settlement::start(deal, self.params, ours, now_ms);
        self.settlements.insert(id, s);
        let mut desk_out = DeskOutput::default();
        self.apply(id, out, now_ms, &mut desk_out);
        let mut queued: VecDeque<SettleMessage> = self.early.remove(&id).unwrap_or_default();
        if let Some(bytes) = first {
            match SettleMessage::decode(bytes) {
                Ok(m) => queued.push_front(m),
                Err(_) => desk_out.refused.push((id, "offer_malformed")),
            }
        }
        for m in queued {
            self.deliver(id, m, keys, now_ms, &mut desk_out);
        }
        Ok(desk_out)
    }

    /// Drops the oldest ended settlements until there is room for one more.
    fn make_room(&mut self) -> Result<(), DeskError> {
        while self.settlements.len() >= MAX_SETTLEMENTS {
            let oldest = self
                .settlements
                .iter()
                .filter(|(_, s)| s.step().is_final())
                .min_by_key(|(_, s)| s.updated_at_ms())
                .map(|(id, _)| *id)
                .ok_or(DeskError::Full(MAX_SETTLEMENTS))?;
            self.settlements.remove(&oldest);
        }
        Ok(())
    }

    /// A settlement message from the trade's counterparty (the network layer has checked that
    /// it came from it). One for a trade not begun yet waits (bounded).
    pub fn on_message(
        &mut self,
        trade_id: TradeId,
        bytes: &[u8],
        keys: &Keychain,
        now_ms: u64,
    ) -> DeskOutput {
        let mut out = DeskOutput::default();
        let message = match SettleMessage::decode(bytes) {
            Ok(m) => m,
            Err(_) => {
                out.refused.push((trade_id, "message_malformed"));
                return out;
            }
        };
        if self.settlements.contains_key(&trade_id) {
            self.deliver(trade_id, message, keys, now_ms, &mut out);
            return out;
        }
        if !self.early.contains_key(&trade_id) && self.early.len() >= MAX_EARLY_TRADES {
            out.refused.push((trade_id, "early_overflow"));
            return out;
        }
        let waiting = self.early.entry(trade_id).or_default();
        if waiting.len() >= MAX_EARLY_PER_TRADE {
            out.refused.push((trade_id, "early_overflow"));
        } else {
            waiting.push_back(message);
        }
        out
    }

    fn deliver(
        &mut self,
        id: TradeId,
        message: SettleMessage,
        keys: &Keychain,
        now_ms: u64,
        out: &mut DeskOutput,
    ) {
        if let Some(s) = self.settlements.get_mut(&id) {
            let o = s.on_message(message, keys, now_ms);
            self.apply(id, o, now_ms, out);
        }
    }

    /// Outputs of the other side's to look up ([`crate::chain::Lookup`]), by trade.
    pub fn lookups_due(&self) -> impl Iterator<Item = (&TradeId, &Vec<OutPoint>)> {
        self.lookups.iter()
    }

    /// Swaps to watch ([`crate::chain::Watch`]): trade, txid, inputs, and which are ours.
    pub fn watched(&self) -> Vec<(TradeId, Txid, Vec<OutPoint>, Vec<OutPoint>)> {
        self.settlements
            .iter()
            .filter(|(_, s)| !s.step().is_final())
            .filter_map(|(id, s)| {
                let swap = s.swap()?;
                let inputs = swap.tx.input.iter().map(|i| i.previous_output).collect();
                Some((*id, swap.tx.compute_txid(), inputs, s.our_outpoints()))
            })
            .collect()
    }

    /// What a lookup found.
    pub fn on_lookups(
        &mut self,
        trade_id: TradeId,
        found: &[Found],
        keys: &Keychain,
        now_ms: u64,
    ) -> DeskOutput {
        let mut out = DeskOutput::default();
        self.lookups.remove(&trade_id);
        if let Some(s) = self.settlements.get_mut(&trade_id) {
            let o = s.on_lookups(found, keys, now_ms);
            self.apply(trade_id, o, now_ms, &mut out);
        }
        out
    }

    /// What a watch saw.
    pub fn on_chain(&mut self, trade_id: TradeId, status: ChainStatus, now_ms: u64) -> DeskOutput {
        let mut out = DeskOutput::default();
        if let Some(s) = self.settlements.get_mut(&trade_id) {
            let o = s.on_chain(status, now_ms);
            self.apply(trade_id, o, now_ms, &mut out);
        }
        out
    }

    /// Time passes: step deadlines, and reservations whose agreement never came.
    pub fn tick(&mut self, now_ms: u64) -> DeskOutput {
        let mut out = DeskOutput::default();
        let lapsed: Vec<TradeId> = self
            .reserved
            .iter()
            .filter(|(_, r)| now_ms >= r.expires_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in lapsed {
            self.reserved.remove(&id);
            self.locks.release(&id);
            self.early.remove(&id);
        }
        let ids: Vec<TradeId> = self.settlements.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.settlements.get_mut(&id) {
                let o = s.tick(now_ms);
                self.apply(id, o, now_ms, &mut out);
            }
        }
        out
    }

    /// The trade ended in negotiation (refused, aborted, or the take failed): a reservation is
    /// released, and a settlement not yet signed aborts.
    pub fn ended(&mut self, trade_id: TradeId, reason: &str, now_ms: u64) -> DeskOutput {
        let mut out = DeskOutput::default();
        if self.reserved.remove(&trade_id).is_some() {
            self.locks.release(&trade_id);
        }
        self.early.remove(&trade_id);
        if let Some(s) = self.settlements.get_mut(&trade_id) {
            if let Ok(o) = s.abort(reason, now_ms) {
                self.apply(trade_id, o, now_ms, &mut out);
            }
        }
        out
    }

    /// The trader gives up on a settlement before signing.
    pub fn abort(
        &mut self,
        trade_id: TradeId,
        reason: &str,
        now_ms: u64,
    ) -> Result<DeskOutput, DeskError> {
        let s = self
            .settlements
            .get_mut(&trade_id)
            .ok_or(DeskError::Unknown)?;
        let o = s.abort(reason, now_ms)?;
        let mut out = DeskOutput::default();
        self.apply(trade_id, o, now_ms, &mut out);
        Ok(out)
    }

    /// Every settlement's stored form (for the page's IndexedDB or the CLI's file).
    pub fn stored(&self) -> Vec<(TradeId, Vec<u8>)> {
        self.settlements
            .iter()
            .map(|(id, s)| (*id, s.encode()))
            .collect()
    }

    /// Takes a stored settlement back and carries on where it stopped (locks again, lookups,
    /// the last message again, a whole transaction broadcast again); its trade and what to do.
    pub fn restore(
        &mut self,
        bytes: &[u8],
        now_ms: u64,
    ) -> Result<(TradeId, DeskOutput), DeskError> {
        let s = Settlement::decode(bytes)?;
        let id = s.deal().trade_id;
        if self.settlements.contains_key(&id) {
            return Err(DeskError::Exists);
        }
        self.make_room()?;
        let o = s.resume();
        self.settlements.insert(id, s);
        let mut out = DeskOutput::default();
        self.apply(id, o, now_ms, &mut out);
        Ok((id, out))
    }

    fn apply(&mut self, id: TradeId, o: Output, now_ms: u64, out: &mut DeskOutput) {
        if let Some(r) = &o.refused {
            out.refused.push((id, r.label()));
        }
        if o.changed && !out.changed.contains(&id) {
            out.changed.push(id);
        }
        for action in o.actions {
            match action {
                Action::Lock(points) => {
                    // Our own choice, from outputs free when chosen: a clash means another
                    // settlement took one meanwhile, and this one must not go on.
                    if self.locks.lock(&points, id).is_err() {
                        let aborted = self.settlements.get_mut(&id).and_then(|s| {
                            s.abort("an output of ours is held by another trade", now_ms)
                                .ok()
                        });
                        if let Some(o) = aborted {
                            self.apply(id, o, now_ms, out);
                        }
                        return;
                    }
                }
                Action::Release => {
                    self.locks.release(&id);
                    self.lookups.remove(&id);
                }
                Action::Lookup(points) => {
                    self.lookups.insert(id, points);
                }
                Action::Send(m) => out.tasks.push(Task::Send {
                    trade_id: id,
                    message: m.encode(),
                }),
                Action::Broadcast(tx) => out.tasks.push(Task::Broadcast { trade_id: id, tx }),
                // Watched through [`Desk::watched`] while the settlement has a swap.
                Action::Watch { .. } => {}
            }
        }
    }
}
