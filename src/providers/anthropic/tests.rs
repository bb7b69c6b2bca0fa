//! Unit tests of the Anthropic codec: request mapping, usage, errors, stream edge cases.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::wire::{self, parse_rfc3339, ratelimit_reset_at};
use super::*;
use crate::error::ErrorKind;
use crate::providers::EventHandler;
use crate::types::response_to_chunks as response_chunks;
use crate::types::{
    ChatChunk, ContentPart, FinishReason, JsonSchemaFormat, Message, ReasoningEffort,
    ResponseFormat, Role, StreamAccumulator, ThinkingBlock, Tool, ToolCall, ToolChoice,
};

fn encode(req: &ChatRequest) -> Value {
    let bytes = encode_request(req, "claude-test", false).expect("encodes");
    serde_json::from_slice(&bytes).expect("valid JSON")
}

fn encode_err(req: &ChatRequest) -> Error {
    encode_request(req, "claude-test", false).expect_err("must not encode")
}

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    )
}

// ---------------------------------------------------------------------------------------------
// Request mapping
// ---------------------------------------------------------------------------------------------

#[test]
fn minimal_request_shape() {
    let v = encode(&ChatRequest::new("x").user("Hi"));
    assert_eq!(
        v,
        json!({
            "model": "claude-test",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
        })
    );
    let bytes = encode_request(&ChatRequest::new("x").user("Hi"), "m", true).expect("encodes");
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(v["stream"], true);
}

#[test]
fn system_and_developer_messages_merge_into_top_level_system_in_order() {
    let mut dev = Message::new(Role::Developer, "Be brief.");
    dev.name = Some("ops".into());
    let req = ChatRequest::new("x")
        .system("You are Claude.")
        .user("Hi")
        .message(dev)
        .assistant("Hello")
        .system("Answer in French.");
    let v = encode(&req);
    assert_eq!(
        v["system"],
        "You are Claude.\n\nBe brief.\n\nAnswer in French."
    );
    let roles: Vec<&str> = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().expect("role"))
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
}

#[test]
fn consecutive_same_role_messages_merge_into_one_turn() {
    let req = ChatRequest::new("x")
        .user("one")
        .user("two")
        .assistant("three")
        .assistant("four")
        .user("five");
    let v = encode(&req);
    assert_eq!(
        v["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "three"}, {"type": "text", "text": "four"}]},
            {"role": "user", "content": [{"type": "text", "text": "five"}]}
        ])
    );
}

#[test]
fn empty_messages_are_left_out_and_do_not_split_turns() {
    let req = ChatRequest::new("x").user("one").assistant("").user("two");
    let v = encode(&req);
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        v["messages"][0]["content"].as_array().map(Vec::len),
        Some(2)
    );
}

#[test]
fn tool_calls_and_results_grouped_in_one_user_turn() {
    let calls = vec![
        ToolCall::function("toolu_1", "get_weather", r#"{"city": "Paris"}"#),
        ToolCall::function("toolu_2", "get_time", ""),
    ];
    let mut assistant = Message::assistant_tool_calls(calls);
    assistant.content = Some("Let me check.".into());
    let req = ChatRequest::new("x")
        .user("Weather and time in Paris?")
        .message(assistant)
        .message(Message::tool_result("toolu_1", "18°C"))
        .message(Message::tool_result("toolu_2", ""))
        .user("Thanks");
    let v = encode(&req);
    assert_eq!(
        v["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
        ]})
    );
    assert_eq!(
        v["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
            {"type": "tool_result", "tool_use_id": "toolu_2"},
            {"type": "text", "text": "Thanks"}
        ]})
    );
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(3));
}

#[test]
fn tool_result_with_parts() {
    let mut m = Message::tool_result("toolu_1", "");
    m.content = Some(crate::types::Content::Parts(vec![
        ContentPart::text("chart:"),
        ContentPart::image_url("data:image/png;base64,AAAA"),
    ]));
    let v = encode(&ChatRequest::new("x").message(m));
    assert_eq!(
        v["messages"][0]["content"][0]["content"],
        json!([
            {"type": "text", "text": "chart:"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}
        ])
    );
}

#[test]
fn bad_tool_call_arguments_are_invalid_requests_naming_the_call() {
    for args in ["{not json", "[1, 2]", "42"] {
        let req = ChatRequest::new("x")
            .user("q")
            .message(Message::assistant_tool_calls(vec![ToolCall::function(
                "toolu_bad",
                "f",
                args,
            )]));
        let e = encode_err(&req);
        assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{args}");
        assert!(e.message().contains("toolu_bad"), "{args}: {}", e.message());
    }
    let e = encode_err(&ChatRequest::new("x").message(Message::new(Role::Tool, "r")));
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("tool_call_id"));
}

