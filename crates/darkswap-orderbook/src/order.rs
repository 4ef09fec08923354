//! Orders and the integer arithmetic of prices.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::decimal::{self, DecimalError, Zeros};

/// Prices are quote units per `PRICE_SCALE` base units (see the crate docs).
pub const PRICE_SCALE: u64 = 100_000_000;

/// Which side of the book an order rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buys the base asset, paying the quote asset (a bid).
    Buy,
    /// Sells the base asset for the quote asset (an ask).
    Sell,
}

impl Side {
    /// The other side: the one an order of this side trades against.
    pub fn opposite(self) -> Side {
        match self {
            Side::Buy => Side::Sell,
            Side::Sell => Side::Buy,
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        })
    }
}

/// A price: quote units per [`PRICE_SCALE`] base units. Never zero in a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Price(pub u64);

impl fmt::Display for Price {
    /// Quote units per base unit, as an exact decimal (e.g. `0.00001234`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&decimal::format(u128::from(self.0), 8, Zeros::Trim))
    }
}

impl Price {
    /// Parses an exact decimal number of quote units per base unit, with at most 8 decimals
    /// (the inverse of `Display`). Anything that cannot be represented exactly is refused rather
    /// than rounded: a trader's price is never silently changed.
    pub fn parse_decimal(input: &str) -> Result<Price, AmountError> {
        let units = decimal::parse(input, 8).map_err(|e| match e {
            DecimalError::TooPrecise(_) => AmountError::TooPrecise,
            DecimalError::TooLarge => AmountError::Overflow,
            DecimalError::NotANumber | DecimalError::NotAMultiple(_) => AmountError::NotANumber,
        })?;
        match u64::try_from(units) {
            Ok(0) => Err(AmountError::Zero),
            Ok(n) => Ok(Price(n)),
            Err(_) => Err(AmountError::Overflow),
        }
    }
}

/// Why an amount or a price is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// Not a plain decimal: empty, signed, an exponent, or anything but digits and one `.`.
    #[error("not a number")]
    NotANumber,
    /// The value is zero.
    #[error("must be greater than zero")]
    Zero,
    /// More than 8 decimal places: the value cannot be represented exactly, and is not rounded.
    #[error("more than 8 decimal places")]
    TooPrecise,
    /// The value, counted in units of 10⁻⁸, does not fit in a `u64`.
    #[error("too large")]
    Overflow,
}

/// The quote amount paid for `amount` base units at `price`: `floor(amount × price / 10⁸)`.
/// `None` when it does not fit in 64 bits.
pub fn quote_amount(amount: u64, price: Price) -> Option<u64> {
    let q = (amount as u128 * price.0 as u128) / PRICE_SCALE as u128;
    u64::try_from(q).ok()
}

/// An order's identity. On the network it is derived from the maker's PeerId and a nonce
/// (`darkswap_proto::order::order_id`); the book treats it as opaque.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub [u8; 16]);

impl OrderId {
    /// An id from a counter, for tests, benchmarks and local simulations.
    pub fn from_u64(n: u64) -> Self {
        let mut bytes = [0u8; 16];
        bytes[8..].copy_from_slice(&n.to_be_bytes());
        OrderId(bytes)
    }

    /// The id as 32 lower-case hex digits (also its `Display` and `Debug` form).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Parses the form [`to_hex`](Self::to_hex) writes, in either case; `None` unless `s` is 32
    /// ASCII characters that read as 16 hex bytes.
    pub fn from_hex(s: &str) -> Option<Self> {
        if s.len() != 32 || !s.is_ascii() {
            return None;
        }
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(OrderId(bytes))
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({})", self.to_hex())
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A limit order as the book stores it. `data` is whatever the caller attaches (the signed
/// order and its maker, in a network node; nothing in benchmarks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitOrder<T = ()> {
    /// The order's identity; a book holds at most one order per id.
    pub id: OrderId,
    /// Whether the order buys or sells the base asset.
    pub side: Side,
    /// Limit price: a buy takes asks at or below it, a sell takes bids at or above it, and a
    /// resting order trades at exactly this price. Never zero in a book.
    pub price: Price,
    /// Unfilled amount, in base units, including any part reserved for a taker.
    pub amount: u64,
    /// Smallest amount one fill may take (0 or 1 = any). When less than this remains, the
    /// remainder can be taken whole, so no dust is ever stuck.
    pub min_fill: u64,
    /// Milliseconds since the Unix epoch after which the order is dead; `u64::MAX` for none.
    pub expires_at_ms: u64,
    /// The caller's attachment, handed back when the order leaves the book (see
    /// [`OrderBook::data_mut`](crate::OrderBook::data_mut)).
    pub data: T,
}

impl<T> LimitOrder<T> {
    /// Smallest fill acceptable now, given `available` base units free of reservations.
    pub fn effective_min_fill(&self, available: u64) -> u64 {
        self.min_fill.clamp(1, available.max(1))
    }

    /// Whether the order is dead at `now_ms` (milliseconds since the Unix epoch): true from
    /// `expires_at_ms` on.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.expires_at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price_decimal_round_trip_is_exact() {
        for s in ["1", "0.00000001", "123.45", "0.5", "21000000"] {
            let p = Price::parse_decimal(s).unwrap();
            assert_eq!(p.to_string(), s);
        }
        assert_eq!(Price::parse_decimal(".5").unwrap(), Price(50_000_000));
        assert_eq!(Price::parse_decimal("0"), Err(AmountError::Zero));
        assert_eq!(
            Price::parse_decimal("0.000000001"),
            Err(AmountError::TooPrecise)
        );
        assert_eq!(Price::parse_decimal("1e5"), Err(AmountError::NotANumber));
        assert_eq!(Price::parse_decimal("-1"), Err(AmountError::NotANumber));
        assert_eq!(Price::parse_decimal("."), Err(AmountError::NotANumber));
        assert_eq!(
            Price::parse_decimal("999999999999999999"),
            Err(AmountError::Overflow)
        );
    }

    #[test]
    fn quote_amount_rounds_toward_zero() {
        assert_eq!(quote_amount(3, Price(PRICE_SCALE / 2)), Some(1));
        assert_eq!(quote_amount(100, Price(PRICE_SCALE * 3)), Some(300));
        assert_eq!(quote_amount(u64::MAX, Price(PRICE_SCALE * 2)), None);
    }

    #[test]
    fn order_id_hex_round_trip() {
        let id = OrderId([0xab; 16]);
        assert_eq!(OrderId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(OrderId::from_hex("zz"), None);
        assert_eq!(OrderId::from_hex(&"é".repeat(16)), None);
    }

    #[test]
    fn min_fill_never_exceeds_what_is_available() {
        let order = LimitOrder {
            id: OrderId::from_u64(1),
            side: Side::Sell,
            price: Price(1),
            amount: 100,
            min_fill: 50,
            expires_at_ms: u64::MAX,
            data: (),
        };
        assert_eq!(order.effective_min_fill(100), 50);
        assert_eq!(order.effective_min_fill(20), 20);
        assert_eq!(order.effective_min_fill(0), 1);
    }
}
