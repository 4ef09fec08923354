use libp2p_identity::{ed25519, Keypair, PeerId};

use super::*;

fn build() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "index.html".into(),
            b"<!DOCTYPE html><title>DarkSwap</title>".to_vec(),
        ),
        ("app_bg.wasm".into(), vec![0, 97, 115, 109, 1, 0, 0, 0]),
        (
            "app.js".into(),
            b"export default function init() {}".to_vec(),
        ),
        ("assets/styles.css".into(), b"body { color: #eee }".to_vec()),
    ]
}

fn publisher() -> Keypair {
    Keypair::generate_ed25519()
}

/// The key pair of RFC 8032's section 7.1 tests from its 32-byte secret.
fn rfc_key(secret_hex: &str) -> Keypair {
    let mut secret = hex::decode(secret_hex).unwrap();
    Keypair::from(ed25519::Keypair::from(
        ed25519::SecretKey::try_from_bytes(&mut secret).unwrap(),
    ))
}

#[test]
fn signatures_are_plain_ed25519_per_rfc_8032() {
    // RFC 8032, 7.1, TEST 1 (empty message) and TEST 2 (one byte, 0x72).
    let vectors = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
    ];
    for (secret, public, message, signature) in vectors {
        let key = rfc_key(secret);
        let message = hex::decode(message).unwrap();
        assert_eq!(hex::encode(key.sign(&message).unwrap()), signature);
        let peer = key.public().to_peer_id();
        let from_peer = public_key(&peer).unwrap();
        assert_eq!(
            hex::encode(from_peer.try_into_ed25519().unwrap().to_bytes()),
            public
        );
        assert!(public_key(&peer)
            .unwrap()
            .verify(&message, &hex::decode(signature).unwrap()));
    }
}

#[test]
fn a_signed_build_checks_file_by_file() {
    let key = publisher();
    let text = sign(&key, "0.1.0 d4626d2", &build()).unwrap();
    let release = verify(text.as_bytes(), &key.public().to_peer_id()).unwrap();
    assert_eq!(release.version(), "0.1.0 d4626d2");
    assert_eq!(release.publisher(), key.public().to_peer_id());
    assert_eq!(
        release.paths().collect::<Vec<_>>(),
        ["app.js", "app_bg.wasm", "assets/styles.css", "index.html"]
    );
    for (path, bytes) in build() {
        release.check(&path, &bytes).unwrap();
    }
    // One byte changed in the module, or a file that was never signed: refused.
    let mut wasm = build()[1].1.clone();
    wasm[7] ^= 1;
    assert!(matches!(
        release.check("app_bg.wasm", &wasm),
        Err(ReleaseError::Mismatch { path, .. }) if path == "app_bg.wasm"
    ));
    assert!(matches!(
        release.check("evil.js", b"steal()"),
        Err(ReleaseError::Unlisted { .. })
    ));
}

#[test]
fn only_the_expected_publisher_is_believed() {
    let (honest, attacker) = (publisher(), publisher());
    let honest_id = honest.public().to_peer_id();
    // A release the attacker signed with its own key names the attacker.
    let forged = sign(&attacker, "0.1.0", &build()).unwrap();
    assert!(matches!(
        verify(forged.as_bytes(), &honest_id),
        Err(ReleaseError::WrongPublisher { found, .. }) if *found == attacker.public().to_peer_id()
    ));
    // The attacker's release with the honest publisher's name on it: the signature fails.
    let renamed = forged.replace(
        &attacker.public().to_peer_id().to_string(),
        &honest_id.to_string(),
    );
    assert!(matches!(
        verify(renamed.as_bytes(), &honest_id),
        Err(ReleaseError::BadSignature)
    ));
}

