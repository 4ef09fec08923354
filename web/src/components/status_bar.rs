//! The status bar: one line with what a trader glances at (relay state and RTT, relay access,
//! identity, peers, metrics), each part a button that opens its panel with the details.

use darkswap_net::RelayStatus;
use yew::prelude::*;

use super::short;
use crate::state::{AppState, AuthStatus, Relay};

/// The detail panels the status bar opens, one at a time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Panel {
    Relay,
    Access,
    Identity,
    Peers,
    Metrics,
    Alerts,
    Wallet,
}

impl Panel {
    /// The name used in the page (`data-panel`, element ids).
    pub fn name(self) -> &'static str {
        match self {
            Panel::Relay => "relay",
            Panel::Access => "access",
            Panel::Identity => "identity",
            Panel::Peers => "peers",
            Panel::Metrics => "metrics",
            Panel::Alerts => "alerts",
            Panel::Wallet => "wallet",
        }
    }
}

#[derive(Properties, PartialEq)]
pub struct StatusBarProps {
    pub state: UseReducerHandle<AppState>,
    pub open: Option<Panel>,
    pub on_toggle: Callback<Panel>,
}

/// The relay's state as (name for styling and tests, words for the trader, transport).
fn relay_state(relay: &Relay) -> (&'static str, String, &'static str) {
    match relay {
        Relay::Starting => ("starting", "starting".into(), ""),
        Relay::Unreachable { .. } => ("error", "relay unreachable".into(), ""),
        Relay::Status(status) => {
            let (words, transport) = match status {
                RelayStatus::Connecting { attempt } => {
                    (format!("connecting (attempt {attempt})"), "")
                }
                RelayStatus::Connected { transport, .. } => {
                    (format!("connected via {transport}"), transport.label())
                }
                RelayStatus::Reserved { transport, .. } => {
                    (format!("online via {transport}"), transport.label())
                }
                RelayStatus::Failed { .. } => ("relay lost, reconnecting".into(), ""),
                RelayStatus::FailingOver { .. } => ("relay lost, moving to another".into(), ""),
            };
            (status.name(), words, transport)
        }
    }
}

/// Relay access in a word or two: (name for styling, words).
fn access(auth: &AuthStatus) -> (&'static str, String) {
    match auth {
        AuthStatus::Waiting => ("waiting", "access: waiting".into()),
        AuthStatus::Authenticating { .. } => ("authenticating", "access: proving…".into()),
        AuthStatus::Granted { level, .. } => ("granted", format!("access: {level}")),
        AuthStatus::Refused { .. } => ("refused", "access refused: open to fix".into()),
        AuthStatus::Unsupported => ("unsupported", "access: not asked".into()),
        AuthStatus::Working { .. } => ("authenticating", "access: proof of work…".into()),
    }
}

#[function_component(StatusBar)]
pub fn status_bar(props: &StatusBarProps) -> Html {
    let s = &props.state;
    let chip = |panel: Panel, state: &'static str, content: Html| {
        let on_toggle = props.on_toggle.clone();
        let open = props.open == Some(panel);
        html! {
            <li>
                <button type="button" class="chip" data-testid="panel-toggle" data-panel={panel.name()}
                    data-state={state} aria-expanded={open.to_string()} aria-controls={format!("panel-{}", panel.name())}
                    onclick={Callback::from(move |_| on_toggle.emit(panel))}>
                    { content }
                </button>
            </li>
        }
    };
    let (relay_name, relay_words, transport) = relay_state(&s.relay);
    let rtt = s
        .relay_rtt_ms
        .map(|ms| format!("{ms:.0} ms"))
        .unwrap_or_else(|| "—".into());
    let (access_name, access_words) = access(&s.auth);
    let me = s
        .peer_id
        .as_deref()
        .map(short)
        .unwrap_or_else(|| "…".into());
    html! {
        <nav aria-label="status">
            <ul class="status">
                { chip(Panel::Relay, relay_name, html! {
                    <>
                        <span class="state" data-testid="relay-state" data-state={relay_name} data-transport={transport}>{ relay_words }</span>
                        { " · RTT " }<span data-testid="relay-rtt">{ rtt }</span>
                    </>
                }) }
                { chip(Panel::Access, access_name, html! { <span class="state" data-state={access_name}>{ access_words }</span> }) }
                { chip(Panel::Identity, "", html! { <>{ "you: " }<span class="mono">{ me }</span></> }) }
                { chip(Panel::Peers, "", html! { { format!("peers: {}", s.peers.len()) } }) }
                { chip(Panel::Wallet, "", html! { { "wallet" } }) }
                { chip(Panel::Metrics, "", html! { { "metrics" } }) }
                { chip(Panel::Alerts, "", html! { { match s.alerts.unseen {
                    0 => "alerts".to_string(),
                    n => format!("alerts: {n} new"),
                } } }) }
            </ul>
        </nav>
    }
}
