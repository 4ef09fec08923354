//! The trader's identity: an ed25519 key kept in IndexedDB, so the PeerId survives reloads.

use darkswap_net::libp2p::identity::Keypair;
use js_sys::Uint8Array;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "darkswap";
const DB_VERSION: u32 = 1;
const STORE: &str = "identity";
const KEY: &str = "ed25519";

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

async fn open() -> Result<IdbDatabase, String> {
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
            let _ = db.create_object_store(STORE);
        }
    });
    request.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    completion(&request)
        .await?
        .dyn_into::<IdbDatabase>()
        .map_err(describe)
}

/// Loads the stored identity, or creates and stores a new one.
pub async fn load_or_create() -> Result<Keypair, String> {
    let db = open().await?;
    let read = db.transaction_with_str(STORE).map_err(describe)?;
    let stored = completion(
        &read
            .object_store(STORE)
            .map_err(describe)?
            .get(&JsValue::from_str(KEY))
            .map_err(describe)?,
    )
    .await?;
    if let Some(bytes) = stored.dyn_ref::<Uint8Array>() {
        return Keypair::from_protobuf_encoding(&bytes.to_vec())
            .map_err(|e| format!("stored identity is unreadable: {e}"));
    }
    let keypair = Keypair::generate_ed25519();
    let encoded = keypair
        .to_protobuf_encoding()
        .map_err(|e| format!("cannot encode identity: {e}"))?;
    let write = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(describe)?;
    completion(
        &write
            .object_store(STORE)
            .map_err(describe)?
            .put_with_key(
                &Uint8Array::from(encoded.as_slice()),
                &JsValue::from_str(KEY),
            )
            .map_err(describe)?,
    )
    .await?;
    Ok(keypair)
}
