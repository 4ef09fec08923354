//! The regtest faucet's test rune. On its first call the faucet mines a spendable coinbase to a
//! key of its own, etches a rune under a reserved name (ord names it from the block and index,
//! so no commitment transaction is needed) with a large premine, and from then on sends
//! [`defaults::FAUCET_RUNES`] units of it per call, with a runestone edict, from the output that
//! holds the rest. Each gift is mined at once, so the caller sees it confirmed.
//!
//! The key is made from fresh randomness when the relay starts, is regtest only, and is never
//! written anywhere: a restarted relay etches a new rune. The faucet knows its outputs because it
//! made them: it builds, checks and signs with the trader's own wallet code
//! (`darkswap_wallet::send`), whose rune effect is worked out from the transaction's bytes. When
//! bitcoind refuses a gift (its outputs are gone, say after a reorg), it forgets them and etches
//! afresh on the next call instead of trying the same spend again.

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::{Address, Block, OutPoint, Transaction, Txid};
use darkswap_wallet::effect::{Effect, ETCHED};
use darkswap_wallet::faucet::RuneGift;
use darkswap_wallet::keys::KeyError;
use darkswap_wallet::send::BuildError;
use darkswap_wallet::sign::SignError;
use darkswap_wallet::{
    Account, Assets, Derived, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, NewRune,
    RuneId, Utxo, WordCount,
};
use serde_json::{json, Value};

use crate::bitcoind_rpc::{Rpc, RpcError};
use crate::defaults;

