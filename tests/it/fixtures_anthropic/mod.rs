//! Conformance of the native Anthropic Messages provider against real recordings.
//!
//! Every file under `tests/fixtures/anthropic/` is decoded here and its fields are checked
//! against values read from the recording itself (see `tests/fixtures/README.md` for each
//! file's provenance). `fixture_folder_is_fully_covered` fails when a file appears that this
//! file does not list.
//!
//! Streams are decoded the way the provider does (`feed` the body, then `finish`) and folded
//! with `StreamAccumulator`. Every stream is also checked against the message Anthropic's own
//! SDKs would accumulate from the same events (decoded with the non-streaming decoder), a
//! property test checks that splitting any stream at arbitrary points changes nothing, and a
//! loopback test replays recordings through the provider itself.

use polyrelay::{ChatResponse, Error, FinishReason, Role, ThinkingBlock, ToolCall, Usage};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::support::fixtures::*;

mod answers;
mod endings;
mod errors;
mod provider;
mod streams;

use polyrelay::providers::anthropic::{decode_error, decode_response};
use polyrelay::providers::{Anthropic, ChunkDecoder, EventHandler};

const FOLDER: &str = "anthropic";

/// Every fixture file this test file exercises. `fixture_folder_is_fully_covered` checks this
/// list against the folder, both ways.
const COVERED: &[&str] = &[
    "anthropic/error_400_invalid_request.http.json",
    "anthropic/error_400_invalid_request.json",
    "anthropic/error_400_invalid_request_tool_result.http.json",
    "anthropic/error_400_invalid_request_tool_result.json",
    "anthropic/error_404_not_found.http.json",
    "anthropic/error_404_not_found.json",
    "anthropic/error_429_rate_limit_error.http.json",
    "anthropic/error_429_rate_limit_error.json",
    "anthropic/error_529_overloaded_error.json",
    "anthropic/error_529_overloaded_error_no_request_id.json",
    "anthropic/messages_parallel_tool_use.http.json",
    "anthropic/messages_parallel_tool_use.json",
    "anthropic/messages_ratelimit_headers_programmatic_tool_use.http.json",
    "anthropic/messages_ratelimit_headers_programmatic_tool_use.json",
    "anthropic/messages_stream_error_event_overloaded.sse",
    "anthropic/messages_stream_redacted_thinking.http.json",
    "anthropic/messages_stream_redacted_thinking.sse",
    "anthropic/messages_stream_structured_output_beta.http.json",
    "anthropic/messages_stream_structured_output_beta.sse",
    "anthropic/messages_stream_thinking.http.json",
    "anthropic/messages_stream_thinking.sse",
    "anthropic/messages_stream_tool_use.http.json",
    "anthropic/messages_stream_tool_use.sse",
    "anthropic/messages_stream_tool_use_with_ratelimit_headers.http.json",
    "anthropic/messages_stream_tool_use_with_ratelimit_headers.sse",
    "anthropic/messages_text.http.json",
    "anthropic/messages_text.json",
    "anthropic/messages_text_with_ratelimit_headers.http.json",
    "anthropic/messages_text_with_ratelimit_headers.json",
    "anthropic/messages_thinking.http.json",
    "anthropic/messages_thinking.json",
    "anthropic/messages_thinking_tool_use.http.json",
    "anthropic/messages_thinking_tool_use.json",
    "anthropic/messages_tool_use_empty_input.http.json",
    "anthropic/messages_tool_use_empty_input.json",
    "anthropic/vercel_messages_stream_text.chunks.jsonl",
    "anthropic/vercel_messages_stream_text.sse",
    "anthropic/vercel_messages_stream_text_then_tool_use_no_args.chunks.jsonl",
    "anthropic/vercel_messages_stream_text_then_tool_use_no_args.sse",
    "anthropic/vercel_messages_stream_thinking_context_management.chunks.jsonl",
    "anthropic/vercel_messages_stream_thinking_context_management.sse",
    "anthropic/vercel_messages_stream_tool_use_json.chunks.jsonl",
    "anthropic/vercel_messages_stream_tool_use_json.sse",
    "anthropic/vercel_messages_text.json",
    "anthropic/vercel_messages_thinking_opus.json",
    "anthropic/vercel_messages_tool_use_json.json",
    "anthropic/vercel_messages_tool_use_no_args.json",
];

