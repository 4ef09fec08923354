//! The page's side of the wallet (the logic is `darkswap-wallet`'s): the sealed mnemonic and the
//! unlock throttle in IndexedDB (store "wallet"; the record holds no secret in the clear), the
//! chain's HTTP with the browser's `fetch` driving the crate's address scan and history walk, fee estimates,
//! broadcast, and the relay's regtest faucet. Every request is abandoned after 15 s; reads are
//! retried twice with doubling waits, broadcasts never behind the trader's back. Messages here
//! are the UI's words.

use std::collections::BTreeMap;
use std::time::Duration;

use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Address, Transaction, Txid};
use darkswap_net::relay_info::fetch_relay_info;
use darkswap_proto::RelayInfo;
use darkswap_wallet::esplora::FeeEstimates;
use darkswap_wallet::faucet::RuneGift;
use darkswap_wallet::history::{Entry, HistoryScan};
use darkswap_wallet::keystore::UnlockThrottle;
use darkswap_wallet::ord_api::RuneInfo;
use darkswap_wallet::retry::{retry_after, Outcome};
use darkswap_wallet::sync::{Scan, Server};
use darkswap_wallet::{Account, Chain as KeyChain, Keychain, Network, RuneId, Utxo};

use crate::storage::{get_bytes, get_value, put_bytes, put_value, StorageError};

const STORE: &str = "wallet";
const SEALED_KEY: &str = "sealed";
const THROTTLE_KEY: &str = "throttle";
/// The largest chain answer read (the crate's parsers cap each kind again).
const MAX_ANSWER: usize = 8 * 1024 * 1024;

/// Where this relay's traders read the chain.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainAccess {
    pub network: Network,
    pub esplora: String,
    pub ord: Option<String>,
    pub faucet: Option<String>,
}

/// The relay's chain, from its relay-info; `Ok(None)` when it names none.
pub async fn chain_access(relay_info_url: &str) -> Result<Option<ChainAccess>, String> {
    let (info, _) = fetch_relay_info(relay_info_url)
        .await
        .map_err(|e| e.to_string())?;
    chain_of(&info, relay_info_url)
}

/// The chain a relay-info document (fetched from `relay_info_url`) names; `Ok(None)` when it
/// names none.
pub fn chain_of(info: &RelayInfo, relay_info_url: &str) -> Result<Option<ChainAccess>, String> {
    let Some(chain) = info.chain.as_ref() else {
        return Ok(None);
    };
    let network: Network = chain.network.parse().map_err(|e| format!("{e}"))?;
    let root = relay_info_url
        .trim_end_matches("/api/relay-info")
        .to_string();
    let resolve = |u: &str| {
        if u.starts_with('/') {
            format!("{root}{u}")
        } else {
            u.trim_end_matches('/').to_string()
        }
    };
    let Some(esplora) = chain.esplora.as_deref().map(resolve) else {
        return Err(format!(
            "the relay names {network} but no Esplora API for it"
        ));
    };
    Ok(Some(ChainAccess {
        network,
        esplora,
        ord: chain.ord.as_deref().map(resolve),
        faucet: chain.faucet.then(|| format!("{root}/api/faucet")),
    }))
}

pub async fn load_sealed() -> Result<Option<Vec<u8>>, String> {
    get_bytes(STORE, SEALED_KEY)
        .await
        .map_err(|e| e.to_string())
}

pub async fn save_sealed(sealed: &[u8]) -> Result<(), String> {
    put_bytes(STORE, SEALED_KEY, sealed)
        .await
        .map_err(|e| e.to_string())
}

/// A password throttle kept under `key` in `store` (a fresh one when none is stored).
pub async fn load_throttle_at(store: &str, key: &str) -> UnlockThrottle {
    match get_value::<(u32, u64)>(store, key).await {
        Ok(Some((failures, last_failure_ms))) => UnlockThrottle {
            failures,
            last_failure_ms,
        },
        _ => UnlockThrottle::default(),
    }
}

/// Keeps a password throttle under `key` in `store`.
pub async fn save_throttle_at(
    store: &str,
    key: &str,
    t: UnlockThrottle,
) -> Result<(), StorageError> {
    put_value(store, key, &(t.failures, t.last_failure_ms)).await
}

pub async fn load_throttle() -> UnlockThrottle {
    load_throttle_at(STORE, THROTTLE_KEY).await
}

