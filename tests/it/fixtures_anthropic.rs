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

use std::collections::BTreeSet;
use std::time::Duration;

use polyrelay::providers::Anthropic;
use polyrelay::providers::anthropic::{decode_error, decode_response, encode_request};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    CallContext, ChatChunk, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Provider,
    Role, ThinkingBlock, ToolCall, Usage,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::support::fixtures;
use fixtures::{Outcome, Stage, fixtures_dir, fold, read, read_json, read_str};

/// Feeds `bytes` in pieces of the given sizes (cycled; 0 counts as 1), then ends the stream.
fn decode_pieces(bytes: &[u8], sizes: &[usize]) -> Outcome {
    fixtures::decode_pieces_with(Anthropic::stream_decoder(), bytes, sizes)
}

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

// ---------------------------------------------------------------------------------------------
// Reading fixtures
// ---------------------------------------------------------------------------------------------

fn exists(rel: &str) -> bool {
    fixtures_dir().join(rel).exists()
}

/// Every file of the folder, as `anthropic/name`, sorted.
fn list_folder() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(fixtures_dir().join(FOLDER))
        .expect("fixture folder")
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| format!("{FOLDER}/{}", e.file_name().to_string_lossy()))
        .collect();
    out.sort();
    out
}

fn all_sse() -> Vec<String> {
    list_folder()
        .into_iter()
        .filter(|f| f.ends_with(".sse"))
        .collect()
}

/// A `*.http.json` sidecar. The folder has two shapes (pydantic-ai/crewAI cassettes:
/// `status: {code, message}` and header values as arrays; anthropic-sdk-python snapshots:
/// `status: 400` and header values as strings); both are read.
#[derive(Debug)]
struct Sidecar {
    method: String,
    uri: String,
    status: u16,
    headers: HeaderMap,
}

