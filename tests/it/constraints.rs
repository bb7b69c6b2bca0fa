//! Constraints: a request that requires tags (e.g. `on-prem`) never reaches a target without
//! them, whatever fails — every fault the simulator can script, plain, streamed and hedged.

use crate::support;

use std::time::Duration;

use polyrelay::{
    Chain, ChatRequest, ErrorKind, Hedge, MidStreamRecovery, Relay, RetryPolicy, Target,
};
use support::*;

/// Every fault the simulator can script, by name.
fn faults() -> Vec<(&'static str, Reply)> {
    vec![
        (
            "500",
            Reply::openai_error(500, "server_error", None, "boom"),
        ),
        (
            "503",
            Reply::openai_error(503, "server_error", None, "down"),
        ),
        (
            "429 + Retry-After",
            Reply::openai_error(429, "requests", Some("rate_limit_exceeded"), "slow")
                .header("retry-after", "1"),
        ),
        (
            "insufficient_quota",
            Reply::openai_error(
                429,
                "insufficient_quota",
                Some("insufficient_quota"),
                "quota",
            ),
        ),
        (
            "401",
            Reply::openai_error(401, "invalid_request_error", Some("invalid_api_key"), "key"),
        ),
        (
            "400",
            Reply::openai_error(400, "invalid_request_error", None, "bad"),
        ),
        (
            "context length",
            Reply::openai_error(
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
                "maximum context length is 8192 tokens",
            ),
        ),
        ("reset", Reply::reset()),
        ("close", Reply::close()),
        (
            "silent then close",
            Reply::close().delay(Duration::from_millis(1200)),
        ),
        ("hang", Reply::hang()),
        ("malformed JSON", Reply::json(200, "{\"choices\": [")),
        ("cut stream", Reply::sse(frames(10)).cut_after(4)),
        ("stalled stream", Reply::sse(frames(10)).stall_after(4)),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Plain,
    Streamed,
    Hedged,
}

fn relay(sim: &Simulator, mode: Mode) -> Relay {
    let mut chain = Chain::new()
        .target("sim/cloud")
        .target(
            Target::new("sim", "onprem")
                .tags(["on-prem", "eu"])
                .attempt_timeout(Duration::from_millis(400)),
        )
        .target("sim/cloud-2")
        .stream_idle_timeout(Duration::from_millis(300))
        .mid_stream_recovery(MidStreamRecovery::Restart)
        .retry(RetryPolicy::default().max_attempts(2))
        .total_timeout(Duration::from_secs(5));
    if let Mode::Hedged = mode {
        chain = chain.hedge(Hedge::after(Duration::from_millis(50)));
    }
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", chain)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_required_tag_is_never_broken_by_failover_plain() {
    a_required_tag_is_never_broken_by_failover(Mode::Plain).await;
}

#[tokio::test]
async fn a_required_tag_is_never_broken_by_failover_streamed() {
    a_required_tag_is_never_broken_by_failover(Mode::Streamed).await;
}

#[tokio::test]
async fn a_required_tag_is_never_broken_by_failover_hedged() {
    a_required_tag_is_never_broken_by_failover(Mode::Hedged).await;
}

/// Every fault on the only tagged target: the untagged ones are never asked.
async fn a_required_tag_is_never_broken_by_failover(mode: Mode) {
    let sim = Simulator::start().await.unwrap();
    {
        for (name, fault) in faults() {
            sim.clear();
            sim.script("onprem", [fault]);
            sim.script("cloud", [Reply::openai_text("cloud must not answer")]);
            sim.script("cloud-2", [Reply::openai_text("cloud must not answer")]);
            let relay = relay(&sim, mode);
            let req = ChatRequest::new("r")
                .user("sensitive ticket")
                .require_tags(["on-prem"]);
            let outcome = match mode {
                Mode::Plain | Mode::Hedged => guarded(relay.chat(&req))
                    .await
                    .map(|r| r.text().into_owned()),
                Mode::Streamed => match guarded(relay.chat_stream(&req)).await {
                    Ok(s) => guarded(s.into_response())
                        .await
                        .map(|r| r.text().into_owned()),
                    Err(e) => Err(e),
                },
            };
            assert!(
                sim.requests_for("cloud").is_empty() && sim.requests_for("cloud-2").is_empty(),
                "{mode:?} / {name}: a target without the tag was asked ({outcome:?})"
            );
            assert!(
                !sim.requests_for("onprem").is_empty(),
                "{mode:?} / {name}: the on-prem target was asked"
            );
            if let Ok(text) = &outcome {
                assert!(!text.contains("cloud"), "{mode:?} / {name}: {text}");
            }
        }
    }
}

#[tokio::test]
async fn no_qualifying_target_is_a_constraint_error_and_nothing_is_sent() {
    let sim = Simulator::start().await.unwrap();
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("r", Chain::of(["sim/cloud", "sim/cloud-2"]))
        .route(
            "eu-only",
            Chain::new()
                .target(Target::new("sim", "eu-model").tags(["eu"]))
                .target("sim/us-model")
                .require_tags(["eu"]),
        )
        .build()
        .unwrap();
    let req = ChatRequest::new("r").user("x").require_tags(["on-prem"]);
    let err = relay.chat(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConstraintViolated);
    assert!(err.message().contains("on-prem"), "{err}");
    let err = relay.chat_stream(&req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConstraintViolated);
    assert!(sim.requests().is_empty());
    // A route's own constraint: its untagged target is never tried, even when the tagged one
    // fails.
    sim.script(
        "eu-model",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    let err = relay
        .chat(ChatRequest::new("eu-only").user("x"))
        .await
        .unwrap_err();
    assert!(
        err.attempts()
            .iter()
            .all(|a| &*a.target.model == "eu-model"),
        "{err:?}"
    );
    assert!(sim.requests_for("us-model").is_empty());
}
