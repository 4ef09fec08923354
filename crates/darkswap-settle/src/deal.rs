//! What one side settles: the agreed trade in the swap's terms (which side gives the rune, how
//! many units, for how many satoshis, at what fee rate) and which role signs first.

use bitcoin::Amount;
use darkswap_orderbook::{quote_amount, Asset, Pair, Price, Side as BookSide};
use darkswap_proto::trade::{Agreement, TradeId};
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::send::FeeRate;
use darkswap_wallet::swap::{Side, Terms};

/// Our role in the trade's negotiation, which fixes the order of signing: the taker signs first
/// and sends its half; the maker checks it, signs last and broadcasts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The order was ours.
    Maker,
    /// We took someone else's order.
    Taker,
}

/// One side's view of an agreed trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deal {
    /// The trade.
    pub trade_id: TradeId,
    /// Maker or taker.
    pub role: Role,
    /// Rune seller or buyer.
    pub side: Side,
    /// What moves.
    pub terms: Terms,
}

/// Why an agreement does not settle on Bitcoin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DealError {
    /// The pair is not a rune against bitcoin.
    #[error("the pair {0} does not settle on Bitcoin (only a rune against BTC does)")]
    Pair(String),
    /// Neither party is us.
    #[error("we are neither the maker nor the taker of this agreement")]
    NotOurs,
    /// A zero amount on either leg.
    #[error("the agreement moves nothing on one of its legs")]
    Empty,
    /// The agreement names no usable fee rate (0: it was made without settlement).
    #[error("the agreement names no usable fee rate ({0} sat/vB)")]
    FeeRate(u64),
}

/// What a trade is, in the book's words, before any side is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade<'a> {
    /// The trade.
    pub trade_id: TradeId,
    /// The order's pair.
    pub pair: &'a Pair,
    /// The maker's side of the order.
    pub maker_side: BookSide,
    /// Base units traded.
    pub amount: u64,
    /// Quote units paid for them.
    pub quote_amount: u64,
    /// The settlement's fee rate (sat/vB).
    pub fee_rate: u64,
}

impl Deal {
    /// Our side of `agreement` (`me` is our PeerId's bytes, compared with the maker's and the
    /// taker's), the rune being `rune` (the id the rune indexer gives the pair's rune name), at
    /// the fee rate the agreement names.
    pub fn from_agreement(
        agreement: &Agreement,
        me: &[u8],
        rune: RuneId,
    ) -> Result<Deal, DealError> {
        let role = if agreement.maker.to_bytes() == me {
            Role::Maker
        } else if agreement.taker.to_bytes() == me {
            Role::Taker
        } else {
            return Err(DealError::NotOurs);
        };
        let trade = Trade {
            trade_id: agreement.trade_id,
            pair: &agreement.pair,
            maker_side: agreement.maker_side,
            amount: agreement.amount,
            quote_amount: agreement.quote_amount,
            fee_rate: agreement.fee_rate,
        };
        Deal::new(role, trade, rune)
    }

    /// Our side of taking `amount` of an order at `price` (before the maker agrees: what the
    /// taker offers with its take).
    pub fn taking(
        trade_id: TradeId,
        pair: &Pair,
        maker_side: BookSide,
        price: Price,
        amount: u64,
        fee_rate: u64,
        rune: RuneId,
    ) -> Result<Deal, DealError> {
        let quote_amount = quote_amount(amount, price).ok_or(DealError::Empty)?;
        let trade = Trade {
            trade_id,
            pair,
            maker_side,
            amount,
            quote_amount,
            fee_rate,
        };
        Deal::new(Role::Taker, trade, rune)
    }

