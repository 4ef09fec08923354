//! Relay authentication and authorization against the real relay binary on loopback: a peer
//! that skips auth gets nothing (no reservation, no publishing), replayed and expired challenges,
//! wrong proofs, disabled methods, forged / another peer's / expired tokens, bans (cutting an
//! open connection, surviving a restart) and the admin API's own level check. Every refusal is
//! also checked in /metrics and, for bans, in the audit log.

use std::time::Duration;

use darkswap_auth::client::Credential;
use darkswap_auth::proof::SharedKey;
use darkswap_auth::{Level, Method, RefuseReason};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::{unix_time_ms, AuthEvent, NodeConfig, NodeEvent, RelayStatus};
use darkswap_orderbook::{Pair, Price, Side};
use darkswap_proto::auth::{AdminAction, AuthRequest, AuthResponse, Grant};
use darkswap_proto::order::{sign_order_message, OrderAction, OrderBody, OrderSpec};
use darkswap_tests::probe::{Probe, Reservation};
use darkswap_tests::{Peer, Ports, RawPublisher, Relay};

const T: Duration = Duration::from_secs(20);

fn refused(response: &AuthResponse) -> Option<RefuseReason> {
    match response {
        AuthResponse::Refused { reason } => Some(*reason),
        _ => None,
    }
}

fn granted(response: &AuthResponse) -> Option<(Level, Method)> {
    match response {
        AuthResponse::Granted(Grant { level, method, .. }) => Some((*level, *method)),
        _ => None,
    }
}

fn attempts(relay: &Relay, method: &str, reason: &str) -> f64 {
    relay
        .metric(&format!(
            "darkswap_relay_auth_attempts_total{{method=\"{method}\",reason=\"{reason}\"}}"
        ))
        .unwrap_or(0.0)
}

#[tokio::test]
async fn a_peer_that_skips_auth_can_neither_reserve_nor_publish() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;

    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    let outcome = probe.reserve().await?;
    assert!(
        matches!(outcome, Reservation::Refused(_)),
        "an unauthenticated reservation was accepted"
    );
    relay
        .metric_eventually(
            "darkswap_relay_reservations_denied_total{reason=\"unauthorized\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    assert!(
        relay.metric(
            "darkswap_relay_auth_denials_total{operation=\"reserve\",level=\"anonymous\"}"
        )? >= 1.0
    );

    // Publishing a perfectly valid signed order without authenticating: refused and counted.
    let pair = Pair::parse("RUNE:DOGGOTOTHEMOON/BTC")?;
    let mut watcher = Peer::trader(&relay, &pair).await?;
    let mut raw = RawPublisher::connect_unauthenticated(&relay, &pair).await?;
    let maker = Keypair::generate_ed25519();
    let now = unix_time_ms();
    let body = OrderBody {
        pair: pair.clone(),
        seq: 1,
        sent_at_ms: now,
        action: OrderAction::Order(OrderSpec {
            nonce: 1,
            side: Side::Sell,
            price: Price(300),
            amount: 1_000,
            min_fill: 1,
            expires_at_ms: now + 3_600_000,
        }),
    };
    raw.publish(sign_order_message(&maker, &body, now)?).await?;
    relay
        .metric_eventually(
            "darkswap_relay_order_messages_rejected_total{reason=\"unauthorized\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    assert!(
        relay.metric(
            "darkswap_relay_auth_denials_total{operation=\"publish_order\",level=\"anonymous\"}"
        )? >= 1.0
    );
    // It never reached the watcher.
    assert!(watcher
        .book_where(Duration::from_secs(2), &pair, |v| !v.orders.is_empty())
        .await
        .is_err());

    // The same probe, once authenticated, may reserve.
    let answer = probe.authenticate().await?;
    assert_eq!(
        granted(&answer),
        Some((Level::Authenticated, Method::Identity))
    );
    assert_eq!(probe.reserve().await?, Reservation::Accepted);
    assert!(attempts(&relay, "identity", "ok") >= 1.0);
    Ok(())
}

