//! The gate: the authorization check on circuit relay v2's own path and on every relay
//! operation, in front of the one permission table (`darkswap_auth::level`). A reservation or a
//! circuit from a peer below the level the table asks for is refused before libp2p-relay
//! accepts it; every refusal is counted and audited.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use darkswap_auth::Operation;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::access::Access;
use crate::audit::Audit;
use crate::metrics::DenialLabels;

/// The authorization check on circuit relay v2's own path: a reservation or a circuit from a peer
/// below the level the permission table asks for is refused before libp2p-relay accepts it.
#[derive(Clone)]
pub struct Gate {
    pub access: Arc<Mutex<Access>>,
    pub audit: Arc<Audit>,
    pub denials: Family<DenialLabels, Counter>,
    /// Peers refused here and not yet seen in libp2p-relay's denial event (so that event is
    /// counted as "unauthorized", not as the status code libp2p-relay reports). Bounded.
    pub refused: Arc<Mutex<HashSet<PeerId>>>,
}

/// Most refused peers remembered between the check and libp2p-relay's event.
const MAX_REFUSED_REMEMBERED: usize = 1024;

impl Gate {
    /// Whether `peer` may do `op` now; a refusal is counted (by operation and the level the
    /// peer had) and audited. A poisoned lock cannot decide: refused.
    pub fn verdict(&self, peer: &PeerId, addr: Option<&Multiaddr>, op: Operation) -> bool {
        let now_ms = darkswap_proto::unix_time_ms();
        let verdict = match self.access.lock() {
            Ok(access) => access.permits(peer, op, now_ms),
            Err(_) => Err(darkswap_auth::Level::Anonymous),
        };
        match verdict {
            Ok(()) => true,
            Err(level) => {
                crate::auth::deny(&self.audit, &self.denials, peer, addr, op, level);
                false
            }
        }
    }

    /// Whether `peer` may do `op`, without counting a refusal (a question, not a request).
    pub fn allows(&self, peer: &PeerId, op: Operation) -> bool {
        self.access
            .lock()
            .is_ok_and(|a| a.permits(peer, op, darkswap_proto::unix_time_ms()).is_ok())
    }

    /// [`Gate::verdict`] for libp2p-relay's own checks, remembering our refusals so that
    /// libp2p-relay's denial event is counted as "unauthorized".
    pub fn check(&self, peer: PeerId, addr: &Multiaddr, op: Operation) -> bool {
        if self.verdict(&peer, Some(addr), op) {
            return true;
        }
        if let Ok(mut refused) = self.refused.lock() {
            if refused.len() >= MAX_REFUSED_REMEMBERED {
                refused.clear();
            }
            refused.insert(peer);
        }
        false
    }

    /// The reason label of libp2p-relay's denial of `peer`: ours, or its status code.
    pub fn denial_reason(&self, peer: &PeerId, status: libp2p::relay::StatusCode) -> &'static str {
        if self.take_refused(peer) {
            "unauthorized"
        } else {
            crate::metrics::relay_status_label(status)
        }
    }

    /// Whether libp2p-relay's denial of `peer` was ours.
    fn take_refused(&self, peer: &PeerId) -> bool {
        self.refused.lock().is_ok_and(|mut r| r.remove(peer))
    }
}
