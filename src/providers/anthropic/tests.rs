//! Unit tests of the Anthropic codec: request mapping, usage, errors (streams: `stream_tests`).

use std::time::{Duration, SystemTime};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use super::wire::{self, parse_rfc3339, ratelimit_reset_at};
use super::*;
use crate::types::ErrorKind;
use crate::types::{
    ContentPart, FinishReason, JsonSchemaFormat, Message, ReasoningEffort, ResponseFormat, Role,
    ThinkingBlock, Tool, ToolCall, ToolChoice,
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
