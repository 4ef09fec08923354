//! The trader's network behaviour: relay client, identify, ping, direct messages, the relay
//! directory, order gossip, book sync, trade negotiation and relay authentication, combined.

use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, identity, ping, relay, StreamProtocol};

use darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL;
use darkswap_proto::codecs::{
    AuthCodec, BookSyncCodec, DirectoryCodec, MessageCodec, RelayRecordsCodec, TradeCodec,
};
use darkswap_proto::gossip::{gossipsub_behaviour, Gossip, GossipConfigError, GossipRole};
use darkswap_proto::{DIRECTORY_PROTOCOL, IDENTIFY_PROTOCOL_VERSION, MESSAGE_PROTOCOL};

use crate::NodeConfig;

#[derive(NetworkBehaviour)]
pub(crate) struct ClientBehaviour {
    pub relay_client: relay::client::Behaviour,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub messages: request_response::Behaviour<MessageCodec>,
    pub directory: request_response::Behaviour<DirectoryCodec>,
    pub gossip: Gossip,
    pub book_sync: request_response::Behaviour<BookSyncCodec>,
    pub trades: request_response::Behaviour<TradeCodec>,
    pub auth: request_response::Behaviour<AuthCodec>,
    /// Asks the relay for the relay records it knows (the pool learns from them).
    pub records: request_response::Behaviour<RelayRecordsCodec>,
}

impl ClientBehaviour {
    pub fn new(
        key: &identity::Keypair,
        relay_client: relay::client::Behaviour,
        config: &NodeConfig,
    ) -> Result<Self, GossipConfigError> {
        let rr_config = request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(64);
        Ok(Self {
            relay_client,
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL_VERSION.to_string(),
                key.public(),
            )),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(config.ping_interval)
                    .with_timeout(config.ping_timeout),
            ),
            messages: request_response::Behaviour::with_codec(
                MessageCodec::default(),
                [(StreamProtocol::new(MESSAGE_PROTOCOL), ProtocolSupport::Full)],
                rr_config.clone(),
            ),
            directory: request_response::Behaviour::with_codec(
                DirectoryCodec::default(),
                [(
                    StreamProtocol::new(DIRECTORY_PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                rr_config.clone(),
            ),
            gossip: gossipsub_behaviour(GossipRole::Trader)?,
            book_sync: request_response::Behaviour::with_codec(
                BookSyncCodec::default(),
                [(
                    StreamProtocol::new(BOOK_SYNC_PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                rr_config.clone(),
            ),
            trades: request_response::Behaviour::with_codec(
                TradeCodec::default(),
                [(
                    StreamProtocol::new(darkswap_proto::trade::TRADE_PROTOCOL),
                    ProtocolSupport::Full,
                )],
                rr_config.clone(),
            ),
            auth: request_response::Behaviour::with_codec(
                AuthCodec::default(),
                [(
                    StreamProtocol::new(darkswap_auth::AUTH_PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                rr_config.clone(),
            ),
            records: request_response::Behaviour::with_codec(
                RelayRecordsCodec::default(),
                [(
                    StreamProtocol::new(darkswap_proto::relay_record::RELAY_RECORDS_PROTOCOL),
                    ProtocolSupport::Outbound,
                )],
                rr_config,
            ),
        })
    }
}
