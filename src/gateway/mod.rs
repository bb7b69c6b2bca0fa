//! An OpenAI-compatible HTTP server in front of a [`Relay`], for services not written in
//! Rust (`gateway` feature; the `polyrelay-gateway` binary runs it from a configuration
//! file).
//!
//! An OpenAI SDK moves onto the relay by changing its base URL:
//!
//! - `POST /v1/chat/completions`, plain and streamed (SSE). The body's `model` names a
//!   route, a router or a `provider/model` pair; `"models": [...]` (as OpenRouter takes
//!   them) or `"fallbacks": [...]` (as LiteLLM does) add request-scoped fallbacks.
//! - `GET /v1/models`: the routes, routers and targets a client may name;
//!   `GET /v1/models/{id}` one of them (OpenAI's `404 model_not_found` otherwise).
//! - Routing hints from clients: `intent`, `labels` and `require_tags` in the body (top
//!   level or `metadata`) or in `x-polyrelay-*` headers ([`INTENT_HEADER`], [`LABELS_HEADER`],
//!   [`REQUIRE_TAGS_HEADER`]), used by routers, constraints and stats and never sent to a
//!   vendor.
//! - `GET /dashboard`: a live page (no key; it asks the browser for the client key to read
//!   `/stats`, `/limits` and `/health`).
//! - `GET /ready` (no key): `200` while a route has a target whose breaker lets requests
//!   through, else `503`. `GET /metrics`: Prometheus text, with [`GatewayOptions::metrics`].
//! - `GET /health`: liveness without a key; with one, every target's breaker state, error
//!   rate and latency, and the fleet store's state (`"store"`: up, replica, namespace, exchanges, failures, last error and
//!   `last_sync_ago` in ms, as [`Relay::store_health`] gives it; `null` without a store).
//! - `GET /stats`: the stats snapshot ([`Relay::stats`]) as JSON, refusals included.
//! - `GET /limits`: each rate limit's headroom, each budget's spend and each pool key's state
//!   ([`Relay::limits`]).
//!
//! A stream's response head waits for its commit point (the first content event), so a
//! failure before the first token is a real HTTP error with the right status; after it, a
//! failure is an in-band `data: {"error": …}` event and the stream ends without `[DONE]`.
//! Errors are in OpenAI's JSON shape: 400 for a bad body (or too many fallbacks), 401 for a
//! wrong key, 404 for a model the gateway does not serve, 408 for a body that does not
//! arrive in time, 413 for a body over the limit, 429 (with `Retry-After`) when every target
//! was rate-limited, 503 (with `Retry-After`) when the gateway sheds load, 502/503/504 for
//! upstream failures, the vendor's message kept. A message quotes at most
//! [`GatewayOptions::MAX_ECHOED_CHARS`] characters of anything the client sent.
//!
//! The gateway holds its bounds against hostile clients ([`GatewayOptions`]): a connection
//! cap, a header and a body read timeout, a concurrency limit that sheds load, at most
//! [`MAX_REQUEST_FALLBACKS`](crate::MAX_REQUEST_FALLBACKS) distinct request-scoped
//! fallbacks, and by default only the routes, routers and route targets the operator
//! configured (any other `provider/model` is opt-in: [`GatewayOptions::allow_any_target`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use polyrelay::Relay;
//! use polyrelay::gateway::{self, GatewayOptions};
//! let relay = Relay::from_config_file("relay.toml")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4000").await?;
//! let options = GatewayOptions::new().client_key("a-key-my-services-send");
//! gateway::serve(listener, relay, options, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! # Ok(()) }
//! ```

mod dashboard;
mod hints;
mod models;
mod operator;
mod options;
mod request;
mod serve;
mod validate;

pub use hints::{INTENT_HEADER, LABELS_HEADER, MAX_HINT_CHARS, MAX_HINTS, REQUIRE_TAGS_HEADER};
pub use options::GatewayOptions;
pub use serve::serve;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::error_handling::HandleErrorLayer;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;

use crate::types::{ChatChunk, ChatRequest, ChunkKind};
use crate::{Error, ErrorKind, Relay};

struct Gateway {
    relay: Relay,
    options: GatewayOptions,
}

