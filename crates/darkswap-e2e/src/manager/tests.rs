use super::*;
use crate::aead::{open as aead_open, Key, NONCE_BYTES};
use crate::handshake::{derive, transcript};
use crate::session::HEADER_BYTES;
use sha2::{Digest, Sha512};
use x25519_dalek::{PublicKey, StaticSecret};

const T0: u64 = 1_700_000_000_000;

struct Peer {
    key: Keypair,
    id: PeerId,
    m: SessionManager,
}

fn peer_with(limits: ManagerLimits) -> Peer {
    let key = Keypair::generate_ed25519();
    Peer {
        id: key.public().to_peer_id(),
        m: SessionManager::new(key.clone(), limits),
        key,
    }
}

fn peer() -> Peer {
    peer_with(ManagerLimits::default())
}

/// `a` opens a session with `b`; returns the two handshake messages as a relay records them.
fn connect(a: &mut Peer, b: &mut Peer, now: u64) -> (Vec<u8>, Vec<u8>) {
    let init = a.m.start(b.id, now).unwrap();
    let (resp, _) = b.m.respond(a.id, &init, now).unwrap();
    a.m.finish(b.id, &resp, now).unwrap();
    (init, resp)
}

/// One request from `a` (initiator) and its answer from `b`; returns both frames.
fn exchange(a: &mut Peer, b: &mut Peer, text: &[u8], now: u64) -> (Vec<u8>, Vec<u8>) {
    let request = a.m.seal(b.id, Role::Initiator, b"req", text, now).unwrap();
    assert_eq!(
        b.m.open(a.id, Role::Responder, b"req", &request, now)
            .unwrap(),
        Opened::Data(text.to_vec())
    );
    let answer =
        b.m.seal(a.id, Role::Responder, b"resp", b"ok", now)
            .unwrap();
    assert_eq!(
        a.m.open(b.id, Role::Initiator, b"resp", &answer, now)
            .unwrap(),
        Opened::Data(b"ok".to_vec())
    );
    (request, answer)
}

/// The in-band rekey; returns its two sealed frames.
fn rekey(a: &mut Peer, b: &mut Peer, now: u64) -> (Vec<u8>, Vec<u8>) {
    let request = a.m.start_rekey(b.id, b"req", now).unwrap();
    assert!(a.m.rekeying(&b.id));
    let Opened::RekeyRequested(init) =
        b.m.open(a.id, Role::Responder, b"req", &request, now)
            .unwrap()
    else {
        panic!("not a rekey request")
    };
    let (answer, epoch) = b.m.answer_rekey(a.id, &init, b"resp", now).unwrap();
    assert_eq!(
        a.m.open(b.id, Role::Initiator, b"resp", &answer, now)
            .unwrap(),
        Opened::Rekeyed { epoch }
    );
    assert!(!a.m.rekeying(&b.id));
    (request, answer)
}

#[test]
fn messages_flow_and_each_role_has_its_own_session() {
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    exchange(&mut a, &mut b, b"take 100", T0);
    // b also takes from a at the same time: a second session, roles reversed, no collision.
    connect(&mut b, &mut a, T0);
    exchange(&mut b, &mut a, b"take 5", T0);
    exchange(&mut a, &mut b, b"confirm", T0);
    assert_eq!((a.m.len(), b.m.len()), (2, 2));
    // A frame of one session does not open in the other.
    let frame = a.m.seal(b.id, Role::Initiator, b"req", b"x", T0).unwrap();
    assert!(b.m.open(a.id, Role::Initiator, b"req", &frame, T0).is_err());
    assert!(b.m.open(a.id, Role::Responder, b"req", &frame, T0).is_ok());
}

#[test]
fn sessions_are_bounded_and_the_least_recently_used_goes_first() {
    let limits = ManagerLimits {
        max_sessions: 3,
        ..ManagerLimits::default()
    };
    let mut maker = peer_with(limits);
    let mut takers: Vec<Peer> = (0..4).map(|_| peer()).collect();
    for (i, t) in takers.iter_mut().take(3).enumerate() {
        connect(t, &mut maker, T0 + i as u64);
    }
    // Taker 0 speaks again: taker 1 is now the least recently used.
    exchange(&mut takers[0], &mut maker, b"hi", T0 + 10);
    let (first, rest) = takers.split_at_mut(3);
    connect(&mut rest[0], &mut maker, T0 + 11);
    assert_eq!(maker.m.len(), 3);
    assert!(maker.m.has_session(&first[0].id, Role::Responder));
    assert!(!maker.m.has_session(&first[1].id, Role::Responder));
    assert!(maker.m.has_session(&first[2].id, Role::Responder));
    // The evicted taker's next frame is refused cleanly; a new handshake brings it back.
    let frame = first[1]
        .m
        .seal(maker.id, Role::Initiator, b"req", b"x", T0 + 12)
        .unwrap();
    assert_eq!(
        maker
            .m
            .open(first[1].id, Role::Responder, b"req", &frame, T0 + 12),
        Err(E2eError::NoSession)
    );
    connect(&mut first[1], &mut maker, T0 + 13);
    exchange(&mut first[1], &mut maker, b"again", T0 + 13);
    assert_eq!(maker.m.len(), 3);
}

