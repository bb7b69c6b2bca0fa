//! A stream's time limits (point 8), mid-stream continuation that never restarts unseen
//! (point 9), and the stream API's edges (point 11).
//!
//! Time-driven logic runs on tokio's paused clock with in-process providers (the paused clock
//! auto-advances when the runtime is idle, which would break real sockets); the same limits
//! are then checked once over real HTTP on the simulator, with wide wall-clock margins.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use polyrelay::{
    AttemptOutcome, CallContext, Chain, ChatChunk, ChatRequest, ChatResponse, ChatStream,
    ChunkChoice, ChunkKind, Error, ErrorKind, Limit, MidStreamRecovery, Provider, Relay, Target,
};
use serde_json::json;
use support::*;

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Tell me a story.")
}

// ---------------------------------------------------------------------------------------
// An in-process provider for the paused clock.
// ---------------------------------------------------------------------------------------

/// A chunk carrying one text delta.
fn text_chunk(text: &str) -> ChatChunk {
    let mut choice = ChunkChoice::default();
    choice.delta.content = Some(text.to_owned());
    let mut chunk = ChatChunk::default();
    chunk.id = "local".into();
    chunk.model = "local".into();
    chunk.choices = vec![choice];
    chunk
}

/// How a [`Local`] stream paces its chunks.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// A text chunk every `Duration` (the first after one period), forever.
    Every(Duration),
    /// Chunks every `every`, but the one after `n` chunks comes `gap` late.
    GapAfter {
        every: Duration,
        n: usize,
        gap: Duration,
    },
    /// Chunks always ready, forever: the stream never makes its reader wait.
    AlwaysReady,
}

/// An in-process model whose answer is an endless stream of "t0 t1 …" text chunks, paced by
/// the runtime's clock. Counts the streams it was asked for.
#[derive(Clone, Debug)]
struct Local {
    pace: Pace,
    calls: Arc<AtomicUsize>,
}

impl Local {
    fn new(pace: Pace) -> Self {
        Local {
            pace,
            calls: Arc::default(),
        }
    }
}

#[async_trait::async_trait]
impl Provider for Local {
    fn name(&self) -> &str {
        "local"
    }

    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        Err(Error::new(
            ErrorKind::Server,
            "this test model only streams",
        ))
    }

    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let pace = self.pace;
        let stream = futures::stream::unfold(0usize, move |i| async move {
            let wait = match pace {
                Pace::Every(d) => Some(d),
                Pace::GapAfter { every, n, gap } => Some(if i == n { gap } else { every }),
                Pace::AlwaysReady => None,
            };
            if let Some(d) = wait {
                tokio::time::sleep(d).await;
            }
            Some((Ok(text_chunk(&format!("t{i} "))), i + 1))
        });
        Ok(ChatStream::new(stream))
    }
}

/// A relay with one in-process provider `local` and route `r` over `chain`.
fn local_relay(provider: Local, chain: Chain) -> Relay {
    Relay::builder()
        .provider("local", provider)
        .route("r", chain)
        .build()
        .expect("valid relay")
}

/// Virtual-time guard: a paused-clock test that would run forever fails instead.
async fn virtual_guard<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3600), fut)
        .await
        .expect("stream ran for an hour of virtual time")
}

// ---------------------------------------------------------------------------------------
// Simulator frames (OpenAI dialect).
// ---------------------------------------------------------------------------------------

/// The continuation of a 60-token answer cut after `n` tokens: `t{n} … t59`.
fn continuation(n: usize) -> Reply {
    Reply::sse(tokens("c", n, 60, 100))
}

fn model_of(c: &ChatChunk) -> &str {
    c.target
        .as_ref()
        .expect("every chunk names its target")
        .model
        .as_ref()
}

fn no_restart(chunks: &[ChatChunk]) -> bool {
    chunks.iter().all(|c| c.kind == ChunkKind::Content)
}

/// The last message of a recorded request.
fn last_message(r: &RecordedRequest) -> serde_json::Value {
    r.body["messages"]
        .as_array()
        .expect("messages")
        .last()
        .expect("a message")
        .clone()
}

