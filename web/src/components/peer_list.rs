use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::short;
use crate::state::AppState;

#[derive(Properties, PartialEq)]
pub struct PeerListProps {
    pub state: UseReducerHandle<AppState>,
    pub on_send: Callback<(String, String)>,
}

#[function_component(PeerList)]
pub fn peer_list(props: &PeerListProps) -> Html {
    let s = &props.state;
    html! {
        <section id="peers">
            <h2>{ format!("Peers on this relay ({})", s.peers.len()) }</h2>
            if s.peers.is_empty() {
                <p class="muted">{ "No other trader holds a reservation on this relay right now." }</p>
            }
            <ul class="peers">
                { for s.peers.iter().map(|peer| {
                    let link = s.links.get(peer).cloned().unwrap_or_default();
                    html! { <PeerRow key={peer.clone()} peer={peer.clone()} link={link} on_send={props.on_send.clone()} /> }
                }) }
            </ul>
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct PeerRowProps {
    peer: String,
    link: crate::state::PeerLink,
    on_send: Callback<(String, String)>,
}

#[function_component(PeerRow)]
fn peer_row(props: &PeerRowProps) -> Html {
    let input = use_node_ref();
    let onsubmit = {
        let input = input.clone();
        let peer = props.peer.clone();
        let on_send = props.on_send.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            if let Some(field) = input.cast::<HtmlInputElement>() {
                let text = field.value();
                let text = if text.trim().is_empty() {
                    "hello".to_string()
                } else {
                    text
                };
                on_send.emit((peer.clone(), text));
                field.set_value("");
            }
        })
    };
    let status = match (&props.link.transport, props.link.rtt_ms) {
        (Some(t), Some(rtt)) => format!("connected ({t}), RTT {rtt:.1} ms"),
        (Some(t), None) => format!("connected ({t})"),
        (None, _) => "not connected".to_string(),
    };
    html! {
        <li data-testid="peer" data-peer={props.peer.clone()}>
            <span class="mono" title={props.peer.clone()}>{ short(&props.peer) }</span>
            { " " }<span class="muted" data-testid="peer-status">{ status }</span>
            if let Some(e) = &props.link.error { <div class="error">{ e }</div> }
            <form {onsubmit}>
                <input type="text" ref={input} placeholder="message (empty sends hello)" maxlength="4096" data-testid="message-input" />
                <button type="submit" data-testid="send">{ "Send" }</button>
            </form>
        </li>
    }
}
