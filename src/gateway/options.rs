//! [`GatewayOptions`]: what the gateway accepts from its clients and how much of it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::ApiKey;

/// How the gateway serves: its clients' keys, and the bounds it holds against hostile or
/// broken clients (body size, connections, concurrent requests, header and body read
/// times, which model names are served).
///
/// Every setter documents its default; a value out of range is clamped to the range the
/// setter states, never refused.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct GatewayOptions {
    pub(super) keys: Vec<ApiKey>,
    pub(super) max_body_bytes: usize,
    pub(super) shutdown_grace: Duration,
    pub(super) tcp_nodelay: bool,
    pub(super) max_connections: usize,
    pub(super) max_concurrent_requests: usize,
    pub(super) header_read_timeout: Duration,
    pub(super) body_read_timeout: Duration,
    pub(super) allow_any_target: bool,
    pub(super) metrics: Option<MetricsText>,
}

/// What `GET /metrics` answers: a function that renders the process's metrics as text
/// (Prometheus' exposition format), e.g. a Prometheus exporter's handle.
#[derive(Clone)]
pub(super) struct MetricsText(pub(super) Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for MetricsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsText(..)")
    }
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            keys: Vec::new(),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            shutdown_grace: Self::DEFAULT_SHUTDOWN_GRACE,
            tcp_nodelay: true,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            max_concurrent_requests: Self::DEFAULT_MAX_CONCURRENT_REQUESTS,
            header_read_timeout: Self::DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            allow_any_target: false,
            metrics: None,
        }
    }
}

/// The shortest read timeout a setter keeps (a zero one would close every connection).
const MIN_READ_TIMEOUT: Duration = Duration::from_millis(1);
/// The longest read timeout or grace a setter keeps: 24 h (deadlines are `now + timeout`).
const MAX_WAIT: Duration = Duration::from_secs(24 * 3600);

fn clamp_wait(d: Duration, min: Duration) -> Duration {
    d.clamp(min, MAX_WAIT)
}

impl GatewayOptions {
    /// The default body limit: 4 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 4 << 20;
    /// The default time streams in flight get to finish after a shutdown signal: 30 s.
    pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
    /// The default number of open client connections: 10,000.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
    /// The default number of chat completion requests served at once: 1,024.
    pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 1_024;
    /// The default time a client has to send a request's head: 10 s.
    pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default time a client has to send a request's body: 30 s.
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
    /// The longest client-given text (a model name, a parse error) an error message
    /// quotes; longer text is cut and marked with `…`.
    pub const MAX_ECHOED_CHARS: usize = 256;