#[test]
fn tool_choice_mapping() {
    let base = || ChatRequest::new("x").user("q").tool(weather_tool());
    let cases = [
        (ToolChoice::Auto, json!({"type": "auto"})),
        (ToolChoice::Required, json!({"type": "any"})),
        (ToolChoice::None, json!({"type": "none"})),
        (
            ToolChoice::Function("get_weather".into()),
            json!({"type": "tool", "name": "get_weather"}),
        ),
        (
            ToolChoice::Other(json!({"type": "any", "disable_parallel_tool_use": true})),
            json!({"type": "any", "disable_parallel_tool_use": true}),
        ),
    ];
    for (choice, want) in cases {
        let v = encode(&base().tool_choice(choice.clone()));
        assert_eq!(v["tool_choice"], want, "{choice:?}");
    }
    // No tool_choice given: none sent.
    assert!(encode(&base()).get("tool_choice").is_none());
    // parallel_tool_calls = false.
    let mut req = base().tool_choice(ToolChoice::Required);
    req.parallel_tool_calls = Some(false);
    assert_eq!(
        encode(&req)["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    let mut req = base();
    req.parallel_tool_calls = Some(false);
    assert_eq!(
        encode(&req)["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let mut req = base().tool_choice(ToolChoice::None);
    req.parallel_tool_calls = Some(false);
    assert_eq!(encode(&req)["tool_choice"], json!({"type": "none"}));
    // Without tools no tool_choice is sent.
    let v = encode(
        &ChatRequest::new("x")
            .user("q")
            .tool_choice(ToolChoice::Required),
    );
    assert!(v.get("tool_choice").is_none());
    // An OpenAI-only form is refused, not guessed.
    let e = encode_err(&base().tool_choice(ToolChoice::Other(json!({"type": "allowed_tools"}))));
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn tools_mapping() {
    let mut bare = Tool::function("ping", "Ping", json!(null));
    if let Some(f) = bare.function.as_mut() {
        f.parameters = None;
        f.description = None;
    }
    let untyped = Tool::function("f", "F", json!({"properties": {}}));
    let server: Tool = serde_json::from_value(
        json!({"type": "web_search_20250305", "name": "web_search", "max_uses": 3}),
    )
    .expect("tool");
    let req = ChatRequest::new("x")
        .user("q")
        .tool(weather_tool())
        .tool(bare)
        .tool(untyped)
        .tool(server);
    let v = encode(&req);
    assert_eq!(
        v["tools"],
        json!([
            {"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
            {"name": "ping", "input_schema": {"type": "object", "properties": {}}},
            {"name": "f", "description": "F", "input_schema": {"type": "object", "properties": {}}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ])
    );
}

#[test]
fn images_map_to_base64_and_url_sources() {
    let req = ChatRequest::new("x").message(Message::user_parts(vec![
        ContentPart::text("What is this?"),
        ContentPart::image_url("data:image/jpeg;base64,/9j/4AAQ"),
        ContentPart::image_url("https://example.com/cat.png"),
        ContentPart::Other(json!({"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}})),
    ]));
    let v = encode(&req);
    assert_eq!(
        v["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
            {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
        ])
    );
    for bad in [
        "data:image/png,rawbytes",
        "ftp://example.com/a.png",
        "data:image/png;base64",
    ] {
        let req =
            ChatRequest::new("x").message(Message::user_parts(vec![ContentPart::image_url(bad)]));
        assert_eq!(encode_err(&req).kind(), ErrorKind::InvalidRequest, "{bad}");
    }
    let req = ChatRequest::new("x").message(Message::user_parts(vec![ContentPart::Other(
        json!({"type": "input_audio", "input_audio": {}}),
    )]));
    let e = encode_err(&req);
    assert!(e.message().contains("input_audio"), "{}", e.message());
}

#[test]
fn thinking_blocks_are_replayed_first_in_their_turn() {
    let mut first = Message::assistant("Let me look.");
    first.tool_calls = vec![ToolCall::function("toolu_1", "lookup", "{}")];
    first.reasoning = Some("unsigned text is not sent".into());
    first.thinking_blocks = vec![
        ThinkingBlock::Thinking {
            thinking: "I should look it up.".into(),
            signature: Some("sig-1".into()),
            source: None,
        },
        ThinkingBlock::Redacted {
            data: "opaque".into(),
        },
        ThinkingBlock::Thinking {
            thinking: "no signature".into(),
            signature: None,
            source: None,
        },
        ThinkingBlock::Unknown,
    ];
    let mut second = Message::assistant("More.");
    second.thinking_blocks = vec![ThinkingBlock::Thinking {
        thinking: "later".into(),
        signature: Some("sig-2".into()),
        source: None,
    }];
    let req = ChatRequest::new("x")
        .user("q")
        .message(first)
        .message(second);
    let v = encode(&req);
    assert_eq!(
        v["messages"][1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should look it up.", "signature": "sig-1"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "thinking", "thinking": "later", "signature": "sig-2"},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
            {"type": "text", "text": "More."}
        ]})
    );
}

#[test]
fn max_tokens_default_limit_and_provider_default() {
    assert_eq!(encode(&ChatRequest::new("x").user("q"))["max_tokens"], 4096);
    assert_eq!(
        encode(&ChatRequest::new("x").user("q").max_tokens(300))["max_tokens"],
        300
    );
    let mut req = ChatRequest::new("x").user("q").max_tokens(300);
    req.max_completion_tokens = Some(500);
    assert_eq!(
        encode(&req)["max_tokens"],
        500,
        "max_completion_tokens wins"
    );
    let bytes =
        wire::encode_request(&ChatRequest::new("x").user("q"), "m", false, 8192).expect("encodes");
    let v: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(v["max_tokens"], 8192);
}

#[test]
fn reasoning_effort_maps_to_a_thinking_budget_below_max_tokens() {
    let with = |effort: ReasoningEffort, limit: Option<u32>| {
        let mut req = ChatRequest::new("x").user("q").temperature(0.2);
        req.top_p = Some(0.9);
        req.reasoning_effort = Some(effort);
        req.max_tokens = limit;
        encode(&req)
    };
    let v = with(ReasoningEffort::Low, None);
    assert_eq!(
        v["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(v["max_tokens"], 1024 + 4096);
    assert!(v.get("temperature").is_none() && v.get("top_p").is_none());
    let v = with(ReasoningEffort::Medium, Some(1000));
    assert_eq!(v["thinking"]["budget_tokens"], 4096);
    assert_eq!(v["max_tokens"], 4096 + 1000);
    let v = with(ReasoningEffort::High, Some(20_000));
    assert_eq!(v["thinking"]["budget_tokens"], 16384);
    assert_eq!(v["max_tokens"], 20_000);
    let v = with(ReasoningEffort::High, Some(16384));
    assert_eq!(
        v["max_tokens"],
        16384 * 2,
        "a limit equal to the budget is raised"
    );
    let v = with(ReasoningEffort::Other("xhigh".into()), None);
    assert_eq!(v["thinking"]["budget_tokens"], 32768);
    for effort in [
        ReasoningEffort::None,
        ReasoningEffort::Minimal,
        ReasoningEffort::Other("turbo".into()),
    ] {
        let v = with(effort.clone(), None);
        assert!(v.get("thinking").is_none(), "{effort:?}");
        assert_eq!(v["max_tokens"], 4096);
        assert_eq!(v["temperature"], 0.2);
        assert_eq!(v["top_p"], 0.9);
    }
}

#[test]
fn response_format_json_schema_and_json_object() {
    let schema = json!({"type": "array", "items": {"type": "integer"}});
    let req = ChatRequest::new("x")
        .user("ids?")
        .response_format(ResponseFormat::JsonSchema(JsonSchemaFormat::new(
            "ids",
            schema.clone(),
        )));
    let v = encode(&req);
    assert_eq!(
        v["output_config"],
        json!({"format": {"type": "json_schema", "schema": schema}})
    );
    assert!(v.get("system").is_none());
    let req = ChatRequest::new("x")
        .system("Be terse.")
        .user("q")
        .response_format(ResponseFormat::JsonObject);
    let v = encode(&req);
    assert_eq!(
        v["system"],
        format!("Be terse.\n\n{JSON_OBJECT_INSTRUCTION}")
    );
    assert!(v.get("output_config").is_none());
    let v = encode(
        &ChatRequest::new("x")
            .user("q")
            .response_format(ResponseFormat::Text),
    );
    assert!(v.get("system").is_none() && v.get("output_config").is_none());
}

#[test]
fn sampling_stop_user_and_unforwarded_fields() {
    let mut req = ChatRequest::new("x").user("q").temperature(1.7);
    req.top_p = Some(0.5);
    req.stop = vec!["END".into(), "STOP".into()];
    req.user = Some("user-42".into());
    req.seed = Some(7);
    req.n = Some(1);
    req.extra.insert("logit_bias".into(), json!({"1": 2}));
    req.extra.insert("anthropic_top_k".into(), json!(5));
    let v = encode(&req);
    assert_eq!(v["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(v["top_p"], 0.5);
    assert_eq!(v["stop_sequences"], json!(["END", "STOP"]));
    assert_eq!(v["metadata"], json!({"user_id": "user-42"}));
    for absent in [
        "seed",
        "n",
        "logit_bias",
        "anthropic_top_k",
        "stop",
        "user",
        "stream",
    ] {
        assert!(v.get(absent).is_none(), "{absent} is not forwarded");
    }
    req.n = Some(2);
    assert_eq!(encode_err(&req).kind(), ErrorKind::InvalidRequest);
    let e = encode_err(
        &ChatRequest::new("x").message(Message::new(Role::Other("function".into()), "r")),
    );
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

// ---------------------------------------------------------------------------------------------
// Responses and usage
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_counts_cache_reads_and_writes_as_input() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "pause_turn",
        "usage": {"input_tokens": 100, "cache_read_input_tokens": 50,
                  "cache_creation_input_tokens": 25, "output_tokens": 7}
    });
    let r = decode_response(body.to_string().as_bytes()).expect("decodes");
    let u = r.usage.expect("usage");
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens
        ),
        (175, 7, 50, 25)
    );
    assert_eq!(u.uncached_input_tokens(), 100);
    assert_eq!(
        r.finish_reason(),
        Some(&FinishReason::Other("pause_turn".into()))
    );
    assert_eq!(r.object, "chat.completion");
}

#[test]
fn finish_reasons() {
    for (wire, want) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
    ] {
        let body = json!({"type": "message", "content": [], "stop_reason": wire});
        let r = decode_response(body.to_string().as_bytes()).expect("decodes");
        assert_eq!(r.finish_reason(), Some(&want), "{wire}");
    }
    // No content and no stop reason: nothing in it, a failure rather than an empty answer.
    let e = decode_response(br#"{"type":"message","content":[],"stop_reason":null}"#)
        .expect_err("nothing in it");
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.message().contains("no content block"), "{e}");
}

#[test]
fn error_bodies_in_a_200_and_garbage() {
    let e = decode_response(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .expect_err("error object");
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.status(), None);
    assert_eq!(e.code(), Some("overloaded_error"));
    let e = decode_response(b"<html>bad gateway</html>").expect_err("not JSON");
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(e.body_snippet().is_some_and(|b| b.contains("bad gateway")));
}

#[test]
fn http_error_kinds() {
    let body = |ty: &str, msg: &str| {
        json!({"type": "error", "error": {"type": ty, "message": msg}, "request_id": "req_1"})
            .to_string()
    };
    let h = HeaderMap::new();
    for (status, ty, msg, want) in [
        (
            400,
            "invalid_request_error",
            "max_tokens: field required",
            ErrorKind::InvalidRequest,
        ),
        (
            400,
            "invalid_request_error",
            "prompt is too long: 210000 tokens > 200000 maximum",
            ErrorKind::ContextLengthExceeded,
        ),
        (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API.",
            ErrorKind::QuotaExhausted,
        ),
        (
            401,
            "authentication_error",
            "invalid x-api-key",
            ErrorKind::Auth,
        ),
        (402, "billing_error", "billing", ErrorKind::QuotaExhausted),
        (403, "permission_error", "no", ErrorKind::Auth),
        (404, "not_found_error", "model: x", ErrorKind::NotFound),
        (
            413,
            "request_too_large",
            "Request exceeds the maximum size",
            ErrorKind::RequestTooLarge,
        ),
        (429, "rate_limit_error", "slow down", ErrorKind::RateLimited),
        (500, "api_error", "Internal server error", ErrorKind::Server),
        (504, "timeout_error", "timeout", ErrorKind::Server),
        (529, "overloaded_error", "Overloaded", ErrorKind::Overloaded),
    ] {
        let e = decode_error(status, &h, body(ty, msg).as_bytes());
        assert_eq!(e.kind(), want, "{status} {ty}");
        assert_eq!(e.status(), Some(status));
        assert_eq!(e.code(), Some(ty));
        assert_eq!(e.message(), msg);
        assert_eq!(e.request_id(), Some("req_1"));
    }
}

#[test]
fn http_errors_redact_the_key() {
    let key = "sk-ant-secret-123456";
    let body = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"bad key {key}"}}}}"#
    );
    let e = wire::decode_error_with(401, &HeaderMap::new(), body.as_bytes(), &|s| {
        crate::ApiKey::new(key).redact(s)
    });
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(key), "{shown}");
    assert!(e.message().contains("[REDACTED]"));
}

// ---------------------------------------------------------------------------------------------
// Retry hints
// ---------------------------------------------------------------------------------------------

fn at(s: &str) -> SystemTime {
    parse_rfc3339(s).unwrap_or_else(|| panic!("{s} parses"))
}

#[test]
fn rfc3339_timestamps() {
    let t = at("2026-02-25T20:02:37Z");
    assert_eq!(
        t.duration_since(SystemTime::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs()),
        Some(1_772_049_757)
    );
    assert_eq!(at("1970-01-01T00:00:00Z"), SystemTime::UNIX_EPOCH);
    assert_eq!(
        at("2000-02-29T12:00:00.250Z"),
        SystemTime::UNIX_EPOCH + Duration::from_millis(951_825_600_250)
    );
    assert_eq!(at("2026-02-25T21:02:37+01:00"), t);
    assert_eq!(at("2026-02-25T19:32:37-00:30"), t);
    assert_eq!(at("2026-02-25t20:02:37z"), t);
    for bad in [
        "",
        "2026-02-25",
        "2026-02-25T20:02:37",
        "+026-02-25T20:02:37Z",
        "2026-13-01T00:00:00Z",
        "2026-02-25T24:00:00Z",
        "2026-02-25T20:02:37.Z",
        "2026-02-25T20:02:37Zjunk",
        "1969-12-31T23:59:59Z",
        "ANTHROPIC-RATELIMIT-INPUT-TOKENS-RESET-XXX",
        "2026-02-25T20:02:37+0100",
        "２０２６-02-25T20:02:37Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
    }
}

/// The full header set of `messages_ratelimit_headers_programmatic_tool_use.http.json`.
fn recorded_limits() -> HeaderMap {
    crate::http::ratelimit::tests::recorded_headers(
        "anthropic/messages_ratelimit_headers_programmatic_tool_use.http.json",
    )
}

#[test]
fn ratelimit_reset_of_the_exhausted_limit() {
    let now = at("2026-02-25T20:02:30Z");
    let mut h = recorded_limits();
    // Nothing exhausted: the resets do not explain a 429.
    assert_eq!(ratelimit_reset_at(&h, now), None);
    h.insert(
        "anthropic-ratelimit-input-tokens-remaining",
        HeaderValue::from_static("0"),
    );
    assert_eq!(ratelimit_reset_at(&h, now), Some(Duration::from_secs(7)));
    h.insert(
        "anthropic-ratelimit-requests-remaining",
        HeaderValue::from_static("0"),
    );
    assert_eq!(
        ratelimit_reset_at(&h, now),
        Some(Duration::from_secs(7)),
        "the latest reset of the exhausted limits"
    );
    // Resets in the past: retry now.
    assert_eq!(
        ratelimit_reset_at(&h, at("2026-02-25T21:00:00Z")),
        Some(Duration::ZERO)
    );
    // No remaining headers at all: the latest reset.
    let mut only_resets = HeaderMap::new();
    only_resets.insert(
        "anthropic-ratelimit-requests-reset",
        HeaderValue::from_static("2026-02-25T20:02:32Z"),
    );
    only_resets.insert(
        "anthropic-ratelimit-tokens-reset",
        HeaderValue::from_static("2026-02-25T20:02:40Z"),
    );
    assert_eq!(
        ratelimit_reset_at(&only_resets, now),
        Some(Duration::from_secs(10))
    );
    // Redacted values (the crewAI recordings) give nothing.
    let mut redacted = HeaderMap::new();
    redacted.insert(
        "anthropic-ratelimit-tokens-reset",
        HeaderValue::from_static("ANTHROPIC-RATELIMIT-TOKENS-RESET-XXX"),
    );
    assert_eq!(ratelimit_reset_at(&redacted, now), None);
    // Far future: capped.
    let mut far = HeaderMap::new();
    far.insert(
        "anthropic-ratelimit-requests-reset",
        HeaderValue::from_static("2999-01-01T00:00:00Z"),
    );
    assert_eq!(
        ratelimit_reset_at(&far, now),
        Some(crate::http::retry_after::MAX_RETRY_AFTER)
    );
}

#[test]
fn retry_after_header_wins_over_ratelimit_resets() {
    let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
    let mut h = HeaderMap::new();
    h.insert(
        "anthropic-ratelimit-requests-reset",
        HeaderValue::from_static("2999-01-01T00:00:00Z"),
    );
    let e = decode_error(429, &h, body);
    assert_eq!(
        e.retry_after(),
        Some(crate::http::retry_after::MAX_RETRY_AFTER)
    );
    h.insert("retry-after", HeaderValue::from_static("12"));
    assert_eq!(
        decode_error(429, &h, body).retry_after(),
        Some(Duration::from_secs(12))
    );
    // Only a 429 reads the resets.
    h.remove("retry-after");
    let overloaded =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    assert_eq!(decode_error(529, &h, overloaded).retry_after(), None);
}

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

fn sse(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| {
            let ty = e["type"].as_str().unwrap_or("");
            format!("event: {ty}\ndata: {e}\n\n")
        })
        .collect()
}

