//! Runestones: the runes protocol's message in a transaction output (`OP_RETURN OP_13` and data
//! pushes holding LEB128 integers), encoded for the transfers the wallet makes and deciphered
//! from any transaction, with every way ord turns one into a **cenotaph** (which burns every rune
//! the transaction spends). ord's code is the protocol's only specification; this follows its
//! prose guide (`docs/src/runes/specification.md` in ordinals/ord) and is checked against a real
//! ord in regtest by the integration tests.
//!
//! Where ord's newer releases accept several `Pointer` values (one chosen by the block hash),
//! this decoder reports them as [`Flaw::MultiplePointers`]: the wallet never builds such a
//! transaction and refuses to sign one whose rune effect it cannot predict.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use bitcoin::opcodes::all::{OP_PUSHNUM_13, OP_RETURN};
use bitcoin::script::{Instruction, PushBytesBuf};
use bitcoin::{ScriptBuf, Transaction};

/// Data pushes are split at Bitcoin's largest script element.
const MAX_PUSH: usize = 520;
/// The highest divisibility a rune can have.
pub const MAX_DIVISIBILITY: u8 = 38;
/// The highest spacers bitfield (26 letters, 25 gaps).
pub const MAX_SPACERS: u32 = 0b0000_0111_1111_1111_1111_1111_1111;

/// A rune's id: the block and transaction index of its etching. Text form `BLOCK:TX`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuneId {
    /// Block height of the etching.
    pub block: u64,
    /// Index of the etching transaction in its block.
    pub tx: u32,
}

impl RuneId {
    /// `0:0` names the rune etched by the same transaction; block 0 with any other index is invalid.
    pub fn new(block: u64, tx: u32) -> Option<RuneId> {
        (block != 0 || tx == 0).then_some(RuneId { block, tx })
    }

    /// The id after `self` in an edict list, from its encoded deltas.
    fn next(self, block_delta: u128, tx_delta: u128) -> Option<RuneId> {
        let block = self.block.checked_add(u64::try_from(block_delta).ok()?)?;
        let tx = if block_delta == 0 {
            self.tx.checked_add(u32::try_from(tx_delta).ok()?)?
        } else {
            u32::try_from(tx_delta).ok()?
        };
        RuneId::new(block, tx)
    }

    /// The deltas that encode `next` after `self` (ids sorted ascending).
    fn delta(self, next: RuneId) -> (u128, u128) {
        let block = next.block - self.block;
        let tx = if block == 0 {
            next.tx - self.tx
        } else {
            next.tx
        };
        (block.into(), tx.into())
    }
}

impl fmt::Display for RuneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.block, self.tx)
    }
}

/// Text that is not `BLOCK:TX`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a rune id (BLOCK:TX)")]
pub struct BadRuneId(pub String);

impl FromStr for RuneId {
    type Err = BadRuneId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadRuneId(s.chars().take(40).collect());
        let (block, tx) = s.split_once(':').ok_or_else(bad)?;
        RuneId::new(
            block.parse().map_err(|_| bad())?,
            tx.parse().map_err(|_| bad())?,
        )
        .ok_or_else(bad)
    }
}

/// Moves `amount` of rune `id` to output `output` (`amount` 0: all that is left; `output` equal
/// to the number of outputs: to each non-`OP_RETURN` output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edict {
    /// The rune.
    pub id: RuneId,
    /// How many of its smallest units.
    pub amount: u128,
    /// The output index.
    pub output: u32,
}

/// Mint terms of an etching.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Terms {
    /// Units per mint.
    pub amount: Option<u128>,
    /// Most mints.
    pub cap: Option<u128>,
    /// Absolute block heights (start, end).
    pub height: (Option<u64>, Option<u64>),
    /// Heights relative to the etching (start, end).
    pub offset: (Option<u64>, Option<u64>),
}

/// A new rune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Etching {
    /// Decimal places.
    pub divisibility: Option<u8>,
    /// Units given to the etcher.
    pub premine: Option<u128>,
    /// The name, as a modified base-26 integer.
    pub rune: Option<u128>,
    /// Spacer bitfield.
    pub spacers: Option<u32>,
    /// Currency symbol.
    pub symbol: Option<char>,
    /// Open mint terms.
    pub terms: Option<Terms>,
    /// Opted into future protocol changes.
    pub turbo: bool,
}

