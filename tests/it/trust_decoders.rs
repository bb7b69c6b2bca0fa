//! Nothing a vendor sends can abort the relay, grow its memory without bound, or pass for an
//! answer when it holds none (issue 19, points 3 and 6).
//!
//! * Gemini/Vertex `partialArgs` paths that are deep or index far are a `Decode` error, fast
//!   and in little memory (a counting allocator measures what the decoding thread allocates).
//! * A stream that sends endless chunks before any content fails over.
//! * A 200 with nothing in it (`{}`, no choices, another vendor's dialect), a stream request
//!   answered by such a JSON object, and a stream that ends before any content are failures
//!   of the attempt: the relay fails over to the backup, the stats count a failure, and with
//!   no backup the call fails with a `Decode` or `StreamInterrupted` error.

use crate::support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use polyrelay::providers::Gemini;
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};
use serde_json::json;
use support::*;

// ---------------------------------------------------------------------------------------------
// Memory: bytes allocated by the current thread
// ---------------------------------------------------------------------------------------------

thread_local! {
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes each thread asks for.
struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(layout.size())));
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = new_size.saturating_sub(layout.size());
        let _ = ALLOCATED.try_with(|a| a.set(a.get().saturating_add(grown)));
        // SAFETY: forwarded as is to the system allocator.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the bytes this thread allocated meanwhile.
fn allocated_by<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATED.with(Cell::get);
    let out = f();
    (out, ALLOCATED.with(Cell::get).saturating_sub(before))
}

// ---------------------------------------------------------------------------------------------
// Gemini partialArgs paths
// ---------------------------------------------------------------------------------------------

/// A Gemini SSE event of one function-call part.
fn gemini_fc_event(fc: serde_json::Value) -> String {
    let ev =
        json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": fc}]}}]});
    format!("data: {ev}\r\n\r\n")
}

/// A Vertex stream that starts a call, then sends one string piece at `path`.
fn partial_args_stream(path: &str) -> Vec<String> {
    vec![
        gemini_fc_event(json!({"name": "f", "willContinue": true})),
        gemini_fc_event(json!({
            "partialArgs": [{"jsonPath": path, "stringValue": "x"}],
            "willContinue": true
        })),
    ]
}

/// Feeds `events` to a Gemini stream decoder: the first error, and the bytes allocated.
fn decode_gemini(events: &[String]) -> (Option<polyrelay::Error>, usize) {
    allocated_by(|| {
        let mut d = Gemini::stream_decoder();
        for e in events {
            if let Err(err) = d.feed(e.as_bytes()) {
                return Some(err);
            }
        }
        d.finish().err()
    })
}

#[test]
fn a_deep_partial_args_path_is_a_decode_error_not_a_stack_overflow() {
    // 200,000 levels: building (and dropping) that value recursed once per level.
    let path = format!("${}", ".a".repeat(200_000));
    let (err, bytes) = decode_gemini(&partial_args_stream(&path));
    let err = err.expect("a decode error");
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.message().contains("deeper than 64"), "{err}");
    assert!(err.message().len() < 400, "the error shows a bounded path");
    // The event itself is 400 kB; decoding it takes a few times that, not per level.
    assert!(bytes < 16 << 20, "{bytes} bytes allocated");
}

#[test]
fn a_path_of_huge_indexes_is_a_decode_error_in_little_memory() {
    // 7 kB of `[65536]`: each level made a 65,537-slot array (~2.4 GB in all).
    let path = format!("${}", "[65536]".repeat(1000));
    let (err, bytes) = decode_gemini(&partial_args_stream(&path));
    assert_eq!(err.expect("a decode error").kind(), ErrorKind::Decode);
    assert!(bytes < 16 << 20, "{bytes} bytes allocated");
    // Indexes within the bound, at the largest depth, still stop at the size bound.
    let deep = "[1024]".repeat(63);
    let mut events = vec![gemini_fc_event(json!({"name": "f", "willContinue": true}))];
    for key in ["a", "b", "c"] {
        events.push(gemini_fc_event(json!({
            "partialArgs": [{"jsonPath": format!("$.{key}{deep}"), "stringValue": "x"}],
            "willContinue": true
        })));
    }
    let (err, bytes) = decode_gemini(&events);
    let err = err.expect("past the size bound");
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.message().contains("past 4194304 bytes"), "{err}");
    assert!(bytes < 32 << 20, "{bytes} bytes allocated");
}

