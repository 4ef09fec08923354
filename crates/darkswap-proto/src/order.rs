//! Order gossip: signed order, cancel and keep-alive messages, one gossip topic per pair.
//!
//! Encoding is protobuf (prost), so a client in any language can join. The schema, for a
//! non-Rust implementation:
//!
//! ```proto
//! message SignedOrderMessage {      // the gossip payload, at most MAX_ORDER_MESSAGE_BYTES
//!   bytes public_key = 1;           // the maker's libp2p public key (protobuf-encoded, ed25519)
//!   bytes body = 2;                 // an encoded OrderBody, exactly the bytes signed
//!   bytes signature = 3;            // sign(ORDER_SIGNING_DOMAIN || body) with the maker's key
//! }
//! message OrderBody {
//!   uint32 version = 1;             // ORDER_WIRE_VERSION
//!   string pair = 2;                // canonical "BASE/QUOTE"; must match the topic
//!   uint64 seq = 3;                 // strictly increasing per maker and pair
//!   uint64 sent_at_ms = 4;          // maker's clock, checked against MAX_CLOCK_SKEW_MS
//!   oneof kind { Order order = 5; Cancel cancel = 6; KeepAlive keep_alive = 7; }
//! }
//! message Order { uint64 nonce = 1; int32 side = 2; /* 1 buy, 2 sell */ uint64 price = 3;
//!   uint64 amount = 4; uint64 min_fill = 5; uint64 expires_at_ms = 6; }
//! message Cancel { bytes order_id = 1; bool filled = 2; }
//! message KeepAlive { bytes digest = 1; uint32 live_orders = 2; }
//! ```
//!
//! Every message is in its one canonical encoding (prost's: fields in tag order, each once, empty
//! fields left out, no unknown fields; the same for the key inside it). The signature covers the
//! body only, so a re-encoded envelope would otherwise verify yet look new to gossip's duplicate
//! detection, which hashes the bytes; receivers refuse it as [`OrderReject::NonCanonical`].
//!
//! Why it is safe to gossip: the signature covers the exact body bytes (no canonicalisation
//! question), the order id is derived from the maker's PeerId and a nonce (so no one can squat or
//! cancel another maker's id), and the sequence number makes replays and reordering harmless:
//! a receiver ignores anything not newer than what it already has from that maker on that pair.
//! Re-publishing an order with the same nonce and a smaller amount is how a maker announces what
//! is left after a trade.

use darkswap_orderbook::{quote_amount, OrderId, Pair, PairUnits, Price, Side, UnitsError};
use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message as _;
use sha2::{Digest, Sha256};

/// Version of the order wire format carried in every body.
pub const ORDER_WIRE_VERSION: u32 = 1;
/// Cap on one signed order message: a body is ~100 bytes, a key 36, a signature 64.
pub const MAX_ORDER_MESSAGE_BYTES: usize = 1024;
/// Prefix of every signed body, so an order signature can never be replayed as anything else.
pub const ORDER_SIGNING_DOMAIN: &[u8] = b"darkswap/order-message/1\0";
/// How far a message's `sent_at_ms` may be from the receiver's clock.
pub const MAX_CLOCK_SKEW_MS: u64 = 30_000;
/// Longest order lifetime accepted: a week; longer-lived orders are ghosts waiting to happen.
pub const MAX_ORDER_LIFETIME_MS: u64 = 7 * 24 * 3600 * 1000;
/// Shortest order lifetime accepted: less cannot propagate and be taken.
pub const MIN_ORDER_LIFETIME_MS: u64 = 10_000;

/// Gossip topic of a pair's order messages.
pub fn order_topic(pair: &Pair) -> String {
    format!("darkswap/orders/1/{}-{}", pair.base, pair.quote)
}

/// The pair a topic carries, if it is a canonical order topic.
pub fn parse_order_topic(topic: &str) -> Option<Pair> {
    let rest = topic.strip_prefix("darkswap/orders/1/")?;
    let (base, quote) = rest.split_once('-')?;
    let pair = Pair::parse(&format!("{base}/{quote}")).ok()?;
    (order_topic(&pair) == topic).then_some(pair)
}

