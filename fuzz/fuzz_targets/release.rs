//! Signed releases: `darkswap_release::verify` on any text, against the publisher the seeds are
//! signed by (`identity(9)`) and against another. Properties: nothing panics; a text that
//! verifies is within the size cap, lists at most `MAX_FILES` plain relative paths with
//! `index.html` among them, does not verify for another publisher, and `check` answers for each
//! of its paths without panicking.
#![no_main]

use std::sync::LazyLock;

use darkswap_fuzz::identity;
use darkswap_release::{verify, INDEX, MAX_FILES, MAX_TEXT_BYTES};
use libfuzzer_sys::fuzz_target;
use libp2p_identity::PeerId;

static PUBLISHER: LazyLock<PeerId> = LazyLock::new(|| identity(9).public().to_peer_id());
static OTHER: LazyLock<PeerId> = LazyLock::new(|| identity(10).public().to_peer_id());

fuzz_target!(|data: &[u8]| {
    let Ok(release) = verify(data, &PUBLISHER) else { return };
    assert!(data.len() <= MAX_TEXT_BYTES);
    let paths: Vec<&str> = release.paths().collect();
    assert!(paths.len() <= MAX_FILES);
    assert!(paths.contains(&INDEX));
    for path in &paths {
        assert!(!path.starts_with('/'));
        assert!(path.split('/').all(|part| !part.is_empty() && part != "." && part != ".."));
        let _ = release.check(path, data);
    }
    assert!(verify(data, &OTHER).is_err());
});
