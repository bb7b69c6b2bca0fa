//! The attempt engine (issue #7), over real HTTP on the loopback simulator: one engine makes
//! the same decisions for plain, hedged and streamed calls; the attempts it reports tell the
//! truth; a target that went silent is not retried; a context overflow goes on to larger (or
//! unknown) windows; a user-defined provider sits in a chain beside an HTTP vendor.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use polyrelay::providers::OpenAi;
use polyrelay::{
    Attempt, AttemptOutcome, CallContext, Chain, ChatChunk, ChatRequest, ChatResponse, ChatStream,
    Choice, ChunkChoice, ChunkKind, ContextOverflow, Error, ErrorKind, FinishReason, Hedge,
    Message, MidStreamRecovery, Provider, Relay, ResponseMeta, Target,
};
use serde_json::json;
use support::*;
use tokio::time::Instant;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Summarise this very long document.")
}

/// OpenAI's answer to a prompt longer than an 8k window.
fn overflow() -> Reply {
    Reply::openai_error(
        400,
        "invalid_request_error",
        Some("context_length_exceeded"),
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.",
    )
}

fn frame(delta: serde_json::Value, finish: Option<&str>) -> String {
    let c = json!({"id": "s", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// An OpenAI stream's opening (the role frame) and one content frame per piece; no end.
fn opening(pieces: &[&str]) -> Vec<String> {
    let mut f = vec![frame(json!({"role": "assistant", "content": ""}), None)];
    f.extend(pieces.iter().map(|p| frame(json!({ "content": p }), None)));
    f
}

/// A whole OpenAI stream of `pieces`: opening, content, finish, `[DONE]`.
fn whole(pieces: &[&str]) -> Vec<String> {
    let mut f = opening(pieces);
    f.push(frame(json!({}), Some("stop")));
    f.push("data: [DONE]\n\n".into());
    f
}

/// A stream of `pieces` (no finish), then a TCP reset (`cut_after`). The content frames are
/// followed by SSE comments and all frames go out 25 ms apart, so every content frame has
/// reached the client long before the reset (a reset may discard bytes not yet read).
fn reset_after(pieces: &[&str]) -> Reply {
    let mut f = opening(pieces);
    f.extend(std::iter::repeat_n(": padding\n\n".to_owned(), 3));
    let n = f.len();
    Reply::sse(f)
        .frame_delay(Duration::from_millis(25))
        .cut_after(n)
}

/// A stream of `pieces` (no finish), then a clean close (FIN): every byte arrives.
fn closed_after(pieces: &[&str]) -> Reply {
    Reply::sse(opening(pieces)).close_delimited()
}

/// Characters (not bytes) in `pieces`.
fn chars(pieces: &[&str]) -> usize {
    pieces.iter().map(|p| p.chars().count()).sum()
}

fn content_chunks(chunks: &[ChatChunk]) -> usize {
    chunks
        .iter()
        .filter(|c| c.kind == ChunkKind::Content && c.text().is_some_and(|t| !t.is_empty()))
        .count()
}

fn model(a: &Attempt) -> &str {
    &a.target.model
}

fn served_model(meta: &ResponseMeta) -> String {
    meta.served_by
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// (model, failure) of every attempt, in order.
fn outcomes(meta: &ResponseMeta) -> Vec<(String, Option<ErrorKind>)> {
    meta.attempts
        .iter()
        .map(|a| (model(a).to_owned(), a.failure()))
        .collect()
}

fn o(model: &str, failure: Option<ErrorKind>) -> (String, Option<ErrorKind>) {
    (model.to_owned(), failure)
}

/// What every call's metadata must satisfy: attempts in start order, `served` indexes the
/// one attempt marked served, and `served_by` names that attempt's target.
#[track_caller]
fn assert_truthful(meta: &ResponseMeta) {
    let a = &meta.attempts;
    let started: Vec<_> = a.iter().map(|a| a.started).collect();
    assert!(
        started.windows(2).all(|w| w[0] <= w[1]),
        "attempts not in start order: {started:?}"
    );
    let served: Vec<usize> = (0..a.len()).filter(|i| a[*i].served()).collect();
    match meta.served {
        Some(i) => {
            assert_eq!(served, [i], "served = {i}, attempts {a:#?}");
            assert_eq!(meta.served_by.as_ref(), Some(&a[i].target));
            assert!(a[i].error.is_none());
        }
        None => assert!(served.is_empty(), "{a:#?}"),
    }
    for x in a {
        if !x.served() {
            let e = x
                .error
                .as_ref()
                .expect("an attempt that did not serve keeps its error");
            assert_eq!(Some(e.kind()), x.failure(), "{x:#?}");
        }
    }
}

/// How a call is made: the same scenario must get the same decisions in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Plain,
    Hedged,
    Streamed,
    HedgedStream,
}

const MODES: [Mode; 4] = [
    Mode::Plain,
    Mode::Hedged,
    Mode::Streamed,
    Mode::HedgedStream,
];

impl Mode {
    /// `chain`, hedged in the hedged modes (late enough not to fire in these scenarios: the
    /// decisions tested are the engine's, after a failure, not the hedge's).
    fn chain(self, chain: Chain) -> Chain {
        match self {
            Mode::Hedged | Mode::HedgedStream => chain.hedge(Hedge::after(Duration::from_secs(2))),
            _ => chain,
        }
    }

    fn streams(self) -> bool {
        matches!(self, Mode::Streamed | Mode::HedgedStream)
    }
}

/// One call in `mode`; a stream is read to its end and folded.
async fn call(relay: &Relay, mode: Mode) -> Result<ChatResponse, Error> {
    if mode.streams() {
        relay.chat_stream(req()).await?.into_response().await
    } else {
        relay.chat(req()).await
    }
}

// ---------------------------------------------------------------------------------------
// 1, 4. One engine, same decisions in every mode: context overflow
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn context_overflow_fails_over_to_a_larger_window_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("smaller", [Reply::openai_text("must not be asked")]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script("large", [Reply::openai_text("fits in 128k")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "smaller").context_window(4_096))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .target(Target::new("sim", "large").context_window(128_000))
                .total_timeout(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{mode:?}: at once"
        );
        assert_eq!(resp.text(), "fits in 128k", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/large", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}: not retried");
        assert!(
            sim.requests_for("smaller").is_empty(),
            "{mode:?}: smaller skipped"
        );
        assert!(
            sim.requests_for("same-size").is_empty(),
            "{mode:?}: same size skipped"
        );
        assert_eq!(sim.requests_for("large").len(), 1, "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", None)
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_eq!(resp.meta.attempts[0].status, Some(400), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_goes_on_to_a_target_of_unknown_window_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script(
            "unknown",
            [Reply::openai_text("no window declared, but it fits")],
        );
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                // Declares no window: not known to be too small, so worth a try.
                .target("sim/unknown")
                .total_timeout(Duration::from_secs(10)),
        );
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "no window declared, but it fits", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/unknown", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}");
        assert!(
            sim.requests_for("same-size").is_empty(),
            "{mode:?}: no request reaches it"
        );
        assert_eq!(sim.requests_for("unknown").len(), 1, "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("unknown", None)
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_stop_returns_the_error_at_once_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("large", [Reply::openai_text("must not be asked")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "large").context_window(128_000))
                .on_context_overflow(ContextOverflow::Stop)
                .total_timeout(Duration::from_secs(10)),
        );
        let started = Instant::now();
        let err = guarded(call(&relay(&sim, chain), mode))
            .await
            .expect_err("Stop returns the overflow");
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{mode:?}: at once"
        );
        assert_eq!(
            err.kind(),
            ErrorKind::ContextLengthExceeded,
            "{mode:?}: {err}"
        );
        assert_eq!(err.status(), Some(400), "{mode:?}");
        assert_eq!(err.code(), Some("context_length_exceeded"), "{mode:?}");
        assert!(
            err.message().contains("maximum context length is 8192"),
            "{mode:?}: {err}"
        );
        assert_eq!(
            err.target().map(|t| t.to_string()).as_deref(),
            Some("sim/small")
        );
        assert_eq!(err.attempts().len(), 1, "{mode:?}");
        assert!(sim.requests_for("large").is_empty(), "{mode:?}");
        assert_eq!(sim.requests().len(), 1, "{mode:?}");
    }
}

