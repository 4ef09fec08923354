//! Assets and trading pairs, and the rules that make an asset id valid.
//!
//! An asset id is one of:
//! - `BTC`;
//! - `RUNE:<NAME>`: a rune, `NAME` being 1 to 28 letters `A`–`Z`. Spacers (`•` or `.`) between
//!   letters are accepted on input and removed, because a rune's identity does not include them
//!   (`RUNE:UNCOMMON•GOODS` and `RUNE:UNCOMMONGOODS` are the same asset, and must share one book);
//! - any other ticker: 2 to 16 characters `A`–`Z` and `0`–`9`, starting with a letter, not `BTC`
//!   and not starting with `RUNE`.
//!
//! Input is case-insensitive and stored upper case, so every peer derives the same canonical id
//! (and the same gossip topic) from what a trader types.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest canonical asset id (`RUNE:` plus the longest rune name).
pub const MAX_ASSET_ID_BYTES: usize = 5 + MAX_RUNE_NAME_LETTERS;
/// Longest input read as an asset id: room for a spacer (up to 3 bytes, `•`) after every letter.
const MAX_ASSET_INPUT_BYTES: usize = MAX_ASSET_ID_BYTES * 4;
const MAX_RUNE_NAME_LETTERS: usize = 28;
const MIN_TICKER: usize = 2;
const MAX_TICKER: usize = 16;

/// A tradable asset, in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Asset {
    /// Bitcoin, written `BTC`.
    Btc,
    /// A rune, by its name without spacers.
    Rune(String),
    /// Any other asset, by its ticker.
    Other(String),
}

/// Why a string is not an asset id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssetError {
    /// The input is empty or only whitespace.
    #[error("asset id is empty")]
    Empty,
    /// The trimmed input is over 4 × [`MAX_ASSET_ID_BYTES`] bytes (room for spacers); refused
    /// before any per-character work. Overlong names and tickers get their own errors.
    #[error("asset id is longer than {} bytes", MAX_ASSET_INPUT_BYTES)]
    TooLong,
    /// A `RUNE:` id whose name is not 1 to 28 letters `A`–`Z` (any case), or has a spacer at
    /// either end or two spacers in a row.
    #[error("rune name must be 1 to {MAX_RUNE_NAME_LETTERS} letters A-Z, with optional spacers (• or .) between letters")]
    BadRuneName,
    /// Neither `BTC` nor `RUNE:…`, and not a ticker: 2 to 16 letters or digits, starting with a
    /// letter and not with `RUNE`.
    #[error("asset ticker must be {MIN_TICKER} to {MAX_TICKER} letters or digits starting with a letter (or BTC, or RUNE:<NAME>)")]
    BadTicker,
}

impl Asset {
    /// Parses an asset id as a trader may type it.
    pub fn parse(input: &str) -> Result<Self, AssetError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(AssetError::Empty);
        }
        // Spacers make a rune name longer than its canonical form; allow them, but cap the input
        // before any per-character work.
        if input.len() > MAX_ASSET_INPUT_BYTES {
            return Err(AssetError::TooLong);
        }
        let upper = input.to_ascii_uppercase();
        if upper == "BTC" {
            return Ok(Asset::Btc);
        }
        if let Some(name) = upper.strip_prefix("RUNE:") {
            return parse_rune_name(name).map(Asset::Rune);
        }
        let valid_ticker = (MIN_TICKER..=MAX_TICKER).contains(&upper.len())
            && upper.as_bytes()[0].is_ascii_uppercase()
            && upper
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && !upper.starts_with("RUNE");
        if valid_ticker {
            Ok(Asset::Other(upper))
        } else {
            Err(AssetError::BadTicker)
        }
    }
}

fn parse_rune_name(name: &str) -> Result<String, AssetError> {
    let mut letters = String::with_capacity(name.len());
    let mut previous_was_spacer = true; // a leading spacer is invalid
    for c in name.chars() {
        match c {
            'A'..='Z' => {
                letters.push(c);
                previous_was_spacer = false;
            }
            '•' | '.' if !previous_was_spacer => previous_was_spacer = true,
            _ => return Err(AssetError::BadRuneName),
        }
    }
    if previous_was_spacer || letters.is_empty() || letters.len() > MAX_RUNE_NAME_LETTERS {
        return Err(AssetError::BadRuneName);
    }
    Ok(letters)
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Asset::Btc => f.write_str("BTC"),
            Asset::Rune(name) => write!(f, "RUNE:{name}"),
            Asset::Other(ticker) => f.write_str(ticker),
        }
    }
}

impl FromStr for Asset {
    type Err = AssetError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Asset::parse(s)
    }
}

impl TryFrom<String> for Asset {
    type Error = AssetError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Asset::parse(&s)
    }
}

impl From<Asset> for String {
    fn from(a: Asset) -> String {
        a.to_string()
    }
}

/// A trading pair: amounts are in `base`, prices in `quote` per base (see [`crate::Price`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Pair {
    /// The asset bought and sold: order amounts count its smallest units.
    pub base: Asset,
    /// The asset paid: prices count its smallest units per [`PRICE_SCALE`](crate::PRICE_SCALE)
    /// base units. Differs from `base` in a pair made by [`Pair::new`] or [`Pair::parse`].
    pub quote: Asset,
}

