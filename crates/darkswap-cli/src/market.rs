//! `darkswap market`: a line-oriented trading session on stdin/stdout, for people and for
//! market-making scripts. One command per input line, one event per output line.
//!
//! ```text
//! watch RUNE:DOG/BTC
//! make RUNE:DOG/BTC sell 1000 0.00002500 [min=100] [ttl=3600]
//! take RUNE:DOG/BTC <order id> <amount>
//! cancel <order id>
//! book RUNE:DOG/BTC
//! orders
//! settlements        # with --wallet: every settlement, one line each
//! cancel-settlement <trade>   # with --wallet: take back what we offered to a signed swap
//!                             # whose other side went quiet (cancel=offered)
//! metrics            # this session's client metrics, as Prometheus text
//! quit
//! ```
//! Amounts are integers in the base asset's smallest unit; prices are decimals of quote units
//! per base unit (at most 8 decimals), exactly as the book stores them.
//!
//! With `--wallet FILE`, trades on runes-for-bitcoin pairs settle on Bitcoin (see
//! [`crate::settle`]): a take carries our offer, an agreement starts the swap, and `settle`
//! lines say how each goes. Without it the session trades agreements only, and says so when a
//! counterparty sends settlement messages.

use anyhow::{anyhow, bail, Result};
use darkswap_net::{
    unix_time_ms, BookView, Command, NodeEvent, NodeHandle, OwnOrder, TradingEvent,
};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::order::OrderInput;
use futures::channel::mpsc;
use futures::StreamExt;
use std::collections::HashMap;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::settle::{InFlight, SettleArgs, Settler};

/// Default order lifetime in seconds when `ttl=` is not given.
const DEFAULT_TTL_SECS: &str = "3600";

/// How often settlements' deadlines are checked and their chain reads started.
const SETTLE_TICK: std::time::Duration = std::time::Duration::from_secs(1);

