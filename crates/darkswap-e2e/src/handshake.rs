//! The session handshake: two messages, each side's fresh X25519 key signed by its identity.
//!
//! ```text
//! init (initiator → responder):
//!   version u8 | n u8 | ciphers [u8; n] | e_i [32] | sig_len u16 | sig_i
//!   sig_i = Sign_I("darkswap/e2e/1 init" ‖ version ‖ ciphers ‖ e_i ‖ PeerId_I ‖ PeerId_R)
//! resp (responder → initiator):
//!   version u8 | cipher u8 | e_r [32] | sig_len u16 | sig_r
//!   T     = SHA-256("darkswap/e2e/1 transcript" ‖ init ‖ cipher ‖ e_r ‖ PeerId_I ‖ PeerId_R)
//!   sig_r = Sign_R("darkswap/e2e/1 resp" ‖ T)
//! keys: HKDF-SHA256(salt = T, ikm = X25519(e_i, e_r)),
//!   info "darkswap/e2e/1 i->r" and "darkswap/e2e/1 r->i": one key per direction.
//! ```
//!
//! Both signatures name both PeerIds, so a message cannot be replayed towards a third peer, and
//! a relay that swaps an ephemeral key breaks a signature. A replayed `init` gets a fresh `e_r`,
//! so the replayer learns nothing without `e_i`'s secret. Ephemeral secrets are used once and
//! dropped (x25519-dalek zeroizes them).

use darkswap_proto::trade::public_key_of;
use hkdf::Hkdf;
use libp2p_identity::{Keypair, PeerId};
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use x25519_dalek::{EphemeralSecret, PublicKey};

use crate::aead::{Cipher, Key};
use crate::session::Session;

/// First byte of every handshake message; any other value is refused with
/// [`HandshakeError::BadVersion`].
pub const HANDSHAKE_VERSION: u8 = 1;
/// Cap on a handshake message (a signature is 64 bytes for ed25519).
pub const MAX_HANDSHAKE_BYTES: usize = 512;
/// Most ciphers an `init` may offer.
pub const MAX_CIPHERS_OFFERED: usize = 8;

/// Why a handshake message cannot be made or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The message is truncated, has bytes left over, is over [`MAX_HANDSHAKE_BYTES`], or
    /// offers more than [`MAX_CIPHERS_OFFERED`] ciphers.
    #[error("handshake message malformed or too large")]
    Malformed,
    /// The message does not start with [`HANDSHAKE_VERSION`].
    #[error("unsupported handshake version")]
    BadVersion,
    /// No usable cipher: an offer that is empty, too long or has no cipher we know, or a
    /// responder's choice that we did not offer.
    #[error("no cipher in common")]
    NoCommonCipher,
    /// The peer's signature does not verify under the key in its PeerId (a wrong signer, a
    /// swapped ephemeral key, or a message meant for another pair of peers).
    #[error("the peer's signature does not verify")]
    BadSignature,
    /// The peer's PeerId is a hash, not an inlined public key, so its signature cannot be
    /// checked.
    #[error("the peer's PeerId does not carry its public key")]
    UnknownKey,
    /// The peer's ephemeral key is a low-order point: the X25519 shared secret would not
    /// depend on our secret.
    #[error("the key exchange produced a degenerate secret")]
    WeakKey,
    /// Our identity keypair failed to sign.
    #[error("cannot sign with our identity key")]
    Signing,
}

fn init_signed_bytes(
    ciphers: &[u8],
    e_i: &[u8; 32],
    initiator: &PeerId,
    responder: &PeerId,
) -> Vec<u8> {
    let mut m = b"darkswap/e2e/1 init".to_vec();
    m.push(HANDSHAKE_VERSION);
    m.extend_from_slice(ciphers);
    m.extend_from_slice(e_i);
    m.extend_from_slice(&initiator.to_bytes());
    m.extend_from_slice(&responder.to_bytes());
    m
}

