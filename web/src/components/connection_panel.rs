use darkswap_net::RelayStatus;
use yew::prelude::*;

use super::StateProps;
use crate::state::Relay;

#[function_component(ConnectionPanel)]
pub fn connection_panel(props: &StateProps) -> Html {
    let s = &props.state;
    let (name, detail) = match &s.relay {
        Relay::Starting => ("starting", "loading…".to_string()),
        Relay::Unreachable { reason } => ("error", format!("relay unreachable: {reason}")),
        Relay::Status(status) => (
            status.name(),
            match status {
                RelayStatus::Connecting { attempt } => format!("connecting (attempt {attempt})"),
                RelayStatus::Connected { transport, .. } => {
                    format!("connected via {transport}, requesting a reservation")
                }
                RelayStatus::Reserved { transport, .. } => format!("reserved via {transport}"),
                RelayStatus::Failed { reason, retry_in } => {
                    format!("{reason}; retrying in {:.1} s", retry_in.as_secs_f64())
                }
                RelayStatus::FailingOver { from, to } => format!(
                    "relay {} lost; moving to relay {}",
                    super::short(&from.to_base58()),
                    super::short(&to.to_base58())
                ),
            },
        ),
    };
    let transport = match &s.relay {
        Relay::Status(RelayStatus::Reserved { transport, .. })
        | Relay::Status(RelayStatus::Connected { transport, .. }) => transport.label(),
        _ => "",
    };
    html! {
        <section id="connection">
            <h2>{ "Relay" }</h2>
            <p class="mono muted">{ &s.relay_url }</p>
            <p class="state" data-testid="relay-detail" data-state={name} data-transport={transport}>{ detail }</p>
            <p>
                { "RTT: " }
                { s.relay_rtt_ms.map(|ms| format!("{ms:.1} ms")).unwrap_or_else(|| "—".into()) }
                { format!(" · reconnects: {}", s.reconnects) }
            </p>
            if let Some((from, to)) = &s.failover {
                <p data-testid="relay-failover" data-from={from.to_base58()} data-to={to.to_base58()}>
                    { format!(
                        "Moved from relay {} to relay {} when it was lost ({} move{} this visit); your orders are published again there.",
                        super::short(&from.to_base58()),
                        super::short(&to.to_base58()),
                        s.failovers,
                        if s.failovers == 1 { "" } else { "s" }
                    ) }
                </p>
            }
            if !s.reachable.is_empty() {
                <p class="muted">{ format!(
                    "Others reach you at ({} relay{} holding a reservation of yours):",
                    s.reachable.len(),
                    if s.reachable.len() == 1 { "" } else { "s" }
                ) }</p>
                <ul class="mono" data-testid="reachable">
                    { for s.reachable.iter().map(|addr| html! { <li data-testid="reachable-addr">{ addr }</li> }) }
                </ul>
            }
        </section>
    }
}
