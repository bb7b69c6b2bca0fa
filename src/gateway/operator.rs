//! What an operator and a load balancer read: `GET /health` (liveness, no key; details with
//! one), `GET /ready` (no key), `GET /stats`, `GET /limits` and `GET /metrics` (behind the
//! client keys).

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Gateway, authorized, unauthorized};
use crate::types::BreakerState;
use crate::{MidStreamRecovery, Relay};

/// The routes whose mid-stream recovery may restart an answer (`restart`, or `continue`
/// when no prefill target is left): a gateway has already sent the first words and cannot
/// take them back, so such a route ends the client's stream with an in-band error instead.
pub(super) fn restarting_routes(relay: &Relay) -> Vec<(String, MidStreamRecovery)> {
    relay
        .describe()
        .routes
        .into_iter()
        .filter(|r| {
            matches!(
                r.mid_stream_recovery,
                MidStreamRecovery::Restart | MidStreamRecovery::Continue
            )
        })
        .map(|r| (r.name, r.mid_stream_recovery))
        .collect()
}

/// Warns, at start, of every route [`restarting_routes`] names.
pub(super) fn warn_about_restarts(relay: &Relay) {
    for (route, recovery) in restarting_routes(relay) {
        tracing::warn!(
            relay.route = %route,
            recovery = ?recovery,
            "route's mid-stream recovery may restart an answer the gateway has already sent; \
             a client then gets an in-band error instead: use mid_stream_recovery = \
             \"continue_only\" for routes served through the gateway"
        );
    }
}

/// `GET /health`: liveness. `200 {"status": "ok"}` to anyone (a load balancer sends no key);
/// with a client key (or on a gateway without keys) also every target's breaker state,
/// error rate and latency, and the fleet store's link.
pub(super) async fn health(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !gw.options.keys.is_empty() && !headers.contains_key(header::AUTHORIZATION) {
        return axum::Json(json!({ "status": "ok" })).into_response();
    }
    // A wrong key is refused, not answered as if none was sent.
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    let targets: Vec<Value> = gw
        .relay
        .health()
        .iter()
        .map(|h| {
            json!({
                "target": h.target.to_string(),
                "state": state_name(h.state),
                "error_rate": h.error_rate,
                "recent_attempts": h.recent_attempts,
                "consecutive_failures": h.consecutive_failures,
                "latency_ms": h.latency.map(|d| d.as_secs_f64() * 1000.0),
                "in_flight": h.in_flight,
                "next_probe_in_ms": h.next_probe_in.map(|d| d.as_millis() as u64),
            })
        })
        .collect();
    // The fleet store's link (null without one): requests are served while it is down, so
    // the status stays "ok".
    let store = gw.relay.store_health();
    axum::Json(json!({ "status": "ok", "targets": targets, "store": store })).into_response()
}

fn state_name(state: BreakerState) -> &'static str {
    match state {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "halfopen",
    }
}

/// `GET /ready`: `200 {"ready": true, "routes": n}` when at least one route has a target
/// whose breaker lets requests through (closed, or half-open for a probe), else `503
/// {"ready": false, "routes": 0}`. No key: load balancers and orchestrators poll it. A
/// gateway without routes that serves any `provider/model` is ready while it has providers.
pub(super) async fn ready(State(gw): State<Arc<Gateway>>) -> Response {
    let open: HashSet<String> = gw
        .relay
        .health()
        .iter()
        .filter(|h| h.state == BreakerState::Open)
        .map(|h| h.target.to_string())
        .collect();
    let d = gw.relay.describe();
    let routes = d
        .routes
        .iter()
        .filter(|r| {
            r.targets
                .iter()
                .any(|t| !open.contains(&format!("{}/{}", t.provider, t.model)))
        })
        .count();
    let ready = routes > 0 || (gw.options.allow_any_target && !d.providers.is_empty());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(json!({ "ready": ready, "routes": routes })),
    )
        .into_response()
}

/// `GET /stats`: the stats snapshot ([`crate::Relay::stats`]), refusals, the last 24 UTC
/// hours (`hours`) and the latest failovers (`failovers`) included; money exact to the
/// nano-dollar.
pub(super) async fn stats(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    axum::Json(gw.relay.stats()).into_response()
}

/// `GET /limits`: every rate limit's headroom, every budget's spend and every pool key's
/// state, while they work ([`crate::Relay::limits`]).
pub(super) async fn limits(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    axum::Json(gw.relay.limits()).into_response()
}

/// `GET /metrics`: Prometheus' text format, from the renderer set with
/// [`GatewayOptions::metrics`](super::GatewayOptions::metrics); 404 without one.
pub(super) async fn metrics(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    let Some(render) = &gw.options.metrics else {
        return super::error_body(
            StatusCode::NOT_FOUND,
            "this gateway serves no metrics (GatewayOptions::metrics; the polyrelay-gateway \
             binary built with the `prometheus` feature does)",
            "invalid_request_error",
            Some("not_found"),
        );
    };
    let mut resp = (render.0)().into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chain, providers::OpenAi};

    #[test]
    fn routes_that_may_restart_an_answer_are_named() {
        let p = || OpenAi::compatible("x", "http://127.0.0.1:9/v1", "");
        let relay = Relay::builder()
            .provider("p", p())
            .route("plain", Chain::of(["p/a"]))
            .route(
                "restart",
                Chain::of(["p/a"]).mid_stream_recovery(MidStreamRecovery::Restart),
            )
            .route(
                "continue",
                Chain::of(["p/a"]).mid_stream_recovery(MidStreamRecovery::Continue),
            )
            .route(
                "only",
                Chain::of(["p/a"]).mid_stream_recovery(MidStreamRecovery::ContinueOnly),
            )
            .build();
        let Ok(relay) = relay else {
            panic!("the relay builds")
        };
        let mut named: Vec<String> = restarting_routes(&relay)
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        named.sort();
        assert_eq!(named, ["continue", "restart"]);
    }
}
