//! Building sends: bitcoin to an address, runes to an address, or a new rune etched under a
//! reserved name (what the relay's regtest faucet hands out), funded from the wallet's
//! plain bitcoin ([`Utxo::is_money`]) and never from an output that carries runes or
//! inscriptions or whose contents are unknown. Every transaction built here is checked before it
//! is returned: its runestone deciphered (a cenotaph is refused) and its rune [`effect`] worked
//! out from the inputs' balances (the recipient gets exactly the amount, the rune change the rest,
//! nothing is burned, the bitcoin change carries no rune).
//!
//! Fees are exact: the transaction's weight is computed with the 64-byte Schnorr signatures every
//! input will carry (BIP86 key-path spends, `SIGHASH_DEFAULT`), and the fee is the rate times the
//! virtual size rounded up, so it never falls below the rate asked for.

use std::str::FromStr;

use bitcoin::absolute::LockTime;
use bitcoin::address::NetworkUnchecked;
use bitcoin::transaction::Version;
use bitcoin::{Address, Amount, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};

use crate::effect::{effect, etching_effect, Balances, Effect, EffectError, ETCHED};
use crate::keys::Derived;
use crate::network::Network;
use crate::runestone::{Artifact, Edict, Etching, RuneId, Runestone};
use crate::utxo::{Locks, Utxo};

/// The bitcoin on an output that carries runes: 546 sat, above the dust limit of every standard
/// script type (P2PKH's is the highest), as rune wallets use.
pub const RUNE_OUTPUT_SATS: u64 = 546;
/// The highest fee rate the wallet accepts, in sat/vB: a typo guard (a mempool spike rarely
/// passes 1,000).
pub const MAX_FEE_RATE: u64 = 5_000;
/// Inputs one transaction may spend (keeps it far under the standard weight limit).
pub const MAX_INPUTS: usize = 500;
/// Signals replaceability (BIP125), so a stuck send can be bumped.
const SEQUENCE: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;

/// Fee rate in satoshis per virtual byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FeeRate(u64);

impl FeeRate {
    /// A rate from 1 to [`MAX_FEE_RATE`] sat/vB.
    pub fn sat_per_vb(rate: u64) -> Result<FeeRate, BuildError> {
        if rate == 0 || rate > MAX_FEE_RATE {
            return Err(BuildError::FeeRate(rate));
        }
        Ok(FeeRate(rate))
    }

    /// The rate.
    pub fn get(self) -> u64 {
        self.0
    }

    fn fee(self, tx: &Transaction) -> Amount {
        Amount::from_sat(self.0 * tx.weight().to_vbytes_ceil())
    }
}

