//! Abuse at the relay's edges, against the real binary: slow HTTP clients, half-open WebSocket
//! upgrades and STUN floods on the WebRTC-direct port. Each attacker comes from 127.0.0.2 (or
//! several 127.0.0.x), the honest trader from 127.0.0.1; every attack must be bounded, counted,
//! and leave the honest trader served.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use darkswap_net::libp2p::Multiaddr;
use darkswap_tests::hostile::{
    attacker, closed_within, socket_of, stun_binding_request, unfinished_requests,
};
use darkswap_tests::{Peer, Ports, Relay};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, UdpSocket};

const T: Duration = Duration::from_secs(20);

/// A trader over `addr` that holds a reservation; returns how long that took.
async fn honest_reservation(addr: Multiaddr) -> anyhow::Result<(Peer, Duration)> {
    let started = Instant::now();
    let mut peer = Peer::start(vec![addr]).await?;
    peer.reserved().await?;
    Ok((peer, started.elapsed()))
}

#[tokio::test]
async fn slow_http_clients_are_capped_per_address_and_cut_off_while_others_are_served(
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--http-max-connections-per-ip",
            "8",
            "--http-header-timeout-secs",
            "2",
        ],
    )?;
    let to = relay.http_socket()?;
    // Twelve connections that never finish their headers (slowloris), from one address.
    let mut slow = unfinished_requests(attacker(0), to, 12).await?;
    relay
        .metric_eventually(
            r#"darkswap_relay_http_connections_refused_total{reason="ip_limit"}"#,
            T,
            |v| v >= 4.0,
        )
        .await?;
    // Another address is served while the slow ones hold their share.
    let (status, body) = relay.get("/health")?;
    assert_eq!(status, 200, "{body}");
    // The held ones are cut off once their headers are late; the refused ones were closed.
    let started = Instant::now();
    for s in slow.iter_mut() {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "a slow client kept its connection"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    relay
        .metric_eventually(
            r#"darkswap_relay_http_connections_dropped_total{reason="header_timeout"}"#,
            T,
            |v| v >= 8.0,
        )
        .await?;
    // Only the scrape itself is open now.
    relay
        .metric_eventually("darkswap_relay_http_connections_open", T, |v| v <= 1.0)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_its_response_is_cut_off() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let web = tempfile::tempdir()?;
    std::fs::write(
        web.path().join("index.html"),
        "<!doctype html><title>t</title>",
    )?;
    std::fs::write(web.path().join("big.bin"), vec![7u8; 32 << 20])?;
    let relay = Relay::serving(
        dir.path(),
        web.path(),
        Ports::default(),
        &["--http-write-stall-secs", "2"],
    )?;
    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(4096)?;
    let mut s = socket.connect(relay.http_socket()?).await?;
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await?;
    // Never read: the relay's writes stall once the socket buffers are full.
    relay
        .metric_eventually(
            r#"darkswap_relay_http_connections_dropped_total{reason="write_stall"}"#,
            T,
            |v| v >= 1.0,
        )
        .await?;
    relay
        .metric_eventually("darkswap_relay_http_connections_open", T, |v| v <= 1.0)
        .await?;
    drop(s);
    Ok(())
}

#[tokio::test]
async fn half_open_websocket_upgrades_do_not_lock_traders_out() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let ws = socket_of(&relay.ws_addr())?;
    // One address opening 100 upgrades and never finishing them holds its 32.
    let mut half_open = unfinished_requests(attacker(0), ws, 100).await?;
    relay
        .metric_eventually(
            r#"darkswap_relay_connections_denied_total{reason="ip_pending_limit"}"#,
            T,
            |v| v >= 60.0,
        )
        .await?;
    // Twenty more addresses, 30 each: more than every handshake slot the relay has (512).
    for n in 1..=20 {
        half_open.extend(unfinished_requests(attacker(n), ws, 30).await?);
    }
    relay
        .metric_eventually(
            r#"darkswap_relay_connections_denied_total{reason="stream_pending_limit"}"#,
            T,
            |v| v >= 400.0,
        )
        .await?;
    let pending = relay.metric("darkswap_relay_handshakes_pending")?;
    assert!(
        pending <= 256.0,
        "{pending} TCP and WebSocket handshakes pending"
    );
    // A trader at another address reserves over WebSocket meanwhile.
    let (_trader, took) = honest_reservation(relay.ws_addr()).await?;
    eprintln!("reserved over WebSocket during the flood in {took:?}");
    drop(half_open);
    Ok(())
}

