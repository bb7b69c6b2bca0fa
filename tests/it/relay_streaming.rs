//! Streaming through the relay: the commit point, the response window, stalls, cuts,
//! malformed events, in-stream errors, recovery, cancellation.

use crate::support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use polyrelay::{
    Chain, ChatRequest, ChunkKind, ErrorKind, Hedge, MidStreamRecovery, RetryPolicy, Target,
};
use serde_json::json;
use support::*;

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Tell me a story.")
}

#[tokio::test]
async fn a_slow_first_token_fails_over_inside_the_response_window() {
    let sim = Simulator::start().await.unwrap();
    // Headers and a role-only chunk at once, then 20 s of silence before the first token.
    sim.script(
        "primary",
        [Reply::sse(frames(3)).frame_delay(Duration::from_secs(20))],
    );
    sim.script("fallback", [Reply::sse(frames(3))]);
    let window = Duration::from_millis(400);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").first_token_timeout(window))
        .target("sim/fallback");
    let started = Instant::now();
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let opened_after = started.elapsed();
    assert!(
        opened_after >= window && opened_after < window + Duration::from_millis(800),
        "{opened_after:?}"
    );
    assert_eq!(
        stream.meta().attempts[0].failure(),
        Some(ErrorKind::Timeout)
    );
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none());
    assert_eq!(joined(&chunks), text_of(0..3));
    // Nothing of the abandoned attempt reached the caller: every chunk is the fallback's.
    assert!(
        chunks
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "fallback")
    );
    guarded(sim.requests_for("primary")[0].closed()).await;
}

#[tokio::test]
async fn a_stall_after_the_first_tokens_is_an_interruption_not_an_end() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::sse(frames(60)).stall_after(21)]);
    let chain = Chain::new()
        .target("sim/primary")
        .target("sim/fallback")
        .stream_idle_timeout(Duration::from_millis(300));
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    let err = err.expect("a stall must end in an error");
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert!(err.message().contains("stalled"), "{err}");
    assert_eq!(joined(&chunks), text_of(0..20));
    assert_eq!(err.provider(), Some("sim"));
    assert!(
        sim.requests_for("fallback").is_empty(),
        "no recovery unless asked"
    );
    guarded(sim.requests_for("primary")[0].closed()).await;
}

#[tokio::test]
async fn a_cut_stream_is_an_error_saying_how_much_arrived() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(40)]);
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    let err = err.expect("a cut must end in an error");
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(joined(&chunks), text_of(0..40));
    assert!(
        err.message().contains("41 chunks (40 with content)")
            && err.message().contains("40 content chunks"),
        "{err}"
    );
}

#[tokio::test]
async fn a_reset_mid_stream_is_an_error_never_a_clean_end() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::sse(frames(60)).cut_after(41)]);
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert_eq!(
        err.expect("a reset must end in an error").kind(),
        ErrorKind::StreamInterrupted
    );
    // A reset may discard bytes not yet read: what arrived is a prefix of the answer.
    let got = joined(&chunks);
    assert!(!got.is_empty() && text_of(0..40).starts_with(&got), "{got}");
}

#[tokio::test]
async fn a_cut_stream_restarts_on_the_fallback_when_the_route_asks() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(40)]);
    sim.script("fallback", [Reply::sse(frames(60))]);
    let chain = primary_fallback().mid_stream_recovery(MidStreamRecovery::Restart);
    let mut stream = guarded(relay(&sim, chain.clone()).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart chunk");
    assert_eq!(joined(&chunks[..restart]), text_of(0..40));
    assert_eq!(joined(&chunks[restart..]), text_of(0..60));
    assert!(
        chunks[restart + 1..]
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "fallback")
    );
    // collect() discards what came before the restart.
    let collected = guarded(async {
        relay(&sim, chain)
            .chat_stream(req())
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(collected.text(), text_of(0..60));
    assert_eq!(collected.meta.served_by.unwrap().model.as_ref(), "fallback");
}

#[tokio::test]
async fn a_cut_stream_continues_from_a_prefill_on_a_capable_fallback() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(40)]);
    // The continuation: the remaining 20 tokens.
    let mut rest = vec![chunk(
        "c",
        json!({"role": "assistant", "content": ""}),
        None,
    )];
    rest.extend((40..60).map(|i| chunk("c", json!({"content": format!("t{i} ")}), None)));
    rest.push(chunk("c", json!({}), Some("stop")));
    rest.push("data: [DONE]\n\n".into());
    sim.script("fallback", [Reply::sse(rest)]);
    let chain = Chain::new()
        .target("sim/primary")
        .target(Target::new("sim", "fallback").prefill(true))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let collected = guarded(async {
        relay(&sim, chain)
            .chat_stream(req())
            .await
            .unwrap()
            .into_response()
            .await
            .unwrap()
    })
    .await;
    assert_eq!(
        collected.text(),
        text_of(0..60),
        "partial + continuation, no restart"
    );
    let sent = &sim.requests_for("fallback")[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"role": "assistant", "content": text_of(0..40)})
    );
}

