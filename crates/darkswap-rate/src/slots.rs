//! Slots: "so many held at once, per key and in total" (connections per IP address, handshakes
//! in progress). A slot is taken when something starts and given back when it ends; the table
//! holds only keys that hold a slot, so it never grows past the total.

use std::collections::HashMap;
use std::hash::Hash;

/// Why a slot was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Full {
    /// This key holds its share already.
    #[error("this key holds all the slots it may")]
    Key,
    /// Every slot is taken.
    #[error("every slot is taken")]
    Total,
}

/// At most `per_key` slots per key and `total` altogether.
#[derive(Debug)]
pub struct Slots<K> {
    held: HashMap<K, u32>,
    per_key: u32,
    total: u32,
    in_use: u32,
}

impl<K: Eq + Hash + Clone> Slots<K> {
    /// `per_key` slots per key, `total` in all.
    pub fn new(per_key: u32, total: u32) -> Self {
        Slots {
            held: HashMap::new(),
            per_key,
            total,
            in_use: 0,
        }
    }

    /// Takes a slot for `key`, or says why there is none.
    pub fn try_take(&mut self, key: &K) -> Result<(), Full> {
        if self.in_use >= self.total {
            return Err(Full::Total);
        }
        let held = self.held.get(key).copied().unwrap_or(0);
        if held >= self.per_key {
            return Err(Full::Key);
        }
        self.held.insert(key.clone(), held + 1);
        self.in_use += 1;
        Ok(())
    }

    /// Gives back a slot `key` holds; giving back a slot that is not held changes nothing.
    pub fn give_back(&mut self, key: &K) {
        let Some(held) = self.held.get_mut(key) else {
            return;
        };
        *held -= 1;
        if *held == 0 {
            self.held.remove(key);
        }
        self.in_use -= 1;
    }

    /// Slots `key` holds.
    pub fn held_by(&self, key: &K) -> u32 {
        self.held.get(key).copied().unwrap_or(0)
    }

    /// Slots held in all.
    pub fn in_use(&self) -> u32 {
        self.in_use
    }

    /// Keys holding at least one slot.
    pub fn keys(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_share_and_no_more() {
        let mut s = Slots::new(2, 10);
        assert_eq!(s.try_take(&"a"), Ok(()));
        assert_eq!(s.try_take(&"a"), Ok(()));
        assert_eq!(s.try_take(&"a"), Err(Full::Key));
        assert_eq!(s.try_take(&"b"), Ok(()), "another key is not held back");
        s.give_back(&"a");
        assert_eq!(
            s.try_take(&"a"),
            Ok(()),
            "a slot given back can be taken again"
        );
        assert_eq!(s.in_use(), 3);
    }

    #[test]
    fn the_total_holds_over_all_keys() {
        let mut s = Slots::new(5, 3);
        for k in 0..3 {
            assert_eq!(s.try_take(&k), Ok(()));
        }
        assert_eq!(s.try_take(&9), Err(Full::Total));
        assert_eq!(s.try_take(&0), Err(Full::Total));
        s.give_back(&1);
        assert_eq!(s.try_take(&9), Ok(()));
    }

    #[test]
    fn giving_back_what_is_not_held_changes_nothing_and_the_table_empties() {
        let mut s = Slots::new(1, 1);
        s.give_back(&"never");
        assert_eq!(s.in_use(), 0);
        s.try_take(&"a").unwrap();
        s.give_back(&"a");
        s.give_back(&"a");
        assert_eq!((s.in_use(), s.keys(), s.held_by(&"a")), (0, 0, 0));
        assert_eq!(s.try_take(&"b"), Ok(()));
    }
}