/// A maker with room for 8 sessions, one of them a trader's; then 100 fresh identities
/// handshake, each after the trader's last use. Whether the trader's session is still there.
fn flood_after_trader(keep_trader: bool) -> bool {
    let limits = ManagerLimits {
        max_sessions: 8,
        ..ManagerLimits::default()
    };
    let mut maker = peer_with(limits);
    let mut trader = peer();
    connect(&mut trader, &mut maker, T0);
    let keep: HashSet<PeerId> = if keep_trader {
        [trader.id].into()
    } else {
        HashSet::new()
    };
    for i in 0..100 {
        let mut junk = peer();
        let init = junk.m.start(maker.id, T0 + 1 + i).unwrap();
        maker
            .m
            .respond_keeping(junk.id, &init, T0 + 1 + i, &keep)
            .unwrap();
    }
    assert_eq!(maker.m.len(), 8);
    let kept = maker.m.has_session(&trader.id, Role::Responder);
    if kept {
        exchange(&mut trader, &mut maker, b"still here", T0 + 200);
    }
    kept
}

#[test]
fn a_flood_of_handshakes_never_evicts_a_live_trades_session() {
    assert!(flood_after_trader(true));
    // Not named as trading, it is the least recently used and goes first.
    assert!(!flood_after_trader(false));
}

#[test]
fn when_every_session_carries_a_live_trade_a_new_one_is_refused() {
    let limits = ManagerLimits {
        max_sessions: 2,
        ..ManagerLimits::default()
    };
    let mut maker = peer_with(limits);
    let mut traders: Vec<Peer> = (0..2).map(|_| peer()).collect();
    for t in &mut traders {
        connect(t, &mut maker, T0);
    }
    let keep: HashSet<PeerId> = traders.iter().map(|t| t.id).collect();
    let mut late = peer();
    let init = late.m.start(maker.id, T0 + 1).unwrap();
    assert_eq!(
        maker.m.respond_keeping(late.id, &init, T0 + 1, &keep),
        Err(E2eError::SessionsFull)
    );
    assert_eq!(maker.m.len(), 2);
    for t in &mut traders {
        exchange(t, &mut maker, b"ok", T0 + 2);
    }
    // Our own handshake is refused the same way, not at the cost of a live trade.
    let mut other = peer();
    let init = maker.m.start(other.id, T0 + 3).unwrap();
    let (resp, _) = other.m.respond(maker.id, &init, T0 + 3).unwrap();
    assert_eq!(
        maker.m.finish_keeping(other.id, &resp, T0 + 3, &keep),
        Err(E2eError::SessionsFull)
    );
}

#[test]
fn pending_handshakes_are_bounded_and_expire() {
    let limits = ManagerLimits {
        max_pending: 2,
        ..ManagerLimits::default()
    };
    let mut a = peer_with(limits);
    let others: Vec<Peer> = (0..3).map(|_| peer()).collect();
    a.m.start(others[0].id, T0).unwrap();
    a.m.start(others[1].id, T0).unwrap();
    assert_eq!(
        a.m.start(others[2].id, T0),
        Err(E2eError::TooManyHandshakes)
    );
    // Restarting one already waiting is allowed (it replaces it).
    a.m.start(others[1].id, T0 + 1).unwrap();
    assert_eq!(a.m.pending_len(), 2);
    // Unanswered handshakes expire, making room.
    let later = T0 + HANDSHAKE_TTL_MS + 2;
    a.m.start(others[2].id, later).unwrap();
    assert_eq!(a.m.pending_len(), 1);
    // An answer that comes after the handshake expired is refused.
    let mut b = peer();
    let init = a.m.start(b.id, T0).unwrap();
    let (resp, _) = b.m.respond(a.id, &init, T0).unwrap();
    assert_eq!(
        a.m.finish(b.id, &resp, T0 + HANDSHAKE_TTL_MS + 1),
        Err(E2eError::NoHandshake)
    );
    assert!(!a.m.has_session(&b.id, Role::Initiator));
    // And an answer nobody asked for too.
    assert_eq!(a.m.finish(b.id, &resp, T0), Err(E2eError::NoHandshake));
}