// ---------------------------------------------------------------------------------------------
// Through the relay: three vendors on one simulator
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Vendor {
    OpenAi,
    Anthropic,
    Gemini,
}

const VENDORS: [Vendor; 3] = [Vendor::OpenAi, Vendor::Anthropic, Vendor::Gemini];

impl Vendor {
    fn name(self) -> &'static str {
        match self {
            Vendor::OpenAi => "openai",
            Vendor::Anthropic => "anthropic",
            Vendor::Gemini => "gemini",
        }
    }

    /// 200 bodies with nothing in them, for this vendor's decoder.
    fn empty_bodies(self) -> Vec<(&'static str, String)> {
        let openai = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1,
            "model": "m", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": "hello"}, "finish_reason": "stop"}]});
        let anthropic = json!({"id": "msg_1", "type": "message", "role": "assistant",
            "model": "m", "content": [{"type": "text", "text": "hello"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 1, "output_tokens": 1}});
        let gemini = json!({"candidates": [{"content": {"role": "model",
            "parts": [{"text": "hello"}]}, "finishReason": "STOP"}]});
        let mut out = vec![("empty object", "{}".to_owned())];
        match self {
            Vendor::OpenAi => {
                out.push((
                    "no choices",
                    json!({"id": "c", "object": "chat.completion", "choices": []}).to_string(),
                ));
                out.push((
                    "a blank choice",
                    json!({"id": "c", "choices": [{"index": 0,
                        "message": {"role": "assistant", "content": ""}, "finish_reason": null}]})
                    .to_string(),
                ));
                out.push(("Anthropic dialect", anthropic.to_string()));
                out.push(("Gemini dialect", gemini.to_string()));
            }
            Vendor::Anthropic => {
                out.push((
                    "no content",
                    json!({"id": "msg_1", "type": "message", "role": "assistant", "content": [],
                        "stop_reason": null})
                    .to_string(),
                ));
                out.push(("OpenAI dialect", openai.to_string()));
                out.push(("Gemini dialect", gemini.to_string()));
            }
            Vendor::Gemini => {
                out.push(("no candidates", json!({"candidates": []}).to_string()));
                out.push((
                    "a blank candidate",
                    json!({"candidates": [{"content": {"role": "model", "parts": []}}]})
                        .to_string(),
                ));
                out.push(("OpenAI dialect", openai.to_string()));
                out.push(("Anthropic dialect", anthropic.to_string()));
            }
        }
        out
    }

    /// A 200 SSE stream in this dialect that ends cleanly with no content and no finish.
    fn contentless_stream(self) -> Reply {
        match self {
            Vendor::OpenAi => Reply::sse([
                chunk("s", json!({"role": "assistant", "content": ""}), None),
                usage_frame("s", 5, 0),
                "data: [DONE]\n\n".to_owned(),
            ]),
            Vendor::Anthropic => Reply::sse([
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\
                 \"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\
                 \"m\",\"stop_reason\":null,\"usage\":{\"input_tokens\":5,\"output_tokens\":0}}}\
                 \n\n",
                "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
            ]),
            Vendor::Gemini => Reply::sse([
                "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[]}}],\
                 \"usageMetadata\":{\"promptTokenCount\":5}}\r\n\r\n",
            ]),
        }
    }
}

/// A relay over the three vendors on `sim`: route `r` tries `{vendor}/primary`, then (with
/// `backup`) `{vendor}/backup`.
fn relay_for(sim: &Simulator, vendor: Vendor, backup: bool) -> Relay {
    let mut chain = Chain::new()
        .target(format!("{}/primary", vendor.name()).as_str())
        .total_timeout(Duration::from_secs(10));
    if backup {
        chain = chain.target(format!("{}/backup", vendor.name()).as_str());
    }
    crate::support::three_dialects(sim)
        .route("r", chain)
        .build()
        .expect("relay")
}

