//! The real relay binary with real native peers on loopback.

use std::time::Duration;

use darkswap_net::{NodeEvent, RelayStatus};
use darkswap_tests::{relay_bin, Peer, Ports, Relay};
use futures::StreamExt;

const T: Duration = Duration::from_secs(20);

fn any_ports() -> Ports {
    Ports::default()
}

#[tokio::test]
async fn peers_reserve_find_each_other_and_message_through_a_circuit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &[])?;
    let mut a = Peer::reserved_on(&relay).await?;
    let mut b = Peer::reserved_on(&relay).await?;
    let b_id = b.id();
    a.wait_for(T, |e| match e {
        NodeEvent::Peers { peers, .. } if peers.contains(&b_id) => Some(()),
        _ => None,
    })
    .await?;

    let id = a.handle.send_message(b_id, "hello from A".into())?;
    let a_id = a.id();
    let (from, text) = b
        .wait_for(T, |e| match e {
            NodeEvent::MessageReceived { from, text, .. } => Some((*from, text.clone())),
            _ => None,
        })
        .await?;
    assert_eq!((from, text.as_str()), (a_id, "hello from A"));
    let rtt = a
        .wait_for(T, |e| match e {
            NodeEvent::MessageDelivered {
                id: got,
                rtt,
                accepted: true,
                ..
            } if *got == id => Some(*rtt),
            NodeEvent::MessageFailed { reason, .. } => panic!("delivery failed: {reason}"),
            _ => None,
        })
        .await?;
    assert!(rtt > Duration::ZERO);
    assert_eq!(relay.metric("darkswap_relay_circuits_accepted_total")?, 1.0);
    assert_eq!(relay.metric("darkswap_relay_reservations_active")?, 2.0);
    Ok(())
}

#[tokio::test]
async fn more_than_one_mib_crosses_one_circuit() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &[])?;
    let mut a = Peer::reserved_on(&relay).await?;
    let mut b = Peer::reserved_on(&relay).await?;
    let chunk = "x".repeat(darkswap_proto::MAX_MESSAGE_TEXT_BYTES);
    let count = (1024 * 1024 / chunk.len()) + 16; // > 1 MiB of text, plus framing
    let expected = count * chunk.len();
    let b_id = b.id();
    // The receiving application drains its events as it goes (a node waits on a full queue).
    let receiver = tokio::spawn(async move {
        let mut received = 0;
        while received < expected {
            match b.events.next().await {
                Some(NodeEvent::MessageReceived { text, .. }) => received += text.len(),
                Some(_) => {}
                None => break,
            }
        }
        received
    });
    let mut delivered = 0;
    for i in 0..count {
        let id = a.handle.send_message(b_id, chunk.clone())?;
        a.wait_for(T, |e| match e {
            NodeEvent::MessageDelivered {
                id: got,
                accepted: true,
                ..
            } if *got == id => Some(()),
            NodeEvent::MessageFailed { reason, .. } => panic!("message {i} failed: {reason}"),
            _ => None,
        })
        .await?;
        delivered += chunk.len();
    }
    assert!(delivered > 1024 * 1024);
    // All of it went through one circuit: the 128 KiB libp2p default would have cut it.
    assert_eq!(relay.metric("darkswap_relay_circuits_accepted_total")?, 1.0);
    assert_eq!(relay.metric("darkswap_relay_circuits_active")?, 1.0);
    let received = tokio::time::timeout(T, receiver).await??;
    assert_eq!(received, delivered);
    Ok(())
}

#[test]
fn restart_keeps_peer_id_and_certhash() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let first = Relay::start(dir.path(), any_ports(), &[])?;
    let (id, webrtc) = (first.peer_id, first.webrtc_addr().to_string());
    assert!(webrtc.contains("/certhash/"), "{webrtc}");
    assert!(first.stop()?.success(), "relay exits cleanly on SIGTERM");
    let second = Relay::start(dir.path(), any_ports(), &[])?;
    assert_eq!(second.peer_id, id);
    let certhash = |a: &str| a.split("/certhash/").nth(1).map(|s| s.to_string());
    assert_eq!(
        certhash(&second.webrtc_addr().to_string()),
        certhash(&webrtc)
    );
    Ok(())
}

#[tokio::test]
async fn over_limit_reservation_is_denied_and_counted() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &["--max-reservations", "1"])?;
    let _a = Peer::reserved_on(&relay).await?;
    let mut b = Peer::start(vec![relay.tcp_addr()]).await?;
    let reason = b
        .wait_for(T, |e| match e {
            NodeEvent::Relay(RelayStatus::Failed { reason, .. }) => Some(reason.clone()),
            NodeEvent::Relay(RelayStatus::Reserved { .. }) => panic!("second reservation accepted"),
            _ => None,
        })
        .await?;
    assert!(reason.contains("reservation refused"), "{reason}");
    // The relay counts the denial when libp2p-relay reports it, which can be a moment after the
    // client has read the refusal.
    relay
        .metric_eventually(
            "darkswap_relay_reservations_denied_total{reason=\"resource_limit_exceeded\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn peers_reconnect_and_reserve_again_after_a_relay_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ports = Ports::fixed();
    let relay = Relay::start(dir.path(), ports, &[])?;
    let mut a = Peer::reserved_on(&relay).await?;
    relay.stop()?;
    a.wait_for(T, |e| {
        matches!(e, NodeEvent::Relay(RelayStatus::Failed { .. })).then_some(())
    })
    .await?;
    let relay = Relay::start(dir.path(), ports, &[])?;
    a.reserved().await?;
    assert_eq!(relay.metric("darkswap_relay_reservations_active")?, 1.0);
    Ok(())
}

