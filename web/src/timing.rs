//! Start-up milestones as User Timing marks (`performance.mark`), the first time each is
//! reached: what the browser's developer tools show on the performance timeline, and what
//! `tests/e2e/bench-load.mjs` reads to break a page load down into its steps.

use std::cell::Cell;

use darkswap_net::{AuthEvent, NodeEvent, RelayStatus};

/// The steps of a start-up, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Milestone {
    /// The wasm module runs (fetched, compiled, instantiated).
    Started,
    /// The identity key is loaded from IndexedDB or created.
    Identity,
    /// The relay's addresses came from relay-info.
    RelayInfo,
    /// The node's task runs (credentials read, transports built).
    NodeRunning,
    /// The first dial to the relay went out.
    Dialing,
    /// A connection to the relay is up.
    Connected,
    /// The relay granted a level.
    Granted,
    /// The relay holds our reservation.
    Reserved,
}

impl Milestone {
    fn name(self) -> &'static str {
        match self {
            Milestone::Started => "darkswap:started",
            Milestone::Identity => "darkswap:identity",
            Milestone::RelayInfo => "darkswap:relay-info",
            Milestone::NodeRunning => "darkswap:node-running",
            Milestone::Dialing => "darkswap:dialing",
            Milestone::Connected => "darkswap:connected",
            Milestone::Granted => "darkswap:granted",
            Milestone::Reserved => "darkswap:reserved",
        }
    }

    /// The milestone a node event reaches, if any.
    pub fn of(event: &NodeEvent) -> Option<Milestone> {
        match event {
            NodeEvent::Relay(RelayStatus::Connecting { .. }) => Some(Milestone::Dialing),
            NodeEvent::Relay(RelayStatus::Connected { .. }) => Some(Milestone::Connected),
            NodeEvent::Relay(RelayStatus::Reserved { .. }) => Some(Milestone::Reserved),
            NodeEvent::Auth(AuthEvent::Granted(_)) => Some(Milestone::Granted),
            _ => None,
        }
    }
}

thread_local! {
    static REACHED: Cell<u8> = const { Cell::new(0) };
}

/// Marks `milestone` on the page's performance timeline, once per page load.
pub fn reached(milestone: Milestone) {
    let bit = 1u8 << (milestone as u8);
    if REACHED.with(|r| r.replace(r.get() | bit)) & bit != 0 {
        return;
    }
    // A browser without the User Timing API simply has no marks.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark(milestone.name());
    }
}
