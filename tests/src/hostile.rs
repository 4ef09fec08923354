//! Hostile counterparts at the relay's edges, shared by `tests/edges.rs` and `edge-bench`: raw
//! TCP connections from a loopback address of the caller's choosing (127.0.0.2 and up stand for
//! other machines) that start a request and never finish it, and the first packet of a
//! WebRTC-direct handshake.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{anyhow, Result};
use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::Multiaddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The start of an HTTP request (or a WebSocket upgrade) whose headers never end.
pub const UNFINISHED_REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: relay\r\n";

/// The IP and TCP or UDP port an address names.
pub fn socket_of(addr: &Multiaddr) -> Result<SocketAddr> {
    let (mut ip, mut port) = (None, None);
    for p in addr.iter() {
        match p {
            Protocol::Ip4(v4) => ip = Some(IpAddr::V4(v4)),
            Protocol::Ip6(v6) => ip = Some(IpAddr::V6(v6)),
            Protocol::Tcp(n) | Protocol::Udp(n) => port = Some(n),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) => Ok(SocketAddr::new(ip, port)),
        _ => Err(anyhow!("{addr} names no IP and port")),
    }
}

/// A TCP connection to `to` from the loopback address `from`.
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    Ok(socket.connect(to).await?)
}

/// `n` connections from `from` to `to`, each having sent [`UNFINISHED_REQUEST`].
pub async fn unfinished_requests(from: IpAddr, to: SocketAddr, n: usize) -> Result<Vec<TcpStream>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = connect_from(from, to).await?;
        s.write_all(UNFINISHED_REQUEST).await?;
        held.push(s);
    }
    Ok(held)
}

/// A STUN binding request naming `ufrag` (RFC 5389: the header, then USERNAME), as the first
/// packet of a WebRTC-direct handshake is; libp2p-webrtc starts a handshake for each new one.
pub fn stun_binding_request(ufrag: &str, transaction: u64) -> Vec<u8> {
    let username = format!("{ufrag}:{ufrag}");
    let padded = username.len().div_ceil(4) * 4;
    let mut m = Vec::with_capacity(24 + padded);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&((4 + padded) as u16).to_be_bytes());
    m.extend_from_slice(&0x2112_A442u32.to_be_bytes());
    m.extend_from_slice(&transaction.to_be_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&0x0006u16.to_be_bytes());
    m.extend_from_slice(&(username.len() as u16).to_be_bytes());
    m.extend_from_slice(username.as_bytes());
    m.resize(24 + padded, 0);
    m
}

/// The loopback address that stands for attacker number `n` (127.0.0.2 and up).
pub fn attacker(n: u8) -> IpAddr {
    IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2 + n))
}

/// Whether the other side closed `stream` within `within` (reading drains whatever it sent).
pub async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
