//! What a settlement asks of the chain servers, as sans-IO plans: each hands out one GET at a
//! time ([`Request`]), reads its answer, and ends in what the machine takes.
//!
//! - [`Lookup`]: the other side's offered outputs (their transaction from the Esplora API,
//!   whether they are spent, what ord says they hold, rune names turned into ids) →
//!   [`Found`]s for [`crate::Settlement::on_lookups`];
//! - [`Watch`]: the swap on the chain (each input spent or not, asked first; then the swap's
//!   status and, once it is in a block, the tip height) → a [`ChainStatus`] for
//!   [`crate::Settlement::on_chain`].
//!
//! The same plans serve the page (fetch) and the CLI (a blocking client).

use std::collections::{BTreeMap, VecDeque};

use bitcoin::{OutPoint, Transaction, Txid};
use darkswap_wallet::esplora::{
    outspend_path, parse_outspend, parse_tip_height, parse_tx_hex, parse_tx_status, tx_hex_path,
    tx_status_path, EsploraError,
};
use darkswap_wallet::ord_api::{output_path, parse_output, parse_rune, OrdError, OutputAssets};
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::sync::{Request, Server};
use darkswap_wallet::utxo::Assets;

use crate::machine::{ChainStatus, Found};

/// The most outputs one lookup takes (an offer holds at most 16).
pub const MAX_LOOKUP_OUTPUTS: usize = darkswap_proto::settle::MAX_OFFER_INPUTS;

/// Why a plan stopped: a server's answer that is not one (the caller tries again later; the
/// settlement's own deadline bounds how long).
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The Esplora API answered something unreadable.
    #[error("the chain API's answer was refused: {0}")]
    Esplora(#[from] EsploraError),
    /// ord answered something unreadable.
    #[error("ord's answer was refused: {0}")]
    Ord(#[from] OrdError),
    /// A status neither success nor "not found".
    #[error("{server} answered HTTP {status} to {path}")]
    Status {
        /// Which server.
        server: &'static str,
        /// The path asked.
        path: String,
        /// The HTTP status.
        status: u16,
    },
    /// An answer came when none was asked for.
    #[error("an answer came when none was asked for")]
    Unasked,
}

fn server_name(s: Server) -> &'static str {
    match s {
        Server::Esplora => "the chain API",
        Server::Ord => "ord",
    }
}

/// Percent-encodes a path segment (rune names carry `•` spacers).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn status_error(req: &Request, status: u16) -> ChainError {
    ChainError::Status {
        server: server_name(req.server),
        path: req.path.clone(),
        status,
    }
}

/// Where the lookup of one output stands.
#[derive(Debug)]
enum Stage {
    /// Its transaction is asked.
    Tx,
    /// Whether it is spent is asked.
    Spent(Transaction),
    /// What ord says it holds is asked.
    Held(Transaction, bool),
    /// Rune names ord used are being resolved to ids.
    Names(Transaction, bool, OutputAssets, Vec<String>),
}

/// Looks up the other side's offered outputs.
#[derive(Debug)]
pub struct Lookup {
    todo: VecDeque<OutPoint>,
    current: Option<(OutPoint, Stage)>,
    asked: Option<Request>,
    found: Vec<Found>,
    ids: BTreeMap<String, RuneId>,
    with_ord: bool,
}

impl Lookup {
    /// A lookup of `outpoints` (at most [`MAX_LOOKUP_OUTPUTS`] taken). `ids` holds rune ids
    /// already known by spaced name; `with_ord` is false where no rune indexer is configured
    /// (every output is then unknown, which the settlement refuses).
    pub fn new(outpoints: &[OutPoint], ids: BTreeMap<String, RuneId>, with_ord: bool) -> Self {
        let mut todo: VecDeque<OutPoint> =
            outpoints.iter().copied().take(MAX_LOOKUP_OUTPUTS).collect();
        let current = todo.pop_front().map(|o| (o, Stage::Tx));
        Lookup {
            todo,
            current,
            asked: None,
            found: Vec::new(),
            ids,
            with_ord,
        }
    }