pub async fn session(
    handle: NodeHandle,
    mut events: mpsc::Receiver<NodeEvent>,
    initial: Option<Pair>,
    settle: &SettleArgs,
) -> Result<()> {
    let mut books: HashMap<Pair, BookView> = HashMap::new();
    let mut metrics = darkswap_net::metrics::ClientMetrics::default();
    let mut own: HashMap<OrderId, OwnOrder> = HashMap::new();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let opened = match &settle.wallet {
        Some(file) => {
            // The password: from the environment, or the first input line (read here, by the
            // same reader as the commands, so no command is lost in another buffer).
            let password = match std::env::var("DARKSWAP_WALLET_PASSWORD") {
                Ok(p) => p,
                Err(_) => lines.next_line().await?.unwrap_or_default(),
            };
            let me = handle.local_peer_id().to_bytes();
            // Unlocking (Argon2id) and reading relay-info block: off the async workers.
            let opened =
                tokio::task::block_in_place(|| Settler::open(settle, file, &password, me))?;
            println!("settling with wallet {}", file.display());
            Some(opened)
        }
        None => None,
    };
    let (mut settler, mut broadcasts) = match opened {
        Some((s, b)) => (Some(s), Some(b)),
        None => (None, None),
    };
    let mut inflight: InFlight = None;
    if let Some(pair) = initial {
        handle.command(Command::WatchPair { pair })?;
    }
    loop {
        // The driver's deadlines every second, and sooner when it has a retry or a look at
        // the chain due.
        let wait = settler
            .as_ref()
            .map_or(SETTLE_TICK, |s| s.wait(SETTLE_TICK));
        if let Some(s) = settler.as_mut() {
            s.pump(&handle, &mut inflight);
        }
        tokio::select! {
            answer = async {
                match inflight.as_mut() {
                    Some(h) => h.await.unwrap_or_else(|e| Err(e.into())),
                    None => std::future::pending().await,
                }
            } => {
                inflight = None;
                if let Some(s) = settler.as_mut() {
                    s.on_answer(answer);
                }
            }
            result = async {
                match broadcasts.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            } => {
                if let (Some(s), Some((trade_id, result))) = (settler.as_mut(), result) {
                    s.on_broadcast(trade_id, result);
                }
            }
            _ = tokio::time::sleep(wait), if settler.is_some() => {
                if let Some(s) = settler.as_mut() {
                    s.tick();
                }
            }
            line = lines.next_line() => {
                let Some(line) = line? else { return Ok(()) };
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if line == "quit" {
                    return Ok(());
                }
                if line == "metrics" {
                    print!("{}", metrics.to_prometheus_text());
                    if let Some(s) = &settler {
                        print!("{}", s.metrics_text());
                    }
                    println!("end metrics");
                    continue;
                }
                if let Some(trade) = line.strip_prefix("cancel-settlement ") {
                    let done = match settler.as_mut() {
                        Some(s) => s.cancel(trade.trim()),
                        None => Err(anyhow!("not settling: start the session with --wallet")),
                    };
                    if let Err(e) = done {
                        println!("error {e:#}");
                    }
                    continue;
                }
                if line == "settlements" {
                    match &settler {
                        Some(s) => s.print_all(),
                        None => println!("error not settling: start the session with --wallet"),
                    }
                    continue;
                }
                if let Err(e) = run_command(line, &handle, &books, &own, settler.as_mut()) {
                    println!("error {e}");
                }
            }
            event = events.next() => {
                let Some(event) = event else { bail!("the node stopped") };
                metrics.observe(&event);
                if let NodeEvent::Trading(event) = event {
                    print_trading(&event, &mut books, &mut own, settler.is_some());
                    if let Some(s) = settler.as_mut() {
                        s.on_trading(&event);
                    }
                }
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn run_command(
    line: &str,
    handle: &NodeHandle,
    books: &HashMap<Pair, BookView>,
    own: &HashMap<OrderId, OwnOrder>,
    settler: Option<&mut Settler>,
) -> Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["watch", pair] => {
            handle.command(Command::WatchPair {
                pair: Pair::parse(pair)?,
            })?;
        }
        ["make", pair, side, amount, price, options @ ..] => {
            let pair = Pair::parse(pair)?;
            let mut min_fill = "";
            let mut ttl_secs = DEFAULT_TTL_SECS;
            for option in options {
                match option.split_once('=') {
                    Some(("min", v)) => min_fill = v,
                    Some(("ttl", v)) => ttl_secs = v,
                    _ => bail!("unknown option {option} (min=<amount>, ttl=<seconds>)"),
                }
            }
            let input = OrderInput {
                side,
                amount,
                price,
                min_fill,
                ttl_secs,
            };
            let spec = input.parse(&pair, unix_time_ms())?;
            handle.place_order(pair, spec)?;
        }
        ["take", pair, id, amount] => {
            let pair = Pair::parse(pair)?;
            let order_id = OrderId::from_hex(id).ok_or_else(|| anyhow!("not an order id: {id}"))?;
            let amount: u64 = amount
                .parse()
                .map_err(|_| anyhow!("amount must be a whole number of base units"))?;
            let trade_id = darkswap_net::new_trade_id();
            if let (Some(settler), true) = (settler, pair.settles_on_bitcoin()) {
                let order = books
                    .get(&pair)
                    .and_then(|v| v.orders.iter().find(|o| o.id == order_id))
                    .ok_or_else(|| anyhow!("order {id} is not in the {pair} book we follow"))?;
                println!("taking {} {id} {amount}", darkswap_net::trade_id_hex(&trade_id));
                return settler.take(darkswap_settle::driver::TakeRequest {
                    trade_id,
                    pair: pair.clone(),
                    order_id,
                    maker_side: order.side,
                    price: order.price,
                    amount,
                    fee_rate: settler.fee_rate(),
                });
            }
            handle.command(Command::TakeOrder {
                pair,
                order_id,
                amount,
                trade_id,
                settlement: Default::default(),
            })?;
        }
        ["cancel", id] => {
            let id = OrderId::from_hex(id).ok_or_else(|| anyhow!("not an order id: {id}"))?;
            handle.command(Command::CancelOrder { id })?;
        }
        ["book", pair] => {
            let pair = Pair::parse(pair)?;
            let Some(view) = books.get(&pair) else {
                bail!("not following {pair} (watch it first)");
            };
            for o in &view.orders {
                println!(
                    "order {} {} {} {} maker={}{}",
                    o.id,
                    o.side,
                    o.price,
                    o.amount,
                    o.maker,
                    if o.mine { " mine" } else { "" }
                );
            }
            println!("end {} orders={}", pair, view.total_orders);
        }
        ["orders"] => {
            for o in own.values() {
                println!(
                    "mine {} {} {} {} {}",
                    o.id, o.pair, o.spec.side, o.spec.price, o.spec.amount
                );
            }
            println!("end mine={}", own.len());
        }
        _ => bail!(
            "unknown command (watch, make, take, cancel, book, orders, settlements, cancel-settlement, metrics, quit): {line}"
        ),
    }
    Ok(())
}

fn print_trading(
    event: &TradingEvent,
    books: &mut HashMap<Pair, BookView>,
    own: &mut HashMap<OrderId, OwnOrder>,
    settling: bool,
) {
    match event {
        TradingEvent::Book(view) => {
            let best = |levels: &[darkswap_orderbook::LevelView]| {
                levels
                    .first()
                    .map_or("-".to_string(), |l| l.price.to_string())
            };
            println!(
                "book {} orders={} best_bid={} best_ask={}",
                view.pair,
                view.total_orders,
                best(&view.bids),
                best(&view.asks)
            );
            books.insert(view.pair.clone(), view.clone());
        }
        TradingEvent::OrderPlaced(order) => {
            println!(
                "placed {} {} {} {} @ {}",
                order.id, order.pair, order.spec.side, order.spec.amount, order.spec.price
            );
            own.insert(order.id, order.clone());
        }
        TradingEvent::OrderReduced(order) => {
            println!("reduced {} {} left", order.id, order.spec.amount);
            own.insert(order.id, order.clone());
        }
        TradingEvent::OrderCancelled { id, .. } => {
            own.remove(id);
            println!("cancelled {id}");
        }
        TradingEvent::OrderWithdrawn { id, reason, .. } => {
            own.remove(id);
            println!("withdrawn {id} {reason}");
        }
        TradingEvent::OrderFailed(error) => println!("error {error}"),
        TradingEvent::TakeFailed { trade_id, error } => println!(
            "error take {} {error}",
            darkswap_net::trade_id_hex(trade_id)
        ),
        TradingEvent::BookSynced {
            pair,
            orders,
            elapsed,
        } => println!(
            "synced {pair} {orders} orders in {:.0} ms",
            elapsed.as_secs_f64() * 1e3
        ),
        TradingEvent::SyncDeferred {
            pair,
            reason,
            retry_in,
        } => println!(
            "sync deferred {pair} {reason}; again in {} s",
            retry_in.as_secs()
        ),
        TradingEvent::MessageRejected { reason } => println!("rejected {reason}"),
        TradingEvent::E2e(darkswap_net::E2eEvent::SessionEstablished {
            peer,
            initiator,
            cipher,
        }) => {
            let role = if *initiator { "initiator" } else { "responder" };
            println!("e2e session {peer} {role} {cipher}")
        }
        TradingEvent::E2e(darkswap_net::E2eEvent::Rekeyed { peer, epoch }) => {
            println!("e2e rekeyed {peer} epoch={epoch}")
        }
        TradingEvent::E2e(darkswap_net::E2eEvent::FrameRejected { peer, reason }) => {
            println!("e2e rejected {peer} {reason}")
        }
        // Without a wallet nothing acts on it, and the line says so.
        TradingEvent::Settle {
            trade_id,
            from,
            message,
        } => println!(
            "settle message {} from={from} bytes={}{}",
            darkswap_net::trade_id_hex(trade_id),
            message.len(),
            if settling {
                ""
            } else {
                " (not acted on: start the session with --wallet to settle)"
            }
        ),
        TradingEvent::SettleUndelivered { trade_id, reason } => {
            println!(
                "settle undelivered {} {reason}",
                darkswap_net::trade_id_hex(trade_id)
            )
        }
        TradingEvent::Trade(trade) => {
            let detail = match &trade.state {
                darkswap_net::TradeState::Rejected { reason }
                | darkswap_net::TradeState::Aborted { reason } => format!(" ({reason})"),
                darkswap_net::TradeState::Agreed if settling && trade.fee_rate > 0 => {
                    " (agreed: settling on Bitcoin)".to_string()
                }
                darkswap_net::TradeState::Agreed if trade.pair.settles_on_bitcoin() => {
                    " (agreed; not settled here: no wallet or no fee rate)".to_string()
                }
                darkswap_net::TradeState::Agreed => {
                    " (agreed; this pair does not settle on Bitcoin)".to_string()
                }
                _ => String::new(),
            };
            println!(
                "trade {} {} {:?} order={} {} {} @ {} with={}{detail}",
                trade.id_hex(),
                trade.state.label(),
                trade.role,
                trade.order_id,
                trade.pair,
                trade.amount,
                trade.price,
                trade.counterparty
            );
        }
    }
}