#[tokio::test]
async fn context_overflow_next_target_goes_to_a_same_size_target_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("tried anyway")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .on_context_overflow(ContextOverflow::NextTarget)
                .total_timeout(Duration::from_secs(10)),
        );
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "tried anyway", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/same-size", "{mode:?}");
        assert_eq!(sim.requests_for("small").len(), 1, "{mode:?}");
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn context_overflow_with_no_larger_window_returns_the_vendor_reason_in_every_mode() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        let chain = mode.chain(
            Chain::new()
                .target(Target::new("sim", "small").context_window(8_192))
                .target(Target::new("sim", "same-size").context_window(8_192))
                .total_timeout(Duration::from_secs(10)),
        );
        let err = guarded(call(&relay(&sim, chain), mode))
            .await
            .expect_err("nothing larger to try");
        assert_eq!(
            err.kind(),
            ErrorKind::ContextLengthExceeded,
            "{mode:?}: {err}"
        );
        assert!(
            err.message().contains("maximum context length is 8192"),
            "{mode:?}"
        );
        assert_eq!(err.attempts().len(), 1, "{mode:?}");
        assert!(sim.requests_for("same-size").is_empty(), "{mode:?}");
    }
}

/// After an overflow, the hedge too starts only targets that may fit.
#[tokio::test]
async fn after_a_context_overflow_a_hedge_also_skips_windows_no_larger() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        sim.script("small", [overflow()]);
        sim.script(
            "large",
            [Reply::openai_text("too slow").delay(Duration::from_secs(5))],
        );
        sim.script("same-size", [Reply::openai_text("must not be asked")]);
        sim.script("unknown", [Reply::openai_text("the hedge wins")]);
        let chain = Chain::new()
            .target(Target::new("sim", "small").context_window(8_192))
            .target(Target::new("sim", "large").context_window(128_000))
            .target(Target::new("sim", "same-size").context_window(8_192))
            .target("sim/unknown")
            .total_timeout(Duration::from_secs(10))
            .hedge(Hedge::after(Duration::from_millis(150)));
        let resp = guarded(call(&relay(&sim, chain), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "the hedge wins", "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", Some(ErrorKind::Cancelled)),
                o("unknown", None),
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert!(sim.requests_for("same-size").is_empty(), "{mode:?}");
        assert!(
            resp.meta.attempts[2].started
                >= resp.meta.attempts[1].started + Duration::from_millis(150),
            "{mode:?}: hedged after its delay: {:?}",
            resp.meta.attempts
        );
        assert_truthful(&resp.meta);
        guarded(sim.requests_for("large")[0].closed()).await;
    }
}

