//! A wall clock that works on every target (`std::time` panics on wasm32-unknown-unknown).

/// Milliseconds since the Unix epoch, or 0 when the clock is before it.
pub fn unix_time_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
