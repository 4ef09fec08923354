//! The trader's own metrics: what its node saw, as counters and gauges, a short history for
//! charts, and Prometheus text for a bug report. Fed from the node's events, so the browser and
//! the CLI count the same way. Everything is bounded: the history is a ring of
//! [`HISTORY_SAMPLES`], and label values come from closed sets.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

use crate::event::TradingEvent;
use crate::event::{AuthEvent, NodeEvent, RelayStatus};
use crate::negotiation::{E2eEvent, TradeState};
use darkswap_proto::auth::Grant;

/// Samples kept for charts.
pub const HISTORY_SAMPLES: usize = 120;
/// Milliseconds between samples: 120 × 5 s = the last 10 minutes.
pub const SAMPLE_INTERVAL_MS: u64 = 5_000;

/// Relays tracked in [`ClientMetrics::relays`] at once (the pool holds 64 by default); past it,
/// relays no longer in the pool make room.
pub const MAX_RELAYS_TRACKED: usize = 128;

/// What we saw of one relay.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RelayCounters {
    /// Reservations it granted us: one each time it joined the relays we are reachable through
    /// (as the link's relay or a standby; a standby that becomes the link keeps its own).
    pub reservations: u64,
    /// Times our link to it failed (dropped, unreachable, or refused).
    pub losses: u64,
    /// Times the link moved away from it, and to it.
    pub failovers_from: u64,
    /// See `failovers_from`.
    pub failovers_to: u64,
    /// Its average round trip in the pool, if measured.
    pub rtt_ms: Option<f64>,
    /// Its failures in a row in the pool.
    pub failures: u32,
    /// Whether it is in the pool's latest report.
    pub in_pool: bool,
}

/// One point of the history.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// When it was taken, Unix milliseconds.
    pub at_ms: u64,
    /// Last relay round trip, if one is known.
    pub relay_rtt_ms: Option<f64>,
    /// Orders in the books of the followed pairs.
    pub orders_seen: u64,
    /// Messages refused by our checks, cumulative.
    pub messages_rejected: u64,
}

/// The trader's metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClientMetrics {
    /// Current relay state name (connecting, connected, reserved, error).
    pub relay_state: Option<&'static str>,
    /// The relay connection's transport label while connected or reserved.
    pub relay_transport: Option<&'static str>,
    /// Last relay round trip in milliseconds; cleared by every relay state but reserved.
    pub relay_rtt_ms: Option<f64>,
    /// Times the relay status turned to failed while we held a reservation.
    pub reconnects: u64,
    /// Orders per followed pair, from the latest book views.
    pub orders_seen: BTreeMap<String, u64>,
    /// Our live orders: placed minus cancelled and withdrawn.
    pub own_orders: u64,
    /// Orders we placed, restored ones included.
    pub orders_placed: u64,
    /// Orders we cancelled.
    pub orders_cancelled: u64,
    /// Full book syncs from the relay completed.
    pub book_syncs: u64,
    /// Book-sync pages the relay refused (over its rate) and that were asked for again later.
    pub book_syncs_deferred: u64,
    /// Trades that reached each end state.
    pub trades_ended: BTreeMap<&'static str, u64>,
    /// Ids of the trades in negotiation now (a set, capped at twice
    /// [`MAX_OPEN_TRADES`](crate::MAX_OPEN_TRADES)).
    pub trades_open: BTreeMap<[u8; 16], ()>,
    /// Messages from the network refused by our checks, by reason.
    pub messages_rejected: BTreeMap<&'static str, u64>,
    /// End-to-end sessions established, by our role ("initiator" as a taker, "responder").
    pub e2e_sessions: BTreeMap<&'static str, u64>,
    /// End-to-end sessions moved to fresh keys, both roles.
    pub e2e_rekeys: u64,
    /// Settlement messages received from counterparties of agreed trades.
    pub settle_received: u64,
    /// Settlement messages of ours that were not delivered.
    pub settle_undelivered: u64,
    /// Handshakes and sealed trade frames refused, by reason (a closed set from darkswap-e2e).
    pub e2e_frames_rejected: BTreeMap<&'static str, u64>,
    /// The level the relay granted us on this connection (none while not granted).
    pub auth_level: Option<&'static str>,
    /// When the relay's grant (our token) expires, unix ms.
    pub auth_expires_at_ms: Option<u64>,
    /// Refusals by the relay, by reason (a closed set from darkswap-auth).
    pub auth_refusals: BTreeMap<&'static str, u64>,
    /// The last [`HISTORY_SAMPLES`] samples, oldest first (see [`ClientMetrics::sample`]).
    pub history: VecDeque<Sample>,
    /// Times the link moved to another relay of the pool.
    pub failovers: u64,
    /// Per relay (base58 PeerId), at most [`MAX_RELAYS_TRACKED`].
    pub relays: BTreeMap<String, RelayCounters>,
    /// The relays that hold a reservation of ours now (base58, the link's first), from the
    /// latest [`NodeEvent::Reachable`]: at most `NodeConfig::reservations`.
    pub reachable_via: Vec<String>,
    /// The relay the link is on or dialing, as far as the events tell.
    current_relay: Option<String>,
    was_reserved: bool,
}

