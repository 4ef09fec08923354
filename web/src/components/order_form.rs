//! Place a limit order on the selected pair. Every field is checked here with the same rules
//! the relays apply, and the reason is shown next to the form; where the relay names a chain,
//! the order must also be one the wallet can fund (`crate::funds`), and the form shows what
//! the wallet can spend of the pair's assets. Amounts and prices are typed and shown in the
//! pair's display units (`darkswap_orderbook::units`): BTC or sat as the trader chooses here,
//! each rune in its divisibility once the chain has told the page.

use std::collections::BTreeMap;
use std::rc::Rc;

use darkswap_net::{unix_time_ms, OwnOrder};
use darkswap_orderbook::{BtcUnit, Pair, PairUnits, Side, Units};
use darkswap_proto::order::{OrderInput, OrderSpec};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::funds::{check, FundingError, WalletView};
use crate::hooks::use_field_text;
use crate::words::{in_units, order_total};

/// The expiry the form offers.
const DEFAULT_TTL_MINUTES: u64 = 60;

#[derive(Properties, PartialEq)]
pub struct OrderFormProps {
    pub pair: Option<Pair>,
    /// The node's refusal of our last command, if any.
    pub error: Option<String>,
    pub on_place: Callback<(Pair, OrderSpec)>,
    /// What the wallet can fund (orders are refused that it cannot).
    pub wallet: WalletView,
    /// Our live orders, whose amounts the wallet must also cover.
    pub own: Rc<BTreeMap<String, OwnOrder>>,
    /// How amounts and prices are written.
    pub units: Rc<Units>,
    /// The trader chose how BTC is written.
    pub on_btc: Callback<BtcUnit>,
}

/// A funding refusal in the pair's display units.
fn funding_words(units: &Units, e: &FundingError) -> String {
    match e {
        FundingError::Short { asset, need, have } => {
            let write = |n: &u128| in_units(units, asset, u64::try_from(*n).unwrap_or(u64::MAX));
            format!(
                "the wallet cannot fund this order: it needs {} (with your other open orders), and {} can be spent",
                write(need),
                write(have)
            )
        }
        other => other.to_string(),
    }
}

