//! An optional Esplora-compatible gateway over the operator's own `bitcoind`, for chains where
//! no public Esplora server exists (regtest, a private signet). Off unless the operator gives
//! `chain.bitcoind_rpc_url`; it never holds a trader's keys and uses no bitcoind wallet. On
//! regtest it can also serve a faucet that mines blocks to a caller's address and sends test
//! runes from a throwaway regtest key of its own ([`crate::rune_faucet`]).
//!
//! Paths (under `/esplora`, the subset of Esplora's API the page and the CLI use, same JSON):
//! `GET /blocks/tip/height`, `GET /blocks/tip/hash`, `GET /address/{addr}/utxo` (confirmed
//! outputs from `scantxoutset`, with the mempool's spends removed and its new outputs added;
//! `status` carries `confirmed` and `block_height`, not `block_hash`/`block_time`),
//! `GET /address/{addr}/txs` and `GET /address/{addr}/txs/chain/{last txid}` (an address's
//! history, newest first: the mempool's transactions touching it, up to 50, then 25 confirmed
//! a page, from the gateway's own address index, [`crate::chain_index`]; each entry carries
//! `txid` and `status` only, the wallet fetching the bytes),
//! `GET /tx/{txid}/hex`, `POST /tx` (hex body; answer: the txid), `GET /fee-estimates` (Core's
//! `estimatesmartfee` for the usual targets; targets Core has no estimate for are left out, as
//! on regtest). Faucet: `POST /api/faucet` with `{"address": "bcrt1…"}` (blocks), and
//! `POST /api/faucet/runes` with the same body (test runes; answer: `rune`, `amount` in units as
//! a string, `divisibility`, `txid`); the two share one rate limit.
//!
//! What a client reads from here it checks as it checks any Esplora server
//! (`darkswap_wallet::esplora`): a gateway is not trusted more than mempool.space.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use darkswap_rate::{Rate, TokenBucket};
use darkswap_wallet::Network;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde_json::{json, Value};

use crate::bitcoind_rpc::{Rpc, RpcError};
use crate::chain_index::{AddressIndex, IndexError, IndexedTx};
use crate::defaults;
use crate::metrics::GatewayLabels;
use crate::rune_faucet::{FaucetError, RuneFaucet};

/// Targets (blocks) of `/fee-estimates`, as Esplora lists them.
const FEE_TARGETS: [u16; 9] = [1, 2, 3, 6, 12, 24, 144, 504, 1008];

/// The gateway's state.
pub struct Gateway {
    rpc: Rpc,
    network: Network,
    /// Core runs one UTXO-set scan at a time; callers queue here instead of failing.
    scan: tokio::sync::Mutex<()>,
    /// Confirmed history by script, caught up on each history request.
    index: tokio::sync::Mutex<AddressIndex>,
    faucet: Option<Mutex<TokenBucket>>,
    faucet_rate: Rate,
    /// One gift at a time: each spends the output the last one left.
    rune_faucet: Option<tokio::sync::Mutex<RuneFaucet>>,
    requests: Family<GatewayLabels, Counter>,
}

impl Gateway {
    /// A gateway to `rpc` for `network`; the faucet only on regtest and when asked for.
    pub fn new(
        rpc: Rpc,
        network: Network,
        faucet: bool,
        requests: Family<GatewayLabels, Counter>,
    ) -> Gateway {
        let faucet_rate =
            Rate::per_minute(defaults::FAUCET_PER_MINUTE, defaults::FAUCET_PER_MINUTE);
        let faucet = faucet && network == Network::Regtest;
        let rune_faucet = faucet
            .then(|| match RuneFaucet::new() {
                Ok(f) => Some(tokio::sync::Mutex::new(f)),
                Err(e) => {
                    tracing::warn!(error = %e, "chain gateway: no rune faucet");
                    None
                }
            })
            .flatten();
        Gateway {
            rpc,
            network,
            scan: tokio::sync::Mutex::new(()),
            index: tokio::sync::Mutex::new(AddressIndex::new(defaults::GATEWAY_MAX_INDEX_ENTRIES)),
            faucet: faucet.then(|| Mutex::new(TokenBucket::full(&faucet_rate, now_ms()))),
            faucet_rate,
            rune_faucet,
            requests,
        }
    }

