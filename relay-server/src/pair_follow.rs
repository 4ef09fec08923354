//! Which pairs the relay follows on gossip (sans-IO: the caller feeds it peers' subscriptions
//! and the time, and carries out the [`Step`]s it returns).
//!
//! The relay must follow a pair for its traders' orders on it to reach it, and every pair it
//! follows costs it a book and costs each of its traders a topic. So:
//! - only a peer that may publish makes the relay follow a pair (a trader past auth, a trusted
//!   peer, a peer relay); an anonymous peer's subscriptions are remembered, and count once the
//!   peer authenticates ([`PairFollow::reclassify`]);
//! - one trader follows at most `max_per_peer` pairs (a client follows at most 32): past that the
//!   peer is cut off, since gossipsub cannot refuse one subscription of a peer;
//! - at most `max_pairs` pairs are followed, and the traders connected from one address start at
//!   most `max_starts_per_address` of them (pairs they follow that someone else started are
//!   free): filling the table takes that many addresses, not that many free keys;
//! - a pair with no live order and no trader following it for `idle_ms` is let go. A peer
//!   relay's subscription starts a follow but does not keep one: two relays would otherwise keep
//!   each other's junk pairs forever.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use darkswap_orderbook::Pair;
use libp2p::PeerId;

/// Who a subscribing peer is, as the relay's access rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follower {
    /// Not allowed to publish: its pairs are remembered but not followed.
    Anonymous,
    /// A trader allowed to publish: capped, keeps its pairs followed.
    Trader,
    /// Trusted by the operator: not capped, keeps its pairs followed.
    Trusted,
    /// A configured peer relay: not capped, starts follows but does not keep them.
    Relay,
}

impl Follower {
    fn starts_follows(self) -> bool {
        self != Follower::Anonymous
    }

    fn keeps_follows(self) -> bool {
        matches!(self, Follower::Trader | Follower::Trusted)
    }

    fn capped(self) -> bool {
        matches!(self, Follower::Anonymous | Follower::Trader)
    }
}

/// What the caller does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Subscribe to the pair's topic.
    Follow(Pair),
    /// Unsubscribe from the pair's topic: idle for the idle time.
    Unfollow(Pair),
    /// A pair a peer asked for could not be followed: the relay follows `max_pairs` already.
    Full(Pair),
    /// A pair a trader asked for was not followed: the traders at its address started
    /// `max_starts_per_address` follows already.
    AddressFull(Pair),
    /// Close the peer's connections: it follows more pairs than one trader may.
    CutOff(PeerId),
}

/// The limits, from the relay's configuration.
#[derive(Debug, Clone, Copy)]
pub struct FollowLimits {
    /// Most pairs followed at once (the market's pair cap).
    pub max_pairs: usize,
    /// Most pairs one capped peer may follow.
    pub max_per_peer: usize,
    /// Most follows the capped peers at one address may start.
    pub max_starts_per_address: usize,
    /// How long a pair with no live order and no trader following it stays followed.
    pub idle_ms: u64,
}

struct PeerPairs {
    kind: Follower,
    addr: IpAddr,
    pairs: HashSet<Pair>,
}

/// A followed pair.
struct Followed {
    /// When it last became idle (None: not idle).
    idle_since: Option<u64>,
    /// The address of the capped peer that started the follow, charged for it while it lasts.
    started_by: Option<IpAddr>,
}

/// Pairs followed, and the subscriptions that explain them.
pub struct PairFollow {
    limits: FollowLimits,
    /// Connected peers with at least one subscription (bounded by the connection limit, each
    /// by `max_per_peer`, or by gossip's `MAX_FOLLOWED_PAIRS` for uncapped peers).
    peers: HashMap<PeerId, PeerPairs>,
    /// For each followed pair, how many peers that keep follows follow it.
    keepers: HashMap<Pair, usize>,
    /// Followed pairs.
    followed: HashMap<Pair, Followed>,
    /// Follows started by capped peers, per address (entries leave at zero).
    starts: HashMap<IpAddr, usize>,
}