/// The gateway's routes, as an axum [`Router`] (to serve it yourself, or nest it).
pub fn router(relay: Relay, options: GatewayOptions) -> Router {
    operator::warn_about_restarts(&relay);
    let state = Arc::new(Gateway { relay, options });
    // One limit over both paths; past it, shed at once rather than queue.
    let limit = state.options.max_concurrent_requests;
    let shed = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |_: tower::BoxError| async move { overloaded(limit) },
        ))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(limit));
    Router::new()
        .route(
            "/v1/chat/completions",
            post(chat_completions).layer(shed.clone()),
        )
        .route("/chat/completions", post(chat_completions).layer(shed))
        .route("/v1/models", get(models::list))
        .route("/models", get(models::list))
        .route("/v1/models/{*id}", get(models::retrieve))
        .route("/models/{*id}", get(models::retrieve))
        .route("/health", get(operator::health))
        .route("/ready", get(operator::ready))
        .route("/stats", get(operator::stats))
        .route("/limits", get(operator::limits))
        .route("/metrics", get(operator::metrics))
        .route("/dashboard", get(dashboard::page))
        .with_state(state)
}

/// A completion shed by the concurrency limit: 503, `Retry-After: 1`.
fn overloaded(limit: usize) -> Response {
    let mut resp = error_body(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "this gateway is serving its limit of {limit} requests at once; retry in a moment"
        ),
        "server_error",
        Some("overloaded"),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    resp
}

/// An error in OpenAI's shape.
fn error_body(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    error_on(status, message, kind, code, None)
}

/// An error in OpenAI's shape whose `param` names the request field (or header) at fault.
fn error_on(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
    param: Option<&str>,
) -> Response {
    let body =
        json!({ "error": { "message": message, "type": kind, "param": param, "code": code } });
    (status, axum::Json(body)).into_response()
}

/// The status, OpenAI error type and code for a relay error. The relay's own refusals have
/// codes of their own (`relay_rate_limited`, `keys_exhausted`, `breaker_open`,
/// `budget_exceeded`), apart from a vendor's answer passed on (`rate_limit_exceeded`…).
fn classify(e: &Error) -> (StatusCode, &'static str, Option<String>) {
    let kind = e.kind();
    let failed: Vec<ErrorKind> = e
        .attempts()
        .iter()
        .filter_map(|a| a.error.as_ref().map(|x| x.kind()))
        .collect();
    let all = |k: ErrorKind| !failed.is_empty() && failed.iter().all(|&f| f == k);
    let effective = if kind == ErrorKind::AllTargetsFailed {
        if all(ErrorKind::RateLimited) {
            ErrorKind::RateLimited
        } else if all(ErrorKind::Timeout) {
            ErrorKind::Timeout
        } else if all(ErrorKind::RequestTooLarge) {
            ErrorKind::RequestTooLarge
        } else if failed.contains(&ErrorKind::Overloaded) {
            ErrorKind::Overloaded
        } else {
            failed.last().copied().unwrap_or(kind)
        }
    } else {
        kind
    };
    // The code says what happened (`timeout`, `overloaded`…), not only that every target
    // failed.
    let upstream = |status| {
        (
            status,
            "upstream_error",
            Some(effective.as_str().to_owned()),
        )
    };
    let own = |status, kind: &'static str, code: &str| (status, kind, Some(code.to_owned()));
    match effective {
        ErrorKind::NoRoute => own(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
        ),
        ErrorKind::InvalidRequest | ErrorKind::ConstraintViolated => (
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            e.code().map(str::to_owned),
        ),
        ErrorKind::ContextLengthExceeded => own(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "context_length_exceeded",
        ),
        ErrorKind::RequestTooLarge => own(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "request_too_large",
        ),
        ErrorKind::ContentFiltered => own(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "content_filter",
        ),
        ErrorKind::RateLimited => own(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "rate_limit_exceeded",
        ),
        ErrorKind::LimitReached => own(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "relay_rate_limited",
        ),
        ErrorKind::KeysExhausted => own(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_error",
            "keys_exhausted",
        ),
        ErrorKind::QuotaExhausted => own(
            StatusCode::TOO_MANY_REQUESTS,
            "insufficient_quota",
            "insufficient_quota",
        ),
        // LiteLLM answers a spent budget with 429 too; the code says which limit it is.
        ErrorKind::BudgetExceeded => own(
            StatusCode::TOO_MANY_REQUESTS,
            "budget_exceeded",
            "budget_exceeded",
        ),
        ErrorKind::BreakerOpen => own(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_error",
            "breaker_open",
        ),
        ErrorKind::Timeout => upstream(StatusCode::GATEWAY_TIMEOUT),
        ErrorKind::Overloaded => upstream(StatusCode::SERVICE_UNAVAILABLE),
        ErrorKind::Config => own(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "config"),
        _ => upstream(StatusCode::BAD_GATEWAY),
    }
}

