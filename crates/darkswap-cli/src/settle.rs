//! `darkswap market --wallet FILE`: the session's trades on runes-for-bitcoin pairs settle on
//! Bitcoin, driven by `darkswap_settle::driver` (the same core the page runs). This shell only
//! moves bytes: the driver's GETs go to the chain servers one at a time off the runtime's
//! workers, its messages to the counterparty through the node, its swaps to the chain API; each
//! settlement is kept in a file beside the wallet (`<wallet>.settlements.json`) and resumed at
//! the next start.
//!
//! Lines printed (one event each, for scripts):
//! ```text
//! settle <trade> <step> [txid=<txid>] [conf=<seen>/<needed>] [fee=<ours>/<whole>] [reason=<words>]
//! settle refused <trade> <label>          # what the other side sent failed a check
//! settle trouble <kind> <words>           # a chain read failed; tried again
//! settle broadcast <trade> <txid> ok|refused [<words>]
//! settle cancelling <trade> fee=<sat>     # after `cancel-settlement <trade>`
//! error take <trade> <reason>             # a take whose offer could not be made
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::Transaction;
use darkswap_net::{trade_id_hex, Command, NodeHandle, TakeSettlement, TradeState, TradingEvent};
use darkswap_proto::trade::TradeId;
use darkswap_settle::driver::{Config, Driver, Event, TakeRequest, View};
use darkswap_settle::{Params, Task};
use darkswap_wallet::sync::Server;
use darkswap_wallet::Keychain;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::wallet::{self, hex_decode, hex_encode, Endpoints};

/// The most broadcast results waiting to be read.
const BROADCAST_QUEUE: usize = 16;
/// The largest settlements file read.
const MAX_STORE_BYTES: u64 = 16 * 1024 * 1024;

/// How the session settles.
#[derive(clap::Args, Clone)]
pub struct SettleArgs {
    /// Settle trades on Bitcoin with this wallet file (its password from
    /// DARKSWAP_WALLET_PASSWORD, or else the first input line)
    #[arg(long)]
    pub wallet: Option<PathBuf>,
    #[command(flatten)]
    pub chain: wallet::ChainArgs,
    /// Confirmations after which a settlement is done
    #[arg(long, default_value_t = Params::DEFAULT.confirmations)]
    pub confirmations: u32,
    /// Seconds the other side has for each step before we abort (or, after we signed, may cancel)
    #[arg(long, default_value_t = Params::DEFAULT.step_timeout_ms / 1000)]
    pub step_timeout: u64,
    /// The swap's fee rate (sat/vB) our takes name
    #[arg(long, default_value_t = 2)]
    pub fee_rate: u64,
    /// Seconds between looks at each swap on the chain
    #[arg(long, default_value_t = 2)]
    pub watch_every: u64,
}

/// What an HTTP request came to, off the runtime.
pub type Answer = Result<(u16, Vec<u8>)>;

/// A GET on its way, off the runtime's workers.
pub type InFlight = Option<JoinHandle<Answer>>;

/// Where broadcast results arrive: the trade and the txid, or why the chain refused it.
pub type Broadcasts = mpsc::Receiver<(TradeId, Result<String>)>;

/// The session's settlements.
pub struct Settler {
    driver: Driver<Keychain>,
    ep: Endpoints,
    store: PathBuf,
    stored: BTreeMap<String, String>,
    fee_rate: u64,
    broadcasts: mpsc::Sender<(TradeId, Result<String>)>,
}

impl Settler {
    /// Unlocks the wallet with `password`, reads where the chain is, and resumes the stored
    /// settlements of `me` (our PeerId's bytes); the receiver of broadcast results goes with it.
    pub fn open(
        args: &SettleArgs,
        file: &Path,
        password: &str,
        me: Vec<u8>,
    ) -> Result<(Settler, Broadcasts)> {
        let ep = wallet::endpoints(&args.chain)?;
        ep.esplora()?;
        let keys = wallet::unlock(file, ep.network, password)?;
        let config = Config {
            params: Params {
                confirmations: args.confirmations.max(1),
                step_timeout_ms: args.step_timeout.max(1).saturating_mul(1000),
            },
            with_ord: ep.ord.is_some(),
            watch_every_ms: args.watch_every.max(1).saturating_mul(1000),
            ..Config::default()
        };
        let now = darkswap_net::unix_time_ms();
        let mut driver = Driver::new(me, config);
        driver.set_keys(Some(keys), now);
        let store = file.with_extension("settlements.json");
        let stored = read_store(&store)?;
        for (trade, hex) in &stored {
            let restored = hex_decode(hex, darkswap_settle::store::MAX_STORED_SETTLEMENT_BYTES)
                .context("not hex")
                .and_then(|b| Ok(driver.restore(&b, now)?));
            if let Err(e) = restored {
                println!("settle restore {trade} refused: {e:#}");
            }
        }
        let (broadcasts, results) = mpsc::channel(BROADCAST_QUEUE);
        let settler = Settler {
            driver,
            ep,
            store,
            stored,
            fee_rate: args.fee_rate,
            broadcasts,
        };
        Ok((settler, results))
    }

