//! Choosing what we bring to a swap from the wallet's outputs: the rune seller's rune outputs
//! (with plain bitcoin added when the price cannot carry its share of the fee), the buyer's
//! plain bitcoin. Only outputs the indexer has reported on and no trade or send has locked are
//! chosen; the caller locks the chosen ones for the trade at once (the settlement asks it to).
//!
//! The fee here is an estimate with a margin, to choose enough inputs; the swap's own build
//! ([`darkswap_wallet::swap::build`]) computes the real one and refuses a side that is short.

use std::collections::BTreeMap;

use bitcoin::{Amount, OutPoint, ScriptBuf};
use darkswap_proto::settle::MAX_OFFER_INPUTS;
use darkswap_wallet::keys::KeyPath;
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::send::{rune_carriers, RUNE_OUTPUT_SATS};
use darkswap_wallet::swap::{BuyerOffer, Offered, SellerOffer, Terms};
use darkswap_wallet::utxo::{Locks, Utxo};

use crate::convert::Offer;

/// Virtual bytes of one signed key-path input, rounded up.
const INPUT_VB: u64 = 58;
/// Virtual bytes of one taproot output.
const OUTPUT_VB: u64 = 43;
/// A side's half of the shared bytes (version, counts, lock time, the runestone), with margin.
const SHARED_HALF_VB: u64 = 24;

/// Our offer and the key that spends each of its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ours {
    /// What we send the other side.
    pub offer: Offer,
    /// The key path of each offered output.
    pub paths: BTreeMap<OutPoint, KeyPath>,
}

/// Why the wallet cannot fund its side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// Not enough free units of the rune (locked, unknown to the indexer, or carrying
    /// inscriptions do not count).
    #[error("the wallet has {available} free units of {rune}, {needed} are needed")]
    Runes {
        /// The rune.
        rune: RuneId,
        /// The fill.
        needed: u128,
        /// Free units found.
        available: u128,
    },
    /// Not enough free plain bitcoin.
    #[error("the wallet has {available} of free bitcoin, about {needed} is needed")]
    Bitcoin {
        /// About this much.
        needed: Amount,
        /// Free plain bitcoin found.
        available: Amount,
    },
    /// It would take more than [`MAX_OFFER_INPUTS`] outputs.
    #[error("funding this side would take more than {MAX_OFFER_INPUTS} outputs")]
    TooManyInputs,
}

fn offered(u: &Utxo) -> Offered {
    Offered {
        outpoint: u.outpoint,
        txout: u.txout.clone(),
        runes: u.runes(),
    }
}

fn fee(terms: &Terms, vbytes: u64) -> Amount {
    Amount::from_sat(terms.fee_rate.get().saturating_mul(vbytes))
}

/// Free plain bitcoin, confirmed first, then largest first.
fn money<'a, K: Clone + PartialEq>(utxos: &'a [Utxo], locks: &Locks<K>) -> Vec<&'a Utxo> {
    let mut m: Vec<&Utxo> = utxos
        .iter()
        .filter(|u| u.is_money() && !locks.is_locked(&u.outpoint))
        .collect();
    m.sort_by(|a, b| {
        (b.confirmations > 0)
            .cmp(&(a.confirmations > 0))
            .then(b.txout.value.cmp(&a.txout.value))
            .then(a.outpoint.cmp(&b.outpoint))
    });
    m
}

/// Adds outputs from `pool` to `chosen` until `covers(total, count)` holds.
fn add_until<'a>(
    chosen: &mut Vec<&'a Utxo>,
    pool: &[&'a Utxo],
    mut enough: impl FnMut(Amount, usize) -> (bool, Amount),
) -> Result<(), SelectError> {
    let mut total: Amount = chosen.iter().map(|u| u.txout.value).sum();
    let mut pool = pool.iter();
    loop {
        let (ok, needed) = enough(total, chosen.len());
        if ok {
            return Ok(());
        }
        if chosen.len() >= MAX_OFFER_INPUTS {
            return Err(SelectError::TooManyInputs);
        }
        match pool.next() {
            Some(u) => {
                total += u.txout.value;
                chosen.push(u);
            }
            None => {
                return Err(SelectError::Bitcoin {
                    needed,
                    available: total,
                })
            }
        }
    }
}

fn ours(chosen: &[&Utxo]) -> BTreeMap<OutPoint, KeyPath> {
    chosen.iter().map(|u| (u.outpoint, u.path)).collect()
}

/// The rune seller's side of `terms`: rune outputs holding the fill (largest first), plus plain
/// bitcoin when the price does not cover the seller's share of the fee and its rune change.
pub fn seller<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    terms: &Terms,
    payment: ScriptBuf,
    rune_change: ScriptBuf,
) -> Result<Ours, SelectError> {
    let rune = terms.rune;
    let carriers = rune_carriers(utxos, locks, rune);
    let mut chosen: Vec<&Utxo> = Vec::new();
    let mut have: u128 = 0;
    for c in carriers {
        if have >= terms.units {
            break;
        }
        if chosen.len() >= MAX_OFFER_INPUTS {
            return Err(SelectError::TooManyInputs);
        }
        have = have.saturating_add(c.rune(rune));
        chosen.push(c);
    }
    if have < terms.units {
        return Err(SelectError::Runes {
            rune,
            needed: terms.units,
            available: have,
        });
    }
    let dust = payment.minimal_non_dust();
    let postage = Amount::from_sat(RUNE_OUTPUT_SATS);
    let pool = money(utxos, locks);
    add_until(&mut chosen, &pool, |total, n| {
        let share = fee(terms, INPUT_VB * n as u64 + 2 * OUTPUT_VB + SHARED_HALF_VB);
        let needed = postage + share + dust;
        (terms.price + total >= needed, needed)
    })?;
    Ok(Ours {
        paths: ours(&chosen),
        offer: Offer::Seller(SellerOffer {
            inputs: chosen.iter().map(|u| offered(u)).collect(),
            payment,
            rune_change,
        }),
    })
}

/// The buyer's side of `terms`: free plain bitcoin covering the price, the rune output's
/// postage and the buyer's share of the fee.
pub fn buyer<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    terms: &Terms,
    receive: ScriptBuf,
    change: ScriptBuf,
) -> Result<Ours, SelectError> {
    let postage = Amount::from_sat(RUNE_OUTPUT_SATS);
    let pool = money(utxos, locks);
    let mut chosen = Vec::new();
    add_until(&mut chosen, &pool, |total, n| {
        let needed = terms.price
            + postage
            + fee(terms, INPUT_VB * n as u64 + 2 * OUTPUT_VB + SHARED_HALF_VB);
        (n > 0 && total >= needed, needed)
    })?;
    Ok(Ours {
        paths: ours(&chosen),
        offer: Offer::Buyer(BuyerOffer {
            inputs: chosen.iter().map(|u| offered(u)).collect(),
            receive,
            change,
        }),
    })
}
