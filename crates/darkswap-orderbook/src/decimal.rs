//! Exact decimal text for integer amounts: `value × 10^-places` written and read back with no
//! float and no rounding. `places` may be negative (the value is then written with that many
//! zeros appended), which a price needs when the base asset has more decimals than the quote.
//! Every amount and price a trader types or reads goes through here (the order form, the book,
//! the wallet's rune amounts).

/// Why typed text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// Empty, or something other than digits, one decimal point and `,`/`_` separators.
    #[error("not a number: write digits, with at most one decimal point")]
    NotANumber,
    /// More decimal places than the unit has.
    #[error("at most {0} decimal places")]
    TooPrecise(u8),
    /// Not a multiple of the unit's step (a value whose unit is `10^n` with `n > 0`).
    #[error("must be a multiple of {0}")]
    NotAMultiple(String),
    /// Larger than 128 bits of the unit.
    #[error("too large")]
    TooLarge,
}

/// Whether trailing zeros after the decimal point are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zeros {
    /// Every place is written ("1000.00"), as ord writes rune amounts.
    Keep,
    /// Trailing zeros and a bare point are left out ("1000", "0.5").
    Trim,
}

/// The most decimal places either way a unit can have here (a rune's 38 and BTC's 8 against
/// each other, with room); beyond it text is refused and nothing is allocated for it.
pub const MAX_PLACES: i32 = 64;

/// Writes `value × 10^-places` (`places` is clamped to ±[`MAX_PLACES`]).
pub fn format(value: u128, places: i32, zeros: Zeros) -> String {
    let places = places.clamp(-MAX_PLACES, MAX_PLACES);
    let digits = value.to_string();
    if places <= 0 {
        if value == 0 {
            return digits;
        }
        return digits + &"0".repeat(places.unsigned_abs() as usize);
    }
    let d = places as usize;
    let padded = format!("{digits:0>width$}", width = d + 1);
    let (whole, frac) = padded.split_at(padded.len() - d);
    let frac = match zeros {
        Zeros::Keep => frac,
        Zeros::Trim => frac.trim_end_matches('0'),
    };
    if frac.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{frac}")
    }
}

/// The whole part of typed text without its thousands separators: `,` or `_` only between
/// groups of three digits ("1,000,000", "1_000"), so that a decimal comma ("0,5") is refused
/// rather than read as a separator.
fn ungroup(whole: &str) -> Option<String> {
    if !whole.contains([',', '_']) {
        return Some(whole.to_string());
    }
    let groups: Vec<&str> = whole.split([',', '_']).collect();
    let first_ok = (1..=3).contains(&groups[0].len());
    let rest_ok = groups[1..].iter().all(|g| g.len() == 3);
    (first_ok && rest_ok).then(|| groups.concat())
}