#[tokio::test]
async fn challenges_are_single_use_bound_and_expire() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        // One probe makes many requests here (failed answers count too): a roomier budget.
        &[
            "--auth-challenge-ttl-secs",
            "1",
            "--auth-challenge-rate-per-peer",
            "1200",
        ],
    )?;
    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;

    // A correct answer works once; the same answer again is a replay.
    let (nonce, expires) = probe.challenge(Method::Identity).await?;
    let answer = probe.identity_answer(&probe.key.clone(), &nonce, expires);
    assert!(granted(&probe.request(answer.clone()).await?).is_some());
    assert_eq!(
        refused(&probe.request(answer).await?),
        Some(RefuseReason::UnknownChallenge)
    );

    // Signed by another key (a relay-in-the-middle or a thief without our key).
    let (nonce, expires) = probe.challenge(Method::Identity).await?;
    let wrong = probe.identity_answer(&Keypair::generate_ed25519(), &nonce, expires);
    assert_eq!(
        refused(&probe.request(wrong).await?),
        Some(RefuseReason::WrongProof)
    );

    // 64 arbitrary bytes are not a signature (the original design accepted them).
    let (nonce, _) = probe.challenge(Method::Identity).await?;
    let junk = AuthRequest::Answer {
        nonce,
        proof: vec![0x42; 64],
        stamp: None,
        record: None,
    };
    assert_eq!(
        refused(&probe.request(junk).await?),
        Some(RefuseReason::WrongProof)
    );

    // Answered too late.
    let (nonce, expires) = probe.challenge(Method::Identity).await?;
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let late = probe.identity_answer(&probe.key.clone(), &nonce, expires);
    assert_eq!(
        refused(&probe.request(late).await?),
        Some(RefuseReason::ExpiredChallenge)
    );

    // A nonce issued to someone else.
    let mut other = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    let (nonce, expires) = probe.challenge(Method::Identity).await?;
    let stolen = other.identity_answer(&other.key.clone(), &nonce, expires);
    assert_eq!(
        refused(&other.request(stolen).await?),
        Some(RefuseReason::UnknownChallenge)
    );

    // The shared-key method is not configured on this relay (asked by the second probe: the
    // first has used up its burst of challenge requests).
    assert_eq!(
        refused(
            &other
                .request(AuthRequest::Challenge {
                    method: Method::SharedKey
                })
                .await?
        ),
        Some(RefuseReason::MethodDisabled)
    );

    assert!(attempts(&relay, "unknown", "unknown_challenge") >= 2.0);
    assert!(attempts(&relay, "identity", "wrong_proof") >= 2.0);
    assert!(attempts(&relay, "unknown", "expired_challenge") >= 1.0);
    assert!(attempts(&relay, "shared_key", "method_disabled") >= 1.0);
    Ok(())
}

#[tokio::test]
async fn challenge_requests_are_rate_limited() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-challenge-rate-per-peer", "3"],
    )?;
    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    let mut limited = 0;
    for _ in 0..8 {
        let r = probe
            .request(AuthRequest::Challenge {
                method: Method::Identity,
            })
            .await?;
        if refused(&r) == Some(RefuseReason::RateLimited) {
            limited += 1;
        }
    }
    assert!(limited >= 4, "only {limited} of 8 were limited");
    assert!(relay.metric("darkswap_relay_auth_rate_limited_total{scope=\"peer\"}")? >= 4.0);
    Ok(())
}

/// Traders behind one address (all probes come from 127.0.0.1) who connect together all get a
/// challenge at once, up to the per-IP budget; the next is refused for the address, and counted.
#[tokio::test]
async fn traders_sharing_an_address_connect_together_up_to_its_budget() -> anyhow::Result<()> {
    const BUDGET: usize = 30;
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-challenge-rate-per-ip", &BUDGET.to_string()],
    )?;
    let mut probes = Vec::new();
    for _ in 0..=BUDGET {
        probes.push(Probe::connect(&relay, Keypair::generate_ed25519()).await?);
    }
    let mut answers = Vec::new();
    for probe in probes.iter_mut() {
        answers.push(
            probe
                .request(AuthRequest::Challenge {
                    method: Method::Identity,
                })
                .await?,
        );
    }
    let challenged = answers
        .iter()
        .filter(|r| matches!(r, AuthResponse::Challenge { .. }))
        .count();
    assert_eq!(challenged, BUDGET, "{answers:?}");
    assert_eq!(refused(&answers[BUDGET]), Some(RefuseReason::RateLimited));
    assert_eq!(
        relay.metric("darkswap_relay_auth_rate_limited_total{scope=\"ip\"}")?,
        1.0
    );
    Ok(())
}

