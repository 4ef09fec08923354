//! The relay's part in the network of relays: it signs its own record (who it is, where it can
//! be dialed, which auth it accepts, its market limits and load), asks its peer relays for the
//! records they know, keeps the newest of each relay (`darkswap_relays::RecordSet`), and serves
//! them to whoever asks: peers over `/darkswap/relay-records/1`, browsers in `/api/relay-info`.
//!
//! It also knows which peers are peer relays: those the operator configured (`peers`, by
//! address) and those that proved themselves here with the relay method of `/darkswap/auth/1`
//! and that the federation policy accepts (`access.rs`). And it proves this relay to each
//! configured peer relay the same way, so that a relay listing another's address is enough for
//! the two to peer when the other accepts it.

use std::collections::{HashMap, HashSet};

use darkswap_auth::client::{ClientAuth, Credential, Step};
use darkswap_auth::Method;
use darkswap_proto::auth::{AuthRequest, AuthResponse};
use darkswap_proto::limits::AnnouncedLimits;
use darkswap_proto::relay_record::{RelayRecord, RelayRecordsResponse, MAX_RECORDS_PER_RESPONSE};
use darkswap_relays::{Offered, RecordSet};
use libp2p::{identity::Keypair, Multiaddr, PeerId};

use crate::config::{AuthConfig, FederationConfig};
use crate::metrics::{OutcomeLabels, RelayMetrics};

/// Our proof to one configured peer relay, for as long as we are connected to it.
struct Proof {
    auth: ClientAuth,
    /// `None` while the exchange runs; then whether the other relay accepted us.
    accepted: Option<bool>,
    /// Refusals in a row, and when the last came: the next try waits an announce period,
    /// doubled with each refusal up to [`MAX_PROOF_BACKOFF_MS`].
    refusals: u32,
    refused_at_ms: u64,
    /// Until when the other relay's grant holds (its clock): we prove ourselves again before.
    granted_until_ms: u64,
}

/// The longest wait before proving ourselves again to a relay that refused us.
const MAX_PROOF_BACKOFF_MS: u64 = 600_000;

/// This relay's record, the records it knows, its peer relays and its proofs to them.
pub struct Federation {
    key: Keypair,
    /// Configured peer relays (`peers`), by PeerId.
    configured: HashMap<PeerId, Multiaddr>,
    /// Connected relays that proved themselves here and are accepted (at most
    /// [`crate::defaults::MAX_RELAY_RECORDS`]; an entry leaves with the last connection).
    proven: HashSet<PeerId>,
    /// Our proofs to connected configured peer relays (bounded by `configured`).
    proofs: HashMap<PeerId, Proof>,
    name: String,
    region: String,
    ttl_ms: u64,
    announce_ms: u64,
    auth_methods: Vec<Method>,
    limits: AnnouncedLimits,
    records: RecordSet,
    last_seq: u64,
}

/// Why the relay could not sign its own record (an address too long for a record, or a
/// setting out of bounds): logged, and the previous record stays until it expires.
pub type SignError = darkswap_proto::relay_record::RecordError;

/// The auth methods a relay configured this way accepts, as its record lists them.
pub fn auth_methods(auth: &AuthConfig) -> Vec<Method> {
    let mut methods = Vec::new();
    if auth.open {
        methods.push(Method::Open);
    }
    if auth.shared_key.is_some() {
        methods.push(Method::SharedKey);
    }
    if auth.identity {
        methods.push(Method::Identity);
    }
    if auth.public_key {
        methods.push(Method::PublicKey);
    }
    methods
}

impl Federation {
    pub fn new(
        key: Keypair,
        configured: HashMap<PeerId, Multiaddr>,
        config: &FederationConfig,
        auth_methods: Vec<Method>,
        limits: AnnouncedLimits,
        capacity: usize,
    ) -> Self {
        let own = key.public().to_peer_id();
        Self {
            key,
            configured,
            proven: HashSet::new(),
            proofs: HashMap::new(),
            name: config.name.clone(),
            region: config.region.clone(),
            ttl_ms: u64::try_from(config.record_ttl.as_millis()).unwrap_or(u64::MAX),
            announce_ms: u64::try_from(config.announce.as_millis()).unwrap_or(u64::MAX),
            auth_methods,
            limits,
            records: RecordSet::new(capacity, Some(own)),
            last_seq: 0,
        }
    }

