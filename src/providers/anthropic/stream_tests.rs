//! Unit tests of the Anthropic codec: stream edge cases and the provider over HTTP.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::*;
use crate::providers::EventHandler;
use crate::types::ErrorKind;
use crate::types::response_to_chunks as response_chunks;
use crate::types::{ChatChunk, FinishReason, StreamAccumulator};

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
    assert_eq!(p.codec.default_max_tokens, 1000);
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
    assert_eq!((p.url(), p.codec.default_max_tokens), (base.url(), 1000));
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
