//! Answers of `ord`'s JSON API (`ord server`, asked with `Accept: application/json`), the
//! indexer that knows which runes and inscriptions sit on an output. Capped before parsing and
//! cross-checked: an output's value and script must be the ones its transaction (already
//! checked against its txid, see [`crate::esplora`]) says, or the answer is refused. An output
//! ord has not indexed yet, or a server without the rune index, gives [`Assets::Unknown`]: the
//! wallet then neither spends it as fee money nor counts its runes.
//!
//! Paths used: `GET /output/{txid}:{vout}`, `GET /rune/{NAME or BLOCK:TX}`.

use std::collections::BTreeMap;

use bitcoin::{OutPoint, TxOut};
use serde::Deserialize;

use crate::runestone::RuneId;
use crate::utxo::Assets;

/// The largest answer read.
pub const MAX_ORD_ANSWER: usize = 256 * 1024;
/// The most runes taken from one output.
pub const MAX_RUNES_PER_OUTPUT: usize = 256;

/// An ord answer refused.
#[derive(Debug, thiserror::Error)]
pub enum OrdError {
    /// Longer than [`MAX_ORD_ANSWER`].
    #[error("ord answered {0} bytes, more than allowed")]
    TooLarge(usize),
    /// Not JSON of the expected shape.
    #[error("ord's answer is not what ord sends: {0}")]
    Json(#[from] serde_json::Error),
    /// A field that does not parse.
    #[error("ord's answer is malformed: {0}")]
    Malformed(&'static str),
    /// The output's value or script differ from its transaction's.
    #[error("ord describes output {0} differently from its transaction")]
    Mismatch(OutPoint),
    /// A rune name the wallet does not know the id of (ask `/rune/{name}` first).
    #[error("rune {0} has no known id")]
    UnknownRune(String),
}

fn cap(body: &[u8]) -> Result<(), OrdError> {
    if body.len() > MAX_ORD_ANSWER {
        return Err(OrdError::TooLarge(body.len()));
    }
    Ok(())
}

/// The path of an output.
pub fn output_path(outpoint: &OutPoint) -> String {
    format!("/output/{}:{}", outpoint.txid, outpoint.vout)
}

/// The path of a rune, by id.
pub fn rune_path(id: &RuneId) -> String {
    format!("/rune/{id}")
}

/// Units of one rune on an output, as ord reports them.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Pile {
    /// Smallest units.
    pub amount: u128,
    /// The rune's divisibility.
    pub divisibility: u8,
    /// Its symbol.
    #[serde(default)]
    pub symbol: Option<char>,
}

#[derive(Deserialize)]
struct RawOutput {
    #[serde(default)]
    indexed: bool,
    #[serde(default)]
    inscriptions: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    runes: Option<RawRunes>,
    value: u64,
    script_pubkey: String,
}

/// ord has sent runes both as a map (name → pile) and as a list of `[name, pile]` pairs; a
/// visitor reads either straight from the JSON (an untagged enum would buffer the numbers and
/// lose amounts above 2^64).
struct RawRunes(Vec<(String, Pile)>);

impl<'de> Deserialize<'de> for RawRunes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawRunes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map or list of rune piles")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<RawRunes, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = m.next_entry::<String, Pile>()? {
                    if out.len() == MAX_RUNES_PER_OUTPUT {
                        return Err(serde::de::Error::custom("too many runes"));
                    }
                    out.push(entry);
                }
                Ok(RawRunes(out))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut s: A,
            ) -> Result<RawRunes, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = s.next_element::<(String, Pile)>()? {
                    if out.len() == MAX_RUNES_PER_OUTPUT {
                        return Err(serde::de::Error::custom("too many runes"));
                    }
                    out.push(entry);
                }
                Ok(RawRunes(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// What ord says sits on an output, by spaced rune name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputAssets {
    /// `None`: not indexed, or no rune index.
    pub runes: Option<Vec<(String, Pile)>>,
    /// `None`: not indexed, or no inscription data.
    pub inscriptions: Option<usize>,
}

/// Reads `/output/{outpoint}` for an output whose transaction says it is `txout`.
pub fn parse_output(
    body: &[u8],
    outpoint: OutPoint,
    txout: &TxOut,
) -> Result<OutputAssets, OrdError> {
    cap(body)?;
    let raw: RawOutput = serde_json::from_slice(body)?;
    let script_matches = raw.script_pubkey == txout.script_pubkey.to_hex_string()
        || raw.script_pubkey == txout.script_pubkey.to_asm_string();
    if raw.value != txout.value.to_sat() || !script_matches {
        return Err(OrdError::Mismatch(outpoint));
    }
    if !raw.indexed {
        return Ok(OutputAssets {
            runes: None,
            inscriptions: None,
        });
    }
    Ok(OutputAssets {
        runes: raw.runes.map(|r| r.0),
        inscriptions: raw.inscriptions.map(|i| i.len()),
    })
}

impl OutputAssets {
    /// As the wallet's [`Assets`], naming runes by id through `ids` (spaced name → id, from
    /// [`parse_rune`]); anything unknown makes the whole output unknown.
    pub fn to_assets(&self, ids: &BTreeMap<String, RuneId>) -> Result<Assets, OrdError> {
        let (Some(runes), Some(inscriptions)) = (&self.runes, self.inscriptions) else {
            return Ok(Assets::Unknown);
        };
        let mut balances = BTreeMap::new();
        for (name, pile) in runes {
            let id = ids
                .get(name)
                .ok_or_else(|| OrdError::UnknownRune(name.clone()))?;
            let slot = balances.entry(*id).or_insert(0u128);
            *slot = slot
                .checked_add(pile.amount)
                .ok_or(OrdError::Malformed("rune amount"))?;
        }
        Ok(Assets::Known {
            runes: balances,
            inscriptions: u32::try_from(inscriptions).unwrap_or(u32::MAX),
        })
    }
}

/// A rune's identity and display units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuneInfo {
    /// Its id.
    pub id: RuneId,
    /// Its name with spacers (`UNCOMMON•GOODS`), as ord keys outputs by it.
    pub spaced_name: String,
    /// Decimal places.
    pub divisibility: u8,
    /// Its symbol.
    pub symbol: Option<char>,
}

