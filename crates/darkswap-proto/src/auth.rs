//! `/darkswap/auth/1`: the messages of relay authentication and administration, one request and
//! one response per stream, protobuf, capped. Decoding validates every field's length and value,
//! so the rest of the code only sees well-formed messages. What the proofs and tokens inside mean
//! (and the permission table) is `darkswap-auth`'s job.
//!
//! ```text
//! message AuthRequest  { oneof kind { ChallengeRequest challenge = 1; Answer answer = 2;
//!                                     Token token = 3; Admin admin = 4; } }
//! message AuthResponse { oneof kind { Challenge challenge = 1; Granted granted = 2;
//!                                     Refused refused = 3; AdminResult admin = 4; } }
//! message Granted { uint32 level = 1; uint32 method = 2; bytes token = 3; uint64 expires_at_ms = 4;
//!                   Limits limits = 5; }  // darkswap_proto::limits: the relay's market limits
//! message Challenge { uint32 method = 1; bytes nonce = 2; uint64 expires_at_ms = 3;
//!                     uint32 stamp_bits = 4; }  // identity stamp asked for, 0 to MAX_STAMP_BITS
//! message Answer { bytes nonce = 1; bytes proof = 2; optional uint64 stamp = 3; }
//! ```

use libp2p_identity::PeerId;
use prost::Message as _;
use serde::{Deserialize, Serialize};

use crate::limits::AnnouncedLimits;

/// The auth protocol's name.
pub const AUTH_PROTOCOL: &str = "/darkswap/auth/1";
/// Nonces are this long (random, from the relay).
pub const NONCE_BYTES: usize = 32;

/// Largest request accepted (before decoding).
pub const MAX_AUTH_REQUEST_BYTES: u64 = 2 * 1024 + MAX_ANSWER_RECORD_BYTES as u64;
/// Cap on the relay record a relay's answer carries (the relay record module's own cap is this
/// one).
pub const MAX_ANSWER_RECORD_BYTES: usize = 4 * 1024;
/// Largest response accepted: an admin listing of [`MAX_ADMIN_ENTRIES`] entries with notes of
/// [`MAX_TEXT_BYTES`] fits (~160 KB).
pub const MAX_AUTH_RESPONSE_BYTES: u64 = 192 * 1024;
/// Largest token accepted.
pub const MAX_TOKEN_BYTES: usize = 512;
/// Longest proof: an ed25519 signature (64 bytes); an HMAC-SHA256 tag is 32.
pub const MAX_PROOF_BYTES: usize = 64;
/// Longest free text (reasons, notes), in bytes.
pub const MAX_TEXT_BYTES: usize = 256;
/// Most entries in one admin listing.
pub const MAX_ADMIN_ENTRIES: usize = 500;
/// Most identity-stamp work a relay may ask for (`darkswap_auth::stamp`): 2^24 hashes on
/// average, a few seconds natively and about half a minute in a browser. A client refuses a
/// challenge that asks for more, so a hostile relay cannot keep it hashing for hours.
pub const MAX_STAMP_BITS: u32 = 24;

/// How far a peer is trusted by a relay; ordered, so `level >= needed` is the whole check (the
/// table of what each level may do is `darkswap_auth::PERMISSIONS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Refused everything, connections included.
    Banned,
    /// Connected but has proven nothing the relay asked for.
    Anonymous,
    /// Passed one of the relay's enabled methods.
    Authenticated,
    /// Named by the operator as trusted (config or admin API): not rate-limited as one peer.
    Trusted,
    /// Named by the operator as an administrator (config only).
    Admin,
}

impl Level {
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [
        Level::Banned,
        Level::Anonymous,
        Level::Authenticated,
        Level::Trusted,
        Level::Admin,
    ];