    /// The next GET, or `None` when done ([`Lookup::finish`]).
    pub fn next_request(&mut self) -> Option<Request> {
        let (at, stage) = self.current.as_ref()?;
        let req = match stage {
            Stage::Tx => Request {
                server: Server::Esplora,
                path: tx_hex_path(&at.txid),
            },
            Stage::Spent(_) => Request {
                server: Server::Esplora,
                path: outspend_path(at),
            },
            Stage::Held(..) => Request {
                server: Server::Ord,
                path: output_path(at),
            },
            Stage::Names(_, _, _, names) => Request {
                server: Server::Ord,
                path: format!("/rune/{}", segment(names.last()?)),
            },
        };
        self.asked = Some(req.clone());
        Some(req)
    }

    /// The answer to the last request.
    pub fn on_answer(&mut self, status: u16, body: &[u8]) -> Result<(), ChainError> {
        let req = self.asked.take().ok_or(ChainError::Unasked)?;
        let (at, stage) = self.current.take().ok_or(ChainError::Unasked)?;
        let next = match stage {
            Stage::Tx => match status {
                200 => Some(Stage::Spent(parse_tx_hex(body, at.txid)?)),
                404 => {
                    self.done(at, None, false, Assets::Unknown);
                    None
                }
                s => return Err(status_error(&req, s)),
            },
            Stage::Spent(tx) => match status {
                // A vout the transaction does not have: the machine refuses it as not found.
                200 => {
                    let spent = parse_outspend(body)?;
                    if self.with_ord && (at.vout as usize) < tx.output.len() {
                        Some(Stage::Held(tx, spent))
                    } else {
                        self.done(at, Some(tx), spent, Assets::Unknown);
                        None
                    }
                }
                404 | 400 => {
                    self.done(at, Some(tx), false, Assets::Unknown);
                    None
                }
                s => return Err(status_error(&req, s)),
            },
            Stage::Held(tx, spent) => match status {
                200 => {
                    let txout = &tx.output[at.vout as usize];
                    let listed = parse_output(body, at, txout)?;
                    let names: Vec<String> = listed
                        .runes
                        .iter()
                        .flatten()
                        .map(|(name, _)| name.clone())
                        .filter(|n| !self.ids.contains_key(n))
                        .collect();
                    Some(Stage::Names(tx, spent, listed, names))
                }
                404 => {
                    self.done(at, Some(tx), spent, Assets::Unknown);
                    None
                }
                s => return Err(status_error(&req, s)),
            },
            Stage::Names(tx, spent, listed, mut names) => match status {
                200 => {
                    let info = parse_rune(body)?;
                    let asked = names.pop().unwrap_or_default();
                    if info.spaced_name != asked {
                        return Err(OrdError::Malformed("rune name").into());
                    }
                    self.ids.insert(info.spaced_name, info.id);
                    Some(Stage::Names(tx, spent, listed, names))
                }
                s => return Err(status_error(&req, s)),
            },
        };
        // A stage with every rune named is done.
        let next = match next {
            Some(Stage::Names(tx, spent, listed, names)) if names.is_empty() => {
                let assets = listed.to_assets(&self.ids)?;
                self.done(at, Some(tx), spent, assets);
                None
            }
            other => other,
        };
        self.current = match next {
            Some(stage) => Some((at, stage)),
            None => self.todo.pop_front().map(|o| (o, Stage::Tx)),
        };
        Ok(())
    }

    fn done(&mut self, outpoint: OutPoint, tx: Option<Transaction>, spent: bool, assets: Assets) {
        self.found.push(Found {
            outpoint,
            tx,
            spent,
            assets,
        });
    }

    /// What was found, and the rune ids learned (to keep for the next lookup).
    pub fn finish(self) -> (Vec<Found>, BTreeMap<String, RuneId>) {
        (self.found, self.ids)
    }
}

/// Watches one swap.
#[derive(Debug)]
pub struct Watch {
    txid: Txid,
    inputs: Vec<OutPoint>,
    ours: Vec<OutPoint>,
    next_input: usize,
    spent: Vec<OutPoint>,
    /// `None`: not asked yet; `Some(None)`: unknown to the server; `Some(Some(h))`: in the
    /// mempool (`h` None) or in block `h`.
    status: Option<Option<Option<u32>>>,
    tip: Option<u32>,
    asked: Option<Request>,
}

