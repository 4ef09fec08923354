//! What a transaction does to runes: given the runes on each of its inputs, where each unit
//! ends up (per output) and what is burned, following ord's allocation rules (edicts in order,
//! amounts capped at what is unallocated, `amount` 0 and split edicts, the pointer or the first
//! non-`OP_RETURN` output for the rest, everything burned by a cenotaph, runes sent to an
//! `OP_RETURN` output burned). The wallet runs this over every transaction it builds before it
//! signs; settlement runs it over the counterparty's transaction.
//!
//! Mints and named etchings add runes whose amounts depend on chain state this module does not
//! have (a mint: the rune's terms and mint count; a named etching: whether its commitment was
//! confirmed): such transactions are refused with [`EffectError::MintOrEtching`] rather than
//! guessed at. [`effect`] refuses every etching; [`etching_effect`] takes one that etches under
//! a reserved name (no name given), whose premine is certain, and writes the new rune as
//! [`ETCHED`] until a block gives it an id.

use std::collections::BTreeMap;

use bitcoin::Transaction;

use crate::runestone::{Artifact, RuneId, Runestone};

/// Rune balances: units per rune.
pub type Balances = BTreeMap<RuneId, u128>;

/// The runes a transaction moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// Runes on each output, by output index.
    pub outputs: Vec<Balances>,
    /// Runes destroyed.
    pub burned: Balances,
    /// Whether the runestone is a cenotaph (then everything is in `burned`).
    pub cenotaph: bool,
}

/// The effect cannot be worked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EffectError {
    /// One balance list per input is needed.
    #[error("{inputs} inputs but balances for {given}")]
    InputCount {
        /// Inputs in the transaction.
        inputs: usize,
        /// Balance lists given.
        given: usize,
    },
    /// The transaction etches or mints (see the module doc).
    #[error("the transaction etches or mints a rune; its effect needs the rune's chain state")]
    MintOrEtching,
    /// More units than a u128 holds (only from inconsistent input balances).
    #[error("rune balances overflow")]
    Overflow,
}

/// The rune an etching creates, inside its own transaction: `0:0`, as ord's edicts name it (its
/// real id is its block's height and its index there).
pub const ETCHED: RuneId = RuneId { block: 0, tx: 0 };

/// The rune effect of `tx` whose inputs hold `inputs` (one entry per input, in order).
pub fn effect(tx: &Transaction, inputs: &[Balances]) -> Result<Effect, EffectError> {
    allocate(tx, inputs, false)
}

/// The rune effect of `tx`, which may etch a rune under a reserved name (no name field): the
/// premine lands where the runestone sends it, written as [`ETCHED`]. A mint, or an etching
/// that names its rune, is still refused.
pub fn etching_effect(tx: &Transaction, inputs: &[Balances]) -> Result<Effect, EffectError> {
    allocate(tx, inputs, true)
}

fn allocate(
    tx: &Transaction,
    inputs: &[Balances],
    reserved_etching: bool,
) -> Result<Effect, EffectError> {
    if inputs.len() != tx.input.len() {
        return Err(EffectError::InputCount {
            inputs: tx.input.len(),
            given: inputs.len(),
        });
    }
    let mut unallocated = Balances::new();
    for balances in inputs {
        for (id, amount) in balances {
            add(&mut unallocated, *id, *amount)?;
        }
    }
    let n = tx.output.len();
    let mut outputs = vec![Balances::new(); n];
    let mut burned = Balances::new();
    let artifact = Runestone::decipher(tx);
    let stone = match artifact {
        // A cenotaph's mint or etching adds nothing; every input rune burns.
        Some(Artifact::Cenotaph(_)) => {
            for (id, amount) in unallocated {
                add(&mut burned, id, amount)?;
            }
            return Ok(Effect {
                outputs,
                burned,
                cenotaph: true,
            });
        }
        Some(Artifact::Runestone(r)) => Some(r),
        None => None,
    };
    let spendable: Vec<usize> = (0..n)
        .filter(|i| !tx.output[*i].script_pubkey.is_op_return())
        .collect();
    if let Some(stone) = &stone {
        if stone.mint.is_some() {
            return Err(EffectError::MintOrEtching);
        }
        if let Some(etching) = &stone.etching {
            if !reserved_etching || etching.rune.is_some() {
                return Err(EffectError::MintOrEtching);
            }
            // An edict naming 0:0 moves the etched rune; elsewhere 0:0 holds nothing (as in
            // ord, where such an edict is skipped when nothing is etched).
            add(&mut unallocated, ETCHED, etching.premine.unwrap_or(0))?;
        }
        for edict in &stone.edicts {
            let Some(balance) = unallocated.get_mut(&edict.id) else {
                continue;
            };
            let out = edict.output as usize;
            if out == n {
                if spendable.is_empty() {
                    continue;
                }
                if edict.amount == 0 {
                    let count = spendable.len() as u128;
                    let each = *balance / count;
                    let extra = (*balance % count) as usize;
                    for (k, o) in spendable.iter().enumerate() {
                        let give = each + u128::from(k < extra);
                        *balance -= give;
                        add(&mut outputs[*o], edict.id, give)?;
                    }
                } else {
                    for o in &spendable {
                        let give = edict.amount.min(*balance);
                        *balance -= give;
                        add(&mut outputs[*o], edict.id, give)?;
                    }
                }
            } else {
                let give = if edict.amount == 0 {
                    *balance
                } else {
                    edict.amount.min(*balance)
                };
                *balance -= give;
                add(&mut outputs[out], edict.id, give)?;
            }
        }
    }
    let rest_to = stone
        .as_ref()
        .and_then(|s| s.pointer)
        .map(|p| p as usize)
        .or_else(|| spendable.first().copied());
    for (id, amount) in unallocated {
        if amount == 0 {
            continue;
        }
        match rest_to {
            Some(o) => add(&mut outputs[o], id, amount)?,
            None => add(&mut burned, id, amount)?,
        }
    }
    for (i, out) in tx.output.iter().enumerate() {
        if out.script_pubkey.is_op_return() {
            for (id, amount) in std::mem::take(&mut outputs[i]) {
                add(&mut burned, id, amount)?;
            }
        }
    }
    for o in &mut outputs {
        o.retain(|_, v| *v > 0);
    }
    Ok(Effect {
        outputs,
        burned,
        cenotaph: false,
    })
}

