//! The pair's last trades, as their makers reported them (a smaller republish or a withdrawal
//! marked filled, both signed), and a chart of their prices. Only what this page saw while it
//! followed the pair: a book sync carries no history, and the section says so. Integer
//! geometry: nothing here rounds a price, only pixels.

use darkswap_net::TapeFill;
use darkswap_orderbook::{PairUnits, Side};
use wasm_bindgen::JsValue;
use yew::prelude::*;

use super::short;

const W: u128 = 600;
const H: u128 = 80;
/// Trades listed (the chart draws every one the book view holds).
const LISTED: usize = 12;

#[derive(Properties, PartialEq)]
pub struct TradeTapeProps {
    /// Newest first.
    pub trades: Vec<TapeFill>,
    pub units: PairUnits,
}

/// Points of the price line, oldest trade on the left, evenly spaced; a single trade or a flat
/// line is drawn across the middle.
fn price_points(oldest_first: &[TapeFill]) -> String {
    let prices = oldest_first.iter().map(|t| t.price.0);
    let (Some(low), Some(high)) = (prices.clone().min(), prices.max()) else {
        return String::new();
    };
    let span = u128::from(high - low);
    let y = |p: u64| match span {
        0 => H / 2,
        _ => H - 4 - u128::from(p - low) * (H - 8) / span,
    };
    let n = oldest_first.len() as u128;
    let x = |i: usize| match n {
        1 => W / 2,
        _ => W / 20 + i as u128 * (W - W / 10) / (n - 1),
    };
    let mut points: Vec<String> = oldest_first
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{},{}", x(i), y(t.price.0)))
        .collect();
    if points.len() == 1 {
        // One trade: a short level line, so there is something to see.
        points = vec![
            format!("{},{}", W / 2 - 20, H / 2),
            format!("{},{}", W / 2 + 20, H / 2),
        ];
    }
    points.join(" ")
}

fn time(at_ms: u64) -> String {
    String::from(js_sys::Date::new(&JsValue::from_f64(at_ms as f64)).to_locale_time_string("en-GB"))
}

#[function_component(TradeTape)]
pub fn trade_tape(props: &TradeTapeProps) -> Html {
    // Nothing seen yet: no room taken from the book on a small screen.
    if props.trades.is_empty() {
        return html! {};
    }
    let u = &props.units;
    let oldest_first: Vec<TapeFill> = props.trades.iter().rev().copied().collect();
    let (first, last) = (oldest_first[0].price, props.trades[0].price);
    let label = format!(
        "price chart: {} trades, from {} to {} {}",
        oldest_first.len(),
        u.price(first),
        u.price(last),
        u.price_label()
    );
    html! {
        <>
            <h3>{ "Last trades" }</h3>
            <p class="muted">{ "Agreed trades seen since you followed this pair, as each maker reported it (signed); a settlement on Bitcoin may still have failed." }</p>
            <svg class="price-chart" data-testid="price-chart" role="img" aria-label={label}
                viewBox={format!("0 0 {W} {H}")} preserveAspectRatio="none">
                <polyline class="price" points={price_points(&oldest_first)} />
            </svg>
            <table class="orders">
                <thead><tr><th>{ "time" }</th><th>{ "taker" }</th><th>{ format!("price ({})", u.price_label()) }</th><th>{ format!("amount ({})", u.base.label()) }</th><th>{ "maker" }</th></tr></thead>
                <tbody>
                { for props.trades.iter().take(LISTED).map(|t| {
                    // A sell order filled: its taker bought.
                    let (class, taker) = match t.maker_side {
                        Side::Sell => ("bid", "bought"),
                        Side::Buy => ("ask", "sold"),
                    };
                    html! {
                        <tr data-testid="tape-fill" data-amount={t.amount.to_string()} data-price={t.price.0.to_string()}>
                            <td class="mono">{ time(t.at_ms) }</td>
                            <td class={class}>{ taker }</td>
                            <td class="mono">{ u.price(t.price) }</td>
                            <td class="mono num">{ u.base.number(u128::from(t.amount)) }</td>
                            <td class="mono" title={t.maker.to_base58()}>{ short(&t.maker.to_base58()) }</td>
                        </tr>
                    }
                }) }
                </tbody>
            </table>
        </>
    }
}
