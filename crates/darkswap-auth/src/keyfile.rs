//! Identity keys kept in files (native peers and the relay): created on first use, readable by
//! the owner only, reused afterwards so the PeerId stays the same. The identity key is what a
//! peer proves itself with (the identity method, and the Noise handshake under it).

use std::path::{Path, PathBuf};

use libp2p_identity::Keypair;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file exists but could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the read failed with.
        source: std::io::Error,
    },
    /// A new file could not be created, written or synced to disk (an existing file is never
    /// overwritten: creating one that exists fails).
    #[error("cannot write {path}: {source}")]
    Write {
        /// The key file.
        path: PathBuf,
        /// What the write failed with.
        source: std::io::Error,
    },
    /// The file's bytes are not a protobuf-encoded libp2p keypair (or a new key could not be
    /// encoded).
    #[error("{path} is not a valid key: {message}")]
    Invalid {
        /// The key file.
        path: PathBuf,
        /// libp2p's reason.
        message: String,
    },
}

/// Reads a file if it exists.
pub fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, KeyFileError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyFileError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a new secret file readable by the owner only; never overwrites.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyFileError> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let write_err = |source| KeyFileError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = options.open(path).map_err(write_err)?;
    file.write_all(bytes).map_err(write_err)?;
    file.sync_all().map_err(write_err)
}

/// Loads the ed25519 keypair at `path` (libp2p protobuf encoding), creating it if missing.
pub fn load_or_create_keypair(path: &Path) -> Result<Keypair, KeyFileError> {
    let invalid = |message: String| KeyFileError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    match read_if_exists(path)? {
        Some(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| invalid(e.to_string())),
        None => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| invalid(e.to_string()))?;
            write_private(path, &bytes)?;
            Ok(keypair)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_after_reload_and_garbage_refused() {
        let dir = std::env::temp_dir().join(format!("darkswap-keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("id.key");
        let _ = std::fs::remove_file(&path);
        let a = load_or_create_keypair(&path).unwrap();
        let b = load_or_create_keypair(&path).unwrap();
        assert_eq!(a.public(), b.public());
        std::fs::write(dir.join("bad.key"), b"garbage").unwrap();
        assert!(matches!(
            load_or_create_keypair(&dir.join("bad.key")),
            Err(KeyFileError::Invalid { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
