//! The driver's own decisions, fed answers as the chain servers give them: what it asks and in
//! which order, when it waits, what it refuses, and its bounds. (Two drivers settling through
//! real servers: `tests/tests/cli_settle.rs`, on a regtest chain.)

use darkswap_orderbook::{OrderId, Pair, Price, Side as BookSide, PRICE_SCALE};
use darkswap_proto::trade::Agreement;
use darkswap_wallet::keys::Keychain;
use darkswap_wallet::mnemonic::Mnemonic;
use darkswap_wallet::network::Network;
use darkswap_wallet::sync::Server;
use libp2p_identity::Keypair;

use super::*;

const T0: u64 = 1_700_000_000_000;

fn keys() -> Keychain {
    let phrase = "legal winner thank year wave sausage worth useful legal winner thank yellow";
    Keychain::new(&Mnemonic::parse(phrase).unwrap(), "", Network::Regtest).unwrap()
}

fn driver(with_keys: bool) -> Driver<Keychain> {
    let me = Keypair::generate_ed25519().public().to_peer_id().to_bytes();
    let mut d = Driver::new(me, Config::default());
    if with_keys {
        d.set_keys(Some(keys()), T0);
    }
    d
}

fn take(id: u8, pair: &str) -> TakeRequest {
    TakeRequest {
        trade_id: [id; 16],
        pair: Pair::parse(pair).unwrap(),
        order_id: OrderId([9; 16]),
        maker_side: BookSide::Sell,
        price: Price(PRICE_SCALE / 1_000),
        amount: 1_000,
        fee_rate: 2,
    }
}

fn events(d: &mut Driver<Keychain>) -> Vec<Event> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

fn asked(d: &mut Driver<Keychain>, now: u64) -> Option<(Server, String)> {
    d.next_request(now).map(|r| (r.server, r.path))
}

const DOG: &[u8] = br#"{"entry":{"divisibility":0,"spaced_rune":"D\u2022OG"},"id":"120:1"}"#;

#[test]
fn a_take_asks_the_rune_then_waits_for_ord_to_reach_the_tip_before_reading_the_wallet() {
    let mut d = driver(true);
    d.take(take(1, "RUNE:DOG/BTC"), T0).unwrap();
    assert_eq!(asked(&mut d, T0), Some((Server::Ord, "/rune/DOG".into())));
    // One request at a time.
    assert_eq!(asked(&mut d, T0), None);
    d.on_answer(200, DOG, T0);
    assert_eq!(
        asked(&mut d, T0),
        Some((Server::Esplora, "/blocks/tip/height".into()))
    );
    d.on_answer(200, b"105", T0);
    assert_eq!(
        asked(&mut d, T0),
        Some((Server::Ord, "/blockheight".into()))
    );
    d.on_answer(200, b"104", T0);
    assert!(matches!(
        events(&mut d).as_slice(),
        [Event::Trouble(JobError::Behind { ord: 104, tip: 105 })]
    ));
    // ord behind: asked again after a second, not before.
    assert_eq!(asked(&mut d, T0 + ORD_BEHIND_RETRY_MS - 1), None);
    let t1 = T0 + ORD_BEHIND_RETRY_MS;
    assert_eq!(
        asked(&mut d, t1),
        Some((Server::Esplora, "/blocks/tip/height".into()))
    );
    d.on_answer(200, b"105", t1);
    asked(&mut d, t1);
    d.on_answer(200, b"105", t1);
    // Caught up: the wallet's scan begins (with the chain's tip).
    assert_eq!(
        asked(&mut d, t1),
        Some((Server::Esplora, "/blocks/tip/height".into()))
    );
    assert_eq!(d.counters().troubles.get("ord_behind"), Some(&1));
    let view = d.view(&[1; 16]).unwrap();
    assert_eq!(view.step, None, "still preparing");
}

