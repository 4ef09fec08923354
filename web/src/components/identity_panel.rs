use yew::prelude::*;

use super::StateProps;

#[function_component(IdentityPanel)]
pub fn identity_panel(props: &StateProps) -> Html {
    let s = &props.state;
    html! {
        <section id="identity">
            <h2>{ "Identity" }</h2>
            if let Some(e) = &s.identity_error {
                <p class="error" data-testid="identity-error">{ format!("Cannot load or create your identity: {e}") }</p>
            } else if let Some(id) = &s.peer_id {
                <p>{ "Your PeerId (kept in this browser):" }</p>
                <p class="mono" data-testid="peer-id">{ id }</p>
            } else {
                <p class="muted">{ "Loading identity…" }</p>
            }
        </section>
    }
}
