//! Amounts in an asset's display units, exactly: a rune's smallest units written with its
//! divisibility ("1000.00" for 100,000 units of a rune with 2 decimal places) and read back the
//! same way. Integer arithmetic only ([`darkswap_orderbook::decimal`]); the wire and the
//! runestone keep smallest units.

use darkswap_orderbook::decimal::{self, DecimalError, Zeros};

use crate::runestone::MAX_DIVISIBILITY;

/// A typed amount that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitsError {
    /// Empty, or something other than digits and one decimal point.
    #[error("not a number: write digits, with at most one decimal point")]
    NotANumber,
    /// More decimal places than the asset has.
    #[error("at most {0} decimal places")]
    TooPrecise(u8),
    /// Larger than any amount of the asset can be.
    #[error("too large")]
    TooLarge,
    /// A divisibility no rune can have.
    #[error("divisibility {0} is above {MAX_DIVISIBILITY}")]
    BadDivisibility(u8),
}

/// `amount` smallest units written with `divisibility` decimal places, all of them shown
/// (as ord writes rune amounts): `format_units(100_000, 2)` is "1000.00".
pub fn format_units(amount: u128, divisibility: u8) -> String {
    decimal::format(
        amount,
        i32::from(divisibility.min(MAX_DIVISIBILITY)),
        Zeros::Keep,
    )
}

/// Reads an amount typed in display units ("1000.5", "1000.50", "1000", ".5") into smallest
/// units; more decimal places than `divisibility` is an error, never a rounding.
pub fn parse_units(text: &str, divisibility: u8) -> Result<u128, UnitsError> {
    if divisibility > MAX_DIVISIBILITY {
        return Err(UnitsError::BadDivisibility(divisibility));
    }
    decimal::parse(text, i32::from(divisibility)).map_err(|e| match e {
        DecimalError::TooPrecise(_) => UnitsError::TooPrecise(divisibility),
        DecimalError::TooLarge => UnitsError::TooLarge,
        DecimalError::NotANumber | DecimalError::NotAMultiple(_) => UnitsError::NotANumber,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_as_ord_writes_them() {
        assert_eq!(format_units(100_000, 2), "1000.00");
        assert_eq!(format_units(5, 2), "0.05");
        assert_eq!(format_units(0, 3), "0.000");
        assert_eq!(format_units(42, 0), "42");
        assert_eq!(
            format_units(u128::MAX, 38),
            "3.40282366920938463463374607431768211455"
        );
    }

    #[test]
    fn read_back_exactly() {
        assert_eq!(parse_units("1000.00", 2), Ok(100_000));
        assert_eq!(parse_units("1000.5", 2), Ok(100_050));
        assert_eq!(parse_units(" 250 ", 2), Ok(25_000));
        assert_eq!(parse_units(".5", 1), Ok(5));
        assert_eq!(parse_units("1,000.10", 2), Ok(100_010));
        assert_eq!(parse_units("7", 0), Ok(7));
        assert_eq!(parse_units("7.000", 0), Ok(7));
        assert_eq!(parse_units("0.001", 2), Err(UnitsError::TooPrecise(2)));
        assert_eq!(parse_units("", 2), Err(UnitsError::NotANumber));
        assert_eq!(parse_units(".", 2), Err(UnitsError::NotANumber));
        assert_eq!(parse_units("-1", 2), Err(UnitsError::NotANumber));
        assert_eq!(parse_units("1.2.3", 2), Err(UnitsError::NotANumber));
        assert_eq!(parse_units("1e5", 2), Err(UnitsError::NotANumber));
        assert_eq!(
            parse_units("340282366920938463463374607431768211456", 0),
            Err(UnitsError::TooLarge)
        );
        assert_eq!(parse_units("4", 38), Err(UnitsError::TooLarge));
        assert_eq!(parse_units("1", 39), Err(UnitsError::BadDivisibility(39)));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn format_then_parse_is_the_identity(amount: u128, d in 0u8..=38) {
            proptest::prop_assert_eq!(parse_units(&format_units(amount, d), d), Ok(amount));
        }
    }
}
