//! Answers of an Esplora-compatible HTTP API (what mempool.space and blockstream.info serve, and
//! the relay's optional gateway on regtest), read and checked without trusting the server:
//! every answer is capped in size before it is parsed, a transaction's id is recomputed from its
//! bytes, and an address's outputs are kept only when the transaction they come from pays that
//! address's script. The caller does the HTTP (the page's `fetch`, the CLI's client); this
//! module only says which path to ask and what the answer means.
//!
//! Paths used: `GET /address/{addr}/utxo`, `GET /address/{addr}/txs` and
//! `GET /address/{addr}/txs/chain/{last txid}` (an address's history, newest first),
//! `GET /tx/{txid}/hex`, `GET /blocks/tip/height`, `GET /fee-estimates`, `POST /tx` (body: the
//! transaction in hex; answer: its txid).

use std::str::FromStr;

use bitcoin::consensus::encode::deserialize_hex;
use bitcoin::{Address, Amount, OutPoint, Transaction, Txid};
use serde::Deserialize;

/// The largest `/address/…/utxo` answer read (about 10,000 outputs).
pub const MAX_UTXO_ANSWER: usize = 2 * 1024 * 1024;
/// The most outputs taken from one `/address/…/utxo` answer.
pub const MAX_UTXOS_PER_ADDRESS: usize = 10_000;
/// The largest transaction read (hex): 4 MB of weight is at most 4 MB of bytes.
pub const MAX_TX_HEX: usize = 8 * 1024 * 1024;
/// The largest `/address/…/txs` answer read (Esplora sends full transactions: 50 from the
/// mempool and 25 confirmed at most, in a page).
pub const MAX_TXS_ANSWER: usize = 4 * 1024 * 1024;
/// Confirmed transactions in one page of `/address/…/txs` (Esplora's page size): a page this
/// full may have a next one.
pub const TXS_PAGE: usize = 25;
/// The most transactions taken from one page.
pub const MAX_TXS_PER_PAGE: usize = 100;
/// The largest small answer (tip height, txid, fee estimates).
pub const MAX_SMALL_ANSWER: usize = 16 * 1024;

/// An Esplora answer refused.
#[derive(Debug, thiserror::Error)]
pub enum EsploraError {
    /// Longer than the cap for its kind.
    #[error("the chain API answered {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Bytes received.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Not JSON of the expected shape.
    #[error("the chain API's answer is not what Esplora sends: {0}")]
    Json(#[from] serde_json::Error),
    /// Not a number, id or transaction where one was expected.
    #[error("the chain API's answer is malformed: {0}")]
    Malformed(&'static str),
    /// A transaction whose bytes hash to another id than the one asked for.
    #[error("the chain API sent transaction {got} when asked for {asked}")]
    WrongTransaction {
        /// Asked for.
        asked: Txid,
        /// What the bytes hash to.
        got: Txid,
    },
    /// A listed output does not pay the address (checked against its transaction).
    #[error("the chain API listed {0} for an address it does not pay")]
    NotThisAddress(OutPoint),
}

fn cap(body: &[u8], max: usize) -> Result<(), EsploraError> {
    if body.len() > max {
        return Err(EsploraError::TooLarge {
            len: body.len(),
            max,
        });
    }
    Ok(())
}

/// One entry of `/address/{addr}/utxo`, as the server claims it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedOutput {
    /// Where.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: Amount,
    /// The block height it confirmed in (`None`: in the mempool).
    pub height: Option<u32>,
}

#[derive(Deserialize)]
struct RawUtxo {
    txid: String,
    vout: u32,
    value: u64,
    status: RawStatus,
}

#[derive(Deserialize)]
struct RawStatus {
    confirmed: bool,
    #[serde(default)]
    block_height: Option<u32>,
}

impl RawStatus {
    /// The confirming block's height; `None` in the mempool.
    fn height(&self) -> Result<Option<u32>, EsploraError> {
        match (self.confirmed, self.block_height) {
            (true, Some(h)) => Ok(Some(h)),
            (true, None) => Err(EsploraError::Malformed("confirmed without a height")),
            (false, _) => Ok(None),
        }
    }
}

/// The path of an address's unspent outputs.
pub fn utxo_path(address: &Address) -> String {
    format!("/address/{address}/utxo")
}

/// The path of an address's history, first page.
pub fn txs_path(address: &Address) -> String {
    format!("/address/{address}/txs")
}

/// The path of an address's confirmed history after `last` (the last txid of the page before).
pub fn txs_chain_path(address: &Address, last: &Txid) -> String {
    format!("/address/{address}/txs/chain/{last}")
}

/// One transaction of an address's history, as the server claims it (its bytes are fetched and
/// checked separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedTx {
    /// Its id.
    pub txid: Txid,
    /// The block height it confirmed in (`None`: in the mempool).
    pub height: Option<u32>,
}

