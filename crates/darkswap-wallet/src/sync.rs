//! Learning the wallet's outputs from the chain, sans-IO: [`Scan`] says which HTTP requests to
//! make (Esplora paths, ord paths) and takes their answers; the page (`fetch`) and the CLI
//! (its HTTP client) carry them out, so the logic and its checks live once, here.
//!
//! The scan: the tip height; then, for each account and chain, addresses from index 0 until
//! [`GAP_LIMIT`] in a row have no history (the first page of Esplora's `/address/{a}/txs`: an
//! address that was paid and emptied counts as used, so it is not handed out again and funds
//! past it are still found); the unspent outputs of each used address; for every listed output
//! its transaction (hashed against
//! its txid, the output checked against the listing); with an ord server, what the output
//! carries (checked against the transaction) and the id of every rune name ord reports. Without
//! ord every output is [`Assets::Unknown`]: balances are shown, but nothing is spent as fee
//! money. An answer that fails a check fails the scan: a half-trusted balance is not shown.

use std::collections::{BTreeMap, VecDeque};

use bitcoin::{Address, OutPoint, Transaction, TxOut, Txid};

use crate::esplora::{self, EsploraError, ListedOutput};
use crate::keys::{Account, Chain, Derived, KeyError, KeyPath, Keychain};
use crate::ord_api::{self, OrdError, OutputAssets, RuneInfo};
use crate::runestone::RuneId;
use crate::utxo::{Assets, Utxo};

/// Empty addresses in a row after which a chain's scan stops (BIP44's gap limit).
pub const GAP_LIMIT: u32 = 20;
/// The most addresses scanned per chain (a bound, whatever the server says).
pub const MAX_INDEX: u32 = 10_000;
/// The most outputs one scan takes in.
pub const MAX_OUTPUTS: usize = 20_000;

/// Which server a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The Esplora-compatible API.
    Esplora,
    /// The ord server.
    Ord,
}

/// One GET to make: `path` on `server`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Which server.
    pub server: Server,
    /// The path (with a leading `/`).
    pub path: String,
}

