//! Choose the pair to look at and trade: typed as BASE/QUOTE, checked by the same rules as
//! every peer applies.

use darkswap_orderbook::Pair;
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::hooks::use_field_text;

/// Suggestions only; any valid pair can be typed. Only pairs that settle on Bitcoin (runes for
/// bitcoin) are suggested.
const SUGGESTED: &[&str] = &["RUNE:DOGGOTOTHEMOON/BTC", "RUNE:UNCOMMONGOODS/BTC"];

#[derive(Properties, PartialEq)]
pub struct PairSelectorProps {
    pub current: Option<Pair>,
    pub on_select: Callback<Pair>,
}

#[function_component(PairSelector)]
pub fn pair_selector(props: &PairSelectorProps) -> Html {
    let input = use_node_ref();
    let error = use_state(|| None::<String>);
    // The field shows the pair in use when it changes; in between, it holds what is typed.
    use_field_text(
        &input,
        props
            .current
            .as_ref()
            .map(|p| p.to_string())
            .unwrap_or_default(),
    );
    let onsubmit = {
        let input = input.clone();
        let error = error.clone();
        let on_select = props.on_select.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(field) = input.cast::<HtmlInputElement>() else {
                return;
            };
            match Pair::parse(&field.value()) {
                Ok(pair) => {
                    error.set(None);
                    field.set_value(&pair.to_string());
                    on_select.emit(pair);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        })
    };
    html! {
        <form class="pair" {onsubmit}>
            <label>{ "Pair " }
                <input type="text" ref={input} list="pairs" placeholder="BASE/QUOTE, e.g. RUNE:DOGGOTOTHEMOON/BTC"
                    data-testid="pair-input" />
            </label>
            <datalist id="pairs">
                { for SUGGESTED.iter().map(|p| html! { <option value={*p} /> }) }
            </datalist>
            <button type="submit" data-testid="pair-follow">{ "Show" }</button>
            if let Some(e) = &*error { <div class="error" data-testid="pair-error">{ e }</div> }
            if let Some(p) = props.current.as_ref().filter(|p| !p.settles_on_bitcoin()) {
                <div class="muted" data-testid="pair-no-settlement">
                    { format!("{p} cannot settle on Bitcoin (only runes for bitcoin can): its book and agreements work, and a trade on it moves nothing.") }
                </div>
            }
        </form>
    }
}
