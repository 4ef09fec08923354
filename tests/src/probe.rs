//! A bare client that speaks `/darkswap/auth/1`, circuit relay v2 and gossipsub by hand, as a
//! hostile or careless peer would: it can skip authentication, replay answers, present forged
//! tokens, and then try to reserve or publish.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use darkswap_auth::proof::{identity_answer, Binding, SharedKey};
use darkswap_auth::{Method, AUTH_PROTOCOL, NONCE_BYTES};
use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::request_response::{self, ProtocolSupport};
use darkswap_net::libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use darkswap_net::libp2p::{
    identity::Keypair, noise, relay, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm,
};
use darkswap_proto::auth::{AuthRequest, AuthResponse};
use darkswap_proto::codecs::AuthCodec;
use darkswap_proto::frame::{Frame, FrameCodec};
use futures::StreamExt;

use crate::Relay;

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "darkswap_net::libp2p::swarm::derive_prelude")]
pub struct ProbeBehaviour {
    auth: request_response::Behaviour<AuthCodec>,
    relay: relay::client::Behaviour,
    raw: request_response::Behaviour<RawCodec>,
}

/// Whatever bytes the caller chooses, as one frame, on any of the relay's request-response
/// protocols: what a careless or hostile peer can put on the wire, the protocols' caps ignored.
#[derive(Debug, Clone)]
pub struct RawFrame(pub Vec<u8>);

impl Frame for RawFrame {
    const MAX_BYTES: u64 = 1 << 20;
    type Error = std::convert::Infallible;
    fn to_bytes(&self) -> Vec<u8> {
        self.0.clone()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, Self::Error> {
        Ok(RawFrame(bytes.to_vec()))
    }
}

/// The codec of [`RawFrame`]s both ways.
pub type RawCodec = FrameCodec<RawFrame, RawFrame>;

/// The outcome of request `id`, if `event` is it: the answer, or why there is none.
pub fn answer_to<Req, Resp>(
    id: request_response::OutboundRequestId,
    event: request_response::Event<Req, Resp>,
) -> Option<Result<std::result::Result<Resp, request_response::OutboundFailure>>> {
    match event {
        request_response::Event::Message {
            message:
                request_response::Message::Response {
                    request_id,
                    response,
                },
            ..
        } if request_id == id => Some(Ok(Ok(response))),
        request_response::Event::OutboundFailure {
            request_id, error, ..
        } if request_id == id => Some(Ok(Err(error))),
        _ => None,
    }
}

/// The relay's request-response protocols, for [`Probe::connect_raw`].
pub const RELAY_PROTOCOLS: [&str; 3] = [
    AUTH_PROTOCOL,
    darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL,
    darkswap_proto::DIRECTORY_PROTOCOL,
];

pub struct Probe {
    pub key: Keypair,
    swarm: Swarm<ProbeBehaviour>,
    relay_id: PeerId,
    relay_addr: Multiaddr,
}

/// What a reservation attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Reservation {
    Accepted,
    Refused(String),
}

impl Probe {
    /// Connects to `relay` over TCP with `key` and does nothing else.
    pub async fn connect(relay: &Relay, key: Keypair) -> Result<Self> {
        Self::connect_raw(relay, key, AUTH_PROTOCOL).await
    }

