//! Token buckets per key (peer or IP address) in a bounded table. When the table is full of keys
//! that are all still limited, a new key is refused: the table never grows past its cap and
//! never lets a request through because it could not decide.

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

#[derive(Debug)]
pub struct KeyedLimiter<K> {
    buckets: HashMap<K, Bucket>,
    burst: f64,
    per_ms: f64,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// `per_minute` requests a minute sustained, `burst` at once, at most `capacity` keys.
    pub fn new(per_minute: u32, burst: u32, capacity: usize) -> Self {
        KeyedLimiter {
            buckets: HashMap::new(),
            burst: f64::from(burst.max(1)),
            per_ms: f64::from(per_minute) / 60_000.0,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// Takes one token for `key`; false when it has none left (or the table is full).
    pub fn allow(&mut self, key: &K, now_ms: u64) -> bool {
        if !self.buckets.contains_key(key) && self.buckets.len() >= self.capacity {
            self.prune(now_ms);
            if self.buckets.len() >= self.capacity {
                return false;
            }
        }
        let burst = self.burst;
        let per_ms = self.per_ms;
        let bucket = self.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let elapsed = now_ms.saturating_sub(bucket.at_ms) as f64;
        bucket.tokens = (bucket.tokens + elapsed * per_ms).min(burst);
        bucket.at_ms = now_ms.max(bucket.at_ms);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Drops keys whose bucket has refilled completely (they carry no information).
    pub fn prune(&mut self, now_ms: u64) {
        let (burst, per_ms) = (self.burst, self.per_ms);
        self.buckets
            .retain(|_, b| b.tokens + now_ms.saturating_sub(b.at_ms) as f64 * per_ms < burst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let mut l = KeyedLimiter::new(60, 3, 10);
        assert!(l.allow(&1, 0));
        assert!(l.allow(&1, 0));
        assert!(l.allow(&1, 0));
        assert!(!l.allow(&1, 0));
        assert!(l.allow(&2, 0), "keys are independent");
        assert!(!l.allow(&1, 999));
        assert!(l.allow(&1, 1_000), "one a second");
    }

    #[test]
    fn a_full_table_refuses_new_keys() {
        let mut l = KeyedLimiter::new(60, 1, 2);
        assert!(l.allow(&1, 0));
        assert!(l.allow(&2, 0));
        assert!(!l.allow(&3, 0));
        assert_eq!(l.len(), 2);
        // Once the old buckets have refilled they are pruned and make room.
        assert!(l.allow(&3, 1_000));
        assert!(l.len() <= 2);
    }
}