pub async fn save_throttle(t: UnlockThrottle) -> Result<(), String> {
    save_throttle_at(STORE, THROTTLE_KEY, t)
        .await
        .map_err(|e| e.to_string())
}

/// How long one request may take, body included, before it is abandoned.
const TIMEOUT_MS: u32 = 15_000;

/// Why one request failed, and whether trying again may help.
struct Failure {
    words: String,
    transient: bool,
}

/// One request, abandoned after [`TIMEOUT_MS`] (the browser's `AbortController`).
async fn fetch_once(
    method: &str,
    url: &str,
    json: bool,
    body: Option<(&str, String)>,
) -> Result<(u16, Vec<u8>), Failure> {
    let fail = |words: String, transient: bool| Failure { words, transient };
    let controller =
        web_sys::AbortController::new().map_err(|_| fail("no AbortController".into(), false))?;
    let signal = controller.signal();
    let _deadline = gloo_timers::callback::Timeout::new(TIMEOUT_MS, move || controller.abort());
    let builder = match method {
        "POST" => gloo_net::http::Request::post(url),
        _ => gloo_net::http::Request::get(url),
    }
    .abort_signal(Some(&signal));
    let builder = if json {
        builder.header("Accept", "application/json")
    } else {
        builder
    };
    let timed_out = || signal.aborted();
    let unreachable = |e: gloo_net::Error| {
        if timed_out() {
            fail(
                format!("{url} did not answer within {} s", TIMEOUT_MS / 1000),
                true,
            )
        } else {
            fail(format!("cannot reach {url}: {e}"), true)
        }
    };
    let response = match body {
        Some((content_type, text)) => {
            builder
                .header("Content-Type", content_type)
                .body(text)
                .map_err(|e| fail(e.to_string(), false))?
                .send()
                .await
        }
        None => builder.send().await,
    }
    .map_err(unreachable)?;
    let declared = response
        .headers()
        .get("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_ANSWER) {
        return Err(fail(
            format!("{url} answered more than {MAX_ANSWER} bytes"),
            false,
        ));
    }
    let bytes = response.binary().await.map_err(unreachable)?;
    if bytes.len() > MAX_ANSWER {
        return Err(fail(
            format!("{url} answered more than {MAX_ANSWER} bytes"),
            false,
        ));
    }
    Ok((response.status(), bytes))
}

/// A GET, tried again while the server is unreachable, slow, overloaded (429) or failing (5xx)
/// as `darkswap_wallet::retry` says; any other answer is returned as it is.
pub async fn get(url: &str, json: bool) -> Result<(u16, Vec<u8>), String> {
    let mut attempt = 1;
    loop {
        let outcome = fetch_once("GET", url, json, None).await;
        let how = match &outcome {
            Ok((status, _)) => Outcome::Status(*status),
            Err(f) if f.transient => Outcome::NoAnswer,
            Err(f) => return Err(f.words.clone()),
        };
        match retry_after(attempt, how) {
            Some(wait_ms) => gloo_timers::future::sleep(Duration::from_millis(wait_ms)).await,
            None => {
                return outcome.map_err(|f| {
                    if attempt > 1 {
                        format!("{} (tried {attempt} times)", f.words)
                    } else {
                        f.words
                    }
                })
            }
        }
        attempt += 1;
    }
}

/// What ord says of the rune named `name` (no spacers): `None` when ord knows no such rune.
pub async fn rune_info(ord: &str, name: &str) -> Result<Option<RuneInfo>, String> {
    let (status, body) = get(&format!("{ord}/rune/{name}"), true).await?;
    match status {
        200 => darkswap_wallet::ord_api::parse_rune(&body)
            .map(Some)
            .map_err(|e| format!("ord's answer about {name}: {e}")),
        404 => Ok(None),
        other => Err(format!("ord answered {other} about {name}")),
    }
}

/// A POST, made once: a broadcast or a faucet call is not repeated behind the trader's back
/// (they see the error and press again).
async fn post(url: &str, content_type: &str, body: String) -> Result<(u16, Vec<u8>), String> {
    fetch_once("POST", url, false, Some((content_type, body)))
        .await
        .map_err(|f| f.words)
}

