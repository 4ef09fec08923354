//! Trades settled on Bitcoin by `darkswap market --wallet`, end to end: a real regtest bitcoind
//! and ord behind a real relay (its chain gateway, ord's API, the faucets), three CLI traders
//! on the relay's TCP address. The maker holds the relay faucet's rune (100,000 units) and sells
//! all of it at 5 sat a unit; the first taker takes 40,000, the second the 60,000 left once the
//! first swap confirmed. Each take carries the taker's offer; each side reads its wallet, looks
//! the other's outputs up (transaction, spend, ord's runes), builds the same swap, signs its own
//! inputs (the taker first), and the maker broadcasts through the gateway (Core checks every
//! input's script as it takes the transaction in). After one block both sides report the trade
//! settled; ord counts the fills on the takers' outputs and the rest on the maker's change; the
//! maker's order follows (60,000 left, then filled). A take made while the maker's runes are all
//! in an unconfirmed swap is agreed in the book but not settled, and both sides say why; a
//! restart of the maker resumes its stored settlements.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use darkswap_tests::regtest::{Bitcoind, Ord};
use darkswap_tests::{cli_bin, Ports, Relay};

const PASSWORD: &str = "correct horse battery";
const T: Duration = Duration::from_secs(90);

/// `darkswap wallet …` for the wallet in `file`.
fn wallet(relay: &Relay, file: &Path, args: &[&str]) -> Result<String> {
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
struct Market {
    name: &'static str,
    pair: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Market {
    fn start(name: &'static str, relay: &Relay, dir: &Path, pair: &str) -> Result<Market> {
        let mut child = Command::new(cli_bin())
            .args(["--relay", &relay.tcp_addr().to_string(), "--timeout", "60"])
            .arg("--identity")
            .arg(dir.join(format!("{name}.key")))
            .args(["market", pair, "--wallet"])
            .arg(wallet_file(dir, name))
            .args(["--relay-http", &relay.http, "--watch-every", "1"])
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

    fn send(&mut self, line: &str) -> Result<()> {
        writeln!(self.stdin, "{line}")?;
        Ok(self.stdin.flush()?)
    }

    /// The first line (from now on) for which `pick` says something.
    fn wait_for<T>(&mut self, mut pick: impl FnMut(&str) -> Option<T>) -> Result<T> {
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

    fn wait(&mut self, mut check: impl FnMut(&str) -> bool) -> Result<String> {
        self.wait_for(|l| check(l).then(|| l.to_string()))
    }

    /// A line printed already, or the next one, for which `check` holds (for events whose order
    /// against others does not matter).
    fn printed(&mut self, check: impl Fn(&str) -> bool) -> Result<String> {
        if let Some(l) = self.seen.iter().find(|l| check(l)) {
            return Ok(l.clone());
        }
        self.wait(check)
    }

    /// Waits for the trade's settlement to reach `step`; its line.
    fn step(&mut self, trade: &str, step: &str) -> Result<String> {
        let prefix = format!("settle {trade} {step}");
        self.printed(|l| l.starts_with(&prefix))
    }

    /// Whether a line with `needle` was printed so far.
    fn said(&self, needle: &str) -> bool {
        self.seen.iter().any(|l| l.contains(needle))
    }

    fn metrics(&mut self) -> Result<String> {
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

fn wallet_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.json"))
}

/// The swap's txid in a settlement line.
fn txid(line: &str) -> Result<String> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("txid="))
        .map(str::to_string)
        .with_context(|| format!("no txid in {line}"))
}

/// The units of the one rune ord counts on an output.
fn runes_on(ord: &Ord, outpoint: &str) -> Result<u64> {
    let v: serde_json::Value = serde_json::from_str(&ord.get(&format!("/output/{outpoint}"))?)?;
    let runes = v["runes"].as_object().context("ord's runes")?;
    Ok(runes
        .values()
        .map(|r| r["amount"].as_u64().unwrap_or(0))
        .sum())
}

/// Takes `amount` of `order` from `taker` once its book lists the order; the trade id.
fn take(taker: &mut Market, order: &str, amount: u64) -> Result<String> {
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
fn mine(node: &Bitcoind, ord: &Ord) -> Result<()> {
    node.mine_to(1, "bcrt1qs758ursh4q9z627kt3pp5yysm78ddny6txaqgw")?;
    ord.synced_to(node.height()?)
}

#[test]
fn cli_traders_settle_a_partly_filled_order_on_regtest_and_ord_agrees() -> Result<()> {
    let node = Bitcoind::start()?;
    let ord = Ord::start(&node)?;
    let dir = tempfile::tempdir()?;
    let flags = node.relay_flags(&dir.path().join("rpc.password"), Some(&ord.url()), true)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &flags)?;
    for name in ["maker", "alice", "bob"] {
        wallet(&relay, &wallet_file(dir.path(), name), &["create"])?;
    }
    let gift = wallet(
        &relay,
        &wallet_file(dir.path(), "maker"),
        &["faucet", "--runes"],
    )?;
    for name in ["alice", "bob"] {
        wallet(&relay, &wallet_file(dir.path(), name), &["faucet"])?;
    }
    ord.synced_to(node.height()?)?;
    // The faucet's rune (a reserved name), as a pair names it.
    let id = gift
        .split_whitespace()
        .skip_while(|w| *w != "rune")
        .nth(1)
        .context("the faucet's rune id")?;
    let info: serde_json::Value = serde_json::from_str(&ord.get(&format!("/rune/{id}"))?)?;
    let name = info["entry"]["spaced_rune"]
        .as_str()
        .context("the rune's name")?
        .replace('•', "");
    let pair = format!("RUNE:{name}/BTC");

    let mut maker = Market::start("maker", &relay, dir.path(), &pair)?;
    let mut alice = Market::start("alice", &relay, dir.path(), &pair)?;
    maker.send(&format!("make {pair} sell 100000 5"))?;
    let order = maker.wait_for(|l| {
        l.strip_prefix("placed ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })?;

    let first = take(&mut alice, &order, 40_000)?;
    let maker_line = maker.step(&first, "broadcast")?;
    let alice_line = alice.step(&first, "broadcast")?;
    let swap = txid(&maker_line)?;
    assert_eq!(txid(&alice_line)?, swap, "both hold the same swap");
    maker.printed(|l| l.starts_with(&format!("reduced {order} 60000 left")))?;

    // While that swap is unconfirmed the maker's runes are all in it (ord indexes blocks only,
    // so its rune change cannot be offered yet): a second take is agreed in the book but not
    // settled, the maker tells the taker why, and the taker's outputs are free again.
    let mut bob = Market::start("bob", &relay, dir.path(), &pair)?;
    let early = take(&mut bob, &order, 10_000)?;
    let why = maker.step(&early, "aborted")?;
    assert!(why.contains("the wallet cannot fund this trade"), "{why}");
    let told = bob.step(&early, "aborted")?;
    assert!(told.contains("could not settle"), "{told}");
    mine(&node, &ord)?;
    let settled = maker.step(&first, "settled")?;
    assert!(settled.contains("conf=1/1"), "{settled}");
    alice.step(&first, "settled")?;
    assert_eq!(
        runes_on(&ord, &format!("{swap}:0"))?,
        40_000,
        "alice's fill"
    );
    assert_eq!(
        runes_on(&ord, &format!("{swap}:1"))?,
        60_000,
        "maker's change"
    );

    // The maker restarts: its settlements are read back from the file.
    drop(maker);
    let mut maker = Market::start("maker", &relay, dir.path(), &pair)?;
    maker.send("settlements")?;
    let listed = maker.wait(|l| l.starts_with(&format!("settle {first} ")))?;
    assert!(listed.contains(" settled "), "{listed}");
    maker.wait(|l| l == "end settlements=1")?;
    // Its order died with the first session (no keep-alive): it places the rest again.
    maker.send(&format!("make {pair} sell 60000 5"))?;
    let order = maker.wait_for(|l| {
        l.strip_prefix("placed ")
            .and_then(|r| r.split_whitespace().next())
            .map(str::to_string)
    })?;

    // The second taker takes what is left, from the maker's confirmed rune change.
    let second = take(&mut bob, &order, 60_000)?;
    let line = maker.step(&second, "broadcast")?;
    let swap2 = txid(&line)?;
    bob.step(&second, "broadcast")?;
    maker.printed(|l| l.starts_with(&format!("withdrawn {order} filled")))?;
    mine(&node, &ord)?;
    maker.step(&second, "settled")?;
    bob.step(&second, "settled")?;
    assert_eq!(runes_on(&ord, &format!("{swap2}:0"))?, 60_000, "bob's fill");
    let change: serde_json::Value = serde_json::from_str(&ord.get(&format!("/output/{swap}:1"))?)?;
    assert_eq!(
        change["spent"], true,
        "the second swap spent the maker's change"
    );

    // Both sides counted what happened; nothing was refused.
    let text = maker.metrics()?;
    assert!(
        text.contains("darkswap_client_settle_ended_total{step=\"settled\"} 1"),
        "{text}"
    );
    assert!(
        !text.contains("darkswap_client_settle_refused_total{"),
        "{text}"
    );
    let text = bob.metrics()?;
    assert!(text.contains("darkswap_client_settle_ended_total{step=\"settled\"} 1"));
    assert!(!maker.said("error take") && !bob.said("error take"));

    // Balances, by the wallets themselves.
    let balance = wallet(&relay, &wallet_file(dir.path(), "bob"), &["balance"])?;
    assert!(
        balance.contains(&format!("rune {id}: 60000 confirmed")),
        "bob holds 600.00 of the rune: {balance}"
    );
    let balance = wallet(&relay, &wallet_file(dir.path(), "alice"), &["balance"])?;
    assert!(
        balance.contains(&format!("rune {id}: 40000 confirmed")),
        "alice holds 400.00: {balance}"
    );
    Ok(())
}
