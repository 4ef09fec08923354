//! Fetching a relay's `/api/relay-info` from the browser.

use darkswap_proto::RelayInfo;
use libp2p::Multiaddr;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// Why the relay's description could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no browser window")]
    NoWindow,
    #[error("cannot reach {url}: {message}")]
    Network { url: String, message: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("bad relay-info from {url}: {message}")]
    Invalid { url: String, message: String },
}

fn js_message(v: wasm_bindgen::JsValue) -> String {
    v.as_string()
        .or_else(|| {
            v.dyn_ref::<js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{v:?}"))
}

/// GETs `url` (e.g. `http://relay:8080/api/relay-info`) and returns the relay's dial addresses.
pub async fn fetch_relay_info(url: &str) -> Result<(RelayInfo, Vec<Multiaddr>), FetchError> {
    let window = web_sys::window().ok_or(FetchError::NoWindow)?;
    let network = |v| FetchError::Network {
        url: url.to_string(),
        message: js_message(v),
    };
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(network)?
        .dyn_into()
        .map_err(network)?;
    if !response.ok() {
        return Err(FetchError::Status {
            url: url.to_string(),
            status: response.status(),
        });
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(network)?)
        .await
        .map_err(network)?;
    let bytes = js_sys::Uint8Array::new(&buffer);
    let invalid = |message: String| FetchError::Invalid {
        url: url.to_string(),
        message,
    };
    if bytes.length() as usize > darkswap_proto::MAX_RELAY_INFO_BYTES {
        return Err(invalid(format!("{} bytes is too large", bytes.length())));
    }
    let info = RelayInfo::parse(&bytes.to_vec()).map_err(|e| invalid(e.to_string()))?;
    let addrs = info
        .addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .map_err(|e| invalid(format!("{a}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((info, addrs))
}
