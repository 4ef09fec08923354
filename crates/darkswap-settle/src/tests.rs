//! Both sides of a settlement against each other, with real keys and real swaps: every message
//! goes through its wire encoding. The hostile counterparty is a real settlement whose outgoing
//! messages are altered (and its own inputs signed again over the altered bytes), so it speaks
//! the protocol exactly as a cheater would.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bitcoin::absolute::LockTime;
use bitcoin::consensus::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::transaction::Version;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Txid, Witness};
use darkswap_proto::settle::SettleMessage;
use darkswap_wallet::effect::{effect, Balances};
use darkswap_wallet::keys::{Account, KeyPath, Keychain};
use darkswap_wallet::mnemonic::Mnemonic;
use darkswap_wallet::network::Network;
use darkswap_wallet::runestone::{Edict, RuneId, Runestone};
use darkswap_wallet::send::FeeRate;
use darkswap_wallet::swap::{Side, Terms};
use darkswap_wallet::utxo::{Assets, Locks, Utxo};

use crate::{
    select, Action, ChainStatus, Deal, Found, Output, Params, Role, SelectError, Settlement, Step,
};

const T0: u64 = 1_700_000_000_000;
const RUNE: RuneId = RuneId {
    block: 840_000,
    tx: 3,
};
const TRADE: [u8; 16] = [7; 16];

fn keys(phrase: &str) -> Keychain {
    Keychain::new(&Mnemonic::parse(phrase).unwrap(), "", Network::Regtest).unwrap()
}

fn script(k: &Keychain, path: KeyPath) -> ScriptBuf {
    k.derive(path).unwrap().script_pubkey
}

/// What the chain and the rune indexer know, as the caller would look it up.
#[derive(Default)]
struct Chain {
    txs: BTreeMap<Txid, Transaction>,
    assets: BTreeMap<OutPoint, Assets>,
    spent: BTreeSet<OutPoint>,
}

impl Chain {
    /// A transaction paying `outputs` (each with its runes as the indexer would report them).
    fn fund(&mut self, seed: u8, outputs: Vec<(TxOut, Balances)>) -> Vec<OutPoint> {
        let tx = Transaction {
            version: Version::TWO,
            lock_time: LockTime::ZERO,
            input: vec![TxIn {
                previous_output: OutPoint {
                    txid: Txid::from_byte_array([seed; 32]),
                    vout: 0,
                },
                script_sig: ScriptBuf::new(),
                sequence: Sequence::MAX,
                witness: Witness::new(),
            }],
            output: outputs.iter().map(|(o, _)| o.clone()).collect(),
        };
        let txid = tx.compute_txid();
        let points: Vec<OutPoint> = (0..outputs.len() as u32)
            .map(|vout| OutPoint { txid, vout })
            .collect();
        for (p, (_, runes)) in points.iter().zip(outputs) {
            self.assets.insert(
                *p,
                Assets::Known {
                    runes,
                    inscriptions: 0,
                },
            );
        }
        self.txs.insert(txid, tx);
        points
    }

    fn lookup(&self, outpoints: &[OutPoint]) -> Vec<Found> {
        outpoints
            .iter()
            .map(|o| Found {
                outpoint: *o,
                tx: self.txs.get(&o.txid).cloned(),
                spent: self.spent.contains(o),
                assets: self.assets.get(o).cloned().unwrap_or(Assets::Unknown),
            })
            .collect()
    }
}

struct Wallet {
    keys: Keychain,
    utxos: Vec<Utxo>,
    locks: Locks<[u8; 16]>,
}

impl Wallet {
    fn utxo(&mut self, chain: &Chain, at: OutPoint, path: KeyPath) {
        let tx = &chain.txs[&at.txid];
        self.utxos.push(Utxo {
            outpoint: at,
            txout: tx.output[at.vout as usize].clone(),
            path,
            confirmations: 1,
            assets: chain.assets[&at].clone(),
        });
    }
}

/// A seller with one output of 1,000 units and 50,000 sat of plain bitcoin.
fn seller_wallet(chain: &mut Chain) -> Wallet {
    let keys = keys("legal winner thank year wave sausage worth useful legal winner thank yellow");
    let rune_path = KeyPath::receive(Account::Runes, 0);
    let money_path = KeyPath::receive(Account::Payment, 0);
    let points = chain.fund(
        1,
        vec![
            (
                TxOut {
                    value: Amount::from_sat(546),
                    script_pubkey: script(&keys, rune_path),
                },
                Balances::from([(RUNE, 1_000)]),
            ),
            (
                TxOut {
                    value: Amount::from_sat(50_000),
                    script_pubkey: script(&keys, money_path),
                },
                Balances::new(),
            ),
        ],
    );
    let mut w = Wallet {
        keys,
        utxos: vec![],
        locks: Locks::new(64),
    };
    w.utxo(chain, points[0], rune_path);
    w.utxo(chain, points[1], money_path);
    w
}