pub(crate) fn transcript(
    init: &[u8],
    cipher: u8,
    e_r: &[u8; 32],
    initiator: &PeerId,
    responder: &PeerId,
) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"darkswap/e2e/1 transcript");
    h.update(init);
    h.update([cipher]);
    h.update(e_r);
    h.update(initiator.to_bytes());
    h.update(responder.to_bytes());
    h.finalize().into()
}

fn resp_signed_bytes(t: &[u8; 32]) -> Vec<u8> {
    let mut m = b"darkswap/e2e/1 resp".to_vec();
    m.extend_from_slice(t);
    m
}

/// (initiator → responder key, responder → initiator key)
pub(crate) fn derive(shared: &[u8; 32], t: &[u8; 32]) -> (Key, Key) {
    let hk = Hkdf::<Sha256>::new(Some(t), shared);
    // Expanded straight into the keys, which wipe themselves: no copy of them is left behind
    // (HKDF's own HMAC state is the one thing not wiped: the hkdf crate offers no way).
    let mut i2r = Key([0u8; 32]);
    let mut r2i = Key([0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: expand cannot fail.
    let _ = hk.expand(b"darkswap/e2e/1 i->r", &mut i2r.0);
    let _ = hk.expand(b"darkswap/e2e/1 r->i", &mut r2i.0);
    (i2r, r2i)
}

fn verify(signer: &PeerId, message: &[u8], signature: &[u8]) -> Result<(), HandshakeError> {
    let key = public_key_of(signer).ok_or(HandshakeError::UnknownKey)?;
    if key.verify(message, signature) {
        Ok(())
    } else {
        Err(HandshakeError::BadSignature)
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], HandshakeError> {
    if bytes.len() < n {
        return Err(HandshakeError::Malformed);
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn take_signature<'a>(bytes: &mut &'a [u8]) -> Result<&'a [u8], HandshakeError> {
    let len = take(bytes, 2)?;
    let len = u16::from_be_bytes([len[0], len[1]]) as usize;
    let sig = take(bytes, len)?;
    if !bytes.is_empty() {
        return Err(HandshakeError::Malformed);
    }
    Ok(sig)
}

/// The side that starts a session.
pub struct Initiator {
    secret: EphemeralSecret,
    init: Vec<u8>,
    me: PeerId,
    remote: PeerId,
}

impl Initiator {
    /// Starts a handshake with `remote`, offering [`Cipher::offered`]: returns the state and
    /// the `init` message to send.
    pub fn start(
        identity: &Keypair,
        remote: PeerId,
    ) -> Result<(Initiator, Vec<u8>), HandshakeError> {
        Initiator::start_offering(identity, remote, &Cipher::offered())
    }

    /// Starts a handshake offering `offer`, most preferred first (the responder takes the first
    /// it supports).
    pub fn start_offering(
        identity: &Keypair,
        remote: PeerId,
        offer: &[Cipher],
    ) -> Result<(Initiator, Vec<u8>), HandshakeError> {
        if offer.is_empty() || offer.len() > MAX_CIPHERS_OFFERED {
            return Err(HandshakeError::NoCommonCipher);
        }
        let me = identity.public().to_peer_id();
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let e_i = PublicKey::from(&secret).to_bytes();
        let ciphers: Vec<u8> = offer.iter().map(|c| *c as u8).collect();
        let signature = identity
            .sign(&init_signed_bytes(&ciphers, &e_i, &me, &remote))
            .map_err(|_| HandshakeError::Signing)?;
        let mut init = vec![HANDSHAKE_VERSION, ciphers.len() as u8];
        init.extend_from_slice(&ciphers);
        init.extend_from_slice(&e_i);
        init.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        init.extend_from_slice(&signature);
        Ok((
            Initiator {
                secret,
                init: init.clone(),
                me,
                remote,
            },
            init,
        ))
    }

    /// The cipher wire values of our `init`.
    fn offered(&self) -> &[u8] {
        let n = self.init.get(1).copied().unwrap_or(0) as usize;
        self.init.get(2..2 + n).unwrap_or_default()
    }

    /// Checks the responder's answer and derives the session.
    pub fn finish(self, resp: &[u8], now_ms: u64) -> Result<Session, HandshakeError> {
        if resp.len() > MAX_HANDSHAKE_BYTES {
            return Err(HandshakeError::Malformed);
        }
        let mut rest = resp;
        let head = take(&mut rest, 2)?;
        if head[0] != HANDSHAKE_VERSION {
            return Err(HandshakeError::BadVersion);
        }
        let cipher = Cipher::from_wire(head[1]).ok_or(HandshakeError::NoCommonCipher)?;
        // The responder must pick one of ours (the transcript signature covers the choice, so
        // a relay cannot downgrade it; this refuses a responder that ignores the offer).
        if !self.offered().contains(&head[1]) {
            return Err(HandshakeError::NoCommonCipher);
        }
        let e_r: [u8; 32] = take(&mut rest, 32)?
            .try_into()
            .map_err(|_| HandshakeError::Malformed)?;
        let signature = take_signature(&mut rest)?;
        let t = transcript(&self.init, head[1], &e_r, &self.me, &self.remote);
        verify(&self.remote, &resp_signed_bytes(&t), signature)?;
        let shared = self.secret.diffie_hellman(&PublicKey::from(e_r));
        if !shared.was_contributory() {
            return Err(HandshakeError::WeakKey);
        }
        let (i2r, r2i) = derive(shared.as_bytes(), &t);
        Ok(Session::new(cipher, i2r, r2i, self.remote, now_ms))
    }
}

/// The side that answers.
pub struct Responder;

impl Responder {
    /// Checks an `init` from `remote`, answers it, and derives the session.
    pub fn respond(
        identity: &Keypair,
        remote: PeerId,
        init: &[u8],
        now_ms: u64,
    ) -> Result<(Session, Vec<u8>), HandshakeError> {
        if init.len() > MAX_HANDSHAKE_BYTES {
            return Err(HandshakeError::Malformed);
        }
        let me = identity.public().to_peer_id();
        let mut rest = init;
        let head = take(&mut rest, 2)?;
        if head[0] != HANDSHAKE_VERSION {
            return Err(HandshakeError::BadVersion);
        }
        if head[1] as usize > MAX_CIPHERS_OFFERED {
            return Err(HandshakeError::Malformed);
        }
        let ciphers = take(&mut rest, head[1] as usize)?;
        let e_i: [u8; 32] = take(&mut rest, 32)?
            .try_into()
            .map_err(|_| HandshakeError::Malformed)?;
        let signature = take_signature(&mut rest)?;
        verify(
            &remote,
            &init_signed_bytes(ciphers, &e_i, &remote, &me),
            signature,
        )?;
        // The initiator's preference wins: the first cipher of its offer that we support. The
        // taker (initiator) is the one that sends first and most, so its platform's fast cipher
        // is used; every peer supports both, so this never fails between DarkSwap peers.
        let cipher = ciphers
            .iter()
            .find_map(|c| Cipher::from_wire(*c))
            .ok_or(HandshakeError::NoCommonCipher)?;
        let secret = EphemeralSecret::random_from_rng(OsRng);
        let e_r = PublicKey::from(&secret).to_bytes();
        let t = transcript(init, cipher as u8, &e_r, &remote, &me);
        let signature = identity
            .sign(&resp_signed_bytes(&t))
            .map_err(|_| HandshakeError::Signing)?;
        let shared = secret.diffie_hellman(&PublicKey::from(e_i));
        if !shared.was_contributory() {
            return Err(HandshakeError::WeakKey);
        }
        let (i2r, r2i) = derive(shared.as_bytes(), &t);
        let mut resp = vec![HANDSHAKE_VERSION, cipher as u8];
        resp.extend_from_slice(&e_r);
        resp.extend_from_slice(&(signature.len() as u16).to_be_bytes());
        resp.extend_from_slice(&signature);
        Ok((Session::new(cipher, r2i, i2r, remote, now_ms), resp))
    }
}

#[cfg(test)]
mod tests;
