//! Trade negotiation between native traders through the real relay: take → reserve → accept
//! → both sign → agreed; the maker republishes what is left; racing takers never overfill.

use std::time::Duration;

use darkswap_net::{Command, NodeEvent, Trade, TradeRole, TradeState, TradingEvent};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::trade::Agreement;
use darkswap_tests::{sell, Peer, Ports, Relay};

const T: Duration = Duration::from_secs(30);

fn pair() -> Pair {
    Pair::parse("RUNE:TRADE/BTC").unwrap()
}

async fn trader(relay: &Relay) -> anyhow::Result<Peer> {
    Peer::trader(relay, &pair()).await
}

async fn finished_trade(peer: &mut Peer) -> anyhow::Result<Trade> {
    peer.wait_for(T, |e| match e {
        NodeEvent::Trading(TradingEvent::Trade(t)) if !t.state.is_open() => Some(t.clone()),
        _ => None,
    })
    .await
}

async fn see_order(peer: &mut Peer, id: OrderId, amount: u64) -> anyhow::Result<()> {
    peer.book_where(T, &pair(), |v| {
        v.orders.iter().any(|o| o.id == id && o.amount == amount)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_take_becomes_an_agreement_signed_by_both() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let order = maker.handle.place_order(pair(), sell(1_000, 150_000_000))?;
    see_order(&mut taker, order, 1_000).await?;

    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 300,
    })?;
    let taker_side = finished_trade(&mut taker).await?;
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(taker_side.state, TradeState::Agreed, "{taker_side:?}");
    assert_eq!(maker_side.state, TradeState::Agreed, "{maker_side:?}");
    assert_eq!(taker_side.id, maker_side.id);
    assert_eq!(
        (taker_side.role, maker_side.role),
        (TradeRole::Taker, TradeRole::Maker)
    );
    assert_eq!(taker_side.counterparty, maker.id());
    assert_eq!(maker_side.counterparty, taker.id());
    // Both hold the same agreement, signed by both.
    let encoded = taker_side.agreement.clone().unwrap();
    assert_eq!(Some(&encoded), maker_side.agreement.as_ref());
    let agreement = Agreement::decode(&encoded)?;
    assert_eq!((agreement.amount, agreement.quote_amount), (300, 450));
    Agreement::verify(
        &encoded,
        &maker.id(),
        maker_side.maker_signature.as_ref().unwrap(),
    )?;
    Agreement::verify(
        &encoded,
        &taker.id(),
        maker_side.taker_signature.as_ref().unwrap(),
    )?;
    // The maker republished what is left, and the taker's book shows it.
    see_order(&mut taker, order, 700).await?;
    Ok(())
}

#[tokio::test]
async fn racing_takers_never_buy_the_same_unit_twice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut takers = Vec::new();
    for _ in 0..3 {
        takers.push(trader(&relay).await?);
    }
    let order = maker.handle.place_order(pair(), sell(100, 100_000_000))?;
    for t in &mut takers {
        see_order(t, order, 100).await?;
    }
    // All three ask for 60 of the 100 at once.
    for t in &takers {
        t.handle.command(Command::TakeOrder {
            pair: pair(),
            order_id: order,
            amount: 60,
        })?;
    }
    let mut agreed = 0;
    let mut rejected = Vec::new();
    for t in &mut takers {
        let trade = finished_trade(t).await?;
        match trade.state {
            TradeState::Agreed => agreed += 1,
            TradeState::Rejected { reason } => rejected.push(reason),
            other => panic!("unexpected end state {other:?}"),
        }
    }
    assert_eq!(agreed, 1, "exactly one taker gets 60 of 100");
    assert_eq!(rejected.len(), 2);
    for reason in &rejected {
        assert!(reason.contains("available"), "clear rejection: {reason}");
    }
    see_order(&mut takers[0], order, 40).await?;
    Ok(())
}

#[tokio::test]
async fn a_take_of_a_missing_or_too_small_amount_is_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let mut spec = sell(100, 100_000_000);
    spec.min_fill = 50;
    let order = maker.handle.place_order(pair(), spec)?;
    see_order(&mut taker, order, 100).await?;
    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 10,
    })?;
    let reason = taker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::OrderFailed { reason }) => Some(reason.clone()),
            _ => None,
        })
        .await?;
    assert!(reason.contains("minimum fill is 50"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_taker_that_restarts_after_countersigning_resumes_to_the_same_end() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut maker = trader(&relay).await?;
    let key = darkswap_net::libp2p::identity::Keypair::generate_ed25519();
    let config = darkswap_net::NodeConfig::new(vec![relay.tcp_addr()]);
    let mut taker = Peer::start_keyed(key.clone(), config.clone()).await?;
    taker.reserved().await?;
    taker.handle.command(Command::WatchPair { pair: pair() })?;
    let order = maker.handle.place_order(pair(), sell(100, 100_000_000))?;
    see_order(&mut taker, order, 100).await?;
    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 30,
    })?;
    // The taker has countersigned (state accepted) and then "reloads": its node stops.
    let accepted = taker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::Trade(t)) if t.state == TradeState::Accepted => {
                Some(t.clone())
            }
            _ => None,
        })
        .await?;
    assert!(accepted.taker_signature.is_some());
    drop(taker);
    // The same trader comes back with its saved trade: it confirms again and both agree.
    let mut again = Peer::start_keyed(key, config).await?;
    again.reserved().await?;
    again.handle.command(Command::Restore {
        orders: Vec::new(),
        trades: vec![accepted.clone()],
    })?;
    let resumed = again
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::Trade(t))
                if t.id == accepted.id && !t.state.is_open() =>
            {
                Some(t.clone())
            }
            _ => None,
        })
        .await?;
    assert_eq!(resumed.state, TradeState::Agreed, "{resumed:?}");
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(maker_side.state, TradeState::Agreed);
    assert_eq!(maker_side.id, accepted.id);
    Ok(())
}
