//! Routing hints from clients through the gateway (issue 23, point 1): intent, labels and
//! required tags from the body, its `metadata` or `x-polyrelay-*` headers reach routers,
//! constraints and stats, and never a vendor.

use polyrelay::gateway::GatewayOptions;
use polyrelay::routing::{IntentRule, Rules};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{BreakerPolicy, Chain, Relay, RetryPolicy, Target};
use serde_json::{Value, json};

use crate::gateway::{Gateway, KEY, gateway, get_json};

/// The relay-only names a vendor must never see, at the top level or in `metadata`.
const RELAY_ONLY: [&str; 3] = ["intent", "labels", "require_tags"];

/// Router `support`: intent `sensitive` → route `onprem` (target `openai/local`, tagged
/// `on-prem`), anything else → route `public`: the target named by `public`, then
/// `openai/local`.
fn relay(sim: &Simulator, public: &str) -> Relay {
    crate::support::clouds::with_clouds(
        crate::support::three_dialects(sim),
        sim,
        polyrelay::providers::vertex::GoogleAuth::access_token("ya29.test"),
    )
    .route(
        "onprem",
        Chain::new().target(Target::new("openai", "local").tags(["on-prem"])),
    )
    .route(
        "public",
        Chain::of([public])
            .target(Target::new("openai", "local").tags(["on-prem"]))
            .retry(RetryPolicy::no_retries()),
    )
    .router(
        "support",
        Rules::new("public").rule("intents", IntentRule::new().intent("sensitive", "onprem")),
    )
    .breaker(BreakerPolicy::disabled())
    .build()
    .unwrap()
}

async fn setup(public: &str) -> (Simulator, Gateway) {
    let sim = Simulator::start().await.unwrap();
    let gw = gateway(relay(&sim, public), GatewayOptions::new().client_key(KEY)).await;
    (sim, gw)
}

async fn post(gw: &Gateway, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn ticket(extra: Value) -> Value {
    let mut body = json!({
        "model": "support",
        "messages": [{ "role": "user", "content": "My card was charged twice." }],
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    body
}

/// Every body the simulator received, none carrying a relay-only field.
fn assert_no_relay_field_reached(sim: &Simulator) {
    let reqs = sim.requests();
    assert!(!reqs.is_empty(), "something was sent");
    for r in reqs {
        for name in RELAY_ONLY {
            assert!(
                r.body.get(name).is_none(),
                "{name} reached {}: {}",
                r.path,
                r.body
            );
            assert!(
                r.body.get("metadata").and_then(|m| m.get(name)).is_none(),
                "metadata.{name} reached {}: {}",
                r.path,
                r.body
            );
        }
    }
}

#[tokio::test]
async fn an_intent_in_the_body_routes_and_counts_as_the_query_type() {
    let (sim, gw) = setup("openai/gpt-4o").await;
    sim.script("local", [Reply::text("On our own servers.")]);
    let resp = post(&gw, &ticket(json!({ "intent": "sensitive" })), &[]).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("x-polyrelay-route")
            .and_then(|v| v.to_str().ok()),
        Some("onprem")
    );
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].model.as_deref(), Some("local"));
    assert_no_relay_field_reached(&sim);
    let stats = get_json(&gw.url, "/stats").await;
    let rows = stats["total"].as_array().cloned().unwrap_or_default();
    assert!(
        rows.iter().any(|r| r["query_type"] == "sensitive"),
        "a stats row for the query type: {stats}"
    );
}

#[tokio::test]
async fn an_intent_in_metadata_or_a_header_routes_too() {
    let (sim, gw) = setup("openai/gpt-4o").await;
    let meta = ticket(json!({ "metadata": { "intent": "sensitive", "ticket": "T-1" } }));
    let header = ticket(json!({}));
    for (body, headers) in [
        (&meta, &[][..]),
        (&header, &[("x-polyrelay-intent", "sensitive")][..]),
    ] {
        let resp = post(&gw, body, headers).await;
        assert_eq!(resp.status(), 200);
    }
    let reqs = sim.requests();
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.model.as_deref() == Some("local")));
    // The client's own metadata is passed on, without the hint.
    assert_eq!(reqs[0].body["metadata"], json!({ "ticket": "T-1" }));
    assert!(reqs[1].body.get("metadata").is_none());
    assert_no_relay_field_reached(&sim);
}

#[tokio::test]
async fn required_tags_from_a_client_narrow_the_plan_for_every_dialect() {
    for public in [
        "openai/gpt-4o",
        "anthropic/claude-sonnet-4-5",
        "gemini/gemini-2.5-flash",
        "bedrock/amazon.nova-pro-v1:0",
        "bedrock_native/anthropic.claude-haiku-4-5-20251001-v1:0",
        "vertex/gemini-2.5-pro",
        "vertex_claude/claude-haiku-4-5@20251001",
    ] {
        let (sim, gw) = setup(public).await;
        // Without a hint the public target answers, and gets no relay field either.
        let hints = json!({
            "labels": ["vip"],
            "metadata": { "labels": "de", "require_tags": "" },
        });
        let resp = post(&gw, &ticket(hints), &[]).await;
        assert_eq!(resp.status(), 200, "{public}");
        let reqs = sim.requests();
        assert_eq!(reqs.len(), 1, "{public}");
        assert_ne!(reqs[0].model.as_deref(), Some("local"), "{public}");
        // With `on-prem` required, only the tagged target may serve.
        let resp = post(
            &gw,
            &ticket(json!({ "require_tags": ["on-prem"] })),
            &[("x-polyrelay-labels", "vip, eu")],
        )
        .await;
        assert_eq!(resp.status(), 200, "{public}");
        let reqs = sim.requests();
        assert_eq!(reqs.len(), 2, "{public}");
        assert_eq!(reqs[1].model.as_deref(), Some("local"), "{public}");
        assert_no_relay_field_reached(&sim);
    }
}

#[tokio::test]
async fn a_bad_hint_is_a_400_naming_it_and_nothing_is_sent() {
    let (sim, gw) = setup("openai/gpt-4o").await;
    for (body, headers, param) in [
        (ticket(json!({ "intent": 7 })), &[][..], "intent"),
        (
            ticket(json!({ "intent": "a", "metadata": { "intent": "b" } })),
            &[][..],
            "metadata.intent",
        ),
        (ticket(json!({})), &[("x-polyrelay-labels", "a,,b")][..], ""),
        (
            ticket(json!({ "labels": vec!["x"; 40] })),
            &[][..],
            "labels",
        ),
    ] {
        let resp = post(&gw, &body, headers).await;
        if param.is_empty() {
            // Empty entries of a comma list are skipped, not refused.
            assert_eq!(resp.status(), 200);
            continue;
        }
        assert_eq!(resp.status(), 400, "{body}");
        let err: Value = resp.json().await.unwrap();
        assert_eq!(err["error"]["param"], param, "{err}");
        assert_eq!(err["error"]["code"], "invalid_routing_hint", "{err}");
    }
    assert_eq!(sim.requests().len(), 1, "only the valid request was sent");
}
