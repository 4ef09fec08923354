//! Building the relay's swarm and the addresses it listens on and announces.

use std::net::IpAddr;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::multiaddr::Protocol;
use libp2p::{dns, noise, tcp, websocket, yamux, Multiaddr, Swarm, Transport as _};
use prometheus_client::registry::Registry;

use crate::behaviour::RelayBehaviour;
use crate::config::Config;
use crate::defaults;
use crate::gate::Gate;
use crate::identity::Identity;
use crate::metrics::ReleasedByLabels;
use crate::proxy_transport::ProxiedTransport;
use crate::webrtc_hold::{HoldCounters, HoldOutbound};

/// Why the swarm could not be built: a transport or the behaviour refused its configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the libp2p node: {0}")]
pub struct BuildError(#[source] Box<dyn std::error::Error + Send + Sync>);

fn build_error(e: impl std::error::Error + Send + Sync + 'static) -> BuildError {
    BuildError(Box::new(e))
}

/// The relay's swarm: TCP, WebRTC-direct, WebSocket (with DNS), and [`RelayBehaviour`]; with
/// per-byte bandwidth metrics when metrics are on.
pub async fn build_swarm(
    identity: Identity,
    config: &Config,
    registry: &mut Registry,
    gate: Gate,
    metrics: &crate::metrics::RelayMetrics,
) -> Result<Swarm<RelayBehaviour>, BuildError> {
    let Identity {
        keypair,
        certificate,
    } = identity;
    // One statement per counter: the family's guard lives to the end of its statement, and a
    // second `get_or_create` in the same one would wait on it for ever.
    let counter = |released_by| {
        metrics
            .webrtc_outbound_holds
            .get_or_create(&ReleasedByLabels { released_by })
            .clone()
    };
    let by_inbound = counter("inbound");
    let by_deadline = counter("deadline");
    let holds = HoldCounters {
        by_inbound,
        by_deadline,
    };
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(build_error)?
        .with_other_transport(|key| {
            libp2p_webrtc::tokio::Transport::new(key.clone(), certificate).map(
                move |(peer, conn), _| {
                    let conn = HoldOutbound::new(conn, holds.clone());
                    (peer, StreamMuxerBox::new(conn))
                },
            )
        })
        .map_err(build_error)?
        // WebSocket over DNS over TCP, as libp2p's `with_websocket` builds it, with the TLS
        // proxy's PROXY header taken off first when `ws_trusted_proxies` is set.
        .with_other_transport(|key| {
            let tcp = ProxiedTransport::new(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true)),
                &config.ws_trusted_proxies,
                metrics.ws_proxy_headers.clone(),
            );
            let noise = noise::Config::new(key)?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                websocket::Config::new(dns::tokio::Transport::system(tcp)?)
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .map(|(peer, muxer), _| (peer, StreamMuxerBox::new(muxer))),
            )
        })
        .map_err(build_error)?
        .with_dns()
        .map_err(build_error)?;
    // The rest of the build, the same with or without per-byte bandwidth accounting.
    macro_rules! finish {
        ($builder:expr) => {
            $builder
                .with_behaviour(|key| {
                    RelayBehaviour::new(key, &config.limits, gate, metrics)
                        .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
                })
                .map_err(build_error)?
                .with_swarm_config(|c| {
                    c.with_idle_connection_timeout(defaults::IDLE_CONNECTION_TIMEOUT)
                })
                .build()
        };
    }
    let swarm = if config.metrics {
        finish!(swarm.with_bandwidth_metrics(registry))
    } else {
        finish!(swarm)
    };
    Ok(swarm)
}

/// The three listen addresses: TCP, WebSocket and WebRTC-direct on the configured IP and ports.
pub fn listen_addrs(config: &Config) -> [Multiaddr; 3] {
    let ip = ip_protocol(config.listen_ip);
    [
        Multiaddr::empty()
            .with(ip.clone())
            .with(Protocol::Tcp(config.tcp_port)),
        Multiaddr::empty()
            .with(ip.clone())
            .with(Protocol::Tcp(config.ws_port))
            .with(Protocol::Ws("/".into())),
        Multiaddr::empty()
            .with(ip)
            .with(Protocol::Udp(config.webrtc_port))
            .with(Protocol::WebRTCDirect),
    ]
}

fn ip_protocol(ip: IpAddr) -> Protocol<'static> {
    match ip {
        IpAddr::V4(v4) => Protocol::Ip4(v4),
        IpAddr::V6(v6) => Protocol::Ip6(v6),
    }
}

/// A configured WebRTC-direct address without `/certhash` gets ours: browsers cannot dial it
/// without the certificate's hash, and operators should not have to compute it.
pub fn with_certhash(
    addr: &Multiaddr,
    certhash: &libp2p::multiaddr::multihash::Multihash<64>,
) -> Multiaddr {
    let webrtc = addr.iter().any(|p| matches!(p, Protocol::WebRTCDirect));
    let has_hash = addr.iter().any(|p| matches!(p, Protocol::Certhash(_)));
    if webrtc && !has_hash {
        addr.clone().with(Protocol::Certhash(*certhash))
    } else {
        addr.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_webrtc_addresses_get_the_certhash() {
        let hash = libp2p::multiaddr::multihash::Multihash::<64>::wrap(0x12, &[7; 32]).unwrap();
        let webrtc: Multiaddr = "/ip4/203.0.113.7/udp/4003/webrtc-direct".parse().unwrap();
        let done = with_certhash(&webrtc, &hash);
        assert!(done.iter().any(|p| matches!(p, Protocol::Certhash(_))));
        assert_eq!(with_certhash(&done, &hash), done, "never twice");
        let wss: Multiaddr = "/dns4/relay.example.org/tcp/4443/wss".parse().unwrap();
        assert_eq!(with_certhash(&wss, &hash), wss);
    }
}