    /// Whether the faucet is served.
    pub fn has_faucet(&self) -> bool {
        self.faucet.is_some()
    }

    fn count(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&GatewayLabels { endpoint, outcome })
            .inc();
    }
}

fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The routes: `/esplora/…` and, with the faucet, `/api/faucet`.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let esplora = Router::new()
        .route("/blocks/tip/height", get(tip_height))
        .route("/blocks/tip/hash", get(tip_hash))
        .route("/address/{address}/utxo", get(address_utxo))
        .route("/address/{address}/txs", get(address_txs))
        .route(
            "/address/{address}/txs/chain/{last}",
            get(address_txs_chain),
        )
        .route("/tx/{txid}/hex", get(tx_hex))
        .route("/tx/{txid}/status", get(tx_status))
        .route("/tx/{txid}/outspend/{vout}", get(outspend))
        .route("/tx", post(broadcast))
        .route("/fee-estimates", get(fee_estimates))
        .layer(DefaultBodyLimit::max(defaults::GATEWAY_MAX_TX_HEX + 2));
    let mut router = Router::new().nest("/esplora", esplora);
    if gateway.has_faucet() {
        router = router
            .route(
                "/api/faucet",
                post(faucet).layer(DefaultBodyLimit::max(1024)),
            )
            .route(
                "/api/faucet/runes",
                post(faucet_runes).layer(DefaultBodyLimit::max(1024)),
            );
    }
    router.with_state(gateway)
}

/// An answer with Esplora's CORS header (pages on other origins read public Esplora servers).
fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut r = (status, body.into()).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

fn text(body: String) -> Response {
    answer(StatusCode::OK, "text/plain", body)
}

fn json_answer(v: &Value) -> Response {
    answer(StatusCode::OK, "application/json", v.to_string())
}

/// A refusal the gateway decided itself: counted under `outcome`, answered in words.
fn refuse(
    gw: &Gateway,
    endpoint: &'static str,
    outcome: &'static str,
    status: StatusCode,
    why: String,
) -> Response {
    gw.count(endpoint, outcome);
    answer(status, "text/plain", why)
}

fn not_found(gw: &Gateway, endpoint: &'static str, what: &str) -> Response {
    refuse(
        gw,
        endpoint,
        "not_found",
        StatusCode::NOT_FOUND,
        what.to_string(),
    )
}

fn bad_request(gw: &Gateway, endpoint: &'static str, why: String) -> Response {
    refuse(gw, endpoint, "bad_request", StatusCode::BAD_REQUEST, why)
}

