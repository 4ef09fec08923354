//! `/darkswap/trade/1` frames: `TradeRequest::decode`, `TradeResponse::decode`,
//! `Agreement::decode` and `Agreement::verify`, all run on every input.
//!
//! Asserts: decode → encode → decode gives the same value for all three; an accepted frame is
//! within `MAX_TRADE_FRAME_BYTES`; reasons are cut to `MAX_REASON_BYTES`; an agreement has a
//! positive amount and price, the quote amount that `quote_amount` gives, a canonical pair, and
//! verifies no signature under a key generated in this process (that no input can know), whatever
//! the signature bytes; the agreement inside an `Accepted` response is checked against its own maker.
#![no_main]

use std::sync::OnceLock;

use darkswap_orderbook::{quote_amount, Pair};
use darkswap_proto::trade::{
    Agreement, TradeRequest, TradeResponse, MAX_REASON_BYTES, MAX_TRADE_FRAME_BYTES,
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
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = TradeRequest::decode(data) {
        assert!(data.len() as u64 <= MAX_TRADE_FRAME_BYTES);
        if let TradeRequest::Abort { reason, .. } = &request {
            assert!(reason.len() <= MAX_REASON_BYTES);
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

    if let Ok(agreement) = Agreement::decode(data) {
        assert!(data.len() as u64 <= MAX_TRADE_FRAME_BYTES);
        check_agreement(&agreement);
        let encoded = agreement.encode();
        assert_eq!(Agreement::decode(&encoded), Ok(agreement.clone()));
        let signature = &data[data.len().saturating_sub(64)..];
        assert!(Agreement::verify(data, stranger(), signature).is_err());
    }
});
