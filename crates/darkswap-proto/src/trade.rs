//! `/darkswap/trade/2`: negotiating a trade between a taker and a maker, over their relayed
//! connection. Request-response; the taker always asks, the maker always answers. Version 2
//! carries these messages only sealed in a `darkswap-e2e` session (the envelope and the
//! associated data are in [`crate::trade_envelope`]); version 1 carried them in the clear.
//!
//! 1. `Take` (taker → maker): trade id, order id, amount. The maker checks the order is its
//!    own and live, that the amount meets the minimum fill and is still free, **reserves** it
//!    (no one else can take it now), and answers `Accepted` with the trade agreement signed by
//!    itself, or `Rejected` with a reason.
//! 2. `Confirm` (taker → maker): the taker's signature over the same agreement. The maker checks
//!    it and that the agreement has not expired, turns the reservation into a fill, and answers
//!    `Done`. Both now hold an agreement signed by both: "agreed, awaiting settlement".
//! 3. `Abort` (taker → maker) at any point before `Done` releases the reservation; so does the
//!    agreement's expiry on the maker's side.
//! 4. `Settle` (either side → the other, once agreed): one settlement message
//!    (`crate::settle`), answered `Settled`. The side that sends it asks, so it is the
//!    initiator of the session that carries it. A take on a pair that settles on Bitcoin names
//!    its fee rate (signed into the agreement) and may carry the taker's offer (pipelined).
//!
//! ```proto
//! message TradeRequest { oneof kind { Take take = 1; Confirm confirm = 2; Abort abort = 3;
//!   Settle settle = 4; } }
//! message Settle { bytes trade_id = 1; bytes message = 2; }
//! message Take { bytes trade_id = 1; bytes order_id = 2; string pair = 3; uint64 amount = 4;
//!   uint64 fee_rate = 5; bytes settle = 6; }
//! message Confirm { bytes trade_id = 1; bytes taker_signature = 2; }
//! message Abort { bytes trade_id = 1; string reason = 2; }
//! message TradeResponse { oneof kind { Accepted accepted = 1; string rejected = 2; bytes done = 3;
//!   bytes aborted = 4; bytes settled = 5; } }
//! message Accepted { bytes agreement = 1; bytes maker_signature = 2; }
//! message Agreement { uint32 version = 1; bytes trade_id = 2; string pair = 3; bytes order_id = 4;
//!   bytes maker = 5; bytes taker = 6; int32 maker_side = 7; uint64 price = 8; uint64 amount = 9;
//!   uint64 quote_amount = 10; uint64 created_at_ms = 11; uint64 expires_at_ms = 12;
//!   uint64 fee_rate = 13; }
//! ```

use darkswap_orderbook::{quote_amount, OrderId, Pair, Price, Side};
use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message as _;

/// The trade protocol's name.
pub const TRADE_PROTOCOL: &str = "/darkswap/trade/2";
/// Version of the [`Agreement`] encoding, carried in every agreement (not the protocol's
/// version, which is in [`TRADE_PROTOCOL`]).
pub const TRADE_WIRE_VERSION: u32 = 1;
/// Cap on one trade frame: an agreement is ~200 bytes, signatures 64, a settlement message up
/// to [`MAX_SETTLE_MESSAGE_BYTES`](crate::settle::MAX_SETTLE_MESSAGE_BYTES).
pub const MAX_TRADE_FRAME_BYTES: u64 = crate::settle::MAX_SETTLE_MESSAGE_BYTES as u64 + 1024;
/// Highest fee rate a take may name, in satoshis per virtual byte.
pub const MAX_TRADE_FEE_RATE: u64 = 5_000;
/// Prefix of every agreement signature.
pub const AGREEMENT_SIGNING_DOMAIN: &[u8] = b"darkswap/trade-agreement/1\0";
/// How long the taker has to confirm an accepted trade before the maker releases the amount.
pub const CONFIRM_WINDOW_MS: u64 = 30_000;
/// Longest reason text carried.
pub const MAX_REASON_BYTES: usize = 200;

/// A trade's identity, chosen at random by the taker.
pub type TradeId = [u8; 16];

