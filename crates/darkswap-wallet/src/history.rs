//! The wallet's transaction history, sans-IO like [`crate::sync`]: [`HistoryScan`] walks each
//! account's addresses through Esplora's `/address/{addr}/txs` (and its next pages) until
//! [`GAP_LIMIT`] addresses in a row have no history, fetches every transaction's bytes (hashed
//! against its txid), and works out what each did to the wallet from the bytes alone: what its
//! outputs paid to the wallet's scripts, what its inputs spent of the wallet's outputs (their
//! values read from the spent transactions, which are in the history too), and the fee when
//! every input was the wallet's. Only confirmation heights are the server's word.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bitcoin::{Address, Amount, ScriptBuf, SignedAmount, Transaction, Txid};

use crate::esplora::{self, ListedTx, TXS_PAGE};
use crate::keys::{Account, Chain, KeyPath, Keychain};
use crate::sync::{Request, Server, SyncError, GAP_LIMIT, MAX_INDEX};

/// The most transactions one history holds.
pub const MAX_HISTORY: usize = 5_000;
/// The most pages read for one address: enough for [`MAX_HISTORY`] transactions; an address
/// with more fails the walk (it is never cut short in silence).
pub const MAX_PAGES_PER_ADDRESS: usize = MAX_HISTORY / TXS_PAGE + 1;

/// One transaction and what it did to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its id.
    pub txid: Txid,
    /// Confirmations at the scan's tip (0: in the mempool).
    pub confirmations: u32,
    /// What its outputs paid to the wallet.
    pub received: Amount,
    /// What its inputs spent of the wallet's outputs.
    pub spent: Amount,
    /// Its fee, when every input was the wallet's (then the wallet paid it).
    pub fee: Option<Amount>,
}

impl Entry {
    /// The change to the wallet's bitcoin: received less spent.
    pub fn net(&self) -> SignedAmount {
        let r = self.received.to_signed().unwrap_or(SignedAmount::MAX);
        let s = self.spent.to_signed().unwrap_or(SignedAmount::MAX);
        r - s
    }
}

#[derive(Debug)]
enum Asked {
    Tip,
    Page(KeyPath),
    Tx(Txid),
}

/// One walk through the wallet's history.
pub struct HistoryScan {
    queue: VecDeque<(Request, Asked)>,
    in_flight: Option<Asked>,
    tip: Option<u32>,
    /// Per (account, chain): the next index and the run of empty addresses.
    chains: BTreeMap<(Account, Chain), (u32, u32)>,
    addresses: BTreeMap<KeyPath, Address>,
    scripts: BTreeSet<ScriptBuf>,
    pages: BTreeMap<KeyPath, usize>,
    /// Addresses whose history is not empty.
    used: BTreeSet<KeyPath>,
    heights: BTreeMap<Txid, Option<u32>>,
    txs: BTreeMap<Txid, Transaction>,
}

impl HistoryScan {
    /// A walk through every account and chain of `keys`.
    pub fn new(keys: &Keychain) -> Result<HistoryScan, SyncError> {
        let mut chains = BTreeMap::new();
        for account in [Account::Payment, Account::Runes] {
            for chain in [Chain::External, Chain::Internal] {
                chains.insert((account, chain), (0, 0));
            }
        }
        let mut h = HistoryScan {
            queue: VecDeque::new(),
            in_flight: None,
            tip: None,
            chains,
            addresses: BTreeMap::new(),
            scripts: BTreeSet::new(),
            pages: BTreeMap::new(),
            used: BTreeSet::new(),
            heights: BTreeMap::new(),
            txs: BTreeMap::new(),
        };
        h.queue.push_back((
            Request {
                server: Server::Esplora,
                path: "/blocks/tip/height".into(),
            },
            Asked::Tip,
        ));
        // Deriving needs the keys: the first gap of every chain now, the rest as it is reached.
        h.derive_ahead(keys)?;
        Ok(h)
    }

