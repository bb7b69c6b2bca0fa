//! The unified types: OpenAI request bodies deserialize into `ChatRequest` (unknown fields
//! kept and forwarded), `ChatResponse` serializes to OpenAI's response JSON, wire enums are
//! lenient, `null` is absent.

use crate::support;

use polyrelay::{
    ChatRequest, ChatResponse, Content, ContentPart, FinishReason, Message, ResponseFormat, Role,
    ToolChoice,
};
use serde_json::json;
use support::*;

fn full_openai_body() -> serde_json::Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": "You are a support bot."},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"id\":123}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"status\":\"shipped\"}"},
            {"role": "critic", "content": "an unknown role is kept"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find an order",
            "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}}, "strict": true}}],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "parallel_tool_calls": false,
        "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": true}},
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 100,
        "max_completion_tokens": 200,
        "stop": "END",
        "seed": 42,
        "n": 1,
        "user": "user-7",
        "reasoning_effort": "low",
        "stream": false,
        "stream_options": {"include_usage": true},
        "logit_bias": {"50256": -100},
        "metadata": {"team": "support"},
        "service_tier": "flex",
        "frequency_penalty": null
    })
}

#[test]
fn an_openai_request_body_deserializes_with_every_field() {
    let req: ChatRequest = serde_json::from_value(full_openai_body()).unwrap();
    assert_eq!(req.model, "gpt-4o");
    let roles: Vec<_> = req.messages.iter().map(|m| m.role.clone()).collect();
    assert_eq!(
        roles,
        [
            Role::Developer,
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Other("critic".into())
        ]
    );
    let Some(Content::Parts(parts)) = &req.messages[2].content else {
        panic!("parts")
    };
    assert_eq!(parts[0], ContentPart::text("What is in this image?"));
    assert!(
        matches!(&parts[1], ContentPart::ImageUrl { image_url } if image_url.detail.as_deref() == Some("low"))
    );
    assert!(matches!(&parts[2], ContentPart::Other(v) if v["type"] == "input_audio"));
    assert_eq!(req.messages[3].content, None);
    assert_eq!(
        req.messages[3].tool_calls[0].function.arguments,
        r#"{"id":123}"#
    );
    assert_eq!(req.messages[4].tool_call_id.as_deref(), Some("call_1"));
    assert_eq!(req.tools[0].function.as_ref().unwrap().strict, Some(true));
    assert_eq!(req.tool_choice, Some(ToolChoice::Function("lookup".into())));
    assert!(
        matches!(&req.response_format, Some(ResponseFormat::JsonSchema(s)) if s.name == "answer")
    );
    assert_eq!(req.stop, ["END"]);
    assert_eq!(
        (req.max_tokens, req.max_completion_tokens, req.seed, req.n),
        (Some(100), Some(200), Some(42), Some(1))
    );
    assert_eq!(
        req.reasoning_effort.as_ref().map(|e| e.as_str()),
        Some("low")
    );
    // Unmodelled fields are kept, `null` ones included (they are the caller's to send).
    for k in [
        "logit_bias",
        "metadata",
        "service_tier",
        "frequency_penalty",
    ] {
        assert!(req.extra.contains_key(k), "{k} kept");
    }
}

#[test]
fn requests_round_trip_and_tolerate_nulls() {
    let req: ChatRequest = serde_json::from_value(full_openai_body()).unwrap();
    let again: ChatRequest = serde_json::from_value(serde_json::to_value(&req).unwrap()).unwrap();
    assert_eq!(req, again);
    let sparse: ChatRequest = serde_json::from_value(json!({
        "model": "m", "messages": [{"role": "user", "content": "hi", "name": null, "tool_calls": null}],
        "tools": null, "stop": null, "tool_choice": "required", "response_format": {"type": "json_object"}
    }))
    .unwrap();
    assert!(sparse.tools.is_empty() && sparse.stop.is_empty());
    assert_eq!(sparse.tool_choice, Some(ToolChoice::Required));
    assert_eq!(sparse.response_format, Some(ResponseFormat::JsonObject));
}

#[tokio::test]
async fn unknown_fields_are_forwarded_and_relay_hints_are_not() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim, polyrelay::Chain::new().target("sim/vendor-model"));
    let mut req: ChatRequest = serde_json::from_value(full_openai_body()).unwrap();
    req.model = "r".into();
    let req = req.intent("billing");
    relay.chat(req).await.unwrap();
    let body = &sim.requests()[0].body;
    assert_eq!(
        body["model"], "vendor-model",
        "the route name is replaced by the target's model"
    );
    assert_eq!(body["logit_bias"], json!({"50256": -100}));
    assert_eq!(body["metadata"], json!({"team": "support"}));
    assert_eq!(body["service_tier"], "flex");
    assert_eq!(body["stop"], json!(["END"]));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "lookup"}})
    );
    assert_eq!(body["messages"][3]["content"], serde_json::Value::Null);
    assert_eq!(
        body["messages"][2]["content"][1]["image_url"]["url"],
        "data:image/png;base64,iVBORw0KGgo="
    );
    assert!(body.get("relay").is_none() && !body.to_string().contains("billing"));
    assert!(body.get("stream").is_none(), "chat() does not stream");
}

#[test]
fn responses_serialize_to_openai_shape() {
    let resp: ChatResponse = serde_json::from_value(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1752720361, "model": "gpt-4o",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.", "refusal": null},
                     "logprobs": null, "finish_reason": "eos"}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 7, "total_tokens": 21,
                  "prompt_tokens_details": {"cached_tokens": 4}, "completion_tokens_details": {"reasoning_tokens": 2}},
        "system_fingerprint": null
    }))
    .unwrap();
    assert_eq!(resp.text(), "Paris.");
    assert_eq!(
        resp.finish_reason(),
        Some(&FinishReason::Stop),
        "eos is a stop"
    );
    let out = serde_json::to_value(&resp).unwrap();
    assert_eq!(out["object"], "chat.completion");
    assert_eq!(
        out["choices"][0]["message"],
        json!({"role": "assistant", "content": "Paris.", "refusal": null, "annotations": []})
    );
    assert_eq!(out["choices"][0]["finish_reason"], "stop");
    assert_eq!(out["usage"]["prompt_tokens"], 14);
    assert_eq!(out["usage"]["completion_tokens"], 7);
    assert_eq!(out["usage"]["total_tokens"], 21);
    assert_eq!(out["usage"]["prompt_tokens_details"]["cached_tokens"], 4);
    assert_eq!(
        out["usage"]["completion_tokens_details"]["reasoning_tokens"],
        2
    );
    assert!(out.get("meta").is_none());
}

#[test]
fn wire_enums_keep_unknown_values() {
    let fr: FinishReason = serde_json::from_value(json!("brand_new_reason")).unwrap();
    assert_eq!(fr, FinishReason::Other("brand_new_reason".into()));
    assert_eq!(serde_json::to_value(&fr).unwrap(), "brand_new_reason");
    let m: Message = serde_json::from_value(json!({"role": "narrator", "content": "x"})).unwrap();
    assert_eq!(m.role.as_str(), "narrator");
    let tc: ToolChoice =
        serde_json::from_value(json!({"type": "allowed_tools", "mode": "auto"})).unwrap();
    assert!(matches!(tc, ToolChoice::Other(_)));
}