impl Watch {
    /// Watches swap `txid` spending `inputs`, of which `ours` are ours.
    pub fn new(txid: Txid, inputs: &[OutPoint], ours: &[OutPoint]) -> Self {
        Watch {
            txid,
            inputs: inputs
                .iter()
                .copied()
                .take(2 * MAX_LOOKUP_OUTPUTS)
                .collect(),
            ours: ours.to_vec(),
            next_input: 0,
            spent: Vec::new(),
            status: None,
            tip: None,
            asked: None,
        }
    }

    /// The next GET, or `None` when done ([`Watch::finish`]).
    pub fn next_request(&mut self) -> Option<Request> {
        let path = if let Some(at) = self.inputs.get(self.next_input) {
            outspend_path(at)
        } else if self.status.is_none() {
            tx_status_path(&self.txid)
        } else if matches!(self.status, Some(Some(Some(_)))) && self.tip.is_none() {
            "/blocks/tip/height".to_string()
        } else {
            return None;
        };
        let req = Request {
            server: Server::Esplora,
            path,
        };
        self.asked = Some(req.clone());
        Some(req)
    }

    /// The answer to the last request.
    pub fn on_answer(&mut self, status: u16, body: &[u8]) -> Result<(), ChainError> {
        let req = self.asked.take().ok_or(ChainError::Unasked)?;
        if let Some(at) = self.inputs.get(self.next_input).copied() {
            match status {
                200 => {
                    if parse_outspend(body)? {
                        self.spent.push(at);
                    }
                }
                s => return Err(status_error(&req, s)),
            }
            self.next_input += 1;
        } else if self.status.is_none() {
            self.status = Some(match status {
                200 => Some(parse_tx_status(body)?),
                404 => None,
                s => return Err(status_error(&req, s)),
            });
        } else {
            match status {
                200 => self.tip = Some(parse_tip_height(body)?),
                s => return Err(status_error(&req, s)),
            }
        }
        Ok(())
    }

