//! The relay against a real HTTP server on loopback: each scenario asserts what the caller
//! gets and what the vendor saw.

use crate::support;

use std::time::{Duration, Instant};

use polyrelay::{Chain, ChatRequest, ContextOverflow, ErrorKind, RetryPolicy, Target};
use support::*;

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Where is my order #123?")
}

fn served_by(resp: &polyrelay::ChatResponse) -> String {
    resp.meta
        .served_by
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn server_error_once_is_retried_on_the_same_target() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [
            Reply::openai_error(500, "server_error", None, "The server had an error"),
            Reply::openai_text("Your order ships today."),
        ],
    );
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(resp.text(), "Your order ships today.");
    assert_eq!(served_by(&resp), "sim/primary");
    let a = &resp.meta.attempts;
    assert_eq!(a.len(), 2);
    assert_eq!(
        (a[0].failure(), a[0].status, a[0].try_number),
        (Some(ErrorKind::Server), Some(500), 1)
    );
    assert!(a[1].served() && a[1].try_number == 2);
    assert_eq!(sim.requests_for("primary").len(), 2);
    assert!(sim.requests_for("fallback").is_empty());
}

#[tokio::test]
async fn persistent_503_fails_over_after_bounded_attempts() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(
            503,
            "server_error",
            None,
            "unavailable",
        )],
    );
    sim.script("fallback", [Reply::openai_text("from the fallback")]);
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from the fallback");
    assert_eq!(served_by(&resp), "sim/fallback");
    let primary = sim.requests_for("primary");
    assert_eq!(primary.len(), 2, "default policy: 2 attempts per target");
    // Backoff is short (≤ 100 ms for the first retry): the fallback starts well within a second.
    let fallback = sim.requests_for("fallback");
    assert!(fallback[0].at - primary[0].at < Duration::from_secs(1));
    let kinds: Vec<_> = resp.meta.attempts.iter().map(|a| a.failure()).collect();
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::Overloaded),
            Some(ErrorKind::Overloaded),
            None
        ]
    );
}

#[tokio::test]
async fn rate_limit_with_short_retry_after_waits_then_succeeds() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [
            Reply::openai_error(
                429,
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached",
            )
            .header("retry-after", "1"),
            Reply::openai_text("after the wait"),
        ],
    );
    let started = Instant::now();
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(resp.text(), "after the wait");
    assert_eq!(served_by(&resp), "sim/primary");
    let primary = sim.requests_for("primary");
    assert_eq!(primary.len(), 2);
    let gap = primary[1].at - primary[0].at;
    assert!(
        gap >= Duration::from_secs(1) && gap < Duration::from_millis(1800),
        "waited {gap:?}"
    );
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        resp.meta.attempts[0].error.as_ref().unwrap().retry_after(),
        Some(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_beyond_the_deadline_fails_over_at_once() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow down")
                .header("retry-after", "20"),
        ],
    );
    let chain = primary_fallback().total_timeout(Duration::from_secs(5));
    let started = Instant::now();
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(served_by(&resp), "sim/fallback");
    assert_eq!(sim.requests_for("primary").len(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "failed over at once"
    );
}

#[tokio::test]
async fn insufficient_quota_is_not_retried() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(
            429,
            "insufficient_quota",
            Some("insufficient_quota"),
            "You exceeded your current quota, please check your plan and billing details.",
        )],
    );
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(served_by(&resp), "sim/fallback");
    assert_eq!(sim.requests_for("primary").len(), 1);
    assert_eq!(
        resp.meta.attempts[0].failure(),
        Some(ErrorKind::QuotaExhausted)
    );
}

#[tokio::test]
async fn connection_reset_before_headers_is_retried() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::reset(), Reply::openai_text("second time lucky")],
    );
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(resp.text(), "second time lucky");
    assert_eq!(served_by(&resp), "sim/primary");
    assert_eq!(resp.meta.attempts[0].failure(), Some(ErrorKind::Connect));
    assert_eq!(resp.meta.attempts[0].status, None);
}

