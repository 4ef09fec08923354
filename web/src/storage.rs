//! A small IndexedDB wrapper: byte values under string keys in named object stores of the
//! page's one database. The identity and the trading state (own orders, trades) live here.

use js_sys::Uint8Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "darkswap";
/// Version 2 added the "trading" store (own orders and trades).
const DB_VERSION: u32 = 2;
/// Every object store; the upgrade creates whichever is missing.
const STORES: &[&str] = &["identity", "trading"];

fn describe(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| e.message().into()))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Resolves when an IndexedDB request succeeds, with its result.
async fn completion(request: &IdbRequest) -> Result<JsValue, String> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let done = request.clone();
        let on_success = Closure::once_into_js(move |_: web_sys::Event| {
            let _ = resolve.call1(&JsValue::NULL, &done.result().unwrap_or(JsValue::UNDEFINED));
        });
        let failed = request.clone();
        let on_error = Closure::once_into_js(move |_: web_sys::Event| {
            let message = failed
                .error()
                .ok()
                .flatten()
                .map(|e| e.message())
                .unwrap_or_else(|| "unknown IndexedDB error".into());
            let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&message));
        });
        request.set_onsuccess(Some(on_success.unchecked_ref()));
        request.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(describe)
}

pub async fn open() -> Result<IdbDatabase, String> {
    let factory = web_sys::window()
        .ok_or("no window")?
        .indexed_db()
        .map_err(describe)?
        .ok_or("this browser has no IndexedDB (private mode?)")?;
    let request: IdbOpenDbRequest = factory
        .open_with_u32(DB_NAME, DB_VERSION)
        .map_err(describe)?;
    let upgrading = request.clone();
    let on_upgrade = Closure::once_into_js(move |_: web_sys::Event| {
        if let Ok(db) = upgrading.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            let existing = db.object_store_names();
            for store in STORES {
                if !existing.contains(store) {
                    let _ = db.create_object_store(store);
                }
            }
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    completion(&request)
        .await?
        .dyn_into::<IdbDatabase>()
        .map_err(describe)
}

/// The bytes stored under `key`, if any.
pub async fn get_bytes(store: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
    let db = open().await?;
    let read = db.transaction_with_str(store).map_err(describe)?;
    let stored = completion(
        &read
            .object_store(store)
            .map_err(describe)?
            .get(&JsValue::from_str(key))
            .map_err(describe)?,
    )
    .await?;
    Ok(stored.dyn_ref::<Uint8Array>().map(|b| b.to_vec()))
}

/// Stores `bytes` under `key`, replacing what was there.
pub async fn put_bytes(store: &str, key: &str, bytes: &[u8]) -> Result<(), String> {
    let db = open().await?;
    let write = db
        .transaction_with_str_and_mode(store, IdbTransactionMode::Readwrite)
        .map_err(describe)?;
    completion(
        &write
            .object_store(store)
            .map_err(describe)?
            .put_with_key(&Uint8Array::from(bytes), &JsValue::from_str(key))
            .map_err(describe)?,
    )
    .await?;
    Ok(())
}