fn run(body: &str) -> (Vec<ChatChunk>, Result<(), Error>) {
    let mut dec = Anthropic::stream_decoder();
    let mut out = VecDeque::new();
    let r = dec
        .feed_into(body.as_bytes(), &mut out)
        .and_then(|()| dec.finish_into(&mut out));
    (out.into(), r)
}

fn fold(chunks: &[ChatChunk]) -> ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(c);
    }
    acc.finish()
}

fn start(usage: Value) -> Value {
    json!({"type": "message_start", "message": {"id": "msg_1", "model": "m", "content": [], "usage": usage}})
}

#[test]
fn stream_usage_merges_start_and_delta_fields() {
    let body = sse(&[
        start(
            json!({"input_tokens": 10, "cache_read_input_tokens": 200, "cache_creation_input_tokens": 30, "output_tokens": 1}),
        ),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
        json!({"type": "content_block_stop", "index": 0}),
        // Only output_tokens, as older recordings have it.
        json!({"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 64}}),
        json!({"type": "message_stop"}),
    ]);
    let (chunks, r) = run(&body);
    r.expect("whole stream");
    let f = fold(&chunks);
    let u = f.usage.expect("usage");
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens
        ),
        (240, 64, 200, 30)
    );
    assert_eq!(f.finish_reason(), Some(&FinishReason::Length));
    assert_eq!(f.text(), "hi");
    assert_eq!((f.id.as_str(), f.model.as_str()), ("msg_1", "m"));
    // The start's count rides on the first chunk (an abandoned attempt is billed for it),
    // the total on the last.
    let with_usage: Vec<_> = chunks.iter().filter_map(|c| c.usage).collect();
    assert_eq!(with_usage.len(), 2);
    assert_eq!(
        (with_usage[0].input_tokens, with_usage[0].output_tokens),
        (240, 1)
    );
    assert_eq!(with_usage[1], u);
}

