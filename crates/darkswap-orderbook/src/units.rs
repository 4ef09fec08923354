//! Amounts and prices in the units a trader reads and types, exactly: BTC with up to 8 decimals
//! (or in satoshis, the trader's choice), each rune in its divisibility under its spaced name,
//! and a price in quote display units per base display unit. The wire and the book keep
//! integer smallest units; this only writes and reads them ([`crate::decimal`], no float).
//!
//! A rune's divisibility is a fact of the chain (its etching): the caller learns it from ord
//! and hands it to [`Units::learn_rune`]. Until then the rune is shown in its smallest units and
//! [`AssetUnit::known`] says so.

use std::collections::BTreeMap;

use crate::decimal::{self, DecimalError, Zeros};
use crate::{quote_amount, Asset, Pair, Price, PRICE_SCALE};

/// How many runes' units a catalog keeps (the pairs a trader follows, and what a wallet holds).
pub const MAX_KNOWN_RUNES: usize = 1024;
/// The largest divisibility a rune can have (ord's rule).
pub const MAX_RUNE_DIVISIBILITY: u8 = 38;
/// log10 of [`PRICE_SCALE`].
const PRICE_PLACES: i32 = 8;

/// How BTC is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BtcUnit {
    /// In bitcoin, up to 8 decimals ("0.5 BTC").
    #[default]
    Btc,
    /// In satoshis ("50000000 sat").
    Sat,
}

/// Why a typed amount or price is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    /// The text does not read as an amount in the unit.
    #[error("{0}")]
    Decimal(#[from] DecimalError),
    /// It reads, but is more than 64 bits of the smallest unit.
    #[error("too large")]
    TooLarge,
    /// A price of zero.
    #[error("must be greater than zero")]
    Zero,
}

/// One asset's display unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetUnit {
    /// Decimal places of one display unit, in smallest units.
    pub decimals: u8,
    /// What an amount is followed by: "BTC", "sat", a rune's spaced name, a ticker.
    pub name: String,
    /// False for a rune whose divisibility is not known (shown in smallest units).
    pub known: bool,
    zeros: Zeros,
}

impl AssetUnit {
    /// `smallest` units written in this unit, without its name ("0.5").
    pub fn number(&self, smallest: u128) -> String {
        decimal::format(smallest, i32::from(self.decimals), self.zeros)
    }

    /// `smallest` units written in this unit, with its name ("0.5 BTC", "1000.00 DARK•SWAP").
    pub fn write(&self, smallest: u128) -> String {
        format!("{} {}", self.number(smallest), self.name)
    }

    /// Reads an amount typed in this unit into smallest units.
    pub fn read(&self, text: &str) -> Result<u64, UnitsError> {
        let n = decimal::parse(text, i32::from(self.decimals))?;
        u64::try_from(n).map_err(|_| UnitsError::TooLarge)
    }

    /// The unit itself, for labels: "BTC", "DARK•SWAP", "RUNE:X unit".
    pub fn label(&self) -> String {
        if self.known {
            self.name.clone()
        } else {
            format!("{} unit", self.name)
        }
    }
}

/// A pair's units: amounts in the base's, prices in quote per base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairUnits {
    /// The base asset's unit (order amounts).
    pub base: AssetUnit,
    /// The quote asset's unit (totals, prices).
    pub quote: AssetUnit,
}

impl PairUnits {
    /// Smallest units on both sides: what the wire carries, and what the CLI types.
    pub fn smallest(pair: &Pair) -> PairUnits {
        Units::default().with_btc(BtcUnit::Sat).pair_smallest(pair)
    }

    /// Decimal places of a displayed price: a price is quote smallest units per 10⁸ base
    /// smallest units, and one display unit of each side is 10^decimals of them.
    pub fn price_places(&self) -> i32 {
        PRICE_PLACES + i32::from(self.quote.decimals) - i32::from(self.base.decimals)
    }

    /// `price` as quote display units per base display unit ("0.00002500").
    pub fn price(&self, price: Price) -> String {
        decimal::format(u128::from(price.0), self.price_places(), Zeros::Trim)
    }

    /// Reads a price typed in quote display units per base display unit.
    pub fn read_price(&self, text: &str) -> Result<Price, UnitsError> {
        let n = decimal::parse(text, self.price_places())?;
        match u64::try_from(n) {
            Ok(0) => Err(UnitsError::Zero),
            Ok(n) => Ok(Price(n)),
            Err(_) => Err(UnitsError::TooLarge),
        }
    }

    /// What a price is counted in: "sat per DARK•SWAP".
    pub fn price_label(&self) -> String {
        format!("{} per {}", self.quote.label(), self.base.label())
    }

