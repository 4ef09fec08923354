//! Helpers shared by the fuzz targets and by `seedgen` (which writes the committed seed corpus):
//! fixed identities, a reader over the fuzzer's bytes, and the protobuf envelope of a signed
//! order message (so a target can sign a fuzzed body and reach the decoder behind the signature).

use libp2p_identity::Keypair;

/// A fixed ed25519 identity, `n` selecting which: the same in the targets and in `seedgen`, so
/// seeds signed by `seedgen` verify in the targets.
pub fn identity(n: u8) -> Keypair {
    let mut secret = [n.wrapping_add(1); 32];
    secret[31] = 0x5a;
    Keypair::ed25519_from_bytes(secret).expect("32 bytes is a valid ed25519 secret")
}

/// A fixed "now" used by the seeds (2026-01-01T00:00:00Z); targets add a fuzzed offset.
pub const SEED_NOW_MS: u64 = 1_767_225_600_000;

/// Reads the fuzzer's bytes front to back; past the end everything reads as zero.
pub struct Input<'a>(pub &'a [u8]);

impl<'a> Input<'a> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        for x in &mut b {
            *x = self.u8();
        }
        u64::from_le_bytes(b)
    }

    /// Up to `n` bytes.
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// A length-prefixed (u8) chunk.
    pub fn chunk(&mut self) -> &'a [u8] {
        let n = self.u8() as usize;
        self.bytes(n)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn bytes_field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    varint(out, u64::from(tag << 3 | 2));
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// `SignedOrderMessage { public_key, body, signature }` (schema in darkswap-proto's order.rs),
/// with `body` signed by `key` under the order signing domain, whatever `body` holds.
pub fn sign_raw_order_body(key: &Keypair, body: &[u8]) -> Vec<u8> {
    let mut signed = darkswap_proto::order::ORDER_SIGNING_DOMAIN.to_vec();
    signed.extend_from_slice(body);
    let signature = key.sign(&signed).expect("ed25519 signing cannot fail");
    let mut out = Vec::new();
    bytes_field(&mut out, 1, &key.public().encode_protobuf());
    bytes_field(&mut out, 2, body);
    bytes_field(&mut out, 3, &signature);
    out
}

/// The `body` field of an encoded `SignedOrderMessage` (for seeds: the fuzzed-body mode).
pub fn order_body_of(signed: &[u8]) -> Option<Vec<u8>> {
    let mut rest = signed;
    let read_varint = |rest: &mut &[u8]| -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (b, r) = rest.split_first()?;
            *rest = r;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while !rest.is_empty() {
        let key = read_varint(&mut rest)?;
        if key & 7 != 2 {
            return None;
        }
        let len = read_varint(&mut rest)? as usize;
        if rest.len() < len {
            return None;
        }
        let (field, r) = rest.split_at(len);
        rest = r;
        if key >> 3 == 2 {
            return Some(field.to_vec());
        }
    }
    None
}
