//! Non-streaming messages.

use std::time::Duration;

use polyrelay::{ErrorKind, FinishReason};
use reqwest::header::HeaderValue;
use serde_json::Value;

use super::*;

// ---------------------------------------------------------------------------------------------
// Non-streaming responses
// ---------------------------------------------------------------------------------------------

#[test]
fn messages_text_with_ratelimit_headers() {
    Ant::check_json(
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

/// Programmatic tool calling: a `server_tool_use` block (code execution, run by Anthropic) is
/// not a client tool call and is skipped; the `tool_use` it triggered (with a `caller` naming
/// it) is one. The `container` field is ignored.
#[test]
fn messages_programmatic_tool_use_skips_the_server_tool_block() {
    Ant::check_json(
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
fn messages_tool_use_empty_input_is_empty_object() {
    let r = Ant::check_json(
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
    let r = Ant::check_json(
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

/// Every non-streaming body, decoded, agrees with its raw JSON read field by field here (an
/// independent reading of the recording).
#[test]
fn every_message_body_agrees_with_its_raw_json() {
    let bodies: Vec<String> = Ant::files()
        .into_iter()
        .filter(|f| f.ends_with(".json") && !f.ends_with(".http.json"))
        .filter(|f| !f.contains("/error_"))
        .collect();
    assert_eq!(bodies.len(), 11, "message bodies");
    for rel in bodies {
        let raw = read_json(&rel);
        let r = Ant::decode_json(&rel);
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

/// Messages with nothing to check beyond their row.
#[test]
fn messages_decode_as_recorded() {
    let rows = [
        // Was `messages_text`.
        (
            "anthropic/messages_text.json",
            Want {
                id: "msg_01Fg1JVgvCYUHWsxrj9GkpEv",
                model: "claude-3-opus-20240229",
                finish: FinishReason::Stop,
                text: Some(Txt::Exact("The capital of France is Paris.")),
                reasoning: None,
                blocks: &[],
                calls: &[],
                usage: (20, 10, 0, 0, 0),
            },
        ),
        // Was `vercel_messages_text`.
        (
            "anthropic/vercel_messages_text.json",
            Want {
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
        ),
        // Was `messages_parallel_tool_use_text_then_four_calls`.
        (
            "anthropic/messages_parallel_tool_use.json",
            Want {
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
        ),
        // Was `messages_thinking_signed_block`.
        (
            "anthropic/messages_thinking.json",
            Want {
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
        ),
        // Was `messages_thinking_then_text_then_no_arg_tool_call`.
        (
            "anthropic/messages_thinking_tool_use.json",
            Want {
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
        ),
        // Was `vercel_messages_tool_use_json`.
        (
            "anthropic/vercel_messages_tool_use_json.json",
            Want {
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
        ),
        // Was `vercel_messages_tool_use_no_args`.
        (
            "anthropic/vercel_messages_tool_use_no_args.json",
            Want {
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
        ),
    ];
    Ant::check_table(&rows);
}
