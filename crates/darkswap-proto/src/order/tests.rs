use super::*;
use darkswap_orderbook::PRICE_SCALE;

const NOW: u64 = 1_800_000_000_000;

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

fn order_body(seq: u64) -> OrderBody {
    OrderBody {
        pair: pair(),
        seq,
        sent_at_ms: NOW,
        action: OrderAction::Order(OrderSpec {
            nonce: 7,
            side: Side::Sell,
            price: Price(250),
            amount: 1_000,
            min_fill: 100,
            expires_at_ms: NOW + 3_600_000,
        }),
    }
}

/// Signs a wire body as given, bypassing `sign_order_message`'s checks, as a hostile peer would.
fn sign_raw(keypair: &Keypair, body: &wire::Body) -> Vec<u8> {
    let body = body.encode_to_vec();
    let mut signed = ORDER_SIGNING_DOMAIN.to_vec();
    signed.extend_from_slice(&body);
    wire::Signed {
        public_key: keypair.public().encode_protobuf(),
        signature: keypair.sign(&signed).unwrap(),
        body,
    }
    .encode_to_vec()
}

#[test]
fn sign_and_verify_round_trip() {
    let keypair = Keypair::generate_ed25519();
    let body = order_body(1);
    let bytes = sign_order_message(&keypair, &body, NOW).unwrap();
    assert!(bytes.len() < 300, "{} bytes", bytes.len());
    let verified =
        verify_order_message(&bytes, Some(&pair()), Freshness::Live, NOW + 1_000).unwrap();
    assert_eq!(verified.maker, keypair.public().to_peer_id());
    assert_eq!(verified.body, body);
    assert_eq!(verified.raw, bytes);
    assert_eq!(
        verified.order_id(),
        Some(order_id(&keypair.public().to_peer_id(), 7))
    );
    assert_eq!(order_topic(&pair()), "darkswap/orders/1/RUNE:DOG-BTC");
    assert_eq!(
        parse_order_topic("darkswap/orders/1/RUNE:DOG-BTC"),
        Some(pair())
    );
    assert_eq!(parse_order_topic("darkswap/orders/1/rune:dog-btc"), None);
    assert_eq!(parse_order_topic("darkswap/orders/2/RUNE:DOG-BTC"), None);
    assert_eq!(parse_order_topic("darkswap/orders/1/BTC"), None);
}

#[test]
fn order_ids_depend_on_maker_and_nonce() {
    let a = Keypair::generate_ed25519().public().to_peer_id();
    let b = Keypair::generate_ed25519().public().to_peer_id();
    assert_ne!(order_id(&a, 1), order_id(&b, 1));
    assert_ne!(order_id(&a, 1), order_id(&a, 2));
    assert_eq!(order_id(&a, 1), order_id(&a, 1));
}

#[test]
fn every_single_byte_change_is_refused() {
    let keypair = Keypair::generate_ed25519();
    let bytes = sign_order_message(&keypair, &order_body(1), NOW).unwrap();
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut tampered = bytes.clone();
            tampered[i] ^= bit;
            assert!(
                verify_order_message(&tampered, Some(&pair()), Freshness::Live, NOW).is_err(),
                "flipping bit {bit:#x} of byte {i} was accepted"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(verify_order_message(&bytes[..len], None, Freshness::Live, NOW).is_err());
    }
}

/// Re-encodings of one signed message: each still decodes to the same key, body and signature,
/// but has other bytes (so another gossip message id).
fn re_encodings(bytes: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let signed = wire::Signed::decode(bytes).unwrap();
    let field = |tag: u8, value: &[u8]| -> Vec<u8> {
        let mut out = vec![(tag << 3) | 2, value.len() as u8];
        out.extend_from_slice(value);
        out
    };
    let mut unknown_field = bytes.to_vec();
    unknown_field.extend_from_slice(&[0x78, 0x01]);
    let reordered = [
        field(3, &signed.signature),
        field(2, &signed.body),
        field(1, &signed.public_key),
    ]
    .concat();
    let repeated = [field(1, &[0; 4]), bytes.to_vec()].concat();
    // The key itself, with an unknown field appended inside its own encoding.
    let mut key = signed.public_key.clone();
    key.extend_from_slice(&[0x78, 0x01]);
    let key_re_encoded = wire::Signed {
        public_key: key,
        ..signed
    }
    .encode_to_vec();
    vec![
        ("an unknown field appended", unknown_field),
        ("the fields in reverse order", reordered),
        ("a field repeated (the last one wins)", repeated),
        ("the key with an unknown field", key_re_encoded),
    ]
}

