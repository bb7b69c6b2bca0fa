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

use crate::support::fixtures;

use std::collections::BTreeSet;

use fixtures::*;
use polyrelay::providers::OpenAi;
use polyrelay::providers::openai::{decode_error, decode_response};
use polyrelay::{ChatResponse, ErrorKind, FinishReason, Role};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// The folders this file covers (`moonshot` has no recordings yet; it is listed so that a
/// recording added there must be covered too).
const FOLDERS: &[&str] = &[
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

/// What a text field must be.
#[derive(Clone, Copy, Debug)]
enum Txt {
    /// Exactly this.
    Exact(&'static str),
    /// Starts with the first, ends with the second, this many characters long.
    Shape(&'static str, &'static str, usize),
}

impl Txt {
    #[track_caller]
    fn check(self, what: &str, actual: &str) {
        match self {
            Txt::Exact(s) => assert_eq!(actual, s, "{what}"),
            Txt::Shape(prefix, suffix, len) => assert_text_shape(what, actual, prefix, suffix, len),
        }
    }
}

/// The expected first choice of a response (decoded or folded from a stream).
struct Want {
    id: &'static str,
    model: &'static str,
    created: u64,
    finish: Option<FinishReason>,
    text: Txt,
    reasoning: Option<Txt>,
    refusal: Option<&'static str>,
    /// id, name, arguments (JSON text, compared as JSON).
    calls: &'static [(&'static str, &'static str, &'static str)],
    usage: Option<U>,
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
fn check(what: &str, r: &ChatResponse, w: &Want) {
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

/// Decodes a non-streaming fixture and checks it.
#[track_caller]
fn check_json(rel: &str, w: &Want) -> ChatResponse {
    let r = decode_json(rel);
    check(rel, &r, w);
    r
}

/// Decodes a stream fixture (feed whole, finish), folds it and checks the fold.
#[track_caller]
fn check_sse(rel: &str, w: &Want) -> (Vec<polyrelay::ChatChunk>, ChatResponse) {
    let (chunks, r) = decode_stream(rel);
    check(rel, &r, w);
    (chunks, r)
}

// ---------------------------------------------------------------------------------------------
// OpenAI (and Azure OpenAI): non-streaming
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_chat_text() {
    let r = check_json(
        "openai/chat_text.json",
        &Want {
            id: "chatcmpl-Bu8vBIrB8kIWKRyTcpEEPncjhHtMU",
            model: "gpt-4o-2024-08-06",
            created: 1752720361,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("The capital of France is Paris."),
            usage: Some(u(14, 7, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.system_fingerprint.as_deref(), Some("fp_a288987b44"));
    assert_eq!(r.service_tier.as_deref(), Some("default"));
    assert_eq!(r.object, "chat.completion");
    // `logprobs: null` is absent, `refusal: null` is no refusal.
    assert_eq!(r.choices[0].logprobs, None);
}

#[test]
fn openai_o3_mini_reasoning_tokens_are_inside_completion_tokens() {
    // completion_tokens 87 of which reasoning_tokens 64 (total 94 = 7 + 87): output stays 87.
    check_json(
        "openai/chat_text_o3_mini_reasoning_tokens.json",
        &Want {
            id: "chatcmpl-Dr3KNfXKBS1oDOrhqYDuLYdjX9PM4",
            model: "o3-mini-2025-01-31",
            created: 1781536547,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello there! How can I help you today?"),
            usage: Some(u(7, 87, 0, 0, 64)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_chat_tool_calls_content_null() {
    let r = check_json(
        "openai/chat_tool_calls.json",
        &Want {
            id: "chatcmpl-BSXk0dWkG4hfPt0lph4oFO35iT73I",
            model: "gpt-4o-2024-08-06",
            created: 1746142584,
            finish: Some(FinishReason::ToolCalls),
            calls: &[("call_iXFttys57ap0o16JSlC8yhYo", "get_user_country", "{}")],
            usage: Some(u(68, 12, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(
        r.choices[0].message.content, None,
        "content: null stays absent"
    );
    assert_eq!(r.system_fingerprint.as_deref(), Some("fp_f5bdcc3276"));
}

#[test]
fn openai_vercel_chat_text() {
    // Same prompt as `vercel_chat_stream_text_include_usage.sse`, but a separate generation
    // (different id and text), so the two are not compared field by field.
    let r = check_json(
        "openai/vercel_chat_text.json",
        &Want {
            id: "chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU",
            model: "gpt-4.1-nano-2025-04-14",
            created: 1770933883,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "**Holiday Name:** Galaxy Day  \n\n**Date:*",
                "d dream beyond our world.",
                1842,
            ),
            usage: Some(u(16, 363, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.system_fingerprint.as_deref(), Some("fp_de604bd877"));
}

// ---------------------------------------------------------------------------------------------
// OpenAI (and Azure OpenAI): streams
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_stream_text_include_usage_gpt4o() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_text_include_usage_gpt4o.sse",
        &Want {
            id: "chatcmpl-ABfw031mOJeYCSHe4yI2ZjOA6kMJL",
            model: "gpt-4o-2024-08-06",
            created: 1727346168,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "I'm unable to provide real-time weather ",
                "website or a weather app.",
                159,
            ),
            usage: Some(u(14, 30, 0, 0, 0)),
            ..Want::default()
        },
    );
    // 33 data events before [DONE]: role chunk, 30 text chunks, finish chunk, usage chunk.
    assert_eq!(chunks.len(), 33);
    assert_eq!(content_chunks(&chunks), 30);
    // The first delta carries the role and `content: ""`.
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
    assert_eq!(chunks[0].text(), Some(""));
    // The finish chunk comes before the usage chunk, which has `choices: []`.
    assert_eq!(chunks[31].finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(chunks[31].usage, None);
    assert!(chunks[32].choices.is_empty());
    assert_usage("usage chunk", chunks[32].usage, u(14, 30, 0, 0, 0));
}

#[test]
fn openai_stream_gpt5_obfuscation_usage_null_on_content_chunks() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_gpt5_obfuscation.sse",
        &Want {
            id: "chatcmpl-E4Rjs6IxaJVge9Ntk5keJsaeDy6vS",
            model: "gpt-5-2025-08-07",
            created: 1784728648,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Paris."),
            usage: Some(u(13, 11, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 6);
    // `"usage": null` on every chunk but the usage chunk is no usage.
    assert!(chunks[..4].iter().all(|c| c.usage.is_none()));
    assert!(chunks[4].choices.is_empty() && chunks[4].usage.is_some());
    // The stream then carries a moderation-results chunk (`choices: []`, `usage: null`) after
    // the usage chunk: it must not erase the usage already seen.
    assert!(chunks[5].choices.is_empty() && chunks[5].usage.is_none());
    assert!(
        read_str("openai/chat_stream_gpt5_obfuscation.sse").contains("\"moderation\":{\"input\"")
    );
}

#[test]
fn openai_stream_finish_length() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_finish_length.sse",
        &Want {
            id: "chatcmpl-ABfw3Oqj8RD0z6aJiiX37oTjV2HFh",
            model: "gpt-4o-2024-08-06",
            created: 1727346171,
            finish: Some(FinishReason::Length),
            text: Txt::Exact("{\""),
            usage: Some(u(79, 1, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 4);
}

#[test]
fn openai_stream_json_object() {
    let (chunks, r) = check_sse(
        "openai/chat_stream_json_object.sse",
        &Want {
            id: "chatcmpl-ABfwCjPMi0ubw56UyMIIeNfJzyogq",
            model: "gpt-4o-2024-08-06",
            created: 1727346180,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "\n  {\n    \"location\": \"San Francisco, CA\"",
                "loudy\"\n      }\n    ]\n  }\n",
                608,
            ),
            usage: Some(u(19, 177, 0, 0, 0)),
            ..Want::default()
        },
    );
    // 181 events: 180 chunks and [DONE].
    assert_eq!(chunks.len(), 180);
    assert_eq!(content_chunks(&chunks), 177);
    let doc: Value = serde_json::from_str(&r.text()).expect("the streamed text is one JSON object");
    assert_eq!(doc["location"], "San Francisco, CA");
    assert_eq!(doc["weather"]["temperature"], "18°C");
    assert_eq!(doc["forecast"].as_array().map(Vec::len), Some(3));
}

#[test]
fn openai_stream_json_schema() {
    let (_, r) = check_sse(
        "openai/chat_stream_json_schema.sse",
        &Want {
            id: "chatcmpl-ABfw1e5abtU8OwGr15vOreYVb2MiF",
            model: "gpt-4o-2024-08-06",
            created: 1727346169,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(r#"{"city":"San Francisco","temperature":61,"units":"f"}"#),
            usage: Some(u(79, 14, 0, 0, 0)),
            ..Want::default()
        },
    );
    let doc: Value = serde_json::from_str(&r.text()).expect("JSON text");
    assert_eq!(
        doc,
        json!({"city": "San Francisco", "temperature": 61, "units": "f"})
    );
}

#[test]
fn openai_stream_logprobs_are_ignored() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_logprobs.sse",
        &Want {
            id: "chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c",
            model: "gpt-4o-2024-08-06",
            created: 1727346173,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Foo!"),
            usage: Some(u(9, 2, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 5);
    assert_eq!(chunks[1].text(), Some("Foo"));
    assert_eq!(chunks[2].text(), Some("!"));
}

#[test]
fn openai_stream_n3_choices_interleaved() {
    let (chunks, r) = check_sse(
        "openai/chat_stream_n3_choices.sse",
        &Want {
            id: "chatcmpl-ABfw2KKFuVXmEJgVwYfBvejMAdWtq",
            model: "gpt-4o-2024-08-06",
            created: 1727346170,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(r#"{"city":"San Francisco","temperature":65,"units":"f"}"#),
            usage: Some(u(79, 42, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 49);
    assert_eq!(r.choices.len(), 3);
    let temps = [65, 61, 59];
    for (i, c) in r.choices.iter().enumerate() {
        assert_eq!(c.index, i as u32);
        assert_eq!(c.finish_reason, Some(FinishReason::Stop), "choice {i}");
        let doc: Value = serde_json::from_str(&c.message.text()).expect("JSON text");
        assert_eq!(
            doc,
            json!({"city": "San Francisco", "temperature": temps[i], "units": "f"}),
            "choice {i}"
        );
    }
    // Exactly three finish chunks, one per choice.
    let finishes = chunks
        .iter()
        .flat_map(|c| &c.choices)
        .filter(|c| c.finish_reason.is_some())
        .count();
    assert_eq!(finishes, 3);
}

#[test]
fn openai_stream_parallel_tool_calls_by_index() {
    let (chunks, r) = check_sse(
        "openai/chat_stream_parallel_tool_calls.sse",
        &Want {
            id: "chatcmpl-ABfwAwrNePHUgBBezonVC6MX3zd63",
            model: "gpt-4o-2024-08-06",
            created: 1727346178,
            finish: Some(FinishReason::ToolCalls),
            calls: &[
                (
                    "call_JMW1whyEaYG438VE1OIflxA2",
                    "GetWeatherArgs",
                    r#"{"city": "Edinburgh", "country": "GB", "units": "c"}"#,
                ),
                (
                    "call_DNYTawLBoN8fj3KN6qU9N1Ou",
                    "get_stock_price",
                    r#"{"ticker": "AAPL", "exchange": "NASDAQ"}"#,
                ),
            ],
            usage: Some(u(149, 60, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 25);
    // The first delta has `content: null` and no refusal key: no text at all.
    assert_eq!(chunks[0].text(), None);
    assert_eq!(r.choices[0].message.content, None);
    // Argument text is kept verbatim (spaces included).
    assert_eq!(
        r.tool_calls()[1].function.arguments,
        r#"{"ticker": "AAPL", "exchange": "NASDAQ"}"#
    );
}

#[test]
fn openai_stream_refusal() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_refusal.sse",
        &Want {
            id: "chatcmpl-ABfw4IfQfCCrcuybFm41wJyxjbkz7",
            model: "gpt-4o-2024-08-06",
            created: 1727346172,
            finish: Some(FinishReason::Stop),
            refusal: Some("I'm sorry, I can't assist with that request."),
            usage: Some(u(79, 11, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 13);
    assert_eq!(content_chunks(&chunks), 10);
    assert!(chunks.iter().all(|c| c.text().is_none()), "content is null");
}

#[test]
fn openai_stream_refusal_with_logprobs() {
    check_sse(
        "openai/chat_stream_refusal_logprobs.sse",
        &Want {
            id: "chatcmpl-ABfw5GEVqPbLY576l46FZDQoNJ2KC",
            model: "gpt-4o-2024-08-06",
            created: 1727346173,
            finish: Some(FinishReason::Stop),
            refusal: Some("I'm very sorry, but I can't assist with that."),
            usage: Some(u(79, 12, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_stream_text_after_tool_include_usage() {
    check_sse(
        "openai/chat_stream_text_after_tool_include_usage.sse",
        &Want {
            id: "chatcmpl-Dx0Xq5Xx9rHB2ehcHZCRDsnuymUXc",
            model: "gpt-4o-mini-2024-07-18",
            created: 1782955818,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("The capital of the UK is London."),
            usage: Some(u(78, 9, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_stream_tool_call_include_usage() {
    let (chunks, r) = check_sse(
        "openai/chat_stream_tool_call_include_usage.sse",
        &Want {
            id: "chatcmpl-Dx0XpqH8w09uBXwq1zFGYdETjtnEl",
            model: "gpt-4o-mini-2024-07-18",
            created: 1782955817,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_ZR5UUuTt3pf61kjwAJIYdVMj",
                "get_capital",
                r#"{"country":"UK"}"#,
            )],
            usage: Some(u(53, 15, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 8);
    assert!(chunks.last().is_some_and(|c| c.choices.is_empty()));
    assert_eq!(r.tool_calls()[0].function.arguments, r#"{"country":"UK"}"#);
}

#[test]
fn openai_stream_tool_call_non_strict() {
    check_sse(
        "openai/chat_stream_tool_call_non_strict.sse",
        &Want {
            id: "chatcmpl-ABfwERreu9s99xXsVuOWtIB2UOx62",
            model: "gpt-4o-2024-08-06",
            created: 1727346182,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_4XzlGBLtUe9dy3GVNV4jhq7h",
                "get_weather",
                r#"{"city":"New York City"}"#,
            )],
            usage: Some(u(44, 16, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_stream_tool_call_strict_fragments() {
    let (chunks, _) = check_sse(
        "openai/chat_stream_tool_call_strict.sse",
        &Want {
            id: "chatcmpl-ABfw8AOXnoa2kzy11vVTSjuQhHCQr",
            model: "gpt-4o-2024-08-06",
            created: 1727346176,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_c91SqDXlYFuETYv8mUHzz6pp",
                "GetWeatherArgs",
                r#"{"city":"Edinburgh","country":"UK","units":"c"}"#,
            )],
            usage: Some(u(76, 24, 0, 0, 0)),
            ..Want::default()
        },
    );
    // First fragment: index, id, name and empty arguments; later ones: index + arguments.
    let first = &chunks[0].choices[0].delta.tool_calls[0];
    assert_eq!(first.index, Some(0));
    assert_eq!(first.id.as_deref(), Some("call_c91SqDXlYFuETYv8mUHzz6pp"));
    assert_eq!(first.function.name.as_deref(), Some("GetWeatherArgs"));
    assert_eq!(first.function.arguments.as_deref(), Some(""));
    let second = &chunks[1].choices[0].delta.tool_calls[0];
    assert_eq!(second.index, Some(0));
    assert_eq!(second.id, None);
    assert_eq!(second.function.name, None);
    assert_eq!(second.function.arguments.as_deref(), Some("{\""));
}

#[test]
fn openai_stream_tool_call_strict_2() {
    check_sse(
        "openai/chat_stream_tool_call_strict_2.sse",
        &Want {
            id: "chatcmpl-ABfwCgi41eStOcARjZq97ohCEGBPO",
            model: "gpt-4o-2024-08-06",
            created: 1727346180,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_CTf1nWJLqSeRgDqaCG27xZ74",
                "get_weather",
                r#"{"city":"San Francisco","state":"CA"}"#,
            )],
            usage: Some(u(48, 19, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn openai_vercel_stream_text_include_usage() {
    // Same prompt as `openai/vercel_chat_text.json`, but a separate generation.
    let (chunks, _) = check_sse(
        "openai/vercel_chat_stream_text_include_usage.sse",
        &Want {
            id: "chatcmpl-D8Z5oo6uDh67AD85p73ksdT1KxhE0",
            model: "gpt-4.1-nano-2025-04-14",
            created: 1770933892,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "**Holiday Name:** Harmony Day\n\n**Date:**",
                "ences and mutual respect.",
                1724,
            ),
            usage: Some(u(16, 300, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 303);
    assert_eq!(content_chunks(&chunks), 300);
}

#[test]
fn azure_stream_prompt_filter_chunk_with_empty_id_and_model() {
    let (chunks, _) = check_sse(
        "openai/azure_chat_stream_content_filter_results.sse",
        &Want {
            id: "chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt",
            model: "gpt-5-nano-2025-08-07",
            created: 1762317021,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Capital of Denmark."),
            // gpt-5-nano: 64 of the 78 completion tokens were reasoning.
            usage: Some(u(15, 78, 0, 0, 64)),
            ..Want::default()
        },
    );
    // The leading prompt_filter_results chunk: no choices, empty id/model, created 0.
    assert_eq!(chunks.len(), 8);
    assert!(chunks[0].choices.is_empty());
    assert_eq!(chunks[0].id, "");
    assert_eq!(chunks[0].model, "");
    assert_eq!(chunks[0].created, 0);
    assert_eq!(chunks[0].usage, None);
}

// ---------------------------------------------------------------------------------------------
// DeepSeek
// ---------------------------------------------------------------------------------------------

#[test]
fn deepseek_reasoning_content() {
    check_json(
        "deepseek/chat_reasoning_content.json",
        &Want {
            id: "181d9669-2b3a-445e-bd13-2ebff2c378f6",
            model: "deepseek-reasoner",
            created: 1745330951,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "Crossing the street safely involves care",
                "til you've fully crossed.",
                1568,
            ),
            reasoning: Some(Txt::Shape(
                "Okay, the user is asking how to cross th",
                "it clearly and concisely.",
                1997,
            )),
            usage: Some(u(12, 789, 0, 0, 415)),
            ..Want::default()
        },
    );
}

#[test]
fn deepseek_reasoning_and_tool_calls_with_cache_hit() {
    let r = check_json(
        "deepseek/chat_reasoning_tool_calls.json",
        &Want {
            id: "0841b0a3-0321-47fa-a8a5-f08e5a4b3cb3",
            model: "deepseek-v4-flash",
            created: 1781082253,
            finish: Some(FinishReason::ToolCalls),
            text: Txt::Exact("Let me load the dice rolling capability!"),
            reasoning: Some(Txt::Shape(
                "The user wants to play a dice game. I ne",
                "oad the capability first.",
                233,
            )),
            calls: &[(
                "call_00_sXqYgMESDht75NCLLZtt9804",
                "load_capability",
                r#"{"id": "DICE_ROLL"}"#,
            )],
            // prompt_cache_hit_tokens 512 = prompt_tokens_details.cached_tokens 512.
            usage: Some(u(563, 116, 512, 0, 60)),
            ..Want::default()
        },
    );
    assert_eq!(r.usage.map(|u| u.uncached_input_tokens()), Some(51));
}

#[test]
fn deepseek_vercel_json_mode() {
    let r = check_json(
        "deepseek/vercel_chat_json_mode.json",
        &Want {
            id: "f03bc170-b375-4561-9685-35182c8152c5",
            model: "deepseek-reasoner",
            created: 1764681341,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(
                "{\n  \"location\": \"San Francisco\",\n  \"condition\": \"cloudy\",\n  \"temperature\": 7\n}",
            ),
            reasoning: Some(Txt::Shape(
                "I have the result from the weather tool.",
                "e output the JSON object.",
                558,
            )),
            usage: Some(u(495, 144, 320, 0, 118)),
            ..Want::default()
        },
    );
    let doc: Value = serde_json::from_str(&r.text()).expect("JSON mode answer");
    assert_eq!(
        doc,
        json!({"location": "San Francisco", "condition": "cloudy", "temperature": 7})
    );
}

#[test]
fn deepseek_vercel_reasoning() {
    // Same prompt as `vercel_chat_stream_reasoning.sse`, a separate generation.
    check_json(
        "deepseek/vercel_chat_reasoning.json",
        &Want {
            id: "945bb10c-9bf3-47ff-a2a2-43bbe9705c72",
            model: "deepseek-reasoner",
            created: 1764660903,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(
                "The word \"strawberry\" contains three instances of the letter \"r\": one after the \"t\" and two before the \"y\".",
            ),
            reasoning: Some(Txt::Shape(
                "We are asked: \"How many 'r's are in the ",
                "wberry'?\" So answer is 3.",
                935,
            )),
            usage: Some(u(18, 345, 0, 0, 315)),
            ..Want::default()
        },
    );
}

#[test]
fn deepseek_vercel_tool_call_empty_content() {
    let r = check_json(
        "deepseek/vercel_chat_tool_call.json",
        &Want {
            id: "7a630f5b-b7e6-4878-82f8-d77db164d42b",
            model: "deepseek-reasoner",
            created: 1764665845,
            finish: Some(FinishReason::ToolCalls),
            reasoning: Some(Txt::Shape(
                "The user is asking for the weather in Sa",
                "all the weather function.",
                242,
            )),
            calls: &[(
                "call_00_9V0vrf86Pc9aelHCJMZqnJBo",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            usage: Some(u(339, 92, 320, 0, 48)),
            ..Want::default()
        },
    );
    assert_eq!(
        r.choices[0].message.content, None,
        "content \"\" beside tool calls"
    );
}

#[test]
fn deepseek_stream_reasoning_content_with_cache_counts() {
    let (chunks, _) = check_sse(
        "deepseek/chat_stream_reasoning_content.sse",
        &Want {
            id: "33be18fc-3842-486c-8c29-dd8e578f7f20",
            model: "deepseek-reasoner",
            created: 1752169304,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello there! 😊 How can I help you today?"),
            reasoning: Some(Txt::Shape(
                "Hmm, the user just said \"Hello\". It's a ",
                "er - and that's okay too.",
                882,
            )),
            usage: Some(u(6, 212, 0, 0, 198)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 211);
    assert_eq!(content_chunks(&chunks), 209);
    // DeepSeek puts usage on the finish chunk itself.
    let last = chunks.last().expect("chunks");
    assert_eq!(last.finish_reason(), Some(&FinishReason::Stop));
    assert!(last.usage.is_some());
    assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 1);
}

#[test]
fn deepseek_vercel_stream_reasoning() {
    check_sse(
        "deepseek/vercel_chat_stream_reasoning.sse",
        &Want {
            id: "cac7192e-e619-40c6-96b0-ed4276bc03ac",
            model: "deepseek-reasoner",
            created: 1764661832,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("The word \"strawberry\" contains three \"r\"s."),
            reasoning: Some(Txt::Shape(
                "We need to count the number of the lette",
                ".\n\nThus, the answer is 3.",
                606,
            )),
            usage: Some(u(18, 219, 0, 0, 205)),
            ..Want::default()
        },
    );
}

#[test]
fn deepseek_vercel_stream_text_finish_length() {
    check_sse(
        "deepseek/vercel_chat_stream_text.sse",
        &Want {
            id: "f6117a0b-129d-46fa-b239-78f01c2c5df9",
            model: "deepseek-chat",
            created: 1764657993,
            finish: Some(FinishReason::Length),
            text: Txt::Shape(
                "## **Holiday Name:** Starlight Remembran",
                "utes of silent looking at",
                1855,
            ),
            usage: Some(u(13, 400, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn deepseek_vercel_stream_tool_call_fragments() {
    check_sse(
        "deepseek/vercel_chat_stream_tool_call.sse",
        &Want {
            id: "cca85624-4056-401f-b220-d77601d1f70d",
            model: "deepseek-reasoner",
            created: 1764664568,
            finish: Some(FinishReason::ToolCalls),
            reasoning: Some(Txt::Shape(
                "The user is asking for the weather in Sa",
                "r set to \"San Francisco\".",
                191,
            )),
            calls: &[(
                "call_00_ioIn7yN9p1ZOMNpDLwd4MgAF",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            usage: Some(u(339, 83, 320, 0, 39)),
            ..Want::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Mistral
// ---------------------------------------------------------------------------------------------

#[test]
fn mistral_chat_text() {
    check_json(
        "mistral/chat_text.json",
        &Want {
            id: "74b5a04853d2428f8c69b8b35dc2d30b",
            model: "mistral-large-latest",
            created: 1782199134,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(
                "Hello! 😊 How can I assist you today? Whether you have a question, need help with something, or just want to chat, I'm here for you!",
            ),
            usage: Some(u(4, 36, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn mistral_thinking_content_array() {
    let r = check_json(
        "mistral/chat_thinking.json",
        &Want {
            id: "9abe8b736bff46af8e979b52334a57cd",
            model: "magistral-medium-latest",
            created: 1757111400,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "Crossing a river is quite different from",
                "'s conditions. Stay safe!",
                1282,
            ),
            reasoning: Some(Txt::Shape(
                "**Analogizing crossing a river**\n\nThe us",
                "ure about the conditions.",
                2379,
            )),
            usage: Some(u(664, 747, 0, 0, 0)),
            ..Want::default()
        },
    );
    // The thinking part is moved to `reasoning`; the content is the text alone.
    assert!(matches!(
        r.choices[0].message.content,
        Some(polyrelay::Content::Text(_))
    ));
}

#[test]
fn mistral_vercel_chat_text() {
    // README: provenance of the Mistral vercel fixtures is not verified (shared id/created
    // with a dropped, hand-made-looking stream fixture). Decoded all the same.
    check_json(
        "mistral/vercel_chat_text.json",
        &Want {
            id: "5319bd0299614c679a0068a4f2c8ffd0",
            model: "mistral-small-latest",
            created: 1769088720,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "**Holiday Name: \"World Kindness Day of S",
                "? What would you share? 😊",
                1925,
            ),
            usage: Some(u(13, 434, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn mistral_vercel_tool_call_without_type_or_content() {
    let r = check_json(
        "mistral/vercel_chat_tool_call.json",
        &Want {
            id: "b3999b8c93e04e11bcbff7bcab829667",
            model: "mistral-small-latest",
            created: 1769088854,
            finish: Some(FinishReason::ToolCalls),
            // The call has no "type" key; it defaults to "function".
            calls: &[("gSIMJiOkT", "weather", r#"{"location": "San Francisco"}"#)],
            usage: Some(u(124, 22, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.choices[0].message.content, None);
}

#[test]
fn mistral_stream_thinking_array_then_string_content() {
    let (chunks, r) = check_sse(
        "mistral/chat_stream_thinking.sse",
        &Want {
            id: "9f9d90210f194076abeee223863eaaf0",
            model: "magistral-medium-latest",
            created: 1764296393,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "To cross the street safely, follow these",
                "n ensure a safe crossing.",
                607,
            ),
            reasoning: Some(Txt::Shape(
                "Okay, the user is asking how to cross th",
                "ear and concise response.",
                421,
            )),
            // Mistral: usage on the finish chunk, no completion_tokens_details.
            usage: Some(u(10, 232, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 158);
    assert_eq!(content_chunks(&chunks), 154);
    // Chunk 2 is the first `content: [{"type":"thinking",…}]` array.
    assert_eq!(chunks[2].reasoning(), Some("Okay"));
    assert_eq!(chunks[2].text().unwrap_or(""), "");
    // The thinking text never leaks into the answer.
    assert!(!r.text().contains("Okay, the user"));
}

// ---------------------------------------------------------------------------------------------
// Qwen (DashScope compatible mode)
// ---------------------------------------------------------------------------------------------

#[test]
fn qwen_vercel_reasoning() {
    // Same prompt as `vercel_chat_stream_reasoning.sse`, a separate generation.
    check_json(
        "qwen/vercel_chat_reasoning.json",
        &Want {
            id: "chatcmpl-296c9a8c-4984-9b34-9b83-844f6208995e",
            model: "qwen3-max",
            created: 1770764902,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "The word **\"strawberry\"** contains **3**",
                "\n  ```  \n\n**Answer: 3** 🍓",
                950,
            ),
            reasoning: Some(Txt::Shape(
                "We are asked: \"How many 'r's are in the ",
                "Yes.\n\nSo final answer: 3.",
                4213,
            )),
            usage: Some(u(24, 1668, 0, 0, 1353)),
            ..Want::default()
        },
    );
}

#[test]
fn qwen_vercel_text() {
    check_json(
        "qwen/vercel_chat_text.json",
        &Want {
            id: "chatcmpl-2655c1fe-749c-96df-b204-e413daa7caee",
            model: "qwen3-max",
            created: 1770764844,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "## The Festival of Forgotten Things (Obs",
                " for what is yet to come.",
                4892,
            ),
            usage: Some(u(18, 1064, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn qwen_vercel_tool_call() {
    check_json(
        "qwen/vercel_chat_tool_call.json",
        &Want {
            id: "chatcmpl-bc7fc58d-c03f-9c9f-af73-91bea326c99f",
            model: "qwen3-max",
            created: 1770764857,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_962bfd2ab8f54b89a1161356",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            usage: Some(u(295, 22, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn qwen_vercel_stream_reasoning() {
    check_sse(
        "qwen/vercel_chat_stream_reasoning.sse",
        &Want {
            id: "chatcmpl-3792851e-8f1b-9182-a1dc-b84603c81344",
            model: "qwen3-max",
            created: 1770764942,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "The word **\"strawberry\"** contains **3**",
                "ns `3`).  \n\n**Answer: 3**",
                816,
            ),
            reasoning: Some(Txt::Shape(
                "We are asked: \"How many 'r's are in the ",
                "Yes.\n\nSo final answer: 3.",
                3301,
            )),
            usage: Some(u(24, 1355, 0, 0, 1084)),
            ..Want::default()
        },
    );
}

#[test]
fn qwen_vercel_stream_text() {
    check_sse(
        "qwen/vercel_chat_stream_text.sse",
        &Want {
            id: "chatcmpl-d2d6aab7-cbca-970f-8aa6-7d58c9724733",
            model: "qwen3-max",
            created: 1770764906,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "## The Festival of Shared Stories: \"Tale",
                " We are woven together.\"*",
                3771,
            ),
            usage: Some(u(18, 779, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn qwen_vercel_stream_tool_call_empty_ids_on_fragments() {
    let (chunks, _) = check_sse(
        "qwen/vercel_chat_stream_tool_call.sse",
        &Want {
            id: "chatcmpl-8e243c57-23b3-9db2-a02e-e3c53929c368",
            model: "qwen3-max",
            created: 1770764938,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_eee11723464a4b9eb8cee71d",
                "weather",
                r#"{"location": "San Francisco"}"#,
            )],
            usage: Some(u(295, 22, 0, 0, 0)),
            ..Want::default()
        },
    );
    // Continuation fragments repeat `"id": ""`; they must not start new calls.
    assert_eq!(
        chunks[1].choices[0].delta.tool_calls[0].id.as_deref(),
        Some("")
    );
    // Trailing usage-only chunk with `choices: []`.
    assert!(
        chunks
            .last()
            .is_some_and(|c| c.choices.is_empty() && c.usage.is_some())
    );
}

// ---------------------------------------------------------------------------------------------
// Groq
// ---------------------------------------------------------------------------------------------

#[test]
fn groq_chat_reasoning_field() {
    check_json(
        "groq/chat_reasoning.json",
        &Want {
            id: "chatcmpl-994aa228-883a-498c-8b20-9655d770b697",
            model: "deepseek-r1-distill-llama-70b",
            created: 1745064190,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "To create authentic Argentinian alfajore",
                "ved South American treat.",
                3469,
            ),
            reasoning: Some(Txt::Shape(
                "Alright, so I want to make Argentinian a",
                "al South American treat.\n",
                3722,
            )),
            // Timing fields (queue_time, prompt_time…) are ignored; no reasoning count sent.
            usage: Some(u(524, 1590, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn groq_vercel_reasoning() {
    check_json(
        "groq/vercel_chat_reasoning.json",
        &Want {
            id: "chatcmpl-73cf8a54-d54e-400c-88b8-603d1a346d96",
            model: "qwen/qwen3-32b",
            created: 1770770833,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(
                "The word \"strawberry\" contains **3** instances of the letter **R**. \n\nHere's the breakdown:\n- **S** T **R** A W B E **R** **R** Y\n\nThe letter \"R\" appears at the 3rd, 8th, and 9th positions. \n\n**Answer:** 3.",
            ),
            reasoning: Some(Txt::Shape(
                "Okay, so the user is asking how many tim",
                " the answer should be 3.\n",
                1724,
            )),
            // 17 + 649 = 666: reasoning (570) is inside completion_tokens.
            usage: Some(u(17, 649, 0, 0, 570)),
            ..Want::default()
        },
    );
}

#[test]
fn groq_vercel_text() {
    let r = check_json(
        "groq/vercel_chat_text.json",
        &Want {
            id: "chatcmpl-09d64d2a-ed1c-4473-829f-78db43f45d13",
            model: "llama-3.3-70b-versatile",
            created: 1770770798,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "I'd like to introduce \"Luminaria\" - a jo",
                "hter, more radiant world.",
                2953,
            ),
            usage: Some(u(45, 607, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.service_tier.as_deref(), Some("on_demand"));
}

#[test]
fn groq_vercel_tool_call() {
    let r = check_json(
        "groq/vercel_chat_tool_call.json",
        &Want {
            id: "chatcmpl-1fd017fc-60b8-44eb-a736-375b8e1bc3e7",
            model: "llama-3.3-70b-versatile",
            created: 1770770815,
            finish: Some(FinishReason::ToolCalls),
            calls: &[("ax9fskhev", "weather", "{}")],
            usage: Some(u(218, 15, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.choices[0].message.content, None);
}

#[test]
fn groq_vercel_stream_reasoning_usage_in_x_groq_and_top_level() {
    let (chunks, _) = check_sse(
        "groq/vercel_chat_stream_reasoning.sse",
        &Want {
            id: "chatcmpl-3556c041-562b-471f-9a90-763dbcea5a3f",
            model: "qwen/qwen3-32b",
            // The chunks' `created` varies (…846 to …849); the first one is kept.
            created: 1770770846,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "The word **\"strawberry\"** is spelled as ",
                "nal Answer**: $\\boxed{3}$",
                347,
            ),
            reasoning: Some(Txt::Shape(
                "Okay, let me try to figure out how many ",
                "n \"strawberry\" is three.\n",
                2952,
            )),
            usage: Some(u(17, 1107, 0, 0, 963)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 1104);
    let last = chunks.last().expect("chunks");
    assert_eq!(last.finish_reason(), Some(&FinishReason::Stop));
    assert!(last.usage.is_some(), "usage on the finish chunk");
}

#[test]
fn groq_vercel_stream_whole_tool_call_in_one_delta() {
    let (chunks, _) = check_sse(
        "groq/vercel_chat_stream_tool_call.sse",
        &Want {
            id: "chatcmpl-b610d559-f156-4aca-8827-24b4fe6af54f",
            model: "llama-3.3-70b-versatile",
            created: 1770770843,
            finish: Some(FinishReason::ToolCalls),
            calls: &[("tk85n1k4m", "weather", "{}")],
            usage: Some(u(210, 15, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 3);
    assert_eq!(content_chunks(&chunks), 1);
}

#[test]
fn groq_usage_only_in_x_groq_is_read() {
    // The recordings carry usage both at top level and in x_groq.usage; drop the top-level
    // copy from the real finish chunk to check that x_groq.usage alone is read.
    let text = read_str("groq/vercel_chat_stream_tool_call.sse");
    let marker = ",\"usage\":{\"queue_time\":0.041520249";
    let start = text
        .rfind(marker)
        .expect("top-level usage on the finish chunk");
    let end = start + text[start..].find("}}").expect("end of usage") + 1;
    let edited = format!("{}{}", &text[..start], &text[end..]);
    assert!(edited.contains("\"x_groq\":{\"id\":\"req_01kh52nj5yfcat8hrmvrk2j2hj\",\"usage\""));
    let (_, r) = decode_stream_bytes("groq x_groq only", edited.as_bytes());
    assert_usage("x_groq.usage", r.usage, u(210, 15, 0, 0, 0));
}

#[test]
fn groq_stream_error_event_is_an_error() {
    let rel = "groq/chat_stream_tool_use_failed_error.sse";
    let bytes = read(rel);
    // The plain API: the whole body in one `feed` is an Err.
    let e = OpenAi::stream_decoder()
        .feed(&bytes)
        .expect_err("an `event: error` must fail the stream");
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.status(), Some(400), "status_code inside the event");
    assert_eq!(e.code(), Some("tool_use_failed"));
    assert_eq!(
        e.message(),
        "Tool call validation failed: tool call validation failed: parameters for tool get_something_by_name did not match schema: errors: [missing properties: 'name', additionalProperties 'invalid_param' not allowed]"
    );

    // The reasoning streamed before the error is still delivered, then the error.
    let out = decode_whole(&bytes);
    let (stage, err) = out.error.as_ref().expect("error");
    assert_eq!(*stage, Stage::Feed);
    assert_eq!(err, &e);
    assert_eq!(out.chunks.len(), 94);
    assert_eq!(content_chunks(&out.chunks), 93);
    let partial = fold(&out.chunks);
    assert_eq!(partial.id, "chatcmpl-4f39f3af-3267-4ac1-a0cf-6aa7451877dc");
    assert_eq!(partial.model, "openai/gpt-oss-120b");
    assert_eq!(partial.finish_reason(), None);
    assert_eq!(partial.usage, None);
    assert_text_shape(
        "groq reasoning before the error",
        partial.reasoning().expect("reasoning"),
        "We need to call the tool with invalid pa",
        "e: \"test\". Let's do that.",
        412,
    );
    // Same kind as the non-streamed 400 tool_use_failed.
    let http = decode_error_fixture("groq/error_400_tool_use_failed.json");
    assert_eq!(http.kind(), err.kind());
    assert_eq!(http.code(), err.code());
}

// ---------------------------------------------------------------------------------------------
// xAI
// ---------------------------------------------------------------------------------------------

#[test]
fn xai_vercel_text_reasoning_outside_completion_tokens() {
    // 12 + 1 + 228 = 241 = total: reasoning is added to the output.
    check_json(
        "xai/vercel_chat_text.json",
        &Want {
            id: "2af5c888-e886-6dcb-7844-95f8fe010b00",
            model: "grok-3-mini",
            created: 1770774046,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello"),
            reasoning: Some(Txt::Exact(
                "First, the user said: \"Say a single word.\" That's straightforward. They want me to respond with just one word.\n\nResponse: I'll go with \"Hello\" as it's a common greeting and keeps it simple.",
            )),
            usage: Some(u(12, 229, 2, 0, 228)),
            ..Want::default()
        },
    );
}

#[test]
fn xai_vercel_tool_call() {
    // 291 + 26 + 189 = 506 = total.
    check_json(
        "xai/vercel_chat_tool_call.json",
        &Want {
            id: "61c0468b-2a98-413e-f654-dbffcdbb62c1",
            model: "grok-3-mini",
            created: 1770774041,
            finish: Some(FinishReason::ToolCalls),
            reasoning: Some(Txt::Shape(
                "First, the user is asking about the weat",
                "vance the user's request.",
                357,
            )),
            calls: &[(
                "call_93562515",
                "weather",
                r#"{"location":"San Francisco"}"#,
            )],
            usage: Some(u(291, 215, 244, 0, 189)),
            ..Want::default()
        },
    );
}

#[test]
fn xai_vercel_stream_text() {
    // 12 + 1 + 290 = 303 = total. The chunk log is abridged: 290 reasoning tokens, but only
    // "First, the user said" was kept.
    let (chunks, _) = check_sse(
        "xai/vercel_chat_stream_text.sse",
        &Want {
            id: "7327b9f5-1c2f-0a15-3fef-c14a71c460d3",
            model: "grok-3-mini",
            created: 1770774058,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello"),
            reasoning: Some(Txt::Exact("First, the user said")),
            usage: Some(u(12, 291, 11, 0, 290)),
            ..Want::default()
        },
    );
    assert!(chunks.last().is_some_and(|c| c.choices.is_empty()));
}

#[test]
fn xai_vercel_stream_tool_call() {
    // 291 + 26 + 196 = 513 = total.
    check_sse(
        "xai/vercel_chat_stream_tool_call.sse",
        &Want {
            id: "de9d896d-e946-b3a7-bb14-75ab33326930",
            model: "grok-3-mini",
            created: 1770774064,
            finish: Some(FinishReason::ToolCalls),
            reasoning: Some(Txt::Exact("First, the user is")),
            calls: &[(
                "call_55117580",
                "weather",
                r#"{"location":"San Francisco"}"#,
            )],
            usage: Some(u(291, 222, 290, 0, 196)),
            ..Want::default()
        },
    );
}

// ---------------------------------------------------------------------------------------------
// OpenRouter
// ---------------------------------------------------------------------------------------------

#[test]
fn openrouter_reasoning_details() {
    check_json(
        "openrouter/chat_reasoning_details.json",
        &Want {
            id: "gen-1779474928-8Ot5WcaCbQBcu9Wvs6Up",
            model: "anthropic/claude-4.5-sonnet-20250929",
            created: 1779474928,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("ok"),
            reasoning: Some(Txt::Shape(
                "The user is asking me to reply with the ",
                "d with \"ok\" as requested.",
                189,
            )),
            // cache_write_tokens: 0 is read from prompt_tokens_details.
            usage: Some(u(43, 53, 0, 0, 48)),
            ..Want::default()
        },
    );
}

#[test]
fn openrouter_tool_calls() {
    check_json(
        "openrouter/chat_tool_calls.json",
        &Want {
            id: "gen-1762047030-dJUcJW4ildNGqK4UV6iJ",
            model: "mistralai/mistral-small",
            created: 1762047030,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "3sniiMddS",
                "divide",
                r#"{"numerator": 123, "denominator": 456, "on_inf": "infinity"}"#,
            )],
            usage: Some(u(134, 43, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn openrouter_stream_reasoning_skips_processing_comments() {
    let rel = "openrouter/chat_stream_reasoning.sse";
    assert!(read_str(rel).starts_with(": OPENROUTER PROCESSING\n\n"));
    let (chunks, _) = check_sse(
        rel,
        &Want {
            id: "gen-1765226419-AGrwjunAftQIAgweibL8",
            model: "anthropic/claude-sonnet-4.5",
            created: 1765226419,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("2 + 2 = 4"),
            reasoning: Some(Txt::Exact(
                "This is a simple arithmetic question. 2+2 equals 4.",
            )),
            usage: Some(u(43, 36, 0, 0, 13)),
            ..Want::default()
        },
    );
    // 14 data events; the comment lines yield nothing.
    assert_eq!(chunks.len(), 14);
    assert_eq!(content_chunks(&chunks), 5);
    // Usage comes after the finish chunk, on a chunk whose finish_reason is null again.
    let last = chunks.last().expect("chunks");
    assert_eq!(last.finish_reason(), None);
    assert!(last.usage.is_some());
}

#[test]
fn openrouter_stream_server_tool_without_tool_call_deltas() {
    // Despite its name, this "advisor tool" stream has no tool_calls deltas: the tool ran on
    // OpenRouter's side (usage.server_tool_use_details) and only text reaches the client.
    let (chunks, _) = check_sse(
        "openrouter/chat_stream_tool_calls.sse",
        &Want {
            id: "gen-1784878121-HxA00pxmV0n2x1hZAuok",
            model: "openai/gpt-4o-mini",
            created: 1784878121,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact(
                "I recommend naming your Python retry library `resilix`, as it conveys resilience and is modern and brandable.",
            ),
            usage: Some(u(888, 74, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 25);
    assert!(
        chunks
            .iter()
            .flat_map(|c| &c.choices)
            .all(|c| c.delta.tool_calls.is_empty())
    );
}

#[test]
fn openrouter_in_chunk_error_is_an_error() {
    let rel = "openrouter/chat_stream_error_midstream.sse";
    let out = decode_whole(&read(rel));
    let (stage, e) = out
        .error
        .as_ref()
        .expect("the in-chunk error must fail the stream");
    assert_eq!(*stage, Stage::Feed);
    assert_eq!(e.message(), "Token limit reached");
    assert_eq!(e.status(), Some(400), "error.code 400");
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    // An integer code only repeats the status; no `type` either.
    assert_eq!(e.code(), None);
    // The three reasoning chunks before it are delivered, finish reason `length` included.
    assert_eq!(out.chunks.len(), 3);
    let partial = fold(&out.chunks);
    assert_eq!(partial.id, "gen-1762179802-UN8pkJI4AGZvryk0kFnb");
    assert_eq!(partial.model, "minimax/minimax-m2:free");
    assert_eq!(
        partial.reasoning(),
        Some("We need to respond to a greeting. The user")
    );
    assert_eq!(partial.finish_reason(), Some(&FinishReason::Length));
    // The usage rode on the error chunk, which is not delivered as a chunk.
    assert_eq!(partial.usage, None);
    // `feed` reports it as an Err too.
    assert!(OpenAi::stream_decoder().feed(&read(rel)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Cerebras, Perplexity, Ollama, Z.ai, other gateways
// ---------------------------------------------------------------------------------------------

#[test]
fn cerebras_gpt_oss_reasoning_field() {
    check_json(
        "cerebras/chat_reasoning_gpt_oss.json",
        &Want {
            id: "chatcmpl-bc3bbd04-e8df-4ab6-bd82-9fb33726cb93",
            model: "gpt-oss-120b",
            created: 1756199010,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("The capital of France is **Paris**."),
            reasoning: Some(Txt::Exact(
                "User asks simple question: capital of France. Answer: Paris. Provide concise answer.",
            )),
            usage: Some(u(74, 36, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn perplexity_vercel_citations() {
    check_json(
        "perplexity/vercel_chat_citations.json",
        &Want {
            id: "702738a1-c1e0-4a7f-b9ab-0f6fe1b13514",
            model: "sonar",
            created: 1770768226,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "The most recent estimates for San Franci",
                "reau updates beyond 2024.",
                952,
            ),
            usage: Some(u(10, 251, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn perplexity_vercel_text() {
    check_json(
        "perplexity/vercel_chat_text.json",
        &Want {
            id: "aec30d94-c6a5-4d30-935e-97dbe8de9f85",
            model: "sonar",
            created: 1770768220,
            finish: Some(FinishReason::Stop),
            text: Txt::Shape(
                "**EcoVista Day** is a new annual holiday",
                " and forward-thinking.[5]",
                1970,
            ),
            usage: Some(u(11, 392, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn perplexity_stream_repeats_growing_usage() {
    // The chunk log is abridged (completion_tokens jumps from 5 to 333), so the folded text is
    // only the kept fragments.
    let (chunks, _) = check_sse(
        "perplexity/vercel_chat_stream_citations.sse",
        &Want {
            id: "58cb9740-f356-49e9-b71e-a02a1376c1b9",
            model: "sonar",
            created: 1770768240,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("The current population of **[2][3]"),
            usage: Some(u(10, 336, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 8);
    assert!(
        chunks.iter().all(|c| c.usage.is_some()),
        "usage on every chunk"
    );
    let outputs: Vec<u64> = chunks
        .iter()
        .map(|c| c.usage.map(|u| u.output_tokens).unwrap_or_default())
        .collect();
    assert_eq!(outputs, [1, 2, 3, 4, 5, 333, 336, 336]);
}

#[test]
fn ollama_local_json_schema_with_reasoning() {
    let r = check_json(
        "ollama/chat_local_json_schema.json",
        &Want {
            id: "chatcmpl-150",
            model: "qwen3:0.6b",
            created: 1776298304,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("{ \"city\": \"Paris\", \"country\": \"France\" }"),
            reasoning: Some(Txt::Shape(
                "Okay, the user is asking for the capital",
                "ent the answer is Paris.\n",
                508,
            )),
            usage: Some(u(136, 15, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.system_fingerprint.as_deref(), Some("fp_ollama"));
}

#[test]
fn ollama_cloud_tool_calls_with_reasoning() {
    check_json(
        "ollama/chat_tool_calls.json",
        &Want {
            id: "chatcmpl-273",
            model: "gpt-oss:20b",
            created: 1776298298,
            finish: Some(FinishReason::ToolCalls),
            reasoning: Some(Txt::Shape(
                "The conversation: user asked \"What is th",
                "ON format. Let's do that.",
                763,
            )),
            calls: &[(
                "call_o2vnpxrw",
                "final_result",
                r#"{"city":"Paris","country":"France"}"#,
            )],
            usage: Some(u(206, 194, 0, 0, 0)),
            ..Want::default()
        },
    );
}

#[test]
fn ollama_native_ndjson_is_not_an_openai_stream() {
    let rel = "ollama/native_api_chat_stream.ndjson";
    let bytes = read(rel);
    for sizes in [&[usize::MAX][..], &[1], &[7, 64]] {
        let out = decode_pieces(&bytes, sizes);
        assert!(
            out.chunks.is_empty() || out.error.is_some(),
            "{rel} must not decode as an OpenAI stream: {out:?}"
        );
        // What it does today: nothing decodes, and the end is reported as a cut stream.
        assert!(out.chunks.is_empty());
        let (stage, e) = out.error.expect("an error");
        assert_eq!(stage, Stage::Finish);
        assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    }
    // And it is not a chat completion body either.
    assert!(decode_response(&bytes).is_err());
}

#[test]
fn zai_stream_reasoning_content() {
    check_sse(
        "zai/chat_stream_reasoning_content.sse",
        &Want {
            id: "202607010739425543ff9439144b2c",
            model: "glm-4.7",
            created: 1782862782,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("4"),
            reasoning: Some(Txt::Shape(
                "\n1.  **Analyze the User's Request:** The",
                "he final response:** \"4\".",
                2173,
            )),
            usage: Some(u(13, 564, 0, 0, 561)),
            ..Want::default()
        },
    );
}

#[test]
fn aihubmix_stream_without_finish_reason_keys() {
    let (chunks, _) = check_sse(
        "openai_compat/aihubmix_chat_stream.sse",
        &Want {
            id: "chatcmpl-Df7rE7JcNSZq6avLPXcEGtelEhMjt",
            model: "gpt-4o-mini-2024-07-18",
            created: 1778694024,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello."),
            usage: Some(u(15, 3, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 5);
    assert!(chunks[..3].iter().all(|c| c.finish_reason().is_none()));
}

#[test]
fn github_copilot_stream_tool_call_without_usage() {
    let (chunks, _) = check_sse(
        "openai_compat/github_copilot_chat_stream_tool_call.sse",
        &Want {
            id: "chatcmpl-DSgf4WCbRdt14SIbuFLRFObCWGpyJ",
            model: "gpt-4.1-mini-2025-04-14",
            created: 1775729546,
            finish: Some(FinishReason::ToolCalls),
            calls: &[(
                "call_YC2QMIr5bbEvqMl96iKr7oCN",
                "get_weather",
                r#"{"city":"Paris","country":"France","unit":"C"}"#,
            )],
            // Copilot sends no usage at all.
            usage: None,
            ..Want::default()
        },
    );
    assert_eq!(chunks.len(), 16);
    assert!(chunks[0].choices.is_empty() && chunks[0].id.is_empty());
}

#[test]
fn glm_gateway_stream_ignores_data_after_done() {
    let rel = "openai_compat/glm_gateway_chat_stream_reasoning_content.sse";
    // The gateway sends one more event after [DONE].
    assert!(read_str(rel).ends_with("data: [DONE]\n\ndata: {\"choices\":[],\"cost\":\"0\"}\n\n"));
    let (chunks, _) = check_sse(
        rel,
        &Want {
            id: "chatcmpl-RbLQzNQRyMU0Bqm4QDurFp4J",
            model: "frank/GLM-5.1",
            created: 1777623080,
            finish: Some(FinishReason::Stop),
            text: Txt::Exact("Hello"),
            reasoning: Some(Txt::Shape(
                "1.  **Analyze the Request:**\n    *   Com",
                "e Output:**\n    *   Hello",
                409,
            )),
            // `"cache_write_tokens": null` reads as 0.
            usage: Some(u(10, 123, 0, 0, 0)),
            ..Want::default()
        },
    );
    // 37 chunks before [DONE]; the trailing one is not decoded.
    assert_eq!(chunks.len(), 37);
    assert!(chunks.iter().all(|c| !c.choices.is_empty()));
}

// ---------------------------------------------------------------------------------------------
// Stream / non-stream pairs
// ---------------------------------------------------------------------------------------------

/// The vercel fixtures record the same prompt twice, streamed and not. They are separate
/// generations (different ids, texts and token counts), so only what the model decided the same
/// way both times is compared: the tool called and its arguments, and the finish reason.
#[test]
fn streamed_and_unstreamed_tool_calls_agree() {
    for (stream, json) in [
        (
            "deepseek/vercel_chat_stream_tool_call.sse",
            "deepseek/vercel_chat_tool_call.json",
        ),
        (
            "qwen/vercel_chat_stream_tool_call.sse",
            "qwen/vercel_chat_tool_call.json",
        ),
        (
            "groq/vercel_chat_stream_tool_call.sse",
            "groq/vercel_chat_tool_call.json",
        ),
        (
            "xai/vercel_chat_stream_tool_call.sse",
            "xai/vercel_chat_tool_call.json",
        ),
    ] {
        let (_, s) = decode_stream(stream);
        let j = decode_json(json);
        assert_ne!(s.id, j.id, "{stream}: separate generations");
        assert_eq!(s.finish_reason(), j.finish_reason(), "{stream}");
        assert_eq!(s.tool_calls().len(), 1, "{stream}");
        assert_eq!(j.tool_calls().len(), 1, "{json}");
        let (a, b) = (&s.tool_calls()[0], &j.tool_calls()[0]);
        assert_eq!(a.function.name, b.function.name, "{stream}");
        let pa: Value = serde_json::from_str(&a.function.arguments).expect("JSON");
        let pb: Value = serde_json::from_str(&b.function.arguments).expect("JSON");
        assert_eq!(pa, pb, "{stream}: arguments");
    }
}

/// `StreamAccumulator` promises the response the call would have returned unstreamed. An
/// assistant turn that only calls tools decodes with `content` absent even when the vendor
/// sent `content: ""` (see `deepseek_vercel_tool_call_empty_content`); the fold of a stream
/// that sent `content: ""` beside its tool calls must look the same.
///
/// (`deepseek/vercel_chat_stream_tool_call.sse`'s first delta is
/// `{"role":"assistant","content":"",…}`, the only `content` key of the stream.)
#[test]
fn streamed_tool_call_turns_fold_like_unstreamed_ones() {
    for rel in [
        "deepseek/vercel_chat_stream_tool_call.sse",
        "qwen/vercel_chat_stream_tool_call.sse",
        "groq/vercel_chat_stream_tool_call.sse",
        "xai/vercel_chat_stream_tool_call.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
        "openai/chat_stream_tool_call_include_usage.sse",
        "openai/chat_stream_tool_call_non_strict.sse",
        "openai/chat_stream_tool_call_strict.sse",
        "openai/chat_stream_tool_call_strict_2.sse",
        "openai_compat/github_copilot_chat_stream_tool_call.sse",
    ] {
        let (_, r) = decode_stream(rel);
        assert!(!r.tool_calls().is_empty(), "{rel}");
        assert_eq!(
            r.choices[0].message.content, None,
            "{rel}: a tool-call turn with no text has no content"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Chunk logs
// ---------------------------------------------------------------------------------------------

/// Each `.sse` converted from a vercel chunk log: the `.sse` is exactly the log framed as
/// `data: <line>\n\n` plus `data: [DONE]\n\n`, every line decodes to one chunk, and the same
/// lines carry content.
#[test]
fn converted_streams_match_their_chunk_logs() {
    const PAIRS: &[&str] = &[
        "openai/azure_chat_stream_content_filter_results.chunks.jsonl",
        "openai/vercel_chat_stream_text_include_usage.chunks.jsonl",
        "deepseek/vercel_chat_stream_reasoning.chunks.jsonl",
        "deepseek/vercel_chat_stream_text.chunks.jsonl",
        "deepseek/vercel_chat_stream_tool_call.chunks.jsonl",
        "qwen/vercel_chat_stream_reasoning.chunks.jsonl",
        "qwen/vercel_chat_stream_text.chunks.jsonl",
        "qwen/vercel_chat_stream_tool_call.chunks.jsonl",
        "groq/vercel_chat_stream_reasoning.chunks.jsonl",
        "groq/vercel_chat_stream_tool_call.chunks.jsonl",
        "xai/vercel_chat_stream_text.chunks.jsonl",
        "xai/vercel_chat_stream_tool_call.chunks.jsonl",
        "perplexity/vercel_chat_stream_citations.chunks.jsonl",
    ];
    // Every chunk log in the folders is listed above.
    let on_disk: BTreeSet<String> = FOLDERS
        .iter()
        .flat_map(|f| list_folder(f))
        .filter(|f| f.ends_with(".chunks.jsonl"))
        .collect();
    let listed: BTreeSet<String> = PAIRS.iter().map(|s| s.to_string()).collect();
    assert_eq!(on_disk, listed, "chunk logs");

    for log in PAIRS {
        let sse = log.replace(".chunks.jsonl", ".sse");
        let lines = chunk_log_lines(log);
        let framed: String = lines
            .iter()
            .map(|l| format!("data: {l}\n\n"))
            .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
            .collect();
        assert_eq!(read_str(&sse), framed, "{sse} is {log} framed as SSE");

        let (chunks, _) = decode_stream(&sse);
        assert_eq!(
            chunks.len(),
            lines.len(),
            "{sse}: one chunk per logged line"
        );
        let raw: Vec<bool> = lines
            .iter()
            .map(|l| raw_chunk_has_content(&serde_json::from_str(l).expect("JSON line")))
            .collect();
        let decoded: Vec<bool> = chunks.iter().map(|c| c.has_content()).collect();
        assert_eq!(
            decoded.iter().filter(|b| **b).count(),
            raw.iter().filter(|b| **b).count(),
            "{sse}: number of content chunks"
        );
        assert_eq!(decoded, raw, "{sse}: which chunks carry content");
    }
}

// ---------------------------------------------------------------------------------------------
// Stream endings: no [DONE], truncation
// ---------------------------------------------------------------------------------------------

/// All `.sse` files of the covered folders.
fn all_sse() -> Vec<String> {
    FOLDERS
        .iter()
        .flat_map(|f| list_folder(f))
        .filter(|f| f.ends_with(".sse"))
        .collect()
}

#[test]
fn stream_with_finish_reason_but_no_done_finishes_ok() {
    for rel in [
        "openai/chat_stream_text_include_usage_gpt4o.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
        "deepseek/chat_stream_reasoning_content.sse",
        "mistral/chat_stream_thinking.sse",
        "openrouter/chat_stream_reasoning.sse",
        "zai/chat_stream_reasoning_content.sse",
    ] {
        let text = read_str(rel);
        let (full_chunks, full) = decode_stream(rel);
        let without_done = text
            .strip_suffix("data: [DONE]\n\n")
            .unwrap_or_else(|| panic!("{rel} ends with [DONE]"));
        let (chunks, folded) = decode_stream_bytes(rel, without_done.as_bytes());
        assert_eq!(chunks, full_chunks, "{rel} without [DONE]");
        assert_eq!(folded, full, "{rel} without [DONE]");
        // Nor the blank line after the last event.
        let no_blank = without_done.strip_suffix('\n').expect("blank line");
        let (chunks, _) = decode_stream_bytes(rel, no_blank.as_bytes());
        assert_eq!(
            chunks, full_chunks,
            "{rel} without [DONE] and last blank line"
        );
    }
}

#[test]
fn stream_ending_right_after_the_finish_chunk_finishes_ok_without_usage() {
    let rel = "openai/chat_stream_text_include_usage_gpt4o.sse";
    let text = read_str(rel);
    let blocks = sse_blocks(&text);
    // Keep everything up to and including the finish chunk (drop usage chunk and [DONE]).
    let end = blocks[blocks.len() - 3].1;
    let (chunks, r) = decode_stream_bytes(rel, &text.as_bytes()[..end]);
    assert_eq!(chunks.len(), 32);
    assert_eq!(r.finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(r.usage, None);
}

/// A stream whose answer arrived whole (finish chunk and usage chunk) finishes OK wherever the
/// connection drops afterwards — also inside the `[DONE]` marker (`data: [DON`).
#[test]
fn stream_cut_inside_done_marker_after_a_whole_answer_finishes_ok() {
    let rel = "openai/chat_stream_text_include_usage_gpt4o.sse";
    let text = read_str(rel);
    let (full_chunks, full) = decode_stream(rel);
    let done_at = text.rfind("data: [DONE]").expect("[DONE]");
    for end in [
        "data: ",
        "data: [",
        "data: [DON",
        "data: [DONE]",
        "data: [DONE]\n",
    ] {
        let cut = done_at + end.len();
        let out = decode_whole(&text.as_bytes()[..cut]);
        assert_eq!(
            out.error.as_ref().map(|(_, e)| e),
            None,
            "cut after {end:?}"
        );
        assert_eq!(out.chunks, full_chunks, "cut after {end:?}");
        assert_eq!(fold(&out.chunks), full, "cut after {end:?}");
    }
}

#[test]
fn stream_cut_before_its_finish_chunk_is_interrupted() {
    let mut checked = 0;
    for rel in all_sse() {
        let text = read_str(&rel);
        let blocks = sse_blocks(&text);
        let Some(&(start, end)) = blocks
            .iter()
            .find(|(s, e)| block_json(&text[*s..*e]).is_some_and(|v| raw_chunk_finishes(&v)))
        else {
            continue; // no finish reason anywhere (Groq's error stream)
        };
        // (The OpenRouter stream ends in an error; its chunks before the error count.)
        let full_chunks = decode_whole(text.as_bytes()).chunks;
        let mid = start + (end - start) / 2;
        // Cut at the event boundary, just after `data: `, and in the middle of the JSON.
        for cut in [start, start + "data: ".len(), mid, end - 3] {
            let out = decode_whole(&text.as_bytes()[..cut]);
            let (stage, e) = out
                .error
                .as_ref()
                .unwrap_or_else(|| panic!("{rel} cut at {cut}: no error: {out:?}"));
            assert_eq!(*stage, Stage::Finish, "{rel} cut at {cut}");
            assert_eq!(
                e.kind(),
                ErrorKind::StreamInterrupted,
                "{rel} cut at {cut}: {e:?}"
            );
            // What was delivered is a prefix of the whole stream's chunks.
            assert!(
                full_chunks.starts_with(&out.chunks),
                "{rel} cut at {cut}: delivered chunks differ from the whole stream's"
            );
            // `finish()` on the plain API reports the same.
            let mut dec = OpenAi::stream_decoder();
            dec.feed(&text.as_bytes()[..cut])
                .expect("no error before the cut");
            let err = dec.finish().expect_err("cut stream");
            assert_eq!(
                err.kind(),
                ErrorKind::StreamInterrupted,
                "{rel} cut at {cut}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 37, "streams with a finish chunk");
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    let rel = "openai/chat_stream_text_include_usage_gpt4o.sse";
    let text = read_str(rel);
    let blocks = sse_blocks(&text);
    // Keep the role chunk and ten text chunks.
    let cut = blocks[10].1;
    let mut dec = OpenAi::stream_decoder();
    let chunks = dec.feed(&text.as_bytes()[..cut]).expect("feed");
    assert_eq!(chunks.len(), 11);
    assert_eq!(content_chunks(&chunks), 10);
    let e = dec.finish().expect_err("cut stream");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(
        e.message().contains("11 chunks") && e.message().contains("10 with content"),
        "message says what was delivered: {:?}",
        e.message()
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitrary splits
// ---------------------------------------------------------------------------------------------

/// Piece sizes, cycled over the body: mostly tiny (1-byte pieces included), some medium,
/// a few large.
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
    assert_eq!(files.len(), 38, ".sse files");
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
        let split = decode_pieces(&bytes, &[1]);
        assert!(split.same_as(&whole), "{rel}: 1-byte pieces");
    }
}

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

/// An expected decoded error.
struct WantErr {
    kind: ErrorKind,
    status: u16,
    code: Option<&'static str>,
    message: Msg,
    request_id: Option<&'static str>,
}

#[derive(Clone, Copy)]
enum Msg {
    Exact(&'static str),
    /// Starts with this and equals the body's `error.message`.
    Prefix(&'static str),
}

#[track_caller]
fn check_error(rel: &str, w: WantErr) {
    let e = decode_error_fixture(rel);
    assert_eq!(e.kind(), w.kind, "{rel}: kind ({e:?})");
    assert_eq!(e.status(), Some(w.status), "{rel}: status");
    assert_eq!(e.code(), w.code, "{rel}: code");
    match w.message {
        Msg::Exact(m) => assert_eq!(e.message(), m, "{rel}: message"),
        Msg::Prefix(p) => {
            assert!(
                e.message().starts_with(p),
                "{rel}: message {:?}",
                e.message()
            );
            let body = read_json(rel);
            assert_eq!(
                Some(e.message()),
                body.pointer("/error/message").and_then(Value::as_str),
                "{rel}: the whole vendor message"
            );
        }
    }
    assert_eq!(e.request_id(), w.request_id, "{rel}: request id");
    // Small bodies are kept whole.
    assert_eq!(
        e.body_snippet(),
        Some(read_str(rel).as_str()),
        "{rel}: body snippet"
    );
}

#[test]
fn openai_error_429_insufficient_quota_is_quota_exhausted() {
    check_error(
        "openai/error_429_insufficient_quota.json",
        WantErr {
            kind: ErrorKind::QuotaExhausted,
            status: 429,
            code: Some("insufficient_quota"),
            message: Msg::Exact(
                "You exceeded your current quota, please check your plan and billing details.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_429_rate_limit_exceeded_is_rate_limited() {
    check_error(
        "openai/error_429_rate_limit_exceeded_requests.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: Some("rate_limit_exceeded"),
            message: Msg::Prefix(
                "Rate limit reached for gpt-4o-mini in organization org-OOhFjD3fpmItZTQAxWOQx11o on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_429_legacy_code_null_is_rate_limited() {
    check_error(
        "openai/error_429_rate_limit_legacy_code_null.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            // code null: the type ("requests") stands in.
            code: Some("requests"),
            message: Msg::Prefix(
                "Rate limit reached for default-gpt-3.5-turbo in organization org-C92hO32J0AGzGOmHi6JKDVk2 on requests per min.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_429_request_too_large_is_the_requests_fault() {
    // One request above the key's per-minute tokens: no key is out of quota, the request is
    // too large for this target (it fails over without parking the key).
    check_error(
        "openai/error_429_request_too_large_tokens.json",
        WantErr {
            kind: ErrorKind::RequestTooLarge,
            status: 429,
            code: Some("rate_limit_exceeded"),
            message: Msg::Prefix(
                "Request too large for gpt-4o in organization org-VDAWofJASuLH0vVz8o9tiQZr on tokens per min (TPM): Limit 30000, Requested 30601.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_401_invalid_api_key_is_auth() {
    // The fixture is only the inner `error` object; the wire body wraps it.
    let rel = "openai/error_401_invalid_api_key.error_object.json";
    let inner = read_json(rel);
    let message = "Incorrect API key provided: kk. You can find your API key at https://platform.openai.com/account/api-keys.";
    let wire = serde_json::to_vec(&json!({ "error": inner })).expect("JSON");
    for body in [wire, read(rel)] {
        let e = decode_error(401, &HeaderMap::new(), &body);
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.status(), Some(401));
        assert_eq!(e.code(), Some("invalid_api_key"));
        assert_eq!(e.message(), message);
    }
    assert_eq!(status_from_name(rel), 401);
}

#[test]
fn openai_error_404_model_not_found_is_not_found() {
    check_error(
        "openai/error_404_model_not_found.json",
        WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: Some("model_not_found"),
            message: Msg::Exact(
                "The model `gpt-5.2-proo` does not exist or you do not have access to it.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_404_raw_with_request_id_header() {
    check_error(
        "openai/error_404_model_not_found_raw.json",
        WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: Some("model_not_found"),
            message: Msg::Exact(
                "The model `non-existent-model` does not exist or you do not have access to it.",
            ),
            request_id: Some("req_9441b7808a504cc8abfc6276fd5c7721"),
        },
    );
}

#[test]
fn openai_error_400_unsupported_parameter_is_invalid_request() {
    check_error(
        "openai/error_400_unsupported_parameter_raw.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("unsupported_parameter"),
            message: Msg::Exact("Unsupported parameter: 'stop' is not supported with this model."),
            request_id: Some("req_7be4715c3ee32aa406eacb68c7cc966e"),
        },
    );
    // The sidecar's x-ratelimit-* headers are no Retry-After.
    let e = decode_error_fixture("openai/error_400_unsupported_parameter_raw.json");
    assert_eq!(e.retry_after(), None);
}

#[test]
fn openai_error_400_unsupported_value_is_invalid_request() {
    check_error(
        "openai/error_400_unsupported_value.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("unsupported_value"),
            message: Msg::Exact(
                "Unsupported value: 'messages[0].role' does not support 'system' with this model.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_400_code_null_is_invalid_request() {
    check_error(
        "openai/error_400_code_null.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("invalid_request_error"),
            message: Msg::Exact("Web search options not supported with this model."),
            request_id: None,
        },
    );
}

#[test]
fn openai_error_500_is_server() {
    check_error(
        "openai/error_500_server_error.json",
        WantErr {
            kind: ErrorKind::Server,
            status: 500,
            code: Some("server_error"),
            message: Msg::Prefix(
                "The server had an error processing your request. Sorry about that!",
            ),
            // The request id is only inside the message text.
            request_id: None,
        },
    );
}

#[test]
fn azure_error_400_content_filter_is_content_filtered() {
    check_error(
        "openai/azure_error_400_content_filter.json",
        WantErr {
            kind: ErrorKind::ContentFiltered,
            status: 400,
            code: Some("content_filter"),
            message: Msg::Prefix(
                "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn deepseek_error_402_is_quota_exhausted() {
    check_error(
        "deepseek/error_402_insufficient_balance.json",
        WantErr {
            kind: ErrorKind::QuotaExhausted,
            status: 402,
            // DeepSeek's type/code look swapped: code "invalid_request_error".
            code: Some("invalid_request_error"),
            message: Msg::Exact("Insufficient Balance"),
            request_id: None,
        },
    );
}

#[test]
fn mistral_error_422_message_object() {
    let rel = "mistral/error_422_message_is_object.json";
    let e = decode_error_fixture(rel);
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert_eq!(e.status(), Some(422));
    assert_eq!(e.code(), Some("invalid_request_error"));
    // The message is the object's JSON text.
    let body = read_json(rel);
    let msg: Value = serde_json::from_str(e.message())
        .unwrap_or_else(|err| panic!("message is not JSON ({err}): {:?}", e.message()));
    assert_eq!(msg, body["message"]);
    assert!(e.message().contains("Extra inputs are not permitted"));
    assert!(e.message().contains("max_completion_tokens"));
}

#[test]
fn mistral_error_429_legacy_is_rate_limited() {
    check_error(
        "mistral/error_429_rate_limit_legacy.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: None,
            message: Msg::Exact("Requests rate limit exceeded"),
            request_id: None,
        },
    );
}

/// Mistral's 2026 shape carries the vendor code as a numeric string, `"code":"1300"`: not the
/// HTTP status, so it is kept.
#[test]
fn mistral_error_429_object_error_is_rate_limited() {
    check_error(
        "mistral/error_429_rate_limited.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: Some("1300"),
            message: Msg::Exact("Rate limit exceeded"),
            request_id: None,
        },
    );
}

#[test]
fn groq_error_400_tool_use_failed_is_invalid_request() {
    check_error(
        "groq/error_400_tool_use_failed.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("tool_use_failed"),
            message: Msg::Prefix(
                "Tool call validation failed: tool call validation failed: parameters for tool get_something_by_name did not match schema",
            ),
            request_id: None,
        },
    );
}

#[test]
fn groq_error_404_is_not_found() {
    check_error(
        "groq/error_404_model_not_found.json",
        WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: Some("model_not_found"),
            message: Msg::Exact(
                "The model `llama-3.3-70b-versatlie` does not exist or you do not have access to it.",
            ),
            request_id: None,
        },
    );
}

#[test]
fn openrouter_error_401_is_auth() {
    check_error(
        "openrouter/error_401_no_auth.json",
        WantErr {
            kind: ErrorKind::Auth,
            status: 401,
            // Integer code 401 only repeats the status.
            code: None,
            message: Msg::Exact("No cookie auth credentials found"),
            // Only a Cloudflare CF-RAY header: a CDN trace id, not the vendor's request id.
            request_id: None,
        },
    );
}

#[test]
fn openrouter_error_429_is_rate_limited_with_upstream_text() {
    check_error(
        "openrouter/error_429_upstream_rate_limited.json",
        WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: None,
            message: Msg::Exact(
                "Provider returned error: google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations",
            ),
            request_id: None,
        },
    );
}

#[test]
fn vllm_error_400_context_length_is_context_length_exceeded() {
    check_error(
        "vllm/error_400_context_length_v0_16.json",
        WantErr {
            kind: ErrorKind::ContextLengthExceeded,
            status: 400,
            // Integer code 400 repeats the status; the type stands in.
            code: Some("BadRequestError"),
            message: Msg::Prefix(
                "You passed 1015 input tokens and requested 10 output tokens. However, the model's context length is only 1024 tokens",
            ),
            request_id: None,
        },
    );
}

#[test]
fn vllm_error_400_legacy_top_level_is_invalid_request() {
    check_error(
        "vllm/error_400_legacy_top_level.json",
        WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("BadRequestError"),
            message: Msg::Exact("max_tokens must be at least 1, got -186."),
            request_id: None,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Sidecars and coverage
// ---------------------------------------------------------------------------------------------

/// Every `.http.json` sidecar belongs to a body file and agrees with it: success bodies were
/// HTTP 200 (`text/event-stream` for `.sse`, JSON otherwise), error bodies carry the status of
/// their file name, and every request went to a `/chat/completions` endpoint.
#[test]
fn sidecars_agree_with_their_bodies() {
    let mut seen = 0;
    for rel in FOLDERS.iter().flat_map(|f| list_folder(f)) {
        let Some(stem) = rel.strip_suffix(".http.json") else {
            continue;
        };
        seen += 1;
        let side = read_sidecar(&rel);
        assert_eq!(side.method, "POST", "{rel}");
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
        let sse = format!("{stem}.sse");
        let json = format!("{stem}.json");
        if fixtures_dir().join(&sse).exists() {
            assert_eq!(side.status, 200, "{rel}");
            assert!(
                content_type.contains("event-stream"),
                "{rel}: {content_type}"
            );
        } else if json
            .rsplit('/')
            .next()
            .is_some_and(|n| n.starts_with("error_"))
        {
            assert_eq!(side.status, status_from_name(&json), "{rel}");
            assert!(content_type.contains("json"), "{rel}: {content_type}");
        } else {
            assert!(
                fixtures_dir().join(&json).exists(),
                "{rel}: no body file next to it"
            );
            assert_eq!(side.status, 200, "{rel}");
            assert!(
                content_type.contains("application/json"),
                "{rel}: {content_type}"
            );
            decode_json(&json);
        }
    }
    assert_eq!(seen, 32, "sidecars found");
}

/// Fails when a fixture file exists that this file does not cover, or when a listed file is
/// gone. Every listed body file (not sidecars) must also be named by some test here.
#[test]
fn fixture_folders_are_fully_covered() {
    let on_disk: BTreeSet<String> = FOLDERS.iter().flat_map(|f| list_folder(f)).collect();
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

    let source = include_str!("fixtures_openai.rs");
    for rel in COVERED.iter().filter(|f| !f.ends_with(".http.json")) {
        let quoted = format!("\"{rel}\"");
        assert!(
            source.matches(&quoted).count() >= 2,
            "{rel} is listed in COVERED but no test names it"
        );
    }
}
