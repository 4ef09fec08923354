//! The page's state and the reducer that applies node events to it.

use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use darkswap_net::libp2p::PeerId;
use darkswap_net::{BookView, MessageId, NodeEvent, OwnOrder, RelayStatus, Trade, TradingEvent};
use darkswap_orderbook::{BtcUnit, Pair, Units};

use crate::alerts::{self, Alerts};

/// Most entries kept in the message log (oldest dropped first).
pub const MAX_LOG: usize = 200;

#[derive(Clone, PartialEq)]
pub enum Relay {
    /// Loading the identity and the relay's description.
    Starting,
    Status(RelayStatus),
    /// The relay's description could not be fetched; retrying.
    Unreachable {
        reason: String,
    },
}

#[derive(Clone, PartialEq)]
pub enum Delivery {
    Sending,
    Delivered { rtt_ms: f64 },
    Refused { reason: String },
    Failed { reason: String },
}

#[derive(Clone, PartialEq)]
pub enum Entry {
    Received {
        from: String,
        text: String,
    },
    Sent {
        id: MessageId,
        to: String,
        text: String,
        delivery: Delivery,
    },
}

#[derive(Clone, PartialEq, Default)]
pub struct PeerLink {
    pub transport: Option<String>,
    pub rtt_ms: Option<f64>,
    pub error: Option<String>,
}

/// The order-book side of the page. Each part that can be large sits behind its own `Rc`, so
/// an update copies only the part it changes (a book update copies no trade, order or notice).
#[derive(Clone, PartialEq, Default)]
pub struct TradingState {
    /// The pair shown in the book and used by the order form.
    pub pair: Option<Pair>,
    pub books: BTreeMap<Pair, Rc<BookView>>,
    /// Our live orders, by id (hex).
    pub own: Rc<BTreeMap<String, OwnOrder>>,
    /// The last refusal of one of our commands, shown next to the order form.
    pub error: Option<String>,
    /// What happened to our orders lately (placed, cancelled, withdrawn), newest last.
    pub notices: Rc<VecDeque<String>>,
    /// Last book sync: (pair, orders, milliseconds).
    pub synced: Option<(Pair, usize, f64)>,
    /// Messages from the network refused by our own checks.
    pub rejected: u64,
    /// Our trades, by id (hex).
    pub trades: Rc<BTreeMap<String, Trade>>,
    /// Their settlements on Bitcoin, by trade id (hex).
    pub settlements: Rc<BTreeMap<String, darkswap_settle::driver::View>>,
    /// Whether trades on runes-for-bitcoin pairs settle here (the relay names a chain).
    pub settling: bool,
    /// Where a swap is shown on the chain (`{root}/tx/{txid}`): ord's page, else the chain API.
    pub chain_view: Option<String>,
    /// The last trouble of the settlements (a chain read that failed, a message not sent).
    pub settle_trouble: Option<String>,
    /// How amounts and prices are written: BTC or sat, and the runes whose divisibility the
    /// page learned from the chain.
    pub units: Rc<Units>,
}

/// Most trades kept on the page.
pub const MAX_TRADES_SHOWN: usize = 200;

/// Most notices kept.
pub const MAX_NOTICES: usize = 20;

impl TradingState {
    fn notice(&mut self, text: String) {
        let notices = Rc::make_mut(&mut self.notices);
        if notices.len() == MAX_NOTICES {
            notices.pop_front();
        }
        notices.push_back(text);
    }

