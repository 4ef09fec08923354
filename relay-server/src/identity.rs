//! The relay's persistent identity: an ed25519 key (its PeerId) and the WebRTC-direct
//! certificate (its hash is part of every WebRTC dial address). Both are created on first start
//! and reused afterwards, so the relay's addresses survive restarts.

use std::path::{Path, PathBuf};

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
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid key: {message}")]
    InvalidKey { path: PathBuf, message: String },
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
    let key_path = data_dir.join(KEY_FILE);
    let keypair = match read_if_exists(&key_path)? {
        Some(bytes) => {
            Keypair::from_protobuf_encoding(&bytes).map_err(|e| IdentityError::InvalidKey {
                path: key_path.clone(),
                message: e.to_string(),
            })?
        }
        None => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| IdentityError::InvalidKey {
                    path: key_path.clone(),
                    message: e.to_string(),
                })?;
            write_private(&key_path, &bytes)?;
            keypair
        }
    };
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

fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, IdentityError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a secret readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let write_err = |source| IdentityError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(write_err)?;
    file.write_all(bytes).map_err(write_err)?;
    file.sync_all().map_err(write_err)
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
        assert!(matches!(e, IdentityError::InvalidKey { .. }), "{e}");
    }
}
