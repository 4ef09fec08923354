//! Fetching a relay's `/api/relay-info` from the browser (gloo-net's `fetch`).

use darkswap_proto::{RelayInfo, RelayInfoError, MAX_RELAY_INFO_BYTES};
use libp2p::Multiaddr;

/// Why the relay's description could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The request could not be made or its body not read (network down, refused, CORS).
    #[error("cannot reach {url}: {source}")]
    Network {
        /// The URL asked.
        url: String,
        /// gloo-net's error.
        source: gloo_net::Error,
    },
    /// The answer's status is not 2xx.
    #[error("{url} answered HTTP {status}")]
    Status {
        /// The URL asked.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The body is longer than [`MAX_RELAY_INFO_BYTES`].
    #[error("relay-info from {url} is {len} bytes, more than the {MAX_RELAY_INFO_BYTES} allowed")]
    TooLarge {
        /// The URL asked.
        url: String,
        /// The body's length in bytes.
        len: usize,
    },
    /// The body is not a valid relay description.
    #[error("bad relay-info from {url}: {source}")]
    Invalid {
        /// The URL asked.
        url: String,
        /// Why [`RelayInfo::parse`] refused it.
        source: RelayInfoError,
    },
    /// One of the listed addresses is not a multiaddr.
    #[error("bad address {addr} in relay-info from {url}: {source}")]
    Address {
        /// The URL asked.
        url: String,
        /// The address as listed.
        addr: String,
        /// Why it does not parse.
        source: libp2p::multiaddr::Error,
    },
}

/// GETs `url` (e.g. `http://relay:8080/api/relay-info`) and returns the relay's dial addresses.
pub async fn fetch_relay_info(url: &str) -> Result<(RelayInfo, Vec<Multiaddr>), FetchError> {
    let network = |source| FetchError::Network {
        url: url.to_string(),
        source,
    };
    let response = gloo_net::http::Request::get(url)
        .send()
        .await
        .map_err(network)?;
    if !response.ok() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status(),
        });
    }
    // A declared length over the cap is refused before the body is read. (The browser's fetch
    // has no way to stop a body of undeclared length part way: that one is read, then checked.)
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(len) = declared.filter(|len| *len > MAX_RELAY_INFO_BYTES) {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            len,
        });
    }
    let bytes = response.binary().await.map_err(network)?;
    if bytes.len() > MAX_RELAY_INFO_BYTES {
        return Err(FetchError::TooLarge {
            url: url.to_string(),
            len: bytes.len(),
        });
    }
    let info = RelayInfo::parse(&bytes).map_err(|source| FetchError::Invalid {
        url: url.to_string(),
        source,
    })?;
    let addrs = info
        .addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .map_err(|source| FetchError::Address {
                    url: url.to_string(),
                    addr: a.clone(),
                    source,
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((info, addrs))
}
