//! ConverseStream decoding: the recorded bodies (checked against their `.decoded.jsonl`,
//! fed whole and split anywhere), in-stream exceptions, cut and corrupt streams.

use std::collections::VecDeque;

use serde_json::{Value, json};

use super::eventstream::encode_frame;
use super::stream::{BedrockStream, ConverseEvents, FrameEvents};
use crate::providers::StreamDecoder;
use crate::secret::ApiKey;
use crate::types::{ChatChunk, ChatResponse, ErrorKind, FinishReason, StreamAccumulator};
use crate::types::{Error, ThinkingBlock};

macro_rules! recorded {
    ($($name:literal),* $(,)?) => {
        [$((
            $name,
            include_bytes!(concat!("../../../tests/fixtures/bedrock/", $name, ".eventstream")).as_slice(),
            include_str!(concat!("../../../tests/fixtures/bedrock/", $name, ".decoded.jsonl")),
        )),*]
    };
}

/// The 9 recorded ConverseStream bodies with their CRC-checked decode.
pub(super) const RECORDED: [(&str, &[u8], &str); 9] = recorded!(
    "converse_stream_citations_claude",
    "converse_stream_empty_text_delta_gpt_oss",
    "converse_stream_reasoning_claude",
    "converse_stream_reasoning_redacted_claude",
    "converse_stream_server_tool_nova",
    "converse_stream_text_after_tool_nova",
    "converse_stream_text_nova",
    "converse_stream_tool_use_claude",
    "converse_stream_tool_use_nova",
);

pub(super) fn decoder<E: FrameEvents>(events: E) -> BedrockStream<E> {
    BedrockStream::new(events, "us-east-1", ApiKey::new("sk-bedrock-secret"))
}

/// Feeds `body` in pieces cut at `cuts` the way the HTTP provider does (buffer, then decode
/// until nothing is left), then ends it.
pub(super) fn run_with<E: FrameEvents>(
    events: E,
    body: &[u8],
    cuts: &[usize],
) -> (Vec<ChatChunk>, Result<(), Error>) {
    let mut d = decoder(events);
    let mut out = VecDeque::new();
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&body.len())) {
        d.buffer(&body[at..cut]);
        at = cut;
        loop {
            let before = out.len();
            if let Err(e) = d.decode_some(&mut out) {
                return (out.into(), Err(e));
            }
            if d.is_done() || out.len() == before {
                break;
            }
        }
        if d.is_done() {
            break;
        }
    }
    let r = d.finish_into(&mut out);
    (out.into(), r)
}

fn run(body: &[u8]) -> (Vec<ChatChunk>, Result<(), Error>) {
    run_with(ConverseEvents::new(), body, &[])
}

fn fold(chunks: &[ChatChunk]) -> ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(c);
    }
    acc.finish()
}

/// What the `.decoded.jsonl` events say the answer is, read independently of the codec:
/// text, reasoning, client tool calls (name, arguments), stop reason, usage.
struct Expected {
    text: String,
    reasoning: String,
    calls: Vec<(String, String, String)>,
    stop: String,
    input: u64,
    output: u64,
}

fn expected(decoded: &str) -> Expected {
    let mut e = Expected {
        text: String::new(),
        reasoning: String::new(),
        calls: Vec::new(),
        stop: String::new(),
        input: 0,
        output: 0,
    };
    let mut call_blocks = Vec::new();
    for line in decoded.lines().filter(|l| !l.trim().is_empty()) {
        let f: Value = serde_json::from_str(line).expect("jsonl");
        let p: Value = serde_json::from_str(f["payload"].as_str().expect("payload")).expect("json");
        match f["headers"][":event-type"].as_str().unwrap_or("") {
            "contentBlockStart" => {
                let tu = &p["start"]["toolUse"];
                if tu.is_object() && tu["type"] != "server_tool_use" {
                    call_blocks.push(p["contentBlockIndex"].as_u64().unwrap_or(0));
                    e.calls.push((
                        tu["toolUseId"].as_str().unwrap_or("").to_owned(),
                        tu["name"].as_str().unwrap_or("").to_owned(),
                        String::new(),
                    ));
                }
            }
            "contentBlockDelta" => {
                let d = &p["delta"];
                let idx = p["contentBlockIndex"].as_u64().unwrap_or(0);
                if let Some(t) = d["text"].as_str() {
                    e.text.push_str(t);
                }
                if let Some(t) = d["reasoningContent"]["text"].as_str() {
                    e.reasoning.push_str(t);
                }
                if let (Some(i), Some(pos)) = (
                    d["toolUse"]["input"].as_str(),
                    call_blocks.iter().position(|b| *b == idx),
                ) {
                    e.calls[pos].2.push_str(i);
                }
            }
            "messageStop" => e.stop = p["stopReason"].as_str().unwrap_or("").to_owned(),
            "metadata" => {
                let u = &p["usage"];
                e.input = u["inputTokens"].as_u64().unwrap_or(0)
                    + u["cacheReadInputTokens"].as_u64().unwrap_or(0)
                    + u["cacheWriteInputTokens"].as_u64().unwrap_or(0);
                e.output = u["outputTokens"].as_u64().unwrap_or(0);
            }
            _ => {}
        }
    }
    e
}