#[tokio::test]
async fn silent_target_is_tried_once_then_fails_over_after_the_attempt_timeout() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::hang()]);
    let timeout = Duration::from_millis(400);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").attempt_timeout(timeout))
        .target("sim/fallback");
    let started = Instant::now();
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(served_by(&resp), "sim/fallback");
    assert_eq!(
        sim.requests_for("primary").len(),
        1,
        "a silent target is not retried"
    );
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(800),
        "{elapsed:?}"
    );
    assert_eq!(resp.meta.attempts[0].failure(), Some(ErrorKind::Timeout));
    // The abandoned attempt's connection was closed, not left hanging.
    guarded(sim.requests_for("primary")[0].closed()).await;
}

#[tokio::test]
async fn context_length_goes_once_to_a_larger_window_only() {
    let sim = Simulator::start().await.unwrap();
    let overflow = Reply::openai_error(
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        "This model's maximum context length is 8192 tokens.",
    );
    sim.script("small", [overflow.clone()]);
    sim.script("same-size", [Reply::openai_text("should not be asked")]);
    sim.script("large", [Reply::openai_text("fits in 128k")]);
    let chain = Chain::new()
        .target(Target::new("sim", "small").context_window(8_192))
        .target(Target::new("sim", "same-size").context_window(8_192))
        .target(Target::new("sim", "large").context_window(128_000));
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(resp.text(), "fits in 128k");
    assert_eq!(sim.requests_for("small").len(), 1);
    assert!(sim.requests_for("same-size").is_empty());

    // No larger window in the chain: the caller gets the vendor's reason.
    sim.clear();
    sim.script("small", [overflow]);
    let chain = Chain::new()
        .target(Target::new("sim", "small").context_window(8_192))
        .target(Target::new("sim", "same-size").context_window(8_192));
    let err = guarded(relay(&sim, chain.clone()).chat(req()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContextLengthExceeded);
    assert!(err.message().contains("maximum context length is 8192"));
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(sim.requests_for("small").len(), 1);
    // …unless the chain says any next target will do.
    let chain = chain.on_context_overflow(ContextOverflow::NextTarget);
    sim.script("same-size", [Reply::openai_text("tried anyway")]);
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(resp.text(), "tried anyway");
}

#[tokio::test]
async fn content_policy_refusal_is_returned_with_the_vendor_reason() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(
            400,
            "invalid_request_error",
            Some("content_policy_violation"),
            "Your request was rejected as a result of our safety system.",
        )],
    );
    let err = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ContentFiltered);
    assert_eq!(err.status(), Some(400));
    assert_eq!(err.code(), Some("content_policy_violation"));
    assert!(err.message().contains("safety system"));
    assert_eq!(err.provider(), Some("sim"));
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(sim.requests().len(), 1, "neither retried nor failed over");
}

#[tokio::test]
async fn auth_failure_fails_over_to_the_next_vendor() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            "Incorrect API key provided",
        )],
    );
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(served_by(&resp), "sim/fallback");
    assert_eq!(sim.requests_for("primary").len(), 1);
    assert_eq!(resp.meta.attempts[0].failure(), Some(ErrorKind::Auth));
}

#[tokio::test]
async fn malformed_json_fails_over() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::json(
            200,
            r#"{"id":"x","choices":[{"message":{"content":"trunc"#,
        )],
    );
    let resp = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap();
    assert_eq!(served_by(&resp), "sim/fallback");
    let first = resp.meta.attempts[0].error.as_ref().unwrap();
    assert_eq!(first.kind(), ErrorKind::Decode);
    assert!(first.body_snippet().unwrap().contains("trunc"));
}

#[tokio::test]
async fn everything_down_lists_every_attempt_within_the_deadline() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script(
        "fallback",
        [Reply::openai_error(500, "server_error", None, "also down")],
    );
    let started = Instant::now();
    let err = guarded(relay(&sim, primary_fallback()).chat(req()))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    let seen: Vec<_> = err
        .attempts()
        .iter()
        .map(|a| (a.target.model.to_string(), a.try_number, a.status))
        .collect();
    assert_eq!(
        seen,
        [
            ("primary".into(), 1, Some(503)),
            ("primary".into(), 2, Some(503)),
            ("fallback".into(), 1, Some(500)),
            ("fallback".into(), 2, Some(500)),
        ]
    );
    assert!(err.attempts().iter().all(|a| {
        a.error
            .as_ref()
            .is_some_and(|e| e.provider() == Some("sim"))
    }));
    let text = err.to_string();
    assert!(
        text.contains("sim/primary") && text.contains("sim/fallback"),
        "{text}"
    );
}