/// (model, try number, outcome) of each attempt.
fn attempts_of(meta: &polyrelay::ResponseMeta) -> Vec<(String, u32, AttemptOutcome)> {
    meta.attempts
        .iter()
        .map(|a| (a.target.model.to_string(), a.try_number, a.outcome))
        .collect()
}

// =======================================================================================
// A. Point 8: a stream's time is bounded as documented.
// =======================================================================================

/// The chosen design: `total_timeout` bounds the call only up to the stream's first content
/// event; `max_stream_duration` (from the call's start) bounds the whole stream and ends it
/// with a `StreamInterrupted` error carrying `Limit::StreamDuration`, never a clean end.
#[tokio::test(start_paused = true)]
async fn max_stream_duration_ends_a_trickling_stream_with_an_error_after_total_timeout() {
    let chain = Chain::new()
        .target("local/m")
        .total_timeout(Duration::from_secs(10))
        .stream_idle_timeout(Duration::from_secs(3))
        .max_stream_duration(Duration::from_secs(12));
    let relay = local_relay(Local::new(Pace::Every(Duration::from_millis(1900))), chain);
    let start = tokio::time::Instant::now();
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    let mut arrivals = Vec::new();
    let err = virtual_guard(async {
        loop {
            match stream.next().await {
                Some(Ok(c)) => arrivals.push((start.elapsed(), c)),
                Some(Err(e)) => return e,
                None => panic!("the stream ended cleanly past its longest duration"),
            }
        }
    })
    .await;
    let ended = start.elapsed();
    // Chunks at 1.9, 3.8, … 11.4 s: the ones past 10 s show total_timeout did not cut it.
    let texts: Vec<_> = arrivals.iter().filter_map(|(_, c)| c.text()).collect();
    assert_eq!(texts, ["t0 ", "t1 ", "t2 ", "t3 ", "t4 ", "t5 "]);
    assert!(
        arrivals.iter().any(|(at, _)| *at > Duration::from_secs(10)),
        "{:?}",
        arrivals.iter().map(|(at, _)| at).collect::<Vec<_>>()
    );
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert_eq!(err.limit(), Some(Limit::StreamDuration), "{err}");
    assert!(err.is_timeout() && !err.is_deadline(), "{err}");
    assert!(
        ended >= Duration::from_secs(12) && ended < Duration::from_millis(12_100),
        "ended at {ended:?} (virtual)"
    );
    assert!(err.message().contains("6 content chunks"), "{err}");
    assert_eq!(err.target().unwrap().model.as_ref(), "m");
    // The serving attempt is interrupted, not served.
    assert_eq!(
        stream.meta().attempts[0].outcome,
        AttemptOutcome::Interrupted {
            content_chunks: 6,
            chars: 18
        }
    );
    assert_eq!(err.attempts().len(), 1);
    // And the error is the end: nothing after it.
    assert!(stream.next().await.is_none());
}

/// The chosen design, default side: with no `max_stream_duration` set (30 minutes), a
/// stream that trickles along runs far past `total_timeout`, which bounds the call only up
/// to the first content event (long reasoning streams are legitimate).
#[tokio::test(start_paused = true)]
async fn total_timeout_does_not_cut_a_started_stream_by_default() {
    let chain = Chain::new()
        .target("local/m")
        .total_timeout(Duration::from_secs(10));
    let relay = local_relay(Local::new(Pace::Every(Duration::from_millis(1900))), chain);
    let start = tokio::time::Instant::now();
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    let got = virtual_guard(async {
        let mut got = String::new();
        for _ in 0..20 {
            let c = stream
                .next()
                .await
                .expect("the stream goes on")
                .expect("no error before the default 30 minutes");
            got.push_str(c.text().unwrap());
        }
        got
    })
    .await;
    assert_eq!(got, text_of(0..20));
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(38_000) && elapsed < Duration::from_secs(39),
        "{elapsed:?} (virtual)"
    );
}

