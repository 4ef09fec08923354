//! The swap's offers in their wire form (`darkswap_proto::settle`) and back.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, TxOut, Txid};
use darkswap_proto::settle::{WireInput, WireOffer, WireRune};
use darkswap_wallet::effect::Balances;
use darkswap_wallet::runestone::RuneId;
use darkswap_wallet::swap::{BuyerOffer, Offered, SellerOffer, Side};

/// One side's offer, either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// A rune seller's.
    Seller(SellerOffer),
    /// A buyer's.
    Buyer(BuyerOffer),
}

impl Offer {
    /// Which side made it.
    pub fn side(&self) -> Side {
        match self {
            Offer::Seller(_) => Side::Seller,
            Offer::Buyer(_) => Side::Buyer,
        }
    }

    /// The outputs it spends.
    pub fn inputs(&self) -> &[Offered] {
        match self {
            Offer::Seller(s) => &s.inputs,
            Offer::Buyer(b) => &b.inputs,
        }
    }

    /// Its outpoints, in the order offered.
    pub fn outpoints(&self) -> Vec<OutPoint> {
        self.inputs().iter().map(|o| o.outpoint).collect()
    }

    /// The wire form.
    pub fn to_wire(&self) -> WireOffer {
        let (inputs, first, second) = match self {
            Offer::Seller(s) => (&s.inputs, &s.payment, &s.rune_change),
            Offer::Buyer(b) => (&b.inputs, &b.receive, &b.change),
        };
        WireOffer {
            inputs: inputs
                .iter()
                .map(|o| WireInput {
                    txid: o.outpoint.txid.to_byte_array(),
                    vout: o.outpoint.vout,
                    value: o.txout.value.to_sat(),
                    script: o.txout.script_pubkey.to_bytes(),
                    runes: o
                        .runes
                        .iter()
                        .map(|(id, amount)| WireRune {
                            block: id.block,
                            tx: id.tx,
                            amount: *amount,
                        })
                        .collect(),
                })
                .collect(),
            first_script: first.to_bytes(),
            second_script: second.to_bytes(),
        }
    }

    /// Reads an offer made by `side` (the wire form's caps were checked when it was decoded;
    /// they are checked again here, so a hand-made one is held to them too).
    pub fn from_wire(
        side: Side,
        wire: &WireOffer,
    ) -> Result<Offer, darkswap_proto::settle::SettleWireError> {
        wire.check()?;
        let inputs: Vec<Offered> = wire
            .inputs
            .iter()
            .map(|i| Offered {
                outpoint: OutPoint {
                    txid: Txid::from_byte_array(i.txid),
                    vout: i.vout,
                },
                txout: TxOut {
                    value: Amount::from_sat(i.value),
                    script_pubkey: ScriptBuf::from_bytes(i.script.clone()),
                },
                runes: i
                    .runes
                    .iter()
                    .map(|r| {
                        (
                            RuneId {
                                block: r.block,
                                tx: r.tx,
                            },
                            r.amount,
                        )
                    })
                    .collect::<Balances>(),
            })
            .collect();
        let first = ScriptBuf::from_bytes(wire.first_script.clone());
        let second = ScriptBuf::from_bytes(wire.second_script.clone());
        Ok(match side {
            Side::Seller => Offer::Seller(SellerOffer {
                inputs,
                payment: first,
                rune_change: second,
            }),
            Side::Buyer => Offer::Buyer(BuyerOffer {
                inputs,
                receive: first,
                change: second,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use darkswap_proto::settle::SettleMessage;

    #[test]
    fn both_kinds_survive_the_wire() {
        let offered = |n: u8, runes: Balances| Offered {
            outpoint: OutPoint {
                txid: Txid::from_byte_array([n; 32]),
                vout: u32::from(n),
            },
            txout: TxOut {
                value: Amount::from_sat(1_000 + u64::from(n)),
                script_pubkey: ScriptBuf::from_bytes(vec![0x51, 0x20, n]),
            },
            runes,
        };
        let rune = RuneId { block: 9, tx: 2 };
        let seller = Offer::Seller(SellerOffer {
            inputs: vec![offered(1, Balances::from([(rune, u128::MAX)]))],
            payment: ScriptBuf::from_bytes(vec![1]),
            rune_change: ScriptBuf::from_bytes(vec![2]),
        });
        let buyer = Offer::Buyer(BuyerOffer {
            inputs: vec![offered(3, Balances::new()), offered(4, Balances::new())],
            receive: ScriptBuf::from_bytes(vec![3]),
            change: ScriptBuf::from_bytes(vec![4]),
        });
        for offer in [seller, buyer] {
            let bytes = SettleMessage::Offer(offer.to_wire()).encode();
            let Ok(SettleMessage::Offer(w)) = SettleMessage::decode(&bytes) else {
                panic!("decodes");
            };
            assert_eq!(Offer::from_wire(offer.side(), &w), Ok(offer));
        }
    }
}
