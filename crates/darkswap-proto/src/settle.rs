//! Settlement messages: what maker and taker exchange, sealed in their trade session, to build
//! and sign the one transaction that swaps a rune for bitcoin (the transaction itself is built
//! by `darkswap-wallet`'s `swap` module; these are only its wire forms, with their caps).
//!
//! - `Offer`: the outputs a side offers to spend, each with the runes it claims they hold (the
//!   other side checks every claim against the chain and the rune indexer), and two scripts: a
//!   rune seller's payment and rune change, or a buyer's rune receive and bitcoin change.
//! - `Signed`: the swap transaction with the sender's inputs signed (consensus encoding). The
//!   receiver compares it with the one it built itself and names the first difference.
//! - `Abort`: the sender gives the settlement up before signing, with a reason.
//!
//! ```proto
//! message SettleMessage { oneof kind { Offer offer = 1; bytes signed = 2; string abort = 3; } }
//! message Offer { repeated Input inputs = 1; bytes first_script = 2; bytes second_script = 3; }
//! message Input { bytes txid = 1; uint32 vout = 2; uint64 value = 3; bytes script = 4;
//!   repeated Rune runes = 5; }
//! message Rune { uint64 block = 1; uint32 tx = 2; uint64 amount_high = 3; uint64 amount_low = 4; }
//! ```
//!
//! Everything read is capped before use: the whole message ([`MAX_SETTLE_MESSAGE_BYTES`],
//! checked before parsing), inputs per offer, script lengths, runes per input, the transaction's
//! bytes.

use prost::Message as _;

/// Outputs one side may offer to a swap.
pub const MAX_OFFER_INPUTS: usize = 16;
/// Longest script accepted in an offer: every standard output script (a segwit program is at
/// most 42 bytes) fits.
pub const MAX_SCRIPT_BYTES: usize = 42;
/// Different runes one offered output may claim to hold.
pub const MAX_RUNES_PER_INPUT: usize = 8;
/// Largest swap transaction carried: 32 signed inputs and a handful of outputs take ~4 KB.
pub const MAX_SWAP_TX_BYTES: usize = 8 * 1024;
/// Cap on one encoded settlement message.
pub const MAX_SETTLE_MESSAGE_BYTES: usize = MAX_SWAP_TX_BYTES + 256;
/// Longest abort reason carried.
pub const MAX_ABORT_REASON_BYTES: usize = 200;

/// A rune amount on an offered output, as claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireRune {
    /// The etching's block.
    pub block: u64,
    /// The etching's index in its block.
    pub tx: u32,
    /// Units.
    pub amount: u128,
}

/// One output offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireInput {
    /// Its transaction, in internal byte order.
    pub txid: [u8; 32],
    /// Its index there.
    pub vout: u32,
    /// Its value in satoshis.
    pub value: u64,
    /// Its script.
    pub script: Vec<u8>,
    /// Runes claimed on it, by rune id, each id once.
    pub runes: Vec<WireRune>,
}

/// What one side brings to the swap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireOffer {
    /// The outputs it spends.
    pub inputs: Vec<WireInput>,
    /// The seller's payment script, or the buyer's rune receive script.
    pub first_script: Vec<u8>,
    /// The seller's rune change script, or the buyer's bitcoin change script.
    pub second_script: Vec<u8>,
}

/// One settlement message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SettleMessage {
    /// What the sender offers.
    Offer(WireOffer),
    /// The swap with the sender's inputs signed (consensus bytes).
    Signed(Vec<u8>),
    /// The sender gives up before signing.
    Abort(String),
}

