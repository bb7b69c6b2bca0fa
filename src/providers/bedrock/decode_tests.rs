//! Converse answers: every recorded non-stream body through the codec, and the round trip
//! of reasoning blocks.

use serde_json::{Value, json};

use super::*;
use crate::types::{ChatChunk, FinishReason, StreamAccumulator, ThinkingBlock};

macro_rules! fixture {
    ($name:expr) => {
        include_bytes!(concat!("../../../tests/fixtures/bedrock/", $name)).as_slice()
    };
}

fn decode(body: &[u8]) -> Result<ChatResponse, Error> {
    let key = ApiKey::new("");
    Bedrock::new("us-east-1", AwsAuth::unsigned())
        .codec()
        .decode(body, &Redactor::new(&key))
}

#[test]
fn text_answers() {
    for (name, body, text, input, output) in [
        (
            "converse_text_nova.json",
            fixture!("converse_text_nova.json"),
            "Hello! How can I assist you today?",
            7,
            30,
        ),
        (
            "converse_text_after_tool_raw.json",
            fixture!("converse_text_after_tool_raw.json"),
            "The weather in San Francisco, CA is currently **sunny**!",
            512,
            27,
        ),
        (
            "vercel_converse_text.json",
            fixture!("vercel_converse_text.json"),
            "Let me count the \"r\"s",
            22,
            57,
        ),
        (
            "converse_guardrail_trace_nova.json",
            fixture!("converse_guardrail_trace_nova.json"),
            "The capital of France is Paris.",
            13,
            69,
        ),
    ] {
        let r = decode(body).expect(name);
        assert!(r.text().starts_with(text), "{name}: {}", r.text());
        assert_eq!(r.finish_reason(), Some(&FinishReason::Stop), "{name}");
        let u = r.usage.expect("usage");
        assert_eq!((u.input_tokens, u.output_tokens), (input, output), "{name}");
        // Converse sends no id: one is made; the model is left to the relay (the id asked for).
        assert!(r.id.starts_with("chatcmpl-"), "{name}");
        assert!(r.created > 0);
        assert_eq!(r.model, "");
    }
}

#[test]
fn max_tokens_is_length_and_guardrails_are_content_filter() {
    let r = decode(fixture!("converse_finish_max_tokens_nova.json")).expect("max tokens");
    assert_eq!(r.finish_reason(), Some(&FinishReason::Length));
    assert_eq!(r.text(), "The capital of France is");
    for stop in ["guardrail_intervened", "content_filtered"] {
        let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": "Sorry, the model cannot answer this question."}]}},
                          "stopReason": stop, "usage": {"inputTokens": 5, "outputTokens": 0, "totalTokens": 5}});
        let r = decode(body.to_string().as_bytes()).expect(stop);
        assert_eq!(
            r.finish_reason(),
            Some(&FinishReason::ContentFilter),
            "{stop}"
        );
    }
    let body = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "model_context_window_exceeded"});
    let r = decode(body.to_string().as_bytes()).expect("window");
    assert_eq!(r.finish_reason(), Some(&FinishReason::Length));
    let body = json!({"output": {"message": {"role": "assistant", "content": []}}, "stopReason": "malformed_model_output"});
    let e = decode(body.to_string().as_bytes()).expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::Server);
}

#[test]
fn tool_use_answer() {
    let r = decode(fixture!("converse_tool_use_claude.json")).expect("tool use");
    assert_eq!(r.finish_reason(), Some(&FinishReason::ToolCalls));
    let calls = r.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "tooluse_8ZVLMmsdearTDSS0unN07z");
    assert_eq!(calls[0].function.name, "get_weather");
    assert_eq!(calls[0].function.arguments, r#"{"city":"Paris"}"#);
    assert!(r.choices[0].message.content.is_none());
    assert_eq!(r.usage.map(|u| u.input_tokens), Some(560));
}