#[derive(Deserialize)]
struct RawRune {
    entry: RawEntry,
    id: String,
}

#[derive(Deserialize)]
struct RawEntry {
    divisibility: u8,
    spaced_rune: String,
    #[serde(default)]
    symbol: Option<char>,
}

/// Reads `/rune/{name or id}`.
pub fn parse_rune(body: &[u8]) -> Result<RuneInfo, OrdError> {
    cap(body)?;
    let raw: RawRune = serde_json::from_slice(body)?;
    let id = raw
        .id
        .parse::<RuneId>()
        .map_err(|_| OrdError::Malformed("rune id"))?;
    if raw.entry.divisibility > crate::runestone::MAX_DIVISIBILITY
        || raw.entry.spaced_rune.len() > 64
    {
        return Err(OrdError::Malformed("rune entry"));
    }
    Ok(RuneInfo {
        id,
        spaced_name: raw.entry.spaced_rune,
        divisibility: raw.entry.divisibility,
        symbol: raw.entry.symbol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn op() -> OutPoint {
        OutPoint {
            txid: Txid::from_byte_array([0; 32]),
            vout: 1,
        }
    }
    use bitcoin::{Amount, ScriptBuf, Txid};

    fn txout() -> TxOut {
        TxOut {
            value: Amount::from_sat(546),
            script_pubkey: ScriptBuf::from_hex(
                "5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c",
            )
            .unwrap(),
        }
    }

    #[test]
    fn outputs_with_runes_as_map_or_list() {
        let map = br#"{"address":null,"indexed":true,"inscriptions":[],"runes":{"DARK\u2022SWAP":{"amount":1200,"divisibility":2,"symbol":"$"}},"sat_ranges":null,"script_pubkey":"5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c","spent":false,"transaction":"00","value":546}"#;
        let a = parse_output(map, op(), &txout()).unwrap();
        assert_eq!(a.inscriptions, Some(0));
        let runes = a.runes.clone().unwrap();
        assert_eq!(runes[0].0, "DARK•SWAP");
        assert_eq!(runes[0].1.amount, 1200);
        let ids = [("DARK•SWAP".to_string(), RuneId { block: 120, tx: 1 })]
            .into_iter()
            .collect();
        let Assets::Known {
            runes,
            inscriptions,
        } = a.to_assets(&ids).unwrap()
        else {
            panic!()
        };
        assert_eq!(runes[&RuneId { block: 120, tx: 1 }], 1200);
        // Amounts above 2^64 survive.
        let big = String::from_utf8(map.to_vec())
            .unwrap()
            .replace("1200", "340282366920938463463374607431768211455");
        let b = parse_output(big.as_bytes(), op(), &txout()).unwrap();
        assert_eq!(b.runes.unwrap()[0].1.amount, u128::MAX);
        assert_eq!(inscriptions, 0);
        assert!(matches!(
            a.to_assets(&BTreeMap::new()),
            Err(OrdError::UnknownRune(_))
        ));
        let list = br#"{"indexed":true,"inscriptions":["x"],"runes":[["A",{"amount":5,"divisibility":0}]],"script_pubkey":"OP_PUSHNUM_1 OP_PUSHBYTES_32 a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c","value":546}"#;
        let b = parse_output(list, op(), &txout()).unwrap();
        assert_eq!(b.inscriptions, Some(1));
        assert_eq!(b.runes.unwrap()[0].1.amount, 5);
    }

    #[test]
    fn unindexed_or_mismatched_outputs() {
        let unindexed = br#"{"indexed":false,"runes":{},"inscriptions":[],"script_pubkey":"5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c","value":546}"#;
        let a = parse_output(unindexed, op(), &txout()).unwrap();
        assert_eq!(a.to_assets(&BTreeMap::new()).unwrap(), Assets::Unknown);
        let no_rune_index = br#"{"indexed":true,"runes":null,"inscriptions":[],"script_pubkey":"5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c","value":546}"#;
        let a = parse_output(no_rune_index, op(), &txout()).unwrap();
        assert_eq!(a.to_assets(&BTreeMap::new()).unwrap(), Assets::Unknown);
        let wrong_value = br#"{"indexed":true,"runes":{},"inscriptions":[],"script_pubkey":"5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c","value":547}"#;
        assert!(matches!(
            parse_output(wrong_value, op(), &txout()),
            Err(OrdError::Mismatch(_))
        ));
        let wrong_script =
            br#"{"indexed":true,"runes":{},"inscriptions":[],"script_pubkey":"51","value":546}"#;
        assert!(matches!(
            parse_output(wrong_script, op(), &txout()),
            Err(OrdError::Mismatch(_))
        ));
        assert!(matches!(
            parse_output(&vec![b' '; MAX_ORD_ANSWER + 1], op(), &txout()),
            Err(OrdError::TooLarge(_))
        ));
    }

    #[test]
    fn rune_entries() {
        let body = br#"{"entry":{"block":120,"burned":0,"divisibility":2,"etching":"00","mints":0,"number":0,"premine":100000,"spaced_rune":"DARK\u2022SWAP","symbol":"$","terms":null,"timestamp":1,"turbo":false},"id":"120:1","mintable":false,"parent":null}"#;
        let r = parse_rune(body).unwrap();
        assert_eq!(r.id, RuneId { block: 120, tx: 1 });
        assert_eq!(r.spaced_name, "DARK•SWAP");
        assert_eq!(r.divisibility, 2);
        assert_eq!(r.symbol, Some('$'));
        assert!(
            parse_rune(br#"{"entry":{"divisibility":39,"spaced_rune":"A"},"id":"1:0"}"#).is_err()
        );
        assert!(
            parse_rune(br#"{"entry":{"divisibility":0,"spaced_rune":"A"},"id":"0:1"}"#).is_err()
        );
    }
}