    /// Its name in metrics, logs, the access file and the README.
    pub fn label(self) -> &'static str {
        match self {
            Level::Banned => "banned",
            Level::Anonymous => "anonymous",
            Level::Authenticated => "authenticated",
            Level::Trusted => "trusted",
            Level::Admin => "admin",
        }
    }

    /// Its code on the wire.
    pub fn to_wire(self) -> u32 {
        match self {
            Level::Banned => 0,
            Level::Anonymous => 1,
            Level::Authenticated => 2,
            Level::Trusted => 3,
            Level::Admin => 4,
        }
    }

    /// The level with this wire code, if any.
    pub fn from_wire(value: u32) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.to_wire() == value)
    }

    /// The level with this label, if any.
    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.label() == text)
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// How a client proves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// HMAC-SHA256 with an operator-set key over the challenge.
    SharedKey,
    /// ed25519 signature with the client's identity key over the challenge.
    Identity,
    /// The client's PeerId is on the relay's allowlist (proven by the connection's handshake).
    PublicKey,
    /// A relay-signed token from an earlier success.
    Token,
    /// The relay is configured open: everyone not banned counts as authenticated.
    Open,
    /// Another relay: an ed25519 signature with its identity key over the challenge, with its
    /// signed relay record; the relay's federation policy decides whether it is a peer relay.
    Relay,
}

impl Method {
    /// Every method.
    pub const ALL: [Method; 6] = [
        Method::SharedKey,
        Method::Identity,
        Method::PublicKey,
        Method::Token,
        Method::Open,
        Method::Relay,
    ];

    /// Its name in metrics, logs and the README.
    pub fn label(self) -> &'static str {
        match self {
            Method::SharedKey => "shared_key",
            Method::Identity => "identity",
            Method::PublicKey => "public_key",
            Method::Token => "token",
            Method::Open => "open",
            Method::Relay => "relay",
        }
    }

    /// Its code on the wire.
    pub fn to_wire(self) -> u32 {
        match self {
            Method::SharedKey => 1,
            Method::Identity => 2,
            Method::PublicKey => 3,
            Method::Token => 4,
            Method::Open => 5,
            Method::Relay => 6,
        }
    }

    /// The method with this wire code, if any.
    pub fn from_wire(value: u32) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.to_wire() == value)
    }

    /// Methods a client answers a challenge for.
    pub fn is_challenge(self) -> bool {
        matches!(self, Method::SharedKey | Method::Identity | Method::Relay)
    }
}

/// Why the relay said no. Each has a metrics label and a sentence for the trader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefuseReason {
    /// The request did not decode.
    Malformed,
    /// The relay does not accept the method asked for.
    MethodDisabled,
    /// The nonce was never issued to this peer, or was already used (a replay).
    UnknownChallenge,
    /// The challenge's deadline passed before the answer came.
    ExpiredChallenge,
    /// Wrong shared key or a signature that does not verify.
    WrongProof,
    /// The identity is not on the relay's allowlist.
    NotAllowed,
    /// The peer is banned.
    Banned,
    /// The token is malformed or its signature does not verify.
    BadToken,
    /// The token names another PeerId.
    TokenForAnotherPeer,
    /// The token names another relay (it was issued there).
    TokenForAnotherRelay,
    /// The token's expiry has passed.
    ExpiredToken,
    /// Issued before the peer was banned.
    RevokedToken,
    /// Too many requests from this peer or its address.
    RateLimited,
    /// Too many challenges outstanding.
    Busy,
    /// An admin request from a peer below the level it needs.
    InsufficientLevel,
    /// An admin request the relay cannot carry out (e.g. unban a peer banned in the config file).
    Rejected,
    /// The relay asks a new identity for a stamp of more work than the answer (or the token)
    /// carries (`darkswap_auth::stamp`).
    WeakStamp,
    /// A relay's answer came without a record, or with one that fails its checks or is
    /// another relay's.
    BadRecord,
}

impl RefuseReason {
    /// Every reason, in wire-code order (code = position + 1).
    pub const ALL: [RefuseReason; 18] = [
        RefuseReason::Malformed,
        RefuseReason::MethodDisabled,
        RefuseReason::UnknownChallenge,
        RefuseReason::ExpiredChallenge,
        RefuseReason::WrongProof,
        RefuseReason::NotAllowed,
        RefuseReason::Banned,
        RefuseReason::BadToken,
        RefuseReason::TokenForAnotherPeer,
        RefuseReason::TokenForAnotherRelay,
        RefuseReason::ExpiredToken,
        RefuseReason::RevokedToken,
        RefuseReason::RateLimited,
        RefuseReason::Busy,
        RefuseReason::InsufficientLevel,
        RefuseReason::Rejected,
        RefuseReason::WeakStamp,
        RefuseReason::BadRecord,
    ];

