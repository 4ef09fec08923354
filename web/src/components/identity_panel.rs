use darkswap_net::libp2p::PeerId;
use yew::prelude::*;

use super::{take_text, StateProps};
use crate::hooks::use_node;
use crate::state::{Action, KeysAtRest};

#[function_component(IdentityPanel)]
pub fn identity_panel(props: &StateProps) -> Html {
    let s = &props.state;
    html! {
        <section id="identity">
            <h2>{ "Identity" }</h2>
            if let Some(e) = &s.identity_error {
                <p class="error" data-testid="identity-error">{ format!("Cannot load or create your identity: {e}") }</p>
            } else if let Some(id) = &s.peer_id {
                <p>{ "Your PeerId (kept in this browser):" }</p>
                <p class="mono" data-testid="peer-id">{ id }</p>
                <KeysAtRestControl peer_id={id.clone()} keys={s.keys_at_rest} />
            } else {
                <p class="muted">{ "Loading identity…" }</p>
            }
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct KeysAtRestProps {
    peer_id: String,
    keys: KeysAtRest,
}

/// Locks the keys at rest with the wallet's password, or removes the lock.
#[function_component(KeysAtRestControl)]
fn keys_at_rest_control(props: &KeysAtRestProps) -> Html {
    let node = use_node();
    let field = use_node_ref();
    let message = use_state(|| None::<(bool, String)>);
    let busy = use_state(|| false);
    let locking = props.keys == KeysAtRest::Clear;
    let on_submit = {
        let (field, message, busy) = (field.clone(), message.clone(), busy.clone());
        let peer_id = props.peer_id.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let password = take_text(&field);
            let Ok(me) = peer_id.parse::<PeerId>() else {
                return message.set(Some((true, "this page's PeerId does not parse".into())));
            };
            let (message, busy, node) = (message.clone(), busy.clone(), node.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                let outcome = if locking {
                    crate::at_rest::lock(&me, &password).await
                } else {
                    crate::at_rest::remove(&me, &password).await
                };
                match outcome {
                    Ok(()) => {
                        message.set(Some((
                            false,
                            if locking {
                                "Locked: your next visit asks for the wallet's password."
                            } else {
                                "The lock is removed: your keys are stored in the clear here."
                            }
                            .into(),
                        )));
                        node.dispatch(Action::KeysAtRest(if locking {
                            KeysAtRest::Unlocked
                        } else {
                            KeysAtRest::Clear
                        }));
                    }
                    Err(e) => message.set(Some((true, e.to_string()))),
                }
                busy.set(false);
            });
        })
    };
    let (words, button, testid) = match props.keys {
        KeysAtRest::Clear => (
            "Stored in the clear in this browser. Lock your identity and relay key with your wallet's password (each visit then asks for it):",
            "Lock",
            "keys-lock",
        ),
        KeysAtRest::Unlocked => (
            "Locked at rest with your wallet's password, and unlocked in this page.",
            "Remove the lock",
            "keys-remove-lock",
        ),
        KeysAtRest::Unknown | KeysAtRest::Locked => return html! {},
    };
    let (error, said) = (*message).clone().unwrap_or((false, String::new()));
    html! {
        <div data-testid="keys-at-rest" data-state={if locking { "clear" } else { "locked" }}>
            <p>{ words }</p>
            <form onsubmit={on_submit}>
                <label>{ "Wallet password " }<input ref={field} type="password" autocomplete="current-password" data-testid="keys-at-rest-password" /></label>
                <button type="submit" disabled={*busy} data-testid={testid}>{ button }</button>
            </form>
            <p class={if error { "error" } else { "muted" }} role="status" data-testid="keys-at-rest-message">{ said }</p>
        </div>
    }
}
