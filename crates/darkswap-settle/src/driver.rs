//! The settlement driver's shared core, sans-IO: everything the page and the CLI do around a
//! [`Desk`] except moving bytes. The caller feeds it what the trade negotiation reports (a take
//! to make, an agreement, a settlement message, a trade that ended), the time, and the answers
//! to the GETs it asks for; it hands back [`Event`]s (a take to send with its offer, messages
//! for the counterparty, a swap to broadcast, a settlement that changed, refusals and chain
//! troubles to count).
//!
//! What it does on its own, one GET at a time ([`Driver::next_request`]):
//! - learns a pair's rune id from its name (ord's `/rune/{name}`);
//! - reads our wallet before it chooses what we bring (again after a settlement moved funds,
//!   or when the last read is older than [`Config::wallet_max_age_ms`]); only confirmed
//!   outputs are offered, since the other side checks them against ord, which indexes blocks;
//! - waits until ord has indexed the chain's tip before it reads the wallet or looks the other
//!   side's outputs up (a freshly confirmed output is otherwise reported unknown and refused);
//! - looks the other side's outputs up, and watches every swap every
//!   [`Config::watch_every_ms`].
//!
//! A failed GET stops its job; the driver tries again after a wait that doubles from 0.5 s to
//! 16 s (1 s while ord catches up). Bounds: [`MAX_PENDING`] takes and agreements waiting to
//! begin, [`MAX_HELD`] messages held while the wallet is locked, [`MAX_NAMES`] rune names.

mod job;

use std::borrow::Borrow;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bitcoin::{Amount, Txid};
use darkswap_orderbook::{Asset, OrderId, Pair, Price, Side as BookSide};
use darkswap_proto::settle::SettleMessage;
use darkswap_proto::trade::{Agreement, TradeId};
use darkswap_wallet::keys::Keychain;
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::swap::{Side, Terms};
use darkswap_wallet::sync::Request;
use darkswap_wallet::utxo::Locks;

use job::{Done, Job};
pub use job::{Holdings, JobError};

use crate::chain::Lookup;
use crate::deal::{Deal, DealError, Role};
use crate::desk::{Desk, DeskError, DeskOutput, Task};
use crate::machine::{Params, Settlement, Step};
use crate::select::{self, Ours, SelectError};

/// The most takes and agreements waiting for their settlement to begin.
pub const MAX_PENDING: usize = 32;
/// The most settlement messages held while the wallet is locked.
pub const MAX_HELD: usize = 64;
/// The most rune names remembered (found or not).
pub const MAX_NAMES: usize = 1_024;
/// The most trades whose settlement could not begin, kept to show why.
pub const MAX_FAILED: usize = 64;
/// The first wait after a failed GET; it doubles up to [`MAX_RETRY_MS`].
pub const FIRST_RETRY_MS: u64 = 500;
/// The longest wait after failed GETs.
pub const MAX_RETRY_MS: u64 = 16_000;
/// The wait while ord catches up with the chain's tip.
pub const ORD_BEHIND_RETRY_MS: u64 = 500;

/// How a driver works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Each settlement's confirmations and step deadline.
    pub params: Params,
    /// Whether an ord server is at hand (without it nothing settles: every rune claim is
    /// unknown).
    pub with_ord: bool,
    /// How often each swap is looked for on the chain.
    pub watch_every_ms: u64,
    /// A wallet read older than this is read again before choosing from it.
    pub wallet_max_age_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            params: Params::DEFAULT,
            with_ord: true,
            watch_every_ms: 5_000,
            wallet_max_age_ms: 30_000,
        }
    }
}

/// A take of an order whose trade settles on Bitcoin, before our offer is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakeRequest {
    /// The id we chose for the trade.
    pub trade_id: TradeId,
    /// The order's pair.
    pub pair: Pair,
    /// The order.
    pub order_id: OrderId,
    /// The maker's side of it.
    pub maker_side: BookSide,
    /// Its price.
    pub price: Price,
    /// Base units we take.
    pub amount: u64,
    /// The swap's fee rate we name (sat/vB).
    pub fee_rate: u64,
}