#[test]
fn any_edit_of_a_signed_text_is_refused() {
    let key = publisher();
    let id = key.public().to_peer_id();
    let text = sign(&key, "0.1.0", &build()).unwrap();
    let refused = |edited: String| verify(edited.as_bytes(), &id).unwrap_err();

    // Another digest for the module (the attacker's build).
    let line = text.lines().find(|l| l.ends_with(" app_bg.wasm")).unwrap();
    let other = format!("file {} app_bg.wasm", hex::encode([7u8; 32]));
    assert!(matches!(
        refused(text.replace(line, &other)),
        ReleaseError::BadSignature
    ));
    // A file added to the list (in its sorted place, last).
    let extra = format!("file {} zz.js\n", hex::encode([7u8; 32]));
    let added = text.replace("signature ", &format!("{extra}signature "));
    assert!(matches!(refused(added), ReleaseError::BadSignature));
    // The version changed.
    assert!(matches!(
        refused(text.replace("version 0.1.0", "version 0.2.0")),
        ReleaseError::BadSignature
    ));
    // Other encodings of the same content: CRLF, upper-case hex, a line after the signature,
    // no final newline, files out of order or twice.
    assert!(matches!(
        refused(text.replace('\n', "\r\n")),
        ReleaseError::Malformed { .. }
    ));
    let upper = text.replace(
        line,
        &line.replacen(&line[5..69], &line[5..69].to_uppercase(), 1),
    );
    assert!(matches!(refused(upper), ReleaseError::Malformed { .. }));
    assert!(matches!(
        refused(format!("{text}junk\n")),
        ReleaseError::Malformed { .. }
    ));
    assert!(matches!(
        refused(text.trim_end().to_string()),
        ReleaseError::Malformed { .. }
    ));
    let lines: Vec<&str> = text.lines().collect();
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    assert!(matches!(
        refused(swapped.join("\n") + "\n"),
        ReleaseError::Malformed { .. }
    ));
    let mut twice = lines.clone();
    twice.insert(4, lines[3]);
    assert!(matches!(
        refused(twice.join("\n") + "\n"),
        ReleaseError::Malformed { .. }
    ));
    // Not a release at all, or too large to read.
    assert!(matches!(
        refused(String::new()),
        ReleaseError::Malformed { .. }
    ));
    assert!(matches!(
        refused("x".repeat(MAX_TEXT_BYTES + 1)),
        ReleaseError::TooLarge { .. }
    ));
    // Untouched, it still checks.
    verify(text.as_bytes(), &id).unwrap();
}

#[test]
fn paths_stay_inside_the_directory() {
    let key = publisher();
    for bad in [
        "../index.html",
        "/etc/passwd",
        "a//b",
        "./x",
        "a/../b",
        "sp ace",
        "",
        "release.txt",
    ] {
        let mut files = build();
        files.push((bad.to_string(), b"x".to_vec()));
        assert!(
            matches!(
                sign(&key, "1", &files),
                Err(ReleaseError::UnsafePath { .. })
            ),
            "{bad:?} was signed"
        );
    }
    // A signed text naming such a path is refused even with a good signature: made by hand.
    let mut files = BTreeMap::new();
    files.insert("../x".to_string(), [0u8; 32]);
    files.insert(INDEX.to_string(), [0u8; 32]);
    let id = key.public().to_peer_id();
    let mut text = body(&id, "1", &files);
    let signature = key.sign(text.as_bytes()).unwrap();
    text.push_str(&format!("signature {}\n", hex::encode(signature)));
    assert!(matches!(
        verify(text.as_bytes(), &id),
        Err(ReleaseError::UnsafePath { .. })
    ));
}

#[test]
fn a_build_needs_its_page_and_each_path_once() {
    let key = publisher();
    let without_index: Vec<_> = build().into_iter().filter(|(p, _)| p != INDEX).collect();
    assert!(matches!(
        sign(&key, "1", &without_index),
        Err(ReleaseError::NoIndex)
    ));
    let mut twice = build();
    twice.push(twice[0].clone());
    assert!(matches!(
        sign(&key, "1", &twice),
        Err(ReleaseError::Duplicate { .. })
    ));
    assert!(matches!(
        sign(&key, "1\n", &build()),
        Err(ReleaseError::BadVersion(_))
    ));
    let many: Vec<_> = (0..=MAX_FILES).map(|i| (format!("f{i}"), vec![])).collect();
    assert!(matches!(
        sign(&key, "1", &many),
        Err(ReleaseError::TooManyFiles)
    ));
}

#[test]
fn a_publisher_must_be_an_ed25519_peer_id() {
    // A PeerId that hashes its key (sha256 multihash) carries no key to verify with.
    let hashed = PeerId::random();
    assert!(matches!(
        public_key(&hashed),
        Err(ReleaseError::NotEd25519(_))
    ));
}
