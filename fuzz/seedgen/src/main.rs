//! Writes the seed corpus of every fuzz target: valid encodings (and a few near misses) made with
//! the crates' own encoders, in the input layout each target documents.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml -p darkswap-fuzz-seedgen` (from the repository root)
//! rewrites `fuzz/corpus/<target>/seed-*`. Signatures made with ephemeral keys differ from run to
//! run; commit the result only when the seeds are meant to change.

use std::fs;
use std::path::Path;

use darkswap_auth::token::{self, Claims};
use darkswap_auth::{Level, Method, RefuseReason};
use darkswap_e2e::handshake::{Initiator, Responder};
use darkswap_fuzz::{identity, order_body_of, SEED_NOW_MS};
use darkswap_net::persist::{encode_orders, encode_trades};
use darkswap_net::{OwnOrder, Trade, TradeRole, TradeState};
use darkswap_orderbook::{OrderId, Pair, Price, Side};
use darkswap_proto::auth::{AdminAction, AdminEntry, AuthRequest, AuthResponse, Grant};
use darkswap_proto::book_sync::{BookSyncRequest, BookSyncResponse};
use darkswap_proto::order::{
    live_orders_digest, order_id, sign_order_message, OrderAction, OrderBody, OrderSpec,
};
use darkswap_proto::settle::{SettleMessage, WireInput, WireOffer, WireRune};
use darkswap_proto::trade::{Agreement, TradeRequest, TradeResponse};
use darkswap_wallet::runestone::{encode_varint, Edict, RuneId, Runestone};

struct Corpus {
    target: &'static str,
    n: usize,
}