// ---------------------------------------------------------------------------------------
// 1, 6. A target named twice: both hedged attempts are recorded, by index
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_target_named_twice_records_both_hedged_attempts_plain_and_streamed() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        // Replies per model in arrival order: the first request is slow, the second fast.
        sim.script(
            "m",
            [
                Reply::openai_text("slow").delay(Duration::from_secs(5)),
                Reply::openai_text("fast"),
            ],
        );
        let chain = Chain::of(["sim/m", "sim/m"])
            .total_timeout(Duration::from_secs(10))
            .hedge(Hedge::after(Duration::from_millis(200)));
        let relay = relay(&sim, chain);
        let started = Instant::now();
        let (text, meta) = if mode.streams() {
            let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
            assert_eq!(stream.meta().served, Some(1), "known at the commit point");
            let (chunks, err) = guarded(drain(&mut stream)).await;
            assert!(err.is_none(), "{err:?}");
            assert!(
                chunks
                    .iter()
                    .all(|c| c.target.as_ref().unwrap().to_string() == "sim/m")
            );
            (joined(&chunks), stream.meta().clone())
        } else {
            let resp = guarded(relay.chat(req())).await.unwrap();
            (resp.text().into_owned(), resp.meta)
        };
        let elapsed = started.elapsed();
        assert_eq!(text, "fast", "{mode:?}");
        assert!(
            elapsed < Duration::from_millis(2500),
            "{mode:?}: {elapsed:?}"
        );
        assert_eq!(sim.requests_for("m").len(), 2, "{mode:?}");
        // Both attempts are kept, each in its own slot: the loser (started first) first.
        assert_eq!(
            outcomes(&meta),
            [o("m", Some(ErrorKind::Cancelled)), o("m", None)],
            "{mode:?}"
        );
        assert_eq!(meta.attempts[0].outcome, AttemptOutcome::Cancelled);
        assert_eq!(meta.attempts[1].outcome, AttemptOutcome::Served);
        assert_eq!(meta.served, Some(1), "{mode:?}");
        assert_eq!(served_model(&meta), "sim/m");
        assert!(
            meta.attempts[1].started >= Duration::from_millis(200)
                && meta.attempts[1].started < Duration::from_millis(2000),
            "{mode:?}: the hedge starts after its delay: {:?}",
            meta.attempts[1].started
        );
        assert!(meta.attempts[0].started < meta.attempts[1].started);
        assert_eq!(
            meta.attempts[0].error.as_ref().map(|e| e.kind()),
            Some(ErrorKind::Cancelled)
        );
        assert_truthful(&meta);
        // The loser's connection is closed.
        guarded(sim.requests_for("m")[0].closed()).await;
    }
}