    /// The fee rate our takes name.
    pub fn fee_rate(&self) -> u64 {
        self.fee_rate
    }

    /// A take of an order on a pair that settles on Bitcoin: our offer goes with it.
    pub fn take(&mut self, request: TakeRequest) -> Result<()> {
        self.driver
            .take(request, darkswap_net::unix_time_ms())
            .map_err(Into::into)
    }

    /// What the negotiation reported.
    pub fn on_trading(&mut self, event: &TradingEvent) {
        let now = darkswap_net::unix_time_ms();
        match event {
            TradingEvent::Trade(t) => match &t.state {
                TradeState::Agreed => {
                    if let Some(agreement) = &t.agreement {
                        if let Err(e) = self.driver.on_agreed(agreement, &t.taker_offer, now) {
                            println!("settle {} not begun: {e}", t.id_hex());
                        }
                    }
                }
                TradeState::Rejected { reason } | TradeState::Aborted { reason } => {
                    self.driver.on_ended(t.id, reason, now)
                }
                _ => {}
            },
            TradingEvent::TakeFailed { trade_id, error } => {
                self.driver.on_ended(*trade_id, &error.to_string(), now)
            }
            TradingEvent::Settle {
                trade_id, message, ..
            } => self.driver.on_message(*trade_id, message, now),
            _ => {}
        }
    }

    /// How long until the driver has something to ask (a retry, the next look at the swaps),
    /// at most `cap`.
    pub fn wait(&self, cap: std::time::Duration) -> std::time::Duration {
        let now = darkswap_net::unix_time_ms();
        match self.driver.wake_at_ms(now) {
            Some(at) => std::time::Duration::from_millis(at.saturating_sub(now)).min(cap),
            None => cap,
        }
    }

    /// Cancels a signed settlement whose other side went quiet (its offered outputs back to us,
    /// paying more than the swap); prints the fee.
    pub fn cancel(&mut self, trade: &str) -> Result<()> {
        let id: TradeId = hex_decode(trade, 16)
            .and_then(|b| b.try_into().ok())
            .with_context(|| format!("not a trade id: {trade}"))?;
        let fee = self.driver.cancel(id)?;
        println!("settle cancelling {trade} fee={}", fee.to_sat());
        Ok(())
    }

    /// Time passes.
    pub fn tick(&mut self) {
        self.driver.tick(darkswap_net::unix_time_ms());
    }

    /// Feeds an answer to the driver.
    pub fn on_answer(&mut self, answer: Answer) {
        let now = darkswap_net::unix_time_ms();
        match answer {
            Ok((status, body)) => self.driver.on_answer(status, &body, now),
            Err(e) => {
                println!("settle trouble unreachable {e:#}");
                self.driver.on_no_answer(now);
            }
        }
    }

    /// Prints a broadcast's result and tells the driver.
    pub fn on_broadcast(&mut self, trade_id: TradeId, result: Result<String>) {
        let trade = trade_id_hex(&trade_id);
        match &result {
            Ok(txid) => println!("settle broadcast {trade} {txid} ok"),
            Err(e) => println!("settle broadcast {trade} - refused {e:#}"),
        }
        self.driver.on_broadcast(trade_id, result.is_ok());
    }

    /// Starts the next GET if none is in flight, and carries out what the driver said.
    pub fn pump(&mut self, handle: &NodeHandle, inflight: &mut InFlight) {
        let now = darkswap_net::unix_time_ms();
        if inflight.is_none() {
            if let Some(req) = self.driver.next_request(now) {
                let (root, json) = match req.server {
                    Server::Esplora => (self.ep.esplora.clone(), false),
                    Server::Ord => (self.ep.ord.clone(), true),
                };
                let url = format!("{}{}", root.unwrap_or_default(), req.path);
                *inflight = Some(tokio::task::spawn_blocking(move || wallet::get(&url, json)));
            }
        }
        while let Some(event) = self.driver.poll_event() {
            self.carry_out(event, handle);
        }
    }

