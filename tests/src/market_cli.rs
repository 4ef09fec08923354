//! The `darkswap` CLI as a trader on a regtest chain: its wallet commands, and a running
//! `market --wallet` session driven line by line (commands in, events out), as a script or a bot
//! would drive it. Used by the settlement tests and `settle-bench`.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::regtest::{Bitcoind, Ord};
use crate::{cli_bin, Relay};

/// The wallets' password (given through the environment).
pub const PASSWORD: &str = "correct horse battery";
/// How long one expected line may take.
pub const T: Duration = Duration::from_secs(90);

/// `darkswap wallet …` for the wallet in `file`.
pub fn wallet(relay: &Relay, file: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(cli_bin())
        .arg("wallet")
        .arg("--file")
        .arg(file)
        .args(["--relay-http", &relay.http])
        .args(args)
        .env("DARKSWAP_WALLET_PASSWORD", PASSWORD)
        .env_remove("DARKSWAP_RELAY")
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        bail!(
            "darkswap wallet {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// A running `darkswap market --wallet` session: commands in, lines out.
pub struct Market {
    pub name: &'static str,
    pub pair: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    pub seen: Vec<String>,
}

impl Market {
    pub fn start(name: &'static str, relay: &Relay, dir: &Path, pair: &str) -> Result<Market> {
        Self::start_with(name, relay, dir, pair, &[])
    }

    /// [`Market::start`] with more `market` flags.
    pub fn start_with(
        name: &'static str,
        relay: &Relay,
        dir: &Path,
        pair: &str,
        extra: &[&str],
    ) -> Result<Market> {
        let mut child = Command::new(cli_bin())
            .args(["--relay", &relay.tcp_addr().to_string(), "--timeout", "60"])
            .arg("--identity")
            .arg(dir.join(format!("{name}.key")))
            .args(["market", pair, "--wallet"])
            .arg(wallet_file(dir, name))
            .args(["--relay-http", &relay.http, "--watch-every", "1"])
            .args(extra)
            .env("DARKSWAP_WALLET_PASSWORD", PASSWORD)
            .env_remove("DARKSWAP_RELAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = child.stdout.take().context("stdout")?;
        let (tx, lines) = mpsc::sync_channel(4096);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut m = Market {
            name,
            pair: pair.to_string(),
            child,
            stdin,
            lines,
            seen: Vec::new(),
        };
        m.wait(|l| l.starts_with("settling with wallet"))?;
        Ok(m)
    }

    pub fn send(&mut self, line: &str) -> Result<()> {
        writeln!(self.stdin, "{line}")?;
        Ok(self.stdin.flush()?)
    }

    /// The first line (from now on) for which `pick` says something.
    pub fn wait_for<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> Result<T> {
        let deadline = Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => bail!(
                    "{}: no such line within {T:?}; the last lines:\n{}",
                    self.name,
                    self.seen[self.seen.len().saturating_sub(40)..].join("\n")
                ),
            };
            self.seen.push(line.clone());
            if let Some(t) = pick(&line) {
                return Ok(t);
            }
        }
    }

    pub fn wait(&mut self, mut check: impl FnMut(&str) -> bool) -> Result<String> {
        self.wait_for(|l| check(l).then(|| l.to_string()))
    }

    /// A line printed already, or the next one, for which `check` holds (for events whose order
    /// against others does not matter).
    pub fn printed(&mut self, check: impl Fn(&str) -> bool) -> Result<String> {
        if let Some(l) = self.seen.iter().find(|l| check(l)) {
            return Ok(l.clone());
        }
        self.wait(check)
    }

    /// Waits for the trade's settlement to reach `step`; its line.
    pub fn step(&mut self, trade: &str, step: &str) -> Result<String> {
        let prefix = format!("settle {trade} {step}");
        self.printed(|l| l.starts_with(&prefix))
    }

    /// Places an order (`sell 100000 5`) on the session's pair; its id.
    pub fn make(&mut self, order: &str) -> Result<String> {
        self.send(&format!("make {} {order}", self.pair))?;
        self.wait_for(|l| {
            l.strip_prefix("placed ")
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        })
    }

    /// Whether a line with `needle` was printed so far.
    pub fn said(&self, needle: &str) -> bool {
        self.seen.iter().any(|l| l.contains(needle))
    }

    pub fn metrics(&mut self) -> Result<String> {
        self.send("metrics")?;
        let mut text = String::new();
        self.wait_for(|l| {
            if l == "end metrics" {
                return Some(());
            }
            text.push_str(l);
            text.push('\n');
            None
        })?;
        Ok(text)
    }
}

impl Drop for Market {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wallet_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// The swap's txid in a settlement line.
pub fn txid(line: &str) -> Result<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("txid="))
        .map(str::to_string)
        .with_context(|| format!("no txid in {line}"))
}

/// The units of the one rune ord counts on an output.
pub fn runes_on(ord: &Ord, outpoint: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&ord.get(&format!("/output/{outpoint}"))?)?;
    let runes = v["runes"].as_object().context("ord's runes")?;
    Ok(runes
        .values()
        .map(|r| r["amount"].as_u64().unwrap_or(0))
        .sum())
}

/// Takes `amount` of `order` from `taker` once its book lists the order; the trade id.
pub fn take(taker: &mut Market, order: &str, amount: u64) -> Result<String> {
    let listed = format!("order {order} ");
    let pair = taker.pair.clone();
    let deadline = Instant::now() + T;
    loop {
        taker.send(&format!("book {pair}"))?;
        let mut found = false;
        taker.wait(|l| {
            found |= l.starts_with(&listed);
            l.starts_with(&format!("end {pair}")) || l.starts_with("error not following")
        })?;
        if found {
            break;
        }
        if Instant::now() > deadline {
            bail!("{}: order {order} never listed", taker.name);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    taker.send(&format!("take {pair} {order} {amount}"))?;
    taker.wait_for(|l| {
        l.strip_prefix("taking ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })
}

/// Mines one block and waits for ord to index it.
pub fn mine(node: &Bitcoind, ord: &Ord) -> Result<()> {
    node.mine_to(1, "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw")?;
    ord.synced_to(node.height()?)
}

/// Asks the relay's rune faucet for the wallet in `file` (and waits for ord to index it); the
/// rune's id and the pair that names it (`RUNE:<name>/BTC`, the faucet's reserved name).
pub fn faucet_rune(
    relay: &Relay,
    node: &Bitcoind,
    ord: &Ord,
    file: &Path,
) -> Result<(String, String)> {
    let gift = wallet(relay, file, &["faucet", "--runes"])?;
    ord.synced_to(node.height()?)?;
    let id = gift
        .split_whitespace()
        .skip_while(|w| *w != "rune")
        .nth(1)
        .context("the faucet's rune id")?
        .to_string();
    let info: serde_json::Value = serde_json::from_str(&ord.get(&format!("/rune/{id}"))?)?;
    let name = info["entry"]["spaced_rune"]
        .as_str()
        .context("the rune's name")?
        .replace('•', "");
    Ok((id, format!("RUNE:{name}/BTC")))
}
