//! Conformance of the OpenAI-family decoders against real vendor recordings.
//!
//! Every file under the OpenAI-compatible fixture folders (`tests/fixtures/{openai, deepseek,
//! mistral, qwen, groq, xai, openrouter, moonshot, cerebras, perplexity, ollama, vllm, zai,
//! openai_compat}`) is decoded here and its fields are checked against values read from the
//! recording itself (see `tests/fixtures/README.md` for each file's provenance).
//! `fixture_folders_are_fully_covered` fails when a file appears that this file does not list.
//!
//! Streams are decoded the way the provider does (`feed` the body, then `finish`) and folded with
//! `StreamAccumulator`. A property test checks that splitting any stream at arbitrary points
//! changes nothing.

mod compatible;
mod errors;
mod gateways;
mod openai;
mod streams;

use polyrelay::providers::openai::{decode_error, decode_response};
use polyrelay::providers::{ChunkDecoder, EventHandler, OpenAi};
use polyrelay::{ChatResponse, Error, FinishReason, Role};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::support::fixtures::*;

/// The folders this file covers (`moonshot` has no recordings yet; it is listed so that a
/// recording added there must be covered too).
pub(super) const FOLDERS: &[&str] = &[
    "openai",
    "deepseek",
    "mistral",
    "qwen",
    "groq",
    "xai",
    "openrouter",
    "moonshot",
    "cerebras",
    "perplexity",
    "ollama",
    "vllm",
    "zai",
    "openai_compat",
];

