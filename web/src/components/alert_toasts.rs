//! The alerts on screen (toasts), the unseen count in the tab's title, and, when the trader
//! allowed them, a browser notification while the tab is in the background and a sound.
//! Which events raise an alert is decided in [`crate::alerts`].

use std::rc::Rc;

use gloo_events::EventListener;
use yew::prelude::*;

use crate::alert_settings::{self, AlertSettings};
use crate::alerts::{title, Alerts};

#[derive(Properties, PartialEq)]
pub struct AlertToastsProps {
    pub alerts: Rc<Alerts>,
    pub settings: AlertSettings,
    pub on_dismiss: Callback<u64>,
    /// The page came in front of the trader (`true`) or went to the background.
    pub on_visible: Callback<bool>,
}

fn document() -> Option<web_sys::Document> {
    web_sys::window().and_then(|w| w.document())
}

fn page_hidden() -> bool {
    document().is_some_and(|d| d.hidden())
}

#[function_component(AlertToasts)]
pub fn alert_toasts(props: &AlertToastsProps) -> Html {
    // The unseen count goes in the title; looking at the page clears it.
    use_effect_with(props.alerts.unseen, |unseen| {
        if let Some(d) = document() {
            d.set_title(&title(*unseen));
        }
    });
    {
        let on_visible = props.on_visible.clone();
        use_effect_with((), move |_| {
            on_visible.emit(!page_hidden());
            let listener = document().map(|d| {
                EventListener::new(&d, "visibilitychange", move |_| {
                    on_visible.emit(!page_hidden())
                })
            });
            move || drop(listener)
        });
    }
    // Each new alert: a notification if the tab is in the background, a sound if wanted.
    {
        let alerts = props.alerts.clone();
        let settings = props.settings;
        use_effect_with(props.alerts.last_seq, move |_| {
            if let Some(alert) = alerts.shown.back().filter(|a| a.seq == alerts.last_seq) {
                if settings.notify && page_hidden() {
                    alert_settings::notify(alert.title, &alert.body, &alert.trade);
                }
                if settings.sound {
                    alert_settings::chime();
                }
            }
        });
    }
    if props.alerts.shown.is_empty() {
        return html! { <div class="toasts" role="status" aria-live="polite"></div> };
    }
    html! {
        <div class="toasts" role="status" aria-live="polite">
            { for props.alerts.shown.iter().rev().map(|a| {
                let seq = a.seq;
                let on_dismiss = props.on_dismiss.clone();
                html! {
                    <div class="toast" data-testid="toast" data-trade={a.trade.clone()} key={seq}>
                        <strong>{ a.title }</strong>
                        <p>{ &a.body }</p>
                        <button type="button" aria-label="Dismiss this alert" data-testid="toast-dismiss"
                            onclick={Callback::from(move |_| on_dismiss.emit(seq))}>{ "×" }</button>
                    </div>
                }
            }) }
        </div>
    }
}
