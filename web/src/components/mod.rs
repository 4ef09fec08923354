//! One file per component.

mod alert_panel;
mod alert_toasts;
mod auth_panel;
mod connection_panel;
mod depth_chart;
mod identity_panel;
mod keys_unlock;
mod message_log;
mod metrics_panel;
mod my_orders;
mod order_book;
mod order_form;
mod pair_selector;
mod peer_list;
mod peer_row;
mod relay_pool;
mod status_bar;
mod trade_list;
mod trade_tape;
mod wallet_panel;

pub use alert_panel::AlertPanel;
pub use alert_toasts::AlertToasts;
pub use auth_panel::AuthPanel;
pub use connection_panel::ConnectionPanel;
pub use depth_chart::DepthChart;
pub use identity_panel::IdentityPanel;
pub use keys_unlock::KeysUnlock;
pub use message_log::MessageLog;
pub use metrics_panel::MetricsPanel;
pub use my_orders::MyOrders;
pub use order_book::OrderBook;
pub use order_form::OrderForm;
pub use pair_selector::PairSelector;
pub use peer_list::PeerList;
pub use peer_row::PeerRow;
pub use relay_pool::RelayPool;
pub use status_bar::{Panel, StatusBar};
pub use trade_list::TradeList;
pub use trade_tape::TradeTape;
pub use wallet_panel::WalletPanel;

use yew::UseReducerHandle;

use crate::state::AppState;

/// Every panel reads the whole state; Yew re-renders it when the state changes.
#[derive(yew::Properties, PartialEq)]
pub struct StateProps {
    pub state: UseReducerHandle<AppState>,
}

/// What was typed into the input behind `field`, which is emptied (passwords do not linger).
pub fn take_text(field: &yew::NodeRef) -> String {
    let Some(input) = field.cast::<web_sys::HtmlInputElement>() else {
        return String::new();
    };
    let text = input.value();
    input.set_value("");
    text
}

/// `12D3KooW…abcd`: enough to tell peers apart at a glance.
pub fn short(peer: &str) -> String {
    if peer.len() <= 16 {
        return peer.to_string();
    }
    format!("{}…{}", &peer[..8], &peer[peer.len() - 6..])
}
