//! The page's settlement shell: the shared driver (`darkswap_settle::driver`, the same core the
//! CLI runs) with the browser's `fetch` for its chain reads and broadcasts, IndexedDB (store
//! "settlements", one record per identity) to keep every settlement across reloads, and the
//! node's handle for takes and settlement messages. The driver makes every decision; this only
//! moves bytes and tells the reducer what changed.
//!
//! It exists from the first render, so the wallet can hand it the keys whenever it unlocks;
//! it starts settling once the node runs and the relay names a chain. The wallet's idle lock
//! does not take the keys back: an order taken while the trader looks away must still settle
//! (new orders and sends still need the wallet unlocked). The wallet's Lock button does.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use darkswap_net::{trade_id_hex, Command, NodeHandle, TakeSettlement, TradeState, TradingEvent};
use darkswap_proto::trade::TradeId;
use darkswap_settle::driver::{Config, Driver, Event, Holdings, TakeRequest};
use darkswap_settle::Task;
use darkswap_wallet::sync::Server;
use darkswap_wallet::{Keychain, Locks};
use futures::channel::mpsc;
use futures::StreamExt;
use yew::UseReducerDispatcher;

use crate::state::{Action, AppState};
use crate::storage::{get_value, put_value};
use crate::wallet::{self, ChainAccess};

/// The IndexedDB store of settlements (key: our PeerId; value: trade id hex → settlement hex).
const STORE: &str = "settlements";
/// How often deadlines are checked and due chain reads started, when nothing wakes the loop.
const TICK: Duration = Duration::from_secs(1);
/// How often each swap is looked for on the chain.
const WATCH_EVERY_MS: u64 = 2_000;

#[derive(Default)]
struct Inner {
    keys: Option<Rc<Keychain>>,
    driver: Option<Driver<Rc<Keychain>>>,
    chain: Option<ChainAccess>,
    handle: Option<NodeHandle>,
    me: String,
    stored: BTreeMap<String, Vec<u8>>,
    wake: Option<mpsc::Sender<()>>,
}

/// The page's settlements (shared by the app, the node's event loop and the wallet panel).
pub struct Settler {
    inner: RefCell<Inner>,
    dispatch: UseReducerDispatcher<AppState>,
}

impl PartialEq for Settler {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Settler {
    pub fn new(dispatch: UseReducerDispatcher<AppState>) -> Rc<Settler> {
        Rc::new(Settler {
            inner: RefCell::default(),
            dispatch,
        })
    }

    /// Whether trades on runes-for-bitcoin pairs settle here (the relay names a chain).
    pub fn settles(&self) -> bool {
        self.inner.borrow().driver.is_some()
    }

    /// Where ord answers, once the node runs on a relay that names a chain with ord.
    pub fn ord(&self) -> Option<String> {
        self.inner.borrow().chain.as_ref()?.ord.clone()
    }

    /// The wallet unlocked (`Some`) or was locked by the trader (`None`).
    pub fn set_keys(self: &Rc<Self>, keys: Option<Rc<Keychain>>) {
        let mut inner = self.inner.borrow_mut();
        inner.keys = keys.clone();
        if let Some(d) = inner.driver.as_mut() {
            d.set_keys(keys, now_ms());
        }
        drop(inner);
        self.carry_out();
    }

    /// The wallet sent something: read it again before choosing from it.
    pub fn wallet_changed(&self) {
        if let Some(d) = self.inner.borrow_mut().driver.as_mut() {
            d.wallet_changed();
        }
    }

    /// Which state of the wallet a read begun now sees (for [`Settler::wallet_read`]).
    pub fn wallet_generation(&self) -> u64 {
        self.inner
            .borrow()
            .driver
            .as_ref()
            .map_or(0, |d| d.wallet_generation())
    }