/// A buyer with three outputs of 10,000 sat.
fn buyer_wallet(chain: &mut Chain) -> Wallet {
    let keys = keys(
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
    );
    let paths: Vec<KeyPath> = (0..3)
        .map(|i| KeyPath::receive(Account::Payment, i))
        .collect();
    let points = chain.fund(
        2,
        paths
            .iter()
            .map(|p| {
                (
                    TxOut {
                        value: Amount::from_sat(10_000),
                        script_pubkey: script(&keys, *p),
                    },
                    Balances::new(),
                )
            })
            .collect(),
    );
    let mut w = Wallet {
        keys,
        utxos: vec![],
        locks: Locks::new(64),
    };
    for (at, p) in points.into_iter().zip(paths) {
        w.utxo(chain, at, p);
    }
    w
}

fn terms() -> Terms {
    Terms {
        rune: RUNE,
        units: 400,
        price: Amount::from_sat(20_000),
        fee_rate: FeeRate::sat_per_vb(2).unwrap(),
    }
}

/// One side: its settlement and what its actions did.
struct Party {
    s: Settlement,
    w: Wallet,
    broadcast: Vec<Transaction>,
    refused: Vec<&'static str>,
    watched: Option<Txid>,
}

impl Party {
    fn start(
        role: Role,
        side: Side,
        w: Wallet,
        chain: &Chain,
        now: u64,
    ) -> (Party, Vec<SettleMessage>) {
        let t = terms();
        let ours = match side {
            Side::Seller => select::seller(
                &w.utxos,
                &w.locks,
                &t,
                script(&w.keys, KeyPath::receive(Account::Payment, 9)),
                script(&w.keys, KeyPath::change(Account::Runes, 0)),
            ),
            Side::Buyer => select::buyer(
                &w.utxos,
                &w.locks,
                &t,
                script(&w.keys, KeyPath::receive(Account::Runes, 0)),
                script(&w.keys, KeyPath::change(Account::Payment, 0)),
            ),
        }
        .unwrap();
        let deal = Deal {
            trade_id: TRADE,
            role,
            side,
            terms: t,
        };
        let (s, out) = Settlement::start(deal, Params::DEFAULT, ours, now);
        let mut p = Party {
            s,
            w,
            broadcast: vec![],
            refused: vec![],
            watched: None,
        };
        let sent = p.apply(out, chain, now);
        (p, sent)
    }

    /// Carries out `out`: locks, lookups (answered from `chain` at once), broadcasts; returns
    /// the messages to send.
    fn apply(&mut self, out: Output, chain: &Chain, now: u64) -> Vec<SettleMessage> {
        let mut queue = VecDeque::from([out]);
        let mut sent = vec![];
        while let Some(out) = queue.pop_front() {
            if let Some(r) = &out.refused {
                self.refused.push(r.label());
            }
            for a in out.actions {
                match a {
                    Action::Lock(points) => self.w.locks.lock(&points, TRADE).unwrap(),
                    Action::Release => {
                        self.w.locks.release(&TRADE);
                    }
                    Action::Lookup(points) => {
                        let found = chain.lookup(&points);
                        queue.push_back(self.s.on_lookups(&found, &self.w.keys, now));
                    }
                    Action::Send(m) => sent.push(m),
                    Action::Broadcast(tx) => self.broadcast.push(tx),
                    Action::Watch { txid, .. } => self.watched = Some(txid),
                }
            }
        }
        sent
    }

    fn receive(&mut self, m: SettleMessage, chain: &Chain, now: u64) -> Vec<SettleMessage> {
        // Through the wire, as the trade session carries it.
        let m = SettleMessage::decode(&m.encode()).unwrap();
        let out = self.s.on_message(m, &self.w.keys, now);
        self.apply(out, chain, now)
    }

    fn locked(&self) -> usize {
        self.s
            .our_outpoints()
            .iter()
            .filter(|o| self.w.locks.is_locked(o))
            .count()
    }
}

/// A cheater's change to its signed half.
type Alter = fn(&mut Transaction, &Party);

type Tamper<'a> = &'a dyn Fn(SettleMessage, &Party) -> SettleMessage;