/// Why a settlement message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleWireError {
    /// Over [`MAX_SETTLE_MESSAGE_BYTES`] (its length); checked before parsing.
    #[error("settlement message of {0} bytes exceeds the cap")]
    TooLarge(usize),
    /// Not protobuf of the expected message, or no kind set.
    #[error("malformed settlement message")]
    Malformed,
    /// No input, or more than [`MAX_OFFER_INPUTS`].
    #[error("an offer spends between 1 and {MAX_OFFER_INPUTS} outputs")]
    InputCount,
    /// A txid that is not 32 bytes.
    #[error("an offered output's txid is not 32 bytes")]
    Txid,
    /// An empty script, or one over [`MAX_SCRIPT_BYTES`].
    #[error("a script is empty or longer than {MAX_SCRIPT_BYTES} bytes")]
    Script,
    /// More than [`MAX_RUNES_PER_INPUT`] runes on one output, a rune named twice, or a zero
    /// amount.
    #[error("an output's rune claims are too many, repeated, or zero")]
    Runes,
    /// The same output offered twice.
    #[error("an output is offered twice")]
    Duplicate,
    /// An empty transaction, or one over [`MAX_SWAP_TX_BYTES`].
    #[error("the signed transaction is empty or over {MAX_SWAP_TX_BYTES} bytes")]
    TxSize,
}

fn cut(reason: &str) -> String {
    crate::text::cut_to(reason, MAX_ABORT_REASON_BYTES)
}

fn check_script(script: &[u8]) -> Result<(), SettleWireError> {
    if script.is_empty() || script.len() > MAX_SCRIPT_BYTES {
        return Err(SettleWireError::Script);
    }
    Ok(())
}

impl WireOffer {
    /// Checks the caps and shape an offer must keep (also applied when decoding).
    pub fn check(&self) -> Result<(), SettleWireError> {
        if self.inputs.is_empty() || self.inputs.len() > MAX_OFFER_INPUTS {
            return Err(SettleWireError::InputCount);
        }
        check_script(&self.first_script)?;
        check_script(&self.second_script)?;
        let mut seen = std::collections::BTreeSet::new();
        for input in &self.inputs {
            check_script(&input.script)?;
            if !seen.insert((input.txid, input.vout)) {
                return Err(SettleWireError::Duplicate);
            }
            if input.runes.len() > MAX_RUNES_PER_INPUT {
                return Err(SettleWireError::Runes);
            }
            let mut ids = std::collections::BTreeSet::new();
            for r in &input.runes {
                if r.amount == 0 || !ids.insert((r.block, r.tx)) {
                    return Err(SettleWireError::Runes);
                }
            }
        }
        Ok(())
    }
}