/// Why a string is not a pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairError {
    /// No `/` separates base and quote.
    #[error("a pair is written BASE/QUOTE, e.g. RUNE:DOGGOTOTHEMOON/BTC")]
    Format,
    /// The base asset id is invalid.
    #[error("base asset: {0}")]
    Base(AssetError),
    /// The quote asset id is invalid.
    #[error("quote asset: {0}")]
    Quote(AssetError),
    /// Base and quote are the same asset, compared in canonical form (so `RUNE:A•B/RUNE:AB` is
    /// refused).
    #[error("base and quote are the same asset")]
    SameAsset,
}

impl Pair {
    /// The pair trading `base` for `quote`; [`PairError::SameAsset`] if they are equal.
    pub fn new(base: Asset, quote: Asset) -> Result<Self, PairError> {
        if base == quote {
            return Err(PairError::SameAsset);
        }
        Ok(Pair { base, quote })
    }

    /// Whether a trade on this pair can settle on Bitcoin: runes for bitcoin (one side `BTC`,
    /// the other a rune), in one atomic transaction. Other tickers exist only off Bitcoin, and
    /// rune-for-rune swaps are not built: trades on those pairs end at a signed agreement and
    /// move nothing, and the page says so.
    pub fn settles_on_bitcoin(&self) -> bool {
        matches!(
            (&self.base, &self.quote),
            (Asset::Rune(_), Asset::Btc) | (Asset::Btc, Asset::Rune(_))
        )
    }

    /// Parses `BASE/QUOTE`.
    pub fn parse(input: &str) -> Result<Self, PairError> {
        let (base, quote) = input.trim().split_once('/').ok_or(PairError::Format)?;
        let base = Asset::parse(base).map_err(PairError::Base)?;
        let quote = Asset::parse(quote).map_err(PairError::Quote)?;
        Pair::new(base, quote)
    }
}

impl fmt::Display for Pair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.quote)
    }
}

impl FromStr for Pair {
    type Err = PairError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Pair::parse(s)
    }
}

impl TryFrom<String> for Pair {
    type Error = PairError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Pair::parse(&s)
    }
}

impl From<Pair> for String {
    fn from(p: Pair) -> String {
        p.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_runes_for_bitcoin_settle_on_bitcoin() {
        let settles = |p: &str| Pair::parse(p).unwrap().settles_on_bitcoin();
        assert!(settles("RUNE:DOG/BTC"));
        assert!(settles("BTC/RUNE:DOG"));
        assert!(!settles("BTC/USDT"));
        assert!(!settles("RUNE:DOG/USDT"));
        assert!(!settles("RUNE:DOG/RUNE:CAT"));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(Asset::parse(" btc ").unwrap(), Asset::Btc);
        assert_eq!(
            Asset::parse("rune:uncommon•goods").unwrap(),
            Asset::Rune("UNCOMMONGOODS".into())
        );
        assert_eq!(
            Asset::parse("RUNE:UNCOMMON.GOODS").unwrap().to_string(),
            "RUNE:UNCOMMONGOODS"
        );
        assert_eq!(Asset::parse("usdt").unwrap(), Asset::Other("USDT".into()));
        assert_eq!(
            Pair::parse("rune:dog/btc").unwrap().to_string(),
            "RUNE:DOG/BTC"
        );
    }

    #[test]
    fn invalid_ids_are_refused_with_a_reason() {
        assert_eq!(Asset::parse(""), Err(AssetError::Empty));
        assert_eq!(Asset::parse("RUNE:"), Err(AssetError::BadRuneName));
        assert_eq!(Asset::parse("RUNE:•DOG"), Err(AssetError::BadRuneName));
        assert_eq!(Asset::parse("RUNE:DOG•"), Err(AssetError::BadRuneName));
        assert_eq!(Asset::parse("RUNE:DO••G"), Err(AssetError::BadRuneName));
        assert_eq!(Asset::parse("RUNE:D0G"), Err(AssetError::BadRuneName));
        assert_eq!(
            Asset::parse(&format!("RUNE:{}", "A".repeat(29))),
            Err(AssetError::BadRuneName)
        );
        assert_eq!(Asset::parse("RUNEDOG"), Err(AssetError::BadTicker));
        assert_eq!(Asset::parse("X"), Err(AssetError::BadTicker));
        assert_eq!(Asset::parse("1INCH"), Err(AssetError::BadTicker));
        assert_eq!(Asset::parse("US-D"), Err(AssetError::BadTicker));
        assert_eq!(Asset::parse(&"A".repeat(500)), Err(AssetError::TooLong));
        assert_eq!(Pair::parse("BTC"), Err(PairError::Format));
        assert_eq!(Pair::parse("BTC/btc"), Err(PairError::SameAsset));
        assert!(matches!(Pair::parse("BTC/?"), Err(PairError::Quote(_))));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn parse_never_panics_and_canonical_form_is_a_fixed_point(s in "\\PC{0,80}") {
            if let Ok(asset) = Asset::parse(&s) {
                let canonical = asset.to_string();
                proptest::prop_assert!(canonical.len() <= MAX_ASSET_ID_BYTES);
                proptest::prop_assert_eq!(Asset::parse(&canonical).unwrap(), asset);
            }
        }
    }
}
