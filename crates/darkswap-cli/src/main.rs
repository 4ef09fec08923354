//! `darkswap`: a native DarkSwap trader, built on the same `darkswap-net` node as the browser.
//!
//! ```text
//! darkswap --relay /ip4/127.0.0.1/tcp/4001/p2p/<relay> peers
//! darkswap --relay … ping <peer> --count 5
//! darkswap --relay … send <peer> "hello"
//! darkswap --relay … online          # stay reachable, print what happens
//! darkswap --relay … market RUNE:DOG/BTC   # trade: commands on stdin (see market.rs)
//! darkswap --relay … --identity admin.key admin ban <peer> --reason spam   # needs Admin
//! ```

mod market;
mod relays;
mod release;
mod settle;
mod wallet;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use darkswap_auth::client::Credential;
use darkswap_net::libp2p::{identity::Keypair, Multiaddr, PeerId};
use darkswap_net::{new_node, AuthEvent, NodeConfig, NodeEvent, RelayStatus};
use darkswap_proto::auth::{AdminAction, Grant};
use futures::channel::mpsc;
use futures::StreamExt;

#[derive(Parser)]
#[command(version, about = "A native DarkSwap trader")]
struct Cli {
    /// The relay's multiaddr, ending in /p2p/<relay peer id> (repeat for several addresses of
    /// the same relay).
    /// (Every command but `wallet` needs it.)
    #[arg(long, env = "DARKSWAP_RELAY")]
    relay: Vec<Multiaddr>,
    /// Identity key file (created if missing). Without it the identity is new on every run.
    #[arg(long, env = "DARKSWAP_IDENTITY")]
    identity: Option<PathBuf>,
    /// Give up if the relay reservation is not held within this many seconds.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// Prove ourselves to the relay with the shared key in this file (from the relay's
    /// operator) instead of the identity key.
    #[arg(long, env = "DARKSWAP_SHARED_KEY_FILE")]
    shared_key_file: Option<PathBuf>,
    /// Relays to hold a reservation on at once: the one in use, and standbys on the best other
    /// relays the pool knows, which other traders reach us through too and which take over
    /// at once if the one in use is lost (1: the one in use only).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=4))]
    reservations: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stay reachable through the relay and print every event until Ctrl-C.
    Online,
    /// List the peers reachable through the relay.
    Peers,
    /// Send messages to a peer through the relay and print each round-trip time.
    Ping {
        peer: PeerId,
        #[arg(long, default_value_t = 3)]
        count: u32,
    },
    /// Send one message to a peer.
    Send { peer: PeerId, text: String },
    /// A trading session: follow order books, make and cancel orders, one command per line on
    /// stdin (watch, make, take, cancel, book, orders, metrics, quit), one event per line on stdout.
    Market {
        /// A pair to follow from the start, e.g. RUNE:DOG/BTC
        pair: Option<darkswap_orderbook::Pair>,
        #[command(flatten)]
        settle: settle::SettleArgs,
    },
    /// The Bitcoin wallet (BTC and runes): create, import, address, balance, send, send-runes,
    /// faucet; reads the chain through an Esplora API and an ord server.
    Wallet(wallet::WalletArgs),
    /// Signed builds of the web app: sign one, or check a copy (a directory, or what a relay
    /// serves) against its publisher's PeerId.
    Release(release::ReleaseArgs),
    /// The relays this client knows through its relay (signed records), each probed for its
    /// round-trip time and ranked as the relay pool ranks them.
    Relays(relays::RelaysArgs),
    /// The relay's admin API (needs the Admin level there: list your identity's PeerId as
    /// admin in the relay's [auth.peers] and pass --identity).
    Admin {
        #[command(subcommand)]
        action: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Ban a peer: its connections close at once, it cannot reconnect, its tokens are void.
    Ban {
        peer: PeerId,
        #[arg(long, default_value = "")]
        reason: String,
    },
    Unban {
        peer: PeerId,
    },
    /// Trust a peer (not rate-limited as one peer).
    Trust {
        peer: PeerId,
    },
    Untrust {
        peer: PeerId,
    },
    /// Print the relay's access lists (config entries, bans, trusted peers).
    List,
}

impl AdminCommand {
    fn action(self) -> AdminAction {
        match self {
            AdminCommand::Ban { peer, reason } => AdminAction::Ban { peer, reason },
            AdminCommand::Unban { peer } => AdminAction::Unban { peer },
            AdminCommand::Trust { peer } => AdminAction::Trust { peer },
            AdminCommand::Untrust { peer } => AdminAction::Untrust { peer },
            AdminCommand::List => AdminAction::List,
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()).await {
        eprintln!("darkswap: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    if let Command::Wallet(args) = cli.command {
        // Blocking HTTP, off the runtime's workers.
        return tokio::task::spawn_blocking(move || wallet::run(args)).await?;
    }
    if let Command::Release(args) = cli.command {
        return tokio::task::spawn_blocking(move || release::run(args)).await?;
    }
    if cli.relay.is_empty() {
        bail!("--relay (or DARKSWAP_RELAY) is required for this command");
    }
    let keypair = match &cli.identity {
        Some(path) => darkswap_auth::keyfile::load_or_create_keypair(path)?,
        None => Keypair::generate_ed25519(),
    };
    let mut config = NodeConfig::new(cli.relay.clone());
    config.reservations = usize::from(cli.reservations);
    if let Some(path) = &cli.shared_key_file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the shared key file {}", path.display()))?;
        let key =
            darkswap_auth::proof::SharedKey::new(bytes.trim_ascii_end()).with_context(|| {
                format!(
                    "the shared key must be at least {} bytes",
                    darkswap_auth::proof::MIN_SHARED_KEY_BYTES
                )
            })?;
        config.credential = Credential::SharedKey(key);
    }
    if let Command::Relays(args) = &cli.command {
        relays::configure(args, &mut config)?;
    }
    let (node, handle, mut events) = new_node(keypair, config)
        .await
        .context("cannot start the node")?;
    tokio::spawn(node.run());
    println!("peer id: {}", handle.local_peer_id());
    if let Command::Admin { action } = cli.command {
        return admin(&handle, &mut events, action.action(), cli.timeout).await;
    }
    wait_reserved(&mut events, Duration::from_secs(cli.timeout)).await?;

    match cli.command {
        Command::Online => loop {
            tokio::select! {
                event = events.next() => match event {
                    Some(event) => print_event(&event),
                    None => bail!("the node stopped"),
                },
                _ = tokio::signal::ctrl_c() => return Ok(()),
            }
        },
        Command::Peers => {
            let deadline = tokio::time::sleep(Duration::from_secs(cli.timeout));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        Some(NodeEvent::Peers { peers, total }) => {
                            for peer in &peers {
                                println!("{peer}");
                            }
                            println!("{} peer(s) reachable ({total} reserved on the relay, us included)", peers.len());
                            return Ok(());
                        }
                        Some(_) => {}
                        None => bail!("the node stopped"),
                    },
                    // No Peers event: the relay lists nobody but us.
                    _ = &mut deadline => { println!("0 peer(s) reachable"); return Ok(()); }
                }
            }
        }
        Command::Ping { peer, count } => {
            for i in 1..=count {
                let id = handle.send_message(peer, format!("ping {i}"))?;
                let rtt = wait_delivery(&mut events, id, cli.timeout).await?;
                println!(
                    "reply from {peer}: seq={i} time={:.1} ms",
                    rtt.as_secs_f64() * 1e3
                );
            }
            Ok(())
        }
        Command::Market { pair, settle } => market::session(handle, events, pair, &settle).await,
        Command::Relays(args) => relays::run(&args, &handle, &mut events).await,
        // Answered before the reservation wait, above.
        Command::Admin { .. } | Command::Wallet(_) | Command::Release(_) => Ok(()),
        Command::Send { peer, text } => {
            let id = handle.send_message(peer, text)?;
            let rtt = wait_delivery(&mut events, id, cli.timeout).await?;
            println!("delivered to {peer} in {:.1} ms", rtt.as_secs_f64() * 1e3);
            Ok(())
        }
    }
}

