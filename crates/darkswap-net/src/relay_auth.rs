//! `/darkswap/auth/1` on the client: the glue between the node and darkswap-auth's client state
//! machine ([`ClientAuth`]). It remembers which request is ours, whether the relay granted us a
//! level on the current connection and until when, when to ask again after a refusal or a
//! failure, and which admin requests are in flight; it tells the node what to send and what to
//! report. The codec is `darkswap_proto::codecs::AuthCodec`. When the relay asks for an
//! identity stamp, it runs the search a slice at a time ([`RelayAuth::work`]) for the node.

use std::collections::HashSet;
use std::time::Duration;

use darkswap_auth::client::{ClientAuth, Credential, Step};
use darkswap_auth::stamp::StampSearch;
use darkswap_auth::{Method, RefuseReason};
use darkswap_proto::auth::{AuthRequest, AuthResponse, Grant};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::PeerId;
use web_time::Instant;

use crate::event::{AuthEvent, RelayStatus};
use crate::relay_link::jittered;

/// Admin requests in flight at once (more are refused at once; the CLI sends one at a time).
const MAX_ADMIN_REQUESTS: usize = 16;

/// What the node does after an answer or a failure.
#[derive(Debug)]
pub(crate) enum AuthOutcome {
    /// Not ours, or nothing to do.
    Nothing,
    /// Send this request to the relay (the next step of the exchange).
    Send(AuthRequest),
    /// The relay granted a level: report it; publishing may start; on the `first` grant of a
    /// connection, reserve; keep under the grant's limits.
    Granted { grant: Grant, first: bool },
    /// The relay refused: report `event`, and `status` when we had no grant to fall back on.
    Refused {
        event: AuthEvent,
        status: Option<RelayStatus>,
    },
    /// The relay does not speak the protocol: it alone decides what we may do; go on as if
    /// granted (`first` as in `Granted`).
    Unsupported { first: bool },
    /// The answer to an admin request.
    Admin(AuthEvent),
    /// The relay asks for an identity stamp: report `event`; [`RelayAuth::work`] runs the search.
    Working(AuthEvent),
}

/// The client's authentication with its relay (see the module documentation).
pub(crate) struct RelayAuth {
    client: ClientAuth,
    /// Granted on the current relay connection.
    authed: bool,
    request: Option<OutboundRequestId>,
    next_at: Option<Instant>,
    /// When the relay's current grant runs out (unix ms).
    grant_expires_at_ms: Option<u64>,
    admin_requests: HashSet<OutboundRequestId>,
    /// After a refusal, ask again after this long.
    retry_after_refusal: Duration,
    /// The identity-stamp search in progress, and when it began.
    search: Option<(StampSearch, Instant)>,
}

impl RelayAuth {
    pub fn new(
        credential: Credential,
        token: Option<Vec<u8>>,
        stamp: Option<u64>,
        retry_after_refusal: Duration,
    ) -> Self {
        RelayAuth {
            client: ClientAuth::new(credential, token).with_stamp(stamp),
            authed: false,
            request: None,
            next_at: None,
            grant_expires_at_ms: None,
            admin_requests: HashSet::new(),
            retry_after_refusal,
            search: None,
        }
    }

    /// Whether an identity-stamp search is in progress.
    pub fn searching(&self) -> bool {
        self.search.is_some()
    }

    /// Runs `budget` more tries of the stamp search. Once it finds one: the event to report,
    /// and the fresh challenge to send when the relay is connected (else the next connection
    /// answers with the stamp).
    pub fn work(&mut self, budget: u32, now: Instant) -> Option<(AuthEvent, AuthRequest)> {
        let (search, began) = self.search.as_mut()?;
        let stamp = search.run(budget)?;
        let event = AuthEvent::Stamped {
            stamp,
            bits: search.bits(),
            tries: search.tries(),
            elapsed: now.saturating_duration_since(*began),
        };
        self.search = None;
        Some((event, self.client.stamp_found(stamp)))
    }

    /// Whether the relay granted us a level on the current connection.
    pub fn is_authed(&self) -> bool {
        self.authed
    }

    /// The next request: a fresh challenge when `refresh`, else our cached token if it is still
    /// good, else a challenge; and, unless a refresh, the method to report as "authenticating".
    pub fn start(
        &mut self,
        refresh: bool,
        relay: &PeerId,
        local: &PeerId,
        now_ms: u64,
    ) -> (AuthRequest, Option<Method>) {
        let request = if refresh {
            self.client.challenge()
        } else {
            self.client.start(relay, local, now_ms)
        };
        let method = match &request {
            AuthRequest::Token { .. } => Method::Token,
            _ => self.client.credential().method(),
        };
        (request, (!refresh).then_some(method))
    }

    /// Our request went out as `id`.
    pub fn sent(&mut self, id: OutboundRequestId) {
        self.request = Some(id);
    }

    /// Whether another admin request may go out now.
    pub fn admin_room(&self) -> bool {
        self.admin_requests.len() < MAX_ADMIN_REQUESTS
    }

    /// An admin request went out as `id`.
    pub fn admin_sent(&mut self, id: OutboundRequestId) {
        self.admin_requests.insert(id);
    }

