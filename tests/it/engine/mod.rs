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

/// 1, 6 and 2: hedged attempts on a target named twice; the attempts tell the truth.
mod attempts;
/// 1, 4: one engine, same decisions in every mode: context overflow.
mod context_overflow;
/// 5: a user-defined provider beside an HTTP vendor.
mod in_house;
/// 3: a target that went silent is not retried; a reset or a refusal is.
mod retries;

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
