//! The page's reducer on the hot path: one book update of a pair holding 1,000 orders, in a page
//! that has been open a while (200 log entries, 200 trades, a full metrics history). Yew keeps
//! the previous state alive while the reducer runs, so the benchmark does too.

//
// Run: `cargo bench -p darkswap-web --bench reducer`.

// criterion is native-only (the state compiles natively for exactly this and its unit tests).
fn main() {
    #[cfg(not(target_arch = "wasm32"))]
    native::main();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::rc::Rc;
    use std::time::Duration;

    use criterion::Criterion;
    use darkswap_net::libp2p::{identity::Keypair, PeerId};
    use darkswap_net::{
        BookView, NodeEvent, OrderView, OwnOrder, Trade, TradeRole, TradeState, TradingEvent,
    };
    use darkswap_orderbook::{LevelView, OrderId, Pair, Price, Side};
    use darkswap_web::state::{Action, AppState};

    const ORDERS: usize = 1_000;

    fn book(pair: &Pair, maker: PeerId, seq: u64) -> BookView {
        let order = |n: usize, side: Side| OrderView {
            id: OrderId::from_u64(n as u64),
            maker,
            side,
            price: Price(1_000_000 + n as u64),
            amount: 1_000 + seq,
            min_fill: 0,
            expires_at_ms: 2_000_000_000_000,
            mine: false,
        };
        let level = |n: usize| LevelView {
            price: Price(1_000_000 + n as u64),
            amount: 10_000,
            orders: 10,
        };
        let half = ORDERS / 2;
        BookView {
            pair: pair.clone(),
            bids: (0..darkswap_net::BOOK_VIEW_LEVELS).map(level).collect(),
            asks: (0..darkswap_net::BOOK_VIEW_LEVELS).map(level).collect(),
            orders: (0..darkswap_net::BOOK_VIEW_ORDERS)
                .map(|n| order(n, Side::Buy))
                .chain((0..darkswap_net::BOOK_VIEW_ORDERS).map(|n| order(half + n, Side::Sell)))
                .collect(),
            total_orders: ORDERS,
            trades: Vec::new(),
        }
    }

    /// A page that has been open for a while.
    fn busy_page(pair: &Pair, maker: PeerId) -> Rc<AppState> {
        let mut state = Rc::new(AppState::new("http://relay/api/relay-info".into()));
        let node = |e: NodeEvent| Action::Node(Box::new(e));
        state = state.reduce(Action::SelectPair(pair.clone()));
        for n in 0..200u64 {
            state = state.reduce(node(NodeEvent::MessageReceived {
                from: maker,
                text: format!("message {n}"),
                sent_at_ms: n,
            }));
            let trade = Trade {
                id: [n as u8; 16],
                role: TradeRole::Taker,
                counterparty: maker,
                pair: pair.clone(),
                order_id: OrderId::from_u64(n),
                maker_side: Side::Sell,
                price: Price(1),
                amount: 1,
                state: TradeState::Agreed,
                agreement: Some(vec![0; 200]),
                maker_signature: Some(vec![0; 64]),
                taker_signature: Some(vec![0; 64]),
                deadline_ms: None,
                updated_at_ms: n,
                fee_rate: 0,
                taker_offer: Vec::new(),
            };
            state = state.reduce(node(NodeEvent::Trading(TradingEvent::Trade(Box::new(
                trade,
            )))));
            let own = OwnOrder {
                id: OrderId::from_u64(10_000 + n),
                pair: pair.clone(),
                spec: darkswap_proto::order::OrderSpec {
                    nonce: n,
                    side: Side::Buy,
                    price: Price(1),
                    amount: 1,
                    min_fill: 0,
                    expires_at_ms: 2_000_000_000_000,
                },
            };
            state = state.reduce(node(NodeEvent::Trading(TradingEvent::OrderPlaced(own))));
        }
        for n in 0..darkswap_net::metrics::HISTORY_SAMPLES as u64 {
            state = state.reduce(node(NodeEvent::RelayRtt(Duration::from_millis(n))));
            state = state.reduce(Action::MetricsTick(
                n * darkswap_net::metrics::SAMPLE_INTERVAL_MS,
            ));
        }
        state.reduce(node(NodeEvent::Trading(TradingEvent::Book(book(
            pair, maker, 0,
        )))))
    }

    fn reducer(c: &mut Criterion) {
        let pair = Pair::parse("RUNE:DOG/BTC").unwrap();
        let maker = Keypair::generate_ed25519().public().to_peer_id();
        let state = busy_page(&pair, maker);
        let update = Action::Node(Box::new(NodeEvent::Trading(TradingEvent::Book(book(
            &pair, maker, 1,
        )))));
        c.bench_function("reducer: one book update, 1,000 orders on the pair", |b| {
            b.iter_batched(
                || match &update {
                    Action::Node(e) => Action::Node(e.clone()),
                    _ => unreachable!(),
                },
                // Yew holds the previous state while the reducer runs: so do we.
                |action| Rc::clone(&state).reduce(action),
                criterion::BatchSize::SmallInput,
            )
        });
    }

    pub fn main() {
        let mut criterion = Criterion::default()
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1))
            .configure_from_args();
        reducer(&mut criterion);
        criterion.final_summary();
    }
}