/// Waits for the relay's grant, sends one admin request and prints the answer.
async fn admin(
    handle: &darkswap_net::NodeHandle,
    events: &mut mpsc::Receiver<NodeEvent>,
    action: AdminAction,
    timeout: u64,
) -> Result<()> {
    let mut action = Some(action);
    let wait = async {
        while let Some(event) = events.next().await {
            match event {
                NodeEvent::Auth(AuthEvent::Granted(Grant { level, .. })) => {
                    println!("authenticated: level {level}");
                    if let Some(action) = action.take() {
                        handle.command(darkswap_net::Command::Admin { action })?;
                    }
                }
                NodeEvent::Auth(AuthEvent::Refused { reason, .. }) => {
                    bail!("the relay refused us: {}", reason.explain())
                }
                NodeEvent::Auth(AuthEvent::Admin {
                    message,
                    entries,
                    refused,
                }) => {
                    if let Some(reason) = refused {
                        bail!("refused: {}", reason.explain());
                    }
                    for e in entries {
                        println!("{} {} {} {}", e.peer, e.level, e.since_ms, e.note);
                    }
                    if message.starts_with("refused") {
                        bail!("{message}");
                    }
                    println!("{message}");
                    return Ok(());
                }
                _ => {}
            }
        }
        bail!("the node stopped")
    };
    tokio::time::timeout(Duration::from_secs(timeout), wait)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the relay within {timeout} s"))?
}

