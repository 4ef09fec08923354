//! `darkswap wallet`: the trader's Bitcoin wallet from a terminal, on the same crate as the page
//! (`darkswap-wallet`): create or import, address, balance, send bitcoin, send runes, and the
//! regtest faucet of a relay that serves one. The chain is read through an Esplora-compatible
//! API and an ord server, named by flags or learned from a relay's relay-info. The mnemonic is
//! kept sealed in the wallet file (Argon2id + XChaCha20-Poly1305); the password comes from
//! `DARKSWAP_WALLET_PASSWORD` or the first line of standard input, never from a flag.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::Amount;
use clap::{Args, Subcommand};
use darkswap_proto::RelayInfo;
use darkswap_wallet::keystore::{self, KdfParams, UnlockThrottle};
use darkswap_wallet::retry::{retry_after, Outcome};
use darkswap_wallet::send::parse_address;
use darkswap_wallet::sync::{Scan, Server};
use darkswap_wallet::utxo::{balance, Split};
use darkswap_wallet::{
    send_btc, send_runes, sign, Account, Chain, FeeRate, KeyPath, Keychain, Locks, Mnemonic,
    Network, RuneId, Unsigned, Utxo, WordCount,
};
use serde::{Deserialize, Serialize};

/// The largest answer read from a chain server (the crate's parsers cap each kind again).
const MAX_ANSWER: u64 = 8 * 1024 * 1024;
/// Seconds a chain server has to answer one request.
const HTTP_TIMEOUT_SECS: u64 = 30;

#[derive(Args)]
pub struct WalletArgs {
    /// The wallet file (the sealed mnemonic and the unlock throttle's state)
    #[arg(long, env = "DARKSWAP_WALLET", default_value = "darkswap-wallet.json")]
    file: PathBuf,
    #[command(flatten)]
    chain: ChainArgs,
    #[command(subcommand)]
    command: WalletCommand,
}

/// Where the chain is read: a relay's relay-info, or each server named.
#[derive(Args, Clone)]
pub struct ChainArgs {
    /// A relay's HTTP root (e.g. http://127.0.0.1:8080): network, Esplora and ord from its relay-info
    #[arg(long, env = "DARKSWAP_RELAY_HTTP")]
    relay_http: Option<String>,
    /// Network (regtest, signet, testnet, mainnet), unless the relay names it
    #[arg(long, env = "DARKSWAP_NETWORK")]
    network: Option<Network>,
    /// Esplora-compatible API root, unless the relay names it
    #[arg(long, env = "DARKSWAP_ESPLORA")]
    esplora: Option<String>,
    /// ord server root (runes on outputs), unless the relay names it
    #[arg(long, env = "DARKSWAP_ORD")]
    ord: Option<String>,
}

#[derive(Subcommand)]
enum WalletCommand {
    /// Create a wallet: prints its mnemonic once; write it down.
    Create {
        #[arg(long, default_value_t = 12)]
        words: u8,
    },
    /// Import a mnemonic (read from standard input, first line; the password from
    /// DARKSWAP_WALLET_PASSWORD).
    Import,
    /// The next unused receiving address (payment, or --runes for the rune account).
    Address {
        #[arg(long)]
        runes: bool,
    },
    /// Balances: bitcoin by state, each rune, and what is held back.
    Balance,
    /// Every output with what it carries.
    Utxos,
    /// Send bitcoin: ADDRESS and the amount in satoshis.
    Send {
        address: String,
        sats: u64,
        #[arg(long, default_value_t = 1)]
        fee_rate: u64,
    },
    /// Send runes: the rune's id (BLOCK:TX), the amount in its smallest units, and the address.
    SendRunes {
        rune: RuneId,
        amount: u128,
        address: String,
        #[arg(long, default_value_t = 1)]
        fee_rate: u64,
    },
    /// Ask the relay's regtest faucet to mine to our payment address, or with `--runes` to send
    /// its test rune to our rune address.
    Faucet {
        #[arg(long)]
        runes: bool,
    },
    /// Every transaction that touched the wallet, newest first: confirmations, what it did to
    /// the bitcoin balance, the fee the wallet paid.
    History,
}

#[derive(Serialize, Deserialize)]
struct WalletFile {
    format: u32,
    network: String,
    sealed: String,
    #[serde(default)]
    unlock_failures: u32,
    #[serde(default)]
    last_failure_ms: u64,
}

/// Where the chain is read.
pub struct Endpoints {
    pub network: Network,
    pub esplora: Option<String>,
    pub ord: Option<String>,
    pub relay_http: Option<String>,
}