/// A well-formed runestone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Runestone {
    /// Transfers, in order.
    pub edicts: Vec<Edict>,
    /// A new rune, if any (boxed: most runestones are transfers).
    pub etching: Option<Box<Etching>>,
    /// A rune minted by this transaction, if any.
    pub mint: Option<RuneId>,
    /// Where unallocated runes go (default: the first non-`OP_RETURN` output).
    pub pointer: Option<u32>,
}

/// Why a runestone is a cenotaph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Flaw {
    /// An edict names an output past the transaction's outputs.
    #[error("an edict names an output that does not exist")]
    EdictOutput,
    /// An edict's rune id is invalid (block 0 with a transaction index, or overflow).
    #[error("an edict's rune id is invalid")]
    EdictRuneId,
    /// The script is not parseable.
    #[error("the runestone script does not parse")]
    InvalidScript,
    /// A non-push opcode follows `OP_13`.
    #[error("the runestone script has an opcode that is not a data push")]
    Opcode,
    /// Premine plus all mints would exceed 2^128.
    #[error("the etching's supply overflows")]
    SupplyOverflow,
    /// Integers after the edicts that do not make a whole edict.
    #[error("trailing integers after the edicts")]
    TrailingIntegers,
    /// A tag with no value.
    #[error("a tag has no value")]
    TruncatedField,
    /// An even tag this protocol version does not know (or a known even tag with a bad value).
    #[error("an unrecognized even tag")]
    UnrecognizedEvenTag,
    /// A flag bit this protocol version does not know.
    #[error("an unrecognized flag")]
    UnrecognizedFlag,
    /// A LEB128 integer longer than 18 bytes, over 128 bits, or cut short.
    #[error("a malformed varint")]
    Varint,
    /// More than one pointer (see the module doc).
    #[error("more than one pointer: the rune effect depends on the block hash")]
    MultiplePointers,
}

/// A cenotaph: every rune input is burned; an etching gets no supply, a mint is burned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cenotaph {
    /// Why.
    pub flaw: Flaw,
    /// Whether it etched (the etched rune is unmintable).
    pub etching: bool,
    /// A mint it attempted, if any.
    pub mint: Option<RuneId>,
}

/// What a transaction's runestone output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Artifact {
    /// A valid runestone.
    Runestone(Runestone),
    /// A malformed one.
    Cenotaph(Cenotaph),
}

mod tag {
    pub const BODY: u128 = 0;
    pub const DIVISIBILITY: u128 = 1;
    pub const FLAGS: u128 = 2;
    pub const SPACERS: u128 = 3;
    pub const RUNE: u128 = 4;
    pub const SYMBOL: u128 = 5;
    pub const PREMINE: u128 = 6;
    pub const CAP: u128 = 8;
    pub const AMOUNT: u128 = 10;
    pub const HEIGHT_START: u128 = 12;
    pub const HEIGHT_END: u128 = 14;
    pub const OFFSET_START: u128 = 16;
    pub const OFFSET_END: u128 = 18;
    pub const MINT: u128 = 20;
    pub const POINTER: u128 = 22;
}

mod flag {
    pub const ETCHING: u128 = 1 << 0;
    pub const TERMS: u128 = 1 << 1;
    pub const TURBO: u128 = 1 << 2;
}

/// Appends `n` as LEB128.
pub fn encode_varint(mut n: u128, out: &mut Vec<u8>) {
    while n >> 7 > 0 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads one LEB128 integer: the value and the bytes it used.
pub fn decode_varint(buf: &[u8]) -> Result<(u128, usize), Flaw> {
    let mut n = 0u128;
    for (i, &byte) in buf.iter().enumerate() {
        if i > 18 {
            return Err(Flaw::Varint);
        }
        let value = u128::from(byte & 0x7f);
        if i == 18 && value & 0b0111_1100 != 0 {
            return Err(Flaw::Varint);
        }
        n |= value << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((n, i + 1));
        }
    }
    Err(Flaw::Varint)
}

