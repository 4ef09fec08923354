//! Which peers hold a reservation here, most recent first: the answer to
//! `/darkswap/directory/2`. Bounded by the relay's reservation limit, since only peers with an
//! accepted reservation are entered.

use std::collections::HashMap;

use darkswap_proto::DirectoryResponse;
use libp2p::PeerId;

#[derive(Default)]
pub struct Directory {
    reserved: HashMap<PeerId, u64>,
    sequence: u64,
}

impl Directory {
    pub fn reserved(&mut self, peer: PeerId) {
        self.sequence += 1;
        self.reserved.insert(peer, self.sequence);
    }

    /// Returns true when the peer was listed.
    pub fn remove(&mut self, peer: &PeerId) -> bool {
        self.reserved.remove(peer).is_some()
    }

    /// The peers holding a reservation, in no order.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.reserved.keys()
    }

    pub fn len(&self) -> usize {
        self.reserved.len()
    }

    pub fn response(&self) -> DirectoryResponse {
        let mut peers: Vec<(&PeerId, &u64)> = self.reserved.iter().collect();
        peers.sort_by(|a, b| b.1.cmp(a.1));
        DirectoryResponse::from_most_recent(peers.into_iter().map(|(p, _)| *p), self.reserved.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_recent_first() {
        let mut d = Directory::default();
        let (a, b) = (PeerId::random(), PeerId::random());
        d.reserved(a);
        d.reserved(b);
        assert_eq!(d.response().peers, vec![b, a]);
        d.reserved(a);
        assert_eq!(d.response().peers[0], a);
        assert!(d.remove(&a));
        assert!(!d.remove(&a));
        assert_eq!(d.len(), 1);
    }
}