fn http() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(HTTP_TIMEOUT_SECS))
        .build()
}

/// GET with a size cap, tried again as `darkswap_wallet::retry` says (unreachable, timed out,
/// 429, 5xx); the status and body (an error status is an answer, not a failure).
pub fn get(url: &str, json: bool) -> Result<(u16, Vec<u8>)> {
    let mut attempt = 1;
    loop {
        let outcome = get_once(url, json);
        let how = match &outcome {
            Ok((status, _)) => Outcome::Status(*status),
            Err(_) => Outcome::NoAnswer,
        };
        match retry_after(attempt, how) {
            Some(wait_ms) => std::thread::sleep(std::time::Duration::from_millis(wait_ms)),
            None => return outcome.with_context(|| format!("tried {attempt} time(s)")),
        }
        attempt += 1;
    }
}

fn get_once(url: &str, json: bool) -> Result<(u16, Vec<u8>)> {
    let mut req = http().get(url);
    if json {
        req = req.set("Accept", "application/json");
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => return Ok((code, read_capped(r)?)),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot reach {url}"))),
    };
    Ok((response.status(), read_capped(response)?))
}

fn read_capped(r: ureq::Response) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    r.into_reader()
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut body)?;
    if body.len() as u64 > MAX_ANSWER {
        bail!("the server's answer is over {MAX_ANSWER} bytes");
    }
    Ok(body)
}

pub fn post(url: &str, content_type: &str, body: &str) -> Result<(u16, Vec<u8>)> {
    match http()
        .post(url)
        .set("Content-Type", content_type)
        .send_string(body)
    {
        Ok(r) => Ok((r.status(), read_capped(r)?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, read_capped(r)?)),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot reach {url}"))),
    }
}

pub fn endpoints(args: &ChainArgs) -> Result<Endpoints> {
    let info = match &args.relay_http {
        Some(root) => {
            let url = format!("{}/api/relay-info", root.trim_end_matches('/'));
            let (status, body) = get(&url, true)?;
            if status != 200 {
                bail!("{url} answered HTTP {status}");
            }
            RelayInfo::parse(&body)?.chain
        }
        None => None,
    };
    let root = args
        .relay_http
        .as_deref()
        .map(|r| r.trim_end_matches('/').to_string());
    let resolve = |u: &str| match (&root, u.starts_with('/')) {
        (Some(r), true) => format!("{r}{u}"),
        _ => u.trim_end_matches('/').to_string(),
    };
    let network = match (args.network, &info) {
        (Some(n), _) => n,
        (None, Some(c)) => c.network.parse()?,
        (None, None) => {
            bail!("no network: pass --network or --relay-http of a relay that names its chain")
        }
    };
    if let Some(c) = &info {
        if c.network != network.as_str() {
            bail!("the relay's traders use {}, not {network}", c.network);
        }
    }
    let esplora = args
        .esplora
        .clone()
        .or_else(|| info.as_ref().and_then(|c| c.esplora.clone()))
        .map(|u| resolve(&u));
    let ord = args
        .ord
        .clone()
        .or_else(|| info.as_ref().and_then(|c| c.ord.clone()))
        .map(|u| resolve(&u));
    Ok(Endpoints {
        network,
        esplora,
        ord,
        relay_http: root,
    })
}

pub fn read_password() -> Result<String> {
    if let Ok(p) = std::env::var("DARKSWAP_WALLET_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn save(path: &Path, file: &WalletFile) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(file)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn create(path: &Path, mnemonic: &Mnemonic, network: Network) -> Result<()> {
    if path.exists() {
        bail!("{} exists: a wallet is never overwritten", path.display());
    }
    let password = read_password()?;
    let sealed = keystore::seal(mnemonic, &password, network, KdfParams::default())?;
    save(
        path,
        &WalletFile {
            format: 1,
            network: network.as_str().to_string(),
            sealed: hex_encode(&sealed),
            unlock_failures: 0,
            last_failure_ms: 0,
        },
    )
}

/// Opens the wallet file, throttling wrong passwords across runs.
pub fn unlock(path: &Path, network: Network, password: &str) -> Result<Keychain> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() > 64 * 1024 {
        bail!("{} is not a wallet file (too large)", path.display());
    }
    let mut file: WalletFile = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a wallet file", path.display()))?;
    let mut throttle = UnlockThrottle {
        failures: file.unlock_failures,
        last_failure_ms: file.last_failure_ms,
    };
    if let Some(at) = throttle.retry_at(now_ms()) {
        bail!(
            "too many wrong passwords: try again in {} s",
            (at - now_ms()).div_ceil(1000)
        );
    }
    let sealed = hex_decode(&file.sealed, keystore::MAX_SEALED_LEN)
        .context("the wallet file's sealed record is not hex")?;
    match keystore::open(&sealed, password, network) {
        Ok(mnemonic) => {
            if throttle.failures > 0 {
                throttle.succeeded();
                file.unlock_failures = 0;
                file.last_failure_ms = 0;
                save(path, &file)?;
            }
            Ok(Keychain::new(&mnemonic, "", network)?)
        }
        Err(e @ keystore::OpenError::WrongPasswordOrTampered) => {
            throttle.failed(now_ms());
            file.unlock_failures = throttle.failures;
            file.last_failure_ms = throttle.last_failure_ms;
            save(path, &file)?;
            Err(e.into())
        }
        Err(e) => Err(e.into()),
    }
}