    /// `role`'s side of `trade`, the rune being `rune`.
    pub fn new(role: Role, trade: Trade<'_>, rune: RuneId) -> Result<Deal, DealError> {
        // Who gives the rune: with the rune as the base, the base's seller; with the rune as
        // the quote (BTC/RUNE), the base's buyer.
        let (rune_is_base, units, sats) = match (&trade.pair.base, &trade.pair.quote) {
            (Asset::Rune(_), Asset::Btc) => (true, trade.amount, trade.quote_amount),
            (Asset::Btc, Asset::Rune(_)) => (false, trade.quote_amount, trade.amount),
            _ => return Err(DealError::Pair(trade.pair.to_string())),
        };
        if units == 0 || sats == 0 {
            return Err(DealError::Empty);
        }
        let fee_rate =
            FeeRate::sat_per_vb(trade.fee_rate).map_err(|_| DealError::FeeRate(trade.fee_rate))?;
        let maker_sells_base = trade.maker_side == BookSide::Sell;
        let maker_gives_rune = maker_sells_base == rune_is_base;
        let we_give_rune = maker_gives_rune == (role == Role::Maker);
        Ok(Deal {
            trade_id: trade.trade_id,
            role,
            side: if we_give_rune {
                Side::Seller
            } else {
                Side::Buyer
            },
            terms: Terms {
                rune,
                units: u128::from(units),
                price: Amount::from_sat(sats),
                fee_rate,
            },
        })
    }

    /// The other side of the swap.
    pub fn their_side(&self) -> Side {
        match self.side {
            Side::Seller => Side::Buyer,
            Side::Buyer => Side::Seller,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_orderbook::{OrderId, Pair, Price, PRICE_SCALE};
    use darkswap_proto::trade::Agreement;
    use libp2p_identity::Keypair;

    fn agreement(pair: &str, maker_side: BookSide) -> (Agreement, Vec<u8>, Vec<u8>) {
        let maker = Keypair::generate_ed25519().public().to_peer_id();
        let taker = Keypair::generate_ed25519().public().to_peer_id();
        let a = Agreement::new(
            [1; 16],
            Pair::parse(pair).unwrap(),
            OrderId([2; 16]),
            maker,
            taker,
            maker_side,
            // 25 sats per 1,000,000 units: 40,000 units cost 1 sat, 400,000 cost 10.
            Price(PRICE_SCALE / 40_000),
            400_000,
            2,
            1_000,
        )
        .unwrap();
        (a, maker.to_bytes(), taker.to_bytes())
    }

    #[test]
    fn each_side_of_a_rune_for_btc_pair() {
        let rune = RuneId { block: 5, tx: 1 };
        let (a, maker, taker) = agreement("RUNE:DOG/BTC", BookSide::Sell);
        let m = Deal::from_agreement(&a, &maker, rune).unwrap();
        let t = Deal::from_agreement(&a, &taker, rune).unwrap();
        assert_eq!((m.role, m.side), (Role::Maker, Side::Seller));
        assert_eq!((t.role, t.side), (Role::Taker, Side::Buyer));
        assert_eq!(m.terms, t.terms);
        assert_eq!(m.terms.units, 400_000);
        assert_eq!(m.terms.price, Amount::from_sat(a.quote_amount));
        assert_eq!(m.terms.fee_rate.get(), 2);
        let (b, maker, _) = agreement("RUNE:DOG/BTC", BookSide::Buy);
        let m = Deal::from_agreement(&b, &maker, rune).unwrap();
        assert_eq!(m.side, Side::Buyer);
    }

    #[test]
    fn btc_for_rune_pairs_swap_the_legs() {
        let rune = RuneId { block: 5, tx: 1 };
        let (a, maker, _) = agreement("BTC/RUNE:DOG", BookSide::Sell);
        let m = Deal::from_agreement(&a, &maker, rune).unwrap();
        // The maker sells bitcoin: it buys the rune, paying `amount` satoshis.
        assert_eq!(m.side, Side::Buyer);
        assert_eq!(m.terms.price, Amount::from_sat(400_000));
        assert_eq!(m.terms.units, u128::from(a.quote_amount));
    }

    #[test]
    fn other_pairs_and_strangers_are_refused() {
        let rune = RuneId { block: 5, tx: 1 };
        let (a, maker, _) = agreement("BTC/USDT", BookSide::Sell);
        assert_eq!(
            Deal::from_agreement(&a, &maker, rune),
            Err(DealError::Pair("BTC/USDT".into()))
        );
        let (a, _, _) = agreement("RUNE:DOG/BTC", BookSide::Sell);
        let mut unpriced = a.clone();
        unpriced.fee_rate = 0;
        assert_eq!(
            Deal::from_agreement(&unpriced, &unpriced.maker.to_bytes(), rune),
            Err(DealError::FeeRate(0))
        );
        let stranger = Keypair::generate_ed25519().public().to_peer_id();
        assert_eq!(
            Deal::from_agreement(&a, &stranger.to_bytes(), rune),
            Err(DealError::NotOurs)
        );
    }
}
