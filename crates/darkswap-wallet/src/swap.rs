//! Settlement's atomic swap: one transaction in which a rune seller's runes go to the buyer and
//! the buyer's bitcoin to the seller, both legs or neither. Sans-IO: both sides build it from the
//! same two offers ([`build`]), so neither has to trust the other's bytes; each signs only its own
//! inputs ([`sign_side`]); what the other side sends back is compared with the local build and
//! its signatures verified ([`accept`]), and a difference is named ([`Difference`]).
//!
//! Layout (deterministic): inputs are the seller's in outpoint order, then the buyer's in
//! outpoint order. Outputs: 0 the buyer's rune output ([`RUNE_OUTPUT_SATS`]); 1 the seller's
//! rune change (only when the seller's inputs hold more than the fill, or other runes); then the
//! runestone (one edict: the agreed units to output 0; the pointer at the rune change); then the
//! seller's payment (the price, plus the seller's own input bitcoin, less its rune change and its
//! share of the fee); then the buyer's change (dropped into the fee when under its dust limit).
//!
//! Fee: the agreed rate times the signed virtual size, rounded up. Each side pays for the weight
//! of its own inputs and outputs, and half of the rest (the version, counts, lock time and the
//! runestone), the seller's half rounded up.
//!
//! Each output the other side offers is checked first ([`check_offered`]): against its
//! transaction's bytes, and its runes against the indexer's report (unreported or with
//! inscriptions: refused).
//!
//! What [`build`] refuses: a seller whose inputs do not hold the fill (as claimed; the caller
//! checks each claim against the indexer), a buyer input that carries runes, an outpoint offered
//! twice, a payment or change that cannot cover its side, and any transaction whose runestone is
//! a cenotaph or whose rune effect is not exactly "the fill to the buyer, the rest to the
//! seller's change, nothing burned".

use bitcoin::hashes::Hash;
use bitcoin::key::XOnlyPublicKey;
use bitcoin::secp256k1::{schnorr, Message, Secp256k1};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Witness};

use crate::effect::{effect, Balances, Effect, EffectError};
use crate::keys::{KeyPath, Keychain};
use crate::runestone::{Artifact, Edict, Flaw, RuneId, Runestone};
use crate::send::{FeeRate, MAX_INPUTS, RUNE_OUTPUT_SATS};
use crate::sign::{sign_inputs, SignError};

/// An output a side offers to spend, with the runes it holds (as the side claims; the other side
/// checks the claim against the indexer and the output against its transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value and script.
    pub txout: TxOut,
    /// Runes on it.
    pub runes: Balances,
}

/// What the rune seller brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SellerOffer {
    /// Outputs holding the rune (and any bitcoin the seller adds).
    pub inputs: Vec<Offered>,
    /// Where the bitcoin goes.
    pub payment: ScriptBuf,
    /// Where the runes left over go.
    pub rune_change: ScriptBuf,
}

/// What the buyer brings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuyerOffer {
    /// Plain-bitcoin outputs.
    pub inputs: Vec<Offered>,
    /// Where the runes go.
    pub receive: ScriptBuf,
    /// Where the buyer's bitcoin change goes.
    pub change: ScriptBuf,
}

/// What was agreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terms {
    /// The rune.
    pub rune: RuneId,
    /// Units the buyer gets (the fill).
    pub units: u128,
    /// Bitcoin the seller gets for them.
    pub price: Amount,
    /// The fee rate.
    pub fee_rate: FeeRate,
}

/// Which side of the swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Gives runes, gets bitcoin.
    Seller,
    /// Gives bitcoin, gets runes.
    Buyer,
}

/// The swap transaction both sides build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Swap {
    /// Unsigned.
    pub tx: Transaction,
    /// The outputs it spends, in input order.
    pub prevouts: Vec<TxOut>,
    /// The first this many inputs are the seller's, the rest the buyer's.
    pub seller_inputs: usize,
    /// The whole fee.
    pub fee: Amount,
    /// The seller's part of it (the buyer's is the rest).
    pub seller_fee: Amount,
    /// Its rune effect.
    pub effect: Effect,
}

