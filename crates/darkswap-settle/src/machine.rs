//! One trade's settlement, one side of it, as a sans-IO state machine.
//!
//! Steps: [`Step::Offered`] (our offer made, the other side's awaited) → [`Step::Checking`]
//! (theirs received; its outputs looked up on the chain and the rune indexer) →
//! [`Step::Checked`] (every claim matched and the swap built: the same bytes on both sides) →
//! [`Step::Signed`] (our inputs signed and sent) → [`Step::Broadcast`] (the whole transaction
//! exists, or is seen on the chain) → [`Step::Settled`] (the configured confirmations). A trade
//! that ends before we sign is [`Step::Aborted`] and nothing moved; one whose inputs were spent
//! elsewhere after we signed (our cancel) is [`Step::Cancelled`].
//!
//! The taker signs first (its half goes to the maker); the maker checks that half against its
//! own build, signs last, broadcasts, and sends the whole transaction back, and the taker
//! broadcasts it too. Either side also sees it on the chain.
//!
//! Every input carries the time and returns an [`Output`]: [`Action`]s for the caller (lock or
//! release our outputs, look up the other side's, send a message, broadcast, watch the chain)
//! and, when something from the other side was refused, the reason with its counter label.

use std::collections::BTreeMap;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::{OutPoint, Transaction, Txid};
use darkswap_proto::settle::{SettleMessage, SettleWireError, MAX_SWAP_TX_BYTES};
use darkswap_wallet::keys::{KeyPath, Keychain};
use darkswap_wallet::send::{sweep, BuildError, FeeRate, Unsigned};
use darkswap_wallet::swap::{
    accept, build, check_offered, sign_side, Difference, OfferError, Swap, SwapError,
};
use darkswap_wallet::utxo::{Assets, Utxo};

use crate::convert::Offer;
use crate::deal::{Deal, Role};
use crate::select::Ours;

/// What a settlement waits for and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// Confirmations after which the trade is settled.
    pub confirmations: u32,
    /// How long the other side has for each step before we sign; past it we abort (and after
    /// signing, offer to cancel).
    pub step_timeout_ms: u64,
}

impl Params {
    /// One confirmation; two minutes a step.
    pub const DEFAULT: Params = Params {
        confirmations: 1,
        step_timeout_ms: 120_000,
    };
}

impl Default for Params {
    fn default() -> Self {
        Params::DEFAULT
    }
}

/// Where the settlement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// Our offer is made; the other side's is awaited.
    Offered,
    /// Their offer is in; its outputs are being looked up.
    Checking,
    /// Their offer checked and the swap built; the maker waits for the taker's half.
    Checked,
    /// Our inputs are signed and sent.
    Signed,
    /// The whole transaction exists or is on the chain; confirmations awaited.
    Broadcast,
    /// Confirmed as configured: the assets have moved.
    Settled,
    /// Ended before we signed: nothing moved, our outputs are free.
    Aborted,
    /// After we signed, our inputs were spent elsewhere (our cancel): nothing moved.
    Cancelled,
}

impl Step {
    /// A short machine-readable name.
    pub fn label(self) -> &'static str {
        match self {
            Step::Offered => "offered",
            Step::Checking => "checking",
            Step::Checked => "checked",
            Step::Signed => "signed",
            Step::Broadcast => "broadcast",
            Step::Settled => "settled",
            Step::Aborted => "aborted",
            Step::Cancelled => "cancelled",
        }
    }

    /// Whether it has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Step::Settled | Step::Aborted | Step::Cancelled)
    }

    /// Whether our signatures may have left (we can no longer abort, only cancel).
    pub fn signed(self) -> bool {
        matches!(
            self,
            Step::Signed | Step::Broadcast | Step::Settled | Step::Cancelled
        )
    }
}