fn upstream(gw: &Gateway, endpoint: &'static str, e: RpcError) -> Response {
    gw.count(endpoint, "upstream_error");
    tracing::debug!(endpoint, error = %e, "chain gateway: bitcoind call failed");
    let status = match e {
        RpcError::Rpc { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::BAD_GATEWAY,
    };
    answer(status, "text/plain", e.to_string())
}

async fn tip_height(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.rpc.call("getblockcount", json!([])).await {
        Ok(v) if v.is_u64() => {
            gw.count("tip", "ok");
            text(v.to_string())
        }
        Ok(_) => upstream(&gw, "tip", malformed("getblockcount")),
        Err(e) => upstream(&gw, "tip", e),
    }
}

async fn tip_hash(State(gw): State<Arc<Gateway>>) -> Response {
    match gw.rpc.call("getbestblockhash", json!([])).await {
        Ok(Value::String(h)) => {
            gw.count("tip", "ok");
            text(h)
        }
        Ok(_) => upstream(&gw, "tip", malformed("getbestblockhash")),
        Err(e) => upstream(&gw, "tip", e),
    }
}

fn malformed(method: &str) -> RpcError {
    RpcError::Malformed {
        method: method.to_string(),
    }
}

/// Core's JSON BTC amount as satoshis. Core prints at most 8 decimals and no more than 21
/// million BTC, so the amount is at most 2.1e15 satoshis, below 2^53: the f64 serde_json reads
/// is within a quarter of a satoshi of the printed value, and rounding recovers it exactly.
fn sats(v: &Value) -> Option<u64> {
    let btc = v.as_f64()?;
    (0.0..=21e6)
        .contains(&btc)
        .then(|| (btc * 1e8).round() as u64)
}

async fn address_utxo(State(gw): State<Arc<Gateway>>, Path(address): Path<String>) -> Response {
    const E: &str = "address_utxo";
    let parsed = bitcoin::Address::from_str(&address)
        .ok()
        .and_then(|a| a.require_network(gw.network.to_bitcoin()).ok());
    let Some(parsed) = parsed else {
        return bad_request(&gw, E, format!("not a {} address", gw.network));
    };
    let address = parsed.to_string();
    let scanned = {
        let _one_scan_at_a_time = gw.scan.lock().await;
        gw.rpc
            .call(
                "scantxoutset",
                json!(["start", [format!("addr({address})")]]),
            )
            .await
    };
    let scanned = match scanned {
        Ok(v) => v,
        Err(e) => return upstream(&gw, E, e),
    };
    let mut outputs: BTreeMap<(String, u32), Value> = BTreeMap::new();
    for u in scanned["unspents"].as_array().into_iter().flatten() {
        let (Some(txid), Some(vout), Some(value), Some(height)) = (
            u["txid"].as_str(),
            u["vout"].as_u64(),
            sats(&u["amount"]),
            u["height"].as_u64(),
        ) else {
            return upstream(&gw, E, malformed("scantxoutset"));
        };
        outputs.insert(
            (txid.to_string(), vout as u32),
            json!({"txid": txid, "vout": vout, "value": value,
                   "status": {"confirmed": true, "block_height": height}}),
        );
    }
    // The mempool: outputs it spends go, outputs it adds come.
    let mempool = match mempool_txs(&gw, E).await {
        Ok(m) => m,
        Err(refused) => return refused,
    };
    let mut spent = HashSet::new();
    let mut added = Vec::new();
    for (txid, tx) in &mempool {
        for input in tx["vin"].as_array().into_iter().flatten() {
            if let (Some(t), Some(v)) = (input["txid"].as_str(), input["vout"].as_u64()) {
                spent.insert((t.to_string(), v as u32));
            }
        }
        for out in tx["vout"].as_array().into_iter().flatten() {
            if out["scriptPubKey"]["address"].as_str() == Some(address.as_str()) {
                let (Some(n), Some(value)) = (out["n"].as_u64(), sats(&out["value"])) else {
                    return upstream(&gw, E, malformed("getrawtransaction"));
                };
                added.push(((txid.clone(), n as u32), value));
            }
        }
    }
    for ((txid, vout), value) in added {
        outputs.insert(
            (txid.clone(), vout),
            json!({"txid": txid, "vout": vout, "value": value, "status": {"confirmed": false}}),
        );
    }
    outputs.retain(|k, _| !spent.contains(k));
    gw.count(E, "ok");
    json_answer(&Value::Array(outputs.into_values().collect()))
}

/// The mempool's transactions (verbosity 2: inputs with the outputs they spend), or the refusal
/// to answer for `endpoint` when it is larger than the gateway inspects.
async fn mempool_txs(
    gw: &Gateway,
    endpoint: &'static str,
) -> Result<Vec<(String, Value)>, Response> {
    let txids = match gw.rpc.call("getrawmempool", json!([])).await {
        Ok(Value::Array(txids)) => txids,
        Ok(_) => return Err(upstream(gw, endpoint, malformed("getrawmempool"))),
        Err(e) => return Err(upstream(gw, endpoint, e)),
    };
    if txids.len() > defaults::GATEWAY_MAX_MEMPOOL {
        return Err(refuse(
            gw,
            endpoint,
            "mempool_too_large",
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the mempool holds {} transactions, more than this gateway inspects ({})",
                txids.len(),
                defaults::GATEWAY_MAX_MEMPOOL
            ),
        ));
    }
    let mut out = Vec::with_capacity(txids.len());
    for txid in txids.iter().filter_map(Value::as_str) {
        match gw.rpc.call("getrawtransaction", json!([txid, 2])).await {
            Ok(tx) => out.push((txid.to_string(), tx)),
            // Mined or evicted since getrawmempool: not in the mempool any more.
            Err(RpcError::Rpc { .. }) => continue,
            Err(e) => return Err(upstream(gw, endpoint, e)),
        }
    }
    Ok(out)
}