/// The stream contract: one id on every chunk, exactly one finish reason, on the last chunk.
fn check_contract(name: &str, chunks: &[ChatChunk]) {
    let id = &chunks[0].id;
    assert!(id.starts_with("chatcmpl-"), "{name}: {id}");
    assert!(
        chunks.iter().all(|c| &c.id == id),
        "{name}: one id per answer"
    );
    let finishes: Vec<usize> = chunks
        .iter()
        .enumerate()
        .filter(|(_, c)| c.choices.iter().any(|ch| ch.finish_reason.is_some()))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(finishes, vec![chunks.len() - 1], "{name}: one finish, last");
}

#[test]
fn recorded_streams_fold_to_what_their_events_say() {
    for (name, body, decoded) in RECORDED {
        let want = expected(decoded);
        let (chunks, r) = run(body);
        r.unwrap_or_else(|e| panic!("{name}: {e}"));
        check_contract(name, &chunks);
        let resp = fold(&chunks);
        assert_eq!(resp.text(), want.text, "{name}: text");
        assert_eq!(resp.reasoning().unwrap_or(""), want.reasoning, "{name}");
        let calls: Vec<(String, String, String)> = resp
            .tool_calls()
            .iter()
            .map(|c| {
                (
                    c.id.clone(),
                    c.function.name.clone(),
                    c.function.arguments.clone(),
                )
            })
            .collect();
        assert_eq!(calls, want.calls, "{name}: tool calls");
        let finish = resp.finish_reason().cloned();
        let stop = match want.stop.as_str() {
            "tool_use" => FinishReason::ToolCalls,
            "max_tokens" => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        assert_eq!(finish, Some(stop), "{name}");
        let usage = resp.usage.expect("usage");
        assert_eq!(
            (usage.input_tokens, usage.output_tokens),
            (want.input, want.output),
            "{name}"
        );
    }
}

#[test]
fn recorded_streams_split_anywhere_give_the_same_answer() {
    for (name, body, _) in RECORDED {
        let (whole, r) = run(body);
        r.expect(name);
        let whole = fold(&whole);
        // Every offset for one cut, and a few hundred random multi-cut splits.
        let mut rng = fastrand::Rng::with_seed(0xB0_26);
        let mut splits: Vec<Vec<usize>> = (1..body.len()).map(|c| vec![c]).collect();
        for _ in 0..200 {
            let mut cuts: Vec<usize> = (0..rng.usize(2..12))
                .map(|_| rng.usize(1..body.len()))
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            splits.push(cuts);
        }
        for cuts in splits {
            let (chunks, r) = run_with(ConverseEvents::new(), body, &cuts);
            r.unwrap_or_else(|e| panic!("{name} at {cuts:?}: {e}"));
            check_contract(name, &chunks);
            let got = fold(&chunks);
            assert_eq!(got.text(), whole.text(), "{name} at {cuts:?}");
            assert_eq!(got.reasoning(), whole.reasoning());
            assert_eq!(got.tool_calls(), whole.tool_calls());
            assert_eq!(got.usage, whole.usage);
        }
    }
}

#[test]
fn reasoning_signatures_and_redacted_blocks_fold_into_thinking_blocks() {
    let (chunks, r) = run(RECORDED[2].1);
    r.expect("reasoning");
    let resp = fold(&chunks);
    let blocks = &resp.choices[0].message.thinking_blocks;
    match blocks.as_slice() {
        [
            ThinkingBlock::Thinking {
                thinking,
                signature: Some(sig),
                source,
            },
        ] => {
            assert!(thinking.starts_with("The user has greeted me"));
            assert!(sig.starts_with("Eu0CCkgIBxAB"));
            assert_eq!(source.as_deref(), Some("bedrock"));
        }
        other => panic!("{other:?}"),
    }
    let (chunks, r) = run(RECORDED[3].1);
    r.expect("redacted");
    let resp = fold(&chunks);
    let redacted: Vec<&str> = resp.choices[0]
        .message
        .thinking_blocks
        .iter()
        .filter_map(|b| match b {
            ThinkingBlock::Redacted { data } => Some(data.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(redacted.len(), 2);
    // The blob's bytes (Claude's own redacted data), not its base64 in JSON.
    assert!(redacted[0].starts_with("EtkEC"), "{}", redacted[0]);
}

#[test]
fn server_tools_are_skipped_and_client_calls_counted_from_zero() {
    let (chunks, r) = run(RECORDED[4].1);
    r.expect("server tool");
    let calls: Vec<_> = chunks
        .iter()
        .flat_map(|c| c.choices.iter().flat_map(|ch| ch.delta.tool_calls.iter()))
        .collect();
    assert!(calls.iter().all(|c| c.index == Some(0)), "{calls:?}");
    let resp = fold(&chunks);
    assert_eq!(resp.tool_calls().len(), 1);
    assert_eq!(resp.tool_calls()[0].function.name, "final_result");
    assert_eq!(
        resp.tool_calls()[0].function.arguments,
        r#"{"result":7006652.0}"#
    );
}

// ---------------------------------------------------------------------------------------------
// Built streams: exceptions, cuts, orders
// ---------------------------------------------------------------------------------------------

fn event(ty: &str, payload: Value) -> Vec<u8> {
    encode_frame(
        &[
            (":event-type", ty),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(ty: &str, payload: Value) -> Vec<u8> {
    encode_frame(
        &[
            (":exception-type", ty),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn start_and_text() -> Vec<u8> {
    let mut b = event("messageStart", json!({"role": "assistant", "p": "abc"}));
    b.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"text": "Hello"}}),
    ));
    b
}

fn stop_and_metadata() -> Vec<u8> {
    let mut b = event(
        "contentBlockStop",
        json!({"contentBlockIndex": 0, "p": "ab"}),
    );
    b.extend(event("messageStop", json!({"stopReason": "end_turn"})));
    b.extend(event(
        "metadata",
        json!({"usage": {"inputTokens": 3, "outputTokens": 1, "cacheReadInputTokens": 5, "cacheWriteInputTokens": 7}, "metrics": {"latencyMs": 1}}),
    ));
    b
}

#[test]
fn in_stream_exceptions_are_typed_errors_never_a_silent_end() {
    let cases = [
        ("throttlingException", ErrorKind::RateLimited, true),
        ("modelStreamErrorException", ErrorKind::Server, true),
        ("internalServerException", ErrorKind::Server, true),
        ("serviceUnavailableException", ErrorKind::Overloaded, true),
        ("validationException", ErrorKind::InvalidRequest, false),
    ];
    for (ty, kind, retryable) in cases {
        let mut body = start_and_text();
        body.extend(exception(
            ty,
            json!({"message": "Too many tokens, please wait before trying again.", "originalStatusCode": 500}),
        ));
        // Frames after the exception are never read.
        body.extend(stop_and_metadata());
        let (chunks, r) = run(&body);
        let e = r.expect_err(ty);
        assert_eq!(e.kind(), kind, "{ty}: {e}");
        assert_eq!(e.is_retryable(), retryable, "{ty}");
        assert_eq!(e.code(), Some(ty));
        assert!(e.message().contains("Too many tokens"), "{e}");
        assert!(chunks.iter().all(|c| c.finish_reason().is_none()), "{ty}");
    }
}

#[test]
fn an_error_frame_is_a_typed_error_too() {
    let mut body = start_and_text();
    body.extend(encode_frame(
        &[
            (":message-type", "error"),
            (":error-code", "ThrottlingException"),
            (":error-message", "slow down"),
        ],
        b"",
    ));
    let (_, r) = run(&body);
    let e = r.expect_err("error frame");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.message(), "slow down");
}

#[test]
fn cut_and_unfinished_streams_are_interrupted() {
    let mut whole = start_and_text();
    whole.extend(stop_and_metadata());
    let stop_at = start_and_text().len();
    // Cut inside the first frame, inside a later frame, and between frames before
    // messageStop: all interrupted.
    for cut in [5, 40, stop_at - 3, stop_at] {
        let (_, r) = run(&whole[..cut]);
        let e = r.expect_err("cut");
        assert_eq!(e.kind(), ErrorKind::StreamInterrupted, "cut at {cut}: {e}");
        assert!(e.is_retryable());
    }
    // An empty body.
    let (chunks, r) = run(b"");
    assert!(chunks.is_empty());
    assert_eq!(r.expect_err("empty").kind(), ErrorKind::StreamInterrupted);
    // After messageStop the answer is whole, even without metadata (or with it cut).
    let mut no_meta = start_and_text();
    no_meta.extend(event("messageStop", json!({"stopReason": "max_tokens"})));
    let meta = event("metadata", json!({"usage": {"inputTokens": 1}}));
    no_meta.extend(&meta[..meta.len() - 2]);
    let (chunks, r) = run(&no_meta);
    r.expect("whole after messageStop");
    check_contract("no metadata", &chunks);
    assert_eq!(
        chunks.last().and_then(ChatChunk::finish_reason),
        Some(&FinishReason::Length)
    );
}

#[test]
fn a_corrupt_frame_ends_the_stream() {
    let mut body = start_and_text();
    let n = body.len();
    body[n - 6] ^= 1; // inside the last frame's payload
    body.extend(stop_and_metadata());
    let mut d = decoder(ConverseEvents::new());
    d.buffer(&body);
    let mut out = VecDeque::new();
    let mut err = None;
    for _ in 0..10 {
        if let Err(e) = d.decode_some(&mut out) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("a CRC error");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    assert!(e.message().contains("CRC"), "{e}");
    assert!(d.is_done());
}

#[test]
fn usage_counts_cache_and_the_finish_waits_for_metadata() {
    let mut body = start_and_text();
    body.extend(stop_and_metadata());
    let (chunks, r) = run(&body);
    r.expect("stream");
    check_contract("built", &chunks);
    let last = chunks.last().expect("last");
    let u = last.usage.expect("usage on the finish chunk");
    assert_eq!(u.input_tokens, 3 + 5 + 7);
    assert_eq!((u.cache_read_tokens, u.cache_write_tokens), (5, 7));
    // metadata before messageStop (seen in hand-made fixtures): still one last chunk.
    let mut body = start_and_text();
    body.extend(event(
        "metadata",
        json!({"usage": {"inputTokens": 2, "outputTokens": 2}}),
    ));
    body.extend(event(
        "messageStop",
        json!({"stopReason": "guardrail_intervened"}),
    ));
    let (chunks, r) = run(&body);
    r.expect("stream");
    check_contract("metadata first", &chunks);
    let last = chunks.last().expect("last");
    assert_eq!(last.finish_reason(), Some(&FinishReason::ContentFilter));
    assert_eq!(last.usage.map(|u| u.input_tokens), Some(2));
}

#[test]
fn malformed_output_stops_are_errors_and_bad_json_is_a_decode_error() {
    let mut body = start_and_text();
    body.extend(event(
        "messageStop",
        json!({"stopReason": "malformed_tool_use"}),
    ));
    let (_, r) = run(&body);
    let e = r.expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.code(), Some("malformed_tool_use"));

    let mut body = start_and_text();
    body.extend(encode_frame(
        &[
            (":event-type", "contentBlockDelta"),
            (":message-type", "event"),
        ],
        b"{not json",
    ));
    let mut d = decoder(ConverseEvents::new());
    d.buffer(&body);
    let mut out = VecDeque::new();
    let mut kinds = Vec::new();
    for _ in 0..5 {
        if let Err(e) = d.decode_some(&mut out) {
            kinds.push(e.kind());
        }
    }
    assert_eq!(kinds, vec![ErrorKind::Decode]);
    assert!(!d.is_done(), "a malformed event leaves the stream readable");
}

#[test]
fn tool_calls_without_arguments_get_an_empty_object() {
    let mut body = event("messageStart", json!({"role": "assistant"}));
    body.extend(event(
        "contentBlockStart",
        json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": "now", "type": "tool_use"}}}),
    ));
    body.extend(event(
        "contentBlockDelta",
        json!({"contentBlockIndex": 0, "delta": {"toolUse": {"input": ""}}}),
    ));
    body.extend(event("contentBlockStop", json!({"contentBlockIndex": 0})));
    body.extend(event("messageStop", json!({"stopReason": "tool_use"})));
    body.extend(event("metadata", json!({"usage": {}})));
    let (chunks, r) = run(&body);
    r.expect("stream");
    let resp = fold(&chunks);
    assert_eq!(resp.tool_calls()[0].function.arguments, "{}");
    assert_eq!(resp.tool_calls()[0].id, "t1");
}

#[test]
fn the_key_never_shows_in_errors() {
    let mut body = start_and_text();
    body.extend(exception(
        "validationException",
        json!({"message": "bad key sk-bedrock-secret"}),
    ));
    let (_, r) = run(&body);
    let e = r.expect_err("exception");
    assert!(!format!("{e} {e:?}").contains("sk-bedrock-secret"));
}