/// An order id: the first 16 bytes of SHA-256(domain, maker PeerId, nonce).
pub fn order_id(maker: &PeerId, nonce: u64) -> OrderId {
    let mut hash = Sha256::new();
    hash.update(b"darkswap/order-id/1\0");
    hash.update(maker.to_bytes());
    hash.update(nonce.to_be_bytes());
    let digest = hash.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    OrderId(id)
}

/// Digest of a maker's live orders on a pair, carried in keep-alives: SHA-256 over the
/// (id, amount) pairs sorted by id. Two peers that agree on the digest agree on the orders.
pub fn live_orders_digest(orders: &mut [(OrderId, u64)]) -> [u8; 32] {
    orders.sort_unstable();
    let mut hash = Sha256::new();
    hash.update(b"darkswap/live-orders/1\0");
    for (id, amount) in orders.iter() {
        hash.update(id.0);
        hash.update(amount.to_be_bytes());
    }
    hash.finalize().into()
}

/// The order a maker publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderSpec {
    /// Chosen by the maker; with the maker's PeerId it makes the order id ([`order_id`]).
    /// Re-publishing with the same nonce updates that order.
    pub nonce: u64,
    /// Whether the maker buys or sells the base asset.
    pub side: Side,
    /// Quote units per [`PRICE_SCALE`](darkswap_orderbook::PRICE_SCALE) base units; never zero in
    /// a valid order.
    pub price: Price,
    /// What is left to trade, in base units.
    pub amount: u64,
    /// Smallest amount one fill may take, in base units (0 for any); never above `amount` in a
    /// valid order.
    pub min_fill: u64,
    /// Milliseconds since the Unix epoch after which the order is dead: at least
    /// [`MIN_ORDER_LIFETIME_MS`] ahead when published, at most [`MAX_ORDER_LIFETIME_MS`] after the
    /// message's `sent_at_ms`.
    pub expires_at_ms: u64,
}

/// An order as a trader types it, in the CLI or the web form.
#[derive(Debug, Clone, Default)]
pub struct OrderInput<'a> {
    /// `buy` or `sell`.
    pub side: &'a str,
    /// The amount of the base asset.
    pub amount: &'a str,
    /// Quote per base.
    pub price: &'a str,
    /// The smallest fill, of the base asset; empty for any.
    pub min_fill: &'a str,
    /// Lifetime in seconds.
    pub ttl_secs: &'a str,
}

/// What is wrong with a typed order, in words a trader understands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderInputError {
    /// The side is neither `buy` nor `sell` (the text as typed, trimmed).
    #[error("side must be buy or sell, not {0:?}")]
    Side(String),
    /// The amount does not read in the base asset's unit.
    #[error("amount: {0}")]
    Amount(UnitsError),
    /// The amount is zero.
    #[error("amount must be greater than zero")]
    ZeroAmount,
    /// The price does not read in the pair's price unit, or is zero.
    #[error("price: {0}")]
    Price(UnitsError),
    /// The quote amount (amount × price) does not fit in 64 bits.
    #[error("amount × price is too large")]
    TooLarge,
    /// The minimum fill is neither empty nor an amount in the base asset's unit.
    #[error("minimum fill: {0}")]
    MinFill(UnitsError),
    /// The minimum fill is above the amount.
    #[error("minimum fill cannot exceed the amount")]
    MinFillAboveAmount,
    /// The lifetime is not a whole number of seconds.
    #[error("expiry: a whole number of seconds")]
    Expiry,
    /// The lifetime is shorter than [`MIN_ORDER_LIFETIME_MS`] or longer than
    /// [`MAX_ORDER_LIFETIME_MS`].
    #[error(
        "expiry must be between {} seconds and {} days",
        MIN_ORDER_LIFETIME_MS / 1000,
        MAX_ORDER_LIFETIME_MS / 86_400_000
    )]
    ExpiryRange,
}