/// Scripts `primary` to answer once and, with `backup`, the backup to answer
/// "Hello from the backup." (everything scripted or recorded before is forgotten).
fn script(sim: &Simulator, primary: Reply, backup: bool) {
    sim.clear();
    sim.script("primary", [primary]);
    if backup {
        sim.script("backup", [Reply::text("Hello from the backup.")]);
    }
}

fn req() -> ChatRequest {
    ChatRequest::new("r").user("Say hello.")
}

/// The error of the call's last attempt (the call's own error sums up its attempts).
fn last_error(err: &polyrelay::Error) -> &polyrelay::Error {
    err.last_error().unwrap_or(err)
}

/// The backup served, after the primary's attempt failed with `kind`.
fn assert_served_by_backup(meta: &polyrelay::ResponseMeta, kind: ErrorKind, what: &str) {
    let served = meta.served_by.as_ref().map(|t| t.model.to_string());
    assert_eq!(served.as_deref(), Some("backup"), "{what}");
    let first = &meta.attempts[0];
    assert_eq!(first.target.model.as_ref(), "primary", "{what}");
    assert_eq!(first.failure(), Some(kind), "{what}: {:?}", first.error);
}

#[tokio::test]
async fn a_200_with_nothing_in_it_fails_over_and_counts_as_a_failure() {
    let sim = Simulator::start().await.expect("simulator");
    for vendor in VENDORS {
        for (what, body) in vendor.empty_bodies() {
            let what = format!("{vendor:?}, {what}");
            script(&sim, Reply::json(200, body.clone()), true);
            let relay = relay_for(&sim, vendor, true);
            let resp = guarded(relay.chat(req()))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(resp.text(), "Hello from the backup.", "{what}");
            assert_served_by_backup(&resp.meta, ErrorKind::Decode, &what);
            assert_eq!(resp.meta.attempts[0].status, Some(200), "{what}");
            let stats = relay.stats();
            let primary = stats
                .total
                .iter()
                .find(|r| r.model == "primary")
                .expect("a row for the primary");
            assert_eq!(primary.successes, 0, "{what}");
            assert_eq!(primary.failovers_out, 1, "{what}");
            assert_eq!(primary.errors.get("decode"), Some(&1), "{what}");

            // Without a backup the call fails, saying what was missing.
            script(&sim, Reply::json(200, body), false);
            let err = guarded(relay_for(&sim, vendor, false).chat(req()))
                .await
                .expect_err(&what);
            let last = last_error(&err);
            assert_eq!(last.kind(), ErrorKind::Decode, "{what}: {err}");
            assert_eq!(last.status(), Some(200), "{what}: {err}");
            assert!(last.message().contains("nothing in it"), "{what}: {err}");
        }
    }
}

#[tokio::test]
async fn a_stream_answered_by_an_empty_json_object_fails_over() {
    let sim = Simulator::start().await.expect("simulator");
    for vendor in VENDORS {
        for (what, body) in vendor.empty_bodies() {
            let what = format!("{vendor:?} stream, {what}");
            script(&sim, Reply::json(200, body.clone()), true);
            let resp = folded(&relay_for(&sim, vendor, true), req())
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(resp.text(), "Hello from the backup.", "{what}");
            let first = resp.meta.attempts[0].failure();
            assert!(
                matches!(
                    first,
                    Some(ErrorKind::Decode | ErrorKind::StreamInterrupted)
                ),
                "{what}: {first:?}"
            );
            assert_served_by_backup(&resp.meta, first.unwrap_or(ErrorKind::Decode), &what);

            script(&sim, Reply::json(200, body), false);
            let err = guarded(relay_for(&sim, vendor, false).chat_stream(req()))
                .await
                .err()
                .unwrap_or_else(|| panic!("{what}: the stream opened"));
            assert!(
                matches!(
                    last_error(&err).kind(),
                    ErrorKind::Decode | ErrorKind::StreamInterrupted
                ),
                "{what}: {err}"
            );
        }
    }
}

