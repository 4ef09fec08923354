//! `GET /api/relay-info`: how a browser finds the relay that served it. The relay answers with
//! its PeerId and the multiaddrs it can be dialed on (WebRTC-direct ones carry `/certhash`).

use serde::{Deserialize, Serialize};

use crate::limits::{AnnouncedLimits, LimitsError};

/// Cap on the relay-info document a client will read: the addresses, and
/// [`MAX_RELAY_INFO_RECORDS`] records of at most
/// [`MAX_RELAY_RECORD_BYTES`](crate::relay_record::MAX_RELAY_RECORD_BYTES), hex.
pub const MAX_RELAY_INFO_BYTES: usize =
    64 * 1024 + MAX_RELAY_INFO_RECORDS * 2 * crate::relay_record::MAX_RELAY_RECORD_BYTES;
/// Most relay records one relay-info document carries.
pub const MAX_RELAY_INFO_RECORDS: usize = crate::relay_record::MAX_RECORDS_PER_RESPONSE;
/// Cap on the number of addresses a client takes from one relay-info document.
pub const MAX_RELAY_INFO_ADDRS: usize = 32;

/// The relay's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelayInfo {
    /// Base58 PeerId.
    pub peer_id: String,
    /// Dialable multiaddrs, each ending in `/p2p/<peer_id>`.
    pub addrs: Vec<String>,
    /// The relay's version (`CARGO_PKG_VERSION`).
    pub version: String,
    /// The market limits it enforces per maker (absent from relays older than this field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<AnnouncedLimits>,
    /// The Bitcoin network its traders settle on and where their wallets read the chain (absent:
    /// the relay names no chain, and a page offers no wallet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainInfo>,
    /// The signed relay records this relay knows, its own first, each hex of a
    /// [`SignedRelayRecord`](crate::relay_record::SignedRelayRecord) (at most
    /// [`MAX_RELAY_INFO_RECORDS`]); a client checks each before using it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
}

/// Where a relay's traders read the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainInfo {
    /// `regtest`, `signet`, `testnet` or `mainnet`.
    pub network: String,
    /// An Esplora-compatible API (absolute, or a path on this relay such as `/esplora`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esplora: Option<String>,
    /// An `ord` server's JSON API, for runes and inscriptions on outputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ord: Option<String>,
    /// A regtest faucet on this relay (`POST /api/faucet`), which mines blocks to an address.
    #[serde(default)]
    pub faucet: bool,
}

/// The longest URL or network name a client takes from [`ChainInfo`].
pub const MAX_CHAIN_FIELD: usize = 512;

/// Why a relay-info document was refused.
#[derive(Debug, thiserror::Error)]
pub enum RelayInfoError {
    /// The document is over [`MAX_RELAY_INFO_BYTES`]; checked before parsing.
    #[error("relay-info is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The document's length, in bytes.
        len: usize,
        /// The cap it exceeds, in bytes.
        max: usize,
    },
    /// The document is not JSON of the [`RelayInfo`] shape.
    #[error("relay-info is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document lists no addresses.
    #[error("relay-info lists no addresses")]
    NoAddresses,
    /// An announced limit is zero or above
    /// [`MAX_ANNOUNCED_LIMIT`](crate::limits::MAX_ANNOUNCED_LIMIT).
    #[error("relay-info: {0}")]
    Limits(#[from] LimitsError),
    /// A chain field is longer than [`MAX_CHAIN_FIELD`].
    #[error("relay-info: a chain field is longer than {MAX_CHAIN_FIELD} bytes")]
    ChainField,
}

impl RelayInfo {
    /// Parses a relay-info document, capping its size and address count before use.
    pub fn parse(bytes: &[u8]) -> Result<Self, RelayInfoError> {
        if bytes.len() > MAX_RELAY_INFO_BYTES {
            return Err(RelayInfoError::TooLarge {
                len: bytes.len(),
                max: MAX_RELAY_INFO_BYTES,
            });
        }
        let mut info: RelayInfo = serde_json::from_slice(bytes)?;
        info.addrs.truncate(MAX_RELAY_INFO_ADDRS);
        info.records.truncate(MAX_RELAY_INFO_RECORDS);
        if info.addrs.is_empty() {
            return Err(RelayInfoError::NoAddresses);
        }
        if let Some(limits) = info.limits {
            limits.validate()?;
        }
        if let Some(chain) = &info.chain {
            let long = |s: &Option<String>| s.as_ref().is_some_and(|s| s.len() > MAX_CHAIN_FIELD);
            if chain.network.len() > MAX_CHAIN_FIELD || long(&chain.esplora) || long(&chain.ord) {
                return Err(RelayInfoError::ChainField);
            }
        }
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_caps() {
        let addrs: Vec<String> = (0..100)
            .map(|i| format!("/ip4/127.0.0.1/tcp/{i}"))
            .collect();
        let doc = serde_json::to_vec(&RelayInfo {
            peer_id: "12D3KooW".into(),
            addrs,
            version: "0.1.0".into(),
            limits: None,
            chain: None,
            records: Vec::new(),
        })
        .unwrap();
        let info = RelayInfo::parse(&doc).unwrap();
        assert_eq!(info.addrs.len(), MAX_RELAY_INFO_ADDRS);
    }

    #[test]
    fn chain_info_round_trips_and_is_capped() {
        let mut info = RelayInfo {
            peer_id: "12D3KooW".into(),
            addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            version: "0.1.0".into(),
            limits: None,
            chain: Some(ChainInfo {
                network: "regtest".into(),
                esplora: Some("/esplora".into()),
                ord: Some("http://127.0.0.1:8081".into()),
                faucet: true,
            }),
            records: Vec::new(),
        };
        let doc = serde_json::to_vec(&info).unwrap();
        assert_eq!(RelayInfo::parse(&doc).unwrap(), info);
        if let Some(c) = info.chain.as_mut() {
            c.ord = Some("x".repeat(MAX_CHAIN_FIELD + 1));
        }
        let doc = serde_json::to_vec(&info).unwrap();
        assert!(matches!(
            RelayInfo::parse(&doc),
            Err(RelayInfoError::ChainField)
        ));
        // Older relays send no chain.
        let old = br#"{"peer_id":"x","addrs":["/ip4/127.0.0.1/tcp/1"],"version":"1"}"#;
        assert_eq!(RelayInfo::parse(old).unwrap().chain, None);
    }

    #[test]
    fn refuses_empty_and_oversized() {
        let empty = br#"{"peer_id":"x","addrs":[],"version":"1"}"#;
        assert!(matches!(
            RelayInfo::parse(empty),
            Err(RelayInfoError::NoAddresses)
        ));
        let big = vec![b' '; MAX_RELAY_INFO_BYTES + 1];
        assert!(matches!(
            RelayInfo::parse(&big),
            Err(RelayInfoError::TooLarge { .. })
        ));
        assert!(matches!(
            RelayInfo::parse(b"not json"),
            Err(RelayInfoError::Json(_))
        ));
    }
}