    /// Its name in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            RefuseReason::Malformed => "malformed",
            RefuseReason::MethodDisabled => "method_disabled",
            RefuseReason::UnknownChallenge => "unknown_challenge",
            RefuseReason::ExpiredChallenge => "expired_challenge",
            RefuseReason::WrongProof => "wrong_proof",
            RefuseReason::NotAllowed => "not_allowed",
            RefuseReason::Banned => "banned",
            RefuseReason::BadToken => "bad_token",
            RefuseReason::TokenForAnotherPeer => "token_for_another_peer",
            RefuseReason::TokenForAnotherRelay => "token_for_another_relay",
            RefuseReason::ExpiredToken => "expired_token",
            RefuseReason::RevokedToken => "revoked_token",
            RefuseReason::RateLimited => "rate_limited",
            RefuseReason::Busy => "busy",
            RefuseReason::InsufficientLevel => "insufficient_level",
            RefuseReason::Rejected => "rejected",
            RefuseReason::WeakStamp => "weak_stamp",
            RefuseReason::BadRecord => "bad_record",
        }
    }

    /// What the trader is told.
    pub fn explain(self) -> &'static str {
        match self {
            RefuseReason::Malformed => "the relay could not read the request",
            RefuseReason::MethodDisabled => {
                "the relay does not accept this way of proving yourself: choose the other one under relay access"
            }
            RefuseReason::UnknownChallenge => "the challenge is unknown or was already used",
            RefuseReason::ExpiredChallenge => "the challenge expired before it was answered",
            RefuseReason::WrongProof => {
                "wrong shared key or identity proof: check the shared key under relay access"
            }
            RefuseReason::NotAllowed => {
                "this identity is not on the relay's allowlist: ask its operator to add your PeerId (shown under identity)"
            }
            RefuseReason::Banned => {
                "this identity is banned from the relay: ask its operator, or use another relay"
            }
            RefuseReason::BadToken => "the token is not one this relay signed",
            RefuseReason::TokenForAnotherPeer => "the token belongs to another identity",
            RefuseReason::TokenForAnotherRelay => "the token was issued by another relay",
            RefuseReason::ExpiredToken => "the token has expired",
            RefuseReason::RevokedToken => "the token was revoked",
            RefuseReason::RateLimited => "too many authentication attempts; wait a minute",
            RefuseReason::Busy => "the relay is busy; try again shortly",
            RefuseReason::InsufficientLevel => {
                "this needs a higher level of access on this relay: ask its operator"
            }
            RefuseReason::Rejected => "the relay refused without saying why: try again later, or ask its operator",
            RefuseReason::WeakStamp => {
                "the relay asks new identities for a proof of work this one has not done yet"
            }
            RefuseReason::BadRecord => {
                "the relay record sent with the proof is missing, invalid or another relay's"
            }
        }
    }

    /// Whether this answer to a presented token means the token is worthless here (as opposed
    /// to a transient refusal such as a rate limit, after which the token is still good).
    pub fn voids_token(self) -> bool {
        matches!(
            self,
            RefuseReason::BadToken
                | RefuseReason::TokenForAnotherPeer
                | RefuseReason::TokenForAnotherRelay
                | RefuseReason::ExpiredToken
                | RefuseReason::RevokedToken
                | RefuseReason::MethodDisabled
                | RefuseReason::NotAllowed
                | RefuseReason::Malformed
                | RefuseReason::WeakStamp
        )
    }

    /// Its code on the wire (never 0).
    pub fn to_wire(self) -> u32 {
        RefuseReason::ALL
            .iter()
            .position(|r| *r == self)
            .map_or(0, |i| i as u32 + 1)
    }

    /// An unknown code from a newer relay still reads as a refusal.
    pub fn from_wire(value: u32) -> RefuseReason {
        (value as usize)
            .checked_sub(1)
            .and_then(|i| RefuseReason::ALL.get(i).copied())
            .unwrap_or(RefuseReason::Rejected)
    }
}

