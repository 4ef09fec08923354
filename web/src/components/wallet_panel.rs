//! The Wallet panel: create (the words shown once) or import a wallet, unlock it with its
//! password, see balances per asset (runes by name, in their divisibility) and the outputs
//! behind them with what each carries and whether it may be spent, the receiving addresses with
//! their QR codes, the regtest faucet, send bitcoin or runes at a chosen fee, and read the
//! history of its transactions with their confirmations and what each did to the balance. It appears
//! only where the relay names a Bitcoin network; it locks itself after 5 minutes without use.

use std::rc::Rc;
use std::time::Duration;

use bitcoin::Amount;
use darkswap_wallet::history::Entry;
use darkswap_wallet::keystore::{self, IdleLock, KdfParams, MIN_PASSWORD_CHARS};
use darkswap_wallet::send::parse_address;
use darkswap_wallet::units::{format_units, parse_units};
use darkswap_wallet::utxo::balance;
use darkswap_wallet::{
    send_btc, send_runes, sign, Account, Assets, FeeRate, KeyPath, Keychain, Locks, Mnemonic,
    RuneId, Utxo, WordCount,
};
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::funds::{Funds, WalletView};
use crate::wallet::{self, ChainAccess, Scanned};

/// The history as read, or why it could not be.
type History = Result<Vec<Entry>, String>;

/// How many of the new words the trader retypes before the wallet is sealed.
const CONFIRM_WORDS: usize = 3;

/// `CONFIRM_WORDS` distinct positions among `count` words, ascending.
fn confirm_positions(count: usize) -> [usize; CONFIRM_WORDS] {
    let mut picked: Vec<usize> = Vec::with_capacity(CONFIRM_WORDS);
    while picked.len() < CONFIRM_WORDS.min(count) {
        let at = (js_sys::Math::random() * count as f64) as usize % count.max(1);
        if !picked.contains(&at) {
            picked.push(at);
        }
    }
    picked.sort_unstable();
    let mut out = [0; CONFIRM_WORDS];
    for (slot, at) in out.iter_mut().zip(picked) {
        *slot = at;
    }
    out
}

#[derive(Properties, PartialEq)]
pub struct WalletPanelProps {
    pub relay_info_url: String,
    /// What the order form needs to know of the wallet, told whenever it changes.
    pub on_view: Callback<WalletView>,
    /// The keys, when the wallet unlocks (`Some`) or the trader locks it (`None`): the page's
    /// settlements sign with them.
    pub on_keys: Callback<Option<Rc<Keychain>>>,
}

/// Outputs held by the page's settlements.
type Held = Locks<[u8; 16]>;

#[derive(Clone)]
enum Stage {
    /// Reading the relay's chain and the stored wallet.
    Loading,
    /// The relay names no chain: the words say so.
    NoChain(String),
    /// The relay's chain or the stored wallet could not be read: the words say why.
    Unreadable(String),
    /// No wallet stored yet.
    NoWallet,
    /// A new mnemonic, shown until it is sealed, with the 0-based positions of the words the
    /// trader retypes to confirm they wrote them down.
    Words(Rc<Mnemonic>, [usize; CONFIRM_WORDS]),
    Locked,
    Unlocked(Rc<Keychain>),
}

impl PartialEq for Stage {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && match (self, other) {
                (Stage::NoChain(a), Stage::NoChain(b)) => a == b,
                (Stage::Unreadable(a), Stage::Unreadable(b)) => a == b,
                (Stage::Words(a, _), Stage::Words(b, _)) => Rc::ptr_eq(a, b),
                (Stage::Unlocked(a), Stage::Unlocked(b)) => Rc::ptr_eq(a, b),
                _ => true,
            }
    }
}

fn text(r: &NodeRef) -> String {
    r.cast::<HtmlInputElement>()
        .map(|i| i.value())
        .unwrap_or_default()
}

fn clear(r: &NodeRef) {
    if let Some(i) = r.cast::<HtmlInputElement>() {
        i.set_value("");
    }
}

fn now_ms() -> u64 {
    darkswap_net::unix_time_ms()
}

/// Exact: "200 sat (0.000002 BTC)", integer arithmetic (the same words as the trades list).
fn sats(a: Amount) -> String {
    crate::words::in_units(
        &darkswap_orderbook::Units::default().with_btc(darkswap_orderbook::BtcUnit::Sat),
        &darkswap_orderbook::Asset::Btc,
        a.to_sat(),
    )
}