#[derive(Deserialize)]
struct RawTx {
    txid: String,
    status: RawStatus,
}

/// Reads a page of `/address/{addr}/txs` (only each entry's `txid` and `status`).
pub fn parse_address_txs(body: &[u8]) -> Result<Vec<ListedTx>, EsploraError> {
    cap(body, MAX_TXS_ANSWER)?;
    let raw: Vec<RawTx> = serde_json::from_slice(body)?;
    if raw.len() > MAX_TXS_PER_PAGE {
        return Err(EsploraError::Malformed(
            "more transactions in a page than Esplora sends",
        ));
    }
    raw.into_iter()
        .map(|t| {
            let txid = Txid::from_str(&t.txid).map_err(|_| EsploraError::Malformed("txid"))?;
            let height = t.status.height()?;
            Ok(ListedTx { txid, height })
        })
        .collect()
}

/// The path of a transaction's bytes.
pub fn tx_hex_path(txid: &Txid) -> String {
    format!("/tx/{txid}/hex")
}

/// Reads `/address/{addr}/utxo`. What it claims is checked later against the transactions
/// ([`check_listed`]).
pub fn parse_utxos(body: &[u8]) -> Result<Vec<ListedOutput>, EsploraError> {
    cap(body, MAX_UTXO_ANSWER)?;
    let raw: Vec<RawUtxo> = serde_json::from_slice(body)?;
    raw.into_iter()
        .take(MAX_UTXOS_PER_ADDRESS)
        .map(|u| {
            let txid = Txid::from_str(&u.txid).map_err(|_| EsploraError::Malformed("txid"))?;
            let height = u.status.height()?;
            Ok(ListedOutput {
                outpoint: OutPoint { txid, vout: u.vout },
                value: Amount::from_sat(u.value),
                height,
            })
        })
        .collect()
}

/// Reads `/tx/{txid}/hex` and checks that the bytes are transaction `asked`.
pub fn parse_tx_hex(body: &[u8], asked: Txid) -> Result<Transaction, EsploraError> {
    cap(body, MAX_TX_HEX)?;
    let text = std::str::from_utf8(body).map_err(|_| EsploraError::Malformed("transaction hex"))?;
    let tx: Transaction =
        deserialize_hex(text.trim()).map_err(|_| EsploraError::Malformed("transaction hex"))?;
    let got = tx.compute_txid();
    if got != asked {
        return Err(EsploraError::WrongTransaction { asked, got });
    }
    Ok(tx)
}

/// Checks a listed output against its (already checked) transaction: it exists, pays
/// `address`'s script, and has the value the listing claimed.
pub fn check_listed(
    listed: &ListedOutput,
    tx: &Transaction,
    address: &Address,
) -> Result<(), EsploraError> {
    let out = tx
        .output
        .get(listed.outpoint.vout as usize)
        .ok_or(EsploraError::NotThisAddress(listed.outpoint))?;
    if out.script_pubkey != address.script_pubkey() || out.value != listed.value {
        return Err(EsploraError::NotThisAddress(listed.outpoint));
    }
    Ok(())
}