    fn apply(&mut self, event: TradingEvent) {
        match event {
            TradingEvent::Book(view) => {
                self.books.insert(view.pair.clone(), Rc::new(view));
            }
            TradingEvent::OrderPlaced(order) => {
                self.error = None;
                let u = self.units.pair(&order.pair);
                self.notice(format!(
                    "placed {} {} on {} @ {} {}",
                    order.spec.side,
                    u.amount(order.spec.amount),
                    order.pair,
                    u.price(order.spec.price),
                    u.price_label()
                ));
                Rc::make_mut(&mut self.own).insert(order.id.to_hex(), order);
            }
            TradingEvent::OrderReduced(order) => {
                self.notice(format!(
                    "{} left on order {} after a trade",
                    self.units.pair(&order.pair).amount(order.spec.amount),
                    &order.id.to_hex()[..8]
                ));
                Rc::make_mut(&mut self.own).insert(order.id.to_hex(), order);
            }
            TradingEvent::OrderCancelled { id, .. } => {
                Rc::make_mut(&mut self.own).remove(&id.to_hex());
                self.notice(format!("cancelled {}", &id.to_hex()[..8]));
            }
            TradingEvent::OrderWithdrawn { id, reason, .. } => {
                Rc::make_mut(&mut self.own).remove(&id.to_hex());
                self.notice(crate::words::withdrawn(&id.to_hex()[..8], &reason));
            }
            TradingEvent::OrderFailed(error) => self.error = Some(error.to_string()),
            TradingEvent::TakeFailed { error, .. } => {
                self.error = Some(crate::words::take_refused(
                    &self.units,
                    self.pair.as_ref(),
                    &error,
                ))
            }
            TradingEvent::BookSynced {
                pair,
                orders,
                elapsed,
            } => self.synced = Some((pair, orders, ms(elapsed))),
            TradingEvent::SyncDeferred {
                pair,
                reason,
                retry_in,
            } => self.notice(format!(
                "the relay deferred the {pair} book ({reason}); asking again in {} s",
                retry_in.as_secs()
            )),
            TradingEvent::MessageRejected { .. } => self.rejected += 1,
            // Counted in the metrics panel (ClientMetrics); settlement messages go to the
            // settlement driver (`crate::settle`), whose changes arrive as `Action::Settlement`.
            TradingEvent::E2e(_)
            | TradingEvent::Settle { .. }
            | TradingEvent::SettleUndelivered { .. } => {}
            TradingEvent::Trade(trade) => {
                // A take of ours went out: an earlier refusal no longer applies.
                if trade.role == darkswap_net::TradeRole::Taker
                    && trade.state == darkswap_net::TradeState::Requested
                {
                    self.error = None;
                }
                let trades = Rc::make_mut(&mut self.trades);
                trades.insert(trade.id_hex(), *trade);
                darkswap_net::negotiation::keep_newest_trades(trades, MAX_TRADES_SHOWN);
            }
        }
    }
}

/// Our standing with the relay.
#[derive(Clone, PartialEq, Default)]
pub enum AuthStatus {
    #[default]
    Waiting,
    Authenticating {
        method: &'static str,
    },
    Granted {
        level: &'static str,
        method: &'static str,
        expires_at_ms: u64,
    },
    Refused {
        message: String,
        retry_in_s: u64,
    },
    /// The relay does not speak the auth protocol (an older relay).
    Unsupported,
    /// The relay asks new identities for a proof of work; the node is doing it.
    Working {
        bits: u32,
    },
}

#[derive(Clone, PartialEq)]
pub struct AppState {
    pub peer_id: Option<String>,
    pub identity_error: Option<String>,
    /// Whether this browser's keys are sealed at rest.
    pub keys_at_rest: KeysAtRest,
    pub relay_url: String,
    pub relay: Relay,
    pub relay_rtt_ms: Option<f64>,
    /// The relays this page knows, best first (the relay pool's ranking).
    pub relay_pool: Rc<Vec<darkswap_net::RelayView>>,
    /// The relay the link uses now (from the pool's reports).
    pub relay_linked: Option<PeerId>,
    /// The relays holding a standby reservation of ours (besides the link's).
    pub relay_standbys: Rc<Vec<PeerId>>,
    /// Where other traders reach us: a circuit address per relay holding a reservation of ours.
    pub reachable: Rc<Vec<String>>,
    pub reconnects: u32,
    /// The last move of the link to another relay (from, to), and how many there were.
    pub failover: Option<(PeerId, PeerId)>,
    pub failovers: u32,
    pub peers: Rc<Vec<String>>,
    pub links: Rc<BTreeMap<String, PeerLink>>,
    pub log: Rc<VecDeque<Entry>>,
    pub trading: Rc<TradingState>,
    pub metrics: Rc<darkswap_net::metrics::ClientMetrics>,
    /// The settlement driver's counters (exported with the client metrics).
    pub settle_counters: Rc<darkswap_settle::driver::Counters>,
    pub auth: AuthStatus,
    /// The method in use: "identity" or "shared_key".
    pub auth_method: &'static str,
    /// A problem saving the auth settings.
    pub auth_error: Option<String>,
    /// The proof of work this page did for its identity, when a relay asked: (bits, tries,
    /// milliseconds).
    pub stamp_done: Option<(u32, u64, u64)>,
    /// What deserves the trader's attention (see [`crate::alerts`]).
    pub alerts: Rc<Alerts>,
    /// When the page started, Unix ms: trade updates from before raise no alert.
    pub started_ms: u64,
}

