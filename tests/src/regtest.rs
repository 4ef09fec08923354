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
    password: String,
}

/// The RPC user of every test node (the password is random per node).
pub const RPC_USER: &str = "darkswap";

impl Bitcoind {
    /// Starts a node without Core's wallet and waits until its RPC answers.
    pub fn start() -> Result<Bitcoind> {
        Self::start_inner(false)
    }

    /// Starts a node with Core's wallet (which `ord wallet` needs).
    pub fn start_with_wallet() -> Result<Bitcoind> {
        Self::start_inner(true)
    }

    fn start_inner(wallet: bool) -> Result<Bitcoind> {
        let bin = bitcoin_bin_dir();
        // A port chosen free can be taken before bitcoind binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            let datadir = tempfile::tempdir()?;
            let rpc_port = crate::free_tcp_port();
            let password = format!("{:016x}{:016x}", rand_u64(), rand_u64());
            let child = Command::new(bin.join("bitcoind"))
                .arg("-regtest")
                .arg(format!("-datadir={}", datadir.path().display()))
                .arg(format!("-rpcport={rpc_port}"))
                .arg(format!("-rpcuser={RPC_USER}"))
                .arg(format!("-rpcpassword={password}"))
                .arg(format!("-disablewallet={}", u8::from(!wallet)))
                .args([
                    "-rpcbind=127.0.0.1",
                    "-rpcallowip=127.0.0.1",
                    "-listen=0",
                    "-dnsseed=0",
                    "-fixedseeds=0",
                    "-txindex=1",
                    "-fallbackfee=0.0001",
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
                password,
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
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={}", self.password))
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

    /// The RPC endpoint.
    pub fn rpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// The RPC password.
    pub fn rpc_password(&self) -> &str {
        &self.password
    }

    /// The relay flags that name this node's chain and serve the gateway over it (the password
    /// written to `password_file`), with ord's API and the faucet when asked.
    pub fn relay_flags(
        &self,
        password_file: &std::path::Path,
        ord_url: Option<&str>,
        faucet: bool,
    ) -> Result<Vec<String>> {
        std::fs::write(password_file, &self.password)?;
        let mut flags: Vec<String> = [
            "--chain-network",
            "regtest",
            "--bitcoind-rpc-url",
            &self.rpc_url(),
            "--bitcoind-rpc-user",
            RPC_USER,
            "--bitcoind-rpc-password-file",
            &password_file.display().to_string(),
        ]
        .into_iter()
        .map(String::from)
        .collect();
        if let Some(url) = ord_url {
            flags.extend(["--chain-ord-url".into(), url.to_string()]);
        }
        if faucet {
            flags.extend(["--chain-faucet".into(), "true".into()]);
        }
        Ok(flags)
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

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    h.finish()
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

/// The `ord` binary: `$DARKSWAP_ORD_BIN`, or `ord` on the PATH (`scripts/install-toolchain`
/// installs 0.29.1 with cargo).
pub fn ord_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("DARKSWAP_ORD_BIN") {
        return p.into();
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("ord"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!("ord not found: run scripts/install-toolchain (or set DARKSWAP_ORD_BIN)")
    })
}

/// A running `ord server` indexing runes from a [`Bitcoind`], on 127.0.0.1; stopped when dropped.
pub struct Ord {
    child: Child,
    bin: PathBuf,
    data_dir: tempfile::TempDir,
    port: u16,
    rpc_url: String,
    rpc_password: String,
}

impl Ord {
    /// Starts `ord server` against `node` and waits until it answers.
    pub fn start(node: &Bitcoind) -> Result<Ord> {
        let bin = ord_bin();
        let data_dir = tempfile::tempdir()?;
        let port = crate::free_tcp_port();
        let mut ord = Ord {
            child: Command::new(&bin)
                .args(Self::global(
                    &data_dir,
                    &node.rpc_url(),
                    node.rpc_password(),
                ))
                .args(["server", "--address", "127.0.0.1", "--http-port"])
                .arg(port.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("start ord server")?,
            bin,
            data_dir,
            port,
            rpc_url: node.rpc_url(),
            rpc_password: node.rpc_password().to_string(),
        };
        let start = Instant::now();
        while ord.get("/blockheight").is_err() {
            if let Some(status) = ord.child.try_wait()? {
                bail!("ord server exited: {status}");
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("ord server did not answer within 60 s");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(ord)
    }

    fn global(data_dir: &tempfile::TempDir, rpc_url: &str, password: &str) -> Vec<String> {
        vec![
            "--regtest".into(),
            format!("--bitcoin-rpc-url={rpc_url}"),
            format!("--bitcoin-rpc-username={RPC_USER}"),
            format!("--bitcoin-rpc-password={password}"),
            format!("--data-dir={}", data_dir.path().display()),
            "--index-runes".into(),
        ]
    }

    /// Its HTTP root.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET path` with `Accept: application/json`; the body when the status is 200.
    pub fn get(&self, path: &str) -> Result<String> {
        let (status, body) = crate::http_request(
            "GET",
            &format!("{}{path}", self.url()),
            &[("Accept", "application/json")],
            b"",
        )?;
        if status != 200 {
            bail!("ord {path}: HTTP {status}: {body}");
        }
        Ok(body)
    }

    /// Waits until ord has indexed up to `height`.
    pub fn synced_to(&self, height: u64) -> Result<()> {
        let start = Instant::now();
        loop {
            if let Ok(h) = self.get("/blockheight") {
                if h.trim().parse::<u64>().unwrap_or(0) >= height {
                    return Ok(());
                }
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("ord did not index block {height} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// An `ord wallet` command against this server; its JSON answer.
    pub fn wallet(&self, args: &[&str]) -> Result<Value> {
        let out = self
            .wallet_command(args)
            .output()
            .context("run ord wallet")?;
        if !out.status.success() {
            bail!(
                "ord wallet {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// The command line of an `ord wallet` command (for one that runs while blocks are mined).
    pub fn wallet_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(Self::global(
            &self.data_dir,
            &self.rpc_url,
            &self.rpc_password,
        ))
        .args(["wallet", "--server-url", &self.url()])
        .args(args);
        c
    }
}

impl Drop for Ord {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A regtest chain with its indexer and a relay that names both (its gateway at `/esplora`,
/// ord's API, the faucets), each test's own; `dir` holds the relay's data and the test's files.
pub struct Regtest {
    pub node: Bitcoind,
    pub ord: Ord,
    pub relay: crate::Relay,
    pub dir: tempfile::TempDir,
}

impl Regtest {
    /// Starts bitcoind, ord and the relay.
    pub fn start() -> Result<Regtest> {
        let node = Bitcoind::start()?;
        let ord = Ord::start(&node)?;
        let dir = tempfile::tempdir()?;
        let flags = node.relay_flags(&dir.path().join("rpc.password"), Some(&ord.url()), true)?;
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let relay =
            crate::Relay::start(&dir.path().join("relay"), crate::Ports::default(), &flags)?;
        Ok(Regtest {
            node,
            ord,
            relay,
            dir,
        })
    }

    /// Waits until ord has indexed the chain's tip.
    pub fn synced(&self) -> Result<()> {
        self.ord.synced_to(self.node.height()?)
    }
}
