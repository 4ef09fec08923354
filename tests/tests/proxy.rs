//! The relay behind the README's TLS proxy: Debian's nginx, configured with the README's own
//! ```nginx block, in front of the real relay binary. Traders reach nginx over TLS from their own
//! loopback addresses (127.0.0.2 and up stand for other machines); nginx reaches the relay from
//! 127.0.0.1 with a PROXY protocol header naming each. Without it every trader behind the proxy
//! shared one address and one allowance under every per-address limit.

use std::sync::Arc;
use std::time::Duration;

use darkswap_net::{NodeEvent, RelayStatus};
use darkswap_tests::hostile::{attacker, closed_within, connect_from, socket_of};
use darkswap_tests::nginx::Nginx;
use darkswap_tests::{Peer, Ports, Relay};
use tokio::io::AsyncWriteExt;

const T: Duration = Duration::from_secs(20);

const PROXY: &str = "127.0.0.1";

fn proxied(outcome: &str) -> String {
    format!("darkswap_relay_ws_proxy_headers_total{{outcome=\"{outcome}\"}}")
}

#[tokio::test]
async fn behind_the_readmes_nginx_each_trader_counts_under_its_own_address() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay_dir = dir.path().join("relay");
    let relay = Relay::start(
        &relay_dir,
        Ports::default(),
        &["--ws-trusted-proxy", PROXY, "--max-connections-per-ip", "2"],
    )?;
    let nginx_dir = dir.path().join("nginx");
    std::fs::create_dir_all(&nginx_dir)?;
    let nginx = Arc::new(
        Nginx::start_from_readme(
            &nginx_dir,
            socket_of(&relay.ws_addr())?,
            relay.http_socket()?,
        )
        .await?,
    );

    // Two traders at one address (127.0.0.2) hold its two connections.
    let crowded = nginx.wss_entrance_from(attacker(0)).await?;
    let mut first = Peer::start(vec![relay.ws_addr_via(crowded)]).await?;
    first.reserved().await.map_err(|e| {
        let m = relay.get("/metrics").map(|(_, b)| b).unwrap_or_default();
        let m: Vec<&str> = m
            .lines()
            .filter(|l| l.contains("proxy") || l.contains("denied"))
            .collect();
        anyhow::anyhow!("{e}; nginx: {}; metrics: {m:?}", nginx.error_log())
    })?;
    let mut second = Peer::start(vec![relay.ws_addr_via(crowded)]).await?;
    second.reserved().await?;
    // A third from there is refused for that address...
    let mut third = Peer::start(vec![relay.ws_addr_via(crowded)]).await?;
    relay
        .metric_eventually(
            r#"darkswap_relay_connections_denied_total{reason="ip_connection_limit"}"#,
            T,
            |v| v >= 1.0,
        )
        .await?;
    // ...while a trader at another address, through the same nginx, is served.
    let own = nginx.wss_entrance_from(attacker(1)).await?;
    let mut other = Peer::start(vec![relay.ws_addr_via(own)]).await?;
    other.reserved().await.map_err(|e| {
        anyhow::anyhow!(
            "the trader at 127.0.0.3 was not served: {e}; nginx: {}",
            nginx.error_log()
        )
    })?;
    let third_reserved = third
        .wait_for(Duration::from_secs(2), |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
        })
        .await;
    assert!(
        third_reserved.is_err(),
        "a third trader at 127.0.0.2 got in"
    );

    // The relay knows each trader by its own address (here in its audit log), not the proxy's.
    let audit = std::fs::read_to_string(relay_dir.join("audit.log"))?;
    let addr_of = |peer: &Peer| -> Vec<String> {
        audit
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["peer"] == peer.id().to_base58())
            .filter_map(|e| e["addr"].as_str().map(str::to_string))
            .collect()
    };
    for (peer, ip) in [
        (&first, "127.0.0.2"),
        (&second, "127.0.0.2"),
        (&other, "127.0.0.3"),
    ] {
        let addrs = addr_of(peer);
        assert!(!addrs.is_empty(), "no audit event for {}", peer.id());
        assert!(
            addrs
                .iter()
                .all(|a| a.starts_with(&format!("/ip4/{ip}/tcp/"))),
            "{addrs:?}"
        );
    }
    assert!(relay.metric(&proxied("accepted"))? >= 3.0);

    // The https half of the README's block serves the relay's HTTP side.
    let health = nginx.https_get(attacker(1), "/health").await?;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""status":"ok""#), "{health}");
    Ok(())
}

#[tokio::test]
async fn a_proxied_websocket_port_refuses_everyone_but_its_proxy_and_headerless_connections(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &["--ws-trusted-proxy", PROXY])?;
    let ws = socket_of(&relay.ws_addr())?;

    // Someone else, even with a header naming any address it likes: closed.
    let mut forged = connect_from(attacker(2), ws).await?;
    forged
        .write_all(b"PROXY TCP4 203.0.113.9 127.0.0.1 5000 4002\r\n")
        .await?;
    assert!(
        closed_within(&mut forged, T).await,
        "a forged header from 127.0.0.4"
    );
    relay
        .metric_eventually(&proxied("untrusted_source"), T, |v| v >= 1.0)
        .await?;

    // From the proxy's address: no header, a malformed one, one cut short.
    let mut plain = connect_from(PROXY.parse()?, ws).await?;
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: relay\r\n")
        .await?;
    assert!(closed_within(&mut plain, T).await, "no header");
    let mut malformed = connect_from(PROXY.parse()?, ws).await?;
    malformed
        .write_all(b"PROXY TCP4 203.0.113.300 127.0.0.1 5000 4002\r\n")
        .await?;
    assert!(closed_within(&mut malformed, T).await, "a malformed header");
    let mut short = connect_from(PROXY.parse()?, ws).await?;
    short.write_all(b"PROXY TCP4 203.0.113.9 ").await?;
    assert!(closed_within(&mut short, T).await, "a header cut short");
    for outcome in ["no_signature", "malformed", "timeout"] {
        relay
            .metric_eventually(&proxied(outcome), T, |v| v >= 1.0)
            .await?;
    }

    // A real trader dialing the WebSocket port itself (from the proxy's host, so as the proxy,
    // but with no header) is not served.
    let mut around = Peer::start(vec![relay.ws_addr()]).await?;
    let reserved = around
        .wait_for(Duration::from_secs(3), |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
        })
        .await;
    assert!(reserved.is_err(), "a trader got around the proxy");
    assert_eq!(relay.metric(&proxied("accepted")).unwrap_or(0.0), 0.0);
    Ok(())
}