/// Reads `/blocks/tip/height`.
pub fn parse_tip_height(body: &[u8]) -> Result<u32, EsploraError> {
    cap(body, MAX_SMALL_ANSWER)?;
    std::str::from_utf8(body)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or(EsploraError::Malformed("tip height"))
}

/// Reads the answer to `POST /tx`: the broadcast transaction's id, which must be `sent`'s.
pub fn parse_broadcast(body: &[u8], sent: &Transaction) -> Result<Txid, EsploraError> {
    cap(body, MAX_SMALL_ANSWER)?;
    let txid = std::str::from_utf8(body)
        .ok()
        .and_then(|t| Txid::from_str(t.trim()).ok())
        .ok_or(EsploraError::Malformed("broadcast txid"))?;
    let ours = sent.compute_txid();
    if txid != ours {
        return Err(EsploraError::WrongTransaction {
            asked: ours,
            got: txid,
        });
    }
    Ok(txid)
}

/// Fee rates for a confirmation within N blocks, in whole sat/vB rounded up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeEstimates(pub Vec<(u16, u64)>);

impl FeeEstimates {
    /// The rate for confirming within `blocks`: the estimate for the largest target that is
    /// not later than `blocks`, or the fastest one when none is.
    pub fn for_target(&self, blocks: u16) -> Option<u64> {
        self.0
            .iter()
            .filter(|(t, _)| *t <= blocks)
            .max_by_key(|(t, _)| *t)
            .or_else(|| self.0.iter().min_by_key(|(t, _)| *t))
            .map(|(_, r)| *r)
    }
}

/// Reads `/fee-estimates` (`{"1": 87.882, "6": 21.4, …}`): each decimal rate rounded up to a
/// whole sat/vB, with no float arithmetic.
pub fn parse_fee_estimates(body: &[u8]) -> Result<FeeEstimates, EsploraError> {
    cap(body, MAX_SMALL_ANSWER)?;
    let raw: std::collections::BTreeMap<String, serde_json::Number> = serde_json::from_slice(body)?;
    let mut out = Vec::new();
    for (target, rate) in raw {
        let target: u16 = target
            .parse()
            .map_err(|_| EsploraError::Malformed("fee target"))?;
        out.push((target, ceil_decimal(&rate.to_string())?));
    }
    out.sort();
    Ok(FeeEstimates(out))
}

/// `"12.01"` → 13, `"3"` → 3, `"0.5"` → 1; exponent forms are refused.
fn ceil_decimal(text: &str) -> Result<u64, EsploraError> {
    let bad = EsploraError::Malformed("fee rate");
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    let whole: u64 = whole
        .parse()
        .map_err(|_| EsploraError::Malformed("fee rate"))?;
    let up = u64::from(frac.bytes().any(|b| b != b'0'));
    Ok(whole.saturating_add(up).max(1))
}

/// The path of a transaction's confirmation status.
pub fn tx_status_path(txid: &Txid) -> String {
    format!("/tx/{txid}/status")
}

/// Reads `/tx/{txid}/status`: the confirming block's height, `None` while in the mempool. (A
/// transaction the server does not know is answered 404, which the caller reads as unseen.)
pub fn parse_tx_status(body: &[u8]) -> Result<Option<u32>, EsploraError> {
    cap(body, MAX_SMALL_ANSWER)?;
    let raw: RawStatus = serde_json::from_slice(body)?;
    raw.height()
}

/// The path of whether an output is spent.
pub fn outspend_path(outpoint: &OutPoint) -> String {
    format!("/tx/{}/outspend/{}", outpoint.txid, outpoint.vout)
}

#[derive(Deserialize)]
struct RawOutspend {
    spent: bool,
}