impl AppState {
    pub fn new(relay_url: String) -> Self {
        Self {
            peer_id: None,
            identity_error: None,
            keys_at_rest: KeysAtRest::Unknown,
            relay_url,
            relay: Relay::Starting,
            relay_rtt_ms: None,
            relay_pool: Rc::default(),
            relay_linked: None,
            relay_standbys: Rc::default(),
            reachable: Rc::default(),
            reconnects: 0,
            failover: None,
            failovers: 0,
            peers: Rc::default(),
            links: Rc::default(),
            log: Rc::default(),
            trading: Rc::default(),
            metrics: Default::default(),
            settle_counters: Default::default(),
            auth: AuthStatus::Waiting,
            auth_method: darkswap_auth::Method::Identity.label(),
            auth_error: None,
            stamp_done: None,
            alerts: Rc::default(),
            started_ms: darkswap_net::unix_time_ms(),
        }
    }

    /// The same state with bitcoin written in `unit`.
    pub fn with_btc(mut self, unit: BtcUnit) -> Self {
        let trading = Rc::make_mut(&mut self.trading);
        trading.units = Rc::new((*trading.units).clone().with_btc(unit));
        self
    }

    fn push(&mut self, entry: Entry) {
        let log = Rc::make_mut(&mut self.log);
        if log.len() == MAX_LOG {
            log.pop_front();
        }
        log.push_back(entry);
    }

    fn delivery(&mut self, id: MessageId, delivery: Delivery) {
        for entry in Rc::make_mut(&mut self.log).iter_mut().rev() {
            if let Entry::Sent {
                id: got,
                delivery: d,
                ..
            } = entry
            {
                if *got == id {
                    *d = delivery;
                    return;
                }
            }
        }
    }
}

/// Where this browser's identity and shared keys stand at rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeysAtRest {
    /// Not read yet.
    #[default]
    Unknown,
    /// Stored in the clear.
    Clear,
    /// Sealed under the wallet's password, which this visit has not been given yet.
    Locked,
    /// Sealed, and unlocked in this page.
    Unlocked,
}

