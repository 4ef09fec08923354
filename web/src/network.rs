//! Starts the trader's node in the page: identity → relay description → node → events into the
//! reducer.

use std::rc::Rc;
use std::time::Duration;

use darkswap_net::relay_info::fetch_relay_info;
use darkswap_net::saved::{Record, SavedTrading};
use darkswap_net::{new_node, order_for_page, Command, NodeConfig, NodeEvent, NodeHandle};
use futures::StreamExt;
use gloo_timers::future::sleep;
use yew::UseReducerDispatcher;

use crate::identity::Loaded;
use crate::settle::Settler;
use crate::state::{Action, AppState, KeysAtRest};
use crate::storage::{get_bytes, put_bytes};
use crate::timing::{reached, Milestone};

/// The IndexedDB store of own orders and trades (keys from [`SavedTrading`]).
const TRADING_STORE: &str = "trading";

/// Wait between attempts to fetch the relay's description while it is unreachable.
const RELAY_INFO_RETRY: Duration = Duration::from_secs(3);

/// The page address's query parameter `name`, decoded.
fn query_param(name: &str) -> Option<String> {
    let search = web_sys::window()?.location().search().ok()?;
    let prefix = format!("{name}=");
    search
        .trim_start_matches('?')
        .split('&')
        .find_map(|kv| kv.strip_prefix(prefix.as_str()))
        .and_then(|v| js_sys::decode_uri_component(v).ok())
        .map(String::from)
}

/// Where to find the relay: `?relay=http://host:port` or the server that served the page.
pub fn relay_info_url() -> String {
    let base = query_param("relay").unwrap_or_else(|| {
        web_sys::window()
            .and_then(|w| w.location().origin().ok())
            .unwrap_or_default()
    });
    format!("{}/api/relay-info", base.trim_end_matches('/'))
}

