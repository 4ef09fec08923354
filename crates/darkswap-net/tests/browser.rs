//! The networking crate in a real browser (headless Chromium via `wasm-pack test`), against a
//! real relay that the test script started. `DARKSWAP_TEST_RELAY_INFO` (set at build time) is the
//! relay's `/api/relay-info` URL; `scripts/wasm-tests` runs this inside a test network namespace
//! where Chromium can use WebRTC.
#![cfg(target_arch = "wasm32")]

use std::time::Duration;

use darkswap_net::libp2p::{identity::Keypair, Multiaddr};
use darkswap_net::relay_info::fetch_relay_info;
use darkswap_net::{new_node, transport_kind, NodeConfig, NodeEvent, RelayStatus, TransportKind};
use futures::channel::mpsc;
use futures::StreamExt;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const RELAY_INFO: Option<&str> = option_env!("DARKSWAP_TEST_RELAY_INFO");
/// The test namespace's own address (see scripts/netns-run); never a real network.
const TEST_HOST: &str = "/ip4/10.77.0.1/";

async fn relay_addrs(kind: TransportKind) -> Vec<Multiaddr> {
    let url = RELAY_INFO.expect("build with DARKSWAP_TEST_RELAY_INFO=<relay>/api/relay-info");
    let (_, addrs) = fetch_relay_info(url).await.expect("relay-info");
    let picked: Vec<Multiaddr> = addrs
        .into_iter()
        .filter(|a| transport_kind(a) == kind && a.to_string().starts_with(TEST_HOST))
        .collect();
    assert!(
        !picked.is_empty(),
        "relay lists no {kind} address on {TEST_HOST}"
    );
    picked
}

async fn next_matching<T>(
    events: &mut mpsc::Receiver<NodeEvent>,
    what: &str,
    mut pick: impl FnMut(NodeEvent) -> Option<T>,
) -> T {
    let wait = async {
        while let Some(event) = events.next().await {
            if let Some(v) = pick(event) {
                return Some(v);
            }
        }
        None
    };
    let timeout = futures_timer::Delay::new(Duration::from_secs(30));
    futures::pin_mut!(wait);
    match futures::future::select(wait, timeout).await {
        futures::future::Either::Left((Some(v), _)) => v,
        futures::future::Either::Left((None, _)) => panic!("node stopped while waiting for {what}"),
        futures::future::Either::Right(_) => panic!("timed out waiting for {what}"),
    }
}

async fn reserved(events: &mut mpsc::Receiver<NodeEvent>) -> TransportKind {
    next_matching(events, "a reservation", |e| match e {
        NodeEvent::Relay(RelayStatus::Reserved { transport, .. }) => Some(transport),
        _ => None,
    })
    .await
}

#[wasm_bindgen_test]
async fn webrtc_and_websocket_nodes_reserve_and_message_through_the_relay() {
    let (a, a_handle, mut a_events) = new_node(
        Keypair::generate_ed25519(),
        NodeConfig::new(relay_addrs(TransportKind::WebRtcDirect).await),
    )
    .await
    .expect("node A");
    wasm_bindgen_futures::spawn_local(a.run());
    let (b, b_handle, mut b_events) = new_node(
        Keypair::generate_ed25519(),
        NodeConfig::new(relay_addrs(TransportKind::WebSocket).await),
    )
    .await
    .expect("node B");
    wasm_bindgen_futures::spawn_local(b.run());

    assert_eq!(reserved(&mut a_events).await, TransportKind::WebRtcDirect);
    assert_eq!(reserved(&mut b_events).await, TransportKind::WebSocket);

    let b_id = b_handle.local_peer_id();
    next_matching(&mut a_events, "B in A's directory", |e| match e {
        NodeEvent::Peers { peers, .. } if peers.contains(&b_id) => Some(()),
        _ => None,
    })
    .await;
    let id = a_handle
        .send_message(b_id, "hello over a circuit".into())
        .expect("queued");
    let text = next_matching(&mut b_events, "A's message at B", |e| match e {
        NodeEvent::MessageReceived { text, .. } => Some(text),
        _ => None,
    })
    .await;
    assert_eq!(text, "hello over a circuit");
    next_matching(&mut a_events, "the delivery report", |e| match e {
        NodeEvent::MessageDelivered {
            id: got, accepted, ..
        } if got == id => {
            assert!(accepted);
            Some(())
        }
        NodeEvent::MessageFailed { reason, .. } => panic!("delivery failed: {reason}"),
        _ => None,
    })
    .await;
}

#[wasm_bindgen_test]
async fn unreachable_relay_reports_failure_and_retries() {
    // A relay address on the test host where nothing listens.
    let peer = Keypair::generate_ed25519().public().to_peer_id();
    let addr: Multiaddr = format!("/ip4/10.77.0.1/tcp/9/ws/p2p/{peer}")
        .parse()
        .expect("multiaddr");
    let (node, _handle, mut events) =
        new_node(Keypair::generate_ed25519(), NodeConfig::new(vec![addr]))
            .await
            .expect("node");
    wasm_bindgen_futures::spawn_local(node.run());
    let retry_in = next_matching(&mut events, "a failure", |e| match e {
        NodeEvent::Relay(RelayStatus::Failed { retry_in, .. }) => Some(retry_in),
        _ => None,
    })
    .await;
    assert!(retry_in > Duration::ZERO);
    next_matching(&mut events, "a second attempt", |e| match e {
        NodeEvent::Relay(RelayStatus::Connecting { attempt }) if attempt >= 2 => Some(()),
        _ => None,
    })
    .await;
}