#[test]
fn stream_without_message_delta_still_reports_start_usage() {
    let body = sse(&[
        start(json!({"input_tokens": 5, "output_tokens": 1})),
        json!({"type": "message_stop"}),
    ]);
    let (chunks, r) = run(&body);
    r.expect("terminal event seen");
    assert_eq!(fold(&chunks).usage.map(|u| u.input_tokens), Some(5));
}

#[test]
fn stream_tool_blocks_index_by_call_and_default_to_empty_object() {
    let body = sse(&[
        start(json!({"input_tokens": 1})),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "server_tool_use", "id": "srvtoolu_1", "name": "code_execution", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"code\": \"1\"}"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_a", "name": "a", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_stop", "index": 1}),
        // A start that already carries the input (no deltas).
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "toolu_b", "name": "b", "input": {"x": 1}}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "toolu_c", "name": "c", "input": {}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{\"y\":"}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": " 2}"}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        json!({"type": "message_stop"}),
    ]);
    let (chunks, r) = run(&body);
    r.expect("whole");
    let first = chunks
        .iter()
        .flat_map(|c| &c.choices[0].delta.tool_calls)
        .next()
        .expect("a tool-call fragment");
    assert_eq!(first.index, Some(0), "the server tool block is not a call");
    let f = fold(&chunks);
    let calls: Vec<(&str, &str, &str)> = f
        .tool_calls()
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.function.name.as_str(),
                c.function.arguments.as_str(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("toolu_a", "a", "{}"),
            ("toolu_b", "b", r#"{"x":1}"#),
            ("toolu_c", "c", r#"{"y": 2}"#)
        ]
    );
    assert_eq!(f.choices[0].message.content, None);
    assert_eq!(f.finish_reason(), Some(&FinishReason::ToolCalls));
}

