//! `/darkswap/auth/1` on the client: the codec (shared with the relay) and the glue between the
//! node and darkswap-auth's client state machine.

use darkswap_auth::wire::{
    AuthRequest, AuthResponse, MAX_AUTH_REQUEST_BYTES, MAX_AUTH_RESPONSE_BYTES,
};

use crate::codec::{Frame, FrameCodec};

impl Frame for AuthRequest {
    const MAX_BYTES: u64 = MAX_AUTH_REQUEST_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        AuthRequest::decode(bytes).map_err(|e| e.to_string())
    }
}

impl Frame for AuthResponse {
    const MAX_BYTES: u64 = MAX_AUTH_RESPONSE_BYTES;
    fn to_bytes(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        AuthResponse::decode(bytes).map_err(|e| e.to_string())
    }
}

/// `/darkswap/auth/1`.
pub type AuthCodec = FrameCodec<AuthRequest, AuthResponse>;
