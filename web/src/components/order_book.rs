//! The selected pair's book: depth by price level on each side, then the best orders. Only the
//! top of the book is rendered (the node sends at most `BOOK_VIEW_LEVELS` levels and
//! `BOOK_VIEW_ORDERS` orders per side), so a book of any size stays responsive.

use darkswap_net::{BookView, OrderView};
use darkswap_orderbook::{AssetUnit, LevelView, PairUnits, Side, Units};
use std::rc::Rc;
use yew::prelude::*;

use super::{short, DepthChart, TradeTape};
use crate::words::mid_price;

/// Levels drawn per side.
const LEVELS_SHOWN: usize = 12;
/// Orders listed per side.
const ORDERS_SHOWN: usize = 25;

#[derive(Properties, PartialEq)]
pub struct OrderBookProps {
    pub view: Option<Rc<BookView>>,
    pub synced: Option<(String, usize, f64)>,
    /// Take (order, amount, the settlement's fee rate in sat/vB); amount `None` takes everything
    /// available.
    pub on_take: Callback<(OrderView, Option<u64>, u64)>,
    /// Whether takes on this relay settle on Bitcoin (then the fee rate is asked).
    pub settling: bool,
    /// How amounts and prices are written.
    pub units: Rc<Units>,
    /// A take refused before it is sent (what was typed does not read), in words.
    pub on_refused: Callback<String>,
}

/// The settlement fee rate offered until the trader types one (sat/vB).
const DEFAULT_FEE_RATE: &str = "2";

fn level_rows(levels: &[LevelView], side: Side, max: u64, u: &PairUnits) -> Html {
    let class = match side {
        Side::Buy => "bid",
        Side::Sell => "ask",
    };
    html! {
        { for levels.iter().map(|l| {
            let width = l.amount.saturating_mul(100).checked_div(max).unwrap_or(0);
            html! {
                <tr class={class} data-testid="level" data-side={side.to_string()}>
                    <td class="side">{ class }</td>
                    <td class="mono">{ u.price(l.price) }</td>
                    <td class="mono num">{ u.base.number(u128::from(l.amount)) }</td>
                    <td class="num">{ l.orders }</td>
                    // An SVG bar, not a `style` attribute: the page's Content-Security-Policy
                    // allows no inline styles.
                    <td class="depth">
                        <svg class={classes!("bar", class)} viewBox="0 0 100 1" preserveAspectRatio="none" aria-hidden="true">
                            <rect width={width.to_string()} height="1" />
                        </svg>
                    </td>
                </tr>
            }
        }) }
    }
}

fn order_row(
    o: &OrderView,
    take_amount: &UseStateHandle<(String, Option<AssetUnit>)>,
    fee_rate: &UseStateHandle<String>,
    on_take: &Callback<(OrderView, Option<u64>, u64)>,
    on_refused: &Callback<String>,
    u: &PairUnits,
) -> Html {
    let take = {
        let order = o.clone();
        let (amount, fee_rate) = (take_amount.clone(), fee_rate.clone());
        let (on_take, on_refused) = (on_take.clone(), on_refused.clone());
        let base = u.base.clone();
        Callback::from(move |_| {
            // An unreadable rate is sent as 0, which the driver refuses in words.
            let rate = fee_rate.trim().parse().unwrap_or(0);
            let (typed, typed_in) = &*amount;
            let amount = match typed.trim() {
                "" => None,
                // Typed in another unit (BTC and sat switched, a rune's divisibility arrived,
                // another pair): the digits would mean another amount now.
                _ if typed_in.as_ref() != Some(&base) => {
                    amount.set((typed.clone(), Some(base.clone())));
                    return on_refused.emit(format!(
                        "the units changed since you typed the amount to take: it is now in {}. Check it, then take again.",
                        base.label()
                    ));
                }
                text => match base.read(text) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        return on_refused
                            .emit(format!("amount to take: {e} (in {})", base.label()))
                    }
                },
            };
            on_take.emit((order.clone(), amount, rate))
        })
    };
    let (price, amount) = (u.price(o.price), u.base.number(u128::from(o.amount)));
    html! {
        <tr data-testid="book-order" data-order={o.id.to_hex()} data-side={o.side.to_string()}
            data-amount={o.amount.to_string()} data-mine={o.mine.to_string()}>
            <td class={if o.side == Side::Buy { "bid" } else { "ask" }}>{ o.side.to_string() }</td>
            <td class="mono">{ price.clone() }</td>
            <td class="mono num">{ amount.clone() }</td>
            <td class="mono num">{ if o.min_fill > 1 { u.base.number(u128::from(o.min_fill)) } else { "any".into() } }</td>
            <td class="mono" title={o.maker.to_base58()}>{ if o.mine { "you".to_string() } else { short(&o.maker.to_base58()) } }</td>
            <td>if !o.mine {
                <button data-testid="take" onclick={take}
                    aria-label={format!("{} from this order: {} {} at {} {}", if o.side == Side::Sell { "Buy" } else { "Sell" }, o.side, u.base.write(u128::from(o.amount)), price, u.price_label())}>
                    { if o.side == Side::Sell { "Buy" } else { "Sell" } }
                </button>
            }</td>
        </tr>
    }
}