    /// `amount` base smallest units with the base's name.
    pub fn amount(&self, amount: u64) -> String {
        self.base.write(u128::from(amount))
    }

    /// The quote paid for `amount` at `price`, with the quote's name; `None` when it does not
    /// fit in 64 bits.
    pub fn total(&self, amount: u64, price: Price) -> Option<String> {
        quote_amount(amount, price).map(|q| self.quote.write(u128::from(q)))
    }
}

/// What a trader's page knows of units: how BTC is written, and the runes whose divisibility
/// it has learned. Bounded by [`MAX_KNOWN_RUNES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Units {
    btc: BtcUnit,
    runes: BTreeMap<String, (String, u8)>,
}

impl Units {
    /// The same catalog with BTC written in `btc`.
    pub fn with_btc(mut self, btc: BtcUnit) -> Units {
        self.btc = btc;
        self
    }

    /// How BTC is written.
    pub fn btc(&self) -> BtcUnit {
        self.btc
    }

    /// Learns a rune's spaced name ("DARK•SWAP") and divisibility, as ord reports them. A name
    /// that does not spell a rune, or a divisibility above 38, is ignored and `false` returned;
    /// so is a new rune once [`MAX_KNOWN_RUNES`] are known.
    pub fn learn_rune(&mut self, spaced_name: &str, divisibility: u8) -> bool {
        if divisibility > MAX_RUNE_DIVISIBILITY {
            return false;
        }
        let Ok(Asset::Rune(name)) = Asset::parse(&format!("RUNE:{spaced_name}")) else {
            return false;
        };
        if self.runes.len() >= MAX_KNOWN_RUNES && !self.runes.contains_key(&name) {
            return false;
        }
        self.runes
            .insert(name, (spaced_name.to_string(), divisibility));
        true
    }

    /// Whether `asset` is a rune whose divisibility is known.
    pub fn knows(&self, asset: &Asset) -> bool {
        matches!(asset, Asset::Rune(n) if self.runes.contains_key(n))
    }

    /// How `asset` is written.
    pub fn asset(&self, asset: &Asset) -> AssetUnit {
        match asset {
            Asset::Btc => match self.btc {
                BtcUnit::Btc => unit(8, "BTC", true, Zeros::Trim),
                BtcUnit::Sat => unit(0, "sat", true, Zeros::Trim),
            },
            Asset::Rune(name) => match self.runes.get(name) {
                Some((spaced, d)) => unit(*d, spaced, true, Zeros::Keep),
                None => unit(0, &asset.to_string(), false, Zeros::Trim),
            },
            Asset::Other(ticker) => unit(0, ticker, true, Zeros::Trim),
        }
    }

    /// How amounts and prices on `pair` are written.
    pub fn pair(&self, pair: &Pair) -> PairUnits {
        PairUnits {
            base: self.asset(&pair.base),
            quote: self.asset(&pair.quote),
        }
    }

    fn pair_smallest(&self, pair: &Pair) -> PairUnits {
        let smallest = |a: &Asset| match a {
            Asset::Btc => unit(0, "sat", true, Zeros::Trim),
            other => unit(0, &other.to_string(), true, Zeros::Trim),
        };
        PairUnits {
            base: smallest(&pair.base),
            quote: smallest(&pair.quote),
        }
    }
}

fn unit(decimals: u8, name: &str, known: bool, zeros: Zeros) -> AssetUnit {
    AssetUnit {
        decimals,
        name: name.to_string(),
        known,
        zeros,
    }
}