/// The Anthropic suite for the shared runner.
pub(super) struct Ant;

impl Vendor for Ant {
    const FOLDERS: &'static [&'static str] = &[FOLDER];
    const BLOCK_END: &'static str = "\n\n";
    /// A whole stream has seen `message_stop`.
    const DONE_AFTER_FEED: bool = true;
    type Want<'a> = Want;

    fn stream_decoder() -> ChunkDecoder<impl EventHandler> {
        Anthropic::stream_decoder()
    }

    fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
        decode_response(body)
    }

    fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
        decode_error(status, headers, body)
    }

    fn check(what: &str, r: &ChatResponse, w: &Want) {
        check_answer(what, r, w);
    }

    /// The message, code and request id read independently from the body, which is kept.
    fn check_error_extra(rel: &str, e: &Error, w: &WantErr) {
        let raw = read_json(rel);
        assert_eq!(
            e.message(),
            raw["error"]["message"].as_str().expect("message"),
            "{rel}"
        );
        assert_eq!(e.code(), raw["error"]["type"].as_str(), "{rel}");
        assert_eq!(e.request_id(), raw["request_id"].as_str(), "{rel}");
        assert_eq!(raw["type"], "error", "{rel}");
        let code = w.code.expect("Anthropic errors have a type");
        assert!(
            e.body_snippet().is_some_and(|b| b.contains(code)),
            "{rel}: body kept"
        );
    }
}

/// The `data:` JSON of an SSE event.
fn event_json(block: &str) -> Value {
    block_json(block).unwrap_or_else(|| panic!("block {block:?}: no JSON data"))
}

/// The events of a recorded stream: (`event:` name, parsed `data:`).
fn sse_events(text: &str) -> Vec<(String, Value)> {
    Ant::sse_blocks(text)
        .into_iter()
        .map(|(s, e)| &text[s..e])
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let name = b
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            (name, event_json(b))
        })
        .collect()
}

/// A thinking block: a signed block's text, signature prefix and signature length; or a
/// redacted block's data prefix and length.
#[derive(Clone, Copy, Debug)]
pub(super) enum Blk {
    Signed(Txt, &'static str, usize),
    Redacted(&'static str, usize),
}

/// Expected usage: input (cached included), output, cache read, cache write, reasoning.
type U = (u64, u64, u64, u64, u64);

fn usage_tuple(u: &Usage) -> U {
    (
        u.input_tokens,
        u.output_tokens,
        u.cache_read_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
    )
}

pub(super) struct Want {
    pub(super) id: &'static str,
    pub(super) model: &'static str,
    pub(super) finish: FinishReason,
    /// `None` when the answer is tool calls only (no content at all).
    pub(super) text: Option<Txt>,
    pub(super) reasoning: Option<Txt>,
    pub(super) blocks: &'static [Blk],
    /// id, name, arguments (JSON text, compared as JSON).
    pub(super) calls: &'static [(&'static str, &'static str, &'static str)],
    pub(super) usage: U,
}