async fn wait_reserved(events: &mut mpsc::Receiver<NodeEvent>, timeout: Duration) -> Result<()> {
    let mut last_error = String::from("none");
    let wait = async {
        while let Some(event) = events.next().await {
            match event {
                NodeEvent::Relay(RelayStatus::Reserved {
                    transport,
                    circuit_addr,
                }) => {
                    println!("reserved via {transport}: reachable at {circuit_addr}");
                    return true;
                }
                NodeEvent::Relay(RelayStatus::Failed { reason, .. }) => last_error = reason,
                _ => {}
            }
        }
        false
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(true) => Ok(()),
        Ok(false) => bail!("the node stopped (last error: {last_error})"),
        Err(_) => {
            bail!("no reservation on the relay within {timeout:?} (last error: {last_error})")
        }
    }
}

async fn wait_delivery(
    events: &mut mpsc::Receiver<NodeEvent>,
    id: u64,
    timeout_secs: u64,
) -> Result<Duration> {
    let wait = async {
        while let Some(event) = events.next().await {
            match event {
                NodeEvent::MessageDelivered {
                    id: got,
                    rtt,
                    accepted,
                    reason,
                    ..
                } if got == id => {
                    if accepted {
                        return Ok(rtt);
                    }
                    bail!("refused by the peer: {}", reason.unwrap_or_default());
                }
                NodeEvent::MessageFailed {
                    id: got, reason, ..
                } if got == id => bail!("{reason}"),
                _ => {}
            }
        }
        bail!("the node stopped")
    };
    tokio::time::timeout(Duration::from_secs(timeout_secs), wait)
        .await
        .context("no answer in time")?
}

fn print_event(event: &NodeEvent) {
    match event {
        NodeEvent::Relay(status) => println!("relay: {status:?}"),
        NodeEvent::RelayRtt(rtt) => println!("relay rtt: {:.1} ms", rtt.as_secs_f64() * 1e3),
        NodeEvent::Reachable { circuit_addrs } => {
            println!("reachable through {} relay(s):", circuit_addrs.len());
            for addr in circuit_addrs {
                println!("  {addr}");
            }
        }
        NodeEvent::Peers { peers, .. } => println!("peers: {peers:?}"),
        NodeEvent::MessageReceived { from, text, .. } => println!("message from {from}: {text}"),
        other => println!("{other:?}"),
    }
}
