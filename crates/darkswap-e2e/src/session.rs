//! An established session: sealing and opening frames with counter nonces, a sliding replay
//! window, and rekeying.
//!
//! Frame: `epoch u32 ‖ counter u64 ‖ AEAD(ciphertext ‖ tag)`; the nonce is `epoch ‖ counter`
//! (never reused: the counter only grows, and a new epoch has new keys), and the 12-byte header
//! is authenticated with the caller's associated data.
//!
//! Rekeying: after [`RekeyPolicy::after_messages`] frames sent or [`RekeyPolicy::after_ms`],
//! [`Session::rekey_due`] says so; the owner runs a fresh handshake (new ephemeral keys, so
//! forward secrecy) inside the session and swaps its keys in with [`Session::rekey`] (the
//! [`crate::manager::SessionManager`] does both). The old keys are zeroized as they are dropped,
//! and frames of the old epoch are refused from then on.

use libp2p_identity::PeerId;

use crate::aead::{open, seal, Cipher, Key, NONCE_BYTES};

/// Frames a session accepts out of order behind the newest one.
pub const REPLAY_WINDOW: u64 = 64;
/// Rekey after this many frames sent. A trade takes 2 to 4 frames each way, so a trader rekeys
/// well before this only when a bot trades continuously; the bound keeps the data under one key
/// small whatever the traffic.
pub const REKEY_AFTER_MESSAGES: u64 = 4096;
/// Rekey after this long: what an attacker who later steals a session's keys can read is at most
/// the last 10 minutes of that session.
pub const REKEY_AFTER_MS: u64 = 10 * 60_000;

/// When a session must take fresh keys: after `after_messages` frames sent under one key, or
/// `after_ms` since that key was made, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RekeyPolicy {
    /// Frames sent under one key before a rekey is due ([`REKEY_AFTER_MESSAGES`] by default).
    pub after_messages: u64,
    /// Milliseconds after a key was made before a rekey is due ([`REKEY_AFTER_MS`] by
    /// default).
    pub after_ms: u64,
}

impl Default for RekeyPolicy {
    fn default() -> Self {
        RekeyPolicy {
            after_messages: REKEY_AFTER_MESSAGES,
            after_ms: REKEY_AFTER_MS,
        }
    }
}
/// Frame header: epoch and counter.
pub const HEADER_BYTES: usize = 12;
/// Largest frame opened (trade messages are a few hundred bytes).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// Why a frame cannot be sealed or opened, or a rekey is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The frame is shorter than [`HEADER_BYTES`] or longer than [`MAX_FRAME_BYTES`]; or a
    /// rekey brought keys for another peer.
    #[error("frame malformed or too large")]
    Malformed,
    /// The frame's epoch is not the session's current one (a late frame from before a rekey,
    /// or one from a future epoch).
    #[error("frame from another key epoch")]
    WrongEpoch,
    /// A frame with this counter was already opened.
    #[error("frame already received (replay)")]
    Replay,
    /// The counter is [`REPLAY_WINDOW`] or more behind the newest frame opened, so the
    /// window can no longer tell whether it was seen.
    #[error("frame too old for the replay window")]
    TooOld,
    /// The AEAD tag does not verify: the header, associated data or ciphertext was altered,
    /// or the frame was sealed under another key.
    #[error("frame failed authentication")]
    Forged,
    /// The send counter reached `u64::MAX` or the epoch `u32::MAX`: the session can seal or
    /// rekey no more.
    #[error("the session has used up its nonces or epochs; start a new one")]
    Exhausted,
}

/// An established session with one peer: the cipher, one key per direction, the key epoch,
/// the send counter and the replay window. Made by
/// [`Initiator::finish`](crate::handshake::Initiator::finish) or
/// [`Responder::respond`](crate::handshake::Responder::respond); its keys are zeroized when it
/// is dropped.
pub struct Session {
    cipher: Cipher,
    send_key: Key,
    recv_key: Key,
    epoch: u32,
    next_send: u64,
    /// Highest counter accepted, and a bitmap of the `REPLAY_WINDOW` counters below it.
    recv_max: Option<u64>,
    recv_seen: u64,
    established_ms: u64,
    remote: PeerId,
}

impl Session {
    pub(crate) fn new(
        cipher: Cipher,
        send_key: Key,
        recv_key: Key,
        remote: PeerId,
        now_ms: u64,
    ) -> Self {
        Session {
            cipher,
            send_key,
            recv_key,
            epoch: 0,
            next_send: 0,
            recv_max: None,
            recv_seen: 0,
            established_ms: now_ms,
            remote,
        }
    }

    /// The AEAD the current keys are used with.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The peer at the other end.
    pub fn remote(&self) -> PeerId {
        self.remote
    }

    /// The current key epoch: 0 after the handshake, one more after each rekey. Every frame
    /// carries it in its header and nonce.
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Frames sealed under the current key.
    pub fn frames_sent(&self) -> u64 {
        self.next_send
    }