/// Delivers messages both ways until none are left, passing the taker's through `tamper`.
fn run(
    maker: &mut Party,
    taker: &mut Party,
    chain: &Chain,
    to_maker: Vec<SettleMessage>,
    to_taker: Vec<SettleMessage>,
    tamper: Tamper,
) {
    let mut to_maker = VecDeque::from(to_maker);
    let mut to_taker = VecDeque::from(to_taker);
    for _ in 0..100 {
        if let Some(m) = to_maker.pop_front() {
            let m = tamper(m, taker);
            to_taker.extend(maker.receive(m, chain, T0 + 10));
        } else if let Some(m) = to_taker.pop_front() {
            to_maker.extend(taker.receive(m, chain, T0 + 10));
        } else {
            return;
        }
    }
    panic!("the two sides never stopped talking");
}

fn honest(m: SettleMessage, _: &Party) -> SettleMessage {
    m
}

/// A maker selling 400 of its 1,000 units to a taker.
fn pair(chain: &mut Chain) -> (Party, Vec<SettleMessage>, Party, Vec<SettleMessage>) {
    let s = seller_wallet(chain);
    let b = buyer_wallet(chain);
    let (maker, m_sent) = Party::start(Role::Maker, Side::Seller, s, chain, T0);
    let (taker, t_sent) = Party::start(Role::Taker, Side::Buyer, b, chain, T0);
    (maker, m_sent, taker, t_sent)
}

#[test]
fn both_sides_end_with_the_same_fully_signed_swap_and_settle_on_confirmation() {
    let mut chain = Chain::default();
    let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
    assert_eq!(maker.locked(), 1, "the seller's rune output");
    assert!(taker.locked() >= 3, "the buyer's bitcoin");
    run(&mut maker, &mut taker, &chain, t_sent, m_sent, &honest);
    assert_eq!(maker.s.step(), Step::Broadcast);
    assert_eq!(taker.s.step(), Step::Broadcast);
    assert_eq!(maker.broadcast.len(), 1);
    assert_eq!(
        taker.broadcast, maker.broadcast,
        "both hold and broadcast the same bytes"
    );
    let full = &maker.broadcast[0];
    assert_eq!(Some(full.compute_txid()), maker.watched);
    assert_eq!(maker.watched, taker.watched);
    assert!(full.input.iter().all(|i| i.witness.len() == 1));
    // What it does, from its bytes and the inputs' runes as the indexer has them.
    let balances: Vec<Balances> = full
        .input
        .iter()
        .map(|i| match &chain.assets[&i.previous_output] {
            Assets::Known { runes, .. } => runes.clone(),
            Assets::Unknown => unreachable!(),
        })
        .collect();
    let e = effect(full, &balances).unwrap();
    assert_eq!(e.outputs[0], Balances::from([(RUNE, 400)]));
    assert_eq!(e.outputs[1], Balances::from([(RUNE, 600)]));
    assert_eq!(
        full.output[0].script_pubkey,
        script(&taker.w.keys, KeyPath::receive(Account::Runes, 0))
    );
    // Confirmations: still locked in the mempool, released when settled.
    let out = taker.s.on_chain(ChainStatus::Seen(0), T0 + 20);
    assert!(out.actions.is_empty());
    assert_eq!(taker.s.step(), Step::Broadcast);
    for p in [&mut maker, &mut taker] {
        let out = p.s.on_chain(ChainStatus::Seen(1), T0 + 30);
        p.apply(out, &chain, T0 + 30);
        assert_eq!(p.s.step(), Step::Settled);
        assert_eq!(p.s.confirmations(), 1);
        assert_eq!(p.locked(), 0);
    }
}

/// Alters the taker's signed half, then signs the taker's own inputs again over the altered
/// bytes, as a cheating taker would.
fn cheat(alter: Alter) -> impl Fn(SettleMessage, &Party) -> SettleMessage {
    move |m, taker| match m {
        SettleMessage::Signed(bytes) => {
            let mut tx: Transaction = deserialize(&bytes).unwrap();
            alter(&mut tx, taker);
            let swap = taker.s.swap().unwrap();
            let mut prevouts = swap.prevouts.clone();
            // An input added by the cheater: its output as the chain has it.
            while prevouts.len() < tx.input.len() {
                prevouts.push(TxOut {
                    value: Amount::from_sat(50_000),
                    script_pubkey: ScriptBuf::new(),
                });
            }
            let ours: Vec<(usize, KeyPath)> = (0..tx.input.len())
                .filter_map(|i| {
                    let at = tx.input[i].previous_output;
                    taker
                        .w
                        .utxos
                        .iter()
                        .find(|u| u.outpoint == at)
                        .map(|u| (i, u.path))
                })
                .collect();
            darkswap_wallet::sign::sign_inputs(&taker.w.keys, &mut tx, &prevouts, &ours).unwrap();
            SettleMessage::Signed(serialize(&tx))
        }
        other => other,
    }
}