#[tokio::test]
async fn shared_key_method() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("shared.key");
    std::fs::write(&key_file, "a long enough operator secret\n")?;
    let relay = Relay::start(
        &dir.path().join("data"),
        Ports::default(),
        &[
            "--auth-shared-key-file",
            key_file.to_str().unwrap(),
            "--auth-identity",
            "false",
        ],
    )?;
    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    // The identity method is disabled here.
    assert_eq!(
        refused(
            &probe
                .request(AuthRequest::Challenge {
                    method: Method::Identity
                })
                .await?
        ),
        Some(RefuseReason::MethodDisabled)
    );
    // A wrong key.
    let wrong = SharedKey::new(b"a long enough operator secreT").unwrap();
    let (nonce, expires) = probe.challenge(Method::SharedKey).await?;
    let answer = probe.shared_key_answer(&wrong, &nonce, expires);
    assert_eq!(
        refused(&probe.request(answer).await?),
        Some(RefuseReason::WrongProof)
    );
    // The right key.
    let right = SharedKey::new(b"a long enough operator secret").unwrap();
    let (nonce, expires) = probe.challenge(Method::SharedKey).await?;
    let answer = probe.shared_key_answer(&right, &nonce, expires);
    assert_eq!(
        granted(&probe.request(answer).await?),
        Some((Level::Authenticated, Method::SharedKey))
    );
    assert!(attempts(&relay, "shared_key", "wrong_proof") >= 1.0);
    assert!(attempts(&relay, "shared_key", "ok") >= 1.0);

    // A real trader node with the shared key reserves; one with the identity method is refused
    // and told why.
    let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
    config.credential = Credential::SharedKey(right);
    let mut trader = Peer::start_with(config).await?;
    trader.reserved().await?;
    let mut stranger = Peer::start(vec![relay.tcp_addr()]).await?;
    let reason = stranger
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Refused { reason, .. }) => Some(*reason),
            _ => None,
        })
        .await?;
    assert_eq!(reason, RefuseReason::MethodDisabled);
    // A refused client waits before asking again (30 s by default): it does not hammer.
    let before = attempts(&relay, "identity", "method_disabled");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = attempts(&relay, "identity", "method_disabled");
    assert!(after - before <= 1.0, "{before} → {after} refusals in 3 s");
    Ok(())
}

#[tokio::test]
async fn a_rotated_shared_key_revokes_the_tokens_it_earned() -> anyhow::Result<()> {
    // A token says which shared key earned it: an operator who rotates a leaked key cuts off
    // everyone who had it, tokens included (they used to stay valid until they expired).
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("shared.key");
    let args = [
        "--auth-shared-key-file",
        key_file.to_str().unwrap(),
        "--auth-identity",
        "false",
    ];
    std::fs::write(&key_file, "the operator's first secret\n")?;
    let relay = Relay::start(&dir.path().join("data"), Ports::default(), &args)?;
    let me = Keypair::generate_ed25519();
    let mut probe = Probe::connect(&relay, me.clone()).await?;
    let first = SharedKey::new(b"the operator's first secret").unwrap();
    let (nonce, expires) = probe.challenge(Method::SharedKey).await?;
    let answer = probe.shared_key_answer(&first, &nonce, expires);
    let token = match probe.request(answer).await? {
        AuthResponse::Granted(Grant { token, .. }) => token,
        other => anyhow::bail!("not granted: {other:?}"),
    };
    // The same key after a restart: the token still serves.
    drop(probe);
    drop(relay);
    let relay = Relay::start(&dir.path().join("data"), Ports::default(), &args)?;
    let mut probe = Probe::connect(&relay, me.clone()).await?;
    let response = probe
        .request(AuthRequest::Token {
            token: token.clone(),
        })
        .await?;
    assert_eq!(
        granted(&response),
        Some((Level::Authenticated, Method::Token))
    );
    // The key rotated: refused, counted, and the new key earns access again.
    drop(probe);
    drop(relay);
    std::fs::write(&key_file, "the operator's second secret\n")?;
    let relay = Relay::start(&dir.path().join("data"), Ports::default(), &args)?;
    let mut probe = Probe::connect(&relay, me).await?;
    assert_eq!(
        refused(&probe.request(AuthRequest::Token { token }).await?),
        Some(RefuseReason::RevokedToken)
    );
    assert_eq!(attempts(&relay, "token", "revoked_token"), 1.0);
    let second = SharedKey::new(b"the operator's second secret").unwrap();
    let (nonce, expires) = probe.challenge(Method::SharedKey).await?;
    let answer = probe.shared_key_answer(&second, &nonce, expires);
    assert_eq!(
        granted(&probe.request(answer).await?),
        Some((Level::Authenticated, Method::SharedKey))
    );
    Ok(())
}