impl Runestone {
    /// The output script: `OP_RETURN OP_13` and the payload in pushes of at most 520 bytes,
    /// fields in ord's order (flags, the etching's fields, mint, pointer, then the edicts), so
    /// the bytes are the ones ord's encoder writes for the same runestone.
    pub fn encipher(&self) -> ScriptBuf {
        let mut payload = Vec::new();
        if let Some(e) = &self.etching {
            encipher_etching(e, &mut payload);
        }
        if let Some(id) = self.mint {
            for v in [tag::MINT, id.block.into(), tag::MINT, id.tx.into()] {
                encode_varint(v, &mut payload);
            }
        }
        if let Some(p) = self.pointer {
            encode_varint(tag::POINTER, &mut payload);
            encode_varint(p.into(), &mut payload);
        }
        if !self.edicts.is_empty() {
            encode_varint(tag::BODY, &mut payload);
            let mut edicts = self.edicts.clone();
            edicts.sort_by_key(|e| e.id);
            let mut prev = RuneId::default();
            for e in edicts {
                let (block, tx) = prev.delta(e.id);
                for v in [block, tx, e.amount, e.output.into()] {
                    encode_varint(v, &mut payload);
                }
                prev = e.id;
            }
        }
        let mut builder = bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_opcode(OP_PUSHNUM_13);
        for chunk in payload.chunks(MAX_PUSH) {
            // Chunks are at most 520 bytes, which PushBytesBuf always accepts.
            if let Ok(push) = PushBytesBuf::try_from(chunk.to_vec()) {
                builder = builder.push_slice(push);
            }
        }
        builder.into_script()
    }

    /// The artifact in `tx`, if any output starts with `OP_RETURN OP_13`.
    pub fn decipher(tx: &Transaction) -> Option<Artifact> {
        let payload = match payload(tx)? {
            Ok(p) => p,
            Err(flaw) => return Some(cenotaph(flaw, false, None)),
        };
        let mut integers = Vec::new();
        let mut at = 0;
        while at < payload.len() {
            match decode_varint(&payload[at..]) {
                Ok((n, used)) => {
                    integers.push(n);
                    at += used;
                }
                Err(flaw) => return Some(cenotaph(flaw, false, None)),
            }
        }
        let outputs = tx.output.len();
        let mut flaw = None;
        let mut fields: BTreeMap<u128, Vec<u128>> = BTreeMap::new();
        let mut edicts = Vec::new();
        let mut i = 0;
        while i < integers.len() {
            let t = integers[i];
            if t == tag::BODY {
                let mut id = RuneId::default();
                for chunk in integers[i + 1..].chunks(4) {
                    if chunk.len() != 4 {
                        flaw.get_or_insert(Flaw::TrailingIntegers);
                        break;
                    }
                    let Some(next) = id.next(chunk[0], chunk[1]) else {
                        flaw.get_or_insert(Flaw::EdictRuneId);
                        break;
                    };
                    let output = match u32::try_from(chunk[3]) {
                        Ok(o) if (o as usize) <= outputs => o,
                        _ => {
                            flaw.get_or_insert(Flaw::EdictOutput);
                            break;
                        }
                    };
                    edicts.push(Edict {
                        id: next,
                        amount: chunk[2],
                        output,
                    });
                    id = next;
                }
                break;
            }
            let Some(&value) = integers.get(i + 1) else {
                flaw.get_or_insert(Flaw::TruncatedField);
                break;
            };
            fields.entry(t).or_default().push(value);
            i += 2;
        }

        let mut flags = take(&mut fields, tag::FLAGS, Some).unwrap_or(0);
        let etching_flag = flags & flag::ETCHING != 0;
        flags &= !flag::ETCHING;
        let terms_flag = flags & flag::TERMS != 0;
        flags &= !flag::TERMS;
        let turbo = flags & flag::TURBO != 0;
        flags &= !flag::TURBO;

        let etching = etching_flag.then(|| {
            Box::new(Etching {
                divisibility: take(&mut fields, tag::DIVISIBILITY, |v| {
                    u8::try_from(v).ok().filter(|d| *d <= MAX_DIVISIBILITY)
                }),
                premine: take(&mut fields, tag::PREMINE, Some),
                rune: take(&mut fields, tag::RUNE, Some),
                spacers: take(&mut fields, tag::SPACERS, |v| {
                    u32::try_from(v).ok().filter(|s| *s <= MAX_SPACERS)
                }),
                symbol: take(&mut fields, tag::SYMBOL, |v| {
                    char::from_u32(u32::try_from(v).ok()?)
                }),
                terms: terms_flag.then(|| Terms {
                    cap: take(&mut fields, tag::CAP, Some),
                    amount: take(&mut fields, tag::AMOUNT, Some),
                    height: (
                        take(&mut fields, tag::HEIGHT_START, |v| u64::try_from(v).ok()),
                        take(&mut fields, tag::HEIGHT_END, |v| u64::try_from(v).ok()),
                    ),
                    offset: (
                        take(&mut fields, tag::OFFSET_START, |v| u64::try_from(v).ok()),
                        take(&mut fields, tag::OFFSET_END, |v| u64::try_from(v).ok()),
                    ),
                }),
                turbo,
            })
        });
        let mint = take_mint(&mut fields);
        let pointer = take(&mut fields, tag::POINTER, |v| {
            u32::try_from(v).ok().filter(|p| (*p as usize) < outputs)
        });
        if pointer.is_some() && fields.get(&tag::POINTER).is_some_and(|v| !v.is_empty()) {
            flaw.get_or_insert(Flaw::MultiplePointers);
        }

        if let Some(e) = &etching {
            let mints = e
                .terms
                .map(|t| t.cap.unwrap_or(0).checked_mul(t.amount.unwrap_or(0)))
                .unwrap_or(Some(0));
            if mints
                .and_then(|m| m.checked_add(e.premine.unwrap_or(0)))
                .is_none()
            {
                flaw.get_or_insert(Flaw::SupplyOverflow);
            }
        }
        if flags != 0 {
            flaw.get_or_insert(Flaw::UnrecognizedFlag);
        }
        if fields.iter().any(|(t, v)| t % 2 == 0 && !v.is_empty()) {
            flaw.get_or_insert(Flaw::UnrecognizedEvenTag);
        }
        Some(match flaw {
            Some(flaw) => cenotaph(flaw, etching.is_some(), mint),
            None => Artifact::Runestone(Runestone {
                edicts,
                etching,
                mint,
                pointer,
            }),
        })
    }
}

