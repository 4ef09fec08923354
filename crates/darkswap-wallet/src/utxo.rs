//! The wallet's outputs, what each carries, which are locked by a trade, and the balances a
//! trader is shown. An output whose runes and inscriptions the wallet has not learned from the
//! indexer is [`Assets::Unknown`], and unknown counts as "may carry something": it is never
//! spent as fee money (fail closed).

use std::collections::BTreeMap;

use bitcoin::{Amount, OutPoint, TxOut};

use crate::effect::Balances;
use crate::keys::{Account, KeyPath};
use crate::runestone::RuneId;

/// What an output carries besides its bitcoin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assets {
    /// Not yet learned from the indexer.
    Unknown,
    /// As the indexer reported.
    Known {
        /// Runes on it.
        runes: Balances,
        /// Inscriptions on it.
        inscriptions: u32,
    },
}

impl Assets {
    /// Known to carry nothing.
    pub fn none() -> Assets {
        Assets::Known {
            runes: Balances::new(),
            inscriptions: 0,
        }
    }
}

/// One of the wallet's unspent outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
    /// The key that spends it.
    pub path: KeyPath,
    /// Confirmations (0: in the mempool).
    pub confirmations: u32,
    /// What else it carries.
    pub assets: Assets,
}

impl Utxo {
    /// Plain bitcoin: on the payment account and known to carry no rune and no inscription.
    pub fn is_money(&self) -> bool {
        self.path.account == Account::Payment
            && matches!(&self.assets, Assets::Known { runes, inscriptions: 0 } if runes.is_empty())
    }

    /// Units of `rune` on it, when known.
    pub fn rune(&self, rune: RuneId) -> u128 {
        match &self.assets {
            Assets::Known { runes, .. } => runes.get(&rune).copied().unwrap_or(0),
            Assets::Unknown => 0,
        }
    }

    /// Known runes on it (empty when unknown).
    pub fn runes(&self) -> Balances {
        match &self.assets {
            Assets::Known { runes, .. } => runes.clone(),
            Assets::Unknown => Balances::new(),
        }
    }
}

/// A lock refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// Another reservation holds it.
    #[error("output {0} is already reserved")]
    Taken(OutPoint),
    /// The lock table is full.
    #[error("too many reserved outputs ({0})")]
    Full(usize),
}

/// Outputs reserved by trades (keyed by whatever names the reservation, e.g. a trade id), so a
/// send or another trade cannot spend them meanwhile. Bounded.
#[derive(Debug, Clone)]
pub struct Locks<K> {
    by_outpoint: BTreeMap<OutPoint, K>,
    cap: usize,
}

impl<K: Clone + PartialEq> Locks<K> {
    /// The default bound on reserved outputs.
    pub const DEFAULT_CAP: usize = 4096;

    /// An empty table holding at most `cap` outputs.
    pub fn new(cap: usize) -> Self {
        Locks {
            by_outpoint: BTreeMap::new(),
            cap,
        }
    }

    /// Reserves every output in `outpoints` for `owner`, or none of them.
    pub fn lock(&mut self, outpoints: &[OutPoint], owner: K) -> Result<(), LockError> {
        for o in outpoints {
            if self.by_outpoint.get(o).is_some_and(|k| *k != owner) {
                return Err(LockError::Taken(*o));
            }
        }
        let new = outpoints
            .iter()
            .filter(|o| !self.by_outpoint.contains_key(o))
            .count();
        if self.by_outpoint.len() + new > self.cap {
            return Err(LockError::Full(self.cap));
        }
        for o in outpoints {
            self.by_outpoint.insert(*o, owner.clone());
        }
        Ok(())
    }

    /// Releases what `owner` reserved; returns how many outputs.
    pub fn release(&mut self, owner: &K) -> usize {
        let before = self.by_outpoint.len();
        self.by_outpoint.retain(|_, k| k != owner);
        before - self.by_outpoint.len()
    }

    /// Whether `outpoint` is reserved.
    pub fn is_locked(&self, outpoint: &OutPoint) -> bool {
        self.by_outpoint.contains_key(outpoint)
    }

    /// Who reserved `outpoint`.
    pub fn owner(&self, outpoint: &OutPoint) -> Option<&K> {
        self.by_outpoint.get(outpoint)
    }
}

/// Amounts by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split<T> {
    /// In outputs with at least one confirmation, not reserved.
    pub confirmed: T,
    /// In outputs still in the mempool, not reserved.
    pub unconfirmed: T,
    /// Reserved by a trade.
    pub locked: T,
}

