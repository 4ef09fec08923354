//! How this browser proves itself to the relay, and the relay's last token, kept in IndexedDB
//! next to the identity (keys carry the PeerId). The shared key, when the trader entered one,
//! is stored like the identity key: only in this browser, in the clear unless the keys are
//! locked at rest (then sealed under the page's data key, `vault`). The choice is stored as a
//! JavaScript object (`{ method, shared_key }`); a record in the older byte format is still read.

use darkswap_auth::client::Credential;
use darkswap_auth::proof::SharedKey;
use darkswap_net::libp2p::PeerId;
use serde::{Deserialize, Serialize};

use darkswap_wallet::keystore::{OpenError, SealError};
use darkswap_wallet::vault::DataKey;
use zeroize::Zeroizing;

use crate::storage::{
    bytes_value, get_bytes, get_value, put_bytes, replace, to_value, Change, StorageError,
};
use crate::vault::{self, STORE};

/// The sealed shared key's label (its associated data).
const LABEL: &str = "shared-key";

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
    #[error("the sealed shared key does not open: {0}")]
    Open(#[from] OpenError),
    #[error("cannot seal the shared key: {0}")]
    Seal(#[from] SealError),
    #[error("the keys are locked at rest and not unlocked in this page")]
    Locked,
    #[error("the shared key is not valid text")]
    NotText,
    #[error("the saved credential is a shared key, but no key is stored: enter it again")]
    SharedKeyMissing,
}

/// The stored choice.
#[derive(Debug, Serialize, Deserialize)]
struct StoredCredential {
    /// "identity" or "shared_key".
    method: String,
    /// In the clear; `None` when it is sealed (or there is none).
    shared_key: Option<String>,
}

fn key(what: &str, me: &PeerId) -> String {
    format!("{what}/{me}")
}

/// "identity" or "shared_key": the method a credential uses, as the page shows it.
pub fn method_name(credential: &Credential) -> &'static str {
    credential.method().label()
}

fn shared(text: &[u8]) -> Result<Credential, CredentialError> {
    SharedKey::new(text)
        .map(Credential::SharedKey)
        .ok_or(CredentialError::ShortKey)
}

/// The sealed shared key of `me`, opened with the page's data key.
async fn open_sealed(me: &PeerId) -> Result<Option<Zeroizing<String>>, CredentialError> {
    let Some(sealed) = get_bytes(STORE, &key("shared-key-sealed", me)).await? else {
        return Ok(None);
    };
    let data_key = vault::current().ok_or(CredentialError::Locked)?;
    let plain = data_key.open(LABEL, &sealed)?;
    std::str::from_utf8(&plain)
        .map(|text| Some(Zeroizing::new(text.to_string())))
        .map_err(|_| CredentialError::NotText)
}

/// The saved credential (identity by default) and token.
pub async fn load(me: &PeerId) -> Result<(Credential, Option<Vec<u8>>), CredentialError> {
    let name = key("auth-credential", me);
    let credential = match get_value::<StoredCredential>(STORE, &name).await? {
        Some(stored) => match stored.method.as_str() {
            "identity" => Credential::Identity,
            "shared_key" => {
                let text = match stored.shared_key {
                    Some(k) => Zeroizing::new(k),
                    None => open_sealed(me)
                        .await?
                        .ok_or(CredentialError::SharedKeyMissing)?,
                };
                shared(text.as_bytes())?
            }
            other => return Err(CredentialError::UnknownMethod(other.to_string())),
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

/// The records that store `stored` (and its shared key, sealed under `data_key` when there is
/// one, else in the clear), and the keys to delete.
fn records(
    me: &PeerId,
    mut stored: StoredCredential,
    data_key: Option<&DataKey>,
) -> Result<Change, CredentialError> {
    let sealed_name = key("shared-key-sealed", me);
    let mut change = Change::default();
    match (data_key, stored.shared_key.take()) {
        (Some(data_key), Some(k)) => change.puts.push((
            sealed_name,
            bytes_value(&data_key.seal(LABEL, k.as_bytes())?),
        )),
        (_, k) => {
            stored.shared_key = k;
            change.deletes.push(sealed_name);
        }
    }
    let name = key("auth-credential", me);
    change.puts.push((name.clone(), to_value(&name, &stored)?));
    Ok(change)
}

/// Saves the trader's choice: the identity key, or a shared key (given as entered), sealed when
/// the keys are locked at rest.
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
    // Sealed when this page holds the data key, and then only if the lock is still stored
    // (another tab may have removed it); in the clear only if no lock is stored.
    let data_key = vault::current();
    let mut change = records(me, stored, data_key.as_deref())?;
    change
        .expect
        .push((vault::WRAPPED.to_string(), data_key.is_some()));
    // A token earned by the other method is no use any more.
    change.puts.push((key("auth-token", me), bytes_value(&[])));
    replace(STORE, &change).await?;
    Ok(credential)
}

/// The records that move `me`'s shared key (if any) under `data_key`, or back into the clear
/// with `None`, and the keys to delete: part of locking or unlocking the keys at rest.
pub async fn moved(me: &PeerId, data_key: Option<&DataKey>) -> Result<Change, CredentialError> {
    let name = key("auth-credential", me);
    let mut stored = match get_value::<StoredCredential>(STORE, &name).await? {
        Some(stored) => stored,
        // The older byte format holds a shared key in the clear too: rewritten in the new one.
        None => match get_bytes(STORE, &name).await? {
            Some(bytes) => match bytes.split_first() {
                Some((1, k)) => StoredCredential {
                    method: "shared_key".into(),
                    shared_key: Some(
                        String::from_utf8(k.to_vec()).map_err(|_| CredentialError::NotText)?,
                    ),
                },
                _ => StoredCredential {
                    method: "identity".into(),
                    shared_key: None,
                },
            },
            None => {
                return Ok(Change {
                    deletes: vec![key("shared-key-sealed", me)],
                    ..Change::default()
                })
            }
        },
    };
    if stored.shared_key.is_none() && stored.method == "shared_key" {
        stored.shared_key = open_sealed(me).await?.map(|k| k.to_string());
    }
    records(me, stored, data_key)
}

/// Keeps the relay's latest token for the next visit.
pub async fn save_token(me: &PeerId, token: &[u8]) -> Result<(), StorageError> {
    put_bytes(STORE, &key("auth-token", me), token).await
}

/// Our identity's proof of work (`darkswap_auth::stamp`), kept so that no relay makes this
/// browser search for it again. Not secret: it proves work, nothing more.
pub async fn save_stamp(me: &PeerId, stamp: u64) -> Result<(), StorageError> {
    put_bytes(STORE, &key("identity-stamp", me), &stamp.to_be_bytes()).await
}

/// The proof of work kept by [`save_stamp`], if any (a record of another length is ignored).
pub async fn load_stamp(me: &PeerId) -> Result<Option<u64>, StorageError> {
    Ok(get_bytes(STORE, &key("identity-stamp", me))
        .await?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(u64::from_be_bytes))
}