/// The relay an address names: its last `/p2p` before any `/p2p-circuit`.
fn relay_of(addr: &libp2p::Multiaddr) -> Option<String> {
    use libp2p::multiaddr::Protocol;
    let mut relay = None;
    for p in addr.iter() {
        match p {
            Protocol::P2p(peer) => relay = Some(peer.to_base58()),
            Protocol::P2pCircuit => break,
            _ => {}
        }
    }
    relay
}

impl ClientMetrics {
    /// Updates the metrics with one node event.
    pub fn observe(&mut self, event: &NodeEvent) {
        match event {
            NodeEvent::Relay(status) => {
                if matches!(status, RelayStatus::Failed { .. }) && self.was_reserved {
                    self.reconnects += 1;
                }
                self.observe_relay(status);
                self.was_reserved = matches!(status, RelayStatus::Reserved { .. });
                if matches!(
                    status,
                    RelayStatus::Connecting { .. } | RelayStatus::Failed { .. }
                ) {
                    // A grant lives as long as the connection it was made on, and a refusal
                    // leaves us without one.
                    self.auth_level = None;
                }
                self.relay_state = Some(status.name());
                self.relay_transport = match status {
                    RelayStatus::Connected { transport, .. }
                    | RelayStatus::Reserved { transport, .. } => Some(transport.label()),
                    _ => None,
                };
                if !self.was_reserved {
                    self.relay_rtt_ms = None;
                }
            }
            NodeEvent::RelayRtt(rtt) => self.relay_rtt_ms = Some(rtt.as_secs_f64() * 1e3),
            NodeEvent::RelayPool(report) => self.observe_pool(&report.relays),
            NodeEvent::Reachable { circuit_addrs } => {
                let now: Vec<String> = circuit_addrs.iter().filter_map(relay_of).collect();
                for relay in &now {
                    if !self.reachable_via.contains(relay) {
                        if let Some(c) = self.relay_entry(relay.clone()) {
                            c.reservations += 1;
                        }
                    }
                }
                self.reachable_via = now;
            }
            NodeEvent::Auth(AuthEvent::Granted(Grant {
                level,
                expires_at_ms,
                ..
            })) => {
                self.auth_level = Some(level.label());
                self.auth_expires_at_ms = Some(*expires_at_ms);
            }
            NodeEvent::Auth(AuthEvent::Refused { reason, .. }) => {
                *self.auth_refusals.entry(reason.label()).or_default() += 1;
            }
            NodeEvent::Trading(event) => self.observe_trading(event),
            _ => {}
        }
    }