/// What an administrator asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAction {
    /// Ban `peer` (its connections are closed and refused), noting `reason`.
    Ban {
        /// Who.
        peer: PeerId,
        /// Why, at most [`MAX_TEXT_BYTES`], no control characters.
        reason: String,
    },
    /// Lift a ban made at run time.
    Unban {
        /// Who.
        peer: PeerId,
    },
    /// Mark `peer` trusted.
    Trust {
        /// Who.
        peer: PeerId,
    },
    /// Take trust back.
    Untrust {
        /// Who.
        peer: PeerId,
    },
    /// List the access lists.
    List,
}

/// One line of an admin listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminEntry {
    /// Who.
    pub peer: PeerId,
    /// The level the lists give it.
    pub level: Level,
    /// Where the entry comes from and why ("config", a ban's reason).
    pub note: String,
    /// Since when, milliseconds since the Unix epoch.
    pub since_ms: u64,
}

/// What a relay grants: a level, how it was earned, a token for the next connection and the
/// market limits the client keeps under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The level granted.
    pub level: Level,
    /// How the client earned it.
    pub method: Method,
    /// A relay-signed token to present next time (empty when the relay issues none, as for an
    /// open relay), at most [`MAX_TOKEN_BYTES`].
    pub token: Vec<u8>,
    /// When the grant (and the token) runs out, milliseconds since the Unix epoch.
    pub expires_at_ms: u64,
    /// The relay's market limits, which the client keeps under (absent from older relays).
    pub limits: Option<AnnouncedLimits>,
}

/// What a client asks a relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// Ask for a challenge for `method` (shared key or identity).
    Challenge {
        /// A challenge method ([`Method::is_challenge`]).
        method: Method,
    },
    /// Answer an outstanding challenge.
    Answer {
        /// The challenge's nonce.
        nonce: [u8; NONCE_BYTES],
        /// The signature or MAC over the challenge, 1 to [`MAX_PROOF_BYTES`] bytes.
        proof: Vec<u8>,
        /// The client's identity stamp, when it holds one (`darkswap_auth::stamp`).
        stamp: Option<u64>,
        /// A relay's signed record, with a [`Method::Relay`] answer (at most
        /// [`MAX_ANSWER_RECORD_BYTES`]).
        record: Option<Vec<u8>>,
    },
    /// Present a token from an earlier success.
    Token {
        /// The token, 1 to [`MAX_TOKEN_BYTES`] bytes.
        token: Vec<u8>,
    },
    /// An administrator's request.
    Admin(AdminAction),
}

/// What a relay answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResponse {
    /// Prove yourself: sign or MAC this nonce before `expires_at_ms`.
    Challenge {
        /// The method the challenge is for.
        method: Method,
        /// Single-use, random.
        nonce: [u8; NONCE_BYTES],
        /// Deadline for the answer, milliseconds since the Unix epoch.
        expires_at_ms: u64,
        /// The identity-stamp work the answer must carry (0: none), at most [`MAX_STAMP_BITS`].
        stamp_bits: u32,
    },
    /// Granted.
    Granted(Grant),
    /// Refused, and why.
    Refused {
        /// Why.
        reason: RefuseReason,
    },
    /// The answer to an admin request.
    Admin {
        /// What was done, for the operator.
        message: String,
        /// The listing, for [`AdminAction::List`] (at most [`MAX_ADMIN_ENTRIES`]).
        entries: Vec<AdminEntry>,
    },
}