pub enum Action {
    Identity(Result<String, String>),
    KeysAtRest(KeysAtRest),
    RelayUnreachable(String),
    Sent {
        id: MessageId,
        to: String,
        text: String,
    },
    SendRefused {
        to: String,
        text: String,
        reason: String,
    },
    Node(Box<NodeEvent>),
    /// The trader chose a pair to look at.
    SelectPair(Pair),
    /// A trading command could not even be queued.
    TradingError(String),
    /// Time to record a metrics sample and to let alerts that were shown long enough go (every
    /// few seconds), at this Unix time in ms.
    MetricsTick(u64),
    /// The auth method in use changed (or was loaded): "identity" or "shared_key".
    AuthMethod(&'static str),
    AuthError(Option<String>),
    /// The trader closed the alert with this `seq`.
    DismissAlert(u64),
    /// The page came in front of the trader (`visible`) or went to the background.
    PageVisible {
        visible: bool,
        at_ms: u64,
    },
    /// Settlement began here (the relay names a chain); where swaps are shown.
    Settling {
        chain_view: String,
    },
    /// A trade's settlement changed.
    Settlement(Box<darkswap_settle::driver::View>),
    /// The settlement driver's counters, after a change.
    SettleCounters(Box<darkswap_settle::driver::Counters>),
    /// Something in settlement went wrong (in words), and is tried again or shown.
    SettleTrouble(String),
    /// The trader chose how BTC is written.
    BtcUnit(BtcUnit),
    /// The chain says a rune is spaced so and has this divisibility.
    RuneUnits {
        spaced_name: String,
        divisibility: u8,
    },
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl AppState {
    /// The reducer: the state after `action` (Yew's `Reducible` calls this).
    pub fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Identity(Ok(id)) => s.peer_id = Some(id),
            Action::Identity(Err(e)) => s.identity_error = Some(e),
            Action::KeysAtRest(k) => s.keys_at_rest = k,
            Action::RelayUnreachable(reason) => s.relay = Relay::Unreachable { reason },
            Action::Sent { id, to, text } => s.push(Entry::Sent {
                id,
                to,
                text,
                delivery: Delivery::Sending,
            }),
            Action::SendRefused { to, text, reason } => s.push(Entry::Sent {
                id: 0,
                to,
                text,
                delivery: Delivery::Failed { reason },
            }),
            Action::SelectPair(pair) => Rc::make_mut(&mut s.trading).pair = Some(pair),
            Action::TradingError(reason) => Rc::make_mut(&mut s.trading).error = Some(reason),
            Action::MetricsTick(now_ms) => {
                Rc::make_mut(&mut s.metrics).sample(now_ms);
                if !s.alerts.shown.is_empty() {
                    Rc::make_mut(&mut s.alerts).expire(now_ms);
                }
            }
            Action::AuthMethod(method) => {
                s.auth_method = method;
                s.auth_error = None;
            }
            Action::AuthError(e) => s.auth_error = e,
            Action::DismissAlert(seq) => Rc::make_mut(&mut s.alerts).dismiss(seq),
            Action::PageVisible { visible, at_ms } => {
                Rc::make_mut(&mut s.alerts).set_visible(visible, at_ms)
            }
            Action::Node(event) => {
                Rc::make_mut(&mut s.metrics).observe(&event);
                s.node_event(*event);
            }
            Action::Settling { chain_view } => {
                let trading = Rc::make_mut(&mut s.trading);
                trading.settling = true;
                trading.chain_view = Some(chain_view);
            }
            Action::Settlement(view) => {
                let id = darkswap_net::trade_id_hex(&view.trade_id);
                let known = s.trading.settlements.get(&id);
                let trade = s.trading.trades.get(&id);
                if let Some((title, body)) =
                    alerts::for_settlement(&s.trading.units, known, &view, trade)
                {
                    let at = darkswap_net::unix_time_ms();
                    Rc::make_mut(&mut s.alerts).raise(title, body, id, at);
                }
                let trading = Rc::make_mut(&mut s.trading);
                let map = Rc::make_mut(&mut trading.settlements);
                map.insert(darkswap_net::trade_id_hex(&view.trade_id), *view);
                // The page keeps as many as it keeps trades.
                while map.len() > MAX_TRADES_SHOWN {
                    let oldest = map
                        .iter()
                        .find(|(k, _)| !trading.trades.contains_key(*k))
                        .or_else(|| map.iter().next())
                        .map(|(k, _)| k.clone());
                    match oldest {
                        Some(k) => map.remove(&k),
                        None => break,
                    };
                }
            }
            Action::SettleCounters(c) => s.settle_counters = Rc::new(*c),
            Action::SettleTrouble(words) => {
                Rc::make_mut(&mut s.trading).settle_trouble = Some(words)
            }
            Action::BtcUnit(unit) => {
                let trading = Rc::make_mut(&mut s.trading);
                trading.units = Rc::new((*trading.units).clone().with_btc(unit));
            }
            Action::RuneUnits {
                spaced_name,
                divisibility,
            } => {
                let trading = Rc::make_mut(&mut s.trading);
                Rc::make_mut(&mut trading.units).learn_rune(&spaced_name, divisibility);
            }
        }
        Rc::new(s)
    }
}

impl AppState {
    fn auth_event(&mut self, event: darkswap_net::AuthEvent) {
        use darkswap_net::AuthEvent;
        match event {
            AuthEvent::Authenticating { method } => {
                self.auth = AuthStatus::Authenticating {
                    method: method.label(),
                }
            }
            AuthEvent::Granted(grant) => {
                self.auth = AuthStatus::Granted {
                    level: grant.level.label(),
                    method: grant.method.label(),
                    expires_at_ms: grant.expires_at_ms,
                }
            }
            AuthEvent::Refused { reason, retry_in } => {
                self.auth = AuthStatus::Refused {
                    message: reason.explain().to_string(),
                    retry_in_s: retry_in.as_secs(),
                }
            }
            AuthEvent::Unsupported => self.auth = AuthStatus::Unsupported,
            // A refresh that needs more work keeps the grant it refreshes.
            AuthEvent::Working { bits } => {
                if !matches!(self.auth, AuthStatus::Granted { .. }) {
                    self.auth = AuthStatus::Working { bits }
                }
            }
            AuthEvent::Stamped {
                bits,
                tries,
                elapsed,
                ..
            } => {
                self.stamp_done = Some((bits, tries, elapsed.as_millis() as u64));
                if !matches!(self.auth, AuthStatus::Granted { .. }) {
                    self.auth = AuthStatus::Authenticating {
                        method: darkswap_auth::Method::Identity.label(),
                    }
                }
            }
            AuthEvent::Admin { .. } => {}
        }
    }

