//! The root component: starts the node once and lays out the panels.

use std::rc::Rc;

use darkswap_net::libp2p::PeerId;
use darkswap_net::NodeHandle;
use yew::prelude::*;

use crate::components::{
    AuthPanel, ConnectionPanel, IdentityPanel, MessageLog, MetricsPanel, MyOrders, OrderBook,
    OrderForm, PairSelector, PeerList, TradeList,
};
use crate::state::{Action, AppState};
use darkswap_net::{Command, OrderView};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::order::OrderSpec;

#[function_component(App)]
pub fn app() -> Html {
    let state = use_reducer(|| AppState::new(crate::network::relay_info_url()));
    let handle = use_state(|| None::<Rc<NodeHandle>>);
    {
        let dispatch = state.dispatcher();
        let relay_url = state.relay_url.clone();
        let handle = handle.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                if let Some(h) = crate::network::start(relay_url, dispatch).await {
                    handle.set(Some(Rc::new(h)));
                }
            });
        });
    }
    let on_send = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |(peer, text): (String, String)| {
            let refuse = |reason: String| {
                dispatch.dispatch(Action::SendRefused {
                    to: peer.clone(),
                    text: text.clone(),
                    reason,
                })
            };
            let Some(h) = handle.as_ref() else {
                return refuse("not connected yet".into());
            };
            let target: PeerId = match peer.parse() {
                Ok(p) => p,
                Err(e) => return refuse(format!("invalid PeerId: {e}")),
            };
            match h.send_message(target, text.clone()) {
                Ok(id) => dispatch.dispatch(Action::Sent {
                    id,
                    to: peer.clone(),
                    text: text.clone(),
                }),
                Err(e) => refuse(e.to_string()),
            }
        })
    };
    let on_select = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |pair: Pair| {
            dispatch.dispatch(Action::SelectPair(pair.clone()));
            match handle.as_ref() {
                Some(h) => {
                    if let Err(e) = h.command(Command::WatchPair { pair }) {
                        dispatch.dispatch(Action::TradingError(e.to_string()));
                    }
                }
                None => dispatch.dispatch(Action::TradingError("not connected yet".into())),
            }
        })
    };
    let on_place = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        Callback::from(
            move |(pair, spec): (Pair, OrderSpec)| match handle.as_ref() {
                Some(h) => {
                    if let Err(e) = h.place_order(pair, spec) {
                        dispatch.dispatch(Action::TradingError(e.to_string()));
                    }
                }
                None => dispatch.dispatch(Action::TradingError("not connected yet".into())),
            },
        )
    };
    let on_cancel = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |id: OrderId| match handle.as_ref() {
            Some(h) => {
                if let Err(e) = h.command(Command::CancelOrder { id }) {
                    dispatch.dispatch(Action::TradingError(e.to_string()));
                }
            }
            None => dispatch.dispatch(Action::TradingError("not connected yet".into())),
        })
    };
    let on_take = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        let pair = state.trading.pair.clone();
        Callback::from(move |(order, amount): (OrderView, Option<u64>)| {
            let (Some(h), Some(pair)) = (handle.as_ref(), pair.clone()) else {
                return dispatch.dispatch(Action::TradingError("not connected yet".into()));
            };
            let command = Command::TakeOrder {
                pair,
                order_id: order.id,
                amount: amount.unwrap_or(order.amount),
            };
            if let Err(e) = h.command(command) {
                dispatch.dispatch(Action::TradingError(e.to_string()));
            }
        })
    };
    let on_auth = {
        let handle = handle.clone();
        let dispatch = state.dispatcher();
        Callback::from(move |shared_key: Option<String>| {
            let Some(h) = handle.as_ref().cloned() else {
                return dispatch.dispatch(Action::AuthError(Some("not started yet".into())));
            };
            let dispatch = dispatch.clone();
            wasm_bindgen_futures::spawn_local(async move {
                let me = h.local_peer_id();
                match crate::credentials::save_credential(&me, shared_key.as_deref()).await {
                    Ok(credential) => {
                        let method = match &credential {
                            darkswap_auth::client::Credential::Identity => "identity",
                            darkswap_auth::client::Credential::SharedKey(_) => "shared_key",
                        };
                        match h.command(Command::SetCredential { credential }) {
                            Ok(()) => dispatch.dispatch(Action::AuthMethod(method)),
                            Err(e) => dispatch.dispatch(Action::AuthError(Some(e.to_string()))),
                        }
                    }
                    Err(e) => dispatch.dispatch(Action::AuthError(Some(e))),
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
    html! {
        <>
            <header>
                <h1>{ "DarkSwap" }</h1>
                <span class="muted">{ "peer-to-peer trading client — order book and trade agreements live; settlement (moving funds) is not built yet" }</span>
            </header>
            <main>
                <IdentityPanel state={state.clone()} />
                <ConnectionPanel state={state.clone()} />
                <AuthPanel state={state.clone()} on_apply={on_auth} />
                <section id="market">
                    <PairSelector current={trading.pair.clone()} on_select={on_select} />
                    <OrderBook view={view} synced={synced} on_take={on_take} />
                    <OrderForm pair={trading.pair.clone()} error={trading.error.clone()} on_place={on_place} />
                    <MyOrders own={trading.own.clone()} notices={trading.notices.clone()} on_cancel={on_cancel} />
                    <TradeList trades={trading.trades.clone()} />
                </section>
                <PeerList state={state.clone()} on_send={on_send} />
                <MessageLog state={state.clone()} />
                <MetricsPanel metrics={state.metrics.clone()} />
            </main>
        </>
    }
}