/// An address typed by the user or named by a counterparty is checked against the wallet's
/// network here.
#[derive(Debug, thiserror::Error)]
pub enum AddressError {
    /// Not an address.
    #[error("not a Bitcoin address: {0}")]
    Parse(#[source] bitcoin::address::ParseError),
    /// An address of another network.
    #[error("that address is not for {0}")]
    WrongNetwork(Network),
}

/// Parses `text` as an address of `network`.
pub fn parse_address(text: &str, network: Network) -> Result<Address, AddressError> {
    Address::<NetworkUnchecked>::from_str(text.trim())
        .map_err(AddressError::Parse)?
        .require_network(network.to_bitcoin())
        .map_err(|_| AddressError::WrongNetwork(network))
}

/// A send refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Fee rate out of range.
    #[error("fee rate {0} sat/vB is outside 1..={MAX_FEE_RATE}")]
    FeeRate(u64),
    /// Less than the recipient's script can receive.
    #[error("{amount} is below the dust limit {dust} of that address")]
    BelowDust {
        /// Asked for.
        amount: Amount,
        /// The recipient's dust limit.
        dust: Amount,
    },
    /// Not enough plain bitcoin.
    #[error("not enough bitcoin: {needed} needed with the fee, {available} spendable ({held_back} more is in outputs that carry runes or inscriptions, is unknown to the indexer, or is reserved)")]
    InsufficientFunds {
        /// Outputs plus fee.
        needed: Amount,
        /// Plain, unreserved bitcoin.
        available: Amount,
        /// Bitcoin the wallet will not spend as fee money.
        held_back: Amount,
    },
    /// Zero runes asked for.
    #[error("the amount of runes to send is zero")]
    ZeroRunes,
    /// An etching's divisibility over 38.
    #[error("divisibility {0} is over the runes protocol's 38")]
    Divisibility(u8),
    /// Not enough of the rune in spendable outputs.
    #[error("not enough {rune}: {needed} needed, {available} in unreserved outputs without inscriptions")]
    InsufficientRunes {
        /// The rune.
        rune: RuneId,
        /// Asked for.
        needed: u128,
        /// Spendable.
        available: u128,
    },
    /// Would need more than [`MAX_INPUTS`] inputs.
    #[error("the send would need more than {MAX_INPUTS} inputs")]
    TooManyInputs,
    /// The built transaction failed its own check (a bug guard: nothing is signed).
    #[error("the built transaction failed its check: {0}")]
    Check(CheckFailure),
    /// Its rune effect could not be worked out.
    #[error("rune effect: {0}")]
    Effect(#[source] EffectError),
}

/// What a built transaction's own check found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckFailure {
    /// Its runestone is a cenotaph.
    #[error("its runestone is a cenotaph ({0})")]
    Cenotaph(crate::runestone::Flaw),
    /// A bitcoin send would move runes.
    #[error("a bitcoin send would move runes")]
    BtcSendMovesRunes,
    /// The recipient would not get exactly the amount.
    #[error("the recipient would get {0:?}")]
    Recipient(Balances),
    /// Runes would burn.
    #[error("it would burn {0:?}")]
    Burns(Balances),
    /// Runes would land on an output other than the recipient and the rune change.
    #[error("runes would land outside the recipient and the rune change")]
    Elsewhere,
}

/// A transaction ready to sign, with what it spends and does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsigned {
    /// The transaction (no witnesses yet).
    pub tx: Transaction,
    /// The outputs it spends, in input order.
    pub inputs: Vec<Utxo>,
    /// The fee it pays.
    pub fee: Amount,
    /// Its rune effect.
    pub effect: Effect,
}

/// Sends `amount` to `to`, change to `change`.
pub fn send_btc<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    to: &Address,
    amount: Amount,
    fee_rate: FeeRate,
    change: &Derived,
) -> Result<Unsigned, BuildError> {
    let recipient = to.script_pubkey();
    check_dust(amount, &recipient)?;
    let outputs = vec![TxOut {
        value: amount,
        script_pubkey: recipient,
    }];
    let (tx, inputs, fee) = fund(utxos, locks, Vec::new(), outputs, fee_rate, change)?;
    let unsigned = finish(tx, inputs, fee, effect)?;
    if unsigned.effect.outputs.iter().any(|o| !o.is_empty()) || !unsigned.effect.burned.is_empty() {
        return Err(BuildError::Check(CheckFailure::BtcSendMovesRunes));
    }
    Ok(unsigned)
}

/// Sends `amount` units of `rune` to `to` (a rune-aware address), the rest of every rune on the
/// spent outputs to `rune_change`, the fee from plain bitcoin with change to `btc_change`.
///
/// Outputs: 0 the recipient, 1 the rune change (when runes remain), then the runestone, then the
/// bitcoin change.
#[allow(clippy::too_many_arguments)]
pub fn send_runes<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    rune: RuneId,
    amount: u128,
    to: &Address,
    fee_rate: FeeRate,
    rune_change: &Derived,
    btc_change: &Derived,
) -> Result<Unsigned, BuildError> {
    if amount == 0 {
        return Err(BuildError::ZeroRunes);
    }
    let recipient = to.script_pubkey();
    let postage = Amount::from_sat(RUNE_OUTPUT_SATS);
    check_dust(postage, &recipient)?;
    let carriers = rune_carriers(utxos, locks, rune);
    let mut rune_inputs = Vec::new();
    let mut have: u128 = 0;
    for c in carriers {
        if have >= amount {
            break;
        }
        have = have.saturating_add(c.rune(rune));
        rune_inputs.push(c.clone());
    }
    if have < amount {
        return Err(BuildError::InsufficientRunes {
            rune,
            needed: amount,
            available: have,
        });
    }
    let leftover = have > amount || rune_inputs.iter().any(|u| u.runes().len() > 1);
    let mut outputs = vec![TxOut {
        value: postage,
        script_pubkey: recipient,
    }];
    if leftover {
        outputs.push(TxOut {
            value: postage,
            script_pubkey: rune_change.script_pubkey.clone(),
        });
    }
    let stone = Runestone {
        edicts: vec![Edict {
            id: rune,
            amount,
            output: 0,
        }],
        pointer: leftover.then_some(1),
        ..Runestone::default()
    };
    outputs.push(TxOut {
        value: Amount::ZERO,
        script_pubkey: stone.encipher(),
    });
    let (tx, inputs, fee) = fund(utxos, locks, rune_inputs, outputs, fee_rate, btc_change)?;
    let unsigned = finish(tx, inputs, fee, effect)?;
    let e = &unsigned.effect;
    let mut expected_recipient = Balances::new();
    expected_recipient.insert(rune, amount);
    if e.outputs[0] != expected_recipient {
        return Err(BuildError::Check(CheckFailure::Recipient(
            e.outputs[0].clone(),
        )));
    }
    if !e.burned.is_empty() {
        return Err(BuildError::Check(CheckFailure::Burns(e.burned.clone())));
    }
    let carried: usize = e.outputs.iter().filter(|o| !o.is_empty()).count();
    if carried != 1 + usize::from(leftover) || (leftover && e.outputs[1].is_empty()) {
        return Err(BuildError::Check(CheckFailure::Elsewhere));
    }
    Ok(unsigned)
}