#[test]
fn idle_sessions_are_pruned_by_the_injected_clock() {
    // Keys allowed to live long, so only idleness counts here.
    let limits = ManagerLimits {
        rekey: RekeyPolicy {
            after_messages: 1_000,
            after_ms: 10 * SESSION_IDLE_TTL_MS,
        },
        ..ManagerLimits::default()
    };
    let (mut a, mut b) = (peer_with(limits), peer_with(limits));
    connect(&mut a, &mut b, T0);
    let ttl = a.m.limits().idle_ttl_ms;
    assert_eq!(a.m.prune(T0 + ttl), 0, "not idle long enough");
    exchange(&mut a, &mut b, b"keep alive", T0 + ttl);
    assert_eq!(b.m.prune(T0 + 2 * ttl), 0, "the exchange refreshed it");
    assert_eq!(b.m.prune(T0 + 2 * ttl + 1), 1);
    assert!(b.m.is_empty());
    // Without pruning, an idle session is refused at use too.
    assert_eq!(
        a.m.seal(b.id, Role::Initiator, b"req", b"x", T0 + 2 * ttl + 1),
        Err(E2eError::NoSession)
    );
    assert!(a.m.is_empty());
}

#[test]
fn a_key_is_never_kept_past_twice_the_rekey_period() {
    let limits = ManagerLimits::default();
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    // Busy but never rekeyed (a misbehaving initiator): the responder drops the key anyway.
    let step = limits.idle_ttl_ms / 2;
    let mut now = T0;
    while now - T0 <= limits.max_key_age_ms() - step {
        now += step;
        let frame = a.m.seal(b.id, Role::Initiator, b"req", b"x", now).unwrap();
        assert!(b.m.open(a.id, Role::Responder, b"req", &frame, now).is_ok());
    }
    now = T0 + limits.max_key_age_ms() + 1;
    let frame = a.m.seal(b.id, Role::Initiator, b"req", b"x", now);
    assert_eq!(frame, Err(E2eError::NoSession));
    assert_eq!(b.m.prune(now), 1);
}

#[test]
fn rekey_after_t_with_an_injected_clock() {
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    let t = a.m.limits().rekey.after_ms;
    exchange(&mut a, &mut b, b"before", T0 + t - 1);
    assert!(!a.m.rekey_due(&b.id, T0 + t - 1));
    assert!(a.m.rekey_due(&b.id, T0 + t));
    // A frame sealed before the rekey and delivered late.
    let late =
        a.m.seal(b.id, Role::Initiator, b"req", b"late", T0 + t)
            .unwrap();
    rekey(&mut a, &mut b, T0 + t);
    assert_eq!(a.m.describe(&b.id, Role::Initiator).map(|d| d.1), Some(1));
    assert_eq!(b.m.describe(&a.id, Role::Responder).map(|d| d.1), Some(1));
    assert!(!a.m.rekey_due(&b.id, T0 + t + 1), "fresh keys, fresh clock");
    exchange(&mut a, &mut b, b"after", T0 + t + 1);
    // The old epoch's frame is refused cleanly and changes nothing.
    assert_eq!(
        b.m.open(a.id, Role::Responder, b"req", &late, T0 + t + 2),
        Err(E2eError::Session(SessionError::WrongEpoch))
    );
    exchange(&mut a, &mut b, b"still fine", T0 + t + 3);
    assert!(a.m.rekey_due(&b.id, T0 + 2 * t));
}

#[test]
fn rekey_after_n_messages() {
    let limits = ManagerLimits {
        rekey: RekeyPolicy {
            after_messages: 5,
            after_ms: u64::MAX / 4,
        },
        ..ManagerLimits::default()
    };
    let (mut a, mut b) = (peer_with(limits), peer_with(limits));
    connect(&mut a, &mut b, T0);
    for i in 0..5 {
        assert!(!a.m.rekey_due(&b.id, T0), "after {i} messages");
        exchange(&mut a, &mut b, b"m", T0);
    }
    assert!(a.m.rekey_due(&b.id, T0));
    rekey(&mut a, &mut b, T0);
    assert!(!a.m.rekey_due(&b.id, T0));
    exchange(&mut a, &mut b, b"m", T0);
    // While a rekey waits for its answer, nothing else is sealed (the responder may already
    // be on the new keys).
    for _ in 0..4 {
        exchange(&mut a, &mut b, b"m", T0);
    }
    a.m.start_rekey(b.id, b"req", T0).unwrap();
    assert_eq!(
        a.m.seal(b.id, Role::Initiator, b"req", b"m", T0),
        Err(E2eError::Rekeying)
    );
    assert_eq!(a.m.start_rekey(b.id, b"req", T0), Err(E2eError::Rekeying));
    // An unanswered rekey ends the session after the handshake timeout.
    assert_eq!(a.m.prune(T0 + HANDSHAKE_TTL_MS + 1), 1);
}

