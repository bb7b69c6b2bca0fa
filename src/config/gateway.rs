//! The `[gateway]` table of a configuration file.

use std::time::Duration;

use serde::Deserialize;

/// The `[gateway]` table: how `polyrelay-gateway` serves this relay.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct GatewaySettings {
    /// The address to listen on (default `127.0.0.1:4000`).
    pub listen: Option<String>,
    /// Names of environment variables holding the keys clients must send as
    /// `Authorization: Bearer …` (none: the gateway is open, and says so at start).
    pub client_keys_env: Vec<String>,
    /// The largest request body accepted, at least 1024 bytes (a smaller value is a
    /// configuration error). Default: `GatewayOptions::DEFAULT_MAX_BODY_BYTES` (4 MiB).
    pub max_body_bytes: Option<usize>,
    /// How long streams in flight may run after a shutdown signal.
    #[serde(with = "crate::relay::duration::opt")]
    pub shutdown_grace: Option<Duration>,
    /// Whether accepted connections set `TCP_NODELAY` (default `true`; see
    /// `GatewayOptions::tcp_nodelay`).
    pub tcp_nodelay: Option<bool>,
    /// Most connections open at once (default 10,000; more wait in the accept backlog).
    pub max_connections: Option<usize>,
    /// Most chat completions handled at once before the gateway sheds load with `503`
    /// (default 1,024).
    pub max_concurrent_requests: Option<usize>,
    /// How long a connection may take to send a request head (default 10 s).
    #[serde(with = "crate::relay::duration::opt")]
    pub header_read_timeout: Option<Duration>,
    /// How long a request body may take to arrive (default 30 s).
    #[serde(with = "crate::relay::duration::opt")]
    pub body_read_timeout: Option<Duration>,
    /// Whether clients may name any `provider/model` of a registered provider, not only the
    /// routes, routers and route targets configured (default `false`).
    pub allow_any_target: Option<bool>,
}