    /// When the current key was made.
    pub fn keyed_at_ms(&self) -> u64 {
        self.established_ms
    }

    /// The key epoch a frame claims, without opening it (`None` if it is too short).
    pub fn frame_epoch(frame: &[u8]) -> Option<u32> {
        let head: [u8; 4] = frame.get(..4)?.try_into().ok()?;
        Some(u32::from_be_bytes(head))
    }

    fn nonce(epoch: u32, counter: u64) -> [u8; NONCE_BYTES] {
        let mut n = [0u8; NONCE_BYTES];
        n[..4].copy_from_slice(&epoch.to_be_bytes());
        n[4..].copy_from_slice(&counter.to_be_bytes());
        n
    }

    fn aad(header: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut full = header.to_vec();
        full.extend_from_slice(aad);
        full
    }

    /// Seals one message.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SessionError> {
        let counter = self.next_send;
        if counter == u64::MAX {
            return Err(SessionError::Exhausted);
        }
        self.next_send += 1;
        let mut frame = Vec::with_capacity(HEADER_BYTES + plaintext.len() + 16);
        frame.extend_from_slice(&self.epoch.to_be_bytes());
        frame.extend_from_slice(&counter.to_be_bytes());
        let sealed = seal(
            self.cipher,
            &self.send_key,
            &Self::nonce(self.epoch, counter),
            &Self::aad(&frame, aad),
            plaintext,
        );
        frame.extend_from_slice(&sealed);
        Ok(frame)
    }

    /// Opens one frame: refuses other epochs, replays, frames behind the window, and anything
    /// altered. A refused frame changes nothing.
    pub fn open(&mut self, aad: &[u8], frame: &[u8]) -> Result<Vec<u8>, SessionError> {
        if frame.len() < HEADER_BYTES || frame.len() > MAX_FRAME_BYTES {
            return Err(SessionError::Malformed);
        }
        let (header, sealed) = frame.split_at(HEADER_BYTES);
        let epoch = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&header[4..]);
        let counter = u64::from_be_bytes(c);
        if epoch != self.epoch {
            return Err(SessionError::WrongEpoch);
        }
        if let Some(max) = self.recv_max {
            if counter <= max {
                let behind = max - counter;
                if behind >= REPLAY_WINDOW {
                    return Err(SessionError::TooOld);
                }
                if self.recv_seen & (1 << behind) != 0 {
                    return Err(SessionError::Replay);
                }
            }
        }
        let plaintext = open(
            self.cipher,
            &self.recv_key,
            &Self::nonce(epoch, counter),
            &Self::aad(header, aad),
            sealed,
        )
        .ok_or(SessionError::Forged)?;
        // Only an authentic frame moves the window.
        match self.recv_max {
            Some(max) if counter <= max => self.recv_seen |= 1 << (max - counter),
            Some(max) => {
                let shift = counter - max;
                self.recv_seen = if shift >= 64 {
                    0
                } else {
                    self.recv_seen << shift
                };
                self.recv_seen |= 1;
                self.recv_max = Some(counter);
            }
            None => {
                self.recv_seen = 1;
                self.recv_max = Some(counter);
            }
        }
        Ok(plaintext)
    }

    /// Whether the session should rekey now under the default [`RekeyPolicy`].
    pub fn rekey_due(&self, now_ms: u64) -> bool {
        self.rekey_due_under(RekeyPolicy::default(), now_ms)
    }

    /// Whether the session should rekey now under `policy`.
    pub fn rekey_due_under(&self, policy: RekeyPolicy, now_ms: u64) -> bool {
        self.next_send >= policy.after_messages
            || now_ms.saturating_sub(self.established_ms) >= policy.after_ms
    }

    /// Takes the keys of `fresh` (a new handshake run inside this session) as the next epoch.
    /// The old keys are moved out and dropped here, which zeroizes them ([`Key`] wipes itself
    /// on drop); from now on frames of the old epoch are refused. Refused (and nothing changes)
    /// if `fresh` is with another peer or the epochs are used up.
    pub fn rekey(&mut self, fresh: Session) -> Result<(), SessionError> {
        if fresh.remote != self.remote {
            return Err(SessionError::Malformed);
        }
        let epoch = self.epoch.checked_add(1).ok_or(SessionError::Exhausted)?;
        let Session {
            cipher,
            send_key,
            recv_key,
            established_ms,
            ..
        } = fresh;
        self.cipher = cipher;
        // Assigning drops (and so zeroizes) the previous keys.
        self.send_key = send_key;
        self.recv_key = recv_key;
        self.epoch = epoch;
        self.next_send = 0;
        self.recv_max = None;
        self.recv_seen = 0;
        self.established_ms = established_ms;
        Ok(())
    }

    /// The raw keys, for tests that play an attacker holding them.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> (&Key, &Key) {
        (&self.send_key, &self.recv_key)
    }
}

#[cfg(test)]
mod tests;