/// An etching's flags and fields, as ord orders them.
fn encipher_etching(e: &Etching, payload: &mut Vec<u8>) {
    let mut flags = flag::ETCHING;
    if e.terms.is_some() {
        flags |= flag::TERMS;
    }
    if e.turbo {
        flags |= flag::TURBO;
    }
    let mut field = |t: u128, v: Option<u128>| {
        if let Some(v) = v {
            encode_varint(t, payload);
            encode_varint(v, payload);
        }
    };
    field(tag::FLAGS, Some(flags));
    field(tag::RUNE, e.rune);
    field(tag::DIVISIBILITY, e.divisibility.map(u128::from));
    field(tag::SPACERS, e.spacers.map(u128::from));
    field(tag::SYMBOL, e.symbol.map(|c| u128::from(u32::from(c))));
    field(tag::PREMINE, e.premine);
    if let Some(t) = e.terms {
        field(tag::AMOUNT, t.amount);
        field(tag::CAP, t.cap);
        field(tag::HEIGHT_START, t.height.0.map(u128::from));
        field(tag::HEIGHT_END, t.height.1.map(u128::from));
        field(tag::OFFSET_START, t.offset.0.map(u128::from));
        field(tag::OFFSET_END, t.offset.1.map(u128::from));
    }
}

fn cenotaph(flaw: Flaw, etching: bool, mint: Option<RuneId>) -> Artifact {
    Artifact::Cenotaph(Cenotaph {
        flaw,
        etching,
        mint,
    })
}

/// Takes a field's first value if `parse` accepts it; a value it refuses stays behind (and an
/// even tag left behind makes a cenotaph, as in ord).
fn take<T>(
    fields: &mut BTreeMap<u128, Vec<u128>>,
    t: u128,
    parse: impl FnOnce(u128) -> Option<T>,
) -> Option<T> {
    let values = fields.get_mut(&t)?;
    let first = *values.first()?;
    let parsed = parse(first)?;
    values.remove(0);
    Some(parsed)
}

fn take_mint(fields: &mut BTreeMap<u128, Vec<u128>>) -> Option<RuneId> {
    let values = fields.get_mut(&tag::MINT)?;
    if values.len() < 2 {
        return None;
    }
    let id = RuneId::new(
        u64::try_from(values[0]).ok()?,
        u32::try_from(values[1]).ok()?,
    )?;
    values.drain(..2);
    Some(id)
}