/// Runs the whole start-up; returns the node's handle once it runs.
pub async fn start(
    relay_url: String,
    dispatch: UseReducerDispatcher<AppState>,
    settler: Rc<Settler>,
) -> Option<NodeHandle> {
    let keypair = match crate::identity::load_or_create().await {
        Ok(Loaded::Ready(k)) => {
            dispatch.dispatch(Action::KeysAtRest(KeysAtRest::Clear));
            *k
        }
        Ok(Loaded::Locked) => {
            // Nothing starts before the trader gives the password (the unlock form).
            dispatch.dispatch(Action::KeysAtRest(KeysAtRest::Locked));
            let (k, sealed) = crate::at_rest::wait_unlocked().await?;
            dispatch.dispatch(Action::KeysAtRest(if sealed {
                KeysAtRest::Unlocked
            } else {
                KeysAtRest::Clear
            }));
            k
        }
        Err(e) => {
            dispatch.dispatch(Action::Identity(Err(e.to_string())));
            return None;
        }
    };
    reached(Milestone::Identity);
    dispatch.dispatch(Action::Identity(Ok(keypair
        .public()
        .to_peer_id()
        .to_base58())));
    let (info, addrs) = loop {
        match fetch_relay_info(&relay_url).await {
            Ok(fetched) => {
                reached(Milestone::RelayInfo);
                break fetched;
            }
            Err(e) => {
                let every = RELAY_INFO_RETRY.as_secs();
                let words = match &e {
                    darkswap_net::relay_info::FetchError::Network { url, .. } => format!(
                        "cannot reach the relay at {url}: check your connection, or the relay may be down; trying again every {every} s"
                    ),
                    darkswap_net::relay_info::FetchError::Status { url, status } => format!(
                        "the relay at {url} answered HTTP {status} (it may be restarting); trying again every {every} s"
                    ),
                    other => format!(
                        "the relay sent a description this page cannot use ({other}); trying again every {every} s"
                    ),
                };
                dispatch.dispatch(Action::RelayUnreachable(words));
                sleep(RELAY_INFO_RETRY).await;
            }
        }
    };
    let addrs = order_for_page(addrs, &relay_url);
    let me = keypair.public().to_peer_id();
    let mut config = NodeConfig::new(addrs);
    // `?reservations=K`: how many relays hold a reservation of the page's at once (2 by
    // default; 1 keeps only the one in use).
    if let Some(k) = query_param("reservations").and_then(|v| v.parse::<usize>().ok()) {
        config.reservations = k.max(1);
    }
    match crate::credentials::load(&me).await {
        Ok((credential, token)) => {
            dispatch.dispatch(Action::AuthMethod(crate::credentials::method_name(
                &credential,
            )));
            config.credential = credential;
            // An empty value is a token forgotten on purpose (the method changed).
            config.auth_token = token.filter(|t| !t.is_empty());
        }
        Err(e) => dispatch.dispatch(Action::TradingError(format!(
            "cannot read your relay credentials ({e}); using your identity key"
        ))),
    }
    // Without it, a relay that asks for a proof of work gets it searched for again.
    config.identity_stamp = crate::credentials::load_stamp(&me).await.unwrap_or(None);
    // What the last visit learned of the relays (every record is checked again).
    match crate::storage::get_value::<darkswap_net::SavedPool>(TRADING_STORE, RELAY_POOL_KEY).await
    {
        Ok(saved) => config.saved_relay_pool = saved,
        Err(e) => dispatch.dispatch(Action::TradingError(format!(
            "cannot read the relays this page knew ({e}); learning them again"
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
    reached(Milestone::NodeRunning);
    settler.attach(handle.clone(), crate::wallet::chain_of(&info, &relay_url));
    {
        let dispatch = dispatch.clone();
        wasm_bindgen_futures::spawn_local(async move {
            loop {
                dispatch.dispatch(Action::MetricsTick(darkswap_net::unix_time_ms()));
                sleep(Duration::from_millis(
                    darkswap_net::metrics::SAMPLE_INTERVAL_MS,
                ))
                .await;
            }
        });
    }
    let mut saved = SavedTrading::new(handle.local_peer_id());
    match load_saved(&saved).await {
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
        let mut pool_saver = PoolSaver::default();
        while let Some(event) = events.next().await {
            if let Some(milestone) = Milestone::of(&event) {
                reached(milestone);
            }
            if let NodeEvent::RelayPool(report) = &event {
                if pool_saver.due(report, darkswap_net::unix_time_ms()) {
                    if let Err(e) =
                        crate::storage::put_value(TRADING_STORE, RELAY_POOL_KEY, &report.saved)
                            .await
                    {
                        dispatch.dispatch(Action::TradingError(format!(
                            "cannot keep the relays this page knows: {e}"
                        )));
                    }
                }
            }
            if let NodeEvent::Auth(darkswap_net::AuthEvent::Granted(grant)) = &event {
                // Kept for the next visit, beside the events (which need not wait for it:
                // grants come an hour apart).
                let (token, dispatch) = (grant.token.clone(), dispatch.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = crate::credentials::save_token(&me, &token).await {
                        dispatch.dispatch(Action::TradingError(format!(
                            "cannot keep the relay's token: {e}"
                        )));
                    }
                });
            }
            if let NodeEvent::Auth(darkswap_net::AuthEvent::Stamped { stamp, .. }) = &event {
                let (stamp, dispatch) = (*stamp, dispatch.clone());
                wasm_bindgen_futures::spawn_local(async move {
                    if let Err(e) = crate::credentials::save_stamp(&me, stamp).await {
                        dispatch.dispatch(Action::TradingError(format!(
                            "cannot keep this identity's proof of work: {e}"
                        )));
                    }
                });
            }
            if let NodeEvent::Trading(trading) = &event {
                if let Some(write) = saved.apply(trading) {
                    if let Err(e) = put_bytes(TRADING_STORE, &write.key, &write.bytes).await {
                        dispatch.dispatch(Action::TradingError(format!(
                            "cannot save your orders and trades: {e}"
                        )));
                    }
                }
            }
            if let NodeEvent::Trading(t) = &event {
                settler.on_trading(t);
            }
            dispatch.dispatch(Action::Node(Box::new(event)));
        }
    });
    Some(handle)
}

/// What was saved for this identity, decoded for the node's `Restore` command.
async fn load_saved(
    saved: &SavedTrading,
) -> Result<(Vec<darkswap_net::OwnOrder>, Vec<darkswap_net::Trade>), crate::storage::StorageError> {
    let orders = get_bytes(TRADING_STORE, &saved.key(Record::Orders)).await?;
    let trades = get_bytes(TRADING_STORE, &saved.key(Record::Trades)).await?;
    Ok(saved.restore(orders.as_deref(), trades.as_deref()))
}

/// Where the relay pool is kept (one per browser, whatever the identity).
const RELAY_POOL_KEY: &str = "relay-pool";

/// When to write the relay pool: when the trader's choices or the relays known changed, and
/// otherwise at most every [`PoolSaver::EVERY_MS`] (round trips change with every ping).
#[derive(Default)]
struct PoolSaver {
    last_ms: u64,
    last_shape: Vec<(darkswap_net::libp2p::PeerId, darkswap_net::Choice)>,
}

impl PoolSaver {
    const EVERY_MS: u64 = 30_000;

    fn due(&mut self, report: &darkswap_net::PoolReport, now_ms: u64) -> bool {
        let mut shape: Vec<_> = report.relays.iter().map(|r| (r.relay, r.choice)).collect();
        shape.sort_by_key(|(relay, _)| *relay);
        if shape != self.last_shape || now_ms >= self.last_ms.saturating_add(Self::EVERY_MS) {
            self.last_shape = shape;
            self.last_ms = now_ms;
            return true;
        }
        false
    }
}
