//! When to ask a chain server again, sans-IO, for the page's `fetch` and the CLI's client alike:
//! a read (GET) is tried up to [`TRIES`] times, waiting [`FIRST_BACKOFF_MS`] and then twice as
//! long each time, while the server is unreachable or slow (no answer), overloaded (429) or
//! failing (5xx). Any other answer is final. Writes (a broadcast, a faucet call) are never
//! repeated behind the trader's back: the caller does not ask this module about them.

/// Tries of one read, the first included.
pub const TRIES: u32 = 3;
/// The wait before the second try, in milliseconds; doubled before each later one.
pub const FIRST_BACKOFF_MS: u64 = 500;

/// How one try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this HTTP status.
    Status(u16),
    /// No answer: unreachable, reset, or past the caller's timeout.
    NoAnswer,
}

/// After try number `attempt` (1 for the first) ended with `outcome`: the milliseconds to wait
/// before the next try, or `None` when the outcome is final.
pub fn retry_after(attempt: u32, outcome: Outcome) -> Option<u64> {
    let transient = match outcome {
        Outcome::Status(s) => s == 429 || (500..=599).contains(&s),
        Outcome::NoAnswer => true,
    };
    (transient && attempt < TRIES).then(|| FIRST_BACKOFF_MS << (attempt.saturating_sub(1)).min(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_with_doubling_waits_then_given_up() {
        assert_eq!(retry_after(1, Outcome::NoAnswer), Some(500));
        assert_eq!(retry_after(2, Outcome::Status(503)), Some(1_000));
        assert_eq!(
            retry_after(3, Outcome::NoAnswer),
            None,
            "three tries in all"
        );
        assert_eq!(retry_after(1, Outcome::Status(429)), Some(500));
    }

    #[test]
    fn answers_are_final() {
        for status in [200, 204, 400, 404, 413] {
            assert_eq!(retry_after(1, Outcome::Status(status)), None, "{status}");
        }
    }
}