/// What the client reads: the relay's summary, then each vendor's own message.
fn message_of(e: &Error) -> String {
    let vendors: Vec<String> = e
        .attempts()
        .iter()
        .filter_map(|a| Some(format!("{}: {}", a.target, a.error.as_ref()?.message())))
        .collect();
    if vendors.is_empty() {
        e.to_string()
    } else {
        // The relay's message may end with a period of its own: no "..".
        let own = e.to_string();
        format!(
            "{}. Vendor messages: {}",
            own.trim_end_matches('.'),
            vendors.join("; ")
        )
    }
}

/// When the client should come back: the relay's own word (a limit's next cell, a breaker's
/// next probe, a key's return), a budget's reset, else the earliest a vendor gave.
fn come_back_in(e: &Error) -> Option<Duration> {
    let budget_reset = e.budget().map(|b| {
        b.resets_at
            .duration_since(std::time::SystemTime::now())
            .unwrap_or_default()
    });
    let vendors = || {
        e.attempts()
            .iter()
            .filter_map(|a| a.error.as_ref()?.retry_after())
            .min()
    };
    // Every breaker open with its probe in flight: the probe's outcome is due within its
    // attempt; a second is the shortest honest hint.
    let probing = || (e.kind() == ErrorKind::BreakerOpen).then_some(Duration::from_secs(1));
    e.retry_after()
        .or(budget_reset)
        .or_else(vendors)
        .or_else(probing)
}

/// A relay error as an HTTP response. On 429 and 503, `Retry-After` in whole seconds
/// (rounded up, at least 1) when the wait is known, and the precise wait in the body's
/// `error.retry_after_ms`.
fn relay_error(e: &Error) -> Response {
    let (status, kind, code) = classify(e);
    let wait = matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    )
    .then(|| come_back_in(e))
    .flatten();
    let mut error =
        json!({ "message": message_of(e), "type": kind, "param": Value::Null, "code": code });
    if let Some(wait) = wait {
        error["retry_after_ms"] = json!(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
    }
    let mut resp = (status, axum::Json(json!({ "error": error }))).into_response();
    if let Some(wait) = wait {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
    }
    resp
}

