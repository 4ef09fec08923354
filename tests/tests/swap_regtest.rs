//! Settlement on a real chain, through the settlement state machines of both sides: a seller
//! holding the relay faucet's test rune (100,000 units, the indexer's count) sells 40,000 units
//! for 0.2 BTC to one buyer, then the remaining 60,000 to a second. Each side chooses its
//! outputs from its wallet, the two exchange offers and signed halves as wire messages, look
//! the other's outputs up through the relay's chain gateway (the transaction, whether it is
//! spent) and ord (its runes), build the same swap, sign (the taker first), and broadcast
//! through the gateway; Bitcoin Core's `testmempoolaccept` accepts every transaction (each
//! input's script checked by Core's consensus code) before it goes out. Both sides watch the
//! chain through the gateway until the confirmation settles the trade, and ord reports the fill
//! on the buyer's output and the rest on the seller's change, nothing burned. A seller that
//! claims more runes than ord counts is refused before the buyer signs.

use std::collections::{BTreeMap, VecDeque};

use anyhow::{bail, ensure, Context, Result};
use bitcoin::consensus::encode::serialize_hex;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};
use darkswap_proto::settle::SettleMessage;
use darkswap_settle::{
    select, Action, ChainStatus, Deal, Found, Output, Params, Role, Settlement, Step,
};
use darkswap_tests::regtest::{Bitcoind, Ord, Regtest};
use darkswap_tests::{http_get, http_request, Relay};
use darkswap_wallet::effect::Balances;
use darkswap_wallet::esplora::{
    outspend_path, parse_outspend, parse_tx_hex, parse_tx_status, tx_hex_path, tx_status_path,
};
use darkswap_wallet::faucet::RuneGift;
use darkswap_wallet::ord_api::{output_path, parse_output, parse_rune, rune_path};
use darkswap_wallet::swap::{Side, Terms};
use darkswap_wallet::{
    Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic, Network, RuneId, Utxo, WordCount,
};

struct Chain {
    node: Bitcoind,
    ord: Ord,
    relay: Relay,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn esplora(&self, path: &str) -> Result<(u16, String)> {
        http_get(&format!("{}/esplora{path}", self.relay.http))
    }

    fn tx(&self, txid: &bitcoin::Txid) -> Result<Option<Transaction>> {
        let (status, body) = self.esplora(&tx_hex_path(txid))?;
        match status {
            200 => Ok(Some(parse_tx_hex(body.as_bytes(), *txid)?)),
            404 => Ok(None),
            _ => bail!("{status} {body}"),
        }
    }

    fn spent(&self, outpoint: &OutPoint) -> Result<bool> {
        let (status, body) = self.esplora(&outspend_path(outpoint))?;
        ensure!(status == 200, "{status} {body}");
        Ok(parse_outspend(body.as_bytes())?)
    }

    /// What ord reports on an output (rune names turned into ids with ord's `/rune/{name}`).
    fn assets(&self, outpoint: OutPoint, tx: &Transaction) -> Result<Assets> {
        let txout = tx.output[outpoint.vout as usize].clone();
        let listed = parse_output(
            self.ord.get(&output_path(&outpoint))?.as_bytes(),
            outpoint,
            &txout,
        )?;
        let mut ids = BTreeMap::new();
        for (name, _) in listed.runes.iter().flatten() {
            let info = parse_rune(self.ord.get(&format!("/rune/{name}"))?.as_bytes())?;
            ids.insert(name.clone(), info.id);
        }
        Ok(listed.to_assets(&ids)?)
    }

    /// The other side's output as a settlement looks it up.
    fn found(&self, outpoint: OutPoint) -> Result<Found> {
        let tx = self.tx(&outpoint.txid)?;
        let (spent, assets) = match &tx {
            Some(tx) => (self.spent(&outpoint)?, self.assets(outpoint, tx)?),
            None => (false, Assets::Unknown),
        };
        Ok(Found {
            outpoint,
            tx,
            spent,
            assets,
        })
    }

    /// One of our own outputs, as the wallet's scan would hold it.
    fn utxo(&self, outpoint: OutPoint, path: KeyPath) -> Result<Utxo> {
        let tx = self
            .tx(&outpoint.txid)?
            .context("our own output's transaction")?;
        Ok(Utxo {
            outpoint,
            txout: tx.output[outpoint.vout as usize].clone(),
            path,
            confirmations: 1,
            assets: self.assets(outpoint, &tx)?,
        })
    }

