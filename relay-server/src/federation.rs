//! The relay's part in the network of relays: it signs its own record (who it is, where it can
//! be dialed, which auth it accepts, its market limits and load), asks its peer relays for the
//! records they know, keeps the newest of each relay (`darkswap_relays::RecordSet`), and serves
//! them to whoever asks: peers over `/darkswap/relay-records/1`, browsers in `/api/relay-info`.

use darkswap_auth::Method;
use darkswap_proto::limits::AnnouncedLimits;
use darkswap_proto::relay_record::{RelayRecord, RelayRecordsResponse, MAX_RECORDS_PER_RESPONSE};
use darkswap_relays::{Offered, RecordSet};
use libp2p::{identity::Keypair, Multiaddr, PeerId};

use crate::config::{AuthConfig, FederationConfig};
use crate::metrics::{OutcomeLabels, RelayMetrics};

/// What goes into the relay's own record besides what changes as it runs.
pub struct Federation {
    key: Keypair,
    name: String,
    region: String,
    ttl_ms: u64,
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
        config: &FederationConfig,
        auth_methods: Vec<Method>,
        limits: AnnouncedLimits,
        capacity: usize,
    ) -> Self {
        let own = key.public().to_peer_id();
        Self {
            key,
            name: config.name.clone(),
            region: config.region.clone(),
            ttl_ms: u64::try_from(config.record_ttl.as_millis()).unwrap_or(u64::MAX),
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
        for bytes in &response.records {
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
            .map(|r| hex(r.bytes()))
            .collect()
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

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
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

    #[test]
    fn signs_its_own_record_and_takes_in_others() {
        let metrics = RelayMetrics::register(&mut prometheus_client::registry::Registry::default());
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let mut fa = Federation::new(a.clone(), &config(), vec![Method::Identity], limits(), 8);
        let mut fb = Federation::new(b.clone(), &config(), vec![], limits(), 8);
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
