//! Settling an agreed DarkSwap trade on Bitcoin: one transaction in which the rune seller's
//! runes go to the buyer and the buyer's bitcoin to the seller, both legs or neither.
//!
//! - [`deal`]: an agreement in the swap's terms, from one side's point of view;
//! - [`select`]: what our wallet brings (rune outputs, plain bitcoin), chosen from outputs no
//!   trade has locked;
//! - [`convert`]: the offers in their wire form (`darkswap_proto::settle`) and back;
//! - [`machine`]: the sans-IO settlement of one trade: offers exchanged, the other side's
//!   outputs checked against the chain and the rune indexer, the swap built on both sides,
//!   signed (the taker first, the maker last), broadcast, confirmed; deadlines, aborts and
//!   cancels; every refusal named and labelled for a counter;
//! - [`store`]: the settlement persisted and resumed;
//! - [`chain`]: what a settlement asks the chain servers, as request plans (the other side's
//!   outputs looked up, the swap watched);
//! - [`desk`]: every settlement of one trader, with the outputs they lock;
//! - [`driver`]: the desk with the chain work it needs (rune ids, our wallet read, lookups,
//!   watches) and the negotiation's events mapped onto it: what the page and the CLI run.
//!
//! # The free option
//! Whoever signs last holds, for a while, a transaction the other side has signed and cannot
//! take back: it may broadcast it at once, later, or never. Here that is the maker (the taker
//! signs first). The taker's protection: its half only ever spends what it offered for exactly
//! the agreed terms, so a late broadcast still gives it what it agreed to; and a step deadline
//! after which the page offers to cancel by spending the taker's own inputs elsewhere (the swap
//! is replaceable, so a cancel with a higher fee also displaces it from the mempool). What
//! remains is price risk while the option is open, bounded by that deadline and by how fast the
//! taker cancels.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

pub mod chain;
pub mod convert;
pub mod deal;
pub mod desk;
pub mod driver;
pub mod machine;
pub mod select;
pub mod store;

pub use chain::{ChainError, Lookup, Watch};
pub use convert::Offer;
pub use deal::{Deal, DealError, Role};
pub use desk::{Desk, DeskError, DeskOutput, Task};
pub use machine::{
    Action, CancelError, ChainStatus, Found, LocalError, Output, Params, Refusal, Settlement, Step,
};
pub use select::{Ours, SelectError};
pub use store::StoreError;

#[cfg(test)]
mod tests;