/// A reader slower than the stream (the vendor's chunks are always ready, e.g. buffered
/// while a gateway's client reads slowly) is still bounded by `max_stream_duration`: the
/// bound is on the stream's life, not only on its silences.
#[tokio::test(start_paused = true)]
async fn max_stream_duration_bounds_a_stream_read_slower_than_it_produces() {
    let chain = Chain::new()
        .target("local/m")
        .total_timeout(Duration::from_secs(10))
        .max_stream_duration(Duration::from_secs(12));
    let relay = local_relay(Local::new(Pace::AlwaysReady), chain);
    let start = tokio::time::Instant::now();
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    let mut read = 0;
    let err = virtual_guard(async {
        // 20 reads 1.9 s apart: 38 s, far past the 12 s bound.
        for _ in 0..20 {
            match stream.next().await {
                Some(Ok(_)) => read += 1,
                Some(Err(e)) => return Some(e),
                None => panic!("clean end"),
            }
            tokio::time::sleep(Duration::from_millis(1900)).await;
        }
        None
    })
    .await;
    let err = err.unwrap_or_else(|| {
        panic!(
            "read {read} chunks over {:?} (virtual) with max_stream_duration 12 s and no error",
            start.elapsed()
        )
    });
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted);
    assert_eq!(err.limit(), Some(Limit::StreamDuration));
    assert!(
        start.elapsed() < Duration::from_secs(14),
        "{:?}",
        start.elapsed()
    );
}

/// The other side of the same coin: a reader slower than the idle timeout, on a stream
/// whose chunks are waiting, is not a stalled stream.
#[tokio::test(start_paused = true)]
async fn a_slow_reader_is_not_a_stalled_stream() {
    let chain = Chain::new()
        .target("local/m")
        .stream_idle_timeout(Duration::from_secs(1));
    let relay = local_relay(Local::new(Pace::AlwaysReady), chain);
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    for i in 0..5 {
        let c = stream
            .next()
            .await
            .unwrap()
            .expect("no stall: chunks were waiting");
        assert_eq!(c.text(), Some(format!("t{i} ").as_str()));
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_gap_longer_than_the_idle_timeout_is_a_stall() {
    let chain = Chain::new()
        .target("local/m")
        .stream_idle_timeout(Duration::from_secs(3));
    let pace = Pace::GapAfter {
        every: Duration::from_millis(500),
        n: 4,
        gap: Duration::from_secs(10),
    };
    let relay = local_relay(Local::new(pace), chain);
    let start = tokio::time::Instant::now();
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    let (chunks, err) = virtual_guard(drain(&mut stream)).await;
    let err = err.expect("a stall must end in an error");
    assert_eq!(joined(&chunks), text_of(0..4));
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert_eq!(err.limit(), Some(Limit::StreamIdle), "{err}");
    assert!(err.message().contains("stalled"), "{err}");
    assert!(err.is_timeout() && !err.is_deadline());
    // The last chunk came at 2 s; the stall is declared 3 s later.
    let ended = start.elapsed();
    assert!(
        ended >= Duration::from_secs(5) && ended < Duration::from_millis(5100),
        "{ended:?} (virtual)"
    );
    assert!(stream.next().await.is_none());
}

/// A whole-stream time limit is final: even a route that recovers interrupted streams does
/// not start another target past it.
#[tokio::test(start_paused = true)]
async fn max_stream_duration_is_final_even_with_recovery() {
    let primary = Local::new(Pace::Every(Duration::from_millis(1900)));
    let fallback = Local::new(Pace::Every(Duration::from_millis(10)));
    let fallback_calls = fallback.calls.clone();
    let chain = Chain::new()
        .target(Target::new("local", "m"))
        .target(Target::new("other", "m").prefill(true))
        .total_timeout(Duration::from_secs(10))
        .max_stream_duration(Duration::from_secs(12))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let relay = Relay::builder()
        .provider("local", primary)
        .provider("other", fallback)
        .route("r", chain)
        .build()
        .unwrap();
    let mut stream = virtual_guard(relay.chat_stream(req())).await.unwrap();
    let (chunks, err) = virtual_guard(drain(&mut stream)).await;
    let err = err.expect("the longest duration ends the stream with an error");
    assert_eq!(err.limit(), Some(Limit::StreamDuration), "{err}");
    assert_eq!(joined(&chunks), text_of(0..6));
    assert_eq!(
        fallback_calls.load(Ordering::SeqCst),
        0,
        "no recovery past the limit"
    );
}

/// Point 8 over real HTTP: chunks every 150 ms, `total_timeout` 600 ms and
/// `max_stream_duration` 1.2 s. The stream goes on past the total timeout and ends with the
/// StreamDuration error at about 1.2 s.
#[tokio::test]
async fn max_stream_duration_over_http() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::sse(frames(60)).frame_delay(Duration::from_millis(150))],
    );
    let total = Duration::from_millis(600);
    let longest = Duration::from_millis(1200);
    let chain = Chain::new()
        .target("sim/primary")
        .target("sim/fallback")
        .total_timeout(total)
        .max_stream_duration(longest);
    let started = std::time::Instant::now();
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let mut last_chunk_at = None;
    let mut chunks = Vec::new();
    let err = guarded(async {
        loop {
            match stream.next().await {
                Some(Ok(c)) => {
                    last_chunk_at = Some(started.elapsed());
                    chunks.push(c);
                }
                Some(Err(e)) => return e,
                None => panic!("the stream ended cleanly past its longest duration"),
            }
        }
    })
    .await;
    let ended = started.elapsed();
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert_eq!(err.limit(), Some(Limit::StreamDuration), "{err}");
    assert!(
        ended >= longest && ended < longest + Duration::from_secs(3),
        "{ended:?}"
    );
    let last = last_chunk_at.expect("chunks before the limit");
    assert!(
        last > total,
        "a chunk after the total timeout: last at {last:?}"
    );
    let got = joined(&chunks);
    assert!(!got.is_empty() && text_of(0..60).starts_with(&got), "{got}");
    assert!(got.len() < text_of(0..60).len());
    assert!(sim.requests_for("fallback").is_empty());
    // The vendor connection is closed when the limit ends the stream.
    guarded(sim.requests_for("primary")[0].closed()).await;
}

