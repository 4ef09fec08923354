//! How the trader wants bitcoin written (BTC or satoshis), kept in this browser's local
//! storage.

use darkswap_orderbook::BtcUnit;

/// Where the choice is kept.
const KEY: &str = "darkswap.btc-unit";

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The saved choice; satoshis when nothing is saved (rune prices are quoted in sats per rune
/// by the rune markets, and in BTC they need ten or more decimals).
pub fn load() -> BtcUnit {
    match storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .as_deref()
    {
        Some("btc") => BtcUnit::Btc,
        _ => BtcUnit::Sat,
    }
}

/// Keeps the choice; a browser that refuses storage gets it for this visit only.
pub fn save(unit: BtcUnit) -> Result<(), String> {
    let storage = storage().ok_or("this browser keeps no local settings")?;
    let text = match unit {
        BtcUnit::Btc => "btc",
        BtcUnit::Sat => "sat",
    };
    storage.set_item(KEY, text).map_err(|_| {
        "this browser would not save the setting: it applies to this visit only".to_string()
    })
}
