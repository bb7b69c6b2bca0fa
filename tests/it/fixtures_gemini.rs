//! Conformance of the native Gemini provider against real recordings.
//!
//! Every file under `tests/fixtures/gemini/` is decoded here and its fields are checked
//! against values read from the recording itself (see `tests/fixtures/README.md` for each
//! file's provenance). `fixture_folder_is_fully_covered` fails when a file appears that this
//! file does not list.
//!
//! Streams are decoded the way the provider does (`feed` the body, then `finish`) and folded
//! with `StreamAccumulator`. Property tests check that splitting any stream at arbitrary points
//! changes nothing, and that every stream folds to what `decode_response` gives for the same
//! answer sent whole (tool-call ids included).
//!
//! The helpers are local (not `tests/support/fixtures.rs`, which drives the OpenAI decoders).

use std::collections::BTreeSet;
use std::time::Duration;

use polyrelay::providers::Gemini;
use polyrelay::providers::gemini::{
    decode_error, decode_response, decode_stream_array, encode_request,
};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    CallContext, ChatChunk, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message,
    Provider, Role, ThinkingBlock, ToolCall, Usage,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};

use crate::support::fixtures;
use fixtures::{Outcome, Stage, fixtures_dir, fold, read, read_json, read_str};

/// Feeds `bytes` in pieces of the given sizes (cycled; 0 counts as 1), then ends the stream.
fn decode_pieces(bytes: &[u8], sizes: &[usize]) -> Outcome {
    fixtures::decode_pieces_with(Gemini::stream_decoder(), bytes, sizes)
}

/// Every fixture file this test file exercises, checked against the folder both ways.
const COVERED: &[&str] = &[
    "gemini/error_400_api_key_invalid.http.json",
    "gemini/error_400_api_key_invalid.json",
    "gemini/error_404_not_found.http.json",
    "gemini/error_404_not_found.json",
    "gemini/error_429_quota_failure_retry_info.json",
    "gemini/error_429_resource_exhausted.http.json",
    "gemini/error_429_resource_exhausted.json",
    "gemini/genai_stream_function_call_with_id.sse",
    "gemini/genai_stream_thinking.sse",
    "gemini/genai_stream_thinking_then_function_call.sse",
    "gemini/generate_finish_max_tokens.http.json",
    "gemini/generate_finish_max_tokens.json",
    "gemini/generate_finish_safety.http.json",
    "gemini/generate_finish_safety.json",
    "gemini/generate_function_call.http.json",
    "gemini/generate_function_call.json",
    "gemini/generate_max_tokens_empty_content.http.json",
    "gemini/generate_max_tokens_empty_content.json",
    "gemini/generate_text.http.json",
    "gemini/generate_text.json",
    "gemini/generate_thinking.http.json",
    "gemini/generate_thinking.json",
    "gemini/openai_compat_tool_calls.http.json",
    "gemini/openai_compat_tool_calls.json",
    "gemini/stream_function_call.http.json",
    "gemini/stream_function_call.sse",
    "gemini/stream_text.http.json",
    "gemini/stream_text.json_array.json",
    "gemini/stream_text.sse",
    "gemini/stream_text_after_function_response.http.json",
    "gemini/stream_text_after_function_response.sse",
    "gemini/stream_thinking.http.json",
    "gemini/stream_thinking.sse",
    "gemini/vercel_function_call.json",
    "gemini/vercel_function_call_gemini3.json",
    "gemini/vercel_function_call_gemini3_stream.chunks.jsonl",
    "gemini/vercel_function_call_gemini3_stream.sse",
    "gemini/vercel_function_call_stream.chunks.jsonl",
    "gemini/vercel_function_call_stream.sse",
    "gemini/vercel_reasoning.json",
    "gemini/vercel_reasoning_gemini3.json",
    "gemini/vercel_reasoning_gemini3_stream.chunks.jsonl",
    "gemini/vercel_reasoning_gemini3_stream.sse",
    "gemini/vercel_reasoning_stream.chunks.jsonl",
    "gemini/vercel_reasoning_stream.sse",
    "gemini/vercel_text.json",
    "gemini/vercel_text_stream.chunks.jsonl",
    "gemini/vercel_text_stream.sse",
    "gemini/vertex_error_400_invalid_argument.http.json",
    "gemini/vertex_error_400_invalid_argument.json",
    "gemini/vertex_stream_function_call_no_args_partial.chunks.jsonl",
    "gemini/vertex_stream_function_call_no_args_partial.sse",
    "gemini/vertex_stream_function_call_partial_args.chunks.jsonl",
    "gemini/vertex_stream_function_call_partial_args.sse",
    "gemini/vertex_stream_function_call_partial_args_nested.chunks.jsonl",
    "gemini/vertex_stream_function_call_partial_args_nested.sse",
];

// ---------------------------------------------------------------------------------------------
// Reading fixtures
// ---------------------------------------------------------------------------------------------

fn list_folder(folder: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(fixtures_dir().join(folder)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .map(|e| e.expect("readable directory entry"))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| format!("{folder}/{}", e.file_name().to_string_lossy()))
        .collect();
    out.sort();
    out
}

fn all_sse() -> Vec<String> {
    list_folder("gemini")
        .into_iter()
        .filter(|f| f.ends_with(".sse"))
        .collect()
}

/// A `*.http.json` sidecar.
struct Sidecar {
    method: String,
    uri: String,
    status: u16,
    headers: HeaderMap,
}