/// Whether the request carries one of the configured client keys.
fn authorized(options: &GatewayOptions, headers: &HeaderMap) -> bool {
    if options.keys.is_empty() {
        return true;
    }
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
    else {
        return false;
    };
    options
        .keys
        .iter()
        .any(|k| constant_time_eq(k.expose().as_bytes(), given.trim().as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unauthorized() -> Response {
    error_body(
        StatusCode::UNAUTHORIZED,
        "Incorrect or missing API key: send Authorization: Bearer <key> with a key this gateway accepts.",
        "invalid_request_error",
        Some("invalid_api_key"),
    )
}

async fn chat_completions(State(gw): State<Arc<Gateway>>, request: Request) -> Response {
    if !authorized(&gw.options, request.headers()) {
        return unauthorized();
    }
    let (parts, body) = request.into_parts();
    let req = match request::read(&gw, &parts.headers, body).await {
        Ok(req) => req,
        Err(refused) => return refused,
    };
    if req.stream == Some(true) {
        stream_completion(&gw.relay, req).await
    } else {
        match gw.relay.chat(&req).await {
            Ok(resp) => {
                let mut out = axum::Json(&resp).into_response();
                served_headers(out.headers_mut(), &resp.meta);
                out
            }
            Err(e) => relay_error(&e),
        }
    }
}

/// `x-polyrelay-route` and `x-polyrelay-served-by`, for clients that want to know.
fn served_headers(headers: &mut HeaderMap, meta: &crate::types::ResponseMeta) {
    if let Some(route) = meta.route.as_deref()
        && let Ok(v) = HeaderValue::from_str(route)
    {
        headers.insert("x-polyrelay-route", v);
    }
    if let Some(t) = &meta.served_by
        && let Ok(v) = HeaderValue::from_str(&t.to_string())
    {
        headers.insert("x-polyrelay-served-by", v);
    }
}

async fn stream_completion(relay: &Relay, req: ChatRequest) -> Response {
    let include_usage = req
        .stream_options
        .as_ref()
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    // Returns at the commit point: before it, a failure is a real HTTP error.
    let stream = match relay.chat_stream(req).await {
        Ok(s) => s,
        Err(e) => return relay_error(&e),
    };
    let mut headers = HeaderMap::new();
    served_headers(&mut headers, stream.meta());
    let state = SseState {
        stream,
        include_usage,
        usage: None,
        tail: None,
    };
    let events = futures::stream::unfold(Some(state), |state| async move {
        let mut st = state?;
        loop {
            match st.stream.next().await {
                Some(Ok(mut chunk)) => {
                    if chunk.kind == ChunkKind::Restart {
                        // Words already sent cannot be taken back: end as an interruption.
                        let e = json!({ "error": {
                            "message": "the answer was interrupted and restarted on another target; \
                                        a gateway needs mid_stream_recovery = \"continue_only\" (or \"off\")",
                            "type": "upstream_error", "param": null, "code": "stream_interrupted" } });
                        return Some((Ok::<Bytes, std::io::Error>(sse(&e)), None));
                    }
                    // Usage goes out once, in a last chunk of its own (as OpenAI sends it).
                    if let Some(u) = chunk.usage.take() {
                        st.usage = Some(u);
                    }
                    let empty = chunk.choices.iter().all(|c| {
                        c.finish_reason.is_none() && c.delta == crate::types::Delta::default()
                    });
                    if empty {
                        continue;
                    }
                    if st.include_usage && st.tail.is_none() {
                        st.tail = Some(ChatChunk {
                            id: chunk.id.clone(),
                            created: chunk.created,
                            model: chunk.model.clone(),
                            ..ChatChunk::default()
                        });
                    }
                    return Some((Ok(sse(&chunk)), Some(st)));
                }
                Some(Err(e)) => {
                    let (_, kind, code) = classify(&e);
                    let event = json!({ "error": {
                        "message": e.to_string(), "type": kind, "param": null, "code": code } });
                    // No [DONE]: the answer is truncated, and the client must know.
                    return Some((Ok(sse(&event)), None));
                }
                None => {
                    const DONE: &[u8] = b"data: [DONE]\n\n";
                    let partial = st.stream.meta().usage_partial;
                    let end = match (st.include_usage, st.usage, st.tail) {
                        (true, Some(usage), Some(mut last)) => {
                            last.usage = Some(usage);
                            let mut frame = if partial {
                                // The usage leaves part of the answer out: say so, in a
                                // key of our own that OpenAI's clients ignore.
                                let mut v = serde_json::to_value(&last).unwrap_or_default();
                                if let Some(o) = v.as_object_mut() {
                                    o.insert(
                                        "polyrelay".to_owned(),
                                        json!({ "usage_partial": true }),
                                    );
                                }
                                Vec::from(sse(&v))
                            } else {
                                Vec::from(sse(&last))
                            };
                            frame.extend_from_slice(DONE);
                            Bytes::from(frame)
                        }
                        _ => Bytes::from_static(DONE),
                    };
                    return Some((Ok(end), None));
                }
            }
        }
    });
    let mut resp = Response::new(Body::from_stream(events));
    *resp.headers_mut() = headers;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

/// A stream on its way to the client: usage is held back for one last chunk of its own,
/// `choices: []`, sent when the client asked for it (`stream_options.include_usage`) with the
/// stream's id, `created` and model (`tail`, copied once from the first chunk).
struct SseState {
    stream: crate::types::ChatStream,
    include_usage: bool,
    usage: Option<crate::types::Usage>,
    tail: Option<ChatChunk>,
}

/// One SSE `data:` event, serialized straight into its frame.
fn sse(data: &impl serde::Serialize) -> Bytes {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(b"data: ");
    // serde_json writes no raw newline in compact form.
    if serde_json::to_writer(&mut out, data).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}
