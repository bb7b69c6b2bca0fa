//! `polyrelay-gateway --config FILE [--listen ADDR]`: an OpenAI-compatible server in front
//! of the relay a configuration file describes (see [`polyrelay::gateway`]).
//!
//! The `[gateway]` table of the file sets `listen` (default `127.0.0.1:4000`),
//! `client_keys_env` (names of environment variables holding the keys clients must send as
//! `Authorization: Bearer …`; none: open, with a warning), `max_body_bytes`,
//! `shutdown_grace` and `tcp_nodelay` (default `true`). SIGTERM or Ctrl-C stops accepting and gives requests and streams in
//! flight the grace period. Logs go to stderr (`RUST_LOG`-style levels are not parsed:
//! info and above).

use std::process::ExitCode;

use polyrelay::config::RelayConfig;
use polyrelay::gateway::{self, GatewayOptions};

fn main() -> ExitCode {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polyrelay-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

const USAGE: &str = "usage: polyrelay-gateway --config FILE [--listen ADDR]";

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut config, mut listen) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => config = args.next(),
            "--listen" | "-l" => listen = args.next(),
            "--help" | "-h" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}").into()),
        }
    }
    let path = config.ok_or(USAGE)?;
    let config = RelayConfig::from_file(&path)?;
    let settings = config.gateway_settings();
    let mut options = GatewayOptions::new();
    for var in &settings.client_keys_env {
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => options = options.client_key(key),
            _ => {
                return Err(format!(
                    "{path}: [gateway] client_keys_env: the environment variable {var} is not set"
                )
                .into());
            }
        }
    }
    if let Some(n) = settings.max_body_bytes {
        options = options.max_body_bytes(n);
    }
    if let Some(d) = settings.shutdown_grace {
        options = options.shutdown_grace(d);
    }
    if let Some(on) = settings.tcp_nodelay {
        options = options.tcp_nodelay(on);
    }
    let listen = listen
        .or(settings.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:4000".to_owned());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let relay = config.build()?;
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        let addr = listener.local_addr()?;
        eprintln!("polyrelay-gateway: listening on http://{addr}");
        tracing::info!(
            listen = %addr,
            routes = ?relay.routes(),
            routers = ?relay.routers(),
            "polyrelay gateway serving"
        );
        gateway::serve(listener, relay, options, shutdown_signal()).await?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}

/// SIGTERM (Unix) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