#[test]
fn stream_error_events_are_typed() {
    for (ty, msg, want) in [
        ("overloaded_error", "Overloaded", ErrorKind::Overloaded),
        ("rate_limit_error", "slow", ErrorKind::RateLimited),
        ("api_error", "Internal server error", ErrorKind::Server),
        (
            "invalid_request_error",
            "prompt is too long: 300000 tokens",
            ErrorKind::ContextLengthExceeded,
        ),
        ("authentication_error", "bad key", ErrorKind::Auth),
        ("mystery_error", "??", ErrorKind::Server),
    ] {
        let err = json!({"type": "error", "error": {"type": ty, "message": msg}});
        let mut body = sse(&[
            start(json!({"input_tokens": 1})),
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "partial"}}),
        ]);
        body.push_str(&format!("event: error\ndata: {err}\n\n"));
        let (chunks, r) = run(&body);
        let e = r.expect_err("error event");
        assert_eq!(e.kind(), want, "{ty}");
        assert_eq!(e.code(), Some(ty));
        assert_eq!(e.message(), msg);
        assert_eq!(e.status(), None, "no HTTP error status in a stream");
        assert_eq!(chunks.len(), 2, "chunks before the error are kept");
    }
    // An error payload without the event name is an error too.
    let (_, r) = run(
        "data: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"x\"}}\n\n",
    );
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::Overloaded));
    // A non-JSON error event still fails the stream.
    let (_, r) = run("event: error\ndata: upstream exploded\n\n");
    let e = r.expect_err("error");
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.message(), "upstream exploded");
}