#[tokio::test]
async fn a_hedged_call_lists_the_loser_first_and_indexes_the_winner() {
    for mode in [Mode::Hedged, Mode::HedgedStream] {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "primary",
            [Reply::openai_text("slow").delay(Duration::from_secs(5))],
        );
        sim.script("fallback", [Reply::openai_text("fast")]);
        let chain = primary_fallback().hedge(Hedge::after(Duration::from_millis(200)));
        let resp = guarded(call(&relay(&sim, chain), mode)).await.unwrap();
        assert_eq!(resp.text(), "fast", "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("primary", Some(ErrorKind::Cancelled)),
                o("fallback", None)
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(1), "{mode:?}");
        assert_eq!(
            resp.meta
                .served_attempt()
                .map(|a| a.target.to_string())
                .as_deref(),
            Some("sim/fallback")
        );
        assert_truthful(&resp.meta);
        guarded(sim.requests_for("primary")[0].closed()).await;
    }
}

// ---------------------------------------------------------------------------------------
// 2. Attempts tell the truth
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn attempts_are_in_start_order_with_offsets_from_the_call_start() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "primary",
            [Reply::openai_error(503, "server_error", None, "down")],
        );
        sim.script(
            "fallback",
            [
                Reply::openai_error(500, "server_error", None, "boom"),
                Reply::openai_text("third time"),
            ],
        );
        let resp = guarded(call(&relay(&sim, mode.chain(primary_fallback())), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "third time", "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (model(a).to_owned(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("primary".to_owned(), 1, Some(ErrorKind::Overloaded)),
                ("primary".to_owned(), 2, Some(ErrorKind::Overloaded)),
                ("fallback".to_owned(), 1, Some(ErrorKind::Server)),
                ("fallback".to_owned(), 2, None),
            ],
            "{mode:?}"
        );
        let statuses: Vec<_> = resp.meta.attempts[..3].iter().map(|a| a.status).collect();
        assert_eq!(statuses, [Some(503), Some(503), Some(500)], "{mode:?}");
        assert_eq!(resp.meta.served, Some(3), "{mode:?}");
        assert!(
            resp.meta.attempts[0].started < Duration::from_millis(500),
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
        // Each offset is where the attempt began: at or after the end of the previous one.
        for w in resp.meta.attempts.windows(2) {
            assert!(
                w[1].started >= w[0].started + w[0].latency,
                "{mode:?}: {w:#?}"
            );
        }
        assert!(resp.meta.latency >= resp.meta.attempts[3].started);
    }
}

/// `Attempt.status` is the HTTP status the vendor answered with, for an answer too.
#[tokio::test]
async fn a_served_http_attempt_records_status_200() {
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::openai_text("ok")]);
        let resp = guarded(call(&relay(&sim, mode.chain(primary_fallback())), mode))
            .await
            .unwrap();
        assert_eq!(resp.meta.served, Some(0), "{mode:?}");
        assert_eq!(
            resp.meta.attempts[0].status,
            Some(200),
            "{mode:?}: attempt status"
        );
        assert_eq!(resp.meta.status, Some(200), "{mode:?}: response status");
    }
}