/// The first-token phase is bounded by `total_timeout`: a silent target fails the call
/// with the deadline error.
#[tokio::test]
async fn total_timeout_bounds_the_first_token_phase() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::hang()]);
    sim.script("fallback", [Reply::hang()]);
    let total = Duration::from_millis(600);
    let chain = Chain::new()
        .target("sim/primary")
        .target("sim/fallback")
        .total_timeout(total);
    let started = std::time::Instant::now();
    let err = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .expect_err("nothing answered");
    let elapsed = started.elapsed();
    assert!(err.is_deadline(), "{err} ({:?})", err.limit());
    assert!(err.is_timeout());
    assert!(
        elapsed >= total && elapsed < total + Duration::from_secs(3),
        "{elapsed:?}"
    );
    guarded(sim.requests_for("primary")[0].closed()).await;
}

// =======================================================================================
// B. Point 9: continuation never restarts what the caller saw.
// =======================================================================================

/// A cut stream continues first on the same target when it takes prefill and its retry
/// policy allows another try: the partial text goes as a final assistant message, the
/// continuation follows seamlessly.
#[tokio::test]
async fn continue_tries_the_same_prefill_target_first() {
    let sim = Simulator::start().await.unwrap();
    let cont: Vec<String> = {
        let mut f = vec![chunk(
            "c",
            json!({"role": "assistant", "content": ""}),
            None,
        )];
        f.extend((0..5).map(|i| chunk("c", json!({"content": format!("c{i} ")}), None)));
        f.push(chunk("c", json!({}), Some("stop")));
        f.push(usage_frame("c", 100, 5));
        f.push("data: [DONE]\n\n".into());
        f
    };
    // A reset after 21 frames (role + 20 tokens); frames 10 ms apart so they are read
    // before the reset (a reset may still drop the last ones: the test uses what arrived).
    sim.script(
        "primary",
        [
            Reply::sse(frames(60))
                .frame_delay(Duration::from_millis(10))
                .cut_after(21),
            Reply::sse(cont),
        ],
    );
    sim.script("fallback", [Reply::sse(frames(60))]);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").prefill(true).max_attempts(2))
        .target("sim/fallback")
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(no_restart(&chunks), "a continuation sends no Restart chunk");
    let sent = sim.requests_for("primary");
    assert_eq!(sent.len(), 2);
    let messages = sent[1].body["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0], sent[0].body["messages"][0]);
    let prefill = messages[1]["content"].as_str().unwrap().to_owned();
    assert_eq!(messages[1]["role"], "assistant");
    assert!(
        !prefill.is_empty() && text_of(0..20).starts_with(&prefill),
        "{prefill:?}"
    );
    // Exactly what the caller saw went as the prefill, and the continuation follows it.
    let cont_text: String = (0..5).map(|i| format!("c{i} ")).collect();
    assert_eq!(joined(&chunks), format!("{prefill}{cont_text}"));
    assert!(chunks.iter().all(|c| model_of(c) == "primary"));
    let meta = stream.meta();
    assert!(meta.usage_partial);
    assert_eq!(meta.served_by.as_ref().unwrap().model.as_ref(), "primary");
    let delivered = prefill.split_inclusive(' ').count();
    assert_eq!(
        attempts_of(meta),
        [
            (
                "primary".into(),
                1,
                AttemptOutcome::Interrupted {
                    content_chunks: delivered,
                    chars: prefill.chars().count()
                }
            ),
            ("primary".into(), 2, AttemptOutcome::Served),
        ]
    );
    assert_eq!(meta.served, Some(1));
    assert!(sim.requests_for("fallback").is_empty());
}

/// The same target has no try left: the next target that takes prefill continues, and the
/// non-prefill target before it is not restarted while a prefill target remains.
#[tokio::test]
async fn continue_skips_non_prefill_targets_while_a_prefill_target_remains() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("middle", [Reply::sse(frames(60))]);
    sim.script("fallback", [continuation(20)]);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").prefill(true).max_attempts(1))
        .target("sim/middle")
        .target(Target::new("sim", "fallback").prefill(true))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(no_restart(&chunks));
    assert_eq!(joined(&chunks), text_of(0..60));
    assert!(sim.requests_for("middle").is_empty(), "not restarted");
    assert_eq!(
        sim.requests_for("primary").len(),
        1,
        "no try left on primary"
    );
    let sent = sim.requests_for("fallback");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        last_message(&sent[0]),
        json!({"role": "assistant", "content": text_of(0..20)})
    );
    let split = chunks
        .iter()
        .position(|c| model_of(c) == "fallback")
        .unwrap();
    assert_eq!(joined(&chunks[..split]), text_of(0..20));
    assert!(chunks[..split].iter().all(|c| model_of(c) == "primary"));
    assert!(chunks[split..].iter().all(|c| model_of(c) == "fallback"));
    let meta = stream.meta();
    assert!(meta.usage_partial);
    assert_eq!(meta.served_by.as_ref().unwrap().model.as_ref(), "fallback");
    assert_eq!(
        attempts_of(meta),
        [
            (
                "primary".into(),
                1,
                AttemptOutcome::Interrupted {
                    content_chunks: 20,
                    chars: text_of(0..20).len()
                }
            ),
            ("fallback".into(), 1, AttemptOutcome::Served),
        ]
    );
}

