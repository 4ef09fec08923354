//! The trader's identity: an ed25519 key kept in IndexedDB, so the PeerId survives reloads. In
//! the clear unless the trader locked it with the wallet's password (`at_rest`): then only
//! sealed under the page's data key (`vault`), and a visit starts with the password.

use darkswap_net::libp2p::identity::{DecodingError, Keypair};
use darkswap_wallet::keystore::{OpenError, SealError};
use darkswap_wallet::vault::DataKey;
use wasm_bindgen::JsValue;

use crate::storage::{bytes_value, get_bytes, present_all, replace, Change, StorageError};
use crate::vault::{self, STORE};

/// The key in the clear (protobuf-encoded).
pub const PLAIN: &str = "ed25519";
/// The key sealed under the data key.
pub const SEALED: &str = "ed25519-sealed";
/// The sealed record's label (its associated data).
const LABEL: &str = "identity";

/// Why the identity could not be loaded, created or sealed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored identity is unreadable: {0}")]
    Unreadable(DecodingError),
    #[error("cannot encode the identity: {0}")]
    Encode(DecodingError),
    #[error("the sealed identity does not open: {0}")]
    Open(#[from] OpenError),
    #[error("cannot seal the identity: {0}")]
    Seal(#[from] SealError),
    #[error("the keys are locked, but no sealed identity is stored")]
    SealedMissing,
    #[error("the lock on this browser's keys is incomplete (a record is missing or altered): nothing is replaced; restore the browser's data from a backup or clear the site's data to start over")]
    LockIncomplete,
    #[error("the stored identity is not a key (altered record)")]
    NotBytes,
    #[error("no identity is stored in the clear")]
    PlainMissing,
}

/// What the page found at start-up.
pub enum Loaded {
    /// The identity, in the clear (created now if there was none).
    Ready(Box<Keypair>),
    /// Locked with the wallet's password: the trader must unlock it first.
    Locked,
}

/// Loads the stored identity, or creates and stores a new one. A locked identity is never
/// replaced by a new one, whatever state its records are in: half a lock (a wrapped data key
/// without a sealed identity, or the other way round) is an error, not a fresh start.
pub async fn load_or_create() -> Result<Loaded, IdentityError> {
    let found = present_all(STORE, &[vault::WRAPPED, SEALED, PLAIN]).await?;
    match (found[0], found[1], found[2]) {
        (true, true, _) => return Ok(Loaded::Locked),
        (true, false, _) | (false, true, _) => return Err(IdentityError::LockIncomplete),
        (false, false, true) => {
            let bytes = get_bytes(STORE, PLAIN)
                .await?
                .ok_or(IdentityError::NotBytes)?;
            return Keypair::from_protobuf_encoding(&bytes)
                .map(|k| Loaded::Ready(Box::new(k)))
                .map_err(IdentityError::Unreadable);
        }
        (false, false, false) => {}
    }
    let keypair = Keypair::generate_ed25519();
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(IdentityError::Encode)?;
    // Only if no other tab stored an identity or a lock meanwhile.
    let change = Change {
        expect: [vault::WRAPPED, SEALED, PLAIN]
            .iter()
            .map(|k| (k.to_string(), false))
            .collect(),
        puts: vec![(PLAIN.to_string(), bytes_value(&encoded))],
        deletes: Vec::new(),
    };
    replace(STORE, &change).await?;
    Ok(Loaded::Ready(Box::new(keypair)))
}

/// The identity sealed under `key`.
pub async fn open_sealed(key: &DataKey) -> Result<Keypair, IdentityError> {
    let sealed = get_bytes(STORE, SEALED)
        .await?
        .ok_or(IdentityError::SealedMissing)?;
    let encoded = key.open(LABEL, &sealed)?;
    Keypair::from_protobuf_encoding(&encoded).map_err(IdentityError::Unreadable)
}

/// The record that stores the identity in the clear (from its clear record, to be sealed).
pub async fn plain_bytes() -> Result<zeroize::Zeroizing<Vec<u8>>, IdentityError> {
    get_bytes(STORE, PLAIN)
        .await?
        .map(zeroize::Zeroizing::new)
        .ok_or(IdentityError::PlainMissing)
}

/// The record that stores `encoded` (a protobuf keypair) sealed under `key`.
pub fn sealed_record(key: &DataKey, encoded: &[u8]) -> Result<(String, JsValue), IdentityError> {
    Ok((SEALED.to_string(), bytes_value(&key.seal(LABEL, encoded)?)))
}

/// The record that stores the identity in the clear again.
pub fn plain_record(keypair: &Keypair) -> Result<(String, JsValue), IdentityError> {
    let encoded = zeroize::Zeroizing::new(
        keypair
            .to_protobuf_encoding()
            .map_err(IdentityError::Encode)?,
    );
    Ok((PLAIN.to_string(), bytes_value(&encoded)))
}