    /// Signs a new record of this relay with its addresses and load now, and drops expired
    /// records. The sequence number is the signing time, and above the last one, so that a
    /// restarted relay's records are newer than its old ones as long as its clock is right.
    pub fn refresh(
        &mut self,
        addrs: Vec<Multiaddr>,
        load_permille: u16,
        now_ms: u64,
    ) -> Result<(), SignError> {
        self.records.prune(now_ms);
        let seq = now_ms.max(self.last_seq + 1);
        let record = RelayRecord {
            seq,
            issued_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(self.ttl_ms),
            name: self.name.clone(),
            region: self.region.clone(),
            addrs,
            auth_methods: self.auth_methods.clone(),
            limits: Some(self.limits),
            load_permille: load_permille.min(1000),
        };
        let signed = record.sign(&self.key, now_ms)?;
        self.last_seq = seq;
        self.records.put_own(signed);
        Ok(())
    }

    /// Takes in a peer relay's answer: each record checked on its own and counted by outcome.
    pub fn on_response(
        &mut self,
        from: &PeerId,
        response: RelayRecordsResponse,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) {
        metrics
            .relay_record_pulls
            .get_or_create(&OutcomeLabels {
                outcome: "ok".into(),
            })
            .inc();
        self.take(from, &response.records, metrics, now_ms);
    }

    fn take(&mut self, from: &PeerId, records: &[Vec<u8>], metrics: &RelayMetrics, now_ms: u64) {
        for bytes in records {
            match self.records.offer(bytes, now_ms) {
                Ok(Offered::Unchanged) => {}
                Ok(offered) => {
                    let outcome = if offered == Offered::New {
                        "new"
                    } else {
                        "updated"
                    };
                    metrics
                        .relay_records_accepted
                        .get_or_create(&OutcomeLabels {
                            outcome: outcome.into(),
                        })
                        .inc();
                }
                Err(refusal) => {
                    tracing::debug!(%from, %refusal, "relay record refused");
                    metrics
                        .relay_records_refused
                        .get_or_create(&RelayMetrics::reason(refusal.label()))
                        .inc();
                }
            }
        }
        metrics.relay_records_known.set(self.records.len() as i64);
    }

    /// The answer to a peer's request: this relay's record first, then the most recently
    /// issued.
    pub fn response(&self, now_ms: u64) -> RelayRecordsResponse {
        RelayRecordsResponse {
            records: self
                .records
                .newest(MAX_RECORDS_PER_RESPONSE, now_ms)
                .into_iter()
                .map(|r| r.bytes().to_vec())
                .collect(),
        }
    }

    /// The records for `/api/relay-info`, hex, as many as an answer carries.
    pub fn hex_records(&self, now_ms: u64) -> Vec<String> {
        self.records
            .newest(MAX_RECORDS_PER_RESPONSE, now_ms)
            .into_iter()
            .map(|r| darkswap_relays::to_hex(r.bytes()))
            .collect()
    }

    /// The configured peer relays and their addresses.
    pub fn configured(&self) -> impl Iterator<Item = (&PeerId, &Multiaddr)> {
        self.configured.iter()
    }

    pub fn is_configured(&self, peer: &PeerId) -> bool {
        self.configured.contains_key(peer)
    }

    /// Configured, or proven and accepted here.
    pub fn is_peer_relay(&self, peer: &PeerId) -> bool {
        self.configured.contains_key(peer) || self.proven.contains(peer)
    }

    /// Every peer relay, configured or proven.
    pub fn peer_relays(&self) -> impl Iterator<Item = &PeerId> {
        self.configured.keys().chain(
            self.proven
                .iter()
                .filter(|p| !self.configured.contains_key(*p)),
        )
    }

    /// `peer` proved itself as a relay the policy accepts, with `record` (already checked).
    pub fn proven(&mut self, peer: PeerId, record: &[u8], metrics: &RelayMetrics, now_ms: u64) {
        if self.proven.len() < crate::defaults::MAX_RELAY_RECORDS {
            self.proven.insert(peer);
        }
        self.take(&peer, &[record.to_vec()], metrics, now_ms);
    }

    /// `peer`'s last connection closed: a proven relay proves itself again when it returns,
    /// and we prove ourselves again to a configured one.
    pub fn gone(&mut self, peer: &PeerId) {
        self.proven.remove(peer);
        self.proofs.remove(peer);
    }