#[tokio::test]
async fn a_restart_names_the_target_that_finished_and_counts_what_was_delivered() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus ", "Köln"];
    sim.script("primary", [reset_after(&first)]);
    sim.script(
        "fallback",
        [Reply::sse(whole(&["Hello ", "from ", "the fallback."]))],
    );
    let chain = primary_fallback().mid_stream_recovery(MidStreamRecovery::Restart);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    assert_eq!(served_model(stream.meta()), "sim/primary");
    assert_eq!(stream.meta().served, Some(0));
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart chunk");
    assert_eq!(joined(&chunks[..restart]), first.concat());
    assert_eq!(joined(&chunks[restart..]), "Hello from the fallback.");
    assert!(
        chunks[..restart]
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "primary")
    );
    assert!(
        chunks[restart + 1..]
            .iter()
            .all(|c| c.target.as_ref().unwrap().model.as_ref() == "fallback")
    );
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/fallback");
    assert_eq!(meta.served, Some(1));
    assert_eq!(
        outcomes(meta),
        [
            o("primary", Some(ErrorKind::StreamInterrupted)),
            o("fallback", None)
        ]
    );
    // What the caller got from the interrupted attempt, exactly: 3 chunks, 14 characters
    // (ü and ß are one character each, two bytes).
    let delivered = content_chunks(&chunks[..restart]);
    assert_eq!(delivered, first.len());
    assert_eq!(
        meta.attempts[0].outcome,
        AttemptOutcome::Interrupted {
            content_chunks: 3,
            chars: chars(&first),
        }
    );
    assert_eq!(chars(&first), 14);
    let e = meta.attempts[0].error.as_ref().unwrap();
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(
        e.message().contains("3 content chunks (14 characters)"),
        "{e}"
    );
    assert!(!meta.usage_partial, "a restart is a whole answer");
    assert_truthful(meta);
}

#[tokio::test]
async fn a_continuation_names_the_prefill_fallback_that_finished_it() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus "];
    sim.script("primary", [reset_after(&first)]);
    sim.script("fallback", [Reply::sse(whole(&["Köln!"]))]);
    let chain = Chain::new()
        .target("sim/primary")
        .target(Target::new("sim", "fallback").prefill(true))
        .total_timeout(Duration::from_secs(10))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(
        chunks.iter().all(|c| c.kind == ChunkKind::Content),
        "no restart"
    );
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/fallback");
    assert_eq!(meta.served, Some(1));
    assert_eq!(
        meta.attempts[0].outcome,
        AttemptOutcome::Interrupted {
            content_chunks: 2,
            chars: 10,
        }
    );
    assert_eq!(meta.attempts[1].outcome, AttemptOutcome::Served);
    assert!(meta.usage_partial);
    assert_truthful(meta);
    let sent = &sim.requests_for("fallback")[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last, json!({"role": "assistant", "content": "Grüße aus "}));
}

#[tokio::test]
async fn a_continuation_on_the_same_target_is_its_second_try() {
    let sim = Simulator::start().await.unwrap();
    let first = ["Grüße ", "aus "];
    sim.script(
        "primary",
        [reset_after(&first), Reply::sse(whole(&["Köln!"]))],
    );
    let chain = Chain::new()
        .target(Target::new("sim", "primary").prefill(true))
        .target("sim/fallback")
        .total_timeout(Duration::from_secs(10))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    assert_eq!(served_model(meta), "sim/primary");
    assert_eq!(meta.served, Some(1));
    let tries: Vec<_> = meta
        .attempts
        .iter()
        .map(|a| (model(a).to_owned(), a.try_number, a.outcome))
        .collect();
    assert_eq!(
        tries,
        [
            (
                "primary".to_owned(),
                1,
                AttemptOutcome::Interrupted {
                    content_chunks: 2,
                    chars: 10
                }
            ),
            ("primary".to_owned(), 2, AttemptOutcome::Served),
        ]
    );
    assert!(sim.requests_for("fallback").is_empty());
    assert_truthful(meta);
}