#[tokio::test]
async fn tokens_are_bound_signed_and_expire() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-token-ttl-secs", "3"],
    )?;
    let key = Keypair::generate_ed25519();
    let mut probe = Probe::connect(&relay, key.clone()).await?;
    let AuthResponse::Granted(Grant {
        token,
        expires_at_ms,
        ..
    }) = probe.authenticate().await?
    else {
        anyhow::bail!("not granted");
    };
    assert!(expires_at_ms > unix_time_ms());

    // Presented again (as a reconnecting client does): granted without a challenge.
    let again = probe
        .request(AuthRequest::Token {
            token: token.clone(),
        })
        .await?;
    assert_eq!(granted(&again), Some((Level::Authenticated, Method::Token)));

    // Forged: one byte of the body changed.
    let mut forged = token.clone();
    forged[10] ^= 0x01;
    let r = probe.request(AuthRequest::Token { token: forged }).await?;
    assert!(
        matches!(
            refused(&r),
            Some(
                RefuseReason::BadToken
                    | RefuseReason::TokenForAnotherPeer
                    | RefuseReason::TokenForAnotherRelay
            )
        ),
        "{r:?}"
    );

    // Another peer's token.
    let mut thief = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    assert_eq!(
        refused(
            &thief
                .request(AuthRequest::Token {
                    token: token.clone()
                })
                .await?
        ),
        Some(RefuseReason::TokenForAnotherPeer)
    );
    assert!(matches!(thief.reserve().await?, Reservation::Refused(_)));

    // Expired.
    tokio::time::sleep(Duration::from_millis(
        expires_at_ms.saturating_sub(unix_time_ms()) + 200,
    ))
    .await;
    assert_eq!(
        refused(&probe.request(AuthRequest::Token { token }).await?),
        Some(RefuseReason::ExpiredToken)
    );
    // And with it, the level: a new reservation is refused until the peer proves itself again.
    assert!(matches!(probe.reserve().await?, Reservation::Refused(_)));
    assert!(attempts(&relay, "token", "ok") >= 1.0);
    assert!(attempts(&relay, "token", "token_for_another_peer") >= 1.0);
    assert!(attempts(&relay, "token", "expired_token") >= 1.0);
    Ok(())
}

#[tokio::test]
async fn a_reservation_ends_with_the_grant_it_was_bought_with() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-token-ttl-secs", "4", "--auth-lapse-grace-secs", "5"],
    )?;
    // A client that renews (darkswap-net renews in the grant's last fifth) keeps its reservation
    // across several grants.
    let mut renewing = Peer::reserved_on(&relay).await?;
    // One that never renews holds a reservation bought with a 4 s grant.
    let mut lapsing = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    let AuthResponse::Granted(Grant { expires_at_ms, .. }) = lapsing.authenticate().await? else {
        anyhow::bail!("not granted");
    };
    assert_eq!(lapsing.hold_reservation().await?, Reservation::Accepted);
    // Not before its grant ends and the grace after it (5 s here)...
    let ends_in = Duration::from_millis(expires_at_ms.saturating_sub(unix_time_ms()));
    assert!(
        !lapsing
            .closed_within(ends_in + Duration::from_secs(4))
            .await
    );
    // ...but soon after, it is disconnected, and with it goes the reservation.
    assert!(lapsing.closed_within(Duration::from_secs(5)).await);
    let lapsed = r#"darkswap_relay_lapsed_dropped_total{held="reservation"}"#;
    assert_eq!(relay.metric(lapsed)?, 1.0);
    let denied = r#"darkswap_relay_auth_denials_total{operation="reserve",level="anonymous"}"#;
    assert!(relay.metric(denied)? >= 1.0);
    // The renewing client was never cut off.
    let cut = renewing
        .wait_for(Duration::from_secs(1), |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Failed { .. })).then_some(())
        })
        .await;
    assert!(cut.is_err(), "the renewing client was disconnected");
    Ok(())
}

