//! The trades a book has seen on each followed pair, as makers report them: a maker republishes
//! its order with what a trade left (the difference was traded at the order's price), or
//! withdraws it as filled (what the book last held of it was traded). Both are signed by the
//! maker like the order itself, so the tape holds nothing a stranger could invent; a maker can
//! still report trades of its own making (as it could trade with itself), so each maker holds
//! at most a share of it. A maker reports a trade when it is agreed: a settlement that then
//! fails is not taken back. It holds only what was seen while following the pair (a book sync
//! carries no history). Bounded per pair; forgotten with the pair.

use std::collections::{HashMap, VecDeque};

use darkswap_orderbook::{Pair, Price, Side};
use darkswap_proto::order::{OrderAction, OrderSpec};
use libp2p::PeerId;

/// Trades kept per pair, newest first.
pub const MAX_TAPE_FILLS: usize = 50;
/// Trades kept per pair from one maker: a maker reporting fills of its own orders at will
/// (what the protocol cannot prevent: it may trade with itself) fills at most this share.
pub const MAX_TAPE_FILLS_PER_MAKER: usize = 10;

/// One trade on a pair, as its maker reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapeFill {
    /// The maker's order side: a sell order filled means a taker bought.
    pub maker_side: Side,
    /// The order's price: every fill of a resting order is at its price.
    pub price: Price,
    /// Base units traded.
    pub amount: u64,
    /// When the book learnt of it, Unix ms.
    pub at_ms: u64,
    /// The maker who reported it.
    pub maker: PeerId,
}

/// What an order message says was traded, given what the book held of that order before it
/// (`before`: the last accepted terms, `None` for an order the book did not hold). An order
/// republished with a smaller amount traded the difference; a cancel marked filled traded all
/// that was left. Anything else traded nothing.
pub fn traded(before: Option<&OrderSpec>, action: &OrderAction) -> Option<(Side, Price, u64)> {
    let before = before?;
    let amount = match action {
        OrderAction::Order(spec)
            if spec.nonce == before.nonce
                && spec.side == before.side
                && spec.price == before.price =>
        {
            before.amount.checked_sub(spec.amount)?
        }
        OrderAction::Cancel { filled: true, .. } => before.amount,
        _ => return None,
    };
    (amount > 0).then_some((before.side, before.price, amount))
}

/// The trades seen, per pair.
#[derive(Debug, Default)]
pub struct Tape {
    pairs: HashMap<Pair, VecDeque<TapeFill>>,
}

impl Tape {
    /// Records a trade on `pair`: beyond [`MAX_TAPE_FILLS_PER_MAKER`] from its maker, that
    /// maker's oldest goes; beyond [`MAX_TAPE_FILLS`], the oldest.
    pub fn record(&mut self, pair: &Pair, fill: TapeFill) {
        let fills = self.pairs.entry(pair.clone()).or_default();
        if fills.iter().filter(|f| f.maker == fill.maker).count() >= MAX_TAPE_FILLS_PER_MAKER {
            if let Some(oldest) = fills.iter().rposition(|f| f.maker == fill.maker) {
                fills.remove(oldest);
            }
        }
        if fills.len() >= MAX_TAPE_FILLS {
            fills.pop_back();
        }
        fills.push_front(fill);
    }

    /// The trades seen on `pair`, newest first.
    pub fn of(&self, pair: &Pair) -> Vec<TapeFill> {
        self.pairs
            .get(pair)
            .map(|f| f.iter().copied().collect())
            .unwrap_or_default()
    }

    /// We no longer follow `pair`.
    pub fn forget(&mut self, pair: &Pair) {
        self.pairs.remove(pair);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_orderbook::OrderId;
    use libp2p::identity::Keypair;

    fn spec(amount: u64) -> OrderSpec {
        OrderSpec {
            nonce: 7,
            side: Side::Sell,
            price: Price(500),
            amount,
            min_fill: 0,
            expires_at_ms: u64::MAX,
        }
    }

    #[test]
    fn a_smaller_republish_and_a_filled_cancel_are_trades_nothing_else_is() {
        let before = spec(1000);
        let reduced = OrderAction::Order(spec(600));
        assert_eq!(
            traded(Some(&before), &reduced),
            Some((Side::Sell, Price(500), 400))
        );
        let filled = OrderAction::Cancel {
            order_id: OrderId([1; 16]),
            filled: true,
        };
        assert_eq!(
            traded(Some(&spec(600)), &filled),
            Some((Side::Sell, Price(500), 600))
        );
        let cancel = OrderAction::Cancel {
            order_id: OrderId([1; 16]),
            filled: false,
        };
        assert_eq!(traded(Some(&before), &cancel), None, "a cancel is no trade");
        assert_eq!(traded(None, &reduced), None, "an order we did not hold");
        assert_eq!(
            traded(Some(&before), &OrderAction::Order(spec(1000))),
            None,
            "a re-announcement"
        );
        assert_eq!(
            traded(Some(&spec(600)), &OrderAction::Order(spec(1000))),
            None,
            "a larger amount is no trade"
        );
        let repriced = OrderSpec {
            price: Price(400),
            ..spec(600)
        };
        assert_eq!(
            traded(Some(&before), &OrderAction::Order(repriced)),
            None,
            "other terms are another order, not a fill"
        );
    }

    #[test]
    fn the_tape_is_bounded_newest_first_and_forgotten_with_the_pair() {
        let pair = Pair::parse("RUNE:X/BTC").unwrap();
        let mut tape = Tape::default();
        let fill = |n: u64, maker| TapeFill {
            maker_side: Side::Sell,
            price: Price(1),
            amount: n,
            at_ms: n,
            maker,
        };
        let makers: Vec<PeerId> = (0..10)
            .map(|_| Keypair::generate_ed25519().public().to_peer_id())
            .collect();
        for n in 0..(MAX_TAPE_FILLS as u64 + 5) {
            tape.record(&pair, fill(n, makers[n as usize % makers.len()]));
        }
        let fills = tape.of(&pair);
        assert_eq!(fills.len(), MAX_TAPE_FILLS);
        assert_eq!(fills[0].amount, MAX_TAPE_FILLS as u64 + 4);
        // One maker reporting trades at will holds at most its share.
        let loud = Keypair::generate_ed25519().public().to_peer_id();
        for n in 0..100 {
            tape.record(&pair, fill(1000 + n, loud));
        }
        let fills = tape.of(&pair);
        assert_eq!(fills.len(), MAX_TAPE_FILLS);
        let from_loud: Vec<u64> = fills
            .iter()
            .filter(|f| f.maker == loud)
            .map(|f| f.amount)
            .collect();
        assert_eq!(from_loud.len(), MAX_TAPE_FILLS_PER_MAKER);
        assert_eq!(from_loud[0], 1099, "its newest kept");
        tape.forget(&pair);
        assert!(tape.of(&pair).is_empty());
    }
}