#[test]
fn re_encoded_copies_are_refused() {
    let keypair = Keypair::generate_ed25519();
    let bytes = sign_order_message(&keypair, &order_body(1), NOW).unwrap();
    assert!(verify_order_message(&bytes, Some(&pair()), Freshness::Live, NOW).is_ok());
    for (how, copy) in re_encodings(&bytes) {
        assert_ne!(copy, bytes);
        assert_eq!(
            verify_order_message(&copy, Some(&pair()), Freshness::Live, NOW),
            Err(OrderReject::NonCanonical),
            "{how}"
        );
        assert_eq!(
            crate::order_batch::verify_order_messages(
                &[&copy],
                Some(&pair()),
                Freshness::Live,
                NOW
            ),
            vec![Err(OrderReject::NonCanonical)],
            "{how}, in a batch"
        );
    }
}

#[test]
fn stateless_rules_are_enforced() {
    let keypair = Keypair::generate_ed25519();
    let bytes = sign_order_message(&keypair, &order_body(1), NOW).unwrap();
    let other = Pair::parse("BTC/USDT").unwrap();
    assert_eq!(
        verify_order_message(&bytes, Some(&other), Freshness::Live, NOW),
        Err(OrderReject::BadPair)
    );
    assert_eq!(
        verify_order_message(&bytes, None, Freshness::Live, NOW + MAX_CLOCK_SKEW_MS + 1),
        Err(OrderReject::ClockSkew)
    );
    assert_eq!(
        verify_order_message(
            &vec![0u8; MAX_ORDER_MESSAGE_BYTES + 1],
            None,
            Freshness::Live,
            NOW
        ),
        Err(OrderReject::TooLarge)
    );

    let mut bad = order_body(1);
    if let OrderAction::Order(spec) = &mut bad.action {
        spec.min_fill = spec.amount + 1;
    }
    assert_eq!(
        sign_order_message(&keypair, &bad, NOW),
        Err(OrderReject::BadOrder)
    );
    let mut short = order_body(1);
    if let OrderAction::Order(spec) = &mut short.action {
        spec.expires_at_ms = NOW + MIN_ORDER_LIFETIME_MS - 1;
    }
    assert_eq!(
        sign_order_message(&keypair, &short, NOW),
        Err(OrderReject::Expired)
    );
    let mut long = order_body(1);
    if let OrderAction::Order(spec) = &mut long.action {
        spec.expires_at_ms = NOW + MAX_ORDER_LIFETIME_MS + 1;
    }
    assert_eq!(
        sign_order_message(&keypair, &long, NOW),
        Err(OrderReject::LifetimeTooLong)
    );

    // What a hostile peer could sign directly is refused by every receiver.
    let mut wire_body = wire::Body::from_domain(&order_body(1));
    wire_body.pair = "rune:dog/btc".into();
    assert_eq!(
        verify_order_message(&sign_raw(&keypair, &wire_body), None, Freshness::Live, NOW),
        Err(OrderReject::BadPair)
    );
    let mut wire_body = wire::Body::from_domain(&order_body(1));
    wire_body.version = 2;
    assert_eq!(
        verify_order_message(&sign_raw(&keypair, &wire_body), None, Freshness::Live, NOW),
        Err(OrderReject::BadVersion)
    );
    let mut wire_body = wire::Body::from_domain(&order_body(1));
    if let Some(wire::Kind::Order(o)) = &mut wire_body.kind {
        o.side = 3;
    }
    assert_eq!(
        verify_order_message(&sign_raw(&keypair, &wire_body), None, Freshness::Live, NOW),
        Err(OrderReject::Malformed)
    );
    let mut wire_body = wire::Body::from_domain(&order_body(1));
    if let Some(wire::Kind::Order(o)) = &mut wire_body.kind {
        o.price = 0;
    }
    assert_eq!(
        verify_order_message(&sign_raw(&keypair, &wire_body), None, Freshness::Live, NOW),
        Err(OrderReject::BadOrder)
    );
}