    /// The counters of `relay`, made room for if need be (`None` when every tracked relay is
    /// still in the pool and the table is full).
    fn relay_entry(&mut self, relay: String) -> Option<&mut RelayCounters> {
        if !self.relays.contains_key(&relay) && self.relays.len() >= MAX_RELAYS_TRACKED {
            self.relays.retain(|_, c| c.in_pool);
            if self.relays.len() >= MAX_RELAYS_TRACKED {
                return None;
            }
        }
        Some(self.relays.entry(relay).or_default())
    }

    fn observe_relay(&mut self, status: &RelayStatus) {
        match status {
            RelayStatus::Connected { addr, .. } => self.current_relay = relay_of(addr),
            RelayStatus::Reserved { circuit_addr, .. } => {
                self.current_relay = relay_of(circuit_addr);
            }
            RelayStatus::Failed { .. } => {
                if let Some(relay) = self.current_relay.clone() {
                    if let Some(c) = self.relay_entry(relay) {
                        c.losses += 1;
                    }
                }
            }
            RelayStatus::FailingOver { from, to } => {
                self.failovers += 1;
                if let Some(c) = self.relay_entry(from.to_base58()) {
                    c.failovers_from += 1;
                }
                if let Some(c) = self.relay_entry(to.to_base58()) {
                    c.failovers_to += 1;
                }
                self.current_relay = Some(to.to_base58());
            }
            RelayStatus::Connecting { .. } => {}
        }
    }

    fn observe_pool(&mut self, views: &[crate::RelayView]) {
        for c in self.relays.values_mut() {
            c.in_pool = false;
        }
        for v in views {
            if let Some(c) = self.relay_entry(v.relay.to_base58()) {
                c.rtt_ms = v.rtt_ms;
                c.failures = v.failures;
                c.in_pool = true;
            }
        }
    }

    fn observe_trading(&mut self, event: &TradingEvent) {
        match event {
            TradingEvent::Book(view) => {
                self.orders_seen
                    .insert(view.pair.to_string(), view.total_orders as u64);
                // The followed pairs are capped, so this map is too.
            }
            TradingEvent::OrderPlaced(_) => {
                self.orders_placed += 1;
                self.own_orders += 1;
            }
            TradingEvent::OrderCancelled { .. } => {
                self.orders_cancelled += 1;
                self.own_orders = self.own_orders.saturating_sub(1);
            }
            TradingEvent::OrderWithdrawn { .. } => {
                self.own_orders = self.own_orders.saturating_sub(1)
            }
            TradingEvent::BookSynced { .. } => self.book_syncs += 1,
            TradingEvent::SyncDeferred { .. } => self.book_syncs_deferred += 1,
            TradingEvent::MessageRejected { reason } => {
                *self.messages_rejected.entry(reason).or_default() += 1
            }
            TradingEvent::Trade(trade) => {
                if trade.state.is_open() {
                    if self.trades_open.len() < crate::negotiation::MAX_OPEN_TRADES * 2 {
                        self.trades_open.insert(trade.id, ());
                    }
                } else {
                    self.trades_open.remove(&trade.id);
                    let state = match trade.state {
                        TradeState::Agreed => "agreed",
                        TradeState::Rejected { .. } => "rejected",
                        _ => "aborted",
                    };
                    *self.trades_ended.entry(state).or_default() += 1;
                }
            }
            TradingEvent::E2e(E2eEvent::SessionEstablished { initiator, .. }) => {
                let role = if *initiator { "initiator" } else { "responder" };
                *self.e2e_sessions.entry(role).or_default() += 1;
            }
            TradingEvent::E2e(E2eEvent::Rekeyed { .. }) => self.e2e_rekeys += 1,
            TradingEvent::E2e(E2eEvent::FrameRejected { reason, .. }) => {
                *self.e2e_frames_rejected.entry(reason).or_default() += 1
            }
            TradingEvent::Settle { .. } => self.settle_received += 1,
            TradingEvent::SettleUndelivered { .. } => self.settle_undelivered += 1,
            TradingEvent::OrderReduced(_)
            | TradingEvent::OrderFailed { .. }
            | TradingEvent::TakeFailed { .. } => {}
        }
    }

