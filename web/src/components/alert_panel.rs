//! How the trader wants to hear about their trades: browser notifications while the tab is in
//! the background (asks the browser's permission), and a sound.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::alert_settings::{self, AlertSettings};

#[derive(Properties, PartialEq)]
pub struct AlertPanelProps {
    pub settings: AlertSettings,
    pub on_change: Callback<AlertSettings>,
}

fn permission_words(permission: &str) -> &'static str {
    match permission {
        "granted" => "the browser allows notifications from this page",
        "denied" => "the browser blocks notifications from this page: allow them in the site's settings (the icon left of the address), then tick the box again",
        "unsupported" => "this browser has no notifications; the tab's title and the alerts on the page still count what happened",
        _ => "the browser will ask you to allow notifications",
    }
}

#[function_component(AlertPanel)]
pub fn alert_panel(props: &AlertPanelProps) -> Html {
    let permission = use_state(alert_settings::permission);
    let on_notify = {
        let settings = props.settings;
        let on_change = props.on_change.clone();
        let permission = permission.clone();
        Callback::from(move |e: Event| {
            let on = e
                .target_dyn_into::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            let on_change = on_change.clone();
            let permission = permission.clone();
            if !on {
                on_change.emit(AlertSettings {
                    notify: false,
                    ..settings
                });
                return;
            }
            wasm_bindgen_futures::spawn_local(async move {
                let answer = alert_settings::request_permission().await;
                permission.set(answer);
                on_change.emit(AlertSettings {
                    notify: answer == "granted",
                    ..settings
                });
            });
        })
    };
    let on_sound = {
        let settings = props.settings;
        let on_change = props.on_change.clone();
        Callback::from(move |e: Event| {
            let on = e
                .target_dyn_into::<HtmlInputElement>()
                .is_some_and(|i| i.checked());
            if on {
                alert_settings::unlock_sound();
                alert_settings::chime();
            }
            on_change.emit(AlertSettings {
                sound: on,
                ..settings
            });
        })
    };
    html! {
        <section id="alerts">
            <h2>{ "Alerts" }</h2>
            <p class="muted">{ "When one of your orders is taken, a take of yours is agreed, turned down or aborted, a swap of yours settles or stops, or a settlement needs you to cancel it, the page shows an alert and the tab's title counts the ones you have not seen." }</p>
            <label>
                <input type="checkbox" data-testid="alerts-notify" checked={props.settings.notify} onchange={on_notify} />
                { " also a browser notification while this tab is in the background" }
            </label>
            <p class="muted" data-testid="alerts-permission" data-permission={*permission}>{ permission_words(&permission) }</p>
            <label>
                <input type="checkbox" data-testid="alerts-sound" checked={props.settings.sound} onchange={on_sound} />
                { " and a sound" }
            </label>
        </section>
    }
}
