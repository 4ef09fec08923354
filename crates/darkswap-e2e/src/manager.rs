//! Sessions with many peers: at most one per peer and role, bounded in memory, pruned by idle
//! time and key age, with in-band rekeying.
//!
//! There is no clock in here: every call takes `now_ms` from its caller, so tests drive time.
//!
//! # Roles
//! A session has an initiator (the side that sent `init`) and a responder. In a request-response
//! protocol the initiator is the one that asks, and it keeps the session's pace: it seals
//! requests, starts rekeys, and starts over when its session is gone. Two traders may each take
//! the other's order at the same time, so a peer can have one session of each role with us;
//! keying sessions by `(PeerId, Role)` means such crossing handshakes never collide.
//!
//! # In-band rekey
//! When [`SessionManager::rekey_due`] (after [`RekeyPolicy::after_messages`] frames or
//! [`RekeyPolicy::after_ms`]), the initiator seals a fresh handshake `init` (new ephemeral X25519
//! key, signed like the first one) as a frame of the current epoch; the responder opens it,
//! answers with a sealed `resp` in the same epoch and switches to the new keys; the initiator
//! opens the answer and switches too. The old keys are zeroized as they are replaced, and frames
//! of the old epoch that arrive late are refused ([`SessionError::WrongEpoch`]). The new keys
//! come from the new ephemeral secrets alone, so neither the old keys nor the identity keys
//! reveal them, and the new keys do not reveal the old ones.
//!
//! # Inner frame
//! Every sealed plaintext starts with one kind byte: [`KIND_DATA`] (application message),
//! [`KIND_REKEY_INIT`] or [`KIND_REKEY_RESP`]. The kind is inside the AEAD, so nobody can turn
//! one into another.
//!
//! # Memory
//! At most [`ManagerLimits::max_sessions`] sessions (the least recently used goes first when a
//! new one needs room, after expired ones, except sessions with peers the caller names as
//! trading with it: see [`SessionManager::respond_keeping`]) and [`ManagerLimits::max_pending`] handshakes that we
//! started and that are not answered yet (more are refused, and unanswered ones expire after
//! [`ManagerLimits::handshake_ttl_ms`]). A responder keeps nothing between `init` and `resp`.

use std::collections::{HashMap, HashSet};

use libp2p_identity::{Keypair, PeerId};
use zeroize::Zeroizing;

use crate::aead::Cipher;
use crate::handshake::{HandshakeError, Initiator, Responder};
use crate::session::{RekeyPolicy, Session, SessionError};

/// Sessions kept at once (both roles together). A session is ~200 bytes.
pub const MAX_SESSIONS: usize = 512;
/// Handshakes we started and wait an answer for.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// A session unused this long is dropped (its keys zeroized); the next message starts over.
pub const SESSION_IDLE_TTL_MS: u64 = 15 * 60_000;
/// A handshake or rekey unanswered this long is given up.
pub const HANDSHAKE_TTL_MS: u64 = 30_000;

/// Inner frame kind: an application message.
pub const KIND_DATA: u8 = 0;
/// Inner frame kind: a rekey `init`.
pub const KIND_REKEY_INIT: u8 = 1;
/// Inner frame kind: a rekey `resp`.
pub const KIND_REKEY_RESP: u8 = 2;

/// Which end of a session we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We sent `init`: we ask, and we rekey.
    Initiator,
    /// We answered `init`.
    Responder,
}

/// The manager's bounds and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ManagerLimits {
    /// Most sessions held at once, both roles together ([`MAX_SESSIONS`] by default). A new
    /// session that needs room first prunes stale ones, then evicts the least recently used.
    pub max_sessions: usize,
    /// Most handshakes we started that wait for an answer ([`MAX_PENDING_HANDSHAKES`] by
    /// default); [`SessionManager::start`] refuses more with [`E2eError::TooManyHandshakes`].
    pub max_pending: usize,
    /// Milliseconds a session may go without sealing or opening a frame before it is dropped
    /// ([`SESSION_IDLE_TTL_MS`] by default).
    pub idle_ttl_ms: u64,
    /// Milliseconds a handshake or in-band rekey may wait for its answer ([`HANDSHAKE_TTL_MS`]
    /// by default). A handshake past it is given up; a session whose rekey is past it is dropped.
    pub handshake_ttl_ms: u64,
    /// When an initiator session is due a rekey. Twice its `after_ms` is also the most a key
    /// may age, whichever side we are ([`ManagerLimits::max_key_age_ms`]).
    pub rekey: RekeyPolicy,
}