/// How a transaction the other side sent differs from the one both should have built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Difference {
    /// It spends an output that neither offer holds, or leaves one out.
    #[error("it spends inputs other than the two offers'")]
    Inputs,
    /// It has more outputs than agreed (one of them paying someone).
    #[error("it has {got} outputs, not {expected}")]
    OutputCount {
        /// Built.
        expected: usize,
        /// Received.
        got: usize,
    },
    /// An output pays another script.
    #[error("output {0} pays another script")]
    Script(usize),
    /// An output pays another amount (the payment, a change: so also the fee).
    #[error("output {index} pays {got}, not {expected}")]
    Value {
        /// Which.
        index: usize,
        /// Built.
        expected: Amount,
        /// Received.
        got: Amount,
    },
    /// The runestone is not the agreed one (a changed edict or pointer).
    #[error("its runestone is not the agreed one")]
    Runestone,
    /// Its runestone is a cenotaph: every rune input would burn.
    #[error("its runestone is a cenotaph ({0}): the runes would burn")]
    Cenotaph(Flaw),
    /// Version, lock time or sequences differ.
    #[error("its version, lock time or sequences differ")]
    Framing,
}

/// The swap cannot be built, or what the other side sent is refused.
#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    /// Zero units, or a zero price.
    #[error("a swap moves some runes for some bitcoin")]
    Empty,
    /// The seller's inputs hold less of the rune than the fill.
    #[error("the seller's inputs hold {held} units of {rune}, not the {needed} agreed")]
    SellerShort {
        /// The rune.
        rune: RuneId,
        /// Held.
        held: u128,
        /// The fill.
        needed: u128,
    },
    /// A buyer input carries runes (they would go to the seller's change).
    #[error("a buyer input carries runes")]
    BuyerRunes,
    /// An outpoint offered twice, or no input on a side.
    #[error("an output is offered twice, or a side offers none")]
    Inputs,
    /// Over [`MAX_INPUTS`].
    #[error("the swap would spend more than {MAX_INPUTS} inputs")]
    TooManyInputs,
    /// A side's bitcoin does not cover what it pays.
    #[error(
        "the {side:?}'s bitcoin does not cover its side: {needed} needed, {available} offered"
    )]
    Short {
        /// Which side.
        side: Side,
        /// Needed.
        needed: Amount,
        /// Offered.
        available: Amount,
    },
    /// The built transaction's rune effect is not the agreed one (a bug guard).
    #[error("the swap's rune effect is not the agreed one")]
    Effect,
    /// The rune effect could not be worked out.
    #[error("rune effect: {0}")]
    EffectError(#[source] EffectError),
    /// What the other side sent is not the agreed transaction.
    #[error("the other side's transaction differs: {0}")]
    Differs(#[source] Difference),
    /// An input of the other side is unsigned or its signature does not verify.
    #[error("input {0}: the other side's signature is missing or does not verify")]
    BadSignature(usize),
    /// Signing our own inputs failed.
    #[error("signing: {0}")]
    Sign(#[source] SignError),
}

/// Why the other side's offered output is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    /// The transaction given is not the output's, or its output there is not the one claimed.
    #[error("{0} is not the output its transaction holds")]
    NotInTransaction(OutPoint),
    /// The indexer has not reported the output's contents (fail closed).
    #[error("the indexer has not reported what {0} holds")]
    Unindexed(OutPoint),
    /// The runes claimed are not the ones the indexer reports.
    #[error("{outpoint} holds {indexed:?} by the indexer's count, not the {claimed:?} claimed")]
    Runes {
        /// The output.
        outpoint: OutPoint,
        /// Claimed.
        claimed: Balances,
        /// Reported.
        indexed: Balances,
    },
    /// It carries inscriptions, which the swap does not move.
    #[error("{0} carries inscriptions; the swap does not move them")]
    Inscriptions(OutPoint),
}

/// Checks an output the other side offers against its transaction's bytes (`tx`, whose txid the
/// caller read it under; it is recomputed here) and what the indexer reports on it.
pub fn check_offered(
    claim: &Offered,
    tx: &Transaction,
    indexed: &crate::utxo::Assets,
) -> Result<(), OfferError> {
    let at = claim.outpoint;
    if tx.compute_txid() != at.txid || tx.output.get(at.vout as usize) != Some(&claim.txout) {
        return Err(OfferError::NotInTransaction(at));
    }
    match indexed {
        crate::utxo::Assets::Unknown => Err(OfferError::Unindexed(at)),
        crate::utxo::Assets::Known { inscriptions, .. } if *inscriptions > 0 => {
            Err(OfferError::Inscriptions(at))
        }
        crate::utxo::Assets::Known { runes, .. } if *runes != claim.runes => {
            Err(OfferError::Runes {
                outpoint: at,
                claimed: claim.runes.clone(),
                indexed: runes.clone(),
            })
        }
        crate::utxo::Assets::Known { .. } => Ok(()),
    }
}

/// Builds the swap from the two offers (the same bytes on both sides).
pub fn build(terms: &Terms, seller: &SellerOffer, buyer: &BuyerOffer) -> Result<Swap, SwapError> {
    if terms.units == 0 || terms.price == Amount::ZERO {
        return Err(SwapError::Empty);
    }
    let mut s_in = seller.inputs.clone();
    let mut b_in = buyer.inputs.clone();
    s_in.sort_by_key(|o| o.outpoint);
    b_in.sort_by_key(|o| o.outpoint);
    let mut all: Vec<OutPoint> = s_in.iter().chain(&b_in).map(|o| o.outpoint).collect();
    if s_in.is_empty() || b_in.is_empty() {
        return Err(SwapError::Inputs);
    }
    if all.len() > MAX_INPUTS {
        return Err(SwapError::TooManyInputs);
    }
    all.sort();
    all.dedup();
    if all.len() != s_in.len() + b_in.len() {
        return Err(SwapError::Inputs);
    }
    if b_in.iter().any(|o| !o.runes.is_empty()) {
        return Err(SwapError::BuyerRunes);
    }
    let held: u128 = s_in
        .iter()
        .map(|o| o.runes.get(&terms.rune).copied().unwrap_or(0))
        .fold(0u128, u128::saturating_add);
    if held < terms.units {
        return Err(SwapError::SellerShort {
            rune: terms.rune,
            held,
            needed: terms.units,
        });
    }
    let other_runes = s_in
        .iter()
        .any(|o| o.runes.keys().any(|id| *id != terms.rune));
    let rune_change = held > terms.units || other_runes;
    let postage = Amount::from_sat(RUNE_OUTPUT_SATS);

    let mut outputs = vec![TxOut {
        value: postage,
        script_pubkey: buyer.receive.clone(),
    }];
    if rune_change {
        outputs.push(TxOut {
            value: postage,
            script_pubkey: seller.rune_change.clone(),
        });
    }
    let stone = Runestone {
        edicts: vec![Edict {
            id: terms.rune,
            amount: terms.units,
            output: 0,
        }],
        pointer: rune_change.then_some(1),
        ..Runestone::default()
    };
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: stone.encipher(),
    });
    let payment_at = outputs.len();
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: seller.payment.clone(),
    });
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: buyer.change.clone(),
    });
    let inputs: Vec<&Offered> = s_in.iter().chain(&b_in).collect();
    let seller_in: Amount = s_in.iter().map(|o| o.txout.value).sum();
    let buyer_in: Amount = b_in.iter().map(|o| o.txout.value).sum();
    let seller_keeps = if rune_change { postage } else { Amount::ZERO };

    let (mut tx, seller_fee, fee) = {
        let with_change = draft(&inputs, outputs.clone());
        let (seller_fee, fee) = fee_split(&with_change, s_in.len(), payment_at, rune_change, terms);
        let buyer_fee = fee - seller_fee;
        let change = buyer_in
            .checked_sub(terms.price + postage + buyer_fee)
            .unwrap_or(Amount::ZERO);
        if change >= buyer.change.minimal_non_dust() {
            let mut tx = with_change;
            if let Some(last) = tx.output.last_mut() {
                last.value = change;
            }
            (tx, seller_fee, fee)
        } else {
            // No change: what is left goes to the fee, on the buyer's side.
            outputs.pop();
            let without = draft(&inputs, outputs.clone());
            let (seller_fee, fee) = fee_split(&without, s_in.len(), payment_at, rune_change, terms);
            let needed = terms.price + postage + (fee - seller_fee);
            if buyer_in < needed {
                return Err(SwapError::Short {
                    side: Side::Buyer,
                    needed,
                    available: buyer_in,
                });
            }
            (
                without,
                seller_fee,
                buyer_in - terms.price - postage + seller_fee,
            )
        }
    };
    let needed = seller_keeps + seller_fee;
    let payment = (terms.price + seller_in)
        .checked_sub(needed)
        .filter(|p| *p >= seller.payment.minimal_non_dust())
        .ok_or(SwapError::Short {
            side: Side::Seller,
            needed,
            available: seller_in + terms.price,
        })?;
    tx.output[payment_at].value = payment;
    for i in &mut tx.input {
        i.witness = Witness::new();
    }
    let balances: Vec<Balances> = inputs.iter().map(|o| o.runes.clone()).collect();
    let effect = check_effect(&tx, &balances, terms, rune_change)?;
    Ok(Swap {
        prevouts: inputs.iter().map(|o| o.txout.clone()).collect(),
        tx,
        seller_inputs: s_in.len(),
        fee,
        seller_fee,
        effect,
    })
}

