//! Verifying many order messages at once: a book-sync page of up to 1,000 signed orders.
//!
//! Each result is what [`verify_order_message`](crate::order::verify_order_message) gives for
//! that message alone; only the cost differs. A page comes from a few makers, so each distinct
//! key is decoded once, and the signatures are checked together with ed25519 batch
//! verification (one multi-scalar multiplication for the page instead of one per signature).
//! When the batch fails, every signature in it is checked on its own, so one bad signature
//! costs the page its speed-up, never its good orders.
//!
//! One difference remains, and only for a key's owner: ed25519 batch verification (as in
//! ed25519-dalek) is not cofactored, so a signature whose `R` its own signer built with a
//! small-order component fails alone and passes in a batch with probability 1/8. Nobody but the
//! holder of the private key can make such a signature (it is not a forgery), and it can only say
//! what that maker could have signed plainly; a relay checks each gossiped message alone.

use std::collections::HashMap;

use darkswap_orderbook::Pair;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use libp2p_identity::{PeerId, PublicKey};

use crate::order::{
    check_signed_body, decode_signed, signing_input, wire, Freshness, OrderReject,
    VerifiedOrderMessage,
};

/// A message whose envelope and key decoded, waiting for its signature check.
struct Pending {
    index: usize,
    signed: wire::Signed,
    maker: PeerId,
    key: VerifyingKey,
    signature: Signature,
    input: Vec<u8>,
}

/// Verifies every message of `messages` (as [`verify_order_message`] would, one by one) and
/// returns the results in the same order. The caller bounds how many it passes (a book-sync page
/// holds at most [`MAX_BOOK_SYNC_PAGE`](crate::book_sync::MAX_BOOK_SYNC_PAGE)).
///
/// [`verify_order_message`]: crate::order::verify_order_message
pub fn verify_order_messages<M: AsRef<[u8]>>(
    messages: &[M],
    expected_pair: Option<&Pair>,
    freshness: Freshness,
    now_ms: u64,
) -> Vec<Result<VerifiedOrderMessage, OrderReject>> {
    let mut results: Vec<Option<Result<VerifiedOrderMessage, OrderReject>>> =
        Vec::with_capacity(messages.len());
    let mut keys: HashMap<Vec<u8>, Result<(PeerId, VerifyingKey), OrderReject>> = HashMap::new();
    let mut pending = Vec::new();
    for (index, raw) in messages.iter().enumerate() {
        match prepare(index, raw.as_ref(), &mut keys) {
            Ok(p) => {
                results.push(None);
                pending.push(p);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    let batch_holds = {
        let inputs: Vec<&[u8]> = pending.iter().map(|p| p.input.as_slice()).collect();
        let signatures: Vec<Signature> = pending.iter().map(|p| p.signature).collect();
        let keys: Vec<VerifyingKey> = pending.iter().map(|p| p.key).collect();
        !pending.is_empty() && ed25519_dalek::verify_batch(&inputs, &signatures, &keys).is_ok()
    };
    for p in pending {
        let signed_ok = batch_holds || p.key.verify(&p.input, &p.signature).is_ok();
        results[p.index] = Some(if signed_ok {
            check_signed_body(
                &p.signed.body,
                p.maker,
                messages[p.index].as_ref(),
                expected_pair,
                freshness,
                now_ms,
            )
        } else {
            Err(OrderReject::BadSignature)
        });
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(OrderReject::BadSignature)))
        .collect()
}

/// Decodes one message's envelope, key (once per distinct key) and signature.
fn prepare(
    index: usize,
    raw: &[u8],
    keys: &mut HashMap<Vec<u8>, Result<(PeerId, VerifyingKey), OrderReject>>,
) -> Result<Pending, OrderReject> {
    let signed = decode_signed(raw)?;
    let decoded = *keys
        .entry(signed.public_key.clone())
        .or_insert_with_key(|bytes| decode_key(bytes));
    let (maker, key) = decoded?;
    let signature =
        Signature::from_slice(&signed.signature).map_err(|_| OrderReject::BadSignature)?;
    let input = signing_input(&signed.body);
    Ok(Pending {
        index,
        signed,
        maker,
        key,
        signature,
        input,
    })
}

/// A libp2p protobuf public key as the PeerId it names and the ed25519 key that verifies; any
/// other kind of key is refused, as [`PublicKey::verify`] would refuse its signatures here.
fn decode_key(bytes: &[u8]) -> Result<(PeerId, VerifyingKey), OrderReject> {
    let public = PublicKey::try_decode_protobuf(bytes).map_err(|_| OrderReject::BadKey)?;
    if public.encode_protobuf() != bytes {
        return Err(OrderReject::NonCanonical);
    }
    let ed25519 = public
        .clone()
        .try_into_ed25519()
        .map_err(|_| OrderReject::BadKey)?;
    let key = VerifyingKey::from_bytes(&ed25519.to_bytes()).map_err(|_| OrderReject::BadKey)?;
    Ok((public.to_peer_id(), key))
}

#[cfg(test)]
mod tests;
