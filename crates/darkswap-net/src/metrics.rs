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
    /// Times the link moved to another relay of the pool (its own was lost or refused us).
    pub failovers: u64,
    /// The level the relay granted us on this connection (none while not granted).
    pub auth_level: Option<&'static str>,
    /// When the relay's grant (our token) expires, unix ms.
    pub auth_expires_at_ms: Option<u64>,
    /// Refusals by the relay, by reason (a closed set from darkswap-auth).
    pub auth_refusals: BTreeMap<&'static str, u64>,
    /// The last [`HISTORY_SAMPLES`] samples, oldest first (see [`ClientMetrics::sample`]).
    pub history: VecDeque<Sample>,
    was_reserved: bool,
}

impl ClientMetrics {
    /// Updates the metrics with one node event.
    pub fn observe(&mut self, event: &NodeEvent) {
        match event {
            NodeEvent::Relay(status) => {
                if matches!(status, RelayStatus::Failed { .. }) && self.was_reserved {
                    self.reconnects += 1;
                }
                if matches!(status, RelayStatus::FailingOver { .. }) {
                    self.failovers += 1;
                }
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
        let states = ["connecting", "connected", "reserved", "error"];
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
}
