//! What a trader types and what names a gossip topic: `OrderInput::parse` (the CLI and web form),
//! `Price::parse_decimal`, `Pair::parse` and `parse_order_topic`.
//!
//! Input: `now offset u32 | text`, the text split on newlines into topic, side, amount, price,
//! minimum fill and lifetime.
//!
//! Asserts: a parsed topic is canonical (`order_topic` gives it back); a parsed pair and price
//! print to text that parses to the same value; an order the form accepts has a positive amount
//! and price, a minimum fill within the amount, a quote amount that fits, and an expiry within
//! the documented lifetime; and what the form accepts every relay accepts (it signs and verifies
//! as a live order, decoding to the same order).
#![no_main]

use darkswap_fuzz::{identity, Input, SEED_NOW_MS};
use darkswap_orderbook::{quote_amount, Pair, Price};
use darkswap_proto::order::{
    order_topic, parse_order_topic, sign_order_message, verify_order_message, Freshness,
    OrderAction, OrderBody, OrderInput, MAX_ORDER_LIFETIME_MS, MIN_ORDER_LIFETIME_MS,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let offset = u64::from(u32::from_le_bytes([
        input.u8(),
        input.u8(),
        input.u8(),
        input.u8(),
    ]));
    let now_ms = SEED_NOW_MS + offset;
    let text = String::from_utf8_lossy(input.rest());
    let mut fields = text.splitn(6, '\n');
    let mut next = || fields.next().unwrap_or("");
    let topic = next();

    if let Some(pair) = parse_order_topic(topic) {
        assert_eq!(order_topic(&pair), topic);
    }
    let pair = Pair::parse(topic).ok();
    if let Some(pair) = &pair {
        assert_eq!(Pair::parse(&pair.to_string()).as_ref(), Ok(pair));
        assert_eq!(parse_order_topic(&order_topic(pair)).as_ref(), Some(pair));
    }

    let form = OrderInput {
        side: next(),
        amount: next(),
        price: next(),
        min_fill: next(),
        ttl_secs: next(),
    };
    if let Ok(price) = Price::parse_decimal(form.price) {
        assert!(price.0 > 0);
        assert_eq!(Price::parse_decimal(&price.to_string()), Ok(price));
    }
    let Ok(spec) = form.parse(now_ms) else { return };
    assert!(spec.amount > 0 && spec.price.0 > 0);
    assert!(spec.min_fill <= spec.amount);
    assert!(quote_amount(spec.amount, spec.price).is_some());
    assert!(spec.expires_at_ms >= now_ms + MIN_ORDER_LIFETIME_MS);
    assert!(spec.expires_at_ms <= now_ms + MAX_ORDER_LIFETIME_MS);

    let pair = pair.unwrap_or_else(|| Pair::parse("RUNE:DOG/BTC").unwrap());
    let body = OrderBody {
        pair: pair.clone(),
        seq: 1,
        sent_at_ms: now_ms,
        action: OrderAction::Order(spec),
    };
    let key = identity(0);
    let signed = sign_order_message(&key, &body, now_ms).expect("the form's order is publishable");
    let verified = verify_order_message(&signed, Some(&pair), Freshness::Live, now_ms)
        .expect("the form's order is accepted by a relay");
    assert_eq!(verified.body, body);
});
