//! Whether the wallet can fund an order, before it is published: what the order spends (the
//! base asset when selling, the quote total when buying), plus what the trader's other live
//! orders already spend of the same asset, against what the wallet can spend now (confirmed,
//! not held back, not locked). Plain logic, native too, so its tests run without a browser.

use std::collections::BTreeMap;

use darkswap_orderbook::{quote_amount, Asset, Pair, Price, Side};

/// What the order form knows of the wallet.
#[derive(Clone, Debug, PartialEq)]
pub enum WalletView {
    /// The relay names no Bitcoin network: the page has no wallet, orders are not checked
    /// against funds (and nothing settles; the order form says so).
    NoChain,
    /// The page has not learned yet whether the relay names one, or could not: the words
    /// say which.
    Unknown(String),
    /// The relay names one, but the wallet is not unlocked (or not read yet).
    Locked,
    /// Unlocked and read from the chain.
    Unlocked(Funds),
}

/// What the wallet can spend now, by asset.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Funds {
    /// Confirmed plain bitcoin, in satoshis.
    pub btc_sats: u64,
    /// Confirmed units of each rune, by its name without spacers (as `RUNE:` pairs name it).
    pub runes: BTreeMap<String, u128>,
}

impl Funds {
    /// How much of `asset` the wallet can spend; `None` for an asset a Bitcoin wallet cannot
    /// hold.
    pub fn of(&self, asset: &Asset) -> Option<u128> {
        match asset {
            Asset::Btc => Some(u128::from(self.btc_sats)),
            Asset::Rune(name) => Some(self.runes.get(name).copied().unwrap_or(0)),
            Asset::Other(_) => None,
        }
    }
}

/// Why an order is not published.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FundingError {
    /// Whether the relay names a chain is not known.
    #[error("cannot check this order against the wallet: {0}")]
    Unknown(String),
    /// The wallet is locked or has not read the chain.
    #[error("unlock the wallet (and let it read the chain) to place orders: orders are checked against what it holds")]
    Locked,
    /// An asset that does not live on Bitcoin.
    #[error("{0} is not a Bitcoin asset: the wallet cannot fund or receive it")]
    NotOnBitcoin(Asset),
    /// Not enough.
    #[error("the wallet cannot fund this order: it needs {need} {asset} (with your other open orders), and {have} can be spent")]
    Short {
        /// The asset spent.
        asset: Asset,
        /// This order plus the other live orders spending it, in smallest units.
        need: u128,
        /// What the wallet can spend, in smallest units.
        have: u128,
    },
    /// The total does not fit.
    #[error("the order's total is too large")]
    TooLarge,
}

/// The asset an order spends and how much, in smallest units.
pub fn spends(pair: &Pair, side: Side, amount: u64, price: Price) -> Option<(Asset, u128)> {
    match side {
        Side::Sell => Some((pair.base.clone(), u128::from(amount))),
        Side::Buy => Some((pair.quote.clone(), u128::from(quote_amount(amount, price)?))),
    }
}

/// Whether the wallet can fund a new order; `others` are the trader's other live orders
/// (pair, side, remaining amount, price).
pub fn check(
    view: &WalletView,
    pair: &Pair,
    side: Side,
    amount: u64,
    price: Price,
    others: &[(Pair, Side, u64, Price)],
) -> Result<(), FundingError> {
    let funds = match view {
        WalletView::NoChain => return Ok(()),
        WalletView::Unknown(why) => return Err(FundingError::Unknown(why.clone())),
        WalletView::Locked => return Err(FundingError::Locked),
        WalletView::Unlocked(f) => f,
    };
    for asset in [&pair.base, &pair.quote] {
        if funds.of(asset).is_none() {
            return Err(FundingError::NotOnBitcoin(asset.clone()));
        }
    }
    let (asset, this) = spends(pair, side, amount, price).ok_or(FundingError::TooLarge)?;
    let mut need = this;
    for (p, s, a, pr) in others {
        if let Some((other_asset, n)) = spends(p, *s, *a, *pr) {
            if other_asset == asset {
                need = need.checked_add(n).ok_or(FundingError::TooLarge)?;
            }
        }
    }
    let have = funds.of(&asset).unwrap_or(0);
    if need > have {
        return Err(FundingError::Short { asset, need, have });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> Pair {
        Pair::parse("RUNE:DARKSWAPTESTRUNE/BTC").unwrap()
    }

    fn funds(btc_sats: u64, rune: u128) -> WalletView {
        WalletView::Unlocked(Funds {
            btc_sats,
            runes: [("DARKSWAPTESTRUNE".to_string(), rune)]
                .into_iter()
                .collect(),
        })
    }

    fn price(text: &str) -> Price {
        Price::parse_decimal(text).unwrap()
    }

    #[test]
    fn selling_spends_the_base_buying_the_quote_total() {
        let p = pair();
        let one = price("1");
        assert_eq!(check(&funds(0, 100), &p, Side::Sell, 100, one, &[]), Ok(()));
        assert_eq!(
            check(&funds(0, 99), &p, Side::Sell, 100, one, &[]),
            Err(FundingError::Short {
                asset: p.base.clone(),
                need: 100,
                have: 99
            })
        );
        // Buying 1,000 units at 0.5 sat each spends 500 sat.
        let half = price("0.5");
        assert_eq!(
            check(&funds(500, 0), &p, Side::Buy, 1000, half, &[]),
            Ok(())
        );
        assert!(matches!(
            check(&funds(499, 0), &p, Side::Buy, 1000, half, &[]),
            Err(FundingError::Short {
                need: 500,
                have: 499,
                ..
            })
        ));
    }

    #[test]
    fn other_open_orders_on_the_same_asset_count() {
        let p = pair();
        let one = price("1");
        let others = [
            (p.clone(), Side::Sell, 60, one),
            // Buying spends bitcoin, not the rune.
            (p.clone(), Side::Buy, 1_000, one),
        ];
        assert_eq!(
            check(&funds(0, 100), &p, Side::Sell, 40, one, &others),
            Ok(())
        );
        assert!(matches!(
            check(&funds(0, 100), &p, Side::Sell, 41, one, &others),
            Err(FundingError::Short { need: 101, .. })
        ));
    }

    #[test]
    fn locked_refuses_no_chain_allows_other_assets_refused() {
        let p = pair();
        let one = price("1");
        assert_eq!(
            check(&WalletView::Locked, &p, Side::Sell, 1, one, &[]),
            Err(FundingError::Locked)
        );
        assert_eq!(
            check(&WalletView::NoChain, &p, Side::Sell, 1, one, &[]),
            Ok(())
        );
        assert!(matches!(
            check(
                &WalletView::Unknown("x".into()),
                &p,
                Side::Sell,
                1,
                one,
                &[]
            ),
            Err(FundingError::Unknown(_))
        ));
        let abc = Pair::parse("ABC/BTC").unwrap();
        assert!(matches!(
            check(&funds(1_000, 1_000), &abc, Side::Buy, 1, one, &[]),
            Err(FundingError::NotOnBitcoin(Asset::Other(_)))
        ));
    }
}