/// When the prefill targets fail, `Continue` falls back to restarting on the non-prefill
/// target it skipped, after them.
#[tokio::test]
async fn continue_restarts_on_a_skipped_target_only_after_the_prefill_targets_fail() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("middle", [Reply::sse(frames(30))]);
    sim.script(
        "fallback",
        [Reply::openai_error(500, "server_error", None, "down")],
    );
    let chain = Chain::new()
        .target(Target::new("sim", "primary").prefill(true).max_attempts(1))
        .target("sim/middle")
        .target(Target::new("sim", "fallback").prefill(true).max_attempts(1))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let order: Vec<_> = sim
        .requests()
        .iter()
        .map(|r| r.model.clone().unwrap())
        .collect();
    assert_eq!(order, ["primary", "fallback", "middle"]);
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart chunk");
    assert_eq!(joined(&chunks[..restart]), text_of(0..20));
    assert_eq!(joined(&chunks[restart..]), text_of(0..30));
    let meta = stream.meta();
    assert!(!meta.usage_partial, "a restarted answer's usage is whole");
    let kinds: Vec<_> = meta
        .attempts
        .iter()
        .map(|a| (a.target.model.to_string(), a.failure()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("primary".into(), Some(ErrorKind::StreamInterrupted)),
            ("fallback".into(), Some(ErrorKind::Server)),
            ("middle".into(), None),
        ]
    );
}