/// What a scan found.
#[derive(Clone, Debug)]
pub struct Scanned {
    pub utxos: Vec<Utxo>,
    /// The name and divisibility of each rune the outputs carry.
    pub runes: BTreeMap<RuneId, RuneInfo>,
    /// The chain's fee estimates, or why there are none.
    pub fees: Result<FeeEstimates, String>,
    pub tip: u32,
    /// The first unused receiving index of (payment, runes), and change index of (payment,
    /// runes).
    pub receive: (u32, u32),
    pub change: (u32, u32),
}

/// Scans the wallet's addresses on `chain`.
pub async fn scan(keys: &Keychain, chain: &ChainAccess) -> Result<Scanned, String> {
    let mut s = Scan::new(keys, chain.ord.is_some()).map_err(|e| e.to_string())?;
    while let Some(req) = s.next_request() {
        let (root, json) = match req.server {
            Server::Esplora => (chain.esplora.as_str(), false),
            Server::Ord => (chain.ord.as_deref().unwrap_or_default(), true),
        };
        let (status, body) = get(&format!("{root}{}", req.path), json).await?;
        s.on_answer(status, &body).map_err(|e| e.to_string())?;
        s.derive_ahead(keys).map_err(|e| e.to_string())?;
    }
    let receive = (
        s.first_unused(Account::Payment, KeyChain::External),
        s.first_unused(Account::Runes, KeyChain::External),
    );
    let change = (
        s.first_unused(Account::Payment, KeyChain::Internal),
        s.first_unused(Account::Runes, KeyChain::Internal),
    );
    let tip = s.tip().unwrap_or(0);
    let runes = s.runes();
    let utxos = s.finish().map_err(|e| e.to_string())?;
    let fees = fee_estimates(chain).await;
    Ok(Scanned {
        utxos,
        runes,
        fees,
        tip,
        receive,
        change,
    })
}

/// The wallet's history: every transaction touching its addresses, newest first, each one's
/// effect worked out from its checked bytes.
pub async fn history(keys: &Keychain, chain: &ChainAccess) -> Result<Vec<Entry>, String> {
    let mut h = HistoryScan::new(keys).map_err(|e| e.to_string())?;
    while let Some(req) = h.next_request() {
        let (status, body) = get(&format!("{}{}", chain.esplora, req.path), false).await?;
        h.on_answer(status, &body).map_err(|e| e.to_string())?;
        h.derive_ahead(keys).map_err(|e| e.to_string())?;
    }
    h.finish().map_err(|e| e.to_string())
}

/// The chain's fee estimates (`/fee-estimates`); empty where the chain has none (regtest).
pub async fn fee_estimates(chain: &ChainAccess) -> Result<FeeEstimates, String> {
    let (status, body) = get(&format!("{}/fee-estimates", chain.esplora), false).await?;
    if status != 200 {
        return Err(format!("fee estimates: HTTP {status}"));
    }
    darkswap_wallet::esplora::parse_fee_estimates(&body).map_err(|e| e.to_string())
}

/// Broadcasts `tx` through the chain's Esplora API; checks the answer names it.
pub async fn broadcast(chain: &ChainAccess, tx: &Transaction) -> Result<Txid, String> {
    let (status, body) = post(
        &format!("{}/tx", chain.esplora),
        "text/plain",
        serialize_hex(tx),
    )
    .await?;
    if status != 200 {
        let why: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(format!("the chain refused the transaction: {why}"));
    }
    darkswap_wallet::esplora::parse_broadcast(&body, tx).map_err(|e| e.to_string())
}

/// Asks the relay's faucet at `url` to mine to `address`, or (`url` ending `/runes`) to send it
/// test runes; the answer's body.
pub async fn faucet(url: &str, address: &Address) -> Result<Vec<u8>, String> {
    let body = darkswap_wallet::faucet::request_body(address);
    let (status, answer) = post(url, "application/json", body).await?;
    if status != 200 {
        return Err(format!(
            "the faucet said: {}",
            String::from_utf8_lossy(&answer)
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    Ok(answer)
}

/// Asks the relay's rune faucet (`{faucet}/runes`) for test runes to `address`.
pub async fn faucet_runes(faucet_url: &str, address: &Address) -> Result<RuneGift, String> {
    let body = faucet(&format!("{faucet_url}/runes"), address).await?;
    RuneGift::parse(&body).map_err(|e| e.to_string())
}
