//! The DarkSwap web client: a Yew single-page app compiled to WebAssembly.
//!
//! [`state`] (the page's state and its reducer), [`alerts`], [`funds`] (whether the wallet can
//! fund an order) and [`words`] compile natively too, so their unit tests and the
//! reducer benchmark run without a browser; everything that touches the DOM, IndexedDB or the
//! node's task is wasm32 only.

#[cfg(target_arch = "wasm32")]
mod alert_settings;
pub mod alerts;
#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod at_rest;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod credentials;
pub mod funds;
#[cfg(target_arch = "wasm32")]
mod hooks;
#[cfg(target_arch = "wasm32")]
mod identity;
#[cfg(target_arch = "wasm32")]
mod network;
#[cfg(target_arch = "wasm32")]
mod settle;
pub mod state;
#[cfg(target_arch = "wasm32")]
mod storage;
#[cfg(target_arch = "wasm32")]
mod timing;
#[cfg(target_arch = "wasm32")]
mod unit_settings;
#[cfg(target_arch = "wasm32")]
mod vault;
#[cfg(target_arch = "wasm32")]
mod wallet;
pub mod words;

/// Renders the app into the page.
#[cfg(target_arch = "wasm32")]
pub fn run() {
    timing::reached(timing::Milestone::Started);
    yew::Renderer::<app::App>::new().render();
}
