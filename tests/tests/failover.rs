//! A trader's relay link moves to another relay of its pool, with real relay binaries: when its
//! relay dies (SIGKILL), a trader that learned a second relay from the records and measured it
//! fails over to it at once, is reserved there, publishes its orders again through it and keeps
//! trading; a relay that refuses the trader is left for one that lets it in, and ranked last;
//! a trader holds a standby reservation on a second relay, is reached through it by traders
//! there, and the standby takes over at once when its relay dies.

use std::time::Duration;

use darkswap_net::libp2p::PeerId;
use darkswap_net::negotiation::{Trade, TradeState};
use darkswap_net::{NodeConfig, NodeEvent, RelayStatus, TradingEvent};
use darkswap_tests::{sell, Peer, Ports, Relay};

const T: Duration = Duration::from_secs(30);

/// Relays that announce their records every second, kept 4 s.
const FAST: [&str; 4] = ["--record-announce-secs", "1", "--record-ttl-secs", "4"];

fn pair() -> darkswap_orderbook::Pair {
    darkswap_orderbook::Pair::parse("RUNE:FAILOVERTEST/BTC").expect("a pair")
}

/// B, and A peering with it (A lists B, B takes any relay that proves itself); `a_extra` are
/// more flags for A.
fn two_relays(
    da: &std::path::Path,
    db: &std::path::Path,
    a_extra: &[&str],
) -> anyhow::Result<(Relay, Relay)> {
    // B takes any relay that proves itself: A.
    let mut b_args = FAST.to_vec();
    b_args.extend(["--federation-accept", "any"]);
    let b = Relay::start(db, Ports::default(), &b_args)?;
    let b_addr = b.tcp_addr().to_string();
    let mut a_args = FAST.to_vec();
    a_args.extend(["--peer", &b_addr]);
    a_args.extend(a_extra);
    let a = Relay::start(da, Ports::default(), &a_args)?;
    Ok((a, b))
}

/// A client of `relay` that asks it for records every second.
fn config_on(relay: &Relay) -> NodeConfig {
    let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
    config.records_interval = Duration::from_secs(1);
    config
}

/// Waits until `peer`'s pool has `relay` measured (a probe answered).
async fn measured(peer: &mut Peer, relay: PeerId) -> anyhow::Result<()> {
    peer.wait_for(T, |e| match e {
        NodeEvent::RelayPool(report) => report
            .relays
            .iter()
            .any(|r| r.relay == relay && r.rtt_ms.is_some() && r.rank.is_some())
            .then_some(()),
        _ => None,
    })
    .await
}

/// The move of the link that `peer` reports next: (from, to).
async fn moved(peer: &mut Peer) -> anyhow::Result<(PeerId, PeerId)> {
    peer.wait_for(T, |e| match e {
        NodeEvent::Relay(RelayStatus::FailingOver { from, to }) => Some((*from, *to)),
        _ => None,
    })
    .await
}

const ACCEPTED_ORDERS: &str = "darkswap_relay_order_messages_accepted_total{kind=\"order\"}";

#[tokio::test]
async fn a_trader_moves_to_another_relay_when_its_own_dies_and_keeps_trading() -> anyhow::Result<()>
{
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &[])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut maker = Peer::trader_with(config_on(&a), &pair()).await?;
    measured(&mut maker, b.peer_id).await?;
    let mut taker = Peer::trader(&b, &pair()).await?;
    // An order made on A reaches the taker on B through the relays' mesh (retried: gossip
    // meshes form on the next heartbeat).
    let mut before = None;
    for _ in 0..5 {
        let id = maker.handle.place_order(pair(), sell(42, 300))?;
        let seen = taker
            .book_where(Duration::from_secs(4), &pair(), |v| {
                v.orders.iter().any(|o| o.id == id)
            })
            .await;
        if seen.is_ok() {
            before = Some(id);
            break;
        }
    }
    let before = before.ok_or_else(|| anyhow::anyhow!("an order on A never reached B"))?;
    let accepted = b.metric(ACCEPTED_ORDERS)?;

    let a_id = a.peer_id;
    a.kill()?;
    assert_eq!(moved(&mut maker).await?, (a_id, b.peer_id));
    maker.reserved().await?;
    // The maker published its orders again through B: with A dead, nothing else can bring B
    // an order message.
    b.metric_eventually(ACCEPTED_ORDERS, T, |v| v > accepted)
        .await?;
    // It keeps trading: an order made now reaches the taker on B, and a newcomer on B syncs
    // both.
    let after = maker.handle.place_order(pair(), sell(43, 301))?;
    taker
        .book_where(T, &pair(), |v| v.orders.iter().any(|o| o.id == after))
        .await?;
    let mut newcomer = Peer::start_with(NodeConfig::new(vec![b.tcp_addr()])).await?;
    newcomer.reserved().await?;
    newcomer
        .handle
        .command(darkswap_net::Command::WatchPair { pair: pair() })?;
    newcomer
        .book_where(T, &pair(), |v| {
            [before, after]
                .iter()
                .all(|id| v.orders.iter().any(|o| o.id == *id))
        })
        .await?;
    Ok(())
}