/// The seller's fee share and the whole fee of `tx` (signed weights).
fn fee_split(
    tx: &Transaction,
    seller_inputs: usize,
    payment_at: usize,
    rune_change: bool,
    terms: &Terms,
) -> (Amount, Amount) {
    let rate = terms.fee_rate.get();
    let total = tx.weight().to_wu();
    let inputs = |r: std::ops::Range<usize>| -> u64 {
        tx.input[r]
            .iter()
            .map(|i| i.segwit_weight().to_wu())
            .sum::<u64>()
    };
    let out = |i: usize| tx.output.get(i).map(|o| o.weight().to_wu()).unwrap_or(0);
    let seller_w =
        inputs(0..seller_inputs) + out(payment_at) + if rune_change { out(1) } else { 0 };
    let buyer_w = inputs(seller_inputs..tx.input.len())
        + out(0)
        + if tx.output.len() > payment_at + 1 {
            out(payment_at + 1)
        } else {
            0
        };
    let shared = total.saturating_sub(seller_w + buyer_w);
    let fee = rate * total.div_ceil(4);
    let seller_fee = (rate * (2 * seller_w + shared).div_ceil(8)).min(fee);
    (Amount::from_sat(seller_fee), Amount::from_sat(fee))
}

fn check_effect(
    tx: &Transaction,
    balances: &[Balances],
    terms: &Terms,
    rune_change: bool,
) -> Result<Effect, SwapError> {
    if let Some(Artifact::Cenotaph(c)) = Runestone::decipher(tx) {
        return Err(SwapError::Differs(Difference::Cenotaph(c.flaw)));
    }
    let e = effect(tx, balances).map_err(SwapError::EffectError)?;
    let fill = Balances::from([(terms.rune, terms.units)]);
    let mut rest: Balances = Balances::new();
    for b in balances {
        for (id, n) in b {
            *rest.entry(*id).or_insert(0) += n;
        }
    }
    if let Some(n) = rest.get_mut(&terms.rune) {
        *n -= terms.units;
    }
    rest.retain(|_, n| *n > 0);
    let change_ok = if rune_change {
        e.outputs.get(1) == Some(&rest)
    } else {
        rest.is_empty()
    };
    let elsewhere = e
        .outputs
        .iter()
        .enumerate()
        .any(|(i, o)| i > usize::from(rune_change) && !o.is_empty());
    if e.outputs[0] != fill || !change_ok || elsewhere || !e.burned.is_empty() || e.cenotaph {
        return Err(SwapError::Effect);
    }
    Ok(e)
}

