//! Failover across vendors with different wire formats: OpenAI → Anthropic → Gemini, plain
//! and streaming, and tool-call conversations carried from one vendor to another.

use crate::support;

use polyrelay::providers::{Anthropic, Gemini, OpenAi};
use polyrelay::simulator::SimError;
use polyrelay::{
    Chain, ChatRequest, ErrorKind, Message, Relay, Target, ThinkingBlock, Tool, ToolCall,
};
use serde_json::{Value, json};
use support::*;

/// A relay with the three vendors on one simulator, under the names openai/anthropic/gemini.
fn three_vendors(sim: &Simulator, chain: Chain) -> Relay {
    let base = sim.base_url();
    Relay::builder()
        .provider(
            "openai",
            OpenAi::new("sk-openai").base_url(&format!("{base}/v1")),
        )
        .provider(
            "anthropic",
            Anthropic::new("sk-ant").base_url(&format!("{base}/v1")),
        )
        .provider(
            "gemini",
            Gemini::new("gm-key").base_url(&format!("{base}/v1beta")),
        )
        .route("r", chain)
        .build()
        .expect("relay")
}

fn gpt_claude_gemini() -> Chain {
    Chain::new()
        .target("openai/gpt-4o")
        .target("anthropic/claude-sonnet-4-5")
        .target("gemini/gemini-2.5-flash")
}

#[tokio::test]
async fn openai_down_anthropic_overloaded_gemini_answers() {
    let sim = Simulator::start().await.unwrap();
    sim.script("gpt-4o", [Reply::error(SimError::Server)]);
    sim.script("claude-sonnet-4-5", [Reply::error(SimError::Overloaded)]);
    sim.script("gemini-2.5-flash", [Reply::text("Gemini here.")]);
    let relay = three_vendors(&sim, gpt_claude_gemini());
    let resp = guarded(relay.chat(ChatRequest::new("r").system("Be brief.").user("Hi")))
        .await
        .unwrap();
    assert_eq!(resp.text(), "Gemini here.");
    assert_eq!(
        resp.meta.served_by.as_ref().unwrap().to_string(),
        "gemini/gemini-2.5-flash"
    );
    let kinds: Vec<_> = resp
        .meta
        .attempts
        .iter()
        .map(|a| (a.target.provider.to_string(), a.failure()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("openai".into(), Some(ErrorKind::Server)),
            ("openai".into(), Some(ErrorKind::Server)),
            ("anthropic".into(), Some(ErrorKind::Overloaded)),
            ("anthropic".into(), Some(ErrorKind::Overloaded)),
            ("gemini".into(), None),
        ]
    );
    // Each vendor got its own wire format.
    let reqs = sim.requests();
    let claude = reqs
        .iter()
        .find(|r| r.model.as_deref() == Some("claude-sonnet-4-5"))
        .unwrap();
    assert_eq!(claude.body["system"], "Be brief.");
    assert_eq!(claude.header("x-api-key"), Some("sk-ant"));
    assert!(claude.header("anthropic-version").is_some());
    let gemini = reqs
        .iter()
        .find(|r| r.model.as_deref() == Some("gemini-2.5-flash"))
        .unwrap();
    assert_eq!(
        gemini.body["systemInstruction"]["parts"][0]["text"],
        "Be brief."
    );
    assert_eq!(gemini.header("x-goog-api-key"), Some("gm-key"));
    assert!(
        !gemini.path.contains("key="),
        "the key never goes in the URL"
    );
    assert!(resp.usage.is_some());
}

