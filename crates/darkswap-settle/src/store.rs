//! A settlement as stored (the browser in IndexedDB, the CLI in a file), and its resumption.
//! Protobuf; a record that does not decode is refused with a reason, never guessed at. The swap
//! itself is not stored: it is rebuilt from the two offers (the same bytes every time).

use std::collections::BTreeMap;

use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, Transaction, Txid};
use darkswap_proto::settle::SettleMessage;
use darkswap_wallet::keys::{Account, Chain, KeyPath};
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::send::FeeRate;
use darkswap_wallet::swap::{build, Side, Terms};
use prost::Message as _;

use crate::convert::Offer;
use crate::deal::{Deal, Role};
use crate::machine::{Action, Output, Params, Settlement, Step};
use crate::select::Ours;

/// Largest stored settlement read back: two offers and three transactions.
pub const MAX_STORED_SETTLEMENT_BYTES: usize = 64 * 1024;

/// Why a stored settlement was not restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Over [`MAX_STORED_SETTLEMENT_BYTES`].
    #[error("stored settlement of {0} bytes exceeds the cap")]
    TooLarge(usize),
    /// Not the stored form, or a field out of range.
    #[error("stored settlement is malformed ({0})")]
    Malformed(&'static str),
}

#[derive(Clone, PartialEq, prost::Message)]
struct Stored {
    #[prost(bytes = "vec", tag = "1")]
    trade_id: Vec<u8>,
    #[prost(uint32, tag = "2")]
    role: u32,
    #[prost(uint32, tag = "3")]
    side: u32,
    #[prost(uint64, tag = "4")]
    rune_block: u64,
    #[prost(uint32, tag = "5")]
    rune_tx: u32,
    #[prost(uint64, tag = "6")]
    units_high: u64,
    #[prost(uint64, tag = "7")]
    units_low: u64,
    #[prost(uint64, tag = "8")]
    price_sats: u64,
    #[prost(uint64, tag = "9")]
    fee_rate: u64,
    #[prost(uint32, tag = "10")]
    confirmations_wanted: u32,
    #[prost(uint64, tag = "11")]
    step_timeout_ms: u64,
    #[prost(bytes = "vec", tag = "12")]
    our_offer: Vec<u8>,
    #[prost(message, repeated, tag = "13")]
    paths: Vec<StoredPath>,
    #[prost(bytes = "vec", tag = "14")]
    their_offer: Vec<u8>,
    #[prost(bytes = "vec", tag = "15")]
    pending_half: Vec<u8>,
    #[prost(bytes = "vec", tag = "16")]
    our_half: Vec<u8>,
    #[prost(bytes = "vec", tag = "17")]
    full: Vec<u8>,
    #[prost(uint32, tag = "18")]
    confirmations: u32,
    #[prost(uint32, tag = "19")]
    step: u32,
    #[prost(string, tag = "20")]
    reason: String,
    #[prost(bool, tag = "21")]
    cancel_offered: bool,
    #[prost(uint64, tag = "22")]
    deadline_ms: u64,
    #[prost(uint64, tag = "23")]
    updated_at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredPath {
    #[prost(bytes = "vec", tag = "1")]
    txid: Vec<u8>,
    #[prost(uint32, tag = "2")]
    vout: u32,
    #[prost(uint32, tag = "3")]
    account: u32,
    #[prost(uint32, tag = "4")]
    chain: u32,
    #[prost(uint32, tag = "5")]
    index: u32,
}

const STEPS: [Step; 8] = [
    Step::Offered,
    Step::Checking,
    Step::Checked,
    Step::Signed,
    Step::Broadcast,
    Step::Settled,
    Step::Aborted,
    Step::Cancelled,
];

fn tx_bytes(tx: &Option<Transaction>) -> Vec<u8> {
    tx.as_ref().map(serialize).unwrap_or_default()
}

fn tx_from(bytes: &[u8]) -> Result<Option<Transaction>, StoreError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    deserialize(bytes)
        .map(Some)
        .map_err(|_| StoreError::Malformed("transaction"))
}

fn offer_from(side: Side, bytes: &[u8]) -> Result<Offer, StoreError> {
    match SettleMessage::decode(bytes) {
        Ok(SettleMessage::Offer(w)) => {
            Offer::from_wire(side, &w).map_err(|_| StoreError::Malformed("offer"))
        }
        _ => Err(StoreError::Malformed("offer")),
    }
}