/// Why something the other side sent was refused (the settlement aborts, before we sign).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Their offer breaks the wire caps.
    #[error("their offer is malformed: {0}")]
    Offer(#[source] SettleWireError),
    /// An output they offered is not on the chain.
    #[error("their output {0} is not on the chain")]
    NotFound(OutPoint),
    /// An output they offered is already spent.
    #[error("their output {0} is already spent")]
    Spent(OutPoint),
    /// An output's claim does not match the chain or the indexer.
    #[error("{0}")]
    Claim(#[source] OfferError),
    /// Their offer makes no valid swap with ours.
    #[error("the two offers make no valid swap: {0}")]
    Build(#[source] SwapError),
    /// Their transaction does not decode.
    #[error("their transaction does not decode")]
    Malformed,
    /// Their transaction is not the agreed one, or their signatures do not verify.
    #[error("{0}")]
    Signed(#[source] SwapError),
}

impl Refusal {
    /// The counter label (a closed set).
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::Offer(_) => "offer_malformed",
            Refusal::NotFound(_) => "input_not_found",
            Refusal::Spent(_) => "input_spent",
            Refusal::Claim(OfferError::NotInTransaction(_)) => "input_mismatch",
            Refusal::Claim(OfferError::Unindexed(_)) => "input_unindexed",
            Refusal::Claim(OfferError::Runes { .. }) => "runes_claim",
            Refusal::Claim(OfferError::Inscriptions(_)) => "inscriptions",
            Refusal::Build(_) => "offers_unbuildable",
            Refusal::Malformed => "tx_malformed",
            Refusal::Signed(SwapError::Differs(d)) => match d {
                Difference::Inputs => "inputs",
                Difference::OutputCount { .. } => "output_count",
                Difference::Script(_) => "output_script",
                Difference::Value { .. } => "output_value",
                Difference::Runestone => "runestone",
                Difference::Cenotaph(_) => "cenotaph",
                Difference::Framing => "framing",
            },
            Refusal::Signed(SwapError::BadSignature(_)) => "signature",
            Refusal::Signed(_) => "signed_other",
        }
    }
}

/// What the caller learned about one output the other side offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The output.
    pub outpoint: OutPoint,
    /// Its transaction, `None` when the chain does not know it.
    pub tx: Option<Transaction>,
    /// Whether the chain says it is spent.
    pub spent: bool,
    /// What the rune indexer says it holds.
    pub assets: Assets,
}

/// What the caller sees of the swap on the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainStatus {
    /// The swap is not seen, and none of its inputs is spent.
    Unseen,
    /// The swap is seen with this many confirmations (0: in the mempool).
    Seen(u32),
    /// An input of the swap is spent by another transaction: `ours` when it is one of ours.
    Conflict {
        /// Whether the respent input is ours.
        ours: bool,
    },
}

impl ChainStatus {
    /// What the chain API answered: whether each of the swap's inputs is spent (`spent`, asked
    /// first), then the swap's confirmations (`swap`, asked after; `None`: unknown to it). Asked
    /// in that order, a swap that arrives between the two questions is seen, not mistaken for
    /// a conflict.
    pub fn observed(spent: &[OutPoint], swap: Option<u32>, ours: &[OutPoint]) -> ChainStatus {
        match swap {
            Some(confirmations) => ChainStatus::Seen(confirmations),
            None if spent.is_empty() => ChainStatus::Unseen,
            None => ChainStatus::Conflict {
                ours: spent.iter().any(|o| ours.contains(o)),
            },
        }
    }
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Lock these outputs of ours for this trade.
    Lock(Vec<OutPoint>),
    /// Release every output this trade locked.
    Release,
    /// Look these outputs of the other side's up, then call [`Settlement::on_lookups`].
    Lookup(Vec<OutPoint>),
    /// Send this to the other side, in the trade session.
    Send(SettleMessage),
    /// Broadcast this transaction (fully signed).
    Broadcast(Transaction),
    /// Watch the chain for `txid` and for its inputs spent elsewhere; report with
    /// [`Settlement::on_chain`].
    Watch {
        /// The swap.
        txid: Txid,
        /// Every input it spends.
        inputs: Vec<OutPoint>,
    },
}