#[test]
fn stored_messages_may_be_old_but_not_expired_or_from_the_future() {
    let keypair = Keypair::generate_ed25519();
    let bytes = sign_order_message(&keypair, &order_body(1), NOW).unwrap();
    let hour_later = NOW + 3_599_000;
    assert_eq!(
        verify_order_message(&bytes, None, Freshness::Live, hour_later),
        Err(OrderReject::ClockSkew)
    );
    assert!(verify_order_message(&bytes, None, Freshness::Stored, hour_later).is_ok());
    assert_eq!(
        verify_order_message(&bytes, None, Freshness::Stored, NOW + 3_600_000),
        Err(OrderReject::Expired)
    );
    assert_eq!(
        verify_order_message(&bytes, None, Freshness::Stored, NOW - MAX_CLOCK_SKEW_MS - 1),
        Err(OrderReject::ClockSkew)
    );
}

#[test]
fn cancels_and_keep_alives_round_trip() {
    let keypair = Keypair::generate_ed25519();
    let maker = keypair.public().to_peer_id();
    let mut live = vec![(order_id(&maker, 2), 5), (order_id(&maker, 1), 9)];
    let digest = live_orders_digest(&mut live);
    let mut reordered = vec![(order_id(&maker, 1), 9), (order_id(&maker, 2), 5)];
    assert_eq!(live_orders_digest(&mut reordered), digest);
    let mut changed = vec![(order_id(&maker, 1), 8), (order_id(&maker, 2), 5)];
    assert_ne!(live_orders_digest(&mut changed), digest);
    for action in [
        OrderAction::Cancel {
            order_id: order_id(&maker, 1),
            filled: false,
        },
        OrderAction::Cancel {
            order_id: order_id(&maker, 1),
            filled: true,
        },
        OrderAction::KeepAlive {
            digest,
            live_orders: 2,
        },
    ] {
        let body = OrderBody {
            pair: pair(),
            seq: 9,
            sent_at_ms: NOW,
            action,
        };
        let bytes = sign_order_message(&keypair, &body, NOW).unwrap();
        assert_eq!(
            verify_order_message(&bytes, None, Freshness::Live, NOW)
                .unwrap()
                .body,
            body
        );
    }
}

#[test]
fn reject_labels_are_unique() {
    let labels: std::collections::HashSet<_> =
        OrderReject::ALL.iter().map(|r| r.as_str()).collect();
    assert_eq!(labels.len(), OrderReject::ALL.len());
}

#[cfg(not(target_arch = "wasm32"))]
proptest::proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1200)) {
        let _ = verify_order_message(&bytes, None, Freshness::Live, NOW);
    }
}

#[test]
fn typed_orders_are_checked_with_reasons() {
    let input = |amount, price, min_fill, ttl_secs| OrderInput {
        side: "sell",
        amount,
        price,
        min_fill,
        ttl_secs,
    };
    let pair = Pair::parse("RUNE:X/BTC").unwrap();
    let spec = input("100", "0.5", "", "3600").parse(&pair, NOW).unwrap();
    assert_eq!(
        (spec.amount, spec.price, spec.min_fill),
        (100, Price(50_000_000), 0)
    );
    assert_eq!(spec.expires_at_ms, NOW + 3_600_000);
    let err = |i: OrderInput| i.parse(&pair, NOW).unwrap_err().to_string();
    assert!(err(input("x", "0.5", "", "60")).contains("amount"));
    assert!(err(input("0", "0.5", "", "60")).contains("zero"));
    assert!(err(input("100", "0.123456789", "", "60")).contains("price"));
    assert!(err(input("100", "1", "101", "60")).contains("minimum"));
    assert!(err(input("100", "1", "", "5")).contains("expiry"));
    assert!(err(OrderInput {
        side: "hold",
        ..input("1", "1", "", "60")
    })
    .contains("side"));
    // In display units: a rune of divisibility 2, priced in sat per rune.
    let mut units = darkswap_orderbook::Units::default().with_btc(darkswap_orderbook::BtcUnit::Sat);
    assert!(units.learn_rune("X", 2));
    let spec = input("1.5", "500", "0.25", "3600")
        .parse_in(&units.pair(&pair), NOW)
        .unwrap();
    assert_eq!(
        (spec.amount, spec.price, spec.min_fill),
        (150, Price(5 * PRICE_SCALE), 25)
    );
    assert!(input("1.505", "500", "", "3600")
        .parse_in(&units.pair(&pair), NOW)
        .unwrap_err()
        .to_string()
        .contains("at most 2 decimal places"));
}
