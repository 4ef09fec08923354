//! The root component: starts the node once, provides it to the components, and lays out the
//! panels.

use darkswap_net::libp2p::PeerId;
use yew::prelude::*;

use crate::hooks::{use_node_start, NodeContext};

use crate::components::{
    AlertPanel, AlertToasts, AuthPanel, ConnectionPanel, IdentityPanel, KeysUnlock, MessageLog,
    MetricsPanel, MyOrders, OrderBook, OrderForm, PairSelector, Panel, PeerList, RelayPool,
    StatusBar, TradeList, WalletPanel,
};
use crate::state::{Action, AppState, KeysAtRest};
use darkswap_net::{Command, OrderView};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::order::OrderSpec;

#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| {
        AppState::new(crate::network::relay_info_url()).with_btc(crate::unit_settings::load())
    });
    let node = use_node_start(&state);
    // A rune pair's divisibility and spaced name, from ord through the relay's chain, once the
    // node runs on a relay that names one (each rune asked once per visit).
    {
        let node = node.clone();
        let units = state.trading.units.clone();
        use_effect_with(
            (state.trading.pair.clone(), state.trading.settling),
            move |(pair, _)| {
                let ord = node.settler().ord();
                let unknown: Vec<String> = pair
                    .iter()
                    .flat_map(|p| [&p.base, &p.quote])
                    .filter(|a| !units.knows(a))
                    .filter_map(|a| match a {
                        darkswap_orderbook::Asset::Rune(name) => Some(name.clone()),
                        _ => None,
                    })
                    .collect();
                if let (Some(ord), false) = (ord, unknown.is_empty()) {
                    wasm_bindgen_futures::spawn_local(async move {
                        for name in unknown {
                            match crate::wallet::rune_info(&ord, &name).await {
                                Ok(Some(info)) => node.dispatch(Action::RuneUnits {
                                    spaced_name: info.spaced_name,
                                    divisibility: info.divisibility,
                                }),
                                // Not etched on this chain: it stays in smallest units, and
                                // the order form says so.
                                Ok(None) => {}
                                Err(e) => node.dispatch(Action::TradingError(format!(
                                    "cannot learn the units of RUNE:{name}: {e}"
                                ))),
                            }
                        }
                    });
                }
            },
        );
    }
    let on_btc = {
        let node = node.clone();
        Callback::from(move |unit| {
            if let Err(e) = crate::unit_settings::save(unit) {
                node.dispatch(Action::TradingError(e));
            }
            node.dispatch(Action::BtcUnit(unit));
        })
    };
    let on_take_refused = {
        let node = node.clone();
        Callback::from(move |words| node.dispatch(Action::TradingError(words)))
    };
    let on_send = {
        let node = node.clone();
        Callback::from(move |(peer, text): (String, String)| {
            let refuse = |reason: String| {
                node.dispatch(Action::SendRefused {
                    to: peer.clone(),
                    text: text.clone(),
                    reason,
                })
            };
            let Some(h) = node.handle() else {
                return refuse("not connected yet".into());
            };
            let target: PeerId = match peer.parse() {
                Ok(p) => p,
                Err(e) => return refuse(format!("invalid PeerId: {e}")),
            };
            match h.send_message(target, text.clone()) {
                Ok(id) => node.dispatch(Action::Sent {
                    id,
                    to: peer.clone(),
                    text: text.clone(),
                }),
                Err(e) => refuse(e.to_string()),
            }
        })
    };
    let on_select = {
        let node = node.clone();
        Callback::from(move |pair: Pair| {
            node.dispatch(Action::SelectPair(pair.clone()));
            node.command(Command::WatchPair { pair });
        })
    };
    let on_place = {
        let node = node.clone();
        Callback::from(move |(pair, spec): (Pair, OrderSpec)| {
            // The handle picks the order's random nonce (hence its id).
            node.run(|h| h.place_order(pair, spec).map(drop));
        })
    };
    let on_cancel = node.callback(|id: OrderId| Ok(Command::CancelOrder { id }));
    let on_choose_relay =
        node.callback(|(relay, choice)| Ok(Command::ChooseRelay { relay, choice }));
    // A take on a runes-for-bitcoin pair, where the relay names a chain, goes through the
    // settlement driver (our offer is chosen and sent with it); any other take goes out as it is.
    let on_take = {
        let pair = state.trading.pair.clone();
        let node = node.clone();
        Callback::from(
            move |(order, amount, fee_rate): (OrderView, Option<u64>, u64)| {
                let Some(pair) = pair.clone() else {
                    return node.dispatch(Action::TradingError("choose a pair first".into()));
                };
                let trade_id = darkswap_net::new_trade_id();
                let amount = amount.unwrap_or(order.amount);
                let settler = node.settler();
                if pair.settles_on_bitcoin() && settler.settles() {
                    let request = darkswap_settle::driver::TakeRequest {
                        trade_id,
                        pair,
                        order_id: order.id,
                        maker_side: order.side,
                        price: order.price,
                        amount,
                        fee_rate,
                    };
                    if let Err(e) = settler.take(request) {
                        node.dispatch(Action::TradingError(format!("take not sent: {e}")));
                    }
                    return;
                }
                node.command(Command::TakeOrder {
                    pair,
                    order_id: order.id,
                    amount,
                    trade_id,
                    settlement: Default::default(),
                });
            },
        )
    };
    let on_abort = {
        let node = node.clone();
        Callback::from(move |trade_id| {
            if let Err(e) = node.settler().abort(trade_id) {
                node.dispatch(Action::TradingError(e));
            }
        })
    };
    let on_cancel_settlement = {
        let node = node.clone();
        Callback::from(move |trade_id| match node.settler().cancel(trade_id) {
            Ok(_) => {}
            Err(e) => node.dispatch(Action::TradingError(format!("cannot cancel: {e}"))),
        })
    };
    let on_keys = {
        let node = node.clone();
        Callback::from(move |keys| node.settler().set_keys(keys))
    };
    let on_auth = {
        let node = node.clone();
        Callback::from(move |shared_key: Option<String>| {
            let Some(h) = node.handle() else {
                return node.dispatch(Action::AuthError(Some("not started yet".into())));
            };
            let node = node.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let me = h.local_peer_id();
                match crate::credentials::save_credential(&me, shared_key.as_deref()).await {
                    Ok(credential) => {
                        let method = crate::credentials::method_name(&credential);
                        match h.command(Command::SetCredential { credential }) {
                            Ok(()) => node.dispatch(Action::AuthMethod(method)),
                            Err(e) => node.dispatch(Action::AuthError(Some(e.to_string()))),
                        }
                    }
                    Err(e) => node.dispatch(Action::AuthError(Some(e.to_string()))),
                }
            });
        })
    };
    let trading = &state.trading;
    let view = trading
        .pair
        .as_ref()
        .and_then(|p| trading.books.get(p))
        .cloned();
    let synced = trading
        .synced
        .as_ref()
        .filter(|(p, _, _)| Some(p) == trading.pair.as_ref())
        .map(|(p, n, ms)| (p.to_string(), *n, *ms));
    let alert_settings = use_state(crate::alert_settings::load);
    let on_alert_settings = {
        let alert_settings = alert_settings.clone();
        let node = node.clone();
        Callback::from(move |settings| {
            if let Err(e) = crate::alert_settings::save(settings) {
                node.dispatch(Action::TradingError(e));
            }
            alert_settings.set(settings);
        })
    };
    let on_dismiss = {
        let node = node.clone();
        Callback::from(move |seq| node.dispatch(Action::DismissAlert(seq)))
    };
    let on_visible = {
        let node = node.clone();
        Callback::from(move |visible| {
            node.dispatch(Action::PageVisible {
                visible,
                at_ms: darkswap_net::unix_time_ms(),
            })
        })
    };
    let wallet_view = use_state(|| {
        crate::funds::WalletView::Unknown(
            "the wallet is still reading the relay's chain: try again in a moment".into(),
        )
    });
    let on_wallet_view = {
        let wallet_view = wallet_view.clone();
        Callback::from(move |v| wallet_view.set(v))
    };
    let open = use_state(|| None::<Panel>);
    let on_toggle = {
        let open = open.clone();
        Callback::from(move |panel: Panel| {
            open.set(if *open == Some(panel) {
                None
            } else {
                Some(panel)
            })
        })
    };
    // The detail panels stay mounted while closed (what was typed in them stays).
    let panel = |which: Panel, content: Html| {
        html! {
            <div class="panel" id={format!("panel-{}", which.name())} data-testid="panel"
                data-panel={which.name()} hidden={*open != Some(which)}>
                { content }
            </div>
        }
    };
    html! {
        <ContextProvider<NodeContext> context={node}>
            <header class="top">
                <h1>{ "DarkSwap" }</h1>
                <StatusBar state={state.clone()} open={*open} on_toggle={on_toggle} />
            </header>
            <div class="drawer">
                { panel(Panel::Relay, html! {
                    <>
                        <ConnectionPanel state={state.clone()} />
                        <RelayPool relays={state.relay_pool.clone()} linked={state.relay_linked} standbys={state.relay_standbys.clone()} on_choose={on_choose_relay} />
                    </>
                }) }
                { panel(Panel::Access, html! { <AuthPanel state={state.clone()} on_apply={on_auth} /> }) }
                { panel(Panel::Identity, html! { <IdentityPanel state={state.clone()} /> }) }
                { panel(Panel::Peers, html! {
                    <>
                        <PeerList state={state.clone()} on_send={on_send} />
                        <MessageLog state={state.clone()} />
                    </>
                }) }
                // Mounted once the keys are open: a locked page asks the relay for nothing
                // before the password.
                { panel(Panel::Wallet, if matches!(state.keys_at_rest, KeysAtRest::Clear | KeysAtRest::Unlocked) {
                    html! { <WalletPanel relay_info_url={crate::network::relay_info_url()} on_view={on_wallet_view} on_keys={on_keys} /> }
                } else {
                    html! { <p class="muted">{ "The wallet opens once your keys are unlocked." }</p> }
                }) }
                { panel(Panel::Metrics, html! { <MetricsPanel metrics={state.metrics.clone()} settle={state.settle_counters.clone()} /> }) }
                { panel(Panel::Alerts, html! { <AlertPanel settings={*alert_settings} on_change={on_alert_settings} /> }) }
            </div>
            <AlertToasts alerts={state.alerts.clone()} settings={*alert_settings} on_dismiss={on_dismiss} on_visible={on_visible} />
            if state.keys_at_rest == KeysAtRest::Locked {
                <KeysUnlock />
            }
            <main id="market">
                <PairSelector current={trading.pair.clone()} on_select={on_select} />
                <OrderBook view={view} synced={synced} on_take={on_take} settling={trading.settling} units={trading.units.clone()} on_refused={on_take_refused} />
                <div class="side">
                    <OrderForm pair={trading.pair.clone()} error={trading.error.clone()} on_place={on_place} wallet={(*wallet_view).clone()} own={trading.own.clone()} units={trading.units.clone()} on_btc={on_btc} />
                    <MyOrders own={trading.own.clone()} notices={trading.notices.clone()} on_cancel={on_cancel} units={trading.units.clone()} />
                    <TradeList trades={trading.trades.clone()} settlements={trading.settlements.clone()}
                        settling={trading.settling} trouble={trading.settle_trouble.clone()}
                        chain_view={trading.chain_view.clone()} on_abort={on_abort}
                        on_cancel={on_cancel_settlement} units={trading.units.clone()} />
                </div>
            </main>
            <footer class="muted">
                { "Peer-to-peer trading client: the order book and trade agreements are live; trades on runes-for-bitcoin pairs settle on Bitcoin in one transaction where the relay names a chain." }
            </footer>
        </ContextProvider<NodeContext>>
    }
}
