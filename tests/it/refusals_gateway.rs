//! The relay's own refusals through the gateway, one test per row of the README's refusal
//! table: each has its status, OpenAI error type, a code of its own (apart from a vendor's
//! answer passed on) and, when the wait is known, `Retry-After` in whole seconds rounded up
//! plus the precise wait in `error.retry_after_ms`.

use std::time::Duration;

use polyrelay::gateway::{self, GatewayOptions};
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::spend::keys::KeyPool;
use polyrelay::spend::limiter::RateLimit;
use polyrelay::{BreakerPolicy, Chain, Relay, RelayBuilder, RetryPolicy};
use serde_json::{Value, json};

/// A gateway on loopback in front of `relay`; dropping it shuts the gateway down.
struct Gateway {
    url: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn gateway(relay: Relay) -> Gateway {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(gateway::serve(
        listener,
        relay,
        GatewayOptions::new(),
        async move {
            let _ = stopped.await;
        },
    ));
    Gateway { url, _stop: stop }
}

fn base(sim: &Simulator) -> RelayBuilder {
    let url = format!("{}/v1", sim.base_url());
    Relay::builder()
        .provider("fp", OpenAi::new("sk-sim").base_url(&url))
        .breaker(BreakerPolicy::disabled())
}

/// What a client sees: status, `Retry-After` (seconds) and the error object.
async fn call(gw: &Gateway, model: &str) -> (u16, Option<u64>, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({ "model": model, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let body: Value = resp.json().await.unwrap();
    (status, retry_after, body["error"].clone())
}

/// Checks the `Retry-After` header against the body's precise wait: whole seconds, rounded
/// up, within `most`.
fn assert_come_back(retry_after: Option<u64>, error: &Value, most: Duration) {
    let secs = retry_after.expect("Retry-After");
    let ms = error["retry_after_ms"].as_u64().expect("retry_after_ms");
    assert!(ms <= most.as_millis() as u64, "{ms} ms");
    assert_eq!(secs, ms.div_ceil(1000).max(1), "{error}");
}

#[tokio::test]
async fn the_relays_rate_limit_is_a_429_with_its_own_code() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = base(&sim)
        .route("limited", Chain::of(["fp/ok"]))
        .rate_limit("fp/ok", RateLimit::new().requests_per_minute(2).fail_over())
        .build()
        .unwrap();
    let gw = gateway(relay).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let (status, retry_after, error) = call(&gw, "limited").await;
        statuses.push(status);
        if status == 429 {
            assert_eq!(error["type"], "rate_limit_error", "{error}");
            assert_eq!(error["code"], "relay_rate_limited", "{error}");
            assert_come_back(retry_after, &error, Duration::from_secs(60));
        }
    }
    // Served while the limit had room, then refused: never a 502.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let served = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(sim.requests().len(), served);
    // /stats counts the refusals as refusals, with no row lacking a target.
    let stats: Value = reqwest::get(format!("{}/stats", gw.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        stats["total"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["provider"] != "" && r["failures"] == 0),
        "{stats}"
    );
    assert_eq!(stats["refused"][0]["reason"], "rate_limited", "{stats}");
    assert_eq!(stats["refused"][0]["calls"], 4 - served, "{stats}");
    // /limits shows the limit while it works: spent, and when the next cell comes.
    let limits: Value = reqwest::get(format!("{}/limits", gw.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let target = &limits["targets"][0];
    assert_eq!(target["name"], "fp/ok", "{limits}");
    assert_eq!(target["requests"]["per_minute"], 2, "{limits}");
    assert_eq!(target["requests"]["remaining"], 0, "{limits}");
}

#[tokio::test]
async fn a_pool_with_every_key_out_is_a_429_keys_exhausted() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(
        Reply::openai_error(429, "requests", None, "Rate limit reached")
            .header("retry-after", "20"),
    );
    let relay = base(&sim)
        .route("r", Chain::of(["fp/m"]).retry(RetryPolicy::no_retries()))
        .key_pool("fp", KeyPool::new().key("sk-one-AAAA").key("sk-two-BBBB"))
        .build()
        .unwrap();
    let gw = gateway(relay).await;
    // The vendor's own 429 on both keys, passed on as such.
    let (status, _, error) = call(&gw, "r").await;
    assert_eq!(status, 429);
    assert_eq!(error["code"], "rate_limit_exceeded", "{error}");
    // Then the relay refuses by itself until the first key returns.
    let (status, retry_after, error) = call(&gw, "r").await;
    assert_eq!(status, 429, "{error}");
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], "keys_exhausted", "{error}");
    assert_come_back(retry_after, &error, Duration::from_secs(20));
    assert_eq!(sim.requests().len(), 2);
}

#[tokio::test]
async fn every_breaker_open_is_a_503_with_the_next_probe() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("x").status(500));
    let relay = base(&sim)
        .route(
            "r",
            Chain::of(["fp/a", "fp/b"]).retry(RetryPolicy::no_retries()),
        )
        .breaker(
            BreakerPolicy::default()
                .consecutive_failures(1)
                .cooldown(Duration::from_secs(30)),
        )
        .build()
        .unwrap();
    let gw = gateway(relay).await;
    let (status, _, _) = call(&gw, "r").await;
    assert_eq!(status, 502);
    // Both open; the probe of one hangs while another client calls.
    sim.set_default(Reply::hang());
    let probing = {
        let url = gw.url.clone();
        tokio::spawn(async move {
            reqwest::Client::new()
                .post(format!("{url}/v1/chat/completions"))
                .json(&json!({ "model": "r", "messages": [{ "role": "user", "content": "hi" }] }))
                .send()
                .await
        })
    };
    sim.wait_for_requests(3).await;
    let (status, retry_after, error) = call(&gw, "r").await;
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["code"], "breaker_open", "{error}");
    assert_come_back(retry_after, &error, Duration::from_secs(30));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("fp/a") && message.contains("fp/b"),
        "{message}"
    );
    assert_eq!(sim.requests().len(), 3);
    probing.abort();
}

#[tokio::test]
async fn a_constraint_no_target_meets_is_a_400() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = base(&sim)
        .route("onprem", Chain::of(["fp/cloud"]).require_tags(["on-prem"]))
        .build()
        .unwrap();
    let gw = gateway(relay).await;
    let (status, retry_after, error) = call(&gw, "onprem").await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(retry_after, None);
    assert!(sim.requests().is_empty());
}

#[tokio::test]
async fn a_deadline_spent_before_any_attempt_is_a_504() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = base(&sim).route("r", Chain::of(["fp/m"])).build().unwrap();
    let gw = gateway(relay).await;
    // LiteLLM's `timeout` in the body, in seconds: none left.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({ "model": "r", "timeout": 0,
                       "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "timeout", "{body}");
    assert!(sim.requests().is_empty());
    // A usable timeout is honoured and never reaches the vendor.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .json(&json!({ "model": "r", "timeout": 30,
                       "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(sim.requests()[0].body.get("timeout").is_none());
}
