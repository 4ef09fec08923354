//! Trade negotiation between native traders through the real relay: take → reserve → accept
//! → both sign → agreed; the maker republishes what is left; racing takers never overfill; the
//! negotiation travels only as frames sealed in an end-to-end session.

use std::time::Duration;

use anyhow::bail;
use darkswap_e2e::manager::KIND_DATA;
use darkswap_e2e::{Initiator, Session};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::request_response::{self, ProtocolSupport};
use darkswap_net::libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use darkswap_net::libp2p::{noise, relay, tcp, yamux, PeerId, StreamProtocol, Swarm};
use darkswap_net::metrics::ClientMetrics;
use darkswap_net::{unix_time_ms, Command, NodeEvent, Trade, TradeRole, TradeState, TradingEvent};
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::codecs::TradeCodec;
use darkswap_proto::trade::{Agreement, TradeRequest, TradeResponse, TRADE_PROTOCOL};
use darkswap_proto::trade_envelope::{digest, request_aad, response_aad, Refusal, TradeEnvelope};
use darkswap_tests::{sell, Peer, Ports, Relay};
use futures::StreamExt;

const T: Duration = Duration::from_secs(30);

fn pair() -> Pair {
    Pair::parse("RUNE:TRADE/BTC").unwrap()
}

async fn trader(relay: &Relay) -> anyhow::Result<Peer> {
    Peer::trader(relay, &pair()).await
}

async fn finished_trade(peer: &mut Peer) -> anyhow::Result<Trade> {
    peer.wait_for(T, |e| match e {
        NodeEvent::Trading(TradingEvent::Trade(t)) if !t.state.is_open() => Some((**t).clone()),
        _ => None,
    })
    .await
}

async fn see_order(peer: &mut Peer, id: OrderId, amount: u64) -> anyhow::Result<()> {
    peer.book_where(T, &pair(), |v| {
        v.orders.iter().any(|o| o.id == id && o.amount == amount)
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_take_becomes_an_agreement_signed_by_both() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let order = maker.handle.place_order(pair(), sell(1_000, 150_000_000))?;
    see_order(&mut taker, order, 1_000).await?;

    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 300,
        trade_id: darkswap_net::new_trade_id(),
        settlement: Default::default(),
    })?;
    let taker_side = finished_trade(&mut taker).await?;
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(taker_side.state, TradeState::Agreed, "{taker_side:?}");
    assert_eq!(maker_side.state, TradeState::Agreed, "{maker_side:?}");
    assert_eq!(taker_side.id, maker_side.id);
    assert_eq!(
        (taker_side.role, maker_side.role),
        (TradeRole::Taker, TradeRole::Maker)
    );
    assert_eq!(taker_side.counterparty, maker.id());
    assert_eq!(maker_side.counterparty, taker.id());
    // Both hold the same agreement, signed by both.
    let encoded = taker_side.agreement.clone().unwrap();
    assert_eq!(Some(&encoded), maker_side.agreement.as_ref());
    let agreement = Agreement::decode(&encoded)?;
    assert_eq!((agreement.amount, agreement.quote_amount), (300, 450));
    Agreement::verify(
        &encoded,
        &maker.id(),
        maker_side.maker_signature.as_ref().unwrap(),
    )?;
    Agreement::verify(
        &encoded,
        &taker.id(),
        maker_side.taker_signature.as_ref().unwrap(),
    )?;
    // The maker republished what is left, and the taker's book shows it.
    see_order(&mut taker, order, 700).await?;
    Ok(())
}

#[tokio::test]
async fn racing_takers_never_buy_the_same_unit_twice() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut takers = Vec::new();
    for _ in 0..3 {
        takers.push(trader(&relay).await?);
    }
    let order = maker.handle.place_order(pair(), sell(100, 100_000_000))?;
    for t in &mut takers {
        see_order(t, order, 100).await?;
    }
    // All three ask for 60 of the 100 at once.
    for t in &takers {
        t.handle.command(Command::TakeOrder {
            pair: pair(),
            order_id: order,
            amount: 60,
            trade_id: darkswap_net::new_trade_id(),
            settlement: Default::default(),
        })?;
    }
    let mut agreed = 0;
    let mut rejected = Vec::new();
    for t in &mut takers {
        let trade = finished_trade(t).await?;
        match trade.state {
            TradeState::Agreed => agreed += 1,
            TradeState::Rejected { reason } => rejected.push(reason),
            other => panic!("unexpected end state {other:?}"),
        }
    }
    assert_eq!(agreed, 1, "exactly one taker gets 60 of 100");
    assert_eq!(rejected.len(), 2);
    for reason in &rejected {
        assert!(reason.contains("available"), "clear rejection: {reason}");
    }
    see_order(&mut takers[0], order, 40).await?;
    Ok(())
}

