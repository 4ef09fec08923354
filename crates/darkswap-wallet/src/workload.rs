//! The settlement workload, shared by the native criterion benchmark and the same run in headless
//! Chromium so both measure the same operations: a seller with one rune output and a buyer with
//! three bitcoin outputs settle a partial fill, each side building the swap, the seller signing
//! its half, the buyer checking it and signing its own, the seller checking the whole.

use bitcoin::hashes::Hash;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};

use crate::effect::Balances;
use crate::keys::{Account, KeyPath, Keychain};
use crate::mnemonic::Mnemonic;
use crate::network::Network;
use crate::runestone::RuneId;
use crate::send::FeeRate;
use crate::swap::{accept, build, sign_side, BuyerOffer, Offered, SellerOffer, Side, Terms};

/// Both sides' keys, offers and the agreement.
pub struct SwapWorkload {
    seller: Keychain,
    buyer: Keychain,
    offers: (SellerOffer, BuyerOffer),
    terms: Terms,
    buyer_paths: Vec<KeyPath>,
}

fn keys(phrase: &str) -> Keychain {
    let m = Mnemonic::parse(phrase).unwrap_or_else(|_| unreachable!("a BIP39 test phrase"));
    Keychain::new(&m, "", Network::Regtest).unwrap_or_else(|_| unreachable!("regtest keys"))
}

fn script(k: &Keychain, path: KeyPath) -> ScriptBuf {
    k.derive(path)
        .map(|d| d.script_pubkey)
        .unwrap_or_else(|_| unreachable!("an index below 2^31"))
}

fn offered(n: u8, sats: u64, script_pubkey: ScriptBuf, runes: Balances) -> Offered {
    Offered {
        outpoint: OutPoint {
            txid: Txid::from_byte_array([n; 32]),
            vout: u32::from(n),
        },
        txout: TxOut {
            value: Amount::from_sat(sats),
            script_pubkey,
        },
        runes,
    }
}

impl SwapWorkload {
    /// The fixed workload: 400 of a seller's 1,000 units for 20,000 sat at 3 sat/vB.
    pub fn new() -> SwapWorkload {
        let seller =
            keys("legal winner thank year wave sausage worth useful legal winner thank yellow");
        let buyer = keys(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        );
        let rune = RuneId { block: 840, tx: 1 };
        let seller_offer = SellerOffer {
            inputs: vec![offered(
                200,
                546,
                script(&seller, KeyPath::receive(Account::Runes, 0)),
                Balances::from([(rune, 1_000)]),
            )],
            payment: script(&seller, KeyPath::receive(Account::Payment, 0)),
            rune_change: script(&seller, KeyPath::change(Account::Runes, 0)),
        };
        let buyer_paths: Vec<KeyPath> = (0..3)
            .map(|i| KeyPath::receive(Account::Payment, i))
            .collect();
        let buyer_offer = BuyerOffer {
            inputs: buyer_paths
                .iter()
                .zip(1u8..)
                .map(|(p, n)| offered(n, 10_000, script(&buyer, *p), Balances::new()))
                .collect(),
            receive: script(&buyer, KeyPath::receive(Account::Runes, 0)),
            change: script(&buyer, KeyPath::change(Account::Payment, 0)),
        };
        SwapWorkload {
            seller,
            buyer,
            offers: (seller_offer, buyer_offer),
            terms: Terms {
                rune,
                units: 400,
                price: Amount::from_sat(20_000),
                fee_rate: FeeRate::sat_per_vb(3).unwrap_or_else(|_| unreachable!()),
            },
            buyer_paths,
        }
    }

    /// One settlement, both sides: the fully signed transaction.
    pub fn settle(&self) -> Transaction {
        let (s, b) = &self.offers;
        let seller_paths = [KeyPath::receive(Account::Runes, 0)];
        let at_seller = build(&self.terms, s, b).unwrap_or_else(|e| panic!("{e}"));
        let mut half = at_seller.tx.clone();
        sign_side(
            &self.seller,
            &at_seller,
            Side::Seller,
            &seller_paths,
            &mut half,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let at_buyer = build(&self.terms, s, b).unwrap_or_else(|e| panic!("{e}"));
        let mut full = accept(&at_buyer, Side::Seller, &half).unwrap_or_else(|e| panic!("{e}"));
        sign_side(
            &self.buyer,
            &at_buyer,
            Side::Buyer,
            &self.buyer_paths,
            &mut full,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut done = accept(&at_seller, Side::Buyer, &full).unwrap_or_else(|e| panic!("{e}"));
        for i in at_seller.inputs_of(Side::Seller) {
            done.input[i].witness = half.input[i].witness.clone();
        }
        done
    }
}

impl Default for SwapWorkload {
    fn default() -> Self {
        SwapWorkload::new()
    }
}