/// With failover off, the trader waits for its relay instead: no move, and B never hears from
/// it (the test that the move above is the node's doing, not the relays').
#[tokio::test]
async fn with_failover_off_the_trader_waits_for_its_relay() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &[])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut config = config_on(&a);
    config.fail_over = false;
    let mut maker = Peer::trader_with(config, &pair()).await?;
    measured(&mut maker, b.peer_id).await?;
    a.kill()?;
    let outcome = maker
        .wait_for(Duration::from_secs(8), |e| match e {
            NodeEvent::Relay(status @ RelayStatus::FailingOver { .. }) => Some(status.clone()),
            NodeEvent::Relay(status @ RelayStatus::Reserved { .. }) => Some(status.clone()),
            _ => None,
        })
        .await;
    assert!(outcome.is_err(), "moved or reserved anyway: {outcome:?}");
    Ok(())
}

/// A relay that will not let the trader in (identity challenges answered only by listed
/// peers): a trader that knows another relay from its last visit (its saved pool) leaves the
/// refusing one for it, and its pool ranks the refusing one last, with the refusal as the
/// reason.
#[tokio::test]
async fn a_relay_that_refuses_the_trader_is_left_for_one_that_lets_it_in() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &["--auth-identity-anyone", "false"])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    // The last visit, on B: the pool it kept knows both relays, B measured.
    let mut visit = Peer::start_with(config_on(&b)).await?;
    visit.reserved().await?;
    let saved = visit
        .wait_for(T, |e| match e {
            NodeEvent::RelayPool(report)
                if report.relays.iter().any(|r| r.relay == a.peer_id)
                    && report
                        .relays
                        .iter()
                        .any(|r| r.relay == b.peer_id && r.rtt_ms.is_some()) =>
            {
                Some(report.saved.clone())
            }
            _ => None,
        })
        .await?;
    drop(visit);

    let mut config = config_on(&a);
    config.saved_relay_pool = Some(saved);
    let mut trader = Peer::start_with(config).await?;
    // It goes to A first (the relay it was given), which refuses it; then it moves.
    trader
        .wait_for(T, |e| {
            matches!(e, NodeEvent::Auth(darkswap_net::AuthEvent::Refused { .. })).then_some(())
        })
        .await?;
    assert_eq!(moved(&mut trader).await?, (a.peer_id, b.peer_id));
    trader.reserved().await?;
    let report = trader
        .wait_for(T, |e| match e {
            NodeEvent::RelayPool(report) => Some(report.clone()),
            _ => None,
        })
        .await?;
    let a_view = report
        .relays
        .iter()
        .find(|r| r.relay == a.peer_id)
        .ok_or_else(|| anyhow::anyhow!("A left the pool"))?;
    assert_eq!(
        a_view.last_failure,
        Some(darkswap_net::Failure::AuthRefused),
        "{a_view:?}"
    );
    assert_eq!(
        report.relays[0].relay, b.peer_id,
        "B ranks first: {:?}",
        report.relays
    );
    Ok(())
}