/// Why a gift failed.
#[derive(Debug, thiserror::Error)]
pub enum FaucetError {
    /// bitcoind failed or refused.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// bitcoind answered something that is not what was asked for.
    #[error("bitcoind's answer to {0} is not what the faucet expects")]
    Unexpected(&'static str),
    /// The faucet's own transaction could not be built (e.g. no subsidy left on this chain).
    #[error("the faucet could not build its transaction: {0}")]
    Build(#[from] BuildError),
    /// Signing failed.
    #[error("the faucet could not sign: {0}")]
    Sign(#[from] SignError),
    /// Key derivation failed.
    #[error("the faucet's key: {0}")]
    Key(#[from] KeyError),
}

/// The rune the faucet etched and the outputs it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stock {
    rune: RuneId,
    utxos: Vec<Utxo>,
}

/// The faucet's wallet: its keys, its two addresses and, once etched, its stock.
pub struct RuneFaucet {
    keys: Keychain,
    /// Bitcoin: the coinbase it mines and the change of every gift.
    money: Derived,
    /// The rune's premine and every gift's rune change.
    holder: Derived,
    stock: Option<Stock>,
}

impl RuneFaucet {
    /// A faucet with a fresh regtest key.
    pub fn new() -> Result<RuneFaucet, KeyError> {
        let keys = Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest)?;
        Ok(RuneFaucet {
            money: keys.derive(KeyPath::receive(Account::Payment, 0))?,
            holder: keys.derive(KeyPath::receive(Account::Runes, 0))?,
            keys,
            stock: None,
        })
    }

    /// Sends [`defaults::FAUCET_RUNES`] units of the faucet's rune to `to` (a regtest address)
    /// and mines the block that confirms it; etches the rune first if there is none.
    pub async fn give(&mut self, rpc: &Rpc, to: &Address) -> Result<RuneGift, FaucetError> {
        let stock = match self.stock.take() {
            Some(s) => s,
            None => self.etch(rpc).await?,
        };
        let unsigned = darkswap_wallet::send_runes(
            &stock.utxos,
            &no_locks(),
            stock.rune,
            defaults::FAUCET_RUNES,
            to,
            fee_rate(),
            &self.holder,
            &self.money,
        );
        // The stock is put back unless bitcoind refused the spend itself (then its outputs are
        // not what the faucet thinks, and the next call starts over).
        let unsigned = match unsigned {
            Ok(u) => u,
            Err(e) => {
                self.stock = Some(stock);
                return Err(e.into());
            }
        };
        let tx = match darkswap_wallet::sign(&self.keys, &unsigned) {
            Ok(tx) => tx,
            Err(e) => {
                self.stock = Some(stock);
                return Err(e.into());
            }
        };
        let txid = self.broadcast_and_mine(rpc, &tx).await?;
        let mut stock = stock;
        stock.after(&tx, &unsigned.effect, None, [&self.money, &self.holder]);
        let rune = stock.rune;
        self.stock = Some(stock);
        Ok(RuneGift {
            rune,
            amount: defaults::FAUCET_RUNES,
            divisibility: defaults::FAUCET_RUNE_DIVISIBILITY,
            txid,
        })
    }

    /// Mines a spendable coinbase to the faucet, etches the rune and mines it.
    async fn etch(&self, rpc: &Rpc) -> Result<Stock, FaucetError> {
        let hashes = rpc
            .call(
                "generatetoaddress",
                json!([defaults::FAUCET_BLOCKS, self.money.address.to_string()]),
            )
            .await?;
        let first = hashes
            .as_array()
            .and_then(|h| h.first())
            .and_then(Value::as_str)
            .ok_or(FaucetError::Unexpected("generatetoaddress"))?;
        let (mined, _) = block(rpc, first).await?;
        let coinbase = coinbase_utxo(&mined, &self.money)?;
        let rune = NewRune {
            divisibility: defaults::FAUCET_RUNE_DIVISIBILITY,
            symbol: Some(defaults::FAUCET_RUNE_SYMBOL),
            premine: defaults::FAUCET_RUNE_PREMINE,
        };
        let unsigned = darkswap_wallet::etch(
            &[coinbase],
            &no_locks(),
            rune,
            &self.holder,
            fee_rate(),
            &self.money,
        )?;
        let tx = darkswap_wallet::sign(&self.keys, &unsigned)?;
        let txid = tx.compute_txid();
        rpc.call("sendrawtransaction", json!([serialize_hex(&tx)]))
            .await?;
        let hash = mine_one(rpc, &self.money).await?;
        let (etched, height) = block(rpc, &hash).await?;
        let index = etched
            .txdata
            .iter()
            .position(|t| t.compute_txid() == txid)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or(FaucetError::Unexpected(
                "getblock (the etching is not in it)",
            ))?;
        let id = RuneId::new(height, index).ok_or(FaucetError::Unexpected("getblockheader"))?;
        let mut stock = Stock {
            rune: id,
            utxos: Vec::new(),
        };
        stock.after(&tx, &unsigned.effect, Some(id), [&self.money, &self.holder]);
        Ok(stock)
    }

    async fn broadcast_and_mine(&self, rpc: &Rpc, tx: &Transaction) -> Result<Txid, FaucetError> {
        rpc.call("sendrawtransaction", json!([serialize_hex(tx)]))
            .await?;
        mine_one(rpc, &self.money).await?;
        Ok(tx.compute_txid())
    }
}

impl Stock {
    /// The stock after `tx` (whose rune effect is `effect`) was mined: its inputs are spent, its
    /// outputs to `ours` are added with the runes the effect puts on them (`etched` names the
    /// rune an etching created).
    fn after(
        &mut self,
        tx: &Transaction,
        effect: &Effect,
        etched: Option<RuneId>,
        ours: [&Derived; 2],
    ) {
        let spent: Vec<OutPoint> = tx.input.iter().map(|i| i.previous_output).collect();
        self.utxos.retain(|u| !spent.contains(&u.outpoint));
        let txid = tx.compute_txid();
        for (vout, out) in tx.output.iter().enumerate() {
            let Some(owner) = ours.iter().find(|d| d.script_pubkey == out.script_pubkey) else {
                continue;
            };
            let runes = effect
                .outputs
                .get(vout)
                .map(|b| {
                    b.iter()
                        .map(|(id, n)| match (id, etched) {
                            (&ETCHED, Some(real)) => (real, *n),
                            _ => (*id, *n),
                        })
                        .collect()
                })
                .unwrap_or_default();
            self.utxos.push(Utxo {
                outpoint: OutPoint {
                    txid,
                    vout: vout as u32,
                },
                txout: out.clone(),
                path: owner.path,
                confirmations: 1,
                assets: Assets::Known {
                    runes,
                    inscriptions: 0,
                },
            });
        }
    }
}

/// The faucet never reserves outputs.
fn no_locks() -> Locks<()> {
    Locks::new(1)
}

fn fee_rate() -> FeeRate {
    // Regtest has no fee market; this is above every node's minimum relay fee.
    FeeRate::sat_per_vb(defaults::FAUCET_FEE_RATE).unwrap_or_else(|_| unreachable!())
}

async fn mine_one(rpc: &Rpc, to: &Derived) -> Result<String, FaucetError> {
    let hashes = rpc
        .call("generatetoaddress", json!([1, to.address.to_string()]))
        .await?;
    hashes
        .as_array()
        .and_then(|h| h.first())
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(FaucetError::Unexpected("generatetoaddress"))
}

/// The block `hash` (decoded from its bytes, so every txid is computed here) and its height.
async fn block(rpc: &Rpc, hash: &str) -> Result<(Block, u64), FaucetError> {
    let hex = rpc.call("getblock", json!([hash, 0])).await?;
    let block: Block = hex
        .as_str()
        .and_then(|h| deserialize_hex(h).ok())
        .ok_or(FaucetError::Unexpected("getblock"))?;
    if block.block_hash().to_string() != hash {
        return Err(FaucetError::Unexpected("getblock (another block)"));
    }
    let header = rpc.call("getblockheader", json!([hash, true])).await?;
    let height = header["height"]
        .as_u64()
        .ok_or(FaucetError::Unexpected("getblockheader"))?;
    Ok((block, height))
}

/// The coinbase output of `block` that pays `to`, as a spendable output of the faucet.
fn coinbase_utxo(block: &Block, to: &Derived) -> Result<Utxo, FaucetError> {
    let coinbase = block
        .txdata
        .first()
        .ok_or(FaucetError::Unexpected("getblock (no coinbase)"))?;
    let (vout, out) = coinbase
        .output
        .iter()
        .enumerate()
        .find(|(_, o)| o.script_pubkey == to.script_pubkey)
        .ok_or(FaucetError::Unexpected(
            "getblock (the coinbase does not pay the faucet)",
        ))?;
    Ok(Utxo {
        outpoint: OutPoint {
            txid: coinbase.compute_txid(),
            vout: vout as u32,
        },
        txout: out.clone(),
        path: to.path,
        confirmations: 101,
        assets: Assets::none(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, Sequence, TxIn, TxOut, Witness};
    use darkswap_wallet::effect::Balances;

    fn out(to: &Derived, sats: u64) -> TxOut {
        TxOut {
            value: Amount::from_sat(sats),
            script_pubkey: to.script_pubkey.clone(),
        }
    }

    #[test]
    fn the_stock_follows_its_own_transactions() {
        let f = RuneFaucet::new().unwrap();
        let stranger = RuneFaucet::new().unwrap().holder;
        let spent = OutPoint {
            txid: Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
            vout: 3,
        };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: spent,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![
                out(&f.holder, 546),
                out(&stranger, 546),
                out(&f.money, 9_000),
            ],
        };
        let real = RuneId::new(120, 1).unwrap();
        let effect = Effect {
            outputs: vec![
                Balances::from([(ETCHED, 700)]),
                Balances::from([(ETCHED, 300)]),
                Balances::new(),
            ],
            burned: Balances::new(),
            cenotaph: false,
        };
        let mut stock = Stock {
            rune: real,
            utxos: vec![Utxo {
                outpoint: spent,
                txout: out(&f.money, 10_000),
                path: f.money.path,
                confirmations: 101,
                assets: Assets::none(),
            }],
        };
        stock.after(&tx, &effect, Some(real), [&f.money, &f.holder]);
        assert_eq!(
            stock.utxos.len(),
            2,
            "the spent output goes, the stranger's is not ours"
        );
        assert_eq!(stock.utxos[0].outpoint.vout, 0);
        assert_eq!(stock.utxos[0].rune(real), 700);
        assert_eq!(stock.utxos[0].path.account, Account::Runes);
        assert_eq!(stock.utxos[1].outpoint.vout, 2);
        assert!(stock.utxos[1].is_money());
    }
}