/// The transaction with a 64-byte signature on every input, for its weight.
fn draft(inputs: &[&Offered], output: Vec<TxOut>) -> Transaction {
    crate::send::draft_spending(inputs.iter().map(|o| o.outpoint), output)
}

impl Swap {
    /// The input indexes of `side`.
    pub fn inputs_of(&self, side: Side) -> std::ops::Range<usize> {
        match side {
            Side::Seller => 0..self.seller_inputs,
            Side::Buyer => self.seller_inputs..self.tx.input.len(),
        }
    }
}

/// Signs `side`'s inputs of `swap` (`paths`: the key path of each of those inputs, in the
/// swap's input order) and leaves the other side's as they are in `tx`.
pub fn sign_side(
    keys: &Keychain,
    swap: &Swap,
    side: Side,
    paths: &[KeyPath],
    tx: &mut Transaction,
) -> Result<(), SwapError> {
    let range = swap.inputs_of(side);
    if paths.len() != range.len() {
        return Err(SwapError::Inputs);
    }
    let ours: Vec<(usize, KeyPath)> = range.zip(paths.iter().copied()).collect();
    sign_inputs(keys, tx, &swap.prevouts, &ours).map_err(SwapError::Sign)
}

/// Checks what the other side (`theirs`) sent: the same transaction as `swap` (else the first
/// difference is named) with a valid key-path signature on each of its inputs. Returns it with
/// its signatures, ready for ours.
pub fn accept(swap: &Swap, theirs: Side, sent: &Transaction) -> Result<Transaction, SwapError> {
    diff(&swap.tx, sent).map_err(SwapError::Differs)?;
    let secp = Secp256k1::verification_only();
    let mut cache = SighashCache::new(&swap.tx);
    for i in swap.inputs_of(theirs) {
        let bad = || SwapError::BadSignature(i);
        let witness = &sent.input[i].witness;
        let sig = match (witness.len(), witness.nth(0)) {
            (1, Some(bytes)) if bytes.len() == 64 => {
                schnorr::Signature::from_slice(bytes).map_err(|_| bad())?
            }
            _ => return Err(bad()),
        };
        let script = &swap.prevouts[i].script_pubkey;
        if !script.is_p2tr() {
            return Err(bad());
        }
        let key = XOnlyPublicKey::from_slice(&script.as_bytes()[2..34]).map_err(|_| bad())?;
        let hash = cache
            .taproot_key_spend_signature_hash(
                i,
                &Prevouts::All(&swap.prevouts),
                TapSighashType::Default,
            )
            .map_err(|_| bad())?;
        let msg = Message::from_digest(hash.to_byte_array());
        secp.verify_schnorr(&sig, &msg, &key).map_err(|_| bad())?;
    }
    let mut tx = swap.tx.clone();
    for i in swap.inputs_of(theirs) {
        tx.input[i].witness = sent.input[i].witness.clone();
    }
    Ok(tx)
}

