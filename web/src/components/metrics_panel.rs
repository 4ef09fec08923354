//! The trader's own metrics: current values, small charts of the last ten minutes, and the same
//! numbers as Prometheus text to paste into a bug report.

use darkswap_net::metrics::{ClientMetrics, Sample, HISTORY_SAMPLES, SAMPLE_INTERVAL_MS};
use std::rc::Rc;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct MetricsPanelProps {
    pub metrics: Rc<ClientMetrics>,
    /// The settlement driver's counters, exported after the client's.
    pub settle: Rc<darkswap_settle::driver::Counters>,
}

const W: f64 = 240.0;
const H: f64 = 40.0;

/// An SVG polyline of `values` (gaps where a value is missing), scaled to its own maximum,
/// with the last value and the maximum written with `decimals` decimals.
fn sparkline(title: &str, values: &[Option<f64>], unit: &str, decimals: usize) -> Html {
    let max = values.iter().flatten().fold(0.0f64, |a, b| a.max(*b));
    let last = values.iter().rev().flatten().next().copied();
    let step = W / (HISTORY_SAMPLES.max(2) - 1) as f64;
    let mut segments: Vec<String> = Vec::new();
    let mut current = String::new();
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let y = if max > 0.0 {
                    H - (v / max) * (H - 2.0) - 1.0
                } else {
                    H - 1.0
                };
                let _ = std::fmt::Write::write_fmt(
                    &mut current,
                    format_args!("{:.1},{:.1} ", i as f64 * step, y),
                );
            }
            None => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    html! {
        <figure class="spark">
            <figcaption>
                { title }{ ": " }
                if let Some(v) = last {
                    <strong>{ format!("{v:.decimals$} {unit}") }</strong>
                    <span class="muted">{ format!(" (max {max:.decimals$})") }</span>
                } else if values.is_empty() {
                    <span class="muted">{ format!("no sample yet (one every {} s)", SAMPLE_INTERVAL_MS / 1000) }</span>
                } else {
                    <strong>{ "—" }</strong>
                }
            </figcaption>
            <svg aria-hidden="true" viewBox={format!("0 0 {W} {H}")} width={W.to_string()} height={H.to_string()}>
                { for segments.into_iter().map(|points| html! {
                    <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
                }) }
            </svg>
        </figure>
    }
}

#[function_component(MetricsPanel)]
pub fn metrics_panel(props: &MetricsPanelProps) -> Html {
    let show_text = use_state(|| false);
    let m = &props.metrics;
    let history: Vec<&Sample> = m.history.iter().collect();
    let rtt: Vec<Option<f64>> = history.iter().map(|s| s.relay_rtt_ms).collect();
    let orders: Vec<Option<f64>> = history.iter().map(|s| Some(s.orders_seen as f64)).collect();
    let rejected_per_min: Vec<Option<f64>> = history
        .windows(2)
        .map(|w| {
            let dt = (w[1].at_ms.saturating_sub(w[0].at_ms)) as f64 / 60_000.0;
            let d = w[1]
                .messages_rejected
                .saturating_sub(w[0].messages_rejected) as f64;
            (dt > 0.0).then(|| d / dt)
        })
        .collect();
    let toggle = {
        let show_text = show_text.clone();
        Callback::from(move |_| show_text.set(!*show_text))
    };
    let agreed = m.trades_ended.get("agreed").copied().unwrap_or(0);
    html! {
        <section id="metrics">
            <h2>{ "My metrics" }</h2>
            <p data-testid="metrics-summary">
                { format!(
                    "relay {} · auth level {} · reconnects {} · moves to another relay {} · orders seen {} · my orders {} · trades agreed {} / open {} · messages refused {}",
                    m.relay_state.unwrap_or("starting"),
                    m.auth_level.unwrap_or("none"),
                    m.reconnects,
                    m.failovers,
                    m.orders_seen.values().sum::<u64>(),
                    m.own_orders,
                    agreed,
                    m.trades_open.len(),
                    m.messages_rejected.values().sum::<u64>(),
                ) }
            </p>
            <div class="sparks">
                { sparkline("relay RTT", &rtt, "ms", 1) }
                { sparkline("orders seen", &orders, "", 0) }
                { sparkline("messages refused", &rejected_per_min, "/min", 1) }
            </div>
            <button data-testid="metrics-toggle" onclick={toggle}>
                { if *show_text { "Hide Prometheus text" } else { "Show as Prometheus text (for a bug report)" } }
            </button>
            if *show_text {
                <pre class="mono" data-testid="metrics-text">{ m.to_prometheus_text() + &props.settle.to_prometheus_text() }</pre>
            }
        </section>
    }
}