#[tokio::test]
async fn an_interruption_says_how_many_chunks_and_characters_were_delivered() {
    let pieces = ["Grüße ", "aus ", "Köln"];
    for (how, reply) in [
        ("clean close", closed_after(&pieces)),
        ("reset", reset_after(&pieces)),
    ] {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [reply]);
        let mut stream = guarded(relay(&sim, primary_fallback()).chat_stream(req()))
            .await
            .unwrap();
        let (chunks, err) = guarded(drain(&mut stream)).await;
        let err = err.unwrap_or_else(|| panic!("{how}: a cut stream ends in an error"));
        assert_eq!(joined(&chunks), pieces.concat(), "{how}");
        assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{how}");
        assert!(
            err.message()
                .contains("3 content chunks (14 characters) were delivered"),
            "{how}: {err}"
        );
        assert_eq!(err.target().unwrap().model.as_ref(), "primary", "{how}");
        assert_eq!(
            err.attempts().first().map(|a| a.outcome),
            Some(AttemptOutcome::Interrupted {
                content_chunks: 3,
                chars: 14
            }),
            "{how}"
        );
        assert!(
            sim.requests_for("fallback").is_empty(),
            "{how}: no recovery unless asked"
        );
        let meta = stream.meta();
        assert_eq!(meta.served, None, "{how}: nothing served the whole answer");
        assert_truthful(meta);
    }
}

// ---------------------------------------------------------------------------------------
// 3. A target that went silent is not retried; a reset or a refusal is
// ---------------------------------------------------------------------------------------

async fn silent_target_is_not_retried(mode: Mode) {
    let sim = Simulator::start().await.unwrap();
    // Accepts the request, says nothing for 2 s, then closes the connection.
    sim.script("primary", [Reply::close().delay(Duration::from_secs(2))]);
    sim.script("fallback", [Reply::openai_text("from the fallback")]);
    let relay = relay(&sim, primary_fallback());
    let close = async {
        sim.wait_for_requests(1).await;
        sim.requests()[0].closed().await;
        Instant::now()
    };
    let (resp, closed_at) = guarded(async { tokio::join!(call(&relay, mode), close) }).await;
    let resp = resp.unwrap_or_else(|e| panic!("{mode:?}: {e}"));
    assert_eq!(resp.text(), "from the fallback", "{mode:?}");
    assert_eq!(served_model(&resp.meta), "sim/fallback", "{mode:?}");
    let primary = sim.requests_for("primary");
    let fallback = sim.requests_for("fallback");
    assert_eq!(primary.len(), 1, "{mode:?}: a silent target is not retried");
    assert_eq!(fallback.len(), 1, "{mode:?}");
    assert!(
        fallback[0].at >= primary[0].at + Duration::from_secs(2),
        "{mode:?}: the relay waited for the close"
    );
    let after_close = fallback[0].at.saturating_duration_since(closed_at);
    assert!(
        after_close < Duration::from_millis(500),
        "{mode:?}: failed over at once, not after a backoff: {after_close:?}"
    );
    assert_eq!(
        outcomes(&resp.meta),
        [o("primary", Some(ErrorKind::Connect)), o("fallback", None)],
        "{mode:?}"
    );
    assert!(
        resp.meta.attempts[0].latency >= Duration::from_secs(2),
        "{mode:?}"
    );
    assert_eq!(resp.meta.attempts[0].status, None, "{mode:?}");
    assert_truthful(&resp.meta);
}

#[tokio::test]
async fn a_target_that_went_silent_is_not_retried() {
    silent_target_is_not_retried(Mode::Plain).await;
}

