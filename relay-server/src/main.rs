//! `darkswap-relay`: see the README's "Deploy a relay" section.

use std::process::ExitCode;

use clap::Parser;
use darkswap_relay::{Cli, Config, Server};

/// Default log filter: lifecycle at info; the WebRTC stack's per-handshake chatter off.
const DEFAULT_LOG: &str = "info,dtls=error,webrtc=error,webrtc_ice=error,webrtc_sctp=error,webrtc_dtls=error,webrtc_data=error,webrtc_mdns=error";

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::from_cli(cli) {
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
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("darkswap-relay: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the relay until SIGINT or SIGTERM.
async fn run(config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("cannot install signal handler: {e}"))?;
    let server = Server::spawn(config).await?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    server.shutdown().await;
    Ok(())
}