    /// What the chain shows (`None` if the plan was not run to its end).
    pub fn finish(self) -> Option<ChainStatus> {
        let confirmations = match self.status? {
            None => None,
            Some(None) => Some(0),
            Some(Some(height)) => Some(self.tip?.saturating_sub(height).saturating_add(1)),
        };
        Some(ChainStatus::observed(
            &self.spent,
            confirmations,
            &self.ours,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::hashes::Hash;
    use bitcoin::transaction::Version;
    use bitcoin::{Amount, ScriptBuf, TxOut};

    fn tx() -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![],
            output: vec![TxOut {
                value: Amount::from_sat(10_000),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51, 0x20, 7, 7]),
            }],
        }
    }

    fn hex(tx: &Transaction) -> Vec<u8> {
        bitcoin::consensus::encode::serialize_hex(tx).into_bytes()
    }

    fn output_json(tx: &Transaction, runes: &str) -> Vec<u8> {
        format!(
            r#"{{"value":10000,"script_pubkey":"{}","indexed":true,"runes":{runes},"inscriptions":[]}}"#,
            tx.output[0].script_pubkey.to_hex_string()
        )
        .into_bytes()
    }

    #[test]
    fn a_lookup_asks_the_transaction_its_spend_ord_and_each_new_rune_name_once() {
        let t = tx();
        let at = OutPoint {
            txid: t.compute_txid(),
            vout: 0,
        };
        let mut l = Lookup::new(&[at], BTreeMap::new(), true);
        let r = l.next_request().unwrap();
        assert_eq!((r.server, r.path), (Server::Esplora, tx_hex_path(&at.txid)));
        l.on_answer(200, &hex(&t)).unwrap();
        assert_eq!(l.next_request().unwrap().path, outspend_path(&at));
        l.on_answer(200, br#"{"spent":false}"#).unwrap();
        assert_eq!(l.next_request().unwrap().path, output_path(&at));
        l.on_answer(
            200,
            &output_json(&t, r#"{"A•B":{"amount":500,"divisibility":0}}"#),
        )
        .unwrap();
        assert_eq!(l.next_request().unwrap().path, "/rune/A%E2%80%A2B");
        l.on_answer(
            200,
            br#"{"entry":{"divisibility":0,"spaced_rune":"A\u2022B"},"id":"5:1"}"#,
        )
        .unwrap();
        assert!(l.next_request().is_none());
        let (found, ids) = l.finish();
        let id: RuneId = "5:1".parse().unwrap();
        assert_eq!(ids.get("A•B"), Some(&id));
        assert_eq!(found.len(), 1);
        assert!(!found[0].spent);
        assert_eq!(
            found[0].assets,
            Assets::Known {
                runes: BTreeMap::from([(id, 500)]),
                inscriptions: 0
            }
        );
    }

    #[test]
    fn an_unknown_transaction_is_found_missing_and_a_server_error_stops_the_plan() {
        let at = OutPoint {
            txid: Txid::all_zeros(),
            vout: 1,
        };
        let mut l = Lookup::new(&[at, at], BTreeMap::new(), true);
        l.next_request().unwrap();
        l.on_answer(404, b"").unwrap();
        l.next_request().unwrap();
        assert!(matches!(
            l.on_answer(503, b""),
            Err(ChainError::Status { status: 503, .. })
        ));
        let (found, _) = l.finish();
        assert_eq!(found.len(), 1);
        assert!(found[0].tx.is_none());
        // An answer nobody asked for is refused.
        let mut l = Lookup::new(&[], BTreeMap::new(), true);
        assert!(l.next_request().is_none());
        assert!(matches!(l.on_answer(200, b""), Err(ChainError::Unasked)));
    }

    #[test]
    fn a_rune_id_answer_for_another_name_is_refused() {
        let t = tx();
        let at = OutPoint {
            txid: t.compute_txid(),
            vout: 0,
        };
        let mut l = Lookup::new(&[at], BTreeMap::new(), true);
        l.next_request();
        l.on_answer(200, &hex(&t)).unwrap();
        l.next_request();
        l.on_answer(200, br#"{"spent":false}"#).unwrap();
        l.next_request();
        l.on_answer(
            200,
            &output_json(&t, r#"{"AB":{"amount":5,"divisibility":0}}"#),
        )
        .unwrap();
        l.next_request();
        assert!(l
            .on_answer(
                200,
                br#"{"entry":{"divisibility":0,"spaced_rune":"CD"},"id":"5:1"}"#
            )
            .is_err());
    }

    #[test]
    fn a_watch_asks_inputs_first_then_the_swap_then_the_tip() {
        let txid = tx().compute_txid();
        let a = OutPoint { txid, vout: 7 };
        let b = OutPoint { txid, vout: 8 };
        let run = |answers: &[(u16, &[u8])]| {
            let mut w = Watch::new(txid, &[a, b], &[a]);
            let mut paths = vec![];
            for (status, body) in answers {
                paths.push(w.next_request().unwrap().path);
                w.on_answer(*status, body).unwrap();
            }
            assert!(w.next_request().is_none());
            (paths, w.finish().unwrap())
        };
        let unspent: &[u8] = br#"{"spent":false}"#;
        let spent: &[u8] = br#"{"spent":true}"#;
        let (paths, status) = run(&[(200, unspent), (200, unspent), (404, b"")]);
        assert_eq!(
            paths,
            [outspend_path(&a), outspend_path(&b), tx_status_path(&txid)]
        );
        assert_eq!(status, ChainStatus::Unseen);
        let (_, status) = run(&[(200, spent), (200, unspent), (404, b"")]);
        assert_eq!(status, ChainStatus::Conflict { ours: true });
        let (_, status) = run(&[(200, unspent), (200, spent), (404, b"")]);
        assert_eq!(status, ChainStatus::Conflict { ours: false });
        let (_, status) = run(&[(200, spent), (200, spent), (200, br#"{"confirmed":false}"#)]);
        assert_eq!(status, ChainStatus::Seen(0));
        let (paths, status) = run(&[
            (200, spent),
            (200, spent),
            (200, br#"{"confirmed":true,"block_height":100}"#),
            (200, b"102"),
        ]);
        assert_eq!(paths[3], "/blocks/tip/height");
        assert_eq!(status, ChainStatus::Seen(3));
    }
}
