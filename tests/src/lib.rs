//! Test harness: starts the real `darkswap-relay` binary on loopback ports with a temporary data
//! directory, and native peers built on `darkswap-net`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use darkswap_net::libp2p::multiaddr::Protocol;
use darkswap_net::libp2p::{
    gossipsub, identity::Keypair, noise, swarm::SwarmEvent, tcp, yamux, Multiaddr, PeerId, Swarm,
};
use darkswap_net::{new_node, NodeConfig, NodeEvent, NodeHandle, RelayStatus};
use darkswap_proto::gossip::{gossipsub_behaviour, Gossip, GossipRole};
use darkswap_proto::order::order_topic;
use futures::channel::mpsc;
use futures::StreamExt;

pub mod delay;
pub mod hostile;
pub mod market_cli;
pub mod nginx;
pub mod probe;
pub mod regtest;
pub mod stats;

/// The `darkswap` CLI next to the relay binary (`cargo build --workspace` builds both).
pub fn cli_bin() -> PathBuf {
    let bin = relay_bin().with_file_name("darkswap");
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p darkswap-cli` before the tests",
        bin.display()
    );
    bin
}

/// The relay binary built in the same target directory as this test
/// (`cargo build -p darkswap-relay` first), or `$DARKSWAP_RELAY_BIN`.
pub fn relay_bin() -> PathBuf {
    if let Ok(path) = std::env::var("DARKSWAP_RELAY_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // A test runs from target/<profile>/deps/, a benchmark binary from target/<profile>/.
    let dir = exe.parent().expect("target directory");
    let bin = [dir.join("darkswap-relay"), dir.join("../darkswap-relay")]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| dir.join("../darkswap-relay"));
    assert!(
        bin.is_file(),
        "{} not found: run `cargo build -p darkswap-relay` before the tests",
        bin.display()
    );
    bin
}

/// A port that was free a moment ago (for tests that restart a relay on the same ports).
pub fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free TCP port")
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free UDP port")
}

/// Ports for one relay; 0 means "any".
#[derive(Clone, Copy, Debug, Default)]
pub struct Ports {
    pub tcp: u16,
    pub ws: u16,
    pub webrtc: u16,
    pub http: u16,
}

impl Ports {
    pub fn fixed() -> Self {
        Self {
            tcp: free_tcp_port(),
            ws: free_tcp_port(),
            webrtc: free_udp_port(),
            http: free_tcp_port(),
        }
    }
}

/// A running relay process; stopped with SIGTERM when dropped.
pub struct Relay {
    child: Child,
    pub peer_id: PeerId,
    /// What it announces (`address:` lines).
    pub addrs: Vec<Multiaddr>,
    /// What it binds (`listening:` lines): the same as `addrs` unless it was given
    /// `--external-addr`.
    pub listening: Vec<Multiaddr>,
    pub http: String,
}

impl Relay {
    /// Starts the relay with `data_dir`, `ports` and extra flags, and waits for "ready". It logs
    /// warnings to the test's stderr; `DARKSWAP_TEST_RELAY_LOG` (a `RUST_LOG` filter) asks for
    /// more, e.g. `warn,darkswap_relay::server=debug,libp2p_swarm=debug` to see every dial.
    pub fn start(data_dir: &Path, ports: Ports, extra: &[&str]) -> Result<Self> {
        Self::serving(data_dir, Path::new("/nonexistent"), ports, extra)
    }

    /// [`Relay::start`], serving the files in `web_dir` over HTTP.
    pub fn serving(data_dir: &Path, web_dir: &Path, ports: Ports, extra: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(relay_bin());
        cmd.arg("--data-dir")
            .arg(data_dir)
            .args(["--listen-ip", "127.0.0.1"])
            .args(["--tcp-port", &ports.tcp.to_string()])
            .args(["--ws-port", &ports.ws.to_string()])
            .args(["--webrtc-port", &ports.webrtc.to_string()])
            .args(["--http-port", &ports.http.to_string()])
            .arg("--web-dir")
            .arg(web_dir)
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("DARKSWAP_TEST_RELAY_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().context("cannot start darkswap-relay")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut peer_id, mut addrs, mut http) = (None, Vec::new(), None);
        let mut listening: Vec<Multiaddr> = Vec::new();
        for line in lines.by_ref() {
            let line = line?;
            if let Some(id) = line.strip_prefix("peer id: ") {
                peer_id = Some(id.parse()?);
            } else if let Some(a) = line.strip_prefix("address: ") {
                addrs.push(a.parse()?);
            } else if let Some(a) = line.strip_prefix("listening: ") {
                listening.push(a.parse()?);
            } else if let Some(url) = line.strip_prefix("web app: ") {
                http = Some(url.trim_end_matches('/').to_string());
            } else if line == "ready" {
                break;
            }
        }
        // Keep draining stdout so the relay never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let (Some(peer_id), Some(http)) = (peer_id, http) else {
            let status = child.wait()?;
            bail!("relay exited before it was ready ({status})");
        };
        Ok(Self {
            child,
            peer_id,
            addrs,
            listening,
            http,
        })
    }

    /// The relay's TCP address on loopback.
    pub fn tcp_addr(&self) -> Multiaddr {
        self.addr_with("/tcp/", false)
    }

    /// The relay's WebSocket address on loopback.
    pub fn ws_addr(&self) -> Multiaddr {
        self.addr_with("/ws", true)
    }

    /// The relay's `/ws` address as a client dials it through a forwarder at `entrance` (such
    /// as [`nginx::Nginx::wss_entrance_from`]).
    pub fn ws_addr_via(&self, entrance: SocketAddr) -> Multiaddr {
        Multiaddr::from(entrance.ip())
            .with(Protocol::Tcp(entrance.port()))
            .with(Protocol::Ws("/".into()))
            .with(Protocol::P2p(self.peer_id))
    }

    /// The IP and port of the relay's HTTP server.
    pub fn http_socket(&self) -> Result<SocketAddr> {
        Ok(self.http.trim_start_matches("http://").parse()?)
    }

    /// The relay's WebRTC-direct address on loopback.
    pub fn webrtc_addr(&self) -> Multiaddr {
        self.addr_with("/webrtc-direct/", true)
    }

    fn addr_with(&self, needle: &str, allow_ws: bool) -> Multiaddr {
        // What it binds (it may announce others, given `--external-addr`); what it announces
        // for WebRTC-direct, whose certhash only that carries.
        let pool = if needle == "/webrtc-direct/" || self.listening.is_empty() {
            &self.addrs
        } else {
            &self.listening
        };
        pool.iter()
            .find(|a| {
                let s = a.to_string();
                s.starts_with("/ip4/127.0.0.1/")
                    && s.contains(needle)
                    && (allow_ws || !s.contains("/ws"))
                    && (needle == "/webrtc-direct/" || !s.contains("webrtc"))
            })
            .map(|a| a.clone().with_p2p(self.peer_id).unwrap_or_else(|a| a))
            .unwrap_or_else(|| panic!("relay has no {needle} address in {pool:?}"))
    }

    pub fn get(&self, path: &str) -> Result<(u16, String)> {
        http_get(&format!("{}{}", self.http, path))
    }

    /// Asks the relay's regtest faucet at `path` (`/api/faucet`, `/api/faucet/runes`) for
    /// `to`; its answer's body, which must come with a 200.
    pub fn faucet(&self, path: &str, to: &bitcoin::Address) -> Result<String> {
        let (status, body) = http_request(
            "POST",
            &format!("{}{path}", self.http),
            &[("Content-Type", "application/json")],
            darkswap_wallet::faucet::request_body(to).as_bytes(),
        )?;
        if status != 200 {
            bail!("the faucet at {path}: {status} {body}");
        }
        Ok(body)
    }

    /// The value of one sample in `/metrics` (the exact series text before the value).
    pub fn metric(&self, series: &str) -> Result<f64> {
        let (_, body) = self.get("/metrics")?;
        metric_value(&body, series).ok_or_else(|| anyhow!("{series} not in /metrics"))
    }

    /// Polls `/metrics` until `series` satisfies `check` (gauges are refreshed on the relay's
    /// one-second tick), failing after `timeout`.
    pub async fn metric_eventually(
        &self,
        series: &str,
        timeout: Duration,
        check: impl Fn(f64) -> bool,
    ) -> Result<f64> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let value = self.metric(series).ok();
            if let Some(v) = value.filter(|v| check(*v)) {
                return Ok(v);
            }
            if std::time::Instant::now() > deadline {
                bail!("{series} is {value:?} after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The relay process's resident memory in bytes (from /proc).
    pub fn rss_bytes(&self) -> Result<u64> {
        rss_of(self.child.id())
    }

    /// The relay's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time the relay process has used so far, user and system, in seconds (from /proc).
    pub fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th
        // of the whole line, in clock ticks (100 a second on Linux).
        let rest = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .ok_or_else(|| anyhow!("unreadable /proc stat"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64> {
            Ok(fields
                .get(i)
                .ok_or_else(|| anyhow!("short /proc stat"))?
                .parse::<f64>()?)
        };
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    }

    pub fn stop(mut self) -> Result<std::process::ExitStatus> {
        self.terminate()
    }

    /// Kills the relay at once (SIGKILL), as a crash or a pulled plug would: no goodbye to its
    /// peers; the kernel resets its connections.
    pub fn kill(mut self) -> Result<std::process::ExitStatus> {
        self.child.kill()?;
        Ok(self.child.wait()?)
    }

    fn terminate(&mut self) -> Result<std::process::ExitStatus> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        for _ in 0..100 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child.kill()?;
        bail!("relay did not stop within 5 s of SIGTERM")
    }
}

/// A process's resident memory in bytes (from /proc).
pub fn rss_of(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS"))?;
    Ok(kb * 1024)
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.terminate();
        }
    }
}

/// The value of `series` in Prometheus text, e.g. `darkswap_relay_reservations_accepted_total`.
pub fn metric_value(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// A minimal HTTP/1.1 GET against loopback (no client library needed for tests).
pub fn http_get(url: &str) -> Result<(u16, String)> {
    http_request("GET", url, &[], b"")
}

/// A minimal HTTP/1.1 request against loopback, with extra header lines and a body.
pub fn http_request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("not an http URL: {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response).to_string();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("malformed HTTP response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| anyhow!("no HTTP status"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)?
    } else {
        body.to_string()
    };
    Ok((status, body))
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut rest: &str) -> Result<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| anyhow!("truncated chunked body"))?;
        let size = usize::from_str_radix(size.trim(), 16)?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| anyhow!("truncated chunk"))?;
        out.push_str(chunk);
        rest = after.get(size + 2..).unwrap_or_default();
    }
}

/// A native trader on `darkswap-net`.
pub struct Peer {
    pub handle: NodeHandle,
    pub events: mpsc::Receiver<NodeEvent>,
    /// Our circuit addresses as the node last reported them ([`NodeEvent::Reachable`], noted
    /// by [`Peer::wait_for`] whatever it waits for).
    pub reachable: Vec<Multiaddr>,
    /// The last book view of each pair, noted the same way: a view comes only when the book
    /// changed, so [`Peer::book_where`] looks at the last one first.
    pub books: std::collections::HashMap<darkswap_orderbook::Pair, darkswap_net::BookView>,
}

impl Peer {
    pub async fn start(relay_addrs: Vec<Multiaddr>) -> Result<Self> {
        Self::start_with(NodeConfig::new(relay_addrs)).await
    }

    pub async fn start_with(config: NodeConfig) -> Result<Self> {
        Self::start_keyed(Keypair::generate_ed25519(), config).await
    }

    /// A node with a given identity (to restart "the same trader").
    pub async fn start_keyed(keypair: Keypair, config: NodeConfig) -> Result<Self> {
        let (node, handle, events) = new_node(keypair, config).await?;
        tokio::spawn(node.run());
        Ok(Self {
            handle,
            events,
            reachable: Vec::new(),
            books: std::collections::HashMap::new(),
        })
    }

    pub fn id(&self) -> PeerId {
        self.handle.local_peer_id()
    }

    /// Waits for the first event that `pick` maps to `Some`, failing after `timeout`.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        mut pick: impl FnMut(&NodeEvent) -> Option<T>,
    ) -> Result<T> {
        let wait = async {
            while let Some(event) = self.events.next().await {
                self.note(&event);
                if let Some(v) = pick(&event) {
                    return Ok(v);
                }
            }
            bail!("node stopped")
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| anyhow!("event not seen within {timeout:?}"))?
    }

    /// A peer of `relay` (over TCP) that holds a reservation on it.
    pub async fn reserved_on(relay: &Relay) -> Result<Self> {
        let mut peer = Self::start(vec![relay.tcp_addr()]).await?;
        peer.reserved().await?;
        Ok(peer)
    }

    /// Keeps what later waits look at first: the circuit addresses and each pair's book view.
    fn note(&mut self, event: &NodeEvent) {
        match event {
            NodeEvent::Reachable { circuit_addrs } => self.reachable = circuit_addrs.clone(),
            NodeEvent::Trading(darkswap_net::TradingEvent::Book(view)) => {
                self.books.insert(view.pair.clone(), view.clone());
            }
            _ => {}
        }
    }

    /// Takes every event already waiting (without waiting for more) and returns the last book
    /// view of `pair` seen so far.
    pub fn latest_book(
        &mut self,
        pair: &darkswap_orderbook::Pair,
    ) -> Option<&darkswap_net::BookView> {
        while let Ok(event) = self.events.try_recv() {
            self.note(&event);
        }
        self.books.get(pair)
    }

    /// Waits until the node is reachable through `relays` relays (its link's and standbys'),
    /// and returns its circuit addresses.
    pub async fn reachable_through(
        &mut self,
        relays: usize,
        timeout: Duration,
    ) -> Result<Vec<Multiaddr>> {
        if self.reachable.len() < relays {
            self.wait_for(timeout, |e| {
                matches!(e, NodeEvent::Reachable { circuit_addrs } if circuit_addrs.len() >= relays)
                    .then_some(())
            })
            .await?;
        }
        Ok(self.reachable.clone())
    }

    pub async fn reserved(&mut self) -> Result<()> {
        self.wait_for(Duration::from_secs(15), |e| {
            matches!(e, NodeEvent::Relay(RelayStatus::Reserved { .. })).then_some(())
        })
        .await
    }
}

impl Peer {
    /// A trader on `relay` holding a reservation and following `pair`, its first book view seen.
    pub async fn trader(relay: &Relay, pair: &darkswap_orderbook::Pair) -> Result<Self> {
        Self::trader_with(NodeConfig::new(vec![relay.tcp_addr()]), pair).await
    }

    /// [`Peer::trader`] with a node configuration of the test's choosing.
    pub async fn trader_with(config: NodeConfig, pair: &darkswap_orderbook::Pair) -> Result<Self> {
        let mut peer = Peer::start_with(config).await?;
        peer.reserved().await?;
        peer.handle
            .command(darkswap_net::Command::WatchPair { pair: pair.clone() })?;
        peer.book_where(Duration::from_secs(20), pair, |_| true)
            .await?;
        Ok(peer)
    }

    /// Waits for a book view of `pair` that satisfies `check` (the last one seen, if it does).
    pub async fn book_where(
        &mut self,
        timeout: Duration,
        pair: &darkswap_orderbook::Pair,
        mut check: impl FnMut(&darkswap_net::BookView) -> bool,
    ) -> Result<darkswap_net::BookView> {
        if let Some(view) = self.books.get(pair).filter(|v| check(v)) {
            return Ok(view.clone());
        }
        self.wait_for(timeout, |e| match e {
            NodeEvent::Trading(darkswap_net::TradingEvent::Book(view))
                if view.pair == *pair && check(view) =>
            {
                Some(view.clone())
            }
            _ => None,
        })
        .await
    }
}

/// An order spec for tests: sell `amount` at `price`, living an hour, any fill.
pub fn sell(amount: u64, price: u64) -> darkswap_proto::order::OrderSpec {
    darkswap_proto::order::OrderSpec {
        nonce: 0,
        side: darkswap_orderbook::Side::Sell,
        price: darkswap_orderbook::Price(price),
        amount,
        min_fill: 0,
        expires_at_ms: darkswap_net::unix_time_ms() + 3_600_000,
    }
}

/// A signed order message from `key` on `pair`: sell 10 at 100, `nonce` (and the sequence
/// number), sent at `now_ms`, living ten minutes; what the tests' raw makers publish.
pub fn signed_sell(
    key: &Keypair,
    pair: &darkswap_orderbook::Pair,
    nonce: u64,
    now_ms: u64,
) -> Result<Vec<u8>> {
    let body = darkswap_proto::order::OrderBody {
        pair: pair.clone(),
        seq: nonce,
        sent_at_ms: now_ms,
        action: darkswap_proto::order::OrderAction::Order(darkswap_proto::order::OrderSpec {
            nonce,
            expires_at_ms: now_ms + 600_000,
            ..sell(10, 100)
        }),
    };
    Ok(darkswap_proto::order::sign_order_message(
        key, &body, now_ms,
    )?)
}

/// A pair of its own for each `(tag, n)`: `RUNE:<tag><n in letters>/BTC`.
pub fn numbered_pair(tag: &str, n: usize) -> darkswap_orderbook::Pair {
    let letters: String = format!("{n:06}")
        .bytes()
        .map(|d| char::from(b'A' + (d - b'0')))
        .collect();
    darkswap_orderbook::Pair::parse(&format!("RUNE:{tag}{letters}/BTC"))
        .expect("letters make a valid rune name")
}

/// The raw publisher's behaviour: gossipsub, auth so that it can authenticate first, and book
/// sync to ask for pages at will.
#[derive(darkswap_net::libp2p::swarm::NetworkBehaviour)]
#[behaviour(prelude = "darkswap_net::libp2p::swarm::derive_prelude")]
pub struct RawBehaviour {
    gossip: Gossip,
    auth: darkswap_net::libp2p::request_response::Behaviour<darkswap_proto::codecs::AuthCodec>,
    book_sync:
        darkswap_net::libp2p::request_response::Behaviour<darkswap_proto::codecs::BookSyncCodec>,
}

/// A bare gossipsub peer that publishes whatever bytes it is given, as a hostile client would.
pub struct RawPublisher {
    swarm: Swarm<RawBehaviour>,
    topic: gossipsub::IdentTopic,
    key: Keypair,
    relay: PeerId,
}

impl RawPublisher {
    /// Connects, authenticates with its identity key (anyone can: a hostile peer would), and
    /// follows `pair`.
    pub async fn connect(relay: &Relay, pair: &darkswap_orderbook::Pair) -> Result<Self> {
        Self::connect_as(relay, pair, Keypair::generate_ed25519()).await
    }

    /// [`RawPublisher::connect`] with a key of the caller's (one the relay was told to trust).
    pub async fn connect_as(
        relay: &Relay,
        pair: &darkswap_orderbook::Pair,
        key: Keypair,
    ) -> Result<Self> {
        let mut raw = Self::bare(relay, key, pair).await?;
        raw.authenticate(relay.peer_id).await?;
        raw.follow(std::slice::from_ref(pair)).await?;
        Ok(raw)
    }

    /// Connects and follows `pair` without authenticating; returns once the relay follows
    /// `pair` (an authenticated trader must have made it follow).
    pub async fn connect_unauthenticated(
        relay: &Relay,
        pair: &darkswap_orderbook::Pair,
    ) -> Result<Self> {
        let mut raw = Self::bare(relay, Keypair::generate_ed25519(), pair).await?;
        raw.follow(std::slice::from_ref(pair)).await?;
        Ok(raw)
    }

    /// Connects with a fresh key, authenticated or not, following nothing yet.
    pub async fn connect_following_nothing(relay: &Relay, authenticate: bool) -> Result<Self> {
        let pair = darkswap_orderbook::Pair::parse("RUNE:UNUSED/BTC")?;
        let mut raw = Self::bare(relay, Keypair::generate_ed25519(), &pair).await?;
        if authenticate {
            raw.authenticate(relay.peer_id).await?;
        }
        Ok(raw)
    }

    /// Connected to the relay; `pair` is where [`RawPublisher::publish`] publishes.
    async fn bare(relay: &Relay, key: Keypair, pair: &darkswap_orderbook::Pair) -> Result<Self> {
        use darkswap_net::libp2p::request_response::{self, ProtocolSupport};
        let mut swarm = darkswap_net::libp2p::SwarmBuilder::with_existing_identity(key.clone())
            .with_tokio()
            .with_tcp(
                tcp::Config::default(),
                noise::Config::new,
                yamux::Config::default,
            )?
            .with_behaviour(|_| {
                Ok(RawBehaviour {
                    gossip: gossipsub_behaviour(GossipRole::Trader)
                        .map_err(Box::<dyn std::error::Error + Send + Sync>::from)?,
                    auth: request_response::Behaviour::with_codec(
                        darkswap_proto::codecs::AuthCodec::default(),
                        [(
                            darkswap_net::libp2p::StreamProtocol::new(darkswap_auth::AUTH_PROTOCOL),
                            ProtocolSupport::Outbound,
                        )],
                        request_response::Config::default(),
                    ),
                    book_sync: request_response::Behaviour::with_codec(
                        darkswap_proto::codecs::BookSyncCodec::default(),
                        [(
                            darkswap_net::libp2p::StreamProtocol::new(
                                darkswap_proto::book_sync::BOOK_SYNC_PROTOCOL,
                            ),
                            ProtocolSupport::Outbound,
                        )],
                        request_response::Config::default(),
                    ),
                })
            })?
            // Longer than the relay's, so that it is the relay that closes an idle connection.
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(600)))
            .build();
        swarm.dial(relay.tcp_addr())?;
        let relay_id = relay.peer_id;
        tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay_id => {
                        return Ok(())
                    }
                    SwarmEvent::OutgoingConnectionError { error, .. } => {
                        return Err(anyhow!("cannot reach the relay: {error}"))
                    }
                    _ => {}
                }
            }
        })
        .await??;
        Ok(Self {
            swarm,
            topic: gossipsub::IdentTopic::new(order_topic(pair)),
            key,
            relay: relay_id,
        })
    }

    /// Subscribes to `pairs` without waiting for anything.
    pub fn subscribe(&mut self, pairs: &[darkswap_orderbook::Pair]) -> Result<()> {
        for pair in pairs {
            self.swarm
                .behaviour_mut()
                .gossip
                .subscribe(&gossipsub::IdentTopic::new(order_topic(pair)))?;
        }
        Ok(())
    }

    /// Subscribes to `pairs` and returns once the relay follows every one of them, as its
    /// subscriptions (the hello on connecting, then one message per pair) tell us.
    pub async fn follow(&mut self, pairs: &[darkswap_orderbook::Pair]) -> Result<()> {
        self.subscribe(pairs)?;
        let wanted: Vec<gossipsub::TopicHash> = pairs
            .iter()
            .map(|p| gossipsub::IdentTopic::new(order_topic(p)).hash())
            .collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let relay = self.relay;
            let known: std::collections::HashSet<&gossipsub::TopicHash> = self
                .swarm
                .behaviour()
                .gossip
                .all_peers()
                .filter(|(peer, _)| **peer == relay)
                .flat_map(|(_, topics)| topics)
                .collect();
            let missing = wanted.iter().filter(|t| !known.contains(t)).count();
            if missing == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "the relay follows {} of {} pairs after 20 s (of {} pairs it follows that we know)",
                    wanted.len() - missing,
                    wanted.len(),
                    known.len()
                );
            }
            self.run_for(Duration::from_millis(50)).await;
        }
    }

    /// Whether the connection to the relay is still open.
    pub fn connected(&self) -> bool {
        self.swarm.is_connected(&self.relay)
    }

    /// The identity challenge, answered.
    async fn authenticate(&mut self, relay: PeerId) -> Result<()> {
        use darkswap_auth::client::{ClientAuth, Credential, Step};
        use darkswap_net::libp2p::request_response;
        let key = self.key.clone();
        let local = *self.swarm.local_peer_id();
        let mut client = ClientAuth::new(Credential::Identity, None);
        let mut request = client.start(&relay, &local, 0);
        loop {
            let id = self
                .swarm
                .behaviour_mut()
                .auth
                .send_request(&relay, request);
            let response = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let SwarmEvent::Behaviour(RawBehaviourEvent::Auth(
                        request_response::Event::Message {
                            message:
                                request_response::Message::Response {
                                    request_id,
                                    response,
                                },
                            ..
                        },
                    )) = self.swarm.select_next_some().await
                    {
                        if request_id == id {
                            return response;
                        }
                    }
                }
            })
            .await?;
            match client.on_response(response, &key, &relay) {
                Step::Send(next) => request = next,
                Step::Granted(_) => return Ok(()),
                Step::Refused(reason) => bail!("relay refused: {}", reason.explain()),
                // The relay's price on new identities, paid as any client pays it.
                Step::Work { bits } => {
                    let stamp = darkswap_auth::stamp::StampSearch::new(&local, bits)
                        .run(u32::MAX)
                        .ok_or_else(|| anyhow!("no stamp of {bits} bits"))?;
                    request = client.stamp_found(stamp);
                }
            }
        }
    }

    /// Asks the relay for the first page of `pair`'s book `n` times, one after another, and
    /// returns how many were answered and how many refused with an error.
    pub async fn book_sync_pages(
        &mut self,
        relay: PeerId,
        pair: &darkswap_orderbook::Pair,
        n: usize,
    ) -> Result<(usize, usize)> {
        let (mut answered, mut refused) = (0, 0);
        for _ in 0..n {
            if self.book_page(relay, pair, None).await?.error.is_some() {
                refused += 1;
            } else {
                answered += 1;
            }
        }
        Ok((answered, refused))
    }

    /// Every order id of `pair` the relay holds, paged through book sync (errors if the relay
    /// refuses a page).
    pub async fn book_ids(
        &mut self,
        relay: PeerId,
        pair: &darkswap_orderbook::Pair,
    ) -> Result<std::collections::HashSet<darkswap_orderbook::OrderId>> {
        let mut ids = std::collections::HashSet::new();
        let mut after = None;
        loop {
            let page = self.book_page(relay, pair, after).await?;
            if let Some(error) = page.error {
                bail!("the relay refused a book page: {error}");
            }
            for raw in &page.orders {
                let order = darkswap_proto::order::verify_order_message(
                    raw,
                    Some(pair),
                    darkswap_proto::order::Freshness::Stored,
                    darkswap_net::unix_time_ms(),
                )?;
                after = order.order_id();
                ids.extend(after);
            }
            if !page.more || page.orders.is_empty() {
                return Ok(ids);
            }
        }
    }

    /// One book-sync page of `pair` from the relay, after order id `after`.
    async fn book_page(
        &mut self,
        relay: PeerId,
        pair: &darkswap_orderbook::Pair,
        after: Option<darkswap_orderbook::OrderId>,
    ) -> Result<darkswap_proto::book_sync::BookSyncResponse> {
        use darkswap_net::libp2p::request_response;
        use darkswap_proto::book_sync::{BookSyncRequest, MAX_BOOK_SYNC_PAGE};
        let id = self.swarm.behaviour_mut().book_sync.send_request(
            &relay,
            BookSyncRequest {
                pair: pair.clone(),
                maker: None,
                after,
                limit: MAX_BOOK_SYNC_PAGE,
            },
        );
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match self.swarm.select_next_some().await {
                    SwarmEvent::Behaviour(RawBehaviourEvent::BookSync(
                        request_response::Event::Message {
                            message:
                                request_response::Message::Response {
                                    request_id,
                                    response,
                                },
                            ..
                        },
                    )) if request_id == id => return Ok(response),
                    SwarmEvent::Behaviour(RawBehaviourEvent::BookSync(
                        request_response::Event::OutboundFailure {
                            request_id, error, ..
                        },
                    )) if request_id == id => return Err(anyhow!("book sync: {error}")),
                    _ => {}
                }
            }
        })
        .await?
    }

    /// The identity key it authenticated with (a maker signs its orders with it).
    pub fn key(&self) -> &Keypair {
        &self.key
    }

    /// Publishes one message and lets the swarm send it.
    pub async fn publish(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.publish_now(bytes)?;
        self.run_for(Duration::from_millis(50)).await;
        Ok(())
    }

    /// Queues one message without waiting (call `run_for` to let it go out).
    pub fn publish_now(&mut self, bytes: Vec<u8>) -> Result<()> {
        let topic = self.topic.clone();
        self.publish_on_now(topic, bytes)
    }

    /// Publishes one message on `pair` (followed with [`RawPublisher::follow`]).
    pub async fn publish_on(
        &mut self,
        pair: &darkswap_orderbook::Pair,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.publish_on_now(gossipsub::IdentTopic::new(order_topic(pair)), bytes)?;
        self.run_for(Duration::from_millis(20)).await;
        Ok(())
    }

    /// Queues one message on `pair` without waiting (call `run_for` to let it go out).
    pub fn publish_on_later(
        &mut self,
        pair: &darkswap_orderbook::Pair,
        bytes: Vec<u8>,
    ) -> Result<()> {
        self.publish_on_now(gossipsub::IdentTopic::new(order_topic(pair)), bytes)
    }

    fn publish_on_now(&mut self, topic: gossipsub::IdentTopic, bytes: Vec<u8>) -> Result<()> {
        self.swarm
            .behaviour_mut()
            .gossip
            .publish(topic, bytes)
            .map_err(|e| anyhow!("publish: {e}"))?;
        Ok(())
    }

    /// The next message gossiped to us, as the bytes that travelled (not forwarded further).
    pub async fn next_message(&mut self, timeout: Duration) -> Result<Vec<u8>> {
        tokio::time::timeout(timeout, self.next_gossip())
            .await
            .map(|(_, message)| message.data)
            .map_err(|_| anyhow!("no gossip message within {timeout:?}"))
    }

    /// From now on a watcher: follows the pair until `arrivals` closes (or the task is
    /// stopped), sending each gossiped message's id and arrival time without forwarding it (a
    /// trader's page, minus its checks). Arrivals the full channel refused are added to `lost`.
    pub async fn watch(
        mut self,
        arrivals: tokio::sync::mpsc::Sender<(gossipsub::MessageId, std::time::Instant)>,
        lost: std::sync::Arc<std::sync::atomic::AtomicU64>,
    ) {
        loop {
            let (id, _) = tokio::select! {
                gossip = self.next_gossip() => gossip,
                _ = arrivals.closed() => return,
            };
            if arrivals.try_send((id, std::time::Instant::now())).is_err() {
                lost.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Drives the swarm until a message is gossiped to us; it goes no further.
    async fn next_gossip(&mut self) -> (gossipsub::MessageId, gossipsub::Message) {
        loop {
            if let SwarmEvent::Behaviour(RawBehaviourEvent::Gossip(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            })) = self.swarm.select_next_some().await
            {
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        gossipsub::MessageAcceptance::Ignore,
                    );
                return (message_id, message);
            }
        }
    }

    /// Drives the swarm for `d`.
    pub async fn run_for(&mut self, d: Duration) {
        let _ = tokio::time::timeout(d, async {
            loop {
                self.swarm.select_next_some().await;
            }
        })
        .await;
    }
}