    /// As [`Probe::connect`], with [`Probe::raw`] speaking `raw_protocol` (one of
    /// [`RELAY_PROTOCOLS`]).
    pub async fn connect_raw(
        relay: &Relay,
        key: Keypair,
        raw_protocol: &'static str,
    ) -> Result<Self> {
        let mut swarm = darkswap_net::libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_relay_client(noise::Config::new, yamux::Config::default)?
            .with_behaviour(|_, relay_client| ProbeBehaviour {
                auth: request_response::Behaviour::with_codec(
                    AuthCodec::default(),
                    [(
                        StreamProtocol::new(AUTH_PROTOCOL),
                        ProtocolSupport::Outbound,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10)),
                ),
                relay: relay_client,
                raw: request_response::Behaviour::with_codec(
                    RawCodec::default(),
                    [(StreamProtocol::new(raw_protocol), ProtocolSupport::Outbound)],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10)),
                ),
            })?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let relay_addr = relay.tcp_addr();
        swarm.dial(relay_addr.clone())?;
        let relay_id = relay.peer_id;
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay_id => {
                        return Ok(())
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        bail!("cannot connect: {error}")
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no connection within 10 s"))??;
        Ok(Probe {
            key,
            swarm,
            relay_id,
            relay_addr,
        })
    }

    pub fn id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    pub fn relay_id(&self) -> PeerId {
        self.relay_id
    }

    /// Runs the swarm until `pick` maps an event to an outcome, for at most `timeout`.
    async fn until<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(ProbeBehaviourEvent) -> Option<Result<T>>,
    ) -> Result<T> {
        tokio::time::timeout(timeout, async {
            loop {
                if let SwarmEvent::Behaviour(event) = self.swarm.select_next_some().await {
                    if let Some(outcome) = pick(event) {
                        return outcome;
                    }
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no outcome within {timeout:?}"))?
    }

    /// Sends one auth request and returns the relay's answer.
    pub async fn request(&mut self, request: AuthRequest) -> Result<AuthResponse> {
        let id = self
            .swarm
            .behaviour_mut()
            .auth
            .send_request(&self.relay_id, request);
        self.until(Duration::from_secs(10), |event| match event {
            ProbeBehaviourEvent::Auth(e) => answer_to(id, e),
            _ => None,
        })
        .await?
        .map_err(|error| anyhow!("auth request failed: {error}"))
    }

    /// Sends `bytes` as one request on the protocol chosen at [`Probe::connect_raw`]: the
    /// answer's bytes (empty when the relay closed the stream without one), or `None` when the
    /// stream failed.
    pub async fn raw(&mut self, bytes: Vec<u8>) -> Result<Option<Vec<u8>>> {
        let id = self
            .swarm
            .behaviour_mut()
            .raw
            .send_request(&self.relay_id, RawFrame(bytes));
        let outcome = self
            .until(Duration::from_secs(15), |event| match event {
                ProbeBehaviourEvent::Raw(e) => answer_to(id, e),
                _ => None,
            })
            .await?;
        Ok(outcome.ok().map(|frame| frame.0))
    }

    /// Asks for a challenge for `method`.
    pub async fn challenge(&mut self, method: Method) -> Result<([u8; NONCE_BYTES], u64)> {
        match self.request(AuthRequest::Challenge { method }).await? {
            AuthResponse::Challenge {
                nonce,
                expires_at_ms,
                ..
            } => Ok((nonce, expires_at_ms)),
            other => bail!("expected a challenge, got {other:?}"),
        }
    }

    /// The answer to a challenge signed with `signer` (our key, or someone else's).
    pub fn identity_answer(
        &self,
        signer: &Keypair,
        nonce: &[u8; NONCE_BYTES],
        expires_at_ms: u64,
    ) -> AuthRequest {
        let local = self.id();
        let proof = identity_answer(
            signer,
            &Binding {
                nonce,
                relay: &self.relay_id,
                client: &local,
                expires_at_ms,
            },
        )
        .expect("ed25519 signs");
        AuthRequest::Answer {
            nonce: *nonce,
            proof,
            stamp: None,
            record: None,
        }
    }

    /// A relay's answer to a challenge: signed with `signer` in the relay domain (or, with
    /// `as_trader`, in the trader's identity domain), carrying `record`.
    pub fn relay_answer(
        &self,
        signer: &Keypair,
        nonce: &[u8; NONCE_BYTES],
        expires_at_ms: u64,
        record: Option<Vec<u8>>,
        as_trader: bool,
    ) -> AuthRequest {
        let local = self.id();
        let binding = Binding {
            nonce,
            relay: &self.relay_id,
            client: &local,
            expires_at_ms,
        };
        let proof = if as_trader {
            identity_answer(signer, &binding)
        } else {
            darkswap_auth::proof::relay_answer(signer, &binding)
        }
        .expect("ed25519 signs");
        AuthRequest::Answer {
            nonce: *nonce,
            proof,
            stamp: None,
            record,
        }
    }

    pub fn shared_key_answer(
        &self,
        key: &SharedKey,
        nonce: &[u8; NONCE_BYTES],
        expires_at_ms: u64,
    ) -> AuthRequest {
        let local = self.id();
        AuthRequest::Answer {
            nonce: *nonce,
            proof: key.answer(&Binding {
                nonce,
                relay: &self.relay_id,
                client: &local,
                expires_at_ms,
            }),
            stamp: None,
            record: None,
        }
    }

    /// The whole identity exchange; returns the relay's final answer.
    pub async fn authenticate(&mut self) -> Result<AuthResponse> {
        let (nonce, expires) = self.challenge(Method::Identity).await?;
        let answer = self.identity_answer(&self.key.clone(), &nonce, expires);
        self.request(answer).await
    }

    /// Asks the relay for a reservation and waits for the outcome (then stops listening).
    pub async fn reserve(&mut self) -> Result<Reservation> {
        self.reservation(false).await
    }

    /// [`Probe::reserve`], keeping the reservation (and never renewing it).
    pub async fn hold_reservation(&mut self) -> Result<Reservation> {
        self.reservation(true).await
    }

    async fn reservation(&mut self, hold: bool) -> Result<Reservation> {
        let addr = self.relay_addr.clone().with(Protocol::P2pCircuit);
        let listener = self.swarm.listen_on(addr)?;
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::Behaviour(ProbeBehaviourEvent::Relay(
                        relay::client::Event::ReservationReqAccepted { .. },
                    )) => return Reservation::Accepted,
                    SwarmEvent::ListenerClosed {
                        listener_id,
                        reason,
                        ..
                    } if listener_id == listener => {
                        return Reservation::Refused(match reason {
                            Ok(()) => "closed".into(),
                            Err(e) => e.to_string(),
                        })
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no reservation outcome within 10 s"))?;
        if outcome == Reservation::Accepted && !hold {
            self.swarm.remove_listener(listener);
        }
        Ok(outcome)
    }

    /// Waits until the relay closes our connection.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let relay_id = self.relay_id;
        tokio::time::timeout(timeout, async {
            loop {
                if let SwarmEvent::ConnectionClosed {
                    peer_id,
                    num_established: 0,
                    ..
                } = self.swarm.select_next_some().await
                {
                    if peer_id == relay_id {
                        return;
                    }
                }
            }
        })
        .await
        .is_ok()
    }
}
