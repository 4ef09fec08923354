//! The client's side of `/darkswap/auth/1`, the same in the browser and the CLI: present a cached
//! token if it is still good for a while, otherwise ask for a challenge and answer it; when a
//! token is refused (expired, revoked), fall back to a challenge by itself; refresh before expiry.
//! When the relay asks for an identity stamp it does not hold, it says how much work to do
//! ([`Step::Work`]); the caller runs a [`StampSearch`](crate::stamp::StampSearch) and hands the
//! stamp back ([`ClientAuth::stamp_found`]), which is then sent with every answer.

use libp2p_identity::{Keypair, PeerId};

use crate::proof::{identity_answer, relay_answer, Binding, SharedKey};
use crate::stamp::stamp_bits;
use crate::token::{self, Claims};
use darkswap_proto::auth::{AuthRequest, AuthResponse, Grant, Method, RefuseReason};

/// How the client proves itself.
#[derive(Debug, Clone)]
pub enum Credential {
    /// Sign challenges with the identity key (nothing to enter).
    Identity,
    /// Answer challenges with an operator-given shared key.
    SharedKey(SharedKey),
    /// A relay proving itself to another: sign challenges with the relay's identity key and
    /// send its signed relay record along (the newest, set with [`ClientAuth::set_record`]).
    Relay {
        /// The relay's signed record, as it travels.
        record: Vec<u8>,
    },
}

impl Credential {
    /// The challenge method it answers: [`Method::Identity`] or [`Method::SharedKey`].
    pub fn method(&self) -> Method {
        match self {
            Credential::Identity => Method::Identity,
            Credential::SharedKey(_) => Method::SharedKey,
            Credential::Relay { .. } => Method::Relay,
        }
    }
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Send this request to the relay and pass its answer to [`ClientAuth::on_response`].
    Send(AuthRequest),
    /// The relay let us in; a token in the grant that decodes is kept for the next connection.
    Granted(Grant),
    /// The exchange ended without a grant: the relay refused, its answer did not fit what was
    /// asked ([`RefuseReason::Malformed`]), or the identity key could not sign
    /// ([`RefuseReason::WrongProof`]).
    Refused(RefuseReason),
    /// The relay asks for an identity stamp of `bits` (at most
    /// [`MAX_STAMP_BITS`](crate::stamp::MAX_STAMP_BITS)): find one for our PeerId and pass it
    /// to [`ClientAuth::stamp_found`], which asks for a fresh challenge.
    Work {
        /// The work asked for.
        bits: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Awaiting {
    Nothing,
    Token,
    Challenge,
    Answer,
}

/// One client's authentication with one relay.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    credential: Credential,
    token: Option<(Vec<u8>, Claims)>,
    awaiting: Awaiting,
    /// Our identity stamp, once found.
    stamp: Option<u64>,
}

/// Refresh this long before expiry at most (and at a fifth of a short token's lifetime).
pub const REFRESH_MARGIN_MS: u64 = 60_000;

impl ClientAuth {
    /// `cached` is a token from an earlier run (the browser keeps it in IndexedDB).
    pub fn new(credential: Credential, cached: Option<Vec<u8>>) -> Self {
        let token = cached.and_then(|t| token::peek(&t).ok().map(|c| (t, c)));
        ClientAuth {
            credential,
            token,
            awaiting: Awaiting::Nothing,
            stamp: None,
        }
    }

    /// The identity stamp held, if any.
    pub fn stamp(&self) -> Option<u64> {
        self.stamp
    }

    /// The same client holding `stamp`, our identity's work from before (e.g. under another
    /// credential).
    pub fn with_stamp(mut self, stamp: Option<u64>) -> Self {
        self.stamp = stamp;
        self
    }

    /// A stamp found after [`Step::Work`]: kept, and a fresh challenge to send (the one that
    /// asked may have expired during the search).
    pub fn stamp_found(&mut self, stamp: u64) -> AuthRequest {
        self.stamp = Some(stamp);
        self.challenge()
    }