impl PairFollow {
    pub fn new(limits: FollowLimits) -> Self {
        PairFollow {
            limits,
            peers: HashMap::new(),
            keepers: HashMap::new(),
            followed: HashMap::new(),
            starts: HashMap::new(),
        }
    }

    /// How many pairs are followed.
    pub fn followed(&self) -> usize {
        self.followed.len()
    }

    /// Whether `pair` is followed.
    #[cfg(test)]
    pub fn follows(&self, pair: &Pair) -> bool {
        self.followed.contains_key(pair)
    }

    /// `peer` (connected from `addr`, its limit key; of kind `kind`, as seen now) subscribed to
    /// `pair`.
    pub fn subscribed(
        &mut self,
        peer: PeerId,
        addr: IpAddr,
        kind: Follower,
        pair: Pair,
    ) -> Vec<Step> {
        // Its standing may have changed since its last subscription: count its pairs anew.
        let mut steps = self.reclassify(peer, kind);
        if steps.contains(&Step::CutOff(peer)) {
            return steps;
        }
        let entry = self.peers.entry(peer).or_insert_with(|| PeerPairs {
            kind,
            addr,
            pairs: HashSet::new(),
        });
        if entry.pairs.contains(&pair) {
            return steps;
        }
        if kind.capped() && entry.pairs.len() >= self.limits.max_per_peer {
            self.gone(&peer);
            steps.push(Step::CutOff(peer));
            return steps;
        }
        entry.pairs.insert(pair.clone());
        let addr = entry.addr;
        self.count(kind, addr, &pair, &mut steps);
        steps
    }

    /// `peer` unsubscribed from `pair`.
    pub fn unsubscribed(&mut self, peer: &PeerId, pair: &Pair) {
        let Some(entry) = self.peers.get_mut(peer) else {
            return;
        };
        let keeper = entry.pairs.remove(pair) && entry.kind.keeps_follows();
        if entry.pairs.is_empty() {
            self.peers.remove(peer);
        }
        if keeper {
            self.release(pair);
        }
    }

    /// `peer`'s standing may have changed (it authenticated, or its grant ended): its pairs
    /// count as `kind` from now on.
    pub fn reclassify(&mut self, peer: PeerId, kind: Follower) -> Vec<Step> {
        let Some(entry) = self.peers.get_mut(&peer) else {
            return Vec::new();
        };
        let old = std::mem::replace(&mut entry.kind, kind);
        if old == kind {
            return Vec::new();
        }
        let addr = entry.addr;
        let pairs: Vec<Pair> = entry.pairs.iter().cloned().collect();
        if kind.capped() && pairs.len() > self.limits.max_per_peer {
            // Grown past the cap as an uncapped peer, then demoted.
            entry.kind = old;
            self.gone(&peer);
            return vec![Step::CutOff(peer)];
        }
        let mut steps = Vec::new();
        for pair in &pairs {
            if old.keeps_follows() {
                self.release(pair);
            }
            self.count(kind, addr, pair, &mut steps);
        }
        steps
    }

    /// All of `peer`'s connections are closed.
    pub fn gone(&mut self, peer: &PeerId) {
        if let Some(entry) = self.peers.remove(peer) {
            if entry.kind.keeps_follows() {
                for pair in &entry.pairs {
                    self.release(pair);
                }
            }
        }
    }

