//! `/darkswap/directory/1`: a client asks its relay which peers hold a circuit-relay reservation
//! there, i.e. which traders it can reach through `<relay>/p2p-circuit/p2p/<peer>`.

use serde::{Deserialize, Serialize};

/// Most peers one directory answer lists. A relay with more reserved peers answers with the most
/// recently reserved ones and says the list was truncated.
pub const MAX_DIRECTORY_PEERS: usize = 1024;

/// The request has no parameters: "who is here?".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryRequest {}

/// The relay's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryResponse {
    /// PeerIds (base58) holding a reservation, at most [`MAX_DIRECTORY_PEERS`].
    pub peers: Vec<String>,
    /// How many peers hold a reservation in all (may exceed `peers.len()`).
    pub total: u64,
}

impl DirectoryResponse {
    /// Builds an answer from every reserved peer, most recent first, keeping at most the cap.
    pub fn from_most_recent(peers: impl IntoIterator<Item = String>, total: usize) -> Self {
        Self {
            peers: peers.into_iter().take(MAX_DIRECTORY_PEERS).collect(),
            total: total as u64,
        }
    }

    /// True when the list does not hold every reserved peer.
    pub fn is_truncated(&self) -> bool {
        (self.peers.len() as u64) < self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_the_list() {
        let r = DirectoryResponse::from_most_recent((0..5000).map(|i| i.to_string()), 5000);
        assert_eq!(r.peers.len(), MAX_DIRECTORY_PEERS);
        assert!(r.is_truncated());
        let encoded = serde_json::to_vec(&r).unwrap();
        assert!((encoded.len() as u64) < crate::MAX_DIRECTORY_RESPONSE_BYTES);
    }
}
