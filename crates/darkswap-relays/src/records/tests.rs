use super::*;
use darkswap_proto::relay_record::RelayRecord;
use libp2p_identity::Keypair;

const NOW: u64 = 1_800_000_000_000;

fn record(key: &Keypair, seq: u64, issued: u64, life: u64) -> Vec<u8> {
    let me = key.public().to_peer_id();
    RelayRecord {
        seq,
        issued_at_ms: issued,
        expires_at_ms: issued + life,
        name: format!("relay {seq}"),
        region: String::new(),
        addrs: vec![format!("/ip4/127.0.0.1/tcp/4001/p2p/{me}").parse().unwrap()],
        auth_methods: vec![],
        limits: None,
        load_permille: 0,
    }
    .sign(key, issued)
    .unwrap()
    .bytes()
    .to_vec()
}

#[test]
fn keeps_the_newest_record_of_each_relay() {
    let k = Keypair::generate_ed25519();
    let mut set = RecordSet::new(8, None);
    let first = record(&k, 5, NOW, 60_000);
    assert_eq!(set.offer(&first, NOW), Ok(Offered::New));
    assert_eq!(set.offer(&first, NOW), Ok(Offered::Unchanged));
    let newer = record(&k, 6, NOW + 1, 60_000);
    assert_eq!(set.offer(&newer, NOW + 1), Ok(Offered::Updated));
    // The old one again: a replay.
    assert_eq!(
        set.offer(&first, NOW + 2),
        Err(SetRefusal::Replayed { seq: 5, held: 6 })
    );
    // The same number over another body: an equivocation, refused as a replay.
    let twin = record(&k, 6, NOW + 2, 60_000);
    assert_eq!(
        set.offer(&twin, NOW + 2),
        Err(SetRefusal::Replayed { seq: 6, held: 6 })
    );
    assert_eq!(set.len(), 1);
    assert_eq!(set.get(&k.public().to_peer_id()).unwrap().record().seq, 6);
}

#[test]
fn a_bad_record_is_refused_by_its_reason() {
    let mut set = RecordSet::new(8, None);
    let refusal = set.offer(b"garbage", NOW).unwrap_err();
    assert_eq!(refusal.label(), "malformed");
    let k = Keypair::generate_ed25519();
    let old = record(&k, 1, NOW - 120_000, 60_000);
    assert_eq!(set.offer(&old, NOW).unwrap_err().label(), "expired");
    assert!(set.is_empty());
    assert!(SetRefusal::labels().any(|l| l == "replayed"));
}

#[test]
fn only_the_owner_says_what_it_is() {
    let me = Keypair::generate_ed25519();
    let mut set = RecordSet::new(8, Some(me.public().to_peer_id()));
    let mine = record(&me, 2, NOW, 60_000);
    // Before the owner has put its record, a copy from elsewhere is refused.
    assert_eq!(set.offer(&mine, NOW), Err(SetRefusal::Own));
    set.put_own(SignedRelayRecord::verify(&mine, NOW).unwrap());
    assert_eq!(set.offer(&mine, NOW), Ok(Offered::Unchanged));
    let older = record(&me, 1, NOW, 60_000);
    assert_eq!(set.offer(&older, NOW), Err(SetRefusal::Own));
    // Another relay's record cannot be put as our own.
    let other = Keypair::generate_ed25519();
    set.put_own(SignedRelayRecord::verify(&record(&other, 1, NOW, 60_000), NOW).unwrap());
    assert_eq!(set.len(), 1);
}

#[test]
fn a_full_set_drops_what_expires_first_and_keeps_its_own() {
    let me = Keypair::generate_ed25519();
    let mut set = RecordSet::new(3, Some(me.public().to_peer_id()));
    // Our own record expires first of all, and is still kept.
    set.put_own(SignedRelayRecord::verify(&record(&me, 1, NOW, 10_000), NOW).unwrap());
    let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    set.offer(&record(&a, 1, NOW, 20_000), NOW).unwrap();
    set.offer(&record(&b, 1, NOW, 40_000), NOW).unwrap();
    let c = Keypair::generate_ed25519();
    // Expires before every other: refused.
    assert_eq!(
        set.offer(&record(&c, 1, NOW, 15_000), NOW),
        Err(SetRefusal::Full)
    );
    // Outlives a: a makes room.
    assert_eq!(
        set.offer(&record(&c, 1, NOW, 30_000), NOW),
        Ok(Offered::New)
    );
    assert!(set.get(&a.public().to_peer_id()).is_none());
    assert!(set.get(&me.public().to_peer_id()).is_some());
    assert_eq!(set.len(), 3);
    // Served: our own first, then the most recently issued.
    let newest = set.newest(2, NOW);
    assert_eq!(newest[0].relay(), me.public().to_peer_id());
    assert_eq!(newest.len(), 2);
    // Expired records are dropped.
    assert_eq!(set.prune(NOW + 35_000), 2);
    assert_eq!(set.len(), 1);
}
