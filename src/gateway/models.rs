//! `GET /v1/models` and `GET /v1/models/{id}`: the routes, routers and route targets a client
//! may name, as OpenAI's model objects (with a `polyrelay` member saying what each is).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::options::clip;
use super::{Gateway, authorized, error_on, unauthorized};
use crate::Relay;

/// `GET /v1/models`: every model object, routes first, then routers, then targets.
pub(super) async fn list(State(gw): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    axum::Json(json!({ "object": "list", "data": entries(&gw.relay) })).into_response()
}

/// `GET /v1/models/{id}`: one model object (an id may hold a `/`: `provider/model`), or
/// OpenAI's `404 model_not_found`.
pub(super) async fn retrieve(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !authorized(&gw.options, &headers) {
        return unauthorized();
    }
    match entries(&gw.relay)
        .into_iter()
        .find(|m| m["id"] == id.as_str())
    {
        Some(model) => axum::Json(model).into_response(),
        None => error_on(
            StatusCode::NOT_FOUND,
            &format!("The model {:?} does not exist on this gateway", clip(&id)),
            "invalid_request_error",
            Some("model_not_found"),
            Some("model"),
        ),
    }
}

fn model(id: &str, polyrelay: Value) -> Value {
    json!({ "id": id, "object": "model", "created": 0, "owned_by": "polyrelay",
        "polyrelay": polyrelay })
}

/// The model objects of `relay`'s routes, routers and route targets.
fn entries(relay: &Relay) -> Vec<Value> {
    let d = relay.describe();
    let mut data = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    for r in &d.routes {
        let ts: Vec<String> = r
            .targets
            .iter()
            .map(|t| format!("{}/{}", t.provider, t.model))
            .collect();
        targets.extend(ts.iter().cloned());
        data.push(model(&r.name, json!({ "kind": "route", "targets": ts })));
    }
    for r in &d.routers {
        let routes: Vec<&str> = std::iter::once(r.default_route.as_str())
            .chain(
                r.rules
                    .iter()
                    .flat_map(|(_, rs)| rs.iter().map(String::as_str)),
            )
            .collect();
        data.push(model(
            &r.name,
            json!({ "kind": "router", "routes": routes }),
        ));
    }
    targets.sort();
    targets.dedup();
    for t in targets {
        data.push(model(&t, json!({ "kind": "target" })));
    }
    data
}