#[tokio::test]
async fn a_stream_answered_by_a_vendor_error_object_is_that_error() {
    let sim = Simulator::start().await.expect("simulator");
    let bodies = [
        (
            Vendor::OpenAi,
            json!({"error": {"message": "Overloaded", "type": "server_error", "code": 503}}),
            ErrorKind::Overloaded,
        ),
        (
            Vendor::Anthropic,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
            ErrorKind::Overloaded,
        ),
        (
            Vendor::Gemini,
            json!({"error": {"code": 503, "message": "Overloaded", "status": "UNAVAILABLE"}}),
            ErrorKind::Overloaded,
        ),
    ];
    for (vendor, body, kind) in bodies {
        script(&sim, Reply::json(200, body.to_string()), true);
        let resp = folded(&relay_for(&sim, vendor, true), req())
            .await
            .unwrap_or_else(|e| panic!("{vendor:?}: {e}"));
        assert_eq!(resp.text(), "Hello from the backup.", "{vendor:?}");
        let failed: Vec<_> = resp
            .meta
            .attempts
            .iter()
            .filter(|a| a.target.model.as_ref() == "primary")
            .map(|a| a.failure())
            .collect();
        assert!(
            !failed.is_empty() && failed.iter().all(|f| *f == Some(kind)),
            "{vendor:?}: {failed:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_that_ends_before_any_content_fails_over() {
    let sim = Simulator::start().await.expect("simulator");
    for vendor in VENDORS {
        let what = format!("{vendor:?}");
        script(&sim, vendor.contentless_stream(), true);
        let resp = folded(&relay_for(&sim, vendor, true), req())
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(resp.text(), "Hello from the backup.", "{what}");
        assert_served_by_backup(&resp.meta, ErrorKind::StreamInterrupted, &what);

        script(&sim, vendor.contentless_stream(), false);
        let err = guarded(relay_for(&sim, vendor, false).chat_stream(req()))
            .await
            .err()
            .unwrap_or_else(|| panic!("{what}: the stream opened"));
        assert_eq!(
            last_error(&err).kind(),
            ErrorKind::StreamInterrupted,
            "{what}: {err}"
        );
        let last = last_error(&err);
        // Gemini's decoder itself refuses a body that ends before every candidate finished.
        assert!(last.message().contains("ended"), "{what}: {err}");
    }
}

#[tokio::test]
async fn endless_chunks_before_any_content_fail_over() {
    let sim = Simulator::start().await.expect("simulator");
    // 10,000 role-only chunks, then the answer: the head kept before content is bounded.
    let mut frames: Vec<String> = (0..10_000)
        .map(|_| chunk("s", json!({"role": "assistant"}), None))
        .collect();
    frames.extend(tokens("s", 0, 3, 5));
    script(&sim, Reply::sse(frames), true);
    let resp = folded(&relay_for(&sim, Vendor::OpenAi, true), req())
        .await
        .expect("the backup answers");
    assert_eq!(resp.text(), "Hello from the backup.");
    assert_served_by_backup(&resp.meta, ErrorKind::Decode, "endless head");
    let err = resp.meta.attempts[0].error.as_ref().expect("its error");
    assert!(err.message().contains("without content"), "{err}");
}

#[tokio::test]
async fn a_deep_partial_args_path_through_the_relay_fails_over() {
    let sim = Simulator::start().await.expect("simulator");
    let path = format!("${}", ".a".repeat(200_000));
    script(&sim, Reply::sse(partial_args_stream(&path)), true);
    let resp = folded(&relay_for(&sim, Vendor::Gemini, true), req())
        .await
        .expect("the backup answers");
    assert_eq!(resp.text(), "Hello from the backup.");
    assert_served_by_backup(&resp.meta, ErrorKind::Decode, "deep path");
}
