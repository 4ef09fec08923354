//! How this browser proves itself to the relay, and the relay's last token, kept in IndexedDB
//! next to the identity (keys carry the PeerId). The shared key, when the trader entered one,
//! is stored like the identity key: only in this browser.

use darkswap_auth::client::Credential;
use darkswap_auth::proof::SharedKey;
use darkswap_net::libp2p::PeerId;

use crate::storage::{get_bytes, put_bytes};

const STORE: &str = "identity";
const IDENTITY_METHOD: u8 = 0;
const SHARED_KEY_METHOD: u8 = 1;

fn key(what: &str, me: &PeerId) -> String {
    format!("{what}/{me}")
}

fn encode(credential: &Credential, key_bytes: Option<&[u8]>) -> Vec<u8> {
    match (credential, key_bytes) {
        (Credential::SharedKey(_), Some(k)) => {
            let mut out = vec![SHARED_KEY_METHOD];
            out.extend_from_slice(k);
            out
        }
        _ => vec![IDENTITY_METHOD],
    }
}

/// The saved credential (identity by default) and token.
pub async fn load(me: &PeerId) -> Result<(Credential, Option<Vec<u8>>), String> {
    let credential = match get_bytes(STORE, &key("auth-credential", me)).await? {
        Some(bytes) => match bytes.split_first() {
            Some((&SHARED_KEY_METHOD, k)) => {
                Credential::SharedKey(SharedKey::new(k).ok_or("the saved shared key is too short")?)
            }
            _ => Credential::Identity,
        },
        None => Credential::Identity,
    };
    let token = get_bytes(STORE, &key("auth-token", me)).await?;
    Ok((credential, token))
}

/// Saves the trader's choice: the identity key, or a shared key (given as entered).
pub async fn save_credential(me: &PeerId, shared_key: Option<&str>) -> Result<Credential, String> {
    let credential = match shared_key {
        Some(text) => Credential::SharedKey(SharedKey::new(text.as_bytes()).ok_or(format!(
            "the shared key must be at least {} characters",
            darkswap_auth::proof::MIN_SHARED_KEY_BYTES
        ))?),
        None => Credential::Identity,
    };
    let bytes = encode(&credential, shared_key.map(str::as_bytes));
    put_bytes(STORE, &key("auth-credential", me), &bytes).await?;
    // A token earned by the other method is no use any more.
    put_bytes(STORE, &key("auth-token", me), &[]).await?;
    Ok(credential)
}

/// Keeps the relay's latest token for the next visit.
pub async fn save_token(me: &PeerId, token: &[u8]) -> Result<(), String> {
    put_bytes(STORE, &key("auth-token", me), token).await
}