    /// No client keys (open: anyone who reaches the port may call), the default limits.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `GET /metrics` (behind the client keys) with what `render` returns, as
    /// Prometheus' text format: e.g. `move || handle.render()` with the handle of
    /// `metrics-exporter-prometheus`, which the `polyrelay-gateway` binary installs when built
    /// with the `prometheus` feature. The relay's metrics are those of the `metrics` feature
    /// (OpenTelemetry GenAI names, see [`crate::telemetry`]). Default: none (`/metrics` is 404).
    pub fn metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(MetricsText(Arc::new(render)));
        self
    }

    /// Accepts clients that send `Authorization: Bearer {key}`. With at least one key, a
    /// request without a matching one gets 401. Default: no key (open).
    pub fn client_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.keys.push(key.into());
        self
    }

    /// The largest request body accepted (larger: 413), at least 1,024 bytes (smaller values
    /// are raised to it: no chat request fits in less). Default
    /// [`DEFAULT_MAX_BODY_BYTES`](Self::DEFAULT_MAX_BODY_BYTES).
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes.max(1024);
        self
    }

    /// How long, after the shutdown signal, requests and streams in flight may run before
    /// their connections are closed (at most 24 h). Default
    /// [`DEFAULT_SHUTDOWN_GRACE`](Self::DEFAULT_SHUTDOWN_GRACE).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = clamp_wait(grace, Duration::ZERO);
        self
    }

    /// Whether accepted connections set `TCP_NODELAY`. Default `true`: with Nagle's
    /// algorithm on, every SSE event after the first waits for the client's delayed ACK
    /// (up to 40 ms on Linux), so a streamed answer arrives in bursts. Turn it off only to
    /// trade latency for fewer packets on a link that charges per packet.
    pub fn tcp_nodelay(mut self, on: bool) -> Self {
        self.tcp_nodelay = on;
        self
    }

    /// The most client connections open at once (at least 1, at most
    /// [`Semaphore::MAX_PERMITS`]). Past it the gateway stops
    /// accepting: new connections wait in the kernel's accept backlog (the listener's
    /// `backlog`; once that is full, the kernel refuses or drops them) until a connection
    /// closes. Default [`DEFAULT_MAX_CONNECTIONS`](Self::DEFAULT_MAX_CONNECTIONS); keep it
    /// below the process's file descriptor limit.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The most chat completion requests served at once (at least 1, at most
    /// [`Semaphore::MAX_PERMITS`]); one more is shed at
    /// once with `503`, `Retry-After: 1` and an OpenAI-shaped `overloaded` error, instead of
    /// queueing. A request counts from its arrival to its response head: a stream's body,
    /// once its first token is out, is bounded by
    /// [`max_connections`](Self::max_connections) instead. `/v1/models`, `/health` and
    /// `/stats` are not counted, so the gateway stays observable under load. Default
    /// [`DEFAULT_MAX_CONCURRENT_REQUESTS`](Self::DEFAULT_MAX_CONCURRENT_REQUESTS).
    pub fn max_concurrent_requests(mut self, n: usize) -> Self {
        self.max_concurrent_requests = n.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// How long a client has to send a request's head (request line and headers), counted
    /// from the connection's opening or the end of its previous response; a connection that
    /// has not sent it by then is closed (so idle keep-alive connections close after it
    /// too: keep it longer than your clients' keep-alive idle expiry, 5 s in the OpenAI
    /// Python SDK, so that a client never sends on a connection the gateway is closing).
    /// Clamped to 1 ms–24 h. Default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`](Self::DEFAULT_HEADER_READ_TIMEOUT).
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = clamp_wait(timeout, MIN_READ_TIMEOUT);
        self
    }

    /// How long a client has to send a whole request body once its head has arrived; past
    /// it the request gets `408` (`request_timeout`). Clamped to 1 ms–24 h. Default
    /// [`DEFAULT_BODY_READ_TIMEOUT`](Self::DEFAULT_BODY_READ_TIMEOUT).
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = clamp_wait(timeout, MIN_READ_TIMEOUT);
        self
    }

    /// Whether a body's `model` (or a fallback) may name any `provider/model` pair of a
    /// registered provider, as [`Relay::chat`](crate::Relay::chat) allows. Default `false`:
    /// the gateway serves only the relay's routes, routers and the targets its routes
    /// name, and answers any other name with 404 `model_not_found`, so a client cannot
    /// reach models the operator did not choose.
    pub fn allow_any_target(mut self, allow: bool) -> Self {
        self.allow_any_target = allow;
        self
    }

    /// Whether clients must authenticate.
    pub fn is_open(&self) -> bool {
        self.keys.is_empty()
    }
}

/// `text` as an error message may quote it: at most
/// [`GatewayOptions::MAX_ECHOED_CHARS`] characters, cut with `…`.
pub(super) fn clip(text: &str) -> String {
    match text.char_indices().nth(GatewayOptions::MAX_ECHOED_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_clamped() {
        let o = GatewayOptions::new()
            .max_connections(usize::MAX)
            .max_concurrent_requests(0)
            .header_read_timeout(Duration::MAX)
            .body_read_timeout(Duration::ZERO)
            .shutdown_grace(Duration::MAX);
        assert_eq!(o.max_connections, Semaphore::MAX_PERMITS);
        assert_eq!(o.max_concurrent_requests, 1);
        assert_eq!(o.header_read_timeout, MAX_WAIT);
        assert_eq!(o.body_read_timeout, MIN_READ_TIMEOUT);
        assert_eq!(o.shutdown_grace, MAX_WAIT);
    }
}
