//! The root component: starts the node once and lays out the panels.

use std::rc::Rc;

use darkswap_net::libp2p::PeerId;
use darkswap_net::NodeHandle;
use yew::prelude::*;

use crate::components::{ConnectionPanel, IdentityPanel, MessageLog, PeerList};
use crate::state::{Action, AppState};

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
    html! {
        <>
            <header>
                <h1>{ "DarkSwap" }</h1>
                <span class="muted">{ "peer-to-peer trading client — connectivity preview: order book and trading are not built yet" }</span>
            </header>
            <main>
                <IdentityPanel state={state.clone()} />
                <ConnectionPanel state={state.clone()} />
                <PeerList state={state.clone()} on_send={on_send} />
                <MessageLog state={state} />
            </main>
        </>
    }
}
