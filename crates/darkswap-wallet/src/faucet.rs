//! A relay's regtest faucet as both ends see it: the request (`{"address": …}`, the same for
//! `POST /api/faucet` and `POST /api/faucet/runes`) and the rune faucet's answer, written by the
//! relay and read, capped and checked, by the page and the CLI.

use std::str::FromStr;

use bitcoin::{Address, Txid};

use crate::runestone::{RuneId, MAX_DIVISIBILITY};

/// The longest answer read.
pub const MAX_ANSWER: usize = 1024;

/// Why a rune faucet's answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum GiftError {
    /// Over [`MAX_ANSWER`].
    #[error("the faucet's answer is {0} bytes, over {MAX_ANSWER}")]
    TooLarge(usize),
    /// Not the answer's JSON.
    #[error("the faucet's answer is not its JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A field that does not parse.
    #[error("the faucet's answer has a bad {0}")]
    Field(&'static str),
}

/// The body of a faucet call.
pub fn request_body(address: &Address) -> String {
    serde_json::json!({ "address": address.to_string() }).to_string()
}

/// Test runes the faucet sent, in a mined transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuneGift {
    /// The rune.
    pub rune: RuneId,
    /// Units sent.
    pub amount: u128,
    /// The rune's decimal places.
    pub divisibility: u8,
    /// The transaction.
    pub txid: Txid,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Wire {
    rune: String,
    /// A string: JSON numbers do not hold a u128.
    amount: String,
    divisibility: u8,
    txid: String,
}

impl std::fmt::Display for RuneGift {
    /// "1000.00 of rune 202:1 (transaction …)".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of rune {} (transaction {})",
            crate::units::format_units(self.amount, self.divisibility),
            self.rune,
            self.txid
        )
    }
}

impl RuneGift {
    /// The answer's JSON.
    pub fn to_json(&self) -> String {
        let wire = Wire {
            rune: self.rune.to_string(),
            amount: self.amount.to_string(),
            divisibility: self.divisibility,
            txid: self.txid.to_string(),
        };
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// Reads an answer.
    pub fn parse(body: &[u8]) -> Result<RuneGift, GiftError> {
        if body.len() > MAX_ANSWER {
            return Err(GiftError::TooLarge(body.len()));
        }
        let w: Wire = serde_json::from_slice(body).map_err(GiftError::Json)?;
        Ok(RuneGift {
            rune: RuneId::from_str(&w.rune).map_err(|_| GiftError::Field("rune"))?,
            amount: w
                .amount
                .parse()
                .ok()
                .filter(|a| *a > 0)
                .ok_or(GiftError::Field("amount"))?,
            divisibility: Some(w.divisibility)
                .filter(|d| *d <= MAX_DIVISIBILITY)
                .ok_or(GiftError::Field("divisibility"))?,
            txid: Txid::from_str(&w.txid).map_err(|_| GiftError::Field("txid"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_reads_back_and_bad_ones_are_refused() {
        let gift = RuneGift {
            rune: RuneId { block: 202, tx: 1 },
            amount: 100_000,
            divisibility: 2,
            txid: Txid::from_str(&"ab".repeat(32)).unwrap(),
        };
        let json = gift.to_json();
        assert_eq!(RuneGift::parse(json.as_bytes()).unwrap(), gift);
        let bad = |from: &str, to: &str| RuneGift::parse(json.replace(from, to).as_bytes());
        assert!(matches!(bad("202:1", "0:1"), Err(GiftError::Field("rune"))));
        assert!(matches!(
            bad("\"100000\"", "\"0\""),
            Err(GiftError::Field("amount"))
        ));
        assert!(matches!(
            bad("\"100000\"", "\"-5\""),
            Err(GiftError::Field("amount"))
        ));
        assert!(matches!(
            bad(":2,", ":39,"),
            Err(GiftError::Field("divisibility"))
        ));
        assert!(matches!(bad("abab", "zz"), Err(GiftError::Field("txid"))));
        assert!(matches!(RuneGift::parse(b"[]"), Err(GiftError::Json(_))));
        let long = vec![b' '; MAX_ANSWER + 1];
        assert!(matches!(
            RuneGift::parse(&long),
            Err(GiftError::TooLarge(_))
        ));
        let address = crate::keys::tests::regtest_keys()
            .derive(crate::KeyPath::receive(crate::Account::Payment, 0))
            .unwrap()
            .address;
        assert_eq!(
            request_body(&address),
            format!(r#"{{"address":"{address}"}}"#)
        );
    }
}
