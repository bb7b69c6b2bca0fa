//! `polyrelay-gateway --config FILE [--listen ADDR]`: an OpenAI-compatible server in front
//! of the relay a configuration file describes (see [`polyrelay::gateway`]).
//!
//! The `[gateway]` table of the file sets `listen` (default `127.0.0.1:4000`),
//! `client_keys_env` (names of environment variables holding the keys clients must send as
//! `Authorization: Bearer …`; none: open, with a warning), `max_body_bytes`,
//! `shutdown_grace`, `tcp_nodelay` (default `true`), `max_connections`,
//! `max_concurrent_requests`, `header_read_timeout`, `body_read_timeout` and
//! `allow_any_target`, each defaulting as in [`GatewayOptions`]. SIGTERM or Ctrl-C stops
//! accepting and gives requests and streams in flight the grace period. SIGHUP reloads the
//! file ([`Relay::reload_config_file`]): requests in flight finish, the next ones see the
//! new routes; a file the relay refuses keeps the current table, and the log says why
//! (the `[gateway]` table itself is read at start only). A bad `listen` is reported with
//! its file, line and key. Logs go to stderr: `RUST_LOG` sets levels and targets (default
//! `info`; e.g. `RUST_LOG=info,polyrelay=debug`), and `POLYRELAY_LOG_FORMAT=json` writes one
//! JSON object a line for log collectors.
//!
//! `GET /health` answers liveness without a key; `GET /ready` says whether a route can
//! serve (503 when every route's targets have open breakers). Built with the `prometheus`
//! feature (`--features gateway,prometheus`), the binary serves `GET /metrics` in
//! Prometheus' text format, behind the client keys.
//!
//! Several gateways behind a load balancer share their breakers and budgets through Redis
//! or Valkey with a `[store]` table (`url = "${REDIS_URL}"`, see [`polyrelay::config`]); the
//! binary must then be built with the `redis` feature as well
//! (`cargo build --release --features gateway,redis --bin polyrelay-gateway`), and says so
//! at start when it is not. `GET /health` shows the store's state. A gateway starts and
//! serves while the store is down, and joins the fleet when it comes up. SIGHUP keeps the
//! store the gateway started with (a changed `[store]` table takes effect on restart).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use polyrelay::Relay;
use polyrelay::config::RelayConfig;
use polyrelay::gateway::{self, GatewayOptions};

fn main() -> ExitCode {
    init_logs();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("polyrelay-gateway: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs on stderr: levels and targets from `RUST_LOG` (e.g. `RUST_LOG=polyrelay=debug`;
/// default `info`), one JSON object a line with `POLYRELAY_LOG_FORMAT=json`, else text.
fn init_logs() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if std::env::var("POLYRELAY_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().with_current_span(false).init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
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
    let path = PathBuf::from(config.ok_or(USAGE)?);
    let config = RelayConfig::from_file(&path)?;
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let place = |key: &str| place_of(&path, &text, key);
    let settings = config.gateway_settings();
    let mut options = GatewayOptions::new();
    for var in &settings.client_keys_env {
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => options = options.client_key(key),
            _ => {
                return Err(format!(
                    "{}: the environment variable {var} is not set",
                    place("client_keys_env")
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
    if let Some(n) = settings.max_connections {
        options = options.max_connections(n);
    }
    if let Some(n) = settings.max_concurrent_requests {
        options = options.max_concurrent_requests(n);
    }
    if let Some(d) = settings.header_read_timeout {
        options = options.header_read_timeout(d);
    }
    if let Some(d) = settings.body_read_timeout {
        options = options.body_read_timeout(d);
    }
    if let Some(on) = settings.allow_any_target {
        options = options.allow_any_target(on);
    }
    #[cfg(feature = "prometheus")]
    {
        let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
        options = options.metrics(move || handle.render());
    }
    let (listen, origin) = match (listen, &settings.listen) {
        (Some(arg), _) => (arg, "--listen".to_owned()),
        (None, Some(file)) => (file.clone(), place("listen")),
        (None, None) => (
            DEFAULT_LISTEN.to_owned(),
            "the default listen address".to_owned(),
        ),
    };
    let addrs = socket_addrs(&listen).map_err(|why| format!("{origin}: {why}"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let relay = config.build()?;
        let listener = tokio::net::TcpListener::bind(&addrs[..])
            .await
            .map_err(|e| format!("{origin}: cannot listen on {listen:?}: {e}"))?;
        let addr = listener.local_addr()?;
        #[cfg(unix)]
        {
            // Installed before serving: from here on SIGHUP reloads instead of killing.
            use tokio::signal::unix::{SignalKind, signal};
            let hangup = signal(SignalKind::hangup())?;
            tokio::spawn(reload_on_hangup(hangup, relay.clone(), path));
        }
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

const DEFAULT_LISTEN: &str = "127.0.0.1:4000";

/// `listen` as socket addresses (a host name is looked up), or why not.
fn socket_addrs(listen: &str) -> Result<Vec<SocketAddr>, String> {
    let not = || format!("{listen:?} is not a socket address (host:port)");
    match listen.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(not())
            } else {
                Ok(addrs)
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(not()),
        Err(e) => Err(format!("{}: {e}", not())),
    }
}

/// `relay.toml:12: [gateway] listen`: the file, the line of `[gateway] key` when the file
/// writes it, and the key.
fn place_of(path: &Path, text: &str, key: &str) -> String {
    let line = toml::de::DeTable::parse(text).ok().and_then(|doc| {
        let gateway = doc.get_ref().get("gateway")?.get_ref().as_table()?;
        let span = gateway.get(key)?.span();
        let before = text.get(..span.start)?;
        Some(before.matches('\n').count() + 1)
    });
    match line {
        Some(line) => format!("{}:{line}: [gateway] {key}", path.display()),
        None => format!("{}: [gateway] {key}", path.display()),
    }
}

/// On every SIGHUP, reloads the file through [`Relay::reload_config_file`]: requests in
/// flight finish on the table they started with, the next ones take the new one; a file
/// the relay refuses leaves the current table serving, and the log says why.
#[cfg(unix)]
async fn reload_on_hangup(mut hangup: tokio::signal::unix::Signal, relay: Relay, path: PathBuf) {
    while hangup.recv().await.is_some() {
        let (relay, file) = (relay.clone(), path.clone());
        match tokio::task::spawn_blocking(move || relay.reload_config_file(&file)).await {
            Ok(Ok(())) => tracing::info!(
                file = %path.display(),
                "polyrelay gateway: configuration reloaded on SIGHUP ([gateway] and [store] \
                 settings take effect on restart)"
            ),
            Ok(Err(e)) => tracing::error!(
                "polyrelay gateway: configuration not reloaded, the previous one keeps \
                 serving: {e}"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "polyrelay gateway: configuration not reloaded, the previous one keeps serving"
            ),
        }
    }
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