    /// Derives the addresses the next answers may ask for (call between answers).
    pub fn derive_ahead(&mut self, keys: &Keychain) -> Result<(), SyncError> {
        let wanted: Vec<KeyPath> = self
            .chains
            .iter()
            .filter(|(_, (_, empty))| *empty < GAP_LIMIT)
            .flat_map(|((account, chain), (next, _))| {
                (*next..(*next + GAP_LIMIT).min(MAX_INDEX)).map(move |index| KeyPath {
                    account: *account,
                    chain: *chain,
                    index,
                })
            })
            .collect();
        for path in wanted {
            if !self.addresses.contains_key(&path) {
                let d = keys.derive(path)?;
                self.scripts.insert(d.script_pubkey);
                self.addresses.insert(path, d.address);
            }
        }
        Ok(())
    }

    /// The next request, or `None` when the walk is complete ([`HistoryScan::finish`]).
    pub fn next_request(&mut self) -> Option<Request> {
        if self.in_flight.is_some() {
            return None;
        }
        if self.queue.is_empty() && self.tip.is_some() {
            self.plan_next_address();
        }
        let (req, asked) = self.queue.pop_front()?;
        self.in_flight = Some(asked);
        Some(req)
    }

    fn plan_next_address(&mut self) {
        let next = self
            .chains
            .iter()
            .find(|(_, (next, empty))| *empty < GAP_LIMIT && *next < MAX_INDEX)
            .map(|((account, chain), (next, _))| KeyPath {
                account: *account,
                chain: *chain,
                index: *next,
            });
        if let Some(path) = next {
            if let Some(a) = self.addresses.get(&path) {
                self.queue.push_back((
                    Request {
                        server: Server::Esplora,
                        path: esplora::txs_path(a),
                    },
                    Asked::Page(path),
                ));
            }
        }
    }

    /// The answer to the last request: its HTTP status and body.
    pub fn on_answer(&mut self, status: u16, body: &[u8]) -> Result<(), SyncError> {
        let asked = self.in_flight.take().ok_or(SyncError::Unexpected)?;
        if status != 200 {
            return Err(SyncError::Status {
                server: Server::Esplora,
                path: format!("{asked:?}"),
                status,
            });
        }
        match asked {
            Asked::Tip => self.tip = Some(esplora::parse_tip_height(body)?),
            Asked::Page(path) => {
                let listed = esplora::parse_address_txs(body)?;
                self.on_page(path, &listed)?;
            }
            Asked::Tx(txid) => {
                let tx = esplora::parse_tx_hex(body, txid)?;
                self.txs.insert(txid, tx);
            }
        }
        Ok(())
    }

    fn on_page(&mut self, path: KeyPath, listed: &[ListedTx]) -> Result<(), SyncError> {
        let pages = self.pages.entry(path).or_insert(0);
        *pages += 1;
        let first_page = *pages == 1;
        let pages = *pages;
        for l in listed {
            if !self.heights.contains_key(&l.txid) {
                if self.heights.len() >= MAX_HISTORY {
                    return Err(SyncError::TooManyTransactions(MAX_HISTORY));
                }
                self.queue.push_back((
                    Request {
                        server: Server::Esplora,
                        path: esplora::tx_hex_path(&l.txid),
                    },
                    Asked::Tx(l.txid),
                ));
            }
            self.heights.insert(l.txid, l.height);
        }
        // A full page of confirmed transactions may have a next one.
        let confirmed: Vec<&ListedTx> = listed.iter().filter(|l| l.height.is_some()).collect();
        if confirmed.len() >= TXS_PAGE {
            if pages >= MAX_PAGES_PER_ADDRESS {
                return Err(SyncError::TooManyTransactions(MAX_HISTORY));
            }
            if let (Some(last), Some(a)) = (confirmed.last(), self.addresses.get(&path)) {
                self.queue.push_back((
                    Request {
                        server: Server::Esplora,
                        path: esplora::txs_chain_path(a, &last.txid),
                    },
                    Asked::Page(path),
                ));
                return Ok(());
            }
        }
        let chain = self
            .chains
            .get_mut(&(path.account, path.chain))
            .ok_or(SyncError::Unexpected)?;
        let used = !(first_page && listed.is_empty());
        if used {
            self.used.insert(path);
        }
        chain.0 = path.index + 1;
        chain.1 = if used { 0 } else { chain.1 + 1 };
        Ok(())
    }