#[test]
fn a_cheating_taker_is_refused_before_the_maker_signs_each_time_by_name() {
    let cases: [(&str, Alter); 7] = [
        ("output_count", |tx, taker| {
            tx.output.push(TxOut {
                value: Amount::from_sat(1_000),
                script_pubkey: script(&taker.w.keys, KeyPath::receive(Account::Payment, 7)),
            });
        }),
        ("output_value", |tx, _| {
            // The seller's payment (after the rune output, the change and the runestone).
            tx.output[3].value -= Amount::from_sat(5_000);
        }),
        ("runestone", |tx, _| {
            let stone = Runestone {
                edicts: vec![Edict {
                    id: RUNE,
                    amount: 1_000,
                    output: 0,
                }],
                ..Runestone::default()
            };
            tx.output[2].script_pubkey = stone.encipher();
        }),
        ("cenotaph", |tx, _| {
            let stone = Runestone {
                edicts: vec![Edict {
                    id: RUNE,
                    amount: 400,
                    output: 9,
                }],
                pointer: Some(1),
                ..Runestone::default()
            };
            tx.output[2].script_pubkey = stone.encipher();
        }),
        ("output_value", |tx, _| {
            // A higher fee than agreed: the buyer's own change shrinks.
            let last = tx.output.len() - 1;
            tx.output[last].value -= Amount::from_sat(2_000);
        }),
        ("inputs", |tx, _| {
            // The seller's plain-bitcoin output, which the seller never offered.
            let seller_money = tx.input[0].previous_output.txid;
            tx.input.push(TxIn {
                previous_output: OutPoint {
                    txid: seller_money,
                    vout: 1,
                },
                ..tx.input[0].clone()
            });
        }),
        ("output_script", |tx, taker| {
            tx.output[3].script_pubkey =
                script(&taker.w.keys, KeyPath::receive(Account::Payment, 8));
        }),
    ];
    for (label, alter) in cases {
        let mut chain = Chain::default();
        let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
        let tamper = cheat(alter);
        run(&mut maker, &mut taker, &chain, t_sent, m_sent, &tamper);
        assert_eq!(maker.refused, vec![label], "{label}");
        assert_eq!(maker.s.step(), Step::Aborted, "{label}");
        assert!(
            maker.broadcast.is_empty(),
            "{label}: the maker never signed"
        );
        assert_eq!(
            maker.locked(),
            0,
            "{label}: the maker's outputs are free again"
        );
        assert!(
            maker.s.reason().unwrap().contains("refused"),
            "{label}: {:?}",
            maker.s.reason()
        );
        // The taker heard why and, having signed, is offered its cancel.
        assert_eq!(taker.s.step(), Step::Signed, "{label}");
        assert!(taker.s.cancel_offered(), "{label}");
        assert!(!taker.s.cancel_inputs().unwrap().is_empty());
    }
}

#[test]
fn a_seller_claiming_runes_its_output_does_not_hold_is_refused_before_the_buyer_signs() {
    let mut chain = Chain::default();
    let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
    // The indexer says the maker's output holds 300 units, not the 1,000 claimed.
    let at = maker.s.our_outpoints()[0];
    chain.assets.insert(
        at,
        Assets::Known {
            runes: Balances::from([(RUNE, 300)]),
            inscriptions: 0,
        },
    );
    run(&mut maker, &mut taker, &chain, t_sent, m_sent, &honest);
    assert_eq!(taker.refused, vec!["runes_claim"]);
    assert_eq!(taker.s.step(), Step::Aborted);
    assert!(taker.broadcast.is_empty());
    assert_eq!(taker.locked(), 0);
    assert_eq!(maker.s.step(), Step::Aborted, "the maker heard the abort");
    assert_eq!(maker.locked(), 0);
}

#[test]
fn outputs_missing_spent_or_unindexed_are_refused() {
    for (label, spoil) in [
        (
            "input_not_found",
            (|c: &mut Chain, at: OutPoint| {
                c.txs.remove(&at.txid);
            }) as fn(&mut Chain, OutPoint),
        ),
        ("input_spent", |c, at| {
            c.spent.insert(at);
        }),
        ("input_unindexed", |c, at| {
            c.assets.insert(at, Assets::Unknown);
        }),
        ("inscriptions", |c, at| {
            c.assets.insert(
                at,
                Assets::Known {
                    runes: Balances::new(),
                    inscriptions: 1,
                },
            );
        }),
    ] {
        let mut chain = Chain::default();
        let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
        let at = taker.s.our_outpoints()[0];
        spoil(&mut chain, at);
        run(&mut maker, &mut taker, &chain, t_sent, m_sent, &honest);
        assert_eq!(maker.refused, vec![label], "{label}");
        assert_eq!(maker.s.step(), Step::Aborted, "{label}");
        assert!(
            maker.broadcast.is_empty(),
            "{label}: the maker never signed"
        );
        assert_eq!(maker.locked(), 0, "{label}");
        // The taker had signed its half before the maker's answer: it is offered its cancel.
        assert_eq!(taker.s.step(), Step::Signed, "{label}");
        assert!(taker.s.cancel_offered(), "{label}");
    }
}