/// What both sides sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agreement {
    /// The taker's random id for the trade.
    pub trade_id: TradeId,
    /// The pair traded.
    pub pair: Pair,
    /// The maker's order taken.
    pub order_id: OrderId,
    /// The maker, whose signature is checked under the key inside this PeerId.
    pub maker: PeerId,
    /// The taker, whose signature is checked under the key inside this PeerId.
    pub taker: PeerId,
    /// The maker's side: `Sell` means the maker sells the base asset to the taker.
    pub maker_side: Side,
    /// The order's price: quote units per [`PRICE_SCALE`](darkswap_orderbook::PRICE_SCALE) base
    /// units.
    pub price: Price,
    /// Base units traded.
    pub amount: u64,
    /// Quote units paid for them (`quote_amount(amount, price)`, rounded down).
    pub quote_amount: u64,
    /// When the maker built it, milliseconds since the Unix epoch (maker's clock).
    pub created_at_ms: u64,
    /// The taker must confirm before this.
    pub expires_at_ms: u64,
    /// The settlement transaction's fee rate, satoshis per virtual byte, as the taker named it;
    /// 0 for a trade that is not settled on Bitcoin.
    pub fee_rate: u64,
}

/// What a taker asks a maker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeRequest {
    /// Take part of an order: the maker reserves `amount` and answers `Accepted`, or `Rejected`.
    Take {
        /// A fresh random id for the trade.
        trade_id: TradeId,
        /// The order taken.
        order_id: OrderId,
        /// The order's pair; the maker refuses a take naming another.
        pair: Pair,
        /// Base units wanted; the maker reserves them only if they are free and meet the order's
        /// minimum fill.
        amount: u64,
        /// The settlement's fee rate (sat/vB; 0: not settled on Bitcoin), at most
        /// [`MAX_TRADE_FEE_RATE`].
        fee_rate: u64,
        /// The taker's settlement offer (an encoded `crate::settle::SettleMessage`), or empty.
        settle: Vec<u8>,
    },
    /// Sign the accepted agreement: the maker checks the signature and the agreement's expiry,
    /// turns the reservation into a fill and answers `Done`.
    Confirm {
        /// The trade confirmed.
        trade_id: TradeId,
        /// The taker's signature over the encoded agreement ([`Agreement::sign`]).
        taker_signature: Vec<u8>,
    },
    /// Give up before `Done`: the maker releases the reservation and answers `Aborted`.
    Abort {
        /// The trade given up.
        trade_id: TradeId,
        /// Why, for the maker; cut to [`MAX_REASON_BYTES`] when encoded and decoded.
        reason: String,
    },
    /// One settlement message about an agreed trade (either side asks).
    Settle {
        /// The trade.
        trade_id: TradeId,
        /// An encoded `crate::settle::SettleMessage` (decoded and checked by its reader).
        message: Vec<u8>,
    },
}

/// What a maker answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TradeResponse {
    /// The agreement's encoding (exactly what is signed) and the maker's signature.
    Accepted {
        /// [`Agreement::encode`]'s bytes, still to be decoded and checked by the taker.
        agreement: Vec<u8>,
        /// The maker's signature over `agreement` ([`Agreement::sign`]).
        maker_signature: Vec<u8>,
    },
    /// The request was refused.
    Rejected {
        /// Why, in words for the trader; cut to [`MAX_REASON_BYTES`] when encoded and decoded.
        reason: String,
    },
    /// The confirm was taken: the amount is filled and both sides hold the agreement signed by
    /// both. A repeated confirm gets the same answer.
    Done {
        /// The trade agreed.
        trade_id: TradeId,
    },
    /// The abort was taken and the reservation released.
    Aborted {
        /// The trade aborted.
        trade_id: TradeId,
    },
    /// The settlement message was taken.
    Settled {
        /// Its trade.
        trade_id: TradeId,
    },
}

impl TradeResponse {
    /// The answer's kind, for logs and for words (`accepted`, `rejected`, `done`, `aborted`,
    /// `settled`).
    pub fn kind(&self) -> &'static str {
        match self {
            TradeResponse::Accepted { .. } => "accepted",
            TradeResponse::Rejected { .. } => "rejected",
            TradeResponse::Done { .. } => "done",
            TradeResponse::Aborted { .. } => "aborted",
            TradeResponse::Settled { .. } => "settled",
        }
    }
}