fn add(b: &mut Balances, id: RuneId, amount: u128) -> Result<(), EffectError> {
    if amount == 0 {
        return Ok(());
    }
    let slot = b.entry(id).or_insert(0);
    *slot = slot.checked_add(amount).ok_or(EffectError::Overflow)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runestone::Edict;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, TxIn, TxOut, Witness};

    const A: RuneId = RuneId { block: 100, tx: 1 };
    const B: RuneId = RuneId { block: 200, tx: 0 };

    fn out(script: ScriptBuf) -> TxOut {
        TxOut {
            value: Amount::from_sat(546),
            script_pubkey: script,
        }
    }

    fn plain() -> ScriptBuf {
        ScriptBuf::from_bytes(vec![0x51, 0x20].into_iter().chain([7u8; 32]).collect())
    }

    fn tx(stone: Option<&Runestone>, plain_outputs: usize, inputs: usize) -> Transaction {
        let mut output = Vec::new();
        if let Some(s) = stone {
            output.push(out(s.encipher()));
        }
        for _ in 0..plain_outputs {
            output.push(out(plain()));
        }
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: (0..inputs)
                .map(|_| TxIn {
                    previous_output: OutPoint::null(),
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output,
        }
    }

    fn bal(pairs: &[(RuneId, u128)]) -> Balances {
        pairs.iter().copied().collect()
    }

    #[test]
    fn no_runestone_sends_everything_to_the_first_plain_output() {
        let t = tx(None, 2, 2);
        let e = effect(&t, &[bal(&[(A, 5)]), bal(&[(A, 7), (B, 1)])]).unwrap();
        assert_eq!(e.outputs[0], bal(&[(A, 12), (B, 1)]));
        assert!(e.outputs[1].is_empty() && e.burned.is_empty());
    }

    #[test]
    fn an_edict_and_a_pointer() {
        // Output 0 is the runestone; 1 recipient, 2 change.
        let s = Runestone {
            edicts: vec![Edict {
                id: A,
                amount: 40,
                output: 1,
            }],
            pointer: Some(2),
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 2, 1), &[bal(&[(A, 100), (B, 3)])]).unwrap();
        assert_eq!(e.outputs[1], bal(&[(A, 40)]));
        assert_eq!(e.outputs[2], bal(&[(A, 60), (B, 3)]));
        assert!(e.burned.is_empty());
    }

    #[test]
    fn amounts_are_capped_and_zero_means_all() {
        let s = Runestone {
            edicts: vec![
                Edict {
                    id: A,
                    amount: 70,
                    output: 1,
                },
                Edict {
                    id: A,
                    amount: 70,
                    output: 2,
                },
                Edict {
                    id: B,
                    amount: 0,
                    output: 2,
                },
            ],
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 2, 1), &[bal(&[(A, 100), (B, 9)])]).unwrap();
        assert_eq!(e.outputs[1], bal(&[(A, 70)]));
        assert_eq!(e.outputs[2], bal(&[(A, 30), (B, 9)]));
    }

    #[test]
    fn split_edicts() {
        // output == number of outputs: each plain output; amount 0 divides with remainder first.
        let s = Runestone {
            edicts: vec![Edict {
                id: A,
                amount: 0,
                output: 4,
            }],
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 3, 1), &[bal(&[(A, 11)])]).unwrap();
        assert_eq!(
            [&e.outputs[1], &e.outputs[2], &e.outputs[3]],
            [&bal(&[(A, 4)]), &bal(&[(A, 4)]), &bal(&[(A, 3)])]
        );
        let s = Runestone {
            edicts: vec![Edict {
                id: A,
                amount: 5,
                output: 4,
            }],
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 3, 1), &[bal(&[(A, 11)])]).unwrap();
        assert_eq!(e.outputs[3], bal(&[(A, 1)]));
    }

    #[test]
    fn sending_to_the_op_return_burns() {
        let s = Runestone {
            edicts: vec![Edict {
                id: A,
                amount: 10,
                output: 0,
            }],
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 1, 1), &[bal(&[(A, 15)])]).unwrap();
        assert_eq!(e.burned, bal(&[(A, 10)]));
        assert_eq!(e.outputs[1], bal(&[(A, 5)]));
        // Only an OP_RETURN output: the rest is burned too.
        let e = effect(&tx(Some(&s), 0, 1), &[bal(&[(A, 15)])]).unwrap();
        assert_eq!(e.burned, bal(&[(A, 15)]));
    }

    #[test]
    fn a_cenotaph_burns_every_input() {
        let s = Runestone {
            edicts: vec![Edict {
                id: A,
                amount: 10,
                output: 9,
            }],
            ..Runestone::default()
        };
        let e = effect(&tx(Some(&s), 1, 2), &[bal(&[(A, 15)]), bal(&[(B, 2)])]).unwrap();
        assert!(e.cenotaph);
        assert_eq!(e.burned, bal(&[(A, 15), (B, 2)]));
        assert!(e.outputs.iter().all(|o| o.is_empty()));
    }

    #[test]
    fn mints_and_etchings_and_bad_input_counts_are_refused() {
        let s = Runestone {
            mint: Some(A),
            ..Runestone::default()
        };
        assert_eq!(
            effect(&tx(Some(&s), 1, 1), &[bal(&[])]),
            Err(EffectError::MintOrEtching)
        );
        assert_eq!(
            etching_effect(&tx(Some(&s), 1, 1), &[bal(&[])]),
            Err(EffectError::MintOrEtching),
            "a mint is refused by the etching variant too"
        );
        assert!(matches!(
            effect(&tx(None, 1, 2), &[bal(&[])]),
            Err(EffectError::InputCount {
                inputs: 2,
                given: 1
            })
        ));
    }

    fn etching(rune: Option<u128>, premine: u128) -> Box<crate::runestone::Etching> {
        Box::new(crate::runestone::Etching {
            divisibility: Some(2),
            premine: Some(premine),
            rune,
            ..crate::runestone::Etching::default()
        })
    }

    #[test]
    fn a_reserved_etching_puts_its_premine_where_it_is_sent() {
        // Output 0 the runestone, 1 and 2 plain. The premine goes to the pointer; an edict on
        // 0:0 moves part of it; an input rune follows the same pointer.
        let s = Runestone {
            etching: Some(etching(None, 1_000)),
            edicts: vec![Edict {
                id: ETCHED,
                amount: 300,
                output: 1,
            }],
            pointer: Some(2),
            ..Runestone::default()
        };
        let t = tx(Some(&s), 2, 1);
        assert_eq!(
            effect(&t, &[bal(&[(A, 5)])]),
            Err(EffectError::MintOrEtching),
            "the plain effect refuses every etching"
        );
        let e = etching_effect(&t, &[bal(&[(A, 5)])]).unwrap();
        assert_eq!(e.outputs[1], bal(&[(ETCHED, 300)]));
        assert_eq!(e.outputs[2], bal(&[(ETCHED, 700), (A, 5)]));
        assert!(e.burned.is_empty() && !e.cenotaph);
        // A named etching's premine depends on its commitment: refused, not guessed.
        let named = Runestone {
            etching: Some(etching(Some(99_999_999_999), 1_000)),
            ..Runestone::default()
        };
        assert_eq!(
            etching_effect(&tx(Some(&named), 1, 1), &[bal(&[])]),
            Err(EffectError::MintOrEtching)
        );
        // A 0:0 edict without an etching moves nothing.
        let stray = Runestone {
            edicts: vec![Edict {
                id: ETCHED,
                amount: 1,
                output: 1,
            }],
            ..Runestone::default()
        };
        let e = etching_effect(&tx(Some(&stray), 2, 1), &[bal(&[(A, 5)])]).unwrap();
        assert_eq!(e.outputs[1], bal(&[(A, 5)]));
    }
}
