//! generateContent (non-streamed).

use super::*;

// ---------------------------------------------------------------------------------------------
// generateContent (non-streamed)
// ---------------------------------------------------------------------------------------------

#[test]
fn generate_finish_safety_with_empty_content_is_content_filter() {
    // `content: {}` (no parts, no role) and safetyRatings with blocked: true.
    let r = Gem::check_json(
        "gemini/generate_finish_safety.json",
        &Want {
            id: "5lpeaLOIBf__698Pv8HGgAg",
            model: "gemini-1.5-flash",
            finish: FinishReason::ContentFilter,
            usage: Some(u(14, 0, 0, 0, 0)),
            ..Want::default()
        },
    );
    assert_eq!(r.choices[0].message.refusal, None);
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
    assert_usage("openai_compat", r.usage, u(35, 12, 0, 0, 0));
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

/// Answers with nothing to check beyond their row (each decoded twice: decoding is
/// deterministic, generated ids included).
#[test]
fn answers_decode_as_recorded() {
    let rows = [
        // Was `generate_text`.
        (
            "gemini/generate_text.json",
            Want {
                id: "bzlXaa_EE_aHqtsPi_zw8Ao",
                model: "gemini-2.5-flash",
                text: Txt::Exact("Hello! How can I help you today?"),
                // 9 prompt; 9 candidates + 34 thoughts (total 52).
                usage: Some(u(9, 43, 0, 0, 34)),
                ..Want::default()
            },
        ),
        // Was `generate_finish_max_tokens_is_length`.
        (
            "gemini/generate_finish_max_tokens.json",
            Want {
                id: "R5MoavWNNp_8qtsP2fWD2A0",
                model: "gemini-2.5-flash",
                finish: FinishReason::Length,
                text: Txt::Exact("The capital of France is"),
                usage: Some(u(15, 5, 0, 0, 0)),
                ..Want::default()
            },
        ),
        // Was `generate_max_tokens_with_role_only_content`.
        // Gemini 2.5 Pro spent the whole budget thinking: `content: {"role": "model"}`, no parts.
        (
            "gemini/generate_max_tokens_empty_content.json",
            Want {
                id: "fH8oaunbEbr9qtsPjYGX4A0",
                model: "gemini-2.5-pro",
                finish: FinishReason::Length,
                usage: Some(u(15, 2, 0, 0, 2)),
                ..Want::default()
            },
        ),
        // Was `generate_function_call_with_thought_signature`.
        // Gemini says STOP; a turn that calls tools is reported as tool_calls.
        (
            "gemini/generate_function_call.json",
            Want {
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
                usage: Some(u(57, 139, 0, 0, 124)),
                ..Want::default()
            },
        ),
        // Was `generate_thinking_with_thought_parts_and_signed_text`.
        // One thought part, then the answer's text part carrying the signature.
        (
            "gemini/generate_thinking.json",
            Want {
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
                usage: Some(u(29, 1737, 0, 0, 1001)),
                ..Want::default()
            },
        ),
        // Was `vercel_function_call`.
        (
            "gemini/vercel_function_call.json",
            Want {
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
                usage: Some(u(29, 908, 0, 0, 893)),
                ..Want::default()
            },
        ),
        // Was `vercel_function_call_gemini3`.
        (
            "gemini/vercel_function_call_gemini3.json",
            Want {
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
                usage: Some(u(29, 1816, 0, 0, 1801)),
                ..Want::default()
            },
        ),
        // Was `vercel_reasoning_signature_without_thought_text`.
        // Thinking without includeThoughts: no thought text, only a signature on the answer.
        (
            "gemini/vercel_reasoning.json",
            Want {
                id: "YH6LaZT7ENmPxN8P-r2J8Aw",
                model: "gemini-3-pro-preview",
                text: Txt::Exact(
                    "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
                ),
                blocks: &[(Thought::Empty, "EvsFCvgFAb4+9vtg", 100)],
                usage: Some(u(9, 311, 0, 0, 282)),
                ..Want::default()
            },
        ),
        // Was `vercel_reasoning_gemini3`.
        (
            "gemini/vercel_reasoning_gemini3.json",
            Want {
                id: "DniLab2dFPeSxN8PpqXY4Ag",
                model: "gemini-3-pro-preview",
                text: Txt::Exact(
                    "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
                ),
                blocks: &[(Thought::Empty, "EswFCskFAb4+9vu5", 128)],
                usage: Some(u(9, 287, 0, 0, 258)),
                ..Want::default()
            },
        ),
        // Was `vercel_text`.
        (
            "gemini/vercel_text.json",
            Want {
                id: "Un6LacrVMcjUxs0PmJfWoQc",
                model: "gemini-3-pro-preview",
                text: Txt::Exact(
                    "There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.",
                ),
                blocks: &[(Thought::Empty, "EtoFCtcFAb4+9vtf", 100)],
                usage: Some(u(9, 272, 0, 0, 244)),
                ..Want::default()
            },
        ),
    ];
    Gem::check_table(&rows);
}