#[test]
fn cache_tokens_count_in_the_input() {
    let w = decode(fixture!("converse_cache_write_claude.json")).expect("write");
    let u = w.usage.expect("usage");
    // totalTokens 1329 = 2 + 0 + 1322 + 5.
    assert_eq!(u.input_tokens + u.output_tokens, 1329);
    assert_eq!((u.cache_write_tokens, u.cache_read_tokens), (1322, 0));
    let r = decode(fixture!("converse_cache_read_claude.json")).expect("read");
    let u = r.usage.expect("usage");
    assert_eq!(u.cache_read_tokens, 1322);
    assert_eq!(u.cache_write_tokens, 0);
    assert_eq!(u.uncached_input_tokens() + 1322, u.input_tokens);
    // Only the `…TokenCount` spelling: still read.
    let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": "x"}]}}, "stopReason": "end_turn",
                      "usage": {"inputTokens": 1, "outputTokens": 1, "cacheReadInputTokenCount": 4}});
    let u = decode(body.to_string().as_bytes())
        .expect("count")
        .usage
        .expect("usage");
    assert_eq!((u.input_tokens, u.cache_read_tokens), (5, 4));
}

#[test]
fn reasoning_answers_and_their_round_trip() {
    for (name, body) in [
        (
            "converse_reasoning_claude.json",
            fixture!("converse_reasoning_claude.json"),
        ),
        (
            "vercel_converse_reasoning.json",
            fixture!("vercel_converse_reasoning.json"),
        ),
    ] {
        let r = decode(body).expect(name);
        let wire: Value = serde_json::from_slice(body).expect("json");
        let rt = &wire["output"]["message"]["content"][0]["reasoningContent"]["reasoningText"];
        assert_eq!(r.reasoning(), rt["text"].as_str(), "{name}");
        let m = &r.choices[0].message;
        assert_eq!(
            m.thinking_blocks,
            vec![ThinkingBlock::Thinking {
                thinking: rt["text"].as_str().unwrap_or("").to_owned(),
                signature: rt["signature"].as_str().map(str::to_owned),
                source: Some("bedrock".into()),
            }],
            "{name}"
        );
        // Sent back in the next turn as Bedrock made it.
        let mut back = m.clone();
        back.role = crate::types::Role::Assistant;
        let req = ChatRequest::new("m").user("q").message(back).user("next");
        let sent: Value = serde_json::from_slice(
            &converse::encode(&req, "us.anthropic.claude-sonnet-4-20250514-v1:0").expect("encode"),
        )
        .expect("json");
        assert_eq!(
            sent["messages"][1]["content"][0]["reasoningContent"]["reasoningText"], *rt,
            "{name}"
        );
    }
    let body = fixture!("converse_reasoning_redacted_claude.json");
    let r = decode(body).expect("redacted");
    let wire: Value = serde_json::from_slice(body).expect("json");
    let blob =
        wire["output"]["message"]["content"][0]["reasoningContent"]["redactedContent"].clone();
    assert!(matches!(
        r.choices[0].message.thinking_blocks.first(),
        Some(ThinkingBlock::Redacted { .. })
    ));
    let req = ChatRequest::new("m")
        .user("q")
        .message(r.choices[0].message.clone())
        .user("next");
    let sent: Value =
        serde_json::from_slice(&converse::encode(&req, "us.anthropic.claude-3-7").expect("encode"))
            .expect("json");
    assert_eq!(
        sent["messages"][1]["content"][0]["reasoningContent"]["redactedContent"],
        blob
    );
}

#[test]
fn citations_keep_their_text_and_become_annotations() {
    let r = decode(fixture!("converse_citations_raw.json")).expect("citations");
    assert_eq!(
        r.text(),
        "Employees should consult with your manager for details."
    );
    let ann = &r.choices[0].message.extra["annotations"];
    assert_eq!(ann[0]["type"], "citation");
    assert_eq!(ann[0]["start_index"], 17);
    assert_eq!(ann[0]["end_index"], 55);
    assert_eq!(ann[0]["citation"]["title"], "company_policy");
}