    /// The swap as both sides watch it: its inputs first, then its status.
    fn status(&self, s: &Settlement) -> Result<ChainStatus> {
        let swap = s.swap().context("watching before the swap is built")?;
        let mut spent = vec![];
        for i in &swap.tx.input {
            if self.spent(&i.previous_output)? {
                spent.push(i.previous_output);
            }
        }
        let txid = swap.tx.compute_txid();
        let (status, body) = self.esplora(&tx_status_path(&txid))?;
        let confirmations = match status {
            404 => None,
            200 => Some(match parse_tx_status(body.as_bytes())? {
                None => 0,
                Some(h) => (self.node.height()? as u32).saturating_sub(h) + 1,
            }),
            _ => bail!("{status} {body}"),
        };
        Ok(ChainStatus::observed(
            &spent,
            confirmations,
            &s.our_outpoints(),
        ))
    }

    /// Core checks every input's script before the transaction goes out through the gateway.
    fn broadcast(&self, tx: &Transaction, fee: Amount) -> Result<()> {
        let hex = serialize_hex(tx);
        let verdict = self
            .node
            .cli(&["testmempoolaccept", &format!("[\"{hex}\"]")])?;
        let known = verdict[0]["reject-reason"] == "txn-already-in-mempool";
        ensure!(
            verdict[0]["allowed"] == true || known,
            "Core refused the swap: {verdict}"
        );
        if !known {
            let core_fee = darkswap_tests::regtest::btc_to_sats(&verdict[0]["fees"]["base"])?;
            assert_eq!(
                Amount::from_sat(core_fee),
                fee,
                "Core's fee is the agreed one"
            );
        }
        let (status, body) = http_request(
            "POST",
            &format!("{}/esplora/tx", self.relay.http),
            &[],
            hex.as_bytes(),
        )?;
        ensure!(status == 200 || known, "broadcast: {status} {body}");
        Ok(())
    }

    fn faucet(&self, path: &str, to: &bitcoin::Address) -> Result<String> {
        self.relay.faucet(path, to)
    }

    fn mine(&self) -> Result<()> {
        let keys = Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest)?;
        let to = keys.derive(KeyPath::receive(Account::Payment, 0))?.address;
        self.node.mine_to(1, &to.to_string())?;
        self.ord.synced_to(self.node.height()?)
    }
}

/// A trader: keys, the outputs its wallet holds, its locks, its settlement of one trade.
struct Trader {
    keys: Keychain,
    utxos: Vec<Utxo>,
    locks: Locks<[u8; 16]>,
    s: Option<Settlement>,
    refused: Vec<&'static str>,
}

impl Trader {
    fn new() -> Result<Trader> {
        Ok(Trader {
            keys: Keychain::new(&Mnemonic::generate(WordCount::Twelve), "", Network::Regtest)?,
            utxos: vec![],
            locks: Locks::new(64),
            s: None,
            refused: vec![],
        })
    }

    fn script(&self, path: KeyPath) -> Result<ScriptBuf> {
        Ok(self.keys.derive(path)?.script_pubkey)
    }

    fn settlement(&mut self) -> Result<&mut Settlement> {
        self.s.as_mut().context("no settlement")
    }

    /// Carries `out` out; returns the messages for the other side.
    fn apply(&mut self, out: Output, chain: &Chain, trade: [u8; 16]) -> Result<Vec<SettleMessage>> {
        let mut queue = VecDeque::from([out]);
        let mut sent = vec![];
        while let Some(out) = queue.pop_front() {
            if let Some(r) = &out.refused {
                self.refused.push(r.label());
            }
            for a in out.actions {
                match a {
                    Action::Lock(points) => self.locks.lock(&points, trade)?,
                    Action::Release => {
                        self.locks.release(&trade);
                    }
                    Action::Lookup(points) => {
                        let found: Vec<Found> = points
                            .iter()
                            .map(|p| chain.found(*p))
                            .collect::<Result<_>>()?;
                        let s = self.s.as_mut().context("no settlement")?;
                        queue.push_back(s.on_lookups(&found, &self.keys, now()));
                    }
                    Action::Send(m) => sent.push(m),
                    Action::Broadcast(tx) => {
                        let fee = self.settlement()?.swap().context("swap")?.fee;
                        chain.broadcast(&tx, fee)?;
                    }
                    Action::Watch { .. } => {}
                }
            }
        }
        Ok(sent)
    }

    fn receive(
        &mut self,
        m: SettleMessage,
        chain: &Chain,
        trade: [u8; 16],
    ) -> Result<Vec<SettleMessage>> {
        let m = SettleMessage::decode(&m.encode())?;
        let s = self.s.as_mut().context("no settlement")?;
        let out = s.on_message(m, &self.keys, now());
        self.apply(out, chain, trade)
    }

    fn watch(&mut self, chain: &Chain, trade: [u8; 16]) -> Result<Step> {
        let status = chain.status(self.s.as_ref().context("no settlement")?)?;
        let out = self.settlement()?.on_chain(status, now());
        self.apply(out, chain, trade)?;
        Ok(self.settlement()?.step())
    }
}