#[tokio::test]
async fn streaming_fails_over_across_the_three_codecs() {
    let sim = Simulator::start().await.unwrap();
    sim.script("gpt-4o", [Reply::error(SimError::Server)]);
    // Anthropic accepts, then sends an overloaded error event before any text.
    sim.script(
        "claude-sonnet-4-5",
        [Reply::stream_error_after(0, SimError::Overloaded)],
    );
    sim.script(
        "gemini-2.5-flash",
        [Reply::gemini_stream_text(&["Streamed ", "by ", "Gemini."])],
    );
    let relay = three_vendors(&sim, gpt_claude_gemini());
    let resp = folded(&relay, ChatRequest::new("r").user("Hi"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "Streamed by Gemini.");
    assert_eq!(
        resp.meta.served_by.as_ref().unwrap().provider.as_ref(),
        "gemini"
    );
    assert!(resp.usage.is_some_and(|u| u.output_tokens > 0));
    let anthropic = &resp
        .meta
        .attempts
        .iter()
        .find(|a| &*a.target.provider == "anthropic")
        .unwrap();
    assert_eq!(anthropic.failure(), Some(ErrorKind::Overloaded));
}

#[tokio::test]
async fn every_vendor_streams_through_the_relay() {
    let sim = Simulator::start().await.unwrap();
    for (provider, model) in [
        ("openai", "gpt-4o"),
        ("anthropic", "claude-sonnet-4-5"),
        ("gemini", "gemini-2.5-flash"),
    ] {
        sim.script(model, [Reply::text("one two three")]);
        let relay = three_vendors(&sim, Chain::new().target(Target::new(provider, model)));
        let plain = guarded(relay.chat(ChatRequest::new("r").user("count")))
            .await
            .unwrap();
        let streamed = folded(&relay, ChatRequest::new("r").user("count"))
            .await
            .unwrap();
        assert_eq!(plain.text(), "one two three", "{provider}");
        assert_eq!(streamed.text(), plain.text(), "{provider}");
        assert_eq!(
            streamed.finish_reason(),
            plain.finish_reason(),
            "{provider}"
        );
        assert_eq!(
            streamed.usage, plain.usage,
            "{provider}: stream and plain usage agree"
        );
    }
}

const VENDORS: [(&str, &str); 3] = [
    ("openai", "gpt-4o"),
    ("anthropic", "claude-sonnet-4-5"),
    ("gemini", "gemini-2.5-flash"),
];

fn weather_tool() -> Tool {
    Tool::function(
        "get_weather",
        "Current weather for a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    )
}

/// What vendor `to` received for the assistant's tool call and the tool's result.
fn tool_turns(provider: &str, body: &Value) -> (String, Value, String) {
    match provider {
        "openai" => {
            let msgs = body["messages"].as_array().unwrap();
            let call = &msgs[1]["tool_calls"][0];
            let args: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            assert_eq!(msgs[2]["role"], "tool");
            assert_eq!(msgs[2]["tool_call_id"], call["id"]);
            (
                call["function"]["name"].as_str().unwrap().into(),
                args,
                msgs[2]["content"].as_str().unwrap().into(),
            )
        }
        "anthropic" => {
            let msgs = body["messages"].as_array().unwrap();
            let call = msgs[1]["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "tool_use")
                .unwrap();
            assert_eq!(msgs[2]["role"], "user");
            let result = msgs[2]["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["type"] == "tool_result")
                .unwrap();
            assert_eq!(result["tool_use_id"], call["id"]);
            let text = match &result["content"] {
                Value::String(s) => s.clone(),
                other => other[0]["text"].as_str().unwrap().to_owned(),
            };
            (
                call["name"].as_str().unwrap().into(),
                call["input"].clone(),
                text,
            )
        }
        _ => {
            let contents = body["contents"].as_array().unwrap();
            let call = contents[1]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p.get("functionCall").is_some())
                .unwrap();
            let response = contents[2]["parts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p.get("functionResponse").is_some())
                .unwrap();
            assert_eq!(
                response["functionResponse"]["name"],
                call["functionCall"]["name"]
            );
            (
                call["functionCall"]["name"].as_str().unwrap().into(),
                call["functionCall"]["args"].clone(),
                response["functionResponse"]["response"].to_string(),
            )
        }
    }
}

#[tokio::test]
async fn a_tool_conversation_continues_on_another_vendor_for_every_pair() {
    for (from, from_model) in VENDORS {
        for (to, to_model) in VENDORS {
            if from == to {
                continue;
            }
            let sim = Simulator::start().await.unwrap();
            // Turn 1 on `from`: the model calls the tool.
            sim.script(
                from_model,
                [Reply::tool_call("get_weather", r#"{"city":"Paris"}"#)],
            );
            let first = three_vendors(&sim, Chain::new().target(Target::new(from, from_model)));
            let question = ChatRequest::new("r")
                .user("Weather in Paris?")
                .tool(weather_tool());
            let turn1 = guarded(first.chat(question.clone())).await.unwrap();
            let calls: Vec<ToolCall> = turn1.tool_calls().to_vec();
            assert_eq!(calls.len(), 1, "{from}");
            assert_eq!(calls[0].function.name, "get_weather");
            let args: Value = serde_json::from_str(&calls[0].function.arguments).unwrap();
            assert_eq!(args, json!({"city": "Paris"}));

            // Turn 2: `from` is down, `to` answers with the whole conversation.
            sim.clear();
            sim.script(from_model, [Reply::error(SimError::Overloaded)]);
            sim.script(to_model, [Reply::text("It is sunny in Paris.")]);
            let second = three_vendors(
                &sim,
                Chain::new()
                    .target(Target::new(from, from_model))
                    .target(Target::new(to, to_model)),
            );
            let convo =
                question
                    .message(turn1.choices[0].message.clone())
                    .message(Message::tool_result(
                        calls[0].id.clone(),
                        r#"{"temp_c":21,"sky":"sunny"}"#,
                    ));
            let turn2 = guarded(second.chat(convo)).await.unwrap();
            assert_eq!(turn2.text(), "It is sunny in Paris.", "{from} -> {to}");
            assert_eq!(turn2.meta.served_by.as_ref().unwrap().provider.as_ref(), to);

            let body = &sim.requests_for(to_model)[0].body;
            let (name, args, result) = tool_turns(to, body);
            assert_eq!(name, "get_weather", "{from} -> {to}");
            assert_eq!(args, json!({"city": "Paris"}), "{from} -> {to}");
            assert!(
                result.contains("21") && result.contains("sunny"),
                "{from} -> {to}: {result}"
            );
        }
    }
}

#[tokio::test]
async fn signed_reasoning_goes_back_only_to_the_vendor_that_signed_it() {
    let sim = Simulator::start().await.unwrap();
    let mut turn = Message::assistant("Earlier answer.");
    turn.thinking_blocks = vec![
        ThinkingBlock::Thinking {
            thinking: "claude's thought".into(),
            signature: Some("ANTHROPIC-SIG".into()),
            source: Some("anthropic".into()),
        },
        ThinkingBlock::Thinking {
            thinking: "gemini's thought".into(),
            signature: Some("GEMINI-SIG".into()),
            source: Some("gemini".into()),
        },
    ];
    let convo = ChatRequest::new("r").user("Q1").message(turn).user("Q2");
    for (provider, model, own, foreign) in [
        (
            "anthropic",
            "claude-sonnet-4-5",
            "ANTHROPIC-SIG",
            "GEMINI-SIG",
        ),
        ("gemini", "gemini-2.5-flash", "GEMINI-SIG", "ANTHROPIC-SIG"),
        ("openai", "gpt-4o", "", "SIG"),
    ] {
        sim.clear();
        let relay = three_vendors(&sim, Chain::new().target(Target::new(provider, model)));
        guarded(relay.chat(convo.clone())).await.unwrap();
        let sent = sim.requests()[0].body.to_string();
        assert!(sent.contains(own), "{provider} gets its own signature back");
        assert!(
            !sent.contains(foreign),
            "{provider} never gets another vendor's signature: {sent}"
        );
    }
}