impl Default for ManagerLimits {
    fn default() -> Self {
        ManagerLimits {
            max_sessions: MAX_SESSIONS,
            max_pending: MAX_PENDING_HANDSHAKES,
            idle_ttl_ms: SESSION_IDLE_TTL_MS,
            handshake_ttl_ms: HANDSHAKE_TTL_MS,
            rekey: RekeyPolicy::default(),
        }
    }
}

impl ManagerLimits {
    /// A key older than this is dropped even if the initiator never rekeyed it (a responder
    /// cannot rekey by itself): twice the rekey period.
    pub fn max_key_age_ms(&self) -> u64 {
        self.rekey.after_ms.saturating_mul(2)
    }
}

/// Why the session manager refuses a call or a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E2eError {
    /// No live session with this peer in this role: never made, removed, evicted, or dropped
    /// as idle, over-age or with an unanswered rekey.
    #[error("no session with this peer")]
    NoSession,
    /// No handshake we started with this peer waits for an answer: none was started, it was
    /// cancelled or already finished, or it is older than
    /// [`ManagerLimits::handshake_ttl_ms`].
    #[error("no handshake with this peer is waiting for an answer")]
    NoHandshake,
    /// [`ManagerLimits::max_pending`] handshakes with other peers already wait for answers.
    #[error("too many handshakes in progress")]
    TooManyHandshakes,
    /// Every session is one the caller asked to keep (see [`SessionManager::respond_keeping`]):
    /// a new one is refused rather than evict one of those.
    #[error("every session is in use by a live trade")]
    SessionsFull,
    /// Our rekey with this peer waits for its answer: until it arrives nothing is sealed and no
    /// other rekey starts.
    #[error("a rekey with this peer is in progress")]
    Rekeying,
    /// An opened frame's kind byte is missing, unknown, or wrong for our role (a rekey `init`
    /// to the initiator, a rekey `resp` to the responder or one we did not ask for).
    #[error("unexpected inner frame kind")]
    UnexpectedKind,
    /// A handshake or rekey message was refused, or ours could not be made.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The session refused to seal, open or rekey.
    #[error("frame: {0}")]
    Session(#[from] SessionError),
}

impl E2eError {
    /// A short, fixed label (for metrics).
    pub fn label(&self) -> &'static str {
        match self {
            E2eError::NoSession => "no_session",
            E2eError::NoHandshake => "no_handshake",
            E2eError::TooManyHandshakes => "too_many_handshakes",
            E2eError::SessionsFull => "sessions_full",
            E2eError::Rekeying => "rekeying",
            E2eError::UnexpectedKind => "unexpected_kind",
            E2eError::Handshake(_) => "handshake",
            E2eError::Session(SessionError::Malformed) => "malformed",
            E2eError::Session(SessionError::WrongEpoch) => "wrong_epoch",
            E2eError::Session(SessionError::Replay) => "replay",
            E2eError::Session(SessionError::TooOld) => "too_old",
            E2eError::Session(SessionError::Forged) => "forged",
            E2eError::Session(SessionError::Exhausted) => "exhausted",
        }
    }
}

/// What an opened frame was.
#[derive(Debug, PartialEq, Eq)]
pub enum Opened {
    /// An application message.
    Data(Vec<u8>),
    /// (Responder) the initiator asks for a rekey: answer with [`SessionManager::answer_rekey`].
    RekeyRequested(Vec<u8>),
    /// (Initiator) our rekey was answered: the session now uses the keys of `epoch`.
    Rekeyed {
        /// The new key epoch.
        epoch: u32,
    },
}

struct Entry {
    session: Session,
    last_used_ms: u64,
    /// (Initiator) the rekey we started and when.
    rekeying: Option<(Initiator, u64)>,
}