#[function_component(WalletPanel)]
pub fn wallet_panel(props: &WalletPanelProps) -> Html {
    let settler = crate::hooks::use_node().settler();
    let stage = use_state(|| Stage::Loading);
    let chain = use_state(|| None::<ChainAccess>);
    let scanned = use_state(|| None::<Rc<Scanned>>);
    let history = use_state(|| None::<Rc<History>>);
    let message = use_state(|| None::<(bool, String)>);
    let busy = use_state(|| false);
    let idle = use_mut_ref(|| IdleLock::new(IdleLock::DEFAULT_IDLE_MS, now_ms()));
    let (pw, pw2, words_in, unlock_pw, to, amount, fee) = (
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
        use_node_ref(),
    );
    let retyped: Rc<[NodeRef; CONFIRM_WORDS]> =
        Rc::new([use_node_ref(), use_node_ref(), use_node_ref()]);
    let inputs = Inputs {
        to,
        amount,
        fee,
        fee_choice: use_node_ref(),
        rune: use_node_ref(),
        rune_amount: use_node_ref(),
        rune_to: use_node_ref(),
    };

    // At start: read the relay's chain and the stored wallet (the order form needs to know
    // whether orders are checked against a wallet).
    {
        let (stage, chain, url) = (stage.clone(), chain.clone(), props.relay_info_url.clone());
        use_effect_with((), move |_| {
            if *stage == Stage::Loading {
                wasm_bindgen_futures::spawn_local(async move {
                    match wallet::chain_access(&url).await {
                        Ok(Some(c)) => {
                            chain.set(Some(c));
                            match wallet::load_sealed().await {
                                Ok(Some(_)) => stage.set(Stage::Locked),
                                Ok(None) => stage.set(Stage::NoWallet),
                                Err(e) => stage.set(Stage::Unreadable(format!("cannot read the stored wallet: {e}"))),
                            }
                        }
                        Ok(None) => stage.set(Stage::NoChain(
                            "This relay names no Bitcoin network, so the page offers no wallet here.".into(),
                        )),
                        Err(e) => stage.set(Stage::Unreadable(format!("cannot read the relay's chain: {e}"))),
                    }
                });
            }
        });
    }

    // The idle lock: checked every 10 s while unlocked.
    {
        let (stage, idle, scanned, message, history) = (
            stage.clone(),
            idle.clone(),
            scanned.clone(),
            message.clone(),
            history.clone(),
        );
        let unlocked = matches!(*stage, Stage::Unlocked(_));
        use_effect_with(unlocked, move |unlocked| {
            let timer = unlocked.then(|| {
                gloo_timers::callback::Interval::new(10_000, move || {
                    if idle.borrow().expired(now_ms()) {
                        stage.set(Stage::Locked);
                        scanned.set(None);
                        history.set(None);
                        message.set(Some((false, "locked after 5 minutes without use".into())));
                    }
                })
            });
            move || drop(timer)
        });
    }

    let refresh = {
        let (chain, scanned, message, busy, settler) = (
            chain.clone(),
            scanned.clone(),
            message.clone(),
            busy.clone(),
            settler.clone(),
        );
        Callback::from(move |keys: Rc<Keychain>| {
            let Some(c) = (*chain).clone() else { return };
            let (scanned, message, busy) = (scanned.clone(), message.clone(), busy.clone());
            let settler = settler.clone();
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                // Settlements choose from this read too, unless the wallet changes meanwhile.
                let generation = settler.wallet_generation();
                match wallet::scan(&keys, &c).await {
                    Ok(s) => {
                        settler.wallet_read(&keys, &s, generation);
                        scanned.set(Some(Rc::new(s)))
                    }
                    Err(e) => message.set(Some((true, format!("cannot read the chain: {e}")))),
                }
                busy.set(false);
            });
        })
    };

    // Seals `m` under the typed password, stores it and unlocks.
    let seal_and_unlock = {
        let (stage, chain, message, refresh, pw, pw2) = (
            stage.clone(),
            chain.clone(),
            message.clone(),
            refresh.clone(),
            pw.clone(),
            pw2.clone(),
        );
        let (idle, on_keys) = (idle.clone(), props.on_keys.clone());
        move |m: Rc<Mnemonic>| {
            let Some(c) = (*chain).clone() else { return };
            let (p1, p2) = (text(&pw), text(&pw2));
            if p1 != p2 {
                return message.set(Some((true, "the two passwords differ".into())));
            }
            let sealed = match keystore::seal(&m, &p1, c.network, KdfParams::default()) {
                Ok(s) => s,
                Err(e) => return message.set(Some((true, e.to_string()))),
            };
            clear(&pw);
            clear(&pw2);
            let keys = match Keychain::new(&m, "", c.network) {
                Ok(k) => Rc::new(k),
                Err(e) => return message.set(Some((true, e.to_string()))),
            };
            let (stage, message, refresh) = (stage.clone(), message.clone(), refresh.clone());
            let on_keys = on_keys.clone();
            idle.borrow_mut().touch(now_ms());
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::save_sealed(&sealed).await {
                    Ok(()) => {
                        message.set(Some((
                            false,
                            "wallet sealed in this browser; unlocked".into(),
                        )));
                        on_keys.emit(Some(keys.clone()));
                        stage.set(Stage::Unlocked(keys.clone()));
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, format!("cannot store the wallet: {e}")))),
                }
            });
        }
    };

    // What the order form is told.
    let view = match (&*stage, &*scanned) {
        (Stage::Loading, _) => WalletView::Unknown(
            "the wallet is still reading the relay's chain: try again in a moment".into(),
        ),
        (Stage::Unreadable(why), _) => WalletView::Unknown(why.clone()),
        (Stage::NoChain(_), _) => WalletView::NoChain,
        (Stage::Unlocked(_), Some(s)) => WalletView::Unlocked(funds(s, &settler.locks())),
        _ => WalletView::Locked,
    };
    {
        let on_view = props.on_view.clone();
        use_effect_with(view, move |v| on_view.emit(v.clone()));
    }

    let body = match &*stage {
        Stage::Loading => html! { <p class="muted">{ "Reading the relay's chain…" }</p> },
        Stage::NoChain(why) => {
            html! { <p class="muted" data-testid="wallet-none">{ why.clone() }</p> }
        }
        Stage::Unreadable(why) => {
            html! { <p class="error" data-testid="wallet-none">{ why.clone() }</p> }
        }
        Stage::NoWallet => {
            let on_create = {
                let stage = stage.clone();
                Callback::from(move |_| {
                    let m = Mnemonic::generate(WordCount::Twelve);
                    let at = confirm_positions(m.word_count());
                    stage.set(Stage::Words(Rc::new(m), at))
                })
            };
            let on_import = {
                let (seal, words_in, message) =
                    (seal_and_unlock.clone(), words_in.clone(), message.clone());
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    match Mnemonic::parse(&text(&words_in)) {
                        Ok(m) => {
                            clear(&words_in);
                            seal(Rc::new(m));
                        }
                        Err(e) => message.set(Some((true, e.to_string()))),
                    }
                })
            };
            html! {
                <>
                    <p>{ "No wallet in this browser yet." }</p>
                    <button type="button" data-testid="wallet-create" onclick={on_create}>{ "Create a wallet" }</button>
                    <form class="wallet-import" onsubmit={on_import}>
                        <label>{ "or import your 12 or 24 words " }<input ref={words_in} type="password" autocomplete="off" data-testid="wallet-import-words" /></label>
                        { password_fields(&pw, &pw2) }
                        <button type="submit">{ "Import" }</button>
                    </form>
                </>
            }
        }
        Stage::Words(m, at) => {
            let on_seal = {
                let (seal, m, at, retyped, message) = (
                    seal_and_unlock.clone(),
                    m.clone(),
                    *at,
                    retyped.clone(),
                    message.clone(),
                );
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    let typed: Vec<String> = retyped.iter().map(text).collect();
                    let pairs: Vec<(usize, &str)> = at
                        .iter()
                        .copied()
                        .zip(typed.iter().map(String::as_str))
                        .collect();
                    if !m.confirms(&pairs) {
                        return message.set(Some((
                            true,
                            "the retyped words differ from the ones shown: check what you wrote down".into(),
                        )));
                    }
                    retyped.iter().for_each(clear);
                    seal(m.clone());
                })
            };
            html! {
                <form onsubmit={on_seal}>
                    <p>{ "Your recovery words, shown this once. Write them down in order; anyone who has them has the wallet." }</p>
                    <p class="mono words" data-testid="wallet-words">{ (*m.words()).clone() }</p>
                    <p>{ "To check what you wrote, type these words from it:" }</p>
                    { for at.iter().zip(retyped.iter()).map(|(i, r)| html! {
                        <label>{ format!("word {} ", i + 1) }<input ref={r.clone()} type="text" autocomplete="off" spellcheck="false" data-testid="wallet-confirm-word" data-position={(i + 1).to_string()} /></label>
                    }) }
                    { password_fields(&pw, &pw2) }
                    <button type="submit" data-testid="wallet-seal">{ "Seal and unlock" }</button>
                </form>
            }
        }
        Stage::Locked => {
            let on_keys = props.on_keys.clone();
            let on_unlock = {
                let (stage, chain, message, refresh, unlock_pw, idle) = (
                    stage.clone(),
                    chain.clone(),
                    message.clone(),
                    refresh.clone(),
                    unlock_pw.clone(),
                    idle.clone(),
                );
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    let Some(c) = (*chain).clone() else { return };
                    let password = text(&unlock_pw);
                    clear(&unlock_pw);
                    let (stage, message, refresh, idle, on_keys) = (
                        stage.clone(),
                        message.clone(),
                        refresh.clone(),
                        idle.clone(),
                        on_keys.clone(),
                    );
                    wasm_bindgen_futures::spawn_local(async move {
                        let mut throttle = wallet::load_throttle().await;
                        if let Some(at) = throttle.retry_at(now_ms()) {
                            return message.set(Some((
                                true,
                                format!(
                                    "too many wrong passwords: try again in {} s",
                                    (at - now_ms()).div_ceil(1000)
                                ),
                            )));
                        }
                        let sealed = match wallet::load_sealed().await {
                            Ok(Some(s)) => s,
                            Ok(None) => return stage.set(Stage::NoWallet),
                            Err(e) => return message.set(Some((true, e))),
                        };
                        match keystore::open(&sealed, &password, c.network) {
                            Ok(m) => {
                                throttle.succeeded();
                                let _ = wallet::save_throttle(throttle).await;
                                match Keychain::new(&m, "", c.network) {
                                    Ok(k) => {
                                        let k = Rc::new(k);
                                        idle.borrow_mut().touch(now_ms());
                                        message.set(None);
                                        on_keys.emit(Some(k.clone()));
                                        stage.set(Stage::Unlocked(k.clone()));
                                        refresh.emit(k);
                                    }
                                    Err(e) => message.set(Some((true, e.to_string()))),
                                }
                            }
                            Err(e) => {
                                if matches!(e, keystore::OpenError::WrongPasswordOrTampered) {
                                    throttle.failed(now_ms());
                                    let _ = wallet::save_throttle(throttle).await;
                                }
                                message.set(Some((true, e.to_string())));
                            }
                        }
                    });
                })
            };
            html! {
                <form onsubmit={on_unlock}>
                    <label>{ "Password " }<input ref={unlock_pw} type="password" autocomplete="current-password" data-testid="wallet-password" /></label>
                    <button type="submit" data-testid="wallet-unlock">{ "Unlock" }</button>
                </form>
            }
        }
        Stage::Unlocked(keys) => unlocked_view(UnlockedArgs {
            keys: keys.clone(),
            chain: (*chain).clone(),
            scanned: (*scanned).clone(),
            busy: *busy,
            stage: stage.clone(),
            scanned_state: scanned.clone(),
            history: history.clone(),
            message: message.clone(),
            refresh: refresh.clone(),
            idle: idle.clone(),
            inputs: inputs.clone(),
            held: settler.locks(),
            on_keys: props.on_keys.clone(),
            settler: settler.clone(),
        }),
    };
    // Always there, empty when there is nothing to say: a child that comes and goes after the
    // body would make Yew rebuild the body's form and lose what was typed in it.
    let (error, words) = (*message).clone().unwrap_or((false, String::new()));
    html! {
        <section aria-label="wallet" data-testid="wallet">
            <h2>{ "Wallet" }</h2>
            { body }
            <p class={if error { "error" } else { "muted" }} role="status" data-testid="wallet-message">{ words }</p>
        </section>
    }
}

