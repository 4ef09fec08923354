//! The chain work a driver runs, one job at a time, each a plan of GETs: a rune's id from its
//! name, whether ord has indexed the chain's tip, a scan of our wallet, a lookup of the other
//! side's outputs, a watch of a swap. Each ends in a [`Done`] the driver applies.

use std::collections::BTreeMap;

use bitcoin::ScriptBuf;
use darkswap_proto::trade::TradeId;
use darkswap_wallet::esplora::parse_tip_height;
use darkswap_wallet::keys::{Account, Chain, KeyPath, Keychain};
use darkswap_wallet::ord_api::{parse_rune, OrdError};
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::sync::{Request, Scan, Server, SyncError};
use darkswap_wallet::utxo::Utxo;

use crate::chain::{ChainError, Lookup, Watch};
use crate::machine::{ChainStatus, Found};

/// Why a job stopped before its end (the driver tries again later).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// A lookup or a watch was refused an answer.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The wallet's scan failed.
    #[error("the wallet could not be read: {0}")]
    Scan(#[from] SyncError),
    /// ord's answer about a rune was not one.
    #[error("ord's answer about a rune was refused: {0}")]
    Rune(#[from] OrdError),
    /// A height did not read.
    #[error("a block height was refused: {0}")]
    Height(#[from] darkswap_wallet::esplora::EsploraError),
    /// A server answered with an error status.
    #[error("the {} server answered HTTP {status} to {path}", server_name(*.server))]
    Status {
        /// Which server.
        server: Server,
        /// What was asked.
        path: String,
        /// Its status.
        status: u16,
    },
    /// ord has not indexed the chain's tip yet: what it says about outputs may be out of date.
    #[error("ord has indexed up to block {ord}, the chain is at {tip}: waiting for it")]
    Behind {
        /// ord's height.
        ord: u32,
        /// The chain's.
        tip: u32,
    },
    /// Our wallet's keys are not at hand (locked).
    #[error("the wallet is locked: unlock it in the wallet panel so your trades can settle")]
    Locked,
}

/// A chain server's name, for words.
fn server_name(server: Server) -> &'static str {
    match server {
        Server::Esplora => "chain (Esplora)",
        Server::Ord => "ord",
    }
}

impl JobError {
    /// A short label for the counter of chain troubles.
    pub fn label(&self) -> &'static str {
        match self {
            JobError::Chain(_) => "lookup",
            JobError::Scan(_) => "scan",
            JobError::Rune(_) => "rune",
            JobError::Height(_) => "height",
            JobError::Status { .. } => "status",
            JobError::Behind { .. } => "ord_behind",
            JobError::Locked => "locked",
        }
    }
}

/// What our wallet holds, as a settlement chooses from it.
#[derive(Debug, Clone, Default)]
pub struct Holdings {
    /// Confirmed outputs (the other side checks ours against ord, which indexes only blocks).
    pub utxos: Vec<Utxo>,
    /// Where our bitcoin is paid and our bitcoin change goes.
    pub payment: ScriptBuf,
    /// Change of our bitcoin.
    pub payment_change: ScriptBuf,
    /// Where runes we buy go.
    pub runes: ScriptBuf,
    /// Change of our runes.
    pub rune_change: ScriptBuf,
    /// Rune ids by spaced name, as the scan learned them.
    pub rune_ids: BTreeMap<String, RuneId>,
}

impl Holdings {
    /// What a read of the wallet behind `keys` found: its outputs (only the confirmed ones are
    /// kept), the first unused index of each account's chain (`unused`), and the rune ids it
    /// learned by spaced name.
    pub fn read(
        keys: &Keychain,
        utxos: Vec<Utxo>,
        unused: impl Fn(Account, Chain) -> u32,
        rune_ids: BTreeMap<String, RuneId>,
    ) -> Result<Holdings, darkswap_wallet::keys::KeyError> {
        let script = |account, chain| -> Result<ScriptBuf, darkswap_wallet::keys::KeyError> {
            let index = unused(account, chain);
            Ok(keys
                .derive(KeyPath {
                    account,
                    chain,
                    index,
                })?
                .script_pubkey)
        };
        Ok(Holdings {
            payment: script(Account::Payment, Chain::External)?,
            payment_change: script(Account::Payment, Chain::Internal)?,
            runes: script(Account::Runes, Chain::External)?,
            rune_change: script(Account::Runes, Chain::Internal)?,
            rune_ids,
            utxos: utxos.into_iter().filter(|u| u.confirmations > 0).collect(),
        })
    }
}

/// What a finished job found.
pub enum Done {
    /// The rune named so, or `None`: ord knows no rune of that name.
    Rune(String, Option<RuneId>),
    /// ord has indexed the chain's tip (then run `next`).
    Indexed(Box<Job>),
    /// Our wallet as it is now.
    Scanned(Holdings),
    /// The other side's outputs for a trade, and the rune ids learned.
    Found(TradeId, Vec<Found>, BTreeMap<String, RuneId>),
    /// What the chain shows of a trade's swap.
    Seen(TradeId, ChainStatus),
}

/// Where the height check stands.
#[derive(Debug)]
pub enum Heights {
    Tip,
    Ord(u32),
}

