//! The simulator as a rate-limited vendor (`Simulator::limit_requests`), and the rate-limit
//! headers an OpenAI-compatible provider reads from it into `ResponseMeta::rate_limit` and
//! `Error::rate_limit`.
//!
//! The clients keep no idle connection: hyper's pool would then arm a 90 s idle timer, and
//! with a paused clock tokio may jump to it whenever the runtime waits on the socket.

use crate::support;

use std::time::Duration;

use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{CallContext, ChatRequest, ErrorKind, Provider};
use serde_json::{Value, json};
use support::unpooled_client;

const MODEL: &str = "gpt-4o-mini";
const MIN: Duration = Duration::from_secs(60);

fn client() -> reqwest::Client {
    unpooled_client()
}

/// Posts a chat request for `model`: status, headers (name, value) and the JSON body.
async fn post(sim: &Simulator, model: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let resp = client()
        .post(format!("{}/v1/chat/completions", sim.base_url()))
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .expect("response");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

fn header<'a>(h: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(start_paused = true)]
async fn a_limited_model_answers_429_past_its_window_and_recovers() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        MODEL,
        ["one", "two", "three", "four", "five"].map(Reply::text),
    );
    sim.limit_requests(MODEL, 3, MIN);
    // The reset is when the first request leaves the window.
    for (left, reset) in [("2", "1m0s"), ("1", "49.5s"), ("0", "39s")] {
        let (status, h, _) = post(&sim, MODEL).await;
        assert_eq!(status, 200);
        assert_eq!(header(&h, "x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(header(&h, "x-ratelimit-remaining-requests"), Some(left));
        assert_eq!(header(&h, "x-ratelimit-reset-requests"), Some(reset));
        tokio::time::advance(Duration::from_millis(10_500)).await;
    }
    // 31.5 s after the first: it leaves the window in 28.5 s, so retry after 29.
    let (status, h, body) = post(&sim, MODEL).await;
    assert_eq!(status, 429);
    assert_eq!(header(&h, "retry-after"), Some("29"));
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(header(&h, "x-ratelimit-reset-requests"), Some("28.5s"));
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("requests per min (RPM): Limit 3") && message.contains(MODEL),
        "{message}"
    );
    assert_eq!(sim.rate_limited(MODEL), 1);
    // Other models are not limited.
    assert_eq!(post(&sim, "other").await.0, 200);
    assert_eq!(sim.rate_limited("other"), 0);

    tokio::time::advance(Duration::from_millis(28_499)).await;
    assert_eq!(post(&sim, MODEL).await.0, 429);
    tokio::time::advance(Duration::from_millis(1)).await;
    let (status, h, body) = post(&sim, MODEL).await;
    assert_eq!(status, 200);
    // The refused requests consumed neither the window nor the script.
    assert_eq!(body["choices"][0]["message"]["content"], "four");
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(header(&h, "x-ratelimit-reset-requests"), Some("10.5s"));
    assert_eq!(sim.rate_limited(MODEL), 2);
    assert_eq!(sim.requests_for(MODEL).len(), 6);

    sim.clear();
    assert_eq!(sim.rate_limited(MODEL), 0);
    let (status, h, _) = post(&sim, MODEL).await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-ratelimit-limit-requests"), None);
}

#[tokio::test(start_paused = true)]
async fn a_limit_on_the_whole_simulator_and_a_scripts_own_headers() {
    let sim = Simulator::start().await.unwrap();
    sim.limit_all_requests(2, Duration::from_secs(10));
    sim.limit_requests("a", 5, MIN);
    sim.script(
        "b",
        [Reply::text("b").header("x-ratelimit-remaining-requests", "42")],
    );
    let (status, h, _) = post(&sim, "a").await;
    assert_eq!(status, 200);
    // The tighter limit (the simulator's: 1 left of 2) speaks.
    assert_eq!(header(&h, "x-ratelimit-limit-requests"), Some("2"));
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), Some("1"));
    let (status, h, _) = post(&sim, "b").await;
    assert_eq!(status, 200);
    assert_eq!(header(&h, "x-ratelimit-remaining-requests"), Some("42"));
    assert_eq!(
        h.get_all("x-ratelimit-remaining-requests").iter().count(),
        1
    );
    let (status, h, _) = post(&sim, "c").await;
    assert_eq!(status, 429);
    assert_eq!(header(&h, "retry-after"), Some("10"));
    assert_eq!((sim.rate_limited("c"), sim.rate_limited("a")), (1, 0));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(post(&sim, "c").await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn a_zero_limit_refuses_everything() {
    let sim = Simulator::start().await.unwrap();
    sim.limit_requests(MODEL, 0, Duration::from_millis(1500));
    let (status, h, _) = post(&sim, MODEL).await;
    assert_eq!(status, 429);
    assert_eq!(header(&h, "retry-after"), Some("2"));
    assert_eq!(header(&h, "x-ratelimit-reset-requests"), Some("1.5s"));
}

#[tokio::test]
async fn an_openai_compatible_provider_reports_the_headers() {
    let sim = Simulator::start().await.unwrap();
    sim.limit_requests(MODEL, 2, MIN);
    let provider = OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), "sk-sim");
    let cx = CallContext::new(client());
    let req = ChatRequest::new(MODEL).user("hi");

    let resp = provider.chat(&req, MODEL, &cx).await.expect("answer");
    let info = resp.meta.rate_limit.expect("rate-limit info on the answer");
    assert_eq!(info.limit_requests, Some(2));
    assert_eq!(info.remaining_requests, Some(1));
    assert_eq!(info.reset_requests, Some(MIN));
    assert_eq!(info.remaining_tokens, None);

    let stream = provider
        .chat_stream(&req, MODEL, &cx)
        .await
        .expect("a stream");
    let info = stream
        .meta()
        .rate_limit
        .as_deref()
        .copied()
        .expect("rate-limit info on a stream");
    assert_eq!(info.remaining_requests, Some(0));
    let reset = info.reset_requests.expect("reset");
    assert!(
        reset <= MIN && reset > MIN - Duration::from_secs(5),
        "{reset:?}"
    );
    drop(stream);

    let err = provider.chat(&req, MODEL, &cx).await.expect_err("limited");
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.status(), Some(429));
    let info = err.rate_limit().expect("rate-limit info on the error");
    assert_eq!(info.limit_requests, Some(2));
    assert_eq!(info.remaining_requests, Some(0));
    let reset = info.reset_requests.expect("reset");
    assert!(
        reset <= MIN && reset > MIN - Duration::from_secs(5),
        "{reset:?}"
    );
    let retry = err.retry_after().expect("retry-after");
    assert!(retry >= reset && retry <= MIN, "{retry:?} vs {reset:?}");
    assert_eq!(sim.rate_limited(MODEL), 1);

    // An answer without the headers carries none, and neither does an error without them.
    sim.clear();
    let resp = provider.chat(&req, MODEL, &cx).await.expect("answer");
    assert_eq!(resp.meta.rate_limit, None);
    sim.script(MODEL, [Reply::error(SimError::Server)]);
    let err = provider.chat(&req, MODEL, &cx).await.expect_err("500");
    assert_eq!(err.rate_limit(), None);
}
