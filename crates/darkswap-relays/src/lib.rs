//! What is known of the relay network. [`RecordSet`] keeps the newest checked record of each
//! relay, bounded, for a relay to serve to its peers and pages and (next) for a client's relay
//! pool to rank. It is a sans-IO core: bytes and the time go in, decisions come out.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod records;

pub use records::{Offered, RecordSet, SetRefusal};
