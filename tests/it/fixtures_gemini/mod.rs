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

mod answers;
mod errors;
mod forms;
mod provider;
mod streams;

use std::time::Duration;

use polyrelay::providers::gemini::{
    decode_error, decode_response, decode_stream_array, encode_request,
};
use polyrelay::providers::{ChunkDecoder, EventHandler, Gemini};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    CallContext, ChatChunk, ChatRequest, ChatResponse, Error, ErrorKind, FinishReason, Message,
    Provider, Role, ThinkingBlock, ToolCall,
};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::fixtures::*;

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

/// The Gemini suite for the shared runner.
pub(super) struct Gem;

impl Vendor for Gem {
    const FOLDERS: &'static [&'static str] = &["gemini"];
    /// Gemini frames its events with CRLF.
    const BLOCK_END: &'static str = "\r\n\r\n";
    type Want<'a> = Want<'a>;

    fn stream_decoder() -> ChunkDecoder<impl EventHandler> {
        Gemini::stream_decoder()
    }

    fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
        decode_response(body)
    }

    fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
        decode_error(status, headers, body)
    }

    fn check(what: &str, r: &ChatResponse, w: &Want<'_>) {
        check_answer(what, r, w);
    }

    /// Also: decoding is deterministic (generated ids included).
    fn check_json(rel: &str, w: &Want<'_>) -> ChatResponse {
        let r = Self::decode_json(rel);
        check_answer(rel, &r, w);
        assert_eq!(Self::decode_json(rel), r, "{rel}: decoded twice");
        r
    }

    fn check_error_extra(rel: &str, e: &Error, _: &WantErr) {
        assert!(e.body_snippet().is_some(), "{rel}: body kept");
    }
}

/// Decodes a stream fixture, checks its fold, and that it has `chunks` chunks (one per event).
#[track_caller]
fn check_stream(rel: &str, chunks: usize, w: &Want<'_>) -> (Vec<ChatChunk>, ChatResponse) {
    let (cs, r) = Gem::check_sse(rel, w);
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

/// The JSON payloads of a Gemini `.sse` body (`data: {json}` events split on blank lines).
fn sse_events(text: &str) -> Vec<Value> {
    Gem::sse_blocks(text)
        .into_iter()
        .map(|(s, e)| {
            let block = text[s..e].trim_end();
            let data = block.strip_prefix("data: ").expect("data: event");
            serde_json::from_str(data).expect("event JSON")
        })
        .collect()
}

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

pub(super) struct Want<'a> {
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
fn check_answer(what: &str, r: &ChatResponse, w: &Want<'_>) {
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
