//! Builds the swarm for the current target: TCP and WebSocket natively; WebRTC-direct with a
//! WebSocket fallback in the browser. Both add the circuit-relay client transport.

use libp2p::{identity::Keypair, noise, yamux, Swarm};

use crate::behaviour::ClientBehaviour;
use crate::NodeConfig;

/// Why the swarm could not be built (a transport or the behaviour refused its configuration).
#[derive(Debug, thiserror::Error)]
#[error("cannot build the libp2p node: {0}")]
pub struct BuildError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn build_error(e: impl std::error::Error + Send + Sync + 'static) -> BuildError {
    BuildError(Box::new(e))
}

/// The part of the build both targets share once their transports are in: the circuit-relay
/// client, the behaviour, and the swarm's configuration.
macro_rules! finish {
    ($builder:expr, $config:expr) => {
        Ok($builder
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(build_error)?
            .with_behaviour(|key, relay_client| {
                ClientBehaviour::new(key, relay_client, $config)
                    .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
            })
            .map_err(build_error)?
            .with_swarm_config(|c| swarm_config(c, $config))
            .build())
    };
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) async fn build_swarm(
    keypair: Keypair,
    config: &NodeConfig,
) -> Result<Swarm<ClientBehaviour>, BuildError> {
    use libp2p::tcp;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(build_error)?
        .with_dns()
        .map_err(build_error)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(build_error)?;
    finish!(swarm, config)
}

#[cfg(target_arch = "wasm32")]
pub(crate) async fn build_swarm(
    keypair: Keypair,
    config: &NodeConfig,
) -> Result<Swarm<ClientBehaviour>, BuildError> {
    use futures::future::Either;
    use libp2p::core::muxing::StreamMuxerBox;
    use libp2p::core::transport::timeout::TransportTimeout;
    use libp2p::core::upgrade::Version;
    use libp2p::{webrtc_websys, websocket_websys, Transport as _};

    let webrtc_timeout = config.webrtc_dial_timeout;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_wasm_bindgen()
        .with_other_transport(|key| {
            // A WebRTC dial can stall when the browser gathers no ICE candidates; the timeout
            // turns that into a failure so the next (WebSocket) address is tried.
            let webrtc = TransportTimeout::with_outgoing_timeout(
                webrtc_websys::Transport::new(webrtc_websys::Config::new(key)),
                webrtc_timeout,
            );
            let websocket = websocket_websys::Transport::default()
                .map(|connection, _| crate::browser_ws::HandedOver::new(connection))
                .upgrade(Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(webrtc.or_transport(websocket).map(
                |either, _| match either {
                    Either::Left((peer, muxer)) => (peer, StreamMuxerBox::new(muxer)),
                    Either::Right((peer, muxer)) => (peer, StreamMuxerBox::new(muxer)),
                },
            ))
        })
        .map_err(build_error)?;
    finish!(swarm, config)
}

fn swarm_config(c: libp2p::swarm::Config, config: &NodeConfig) -> libp2p::swarm::Config {
    // One address at a time, in our order of preference: this is what makes WebSocket a
    // fallback for WebRTC-direct rather than a race.
    c.with_dial_concurrency_factor(std::num::NonZeroU8::MIN)
        .with_idle_connection_timeout(config.idle_connection_timeout)
}