#[tokio::test]
async fn a_take_of_a_missing_or_too_small_amount_is_refused_clearly() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let mut spec = sell(100, 100_000_000);
    spec.min_fill = 50;
    let order = maker.handle.place_order(pair(), spec)?;
    see_order(&mut taker, order, 100).await?;
    let chosen = darkswap_net::new_trade_id();
    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 10,
        trade_id: chosen,
        settlement: Default::default(),
    })?;
    let reason = taker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::TakeFailed { trade_id, error }) => {
                assert_eq!(*trade_id, chosen, "the failure names the take's id");
                Some(error.to_string())
            }
            _ => None,
        })
        .await?;
    assert!(reason.contains("minimum fill is 50"), "{reason}");
    Ok(())
}

#[tokio::test]
async fn a_taker_that_restarts_after_countersigning_resumes_to_the_same_end() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut maker = trader(&relay).await?;
    let key = darkswap_net::libp2p::identity::Keypair::generate_ed25519();
    let config = darkswap_net::NodeConfig::new(vec![relay.tcp_addr()]);
    let mut taker = Peer::start_keyed(key.clone(), config.clone()).await?;
    taker.reserved().await?;
    taker.handle.command(Command::WatchPair { pair: pair() })?;
    let order = maker.handle.place_order(pair(), sell(100, 100_000_000))?;
    see_order(&mut taker, order, 100).await?;
    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 30,
        trade_id: darkswap_net::new_trade_id(),
        settlement: Default::default(),
    })?;
    // The taker has countersigned (state accepted) and then "reloads": its node stops.
    let accepted = taker
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::Trade(t)) if t.state == TradeState::Accepted => {
                Some((**t).clone())
            }
            _ => None,
        })
        .await?;
    assert!(accepted.taker_signature.is_some());
    drop(taker);
    // The same trader comes back with its saved trade: it confirms again and both agree.
    let mut again = Peer::start_keyed(key, config).await?;
    again.reserved().await?;
    again.handle.command(Command::Restore {
        orders: Vec::new(),
        trades: vec![accepted.clone()],
    })?;
    let resumed = again
        .wait_for(T, |e| match e {
            NodeEvent::Trading(TradingEvent::Trade(t))
                if t.id == accepted.id && !t.state.is_open() =>
            {
                Some(t.clone())
            }
            _ => None,
        })
        .await?;
    assert_eq!(resumed.state, TradeState::Agreed, "{resumed:?}");
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(maker_side.state, TradeState::Agreed);
    assert_eq!(maker_side.id, accepted.id);
    Ok(())
}

/// A taker at the wire level: it speaks `/darkswap/trade/2` through the relay's circuit with its
/// own session code, and records every envelope exactly as it crosses the relay.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "darkswap_net::libp2p::swarm::derive_prelude")]
struct WireBehaviour {
    relay: relay::client::Behaviour,
    trades: request_response::Behaviour<TradeCodec>,
}

struct WireTaker {
    swarm: Swarm<WireBehaviour>,
    key: Keypair,
    maker: PeerId,
    /// Every envelope sent and received, encoded as on the stream.
    carried: Vec<u8>,
}

impl WireTaker {
    async fn connect(relay: &Relay, maker: PeerId) -> anyhow::Result<Self> {
        let key = Keypair::generate_ed25519();
        let mut swarm = darkswap_net::libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_relay_client(noise::Config::new, yamux::Config::default)?
            .with_behaviour(|_, relay| WireBehaviour {
                relay,
                trades: request_response::Behaviour::with_codec(
                    TradeCodec::default(),
                    [(
                        StreamProtocol::new(TRADE_PROTOCOL),
                        ProtocolSupport::Outbound,
                    )],
                    request_response::Config::default()
                        .with_request_timeout(Duration::from_secs(10)),
                ),
            })?
            .build();
        let circuit = relay
            .tcp_addr()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(maker));
        swarm.dial(circuit)?;
        tokio::time::timeout(T, async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == maker => {
                        return Ok(())
                    }
                    SwarmEvent::OutgoingConnectionError {
                        peer_id: Some(p),
                        error,
                        ..
                    } if p == maker => bail!("cannot reach the maker: {error}"),
                    _ => {}
                }
            }
        })
        .await??;
        Ok(Self {
            swarm,
            key,
            maker,
            carried: Vec::new(),
        })
    }

    fn id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    async fn ask(&mut self, envelope: TradeEnvelope) -> anyhow::Result<TradeEnvelope> {
        self.carried.extend(envelope.encode());
        let id = self
            .swarm
            .behaviour_mut()
            .trades
            .send_request(&self.maker, envelope);
        let answer = tokio::time::timeout(T, async {
            loop {
                if let SwarmEvent::Behaviour(WireBehaviourEvent::Trades(event)) =
                    self.swarm.select_next_some().await
                {
                    match darkswap_tests::probe::answer_to(id, event) {
                        Some(Ok(Ok(response))) => return Ok(response),
                        Some(Ok(Err(error))) => bail!("request failed: {error}"),
                        _ => {}
                    }
                }
            }
        })
        .await??;
        self.carried.extend(answer.encode());
        Ok(answer)
    }

    /// Seals `request` in `session` and asks; returns the answer frame opened and decoded.
    async fn ask_sealed(
        &mut self,
        session: &mut Session,
        request: &TradeRequest,
    ) -> anyhow::Result<TradeResponse> {
        let (me, maker) = (self.id(), self.maker);
        let frame = seal(session, &request_aad(&me, &maker), request)?;
        let TradeEnvelope::Sealed(answer) = self.ask(TradeEnvelope::Sealed(frame.clone())).await?
        else {
            bail!("the maker did not answer with a sealed frame");
        };
        let opened = session.open(&response_aad(&me, &maker, &digest(&frame)), &answer)?;
        match opened.split_first() {
            Some((&KIND_DATA, body)) => Ok(TradeResponse::decode(body)?),
            _ => bail!("not a data frame"),
        }
    }
}

