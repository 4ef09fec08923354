//! A trader's relay link moves to another relay of its pool, with real relay binaries: when its
//! relay dies (SIGKILL), a trader that learned a second relay from the records and measured it
//! fails over to it at once, is reserved there, publishes its orders again through it and keeps
//! trading; a relay that refuses the trader is left for one that lets it in, and ranked last.

use std::time::Duration;

use darkswap_net::libp2p::PeerId;
use darkswap_net::{NodeConfig, NodeEvent, RelayStatus};
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
