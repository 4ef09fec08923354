//! The relay's persistent identity: an ed25519 key (its PeerId) and the WebRTC-direct
//! certificate (its hash is part of every WebRTC dial address). Both are created on first start
//! and reused afterwards, so the relay's addresses survive restarts.

use std::path::{Path, PathBuf};

use darkswap_auth::keyfile::{load_or_create_keypair, read_if_exists, write_private, KeyFileError};
use libp2p::identity::Keypair;
use libp2p_webrtc::tokio::Certificate;

const KEY_FILE: &str = "identity.key";
const CERT_FILE: &str = "webrtc-cert.pem";

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    File(#[from] KeyFileError),
    #[error("{path} is not a valid certificate: {message}")]
    InvalidCert { path: PathBuf, message: String },
    #[error("cannot generate a WebRTC certificate: {0}")]
    GenerateCert(String),
}

/// The relay's long-lived key material.
pub struct Identity {
    pub keypair: Keypair,
    pub certificate: Certificate,
}

/// Loads the key and certificate from `data_dir`, creating whichever is missing.
pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
    std::fs::create_dir_all(data_dir).map_err(|source| IdentityError::CreateDir {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let keypair = load_or_create_keypair(&data_dir.join(KEY_FILE))?;
    let cert_path = data_dir.join(CERT_FILE);
    let certificate = match read_if_exists(&cert_path)? {
        Some(bytes) => {
            let pem = String::from_utf8(bytes).map_err(|e| IdentityError::InvalidCert {
                path: cert_path.clone(),
                message: e.to_string(),
            })?;
            Certificate::from_pem(&pem).map_err(|e| IdentityError::InvalidCert {
                path: cert_path.clone(),
                message: e.to_string(),
            })?
        }
        None => {
            let certificate = Certificate::generate(&mut rand010::rng())
                .map_err(|e| IdentityError::GenerateCert(e.to_string()))?;
            write_private(&cert_path, certificate.serialize_pem().as_bytes())?;
            certificate
        }
    };
    Ok(Identity {
        keypair,
        certificate,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_persists() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.keypair.public(), b.keypair.public());
        assert_eq!(a.certificate.fingerprint(), b.certificate.fingerprint());
    }

    #[test]
    fn corrupt_key_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"garbage").unwrap();
        let e = load_or_create(dir.path()).err().unwrap();
        assert!(
            matches!(e, IdentityError::File(KeyFileError::Invalid { .. })),
            "{e}"
        );
    }
}