#[tokio::test]
async fn a_target_that_went_silent_is_not_retried_streamed() {
    silent_target_is_not_retried(Mode::Streamed).await;
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::reset()]);
        sim.script("fallback", [Reply::openai_text("from the fallback")]);
        let resp = guarded(call(&relay(&sim, primary_fallback()), mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "from the fallback", "{mode:?}");
        let primary = sim.requests_for("primary");
        assert_eq!(primary.len(), 2, "{mode:?}: default policy, 2 tries");
        let fallback = sim.requests_for("fallback");
        assert!(
            fallback[0].at - primary[0].at < Duration::from_secs(1),
            "{mode:?}"
        );
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (model(a).to_owned(), a.try_number, a.failure(), a.status))
            .collect();
        assert_eq!(
            seen,
            [
                ("primary".to_owned(), 1, Some(ErrorKind::Connect), None),
                ("primary".to_owned(), 2, Some(ErrorKind::Connect), None),
                ("fallback".to_owned(), 1, None, seen[2].3),
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    // A loopback port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("fallback", [Reply::openai_text("from the fallback")]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .provider(
                "down",
                OpenAi::compatible("down", &format!("http://127.0.0.1:{port}/v1"), "sk-test"),
            )
            .route(
                "r",
                Chain::new()
                    .target("down/m")
                    .target("sim/fallback")
                    .total_timeout(Duration::from_secs(10)),
            )
            .build()
            .unwrap();
        let started = Instant::now();
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert!(started.elapsed() < Duration::from_secs(2), "{mode:?}");
        assert_eq!(resp.text(), "from the fallback", "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("down/m".to_owned(), 1, Some(ErrorKind::Connect)),
                ("down/m".to_owned(), 2, Some(ErrorKind::Connect)),
                ("sim/fallback".to_owned(), 1, None),
            ],
            "{mode:?}"
        );
        let refused = resp.meta.attempts[0].error.as_ref().unwrap();
        assert!(
            refused.is_connect() && refused.is_retryable(),
            "{mode:?}: {refused}"
        );
        assert_eq!(refused.provider(), Some("down"));
        assert_truthful(&resp.meta);
    }
}

// ---------------------------------------------------------------------------------------
// 5. A user-defined provider beside an HTTP vendor
// ---------------------------------------------------------------------------------------

/// An in-house model with no HTTP: answers `answer`, or fails with `Overloaded`.
#[derive(Debug)]
struct InHouse {
    answer: Option<&'static str>,
    calls: AtomicUsize,
}

impl InHouse {
    fn new(answer: Option<&'static str>) -> Arc<InHouse> {
        Arc::new(InHouse {
            answer,
            calls: AtomicUsize::new(0),
        })
    }

    fn answer(&self) -> Result<&'static str, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.answer
            .ok_or_else(|| Error::new(ErrorKind::Overloaded, "in-house GPU pool is saturated"))
    }
}

fn text_chunk(model: &str, text: Option<&str>, finish: Option<FinishReason>) -> ChatChunk {
    let mut choice = ChunkChoice::default();
    choice.delta.content = text.map(str::to_owned);
    choice.finish_reason = finish;
    let mut c = ChatChunk::default();
    c.id = "inhouse-1".into();
    c.model = model.to_owned();
    c.choices = vec![choice];
    c
}

#[async_trait::async_trait]
impl Provider for InHouse {
    fn name(&self) -> &str {
        "in-house"
    }

    async fn chat(
        &self,
        _req: &ChatRequest,
        model: &str,
        _cx: &CallContext,
    ) -> Result<ChatResponse, Error> {
        let text = self.answer()?;
        let mut resp = ChatResponse::default();
        resp.id = "inhouse-1".into();
        resp.model = model.to_owned();
        resp.choices = vec![Choice::new(
            0,
            Message::assistant(text),
            Some(FinishReason::Stop),
        )];
        Ok(resp)
    }

    async fn chat_stream(
        &self,
        _req: &ChatRequest,
        model: &str,
        _cx: &CallContext,
    ) -> Result<ChatStream, Error> {
        let text = self.answer()?;
        let mut chunks: Vec<Result<ChatChunk, Error>> = text
            .split_inclusive(' ')
            .map(|p| Ok(text_chunk(model, Some(p), None)))
            .collect();
        chunks.push(Ok(text_chunk(model, None, Some(FinishReason::Stop))));
        Ok(ChatStream::new(futures::stream::iter(chunks)))
    }
}

fn mixed_relay(sim: &Simulator, local: &Arc<InHouse>, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .provider_arc("local", local.clone() as Arc<dyn Provider>)
        .route("r", chain.total_timeout(Duration::from_secs(10)))
        .build()
        .expect("valid relay")
}

