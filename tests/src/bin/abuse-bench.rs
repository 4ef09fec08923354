//! Abuse of the relay's pair table and books (issue 17, items 1 and 7), run against the real
//! relay binary on loopback: what each attack gets, and what an honest maker and watcher see
//! while it runs. Point `DARKSWAP_RELAY_BIN` at an older build to measure "before".
//!
//! Attacks (each against a fresh relay with its default limits, and each stops by itself):
//! - `junk-follows`: anonymous peers (they skip auth) each follow junk pairs;
//! - `throwaway-makers`: fresh keys, one connection each, each puts one order on each of its own
//!   junk pairs;
//! - `stuffing`: fresh keys, one connection each, fill one real pair with orders;
//! - `behind-proxy` (issue 17, item 6): behind Debian's nginx as an operator sets it up, one
//!   address (127.0.0.2) opens as many connections as one address may hold; then an honest
//!   trader at another address (127.0.0.3) comes through the same nginx. Run with the setup the
//!   README gave before (WebSocket proxied in nginx's http context: the relay sees only nginx's
//!   address) and with the README's setup now (a PROXY header naming each trader).
//! - `anonymous-flood` (issue 17, item 2): peers that never prove anything open connections
//!   until the relay refuses them (a relay of `--flood-connections` slots); then an honest
//!   trader comes. Before, the flood could take every slot and hold it until the deadline to
//!   authenticate (120 s); now it fills only the part not kept for peers that proved
//!   themselves, and a newcomer takes the place of the oldest flooder past the grace.
//!   The flood stands for peers at many addresses, so the per-address caps are lifted for it.
//! - `anonymous-flood-one-address` (item 2): the same flood from one address with the cap on
//!   anonymous places per address at its default: how many places that address holds.
//!
//! Every client here connects from 127.0.0.1, the honest ones too: per-address caps therefore
//! charge honest traders with the attacker (as behind one NAT). The attacker's yield (pairs and
//! orders the relay holds for it) is the figure to compare.
//!
//! Usage: abuse-bench [--identities N] [--pairs-each N] [--orders-each N] [--proxy-connections N]
//!                    [--flood-connections N] [--anonymous-grace-secs N]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use darkswap_net::libp2p::identity::Keypair;
use darkswap_net::unix_time_ms;
use darkswap_net::{NodeEvent, RelayStatus};
use darkswap_orderbook::Pair;
use darkswap_tests::hostile::{attacker, socket_of};
use darkswap_tests::nginx::Nginx;
use darkswap_tests::probe::Probe;
use darkswap_tests::{numbered_pair, sell, signed_sell, Peer, Ports, RawPublisher, Relay};

struct Sizes {
    identities: usize,
    pairs_each: usize,
    orders_each: usize,
    proxy_connections: usize,
    flood_connections: usize,
    anonymous_grace_secs: u64,
}

/// The README's nginx block before PROXY headers (issue 17, item 6): the WebSocket side proxied
/// in nginx's http context, so the relay sees every trader at nginx's address. (TLS 1.3 is
/// turned on as in the README now; the old block left Debian's nginx 1.22 at its defaults.)
const NGINX_BEFORE: &str = r#"
server {
    listen 443 ssl;
    server_name relay.example.org;
    ssl_certificate     /etc/letsencrypt/live/relay.example.org/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/relay.example.org/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / { proxy_pass http://127.0.0.1:8080; }
}
server {
    listen 4443 ssl;
    server_name relay.example.org;
    ssl_certificate     /etc/letsencrypt/live/relay.example.org/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/relay.example.org/privkey.pem;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
        proxy_pass http://127.0.0.1:4002;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
        proxy_read_timeout 1h;
    }
}
"#;

#[tokio::main]
async fn main() -> Result<()> {
    let mut sizes = Sizes {
        identities: 35,
        pairs_each: 30,
        orders_each: 200,
        proxy_connections: 256,
        flood_connections: 1_000,
        anonymous_grace_secs: 10,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().unwrap_or_default();
        match arg.as_str() {
            "--identities" => sizes.identities = value.parse()?,
            "--pairs-each" => sizes.pairs_each = value.parse()?,
            "--orders-each" => sizes.orders_each = value.parse()?,
            "--proxy-connections" => sizes.proxy_connections = value.parse()?,
            "--flood-connections" => sizes.flood_connections = value.parse()?,
            "--anonymous-grace-secs" => sizes.anonymous_grace_secs = value.parse()?,
            other => {
                bail!("unknown argument {other} (--identities N, --pairs-each N, --orders-each N, --proxy-connections N, --flood-connections N, --anonymous-grace-secs N)")
            }
        }
    }
    junk_follows(&sizes).await?;
    throwaway_makers(&sizes).await?;
    stuffing(&sizes).await?;
    behind_proxy(&sizes, false).await?;
    behind_proxy(&sizes, true).await?;
    anonymous_flood(&sizes).await?;
    anonymous_flood_one_address(&sizes).await?;
    Ok(())
}

