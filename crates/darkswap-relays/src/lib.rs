//! What is known of the relay network. [`RecordSet`] keeps the newest checked record of each
//! relay, bounded, for a relay to serve to its peers and pages; [`RelayPool`] is a client's view:
//! the relays it knows, how each answered, the trader's pins and exclusions, and the ranking
//! that decides where to hold reservations. Both are sans-IO cores: bytes, outcomes and the time
//! go in, decisions come out.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod pool;
mod records;

pub use pool::{
    Choice, Failure, PoolConfig, PoolRefusal, RelayPool, RelayView, SavedPool, SavedRelay,
    SAVED_POOL_VERSION,
};
pub use records::{Offered, RecordSet, SetRefusal};

/// Records travel in JSON (relay-info, a saved pool) as lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

/// The bytes of a hex record, if it is hex and no longer than a record may be.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2)
        || text.len() > 2 * darkswap_proto::relay_record::MAX_RELAY_RECORD_BYTES
    {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}
