//! OpenAI and Azure OpenAI recordings: answers and streams.

use serde_json::{Value, json};

use super::{Oai, Want};
use crate::support::fixtures::*;
use polyrelay::{FinishReason, Role};

// ---------------------------------------------------------------------------------------------
// OpenAI (and Azure OpenAI): non-streaming
// ---------------------------------------------------------------------------------------------

#[test]
fn openai_chat_text() {
    let r = Oai::check_json(
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
fn openai_chat_tool_calls_content_null() {
    let r = Oai::check_json(
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
    let r = Oai::check_json(
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
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, r) = Oai::check_sse(
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
    let (_, r) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, r) = Oai::check_sse(
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
    let (chunks, r) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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
fn openai_stream_tool_call_include_usage() {
    let (chunks, r) = Oai::check_sse(
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
fn openai_stream_tool_call_strict_fragments() {
    let (chunks, _) = Oai::check_sse(
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
fn openai_vercel_stream_text_include_usage() {
    // Same prompt as `openai/vercel_chat_text.json`, but a separate generation.
    let (chunks, _) = Oai::check_sse(
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
    let (chunks, _) = Oai::check_sse(
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

/// OpenAI and Azure OpenAI answers with nothing to check beyond their row.
#[test]
fn openai_answers_decode_as_recorded() {
    let rows = [
        // Was `openai_o3_mini_reasoning_tokens_are_inside_completion_tokens`.
        // completion_tokens 87 of which reasoning_tokens 64 (total 94 = 7 + 87): output stays 87.
        (
            "openai/chat_text_o3_mini_reasoning_tokens.json",
            Want {
                id: "chatcmpl-Dr3KNfXKBS1oDOrhqYDuLYdjX9PM4",
                model: "o3-mini-2025-01-31",
                created: 1781536547,
                finish: Some(FinishReason::Stop),
                text: Txt::Exact("Hello there! How can I help you today?"),
                usage: Some(u(7, 87, 0, 0, 64)),
                ..Want::default()
            },
        ),
    ];
    Oai::check_table(&rows);
}

/// OpenAI and Azure OpenAI streams with nothing to check beyond their row (decoded whole and
/// folded).
#[test]
fn openai_streams_fold_as_recorded() {
    let rows = [
        // Was `openai_stream_refusal_with_logprobs`.
        (
            "openai/chat_stream_refusal_logprobs.sse",
            Want {
                id: "chatcmpl-ABfw5GEVqPbLY576l46FZDQoNJ2KC",
                model: "gpt-4o-2024-08-06",
                created: 1727346173,
                finish: Some(FinishReason::Stop),
                refusal: Some("I'm very sorry, but I can't assist with that."),
                usage: Some(u(79, 12, 0, 0, 0)),
                ..Want::default()
            },
        ),
        // Was `openai_stream_text_after_tool_include_usage`.
        (
            "openai/chat_stream_text_after_tool_include_usage.sse",
            Want {
                id: "chatcmpl-Dx0Xq5Xx9rHB2ehcHZCRDsnuymUXc",
                model: "gpt-4o-mini-2024-07-18",
                created: 1782955818,
                finish: Some(FinishReason::Stop),
                text: Txt::Exact("The capital of the UK is London."),
                usage: Some(u(78, 9, 0, 0, 0)),
                ..Want::default()
            },
        ),
        // Was `openai_stream_tool_call_non_strict`.
        (
            "openai/chat_stream_tool_call_non_strict.sse",
            Want {
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
        ),
        // Was `openai_stream_tool_call_strict_2`.
        (
            "openai/chat_stream_tool_call_strict_2.sse",
            Want {
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
        ),
    ];
    Oai::check_table(&rows);
}
