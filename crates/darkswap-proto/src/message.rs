//! `/darkswap/msg/2`: a short text message from one trader to another, acknowledged by the
//! receiver. The sender measures the round trip from request to acknowledgement.
//!
//! ```text
//! message DirectMessage { string text = 1; uint64 sent_at_ms = 2; }
//! message DirectAck     { bool accepted = 1; string reason = 2; }  // reason empty when accepted
//! ```

use prost::Message as _;

/// The protocol's name.
pub const MESSAGE_PROTOCOL: &str = "/darkswap/msg/2";
/// Longest message text, in bytes of UTF-8. Messages are for humans (a hello, a question about an
/// order); anything bigger belongs to a dedicated protocol.
pub const MAX_MESSAGE_TEXT_BYTES: usize = 4096;
/// Cap on one encoded message: the text cap plus room for the field headers and the time.
pub const MAX_MESSAGE_FRAME_BYTES: u64 = MAX_MESSAGE_TEXT_BYTES as u64 + 64;
/// Longest refusal reason in an acknowledgement, in bytes.
pub const MAX_ACK_REASON_BYTES: usize = 256;
/// Cap on one encoded acknowledgement.
pub const MAX_ACK_FRAME_BYTES: u64 = MAX_ACK_REASON_BYTES as u64 + 64;

/// A message from one peer to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectMessage {
    /// The text, at most [`MAX_MESSAGE_TEXT_BYTES`] bytes, no control characters but newline.
    pub text: String,
    /// Sender's wall clock, milliseconds since the Unix epoch (informational only).
    pub sent_at_ms: u64,
}

/// The receiver's acknowledgement of a [`DirectMessage`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectAck {
    /// Whether the receiver accepted the message (it refuses invalid ones).
    pub accepted: bool,
    /// Why it refused, when it did (at most [`MAX_ACK_REASON_BYTES`]).
    pub reason: Option<String>,
}

/// Why bytes are not a direct message or acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageWireError {
    /// Longer than the message's cap.
    #[error(transparent)]
    TooLong(#[from] crate::frame::TooLong),
    /// Not protobuf of the expected shape (or text that is not UTF-8).
    #[error("not a valid direct message frame")]
    Decode(#[source] prost::DecodeError),
    /// An acknowledgement's reason is too long or holds control characters.
    #[error("acknowledgement reason is too long or holds control characters")]
    BadReason,
}

mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirectMessage {
        #[prost(string, tag = "1")]
        pub text: String,
        #[prost(uint64, tag = "2")]
        pub sent_at_ms: u64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DirectAck {
        #[prost(bool, tag = "1")]
        pub accepted: bool,
        #[prost(string, tag = "2")]
        pub reason: String,
    }
}

/// Why a message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// Nothing but whitespace.
    #[error("message is empty")]
    Empty,
    /// Over [`MAX_MESSAGE_TEXT_BYTES`].
    #[error("message is {len} bytes, more than the {max} allowed")]
    TooLong {
        /// Its length in bytes.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// A control character other than newline.
    #[error("message contains a control character (U+{code:04X})")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
    },
}

impl DirectMessage {
    /// Builds a message after checking its text.
    pub fn new(text: impl Into<String>, sent_at_ms: u64) -> Result<Self, MessageError> {
        let message = Self {
            text: text.into(),
            sent_at_ms,
        };
        message.validate()?;
        Ok(message)
    }

    /// Checks a message, whether built here or received from the network.
    pub fn validate(&self) -> Result<(), MessageError> {
        if self.text.trim().is_empty() {
            return Err(MessageError::Empty);
        }
        if self.text.len() > MAX_MESSAGE_TEXT_BYTES {
            return Err(MessageError::TooLong {
                len: self.text.len(),
                max: MAX_MESSAGE_TEXT_BYTES,
            });
        }
        if let Some(c) = self.text.chars().find(|c| c.is_control() && *c != '\n') {
            return Err(MessageError::ControlCharacter { code: c as u32 });
        }
        Ok(())
    }

    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::DirectMessage {
            text: self.text.clone(),
            sent_at_ms: self.sent_at_ms,
        }
        .encode_to_vec()
    }

    /// Decodes a message of at most [`MAX_MESSAGE_FRAME_BYTES`]. The text is not judged here:
    /// the receiver answers an unacceptable one with a refusal that says why.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageWireError> {
        crate::frame::within(bytes, MAX_MESSAGE_FRAME_BYTES)?;
        let m = pb::DirectMessage::decode(bytes).map_err(MessageWireError::Decode)?;
        Ok(Self {
            text: m.text,
            sent_at_ms: m.sent_at_ms,
        })
    }
}

