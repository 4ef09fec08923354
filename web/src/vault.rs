//! The data key that seals this browser's keys at rest (`darkswap_wallet::vault`): where its
//! wrapped form is stored, the throttle on wrong passwords, and the unwrapped key, held for the
//! page's life once the trader gave the password (so a new shared key is sealed without asking
//! again). Nothing here decides what is sealed: `identity`, `credentials` and `at_rest` do.

use std::cell::RefCell;
use std::rc::Rc;

use darkswap_wallet::keystore::{KdfParams, OpenError, SealError};
use darkswap_wallet::vault::DataKey;
use wasm_bindgen::JsValue;

use crate::storage::{bytes_value, get_bytes, present_all, StorageError};

/// The store it shares with the identity and credentials.
pub const STORE: &str = "identity";
/// The wrapped data key; its presence is what "locked at rest" means.
pub const WRAPPED: &str = "data-key";
const THROTTLE: &str = "data-key-throttle";

/// Why the data key cannot be made or unwrapped.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Open(#[from] OpenError),
    #[error("{0}")]
    Seal(#[from] SealError),
    #[error("too many wrong passwords: try again in {0} s")]
    Throttled(u64),
    #[error("the keys here are not locked")]
    NotLocked,
}

thread_local! {
    static KEY: RefCell<Option<Rc<DataKey>>> = const { RefCell::new(None) };
}

fn now_ms() -> u64 {
    js_sys::Date::now() as u64
}

/// The unwrapped data key, once the trader gave the password (or locked the keys) in this page.
pub fn current() -> Option<Rc<DataKey>> {
    KEY.with(|k| k.borrow().clone())
}

/// Holds (or forgets) the unwrapped key for the page's life.
pub fn set_current(key: Option<Rc<DataKey>>) {
    KEY.with(|k| *k.borrow_mut() = key);
}

/// Whether this browser's keys are locked at rest: anything stored under the wrapped data
/// key's name counts (an altered record is still a lock, never a reason to start afresh).
pub async fn locked_at_rest() -> Result<bool, StorageError> {
    Ok(present_all(STORE, &[WRAPPED]).await?[0])
}

/// Checks a password against a sealed record with `open`, under the throttle: refused while it
/// says wait; a wrong password (or an altered record) counts, the right one resets it.
pub async fn throttled<T>(open: impl FnOnce() -> Result<T, OpenError>) -> Result<T, VaultError> {
    let mut t = crate::wallet::load_throttle_at(STORE, THROTTLE).await;
    if let Some(at) = t.retry_at(now_ms()) {
        return Err(VaultError::Throttled((at - now_ms()).div_ceil(1000)));
    }
    let outcome = open();
    match &outcome {
        Ok(_) => t.succeeded(),
        Err(OpenError::WrongPasswordOrTampered) => t.failed(now_ms()),
        Err(_) => return outcome.map_err(VaultError::from),
    }
    crate::wallet::save_throttle_at(STORE, THROTTLE, t).await?;
    outcome.map_err(VaultError::from)
}

/// The stored data key, unwrapped with `password` (throttled).
pub async fn unwrap_stored(password: &str) -> Result<DataKey, VaultError> {
    let wrapped = get_bytes(STORE, WRAPPED)
        .await?
        .ok_or(VaultError::NotLocked)?;
    throttled(|| DataKey::unwrap(&wrapped, password)).await
}

/// A new data key and the record that stores it wrapped under `password`.
pub fn new_wrapped(password: &str) -> Result<(DataKey, (String, JsValue)), VaultError> {
    let key = DataKey::generate();
    let wrapped = key.wrap(password, KdfParams::default())?;
    Ok((key, (WRAPPED.to_string(), bytes_value(&wrapped))))
}