fn read_sidecar(rel: &str) -> Sidecar {
    let v = read_json(rel);
    let status = v
        .pointer("/response/status/code")
        .or_else(|| v.pointer("/response/status"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{rel}: no response status"));
    let mut headers = HeaderMap::new();
    for (name, values) in v
        .pointer("/response/headers")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{rel}: no response headers"))
    {
        let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
        let values: Vec<&Value> = match values {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for value in values {
            let value = value.as_str().expect("header values are strings");
            headers.append(
                name.clone(),
                HeaderValue::from_str(value).expect("header value"),
            );
        }
    }
    let text = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Sidecar {
        method: text("/request/method"),
        uri: text("/request/uri"),
        status: u16::try_from(status).expect("status fits u16"),
        headers,
    }
}

fn sidecar_of(rel: &str) -> Option<Sidecar> {
    let stem = rel
        .strip_suffix(".json")
        .or_else(|| rel.strip_suffix(".sse"))
        .unwrap_or_else(|| panic!("{rel} is neither .json nor .sse"));
    let side = format!("{stem}.http.json");
    exists(&side).then(|| read_sidecar(&side))
}

/// The HTTP status in an error fixture's name: `error_429_…` → 429.
fn status_from_name(rel: &str) -> u16 {
    rel.rsplit('/')
        .next()
        .unwrap_or(rel)
        .split('_')
        .find_map(|p| p.parse::<u16>().ok().filter(|s| (100..600).contains(s)))
        .unwrap_or_else(|| panic!("no HTTP status in the name of {rel}"))
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

fn decode_json(rel: &str) -> ChatResponse {
    decode_response(&read(rel)).unwrap_or_else(|e| panic!("{rel} did not decode: {e:?}"))
}

fn decode_whole(bytes: &[u8]) -> Outcome {
    decode_pieces(bytes, &[usize::MAX])
}

/// Decodes a whole successful stream (plain `feed`, then `finish`) and folds it.
fn decode_stream_bytes(what: &str, bytes: &[u8]) -> (Vec<ChatChunk>, ChatResponse) {
    let mut dec = Anthropic::stream_decoder();
    let mut chunks = dec
        .feed(bytes)
        .unwrap_or_else(|e| panic!("{what}: feed failed: {e:?}"));
    assert!(dec.is_done(), "{what}: message_stop seen");
    chunks.extend(
        dec.finish()
            .unwrap_or_else(|e| panic!("{what}: finish failed: {e:?}")),
    );
    let folded = fold(&chunks);
    (chunks, folded)
}

fn decode_stream(rel: &str) -> (Vec<ChatChunk>, ChatResponse) {
    decode_stream_bytes(rel, &read(rel))
}

/// Byte ranges of the SSE blocks of a body (each ending with its blank line).
fn sse_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = text[start..].find("\n\n") {
        let end = start + i + 2;
        out.push((start, end));
        start = end;
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// The `data:` JSON of an SSE block.
fn block_json(block: &str) -> Value {
    let data: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|v| v.strip_prefix(' ').unwrap_or(v))
        .collect();
    serde_json::from_str(&data.join("\n")).unwrap_or_else(|e| panic!("block {block:?}: {e}"))
}

/// The events of a recorded stream: (`event:` name, parsed `data:`).
fn sse_events(text: &str) -> Vec<(String, Value)> {
    sse_blocks(text)
        .into_iter()
        .map(|(s, e)| &text[s..e])
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            let name = b
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(|n| n.trim().to_owned())
                .unwrap_or_default();
            (name, block_json(b))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// A text: exact, or its start, end and length in characters.
#[derive(Clone, Copy, Debug)]
enum Txt {
    Exact(&'static str),
    Shape(&'static str, &'static str, usize),
}

impl Txt {
    #[track_caller]
    fn check(self, what: &str, actual: &str) {
        match self {
            Txt::Exact(s) => assert_eq!(actual, s, "{what}"),
            Txt::Shape(prefix, suffix, chars) => {
                assert!(
                    actual.starts_with(prefix),
                    "{what}: expected to start with {prefix:?}, got {:?}",
                    actual.chars().take(80).collect::<String>()
                );
                assert!(
                    actual.ends_with(suffix),
                    "{what}: expected to end with {suffix:?}"
                );
                assert_eq!(
                    actual.chars().count(),
                    chars,
                    "{what}: length in characters"
                );
            }
        }
    }
}

/// A thinking block: a signed block's text, signature prefix and signature length; or a
/// redacted block's data prefix and length.
#[derive(Clone, Copy, Debug)]
enum Blk {
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

struct Want {
    id: &'static str,
    model: &'static str,
    finish: FinishReason,
    /// `None` when the answer is tool calls only (no content at all).
    text: Option<Txt>,
    reasoning: Option<Txt>,
    blocks: &'static [Blk],
    /// id, name, arguments (JSON text, compared as JSON).
    calls: &'static [(&'static str, &'static str, &'static str)],
    usage: U,
}

#[track_caller]
fn check(what: &str, r: &ChatResponse, w: &Want) {
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

#[track_caller]
fn check_json(rel: &str, w: &Want) -> ChatResponse {
    let r = decode_json(rel);
    check(rel, &r, w);
    r
}

#[track_caller]
fn check_sse(rel: &str, w: &Want) -> (Vec<ChatChunk>, ChatResponse) {
    let (chunks, r) = decode_stream(rel);
    check(rel, &r, w);
    (chunks, r)
}

fn content_chunks(chunks: &[ChatChunk]) -> usize {
    chunks.iter().filter(|c| c.has_content()).count()
}

// ---------------------------------------------------------------------------------------------
// Non-streaming responses
// ---------------------------------------------------------------------------------------------

#[test]
fn messages_text() {
    check_json(
        "anthropic/messages_text.json",
        &Want {
            id: "msg_01Fg1JVgvCYUHWsxrj9GkpEv",
            model: "claude-3-opus-20240229",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact("The capital of France is Paris.")),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (20, 10, 0, 0, 0),
        },
    );
}

#[test]
fn messages_text_with_ratelimit_headers() {
    check_json(
        "anthropic/messages_text_with_ratelimit_headers.json",
        &Want {
            id: "msg_01QgPLhuYEg6TCUTrnsGFxH8",
            model: "claude-3-5-haiku-20241022",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "This image is a line graph showing \"Revenue Over Time\" from 2020 to 2024.",
                "consistent growth year over year.",
                320,
            )),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (485, 77, 0, 0, 0),
        },
    );
    // The sidecar's request id (redacted by the recorder) is where the provider reads it.
    let side = read_sidecar("anthropic/messages_text_with_ratelimit_headers.http.json");
    assert_eq!(side.headers["request-id"], "REQUEST-ID-XXX");
    assert_eq!(
        side.headers["anthropic-ratelimit-requests-reset"],
        "2026-02-12T19:30:48Z"
    );
}

#[test]
fn vercel_messages_text() {
    check_json(
        "anthropic/vercel_messages_text.json",
        &Want {
            id: "msg_01VdEjxAP5ahtHKrrRdNBteQ",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact(
                "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (12, 29, 0, 0, 0),
        },
    );
}

#[test]
fn messages_parallel_tool_use_text_then_four_calls() {
    check_json(
        "anthropic/messages_parallel_tool_use.json",
        &Want {
            id: "msg_011S3wxtqL5CVescWqS3zeg2",
            model: "claude-haiku-4-5-20251001",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Shape(
                "I'll help you find out who is the youngest",
                "to compare their ages.",
                156,
            )),
            reasoning: None,
            blocks: &[],
            calls: &[
                (
                    "toolu_0167cfEnoQaPviGdVXA95zcu",
                    "retrieve_entity_info",
                    r#"{"name":"Alice"}"#,
                ),
                (
                    "toolu_01EEe2V5HD1Ac4rKiUR4HD2T",
                    "retrieve_entity_info",
                    r#"{"name":"Bob"}"#,
                ),
                (
                    "toolu_01XFyAjstT3966qvRynZyVPo",
                    "retrieve_entity_info",
                    r#"{"name":"Charlie"}"#,
                ),
                (
                    "toolu_013mnQZbgtK2oe3Mo3XKJsx3",
                    "retrieve_entity_info",
                    r#"{"name":"Daisy"}"#,
                ),
            ],
            usage: (423, 202, 0, 0, 0),
        },
    );
}

/// Programmatic tool calling: a `server_tool_use` block (code execution, run by Anthropic) is
/// not a client tool call and is skipped; the `tool_use` it triggered (with a `caller` naming
/// it) is one. The `container` field is ignored.
#[test]
fn messages_programmatic_tool_use_skips_the_server_tool_block() {
    check_json(
        "anthropic/messages_ratelimit_headers_programmatic_tool_use.json",
        &Want {
            id: "msg_01LAwUK3MeXUxoNW5ZgnPpGy",
            model: "claude-opus-4-5-20251101",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact(
                "I'll check the weather for all three cities in Celsius simultaneously.",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_011MDRpaZRMRRjtFkJizD6nS",
                "get_weather",
                r#"{"location":"San Francisco, CA","units":"c"}"#,
            )],
            usage: (3182, 237, 0, 0, 0),
        },
    );
    let raw = read_json("anthropic/messages_ratelimit_headers_programmatic_tool_use.json");
    assert_eq!(raw["content"][1]["type"], "server_tool_use");
}

/// The recorded rate-limit headers (a 200, nothing exhausted) give no retry hint on a 429;
/// with a limit at 0 they give its reset (in the past by now: retry at once).
#[test]
fn ratelimit_headers_as_retry_hints() {
    let side = read_sidecar("anthropic/messages_ratelimit_headers_programmatic_tool_use.http.json");
    assert_eq!(side.status, 200);
    assert_eq!(
        side.headers["anthropic-ratelimit-input-tokens-reset"],
        "2026-02-25T20:02:37Z"
    );
    let body = read("anthropic/error_429_rate_limit_error.json");
    let e = decode_error(429, &side.headers, &body);
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(
        e.retry_after(),
        None,
        "no limit at 0: the resets do not explain the 429"
    );
    let mut h = side.headers.clone();
    h.insert(
        "anthropic-ratelimit-input-tokens-remaining",
        HeaderValue::from_static("0"),
    );
    assert_eq!(
        decode_error(429, &h, &body).retry_after(),
        Some(Duration::ZERO)
    );
    h.insert(
        "anthropic-ratelimit-input-tokens-reset",
        HeaderValue::from_static("2999-12-31T23:59:59Z"),
    );
    assert_eq!(
        decode_error(429, &h, &body).retry_after(),
        Some(polyrelay::http::retry_after::MAX_RETRY_AFTER)
    );
    // The crewAI recordings redact most values; what is left does not parse or is not at 0.
    let side = read_sidecar("anthropic/messages_stream_tool_use_with_ratelimit_headers.http.json");
    assert_eq!(decode_error(429, &side.headers, &body).retry_after(), None);
}

#[test]
fn messages_thinking_signed_block() {
    check_json(
        "anthropic/messages_thinking.json",
        &Want {
            id: "msg_01TGA8SWcHTTn5674cmicbnJ",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "Here's how to cross the street safely:\n\n## Basic Steps",
                "alert and make safe choices.",
                1062,
            )),
            reasoning: Some(Txt::Exact(
                "This is a straightforward question about pedestrian safety. I should provide clear, practical advice about crossing the street safely.",
            )),
            blocks: &[Blk::Signed(
                Txt::Shape(
                    "This is a straightforward",
                    "crossing the street safely.",
                    134,
                ),
                "Eq8CCkYICxgCKkDdadQOXMzNBqjr",
                412,
            )],
            calls: &[],
            usage: (43, 321, 0, 0, 0),
        },
    );
}

#[test]
fn messages_thinking_then_text_then_no_arg_tool_call() {
    check_json(
        "anthropic/messages_thinking_tool_use.json",
        &Want {
            id: "msg_01WvueFjZVbHcj4H4zUzeGv2",
            model: "claude-sonnet-4-20250514",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact(
                "I'll help you find the largest city in your country. First, let me determine which country you're from.",
            )),
            reasoning: Some(Txt::Shape(
                "The user is asking about the largest city in \"the user country\".",
                "Let me call the get_user_country function first.",
                376,
            )),
            blocks: &[Blk::Signed(
                Txt::Shape("The user is asking", "function first.", 376),
                "EqEECkYICxgCKkAo3UA4WwDbB8ih",
                736,
            )],
            calls: &[("toolu_01YGzqpRE16Vricda3Aqcejo", "get_user_country", "{}")],
            usage: (398, 155, 0, 0, 0),
        },
    );
}

