//! A small IndexedDB wrapper: values under string keys in named object stores of the page's one
//! database. Bytes (the identity key, the protobuf records of own orders and trades) are stored as
//! `Uint8Array`s; structured Rust values cross into JavaScript with serde-wasm-bindgen.

use std::cell::RefCell;
use std::rc::Rc;

use futures::channel::oneshot;
use gloo_events::EventListener;
use js_sys::Uint8Array;
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

/// Why IndexedDB could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("no browser window")]
    NoWindow,
    #[error("this browser has no IndexedDB (private mode?)")]
    NoIndexedDb,
    #[error("this browser refused to use its storage (full, blocked, or private mode): {0}")]
    Browser(String),
    #[error("another tab changed {0} meanwhile: try again")]
    Changed(String),
    #[error("stored value under {key} is unreadable: {source}")]
    Value {
        key: String,
        source: serde_wasm_bindgen::Error,
    },
}

const DB_NAME: &str = "darkswap";
/// Version 2 added the "trading" store (own orders and trades), 3 the "wallet" store (the sealed
/// mnemonic and the unlock throttle), 4 the "settlements" store.
const DB_VERSION: u32 = 4;
/// Every object store; the upgrade creates whichever is missing.
const STORES: &[&str] = &["identity", "trading", "wallet", "settlements"];

fn describe(e: JsValue) -> StorageError {
    StorageError::Browser(
        e.as_string()
            .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| e.message().into()))
            .unwrap_or_else(|| "no reason given".to_string()),
    )
}

/// Resolves with true on `ok` (an event `target` fires), false on any of `failed`, whichever
/// comes first.
async fn settled(target: &web_sys::EventTarget, ok: &'static str, failed: &[&'static str]) -> bool {
    let (tx, rx) = oneshot::channel::<bool>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let settle = |ok: bool| {
        let tx = tx.clone();
        move |_: &web_sys::Event| {
            if let Some(tx) = tx.borrow_mut().take() {
                let _ = tx.send(ok);
            }
        }
    };
    let _on_ok = EventListener::once(target, ok, settle(true));
    let _on_failed: Vec<EventListener> = failed
        .iter()
        .map(|event| EventListener::once(target, *event, settle(false)))
        .collect();
    rx.await.unwrap_or(false)
}

/// Resolves when an IndexedDB request succeeds, with its result (its "success" or "error"
/// event, whichever comes first).
async fn completion(request: &IdbRequest) -> Result<JsValue, StorageError> {
    if settled(request, "success", &["error"]).await {
        return request.result().map_err(describe);
    }
    Err(StorageError::Browser(
        request
            .error()
            .ok()
            .flatten()
            .map(|e| e.message())
            .unwrap_or_else(|| "unknown IndexedDB error".into()),
    ))
}

thread_local! {
    /// The page's one connection to its database, opened on first use (each open costs a few
    /// tens of milliseconds, and the start-up reads and writes several values).
    /// With it, the listener that closes it when another tab upgrades the database.
    static DB: RefCell<Option<(IdbDatabase, EventListener)>> = const { RefCell::new(None) };
}

/// A transaction on `store`, on the page's open connection (opened if there is none, and once
/// more if the browser closed it, as it does when another tab upgrades the database).
async fn transaction(
    store: &str,
    mode: IdbTransactionMode,
) -> Result<web_sys::IdbTransaction, StorageError> {
    let cached = DB.with(|d| d.borrow().as_ref().map(|(db, _)| db.clone()));
    if let Some(db) = cached {
        if let Ok(t) = db.transaction_with_str_and_mode(store, mode) {
            return Ok(t);
        }
        // Closed under us: open again.
        DB.with(|d| d.borrow_mut().take());
    }
    let db = open().await?;
    let t = db
        .transaction_with_str_and_mode(store, mode)
        .map_err(describe)?;
    // Another tab asking for a newer version waits until this connection closes: close it,
    // and the next use opens again.
    let closing = db.clone();
    let on_version_change = EventListener::new(&db, "versionchange", move |_| closing.close());
    DB.with(|d| *d.borrow_mut() = Some((db, on_version_change)));
    Ok(t)
}

async fn open() -> Result<IdbDatabase, StorageError> {
    let factory = web_sys::window()
        .ok_or(StorageError::NoWindow)?
        .indexed_db()
        .map_err(describe)?
        .ok_or(StorageError::NoIndexedDb)?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(DB_NAME, DB_VERSION)
        .map_err(describe)?;
    let upgrading = request.clone();
    // Creates whichever store is missing; lives until the open request settles.
    let _on_upgrade = EventListener::once(&request, "upgradeneeded", move |_| {
        if let Ok(db) = upgrading.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            let existing = db.object_store_names();
            for store in STORES {
                if !existing.contains(store) {
                    let _ = db.create_object_store(store);
                }
            }
        }
    });
    completion(&request)
        .await?
        .dyn_into::<IdbDatabase>()
        .map_err(describe)
}

/// The value stored under `key`, as JavaScript (undefined when there is none).
async fn get_js(store: &str, key: &str) -> Result<JsValue, StorageError> {
    let read = transaction(store, IdbTransactionMode::Readonly).await?;
    completion(
        &read
            .object_store(store)
            .map_err(describe)?
            .get(&JsValue::from_str(key))
            .map_err(describe)?,
    )
    .await
}