/// Spends exactly `inputs` to one output paying `to`, at `fee_rate` but never less than
/// `min_fee`: what takes back outputs offered to a swap that was signed but never completed
/// (the swap is replaceable; to displace it from a mempool the spend must pay more than it did,
/// hence `min_fee`). Every rune on the inputs goes with the one output (no runestone: unallocated
/// runes go to the first output), which the effect check confirms: nothing is burned.
pub fn sweep(
    inputs: Vec<Utxo>,
    to: ScriptBuf,
    fee_rate: FeeRate,
    min_fee: Amount,
) -> Result<Unsigned, BuildError> {
    if inputs.is_empty() || inputs.len() > MAX_INPUTS {
        return Err(BuildError::TooManyInputs);
    }
    let have: Amount = inputs.iter().map(|u| u.txout.value).sum();
    let dust = to.minimal_non_dust();
    let tx = draft(
        &inputs,
        vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: to,
        }],
    );
    let fee = fee_rate.fee(&tx).max(min_fee);
    if have < fee + dust {
        return Err(BuildError::InsufficientFunds {
            needed: fee + dust,
            available: have,
            held_back: Amount::ZERO,
        });
    }
    let mut tx = strip(tx);
    tx.output[0].value = have - fee;
    let unsigned = finish(tx, inputs, fee, effect)?;
    let e = &unsigned.effect;
    if !e.burned.is_empty() {
        return Err(BuildError::Check(CheckFailure::Burns(e.burned.clone())));
    }
    let all: Balances = unsigned.inputs.iter().fold(Balances::new(), |mut all, u| {
        for (id, n) in u.runes() {
            *all.entry(id).or_default() += n;
        }
        all
    });
    if e.outputs.first() != Some(&all) {
        return Err(BuildError::Check(CheckFailure::Elsewhere));
    }
    Ok(unsigned)
}

/// The free outputs that carry `rune` and no inscription, as the indexer reported them, the
/// most units first (ties by outpoint): what a rune send or a swap spends, in that order.
pub fn rune_carriers<'a, K: Clone + PartialEq>(
    utxos: &'a [Utxo],
    locks: &Locks<K>,
    rune: RuneId,
) -> Vec<&'a Utxo> {
    let mut carriers: Vec<&Utxo> = utxos
        .iter()
        .filter(|u| {
            u.rune(rune) > 0
                && !locks.is_locked(&u.outpoint)
                && matches!(
                    u.assets,
                    crate::utxo::Assets::Known {
                        inscriptions: 0,
                        ..
                    }
                )
        })
        .collect();
    carriers.sort_by(|a, b| {
        b.rune(rune)
            .cmp(&a.rune(rune))
            .then(a.outpoint.cmp(&b.outpoint))
    });
    carriers
}

