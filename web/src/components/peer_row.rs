//! One trader on the relay: connection state, RTT, and a message form.

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::short;

#[derive(Properties, PartialEq)]
pub struct PeerRowProps {
    pub peer: String,
    pub link: crate::state::PeerLink,
    pub on_send: Callback<(String, String)>,
}

#[function_component(PeerRow)]
pub fn peer_row(props: &PeerRowProps) -> Html {
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
                <input type="text" ref={input} placeholder="message (empty sends hello)" aria-label="message to this peer" maxlength="4096" data-testid="message-input" />
                <button type="submit" data-testid="send">{ "Send" }</button>
            </form>
        </li>
    }
}