/// The first way `got` differs from `expected`, witnesses aside.
fn diff(expected: &Transaction, got: &Transaction) -> Result<(), Difference> {
    let outpoints = |t: &Transaction| {
        t.input
            .iter()
            .map(|i| i.previous_output)
            .collect::<Vec<_>>()
    };
    if outpoints(expected) != outpoints(got) {
        return Err(Difference::Inputs);
    }
    if let Some(Artifact::Cenotaph(c)) = Runestone::decipher(got) {
        return Err(Difference::Cenotaph(c.flaw));
    }
    if expected.output.len() != got.output.len() {
        return Err(Difference::OutputCount {
            expected: expected.output.len(),
            got: got.output.len(),
        });
    }
    for (index, (e, g)) in expected.output.iter().zip(&got.output).enumerate() {
        if e.script_pubkey != g.script_pubkey {
            return Err(if e.script_pubkey.is_op_return() {
                Difference::Runestone
            } else {
                Difference::Script(index)
            });
        }
        if e.value != g.value {
            return Err(Difference::Value {
                index,
                expected: e.value,
                got: g.value,
            });
        }
    }
    let framing = |t: &Transaction| {
        (
            t.version,
            t.lock_time,
            t.input
                .iter()
                .map(|i| (i.sequence, i.script_sig.clone()))
                .collect::<Vec<_>>(),
        )
    };
    if framing(expected) != framing(got) {
        return Err(Difference::Framing);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Account;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::Txid;

    const R: RuneId = RuneId { block: 120, tx: 1 };

    fn offered(n: u8, sats: u64, script: &ScriptBuf, runes: &[(RuneId, u128)]) -> Offered {
        Offered {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: u32::from(n),
            },
            txout: TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: script.clone(),
            },
            runes: runes.iter().copied().collect(),
        }
    }

    struct Two {
        seller: Keychain,
        buyer: Keychain,
        s: SellerOffer,
        b: BuyerOffer,
        terms: Terms,
    }

    fn spk(k: &Keychain, path: KeyPath) -> ScriptBuf {
        k.derive(path).unwrap().script_pubkey
    }

    /// A seller holding 1,000 units in one 546-sat output sells 400 for 20,000 sat; the buyer
    /// brings 100,000 sat in two outputs.
    fn two() -> Two {
        let seller = crate::keys::tests::regtest_keys();
        let buyer = Keychain::new(
            &crate::Mnemonic::parse(
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
            )
            .unwrap(),
            "",
            crate::Network::Regtest,
        )
        .unwrap();
        let s = SellerOffer {
            inputs: vec![offered(
                9,
                546,
                &spk(&seller, KeyPath::receive(Account::Runes, 0)),
                &[(R, 1_000)],
            )],
            payment: spk(&seller, KeyPath::receive(Account::Payment, 0)),
            rune_change: spk(&seller, KeyPath::change(Account::Runes, 0)),
        };
        let b = BuyerOffer {
            inputs: vec![
                offered(
                    2,
                    60_000,
                    &spk(&buyer, KeyPath::receive(Account::Payment, 0)),
                    &[],
                ),
                offered(
                    1,
                    40_000,
                    &spk(&buyer, KeyPath::receive(Account::Payment, 1)),
                    &[],
                ),
            ],
            receive: spk(&buyer, KeyPath::receive(Account::Runes, 0)),
            change: spk(&buyer, KeyPath::change(Account::Payment, 0)),
        };
        let terms = Terms {
            rune: R,
            units: 400,
            price: Amount::from_sat(20_000),
            fee_rate: FeeRate::sat_per_vb(3).unwrap(),
        };
        Two {
            seller,
            buyer,
            s,
            b,
            terms,
        }
    }

    fn signed_weight(swap: &Swap) -> u64 {
        let mut t = swap.tx.clone();
        for i in &mut t.input {
            i.witness = Witness::from_slice(&[[0u8; 64]]);
        }
        t.weight().to_vbytes_ceil()
    }

    #[test]
    fn both_sides_build_the_same_swap_with_the_fill_the_change_and_a_fair_fee() {
        let t = two();
        let swap = build(&t.terms, &t.s, &t.b).unwrap();
        // The other side's offers in another order: the same bytes.
        let mut b2 = t.b.clone();
        b2.inputs.reverse();
        assert_eq!(build(&t.terms, &t.s, &b2).unwrap(), swap);

        let tx = &swap.tx;
        assert_eq!(tx.input.len(), 3);
        assert_eq!(tx.input[0].previous_output, t.s.inputs[0].outpoint);
        assert!(tx.input[1].previous_output < tx.input[2].previous_output);
        assert_eq!(
            tx.output.len(),
            5,
            "fill, rune change, runestone, payment, change"
        );
        assert_eq!(tx.output[0].script_pubkey, t.b.receive);
        assert_eq!(tx.output[1].script_pubkey, t.s.rune_change);
        assert!(tx.output[2].script_pubkey.is_op_return());
        assert_eq!(swap.effect.outputs[0], Balances::from([(R, 400)]));
        assert_eq!(swap.effect.outputs[1], Balances::from([(R, 600)]));
        assert!(swap.effect.burned.is_empty());
        assert_eq!(swap.fee, Amount::from_sat(3 * signed_weight(&swap)));
        let buyer_fee = swap.fee - swap.seller_fee;
        assert!(
            swap.seller_fee > Amount::ZERO && buyer_fee > swap.seller_fee,
            "the buyer brings two inputs"
        );
        // The seller: its 546 sat stay in the rune change; it gets the price less its fee.
        assert_eq!(
            tx.output[3].value,
            Amount::from_sat(20_000) - swap.seller_fee
        );
        // The buyer: 100,000 less the price, its rune output and its fee.
        assert_eq!(
            tx.output[4].value,
            Amount::from_sat(100_000 - 20_000 - 546) - buyer_fee
        );
        let out: Amount = tx.output.iter().map(|o| o.value).sum();
        assert_eq!(out + swap.fee, Amount::from_sat(100_546));
    }

    #[test]
    fn a_whole_fill_has_no_rune_change_and_a_small_change_goes_to_the_fee() {
        let mut t = two();
        t.terms.units = 1_000;
        // The buyer brings just enough that its change would be dust.
        t.b.inputs = vec![offered(
            1,
            20_000 + 546 + 700,
            &spk(&t.buyer, KeyPath::receive(Account::Payment, 0)),
            &[],
        )];
        let swap = build(&t.terms, &t.s, &t.b).unwrap();
        assert_eq!(swap.tx.output.len(), 3, "fill, runestone, payment");
        assert_eq!(swap.effect.outputs[0], Balances::from([(R, 1_000)]));
        let out: Amount = swap.tx.output.iter().map(|o| o.value).sum();
        assert_eq!(out + swap.fee, Amount::from_sat(20_000 + 546 + 700 + 546));
        assert!(swap.fee >= Amount::from_sat(3 * signed_weight(&swap)));
    }

    #[test]
    fn offers_that_cannot_settle_are_refused() {
        let t = two();
        let mut short = t.terms;
        short.units = 1_001;
        assert!(matches!(
            build(&short, &t.s, &t.b),
            Err(SwapError::SellerShort {
                held: 1_000,
                needed: 1_001,
                ..
            })
        ));
        let mut b = t.b.clone();
        b.inputs[0].runes.insert(R, 5);
        assert!(matches!(
            build(&t.terms, &t.s, &b),
            Err(SwapError::BuyerRunes)
        ));
        let mut b = t.b.clone();
        b.inputs.push(t.s.inputs[0].clone());
        b.inputs.last_mut().unwrap().runes.clear();
        assert!(matches!(build(&t.terms, &t.s, &b), Err(SwapError::Inputs)));
        let mut poor = t.terms;
        poor.price = Amount::from_sat(99_900);
        assert!(matches!(
            build(&poor, &t.s, &t.b),
            Err(SwapError::Short {
                side: Side::Buyer,
                ..
            })
        ));
        let mut nothing = t.terms;
        nothing.units = 0;
        assert!(matches!(build(&nothing, &t.s, &t.b), Err(SwapError::Empty)));
    }

    #[test]
    fn an_offered_output_must_be_its_transactions_and_hold_what_the_indexer_says() {
        use crate::utxo::Assets;
        let t = two();
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output: vec![t.s.inputs[0].txout.clone()],
        };
        let claim = Offered {
            outpoint: OutPoint::new(tx.compute_txid(), 0),
            ..t.s.inputs[0].clone()
        };
        let known = |runes: Balances, inscriptions| Assets::Known {
            runes,
            inscriptions,
        };
        assert_eq!(
            check_offered(&claim, &tx, &known(claim.runes.clone(), 0)),
            Ok(())
        );
        // More runes claimed than the indexer counts.
        assert!(matches!(
            check_offered(&claim, &tx, &known(Balances::from([(R, 10)]), 0)),
            Err(OfferError::Runes { .. })
        ));
        assert!(matches!(
            check_offered(&claim, &tx, &Assets::Unknown),
            Err(OfferError::Unindexed(_))
        ));
        assert!(matches!(
            check_offered(&claim, &tx, &known(claim.runes.clone(), 1)),
            Err(OfferError::Inscriptions(_))
        ));
        // Another value than its transaction's, or another transaction.
        let mut richer = claim.clone();
        richer.txout.value += Amount::from_sat(1);
        assert!(matches!(
            check_offered(&richer, &tx, &known(claim.runes.clone(), 0)),
            Err(OfferError::NotInTransaction(_))
        ));
        let elsewhere = Offered {
            outpoint: OutPoint::new(Txid::from_byte_array([7; 32]), 0),
            ..claim.clone()
        };
        assert!(matches!(
            check_offered(&elsewhere, &tx, &known(claim.runes.clone(), 0)),
            Err(OfferError::NotInTransaction(_))
        ));
    }

    /// Each side signs its own inputs; the other accepts only the agreed transaction with valid
    /// signatures, and names what a cheating counterparty changed.
    #[test]
    fn signatures_are_exchanged_and_every_tampering_is_named() {
        let t = two();
        let swap = build(&t.terms, &t.s, &t.b).unwrap();
        let mut from_seller = swap.tx.clone();
        sign_side(
            &t.seller,
            &swap,
            Side::Seller,
            &[KeyPath::receive(Account::Runes, 0)],
            &mut from_seller,
        )
        .unwrap();
        // The buyer's inputs in swap order: outpoint 1 (path 1) then outpoint 2 (path 0).
        let buyer_paths = [
            KeyPath::receive(Account::Payment, 1),
            KeyPath::receive(Account::Payment, 0),
        ];
        let mut full = accept(&swap, Side::Seller, &from_seller).unwrap();
        sign_side(&t.buyer, &swap, Side::Buyer, &buyer_paths, &mut full).unwrap();
        // And the seller checks the buyer's half the same way.
        let mut done = accept(&swap, Side::Buyer, &full).unwrap();
        sign_side(
            &t.seller,
            &swap,
            Side::Seller,
            &[KeyPath::receive(Account::Runes, 0)],
            &mut done,
        )
        .unwrap();
        assert!(done.input.iter().all(|i| i.witness.len() == 1));
        // Every signature of the final transaction verifies, both halves.
        accept(&swap, Side::Seller, &done).unwrap();
        accept(&swap, Side::Buyer, &done).unwrap();
        // Signing with the wrong paths is refused (the key is not the output's).
        let mut wrong = swap.tx.clone();
        assert!(sign_side(
            &t.buyer,
            &swap,
            Side::Buyer,
            &[buyer_paths[1], buyer_paths[0]],
            &mut wrong
        )
        .is_err());

        let cheat = |f: &dyn Fn(&mut Transaction)| {
            let mut tx = from_seller.clone();
            f(&mut tx);
            accept(&swap, Side::Seller, &tx).unwrap_err()
        };
        let differs = |e: SwapError| match e {
            SwapError::Differs(d) => d,
            other => panic!("{other}"),
        };
        // An extra output to itself.
        let extra = cheat(&|tx| {
            tx.output.push(TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: t.s.payment.clone(),
            })
        });
        assert!(matches!(
            differs(extra),
            Difference::OutputCount {
                expected: 5,
                got: 6
            }
        ));
        // A bigger payment.
        let pay = cheat(&|tx| tx.output[3].value += Amount::from_sat(5_000));
        assert!(matches!(differs(pay), Difference::Value { index: 3, .. }));
        // A higher fee (taken from the buyer's change).
        let fee = cheat(&|tx| tx.output[4].value -= Amount::from_sat(5_000));
        assert!(matches!(differs(fee), Difference::Value { index: 4, .. }));
        // The edict to the seller's own change.
        let edict = cheat(&|tx| {
            tx.output[2].script_pubkey = Runestone {
                edicts: vec![Edict {
                    id: R,
                    amount: 400,
                    output: 1,
                }],
                pointer: Some(1),
                ..Runestone::default()
            }
            .encipher()
        });
        assert_eq!(differs(edict), Difference::Runestone);
        // A cenotaph (an edict past the last output).
        let cenotaph = cheat(&|tx| {
            tx.output[2].script_pubkey = Runestone {
                edicts: vec![Edict {
                    id: R,
                    amount: 400,
                    output: 9,
                }],
                ..Runestone::default()
            }
            .encipher()
        });
        assert!(matches!(
            differs(cenotaph),
            Difference::Cenotaph(Flaw::EdictOutput)
        ));
        // An input the buyer never offered.
        let input = cheat(&|tx| tx.input[2].previous_output.vout = 77);
        assert_eq!(differs(input), Difference::Inputs);
        // A signature that does not verify, or none.
        let sig = cheat(&|tx| {
            let mut w = tx.input[0].witness.to_vec();
            w[0][5] ^= 1;
            tx.input[0].witness = Witness::from_slice(&w);
        });
        assert!(matches!(sig, SwapError::BadSignature(0)));
        assert!(matches!(
            accept(&swap, Side::Seller, &swap.tx),
            Err(SwapError::BadSignature(0))
        ));
    }
}