fn now() -> u64 {
    darkswap_proto::unix_time_ms()
}

/// Starts both sides (`claim` may alter the seller's offer, as a cheater would), then carries
/// messages both ways until neither has more to say.
fn negotiate(
    chain: &Chain,
    seller: &mut Trader,
    buyer: &mut Trader,
    terms: Terms,
    trade: [u8; 16],
    claim: impl FnOnce(&mut select::Ours),
) -> Result<()> {
    let mut ours = select::seller(
        &seller.utxos,
        &seller.locks,
        &terms,
        seller.script(KeyPath::receive(Account::Payment, 0))?,
        seller.script(KeyPath::change(Account::Runes, 0))?,
    )?;
    claim(&mut ours);
    let deal = |role, side| Deal {
        trade_id: trade,
        role,
        side,
        terms,
    };
    let (s, out) = Settlement::start(
        deal(Role::Maker, Side::Seller),
        Params::DEFAULT,
        ours,
        now(),
    );
    seller.s = Some(s);
    let mut to_buyer = VecDeque::from(seller.apply(out, chain, trade)?);
    let ours = select::buyer(
        &buyer.utxos,
        &buyer.locks,
        &terms,
        buyer.script(KeyPath::receive(Account::Runes, 0))?,
        buyer.script(KeyPath::change(Account::Payment, 0))?,
    )?;
    let (s, out) = Settlement::start(deal(Role::Taker, Side::Buyer), Params::DEFAULT, ours, now());
    buyer.s = Some(s);
    let mut to_seller = VecDeque::from(buyer.apply(out, chain, trade)?);
    for _ in 0..20 {
        if let Some(m) = to_seller.pop_front() {
            to_buyer.extend(seller.receive(m, chain, trade)?);
        } else if let Some(m) = to_buyer.pop_front() {
            to_seller.extend(buyer.receive(m, chain, trade)?);
        } else {
            return Ok(());
        }
    }
    bail!("the two sides never stopped talking")
}

/// An honest fill: broadcast by both, settled by both on the first confirmation.
fn settle(
    chain: &Chain,
    seller: &mut Trader,
    buyer: &mut Trader,
    terms: Terms,
    trade: [u8; 16],
) -> Result<Transaction> {
    negotiate(chain, seller, buyer, terms, trade, |_| {})?;
    for t in [&mut *seller, &mut *buyer] {
        ensure!(t.refused.is_empty(), "refused: {:?}", t.refused);
        assert_eq!(t.settlement()?.step(), Step::Broadcast);
        assert_eq!(t.watch(chain, trade)?, Step::Broadcast, "in the mempool");
    }
    let full = seller
        .settlement()?
        .full()
        .context("the whole swap")?
        .clone();
    assert_eq!(
        buyer.settlement()?.full(),
        Some(&full),
        "both hold the same bytes"
    );
    chain.mine()?;
    for t in [&mut *seller, &mut *buyer] {
        assert_eq!(t.watch(chain, trade)?, Step::Settled);
        let ours = t.settlement()?.our_outpoints();
        assert!(ours.iter().all(|o| !t.locks.is_locked(o)), "released");
    }
    Ok(full)
}

