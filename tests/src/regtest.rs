//! A real Bitcoin Core node in regtest for the wallet tests: its own data directory and RPC port
//! on 127.0.0.1, no P2P listener, driven through the real `bitcoin-cli`. The binaries come from
//! `scripts/install-bitcoind` (`$DARKSWAP_BITCOIN_BIN`, or that script's cache directory).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Where `bitcoind` and `bitcoin-cli` are.
pub fn bitcoin_bin_dir() -> PathBuf {
    let dir = std::env::var_os("DARKSWAP_BITCOIN_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_default();
            PathBuf::from(home).join(".cache/darkswap-bitcoin/py-bitcoinkernel-0.1.0a5/bin")
        });
    assert!(
        dir.join("bitcoind").is_file() && dir.join("bitcoin-cli").is_file(),
        "bitcoind not found in {}: run scripts/install-bitcoind (or set DARKSWAP_BITCOIN_BIN)",
        dir.display()
    );
    dir
}

/// A running `bitcoind -regtest`, stopped when dropped.
pub struct Bitcoind {
    child: Child,
    bin: PathBuf,
    datadir: tempfile::TempDir,
    rpc_port: u16,
}

impl Bitcoind {
    /// Starts a node (no wallet) and waits until its RPC answers.
    pub fn start() -> Result<Bitcoind> {
        let bin = bitcoin_bin_dir();
        // A port chosen free can be taken before bitcoind binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            let datadir = tempfile::tempdir()?;
            let rpc_port = crate::free_tcp_port();
            let child = Command::new(bin.join("bitcoind"))
                .arg("-regtest")
                .arg(format!("-datadir={}", datadir.path().display()))
                .arg(format!("-rpcport={rpc_port}"))
                .args([
                    "-rpcbind=127.0.0.1",
                    "-rpcallowip=127.0.0.1",
                    "-listen=0",
                    "-dnsseed=0",
                    "-fixedseeds=0",
                    "-disablewallet=1",
                    "-txindex=1",
                    "-printtoconsole=0",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("start bitcoind")?;
            let mut node = Bitcoind {
                child,
                bin: bin.clone(),
                datadir,
                rpc_port,
            };
            match node.wait_ready(Duration::from_secs(60)) {
                Ok(()) => return Ok(node),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("bitcoind did not start")))
    }

    fn wait_ready(&mut self, within: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!("bitcoind exited: {status}");
            }
            if self.cli(&["getblockchaininfo"]).is_ok() {
                return Ok(());
            }
            if start.elapsed() > within {
                bail!("bitcoind RPC not ready within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `bitcoin-cli` with `args`; the answer as JSON (a bare string or number as such).
    pub fn cli(&self, args: &[&str]) -> Result<Value> {
        let out = Command::new(self.bin.join("bitcoin-cli"))
            .arg("-regtest")
            .arg(format!("-datadir={}", self.datadir.path().display()))
            .arg(format!("-rpcport={}", self.rpc_port))
            .arg("-rpcconnect=127.0.0.1")
            .args(args)
            .output()
            .context("run bitcoin-cli")?;
        if !out.status.success() {
            bail!(
                "bitcoin-cli {}: {}",
                args.first().unwrap_or(&""),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Mines `n` blocks paying `address`; returns the block hashes.
    pub fn mine_to(&self, n: u32, address: &str) -> Result<Vec<String>> {
        let v = self.cli(&["generatetoaddress", &n.to_string(), address])?;
        Ok(v.as_array()
            .context("generatetoaddress answer")?
            .iter()
            .filter_map(|h| h.as_str().map(str::to_string))
            .collect())
    }

    /// The chain tip's height.
    pub fn height(&self) -> Result<u64> {
        self.cli(&["getblockcount"])?
            .as_u64()
            .context("getblockcount answer")
    }

    /// Unspent outputs paying `address`, from the UTXO set (`scantxoutset`).
    pub fn scan(&self, address: &str) -> Result<Vec<ScannedOutput>> {
        let v = self.cli(&["scantxoutset", "start", &format!("[\"addr({address})\"]")])?;
        let tip = v["height"].as_u64().context("scan height")?;
        v["unspents"]
            .as_array()
            .context("scan unspents")?
            .iter()
            .map(|u| {
                let height = u["height"].as_u64().context("height")?;
                Ok(ScannedOutput {
                    txid: u["txid"].as_str().context("txid")?.to_string(),
                    vout: u["vout"].as_u64().context("vout")? as u32,
                    sats: btc_to_sats(&u["amount"])?,
                    script_pubkey: u["scriptPubKey"].as_str().context("script")?.to_string(),
                    confirmations: (tip + 1).saturating_sub(height) as u32,
                    coinbase: u["coinbase"].as_bool().unwrap_or(false),
                })
            })
            .collect()
    }
}

/// An output found by [`Bitcoind::scan`].
#[derive(Debug, Clone)]
pub struct ScannedOutput {
    /// Its transaction.
    pub txid: String,
    /// Its index.
    pub vout: u32,
    /// Its value.
    pub sats: u64,
    /// Its script, hex.
    pub script_pubkey: String,
    /// Confirmations at the scan.
    pub confirmations: u32,
    /// Whether it is a coinbase output (spendable after 100 confirmations).
    pub coinbase: bool,
}

/// A JSON BTC amount as satoshis. Core prints at most 8 decimals and at most 21 million BTC,
/// i.e. at most 2.1e15 satoshis, below 2^53: the nearest satoshi to `amount * 1e8` in f64 is
/// exactly the amount.
pub fn btc_to_sats(v: &Value) -> Result<u64> {
    let btc = v.as_f64().context("amount")?;
    if !(0.0..=21e6).contains(&btc) {
        bail!("amount {btc} out of range");
    }
    Ok((btc * 1e8).round() as u64)
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let _ = self.cli(&["stop"]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