    fn carry_out(&mut self, event: Event, handle: &NodeHandle) {
        match event {
            Event::Take { request, offer } => {
                let command = Command::TakeOrder {
                    pair: request.pair,
                    order_id: request.order_id,
                    amount: request.amount,
                    trade_id: request.trade_id,
                    settlement: TakeSettlement {
                        fee_rate: request.fee_rate,
                        offer,
                    },
                };
                if let Err(e) = handle.command(command) {
                    println!("error take {} {e}", trade_id_hex(&request.trade_id));
                    self.driver.on_ended(
                        request.trade_id,
                        "the take was not sent",
                        darkswap_net::unix_time_ms(),
                    );
                }
            }
            Event::TakeRefused { trade_id, error } => {
                println!("error take {} {error}", trade_id_hex(&trade_id))
            }
            Event::Task(Task::Send { trade_id, message }) => {
                if let Err(e) = handle.command(Command::Settle { trade_id, message }) {
                    println!("settle trouble send {e}");
                }
            }
            Event::Task(Task::Broadcast { trade_id, tx }) => self.broadcast(trade_id, tx),
            Event::Changed(trade_id) => {
                if let Some(view) = self.driver.view(&trade_id) {
                    println!("{}", line(&view));
                }
                self.keep(trade_id);
            }
            Event::Refused { trade_id, label } => {
                println!("settle refused {} {label}", trade_id_hex(&trade_id))
            }
            Event::Trouble(e) => println!("settle trouble {} {e}", e.label()),
        }
    }

    fn broadcast(&mut self, trade_id: TradeId, tx: Transaction) {
        let Ok(root) = self.ep.esplora().map(str::to_string) else {
            return;
        };
        let results = self.broadcasts.clone();
        tokio::task::spawn_blocking(move || {
            let sent = wallet::post(&format!("{root}/tx"), "text/plain", &serialize_hex(&tx));
            let result = sent.and_then(|(status, body)| {
                if status == 200 {
                    Ok(darkswap_wallet::esplora::parse_broadcast(&body, &tx)?.to_string())
                } else {
                    let words: String = String::from_utf8_lossy(&body).chars().take(200).collect();
                    anyhow::bail!("HTTP {status}: {words}")
                }
            });
            // The session has ended if nobody reads it.
            let _ = results.blocking_send((trade_id, result));
        });
    }

    /// Writes the trade's settlement to the file (atomically: a temporary file renamed).
    fn keep(&mut self, trade_id: TradeId) {
        let Some(bytes) = self.driver.stored(&trade_id) else {
            return;
        };
        self.stored
            .insert(trade_id_hex(&trade_id), hex_encode(&bytes));
        let written = serde_json::to_vec_pretty(&self.stored)
            .map_err(anyhow::Error::from)
            .and_then(|json| {
                let tmp = self.store.with_extension("tmp");
                std::fs::write(&tmp, json)?;
                std::fs::rename(&tmp, &self.store)?;
                Ok(())
            });
        if let Err(e) = written {
            println!(
                "settle trouble store cannot write {}: {e}",
                self.store.display()
            );
        }
    }

    /// Every settlement, one line each.
    pub fn print_all(&self) {
        let views = self.driver.views();
        for v in &views {
            println!("{}", line(v));
        }
        println!("end settlements={}", views.len());
    }

    /// The driver's counters, as Prometheus text.
    pub fn metrics_text(&self) -> String {
        self.driver.counters().to_prometheus_text()
    }
}

/// One settlement as a line.
fn line(v: &View) -> String {
    let mut out = format!(
        "settle {} {}",
        trade_id_hex(&v.trade_id),
        v.step.map_or("preparing", |s| s.label())
    );
    if let Some(txid) = v.txid {
        out.push_str(&format!(" txid={txid}"));
    }
    if v.step.is_some_and(|s| s.signed()) {
        out.push_str(&format!(
            " conf={}/{}",
            v.confirmations.0, v.confirmations.1
        ));
    }
    if let Some((whole, ours)) = v.fee {
        out.push_str(&format!(" fee={}/{}", ours.to_sat(), whole.to_sat()));
    }
    if v.cancel_offered {
        match v.cancel_fee {
            Some(fee) => out.push_str(&format!(" cancel=offered cancel_fee={}", fee.to_sat())),
            None => out.push_str(" cancel=offered"),
        }
    }
    if let Some(reason) = &v.reason {
        out.push_str(&format!(" reason={reason}"));
    }
    out
}

fn read_store(path: &Path) -> Result<BTreeMap<String, String>> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > MAX_STORE_BYTES => {
            anyhow::bail!("{} is over {MAX_STORE_BYTES} bytes", path.display())
        }
        Ok(_) => {
            let text = std::fs::read(path)?;
            serde_json::from_slice(&text)
                .with_context(|| format!("{} is not a settlements file", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e.into()),
    }
}
