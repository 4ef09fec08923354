//! A trade in words a trader reads: what we do in it and where it stands. Used by the trades
//! list and by the alerts, so both say the same thing.

use darkswap_net::{Trade, TradeRole, TradeState};
use darkswap_orderbook::{quote_amount, Side};

/// "buy 400 RUNE:X for 200 BTC": what *we* do in the trade.
pub fn describe(t: &Trade) -> String {
    let we_buy = (t.role == TradeRole::Taker) == (t.maker_side == Side::Sell);
    let quote = quote_amount(t.amount, t.price).unwrap_or(0);
    format!(
        "{} {} {} for {} {}",
        if we_buy { "buy" } else { "sell" },
        t.amount,
        t.pair.base,
        quote,
        t.pair.quote
    )
}

/// Where the trade stands, and for a live one what happens next.
pub fn state_text(state: &TradeState) -> String {
    match state {
        TradeState::Requested => "requested — waiting for the maker".into(),
        TradeState::Accepted => "accepted — signing".into(),
        TradeState::Agreed => "agreed — awaiting settlement".into(),
        TradeState::Rejected { reason } => format!("rejected: {reason}"),
        TradeState::Aborted { reason } => format!("aborted: {reason}"),
    }
}