fn password_fields(pw: &NodeRef, pw2: &NodeRef) -> Html {
    html! {
        <>
            <label>{ format!("Password ({MIN_PASSWORD_CHARS} characters or more) ") }<input ref={pw.clone()} type="password" autocomplete="new-password" data-testid="wallet-new-password" /></label>
            <label>{ "Again " }<input ref={pw2.clone()} type="password" autocomplete="new-password" data-testid="wallet-new-password2" /></label>
        </>
    }
}

struct UnlockedArgs {
    keys: Rc<Keychain>,
    chain: Option<ChainAccess>,
    scanned: Option<Rc<Scanned>>,
    busy: bool,
    stage: UseStateHandle<Stage>,
    scanned_state: UseStateHandle<Option<Rc<Scanned>>>,
    history: UseStateHandle<Option<Rc<History>>>,
    message: UseStateHandle<Option<(bool, String)>>,
    refresh: Callback<Rc<Keychain>>,
    idle: Rc<std::cell::RefCell<IdleLock>>,
    inputs: Inputs,
    /// What the page's settlements hold: not spent by a send, not counted as spendable.
    held: Held,
    on_keys: Callback<Option<Rc<Keychain>>>,
    settler: Rc<crate::settle::Settler>,
}

/// The send forms' fields.
#[derive(Clone)]
struct Inputs {
    to: NodeRef,
    amount: NodeRef,
    /// A typed rate, used when `fee_choice` says "custom".
    fee: NodeRef,
    /// "custom" or a confirmation target in blocks.
    fee_choice: NodeRef,
    rune: NodeRef,
    rune_amount: NodeRef,
    rune_to: NodeRef,
}