    /// Lets go of pairs idle for the idle time; `has_orders` says whether the relay's book holds
    /// a live order on a pair.
    pub fn tick(&mut self, now_ms: u64, has_orders: impl Fn(&Pair) -> bool) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut ended = Vec::new();
        let keepers = &self.keepers;
        let idle_ms = self.limits.idle_ms;
        self.followed.retain(|pair, followed| {
            if keepers.get(pair).copied().unwrap_or(0) > 0 || has_orders(pair) {
                followed.idle_since = None;
                return true;
            }
            let since = *followed.idle_since.get_or_insert(now_ms);
            if now_ms.saturating_sub(since) < idle_ms {
                return true;
            }
            steps.push(Step::Unfollow(pair.clone()));
            ended.extend(followed.started_by);
            false
        });
        for addr in ended {
            if let Some(n) = self.starts.get_mut(&addr) {
                *n -= 1;
                if *n == 0 {
                    self.starts.remove(&addr);
                }
            }
        }
        steps
    }

    fn count(&mut self, kind: Follower, addr: IpAddr, pair: &Pair, steps: &mut Vec<Step>) {
        if kind.keeps_follows() {
            *self.keepers.entry(pair.clone()).or_default() += 1;
        }
        if !kind.starts_follows() {
            return;
        }
        if let Some(followed) = self.followed.get_mut(pair) {
            if kind.keeps_follows() {
                followed.idle_since = None;
            }
            return;
        }
        if self.followed.len() >= self.limits.max_pairs {
            steps.push(Step::Full(pair.clone()));
            return;
        }
        let started_by = kind.capped().then_some(addr);
        if let Some(addr) = started_by {
            let starts = self.starts.entry(addr).or_default();
            if *starts >= self.limits.max_starts_per_address {
                steps.push(Step::AddressFull(pair.clone()));
                return;
            }
            *starts += 1;
        }
        self.followed.insert(
            pair.clone(),
            Followed {
                idle_since: None,
                started_by,
            },
        );
        steps.push(Step::Follow(pair.clone()));
    }

    fn release(&mut self, pair: &Pair) {
        if let Some(n) = self.keepers.get_mut(pair) {
            *n -= 1;
            if *n == 0 {
                self.keepers.remove(pair);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: usize) -> Pair {
        Pair::parse(&format!("RUNE:P{}/BTC", char::from(b'A' + n as u8))).unwrap()
    }

    fn limits() -> FollowLimits {
        FollowLimits {
            max_pairs: 4,
            max_per_peer: 2,
            max_starts_per_address: 3,
            idle_ms: 1_000,
        }
    }

    fn here() -> IpAddr {
        "192.0.2.1".parse().unwrap()
    }

    #[test]
    fn a_trader_starts_a_follow_and_an_anonymous_peer_does_not_until_it_authenticates() {
        let mut f = PairFollow::new(limits());
        let (trader, anon) = (PeerId::random(), PeerId::random());
        assert_eq!(
            f.subscribed(trader, here(), Follower::Trader, pair(0)),
            vec![Step::Follow(pair(0))]
        );
        assert_eq!(
            f.subscribed(trader, here(), Follower::Trader, pair(0)),
            vec![]
        );
        assert_eq!(
            f.subscribed(anon, here(), Follower::Anonymous, pair(1)),
            vec![]
        );
        assert!(!f.follows(&pair(1)));
        assert_eq!(
            f.reclassify(anon, Follower::Trader),
            vec![Step::Follow(pair(1))]
        );
        assert_eq!(f.followed(), 2);
    }

    #[test]
    fn a_trader_past_its_cap_is_cut_off_and_its_pairs_stop_counting() {
        let mut f = PairFollow::new(limits());
        let p = PeerId::random();
        f.subscribed(p, here(), Follower::Trader, pair(0));
        f.subscribed(p, here(), Follower::Trader, pair(1));
        assert_eq!(
            f.subscribed(p, here(), Follower::Trader, pair(2)),
            vec![Step::CutOff(p)]
        );
        // Its two pairs have no keeper left: idle from the next tick.
        assert_eq!(f.tick(0, |_| false), vec![]);
        let mut dropped = f.tick(1_000, |_| false);
        dropped.sort_by_key(|s| format!("{s:?}"));
        assert_eq!(
            dropped,
            vec![Step::Unfollow(pair(0)), Step::Unfollow(pair(1))]
        );
        assert_eq!(f.followed(), 0);
    }

    #[test]
    fn trusted_peers_and_relays_are_not_capped() {
        let mut f = PairFollow::new(limits());
        let relay = PeerId::random();
        for n in 0..4 {
            assert_eq!(
                f.subscribed(relay, here(), Follower::Relay, pair(n)),
                vec![Step::Follow(pair(n))]
            );
        }
        assert_eq!(
            f.subscribed(relay, here(), Follower::Relay, pair(4)),
            vec![Step::Full(pair(4))]
        );
        assert_eq!(f.followed(), 4);
    }

    #[test]
    fn a_pair_stays_while_a_trader_follows_it_or_it_has_orders_and_goes_when_idle() {
        let mut f = PairFollow::new(limits());
        let (t, relay) = (PeerId::random(), PeerId::random());
        f.subscribed(t, here(), Follower::Trader, pair(0));
        f.subscribed(relay, here(), Follower::Relay, pair(1));
        f.subscribed(relay, here(), Follower::Relay, pair(2));
        // pair(0): a trader follows it; pair(1): live orders; pair(2): only a relay.
        let orders = |p: &Pair| *p == pair(1);
        assert_eq!(f.tick(0, orders), vec![]);
        assert_eq!(f.tick(999, orders), vec![]);
        assert_eq!(f.tick(1_000, orders), vec![Step::Unfollow(pair(2))]);
        // The trader leaves: pair(0) idles from now.
        f.unsubscribed(&t, &pair(0));
        assert_eq!(f.tick(1_500, orders), vec![]);
        assert_eq!(f.tick(2_500, orders), vec![Step::Unfollow(pair(0))]);
        // Orders gone: pair(1) idles too.
        assert_eq!(f.tick(3_000, |_| false), vec![]);
        assert_eq!(f.tick(4_000, |_| false), vec![Step::Unfollow(pair(1))]);
        // A trader that comes back starts the follow again.
        f.subscribed(t, here(), Follower::Trader, pair(0));
        assert!(f.follows(&pair(0)));
    }

    #[test]
    fn an_idle_clock_restarts_when_a_trader_follows_again() {
        let mut f = PairFollow::new(limits());
        let (a, b) = (PeerId::random(), PeerId::random());
        f.subscribed(a, here(), Follower::Trader, pair(0));
        f.gone(&a);
        assert_eq!(f.tick(0, |_| false), vec![]);
        f.subscribed(b, here(), Follower::Trader, pair(0));
        f.gone(&b);
        assert_eq!(f.tick(1_000, |_| false), vec![], "idle only since 1,000");
        assert_eq!(f.tick(2_000, |_| false), vec![Step::Unfollow(pair(0))]);
    }

    #[test]
    fn a_demoted_peer_stops_keeping_its_pairs() {
        let mut f = PairFollow::new(limits());
        let p = PeerId::random();
        f.subscribed(p, here(), Follower::Trader, pair(0));
        assert_eq!(f.reclassify(p, Follower::Anonymous), vec![]);
        assert_eq!(f.tick(0, |_| false), vec![]);
        assert_eq!(f.tick(1_000, |_| false), vec![Step::Unfollow(pair(0))]);
    }

    #[test]
    fn traders_at_one_address_start_a_bounded_number_of_follows() {
        let mut f = PairFollow::new(FollowLimits {
            max_pairs: 10,
            ..limits()
        });
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let there: IpAddr = "198.51.100.1".parse().unwrap();
        f.subscribed(a, here(), Follower::Trader, pair(0));
        f.subscribed(a, here(), Follower::Trader, pair(1));
        f.subscribed(b, here(), Follower::Trader, pair(2));
        // A fourth start from the same address is refused; another address is not charged.
        assert_eq!(
            f.subscribed(b, here(), Follower::Trader, pair(3)),
            vec![Step::AddressFull(pair(3))]
        );
        assert_eq!(
            f.subscribed(c, there, Follower::Trader, pair(3)),
            vec![Step::Follow(pair(3))]
        );
        // Following a pair someone else started is free.
        let d = PeerId::random();
        assert_eq!(f.subscribed(d, here(), Follower::Trader, pair(3)), vec![]);
        // A follow that ends gives its start back.
        f.gone(&a);
        f.tick(0, |_| false);
        f.tick(1_000, |_| false);
        assert_eq!(
            f.subscribed(d, here(), Follower::Trader, pair(4)),
            vec![Step::Follow(pair(4))]
        );
    }
}