/// What one input produced.
#[derive(Debug, Default)]
pub struct Output {
    /// For the caller, in order.
    pub actions: Vec<Action>,
    /// Something the other side sent, refused (the settlement aborted).
    pub refused: Option<Refusal>,
    /// Whether the settlement's view changed (to show and persist).
    pub changed: bool,
}

/// What a cancel pays on top of the swap's fee, per virtual byte of the swap (the default
/// incremental relay fee of Bitcoin Core's replacement rules).
pub const CANCEL_INCREMENTAL_SAT_PER_VB: u64 = 1;

/// Why a cancel could not be built.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// Nothing to cancel at this step.
    #[error(transparent)]
    Local(#[from] LocalError),
    /// The spend could not be built (the outputs cannot pay the fee it needs).
    #[error("the cancel cannot be built: {0}")]
    Build(#[from] BuildError),
}

/// Why a local request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalError {
    /// Our signatures may have left: only a cancel (spending our inputs elsewhere) ends it.
    #[error("our half is signed and sent: the trade can only be cancelled by spending our inputs elsewhere")]
    AlreadySigned,
    /// It has already ended.
    #[error("the settlement has already ended")]
    Ended,
    /// There is nothing to cancel: we have not signed, or it is confirmed.
    #[error("nothing to cancel at this step")]
    NothingToCancel,
}

/// One side's settlement of one trade.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub(crate) deal: Deal,
    pub(crate) params: Params,
    pub(crate) ours: Ours,
    pub(crate) theirs: Option<Offer>,
    pub(crate) swap: Option<Swap>,
    /// The maker: the taker's half, received before our checks finished.
    pub(crate) pending_half: Option<Transaction>,
    /// The taker: our half, as sent.
    pub(crate) our_half: Option<Transaction>,
    /// The whole transaction, once we hold it.
    pub(crate) full: Option<Transaction>,
    pub(crate) confirmations: u32,
    pub(crate) step: Step,
    pub(crate) reason: Option<String>,
    pub(crate) cancel_offered: bool,
    pub(crate) deadline_ms: u64,
    pub(crate) updated_at_ms: u64,
}

impl Settlement {
    /// Starts settling `deal` with `ours` (chosen by [`crate::select`]): locks our outputs and
    /// sends our offer.
    pub fn start(deal: Deal, params: Params, ours: Ours, now_ms: u64) -> (Settlement, Output) {
        let s = Settlement {
            deal,
            params,
            ours,
            theirs: None,
            swap: None,
            pending_half: None,
            our_half: None,
            full: None,
            confirmations: 0,
            step: Step::Offered,
            reason: None,
            cancel_offered: false,
            deadline_ms: now_ms.saturating_add(params.step_timeout_ms),
            updated_at_ms: now_ms,
        };
        let out = Output {
            actions: vec![
                Action::Lock(s.ours.offer.outpoints()),
                Action::Send(SettleMessage::Offer(s.ours.offer.to_wire())),
            ],
            refused: None,
            changed: true,
        };
        (s, out)
    }

    /// The deal settled.
    pub fn deal(&self) -> &Deal {
        &self.deal
    }

    /// Where it stands.
    pub fn step(&self) -> Step {
        self.step
    }

    /// Why it ended or what it waits on, in words.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// The swap's txid, once built.
    pub fn txid(&self) -> Option<Txid> {
        self.swap.as_ref().map(|s| s.tx.compute_txid())
    }

    /// Confirmations last seen.
    pub fn confirmations(&self) -> u32 {
        self.confirmations
    }

    /// The swap, once built.
    pub fn swap(&self) -> Option<&Swap> {
        self.swap.as_ref()
    }

    /// The whole signed transaction, once we hold it.
    pub fn full(&self) -> Option<&Transaction> {
        self.full.as_ref()
    }