impl OrderInput<'_> {
    /// Checks what was typed, in smallest units (whole base units, a price of quote units per
    /// base unit with at most 8 decimals), with the rules every relay applies.
    pub fn parse(&self, pair: &Pair, now_ms: u64) -> Result<OrderSpec, OrderInputError> {
        self.parse_in(&PairUnits::smallest(pair), now_ms)
    }

    /// Checks what was typed in `units` (amounts in the base's display unit, the price in quote
    /// per base display units) with the rules every relay applies, and says what is wrong in
    /// words a trader understands. The nonce is left at 0 for the node to choose.
    pub fn parse_in(&self, units: &PairUnits, now_ms: u64) -> Result<OrderSpec, OrderInputError> {
        let side = match self.side.trim() {
            "buy" => Side::Buy,
            "sell" => Side::Sell,
            other => return Err(OrderInputError::Side(other.to_string())),
        };
        let amount = units
            .base
            .read(self.amount)
            .map_err(OrderInputError::Amount)?;
        if amount == 0 {
            return Err(OrderInputError::ZeroAmount);
        }
        let price = units
            .read_price(self.price)
            .map_err(OrderInputError::Price)?;
        if quote_amount(amount, price).is_none() {
            return Err(OrderInputError::TooLarge);
        }
        let min_fill = match self.min_fill.trim() {
            "" => 0,
            text => units.base.read(text).map_err(OrderInputError::MinFill)?,
        };
        if min_fill > amount {
            return Err(OrderInputError::MinFillAboveAmount);
        }
        let ttl_ms = self
            .ttl_secs
            .trim()
            .parse::<u64>()
            .map_err(|_| OrderInputError::Expiry)?
            .saturating_mul(1000);
        if !(MIN_ORDER_LIFETIME_MS..=MAX_ORDER_LIFETIME_MS).contains(&ttl_ms) {
            return Err(OrderInputError::ExpiryRange);
        }
        Ok(OrderSpec {
            nonce: 0,
            side,
            price,
            amount,
            min_fill,
            expires_at_ms: now_ms + ttl_ms,
        })
    }
}

/// What a message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderAction {
    /// Publishes an order, or re-publishes it (same nonce and terms) with the smaller amount
    /// left after a fill.
    Order(OrderSpec),
    /// Withdraws one of the maker's own orders.
    Cancel {
        /// The order withdrawn; relays refuse a cancel of another maker's order.
        order_id: OrderId,
        /// The order left because a trade took all that was left of it (the maker's word,
        /// signed like the order): books count what they last held of it as traded at its
        /// price. False for a cancel.
        filled: bool,
    },
    /// Says the maker is still there and what it has live on the pair, so that a peer whose
    /// copy differs can fetch the maker's orders again.
    KeepAlive {
        /// [`live_orders_digest`] of the maker's live orders on the pair.
        digest: [u8; 32],
        /// How many orders the maker has live on the pair.
        live_orders: u32,
    },
}

impl OrderAction {
    /// Label used in metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            OrderAction::Order(_) => "order",
            OrderAction::Cancel { .. } => "cancel",
            OrderAction::KeepAlive { .. } => "keep_alive",
        }
    }
}

/// A message body, before signing or after verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBody {
    /// The pair, in canonical spelling; it must match the topic the message arrives on.
    pub pair: Pair,
    /// Strictly increasing per maker and pair: a receiver ignores a message whose `seq` is not
    /// above the last one it took from that maker on that pair.
    pub seq: u64,
    /// The maker's clock when signing, milliseconds since the Unix epoch; checked against
    /// [`MAX_CLOCK_SKEW_MS`].
    pub sent_at_ms: u64,
    /// What the message says.
    pub action: OrderAction,
}

/// A message whose signature, schema and time bounds have been checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOrderMessage {
    /// The signer: the PeerId of the public key carried in the message.
    pub maker: PeerId,
    /// The verified body.
    pub body: OrderBody,
    /// The signed bytes as received, to forward or serve in a snapshot unchanged.
    pub raw: Vec<u8>,
}

