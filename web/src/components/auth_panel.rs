//! Relay authentication: how we prove ourselves (our identity key, or a shared key the relay's
//! operator gave us), what the relay granted and until when, and why it said no.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::state::{AppState, AuthStatus};

#[derive(Properties, PartialEq)]
pub struct AuthPanelProps {
    pub state: UseReducerHandle<AppState>,
    /// Apply a method: `None` for the identity key, `Some(key)` for a shared key.
    pub on_apply: Callback<Option<String>>,
}

fn until(expires_at_ms: u64) -> String {
    let now = darkswap_net::unix_time_ms();
    let secs = expires_at_ms.saturating_sub(now) / 1000;
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(expires_at_ms as f64));
    let at: String = date.to_locale_time_string("en-GB").into();
    if secs >= 120 {
        format!("{at} (in {} min)", secs / 60)
    } else {
        format!("{at} (in {secs} s)")
    }
}

#[function_component(AuthPanel)]
pub fn auth_panel(props: &AuthPanelProps) -> Html {
    let s = &props.state;
    let use_shared = use_state(|| s.auth_method == "shared_key");
    let key_input = use_node_ref();
    let (state_name, detail) = match &s.auth {
        AuthStatus::Waiting => ("waiting", "waiting for the relay connection".to_string()),
        AuthStatus::Authenticating { method } => {
            ("authenticating", format!("proving ourselves ({method})"))
        }
        AuthStatus::Granted {
            level,
            method,
            expires_at_ms,
        } => (
            "granted",
            format!(
                "level {level} (by {method}); token valid until {}",
                until(*expires_at_ms)
            ),
        ),
        AuthStatus::Refused {
            message,
            retry_in_s,
        } => (
            "refused",
            format!("refused by the relay: {message}; asking again in {retry_in_s} s"),
        ),
        AuthStatus::Unsupported => (
            "unsupported",
            "this relay does not ask for authentication (an older relay)".to_string(),
        ),
        AuthStatus::Working { bits } => (
            "working",
            format!(
                "this relay asks each new identity for a proof of work ({bits} bits, about {} \
                 hashes on average): working on it, once for this identity",
                1u64 << bits
            ),
        ),
    };
    let (level, method) = match &s.auth {
        AuthStatus::Granted { level, method, .. } => (*level, *method),
        _ => ("", ""),
    };
    let on_identity = {
        let use_shared = use_shared.clone();
        Callback::from(move |_| use_shared.set(false))
    };
    let on_shared = {
        let use_shared = use_shared.clone();
        Callback::from(move |_| use_shared.set(true))
    };
    let on_submit = {
        let use_shared = use_shared.clone();
        let key_input = key_input.clone();
        let on_apply = props.on_apply.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if *use_shared {
                let key = key_input
                    .cast::<HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default();
                on_apply.emit(Some(key));
            } else {
                on_apply.emit(None);
            }
        })
    };
    html! {
        <section id="auth">
            <h2>{ "Relay access" }</h2>
            <p class="state" data-testid="auth-state" data-state={state_name} data-level={level} data-method={method}>{ detail }</p>
            <form onsubmit={on_submit}>
                <label>
                    <input type="radio" name="auth-method" data-testid="auth-identity"
                        checked={!*use_shared} onclick={on_identity} />
                    { " my identity key (nothing to enter)" }
                </label>
                <label>
                    <input type="radio" name="auth-method" data-testid="auth-shared"
                        checked={*use_shared} onclick={on_shared} />
                    { " a shared key from the relay's operator" }
                </label>
                if *use_shared {
                    <input type="password" ref={key_input} data-testid="auth-key" aria-label="shared key"
                        autocomplete="off" minlength="16" placeholder="shared key (16+ characters)" />
                }
                <button type="submit" data-testid="auth-apply">{ "Use this method" }</button>
            </form>
            <p class="muted">{ format!("in use: {}", s.auth_method.replace('_', " ")) }</p>
            if let Some((bits, tries, ms)) = s.stamp_done {
                <p class="muted" data-testid="auth-stamp" data-bits={bits.to_string()} data-ms={ms.to_string()}>
                    { format!("proof of work for this identity: {bits} bits, {tries} hashes in {:.1} s", ms as f64 / 1000.0) }
                </p>
            }
            if let Some(e) = &s.auth_error {
                <p class="error" data-testid="auth-error">{ e }</p>
            }
        </section>
    }
}
