use super::*;

use crate::order::{sign_order_message, verify_order_message, OrderAction, OrderBody, OrderSpec};
use darkswap_orderbook::{Price, Side};
use libp2p_identity::Keypair;
use prost::Message as _;

const NOW: u64 = 1_800_000_000_000;

fn pair() -> Pair {
    Pair::parse("RUNE:DOG/BTC").unwrap()
}

fn order(key: &Keypair, nonce: u64) -> Vec<u8> {
    let body = OrderBody {
        pair: pair(),
        seq: nonce + 1,
        sent_at_ms: NOW,
        action: OrderAction::Order(OrderSpec {
            nonce,
            side: if nonce.is_multiple_of(2) {
                Side::Buy
            } else {
                Side::Sell
            },
            price: Price(100 + nonce),
            amount: 1_000 + nonce,
            min_fill: 0,
            expires_at_ms: NOW + 3_600_000,
        }),
    };
    sign_order_message(key, &body, NOW).unwrap()
}

/// Orders from `makers` keys, `per_maker` each, interleaved as a relay's page by id would be.
fn page(makers: usize, per_maker: u64) -> Vec<Vec<u8>> {
    let keys: Vec<Keypair> = (0..makers).map(|_| Keypair::generate_ed25519()).collect();
    (0..per_maker)
        .flat_map(|n| keys.iter().map(move |k| order(k, n)))
        .collect()
}

fn one_by_one(messages: &[Vec<u8>]) -> Vec<Result<VerifiedOrderMessage, OrderReject>> {
    messages
        .iter()
        .map(|m| verify_order_message(m, Some(&pair()), Freshness::Stored, NOW))
        .collect()
}

fn batched(messages: &[Vec<u8>]) -> Vec<Result<VerifiedOrderMessage, OrderReject>> {
    verify_order_messages(messages, Some(&pair()), Freshness::Stored, NOW)
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 8032, section 7.1, TEST 1 to 3: (secret key, public key, message, signature).
const RFC8032: [(&str, &str, &str, &str); 3] = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
];

#[test]
fn batch_verification_agrees_with_the_published_vectors() {
    let mut messages = Vec::new();
    let mut signatures = Vec::new();
    let mut keys = Vec::new();
    for (secret, public, message, signature) in RFC8032 {
        // The vectors are what they say: the key pair derives and signs them (ed25519 is
        // deterministic), through the same libp2p keys the orders are signed with.
        let mut secret = hex(secret);
        let keypair = Keypair::ed25519_from_bytes(&mut secret).unwrap();
        let libp2p_public = keypair.public().try_into_ed25519().unwrap().to_bytes();
        assert_eq!(libp2p_public.to_vec(), hex(public));
        assert_eq!(keypair.sign(&hex(message)).unwrap(), hex(signature));
        messages.push(hex(message));
        signatures.push(Signature::from_slice(&hex(signature)).unwrap());
        keys.push(VerifyingKey::from_bytes(&libp2p_public).unwrap());
    }
    let inputs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    assert!(ed25519_dalek::verify_batch(&inputs, &signatures, &keys).is_ok());
    // Any one vector altered (message, signature or key) spoils the batch.
    let mut wrong_message = messages.clone();
    wrong_message[1] = hex("73");
    let inputs: Vec<&[u8]> = wrong_message.iter().map(Vec::as_slice).collect();
    assert!(ed25519_dalek::verify_batch(&inputs, &signatures, &keys).is_err());
    let inputs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let mut wrong_signature = signatures.clone();
    wrong_signature.swap(0, 2);
    assert!(ed25519_dalek::verify_batch(&inputs, &wrong_signature, &keys).is_err());
    let mut wrong_key = keys.clone();
    wrong_key.swap(1, 2);
    assert!(ed25519_dalek::verify_batch(&inputs, &signatures, &wrong_key).is_err());
}

#[test]
fn a_good_page_verifies_as_each_message_does() {
    let messages = page(5, 40);
    let batch = batched(&messages);
    assert!(batch.iter().all(Result::is_ok));
    assert_eq!(batch, one_by_one(&messages));
    assert!(batched(&Vec::<Vec<u8>>::new()).is_empty());
}