const _: () = assert!(10u64.pow(PRICE_PLACES as u32) == PRICE_SCALE);

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(s: &str) -> Pair {
        Pair::parse(s).unwrap()
    }

    fn known() -> Units {
        let mut u = Units::default();
        assert!(u.learn_rune("DARK•SWAP", 2));
        u
    }

    #[test]
    fn half_a_bitcoin_is_fifty_million_satoshis() {
        let u = Units::default().pair(&pair("BTC/USDT"));
        assert_eq!(u.base.read("0.5"), Ok(50_000_000));
        assert_eq!(u.amount(50_000_000), "0.5 BTC");
        assert_eq!(
            u.base.read("0.000000001"),
            Err(DecimalError::TooPrecise(8).into())
        );
        // USDT per BTC: a price of 97,000 is 97,000 USDT units per 10^8 sat.
        assert_eq!(u.read_price("97000"), Ok(Price(97_000)));
        assert_eq!(u.price(Price(97_000)), "97000");
        let sats = Units::default()
            .with_btc(BtcUnit::Sat)
            .pair(&pair("BTC/USDT"));
        assert_eq!(sats.base.read("50000000"), Ok(50_000_000));
        assert_eq!(sats.read_price("0.00097"), Ok(Price(97_000)));
    }

    #[test]
    fn a_rune_reads_in_its_divisibility_and_its_price_in_sats_or_btc_per_rune() {
        let u = known()
            .with_btc(BtcUnit::Sat)
            .pair(&pair("RUNE:DARKSWAP/BTC"));
        assert_eq!(u.base.read("1000"), Ok(100_000));
        assert_eq!(u.amount(100_000), "1000.00 DARK•SWAP");
        // 5 sat per smallest unit is 500 sat per DARK•SWAP.
        assert_eq!(u.read_price("500"), Ok(Price(5 * PRICE_SCALE)));
        assert_eq!(u.price(Price(5 * PRICE_SCALE)), "500");
        assert_eq!(u.price_label(), "sat per DARK•SWAP");
        assert_eq!(
            u.total(40_000, Price(5 * PRICE_SCALE)),
            Some("200000 sat".into())
        );
        let btc = known().pair(&pair("RUNE:DARKSWAP/BTC"));
        assert_eq!(btc.price(Price(5 * PRICE_SCALE)), "0.000005");
        assert_eq!(btc.read_price("0.000005"), Ok(Price(5 * PRICE_SCALE)));
        assert_eq!(
            btc.total(40_000, Price(5 * PRICE_SCALE)),
            Some("0.002 BTC".into())
        );
        assert_eq!(btc.read_price("0"), Err(UnitsError::Zero));
    }

    #[test]
    fn an_unknown_rune_stays_in_smallest_units_and_says_so() {
        let u = Units::default()
            .with_btc(BtcUnit::Sat)
            .pair(&pair("RUNE:X/BTC"));
        assert!(!u.base.known);
        assert_eq!(u.base.label(), "RUNE:X unit");
        assert_eq!(u.base.read("1000"), Ok(1000));
        assert_eq!(u.read_price("0.5"), Ok(Price(PRICE_SCALE / 2)));
        assert_eq!(
            PairUnits::smallest(&pair("RUNE:X/BTC")).read_price("0.5"),
            Ok(Price(PRICE_SCALE / 2))
        );
    }

    #[test]
    fn a_base_finer_than_the_quote_prices_in_multiples() {
        // 18 decimals against satoshis: one display unit is 10^18 smallest units, so a price
        // step is 10^10 sat... per display unit, written with zeros.
        let mut u = Units::default().with_btc(BtcUnit::Sat);
        assert!(u.learn_rune("FINE", 18));
        let p = u.pair(&pair("RUNE:FINE/BTC"));
        assert_eq!(p.price(Price(3)), "30000000000");
        assert_eq!(p.read_price("30000000000"), Ok(Price(3)));
        assert!(matches!(
            p.read_price("31"),
            Err(UnitsError::Decimal(DecimalError::NotAMultiple(_)))
        ));
    }

    #[test]
    fn only_real_runes_are_learned_and_the_catalog_is_bounded() {
        let mut u = Units::default();
        assert!(!u.learn_rune("bad name!", 2));
        assert!(!u.learn_rune("A", 39));
        for i in 0..MAX_KNOWN_RUNES {
            let name: String = format!("{i:04}")
                .bytes()
                .map(|b| char::from(b'A' + (b - b'0')))
                .collect();
            assert!(u.learn_rune(&name, 0));
        }
        assert!(!u.learn_rune("ZZZZZ", 1));
        assert!(u.learn_rune("AAAA", 3), "a known rune is updated");
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn display_parse_display_is_exact_for_every_asset_kind(
            amount: u64,
            price in 1u64..,
            d in 0u8..=38,
            sats: bool,
            base in 0usize..4,
            quote in 0usize..4,
        ) {
            let mut units = Units::default().with_btc(if sats { BtcUnit::Sat } else { BtcUnit::Btc });
            units.learn_rune("KNOWN•RUNE", d);
            let assets = ["BTC", "RUNE:KNOWN•RUNE", "RUNE:UNKNOWN", "USDT"];
            let Ok(pair) = Pair::parse(&format!("{}/{}", assets[base], assets[quote])) else {
                return Ok(());
            };
            let u = units.pair(&pair);
            let shown = u.base.number(u128::from(amount));
            proptest::prop_assert_eq!(u.base.read(&shown), Ok(amount));
            proptest::prop_assert_eq!(u.base.number(u128::from(u.base.read(&shown).unwrap())), shown);
            let shown = u.price(Price(price));
            proptest::prop_assert_eq!(u.read_price(&shown), Ok(Price(price)));
            proptest::prop_assert_eq!(u.price(u.read_price(&shown).unwrap()), shown);
        }
    }
}
