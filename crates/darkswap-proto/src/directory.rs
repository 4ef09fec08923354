//! `/darkswap/directory/2`: a client asks its relay which peers hold a circuit-relay reservation
//! there, i.e. which traders it can reach through `<relay>/p2p-circuit/p2p/<peer>`.
//!
//! ```text
//! message DirectoryRequest  {}
//! message DirectoryResponse { repeated bytes peers = 1; uint64 total = 2; }  // PeerId bytes
//! ```

use libp2p_identity::PeerId;
use prost::Message as _;

/// The protocol's name.
pub const DIRECTORY_PROTOCOL: &str = "/darkswap/directory/2";
/// Most peers one directory answer lists. A relay with more reserved peers answers with the most
/// recently reserved ones and says the list was truncated.
pub const MAX_DIRECTORY_PEERS: usize = 1024;
/// Cap on one encoded request (it has no fields).
pub const MAX_DIRECTORY_REQUEST_BYTES: u64 = 64;
/// Cap on one encoded response: [`MAX_DIRECTORY_PEERS`] PeerIds (an ed25519 PeerId is 38 bytes,
/// 40 with its field header; 64 leaves room for other key types) and the total.
pub const MAX_DIRECTORY_RESPONSE_BYTES: u64 = MAX_DIRECTORY_PEERS as u64 * 64 + 64;

/// The request has no parameters: "who is here?".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryRequest {}

/// The relay's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectoryResponse {
    /// Peers holding a reservation, most recent first, at most [`MAX_DIRECTORY_PEERS`].
    pub peers: Vec<PeerId>,
    /// How many peers hold a reservation in all (may exceed `peers.len()`).
    pub total: u64,
}

/// Why bytes are not a directory message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// Longer than the message's cap.
    #[error(transparent)]
    TooLong(#[from] crate::frame::TooLong),
    /// Not protobuf of the expected shape.
    #[error("not a valid directory message")]
    Decode(#[source] prost::DecodeError),
    /// More peers than [`MAX_DIRECTORY_PEERS`].
    #[error("directory lists {0} peers, more than {MAX_DIRECTORY_PEERS}")]
    TooManyPeers(usize),
    /// An entry is not a PeerId.
    #[error("directory entry {0} is not a PeerId")]
    BadPeer(usize),
    /// Fewer in all than listed.
    #[error("directory total {total} is below the {listed} peers listed")]
    BadTotal {
        /// The total it claims.
        total: u64,
        /// How many it lists.
        listed: usize,
    },
}

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirectoryRequest {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirectoryResponse {
        #[prost(bytes = "vec", repeated, tag = "1")]
        pub peers: Vec<Vec<u8>>,
        #[prost(uint64, tag = "2")]
        pub total: u64,
    }
}

impl DirectoryRequest {
    /// Its protobuf encoding (empty).
    pub fn encode(&self) -> Vec<u8> {
        pb::DirectoryRequest {}.encode_to_vec()
    }

    /// Decodes a request of at most [`MAX_DIRECTORY_REQUEST_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        crate::frame::within(bytes, MAX_DIRECTORY_REQUEST_BYTES)?;
        pb::DirectoryRequest::decode(bytes).map_err(DirectoryError::Decode)?;
        Ok(DirectoryRequest {})
    }
}

impl DirectoryResponse {
    /// Builds an answer from every reserved peer, most recent first, keeping at most the cap.
    pub fn from_most_recent(peers: impl IntoIterator<Item = PeerId>, total: usize) -> Self {
        Self {
            peers: peers.into_iter().take(MAX_DIRECTORY_PEERS).collect(),
            total: total as u64,
        }
    }

    /// True when the list does not hold every reserved peer.
    pub fn is_truncated(&self) -> bool {
        (self.peers.len() as u64) < self.total
    }

    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::DirectoryResponse {
            peers: self.peers.iter().map(|p| p.to_bytes()).collect(),
            total: self.total,
        }
        .encode_to_vec()
    }

    /// Decodes and checks a response of at most [`MAX_DIRECTORY_RESPONSE_BYTES`]: every entry a
    /// PeerId, no more than [`MAX_DIRECTORY_PEERS`], a total no smaller than the list.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        crate::frame::within(bytes, MAX_DIRECTORY_RESPONSE_BYTES)?;
        let msg = pb::DirectoryResponse::decode(bytes).map_err(DirectoryError::Decode)?;
        if msg.peers.len() > MAX_DIRECTORY_PEERS {
            return Err(DirectoryError::TooManyPeers(msg.peers.len()));
        }
        if msg.total < msg.peers.len() as u64 {
            return Err(DirectoryError::BadTotal {
                total: msg.total,
                listed: msg.peers.len(),
            });
        }
        let peers = msg
            .peers
            .iter()
            .enumerate()
            .map(|(i, p)| PeerId::from_bytes(p).map_err(|_| DirectoryError::BadPeer(i)))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            peers,
            total: msg.total,
        })
    }
}

crate::impl_frame!(
    DirectoryRequest,
    MAX_DIRECTORY_REQUEST_BYTES,
    DirectoryError
);
crate::impl_frame!(
    DirectoryResponse,
    MAX_DIRECTORY_RESPONSE_BYTES,
    DirectoryError
);

#[cfg(test)]
mod tests {
    use super::*;

    fn peers(n: usize) -> Vec<PeerId> {
        (0..n)
            .map(|_| {
                libp2p_identity::Keypair::generate_ed25519()
                    .public()
                    .to_peer_id()
            })
            .collect()
    }

    #[test]
    fn the_fullest_answer_fits_its_cap_and_round_trips() {
        let r = DirectoryResponse::from_most_recent(peers(MAX_DIRECTORY_PEERS + 10), 5000);
        assert_eq!(r.peers.len(), MAX_DIRECTORY_PEERS);
        assert!(r.is_truncated());
        let encoded = r.encode();
        assert!((encoded.len() as u64) <= MAX_DIRECTORY_RESPONSE_BYTES);
        assert_eq!(DirectoryResponse::decode(&encoded).unwrap(), r);
        assert_eq!(
            DirectoryRequest::decode(&DirectoryRequest {}.encode()).unwrap(),
            DirectoryRequest {}
        );
    }

    #[test]
    fn bad_answers_are_refused() {
        let bad_peer = pb::DirectoryResponse {
            peers: vec![peers(1)[0].to_bytes(), b"garbage".to_vec()],
            total: 2,
        }
        .encode_to_vec();
        assert_eq!(
            DirectoryResponse::decode(&bad_peer),
            Err(DirectoryError::BadPeer(1))
        );
        let low_total = DirectoryResponse {
            peers: peers(3),
            total: 2,
        }
        .encode();
        assert!(matches!(
            DirectoryResponse::decode(&low_total),
            Err(DirectoryError::BadTotal { .. })
        ));
        let too_many = pb::DirectoryResponse {
            peers: vec![vec![0; 2]; MAX_DIRECTORY_PEERS + 1],
            total: u64::MAX,
        }
        .encode_to_vec();
        assert_eq!(
            DirectoryResponse::decode(&too_many),
            Err(DirectoryError::TooManyPeers(MAX_DIRECTORY_PEERS + 1))
        );
        assert!(matches!(
            DirectoryResponse::decode(&vec![0; MAX_DIRECTORY_RESPONSE_BYTES as usize + 1]),
            Err(DirectoryError::TooLong(_))
        ));
        assert!(matches!(
            DirectoryResponse::decode(&[0xff, 0xff]),
            Err(DirectoryError::Decode(_))
        ));
    }
}
