//! Relay-signed tokens: after a successful challenge the relay hands the client a token bound to
//! the client's PeerId and to the relay, carrying the level, the method and the expiry, signed by
//! the relay's identity key. Presenting it on a later connection skips the challenge. The relay
//! needs no state to check one (only its own key and the clock); a ban revokes tokens issued
//! before it (the relay's ban list says when).

use libp2p_identity::{Keypair, PeerId, PublicKey};
use prost::Message as _;

use crate::level::Level;
use darkswap_proto::auth::{Method, RefuseReason, MAX_TOKEN_BYTES};

const TOKEN_DOMAIN: &[u8] = b"darkswap/auth/v1/token\0";
const TOKEN_VERSION: u32 = 1;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The relay that issued the token, the only one that accepts it.
    pub relay: PeerId,
    /// The client it was issued to, the only peer that may present it.
    pub peer: PeerId,
    /// The level granted when it was issued.
    pub level: Level,
    /// How the client earned it (the challenge method it answered).
    pub method: Method,
    /// When the relay issued it, milliseconds since the Unix epoch; a ban after this revokes it.
    pub issued_at_ms: u64,
    /// When it runs out, milliseconds since the Unix epoch; [`verify`] refuses it from then on.
    pub expires_at_ms: u64,
    /// For a token earned with a shared key: that key's
    /// [`fingerprint`](crate::proof::SharedKey::fingerprint), so that rotating the key revokes it.
    pub shared_key: Option<[u8; 8]>,
    /// For a token earned by identity: the identity-stamp work the client proved
    /// ([`crate::stamp`]), so that a relay that raises its price asks old tokens' holders again.
    pub stamp_bits: u32,
}

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Body {
        #[prost(uint32, tag = "1")]
        pub version: u32,
        #[prost(bytes = "vec", tag = "2")]
        pub relay: Vec<u8>,
        #[prost(bytes = "vec", tag = "3")]
        pub peer: Vec<u8>,
        #[prost(uint32, tag = "4")]
        pub level: u32,
        #[prost(uint32, tag = "5")]
        pub method: u32,
        #[prost(uint64, tag = "6")]
        pub issued_at_ms: u64,
        #[prost(uint64, tag = "7")]
        pub expires_at_ms: u64,
        #[prost(bytes = "vec", tag = "8")]
        pub shared_key: Vec<u8>,
        #[prost(uint32, tag = "9")]
        pub stamp_bits: u32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Signed {
        #[prost(bytes = "vec", tag = "1")]
        pub body: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub signature: Vec<u8>,
    }
}

fn signed_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TOKEN_DOMAIN.len() + body.len());
    out.extend_from_slice(TOKEN_DOMAIN);
    out.extend_from_slice(body);
    out
}

/// Signs a token with the relay's key. `None` only if the key cannot sign.
pub fn issue(relay_key: &Keypair, claims: &Claims) -> Option<Vec<u8>> {
    let body = pb::Body {
        version: TOKEN_VERSION,
        relay: claims.relay.to_bytes(),
        peer: claims.peer.to_bytes(),
        level: claims.level.to_wire(),
        method: claims.method.to_wire(),
        issued_at_ms: claims.issued_at_ms,
        expires_at_ms: claims.expires_at_ms,
        shared_key: claims.shared_key.map(|f| f.to_vec()).unwrap_or_default(),
        stamp_bits: claims.stamp_bits,
    }
    .encode_to_vec();
    let signature = relay_key.sign(&signed_bytes(&body)).ok()?;
    Some(pb::Signed { body, signature }.encode_to_vec())
}

/// Reads a token's claims WITHOUT checking the signature: for a client showing what it holds.
pub fn peek(token: &[u8]) -> Result<Claims, RefuseReason> {
    decode(token).map(|(claims, _, _)| claims)
}

fn decode(token: &[u8]) -> Result<(Claims, Vec<u8>, Vec<u8>), RefuseReason> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(RefuseReason::BadToken);
    }
    let signed = pb::Signed::decode(token).map_err(|_| RefuseReason::BadToken)?;
    let body = pb::Body::decode(signed.body.as_slice()).map_err(|_| RefuseReason::BadToken)?;
    if body.version != TOKEN_VERSION {
        return Err(RefuseReason::BadToken);
    }
    let claims = Claims {
        relay: PeerId::from_bytes(&body.relay).map_err(|_| RefuseReason::BadToken)?,
        peer: PeerId::from_bytes(&body.peer).map_err(|_| RefuseReason::BadToken)?,
        level: Level::from_wire(body.level).ok_or(RefuseReason::BadToken)?,
        method: Method::from_wire(body.method).ok_or(RefuseReason::BadToken)?,
        issued_at_ms: body.issued_at_ms,
        expires_at_ms: body.expires_at_ms,
        shared_key: match body.shared_key.len() {
            0 => None,
            _ => Some(
                body.shared_key
                    .as_slice()
                    .try_into()
                    .map_err(|_| RefuseReason::BadToken)?,
            ),
        },
        stamp_bits: body.stamp_bits,
    };
    Ok((claims, signed.body, signed.signature))
}