#[test]
fn stream_endings() {
    let head = sse(&[
        start(json!({"input_tokens": 1})),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}),
    ]);
    let (_, r) = run(&head);
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::StreamInterrupted));
    let (_, r) = run("");
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::StreamInterrupted));
    // Stop reason seen, no message_stop: whole.
    let stopped = format!(
        "{head}{}",
        sse(&[
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}})
        ])
    );
    let (chunks, r) = run(&stopped);
    r.expect("stop reason seen");
    assert_eq!(fold(&chunks).text(), "hi");
    // Cut inside message_stop.
    let (_, r) = run(&format!(
        "{stopped}event: message_stop\ndata: {{\"type\":\"mess"
    ));
    r.expect("cut after the stop reason");
    // Cut inside a delta before any stop reason.
    let (_, r) = run(&format!(
        "{head}event: content_block_delta\ndata: {{\"type\":\"content_bl"
    ));
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::StreamInterrupted));
    // Malformed JSON mid-stream is a decode error.
    let (_, r) = run(&format!(
        "{head}event: content_block_delta\ndata: {{oops}}\n\n"
    ));
    assert_eq!(r.map_err(|e| e.kind()), Err(ErrorKind::Decode));
    // Events after message_stop are not read.
    let (chunks, r) = run(&format!(
        "{stopped}{}event: error\ndata: {{}}\n\n",
        sse(&[json!({"type": "message_stop"})])
    ));
    r.expect("nothing read after message_stop");
    assert_eq!(fold(&chunks).text(), "hi");
}