#[tokio::test]
async fn a_failed_recovery_reports_the_original_interruption() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::sse(frames(60)).cut_after(41)]);
    sim.script(
        "fallback",
        [Reply::openai_error(
            400,
            "invalid_request_error",
            None,
            "prefill not supported",
        )],
    );
    let chain = Chain::new()
        .target("sim/primary")
        .target(Target::new("sim", "fallback").prefill(true))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (_, err) = guarded(drain(&mut stream)).await;
    let err = err.unwrap();
    assert_eq!(
        err.kind(),
        ErrorKind::StreamInterrupted,
        "the original error, not the fallback's 400"
    );
    assert_eq!(err.target().unwrap().model.as_ref(), "primary");
    let kinds: Vec<_> = err.attempts().iter().map(|a| a.failure()).collect();
    // The primary's attempt delivered content, then broke: interrupted, not a success.
    assert_eq!(
        kinds,
        [
            Some(ErrorKind::StreamInterrupted),
            Some(ErrorKind::InvalidRequest)
        ]
    );
}

#[tokio::test]
async fn a_malformed_event_ends_the_stream_unless_the_route_is_lenient() {
    let sim = Simulator::start().await.unwrap();
    let mut f = frames(20);
    f[10] = "data: {\"id\":\"s\",\"choices\":[{\"delta\":{\"content\":\n\n".into();
    sim.script("primary", [Reply::sse(f)]);
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    let err = err.unwrap();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert!(err.message().contains("decode"), "{err}");
    assert_eq!(joined(&chunks), text_of(0..9));
    let lenient = primary_fallback().lenient_streams(true);
    let mut stream = guarded(relay(&sim, lenient).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let expected: String = (0..20)
        .filter(|i| *i != 9)
        .map(|i| format!("t{i} "))
        .collect();
    assert_eq!(joined(&chunks), expected);
}

#[tokio::test]
async fn a_finish_reason_without_done_is_a_whole_answer() {
    let sim = Simulator::start().await.unwrap();
    let mut f = frames(5);
    f.pop(); // no [DONE]
    sim.script("primary", [Reply::sse(f)]);
    let resp = folded(&relay(&sim, primary_fallback()), req())
        .await
        .unwrap();
    assert_eq!(resp.text(), text_of(0..5));
    assert_eq!(resp.usage.unwrap().output_tokens, 5);
}

#[tokio::test]
async fn an_error_event_before_the_first_token_fails_over_after_it_is_typed() {
    let sim = Simulator::start().await.unwrap();
    let overloaded = "event: error\ndata: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\",\"code\":\"overloaded_error\",\"status_code\":529}}\n\n";
    let mut before = frames(0);
    before.truncate(1);
    before.push(overloaded.into());
    sim.script("primary", [Reply::sse(before)]);
    sim.script("fallback", [Reply::sse(frames(3))]);
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    assert_eq!(
        stream.meta().attempts[0].failure(),
        Some(ErrorKind::Overloaded)
    );
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none());
    assert_eq!(joined(&chunks), text_of(0..3));

    sim.clear();
    let mut after = frames(5);
    after.truncate(4);
    after.push(overloaded.into());
    sim.script("primary", [Reply::sse(after)]);
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    let err = err.unwrap();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.code(), Some("overloaded_error"));
    assert_eq!(err.status(), Some(529));
    assert_eq!(joined(&chunks), text_of(0..3));
}

