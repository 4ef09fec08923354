//! The relay pool ranks relays by distance, with real relays on loopback put at different
//! distances by delaying forwarders (this kernel has no `netem`; see `darkswap_tests::delay`):
//! each far relay announces only the forwarder's address, so a client measures it through the
//! delay, as it would a relay across an ocean. It holds its reservations on the two nearest.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::{NodeConfig, NodeEvent};
use darkswap_tests::delay::Delay;
use darkswap_tests::{Peer, Ports, Relay};

#[tokio::test]
async fn the_pool_ranks_relays_by_their_distance() -> anyhow::Result<()> {
    let announce = ["--record-announce-secs", "1", "--record-ttl-secs", "30"];
    // One-way delays: round trips of about 10, 80 and 240 ms.
    let mut far = Vec::new();
    let mut delays = Vec::new();
    let mut dirs = Vec::new();
    for (name, one_way_ms) in [("near", 5u64), ("middle", 40), ("far", 120)] {
        let delay = Delay::start(Duration::from_millis(one_way_ms)).await?;
        let external = format!("/ip4/127.0.0.1/tcp/{}", delay.addr.port());
        let dir = tempfile::tempdir()?;
        let mut args = vec!["--relay-name", name, "--federation-accept", "any"];
        args.extend(announce);
        args.extend(["--external-addr", &external]);
        let relay = Relay::start(dir.path(), Ports::default(), &args)?;
        let port = relay
            .tcp_addr()
            .iter()
            .find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
            .expect("a TCP address");
        delay.forward_to(SocketAddr::from(([127, 0, 0, 1], port)));
        far.push(relay);
        delays.push(delay);
        dirs.push(dir);
    }
    // The serving relay peers with all three directly (on what they bind, not what they
    // announce): the relays' own links are not what is measured.
    let dir = tempfile::tempdir()?;
    let peers: Vec<String> = far.iter().map(|r| r.tcp_addr().to_string()).collect();
    let mut args = vec!["--relay-name", "serving"];
    args.extend(announce);
    for p in &peers {
        args.extend(["--peer", p]);
    }
    let serving = Relay::start(dir.path(), Ports::default(), &args)?;
    let mut config = NodeConfig::new(vec![serving.tcp_addr()]);
    config.records_interval = Duration::from_secs(1);
    let mut client = Peer::start_with(config).await?;
    client.reserved().await?;
    let ids: Vec<_> = far.iter().map(|r| r.peer_id).collect();
    let started = Instant::now();
    let report = client
        .wait_for(Duration::from_secs(60), |e| match e {
            NodeEvent::RelayPool(report)
                if ids.iter().all(|id| {
                    report
                        .relays
                        .iter()
                        .any(|r| r.relay == *id && r.rtt_ms.is_some() && r.rank.is_some())
                }) =>
            {
                Some(report.clone())
            }
            _ => None,
        })
        .await?;
    let seen: Vec<(String, f64, usize)> = ids
        .iter()
        .filter_map(|id| report.relays.iter().find(|r| r.relay == *id))
        .map(|r| (r.name.clone(), r.rtt_ms.unwrap_or(0.0), r.rank.unwrap_or(0)))
        .collect();
    eprintln!(
        "measured in {:.1} s: {seen:?}",
        started.elapsed().as_secs_f64()
    );
    // Each round trip at least its two delays; the ranks in the order of the distances.
    for ((name, rtt, _), floor) in seen.iter().zip([10.0, 80.0, 240.0]) {
        assert!(
            *rtt >= floor,
            "{name}: {rtt} ms is under the {floor} ms the delay makes"
        );
    }
    assert!(
        seen[0].2 < seen[1].2 && seen[1].2 < seen[2].2,
        "ranked out of the order of distance: {seen:?}"
    );
    let serving_rank = report
        .relays
        .iter()
        .find(|r| r.relay == serving.peer_id)
        .and_then(|r| r.rank);
    assert_eq!(
        serving_rank,
        Some(1),
        "the serving relay, on loopback, ranks first"
    );
    // Reserved on the two nearest (K = 2): the serving relay, and the near one as the standby.
    let mut standbys = report.standbys.clone();
    if standbys != [ids[0]] {
        client
            .wait_for(Duration::from_secs(30), |e| match e {
                NodeEvent::RelayPool(report) => {
                    standbys = report.standbys.clone();
                    (standbys == [ids[0]]).then_some(())
                }
                _ => None,
            })
            .await
            .map_err(|e| e.context(format!("standbys {standbys:?}")))?;
    }
    let reachable = client.reachable_through(2, Duration::from_secs(30)).await?;
    assert!(
        reachable[1].to_string().contains(&ids[0].to_string()),
        "{reachable:?}"
    );
    Ok(())
}
