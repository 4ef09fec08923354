//! The first thing a visit shows when this browser's keys are locked at rest: the wallet's
//! password, before anything connects.

use yew::prelude::*;

use super::take_text;

#[function_component(KeysUnlock)]
pub fn keys_unlock() -> Html {
    let field = use_node_ref();
    let message = use_state(|| None::<String>);
    let busy = use_state(|| false);
    let on_submit = {
        let (field, message, busy) = (field.clone(), message.clone(), busy.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let password = take_text(&field);
            let (message, busy) = (message.clone(), busy.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match crate::at_rest::unlock(&password).await {
                    Ok(_) => message.set(None),
                    Err(e) => message.set(Some(e.to_string())),
                }
                busy.set(false);
            });
        })
    };
    html! {
        <section aria-label="unlock your keys" class="keys-unlock" data-testid="keys-unlock">
            <h2>{ "Your keys are locked" }</h2>
            <p>{ "This browser keeps your identity (and relay key) sealed with your wallet's password. Nothing connects until you unlock." }</p>
            <form onsubmit={on_submit}>
                <label>{ "Wallet password " }<input ref={field} type="password" autocomplete="current-password" data-testid="keys-password" /></label>
                <button type="submit" disabled={*busy} data-testid="keys-unlock-button">{ if *busy { "Unlocking…" } else { "Unlock" } }</button>
            </form>
            <p class="error" role="status" data-testid="keys-message">{ (*message).clone().unwrap_or_default() }</p>
        </section>
    }
}