#[tokio::test]
async fn a_stun_flood_fills_only_the_webrtc_share_of_handshake_slots() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let webrtc = socket_of(&relay.webrtc_addr())?;
    // 40 addresses × 20 ports, each a new handshake: more than every slot the relay has (512),
    // and within each address's own cap, as a flood from many sources would be.
    let mut sockets = Vec::new();
    for n in 0..40 {
        for _ in 0..20 {
            sockets.push(UdpSocket::bind(SocketAddr::new(attacker(n), 0)).await?);
        }
    }
    for (n, s) in sockets.iter().enumerate() {
        let ufrag = format!("libp2p+webrtc+v1/flood{n:08}");
        s.send_to(&stun_binding_request(&ufrag, n as u64), webrtc)
            .await?;
        // Paced so that the relay's socket buffer does not drop them: every packet counts.
        if n % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    relay
        .metric_eventually(
            r#"darkswap_relay_connections_denied_total{reason="webrtc_pending_limit"}"#,
            T,
            |v| v >= 400.0,
        )
        .await?;
    let pending = relay.metric("darkswap_relay_handshakes_pending")?;
    assert!(pending <= 256.0, "{pending} WebRTC handshakes pending");
    // TCP and WebSocket traders still get handshake slots.
    let (_a, over_tcp) = honest_reservation(relay.tcp_addr()).await?;
    let (_b, over_ws) = honest_reservation(relay.ws_addr()).await?;
    eprintln!("reserved during the STUN flood: TCP {over_tcp:?}, WebSocket {over_ws:?}");
    Ok(())
}

/// Open file descriptors of a process.
fn open_fds(pid: u32) -> anyhow::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

/// libp2p-webrtc lets each incoming handshake open an mDNS socket and never closes it when the
/// handshake fails; with `webrtc_block_mdns` the relay keeps those sockets from opening
/// (`mdns_guard`). Handshakes that never finish must then leave no descriptor behind.
#[tokio::test]
async fn failed_webrtc_handshakes_leave_no_socket_behind() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--webrtc-block-mdns", "true"],
    )?;
    assert_eq!(
        relay.metric("darkswap_relay_webrtc_mdns_blocked")?,
        1.0,
        "another program holds 224.0.0.251:5353 with address reuse (an mDNS daemon?)"
    );
    let webrtc = socket_of(&relay.webrtc_addr())?;
    let before = open_fds(relay.pid())?;
    // 100 handshakes that stop after their first packet, from 5 addresses (within each cap).
    for n in 0..100u8 {
        let s = UdpSocket::bind(SocketAddr::new(attacker(n % 5), 0)).await?;
        let ufrag = format!("libp2p+webrtc+v1/abandoned{n:04}");
        s.send_to(&stun_binding_request(&ufrag, u64::from(n)), webrtc)
            .await?;
    }
    relay
        .metric_eventually("darkswap_relay_handshakes_pending", T, |v| v >= 90.0)
        .await?;
    // They time out after 10 s.
    relay
        .metric_eventually(
            r#"darkswap_relay_connections_denied_total{reason="handshake_failed"}"#,
            Duration::from_secs(30),
            |v| v >= 90.0,
        )
        .await?;
    let after = open_fds(relay.pid())?;
    assert!(
        after <= before + 5,
        "{before} descriptors before 100 abandoned handshakes, {after} after"
    );
    Ok(())
}