/// What the wallet can spend now, by asset, for the order form (less what settlements hold).
fn funds(s: &Scanned, held: &Held) -> Funds {
    let b = balance(&s.utxos, held);
    Funds {
        btc_sats: b.btc.confirmed.to_sat(),
        runes: b
            .runes
            .iter()
            .filter_map(|(id, split)| {
                let name = s.runes.get(id)?.spaced_name.replace('•', "");
                Some((name, split.confirmed))
            })
            .collect(),
    }
}

/// Confirmation targets offered for the fee, in blocks, with their words.
const FEE_TARGETS: [(u16, &str); 3] = [
    (1, "next block"),
    (6, "about an hour"),
    (144, "about a day"),
];

/// The fee rate the send forms use: the chosen target's estimate, or the typed rate (empty: 1
/// sat/vB, the minimum relay fee).
fn chosen_rate(s: &Scanned, inputs: &Inputs) -> Result<FeeRate, String> {
    let choice = inputs
        .fee_choice
        .cast::<HtmlSelectElement>()
        .map(|e| e.value())
        .unwrap_or_else(|| "custom".into());
    let rate = if let Ok(target) = choice.parse::<u16>() {
        match &s.fees {
            Ok(f) => f
                .for_target(target)
                .ok_or("the chain gave no estimate for that target")?,
            Err(e) => return Err(format!("no fee estimates: {e}")),
        }
    } else {
        let typed = text(&inputs.fee);
        if typed.trim().is_empty() {
            1
        } else {
            typed
                .trim()
                .parse::<u64>()
                .map_err(|_| "the fee rate is a whole number of sat/vB".to_string())?
        }
    };
    FeeRate::sat_per_vb(rate).map_err(|e| format!("fee rate: {e}"))
}

