//! Relay records: what a relay says of itself, signed with its identity key, and
//! `/darkswap/relay-records/1`, by which relays (and, next, pages and the CLI) ask a relay for
//! the records it knows.
//!
//! ```proto
//! message SignedRelayRecord {       // at most MAX_RELAY_RECORD_BYTES
//!   bytes public_key = 1;           // the relay's libp2p public key (protobuf-encoded)
//!   bytes body = 2;                 // an encoded RelayRecordBody, exactly the bytes signed
//!   bytes signature = 3;            // sign(RELAY_RECORD_SIGNING_DOMAIN || body)
//! }
//! message RelayRecordBody {
//!   uint32 version = 1;             // RELAY_RECORD_WIRE_VERSION
//!   uint64 seq = 2;                 // strictly increasing per relay
//!   uint64 issued_at_ms = 3;        // the relay's clock when it signed
//!   uint64 expires_at_ms = 4;       // at most MAX_RECORD_LIFETIME_MS after issued_at_ms
//!   string name = 5;                // operator-set, at most MAX_RECORD_NAME_BYTES
//!   string region = 6;              // operator-set, at most MAX_RECORD_REGION_BYTES
//!   repeated bytes addrs = 7;       // binary multiaddrs, each ending in /p2p/<the relay>
//!   repeated uint32 auth_methods = 8; // auth::Method wire codes the relay accepts
//!   Limits limits = 9;              // the market limits it enforces per maker
//!   uint32 load_permille = 10;      // reservations held per thousand of its maximum
//! }
//! message Limits { uint32 max_orders_per_maker = 1; uint32 publish_burst = 2;
//!   uint32 publish_per_second = 3; }
//! message RelayRecordsRequest {}
//! message RelayRecordsResponse { repeated bytes records = 1; }  // each a SignedRelayRecord
//! ```
//!
//! A record is checked whole before anything in it is used: the size cap, the envelope's one
//! canonical encoding, the key, the signature, the version, the time bounds and every field.
//! What only a holder of earlier records can judge (a lower sequence number, a full store) is
//! the store's business (`darkswap-relays`).

use libp2p_identity::{Keypair, PeerId, PublicKey};
use multiaddr::{Multiaddr, Protocol};
use prost::Message as _;

use crate::auth::Method;
use crate::limits::AnnouncedLimits;

/// The protocol's name.
pub const RELAY_RECORDS_PROTOCOL: &str = "/darkswap/relay-records/1";
/// Version of the record body.
pub const RELAY_RECORD_WIRE_VERSION: u32 = 1;
/// Prefix of every signed body, so a record signature can never be replayed as anything else.
pub const RELAY_RECORD_SIGNING_DOMAIN: &[u8] = b"darkswap/relay-record/1\0";
/// Cap on one signed record: sixteen addresses of WebRTC-direct size (about 110 bytes with the
/// certhash and PeerId) are under 2,000 bytes with the rest.
pub const MAX_RELAY_RECORD_BYTES: usize = crate::auth::MAX_ANSWER_RECORD_BYTES;
/// Most addresses in one record.
pub const MAX_RECORD_ADDRS: usize = 16;
/// Longest address in one record, binary.
pub const MAX_RECORD_ADDR_BYTES: usize = 200;
/// Longest relay name.
pub const MAX_RECORD_NAME_BYTES: usize = 64;
/// Longest region.
pub const MAX_RECORD_REGION_BYTES: usize = 32;
/// Most auth methods one record lists.
pub const MAX_RECORD_METHODS: usize = 8;
/// Longest life a record may claim: a relay re-signs well before, so a stolen copy of an old
/// record stops being believed within the hour.
pub const MAX_RECORD_LIFETIME_MS: u64 = 3_600_000;
/// How far in the future a record may have been issued (clock skew).
pub const MAX_RECORD_SKEW_MS: u64 = 30_000;
/// Most records one answer carries.
pub const MAX_RECORDS_PER_RESPONSE: usize = 64;
/// Cap on one request (it has no fields).
pub const MAX_RECORDS_REQUEST_BYTES: u64 = 64;
/// Cap on one answer: [`MAX_RECORDS_PER_RESPONSE`] records with their field headers.
pub const MAX_RECORDS_RESPONSE_BYTES: u64 =
    (MAX_RECORDS_PER_RESPONSE * (MAX_RELAY_RECORD_BYTES + 8)) as u64;