#[test]
fn messages_tool_use_empty_input_is_empty_object() {
    let r = check_json(
        "anthropic/messages_tool_use_empty_input.json",
        &Want {
            id: "msg_012TXW181edhmR5JCsQRsBKx",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::ToolCalls,
            text: None,
            reasoning: None,
            blocks: &[],
            calls: &[("toolu_01X9wcHKKAZD9tBC711xipPa", "get_user_country", "{}")],
            usage: (445, 23, 0, 0, 0),
        },
    );
    assert_eq!(r.tool_calls()[0].function.arguments, "{}");
}

/// A newer model (claude-opus-5) reports `output_tokens_details.thinking_tokens`: it becomes
/// `reasoning_tokens`, a subset of `output_tokens`. It also sends `stop_details: null`.
#[test]
fn vercel_messages_thinking_opus_reports_thinking_tokens() {
    let r = check_json(
        "anthropic/vercel_messages_thinking_opus.json",
        &Want {
            id: "msg_011CdMNhurHSJCxCC2NB7WYc",
            model: "claude-opus-5",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "## Step 1: Set up the problem\n\nWe want all values of $x$",
                "independently confirming the answer.",
                2644,
            )),
            reasoning: Some(Txt::Shape(
                "I need to find all roots of this cubic polynomial and verify them.",
                "a degree 3 polynomial has exactly 3 roots.",
                352,
            )),
            blocks: &[Blk::Signed(
                Txt::Shape("I need to find all roots", "exactly 3 roots.", 352),
                "CAISqwQKhwEIEBgCKkAciZInI2gc",
                752,
            )],
            calls: &[],
            usage: (51, 1699, 0, 0, 139),
        },
    );
    let u = r.usage.expect("usage");
    assert!(u.reasoning_tokens <= u.output_tokens);
}

#[test]
fn vercel_messages_tool_use_json() {
    check_json(
        "anthropic/vercel_messages_tool_use_json.json",
        &Want {
            id: "msg_0191iYfpERYfS27xLsdW2nbb",
            model: "claude-haiku-4-5-20251001",
            finish: FinishReason::ToolCalls,
            text: None,
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_01Q9ExVZnzZj7E2QQYHYtNUa",
                "json",
                r#"{"elements":[
                    {"location":"San Francisco","temperature":-5,"condition":"snowy"},
                    {"location":"London","temperature":0,"condition":"snowy"},
                    {"location":"Paris","temperature":23,"condition":"cloudy"},
                    {"location":"Berlin","temperature":-9,"condition":"snowy"}]}"#,
            )],
            usage: (1151, 87, 0, 0, 0),
        },
    );
}

#[test]
fn vercel_messages_tool_use_no_args() {
    check_json(
        "anthropic/vercel_messages_tool_use_no_args.json",
        &Want {
            id: "msg_01GCBaV8gyWAYgMVggRqZbuQ",
            model: "claude-3-opus-20240229",
            finish: FinishReason::ToolCalls,
            // claude-3-opus wrote its chain of thought as text: it stays text.
            text: Some(Txt::Shape(
                "<thinking>\nThe updateIssueList tool was provided",
                "Okay, I will update the current issue list:",
                255,
            )),
            reasoning: None,
            blocks: &[],
            calls: &[("toolu_01LRmxn9vGM1d2DZSDBowdZ1", "updateIssueList", "{}")],
            usage: (602, 93, 0, 0, 0),
        },
    );
}

/// Every non-streaming body, decoded, agrees with its raw JSON read field by field here (an
/// independent reading of the recording).
#[test]
fn every_message_body_agrees_with_its_raw_json() {
    let bodies: Vec<String> = list_folder()
        .into_iter()
        .filter(|f| f.ends_with(".json") && !f.ends_with(".http.json"))
        .filter(|f| !f.contains("/error_"))
        .collect();
    assert_eq!(bodies.len(), 11, "message bodies");
    for rel in bodies {
        let raw = read_json(&rel);
        let r = decode_json(&rel);
        let blocks = raw["content"].as_array().expect("content array");
        let of = |ty: &'static str| blocks.iter().filter(move |b| b["type"] == ty);
        let text: String = of("text")
            .map(|b| b["text"].as_str().expect("text"))
            .collect();
        let thinking: String = of("thinking")
            .map(|b| b["thinking"].as_str().expect("thinking"))
            .collect();
        let calls: Vec<(&str, &str, &Value)> = of("tool_use")
            .map(|b| {
                (
                    b["id"].as_str().expect("id"),
                    b["name"].as_str().expect("name"),
                    &b["input"],
                )
            })
            .collect();
        assert_eq!(r.id, raw["id"].as_str().expect("id"), "{rel}");
        assert_eq!(r.model, raw["model"].as_str().expect("model"), "{rel}");
        assert_eq!(r.text(), text, "{rel}");
        assert_eq!(r.reasoning().unwrap_or(""), thinking, "{rel}");
        assert_eq!(r.tool_calls().len(), calls.len(), "{rel}");
        for (call, (id, name, input)) in r.tool_calls().iter().zip(&calls) {
            assert_eq!(
                (call.id.as_str(), call.function.name.as_str()),
                (*id, *name),
                "{rel}"
            );
            let args: Value = serde_json::from_str(&call.function.arguments).expect("JSON");
            assert_eq!(&args, *input, "{rel}");
        }
        let signed = of("thinking").count() + of("redacted_thinking").count();
        assert_eq!(r.choices[0].message.thinking_blocks.len(), signed, "{rel}");
        let finish = FinishReason::from(raw["stop_reason"].as_str().expect("stop_reason"));
        assert_eq!(r.finish_reason(), Some(&finish), "{rel}");
        let n = |k: &str| raw["usage"][k].as_u64().unwrap_or(0);
        let u = r.usage.expect("usage");
        let input =
            n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens");
        assert_eq!(u.input_tokens, input, "{rel}");
        assert_eq!(u.output_tokens, n("output_tokens"), "{rel}");
        assert_eq!(u.cache_read_tokens, n("cache_read_input_tokens"), "{rel}");
        assert_eq!(
            u.cache_write_tokens,
            n("cache_creation_input_tokens"),
            "{rel}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// The raw recordings pad JSON with spaces before the closing brace and send `{"type": "ping"}`
/// (a space after the colon); serde takes both.
#[test]
fn raw_recordings_have_padding_and_spaced_pings() {
    let rel = "anthropic/messages_stream_thinking.sse";
    let text = read_str(rel);
    assert!(
        text.contains(r#"{"type":"message_stop"         }"#),
        "padding"
    );
    assert!(text.contains("data: {\"type\": \"ping\"}\n"), "spaced ping");
    let padded = sse_blocks(&text)
        .iter()
        .filter(|(s, e)| text[*s..*e].contains(" }\n"))
        .count();
    assert!(padded > 100, "most events are padded: {padded}");
    decode_stream(rel);
}

#[test]
fn stream_redacted_thinking() {
    let (chunks, _) = check_sse(
        "anthropic/messages_stream_redacted_thinking.sse",
        &Want {
            id: "msg_018XZkwvj9asBiffg3fXt88s",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "I notice that you've sent what appears to be some kind of test string or command.",
                "How can I assist you today with a legitimate task or question?",
                359,
            )),
            reasoning: None,
            blocks: &[
                Blk::Redacted("EqkECkYIBxgCKkA8AZ4noDfV5VcOJe", 744),
                Blk::Redacted("EtgBCkYIBxgCKkDQfGkwzflEJP5asG", 296),
            ],
            calls: &[],
            // message_start said 88 output tokens; message_delta's cumulative 189 wins.
            usage: (92, 189, 0, 0, 0),
        },
    );
    // role, 2 redacted blocks, 15 text deltas, message_delta.
    assert_eq!(chunks.len(), 19);
    assert_eq!(content_chunks(&chunks), 15);
    let redacted: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.choices[0].delta.redacted_thinking.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(redacted, [1, 2]);
}

#[test]
fn stream_structured_output_text_is_json() {
    let (chunks, r) = check_sse(
        "anthropic/messages_stream_structured_output_beta.sse",
        &Want {
            id: "msg_01LtFpmR8SbmiK2kRA5sWXNi",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact("[12345,67890]")),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (135, 10, 0, 0, 0),
        },
    );
    let parsed: Value = serde_json::from_str(&r.text()).expect("JSON output");
    assert_eq!(parsed, json!([12345, 67890]));
    assert_eq!(chunks.len(), 6);
    // The final usage on the message_delta chunk, with the finish reason; message_start's
    // count (input tokens, billed even if the stream goes no further) on the first chunk.
    let last = chunks.last().expect("chunks");
    assert!(last.usage.is_some() && last.finish_reason().is_some());
    assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 2);
    assert_eq!(chunks[0].usage.map(|u| u.input_tokens), Some(135));
}