#[test]
fn a_tampered_rekey_changes_nothing_or_ends_the_session() {
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    // Tampered rekey request: refused, b stays on epoch 0 and still talks.
    let mut request = a.m.start_rekey(b.id, b"req", T0).unwrap();
    request[HEADER_BYTES + 3] ^= 1;
    assert_eq!(
        b.m.open(a.id, Role::Responder, b"req", &request, T0),
        Err(E2eError::Session(SessionError::Forged))
    );
    assert_eq!(b.m.describe(&a.id, Role::Responder).map(|d| d.1), Some(0));
    // A rekey init signed for someone else, sealed correctly, is refused by the handshake.
    let carol = Keypair::generate_ed25519();
    let (_, foreign) = Initiator::start(&a.key, carol.public().to_peer_id()).unwrap();
    assert!(matches!(
        b.m.answer_rekey(a.id, &foreign, b"resp", T0),
        Err(E2eError::Handshake(HandshakeError::BadSignature))
    ));
    assert_eq!(b.m.describe(&a.id, Role::Responder).map(|d| d.1), Some(0));
    // A rekey answer whose handshake does not verify ends a's session (fail closed).
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    let request = a.m.start_rekey(b.id, b"req", T0).unwrap();
    let Ok(Opened::RekeyRequested(init)) = b.m.open(a.id, Role::Responder, b"req", &request, T0)
    else {
        panic!("not a rekey request")
    };
    let (_, mut resp) = Responder::respond(&b.key, a.id, &init, T0).unwrap();
    resp[5] ^= 1;
    // Sealed by b's genuine session, so only the handshake inside is wrong.
    let answer = {
        let entry = b.m.sessions.get_mut(&(a.id, Role::Responder)).unwrap();
        entry
            .session
            .seal(b"resp", &inner(KIND_REKEY_RESP, &resp))
            .unwrap()
    };
    assert!(matches!(
        a.m.open(b.id, Role::Initiator, b"resp", &answer, T0),
        Err(E2eError::Handshake(_))
    ));
    assert!(!a.m.has_session(&b.id, Role::Initiator));
    // A responder never accepts a rekey answer, nor an initiator a rekey request.
    let (mut a, mut b) = (peer(), peer());
    connect(&mut a, &mut b, T0);
    let odd = {
        let entry = a.m.sessions.get_mut(&(b.id, Role::Initiator)).unwrap();
        entry
            .session
            .seal(b"req", &inner(KIND_REKEY_RESP, b"x"))
            .unwrap()
    };
    assert_eq!(
        b.m.open(a.id, Role::Responder, b"req", &odd, T0),
        Err(E2eError::UnexpectedKind)
    );
}

/// Everything an attacker can derive from the two identity keys and a recorded handshake: the
/// X25519 scalars of the ed25519 keys (the usual ed25519 → X25519 conversion), every DH between
/// them and the recorded ephemeral keys, and the keys HKDF makes of each with the transcript.
fn keys_from_identities(
    identities: [&Keypair; 2],
    peers: [PeerId; 2],
    init: &[u8],
    resp: &[u8],
) -> Vec<Key> {
    let scalar = |k: &Keypair| {
        let ed = k.clone().try_into_ed25519().unwrap();
        let h = Sha512::digest(ed.secret().as_ref());
        StaticSecret::from(<[u8; 32]>::try_from(&h[..32]).unwrap())
    };
    let scalars = [scalar(identities[0]), scalar(identities[1])];
    let n = init[1] as usize;
    let e_i: [u8; 32] = init[2 + n..2 + n + 32].try_into().unwrap();
    let e_r: [u8; 32] = resp[2..34].try_into().unwrap();
    let mut publics = vec![e_i, e_r];
    publics.extend(scalars.iter().map(|s| PublicKey::from(s).to_bytes()));
    let t = transcript(init, resp[1], &e_r, &peers[0], &peers[1]);
    let mut keys = Vec::new();
    for s in &scalars {
        for p in &publics {
            let shared = s.diffie_hellman(&PublicKey::from(*p)).to_bytes();
            let (i2r, r2i) = derive(&shared, &t);
            keys.extend([i2r, r2i, Key::from_bytes(shared)]);
        }
    }
    keys
}

