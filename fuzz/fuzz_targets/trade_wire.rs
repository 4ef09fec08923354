//! `/darkswap/trade/2` frames: `TradeRequest::decode`, `TradeResponse::decode`,
//! `Agreement::decode` and `Agreement::verify`, and the settlement messages they carry
//! (`SettleMessage::decode`), all run on every input.
//!
//! Asserts: decode → encode → decode gives the same value for all three; an accepted frame is
//! within `MAX_TRADE_FRAME_BYTES`; reasons are cut to `MAX_REASON_BYTES`; an agreement has a
//! positive amount and price, the quote amount that `quote_amount` gives, a canonical pair, and
//! verifies no signature under a key generated in this process (that no input can know), whatever
//! the signature bytes; the agreement inside an `Accepted` response is checked against its own maker;
//! a fee rate is within `MAX_TRADE_FEE_RATE`; a settlement message is within its caps (offers
//! pass `WireOffer::check`, a signed transaction within `MAX_SWAP_TX_BYTES`) and round-trips.
#![no_main]

use std::sync::OnceLock;

use darkswap_orderbook::{quote_amount, Pair};
use darkswap_proto::settle::{
    SettleMessage, MAX_ABORT_REASON_BYTES, MAX_SETTLE_MESSAGE_BYTES, MAX_SWAP_TX_BYTES,
};
use darkswap_proto::trade::{
    Agreement, TradeRequest, TradeResponse, MAX_REASON_BYTES, MAX_TRADE_FEE_RATE,
    MAX_TRADE_FRAME_BYTES,
};
use libfuzzer_sys::fuzz_target;
use libp2p_identity::{Keypair, PeerId};

fn stranger() -> &'static PeerId {
    static KEY: OnceLock<PeerId> = OnceLock::new();
    KEY.get_or_init(|| Keypair::generate_ed25519().public().to_peer_id())
}

fn check_agreement(a: &Agreement) {
    assert!(a.amount > 0 && a.price.0 > 0);
    assert_eq!(quote_amount(a.amount, a.price), Some(a.quote_amount));
    assert_eq!(Pair::parse(&a.pair.to_string()).as_ref(), Ok(&a.pair));
    assert!(a.fee_rate <= MAX_TRADE_FEE_RATE);
}

fn check_settle(bytes: &[u8]) {
    let Ok(message) = SettleMessage::decode(bytes) else {
        return;
    };
    assert!(bytes.len() <= MAX_SETTLE_MESSAGE_BYTES);
    match &message {
        SettleMessage::Offer(o) => assert_eq!(o.check(), Ok(())),
        SettleMessage::Signed(tx) => assert!(!tx.is_empty() && tx.len() <= MAX_SWAP_TX_BYTES),
        SettleMessage::Abort(reason) => assert!(reason.len() <= MAX_ABORT_REASON_BYTES),
    }
    assert_eq!(SettleMessage::decode(&message.encode()), Ok(message));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TradeRequest::decode(data) {
        assert!(data.len() as u64 <= MAX_TRADE_FRAME_BYTES);
        match &request {
            TradeRequest::Abort { reason, .. } => assert!(reason.len() <= MAX_REASON_BYTES),
            TradeRequest::Take { settle, .. } => check_settle(settle),
            TradeRequest::Settle { message, .. } => check_settle(message),
            TradeRequest::Confirm { .. } => {}
        }
        let encoded = request.encode();
        assert!(encoded.len() <= data.len());
        assert_eq!(TradeRequest::decode(&encoded), Ok(request));
    }

    if let Ok(response) = TradeResponse::decode(data) {
        assert!(data.len() as u64 <= MAX_TRADE_FRAME_BYTES);
        if let TradeResponse::Rejected { reason } = &response {
            assert!(reason.len() <= MAX_REASON_BYTES);
        }
        if let TradeResponse::Accepted {
            agreement,
            maker_signature,
        } = &response
        {
            if let Ok(a) = Agreement::decode(agreement) {
                check_agreement(&a);
                let _ = Agreement::verify(agreement, &a.maker, maker_signature);
                assert!(Agreement::verify(agreement, stranger(), maker_signature).is_err());
            }
        }
        let encoded = response.encode();
        assert!(encoded.len() <= data.len());
        assert_eq!(TradeResponse::decode(&encoded), Ok(response));
    }

    check_settle(data);

    if let Ok(agreement) = Agreement::decode(data) {
        assert!(data.len() as u64 <= MAX_TRADE_FRAME_BYTES);
        check_agreement(&agreement);
        let encoded = agreement.encode();
        assert_eq!(Agreement::decode(&encoded), Ok(agreement.clone()));
        let signature = &data[data.len().saturating_sub(64)..];
        assert!(Agreement::verify(data, stranger(), signature).is_err());
    }
});