/// Reads text written in units of `10^-places` ("1,000.5", ".5", "7.000") into a count of
/// them. More places than the unit has is an error, never a rounding.
pub fn parse(text: &str, places: i32) -> Result<u128, DecimalError> {
    if !(-MAX_PLACES..=MAX_PLACES).contains(&places) {
        return Err(DecimalError::TooLarge);
    }
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let whole = ungroup(whole).ok_or(DecimalError::NotANumber)?;
    if (whole.is_empty() && frac.is_empty())
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(DecimalError::NotANumber);
    }
    let frac = frac.trim_end_matches('0');
    let digits = if places >= 0 {
        let p = places as usize;
        if frac.len() > p {
            return Err(DecimalError::TooPrecise(
                u8::try_from(places).unwrap_or(u8::MAX),
            ));
        }
        format!("{whole}{frac}{}", "0".repeat(p - frac.len()))
    } else {
        let step = places.unsigned_abs() as usize;
        let whole = whole.trim_start_matches('0');
        if !frac.is_empty() || (!whole.is_empty() && !whole.ends_with(&"0".repeat(step))) {
            return Err(DecimalError::NotAMultiple(format!("1{}", "0".repeat(step))));
        }
        whole[..whole.len().saturating_sub(step)].to_string()
    };
    let digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    digits.parse().map_err(|_| DecimalError::TooLarge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_exactly() {
        assert_eq!(format(100_000, 2, Zeros::Keep), "1000.00");
        assert_eq!(format(100_000, 2, Zeros::Trim), "1000");
        assert_eq!(format(5, 2, Zeros::Keep), "0.05");
        assert_eq!(format(50_000_000, 8, Zeros::Trim), "0.5");
        assert_eq!(format(0, 3, Zeros::Keep), "0.000");
        assert_eq!(format(0, 3, Zeros::Trim), "0");
        assert_eq!(format(42, 0, Zeros::Keep), "42");
        assert_eq!(format(42, -3, Zeros::Trim), "42000");
        assert_eq!(format(0, -3, Zeros::Trim), "0");
        assert_eq!(
            format(u128::MAX, 38, Zeros::Keep),
            "3.40282366920938463463374607431768211455"
        );
    }

    #[test]
    fn read_back_exactly() {
        assert_eq!(parse("1000.00", 2), Ok(100_000));
        assert_eq!(parse("1000.5", 2), Ok(100_050));
        assert_eq!(parse(" 250 ", 2), Ok(25_000));
        assert_eq!(parse(".5", 1), Ok(5));
        assert_eq!(parse("0.5", 8), Ok(50_000_000));
        assert_eq!(parse("1,000.10", 2), Ok(100_010));
        assert_eq!(parse("7.000", 0), Ok(7));
        assert_eq!(parse("0", 4), Ok(0));
        assert_eq!(parse("42000", -3), Ok(42));
        assert_eq!(parse("42000.000", -3), Ok(42));
        assert_eq!(parse("0", -3), Ok(0));
        assert_eq!(
            parse("42500", -3),
            Err(DecimalError::NotAMultiple("1000".into()))
        );
        assert_eq!(
            parse("4.5", -1),
            Err(DecimalError::NotAMultiple("10".into()))
        );
        assert_eq!(parse("0.001", 2), Err(DecimalError::TooPrecise(2)));
        assert_eq!(parse("", 2), Err(DecimalError::NotANumber));
        assert_eq!(parse(".", 2), Err(DecimalError::NotANumber));
        assert_eq!(parse("-1", 2), Err(DecimalError::NotANumber));
        assert_eq!(parse("1.2.3", 2), Err(DecimalError::NotANumber));
        assert_eq!(parse("1e5", 2), Err(DecimalError::NotANumber));
        // A decimal comma is refused, never read as a thousands separator.
        assert_eq!(parse("0,5", 8), Err(DecimalError::NotANumber));
        assert_eq!(parse("1.000,5", 8), Err(DecimalError::NotANumber));
        assert_eq!(parse("1,00", 0), Err(DecimalError::NotANumber));
        assert_eq!(parse(",100", 0), Err(DecimalError::NotANumber));
        assert_eq!(parse("1,000,000", 0), Ok(1_000_000));
        assert_eq!(parse("12_345.5", 1), Ok(123_455));
        assert_eq!(parse("1", i32::MAX), Err(DecimalError::TooLarge));
        assert_eq!(
            format(1, i32::MIN, Zeros::Trim).len(),
            1 + MAX_PLACES as usize
        );
        assert_eq!(
            parse("340282366920938463463374607431768211456", 0),
            Err(DecimalError::TooLarge)
        );
        assert_eq!(parse("4", 38), Err(DecimalError::TooLarge));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn format_then_parse_is_the_identity(value: u128, places in -MAX_PLACES..=MAX_PLACES) {
            for zeros in [Zeros::Keep, Zeros::Trim] {
                proptest::prop_assert_eq!(parse(&format(value, places, zeros), places), Ok(value));
            }
        }

        #[test]
        fn parse_never_panics(text in "[0-9.,_ ]{0,50}", places in -100i32..=100) {
            let _ = parse(&text, places);
        }
    }
}
