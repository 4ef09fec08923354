//! `/darkswap/msg/1`: a short text message from one trader to another, acknowledged by the
//! receiver. The sender measures the round trip from request to acknowledgement.

use serde::{Deserialize, Serialize};

/// Longest message text, in bytes of UTF-8. Messages are for humans (a hello, a question about an
/// order); anything bigger belongs to a dedicated protocol.
pub const MAX_MESSAGE_TEXT_BYTES: usize = 4096;

/// A message from one peer to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectMessage {
    /// The text, at most [`MAX_MESSAGE_TEXT_BYTES`] bytes, no control characters but newline.
    pub text: String,
    /// Sender's wall clock, milliseconds since the Unix epoch (informational only).
    pub sent_at_ms: u64,
}

/// The receiver's acknowledgement of a [`DirectMessage`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectAck {
    /// Whether the receiver accepted the message (it refuses invalid ones).
    pub accepted: bool,
    /// Why it refused, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a message is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("message is empty")]
    Empty,
    #[error("message is {len} bytes, more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("message contains a control character (U+{code:04X})")]
    ControlCharacter { code: u32 },
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
}

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
    fn rejects_unknown_fields() {
        let r: Result<DirectMessage, _> =
            serde_json::from_str(r#"{"text":"hi","sent_at_ms":1,"extra":true}"#);
        assert!(r.is_err());
    }

    #[cfg(not(target_arch = "wasm32"))]
    proptest::proptest! {
        #[test]
        fn json_round_trip(text in ".{0,200}", at in proptest::prelude::any::<u64>()) {
            let m = DirectMessage { text, sent_at_ms: at };
            let bytes = serde_json::to_vec(&m).unwrap();
            let back: DirectMessage = serde_json::from_slice(&bytes).unwrap();
            proptest::prop_assert_eq!(back, m);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(m) = serde_json::from_slice::<DirectMessage>(&bytes) {
                let _ = m.validate();
            }
        }
    }
}