fn seal(session: &mut Session, aad: &[u8], request: &TradeRequest) -> anyhow::Result<Vec<u8>> {
    let mut plaintext = vec![KIND_DATA];
    plaintext.extend(request.encode());
    Ok(session.seal(aad, &plaintext)?)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_relay_carries_only_sealed_frames_and_altered_ones_are_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // An open relay, so the wire-level taker needs no auth client: this test is about what a
    // relay can read, not about whom it lets in.
    let relay = Relay::start(dir.path(), Ports::default(), &["--auth-open", "true"])?;
    let mut maker = trader(&relay).await?;
    let order = maker.handle.place_order(pair(), sell(1_000, 150_000_000))?;
    see_order(&mut maker, order, 1_000).await?;
    let mut taker = WireTaker::connect(&relay, maker.id()).await?;
    let trade_id = *b"\x5a\xc3trade-e2e-01\x17\x99";
    let take = TradeRequest::Take {
        trade_id,
        order_id: order,
        pair: pair(),
        amount: 100,
        fee_rate: 0,
        settle: Vec::new(),
    };

    // A trade message in the clear is not read: there is no session.
    assert_eq!(
        taker.ask(TradeEnvelope::Sealed(take.encode())).await?,
        TradeEnvelope::Refused(Refusal::NoSession)
    );
    // (That probe put the take on the wire in the clear on purpose, and the check below would
    // find it: record from the handshake on.)
    taker.carried.clear();
    // The handshake, then the take sealed in the session.
    let (initiator, init) = Initiator::start(&taker.key, maker.id())?;
    let TradeEnvelope::Handshake(resp) = taker.ask(TradeEnvelope::Handshake(init)).await? else {
        bail!("no handshake answer");
    };
    let mut session = initiator.finish(&resp, unix_time_ms())?;
    let aad = request_aad(&taker.id(), &maker.id());
    let take_frame = seal(&mut session, &aad, &take)?;
    let TradeEnvelope::Sealed(answer) =
        taker.ask(TradeEnvelope::Sealed(take_frame.clone())).await?
    else {
        bail!("the take was not answered with a sealed frame");
    };
    let opened = session.open(
        &response_aad(&taker.id(), &maker.id(), &digest(&take_frame)),
        &answer,
    )?;
    let TradeResponse::Accepted {
        agreement,
        maker_signature,
    } = TradeResponse::decode(&opened[1..])?
    else {
        bail!("take not accepted");
    };
    Agreement::verify(&agreement, &maker.id(), &maker_signature)?;

    // Nothing of the negotiation is readable in what the relay carried.
    let confirm = TradeRequest::Confirm {
        trade_id,
        taker_signature: Agreement::sign(&agreement, &taker.key)?,
    };
    for (what, secret) in [
        ("the take", take.encode()),
        ("the trade id", trade_id.to_vec()),
        ("the order id", order.0.to_vec()),
        ("the pair", pair().to_string().into_bytes()),
        ("the agreement", agreement.clone()),
        ("the maker's signature", maker_signature.clone()),
    ] {
        assert!(
            !contains(&taker.carried, &secret),
            "{what} crossed the relay in the clear"
        );
    }

    // An altered frame and a replayed one are refused, and the maker counts them.
    let mut altered = seal(&mut session, &aad, &confirm)?;
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    assert_eq!(
        taker.ask(TradeEnvelope::Sealed(altered)).await?,
        TradeEnvelope::Refused(Refusal::BadFrame)
    );
    assert_eq!(
        taker.ask(TradeEnvelope::Sealed(take_frame)).await?,
        TradeEnvelope::Refused(Refusal::BadFrame)
    );
    let mut metrics = ClientMetrics::default();
    maker
        .wait_for(T, |e| {
            metrics.observe(e);
            let seen = |r: &str| metrics.e2e_frames_rejected.get(r).copied().unwrap_or(0);
            (seen("no_session") == 1 && seen("forged") == 1 && seen("replay") == 1).then_some(())
        })
        .await?;
    let text = metrics.to_prometheus_text();
    assert!(
        text.contains("darkswap_client_e2e_frames_rejected_total{reason=\"forged\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("darkswap_client_e2e_sessions_established_total{role=\"responder\"} 1"),
        "{text}"
    );

    // The genuine confirmation still goes through: the maker agrees.
    assert_eq!(
        taker.ask_sealed(&mut session, &confirm).await?,
        TradeResponse::Done { trade_id }
    );
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(
        (maker_side.id, maker_side.state),
        (trade_id, TradeState::Agreed)
    );
    Ok(())
}

#[tokio::test]
async fn native_traders_set_up_a_session_before_trading() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut maker = trader(&relay).await?;
    let mut taker = trader(&relay).await?;
    let order = maker.handle.place_order(pair(), sell(500, 100_000_000))?;
    see_order(&mut taker, order, 500).await?;
    taker.handle.command(Command::TakeOrder {
        pair: pair(),
        order_id: order,
        amount: 50,
        trade_id: darkswap_net::new_trade_id(),
        settlement: Default::default(),
    })?;
    // The taker's session comes first, then the trade ends agreed on both sides.
    let mut metrics = ClientMetrics::default();
    let trade = taker
        .wait_for(T, |e| {
            metrics.observe(e);
            match e {
                NodeEvent::Trading(TradingEvent::Trade(t)) if !t.state.is_open() => {
                    Some((**t).clone())
                }
                _ => None,
            }
        })
        .await?;
    assert_eq!(trade.state, TradeState::Agreed, "{trade:?}");
    assert_eq!(metrics.e2e_sessions.get("initiator"), Some(&1));
    assert!(metrics.e2e_frames_rejected.is_empty());
    let maker_side = finished_trade(&mut maker).await?;
    assert_eq!(maker_side.state, TradeState::Agreed);
    Ok(())
}