/// What the wallet holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Balance {
    /// Plain bitcoin ([`Utxo::is_money`]).
    pub btc: Split<Amount>,
    /// Bitcoin in outputs that carry runes or inscriptions, or whose contents are not yet known:
    /// the wallet does not spend it as fee money.
    pub btc_held_back: Amount,
    /// Each rune's units.
    pub runes: BTreeMap<RuneId, Split<u128>>,
    /// Outputs whose contents the indexer has not reported yet.
    pub unknown_outputs: usize,
}

/// Sums `utxos` by state.
pub fn balance<K: Clone + PartialEq>(utxos: &[Utxo], locks: &Locks<K>) -> Balance {
    let mut b = Balance::default();
    for u in utxos {
        let locked = locks.is_locked(&u.outpoint);
        let confirmed = u.confirmations > 0;
        if u.is_money() {
            let slot = match (locked, confirmed) {
                (true, _) => &mut b.btc.locked,
                (false, true) => &mut b.btc.confirmed,
                (false, false) => &mut b.btc.unconfirmed,
            };
            *slot += u.txout.value;
        } else {
            b.btc_held_back += u.txout.value;
        }
        if matches!(u.assets, Assets::Unknown) {
            b.unknown_outputs += 1;
        }
        for (id, amount) in u.runes() {
            let split = b.runes.entry(id).or_default();
            let slot = match (locked, confirmed) {
                (true, _) => &mut split.locked,
                (false, true) => &mut split.confirmed,
                (false, false) => &mut split.unconfirmed,
            };
            *slot = slot.saturating_add(amount);
        }
    }
    b
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bitcoin::hashes::Hash;
    use bitcoin::{ScriptBuf, Txid};

    pub(crate) fn utxo(n: u8, sats: u64, account: Account, assets: Assets, conf: u32) -> Utxo {
        Utxo {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: u32::from(n),
            },
            txout: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: ScriptBuf::new(),
            },
            path: KeyPath::receive(account, u32::from(n)),
            confirmations: conf,
            assets,
        }
    }

    const R: RuneId = RuneId { block: 5, tx: 1 };

    fn runes(n: u128) -> Assets {
        Assets::Known {
            runes: [(R, n)].into_iter().collect(),
            inscriptions: 0,
        }
    }

    #[test]
    fn balances_split_by_state_and_hold_back_what_is_not_money() {
        let utxos = vec![
            utxo(1, 10_000, Account::Payment, Assets::none(), 3),
            utxo(2, 5_000, Account::Payment, Assets::none(), 0),
            utxo(3, 7_000, Account::Payment, Assets::none(), 1),
            utxo(4, 546, Account::Runes, runes(900), 1),
            utxo(5, 1_000, Account::Payment, Assets::Unknown, 1),
            utxo(6, 2_000, Account::Payment, runes(5), 0),
            utxo(
                7,
                600,
                Account::Payment,
                Assets::Known {
                    runes: Balances::new(),
                    inscriptions: 1,
                },
                1,
            ),
        ];
        let mut locks = Locks::new(8);
        locks.lock(&[utxos[2].outpoint], "trade-1").unwrap();
        let b = balance(&utxos, &locks);
        assert_eq!(b.btc.confirmed, Amount::from_sat(10_000));
        assert_eq!(b.btc.unconfirmed, Amount::from_sat(5_000));
        assert_eq!(b.btc.locked, Amount::from_sat(7_000));
        assert_eq!(b.btc_held_back, Amount::from_sat(546 + 1_000 + 2_000 + 600));
        assert_eq!(b.unknown_outputs, 1);
        assert_eq!(
            b.runes[&R],
            Split {
                confirmed: 900,
                unconfirmed: 5,
                locked: 0
            }
        );
    }

    #[test]
    fn locks_are_all_or_nothing_bounded_and_released_by_owner() {
        let a = utxo(1, 1, Account::Payment, Assets::none(), 1).outpoint;
        let b = utxo(2, 1, Account::Payment, Assets::none(), 1).outpoint;
        let c = utxo(3, 1, Account::Payment, Assets::none(), 1).outpoint;
        let mut locks = Locks::new(2);
        locks.lock(&[a], 1).unwrap();
        assert_eq!(locks.lock(&[b, a], 2), Err(LockError::Taken(a)));
        assert!(!locks.is_locked(&b), "nothing taken on refusal");
        locks.lock(&[a, b], 1).unwrap();
        assert_eq!(locks.lock(&[c], 3), Err(LockError::Full(2)));
        assert_eq!(locks.owner(&b), Some(&1));
        assert_eq!(locks.release(&1), 2);
        assert!(!locks.is_locked(&a));
    }
}