    /// Whether the other side has gone quiet after we signed, so the page offers a cancel.
    pub fn cancel_offered(&self) -> bool {
        self.cancel_offered
    }

    /// When the current step times out.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// When it last changed.
    pub fn updated_at_ms(&self) -> u64 {
        self.updated_at_ms
    }

    /// Our outputs in the swap.
    pub fn our_outpoints(&self) -> Vec<OutPoint> {
        self.ours.offer.outpoints()
    }

    fn moved(&mut self, step: Step, now_ms: u64, out: &mut Output) {
        self.step = step;
        self.deadline_ms = now_ms.saturating_add(self.params.step_timeout_ms);
        self.updated_at_ms = now_ms;
        out.changed = true;
    }

    fn end(&mut self, step: Step, reason: String, now_ms: u64, out: &mut Output) {
        self.reason = Some(reason);
        self.moved(step, now_ms, out);
        out.actions.push(Action::Release);
    }

    fn refuse(&mut self, refusal: Refusal, now_ms: u64, out: &mut Output) {
        let reason = format!(
            "refused the other side's {}: {refusal}",
            self.refused_what()
        );
        out.actions
            .push(Action::Send(SettleMessage::Abort(reason.clone())));
        self.end(Step::Aborted, reason, now_ms, out);
        out.refused = Some(refusal);
    }