/// Every fixture file this test file exercises. `fixture_folders_are_fully_covered` checks this
/// list against the folders, both ways.
const COVERED: &[&str] = &[
    // openai
    "openai/azure_chat_stream_content_filter_results.chunks.jsonl",
    "openai/azure_chat_stream_content_filter_results.sse",
    "openai/azure_error_400_content_filter.json",
    "openai/chat_stream_finish_length.sse",
    "openai/chat_stream_gpt5_obfuscation.http.json",
    "openai/chat_stream_gpt5_obfuscation.sse",
    "openai/chat_stream_json_object.sse",
    "openai/chat_stream_json_schema.sse",
    "openai/chat_stream_logprobs.sse",
    "openai/chat_stream_n3_choices.sse",
    "openai/chat_stream_parallel_tool_calls.sse",
    "openai/chat_stream_refusal.sse",
    "openai/chat_stream_refusal_logprobs.sse",
    "openai/chat_stream_text_after_tool_include_usage.http.json",
    "openai/chat_stream_text_after_tool_include_usage.sse",
    "openai/chat_stream_text_include_usage_gpt4o.sse",
    "openai/chat_stream_tool_call_include_usage.http.json",
    "openai/chat_stream_tool_call_include_usage.sse",
    "openai/chat_stream_tool_call_non_strict.sse",
    "openai/chat_stream_tool_call_strict.sse",
    "openai/chat_stream_tool_call_strict_2.sse",
    "openai/chat_text.http.json",
    "openai/chat_text.json",
    "openai/chat_text_o3_mini_reasoning_tokens.http.json",
    "openai/chat_text_o3_mini_reasoning_tokens.json",
    "openai/chat_tool_calls.http.json",
    "openai/chat_tool_calls.json",
    "openai/error_400_code_null.http.json",
    "openai/error_400_code_null.json",
    "openai/error_400_unsupported_parameter_raw.http.json",
    "openai/error_400_unsupported_parameter_raw.json",
    "openai/error_400_unsupported_value.http.json",
    "openai/error_400_unsupported_value.json",
    "openai/error_401_invalid_api_key.error_object.json",
    "openai/error_404_model_not_found.http.json",
    "openai/error_404_model_not_found.json",
    "openai/error_404_model_not_found_raw.http.json",
    "openai/error_404_model_not_found_raw.json",
    "openai/error_429_insufficient_quota.json",
    "openai/error_429_rate_limit_exceeded_requests.json",
    "openai/error_429_rate_limit_legacy_code_null.json",
    "openai/error_429_request_too_large_tokens.json",
    "openai/error_500_server_error.json",
    "openai/vercel_chat_stream_text_include_usage.chunks.jsonl",
    "openai/vercel_chat_stream_text_include_usage.sse",
    "openai/vercel_chat_text.json",
    // deepseek
    "deepseek/chat_reasoning_content.http.json",
    "deepseek/chat_reasoning_content.json",
    "deepseek/chat_reasoning_tool_calls.http.json",
    "deepseek/chat_reasoning_tool_calls.json",
    "deepseek/chat_stream_reasoning_content.http.json",
    "deepseek/chat_stream_reasoning_content.sse",
    "deepseek/error_402_insufficient_balance.json",
    "deepseek/vercel_chat_json_mode.json",
    "deepseek/vercel_chat_reasoning.json",
    "deepseek/vercel_chat_stream_reasoning.chunks.jsonl",
    "deepseek/vercel_chat_stream_reasoning.sse",
    "deepseek/vercel_chat_stream_text.chunks.jsonl",
    "deepseek/vercel_chat_stream_text.sse",
    "deepseek/vercel_chat_stream_tool_call.chunks.jsonl",
    "deepseek/vercel_chat_stream_tool_call.sse",
    "deepseek/vercel_chat_tool_call.json",
    // mistral
    "mistral/chat_stream_thinking.http.json",
    "mistral/chat_stream_thinking.sse",
    "mistral/chat_text.http.json",
    "mistral/chat_text.json",
    "mistral/chat_thinking.http.json",
    "mistral/chat_thinking.json",
    "mistral/error_422_message_is_object.json",
    "mistral/error_429_rate_limit_legacy.json",
    "mistral/error_429_rate_limited.json",
    "mistral/vercel_chat_text.json",
    "mistral/vercel_chat_tool_call.json",
    // qwen
    "qwen/vercel_chat_reasoning.json",
    "qwen/vercel_chat_stream_reasoning.chunks.jsonl",
    "qwen/vercel_chat_stream_reasoning.sse",
    "qwen/vercel_chat_stream_text.chunks.jsonl",
    "qwen/vercel_chat_stream_text.sse",
    "qwen/vercel_chat_stream_tool_call.chunks.jsonl",
    "qwen/vercel_chat_stream_tool_call.sse",
    "qwen/vercel_chat_text.json",
    "qwen/vercel_chat_tool_call.json",
    // groq
    "groq/chat_reasoning.http.json",
    "groq/chat_reasoning.json",
    "groq/chat_stream_tool_use_failed_error.http.json",
    "groq/chat_stream_tool_use_failed_error.sse",
    "groq/error_400_tool_use_failed.http.json",
    "groq/error_400_tool_use_failed.json",
    "groq/error_404_model_not_found.http.json",
    "groq/error_404_model_not_found.json",
    "groq/vercel_chat_reasoning.json",
    "groq/vercel_chat_stream_reasoning.chunks.jsonl",
    "groq/vercel_chat_stream_reasoning.sse",
    "groq/vercel_chat_stream_tool_call.chunks.jsonl",
    "groq/vercel_chat_stream_tool_call.sse",
    "groq/vercel_chat_text.json",
    "groq/vercel_chat_tool_call.json",
    // xai
    "xai/vercel_chat_stream_text.chunks.jsonl",
    "xai/vercel_chat_stream_text.sse",
    "xai/vercel_chat_stream_tool_call.chunks.jsonl",
    "xai/vercel_chat_stream_tool_call.sse",
    "xai/vercel_chat_text.json",
    "xai/vercel_chat_tool_call.json",
    // openrouter
    "openrouter/chat_reasoning_details.http.json",
    "openrouter/chat_reasoning_details.json",
    "openrouter/chat_stream_error_midstream.http.json",
    "openrouter/chat_stream_error_midstream.sse",
    "openrouter/chat_stream_reasoning.http.json",
    "openrouter/chat_stream_reasoning.sse",
    "openrouter/chat_stream_tool_calls.http.json",
    "openrouter/chat_stream_tool_calls.sse",
    "openrouter/chat_tool_calls.http.json",
    "openrouter/chat_tool_calls.json",
    "openrouter/error_401_no_auth.http.json",
    "openrouter/error_401_no_auth.json",
    "openrouter/error_429_upstream_rate_limited.http.json",
    "openrouter/error_429_upstream_rate_limited.json",
    // cerebras
    "cerebras/chat_reasoning_gpt_oss.http.json",
    "cerebras/chat_reasoning_gpt_oss.json",
    // perplexity
    "perplexity/vercel_chat_citations.json",
    "perplexity/vercel_chat_stream_citations.chunks.jsonl",
    "perplexity/vercel_chat_stream_citations.sse",
    "perplexity/vercel_chat_text.json",
    // ollama
    "ollama/chat_local_json_schema.http.json",
    "ollama/chat_local_json_schema.json",
    "ollama/chat_tool_calls.http.json",
    "ollama/chat_tool_calls.json",
    "ollama/native_api_chat_stream.ndjson",
    // vllm
    "vllm/error_400_context_length_v0_16.json",
    "vllm/error_400_legacy_top_level.json",
    // zai
    "zai/chat_stream_reasoning_content.http.json",
    "zai/chat_stream_reasoning_content.sse",
    // openai_compat
    "openai_compat/aihubmix_chat_stream.sse",
    "openai_compat/github_copilot_chat_stream_tool_call.sse",
    "openai_compat/glm_gateway_chat_stream_reasoning_content.sse",
];

