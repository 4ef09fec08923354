//! What a trader's client keeps across restarts (the browser in IndexedDB): its own live
//! orders, to republish them, and its trades. Protobuf, versioned by field numbers; a record
//! that does not decode is skipped, never guessed at.

use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::{order_id, OrderSpec};
use libp2p::PeerId;
use prost::Message as _;

use crate::negotiation::{Trade, TradeRole, TradeState};
use crate::orders::OwnOrder;

/// Largest stored blob read back (own orders are capped at 200, trades at 1,000).
pub const MAX_STORED_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, PartialEq, prost::Message)]
struct StoredOrders {
    #[prost(message, repeated, tag = "1")]
    orders: Vec<StoredOrder>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredOrder {
    #[prost(string, tag = "1")]
    pair: String,
    #[prost(uint64, tag = "2")]
    nonce: u64,
    #[prost(int32, tag = "3")]
    side: i32,
    #[prost(uint64, tag = "4")]
    price: u64,
    #[prost(uint64, tag = "5")]
    amount: u64,
    #[prost(uint64, tag = "6")]
    min_fill: u64,
    #[prost(uint64, tag = "7")]
    expires_at_ms: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredTrades {
    #[prost(message, repeated, tag = "1")]
    trades: Vec<StoredTrade>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StoredTrade {
    #[prost(bytes = "vec", tag = "1")]
    id: Vec<u8>,
    #[prost(int32, tag = "2")]
    role: i32,
    #[prost(bytes = "vec", tag = "3")]
    counterparty: Vec<u8>,
    #[prost(string, tag = "4")]
    pair: String,
    #[prost(bytes = "vec", tag = "5")]
    order_id: Vec<u8>,
    #[prost(int32, tag = "6")]
    maker_side: i32,
    #[prost(uint64, tag = "7")]
    price: u64,
    #[prost(uint64, tag = "8")]
    amount: u64,
    #[prost(int32, tag = "9")]
    state: i32,
    #[prost(string, tag = "10")]
    reason: String,
    #[prost(bytes = "vec", tag = "11")]
    agreement: Vec<u8>,
    #[prost(bytes = "vec", tag = "12")]
    maker_signature: Vec<u8>,
    #[prost(bytes = "vec", tag = "13")]
    taker_signature: Vec<u8>,
    #[prost(uint64, optional, tag = "14")]
    deadline_ms: Option<u64>,
    #[prost(uint64, tag = "15")]
    updated_at_ms: u64,
    #[prost(uint64, tag = "16")]
    fee_rate: u64,
    #[prost(bytes = "vec", tag = "17")]
    taker_offer: Vec<u8>,
}

fn side_code(side: Side) -> i32 {
    match side {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

fn side_of(code: i32) -> Option<Side> {
    match code {
        1 => Some(Side::Buy),
        2 => Some(Side::Sell),
        _ => None,
    }
}

fn opt(bytes: &[u8]) -> Option<Vec<u8>> {
    (!bytes.is_empty()).then(|| bytes.to_vec())
}

/// Encodes our orders for storage: pair, nonce, side, price, amount, minimum fill and expiry of
/// each (the id is not stored: [`decode_orders`] recomputes it).
pub fn encode_orders<'a>(orders: impl IntoIterator<Item = &'a OwnOrder>) -> Vec<u8> {
    StoredOrders {
        orders: orders
            .into_iter()
            .map(|o| StoredOrder {
                pair: o.pair.to_string(),
                nonce: o.spec.nonce,
                side: side_code(o.spec.side),
                price: o.spec.price.0,
                amount: o.spec.amount,
                min_fill: o.spec.min_fill,
                expires_at_ms: o.spec.expires_at_ms,
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes stored orders of `me`; ids are recomputed from our PeerId and each nonce.
pub fn decode_orders(bytes: &[u8], me: &PeerId) -> Vec<OwnOrder> {
    if bytes.len() > MAX_STORED_BYTES {
        return Vec::new();
    }
    let Ok(stored) = StoredOrders::decode(bytes) else {
        return Vec::new();
    };
    stored
        .orders
        .into_iter()
        .filter_map(|o| {
            Some(OwnOrder {
                id: order_id(me, o.nonce),
                pair: Pair::parse(&o.pair).ok()?,
                spec: OrderSpec {
                    nonce: o.nonce,
                    side: side_of(o.side)?,
                    price: Price(o.price),
                    amount: o.amount,
                    min_fill: o.min_fill,
                    expires_at_ms: o.expires_at_ms,
                },
            })
        })
        .collect()
}

/// Encodes trades for storage, every field (a missing agreement or signature as empty bytes).
pub fn encode_trades<'a>(trades: impl IntoIterator<Item = &'a Trade>) -> Vec<u8> {
    StoredTrades {
        trades: trades
            .into_iter()
            .map(|t| {
                let (state, reason) = match &t.state {
                    TradeState::Requested => (1, String::new()),
                    TradeState::Accepted => (2, String::new()),
                    TradeState::Agreed => (3, String::new()),
                    TradeState::Rejected { reason } => (4, reason.clone()),
                    TradeState::Aborted { reason } => (5, reason.clone()),
                };
                StoredTrade {
                    id: t.id.to_vec(),
                    role: match t.role {
                        TradeRole::Maker => 1,
                        TradeRole::Taker => 2,
                    },
                    counterparty: t.counterparty.to_bytes(),
                    pair: t.pair.to_string(),
                    order_id: t.order_id.0.to_vec(),
                    maker_side: side_code(t.maker_side),
                    price: t.price.0,
                    amount: t.amount,
                    state,
                    reason,
                    agreement: t.agreement.clone().unwrap_or_default(),
                    maker_signature: t.maker_signature.clone().unwrap_or_default(),
                    taker_signature: t.taker_signature.clone().unwrap_or_default(),
                    deadline_ms: t.deadline_ms,
                    updated_at_ms: t.updated_at_ms,
                    fee_rate: t.fee_rate,
                    taker_offer: t.taker_offer.clone(),
                }
            })
            .collect(),
    }
    .encode_to_vec()
}

/// Decodes stored trades. Bytes over [`MAX_STORED_BYTES`] or that do not decode give none; a
/// trade with an unknown role, state or side, or a malformed id, PeerId, pair or order id is
/// skipped.
pub fn decode_trades(bytes: &[u8]) -> Vec<Trade> {
    if bytes.len() > MAX_STORED_BYTES {
        return Vec::new();
    }
    let Ok(stored) = StoredTrades::decode(bytes) else {
        return Vec::new();
    };
    stored
        .trades
        .into_iter()
        .filter_map(|t| {
            Some(Trade {
                id: t.id.as_slice().try_into().ok()?,
                role: match t.role {
                    1 => TradeRole::Maker,
                    2 => TradeRole::Taker,
                    _ => return None,
                },
                counterparty: PeerId::from_bytes(&t.counterparty).ok()?,
                pair: Pair::parse(&t.pair).ok()?,
                order_id: OrderId(t.order_id.as_slice().try_into().ok()?),
                maker_side: side_of(t.maker_side)?,
                price: Price(t.price),
                amount: t.amount,
                state: match t.state {
                    1 => TradeState::Requested,
                    2 => TradeState::Accepted,
                    3 => TradeState::Agreed,
                    4 => TradeState::Rejected { reason: t.reason },
                    5 => TradeState::Aborted { reason: t.reason },
                    _ => return None,
                },
                agreement: opt(&t.agreement),
                maker_signature: opt(&t.maker_signature),
                taker_signature: opt(&t.taker_signature),
                deadline_ms: t.deadline_ms,
                updated_at_ms: t.updated_at_ms,
                fee_rate: t.fee_rate,
                taker_offer: t.taker_offer,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::identity::Keypair;

    #[test]
    fn orders_and_trades_round_trip() {
        let me = Keypair::generate_ed25519().public().to_peer_id();
        let pair = Pair::parse("RUNE:DOG/BTC").unwrap();
        let spec = OrderSpec {
            nonce: 42,
            side: Side::Sell,
            price: Price(5),
            amount: 9,
            min_fill: 1,
            expires_at_ms: 77,
        };
        let order = OwnOrder {
            id: order_id(&me, 42),
            pair: pair.clone(),
            spec,
        };
        assert_eq!(decode_orders(&encode_orders([&order]), &me), vec![order]);
        let trade = Trade {
            id: [9; 16],
            role: TradeRole::Taker,
            counterparty: me,
            pair,
            order_id: OrderId([1; 16]),
            maker_side: Side::Sell,
            price: Price(5),
            amount: 3,
            state: TradeState::Aborted {
                reason: "reload".into(),
            },
            agreement: Some(vec![1, 2, 3]),
            maker_signature: None,
            taker_signature: Some(vec![4]),
            deadline_ms: Some(10),
            updated_at_ms: 11,
            fee_rate: 4,
            taker_offer: vec![5, 6],
        };
        assert_eq!(decode_trades(&encode_trades([&trade])), vec![trade]);
        assert!(decode_trades(b"garbage").is_empty());
    }
}