/// Tries `keys` on a recorded frame with both ciphers, as the epoch it claims and as any other
/// epoch up to 4.
fn any_key_opens(keys: &[Key], frame: &[u8], aad: &[u8]) -> bool {
    let counter: [u8; 8] = frame[4..12].try_into().unwrap();
    keys.iter().any(|key| {
        (0u32..4).any(|epoch| {
            let mut header = frame[..HEADER_BYTES].to_vec();
            header[..4].copy_from_slice(&epoch.to_be_bytes());
            let mut nonce = [0u8; NONCE_BYTES];
            nonce[..4].copy_from_slice(&epoch.to_be_bytes());
            nonce[4..].copy_from_slice(&counter);
            let mut full_aad = header;
            full_aad.extend_from_slice(aad);
            [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305]
                .into_iter()
                .any(|c| aead_open(c, key, &nonce, &full_aad, &frame[HEADER_BYTES..]).is_some())
        })
    })
}

#[test]
fn after_rekey_a_recorded_transcript_cannot_be_decrypted() {
    let (mut a, mut b) = (peer(), peer());
    let (init, resp) = connect(&mut a, &mut b, T0);
    // The relay records everything of epoch 0, the rekey included.
    let mut epoch0 = Vec::new();
    for text in [&b"take 100 @ 25000"[..], b"confirm"] {
        let (request, answer) = exchange(&mut a, &mut b, text, T0);
        epoch0.push((request, &b"req"[..]));
        epoch0.push((answer, &b"resp"[..]));
    }
    let old_keys = {
        let (send, recv) = a.m.sessions[&(b.id, Role::Initiator)].session.keys();
        vec![send.clone(), recv.clone()]
    };
    // The harness can tell a readable frame: with the epoch-0 keys every recorded frame opens.
    assert!(epoch0
        .iter()
        .all(|(f, aad)| any_key_opens(&old_keys, f, aad)));
    let (rekey_request, rekey_answer) = rekey(&mut a, &mut b, T0 + 1);
    let mut epoch1 = Vec::new();
    let (request, answer) = exchange(&mut a, &mut b, b"take 7 @ 26000", T0 + 2);
    epoch1.push((request, &b"req"[..]));
    epoch1.push((answer, &b"resp"[..]));

    // Later the attacker steals both identity keys and the current (epoch 1) session keys.
    let mut stolen = keys_from_identities([&a.key, &b.key], [a.id, b.id], &init, &resp);
    let (send, recv) = a.m.sessions[&(b.id, Role::Initiator)].session.keys();
    stolen.extend([send.clone(), recv.clone()]);
    for (frame, aad) in epoch0.iter().chain(
        [
            (rekey_request.clone(), &b"req"[..]),
            (rekey_answer.clone(), &b"resp"[..]),
        ]
        .iter(),
    ) {
        assert!(!any_key_opens(&stolen, frame, aad), "epoch-0 frame opened");
    }
    // The other way: whoever held the epoch-0 keys reads the rekey messages (ephemeral public
    // keys and signatures only) and still cannot read epoch 1, even with the identity keys.
    let cipher = a.m.describe(&b.id, Role::Initiator).unwrap().0;
    let mut then_known = old_keys.clone();
    let mut b_view = Session::new(cipher, old_keys[1].clone(), old_keys[0].clone(), a.id, T0);
    let opened_init = b_view.open(b"req", &rekey_request).unwrap();
    let opened_resp = {
        let mut a_view = Session::new(cipher, old_keys[0].clone(), old_keys[1].clone(), b.id, T0);
        a_view.open(b"resp", &rekey_answer).unwrap()
    };
    then_known.extend(keys_from_identities(
        [&a.key, &b.key],
        [a.id, b.id],
        &opened_init[1..],
        &opened_resp[1..],
    ));
    for (frame, aad) in &epoch1 {
        assert!(
            !any_key_opens(&then_known, frame, aad),
            "epoch-1 frame opened"
        );
    }
}

#[test]
fn keys_wipe_themselves_when_dropped() {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<Key>();
    // x25519-dalek wipes its secrets in `Drop` (`#[zeroize(drop)]`, our "zeroize" feature),
    // which only shows as the `Zeroize` impl it is built on.
    fn zeroizable<T: zeroize::Zeroize>() {}
    zeroizable::<x25519_dalek::EphemeralSecret>();
}