/// The scripts a transaction in Core's JSON (verbosity 2 or 3) pays and spends from.
fn touched_scripts(tx: &Value) -> Option<Vec<bitcoin::ScriptBuf>> {
    let mut out = Vec::new();
    for o in tx["vout"].as_array()? {
        out.push(bitcoin::ScriptBuf::from_hex(o["scriptPubKey"]["hex"].as_str()?).ok()?);
    }
    for i in tx["vin"].as_array()? {
        if i.get("coinbase").is_some() {
            continue;
        }
        out.push(bitcoin::ScriptBuf::from_hex(i["prevout"]["scriptPubKey"]["hex"].as_str()?).ok()?);
    }
    Some(out)
}

/// Whether a mempool transaction pays `script` or spends from it. Core gives no `prevout` for a
/// mempool transaction's inputs (it has no undo data yet), so each spent output is looked up in
/// its own transaction (`-txindex`, which the gateway needs anyway).
async fn mempool_touches(
    gw: &Gateway,
    tx: &Value,
    script: &bitcoin::ScriptBuf,
) -> Result<bool, RpcError> {
    let script_of = |o: &Value| {
        o["scriptPubKey"]["hex"]
            .as_str()
            .and_then(|h| bitcoin::ScriptBuf::from_hex(h).ok())
    };
    let outputs = tx["vout"]
        .as_array()
        .ok_or_else(|| malformed("getrawtransaction"))?;
    if outputs
        .iter()
        .any(|o| script_of(o).as_ref() == Some(script))
    {
        return Ok(true);
    }
    for input in tx["vin"].as_array().into_iter().flatten() {
        if input.get("coinbase").is_some() {
            continue;
        }
        if let Some(prev) = input.get("prevout") {
            if script_of(prev).as_ref() == Some(script) {
                return Ok(true);
            }
            continue;
        }
        let (Some(prev_txid), Some(vout)) = (input["txid"].as_str(), input["vout"].as_u64()) else {
            return Err(malformed("getrawtransaction"));
        };
        let prev = gw
            .rpc
            .call("getrawtransaction", json!([prev_txid, 1]))
            .await?;
        let spent = prev["vout"]
            .as_array()
            .and_then(|outs| outs.iter().find(|o| o["n"].as_u64() == Some(vout)));
        if spent.and_then(script_of).as_ref() == Some(script) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Brings the address index up to bitcoind's tip, at most
/// [`defaults::GATEWAY_INDEX_BLOCKS_PER_REQUEST`] blocks; a reorg rebuilds it from the start.
async fn catch_up(
    gw: &Gateway,
    idx: &mut AddressIndex,
    endpoint: &'static str,
) -> Result<(), Response> {
    let tip = match gw.rpc.call("getblockcount", json!([])).await {
        Ok(v) => v
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .ok_or_else(|| upstream(gw, endpoint, malformed("getblockcount")))?,
        Err(e) => return Err(upstream(gw, endpoint, e)),
    };
    let block_hash = |v: &Value| {
        v.as_str()
            .and_then(|h| bitcoin::BlockHash::from_str(h).ok())
    };
    // The last indexed block may have been replaced (a reorg): start again.
    if let Some(last) = idx.last_hash() {
        let height = idx.next_height() - 1;
        let same = height <= tip
            && match gw.rpc.call("getblockhash", json!([height])).await {
                Ok(v) => block_hash(&v) == Some(last),
                Err(e) => return Err(upstream(gw, endpoint, e)),
            };
        if !same {
            idx.reset();
        }
    }
    let mut budget = defaults::GATEWAY_INDEX_BLOCKS_PER_REQUEST;
    while idx.next_height() <= tip {
        if budget == 0 {
            return Err(refuse(
                gw,
                endpoint,
                "indexing",
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the gateway's address index is at block {} of {tip}: ask again",
                    idx.next_height()
                ),
            ));
        }
        budget -= 1;
        let height = idx.next_height();
        let hash = match gw.rpc.call("getblockhash", json!([height])).await {
            Ok(v) => {
                block_hash(&v).ok_or_else(|| upstream(gw, endpoint, malformed("getblockhash")))?
            }
            Err(e) => return Err(upstream(gw, endpoint, e)),
        };
        let block = match gw.rpc.call("getblock", json!([hash.to_string(), 3])).await {
            Ok(b) => b,
            Err(e) => return Err(upstream(gw, endpoint, e)),
        };
        let prev = block.get("previousblockhash").and_then(block_hash);
        let mut txs = Vec::new();
        for tx in block["tx"].as_array().into_iter().flatten() {
            let (Some(txid), Some(scripts)) = (
                tx["txid"]
                    .as_str()
                    .and_then(|t| bitcoin::Txid::from_str(t).ok()),
                touched_scripts(tx),
            ) else {
                return Err(upstream(gw, endpoint, malformed("getblock")));
            };
            txs.push(IndexedTx { txid, scripts });
        }
        match idx.apply(height, hash, prev, &txs) {
            Ok(()) => {}
            // The chain moved under the walk: start again (the budget bounds it).
            Err(IndexError::NotNext { .. }) => idx.reset(),
            Err(e @ IndexError::Full(_)) => {
                return Err(refuse(
                    gw,
                    endpoint,
                    "index_full",
                    StatusCode::SERVICE_UNAVAILABLE,
                    e.to_string(),
                ))
            }
        }
    }
    Ok(())
}

async fn address_txs(State(gw): State<Arc<Gateway>>, Path(address): Path<String>) -> Response {
    history(&gw, &address, None).await
}

async fn address_txs_chain(
    State(gw): State<Arc<Gateway>>,
    Path((address, last)): Path<(String, String)>,
) -> Response {
    history(&gw, &address, Some(last)).await
}

/// An address's history page: the mempool's transactions touching it (first page only), then
/// confirmed ones after `after`, newest first.
async fn history(gw: &Gateway, address: &str, after: Option<String>) -> Response {
    const E: &str = "address_txs";
    let parsed = bitcoin::Address::from_str(address)
        .ok()
        .and_then(|a| a.require_network(gw.network.to_bitcoin()).ok());
    let Some(parsed) = parsed else {
        return bad_request(gw, E, format!("not a {} address", gw.network));
    };
    let after = match after.as_deref().map(bitcoin::Txid::from_str) {
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => return bad_request(gw, E, "not a transaction id".into()),
        None => None,
    };
    let script = parsed.script_pubkey();
    let confirmed = {
        let mut idx = gw.index.lock().await;
        if let Err(refused) = catch_up(gw, &mut idx, E).await {
            return refused;
        }
        idx.history(&script)
    };
    let mut page = Vec::new();
    if after.is_none() {
        let mempool = match mempool_txs(gw, E).await {
            Ok(m) => m,
            Err(refused) => return refused,
        };
        for (txid, tx) in &mempool {
            match mempool_touches(gw, tx, &script).await {
                Ok(true) => page.push(json!({"txid": txid, "status": {"confirmed": false}})),
                Ok(false) => {}
                Err(e) => return upstream(gw, E, e),
            }
            if page.len() >= defaults::GATEWAY_TXS_MEMPOOL_PAGE {
                break;
            }
        }
    }
    let start = match after {
        None => 0,
        Some(last) => match confirmed.iter().position(|(t, _)| *t == last) {
            Some(i) => i + 1,
            None => {
                return bad_request(
                    gw,
                    E,
                    "that transaction is not in this address's history".into(),
                )
            }
        },
    };
    for (txid, height) in confirmed
        .iter()
        .skip(start)
        .take(defaults::GATEWAY_TXS_CHAIN_PAGE)
    {
        page.push(json!({"txid": txid.to_string(), "status": {"confirmed": true, "block_height": height}}));
    }
    gw.count(E, "ok");
    json_answer(&Value::Array(page))
}

fn is_txid(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn tx_hex(State(gw): State<Arc<Gateway>>, Path(txid): Path<String>) -> Response {
    const E: &str = "tx_hex";
    if !is_txid(&txid) {
        return bad_request(&gw, E, "not a transaction id".into());
    }
    match gw.rpc.call("getrawtransaction", json!([txid, false])).await {
        Ok(Value::String(hex)) => {
            gw.count(E, "ok");
            text(hex)
        }
        Ok(_) => upstream(&gw, E, malformed("getrawtransaction")),
        Err(RpcError::Rpc { .. }) => not_found(&gw, E, "Transaction not found"),
        Err(e) => upstream(&gw, E, e),
    }
}

/// Esplora's `/tx/{txid}/status`: `{"confirmed": false}` in the mempool, the block's height
/// and hash once confirmed, 404 for a transaction neither holds.
async fn tx_status(State(gw): State<Arc<Gateway>>, Path(txid): Path<String>) -> Response {
    const E: &str = "tx_status";
    if !is_txid(&txid) {
        return bad_request(&gw, E, "not a transaction id".into());
    }
    let verbose = match gw.rpc.call("getrawtransaction", json!([txid, true])).await {
        Ok(v) => v,
        Err(RpcError::Rpc { .. }) => return not_found(&gw, E, "Transaction not found"),
        Err(e) => return upstream(&gw, E, e),
    };
    let Some(hash) = verbose.get("blockhash").and_then(Value::as_str) else {
        gw.count(E, "ok");
        return json_answer(&json!({"confirmed": false}));
    };
    match gw.rpc.call("getblockheader", json!([hash, true])).await {
        Ok(header) => match header.get("height").and_then(Value::as_u64) {
            Some(height) => {
                gw.count(E, "ok");
                json_answer(&json!({"confirmed": true, "block_height": height, "block_hash": hash}))
            }
            None => upstream(&gw, E, malformed("getblockheader")),
        },
        Err(e) => upstream(&gw, E, e),
    }
}

/// Esplora's `/tx/{txid}/outspend/{vout}`, as far as Core can tell without a spend index:
/// `{"spent": false}` while the output is in the UTXO set (mempool spends count), otherwise
/// `{"spent": true}` without the spender; 404 when the transaction or the output does not
/// exist.
async fn outspend(
    State(gw): State<Arc<Gateway>>,
    Path((txid, vout)): Path<(String, u32)>,
) -> Response {
    const E: &str = "outspend";
    if !is_txid(&txid) {
        return bad_request(&gw, E, "not a transaction id".into());
    }
    match gw.rpc.call("gettxout", json!([txid, vout, true])).await {
        Ok(Value::Null) => {}
        Ok(_) => {
            gw.count(E, "ok");
            return json_answer(&json!({"spent": false}));
        }
        Err(e) => return upstream(&gw, E, e),
    }
    // Not in the UTXO set: spent, unless there never was such an output.
    match gw.rpc.call("getrawtransaction", json!([txid, true])).await {
        Ok(tx) => {
            let outputs = tx.get("vout").and_then(Value::as_array).map(Vec::len);
            if outputs.is_some_and(|n| (vout as usize) < n) {
                gw.count(E, "ok");
                json_answer(&json!({"spent": true}))
            } else {
                not_found(&gw, E, "Output not found")
            }
        }
        Err(RpcError::Rpc { .. }) => not_found(&gw, E, "Transaction not found"),
        Err(e) => upstream(&gw, E, e),
    }
}

async fn broadcast(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    const E: &str = "broadcast";
    let hex = String::from_utf8_lossy(&body).trim().to_string();
    if hex.is_empty()
        || hex.len() > defaults::GATEWAY_MAX_TX_HEX
        || !hex.len().is_multiple_of(2)
        || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return bad_request(&gw, E, "the body must be one transaction in hex".into());
    }
    match gw.rpc.call("sendrawtransaction", json!([hex])).await {
        Ok(Value::String(txid)) => {
            gw.count(E, "ok");
            text(txid)
        }
        Ok(_) => upstream(&gw, E, malformed("sendrawtransaction")),
        Err(e) => upstream(&gw, E, e),
    }
}

async fn fee_estimates(State(gw): State<Arc<Gateway>>) -> Response {
    const E: &str = "fee_estimates";
    let mut out = serde_json::Map::new();
    for target in FEE_TARGETS {
        match gw.rpc.call("estimatesmartfee", json!([target])).await {
            // BTC per 1,000 vB; ×100,000 is sat/vB.
            Ok(v) => {
                if let Some(rate) = v["feerate"].as_f64() {
                    out.insert(target.to_string(), json!(rate * 100_000.0));
                }
            }
            Err(e) => return upstream(&gw, E, e),
        }
    }
    gw.count(E, "ok");
    json_answer(&Value::Object(out))
}

#[derive(serde::Deserialize)]
struct FaucetRequest {
    address: String,
}

/// The caller's address from a faucet call's body, once the rate limit allows the call.
fn faucet_call(
    gw: &Gateway,
    endpoint: &'static str,
    body: &[u8],
) -> Result<bitcoin::Address, Box<Response>> {
    let Some(bucket) = &gw.faucet else {
        return Err(Box::new(bad_request(
            gw,
            endpoint,
            "no faucet on this relay".into(),
        )));
    };
    let Ok(req) = serde_json::from_slice::<FaucetRequest>(body) else {
        return Err(Box::new(bad_request(
            gw,
            endpoint,
            r#"the body must be {"address": "bcrt1…"}"#.into(),
        )));
    };
    let ok = bitcoin::Address::from_str(req.address.trim())
        .ok()
        .and_then(|a| a.require_network(bitcoin::Network::Regtest).ok());
    let Some(address) = ok else {
        return Err(Box::new(bad_request(
            gw,
            endpoint,
            "not a regtest address".into(),
        )));
    };
    let allowed = bucket
        .lock()
        .map(|mut b| b.try_take(&gw.faucet_rate, now_ms()))
        .unwrap_or(false);
    if !allowed {
        return Err(Box::new(refuse(
            gw,
            endpoint,
            "rate_limited",
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the faucet serves {} calls a minute; try again shortly",
                defaults::FAUCET_PER_MINUTE
            ),
        )));
    }
    Ok(address)
}

