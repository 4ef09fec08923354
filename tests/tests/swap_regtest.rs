//! Settlement's swap transaction on a real chain: a seller holding the relay faucet's test rune
//! (100,000 units, the indexer's count) sells 40,000 units for 0.2 BTC to one buyer, then the
//! remaining 60,000 to a second; each swap is built by both sides from their offers, each side
//! signs its own inputs and checks the other's, Bitcoin Core's `testmempoolaccept` accepts it
//! (every input's script checked by Core's consensus code) before it is broadcast, and after a
//! block ord reports the fill on the buyer's output and the rest on the seller's change, nothing
//! burned.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, OutPoint, Transaction, TxOut};
use darkswap_tests::regtest::{Bitcoind, Ord};
use darkswap_tests::{http_get, http_request, Ports, Relay};
use darkswap_wallet::effect::Balances;
use darkswap_wallet::esplora::{parse_tx_hex, tx_hex_path};
use darkswap_wallet::faucet::{request_body, RuneGift};
use darkswap_wallet::ord_api::{output_path, parse_output, parse_rune, rune_path};
use darkswap_wallet::swap::{
    accept, build, check_offered, sign_side, BuyerOffer, OfferError, Offered, SellerOffer, Side,
    Terms,
};
use darkswap_wallet::{
    Account, Assets, FeeRate, KeyPath, Keychain, Mnemonic, Network, RuneId, WordCount,
};

fn wallet() -> Keychain {
    Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest).unwrap()
}

struct Chain {
    node: Bitcoind,
    ord: Ord,
    relay: Relay,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn tx(&self, txid: &bitcoin::Txid) -> Result<Transaction> {
        let (status, body) =
            http_get(&format!("{}/esplora{}", self.relay.http, tx_hex_path(txid)))?;
        ensure!(status == 200, "{status} {body}");
        Ok(parse_tx_hex(body.as_bytes(), *txid)?)
    }

    /// What the other side checks an offered output against: its transaction and ord's report.
    fn evidence(&self, outpoint: OutPoint) -> Result<(Transaction, Assets)> {
        let tx = self.tx(&outpoint.txid)?;
        let txout: TxOut = tx.output[outpoint.vout as usize].clone();
        let assets = parse_output(
            self.ord.get(&output_path(&outpoint))?.as_bytes(),
            outpoint,
            &txout,
        )?;
        let mut ids = BTreeMap::new();
        for (name, _) in assets.runes.iter().flatten() {
            let info = parse_rune(self.ord.get(&format!("/rune/{name}"))?.as_bytes())?;
            ids.insert(name.clone(), info.id);
        }
        Ok((tx, assets.to_assets(&ids)?))
    }

    /// An output as its owner offers it, checked as the other side checks it.
    fn offered(&self, outpoint: OutPoint) -> Result<Offered> {
        let (tx, assets) = self.evidence(outpoint)?;
        let Assets::Known { runes, .. } = &assets else {
            anyhow::bail!("ord has not indexed {outpoint}");
        };
        let offer = Offered {
            outpoint,
            txout: tx.output[outpoint.vout as usize].clone(),
            runes: runes.clone(),
        };
        check_offered(&offer, &tx, &assets)?;
        Ok(offer)
    }

    fn faucet(&self, path: &str, to: &bitcoin::Address) -> Result<String> {
        let (status, body) = http_request(
            "POST",
            &format!("{}{path}", self.relay.http),
            &[("Content-Type", "application/json")],
            request_body(to).as_bytes(),
        )?;
        ensure!(status == 200, "{status} {body}");
        Ok(body)
    }

    fn synced(&self) -> Result<()> {
        self.ord.synced_to(self.node.height()?)
    }
}

/// One swap: both sides build it, sign their halves, check each other's; Core accepts it before
/// it is broadcast; it is mined.
fn settle(
    chain: &Chain,
    terms: &Terms,
    (seller, s, s_paths): (&Keychain, &SellerOffer, &[KeyPath]),
    (buyer, b, b_paths): (&Keychain, &BuyerOffer, &[KeyPath]),
) -> Result<Transaction> {
    let at_seller = build(terms, s, b)?;
    let at_buyer = build(terms, s, b)?;
    assert_eq!(at_seller, at_buyer, "both sides build the same bytes");
    let mut half = at_seller.tx.clone();
    sign_side(seller, &at_seller, Side::Seller, s_paths, &mut half)?;
    let mut full = accept(&at_buyer, Side::Seller, &half)?;
    sign_side(buyer, &at_buyer, Side::Buyer, b_paths, &mut full)?;
    let done = accept(&at_seller, Side::Buyer, &full)?;
    let mut done = done;
    sign_side(seller, &at_seller, Side::Seller, s_paths, &mut done)?;
    let hex = serialize_hex(&done);
    let verdict = chain
        .node
        .cli(&["testmempoolaccept", &format!("[\"{hex}\"]")])?;
    ensure!(
        verdict[0]["allowed"] == true,
        "Core refused the swap: {verdict}"
    );
    // Core's own fee matches the one both sides agreed.
    let core_fee = darkswap_tests::regtest::btc_to_sats(&verdict[0]["fees"]["base"])?;
    assert_eq!(Amount::from_sat(core_fee), at_seller.fee);
    chain.node.cli(&["sendrawtransaction", &hex])?;
    chain.node.mine_to(
        1,
        &wallet()
            .derive(KeyPath::receive(Account::Payment, 0))?
            .address
            .to_string(),
    )?;
    chain.synced()?;
    Ok(done)
}

