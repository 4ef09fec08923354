use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 8439 §2.8.2: the AEAD_CHACHA20_POLY1305 test vector.
#[test]
fn rfc8439_chacha20_poly1305_vector() {
    let key = Key::from_bytes(
        hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f")
            .try_into()
            .unwrap(),
    );
    let nonce: [u8; 12] = hex("070000004041424344454647").try_into().unwrap();
    let aad = hex("50515253c0c1c2c3c4c5c6c7");
    let plaintext = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";
    let expected = hex(
        "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6
         3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36
         92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc
         3ff4def08e4b7a9de576d26586cec64b6116
         1ae10b594f09e26a7e902ecbd0600691",
    );
    let sealed = seal(Cipher::ChaCha20Poly1305, &key, &nonce, &aad, plaintext);
    assert_eq!(sealed, expected);
    assert_eq!(
        open(Cipher::ChaCha20Poly1305, &key, &nonce, &aad, &sealed).unwrap(),
        plaintext
    );
}

#[test]
fn any_change_fails_to_open() {
    for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let key = Key::from_bytes([7; 32]);
        let nonce = [1u8; 12];
        let sealed = seal(cipher, &key, &nonce, b"aad", b"take 100 at 0.5");
        assert!(open(cipher, &key, &nonce, b"aad", &sealed).is_some());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(
                open(cipher, &key, &nonce, b"aad", &bad).is_none(),
                "{cipher:?} byte {i}"
            );
        }
        assert!(open(cipher, &key, &nonce, b"aaD", &sealed).is_none());
        assert!(open(cipher, &key, &[2u8; 12], b"aad", &sealed).is_none());
        assert!(open(cipher, &Key::from_bytes([8; 32]), &nonce, b"aad", &sealed).is_none());
        assert!(open(cipher, &key, &nonce, b"aad", &sealed[..10]).is_none());
    }
}

/// Wycheproof's AES-GCM and ChaCha20-Poly1305 sets, through our functions, for the sizes we use
/// (256-bit keys, 96-bit nonces, 128-bit tags).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn wycheproof_vectors() {
    use wycheproof::aead::{TestName, TestSet};
    use wycheproof::TestResult;
    for (name, cipher) in [
        (TestName::AesGcm, Cipher::Aes256Gcm),
        (TestName::ChaCha20Poly1305, Cipher::ChaCha20Poly1305),
    ] {
        let set = TestSet::load(name).unwrap();
        let mut checked = 0;
        for group in set.test_groups {
            if group.key_size != 256 || group.nonce_size != 96 || group.tag_size != 128 {
                continue;
            }
            for t in group.tests {
                let key = Key::from_bytes(t.key[..].try_into().unwrap());
                let nonce: [u8; 12] = t.nonce[..].try_into().unwrap();
                let mut expected = t.ct.to_vec();
                expected.extend_from_slice(&t.tag);
                let opened = open(cipher, &key, &nonce, &t.aad, &expected);
                match t.result {
                    TestResult::Valid | TestResult::Acceptable => {
                        assert_eq!(
                            seal(cipher, &key, &nonce, &t.aad, &t.pt),
                            expected,
                            "tc {}",
                            t.tc_id
                        );
                        assert_eq!(opened.as_deref(), Some(&t.pt[..]), "tc {}", t.tc_id);
                    }
                    TestResult::Invalid => assert!(opened.is_none(), "tc {} must fail", t.tc_id),
                }
                checked += 1;
            }
        }
        assert!(checked > 50, "{cipher:?}: only {checked} vectors");
    }
}