/// Why bytes are not a valid auth message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Longer than the message's cap.
    #[error(transparent)]
    TooLong(#[from] crate::frame::TooLong),
    /// Not protobuf of the expected shape.
    #[error("not a valid auth message")]
    Decode(#[source] prost::DecodeError),
    /// A field is missing or out of range.
    #[error("auth message field {0} is missing or invalid")]
    Field(&'static str),
}

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AuthRequest {
        #[prost(oneof = "Request", tags = "1, 2, 3, 4")]
        pub kind: Option<Request>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Request {
        #[prost(uint32, tag = "1")]
        Challenge(u32),
        #[prost(message, tag = "2")]
        Answer(Answer),
        #[prost(bytes = "vec", tag = "3")]
        Token(Vec<u8>),
        #[prost(message, tag = "4")]
        Admin(Admin),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Answer {
        #[prost(bytes = "vec", tag = "1")]
        pub nonce: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub proof: Vec<u8>,
        #[prost(uint64, optional, tag = "3")]
        pub stamp: Option<u64>,
        #[prost(bytes = "vec", optional, tag = "4")]
        pub record: Option<Vec<u8>>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Admin {
        #[prost(uint32, tag = "1")]
        pub action: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub peer: Vec<u8>,
        #[prost(string, tag = "3")]
        pub reason: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AuthResponse {
        #[prost(oneof = "Response", tags = "1, 2, 3, 4")]
        pub kind: Option<Response>,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Response {
        #[prost(message, tag = "1")]
        Challenge(Challenge),
        #[prost(message, tag = "2")]
        Granted(Granted),
        #[prost(uint32, tag = "3")]
        Refused(u32),
        #[prost(message, tag = "4")]
        Admin(AdminResult),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Challenge {
        #[prost(uint32, tag = "1")]
        pub method: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub nonce: Vec<u8>,
        #[prost(uint64, tag = "3")]
        pub expires_at_ms: u64,
        #[prost(uint32, tag = "4")]
        pub stamp_bits: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Granted {
        #[prost(uint32, tag = "1")]
        pub level: u32,
        #[prost(uint32, tag = "2")]
        pub method: u32,
        #[prost(bytes = "vec", tag = "3")]
        pub token: Vec<u8>,
        #[prost(uint64, tag = "4")]
        pub expires_at_ms: u64,
        #[prost(message, optional, tag = "5")]
        pub limits: Option<Limits>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Limits {
        #[prost(uint32, tag = "1")]
        pub max_orders_per_maker: u32,
        #[prost(uint32, tag = "2")]
        pub publish_burst: u32,
        #[prost(uint32, tag = "3")]
        pub publish_per_second: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AdminResult {
        #[prost(string, tag = "1")]
        pub message: String,
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<AdminEntry>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AdminEntry {
        #[prost(bytes = "vec", tag = "1")]
        pub peer: Vec<u8>,
        #[prost(uint32, tag = "2")]
        pub level: u32,
        #[prost(string, tag = "3")]
        pub note: String,
        #[prost(uint64, tag = "4")]
        pub since_ms: u64,
    }
}

const ADMIN_BAN: u32 = 1;
const ADMIN_UNBAN: u32 = 2;
const ADMIN_TRUST: u32 = 3;
const ADMIN_UNTRUST: u32 = 4;
const ADMIN_LIST: u32 = 5;

fn text(value: String, field: &'static str) -> Result<String, WireError> {
    if value.len() > MAX_TEXT_BYTES || value.chars().any(char::is_control) {
        return Err(WireError::Field(field));
    }
    Ok(value)
}

fn peer(bytes: &[u8], field: &'static str) -> Result<PeerId, WireError> {
    PeerId::from_bytes(bytes).map_err(|_| WireError::Field(field))
}

fn nonce(bytes: &[u8]) -> Result<[u8; NONCE_BYTES], WireError> {
    bytes.try_into().map_err(|_| WireError::Field("nonce"))
}

impl AuthRequest {
    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        use pb::Request;
        let kind = match self {
            AuthRequest::Challenge { method } => Request::Challenge(method.to_wire()),
            AuthRequest::Answer {
                nonce,
                proof,
                stamp,
                record,
            } => Request::Answer(pb::Answer {
                nonce: nonce.to_vec(),
                proof: proof.clone(),
                stamp: *stamp,
                record: record.clone(),
            }),
            AuthRequest::Token { token } => Request::Token(token.clone()),
            AuthRequest::Admin(action) => {
                let (action, peer, reason) = match action {
                    AdminAction::Ban { peer, reason } => {
                        (ADMIN_BAN, peer.to_bytes(), reason.clone())
                    }
                    AdminAction::Unban { peer } => (ADMIN_UNBAN, peer.to_bytes(), String::new()),
                    AdminAction::Trust { peer } => (ADMIN_TRUST, peer.to_bytes(), String::new()),
                    AdminAction::Untrust { peer } => {
                        (ADMIN_UNTRUST, peer.to_bytes(), String::new())
                    }
                    AdminAction::List => (ADMIN_LIST, Vec::new(), String::new()),
                };
                Request::Admin(pb::Admin {
                    action,
                    peer,
                    reason,
                })
            }
        };
        pb::AuthRequest { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes and validates a request of at most [`MAX_AUTH_REQUEST_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<AuthRequest, WireError> {
        use pb::Request;
        crate::frame::within(bytes, MAX_AUTH_REQUEST_BYTES)?;
        let msg = pb::AuthRequest::decode(bytes).map_err(WireError::Decode)?;
        match msg.kind.ok_or(WireError::Field("kind"))? {
            Request::Challenge(m) => {
                let method = Method::from_wire(m)
                    .filter(|m| m.is_challenge())
                    .ok_or(WireError::Field("method"))?;
                Ok(AuthRequest::Challenge { method })
            }
            Request::Answer(a) => {
                if a.proof.is_empty() || a.proof.len() > MAX_PROOF_BYTES {
                    return Err(WireError::Field("proof"));
                }
                if a.record
                    .as_ref()
                    .is_some_and(|r| r.is_empty() || r.len() > MAX_ANSWER_RECORD_BYTES)
                {
                    return Err(WireError::Field("record"));
                }
                Ok(AuthRequest::Answer {
                    nonce: nonce(&a.nonce)?,
                    proof: a.proof,
                    stamp: a.stamp,
                    record: a.record,
                })
            }
            Request::Token(token) => {
                if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
                    return Err(WireError::Field("token"));
                }
                Ok(AuthRequest::Token { token })
            }
            Request::Admin(a) => {
                let action = match a.action {
                    ADMIN_BAN => AdminAction::Ban {
                        peer: peer(&a.peer, "peer")?,
                        reason: text(a.reason, "reason")?,
                    },
                    ADMIN_UNBAN => AdminAction::Unban {
                        peer: peer(&a.peer, "peer")?,
                    },
                    ADMIN_TRUST => AdminAction::Trust {
                        peer: peer(&a.peer, "peer")?,
                    },
                    ADMIN_UNTRUST => AdminAction::Untrust {
                        peer: peer(&a.peer, "peer")?,
                    },
                    ADMIN_LIST => AdminAction::List,
                    _ => return Err(WireError::Field("action")),
                };
                Ok(AuthRequest::Admin(action))
            }
        }
    }
}

impl AuthResponse {
    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        use pb::Response;
        let kind = match self {
            AuthResponse::Challenge {
                method,
                nonce,
                expires_at_ms,
                stamp_bits,
            } => Response::Challenge(pb::Challenge {
                method: method.to_wire(),
                nonce: nonce.to_vec(),
                expires_at_ms: *expires_at_ms,
                stamp_bits: *stamp_bits,
            }),
            AuthResponse::Granted(Grant {
                level,
                method,
                token,
                expires_at_ms,
                limits,
            }) => Response::Granted(pb::Granted {
                level: level.to_wire(),
                method: method.to_wire(),
                token: token.clone(),
                expires_at_ms: *expires_at_ms,
                limits: limits.map(|l| pb::Limits {
                    max_orders_per_maker: l.max_orders_per_maker,
                    publish_burst: l.publish_burst,
                    publish_per_second: l.publish_per_second,
                }),
            }),
            AuthResponse::Refused { reason } => Response::Refused(reason.to_wire()),
            AuthResponse::Admin { message, entries } => Response::Admin(pb::AdminResult {
                message: message.clone(),
                entries: entries
                    .iter()
                    .map(|e| pb::AdminEntry {
                        peer: e.peer.to_bytes(),
                        level: e.level.to_wire(),
                        note: e.note.clone(),
                        since_ms: e.since_ms,
                    })
                    .collect(),
            }),
        };
        pb::AuthResponse { kind: Some(kind) }.encode_to_vec()
    }

    /// Decodes and validates a response of at most [`MAX_AUTH_RESPONSE_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<AuthResponse, WireError> {
        use pb::Response;
        crate::frame::within(bytes, MAX_AUTH_RESPONSE_BYTES)?;
        let msg = pb::AuthResponse::decode(bytes).map_err(WireError::Decode)?;
        match msg.kind.ok_or(WireError::Field("kind"))? {
            Response::Challenge(c) => Ok(AuthResponse::Challenge {
                method: Method::from_wire(c.method)
                    .filter(|m| m.is_challenge())
                    .ok_or(WireError::Field("method"))?,
                nonce: nonce(&c.nonce)?,
                expires_at_ms: c.expires_at_ms,
                stamp_bits: match c.stamp_bits {
                    bits @ 0..=MAX_STAMP_BITS => bits,
                    _ => return Err(WireError::Field("stamp_bits")),
                },
            }),
            Response::Granted(g) => {
                if g.token.len() > MAX_TOKEN_BYTES {
                    return Err(WireError::Field("token"));
                }
                Ok(AuthResponse::Granted(Grant {
                    level: Level::from_wire(g.level).ok_or(WireError::Field("level"))?,
                    method: Method::from_wire(g.method).ok_or(WireError::Field("method"))?,
                    token: g.token,
                    expires_at_ms: g.expires_at_ms,
                    limits: g
                        .limits
                        .map(|l| {
                            AnnouncedLimits {
                                max_orders_per_maker: l.max_orders_per_maker,
                                publish_burst: l.publish_burst,
                                publish_per_second: l.publish_per_second,
                            }
                            .validate()
                            .map_err(|e| WireError::Field(e.0))
                        })
                        .transpose()?,
                }))
            }
            Response::Refused(code) => Ok(AuthResponse::Refused {
                reason: RefuseReason::from_wire(code),
            }),
            Response::Admin(a) => {
                if a.entries.len() > MAX_ADMIN_ENTRIES {
                    return Err(WireError::Field("entries"));
                }
                let entries = a
                    .entries
                    .into_iter()
                    .map(|e| {
                        Ok(AdminEntry {
                            peer: peer(&e.peer, "entry.peer")?,
                            level: Level::from_wire(e.level).ok_or(WireError::Field("level"))?,
                            note: text(e.note, "entry.note")?,
                            since_ms: e.since_ms,
                        })
                    })
                    .collect::<Result<_, WireError>>()?;
                Ok(AuthResponse::Admin {
                    message: text(a.message, "message")?,
                    entries,
                })
            }
        }
    }
}

crate::impl_frame!(AuthRequest, MAX_AUTH_REQUEST_BYTES, WireError);
crate::impl_frame!(AuthResponse, MAX_AUTH_RESPONSE_BYTES, WireError);

#[cfg(test)]
mod tests {
    use super::*;

    fn some_peer() -> PeerId {
        libp2p_identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id()
    }

    #[test]
    fn requests_round_trip() {
        let p = some_peer();
        for req in [
            AuthRequest::Challenge {
                method: Method::Identity,
            },
            AuthRequest::Challenge {
                method: Method::SharedKey,
            },
            AuthRequest::Answer {
                nonce: [7; 32],
                proof: vec![1; 64],
                stamp: None,
                record: None,
            },
            AuthRequest::Answer {
                nonce: [7; 32],
                proof: vec![1; 64],
                stamp: Some(0),
                record: None,
            },
            AuthRequest::Answer {
                nonce: [7; 32],
                proof: vec![1; 64],
                stamp: Some(u64::MAX),
                record: None,
            },
            AuthRequest::Answer {
                nonce: [7; 32],
                proof: vec![1; 64],
                stamp: None,
                record: Some(vec![5; MAX_ANSWER_RECORD_BYTES]),
            },
            AuthRequest::Challenge {
                method: Method::Relay,
            },
            AuthRequest::Token {
                token: vec![9; 100],
            },
            AuthRequest::Admin(AdminAction::Ban {
                peer: p,
                reason: "spam".into(),
            }),
            AuthRequest::Admin(AdminAction::Unban { peer: p }),
            AuthRequest::Admin(AdminAction::Trust { peer: p }),
            AuthRequest::Admin(AdminAction::Untrust { peer: p }),
            AuthRequest::Admin(AdminAction::List),
        ] {
            assert_eq!(AuthRequest::decode(&req.encode()).unwrap(), req);
        }
    }

    #[test]
    fn responses_round_trip() {
        let p = some_peer();
        for resp in [
            AuthResponse::Challenge {
                method: Method::SharedKey,
                nonce: [3; 32],
                expires_at_ms: 42,
                stamp_bits: 0,
            },
            AuthResponse::Challenge {
                method: Method::Identity,
                nonce: [3; 32],
                expires_at_ms: 42,
                stamp_bits: MAX_STAMP_BITS,
            },
            AuthResponse::Granted(Grant {
                level: Level::Trusted,
                method: Method::Identity,
                token: vec![5; 200],
                expires_at_ms: 99,
                limits: None,
            }),
            AuthResponse::Refused {
                reason: RefuseReason::ExpiredToken,
            },
            AuthResponse::Admin {
                message: "ok".into(),
                entries: vec![AdminEntry {
                    peer: p,
                    level: Level::Banned,
                    note: "spam".into(),
                    since_ms: 1,
                }],
            },
        ] {
            assert_eq!(AuthResponse::decode(&resp.encode()).unwrap(), resp);
        }
        for reason in RefuseReason::ALL {
            assert_eq!(RefuseReason::from_wire(reason.to_wire()), reason);
        }
    }

    #[test]
    fn bad_fields_are_refused() {
        let short_nonce = pb::AuthRequest {
            kind: Some(pb::Request::Answer(pb::Answer {
                nonce: vec![1; 31],
                proof: vec![1; 64],
                stamp: None,
                record: None,
            })),
        }
        .encode_to_vec();
        assert_eq!(
            AuthRequest::decode(&short_nonce),
            Err(WireError::Field("nonce"))
        );
        let long_proof = pb::AuthRequest {
            kind: Some(pb::Request::Answer(pb::Answer {
                nonce: vec![1; 32],
                proof: vec![1; 65],
                stamp: None,
                record: None,
            })),
        }
        .encode_to_vec();
        assert_eq!(
            AuthRequest::decode(&long_proof),
            Err(WireError::Field("proof"))
        );
        for record in [Vec::new(), vec![1; MAX_ANSWER_RECORD_BYTES + 1]] {
            let bad_record = pb::AuthRequest {
                kind: Some(pb::Request::Answer(pb::Answer {
                    nonce: vec![1; 32],
                    proof: vec![1; 64],
                    stamp: None,
                    record: Some(record),
                })),
            }
            .encode_to_vec();
            assert!(matches!(
                AuthRequest::decode(&bad_record),
                Err(WireError::Field("record") | WireError::TooLong(_))
            ));
        }
        // A relay asking for more work than any client will do.
        let greedy = pb::AuthResponse {
            kind: Some(pb::Response::Challenge(pb::Challenge {
                method: Method::Identity.to_wire(),
                nonce: vec![1; 32],
                expires_at_ms: 1,
                stamp_bits: MAX_STAMP_BITS + 1,
            })),
        }
        .encode_to_vec();
        assert_eq!(
            AuthResponse::decode(&greedy),
            Err(WireError::Field("stamp_bits"))
        );
        let token_method = pb::AuthRequest {
            kind: Some(pb::Request::Challenge(Method::Token.to_wire())),
        }
        .encode_to_vec();
        assert!(AuthRequest::decode(&token_method).is_err());
        let big_token = AuthRequest::Token {
            token: vec![0; MAX_TOKEN_BYTES + 1],
        }
        .encode();
        assert!(AuthRequest::decode(&big_token).is_err());
        assert!(AuthRequest::decode(&[]).is_err(), "no kind");
        assert!(AuthRequest::decode(&vec![0xff; 3000]).is_err());
        let bad_peer = pb::AuthRequest {
            kind: Some(pb::Request::Admin(pb::Admin {
                action: ADMIN_BAN,
                peer: vec![1, 2, 3],
                reason: String::new(),
            })),
        }
        .encode_to_vec();
        assert_eq!(
            AuthRequest::decode(&bad_peer),
            Err(WireError::Field("peer"))
        );
    }

    #[test]
    fn the_largest_admin_listing_fits_the_cap() {
        let entries: Vec<AdminEntry> = (0..MAX_ADMIN_ENTRIES)
            .map(|_| AdminEntry {
                peer: some_peer(),
                level: Level::Banned,
                note: "x".repeat(MAX_TEXT_BYTES),
                since_ms: u64::MAX,
            })
            .collect();
        let bytes = AuthResponse::Admin {
            message: "y".repeat(MAX_TEXT_BYTES),
            entries,
        }
        .encode();
        assert!(
            (bytes.len() as u64) <= MAX_AUTH_RESPONSE_BYTES,
            "{}",
            bytes.len()
        );
        assert!(AuthResponse::decode(&bytes).is_ok());
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..400 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let _ = AuthRequest::decode(&bytes);
            let _ = AuthResponse::decode(&bytes);
        }
    }
}