/// The next trade `peer` reports finished.
async fn finished(peer: &mut Peer) -> anyhow::Result<Trade> {
    peer.wait_for(T, |e| match e {
        NodeEvent::Trading(TradingEvent::Trade(t)) if !t.state.is_open() => Some((**t).clone()),
        _ => None,
    })
    .await
}

/// Takes `amount` of `order` from `taker` and returns both ends of the trade once finished.
async fn take(
    taker: &mut Peer,
    maker: &mut Peer,
    order: darkswap_orderbook::OrderId,
    amount: u64,
) -> anyhow::Result<(Trade, Trade)> {
    taker.handle.command(darkswap_net::Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount,
        trade_id: darkswap_net::new_trade_id(),
        settlement: Default::default(),
    })?;
    let taker_side = finished(taker).await?;
    if taker_side.state != TradeState::Agreed {
        return Ok((taker_side.clone(), taker_side));
    }
    Ok((taker_side, finished(maker).await?))
}

/// An order of `maker`'s that `taker` sees (retried: gossip meshes form on the next heartbeat).
async fn order_seen(maker: &Peer, taker: &mut Peer) -> anyhow::Result<darkswap_orderbook::OrderId> {
    for _ in 0..5 {
        let id = maker.handle.place_order(pair(), sell(1_000, 100_000_000))?;
        if taker
            .book_where(Duration::from_secs(4), &pair(), |v| {
                v.orders.iter().any(|o| o.id == id)
            })
            .await
            .is_ok()
        {
            return Ok(id);
        }
    }
    anyhow::bail!("the maker's order never reached the taker")
}

/// The relay statuses `peer` reports until it is reserved again.
async fn statuses_until_reserved(peer: &mut Peer) -> anyhow::Result<Vec<RelayStatus>> {
    let mut seen = Vec::new();
    peer.wait_for(T, |e| match e {
        NodeEvent::Relay(status) => {
            seen.push(status.clone());
            matches!(status, RelayStatus::Reserved { .. }).then_some(())
        }
        _ => None,
    })
    .await?;
    Ok(seen)
}

/// K = 2 (the default): a trader on A also holds a standby reservation on B and is reachable
/// through both; a trader that holds one reservation, on B, takes its order through B. When A
/// dies, the standby becomes the link at once (no dial, no authentication), the maker's orders
/// are published again through B, and trading goes on.
#[tokio::test]
async fn a_standby_reservation_reaches_traders_on_another_relay_and_takes_over_at_once(
) -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &[])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut maker = Peer::trader_with(config_on(&a), &pair()).await?;
    let reachable = maker.reachable_through(2, T).await?;
    let through = |relay: PeerId, addr: &darkswap_net::libp2p::Multiaddr| {
        addr.to_string()
            .contains(&format!("/p2p/{relay}/p2p-circuit/p2p/{}", maker.id()))
    };
    assert!(through(a.peer_id, &reachable[0]), "{reachable:?}");
    assert!(through(b.peer_id, &reachable[1]), "{reachable:?}");
    b.metric_eventually("darkswap_relay_reservations_active", T, |v| v >= 1.0)
        .await?;

    let mut config = NodeConfig::new(vec![b.tcp_addr()]);
    config.reservations = 1;
    let mut taker = Peer::trader_with(config, &pair()).await?;
    let order = order_seen(&maker, &mut taker).await?;
    let (taker_side, maker_side) = take(&mut taker, &mut maker, order, 300).await?;
    assert_eq!(taker_side.state, TradeState::Agreed, "{taker_side:?}");
    assert_eq!(maker_side.state, TradeState::Agreed, "{maker_side:?}");

    let accepted = b.metric(ACCEPTED_ORDERS)?;
    let a_id = a.peer_id;
    let killed = std::time::Instant::now();
    a.kill()?;
    assert_eq!(moved(&mut maker).await?, (a_id, b.peer_id));
    let statuses = statuses_until_reserved(&mut maker).await?;
    println!(
        "the standby on B took over {:.0} ms after A was killed",
        killed.elapsed().as_secs_f64() * 1e3
    );
    assert!(
        !statuses
            .iter()
            .any(|s| matches!(s, RelayStatus::Connecting { .. })),
        "the maker dialed again instead of taking the standby: {statuses:?}"
    );
    // Published again through B, and reachable through B alone (until a new standby).
    b.metric_eventually(ACCEPTED_ORDERS, T, |v| v > accepted)
        .await?;
    let (again, _) = take(&mut taker, &mut maker, order, 100).await?;
    assert_eq!(again.state, TradeState::Agreed, "{again:?}");
    Ok(())
}

