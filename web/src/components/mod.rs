//! One file per component.

mod connection_panel;
mod identity_panel;
mod message_log;
mod peer_list;
mod peer_row;

pub use connection_panel::ConnectionPanel;
pub use identity_panel::IdentityPanel;
pub use message_log::MessageLog;
pub use peer_list::PeerList;
pub use peer_row::PeerRow;

use yew::UseReducerHandle;

use crate::state::AppState;

/// Every panel reads the whole state; Yew re-renders it when the state changes.
#[derive(yew::Properties, PartialEq)]
pub struct StateProps {
    pub state: UseReducerHandle<AppState>,
}

/// `12D3KooW…abcd`: enough to tell peers apart at a glance.
pub fn short(peer: &str) -> String {
    if peer.len() <= 16 {
        return peer.to_string();
    }
    format!("{}…{}", &peer[..8], &peer[peer.len() - 6..])
}