#[test]
fn a_counterparty_that_vanishes_before_signing_times_out_and_frees_our_outputs() {
    // After agreement: the maker's offer never arrives.
    let mut chain = Chain::default();
    let (_, _, mut taker, _) = pair(&mut chain);
    assert!(taker.s.tick(T0 + 1_000).actions.is_empty(), "not yet");
    let late = taker.s.deadline_ms();
    let out = taker.s.tick(late);
    let sent = taker.apply(out, &chain, late);
    assert_eq!(taker.s.step(), Step::Aborted);
    assert!(matches!(sent.as_slice(), [SettleMessage::Abort(_)]));
    assert_eq!(taker.locked(), 0);

    // After exchanging offers: the taker's half never arrives at the maker.
    let mut chain = Chain::default();
    let (mut maker, _, _, t_sent) = pair(&mut chain);
    let offer = t_sent.into_iter().next().unwrap();
    maker.receive(offer, &chain, T0 + 10);
    assert_eq!(maker.s.step(), Step::Checked);
    let late = maker.s.deadline_ms();
    let out = maker.s.tick(late);
    maker.apply(out, &chain, late);
    assert_eq!(maker.s.step(), Step::Aborted);
    assert_eq!(maker.locked(), 0);
}

#[test]
fn after_signing_a_silent_maker_leaves_a_cancel_or_a_settlement_seen_on_the_chain() {
    let mut chain = Chain::default();
    let (_maker, m_sent, mut taker, _t_sent) = pair(&mut chain);
    // The taker gets the maker's offer and signs; the maker never answers its half.
    for m in m_sent {
        taker.receive(m, &chain, T0 + 10);
    }
    assert_eq!(taker.s.step(), Step::Signed);
    let late = taker.s.deadline_ms();
    let out = taker.s.tick(late);
    assert!(out.changed && out.actions.is_empty());
    assert!(taker.s.cancel_offered());
    assert_eq!(
        taker.s.step(),
        Step::Signed,
        "a signed half cannot be taken back"
    );
    assert!(taker.s.abort("bored", late).is_err());
    assert_eq!(
        taker.locked(),
        3,
        "still locked: the maker may yet broadcast"
    );
    // Case 1: the taker cancels (spends its inputs elsewhere) and the chain shows it.
    let mut cancelled = taker.s.clone();
    let out = cancelled.on_chain(ChainStatus::Conflict { ours: true }, late + 1);
    assert!(out.actions.contains(&Action::Release));
    assert_eq!(cancelled.step(), Step::Cancelled);
    // Case 2: the maker did sign and broadcast after all: the taker settles from the chain.
    let out = taker.s.on_chain(ChainStatus::Seen(1), late + 1);
    taker.apply(out, &chain, late + 1);
    assert_eq!(taker.s.step(), Step::Settled);
    assert_eq!(taker.locked(), 0);
}

#[test]
fn the_other_side_spending_its_inputs_elsewhere_aborts_without_loss() {
    let mut chain = Chain::default();
    let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
    run(&mut maker, &mut taker, &chain, t_sent, m_sent, &honest);
    let out = maker
        .s
        .on_chain(ChainStatus::Conflict { ours: false }, T0 + 50);
    maker.apply(out, &chain, T0 + 50);
    assert_eq!(maker.s.step(), Step::Aborted);
    assert_eq!(maker.locked(), 0);
}

