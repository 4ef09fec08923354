//! Partition and heal, with real relays on loopback inside a network namespace of the bench's
//! own (run through `scripts/bench-partition`, which makes it; the bench refuses to run in the
//! machine's own namespace, since it changes the routing rules).
//!
//! Four relays: A2 – A1 ═ B1 – B2 (each dials the next; A1 ═ B1 is the only link between the
//! two groups). Side A's makers publish through A2, side B's through B2 (each side's orders come
//! from a trusted forwarder standing for its makers, which also sends their keep-alives every
//! 10 s, as their pages would). The partition is real: routing rules drop every packet to and
//! from B1's TCP port, so the A1 ═ B1 connection stalls without closing, as a cut cable would.
//!
//! Before the cut, each side publishes `--orders`/10 orders and every relay holds both sides'.
//! Then two rounds, each: cut; each side publishes `--orders` new orders and cancels some of its
//! orders that the other side holds; heal; and the time until every relay holds exactly the
//! live orders of both sides (no cancelled one, no missing one: checked id by id), and until a
//! trader's node on each side (darkswap-net, as a page) shows that many. Round "short" heals
//! before the far side's relays drop the silent makers (30 s): the cancelled orders are still
//! held across the cut, and the cancels must win. Round "long" outlasts it: each side has
//! dropped the other's makers, whose orders must all come back.
//!
//! Prints each round's convergence times and the relays' repair counts; fails if a round does
//! not converge within two minutes, or if the cut leaks.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::libp2p::PeerId;
use darkswap_net::{unix_time_ms, NodeConfig};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::order::{
    live_orders_digest, order_id, sign_order_message, OrderAction, OrderBody, OrderSpec,
};
use darkswap_tests::{Peer, Ports, RawPublisher, Relay};

/// Orders a maker holds at most here (the relays' default per-maker cap).
const PER_MAKER: usize = darkswap_market::MarketLimits::DEFAULT.max_orders_per_maker;
/// Orders of each maker before the cut: many makers, so that cancels spread over many.
const PER_MAKER_BEFORE: usize = 20;
/// Cancels one maker sends at once, at most: well within what its publish rate has refilled
/// (a relay refuses what a maker sends over its rate, and this bench's view of the book would
/// then be wrong).
const CANCELS_AT_ONCE: usize = 10;
/// How long a round may take to converge before the bench fails.
const CONVERGE_WITHIN: Duration = Duration::from_secs(120);

struct Maker {
    key: Keypair,
    seq: u64,
    next_nonce: u64,
    /// Live orders: nonce → amount.
    live: HashMap<u64, u64>,
}

impl Maker {
    fn new() -> Self {
        Maker {
            key: Keypair::generate_ed25519(),
            seq: 0,
            next_nonce: 0,
            live: HashMap::new(),
        }
    }

    fn id(&self) -> PeerId {
        self.key.public().to_peer_id()
    }

    fn sign(&mut self, pair: &Pair, action: OrderAction) -> Result<Vec<u8>> {
        self.seq += 1;
        let now = unix_time_ms();
        let body = OrderBody {
            pair: pair.clone(),
            seq: self.seq,
            sent_at_ms: now,
            action,
        };
        Ok(sign_order_message(&self.key, &body, now)?)
    }

    fn order(&mut self, pair: &Pair) -> Result<Vec<u8>> {
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        // Bids under 900, asks over 1,100: nothing crosses.
        let buy = nonce.is_multiple_of(2);
        let spread = nonce % 97;
        let amount = 1 + nonce % 1_000;
        self.live.insert(nonce, amount);
        let spec = OrderSpec {
            nonce,
            side: if buy { Side::Buy } else { Side::Sell },
            price: Price(if buy { 900 - spread } else { 1_100 + spread }),
            amount,
            min_fill: 0,
            expires_at_ms: unix_time_ms() + 3_600_000,
        };
        self.sign(pair, OrderAction::Order(spec))
    }

    fn cancel(&mut self, pair: &Pair, nonce: u64) -> Result<Vec<u8>> {
        self.live.remove(&nonce);
        let order_id = order_id(&self.id(), nonce);
        self.sign(
            pair,
            OrderAction::Cancel {
                order_id,
                filled: false,
            },
        )
    }

    fn keep_alive(&mut self, pair: &Pair) -> Result<Vec<u8>> {
        let me = self.id();
        let mut live: Vec<(OrderId, u64)> = self
            .live
            .iter()
            .map(|(nonce, amount)| (order_id(&me, *nonce), *amount))
            .collect();
        let digest = live_orders_digest(&mut live);
        self.sign(
            pair,
            OrderAction::KeepAlive {
                digest,
                live_orders: live.len() as u32,
            },
        )
    }

    fn ids(&self) -> impl Iterator<Item = OrderId> + '_ {
        let me = self.id();
        self.live.keys().map(move |nonce| order_id(&me, *nonce))
    }
}