impl VerifiedOrderMessage {
    /// The id of the order an `Order` message publishes, or a `Cancel` names.
    pub fn order_id(&self) -> Option<OrderId> {
        match &self.body.action {
            OrderAction::Order(spec) => Some(order_id(&self.maker, spec.nonce)),
            OrderAction::Cancel { order_id, .. } => Some(*order_id),
            OrderAction::KeepAlive { .. } => None,
        }
    }
}

/// Why an order message is refused. `as_str` is the metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum OrderReject {
    /// The message is over [`MAX_ORDER_MESSAGE_BYTES`] (checked before parsing, and after
    /// signing).
    #[error("message larger than {MAX_ORDER_MESSAGE_BYTES} bytes")]
    TooLarge,
    /// Not a signed order message: bad protobuf, no action, a side other than 1 (buy) or 2
    /// (sell), or an order id or digest of the wrong length. Also a cancel or keep-alive served
    /// as a stored order.
    #[error("message is not a valid signed order message")]
    Malformed,
    /// The body's version is not [`ORDER_WIRE_VERSION`].
    #[error("unsupported order wire version")]
    BadVersion,
    /// The public key does not decode (ed25519 is the only key type built in); when signing,
    /// the keypair could not sign.
    #[error("the public key is not a valid ed25519 key")]
    BadKey,
    /// The signature does not verify under the message's key over [`ORDER_SIGNING_DOMAIN`]
    /// followed by the body.
    #[error("the signature does not match the maker's key")]
    BadSignature,
    /// The pair does not parse, is not in canonical spelling, or is not the topic's pair.
    #[error("the pair is invalid or does not match the topic")]
    BadPair,
    /// An order with a zero amount or price, a minimum fill above its amount, or an
    /// amount × price that does not fit in 64 bits.
    #[error(
        "the order is invalid (zero amount or price, minimum fill above amount, or quote overflow)"
    )]
    BadOrder,
    /// An order that expires less than [`MIN_ORDER_LIFETIME_MS`] from now ([`Freshness::Live`])
    /// or has already expired ([`Freshness::Stored`]).
    #[error("the order has expired or lives shorter than the minimum")]
    Expired,
    /// An order that expires more than [`MAX_ORDER_LIFETIME_MS`] after its `sent_at_ms`.
    #[error("the order lives longer than the maximum")]
    LifetimeTooLong,
    /// `sent_at_ms` is more than [`MAX_CLOCK_SKEW_MS`] from the receiver's clock
    /// ([`Freshness::Live`]), or that far ahead of it ([`Freshness::Stored`]).
    #[error("the sender's clock is too far from ours")]
    ClockSkew,
    /// The message's `seq` is not above the last one taken from this maker on this pair.
    #[error("not newer than a message already seen from this maker")]
    Replay,
    /// The order's id was cancelled (cancelled ids are remembered until the order's expiry).
    #[error("the order was cancelled")]
    Cancelled,
    /// A new order from a maker that already has as many live orders as the relay allows.
    #[error("the maker has too many live orders")]
    OverCap,
    /// The maker, or the peer that passed the message on, sends order messages faster than
    /// allowed.
    #[error("the maker publishes too fast")]
    RateLimited,
    /// A cancel of another maker's order, or a re-publish that changes an order's terms (side,
    /// price, minimum fill, expiry) or raises its amount.
    #[error("a different order already has this id")]
    Conflict,
    /// A cap on what is held was reached: makers tracked, pairs, or orders in one book.
    #[error("the book is full")]
    BookFull,
    /// The peer the message came from is below the level that publishing orders needs.
    #[error("the peer is not allowed to publish")]
    Unauthorized,
    /// The envelope or the key in it is not in its one canonical encoding: a copy of a
    /// message re-encoded to get past duplicate detection (the signature covers the body only).
    #[error("the message is not canonically encoded")]
    NonCanonical,
    /// A message signed by another key than the publishing trader's own: a trader connected to
    /// a relay publishes only its own orders (peer relays forward others').
    #[error("a trader may publish only its own orders")]
    NotOwn,
    /// The makers connected from the publisher's address hold as many live orders as the relay
    /// allows one address.
    #[error("too many live orders from this address")]
    AddressOverCap,
    /// A new pair for the makers connected from the publisher's address, who already hold
    /// orders on as many pairs as the relay allows one address.
    #[error("orders on too many pairs from this address")]
    AddressPairsOverCap,
    /// The first order on a pair, from a peer the relay does not let open pairs (its operator
    /// lets only trusted peers).
    #[error("this relay lets only trusted peers open a pair")]
    OpenPairRefused,
}

