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
//! metrics            # this session's client metrics, as Prometheus text
//! quit
//! ```
//! Amounts are integers in the base asset's smallest unit; prices are decimals of quote units
//! per base unit (at most 8 decimals), exactly as the book stores them.

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

/// Default order lifetime in seconds when `ttl=` is not given.
const DEFAULT_TTL_SECS: &str = "3600";

pub async fn session(
    handle: NodeHandle,
    mut events: mpsc::Receiver<NodeEvent>,
    initial: Option<Pair>,
) -> Result<()> {
    let mut books: HashMap<Pair, BookView> = HashMap::new();
    let mut metrics = darkswap_net::metrics::ClientMetrics::default();
    let mut own: HashMap<OrderId, OwnOrder> = HashMap::new();
    if let Some(pair) = initial {
        handle.command(Command::WatchPair { pair })?;
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        tokio::select! {
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
                    println!("end metrics");
                    continue;
                }
                if let Err(e) = run_command(line, &handle, &books, &own) {
                    println!("error {e}");
                }
            }
            event = events.next() => {
                let Some(event) = event else { bail!("the node stopped") };
                metrics.observe(&event);
                if let NodeEvent::Trading(event) = event {
                    print_trading(&event, &mut books, &mut own);
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
            let spec = input.parse(unix_time_ms())?;
            handle.place_order(pair, spec)?;
        }
        ["take", pair, id, amount] => {
            let pair = Pair::parse(pair)?;
            let order_id = OrderId::from_hex(id).ok_or_else(|| anyhow!("not an order id: {id}"))?;
            let amount: u64 = amount
                .parse()
                .map_err(|_| anyhow!("amount must be a whole number of base units"))?;
            handle.command(Command::TakeOrder {
                pair,
                order_id,
                amount,
                trade_id: darkswap_net::new_trade_id(),
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
            "unknown command (watch, make, take, cancel, book, orders, metrics, quit): {line}"
        ),
    }
    Ok(())
}

fn print_trading(
    event: &TradingEvent,
    books: &mut HashMap<Pair, BookView>,
    own: &mut HashMap<OrderId, OwnOrder>,
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
        // The CLI does not settle yet: it says what arrived and that nothing acts on it.
        TradingEvent::Settle {
            trade_id,
            from,
            message,
        } => println!(
            "settle message {} from={from} bytes={} (not acted on: the CLI does not settle trades yet)",
            darkswap_net::trade_id_hex(trade_id),
            message.len()
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
                darkswap_net::TradeState::Agreed => " (agreed, awaiting settlement)".to_string(),
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