/// A rune's name as ord spaces it, with its symbol.
fn rune_name(s: &Scanned, id: &RuneId) -> String {
    match s.runes.get(id) {
        Some(r) => match r.symbol {
            Some(sym) => format!("{} ({sym})", r.spaced_name),
            None => r.spaced_name.clone(),
        },
        None => format!("rune {id}"),
    }
}

/// An amount of a rune in its display units.
fn rune_units(s: &Scanned, id: &RuneId, amount: u128) -> String {
    let d = s.runes.get(id).map(|r| r.divisibility).unwrap_or(0);
    format_units(amount, d)
}

/// What an output carries, in words.
fn contents(s: &Scanned, u: &Utxo) -> String {
    match &u.assets {
        Assets::Unknown => "not reported by an indexer".into(),
        Assets::Known {
            runes,
            inscriptions,
        } => {
            let mut parts: Vec<String> = runes
                .iter()
                .map(|(id, n)| format!("{} {}", rune_units(s, id, *n), rune_name(s, id)))
                .collect();
            if *inscriptions > 0 {
                parts.push(format!("{inscriptions} inscription(s)"));
            }
            if parts.is_empty() {
                "bitcoin only".into()
            } else {
                parts.join(", ")
            }
        }
    }
}

/// Whether an output may be spent, and if not why.
fn output_state(u: &Utxo, locks: &Held) -> &'static str {
    if locks.is_locked(&u.outpoint) {
        "locked by a trade"
    } else if u.is_money() {
        "spendable"
    } else if u.assets == Assets::Unknown {
        "held back: contents unknown"
    } else {
        "held back: sent only by a rune send"
    }
}

/// The addresses' QR code: dark modules as one SVG path, with the 4-module quiet zone.
fn qr(text: &str, label: &str) -> Html {
    let Ok(code) = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M) else {
        return html! {};
    };
    let width = code.width();
    let colors = code.to_colors();
    let mut d = String::new();
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            d.push_str(&format!("M{} {}h1v1h-1z", i % width + 4, i / width + 4));
        }
    }
    let size = (width + 8).to_string();
    html! {
        <svg class="qr" viewBox={format!("0 0 {size} {size}")} width="148" height="148" role="img" aria-label={label.to_string()} data-testid="wallet-qr" data-text={text.to_string()} shape-rendering="crispEdges">
            <rect width={size.clone()} height={size} fill="#fff" />
            <path d={d} fill="#000" />
        </svg>
    }
}

