//! Unit tests of the Gemini wire format: request encoding, responses, usage, errors.

use super::*;
use crate::types::{JsonSchemaFormat, Tool};

fn body(req: &ChatRequest) -> Value {
    serde_json::from_slice(&encode_request(req).expect("encodes")).expect("JSON")
}

fn call(id: &str, name: &str, args: &str) -> ToolCall {
    ToolCall::function(id, name, args)
}

#[test]
fn system_and_developer_go_to_system_instruction() {
    let mut dev = Message::new(Role::Developer, "Be brief.");
    dev.name = Some("ignored".into());
    let req = ChatRequest::new("m")
        .system("You are terse.")
        .message(dev)
        .user("hi")
        .system("")
        .system("Late instruction.");
    let b = body(&req);
    assert_eq!(
        b["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}, {"text": "Be brief."}, {"text": "Late instruction."}]})
    );
    assert_eq!(
        b["contents"],
        json!([{"role": "user", "parts": [{"text": "hi"}]}])
    );
    assert!(b.get("tools").is_none() && b.get("generationConfig").is_none());
}

#[test]
fn consecutive_turns_merge_and_empty_turns_vanish() {
    let req = ChatRequest::new("m")
        .user("a")
        .user("b")
        .assistant("")
        .user("c")
        .assistant("d")
        .assistant("e");
    assert_eq!(
        body(&req)["contents"],
        json!([
            {"role": "user", "parts": [{"text": "a"}, {"text": "b"}, {"text": "c"}]},
            {"role": "model", "parts": [{"text": "d"}, {"text": "e"}]}
        ])
    );
}

#[test]
fn tool_calls_and_results_by_name() {
    let mut c1 = call("call_1", "get_weather", r#"{"city":"Paris"}"#);
    c1.thought_signature = Some("SIG1".into());
    let c2 = call("gcall_0123456789abcdef", "get_time", "");
    let req = ChatRequest::new("m")
        .user("weather and time?")
        .message(Message::assistant_tool_calls(vec![c1, c2]))
        .message(Message::tool_result("call_1", r#"{"temp": 21}"#))
        .message(Message::tool_result("gcall_0123456789abcdef", "12:00"))
        .user("thanks");
    let b = body(&req);
    assert_eq!(
        b["contents"][1],
        json!({"role": "model", "parts": [
            {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}},
             "thoughtSignature": "SIG1"},
            {"functionCall": {"name": "get_time", "args": {}}}
        ]})
    );
    assert_eq!(
        b["contents"][2],
        json!({"role": "user", "parts": [
            {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"temp": 21}}},
            {"functionResponse": {"name": "get_time", "response": {"result": "12:00"}}},
            {"text": "thanks"}
        ]})
    );
}

#[test]
fn non_object_results_are_wrapped() {
    let req = ChatRequest::new("m")
        .message(Message::assistant_tool_calls(vec![call("a", "f", "{}")]))
        .message(Message::tool_result("a", "[1, 2]"));
    assert_eq!(
        body(&req)["contents"][1]["parts"][0]["functionResponse"]["response"],
        json!({"result": "[1, 2]"})
    );
}

#[test]
fn unknown_tool_result_and_bad_arguments_are_invalid_requests() {
    let req = ChatRequest::new("m")
        .user("q")
        .message(Message::tool_result("nope", "x"));
    let e = encode_request(&req).expect_err("orphan result");
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("\"nope\""), "{e}");

    let req = ChatRequest::new("m").message(Message::assistant_tool_calls(vec![call(
        "c9",
        "lookup",
        "{not json",
    )]));
    let e = encode_request(&req).expect_err("bad args");
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(
        e.message().contains("\"c9\"") && e.message().contains("lookup"),
        "{e}"
    );

    let req = ChatRequest::new("m").message(Message::assistant_tool_calls(vec![call(
        "c8", "lookup", "[1]",
    )]));
    assert_eq!(
        encode_request(&req).expect_err("array args").kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn tools_schema_cleaning_and_tool_choice() {
    let params = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"city": {"type": ["string", "null"], "title": "City"}},
        "required": ["city"],
        "additionalProperties": false
    });
    let mut no_params = Tool::function("now", "", json!({"type": "object", "properties": {}}));
    if let Some(f) = no_params.function.as_mut() {
        f.description = None;
    }
    let mut other = Tool::function("x", "", json!({}));
    other.kind = "code_interpreter".into();
    other.function = None;
    let base = ChatRequest::new("m")
        .user("q")
        .tool(Tool::function("get_weather", "Weather by city", params))
        .tool(no_params)
        .tool(other);
    let b = body(&base);
    assert_eq!(
        b["tools"],
        json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather by city", "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "nullable": true}},
                "required": ["city"]
            }},
            {"name": "now"}
        ]}])
    );
    assert!(b.get("toolConfig").is_none());
    for (choice, want) in [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Function("now".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["now"]}),
        ),
    ] {
        let b = body(&base.clone().tool_choice(choice));
        assert_eq!(b["toolConfig"], json!({"functionCallingConfig": want}));
    }
    // No tools: no toolConfig either.
    let b = body(
        &ChatRequest::new("m")
            .user("q")
            .tool_choice(ToolChoice::Required),
    );
    assert!(b.get("toolConfig").is_none());
}