/// Why a trade message or agreement was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradeWireError {
    /// The frame (its length in bytes) is over [`MAX_TRADE_FRAME_BYTES`]; checked before
    /// parsing.
    #[error("trade frame of {0} bytes exceeds the cap")]
    TooLarge(usize),
    /// Not protobuf of the expected message, no kind set, an id that is not 16 bytes, a PeerId
    /// that does not parse, or a side other than 1 (buy) or 2 (sell).
    #[error("malformed trade frame")]
    Malformed,
    /// The agreement's version is not [`TRADE_WIRE_VERSION`].
    #[error("unsupported trade wire version")]
    BadVersion,
    /// The pair does not parse or is not in canonical spelling.
    #[error("invalid pair in trade frame")]
    BadPair,
    /// An agreement with a zero amount or price, a quote amount other than
    /// `quote_amount(amount, price)`, or a fee rate over [`MAX_TRADE_FEE_RATE`].
    #[error("the agreement's amounts are inconsistent")]
    BadAmounts,
    /// The signature does not verify, or the signer's PeerId does not carry its key; when
    /// signing, the keypair could not sign.
    #[error("signature does not verify")]
    BadSignature,
}

fn reason_text(reason: &str) -> String {
    crate::text::cut_to(reason, MAX_REASON_BYTES)
}

fn id16(bytes: &[u8]) -> Result<[u8; 16], TradeWireError> {
    bytes.try_into().map_err(|_| TradeWireError::Malformed)
}

fn canonical_pair(text: &str) -> Result<Pair, TradeWireError> {
    let pair = Pair::parse(text).map_err(|_| TradeWireError::BadPair)?;
    if pair.to_string() != text {
        return Err(TradeWireError::BadPair);
    }
    Ok(pair)
}

impl Agreement {
    /// Builds the agreement for `amount` of an order, computing the quote amount.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        trade_id: TradeId,
        pair: Pair,
        order_id: OrderId,
        maker: PeerId,
        taker: PeerId,
        maker_side: Side,
        price: Price,
        amount: u64,
        fee_rate: u64,
        now_ms: u64,
    ) -> Option<Agreement> {
        Some(Agreement {
            trade_id,
            pair,
            order_id,
            maker,
            taker,
            maker_side,
            price,
            amount,
            quote_amount: quote_amount(amount, price)?,
            created_at_ms: now_ms,
            expires_at_ms: now_ms + CONFIRM_WINDOW_MS,
            fee_rate,
        })
    }

    /// The protobuf encoding: exactly the bytes both sides sign.
    pub fn encode(&self) -> Vec<u8> {
        wire::Agreement {
            version: TRADE_WIRE_VERSION,
            trade_id: self.trade_id.to_vec(),
            pair: self.pair.to_string(),
            order_id: self.order_id.0.to_vec(),
            maker: self.maker.to_bytes(),
            taker: self.taker.to_bytes(),
            maker_side: match self.maker_side {
                Side::Buy => 1,
                Side::Sell => 2,
            },
            price: self.price.0,
            amount: self.amount,
            quote_amount: self.quote_amount,
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
            fee_rate: self.fee_rate,
        }
        .encode_to_vec()
    }

    /// Decodes an agreement, refusing anything over [`MAX_TRADE_FRAME_BYTES`] before parsing,
    /// then checking the version, the amounts, the ids, the PeerIds, the side and the pair's
    /// spelling. Neither the signatures nor the expiry are checked here.
    pub fn decode(bytes: &[u8]) -> Result<Agreement, TradeWireError> {
        if bytes.len() as u64 > MAX_TRADE_FRAME_BYTES {
            return Err(TradeWireError::TooLarge(bytes.len()));
        }
        let w = wire::Agreement::decode(bytes).map_err(|_| TradeWireError::Malformed)?;
        if w.version != TRADE_WIRE_VERSION {
            return Err(TradeWireError::BadVersion);
        }
        let price = Price(w.price);
        if w.amount == 0
            || w.price == 0
            || quote_amount(w.amount, price) != Some(w.quote_amount)
            || w.fee_rate > MAX_TRADE_FEE_RATE
        {
            return Err(TradeWireError::BadAmounts);
        }
        Ok(Agreement {
            trade_id: id16(&w.trade_id)?,
            pair: canonical_pair(&w.pair)?,
            order_id: OrderId(id16(&w.order_id)?),
            maker: PeerId::from_bytes(&w.maker).map_err(|_| TradeWireError::Malformed)?,
            taker: PeerId::from_bytes(&w.taker).map_err(|_| TradeWireError::Malformed)?,
            maker_side: match w.maker_side {
                1 => Side::Buy,
                2 => Side::Sell,
                _ => return Err(TradeWireError::Malformed),
            },
            price,
            amount: w.amount,
            quote_amount: w.quote_amount,
            created_at_ms: w.created_at_ms,
            expires_at_ms: w.expires_at_ms,
            fee_rate: w.fee_rate,
        })
    }

    fn signed_bytes(encoded: &[u8]) -> Vec<u8> {
        let mut bytes = AGREEMENT_SIGNING_DOMAIN.to_vec();
        bytes.extend_from_slice(encoded);
        bytes
    }

    /// Signs an encoded agreement.
    pub fn sign(encoded: &[u8], key: &Keypair) -> Result<Vec<u8>, TradeWireError> {
        key.sign(&Self::signed_bytes(encoded))
            .map_err(|_| TradeWireError::BadSignature)
    }

    /// Checks `signature` over an encoded agreement by `signer`, whose public key is derived
    /// from its PeerId (ed25519 PeerIds embed the key).
    pub fn verify(encoded: &[u8], signer: &PeerId, signature: &[u8]) -> Result<(), TradeWireError> {
        let key = public_key_of(signer).ok_or(TradeWireError::BadSignature)?;
        if key.verify(&Self::signed_bytes(encoded), signature) {
            Ok(())
        } else {
            Err(TradeWireError::BadSignature)
        }
    }
}