fn unlocked_view(a: UnlockedArgs) -> Html {
    let Some(chain) = a.chain.clone() else {
        return html! {};
    };
    let locks = a.held.clone();
    let touch = {
        let idle = a.idle.clone();
        move || idle.borrow_mut().touch(now_ms())
    };
    let on_refresh = {
        let (refresh, keys, touch) = (a.refresh.clone(), a.keys.clone(), touch.clone());
        Callback::from(move |_| {
            touch();
            refresh.emit(keys.clone())
        })
    };
    let on_lock = {
        let (stage, scanned, history, on_keys) = (
            a.stage.clone(),
            a.scanned_state.clone(),
            a.history.clone(),
            a.on_keys.clone(),
        );
        Callback::from(move |_| {
            // The trader's own lock takes the keys from the settlements too.
            on_keys.emit(None);
            scanned.set(None);
            history.set(None);
            stage.set(Stage::Locked);
        })
    };
    let on_history = {
        let (history, keys, chain, touch) = (
            a.history.clone(),
            a.keys.clone(),
            chain.clone(),
            touch.clone(),
        );
        Callback::from(move |_| {
            touch();
            let (history, keys, chain) = (history.clone(), keys.clone(), chain.clone());
            history.set(None);
            wasm_bindgen_futures::spawn_local(async move {
                history.set(Some(Rc::new(wallet::history(&keys, &chain).await)));
            });
        })
    };
    let history_view = match a.history.as_deref() {
        None => html! {},
        Some(Err(e)) => {
            html! { <p class="error" data-testid="wallet-history-error">{ format!("cannot read the history: {e}") }</p> }
        }
        Some(Ok(entries)) if entries.is_empty() => {
            html! { <p class="muted" data-testid="wallet-history-empty">{ "No transactions yet." }</p> }
        }
        Some(Ok(entries)) => html! {
            <table data-testid="wallet-history">
                <thead><tr><th scope="col">{ "transaction" }</th><th scope="col">{ "confirmations" }</th><th scope="col">{ "bitcoin" }</th><th scope="col">{ "fee paid" }</th></tr></thead>
                <tbody>
                { for entries.iter().map(|e| {
                    let txid = e.txid.to_string();
                    let net = e.net().to_sat();
                    html! {
                        <tr data-testid="wallet-history-row" data-txid={txid.clone()} data-net={net.to_string()} data-confirmations={e.confirmations.to_string()}>
                            <td class="mono" title={txid.clone()}>{ format!("{}…", &txid[..16]) }</td>
                            <td class="num">{ if e.confirmations == 0 { "in the mempool".to_string() } else { e.confirmations.to_string() } }</td>
                            <td class="num">{ format!("{}{} sat", if net > 0 { "+" } else { "" }, net) }</td>
                            <td class="num">{ e.fee.map(|f| format!("{} sat", f.to_sat())).unwrap_or_default() }</td>
                        </tr>
                    }
                }) }
                </tbody>
            </table>
        },
    };
    let (pay_index, rune_index) = a.scanned.as_ref().map(|s| s.receive).unwrap_or((0, 0));
    let address = |account, index| {
        a.keys
            .derive(KeyPath::receive(account, index))
            .map(|d| d.address.to_string())
            .unwrap_or_default()
    };
    let pay_address = address(Account::Payment, pay_index);
    let rune_address = address(Account::Runes, rune_index);
    // The faucet's two calls: blocks to the payment address, test runes to the rune address.
    let faucet_button = |runes: bool| {
        let url = chain.faucet.clone()?;
        let (message, refresh, keys) = (a.message.clone(), a.refresh.clone(), a.keys.clone());
        let to = parse_address(
            if runes { &rune_address } else { &pay_address },
            chain.network,
        )
        .ok()?;
        Some(Callback::from(move |_| {
            let (message, refresh, keys, url, to) = (
                message.clone(),
                refresh.clone(),
                keys.clone(),
                url.clone(),
                to.clone(),
            );
            message.set(Some((false, "asking the faucet…".into())));
            wasm_bindgen_futures::spawn_local(async move {
                let done = if runes {
                    wallet::faucet_runes(&url, &to)
                        .await
                        .map(|g| format!("the faucet sent {g} to your rune address"))
                } else {
                    wallet::faucet(&url, &to)
                        .await
                        .map(|_| "the faucet mined 101 blocks to your payment address".into())
                };
                match done {
                    Ok(words) => {
                        message.set(Some((false, words)));
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, e))),
                }
            });
        }))
    };
    let (on_faucet, on_faucet_runes) = (faucet_button(false), faucet_button(true));
    let balances = a.scanned.as_ref().map(|s| {
        let b = balance(&s.utxos, &locks);
        html! {
            <>
                <table class="wallet-balance">
                    <tr><th scope="row">{ "bitcoin, confirmed" }</th><td data-testid="wallet-btc-confirmed" data-sats={b.btc.confirmed.to_sat().to_string()}>{ sats(b.btc.confirmed) }</td></tr>
                    <tr><th scope="row">{ "unconfirmed" }</th><td data-testid="wallet-btc-unconfirmed">{ sats(b.btc.unconfirmed) }</td></tr>
                    <tr><th scope="row">{ "held back" }</th><td title="in outputs that carry runes or inscriptions, or whose contents the indexer has not reported: never spent as fees">{ sats(b.btc_held_back) }</td></tr>
                    { for b.runes.iter().map(|(id, split)| html! {
                        <tr><th scope="row">{ rune_name(s, id) }</th>
                            <td data-testid="wallet-rune" data-rune={s.runes.get(id).map(|r| r.spaced_name.clone()).unwrap_or_default()} data-units={split.confirmed.to_string()}>
                                { format!("{} ({} unconfirmed)", rune_units(s, id, split.confirmed), rune_units(s, id, split.unconfirmed)) }
                            </td></tr>
                    }) }
                </table>
                <p class="muted">{ format!("{} outputs at block {}{}", s.utxos.len(), s.tip,
                    if b.unknown_outputs > 0 { format!("; {} not reported by an indexer (no ord server?)", b.unknown_outputs) } else { String::new() }) }</p>
                <details class="wallet-outputs">
                    <summary>{ format!("Outputs ({})", s.utxos.len()) }</summary>
                    <table data-testid="wallet-outputs">
                        <thead><tr><th scope="col">{ "output" }</th><th scope="col">{ "account" }</th><th scope="col">{ "value" }</th><th scope="col">{ "confirmations" }</th><th scope="col">{ "carries" }</th><th scope="col">{ "state" }</th></tr></thead>
                        <tbody>
                        { for s.utxos.iter().map(|u| {
                            let op = u.outpoint.to_string();
                            html! {
                                <tr data-outpoint={op.clone()}>
                                    <td class="mono" title={op.clone()}>{ format!("{}…:{}", &op[..12], u.outpoint.vout) }</td>
                                    <td>{ match u.path.account { Account::Payment => "payment", Account::Runes => "runes" } }</td>
                                    <td class="num">{ format!("{} sat", u.txout.value.to_sat()) }</td>
                                    <td class="num">{ u.confirmations }</td>
                                    <td>{ contents(s, u) }</td>
                                    <td data-testid="wallet-output-state">{ output_state(u, &locks) }</td>
                                </tr>
                            }
                        }) }
                        </tbody>
                    </table>
                </details>
            </>
        }
    });
    let fail_with = |message: &UseStateHandle<Option<(bool, String)>>| {
        let message = message.clone();
        move |m: String| message.set(Some((true, m)))
    };
    // Signs `unsigned`, broadcasts it and refreshes; the words name what was sent.
    let sign_and_send = {
        let (keys, message, refresh, chain, settler) = (
            a.keys.clone(),
            a.message.clone(),
            a.refresh.clone(),
            chain.clone(),
            a.settler.clone(),
        );
        move |unsigned: darkswap_wallet::Unsigned, what: String| {
            let tx = match sign(&keys, &unsigned) {
                Ok(t) => t,
                Err(e) => return message.set(Some((true, e.to_string()))),
            };
            let (chain, message, refresh, keys, settler) = (
                chain.clone(),
                message.clone(),
                refresh.clone(),
                keys.clone(),
                settler.clone(),
            );
            let fee_paid = unsigned.fee;
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::broadcast(&chain, &tx).await {
                    Ok(txid) => {
                        settler.wallet_changed();
                        message.set(Some((
                            false,
                            format!("sent {txid}: {what} (fee {} sat)", fee_paid.to_sat()),
                        )));
                        gloo_timers::future::sleep(Duration::from_millis(300)).await;
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, e))),
                }
            });
        }
    };
    let on_send = {
        let inputs = a.inputs.clone();
        let (keys, scanned, fail, send) = (
            a.keys.clone(),
            a.scanned.clone(),
            fail_with(&a.message),
            sign_and_send.clone(),
        );
        let (network, locks, touch) = (chain.network, locks.clone(), touch.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touch();
            let Some(s) = scanned.clone() else {
                return fail("refresh first: the wallet has not read the chain yet".into());
            };
            let dest = match parse_address(&text(&inputs.to), network) {
                Ok(d) => d,
                Err(e) => return fail(e.to_string()),
            };
            let Ok(value) = text(&inputs.amount).trim().parse::<u64>() else {
                return fail("the amount is a whole number of satoshis".into());
            };
            let rate = match chosen_rate(&s, &inputs) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let change = match keys.derive(KeyPath::change(Account::Payment, s.change.0)) {
                Ok(c) => c,
                Err(e) => return fail(e.to_string()),
            };
            match send_btc(
                &s.utxos,
                &locks,
                &dest,
                Amount::from_sat(value),
                rate,
                &change,
            ) {
                Ok(u) => send(u, format!("{value} sat to {dest}")),
                Err(e) => fail(e.to_string()),
            }
        })
    };
    let on_send_runes = {
        let inputs = a.inputs.clone();
        let (keys, scanned, fail, send) = (
            a.keys.clone(),
            a.scanned.clone(),
            fail_with(&a.message),
            sign_and_send,
        );
        let (network, locks) = (chain.network, locks.clone());
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touch();
            let Some(s) = scanned.clone() else {
                return fail("refresh first: the wallet has not read the chain yet".into());
            };
            let chosen = inputs
                .rune
                .cast::<HtmlSelectElement>()
                .map(|e| e.value())
                .unwrap_or_default();
            let Ok(rune) = chosen.parse::<RuneId>() else {
                return fail("choose a rune the wallet holds".into());
            };
            let Some(info) = s.runes.get(&rune) else {
                return fail("the indexer has not described this rune".into());
            };
            let units = match parse_units(&text(&inputs.rune_amount), info.divisibility) {
                Ok(u) => u,
                Err(e) => return fail(format!("amount of {}: {e}", info.spaced_name)),
            };
            let dest = match parse_address(&text(&inputs.rune_to), network) {
                Ok(d) => d,
                Err(e) => return fail(e.to_string()),
            };
            let rate = match chosen_rate(&s, &inputs) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            let changes = keys
                .derive(KeyPath::change(Account::Runes, s.change.1))
                .and_then(|r| {
                    Ok((
                        r,
                        keys.derive(KeyPath::change(Account::Payment, s.change.0))?,
                    ))
                });
            let (rune_change, btc_change) = match changes {
                Ok(c) => c,
                Err(e) => return fail(e.to_string()),
            };
            match send_runes(
                &s.utxos,
                &locks,
                rune,
                units,
                &dest,
                rate,
                &rune_change,
                &btc_change,
            ) {
                Ok(u) => send(
                    u,
                    format!(
                        "{} {} to {dest}",
                        format_units(units, info.divisibility),
                        info.spaced_name
                    ),
                ),
                Err(e) => fail(e.to_string()),
            }
        })
    };
    let fee_field = a.scanned.as_ref().map(|s| {
        let (options, note) = match &s.fees {
            Ok(f) if !f.0.is_empty() => (
                FEE_TARGETS
                    .iter()
                    .filter_map(|(t, words)| f.for_target(*t).map(|r| (*t, *words, r)))
                    .collect::<Vec<_>>(),
                None,
            ),
            Ok(_) => (Vec::new(), Some("the chain gives no fee estimates (regtest has none): type a rate".to_string())),
            Err(e) => (Vec::new(), Some(format!("no fee estimates: {e}"))),
        };
        let default = options.iter().find(|(t, _, _)| *t == 6).or(options.first()).map(|(t, _, _)| *t);
        html! {
            <fieldset class="wallet-fee">
                <legend>{ "Fee for both sends" }</legend>
                <label>{ "Confirm within " }
                    <select ref={a.inputs.fee_choice.clone()} data-testid="wallet-fee-choice">
                        { for options.iter().map(|(t, words, r)| html! {
                            <option value={t.to_string()} selected={Some(*t) == default}>{ format!("{words}: {r} sat/vB") }</option>
                        }) }
                        <option value="custom" selected={default.is_none()}>{ "a rate I type" }</option>
                    </select>
                </label>
                <label>{ "Rate (sat/vB, empty: 1) " }<input ref={a.inputs.fee.clone()} type="text" inputmode="numeric" data-testid="wallet-send-fee" /></label>
                { for note.map(|n| html! { <p class="muted" data-testid="wallet-fee-note">{ n }</p> }) }
            </fieldset>
        }
    });
    let rune_options: Vec<(RuneId, String)> = a
        .scanned
        .as_ref()
        .map(|s| {
            balance(&s.utxos, &locks)
                .runes
                .keys()
                .map(|id| (*id, rune_name(s, id)))
                .collect()
        })
        .unwrap_or_default();
    let i = a.inputs;
    html! {
        <>
            <p>{ format!("{} · ", chain.network) }
                <button type="button" data-testid="wallet-refresh" onclick={on_refresh} disabled={a.busy}>{ if a.busy { "reading the chain…" } else { "Refresh" } }</button>
                { " " }<button type="button" data-testid="wallet-lock" onclick={on_lock}>{ "Lock" }</button>
                { for on_faucet.map(|f| html! { <>{ " " }<button type="button" data-testid="wallet-faucet" onclick={f}>{ "Faucet: bitcoin (regtest)" }</button></> }) }
                { for on_faucet_runes.map(|f| html! { <>{ " " }<button type="button" data-testid="wallet-faucet-runes" onclick={f} title="1,000.00 of the relay's test rune to your rune address">{ "Faucet: test runes" }</button></> }) }
            </p>
            { for balances }
            <div class="wallet-receive">
                <figure>
                    { qr(&format!("bitcoin:{}", pay_address.to_uppercase()), "QR code of the bitcoin receiving address") }
                    <figcaption>{ "Receive bitcoin " }<span class="mono" data-testid="wallet-pay-address">{ pay_address }</span></figcaption>
                </figure>
                <figure>
                    { qr(&rune_address.to_uppercase(), "QR code of the rune receiving address") }
                    <figcaption>{ "Receive runes " }<span class="mono" data-testid="wallet-rune-address">{ rune_address }</span></figcaption>
                </figure>
            </div>
            { for fee_field }
            <form class="wallet-send" onsubmit={on_send} aria-label="send bitcoin">
                <label>{ "Send bitcoin to " }<input ref={i.to} type="text" autocomplete="off" data-testid="wallet-send-to" /></label>
                <label>{ "Amount (sat) " }<input ref={i.amount} type="text" inputmode="numeric" data-testid="wallet-send-amount" /></label>
                <button type="submit" data-testid="wallet-send">{ "Sign and send" }</button>
            </form>
            <form class="wallet-send" onsubmit={on_send_runes} aria-label="send runes">
                <label>{ "Send " }
                    <select ref={i.rune} data-testid="wallet-rune-choice" disabled={rune_options.is_empty()}>
                        { for rune_options.iter().map(|(id, name)| html! { <option value={id.to_string()}>{ name.clone() }</option> }) }
                    </select>
                </label>
                <label>{ "Amount " }<input ref={i.rune_amount} type="text" inputmode="decimal" data-testid="wallet-rune-amount" /></label>
                <label>{ "to " }<input ref={i.rune_to} type="text" autocomplete="off" data-testid="wallet-rune-to" /></label>
                <button type="submit" data-testid="wallet-send-runes" disabled={rune_options.is_empty()}>{ "Sign and send runes" }</button>
            </form>
            <section class="wallet-history" aria-label="history">
                <h3>{ "History " }<button type="button" data-testid="wallet-history-load" onclick={on_history}>{ "Read the history" }</button></h3>
                { history_view }
            </section>
        </>
    }
}