impl Settlement {
    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let d = &self.deal;
        Stored {
            trade_id: d.trade_id.to_vec(),
            role: match d.role {
                Role::Maker => 1,
                Role::Taker => 2,
            },
            side: match d.side {
                Side::Seller => 1,
                Side::Buyer => 2,
            },
            rune_block: d.terms.rune.block,
            rune_tx: d.terms.rune.tx,
            units_high: (d.terms.units >> 64) as u64,
            units_low: d.terms.units as u64,
            price_sats: d.terms.price.to_sat(),
            fee_rate: d.terms.fee_rate.get(),
            confirmations_wanted: self.params.confirmations,
            step_timeout_ms: self.params.step_timeout_ms,
            our_offer: SettleMessage::Offer(self.ours.offer.to_wire()).encode(),
            paths: self
                .ours
                .paths
                .iter()
                .map(|(o, p)| StoredPath {
                    txid: o.txid.to_byte_array().to_vec(),
                    vout: o.vout,
                    account: p.account.number(),
                    chain: match p.chain {
                        Chain::External => 0,
                        Chain::Internal => 1,
                    },
                    index: p.index,
                })
                .collect(),
            their_offer: self
                .theirs
                .as_ref()
                .map(|o| SettleMessage::Offer(o.to_wire()).encode())
                .unwrap_or_default(),
            pending_half: tx_bytes(&self.pending_half),
            our_half: tx_bytes(&self.our_half),
            full: tx_bytes(&self.full),
            confirmations: self.confirmations,
            step: STEPS.iter().position(|s| *s == self.step).unwrap_or(0) as u32,
            reason: self.reason.clone().unwrap_or_default(),
            cancel_offered: self.cancel_offered,
            deadline_ms: self.deadline_ms,
            updated_at_ms: self.updated_at_ms,
        }
        .encode_to_vec()
    }

    /// Reads a stored settlement back. A settlement past its checks whose swap no longer builds
    /// from the stored offers is refused (it cannot be continued safely).
    pub fn decode(bytes: &[u8]) -> Result<Settlement, StoreError> {
        if bytes.len() > MAX_STORED_SETTLEMENT_BYTES {
            return Err(StoreError::TooLarge(bytes.len()));
        }
        let s = Stored::decode(bytes).map_err(|_| StoreError::Malformed("protobuf"))?;
        let role = match s.role {
            1 => Role::Maker,
            2 => Role::Taker,
            _ => return Err(StoreError::Malformed("role")),
        };
        let side = match s.side {
            1 => Side::Seller,
            2 => Side::Buyer,
            _ => return Err(StoreError::Malformed("side")),
        };
        let deal = Deal {
            trade_id: s
                .trade_id
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Malformed("trade id"))?,
            role,
            side,
            terms: Terms {
                rune: RuneId {
                    block: s.rune_block,
                    tx: s.rune_tx,
                },
                units: (u128::from(s.units_high) << 64) | u128::from(s.units_low),
                price: Amount::from_sat(s.price_sats),
                fee_rate: FeeRate::sat_per_vb(s.fee_rate)
                    .map_err(|_| StoreError::Malformed("fee rate"))?,
            },
        };
        let mut paths = BTreeMap::new();
        for p in &s.paths {
            let txid: [u8; 32] = p
                .txid
                .as_slice()
                .try_into()
                .map_err(|_| StoreError::Malformed("path txid"))?;
            let account = match p.account {
                0 => Account::Payment,
                1 => Account::Runes,
                _ => return Err(StoreError::Malformed("path account")),
            };
            let chain = match p.chain {
                0 => Chain::External,
                1 => Chain::Internal,
                _ => return Err(StoreError::Malformed("path chain")),
            };
            paths.insert(
                OutPoint {
                    txid: Txid::from_byte_array(txid),
                    vout: p.vout,
                },
                KeyPath {
                    account,
                    chain,
                    index: p.index,
                },
            );
        }
        let ours = Ours {
            offer: offer_from(side, &s.our_offer)?,
            paths,
        };
        let theirs = if s.their_offer.is_empty() {
            None
        } else {
            Some(offer_from(deal.their_side(), &s.their_offer)?)
        };
        let step = *STEPS
            .get(s.step as usize)
            .ok_or(StoreError::Malformed("step"))?;
        let mut settlement = Settlement {
            deal,
            params: Params {
                confirmations: s.confirmations_wanted,
                step_timeout_ms: s.step_timeout_ms,
            },
            ours,
            theirs,
            swap: None,
            pending_half: tx_from(&s.pending_half)?,
            our_half: tx_from(&s.our_half)?,
            full: tx_from(&s.full)?,
            confirmations: s.confirmations,
            step,
            reason: (!s.reason.is_empty()).then_some(s.reason),
            cancel_offered: s.cancel_offered,
            deadline_ms: s.deadline_ms,
            updated_at_ms: s.updated_at_ms,
        };
        let past_checks = step >= Step::Checked && step != Step::Aborted;
        if past_checks {
            let swap = settlement
                .offers_pair()
                .and_then(|(sell, buy)| build(&settlement.deal.terms, sell, buy).ok())
                .ok_or(StoreError::Malformed("swap does not rebuild"))?;
            settlement.swap = Some(swap);
        }
        Ok(settlement)
    }

    /// What to do again after a restore, so the settlement carries on where it stopped: our
    /// outputs locked again, lookups redone, the chain watched, our last message sent again (a
    /// repeat is harmless: the other side ignores or answers it), a whole transaction broadcast
    /// again.
    pub fn resume(&self) -> Output {
        let mut out = Output::default();
        if self.step.is_final() {
            return out;
        }
        out.actions.push(Action::Lock(self.our_outpoints()));
        if self.step == Step::Offered {
            out.actions.push(Action::Send(SettleMessage::Offer(
                self.ours.offer.to_wire(),
            )));
        }
        if let (Step::Checking, Some(theirs)) = (self.step, &self.theirs) {
            out.actions.push(Action::Lookup(theirs.outpoints()));
        }
        if let Some(swap) = &self.swap {
            out.actions.push(Action::Watch {
                txid: swap.tx.compute_txid(),
                inputs: swap.tx.input.iter().map(|i| i.previous_output).collect(),
            });
        }
        if let (Role::Taker, Some(half)) = (self.deal.role, &self.our_half) {
            if self.full.is_none() {
                out.actions
                    .push(Action::Send(SettleMessage::Signed(serialize(half))));
            }
        }
        if let Some(full) = &self.full {
            out.actions.push(Action::Broadcast(full.clone()));
            if self.deal.role == Role::Maker {
                out.actions
                    .push(Action::Send(SettleMessage::Signed(serialize(full))));
            }
        }
        out
    }
}