/// The public key inside an identity-multihash PeerId (ed25519 keys are small enough to be
/// inlined, which is what every DarkSwap peer uses). `None` for hashed PeerIds.
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != 0 {
        return None;
    }
    PublicKey::try_decode_protobuf(multihash.digest()).ok()
}

impl TradeRequest {
    /// The protobuf encoding; an abort's reason is cut to [`MAX_REASON_BYTES`].
    pub fn encode(&self) -> Vec<u8> {
        use wire::request::Kind;
        let kind = match self {
            TradeRequest::Take {
                trade_id,
                order_id,
                pair,
                amount,
                fee_rate,
                settle,
            } => Kind::Take(wire::Take {
                trade_id: trade_id.to_vec(),
                order_id: order_id.0.to_vec(),
                pair: pair.to_string(),
                amount: *amount,
                fee_rate: *fee_rate,
                settle: settle.clone(),
            }),
            TradeRequest::Confirm {
                trade_id,
                taker_signature,
            } => Kind::Confirm(wire::Confirm {
                trade_id: trade_id.to_vec(),
                taker_signature: taker_signature.clone(),
            }),
            TradeRequest::Abort { trade_id, reason } => Kind::Abort(wire::Abort {
                trade_id: trade_id.to_vec(),
                reason: reason_text(reason),
            }),
            TradeRequest::Settle { trade_id, message } => Kind::Settle(wire::Settle {
                trade_id: trade_id.to_vec(),
                message: message.clone(),
            }),
        };
        wire::Request { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes a request, refusing anything over [`MAX_TRADE_FRAME_BYTES`] before parsing.
    pub fn decode(bytes: &[u8]) -> Result<Self, TradeWireError> {
        use wire::request::Kind;
        if bytes.len() as u64 > MAX_TRADE_FRAME_BYTES {
            return Err(TradeWireError::TooLarge(bytes.len()));
        }
        let w = wire::Request::decode(bytes).map_err(|_| TradeWireError::Malformed)?;
        Ok(match w.kind.ok_or(TradeWireError::Malformed)? {
            Kind::Take(t) => TradeRequest::Take {
                trade_id: id16(&t.trade_id)?,
                order_id: OrderId(id16(&t.order_id)?),
                pair: canonical_pair(&t.pair)?,
                amount: t.amount,
                fee_rate: t.fee_rate,
                settle: t.settle,
            },
            Kind::Confirm(c) => TradeRequest::Confirm {
                trade_id: id16(&c.trade_id)?,
                taker_signature: c.taker_signature,
            },
            Kind::Abort(a) => TradeRequest::Abort {
                trade_id: id16(&a.trade_id)?,
                reason: reason_text(&a.reason),
            },
            Kind::Settle(m) => TradeRequest::Settle {
                trade_id: id16(&m.trade_id)?,
                message: m.message,
            },
        })
    }
}

impl TradeResponse {
    /// The protobuf encoding; a rejection's reason is cut to [`MAX_REASON_BYTES`].
    pub fn encode(&self) -> Vec<u8> {
        use wire::response::Kind;
        let kind = match self {
            TradeResponse::Accepted {
                agreement,
                maker_signature,
            } => Kind::Accepted(wire::Accepted {
                agreement: agreement.clone(),
                maker_signature: maker_signature.clone(),
            }),
            TradeResponse::Rejected { reason } => Kind::Rejected(reason_text(reason)),
            TradeResponse::Done { trade_id } => Kind::Done(trade_id.to_vec()),
            TradeResponse::Aborted { trade_id } => Kind::Aborted(trade_id.to_vec()),
            TradeResponse::Settled { trade_id } => Kind::Settled(trade_id.to_vec()),
        };
        wire::Response { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes a response, refusing anything over [`MAX_TRADE_FRAME_BYTES`] before parsing. An
    /// accepted agreement is left encoded, for [`Agreement::decode`] and [`Agreement::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Self, TradeWireError> {
        use wire::response::Kind;
        if bytes.len() as u64 > MAX_TRADE_FRAME_BYTES {
            return Err(TradeWireError::TooLarge(bytes.len()));
        }
        let w = wire::Response::decode(bytes).map_err(|_| TradeWireError::Malformed)?;
        Ok(match w.kind.ok_or(TradeWireError::Malformed)? {
            Kind::Accepted(a) => TradeResponse::Accepted {
                agreement: a.agreement,
                maker_signature: a.maker_signature,
            },
            Kind::Rejected(reason) => TradeResponse::Rejected {
                reason: reason_text(&reason),
            },
            Kind::Done(id) => TradeResponse::Done {
                trade_id: id16(&id)?,
            },
            Kind::Aborted(id) => TradeResponse::Aborted {
                trade_id: id16(&id)?,
            },
            Kind::Settled(id) => TradeResponse::Settled {
                trade_id: id16(&id)?,
            },
        })
    }
}

mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Agreement {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub trade_id: Vec<u8>,
        #[prost(string, tag = "3")]
        pub pair: String,
        #[prost(bytes = "vec", tag = "4")]
        pub order_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "5")]
        pub maker: Vec<u8>,
        #[prost(bytes = "vec", tag = "6")]
        pub taker: Vec<u8>,
        #[prost(int32, tag = "7")]
        pub maker_side: i32,
        #[prost(uint64, tag = "8")]
        pub price: u64,
        #[prost(uint64, tag = "9")]
        pub amount: u64,
        #[prost(uint64, tag = "10")]
        pub quote_amount: u64,
        #[prost(uint64, tag = "11")]
        pub created_at_ms: u64,
        #[prost(uint64, tag = "12")]
        pub expires_at_ms: u64,
        #[prost(uint64, tag = "13")]
        pub fee_rate: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Take {
        #[prost(bytes = "vec", tag = "1")]
        pub trade_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub order_id: Vec<u8>,
        #[prost(string, tag = "3")]
        pub pair: String,
        #[prost(uint64, tag = "4")]
        pub amount: u64,
        #[prost(uint64, tag = "5")]
        pub fee_rate: u64,
        #[prost(bytes = "vec", tag = "6")]
        pub settle: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Settle {
        #[prost(bytes = "vec", tag = "1")]
        pub trade_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub message: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Confirm {
        #[prost(bytes = "vec", tag = "1")]
        pub trade_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub taker_signature: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Abort {
        #[prost(bytes = "vec", tag = "1")]
        pub trade_id: Vec<u8>,
        #[prost(string, tag = "2")]
        pub reason: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(oneof = "request::Kind", tags = "1, 2, 3, 4")]
        pub kind: Option<request::Kind>,
    }

    pub mod request {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(message, tag = "1")]
            Take(super::Take),
            #[prost(message, tag = "2")]
            Confirm(super::Confirm),
            #[prost(message, tag = "3")]
            Abort(super::Abort),
            #[prost(message, tag = "4")]
            Settle(super::Settle),
        }
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Accepted {
        #[prost(bytes = "vec", tag = "1")]
        pub agreement: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub maker_signature: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Response {
        #[prost(oneof = "response::Kind", tags = "1, 2, 3, 4, 5")]
        pub kind: Option<response::Kind>,
    }

    pub mod response {
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Kind {
            #[prost(message, tag = "1")]
            Accepted(super::Accepted),
            #[prost(string, tag = "2")]
            Rejected(String),
            #[prost(bytes = "vec", tag = "3")]
            Done(Vec<u8>),
            #[prost(bytes = "vec", tag = "4")]
            Aborted(Vec<u8>),
            #[prost(bytes = "vec", tag = "5")]
            Settled(Vec<u8>),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agreement(maker: &Keypair, taker: &Keypair) -> Agreement {
        Agreement::new(
            [7; 16],
            Pair::parse("RUNE:DOG/BTC").unwrap(),
            OrderId([1; 16]),
            maker.public().to_peer_id(),
            taker.public().to_peer_id(),
            Side::Sell,
            Price(150_000_000),
            1_000,
            2,
            1_000_000,
        )
        .unwrap()
    }

    #[test]
    fn the_fee_rate_is_signed_and_capped() {
        let (maker, taker) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let a = agreement(&maker, &taker);
        let encoded = a.encode();
        assert_eq!(Agreement::decode(&encoded).unwrap().fee_rate, 2);
        let sig = Agreement::sign(&encoded, &maker).unwrap();
        let mut dearer = a.clone();
        dearer.fee_rate = 3;
        assert!(Agreement::verify(&dearer.encode(), &a.maker, &sig).is_err());
        dearer.fee_rate = MAX_TRADE_FEE_RATE + 1;
        assert_eq!(
            Agreement::decode(&dearer.encode()),
            Err(TradeWireError::BadAmounts)
        );
    }

    #[test]
    fn both_signatures_bind_the_same_terms() {
        let (maker, taker) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let a = agreement(&maker, &taker);
        assert_eq!(a.quote_amount, 1_500);
        let encoded = a.encode();
        assert_eq!(Agreement::decode(&encoded).unwrap(), a);
        let maker_sig = Agreement::sign(&encoded, &maker).unwrap();
        let taker_sig = Agreement::sign(&encoded, &taker).unwrap();
        assert!(Agreement::verify(&encoded, &a.maker, &maker_sig).is_ok());
        assert!(Agreement::verify(&encoded, &a.taker, &taker_sig).is_ok());
        assert!(Agreement::verify(&encoded, &a.taker, &maker_sig).is_err());
        let mut changed = a.clone();
        changed.amount = 999;
        changed.quote_amount = quote_amount(999, changed.price).unwrap();
        assert!(Agreement::verify(&changed.encode(), &a.maker, &maker_sig).is_err());
    }

    #[test]
    fn inconsistent_amounts_are_refused() {
        let (maker, taker) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut a = agreement(&maker, &taker);
        a.quote_amount += 1;
        assert_eq!(
            Agreement::decode(&a.encode()),
            Err(TradeWireError::BadAmounts)
        );
    }

    #[test]
    fn messages_round_trip_and_reasons_are_capped() {
        let take = TradeRequest::Take {
            trade_id: [1; 16],
            order_id: OrderId([2; 16]),
            pair: Pair::parse("BTC/USDT").unwrap(),
            amount: 5,
            fee_rate: 3,
            settle: vec![9; 8000],
        };
        assert_eq!(TradeRequest::decode(&take.encode()).unwrap(), take);
        let settle = TradeRequest::Settle {
            trade_id: [4; 16],
            message: crate::settle::SettleMessage::Signed(vec![
                1;
                crate::settle::MAX_SWAP_TX_BYTES
            ])
            .encode(),
        };
        assert_eq!(TradeRequest::decode(&settle.encode()).unwrap(), settle);
        let abort = TradeRequest::Abort {
            trade_id: [1; 16],
            reason: "é".repeat(300),
        };
        match TradeRequest::decode(&abort.encode()).unwrap() {
            TradeRequest::Abort { reason, .. } => assert!(reason.len() <= MAX_REASON_BYTES),
            other => panic!("{other:?}"),
        }
        for response in [
            TradeResponse::Rejected {
                reason: "sold out".into(),
            },
            TradeResponse::Done { trade_id: [3; 16] },
            TradeResponse::Settled { trade_id: [5; 16] },
            TradeResponse::Accepted {
                agreement: vec![1, 2],
                maker_signature: vec![3],
            },
        ] {
            assert_eq!(TradeResponse::decode(&response.encode()).unwrap(), response);
        }
        assert!(TradeRequest::decode(&vec![0u8; MAX_TRADE_FRAME_BYTES as usize + 1]).is_err());
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn random_frames_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10_000)) {
            let _ = TradeRequest::decode(&bytes);
            let _ = TradeResponse::decode(&bytes);
            let _ = Agreement::decode(&bytes);
        }
    }
}