#[test]
fn stream_thinking_then_text() {
    let (chunks, _) = check_sse(
        "anthropic/messages_stream_thinking.sse",
        &Want {
            id: "msg_01ALwQ87pTS7hH1PjSdC9wJD",
            model: "claude-sonnet-4-20250514",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "Here are the basic steps for safely crossing the street:\n\n**At intersections",
                "Always prioritize safety over speed when crossing streets.",
                1021,
            )),
            reasoning: Some(Txt::Exact(
                "This is a straightforward question about pedestrian safety. I should provide clear, helpful advice about how to safely cross a street. This is basic safety information that could help prevent accidents.",
            )),
            blocks: &[Blk::Signed(
                Txt::Shape("This is a straightforward", "prevent accidents.", 202),
                "EvMCCkYICxgCKkCHP2cSuEdcJK/0rF",
                504,
            )],
            calls: &[],
            usage: (43, 282, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 111);
    assert_eq!(content_chunks(&chunks), 108);
    // The empty `thinking_delta` before the signature yields nothing.
    assert!(chunks.iter().all(|c| c.reasoning() != Some("")));
}

#[test]
fn stream_tool_use_with_ping_after_block_start() {
    let (chunks, _) = check_sse(
        "anthropic/messages_stream_tool_use.sse",
        &Want {
            id: "msg_01AusY9WEbCaj3N7Tv5J4YjH",
            model: "claude-haiku-4-5-20251001",
            finish: FinishReason::ToolCalls,
            text: None,
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_018acGYLtfR52q9yDbWaEdQZ",
                "get_weather",
                r#"{"location": "San Francisco, CA", "units": "f"}"#,
            )],
            usage: (656, 74, 0, 0, 0),
        },
    );
    // role, the call's start (id, name, ""), 9 non-empty fragments, message_delta.
    assert_eq!(chunks.len(), 12);
    let first = &chunks[1].choices[0].delta.tool_calls[0];
    assert_eq!(first.index, Some(0));
    assert_eq!(first.id.as_deref(), Some("toolu_018acGYLtfR52q9yDbWaEdQZ"));
    assert_eq!(first.function.name.as_deref(), Some("get_weather"));
    assert_eq!(first.function.arguments.as_deref(), Some(""));
    let fragments: String = chunks[2..11]
        .iter()
        .map(|c| {
            let d = &c.choices[0].delta.tool_calls[0];
            assert_eq!((d.index, d.id.as_deref()), (Some(0), None));
            d.function.arguments.as_deref().expect("fragment")
        })
        .collect();
    assert_eq!(
        fragments,
        r#"{"location": "San Francisco, CA", "units": "f"}"#
    );
}

