//! A chat completion body, read within its time and size, parsed, and checked against what
//! the operator configured: the model and fallbacks it names, and how many.

use std::collections::HashSet;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;

use super::options::clip;
use super::{Gateway, GatewayOptions, error_body};
use crate::types::ChatRequest;
use crate::{MAX_REQUEST_FALLBACKS, Relay};

/// The body of a `POST /v1/chat/completions`, with the client's routing hints from the body
/// and `headers` moved onto it ([`super::hints`]), ready for the relay, or the error response
/// for the client: 408 (body too slow), 413 (too large), 400 (not a request, a bad hint, too
/// many fallbacks), 404 (a model this gateway does not serve).
pub(super) async fn read(
    gw: &Gateway,
    headers: &HeaderMap,
    body: Body,
) -> Result<ChatRequest, Response> {
    let options = &gw.options;
    let read = axum::body::to_bytes(body, options.max_body_bytes);
    let body = match tokio::time::timeout(options.body_read_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return Err(error_body(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the request body is larger than this gateway accepts ({} bytes) or was cut",
                    options.max_body_bytes
                ),
                "invalid_request_error",
                Some("request_too_large"),
            ));
        }
        Err(_) => {
            return Err(error_body(
                StatusCode::REQUEST_TIMEOUT,
                &format!(
                    "the request body did not arrive within {} ms",
                    options.body_read_timeout.as_millis()
                ),
                "invalid_request_error",
                Some("request_timeout"),
            ));
        }
    };
    let mut req: ChatRequest = serde_json::from_slice(&body).map_err(|e| {
        bad_request(
            &format!(
                "the body is not a chat completion request: {}",
                clip(&e.to_string())
            ),
            "invalid_body",
        )
    })?;
    super::hints::take(&mut req, headers).map_err(super::hints::Refusal::into_response)?;
    let mut fallbacks = take_fallbacks(&mut req)
        .map_err(|m| error_body(StatusCode::BAD_REQUEST, &m, "invalid_request_error", None))?
        .into_iter();
    // OpenRouter: `models` alone names the primary too.
    if req.model.is_empty() {
        req.model = fallbacks
            .next()
            .ok_or_else(|| bad_request("`model` is required", "missing_model"))?;
    }
    let mut seen = HashSet::from([req.model.as_str()]);
    let fallbacks: Vec<&String> = fallbacks
        .as_slice()
        .iter()
        .filter(|f| seen.insert(f))
        .collect();
    // The relay's own limit, checked before any name is looked up.
    if fallbacks.len() > MAX_REQUEST_FALLBACKS {
        return Err(bad_request(
            &format!(
                "the request names {} distinct fallbacks; this gateway takes at most \
                 {MAX_REQUEST_FALLBACKS}",
                fallbacks.len(),
            ),
            "too_many_fallbacks",
        ));
    }
    let mut served = Served::new(&gw.relay, options);
    let named = std::iter::once(("model", &req.model));
    for (what, name) in named.chain(fallbacks.iter().map(|f| ("fallback", *f))) {
        if !served.serves(name) {
            return Err(not_served(what, name, options.allow_any_target));
        }
    }
    if !fallbacks.is_empty() {
        let fallbacks: Vec<String> = fallbacks.into_iter().cloned().collect();
        req = req.fallbacks(fallbacks);
    }
    if req.messages.is_empty() {
        return Err(bad_request(
            "`messages` must hold at least one message",
            "missing_messages",
        ));
    }
    if let Some(refused) = super::validate::check(&req) {
        return Err(refused);
    }
    match take_timeout(&mut req) {
        Ok(Some(timeout)) => req = req.timeout(timeout),
        Ok(None) => {}
        Err(message) => return Err(bad_request(message, "invalid_timeout")),
    }
    Ok(req)
}