    /// The first index of `account`'s `chain` with no history, after the walk: where the next
    /// receiving address is, even when everything sent to the earlier ones was spent.
    pub fn first_unused(&self, account: Account, chain: Chain) -> u32 {
        self.used
            .iter()
            .filter(|p| p.account == account && p.chain == chain)
            .map(|p| p.index + 1)
            .max()
            .unwrap_or(0)
    }

    /// The history, newest first (the mempool's first), each transaction's effect worked out
    /// from its bytes.
    pub fn finish(self) -> Result<Vec<Entry>, SyncError> {
        let tip = self.tip.ok_or(SyncError::Unexpected)?;
        let mut out = Vec::with_capacity(self.heights.len());
        for (txid, height) in &self.heights {
            let tx = self.txs.get(txid).ok_or(SyncError::Unexpected)?;
            let received: Amount = tx
                .output
                .iter()
                .filter(|o| self.scripts.contains(&o.script_pubkey))
                .map(|o| o.value)
                .sum();
            let mut spent = Amount::ZERO;
            let mut all_ours = !tx.is_coinbase();
            let mut inputs = Amount::ZERO;
            for input in &tx.input {
                let prev = self
                    .txs
                    .get(&input.previous_output.txid)
                    .and_then(|p| p.output.get(input.previous_output.vout as usize))
                    .filter(|o| self.scripts.contains(&o.script_pubkey));
                match prev {
                    Some(o) => {
                        spent += o.value;
                        inputs += o.value;
                    }
                    None => all_ours = false,
                }
            }
            let outputs: Amount = tx.output.iter().map(|o| o.value).sum();
            let fee = if all_ours {
                inputs.checked_sub(outputs)
            } else {
                None
            };
            let confirmations = height
                .map(|h| tip.saturating_add(1).saturating_sub(h))
                .unwrap_or(0);
            out.push(Entry {
                txid: *txid,
                confirmations,
                received,
                spent,
                fee,
            });
        }
        // Unconfirmed first, then the most recent blocks.
        out.sort_by_key(|e| (e.confirmations != 0, e.confirmations, e.txid));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::consensus::encode::serialize_hex;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{OutPoint, Sequence, TxIn, TxOut, Witness};

    fn keys() -> Keychain {
        crate::keys::tests::regtest_keys()
    }

    fn tx(inputs: &[OutPoint], outputs: &[(ScriptBuf, u64)]) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: inputs
                .iter()
                .map(|p| TxIn {
                    previous_output: *p,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                })
                .collect(),
            output: outputs
                .iter()
                .map(|(s, v)| TxOut {
                    value: Amount::from_sat(*v),
                    script_pubkey: s.clone(),
                })
                .collect(),
        }
    }

    /// An in-memory Esplora: each transaction with its height, listed for every script it pays
    /// or spends from; pages of `page` confirmed transactions.
    fn serve(h: &mut HistoryScan, k: &Keychain, chain: &[(Transaction, Option<u32>)], page: usize) {
        let by_txid: BTreeMap<Txid, &Transaction> =
            chain.iter().map(|(t, _)| (t.compute_txid(), t)).collect();
        let touches = |t: &Transaction, script: &ScriptBuf| {
            t.output.iter().any(|o| &o.script_pubkey == script)
                || t.input.iter().any(|i| {
                    by_txid
                        .get(&i.previous_output.txid)
                        .and_then(|p| p.output.get(i.previous_output.vout as usize))
                        .is_some_and(|o| &o.script_pubkey == script)
                })
        };
        while let Some(req) = h.next_request() {
            let (status, body) = if req.path == "/blocks/tip/height" {
                (200, "300".to_string())
            } else if let Some(rest) = req.path.strip_prefix("/address/") {
                let (addr, after) = match rest.split_once("/txs/chain/") {
                    Some((a, last)) => (a, Some(last.to_string())),
                    None => (rest.trim_end_matches("/txs"), None),
                };
                let script = addr
                    .parse::<Address<bitcoin::address::NetworkUnchecked>>()
                    .unwrap()
                    .assume_checked()
                    .script_pubkey();
                // Newest first.
                let mut mine: Vec<&(Transaction, Option<u32>)> =
                    chain.iter().filter(|(t, _)| touches(t, &script)).collect();
                mine.sort_by_key(|(_, height)| std::cmp::Reverse(height.unwrap_or(u32::MAX)));
                let mut listed: Vec<&(Transaction, Option<u32>)> = match &after {
                    None => mine.iter().filter(|(_, h)| h.is_none()).copied().collect(),
                    Some(_) => Vec::new(),
                };
                let confirmed: Vec<_> = mine.iter().filter(|(_, h)| h.is_some()).collect();
                let start = match &after {
                    None => 0,
                    Some(last) => {
                        confirmed
                            .iter()
                            .position(|(t, _)| t.compute_txid().to_string() == *last)
                            .unwrap()
                            + 1
                    }
                };
                listed.extend(confirmed.iter().skip(start).take(page).map(|x| **x));
                let items: Vec<String> = listed
                    .iter()
                    .map(|(t, height)| match height {
                        Some(hh) => format!(
                            r#"{{"txid":"{}","status":{{"confirmed":true,"block_height":{hh}}}}}"#,
                            t.compute_txid()
                        ),
                        None => format!(
                            r#"{{"txid":"{}","status":{{"confirmed":false}}}}"#,
                            t.compute_txid()
                        ),
                    })
                    .collect();
                (200, format!("[{}]", items.join(",")))
            } else if let Some(txid) = req
                .path
                .strip_prefix("/tx/")
                .and_then(|p| p.strip_suffix("/hex"))
            {
                let t = by_txid[&txid.parse::<Txid>().unwrap()];
                (200, serialize_hex(t))
            } else {
                (404, String::new())
            };
            h.on_answer(status, body.as_bytes()).unwrap();
            h.derive_ahead(k).unwrap();
        }
    }

    #[test]
    fn a_history_says_what_each_transaction_did_from_its_bytes() {
        let k = keys();
        let script = |p: KeyPath| k.derive(p).unwrap().script_pubkey;
        let (pay0, pay15) = (
            script(KeyPath::receive(Account::Payment, 0)),
            script(KeyPath::receive(Account::Payment, 15)),
        );
        let change0 = script(KeyPath::change(Account::Payment, 0));
        let stranger = ScriptBuf::from_hex("0014751e76e8199196d454941c45d1b3a323f1433bd6").unwrap();
        let outside = OutPoint {
            txid: Txid::from_byte_array([7; 32]),
            vout: 0,
        };
        // A stranger pays 10,000 to address 0; we spend it all: 6,000 out, 3,500 change, fee 500.
        let funding = tx(&[outside], &[(pay0.clone(), 10_000)]);
        let spend = tx(
            &[OutPoint {
                txid: funding.compute_txid(),
                vout: 0,
            }],
            &[(stranger.clone(), 6_000), (change0.clone(), 3_500)],
        );
        // Past a gap of 14 empty addresses: 2,000 to address 15, still in the mempool.
        let late = tx(&[outside], &[(pay15, 2_000), (stranger, 1)]);
        let chain = vec![
            (funding.clone(), Some(101)),
            (spend.clone(), Some(150)),
            (late.clone(), None),
        ];
        let mut h = HistoryScan::new(&k).unwrap();
        serve(&mut h, &k, &chain, TXS_PAGE);
        assert_eq!(h.first_unused(Account::Payment, Chain::External), 16);
        assert_eq!(h.first_unused(Account::Payment, Chain::Internal), 1);
        let entries = h.finish().unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[0].txid, late.compute_txid());
        assert_eq!(entries[0].confirmations, 0);
        assert_eq!(entries[0].net(), SignedAmount::from_sat(2_000));
        assert_eq!(entries[0].fee, None, "a stranger's inputs: not our fee");
        assert_eq!(entries[1].txid, spend.compute_txid());
        assert_eq!(entries[1].confirmations, 151);
        assert_eq!(entries[1].spent, Amount::from_sat(10_000));
        assert_eq!(entries[1].received, Amount::from_sat(3_500));
        assert_eq!(entries[1].net(), SignedAmount::from_sat(-6_500));
        assert_eq!(entries[1].fee, Some(Amount::from_sat(500)));
        assert_eq!(entries[2].confirmations, 200);
        assert_eq!(entries[2].net(), SignedAmount::from_sat(10_000));
    }

    #[test]
    fn long_histories_are_read_page_by_page() {
        let k = keys();
        let pay0 = k
            .derive(KeyPath::receive(Account::Payment, 0))
            .unwrap()
            .script_pubkey;
        let chain: Vec<(Transaction, Option<u32>)> = (0..7u8)
            .map(|i| {
                let from = OutPoint {
                    txid: Txid::from_byte_array([i; 32]),
                    vout: 0,
                };
                (
                    tx(&[from], &[(pay0.clone(), 1_000 + u64::from(i))]),
                    Some(10 + u32::from(i)),
                )
            })
            .collect();
        // Pages of 3 where the scan expects Esplora's 25: only the first page is read.
        let mut short = HistoryScan::new(&k).unwrap();
        serve(&mut short, &k, &chain, 3);
        assert_eq!(short.finish().unwrap().len(), 3);
        // Pages of 25 hold all 7.
        let mut full = HistoryScan::new(&k).unwrap();
        serve(&mut full, &k, &chain, TXS_PAGE);
        let entries = full.finish().unwrap();
        assert_eq!(entries.len(), 7);
        assert!(entries
            .windows(2)
            .all(|w| w[0].confirmations <= w[1].confirmations));
    }

    #[test]
    fn a_server_that_pages_forever_fails_the_walk_instead_of_cutting_it_short() {
        let k = keys();
        let pay0 = k
            .derive(KeyPath::receive(Account::Payment, 0))
            .unwrap()
            .script_pubkey;
        let txs: Vec<Transaction> = (0..TXS_PAGE as u8)
            .map(|i| {
                let from = OutPoint {
                    txid: Txid::from_byte_array([i; 32]),
                    vout: 0,
                };
                tx(&[from], &[(pay0.clone(), 1_000)])
            })
            .collect();
        // Every page full, every "next" page the same one.
        let page = format!(
            "[{}]",
            txs.iter()
                .map(|t| format!(
                    r#"{{"txid":"{}","status":{{"confirmed":true,"block_height":5}}}}"#,
                    t.compute_txid()
                ))
                .collect::<Vec<_>>()
                .join(",")
        );
        let mut h = HistoryScan::new(&k).unwrap();
        let mut pages = 0;
        let outcome = loop {
            let Some(req) = h.next_request() else {
                break Ok(());
            };
            let body = if req.path == "/blocks/tip/height" {
                "10".to_string()
            } else if req.path.ends_with("/hex") {
                let txid: Txid = req.path[4..68].parse().unwrap();
                serialize_hex(txs.iter().find(|t| t.compute_txid() == txid).unwrap())
            } else {
                pages += 1;
                page.clone()
            };
            if let Err(e) = h.on_answer(200, body.as_bytes()) {
                break Err(e);
            }
        };
        assert!(matches!(
            outcome,
            Err(SyncError::TooManyTransactions(MAX_HISTORY))
        ));
        assert_eq!(pages, MAX_PAGES_PER_ADDRESS);
    }

    #[test]
    fn a_wrong_transaction_or_status_fails_the_walk() {
        let k = keys();
        let mut h = HistoryScan::new(&k).unwrap();
        let first = h.next_request().unwrap();
        assert_eq!(first.path, "/blocks/tip/height");
        h.on_answer(200, b"10").unwrap();
        let page = h.next_request().unwrap();
        let other = tx(
            &[OutPoint {
                txid: Txid::from_byte_array([2; 32]),
                vout: 0,
            }],
            &[(ScriptBuf::new(), 1)],
        );
        let listed = format!(
            r#"[{{"txid":"{}","status":{{"confirmed":true,"block_height":3}}}}]"#,
            Txid::from_byte_array([1; 32])
        );
        assert!(page.path.ends_with("/txs"));
        h.on_answer(200, listed.as_bytes()).unwrap();
        let hex = h.next_request().unwrap();
        assert!(hex.path.ends_with("/hex"));
        // The bytes of another transaction than the one listed.
        assert!(matches!(
            h.on_answer(200, serialize_hex(&other).as_bytes()),
            Err(SyncError::Esplora(
                esplora::EsploraError::WrongTransaction { .. }
            ))
        ));
        let mut h = HistoryScan::new(&k).unwrap();
        h.next_request().unwrap();
        assert!(matches!(
            h.on_answer(500, b""),
            Err(SyncError::Status { status: 500, .. })
        ));
    }
}