/// `anonymous-flood-one-address`: the same flood, all of it from one address, against a relay
/// with its per-address caps at their defaults but for the connections an address may hold in
/// all: how many places the address takes (before: every place of the anonymous part).
async fn anonymous_flood_one_address(sizes: &Sizes) -> Result<()> {
    let help = std::process::Command::new(darkswap_tests::relay_bin())
        .arg("--help")
        .output()?;
    let capped = String::from_utf8_lossy(&help.stdout).contains("--max-anonymous-per-ip");
    let dir = tempfile::tempdir()?;
    let total = sizes.flood_connections.to_string();
    let per_ip = (sizes.flood_connections + 16).to_string();
    let relay = Relay::start(
        dir.path(),
        Ports::default(),
        &[
            "--max-connections",
            total.as_str(),
            "--max-connections-per-ip",
            per_ip.as_str(),
        ],
    )?;
    let mut flood = Vec::new();
    for _ in 0..sizes.flood_connections {
        if let Ok(probe) = Probe::connect(&relay, Keypair::generate_ed25519()).await {
            flood.push(probe);
        }
    }
    // Refused connections are closed right after their handshake: let them go.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = metric_or_na(&relay, "darkswap_relay_anonymous_connections");
    let refused = metric_or_na(
        &relay,
        r#"darkswap_relay_connections_denied_total{reason="ip_anonymous_limit"}"#,
    );
    println!(
        "anonymous-flood-one-address ({}): {} anonymous peers from 127.0.0.1 to a relay of {total} slots hold {held} places; refused for their address {refused}; the other places stay for every other address",
        if capped { "max_anonymous_per_ip at its default" } else { "no per-address cap on anonymous places" },
        sizes.flood_connections,
    );
    drop(flood);
    Ok(())
}

async fn anonymous_flood(sizes: &Sizes) -> Result<()> {
    let help = std::process::Command::new(darkswap_tests::relay_bin())
        .arg("--help")
        .output()?;
    let kept =
        String::from_utf8_lossy(&help.stdout).contains("--connections-kept-for-authenticated");
    let dir = tempfile::tempdir()?;
    let total = sizes.flood_connections.to_string();
    let grace = sizes.anonymous_grace_secs.to_string();
    // Every client comes from 127.0.0.1: the per-address caps are lifted for this measurement
    // (the flood stands for peers at as many addresses).
    let per_ip = (sizes.flood_connections + 16).to_string();
    let mut flags = vec![
        "--max-connections",
        total.as_str(),
        "--max-connections-per-ip",
        per_ip.as_str(),
        "--auth-challenge-rate-per-ip",
        per_ip.as_str(),
    ];
    if kept {
        flags.extend(["--anonymous-grace-secs", grace.as_str()]);
    }
    if String::from_utf8_lossy(&help.stdout).contains("--max-anonymous-per-ip") {
        flags.extend(["--max-anonymous-per-ip", per_ip.as_str()]);
    }
    let relay = Relay::start(dir.path(), Ports::default(), &flags)?;
    let started = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..sizes.flood_connections {
        if let Ok(probe) = Probe::connect(&relay, Keypair::generate_ed25519()).await {
            flood.push(probe);
        }
    }
    let flooded = started.elapsed();
    let refused = |reason: &str| {
        relay
            .metric(&format!(
                r#"darkswap_relay_connections_denied_total{{reason="{reason}"}}"#
            ))
            .unwrap_or(0.0)
    };
    let held = relay
        .metric("darkswap_relay_anonymous_connections")
        .map_or_else(|_| format!("{}", flood.len()), |v| format!("{v}"));
    let came = Instant::now();
    let mut honest = Peer::start(vec![relay.tcp_addr()]).await?;
    let seen = honest
        .wait_for(Duration::from_secs(60), |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
        })
        .await
        .ok()
        .map(|_| came.elapsed());
    let setup = if kept {
        format!("slots kept for peers that proved themselves, {grace} s grace")
    } else {
        "this relay keeps no slots".to_string()
    };
    println!(
        "anonymous-flood ({setup}): {} anonymous peers opened connections to a relay of {total} slots in {:.1} s; {held} held, refused {} (slots full) + {} (anonymous part full); an honest trader coming then: {}; flooders' connections closed for newcomers: {}",
        sizes.flood_connections,
        flooded.as_secs_f64(),
        refused("connection_limit"),
        refused("anonymous_limit"),
        match seen {
            Some(d) => format!("reserved in {:.1} s", d.as_secs_f64()),
            None => "NOT reserved within 60 s".into(),
        },
        metric_or_na(&relay, "darkswap_relay_anonymous_evicted_total"),
    );
    drop(flood);
    Ok(())
}