/// One side's makers, published through one trusted forwarder.
struct Group {
    name: &'static str,
    raw: RawPublisher,
    makers: Vec<Maker>,
    next_keep_alive: Instant,
}

impl Group {
    /// Publishes `n` orders from new makers, `per_maker` each at most.
    async fn publish(&mut self, pair: &Pair, n: usize, per_maker: usize) -> Result<()> {
        let mut left = n;
        while left > 0 {
            let mut maker = Maker::new();
            let take = left.min(per_maker);
            for _ in 0..take {
                self.raw.publish_now(maker.order(pair)?)?;
            }
            left -= take;
            self.makers.push(maker);
            self.raw.run_for(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Cancels `n` orders: up to half the live ones of each maker and [`CANCELS_AT_ONCE`],
    /// first makers first.
    async fn cancel(&mut self, pair: &Pair, n: usize) -> Result<HashSet<OrderId>> {
        let mut left = n;
        let mut cancelled = HashSet::new();
        for maker in &mut self.makers {
            let mut nonces: Vec<u64> = maker.live.keys().copied().collect();
            nonces.sort_unstable();
            let take = left.min(nonces.len() / 2).min(CANCELS_AT_ONCE);
            for nonce in nonces.into_iter().take(take) {
                let message = maker.cancel(pair, nonce)?;
                self.raw.publish_now(message)?;
                cancelled.insert(order_id(&maker.id(), nonce));
                left -= 1;
            }
            if left == 0 {
                break;
            }
        }
        self.raw.run_for(Duration::from_millis(20)).await;
        Ok(cancelled)
    }

    /// Drives the forwarder for `d`, sending the makers' keep-alives when due.
    async fn pump(&mut self, pair: &Pair, d: Duration) -> Result<()> {
        if Instant::now() >= self.next_keep_alive {
            self.next_keep_alive =
                Instant::now() + Duration::from_millis(darkswap_market::KEEP_ALIVE_INTERVAL_MS);
            for maker in &mut self.makers {
                self.raw.publish_now(maker.keep_alive(pair)?)?;
            }
        }
        self.raw.run_for(d).await;
        Ok(())
    }

    fn ids(&self) -> HashSet<OrderId> {
        self.makers.iter().flat_map(Maker::ids).collect()
    }
}

fn ip(args: &str) -> Result<()> {
    let status = Command::new("ip")
        .args(args.split_whitespace())
        .status()
        .context("cannot run ip")?;
    if !status.success() {
        bail!("ip {args}: {status}");
    }
    Ok(())
}

/// Drops every TCP packet to or from `port` (the rules go before the local table).
fn cut(port: u16, on: bool) -> Result<()> {
    let verb = if on { "add" } else { "del" };
    ip(&format!(
        "rule {verb} prio 10 ipproto tcp dport {port} blackhole"
    ))?;
    ip(&format!(
        "rule {verb} prio 10 ipproto tcp sport {port} blackhole"
    ))
}

fn live(relay: &Relay, pair: &Pair) -> usize {
    relay
        .metric(&format!("darkswap_relay_live_orders{{pair=\"{pair}\"}}"))
        .unwrap_or(0.0) as usize
}

/// The relay's book repairs, for the report: complete / partial, orders added / removed.
fn repairs(relay: &Relay) -> String {
    let m = |s: &str| relay.metric(s).unwrap_or(0.0) as u64;
    format!(
        "{} complete, {} partial, {} timed out, {} cut by a closed link, {} failed streams; {} orders added, {} removed; {} stalled links closed",
        m("darkswap_relay_book_repairs_total{outcome=\"complete\"}"),
        m("darkswap_relay_book_repairs_total{outcome=\"partial\"}"),
        m("darkswap_relay_book_repairs_total{outcome=\"timeout\"}"),
        m("darkswap_relay_book_repairs_total{outcome=\"closed\"}"),
        m("darkswap_relay_book_repairs_total{outcome=\"stream_failed\"}"),
        m("darkswap_relay_book_repair_orders_total{outcome=\"added\"}"),
        m("darkswap_relay_book_repair_orders_total{outcome=\"removed\"}"),
        m("darkswap_relay_peer_relay_links_stalled_total"),
    )
}

struct Bed {
    pair: Pair,
    relays: Vec<(&'static str, Relay)>,
    a: Group,
    b: Group,
    watchers: Vec<(&'static str, Peer)>,
    checker: Keypair,
}

impl Bed {
    async fn pump(&mut self, d: Duration) -> Result<()> {
        self.a.pump(&self.pair, d / 2).await?;
        self.b.pump(&self.pair, d / 2).await
    }

    fn expected(&self) -> HashSet<OrderId> {
        let mut ids = self.a.ids();
        ids.extend(self.b.ids());
        ids
    }

    /// Drives both sides until every relay holds exactly the expected orders and every
    /// watcher's book shows as many; returns when each got there, from now.
    async fn converge(&mut self, what: &str) -> Result<(Duration, Duration)> {
        let t0 = Instant::now();
        let expected = self.expected();
        let (mut relays_at, mut pages_at) = (None, None);
        let mut seen: HashMap<&'static str, usize> = HashMap::new();
        while relays_at.is_none() || pages_at.is_none() {
            if t0.elapsed() > CONVERGE_WITHIN {
                let held: Vec<String> = self
                    .relays
                    .iter()
                    .map(|(n, r)| format!("{n} {} ({})", live(r, &self.pair), repairs(r)))
                    .collect();
                bail!(
                    "{what}: not converged within {CONVERGE_WITHIN:?}: {} expected; relays hold {}; pages show {seen:?}",
                    expected.len(),
                    held.join(", ")
                );
            }
            self.pump(Duration::from_millis(200)).await?;
            if relays_at.is_none()
                && self
                    .relays
                    .iter()
                    .all(|(_, r)| live(r, &self.pair) == expected.len())
            {
                // The counts agree: now the ids, one relay at a time.
                let mut all = true;
                for (_, relay) in &self.relays {
                    let mut checker =
                        RawPublisher::connect_as(relay, &self.pair, self.checker.clone()).await?;
                    if checker.book_ids(relay.peer_id, &self.pair).await? != expected {
                        all = false;
                        break;
                    }
                }
                if all {
                    relays_at = Some(t0.elapsed());
                }
            }
            for (name, watcher) in &mut self.watchers {
                if let Some(view) = watcher.latest_book(&self.pair) {
                    seen.insert(*name, view.total_orders);
                }
            }
            if pages_at.is_none()
                && self.watchers.len() == seen.len()
                && seen.values().all(|n| *n == expected.len())
            {
                pages_at = Some(t0.elapsed());
            }
        }
        Ok((relays_at.unwrap_or_default(), pages_at.unwrap_or_default()))
    }

    /// How many of `ids` relay `n` holds.
    async fn held(&mut self, n: usize, ids: &HashSet<OrderId>) -> Result<usize> {
        let relay = &self.relays[n].1;
        let mut checker = RawPublisher::connect_as(relay, &self.pair, self.checker.clone()).await?;
        let held = checker.book_ids(relay.peer_id, &self.pair).await?;
        Ok(held.intersection(ids).count())
    }

    /// One round: cut, cancel and publish on both sides for `cut_for`, heal, converge.
    async fn round(&mut self, name: &str, orders: usize, cut_for: Duration) -> Result<()> {
        let b1_port = self.relays[2].1.tcp_addr().iter().find_map(|p| match p {
            darkswap_net::libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        });
        let b1_port = b1_port.context("B1 has no TCP port")?;
        let held_before: Vec<usize> = self
            .relays
            .iter()
            .map(|(_, r)| live(r, &self.pair))
            .collect();
        cut(b1_port, true)?;
        let t_cut = Instant::now();
        // The cut must hold: an order of A's reaches A's relays and not B's.
        self.a.publish(&self.pair, 1, 1).await?;
        let probe_by = Instant::now() + Duration::from_secs(3);
        while Instant::now() < probe_by {
            self.pump(Duration::from_millis(200)).await?;
        }
        let held: Vec<usize> = self
            .relays
            .iter()
            .map(|(_, r)| live(r, &self.pair))
            .collect();
        if held[0] != held_before[0] + 1 || held[1] != held_before[1] + 1 {
            bail!("{name}: side A's relays did not take its order during the cut ({held_before:?} → {held:?})");
        }
        if held[2] != held_before[2] || held[3] != held_before[3] {
            bail!("{name}: the cut leaks: side B's relays took side A's order ({held_before:?} → {held:?})");
        }
        // Each side publishes new orders, then cancels orders the other side holds (behind the
        // new orders in the stalled link's queues: gossip may drop them there).
        let cancels = (orders / 20).max(2);
        let published = Instant::now();
        self.a.publish(&self.pair, orders, PER_MAKER).await?;
        self.b.publish(&self.pair, orders, PER_MAKER).await?;
        let cancelled_a = self.a.cancel(&self.pair, cancels).await?;
        let cancelled_b = self.b.cancel(&self.pair, cancels).await?;
        let publish_took = published.elapsed();
        while t_cut.elapsed() < cut_for {
            self.pump(Duration::from_millis(200)).await?;
        }
        // What each side still holds of the other's cancelled orders, just before the heal.
        let stale_on_b = self.held(3, &cancelled_a).await?;
        let stale_on_a = self.held(0, &cancelled_b).await?;
        cut(b1_port, false)?;
        let cut_lasted = t_cut.elapsed();
        let (relays, pages) = self.converge(name).await?;
        println!(
            "round {name}: cut {:.1} s ({orders} orders and {} / {} cancels published by side A / B in {:.1} s); at the heal B2 still held {stale_on_b} of A's cancelled orders, A2 {stale_on_a} of B's; converged: every relay holds the {} live orders {:.2} s after the heal, the pages show them {:.2} s after",
            cut_lasted.as_secs_f64(),
            cancelled_a.len(),
            cancelled_b.len(),
            publish_took.as_secs_f64(),
            self.expected().len(),
            relays.as_secs_f64(),
            pages.as_secs_f64(),
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut orders = 10_000usize;
    let (mut short, mut long) = (Duration::from_secs(15), Duration::from_secs(40));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().context("a value is missing");
        match arg.as_str() {
            "--orders" => orders = value()?.parse()?,
            "--short-secs" => short = Duration::from_secs(value()?.parse()?),
            "--long-secs" => long = Duration::from_secs(value()?.parse()?),
            other => bail!("unknown argument {other} (--orders N, --short-secs S, --long-secs S)"),
        }
    }
    // Set by scripts/netns-run, which made the namespace.
    if std::env::var("DARKSWAP_NETNS").as_deref() != Ok("1") {
        bail!("run through scripts/bench-partition: the bench changes routing rules, and does so only in a network namespace of its own");
    }
    // Rules at priority 10 must come before the local table's (0 by default).
    ip("link set lo up")?;
    ip("rule add prio 100 lookup local")?;
    ip("rule del prio 0")?;

    let pair = Pair::parse("RUNE:CUT/BTC")?;
    let (key_a, key_b, checker) = (
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
        Keypair::generate_ed25519(),
    );
    let trusted: Vec<String> = [&key_a, &key_b, &checker]
        .iter()
        .map(|k| format!("{}=trusted", PeerId::from(k.public())))
        .collect();
    let burst = (PER_MAKER + 20).to_string();
    let dirs: Vec<tempfile::TempDir> = (0..4)
        .map(|_| tempfile::tempdir())
        .collect::<Result<_, _>>()?;
    let start = |dir: &tempfile::TempDir, name: &str, peer: Option<&Relay>| -> Result<Relay> {
        let mut args: Vec<String> = vec![
            "--relay-name".into(),
            name.into(),
            "--federation-accept".into(),
            "any".into(),
            "--order-publish-burst".into(),
            burst.clone(),
        ];
        for t in &trusted {
            args.extend(["--auth-peer".into(), t.clone()]);
        }
        if let Some(peer) = peer {
            args.extend(["--peer".into(), peer.tcp_addr().to_string()]);
        }
        Relay::start(
            dir.path(),
            Ports::default(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        )
    };
    let b2 = start(&dirs[3], "B2", None)?;
    let b1 = start(&dirs[2], "B1", Some(&b2))?;
    let a1 = start(&dirs[1], "A1", Some(&b1))?;
    let a2 = start(&dirs[0], "A2", Some(&a1))?;
    let a = Group {
        name: "A",
        raw: RawPublisher::connect_as(&a2, &pair, key_a).await?,
        makers: Vec::new(),
        next_keep_alive: Instant::now(),
    };
    let b = Group {
        name: "B",
        raw: RawPublisher::connect_as(&b2, &pair, key_b).await?,
        makers: Vec::new(),
        next_keep_alive: Instant::now(),
    };
    // Each page holds one reservation (K = 1): a standby on the other side of the cut would
    // carry that side's orders around it.
    let one_relay = |relay: &Relay| {
        let mut config = NodeConfig::new(vec![relay.tcp_addr()]);
        config.reservations = 1;
        config
    };
    let mut watchers = Vec::new();
    for (name, relay) in [("page on A2", &a2), ("page on B2", &b2)] {
        watchers.push((name, Peer::trader_with(one_relay(relay), &pair).await?));
    }
    let mut bed = Bed {
        pair: pair.clone(),
        relays: vec![("A2", a2), ("A1", a1), ("B1", b1), ("B2", b2)],
        a,
        b,
        watchers,
        checker,
    };
    let pre = (orders / 10).max(4);
    bed.a.publish(&pair, pre, PER_MAKER_BEFORE).await?;
    bed.b.publish(&pair, pre, PER_MAKER_BEFORE).await?;
    let (relays, _) = bed.converge("before the cut").await?;
    println!(
        "before the cut: {} orders a side, on every relay in {:.2} s",
        pre,
        relays.as_secs_f64()
    );
    bed.round("short", orders, short).await?;
    bed.round("long", orders, long).await?;
    for (name, relay) in &bed.relays {
        println!("{name} repairs: {}", repairs(relay));
    }
    for side in [&bed.a, &bed.b] {
        println!("side {}: {} makers", side.name, side.makers.len());
    }
    Ok(())
}