#[tokio::test]
async fn a_client_reuses_its_token_and_refreshes_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--auth-token-ttl-secs", "5"],
    )?;
    let key = Keypair::generate_ed25519();
    let mut first = Peer::start_keyed(key.clone(), NodeConfig::new(vec![relay.tcp_addr()])).await?;
    let token = first
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Granted(Grant {
                method: Method::Identity,
                token,
                ..
            })) => Some(token.clone()),
            _ => None,
        })
        .await?;
    // Within the token's last fifth it asks for a fresh one by itself.
    first
        .wait_for(T, |e| {
            matches!(
                e,
                NodeEvent::Auth(AuthEvent::Granted(Grant {
                    method: Method::Identity,
                    ..
                }))
            )
            .then_some(())
        })
        .await?;
    drop(first);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A restarted client with the cached token presents it instead of a challenge.
    let fresh_token = {
        let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
        config.auth_token = Some(token);
        let mut again = Peer::start_keyed(key, config).await?;
        let event = again
            .wait_for(T, |e| match e {
                NodeEvent::Auth(AuthEvent::Granted(Grant { method, .. })) => Some(*method),
                _ => None,
            })
            .await?;
        again.reserved().await?;
        event
    };
    // The first token may have been refreshed past its window: either way the client got in,
    // and a token presentation was counted if it was still good.
    assert!(matches!(fresh_token, Method::Token | Method::Identity));
    Ok(())
}

#[tokio::test]
async fn bans_cut_connections_survive_restarts_and_need_admin() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let admin_key = Keypair::generate_ed25519();
    let admin_flag = format!("{}=admin", admin_key.public().to_peer_id());
    let ports = Ports::fixed();
    let relay = Relay::start(dir.path(), ports, &["--auth-peer", &admin_flag])?;

    let victim_key = Keypair::generate_ed25519();
    let victim_id = victim_key.public().to_peer_id();
    let mut victim =
        Peer::start_keyed(victim_key.clone(), NodeConfig::new(vec![relay.tcp_addr()])).await?;
    victim.reserved().await?;

    // A mere trader may not ban.
    let mut trader = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    trader.authenticate().await?;
    let r = trader
        .request(AuthRequest::Admin(AdminAction::Ban {
            peer: victim_id,
            reason: "spite".into(),
        }))
        .await?;
    assert_eq!(refused(&r), Some(RefuseReason::InsufficientLevel));
    assert!(
        relay.metric(
            "darkswap_relay_auth_denials_total{operation=\"ban\",level=\"authenticated\"}"
        )? >= 1.0
    );

    // The admin (listed in the config: admin as soon as it connects) bans the victim.
    let mut admin = Probe::connect(&relay, admin_key.clone()).await?;
    let r = admin
        .request(AuthRequest::Admin(AdminAction::Ban {
            peer: victim_id,
            reason: "wash trading".into(),
        }))
        .await?;
    assert!(
        matches!(r, AuthResponse::Admin { ref message, .. } if message == "done"),
        "{r:?}"
    );
    // The victim's open connection is cut at once.
    victim
        .wait_for(T, |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Failed { .. })).then_some(())
        })
        .await?;
    // Its reconnects are refused at the door.
    relay
        .metric_eventually(
            "darkswap_relay_connections_denied_total{reason=\"banned\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;
    assert_eq!(relay.metric("darkswap_relay_banned_peers")?, 1.0);
    assert_eq!(
        relay.metric("darkswap_relay_bans_total{action=\"ban\"}")?,
        1.0
    );
    let listing = admin.request(AuthRequest::Admin(AdminAction::List)).await?;
    let AuthResponse::Admin { entries, .. } = listing else {
        anyhow::bail!("{listing:?}");
    };
    assert!(entries
        .iter()
        .any(|e| e.peer == victim_id && e.level == Level::Banned && e.note == "wash trading"));
    drop(victim);
    drop(admin);
    drop(trader);

    // The ban survives a restart.
    relay.stop()?;
    let relay = Relay::start(dir.path(), ports, &["--auth-peer", &admin_flag])?;
    assert_eq!(relay.metric("darkswap_relay_banned_peers")?, 1.0);
    // Either the dial fails or the relay closes the connection at once.
    if let Ok(mut p) = Probe::connect(&relay, victim_key.clone()).await {
        assert!(
            p.closed_within(Duration::from_secs(5)).await,
            "a banned peer stayed connected after a restart"
        );
    }
    relay
        .metric_eventually(
            "darkswap_relay_connections_denied_total{reason=\"banned\"}",
            T,
            |v| v >= 1.0,
        )
        .await?;

    // Unbanned, the victim gets in again, but its old tokens stay revoked.
    let mut admin = Probe::connect(&relay, admin_key).await?;
    let r = admin
        .request(AuthRequest::Admin(AdminAction::Unban { peer: victim_id }))
        .await?;
    assert!(
        matches!(r, AuthResponse::Admin { ref message, .. } if message == "done"),
        "{r:?}"
    );
    let mut back = Peer::start_keyed(victim_key, NodeConfig::new(vec![relay.tcp_addr()])).await?;
    back.reserved().await?;

    // The audit log has the story.
    let audit = std::fs::read_to_string(dir.path().join("audit.log"))?;
    let events: Vec<serde_json::Value> = audit
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let has = |event: &str| {
        events
            .iter()
            .any(|e| e["event"] == event && e["target"] == victim_id.to_base58())
    };
    assert!(has("ban") && has("unban"), "{audit}");
    assert!(events
        .iter()
        .any(|e| e["event"] == "denial" && e["operation"] == "ban"));
    // And the never-rotated admin log has the administrator's actions, only those.
    let admin = std::fs::read_to_string(dir.path().join("admin.log"))?;
    let actions: Vec<serde_json::Value> = admin
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert!(
        actions
            .iter()
            .all(|e| ["ban", "unban", "trust", "untrust"]
                .contains(&e["event"].as_str().unwrap_or(""))),
        "{admin}"
    );
    assert!(
        actions
            .iter()
            .any(|e| e["event"] == "ban" && e["target"] == victim_id.to_base58()),
        "{admin}"
    );
    Ok(())
}