    /// The first request of our proof to the configured peer relay `peer`, unless one is
    /// under way or an accepted one still holds (it is renewed before the other relay's grant
    /// ends, which would leave us a mere anonymous peer there). A refused one is tried again
    /// after its backoff: the other operator may have listed us since. `None` too before this
    /// relay has a record.
    pub fn start_proof(&mut self, peer: PeerId, now_ms: u64) -> Option<AuthRequest> {
        if !self.configured.contains_key(&peer) {
            return None;
        }
        let margin = self.announce_ms.saturating_mul(2).max(60_000);
        let refusals = match self.proofs.get(&peer) {
            None => 0,
            Some(p) if p.accepted == Some(true) => {
                if now_ms.saturating_add(margin) < p.granted_until_ms {
                    return None;
                }
                0
            }
            Some(p) if p.accepted == Some(false) => {
                let backoff = self
                    .announce_ms
                    .saturating_mul(1 << p.refusals.saturating_sub(1).min(20))
                    .min(MAX_PROOF_BACKOFF_MS);
                if now_ms < p.refused_at_ms.saturating_add(backoff) {
                    return None;
                }
                p.refusals
            }
            Some(_) => return None,
        };
        let own = self.key.public().to_peer_id();
        let record = self.records.get(&own)?.bytes().to_vec();
        let mut auth = ClientAuth::new(Credential::Relay { record }, None);
        let request = auth.start(&peer, &own, now_ms);
        self.proofs.insert(
            peer,
            Proof {
                auth,
                accepted: None,
                refusals,
                refused_at_ms: 0,
                granted_until_ms: 0,
            },
        );
        Some(request)
    }

    /// The other relay's answer to our proof: the next request, if the exchange goes on.
    pub fn on_proof_response(
        &mut self,
        peer: &PeerId,
        response: AuthResponse,
        metrics: &RelayMetrics,
        now_ms: u64,
    ) -> Option<AuthRequest> {
        let proof = self.proofs.get_mut(peer)?;
        let outcome = match proof.auth.on_response(response, &self.key, peer) {
            Step::Send(request) => return Some(request),
            Step::Granted(grant) => {
                tracing::info!(%peer, level = grant.level.label(), "peer relay accepted this relay");
                proof.accepted = Some(true);
                proof.granted_until_ms = grant.expires_at_ms;
                "ok"
            }
            Step::Refused(reason) => {
                let own = self.key.public().to_peer_id();
                tracing::warn!(
                    %peer,
                    reason = reason.label(),
                    "peer relay refused this relay: its operator must list {own} in federation.relays or peers, or set federation.accept = \"any\""
                );
                reason.label()
            }
            // Relays ask no work of relays; one that does is not following the protocol.
            Step::Work { .. } => "malformed",
        };
        if outcome != "ok" {
            proof.accepted = Some(false);
            proof.refusals = proof.refusals.saturating_add(1);
            proof.refused_at_ms = now_ms;
        }
        metrics
            .federation_proofs
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        None
    }

    /// Our proof's request to `peer` failed (no answer): tried again next period.
    pub fn on_proof_failure(&mut self, peer: &PeerId, metrics: &RelayMetrics) {
        if self.proofs.remove(peer).is_some() {
            metrics
                .federation_proofs
                .get_or_create(&OutcomeLabels {
                    outcome: "failed".into(),
                })
                .inc();
        }
    }

    /// How many records are held.
    pub fn known(&self) -> usize {
        self.records.len()
    }