impl Corpus {
    fn new(root: &Path, target: &'static str) -> Corpus {
        let dir = root.join(target);
        if dir.exists() {
            for entry in fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    fs::remove_file(path).unwrap();
                }
            }
        }
        fs::create_dir_all(&dir).unwrap();
        Corpus { target, n: 0 }
    }

    fn add(&mut self, root: &Path, name: &str, bytes: &[u8]) {
        let path = root
            .join(self.target)
            .join(format!("seed-{:02}-{name}", self.n));
        fs::write(path, bytes).unwrap();
        self.n += 1;
    }
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let now = SEED_NOW_MS;
    let maker = identity(2);
    let maker_id = maker.public().to_peer_id();
    let taker_id = identity(3).public().to_peer_id();
    let dog = Pair::parse("RUNE:DOG/BTC").unwrap();
    let usdt = Pair::parse("BTC/USDT").unwrap();
    let spec = OrderSpec {
        nonce: 7,
        side: Side::Sell,
        price: Price(1_234),
        amount: 100_000,
        min_fill: 1_000,
        expires_at_ms: now + 3_600_000,
    };
    let body = |pair: &Pair, seq: u64, action: OrderAction| OrderBody {
        pair: pair.clone(),
        seq,
        sent_at_ms: now,
        action,
    };
    let order_msg =
        sign_order_message(&maker, &body(&dog, 1, OrderAction::Order(spec)), now).unwrap();
    let buy = OrderSpec {
        side: Side::Buy,
        price: Price(6_500_000_000_000),
        amount: 50_000,
        min_fill: 0,
        nonce: 8,
        ..spec
    };
    let usdt_msg =
        sign_order_message(&maker, &body(&usdt, 2, OrderAction::Order(buy)), now).unwrap();
    let oid = order_id(&maker_id, 7);
    let cancel_msg = sign_order_message(
        &maker,
        &body(
            &dog,
            3,
            OrderAction::Cancel {
                order_id: oid,
                filled: false,
            },
        ),
        now,
    )
    .unwrap();
    let keep_alive_msg = sign_order_message(
        &maker,
        &body(
            &dog,
            4,
            OrderAction::KeepAlive {
                digest: live_orders_digest(&mut [(oid, 100_000)]),
                live_orders: 1,
            },
        ),
        now,
    )
    .unwrap();
    let zero8 = [0u8; 8];

    // order_message: flags | now offset u64 | message
    let mut c = Corpus::new(&root, "order_message");
    c.add(&root, "order-live", &cat(&[&[0], &zero8, &order_msg]));
    c.add(&root, "order-stored", &cat(&[&[1], &zero8, &order_msg]));
    c.add(
        &root,
        "order-usdt-expected",
        &cat(&[&[2], &zero8, &usdt_msg]),
    );
    c.add(&root, "cancel", &cat(&[&[0], &zero8, &cancel_msg]));
    c.add(&root, "keep-alive", &cat(&[&[1], &zero8, &keep_alive_msg]));
    for (name, msg) in [
        ("order", &order_msg),
        ("usdt", &usdt_msg),
        ("cancel", &cancel_msg),
        ("keep-alive", &keep_alive_msg),
    ] {
        let b = order_body_of(msg).unwrap();
        c.add(&root, &format!("body-{name}"), &cat(&[&[4], &zero8, &b]));
    }

    // order_input: now offset u32 | units u8 | topic \n side \n amount \n price \n min fill \n ttl
    let mut c = Corpus::new(&root, "order_input");
    for text in [
        "darkswap/orders/1/RUNE:DOG-BTC\nsell\n100000\n0.00001234\n1000\n3600",
        "darkswap/orders/1/BTC-USDT\nbuy\n50000\n65000\n\n600",
        "RUNE:UNCOMMON•GOODS/btc\nbuy\n1\n.5\n1\n604800",
        "darkswap/orders/1/RUNE:UNCOMMON.GOODS-BTC\nsell\n18446744073709551615\n1.00000001\n0\n10",
    ] {
        // Runes of divisibility 2 with BTC in sat, and of 0 with BTC in BTC.
        c.add(&root, "form", &cat(&[&[0; 4], &[0x82], text.as_bytes()]));
        c.add(&root, "form", &cat(&[&[0; 4], &[0], text.as_bytes()]));
    }

    // book_sync: a frame
    let mut c = Corpus::new(&root, "book_sync");
    c.add(
        &root,
        "request",
        &BookSyncRequest {
            pair: dog.clone(),
            maker: Some(maker_id),
            after: Some(oid),
            limit: 100,
        }
        .encode(),
    );
    c.add(
        &root,
        "request-pair-only",
        &BookSyncRequest {
            pair: usdt.clone(),
            maker: None,
            after: None,
            limit: 1,
        }
        .encode(),
    );
    c.add(
        &root,
        "response",
        &BookSyncResponse {
            orders: vec![order_msg.clone(), usdt_msg.clone()],
            more: true,
            error: None,
            refused: Vec::new(),
        }
        .encode(),
    );
    c.add(
        &root,
        "response-error",
        &BookSyncResponse {
            orders: vec![],
            more: false,
            error: Some("unknown pair".into()),
            refused: Vec::new(),
        }
        .encode(),
    );

    // trade_wire: a frame
    let offer = SettleMessage::Offer(WireOffer {
        inputs: vec![WireInput {
            txid: [6; 32],
            vout: 1,
            value: 546,
            script: vec![0x51, 0x20, 7, 7, 7],
            runes: vec![WireRune {
                block: 840_000,
                tx: 2,
                amount: 1_000,
            }],
        }],
        first_script: vec![0x51, 0x20, 8],
        second_script: vec![0x51, 0x20, 9],
    })
    .encode();
    let agreement = Agreement::new(
        [5; 16],
        dog.clone(),
        oid,
        maker_id,
        taker_id,
        Side::Sell,
        spec.price,
        5_000,
        2,
        now,
    )
    .unwrap()
    .encode();
    let maker_sig = Agreement::sign(&agreement, &maker).unwrap();
    let taker_sig = Agreement::sign(&agreement, &identity(3)).unwrap();
    let take = TradeRequest::Take {
        trade_id: [5; 16],
        order_id: oid,
        pair: dog.clone(),
        amount: 5_000,
        fee_rate: 2,
        settle: offer.clone(),
    }
    .encode();
    let settle = TradeRequest::Settle {
        trade_id: [5; 16],
        message: SettleMessage::Signed(vec![2, 0, 0, 0, 0, 1, 1]).encode(),
    }
    .encode();
    let settled = TradeResponse::Settled { trade_id: [5; 16] }.encode();
    let settle_abort = SettleMessage::Abort("the other side went quiet".into()).encode();
    let confirm = TradeRequest::Confirm {
        trade_id: [5; 16],
        taker_signature: taker_sig,
    }
    .encode();
    let abort = TradeRequest::Abort {
        trade_id: [5; 16],
        reason: "taker gave up".into(),
    }
    .encode();
    let accepted = TradeResponse::Accepted {
        agreement: agreement.clone(),
        maker_signature: maker_sig,
    }
    .encode();
    let rejected = TradeResponse::Rejected {
        reason: "below the minimum fill".into(),
    }
    .encode();
    let done = TradeResponse::Done { trade_id: [5; 16] }.encode();
    let mut c = Corpus::new(&root, "trade_wire");
    for (name, frame) in [
        ("agreement", &agreement),
        ("take", &take),
        ("confirm", &confirm),
        ("abort", &abort),
        ("accepted", &accepted),
        ("rejected", &rejected),
        ("done", &done),
        ("settle", &settle),
        ("settled", &settled),
        ("settle-offer", &offer),
        ("settle-abort", &settle_abort),
    ] {
        c.add(&root, name, frame);
    }

    // net_codec: selector (bit 0 response, bit 1 trade) | piece size | stream
    let book_request = BookSyncRequest {
        pair: dog.clone(),
        maker: None,
        after: Some(oid),
        limit: 500,
    }
    .encode();
    let book_response = BookSyncResponse {
        orders: vec![order_msg.clone()],
        more: false,
        error: None,
        refused: Vec::new(),
    }
    .encode();
    let mut c = Corpus::new(&root, "net_codec");
    c.add(&root, "book-request", &cat(&[&[0, 7], &book_request]));
    c.add(&root, "book-response", &cat(&[&[1, 64], &book_response]));
    c.add(&root, "trade-take", &cat(&[&[2, 3], &take]));
    c.add(&root, "trade-confirm", &cat(&[&[2, 255], &confirm]));
    c.add(&root, "trade-accepted", &cat(&[&[3, 1], &accepted]));
    c.add(&root, "trade-done", &cat(&[&[3, 16], &done]));

    // e2e_handshake: mode | rest
    let (ik, rk) = (identity(0), identity(1));
    let (initiator, init) = Initiator::start(&ik, rk.public().to_peer_id()).unwrap();
    let (_, resp) = Responder::respond(&rk, ik.public().to_peer_id(), &init, now).unwrap();
    drop(initiator);
    let mut c = Corpus::new(&root, "e2e_handshake");
    c.add(&root, "init", &cat(&[&[0], &init]));
    c.add(&root, "resp", &cat(&[&[1], &resp]));
    c.add(&root, "init-unchanged", &[2]);
    c.add(&root, "init-bit-flip", &[2, 0, 40, 0, 1]);
    c.add(&root, "init-truncated", &[2, 1, 36, 0, 0]);
    c.add(&root, "resp-unchanged", &[3]);
    c.add(&root, "resp-cipher-swapped", &[3, 0, 1, 0, 3]);
    c.add(&root, "resp-appended", &[3, 2, 0, 0, 0]);

    // e2e_session: operations (see the target)
    let mut c = Corpus::new(&root, "e2e_session");
    c.add(&root, "seal-open", &[0, 4, b'p', b'i', b'n', b'g', 1, 0]);
    c.add(&root, "replay", &[0, 2, b'h', b'i', 1, 0, 1, 0]);
    c.add(
        &root,
        "reorder",
        &[0, 1, b'a', 0, 1, b'b', 0, 1, b'c', 1, 0, 1, 2, 1, 1],
    );
    c.add(&root, "wrong-aad", &[0x10, 1, b'x', 0x21, 0]);
    c.add(&root, "altered", &[0, 3, 1, 2, 3, 2, 0, 12, 0, 1]);
    c.add(&root, "truncated", &[0, 3, 1, 2, 3, 3, 0, 20, 0]);
    c.add(
        &root,
        "raw",
        &[
            4, 28, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
            14, 15, 16,
        ],
    );
    c.add(&root, "reflect", &[5, 2, b'h', b'i']);
    c.add(&root, "rekey", &[0, 1, b'a', 6, 1, 0, 0, 1, b'b', 1, 0]);

    // persist: a stored blob
    let own = OwnOrder {
        id: oid,
        pair: dog.clone(),
        spec,
    };
    let own2 = OwnOrder {
        id: order_id(&maker_id, 8),
        pair: usdt.clone(),
        spec: buy,
    };
    let trade = |state, agreement: Option<Vec<u8>>| Trade {
        id: [5; 16],
        role: TradeRole::Taker,
        counterparty: maker_id,
        pair: dog.clone(),
        order_id: OrderId(oid.0),
        maker_side: Side::Sell,
        price: spec.price,
        amount: 5_000,
        state,
        agreement,
        maker_signature: None,
        taker_signature: None,
        deadline_ms: Some(now + 30_000),
        updated_at_ms: now,
        fee_rate: 2,
        taker_offer: offer.clone(),
    };
    let mut c = Corpus::new(&root, "persist");
    c.add(&root, "orders", &encode_orders([&own, &own2]));
    c.add(
        &root,
        "trades",
        &encode_trades([
            &trade(TradeState::Agreed, Some(vec![1, 2, 3])),
            &trade(
                TradeState::Aborted {
                    reason: "timeout".into(),
                },
                None,
            ),
        ]),
    );
    // auth_wire: a frame or a token
    let relay = identity(4);
    let claims = Claims {
        relay: relay.public().to_peer_id(),
        peer: identity(0).public().to_peer_id(),
        level: Level::Authenticated,
        method: Method::Identity,
        issued_at_ms: now,
        expires_at_ms: now + 365 * 86_400_000,
        shared_key: None,
        stamp_bits: 0,
    };
    let tok = token::issue(&relay, &claims).unwrap();
    let mut c = Corpus::new(&root, "auth_wire");
    c.add(&root, "token", &tok);
    for (name, request) in [
        (
            "challenge",
            AuthRequest::Challenge {
                method: Method::Identity,
            },
        ),
        (
            "answer",
            AuthRequest::Answer {
                nonce: [7; 32],
                proof: vec![9; 64],
                stamp: Some(48_170),
                record: None,
            },
        ),
        ("token-request", AuthRequest::Token { token: tok.clone() }),
        (
            "ban",
            AuthRequest::Admin(AdminAction::Ban {
                peer: taker_id,
                reason: "spam".into(),
            }),
        ),
        ("list", AuthRequest::Admin(AdminAction::List)),
    ] {
        c.add(&root, name, &request.encode());
    }
    for (name, response) in [
        (
            "challenge-response",
            AuthResponse::Challenge {
                method: Method::SharedKey,
                nonce: [3; 32],
                expires_at_ms: now + 30_000,
                stamp_bits: 16,
            },
        ),
        (
            "granted",
            AuthResponse::Granted(Grant {
                level: Level::Authenticated,
                method: Method::Identity,
                token: tok.clone(),
                expires_at_ms: claims.expires_at_ms,
                limits: None,
            }),
        ),
        (
            "refused",
            AuthResponse::Refused {
                reason: RefuseReason::ALL[1],
            },
        ),
        (
            "admin",
            AuthResponse::Admin {
                message: "2 entries".into(),
                entries: vec![
                    AdminEntry {
                        peer: taker_id,
                        level: Level::Banned,
                        note: "spam".into(),
                        since_ms: now,
                    },
                    AdminEntry {
                        peer: maker_id,
                        level: Level::Trusted,
                        note: "config".into(),
                        since_ms: 0,
                    },
                ],
            },
        ),
    ] {
        c.add(&root, name, &response.encode());
    }

    // wallet_chain: byte 0 = extra outputs, then what follows OP_RETURN OP_13 (data pushes).
    let mut c = Corpus::new(&root, "wallet_chain");
    let rune = RuneId { block: 840_000, tx: 3 };
    let transfer = Runestone {
        edicts: vec![
            Edict { id: rune, amount: 1_200, output: 0 },
            Edict { id: RuneId { block: 840_001, tx: 0 }, amount: 0, output: 2 },
        ],
        pointer: Some(1),
        ..Runestone::default()
    };
    let after_prefix = |stone: &Runestone| stone.encipher().as_bytes()[2..].to_vec();
    c.add(&root, "transfer", &cat(&[&[3], &after_prefix(&transfer)]));
    let mint = Runestone { mint: Some(rune), ..Runestone::default() };
    c.add(&root, "mint", &cat(&[&[1], &after_prefix(&mint)]));
    // A cenotaph: an edict to output 9 of 3.
    let bad = Runestone {
        edicts: vec![Edict { id: rune, amount: 5, output: 9 }],
        ..Runestone::default()
    };
    c.add(&root, "cenotaph", &cat(&[&[2], &after_prefix(&bad)]));
    // An etching with terms (flags, rune, divisibility, premine, amount, cap) as raw integers.
    let mut payload = Vec::new();
    for v in [2u128, 3, 4, 99_999, 1, 2, 6, 1_000, 10, 5, 8, 10] {
        encode_varint(v, &mut payload);
    }
    c.add(&root, "etching", &cat(&[&[1, payload.len() as u8], &payload]));

    // release: a release text signed by identity(9), as `darkswap release sign` writes it,
    // and near misses (CRLF line ends, one signature bit, a file out of order).
    let mut c = Corpus::new(&root, "release");
    let files = vec![
        ("index.html".to_string(), b"<!DOCTYPE html><title>DarkSwap</title>".to_vec()),
        ("app_bg.wasm".to_string(), vec![0, 97, 115, 109, 1, 0, 0, 0]),
        ("app.js".to_string(), b"export default function init() {}".to_vec()),
        ("assets/styles.css".to_string(), b"body {}".to_vec()),
    ];
    let signed = darkswap_release::sign(&identity(9), "0.1.0 seed", &files).unwrap();
    c.add(&root, "signed", signed.as_bytes());
    c.add(&root, "crlf", signed.replace('\n', "\r\n").as_bytes());
    let mut flipped = signed.clone().into_bytes();
    let at = flipped.len() - 2;
    flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
    c.add(&root, "bad-signature", &flipped);
    let lines: Vec<&str> = signed.lines().collect();
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    c.add(&root, "out-of-order", (swapped.join("\n") + "\n").as_bytes());

    println!("seeds written under {}", root.display());
}