mod wire {
    /// The same envelope as an order message's.
    pub use crate::order::wire::Signed;
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Body {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(uint64, tag = "2")]
        pub seq: u64,
        #[prost(uint64, tag = "3")]
        pub issued_at_ms: u64,
        #[prost(uint64, tag = "4")]
        pub expires_at_ms: u64,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(string, tag = "6")]
        pub region: String,
        #[prost(bytes = "vec", repeated, tag = "7")]
        pub addrs: Vec<Vec<u8>>,
        #[prost(uint32, repeated, tag = "8")]
        pub auth_methods: Vec<u32>,
        #[prost(message, optional, tag = "9")]
        pub limits: Option<Limits>,
        #[prost(uint32, tag = "10")]
        pub load_permille: u32,
    }
    #[derive(Clone, Copy, PartialEq, prost::Message)]
    pub struct Limits {
        #[prost(uint32, tag = "1")]
        pub max_orders_per_maker: u32,
        #[prost(uint32, tag = "2")]
        pub publish_burst: u32,
        #[prost(uint32, tag = "3")]
        pub publish_per_second: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Response {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub records: Vec<Vec<u8>>,
    }
}

/// What a relay says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayRecord {
    /// Strictly increasing per relay; a receiver keeps the highest it has seen.
    pub seq: u64,
    /// When the relay signed it (its clock, unix ms).
    pub issued_at_ms: u64,
    /// When it stops being believed (unix ms).
    pub expires_at_ms: u64,
    /// The operator's name for the relay (may be empty).
    pub name: String,
    /// The operator's region for the relay (may be empty).
    pub region: String,
    /// Where it can be dialed, each ending in `/p2p/<the relay>`.
    pub addrs: Vec<Multiaddr>,
    /// The auth methods it accepts.
    pub auth_methods: Vec<Method>,
    /// The market limits it enforces per maker.
    pub limits: Option<AnnouncedLimits>,
    /// Reservations held per thousand of its maximum: a coarse load figure.
    pub load_permille: u16,
}

/// A record that passed every check, with the bytes it arrived as (to pass on unchanged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRelayRecord {
    relay: PeerId,
    record: RelayRecord,
    body: Vec<u8>,
    bytes: Vec<u8>,
}

/// Why bytes are not a record to believe. Every variant has a metrics label
/// ([`RecordError::label`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Longer than [`MAX_RELAY_RECORD_BYTES`]; refused before decoding.
    #[error("relay record of {0} bytes is over the {MAX_RELAY_RECORD_BYTES}-byte cap")]
    TooLarge(usize),
    /// Not protobuf of the record's shape.
    #[error("not a relay record")]
    Malformed,
    /// The envelope or its key is not in its one canonical encoding.
    #[error("relay record is not canonically encoded")]
    NonCanonical,
    /// The key does not decode.
    #[error("relay record carries an unreadable key")]
    BadKey,
    /// The signature does not verify.
    #[error("relay record signature does not verify")]
    BadSignature,
    /// A body version this build does not read.
    #[error("relay record version {0} is not {RELAY_RECORD_WIRE_VERSION}")]
    Version(u32),
    /// Its expiry has passed.
    #[error("relay record expired")]
    Expired,
    /// Issued further in the future than [`MAX_RECORD_SKEW_MS`].
    #[error("relay record is issued in the future")]
    FromTheFuture,
    /// Claims a life longer than [`MAX_RECORD_LIFETIME_MS`], or expires before it is issued.
    #[error("relay record claims a lifetime outside 0..{MAX_RECORD_LIFETIME_MS} ms")]
    Lifetime,
    /// A field is out of bounds (its name).
    #[error("relay record field {0} is out of bounds")]
    Field(&'static str),
    /// An address does not decode or is longer than [`MAX_RECORD_ADDR_BYTES`] (its index).
    #[error("relay record address {0} is not a multiaddr within the cap")]
    BadAddr(usize),
    /// An address does not end in `/p2p/<the signer>` (its index).
    #[error("relay record address {0} names another peer")]
    ForeignAddr(usize),
}

impl RecordError {
    /// Its metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            RecordError::TooLarge(_) => "too_large",
            RecordError::Malformed => "malformed",
            RecordError::NonCanonical => "non_canonical",
            RecordError::BadKey => "bad_key",
            RecordError::BadSignature => "bad_signature",
            RecordError::Version(_) => "version",
            RecordError::Expired => "expired",
            RecordError::FromTheFuture => "from_the_future",
            RecordError::Lifetime => "lifetime",
            RecordError::Field(_) => "bad_field",
            RecordError::BadAddr(_) => "bad_addr",
            RecordError::ForeignAddr(_) => "foreign_addr",
        }
    }

    /// Every label, for metrics that list each reason from the start.
    pub const LABELS: [&'static str; 12] = [
        "too_large",
        "malformed",
        "non_canonical",
        "bad_key",
        "bad_signature",
        "version",
        "expired",
        "from_the_future",
        "lifetime",
        "bad_field",
        "bad_addr",
        "foreign_addr",
    ];
}

