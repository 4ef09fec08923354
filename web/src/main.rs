//! The DarkSwap web client's entry point (see the library for the app).

#[cfg(target_arch = "wasm32")]
fn main() {
    darkswap_web::run();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "darkswap-web runs in the browser: build it with `trunk build --release` (see README)"
    );
    std::process::exit(2);
}
