//! Converse request encoding, and the URLs the codecs build (checked against every
//! recorded request URI).

use serde_json::{Value, json};

use super::*;
use crate::provider::Provider;
use crate::types::ToolChoice;
use crate::types::{ContentPart, Message, ReasoningEffort, Role, ThinkingBlock, Tool, ToolCall};

fn body(req: &ChatRequest, model: &str) -> Value {
    let bytes = converse::encode(req, model).expect("encode");
    serde_json::from_slice(&bytes).expect("json")
}

const NOVA: &str = "us.amazon.nova-micro-v1:0";
const CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";

fn weather() -> Tool {
    Tool::function(
        "get_weather",
        "Weather of a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    )
}

#[test]
fn system_and_turns_alternate() {
    let req = ChatRequest::new("m")
        .system("Be brief.")
        .message(Message::new(Role::Developer, "Use metric units."))
        .user("Hi")
        .user("Still there?")
        .assistant("Yes.")
        .user("Good.");
    let b = body(&req, NOVA);
    assert_eq!(
        b["system"],
        json!([{"text": "Be brief."}, {"text": "Use metric units."}])
    );
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"text": "Hi"}, {"text": "Still there?"}]},
            {"role": "assistant", "content": [{"text": "Yes."}]},
            {"role": "user", "content": [{"text": "Good."}]},
        ])
    );
    assert!(b.get("inferenceConfig").is_none());
    assert!(b.get("toolConfig").is_none());
}

#[test]
fn images_are_bytes_and_urls_are_refused() {
    let req = ChatRequest::new("m").message(Message::user_parts(vec![
        ContentPart::text("What is this?"),
        ContentPart::image_url("data:image/jpg;base64,AAEC"),
        ContentPart::image_url("data:image/webp;base64,AwQ="),
    ]));
    let b = body(&req, NOVA);
    assert_eq!(
        b["messages"][0]["content"],
        json!([
            {"text": "What is this?"},
            {"image": {"format": "jpeg", "source": {"bytes": "AAEC"}}},
            {"image": {"format": "webp", "source": {"bytes": "AwQ="}}},
        ])
    );
    for (url, says) in [
        ("https://example.com/cat.png", "bytes only"),
        ("data:image/tiff;base64,AA==", "not supported"),
        ("data:image/png,plain", "base64"),
    ] {
        let req =
            ChatRequest::new("m").message(Message::user_parts(vec![ContentPart::image_url(url)]));
        let e = converse::encode(&req, NOVA).expect_err(url);
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(e.message().contains(says), "{e}");
    }
}

