//! The trader's trades: state, role, counterparty, amounts, and for a trade on a runes-for-bitcoin
//! pair its settlement on Bitcoin: each step in words, the swap's txid (linked to the chain
//! view), confirmations, what each side gives and gets, and why it stopped when it did. Before
//! our signatures leave, the trader can give up (nothing moves); after, when the other side
//! went quiet, cancel by taking back what was offered, at the fee it costs. Where the relay names no chain
//! an agreed trade says it does not settle here; on a pair that cannot settle on Bitcoin it says
//! that nothing will.

use darkswap_net::{Trade, TradeState};
use darkswap_proto::trade::TradeId;
use darkswap_settle::driver::View;
use darkswap_settle::Step;
use std::collections::BTreeMap;
use std::rc::Rc;
use yew::prelude::*;

use super::short;
use crate::words::{describe, gave_got, price_text, settle_text, state_text};
use darkswap_orderbook::Units;

#[derive(Properties, PartialEq)]
pub struct TradeListProps {
    pub trades: Rc<BTreeMap<String, Trade>>,
    pub settlements: Rc<BTreeMap<String, View>>,
    /// Whether trades settle here (the relay names a chain).
    pub settling: bool,
    /// The last settlement trouble, in words.
    pub trouble: Option<String>,
    /// Where a txid is shown on the chain (`{root}/tx/{txid}`), if anywhere.
    pub chain_view: Option<String>,
    /// Give up on a settlement before signing.
    pub on_abort: Callback<TradeId>,
    /// Cancel a signed settlement whose other side went quiet.
    pub on_cancel: Callback<TradeId>,
    /// How amounts and prices are written.
    pub units: Rc<Units>,
}

fn settlement(
    units: &Units,
    v: &View,
    t: &Trade,
    chain_view: Option<&str>,
    on_abort: &Callback<TradeId>,
    on_cancel: &Callback<TradeId>,
) -> Html {
    let rune = if t.pair.base == darkswap_orderbook::Asset::Btc {
        &t.pair.quote
    } else {
        &t.pair.base
    };
    let class = match v.step {
        Some(Step::Aborted | Step::Cancelled) => "error",
        Some(Step::Settled) => "ok",
        _ => "muted",
    };
    let abortable = matches!(
        v.step,
        None | Some(Step::Offered | Step::Checking | Step::Checked)
    );
    let abort = {
        let (id, on_abort) = (v.trade_id, on_abort.clone());
        Callback::from(move |_| on_abort.emit(id))
    };
    let cancel = {
        let (id, on_cancel) = (v.trade_id, on_cancel.clone());
        Callback::from(move |_| on_cancel.emit(id))
    };
    html! {
        <div class="settlement" data-testid="settlement" data-step={v.step.map_or("preparing", |s| s.label())}
            data-txid={v.txid.map(|t| t.to_string()).unwrap_or_default()}
            data-confirmations={v.confirmations.0.to_string()}>
            <div class={class} data-testid="settle-text">{ settle_text(v) }</div>
            if let Some(words) = gave_got(units, v, rune) {
                <div data-testid="settle-gave-got">{ words }</div>
            }
            if let Some(txid) = v.txid {
                <div class="mono">{ "swap " }
                    if let Some(root) = chain_view {
                        <a href={format!("{root}/tx/{txid}")} target="_blank" rel="noopener" data-testid="settle-txid">{ short(&txid.to_string()) }</a>
                    } else {
                        <span data-testid="settle-txid" title={txid.to_string()}>{ short(&txid.to_string()) }</span>
                    }
                    if let Some((whole, ours)) = v.fee {
                        { format!(" · fee {} sat, your share {} sat", whole.to_sat(), ours.to_sat()) }
                    }
                </div>
            }
            if v.cancel_offered {
                if let Some(fee) = v.cancel_fee {
                    <button type="button" data-testid="settle-cancel" onclick={cancel}>
                        { format!("Cancel: take back what you offered (fee {} sat, more than the swap paid, so it replaces it)", fee.to_sat()) }
                    </button>
                } else {
                    <div class="error">{ "The outputs you offered cannot pay for a cancel that replaces the swap." }</div>
                }
            }
            if abortable {
                <button type="button" data-testid="settle-abort" onclick={abort}>{ "Give up (nothing moves)" }</button>
            }
        </div>
    }
}

#[function_component(TradeList)]
pub fn trade_list(props: &TradeListProps) -> Html {
    let mut trades: Vec<&Trade> = props.trades.values().collect();
    trades.sort_by_key(|t| std::cmp::Reverse(t.updated_at_ms));
    let chain_view = props.chain_view.as_deref();
    html! {
        <section id="trades">
            <h2>{ format!("Trades ({})", trades.len()) }</h2>
            if trades.is_empty() {
                <p class="muted">{ "No trades yet. Take an order from the book to start one." }</p>
            }
            if let Some(trouble) = &props.trouble {
                <p class="muted" data-testid="settle-trouble">{ format!("Settlement: {trouble}") }</p>
            }
            <ul class="trades">
                { for trades.into_iter().map(|t| {
                    let view = props.settlements.get(&t.id_hex());
                    let unsettled = t.state == TradeState::Agreed && view.is_none()
                        && t.pair.settles_on_bitcoin();
                    let why = if !props.settling {
                        "this relay names no Bitcoin chain, so nothing settles here"
                    } else if t.fee_rate == 0 {
                        "agreed without a fee rate, so it is not settled on Bitcoin"
                    } else {
                        "waiting for the settlement to begin"
                    };
                    html! {
                        <li data-testid="trade" data-trade={t.id_hex()} data-state={t.state.label()}
                            data-role={format!("{:?}", t.role).to_lowercase()} data-amount={t.amount.to_string()}>
                            <span>{ describe(&props.units, t) }</span>
                            { " @ " }<span class="mono">{ price_text(&props.units, &t.pair, t.price) }</span>
                            { " with " }<span class="mono" title={t.counterparty.to_base58()}>{ short(&t.counterparty.to_base58()) }</span>
                            <div class={if matches!(t.state, TradeState::Rejected { .. } | TradeState::Aborted { .. }) { "error" } else { "muted" }}>
                                { state_text(&t.state, &t.pair) }
                            </div>
                            if let Some(v) = view {
                                { settlement(&props.units, v, t, chain_view, &props.on_abort, &props.on_cancel) }
                            } else if unsettled {
                                <div class="muted" data-testid="settle-none">{ why }</div>
                            }
                        </li>
                    }
                }) }
            </ul>
        </section>
    }
}
