//! A JSON-RPC client for the operator's own `bitcoind` (HTTP/1.1 with basic auth, one request
//! per connection), used only by the optional chain gateway. Every call has a deadline and
//! every answer is capped before it is parsed.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::defaults;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL is not `http://host:port`.
    #[error("bitcoind RPC URL must be http://host:port, not {0:?}")]
    Url(String),
    /// Could not connect or talk to bitcoind.
    #[error("bitcoind is unreachable at {addr}: {source}")]
    Io {
        /// host:port.
        addr: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// No answer before the deadline.
    #[error(
        "bitcoind did not answer {method} within {0:?}",
        defaults::BITCOIND_RPC_TIMEOUT
    )]
    Timeout {
        /// The call.
        method: String,
    },
    /// The answer is over the cap.
    #[error(
        "bitcoind's answer to {method} is over {} bytes",
        defaults::BITCOIND_RPC_MAX_ANSWER
    )]
    TooLarge {
        /// The call.
        method: String,
    },
    /// Wrong credentials.
    #[error("bitcoind refused the RPC credentials (HTTP 401)")]
    Unauthorized,
    /// Not an HTTP answer with a JSON-RPC body.
    #[error("bitcoind's answer to {method} is malformed")]
    Malformed {
        /// The call.
        method: String,
    },
    /// bitcoind answered with an error.
    #[error("bitcoind: {message} (code {code})")]
    Rpc {
        /// Core's error code.
        code: i64,
        /// Core's message.
        message: String,
    },
}

/// A bitcoind RPC endpoint.
#[derive(Clone)]
pub struct Rpc {
    addr: String,
    authorization: String,
}

impl std::fmt::Debug for Rpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Rpc({}, credentials hidden)", self.addr)
    }
}

impl Rpc {
    /// `url` is `http://host:port`.
    pub fn new(url: &str, user: &str, password: &str) -> Result<Rpc, RpcError> {
        let addr = url
            .strip_prefix("http://")
            .map(|r| r.trim_end_matches('/'))
            .filter(|r| !r.is_empty() && !r.contains('/') && r.contains(':'))
            .ok_or_else(|| RpcError::Url(url.to_string()))?;
        let token = base64_encode(format!("{user}:{password}").as_bytes());
        Ok(Rpc {
            addr: addr.to_string(),
            authorization: format!("Basic {token}"),
        })
    }

    /// Calls `method` with `params`; the `result` field.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        match tokio::time::timeout(
            defaults::BITCOIND_RPC_TIMEOUT,
            self.exchange(method, params),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(RpcError::Timeout {
                method: method.to_string(),
            }),
        }
    }

    async fn exchange(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let io = |source| RpcError::Io {
            addr: self.addr.clone(),
            source,
        };
        let malformed = || RpcError::Malformed {
            method: method.to_string(),
        };
        let body = json!({"jsonrpc": "1.0", "id": "darkswap", "method": method, "params": params})
            .to_string();
        let mut stream = TcpStream::connect(&self.addr).await.map_err(io)?;
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.authorization,
            body.len()
        );
        stream.write_all(head.as_bytes()).await.map_err(io)?;
        stream.write_all(body.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::new();
        let mut limited = (&mut stream).take(defaults::BITCOIND_RPC_MAX_ANSWER as u64 + 1);
        limited.read_to_end(&mut answer).await.map_err(io)?;
        if answer.len() > defaults::BITCOIND_RPC_MAX_ANSWER {
            return Err(RpcError::TooLarge {
                method: method.to_string(),
            });
        }
        let split = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(malformed)?;
        let head = std::str::from_utf8(&answer[..split]).map_err(|_| malformed())?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(malformed)?;
        if status == 401 {
            return Err(RpcError::Unauthorized);
        }
        // bitcoind answers errors with 500 or 404 and a JSON-RPC body; both are read below.
        let v: Value = serde_json::from_slice(&answer[split + 4..]).map_err(|_| malformed())?;
        if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
            return Err(RpcError::Rpc {
                code: e["code"].as_i64().unwrap_or(0),
                message: e["message"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .chars()
                    .take(300)
                    .collect(),
            });
        }
        v.get("result").cloned().ok_or_else(malformed)
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(TABLE[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        // RFC 4648 section 10 test vectors.
        for (input, expected) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(input.as_bytes()), expected);
        }
    }

    #[test]
    fn urls_are_checked() {
        assert!(Rpc::new("http://127.0.0.1:18443", "u", "p").is_ok());
        assert!(Rpc::new("http://127.0.0.1:18443/", "u", "p").is_ok());
        assert!(Rpc::new("https://127.0.0.1:18443", "u", "p").is_err());
        assert!(Rpc::new("http://127.0.0.1", "u", "p").is_err());
        assert!(Rpc::new("http://127.0.0.1:1/wallet/x", "u", "p").is_err());
        assert!(
            !format!("{:?}", Rpc::new("http://h:1", "u", "secret").unwrap()).contains("secret")
        );
    }
}