#[tokio::test]
async fn the_cli_admin_commands_need_admin_and_work() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let key_file = dir.path().join("admin.key");
    // The CLI creates the identity file; its PeerId is printed first.
    let admin_id = {
        let out = std::process::Command::new(darkswap_tests::cli_bin())
            .args(["--identity", key_file.to_str().unwrap()])
            .args([
                "--relay",
                "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
            ])
            .args(["--timeout", "1", "peers"])
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines()
            .find_map(|l| l.strip_prefix("peer id: "))
            .ok_or_else(|| anyhow::anyhow!("no peer id in {text:?}"))?
            .to_string()
    };
    let relay = Relay::start(
        &dir.path().join("data"),
        Ports::default(),
        &["--auth-peer", &format!("{admin_id}=admin")],
    )?;
    let victim = Keypair::generate_ed25519()
        .public()
        .to_peer_id()
        .to_string();
    let cli = |identity: Option<&std::path::Path>, args: &[&str]| {
        let mut cmd = std::process::Command::new(darkswap_tests::cli_bin());
        if let Some(path) = identity {
            cmd.args(["--identity", path.to_str().unwrap()]);
        }
        cmd.args(["--relay", &relay.tcp_addr().to_string()])
            .args(["--timeout", "15", "admin"])
            .args(args)
            .output()
    };
    // A stranger is refused.
    let out = cli(None, &["ban", &victim])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("higher level of access"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin bans, and the listing shows it.
    let out = cli(Some(&key_file), &["ban", &victim, "--reason", "spam"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(Some(&key_file), &["list"])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with(&victim) && l.contains("banned") && l.ends_with("spam")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{admin_id} admin 0 config")),
        "{text}"
    );
    Ok(())
}

#[tokio::test]
async fn an_open_relay_is_a_deliberate_choice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &["--auth-open", "true"])?;
    let mut probe = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    assert_eq!(probe.reserve().await?, Reservation::Accepted);
    // A client asking to authenticate is told it needs nothing (no token), and reserves.
    let mut trader = Peer::start(vec![relay.tcp_addr()]).await?;
    let (level, method) = trader
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Granted(Grant { level, method, .. })) => {
                Some((*level, *method))
            }
            _ => None,
        })
        .await?;
    assert_eq!((level, method), (Level::Authenticated, Method::Open));
    trader.reserved().await?;
    Ok(())
}

