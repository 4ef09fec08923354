//! The market limits a relay announces to its clients, so that they keep under them instead of
//! assuming the defaults: in its auth grant (`/darkswap/auth/1`, for every client) and in
//! relay-info (for a page before it connects).
//!
//! ```proto
//! message Limits { uint32 max_orders_per_maker = 1; uint32 publish_burst = 2; uint32 publish_per_second = 3; }
//! ```

use serde::{Deserialize, Serialize};

/// Largest value of any announced limit: far above anything sensible, low enough that a
/// client's arithmetic on it cannot overflow.
pub const MAX_ANNOUNCED_LIMIT: u32 = 1_000_000;

/// What a relay enforces per maker on its order gossip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncedLimits {
    /// Live orders one maker may have across all pairs.
    pub max_orders_per_maker: u32,
    /// Order messages (orders, cancels, keep-alives) a maker may send at once.
    pub publish_burst: u32,
    /// Order messages per second a maker may send, sustained.
    pub publish_per_second: u32,
}

/// An announcement a client cannot use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("announced limit {0} is zero or above {MAX_ANNOUNCED_LIMIT}")]
pub struct LimitsError(pub &'static str);

impl AnnouncedLimits {
    /// Every limit is at least one and at most [`MAX_ANNOUNCED_LIMIT`].
    pub fn validate(self) -> Result<AnnouncedLimits, LimitsError> {
        let check = |v: u32, name| {
            if (1..=MAX_ANNOUNCED_LIMIT).contains(&v) {
                Ok(())
            } else {
                Err(LimitsError(name))
            }
        };
        check(self.max_orders_per_maker, "max_orders_per_maker")?;
        check(self.publish_burst, "publish_burst")?;
        check(self.publish_per_second, "publish_per_second")?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_and_absurd_limits_are_refused() {
        let ok = AnnouncedLimits {
            max_orders_per_maker: 200,
            publish_burst: 50,
            publish_per_second: 10,
        };
        assert_eq!(ok.validate(), Ok(ok));
        assert!(AnnouncedLimits {
            publish_per_second: 0,
            ..ok
        }
        .validate()
        .is_err());
        assert!(AnnouncedLimits {
            publish_burst: MAX_ANNOUNCED_LIMIT + 1,
            ..ok
        }
        .validate()
        .is_err());
    }
}