impl OrderReject {
    /// Every reason, in declaration order (to list every metric label up front).
    pub const ALL: [OrderReject; 22] = [
        OrderReject::TooLarge,
        OrderReject::Malformed,
        OrderReject::BadVersion,
        OrderReject::BadKey,
        OrderReject::BadSignature,
        OrderReject::BadPair,
        OrderReject::BadOrder,
        OrderReject::Expired,
        OrderReject::LifetimeTooLong,
        OrderReject::ClockSkew,
        OrderReject::Replay,
        OrderReject::Cancelled,
        OrderReject::OverCap,
        OrderReject::RateLimited,
        OrderReject::Conflict,
        OrderReject::BookFull,
        OrderReject::Unauthorized,
        OrderReject::NonCanonical,
        OrderReject::NotOwn,
        OrderReject::AddressOverCap,
        OrderReject::AddressPairsOverCap,
        OrderReject::OpenPairRefused,
    ];

    /// Its metric label, in snake case (`too_large`, `bad_signature`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            OrderReject::TooLarge => "too_large",
            OrderReject::Malformed => "malformed",
            OrderReject::BadVersion => "bad_version",
            OrderReject::BadKey => "bad_key",
            OrderReject::BadSignature => "bad_signature",
            OrderReject::BadPair => "bad_pair",
            OrderReject::BadOrder => "bad_order",
            OrderReject::Expired => "expired",
            OrderReject::LifetimeTooLong => "lifetime_too_long",
            OrderReject::ClockSkew => "clock_skew",
            OrderReject::Replay => "replay",
            OrderReject::Cancelled => "cancelled",
            OrderReject::OverCap => "over_cap",
            OrderReject::RateLimited => "rate_limited",
            OrderReject::Conflict => "conflict",
            OrderReject::BookFull => "book_full",
            OrderReject::Unauthorized => "unauthorized",
            OrderReject::NonCanonical => "non_canonical",
            OrderReject::NotOwn => "not_own",
            OrderReject::AddressOverCap => "address_over_cap",
            OrderReject::AddressPairsOverCap => "address_pairs_over_cap",
            OrderReject::OpenPairRefused => "open_pair_refused",
        }
    }
}

/// Signs and encodes a body with the maker's key. The body is validated first, so a client
/// cannot publish what every relay would refuse.
pub fn sign_order_message(
    keypair: &Keypair,
    body: &OrderBody,
    now_ms: u64,
) -> Result<Vec<u8>, OrderReject> {
    check_body(body, Freshness::Live, now_ms)?;
    let body_bytes = wire::Body::from_domain(body).encode_to_vec();
    let signature = keypair
        .sign(&signing_input(&body_bytes))
        .map_err(|_| OrderReject::BadKey)?;
    let message = wire::Signed {
        public_key: keypair.public().encode_protobuf(),
        body: body_bytes,
        signature,
    };
    let bytes = message.encode_to_vec();
    if bytes.len() > MAX_ORDER_MESSAGE_BYTES {
        return Err(OrderReject::TooLarge);
    }
    Ok(bytes)
}

/// How recent a message must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Just published on gossip: `sent_at_ms` within [`MAX_CLOCK_SKEW_MS`] of our clock, which
    /// bounds how long a captured message can be replayed.
    Live,
    /// Served from a store (a book snapshot): it may be old, but never from the future, and an
    /// order in it must not have expired.
    Stored,
}