#[tokio::test]
async fn the_total_deadline_bounds_the_whole_call() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::hang()]);
    sim.script("fallback", [Reply::hang()]);
    let chain = Chain::new()
        .attempt_timeout(Duration::from_secs(5))
        .target("sim/primary")
        .target("sim/fallback")
        .total_timeout(Duration::from_millis(600));
    let started = Instant::now();
    let err = guarded(relay(&sim, chain).chat(req())).await.unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(1400),
        "{elapsed:?}"
    );
    assert!(err.message().contains("deadline"));
    // The primary used the whole budget; the fallback was never reached.
    assert_eq!(err.attempts().len(), 1);
    assert_eq!(err.attempts()[0].failure(), Some(ErrorKind::Timeout));
}

#[tokio::test]
async fn a_per_request_timeout_overrides_the_route_deadline() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::hang()]);
    let started = Instant::now();
    let err =
        guarded(relay(&sim, primary_fallback()).chat(req().timeout(Duration::from_millis(300))))
            .await
            .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn dropping_the_call_closes_the_vendor_connection() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::hang()]);
    let relay = relay(&sim, primary_fallback());
    let call = relay.chat(req());
    tokio::select! {
        _ = call => panic!("a hanging vendor cannot answer"),
        _ = sim.wait_for_requests(1) => {}
    }
    // `call` is dropped here; the simulator must see its connection close.
    let recorded = &sim.requests()[0];
    guarded(recorded.closed()).await;
    assert!(recorded.is_closed());
    assert_eq!(
        sim.requests().len(),
        1,
        "nothing was retried in the background"
    );
}

#[tokio::test]
async fn retry_policy_can_be_tuned_per_chain() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    let chain = primary_fallback().retry(RetryPolicy::no_retries());
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(served_by(&resp), "sim/fallback");
    assert_eq!(sim.requests_for("primary").len(), 1);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").max_attempts(3))
        .target("sim/fallback");
    sim.clear();
    sim.script(
        "primary",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(sim.requests_for("primary").len(), 3);
}

#[tokio::test]
async fn streams_fail_over_before_the_vendor_accepts() {
    use futures::StreamExt;
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script("fallback", [Reply::openai_stream_text(&["Hel", "lo", "!"])]);
    let relay = relay(&sim, primary_fallback());
    let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
    assert_eq!(
        stream.meta().served_by.as_ref().unwrap().to_string(),
        "sim/fallback"
    );
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(chunk.unwrap().text().unwrap_or(""));
    }
    assert_eq!(text, "Hello!");
    let body = &sim.requests_for("fallback")[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    // collect() gives what chat() gives.
    let collected = guarded(relay.chat_stream(req()))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(collected.text(), "Hello!");
    assert!(collected.usage.is_some());
}

#[tokio::test]
async fn unknown_routes_are_a_typed_error() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim, primary_fallback());
    let err = relay
        .chat(ChatRequest::new("nope").user("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoRoute);
    // provider/model addresses a provider directly.
    let resp = guarded(relay.chat(ChatRequest::new("sim/direct-model").user("hi")))
        .await
        .unwrap();
    assert_eq!(served_by(&resp), "sim/direct-model");
    assert_eq!(sim.requests()[0].model.as_deref(), Some("direct-model"));
}

/// An answer whose vendor named no model (some OpenAI-compatible servers) still names one:
/// the model that served it, as OpenAI's wire always does.
#[tokio::test]
async fn an_answer_without_a_model_names_the_one_that_served_it() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::json(
        200,
        r#"{"id":"x","object":"chat.completion","created":1,"choices":[{"index":0,
        "message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#,
    ));
    let relay = polyrelay::Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("r", Chain::of(["sim/served-model"]))
        .build()
        .unwrap();
    let resp = relay.chat(&ChatRequest::new("r").user("hi")).await.unwrap();
    assert_eq!(resp.model, "served-model");
}