#[test]
fn a_seller_fills_two_buyers_in_two_atomic_swaps_that_core_and_ord_accept() -> Result<()> {
    let node = Bitcoind::start()?;
    let ord = Ord::start(&node)?;
    let dir = tempfile::tempdir()?;
    let flags = node.relay_flags(&dir.path().join("rpc.password"), Some(&ord.url()), true)?;
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let relay = Relay::start(&dir.path().join("relay"), Ports::default(), &flags)?;
    let chain = Chain {
        node,
        ord,
        relay,
        _dir: dir,
    };

    let (seller, alice, bob) = (wallet(), wallet(), wallet());
    let seller_runes = KeyPath::receive(Account::Runes, 0);
    let seller_to = seller.derive(seller_runes)?.address;
    let gift = RuneGift::parse(chain.faucet("/api/faucet/runes", &seller_to)?.as_bytes())?;
    let rune: RuneId = gift.rune;
    // Each buyer: 101 blocks from the faucet, the first coinbase mature.
    let mut coinbase = Vec::new();
    for buyer in [&alice, &bob] {
        let to = buyer.derive(KeyPath::receive(Account::Payment, 0))?.address;
        chain.faucet("/api/faucet", &to)?;
        let first = chain
            .node
            .scan(&to.to_string())?
            .into_iter()
            .max_by_key(|o| o.confirmations)
            .context("no coinbase")?;
        coinbase.push(OutPoint::new(first.txid.parse()?, first.vout));
    }
    chain.synced()?;

    let held = chain.offered(OutPoint::new(gift.txid, 0))?;
    assert_eq!(
        held.runes,
        Balances::from([(rune, 100_000)]),
        "ord's count of the gift"
    );
    // A seller claiming more than its output holds is caught by ord's count.
    let mut inflated = held.clone();
    inflated.runes.insert(rune, 1_000_000);
    let (tx, assets) = chain.evidence(held.outpoint)?;
    assert!(matches!(
        check_offered(&inflated, &tx, &assets),
        Err(OfferError::Runes { .. })
    ));
    let s = SellerOffer {
        inputs: vec![held],
        payment: seller
            .derive(KeyPath::receive(Account::Payment, 0))?
            .script_pubkey,
        rune_change: seller
            .derive(KeyPath::change(Account::Runes, 0))?
            .script_pubkey,
    };
    let b = BuyerOffer {
        inputs: vec![chain.offered(coinbase[0])?],
        receive: alice
            .derive(KeyPath::receive(Account::Runes, 0))?
            .script_pubkey,
        change: alice
            .derive(KeyPath::change(Account::Payment, 0))?
            .script_pubkey,
    };
    let terms = Terms {
        rune,
        units: 40_000,
        price: Amount::from_sat(20_000_000),
        fee_rate: FeeRate::sat_per_vb(2)?,
    };
    let first = settle(
        &chain,
        &terms,
        (&seller, &s, &[seller_runes]),
        (&alice, &b, &[KeyPath::receive(Account::Payment, 0)]),
    )?;
    let fill = chain.offered(OutPoint::new(first.compute_txid(), 0))?;
    assert_eq!(
        fill.runes,
        Balances::from([(rune, 40_000)]),
        "alice's output, by ord"
    );
    let change = chain.offered(OutPoint::new(first.compute_txid(), 1))?;
    assert_eq!(
        change.runes,
        Balances::from([(rune, 60_000)]),
        "the seller's change, by ord"
    );
    let burned = parse_rune_burned(&chain, &rune)?;
    assert_eq!(burned, 0);

    // The second buyer takes the rest, from the seller's rune change: no rune change now.
    let s2 = SellerOffer {
        inputs: vec![change],
        ..s.clone()
    };
    let b2 = BuyerOffer {
        inputs: vec![chain.offered(coinbase[1])?],
        receive: bob
            .derive(KeyPath::receive(Account::Runes, 0))?
            .script_pubkey,
        change: bob
            .derive(KeyPath::change(Account::Payment, 0))?
            .script_pubkey,
    };
    let rest = Terms {
        units: 60_000,
        price: Amount::from_sat(30_000_000),
        ..terms
    };
    let second = settle(
        &chain,
        &rest,
        (&seller, &s2, &[KeyPath::change(Account::Runes, 0)]),
        (&bob, &b2, &[KeyPath::receive(Account::Payment, 0)]),
    )?;
    let bobs = chain.offered(OutPoint::new(second.compute_txid(), 0))?;
    assert_eq!(bobs.runes, Balances::from([(rune, 60_000)]));
    let paid = second
        .output
        .iter()
        .find(|o| o.script_pubkey == s.payment)
        .context("the seller's payment")?;
    // The price, plus the 546 sat the rune output carried, less the seller's part of the fee.
    assert!(paid.value > Amount::from_sat(29_999_000) && paid.value < Amount::from_sat(30_000_546));
    assert_eq!(parse_rune_burned(&chain, &rune)?, 0);
    Ok(())
}

fn parse_rune_burned(chain: &Chain, rune: &RuneId) -> Result<u128> {
    let v: serde_json::Value = serde_json::from_str(&chain.ord.get(&rune_path(rune))?)?;
    v["entry"]["burned"]
        .as_u64()
        .map(u128::from)
        .context("ord's burned count")
}