fn read_sidecar(rel: &str) -> Sidecar {
    let v = read_json(rel);
    let mut headers = HeaderMap::new();
    if let Some(map) = v.pointer("/response/headers").and_then(Value::as_object) {
        for (name, values) in map {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("header name");
            for value in values.as_array().into_iter().flatten() {
                let value = HeaderValue::from_str(value.as_str().expect("string")).expect("value");
                headers.append(name.clone(), value);
            }
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
        status: v
            .pointer("/response/status/code")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or_else(|| panic!("{rel}: no status")),
        headers,
    }
}

fn sidecar_of(rel: &str) -> Option<Sidecar> {
    let stem = rel
        .strip_suffix(".json")
        .or_else(|| rel.strip_suffix(".sse"))
        .expect(".json or .sse");
    let side = format!("{stem}.http.json");
    fixtures_dir()
        .join(&side)
        .exists()
        .then(|| read_sidecar(&side))
}

fn status_from_name(rel: &str) -> u16 {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.split('_')
        .find_map(|p| p.parse::<u16>().ok().filter(|s| (100..600).contains(s)))
        .unwrap_or_else(|| panic!("no HTTP status in {rel}"))
}

/// The JSON payloads of a Gemini `.sse` body (`data: {json}` events split on blank lines).
fn sse_events(text: &str) -> Vec<Value> {
    sse_blocks(text)
        .into_iter()
        .map(|(s, e)| {
            let block = text[s..e].trim_end();
            let data = block.strip_prefix("data: ").expect("data: event");
            serde_json::from_str(data).expect("event JSON")
        })
        .collect()
}

/// Byte ranges of the events of a CRLF-framed body, each with its blank line.
fn sse_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = text[start..].find("\r\n\r\n") {
        let end = start + i + 4;
        out.push((start, end));
        start = end;
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

fn decode_whole(bytes: &[u8]) -> Outcome {
    decode_pieces(bytes, &[usize::MAX])
}

/// Decodes a whole stream fixture; panics on any error.
fn decode_stream(rel: &str) -> (Vec<ChatChunk>, ChatResponse) {
    let mut dec = Gemini::stream_decoder();
    let mut chunks = dec
        .feed(&read(rel))
        .unwrap_or_else(|e| panic!("{rel}: feed: {e:?}"));
    chunks.extend(
        dec.finish()
            .unwrap_or_else(|e| panic!("{rel}: finish: {e:?}")),
    );
    let folded = fold(&chunks);
    (chunks, folded)
}

fn decode_json(rel: &str) -> ChatResponse {
    decode_response(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e:?}"))
}

/// The events of a stream merged into the one response a non-streamed call would give:
/// each candidate's parts concatenated, its last finish reason, the last event's metadata.
fn merge_events(events: &[Value]) -> Value {
    let mut candidates: Vec<Value> = Vec::new();
    let mut top = serde_json::Map::new();
    for ev in events {
        for (k, v) in ev.as_object().expect("object") {
            if k != "candidates" {
                top.insert(k.clone(), v.clone());
            }
        }
        for (pos, c) in ev["candidates"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let index = c["index"].as_u64().unwrap_or(pos as u64) as usize;
            while candidates.len() <= index {
                candidates.push(json!({"content": {"role": "model", "parts": []}}));
            }
            let slot = &mut candidates[index];
            if let Some(parts) = c.pointer("/content/parts").and_then(Value::as_array) {
                let all = slot
                    .pointer_mut("/content/parts")
                    .and_then(Value::as_array_mut)
                    .expect("parts");
                all.extend(parts.iter().cloned());
            }
            if let Some(fr) = c.get("finishReason") {
                slot["finishReason"] = fr.clone();
            }
            if let Some(i) = c.get("index") {
                slot["index"] = i.clone();
            }
        }
    }
    top.insert("candidates".into(), Value::Array(candidates));
    Value::Object(top)
}

/// Which raw events carry content, by an independent reading of the Gemini grammar: a
/// non-empty text (or thought) part, or the end of a function call (a named call without
/// `willContinue`, the closing fragment of a streamed one, or a finish reason closing one).
fn raw_content_flags(events: &[Value]) -> Vec<bool> {
    let mut open = false;
    events
        .iter()
        .map(|ev| {
            let mut has = false;
            for c in ev["candidates"].as_array().into_iter().flatten() {
                for p in c
                    .pointer("/content/parts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if p["text"].as_str().is_some_and(|t| !t.is_empty()) {
                        has = true;
                    }
                    if let Some(fc) = p.get("functionCall") {
                        let named = fc["name"].as_str().is_some_and(|n| !n.is_empty());
                        let more = fc["willContinue"].as_bool() == Some(true);
                        if named {
                            has |= open || !more;
                            open = more;
                        } else if open && !more {
                            open = false;
                            has = true;
                        }
                    }
                }
                if c.get("finishReason").is_some() && open {
                    open = false;
                    has = true;
                }
            }
            has
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Txt {
    Exact(&'static str),
    /// Starts with, ends with, length in characters.
    Shape(&'static str, &'static str, usize),
}

impl Txt {
    #[track_caller]
    fn check(self, what: &str, actual: &str) {
        match self {
            Txt::Exact(s) => assert_eq!(actual, s, "{what}"),
            Txt::Shape(prefix, suffix, len) => {
                assert!(
                    actual.starts_with(prefix),
                    "{what}: starts {:?}",
                    actual.chars().take(60).collect::<String>()
                );
                assert!(actual.ends_with(suffix), "{what}: ends wrong");
                assert_eq!(actual.chars().count(), len, "{what}: length in characters");
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Id {
    /// `functionCall.id` as sent.
    Vendor(&'static str),
    /// Gemini sent none: a `gcall_` id of ours.
    Generated,
}

/// A tool call: id, name, arguments (JSON, compared parsed), thought signature (prefix and
/// length) if any.
struct Call {
    id: Id,
    name: &'static str,
    args: &'static str,
    sig: Option<(&'static str, usize)>,
}

const fn call(id: Id, name: &'static str, args: &'static str) -> Call {
    Call {
        id,
        name,
        args,
        sig: None,
    }
}

const fn signed(
    id: Id,
    name: &'static str,
    args: &'static str,
    sig: &'static str,
    len: usize,
) -> Call {
    Call {
        id,
        name,
        args,
        sig: Some((sig, len)),
    }
}

/// A signed thinking block: its text is the reasoning received before the signature
/// (`AllReasoning`, here always the whole reasoning) or empty.
#[derive(Clone, Copy, Debug)]
enum Thought {
    Empty,
    AllReasoning,
}

/// input, output, cache read, reasoning (Gemini has no cache writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct U(u64, u64, u64, u64);

struct Want<'a> {
    id: &'static str,
    model: &'static str,
    created: u64,
    finish: FinishReason,
    text: Txt,
    reasoning: Option<Txt>,
    calls: &'a [Call],
    blocks: &'a [(Thought, &'static str, usize)],
    usage: Option<U>,
}

impl Default for Want<'_> {
    fn default() -> Self {
        Want {
            id: "",
            model: "",
            created: 0,
            finish: FinishReason::Stop,
            text: Txt::Exact(""),
            reasoning: None,
            calls: &[],
            blocks: &[],
            usage: None,
        }
    }
}

#[track_caller]
fn assert_usage(what: &str, actual: Option<Usage>, want: U) {
    let u = actual.unwrap_or_else(|| panic!("{what}: no usage"));
    assert_eq!(
        U(
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.reasoning_tokens
        ),
        want,
        "{what}: usage (input, output, cache read, reasoning)"
    );
    assert_eq!(u.cache_write_tokens, 0, "{what}: cache writes");
}

#[track_caller]
fn check(what: &str, r: &ChatResponse, w: &Want<'_>) {
    assert_eq!(r.id, w.id, "{what}: id");
    assert_eq!(r.model, w.model, "{what}: model");
    assert_eq!(r.created, w.created, "{what}: created");
    assert_eq!(r.object, "chat.completion", "{what}: object");
    assert_eq!(r.choices.len(), 1, "{what}: choices");
    let m = &r.choices[0].message;
    assert_eq!(r.choices[0].index, 0, "{what}: index");
    assert_eq!(m.role, Role::Assistant, "{what}: role");
    assert_eq!(r.finish_reason(), Some(&w.finish), "{what}: finish reason");
    w.text.check(&format!("{what}: text"), &r.text());
    if w.calls.is_empty() || !r.text().is_empty() {
        assert!(m.content.is_some(), "{what}: content present");
    } else {
        assert_eq!(m.content, None, "{what}: no content beside tool calls");
    }
    match w.reasoning {
        Some(t) => t.check(
            &format!("{what}: reasoning"),
            r.reasoning()
                .unwrap_or_else(|| panic!("{what}: no reasoning")),
        ),
        None => assert_eq!(r.reasoning(), None, "{what}: reasoning"),
    }
    let calls = r.tool_calls();
    assert_eq!(calls.len(), w.calls.len(), "{what}: number of tool calls");
    for (i, (c, want)) in calls.iter().zip(w.calls).enumerate() {
        check_call(&format!("{what}: call {i}"), c, want);
    }
    assert_eq!(
        m.thinking_blocks.len(),
        w.blocks.len(),
        "{what}: thinking blocks {:?}",
        m.thinking_blocks
    );
    for (b, (thought, sig, len)) in m.thinking_blocks.iter().zip(w.blocks) {
        let ThinkingBlock::Thinking {
            thinking,
            signature,
            ..
        } = b
        else {
            panic!("{what}: unexpected block {b:?}");
        };
        let s = signature.as_deref().unwrap_or_default();
        assert!(s.starts_with(sig), "{what}: signature {s:.20}");
        assert_eq!(s.len(), *len, "{what}: signature length");
        match thought {
            Thought::Empty => assert_eq!(thinking, "", "{what}: block text"),
            Thought::AllReasoning => {
                assert_eq!(Some(thinking.as_str()), r.reasoning(), "{what}: block text")
            }
        }
    }
    match w.usage {
        Some(u) => assert_usage(what, r.usage, u),
        None => assert_eq!(r.usage, None, "{what}: usage"),
    }
}

#[track_caller]
fn check_call(what: &str, c: &ToolCall, w: &Call) {
    match w.id {
        Id::Vendor(id) => assert_eq!(c.id, id, "{what}: id"),
        Id::Generated => assert!(
            c.id.starts_with("gcall_")
                && c.id.len() == 22
                && c.id[6..].bytes().all(|b| b.is_ascii_hexdigit()),
            "{what}: generated id {:?}",
            c.id
        ),
    }
    assert_eq!(c.kind, "function", "{what}: type");
    assert_eq!(c.function.name, w.name, "{what}: name");
    let args: Value = serde_json::from_str(&c.function.arguments)
        .unwrap_or_else(|e| panic!("{what}: arguments not JSON: {e}"));
    let want: Value = serde_json::from_str(w.args).expect("expected args are JSON");
    assert_eq!(args, want, "{what}: arguments");
    // Compact JSON, as the wire would not have it (the recordings use ": " spacing).
    assert_eq!(
        c.function.arguments,
        want.to_string(),
        "{what}: compact arguments"
    );
    match w.sig {
        Some((prefix, len)) => {
            let s = c.thought_signature.as_deref().unwrap_or_default();
            assert!(s.starts_with(prefix), "{what}: signature {s:.20}");
            assert_eq!(s.len(), len, "{what}: signature length");
        }
        None => assert_eq!(c.thought_signature, None, "{what}: signature"),
    }
}

#[track_caller]
fn check_json(rel: &str, w: &Want<'_>) -> ChatResponse {
    let r = decode_json(rel);
    check(rel, &r, w);
    // Decoding is deterministic (generated ids included).
    assert_eq!(decode_json(rel), r, "{rel}: decoded twice");
    r
}

/// Decodes a stream fixture, checks its fold, and that it has `chunks` chunks (one per event).
#[track_caller]
fn check_sse(rel: &str, chunks: usize, w: &Want<'_>) -> (Vec<ChatChunk>, ChatResponse) {
    let (cs, r) = decode_stream(rel);
    check(rel, &r, w);
    assert_eq!(cs.len(), chunks, "{rel}: chunks");
    assert_eq!(
        cs.len(),
        sse_events(&read_str(rel)).len(),
        "{rel}: one chunk per event"
    );
    // The first delta says who speaks; no other does.
    assert_eq!(cs[0].choices[0].delta.role, Some(Role::Assistant), "{rel}");
    assert!(
        cs.iter()
            .skip(1)
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.role.is_none()),
        "{rel}: role only on the first delta"
    );
    // The finish reason arrives once, on the last chunk.
    let finishes: Vec<usize> = cs
        .iter()
        .enumerate()
        .filter(|(_, c)| c.finish_reason().is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(finishes, vec![cs.len() - 1], "{rel}: finish chunk");
    (cs, r)
}

// ---------------------------------------------------------------------------------------------
// generateContent (non-streamed)
// ---------------------------------------------------------------------------------------------

#[test]
fn generate_text() {
    check_json(
        "gemini/generate_text.json",
        &Want {
            id: "bzlXaa_EE_aHqtsPi_zw8Ao",
            model: "gemini-2.5-flash",
            text: Txt::Exact("Hello! How can I help you today?"),
            // 9 prompt; 9 candidates + 34 thoughts (total 52).
            usage: Some(U(9, 43, 0, 34)),
            ..Want::default()
        },
    );
}

#[test]
fn generate_finish_max_tokens_is_length() {
    check_json(
        "gemini/generate_finish_max_tokens.json",
        &Want {
            id: "R5MoavWNNp_8qtsP2fWD2A0",
            model: "gemini-2.5-flash",
            finish: FinishReason::Length,
            text: Txt::Exact("The capital of France is"),
            usage: Some(U(15, 5, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn generate_finish_safety_with_empty_content_is_content_filter() {
    // `content: {}` (no parts, no role) and safetyRatings with blocked: true.
    let r = check_json(
        "gemini/generate_finish_safety.json",
        &Want {
            id: "5lpeaLOIBf__698Pv8HGgAg",
            model: "gemini-1.5-flash",
            finish: FinishReason::ContentFilter,
            usage: Some(U(14, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.choices[0].message.refusal, None);
}

#[test]
fn generate_max_tokens_with_role_only_content() {
    // Gemini 2.5 Pro spent the whole budget thinking: `content: {"role": "model"}`, no parts.
    check_json(
        "gemini/generate_max_tokens_empty_content.json",
        &Want {
            id: "fH8oaunbEbr9qtsPjYGX4A0",
            model: "gemini-2.5-pro",
            finish: FinishReason::Length,
            usage: Some(U(15, 2, 0, 2)),
            ..Want::default()
        },
    );
}

#[test]
fn generate_function_call_with_thought_signature() {
    // Gemini says STOP; a turn that calls tools is reported as tool_calls.
    check_json(
        "gemini/generate_function_call.json",
        &Want {
            id: "g5YoaezOBeyrqtsPwYqL2Q8",
            model: "gemini-2.5-pro",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "get_capital",
                r#"{"country":"France"}"#,
                "CpYEAXLI2nxHJhy3F4oM",
                716,
            )],
            usage: Some(U(57, 139, 0, 124)),
            ..Want::default()
        },
    );
}

#[test]
fn generate_thinking_with_thought_parts_and_signed_text() {
    // One thought part, then the answer's text part carrying the signature.
    check_json(
        "gemini/generate_thinking.json",
        &Want {
            id: "ON4gaYT4Gc20qtsP2bSiiQ0",
            model: "gemini-3-pro-preview",
            text: Txt::Shape(
                "Crossing the street safely is a fundamental skill",
                "s rather than looking for you.",
                3017,
            ),
            reasoning: Some(Txt::Shape(
                "**A Safe Street-Crossing Guide: My Thought Process**\n\n",
                "produce the final response.\n\n\n",
                2238,
            )),
            blocks: &[(Thought::AllReasoning, "EqoeCqceAdHtim+cXhv3", 5180)],
            usage: Some(U(29, 1737, 0, 1001)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call() {
    check_json(
        "gemini/vercel_function_call.json",
        &Want {
            id: "m36LaZGyCLz1xs0PtNSB-QU",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "EskgCsYgAb4+9vtF",
                100,
            )],
            usage: Some(U(29, 908, 0, 893)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call_gemini3() {
    check_json(
        "gemini/vercel_function_call_gemini3.json",
        &Want {
            id: "JniLacKqGqH0xs0P0O776As",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "Eqo+Cqc+Ab4+9vtg",
                96,
            )],
            usage: Some(U(29, 1816, 0, 1801)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_signature_without_thought_text() {
    // Thinking without includeThoughts: no thought text, only a signature on the answer.
    check_json(
        "gemini/vercel_reasoning.json",
        &Want {
            id: "YH6LaZT7ENmPxN8P-r2J8Aw",
            model: "gemini-3-pro-preview",
            text: Txt::Exact(
                "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            ),
            blocks: &[(Thought::Empty, "EvsFCvgFAb4+9vtg", 100)],
            usage: Some(U(9, 311, 0, 282)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_gemini3() {
    check_json(
        "gemini/vercel_reasoning_gemini3.json",
        &Want {
            id: "DniLab2dFPeSxN8PpqXY4Ag",
            model: "gemini-3-pro-preview",
            text: Txt::Exact(
                "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            ),
            blocks: &[(Thought::Empty, "EswFCskFAb4+9vu5", 128)],
            usage: Some(U(9, 287, 0, 258)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_text() {
    check_json(
        "gemini/vercel_text.json",
        &Want {
            id: "Un6LacrVMcjUxs0PmJfWoQc",
            model: "gemini-3-pro-preview",
            text: Txt::Exact(
                "There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            ),
            blocks: &[(Thought::Empty, "EtoFCtcFAb4+9vtf", 100)],
            usage: Some(U(9, 272, 0, 244)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_compat_endpoint_decodes_with_the_openai_decoder() {
    // Google's OpenAI-compatible endpoint is the OpenAI provider's business: it decodes there.
    let r = polyrelay::providers::openai::decode_response(&read(
        "gemini/openai_compat_tool_calls.json",
    ))
    .expect("OpenAI-shaped");
    assert_eq!(r.id, "3SE-aKjdCcCEz7IPxpqjCA");
    assert_eq!(r.model, "gemini-2.5-pro-preview-05-06");
    assert_eq!(r.created, 1748902365);
    assert_eq!(r.finish_reason(), Some(&FinishReason::ToolCalls));
    assert_eq!(r.tool_calls().len(), 1);
    let c = &r.tool_calls()[0];
    // Gemini's compat endpoint sends an empty id.
    assert_eq!(c.id, "");
    assert_eq!(c.function.name, "get_current_time");
    assert_eq!(c.function.arguments, "{}");
    // 35 prompt, 12 completion; total 109 (hidden thinking is not broken out).
    assert_usage("openai_compat", r.usage, U(35, 12, 0, 0));
    // The signature rides in `extra_content.google.thought_signature` on the message.
    let raw = read_json("gemini/openai_compat_tool_calls.json");
    let sig = raw
        .pointer("/choices/0/message/extra_content/google/thought_signature")
        .and_then(Value::as_str)
        .expect("signature");
    assert!(sig.starts_with("AVSoXO4AzAXs7GGv"));
    // …and lands on the turn's first call, where the native API expects it back.
    assert_eq!(c.thought_signature.as_deref(), Some(sig));

    // A tool result for the empty id still finds its call when the conversation moves to the
    // native API.
    let asst = r.choices[0].message.clone();
    let req = ChatRequest::new("m")
        .user("time?")
        .message(asst)
        .message(Message::tool_result("", "12:00"));
    let body: Value =
        serde_json::from_slice(&encode_request(&req).expect("encodes")).expect("JSON");
    assert_eq!(
        body["contents"][2]["parts"][0],
        json!({"functionResponse": {"name": "get_current_time", "response": {"result": "12:00"}}})
    );
}

// ---------------------------------------------------------------------------------------------
// streamGenerateContent?alt=sse
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_text_and_its_json_array_form_agree() {
    let rel = "gemini/stream_text.sse";
    let want = Want {
        id: "w1peaMz6INOvnvgPgYfPiQY",
        model: "gemini-2.0-flash-exp",
        text: Txt::Exact("The capital of France is Paris.\n"),
        // The last chunk's cumulative usage: promptTokenCount went 15 → 13 on the last chunk.
        usage: Some(U(13, 8, 0, 0)),
        ..Want::default()
    };
    let (chunks, folded) = check_sse(rel, 3, &want);
    let texts: Vec<Option<&str>> = chunks.iter().map(ChatChunk::text).collect();
    assert_eq!(
        texts,
        [
            Some("The"),
            Some(" capital of France"),
            Some(" is Paris.\n")
        ]
    );
    // Usage on every chunk (Gemini repeats it).
    assert_usage("chunk 0", chunks[0].usage, U(15, 0, 0, 0));
    assert_usage("chunk 1", chunks[1].usage, U(15, 0, 0, 0));

    // The same chunks without ?alt=sse: a JSON array.
    let array_rel = "gemini/stream_text.json_array.json";
    let array_chunks = decode_stream_array(&read(array_rel)).expect("array decodes");
    assert_eq!(array_chunks, chunks, "{array_rel}: chunk by chunk");
    assert_eq!(
        fold(&array_chunks),
        folded,
        "{array_rel}: folded, usage included"
    );
    check(array_rel, &fold(&array_chunks), &want);
    // …and the answer sent whole.
    let whole = merge_events(&sse_events(&read_str(rel)));
    let r = decode_response(whole.to_string().as_bytes()).expect("merged");
    assert_eq!(r, folded, "unstreamed form");
}

#[test]
fn stream_function_call_in_one_chunk() {
    let rel = "gemini/stream_function_call.sse";
    let (chunks, r) = check_sse(
        rel,
        1,
        &Want {
            id: "1lpeaMTxIpW1nvgP-O3vwQY",
            model: "gemini-2.0-flash",
            finish: FinishReason::ToolCalls,
            calls: &[call(
                Id::Generated,
                "get_capital",
                r#"{"country":"France"}"#,
            )],
            usage: Some(U(52, 5, 0, 0)),
            ..Want::default()
        },
    );
    let tc = &chunks[0].choices[0].delta.tool_calls;
    assert_eq!(tc.len(), 1);
    assert_eq!(tc[0].index, Some(0));
    // One event is a whole GenerateContentResponse: decoded unstreamed, it is the same answer
    // with the same generated id.
    let data = read_str(rel);
    let unstreamed = decode_response(data.trim().strip_prefix("data: ").expect("data").as_bytes())
        .expect("decodes");
    assert_eq!(unstreamed, r);
    assert_eq!(unstreamed.tool_calls()[0].id, r.tool_calls()[0].id);
}

#[test]
fn stream_text_after_function_response() {
    check_sse(
        "gemini/stream_text_after_function_response.sse",
        2,
        &Want {
            id: "11peaI_ZJLq3nvgP0vasuQk",
            model: "gemini-2.0-flash",
            text: Txt::Exact("The temperature in Paris is 30°C.\n"),
            // promptTokenCount 169 on the first chunk, 79 on the last: the last one counts.
            usage: Some(U(79, 12, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn stream_thinking_with_signature_on_the_first_answer_chunk() {
    let rel = "gemini/stream_thinking.sse";
    let (chunks, _) = check_sse(
        rel,
        23,
        &Want {
            id: "beHBaJfEMIi-qtsP3769-Q8",
            model: "gemini-2.5-pro",
            text: Txt::Shape(
                "This is a great question! Safely crossing the street",
                "me a driver might not see you.",
                1938,
            ),
            reasoning: Some(Txt::Shape(
                "**Clarifying User Goals**\n\n",
                "circumstances or locations.\n\n\n",
                1575,
            )),
            blocks: &[(Thought::AllReasoning, "CiIB0e2Kb6Syj1a961Ef", 6152)],
            // 34 + 469 + 787 = 1290 total.
            usage: Some(U(34, 1256, 0, 787)),
            ..Want::default()
        },
    );
    // Four thought chunks, then the first answer chunk carries the signature.
    for c in &chunks[..4] {
        assert!(c.reasoning().is_some() && c.text().is_none());
    }
    assert!(
        chunks[4]
            .text()
            .is_some_and(|t| t.starts_with("This is a great question!"))
    );
    assert!(chunks[4].choices[0].delta.thinking_signature.is_some());
    let signed = chunks
        .iter()
        .filter(|c| c.choices[0].delta.thinking_signature.is_some())
        .count();
    assert_eq!(signed, 1);
    // thoughtsTokenCount is cumulative: 68, 298, 552, 787, then steady.
    let reasoning: Vec<u64> = chunks[..5]
        .iter()
        .map(|c| c.usage.expect("usage").reasoning_tokens)
        .collect();
    assert_eq!(reasoning, [68, 298, 552, 787, 787]);
}

#[test]
fn genai_stream_thinking_summaries_without_signature() {
    let (chunks, _) = check_sse(
        "gemini/genai_stream_thinking.sse",
        6,
        &Want {
            id: "nlP5afrgJ6-I-sAPut_z2Ac",
            model: "gemini-2.5-flash",
            text: Txt::Shape(
                "The sky is blue because the Earth's atmosphere",
                "ing blue light across the sky.",
                216,
            ),
            reasoning: Some(Txt::Shape(
                "**Defining Atmospheric Color**\n\n",
                " blue light across the sky.\n\n\n",
                1604,
            )),
            usage: Some(U(12, 732, 0, 697)),
            ..Want::default()
        },
    );
    let kinds: Vec<(bool, bool)> = chunks
        .iter()
        .map(|c| (c.reasoning().is_some(), c.text().is_some()))
        .collect();
    assert_eq!(
        kinds,
        [
            (true, false),
            (true, false),
            (true, false),
            (true, false),
            (false, true),
            (false, true)
        ]
    );
}

#[test]
fn genai_stream_thinking_then_function_call_with_id() {
    check_sse(
        "gemini/genai_stream_thinking_then_function_call.sse",
        8,
        &Want {
            id: "VYEPauj2Noe3jMcP_dvjoQg",
            model: "gemini-3.1-pro-preview",
            finish: FinishReason::ToolCalls,
            text: Txt::Shape(
                "To determine which of these three cities is in Africa",
                "ather for Cairo in Celsius. \n\n",
                440,
            ),
            reasoning: Some(Txt::Shape(
                "**Defining the Problem**\n\n",
                " but the first step is key.\n\n\n",
                322,
            )),
            calls: &[signed(
                Id::Vendor("u959pftr"),
                "get_weather",
                r#"{"country":"Egypt","unit":"C","city":"Cairo"}"#,
                "EpoICpcIAQw51sc78WQ2",
                1404,
            )],
            usage: Some(U(135, 362, 0, 226)),
            ..Want::default()
        },
    );
}

#[test]
fn genai_stream_function_call_with_id_and_empty_text_part() {
    let (chunks, _) = check_sse(
        "gemini/genai_stream_function_call_with_id.sse",
        1,
        &Want {
            id: "QFiDas-DJqmSjrEPraSZsAQ",
            model: "gemini-3.7-flash",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Vendor("call_3091305"),
                "get_weather",
                r#"{"unit":"C","city":"Cairo"}"#,
                "EoQDCoEDARFNMg/tvHid",
                524,
            )],
            usage: Some(U(90, 98, 0, 76)),
            ..Want::default()
        },
    );
    // The empty text part beside the call is no content.
    assert_eq!(chunks[0].text(), None);
}

#[test]
fn vercel_text_stream_signature_on_a_final_empty_part() {
    check_sse(
        "gemini/vercel_text_stream.sse",
        3,
        &Want {
            id: "bH6LaZW8Fp_3nsEPqtaSwQ4",
            model: "gemini-3-pro-preview",
            text: Txt::Exact("There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y"),
            blocks: &[(Thought::Empty, "EqsFCqgFAb4+9vvt", 916)],
            usage: Some(U(9, 208, 0, 185)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_stream() {
    check_sse(
        "gemini/vercel_reasoning_stream.sse",
        3,
        &Want {
            id: "dX6LadKVC7SZ28oPr9yJoQs",
            model: "gemini-3-pro-preview",
            text: Txt::Exact(
                "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
            ),
            blocks: &[(Thought::Empty, "Eo0HCooHAb4+9vut", 1216)],
            usage: Some(U(9, 285, 0, 256)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_reasoning_gemini3_stream() {
    check_sse(
        "gemini/vercel_reasoning_gemini3_stream.sse",
        3,
        &Want {
            id: "M3iLaY-AI7zTxN8P3Piw4Qg",
            model: "gemini-3-pro-preview",
            text: Txt::Exact("There are **3** \"r\"s in strawberry.\n\nSt**r**awbe**rr**y"),
            blocks: &[(Thought::Empty, "EpAICo0IAb4+9vuk", 1392)],
            usage: Some(U(9, 325, 0, 302)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call_stream() {
    check_sse(
        "gemini/vercel_function_call_stream.sse",
        2,
        &Want {
            id: "b36LacjwM668nsEP2tbsgQQ",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "EqUCCqICAb4+9vsh",
                396,
            )],
            usage: Some(U(29, 60, 0, 45)),
            ..Want::default()
        },
    );
}

#[test]
fn vercel_function_call_gemini3_stream() {
    check_sse(
        "gemini/vercel_function_call_gemini3_stream.sse",
        2,
        &Want {
            id: "QHiLaa6LBrb8vdIPoNztsAg",
            model: "gemini-3-pro-preview",
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "weather",
                r#"{"location":"San Francisco"}"#,
                "EpEgCo4gAb4+9vvW",
                5488,
            )],
            usage: Some(U(29, 819, 0, 804)),
            ..Want::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Vertex streamed function-call arguments (partialArgs)
// ---------------------------------------------------------------------------------------------

/// 2026-04-02T17:03:50.399550Z
const PARTIAL_ARGS_CREATED: u64 = 1_775_149_430;

#[test]
fn vertex_stream_partial_args_assemble_into_whole_calls() {
    let rel = "gemini/vertex_stream_function_call_partial_args.sse";
    let (chunks, _) = check_sse(
        rel,
        8,
        &Want {
            id: "dqHOab6xGLzWodAPkPuViA4",
            model: "gemini-3.1-pro-preview",
            created: PARTIAL_ARGS_CREATED,
            finish: FinishReason::ToolCalls,
            calls: &[
                signed(
                    Id::Generated,
                    "getWeather",
                    r#"{"location":"Boston"}"#,
                    "CiMBjz1rX25KieIB4d4A",
                    1032,
                ),
                call(
                    Id::Generated,
                    "getWeather",
                    r#"{"location":"San Francisco"}"#,
                ),
            ],
            usage: Some(U(26, 155, 0, 132)),
            ..Want::default()
        },
    );
    // Each call is emitted whole when its closing `functionCall: {}` arrives.
    let with_calls: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.has_content())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(with_calls, [3, 7]);
    // Vertex sends usageMetadata {trafficType} without counts until the end: no usage there.
    assert!(chunks[..7].iter().all(|c| c.usage.is_none()));
}

#[test]
fn vertex_stream_no_args_and_partial_args_calls() {
    check_sse(
        "gemini/vertex_stream_function_call_no_args_partial.sse",
        15,
        &Want {
            id: "_vr4aYiWEJnYodAPkujX0QM",
            model: "gemini-3-flash-preview",
            // 2026-05-04T20:01:02.264968Z
            created: 1_777_924_862,
            finish: FinishReason::ToolCalls,
            reasoning: Some(Txt::Shape(
                "**Processing User Requests**\n\n",
                " in parallel as instructed.\n\n\n",
                320,
            )),
            calls: &[
                signed(
                    Id::Generated,
                    "read_theme",
                    "{}",
                    "AY89a18a8/Loc2wl5oft",
                    1060,
                ),
                call(Id::Generated, "read_screen", r#"{"id":"A"}"#),
                call(Id::Generated, "read_screen", r#"{"id":"B"}"#),
                call(Id::Generated, "read_screen", r#"{"id":"C"}"#),
            ],
            usage: Some(U(249, 241, 0, 183)),
            ..Want::default()
        },
    );
}

#[test]
fn vertex_stream_nested_partial_args() {
    let rel = "gemini/vertex_stream_function_call_partial_args_nested.sse";
    let (_, r) = check_sse(
        rel,
        76,
        &Want {
            id: "tjXVaYaxFISTq8YP_MWiyAo",
            model: "gemini-3.1-pro-preview",
            // 2026-04-07T16:49:58.333958Z
            created: 1_775_580_598,
            finish: FinishReason::ToolCalls,
            calls: &[signed(
                Id::Generated,
                "cookRecipe",
                r#"{"recipe":{"ingredients":[
                    {"amount":"16 oz","name":"Lasagna noodles"},
                    {"amount":"1 lb","name":"Ground beef"},
                    {"amount":"15 oz","name":"Ricotta cheese"},
                    {"amount":"3 cups","name":"Mozzarella cheese"},
                    {"amount":"1/2 cup","name":"Parmesan cheese"},
                    {"amount":"24 oz","name":"Tomato sauce"},
                    {"amount":"1","name":"Egg"},
                    {"amount":"2 cloves","name":"Garlic"},
                    {"amount":"1 tsp","name":"Salt"},
                    {"amount":"1/2 tsp","name":"Pepper"}],
                  "name":"Lasagna",
                  "steps":[
                    "Preheat oven to 375°F (190°C).",
                    "Cook lasagna noodles according to package directions, drain and set aside.",
                    "Brown ground beef with minced garlic in a skillet. Drain fat and stir in tomato sauce. Simmer for 10 minutes.",
                    "In a bowl, mix ricotta cheese, egg, salt, pepper, and Parmesan cheese.",
                    "In a 9x13 baking dish, spread a thin layer of meat sauce.",
                    "Layer noodles, ricotta mixture, mozzarella, and meat sauce. Repeat.",
                    "Top with remaining mozzarella cheese.",
                    "Cover with foil and bake for 25 minutes.",
                    "Remove foil and bake for another 25 minutes until golden.",
                    "Let stand for 15 minutes before serving."]}}"#,
                "CmIBjz1rX0OQAtrZnJaE",
                5832,
            )],
            usage: Some(U(31, 1710, 0, 1026)),
            ..Want::default()
        },
    );
    // A string value streamed in pieces ("…drain and set aside" + ".") is joined.
    let args: Value = serde_json::from_str(&r.tool_calls()[0].function.arguments).expect("JSON");
    assert_eq!(
        args.pointer("/recipe/steps/1").and_then(Value::as_str),
        Some("Cook lasagna noodles according to package directions, drain and set aside.")
    );
}

// ---------------------------------------------------------------------------------------------
// Chunk logs, unstreamed forms, splits, cuts
// ---------------------------------------------------------------------------------------------

/// Each `.sse` converted from a chunk log is exactly the log framed as `data: <line>\r\n\r\n`,
/// decodes to one chunk per line, and the same lines carry content.
#[test]
fn converted_streams_match_their_chunk_logs() {
    const LOGS: &[&str] = &[
        "gemini/vercel_function_call_gemini3_stream.chunks.jsonl",
        "gemini/vercel_function_call_stream.chunks.jsonl",
        "gemini/vercel_reasoning_gemini3_stream.chunks.jsonl",
        "gemini/vercel_reasoning_stream.chunks.jsonl",
        "gemini/vercel_text_stream.chunks.jsonl",
        "gemini/vertex_stream_function_call_no_args_partial.chunks.jsonl",
        "gemini/vertex_stream_function_call_partial_args.chunks.jsonl",
        "gemini/vertex_stream_function_call_partial_args_nested.chunks.jsonl",
    ];
    let on_disk: BTreeSet<String> = list_folder("gemini")
        .into_iter()
        .filter(|f| f.ends_with(".chunks.jsonl"))
        .collect();
    let listed: BTreeSet<String> = LOGS.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, listed, "chunk logs");
    for log in LOGS {
        let sse = log.replace(".chunks.jsonl", ".sse");
        let lines: Vec<String> = read_str(log)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let framed: String = lines.iter().map(|l| format!("data: {l}\r\n\r\n")).collect();
        assert_eq!(read_str(&sse), framed, "{sse} is {log} framed");
        let (chunks, _) = decode_stream(&sse);
        assert_eq!(chunks.len(), lines.len(), "{sse}: one chunk per line");
        let raw: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        let decoded: Vec<bool> = chunks.iter().map(ChatChunk::has_content).collect();
        assert_eq!(decoded, raw_content_flags(&raw), "{sse}: content chunks");
    }
}

/// Content chunks of every stream, against the independent reading of the events.
#[test]
fn content_chunks_follow_the_events() {
    for rel in all_sse() {
        let (chunks, _) = decode_stream(&rel);
        let decoded: Vec<bool> = chunks.iter().map(ChatChunk::has_content).collect();
        assert_eq!(
            decoded,
            raw_content_flags(&sse_events(&read_str(&rel))),
            "{rel}"
        );
    }
}

/// Every stream folds to what `decode_response` gives for the same answer sent whole: text,
/// reasoning, thinking blocks, tool calls (generated ids included), finish reason, usage.
#[test]
fn every_stream_folds_like_its_unstreamed_form() {
    for rel in all_sse() {
        let (_, folded) = decode_stream(&rel);
        let whole = merge_events(&sse_events(&read_str(&rel)));
        let r = decode_response(whole.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: merged form: {e:?}"));
        assert_eq!(r, folded, "{rel}");
        // And as the JSON-array form of the stream.
        let array = Value::Array(sse_events(&read_str(&rel)));
        let chunks = decode_stream_array(array.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: array form: {e:?}"));
        assert_eq!(fold(&chunks), folded, "{rel}: array form");
    }
}

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
    assert_eq!(files.len(), 15, ".sse files");
    for rel in files {
        let bytes = read(&rel);
        let whole = decode_whole(&bytes);
        assert!(whole.error.is_none(), "{rel}: {:?}", whole.error);
        let folded = fold(&whole.chunks);
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&piece_sizes(), |sizes| {
            let split = decode_pieces(&bytes, &sizes);
            if split != whole || fold(&split.chunks) != folded {
                return Err(TestCaseError::fail(format!(
                    "{rel}: pieces {sizes:?} give {} chunks / {:?}",
                    split.chunks.len(),
                    split.error
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{rel}: {e}");
        }
        assert_eq!(decode_pieces(&bytes, &[1]), whole, "{rel}: 1-byte pieces");
    }
}

/// Cut before the finish event is complete: interrupted, with what came before delivered.
/// Cut after the finish event's JSON (even without its blank line): whole.
#[test]
fn cuts_before_and_after_the_finish_event() {
    for rel in all_sse() {
        let text = read_str(&rel);
        let whole = decode_whole(text.as_bytes());
        let blocks = sse_blocks(&text);
        let (start, end) = *blocks
            .iter()
            .find(|(s, e)| text[*s..*e].contains("\"finishReason\""))
            .unwrap_or_else(|| panic!("{rel}: no finish event"));
        let json_end = start + text[start..end].trim_end().len();
        for cut in [
            start,
            start + "data: ".len(),
            (start + json_end) / 2,
            json_end - 1,
        ] {
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
                whole.chunks.starts_with(&out.chunks),
                "{rel} cut at {cut}: delivered chunks are a prefix"
            );
        }
        for cut in [json_end, json_end + 1, json_end + 2, end] {
            let out = decode_whole(&text.as_bytes()[..cut]);
            assert_eq!(out, whole, "{rel} cut at {cut} (after the finish event)");
        }
    }
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    let rel = "gemini/stream_thinking.sse";
    let text = read_str(rel);
    let cut = sse_blocks(&text)[9].1;
    let mut dec = Gemini::stream_decoder();
    let chunks = dec.feed(&text.as_bytes()[..cut]).expect("feed");
    assert_eq!(chunks.len(), 10);
    let e = dec.finish().expect_err("cut");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(
        e.message().contains("10 chunks") && e.message().contains("10 with content"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

struct WantErr {
    kind: ErrorKind,
    status: u16,
    code: &'static str,
    retry_after: Option<Duration>,
}

/// Decodes an error fixture with its sidecar's status and headers (or its name's status) and
/// checks it; the message is the body's `error.message`.
#[track_caller]
fn check_error(rel: &str, w: WantErr) -> Error {
    let body = read(rel);
    let e = match sidecar_of(rel) {
        Some(side) => {
            assert_eq!(side.status, status_from_name(rel), "{rel}: sidecar status");
            decode_error(side.status, &side.headers, &body)
        }
        None => decode_error(status_from_name(rel), &HeaderMap::new(), &body),
    };
    assert_eq!(e.kind(), w.kind, "{rel}: kind ({e:?})");
    assert_eq!(e.status(), Some(w.status), "{rel}: status");
    assert_eq!(e.code(), Some(w.code), "{rel}: code");
    let v = read_json(rel);
    assert_eq!(
        Some(e.message()),
        v.pointer("/error/message").and_then(Value::as_str),
        "{rel}: message"
    );
    assert_eq!(e.retry_after(), w.retry_after, "{rel}: retry-after");
    assert!(e.body_snippet().is_some(), "{rel}: body kept");
    e
}

#[test]
fn error_400_api_key_invalid_is_auth() {
    // INVALID_ARGUMENT by status, but ErrorInfo.reason says the key is the problem.
    let e = check_error(
        "gemini/error_400_api_key_invalid.json",
        WantErr {
            kind: ErrorKind::Auth,
            status: 400,
            code: "API_KEY_INVALID",
            retry_after: None,
        },
    );
    assert_eq!(
        e.message(),
        "API key not valid. Please pass a valid API key."
    );
    // The recorded response said `text/event-stream` although the body is JSON.
    let side = read_sidecar("gemini/error_400_api_key_invalid.http.json");
    assert_eq!(
        side.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
}

#[test]
fn error_404_not_found() {
    let e = check_error(
        "gemini/error_404_not_found.json",
        WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: "NOT_FOUND",
            retry_after: None,
        },
    );
    assert!(
        e.message()
            .starts_with("models/gemini-3.6-flahs is not found")
    );
}

#[test]
fn error_429_per_day_quota_is_quota_exhausted_with_retry_delay() {
    // QuotaFailure names GenerateRequestsPerDayPerProjectPerModel-FreeTier; RetryInfo says 36s
    // (the message says 36.43s).
    check_error(
        "gemini/error_429_quota_failure_retry_info.json",
        WantErr {
            kind: ErrorKind::QuotaExhausted,
            status: 429,
            code: "RESOURCE_EXHAUSTED",
            retry_after: Some(Duration::from_secs(36)),
        },
    );
}

#[test]
fn error_429_resource_exhausted_is_rate_limited() {
    check_error(
        "gemini/error_429_resource_exhausted.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: "RESOURCE_EXHAUSTED",
            retry_after: None,
        },
    );
}

#[test]
fn retry_info_without_per_day_quota_is_rate_limited() {
    // The recorded body with a per-minute quota instead: a transient limit with its delay.
    let body = read_str("gemini/error_429_quota_failure_retry_info.json")
        .replace(
            "GenerateRequestsPerDayPerProjectPerModel",
            "GenerateRequestsPerMinutePerProjectPerModel",
        )
        .replace("\"36s\"", "\"45.8s\"");
    let e = decode_error(429, &HeaderMap::new(), body.as_bytes());
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(45_800)));
}

#[test]
fn vertex_error_400_invalid_argument() {
    check_error(
        "gemini/vertex_error_400_invalid_argument.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: "INVALID_ARGUMENT",
            retry_after: None,
        },
    );
}

#[test]
fn other_statuses() {
    let body = |code: u16, status: &str, msg: &str| {
        format!(r#"{{"error":{{"code":{code},"message":"{msg}","status":"{status}"}}}}"#)
    };
    for (code, status, msg, kind) in [
        (
            403,
            "PERMISSION_DENIED",
            "Permission denied.",
            ErrorKind::Auth,
        ),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
            ErrorKind::Auth,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            ErrorKind::Server,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded.",
            ErrorKind::Overloaded,
        ),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline exceeded.",
            ErrorKind::Timeout,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ErrorKind::ContextLengthExceeded,
        ),
    ] {
        let e = decode_error(code, &HeaderMap::new(), body(code, status, msg).as_bytes());
        assert_eq!(e.kind(), kind, "{status}");
        assert_eq!(e.code(), Some(status));
        assert_eq!(e.message(), msg);
    }
}

#[test]
fn errors_inside_streams() {
    // The README's shape for the JSON-array stream: `[{"error": {…}}]`.
    let array = br#"[{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]"#;
    let e = decode_stream_array(array).expect_err("error element");
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.status(), Some(503));
    assert_eq!(
        decode_error(503, &HeaderMap::new(), array).kind(),
        ErrorKind::Overloaded
    );

    // An error event after two events of a recorded SSE stream: those chunks, then the error.
    let text = read_str("gemini/stream_text.sse");
    let cut = sse_blocks(&text)[1].1;
    let body = format!(
        "{}data: {{\"error\": {{\"code\": 500, \"message\": \"Internal error encountered.\", \"status\": \"INTERNAL\"}}}}\r\n\r\n",
        &text[..cut]
    );
    let out = decode_whole(body.as_bytes());
    assert_eq!(out.chunks.len(), 2);
    let (stage, e) = out.error.expect("error");
    assert_eq!(stage, Stage::Feed);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.message(), "Internal error encountered.");

    // A truncated JSON array is an interrupted stream.
    let arr = read_str("gemini/stream_text.json_array.json");
    let e = decode_stream_array(&arr.as_bytes()[..arr.len() / 2]).expect_err("cut");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    // An array whose last element has no finish reason is too.
    let first_two = Value::Array(sse_events(&text).into_iter().take(2).collect());
    let e = decode_stream_array(first_two.to_string().as_bytes()).expect_err("no finish");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
}

#[test]
fn blocked_prompt_is_content_filtered() {
    let body = br#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-flash"}"#;
    let e = decode_response(body).expect_err("blocked");
    assert_eq!(e.kind(), ErrorKind::ContentFiltered);
    assert_eq!(e.code(), Some("PROHIBITED_CONTENT"));
    let sse = format!("data: {}\r\n\r\n", String::from_utf8_lossy(body));
    let (_, e) = decode_whole(sse.as_bytes()).error.expect("blocked stream");
    assert_eq!(e.kind(), ErrorKind::ContentFiltered);
}

// ---------------------------------------------------------------------------------------------
// Sidecars and the provider over HTTP
// ---------------------------------------------------------------------------------------------

/// Every sidecar belongs to a body file and agrees with it, and the recorded request URI is
/// the one `Gemini::endpoint` builds for that model.
#[test]
fn sidecars_agree_with_their_bodies_and_endpoints() {
    let mut seen = 0;
    for rel in list_folder("gemini") {
        let Some(stem) = rel.strip_suffix(".http.json") else {
            continue;
        };
        seen += 1;
        let side = read_sidecar(&rel);
        assert_eq!(side.method, "POST", "{rel}");
        let content_type = side
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let sse = format!("{stem}.sse");
        let json = format!("{stem}.json");
        let is_error = stem
            .rsplit('/')
            .next()
            .is_some_and(|n| n.contains("error_"));
        if fixtures_dir().join(&sse).exists() {
            assert_eq!(side.status, 200, "{rel}");
            assert!(content_type.contains("event-stream"), "{rel}");
        } else {
            assert!(fixtures_dir().join(&json).exists(), "{rel}: no body");
            if is_error {
                assert_eq!(side.status, status_from_name(&json), "{rel}");
            } else {
                assert_eq!(side.status, 200, "{rel}");
                assert!(content_type.contains("application/json"), "{rel}");
            }
        }
        if side.uri.ends_with("/openai/chat/completions") {
            continue; // the OpenAI-compatible endpoint
        }
        let (base, rest) = side
            .uri
            .split_once("/models/")
            .unwrap_or_else(|| panic!("{rel}: {}", side.uri));
        let (model, method) = rest.split_once(':').expect("model:method");
        let stream = method.starts_with("streamGenerateContent");
        let built = Gemini::new("k")
            .base_url(base)
            .endpoint(model, stream)
            .expect("endpoint");
        assert_eq!(built, side.uri, "{rel}");
        // Stream bodies go with stream URIs, JSON bodies with generateContent (errors aside).
        if !is_error {
            assert_eq!(stream, fixtures_dir().join(&sse).exists(), "{rel}");
        }
    }
    assert_eq!(seen, 15, "sidecars");
}

const KEY: &str = "AIzaSy-DO-NOT-LEAK-0123456789abcdef";

async fn sim_and_provider() -> (Simulator, Gemini, CallContext) {
    let sim = Simulator::start().await.expect("simulator");
    let g = Gemini::new(KEY).base_url(&format!("{}/v1beta", sim.base_url()));
    let cx = CallContext::new(reqwest::Client::new());
    (sim, g, cx)
}

#[tokio::test]
async fn provider_chat_over_http() {
    let (sim, g, cx) = sim_and_provider().await;
    sim.script(
        "gemini-2.5-pro",
        [Reply::json(
            200,
            read_str("gemini/generate_function_call.json"),
        )],
    );
    let req = ChatRequest::new("route")
        .system("Be brief.")
        .user("Capital of France?");
    let mut r = g.chat(&req, "gemini-2.5-pro", &cx).await.expect("chat");
    // The simulator's `x-request-id`.
    assert_eq!(r.meta.request_id.take().as_deref(), Some("req_sim_0"));
    assert_eq!(
        r.meta.status.take(),
        Some(200),
        "an HTTP provider reports the status"
    );
    assert_eq!(r, decode_json("gemini/generate_function_call.json"));
    assert_eq!(g.name(), "gemini");

    let seen = &sim.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(KEY));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert!(!seen.path.contains(KEY) && !seen.path.contains("key="));
    assert_eq!(
        seen.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]}
        })
    );
}

#[tokio::test]
async fn provider_stream_over_http_sse_and_json_array() {
    let (sim, g, cx) = sim_and_provider().await;
    let req = ChatRequest::new("route").user("Capital of France?");
    sim.script(
        "gemini-2.0-flash-exp",
        [
            Reply::sse_bytes(read("gemini/stream_text.sse")).split_every(7),
            Reply::raw(
                200,
                "application/json",
                read("gemini/stream_text.json_array.json"),
            ),
        ],
    );
    let (_, want) = decode_stream("gemini/stream_text.sse");
    for (n, model) in ["gemini-2.0-flash-exp", "models/gemini-2.0-flash-exp"]
        .into_iter()
        .enumerate()
    {
        let s = g.chat_stream(&req, model, &cx).await.expect("stream");
        assert_eq!(
            s.meta().request_id.as_deref(),
            Some(format!("req_sim_{n}").as_str())
        );
        let mut r = s.into_response().await.expect("collect");
        r.meta = Default::default();
        assert_eq!(r, want, "request {n}");
    }
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse",
            "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse"
        ]
    );
}

#[tokio::test]
async fn provider_errors_over_http_are_typed_and_redacted() {
    let (sim, g, cx) = sim_and_provider().await;
    sim.script(
        "gemini-3.6-flash",
        [Reply::raw(
            429,
            "application/json; charset=UTF-8",
            read("gemini/error_429_quota_failure_retry_info.json"),
        )],
    );
    let req = ChatRequest::new("route").user("hi");
    let e = g
        .chat(&req, "gemini-3.6-flash", &cx)
        .await
        .expect_err("429");
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(36)));

    // A vendor echoing the key: never in the error, whatever its form.
    let echo = format!(
        r#"{{"error":{{"code":400,"message":"API key not valid: {KEY}","status":"INVALID_ARGUMENT","details":[{{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}}]}}}}"#
    );
    sim.script(
        "gemini-2.5-flash",
        [Reply::raw(400, "text/event-stream", echo)],
    );
    let e = g
        .chat_stream(&req, "gemini-2.5-flash", &cx)
        .await
        .expect_err("400");
    assert_eq!(e.kind(), ErrorKind::Auth);
    for text in [format!("{e}"), format!("{e:?}"), format!("{g:?}")] {
        assert!(!text.contains(KEY), "key leaked: {text}");
    }
    assert!(e.message().contains("[REDACTED]"));

    // Errors inside a 200 answer: an SSE error event, a JSON-array error element, a body that
    // is not a response. The key is redacted from each (message, body, and source chain).
    let event = format!(
        r#"{{"error": {{"code": 500, "message": "internal error for key {KEY}", "status": "INTERNAL"}}}}"#
    );
    sim.script(
        "gemini-2.5-pro",
        [
            Reply::sse_bytes(format!("data: {event}\r\n\r\n")),
            Reply::raw(200, "application/json", format!("[{event}]")),
            Reply::json(200, format!("<html>proxy error {KEY}</html>")),
        ],
    );
    let s = g
        .chat_stream(&req, "gemini-2.5-pro", &cx)
        .await
        .expect("200");
    let sse_err = s.into_response().await.expect_err("error event");
    assert_eq!(sse_err.kind(), ErrorKind::Server);
    let array_err = g
        .chat_stream(&req, "gemini-2.5-pro", &cx)
        .await
        .expect_err("error element before any chunk");
    assert_eq!(array_err.kind(), ErrorKind::Server);
    let decode_err = g
        .chat(&req, "gemini-2.5-pro", &cx)
        .await
        .expect_err("not JSON");
    assert_eq!(decode_err.kind(), ErrorKind::Decode);
    for e in [sse_err, array_err, decode_err] {
        let mut texts = vec![format!("{e}"), format!("{e:?}")];
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            texts.push(format!("{s} {s:?}"));
            src = s.source();
        }
        for t in texts {
            assert!(!t.contains(KEY), "key leaked: {t}");
        }
    }
}

#[tokio::test]
async fn provider_replays_signed_tool_turns() {
    // The call from a recorded Gemini 3 answer goes back with its signature; a Gemini 3 turn
    // whose calls came from elsewhere gets the documented sentinel.
    let (sim, g, cx) = sim_and_provider().await;
    let first = decode_json("gemini/vercel_function_call_gemini3.json");
    let call = first.tool_calls()[0].clone();
    let foreign = ToolCall::function("call_from_openai", "weather", r#"{"location":"Paris"}"#);
    let req = ChatRequest::new("route")
        .user("Weather in SF?")
        .message(first.choices[0].message.clone())
        .message(Message::tool_result(call.id.clone(), r#"{"temp": 18}"#))
        .message(Message::assistant_tool_calls(vec![foreign]))
        .message(Message::tool_result("call_from_openai", "sunny"));
    sim.script(
        "gemini-3-pro-preview",
        [Reply::json(200, read_str("gemini/vercel_text.json"))],
    );
    g.chat(&req, "gemini-3-pro-preview", &cx)
        .await
        .expect("chat");
    let body = &sim.requests()[0].body;
    let turns = body["contents"].as_array().expect("contents");
    assert_eq!(turns.len(), 5);
    assert_eq!(
        turns[1]["parts"][0]["thoughtSignature"].as_str(),
        call.thought_signature.as_deref()
    );
    assert!(
        turns[1]["parts"][0]["functionCall"].get("id").is_none(),
        "generated ids stay here"
    );
    assert_eq!(
        turns[2]["parts"][0],
        json!({"functionResponse": {"name": "weather", "response": {"temp": 18}}})
    );
    assert_eq!(
        turns[3]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert_eq!(
        turns[3]["parts"][0]["functionCall"]["id"],
        "call_from_openai"
    );
}

#[test]
fn fixture_folder_is_fully_covered() {
    let on_disk: BTreeSet<String> = list_folder("gemini").into_iter().collect();
    let listed: BTreeSet<String> = COVERED.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed.len(), COVERED.len(), "duplicates in COVERED");
    let uncovered: Vec<&String> = on_disk.difference(&listed).collect();
    assert!(
        uncovered.is_empty(),
        "fixture files no test covers: {uncovered:#?}"
    );
    let missing: Vec<&String> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "COVERED lists missing files: {missing:#?}"
    );
    let source = include_str!("fixtures_gemini.rs");
    for rel in COVERED.iter().filter(|f| !f.ends_with(".http.json")) {
        assert!(
            source.matches(&format!("\"{rel}\"")).count() >= 2,
            "{rel} is listed in COVERED but no test names it"
        );
    }
}
