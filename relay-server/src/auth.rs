//! The relay's side of `/darkswap/auth/1`: issues single-use challenges (rate-limited per peer
//! and per IP, bounded in memory), checks answers in constant time, signs tokens, checks tokens
//! presented again, and serves the admin API (ban, unban, trust, untrust, list) to peers whose
//! level allows it. Every outcome is counted by method and reason and written to the audit log.
//!
//! With `auth.identity_stamp_bits` set, an identity answer must carry a stamp of that much work
//! (`darkswap_auth::stamp`), and a token earned by identity with less is refused
//! (`weak_stamp`): the operator's price on new identities. Shared keys, allowlisted keys and
//! open relays are vouched for otherwise and pay nothing.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use darkswap_auth::pending::PendingChallenges;
use darkswap_auth::proof::{verify_identity, verify_relay, Binding};
use darkswap_auth::stamp::stamp_bits;
use darkswap_auth::token::{self, Claims};
use darkswap_auth::{Level, Method, Operation, RefuseReason, NONCE_BYTES};
use darkswap_proto::auth::{AdminAction, AuthRequest, AuthResponse, Grant};
use darkswap_proto::limits::AnnouncedLimits;
use darkswap_proto::relay_record::SignedRelayRecord;
use darkswap_rate::{KeyedLimiter, Rate};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};

use crate::access::Access;
use crate::audit::{self, Audit};
use crate::config::AuthConfig;
use crate::defaults;
use crate::metrics::{ActionLabels, AuthLabels, DenialLabels, RelayMetrics, ScopeLabels};

/// What the main loop must do after a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Close the peer's connections and refuse new ones.
    Block(PeerId),
    Unblock(PeerId),
    /// The peer proved itself as a relay the federation policy accepts: a peer relay from now
    /// on, with its signed record (checked) to keep.
    Federated(PeerId, Vec<u8>),
}

/// Where a request came from.
pub struct Origin<'a> {
    pub peer: PeerId,
    pub addr: Option<&'a Multiaddr>,
}

impl Origin<'_> {
    /// The key of the per-IP limit: the IPv4 address, or the IPv6 /64 (one subscriber's
    /// prefix). Peers whose address names no IP share one key, so they are limited together
    /// rather than not at all.
    fn ip_key(&self) -> IpAddr {
        darkswap_proto::addr::limit_key(self.addr)
    }
}