/// Reads `/tx/{txid}/outspend/{vout}`: whether the output is spent (in a block or the mempool).
pub fn parse_outspend(body: &[u8]) -> Result<bool, EsploraError> {
    cap(body, MAX_SMALL_ANSWER)?;
    let raw: RawOutspend = serde_json::from_slice(body)?;
    Ok(raw.spent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::absolute::LockTime;
    use bitcoin::transaction::Version;
    use bitcoin::{ScriptBuf, TxOut};

    fn tx_paying(script: ScriptBuf, sats: u64) -> Transaction {
        Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![Default::default()],
            output: vec![TxOut {
                value: Amount::from_sat(sats),
                script_pubkey: script,
            }],
        }
    }

    fn address() -> Address {
        let m = crate::Mnemonic::parse("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about").unwrap();
        crate::Keychain::new(&m, "", crate::Network::Regtest)
            .unwrap()
            .derive(crate::KeyPath::receive(crate::Account::Payment, 0))
            .unwrap()
            .address
    }

    #[test]
    fn statuses_and_outspends_read_as_esplora_writes_them() {
        assert_eq!(
            parse_tx_status(
                br#"{"confirmed":true,"block_height":812,"block_hash":"00","block_time":1}"#
            )
            .unwrap(),
            Some(812)
        );
        assert_eq!(parse_tx_status(br#"{"confirmed":false}"#).unwrap(), None);
        assert!(parse_tx_status(br#"{"confirmed":true}"#).is_err());
        assert!(parse_tx_status(b"not json").is_err());
        assert!(parse_tx_status(&vec![b' '; MAX_SMALL_ANSWER + 1]).is_err());
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        assert!(
            parse_outspend(format!(r#"{{"spent":true,"txid":"{txid}","vin":0}}"#).as_bytes())
                .unwrap()
        );
        assert!(!parse_outspend(br#"{"spent":false}"#).unwrap());
        assert!(parse_outspend(b"{}").is_err());
        let at = OutPoint {
            txid: txid.parse().unwrap(),
            vout: 3,
        };
        assert_eq!(outspend_path(&at), format!("/tx/{txid}/outspend/3"));
        assert_eq!(tx_status_path(&at.txid), format!("/tx/{txid}/status"));
    }

    #[test]
    fn utxo_listings_are_read_and_capped() {
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        let body = format!(
            r#"[{{"txid":"{txid}","vout":1,"status":{{"confirmed":true,"block_height":120,"block_hash":"00","block_time":1}},"value":5000}},
               {{"txid":"{txid}","vout":2,"status":{{"confirmed":false}},"value":700}}]"#
        );
        let listed = parse_utxos(body.as_bytes()).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].height, Some(120));
        assert_eq!(listed[1].height, None);
        assert_eq!(listed[1].value, Amount::from_sat(700));
        let huge = vec![b' '; MAX_UTXO_ANSWER + 1];
        assert!(matches!(
            parse_utxos(&huge),
            Err(EsploraError::TooLarge { .. })
        ));
        assert!(
            parse_utxos(br#"[{"txid":"zz","vout":0,"value":1,"status":{"confirmed":false}}]"#)
                .is_err()
        );
        assert!(parse_utxos(br#"[{"txid":"4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b","vout":0,"value":1,"status":{"confirmed":true}}]"#).is_err());
        assert!(parse_utxos(b"{}").is_err());
    }

    #[test]
    fn a_transaction_must_hash_to_the_id_asked_for() {
        let addr = address();
        let tx = tx_paying(addr.script_pubkey(), 5_000);
        let hex = bitcoin::consensus::encode::serialize_hex(&tx);
        let txid = tx.compute_txid();
        assert_eq!(parse_tx_hex(hex.as_bytes(), txid).unwrap(), tx);
        let other = tx_paying(addr.script_pubkey(), 5_001);
        let other_hex = bitcoin::consensus::encode::serialize_hex(&other);
        assert!(matches!(
            parse_tx_hex(other_hex.as_bytes(), txid),
            Err(EsploraError::WrongTransaction { .. })
        ));
        assert!(matches!(
            parse_tx_hex(b"00zz", txid),
            Err(EsploraError::Malformed(_))
        ));
        // A listing must match the transaction: script and value.
        let listed = ListedOutput {
            outpoint: OutPoint { txid, vout: 0 },
            value: Amount::from_sat(5_000),
            height: None,
        };
        check_listed(&listed, &tx, &addr).unwrap();
        let lie = ListedOutput {
            value: Amount::from_sat(9_000),
            ..listed.clone()
        };
        assert!(check_listed(&lie, &tx, &addr).is_err());
        let elsewhere = ListedOutput {
            outpoint: OutPoint { txid, vout: 3 },
            ..listed.clone()
        };
        assert!(check_listed(&elsewhere, &tx, &addr).is_err());
        let not_ours = tx_paying(ScriptBuf::new(), 5_000);
        assert!(check_listed(&listed, &not_ours, &addr).is_err());
        // A broadcast answer must name the transaction sent.
        assert_eq!(
            parse_broadcast(format!("{txid}\n").as_bytes(), &tx).unwrap(),
            txid
        );
        assert!(parse_broadcast(other.compute_txid().to_string().as_bytes(), &tx).is_err());
    }

    #[test]
    fn address_histories_are_read_and_capped() {
        let txid = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b";
        // As mempool.space sends them, with fields the wallet does not read.
        let body = format!(
            r#"[{{"txid":"{txid}","version":2,"locktime":0,"vin":[],"vout":[],"size":1,"weight":4,"fee":0,"status":{{"confirmed":false}}}},
               {{"txid":"{txid}","status":{{"confirmed":true,"block_height":7,"block_hash":"00","block_time":1}}}}]"#
        );
        let listed = parse_address_txs(body.as_bytes()).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0].height, None);
        assert_eq!(listed[1].height, Some(7));
        assert!(matches!(
            parse_address_txs(&vec![b' '; MAX_TXS_ANSWER + 1]),
            Err(EsploraError::TooLarge { .. })
        ));
        let one = format!(r#"{{"txid":"{txid}","status":{{"confirmed":false}}}}"#);
        let many = format!("[{}]", vec![one; MAX_TXS_PER_PAGE + 1].join(","));
        assert!(matches!(
            parse_address_txs(many.as_bytes()),
            Err(EsploraError::Malformed(_))
        ));
        assert!(parse_address_txs(
            format!(r#"[{{"txid":"{txid}","status":{{"confirmed":true}}}}]"#).as_bytes()
        )
        .is_err());
        let a = address();
        assert_eq!(txs_path(&a), format!("/address/{a}/txs"));
        let t: Txid = txid.parse().unwrap();
        assert_eq!(
            txs_chain_path(&a, &t),
            format!("/address/{a}/txs/chain/{txid}")
        );
    }

    #[test]
    fn tip_and_fee_estimates() {
        assert_eq!(parse_tip_height(b"840000\n").unwrap(), 840_000);
        assert!(parse_tip_height(b"-1").is_err());
        let f = parse_fee_estimates(br#"{"1": 87.882, "6": 21.0, "144": 1.027, "3": 30}"#).unwrap();
        assert_eq!(f.0, vec![(1, 88), (3, 30), (6, 21), (144, 2)]);
        assert_eq!(f.for_target(6), Some(21));
        assert_eq!(f.for_target(5), Some(30));
        assert_eq!(f.for_target(1000), Some(2));
        assert!(parse_fee_estimates(br#"{"x": 1}"#).is_err());
        assert!(parse_fee_estimates(br#"{"1": -2}"#).is_err());
        assert_eq!(ceil_decimal("0.1").unwrap(), 1);
    }
}
