//! `darkswap-relay`: see the README's "Deploy a relay" section.

mod access;
mod audit;
mod auth;
mod behaviour;
mod config;
mod defaults;
mod directory;
mod http;
mod identity;
mod metrics;
mod orders;
mod process_metrics;
mod server;

use std::process::ExitCode;

use clap::Parser;

/// Default log filter: lifecycle at info; the WebRTC stack's per-handshake chatter off.
const DEFAULT_LOG: &str = "info,dtls=error,webrtc=error,webrtc_ice=error,webrtc_sctp=error,webrtc_dtls=error,webrtc_data=error,webrtc_mdns=error";

fn main() -> ExitCode {
    let cli = config::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match config::Config::from_cli(cli) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("darkswap-relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("darkswap-relay: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("darkswap-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