#[test]
fn a_settlement_stored_and_restored_at_every_step_ends_with_the_same_transaction() {
    let mut reference = Chain::default();
    let (mut maker, m_sent, mut taker, t_sent) = pair(&mut reference);
    run(&mut maker, &mut taker, &reference, t_sent, m_sent, &honest);
    let expected = maker.broadcast[0].clone();

    // The same trade, one message at a time, both sides reloaded between every delivery.
    let mut chain = Chain::default();
    let (mut maker, m_sent, mut taker, t_sent) = pair(&mut chain);
    let mut to_maker = VecDeque::from(t_sent);
    let mut to_taker = VecDeque::from(m_sent);
    let reload = |p: &mut Party, chain: &Chain| -> Vec<SettleMessage> {
        p.s = Settlement::decode(&p.s.encode()).unwrap();
        let out = p.s.resume();
        p.apply(out, chain, T0 + 10)
    };
    // A resent message already waiting in the queue is not queued twice.
    let push = |q: &mut VecDeque<SettleMessage>, ms: Vec<SettleMessage>| {
        for m in ms {
            if !q.contains(&m) {
                q.push_back(m);
            }
        }
    };
    for _ in 0..50 {
        push(&mut to_maker, reload(&mut taker, &chain));
        push(&mut to_taker, reload(&mut maker, &chain));
        if let Some(m) = to_maker.pop_front() {
            let sent = maker.receive(m, &chain, T0 + 10);
            push(&mut to_taker, sent);
        }
        if let Some(m) = to_taker.pop_front() {
            let sent = taker.receive(m, &chain, T0 + 10);
            push(&mut to_maker, sent);
        }
        if maker.s.step() == Step::Broadcast && taker.s.full().is_some() {
            break;
        }
    }
    // Signatures carry fresh randomness (BIP340's auxiliary data): the same transaction,
    // signed validly on every input by both, though not the reference run's bytes.
    let full = maker.s.full().unwrap().clone();
    assert_eq!(full.compute_txid(), expected.compute_txid());
    assert_eq!(taker.s.full(), Some(&full));
    let swap = maker.s.swap().unwrap();
    for side in [Side::Seller, Side::Buyer] {
        darkswap_wallet::swap::accept(swap, side, &full).unwrap();
    }
    assert!(taker.broadcast.iter().all(|t| *t == full));
    let restored = Settlement::decode(&taker.s.encode()).unwrap();
    assert_eq!(restored.step(), Step::Broadcast);
    assert_eq!(restored.txid(), Some(expected.compute_txid()));
    // Garbage is refused, not guessed at.
    assert!(Settlement::decode(&[0xff; 10]).is_err());
    assert!(Settlement::decode(&vec![0; crate::store::MAX_STORED_SETTLEMENT_BYTES + 1]).is_err());
}

#[test]
fn two_takers_racing_for_the_same_units_never_both_get_the_makers_outputs() {
    let mut chain = Chain::default();
    let mut w = seller_wallet(&mut chain);
    let t = terms();
    let pay = script(&w.keys, KeyPath::receive(Account::Payment, 9));
    let change = script(&w.keys, KeyPath::change(Account::Runes, 0));
    let first = select::seller(&w.utxos, &w.locks, &t, pay.clone(), change.clone()).unwrap();
    let rune_output: Vec<OutPoint> = first.offer.outpoints();
    w.locks.lock(&rune_output, [1; 16]).unwrap();
    assert_eq!(
        select::seller(&w.utxos, &w.locks, &t, pay.clone(), change.clone()),
        Err(SelectError::Runes {
            rune: RUNE,
            needed: 400,
            available: 0
        })
    );
    // The first settlement aborts: its outputs are free for the second.
    w.locks.release(&[1; 16]);
    assert!(select::seller(&w.utxos, &w.locks, &t, pay, change).is_ok());
}

#[test]
fn selection_funds_each_side_or_says_what_is_short() {
    let mut chain = Chain::default();
    let b = buyer_wallet(&mut chain);
    let t = terms();
    let r = script(&b.keys, KeyPath::receive(Account::Runes, 0));
    let c = script(&b.keys, KeyPath::change(Account::Payment, 0));
    let ours = select::buyer(&b.utxos, &b.locks, &t, r.clone(), c.clone()).unwrap();
    assert_eq!(
        ours.offer.inputs().len(),
        3,
        "20,000 sat and fees take all three"
    );
    assert_eq!(ours.paths.len(), 3);
    let dear = Terms {
        price: Amount::from_sat(40_000),
        ..t
    };
    assert!(matches!(
        select::buyer(&b.utxos, &b.locks, &dear, r, c),
        Err(SelectError::Bitcoin { .. })
    ));
    // A price too small to carry the seller's fee share: the seller adds plain bitcoin.
    let s = seller_wallet(&mut chain);
    let cheap = Terms {
        price: Amount::from_sat(1),
        ..t
    };
    let ours = select::seller(
        &s.utxos,
        &s.locks,
        &cheap,
        script(&s.keys, KeyPath::receive(Account::Payment, 9)),
        script(&s.keys, KeyPath::change(Account::Runes, 0)),
    )
    .unwrap();
    assert_eq!(ours.offer.inputs().len(), 2);
}

// ---- The desk: both traders' settlements driven as the page and the CLI drive them. ----

mod desk {
    use super::*;
    use crate::desk::{Desk, DeskError, DeskOutput, Task, MAX_EARLY_PER_TRADE};

    struct Trader {
        desk: Desk,
        w: Wallet,
        broadcast: Vec<Transaction>,
        refused: Vec<&'static str>,
    }

