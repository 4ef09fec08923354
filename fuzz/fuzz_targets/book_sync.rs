//! `/darkswap/book-sync/1` frames: `BookSyncRequest::decode` and `BookSyncResponse::decode`, both
//! run on every input.
//!
//! Asserts: an accepted frame is within its cap; a request's limit is within `1..=MAX_BOOK_SYNC_PAGE`
//! and its pair is valid; a response holds at most a page of orders, each within the order cap;
//! and decode → encode → decode gives the same value (the encoding of a decoded value is never
//! larger than the cap allows, except a request whose omitted limit becomes 1: two bytes more).
#![no_main]

use darkswap_orderbook::Pair;
use darkswap_proto::book_sync::{
    BookSyncRequest, BookSyncResponse, MAX_BOOK_SYNC_PAGE, MAX_BOOK_SYNC_REQUEST_BYTES,
    MAX_BOOK_SYNC_RESPONSE_BYTES,
};
use darkswap_proto::order::MAX_ORDER_MESSAGE_BYTES;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = BookSyncRequest::decode(data) {
        assert!(data.len() as u64 <= MAX_BOOK_SYNC_REQUEST_BYTES);
        assert!((1..=MAX_BOOK_SYNC_PAGE).contains(&request.limit));
        assert_eq!(
            Pair::parse(&request.pair.to_string()).as_ref(),
            Ok(&request.pair)
        );
        let encoded = request.encode();
        assert!(encoded.len() as u64 <= MAX_BOOK_SYNC_REQUEST_BYTES + 2);
        if encoded.len() as u64 <= MAX_BOOK_SYNC_REQUEST_BYTES {
            assert_eq!(BookSyncRequest::decode(&encoded), Ok(request));
        }
    }
    if let Ok(response) = BookSyncResponse::decode(data) {
        assert!(data.len() as u64 <= MAX_BOOK_SYNC_RESPONSE_BYTES);
        assert!(response.orders.len() <= MAX_BOOK_SYNC_PAGE as usize);
        assert!(response
            .orders
            .iter()
            .all(|o| o.len() <= MAX_ORDER_MESSAGE_BYTES));
        assert!(response.error.as_ref().is_none_or(|e| !e.is_empty()));
        let encoded = response.encode();
        assert!(
            encoded.len() <= data.len(),
            "a decoded response re-encodes no larger"
        );
        assert_eq!(BookSyncResponse::decode(&encoded), Ok(response));
    }
});
