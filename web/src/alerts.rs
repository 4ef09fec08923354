//! What deserves a trader's attention when they looked away, decided from the trade updates the
//! node reports and the settlement driver's views: an order of ours taken, a take of ours agreed
//! or refused, a trade aborted, a swap settled on the chain or stopped, and a settlement that
//! needs the trader's hand (the other side went quiet after our signatures left: only the
//! trader can cancel it). The page shows each as a toast, counts the unseen ones in the tab's
//! title, and (if the trader allowed it) raises a browser notification and a sound.

use std::collections::VecDeque;

use darkswap_net::{Trade, TradeRole, TradeState};
use darkswap_orderbook::Units;
use darkswap_settle::driver::View;
use darkswap_settle::Step;

use crate::words::{describe, price_text};

/// Most alerts kept on screen (oldest dropped first).
pub const MAX_ALERTS: usize = 3;

/// How long an alert stays once the trader could see it (the page in front).
pub const ALERT_SHOWN_MS: u64 = 10_000;

#[derive(Clone, PartialEq, Debug)]
pub struct Alert {
    /// Increases by one per alert raised on this page.
    pub seq: u64,
    pub title: &'static str,
    pub body: String,
    /// The trade it is about (hex id).
    pub trade: String,
    /// When it was raised, Unix ms.
    pub raised_ms: u64,
}

/// The alert `trade`'s update deserves, given what the page knew of it (`known`), if any.
/// Updates from before the page started (trades restored on load) raise none, nor does an
/// update that leaves the state as it was.
pub fn for_trade(
    units: &Units,
    known: Option<&Trade>,
    trade: &Trade,
    page_started_ms: u64,
) -> Option<(&'static str, String)> {
    if trade.updated_at_ms < page_started_ms || known.is_some_and(|k| k.state == trade.state) {
        return None;
    }
    let what = format!(
        "{} @ {}",
        describe(units, trade),
        price_text(units, &trade.pair, trade.price)
    );
    match (&trade.role, &trade.state) {
        (TradeRole::Maker, TradeState::Agreed) => Some((
            "Your order was taken",
            format!("{what}: agreed, awaiting settlement"),
        )),
        (TradeRole::Taker, TradeState::Agreed) => Some((
            "Your trade is agreed",
            format!("{what}: agreed, awaiting settlement"),
        )),
        (TradeRole::Taker, TradeState::Rejected { reason }) => Some((
            "The maker turned your take down",
            format!(
                "{what}: the maker said \"{}\"",
                crate::words::their_words(reason)
            ),
        )),
        (_, TradeState::Aborted { reason }) => Some((
            "A trade was aborted",
            format!("{what}: {}", crate::words::their_words(reason)),
        )),
        _ => None,
    }
}

/// The alert a settlement's change deserves, given the view the page had (`known`; none for a
/// settlement restored on load, which raises nothing) and its trade if the page has it.
pub fn for_settlement(
    units: &Units,
    known: Option<&View>,
    view: &View,
    trade: Option<&Trade>,
) -> Option<(&'static str, String)> {
    let known = known?;
    let what = trade.map_or_else(
        || format!("trade {}", &darkswap_net::trade_id_hex(&view.trade_id)[..8]),
        |t| describe(units, t),
    );
    let reason = crate::words::their_words(view.reason.as_deref().unwrap_or("no reason given"));
    if view.step != known.step {
        match view.step {
            Some(Step::Settled) => {
                return Some((
                    "Your trade settled",
                    format!(
                        "{what}: the swap is on the chain with {} confirmations",
                        view.confirmations.0
                    ),
                ))
            }
            Some(Step::Aborted) => {
                return Some((
                    "A settlement stopped",
                    format!("{what}: nothing moved: {reason}"),
                ))
            }
            Some(Step::Cancelled) => {
                return Some(("A settlement was cancelled", format!("{what}: {reason}")))
            }
            _ => {}
        }
    }
    if view.cancel_offered && !known.cancel_offered {
        return Some((
            "A trade needs you",
            format!(
                "{what}: {reason}. Open the trade to cancel it and take back what you offered."
            ),
        ));
    }
    None
}

/// The alerts on screen and how many the trader has not seen yet.
#[derive(Clone, PartialEq, Debug)]
pub struct Alerts {
    pub shown: VecDeque<Alert>,
    /// Raised while the page was hidden, since the trader last looked (shown in the tab's title).
    pub unseen: u32,
    /// The last alert's `seq` (0: none yet).
    pub last_seq: u64,
    /// Whether the page is in front of the trader (the browser says, on every change).
    pub visible: bool,
    /// Since when it is, Unix ms.
    pub visible_since_ms: u64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            shown: VecDeque::new(),
            unseen: 0,
            last_seq: 0,
            visible: true,
            visible_since_ms: 0,
        }
    }
}

impl Alerts {
    pub fn raise(&mut self, title: &'static str, body: String, trade: String, now_ms: u64) {
        self.last_seq += 1;
        if self.shown.len() == MAX_ALERTS {
            self.shown.pop_front();
        }
        self.shown.push_back(Alert {
            seq: self.last_seq,
            title,
            body,
            trade,
            raised_ms: now_ms,
        });
        if !self.visible {
            self.unseen = self.unseen.saturating_add(1);
        }
    }

    /// The trader closed one.
    pub fn dismiss(&mut self, seq: u64) {
        self.shown.retain(|a| a.seq != seq);
    }

    /// The page came in front of the trader (`true`: what was raised meanwhile is seen) or went
    /// to the background.
    pub fn set_visible(&mut self, visible: bool, now_ms: u64) {
        if visible && !self.visible {
            self.visible_since_ms = now_ms;
        }
        self.visible = visible;
        if visible {
            self.unseen = 0;
        }
    }

    /// Removes the alerts the trader has had in front of them for [`ALERT_SHOWN_MS`]; returns
    /// whether any went. While the page is hidden every alert stays.
    pub fn expire(&mut self, now_ms: u64) -> bool {
        if !self.visible {
            return false;
        }
        let before = self.shown.len();
        let since = self.visible_since_ms;
        self.shown
            .retain(|a| now_ms.saturating_sub(a.raised_ms.max(since)) < ALERT_SHOWN_MS);
        self.shown.len() != before
    }
}

/// The tab's title: the unseen count in front while there is one.
pub fn title(unseen: u32) -> String {
    match unseen {
        0 => "DarkSwap".into(),
        n => format!("({n}) DarkSwap"),
    }
}