/// Decodes and verifies a message: size cap first, then schema, signature, and the stateless
/// rules (pair matches `expected_pair` when given, order sanity, time bounds).
pub fn verify_order_message(
    bytes: &[u8],
    expected_pair: Option<&Pair>,
    freshness: Freshness,
    now_ms: u64,
) -> Result<VerifiedOrderMessage, OrderReject> {
    let signed = decode_signed(bytes)?;
    let public_key =
        PublicKey::try_decode_protobuf(&signed.public_key).map_err(|_| OrderReject::BadKey)?;
    if public_key.encode_protobuf() != signed.public_key {
        return Err(OrderReject::NonCanonical);
    }
    if !public_key.verify(&signing_input(&signed.body), &signed.signature) {
        return Err(OrderReject::BadSignature);
    }
    check_signed_body(
        &signed.body,
        public_key.to_peer_id(),
        bytes,
        expected_pair,
        freshness,
        now_ms,
    )
}

/// The first step of verifying: the size cap, then the envelope's schema and its canonical
/// encoding. The signature covers the body, not the envelope, so without this check anyone could
/// re-encode a maker's message (an unknown field added, fields reordered or repeated) into bytes
/// that still verify but that gossip's duplicate detection, which hashes the bytes, takes for new.
pub(crate) fn decode_signed(bytes: &[u8]) -> Result<wire::Signed, OrderReject> {
    if bytes.len() > MAX_ORDER_MESSAGE_BYTES {
        return Err(OrderReject::TooLarge);
    }
    let signed = wire::Signed::decode(bytes).map_err(|_| OrderReject::Malformed)?;
    if signed.encoded_len() != bytes.len() || signed.encode_to_vec() != bytes {
        return Err(OrderReject::NonCanonical);
    }
    Ok(signed)
}

/// What a maker signs: the domain, then the body's bytes.
pub(crate) fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(ORDER_SIGNING_DOMAIN.len() + body.len());
    message.extend_from_slice(ORDER_SIGNING_DOMAIN);
    message.extend_from_slice(body);
    message
}

/// The last step, once `maker`'s signature over `body` has been checked: the body's schema
/// and the stateless rules.
pub(crate) fn check_signed_body(
    body: &[u8],
    maker: PeerId,
    raw: &[u8],
    expected_pair: Option<&Pair>,
    freshness: Freshness,
    now_ms: u64,
) -> Result<VerifiedOrderMessage, OrderReject> {
    let body = wire::Body::decode(body)
        .map_err(|_| OrderReject::Malformed)?
        .into_domain()?;
    if expected_pair.is_some_and(|p| *p != body.pair) {
        return Err(OrderReject::BadPair);
    }
    check_body(&body, freshness, now_ms)?;
    Ok(VerifiedOrderMessage {
        maker,
        body,
        raw: raw.to_vec(),
    })
}

fn check_body(body: &OrderBody, freshness: Freshness, now_ms: u64) -> Result<(), OrderReject> {
    let skewed = match freshness {
        Freshness::Live => body.sent_at_ms.abs_diff(now_ms) > MAX_CLOCK_SKEW_MS,
        Freshness::Stored => body.sent_at_ms > now_ms.saturating_add(MAX_CLOCK_SKEW_MS),
    };
    if skewed {
        return Err(OrderReject::ClockSkew);
    }
    if let OrderAction::Order(spec) = &body.action {
        if spec.amount == 0
            || spec.price.0 == 0
            || spec.min_fill > spec.amount
            || quote_amount(spec.amount, spec.price).is_none()
        {
            return Err(OrderReject::BadOrder);
        }
        let min_expiry = match freshness {
            Freshness::Live => now_ms.saturating_add(MIN_ORDER_LIFETIME_MS),
            Freshness::Stored => now_ms.saturating_add(1),
        };
        if spec.expires_at_ms < min_expiry {
            return Err(OrderReject::Expired);
        }
        if spec.expires_at_ms > body.sent_at_ms.saturating_add(MAX_ORDER_LIFETIME_MS) {
            return Err(OrderReject::LifetimeTooLong);
        }
    }
    Ok(())
}

/// The protobuf structs, kept private: the rest of the code sees only validated domain types.
pub(crate) mod wire {
    use super::*;