/// The first output's payload that starts with `OP_RETURN OP_13`: `None` if there is none,
/// `Err` if that output's script is not all data pushes.
fn payload(tx: &Transaction) -> Option<Result<Vec<u8>, Flaw>> {
    for out in &tx.output {
        let mut instructions = out.script_pubkey.instructions();
        if instructions.next() != Some(Ok(Instruction::Op(OP_RETURN))) {
            continue;
        }
        if instructions.next() != Some(Ok(Instruction::Op(OP_PUSHNUM_13))) {
            continue;
        }
        let mut payload = Vec::new();
        for instruction in instructions {
            match instruction {
                Ok(Instruction::PushBytes(push)) => payload.extend_from_slice(push.as_bytes()),
                Ok(Instruction::Op(_)) => return Some(Err(Flaw::Opcode)),
                Err(_) => return Some(Err(Flaw::InvalidScript)),
            }
        }
        return Some(Ok(payload));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, TxOut};

    fn tx_with(script: ScriptBuf, other_outputs: usize) -> Transaction {
        let mut output = vec![TxOut {
            value: Amount::ZERO,
            script_pubkey: script,
        }];
        for _ in 0..other_outputs {
            output.push(TxOut {
                value: Amount::from_sat(546),
                script_pubkey: ScriptBuf::new(),
            });
        }
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output,
        }
    }

    fn raw(integers: &[u128]) -> ScriptBuf {
        let mut payload = Vec::new();
        for i in integers {
            encode_varint(*i, &mut payload);
        }
        bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_opcode(OP_PUSHNUM_13)
            .push_slice(PushBytesBuf::try_from(payload).unwrap())
            .into_script()
    }

    fn decipher(integers: &[u128], outputs: usize) -> Artifact {
        Runestone::decipher(&tx_with(raw(integers), outputs)).unwrap()
    }

    fn flaw(a: Artifact) -> Option<Flaw> {
        match a {
            Artifact::Cenotaph(c) => Some(c.flaw),
            Artifact::Runestone(_) => None,
        }
    }

    #[test]
    fn varints_match_leb128() {
        // Examples from the LEB128 definition (unsigned).
        let cases: &[(u128, &[u8])] = &[
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0x80, 0x01]),
            (624485, &[0xe5, 0x8e, 0x26]),
        ];
        for (n, bytes) in cases {
            let mut out = Vec::new();
            encode_varint(*n, &mut out);
            assert_eq!(&out, bytes);
            assert_eq!(decode_varint(bytes), Ok((*n, bytes.len())));
        }
        let mut max = Vec::new();
        encode_varint(u128::MAX, &mut max);
        assert_eq!(max.len(), 19);
        assert_eq!(decode_varint(&max), Ok((u128::MAX, 19)));
        assert_eq!(decode_varint(&[0x80]), Err(Flaw::Varint), "unterminated");
        let mut over = max.clone();
        over[18] = 0x04;
        assert_eq!(decode_varint(&over), Err(Flaw::Varint), "overflow");
        assert_eq!(decode_varint(&[0x80; 20]), Err(Flaw::Varint), "overlong");
    }

    #[test]
    fn the_spec_delta_example_round_trips() {
        // specification.md "Parsing the Message": four edicts, sorted and delta encoded.
        let id = |block, tx| RuneId { block, tx };
        let stone = Runestone {
            edicts: vec![
                Edict {
                    id: id(10, 5),
                    amount: 5,
                    output: 1,
                },
                Edict {
                    id: id(50, 1),
                    amount: 25,
                    output: 4,
                },
                Edict {
                    id: id(10, 7),
                    amount: 1,
                    output: 8,
                },
                Edict {
                    id: id(10, 5),
                    amount: 10,
                    output: 3,
                },
            ],
            ..Runestone::default()
        };
        let tx = tx_with(stone.encipher(), 8);
        let expected = raw(&[0, 10, 5, 5, 1, 0, 0, 10, 3, 0, 2, 1, 8, 40, 1, 25, 4]);
        assert_eq!(tx.output[0].script_pubkey, expected);
        let Some(Artifact::Runestone(back)) = Runestone::decipher(&tx) else {
            panic!("not a runestone")
        };
        let mut sorted = stone.edicts.clone();
        sorted.sort_by_key(|e| e.id);
        assert_eq!(back.edicts, sorted);
    }

    #[test]
    fn transfers_with_pointer_and_mint_round_trip() {
        let stone = Runestone {
            edicts: vec![Edict {
                id: RuneId {
                    block: 840_000,
                    tx: 3,
                },
                amount: u128::MAX,
                output: 2,
            }],
            mint: Some(RuneId { block: 1, tx: 0 }),
            pointer: Some(1),
            etching: None,
        };
        let tx = tx_with(stone.encipher(), 2);
        assert_eq!(Runestone::decipher(&tx), Some(Artifact::Runestone(stone)));
    }

    #[test]
    fn no_runestone_output_is_none() {
        let plain = bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_slice(b"hello")
            .into_script();
        assert_eq!(Runestone::decipher(&tx_with(plain, 1)), None);
    }

    #[test]
    fn every_cenotaph_rule() {
        // An edict output past the outputs (2 outputs: 0 and 1; 2 means "split").
        assert_eq!(flaw(decipher(&[0, 1, 0, 5, 3], 1)), Some(Flaw::EdictOutput));
        assert_eq!(
            flaw(decipher(&[0, 1, 0, 5, 2], 1)),
            None,
            "output == len splits"
        );
        // Block 0 with a transaction index.
        assert_eq!(flaw(decipher(&[0, 0, 1, 5, 0], 1)), Some(Flaw::EdictRuneId));
        // Trailing integers.
        assert_eq!(
            flaw(decipher(&[0, 1, 0, 5], 1)),
            Some(Flaw::TrailingIntegers)
        );
        // A tag without a value.
        assert_eq!(flaw(decipher(&[22], 1)), Some(Flaw::TruncatedField));
        // Unknown even tag; unknown odd tags are ignored.
        assert_eq!(flaw(decipher(&[24, 1], 1)), Some(Flaw::UnrecognizedEvenTag));
        assert_eq!(flaw(decipher(&[127, 1], 1)), None);
        assert_eq!(
            flaw(decipher(&[126, 0], 1)),
            Some(Flaw::UnrecognizedEvenTag)
        );
        // Unknown flag.
        assert_eq!(
            flaw(decipher(&[2, 1 << 3], 1)),
            Some(Flaw::UnrecognizedFlag)
        );
        // A pointer past the outputs stays behind as an even tag.
        assert_eq!(flaw(decipher(&[22, 2], 1)), Some(Flaw::UnrecognizedEvenTag));
        assert_eq!(flaw(decipher(&[22, 1], 1)), None);
        assert_eq!(
            flaw(decipher(&[22, 1, 22, 0], 1)),
            Some(Flaw::MultiplePointers)
        );
        // Supply overflow: premine plus cap * amount.
        assert_eq!(
            flaw(decipher(&[2, 3, 6, 1, 8, u128::MAX, 10, 2], 1)),
            Some(Flaw::SupplyOverflow)
        );
        // A bad varint.
        let bad = bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_opcode(OP_PUSHNUM_13)
            .push_slice([0x80u8])
            .into_script();
        assert_eq!(
            flaw(Runestone::decipher(&tx_with(bad, 1)).unwrap()),
            Some(Flaw::Varint)
        );
        // An opcode after OP_13.
        let op = bitcoin::script::Builder::new()
            .push_opcode(OP_RETURN)
            .push_opcode(OP_PUSHNUM_13)
            .push_opcode(bitcoin::opcodes::all::OP_VERIFY)
            .into_script();
        assert_eq!(
            flaw(Runestone::decipher(&tx_with(op, 1)).unwrap()),
            Some(Flaw::Opcode)
        );
    }

    #[test]
    fn an_etching_is_read() {
        let a = decipher(
            &[
                2,
                3,
                4,
                1234,
                1,
                2,
                3,
                1,
                5,
                '$' as u128,
                6,
                1000,
                10,
                5,
                8,
                10,
            ],
            1,
        );
        let Artifact::Runestone(r) = a else {
            panic!("{a:?}")
        };
        let e = r.etching.unwrap();
        assert_eq!(e.rune, Some(1234));
        assert_eq!(e.divisibility, Some(2));
        assert_eq!(e.spacers, Some(1));
        assert_eq!(e.symbol, Some('$'));
        assert_eq!(e.premine, Some(1000));
        assert_eq!(e.terms.unwrap().amount, Some(5));
        assert_eq!(e.terms.unwrap().cap, Some(10));
    }

    /// ord's own encoder test (`ordinals::runestone::tests::encipher`): every field, in the
    /// order ord writes them, the edicts delta-encoded after the body tag.
    #[test]
    fn an_etching_is_written_as_ord_writes_it() {
        let stone = Runestone {
            edicts: vec![
                Edict {
                    id: RuneId { block: 2, tx: 3 },
                    amount: 1,
                    output: 0,
                },
                Edict {
                    id: RuneId { block: 5, tx: 6 },
                    amount: 4,
                    output: 1,
                },
            ],
            etching: Some(Box::new(Etching {
                divisibility: Some(7),
                premine: Some(8),
                rune: Some(9),
                spacers: Some(10),
                symbol: Some('@'),
                terms: Some(Terms {
                    cap: Some(11),
                    height: (Some(12), Some(13)),
                    amount: Some(14),
                    offset: (Some(15), Some(16)),
                }),
                turbo: true,
            })),
            mint: Some(RuneId { block: 17, tx: 18 }),
            pointer: Some(0),
        };
        let integers: [u128; 39] = [
            2, 7, 4, 9, 1, 7, 3, 10, 5, 64, 6, 8, 10, 14, 8, 11, 12, 12, 14, 13, 16, 15, 18, 16,
            20, 17, 20, 18, 22, 0, 0, 2, 3, 1, 0, 3, 6, 4, 1,
        ];
        let mut expected = Vec::new();
        for n in integers {
            encode_varint(n, &mut expected);
        }
        let script = stone.encipher();
        let tx = tx_with(script.clone(), 2);
        assert_eq!(payload(&tx), Some(Ok(expected)));
        assert_eq!(
            Runestone::decipher(&tx),
            Some(Artifact::Runestone(stone)),
            "and it reads back as itself"
        );
        // A reserved-name etching (no rune field): flags, divisibility, symbol, premine.
        let reserved = Runestone {
            etching: Some(Box::new(Etching {
                divisibility: Some(2),
                premine: Some(1_000),
                symbol: Some('$'),
                ..Etching::default()
            })),
            pointer: Some(0),
            ..Runestone::default()
        };
        let tx = tx_with(reserved.encipher(), 2);
        let mut expected = Vec::new();
        for n in [2, 1, 1, 2, 5, 36, 6, 1_000, 22, 0] {
            encode_varint(n, &mut expected);
        }
        assert_eq!(payload(&tx), Some(Ok(expected)));
        assert_eq!(
            Runestone::decipher(&tx),
            Some(Artifact::Runestone(reserved))
        );
    }

    #[test]
    fn rune_id_text() {
        assert_eq!(
            "840000:3".parse::<RuneId>().unwrap(),
            RuneId {
                block: 840_000,
                tx: 3
            }
        );
        assert_eq!(RuneId { block: 1, tx: 2 }.to_string(), "1:2");
        assert!("0:1".parse::<RuneId>().is_err());
        assert!("1-2".parse::<RuneId>().is_err());
        assert!("x:2".parse::<RuneId>().is_err());
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn random_scripts_never_panic(bytes in proptest::collection::vec(0u8..=255, 0..200), outputs in 0usize..5) {
            let mut script = vec![0x6a, 0x5d];
            script.extend(bytes);
            let _ = Runestone::decipher(&tx_with(ScriptBuf::from_bytes(script), outputs));
        }

        #[test]
        fn encoded_transfers_decipher_to_themselves(
            edicts in proptest::collection::vec((1u64..1_000_000, 0u32..5_000, 0u128..u128::MAX, 0u32..4), 0..12),
            pointer in proptest::option::of(0u32..4),
        ) {
            let stone = Runestone {
                edicts: edicts.iter().map(|(b, t, a, o)| Edict { id: RuneId { block: *b, tx: *t }, amount: *a, output: *o }).collect(),
                pointer,
                ..Runestone::default()
            };
            let tx = tx_with(stone.encipher(), 3);
            let Some(Artifact::Runestone(back)) = Runestone::decipher(&tx) else {
                return Err(proptest::test_runner::TestCaseError::fail("cenotaph"));
            };
            let mut sorted = stone.edicts.clone();
            sorted.sort_by_key(|e| e.id);
            proptest::prop_assert_eq!(back.edicts, sorted);
            proptest::prop_assert_eq!(back.pointer, pointer);
        }
    }
}