impl Endpoints {
    pub fn esplora(&self) -> Result<&str> {
        self.esplora
            .as_deref()
            .context("no Esplora API: pass --esplora or --relay-http of a relay that names one")
    }
}

/// The first unused index of each chain, from a finished scan.
struct Unused {
    pay_receive: u32,
    rune_receive: u32,
    pay_change: u32,
    rune_change: u32,
}

/// Scans the wallet's addresses through the chain servers.
fn scan_wallet(keys: &Keychain, ep: &Endpoints) -> Result<(Unused, Vec<Utxo>)> {
    let mut s = Scan::new(keys, ep.ord.is_some())?;
    while let Some(req) = s.next_request() {
        let (root, json) = match req.server {
            Server::Esplora => (ep.esplora()?, false),
            Server::Ord => (
                ep.ord
                    .as_deref()
                    .context("ord asked without an ord server")?,
                true,
            ),
        };
        let (status, body) = get(&format!("{root}{}", req.path), json)?;
        s.on_answer(status, &body)?;
        s.derive_ahead(keys)?;
    }
    let unused = Unused {
        pay_receive: s.first_unused(Account::Payment, Chain::External),
        rune_receive: s.first_unused(Account::Runes, Chain::External),
        pay_change: s.first_unused(Account::Payment, Chain::Internal),
        rune_change: s.first_unused(Account::Runes, Chain::Internal),
    };
    Ok((unused, s.finish()?))
}

fn broadcast(ep: &Endpoints, unsigned: &Unsigned, keys: &Keychain) -> Result<()> {
    let tx = sign(keys, unsigned)?;
    let (status, body) = post(
        &format!("{}/tx", ep.esplora()?),
        "text/plain",
        &serialize_hex(&tx),
    )?;
    if status != 200 {
        bail!(
            "the chain API refused the transaction (HTTP {status}): {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(300)
                .collect::<String>()
        );
    }
    let txid = darkswap_wallet::esplora::parse_broadcast(&body, &tx)?;
    println!(
        "sent {txid} (fee {} sat, {} vB)",
        unsigned.fee.to_sat(),
        tx.weight().to_vbytes_ceil()
    );
    Ok(())
}

fn show_split(name: &str, s: &Split<Amount>) {
    println!(
        "{name}: {} sat confirmed, {} sat unconfirmed, {} sat reserved",
        s.confirmed.to_sat(),
        s.unconfirmed.to_sat(),
        s.locked.to_sat()
    );
}