    /// The wallet panel read the wallet (a read begun at `generation`): settlements choose
    /// from it instead of reading the wallet again.
    pub fn wallet_read(
        self: &Rc<Self>,
        keys: &Keychain,
        scanned: &wallet::Scanned,
        generation: u64,
    ) {
        use darkswap_wallet::{Account, Chain};
        let unused = |account, chain| match (account, chain) {
            (Account::Payment, Chain::External) => scanned.receive.0,
            (Account::Runes, Chain::External) => scanned.receive.1,
            (Account::Payment, Chain::Internal) => scanned.change.0,
            (Account::Runes, Chain::Internal) => scanned.change.1,
        };
        let rune_ids = scanned
            .runes
            .iter()
            .map(|(id, info)| (info.spaced_name.clone(), *id))
            .collect();
        let Ok(holdings) = Holdings::read(keys, scanned.utxos.clone(), unused, rune_ids) else {
            return;
        };
        if let Some(d) = self.inner.borrow_mut().driver.as_mut() {
            d.set_holdings(holdings, generation, now_ms());
        }
        self.carry_out();
    }

    /// The outputs settlements hold (the wallet's sends leave them alone).
    pub fn locks(&self) -> Locks<TradeId> {
        match self.inner.borrow().driver.as_ref() {
            Some(d) => d.locks().clone(),
            None => Locks::new(1),
        }
    }

