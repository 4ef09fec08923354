//! What a trader types and what names a gossip topic: `OrderInput::parse` (the CLI) and
//! `OrderInput::parse_in` (the web form, in display units), `Price::parse_decimal`,
//! `Pair::parse` and `parse_order_topic`.
//!
//! Input: `now offset u32 | units u8 | text`, the text split on newlines into topic, side,
//! amount, price, minimum fill and lifetime; `units` is a rune divisibility (low 6 bits, mod 39)
//! given to every rune of the pair and BTC written in sat (high bit) or BTC.
//!
//! Asserts: a parsed topic is canonical (`order_topic` gives it back); a parsed pair and price
//! print to text that parses to the same value; an order the form accepts has a positive amount
//! and price, a minimum fill within the amount, a quote amount that fits, and an expiry within
//! the documented lifetime; and what the form accepts every relay accepts (it signs and verifies
//! as a live order, decoding to the same order).
#![no_main]

use darkswap_fuzz::{identity, Input, SEED_NOW_MS};
use darkswap_orderbook::{quote_amount, Asset, BtcUnit, Pair, Price, Units};
use darkswap_proto::order::{
    order_topic, parse_order_topic, sign_order_message, verify_order_message, Freshness,
    OrderAction, OrderBody, OrderInput, MAX_ORDER_LIFETIME_MS, MIN_ORDER_LIFETIME_MS,
};
use libfuzzer_sys::fuzz_target;

fn dog() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let offset = u64::from(u32::from_le_bytes([
        input.u8(),
        input.u8(),
        input.u8(),
        input.u8(),
    ]));
    let now_ms = SEED_NOW_MS + offset;
    let units_byte = input.u8();
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
    // The same text in display units: what it accepts reads back exactly in them.
    if let Some(pair) = &pair {
        let mut units = Units::default().with_btc(if units_byte & 0x80 != 0 {
            BtcUnit::Sat
        } else {
            BtcUnit::Btc
        });
        for asset in [&pair.base, &pair.quote] {
            if let Asset::Rune(name) = asset {
                assert!(units.learn_rune(name, (units_byte & 0x3f) % 39));
            }
        }
        let u = units.pair(pair);
        if let Ok(spec) = form.parse_in(&u, now_ms) {
            assert!(spec.amount > 0 && spec.price.0 > 0 && spec.min_fill <= spec.amount);
            assert!(quote_amount(spec.amount, spec.price).is_some());
            let amount = u.base.number(u128::from(spec.amount));
            assert_eq!(u.base.read(&amount), Ok(spec.amount));
            assert_eq!(u.read_price(&u.price(spec.price)), Ok(spec.price));
        }
    }
    let Ok(spec) = form.parse(pair.as_ref().unwrap_or(&dog()), now_ms) else {
        return;
    };
    assert!(spec.amount > 0 && spec.price.0 > 0);
    assert!(spec.min_fill <= spec.amount);
    assert!(quote_amount(spec.amount, spec.price).is_some());
    assert!(spec.expires_at_ms >= now_ms + MIN_ORDER_LIFETIME_MS);
    assert!(spec.expires_at_ms <= now_ms + MAX_ORDER_LIFETIME_MS);

    let pair = pair.unwrap_or_else(dog);
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