#[tokio::test]
async fn live_trade_sessions_rekey_in_band_and_keep_working() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    // Fresh keys after every 2 frames sent (the default is 4096 or 10 minutes).
    let config = || {
        let mut c = darkswap_net::NodeConfig::new(vec![relay.tcp_addr()]);
        c.e2e_rekey = darkswap_e2e::RekeyPolicy {
            after_messages: 2,
            after_ms: 3_600_000,
        };
        c
    };
    let maker = Peer::trader_with(config(), &pair()).await?;
    let mut taker = Peer::trader_with(config(), &pair()).await?;
    let order = maker.handle.place_order(pair(), sell(1_000, 100_000_000))?;
    see_order(&mut taker, order, 1_000).await?;
    let mut metrics = ClientMetrics::default();
    let mut epochs = Vec::new();
    for i in 1..=3u64 {
        taker.handle.command(Command::TakeOrder {
            pair: pair(),
            order_id: order,
            amount: 10,
            trade_id: darkswap_net::new_trade_id(),
            settlement: Default::default(),
        })?;
        let mut agreed = false;
        // Until this take is agreed and the maker's remainder shows in the book.
        taker
            .wait_for(T, |e| {
                metrics.observe(e);
                match e {
                    NodeEvent::Trading(TradingEvent::E2e(darkswap_net::E2eEvent::Rekeyed {
                        epoch,
                        ..
                    })) => epochs.push(*epoch),
                    NodeEvent::Trading(TradingEvent::Trade(t)) if !t.state.is_open() => {
                        assert_eq!(t.state, TradeState::Agreed, "{t:?}");
                        agreed = true;
                    }
                    NodeEvent::Trading(TradingEvent::Book(v))
                        if agreed
                            && v.pair == pair()
                            && v.orders
                                .iter()
                                .any(|o| o.id == order && o.amount == 1_000 - 10 * i) =>
                    {
                        return Some(());
                    }
                    _ => {}
                }
                None
            })
            .await?;
    }
    assert!(!epochs.is_empty(), "no rekey in three trades");
    assert!(epochs.windows(2).all(|w| w[1] > w[0]), "epochs {epochs:?}");
    assert!(
        metrics.e2e_frames_rejected.is_empty(),
        "{:?}",
        metrics.e2e_frames_rejected
    );
    assert_eq!(
        metrics.e2e_sessions.get("initiator"),
        Some(&1),
        "one session, rekeyed in place"
    );
    Ok(())
}
