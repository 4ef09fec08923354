use yew::prelude::*;

use super::{short, StateProps};
use crate::state::{Delivery, Entry};

#[function_component(MessageLog)]
pub fn message_log(props: &StateProps) -> Html {
    let s = &props.state;
    html! {
        <section id="messages">
            <h2>{ "Messages" }</h2>
            if s.log.is_empty() {
                <p class="muted">{ "No messages yet. Messages travel through the relay, peer to peer." }</p>
            }
            <ol class="log">
                { for s.log.iter().rev().map(|entry| match entry {
                    Entry::Received { from, text } => html! {
                        <li data-testid="received" data-from={from.clone()}>
                            <span class="mono">{ format!("← {}: ", short(from)) }</span>
                            <span data-testid="text">{ text }</span>
                        </li>
                    },
                    Entry::Sent { to, text, delivery, .. } => {
                        let (state, note) = match delivery {
                            Delivery::Sending => ("sending", "sending…".to_string()),
                            Delivery::Delivered { rtt_ms } => ("delivered", format!("delivered, round trip {rtt_ms:.1} ms")),
                            Delivery::Refused { reason } if reason.is_empty() => ("refused", "refused by the peer (no reason given)".to_string()),
                            Delivery::Refused { reason } => ("refused", format!("refused by the peer: \"{}\"", crate::words::their_words(reason))),
                            Delivery::Failed { reason } => ("failed", format!("failed: {reason}")),
                        };
                        html! {
                            <li data-testid="sent" data-delivery={state}>
                                <span class="mono">{ format!("→ {}: ", short(to)) }</span>
                                <span data-testid="text">{ text }</span>
                                { " " }<span class={if state == "failed" || state == "refused" { "error" } else { "muted" }}>{ note }</span>
                            </li>
                        }
                    }
                }) }
            </ol>
        </section>
    }
}