async fn faucet(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    const E: &str = "faucet";
    let address = match faucet_call(&gw, E, &body) {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    // One block pays the caller; 100 more to the same address make that coinbase spendable.
    match gw
        .rpc
        .call(
            "generatetoaddress",
            json!([defaults::FAUCET_BLOCKS, address.to_string()]),
        )
        .await
    {
        Ok(Value::Array(hashes)) => {
            gw.count(E, "ok");
            (StatusCode::OK, Json(json!({"blocks": hashes.len()}))).into_response()
        }
        Ok(_) => upstream(&gw, E, malformed("generatetoaddress")),
        Err(e) => upstream(&gw, E, e),
    }
}

async fn faucet_runes(State(gw): State<Arc<Gateway>>, body: Bytes) -> Response {
    const E: &str = "faucet_runes";
    let address = match faucet_call(&gw, E, &body) {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    let Some(faucet) = &gw.rune_faucet else {
        return refuse(
            &gw,
            E,
            "unavailable",
            StatusCode::SERVICE_UNAVAILABLE,
            "this relay's rune faucet could not make its key".into(),
        );
    };
    let gift = faucet.lock().await.give(&gw.rpc, &address).await;
    match gift {
        Ok(g) => {
            gw.count(E, "ok");
            answer(StatusCode::OK, "application/json", g.to_json())
        }
        Err(FaucetError::Rpc(e)) => upstream(&gw, E, e),
        Err(e) => {
            gw.count(E, "failed");
            tracing::warn!(error = %e, "chain gateway: the rune faucet failed");
            answer(StatusCode::BAD_GATEWAY, "text/plain", e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(sats(&json!(0.00000001)), Some(1));
        assert_eq!(sats(&json!(50.0)), Some(5_000_000_000));
        // As Core prints it: 8 decimals, near the 21 million cap.
        let near_cap: Value = serde_json::from_str("20999999.97690001").unwrap();
        assert_eq!(sats(&near_cap), Some(2_099_999_997_690_001));
        assert_eq!(sats(&json!(0.1)), Some(10_000_000));
        assert_eq!(sats(&json!(-1)), None);
        assert_eq!(sats(&json!("1")), None);
    }

    #[test]
    fn txids_are_checked() {
        assert!(is_txid(&"ab".repeat(32)));
        assert!(!is_txid(&"ab".repeat(31)));
        assert!(!is_txid(&"zz".repeat(32)));
    }
}