#[track_caller]
fn check_answer(what: &str, r: &ChatResponse, w: &Want) {
    assert_eq!(r.id, w.id, "{what}: id");
    assert_eq!(r.model, w.model, "{what}: model");
    assert_eq!(r.object, "chat.completion", "{what}: object");
    assert_eq!(r.created, 0, "{what}: Anthropic sends no creation time");
    assert_eq!(r.choices.len(), 1, "{what}: one choice");
    let m = &r.choices[0].message;
    assert_eq!(r.choices[0].index, 0, "{what}: choice index");
    assert_eq!(m.role, Role::Assistant, "{what}: role");
    assert_eq!(r.finish_reason(), Some(&w.finish), "{what}: finish reason");
    match (w.text, &m.content) {
        (None, c) => assert_eq!(*c, None, "{what}: no content beside tool calls"),
        (Some(t), Some(_)) => t.check(&format!("{what}: text"), &r.text()),
        (Some(_), None) => panic!("{what}: no content"),
    }
    match w.reasoning {
        Some(t) => t.check(
            &format!("{what}: reasoning"),
            r.reasoning()
                .unwrap_or_else(|| panic!("{what}: no reasoning")),
        ),
        None => assert_eq!(r.reasoning(), None, "{what}: reasoning"),
    }
    assert_eq!(
        m.thinking_blocks.len(),
        w.blocks.len(),
        "{what}: thinking blocks"
    );
    for (i, (got, want)) in m.thinking_blocks.iter().zip(w.blocks).enumerate() {
        match (got, want) {
            (
                ThinkingBlock::Thinking {
                    thinking,
                    signature,
                    ..
                },
                Blk::Signed(text, sig_prefix, sig_len),
            ) => {
                text.check(&format!("{what}: thinking block {i}"), thinking);
                let sig = signature
                    .as_deref()
                    .unwrap_or_else(|| panic!("{what}: unsigned"));
                assert!(
                    sig.starts_with(sig_prefix),
                    "{what}: signature {i}: {sig:.40}"
                );
                assert_eq!(sig.len(), *sig_len, "{what}: signature {i} length");
            }
            (ThinkingBlock::Redacted { data }, Blk::Redacted(prefix, len)) => {
                assert!(data.starts_with(prefix), "{what}: redacted {i}: {data:.40}");
                assert_eq!(data.len(), *len, "{what}: redacted {i} length");
            }
            other => panic!("{what}: thinking block {i}: {other:?}"),
        }
    }
    let calls = r.tool_calls();
    assert_eq!(calls.len(), w.calls.len(), "{what}: number of tool calls");
    for (i, (call, (id, name, args))) in calls.iter().zip(w.calls).enumerate() {
        assert_call(&format!("{what}: call {i}"), call, id, name, args);
    }
    let u = r
        .usage
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no usage"));
    assert_eq!(usage_tuple(u), w.usage, "{what}: usage");
}

#[track_caller]
fn assert_call(what: &str, call: &ToolCall, id: &str, name: &str, args: &str) {
    assert_eq!(call.id, id, "{what}: id");
    assert_eq!(call.kind, "function", "{what}: type");
    assert_eq!(call.function.name, name, "{what}: name");
    let got: Value = serde_json::from_str(&call.function.arguments)
        .unwrap_or_else(|e| panic!("{what}: arguments {:?}: {e}", call.function.arguments));
    let want: Value = serde_json::from_str(args).expect("expected arguments are JSON");
    assert_eq!(got, want, "{what}: arguments");
    assert!(got.is_object(), "{what}: arguments are an object");
}

/// Every sidecar belongs to a body file and agrees with it: POST to `/v1/messages` (the beta
/// endpoint `?beta=true` for SDK beta calls), 200 with `text/event-stream` for streams, 200
/// with JSON for messages, the status of the file name for errors.
#[test]
fn sidecars_agree_with_their_bodies() {
    Ant::sidecars_agree_with_their_bodies(16, |rel, side, stem, body| {
        assert!(
            side.uri == "https://api.anthropic.com/v1/messages"
                || side.uri == "https://api.anthropic.com/v1/messages?beta=true",
            "{rel}: {}",
            side.uri
        );
        assert!(
            side.headers.get("content-type").is_some(),
            "{rel}: no content-type"
        );
        match body {
            Body::Error => assert!(
                side.headers["content-type"]
                    .to_str()
                    .is_ok_and(|c| c.to_ascii_lowercase().contains("application/json")),
                "{rel}"
            ),
            Body::Json => {
                Ant::decode_json(&format!("{stem}.json"));
            }
            Body::Stream => {}
        }
    });
}

/// Fails when a fixture file exists that this suite does not cover, or when a listed file is
/// gone. Every listed body file (not sidecars) must also be named by some test here.
#[test]
fn fixture_folder_is_fully_covered() {
    Ant::fully_covered(
        COVERED,
        &[
            include_str!("mod.rs"),
            include_str!("answers.rs"),
            include_str!("streams.rs"),
            include_str!("endings.rs"),
            include_str!("errors.rs"),
            include_str!("provider.rs"),
        ],
    );
}
