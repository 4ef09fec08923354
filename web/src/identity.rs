//! The trader's identity: an ed25519 key kept in IndexedDB, so the PeerId survives reloads.

use darkswap_net::libp2p::identity::{DecodingError, Keypair};

use crate::storage::{get_bytes, put_bytes, StorageError};

const STORE: &str = "identity";
const KEY: &str = "ed25519";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("stored identity is unreadable: {0}")]
    Unreadable(DecodingError),
    #[error("cannot encode the new identity: {0}")]
    Encode(DecodingError),
}

/// Loads the stored identity, or creates and stores a new one.
pub async fn load_or_create() -> Result<Keypair, IdentityError> {
    if let Some(bytes) = get_bytes(STORE, KEY).await? {
        return Keypair::from_protobuf_encoding(&bytes).map_err(IdentityError::Unreadable);
    }
    let keypair = Keypair::generate_ed25519();
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(IdentityError::Encode)?;
    put_bytes(STORE, KEY, &encoded).await?;
    Ok(keypair)
}
