//! Shared HTTP plumbing: the pooled client, the SSE decoder, `Retry-After` parsing and the
//! classification of vendor error responses.

pub(crate) mod auth;
pub(crate) mod classify;
pub(crate) mod form;
pub(crate) mod ratelimit;
pub mod retry_after;
pub mod sse;

use std::sync::OnceLock;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use crate::types::{Error, ErrorKind};

/// Default time allowed to open a TCP/TLS connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest non-streamed response body accepted: 64 MiB.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Builds the client the relay uses when none is injected: a connection pool, a connect
/// timeout, TCP keep-alive, and deliberately **no** total timeout (that would cut long,
/// healthy streams; the relay applies per-attempt and per-call deadlines itself).
pub fn default_client() -> Result<reqwest::Client, Error> {
    default_client_builder().build().map_err(|e| {
        Error::new(ErrorKind::Config, "could not build the HTTP client").with_source(e)
    })
}

/// The builder behind [`default_client`], for tuning one setting (connect timeout, proxy,
/// pool size, root certificates…) without rebuilding the others by hand: connect timeout
/// [`DEFAULT_CONNECT_TIMEOUT`], idle pooled connections kept 90 s, TCP keep-alive 30 s,
/// `TCP_NODELAY`, a `polyrelay/<version>` user agent, no total timeout, and redirects
/// followed only on the same host (at most 5): a redirect to another host would carry the
/// vendor's key headers (`api-key`, `x-api-key`, `x-goog-api-key`) there, so it is returned
/// as the vendor's answer instead.
///
/// ```
/// use std::time::Duration;
/// let client = polyrelay::http::default_client_builder()
///     .connect_timeout(Duration::from_secs(3))
///     .pool_max_idle_per_host(64)
///     .build()
///     .expect("client");
/// let relay = polyrelay::Relay::builder().http_client(client);
/// # let _ = relay;
/// ```
pub fn default_client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(DEFAULT_CONNECT_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_keepalive(Duration::from_secs(30))
        .tcp_nodelay(true)
        .user_agent(concat!("polyrelay/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt
                .previous()
                .last()
                .is_some_and(|prev| prev.host_str() == attempt.url().host_str());
            if same_host && attempt.previous().len() <= 5 {
                attempt.follow()
            } else {
                attempt.stop()
            }
        }))
}

/// A process-wide client for providers called outside a relay.
pub(crate) fn shared_client() -> Result<reqwest::Client, Error> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c.clone());
    }
    let c = default_client()?;
    Ok(CLIENT.get_or_init(|| c).clone())
}

/// Maps a transport error (never carrying the URL, which may hold secrets).
pub(crate) fn transport_error(e: reqwest::Error) -> Error {
    let kind = if e.is_timeout() {
        ErrorKind::Timeout
    } else if e.is_decode() {
        ErrorKind::Decode
    } else if e.is_builder() {
        ErrorKind::Config
    } else {
        // Refused, reset, closed before the response: the request may not have reached the
        // vendor, and another try or target may well succeed.
        ErrorKind::Connect
    };
    // The message says what happened in the relay's words; the causes (reqwest's, hyper's,
    // the OS's) stay in `source()`, so error reporters print each once.
    let msg = if e.is_connect() {
        "could not connect to the vendor"
    } else if e.is_timeout() {
        "the HTTP client timed out"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else if e.is_builder() {
        "the request could not be built"
    } else {
        "the connection failed before the answer was complete"
    };
    Error::new(kind, msg).with_source(e.without_url())
}

/// Reads a whole body, refusing more than `limit` bytes.
pub(crate) async fn read_body(resp: reqwest::Response, limit: usize) -> Result<Bytes, Error> {
    if resp.content_length().is_some_and(|l| l as usize <= limit) {
        // Length known and acceptable: let hyper collect it in one go.
        return resp.bytes().await.map_err(transport_error);
    }
    let mut buf = BytesMut::with_capacity(
        resp.content_length()
            .map(|l| (l as usize).min(limit))
            .unwrap_or(8 * 1024),
    );
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(transport_error)?;
        if buf.len() + chunk.len() > limit {
            return Err(Error::new(
                ErrorKind::Decode,
                format!("response body larger than {limit} bytes"),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}