/// Text fields hold printable characters only: a name is shown to traders.
fn printable(text: &str) -> bool {
    !text.chars().any(char::is_control)
}

fn check(record: &RelayRecord, relay: &PeerId, now_ms: u64) -> Result<(), RecordError> {
    if record.expires_at_ms <= record.issued_at_ms
        || record.expires_at_ms - record.issued_at_ms > MAX_RECORD_LIFETIME_MS
    {
        return Err(RecordError::Lifetime);
    }
    if record.issued_at_ms > now_ms.saturating_add(MAX_RECORD_SKEW_MS) {
        return Err(RecordError::FromTheFuture);
    }
    if record.expires_at_ms <= now_ms {
        return Err(RecordError::Expired);
    }
    if record.name.len() > MAX_RECORD_NAME_BYTES || !printable(&record.name) {
        return Err(RecordError::Field("name"));
    }
    if record.region.len() > MAX_RECORD_REGION_BYTES || !printable(&record.region) {
        return Err(RecordError::Field("region"));
    }
    if record.addrs.is_empty() || record.addrs.len() > MAX_RECORD_ADDRS {
        return Err(RecordError::Field("addrs"));
    }
    if record.auth_methods.len() > MAX_RECORD_METHODS {
        return Err(RecordError::Field("auth_methods"));
    }
    if record.load_permille > 1000 {
        return Err(RecordError::Field("load_permille"));
    }
    if let Some(limits) = record.limits {
        limits
            .validate()
            .map_err(|_| RecordError::Field("limits"))?;
    }
    for (i, addr) in record.addrs.iter().enumerate() {
        if addr.as_ref().len() > MAX_RECORD_ADDR_BYTES {
            return Err(RecordError::BadAddr(i));
        }
        if addr.iter().last() != Some(Protocol::P2p(*relay)) {
            return Err(RecordError::ForeignAddr(i));
        }
    }
    Ok(())
}

impl RelayRecord {
    fn to_wire(&self) -> wire::Body {
        wire::Body {
            version: RELAY_RECORD_WIRE_VERSION,
            seq: self.seq,
            issued_at_ms: self.issued_at_ms,
            expires_at_ms: self.expires_at_ms,
            name: self.name.clone(),
            region: self.region.clone(),
            addrs: self.addrs.iter().map(|a| a.to_vec()).collect(),
            auth_methods: self.auth_methods.iter().map(|m| m.to_wire()).collect(),
            limits: self.limits.map(|l| wire::Limits {
                max_orders_per_maker: l.max_orders_per_maker,
                publish_burst: l.publish_burst,
                publish_per_second: l.publish_per_second,
            }),
            load_permille: u32::from(self.load_permille),
        }
    }