/// No prefill target left: `Continue` restarts on the remaining target (a Restart chunk,
/// then the whole answer). The same target is not asked to restart, retries or not.
#[tokio::test]
async fn continue_restarts_when_no_prefill_target_is_left() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("fallback", [Reply::sse(frames(30))]);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").max_attempts(2))
        .target("sim/fallback")
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let relay = relay(&sim, chain);
    let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart chunk");
    assert_eq!(
        chunks
            .iter()
            .filter(|c| c.kind == ChunkKind::Restart)
            .count(),
        1
    );
    assert_eq!(joined(&chunks[..restart]), text_of(0..20));
    assert_eq!(joined(&chunks[restart..]), text_of(0..30));
    assert!(
        chunks[restart + 1..]
            .iter()
            .all(|c| model_of(c) == "fallback")
    );
    assert_eq!(sim.requests_for("primary").len(), 1);
    // A restart sends the original request, without a prefill.
    let sent = sim.requests_for("fallback");
    assert_eq!(
        sent[0].body["messages"],
        sim.requests_for("primary")[0].body["messages"]
    );
    assert!(!stream.meta().usage_partial);
    // Folded, the restart discards what came before it: the fallback's whole answer.
    sim.clear();
    sim.script("primary", [cut_at(20)]);
    sim.script("fallback", [Reply::sse(frames(30))]);
    let resp = folded(&relay, req()).await.unwrap();
    assert_eq!(resp.text(), text_of(0..30));
    assert_eq!(resp.meta.served_by.unwrap().model.as_ref(), "fallback");
    assert_eq!(resp.usage.unwrap().output_tokens, 30);
}

/// `ContinueOnly` never restarts: without a prefill target the stream ends with the
/// interruption, and the non-prefill fallback is never asked.
#[tokio::test]
async fn continue_only_without_a_prefill_target_ends_with_the_interruption() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("fallback", [Reply::sse(frames(30))]);
    let chain = Chain::new()
        .target(Target::new("sim", "primary").max_attempts(2))
        .target("sim/fallback")
        .mid_stream_recovery(MidStreamRecovery::ContinueOnly);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    let err = err.expect("the interruption's error");
    assert_eq!(err.kind(), ErrorKind::StreamInterrupted, "{err}");
    assert_eq!(err.target().unwrap().model.as_ref(), "primary");
    assert!(err.message().contains("20 content chunks"), "{err}");
    assert!(no_restart(&chunks), "ContinueOnly never restarts");
    assert_eq!(joined(&chunks), text_of(0..20));
    assert!(sim.requests_for("fallback").is_empty());
    assert_eq!(sim.requests_for("primary").len(), 1);
    let outcomes: Vec<_> = err.attempts().iter().map(|a| a.failure()).collect();
    assert_eq!(outcomes, [Some(ErrorKind::StreamInterrupted)]);
    assert!(stream.next().await.is_none());
}

/// `ContinueOnly` with a prefill fallback continues seamlessly.
#[tokio::test]
async fn continue_only_continues_on_a_prefill_fallback() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("middle", [Reply::sse(frames(30))]);
    sim.script("fallback", [continuation(20)]);
    let chain = Chain::new()
        .target("sim/primary")
        .target("sim/middle")
        .target(Target::new("sim", "fallback").prefill(true))
        .mid_stream_recovery(MidStreamRecovery::ContinueOnly);
    let mut stream = guarded(relay(&sim, chain).chat_stream(req()))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(no_restart(&chunks));
    assert_eq!(joined(&chunks), text_of(0..60));
    assert!(sim.requests_for("middle").is_empty());
    assert_eq!(
        last_message(&sim.requests_for("fallback")[0]),
        json!({"role": "assistant", "content": text_of(0..20)})
    );
    let meta = stream.meta();
    assert!(meta.usage_partial);
    assert_eq!(meta.served_by.as_ref().unwrap().model.as_ref(), "fallback");
}

