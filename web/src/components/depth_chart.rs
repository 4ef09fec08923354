//! The book's depth as a chart: how much is bid at or above each price (left, green) and asked
//! at or below it (right, red), over the levels the book view holds. Integer geometry: nothing
//! here rounds an amount, only pixels.

use darkswap_orderbook::LevelView;
use yew::prelude::*;

const W: u128 = 600;
const H: u128 = 120;

/// Step points of one side's cumulative depth, best price first, running on to `edge` (the
/// chart's left edge for bids, its right edge for asks) at the side's total.
fn steps(
    levels: &[LevelView],
    edge: u128,
    x: &dyn Fn(u64) -> u128,
    y: &dyn Fn(u128) -> u128,
) -> String {
    let mut points = Vec::with_capacity(levels.len() * 2 + 1);
    let mut cumulative: u128 = 0;
    if let Some(best) = levels.first() {
        points.push(format!("{},{}", x(best.price.0), H));
    }
    for level in levels {
        let px = x(level.price.0);
        points.push(format!("{px},{}", y(cumulative)));
        cumulative += u128::from(level.amount);
        points.push(format!("{px},{}", y(cumulative)));
    }
    if !levels.is_empty() {
        points.push(format!("{edge},{}", y(cumulative)));
    }
    points.join(" ")
}

#[derive(Properties, PartialEq)]
pub struct DepthChartProps {
    /// Best first (highest price first).
    pub bids: Vec<LevelView>,
    /// Best first (lowest price first).
    pub asks: Vec<LevelView>,
}

#[function_component(DepthChart)]
pub fn depth_chart(props: &DepthChartProps) -> Html {
    let prices = props
        .bids
        .iter()
        .chain(props.asks.iter())
        .map(|l| l.price.0);
    let (Some(low), Some(high)) = (prices.clone().min(), prices.max()) else {
        return html! {};
    };
    let total = |levels: &[LevelView]| levels.iter().map(|l| u128::from(l.amount)).sum::<u128>();
    let (bid_total, ask_total) = (total(&props.bids), total(&props.asks));
    let deepest = bid_total.max(ask_total).max(1);
    let span = u128::from(high - low);
    // A margin of one twentieth on each side, so the outermost levels are not on the edge; a
    // book with one price draws it in the middle.
    let x = move |price: u64| match span {
        0 => W / 2,
        _ => W / 20 + u128::from(price - low) * (W - W / 10) / span,
    };
    let y = move |amount: u128| H - amount * (H - 4) / deepest;
    let label = format!(
        "depth chart: {} bid levels holding {bid_total}, {} ask levels holding {ask_total}",
        props.bids.len(),
        props.asks.len()
    );
    html! {
        <svg class="depth-chart" data-testid="depth-chart" role="img" aria-label={label}
            viewBox={format!("0 0 {W} {H}")} preserveAspectRatio="none">
            <polyline class="bid" points={steps(&props.bids, 0, &x, &y)} />
            <polyline class="ask" points={steps(&props.asks, W, &x, &y)} />
        </svg>
    }
}