/// A junk pair, distinct per attack, identity and index.
fn junk_pair(attack: &str, identity: usize, n: usize) -> Pair {
    numbered_pair(attack, identity * 1_000 + n)
}

/// What the relay holds: pairs with live orders, and live orders in all.
fn relay_books(relay: &Relay) -> Result<(usize, u64)> {
    let (_, scrape) = relay.get("/metrics")?;
    let mut pairs = 0;
    let mut orders = 0;
    for line in scrape.lines() {
        if let Some(rest) = line.strip_prefix("darkswap_relay_live_orders{") {
            let value: f64 = rest
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            if value > 0.0 {
                pairs += 1;
                orders += value as u64;
            }
        }
    }
    Ok((pairs, orders))
}

/// A metric, or "n/a" when the relay does not export it (an older build).
fn metric_or_na(relay: &Relay, name: &str) -> String {
    relay
        .metric(name)
        .map_or_else(|_| "n/a".into(), |v| format!("{v}"))
}

/// An honest maker places an order on a pair nobody used yet; how long until an honest watcher
/// sees it (None: not within 15 s).
async fn honest_new_pair(relay: &Relay) -> Result<Option<Duration>> {
    let pair = Pair::parse("RUNE:HONESTNEWPAIR/BTC")?;
    let maker = Peer::trader(relay, &pair).await?;
    let mut watcher = Peer::trader(relay, &pair).await?;
    let started = Instant::now();
    let id = maker.handle.place_order(pair.clone(), sell(1_000, 250))?;
    Ok(watcher
        .book_where(Duration::from_secs(15), &pair, |v| {
            v.orders.iter().any(|o| o.id == id)
        })
        .await
        .ok()
        .map(|_| started.elapsed()))
}

fn outcome(seen: Option<Duration>) -> String {
    took(seen, "delivered")
}

/// "`what` in N ms", or "NOT `what` within 15 s".
fn took(seen: Option<Duration>, what: &str) -> String {
    match seen {
        Some(d) => format!("{what} in {:.0} ms", d.as_secs_f64() * 1e3),
        None => format!("NOT {what} within 15 s"),
    }
}

async fn junk_follows(sizes: &Sizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let mut held = Vec::new();
    for i in 0..sizes.identities {
        let mut raw = RawPublisher::connect_following_nothing(&relay, false).await?;
        let pairs: Vec<Pair> = (0..sizes.pairs_each)
            .map(|n| junk_pair("JUNKA", i, n))
            .collect();
        raw.subscribe(&pairs)?;
        raw.run_for(Duration::from_millis(50)).await;
        held.push(raw);
    }
    for raw in &mut held {
        raw.run_for(Duration::from_millis(20)).await;
    }
    let followed = metric_or_na(&relay, "darkswap_relay_pairs_followed");
    let seen = honest_new_pair(&relay).await?;
    println!(
        "junk-follows: {} anonymous identities x {} junk pairs: relay follows {followed} pairs; honest order on a new pair: {}",
        sizes.identities,
        sizes.pairs_each,
        outcome(seen)
    );
    Ok(())
}

async fn throwaway_makers(sizes: &Sizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    // Connect and follow first, then publish everything at once: a maker that sends nothing
    // for 30 s is gone, and these send no keep-alives.
    let mut held = Vec::new();
    for i in 0..sizes.identities {
        let mut raw = RawPublisher::connect_following_nothing(&relay, true).await?;
        let pairs: Vec<Pair> = (0..sizes.pairs_each)
            .map(|n| junk_pair("JUNKB", i, n))
            .collect();
        raw.subscribe(&pairs)?;
        held.push((raw, pairs));
    }
    for (raw, _) in &mut held {
        raw.run_for(Duration::from_millis(100)).await;
    }
    let now = unix_time_ms();
    let mut not_sent = 0;
    for (raw, pairs) in &mut held {
        let key = raw.key().clone();
        for (n, pair) in pairs.iter().enumerate() {
            let bytes = signed_sell(&key, pair, n as u64 + 1, now)?;
            // Refused at the attacker when the relay does not follow the pair.
            if raw.publish_on_later(pair, bytes).is_err() {
                not_sent += 1;
            }
        }
        raw.run_for(Duration::from_millis(20)).await;
    }
    for (raw, _) in &mut held {
        raw.run_for(Duration::from_millis(20)).await;
    }
    // The relay refreshes its book gauges every second.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (pairs, orders) = relay_books(&relay)?;
    let seen = honest_new_pair(&relay).await?;
    println!(
        "throwaway-makers: {} keys x {} junk pairs, one order each: relay holds orders on {pairs} pairs ({orders} orders; {not_sent} could not even be sent); honest order on a new pair from the same address: {}",
        sizes.identities,
        sizes.pairs_each,
        outcome(seen)
    );
    Ok(())
}