/// Why the driver refused a request, or a settlement could not begin.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The trade does not settle on Bitcoin as asked.
    #[error(transparent)]
    Deal(#[from] DealError),
    /// ord knows no rune of that name.
    #[error("there is no rune named {0} on this chain")]
    NoRune(String),
    /// The wallet cannot fund our side.
    #[error("the wallet cannot fund this trade: {0}")]
    Select(#[from] SelectError),
    /// The desk refused.
    #[error(transparent)]
    Desk(#[from] DeskError),
    /// The wallet's keys are not at hand.
    #[error("the wallet is locked: unlock it to settle trades on Bitcoin")]
    Locked,
    /// Too many takes and agreements wait already.
    #[error("too many settlements are being prepared ({0} at most)")]
    Busy(usize),
    /// A stored agreement did not decode.
    #[error("the agreement does not decode: {0}")]
    Agreement(#[from] darkswap_proto::trade::TradeWireError),
    /// A cancel could not be made.
    #[error(transparent)]
    Cancel(#[from] crate::machine::CancelError),
    /// Signing failed.
    #[error("cannot sign: {0}")]
    Sign(#[from] darkswap_wallet::sign::SignError),
    /// No settlement for that trade.
    #[error("no settlement for that trade")]
    Unknown,
    /// It waited past the step deadline for what it needed.
    #[error("could not begin within {0} s: {1}")]
    Timeout(u64, &'static str),
    /// The trader gave up on it before it began.
    #[error("you gave up before anything was signed")]
    GaveUp,
}

/// What the caller must do or show.
#[derive(Debug)]
pub enum Event {
    /// Send this take with our offer (`darkswap_net`'s `TakeSettlement`).
    Take {
        /// The take.
        request: TakeRequest,
        /// Our encoded offer.
        offer: Vec<u8>,
    },
    /// A take was not sent: why.
    TakeRefused {
        /// The trade id chosen for it.
        trade_id: TradeId,
        /// Why.
        error: DriverError,
    },
    /// Send a message to the trade's counterparty, or broadcast a swap (then report with
    /// [`Driver::on_broadcast`]).
    Task(Task),
    /// A trade's settlement changed: show it, and store [`Driver::stored`].
    Changed(TradeId),
    /// Something the other side sent was refused (the counter label).
    Refused {
        /// The trade.
        trade_id: TradeId,
        /// The label.
        label: &'static str,
    },
    /// A chain job failed; it is tried again.
    Trouble(JobError),
}

/// Where one trade's settlement stands, for the page's trade list and the CLI's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// The trade.
    pub trade_id: TradeId,
    /// Our role and side, and the terms.
    pub deal: Option<Deal>,
    /// `None` while the settlement is being prepared (rune id, wallet read, keys).
    pub step: Option<Step>,
    /// Why it ended, or what it waits on.
    pub reason: Option<String>,
    /// The swap, once built.
    pub txid: Option<Txid>,
    /// Confirmations seen, and needed.
    pub confirmations: (u32, u32),
    /// The whole fee, and our part of it.
    pub fee: Option<(Amount, Amount)>,
    /// Whether the page should offer a cancel.
    pub cancel_offered: bool,
    /// What that cancel would pay in fees (once offered).
    pub cancel_fee: Option<Amount>,
}

/// What the driver counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Refusals of what the other side sent, by label.
    pub refused: BTreeMap<&'static str, u64>,
    /// Chain jobs that failed, by label.
    pub troubles: BTreeMap<&'static str, u64>,
    /// Settlements that ended, by final step.
    pub ended: BTreeMap<&'static str, u64>,
    /// Takes not sent.
    pub takes_refused: u64,
    /// Settlements that could not begin.
    pub not_begun: u64,
    /// Broadcasts the chain refused.
    pub broadcast_failed: u64,
}

impl Counters {
    /// As Prometheus text (`darkswap_client_settle_*`).
    pub fn to_prometheus_text(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, label: &str, values: &BTreeMap<&str, u64>| {
            out.push_str(&format!(
                "# HELP darkswap_client_settle_{name} {help}\n# TYPE darkswap_client_settle_{name} counter\n"
            ));
            for (k, v) in values {
                out.push_str(&format!(
                    "darkswap_client_settle_{name}{{{label}=\"{k}\"}} {v}\n"
                ));
            }
        };
        family(
            "refused_total",
            "Settlement messages of the other side refused, by reason",
            "reason",
            &self.refused,
        );
        family(
            "chain_troubles_total",
            "Settlement chain reads that failed and were tried again, by kind",
            "kind",
            &self.troubles,
        );
        family(
            "ended_total",
            "Settlements that ended, by how",
            "step",
            &self.ended,
        );
        let others = BTreeMap::from([
            ("take_refused", self.takes_refused),
            ("not_begun", self.not_begun),
            ("broadcast_failed", self.broadcast_failed),
        ]);
        family(
            "failures_total",
            "Takes not sent, settlements that could not begin, broadcasts refused",
            "kind",
            &others,
        );
        out
    }
}

#[derive(Debug)]
struct Pending {
    kind: PendingKind,
    since_ms: u64,
}

#[derive(Debug)]
enum PendingKind {
    Take(TakeRequest),
    Agreed {
        agreement: Box<Agreement>,
        taker_offer: Vec<u8>,
    },
}

impl PendingKind {
    fn pair(&self) -> &Pair {
        match self {
            PendingKind::Take(t) => &t.pair,
            PendingKind::Agreed { agreement, .. } => &agreement.pair,
        }
    }
}

fn rune_name(pair: &Pair) -> Option<&str> {
    match (&pair.base, &pair.quote) {
        (Asset::Rune(n), Asset::Btc) | (Asset::Btc, Asset::Rune(n)) => Some(n),
        _ => None,
    }
}

/// Every settlement of one trader, with the chain work they need.
pub struct Driver<K> {
    config: Config,
    me: Vec<u8>,
    keys: Option<K>,
    desk: Desk,
    /// Rune ids by name without spacers (as pairs name them); `None`: ord knows none.
    names: BTreeMap<String, Option<RuneId>>,
    /// Rune ids by spaced name (as ord lists outputs).
    spaced: BTreeMap<String, RuneId>,
    holdings: Option<(Holdings, u64)>,
    stale: bool,
    /// Counts the changes of our wallet (a read taken before the last one is not used).
    generation: u64,
    /// The generation our own read in progress began at.
    scan_generation: u64,
    pending: BTreeMap<TradeId, Pending>,
    failed: BTreeMap<TradeId, (Option<Deal>, String, u64)>,
    held: VecDeque<(TradeId, Vec<u8>)>,
    job: Option<Job>,
    asked: Option<Request>,
    watch_round: Vec<(
        TradeId,
        Txid,
        Vec<bitcoin::OutPoint>,
        Vec<bitcoin::OutPoint>,
    )>,
    next_watch_ms: u64,
    retry_at_ms: u64,
    failures: u32,
    steps: BTreeMap<TradeId, Step>,
    events: VecDeque<Event>,
    counters: Counters,
}

impl<K: Borrow<Keychain>> Driver<K> {
    /// A driver for the trader whose PeerId's bytes are `me`.
    pub fn new(me: Vec<u8>, config: Config) -> Self {
        Driver {
            config,
            me,
            keys: None,
            desk: Desk::new(config.params),
            names: BTreeMap::new(),
            spaced: BTreeMap::new(),
            holdings: None,
            stale: true,
            generation: 0,
            scan_generation: 0,
            pending: BTreeMap::new(),
            failed: BTreeMap::new(),
            held: VecDeque::new(),
            job: None,
            asked: None,
            watch_round: Vec::new(),
            next_watch_ms: 0,
            retry_at_ms: 0,
            failures: 0,
            steps: BTreeMap::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    /// The wallet's keys, or `None` when it locks. Messages held while it was locked are
    /// delivered now.
    pub fn set_keys(&mut self, keys: Option<K>, now_ms: u64) {
        let had = self.keys.is_some();
        self.keys = keys;
        if self.keys.is_none() {
            return;
        }
        if !had {
            self.mark_stale();
        }
        while let Some((id, bytes)) = self.held.pop_front() {
            self.deliver(id, &bytes, now_ms);
        }
        self.advance(now_ms);
    }

    /// Whether the wallet's keys are at hand.
    pub fn has_keys(&self) -> bool {
        self.keys.is_some()
    }

    /// Our wallet changed outside settlement (a send): read it again before choosing.
    pub fn wallet_changed(&mut self) {
        self.mark_stale();
    }

    fn mark_stale(&mut self) {
        self.stale = true;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Which state of our wallet a read begun now sees (pass it to [`Driver::set_holdings`]).
    pub fn wallet_generation(&self) -> u64 {
        self.generation
    }

    /// A read of our wallet made by someone else (the page's wallet panel), begun at
    /// `generation`: used instead of a read of the driver's own, unless the wallet changed
    /// since it began.
    pub fn set_holdings(&mut self, holdings: Holdings, generation: u64, now_ms: u64) {
        if generation != self.generation || self.keys.is_none() {
            return;
        }
        for (name, id) in &holdings.rune_ids {
            self.spaced.insert(name.clone(), *id);
        }
        self.holdings = Some((holdings, now_ms));
        self.stale = false;
        self.advance(now_ms);
    }

    /// The outputs settlements hold (a send must leave them alone).
    pub fn locks(&self) -> &Locks<TradeId> {
        self.desk.locks()
    }

    /// What was counted.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// A stored settlement, taken back (after a reload or a restart).
    pub fn restore(&mut self, bytes: &[u8], now_ms: u64) -> Result<TradeId, DriverError> {
        let (id, out) = self.desk.restore(bytes, now_ms)?;
        if let Some(s) = self.desk.get(&id) {
            self.steps.insert(id, s.step());
        }
        self.take_output(out, now_ms);
        Ok(id)
    }

    /// A trade's stored form, to keep after [`Event::Changed`].
    pub fn stored(&self, trade_id: &TradeId) -> Option<Vec<u8>> {
        self.desk.get(trade_id).map(|s| s.encode())
    }

    /// Whether the driver knows this trade (settling, preparing, or failed to begin).
    pub fn knows(&self, trade_id: &TradeId) -> bool {
        self.desk.get(trade_id).is_some()
            || self.pending.contains_key(trade_id)
            || self.failed.contains_key(trade_id)
            || self.desk.is_reserved(trade_id)
    }

    /// Takes an order whose trade settles on Bitcoin: our offer is chosen once the rune's id
    /// and our wallet are read, then [`Event::Take`] says to send it.
    pub fn take(&mut self, request: TakeRequest, now_ms: u64) -> Result<(), DriverError> {
        if rune_name(&request.pair).is_none() {
            return Err(DealError::Pair(request.pair.to_string()).into());
        }
        if self.keys.is_none() {
            return Err(DriverError::Locked);
        }
        if self.pending.len() >= MAX_PENDING {
            return Err(DriverError::Busy(MAX_PENDING));
        }
        if self.knows(&request.trade_id) {
            return Err(DeskError::Exists.into());
        }
        self.pending.insert(
            request.trade_id,
            Pending {
                kind: PendingKind::Take(request),
                since_ms: now_ms,
            },
        );
        self.advance(now_ms);
        Ok(())
    }

    /// A trade was agreed (`agreement` is its signed encoding; `taker_offer` the offer that
    /// came with the take, empty if none). Returns whether it settles here: an agreement with
    /// no fee rate, on a pair that does not settle on Bitcoin, or already known, does not.
    pub fn on_agreed(
        &mut self,
        agreement: &[u8],
        taker_offer: &[u8],
        now_ms: u64,
    ) -> Result<bool, DriverError> {
        let agreement = Agreement::decode(agreement)?;
        let id = agreement.trade_id;
        if agreement.fee_rate == 0
            || rune_name(&agreement.pair).is_none()
            || self.desk.get(&id).is_some()
            || self.pending.contains_key(&id)
            || self.failed.contains_key(&id)
        {
            return Ok(false);
        }
        if self.pending.len() >= MAX_PENDING {
            self.not_begun(id, None, DriverError::Busy(MAX_PENDING), now_ms);
            return Ok(true);
        }
        self.pending.insert(
            id,
            Pending {
                kind: PendingKind::Agreed {
                    agreement: Box::new(agreement),
                    taker_offer: taker_offer.to_vec(),
                },
                since_ms: now_ms,
            },
        );
        self.advance(now_ms);
        Ok(true)
    }

    /// A settlement message from the trade's counterparty (the node checked who sent it).
    pub fn on_message(&mut self, trade_id: TradeId, message: &[u8], now_ms: u64) {
        if self.keys.is_none() {
            if self.held.len() >= MAX_HELD {
                self.refused(trade_id, "held_overflow");
            } else {
                self.held.push_back((trade_id, message.to_vec()));
            }
            return;
        }
        self.deliver(trade_id, message, now_ms);
        self.advance(now_ms);
    }

    fn deliver(&mut self, trade_id: TradeId, message: &[u8], now_ms: u64) {
        let Some(keys) = self.keys.as_ref() else {
            return;
        };
        let out = self
            .desk
            .on_message(trade_id, message, keys.borrow(), now_ms);
        self.take_output(out, now_ms);
    }

    /// The trade ended in negotiation (refused, aborted, or our take failed).
    pub fn on_ended(&mut self, trade_id: TradeId, reason: &str, now_ms: u64) {
        self.pending.remove(&trade_id);
        let out = self.desk.ended(trade_id, reason, now_ms);
        self.take_output(out, now_ms);
    }

    /// The trader gives up on a settlement before signing.
    pub fn abort(&mut self, trade_id: TradeId, now_ms: u64) -> Result<(), DriverError> {
        if self.pending.remove(&trade_id).is_some() {
            self.send_abort(trade_id, "the trader gave up before it began");
            self.not_begun(trade_id, None, DriverError::GaveUp, now_ms);
            return Ok(());
        }
        let out = self
            .desk
            .abort(trade_id, "the trader gave up before signing", now_ms)?;
        self.take_output(out, now_ms);
        Ok(())
    }

    /// Cancels a signed settlement whose other side went quiet: our offered outputs go back to
    /// us (at the trade's fee rate, and more than the swap paid: see
    /// [`Settlement::cancel_spend`]), signed now and handed out as [`Task::Broadcast`]; the fee
    /// it pays. The settlement ends as cancelled when its watch sees the conflict.
    pub fn cancel(&mut self, trade_id: TradeId) -> Result<Amount, DriverError> {
        let keys = self.keys.as_ref().ok_or(DriverError::Locked)?;
        let s = self.desk.get(&trade_id).ok_or(DriverError::Unknown)?;
        let unsigned = s.cancel_spend(s.deal().terms.fee_rate)?;
        let tx = darkswap_wallet::sign::sign(keys.borrow(), &unsigned)?;
        self.events
            .push_back(Event::Task(Task::Broadcast { trade_id, tx }));
        // Look at the chain soon: the conflict ends the settlement.
        self.next_watch_ms = 0;
        Ok(unsigned.fee)
    }

    /// What a broadcast came to (a refusal is counted; the watch decides what happened).
    pub fn on_broadcast(&mut self, trade_id: TradeId, accepted: bool) {
        if !accepted {
            self.counters.broadcast_failed += 1;
            self.events.push_back(Event::Changed(trade_id));
        }
    }

    /// Time passes: deadlines, and what waited too long to begin.
    pub fn tick(&mut self, now_ms: u64) {
        let out = self.desk.tick(now_ms);
        self.take_output(out, now_ms);
        self.advance(now_ms);
    }

    /// Every settlement the trader has, newest first.
    pub fn views(&self) -> Vec<View> {
        let mut out: Vec<(u64, View)> = Vec::new();
        for (id, s) in self.desk.settlements() {
            out.push((s.updated_at_ms(), self.settlement_view(*id, s)));
        }
        for (id, p) in &self.pending {
            out.push((p.since_ms, self.pending_view(*id, p)));
        }
        for (id, f) in &self.failed {
            out.push((f.2, self.failed_view(*id, f)));
        }
        out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        out.into_iter().map(|(_, v)| v).collect()
    }

    /// One trade's view.
    pub fn view(&self, trade_id: &TradeId) -> Option<View> {
        if let Some(s) = self.desk.get(trade_id) {
            return Some(self.settlement_view(*trade_id, s));
        }
        if let Some(p) = self.pending.get(trade_id) {
            return Some(self.pending_view(*trade_id, p));
        }
        self.failed
            .get(trade_id)
            .map(|f| self.failed_view(*trade_id, f))
    }

    fn settlement_view(&self, trade_id: TradeId, s: &Settlement) -> View {
        let deal = *s.deal();
        let fee = s.swap().map(|sw| {
            let ours = match deal.side {
                Side::Seller => sw.seller_fee,
                Side::Buyer => sw.fee.checked_sub(sw.seller_fee).unwrap_or(Amount::ZERO),
            };
            (sw.fee, ours)
        });
        View {
            trade_id,
            deal: Some(deal),
            step: Some(s.step()),
            reason: s.reason().map(str::to_string),
            txid: s.txid(),
            confirmations: (s.confirmations(), self.config.params.confirmations),
            fee,
            cancel_offered: s.cancel_offered(),
            cancel_fee: s
                .cancel_offered()
                .then(|| s.cancel_spend(deal.terms.fee_rate).ok().map(|u| u.fee))
                .flatten(),
        }
    }

    fn pending_view(&self, trade_id: TradeId, p: &Pending) -> View {
        let what = match p.kind {
            PendingKind::Take(_) => "choosing our offer for the take",
            PendingKind::Agreed { .. } => "preparing our side of the swap",
        };
        self.bare(trade_id, None, None, what.into())
    }

    fn failed_view(&self, trade_id: TradeId, (deal, why, _): &(Option<Deal>, String, u64)) -> View {
        self.bare(trade_id, *deal, Some(Step::Aborted), why.clone())
    }

    fn bare(&self, trade_id: TradeId, deal: Option<Deal>, step: Option<Step>, why: String) -> View {
        View {
            trade_id,
            deal,
            step,
            reason: Some(why),
            txid: None,
            confirmations: (0, self.config.params.confirmations),
            fee: None,
            cancel_offered: false,
            cancel_fee: None,
        }
    }

    /// The next GET to make, or `None` (nothing due, one in flight, or waiting to retry).
    pub fn next_request(&mut self, now_ms: u64) -> Option<Request> {
        if self.asked.is_some() {
            return None;
        }
        loop {
            if let Some(job) = self.job.as_mut() {
                if let Some(req) = job.next_request() {
                    self.asked = Some(req.clone());
                    return Some(req);
                }
                let job = self.job.take()?;
                match job.finish(self.keys.as_ref().map(Borrow::borrow)) {
                    Ok(Some(done)) => self.done(done, now_ms),
                    Ok(None) => {}
                    Err(e) => {
                        self.trouble(e, now_ms);
                        return None;
                    }
                }
                continue;
            }
            if now_ms < self.retry_at_ms {
                return None;
            }
            self.job = Some(self.pick(now_ms)?);
        }
    }

    /// When [`Driver::next_request`] will next have something to ask, if it is waiting on time
    /// (a retry, the next look at the swaps): the caller sleeps until then, not longer. `None`
    /// while an answer is awaited, or when nothing waits on time.
    pub fn wake_at_ms(&self, now_ms: u64) -> Option<u64> {
        if self.asked.is_some() || self.job.is_some() {
            return None;
        }
        let work = !self.pending.is_empty()
            || !self.watch_round.is_empty()
            || (self.keys.is_some() && self.desk.lookups_due().next().is_some());
        let retry = (work && self.retry_at_ms > now_ms).then_some(self.retry_at_ms);
        let watching = self
            .desk
            .settlements()
            .any(|(_, s)| !s.step().is_final() && s.swap().is_some());
        let watch = watching.then_some(self.next_watch_ms.max(self.retry_at_ms));
        match (retry, watch) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The answer to the last request.
    pub fn on_answer(&mut self, status: u16, body: &[u8], now_ms: u64) {
        let (Some(req), Some(job)) = (self.asked.take(), self.job.as_mut()) else {
            return;
        };
        let keys = self.keys.as_ref().map(Borrow::borrow);
        match job.on_answer(&req, status, body, keys) {
            Ok(None) => {}
            Ok(Some(done)) => {
                self.job = None;
                self.done(done, now_ms);
            }
            Err(e) => {
                self.job = None;
                self.trouble(e, now_ms);
            }
        }
    }

    /// The last request got no answer at all (unreachable, timed out): the job stops and is
    /// tried again later.
    pub fn on_no_answer(&mut self, now_ms: u64) {
        if let (Some(req), Some(_)) = (self.asked.take(), self.job.take()) {
            self.trouble(
                JobError::Status {
                    server: req.server,
                    path: req.path,
                    status: 0,
                },
                now_ms,
            );
        }
    }

    fn trouble(&mut self, e: JobError, now_ms: u64) {
        *self.counters.troubles.entry(e.label()).or_default() += 1;
        let wait = if matches!(e, JobError::Behind { .. }) {
            ORD_BEHIND_RETRY_MS
        } else {
            self.failures = self.failures.saturating_add(1);
            FIRST_RETRY_MS
                .saturating_mul(1 << self.failures.min(6).saturating_sub(1))
                .min(MAX_RETRY_MS)
        };
        self.retry_at_ms = now_ms.saturating_add(wait);
        self.watch_round.clear();
        self.events.push_back(Event::Trouble(e));
    }

    /// What to do next on the chain.
    fn pick(&mut self, now_ms: u64) -> Option<Job> {
        // A rune name something waits on.
        let unknown = self
            .pending
            .values()
            .filter_map(|p| rune_name(p.kind.pair()))
            .find(|n| !self.names.contains_key(*n))
            .map(str::to_string);
        if let Some(name) = unknown {
            return Some(Job::rune(name));
        }
        let keys = self.keys.as_ref().map(Borrow::borrow);
        // Our wallet, when a choice waits on it.
        if let Some(keys) = keys {
            if self.needs_holdings(now_ms) {
                self.scan_generation = self.generation;
                return match Job::scan(keys, self.config.with_ord) {
                    Ok(scan) => Some(Job::indexed(scan)),
                    Err(e) => {
                        self.trouble(e, now_ms);
                        None
                    }
                };
            }
            // The other side's outputs.
            if let Some((id, points)) = self.desk.lookups_due().next() {
                let lookup = Lookup::new(points, self.spaced.clone(), self.config.with_ord);
                return Some(Job::indexed(Job::Lookup(*id, lookup)));
            }
        }
        // The swaps, every `watch_every_ms`.
        if self.watch_round.is_empty() && now_ms >= self.next_watch_ms {
            self.watch_round = self.desk.watched();
            self.watch_round.reverse();
            self.next_watch_ms = now_ms.saturating_add(self.config.watch_every_ms);
        }
        let (id, txid, inputs, ours) = self.watch_round.pop()?;
        Some(Job::Watch(
            id,
            crate::chain::Watch::new(txid, &inputs, &ours),
        ))
    }

    fn needs_holdings(&self, now_ms: u64) -> bool {
        let waiting = self.pending.values().any(|p| match &p.kind {
            PendingKind::Take(_) => true,
            PendingKind::Agreed { agreement, .. } => agreement.maker.to_bytes() == self.me,
        });
        waiting && !self.fresh(now_ms)
    }

    fn fresh(&self, now_ms: u64) -> bool {
        !self.stale
            && self
                .holdings
                .as_ref()
                .is_some_and(|(_, at)| now_ms.saturating_sub(*at) <= self.config.wallet_max_age_ms)
    }

    fn done(&mut self, done: Done, now_ms: u64) {
        self.failures = 0;
        match done {
            Done::Rune(name, id) => {
                if self.names.len() >= MAX_NAMES {
                    self.names.retain(|_, v| v.is_some());
                    if self.names.len() >= MAX_NAMES {
                        self.names.clear();
                    }
                }
                self.names.insert(name, id);
            }
            Done::Indexed(next) => self.job = Some(*next),
            Done::Scanned(h) => {
                for (name, id) in &h.rune_ids {
                    self.spaced.insert(name.clone(), *id);
                }
                // A read begun before the wallet last changed is not used (another follows).
                if self.scan_generation == self.generation {
                    self.holdings = Some((h, now_ms));
                    self.stale = false;
                }
            }
            Done::Found(id, found, ids) => {
                self.spaced.extend(ids);
                if self.spaced.len() > MAX_NAMES {
                    self.spaced.clear();
                }
                if let Some(keys) = self.keys.as_ref() {
                    let out = self.desk.on_lookups(id, &found, keys.borrow(), now_ms);
                    self.take_output(out, now_ms);
                }
            }
            Done::Seen(id, status) => {
                let out = self.desk.on_chain(id, status, now_ms);
                self.take_output(out, now_ms);
            }
        }
        self.advance(now_ms);
    }

    fn take_output(&mut self, out: DeskOutput, _now_ms: u64) {
        for (trade_id, label) in out.refused {
            self.refused(trade_id, label);
        }
        self.events.extend(out.tasks.into_iter().map(Event::Task));
        for id in out.changed {
            if let Some(step) = self.desk.get(&id).map(|s| s.step()) {
                let before = self.steps.insert(id, step);
                if step.is_final() && before != Some(step) {
                    *self.counters.ended.entry(step.label()).or_default() += 1;
                    // Settled or cancelled: the wallet's outputs moved.
                    if step != Step::Aborted {
                        self.mark_stale();
                    }
                }
            }
            self.events.push_back(Event::Changed(id));
        }
        let known: BTreeSet<TradeId> = self.desk.settlements().map(|(id, _)| *id).collect();
        self.steps.retain(|id, _| known.contains(id));
    }

    fn refused(&mut self, trade_id: TradeId, label: &'static str) {
        *self.counters.refused.entry(label).or_default() += 1;
        self.events.push_back(Event::Refused { trade_id, label });
    }

    fn send_abort(&mut self, trade_id: TradeId, reason: &str) {
        self.events.push_back(Event::Task(Task::Send {
            trade_id,
            message: SettleMessage::Abort(reason.into()).encode(),
        }));
    }

    fn not_begun(&mut self, id: TradeId, deal: Option<Deal>, e: DriverError, now_ms: u64) {
        self.counters.not_begun += 1;
        if self.failed.len() >= MAX_FAILED {
            let oldest = self
                .failed
                .iter()
                .min_by_key(|(_, (_, _, at))| *at)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.failed.remove(&oldest);
            }
        }
        self.failed
            .insert(id, (deal, format!("not settled: {e}"), now_ms));
        self.events.push_back(Event::Changed(id));
    }

    /// Moves on every take and agreement that has what it needs; gives up on those that
    /// waited past the step deadline.
    fn advance(&mut self, now_ms: u64) {
        let ids: Vec<TradeId> = self.pending.keys().copied().collect();
        for id in ids {
            let Some(p) = self.pending.get(&id) else {
                continue;
            };
            let Some(name) = rune_name(p.kind.pair()) else {
                continue;
            };
            let rune = match self.names.get(name) {
                None => None,
                Some(Some(rune)) => Some(*rune),
                Some(None) => {
                    let name = name.to_string();
                    self.fail(id, None, DriverError::NoRune(name), now_ms);
                    continue;
                }
            };
            let waited = now_ms.saturating_sub(p.since_ms) >= self.config.params.step_timeout_ms;
            let step = match rune {
                Some(rune) => self.try_begin(id, rune, now_ms),
                None => Err("ord has not named the pair's rune yet"),
            };
            if let Err(waiting_on) = step {
                if waited {
                    let secs = self.config.params.step_timeout_ms / 1000;
                    self.fail(id, None, DriverError::Timeout(secs, waiting_on), now_ms);
                }
            }
        }
    }

    /// One pending take or agreement, with its rune known: `Err` names what it still waits on.
    fn try_begin(&mut self, id: TradeId, rune: RuneId, now_ms: u64) -> Result<(), &'static str> {
        let fresh = self.fresh(now_ms);
        let Some(p) = self.pending.get(&id) else {
            return Ok(());
        };
        let Some(keys) = self.keys.as_ref() else {
            return Err("the wallet is locked");
        };
        match &p.kind {
            PendingKind::Take(t) => {
                if !fresh {
                    return Err("reading the wallet");
                }
                let deal = match Deal::taking(
                    id,
                    &t.pair,
                    t.maker_side,
                    t.price,
                    t.amount,
                    t.fee_rate,
                    rune,
                ) {
                    Ok(d) => d,
                    Err(e) => {
                        self.fail(id, None, e.into(), now_ms);
                        return Ok(());
                    }
                };
                let result = self
                    .choose(&deal)
                    .map_err(DriverError::from)
                    .and_then(|ours| Ok(self.desk.reserve(deal, ours, now_ms)?));
                let Some(Pending {
                    kind: PendingKind::Take(request),
                    ..
                }) = self.pending.remove(&id)
                else {
                    return Ok(());
                };
                match result {
                    Ok(offer) => self.events.push_back(Event::Take { request, offer }),
                    Err(error) => {
                        self.counters.takes_refused += 1;
                        self.events.push_back(Event::TakeRefused {
                            trade_id: id,
                            error,
                        });
                    }
                }
                Ok(())
            }
            PendingKind::Agreed {
                agreement,
                taker_offer,
            } => {
                let deal = match Deal::from_agreement(agreement, &self.me, rune) {
                    Ok(d) => d,
                    Err(e) => {
                        self.fail(id, None, e.into(), now_ms);
                        return Ok(());
                    }
                };
                let began = match deal.role {
                    Role::Taker => self.desk.begin(deal, None, None, keys.borrow(), now_ms),
                    Role::Maker => {
                        if !fresh {
                            return Err("reading the wallet");
                        }
                        let first = (!taker_offer.is_empty()).then(|| taker_offer.clone());
                        match self.choose(&deal) {
                            Ok(ours) => self.desk.begin(
                                deal,
                                Some(ours),
                                first.as_deref(),
                                keys.borrow(),
                                now_ms,
                            ),
                            Err(e) => {
                                self.fail(id, Some(deal), e.into(), now_ms);
                                return Ok(());
                            }
                        }
                    }
                };
                self.pending.remove(&id);
                match began {
                    Ok(out) => self.take_output(out, now_ms),
                    Err(e) => self.fail(id, Some(deal), e.into(), now_ms),
                }
                Ok(())
            }
        }
    }

    /// What we bring to `deal`, from confirmed outputs no settlement holds.
    fn choose(&self, deal: &Deal) -> Result<Ours, SelectError> {
        let (h, _) = self.holdings.as_ref().ok_or(SelectError::Bitcoin {
            needed: deal.terms.price,
            available: Amount::ZERO,
        })?;
        let terms: &Terms = &deal.terms;
        match deal.side {
            Side::Seller => select::seller(
                &h.utxos,
                self.desk.locks(),
                terms,
                h.payment.clone(),
                h.rune_change.clone(),
            ),
            Side::Buyer => select::buyer(
                &h.utxos,
                self.desk.locks(),
                terms,
                h.runes.clone(),
                h.payment_change.clone(),
            ),
        }
    }

    /// A take or an agreement that will not settle: a take is refused, an agreement's other
    /// side is told.
    fn fail(&mut self, id: TradeId, deal: Option<Deal>, e: DriverError, now_ms: u64) {
        match self.pending.remove(&id).map(|p| p.kind) {
            Some(PendingKind::Take(_)) => {
                self.counters.takes_refused += 1;
                self.events.push_back(Event::TakeRefused {
                    trade_id: id,
                    error: e,
                });
            }
            _ => {
                self.send_abort(id, &format!("the other side could not settle: {e}"));
                self.not_begun(id, deal, e, now_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests;