#[test]
fn parallel_tool_calls_and_their_results_share_turns() {
    let calls = vec![
        ToolCall::function("t1", "get_weather", r#"{"city":"Paris"}"#),
        ToolCall::function("t2", "get_weather", ""),
    ];
    let req = ChatRequest::new("m")
        .user("Weather in Paris and Rome?")
        .message(Message::assistant_tool_calls(calls))
        .message(Message::tool_result("t1", "sunny"))
        .message(Message::tool_result("t2", "rain"))
        .user("And tomorrow?")
        .tool(weather());
    let b = body(&req, CLAUDE);
    assert_eq!(
        b["messages"][1],
        json!({"role": "assistant", "content": [
            {"toolUse": {"toolUseId": "t1", "name": "get_weather", "input": {"city": "Paris"}}},
            {"toolUse": {"toolUseId": "t2", "name": "get_weather", "input": {}}},
        ]})
    );
    assert_eq!(
        b["messages"][2],
        json!({"role": "user", "content": [
            {"toolResult": {"toolUseId": "t1", "content": [{"text": "sunny"}]}},
            {"toolResult": {"toolUseId": "t2", "content": [{"text": "rain"}]}},
            {"text": "And tomorrow?"},
        ]})
    );
    assert_eq!(b["messages"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        b["toolConfig"]["tools"][0]["toolSpec"],
        json!({"name": "get_weather", "description": "Weather of a city",
               "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}})
    );
    assert!(b["toolConfig"].get("toolChoice").is_none());
    // Arguments that are not an object are refused, naming the call.
    let bad =
        ChatRequest::new("m").message(Message::assistant_tool_calls(vec![ToolCall::function(
            "t9", "f", "[1]",
        )]));
    let e = converse::encode(&bad, NOVA).expect_err("array args");
    assert!(e.message().contains("t9"), "{e}");
    let bad = ChatRequest::new("m").message(Message::new(Role::Tool, "x"));
    assert_eq!(
        converse::encode(&bad, NOVA).expect_err("no id").kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn tool_choice_maps_and_none_leaves_the_tools_out() {
    let with = |choice: ToolChoice| {
        ChatRequest::new("m")
            .user("hi")
            .tool(weather())
            .tool_choice(choice)
    };
    let choice = |req: &ChatRequest| body(req, NOVA)["toolConfig"]["toolChoice"].clone();
    assert_eq!(choice(&with(ToolChoice::Required)), json!({"any": {}}));
    assert_eq!(
        choice(&with(ToolChoice::Function("get_weather".into()))),
        json!({"tool": {"name": "get_weather"}})
    );
    assert_eq!(choice(&with(ToolChoice::Auto)), Value::Null);
    assert_eq!(
        choice(&with(ToolChoice::Other(json!({"tool": {"name": "x"}})))),
        json!({"tool": {"name": "x"}})
    );
    assert!(converse::encode(&with(ToolChoice::Other(json!("weird"))), NOVA).is_err());
    assert!(
        body(&with(ToolChoice::None), NOVA)
            .get("toolConfig")
            .is_none()
    );
    // With tool calls in the history, Converse wants the tools: sent, with no choice.
    let history = with(ToolChoice::None)
        .message(Message::assistant_tool_calls(vec![ToolCall::function(
            "t1",
            "get_weather",
            "{}",
        )]))
        .message(Message::tool_result("t1", "ok"));
    let b = body(&history, NOVA);
    assert!(b["toolConfig"]["tools"].is_array());
    assert!(b["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn inference_settings() {
    let mut req = ChatRequest::new("m")
        .user("hi")
        .max_tokens(100)
        .temperature(1.5);
    req.top_p = Some(0.9);
    req.stop = vec!["END".into()];
    let b = body(&req, NOVA);
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 100, "temperature": 1.5, "topP": 0.9, "stopSequences": ["END"]})
    );
    // Claude takes temperatures up to 1.
    assert_eq!(
        body(&req, CLAUDE)["inferenceConfig"]["temperature"],
        json!(1.0)
    );
    req.n = Some(2);
    assert_eq!(
        converse::encode(&req, NOVA).expect_err("n").kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn reasoning_effort_by_model_family() {
    let mut req = ChatRequest::new("m")
        .user("hi")
        .temperature(0.5)
        .max_tokens(500);
    req.reasoning_effort = Some(ReasoningEffort::Low);
    let b = body(&req, CLAUDE);
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})
    );
    // Room for the answer after the budget; no sampling changes with thinking.
    assert_eq!(b["inferenceConfig"], json!({"maxTokens": 1524}));
    let b = body(&req, "openai.gpt-oss-120b-1:0");
    assert_eq!(
        b["additionalModelRequestFields"],
        json!({"reasoning_effort": "low"})
    );
    assert!(
        body(&req, NOVA)
            .get("additionalModelRequestFields")
            .is_none()
    );
}

#[test]
fn thinking_blocks_go_back_first_and_only_bedrock_signatures() {
    let mut m = Message::assistant("Answer.");
    m.thinking_blocks = vec![
        ThinkingBlock::Thinking {
            thinking: "mine".into(),
            signature: Some("sig-b".into()),
            source: Some("bedrock".into()),
        },
        ThinkingBlock::Thinking {
            thinking: "theirs".into(),
            signature: Some("sig-a".into()),
            source: Some("anthropic".into()),
        },
        ThinkingBlock::Thinking {
            thinking: "unsigned".into(),
            signature: None,
            source: None,
        },
        ThinkingBlock::Redacted {
            data: "EtkEC".into(),
        },
    ];
    let req = ChatRequest::new("m").user("q").message(m).user("more");
    let b = body(&req, CLAUDE);
    assert_eq!(
        b["messages"][1]["content"],
        json!([
            {"reasoningContent": {"reasoningText": {"text": "mine", "signature": "sig-b"}}},
            {"reasoningContent": {"redactedContent": "RXRrRUM="}},
            {"text": "Answer."},
        ])
    );
}

#[test]
fn cache_control_becomes_cache_points() {
    let mut sys = Message::system("Long instructions.");
    sys.extra
        .insert("cache_control".into(), json!({"type": "ephemeral"}));
    let mut user = Message::user("Long document.");
    user.extra.insert(
        "cache_control".into(),
        json!({"type": "ephemeral", "ttl": "1h"}),
    );
    let mut tool = weather();
    tool.extra
        .insert("cache_control".into(), json!({"type": "ephemeral"}));
    let req = ChatRequest::new("m").message(sys).message(user).tool(tool);
    let b = body(&req, CLAUDE);
    assert_eq!(
        b["system"],
        json!([{"text": "Long instructions."}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"text": "Long document."}, {"cachePoint": {"type": "default", "ttl": "1h"}}])
    );
    assert_eq!(
        b["toolConfig"]["tools"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    // A raw Converse block part is sent as it is; other raw parts are refused.
    let req = ChatRequest::new("m").message(Message::user_parts(vec![
        ContentPart::text("x"),
        ContentPart::Other(json!({"cachePoint": {"type": "default"}})),
    ]));
    assert_eq!(
        body(&req, NOVA)["messages"][0]["content"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    let req = ChatRequest::new("m").message(Message::user_parts(vec![ContentPart::Other(
        json!({"type": "input_audio"}),
    )]));
    assert!(converse::encode(&req, NOVA).is_err());
}

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// Percent-decodes the `%XX` escapes of a recorded path segment.
fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Ok(n) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(n);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8")
}

/// Every recorded Converse and InvokeModel request: the URL the codec builds for its region
/// and model is the one boto3 sent (`:` as `%3A`).
#[test]
fn urls_match_every_recorded_request() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/bedrock");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir).expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_owned();
        if !name.ends_with(".http.json") {
            continue;
        }
        let sidecar: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let uri = sidecar["request"]["uri"].as_str().unwrap_or("");
        let Some(rest) = uri.strip_prefix("https://bedrock-runtime.") else {
            if let Some(region) = uri
                .strip_prefix("https://bedrock-mantle.")
                .and_then(|r| r.split('.').next())
            {
                assert_eq!(mantle(region, "k").url(), uri, "{name}");
                checked += 1;
            }
            continue;
        };
        let region = rest.split('.').next().expect("region");
        let path_part = rest.split_once("amazonaws.com").expect("host").1;
        let segs: Vec<&str> = path_part.split('/').collect();
        let (model, action) = (unescape(segs[2]), segs[3]);
        let url = match action {
            "converse" | "converse-stream" => Bedrock::new(region, AwsAuth::unsigned())
                .codec()
                .url(&model, action == "converse-stream"),
            "invoke" | "invoke-with-response-stream" => {
                BedrockAnthropic::new(region, AwsAuth::unsigned())
                    .codec()
                    .url(&model, action != "invoke")
            }
            // CountTokens is not a call the relay makes.
            _ => continue,
        }
        .expect(&name);
        // The codec always escapes `:`, as boto3 does (anthropic-sdk-python sends it raw).
        assert_eq!(
            url.as_str(),
            uri.replace(':', "%3A").replacen("https%3A", "https:", 1),
            "{name}"
        );
        checked += 1;
    }
    assert!(checked >= 22, "only {checked} recorded URIs checked");
}

#[test]
fn model_ids_profiles_and_arns_go_in_the_path_escaped() {
    let p = Bedrock::new("eu-west-1", AwsAuth::unsigned());
    let url = |m: &str| p.codec().url(m, false).map(|u| u.to_string());
    assert_eq!(
        url("eu.anthropic.claude-3-7-sonnet-20250219-v1:0").expect("profile"),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    );
    assert_eq!(
        url("arn:aws:bedrock:eu-west-1:123456789012:application-inference-profile/abc123")
            .expect("arn"),
        "https://bedrock-runtime.eu-west-1.amazonaws.com/model/arn%3Aaws%3Abedrock%3Aeu-west-1%3A123456789012%3Aapplication-inference-profile%2Fabc123/converse"
    );
    for bad in [
        "",
        ".",
        "..",
        "a b",
        "x?y",
        "x#y",
        "x%2Fy",
        "../../admin",
        "é",
    ] {
        let e = url(bad).expect_err(bad);
        assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
    }
    assert!(url("../x").is_err());
    assert!(url(&"a".repeat(2049)).is_err());
    assert_eq!(p.region(), "eu-west-1");
    assert_eq!(Provider::name(&p), "bedrock");
}

#[test]
fn regions_and_base_urls() {
    let china = Bedrock::new("cn-north-1", AwsAuth::unsigned());
    assert_eq!(
        china.codec().url("m", true).expect("china").as_str(),
        "https://bedrock-runtime.cn-north-1.amazonaws.com.cn/model/m/converse-stream"
    );
    for bad in ["", "US-EAST-1", "us east", "us-east-1.evil.com/x", "-x"] {
        let p = Bedrock::new(bad, AwsAuth::unsigned());
        assert_eq!(
            Provider::validate(&p).expect_err(bad).kind(),
            ErrorKind::Config
        );
        assert!(p.codec().url("m", false).is_err());
    }
    let p =
        Bedrock::new("us-east-1", AwsAuth::unsigned()).base_url("http://127.0.0.1:9/bedrock/?x=1");
    assert_eq!(
        p.codec().url("m:0", false).expect("override").as_str(),
        "http://127.0.0.1:9/bedrock/model/m%3A0/converse?x=1"
    );
    assert_eq!(p.region(), "us-east-1");
    let bad = Bedrock::new("us-east-1", AwsAuth::unsigned()).base_url("not a url");
    assert_eq!(
        Provider::validate(&bad).expect_err("url").kind(),
        ErrorKind::Config
    );
    assert_eq!(
        mantle("us-west-2", "k").url(),
        "https://bedrock-mantle.us-west-2.api.aws/v1/chat/completions"
    );
    // Debug shows where, never a key.
    let shown = format!("{:?}", Bedrock::new("us-east-1", AwsAuth::unsigned()));
    assert!(shown.contains("us-east-1"), "{shown}");
}

#[test]
fn the_region_comes_from_aws_region_then_aws_default_region() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_owned())
        }
    };
    const BOTH: [(&str, &str); 2] = [
        ("AWS_REGION", "eu-west-3"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ];
    assert_eq!(super::env_region(env(&BOTH)).expect("region"), "eu-west-3");
    const FALLBACK: [(&str, &str); 2] = [("AWS_REGION", " "), ("AWS_DEFAULT_REGION", "ap-south-1")];
    assert_eq!(
        super::env_region(env(&FALLBACK)).expect("region"),
        "ap-south-1"
    );
    let e = super::env_region(env(&[])).expect_err("none");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("AWS_REGION"));
}

#[test]
fn other_tools_are_sent_as_given_and_strict_is_kept() {
    let mut strict = weather();
    if let Some(f) = strict.function.as_mut() {
        f.strict = Some(true);
    }
    let other: Tool = serde_json::from_value(json!({
        "type": "systemTool",
        "systemTool": {"name": "nova_grounding"},
        "cache_control": {"type": "ephemeral"},
    }))
    .expect("tool");
    let req = ChatRequest::new("m").user("x").tool(strict).tool(other);
    let b = body(&req, NOVA);
    assert_eq!(
        b["toolConfig"]["tools"],
        json!([
            {"toolSpec": {"name": "get_weather", "description": "Weather of a city", "strict": true,
                          "inputSchema": {"json": {"type": "object", "properties": {"city": {"type": "string"}}}}}},
            {"systemTool": {"name": "nova_grounding"}},
            {"cachePoint": {"type": "default"}},
        ])
    );
}