#[test]
fn a_seller_fills_two_buyers_through_the_settlement_machines_and_core_and_ord_agree() -> Result<()>
{
    let Regtest {
        node,
        ord,
        relay,
        dir,
    } = Regtest::start()?;
    let chain = Chain {
        node,
        ord,
        relay,
        _dir: dir,
    };

    let (mut seller, mut alice, mut bob) = (Trader::new()?, Trader::new()?, Trader::new()?);
    let seller_runes = KeyPath::receive(Account::Runes, 0);
    let gift = RuneGift::parse(
        chain
            .faucet(
                "/api/faucet/runes",
                &seller.keys.derive(seller_runes)?.address,
            )?
            .as_bytes(),
    )?;
    let rune: RuneId = gift.rune;
    // Each buyer: 101 blocks from the faucet, the first coinbase mature.
    for buyer in [&mut alice, &mut bob] {
        let path = KeyPath::receive(Account::Payment, 0);
        let to = buyer.keys.derive(path)?.address;
        chain.faucet("/api/faucet", &to)?;
        let first = chain
            .node
            .scan(&to.to_string())?
            .into_iter()
            .max_by_key(|o| o.confirmations)
            .context("no coinbase")?;
        chain.ord.synced_to(chain.node.height()?)?;
        let at = OutPoint::new(first.txid.parse()?, first.vout);
        buyer.utxos.push(chain.utxo(at, path)?);
    }
    let held = chain.utxo(OutPoint::new(gift.txid, 0), seller_runes)?;
    assert_eq!(
        held.runes(),
        Balances::from([(rune, 100_000)]),
        "ord's count"
    );
    seller.utxos.push(held);

    let terms = Terms {
        rune,
        units: 40_000,
        price: Amount::from_sat(20_000_000),
        fee_rate: FeeRate::sat_per_vb(2)?,
    };

    // A seller claiming more than its output holds: ord's count says otherwise, and the buyer
    // refuses before signing; both sides' outputs are free again.
    negotiate(&chain, &mut seller, &mut bob, terms, [9; 16], |ours| {
        if let darkswap_settle::Offer::Seller(s) = &mut ours.offer {
            s.inputs[0].runes.insert(rune, 1_000_000);
        }
    })?;
    assert_eq!(bob.refused, vec!["runes_claim"]);
    assert_eq!(bob.settlement()?.step(), Step::Aborted);
    assert_eq!(seller.settlement()?.step(), Step::Aborted);
    assert!(!bob.locks.is_locked(&bob.utxos[0].outpoint));
    assert!(!seller.locks.is_locked(&seller.utxos[0].outpoint));
    bob.refused.clear();

    let first = settle(&chain, &mut seller, &mut alice, terms, [1; 16])?;
    let txid = first.compute_txid();
    let fill = chain.utxo(OutPoint::new(txid, 0), KeyPath::receive(Account::Runes, 0))?;
    assert_eq!(
        fill.runes(),
        Balances::from([(rune, 40_000)]),
        "alice's, by ord"
    );
    let change = chain.utxo(OutPoint::new(txid, 1), KeyPath::change(Account::Runes, 0))?;
    assert_eq!(
        change.runes(),
        Balances::from([(rune, 60_000)]),
        "the seller's change"
    );
    assert_eq!(parse_rune_burned(&chain, &rune)?, 0);

    // The second buyer takes the rest, from the seller's rune change: no rune change now.
    seller.utxos = vec![change];
    let rest = Terms {
        units: 60_000,
        price: Amount::from_sat(30_000_000),
        ..terms
    };
    let second = settle(&chain, &mut seller, &mut bob, rest, [2; 16])?;
    let bobs = chain.utxo(
        OutPoint::new(second.compute_txid(), 0),
        KeyPath::receive(Account::Runes, 0),
    )?;
    assert_eq!(bobs.runes(), Balances::from([(rune, 60_000)]));
    let payment = seller.script(KeyPath::receive(Account::Payment, 0))?;
    let paid = second
        .output
        .iter()
        .find(|o| o.script_pubkey == payment)
        .context("the seller's payment")?;
    // The price, plus the 546 sat the rune output carried, less the seller's part of the fee.
    assert!(paid.value > Amount::from_sat(29_999_000) && paid.value < Amount::from_sat(30_000_546));
    assert_eq!(parse_rune_burned(&chain, &rune)?, 0);
    // The gateway's spend and status answers, as the machines read them.
    assert!(
        chain.spent(&OutPoint::new(txid, 1))?,
        "the change is spent by the second swap"
    );
    assert!(!chain.spent(&OutPoint::new(second.compute_txid(), 0))?);
    let unknown = "11".repeat(32);
    assert_eq!(chain.esplora(&format!("/tx/{unknown}/status"))?.0, 404);
    assert_eq!(chain.esplora(&format!("/tx/{unknown}/outspend/0"))?.0, 404);
    assert_eq!(
        chain.esplora(&format!("/tx/{txid}/outspend/99"))?.0,
        404,
        "no such output"
    );
    assert_eq!(chain.esplora("/tx/nothex/status")?.0, 400);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let (_, metrics) = http_get(&format!("{}/metrics", chain.relay.http))?;
    for (endpoint, outcome) in [
        ("tx_status", "ok"),
        ("tx_status", "not_found"),
        ("tx_status", "bad_request"),
        ("outspend", "ok"),
        ("outspend", "not_found"),
    ] {
        let n = darkswap_tests::metric_value(
            &metrics,
            &format!("darkswap_relay_chain_gateway_requests_total{{endpoint=\"{endpoint}\",outcome=\"{outcome}\"}}"),
        )
        .unwrap_or(0.0);
        assert!(n >= 1.0, "{endpoint} {outcome} counted");
    }
    Ok(())
}

fn parse_rune_burned(chain: &Chain, rune: &RuneId) -> Result<u128> {
    let v: serde_json::Value = serde_json::from_str(&chain.ord.get(&rune_path(rune))?)?;
    v["entry"]["burned"]
        .as_u64()
        .map(u128::from)
        .context("ord's burned count")
}