    impl Trader {
        fn new(w: Wallet) -> Trader {
            Trader {
                desk: Desk::new(Params::DEFAULT),
                w,
                broadcast: vec![],
                refused: vec![],
            }
        }

        fn ours(&self, side: Side) -> select::Ours {
            let t = terms();
            let k = &self.w.keys;
            match side {
                Side::Seller => select::seller(
                    &self.w.utxos,
                    self.desk.locks(),
                    &t,
                    script(k, KeyPath::receive(Account::Payment, 9)),
                    script(k, KeyPath::change(Account::Runes, 0)),
                ),
                Side::Buyer => select::buyer(
                    &self.w.utxos,
                    self.desk.locks(),
                    &t,
                    script(k, KeyPath::receive(Account::Runes, 0)),
                    script(k, KeyPath::change(Account::Payment, 0)),
                ),
            }
            .unwrap()
        }

        /// Broadcasts noted, lookups answered from `chain` at once; the messages to send.
        fn absorb(&mut self, out: DeskOutput, chain: &Chain, now: u64) -> Vec<Vec<u8>> {
            let mut queue = VecDeque::from([out]);
            let mut sent = vec![];
            while let Some(out) = queue.pop_front() {
                self.refused.extend(out.refused.iter().map(|(_, l)| *l));
                for t in out.tasks {
                    match t {
                        Task::Send { trade_id, message } => {
                            assert_eq!(trade_id, TRADE);
                            sent.push(message);
                        }
                        Task::Broadcast { tx, .. } => self.broadcast.push(tx),
                    }
                }
                let due: Vec<([u8; 16], Vec<OutPoint>)> = self
                    .desk
                    .lookups_due()
                    .map(|(id, p)| (*id, p.clone()))
                    .collect();
                for (id, points) in due {
                    let found = chain.lookup(&points);
                    queue.push_back(self.desk.on_lookups(id, &found, &self.w.keys, now));
                }
            }
            sent
        }

        fn receive(&mut self, messages: Vec<Vec<u8>>, chain: &Chain, now: u64) -> Vec<Vec<u8>> {
            let mut sent = vec![];
            for m in messages {
                let out = self.desk.on_message(TRADE, &m, &self.w.keys, now);
                sent.extend(self.absorb(out, chain, now));
            }
            sent
        }

        /// The taker hears the agreement: its settlement begins from the reservation.
        fn heard_agreement(&mut self, chain: &Chain) -> Vec<Vec<u8>> {
            let deal = deal(Role::Taker, Side::Buyer);
            let out = self.desk.begin(deal, None, None, &self.w.keys, T0 + 2);
            self.absorb(out.unwrap(), chain, T0 + 2)
        }

        fn locked(&self) -> usize {
            self.w
                .utxos
                .iter()
                .filter(|u| self.desk.locks().is_locked(&u.outpoint))
                .count()
        }
    }

    fn deal(role: Role, side: Side) -> Deal {
        Deal {
            trade_id: TRADE,
            role,
            side,
            terms: terms(),
        }
    }

    /// The taker reserves with its take; the maker begins on agreement with the take's offer;
    /// the taker begins once it hears the agreement.
    fn agreed(chain: &mut Chain) -> (Trader, Trader, Vec<Vec<u8>>) {
        let mut maker = Trader::new(seller_wallet(chain));
        let mut taker = Trader::new(buyer_wallet(chain));
        let ours = taker.ours(Side::Buyer);
        let offer = taker
            .desk
            .reserve(deal(Role::Taker, Side::Buyer), ours, T0)
            .unwrap();
        assert!(taker.desk.is_reserved(&TRADE));
        assert!(taker.locked() > 0, "reserved with the take");
        let ours = maker.ours(Side::Seller);
        let out = maker
            .desk
            .begin(
                deal(Role::Maker, Side::Seller),
                Some(ours),
                Some(&offer),
                &maker.w.keys,
                T0 + 1,
            )
            .unwrap();
        let to_taker = maker.absorb(out, chain, T0 + 1);
        (maker, taker, to_taker)
    }

    fn pump(maker: &mut Trader, taker: &mut Trader, chain: &Chain, mut to_taker: Vec<Vec<u8>>) {
        for _ in 0..10 {
            let to_maker = taker.receive(std::mem::take(&mut to_taker), chain, T0 + 3);
            if to_maker.is_empty() {
                return;
            }
            to_taker = maker.receive(to_maker, chain, T0 + 4);
        }
        panic!("the two desks never stopped talking");
    }

