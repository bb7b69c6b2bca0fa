//! Streams, and streamed and unstreamed answers agreeing.

use std::collections::BTreeSet;

use polyrelay::{ChatResponse, ErrorKind, FinishReason, Role};
use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------

/// The raw recordings pad JSON with spaces before the closing brace and send `{"type": "ping"}`
/// (a space after the colon); serde takes both.
#[test]
fn raw_recordings_have_padding_and_spaced_pings() {
    let rel = "anthropic/messages_stream_thinking.sse";
    let text = read_str(rel);
    assert!(
        text.contains(r#"{"type":"message_stop"         }"#),
        "padding"
    );
    assert!(text.contains("data: {\"type\": \"ping\"}\n"), "spaced ping");
    let padded = Ant::sse_blocks(&text)
        .iter()
        .filter(|(s, e)| text[*s..*e].contains(" }\n"))
        .count();
    assert!(padded > 100, "most events are padded: {padded}");
    Ant::decode_stream(rel);
}

#[test]
fn stream_redacted_thinking() {
    let (chunks, _) = Ant::check_sse(
        "anthropic/messages_stream_redacted_thinking.sse",
        &Want {
            id: "msg_018XZkwvj9asBiffg3fXt88s",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "I notice that you've sent what appears to be some kind of test string or command.",
                "How can I assist you today with a legitimate task or question?",
                359,
            )),
            reasoning: None,
            blocks: &[
                Blk::Redacted("EqkECkYIBxgCKkA8AZ4noDfV5VcOJe", 744),
                Blk::Redacted("EtgBCkYIBxgCKkDQfGkwzflEJP5asG", 296),
            ],
            calls: &[],
            // message_start said 88 output tokens; message_delta's cumulative 189 wins.
            usage: (92, 189, 0, 0, 0),
        },
    );
    // role, 2 redacted blocks, 15 text deltas, message_delta.
    assert_eq!(chunks.len(), 19);
    assert_eq!(content_chunks(&chunks), 15);
    let redacted: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.choices[0].delta.redacted_thinking.is_some())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(redacted, [1, 2]);
}

#[test]
fn stream_structured_output_text_is_json() {
    let (chunks, r) = Ant::check_sse(
        "anthropic/messages_stream_structured_output_beta.sse",
        &Want {
            id: "msg_01LtFpmR8SbmiK2kRA5sWXNi",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact("[12345,67890]")),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (135, 10, 0, 0, 0),
        },
    );
    let parsed: Value = serde_json::from_str(&r.text()).expect("JSON output");
    assert_eq!(parsed, json!([12345, 67890]));
    assert_eq!(chunks.len(), 6);
    // The final usage on the message_delta chunk, with the finish reason; message_start's
    // count (input tokens, billed even if the stream goes no further) on the first chunk.
    let last = chunks.last().expect("chunks");
    assert!(last.usage.is_some() && last.finish_reason().is_some());
    assert_eq!(chunks.iter().filter(|c| c.usage.is_some()).count(), 2);
    assert_eq!(chunks[0].usage.map(|u| u.input_tokens), Some(135));
}

#[test]
fn stream_thinking_then_text() {
    let (chunks, _) = Ant::check_sse(
        "anthropic/messages_stream_thinking.sse",
        &Want {
            id: "msg_01ALwQ87pTS7hH1PjSdC9wJD",
            model: "claude-sonnet-4-20250514",
            finish: FinishReason::Stop,
            text: Some(Txt::Shape(
                "Here are the basic steps for safely crossing the street:\n\n**At intersections",
                "Always prioritize safety over speed when crossing streets.",
                1021,
            )),
            reasoning: Some(Txt::Exact(
                "This is a straightforward question about pedestrian safety. I should provide clear, helpful advice about how to safely cross a street. This is basic safety information that could help prevent accidents.",
            )),
            blocks: &[Blk::Signed(
                Txt::Shape("This is a straightforward", "prevent accidents.", 202),
                "EvMCCkYICxgCKkCHP2cSuEdcJK/0rF",
                504,
            )],
            calls: &[],
            usage: (43, 282, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 111);
    assert_eq!(content_chunks(&chunks), 108);
    // The empty `thinking_delta` before the signature yields nothing.
    assert!(chunks.iter().all(|c| c.reasoning() != Some("")));
}

#[test]
fn stream_tool_use_with_ping_after_block_start() {
    let (chunks, _) = Ant::check_sse(
        "anthropic/messages_stream_tool_use.sse",
        &Want {
            id: "msg_01AusY9WEbCaj3N7Tv5J4YjH",
            model: "claude-haiku-4-5-20251001",
            finish: FinishReason::ToolCalls,
            text: None,
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_018acGYLtfR52q9yDbWaEdQZ",
                "get_weather",
                r#"{"location": "San Francisco, CA", "units": "f"}"#,
            )],
            usage: (656, 74, 0, 0, 0),
        },
    );
    // role, the call's start (id, name, ""), 9 non-empty fragments, message_delta.
    assert_eq!(chunks.len(), 12);
    let first = &chunks[1].choices[0].delta.tool_calls[0];
    assert_eq!(first.index, Some(0));
    assert_eq!(first.id.as_deref(), Some("toolu_018acGYLtfR52q9yDbWaEdQZ"));
    assert_eq!(first.function.name.as_deref(), Some("get_weather"));
    assert_eq!(first.function.arguments.as_deref(), Some(""));
    let fragments: String = chunks[2..11]
        .iter()
        .map(|c| {
            let d = &c.choices[0].delta.tool_calls[0];
            assert_eq!((d.index, d.id.as_deref()), (Some(0), None));
            d.function.arguments.as_deref().expect("fragment")
        })
        .collect();
    assert_eq!(
        fragments,
        r#"{"location": "San Francisco, CA", "units": "f"}"#
    );
}