async fn stuffing(sizes: &Sizes) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let relay = Relay::start(dir.path(), Ports::default(), &[])?;
    let pair = Pair::parse("RUNE:REALPAIR/BTC")?;
    let maker = Peer::trader(&relay, &pair).await?;
    let mut watcher = Peer::trader(&relay, &pair).await?;
    let honest = maker.handle.place_order(pair.clone(), sell(1_000, 250))?;
    watcher
        .book_where(Duration::from_secs(15), &pair, |v| {
            v.orders.iter().any(|o| o.id == honest)
        })
        .await?;
    let mut attackers = tokio::task::JoinSet::new();
    for _ in 0..sizes.identities {
        let mut raw = RawPublisher::connect(&relay, &pair).await?;
        let (pair, orders_each) = (pair.clone(), sizes.orders_each);
        attackers.spawn(async move {
            let key = raw.key().clone();
            // Ten a second, the per-maker rate, until done; then stay (a maker that leaves
            // loses its orders).
            for n in 0..orders_each {
                let now = unix_time_ms();
                let bytes = signed_sell(&key, &pair, n as u64 + 1, now)?;
                raw.publish_now(bytes)?;
                if n % 10 == 9 {
                    raw.run_for(Duration::from_secs(1)).await;
                }
            }
            raw.run_for(Duration::from_secs(600)).await;
            anyhow::Ok(())
        });
    }
    let publishing = Duration::from_secs(sizes.orders_each.div_ceil(10) as u64 + 2);
    let view = watcher
        .book_where(publishing + Duration::from_secs(5), &pair, |_| false)
        .await;
    drop(view);
    let (_, orders) = relay_books(&relay)?;
    let view = watcher
        .book_where(Duration::from_secs(5), &pair, |_| true)
        .await?;
    attackers.abort_all();
    println!(
        "stuffing: {} keys x {} orders on one real pair: relay holds {orders} orders; a watching trader's book holds {}",
        sizes.identities, sizes.orders_each, view.total_orders
    );
    Ok(())
}

/// How long until `peer` holds a reservation (None: not within 15 s).
async fn reserved_within(peer: &mut Peer) -> Option<Duration> {
    let started = Instant::now();
    peer.reserved().await.ok().map(|_| started.elapsed())
}

async fn behind_proxy(sizes: &Sizes, readme_setup: bool) -> Result<()> {
    let setup = if readme_setup {
        "README setup now: stream + PROXY header, ws_trusted_proxies"
    } else {
        "README setup before: WebSocket in nginx's http context"
    };
    let help = std::process::Command::new(darkswap_tests::relay_bin())
        .arg("--help")
        .output()?;
    if readme_setup && !String::from_utf8_lossy(&help.stdout).contains("--ws-trusted-proxy") {
        println!("behind-proxy ({setup}): n/a, this relay has no ws_trusted_proxies");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let (relay_dir, nginx_dir) = (dir.path().join("relay"), dir.path().join("nginx"));
    std::fs::create_dir_all(&nginx_dir)?;
    let cap = sizes.proxy_connections.to_string();
    let mut flags = vec!["--max-connections-per-ip", cap.as_str()];
    if readme_setup {
        flags.extend(["--ws-trusted-proxy", "127.0.0.1"]);
    }
    let relay = Relay::start(&relay_dir, Ports::default(), &flags)?;
    let (ws, http) = (socket_of(&relay.ws_addr())?, relay.http_socket()?);

    let nginx = Arc::new(if readme_setup {
        Nginx::start_from_readme(&nginx_dir, ws, http).await?
    } else {
        Nginx::start(&nginx_dir, NGINX_BEFORE, ws, http).await?
    });
    // One address takes what one address may hold, one reserved connection after another.
    let crowd = nginx.wss_entrance_from(attacker(0)).await?;
    let mut held = Vec::new();
    let mut reserved = 0;
    for _ in 0..sizes.proxy_connections {
        let mut peer = Peer::start(vec![relay.ws_addr_via(crowd)]).await?;
        if reserved_within(&mut peer).await.is_some() {
            reserved += 1;
        }
        held.push(peer);
    }
    let mut honest = Peer::start(vec![
        relay.ws_addr_via(nginx.wss_entrance_from(attacker(1)).await?)
    ])
    .await?;
    let seen = reserved_within(&mut honest).await;
    let honest = took(seen, "reserved");
    println!(
        "behind-proxy ({setup}): 127.0.0.2 holds {reserved} of {} connections (its cap) through nginx; an honest trader at 127.0.0.3 through the same nginx: {honest}",
        sizes.proxy_connections
    );
    Ok(())
}
