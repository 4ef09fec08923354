//! `darkswap relays`: the relay pool as this client sees it. The node learns the relays its
//! relay knows (signed records, each checked), probes each for its round-trip time, and ranks
//! them as the pool does; this prints the ranking. With `--pool-file` the pool is kept between
//! runs (with the trader's pins and exclusions), as the page keeps it in IndexedDB.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use darkswap_net::libp2p::PeerId;
use darkswap_net::{Choice, Command, NodeConfig, NodeEvent, NodeHandle, RelayView, SavedPool};

use futures::channel::mpsc;
use futures::StreamExt;

/// The `relays` command's arguments.
#[derive(clap::Args)]
pub struct RelaysArgs {
    /// Keep the pool in this file between runs (created if missing).
    #[arg(long)]
    pool_file: Option<PathBuf>,
    /// Always reserve on this relay while it answers (repeatable; kept in the pool file).
    #[arg(long)]
    pin: Vec<PeerId>,
    /// Never dial this relay (repeatable; kept in the pool file).
    #[arg(long)]
    exclude: Vec<PeerId>,
    /// Rank every relay like any other again (repeatable).
    #[arg(long)]
    auto: Vec<PeerId>,
    /// Seconds to probe before printing what is known.
    #[arg(long, default_value_t = 15)]
    wait: u64,
}

/// The largest pool file read.
const MAX_POOL_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// Sets up the node's pool from the file, if there is one.
pub fn configure(args: &RelaysArgs, config: &mut NodeConfig) -> Result<()> {
    if let Some(path) = &args.pool_file {
        config.saved_relay_pool = read(path)?;
    }
    Ok(())
}

fn read(path: &Path) -> Result<Option<SavedPool>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let len = file.metadata()?.len();
    if len > MAX_POOL_FILE_BYTES {
        bail!(
            "{} is {len} bytes, more than a pool file may be",
            path.display()
        );
    }
    let saved = serde_json::from_reader(std::io::BufReader::new(file))
        .with_context(|| format!("{} is not a relay pool file", path.display()))?;
    Ok(Some(saved))
}

fn write(path: &Path, saved: &SavedPool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(saved)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The relay told us what it knows, and every relay was measured in this run (a round trip or
/// a failure: a saved pool keeps no probe times) or is excluded: nothing more to wait for.
fn settled(report: &darkswap_net::PoolReport) -> bool {
    report.records_at_ms.is_some()
        && report.relays.iter().all(|r| {
            r.choice == Choice::Excluded || r.addrs.is_empty() || r.last_probe_ms.is_some()
        })
}

/// Waits for the pool to settle (or `--wait` to pass), applies the choices, prints the
/// ranking and keeps the pool.
pub async fn run(
    args: &RelaysArgs,
    handle: &NodeHandle,
    events: &mut mpsc::Receiver<NodeEvent>,
) -> Result<()> {
    let choices: Vec<(PeerId, Choice)> = args
        .pin
        .iter()
        .map(|p| (*p, Choice::Pinned))
        .chain(args.exclude.iter().map(|p| (*p, Choice::Excluded)))
        .chain(args.auto.iter().map(|p| (*p, Choice::Auto)))
        .collect();
    let deadline = tokio::time::sleep(Duration::from_secs(args.wait));
    tokio::pin!(deadline);
    let mut last: Option<darkswap_net::PoolReport> = None;
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(NodeEvent::RelayPool(report)) => {
                    for (relay, choice) in &choices {
                        if report.relays.iter().any(|r| r.relay == *relay && r.choice != *choice) {
                            handle.command(Command::ChooseRelay { relay: *relay, choice: *choice })?;
                        }
                    }
                    let chosen = choices.iter().all(|(relay, choice)| {
                        report.relays.iter().all(|r| r.relay != *relay || r.choice == *choice)
                    });
                    let done = chosen && settled(&report);
                    last = Some(report);
                    if done {
                        break;
                    }
                }
                Some(_) => {}
                None => bail!("the node stopped"),
            },
            _ = &mut deadline => break,
        }
    }
    let Some(report) = last else {
        bail!("the relay pool said nothing within {} s", args.wait);
    };
    print(&report.relays);
    if let Some(path) = &args.pool_file {
        write(path, &report.saved)?;
    }
    Ok(())
}

fn print(relays: &[RelayView]) {
    println!("{} relay(s) known", relays.len());
    for r in relays {
        let rank = r.rank.map_or("-".to_string(), |n| n.to_string());
        let rtt = r.rtt_ms.map_or("-".to_string(), |ms| format!("{ms:.1} ms"));
        let load = r
            .load_permille
            .map_or("-".to_string(), |l| format!("{:.1}%", f64::from(l) / 10.0));
        let mut state: Vec<String> = Vec::new();
        if r.serving {
            state.push("serving".into());
        }
        match r.choice {
            Choice::Pinned => state.push("pinned".into()),
            Choice::Excluded => state.push("excluded".into()),
            Choice::Auto => {}
        }
        if let Some(why) = r.last_failure {
            state.push(format!("last failure: {}", why.label()));
        }
        if r.backoff_until_ms.is_some() {
            state.push("backing off".into());
        }
        if r.addrs.is_empty() {
            state.push("no address".into());
        }
        let name = match (r.name.as_str(), r.region.as_str()) {
            ("", "") => "-".to_string(),
            (name, "") => name.to_string(),
            (name, region) => format!("{name} ({region})"),
        };
        println!(
            "relay {rank} {} rtt={rtt} load={load} name={name:?} state={}",
            r.relay,
            if state.is_empty() {
                "ok".to_string()
            } else {
                state.join(", ")
            }
        );
    }
}
