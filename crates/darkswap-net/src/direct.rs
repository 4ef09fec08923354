//! Direct messages to other traders (`/darkswap/msg/2`, through the relay's circuit) and the
//! relay's directory of reachable traders (`/darkswap/directory/2`): what waits for a
//! connection, what is in flight, and who is reachable. The node sends; this remembers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use darkswap_proto::{DirectMessage, DirectoryResponse};
use libp2p::request_response::OutboundRequestId;
use libp2p::PeerId;
use web_time::Instant;

use crate::event::{MessageId, NodeEvent};

/// Why a message could not be queued for a peer we are still connecting to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// [`NodeConfig::max_pending_peers`](crate::NodeConfig::max_pending_peers) other peers
    /// already have messages waiting for a connection.
    #[error("too many peers with messages waiting for a connection")]
    TooManyPeers,
    /// [`NodeConfig::max_pending_per_peer`](crate::NodeConfig::max_pending_per_peer) messages
    /// already wait for this peer.
    #[error("too many messages waiting for this peer")]
    TooManyMessages,
}

/// Direct messages and the directory (see the module documentation).
pub(crate) struct Direct {
    /// Messages waiting for a connection to their peer.
    pending: HashMap<PeerId, VecDeque<(MessageId, DirectMessage)>>,
    /// Messages sent, waiting for their acknowledgement.
    outbound: HashMap<OutboundRequestId, (MessageId, PeerId, Instant)>,
    max_pending_peers: usize,
    max_pending_per_peer: usize,
    /// Reachable traders as the relay last listed them (without us), sorted.
    peers: Vec<PeerId>,
    directory_inflight: bool,
    next_directory_at: Instant,
    directory_interval: Duration,
}

impl Direct {
    pub fn new(
        max_pending_peers: usize,
        max_pending_per_peer: usize,
        directory_interval: Duration,
        now: Instant,
    ) -> Self {
        Direct {
            pending: HashMap::new(),
            outbound: HashMap::new(),
            max_pending_peers,
            max_pending_per_peer,
            peers: Vec::new(),
            directory_inflight: false,
            next_directory_at: now,
            directory_interval,
        }
    }

    /// Keeps `message` until a connection to `peer` is up.
    pub fn queue(
        &mut self,
        id: MessageId,
        peer: PeerId,
        message: DirectMessage,
    ) -> Result<(), QueueError> {
        if !self.pending.contains_key(&peer) && self.pending.len() >= self.max_pending_peers {
            return Err(QueueError::TooManyPeers);
        }
        let pending = self.pending.entry(peer).or_default();
        if pending.len() >= self.max_pending_per_peer {
            return Err(QueueError::TooManyMessages);
        }
        pending.push_back((id, message));
        Ok(())
    }

    /// The messages that waited for `peer` (now connected).
    pub fn take_pending(&mut self, peer: &PeerId) -> VecDeque<(MessageId, DirectMessage)> {
        self.pending.remove(peer).unwrap_or_default()
    }

    /// `peer` cannot be reached: the reports for every message that waited for it.
    pub fn fail_pending(&mut self, peer: PeerId, reason: &str) -> Vec<NodeEvent> {
        self.take_pending(&peer)
            .into_iter()
            .map(|(id, _)| NodeEvent::MessageFailed {
                id,
                to: peer,
                reason: reason.to_string(),
            })
            .collect()
    }

    /// Message `id` went out to `peer` as request `request` at `now`.
    pub fn sent(&mut self, request: OutboundRequestId, id: MessageId, peer: PeerId, now: Instant) {
        self.outbound.insert(request, (id, peer, now));
    }

    /// The acknowledgement of request `request`, as a delivery report.
    pub fn acknowledged(
        &mut self,
        request: OutboundRequestId,
        accepted: bool,
        reason: Option<String>,
        now: Instant,
    ) -> Option<NodeEvent> {
        let (id, to, sent) = self.outbound.remove(&request)?;
        Some(NodeEvent::MessageDelivered {
            id,
            to,
            rtt: now.duration_since(sent),
            accepted,
            reason,
        })
    }

    /// Request `request` failed, as a report.
    pub fn failed(&mut self, request: OutboundRequestId, reason: String) -> Option<NodeEvent> {
        let (id, to, _) = self.outbound.remove(&request)?;
        Some(NodeEvent::MessageFailed { id, to, reason })
    }

    /// Whether to ask the relay for its directory now (while `reserved`).
    pub fn directory_due(&self, reserved: bool, now: Instant) -> bool {
        reserved && !self.directory_inflight && now >= self.next_directory_at
    }

    /// A directory request went out.
    pub fn directory_requested(&mut self, now: Instant) {
        self.directory_inflight = true;
        self.next_directory_at = now + self.directory_interval;
    }

    /// The relay's directory: the report when the list of reachable traders changed.
    pub fn directory(&mut self, response: &DirectoryResponse, me: &PeerId) -> Option<NodeEvent> {
        self.directory_inflight = false;
        let mut peers: Vec<PeerId> = response.peers.iter().copied().filter(|p| p != me).collect();
        peers.sort();
        if peers == self.peers {
            return None;
        }
        self.peers = peers.clone();
        Some(NodeEvent::Peers {
            peers,
            total: response.total,
        })
    }

    /// The directory request failed; the next one goes at its time.
    pub fn directory_failed(&mut self) {
        self.directory_inflight = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn waiting_messages_are_bounded_per_peer_and_in_peers() {
        let mut d = Direct::new(2, 2, Duration::from_secs(2), Instant::now());
        let (a, b, c) = (peer(), peer(), peer());
        let msg = || DirectMessage::new("hi", 1).unwrap();
        assert_eq!(d.queue(1, a, msg()), Ok(()));
        assert_eq!(d.queue(2, a, msg()), Ok(()));
        assert_eq!(d.queue(3, a, msg()), Err(QueueError::TooManyMessages));
        assert_eq!(d.queue(4, b, msg()), Ok(()));
        assert_eq!(d.queue(5, c, msg()), Err(QueueError::TooManyPeers));
        let failed = d.fail_pending(a, "gone");
        assert_eq!(failed.len(), 2);
        assert_eq!(d.queue(5, c, msg()), Ok(()), "room again");
        assert_eq!(d.take_pending(&b).len(), 1);
    }

    #[test]
    fn the_directory_is_reported_when_it_changes_without_us() {
        let now = Instant::now();
        let mut d = Direct::new(2, 2, Duration::from_secs(2), now);
        let (me, a) = (peer(), peer());
        assert!(!d.directory_due(false, now), "only while reserved");
        assert!(d.directory_due(true, now));
        d.directory_requested(now);
        assert!(!d.directory_due(true, now));
        let response = DirectoryResponse {
            peers: vec![me, a],
            total: 3,
        };
        assert_eq!(
            d.directory(&response, &me),
            Some(NodeEvent::Peers {
                peers: vec![a],
                total: 3
            })
        );
        assert_eq!(d.directory(&response, &me), None, "unchanged");
        assert!(d.directory_due(true, now + Duration::from_secs(2)));
    }
}