/// The continuation's own usage is passed through (it counts only its own tokens, so the
/// meta flags it partial); a stream without recovery reports whole usage.
#[tokio::test]
async fn a_continuation_passes_its_usage_through_and_flags_it_partial() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [cut_at(20)]);
    sim.script("fallback", [continuation(20)]);
    let chain = Chain::new()
        .target("sim/primary")
        .target(Target::new("sim", "fallback").prefill(true))
        .mid_stream_recovery(MidStreamRecovery::Continue);
    let relay = relay(&sim, chain);
    let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let usages: Vec<_> = chunks.iter().filter_map(|c| c.usage).collect();
    assert_eq!(usages.len(), 1, "{usages:?}");
    assert_eq!((usages[0].input_tokens, usages[0].output_tokens), (100, 40));
    assert_eq!(
        model_of(chunks.iter().find(|c| c.usage.is_some()).unwrap()),
        "fallback"
    );
    assert!(stream.meta().usage_partial);

    // Folded: the same usage, and the flag.
    let resp = folded(&relay, req()).await.unwrap();
    assert_eq!(resp.text(), text_of(0..60));
    let u = resp.usage.unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (100, 40));
    assert!(resp.meta.usage_partial);

    // Without recovery: whole usage, not partial.
    sim.clear();
    sim.script("primary", [Reply::sse(frames(5))]);
    let mut stream = guarded(relay.chat_stream(req())).await.unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert!(!stream.meta().usage_partial);
    let u = chunks.iter().find_map(|c| c.usage).unwrap();
    assert_eq!((u.input_tokens, u.output_tokens), (5, 5));
    let resp = folded(&relay, req()).await.unwrap();
    assert!(!resp.meta.usage_partial);
}

// =======================================================================================
// C. Point 11: the stream API's edges.
// =======================================================================================

/// `chat_stream` takes the request by reference or by value, and a `ChatStream` is a
/// plain `futures::Stream`: `StreamExt::collect` works on it (its own fold is named
/// `into_response`, so it does not shadow `collect`).
#[tokio::test]
async fn chat_stream_by_reference_and_by_value_and_stream_ext_collect() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::sse(frames(3))]);
    let chain = primary_fallback();
    let relay = relay(&sim, chain.clone());
    let request = req();

    let by_ref: Vec<Result<ChatChunk, Error>> =
        guarded(async { relay.chat_stream(&request).await.unwrap().collect().await }).await;
    let by_ref: Vec<ChatChunk> = by_ref.into_iter().map(|c| c.unwrap()).collect();
    assert_eq!(joined(&by_ref), text_of(0..3));

    let scoped = relay.scoped(&chain).unwrap();
    let scoped_chunks = guarded(async {
        scoped
            .chat_stream(&request)
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await;
    assert!(scoped_chunks.iter().all(Result::is_ok));

    // The request is still ours after the by-reference calls; now move it in.
    let by_value = guarded(async {
        relay
            .chat_stream(request)
            .await
            .unwrap()
            .collect::<Vec<_>>()
            .await
    })
    .await;
    let by_value: Vec<ChatChunk> = by_value.into_iter().map(|c| c.unwrap()).collect();
    assert_eq!(by_value, by_ref);
    assert_eq!(sim.requests_for("primary").len(), 3);
}

#[tokio::test]
async fn response_text_borrows_a_plain_text_answer() {
    let sim = Simulator::start().await.unwrap();
    sim.script("primary", [Reply::openai_text("Just one string.")]);
    let relay = relay(&sim, primary_fallback());
    let request = req();
    let resp = guarded(relay.chat(&request)).await.unwrap();
    assert!(matches!(resp.text(), std::borrow::Cow::Borrowed(_)));
    assert_eq!(resp.text(), "Just one string.");
    // A folded stream's text is one string too.
    let folded = folded(&relay, &request).await.unwrap();
    assert!(matches!(folded.text(), std::borrow::Cow::Borrowed(_)));
    assert_eq!(folded.text(), "Just one string.");
}
