//! What a client reads back from IndexedDB or disk: `persist::decode_orders` and
//! `persist::decode_trades`, both run on every input.
//!
//! Asserts: every order read back has the id derived from our PeerId and its nonce, and a valid
//! pair; every trade a valid pair and an agreement / signature that is either absent or not empty;
//! and decode → encode → decode gives the same orders and trades (so a reload loses nothing it
//! kept, and a second reload changes nothing).
#![no_main]

use darkswap_fuzz::identity;
use darkswap_net::persist::{decode_orders, decode_trades, encode_orders, encode_trades};
use darkswap_orderbook::Pair;
use darkswap_proto::order::order_id;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let me = identity(0).public().to_peer_id();

    let orders = decode_orders(data, &me);
    for o in &orders {
        assert_eq!(o.id, order_id(&me, o.spec.nonce));
        assert_eq!(Pair::parse(&o.pair.to_string()).as_ref(), Ok(&o.pair));
    }
    let encoded = encode_orders(&orders);
    assert_eq!(decode_orders(&encoded, &me), orders);

    let trades = decode_trades(data);
    for t in &trades {
        assert_eq!(Pair::parse(&t.pair.to_string()).as_ref(), Ok(&t.pair));
        for blob in [&t.agreement, &t.maker_signature, &t.taker_signature] {
            assert!(blob.as_ref().is_none_or(|b| !b.is_empty()));
        }
    }
    let encoded = encode_trades(&trades);
    assert_eq!(decode_trades(&encoded), trades);
});