#[test]
fn generation_config() {
    let mut req = ChatRequest::new("m")
        .user("q")
        .temperature(0.2)
        .max_tokens(50);
    req.top_p = Some(0.9);
    req.max_completion_tokens = Some(100);
    req.stop = vec!["END".into()];
    req.n = Some(2);
    req.seed = Some(42);
    req.user = Some("u-1".into());
    req.parallel_tool_calls = Some(false);
    req.reasoning_effort = Some(ReasoningEffort::Low);
    req.extra.insert("logit_bias".into(), json!({"1": 2}));
    let b = body(&req);
    assert_eq!(
        b["generationConfig"],
        json!({
            "temperature": 0.2, "topP": 0.9, "maxOutputTokens": 100,
            "stopSequences": ["END"], "candidateCount": 2, "seed": 42,
            "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": true}
        })
    );
    // OpenAI-only fields are not forwarded.
    let keys: Vec<&String> = b
        .as_object()
        .map(|o| o.keys().collect())
        .unwrap_or_default();
    assert_eq!(keys, ["contents", "generationConfig"]);

    req.reasoning_effort = Some(ReasoningEffort::None);
    req.response_format = Some(ResponseFormat::JsonObject);
    let gc = &body(&req)["generationConfig"];
    assert_eq!(gc["thinkingConfig"], json!({"thinkingBudget": 0}));
    assert_eq!(gc["responseMimeType"], "application/json");
    assert!(gc.get("responseSchema").is_none());

    req.response_format = Some(ResponseFormat::JsonSchema(JsonSchemaFormat::new(
        "out",
        json!({"type": "object", "properties": {"a": {"const": "x"}}, "additionalProperties": false}),
    )));
    let gc = &body(&req)["generationConfig"];
    assert_eq!(
        gc["responseSchema"],
        json!({"type": "object", "properties": {"a": {"type": "string", "enum": ["x"]}}})
    );
    for (e, n) in [
        (ReasoningEffort::Minimal, 512),
        (ReasoningEffort::Medium, 8192),
        (ReasoningEffort::High, 24576),
    ] {
        assert_eq!(thinking_budget(&e), Some(n));
    }
    assert_eq!(thinking_budget(&ReasoningEffort::Other("max".into())), None);
}