#[function_component(OrderBook)]
pub fn order_book(props: &OrderBookProps) -> Html {
    // What was typed, and the unit it was typed in.
    let take_amount = use_state(|| (String::new(), None::<AssetUnit>));
    let fee_rate = use_state(|| DEFAULT_FEE_RATE.to_string());
    let on_fee = {
        let fee_rate = fee_rate.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                fee_rate.set(input.value());
            }
        })
    };
    let on_amount = {
        let take_amount = take_amount.clone();
        let unit = props.view.as_ref().map(|v| props.units.pair(&v.pair).base);
        Callback::from(move |e: InputEvent| {
            if let Some(input) = e.target_dyn_into::<web_sys::HtmlInputElement>() {
                take_amount.set((input.value(), unit.clone()));
            }
        })
    };
    let Some(view) = &props.view else {
        return html! {
            <section id="book"><h2>{ "Order book" }</h2>
                <p class="muted">{ "Choose a pair to see its book." }</p></section>
        };
    };
    let asks: Vec<LevelView> = view.asks.iter().take(LEVELS_SHOWN).rev().copied().collect();
    let bids: Vec<LevelView> = view.bids.iter().take(LEVELS_SHOWN).copied().collect();
    let max = asks
        .iter()
        .chain(bids.iter())
        .map(|l| l.amount)
        .max()
        .unwrap_or(0);
    let u = props.units.pair(&view.pair);
    let spread = match (view.bids.first(), view.asks.first()) {
        (Some(b), Some(a)) if a.price > b.price => {
            format!(
                "spread {} · mid {} ({})",
                u.price(darkswap_orderbook::Price(a.price.0 - b.price.0)),
                mid_price(&u, b.price, a.price),
                u.price_label()
            )
        }
        (Some(_), Some(_)) => "crossed: a bid meets an ask (takers decide)".to_string(),
        _ => "no spread (one side is empty)".to_string(),
    };
    let best_orders: Vec<&OrderView> = view
        .orders
        .iter()
        .filter(|o| o.side == Side::Sell)
        .take(ORDERS_SHOWN)
        .chain(
            view.orders
                .iter()
                .filter(|o| o.side == Side::Buy)
                .take(ORDERS_SHOWN),
        )
        .collect();
    html! {
        <section id="book" data-testid="book" data-pair={view.pair.to_string()} data-total={view.total_orders.to_string()}>
            <h2>{ format!("Order book {} ({} live orders)", view.pair, view.total_orders) }</h2>
            if let Some((pair, n, ms)) = &props.synced {
                <p class="muted" data-testid="synced">{ format!("synced {n} orders of {pair} from the relay in {ms:.0} ms") }</p>
            }
            <table class="levels">
                <thead><tr><th>{ "side" }</th><th title={format!("in {}", u.price_label())}>{ "price" }</th><th title={format!("in {}", u.base.label())}>{ "amount" }</th><th>{ "orders" }</th><th class="depth">{ "depth" }</th></tr></thead>
                <tbody>
                    { level_rows(&asks, Side::Sell, max, &u) }
                    <tr class="spread"><td colspan="5" class="muted">{ spread }</td></tr>
                    { level_rows(&bids, Side::Buy, max, &u) }
                </tbody>
            </table>
            <DepthChart bids={view.bids.clone()} asks={view.asks.clone()} />
            <h3>{ "Best orders" }</h3>
            <label class="muted">{ "amount to take (empty: all available) " }
                <input type="text" inputmode="decimal" placeholder={u.base.label()} value={take_amount.0.clone()} oninput={on_amount} data-testid="take-amount" />
            </label>
            if props.settling && view.pair.settles_on_bitcoin() {
                <label class="muted">{ " settlement fee rate (sat/vB) " }
                    <input type="text" inputmode="numeric" value={(*fee_rate).clone()} oninput={on_fee} data-testid="take-fee-rate" size="4" />
                </label>
            }
            if best_orders.is_empty() {
                <p class="muted">{ "No live orders on this pair." }</p>
            } else {
                <table class="orders">
                    <thead><tr><th>{ "side" }</th><th>{ format!("price ({})", u.price_label()) }</th><th>{ format!("amount ({})", u.base.label()) }</th><th>{ "min fill" }</th><th>{ "maker" }</th><th></th></tr></thead>
                    <tbody>{ for best_orders.into_iter().map(|o| order_row(o, &take_amount, &fee_rate, &props.on_take, &props.on_refused, &u)) }</tbody>
                </table>
            }
            <TradeTape trades={view.trades.clone()} units={u.clone()} />
            <p class="muted">{ if props.settling && view.pair.settles_on_bitcoin() {
                "Taking an order negotiates a signed agreement with its maker and settles it on Bitcoin: one transaction swaps the runes and the bitcoin, both legs or neither."
            } else if view.pair.settles_on_bitcoin() {
                "Taking an order negotiates a signed agreement with its maker; this relay names no Bitcoin chain, so nothing settles here."
            } else {
                "Taking an order negotiates a signed agreement with its maker; this pair cannot settle on Bitcoin, so nothing moves."
            } }</p>
        </section>
    }
}