/// Stores a JavaScript value under `key`, replacing what was there.
async fn put_js(store: &str, key: &str, value: &JsValue) -> Result<(), StorageError> {
    let write = transaction(store, IdbTransactionMode::Readwrite).await?;
    completion(
        &write
            .object_store(store)
            .map_err(describe)?
            .put_with_key(value, &JsValue::from_str(key))
            .map_err(describe)?,
    )
    .await?;
    Ok(())
}

/// The bytes stored under `key`, if any.
pub async fn get_bytes(store: &str, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
    Ok(get_js(store, key)
        .await?
        .dyn_ref::<Uint8Array>()
        .map(|b| b.to_vec()))
}

/// Stores `bytes` under `key`, replacing what was there.
pub async fn put_bytes(store: &str, key: &str, bytes: &[u8]) -> Result<(), StorageError> {
    put_js(store, key, &bytes_value(bytes)).await
}

/// The value stored under `key`: `Ok(None)` when there is none, or when what is there is bytes
/// (an older record the caller reads with [`get_bytes`]).
pub async fn get_value<T: DeserializeOwned>(
    store: &str,
    key: &str,
) -> Result<Option<T>, StorageError> {
    let value = get_js(store, key).await?;
    if value.is_undefined() || value.is_null() || value.is_instance_of::<Uint8Array>() {
        return Ok(None);
    }
    serde_wasm_bindgen::from_value(value)
        .map(Some)
        .map_err(|source| StorageError::Value {
            key: key.to_string(),
            source,
        })
}

/// Stores `value` under `key` as a JavaScript object, replacing what was there.
pub async fn put_value<T: Serialize>(
    store: &str,
    key: &str,
    value: &T,
) -> Result<(), StorageError> {
    put_js(store, key, &to_value(key, value)?).await
}

/// A value for [`replace`]: bytes (as [`put_bytes`] stores them).
pub fn bytes_value(bytes: &[u8]) -> JsValue {
    Uint8Array::from(bytes).into()
}

/// A value for [`replace`]: a structured value (as [`put_value`] stores it).
pub fn to_value<T: Serialize>(key: &str, value: &T) -> Result<JsValue, StorageError> {
    serde_wasm_bindgen::to_value(value).map_err(|source| StorageError::Value {
        key: key.to_string(),
        source,
    })
}

/// Records to write and keys to delete, committed together by [`replace`] if, when it runs,
/// each key of `expect` is present (`true`) or absent (`false`) as given.
#[derive(Default)]
pub struct Change {
    pub expect: Vec<(String, bool)>,
    pub puts: Vec<(String, JsValue)>,
    pub deletes: Vec<String>,
}

impl Change {
    /// This change followed by `other`.
    pub fn and(mut self, other: Change) -> Change {
        self.expect.extend(other.expect);
        self.puts.extend(other.puts);
        self.deletes.extend(other.deletes);
        self
    }
}

fn present(value: &JsValue) -> bool {
    !(value.is_undefined() || value.is_null())
}

/// Whether each of `keys` holds a value, read in one transaction (one consistent view).
pub async fn present_all(store: &str, keys: &[&str]) -> Result<Vec<bool>, StorageError> {
    let read = transaction(store, IdbTransactionMode::Readonly).await?;
    let objects = read.object_store(store).map_err(describe)?;
    let requests = keys
        .iter()
        .map(|k| objects.get(&JsValue::from_str(k)).map_err(describe))
        .collect::<Result<Vec<_>, _>>()?;
    let mut found = Vec::with_capacity(requests.len());
    for request in &requests {
        found.push(present(&completion(request).await?));
    }
    Ok(found)
}

/// Checks `change.expect`, then queues its writes, in `write`.
async fn stage(
    write: &web_sys::IdbTransaction,
    store: &str,
    change: &Change,
) -> Result<(), StorageError> {
    let objects = write.object_store(store).map_err(describe)?;
    for (key, expected) in &change.expect {
        let value = completion(&objects.get(&JsValue::from_str(key)).map_err(describe)?).await?;
        if present(&value) != *expected {
            return Err(StorageError::Changed(key.clone()));
        }
    }
    for (key, value) in &change.puts {
        objects
            .put_with_key(value, &JsValue::from_str(key))
            .map_err(describe)?;
    }
    for key in &change.deletes {
        objects.delete(&JsValue::from_str(key)).map_err(describe)?;
    }
    Ok(())
}

/// Commits `change` to `store` in one transaction: all of it, or none (keys that move from the
/// clear to sealed never exist both ways or neither way), and only if its expectations hold
/// inside that transaction (another tab cannot slip a write in between the check and the
/// change). Anything refused aborts the transaction.
pub async fn replace(store: &str, change: &Change) -> Result<(), StorageError> {
    let write = transaction(store, IdbTransactionMode::Readwrite).await?;
    if let Err(e) = stage(&write, store, change).await {
        let _ = write.abort();
        return Err(e);
    }
    if settled(&write, "complete", &["error", "abort"]).await {
        Ok(())
    } else {
        Err(StorageError::Browser(
            write
                .error()
                .map(|e| e.message())
                .unwrap_or_else(|| "the IndexedDB transaction was aborted".into()),
        ))
    }
}