#[test]
fn a_rune_ord_does_not_know_refuses_the_take_and_a_wrong_answer_is_a_trouble() {
    let mut d = driver(true);
    d.take(take(1, "RUNE:NOPE/BTC"), T0).unwrap();
    asked(&mut d, T0);
    d.on_answer(404, b"", T0);
    match events(&mut d).as_slice() {
        [Event::TakeRefused {
            trade_id,
            error: DriverError::NoRune(name),
        }] => {
            assert_eq!(*trade_id, [1; 16]);
            assert_eq!(name, "NOPE");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(d.counters().takes_refused, 1);
    // ord answering about another rune than the one asked is not believed.
    d.take(take(2, "RUNE:CAT/BTC"), T0).unwrap();
    asked(&mut d, T0);
    d.on_answer(200, DOG, T0);
    assert!(matches!(
        events(&mut d).as_slice(),
        [Event::Trouble(JobError::Rune(_))]
    ));
    assert_eq!(d.counters().troubles.get("rune"), Some(&1));
}

#[test]
fn failed_reads_are_retried_after_doubling_waits_and_a_take_that_waits_too_long_is_refused() {
    let mut d = driver(true);
    d.take(take(1, "RUNE:DOG/BTC"), T0).unwrap();
    let mut now = T0;
    for wait in [500, 1_000, 2_000, 4_000, 8_000, 16_000, 16_000] {
        let req = asked(&mut d, now).expect("asks again once the wait is over");
        assert_eq!(req.1, "/rune/DOG");
        d.on_answer(503, b"", now);
        assert_eq!(asked(&mut d, now + wait - 1), None, "waits {wait} ms");
        now += wait;
    }
    assert_eq!(d.counters().troubles.get("status"), Some(&7));
    // No answer at all counts as a failed read too.
    asked(&mut d, now);
    d.on_no_answer(now);
    assert_eq!(d.counters().troubles.get("status"), Some(&8));
    // Past the step deadline the take is refused, saying what it waited on.
    d.tick(T0 + Params::DEFAULT.step_timeout_ms);
    let refused = events(&mut d).into_iter().find_map(|e| match e {
        Event::TakeRefused { error, .. } => Some(error.to_string()),
        _ => None,
    });
    assert_eq!(
        refused.as_deref(),
        Some("could not begin within 120 s: ord has not named the pair's rune yet")
    );
}

#[test]
fn takes_on_pairs_that_do_not_settle_or_with_a_locked_wallet_are_refused_at_once() {
    let mut d = driver(false);
    assert!(matches!(
        d.take(take(1, "RUNE:DOG/BTC"), T0),
        Err(DriverError::Locked)
    ));
    let mut d = driver(true);
    assert!(matches!(
        d.take(take(1, "BTC/USDT"), T0),
        Err(DriverError::Deal(DealError::Pair(_)))
    ));
    d.take(take(1, "RUNE:DOG/BTC"), T0).unwrap();
    assert!(matches!(
        d.take(take(1, "RUNE:DOG/BTC"), T0),
        Err(DriverError::Desk(DeskError::Exists))
    ));
    for i in 2..=MAX_PENDING as u8 {
        d.take(take(i, "RUNE:DOG/BTC"), T0).unwrap();
    }
    assert!(matches!(
        d.take(take(200, "RUNE:DOG/BTC"), T0),
        Err(DriverError::Busy(MAX_PENDING))
    ));
}

fn agreement(me: &[u8], pair: &str, fee_rate: u64) -> Vec<u8> {
    let other = Keypair::generate_ed25519().public().to_peer_id();
    let me = libp2p_identity::PeerId::from_bytes(me).unwrap();
    Agreement::new(
        [5; 16],
        Pair::parse(pair).unwrap(),
        OrderId([2; 16]),
        me,
        other,
        BookSide::Sell,
        Price(PRICE_SCALE / 1_000),
        10_000,
        fee_rate,
        T0,
    )
    .unwrap()
    .encode()
}

#[test]
fn agreements_without_settlement_are_left_alone_and_a_maker_that_cannot_begin_tells_the_taker() {
    let mut d = driver(false);
    let me = d.me.clone();
    assert!(!d
        .on_agreed(&agreement(&me, "RUNE:DOG/BTC", 0), &[], T0)
        .unwrap());
    assert!(!d
        .on_agreed(&agreement(&me, "BTC/USDT", 2), &[], T0)
        .unwrap());
    assert!(d.on_agreed(b"junk", &[], T0).is_err());
    // Ours, as the maker, with the wallet locked: it waits, then gives up at the deadline and
    // tells the taker.
    let a = agreement(&me, "RUNE:DOG/BTC", 2);
    assert!(d.on_agreed(&a, &[], T0).unwrap());
    assert!(!d.on_agreed(&a, &[], T0).unwrap(), "once");
    asked(&mut d, T0);
    d.on_answer(200, DOG, T0);
    assert_eq!(d.view(&[5; 16]).unwrap().step, None);
    d.tick(T0 + Params::DEFAULT.step_timeout_ms);
    let evs = events(&mut d);
    let abort = evs.iter().find_map(|e| match e {
        Event::Task(Task::Send { trade_id, message }) => Some((*trade_id, message.clone())),
        _ => None,
    });
    let (id, message) = abort.expect("the taker is told");
    assert_eq!(id, [5; 16]);
    match SettleMessage::decode(&message).unwrap() {
        SettleMessage::Abort(why) => assert!(why.contains("the wallet is locked"), "{why}"),
        other => panic!("{other:?}"),
    }
    let view = d.view(&[5; 16]).unwrap();
    assert_eq!(view.step, Some(Step::Aborted));
    assert_eq!(d.counters().not_begun, 1);
}

#[test]
fn messages_wait_while_the_wallet_is_locked_within_a_bound() {
    let mut d = driver(false);
    let m = SettleMessage::Abort("x".into()).encode();
    for _ in 0..MAX_HELD {
        d.on_message([3; 16], &m, T0);
    }
    assert!(events(&mut d).is_empty());
    d.on_message([3; 16], &m, T0);
    assert!(matches!(
        events(&mut d).as_slice(),
        [Event::Refused {
            label: "held_overflow",
            ..
        }]
    ));
    // Unlocked: the held messages reach the desk (which keeps early ones for a trade not begun,
    // 4 at most, and counts the rest).
    d.set_keys(Some(keys()), T0);
    let overflow = events(&mut d)
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Refused {
                    label: "early_overflow",
                    ..
                }
            )
        })
        .count();
    assert_eq!(overflow, MAX_HELD - crate::desk::MAX_EARLY_PER_TRADE);
}