#[test]
fn json_fallback_chunks_keep_thinking_blocks() {
    let body = json!({
        "id": "msg_1", "type": "message", "model": "m",
        "content": [
            {"type": "thinking", "thinking": "a", "signature": "s1"},
            {"type": "redacted_thinking", "data": "r"},
            {"type": "thinking", "thinking": "b", "signature": "s2"},
            {"type": "text", "text": "answer"},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"k": "v"}}
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 3, "output_tokens": 4, "cache_read_input_tokens": 2}
    });
    let r = decode_response(body.to_string().as_bytes()).expect("decodes");
    assert_eq!(r.reasoning(), Some("ab"));
    let folded = fold(&response_chunks(r.clone()));
    assert_eq!(folded, r);
}

// ---------------------------------------------------------------------------------------------
// Provider
// ---------------------------------------------------------------------------------------------

#[test]
fn provider_configuration_and_redacting_debug() {
    let key = "sk-ant-api03-very-secret";
    let p = Anthropic::new(key)
        .base_url("http://127.0.0.1:9/v1/")
        .version("2024-01-01")
        .beta("a-1")
        .beta("b-2")
        .beta("a-1")
        .default_max_tokens(1000)
        .header("x-team", "support")
        .expect("valid header");
    assert_eq!(p.url(), "http://127.0.0.1:9/v1/messages");
    assert_eq!(crate::Provider::name(&p), "anthropic");
    assert_eq!(p.headers["anthropic-version"], "2024-01-01");
    assert_eq!(p.headers["anthropic-beta"], "a-1,b-2");
    assert_eq!(p.headers["content-type"], "application/json");
    assert!(p.headers["x-api-key"].is_sensitive());
    assert!(p.headers["x-team"].is_sensitive());
    assert_eq!(p.default_max_tokens, 1000);
    let shown = format!("{p:?}");
    assert!(!shown.contains(key), "{shown}");
    assert!(shown.contains("REDACTED"));
    assert_eq!(
        Anthropic::new("k").url(),
        "https://api.anthropic.com/v1/messages"
    );
    let e = Anthropic::new("k")
        .header("bad name", "v")
        .expect_err("bad name");
    assert_eq!(e.kind(), ErrorKind::Config);
    let e = Anthropic::new("k")
        .header("x-ok", "bad\nvalue")
        .expect_err("bad value");
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[test]
fn handler_redacts_its_key_from_stream_errors() {
    let key = "sk-ant-api03-very-secret";
    let mut h = AnthropicEvents::with_key(crate::ApiKey::new(key));
    let data = format!(
        r#"{{"type":"error","error":{{"type":"authentication_error","message":"key {key}"}}}}"#
    );
    let ev = crate::http::sse::SseEvent {
        event: "error",
        data: &data,
        id: "",
    };
    let e = h.on_event(&ev, &mut VecDeque::new()).expect_err("error");
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(key), "{shown}");
}

