//! What a trader's client saves across restarts, and when: its live orders and its trades, as
//! the node's events change them. The caller only stores the bytes it is given under the key it
//! is given (the browser in IndexedDB) and hands them back at start; keys carry the PeerId, so
//! another identity on the same device never sees them.

use std::collections::BTreeMap;

use darkswap_orderbook::OrderId;
use darkswap_proto::trade::TradeId;
use libp2p::PeerId;

use crate::event::TradingEvent;
use crate::negotiation::{keep_trades_worth_storing, Trade, MAX_TRADES};
use crate::orders::OwnOrder;
use crate::persist;

/// One stored record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Our live orders (republished after a restart).
    Orders,
    /// Our trades (a countersigned take resumes after a restart).
    Trades,
}

/// A write to make: `bytes` under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// `orders/<PeerId>` or `trades/<PeerId>` (see [`SavedTrading::key`]).
    pub key: String,
    /// The whole record, replacing what was stored there.
    pub bytes: Vec<u8>,
}

/// The saved orders and trades of one identity.
pub struct SavedTrading {
    me: PeerId,
    orders: BTreeMap<OrderId, OwnOrder>,
    trades: BTreeMap<TradeId, Trade>,
}

impl SavedTrading {
    /// Nothing recorded yet for the identity `me`. After a restart, what
    /// [`SavedTrading::restore`] decoded comes back as the node's events for the `Restore`
    /// command, and [`SavedTrading::apply`] records it again.
    pub fn new(me: PeerId) -> Self {
        SavedTrading {
            me,
            orders: Default::default(),
            trades: Default::default(),
        }
    }

    /// Where `record` is stored.
    pub fn key(&self, record: Record) -> String {
        let what = match record {
            Record::Orders => "orders",
            Record::Trades => "trades",
        };
        format!("{what}/{}", self.me)
    }

    /// Decodes what was stored (either may be missing), for the node's `Restore` command. A
    /// record that does not decode is skipped, never guessed at; orders of another identity are
    /// dropped.
    pub fn restore(
        &self,
        orders: Option<&[u8]>,
        trades: Option<&[u8]>,
    ) -> (Vec<OwnOrder>, Vec<Trade>) {
        (
            orders
                .map(|b| persist::decode_orders(b, &self.me))
                .unwrap_or_default(),
            trades.map(persist::decode_trades).unwrap_or_default(),
        )
    }

    /// Records what `event` changed; returns the write to make, if any.
    pub fn apply(&mut self, event: &TradingEvent) -> Option<Write> {
        let record = match event {
            TradingEvent::OrderPlaced(o) | TradingEvent::OrderReduced(o) => {
                self.orders.insert(o.id, o.clone());
                Record::Orders
            }
            TradingEvent::OrderCancelled { id, .. } | TradingEvent::OrderWithdrawn { id, .. } => {
                self.orders.remove(id);
                Record::Orders
            }
            TradingEvent::Trade(t) => {
                self.trades.insert(t.id, (**t).clone());
                keep_trades_worth_storing(&mut self.trades, MAX_TRADES);
                Record::Trades
            }
            _ => return None,
        };
        let bytes = match record {
            Record::Orders => persist::encode_orders(self.orders.values()),
            Record::Trades => persist::encode_trades(self.trades.values()),
        };
        Some(Write {
            key: self.key(record),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::negotiation::{TradeRole, TradeState};
    use darkswap_orderbook::{Pair, Price, Side};
    use darkswap_proto::order::{order_id, OrderSpec};

    #[test]
    fn every_change_to_orders_or_trades_is_written_and_reads_back() {
        let key = libp2p::identity::Keypair::generate_ed25519();
        let me = key.public().to_peer_id();
        let mut saved = SavedTrading::new(me);
        let pair = Pair::parse("RUNE:DOG/BTC").unwrap();
        let order = OwnOrder {
            id: order_id(&me, 7),
            pair: pair.clone(),
            spec: OrderSpec {
                nonce: 7,
                side: Side::Sell,
                price: Price(25_000),
                amount: 100,
                min_fill: 0,
                expires_at_ms: 2_000_000_000_000,
            },
        };
        let write = saved
            .apply(&TradingEvent::OrderPlaced(order.clone()))
            .unwrap();
        assert_eq!(write.key, format!("orders/{me}"));
        let (orders, trades) = saved.restore(Some(&write.bytes), None);
        assert_eq!((orders, trades.len()), (vec![order.clone()], 0));
        let trade = Trade {
            id: [3; 16],
            role: TradeRole::Taker,
            counterparty: me,
            pair: pair.clone(),
            order_id: order.id,
            maker_side: Side::Sell,
            price: Price(25_000),
            amount: 10,
            state: TradeState::Agreed,
            agreement: None,
            maker_signature: None,
            taker_signature: None,
            deadline_ms: None,
            updated_at_ms: 1,
            fee_rate: 0,
            taker_offer: Vec::new(),
        };
        let write = saved
            .apply(&TradingEvent::Trade(Box::new(trade.clone())))
            .unwrap();
        assert_eq!(write.key, format!("trades/{me}"));
        assert_eq!(saved.restore(None, Some(&write.bytes)).1, vec![trade]);
        let write = saved
            .apply(&TradingEvent::OrderCancelled { id: order.id, pair })
            .unwrap();
        assert!(saved.restore(Some(&write.bytes), None).0.is_empty());
        // A book view changes nothing stored.
        assert!(saved
            .apply(&TradingEvent::MessageRejected { reason: "x" })
            .is_none());
    }
}
