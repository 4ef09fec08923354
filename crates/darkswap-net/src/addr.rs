//! The client's address policy: in which order to try a relay's addresses on this target, and,
//! in a page, which of them to try first given the address the page was served from.

use darkswap_proto::addr::{transport_kind, TransportKind};
use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// Whether `addr` names a loopback IP.
fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

/// Orders addresses by preference for this target: in the browser WebRTC-direct first (no TLS
/// certificate needed, UDP), then WebSocket; natively TCP first. Addresses this target cannot
/// dial are dropped, and in the browser so is WebRTC-direct on loopback: Chromium gathers no
/// ICE candidates for loopback, so such a dial could only wait for its timeout (8 s) before the
/// WebSocket address behind it is tried.
pub fn sort_for_dialing(addrs: &[Multiaddr]) -> Vec<Multiaddr> {
    sort_for(addrs, cfg!(target_arch = "wasm32"))
}

/// [`sort_for_dialing`] for a browser or a native client.
fn sort_for(addrs: &[Multiaddr], browser: bool) -> Vec<Multiaddr> {
    let rank = |a: &Multiaddr| -> Option<u8> {
        let kind = transport_kind(a);
        if browser {
            match kind {
                TransportKind::WebRtcDirect if !is_loopback(a) => Some(0),
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

/// The host part of a URL (`http://host:port/path` → `host`; IPv6 keeps its brackets).
pub fn url_host(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|hostport| match hostport.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
            _ => hostport.to_string(),
        })
        .unwrap_or_default()
}

/// A page's order for the relay addresses its relay-info listed, given the URL it reached the
/// relay at: the addresses on that host first (a relay lists every interface it listens on, and
/// the one the browser already reached is the likeliest to work). On a loopback host only
/// WebSocket on loopback is kept: Chromium gathers no ICE candidates for loopback, so a WebRTC
/// dial there could only time out.
pub fn order_for_page(mut addrs: Vec<Multiaddr>, page_url: &str) -> Vec<Multiaddr> {
    let host = url_host(page_url);
    let bare = host.trim_matches(|c| c == '[' || c == ']');
    let loopback = host == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false);
    if loopback {
        let is_ws = |a: &Multiaddr| {
            a.iter()
                .any(|p| matches!(p, Protocol::Ws(_) | Protocol::Wss(_)))
        };
        addrs.retain(|a| {
            is_ws(a)
                && a.iter()
                    .any(|p| matches!(p, Protocol::Ip4(ip) if ip.is_loopback()))
        });
        return addrs;
    }
    let on_host = |a: &Multiaddr| {
        a.iter().any(|p| match p {
            Protocol::Ip4(ip) => ip.to_string() == host,
            Protocol::Ip6(ip) => ip.to_string() == bare,
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => h == host,
            _ => false,
        })
    };
    addrs.sort_by_key(|a| !on_host(a));
    addrs
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

    #[test]
    fn a_browser_prefers_webrtc_then_websocket_and_never_webrtc_on_loopback() {
        let p = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        let addr = |s: String| s.parse::<Multiaddr>().unwrap();
        let tcp = addr(format!("/ip4/10.77.0.1/tcp/1/p2p/{p}"));
        let ws = addr(format!("/ip4/10.77.0.1/tcp/2/ws/p2p/{p}"));
        let rtc = addr(format!("/ip4/10.77.0.1/udp/3/webrtc-direct/p2p/{p}"));
        let rtc_lo = addr(format!("/ip4/127.0.0.1/udp/3/webrtc-direct/p2p/{p}"));
        let rtc_lo6 = addr(format!("/ip6/::1/udp/3/webrtc-direct/p2p/{p}"));
        let ws_lo = addr(format!("/ip4/127.0.0.1/tcp/2/ws/p2p/{p}"));
        assert_eq!(
            sort_for(
                &[ws.clone(), tcp, rtc_lo, rtc.clone(), ws_lo.clone(), rtc_lo6],
                true
            ),
            vec![rtc, ws, ws_lo]
        );
    }

    #[test]
    fn a_page_tries_its_own_host_first_and_only_websocket_on_loopback() {
        let addr = |s: &str| s.parse::<Multiaddr>().unwrap();
        let listed = vec![
            addr("/ip4/10.0.0.5/udp/4003/webrtc-direct"),
            addr("/ip4/10.77.0.1/udp/4003/webrtc-direct"),
            addr("/ip4/10.77.0.1/tcp/4002/ws"),
            addr("/ip4/127.0.0.1/udp/4003/webrtc-direct"),
            addr("/ip4/127.0.0.1/tcp/4002/ws"),
        ];
        let ordered = order_for_page(listed.clone(), "http://10.77.0.1:8080/api/relay-info");
        assert_eq!(ordered[..2], listed[1..3]);
        assert_eq!(ordered.len(), listed.len());
        for url in [
            "http://127.0.0.1:8080/x",
            "http://localhost:8080/x",
            "http://[::1]:8080/x",
        ] {
            assert_eq!(
                order_for_page(listed.clone(), url),
                vec![listed[4].clone()],
                "{url}"
            );
        }
        assert_eq!(
            url_host("https://relay.example.org/api"),
            "relay.example.org"
        );
        assert_eq!(url_host("http://[::1]:8080/"), "[::1]");
        assert_eq!(url_host("not a url"), "");
    }
}