#[tokio::test]
async fn connections_are_kept_for_peers_that_proved_themselves() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // 10 connections, 4 of them kept for peers at the reservation level, a 6 s grace.
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-connections",
            "10",
            "--connections-kept-for-authenticated",
            "4",
            "--anonymous-grace-secs",
            "6",
        ],
    )?;
    // A trader proves itself and reserves before the flood.
    let mut early = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    assert!(granted(&early.authenticate().await?).is_some());
    assert_eq!(early.hold_reservation().await?, Reservation::Accepted);
    // Six peers that never prove anything fill their part (10 - 4); the trader who proved
    // itself is moved out of it on the way.
    let mut anonymous = Vec::new();
    for _ in 0..6 {
        anonymous.push(Probe::connect(&relay, Keypair::generate_ed25519()).await?);
    }
    assert_eq!(
        relay
            .metric_eventually("darkswap_relay_anonymous_connections", T, |v| v == 6.0)
            .await?,
        6.0
    );
    // A seventh, within the grace, is refused.
    let denied = r#"darkswap_relay_connections_denied_total{reason="anonymous_limit"}"#;
    if let Ok(mut seventh) = Probe::connect(&relay, Keypair::generate_ed25519()).await {
        assert!(seventh.closed_within(Duration::from_secs(5)).await);
    }
    assert_eq!(relay.metric_eventually(denied, T, |v| v >= 1.0).await?, 1.0);
    // Past the grace, a newcomer takes the place of the oldest anonymous connection, proves
    // itself and reserves.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut late = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    assert!(granted(&late.authenticate().await?).is_some());
    assert_eq!(late.hold_reservation().await?, Reservation::Accepted);
    assert!(anonymous[0].closed_within(Duration::from_secs(5)).await);
    assert_eq!(relay.metric("darkswap_relay_anonymous_evicted_total")?, 1.0);
    // Within a second the count holds only peers below the level: the five flooders left.
    relay
        .metric_eventually("darkswap_relay_anonymous_connections", T, |v| v == 5.0)
        .await?;
    assert_eq!(relay.metric(denied)?, 1.0);
    // The newer anonymous connections keep theirs, and the trader who proved itself first,
    // the oldest connection of all, was never the one to go.
    assert!(!anonymous[5].closed_within(Duration::from_millis(500)).await);
    assert!(!early.closed_within(Duration::from_millis(500)).await);
    Ok(())
}