    #[test]
    fn two_desks_settle_with_the_offer_that_came_with_the_take_and_messages_that_came_early() {
        let mut chain = Chain::default();
        let (mut maker, mut taker, to_taker) = agreed(&mut chain);
        // The maker's offer reaches the taker before the taker has heard the agreement: it
        // waits, and is delivered when the taker begins.
        assert!(taker.receive(to_taker, &chain, T0 + 2).is_empty());
        let to_maker = taker.heard_agreement(&chain);
        let to_taker = maker.receive(to_maker, &chain, T0 + 3);
        pump(&mut maker, &mut taker, &chain, to_taker);
        assert!(maker.refused.is_empty() && taker.refused.is_empty());
        let full = maker
            .broadcast
            .last()
            .cloned()
            .expect("the maker broadcasts");
        assert_eq!(taker.broadcast.last(), Some(&full), "the taker too");
        for t in [&mut maker, &mut taker] {
            let watched = t.desk.watched();
            assert_eq!(watched.len(), 1);
            assert_eq!(watched[0].1, full.compute_txid());
            assert_eq!(t.desk.get(&TRADE).unwrap().step(), Step::Broadcast);
            let out = t.desk.on_chain(TRADE, ChainStatus::Seen(1), T0 + 10);
            assert_eq!(out.changed, vec![TRADE]);
            assert_eq!(t.desk.get(&TRADE).unwrap().step(), Step::Settled);
            assert_eq!(t.locked(), 0, "released on settlement");
            assert!(t.desk.watched().is_empty());
        }
    }

    #[test]
    fn an_agreement_other_than_the_reserved_take_is_never_settled() {
        let mut chain = Chain::default();
        let (_maker, mut taker, _) = agreed(&mut chain);
        let mut other = deal(Role::Taker, Side::Buyer);
        other.terms.units += 1;
        let refused = taker.desk.begin(other, None, None, &taker.w.keys, T0 + 2);
        assert!(matches!(refused, Err(DeskError::Mismatch)));
        assert_eq!(taker.locked(), 0, "the reservation is released");
        assert!(taker.desk.get(&TRADE).is_none());
    }

    #[test]
    fn reservations_lapse_or_end_with_the_take_and_early_messages_are_bounded() {
        let mut chain = Chain::default();
        let (_maker, mut taker, to_taker) = agreed(&mut chain);
        taker.desk.tick(T0 + Params::DEFAULT.step_timeout_ms - 1);
        assert!(taker.locked() > 0);
        taker.desk.tick(T0 + Params::DEFAULT.step_timeout_ms);
        assert_eq!(taker.locked(), 0, "lapsed without an agreement");
        assert!(!taker.desk.is_reserved(&TRADE));

        let (_maker, mut taker, _) = agreed(&mut chain);
        taker.desk.ended(TRADE, "the maker refused", T0 + 2);
        assert_eq!(taker.locked(), 0);

        let one = to_taker[0].clone();
        for _ in 0..MAX_EARLY_PER_TRADE {
            taker.receive(vec![one.clone()], &chain, T0 + 2);
        }
        assert!(taker.refused.is_empty());
        taker.receive(vec![one], &chain, T0 + 2);
        assert_eq!(taker.refused, ["early_overflow"]);
        taker.receive(vec![vec![0xff, 0xff]], &chain, T0 + 2);
        assert_eq!(taker.refused, ["early_overflow", "message_malformed"]);
    }

    #[test]
    fn a_desk_restored_from_its_stored_settlements_holds_the_same_locks_and_goes_on() {
        let mut chain = Chain::default();
        let (mut maker, mut taker, to_taker) = agreed(&mut chain);
        taker.heard_agreement(&chain);
        let to_maker = taker.receive(to_taker, &chain, T0 + 3);
        assert_eq!(taker.desk.get(&TRADE).unwrap().step(), Step::Signed);
        // The taker's page reloads.
        let stored = taker.desk.stored();
        assert_eq!(stored.len(), 1);
        let locked = taker.locked();
        taker.desk = Desk::new(Params::DEFAULT);
        assert_eq!(taker.locked(), 0);
        let (id, out) = taker.desk.restore(&stored[0].1, T0 + 4).unwrap();
        assert_eq!(id, TRADE);
        assert_eq!(taker.locked(), locked);
        let again = taker.absorb(out, &chain, T0 + 4);
        assert_eq!(again, to_maker, "its signed half, sent again");
        assert!(matches!(
            taker.desk.restore(&stored[0].1, T0 + 4),
            Err(DeskError::Exists)
        ));
        let to_taker = maker.receive(to_maker, &chain, T0 + 5);
        pump(&mut maker, &mut taker, &chain, to_taker);
        assert_eq!(taker.desk.get(&TRADE).unwrap().step(), Step::Broadcast);
    }
}