#[test]
fn bodies_with_nothing_in_them_are_decode_errors() {
    for body in [
        &b"{}"[..],
        b"not json",
        br#"{"output":{"message":{"content":[]}}}"#,
        b"[]",
    ] {
        let e = decode(body).expect_err("empty");
        assert_eq!(
            e.kind(),
            ErrorKind::Decode,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

/// The decoded event sequences vercel/ai logged (`{"<eventType>": payload}` per line), put
/// back into frames: the stream folds to the answer the events hold.
#[test]
fn sdk_event_logs_fold_through_the_stream_decoder() {
    for (name, log, text, reasoning) in [
        (
            "vercel_converse_stream_text",
            include_str!(
                "../../../tests/fixtures/bedrock/vercel_converse_stream_text.events.jsonl"
            ),
            true,
            false,
        ),
        (
            "vercel_converse_stream_reasoning",
            include_str!(
                "../../../tests/fixtures/bedrock/vercel_converse_stream_reasoning.events.jsonl"
            ),
            true,
            true,
        ),
    ] {
        let mut body = Vec::new();
        let mut want_text = String::new();
        let mut want_reasoning = String::new();
        for line in log.lines().filter(|l| !l.trim().is_empty()) {
            let ev: Value = serde_json::from_str(line).expect("jsonl");
            let (ty, payload) = ev.as_object().and_then(|o| o.iter().next()).expect("event");
            if let Some(t) = payload["delta"]["text"].as_str() {
                want_text.push_str(t);
            }
            if let Some(t) = payload["delta"]["reasoningContent"]["text"].as_str() {
                want_reasoning.push_str(t);
            }
            body.extend(eventstream::encode_frame(
                &[(":event-type", ty), (":message-type", "event")],
                payload.to_string().as_bytes(),
            ));
        }
        let (chunks, r) = super::stream_tests::run_with(ConverseEvents::new(), &body, &[]);
        r.expect(name);
        let mut acc = StreamAccumulator::new();
        chunks.iter().for_each(|c: &ChatChunk| acc.push(c));
        let resp = acc.finish();
        assert!(text && !want_text.is_empty());
        assert_eq!(resp.text(), want_text, "{name}");
        assert_eq!(resp.reasoning().is_some(), reasoning, "{name}");
        if reasoning {
            assert_eq!(resp.reasoning(), Some(want_reasoning.as_str()));
            assert!(matches!(
                resp.choices[0].message.thinking_blocks.first(),
                Some(ThinkingBlock::Thinking {
                    signature: Some(_),
                    ..
                })
            ));
        }
        assert!(resp.usage.is_some(), "{name}");
    }
}

/// Mantle answers OpenAI's shape: the preset's codec reads the recorded answer, reasoning
/// included.
#[test]
fn recorded_mantle_answer_decodes_as_openai() {
    let key = ApiKey::new("");
    let m = mantle("us-east-1", "k");
    let r = m
        .codec()
        .decode(
            fixture!("mantle_chat_completions_gpt_oss.json"),
            &Redactor::new(&key),
        )
        .expect("mantle");
    assert_eq!(r.text(), "SAFE");
    assert!(
        r.reasoning()
            .is_some_and(|t| t.starts_with("The user says"))
    );
    assert_eq!(r.model, "openai.gpt-oss-safeguard-20b");
    assert_eq!(
        r.usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((72, 56))
    );
}

/// CountTokens is not a call the relay makes; its body (`{"inputTokens": N}`) arriving where
/// an answer should is an answer with nothing in it, not an empty success.
#[test]
fn a_count_tokens_body_is_not_an_answer() {
    let e = decode(fixture!("count_tokens_claude.json")).expect_err("count tokens");
    assert_eq!(e.kind(), ErrorKind::Decode);
}
