//! The Wallet panel: create (the words shown once) or import a wallet, unlock it with its
//! password, see balances per asset and the outputs behind them, the receiving addresses, the
//! regtest faucet, and send bitcoin. It appears only where the relay names a Bitcoin network;
//! it locks itself after 5 minutes without use.

use std::rc::Rc;
use std::time::Duration;

use bitcoin::Amount;
use darkswap_wallet::keystore::{self, IdleLock, KdfParams, MIN_PASSWORD_CHARS};
use darkswap_wallet::send::parse_address;
use darkswap_wallet::utxo::balance;
use darkswap_wallet::{
    send_btc, sign, Account, FeeRate, KeyPath, Keychain, Locks, Mnemonic, WordCount,
};
use web_sys::HtmlInputElement;
use yew::prelude::*;

use crate::wallet::{self, ChainAccess, Scanned};

#[derive(Properties, PartialEq)]
pub struct WalletPanelProps {
    pub relay_info_url: String,
    pub open: bool,
}

#[derive(Clone)]
enum Stage {
    /// Reading the relay's chain and the stored wallet.
    Loading,
    /// The relay names no chain (or could not be read): the words say why.
    NoChain(String),
    /// No wallet stored yet.
    NoWallet,
    /// A new mnemonic, shown until it is sealed.
    Words(Rc<Mnemonic>),
    Locked,
    Unlocked(Rc<Keychain>),
}

