//! Order gossip, the parts shared by traders and relays: the gossipsub configuration for each
//! role and message ids.
//!
//! Gossip runs in libp2p's anonymous mode: the payload is a maker-signed order message (see
//! [`crate::order`]), so a second, gossip-level signature would only add bytes. Message ids are
//! the SHA-256 of the payload, so the same signed message is one message however many paths
//! bring it.
//!
//! Subscriptions pass [`PairTopics`]: only order topics, and at most [`MAX_FOLLOWED_PAIRS`] per
//! peer. gossipsub's own default filter allows 100 topics per peer and per message, which a relay
//! following more than 100 pairs exceeds: its traders then refused its announcements and could
//! not publish on the pairs they no longer knew it followed.

use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentityTransform, MaxCountSubscriptionFilter, MessageId, TopicHash,
    TopicSubscriptionFilter, ValidationMode,
};
use sha2::{Digest, Sha256};

use crate::order::parse_order_topic;

/// Most pairs one peer may follow as we see it, and the most a relay may follow: a relay's
/// `max_pairs` is capped at this, so that every trader accepts every pair its relay announces.
pub const MAX_FOLLOWED_PAIRS: usize = 1_024;

/// The subscription filter both roles use: [`PairTopics`], at most [`MAX_FOLLOWED_PAIRS`] per
/// peer and per message (a message that would take a peer past it is refused whole: gossipsub
/// logs it and ignores the message's subscriptions).
pub type PairFilter = MaxCountSubscriptionFilter<PairTopics>;

/// The gossip behaviour with [`PairFilter`].
pub type Gossip = gossipsub::Behaviour<IdentityTransform, PairFilter>;

/// Subscriptions to anything but a canonical order topic are dropped, ours and peers'.
#[derive(Debug, Clone, Copy, Default)]
pub struct PairTopics;

impl TopicSubscriptionFilter for PairTopics {
    fn can_subscribe(&mut self, topic_hash: &TopicHash) -> bool {
        parse_order_topic(topic_hash.as_str()).is_some()
    }
}

/// [`PairFilter`] with its caps.
pub fn pair_filter() -> PairFilter {
    MaxCountSubscriptionFilter {
        filter: PairTopics,
        max_subscribed_topics: MAX_FOLLOWED_PAIRS,
        max_subscriptions_per_request: MAX_FOLLOWED_PAIRS,
    }
}

/// Largest gossipsub frame accepted. Far above an order message's own cap on purpose: an
/// oversized order must reach our validator, to be refused *and counted*, instead of vanishing
/// in the codec. It must also hold a relay's whole subscription list, which gossipsub sends in
/// one frame when a peer connects: [`MAX_FOLLOWED_PAIRS`] topics of up to
/// [`MAX_ORDER_TOPIC_BYTES`] each (a test checks the sum).
pub const MAX_GOSSIP_FRAME_BYTES: usize = 128 * 1024;

/// Longest order topic: the prefix and two canonical asset ids of the longest kind.
pub const MAX_ORDER_TOPIC_BYTES: usize =
    "darkswap/orders/1/-".len() + 2 * darkswap_orderbook::MAX_ASSET_ID_BYTES;

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
    /// libp2p refused the peer-scoring parameters (its message).
    #[error("invalid gossipsub peer scoring: {0}")]
    Scoring(String),
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
        // Subscriptions count as control: gossipsub's 16 KiB default failed the stream of a
        // trader whose relay's hello listed about 380 pairs.
        .max_control_message_size(MAX_GOSSIP_FRAME_BYTES)
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

/// The gossipsub behaviour for a role. A relay scores its peers (see [`relay_score_params`]).
pub fn gossipsub_behaviour(role: GossipRole) -> Result<Gossip, GossipConfigError> {
    let mut gossip = Gossip::new_with_subscription_filter(
        gossipsub::MessageAuthenticity::Anonymous,
        gossipsub_config(role)?,
        pair_filter(),
    )
    .map_err(GossipConfigError::Behaviour)?;
    if role == GossipRole::Relay {
        gossip
            .with_peer_score(
                relay_score_params(),
                gossipsub::PeerScoreThresholds::default(),
            )
            .map_err(GossipConfigError::Scoring)?;
    }
    Ok(gossip)
}

/// The score a relay gives a peer below the level publishing needs: under zero, so gossipsub
/// keeps it out of the mesh (whose members' connections stay open) and it reads the book by
/// lazy gossip and book sync; above the gossip threshold (-10), so it still gets that gossip.
pub const BELOW_PUBLISHING_SCORE: f64 = -1.0;

/// A relay's peer scoring: the application's score only (the relay validates every message
/// itself and says who may publish). IP colocation, behaviour and slow-peer penalties are off:
/// traders behind one address (carrier-grade NAT, an office, a TLS proxy, every test on
/// loopback) would be scored down for sharing it, and a relay under load for being slow.
pub fn relay_score_params() -> gossipsub::PeerScoreParams {
    gossipsub::PeerScoreParams {
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: 0.0,
        slow_peer_weight: 0.0,
        ..gossipsub::PeerScoreParams::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_roles_have_valid_configs() {
        assert!(gossipsub_behaviour(GossipRole::Trader).is_ok());
        assert!(gossipsub_behaviour(GossipRole::Relay).is_ok());
    }

    #[test]
    fn a_full_subscription_list_fits_one_frame() {
        // Per subscription: the SubOpts field's tag and length (3), `subscribe` (2), the topic's
        // tag and length (2); the RPC's own framing is under 16 bytes.
        let per = 3 + 2 + 2 + MAX_ORDER_TOPIC_BYTES;
        assert!(MAX_FOLLOWED_PAIRS * per + 16 <= MAX_GOSSIP_FRAME_BYTES);
        let longest = crate::order::order_topic(
            &darkswap_orderbook::Pair::parse(
                "RUNE:ABCDEFGHIJKLMNOPQRSTUVWXYZAB/RUNE:BCDEFGHIJKLMNOPQRSTUVWXYZABC",
            )
            .unwrap(),
        );
        assert!(longest.len() <= MAX_ORDER_TOPIC_BYTES, "{longest}");
    }

    #[test]
    fn the_filter_keeps_order_topics_only() {
        let pair = darkswap_orderbook::Pair::parse("RUNE:X/BTC").unwrap();
        let mut filter = pair_filter();
        assert!(filter.can_subscribe(&TopicHash::from_raw(crate::order::order_topic(&pair))));
        assert!(!filter.can_subscribe(&TopicHash::from_raw("junk")));
        assert!(!filter.can_subscribe(&TopicHash::from_raw("darkswap/orders/1/btc-RUNE:X")));
        // Above gossipsub's default of 100, which a relay's hello exceeded.
        assert_eq!(filter.max_subscribed_topics, MAX_FOLLOWED_PAIRS);
        assert_eq!(filter.max_subscriptions_per_request, MAX_FOLLOWED_PAIRS);
    }
}
