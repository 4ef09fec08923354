//! The network of relays, with real relay binaries: each relay signs its own record, learns its
//! peer relays' records and the records they know, serves them in relay-info, forgets them when
//! they expire; a hostile peer relay's forged, expired, replayed, oversized and garbage records
//! are refused and counted by reason, while the good one among them is kept. Relays prove
//! themselves to each other with the relay method of the auth protocol, and the federation
//! policy decides which become peer relays.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use darkswap_auth::{Level, Method, RefuseReason};
use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::request_response::{self, ProtocolSupport};
use darkswap_net::libp2p::{
    identity::Keypair, noise, swarm::SwarmEvent, tcp, yamux, Multiaddr, PeerId, StreamProtocol,
};
use darkswap_proto::auth::AuthResponse;
use darkswap_proto::codecs::RelayRecordsCodec;
use darkswap_proto::relay_record::{
    RecordError, RelayRecord, RelayRecordsResponse, SignedRelayRecord, MAX_RECORDS_PER_RESPONSE,
    MAX_RELAY_RECORD_BYTES, RELAY_RECORDS_PROTOCOL,
};
use darkswap_proto::{unix_time_ms, RelayInfo};
use darkswap_tests::probe::Probe;
use darkswap_tests::{free_tcp_port, sell, Peer, Ports, Relay};
use futures::StreamExt;

const T: Duration = Duration::from_secs(30);

/// The relay's identity, made before it starts so that its peers can list it.
fn identity(dir: &Path) -> anyhow::Result<PeerId> {
    let key = darkswap_auth::keyfile::load_or_create_keypair(&dir.join("identity.key"))?;
    Ok(key.public().to_peer_id())
}

fn tcp_addr(port: u16, peer: PeerId) -> String {
    format!("/ip4/127.0.0.1/tcp/{port}/p2p/{peer}")
}

/// The records a relay serves in relay-info, each checked as a client checks it. relay-info is
/// rewritten each announce period, so a record may expire before the next: a client drops it,
/// and so does this; any other failure is an error.
fn served(relay: &Relay) -> anyhow::Result<Vec<SignedRelayRecord>> {
    let (_, body) = relay.get("/api/relay-info")?;
    let info = RelayInfo::parse(body.as_bytes())?;
    let mut records = Vec::new();
    for h in &info.records {
        match SignedRelayRecord::verify(&hex::decode(h)?, unix_time_ms()) {
            Ok(r) => records.push(r),
            Err(RecordError::Expired) => {}
            Err(e) => anyhow::bail!("relay-info serves a bad record: {e}"),
        }
    }
    Ok(records)
}

