//! Token buckets: one implementation of "so many at once, so many a second" for every place in
//! DarkSwap that limits a rate (the market's per-maker publish rate, the relay's per-peer gossip
//! rate, the auth limiter's per-IP and per-peer tables, and the clients' own publish pacing);
//! and [`Slots`], "so many held at once" per key and in total (the relay's connections and
//! handshakes per IP address).
//!
//! Time is always passed in (Unix or monotonic milliseconds; only differences matter), so the
//! same code runs natively, in the browser, and in tests with a clock of their own. A clock that
//! goes backwards refills nothing and never panics.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]
#![warn(missing_docs)]

mod keyed;
mod slots;

pub use keyed::KeyedLimiter;
pub use slots::{Full, Slots};

/// A rate: `burst` events at once, then `per_second` sustained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    burst: f64,
    per_ms: f64,
}

impl Rate {
    /// `per_second` sustained, `burst` at once (at least one, so a rate never blocks forever).
    pub fn per_second(per_second: u32, burst: u32) -> Rate {
        Rate {
            burst: f64::from(burst.max(1)),
            per_ms: f64::from(per_second) / 1_000.0,
        }
    }

    /// `per_minute` sustained, `burst` at once (at least one).
    pub fn per_minute(per_minute: u32, burst: u32) -> Rate {
        Rate {
            burst: f64::from(burst.max(1)),
            per_ms: f64::from(per_minute) / 60_000.0,
        }
    }

    /// This rate scaled by `percent` (burst and sustained rate), keeping at least one event at
    /// once: a client paces itself a margin below the rate its relay enforces.
    pub fn scaled(self, percent: u32) -> Rate {
        let f = f64::from(percent) / 100.0;
        Rate {
            burst: (self.burst * f).floor().max(1.0),
            per_ms: self.per_ms * f,
        }
    }

    /// Events allowed at once.
    pub fn burst(&self) -> f64 {
        self.burst
    }

    /// Sustained events per second.
    pub fn per_second_f64(&self) -> f64 {
        self.per_ms * 1_000.0
    }
}

/// The state of one bucket: its tokens at a time. The [`Rate`] is passed to each call, so a
/// table of many buckets (one per maker, peer or IP) stores 16 bytes per key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenBucket {
    tokens: f64,
    at_ms: u64,
}

impl TokenBucket {
    /// A bucket with its whole burst available at `now_ms`.
    pub fn full(rate: &Rate, now_ms: u64) -> TokenBucket {
        TokenBucket {
            tokens: rate.burst,
            at_ms: now_ms,
        }
    }

    /// Adds what accrued since the last call (never more than the burst).
    pub fn refill(&mut self, rate: &Rate, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.at_ms) as f64;
        self.tokens = (self.tokens + elapsed * rate.per_ms).min(rate.burst);
        self.at_ms = self.at_ms.max(now_ms);
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, rate: &Rate, now_ms: u64) -> bool {
        self.refill(rate, now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Gives back a token taken for something that did not happen after all.
    pub fn refund(&mut self, rate: &Rate) {
        self.tokens = (self.tokens + 1.0).min(rate.burst);
    }

    /// Whether the bucket has refilled completely by `now_ms` (it then carries no information
    /// and a table may forget it).
    pub fn is_full(&self, rate: &Rate, now_ms: u64) -> bool {
        self.tokens + now_ms.saturating_sub(self.at_ms) as f64 * rate.per_ms >= rate.burst
    }

    /// Whole tokens available at `now_ms`.
    pub fn available(&self, rate: &Rate, now_ms: u64) -> u32 {
        let mut copy = *self;
        copy.refill(rate, now_ms);
        copy.tokens.floor() as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let rate = Rate::per_second(10, 3);
        let mut b = TokenBucket::full(&rate, 0);
        assert!(b.try_take(&rate, 0));
        assert!(b.try_take(&rate, 0));
        assert!(b.try_take(&rate, 0));
        assert!(!b.try_take(&rate, 0));
        assert!(!b.try_take(&rate, 99), "0.99 of a token");
        assert!(b.try_take(&rate, 100), "one every 100 ms");
        assert!(!b.try_take(&rate, 100));
        // A long pause refills no more than the burst.
        assert_eq!(b.available(&rate, 1_000_000), 3);
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let rate = Rate::per_second(1, 1);
        let mut b = TokenBucket::full(&rate, 10_000);
        assert!(b.try_take(&rate, 10_000));
        assert!(!b.try_take(&rate, 0));
        assert!(!b.try_take(&rate, 10_999));
        assert!(b.try_take(&rate, 11_000));
    }

    #[test]
    fn refund_gives_back_at_most_the_burst() {
        let rate = Rate::per_second(1, 2);
        let mut b = TokenBucket::full(&rate, 0);
        assert!(b.try_take(&rate, 0));
        b.refund(&rate);
        b.refund(&rate);
        assert_eq!(b.available(&rate, 0), 2);
        assert!(b.is_full(&rate, 0));
    }

    #[test]
    fn scaled_rates_keep_at_least_one_at_once() {
        let relay = Rate::per_second(10, 50);
        let client = relay.scaled(80);
        assert_eq!(client.burst(), 40.0);
        assert!((client.per_second_f64() - 8.0).abs() < 1e-9);
        assert_eq!(Rate::per_second(1, 1).scaled(10).burst(), 1.0);
        assert_eq!(Rate::per_minute(60, 0).burst(), 1.0);
    }
}
