//! How the trader wants to be told (browser notifications, a sound), kept in this browser's
//! local storage, and the browser calls that tell them.

use std::cell::RefCell;

use wasm_bindgen::JsValue;
use web_sys::{AudioContext, Notification, NotificationOptions, NotificationPermission};

/// Where the choice is kept.
const KEY: &str = "darkswap.alerts";

#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct AlertSettings {
    /// A browser notification for an alert raised while the tab is in the background.
    pub notify: bool,
    /// A short chime for every alert.
    pub sound: bool,
}

impl AlertSettings {
    fn encode(self) -> &'static str {
        match (self.notify, self.sound) {
            (false, false) => "",
            (true, false) => "notify",
            (false, true) => "sound",
            (true, true) => "notify,sound",
        }
    }

    fn decode(text: &str) -> Self {
        let has = |word| text.split(',').any(|w| w == word);
        AlertSettings {
            notify: has("notify"),
            sound: has("sound"),
        }
    }
}

fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The saved choice (nothing saved, or no storage: all off).
pub fn load() -> AlertSettings {
    storage()
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .map(|t| AlertSettings::decode(&t))
        .unwrap_or_default()
}

/// Keeps the choice; a browser that refuses storage gets it for this visit only.
pub fn save(settings: AlertSettings) -> Result<(), String> {
    let storage = storage().ok_or("this browser keeps no local settings")?;
    storage.set_item(KEY, settings.encode()).map_err(|_| {
        "this browser would not save the setting: it applies to this visit only".to_string()
    })
}

/// What the browser lets this page do about notifications, in words.
pub fn permission() -> &'static str {
    if !notifications_supported() {
        return "unsupported";
    }
    match Notification::permission() {
        NotificationPermission::Granted => "granted",
        NotificationPermission::Denied => "denied",
        _ => "ask",
    }
}

fn notifications_supported() -> bool {
    web_sys::window()
        .map(|w| js_sys::Reflect::has(&w, &JsValue::from_str("Notification")).unwrap_or(false))
        .unwrap_or(false)
}

/// Asks the browser for permission to notify; resolves to [`permission`]'s answer after.
pub async fn request_permission() -> &'static str {
    if notifications_supported() {
        if let Ok(promise) = Notification::request_permission() {
            let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
        }
    }
    permission()
}

/// A browser notification, if the browser allows it; `tag` replaces an earlier one about the
/// same trade.
pub fn notify(title: &str, body: &str, tag: &str) {
    if permission() != "granted" {
        return;
    }
    let options = NotificationOptions::new();
    options.set_body(body);
    options.set_tag(tag);
    let _ = Notification::new_with_options(title, &options);
}

thread_local! {
    /// Made when the trader turns the sound on (browsers start audio only after a gesture).
    static AUDIO: RefCell<Option<AudioContext>> = const { RefCell::new(None) };
}

/// Prepares the sound; call it from the trader's click.
pub fn unlock_sound() {
    AUDIO.with(|audio| {
        let mut audio = audio.borrow_mut();
        if audio.is_none() {
            *audio = AudioContext::new().ok();
        }
        if let Some(ctx) = audio.as_ref() {
            let _ = ctx.resume();
        }
    });
}

/// A short two-tone chime (nothing if the sound was never unlocked).
pub fn chime() {
    AUDIO.with(|audio| {
        let audio = audio.borrow();
        let Some(ctx) = audio.as_ref() else {
            return;
        };
        let _ = play_tones(ctx);
    });
}

fn play_tones(ctx: &AudioContext) -> Result<(), JsValue> {
    let start = ctx.current_time();
    for (i, freq) in [880.0f32, 1320.0].into_iter().enumerate() {
        let at = start + 0.12 * i as f64;
        let osc = ctx.create_oscillator()?;
        osc.frequency().set_value(freq);
        let gain = ctx.create_gain()?;
        gain.gain().set_value_at_time(0.15, at)?;
        gain.gain()
            .exponential_ramp_to_value_at_time(0.001, at + 0.11)?;
        osc.connect_with_audio_node(&gain)?;
        gain.connect_with_audio_node(&ctx.destination())?;
        osc.start_with_when(at)?;
        osc.stop_with_when(at + 0.12)?;
    }
    Ok(())
}