    /// The envelope of every signed message: a key, the exact bytes signed, the signature.
    /// Relay records travel in the same one.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Signed {
        #[prost(bytes = "vec", tag = "1")]
        pub public_key: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub body: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub signature: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Body {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(string, tag = "2")]
        pub pair: String,
        #[prost(uint64, tag = "3")]
        pub seq: u64,
        #[prost(uint64, tag = "4")]
        pub sent_at_ms: u64,
        #[prost(oneof = "Kind", tags = "5, 6, 7")]
        pub kind: Option<Kind>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Kind {
        #[prost(message, tag = "5")]
        Order(Order),
        #[prost(message, tag = "6")]
        Cancel(Cancel),
        #[prost(message, tag = "7")]
        KeepAlive(KeepAlive),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Order {
        #[prost(uint64, tag = "1")]
        pub nonce: u64,
        #[prost(int32, tag = "2")]
        pub side: i32,
        #[prost(uint64, tag = "3")]
        pub price: u64,
        #[prost(uint64, tag = "4")]
        pub amount: u64,
        #[prost(uint64, tag = "5")]
        pub min_fill: u64,
        #[prost(uint64, tag = "6")]
        pub expires_at_ms: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Cancel {
        #[prost(bytes = "vec", tag = "1")]
        pub order_id: Vec<u8>,
        #[prost(bool, tag = "2")]
        pub filled: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeepAlive {
        #[prost(bytes = "vec", tag = "1")]
        pub digest: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub live_orders: u32,
    }

    impl Body {
        pub fn from_domain(body: &OrderBody) -> Self {
            let kind = match &body.action {
                OrderAction::Order(spec) => Kind::Order(Order {
                    nonce: spec.nonce,
                    side: match spec.side {
                        Side::Buy => 1,
                        Side::Sell => 2,
                    },
                    price: spec.price.0,
                    amount: spec.amount,
                    min_fill: spec.min_fill,
                    expires_at_ms: spec.expires_at_ms,
                }),
                OrderAction::Cancel { order_id, filled } => Kind::Cancel(Cancel {
                    order_id: order_id.0.to_vec(),
                    filled: *filled,
                }),
                OrderAction::KeepAlive {
                    digest,
                    live_orders,
                } => Kind::KeepAlive(KeepAlive {
                    digest: digest.to_vec(),
                    live_orders: *live_orders,
                }),
            };
            Body {
                version: ORDER_WIRE_VERSION,
                pair: body.pair.to_string(),
                seq: body.seq,
                sent_at_ms: body.sent_at_ms,
                kind: Some(kind),
            }
        }

        pub fn into_domain(self) -> Result<OrderBody, OrderReject> {
            if self.version != ORDER_WIRE_VERSION {
                return Err(OrderReject::BadVersion);
            }
            let pair = Pair::parse(&self.pair).map_err(|_| OrderReject::BadPair)?;
            // Only the canonical spelling is accepted, so one pair has one topic and one book.
            if pair.to_string() != self.pair {
                return Err(OrderReject::BadPair);
            }
            let action = match self.kind.ok_or(OrderReject::Malformed)? {
                Kind::Order(o) => OrderAction::Order(OrderSpec {
                    nonce: o.nonce,
                    side: match o.side {
                        1 => Side::Buy,
                        2 => Side::Sell,
                        _ => return Err(OrderReject::Malformed),
                    },
                    price: Price(o.price),
                    amount: o.amount,
                    min_fill: o.min_fill,
                    expires_at_ms: o.expires_at_ms,
                }),
                Kind::Cancel(c) => OrderAction::Cancel {
                    order_id: OrderId(
                        c.order_id
                            .as_slice()
                            .try_into()
                            .map_err(|_| OrderReject::Malformed)?,
                    ),
                    filled: c.filled,
                },
                Kind::KeepAlive(k) => OrderAction::KeepAlive {
                    digest: k
                        .digest
                        .as_slice()
                        .try_into()
                        .map_err(|_| OrderReject::Malformed)?,
                    live_orders: k.live_orders,
                },
            };
            Ok(OrderBody {
                pair,
                seq: self.seq,
                sent_at_ms: self.sent_at_ms,
                action,
            })
        }
    }
}

#[cfg(test)]
mod tests;