/// The relay's check: signed by `relay_key`, issued by this relay, for `peer`, not expired.
pub fn verify(
    token: &[u8],
    relay_key: &PublicKey,
    peer: &PeerId,
    now_ms: u64,
) -> Result<Claims, RefuseReason> {
    let (claims, body, signature) = decode(token)?;
    // A token that names another relay is refused as such before its signature is checked
    // (which would fail too, since another key signed it): the trader learns why.
    if claims.relay != relay_key.to_peer_id() {
        return Err(RefuseReason::TokenForAnotherRelay);
    }
    if !relay_key.verify(&signed_bytes(&body), &signature) {
        return Err(RefuseReason::BadToken);
    }
    if claims.peer != *peer {
        return Err(RefuseReason::TokenForAnotherPeer);
    }
    if now_ms >= claims.expires_at_ms {
        return Err(RefuseReason::ExpiredToken);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(relay: &Keypair, peer: PeerId) -> Claims {
        Claims {
            relay: relay.public().to_peer_id(),
            peer,
            level: Level::Authenticated,
            method: Method::Identity,
            issued_at_ms: 1_000,
            expires_at_ms: 2_000,
            shared_key: None,
            stamp_bits: 12,
        }
    }

    #[test]
    fn a_shared_key_fingerprint_travels_signed() {
        let relay = Keypair::generate_ed25519();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let c = Claims {
            method: Method::SharedKey,
            shared_key: Some([7; 8]),
            stamp_bits: 0,
            ..claims(&relay, peer)
        };
        let token = issue(&relay, &c).unwrap();
        assert_eq!(verify(&token, &relay.public(), &peer, 1_500), Ok(c));
    }

    #[test]
    fn a_token_verifies_for_its_peer_and_relay_only() {
        let relay = Keypair::generate_ed25519();
        let other_relay = Keypair::generate_ed25519();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let other_peer = Keypair::generate_ed25519().public().to_peer_id();
        let c = claims(&relay, peer);
        let token = issue(&relay, &c).unwrap();
        assert_eq!(verify(&token, &relay.public(), &peer, 1_500), Ok(c.clone()));
        assert_eq!(peek(&token), Ok(c));
        assert_eq!(
            verify(&token, &relay.public(), &other_peer, 1_500),
            Err(RefuseReason::TokenForAnotherPeer)
        );
        // Claims naming this relay, signed by another key.
        let forged = issue(&other_relay, &claims(&relay, peer)).unwrap();
        assert_eq!(
            verify(&forged, &relay.public(), &peer, 1_500),
            Err(RefuseReason::BadToken)
        );
        assert_eq!(
            verify(&token, &relay.public(), &peer, 2_000),
            Err(RefuseReason::ExpiredToken)
        );
        // Another relay's own valid token names that relay.
        let foreign = issue(&other_relay, &claims(&relay, peer)).unwrap();
        assert_eq!(
            verify(&foreign, &other_relay.public(), &peer, 1_500),
            Err(RefuseReason::TokenForAnotherRelay)
        );
        // A genuine token of this relay, presented to another one.
        assert_eq!(
            verify(&token, &other_relay.public(), &peer, 1_500),
            Err(RefuseReason::TokenForAnotherRelay)
        );
    }

    #[test]
    fn every_flipped_bit_is_refused() {
        let relay = Keypair::generate_ed25519();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let token = issue(&relay, &claims(&relay, peer)).unwrap();
        for i in 0..token.len() * 8 {
            let mut forged = token.clone();
            forged[i / 8] ^= 1 << (i % 8);
            assert!(
                verify(&forged, &relay.public(), &peer, 1_500).is_err(),
                "bit {i}"
            );
        }
    }

    #[test]
    fn a_raised_level_breaks_the_signature() {
        let relay = Keypair::generate_ed25519();
        let peer = Keypair::generate_ed25519().public().to_peer_id();
        let token = issue(&relay, &claims(&relay, peer)).unwrap();
        let (c, _, signature) = decode(&token).unwrap();
        let body = pb::Body {
            version: TOKEN_VERSION,
            relay: c.relay.to_bytes(),
            peer: c.peer.to_bytes(),
            level: Level::Admin.to_wire(),
            method: c.method.to_wire(),
            issued_at_ms: c.issued_at_ms,
            expires_at_ms: c.expires_at_ms,
            shared_key: Vec::new(),
            stamp_bits: c.stamp_bits,
        }
        .encode_to_vec();
        let forged = pb::Signed { body, signature }.encode_to_vec();
        assert_eq!(
            verify(&forged, &relay.public(), &peer, 1_500),
            Err(RefuseReason::BadToken)
        );
    }
}