async fn served_eventually(
    relay: &Relay,
    within: Duration,
    check: impl Fn(&[SignedRelayRecord]) -> bool,
) -> anyhow::Result<Vec<SignedRelayRecord>> {
    let deadline = std::time::Instant::now() + within;
    loop {
        let records = served(relay)?;
        if check(&records) {
            return Ok(records);
        }
        if std::time::Instant::now() > deadline {
            let who: Vec<String> = records.iter().map(|r| r.relay().to_string()).collect();
            anyhow::bail!("relay-info serves {who:?} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn relays(records: &[SignedRelayRecord]) -> BTreeSet<PeerId> {
    records.iter().map(|r| r.relay()).collect()
}

/// A—B—C in a line: A learns C's record through B, with C's name and region and addresses that
/// name C; when C stops, its record is forgotten everywhere once it expires.
#[tokio::test]
async fn records_cross_the_mesh_and_expire() -> anyhow::Result<()> {
    let line = Line::start("4")?;
    let [a, b, c] = &line.relays;
    let all = line.all();
    let addr = |i: usize| line.addr(i);

    let records = served_eventually(a, T, |r| relays(r) == all).await?;
    // Its own record first.
    assert_eq!(records[0].relay(), a.peer_id);
    let of_c = records
        .iter()
        .find(|r| r.relay() == c.peer_id)
        .expect("C's record");
    assert_eq!(of_c.record().name, "relay C");
    assert_eq!(of_c.record().region, "loopback");
    assert!(of_c.record().addrs.iter().any(|m| m.to_string() == addr(2)));
    assert!(of_c.record().limits.is_some());
    assert!(a.metric("darkswap_relay_relay_records_known")? >= 3.0);
    assert!(a.metric("darkswap_relay_relay_records_accepted_total{outcome=\"new\"}")? >= 2.0);
    // Re-signed each period: A takes newer records of B.
    a.metric_eventually(
        "darkswap_relay_relay_records_accepted_total{outcome=\"updated\"}",
        T,
        |v| v >= 1.0,
    )
    .await?;
    assert_eq!(
        a.metric("darkswap_relay_relay_records_refused_total{reason=\"replayed\"}")?,
        0.0
    );

    let left: BTreeSet<PeerId> = [a.peer_id, b.peer_id].into();
    let [a, b, c] = line.relays;
    c.stop()?;
    served_eventually(&a, T, |r| relays(r) == left).await?;
    served_eventually(&b, T, |r| relays(r) == left).await?;
    Ok(())
}

/// Three relays in a line, A—B—C (each lists its neighbours in `peers`), named "relay A" to
/// "relay C" in region "loopback", announcing every second with records that live `ttl_secs`.
struct Line {
    _dirs: [tempfile::TempDir; 3],
    ids: Vec<PeerId>,
    ports: Vec<Ports>,
    relays: [Relay; 3],
}

impl Line {
    fn start(ttl_secs: &str) -> anyhow::Result<Self> {
        let dirs = [
            tempfile::tempdir()?,
            tempfile::tempdir()?,
            tempfile::tempdir()?,
        ];
        let ids: Vec<PeerId> = dirs
            .iter()
            .map(|d| identity(d.path()))
            .collect::<anyhow::Result<_>>()?;
        let ports: Vec<Ports> = (0..3).map(|_| Ports::fixed()).collect();
        let addr = |i: usize| tcp_addr(ports[i].tcp, ids[i]);
        let start = |i: usize, name: &str, peers: &[String]| {
            let mut args = vec!["--record-announce-secs", "1", "--record-ttl-secs", ttl_secs];
            args.extend(["--relay-name", name, "--relay-region", "loopback"]);
            for p in peers {
                args.extend(["--peer", p.as_str()]);
            }
            Relay::start(dirs[i].path(), ports[i], &args)
        };
        let relays = [
            start(0, "relay A", &[addr(1)])?,
            start(1, "relay B", &[addr(0), addr(2)])?,
            start(2, "relay C", &[addr(1)])?,
        ];
        Ok(Line {
            _dirs: dirs,
            ids,
            ports,
            relays,
        })
    }

    /// Relay `i`'s TCP address.
    fn addr(&self, i: usize) -> String {
        tcp_addr(self.ports[i].tcp, self.ids[i])
    }

    fn all(&self) -> BTreeSet<PeerId> {
        self.ids.iter().copied().collect()
    }
}

/// What the hostile relay answers, round after round (the last one for ever after).
fn hostile_rounds(now: u64) -> anyhow::Result<Vec<Vec<Vec<u8>>>> {
    let honest = Keypair::generate_ed25519();
    let record = |key: &Keypair, seq: u64, issued: u64| -> anyhow::Result<Vec<u8>> {
        let me = key.public().to_peer_id();
        Ok(RelayRecord {
            seq,
            issued_at_ms: issued,
            expires_at_ms: issued + 600_000,
            name: format!("seq {seq}"),
            region: String::new(),
            addrs: vec![format!("/ip4/127.0.0.1/tcp/9/p2p/{me}").parse()?],
            auth_methods: vec![],
            limits: None,
            load_permille: 0,
        }
        // Signed as of `issued`, so that the signer's own checks let a stale or early one out.
        .sign(key, issued)?
        .bytes()
        .to_vec())
    };
    let good = record(&honest, 100, now)?;
    let mut forged = good.clone();
    let last = forged.len() - 1;
    forged[last] ^= 1; // the signature is the last field
    let mut re_encoded = record(&Keypair::generate_ed25519(), 1, now)?;
    re_encoded.extend_from_slice(&[0x1a, 0x00]); // the signature field again, empty
    let mut oversized = record(&Keypair::generate_ed25519(), 1, now)?;
    oversized.resize(MAX_RELAY_RECORD_BYTES + 1, 0);
    let expired = record(&Keypair::generate_ed25519(), 1, now - 1_200_000)?;
    let early = record(&Keypair::generate_ed25519(), 1, now + 600_000)?;
    Ok(vec![
        vec![
            good,
            b"garbage, not a record".to_vec(),
            forged,
            re_encoded,
            oversized,
            expired,
            early,
        ],
        // An older record of the honest relay: a replay.
        vec![record(&honest, 50, now)?],
        // More records than an answer may carry: refused unread.
        vec![b"x".to_vec(); MAX_RECORDS_PER_RESPONSE + 1],
    ])
}

#[tokio::test]
async fn a_hostile_peer_relays_records_are_refused_and_counted() -> anyhow::Result<()> {
    let key = Keypair::generate_ed25519();
    let hostile_id = key.public().to_peer_id();
    let port = free_tcp_port();
    let mut swarm = darkswap_net::libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_behaviour(|_| {
            request_response::Behaviour::with_codec(
                RelayRecordsCodec::default(),
                [(
                    StreamProtocol::new(RELAY_RECORDS_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                request_response::Config::default(),
            )
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
        .build();
    let listen: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse()?;
    swarm.listen_on(listen.clone())?;
    let peer_flag = listen.with(Protocol::P2p(hostile_id)).to_string();
    let rounds = hostile_rounds(unix_time_ms())?;
    let answering = tokio::spawn(async move {
        let mut round = 0;
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let records = rounds[round.min(rounds.len() - 1)].clone();
                round += 1;
                let _ = swarm
                    .behaviour_mut()
                    .send_response(channel, RelayRecordsResponse { records });
            }
        }
    });

    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--peer",
            &peer_flag,
            "--record-announce-secs",
            "1",
            "--record-ttl-secs",
            "4",
        ],
    )?;
    let refused =
        |reason: &str| format!("darkswap_relay_relay_records_refused_total{{reason=\"{reason}\"}}");
    for reason in [
        "malformed",
        "bad_signature",
        "non_canonical",
        "too_large",
        "expired",
        "from_the_future",
        "replayed",
    ] {
        relay
            .metric_eventually(&refused(reason), T, |v| v >= 1.0)
            .await?;
    }
    relay
        .metric_eventually(
            "darkswap_relay_requests_unreadable_total{protocol=\"relay_records\",reason=\"malformed\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    // Kept: this relay's own record and the one good record, at its first sequence number.
    let records = served(&relay)?;
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(records[0].relay(), relay.peer_id);
    assert_eq!(records[1].record().seq, 100);
    assert_eq!(
        relay.metric("darkswap_relay_relay_records_accepted_total{outcome=\"new\"}")?,
        1.0
    );
    answering.abort();
    Ok(())
}

fn pair() -> darkswap_orderbook::Pair {
    darkswap_orderbook::Pair::parse("RUNE:FEDERATIONTEST/BTC").expect("a pair")
}

/// Retries a first order from `maker` until `taker` sees it (gossip meshes form on the next
/// heartbeat); true when one crossed.
async fn crosses(maker: &Peer, taker: &mut Peer) -> anyhow::Result<bool> {
    for _ in 0..5 {
        let id = maker.handle.place_order(pair(), sell(42, 300))?;
        if taker
            .book_where(Duration::from_secs(4), &pair(), |v| {
                v.orders.iter().any(|o| o.id == id)
            })
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

const FAST: [&str; 4] = ["--record-announce-secs", "1", "--record-ttl-secs", "4"];

/// A lists B's address; B lists only A's PeerId: A proves itself with the relay method, B takes
/// it as a peer relay and keeps its record, and one book spans both, both ways.
#[tokio::test]
async fn one_side_listing_the_other_is_enough() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let a_id = identity(da.path())?.to_string();
    let mut b_args = FAST.to_vec();
    b_args.extend(["--federate-with", &a_id]);
    let b = Relay::start(db.path(), Ports::default(), &b_args)?;
    let b_addr = b.tcp_addr().to_string();
    let mut a_args = FAST.to_vec();
    a_args.extend(["--peer", &b_addr]);
    let a = Relay::start(da.path(), Ports::default(), &a_args)?;

    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    a.metric_eventually(
        "darkswap_relay_federation_proofs_total{outcome=\"ok\"}",
        T,
        |v| v >= 1.0,
    )
    .await?;
    assert!(b.metric("darkswap_relay_auth_attempts_total{method=\"relay\",reason=\"ok\"}")? >= 1.0);
    served_eventually(&b, T, |r| relays(r).contains(&a.peer_id)).await?;

    let on_a = Peer::trader(&a, &pair()).await?;
    let mut on_b = Peer::trader(&b, &pair()).await?;
    assert!(
        crosses(&on_a, &mut on_b).await?,
        "an order on A never reached a trader on B"
    );
    let mut on_a = on_a;
    assert!(
        crosses(&on_b, &mut on_a).await?,
        "an order on B never reached a trader on A"
    );
    Ok(())
}

/// With `federation.accept = any`, a relay that lists nobody takes any relay whose record checks.
#[tokio::test]
async fn an_open_federation_takes_any_relay_that_proves_itself() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let mut b_args = FAST.to_vec();
    b_args.extend(["--federation-accept", "any"]);
    let b = Relay::start(db.path(), Ports::default(), &b_args)?;
    let b_addr = b.tcp_addr().to_string();
    let mut a_args = FAST.to_vec();
    a_args.extend(["--peer", &b_addr]);
    let _a = Relay::start(da.path(), Ports::default(), &a_args)?;
    b.metric_eventually("darkswap_relay_peer_relays_connected", T, |v| v >= 1.0)
        .await?;
    Ok(())
}

/// A relay that is not on the federation list proves itself and is refused: it stays an
/// anonymous peer, and the orders it forwards are refused, not taken into the book.
#[tokio::test]
async fn a_relay_off_the_list_cannot_join_the_mesh() -> anyhow::Result<()> {
    let (da, db) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let b = Relay::start(db.path(), Ports::default(), &FAST)?;
    let b_addr = b.tcp_addr().to_string();
    let mut a_args = FAST.to_vec();
    a_args.extend(["--peer", &b_addr]);
    let a = Relay::start(da.path(), Ports::default(), &a_args)?;
    a.metric_eventually(
        "darkswap_relay_federation_proofs_total{outcome=\"not_allowed\"}",
        T,
        |v| v >= 1.0,
    )
    .await?;
    assert!(
        b.metric("darkswap_relay_auth_attempts_total{method=\"relay\",reason=\"not_allowed\"}")?
            >= 1.0
    );
    assert_eq!(b.metric("darkswap_relay_peer_relays_connected")?, 0.0);
    assert_eq!(
        relays(&served(&b)?),
        [b.peer_id].into(),
        "B took the record of a relay it refused"
    );

    let on_a = Peer::trader(&a, &pair()).await?;
    let mut on_b = Peer::trader(&b, &pair()).await?;
    let id = on_a.handle.place_order(pair(), sell(42, 300))?;
    // A forwards the order to B, which follows the pair for its trader: refused there.
    let unauthorized = "darkswap_relay_order_messages_rejected_total{reason=\"unauthorized\"}";
    let mut refused = false;
    for _ in 0..5 {
        if b.metric_eventually(unauthorized, Duration::from_secs(4), |v| v >= 1.0)
            .await
            .is_ok()
        {
            refused = true;
            break;
        }
        on_a.handle.place_order(pair(), sell(43, 300))?;
    }
    assert!(refused, "B never saw A forward an order");
    assert!(
        on_b.book_where(Duration::from_secs(2), &pair(), |v| v
            .orders
            .iter()
            .any(|o| o.id == id))
            .await
            .is_err(),
        "an order through a refused relay reached B's book"
    );
    Ok(())
}

/// Hostile relay proofs, each from its own key (so that no rate limit decides): no record, a
/// record of another relay, and a trader's identity signature passed off as a relay's are
/// refused by reason; the honest proof is granted the trusted level.
#[tokio::test]
async fn hostile_relay_proofs_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--federation-accept", "any"],
    )?;
    let record_of = |key: &Keypair| -> anyhow::Result<Vec<u8>> {
        let me = key.public().to_peer_id();
        let now = unix_time_ms();
        Ok(RelayRecord {
            seq: now,
            issued_at_ms: now,
            expires_at_ms: now + 60_000,
            name: String::new(),
            region: String::new(),
            addrs: vec![format!("/ip4/127.0.0.1/tcp/9/p2p/{me}").parse()?],
            auth_methods: vec![],
            limits: None,
            load_permille: 0,
        }
        .sign(key, now)?
        .bytes()
        .to_vec())
    };
    let refused = |r: &AuthResponse| match r {
        AuthResponse::Refused { reason } => Some(*reason),
        _ => None,
    };
    for case in [
        "no record",
        "another relay's record",
        "a trader's signature",
        "honest",
    ] {
        let key = Keypair::generate_ed25519();
        let mut probe = Probe::connect(&relay, key.clone()).await?;
        let (nonce, expires) = probe.challenge(Method::Relay).await?;
        let (record, as_trader) = match case {
            "no record" => (None, false),
            "another relay's record" => (Some(record_of(&Keypair::generate_ed25519())?), false),
            "a trader's signature" => (Some(record_of(&key)?), true),
            _ => (Some(record_of(&key)?), false),
        };
        let answer = probe.relay_answer(&key, &nonce, expires, record, as_trader);
        let response = probe.request(answer).await?;
        let expected = match case {
            "no record" | "another relay's record" => Some(RefuseReason::BadRecord),
            "a trader's signature" => Some(RefuseReason::WrongProof),
            _ => None,
        };
        assert_eq!(refused(&response), expected, "{case}: {response:?}");
        if expected.is_none() {
            let AuthResponse::Granted(grant) = response else {
                anyhow::bail!("honest: {response:?}");
            };
            assert_eq!(grant.level, Level::Trusted);
            assert_eq!(grant.method, Method::Relay);
        }
    }
    assert_eq!(
        relay
            .metric("darkswap_relay_auth_attempts_total{method=\"relay\",reason=\"bad_record\"}")?,
        2.0
    );
    Ok(())
}

/// Runs `darkswap relays` against `relay` with `args`; its lines about relays, by PeerId:
/// (rank, the rest of the line).
fn cli_relays(relay: &Relay, args: &[&str]) -> anyhow::Result<Vec<(PeerId, String, String)>> {
    let out = std::process::Command::new(darkswap_tests::cli_bin())
        .args([
            "--relay",
            &relay.tcp_addr().to_string(),
            "relays",
            "--wait",
            "30",
        ])
        .args(args)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "darkswap relays failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut lines = Vec::new();
    for line in stdout.lines() {
        let Some(rest) = line.strip_prefix("relay ") else {
            continue;
        };
        let mut parts = rest.splitn(3, ' ');
        let rank = parts.next().unwrap_or_default().to_string();
        let peer: PeerId = parts.next().unwrap_or_default().parse()?;
        lines.push((peer, rank, parts.next().unwrap_or_default().to_string()));
    }
    Ok(lines)
}

/// The CLI's relay pool: it learns A's peers' records through A, probes each relay for its
/// round trip, ranks them; an exclusion is kept in the pool file for the next run, and undone.
#[tokio::test]
async fn the_cli_ranks_the_relays_it_learns_and_keeps_its_choices() -> anyhow::Result<()> {
    // Records outlive the test: the CLI asks for them every 30 s.
    let line = Line::start("120")?;
    let a = &line.relays[0];
    let ids = &line.ids;
    let all = line.all();
    served_eventually(a, T, |r| relays(r) == all).await?;

    let pool = tempfile::tempdir()?;
    let file = pool.path().join("pool.json");
    let file = file.to_str().expect("a UTF-8 path");
    let c = ids[2].to_string();
    let lines = cli_relays(a, &["--pool-file", file, "--exclude", &c])?;
    assert_eq!(
        lines.iter().map(|l| l.0).collect::<BTreeSet<_>>(),
        all,
        "{lines:?}"
    );
    for (peer, rank, rest) in &lines {
        if *peer == ids[2] {
            assert_eq!(rank, "-", "{rest}");
            assert!(rest.contains("excluded"), "{rest}");
        } else {
            assert!(rank.parse::<usize>().is_ok(), "{peer}: {rank} {rest}");
            assert!(rest.contains(" ms "), "measured: {rest}");
        }
        if *peer == ids[0] {
            assert!(rest.contains("serving"), "{rest}");
        }
        if *peer == ids[1] {
            assert!(rest.contains("name=\"relay B (loopback)\""), "{rest}");
        }
    }
    // The next run starts from the file: C is still excluded.
    let lines = cli_relays(a, &["--pool-file", file])?;
    let of_c = lines.iter().find(|l| l.0 == ids[2]).expect("C is known");
    assert!(of_c.2.contains("excluded"), "{of_c:?}");
    // Until the trader takes it back.
    let lines = cli_relays(a, &["--pool-file", file, "--auto", &c])?;
    let of_c = lines.iter().find(|l| l.0 == ids[2]).expect("C is known");
    assert!(
        of_c.1.parse::<usize>().is_ok() && of_c.2.contains(" ms "),
        "{of_c:?}"
    );
    Ok(())
}

/// A relay dials its peer relays from a new local port, not its listening one: binding a dial to
/// the listening port failed with "address in use" for as long as a closed connection's
/// TIME_WAIT from another loopback address held that port (seen after the edge and auth
/// benchmarks), and the new relay could not reach its peer for a minute. Dials that fail are
/// counted by reason: a peer relay nobody listens for is `refused`, one that hangs up before the
/// handshake is `other`.
#[tokio::test]
async fn peer_relays_are_dialed_from_a_new_port_and_failures_counted() -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let silent = listener.local_addr()?.port();
    let closed = free_tcp_port();
    let someone = || Keypair::generate_ed25519().public().to_peer_id();
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--peer",
            &tcp_addr(silent, someone()),
            "--peer",
            &tcp_addr(closed, someone()),
        ],
    )?;
    let own_port = relay
        .tcp_addr()
        .iter()
        .find_map(|p| match p {
            Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .ok_or_else(|| anyhow::anyhow!("no TCP port in {}", relay.tcp_addr()))?;
    // The first dial goes out at once: take it, look at where it comes from, hang up.
    listener.set_nonblocking(false)?;
    let (conn, from) = tokio::task::spawn_blocking(move || listener.accept()).await??;
    assert_eq!(from.ip(), std::net::Ipv4Addr::LOCALHOST);
    assert_ne!(
        from.port(),
        own_port,
        "the dial to a peer relay came from the relay's listening port"
    );
    drop(conn);
    let failures = |reason: &str| {
        relay.metric(&format!(
            "darkswap_relay_peer_relay_dial_failures_total{{reason=\"{reason}\"}}"
        ))
    };
    let deadline = std::time::Instant::now() + T;
    while failures("refused")? < 1.0 || failures("other")? < 1.0 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "dial failures not counted: refused {}, other {}",
            failures("refused")?,
            failures("other")?
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failures("address_in_use")?, 0.0);
    assert_eq!(relay.metric("darkswap_relay_peer_relays_connected")?, 0.0);
    Ok(())
}