#[test]
fn with_key_replaces_only_the_key_header() {
    let base = Anthropic::new("sk-ant-old")
        .base_url("https://gw.internal/v1?team=a")
        .version("2024-01-01")
        .beta("a-1")
        .default_max_tokens(1000)
        .header("x-team", "support")
        .expect("header");
    let p = base.keyed(crate::ApiKey::new("sk-ant-new"));
    assert_eq!(p.headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(p.headers["x-api-key"], "sk-ant-new");
    assert!(p.headers["x-api-key"].is_sensitive());
    for kept in [
        "x-team",
        "anthropic-version",
        "anthropic-beta",
        "content-type",
    ] {
        assert_eq!(p.headers[kept], base.headers[kept], "{kept}");
    }
    assert_eq!(p.headers.len(), base.headers.len());
    assert_eq!((p.url(), p.default_max_tokens), (base.url(), 1000));
    assert_eq!(base.headers["x-api-key"], "sk-ant-old");
    // A key set by hand in `x-api-key` is replaced as well.
    let manual = Anthropic::new("").header("X-Api-Key", "sk-ant-manual");
    let p = manual
        .expect("header")
        .keyed(crate::ApiKey::new("sk-ant-new"));
    assert_eq!(p.headers["x-api-key"], "sk-ant-new");
    let swapped = crate::Provider::with_key(&base, crate::ApiKey::new("sk-ant-new\n"));
    let swapped = swapped.expect("swappable");
    let e = swapped.validate().expect_err("unsendable key");
    assert_eq!(e.kind(), ErrorKind::Config);
    let shown = format!("{e} {e:?} {swapped:?}");
    assert!(
        !shown.contains("sk-ant-new") && !shown.contains("sk-ant-old"),
        "{shown}"
    );
}

#[cfg(feature = "simulator")]
#[tokio::test]
async fn with_key_sends_the_new_key_over_http() {
    use crate::simulator::{Reply, Simulator};
    let sim = Simulator::start().await.expect("simulator");
    sim.set_default(Reply::text("hi"));
    let cx = crate::CallContext::new(reqwest::Client::new());
    let req = ChatRequest::new("m").user("Hello?");
    let base = Anthropic::new("sk-ant-old")
        .base_url(&format!("{}/v1", sim.base_url()))
        .beta("a-1")
        .header("x-team", "support")
        .expect("header");
    let swapped = crate::Provider::with_key(&base, crate::ApiKey::new("sk-ant-new"));
    let swapped = swapped.expect("swappable");
    assert_eq!(
        swapped.chat(&req, "m", &cx).await.expect("answer").text(),
        "hi"
    );
    crate::Provider::chat(&base, &req, "m", &cx)
        .await
        .expect("answer");
    let seen = sim.requests();
    let (new, old) = (&seen[0], &seen[1]);
    assert_eq!(new.header("x-api-key"), Some("sk-ant-new"));
    assert_eq!(new.header("x-team"), Some("support"));
    assert_eq!(new.header("anthropic-beta"), Some("a-1"));
    let leaked = new.headers.iter().any(|(_, v)| v.contains("sk-ant-old"));
    assert!(!leaked, "{:?}", new.headers);
    assert_eq!(old.header("x-api-key"), Some("sk-ant-old"));
}