impl DirectAck {
    /// The receiver's answer to `message`: accepted, or refused with the validation error.
    pub fn for_message(message: &DirectMessage) -> Self {
        match message.validate() {
            Ok(()) => Self {
                accepted: true,
                reason: None,
            },
            Err(e) => Self {
                accepted: false,
                reason: Some(e.to_string()),
            },
        }
    }

    /// Its protobuf encoding.
    pub fn encode(&self) -> Vec<u8> {
        pb::DirectAck {
            accepted: self.accepted,
            reason: self.reason.clone().unwrap_or_default(),
        }
        .encode_to_vec()
    }

    /// Decodes an acknowledgement of at most [`MAX_ACK_FRAME_BYTES`] with a reason of at most
    /// [`MAX_ACK_REASON_BYTES`] and no control characters.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageWireError> {
        crate::frame::within(bytes, MAX_ACK_FRAME_BYTES)?;
        let a = pb::DirectAck::decode(bytes).map_err(MessageWireError::Decode)?;
        if a.reason.len() > MAX_ACK_REASON_BYTES || a.reason.chars().any(char::is_control) {
            return Err(MessageWireError::BadReason);
        }
        Ok(Self {
            accepted: a.accepted,
            reason: (!a.reason.is_empty()).then_some(a.reason),
        })
    }
}

crate::impl_frame!(DirectMessage, MAX_MESSAGE_FRAME_BYTES, MessageWireError);
crate::impl_frame!(DirectAck, MAX_ACK_FRAME_BYTES, MessageWireError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_text() {
        let m = DirectMessage::new("hello from A\nline two", 1).unwrap();
        assert!(DirectAck::for_message(&m).accepted);
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(DirectMessage::new("  ", 0), Err(MessageError::Empty));
        let long = "x".repeat(MAX_MESSAGE_TEXT_BYTES + 1);
        assert!(matches!(
            DirectMessage::new(long, 0),
            Err(MessageError::TooLong { .. })
        ));
        assert_eq!(
            DirectMessage::new("a\u{7}b", 0),
            Err(MessageError::ControlCharacter { code: 7 })
        );
        let forged = DirectMessage {
            text: String::new(),
            sent_at_ms: 0,
        };
        let ack = DirectAck::for_message(&forged);
        assert!(!ack.accepted);
        assert_eq!(ack.reason.as_deref(), Some("message is empty"));
    }

    #[test]
    fn the_longest_message_and_reason_fit_their_caps() {
        let m = DirectMessage {
            text: "é".repeat(MAX_MESSAGE_TEXT_BYTES / 2),
            sent_at_ms: u64::MAX,
        };
        let bytes = m.encode();
        assert!(bytes.len() as u64 <= MAX_MESSAGE_FRAME_BYTES);
        assert_eq!(DirectMessage::decode(&bytes).unwrap(), m);
        let ack = DirectAck {
            accepted: false,
            reason: Some("r".repeat(MAX_ACK_REASON_BYTES)),
        };
        let bytes = ack.encode();
        assert!(bytes.len() as u64 <= MAX_ACK_FRAME_BYTES);
        assert_eq!(DirectAck::decode(&bytes).unwrap(), ack);
        // Every refusal this side writes fits.
        let long = DirectMessage {
            text: "x".repeat(MAX_MESSAGE_TEXT_BYTES * 2),
            sent_at_ms: 0,
        };
        let refusal = DirectAck::for_message(&long);
        assert!(DirectAck::decode(&refusal.encode()).is_ok());
    }

    #[test]
    fn bad_frames_are_refused() {
        let bad_reason = pb::DirectAck {
            accepted: false,
            reason: "a\u{1b}[31m".into(),
        }
        .encode_to_vec();
        assert_eq!(
            DirectAck::decode(&bad_reason),
            Err(MessageWireError::BadReason)
        );
        let not_utf8 = [10, 2, 0xff, 0xfe];
        assert!(matches!(
            DirectMessage::decode(&not_utf8),
            Err(MessageWireError::Decode(_))
        ));
        assert!(matches!(
            DirectMessage::decode(&vec![0; MAX_MESSAGE_FRAME_BYTES as usize + 1]),
            Err(MessageWireError::TooLong(_))
        ));
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn round_trip(text in ".{0,200}", at in proptest::prelude::any::<u64>()) {
            let m = DirectMessage { text, sent_at_ms: at };
            proptest::prop_assert_eq!(DirectMessage::decode(&m.encode()).unwrap(), m);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(m) = DirectMessage::decode(&bytes) {
                let _ = m.validate();
            }
            let _ = DirectAck::decode(&bytes);
        }
    }
}
