//! Token buckets per key (peer or IP address) in a bounded table. When the table is full of keys
//! that are all still limited, a new key is refused: the table never grows past its cap and
//! never lets a request through because it could not decide.

use std::collections::HashMap;
use std::hash::Hash;

use crate::{Rate, TokenBucket};

/// One [`TokenBucket`] per key, at most `capacity` keys.
#[derive(Debug)]
pub struct KeyedLimiter<K> {
    buckets: HashMap<K, TokenBucket>,
    rate: Rate,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> KeyedLimiter<K> {
    /// `rate` per key, at most `capacity` keys.
    pub fn new(rate: Rate, capacity: usize) -> Self {
        KeyedLimiter {
            buckets: HashMap::new(),
            rate,
            capacity,
        }
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no key is remembered.
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
        let rate = self.rate;
        self.buckets
            .entry(key.clone())
            .or_insert_with(|| TokenBucket::full(&rate, now_ms))
            .try_take(&rate, now_ms)
    }

    /// Drops keys whose bucket has refilled completely (they carry no information).
    pub fn prune(&mut self, now_ms: u64) {
        let rate = self.rate;
        self.buckets.retain(|_, b| !b.is_full(&rate, now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills() {
        let mut l = KeyedLimiter::new(Rate::per_minute(60, 3), 10);
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
        let mut l = KeyedLimiter::new(Rate::per_minute(60, 1), 2);
        assert!(l.allow(&1, 0));
        assert!(l.allow(&2, 0));
        assert!(!l.allow(&3, 0));
        assert_eq!(l.len(), 2);
        // Once the old buckets have refilled they are pruned and make room.
        assert!(l.allow(&3, 1_000));
        assert!(l.len() <= 2);
    }
}