    fn refused_what(&self) -> &'static str {
        match self.step {
            Step::Offered | Step::Checking => "offer",
            _ => "transaction",
        }
    }

    fn paths(&self, swap: &Swap) -> Vec<KeyPath> {
        swap.inputs_of(self.deal.side)
            .filter_map(|i| {
                let at = swap.tx.input[i].previous_output;
                self.ours.paths.get(&at).copied()
            })
            .collect()
    }

    pub(crate) fn offers_pair(
        &self,
    ) -> Option<(
        &darkswap_wallet::swap::SellerOffer,
        &darkswap_wallet::swap::BuyerOffer,
    )> {
        match (&self.ours.offer, self.theirs.as_ref()?) {
            (Offer::Seller(s), Offer::Buyer(b)) | (Offer::Buyer(b), Offer::Seller(s)) => {
                Some((s, b))
            }
            _ => None,
        }
    }

    /// A settlement message from the other side.
    pub fn on_message(&mut self, message: SettleMessage, keys: &Keychain, now_ms: u64) -> Output {
        let mut out = Output::default();
        if self.step.is_final() {
            // The maker may have missed our whole transaction: answer a repeated half with it.
            if let (SettleMessage::Signed(_), Some(full)) = (&message, &self.full) {
                out.actions
                    .push(Action::Send(SettleMessage::Signed(serialize(full))));
            }
            return out;
        }
        match message {
            SettleMessage::Offer(wire) => {
                if self.step != Step::Offered {
                    // A repeat (a resend after a reconnect); the first one stands.
                    return out;
                }
                match Offer::from_wire(self.deal.their_side(), &wire) {
                    Ok(offer) => {
                        out.actions.push(Action::Lookup(offer.outpoints()));
                        self.theirs = Some(offer);
                        self.moved(Step::Checking, now_ms, &mut out);
                    }
                    Err(e) => self.refuse(Refusal::Offer(e), now_ms, &mut out),
                }
            }
            SettleMessage::Signed(bytes) => {
                let tx = match decode_tx(&bytes) {
                    Some(tx) => tx,
                    None if self.step.signed() => return out,
                    None => {
                        self.refuse(Refusal::Malformed, now_ms, &mut out);
                        return out;
                    }
                };
                match (self.deal.role, self.step) {
                    (Role::Maker, Step::Checked) => {
                        self.complete_as_maker(tx, keys, now_ms, &mut out)
                    }
                    (Role::Maker, Step::Offered | Step::Checking) => {
                        self.pending_half = Some(tx);
                        out.changed = true;
                    }
                    (Role::Maker, Step::Broadcast) => {
                        if let Some(full) = &self.full {
                            out.actions
                                .push(Action::Send(SettleMessage::Signed(serialize(full))));
                        }
                    }
                    (Role::Taker, Step::Signed | Step::Broadcast) if self.full.is_none() => {
                        self.complete_as_taker(tx, now_ms, &mut out)
                    }
                    _ => {}
                }
            }
            SettleMessage::Abort(reason) => {
                if self.step.signed() {
                    // Our half is out: their word ends nothing; a cancel does.
                    self.reason = Some(format!("the other side gave up after we signed: {reason}"));
                    self.cancel_offered = true;
                    out.changed = true;
                } else {
                    self.end(
                        Step::Aborted,
                        format!("the other side gave up: {reason}"),
                        now_ms,
                        &mut out,
                    );
                }
            }
        }
        out
    }

    /// What the caller found for the other side's outputs (after [`Action::Lookup`]).
    pub fn on_lookups(&mut self, found: &[Found], keys: &Keychain, now_ms: u64) -> Output {
        let mut out = Output::default();
        if self.step != Step::Checking {
            return out;
        }
        let Some(theirs) = self.theirs.clone() else {
            return out;
        };
        let by_outpoint: BTreeMap<OutPoint, &Found> =
            found.iter().map(|f| (f.outpoint, f)).collect();
        for claim in theirs.inputs() {
            let at = claim.outpoint;
            let refusal = match by_outpoint.get(&at) {
                None | Some(Found { tx: None, .. }) => Some(Refusal::NotFound(at)),
                Some(Found { spent: true, .. }) => Some(Refusal::Spent(at)),
                Some(Found {
                    tx: Some(tx),
                    assets,
                    ..
                }) => check_offered(claim, tx, assets).err().map(Refusal::Claim),
            };
            if let Some(r) = refusal {
                self.refuse(r, now_ms, &mut out);
                return out;
            }
        }
        let built = match self.offers_pair() {
            Some((s, b)) => build(&self.deal.terms, s, b),
            None => Err(SwapError::Inputs),
        };
        let swap = match built {
            Ok(swap) => swap,
            Err(e) => {
                self.refuse(Refusal::Build(e), now_ms, &mut out);
                return out;
            }
        };
        out.actions.push(Action::Watch {
            txid: swap.tx.compute_txid(),
            inputs: swap.tx.input.iter().map(|i| i.previous_output).collect(),
        });
        self.swap = Some(swap);
        self.moved(Step::Checked, now_ms, &mut out);
        match self.deal.role {
            Role::Taker => self.sign_first(keys, now_ms, &mut out),
            Role::Maker => {
                if let Some(half) = self.pending_half.take() {
                    self.complete_as_maker(half, keys, now_ms, &mut out);
                }
            }
        }
        out
    }

    fn sign_own(
        &self,
        swap: &Swap,
        tx: &mut Transaction,
        keys: &Keychain,
    ) -> Result<(), SwapError> {
        let paths = self.paths(swap);
        sign_side(keys, swap, self.deal.side, &paths, tx)
    }

    fn sign_first(&mut self, keys: &Keychain, now_ms: u64, out: &mut Output) {
        let Some(swap) = self.swap.clone() else {
            return;
        };
        let mut half = swap.tx.clone();
        if let Err(e) = self.sign_own(&swap, &mut half, keys) {
            let reason = format!("could not sign our inputs: {e}");
            out.actions
                .push(Action::Send(SettleMessage::Abort(reason.clone())));
            self.end(Step::Aborted, reason, now_ms, out);
            return;
        }
        out.actions
            .push(Action::Send(SettleMessage::Signed(serialize(&half))));
        self.our_half = Some(half);
        self.moved(Step::Signed, now_ms, out);
    }

    fn complete_as_maker(
        &mut self,
        half: Transaction,
        keys: &Keychain,
        now_ms: u64,
        out: &mut Output,
    ) {
        let Some(swap) = self.swap.clone() else {
            return;
        };
        let mut full = match accept(&swap, self.deal.their_side(), &half) {
            Ok(tx) => tx,
            Err(e) => {
                self.refuse(Refusal::Signed(e), now_ms, out);
                return;
            }
        };
        if let Err(e) = self.sign_own(&swap, &mut full, keys) {
            let reason = format!("could not sign our inputs: {e}");
            out.actions
                .push(Action::Send(SettleMessage::Abort(reason.clone())));
            self.end(Step::Aborted, reason, now_ms, out);
            return;
        }
        out.actions.push(Action::Broadcast(full.clone()));
        out.actions
            .push(Action::Send(SettleMessage::Signed(serialize(&full))));
        self.full = Some(full);
        self.moved(Step::Broadcast, now_ms, out);
    }

    fn complete_as_taker(&mut self, tx: Transaction, now_ms: u64, out: &mut Output) {
        let (Some(swap), Some(half)) = (self.swap.clone(), self.our_half.clone()) else {
            return;
        };
        match accept(&swap, self.deal.their_side(), &tx) {
            Ok(mut full) => {
                for i in swap.inputs_of(self.deal.side) {
                    full.input[i].witness = half.input[i].witness.clone();
                }
                out.actions.push(Action::Broadcast(full.clone()));
                self.full = Some(full);
                if self.step == Step::Signed {
                    self.moved(Step::Broadcast, now_ms, out);
                } else {
                    out.changed = true;
                }
            }
            Err(e) => {
                // Our half is out: a bad whole from the maker ends nothing (it may still
                // broadcast a good one), but it is counted and shown, and a cancel is offered.
                self.reason = Some(format!("the maker's transaction was refused: {e}"));
                self.cancel_offered = true;
                out.refused = Some(Refusal::Signed(e));
                out.changed = true;
            }
        }
    }

    /// What the chain shows (after [`Action::Watch`]).
    pub fn on_chain(&mut self, status: ChainStatus, now_ms: u64) -> Output {
        let mut out = Output::default();
        if self.step.is_final() || self.swap.is_none() {
            return out;
        }
        match status {
            ChainStatus::Unseen => {}
            ChainStatus::Seen(confirmations) => {
                if self.step < Step::Broadcast {
                    self.moved(Step::Broadcast, now_ms, &mut out);
                }
                if confirmations != self.confirmations {
                    self.confirmations = confirmations;
                    self.updated_at_ms = now_ms;
                    out.changed = true;
                }
                if confirmations >= self.params.confirmations {
                    self.reason = None;
                    self.cancel_offered = false;
                    self.moved(Step::Settled, now_ms, &mut out);
                    out.actions.push(Action::Release);
                }
            }
            ChainStatus::Conflict { ours } => {
                let (step, reason) = match (ours, self.step.signed()) {
                    (true, true) => (
                        Step::Cancelled,
                        "cancelled: our inputs were spent elsewhere, so the swap can never confirm",
                    ),
                    (true, false) => (
                        Step::Aborted,
                        "aborted: our inputs were spent elsewhere before we signed",
                    ),
                    (false, _) => (
                        Step::Aborted,
                        "aborted: the other side spent its inputs elsewhere; nothing moved",
                    ),
                };
                self.end(step, reason.into(), now_ms, &mut out);
            }
        }
        out
    }

    /// Time passes: a step past its deadline aborts before we sign, and offers a cancel after.
    pub fn tick(&mut self, now_ms: u64) -> Output {
        let mut out = Output::default();
        if now_ms < self.deadline_ms || self.step.is_final() {
            return out;
        }
        match self.step {
            Step::Offered | Step::Checking | Step::Checked => {
                let reason = format!(
                    "the other side did not answer within {} s",
                    self.params.step_timeout_ms / 1000
                );
                out.actions
                    .push(Action::Send(SettleMessage::Abort(reason.clone())));
                self.end(Step::Aborted, reason, now_ms, &mut out);
            }
            Step::Signed if !self.cancel_offered => {
                self.cancel_offered = true;
                self.reason = Some(
                    "the other side has not completed the transaction; you may cancel by spending your inputs elsewhere".into(),
                );
                self.updated_at_ms = now_ms;
                out.changed = true;
            }
            _ => {}
        }
        out
    }

    /// We give up before signing (the agreement failed, or the trader chose to).
    pub fn abort(&mut self, reason: &str, now_ms: u64) -> Result<Output, LocalError> {
        if self.step.is_final() {
            return Err(LocalError::Ended);
        }
        if self.step.signed() {
            return Err(LocalError::AlreadySigned);
        }
        let mut out = Output::default();
        out.actions
            .push(Action::Send(SettleMessage::Abort(reason.into())));
        self.end(
            Step::Aborted,
            format!("aborted: {reason}"),
            now_ms,
            &mut out,
        );
        Ok(out)
    }

    /// The spend that cancels a swap we signed that has not confirmed: every output we offered,
    /// to our own change script (the rune change for a seller, the bitcoin change for a buyer),
    /// at `fee_rate` but never less than the swap's fee plus [`CANCEL_INCREMENTAL_SAT_PER_VB`]
    /// on the swap's size (BIP125: a replacement pays more than what it replaces, and for its
    /// own relay), so that it displaces the swap from a mempool as well as racing it. Unsigned:
    /// the caller signs it with the wallet's keys and broadcasts it; the settlement ends as
    /// cancelled when the chain shows the conflict.
    pub fn cancel_spend(&self, fee_rate: FeeRate) -> Result<Unsigned, CancelError> {
        let paths = self.cancel_inputs()?;
        let swap = self.swap.as_ref().ok_or(LocalError::NothingToCancel)?;
        let inputs: Vec<Utxo> = self
            .ours
            .offer
            .inputs()
            .iter()
            .filter_map(|o| {
                let path = paths.iter().find(|(p, _)| *p == o.outpoint)?.1;
                Some(Utxo {
                    outpoint: o.outpoint,
                    txout: o.txout.clone(),
                    path,
                    confirmations: 1,
                    assets: Assets::Known {
                        runes: o.runes.clone(),
                        inscriptions: 0,
                    },
                })
            })
            .collect();
        let to = match &self.ours.offer {
            Offer::Seller(s) => s.rune_change.clone(),
            Offer::Buyer(b) => b.change.clone(),
        };
        // The swap's size once signed: 16.25 vB of witness per key-path input over the unsigned.
        let swap_vb = swap.tx.vsize() as u64 + 17 * swap.tx.input.len() as u64;
        let min_fee = swap.fee
            + bitcoin::Amount::from_sat(CANCEL_INCREMENTAL_SAT_PER_VB.saturating_mul(swap_vb));
        Ok(sweep(inputs, to, fee_rate, min_fee)?)
    }

    /// Our inputs and their keys, to spend elsewhere and so cancel a swap we signed that has
    /// not confirmed (the wallet builds the spend; its fee must beat the swap's, which is
    /// replaceable). The settlement ends when the chain shows the conflict.
    pub fn cancel_inputs(&self) -> Result<Vec<(OutPoint, KeyPath)>, LocalError> {
        match self.step {
            Step::Signed => {}
            Step::Broadcast if self.confirmations == 0 => {}
            s if s.is_final() => return Err(LocalError::Ended),
            _ => return Err(LocalError::NothingToCancel),
        }
        Ok(self.ours.paths.iter().map(|(o, p)| (*o, *p)).collect())
    }
}

fn decode_tx(bytes: &[u8]) -> Option<Transaction> {
    if bytes.len() > MAX_SWAP_TX_BYTES {
        return None;
    }
    deserialize(bytes).ok()
}
