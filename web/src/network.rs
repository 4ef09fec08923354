//! Starts the trader's node in the page: identity → relay description → node → events into the
//! reducer.

use std::time::Duration;

use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::Multiaddr;
use darkswap_net::relay_info::fetch_relay_info;
use std::collections::BTreeMap;

use darkswap_net::libp2p::PeerId;
use darkswap_net::{
    new_node, persist, Command, NodeConfig, NodeEvent, NodeHandle, OwnOrder, Trade, TradingEvent,
};
use darkswap_orderbook::OrderId;
use futures::StreamExt;
use yew::UseReducerDispatcher;

use crate::state::{Action, AppState};
use crate::storage::{get_bytes, put_bytes};

const TRADING_STORE: &str = "trading";

/// Our orders and trades as last saved to IndexedDB, so they survive a reload. Keys carry the
/// PeerId, so another identity in the same browser never sees them.
struct Saved {
    me: PeerId,
    orders: BTreeMap<OrderId, OwnOrder>,
    trades: BTreeMap<[u8; 16], Trade>,
}

impl Saved {
    fn new(me: PeerId) -> Self {
        Saved {
            me,
            orders: BTreeMap::new(),
            trades: BTreeMap::new(),
        }
    }

    fn key(&self, what: &str) -> String {
        format!("{what}/{}", self.me)
    }

    async fn load(&self) -> Result<(Vec<OwnOrder>, Vec<Trade>), String> {
        let orders = get_bytes(TRADING_STORE, &self.key("orders"))
            .await?
            .map(|b| persist::decode_orders(&b, &self.me))
            .unwrap_or_default();
        let trades = get_bytes(TRADING_STORE, &self.key("trades"))
            .await?
            .map(|b| persist::decode_trades(&b))
            .unwrap_or_default();
        Ok((orders, trades))
    }

    /// Records what an event changed and writes that part back.
    async fn apply(&mut self, event: &TradingEvent) -> Result<(), String> {
        match event {
            TradingEvent::OrderPlaced(o) | TradingEvent::OrderReduced(o) => {
                self.orders.insert(o.id, o.clone());
            }
            TradingEvent::OrderCancelled { id, .. } | TradingEvent::OrderWithdrawn { id, .. } => {
                self.orders.remove(id);
            }
            TradingEvent::Trade(t) => {
                self.trades.insert(t.id, t.clone());
                while self.trades.len() > darkswap_net::MAX_TRADES {
                    let oldest = self
                        .trades
                        .values()
                        .min_by_key(|t| t.updated_at_ms)
                        .map(|t| t.id);
                    match oldest {
                        Some(id) => self.trades.remove(&id),
                        None => break,
                    };
                }
                let bytes = persist::encode_trades(self.trades.values());
                return put_bytes(TRADING_STORE, &self.key("trades"), &bytes).await;
            }
            _ => return Ok(()),
        }
        let bytes = persist::encode_orders(self.orders.values());
        put_bytes(TRADING_STORE, &self.key("orders"), &bytes).await
    }
}

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
    let me = keypair.public().to_peer_id();
    let mut config = NodeConfig::new(addrs);
    match crate::credentials::load(&me).await {
        Ok((credential, token)) => {
            dispatch.dispatch(Action::AuthMethod(match credential {
                darkswap_auth::client::Credential::Identity => "identity",
                darkswap_auth::client::Credential::SharedKey(_) => "shared_key",
            }));
            config.credential = credential;
            // An empty value is a token forgotten on purpose (the method changed).
            config.auth_token = token.filter(|t| !t.is_empty());
        }
        Err(e) => dispatch.dispatch(Action::TradingError(format!(
            "cannot read your relay credentials ({e}); using your identity key"
        ))),
    }
    let (node, handle, mut events) = match new_node(keypair, config).await {
        Ok(parts) => parts,
        Err(e) => {
            dispatch.dispatch(Action::RelayUnreachable(e.to_string()));
            return None;
        }
    };
    wasm_bindgen_futures::spawn_local(node.run());
    {
        let dispatch = dispatch.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                dispatch.dispatch(Action::MetricsTick(darkswap_net::unix_time_ms()));
                futures_timer::Delay::new(Duration::from_millis(
                    darkswap_net::metrics::SAMPLE_INTERVAL_MS,
                ))
                .await;
            }
        });
    }
    let mut saved = Saved::new(handle.local_peer_id());
    match saved.load().await {
        Ok((orders, trades)) => {
            if !orders.is_empty() || !trades.is_empty() {
                if let Err(e) = handle.command(Command::Restore { orders, trades }) {
                    dispatch.dispatch(Action::TradingError(format!(
                        "cannot restore your orders: {e}"
                    )));
                }
            }
        }
        Err(e) => dispatch.dispatch(Action::TradingError(format!(
            "cannot read your saved orders and trades: {e}"
        ))),
    }
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(event) = events.next().await {
            if let NodeEvent::Auth(darkswap_net::AuthEvent::Granted { token, .. }) = &event {
                if let Err(e) = crate::credentials::save_token(&me, token).await {
                    dispatch.dispatch(Action::TradingError(format!(
                        "cannot keep the relay's token: {e}"
                    )));
                }
            }
            if let NodeEvent::Trading(trading) = &event {
                if let Err(e) = saved.apply(trading).await {
                    dispatch.dispatch(Action::TradingError(format!(
                        "cannot save your orders and trades: {e}"
                    )));
                }
            }
            dispatch.dispatch(Action::Node(Box::new(event)));
        }
    });
    Some(handle)
}
