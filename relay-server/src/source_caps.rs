//! Caps per source address on the orders traders publish through this relay.
//!
//! Keys cost nothing, so a cap per maker key is a cap per key: behind one address, as many keys
//! as an attacker likes each got a full allowance, and a handful filled every pair slot or
//! stuffed a real pair with junk that every watching page must hold. A trader's connection
//! carries only its own orders (see `orders`), so each key needs a connection of its own, and
//! the makers connected from one address (an IPv4 address or an IPv6 /64) share:
//! - `max_orders`: live orders, all their pairs together;
//! - `max_pairs`: distinct pairs they hold live orders on.
//!
//! Trusted peers and peer relays are not capped here (they forward many makers' orders).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use darkswap_market::Market;
use darkswap_orderbook::Pair;
use libp2p::PeerId;

/// Which address cap a new order would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The address's makers hold `max_orders` live orders.
    Orders,
    /// The order is on a pair none of them is on, and they are on `max_pairs` pairs.
    Pairs,
}

/// The makers connected from each address, and the caps they share.
pub struct SourceCaps {
    max_orders: usize,
    max_pairs: usize,
    /// Connected peers' addresses (bounded by the connection limit).
    address_of: HashMap<PeerId, IpAddr>,
    /// Peers that published an order from each address, while connected.
    makers_at: HashMap<IpAddr, HashSet<PeerId>>,
}

impl SourceCaps {
    pub fn new(max_orders: usize, max_pairs: usize) -> Self {
        SourceCaps {
            max_orders,
            max_pairs,
            address_of: HashMap::new(),
            makers_at: HashMap::new(),
        }
    }

    /// `peer`'s first connection came from `addr` (its limit key).
    pub fn connected(&mut self, peer: PeerId, addr: IpAddr) {
        self.address_of.entry(peer).or_insert(addr);
    }

    /// The address `peer` connected from (its limit key), if it is connected.
    pub fn address_of(&self, peer: &PeerId) -> Option<IpAddr> {
        self.address_of.get(peer).copied()
    }

    /// All of `peer`'s connections are closed. Its live orders stop counting against its
    /// address; they leave every book when the maker times out.
    pub fn disconnected(&mut self, peer: &PeerId) {
        let Some(addr) = self.address_of.remove(peer) else {
            return;
        };
        if let Some(makers) = self.makers_at.get_mut(&addr) {
            makers.remove(peer);
            if makers.is_empty() {
                self.makers_at.remove(&addr);
            }
        }
    }

    /// May `maker` (publishing its own order over its own connection) add a new order on
    /// `pair`? Fails closed: a maker whose address is unknown is refused.
    pub fn admit(&mut self, maker: &PeerId, pair: &Pair, market: &Market) -> Result<(), Over> {
        let Some(addr) = self.address_of.get(maker) else {
            return Err(Over::Orders);
        };
        let makers = self.makers_at.entry(*addr).or_default();
        makers.insert(*maker);
        let mut orders = 0;
        let mut pairs: HashSet<&Pair> = HashSet::new();
        for m in makers.iter() {
            for p in market.order_pairs_of(m) {
                orders += 1;
                pairs.insert(p);
            }
        }
        if orders >= self.max_orders {
            return Err(Over::Orders);
        }
        if !pairs.contains(pair) && pairs.len() >= self.max_pairs {
            return Err(Over::Pairs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_market::MarketLimits;
    use darkswap_orderbook::{Price, Side};
    use darkswap_proto::order::{
        sign_order_message, verify_order_message, Freshness, OrderAction, OrderBody, OrderSpec,
    };
    use libp2p::identity::Keypair;

    const NOW: u64 = 1_700_000_000_000;

    fn pair(n: u8) -> Pair {
        Pair::parse(&format!("RUNE:P{}/BTC", char::from(b'A' + n))).unwrap()
    }

    fn place(market: &mut Market, key: &Keypair, pair: &Pair, nonce: u64) {
        let body = OrderBody {
            pair: pair.clone(),
            seq: nonce + 1,
            sent_at_ms: NOW,
            action: OrderAction::Order(OrderSpec {
                nonce,
                side: Side::Sell,
                price: Price(100),
                amount: 10,
                min_fill: 0,
                expires_at_ms: NOW + 60_000,
            }),
        };
        let bytes = sign_order_message(key, &body, NOW).unwrap();
        let verified = verify_order_message(&bytes, Some(pair), Freshness::Live, NOW).unwrap();
        market.apply(&verified, NOW).unwrap();
    }

    #[test]
    fn makers_at_one_address_share_its_caps_and_another_address_has_its_own() {
        let mut market = Market::new(MarketLimits::DEFAULT);
        let mut caps = SourceCaps::new(3, 2);
        let here: IpAddr = "192.0.2.1".parse().unwrap();
        let there: IpAddr = "198.51.100.1".parse().unwrap();
        let (a, b, c) = (
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
            Keypair::generate_ed25519(),
        );
        let id = |k: &Keypair| PeerId::from(k.public());
        caps.connected(id(&a), here);
        caps.connected(id(&b), here);
        caps.connected(id(&c), there);
        caps.admit(&id(&a), &pair(0), &market).unwrap();
        place(&mut market, &a, &pair(0), 1);
        caps.admit(&id(&b), &pair(1), &market).unwrap();
        place(&mut market, &b, &pair(1), 1);
        // Two pairs held from `here`: a third is refused, another order on a held one is not.
        assert_eq!(caps.admit(&id(&b), &pair(2), &market), Err(Over::Pairs));
        caps.admit(&id(&b), &pair(0), &market).unwrap();
        place(&mut market, &b, &pair(0), 2);
        // Three orders from `here`: full.
        assert_eq!(caps.admit(&id(&a), &pair(0), &market), Err(Over::Orders));
        // `there` is not charged for `here`.
        caps.admit(&id(&c), &pair(2), &market).unwrap();
        // A maker that leaves stops counting.
        caps.disconnected(&id(&b));
        caps.admit(&id(&a), &pair(0), &market).unwrap();
    }

    #[test]
    fn a_maker_whose_address_is_unknown_is_refused() {
        let market = Market::new(MarketLimits::DEFAULT);
        let mut caps = SourceCaps::new(10, 10);
        assert_eq!(
            caps.admit(&PeerId::random(), &pair(0), &market),
            Err(Over::Orders)
        );
    }
}