    fn from_wire(body: wire::Body) -> Result<Self, RecordError> {
        if body.version != RELAY_RECORD_WIRE_VERSION {
            return Err(RecordError::Version(body.version));
        }
        if body.addrs.len() > MAX_RECORD_ADDRS {
            return Err(RecordError::Field("addrs"));
        }
        if body.auth_methods.len() > MAX_RECORD_METHODS {
            return Err(RecordError::Field("auth_methods"));
        }
        let addrs = body
            .addrs
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                if a.len() > MAX_RECORD_ADDR_BYTES {
                    return Err(RecordError::BadAddr(i));
                }
                Multiaddr::try_from(a).map_err(|_| RecordError::BadAddr(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // A method this build does not know is one it cannot use: left out, not an error, so
        // that a relay may add a method without its records being refused everywhere.
        let auth_methods = body
            .auth_methods
            .into_iter()
            .filter_map(Method::from_wire)
            .collect();
        Ok(RelayRecord {
            seq: body.seq,
            issued_at_ms: body.issued_at_ms,
            expires_at_ms: body.expires_at_ms,
            name: body.name,
            region: body.region,
            addrs,
            auth_methods,
            limits: body.limits.map(|l| AnnouncedLimits {
                max_orders_per_maker: l.max_orders_per_maker,
                publish_burst: l.publish_burst,
                publish_per_second: l.publish_per_second,
            }),
            load_permille: u16::try_from(body.load_permille)
                .map_err(|_| RecordError::Field("load_permille"))?,
        })
    }

    /// Signs the record with the relay's key, after the checks a receiver makes (a relay never
    /// sends a record that others would refuse).
    pub fn sign(&self, key: &Keypair, now_ms: u64) -> Result<SignedRelayRecord, RecordError> {
        let relay = key.public().to_peer_id();
        check(self, &relay, now_ms)?;
        let body = self.to_wire().encode_to_vec();
        let signature = key
            .sign(&signing_input(&body))
            .map_err(|_| RecordError::BadKey)?;
        let bytes = wire::Signed {
            public_key: key.public().encode_protobuf(),
            body: body.clone(),
            signature,
        }
        .encode_to_vec();
        if bytes.len() > MAX_RELAY_RECORD_BYTES {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        Ok(SignedRelayRecord {
            relay,
            record: self.clone(),
            body,
            bytes,
        })
    }
}

fn signing_input(body: &[u8]) -> Vec<u8> {
    let mut input = Vec::with_capacity(RELAY_RECORD_SIGNING_DOMAIN.len() + body.len());
    input.extend_from_slice(RELAY_RECORD_SIGNING_DOMAIN);
    input.extend_from_slice(body);
    input
}

impl SignedRelayRecord {
    /// Decodes and checks a record received at `now_ms`: size cap first, then the canonical
    /// envelope, the key, the signature, the body and every stateless rule.
    pub fn verify(bytes: &[u8], now_ms: u64) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RELAY_RECORD_BYTES {
            return Err(RecordError::TooLarge(bytes.len()));
        }
        let signed = wire::Signed::decode(bytes).map_err(|_| RecordError::Malformed)?;
        if signed.encode_to_vec() != bytes {
            return Err(RecordError::NonCanonical);
        }
        let key =
            PublicKey::try_decode_protobuf(&signed.public_key).map_err(|_| RecordError::BadKey)?;
        if key.encode_protobuf() != signed.public_key {
            return Err(RecordError::NonCanonical);
        }
        if !key.verify(&signing_input(&signed.body), &signed.signature) {
            return Err(RecordError::BadSignature);
        }
        let relay = key.to_peer_id();
        let record = RelayRecord::from_wire(
            wire::Body::decode(signed.body.as_slice()).map_err(|_| RecordError::Malformed)?,
        )?;
        check(&record, &relay, now_ms)?;
        Ok(SignedRelayRecord {
            relay,
            record,
            body: signed.body,
            bytes: bytes.to_vec(),
        })
    }

    /// The relay that signed it.
    pub fn relay(&self) -> PeerId {
        self.relay
    }

    /// What it says.
    pub fn record(&self) -> &RelayRecord {
        &self.record
    }

    /// The bytes it travels as.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signed body: two records with the same sequence number and different bodies are an
    /// equivocation.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Still believed at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.record.expires_at_ms > now_ms
    }
}

/// "Which relays do you know?" (no parameters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayRecordsRequest {}

/// The answer: signed records, each checked by the receiver on its own (one bad record does not
/// spoil the rest, and each refusal is counted by its reason).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayRecordsResponse {
    /// At most [`MAX_RECORDS_PER_RESPONSE`] records, as they travel.
    pub records: Vec<Vec<u8>>,
}

/// Why bytes are not a relay-records message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordsMessageError {
    /// Longer than the message's cap.
    #[error(transparent)]
    TooLong(#[from] crate::frame::TooLong),
    /// Not protobuf of the expected shape.
    #[error("not a relay-records message")]
    Decode(#[source] prost::DecodeError),
    /// More records than [`MAX_RECORDS_PER_RESPONSE`].
    #[error("{0} relay records in one answer, more than {MAX_RECORDS_PER_RESPONSE}")]
    TooMany(usize),
}

impl RelayRecordsRequest {
    /// Its protobuf encoding (empty).
    pub fn encode(&self) -> Vec<u8> {
        wire::Request {}.encode_to_vec()
    }

    /// Decodes a request of at most [`MAX_RECORDS_REQUEST_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordsMessageError> {
        crate::frame::within(bytes, MAX_RECORDS_REQUEST_BYTES)?;
        wire::Request::decode(bytes).map_err(RecordsMessageError::Decode)?;
        Ok(Self {})
    }
}

impl RelayRecordsResponse {
    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        wire::Response {
            records: self.records.clone(),
        }
        .encode_to_vec()
    }

    /// Decodes an answer of at most [`MAX_RECORDS_RESPONSE_BYTES`] and
    /// [`MAX_RECORDS_PER_RESPONSE`] records; the records themselves are not checked here.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordsMessageError> {
        crate::frame::within(bytes, MAX_RECORDS_RESPONSE_BYTES)?;
        let msg = wire::Response::decode(bytes).map_err(RecordsMessageError::Decode)?;
        if msg.records.len() > MAX_RECORDS_PER_RESPONSE {
            return Err(RecordsMessageError::TooMany(msg.records.len()));
        }
        Ok(Self {
            records: msg.records,
        })
    }
}

crate::impl_frame!(
    RelayRecordsRequest,
    MAX_RECORDS_REQUEST_BYTES,
    RecordsMessageError
);
crate::impl_frame!(
    RelayRecordsResponse,
    MAX_RECORDS_RESPONSE_BYTES,
    RecordsMessageError
);

#[cfg(test)]
mod tests;
