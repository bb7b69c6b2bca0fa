//! OpenAI-compatible vendors and gateways: xAI, OpenRouter, Cerebras, Perplexity, Ollama, Z.ai
//! and other gateways.

use super::{Oai, Want};
use crate::support::fixtures::*;
use polyrelay::{ErrorKind, FinishReason};

// ---------------------------------------------------------------------------------------------
// xAI
// ---------------------------------------------------------------------------------------------

#[test]
fn xai_vercel_stream_text() {
    // 12 + 1 + 290 = 303 = total. The chunk log is abridged: 290 reasoning tokens, but only
    // "First, the user said" was kept.
    let (chunks, _) = Oai::check_sse(
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

// ---------------------------------------------------------------------------------------------
// OpenRouter
// ---------------------------------------------------------------------------------------------

#[test]
fn openrouter_stream_reasoning_skips_processing_comments() {
    let rel = "openrouter/chat_stream_reasoning.sse";
    assert!(read_str(rel).starts_with(": OPENROUTER PROCESSING\n\n"));
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
    let out = Oai::decode_whole(&read(rel));
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
    assert!(Oai::stream_decoder().feed(&read(rel)).is_err());
}

// ---------------------------------------------------------------------------------------------
// Cerebras, Perplexity, Ollama, Z.ai, other gateways
// ---------------------------------------------------------------------------------------------

#[test]
fn perplexity_stream_repeats_growing_usage() {
    // The chunk log is abridged (completion_tokens jumps from 5 to 333), so the folded text is
    // only the kept fragments.
    let (chunks, _) = Oai::check_sse(
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
    let r = Oai::check_json(
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
fn ollama_native_ndjson_is_not_an_openai_stream() {
    let rel = "ollama/native_api_chat_stream.ndjson";
    let bytes = read(rel);
    for sizes in [&[usize::MAX][..], &[1], &[7, 64]] {
        let out = Oai::decode_pieces(&bytes, sizes);
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
    assert!(Oai::decode_response(&bytes).is_err());
}

#[test]
fn aihubmix_stream_without_finish_reason_keys() {
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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

/// Answers of xAI, OpenRouter, Cerebras, Perplexity and Ollama with nothing to check beyond
/// their row.
#[test]
fn gateway_answers_decode_as_recorded() {
    let rows = [
        // Was `xai_vercel_text_reasoning_outside_completion_tokens`.
        // 12 + 1 + 228 = 241 = total: reasoning is added to the output.
        (
            "xai/vercel_chat_text.json",
            Want {
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
        ),
        // Was `xai_vercel_tool_call`.
        // 291 + 26 + 189 = 506 = total.
        (
            "xai/vercel_chat_tool_call.json",
            Want {
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
        ),
        // Was `openrouter_reasoning_details`.
        (
            "openrouter/chat_reasoning_details.json",
            Want {
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
        ),
        // Was `openrouter_tool_calls`.
        (
            "openrouter/chat_tool_calls.json",
            Want {
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
        ),
        // Was `cerebras_gpt_oss_reasoning_field`.
        (
            "cerebras/chat_reasoning_gpt_oss.json",
            Want {
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
        ),
        // Was `perplexity_vercel_citations`.
        (
            "perplexity/vercel_chat_citations.json",
            Want {
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
        ),
        // Was `perplexity_vercel_text`.
        (
            "perplexity/vercel_chat_text.json",
            Want {
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
        ),
        // Was `ollama_cloud_tool_calls_with_reasoning`.
        (
            "ollama/chat_tool_calls.json",
            Want {
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
        ),
    ];
    Oai::check_table(&rows);
}

/// Streams of xAI, OpenRouter, Z.ai and other gateways with nothing to check beyond their row
/// (decoded whole and folded).
#[test]
fn gateway_streams_fold_as_recorded() {
    let rows = [
        // Was `xai_vercel_stream_tool_call`.
        // 291 + 26 + 196 = 513 = total.
        (
            "xai/vercel_chat_stream_tool_call.sse",
            Want {
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
        ),
        // Was `zai_stream_reasoning_content`.
        (
            "zai/chat_stream_reasoning_content.sse",
            Want {
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
        ),
    ];
    Oai::check_table(&rows);
}
