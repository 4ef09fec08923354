//! Starts the trader's node in the page: identity → relay description → node → events into the
//! reducer.

use std::time::Duration;

use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::Multiaddr;
use darkswap_net::relay_info::fetch_relay_info;
use darkswap_net::{new_node, NodeConfig, NodeHandle};
use futures::StreamExt;
use yew::UseReducerDispatcher;

use crate::state::{Action, AppState};

/// Wait between attempts to fetch the relay's description while it is unreachable.
const RELAY_INFO_RETRY: Duration = Duration::from_secs(3);

/// Where to find the relay: `?relay=http://host:port` or the server that served the page.
pub fn relay_info_url() -> String {
    let location = web_sys::window().map(|w| w.location());
    let search = location
        .as_ref()
        .and_then(|l| l.search().ok())
        .unwrap_or_default();
    let from_query = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix("relay="))
        .and_then(|v| js_sys::decode_uri_component(v).ok())
        .map(String::from);
    let base =
        from_query.unwrap_or_else(|| location.and_then(|l| l.origin().ok()).unwrap_or_default());
    format!("{}/api/relay-info", base.trim_end_matches('/'))
}

/// Puts the addresses on the page's own host first: a relay lists every interface it listens
/// on, and the one the browser already reached is the likeliest to work. On a loopback host
/// WebSocket goes first: Chromium gathers no ICE candidates for loopback, so a WebRTC dial there
/// could only time out.
fn prefer_host(mut addrs: Vec<Multiaddr>, host: &str) -> Vec<Multiaddr> {
    let loopback = host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
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
            Protocol::Ip6(ip) => ip.to_string() == host.trim_matches(|c| c == '[' || c == ']'),
            Protocol::Dns(h) | Protocol::Dns4(h) | Protocol::Dns6(h) => h == host,
            _ => false,
        })
    };
    addrs.sort_by_key(|a| !on_host(a));
    addrs
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|hostport| match hostport.rsplit_once(':') {
            Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
            _ => hostport.to_string(),
        })
        .unwrap_or_default()
}

/// Runs the whole start-up; returns the node's handle once it runs.
pub async fn start(
    relay_url: String,
    dispatch: UseReducerDispatcher<AppState>,
) -> Option<NodeHandle> {
    let keypair = match crate::identity::load_or_create().await {
        Ok(k) => {
            dispatch.dispatch(Action::Identity(Ok(k.public().to_peer_id().to_base58())));
            k
        }
        Err(e) => {
            dispatch.dispatch(Action::Identity(Err(e)));
            return None;
        }
    };
    let addrs = loop {
        match fetch_relay_info(&relay_url).await {
            Ok((_, addrs)) => break addrs,
            Err(e) => {
                dispatch.dispatch(Action::RelayUnreachable(format!(
                    "{e}; retrying in {} s",
                    RELAY_INFO_RETRY.as_secs()
                )));
                futures_timer::Delay::new(RELAY_INFO_RETRY).await;
            }
        }
    };
    let addrs = prefer_host(addrs, &host_of(&relay_url));
    let (node, handle, mut events) = match new_node(keypair, NodeConfig::new(addrs)).await {
        Ok(parts) => parts,
        Err(e) => {
            dispatch.dispatch(Action::RelayUnreachable(e.to_string()));
            return None;
        }
    };
    wasm_bindgen_futures::spawn_local(node.run());
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = events.next().await {
            dispatch.dispatch(Action::Node(Box::new(event)));
        }
    });
    Some(handle)
}