#[test]
fn images_and_files() {
    let req = ChatRequest::new("m").message(Message::user_parts(vec![
        ContentPart::text("what is this?"),
        ContentPart::image_url("data:image/png;base64,iVBORw0KGgo="),
        ContentPart::image_url("https://example.com/cat.JPG?size=large"),
        ContentPart::image_url("gs://bucket/doc.pdf"),
        ContentPart::image_url("https://example.com/render"),
        ContentPart::image_url("data:text/plain;charset=utf-8,hi%20there"),
        ContentPart::Other(json!({"type": "input_audio", "input_audio": {"data": "AAA=", "format": "mp3"}})),
        ContentPart::Other(json!({"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}})),
    ]));
    assert_eq!(
        body(&req)["contents"][0]["parts"],
        json!([
            {"text": "what is this?"},
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.JPG?size=large"}},
            {"fileData": {"mimeType": "application/pdf", "fileUri": "gs://bucket/doc.pdf"}},
            {"fileData": {"fileUri": "https://example.com/render"}},
            {"inlineData": {"mimeType": "text/plain", "data": "aGkgdGhlcmU="}},
            {"inlineData": {"mimeType": "audio/mp3", "data": "AAA="}},
            {"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}
        ])
    );
    for bad in [
        ContentPart::image_url("ftp://example.com/a.png"),
        ContentPart::image_url("data:;base64,AAAA"),
        ContentPart::Other(json!({"type": "video_url", "video_url": "x"})),
    ] {
        let req = ChatRequest::new("m").message(Message::user_parts(vec![bad]));
        assert_eq!(
            encode_request(&req).expect_err("unsupported").kind(),
            ErrorKind::InvalidRequest
        );
    }
    assert_eq!(base64_encode(b""), "");
    assert_eq!(base64_encode(b"f"), "Zg==");
    assert_eq!(base64_encode(b"fo"), "Zm8=");
    assert_eq!(base64_encode(b"foo"), "Zm9v");
}

#[test]
fn thought_signatures_are_replayed() {
    let mut asst = Message::assistant("The answer.");
    asst.reasoning = Some("unsigned thoughts are not sent".into());
    asst.thinking_blocks = vec![
        ThinkingBlock::Thinking {
            thinking: "I considered it.".into(),
            signature: Some("SIG_T".into()),
            source: None,
        },
        ThinkingBlock::Thinking {
            thinking: String::new(),
            signature: Some("SIG_TEXT".into()),
            source: None,
        },
        ThinkingBlock::Thinking {
            thinking: "no signature".into(),
            signature: None,
            source: None,
        },
        ThinkingBlock::Redacted {
            data: "anthropic".into(),
        },
    ];
    let mut c = call("id-from-gemini", "f", "{}");
    c.thought_signature = Some("SIG_CALL".into());
    asst.tool_calls = vec![c, call("second", "g", "{\"a\":1}")];
    let req = ChatRequest::new("m").user("q").message(asst);
    assert_eq!(
        body(&req)["contents"][1]["parts"],
        json!([
            {"text": "I considered it.", "thought": true, "thoughtSignature": "SIG_T"},
            {"text": "The answer.", "thoughtSignature": "SIG_TEXT"},
            {"functionCall": {"id": "id-from-gemini", "name": "f", "args": {}}, "thoughtSignature": "SIG_CALL"},
            {"functionCall": {"id": "second", "name": "g", "args": {"a": 1}}}
        ])
    );
}

#[test]
fn gemini_3_gets_the_sentinel_for_unsigned_calls() {
    let req = ChatRequest::new("m")
        .user("q")
        .message(Message::assistant_tool_calls(vec![
            call("call_openai", "f", "{}"),
            call("call_openai2", "g", "{}"),
        ]))
        .message(Message::tool_result("call_openai", "1"))
        .message(Message::tool_result("call_openai2", "2"));
    let on = EncodeOptions {
        signature_sentinel: true,
    };
    let b: Value = serde_json::from_slice(&encode(&req, on).expect("encodes")).expect("JSON");
    let parts = &b["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], SKIP_SIGNATURE_VALIDATOR);
    assert!(parts[1].get("thoughtSignature").is_none());
    // Off by default (the pure codec does not know the model).
    assert!(
        body(&req)["contents"][1]["parts"][0]
            .get("thoughtSignature")
            .is_none()
    );
}

#[test]
fn unsupported_roles_are_refused() {
    let req = ChatRequest::new("m").message(Message::new(Role::Other("function".into()), "x"));
    assert_eq!(
        encode_request(&req).expect_err("role").kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn rfc3339() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(
        parse_rfc3339("2026-04-07T16:49:58.333958Z"),
        Some(1_775_580_598)
    );
    assert_eq!(
        parse_rfc3339("2026-04-07T18:49:58+02:00"),
        Some(1_775_580_598)
    );
    assert_eq!(parse_rfc3339("2024-02-29T12:00:00Z"), Some(1_709_208_000));
    assert_eq!(parse_rfc3339("yesterday"), None);
    assert_eq!(parse_rfc3339("2026-13-07T16:49:58Z"), None);
}

#[test]
fn usage_normalisation() {
    let w: WireUsage = serde_json::from_value(json!({
        "promptTokenCount": 100, "toolUsePromptTokenCount": 5,
        "cachedContentTokenCount": 40, "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30, "totalTokenCount": 155
    }))
    .expect("usage");
    let u = w.to_usage().expect("counts");
    assert_eq!(
        (
            u.input_tokens,
            u.output_tokens,
            u.cache_read_tokens,
            u.reasoning_tokens
        ),
        (105, 50, 40, 30)
    );
    assert_eq!(u.total_tokens(), 155);
    let w: WireUsage = serde_json::from_value(json!({"trafficType": "ON_DEMAND"})).expect("usage");
    assert_eq!(w.to_usage(), None);
}
