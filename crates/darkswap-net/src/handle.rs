//! The application's side of a node: the commands it sends and the handle it sends them with.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use darkswap_auth::client::Credential;
use darkswap_orderbook::{OrderId, Pair};
use darkswap_proto::auth::AdminAction;
use darkswap_proto::order::OrderSpec;
use darkswap_proto::trade::TradeId;
use futures::channel::mpsc;
use libp2p::PeerId;

use crate::event::MessageId;
use crate::negotiation::TakeSettlement;
use crate::relay_link::RelayAddrError;

/// Why a node could not be created or a command not accepted.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// [`new_node`](crate::new_node): the configured relay addresses cannot be used.
    #[error(transparent)]
    RelayAddr(#[from] RelayAddrError),
    /// [`new_node`](crate::new_node): the libp2p swarm could not be built.
    #[error(transparent)]
    Build(#[from] crate::transport::BuildError),
    /// The node is not running: [`Node::run`](crate::Node::run) returned, or the node was
    /// dropped.
    #[error("the node has stopped")]
    Stopped,
    /// The command queue ([`NodeConfig::command_buffer`](crate::NodeConfig::command_buffer)
    /// commands) is full.
    #[error("the node is busy (command queue full); try again")]
    Busy,
}

/// What the application asks of a node.
#[derive(Debug, Clone)]
pub enum Command {
    /// Send a text message to a peer, opening a relayed connection first if needed.
    Send {
        /// Names the message in its delivery report
        /// ([`NodeHandle::send_message`] picks a fresh one).
        id: MessageId,
        /// The recipient.
        peer: PeerId,
        /// At most
        /// [`MAX_MESSAGE_TEXT_BYTES`](darkswap_proto::message::MAX_MESSAGE_TEXT_BYTES) bytes,
        /// no control characters but newline.
        text: String,
    },
    /// The trader's choice for a relay of the pool: pinned, excluded, or ranked like any other.
    ChooseRelay {
        /// The relay.
        relay: PeerId,
        /// What the trader chose.
        choice: darkswap_relays::Choice,
    },
    /// Open a relayed connection to a peer.
    Connect {
        /// The trader (not the relay, not ourselves).
        peer: PeerId,
    },
    /// Ask the relay for its directory now.
    RefreshPeers,
    /// Follow a pair's order book (gossip topic and a sync from the relay).
    WatchPair {
        /// The pair (at most [`MAX_WATCHED_PAIRS`](crate::MAX_WATCHED_PAIRS) are followed).
        pair: Pair,
    },
    /// Publish an order of ours (see [`NodeHandle::place_order`]).
    PlaceOrder {
        /// The pair to publish on (followed from then on).
        pair: Pair,
        /// The order; its nonce and our PeerId make its id.
        spec: OrderSpec,
    },
    /// Cancel an order of ours everywhere.
    CancelOrder {
        /// One of our live orders.
        id: OrderId,
    },
    /// After a restart: republish our orders that have not expired, and bring back our trades
    /// (a taker that had countersigned resumes and sends its confirmation again; any other
    /// trade still in negotiation is aborted: its reservation is gone).
    Restore {
        /// Our stored orders (see [`SavedTrading::restore`](crate::saved::SavedTrading::restore));
        /// those expired or about to, already live, or not ours are skipped.
        orders: Vec<crate::OwnOrder>,
        /// Our stored trades, at most [`MAX_TRADES`](crate::MAX_TRADES) of them taken.
        trades: Vec<crate::Trade>,
    },
    /// Take `amount` of another trader's order: negotiate a trade with its maker.
    TakeOrder {
        /// The order's pair (followed, so that the order is in our book).
        pair: Pair,
        /// The maker's order.
        order_id: OrderId,
        /// Base units to take: at least the order's minimum fill (or all that is left when
        /// less remains), at most what is free of it in our book.
        amount: u64,
        /// The trade's id, chosen by us ([`crate::new_trade_id`]) so that what we prepare for
        /// it (a settlement offer, reserved outputs) is named by it from the start.
        trade_id: TradeId,
        /// The fee rate and our offer, for a trade settled on Bitcoin (the default: none).
        settlement: TakeSettlement,
    },
    /// Send a settlement message about an agreed trade to its counterparty.
    Settle {
        /// The trade.
        trade_id: TradeId,
        /// An encoded `darkswap_proto::settle::SettleMessage`.
        message: Vec<u8>,
    },
    /// Use another way to prove ourselves to the relay (forgets the cached token) and
    /// authenticate again now.
    SetCredential {
        /// The new way to prove ourselves.
        credential: Credential,
    },
    /// An admin request to the relay (needs the Admin level there); the answer comes back as
    /// `AuthEvent::Admin`.
    Admin {
        /// What to ask.
        action: AdminAction,
    },
}

/// The application's side of a node: cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    commands: mpsc::Sender<Command>,
    next_id: Arc<AtomicU64>,
    local_peer_id: PeerId,
}

impl NodeHandle {
    /// A handle that sends on `commands` for the node of `local_peer_id`.
    pub(crate) fn new(commands: mpsc::Sender<Command>, local_peer_id: PeerId) -> Self {
        NodeHandle {
            commands,
            next_id: Arc::new(AtomicU64::new(1)),
            local_peer_id,
        }
    }
}

impl NodeHandle {
    /// Our PeerId, the node's identity.
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// Queues a message; the returned id appears in the delivery report.
    pub fn send_message(&self, peer: PeerId, text: String) -> Result<MessageId, NodeError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.command(Command::Send { id, peer, text })?;
        Ok(id)
    }

    /// Publishes a limit order; its id comes back in `TradingEvent::OrderPlaced`. The nonce is
    /// random, so ids never repeat across reloads.
    pub fn place_order(&self, pair: Pair, mut spec: OrderSpec) -> Result<OrderId, NodeError> {
        spec.nonce = rand::random();
        let id = darkswap_proto::order::order_id(&self.local_peer_id, spec.nonce);
        self.command(Command::PlaceOrder { pair, spec })?;
        Ok(id)
    }

    /// Queues a command without waiting; fails when the queue is full or the node stopped.
    pub fn command(&self, command: Command) -> Result<(), NodeError> {
        self.commands.clone().try_send(command).map_err(|e| {
            if e.is_disconnected() {
                NodeError::Stopped
            } else {
                NodeError::Busy
            }
        })
    }
}