/// One job.
pub enum Job {
    /// `/rune/{name}` on ord.
    Rune {
        /// The name without spacers, as a pair names it.
        name: String,
        /// Whether the request went out.
        asked: bool,
    },
    /// The chain's tip, then ord's height; then `next` (a scan or a lookup).
    Heights(Heights, Option<Box<Job>>),
    /// A scan of our wallet.
    Scan(Box<Scan>),
    /// A lookup of the other side's outputs.
    Lookup(TradeId, Lookup),
    /// A watch of a swap.
    Watch(TradeId, Watch),
}

impl Job {
    /// A rune's id from its name.
    pub fn rune(name: String) -> Job {
        Job::Rune { name, asked: false }
    }

    /// `next`, once ord has indexed the chain's tip.
    pub fn indexed(next: Job) -> Job {
        Job::Heights(Heights::Tip, Some(Box::new(next)))
    }

    /// A scan of the wallet behind `keys`.
    pub fn scan(keys: &Keychain, with_ord: bool) -> Result<Job, JobError> {
        Ok(Job::Scan(Box::new(Scan::new(keys, with_ord)?)))
    }

    /// The next GET, or `None` when the job is over ([`Job::finish`]).
    pub fn next_request(&mut self) -> Option<Request> {
        match self {
            Job::Rune { asked: true, .. } => None,
            Job::Rune { name, asked } => {
                *asked = true;
                Some(Request {
                    server: Server::Ord,
                    path: format!("/rune/{name}"),
                })
            }
            Job::Heights(Heights::Tip, _) => Some(Request {
                server: Server::Esplora,
                path: "/blocks/tip/height".into(),
            }),
            Job::Heights(Heights::Ord(_), _) => Some(Request {
                server: Server::Ord,
                path: "/blockheight".into(),
            }),
            Job::Scan(s) => s.next_request(),
            Job::Lookup(_, l) => l.next_request(),
            Job::Watch(_, w) => w.next_request(),
        }
    }

    /// The answer to the last request. `Ok(Some(_))` ends the job with what it found.
    pub fn on_answer(
        &mut self,
        req: &Request,
        status: u16,
        body: &[u8],
        keys: Option<&Keychain>,
    ) -> Result<Option<Done>, JobError> {
        let refused = || JobError::Status {
            server: req.server,
            path: req.path.clone(),
            status,
        };
        match self {
            Job::Rune { name, .. } => match status {
                200 => {
                    let info = parse_rune(body)?;
                    // ord answers the rune of that name whatever its spacers.
                    if info.spaced_name.replace('•', "") != *name {
                        return Err(OrdError::Malformed("rune name").into());
                    }
                    Ok(Some(Done::Rune(std::mem::take(name), Some(info.id))))
                }
                404 => Ok(Some(Done::Rune(std::mem::take(name), None))),
                _ => Err(refused()),
            },
            Job::Heights(stage, next) => {
                if status != 200 {
                    return Err(refused());
                }
                let height = parse_tip_height(body)?;
                match stage {
                    Heights::Tip => {
                        *stage = Heights::Ord(height);
                        Ok(None)
                    }
                    Heights::Ord(tip) if height < *tip => Err(JobError::Behind {
                        ord: height,
                        tip: *tip,
                    }),
                    Heights::Ord(_) => Ok(next.take().map(Done::Indexed)),
                }
            }
            Job::Scan(s) => {
                let keys = keys.ok_or(JobError::Locked)?;
                s.on_answer(status, body)?;
                s.derive_ahead(keys)?;
                Ok(None)
            }
            Job::Lookup(_, l) => {
                l.on_answer(status, body)?;
                Ok(None)
            }
            Job::Watch(_, w) => {
                w.on_answer(status, body)?;
                Ok(None)
            }
        }
    }

    /// What a job that asks nothing more found (`None` for a job not run to its end).
    pub fn finish(self, keys: Option<&Keychain>) -> Result<Option<Done>, JobError> {
        match self {
            Job::Rune { .. } | Job::Heights(..) => Ok(None),
            Job::Scan(s) => {
                let keys = keys.ok_or(JobError::Locked)?;
                let unused: BTreeMap<(Account, Chain), u32> = [
                    (Account::Payment, Chain::External),
                    (Account::Payment, Chain::Internal),
                    (Account::Runes, Chain::External),
                    (Account::Runes, Chain::Internal),
                ]
                .into_iter()
                .map(|k| (k, s.first_unused(k.0, k.1)))
                .collect();
                let rune_ids = s
                    .runes()
                    .into_iter()
                    .map(|(id, info)| (info.spaced_name, id))
                    .collect();
                let utxos = s.finish()?;
                let read = Holdings::read(
                    keys,
                    utxos,
                    |a, c| unused.get(&(a, c)).copied().unwrap_or(0),
                    rune_ids,
                );
                Ok(Some(Done::Scanned(read.map_err(SyncError::from)?)))
            }
            Job::Lookup(id, l) => {
                let (found, ids) = l.finish();
                Ok(Some(Done::Found(id, found, ids)))
            }
            Job::Watch(id, w) => Ok(w.finish().map(|status| Done::Seen(id, status))),
        }
    }
}