    fn node_event(&mut self, event: NodeEvent) {
        let s = self;
        {
            match event {
                NodeEvent::Relay(status) => {
                    if matches!(status, RelayStatus::Failed { .. })
                        && matches!(s.relay, Relay::Status(RelayStatus::Reserved { .. }))
                    {
                        s.reconnects += 1;
                    }
                    if !matches!(status, RelayStatus::Reserved { .. }) {
                        s.relay_rtt_ms = None;
                    }
                    if let RelayStatus::FailingOver { from, to } = &status {
                        s.failover = Some((*from, *to));
                        s.failovers += 1;
                    }
                    if matches!(status, RelayStatus::Connecting { .. }) {
                        // A grant lives only as long as the connection it was made on.
                        s.auth = AuthStatus::Waiting;
                    }
                    s.relay = Relay::Status(status);
                }
                NodeEvent::RelayRtt(rtt) => s.relay_rtt_ms = Some(ms(rtt)),
                NodeEvent::Reachable { circuit_addrs } => {
                    s.reachable = Rc::new(circuit_addrs.iter().map(|a| a.to_string()).collect());
                }
                NodeEvent::RelayPool(report) => {
                    s.relay_linked = Some(report.linked);
                    s.relay_standbys = Rc::new(report.standbys);
                    s.relay_pool = Rc::new(report.relays);
                }
                NodeEvent::Peers { peers, .. } => {
                    s.peers = Rc::new(peers.iter().map(|p| p.to_base58()).collect());
                }
                NodeEvent::PeerConnected { peer, transport } => {
                    let link = Rc::make_mut(&mut s.links)
                        .entry(peer.to_base58())
                        .or_default();
                    link.transport = Some(transport.label().to_string());
                    link.error = None;
                }
                NodeEvent::PeerDisconnected { peer } => {
                    if let Some(link) = Rc::make_mut(&mut s.links).get_mut(&peer.to_base58()) {
                        link.transport = None;
                        link.rtt_ms = None;
                    }
                }
                NodeEvent::PeerConnectFailed { peer, reason } => {
                    Rc::make_mut(&mut s.links)
                        .entry(peer.to_base58())
                        .or_default()
                        .error = Some(reason);
                }
                NodeEvent::PeerRtt { peer, rtt } => {
                    Rc::make_mut(&mut s.links)
                        .entry(peer.to_base58())
                        .or_default()
                        .rtt_ms = Some(ms(rtt));
                }
                NodeEvent::MessageReceived { from, text, .. } => s.push(Entry::Received {
                    from: from.to_base58(),
                    text,
                }),
                NodeEvent::MessageDelivered {
                    id,
                    rtt,
                    accepted,
                    reason,
                    ..
                } => s.delivery(
                    id,
                    if accepted {
                        Delivery::Delivered { rtt_ms: ms(rtt) }
                    } else {
                        Delivery::Refused {
                            reason: reason.unwrap_or_default(),
                        }
                    },
                ),
                NodeEvent::MessageFailed { id, reason, .. } => {
                    s.delivery(id, Delivery::Failed { reason })
                }
                NodeEvent::Trading(event) => {
                    if let TradingEvent::Trade(trade) = &event {
                        let known = s.trading.trades.get(&trade.id_hex());
                        if let Some((title, body)) =
                            alerts::for_trade(&s.trading.units, known, trade, s.started_ms)
                        {
                            let at = trade.updated_at_ms;
                            Rc::make_mut(&mut s.alerts).raise(title, body, trade.id_hex(), at);
                        }
                    }
                    Rc::make_mut(&mut s.trading).apply(event)
                }
                NodeEvent::Auth(event) => s.auth_event(event),
            }
        }
    }
}

#[cfg(test)]
mod tests;