/// A rune to etch under a reserved name (ord names it from its block and index, so no commitment
/// transaction is needed): what a regtest faucet etches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRune {
    /// Decimal places (at most 38).
    pub divisibility: u8,
    /// Its currency symbol.
    pub symbol: Option<char>,
    /// Units minted to the etcher; there are no open mints.
    pub premine: u128,
}

/// Etches `rune` with its whole premine on `to` (a rune-account address), the fee from plain
/// bitcoin with change to `change`. Outputs: 0 the premine, 1 the runestone, then the change. In
/// the returned effect the new rune is [`crate::effect::ETCHED`] (its id comes from the block).
pub fn etch<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    rune: NewRune,
    to: &Derived,
    fee_rate: FeeRate,
    change: &Derived,
) -> Result<Unsigned, BuildError> {
    if rune.premine == 0 {
        return Err(BuildError::ZeroRunes);
    }
    if rune.divisibility > crate::runestone::MAX_DIVISIBILITY {
        return Err(BuildError::Divisibility(rune.divisibility));
    }
    let stone = Runestone {
        etching: Some(Box::new(Etching {
            divisibility: Some(rune.divisibility),
            premine: Some(rune.premine),
            symbol: rune.symbol,
            ..Etching::default()
        })),
        pointer: Some(0),
        ..Runestone::default()
    };
    let outputs = vec![
        TxOut {
            value: Amount::from_sat(RUNE_OUTPUT_SATS),
            script_pubkey: to.script_pubkey.clone(),
        },
        TxOut {
            value: Amount::ZERO,
            script_pubkey: stone.encipher(),
        },
    ];
    let (tx, inputs, fee) = fund(utxos, locks, Vec::new(), outputs, fee_rate, change)?;
    let unsigned = finish(tx, inputs, fee, etching_effect)?;
    let e = &unsigned.effect;
    let mut expected = Balances::new();
    expected.insert(ETCHED, rune.premine);
    if e.outputs[0] != expected {
        return Err(BuildError::Check(CheckFailure::Recipient(
            e.outputs[0].clone(),
        )));
    }
    if !e.burned.is_empty() {
        return Err(BuildError::Check(CheckFailure::Burns(e.burned.clone())));
    }
    if e.outputs.iter().skip(1).any(|o| !o.is_empty()) {
        return Err(BuildError::Check(CheckFailure::Elsewhere));
    }
    Ok(unsigned)
}

fn check_dust(amount: Amount, script: &ScriptBuf) -> Result<(), BuildError> {
    let dust = script.minimal_non_dust();
    if amount < dust {
        return Err(BuildError::BelowDust { amount, dust });
    }
    Ok(())
}

/// Adds plain-bitcoin inputs (largest first) to `base` until they pay for `outputs` and the
/// fee, with change to `change` unless it would be dust.
fn fund<K: Clone + PartialEq>(
    utxos: &[Utxo],
    locks: &Locks<K>,
    base: Vec<Utxo>,
    outputs: Vec<TxOut>,
    fee_rate: FeeRate,
    change: &Derived,
) -> Result<(Transaction, Vec<Utxo>, Amount), BuildError> {
    let mut money: Vec<&Utxo> = utxos
        .iter()
        .filter(|u| u.is_money() && !locks.is_locked(&u.outpoint))
        .filter(|u| !base.iter().any(|b| b.outpoint == u.outpoint))
        .collect();
    money.sort_by(|a, b| {
        b.txout
            .value
            .cmp(&a.txout.value)
            .then(a.outpoint.cmp(&b.outpoint))
    });
    let available: Amount = money.iter().map(|u| u.txout.value).sum();
    let held_back: Amount = utxos
        .iter()
        .filter(|u| !u.is_money() || locks.is_locked(&u.outpoint))
        .filter(|u| !base.iter().any(|b| b.outpoint == u.outpoint))
        .map(|u| u.txout.value)
        .sum();
    let target: Amount = outputs.iter().map(|o| o.value).sum();
    let change_out = TxOut {
        value: Amount::ZERO,
        script_pubkey: change.script_pubkey.clone(),
    };
    let change_dust = change.script_pubkey.minimal_non_dust();
    let mut inputs = base;
    let mut next = money.into_iter();
    loop {
        if inputs.len() > MAX_INPUTS {
            return Err(BuildError::TooManyInputs);
        }
        let have: Amount = inputs.iter().map(|u| u.txout.value).sum();
        if !inputs.is_empty() {
            let mut with_change = outputs.clone();
            with_change.push(change_out.clone());
            let tx = draft(&inputs, with_change.clone());
            let fee = fee_rate.fee(&tx);
            if have >= target + fee + change_dust {
                let mut tx = tx;
                if let Some(last) = tx.output.last_mut() {
                    last.value = have - target - fee;
                }
                return Ok((strip(tx), inputs, fee));
            }
            let tx = draft(&inputs, outputs.clone());
            let fee = fee_rate.fee(&tx);
            if have >= target + fee {
                // What is left is under the change's dust limit: it goes to the fee.
                return Ok((strip(tx), inputs, have - target));
            }
        }
        match next.next() {
            Some(u) => inputs.push(u.clone()),
            None => {
                let tx = draft(&inputs, outputs.clone());
                return Err(BuildError::InsufficientFunds {
                    needed: target + fee_rate.fee(&tx),
                    available,
                    held_back,
                });
            }
        }
    }
}

