use yew::prelude::*;

use super::PeerRow;
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