    /// The record held of `relay`.
    #[cfg(test)]
    pub fn get(&self, relay: &PeerId) -> Option<&darkswap_proto::relay_record::SignedRelayRecord> {
        self.records.get(relay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn config() -> FederationConfig {
        FederationConfig {
            name: "test relay".into(),
            region: "here".into(),
            announce: Duration::from_secs(30),
            record_ttl: Duration::from_secs(300),
            relays: Default::default(),
            accept_any: false,
        }
    }

    fn limits() -> AnnouncedLimits {
        AnnouncedLimits {
            max_orders_per_maker: 10,
            publish_burst: 5,
            publish_per_second: 1,
        }
    }

    fn addr(key: &Keypair) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/4001/p2p/{}", key.public().to_peer_id())
            .parse()
            .unwrap()
    }

    /// Our proof to a configured peer relay: sent once the record exists, not again while the
    /// grant holds, renewed before it ends; after a refusal, tried again after a backoff that
    /// doubles.
    #[test]
    fn proofs_are_renewed_before_the_grant_ends_and_backed_off_when_refused() {
        use darkswap_proto::auth::{AuthRequest, Grant};
        let metrics = RelayMetrics::register(&mut prometheus_client::registry::Registry::default());
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let peer = b.public().to_peer_id();
        let configured = HashMap::from([(peer, addr(&b))]);
        let mut f = Federation::new(a.clone(), configured, &config(), vec![], limits(), 8);
        let now = darkswap_proto::unix_time_ms();
        assert!(f.start_proof(peer, now).is_none(), "no record yet");
        f.refresh(vec![addr(&a)], 0, now).unwrap();
        assert!(matches!(
            f.start_proof(peer, now),
            Some(AuthRequest::Challenge {
                method: Method::Relay
            })
        ));
        assert!(f.start_proof(peer, now).is_none(), "one at a time");
        let granted = |until| {
            AuthResponse::Granted(Grant {
                level: darkswap_auth::Level::Trusted,
                method: Method::Relay,
                token: Vec::new(),
                expires_at_ms: until,
                limits: None,
            })
        };
        assert!(f
            .on_proof_response(&peer, granted(now + 3_600_000), &metrics, now)
            .is_none());
        assert!(
            f.start_proof(peer, now + 3_000_000).is_none(),
            "the grant holds"
        );
        assert!(
            f.start_proof(peer, now + 3_600_000 - 60_000).is_some(),
            "renewed a minute before the grant ends"
        );
        // Refused: the next try waits an announce period (30 s), then two.
        let refused = || AuthResponse::Refused {
            reason: darkswap_auth::RefuseReason::NotAllowed,
        };
        let t = now + 3_600_000;
        f.on_proof_response(&peer, refused(), &metrics, t);
        assert!(f.start_proof(peer, t + 29_999).is_none());
        assert!(f.start_proof(peer, t + 30_000).is_some());
        f.on_proof_response(&peer, refused(), &metrics, t + 30_000);
        assert!(f.start_proof(peer, t + 30_000 + 59_999).is_none());
        assert!(f.start_proof(peer, t + 30_000 + 60_000).is_some());
        // Gone: proved again at once when it is back.
        f.gone(&peer);
        assert!(f.start_proof(peer, t + 90_001).is_some());
        // Never to a relay that is not configured.
        assert!(f.start_proof(a.public().to_peer_id(), now).is_none());
    }

    #[test]
    fn signs_its_own_record_and_takes_in_others() {
        let metrics = RelayMetrics::register(&mut prometheus_client::registry::Registry::default());
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut fa = Federation::new(
            a.clone(),
            HashMap::new(),
            &config(),
            vec![Method::Identity],
            limits(),
            8,
        );
        let mut fb = Federation::new(b.clone(), HashMap::new(), &config(), vec![], limits(), 8);
        let now = darkswap_proto::unix_time_ms();
        fa.refresh(vec![addr(&a)], 250, now).unwrap();
        fb.refresh(vec![addr(&b)], 2000, now).unwrap();
        // b learns a; a's own record coming back to it is the one it holds.
        fb.on_response(&a.public().to_peer_id(), fa.response(now), &metrics, now);
        fa.on_response(&b.public().to_peer_id(), fb.response(now), &metrics, now);
        assert_eq!(fb.known(), 2);
        assert_eq!(fa.known(), 2);
        let seen = fb.get(&a.public().to_peer_id()).unwrap().record();
        assert_eq!(seen.name, "test relay");
        assert_eq!(seen.load_permille, 250);
        assert_eq!(
            fa.get(&b.public().to_peer_id())
                .unwrap()
                .record()
                .load_permille,
            1000
        );
        // Re-signed in the same millisecond: a higher sequence number all the same.
        fa.refresh(vec![addr(&a)], 300, now).unwrap();
        fb.on_response(&a.public().to_peer_id(), fa.response(now), &metrics, now);
        assert_eq!(
            fb.get(&a.public().to_peer_id())
                .unwrap()
                .record()
                .load_permille,
            300
        );
        // An address of another peer cannot go into our record.
        assert!(fa.refresh(vec![addr(&b)], 0, now).is_err());
        assert_eq!(fa.hex_records(now).len(), 2);
    }
}