/// A scan failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// An Esplora answer failed its checks.
    #[error(transparent)]
    Esplora(#[from] EsploraError),
    /// An ord answer failed its checks.
    #[error(transparent)]
    Ord(#[from] OrdError),
    /// Key derivation failed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A server answered with an error status.
    #[error("{} answered HTTP {status} to {path}", match .server { Server::Esplora => "the chain server (Esplora)", Server::Ord => "ord" })]
    Status {
        /// Which server.
        server: Server,
        /// What was asked.
        path: String,
        /// Its status.
        status: u16,
    },
    /// More outputs than [`MAX_OUTPUTS`].
    #[error("more than {MAX_OUTPUTS} outputs")]
    TooManyOutputs,
    /// A history longer than the walk takes in (the cap it was over).
    #[error("more than {0} transactions in the history")]
    TooManyTransactions(usize),
    /// An answer came for no question (a caller bug).
    #[error("an answer to a request that was not asked")]
    Unexpected,
}

#[derive(Debug)]
enum Asked {
    Tip,
    /// Whether the address was ever used (its history's first page).
    History(KeyPath),
    /// Its unspent outputs (asked only of used addresses).
    Address(KeyPath),
    Tx(Txid),
    Output(OutPoint),
    Rune(String),
}

/// One scan of the wallet's addresses.
pub struct Scan {
    with_ord: bool,
    queue: VecDeque<(Request, Asked)>,
    in_flight: Option<Asked>,
    tip: Option<u32>,
    chains: BTreeMap<(Account, Chain), ChainScan>,
    addresses: BTreeMap<KeyPath, Derived>,
    listed: Vec<(KeyPath, ListedOutput)>,
    /// Addresses with a history, spent or not: the gap limit and the next unused address
    /// count these, so an emptied address is neither handed out again nor the end of the scan.
    used: std::collections::BTreeSet<KeyPath>,
    txs: BTreeMap<Txid, Transaction>,
    assets: BTreeMap<OutPoint, OutputAssets>,
    rune_ids: BTreeMap<String, RuneId>,
    rune_info: BTreeMap<RuneId, RuneInfo>,
    asked_runes: std::collections::BTreeSet<String>,
    derived: Vec<Derived>,
}

#[derive(Debug, Default)]
struct ChainScan {
    next: u32,
    empty_run: u32,
    done: bool,
}

impl Scan {
    /// A scan of every address of `keys`, with ord when `with_ord`.
    pub fn new(keys: &Keychain, with_ord: bool) -> Result<Scan, SyncError> {
        let mut s = Scan {
            with_ord,
            queue: VecDeque::new(),
            in_flight: None,
            tip: None,
            chains: BTreeMap::new(),
            addresses: BTreeMap::new(),
            listed: Vec::new(),
            used: Default::default(),
            txs: BTreeMap::new(),
            assets: BTreeMap::new(),
            rune_ids: BTreeMap::new(),
            rune_info: BTreeMap::new(),
            asked_runes: Default::default(),
            derived: Vec::new(),
        };
        s.queue.push_back((
            Request {
                server: Server::Esplora,
                path: "/blocks/tip/height".into(),
            },
            Asked::Tip,
        ));
        for account in [Account::Payment, Account::Runes] {
            for chain in [Chain::External, Chain::Internal] {
                s.chains.insert((account, chain), ChainScan::default());
                // Derive the first gap's worth now: deriving needs the keys, answers do not.
                for index in 0..GAP_LIMIT {
                    let path = KeyPath {
                        account,
                        chain,
                        index,
                    };
                    s.derive_into(keys, path)?;
                }
            }
        }
        Ok(s)
    }

    fn derive_into(&mut self, keys: &Keychain, path: KeyPath) -> Result<(), SyncError> {
        if !self.addresses.contains_key(&path) {
            let d = keys.derive(path)?;
            self.derived.push(d.clone());
            self.addresses.insert(path, d);
        }
        Ok(())
    }

    /// Derives the addresses the next answers will ask for (call between answers; the page and
    /// the CLI hold the keychain only while unlocked).
    pub fn derive_ahead(&mut self, keys: &Keychain) -> Result<(), SyncError> {
        let wanted: Vec<KeyPath> = self
            .chains
            .iter()
            .filter(|(_, c)| !c.done)
            .flat_map(|((account, chain), c)| {
                (c.next..(c.next + GAP_LIMIT).min(MAX_INDEX)).map(move |index| KeyPath {
                    account: *account,
                    chain: *chain,
                    index,
                })
            })
            .collect();
        for path in wanted {
            self.derive_into(keys, path)?;
        }
        Ok(())
    }

    /// The next request, or `None` when the scan is complete ([`Scan::finish`]).
    pub fn next_request(&mut self) -> Option<Request> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.queue.is_empty() {
            self.plan_addresses();
        }
        let (req, asked) = self.queue.pop_front()?;
        self.in_flight = Some(asked);
        Some(req)
    }

    fn plan_addresses(&mut self) {
        if self.tip.is_none() {
            return;
        }
        let next = self
            .chains
            .iter()
            .find(|(_, c)| !c.done)
            .map(|(k, c)| (*k, c.next));
        if let Some(((account, chain), index)) = next {
            let path = KeyPath {
                account,
                chain,
                index,
            };
            if let Some(d) = self.addresses.get(&path) {
                self.queue.push_back((
                    Request {
                        server: Server::Esplora,
                        path: esplora::txs_path(&d.address),
                    },
                    Asked::History(path),
                ));
            }
        }
    }

    /// The answer to the last request: its HTTP status and body.
    pub fn on_answer(&mut self, status: u16, body: &[u8]) -> Result<(), SyncError> {
        let asked = self.in_flight.take().ok_or(SyncError::Unexpected)?;
        let server = match asked {
            Asked::Output(_) | Asked::Rune(_) => Server::Ord,
            _ => Server::Esplora,
        };
        if status != 200 {
            return Err(SyncError::Status {
                server,
                path: format!("{asked:?}"),
                status,
            });
        }
        match asked {
            Asked::Tip => self.tip = Some(esplora::parse_tip_height(body)?),
            Asked::History(path) => {
                let used = !esplora::parse_address_txs(body)?.is_empty();
                let chain = self
                    .chains
                    .get_mut(&(path.account, path.chain))
                    .ok_or(SyncError::Unexpected)?;
                if used {
                    chain.empty_run = 0;
                } else {
                    chain.empty_run += 1;
                }
                chain.next = path.index + 1;
                if chain.empty_run >= GAP_LIMIT || chain.next >= MAX_INDEX {
                    chain.done = true;
                }
                if used {
                    self.used.insert(path);
                    let d = self.addresses.get(&path).ok_or(SyncError::Unexpected)?;
                    self.queue.push_back((
                        Request {
                            server: Server::Esplora,
                            path: esplora::utxo_path(&d.address),
                        },
                        Asked::Address(path),
                    ));
                }
            }
            Asked::Address(path) => {
                let listed = esplora::parse_utxos(body)?;
                for l in listed {
                    if self.listed.len() >= MAX_OUTPUTS {
                        return Err(SyncError::TooManyOutputs);
                    }
                    if !self.txs.contains_key(&l.outpoint.txid)
                        && !self
                            .queue
                            .iter()
                            .any(|(_, a)| matches!(a, Asked::Tx(t) if *t == l.outpoint.txid))
                    {
                        self.queue.push_back((
                            Request {
                                server: Server::Esplora,
                                path: esplora::tx_hex_path(&l.outpoint.txid),
                            },
                            Asked::Tx(l.outpoint.txid),
                        ));
                    }
                    if self.with_ord {
                        self.queue.push_back((
                            Request {
                                server: Server::Ord,
                                path: ord_api::output_path(&l.outpoint),
                            },
                            Asked::Output(l.outpoint),
                        ));
                    }
                    self.listed.push((path, l));
                }
            }
            Asked::Tx(txid) => {
                let tx = esplora::parse_tx_hex(body, txid)?;
                self.txs.insert(txid, tx);
            }
            Asked::Output(outpoint) => {
                let txout = self.txout(outpoint).ok_or(SyncError::Unexpected)?;
                let assets = ord_api::parse_output(body, outpoint, &txout)?;
                for (name, _) in assets.runes.iter().flatten() {
                    if !self.rune_ids.contains_key(name) && self.asked_runes.insert(name.clone()) {
                        self.queue.push_back((
                            Request {
                                server: Server::Ord,
                                path: format!("/rune/{}", name.replace('•', "")),
                            },
                            Asked::Rune(name.clone()),
                        ));
                    }
                }
                self.assets.insert(outpoint, assets);
            }
            Asked::Rune(name) => {
                let info = ord_api::parse_rune(body)?;
                if info.spaced_name != name {
                    return Err(OrdError::Malformed("rune name").into());
                }
                self.rune_ids.insert(name, info.id);
                self.rune_info.insert(info.id, info);
            }
        }
        Ok(())
    }

    /// An output's value and script, from its checked transaction. Transactions are asked
    /// before the outputs' ord answers, so it is there when ord's answer comes.
    fn txout(&self, outpoint: OutPoint) -> Option<TxOut> {
        self.txs
            .get(&outpoint.txid)?
            .output
            .get(outpoint.vout as usize)
            .cloned()
    }

    /// Each rune the wallet's outputs carry, with its name and divisibility as ord reports them
    /// (what balances are written in; read before [`Scan::finish`]).
    pub fn runes(&self) -> BTreeMap<RuneId, RuneInfo> {
        self.rune_info.clone()
    }

    /// The chain tip the scan saw.
    pub fn tip(&self) -> Option<u32> {
        self.tip
    }

    /// The wallet's outputs, every listing checked against its transaction and address.
    pub fn finish(self) -> Result<Vec<Utxo>, SyncError> {
        let tip = self.tip.ok_or(SyncError::Unexpected)?;
        let mut out = Vec::with_capacity(self.listed.len());
        for (path, listed) in &self.listed {
            let d = self.addresses.get(path).ok_or(SyncError::Unexpected)?;
            let tx = self
                .txs
                .get(&listed.outpoint.txid)
                .ok_or(SyncError::Unexpected)?;
            esplora::check_listed(listed, tx, &d.address)?;
            let confirmations = listed
                .height
                .map(|h| tip.saturating_add(1).saturating_sub(h))
                .unwrap_or(0);
            // An immature coinbase cannot be spent; it is not the wallet's to use yet.
            if tx.is_coinbase() && confirmations < 100 {
                continue;
            }
            let assets = match self.assets.get(&listed.outpoint) {
                Some(a) => a.to_assets(&self.rune_ids)?,
                None => Assets::Unknown,
            };
            out.push(Utxo {
                outpoint: listed.outpoint,
                txout: TxOut {
                    value: listed.value,
                    script_pubkey: d.script_pubkey.clone(),
                },
                path: *path,
                confirmations,
                assets,
            });
        }
        Ok(out)
    }

    /// The address of `account`'s `chain` after the last one with a history, after the scan.
    pub fn first_unused(&self, account: Account, chain: Chain) -> u32 {
        let used = self
            .used
            .iter()
            .filter(|p| p.account == account && p.chain == chain)
            .map(|p| p.index + 1)
            .max();
        used.unwrap_or(0)
    }

    /// The address at `path`, if the scan derived it.
    pub fn address(&self, path: &KeyPath) -> Option<&Address> {
        self.addresses.get(path).map(|d| &d.address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keychain;
    use bitcoin::absolute::LockTime;
    use bitcoin::consensus::encode::serialize_hex;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, Sequence, TxIn, Witness};

    fn keys() -> Keychain {
        crate::keys::tests::regtest_keys()
    }

    fn paying(script: ScriptBuf, sats: u64) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_raw_hash(bitcoin::hashes::Hash::all_zeros()),
                    vout: 7,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: vec![TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: script,
            }],
        }
    }

    /// An in-memory Esplora for these unit tests, answering from transactions built here
    /// (`spent`: addresses whose history holds a transaction and no unspent output).
    fn serve(
        scan: &mut Scan,
        k: &Keychain,
        chain_txs: &BTreeMap<String, (Transaction, u32)>,
        spent: &[String],
    ) -> Result<(), SyncError> {
        while let Some(req) = scan.next_request() {
            let (status, body) = match (req.server, req.path.as_str()) {
                (Server::Esplora, "/blocks/tip/height") => (200, "200".to_string()),
                (Server::Esplora, p) if p.starts_with("/address/") && p.ends_with("/txs") => {
                    let addr = p.trim_start_matches("/address/").trim_end_matches("/txs");
                    let had = chain_txs.contains_key(addr) || spent.iter().any(|s| s == addr);
                    let entry = format!(
                        r#"{{"txid":"{}","status":{{"confirmed":true,"block_height":100}}}}"#,
                        "ab".repeat(32)
                    );
                    (
                        200,
                        if had {
                            format!("[{entry}]")
                        } else {
                            "[]".into()
                        },
                    )
                }
                (Server::Esplora, p) if p.starts_with("/address/") => {
                    let addr = p.trim_start_matches("/address/").trim_end_matches("/utxo");
                    let list: Vec<String> = chain_txs
                        .iter()
                        .filter(|(a, _)| a.as_str() == addr)
                        .map(|(_, (tx, h))| format!(r#"{{"txid":"{}","vout":0,"value":{},"status":{{"confirmed":true,"block_height":{h}}}}}"#, tx.compute_txid(), tx.output[0].value.to_sat()))
                        .collect();
                    (200, format!("[{}]", list.join(",")))
                }
                (Server::Esplora, p) if p.starts_with("/tx/") => {
                    let txid = p.trim_start_matches("/tx/").trim_end_matches("/hex");
                    let tx = chain_txs
                        .values()
                        .find(|(t, _)| t.compute_txid().to_string() == txid)
                        .map(|(t, _)| t.clone());
                    match tx {
                        Some(t) => (200, serialize_hex(&t)),
                        None => (404, String::new()),
                    }
                }
                _ => (404, String::new()),
            };
            scan.on_answer(status, body.as_bytes())?;
            scan.derive_ahead(k)?;
        }
        Ok(())
    }

    #[test]
    fn a_scan_finds_outputs_past_gaps_and_stops_at_the_gap_limit() {
        let k = keys();
        let mut txs = BTreeMap::new();
        for (path, sats) in [
            (KeyPath::receive(Account::Payment, 0), 1_000),
            (KeyPath::receive(Account::Payment, 15), 2_000),
            (KeyPath::receive(Account::Payment, 30), 3_000),
            (KeyPath::change(Account::Runes, 2), 546),
        ] {
            let d = k.derive(path).unwrap();
            txs.insert(d.address.to_string(), (paying(d.script_pubkey, sats), 150));
        }
        let mut scan = Scan::new(&k, false).unwrap();
        serve(&mut scan, &k, &txs, &[]).unwrap();
        assert_eq!(scan.first_unused(Account::Payment, Chain::External), 31);
        let utxos = scan.finish().unwrap();
        let mut values: Vec<u64> = utxos.iter().map(|u| u.txout.value.to_sat()).collect();
        values.sort();
        assert_eq!(values, vec![546, 1_000, 2_000, 3_000]);
        assert!(utxos.iter().all(|u| u.confirmations == 51));
        assert!(
            utxos.iter().all(|u| u.assets == Assets::Unknown),
            "no ord: unknown"
        );
    }

    #[test]
    fn an_emptied_address_counts_as_used() {
        // Addresses 0..=19 were paid and emptied; 25 holds coins. A scan that counted only
        // unspent outputs would stop at 20 and hand out address 0 again.
        let k = keys();
        let spent: Vec<String> = (0..20)
            .map(|i| {
                k.derive(KeyPath::receive(Account::Payment, i))
                    .unwrap()
                    .address
                    .to_string()
            })
            .collect();
        let d = k.derive(KeyPath::receive(Account::Payment, 25)).unwrap();
        let mut txs = BTreeMap::new();
        txs.insert(d.address.to_string(), (paying(d.script_pubkey, 7_000), 150));
        let mut scan = Scan::new(&k, false).unwrap();
        serve(&mut scan, &k, &txs, &spent).unwrap();
        assert_eq!(scan.first_unused(Account::Payment, Chain::External), 26);
        let utxos = scan.finish().unwrap();
        assert_eq!(utxos.len(), 1);
        assert_eq!(utxos[0].txout.value.to_sat(), 7_000);
    }

    #[test]
    fn a_lying_listing_fails_the_scan() {
        let k = keys();
        let d = k.derive(KeyPath::receive(Account::Payment, 0)).unwrap();
        let mut txs = BTreeMap::new();
        // The transaction pays another script than the address's.
        txs.insert(
            d.address.to_string(),
            (paying(ScriptBuf::new(), 1_000), 150),
        );
        let mut scan = Scan::new(&k, false).unwrap();
        serve(&mut scan, &k, &txs, &[]).unwrap();
        assert!(matches!(
            scan.finish(),
            Err(SyncError::Esplora(EsploraError::NotThisAddress(_)))
        ));
    }

    #[test]
    fn an_error_status_fails_the_scan() {
        let k = keys();
        let mut scan = Scan::new(&k, false).unwrap();
        let first = scan.next_request().unwrap();
        assert_eq!(first.path, "/blocks/tip/height");
        assert!(scan.next_request().is_none(), "one request at a time");
        assert!(matches!(
            scan.on_answer(503, b""),
            Err(SyncError::Status { status: 503, .. })
        ));
        assert!(matches!(
            scan.on_answer(200, b"1"),
            Err(SyncError::Unexpected)
        ));
    }
}
