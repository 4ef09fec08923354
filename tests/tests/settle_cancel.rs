//! Hostile makers against the real `darkswap market --wallet` taker. Each maker speaks the real
//! protocol (a `darkswap-net` node with the same settlement driver) and alters what it sends.
//!
//! One claims ten times the runes its outputs hold: the taker looks its outputs up in ord and
//! refuses before signing, says why, and counts it (`runes_claim`).
//!
//! The other takes the free option: it makes its offer, receives the taker's half (the taker
//! has a 5 s step deadline), completes and signs the swap, and then neither broadcasts it nor
//! sends it back. Past the deadline the taker's line offers the cancel
//! with its fee; `cancel-settlement` spends the taker's offered outputs back to itself, paying more
//! than the swap, so it replaces it (Core takes it in at exactly the quoted fee); after a block
//! the taker's settlement ends cancelled and counted, and the maker's fully signed swap is
//! refused by the chain.

use std::time::Duration;

use anyhow::{Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::Transaction;
use darkswap_net::{Command, NodeEvent, TradeState, TradingEvent};
use darkswap_orderbook::Pair;
use darkswap_proto::settle::SettleMessage;
use darkswap_settle::driver::{Config, Driver, Event};
use darkswap_settle::Task;
use darkswap_tests::market_cli::{take, wallet, wallet_file, Market};
use darkswap_tests::regtest::{btc_to_sats, Regtest};
use darkswap_tests::{http_get, http_request, Peer};
use darkswap_wallet::sync::Server;
use darkswap_wallet::{Account, KeyPath, Keychain, Mnemonic, Network, WordCount};
use futures::StreamExt;
use tokio::sync::oneshot;

/// How the hostile maker cheats.
#[derive(Clone, Copy, PartialEq)]
enum Cheat {
    /// Settles like anyone until it holds the whole signed swap, then keeps it.
    KeepTheSwap,
    /// Claims ten times the runes its outputs hold.
    InflateItsRunes,
}

/// The hostile maker: the settlement driver, its outgoing messages altered as `cheat` says.
async fn hostile_maker(
    mut peer: Peer,
    keys: Keychain,
    esplora: String,
    ord: String,
    cheat: Cheat,
    kept: oneshot::Sender<Transaction>,
) -> Result<()> {
    let mut driver: Driver<Keychain> = Driver::new(peer.id().to_bytes(), Config::default());
    driver.set_keys(Some(keys), darkswap_net::unix_time_ms());
    let mut kept = Some(kept);
    loop {
        let now = darkswap_net::unix_time_ms();
        // The driver's chain reads, answered at once (blocking, on this worker).
        while let Some(req) = driver.next_request(now) {
            let answer = match req.server {
                Server::Esplora => http_get(&format!("{esplora}{}", req.path)),
                Server::Ord => http_request(
                    "GET",
                    &format!("{ord}{}", req.path),
                    &[("Accept", "application/json")],
                    b"",
                ),
            };
            match answer {
                Ok((status, body)) => driver.on_answer(status, body.as_bytes(), now),
                Err(_) => driver.on_no_answer(now),
            }
        }
        while let Some(event) = driver.poll_event() {
            match event {
                Event::Task(Task::Broadcast { tx, .. }) => {
                    if let Some(k) = kept.take() {
                        let _ = k.send(tx);
                    }
                }
                Event::Task(Task::Send { trade_id, message }) => {
                    let message = match (cheat, SettleMessage::decode(&message)?) {
                        // The whole swap, signed: kept, never sent.
                        (Cheat::KeepTheSwap, SettleMessage::Signed(_)) => continue,
                        (Cheat::InflateItsRunes, SettleMessage::Offer(mut offer)) => {
                            for rune in offer.inputs.iter_mut().flat_map(|i| i.runes.iter_mut()) {
                                rune.amount *= 10;
                            }
                            SettleMessage::Offer(offer).encode()
                        }
                        _ => message,
                    };
                    peer.handle.command(Command::Settle { trade_id, message })?
                }
                _ => {}
            }
        }
        let event = tokio::time::timeout(Duration::from_millis(200), peer.events.next()).await;
        let Ok(Some(NodeEvent::Trading(event))) = event else {
            driver.tick(darkswap_net::unix_time_ms());
            continue;
        };
        let now = darkswap_net::unix_time_ms();
        match event {
            TradingEvent::Trade(t) if t.state == TradeState::Agreed => {
                if let Some(a) = &t.agreement {
                    driver.on_agreed(a, &t.taker_offer, now)?;
                }
            }
            TradingEvent::Settle {
                trade_id, message, ..
            } => driver.on_message(trade_id, &message, now),
            _ => {}
        }
    }
}

/// A regtest chain and relay, a hostile maker holding the faucet's rune with an order for all of
/// it on the market (cheating as `cheat` says), and a taker's wallet paid by the faucet; the
/// maker's task, the swap it keeps (if it gets that far), and the pair.
async fn hostile_market(
    cheat: Cheat,
) -> Result<(
    Regtest,
    tokio::task::JoinHandle<Result<()>>,
    oneshot::Receiver<Transaction>,
    String,
    String,
)> {
    let chain = Regtest::start()?;
    let (relay, dir) = (&chain.relay, chain.dir.path());
    // The hostile maker's wallet: the faucet's rune on its rune address.
    let keys = Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest)?;
    let to = keys.derive(KeyPath::receive(Account::Runes, 0))?.address;
    let body = relay.faucet("/api/faucet/runes", &to)?;
    let id = darkswap_wallet::faucet::RuneGift::parse(body.as_bytes())?.rune;
    wallet(relay, &wallet_file(dir, "taker"), &["create"])?;
    wallet(relay, &wallet_file(dir, "taker"), &["faucet"])?;
    chain.synced()?;
    let info: serde_json::Value = serde_json::from_str(&chain.ord.get(&format!("/rune/{id}"))?)?;
    let name = info["entry"]["spaced_rune"]
        .as_str()
        .context("the rune's name")?
        .replace('•', "");
    let pair_text = format!("RUNE:{name}/BTC");
    let pair = Pair::parse(&pair_text)?;

    let peer = Peer::trader(relay, &pair).await?;
    let order = peer
        .handle
        .place_order(pair.clone(), darkswap_tests::sell(100_000, 500_000_000))?;
    let (kept_tx, kept_rx) = oneshot::channel();
    let maker = tokio::spawn(hostile_maker(
        peer,
        keys,
        format!("{}/esplora", relay.http),
        chain.ord.url(),
        cheat,
        kept_tx,
    ));

    Ok((chain, maker, kept_rx, pair_text, order.to_hex()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_taker_cancels_a_swap_the_maker_signed_and_kept() -> Result<()> {
    let (chain, maker, kept_rx, pair_text, order) = hostile_market(Cheat::KeepTheSwap).await?;
    let (relay, dir) = (&chain.relay, chain.dir.path());
    let mut taker = Market::start_with("taker", relay, dir, &pair_text, &["--step-timeout", "5"])?;
    let trade = tokio::task::block_in_place(|| take(&mut taker, &order, 1_000))?;
    let offered = tokio::task::block_in_place(|| {
        taker.wait(|l| {
            l.starts_with(&format!("settle {trade} signed")) && l.contains("cancel=offered")
        })
    })?;
    let quoted: u64 = offered
        .split_whitespace()
        .find_map(|w| w.strip_prefix("cancel_fee="))
        .context("the cancel's fee")?
        .parse()?;
    let swap = tokio::time::timeout(Duration::from_secs(5), kept_rx).await??;
    tokio::task::block_in_place(|| -> Result<()> {
        taker.send(&format!("cancel-settlement {trade}"))?;
        let line = taker.wait(|l| l.starts_with(&format!("settle cancelling {trade}")))?;
        assert!(line.ends_with(&format!("fee={quoted}")), "{line}");
        let sent = taker
            .wait(|l| l.starts_with(&format!("settle broadcast {trade}")) && l.ends_with(" ok"))?;
        let cancel = sent
            .split_whitespace()
            .nth(3)
            .context("the cancel's txid")?;
        // Core took it in at the fee quoted, which is more than the maker's swap pays.
        let entry = chain.node.cli(&["getmempoolentry", cancel])?;
        assert_eq!(btc_to_sats(&entry["fees"]["base"])?, quoted);
        chain
            .node
            .mine_to(1, "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw")?;
        let ended = taker.step(&trade, "cancelled")?;
        assert!(ended.contains("our inputs were spent elsewhere"), "{ended}");
        Ok(())
    })?;
    chain.synced()?;
    // The maker's signed swap is worthless now: the chain refuses it.
    let (status, _) = http_request(
        "POST",
        &format!("{}/esplora/tx", relay.http),
        &[],
        serialize_hex(&swap).as_bytes(),
    )?;
    assert_ne!(status, 200, "a swap whose inputs are spent is refused");
    let counted = tokio::task::block_in_place(|| taker.metrics())?;
    assert!(
        counted.contains("darkswap_client_settle_ended_total{step=\"cancelled\"} 1"),
        "{counted}"
    );
    maker.abort();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_maker_claiming_runes_it_does_not_hold_is_refused_before_the_taker_signs() -> Result<()> {
    let (chain, maker, _kept, pair_text, order) = hostile_market(Cheat::InflateItsRunes).await?;
    let (relay, dir) = (&chain.relay, chain.dir.path());
    let mut taker = Market::start("taker", relay, dir, &pair_text)?;
    tokio::task::block_in_place(|| -> Result<()> {
        let trade = take(&mut taker, &order, 1_000)?;
        taker.printed(|l| l == format!("settle refused {trade} runes_claim"))?;
        let ended = taker.step(&trade, "aborted")?;
        assert!(ended.contains("refused the other side's offer"), "{ended}");
        assert!(
            !taker.said(&format!("settle {trade} signed")),
            "never signed"
        );
        let counted = taker.metrics()?;
        assert!(
            counted.contains("darkswap_client_settle_refused_total{reason=\"runes_claim\"} 1"),
            "{counted}"
        );
        Ok(())
    })?;
    maker.abort();
    Ok(())
}
