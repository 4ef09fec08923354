use super::*;

const NOW: u64 = 1_800_000_000_000;

fn key(seed: u8) -> Keypair {
    Keypair::ed25519_from_bytes([seed; 32]).unwrap()
}

fn record_for(key: &Keypair) -> RelayRecord {
    let me = key.public().to_peer_id();
    RelayRecord {
        seq: 7,
        issued_at_ms: NOW,
        expires_at_ms: NOW + 600_000,
        name: "relay one".into(),
        region: "eu-west".into(),
        addrs: vec![
            format!("/ip4/192.0.2.1/tcp/4001/p2p/{me}").parse().unwrap(),
            format!("/ip4/192.0.2.1/tcp/4002/ws/p2p/{me}")
                .parse()
                .unwrap(),
        ],
        auth_methods: vec![Method::Identity, Method::SharedKey],
        limits: Some(AnnouncedLimits {
            max_orders_per_maker: 50,
            publish_burst: 20,
            publish_per_second: 5,
        }),
        load_permille: 125,
    }
}

/// Re-signs an arbitrary body with `key`, bypassing the signer's checks (a hostile relay).
fn forge(key: &Keypair, body: wire::Body) -> Vec<u8> {
    let body = body.encode_to_vec();
    wire::Signed {
        public_key: key.public().encode_protobuf(),
        signature: key.sign(&signing_input(&body)).unwrap(),
        body,
    }
    .encode_to_vec()
}

#[test]
fn a_signed_record_verifies_and_round_trips() {
    let k = key(1);
    let record = record_for(&k);
    let signed = record.sign(&k, NOW).unwrap();
    let back = SignedRelayRecord::verify(signed.bytes(), NOW + 1).unwrap();
    assert_eq!(back.record(), &record);
    assert_eq!(back.relay(), k.public().to_peer_id());
    assert_eq!(back, signed);
    assert!(back.is_live(NOW + 599_999));
    assert!(!back.is_live(NOW + 600_000));
}

/// A fixed key and record give fixed bytes (ed25519 signatures are deterministic): a change to
/// the encoding or the signing input shows here, and another implementation can check itself
/// against this vector.
#[test]
fn the_encoding_is_pinned_by_a_vector() {
    let k = key(1);
    let signed = record_for(&k).sign(&k, NOW).unwrap();
    use sha2::Digest;
    let digest = sha2::Sha256::digest(signed.bytes());
    assert_eq!(signed.bytes().len(), VECTOR_LEN, "record length changed");
    assert_eq!(hex(&digest), VECTOR_SHA256, "record bytes changed");
}