impl SettleMessage {
    /// The protobuf encoding; an abort's reason is cut to [`MAX_ABORT_REASON_BYTES`].
    pub fn encode(&self) -> Vec<u8> {
        use wire::message::Kind;
        let kind = match self {
            SettleMessage::Offer(o) => Kind::Offer(wire::Offer {
                inputs: o
                    .inputs
                    .iter()
                    .map(|i| wire::Input {
                        txid: i.txid.to_vec(),
                        vout: i.vout,
                        value: i.value,
                        script: i.script.clone(),
                        runes: i
                            .runes
                            .iter()
                            .map(|r| wire::Rune {
                                block: r.block,
                                tx: r.tx,
                                amount_high: (r.amount >> 64) as u64,
                                amount_low: r.amount as u64,
                            })
                            .collect(),
                    })
                    .collect(),
                first_script: o.first_script.clone(),
                second_script: o.second_script.clone(),
            }),
            SettleMessage::Signed(tx) => Kind::Signed(tx.clone()),
            SettleMessage::Abort(reason) => Kind::Abort(cut(reason)),
        };
        wire::Message { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes a message, refusing anything over [`MAX_SETTLE_MESSAGE_BYTES`] before parsing and
    /// any offer that breaks [`WireOffer::check`].
    pub fn decode(bytes: &[u8]) -> Result<SettleMessage, SettleWireError> {
        use wire::message::Kind;
        if bytes.len() > MAX_SETTLE_MESSAGE_BYTES {
            return Err(SettleWireError::TooLarge(bytes.len()));
        }
        let w = wire::Message::decode(bytes).map_err(|_| SettleWireError::Malformed)?;
        Ok(match w.kind.ok_or(SettleWireError::Malformed)? {
            Kind::Offer(o) => {
                if o.inputs.len() > MAX_OFFER_INPUTS {
                    return Err(SettleWireError::InputCount);
                }
                let mut inputs = Vec::with_capacity(o.inputs.len());
                for i in o.inputs {
                    if i.runes.len() > MAX_RUNES_PER_INPUT {
                        return Err(SettleWireError::Runes);
                    }
                    inputs.push(WireInput {
                        txid: i.txid.try_into().map_err(|_| SettleWireError::Txid)?,
                        vout: i.vout,
                        value: i.value,
                        script: i.script,
                        runes: i
                            .runes
                            .iter()
                            .map(|r| WireRune {
                                block: r.block,
                                tx: r.tx,
                                amount: (u128::from(r.amount_high) << 64)
                                    | u128::from(r.amount_low),
                            })
                            .collect(),
                    });
                }
                let offer = WireOffer {
                    inputs,
                    first_script: o.first_script,
                    second_script: o.second_script,
                };
                offer.check()?;
                SettleMessage::Offer(offer)
            }
            Kind::Signed(tx) => {
                if tx.is_empty() || tx.len() > MAX_SWAP_TX_BYTES {
                    return Err(SettleWireError::TxSize);
                }
                SettleMessage::Signed(tx)
            }
            Kind::Abort(reason) => SettleMessage::Abort(cut(&reason)),
        })
    }
}

mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Message {
        #[prost(oneof = "message::Kind", tags = "1, 2, 3")]
        pub kind: Option<message::Kind>,
    }

    pub mod message {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(message, tag = "1")]
            Offer(super::Offer),
            #[prost(bytes, tag = "2")]
            Signed(Vec<u8>),
            #[prost(string, tag = "3")]
            Abort(String),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Offer {
        #[prost(message, repeated, tag = "1")]
        pub inputs: Vec<Input>,
        #[prost(bytes = "vec", tag = "2")]
        pub first_script: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub second_script: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Input {
        #[prost(bytes = "vec", tag = "1")]
        pub txid: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub vout: u32,
        #[prost(uint64, tag = "3")]
        pub value: u64,
        #[prost(bytes = "vec", tag = "4")]
        pub script: Vec<u8>,
        #[prost(message, repeated, tag = "5")]
        pub runes: Vec<Rune>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Rune {
        #[prost(uint64, tag = "1")]
        pub block: u64,
        #[prost(uint32, tag = "2")]
        pub tx: u32,
        #[prost(uint64, tag = "3")]
        pub amount_high: u64,
        #[prost(uint64, tag = "4")]
        pub amount_low: u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(n: u8, runes: Vec<WireRune>) -> WireInput {
        WireInput {
            txid: [n; 32],
            vout: u32::from(n),
            value: 546,
            script: vec![0x51, 0x20, n],
            runes,
        }
    }

    fn offer(inputs: Vec<WireInput>) -> WireOffer {
        WireOffer {
            inputs,
            first_script: vec![0x51, 0x20, 1],
            second_script: vec![0x51, 0x20, 2],
        }
    }

    #[test]
    fn every_kind_round_trips_with_full_width_rune_amounts() {
        let big = WireRune {
            block: 840_000,
            tx: 7,
            amount: u128::MAX - 5,
        };
        let messages = [
            SettleMessage::Offer(offer(vec![input(1, vec![big]), input(2, vec![])])),
            SettleMessage::Signed(vec![2, 0, 0, 0, 1]),
            SettleMessage::Abort("the counterparty's input is spent".into()),
        ];
        for m in messages {
            assert_eq!(SettleMessage::decode(&m.encode()), Ok(m));
        }
    }

    #[test]
    fn a_largest_offer_fits_the_cap() {
        let runes: Vec<WireRune> = (0..MAX_RUNES_PER_INPUT as u32)
            .map(|tx| WireRune {
                block: u64::MAX,
                tx,
                amount: u128::MAX,
            })
            .collect();
        let inputs = (0..MAX_OFFER_INPUTS as u8)
            .map(|n| WireInput {
                script: vec![n; MAX_SCRIPT_BYTES],
                value: u64::MAX,
                vout: u32::MAX - u32::from(n),
                ..input(n, runes.clone())
            })
            .collect();
        let mut o = offer(inputs);
        o.first_script = vec![9; MAX_SCRIPT_BYTES];
        o.second_script = vec![9; MAX_SCRIPT_BYTES];
        let bytes = SettleMessage::Offer(o.clone()).encode();
        assert!(bytes.len() <= MAX_SETTLE_MESSAGE_BYTES, "{}", bytes.len());
        assert_eq!(SettleMessage::decode(&bytes), Ok(SettleMessage::Offer(o)));
        let signed = SettleMessage::Signed(vec![7; MAX_SWAP_TX_BYTES]).encode();
        assert!(signed.len() <= MAX_SETTLE_MESSAGE_BYTES);
    }

    #[test]
    fn offers_outside_the_caps_are_refused_by_name() {
        let rune = |tx: u32, amount: u128| WireRune {
            block: 1,
            tx,
            amount,
        };
        let too_many = offer(
            (0..=MAX_OFFER_INPUTS as u8)
                .map(|n| input(n, vec![]))
                .collect(),
        );
        let cases = [
            (offer(vec![]), SettleWireError::InputCount),
            (too_many, SettleWireError::InputCount),
            (
                offer(vec![input(1, vec![]), input(1, vec![])]),
                SettleWireError::Duplicate,
            ),
            (
                offer(vec![input(1, vec![rune(1, 0)])]),
                SettleWireError::Runes,
            ),
            (
                offer(vec![input(1, vec![rune(1, 5), rune(1, 6)])]),
                SettleWireError::Runes,
            ),
            (
                offer(vec![input(
                    1,
                    (0..=MAX_RUNES_PER_INPUT as u32)
                        .map(|t| rune(t, 1))
                        .collect(),
                )]),
                SettleWireError::Runes,
            ),
            (
                WireOffer {
                    first_script: vec![],
                    ..offer(vec![input(1, vec![])])
                },
                SettleWireError::Script,
            ),
            (
                offer(vec![WireInput {
                    script: vec![0; MAX_SCRIPT_BYTES + 1],
                    ..input(1, vec![])
                }]),
                SettleWireError::Script,
            ),
        ];
        for (o, expected) in cases {
            assert_eq!(o.check(), Err(expected.clone()));
            assert_eq!(
                SettleMessage::decode(&SettleMessage::Offer(o).encode()),
                Err(expected)
            );
        }
    }

    #[test]
    fn oversized_and_malformed_bytes_are_refused_before_use() {
        let huge = vec![0u8; MAX_SETTLE_MESSAGE_BYTES + 1];
        assert_eq!(
            SettleMessage::decode(&huge),
            Err(SettleWireError::TooLarge(huge.len()))
        );
        assert_eq!(SettleMessage::decode(&[]), Err(SettleWireError::Malformed));
        assert_eq!(
            SettleMessage::decode(&[0xff, 0xff]),
            Err(SettleWireError::Malformed)
        );
        assert_eq!(
            SettleMessage::decode(&SettleMessage::Signed(vec![]).encode()),
            Err(SettleWireError::TxSize)
        );
        let mut short_txid = wire::Offer::default();
        short_txid.inputs.push(wire::Input {
            txid: vec![1; 31],
            script: vec![1],
            ..Default::default()
        });
        short_txid.first_script = vec![1];
        short_txid.second_script = vec![1];
        let bytes = wire::Message {
            kind: Some(wire::message::Kind::Offer(short_txid)),
        }
        .encode_to_vec();
        assert_eq!(SettleMessage::decode(&bytes), Err(SettleWireError::Txid));
        let reason = "é".repeat(MAX_ABORT_REASON_BYTES);
        match SettleMessage::decode(&SettleMessage::Abort(reason).encode()) {
            Ok(SettleMessage::Abort(r)) => assert!(r.len() <= MAX_ABORT_REASON_BYTES),
            other => panic!("{other:?}"),
        }
    }
}
