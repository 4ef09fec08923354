//! The deadline to authenticate (sans-IO): a peer still below the level publishing needs
//! `deadline_ms` after its first connection is disconnected. Connection slots are not free for
//! anyone who never proves anything; an anonymous reader reconnects and reads again.
//!
//! Peers are checked once each, in the order they connected: the queue holds one entry per
//! first connection in the last `deadline_ms`, at most `cap`; past the cap the oldest entry is
//! checked early (fail closed: under a flood of connections, anonymous peers go sooner).

use std::collections::VecDeque;

use libp2p::PeerId;

pub struct AuthDeadline {
    deadline_ms: u64,
    cap: usize,
    queue: VecDeque<(u64, PeerId)>,
}

impl AuthDeadline {
    pub fn new(deadline_ms: u64, cap: usize) -> Self {
        AuthDeadline {
            deadline_ms,
            cap: cap.max(1),
            queue: VecDeque::new(),
        }
    }

    /// `peer`'s first connection opened at `now_ms`. Returns a peer to check at once when the
    /// queue was full.
    pub fn connected(&mut self, peer: PeerId, now_ms: u64) -> Option<PeerId> {
        let early = (self.queue.len() >= self.cap)
            .then(|| self.queue.pop_front().map(|(_, p)| p))
            .flatten();
        self.queue
            .push_back((now_ms.saturating_add(self.deadline_ms), peer));
        early
    }

    /// Peers whose deadline passed by `now_ms`: the caller disconnects those still connected
    /// and below publishing.
    pub fn due(&mut self, now_ms: u64) -> Vec<PeerId> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.front() {
            if *at > now_ms {
                break;
            }
            if let Some((_, peer)) = self.queue.pop_front() {
                due.push(peer);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_come_due_in_order_once() {
        let mut d = AuthDeadline::new(1_000, 10);
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(d.connected(a, 0), None);
        assert_eq!(d.connected(b, 500), None);
        assert_eq!(d.due(999), vec![]);
        assert_eq!(d.due(1_000), vec![a]);
        assert_eq!(d.due(2_000), vec![b]);
        assert_eq!(d.due(9_000), vec![]);
    }

    #[test]
    fn past_the_cap_the_oldest_is_checked_early() {
        let mut d = AuthDeadline::new(1_000, 2);
        let peers: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
        assert_eq!(d.connected(peers[0], 0), None);
        assert_eq!(d.connected(peers[1], 0), None);
        assert_eq!(d.connected(peers[2], 0), Some(peers[0]));
        assert_eq!(d.due(1_000), vec![peers[1], peers[2]]);
    }
}