const VECTOR_LEN: usize = 263;
const VECTOR_SHA256: &str = "c19e056aaa1f5ecf8de6c2aa97c807daf5ab565b9e7516968f0f30731c8659b4";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn every_check_refuses_what_it_should() {
    let k = key(2);
    let good = record_for(&k);
    let verify = |bytes: &[u8]| SignedRelayRecord::verify(bytes, NOW);

    // Size, then shape.
    assert_eq!(
        verify(&vec![0u8; MAX_RELAY_RECORD_BYTES + 1]),
        Err(RecordError::TooLarge(MAX_RELAY_RECORD_BYTES + 1))
    );
    assert_eq!(verify(b"\xff\xff\xff garbage"), Err(RecordError::Malformed));

    // Another key's signature.
    let mut forged = wire::Signed::decode(good.sign(&k, NOW).unwrap().bytes()).unwrap();
    forged.signature = key(3).sign(&signing_input(&forged.body)).unwrap();
    assert_eq!(
        verify(&forged.encode_to_vec()),
        Err(RecordError::BadSignature)
    );
    // A changed body under the old signature.
    let mut tampered = wire::Signed::decode(good.sign(&k, NOW).unwrap().bytes()).unwrap();
    let mut body = wire::Body::decode(tampered.body.as_slice()).unwrap();
    body.seq += 1;
    tampered.body = body.encode_to_vec();
    assert_eq!(
        verify(&tampered.encode_to_vec()),
        Err(RecordError::BadSignature)
    );
    // Re-encoded (a field repeated): refused, not passed on as different bytes.
    let mut bytes = good.sign(&k, NOW).unwrap().bytes().to_vec();
    bytes.extend_from_slice(&[0x1a, 0x00]);
    assert_eq!(verify(&bytes), Err(RecordError::NonCanonical));
    // A key that does not decode.
    let bad_key = wire::Signed {
        public_key: vec![1, 2, 3],
        body: vec![],
        signature: vec![],
    };
    assert_eq!(verify(&bad_key.encode_to_vec()), Err(RecordError::BadKey));

    // Time: expired, from the future, too long a life, expiring before it is issued.
    let at = |issued: u64, expires: u64| {
        let mut body = good.to_wire();
        body.issued_at_ms = issued;
        body.expires_at_ms = expires;
        verify(&forge(&k, body))
    };
    assert_eq!(at(NOW - 600_000, NOW), Err(RecordError::Expired));
    assert_eq!(
        at(NOW + MAX_RECORD_SKEW_MS + 1, NOW + 600_000),
        Err(RecordError::FromTheFuture)
    );
    assert!(at(NOW + MAX_RECORD_SKEW_MS, NOW + 600_000).is_ok());
    assert_eq!(
        at(NOW, NOW + MAX_RECORD_LIFETIME_MS + 1),
        Err(RecordError::Lifetime)
    );
    assert_eq!(at(NOW, NOW), Err(RecordError::Lifetime));

    // Fields.
    let with = |change: &dyn Fn(&mut wire::Body)| {
        let mut body = good.to_wire();
        change(&mut body);
        verify(&forge(&k, body))
    };
    assert_eq!(with(&|b| b.version = 2), Err(RecordError::Version(2)));
    assert_eq!(
        with(&|b| b.name = "n".repeat(MAX_RECORD_NAME_BYTES + 1)),
        Err(RecordError::Field("name"))
    );
    assert_eq!(
        with(&|b| b.region = "a\u{7}b".into()),
        Err(RecordError::Field("region"))
    );
    assert_eq!(with(&|b| b.addrs.clear()), Err(RecordError::Field("addrs")));
    assert_eq!(
        with(&|b| b.addrs = vec![b.addrs[0].clone(); MAX_RECORD_ADDRS + 1]),
        Err(RecordError::Field("addrs"))
    );
    assert_eq!(
        with(&|b| b.load_permille = 1001),
        Err(RecordError::Field("load_permille"))
    );
    assert_eq!(
        with(&|b| b.limits = Some(wire::Limits::default())),
        Err(RecordError::Field("limits"))
    );
    assert_eq!(
        with(&|b| b.addrs[1] = vec![0xff, 0xff]),
        Err(RecordError::BadAddr(1))
    );
    let other = key(4).public().to_peer_id();
    assert_eq!(
        with(
            &|b| b.addrs[0] = format!("/ip4/192.0.2.1/tcp/1/p2p/{other}")
                .parse::<Multiaddr>()
                .unwrap()
                .to_vec()
        ),
        Err(RecordError::ForeignAddr(0))
    );
    assert_eq!(
        with(&|b| b.addrs[0] = "/ip4/192.0.2.1/tcp/1"
            .parse::<Multiaddr>()
            .unwrap()
            .to_vec()),
        Err(RecordError::ForeignAddr(0))
    );
    // An auth method this build does not know is left out.
    let unknown = verify(&forge(&k, {
        let mut b = good.to_wire();
        b.auth_methods.push(99);
        b
    }))
    .unwrap();
    assert_eq!(unknown.record().auth_methods, good.auth_methods);
}

#[test]
fn a_relay_signs_nothing_others_would_refuse() {
    let k = key(5);
    let mut record = record_for(&k);
    record.name = "x".repeat(MAX_RECORD_NAME_BYTES + 1);
    assert_eq!(record.sign(&k, NOW), Err(RecordError::Field("name")));
}

#[test]
fn the_fullest_answer_fits_its_cap() {
    let k = key(6);
    let mut record = record_for(&k);
    let me = k.public().to_peer_id();
    record.name = "n".repeat(MAX_RECORD_NAME_BYTES);
    record.region = "r".repeat(MAX_RECORD_REGION_BYTES);
    record.addrs = (0..MAX_RECORD_ADDRS)
        .map(|i| {
            format!("/ip6/2001:db8::{i}/udp/4001/webrtc-direct/certhash/uEiDDq4_xNyDorZBH3TlGazyJdOWSwvo4PUo5YHFMrvDE8g/p2p/{me}")
                .parse()
                .unwrap()
        })
        .collect();
    record.auth_methods = Method::ALL.to_vec();
    let signed = record.sign(&k, NOW).unwrap();
    assert!(signed.bytes().len() <= MAX_RELAY_RECORD_BYTES);
    let answer = RelayRecordsResponse {
        records: vec![signed.bytes().to_vec(); MAX_RECORDS_PER_RESPONSE],
    };
    let bytes = answer.encode();
    assert!(bytes.len() as u64 <= MAX_RECORDS_RESPONSE_BYTES);
    assert_eq!(RelayRecordsResponse::decode(&bytes).unwrap(), answer);
    let too_many = RelayRecordsResponse {
        records: vec![vec![1]; MAX_RECORDS_PER_RESPONSE + 1],
    };
    assert_eq!(
        RelayRecordsResponse::decode(&too_many.encode()),
        Err(RecordsMessageError::TooMany(MAX_RECORDS_PER_RESPONSE + 1))
    );
    assert_eq!(
        RelayRecordsRequest::decode(&RelayRecordsRequest {}.encode()),
        Ok(RelayRecordsRequest {})
    );
}
