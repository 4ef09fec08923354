//! Signed releases of the web app. A publisher signs the list of a build's files with their
//! SHA-256 digests (`release.txt`, next to the files); anyone who holds the publisher's PeerId
//! checks a copy against it: a directory before serving it, or what a relay serves before
//! trusting it. Sans-IO: the caller reads the files and hands over their bytes.
//!
//! The text, one item per line (`\n`), in this order and nothing else:
//!
//! ```text
//! darkswap-web release 1
//! publisher <PeerId of an ed25519 key>
//! version <printable ASCII>
//! file <sha256 hex> <path>          (sorted by path, each path once, index.html among them)
//! signature <ed25519 signature hex> (over every byte before this line)
//! ```

use std::collections::BTreeMap;

use libp2p_identity::{Keypair, PeerId, PublicKey};
use sha2::{Digest, Sha256};

/// The release text's file name, in the directory it describes.
pub const FILE_NAME: &str = "release.txt";
/// The page every copy must hold (what a browser loads first).
pub const INDEX: &str = "index.html";
/// Largest release text read.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most files one release lists.
pub const MAX_FILES: usize = 256;
/// Longest path and version.
pub const MAX_FIELD_BYTES: usize = 200;

const HEADER: &str = "darkswap-web release 1";

/// Why a release cannot be made or does not check.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("the release text is {len} bytes, more than {MAX_TEXT_BYTES}")]
    TooLarge { len: usize },
    #[error("line {line} of the release text: {reason}")]
    Malformed { line: usize, reason: &'static str },
    #[error("the path {path:?} is not a plain relative path")]
    UnsafePath { path: String },
    #[error("the version {0:?} is not printable ASCII of at most {MAX_FIELD_BYTES} bytes")]
    BadVersion(String),
    #[error("more than {MAX_FILES} files")]
    TooManyFiles,
    #[error("{path} is listed twice")]
    Duplicate { path: String },
    #[error("the release does not list {INDEX}")]
    NoIndex,
    #[error("signed by {found}, not by the expected publisher {expected}")]
    WrongPublisher {
        expected: Box<PeerId>,
        found: Box<PeerId>,
    },
    #[error("the publisher {0} does not carry an ed25519 public key")]
    NotEd25519(Box<PeerId>),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("cannot sign: {0}")]
    Signing(#[source] libp2p_identity::SigningError),
    #[error("{path} is not in the release")]
    Unlisted { path: String },
    #[error("{path} differs from the release (sha256 {found}, signed {expected})")]
    Mismatch {
        path: String,
        expected: String,
        found: String,
    },
}

/// A release whose signature checked against the expected publisher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    publisher: PeerId,
    version: String,
    files: BTreeMap<String, [u8; 32]>,
}

impl Release {
    /// Who signed it.
    pub fn publisher(&self) -> PeerId {
        self.publisher
    }

    /// The version text the publisher gave.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The listed paths, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// Checks one file of a copy: listed, and byte for byte what was signed.
    pub fn check(&self, path: &str, bytes: &[u8]) -> Result<(), ReleaseError> {
        let expected = self.files.get(path).ok_or_else(|| ReleaseError::Unlisted {
            path: path.to_string(),
        })?;
        let found: [u8; 32] = Sha256::digest(bytes).into();
        if &found != expected {
            return Err(ReleaseError::Mismatch {
                path: path.to_string(),
                expected: hex::encode(expected),
                found: hex::encode(found),
            });
        }
        Ok(())
    }
}

/// A path as a release may name it: relative, `/`-separated, no empty, `.` or `..` part, only
/// ASCII letters, digits and `._-`.
fn safe_path(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= MAX_FIELD_BYTES
        && path.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        })
}

fn safe_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= MAX_FIELD_BYTES
        && version.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// The text before the signature line.
fn body(publisher: &PeerId, version: &str, files: &BTreeMap<String, [u8; 32]>) -> String {
    let mut text = format!("{HEADER}\npublisher {publisher}\nversion {version}\n");
    for (path, digest) in files {
        text.push_str(&format!("file {} {path}\n", hex::encode(digest)));
    }
    text
}

/// Signs a build: every file given (path relative to the build's directory, and its bytes),
/// which must include [`INDEX`] and must not include [`FILE_NAME`]. Returns the release text.
pub fn sign(
    keypair: &Keypair,
    version: &str,
    files: &[(String, Vec<u8>)],
) -> Result<String, ReleaseError> {
    if keypair.key_type() != libp2p_identity::KeyType::Ed25519 {
        return Err(ReleaseError::NotEd25519(Box::new(
            keypair.public().to_peer_id(),
        )));
    }
    if !safe_version(version) {
        return Err(ReleaseError::BadVersion(version.to_string()));
    }
    if files.len() > MAX_FILES {
        return Err(ReleaseError::TooManyFiles);
    }
    let mut listed = BTreeMap::new();
    for (path, bytes) in files {
        if !safe_path(path) || path == FILE_NAME {
            return Err(ReleaseError::UnsafePath { path: path.clone() });
        }
        if listed
            .insert(path.clone(), Sha256::digest(bytes).into())
            .is_some()
        {
            return Err(ReleaseError::Duplicate { path: path.clone() });
        }
    }
    if !listed.contains_key(INDEX) {
        return Err(ReleaseError::NoIndex);
    }
    let mut text = body(&keypair.public().to_peer_id(), version, &listed);
    let signature = keypair
        .sign(text.as_bytes())
        .map_err(ReleaseError::Signing)?;
    text.push_str(&format!("signature {}\n", hex::encode(signature)));
    if text.len() > MAX_TEXT_BYTES {
        return Err(ReleaseError::TooLarge { len: text.len() });
    }
    Ok(text)
}

