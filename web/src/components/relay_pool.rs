//! The relays this page knows: the one that served it and those its relay learned from other
//! relays' signed records, each measured from this page and ranked as the pool ranks them, with
//! the trader's pin, exclusion or neither.

use std::rc::Rc;

use darkswap_net::libp2p::PeerId;
use darkswap_net::{Choice, RelayView};
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct RelayPoolProps {
    pub relays: Rc<Vec<RelayView>>,
    /// The relay the page's link uses now.
    pub linked: Option<PeerId>,
    /// The relays holding a standby reservation of the page's.
    pub standbys: Rc<Vec<PeerId>>,
    pub on_choose: Callback<(PeerId, Choice)>,
}

/// What a relay's state is, in words, and its `data-state`.
fn state(r: &RelayView, linked: bool, standby: bool) -> (String, &'static str) {
    let mut words = Vec::new();
    if linked {
        words.push("in use now".to_string());
    }
    if standby {
        words.push(
            "standby: holds a second reservation, takes over if the one in use is lost".to_string(),
        );
    }
    if r.serving {
        words.push("served this page".to_string());
    }
    let key = match (r.choice, r.rank) {
        (Choice::Excluded, _) => {
            words.push("excluded by you".into());
            "excluded"
        }
        (Choice::Pinned, Some(_)) => {
            words.push("pinned by you".into());
            "pinned"
        }
        (_, Some(_)) => "usable",
        (_, None) => "dropped",
    };
    if let Some(why) = r.last_failure {
        let why = match why {
            darkswap_net::Failure::Unreachable => "could not be reached",
            darkswap_net::Failure::NoPing => "did not answer in time",
            darkswap_net::Failure::AuthRefused => "refused to let this page in",
            darkswap_net::Failure::ReservationRefused => "refused a reservation",
            darkswap_net::Failure::Lost => "the connection dropped",
        };
        words.push(if r.rank.is_none() && r.choice != Choice::Excluded {
            format!("dropped for now: {why}")
        } else {
            format!("last problem: {why}")
        });
    }
    if r.addrs.is_empty() {
        words.push("no address this page can dial".into());
    }
    (words.join("; "), key)
}

#[function_component(RelayPool)]
pub fn relay_pool(props: &RelayPoolProps) -> Html {
    let rows = props.relays.iter().map(|r| {
        let linked = props.linked == Some(r.relay);
        let standby = props.standbys.contains(&r.relay);
        let (words, key) = state(r, linked, standby);
        let peer = r.relay.to_base58();
        let short = format!("{}…{}", &peer[..8], &peer[peer.len() - 6..]);
        let name = match (r.name.as_str(), r.region.as_str()) {
            ("", "") => "—".to_string(),
            (name, "") => name.to_string(),
            ("", region) => format!("({region})"),
            (name, region) => format!("{name} ({region})"),
        };
        let button = |label: &'static str, choice: Choice| {
            let on_choose = props.on_choose.clone();
            let relay = r.relay;
            let onclick = Callback::from(move |_| on_choose.emit((relay, choice)));
            html! { <button class="chip" onclick={onclick} aria-label={format!("{label} relay {short}")}
                data-choose={label}>{ label }</button> }
        };
        html! {
            <tr key={peer.clone()} data-testid="relay-row" data-relay={peer.clone()} data-state={key} data-linked={linked.to_string()} data-standby={standby.to_string()}
                data-rank={r.rank.map(|n| n.to_string()).unwrap_or_default()}>
                <td>{ r.rank.map(|n| n.to_string()).unwrap_or_else(|| "—".into()) }</td>
                <td><span title={peer.clone()} class="mono">{ short.clone() }</span><br />{ name }</td>
                <td data-testid="relay-rtt">{ r.rtt_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "not measured".into()) }</td>
                <td>{ r.load_permille.map(|l| format!("{:.0} %", f64::from(l) / 10.0)).unwrap_or_else(|| "—".into()) }</td>
                <td>{ if words.is_empty() { "ok".to_string() } else { words } }</td>
                <td>
                    if r.choice != Choice::Pinned { { button("pin", Choice::Pinned) } }
                    if r.choice != Choice::Excluded && !r.serving { { button("exclude", Choice::Excluded) } }
                    if r.choice != Choice::Auto { { button("auto", Choice::Auto) } }
                </td>
            </tr>
        }
    });
    html! {
        <section id="relay-pool" aria-labelledby="relay-pool-title">
            <h2 id="relay-pool-title">{ format!("Relays known ({})", props.relays.len()) }</h2>
            <p class="muted">
                { "The relay that served this page and the relays it knows from their signed records, each measured from here (round trip, failures, load) and ranked. " }
                { "This page holds a reservation on the relay in use and a standby one on the best-ranked other relay, and other traders reach it through either. When the relay in use is lost or refuses the page, the standby takes over at once; without one, the page moves to the best-ranked relay." }
            </p>
            if props.relays.is_empty() {
                <p class="muted">{ "Nothing known yet: the list fills once the relay lets this page in." }</p>
            } else {
                <table data-testid="relay-pool">
                    <thead><tr>
                        <th scope="col">{ "rank" }</th><th scope="col">{ "relay" }</th><th scope="col">{ "round trip" }</th>
                        <th scope="col">{ "load" }</th><th scope="col">{ "state" }</th><th scope="col">{ "your choice" }</th>
                    </tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
            }
        </section>
    }
}
