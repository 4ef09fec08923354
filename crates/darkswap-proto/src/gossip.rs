//! Order gossip, the parts shared by traders and relays: the gossipsub configuration for each
//! role and message ids.
//!
//! Gossip runs in libp2p's anonymous mode: the payload is a maker-signed order message (see
//! [`crate::order`]), so a second, gossip-level signature would only add bytes. Message ids are
//! the SHA-256 of the payload, so the same signed message is one message however many paths
//! bring it.

use std::time::Duration;

use libp2p::gossipsub::{self, MessageId, ValidationMode};
use sha2::{Digest, Sha256};

/// Largest gossipsub frame accepted. Far above an order message's own cap on purpose: an
/// oversized order must reach our validator, to be refused *and counted*, instead of vanishing
/// in the codec.
pub const MAX_GOSSIP_FRAME_BYTES: usize = 64 * 1024;

/// Who runs the gossip node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GossipRole {
    /// A trader: one relay link, a small mesh.
    Trader,
    /// A relay: the hub for its traders. It keeps every subscribed peer in its mesh, so an order
    /// reaches every trader in one hop instead of waiting for lazy gossip.
    Relay,
}

/// Why the gossip behaviour could not be built.
#[derive(Debug, thiserror::Error)]
pub enum GossipConfigError {
    /// libp2p refused the configuration built for the role.
    #[error("invalid gossipsub configuration: {0}")]
    Config(#[from] gossipsub::ConfigBuilderError),
    /// libp2p could not build the behaviour from the configuration (its message).
    #[error("cannot build gossipsub: {0}")]
    Behaviour(&'static str),
}

/// The gossipsub configuration for a role. Messages are held until the application validates
/// them (`report_message_validation_result`): nothing unverified is ever forwarded.
pub fn gossipsub_config(role: GossipRole) -> Result<gossipsub::Config, GossipConfigError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|message: &gossipsub::Message| {
            MessageId::from(Sha256::digest(&message.data).to_vec())
        })
        .max_transmit_size(MAX_GOSSIP_FRAME_BYTES)
        .heartbeat_interval(Duration::from_secs(1))
        .duplicate_cache_time(Duration::from_secs(120));
    match role {
        GossipRole::Trader => {
            builder
                .mesh_n_low(1)
                .mesh_n(2)
                .mesh_n_high(4)
                .mesh_outbound_min(0);
        }
        GossipRole::Relay => {
            builder
                .mesh_n_low(1)
                .mesh_n(4_096)
                .mesh_n_high(8_192)
                .mesh_outbound_min(0)
                .gossip_lazy(6);
        }
    }
    Ok(builder.build()?)
}

/// The gossipsub behaviour for a role.
pub fn gossipsub_behaviour(role: GossipRole) -> Result<gossipsub::Behaviour, GossipConfigError> {
    gossipsub::Behaviour::new(
        gossipsub::MessageAuthenticity::Anonymous,
        gossipsub_config(role)?,
    )
    .map_err(GossipConfigError::Behaviour)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_roles_have_valid_configs() {
        assert!(gossipsub_behaviour(GossipRole::Trader).is_ok());
        assert!(gossipsub_behaviour(GossipRole::Relay).is_ok());
    }
}