    /// The node runs, on a relay that names `chain` (from the relay-info the node started
    /// with): take the stored settlements back, and start.
    pub fn attach(self: &Rc<Self>, handle: NodeHandle, chain: Result<Option<ChainAccess>, String>) {
        let me = handle.local_peer_id();
        {
            let mut inner = self.inner.borrow_mut();
            inner.handle = Some(handle);
            inner.me = me.to_base58();
        }
        let this = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let chain = match chain {
                Ok(Some(c)) => c,
                // No chain: nothing settles here, and the trade list says so.
                Ok(None) => return,
                Err(e) => {
                    return this.dispatch.dispatch(Action::SettleTrouble(format!(
                        "cannot read the relay's chain, so trades do not settle on this visit: {e}"
                    )))
                }
            };
            let stored: BTreeMap<String, Vec<u8>> = match get_value(STORE, &me.to_base58()).await {
                Ok(v) => v.unwrap_or_default(),
                Err(e) => {
                    this.dispatch.dispatch(Action::SettleTrouble(format!(
                        "cannot read your stored settlements: {e}"
                    )));
                    BTreeMap::new()
                }
            };
            let config = Config {
                with_ord: chain.ord.is_some(),
                watch_every_ms: WATCH_EVERY_MS,
                ..Config::default()
            };
            let now = now_ms();
            let mut driver = Driver::new(me.to_bytes(), config);
            for (trade, bytes) in &stored {
                if driver.restore(bytes, now).is_err() {
                    this.dispatch.dispatch(Action::SettleTrouble(format!(
                        "a stored settlement ({trade}) could not be read back"
                    )));
                }
            }
            let chain_view = chain.ord.clone().unwrap_or_else(|| chain.esplora.clone());
            let (wake, mut woken) = mpsc::channel(1);
            {
                let mut inner = this.inner.borrow_mut();
                driver.set_keys(inner.keys.clone(), now);
                inner.driver = Some(driver);
                inner.chain = Some(chain);
                inner.stored = stored;
                inner.wake = Some(wake);
            }
            this.dispatch.dispatch(Action::Settling { chain_view });
            this.publish_all();
            this.run_events();
            loop {
                this.pump().await;
                // Deadlines every second, and sooner when the driver has a retry or a look at
                // the chain due.
                let wait = this
                    .inner
                    .borrow()
                    .driver
                    .as_ref()
                    .and_then(|d| d.wake_at_ms(now_ms()))
                    .map_or(TICK, |at| {
                        Duration::from_millis(at.saturating_sub(now_ms())).min(TICK)
                    });
                let tick = gloo_timers::future::sleep(wait);
                futures::pin_mut!(tick);
                futures::future::select(tick, woken.next()).await;
                if let Some(d) = this.inner.borrow_mut().driver.as_mut() {
                    d.tick(now_ms());
                }
                this.run_events();
            }
        });
    }

    /// Takes an order on a runes-for-bitcoin pair: our offer is chosen, then the take goes
    /// out with it (or the refusal is shown).
    pub fn take(self: &Rc<Self>, request: TakeRequest) -> Result<(), String> {
        let mut inner = self.inner.borrow_mut();
        let driver = inner
            .driver
            .as_mut()
            .ok_or("this relay names no chain: the trade cannot settle here")?;
        driver.take(request, now_ms()).map_err(|e| e.to_string())?;
        drop(inner);
        self.carry_out();
        Ok(())
    }

    /// The trader gives up on a settlement before signing.
    pub fn abort(self: &Rc<Self>, trade_id: TradeId) -> Result<(), String> {
        let mut inner = self.inner.borrow_mut();
        let driver = inner.driver.as_mut().ok_or("not settling")?;
        driver
            .abort(trade_id, now_ms())
            .map_err(|e| e.to_string())?;
        drop(inner);
        self.carry_out();
        Ok(())
    }

    /// Cancels a signed settlement whose other side went quiet; the fee it pays.
    pub fn cancel(self: &Rc<Self>, trade_id: TradeId) -> Result<u64, String> {
        let mut inner = self.inner.borrow_mut();
        let driver = inner.driver.as_mut().ok_or("not settling")?;
        let fee = driver.cancel(trade_id).map_err(|e| e.to_string())?;
        drop(inner);
        self.carry_out();
        Ok(fee.to_sat())
    }

    /// What the negotiation reported.
    pub fn on_trading(self: &Rc<Self>, event: &TradingEvent) {
        let now = now_ms();
        let refused = {
            let mut inner = self.inner.borrow_mut();
            let Some(d) = inner.driver.as_mut() else {
                return;
            };
            match event {
                TradingEvent::Trade(t) => match &t.state {
                    TradeState::Agreed => t.agreement.as_ref().and_then(|agreement| {
                        d.on_agreed(agreement, &t.taker_offer, now)
                            .err()
                            .map(|e| format!("trade {} cannot settle: {e}", t.id_hex()))
                    }),
                    TradeState::Rejected { reason } | TradeState::Aborted { reason } => {
                        d.on_ended(t.id, reason, now);
                        None
                    }
                    _ => return,
                },
                TradingEvent::TakeFailed { trade_id, error } => {
                    d.on_ended(*trade_id, &error.to_string(), now);
                    None
                }
                TradingEvent::Settle {
                    trade_id, message, ..
                } => {
                    d.on_message(*trade_id, message, now);
                    None
                }
                _ => return,
            }
        };
        if let Some(words) = refused {
            self.dispatch.dispatch(Action::SettleTrouble(words));
        }
        self.carry_out();
    }

    /// Makes the GETs the driver asks for, one at a time, until it asks for none.
    async fn pump(self: &Rc<Self>) {
        loop {
            let next = {
                let mut inner = self.inner.borrow_mut();
                let now = now_ms();
                let Some(req) = inner.driver.as_mut().and_then(|d| d.next_request(now)) else {
                    break;
                };
                let Some(chain) = inner.chain.as_ref() else {
                    break;
                };
                let (root, json) = match req.server {
                    Server::Esplora => (chain.esplora.clone(), false),
                    Server::Ord => (chain.ord.clone().unwrap_or_default(), true),
                };
                (format!("{root}{}", req.path), json)
            };
            let answer = wallet::get(&next.0, next.1).await;
            {
                let mut inner = self.inner.borrow_mut();
                if let Some(d) = inner.driver.as_mut() {
                    match answer {
                        Ok((status, body)) => d.on_answer(status, &body, now_ms()),
                        Err(_) => d.on_no_answer(now_ms()),
                    }
                }
            }
            self.run_events();
        }
    }

    /// Carries out what the driver said after an input from outside the loop, and wakes the
    /// loop for the reads the driver may now want.
    fn carry_out(self: &Rc<Self>) {
        self.run_events();
        if let Some(w) = self.inner.borrow_mut().wake.as_mut() {
            // Full: the loop is already woken.
            let _ = w.try_send(());
        }
    }

    /// Carries out what the driver said (the loop's own: it does not wake itself).
    fn run_events(self: &Rc<Self>) {
        loop {
            let event = {
                let mut inner = self.inner.borrow_mut();
                match inner.driver.as_mut().and_then(|d| d.poll_event()) {
                    Some(e) => e,
                    None => break,
                }
            };
            self.handle_event(event);
        }
    }

    fn handle_event(self: &Rc<Self>, event: Event) {
        let handle = self.inner.borrow().handle.clone();
        let command = |c: Command| match &handle {
            Some(h) => h.command(c).map_err(|e| e.to_string()),
            None => Err("the node is not running".to_string()),
        };
        match event {
            Event::Take { request, offer } => {
                let trade_id = request.trade_id;
                let sent = command(Command::TakeOrder {
                    pair: request.pair,
                    order_id: request.order_id,
                    amount: request.amount,
                    trade_id,
                    settlement: TakeSettlement {
                        fee_rate: request.fee_rate,
                        offer,
                    },
                });
                if let Err(e) = sent {
                    self.dispatch.dispatch(Action::TradingError(e));
                    if let Some(d) = self.inner.borrow_mut().driver.as_mut() {
                        d.on_ended(trade_id, "the take was not sent", now_ms());
                    }
                }
            }
            Event::TakeRefused { error, .. } => self
                .dispatch
                .dispatch(Action::TradingError(format!("take not sent: {error}"))),
            Event::Task(Task::Send { trade_id, message }) => {
                if let Err(e) = command(Command::Settle { trade_id, message }) {
                    self.dispatch.dispatch(Action::SettleTrouble(format!(
                        "a settlement message of trade {} was not sent: {e}",
                        trade_id_hex(&trade_id)
                    )));
                }
            }
            Event::Task(Task::Broadcast { trade_id, tx }) => {
                let Some(chain) = self.inner.borrow().chain.clone() else {
                    return;
                };
                let dispatch = self.dispatch.clone();
                let me = self.clone();
                wasm_bindgen_futures::spawn_local(async move {
                    let result = wallet::broadcast(&chain, &tx).await;
                    if let Err(e) = &result {
                        dispatch.dispatch(Action::SettleTrouble(format!(
                            "the swap of trade {} was not broadcast: {e}",
                            trade_id_hex(&trade_id)
                        )));
                    }
                    if let Some(d) = me.inner.borrow_mut().driver.as_mut() {
                        d.on_broadcast(trade_id, result.is_ok());
                    }
                    me.carry_out();
                });
            }
            Event::Changed(trade_id) => self.changed(trade_id),
            // Counted by the driver (its counters go to the metrics panel with each change).
            Event::Refused { .. } => {}
            Event::Trouble(e) => self
                .dispatch
                .dispatch(Action::SettleTrouble(format!("{e} (trying again)"))),
        }
    }

    /// Shows a trade's settlement and keeps it.
    fn changed(self: &Rc<Self>, trade_id: TradeId) {
        let (view, counters, record) = {
            let mut inner = self.inner.borrow_mut();
            let Some(d) = inner.driver.as_ref() else {
                return;
            };
            let view = d.view(&trade_id);
            let counters = d.counters().clone();
            let bytes = d.stored(&trade_id);
            let key = inner.me.clone();
            if let Some(bytes) = bytes {
                inner.stored.insert(trade_id_hex(&trade_id), bytes);
            }
            (view, counters, (key, inner.stored.clone()))
        };
        if let Some(view) = view {
            self.dispatch.dispatch(Action::Settlement(Box::new(view)));
        }
        self.dispatch
            .dispatch(Action::SettleCounters(Box::new(counters)));
        let dispatch = self.dispatch.clone();
        wasm_bindgen_futures::spawn_local(async move {
            if let Err(e) = put_value(STORE, &record.0, &record.1).await {
                dispatch.dispatch(Action::SettleTrouble(format!(
                    "cannot keep your settlements in this browser: {e}"
                )));
            }
        });
    }

    fn publish_all(self: &Rc<Self>) {
        let views = self
            .inner
            .borrow()
            .driver
            .as_ref()
            .map(|d| d.views())
            .unwrap_or_default();
        for v in views {
            self.dispatch.dispatch(Action::Settlement(Box::new(v)));
        }
    }
}

fn now_ms() -> u64 {
    darkswap_net::unix_time_ms()
}
