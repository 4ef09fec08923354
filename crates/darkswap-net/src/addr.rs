//! The client's address policy: in which order to try a relay's addresses on this target.

use darkswap_proto::addr::{transport_kind, TransportKind};
use libp2p::Multiaddr;

/// Orders addresses by preference for this target: in the browser WebRTC-direct first (no TLS
/// certificate needed, UDP), then WebSocket; natively TCP first. Addresses this target cannot
/// dial are dropped.
pub fn sort_for_dialing(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    let rank = |a: &Multiaddr| -> Option<u8> {
        let kind = transport_kind(a);
        if cfg!(target_arch = "wasm32") {
            match kind {
                TransportKind::WebRtcDirect => Some(0),
                TransportKind::WebSocket => Some(1),
                _ => None,
            }
        } else {
            match kind {
                TransportKind::Tcp => Some(0),
                TransportKind::WebSocket => Some(1),
                _ => None,
            }
        }
    };
    let mut usable: Vec<(u8, Multiaddr)> = addrs
        .iter()
        .filter_map(|a| rank(a).map(|r| (r, a.clone())))
        .collect();
    usable.sort_by_key(|(r, _)| *r);
    usable.into_iter().map(|(_, a)| a).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_prefers_tcp_then_websocket() {
        let p = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let tcp: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{p}").parse().unwrap();
        let ws: Multiaddr = format!("/ip4/127.0.0.1/tcp/2/ws/p2p/{p}").parse().unwrap();
        let rtc: Multiaddr = format!("/ip4/127.0.0.1/udp/3/webrtc-direct/p2p/{p}")
            .parse()
            .unwrap();
        assert_eq!(
            sort_for_dialing(&[rtc, ws.clone(), tcp.clone()]),
            vec![tcp, ws]
        );
    }
}