#[tokio::test]
async fn dropping_the_stream_closes_the_vendor_connection() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::sse(frames(1000)).frame_delay(Duration::from_millis(5))],
    );
    let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
        .await
        .unwrap();
    let first = guarded(stream.next()).await.unwrap().unwrap();
    assert!(first.target.is_some());
    drop(stream);
    let seen = &sim.requests()[0];
    guarded(seen.closed()).await;
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn collect_equals_chat_for_the_same_script() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_text("The same answer, streamed or not.")],
    );
    let relay = relay(&sim, primary_fallback());
    let plain = guarded(relay.chat(req())).await.unwrap();
    let streamed = folded(&relay, req()).await.unwrap();
    assert_eq!(streamed.text(), plain.text());
    assert_eq!(streamed.usage, plain.usage);
    assert_eq!(streamed.finish_reason(), plain.finish_reason());
    assert_eq!(streamed.choices, plain.choices);
    assert_eq!(streamed.meta.served_by, plain.meta.served_by);
}

#[tokio::test]
async fn hedged_chat_the_fast_secondary_wins_and_the_slow_primary_is_closed() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_text("slow").delay(Duration::from_secs(5))],
    );
    sim.script("fallback", [Reply::openai_text("fast")]);
    let chain = primary_fallback().hedge(Hedge::after(Duration::from_millis(200)));
    let started = Instant::now();
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.text(), "fast");
    assert!(
        elapsed >= Duration::from_millis(200) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );
    let outcomes: Vec<_> = resp
        .meta
        .attempts
        .iter()
        .map(|a| (a.target.model.to_string(), a.failure()))
        .collect();
    assert_eq!(
        outcomes,
        // In start order: the primary started first and was cancelled when the fallback won.
        [
            ("primary".into(), Some(ErrorKind::Cancelled)),
            ("fallback".into(), None)
        ]
    );
    assert_eq!(resp.meta.served, Some(1));
    // The loser's connection is closed at once, not left to run.
    guarded(sim.requests_for("primary")[0].closed()).await;
}

#[tokio::test]
async fn hedged_chat_the_primary_can_still_win() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_text("primary").delay(Duration::from_millis(300))],
    );
    sim.script(
        "fallback",
        [Reply::openai_text("fallback").delay(Duration::from_secs(5))],
    );
    let chain = primary_fallback().hedge(Hedge::after(Duration::from_millis(100)));
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(resp.text(), "primary");
    guarded(sim.requests_for("fallback")[0].closed()).await;
    assert_eq!(resp.meta.attempts[1].failure(), Some(ErrorKind::Cancelled));
}

#[tokio::test]
async fn hedged_stream_waits_for_first_tokens_not_headers() {
    let sim = Simulator::start().await.unwrap();
    // The primary answers headers at once but its first token only after 5 s.
    sim.script(
        "primary",
        [Reply::sse(frames(3)).frame_delay(Duration::from_secs(5))],
    );
    sim.script(
        "fallback",
        [Reply::sse(frames(3)).frame_delay(Duration::from_millis(20))],
    );
    let chain = primary_fallback().hedge(Hedge::after(Duration::from_millis(200)));
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    assert_eq!(
        stream.meta().served_by.as_ref().unwrap().model.as_ref(),
        "fallback"
    );
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none());
    assert_eq!(joined(&chunks), text_of(0..3));
    assert!(
        chunks
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "fallback")
    );
    guarded(sim.requests_for("primary")[0].closed()).await;
}

#[tokio::test]
async fn hedged_failures_move_on_at_once() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script("fallback", [Reply::openai_text("ok")]);
    let chain = primary_fallback()
        .hedge(Hedge::after(Duration::from_secs(3)))
        .retry(RetryPolicy::no_retries());
    let started = Instant::now();
    let resp = guarded(relay(&sim, chain).chat(req())).await.unwrap();
    assert_eq!(resp.text(), "ok");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting for the hedge delay after a failure"
    );
    assert_eq!(sim.requests_for("primary").len(), 1);
}

#[tokio::test]
async fn first_token_after_20_s_with_a_2_5_s_window() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::sse(frames(3)).frame_delay(Duration::from_secs(20))],
    );
    sim.script(
        "fallback",
        [Reply::sse(frames(3)).frame_delay(Duration::from_millis(10))],
    );
    let chain = Chain::new()
        .target(Target::new("sim", "primary").first_token_timeout(Duration::from_millis(2500)))
        .target("sim/fallback");
    let started = Instant::now();
    let resp = folded(&relay(&sim, chain), req()).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(resp.text(), text_of(0..3));
    assert_eq!(resp.meta.served_by.unwrap().model.as_ref(), "fallback");
    // ≈ 2.5 s window + the fallback's own time (a few frames 10 ms apart).
    assert!(
        elapsed >= Duration::from_millis(2500) && elapsed < Duration::from_millis(3500),
        "{elapsed:?}"
    );
}