    /// Whether to authenticate now (and whether as a refresh of a grant we hold): a scheduled
    /// retry alone decides when to ask again after a refusal or failure; otherwise a token near
    /// its expiry is refreshed.
    pub fn due(&mut self, relay: &PeerId, now: Instant, now_ms: u64) -> Option<bool> {
        // While the stamp a challenge asked for is searched for, nothing is asked: the search
        // sends the next challenge itself.
        if self.request.is_some() || self.search.is_some() {
            return None;
        }
        let due = match self.next_at {
            Some(at) => now >= at,
            None => self.authed && self.client.refresh_due(relay, now_ms),
        };
        if !due {
            return None;
        }
        self.next_at = None;
        Some(self.authed)
    }

    /// True once, when the grant ran out before a refresh succeeded: the relay would refuse
    /// what we publish, so publishing stops until we are granted again (a retry is scheduled
    /// already).
    pub fn grant_expired(&mut self, now_ms: u64) -> bool {
        if self.authed && self.grant_expires_at_ms.is_some_and(|t| now_ms >= t) {
            self.authed = false;
            return true;
        }
        false
    }

    /// The relay connection is gone: whatever it granted goes with it.
    pub fn reset(&mut self) {
        self.authed = false;
        self.request = None;
        self.next_at = None;
        self.grant_expires_at_ms = None;
    }

    /// Use another way to prove ourselves (forgets the cached token).
    pub fn set_credential(&mut self, credential: Credential) {
        // Our identity's work stays ours, whatever we prove ourselves with next; a search for
        // more of it is only needed to answer identity challenges.
        let stamp = self.client.stamp();
        if !matches!(credential, Credential::Identity) {
            self.search = None;
        }
        self.client = ClientAuth::new(credential, None).with_stamp(stamp);
        self.request = None;
        self.next_at = None;
    }

    fn granted(&mut self) -> bool {
        let first = !self.authed;
        self.authed = true;
        first
    }

    /// What the auth behaviour reported for `relay`: an answer or a failure of one of our
    /// requests (after a failure the next try waits `backoff`); anything else is nothing to us.
    pub fn on_event(
        &mut self,
        event: request_response::Event<AuthRequest, AuthResponse>,
        key: &Keypair,
        relay: &PeerId,
        backoff: Duration,
        now: Instant,
    ) -> AuthOutcome {
        match event {
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => self.on_response(request_id, response, key, relay, now),
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => self.on_failure(request_id, &error, backoff, now),
            _ => AuthOutcome::Nothing,
        }
    }

    /// The relay answered request `id`.
    pub fn on_response(
        &mut self,
        id: OutboundRequestId,
        response: AuthResponse,
        key: &Keypair,
        relay: &PeerId,
        now: Instant,
    ) -> AuthOutcome {
        if self.admin_requests.remove(&id) {
            return AuthOutcome::Admin(match response {
                AuthResponse::Admin { message, entries } => AuthEvent::Admin {
                    message,
                    entries,
                    refused: None,
                },
                AuthResponse::Refused { reason } => AuthEvent::Admin {
                    message: reason.explain().to_string(),
                    entries: Vec::new(),
                    refused: Some(reason),
                },
                _ => AuthEvent::Admin {
                    message: "unexpected answer".into(),
                    entries: Vec::new(),
                    refused: Some(RefuseReason::Malformed),
                },
            });
        }
        if self.request != Some(id) {
            return AuthOutcome::Nothing;
        }
        self.request = None;
        match self.client.on_response(response, key, relay) {
            Step::Send(request) => AuthOutcome::Send(request),
            Step::Work { bits } => {
                if self.search.is_none() {
                    let local = key.public().to_peer_id();
                    self.search = Some((StampSearch::new(&local, bits), now));
                }
                AuthOutcome::Working(AuthEvent::Working { bits })
            }
            Step::Granted(grant) => {
                self.grant_expires_at_ms = Some(grant.expires_at_ms);
                AuthOutcome::Granted {
                    grant,
                    first: self.granted(),
                }
            }
            Step::Refused(reason) => {
                // Spread ±50 %: the traders behind one address refused together for its rate
                // come back over a minute, not all at once.
                let retry_in = jittered(self.retry_after_refusal, 0.5);
                self.next_at = Some(now + retry_in);
                // A refused refresh: what we were granted runs out at its expiry.
                let status = (!self.authed).then(|| RelayStatus::Failed {
                    reason: format!("the relay refused us: {}", reason.explain()),
                    retry_in,
                });
                AuthOutcome::Refused {
                    event: AuthEvent::Refused { reason, retry_in },
                    status,
                }
            }
        }
    }

    /// Request `id` failed; a failed exchange is tried again after `backoff`.
    pub fn on_failure(
        &mut self,
        id: OutboundRequestId,
        error: &OutboundFailure,
        backoff: Duration,
        now: Instant,
    ) -> AuthOutcome {
        if self.admin_requests.remove(&id) {
            return AuthOutcome::Admin(AuthEvent::Admin {
                message: format!("admin request failed: {error}"),
                entries: Vec::new(),
                refused: Some(RefuseReason::Busy),
            });
        }
        if self.request != Some(id) {
            return AuthOutcome::Nothing;
        }
        self.request = None;
        if matches!(error, OutboundFailure::UnsupportedProtocols) {
            return AuthOutcome::Unsupported {
                first: self.granted(),
            };
        }
        self.next_at = Some(now + backoff);
        AuthOutcome::Nothing
    }
}
