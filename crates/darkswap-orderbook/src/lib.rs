//! DarkSwap's limit order book.
//!
//! One [`OrderBook`] holds the resting orders of one [`Pair`]. It knows nothing about the network:
//! the peer-to-peer layer feeds it orders it has verified, and a trader's client uses it both to
//! show the book and to decide what to take. Everything is integer arithmetic:
//!
//! - amounts are `u64` counts of the base asset's smallest unit (satoshis for BTC, the rune's
//!   atomic unit for a rune);
//! - a [`Price`] is the number of the quote asset's smallest units paid for
//!   [`PRICE_SCALE`] (10⁸) smallest units of the base asset, so prices below one quote unit per
//!   base unit stay exact;
//! - the quote amount of a fill is `floor(amount × price / 10⁸)` computed in 128 bits
//!   ([`quote_amount`]): rounding is always toward zero, so the buyer never pays for a fraction of a
//!   unit and the seller bears at most one quote unit of rounding per fill.
//!
//! Orders rest in price-time priority: better price first, then earlier arrival at *this* book.
//! Each order can carry a minimum fill, an expiry, and reservations (amounts promised to a taker
//! while a trade is negotiated, which no one else can take).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod asset;
mod book;
pub mod decimal;
mod order;
pub mod units;
#[cfg(feature = "workloads")]
pub mod workload;

pub use asset::{Asset, AssetError, Pair, PairError, MAX_ASSET_ID_BYTES};
pub use book::{BookError, Fill, LevelView, OrderBook, Placed, ReserveError, DEFAULT_MAX_ORDERS};
pub use order::{quote_amount, AmountError, LimitOrder, OrderId, Price, Side, PRICE_SCALE};
pub use units::{AssetUnit, BtcUnit, PairUnits, Units, UnitsError};