    /// A relay's newer record, sent with its next answer (no effect on other credentials).
    pub fn set_record(&mut self, record: Vec<u8>) {
        if let Credential::Relay { record: held } = &mut self.credential {
            *held = record;
        }
    }

    /// How this client proves itself.
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The token held and what it claims (unverified: the relay is the judge).
    pub fn token(&self) -> Option<(&[u8], &Claims)> {
        self.token.as_ref().map(|(t, c)| (t.as_slice(), c))
    }

    fn usable_token(&self, relay: &PeerId, local: &PeerId, now_ms: u64) -> Option<&[u8]> {
        let (bytes, claims) = self.token.as_ref()?;
        (claims.relay == *relay && claims.peer == *local && !refresh_due(claims, now_ms))
            .then_some(bytes.as_slice())
    }

    /// The first request on a new connection.
    pub fn start(&mut self, relay: &PeerId, local: &PeerId, now_ms: u64) -> AuthRequest {
        if let Some(token) = self.usable_token(relay, local, now_ms) {
            let request = AuthRequest::Token {
                token: token.to_vec(),
            };
            self.awaiting = Awaiting::Token;
            return request;
        }
        self.challenge()
    }

    /// A fresh challenge (used to refresh a token before it expires).
    pub fn challenge(&mut self) -> AuthRequest {
        self.awaiting = Awaiting::Challenge;
        AuthRequest::Challenge {
            method: self.credential.method(),
        }
    }

    /// Whether the token held for `relay` should be renewed now (a token from another relay
    /// is no concern of this one).
    pub fn refresh_due(&self, relay: &PeerId, now_ms: u64) -> bool {
        self.token
            .as_ref()
            .is_some_and(|(_, claims)| claims.relay == *relay && refresh_due(claims, now_ms))
    }