#[test]
fn counters_read_as_prometheus_text() {
    let mut c = Counters::default();
    c.refused.insert("runes_claim", 2);
    c.ended.insert("settled", 1);
    c.takes_refused = 3;
    let text = c.to_prometheus_text();
    assert!(text.contains("darkswap_client_settle_refused_total{reason=\"runes_claim\"} 2\n"));
    assert!(text.contains("darkswap_client_settle_ended_total{step=\"settled\"} 1\n"));
    assert!(text.contains("darkswap_client_settle_failures_total{kind=\"take_refused\"} 3\n"));
    assert!(text.contains("# TYPE darkswap_client_settle_chain_troubles_total counter\n"));
}

fn holdings(k: &Keychain) -> Holdings {
    use bitcoin::hashes::Hash;
    use darkswap_wallet::keys::{Account, KeyPath};
    use darkswap_wallet::utxo::{Assets, Utxo};
    let path = KeyPath::receive(Account::Payment, 0);
    let utxo = Utxo {
        outpoint: bitcoin::OutPoint::new(bitcoin::Txid::from_byte_array([4; 32]), 0),
        txout: bitcoin::TxOut {
            value: Amount::from_sat(100_000),
            script_pubkey: k.derive(path).unwrap().script_pubkey,
        },
        path,
        confirmations: 1,
        assets: Assets::none(),
    };
    Holdings::read(k, vec![utxo], |_, _| 0, BTreeMap::new()).unwrap()
}

#[test]
fn a_wallet_read_from_elsewhere_is_used_unless_the_wallet_changed_since_it_began() {
    let mut d = driver(true);
    let k = keys();
    let begun = d.wallet_generation();
    d.wallet_changed();
    // Begun before the change: not used, so the take still reads the wallet itself.
    d.set_holdings(holdings(&k), begun, T0);
    d.take(take(1, "RUNE:DOG/BTC"), T0).unwrap();
    asked(&mut d, T0);
    d.on_answer(200, DOG, T0);
    assert_eq!(
        asked(&mut d, T0),
        Some((Server::Esplora, "/blocks/tip/height".into())),
        "the wallet read begins (after the height check)"
    );
    // A read begun now is used at once: the take goes out with our offer.
    let mut d = driver(true);
    let now = d.wallet_generation();
    d.set_holdings(holdings(&k), now, T0);
    d.take(take(2, "RUNE:DOG/BTC"), T0).unwrap();
    asked(&mut d, T0);
    d.on_answer(200, DOG, T0);
    match events(&mut d).as_slice() {
        [Event::Take { request, offer }] => {
            assert_eq!(request.trade_id, [2; 16]);
            assert!(matches!(
                SettleMessage::decode(offer).unwrap(),
                SettleMessage::Offer(_)
            ));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(asked(&mut d, T0), None, "no read of its own");
    // The offered output is held for the trade.
    assert_eq!(
        d.locks().owner(&holdings(&k).utxos[0].outpoint),
        Some(&[2; 16])
    );
}