#[test]
fn a_hostile_relay_cannot_slip_a_bad_order_into_a_good_page() {
    let mut messages = page(3, 20);
    let victim = Keypair::generate_ed25519();
    // 1. Someone else's order re-signed under the victim's key field: the maker is a claim.
    let mut stolen = wire::Signed::decode(messages[4].as_slice()).unwrap();
    stolen.public_key = victim.public().encode_protobuf();
    messages[4] = stolen.encode_to_vec();
    // 2. A body changed after signing (a larger amount).
    let mut altered = wire::Signed::decode(messages[9].as_slice()).unwrap();
    let last = altered.body.len() - 12;
    altered.body[last] ^= 0x01;
    messages[9] = altered.encode_to_vec();
    // 3. One message's signature on another.
    let mut swapped = wire::Signed::decode(messages[15].as_slice()).unwrap();
    swapped.signature = wire::Signed::decode(messages[16].as_slice())
        .unwrap()
        .signature;
    messages[15] = swapped.encode_to_vec();
    // 4. A signature cut short, a key that does not decode, bytes that are not a message,
    //    and a message over the size cap.
    let mut short = wire::Signed::decode(messages[20].as_slice()).unwrap();
    short.signature.truncate(63);
    messages[20] = short.encode_to_vec();
    let mut bad_key = wire::Signed::decode(messages[21].as_slice()).unwrap();
    bad_key.public_key = vec![8, 1, 18, 32, 0xff];
    messages[21] = bad_key.encode_to_vec();
    messages[22] = vec![0xff; 40];
    messages[23] = vec![0; crate::order::MAX_ORDER_MESSAGE_BYTES + 1];

    let batch = batched(&messages);
    assert_eq!(batch, one_by_one(&messages), "the same verdict on each");
    let refused: Vec<usize> = (0..batch.len()).filter(|i| batch[*i].is_err()).collect();
    assert_eq!(refused, [4, 9, 15, 20, 21, 22, 23]);
    assert_eq!(batch[4], Err(OrderReject::BadSignature));
    assert_eq!(batch[9], Err(OrderReject::BadSignature));
    assert_eq!(batch[15], Err(OrderReject::BadSignature));
    assert_eq!(batch[20], Err(OrderReject::BadSignature));
    assert_eq!(batch[21], Err(OrderReject::BadKey));
    assert_eq!(batch[22], Err(OrderReject::Malformed));
    assert_eq!(batch[23], Err(OrderReject::TooLarge));
}

#[test]
fn the_body_rules_still_apply_after_a_good_batch() {
    let key = Keypair::generate_ed25519();
    let mut messages = page(2, 5);
    let other_pair = OrderBody {
        pair: Pair::parse("RUNE:CAT/BTC").unwrap(),
        seq: 1,
        sent_at_ms: NOW,
        action: OrderAction::Order(OrderSpec {
            nonce: 1,
            side: Side::Sell,
            price: Price(5),
            amount: 5,
            min_fill: 0,
            expires_at_ms: NOW + 3_600_000,
        }),
    };
    messages.push(sign_order_message(&key, &other_pair, NOW).unwrap());
    let batch = batched(&messages);
    assert_eq!(batch, one_by_one(&messages));
    assert_eq!(batch.last(), Some(&Err(OrderReject::BadPair)));
    // Stored freshness: an order from the future is refused though its signature holds.
    let future = verify_order_messages(&messages[..1], None, Freshness::Stored, NOW - 600_000);
    assert_eq!(future, vec![Err(OrderReject::ClockSkew)]);
}

#[cfg(not(target_arch = "wasm32"))]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Whatever bytes of a page are flipped, each message gets the verdict it gets alone.
        #[test]
        fn flipped_bytes_get_the_same_verdict(
            makers in 1usize..4,
            per_maker in 1u64..8,
            flips in proptest::collection::vec((any::<usize>(), any::<usize>(), 1u8..=255), 0..6),
        ) {
            let mut messages = page(makers, per_maker);
            for (m, at, xor) in flips {
                let m = m % messages.len();
                let at = at % messages[m].len();
                messages[m][at] ^= xor;
            }
            prop_assert_eq!(batched(&messages), one_by_one(&messages));
        }
    }
}