// ---------------------------------------------------------------------------------------------
// Expectations
// ---------------------------------------------------------------------------------------------

/// The expected first choice of a response (decoded or folded from a stream).
pub(super) struct Want {
    pub(super) id: &'static str,
    pub(super) model: &'static str,
    pub(super) created: u64,
    pub(super) finish: Option<FinishReason>,
    pub(super) text: Txt,
    pub(super) reasoning: Option<Txt>,
    pub(super) refusal: Option<&'static str>,
    /// id, name, arguments (JSON text, compared as JSON).
    pub(super) calls: &'static [(&'static str, &'static str, &'static str)],
    pub(super) usage: Option<U>,
}

impl Default for Want {
    fn default() -> Self {
        Want {
            id: "",
            model: "",
            created: 0,
            finish: None,
            text: Txt::Exact(""),
            reasoning: None,
            refusal: None,
            calls: &[],
            usage: None,
        }
    }
}

#[track_caller]
fn check_answer(what: &str, r: &ChatResponse, w: &Want) {
    assert_eq!(r.id, w.id, "{what}: id");
    assert_eq!(r.model, w.model, "{what}: model");
    assert_eq!(r.created, w.created, "{what}: created");
    assert!(!r.choices.is_empty(), "{what}: no choices");
    assert_eq!(r.choices[0].index, 0, "{what}: first choice index");
    assert_eq!(r.choices[0].message.role, Role::Assistant, "{what}: role");
    assert_eq!(
        r.finish_reason(),
        w.finish.as_ref(),
        "{what}: finish reason"
    );
    w.text.check(&format!("{what}: text"), &r.text());
    match w.reasoning {
        Some(t) => t.check(
            &format!("{what}: reasoning"),
            r.reasoning()
                .unwrap_or_else(|| panic!("{what}: no reasoning")),
        ),
        None => assert_eq!(r.reasoning(), None, "{what}: reasoning"),
    }
    assert_eq!(
        r.choices[0].message.refusal.as_deref(),
        w.refusal,
        "{what}: refusal"
    );
    let calls = r.tool_calls();
    assert_eq!(calls.len(), w.calls.len(), "{what}: number of tool calls");
    for (i, (call, (id, name, args))) in calls.iter().zip(w.calls).enumerate() {
        let args: Value = serde_json::from_str(args).expect("expected arguments are JSON");
        assert_call(&format!("{what}: tool call {i}"), call, id, name, args);
    }
    match w.usage {
        Some(u) => assert_usage(what, r.usage, u),
        None => assert_eq!(r.usage, None, "{what}: usage"),
    }
}