impl PartialEq for Stage {
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && match (self, other) {
                (Stage::NoChain(a), Stage::NoChain(b)) => a == b,
                (Stage::Words(a), Stage::Words(b)) => Rc::ptr_eq(a, b),
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
    crate::words::in_units(&darkswap_orderbook::Asset::Btc, a.to_sat())
}

#[function_component(WalletPanel)]
pub fn wallet_panel(props: &WalletPanelProps) -> Html {
    let stage = use_state(|| Stage::Loading);
    let chain = use_state(|| None::<ChainAccess>);
    let scanned = use_state(|| None::<Rc<Scanned>>);
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
    let confirm = use_node_ref();

    // First open: read the relay's chain and the stored wallet.
    {
        let (stage, chain, url) = (stage.clone(), chain.clone(), props.relay_info_url.clone());
        use_effect_with(props.open, move |open| {
            if *open && *stage == Stage::Loading {
                wasm_bindgen_futures::spawn_local(async move {
                    match wallet::chain_access(&url).await {
                        Ok(Some(c)) => {
                            chain.set(Some(c));
                            match wallet::load_sealed().await {
                                Ok(Some(_)) => stage.set(Stage::Locked),
                                Ok(None) => stage.set(Stage::NoWallet),
                                Err(e) => stage.set(Stage::NoChain(format!("cannot read the stored wallet: {e}"))),
                            }
                        }
                        Ok(None) => stage.set(Stage::NoChain(
                            "This relay names no Bitcoin network, so the page offers no wallet here.".into(),
                        )),
                        Err(e) => stage.set(Stage::NoChain(format!("cannot read the relay's chain: {e}"))),
                    }
                });
            }
        });
    }

    // The idle lock: checked every 10 s while unlocked.
    {
        let (stage, idle, scanned, message) = (
            stage.clone(),
            idle.clone(),
            scanned.clone(),
            message.clone(),
        );
        let unlocked = matches!(*stage, Stage::Unlocked(_));
        use_effect_with(unlocked, move |unlocked| {
            let timer = unlocked.then(|| {
                gloo_timers::callback::Interval::new(10_000, move || {
                    if idle.borrow().expired(now_ms()) {
                        stage.set(Stage::Locked);
                        scanned.set(None);
                        message.set(Some((false, "locked after 5 minutes without use".into())));
                    }
                })
            });
            move || drop(timer)
        });
    }

    let refresh = {
        let (chain, scanned, message, busy) = (
            chain.clone(),
            scanned.clone(),
            message.clone(),
            busy.clone(),
        );
        Callback::from(move |keys: Rc<Keychain>| {
            let Some(c) = (*chain).clone() else { return };
            let (scanned, message, busy) = (scanned.clone(), message.clone(), busy.clone());
            busy.set(true);
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::scan(&keys, &c).await {
                    Ok(s) => scanned.set(Some(Rc::new(s))),
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
        let idle = idle.clone();
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
            idle.borrow_mut().touch(now_ms());
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::save_sealed(&sealed).await {
                    Ok(()) => {
                        message.set(Some((
                            false,
                            "wallet sealed in this browser; unlocked".into(),
                        )));
                        stage.set(Stage::Unlocked(keys.clone()));
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, format!("cannot store the wallet: {e}")))),
                }
            });
        }
    };

    let body = match &*stage {
        Stage::Loading => html! { <p class="muted">{ "Reading the relay's chain…" }</p> },
        Stage::NoChain(why) => {
            html! { <p class="muted" data-testid="wallet-none">{ why.clone() }</p> }
        }
        Stage::NoWallet => {
            let on_create = {
                let stage = stage.clone();
                Callback::from(move |_| {
                    stage.set(Stage::Words(Rc::new(Mnemonic::generate(WordCount::Twelve))))
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
        Stage::Words(m) => {
            let on_seal = {
                let (seal, m, confirm, message) = (
                    seal_and_unlock.clone(),
                    m.clone(),
                    confirm.clone(),
                    message.clone(),
                );
                Callback::from(move |e: SubmitEvent| {
                    e.prevent_default();
                    let checked = confirm
                        .cast::<HtmlInputElement>()
                        .is_some_and(|i| i.checked());
                    if !checked {
                        return message.set(Some((
                            true,
                            "tick the box once the words are written down".into(),
                        )));
                    }
                    seal(m.clone());
                })
            };
            html! {
                <form onsubmit={on_seal}>
                    <p>{ "Your recovery words, shown this once. Write them down in order; anyone who has them has the wallet." }</p>
                    <p class="mono words" data-testid="wallet-words">{ (*m.words()).clone() }</p>
                    <label><input ref={confirm} type="checkbox" data-testid="wallet-words-written" />{ " I wrote the words down" }</label>
                    { password_fields(&pw, &pw2) }
                    <button type="submit" data-testid="wallet-seal">{ "Seal and unlock" }</button>
                </form>
            }
        }
        Stage::Locked => {
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
                    let (stage, message, refresh, idle) = (
                        stage.clone(),
                        message.clone(),
                        refresh.clone(),
                        idle.clone(),
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
            message: message.clone(),
            refresh: refresh.clone(),
            idle: idle.clone(),
            inputs: (to.clone(), amount.clone(), fee.clone()),
        }),
    };
    let note = (*message).clone().map(|(error, words)| {
        html! { <p class={if error { "error" } else { "muted" }} role="status" data-testid="wallet-message">{ words }</p> }
    });
    html! {
        <section aria-label="wallet" data-testid="wallet">
            <h2>{ "Wallet" }</h2>
            { body }
            { for note }
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
    message: UseStateHandle<Option<(bool, String)>>,
    refresh: Callback<Rc<Keychain>>,
    idle: Rc<std::cell::RefCell<IdleLock>>,
    inputs: (NodeRef, NodeRef, NodeRef),
}

fn unlocked_view(a: UnlockedArgs) -> Html {
    let Some(chain) = a.chain.clone() else {
        return html! {};
    };
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
        let (stage, scanned) = (a.stage.clone(), a.scanned_state.clone());
        Callback::from(move |_| {
            scanned.set(None);
            stage.set(Stage::Locked);
        })
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
    let on_faucet = chain.faucet.clone().map(|url| {
        let (message, refresh, keys, pay) = (
            a.message.clone(),
            a.refresh.clone(),
            a.keys.clone(),
            pay_address.clone(),
        );
        let network = chain.network;
        Callback::from(move |_| {
            let (message, refresh, keys, url) =
                (message.clone(), refresh.clone(), keys.clone(), url.clone());
            let Ok(to) = parse_address(&pay, network) else {
                return;
            };
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::faucet(&url, &to).await {
                    Ok(()) => {
                        message.set(Some((
                            false,
                            "the faucet mined 101 blocks to your payment address".into(),
                        )));
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, e))),
                }
            });
        })
    });
    let balances = a.scanned.as_ref().map(|s| {
        let b = balance(&s.utxos, &Locks::<u8>::new(1));
        html! {
            <>
                <table class="wallet-balance">
                    <tr><th scope="row">{ "bitcoin, confirmed" }</th><td data-testid="wallet-btc-confirmed" data-sats={b.btc.confirmed.to_sat().to_string()}>{ sats(b.btc.confirmed) }</td></tr>
                    <tr><th scope="row">{ "unconfirmed" }</th><td data-testid="wallet-btc-unconfirmed">{ sats(b.btc.unconfirmed) }</td></tr>
                    <tr><th scope="row">{ "held back" }</th><td title="in outputs that carry runes or inscriptions, or whose contents the indexer has not reported: never spent as fees">{ sats(b.btc_held_back) }</td></tr>
                    { for b.runes.iter().map(|(id, split)| html! {
                        <tr><th scope="row">{ format!("rune {id}") }</th><td data-testid="wallet-rune">{ format!("{} units ({} unconfirmed)", split.confirmed, split.unconfirmed) }</td></tr>
                    }) }
                </table>
                <p class="muted">{ format!("{} outputs at block {}{}", s.utxos.len(), s.tip,
                    if b.unknown_outputs > 0 { format!("; {} not reported by an indexer (no ord server?)", b.unknown_outputs) } else { String::new() }) }</p>
            </>
        }
    });
    let on_send = {
        let (to, amount, fee) = a.inputs.clone();
        let (keys, scanned, message, refresh) = (
            a.keys.clone(),
            a.scanned.clone(),
            a.message.clone(),
            a.refresh.clone(),
        );
        let chain = chain.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touch();
            let Some(s) = scanned.clone() else {
                return message.set(Some((
                    true,
                    "refresh first: the wallet has not read the chain yet".into(),
                )));
            };
            let fail = |m: String| message.set(Some((true, m)));
            let dest = match parse_address(&text(&to), chain.network) {
                Ok(d) => d,
                Err(e) => return fail(e.to_string()),
            };
            let Ok(value) = text(&amount).trim().parse::<u64>() else {
                return fail("the amount is a whole number of satoshis".into());
            };
            // Empty: 1 sat/vB, the minimum relay fee.
            let typed = text(&fee);
            let typed = if typed.trim().is_empty() {
                "1".to_string()
            } else {
                typed
            };
            let rate = match typed
                .trim()
                .parse::<u64>()
                .map_err(|e| e.to_string())
                .and_then(|r| FeeRate::sat_per_vb(r).map_err(|e| e.to_string()))
            {
                Ok(r) => r,
                Err(e) => return fail(format!("fee rate: {e}")),
            };
            let change = match keys.derive(KeyPath::change(Account::Payment, s.change.0)) {
                Ok(c) => c,
                Err(e) => return fail(e.to_string()),
            };
            let unsigned = match send_btc(
                &s.utxos,
                &Locks::<u8>::new(1),
                &dest,
                Amount::from_sat(value),
                rate,
                &change,
            ) {
                Ok(u) => u,
                Err(e) => return fail(e.to_string()),
            };
            let tx = match sign(&keys, &unsigned) {
                Ok(t) => t,
                Err(e) => return fail(e.to_string()),
            };
            let (chain, message, refresh, keys) = (
                chain.clone(),
                message.clone(),
                refresh.clone(),
                keys.clone(),
            );
            let fee_paid = unsigned.fee;
            wasm_bindgen_futures::spawn_local(async move {
                match wallet::broadcast(&chain, &tx).await {
                    Ok(txid) => {
                        message.set(Some((
                            false,
                            format!("sent {txid} (fee {} sat)", fee_paid.to_sat()),
                        )));
                        gloo_timers::future::sleep(Duration::from_millis(300)).await;
                        refresh.emit(keys);
                    }
                    Err(e) => message.set(Some((true, e))),
                }
            });
        })
    };
    let (to, amount, fee) = a.inputs;
    html! {
        <>
            <p>{ format!("{} · ", chain.network) }
                <button type="button" data-testid="wallet-refresh" onclick={on_refresh} disabled={a.busy}>{ if a.busy { "reading the chain…" } else { "Refresh" } }</button>
                { " " }<button type="button" data-testid="wallet-lock" onclick={on_lock}>{ "Lock" }</button>
                { for on_faucet.map(|f| html! { <>{ " " }<button type="button" data-testid="wallet-faucet" onclick={f}>{ "Faucet (regtest)" }</button></> }) }
            </p>
            { for balances }
            <dl class="wallet-addresses">
                <dt>{ "Receive bitcoin" }</dt><dd class="mono" data-testid="wallet-pay-address">{ pay_address }</dd>
                <dt>{ "Receive runes" }</dt><dd class="mono" data-testid="wallet-rune-address">{ rune_address }</dd>
            </dl>
            <form class="wallet-send" onsubmit={on_send} aria-label="send bitcoin">
                <label>{ "Send to " }<input ref={to} type="text" autocomplete="off" data-testid="wallet-send-to" /></label>
                <label>{ "Amount (sat) " }<input ref={amount} type="text" inputmode="numeric" data-testid="wallet-send-amount" /></label>
                <label>{ "Fee rate (sat/vB, empty: 1) " }<input ref={fee} type="text" inputmode="numeric" data-testid="wallet-send-fee" /></label>
                <button type="submit" data-testid="wallet-send">{ "Sign and send" }</button>
            </form>
            <p class="muted">{ "Not in the page yet: sending runes (the CLI's darkswap wallet send-runes does it), a QR code for the addresses, a history of transactions." }</p>
        </>
    }
}