/// The control: a maker holding one reservation (K = 1), on A, cannot be reached by a trader
/// on B only; the take fails and says why.
#[tokio::test]
async fn without_a_standby_a_trader_on_another_relay_cannot_reach_the_maker() -> anyhow::Result<()>
{
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &[])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let mut config = config_on(&a);
    config.reservations = 1;
    let mut maker = Peer::trader_with(config, &pair()).await?;
    let mut config = NodeConfig::new(vec![b.tcp_addr()]);
    config.reservations = 1;
    let mut taker = Peer::trader_with(config, &pair()).await?;
    let order = order_seen(&maker, &mut taker).await?;
    let (taker_side, _) = take(&mut taker, &mut maker, order, 300).await?;
    match &taker_side.state {
        TradeState::Aborted { reason } => assert!(reason.contains("offline"), "{reason}"),
        other => panic!("the take did not fail for want of a path: {other:?}"),
    }
    Ok(())
}

/// A trade in flight when the relay carrying it dies completes through another relay. The
/// maker (on A, standby on B) reaches A through a forwarder; the taker holds one reservation,
/// on A. After a first trade (the connection and the end-to-end session are up), the forwarder
/// delays what the maker sends by 3 s: the next take reaches the maker, which reserves the
/// amount and answers, and A dies while the answer is on its way. The taker moves to B, reaches the maker
/// through the maker's standby reservation there, sends the same take again, gets the same
/// agreement, and both sides agree; the maker's order is reduced once.
#[tokio::test]
async fn a_trade_in_flight_when_its_relay_dies_completes_through_another() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (a, b) = two_relays(da.path(), db.path(), &[])?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    let path = darkswap_tests::delay::Delay::start(Duration::ZERO).await?;
    let a_port = a
        .tcp_addr()
        .iter()
        .find_map(|p| match p {
            darkswap_net::libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("A has no TCP address"))?;
    path.forward_to(std::net::SocketAddr::from(([127, 0, 0, 1], a_port)));
    let through_path: darkswap_net::libp2p::Multiaddr =
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{}", path.addr.port(), a.peer_id).parse()?;
    let mut config = NodeConfig::new(vec![through_path]);
    config.records_interval = Duration::from_secs(1);
    let mut maker = Peer::trader_with(config, &pair()).await?;
    maker.reachable_through(2, T).await?;
    let mut config = config_on(&a);
    config.reservations = 1;
    let mut taker = Peer::trader_with(config, &pair()).await?;
    measured(&mut taker, b.peer_id).await?;
    let order = order_seen(&maker, &mut taker).await?;
    let (first, _) = take(&mut taker, &mut maker, order, 100).await?;
    assert_eq!(first.state, TradeState::Agreed, "{first:?}");

    path.slow_outbound(Duration::from_secs(3));
    let trade_id = darkswap_net::new_trade_id();
    taker.handle.command(darkswap_net::Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 300,
        trade_id,
        settlement: Default::default(),
    })?;
    // The maker took it and answered; its answer has 3 s to go.
    maker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::Trade(t))
                if t.id == trade_id && t.state == TradeState::Accepted =>
            {
                Some(())
            }
            _ => None,
        })
        .await?;
    a.kill()?;
    let taker_side = finished(&mut taker).await?;
    assert_eq!(taker_side.id, trade_id);
    assert_eq!(taker_side.state, TradeState::Agreed, "{taker_side:?}");
    let maker_side = finished(&mut maker).await?;
    assert_eq!(
        (maker_side.id, maker_side.state),
        (trade_id, TradeState::Agreed)
    );
    // 100 and 300 taken, each once: the taker's book on B shows what is left.
    taker
        .book_where(T, &pair(), |v| {
            v.orders.iter().any(|o| o.id == order && o.amount == 600)
        })
        .await?;
    Ok(())
}