#[tokio::test]
async fn an_in_house_model_answers_after_the_http_vendor_fails() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script(
            "vendor",
            [Reply::openai_error(
                503,
                "server_error",
                None,
                "unavailable",
            )],
        );
        let local = InHouse::new(Some("answered in house"));
        let relay = mixed_relay(&sim, &local, Chain::of(["sim/vendor", "local/gpu-1"]));
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "answered in house", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "local/gpu-1", "{mode:?}");
        assert_eq!(sim.requests_for("vendor").len(), 2, "{mode:?}");
        assert_eq!(local.calls.load(Ordering::SeqCst), 1, "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.failure(), a.status))
            .collect();
        assert_eq!(
            seen,
            [
                (
                    "sim/vendor".to_owned(),
                    Some(ErrorKind::Overloaded),
                    Some(503)
                ),
                (
                    "sim/vendor".to_owned(),
                    Some(ErrorKind::Overloaded),
                    Some(503)
                ),
                // Not HTTP: no status.
                ("local/gpu-1".to_owned(), None, None),
            ],
            "{mode:?}"
        );
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert_eq!(resp.meta.status, None, "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

#[tokio::test]
async fn an_http_vendor_answers_after_the_in_house_model_fails() {
    for mode in [Mode::Plain, Mode::Streamed] {
        let sim = Simulator::start().await.unwrap();
        sim.script("vendor", [Reply::openai_text("answered by the vendor")]);
        let local = InHouse::new(None);
        let relay = mixed_relay(&sim, &local, Chain::of(["local/gpu-1", "sim/vendor"]));
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "answered by the vendor", "{mode:?}");
        assert_eq!(served_model(&resp.meta), "sim/vendor", "{mode:?}");
        // The typed error decides: Overloaded is retried once (default policy), then failover.
        assert_eq!(local.calls.load(Ordering::SeqCst), 2, "{mode:?}");
        assert_eq!(sim.requests_for("vendor").len(), 1, "{mode:?}");
        let seen: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .map(|a| (a.target.to_string(), a.try_number, a.failure()))
            .collect();
        assert_eq!(
            seen,
            [
                ("local/gpu-1".to_owned(), 1, Some(ErrorKind::Overloaded)),
                ("local/gpu-1".to_owned(), 2, Some(ErrorKind::Overloaded)),
                ("sim/vendor".to_owned(), 1, None),
            ],
            "{mode:?}"
        );
        for a in &resp.meta.attempts[..2] {
            assert_eq!(a.status, None, "{mode:?}: not HTTP");
            let e = a.error.as_ref().unwrap();
            assert_eq!(e.message(), "in-house GPU pool is saturated");
            assert_eq!(e.provider(), Some("local"));
            assert_eq!(e.status(), None);
        }
        assert_eq!(resp.meta.served, Some(2), "{mode:?}");
        assert_truthful(&resp.meta);
    }
}

/// A user-defined provider's typed context overflow is routed like a vendor's: on to a
/// larger window, past one no larger.
#[tokio::test]
async fn an_in_house_context_overflow_goes_to_a_larger_http_window() {
    #[derive(Debug)]
    struct Small;
    #[async_trait::async_trait]
    impl Provider for Small {
        fn name(&self) -> &str {
            "in-house"
        }
        async fn chat(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatResponse, Error> {
            Err(Error::new(
                ErrorKind::ContextLengthExceeded,
                "prompt exceeds 4096 tokens",
            ))
        }
        async fn chat_stream(
            &self,
            _: &ChatRequest,
            _: &str,
            _: &CallContext,
        ) -> Result<ChatStream, Error> {
            Err(Error::new(
                ErrorKind::ContextLengthExceeded,
                "prompt exceeds 4096 tokens",
            ))
        }
    }
    for mode in MODES {
        let sim = Simulator::start().await.unwrap();
        sim.script("same", [Reply::openai_text("must not be asked")]);
        sim.script("large", [Reply::openai_text("fits")]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .provider("local", Small)
            .route(
                "r",
                mode.chain(
                    Chain::new()
                        .target(Target::new("local", "small").context_window(4_096))
                        .target(Target::new("sim", "same").context_window(4_096))
                        .target(Target::new("sim", "large").context_window(32_000))
                        .total_timeout(Duration::from_secs(10)),
                ),
            )
            .build()
            .unwrap();
        let resp = guarded(call(&relay, mode))
            .await
            .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
        assert_eq!(resp.text(), "fits", "{mode:?}");
        assert!(sim.requests_for("same").is_empty(), "{mode:?}");
        assert_eq!(
            outcomes(&resp.meta),
            [
                o("small", Some(ErrorKind::ContextLengthExceeded)),
                o("large", None)
            ],
            "{mode:?}"
        );
        assert_truthful(&resp.meta);
    }
}