/// All our sessions. See the module docs.
pub struct SessionManager {
    identity: Keypair,
    limits: ManagerLimits,
    sessions: HashMap<(PeerId, Role), Entry>,
    pending: HashMap<PeerId, (Initiator, u64)>,
}

/// The inner frame to seal; wiped when dropped, like every plaintext buffer of ours.
fn inner(kind: u8, body: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut plaintext = Zeroizing::new(Vec::with_capacity(1 + body.len()));
    plaintext.push(kind);
    plaintext.extend_from_slice(body);
    plaintext
}

impl SessionManager {
    /// A manager with no sessions that signs its handshakes with `identity` and keeps to
    /// `limits`.
    pub fn new(identity: Keypair, limits: ManagerLimits) -> Self {
        SessionManager {
            identity,
            limits,
            sessions: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// The bounds and timers in force.
    pub fn limits(&self) -> ManagerLimits {
        self.limits
    }

    /// Sessions held (both roles).
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no sessions are held (pending handshakes are not counted).
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Handshakes we started that are not answered yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Whether we hold a session of `role` with `peer`. A stale one counts until a call that
    /// uses it, or [`prune`](Self::prune), drops it.
    pub fn has_session(&self, peer: &PeerId, role: Role) -> bool {
        self.sessions.contains_key(&(*peer, role))
    }

    /// Whether a handshake we started with `peer` waits for its answer. One past
    /// [`ManagerLimits::handshake_ttl_ms`] still counts until it is pruned
    /// ([`start`](Self::start) and [`prune`](Self::prune) do that) or finished.
    pub fn handshake_pending(&self, peer: &PeerId) -> bool {
        self.pending.contains_key(peer)
    }

    /// (Initiator) a rekey of our session with `peer` is waiting for its answer.
    pub fn rekeying(&self, peer: &PeerId) -> bool {
        self.sessions
            .get(&(*peer, Role::Initiator))
            .is_some_and(|e| e.rekeying.is_some())
    }

    /// The cipher and key epoch of a session.
    pub fn describe(&self, peer: &PeerId, role: Role) -> Option<(Cipher, u32)> {
        self.sessions
            .get(&(*peer, role))
            .map(|e| (e.session.cipher(), e.session.epoch()))
    }

    /// (Initiator) whether our session with `peer` should rekey now (and is not already).
    pub fn rekey_due(&self, peer: &PeerId, now_ms: u64) -> bool {
        self.sessions
            .get(&(*peer, Role::Initiator))
            .is_some_and(|e| {
                e.rekeying.is_none() && e.session.rekey_due_under(self.limits.rekey, now_ms)
            })
    }

    /// Starts a handshake with `peer` (replacing one already waiting): the `init` to send.
    pub fn start(&mut self, peer: PeerId, now_ms: u64) -> Result<Vec<u8>, E2eError> {
        self.prune_pending(now_ms);
        if !self.pending.contains_key(&peer) && self.pending.len() >= self.limits.max_pending {
            return Err(E2eError::TooManyHandshakes);
        }
        let (initiator, init) = Initiator::start(&self.identity, peer)?;
        self.pending.insert(peer, (initiator, now_ms));
        Ok(init)
    }

    /// Completes the handshake we started with `peer` with its `resp`. Our previous initiator
    /// session with `peer`, if any, is replaced. A bad answer ends the handshake.
    pub fn finish(&mut self, peer: PeerId, resp: &[u8], now_ms: u64) -> Result<Cipher, E2eError> {
        self.finish_keeping(peer, resp, now_ms, &HashSet::new())
    }

    /// [`SessionManager::finish`], never evicting a session with a peer in `keep` (the peers
    /// of live trades) to make room: when only those are left, [`E2eError::SessionsFull`].
    pub fn finish_keeping(
        &mut self,
        peer: PeerId,
        resp: &[u8],
        now_ms: u64,
        keep: &HashSet<PeerId>,
    ) -> Result<Cipher, E2eError> {
        let (initiator, started) = self.pending.remove(&peer).ok_or(E2eError::NoHandshake)?;
        if now_ms.saturating_sub(started) > self.limits.handshake_ttl_ms {
            return Err(E2eError::NoHandshake);
        }
        let session = initiator.finish(resp, now_ms)?;
        let cipher = session.cipher();
        self.insert((peer, Role::Initiator), session, now_ms, keep)?;
        Ok(cipher)
    }

    /// Answers an `init` from `peer`: the `resp` to send. Our previous responder session with
    /// `peer`, if any, is replaced (the peer restarted or lost it). Nothing is kept on failure.
    pub fn respond(
        &mut self,
        peer: PeerId,
        init: &[u8],
        now_ms: u64,
    ) -> Result<(Vec<u8>, Cipher), E2eError> {
        self.respond_keeping(peer, init, now_ms, &HashSet::new())
    }

    /// [`SessionManager::respond`], never evicting a session with a peer in `keep` (the peers
    /// of live trades) to make room: when only those are left, [`E2eError::SessionsFull`]. A
    /// flood of handshakes from fresh identities then evicts only sessions nobody trades on.
    pub fn respond_keeping(
        &mut self,
        peer: PeerId,
        init: &[u8],
        now_ms: u64,
        keep: &HashSet<PeerId>,
    ) -> Result<(Vec<u8>, Cipher), E2eError> {
        let (session, resp) = Responder::respond(&self.identity, peer, init, now_ms)?;
        let cipher = session.cipher();
        self.insert((peer, Role::Responder), session, now_ms, keep)?;
        Ok((resp, cipher))
    }

    fn insert(
        &mut self,
        key: (PeerId, Role),
        session: Session,
        now_ms: u64,
        keep: &HashSet<PeerId>,
    ) -> Result<(), E2eError> {
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.limits.max_sessions {
            self.prune(now_ms);
        }
        if !self.sessions.contains_key(&key) && self.sessions.len() >= self.limits.max_sessions {
            let lru = self
                .sessions
                .iter()
                .filter(|((peer, _), _)| !keep.contains(peer))
                .min_by_key(|(_, e)| e.last_used_ms)
                .map(|(k, _)| *k)
                .ok_or(E2eError::SessionsFull)?;
            self.sessions.remove(&lru);
        }
        self.sessions.insert(
            key,
            Entry {
                session,
                last_used_ms: now_ms,
                rekeying: None,
            },
        );
        Ok(())
    }

    /// A live entry, or none: an idle or over-age one is dropped on the spot.
    fn entry(&mut self, key: (PeerId, Role), now_ms: u64) -> Result<&mut Entry, E2eError> {
        let limits = self.limits;
        let stale = match self.sessions.get(&key) {
            None => return Err(E2eError::NoSession),
            Some(e) => Self::stale(&limits, e, now_ms),
        };
        if stale {
            self.sessions.remove(&key);
            return Err(E2eError::NoSession);
        }
        self.sessions.get_mut(&key).ok_or(E2eError::NoSession)
    }

    fn stale(limits: &ManagerLimits, e: &Entry, now_ms: u64) -> bool {
        now_ms.saturating_sub(e.last_used_ms) > limits.idle_ttl_ms
            || now_ms.saturating_sub(e.session.keyed_at_ms()) > limits.max_key_age_ms()
            || e.rekeying
                .as_ref()
                .is_some_and(|(_, at)| now_ms.saturating_sub(*at) > limits.handshake_ttl_ms)
    }

    /// Seals an application message to `peer` in our session of `role`. While our own rekey is
    /// waiting for its answer nothing is sealed ([`E2eError::Rekeying`]): the responder may
    /// already be on the new keys.
    pub fn seal(
        &mut self,
        peer: PeerId,
        role: Role,
        aad: &[u8],
        message: &[u8],
        now_ms: u64,
    ) -> Result<Vec<u8>, E2eError> {
        let entry = self.entry((peer, role), now_ms)?;
        if entry.rekeying.is_some() {
            return Err(E2eError::Rekeying);
        }
        let frame = entry.session.seal(aad, &inner(KIND_DATA, message))?;
        entry.last_used_ms = now_ms;
        Ok(frame)
    }

    /// (Initiator) starts an in-band rekey: the sealed `init` to send as a frame.
    pub fn start_rekey(
        &mut self,
        peer: PeerId,
        aad: &[u8],
        now_ms: u64,
    ) -> Result<Vec<u8>, E2eError> {
        let identity = self.identity.clone();
        let entry = self.entry((peer, Role::Initiator), now_ms)?;
        if entry.rekeying.is_some() {
            return Err(E2eError::Rekeying);
        }
        let (initiator, init) = Initiator::start(&identity, peer)?;
        let frame = entry.session.seal(aad, &inner(KIND_REKEY_INIT, &init))?;
        entry.rekeying = Some((initiator, now_ms));
        entry.last_used_ms = now_ms;
        Ok(frame)
    }

    /// Opens a frame from `peer` in our session of `role`. A frame that fails to open changes
    /// nothing; a rekey answer that does not verify ends the session (fail closed: the two
    /// sides may no longer agree on the keys).
    pub fn open(
        &mut self,
        peer: PeerId,
        role: Role,
        aad: &[u8],
        frame: &[u8],
        now_ms: u64,
    ) -> Result<Opened, E2eError> {
        let key = (peer, role);
        let entry = self.entry(key, now_ms)?;
        let plaintext = Zeroizing::new(entry.session.open(aad, frame)?);
        entry.last_used_ms = now_ms;
        let (kind, body) = match plaintext.split_first() {
            Some((kind, body)) => (*kind, body.to_vec()),
            None => (u8::MAX, Vec::new()),
        };
        drop(plaintext);
        match (kind, role) {
            (KIND_DATA, _) => Ok(Opened::Data(body)),
            (KIND_REKEY_INIT, Role::Responder) => Ok(Opened::RekeyRequested(body)),
            (KIND_REKEY_RESP, Role::Initiator) => {
                let Some((initiator, _)) = entry.rekeying.take() else {
                    return Err(E2eError::UnexpectedKind);
                };
                let result = initiator
                    .finish(&body, now_ms)
                    .map_err(E2eError::from)
                    .and_then(|fresh| entry.session.rekey(fresh).map_err(E2eError::from));
                match result {
                    Ok(()) => Ok(Opened::Rekeyed {
                        epoch: entry.session.epoch(),
                    }),
                    Err(e) => {
                        self.sessions.remove(&key);
                        Err(e)
                    }
                }
            }
            _ => Err(E2eError::UnexpectedKind),
        }
    }

    /// (Responder) answers a rekey `init` opened from `peer`: seals our `resp` under the
    /// current keys, then switches to the new ones (the old ones are zeroized). Returns the
    /// frame to send and the new epoch. A bad `init` leaves the session as it was.
    pub fn answer_rekey(
        &mut self,
        peer: PeerId,
        init: &[u8],
        reply_aad: &[u8],
        now_ms: u64,
    ) -> Result<(Vec<u8>, u32), E2eError> {
        let identity = self.identity.clone();
        let entry = self.entry((peer, Role::Responder), now_ms)?;
        let (fresh, resp) = Responder::respond(&identity, peer, init, now_ms)?;
        let frame = entry
            .session
            .seal(reply_aad, &inner(KIND_REKEY_RESP, &resp))?;
        entry.session.rekey(fresh)?;
        entry.last_used_ms = now_ms;
        Ok((frame, entry.session.epoch()))
    }

    /// Forgets our session of `role` with `peer` (its keys are zeroized).
    pub fn remove(&mut self, peer: &PeerId, role: Role) -> bool {
        self.sessions.remove(&(*peer, role)).is_some()
    }

    /// Forgets a handshake we started with `peer`.
    pub fn cancel_handshake(&mut self, peer: &PeerId) -> bool {
        self.pending.remove(peer).is_some()
    }

    fn prune_pending(&mut self, now_ms: u64) {
        let ttl = self.limits.handshake_ttl_ms;
        self.pending
            .retain(|_, (_, at)| now_ms.saturating_sub(*at) <= ttl);
    }

    /// Drops idle sessions, keys past their maximum age, unanswered rekeys and handshakes.
    /// Returns how many sessions went.
    pub fn prune(&mut self, now_ms: u64) -> usize {
        self.prune_pending(now_ms);
        let before = self.sessions.len();
        let limits = self.limits;
        self.sessions
            .retain(|_, e| !Self::stale(&limits, e, now_ms));
        before - self.sessions.len()
    }
}

#[cfg(test)]
mod tests;