#[tokio::test]
async fn a_relay_prices_new_identities_and_its_tokens_remember_the_work() -> anyhow::Result<()> {
    use darkswap_auth::stamp::{stamp_bits, StampSearch};
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    // Failed answers spend the peer's challenge budget: this one makes eight requests.
    let relay = Relay::start(
        &data,
        Ports::default(),
        &[
            "--auth-identity-stamp-bits",
            "14",
            "--auth-challenge-rate-per-peer",
            "600",
        ],
    )?;
    let me = Keypair::generate_ed25519();
    let mine = me.public().to_peer_id();
    let mut probe = Probe::connect(&relay, me.clone()).await?;
    // The challenge says what the work is; the shared-key method would not be charged.
    let challenge = probe
        .request(AuthRequest::Challenge {
            method: Method::Identity,
        })
        .await?;
    let AuthResponse::Challenge {
        stamp_bits: asked, ..
    } = challenge
    else {
        anyhow::bail!("no challenge: {challenge:?}");
    };
    assert_eq!(asked, 14);

    // A right signature without the work, with too little work, and with another key's work:
    // each refused, counted, and no level granted.
    let search = |peer, bits| StampSearch::new(&peer, bits).run(u32::MAX).unwrap();
    let weak = (0..)
        .find(|s| (6..14).contains(&stamp_bits(&mine, *s)))
        .unwrap();
    let other = Keypair::generate_ed25519().public().to_peer_id();
    let stolen = (search(other, 14)..)
        .find(|s| stamp_bits(&other, *s) >= 14 && stamp_bits(&mine, *s) < 14)
        .unwrap();
    for (stamp, n) in [(None, 1.0), (Some(weak), 2.0), (Some(stolen), 3.0)] {
        let (nonce, expires) = probe.challenge(Method::Identity).await?;
        let mut answer = probe.identity_answer(&me, &nonce, expires);
        if let AuthRequest::Answer { stamp: s, .. } = &mut answer {
            *s = stamp;
        }
        assert_eq!(
            refused(&probe.request(answer).await?),
            Some(RefuseReason::WeakStamp),
            "stamp {stamp:?}"
        );
        assert_eq!(attempts(&relay, "identity", "weak_stamp"), n);
    }
    assert!(matches!(probe.reserve().await?, Reservation::Refused(_)));

    // With the work: granted, and the token carries what was proven.
    let stamp = search(mine, 14);
    let proven = stamp_bits(&mine, stamp);
    assert!((14..24).contains(&proven), "{proven}");
    let (nonce, expires) = probe.challenge(Method::Identity).await?;
    let mut answer = probe.identity_answer(&me, &nonce, expires);
    if let AuthRequest::Answer { stamp: s, .. } = &mut answer {
        *s = Some(stamp);
    }
    let AuthResponse::Granted(Grant { token, .. }) = probe.request(answer).await? else {
        anyhow::bail!("not granted with the work done");
    };
    assert_eq!(
        darkswap_auth::token::peek(&token).unwrap().stamp_bits,
        proven
    );
    assert_eq!(probe.hold_reservation().await?, Reservation::Accepted);
    drop(probe);
    drop(relay);

    // The operator raises the price above what the token proves: the token is refused, and a
    // real client works again by itself (events say so), then is granted and reserves.
    let raised = (proven + 1).to_string();
    let relay = Relay::start(
        &data,
        Ports::default(),
        &["--auth-identity-stamp-bits", &raised],
    )?;
    let mut probe = Probe::connect(&relay, me.clone()).await?;
    assert_eq!(
        refused(
            &probe
                .request(AuthRequest::Token {
                    token: token.clone()
                })
                .await?
        ),
        Some(RefuseReason::WeakStamp)
    );
    assert_eq!(attempts(&relay, "token", "weak_stamp"), 1.0);
    drop(probe);
    let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
    config.auth_token = Some(token);
    let mut client = Peer::start_keyed(me, config).await?;
    let working = client
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Working { bits }) => Some(*bits),
            _ => None,
        })
        .await?;
    assert_eq!(working, proven + 1);
    let (bits, tries) = client
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Stamped { bits, tries, .. }) => Some((*bits, *tries)),
            _ => None,
        })
        .await?;
    assert_eq!(bits, proven + 1);
    assert!(tries >= 1);
    let method = client
        .wait_for(T, |e| match e {
            NodeEvent::Auth(AuthEvent::Granted(Grant { method, .. })) => Some(*method),
            _ => None,
        })
        .await?;
    assert_eq!(method, Method::Identity);
    client.reserved().await?;
    assert!(attempts(&relay, "identity", "ok") >= 1.0);
    Ok(())
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_anonymous_places() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &["--max-anonymous-per-ip", "3"],
    )?;
    // Three peers from this address that prove nothing hold its three places...
    let mut anonymous = Vec::new();
    for _ in 0..3 {
        anonymous.push(Probe::connect(&relay, Keypair::generate_ed25519()).await?);
    }
    relay
        .metric_eventually("darkswap_relay_anonymous_connections", T, |v| v == 3.0)
        .await?;
    // ...so a fourth is refused, though the relay has thousands of places left.
    let denied = r#"darkswap_relay_connections_denied_total{reason="ip_anonymous_limit"}"#;
    if let Ok(mut fourth) = Probe::connect(&relay, Keypair::generate_ed25519()).await {
        assert!(fourth.closed_within(Duration::from_secs(5)).await);
    }
    assert_eq!(relay.metric_eventually(denied, T, |v| v >= 1.0).await?, 1.0);
    // One of them proves itself: within a second it leaves the address's share, and a
    // newcomer from the address is let in (and proves itself and reserves).
    assert!(granted(&anonymous[0].authenticate().await?).is_some());
    relay
        .metric_eventually("darkswap_relay_anonymous_connections", T, |v| v == 2.0)
        .await?;
    let mut newcomer = Probe::connect(&relay, Keypair::generate_ed25519()).await?;
    assert!(granted(&newcomer.authenticate().await?).is_some());
    assert_eq!(newcomer.hold_reservation().await?, Reservation::Accepted);
    assert_eq!(relay.metric(denied)?, 1.0);
    // Those already in keep their places: nobody was closed for the newcomer.
    assert!(!anonymous[2].closed_within(Duration::from_millis(500)).await);
    assert_eq!(relay.metric("darkswap_relay_anonymous_evicted_total")?, 0.0);
    Ok(())
}