#[test]
fn stream_text_then_tool_use_with_ratelimit_headers() {
    let (chunks, _) = check_sse(
        "anthropic/messages_stream_tool_use_with_ratelimit_headers.sse",
        &Want {
            id: "msg_01JCJXSfyzkcecJUydp157cS",
            model: "claude-3-5-haiku-20241022",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact(
                "I'll help you find out the current temperature in San Francisco. I'll use the get_current_temperature function to retrieve this information.",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_01Lfr3kUnHMZApePPRWMv1uS",
                "get_current_temperature",
                r#"{"city": "San Francisco"}"#,
            )],
            usage: (351, 85, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 20);
    // The call is the stream's first tool block: index 0, although it is content block 1.
    let call_indexes: BTreeSet<Option<u32>> = chunks
        .iter()
        .flat_map(|c| c.choices[0].delta.tool_calls.iter().map(|t| t.index))
        .collect();
    assert_eq!(call_indexes, BTreeSet::from([Some(0)]));
    let side = read_sidecar("anthropic/messages_stream_tool_use_with_ratelimit_headers.http.json");
    assert_eq!(side.headers["request-id"], "REQUEST-ID-XXX");
}

/// The mid-stream error (HTTP 200 already sent) is a typed, retryable error, never a silent
/// end; nothing follows it (no `message_stop`).
#[test]
fn stream_error_event_overloaded() {
    let rel = "anthropic/messages_stream_error_event_overloaded.sse";
    let text = read_str(rel);
    assert!(
        text.contains(r#""details":null"#) && text.contains("} }"),
        "recorded shape"
    );
    let out = decode_whole(text.as_bytes());
    assert!(out.chunks.is_empty());
    let (stage, e) = out.error.expect("an error");
    assert_eq!(stage, Stage::Feed);
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.code(), Some("overloaded_error"));
    assert_eq!(e.message(), "Overloaded");
    assert_eq!(e.status(), None);
    assert_eq!(e.request_id(), None);
    assert!(
        e.body_snippet()
            .is_some_and(|b| b.contains("overloaded_error"))
    );
    // After some content too.
    let head = read_str("anthropic/vercel_messages_stream_text.sse");
    let cut = sse_blocks(&head)[4].1;
    let out = decode_whole(format!("{}{text}", &head[..cut]).as_bytes());
    // The role chunk and two text deltas, then the error.
    assert_eq!(out.chunks.len(), 3);
    assert_eq!(
        out.error.map(|(_, e)| e.kind()),
        Some(ErrorKind::Overloaded)
    );
}

#[test]
fn vercel_stream_text() {
    let (chunks, _) = check_sse(
        "anthropic/vercel_messages_stream_text.sse",
        &Want {
            id: "msg_01QC4g3HwBThD4BaNtBckFDJ",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact(
                "Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (12, 30, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 8);
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
}

/// A no-argument tool gets only `partial_json: ""`: its arguments are `{}`, as in unstreamed
/// responses.
#[test]
fn vercel_stream_text_then_tool_use_no_args() {
    let (chunks, r) = check_sse(
        "anthropic/vercel_messages_stream_text_then_tool_use_no_args.sse",
        &Want {
            id: "msg_01GE2RKp1VYsPzdFs3sS9z5S",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact("I'll update the issue list for you.")),
            reasoning: None,
            blocks: &[],
            calls: &[("toolu_01QE1WLsSVp5hy5Q3GmGTmjP", "updateIssueList", "{}")],
            usage: (565, 48, 0, 0, 0),
        },
    );
    assert_eq!(r.tool_calls()[0].function.arguments, "{}");
    assert_eq!(chunks.len(), 6);
}

/// The context-management beta adds `context_management` to `message_delta`; it is ignored.
#[test]
fn vercel_stream_thinking_with_context_management() {
    let rel = "anthropic/vercel_messages_stream_thinking_context_management.sse";
    let (chunks, _) = check_sse(
        rel,
        &Want {
            id: "msg_01Y6V41gqPaKWEw7iPouH7iW",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact("925 ÷ 5 = 185")),
            reasoning: Some(Txt::Exact(
                "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185",
            )),
            blocks: &[Blk::Signed(
                Txt::Exact(
                    "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185",
                ),
                "EvQBCkYICxgCKkAxhD4NUKFzudtZ6N",
                332,
            )],
            calls: &[],
            usage: (69, 53, 0, 0, 0),
        },
    );
    assert!(read_str(rel).contains(r#""context_management":{"applied_edits":[]}"#));
    assert_eq!(chunks.len(), 15);
}

#[test]
fn vercel_stream_tool_use_json() {
    check_sse(
        "anthropic/vercel_messages_stream_tool_use_json.sse",
        &Want {
            id: "msg_01K2JbSUMYhez5RHoK9ZCj9U",
            model: "claude-haiku-4-5-20251001",
            finish: FinishReason::ToolCalls,
            text: None,
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_01KFbKqPYSuAKujiL6mTfzYA",
                "json",
                r#"{"elements":[{"location":"San Francisco","temperature":58,"condition":"sunny"}]}"#,
            )],
            usage: (849, 47, 0, 0, 0),
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Streamed and unstreamed answers agree
// ---------------------------------------------------------------------------------------------

/// The message Anthropic's SDKs accumulate from a stream's events (their `MessageStream`
/// semantics, written out here over raw JSON): `message_start` gives the message,
/// `content_block_start` adds a block, deltas extend it (`input_json_delta` text is parsed at
/// `content_block_stop`), `message_delta` sets the stop reason and overwrites usage fields.
fn sdk_accumulate(text: &str) -> Value {
    let mut message = Value::Null;
    let mut json_text: Vec<String> = Vec::new();
    for (_, ev) in sse_events(text) {
        let index = ev["index"].as_u64().unwrap_or(0) as usize;
        match ev["type"].as_str().expect("type") {
            "message_start" => message = ev["message"].clone(),
            "content_block_start" => {
                let content = message["content"].as_array_mut().expect("content");
                assert_eq!(content.len(), index, "blocks arrive in order");
                content.push(ev["content_block"].clone());
                json_text.push(String::new());
            }
            "content_block_delta" => {
                let block = &mut message["content"][index];
                let d = &ev["delta"];
                let append = |block: &mut Value, key: &str, more: &Value| {
                    let s = format!(
                        "{}{}",
                        block[key].as_str().unwrap_or(""),
                        more.as_str().expect("delta text")
                    );
                    block[key] = Value::from(s);
                };
                match d["type"].as_str().expect("delta type") {
                    "text_delta" => append(block, "text", &d["text"]),
                    "thinking_delta" => append(block, "thinking", &d["thinking"]),
                    "signature_delta" => block["signature"] = d["signature"].clone(),
                    "input_json_delta" => {
                        json_text[index].push_str(d["partial_json"].as_str().expect("json"))
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                if !json_text[index].is_empty() {
                    message["content"][index]["input"] =
                        serde_json::from_str(&json_text[index]).expect("whole input JSON");
                }
            }
            "message_delta" => {
                message["stop_reason"] = ev["delta"]["stop_reason"].clone();
                if let Some(u) = ev["usage"].as_object() {
                    for (k, v) in u {
                        message["usage"][k] = v.clone();
                    }
                }
            }
            "message_stop" => break,
            "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    message
}

/// Tool-call arguments re-serialized canonically (a stream keeps the model's spacing).
fn canonical_arguments(mut r: ChatResponse) -> ChatResponse {
    for c in &mut r.choices {
        for call in &mut c.message.tool_calls {
            let v: Value = serde_json::from_str(&call.function.arguments).expect("JSON arguments");
            call.function.arguments = v.to_string();
        }
    }
    r
}

/// For every recorded stream, `collect()` (the fold of its chunks) equals the non-streaming
/// decode of the message the SDKs accumulate from the same events — text, reasoning, signed
/// and redacted blocks, tool calls, finish reason, id, model and usage.
#[test]
fn every_stream_folds_to_the_unstreamed_decode_of_its_message() {
    let mut checked = 0;
    for rel in all_sse() {
        if rel.contains("error_event") {
            continue;
        }
        let text = read_str(&rel);
        let message = sdk_accumulate(&text);
        let unstreamed = decode_response(message.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: accumulated message: {e:?}"));
        let (_, folded) = decode_stream(&rel);
        assert_eq!(
            canonical_arguments(folded),
            canonical_arguments(unstreamed),
            "{rel}"
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "successful streams");
}

/// The folder holds no stream and non-stream recording of the same answer: the vercel
/// `anthropic-json-tool.1` pair comes from two different calls of the same prompt. What is
/// the same answer agrees: model, finish reason, no text, one call of `json` whose arguments
/// have the same shape. What differs, and why: the message and call ids (two calls), the
/// arguments' values (the model invented 1 city when streamed, 4 unstreamed) and so the usage
/// (849→47 vs 1151→87 tokens: the prompts differ slightly in length too).
#[test]
fn streamed_and_unstreamed_json_tool_calls_agree_on_the_same_answer() {
    let (_, s) = decode_stream("anthropic/vercel_messages_stream_tool_use_json.sse");
    let u = decode_json("anthropic/vercel_messages_tool_use_json.json");
    assert_eq!(s.model, u.model);
    assert_eq!(s.finish_reason(), u.finish_reason());
    assert_eq!(s.choices[0].message.content, None);
    assert_eq!(u.choices[0].message.content, None);
    assert_eq!((s.reasoning(), u.reasoning()), (None, None));
    assert_eq!(s.tool_calls().len(), 1);
    assert_eq!(u.tool_calls().len(), 1);
    let shape = |r: &ChatResponse| -> (String, Vec<BTreeSet<String>>) {
        let call = &r.tool_calls()[0];
        let args: Value = serde_json::from_str(&call.function.arguments).expect("JSON");
        let elements = args["elements"].as_array().expect("elements");
        let keys = elements
            .iter()
            .map(|e| e.as_object().expect("object").keys().cloned().collect())
            .collect();
        (call.function.name.clone(), keys)
    };
    let (s_name, s_keys) = shape(&s);
    let (u_name, u_keys) = shape(&u);
    assert_eq!(s_name, u_name);
    let want: BTreeSet<String> = ["condition", "location", "temperature"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(s_keys.iter().chain(&u_keys).all(|k| *k == want));
    // The differences, as recorded.
    assert_ne!(s.id, u.id);
    assert_eq!((s_keys.len(), u_keys.len()), (1, 4));
    let (su, uu) = (s.usage.expect("usage"), u.usage.expect("usage"));
    assert_eq!((su.input_tokens, uu.input_tokens), (849, 1151));
}

/// No-argument tool calls read `{}` everywhere: unstreamed `input: {}` and streamed
/// `partial_json: ""`.
#[test]
fn no_argument_tool_calls_agree_between_stream_and_body() {
    let mut seen = Vec::new();
    for rel in [
        "anthropic/messages_tool_use_empty_input.json",
        "anthropic/messages_thinking_tool_use.json",
        "anthropic/vercel_messages_tool_use_no_args.json",
    ] {
        seen.push(decode_json(rel).tool_calls()[0].function.arguments.clone());
    }
    let (_, s) = decode_stream("anthropic/vercel_messages_stream_text_then_tool_use_no_args.sse");
    seen.push(s.tool_calls()[0].function.arguments.clone());
    assert_eq!(seen, ["{}", "{}", "{}", "{}"]);
}

// ---------------------------------------------------------------------------------------------
// Chunk logs
// ---------------------------------------------------------------------------------------------

/// How many chunks (and content chunks) one event must yield, by the documented mapping:
/// `message_start` 1; a `tool_use` start 1 (content), a `redacted_thinking` start 1, a text or
/// thinking start only if non-empty; a non-empty delta 1 (content unless a signature); a
/// `content_block_stop` of a tool block that got no argument text 1 (content: the `{}`);
/// `message_delta` 1; `ping`, `message_stop` 0.
fn expected_yield(ev: &Value, tool_blocks: &mut Vec<(u64, bool)>) -> (usize, usize) {
    let nonempty = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    let index = ev["index"].as_u64().unwrap_or(0);
    match ev["type"].as_str().expect("type") {
        "message_start" | "message_delta" => (1, 0),
        "content_block_start" => {
            let b = &ev["content_block"];
            match b["type"].as_str().expect("block type") {
                "tool_use" => {
                    tool_blocks.push((index, false));
                    (1, 1)
                }
                "redacted_thinking" => (1, 0),
                "text" if nonempty(&b["text"]) => (1, 1),
                "thinking" if nonempty(&b["thinking"]) => (1, 1),
                _ => (0, 0),
            }
        }
        "content_block_delta" => {
            let d = &ev["delta"];
            match d["type"].as_str().expect("delta type") {
                "text_delta" if nonempty(&d["text"]) => (1, 1),
                "thinking_delta" if nonempty(&d["thinking"]) => (1, 1),
                "signature_delta" if nonempty(&d["signature"]) => (1, 0),
                "input_json_delta" if nonempty(&d["partial_json"]) => {
                    if let Some(t) = tool_blocks.iter_mut().find(|t| t.0 == index) {
                        t.1 = true;
                    }
                    (1, 1)
                }
                _ => (0, 0),
            }
        }
        "content_block_stop" => match tool_blocks.iter().position(|t| t.0 == index) {
            Some(p) if !tool_blocks.remove(p).1 => (1, 1),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

/// Each `.sse` converted from a vercel chunk log is exactly the log framed as
/// `event: <type>\ndata: <line>\n\n`, and every logged event yields the chunks the mapping
/// says (checked event by event).
#[test]
fn converted_streams_match_their_chunk_logs() {
    let logs: Vec<String> = list_folder()
        .into_iter()
        .filter(|f| f.ends_with(".chunks.jsonl"))
        .collect();
    assert_eq!(
        logs,
        [
            "anthropic/vercel_messages_stream_text.chunks.jsonl",
            "anthropic/vercel_messages_stream_text_then_tool_use_no_args.chunks.jsonl",
            "anthropic/vercel_messages_stream_thinking_context_management.chunks.jsonl",
            "anthropic/vercel_messages_stream_tool_use_json.chunks.jsonl",
        ]
    );
    let mut totals = Vec::new();
    for log in &logs {
        let sse = log.replace(".chunks.jsonl", ".sse");
        let lines: Vec<String> = read_str(log)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let framed: String = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("JSON line");
                format!(
                    "event: {}\ndata: {l}\n\n",
                    v["type"].as_str().expect("type")
                )
            })
            .collect();
        assert_eq!(read_str(&sse), framed, "{sse} is {log} framed as SSE");

        let mut dec = Anthropic::stream_decoder();
        let mut tools = Vec::new();
        let mut all = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            let got = dec
                .feed(
                    format!("event: {}\ndata: {l}\n\n", v["type"].as_str().unwrap_or(""))
                        .as_bytes(),
                )
                .unwrap_or_else(|e| panic!("{sse} line {i}: {e:?}"));
            let (n, content) = expected_yield(&v, &mut tools);
            assert_eq!(got.len(), n, "{sse} line {i}: chunks from {l}");
            assert_eq!(
                content_chunks(&got),
                content,
                "{sse} line {i}: content chunks"
            );
            all.extend(got);
        }
        assert!(dec.is_done(), "{sse}: message_stop");
        assert_eq!(decode_stream(&sse).0, all, "{sse}: event by event = whole");
        totals.push((lines.len(), all.len(), content_chunks(&all)));
    }
    // (logged events, chunks, content chunks), counted independently from the logs.
    assert_eq!(totals, [(12, 8, 6), (13, 6, 4), (22, 15, 12), (9, 5, 3)]);
}

// ---------------------------------------------------------------------------------------------
// Stream endings
// ---------------------------------------------------------------------------------------------

fn successful_streams() -> Vec<String> {
    all_sse()
        .into_iter()
        .filter(|f| !f.contains("error_event"))
        .collect()
}

/// Without `message_stop` (or only part of it) a stream whose stop reason arrived is whole;
/// cut before its `message_delta` it is interrupted, delivering a prefix of its chunks.
#[test]
fn stream_endings() {
    for rel in successful_streams() {
        let text = read_str(&rel);
        let (full_chunks, full) = decode_stream(&rel);
        let blocks = sse_blocks(&text);
        let stop = blocks
            .iter()
            .position(|(s, e)| block_json(&text[*s..*e])["type"] == "message_stop")
            .expect("message_stop");
        let delta = blocks
            .iter()
            .position(|(s, e)| block_json(&text[*s..*e])["type"] == "message_delta")
            .expect("message_delta");
        let (stop_start, stop_end) = blocks[stop];
        // Whole after the stop reason: no message_stop, or cut inside it.
        for cut in [
            stop_start,
            stop_start + 10,
            (stop_start + stop_end) / 2,
            stop_end - 2,
        ] {
            let out = decode_whole(&text.as_bytes()[..cut]);
            assert!(out.error.is_none(), "{rel} cut at {cut}: {:?}", out.error);
            assert_eq!(out.chunks, full_chunks, "{rel} cut at {cut}");
            assert_eq!(fold(&out.chunks), full, "{rel} cut at {cut}");
        }
        // Interrupted before it: at the message_delta, inside it, and mid-stream.
        let (ds, de) = blocks[delta];
        for cut in [ds, (ds + de) / 2, de - 3, blocks[1].1] {
            let out = decode_whole(&text.as_bytes()[..cut]);
            let (stage, e) = out
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{rel} cut at {cut}: no error"));
            assert_eq!(*stage, Stage::Finish, "{rel} cut at {cut}");
            assert_eq!(
                e.kind(),
                ErrorKind::StreamInterrupted,
                "{rel} cut at {cut}: {e:?}"
            );
            assert!(
                full_chunks.starts_with(&out.chunks),
                "{rel} cut at {cut}: a prefix"
            );
        }
    }
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    let rel = "anthropic/vercel_messages_stream_text.sse";
    let text = read_str(rel);
    // message_start, block start, ping and three text deltas.
    let cut = sse_blocks(&text)[5].1;
    let mut dec = Anthropic::stream_decoder();
    let chunks = dec.feed(&text.as_bytes()[..cut]).expect("feed");
    assert_eq!((chunks.len(), content_chunks(&chunks)), (4, 3));
    let e = dec.finish().expect_err("cut stream");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(
        e.message().contains("4 chunks") && e.message().contains("3 with content"),
        "{}",
        e.message()
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitrary splits
// ---------------------------------------------------------------------------------------------

fn piece_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![
            3 => 1usize..=3,
            3 => 1usize..=64,
            2 => 1usize..=1024,
            1 => 1usize..=16384,
        ],
        1..24,
    )
}

#[test]
fn any_split_decodes_like_the_whole_body() {
    let files = all_sse();
    assert_eq!(files.len(), 10, ".sse files");
    for rel in files {
        let bytes = read(&rel);
        let whole = decode_whole(&bytes);
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&piece_sizes(), |sizes| {
            let split = decode_pieces(&bytes, &sizes);
            if !split.same_as(&whole) {
                return Err(TestCaseError::fail(format!(
                    "{rel}: pieces {sizes:?} give {} chunks / {:?}, whole gives {} chunks / {:?}",
                    split.chunks.len(),
                    split.error,
                    whole.chunks.len(),
                    whole.error
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{rel}: {e}");
        }
    }
}

#[test]
fn one_byte_pieces_decode_like_the_whole_body() {
    for rel in all_sse() {
        let bytes = read(&rel);
        let whole = decode_whole(&bytes);
        assert!(
            decode_pieces(&bytes, &[1]).same_as(&whole),
            "{rel}: 1-byte pieces"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// Decodes an error fixture with its sidecar's status and headers, or the status of its name.
fn decode_error_fixture(rel: &str) -> Error {
    let body = read(rel);
    match sidecar_of(rel) {
        Some(side) => {
            assert_eq!(side.status, status_from_name(rel), "{rel}: sidecar status");
            decode_error(side.status, &side.headers, &body)
        }
        None => decode_error(status_from_name(rel), &HeaderMap::new(), &body),
    }
}

struct WantErr {
    kind: ErrorKind,
    status: u16,
    code: &'static str,
    message: Txt,
    request_id: Option<&'static str>,
}

#[track_caller]
fn check_error(rel: &str, w: WantErr) -> Error {
    let e = decode_error_fixture(rel);
    assert_eq!(e.kind(), w.kind, "{rel}: kind ({e:?})");
    assert_eq!(e.status(), Some(w.status), "{rel}: status");
    assert_eq!(e.code(), Some(w.code), "{rel}: code");
    w.message.check(&format!("{rel}: message"), e.message());
    assert_eq!(e.request_id(), w.request_id, "{rel}: request id");
    // Read independently from the body.
    let raw = read_json(rel);
    assert_eq!(
        e.message(),
        raw["error"]["message"].as_str().expect("message"),
        "{rel}"
    );
    assert_eq!(e.code(), raw["error"]["type"].as_str(), "{rel}");
    assert_eq!(e.request_id(), raw["request_id"].as_str(), "{rel}");
    assert_eq!(raw["type"], "error", "{rel}");
    assert!(
        e.body_snippet().is_some_and(|b| b.contains(w.code)),
        "{rel}: body kept"
    );
    e
}

#[test]
fn error_400_invalid_request() {
    let e = check_error(
        "anthropic/error_400_invalid_request.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: "invalid_request_error",
            message: Txt::Exact(
                "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
            ),
            request_id: Some("req_011Ca7jT9AHpgXgdv8igm4z9"),
        },
    );
    assert_eq!(e.retry_after(), None);
}

#[test]
fn error_400_tool_result_without_tool_use() {
    let e = check_error(
        "anthropic/error_400_invalid_request_tool_result.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: "invalid_request_error",
            message: Txt::Shape(
                "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01GHndag5wQmbzNihYmV2UBj.",
                "must have a corresponding `tool_use` block in the previous message.",
                202,
            ),
            request_id: Some("req_011CYHyk9NPsBYeGbC9LuDNK"),
        },
    );
    assert_eq!(e.retry_after(), None);
    let side = read_sidecar("anthropic/error_400_invalid_request_tool_result.http.json");
    assert_eq!(side.headers["x-should-retry"], "false");
}

#[test]
fn error_404_not_found() {
    check_error(
        "anthropic/error_404_not_found.json",
        WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: "not_found_error",
            message: Txt::Exact("model: claude-sonet-4-5"),
            request_id: Some("req_011CdufXo8Y2LVfY2veyuQWG"),
        },
    );
}

/// A real 429 (prompt bytes per hour). The recording has `x-should-retry: true` but neither
/// `retry-after` nor `anthropic-ratelimit-*` headers: no retry hint.
#[test]
fn error_429_rate_limit_error() {
    let e = check_error(
        "anthropic/error_429_rate_limit_error.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: "rate_limit_error",
            message: Txt::Shape(
                "This request would exceed your organization's rate limit of 20,000,000 prompt bytes per hour",
                "to discuss your options for a rate limit increase.",
                497,
            ),
            request_id: Some("req_011CYK5mje9HkutJtmfPzzNC"),
        },
    );
    assert_eq!(e.retry_after(), None);
    let side = read_sidecar("anthropic/error_429_rate_limit_error.http.json");
    assert_eq!(side.headers["x-should-retry"], "true");
    assert!(side.headers.get("retry-after").is_none());
    // With a retry-after header, it is the hint.
    let mut h = side.headers;
    h.insert("retry-after", HeaderValue::from_static("30"));
    let e = decode_error(429, &h, &read("anthropic/error_429_rate_limit_error.json"));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
}

#[test]
fn error_529_overloaded() {
    check_error(
        "anthropic/error_529_overloaded_error.json",
        WantErr {
            kind: ErrorKind::Overloaded,
            status: 529,
            code: "overloaded_error",
            message: Txt::Exact("Overloaded"),
            request_id: Some("req_011CZAau32QzxDkriovTaFCB"),
        },
    );
    check_error(
        "anthropic/error_529_overloaded_error_no_request_id.json",
        WantErr {
            kind: ErrorKind::Overloaded,
            status: 529,
            code: "overloaded_error",
            message: Txt::Exact("Overloaded"),
            request_id: None,
        },
    );
    // The request id also comes from the `request-id` header when the body has none.
    let mut h = HeaderMap::new();
    h.insert("request-id", HeaderValue::from_static("req_from_header"));
    let e = decode_error(
        529,
        &h,
        &read("anthropic/error_529_overloaded_error_no_request_id.json"),
    );
    assert_eq!(e.request_id(), Some("req_from_header"));
}

// ---------------------------------------------------------------------------------------------
// Sidecars
// ---------------------------------------------------------------------------------------------

/// Every sidecar belongs to a body file and agrees with it: POST to `/v1/messages` (the beta
/// endpoint `?beta=true` for SDK beta calls), 200 with `text/event-stream` for streams, 200
/// with JSON for messages, the status of the file name for errors.
#[test]
fn sidecars_agree_with_their_bodies() {
    let mut seen = 0;
    for rel in list_folder() {
        let Some(stem) = rel.strip_suffix(".http.json") else {
            continue;
        };
        seen += 1;
        let side = read_sidecar(&rel);
        assert_eq!(side.method, "POST", "{rel}");
        assert!(
            side.uri == "https://api.anthropic.com/v1/messages"
                || side.uri == "https://api.anthropic.com/v1/messages?beta=true",
            "{rel}: {}",
            side.uri
        );
        let content_type = side
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{rel}: no content-type"))
            .to_ascii_lowercase();
        let sse = format!("{stem}.sse");
        let json = format!("{stem}.json");
        if exists(&sse) {
            assert_eq!(side.status, 200, "{rel}");
            assert!(
                content_type.contains("event-stream"),
                "{rel}: {content_type}"
            );
        } else if json.contains("/error_") {
            assert_eq!(side.status, status_from_name(&json), "{rel}");
            assert!(content_type.contains("application/json"), "{rel}");
        } else {
            assert!(exists(&json), "{rel}: no body next to it");
            assert_eq!(side.status, 200, "{rel}");
            assert!(content_type.contains("application/json"), "{rel}");
            decode_json(&json);
        }
    }
    assert_eq!(seen, 16, "sidecars");
}

// ---------------------------------------------------------------------------------------------
// The provider over loopback, replaying recordings
// ---------------------------------------------------------------------------------------------

async fn guarded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

fn provider_at(sim: &Simulator) -> Anthropic {
    Anthropic::new("sk-ant-test-key-0123456789")
        .base_url(&format!("{}/v1", sim.base_url()))
        .beta("structured-outputs-2025-12-15")
}

/// The provider sends what `encode_request` encodes, with Anthropic's headers, and its
/// answers (plain, streamed, error, error inside a stream) are what the codec decodes.
#[tokio::test]
async fn provider_replays_recordings() {
    guarded(async {
        let sim = Simulator::start().await.expect("simulator");
        let p = provider_at(&sim);
        let cx = CallContext::shared().expect("client");
        let req = ChatRequest::new("ignored")
            .system("Be brief.")
            .user("Hello");

        // Plain.
        let body = read_str("anthropic/messages_thinking.json");
        sim.script(
            "m-json",
            [Reply::json(200, body.clone()).header("request-id", "req_rec")],
        );
        let mut r = p.chat(&req, "m-json", &cx).await.expect("chat");
        // The simulator adds `x-request-id: req_sim_<n>`, which is read before `request-id`.
        assert_eq!(r.meta.request_id.as_deref(), Some("req_sim_0"));
        r.meta = Default::default();
        assert_eq!(r, decode_json("anthropic/messages_thinking.json"));
        let sent = &sim.requests_for("m-json")[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some("sk-ant-test-key-0123456789"));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(
            sent.header("anthropic-beta"),
            Some("structured-outputs-2025-12-15")
        );
        assert!(sent.header("authorization").is_none());
        assert!(
            sent.header("content-type")
                .is_some_and(|c| c.contains("application/json"))
        );
        let want: Value =
            serde_json::from_slice(&encode_request(&req, "m-json", false).expect("encodes"))
                .expect("JSON");
        assert_eq!(sent.body, want);
        assert_eq!(sent.body["system"], "Be brief.");

        // Streamed.
        let rel = "anthropic/messages_stream_tool_use.sse";
        sim.script("m-sse", [Reply::sse_bytes(read(rel)).split_every(7)]);
        let s = p.chat_stream(&req, "m-sse", &cx).await.expect("stream");
        assert_eq!(s.meta().request_id.as_deref(), Some("req_sim_1"));
        let mut folded = s.into_response().await.expect("collect");
        folded.meta = Default::default();
        let (_, want) = decode_stream(rel);
        assert_eq!(folded, want);
        assert_eq!(sim.requests_for("m-sse")[0].body["stream"], true);

        // HTTP error, with the recorded headers.
        let rel = "anthropic/error_429_rate_limit_error.json";
        let mut reply = Reply::json(429, read_str(rel));
        let side = read_sidecar("anthropic/error_429_rate_limit_error.http.json");
        for (k, v) in &side.headers {
            if k != "content-length" && k != "content-type" && k != "connection" {
                reply = reply.header(k.as_str(), v.to_str().expect("ASCII"));
            }
        }
        sim.script("m-429", [reply]);
        let e = p.chat(&req, "m-429", &cx).await.expect_err("429");
        let want = decode_error_fixture(rel);
        assert_eq!(e, want);
        assert_eq!(e.request_id(), want.request_id());
        assert_eq!(e.retry_after(), None);

        // Error event inside a 200 stream.
        let rel = "anthropic/messages_stream_error_event_overloaded.sse";
        sim.script("m-err", [Reply::sse_bytes(read(rel))]);
        let s = p.chat_stream(&req, "m-err", &cx).await.expect("200 stream");
        let e = s.into_response().await.expect_err("error event");
        assert_eq!(e.kind(), ErrorKind::Overloaded);

        // A server answering JSON to a stream request: one answer, thinking blocks kept.
        sim.script("m-json-stream", [Reply::json(200, body)]);
        let s = p
            .chat_stream(&req, "m-json-stream", &cx)
            .await
            .expect("stream");
        let folded = s.into_response().await.expect("collect");
        let mut want = decode_json("anthropic/messages_thinking.json");
        want.meta = folded.meta.clone();
        assert_eq!(folded, want);
    })
    .await;
}

/// The key never shows: not in the provider's Debug, nor in errors that echo it.
#[tokio::test]
async fn key_never_shows() {
    guarded(async {
        let sim = Simulator::start().await.expect("simulator");
        let key = "sk-ant-test-key-0123456789";
        let p = provider_at(&sim);
        assert!(!format!("{p:?}").contains(key));
        let echo = format!(
            r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {key}"}}}}"#
        );
        sim.script("m-401", [Reply::json(401, echo)]);
        let cx = CallContext::shared().expect("client");
        let e = p
            .chat(&ChatRequest::new("x").user("q"), "m-401", &cx)
            .await
            .expect_err("401");
        assert_eq!(e.kind(), ErrorKind::Auth);
        let shown = format!("{e} {e:?} {:?}", e.body_snippet());
        assert!(!shown.contains(key), "{shown}");
        assert_eq!(p.name(), "anthropic");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Coverage
// ---------------------------------------------------------------------------------------------

/// Fails when a fixture file exists that this file does not cover, or when a listed file is
/// gone. Every listed body file (not sidecars) must also be named by some test here.
#[test]
fn fixture_folder_is_fully_covered() {
    let on_disk: BTreeSet<String> = list_folder().into_iter().collect();
    let listed: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed.len(), COVERED.len(), "duplicates in COVERED");
    let uncovered: Vec<&String> = on_disk.difference(&listed).collect();
    assert!(
        uncovered.is_empty(),
        "fixture files no test covers (add tests and list them in COVERED): {uncovered:#?}"
    );
    let missing: Vec<&String> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "COVERED lists missing files: {missing:#?}"
    );
    let source = include_str!("fixtures_anthropic.rs");
    for rel in COVERED.iter().filter(|f| !f.ends_with(".http.json")) {
        let quoted = format!("\"{rel}\"");
        assert!(
            source.matches(&quoted).count() >= 2,
            "{rel} is listed in COVERED but no test names it"
        );
    }
}