#[test]
fn http_endpoints_answer() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &[])?;
    let (status, body) = relay.get("/api/relay-info")?;
    assert_eq!(status, 200);
    let info = darkswap_proto::RelayInfo::parse(body.as_bytes())?;
    assert_eq!(info.peer_id, relay.peer_id.to_base58());
    assert!(info
        .addrs
        .iter()
        .any(|a| a.contains("/webrtc-direct/certhash/")));
    assert!(info.addrs.iter().any(|a| a.contains("/ws/")));
    let (status, body) = relay.get("/health")?;
    assert_eq!(status, 200);
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (status, body) = relay.get("/")?;
    assert_eq!(status, 503, "no web app built in /nonexistent");
    assert!(body.contains("not built"));
    Ok(())
}

fn run_relay_expecting_failure(args: &[&str]) -> anyhow::Result<String> {
    let out = std::process::Command::new(relay_bin())
        .args(args)
        .output()?;
    assert!(
        !out.status.success(),
        "relay should have failed with {args:?}"
    );
    let stderr = String::from_utf8(out.stderr)?;
    let line = stderr
        .lines()
        .find(|l| l.starts_with("darkswap-relay: "))
        .unwrap_or_else(|| panic!("no one-line error in: {stderr}"))
        .to_string();
    Ok(line)
}

#[test]
fn bad_config_busy_port_and_bad_key_are_clear_errors() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("relay.toml");
    std::fs::write(&config, "tcp_port = \"not a number\"\n")?;
    let line = run_relay_expecting_failure(&["--config", config.to_str().unwrap_or_default()])?;
    assert!(line.contains("invalid config file"), "{line}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = busy.local_addr()?.port().to_string();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap_or_default();
    let line = run_relay_expecting_failure(&[
        "--data-dir",
        data,
        "--listen-ip",
        "127.0.0.1",
        "--http-port",
        &port,
    ])?;
    assert!(line.contains("cannot bind HTTP listener"), "{line}");

    let bad = dir.path().join("bad");
    std::fs::create_dir_all(&bad)?;
    std::fs::write(bad.join("identity.key"), b"not a key")?;
    let line = run_relay_expecting_failure(&["--data-dir", bad.to_str().unwrap_or_default()])?;
    assert!(line.contains("is not a valid key"), "{line}");

    let line = run_relay_expecting_failure(&["--max-circuits", "0"])?;
    assert!(line.contains("max_circuits"), "{line}");
    Ok(())
}

#[tokio::test]
async fn a_relay_with_metrics_off_relays_and_says_metrics_are_off() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &["--metrics", "false"])?;
    let _a = Peer::reserved_on(&relay).await?;
    let (status, body) = relay.get("/metrics")?;
    assert_eq!(status, 404);
    assert!(body.contains("metrics are disabled"), "{body}");
    assert_eq!(relay.get("/health")?.0, 200);
    Ok(())
}

/// A request over its protocol's cap, or bytes that are not the protocol's message, gets no
/// answer on any of the relay's request-response protocols, is counted, and leaves the
/// connection working (an honest request on it is answered after).
#[tokio::test]
async fn oversized_and_garbage_requests_are_refused_and_counted_on_every_protocol(
) -> anyhow::Result<()> {
    use darkswap_net::libp2p::identity::Keypair;
    use darkswap_proto::auth::{AuthRequest, MAX_AUTH_REQUEST_BYTES};
    use darkswap_proto::book_sync::MAX_BOOK_SYNC_REQUEST_BYTES;
    use darkswap_proto::MAX_DIRECTORY_REQUEST_BYTES;
    use darkswap_tests::probe::Probe;

    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), any_ports(), &[])?;
    let cases = [
        (darkswap_auth::AUTH_PROTOCOL, MAX_AUTH_REQUEST_BYTES),
        (
            darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL,
            MAX_BOOK_SYNC_REQUEST_BYTES,
        ),
        (
            darkswap_proto::DIRECTORY_PROTOCOL,
            MAX_DIRECTORY_REQUEST_BYTES,
        ),
    ];
    for (protocol, cap) in cases {
        let mut probe = Probe::connect_raw(&relay, Keypair::generate_ed25519(), protocol).await?;
        let oversized = vec![0x0a; cap as usize + 1];
        // No answer: the stream fails, or closes with nothing on it.
        let none = |r: Option<Vec<u8>>| r.is_none_or(|b| b.is_empty());
        assert!(none(probe.raw(oversized).await?), "{protocol}: oversized");
        // Not protobuf: a field header naming a length far past the end.
        let garbage = vec![0x0a, 0xff, 0xff, 0x03];
        assert!(none(probe.raw(garbage).await?), "{protocol}: garbage");
        // The connection still serves: an honest auth request is answered.
        probe
            .request(AuthRequest::Challenge {
                method: darkswap_auth::Method::Identity,
            })
            .await?;
    }
    for protocol in ["auth", "book_sync", "directory"] {
        for reason in ["too_large", "malformed"] {
            let series = format!(
                "darkswap_relay_requests_unreadable_total{{protocol=\"{protocol}\",reason=\"{reason}\"}}"
            );
            assert_eq!(relay.metric(&series)?, 1.0, "{series}");
        }
    }
    Ok(())
}