#[function_component(OrderForm)]
pub fn order_form(props: &OrderFormProps) -> Html {
    let side = use_node_ref();
    let amount = use_node_ref();
    let price = use_node_ref();
    let min_fill = use_node_ref();
    let ttl = use_node_ref();
    let problem = use_state(|| None::<String>);
    // What was typed, kept so that what the order would do is worked out at every render, in
    // the units of that moment (a rune's divisibility can arrive, or BTC become sat, after
    // the trader typed).
    // The units in force at the last edit are kept too: an order typed in one unit is never
    // sent read in another (see the submit).
    let typed = use_state(|| (Side::Sell, String::new(), String::new(), None::<PairUnits>));
    let on_edit = {
        let (side, amount, price) = (side.clone(), amount.clone(), price.clone());
        let typed = typed.clone();
        let units_now = props.pair.as_ref().map(|p| props.units.pair(p));
        Callback::from(move |_: Event| {
            let text = |r: &NodeRef| {
                r.cast::<HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            let side = match side.cast::<HtmlSelectElement>().map(|s| s.value()) {
                Some(s) if s == "buy" => Side::Buy,
                _ => Side::Sell,
            };
            typed.set((side, text(&amount), text(&price), units_now.clone()));
        })
    };
    let total = props.pair.as_ref().and_then(|p| {
        let (side, amount, price, _) = &*typed;
        order_total(&props.units, p, *side, amount, price)
    });
    let on_input = on_edit.reform(|e: InputEvent| e.into());
    use_field_text(&ttl, DEFAULT_TTL_MINUTES.to_string());
    let onsubmit = {
        let (side, amount, price, min_fill, ttl) = (
            side.clone(),
            amount.clone(),
            price.clone(),
            min_fill.clone(),
            ttl.clone(),
        );
        let problem = problem.clone();
        let pair = props.pair.clone();
        let on_place = props.on_place.clone();
        let (wallet, own) = (props.wallet.clone(), props.own.clone());
        let units = props.units.clone();
        let typed = typed.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            let Some(pair) = pair.clone() else {
                problem.set(Some("choose a pair first".into()));
                return;
            };
            let current = units.pair(&pair);
            if let Some(then) = &typed.3 {
                if *then != current {
                    // The pair, the BTC unit or a rune's divisibility changed since the text
                    // was typed: the same digits would now mean another amount.
                    problem.set(Some(format!(
                        "the units changed since you typed: amounts are now in {}, prices in {}. Check the amount and price, then place the order again.",
                        current.base.label(),
                        current.price_label()
                    )));
                    let (side, amount, price, _) = (*typed).clone();
                    typed.set((side, amount, price, Some(current)));
                    return;
                }
            }
            let text = |r: &NodeRef| {
                r.cast::<HtmlInputElement>()
                    .map(|i| i.value())
                    .unwrap_or_default()
            };
            let side = side
                .cast::<HtmlSelectElement>()
                .map(|s| s.value())
                .unwrap_or_default();
            let ttl_secs = match text(&ttl).trim().parse::<u64>() {
                Ok(minutes) => minutes.saturating_mul(60).to_string(),
                Err(_) => {
                    problem.set(Some("expiry: a whole number of minutes".into()));
                    return;
                }
            };
            let (amount, price, min_fill) = (text(&amount), text(&price), text(&min_fill));
            let input = OrderInput {
                side: &side,
                amount: &amount,
                price: &price,
                min_fill: &min_fill,
                ttl_secs: &ttl_secs,
            };
            match input.parse_in(&units.pair(&pair), unix_time_ms()) {
                Ok(spec) => {
                    let others: Vec<_> = own
                        .values()
                        .map(|o| (o.pair.clone(), o.spec.side, o.spec.amount, o.spec.price))
                        .collect();
                    if let Err(e) =
                        check(&wallet, &pair, spec.side, spec.amount, spec.price, &others)
                    {
                        problem.set(Some(funding_words(&units, &e)));
                        return;
                    }
                    problem.set(None);
                    on_place.emit((pair, spec));
                }
                Err(e) => problem.set(Some(e.to_string())),
            }
        })
    };
    let shown_error = (*problem).clone().or_else(|| props.error.clone());
    let can_spend = match (&props.wallet, &props.pair) {
        (WalletView::NoChain, _) => {
            Some("No wallet on this relay: orders are not checked against funds.".to_string())
        }
        (WalletView::Locked, _) => Some(
            "Unlock the wallet to place orders: they are checked against what it holds."
                .to_string(),
        ),
        (WalletView::Unknown(_), _) => None,
        (WalletView::Unlocked(f), Some(p)) => Some(format!(
            "The wallet can spend {}.",
            [&p.base, &p.quote]
                .iter()
                .map(|a| match f.of(a) {
                    Some(n) => in_units(&props.units, a, u64::try_from(n).unwrap_or(u64::MAX)),
                    None => format!("no {a} (not a Bitcoin asset)"),
                })
                .collect::<Vec<_>>()
                .join(" and ")
        )),
        (WalletView::Unlocked(_), None) => None,
    };
    let units = props.pair.as_ref().map(|p| props.units.pair(p));
    let (amount_hint, price_hint) = match &units {
        Some(u) => (u.base.label(), u.price_label()),
        None => ("amount".into(), "quote per base".into()),
    };
    // A rune the chain has not told the page about is typed in its smallest units, and said so.
    let unknown = props.pair.as_ref().and_then(|p| {
        [&p.base, &p.quote]
            .into_iter()
            .find(|a| matches!(a, darkswap_orderbook::Asset::Rune(_)) && !props.units.knows(a))
            .map(|a| format!("{a} is typed in its smallest units: its divisibility is not known (the relay names no chain with ord, or the rune is not etched on it)."))
    });
    let on_btc = {
        let on_btc = props.on_btc.clone();
        Callback::from(move |e: Event| {
            if let Some(select) = e.target_dyn_into::<HtmlSelectElement>() {
                on_btc.emit(if select.value() == "btc" {
                    BtcUnit::Btc
                } else {
                    BtcUnit::Sat
                });
            }
        })
    };
    let btc_unit = props.units.btc();
    html! {
        <section id="order-form">
            <h2>{ match &props.pair { Some(p) => format!("New order on {p}"), None => "New order".into() } }</h2>
            <form class="order" {onsubmit} oninput={on_input} onchange={on_edit}>
                <select ref={side} data-testid="order-side" aria-label="side: sell or buy the base asset">
                    <option value="sell">{ "sell" }</option>
                    <option value="buy">{ "buy" }</option>
                </select>
                <label>{ format!("amount ({amount_hint}) ") }<input type="text" inputmode="decimal" ref={amount} placeholder={amount_hint.clone()} data-testid="order-amount" /></label>
                <label>{ format!("price ({price_hint}) ") }<input type="text" inputmode="decimal" ref={price} placeholder={price_hint} data-testid="order-price" /></label>
                <label>{ "min fill " }<input type="text" inputmode="decimal" ref={min_fill} placeholder={format!("any ({amount_hint})")} data-testid="order-min-fill" /></label>
                <label>{ "expires in (min) " }<input type="text" inputmode="numeric" ref={ttl} data-testid="order-ttl" /></label>
                <button type="submit" data-testid="order-place" disabled={props.pair.is_none()}>{ "Place order" }</button>
            </form>
            <label class="muted">{ "show bitcoin in " }
                <select data-testid="btc-unit" onchange={on_btc} aria-label="show bitcoin in BTC or in satoshis">
                    <option value="sat" selected={btc_unit == BtcUnit::Sat}>{ "sat" }</option>
                    <option value="btc" selected={btc_unit == BtcUnit::Btc}>{ "BTC" }</option>
                </select>
            </label>
            if let Some(u) = unknown { <p class="muted" data-testid="order-units-unknown">{ u }</p> }
            if let Some(t) = &total { <p class="total" data-testid="order-total" aria-live="polite">{ t }</p> }
            if let Some(c) = can_spend { <p class="muted" data-testid="order-funds">{ c }</p> }
            if let Some(e) = shown_error { <div class="error" data-testid="order-error">{ e }</div> }
        </section>
    }
}