pub struct AuthService {
    access: Arc<Mutex<Access>>,
    audit: Arc<Audit>,
    key: Keypair,
    relay: PeerId,
    pending: PendingChallenges,
    per_peer: KeyedLimiter<PeerId>,
    per_ip: KeyedLimiter<IpAddr>,
    token_ttl_ms: u64,
    shared_key: Option<darkswap_auth::proof::SharedKey>,
    /// The market limits told to every client it grants a level, so they keep under them.
    limits: AnnouncedLimits,
    /// The identity-stamp work asked of identity answers and tokens (0: none).
    stamp_bits: u32,
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl AuthService {
    pub fn new(
        config: &AuthConfig,
        key: Keypair,
        access: Arc<Mutex<Access>>,
        audit: Arc<Audit>,
        limits: AnnouncedLimits,
    ) -> Self {
        // Per peer: a burst of a few requests (a reconnect plus a refresh) or of one second's
        // worth at a high configured rate, then the per-minute rate. Per IP: the whole minute's
        // budget at once (capped at 10,000), so the traders behind one address who reconnect
        // together after a relay restart or a network blip are not turned away.
        let burst = |per_minute: u32, least: u32| per_minute.div_ceil(60).clamp(least, 1_000);
        AuthService {
            limits,
            relay: key.public().to_peer_id(),
            key,
            access,
            audit,
            pending: PendingChallenges::new(
                defaults::AUTH_MAX_PENDING_CHALLENGES,
                defaults::AUTH_MAX_PENDING_PER_PEER,
                millis(config.challenge_ttl),
            ),
            per_peer: KeyedLimiter::new(
                Rate::per_minute(
                    config.challenge_rate_per_peer,
                    burst(config.challenge_rate_per_peer, 5).min(config.challenge_rate_per_peer),
                ),
                defaults::AUTH_RATE_TABLE_CAPACITY,
            ),
            per_ip: KeyedLimiter::new(
                Rate::per_minute(
                    config.challenge_rate_per_ip,
                    config.challenge_rate_per_ip.min(10_000),
                ),
                defaults::AUTH_RATE_TABLE_CAPACITY,
            ),
            token_ttl_ms: millis(config.token_ttl),
            shared_key: config.shared_key.clone(),
            stamp_bits: config.identity_stamp_bits,
        }
    }

    pub fn pending_challenges(&self) -> usize {
        self.pending.len()
    }

    /// Housekeeping once a second.
    pub fn prune(&mut self, now_ms: u64) {
        self.pending.prune(now_ms);
        self.per_peer.prune(now_ms);
        self.per_ip.prune(now_ms);
    }

    pub fn peer_gone(&mut self, peer: &PeerId) {
        self.pending.forget_peer(peer);
    }

    pub fn handle(
        &mut self,
        origin: &Origin<'_>,
        request: AuthRequest,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> (AuthResponse, Effect) {
        // A relay proves itself whatever its standing: being a peer relay is decided by the
        // relay method alone (an open relay's standing grant would leave it a mere trader).
        let wants_grant = match &request {
            AuthRequest::Challenge { method } => *method != Method::Relay,
            AuthRequest::Token { .. } => true,
            _ => false,
        };
        if wants_grant {
            if let Some(response) = self.standing_grant(origin, metrics) {
                return (response, Effect::None);
            }
        }
        match request {
            AuthRequest::Challenge { method } => {
                let response = self
                    .challenge(origin, method, metrics, now_ms)
                    .unwrap_or_else(|reason| self.refused(origin, method.label(), reason, metrics));
                (response, Effect::None)
            }
            AuthRequest::Answer {
                nonce,
                proof,
                stamp,
                record,
            } => {
                let mut effect = Effect::None;
                let response =
                    match self.answer(origin, &nonce, &proof, stamp, record.as_deref(), now_ms) {
                        Ok((method, level, token, expires_at_ms)) => {
                            self.granted(origin, method, level, metrics);
                            if let (Method::Relay, Some(record)) = (method, record) {
                                effect = Effect::Federated(origin.peer, record);
                            }
                            AuthResponse::Granted(Grant {
                                level,
                                method,
                                token,
                                expires_at_ms,
                                limits: Some(self.limits),
                            })
                        }
                        Err((method, reason)) => {
                            // Failed answers spend the peer's request budget, so guessing (and
                            // the audit lines it causes) is as limited as asking for challenges.
                            if self.rate_limited(origin, metrics, now_ms).is_err() {
                                AuthResponse::Refused {
                                    reason: RefuseReason::RateLimited,
                                }
                            } else {
                                self.refused(origin, method, reason, metrics)
                            }
                        }
                    };
                (response, effect)
            }
            AuthRequest::Token { token } => {
                let response = match self.present(origin, &token, metrics, now_ms) {
                    Ok(claims_level) => {
                        let (level, expires_at_ms) = claims_level;
                        self.granted(origin, Method::Token, level, metrics);
                        AuthResponse::Granted(Grant {
                            level,
                            method: Method::Token,
                            token,
                            expires_at_ms,
                            limits: Some(self.limits),
                        })
                    }
                    Err(reason) => self.refused(origin, Method::Token.label(), reason, metrics),
                };
                (response, Effect::None)
            }
            AuthRequest::Admin(action) => {
                if self.rate_limited(origin, metrics, now_ms).is_err() {
                    return (
                        AuthResponse::Refused {
                            reason: RefuseReason::RateLimited,
                        },
                        Effect::None,
                    );
                }
                self.admin(origin, action, metrics, now_ms)
            }
        }
    }

    /// A peer that has its level without proving anything here (open relay, allowlisted,
    /// trusted) is told so instead of being sent through a challenge it may not be able to
    /// answer (no token: its standing is checked anew on every connection).
    fn standing_grant(&self, origin: &Origin<'_>, metrics: &RelayMetrics) -> Option<AuthResponse> {
        let (level, method) = self.access.lock().ok()?.standing(&origin.peer)?;
        self.granted(origin, method, level, metrics);
        Some(AuthResponse::Granted(Grant {
            level,
            method,
            token: Vec::new(),
            expires_at_ms: u64::MAX,
            limits: Some(self.limits),
        }))
    }

    fn rate_limited(
        &mut self,
        origin: &Origin<'_>,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> Result<(), RefuseReason> {
        // The IP first: a peer refused there spends none of its own budget.
        let scope = if !self.per_ip.allow(&origin.ip_key(), now_ms) {
            "ip"
        } else if !self.per_peer.allow(&origin.peer, now_ms) {
            "peer"
        } else {
            return Ok(());
        };
        metrics
            .auth_rate_limited
            .get_or_create(&ScopeLabels {
                scope: scope.into(),
            })
            .inc();
        self.audit.record(
            audit::Kind::RateLimit,
            audit::Fields {
                peer: Some(&origin.peer),
                addr: origin.addr,
                reason: Some(scope),
                ..Default::default()
            },
        );
        Err(RefuseReason::RateLimited)
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Access>, RefuseReason> {
        // A poisoned lock cannot say who may do what: refuse.
        self.access.lock().map_err(|_| RefuseReason::Busy)
    }

    fn challenge(
        &mut self,
        origin: &Origin<'_>,
        method: Method,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> Result<AuthResponse, RefuseReason> {
        self.rate_limited(origin, metrics, now_ms)?;
        // Refuse early what the answer could never earn (disabled method, not allowed, banned).
        self.lock()?.entitlement(&origin.peer, method)?;
        let nonce: [u8; NONCE_BYTES] = rand010::random();
        let expires_at_ms = self.pending.issue(nonce, origin.peer, method, now_ms)?;
        Ok(AuthResponse::Challenge {
            method,
            nonce,
            expires_at_ms,
            stamp_bits: match method {
                Method::Identity => self.stamp_bits,
                _ => 0,
            },
        })
    }

    #[allow(clippy::type_complexity)]
    fn answer(
        &mut self,
        origin: &Origin<'_>,
        nonce: &[u8; NONCE_BYTES],
        proof: &[u8],
        stamp: Option<u64>,
        record: Option<&[u8]>,
        now_ms: u64,
    ) -> Result<(Method, Level, Vec<u8>, u64), (&'static str, RefuseReason)> {
        let pending = self
            .pending
            .take(nonce, &origin.peer, now_ms)
            .map_err(|r| ("unknown", r))?;
        let method = pending.method;
        let binding = Binding {
            nonce,
            relay: &self.relay,
            client: &origin.peer,
            expires_at_ms: pending.expires_at_ms,
        };
        let valid = match method {
            Method::Identity => verify_identity(&binding, proof),
            Method::Relay => verify_relay(&binding, proof),
            Method::SharedKey => self
                .shared_key
                .as_ref()
                .is_some_and(|k| k.verify(&binding, proof)),
            _ => false,
        };
        if !valid {
            return Err((method.label(), RefuseReason::WrongProof));
        }
        // The work is checked after the proof (a hash after a signature: a stranger's stamp
        // cannot be tried without the key) and counts only for identity answers.
        let proven = stamp.map_or(0, |s| stamp_bits(&origin.peer, s));
        if method == Method::Identity && proven < self.stamp_bits {
            return Err((method.label(), RefuseReason::WeakStamp));
        }
        // A relay's record, checked after its proof: the record must be valid now and the
        // prover's own (its addresses name it, its key is the one that signed the challenge).
        if method == Method::Relay
            && record
                .and_then(|r| SignedRelayRecord::verify(r, now_ms).ok())
                .is_none_or(|r| r.relay() != origin.peer)
        {
            return Err((method.label(), RefuseReason::BadRecord));
        }
        let mut access = self.lock().map_err(|r| (method.label(), r))?;
        let level = access
            .entitlement(&origin.peer, method)
            .map_err(|r| (method.label(), r))?;
        let expires_at_ms = now_ms.saturating_add(self.token_ttl_ms);
        if method == Method::Relay {
            // No token: a relay proves itself on each connection, with its newest record.
            access.grant(origin.peer, level, expires_at_ms);
            return Ok((method, level, Vec::new(), expires_at_ms));
        }
        let token = token::issue(
            &self.key,
            &Claims {
                relay: self.relay,
                peer: origin.peer,
                level,
                method,
                issued_at_ms: now_ms,
                expires_at_ms,
                shared_key: match method {
                    Method::SharedKey => self.shared_key.as_ref().map(|k| k.fingerprint()),
                    _ => None,
                },
                stamp_bits: match method {
                    Method::Identity => proven,
                    _ => 0,
                },
            },
        )
        .ok_or((method.label(), RefuseReason::Busy))?;
        access.grant(origin.peer, level, expires_at_ms);
        Ok((method, level, token, expires_at_ms))
    }

    fn present(
        &mut self,
        origin: &Origin<'_>,
        token: &[u8],
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> Result<(Level, u64), RefuseReason> {
        self.rate_limited(origin, metrics, now_ms)?;
        let claims = token::verify(token, &self.key.public(), &origin.peer, now_ms)?;
        if claims.method == Method::Identity && claims.stamp_bits < self.stamp_bits {
            return Err(RefuseReason::WeakStamp);
        }
        let mut access = self.lock()?;
        let level = access.token_level(&claims)?;
        access.grant(origin.peer, level, claims.expires_at_ms);
        Ok((level, claims.expires_at_ms))
    }

    fn granted(&self, origin: &Origin<'_>, method: Method, level: Level, metrics: &RelayMetrics) {
        metrics
            .auth_attempts
            .get_or_create(&AuthLabels {
                method: method.label().into(),
                reason: "ok".into(),
            })
            .inc();
        self.audit.record(
            audit::Kind::AuthSuccess,
            audit::Fields {
                peer: Some(&origin.peer),
                addr: origin.addr,
                method: Some(method.label()),
                level: Some(level.label()),
                ..Default::default()
            },
        );
    }

    fn refused(
        &self,
        origin: &Origin<'_>,
        method: &str,
        reason: RefuseReason,
        metrics: &RelayMetrics,
    ) -> AuthResponse {
        metrics
            .auth_attempts
            .get_or_create(&AuthLabels {
                method: method.into(),
                reason: reason.label().into(),
            })
            .inc();
        // Rate-limit refusals were audited as such already.
        if reason != RefuseReason::RateLimited {
            self.audit.record(
                audit::Kind::AuthFailure,
                audit::Fields {
                    peer: Some(&origin.peer),
                    addr: origin.addr,
                    method: Some(method),
                    reason: Some(reason.label()),
                    ..Default::default()
                },
            );
        }
        AuthResponse::Refused { reason }
    }

    fn admin(
        &mut self,
        origin: &Origin<'_>,
        action: AdminAction,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> (AuthResponse, Effect) {
        let op = match &action {
            AdminAction::Ban { .. } => Operation::Ban,
            AdminAction::Unban { .. } => Operation::Unban,
            AdminAction::Trust { .. } | AdminAction::Untrust { .. } => Operation::Trust,
            AdminAction::List => Operation::ReadAdminData,
        };
        let Ok(mut access) = self.access.lock() else {
            return (
                AuthResponse::Refused {
                    reason: RefuseReason::Busy,
                },
                Effect::None,
            );
        };
        if let Err(level) = access.permits(&origin.peer, op, now_ms) {
            drop(access);
            deny(
                &self.audit,
                &metrics.auth_denials,
                &origin.peer,
                origin.addr,
                op,
                level,
            );
            return (
                AuthResponse::Refused {
                    reason: RefuseReason::InsufficientLevel,
                },
                Effect::None,
            );
        }
        let (result, effect, kind, target) = match action {
            AdminAction::Ban { peer, reason } => (
                access.ban(peer, reason, now_ms),
                Effect::Block(peer),
                Some(audit::Kind::Ban),
                Some(peer),
            ),
            AdminAction::Unban { peer } => (
                access.unban(&peer),
                Effect::Unblock(peer),
                Some(audit::Kind::Unban),
                Some(peer),
            ),
            AdminAction::Trust { peer } => (
                access.trust(peer, now_ms),
                Effect::None,
                Some(audit::Kind::Trust),
                Some(peer),
            ),
            AdminAction::Untrust { peer } => (
                access.untrust(&peer),
                Effect::None,
                Some(audit::Kind::Untrust),
                Some(peer),
            ),
            AdminAction::List => {
                let entries = access.entries();
                return (
                    AuthResponse::Admin {
                        message: format!("{} entries", entries.len()),
                        entries,
                    },
                    Effect::None,
                );
            }
        };
        metrics.banned_peers.set(access.banned().len() as i64);
        drop(access);
        match result {
            Ok(()) => {
                if let Some(kind) = kind {
                    self.audit.record(
                        kind,
                        audit::Fields {
                            peer: Some(&origin.peer),
                            addr: origin.addr,
                            target: target.as_ref(),
                            ..Default::default()
                        },
                    );
                }
                let action = match effect {
                    Effect::Block(_) => Some("ban"),
                    Effect::Unblock(_) => Some("unban"),
                    Effect::None | Effect::Federated(..) => None,
                };
                if let Some(action) = action {
                    metrics
                        .bans
                        .get_or_create(&ActionLabels {
                            action: action.into(),
                        })
                        .inc();
                }
                (
                    AuthResponse::Admin {
                        message: "done".into(),
                        entries: Vec::new(),
                    },
                    effect,
                )
            }
            Err(message) => (
                AuthResponse::Admin {
                    message: format!("refused: {message}"),
                    entries: Vec::new(),
                },
                Effect::None,
            ),
        }
    }
}

/// Counts (by operation and the level the peer had) and audits an operation refused for want
/// of level.
pub fn deny(
    audit: &Audit,
    denials: &prometheus_client::metrics::family::Family<
        DenialLabels,
        prometheus_client::metrics::counter::Counter,
    >,
    peer: &PeerId,
    addr: Option<&Multiaddr>,
    op: Operation,
    level: Level,
) {
    denials
        .get_or_create(&DenialLabels {
            operation: op.label().into(),
            level: level.label().into(),
        })
        .inc();
    audit.record(
        audit::Kind::Denial,
        audit::Fields {
            peer: Some(peer),
            addr,
            operation: Some(op.label()),
            level: Some(level.label()),
            ..Default::default()
        },
    );
}