/// The OpenAI family: the OpenAI decoders over every OpenAI-compatible folder.
pub(super) struct Oai;

impl Vendor for Oai {
    const FOLDERS: &'static [&'static str] = FOLDERS;
    const BLOCK_END: &'static str = "\n\n";
    type Want<'a> = Want;

    fn stream_decoder() -> ChunkDecoder<impl EventHandler> {
        OpenAi::stream_decoder()
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

    fn check_error_extra(rel: &str, e: &Error, _: &WantErr) {
        // Small bodies are kept whole.
        assert_eq!(
            e.body_snippet(),
            Some(read_str(rel).as_str()),
            "{rel}: body snippet"
        );
    }
}

/// Whether a raw OpenAI-family chunk (JSON) carries content: non-empty text (string or text
/// parts), reasoning (`reasoning_content`/`reasoning`/thinking parts), refusal, or tool calls.
pub(super) fn raw_chunk_has_content(chunk: &Value) -> bool {
    let nonempty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            let Some(d) = c.get("delta") else {
                return false;
            };
            let parts_have_text = d
                .get("content")
                .and_then(Value::as_array)
                .is_some_and(|parts| {
                    parts.iter().any(|p| {
                        nonempty(p.get("text"))
                            || p.get("thinking")
                                .and_then(Value::as_array)
                                .is_some_and(|t| t.iter().any(|x| nonempty(x.get("text"))))
                    })
                });
            nonempty(d.get("content"))
                || parts_have_text
                || nonempty(d.get("reasoning_content"))
                || nonempty(d.get("reasoning"))
                || nonempty(d.get("refusal"))
                || d.get("tool_calls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty())
        })
}

/// Whether a raw chunk sets a (non-empty) finish reason on any choice.
pub(super) fn raw_chunk_finishes(chunk: &Value) -> bool {
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("finish_reason")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
}

// ---------------------------------------------------------------------------------------------
// Sidecars and coverage
// ---------------------------------------------------------------------------------------------

/// Every `.http.json` sidecar belongs to a body file and agrees with it: success bodies were
/// HTTP 200 (`text/event-stream` for `.sse`, JSON otherwise), error bodies carry the status of
/// their file name, and every request went to a `/chat/completions` endpoint.
#[test]
fn sidecars_agree_with_their_bodies() {
    Oai::sidecars_agree_with_their_bodies(32, |rel, side, stem, body| {
        assert!(
            side.uri.contains("/chat/completions"),
            "{rel}: {}",
            side.uri
        );
        let content_type = side
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{rel}: no content-type"))
            .to_ascii_lowercase();
        match body {
            Body::Error => assert!(content_type.contains("json"), "{rel}: {content_type}"),
            Body::Json => {
                Oai::decode_json(&format!("{stem}.json"));
            }
            Body::Stream => {}
        }
    });
}

/// Fails when a fixture file exists that this suite does not cover, or when a listed file is
/// gone. Every listed body file (not sidecars) must also be named by some test here.
#[test]
fn fixture_folders_are_fully_covered() {
    Oai::fully_covered(
        COVERED,
        &[
            include_str!("mod.rs"),
            include_str!("openai.rs"),
            include_str!("compatible.rs"),
            include_str!("gateways.rs"),
            include_str!("streams.rs"),
            include_str!("errors.rs"),
        ],
    );
}
