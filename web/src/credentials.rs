//! How this browser proves itself to the relay, and the relay's last token, kept in IndexedDB
//! next to the identity (keys carry the PeerId). The shared key, when the trader entered one,
//! is stored like the identity key: only in this browser. The choice is stored as a JavaScript
//! object (`{ method, shared_key }`); a record in the older byte format is still read.

use darkswap_auth::client::Credential;
use darkswap_auth::proof::SharedKey;
use darkswap_net::libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::storage::{get_bytes, get_value, put_bytes, put_value, StorageError};

const STORE: &str = "identity";

/// Why the saved credential cannot be used or saved.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(
        "the shared key must be at least {} characters",
        darkswap_auth::proof::MIN_SHARED_KEY_BYTES
    )]
    ShortKey,
    #[error("the saved credential names an unknown method {0:?}")]
    UnknownMethod(String),
}

/// The stored choice.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCredential {
    /// "identity" or "shared_key".
    method: String,
    shared_key: Option<String>,
}

fn key(what: &str, me: &PeerId) -> String {
    format!("{what}/{me}")
}

/// "identity" or "shared_key": the method a credential uses, as the page shows it.
pub fn method_name(credential: &Credential) -> &'static str {
    match credential {
        Credential::Identity => "identity",
        Credential::SharedKey(_) => "shared_key",
    }
}

fn shared(text: &[u8]) -> Result<Credential, CredentialError> {
    SharedKey::new(text)
        .map(Credential::SharedKey)
        .ok_or(CredentialError::ShortKey)
}

/// The saved credential (identity by default) and token.
pub async fn load(me: &PeerId) -> Result<(Credential, Option<Vec<u8>>), CredentialError> {
    let name = key("auth-credential", me);
    let credential = match get_value::<StoredCredential>(STORE, &name).await? {
        Some(stored) => match (stored.method.as_str(), stored.shared_key) {
            ("shared_key", Some(k)) => shared(k.as_bytes())?,
            ("identity", _) => Credential::Identity,
            (other, _) => return Err(CredentialError::UnknownMethod(other.to_string())),
        },
        // The older format: a method byte (1: shared key, then the key) or nothing.
        None => match get_bytes(STORE, &name).await? {
            Some(bytes) => match bytes.split_first() {
                Some((1, k)) => shared(k)?,
                _ => Credential::Identity,
            },
            None => Credential::Identity,
        },
    };
    let token = get_bytes(STORE, &key("auth-token", me)).await?;
    Ok((credential, token))
}

/// Saves the trader's choice: the identity key, or a shared key (given as entered).
pub async fn save_credential(
    me: &PeerId,
    shared_key: Option<&str>,
) -> Result<Credential, CredentialError> {
    let credential = match shared_key {
        Some(text) => shared(text.as_bytes())?,
        None => Credential::Identity,
    };
    let stored = StoredCredential {
        method: method_name(&credential).to_string(),
        shared_key: shared_key.map(str::to_string),
    };
    put_value(STORE, &key("auth-credential", me), &stored).await?;
    // A token earned by the other method is no use any more.
    put_bytes(STORE, &key("auth-token", me), &[]).await?;
    Ok(credential)
}

/// Keeps the relay's latest token for the next visit.
pub async fn save_token(me: &PeerId, token: &[u8]) -> Result<(), StorageError> {
    put_bytes(STORE, &key("auth-token", me), token).await
}
