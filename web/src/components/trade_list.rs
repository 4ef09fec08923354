//! The trader's trades: state, role, counterparty, amounts. An agreed trade is shown as agreed
//! and awaiting settlement — settlement is not built yet, and no funds have moved; on a pair that
//! cannot settle on Bitcoin (not runes for bitcoin) it says that nothing will.

use darkswap_net::{Trade, TradeState};
use std::collections::BTreeMap;
use std::rc::Rc;
use yew::prelude::*;

use super::short;
use crate::words::{describe, state_text};

#[derive(Properties, PartialEq)]
pub struct TradeListProps {
    pub trades: Rc<BTreeMap<String, Trade>>,
}

#[function_component(TradeList)]
pub fn trade_list(props: &TradeListProps) -> Html {
    let mut trades: Vec<&Trade> = props.trades.values().collect();
    trades.sort_by_key(|t| std::cmp::Reverse(t.updated_at_ms));
    html! {
        <section id="trades">
            <h2>{ format!("Trades ({})", trades.len()) }</h2>
            if trades.is_empty() {
                <p class="muted">{ "No trades yet. Take an order from the book to start one." }</p>
            }
            <ul class="trades">
                { for trades.into_iter().map(|t| html! {
                    <li data-testid="trade" data-trade={t.id_hex()} data-state={t.state.label()}
                        data-role={format!("{:?}", t.role).to_lowercase()} data-amount={t.amount.to_string()}>
                        <span>{ describe(t) }</span>
                        { " @ " }<span class="mono">{ t.price.to_string() }</span>
                        { " with " }<span class="mono" title={t.counterparty.to_base58()}>{ short(&t.counterparty.to_base58()) }</span>
                        <div class={if matches!(t.state, TradeState::Rejected { .. } | TradeState::Aborted { .. }) { "error" } else { "muted" }}>
                            { state_text(&t.state, &t.pair) }
                        </div>
                    </li>
                }) }
            </ul>
        </section>
    }
}