pub fn run(args: WalletArgs) -> Result<()> {
    let ep = endpoints(&args.chain)?;
    let path = &args.file;
    match &args.command {
        WalletCommand::Create { words } => {
            let count = match words {
                12 => WordCount::Twelve,
                24 => WordCount::TwentyFour,
                other => bail!("--words is 12 or 24, not {other}"),
            };
            let m = Mnemonic::generate(count);
            create(path, &m, ep.network)?;
            println!(
                "mnemonic (shown once; write it down, it is the only backup): {}",
                &*m.words()
            );
            println!("wallet sealed in {} for {}", path.display(), ep.network);
            return Ok(());
        }
        WalletCommand::Import => {
            let mut line = zeroize::Zeroizing::new(String::new());
            std::io::stdin().lock().read_line(&mut line)?;
            let m = Mnemonic::parse(&line)?;
            create(path, &m, ep.network)?;
            println!("wallet imported into {} for {}", path.display(), ep.network);
            return Ok(());
        }
        _ => {}
    }
    let keys = unlock(path, ep.network, &read_password()?)?;
    match args.command {
        WalletCommand::Create { .. } | WalletCommand::Import => Ok(()),
        WalletCommand::Address { runes } => {
            let (unused, _) = scan_wallet(&keys, &ep)?;
            let (account, index) = if runes {
                (Account::Runes, unused.rune_receive)
            } else {
                (Account::Payment, unused.pay_receive)
            };
            println!("{}", keys.derive(KeyPath::receive(account, index))?.address);
            Ok(())
        }
        WalletCommand::Balance => {
            let (_, utxos) = scan_wallet(&keys, &ep)?;
            let b = balance(&utxos, &Locks::<u8>::new(1));
            show_split("bitcoin", &b.btc);
            println!(
                "held back: {} sat in outputs that carry runes or inscriptions{}",
                b.btc_held_back.to_sat(),
                if b.unknown_outputs > 0 {
                    format!(
                        ", or whose contents are unknown ({} outputs; no ord server?)",
                        b.unknown_outputs
                    )
                } else {
                    String::new()
                }
            );
            for (id, s) in &b.runes {
                println!(
                    "rune {id}: {} confirmed, {} unconfirmed, {} reserved (smallest units)",
                    s.confirmed, s.unconfirmed, s.locked
                );
            }
            Ok(())
        }
        WalletCommand::History => {
            let mut h = darkswap_wallet::history::HistoryScan::new(&keys)?;
            while let Some(req) = h.next_request() {
                let (status, body) = get(&format!("{}{}", ep.esplora()?, req.path), false)?;
                h.on_answer(status, &body)?;
                h.derive_ahead(&keys)?;
            }
            for e in h.finish()? {
                println!(
                    "{} {} conf {:+} sat{}",
                    e.txid,
                    e.confirmations,
                    e.net().to_sat(),
                    e.fee
                        .map(|f| format!(" fee {} sat", f.to_sat()))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        WalletCommand::Utxos => {
            let (_, utxos) = scan_wallet(&keys, &ep)?;
            for u in utxos {
                println!(
                    "{} {} sat {:?} {} conf {:?}",
                    u.outpoint,
                    u.txout.value.to_sat(),
                    u.path,
                    u.confirmations,
                    u.assets
                );
            }
            Ok(())
        }
        WalletCommand::Send {
            address,
            sats,
            fee_rate,
        } => {
            let to = parse_address(&address, ep.network)?;
            let (unused, utxos) = scan_wallet(&keys, &ep)?;
            let change = keys.derive(KeyPath::change(Account::Payment, unused.pay_change))?;
            let unsigned = send_btc(
                &utxos,
                &Locks::<u8>::new(1),
                &to,
                Amount::from_sat(sats),
                FeeRate::sat_per_vb(fee_rate)?,
                &change,
            )?;
            broadcast(&ep, &unsigned, &keys)
        }
        WalletCommand::SendRunes {
            rune,
            amount,
            address,
            fee_rate,
        } => {
            if ep.ord.is_none() {
                bail!("sending runes needs an ord server (--ord or a relay that names one)");
            }
            let to = parse_address(&address, ep.network)?;
            let (unused, utxos) = scan_wallet(&keys, &ep)?;
            let rune_change = keys.derive(KeyPath::change(Account::Runes, unused.rune_change))?;
            let btc_change = keys.derive(KeyPath::change(Account::Payment, unused.pay_change))?;
            let unsigned = send_runes(
                &utxos,
                &Locks::<u8>::new(1),
                rune,
                amount,
                &to,
                FeeRate::sat_per_vb(fee_rate)?,
                &rune_change,
                &btc_change,
            )?;
            broadcast(&ep, &unsigned, &keys)
        }
        WalletCommand::Faucet { runes } => {
            let root = ep
                .relay_http
                .as_deref()
                .context("the faucet is a relay's: pass --relay-http")?;
            let (unused, _) = scan_wallet(&keys, &ep)?;
            let (path, account, index) = if runes {
                ("/api/faucet/runes", Account::Runes, unused.rune_receive)
            } else {
                ("/api/faucet", Account::Payment, unused.pay_receive)
            };
            let to = keys.derive(KeyPath::receive(account, index))?.address;
            let (status, body) = post(
                &format!("{root}{path}"),
                "application/json",
                &darkswap_wallet::faucet::request_body(&to),
            )?;
            if status != 200 {
                bail!(
                    "the faucet answered HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
            if runes {
                let gift = darkswap_wallet::faucet::RuneGift::parse(&body)?;
                println!("the faucet sent {gift} to {to}");
            } else {
                println!("the faucet mined to {to}");
            }
            Ok(())
        }
    }
}

pub fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex of at most `max` bytes.
pub fn hex_decode(s: &str, max: usize) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * max {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}
