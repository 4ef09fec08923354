//! The trader's identity: an ed25519 key kept in IndexedDB, so the PeerId survives reloads.

use darkswap_net::libp2p::identity::Keypair;

use crate::storage::{get_bytes, put_bytes};

const STORE: &str = "identity";
const KEY: &str = "ed25519";

/// Loads the stored identity, or creates and stores a new one.
pub async fn load_or_create() -> Result<Keypair, String> {
    if let Some(bytes) = get_bytes(STORE, KEY).await? {
        return Keypair::from_protobuf_encoding(&bytes)
            .map_err(|e| format!("stored identity is unreadable: {e}"));
    }
    let keypair = Keypair::generate_ed25519();
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(|e| format!("cannot encode identity: {e}"))?;
    put_bytes(STORE, KEY, &encoded).await?;
    Ok(keypair)
}