/// LiteLLM's `timeout` in the body: the call's deadline in seconds (a number, at most a day;
/// removed so it is not sent to vendors), in place of the route's `total_timeout` for this
/// request ([`ChatRequest::timeout`]).
fn take_timeout(req: &mut ChatRequest) -> Result<Option<std::time::Duration>, &'static str> {
    let Some(value) = req.extra.remove("timeout") else {
        return Ok(None);
    };
    let secs = value.as_f64().filter(|s| s.is_finite() && *s >= 0.0);
    let Some(secs) = secs else {
        return Err("`timeout` must be a number of seconds, 0 or more");
    };
    // Anything past a day is no deadline a relay call needs; saturate there.
    Ok(Some(std::time::Duration::from_secs_f64(secs.min(86_400.0))))
}

fn bad_request(message: &str, code: &str) -> Response {
    error_body(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        Some(code),
    )
}

/// Request-scoped fallbacks from the body: OpenRouter's `models` and LiteLLM's `fallbacks`
/// (strings, or objects with a `model`), removed so they are not sent to vendors.
fn take_fallbacks(req: &mut ChatRequest) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for field in ["models", "fallbacks"] {
        let Some(value) = req.extra.remove(field) else {
            continue;
        };
        let Value::Array(items) = value else {
            return Err(format!("`{field}` must be an array of model names"));
        };
        for item in items {
            match item {
                Value::String(s) => out.push(s),
                Value::Object(o) => match o.get("model").and_then(Value::as_str) {
                    Some(m) => out.push(m.to_owned()),
                    None => return Err(format!("an entry of `{field}` has no `model`")),
                },
                _ => return Err(format!("`{field}` must be an array of model names")),
            }
        }
    }
    Ok(out)
}

/// 404 `model_not_found` for a `what` (model, fallback) the gateway does not serve, quoting
/// `name` clipped.
fn not_served(what: &str, name: &str, any_target: bool) -> Response {
    let allowed = if any_target {
        "a provider/model pair"
    } else {
        "a target of a route"
    };
    error_body(
        StatusCode::NOT_FOUND,
        &format!(
            "{what} {:?} is not served by this gateway: name a route, a router or {allowed} \
             (GET /v1/models lists them)",
            clip(name)
        ),
        "invalid_request_error",
        Some("model_not_found"),
    )
}

/// Which names the gateway serves: the relay's routes and routers, the targets its routes
/// name and, with [`allow_any_target`](GatewayOptions::allow_any_target), any
/// `provider/model` pair of a registered provider (the relay decides).
struct Served<'a> {
    relay: &'a Relay,
    any_target: bool,
    /// The routes' targets as `provider/model`, read once, when a name is not a route.
    targets: Option<HashSet<String>>,
}

impl<'a> Served<'a> {
    fn new(relay: &'a Relay, options: &GatewayOptions) -> Self {
        Served {
            relay,
            any_target: options.allow_any_target,
            targets: None,
        }
    }

    /// Whether the gateway serves `name` (a name longer than
    /// [`MAX_ECHOED_CHARS`](GatewayOptions::MAX_ECHOED_CHARS) only if configured).
    fn serves(&mut self, name: &str) -> bool {
        let long = name.chars().nth(GatewayOptions::MAX_ECHOED_CHARS).is_some();
        self.relay.has_route(name)
            || (!long && self.any_target)
            || self.relay.routers().iter().any(|r| r == name)
            || self.is_target(name)
    }

    fn is_target(&mut self, name: &str) -> bool {
        if !name.contains('/') {
            return false;
        }
        let relay = self.relay;
        self.targets
            .get_or_insert_with(|| {
                relay
                    .describe()
                    .routes
                    .iter()
                    .flat_map(|r| &r.targets)
                    .map(|t| format!("{}/{}", t.provider, t.model))
                    .collect()
            })
            .contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_a_char_boundary() {
        assert_eq!(clip("sim/m"), "sim/m");
        let long = "é".repeat(GatewayOptions::MAX_ECHOED_CHARS + 10);
        let clipped = clip(&long);
        assert_eq!(
            clipped.chars().count(),
            GatewayOptions::MAX_ECHOED_CHARS + 1
        );
        assert!(clipped.ends_with('…'));
        let exact = "x".repeat(GatewayOptions::MAX_ECHOED_CHARS);
        assert_eq!(clip(&exact), exact);
    }
}