/// The ed25519 key a PeerId carries (an "identity" multihash of the protobuf public key).
fn public_key(peer: &PeerId) -> Result<PublicKey, ReleaseError> {
    let hash = peer.as_ref();
    if hash.code() != 0 {
        return Err(ReleaseError::NotEd25519(Box::new(*peer)));
    }
    PublicKey::try_decode_protobuf(hash.digest())
        .ok()
        .filter(|key| key.key_type() == libp2p_identity::KeyType::Ed25519)
        .ok_or_else(|| ReleaseError::NotEd25519(Box::new(*peer)))
}

/// Reads a release text and checks that `publisher` signed it exactly as it reads: the format
/// is strict (one encoding per release), so a re-encoded or extended copy is refused too.
pub fn verify(text: &[u8], publisher: &PeerId) -> Result<Release, ReleaseError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ReleaseError::TooLarge { len: text.len() });
    }
    let malformed = |line: usize, reason: &'static str| ReleaseError::Malformed { line, reason };
    let text = std::str::from_utf8(text).map_err(|_| malformed(1, "not UTF-8"))?;
    let Some(without_last) = text.strip_suffix('\n') else {
        return Err(malformed(text.lines().count().max(1), "no final newline"));
    };
    let lines: Vec<&str> = without_last.split('\n').collect();
    if lines.len() < 5 {
        return Err(malformed(lines.len(), "too few lines"));
    }
    if lines[0] != HEADER {
        return Err(malformed(1, "not a darkswap-web release 1"));
    }
    let found: PeerId = lines[1]
        .strip_prefix("publisher ")
        .and_then(|p| p.parse().ok())
        .ok_or(malformed(2, "no publisher PeerId"))?;
    if &found != publisher {
        return Err(ReleaseError::WrongPublisher {
            expected: Box::new(*publisher),
            found: Box::new(found),
        });
    }
    let version = lines[2]
        .strip_prefix("version ")
        .filter(|v| safe_version(v))
        .ok_or(malformed(3, "no printable version"))?;
    let last = lines.len() - 1;
    let mut files = BTreeMap::new();
    for (i, line) in lines[3..last].iter().enumerate() {
        let number = i + 4;
        let rest = line
            .strip_prefix("file ")
            .ok_or(malformed(number, "not a file line"))?;
        let (digest, path) = rest.split_once(' ').ok_or(malformed(number, "no path"))?;
        let mut bytes = [0u8; 32];
        if digest.len() != 64 || hex::decode_to_slice(digest, &mut bytes).is_err() {
            return Err(malformed(number, "not a sha256 in lowercase hex"));
        }
        if digest != hex::encode(bytes) {
            return Err(malformed(number, "not a sha256 in lowercase hex"));
        }
        if !safe_path(path) || path == FILE_NAME {
            return Err(ReleaseError::UnsafePath {
                path: path.to_string(),
            });
        }
        if files
            .keys()
            .next_back()
            .is_some_and(|prev: &String| prev.as_str() >= path)
        {
            return Err(malformed(number, "paths not sorted or listed twice"));
        }
        if files.len() == MAX_FILES {
            return Err(ReleaseError::TooManyFiles);
        }
        files.insert(path.to_string(), bytes);
    }
    if !files.contains_key(INDEX) {
        return Err(ReleaseError::NoIndex);
    }
    let signature_hex = lines[last]
        .strip_prefix("signature ")
        .ok_or(malformed(last + 1, "no signature line"))?;
    let signature = hex::decode(signature_hex)
        .ok()
        .filter(|s| s.len() == 64 && signature_hex == hex::encode(s))
        .ok_or(malformed(
            last + 1,
            "not an ed25519 signature in lowercase hex",
        ))?;
    let signed = body(&found, version, &files);
    // The canonical text must be what was read: nothing re-encoded, nothing added.
    if !text.starts_with(&signed) || text.len() != signed.len() + lines[last].len() + 1 {
        return Err(malformed(last + 1, "not in the canonical form"));
    }
    if !public_key(&found)?.verify(signed.as_bytes(), &signature) {
        return Err(ReleaseError::BadSignature);
    }
    Ok(Release {
        publisher: found,
        version: version.to_string(),
        files,
    })
}

#[cfg(test)]
mod tests;