    /// Handles the relay's answer to our last request.
    pub fn on_response(&mut self, response: AuthResponse, key: &Keypair, relay: &PeerId) -> Step {
        let awaiting = std::mem::replace(&mut self.awaiting, Awaiting::Nothing);
        match (awaiting, response) {
            (
                Awaiting::Challenge,
                AuthResponse::Challenge {
                    method,
                    nonce,
                    expires_at_ms,
                    stamp_bits: wanted,
                },
            ) if method == self.credential.method() => {
                let local = key.public().to_peer_id();
                let held = self.stamp.map_or(0, |s| stamp_bits(&local, s));
                if wanted > crate::stamp::MAX_STAMP_BITS {
                    // Decoding refuses it already; never search for more than the cap.
                    return Step::Refused(RefuseReason::Malformed);
                }
                if wanted > held {
                    return Step::Work { bits: wanted };
                }
                let binding = Binding {
                    nonce: &nonce,
                    relay,
                    client: &local,
                    expires_at_ms,
                };
                let proof = match &self.credential {
                    Credential::Identity => match identity_answer(key, &binding) {
                        Some(sig) => sig,
                        None => return Step::Refused(RefuseReason::WrongProof),
                    },
                    Credential::SharedKey(k) => k.answer(&binding),
                    Credential::Relay { .. } => match relay_answer(key, &binding) {
                        Some(sig) => sig,
                        None => return Step::Refused(RefuseReason::WrongProof),
                    },
                };
                let record = match &self.credential {
                    Credential::Relay { record } => Some(record.clone()),
                    _ => None,
                };
                self.awaiting = Awaiting::Answer;
                Step::Send(AuthRequest::Answer {
                    nonce,
                    proof,
                    stamp: self.stamp,
                    record,
                })
            }
            // After a challenge request too: a relay that admits us without proof (open, or
            // our key on its allowlist) says so straight away, without a token.
            (
                Awaiting::Challenge | Awaiting::Token | Awaiting::Answer,
                AuthResponse::Granted(grant),
            ) => {
                if let Ok(claims) = token::peek(&grant.token) {
                    self.token = Some((grant.token.clone(), claims));
                }
                Step::Granted(grant)
            }
            (Awaiting::Token, AuthResponse::Refused { reason }) if reason.voids_token() => {
                // The cached token is no good here (expired, revoked, another relay's): forget
                // it and prove ourselves afresh.
                self.token = None;
                Step::Send(self.challenge())
            }
            (_, AuthResponse::Refused { reason }) => Step::Refused(reason),
            _ => Step::Refused(RefuseReason::Malformed),
        }
    }
}

fn refresh_due(claims: &Claims, now_ms: u64) -> bool {
    let lifetime = claims.expires_at_ms.saturating_sub(claims.issued_at_ms);
    let margin = REFRESH_MARGIN_MS.min(lifetime / 5);
    now_ms.saturating_add(margin) >= claims.expires_at_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::verify_identity;
    use crate::token::issue;
    use crate::Level;

    /// A token `relay_key` signs for `peer`: authenticated by identity, for an hour from 0.
    fn identity_token(relay_key: &Keypair, peer: PeerId) -> Vec<u8> {
        let claims = Claims {
            relay: relay_key.public().to_peer_id(),
            peer,
            level: Level::Authenticated,
            method: Method::Identity,
            issued_at_ms: 0,
            expires_at_ms: 3_600_000,
            shared_key: None,
            stamp_bits: 0,
        };
        issue(relay_key, &claims).unwrap()
    }

    #[test]
    fn identity_flow_answers_the_challenge_and_keeps_the_token() {
        let key = Keypair::generate_ed25519();
        let relay_key = Keypair::generate_ed25519();
        let relay = relay_key.public().to_peer_id();
        let local = key.public().to_peer_id();
        let mut c = ClientAuth::new(Credential::Identity, None);
        assert_eq!(
            c.start(&relay, &local, 0),
            AuthRequest::Challenge {
                method: Method::Identity
            }
        );
        let step = c.on_response(
            AuthResponse::Challenge {
                method: Method::Identity,
                nonce: [5; 32],
                expires_at_ms: 30_000,
                stamp_bits: 0,
            },
            &key,
            &relay,
        );
        let Step::Send(AuthRequest::Answer { nonce, proof, .. }) = step else {
            panic!("{step:?}")
        };
        assert!(verify_identity(
            &Binding {
                nonce: &nonce,
                relay: &relay,
                client: &local,
                expires_at_ms: 30_000
            },
            &proof
        ));
        let token = identity_token(&relay_key, local);
        let step = c.on_response(
            AuthResponse::Granted(Grant {
                level: Level::Authenticated,
                method: Method::Identity,
                token: token.clone(),
                expires_at_ms: 3_600_000,
                limits: None,
            }),
            &key,
            &relay,
        );
        assert!(matches!(step, Step::Granted(_)));
        // Next connection: the token, until a minute before expiry.
        assert_eq!(
            c.start(&relay, &local, 1_000),
            AuthRequest::Token {
                token: token.clone()
            }
        );
        assert!(!c.refresh_due(&relay, 3_539_999));
        assert!(c.refresh_due(&relay, 3_540_000));
        let other_relay = Keypair::generate_ed25519().public().to_peer_id();
        assert!(!c.refresh_due(&other_relay, 3_540_000));
        assert!(matches!(
            c.start(&relay, &local, 3_540_000),
            AuthRequest::Challenge { .. }
        ));
        // A refused token falls back to a challenge by itself.
        c.start(&relay, &local, 1_000);
        let step = c.on_response(
            AuthResponse::Refused {
                reason: RefuseReason::RevokedToken,
            },
            &key,
            &relay,
        );
        assert_eq!(
            step,
            Step::Send(AuthRequest::Challenge {
                method: Method::Identity
            })
        );
        assert!(c.token().is_none());
    }

    #[test]
    fn a_busy_relay_does_not_cost_the_token() {
        let key = Keypair::generate_ed25519();
        let relay_key = Keypair::generate_ed25519();
        let relay = relay_key.public().to_peer_id();
        let local = key.public().to_peer_id();
        let token = identity_token(&relay_key, local);
        let mut c = ClientAuth::new(Credential::Identity, Some(token));
        c.start(&relay, &local, 1_000);
        let step = c.on_response(
            AuthResponse::Refused {
                reason: RefuseReason::RateLimited,
            },
            &key,
            &relay,
        );
        assert_eq!(step, Step::Refused(RefuseReason::RateLimited));
        assert!(c.token().is_some(), "kept for the retry");
    }

    #[test]
    fn unexpected_answers_are_refusals() {
        let key = Keypair::generate_ed25519();
        let relay = Keypair::generate_ed25519().public().to_peer_id();
        let mut c = ClientAuth::new(
            Credential::SharedKey(SharedKey::new(&[1; 32]).unwrap()),
            Some(vec![1, 2, 3]),
        );
        assert!(c.token().is_none(), "garbage cache is dropped");
        // A grant nobody asked for.
        let step = c.on_response(
            AuthResponse::Granted(Grant {
                level: Level::Admin,
                method: Method::Token,
                token: vec![],
                expires_at_ms: 1,
                limits: None,
            }),
            &key,
            &relay,
        );
        assert_eq!(step, Step::Refused(RefuseReason::Malformed));
        // A challenge for another method than ours.
        c.challenge();
        let step = c.on_response(
            AuthResponse::Challenge {
                method: Method::Identity,
                nonce: [0; 32],
                expires_at_ms: 1,
                stamp_bits: 0,
            },
            &key,
            &relay,
        );
        assert_eq!(step, Step::Refused(RefuseReason::Malformed));
    }

    #[test]
    fn a_relay_that_asks_for_work_gets_it_once() {
        let key = Keypair::generate_ed25519();
        let local = key.public().to_peer_id();
        let relay = Keypair::generate_ed25519().public().to_peer_id();
        let mut c = ClientAuth::new(Credential::Identity, None);
        let challenge = |bits| AuthResponse::Challenge {
            method: Method::Identity,
            nonce: [9; 32],
            expires_at_ms: 30_000,
            stamp_bits: bits,
        };
        c.start(&relay, &local, 0);
        assert_eq!(
            c.on_response(challenge(10), &key, &relay),
            Step::Work { bits: 10 }
        );
        // Nothing is awaited until the stamp is found: a stray answer is refused.
        assert_eq!(
            c.on_response(challenge(10), &key, &relay),
            Step::Refused(RefuseReason::Malformed)
        );
        let stamp = crate::stamp::StampSearch::new(&local, 10)
            .run(u32::MAX)
            .unwrap();
        assert_eq!(
            c.stamp_found(stamp),
            AuthRequest::Challenge {
                method: Method::Identity
            }
        );
        let Step::Send(AuthRequest::Answer { stamp: sent, .. }) =
            c.on_response(challenge(10), &key, &relay)
        else {
            panic!("an answer")
        };
        assert_eq!(sent, Some(stamp));
        // A relay asking for less gets the same stamp; one asking for more, more work.
        c.challenge();
        assert!(matches!(
            c.on_response(challenge(4), &key, &relay),
            Step::Send(AuthRequest::Answer { stamp: Some(_), .. })
        ));
        // More than any client does is refused, not searched for.
        c.challenge();
        assert_eq!(
            c.on_response(challenge(crate::stamp::MAX_STAMP_BITS + 1), &key, &relay),
            Step::Refused(RefuseReason::Malformed)
        );
        c.challenge();
        let more = stamp_bits(&local, stamp) + 1;
        assert_eq!(
            c.on_response(challenge(more), &key, &relay),
            Step::Work { bits: more }
        );
    }
}