#[test]
fn stream_text_then_tool_use_with_ratelimit_headers() {
    let (chunks, _) = Ant::check_sse(
        "anthropic/messages_stream_tool_use_with_ratelimit_headers.sse",
        &Want {
            id: "msg_01JCJXSfyzkcecJUydp157cS",
            model: "claude-3-5-haiku-20241022",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact(
                "I'll help you find out the current temperature in San Francisco. I'll use the get_current_temperature function to retrieve this information.",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[(
                "toolu_01Lfr3kUnHMZApePPRWMv1uS",
                "get_current_temperature",
                r#"{"city": "San Francisco"}"#,
            )],
            usage: (351, 85, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 20);
    // The call is the stream's first tool block: index 0, although it is content block 1.
    let call_indexes: BTreeSet<Option<u32>> = chunks
        .iter()
        .flat_map(|c| c.choices[0].delta.tool_calls.iter().map(|t| t.index))
        .collect();
    assert_eq!(call_indexes, BTreeSet::from([Some(0)]));
    let side = read_sidecar("anthropic/messages_stream_tool_use_with_ratelimit_headers.http.json");
    assert_eq!(side.headers["request-id"], "REQUEST-ID-XXX");
}

/// The mid-stream error (HTTP 200 already sent) is a typed, retryable error, never a silent
/// end; nothing follows it (no `message_stop`).
#[test]
fn stream_error_event_overloaded() {
    let rel = "anthropic/messages_stream_error_event_overloaded.sse";
    let text = read_str(rel);
    assert!(
        text.contains(r#""details":null"#) && text.contains("} }"),
        "recorded shape"
    );
    let out = Ant::decode_whole(text.as_bytes());
    assert!(out.chunks.is_empty());
    let (stage, e) = out.error.expect("an error");
    assert_eq!(stage, Stage::Feed);
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.code(), Some("overloaded_error"));
    assert_eq!(e.message(), "Overloaded");
    assert_eq!(e.status(), None);
    assert_eq!(e.request_id(), None);
    assert!(
        e.body_snippet()
            .is_some_and(|b| b.contains("overloaded_error"))
    );
    // After some content too.
    let head = read_str("anthropic/vercel_messages_stream_text.sse");
    let cut = Ant::sse_blocks(&head)[4].1;
    let out = Ant::decode_whole(format!("{}{text}", &head[..cut]).as_bytes());
    // The role chunk and two text deltas, then the error.
    assert_eq!(out.chunks.len(), 3);
    assert_eq!(
        out.error.map(|(_, e)| e.kind()),
        Some(ErrorKind::Overloaded)
    );
}

#[test]
fn vercel_stream_text() {
    let (chunks, _) = Ant::check_sse(
        "anthropic/vercel_messages_stream_text.sse",
        &Want {
            id: "msg_01QC4g3HwBThD4BaNtBckFDJ",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact(
                "Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?",
            )),
            reasoning: None,
            blocks: &[],
            calls: &[],
            usage: (12, 30, 0, 0, 0),
        },
    );
    assert_eq!(chunks.len(), 8);
    assert_eq!(chunks[0].choices[0].delta.role, Some(Role::Assistant));
}

/// A no-argument tool gets only `partial_json: ""`: its arguments are `{}`, as in unstreamed
/// responses.
#[test]
fn vercel_stream_text_then_tool_use_no_args() {
    let (chunks, r) = Ant::check_sse(
        "anthropic/vercel_messages_stream_text_then_tool_use_no_args.sse",
        &Want {
            id: "msg_01GE2RKp1VYsPzdFs3sS9z5S",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::ToolCalls,
            text: Some(Txt::Exact("I'll update the issue list for you.")),
            reasoning: None,
            blocks: &[],
            calls: &[("toolu_01QE1WLsSVp5hy5Q3GmGTmjP", "updateIssueList", "{}")],
            usage: (565, 48, 0, 0, 0),
        },
    );
    assert_eq!(r.tool_calls()[0].function.arguments, "{}");
    assert_eq!(chunks.len(), 6);
}

/// The context-management beta adds `context_management` to `message_delta`; it is ignored.
#[test]
fn vercel_stream_thinking_with_context_management() {
    let rel = "anthropic/vercel_messages_stream_thinking_context_management.sse";
    let (chunks, _) = Ant::check_sse(
        rel,
        &Want {
            id: "msg_01Y6V41gqPaKWEw7iPouH7iW",
            model: "claude-sonnet-4-5-20250929",
            finish: FinishReason::Stop,
            text: Some(Txt::Exact("925 ÷ 5 = 185")),
            reasoning: Some(Txt::Exact(
                "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185",
            )),
            blocks: &[Blk::Signed(
                Txt::Exact(
                    "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185",
                ),
                "EvQBCkYICxgCKkAxhD4NUKFzudtZ6N",
                332,
            )],
            calls: &[],
            usage: (69, 53, 0, 0, 0),
        },
    );
    assert!(read_str(rel).contains(r#""context_management":{"applied_edits":[]}"#));
    assert_eq!(chunks.len(), 15);
}

// ---------------------------------------------------------------------------------------------
// Streamed and unstreamed answers agree
// ---------------------------------------------------------------------------------------------

/// The message Anthropic's SDKs accumulate from a stream's events (their `MessageStream`
/// semantics, written out here over raw JSON): `message_start` gives the message,
/// `content_block_start` adds a block, deltas extend it (`input_json_delta` text is parsed at
/// `content_block_stop`), `message_delta` sets the stop reason and overwrites usage fields.
fn sdk_accumulate(text: &str) -> Value {
    let mut message = Value::Null;
    let mut json_text: Vec<String> = Vec::new();
    for (_, ev) in sse_events(text) {
        let index = ev["index"].as_u64().unwrap_or(0) as usize;
        match ev["type"].as_str().expect("type") {
            "message_start" => message = ev["message"].clone(),
            "content_block_start" => {
                let content = message["content"].as_array_mut().expect("content");
                assert_eq!(content.len(), index, "blocks arrive in order");
                content.push(ev["content_block"].clone());
                json_text.push(String::new());
            }
            "content_block_delta" => {
                let block = &mut message["content"][index];
                let d = &ev["delta"];
                let append = |block: &mut Value, key: &str, more: &Value| {
                    let s = format!(
                        "{}{}",
                        block[key].as_str().unwrap_or(""),
                        more.as_str().expect("delta text")
                    );
                    block[key] = Value::from(s);
                };
                match d["type"].as_str().expect("delta type") {
                    "text_delta" => append(block, "text", &d["text"]),
                    "thinking_delta" => append(block, "thinking", &d["thinking"]),
                    "signature_delta" => block["signature"] = d["signature"].clone(),
                    "input_json_delta" => {
                        json_text[index].push_str(d["partial_json"].as_str().expect("json"))
                    }
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                if !json_text[index].is_empty() {
                    message["content"][index]["input"] =
                        serde_json::from_str(&json_text[index]).expect("whole input JSON");
                }
            }
            "message_delta" => {
                message["stop_reason"] = ev["delta"]["stop_reason"].clone();
                if let Some(u) = ev["usage"].as_object() {
                    for (k, v) in u {
                        message["usage"][k] = v.clone();
                    }
                }
            }
            "message_stop" => break,
            "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    message
}

/// Tool-call arguments re-serialized canonically (a stream keeps the model's spacing).
fn canonical_arguments(mut r: ChatResponse) -> ChatResponse {
    for c in &mut r.choices {
        for call in &mut c.message.tool_calls {
            let v: Value = serde_json::from_str(&call.function.arguments).expect("JSON arguments");
            call.function.arguments = v.to_string();
        }
    }
    r
}

/// For every recorded stream, `collect()` (the fold of its chunks) equals the non-streaming
/// decode of the message the SDKs accumulate from the same events — text, reasoning, signed
/// and redacted blocks, tool calls, finish reason, id, model and usage.
#[test]
fn every_stream_folds_to_the_unstreamed_decode_of_its_message() {
    let mut checked = 0;
    for rel in Ant::all_sse() {
        if rel.contains("error_event") {
            continue;
        }
        let text = read_str(&rel);
        let message = sdk_accumulate(&text);
        let unstreamed = decode_response(message.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: accumulated message: {e:?}"));
        let (_, folded) = Ant::decode_stream(&rel);
        assert_eq!(
            canonical_arguments(folded),
            canonical_arguments(unstreamed),
            "{rel}"
        );
        checked += 1;
    }
    assert_eq!(checked, 9, "successful streams");
}

/// The folder holds no stream and non-stream recording of the same answer: the vercel
/// `anthropic-json-tool.1` pair comes from two different calls of the same prompt. What is
/// the same answer agrees: model, finish reason, no text, one call of `json` whose arguments
/// have the same shape. What differs, and why: the message and call ids (two calls), the
/// arguments' values (the model invented 1 city when streamed, 4 unstreamed) and so the usage
/// (849→47 vs 1151→87 tokens: the prompts differ slightly in length too).
#[test]
fn streamed_and_unstreamed_json_tool_calls_agree_on_the_same_answer() {
    let (_, s) = Ant::decode_stream("anthropic/vercel_messages_stream_tool_use_json.sse");
    let u = Ant::decode_json("anthropic/vercel_messages_tool_use_json.json");
    assert_eq!(s.model, u.model);
    assert_eq!(s.finish_reason(), u.finish_reason());
    assert_eq!(s.choices[0].message.content, None);
    assert_eq!(u.choices[0].message.content, None);
    assert_eq!((s.reasoning(), u.reasoning()), (None, None));
    assert_eq!(s.tool_calls().len(), 1);
    assert_eq!(u.tool_calls().len(), 1);
    let shape = |r: &ChatResponse| -> (String, Vec<BTreeSet<String>>) {
        let call = &r.tool_calls()[0];
        let args: Value = serde_json::from_str(&call.function.arguments).expect("JSON");
        let elements = args["elements"].as_array().expect("elements");
        let keys = elements
            .iter()
            .map(|e| e.as_object().expect("object").keys().cloned().collect())
            .collect();
        (call.function.name.clone(), keys)
    };
    let (s_name, s_keys) = shape(&s);
    let (u_name, u_keys) = shape(&u);
    assert_eq!(s_name, u_name);
    let want: BTreeSet<String> = ["condition", "location", "temperature"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(s_keys.iter().chain(&u_keys).all(|k| *k == want));
    // The differences, as recorded.
    assert_ne!(s.id, u.id);
    assert_eq!((s_keys.len(), u_keys.len()), (1, 4));
    let (su, uu) = (s.usage.expect("usage"), u.usage.expect("usage"));
    assert_eq!((su.input_tokens, uu.input_tokens), (849, 1151));
}

/// No-argument tool calls read `{}` everywhere: unstreamed `input: {}` and streamed
/// `partial_json: ""`.
#[test]
fn no_argument_tool_calls_agree_between_stream_and_body() {
    let mut seen = Vec::new();
    for rel in [
        "anthropic/messages_tool_use_empty_input.json",
        "anthropic/messages_thinking_tool_use.json",
        "anthropic/vercel_messages_tool_use_no_args.json",
    ] {
        seen.push(
            Ant::decode_json(rel).tool_calls()[0]
                .function
                .arguments
                .clone(),
        );
    }
    let (_, s) =
        Ant::decode_stream("anthropic/vercel_messages_stream_text_then_tool_use_no_args.sse");
    seen.push(s.tool_calls()[0].function.arguments.clone());
    assert_eq!(seen, ["{}", "{}", "{}", "{}"]);
}

// ---------------------------------------------------------------------------------------------
// Chunk logs
// ---------------------------------------------------------------------------------------------

/// How many chunks (and content chunks) one event must yield, by the documented mapping:
/// `message_start` 1; a `tool_use` start 1 (content), a `redacted_thinking` start 1, a text or
/// thinking start only if non-empty; a non-empty delta 1 (content unless a signature); a
/// `content_block_stop` of a tool block that got no argument text 1 (content: the `{}`);
/// `message_delta` 1; `ping`, `message_stop` 0.
fn expected_yield(ev: &Value, tool_blocks: &mut Vec<(u64, bool)>) -> (usize, usize) {
    let nonempty = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    let index = ev["index"].as_u64().unwrap_or(0);
    match ev["type"].as_str().expect("type") {
        "message_start" | "message_delta" => (1, 0),
        "content_block_start" => {
            let b = &ev["content_block"];
            match b["type"].as_str().expect("block type") {
                "tool_use" => {
                    tool_blocks.push((index, false));
                    (1, 1)
                }
                "redacted_thinking" => (1, 0),
                "text" if nonempty(&b["text"]) => (1, 1),
                "thinking" if nonempty(&b["thinking"]) => (1, 1),
                _ => (0, 0),
            }
        }
        "content_block_delta" => {
            let d = &ev["delta"];
            match d["type"].as_str().expect("delta type") {
                "text_delta" if nonempty(&d["text"]) => (1, 1),
                "thinking_delta" if nonempty(&d["thinking"]) => (1, 1),
                "signature_delta" if nonempty(&d["signature"]) => (1, 0),
                "input_json_delta" if nonempty(&d["partial_json"]) => {
                    if let Some(t) = tool_blocks.iter_mut().find(|t| t.0 == index) {
                        t.1 = true;
                    }
                    (1, 1)
                }
                _ => (0, 0),
            }
        }
        "content_block_stop" => match tool_blocks.iter().position(|t| t.0 == index) {
            Some(p) if !tool_blocks.remove(p).1 => (1, 1),
            _ => (0, 0),
        },
        _ => (0, 0),
    }
}

/// Each `.sse` converted from a vercel chunk log is exactly the log framed as
/// `event: <type>\ndata: <line>\n\n`, and every logged event yields the chunks the mapping
/// says (checked event by event).
#[test]
fn converted_streams_match_their_chunk_logs() {
    let logs: Vec<String> = Ant::files()
        .into_iter()
        .filter(|f| f.ends_with(".chunks.jsonl"))
        .collect();
    assert_eq!(
        logs,
        [
            "anthropic/vercel_messages_stream_text.chunks.jsonl",
            "anthropic/vercel_messages_stream_text_then_tool_use_no_args.chunks.jsonl",
            "anthropic/vercel_messages_stream_thinking_context_management.chunks.jsonl",
            "anthropic/vercel_messages_stream_tool_use_json.chunks.jsonl",
        ]
    );
    let mut totals = Vec::new();
    for log in &logs {
        let sse = log.replace(".chunks.jsonl", ".sse");
        let lines: Vec<String> = read_str(log)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect();
        let framed: String = lines
            .iter()
            .map(|l| {
                let v: Value = serde_json::from_str(l).expect("JSON line");
                format!(
                    "event: {}\ndata: {l}\n\n",
                    v["type"].as_str().expect("type")
                )
            })
            .collect();
        assert_eq!(read_str(&sse), framed, "{sse} is {log} framed as SSE");

        let mut dec = Ant::stream_decoder();
        let mut tools = Vec::new();
        let mut all = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            let v: Value = serde_json::from_str(l).expect("JSON line");
            let got = dec
                .feed(
                    format!("event: {}\ndata: {l}\n\n", v["type"].as_str().unwrap_or(""))
                        .as_bytes(),
                )
                .unwrap_or_else(|e| panic!("{sse} line {i}: {e:?}"));
            let (n, content) = expected_yield(&v, &mut tools);
            assert_eq!(got.len(), n, "{sse} line {i}: chunks from {l}");
            assert_eq!(
                content_chunks(&got),
                content,
                "{sse} line {i}: content chunks"
            );
            all.extend(got);
        }
        assert!(dec.is_done(), "{sse}: message_stop");
        assert_eq!(
            Ant::decode_stream(&sse).0,
            all,
            "{sse}: event by event = whole"
        );
        totals.push((lines.len(), all.len(), content_chunks(&all)));
    }
    // (logged events, chunks, content chunks), counted independently from the logs.
    assert_eq!(totals, [(12, 8, 6), (13, 6, 4), (22, 15, 12), (9, 5, 3)]);
}

/// Streams with nothing to check beyond their row (decoded whole and folded).
#[test]
fn streams_fold_as_recorded() {
    let rows = [
        // Was `vercel_stream_tool_use_json`.
        (
            "anthropic/vercel_messages_stream_tool_use_json.sse",
            Want {
                id: "msg_01K2JbSUMYhez5RHoK9ZCj9U",
                model: "claude-haiku-4-5-20251001",
                finish: FinishReason::ToolCalls,
                text: None,
                reasoning: None,
                blocks: &[],
                calls: &[(
                    "toolu_01KFbKqPYSuAKujiL6mTfzYA",
                    "json",
                    r#"{"elements":[{"location":"San Francisco","temperature":58,"condition":"sunny"}]}"#,
                )],
                usage: (849, 47, 0, 0, 0),
            },
        ),
    ];
    Ant::check_table(&rows);
}