    /// Records a history point if the last one is older than [`SAMPLE_INTERVAL_MS`].
    pub fn sample(&mut self, now_ms: u64) {
        if self
            .history
            .back()
            .is_some_and(|s| now_ms < s.at_ms + SAMPLE_INTERVAL_MS)
        {
            return;
        }
        if self.history.len() == HISTORY_SAMPLES {
            self.history.pop_front();
        }
        self.history.push_back(Sample {
            at_ms: now_ms,
            relay_rtt_ms: self.relay_rtt_ms,
            orders_seen: self.orders_seen.values().sum(),
            messages_rejected: self.messages_rejected.values().sum(),
        });
    }

    /// Prometheus text exposition of the current values (`darkswap_client_*`).
    pub fn to_prometheus_text(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
            let _ = writeln!(out, "# HELP darkswap_client_{name} {help}");
            let _ = writeln!(out, "# TYPE darkswap_client_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "darkswap_client_{name}{labels} {value}");
            }
        };
        let states = [
            "connecting",
            "connected",
            "reserved",
            "error",
            "failing-over",
        ];
        family(
            "relay_state",
            "gauge",
            "1 for the current state of the link to the relay",
            &states
                .iter()
                .map(|s| {
                    let on = self.relay_state == Some(*s);
                    (format!("{{state=\"{s}\"}}"), if on { 1.0 } else { 0.0 })
                })
                .collect::<Vec<_>>(),
        );
        if let Some(rtt) = self.relay_rtt_ms {
            family(
                "relay_rtt_seconds",
                "gauge",
                "Last round trip to the relay",
                &[(String::new(), rtt / 1e3)],
            );
        }
        family(
            "auth_level",
            "gauge",
            "1 for the authorization level the relay granted us (none: not granted)",
            &darkswap_auth::Level::ALL
                .iter()
                .map(|l| {
                    let on = self.auth_level == Some(l.label());
                    (
                        format!("{{level=\"{}\"}}", l.label()),
                        if on { 1.0 } else { 0.0 },
                    )
                })
                .collect::<Vec<_>>(),
        );
        family(
            "auth_refusals_total",
            "counter",
            "Times the relay refused to authenticate us, by reason",
            &self
                .auth_refusals
                .iter()
                .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
                .collect::<Vec<_>>(),
        );
        family(
            "relay_reconnects_total",
            "counter",
            "Times the reserved relay link was lost",
            &[(String::new(), self.reconnects as f64)],
        );
        family(
            "relay_failovers_total",
            "counter",
            "Times the link moved to another relay of the pool",
            &[(String::new(), self.failovers as f64)],
        );
        let per_relay = |value: &dyn Fn(&RelayCounters) -> Option<f64>| {
            self.relays
                .iter()
                .filter_map(|(r, c)| value(c).map(|v| (format!("{{relay=\"{r}\"}}"), v)))
                .collect::<Vec<_>>()
        };
        family(
            "reservations_held",
            "gauge",
            "Relays holding a reservation of ours now (the link's and the standbys')",
            &[(String::new(), self.reachable_via.len() as f64)],
        );
        family(
            "relay_reservations_total",
            "counter",
            "Reservations each relay granted us",
            &per_relay(&|c| Some(c.reservations as f64)),
        );
        family(
            "relay_losses_total",
            "counter",
            "Times our link to each relay failed",
            &per_relay(&|c| Some(c.losses as f64)),
        );
        let mut moves = Vec::new();
        for (r, c) in &self.relays {
            moves.push((
                format!("{{relay=\"{r}\",direction=\"from\"}}"),
                c.failovers_from as f64,
            ));
            moves.push((
                format!("{{relay=\"{r}\",direction=\"to\"}}"),
                c.failovers_to as f64,
            ));
        }
        family(
            "relay_moves_total",
            "counter",
            "Moves of the link away from each relay (from) and to it (to)",
            &moves,
        );
        family(
            "pool_relay_round_trip_seconds",
            "gauge",
            "Each pool relay's average round trip, as measured",
            &per_relay(&|c| c.rtt_ms.filter(|_| c.in_pool).map(|ms| ms / 1e3)),
        );
        family(
            "pool_relay_failures",
            "gauge",
            "Each pool relay's failures in a row",
            &per_relay(&|c| c.in_pool.then_some(f64::from(c.failures))),
        );
        family(
            "orders_seen",
            "gauge",
            "Orders in the book of each followed pair",
            &self
                .orders_seen
                .iter()
                .map(|(p, n)| (format!("{{pair=\"{p}\"}}"), *n as f64))
                .collect::<Vec<_>>(),
        );
        family(
            "own_orders",
            "gauge",
            "Our live orders",
            &[(String::new(), self.own_orders as f64)],
        );
        family(
            "orders_placed_total",
            "counter",
            "Orders we placed",
            &[(String::new(), self.orders_placed as f64)],
        );
        family(
            "orders_cancelled_total",
            "counter",
            "Orders we cancelled",
            &[(String::new(), self.orders_cancelled as f64)],
        );
        family(
            "book_syncs_total",
            "counter",
            "Book syncs from the relay completed",
            &[(String::new(), self.book_syncs as f64)],
        );
        family(
            "book_sync_pages_deferred_total",
            "counter",
            "Book-sync pages the relay refused (over its rate), asked for again later",
            &[(String::new(), self.book_syncs_deferred as f64)],
        );
        let mut trades: Vec<(String, f64)> = ["agreed", "rejected", "aborted"]
            .iter()
            .map(|s| {
                let n = self.trades_ended.get(s).copied().unwrap_or(0);
                (format!("{{state=\"{s}\"}}"), n as f64)
            })
            .collect();
        trades.push((
            "{state=\"open\"}".to_string(),
            self.trades_open.len() as f64,
        ));
        family("trades", "gauge", "Trades by state", &trades);
        family(
            "messages_rejected_total",
            "counter",
            "Messages from the network refused by our own checks, by reason",
            &self
                .messages_rejected
                .iter()
                .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
                .collect::<Vec<_>>(),
        );
        family(
            "e2e_sessions_established_total",
            "counter",
            "End-to-end trade sessions established, by our role (initiator = taker)",
            &["initiator", "responder"]
                .iter()
                .map(|r| {
                    let n = self.e2e_sessions.get(r).copied().unwrap_or(0);
                    (format!("{{role=\"{r}\"}}"), n as f64)
                })
                .collect::<Vec<_>>(),
        );
        family(
            "e2e_rekeys_total",
            "counter",
            "End-to-end trade sessions moved to fresh keys",
            &[(String::new(), self.e2e_rekeys as f64)],
        );
        family(
            "settle_messages_total",
            "counter",
            "Settlement messages of agreed trades: received from counterparties, or ours undelivered",
            &[
                (
                    "{outcome=\"received\"}".to_string(),
                    self.settle_received as f64,
                ),
                (
                    "{outcome=\"undelivered\"}".to_string(),
                    self.settle_undelivered as f64,
                ),
            ],
        );
        let mut rejected: Vec<(String, f64)> = self
            .e2e_frames_rejected
            .iter()
            .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
            .collect();
        if rejected.is_empty() {
            rejected.push(("{reason=\"forged\"}".to_string(), 0.0));
        }
        family(
            "e2e_frames_rejected_total",
            "counter",
            "Handshakes and sealed trade frames refused (altered, replayed, stale epoch, no session), by reason",
            &rejected,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TransportKind;
    use std::time::Duration;

    #[test]
    fn events_become_metrics_and_text() {
        let mut m = ClientMetrics::default();
        m.observe(&NodeEvent::Relay(RelayStatus::Reserved {
            transport: TransportKind::WebSocket,
            circuit_addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        }));
        m.observe(&NodeEvent::RelayRtt(Duration::from_millis(12)));
        m.observe(&NodeEvent::Relay(RelayStatus::Failed {
            reason: "gone".into(),
            retry_in: Duration::from_secs(1),
        }));
        m.observe(&NodeEvent::Trading(TradingEvent::MessageRejected {
            reason: "bad_signature",
        }));
        let peer = libp2p::identity::Keypair::generate_ed25519()
            .public()
            .to_peer_id();
        for event in [
            E2eEvent::SessionEstablished {
                peer,
                initiator: true,
                cipher: "aes-256-gcm",
            },
            E2eEvent::Rekeyed { peer, epoch: 1 },
            E2eEvent::FrameRejected {
                peer,
                reason: "replay",
            },
            E2eEvent::FrameRejected {
                peer,
                reason: "replay",
            },
        ] {
            m.observe(&NodeEvent::Trading(TradingEvent::E2e(event)));
        }
        let text = m.to_prometheus_text();
        assert!(
            text.contains("darkswap_client_e2e_sessions_established_total{role=\"initiator\"} 1")
        );
        assert!(
            text.contains("darkswap_client_e2e_sessions_established_total{role=\"responder\"} 0")
        );
        assert!(text.contains("darkswap_client_e2e_rekeys_total 1"));
        assert!(text.contains("darkswap_client_settle_messages_total{outcome=\"undelivered\"} 0"));
        assert!(text.contains("darkswap_client_e2e_frames_rejected_total{reason=\"replay\"} 2"));
        assert!(text.contains("darkswap_client_relay_state{state=\"error\"} 1"));
        assert!(text.contains("darkswap_client_relay_state{state=\"reserved\"} 0"));
        assert!(text.contains("darkswap_client_relay_reconnects_total 1"));
        assert!(
            text.contains("darkswap_client_messages_rejected_total{reason=\"bad_signature\"} 1")
        );
        assert!(text.contains("darkswap_client_trades{state=\"open\"} 0"));
        assert!(
            !text.contains("relay_rtt_seconds"),
            "no RTT while the link is down"
        );
    }

    #[test]
    fn the_auth_level_follows_grants_refusals_and_lost_links() {
        use darkswap_auth::{Level, Method, RefuseReason};
        let mut m = ClientMetrics::default();
        m.observe(&NodeEvent::Auth(AuthEvent::Granted(Grant {
            level: Level::Trusted,
            method: Method::Identity,
            expires_at_ms: 9,
            token: Vec::new(),
            limits: None,
        })));
        assert_eq!(m.auth_level, Some("trusted"));
        let text = m.to_prometheus_text();
        assert!(text.contains("darkswap_client_auth_level{level=\"trusted\"} 1"));
        assert!(text.contains("darkswap_client_auth_level{level=\"authenticated\"} 0"));
        m.observe(&NodeEvent::Relay(RelayStatus::Connecting { attempt: 1 }));
        assert_eq!(m.auth_level, None);
        m.observe(&NodeEvent::Auth(AuthEvent::Refused {
            reason: RefuseReason::WrongProof,
            retry_in: std::time::Duration::from_secs(30),
        }));
        assert!(m
            .to_prometheus_text()
            .contains("darkswap_client_auth_refusals_total{reason=\"wrong_proof\"} 1"));
    }

    #[test]
    fn history_is_bounded_and_spaced() {
        let mut m = ClientMetrics::default();
        for i in 0..1_000u64 {
            m.sample(i * 1_000);
        }
        assert_eq!(m.history.len(), HISTORY_SAMPLES);
        assert!(m
            .history
            .iter()
            .zip(m.history.iter().skip(1))
            .all(|(a, b)| b.at_ms - a.at_ms >= SAMPLE_INTERVAL_MS));
    }

    #[test]
    fn each_relay_is_counted_across_a_move() {
        use libp2p::PeerId;
        let (a, b, me) = (PeerId::random(), PeerId::random(), PeerId::random());
        let addr = |relay: PeerId| -> libp2p::Multiaddr {
            format!("/ip4/127.0.0.1/tcp/1/p2p/{relay}").parse().unwrap()
        };
        let circuit = |relay: PeerId| -> libp2p::Multiaddr {
            format!("/ip4/127.0.0.1/tcp/1/p2p/{relay}/p2p-circuit/p2p/{me}")
                .parse()
                .unwrap()
        };
        let view = |relay: PeerId, rtt_ms: Option<f64>, failures: u32| darkswap_relays::RelayView {
            relay,
            rank: None,
            name: String::new(),
            region: String::new(),
            rtt_ms,
            load_permille: None,
            successes: 0,
            failures,
            last_failure: None,
            last_probe_ms: None,
            backoff_until_ms: None,
            choice: darkswap_relays::Choice::Auto,
            serving: false,
            addrs: Vec::new(),
        };
        let mut m = ClientMetrics::default();
        let reachable = |relays: &[PeerId]| NodeEvent::Reachable {
            circuit_addrs: relays.iter().map(|r| circuit(*r)).collect(),
        };
        // Reserved on a, then on b as a standby; a is lost and b's standby becomes the link.
        m.observe(&reachable(&[a]));
        m.observe(&reachable(&[a, b]));
        assert_eq!(m.reachable_via, vec![a.to_base58(), b.to_base58()]);
        assert!(m
            .to_prometheus_text()
            .contains("darkswap_client_reservations_held 2\n"));
        m.observe(&reachable(&[b]));
        for status in [
            RelayStatus::Connected {
                transport: TransportKind::Tcp,
                addr: addr(a),
            },
            RelayStatus::Reserved {
                transport: TransportKind::Tcp,
                circuit_addr: circuit(a),
            },
            RelayStatus::Failed {
                reason: "gone".into(),
                retry_in: Duration::ZERO,
            },
            RelayStatus::FailingOver { from: a, to: b },
            RelayStatus::Connecting { attempt: 1 },
            RelayStatus::Connected {
                transport: TransportKind::Tcp,
                addr: addr(b),
            },
            RelayStatus::Reserved {
                transport: TransportKind::Tcp,
                circuit_addr: circuit(b),
            },
        ] {
            m.observe(&NodeEvent::Relay(status));
        }
        m.observe_pool(&[view(a, Some(4.0), 1), view(b, Some(2.0), 0)]);
        let (ca, cb) = (m.relays[&a.to_base58()], m.relays[&b.to_base58()]);
        assert_eq!(
            (
                ca.reservations,
                ca.losses,
                ca.failovers_from,
                ca.failovers_to
            ),
            (1, 1, 1, 0)
        );
        assert_eq!(
            (
                cb.reservations,
                cb.losses,
                cb.failovers_from,
                cb.failovers_to
            ),
            (1, 0, 0, 1)
        );
        assert_eq!(m.failovers, 1);
        let text = m.to_prometheus_text();
        assert!(text.contains(&format!(
            "darkswap_client_relay_reservations_total{{relay=\"{b}\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "darkswap_client_relay_moves_total{{relay=\"{a}\",direction=\"from\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "darkswap_client_pool_relay_failures{{relay=\"{a}\"}} 1\n"
        )));
        assert!(text.contains(&format!(
            "darkswap_client_pool_relay_round_trip_seconds{{relay=\"{b}\"}} 0.002\n"
        )));
        assert!(text.contains("darkswap_client_relay_failovers_total 1\n"));
        // Bounded: relays beyond the cap are tracked only as those gone from the pool leave.
        m.observe_pool(&[]);
        for _ in 0..MAX_RELAYS_TRACKED + 10 {
            m.observe_pool(&[view(PeerId::random(), None, 0)]);
        }
        assert!(m.relays.len() <= MAX_RELAYS_TRACKED);
    }
}
