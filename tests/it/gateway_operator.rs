//! The gateway for operators and strict clients (issue 23, points 2 and 3): liveness without
//! a key, readiness, Prometheus text, `GET /v1/models/{id}`, and local 400s for requests
//! every vendor would refuse.

use std::time::Duration;

use polyrelay::gateway::GatewayOptions;
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{BreakerPolicy, Chain, Relay, RetryPolicy};
use serde_json::{Value, json};

use crate::gateway::{Gateway, KEY, gateway, get_json};

/// Route `support` = `sim/primary`; its breaker opens after 2 failures for an hour.
fn relay(sim: &Simulator) -> Relay {
    Relay::builder()
        .provider(
            "sim",
            OpenAi::new("sk-sim").base_url(&format!("{}/v1", sim.base_url())),
        )
        .route(
            "support",
            Chain::of(["sim/primary"]).retry(RetryPolicy::no_retries()),
        )
        .breaker(
            BreakerPolicy::default()
                .consecutive_failures(2)
                .cooldown(Duration::from_secs(3600)),
        )
        .build()
        .unwrap()
}

async fn setup(options: GatewayOptions) -> (Simulator, Gateway) {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim), options.client_key(KEY)).await;
    (sim, gw)
}

/// A `GET` of `path` with `key` (none: no Authorization header): status and body text.
async fn get(gw: &Gateway, path: &str, key: Option<&str>) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}{path}", gw.url));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn chat(gw: &Gateway, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn health_answers_liveness_without_a_key_and_details_with_one() {
    let (_sim, gw) = setup(GatewayOptions::new()).await;
    let (status, body) = get(&gw, "/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({ "status": "ok" })
    );
    assert_eq!(get(&gw, "/health", Some("wrong")).await.0, 401);
    let details = get_json(&gw.url, "/health").await;
    assert!(details["targets"].is_array(), "{details}");
    // The other operator endpoints stay behind the key.
    for path in ["/stats", "/limits", "/metrics"] {
        assert_eq!(get(&gw, path, None).await.0, 401, "{path}");
    }
}

#[tokio::test]
async fn ready_turns_503_when_no_route_can_serve() {
    let (sim, gw) = setup(GatewayOptions::new()).await;
    let (status, body) = get(&gw, "/ready", None).await;
    assert_eq!(
        (status, body.as_str()),
        (200, r#"{"ready":true,"routes":1}"#)
    );
    sim.set_default(Reply::error(SimError::Server));
    let ticket = json!({ "model": "support", "messages": [{ "role": "user", "content": "hi" }] });
    for _ in 0..2 {
        assert_ne!(chat(&gw, &ticket).await.0, 200);
    }
    let (status, body) = get(&gw, "/ready", None).await;
    assert_eq!(
        (status, body.as_str()),
        (503, r#"{"ready":false,"routes":0}"#)
    );
}

#[tokio::test]
async fn metrics_are_prometheus_text_when_configured() {
    let (_sim, bare) = setup(GatewayOptions::new()).await;
    assert_eq!(get(&bare, "/metrics", Some(KEY)).await.0, 404);
    let options = GatewayOptions::new().metrics(|| "polyrelay_up 1\n".to_owned());
    let (_sim, gw) = setup(options).await;
    let resp = reqwest::Client::new()
        .get(format!("{}/metrics", gw.url))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    assert_eq!(resp.text().await.unwrap(), "polyrelay_up 1\n");
}

#[tokio::test]
async fn a_model_is_retrieved_by_id_and_an_unknown_one_is_openais_404() {
    let (_sim, gw) = setup(GatewayOptions::new()).await;
    for id in ["support", "sim/primary"] {
        let (status, body) = get(&gw, &format!("/v1/models/{id}"), Some(KEY)).await;
        assert_eq!(status, 200, "{id}: {body}");
        let model: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (model["id"].as_str(), model["object"].as_str()),
            (Some(id), Some("model"))
        );
    }
    let (status, body) = get(&gw, "/v1/models/nope", Some(KEY)).await;
    assert_eq!(status, 404);
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "model_not_found", "{err}");
    assert_eq!(err["error"]["param"], "model", "{err}");
}

#[tokio::test]
async fn requests_every_vendor_refuses_are_local_400s_naming_the_field() {
    let (sim, gw) = setup(GatewayOptions::new()).await;
    let user = json!([{ "role": "user", "content": "hi" }]);
    let weather = json!([{ "type": "function", "function": { "name": "weather" } }]);
    let cases = [
        (json!({ "max_tokens": 0 }), "max_tokens"),
        (
            json!({ "max_completion_tokens": 0 }),
            "max_completion_tokens",
        ),
        (json!({ "temperature": -5 }), "temperature"),
        (json!({ "top_p": 1.5 }), "top_p"),
        (json!({ "presence_penalty": 3 }), "presence_penalty"),
        (json!({ "tool_choice": 5, "tools": weather }), "tool_choice"),
        (json!({ "tool_choice": "auto" }), "tool_choice"),
        (
            json!({ "tool_choice": { "type": "function", "function": { "name": "x" } },
                    "tools": weather }),
            "tool_choice",
        ),
        (
            json!({ "response_format": { "type": "nope" } }),
            "response_format.type",
        ),
        (
            json!({ "stream_options": { "include_usage": true } }),
            "stream_options",
        ),
        (
            json!({ "messages": [{ "role": "user", "content": null }] }),
            "messages[0].content",
        ),
        (
            json!({ "messages": [{ "role": "robot", "content": "x" }] }),
            "messages[0].role",
        ),
        (
            json!({ "messages": [{ "role": "tool", "content": "22 C" }] }),
            "messages[0].tool_call_id",
        ),
    ];
    for (fields, param) in cases {
        let mut body = json!({ "model": "support", "messages": user });
        if let (Value::Object(b), Value::Object(f)) = (&mut body, fields) {
            b.extend(f);
        }
        let (status, err) = chat(&gw, &body).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert_eq!(err["error"]["param"], param, "{body}: {err}");
        assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
    }
    assert!(sim.requests().is_empty(), "nothing reached the vendor");
    // The edges of every range pass.
    sim.set_default(Reply::openai_text("ok"));
    let edges = json!({ "model": "support", "messages": user, "temperature": 2, "top_p": 0,
        "max_tokens": 1, "presence_penalty": -2, "tool_choice": "none" });
    assert_eq!(chat(&gw, &edges).await.0, 200);
}
