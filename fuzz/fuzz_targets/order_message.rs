//! Signed order / cancel / keep-alive gossip messages: `verify_order_message`.
//!
//! Input: `flags u8 | now offset u64 | message`. Flag bit 0: `Freshness::Stored` (else `Live`);
//! bit 1: expect the pair `BTC/USDT`; bit 2: the message is a *body*, signed here by a fixed key
//! (so the fuzzer reaches the body decoder and the rules behind the signature check).
//!
//! Asserts, for every accepted message: it is within the size cap and kept byte for byte; its pair
//! is canonical (and the expected one); its time is within the skew for its freshness; an order
//! has a positive amount and price, a minimum fill within the amount, a quote amount that fits,
//! and an expiry within the documented lifetime; a body signed here names our key as maker; and
//! re-signing the decoded body (encode) then verifying it again (decode) gives the same body.
#![no_main]

use darkswap_fuzz::{identity, sign_raw_order_body, Input, SEED_NOW_MS};
use darkswap_orderbook::{quote_amount, Pair};
use darkswap_proto::order::{
    sign_order_message, verify_order_message, Freshness, OrderAction, MAX_CLOCK_SKEW_MS,
    MAX_ORDER_LIFETIME_MS, MAX_ORDER_MESSAGE_BYTES, MIN_ORDER_LIFETIME_MS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let flags = input.u8();
    let now_ms = SEED_NOW_MS.wrapping_add(input.u64());
    let freshness = if flags & 1 != 0 {
        Freshness::Stored
    } else {
        Freshness::Live
    };
    let usdt = Pair::parse("BTC/USDT").unwrap();
    let expected = (flags & 2 != 0).then_some(&usdt);
    let key = identity(0);
    let message = if flags & 4 != 0 {
        sign_raw_order_body(&key, input.rest())
    } else {
        input.rest().to_vec()
    };

    let result = verify_order_message(&message, expected, freshness, now_ms);
    assert_eq!(
        result,
        verify_order_message(&message, expected, freshness, now_ms),
        "verification is deterministic"
    );
    let Ok(verified) = result else { return };

    assert!(message.len() <= MAX_ORDER_MESSAGE_BYTES);
    assert_eq!(verified.raw, message);
    let body = &verified.body;
    assert_eq!(Pair::parse(&body.pair.to_string()).as_ref(), Ok(&body.pair));
    if let Some(p) = expected {
        assert_eq!(&body.pair, p);
    }
    match freshness {
        Freshness::Live => assert!(body.sent_at_ms.abs_diff(now_ms) <= MAX_CLOCK_SKEW_MS),
        Freshness::Stored => assert!(body.sent_at_ms <= now_ms.saturating_add(MAX_CLOCK_SKEW_MS)),
    }
    if let OrderAction::Order(spec) = &body.action {
        assert!(spec.amount > 0 && spec.price.0 > 0);
        assert!(spec.min_fill <= spec.amount);
        assert!(quote_amount(spec.amount, spec.price).is_some());
        assert!(spec.expires_at_ms > now_ms);
        if freshness == Freshness::Live {
            assert!(spec.expires_at_ms >= now_ms.saturating_add(MIN_ORDER_LIFETIME_MS));
        }
        assert!(spec.expires_at_ms <= body.sent_at_ms.saturating_add(MAX_ORDER_LIFETIME_MS));
    }
    assert!(verified.order_id().is_some() == !matches!(body.action, OrderAction::KeepAlive { .. }));
    if flags & 4 != 0 {
        assert_eq!(verified.maker, key.public().to_peer_id());
    }

    // Round trip through the encoder: what was accepted re-encodes, and decodes to the same body.
    if freshness == Freshness::Live {
        let again = sign_order_message(&key, body, now_ms).expect("an accepted body re-signs");
        let back = verify_order_message(&again, expected, freshness, now_ms)
            .expect("a re-signed accepted body verifies");
        assert_eq!(&back.body, body);
        assert_eq!(back.maker, key.public().to_peer_id());
    }
});