/// The transaction with a 64-byte signature on every input, for its weight.
fn draft(inputs: &[Utxo], output: Vec<TxOut>) -> Transaction {
    draft_spending(inputs.iter().map(|u| u.outpoint), output)
}

/// A transaction spending `outpoints` (BIP86 key-path inputs, replaceable) with a 64-byte
/// signature on every input, for its weight: the wallet's one weight model, used by sends and
/// by the swap.
pub(crate) fn draft_spending(
    outpoints: impl IntoIterator<Item = bitcoin::OutPoint>,
    output: Vec<TxOut>,
) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: outpoints
            .into_iter()
            .map(|previous_output| TxIn {
                previous_output,
                script_sig: ScriptBuf::new(),
                sequence: SEQUENCE,
                witness: Witness::from_slice(&[[0u8; 64]]),
            })
            .collect(),
        output,
    }
}

fn strip(mut tx: Transaction) -> Transaction {
    for i in &mut tx.input {
        i.witness = Witness::new();
    }
    tx
}

type EffectFn = fn(&Transaction, &[Balances]) -> Result<Effect, EffectError>;

fn finish(
    tx: Transaction,
    inputs: Vec<Utxo>,
    fee: Amount,
    effect: EffectFn,
) -> Result<Unsigned, BuildError> {
    if let Some(Artifact::Cenotaph(c)) = Runestone::decipher(&tx) {
        return Err(BuildError::Check(CheckFailure::Cenotaph(c.flaw)));
    }
    let balances: Vec<Balances> = inputs.iter().map(Utxo::runes).collect();
    let effect = effect(&tx, &balances).map_err(BuildError::Effect)?;
    Ok(Unsigned {
        tx,
        inputs,
        fee,
        effect,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Account, KeyPath, Keychain};
    use crate::utxo::tests::utxo;
    use crate::utxo::Assets;

    const R: RuneId = RuneId { block: 120, tx: 1 };
    const S: RuneId = RuneId { block: 130, tx: 2 };

    fn keys() -> Keychain {
        crate::keys::tests::regtest_keys()
    }

    fn runes(pairs: &[(RuneId, u128)]) -> Assets {
        Assets::Known {
            runes: pairs.iter().copied().collect(),
            inscriptions: 0,
        }
    }

    fn rate(r: u64) -> FeeRate {
        FeeRate::sat_per_vb(r).unwrap()
    }

    fn dest(k: &Keychain) -> Address {
        k.derive(KeyPath::receive(Account::Payment, 99))
            .unwrap()
            .address
    }

    fn locks() -> Locks<u8> {
        Locks::new(16)
    }

    #[test]
    fn a_btc_send_pays_the_exact_rate_and_returns_change() {
        let k = keys();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let utxos = vec![
            utxo(1, 50_000, Account::Payment, Assets::none(), 1),
            utxo(2, 20_000, Account::Payment, Assets::none(), 1),
        ];
        let u = send_btc(
            &utxos,
            &locks(),
            &dest(&k),
            Amount::from_sat(30_000),
            rate(3),
            &change,
        )
        .unwrap();
        assert_eq!(u.inputs.len(), 1, "largest first, one input suffices");
        assert_eq!(u.tx.output.len(), 2);
        assert_eq!(u.tx.output[0].value, Amount::from_sat(30_000));
        let signed_weight = draft(&u.inputs, u.tx.output.clone()).weight();
        assert_eq!(u.fee, Amount::from_sat(3 * signed_weight.to_vbytes_ceil()));
        assert_eq!(
            u.tx.output[1].value + u.fee + Amount::from_sat(30_000),
            Amount::from_sat(50_000)
        );
        assert_eq!(u.tx.output[1].script_pubkey, change.script_pubkey);
        // One P2TR key-path input, two P2TR outputs: 154 vB (57.5 + 2 × 43 + 10.5 overhead).
        assert_eq!(signed_weight.to_vbytes_ceil(), 154);
    }

    #[test]
    fn a_sweep_takes_every_input_back_with_its_runes_and_at_least_the_floor_fee() {
        let k = keys();
        let to = k
            .derive(KeyPath::change(Account::Runes, 0))
            .unwrap()
            .script_pubkey;
        let inputs = vec![
            utxo(1, 546, Account::Runes, runes(&[(R, 600), (S, 7)]), 1),
            utxo(2, 20_000, Account::Payment, Assets::none(), 1),
        ];
        // At 2 sat/vB the spend would pay 2 × its size; the floor (what a swap paid, and more)
        // is higher, so it pays the floor.
        let u = sweep(inputs.clone(), to.clone(), rate(2), Amount::from_sat(3_000)).unwrap();
        assert_eq!(u.tx.input.len(), 2);
        assert_eq!(u.tx.output.len(), 1, "one output, no runestone");
        assert_eq!(u.fee, Amount::from_sat(3_000));
        assert_eq!(u.tx.output[0].value, Amount::from_sat(20_546 - 3_000));
        assert_eq!(u.tx.output[0].script_pubkey, to);
        assert!(u.effect.burned.is_empty());
        assert_eq!(u.effect.outputs[0], Balances::from([(R, 600), (S, 7)]));
        // Below the floor the rate decides.
        let u = sweep(inputs.clone(), to.clone(), rate(50), Amount::from_sat(100)).unwrap();
        let vb = draft(&u.inputs, u.tx.output.clone())
            .weight()
            .to_vbytes_ceil();
        assert_eq!(u.fee, Amount::from_sat(50 * vb));
        // Not enough to pay the floor and leave a spendable output: refused.
        assert!(matches!(
            sweep(inputs, to.clone(), rate(1), Amount::from_sat(20_500)),
            Err(BuildError::InsufficientFunds { .. })
        ));
        assert!(matches!(
            sweep(vec![], to, rate(1), Amount::ZERO),
            Err(BuildError::TooManyInputs)
        ));
    }

    #[test]
    fn change_below_dust_goes_to_the_fee() {
        let k = keys();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        // 400 left: change would be 400 - 154 = 246 sat, under P2TR's 330 sat dust limit.
        let utxos = vec![utxo(1, 10_400, Account::Payment, Assets::none(), 1)];
        let u = send_btc(
            &utxos,
            &locks(),
            &dest(&k),
            Amount::from_sat(10_000),
            rate(1),
            &change,
        )
        .unwrap();
        assert_eq!(u.tx.output.len(), 1);
        assert_eq!(u.fee, Amount::from_sat(400));
        // 500 left: 346 sat of change is above it, and kept.
        let utxos = vec![utxo(1, 10_500, Account::Payment, Assets::none(), 1)];
        let u = send_btc(
            &utxos,
            &locks(),
            &dest(&k),
            Amount::from_sat(10_000),
            rate(1),
            &change,
        )
        .unwrap();
        assert_eq!(u.tx.output[1].value, Amount::from_sat(346));
    }

    #[test]
    fn rune_and_unknown_outputs_are_never_fee_money() {
        let k = keys();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let utxos = vec![
            utxo(1, 100_000, Account::Payment, runes(&[(R, 5)]), 1),
            utxo(2, 100_000, Account::Payment, Assets::Unknown, 1),
            utxo(3, 100_000, Account::Runes, Assets::none(), 1),
            utxo(4, 1_000, Account::Payment, Assets::none(), 1),
        ];
        let err = send_btc(
            &utxos,
            &locks(),
            &dest(&k),
            Amount::from_sat(5_000),
            rate(1),
            &change,
        )
        .unwrap_err();
        let BuildError::InsufficientFunds {
            available,
            held_back,
            ..
        } = err
        else {
            panic!("{err:?}")
        };
        assert_eq!(available, Amount::from_sat(1_000));
        assert_eq!(held_back, Amount::from_sat(300_000));
    }

    #[test]
    fn locked_outputs_are_not_spent() {
        let k = keys();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let utxos = vec![
            utxo(1, 100_000, Account::Payment, Assets::none(), 1),
            utxo(2, 40_000, Account::Payment, Assets::none(), 1),
        ];
        let mut l = locks();
        l.lock(&[utxos[0].outpoint], 7).unwrap();
        let u = send_btc(
            &utxos,
            &l,
            &dest(&k),
            Amount::from_sat(30_000),
            rate(2),
            &change,
        )
        .unwrap();
        assert_eq!(u.inputs[0].outpoint, utxos[1].outpoint);
        assert!(send_btc(
            &utxos,
            &l,
            &dest(&k),
            Amount::from_sat(60_000),
            rate(2),
            &change
        )
        .is_err());
    }

    #[test]
    fn bad_amounts_rates_and_addresses_are_refused() {
        let k = keys();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let utxos = vec![utxo(1, 100_000, Account::Payment, Assets::none(), 1)];
        assert!(matches!(
            send_btc(
                &utxos,
                &locks(),
                &dest(&k),
                Amount::from_sat(100),
                rate(1),
                &change
            ),
            Err(BuildError::BelowDust { .. })
        ));
        assert!(FeeRate::sat_per_vb(0).is_err());
        assert!(FeeRate::sat_per_vb(MAX_FEE_RATE + 1).is_err());
        // The BIP86 vector's mainnet address on a regtest wallet.
        assert!(matches!(
            parse_address(
                "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
                Network::Regtest
            ),
            Err(AddressError::WrongNetwork(Network::Regtest))
        ));
        assert!(matches!(
            parse_address("not an address", Network::Regtest),
            Err(AddressError::Parse(_))
        ));
        let ours = dest(&k).to_string();
        assert_eq!(
            parse_address(&format!(" {ours} "), Network::Regtest)
                .unwrap()
                .to_string(),
            ours
        );
    }

    #[test]
    fn a_rune_send_moves_exactly_the_amount_and_keeps_the_rest() {
        let k = keys();
        let rune_change = k.derive(KeyPath::change(Account::Runes, 0)).unwrap();
        let btc_change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let to = k
            .derive(KeyPath::receive(Account::Runes, 50))
            .unwrap()
            .address;
        let utxos = vec![
            utxo(1, 546, Account::Runes, runes(&[(R, 1_000), (S, 7)]), 1),
            utxo(2, 546, Account::Runes, runes(&[(R, 300)]), 1),
            utxo(3, 20_000, Account::Payment, Assets::none(), 1),
        ];
        let u = send_runes(
            &utxos,
            &locks(),
            R,
            1_200,
            &to,
            rate(2),
            &rune_change,
            &btc_change,
        )
        .unwrap();
        assert_eq!(u.inputs.len(), 3, "both rune outputs and one for the fee");
        assert_eq!(u.effect.outputs[0], [(R, 1_200)].into_iter().collect());
        assert_eq!(
            u.effect.outputs[1],
            [(R, 100), (S, 7)].into_iter().collect()
        );
        assert!(u.effect.burned.is_empty());
        assert!(u.tx.output[2].script_pubkey.is_op_return());
        assert_eq!(u.tx.output[3].script_pubkey, btc_change.script_pubkey);
        let ins: Amount = u.inputs.iter().map(|i| i.txout.value).sum();
        let outs: Amount = u.tx.output.iter().map(|o| o.value).sum();
        assert_eq!(ins - outs, u.fee);
        // The exact amount of one output: no rune change output, no pointer.
        let u = send_runes(
            &utxos,
            &locks(),
            R,
            300,
            &to,
            rate(2),
            &rune_change,
            &btc_change,
        )
        .unwrap();
        assert_eq!(
            u.inputs[0].outpoint, utxos[0].outpoint,
            "largest rune balance first"
        );
        assert_eq!(
            u.effect.outputs[1],
            [(R, 700), (S, 7)].into_iter().collect()
        );
    }

    #[test]
    fn rune_sends_refuse_what_they_cannot_do() {
        let k = keys();
        let rune_change = k.derive(KeyPath::change(Account::Runes, 0)).unwrap();
        let btc_change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let to = k
            .derive(KeyPath::receive(Account::Runes, 50))
            .unwrap()
            .address;
        let inscribed = Assets::Known {
            runes: [(R, 10_000)].into_iter().collect(),
            inscriptions: 1,
        };
        let utxos = vec![
            utxo(1, 546, Account::Runes, runes(&[(R, 100)]), 1),
            utxo(2, 546, Account::Runes, inscribed, 1),
            utxo(3, 600, Account::Payment, Assets::none(), 1),
        ];
        assert_eq!(
            send_runes(
                &utxos,
                &locks(),
                R,
                101,
                &to,
                rate(1),
                &rune_change,
                &btc_change
            ),
            Err(BuildError::InsufficientRunes {
                rune: R,
                needed: 101,
                available: 100
            })
        );
        assert_eq!(
            send_runes(
                &utxos,
                &locks(),
                R,
                0,
                &to,
                rate(1),
                &rune_change,
                &btc_change
            ),
            Err(BuildError::ZeroRunes)
        );
        // The rune output's own 546 sat and 600 sat of money do not pay two outputs and the fee.
        assert!(matches!(
            send_runes(
                &utxos,
                &locks(),
                R,
                50,
                &to,
                rate(5),
                &rune_change,
                &btc_change
            ),
            Err(BuildError::InsufficientFunds { .. })
        ));
    }

    #[test]
    fn an_etching_puts_the_whole_premine_on_the_rune_address() {
        let k = keys();
        let to = k.derive(KeyPath::receive(Account::Runes, 0)).unwrap();
        let change = k.derive(KeyPath::change(Account::Payment, 0)).unwrap();
        let utxos = vec![
            utxo(1, 40_000, Account::Payment, Assets::none(), 1),
            // Never fee money: it carries runes.
            utxo(2, 90_000, Account::Runes, runes(&[(R, 5)]), 1),
        ];
        let new = NewRune {
            divisibility: 2,
            symbol: Some('$'),
            premine: 1_000_000,
        };
        let u = etch(&utxos, &locks(), new, &to, rate(2), &change).unwrap();
        assert_eq!(u.inputs.len(), 1);
        assert_eq!(u.inputs[0].outpoint, utxos[0].outpoint);
        assert_eq!(u.tx.output[0].script_pubkey, to.script_pubkey);
        assert_eq!(u.tx.output[0].value, Amount::from_sat(RUNE_OUTPUT_SATS));
        let Some(Artifact::Runestone(stone)) = Runestone::decipher(&u.tx) else {
            panic!("no runestone")
        };
        let e = stone.etching.unwrap();
        assert_eq!(
            (e.rune, e.divisibility, e.premine, e.symbol, e.terms),
            (None, Some(2), Some(1_000_000), Some('$'), None)
        );
        assert_eq!(u.effect.outputs[0], [(ETCHED, 1_000_000)].into());
        assert!(u.effect.outputs[1..].iter().all(|o| o.is_empty()));
        let signed_weight = draft(&u.inputs, u.tx.output.clone()).weight();
        assert_eq!(u.fee, Amount::from_sat(2 * signed_weight.to_vbytes_ceil()));
        assert_eq!(
            u.tx.output.iter().map(|o| o.value).sum::<Amount>() + u.fee,
            Amount::from_sat(40_000)
        );

        let no_money = vec![utxos[1].clone()];
        assert!(matches!(
            etch(&no_money, &locks(), new, &to, rate(2), &change),
            Err(BuildError::InsufficientFunds { .. })
        ));
        let zero = NewRune { premine: 0, ..new };
        assert_eq!(
            etch(&utxos, &locks(), zero, &to, rate(2), &change),
            Err(BuildError::ZeroRunes)
        );
        let fine = NewRune {
            divisibility: 39,
            ..new
        };
        assert_eq!(
            etch(&utxos, &locks(), fine, &to, rate(2), &change),
            Err(BuildError::Divisibility(39))
        );
    }
}
