//! The gateway's address index: for each output script, the confirmed transactions that pay it
//! or spend from it, with their heights, learned block by block. Core keeps no such index, and
//! Esplora's `/address/{addr}/txs` needs one. Plain data, no I/O: the gateway feeds it blocks
//! from bitcoind's RPC (`getblock` at verbosity 3, which carries each input's spent output).
//!
//! Bounded: at most `cap` (script, transaction) entries; past it the index refuses further
//! blocks and the gateway answers 503. A block that does not extend the last one (a reorg) is
//! refused too, and the gateway rebuilds the index from the genesis block (cheap on the small
//! chains the gateway is for).

use std::collections::HashMap;

use bitcoin::{BlockHash, ScriptBuf, Txid};

/// Why a block was not taken in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// Not the next height, or its parent is not the last block indexed.
    #[error("block {height} does not extend the indexed chain")]
    NotNext {
        /// The block's height.
        height: u32,
    },
    /// The index holds its cap of entries.
    #[error("the address index is full ({0} entries)")]
    Full(usize),
}

/// One transaction of a block, as the index needs it.
pub struct IndexedTx {
    /// Its id.
    pub txid: Txid,
    /// The scripts its outputs pay and its inputs spend from.
    pub scripts: Vec<ScriptBuf>,
}

/// Confirmed history by script.
pub struct AddressIndex {
    hashes: Vec<BlockHash>,
    by_script: HashMap<ScriptBuf, Vec<(Txid, u32)>>,
    entries: usize,
    cap: usize,
}

impl AddressIndex {
    /// An empty index holding at most `cap` entries.
    pub fn new(cap: usize) -> AddressIndex {
        AddressIndex {
            hashes: Vec::new(),
            by_script: HashMap::new(),
            entries: 0,
            cap,
        }
    }

    /// The height of the next block to index.
    pub fn next_height(&self) -> u32 {
        u32::try_from(self.hashes.len()).unwrap_or(u32::MAX)
    }

    /// The hash of the last block indexed.
    pub fn last_hash(&self) -> Option<BlockHash> {
        self.hashes.last().copied()
    }

    /// Forgets everything (after a reorg).
    pub fn reset(&mut self) {
        self.hashes.clear();
        self.by_script.clear();
        self.entries = 0;
    }

    /// Takes in block `height` (`hash`, whose parent is `prev`), all or nothing.
    pub fn apply(
        &mut self,
        height: u32,
        hash: BlockHash,
        prev: Option<BlockHash>,
        txs: &[IndexedTx],
    ) -> Result<(), IndexError> {
        if height != self.next_height() || prev != self.last_hash() {
            return Err(IndexError::NotNext { height });
        }
        let mut adds: Vec<(&ScriptBuf, Txid)> = Vec::new();
        for tx in txs {
            let mut seen: Vec<&ScriptBuf> = Vec::new();
            for s in &tx.scripts {
                if !seen.contains(&s) {
                    seen.push(s);
                    adds.push((s, tx.txid));
                }
            }
        }
        let n = adds.len();
        if self.entries + n > self.cap {
            return Err(IndexError::Full(self.cap));
        }
        for (script, txid) in adds {
            self.by_script
                .entry(script.clone())
                .or_default()
                .push((txid, height));
        }
        self.entries += n;
        self.hashes.push(hash);
        Ok(())
    }

    /// The confirmed transactions touching `script`, newest first.
    pub fn history(&self, script: &ScriptBuf) -> Vec<(Txid, u32)> {
        let mut out = self.by_script.get(script).cloned().unwrap_or_default();
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn hash(n: u8) -> BlockHash {
        BlockHash::from_byte_array([n; 32])
    }

    fn txid(n: u8) -> Txid {
        Txid::from_byte_array([n; 32])
    }

    fn script(n: u8) -> ScriptBuf {
        ScriptBuf::from_bytes(vec![0x51, n])
    }

    #[test]
    fn blocks_in_order_build_each_scripts_history_newest_first() {
        let mut idx = AddressIndex::new(100);
        idx.apply(0, hash(0), None, &[]).unwrap();
        let t1 = IndexedTx {
            txid: txid(1),
            scripts: vec![script(1), script(1), script(2)],
        };
        idx.apply(1, hash(1), Some(hash(0)), &[t1]).unwrap();
        let t2 = IndexedTx {
            txid: txid(2),
            scripts: vec![script(1)],
        };
        idx.apply(2, hash(2), Some(hash(1)), &[t2]).unwrap();
        assert_eq!(idx.history(&script(1)), vec![(txid(2), 2), (txid(1), 1)]);
        assert_eq!(idx.history(&script(2)), vec![(txid(1), 1)]);
        assert!(idx.history(&script(3)).is_empty());
        assert_eq!(idx.next_height(), 3);
    }

    #[test]
    fn a_block_off_the_indexed_chain_or_past_the_cap_is_refused_whole() {
        let mut idx = AddressIndex::new(2);
        idx.apply(0, hash(0), None, &[]).unwrap();
        // Wrong parent (a reorg), wrong height.
        assert_eq!(
            idx.apply(1, hash(1), Some(hash(9)), &[]),
            Err(IndexError::NotNext { height: 1 })
        );
        assert_eq!(
            idx.apply(2, hash(2), Some(hash(0)), &[]),
            Err(IndexError::NotNext { height: 2 })
        );
        let big = IndexedTx {
            txid: txid(1),
            scripts: vec![script(1), script(2), script(3)],
        };
        assert_eq!(
            idx.apply(1, hash(1), Some(hash(0)), &[big]),
            Err(IndexError::Full(2))
        );
        assert!(idx.history(&script(1)).is_empty(), "nothing of it taken");
        idx.reset();
        assert_eq!(idx.next_height(), 0);
    }
}
