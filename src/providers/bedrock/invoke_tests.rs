//! Anthropic's body through InvokeModel: the request body, the recorded answers and the
//! recorded stream chunks through the Anthropic codec's logic.

use serde_json::{Value, json};

use super::*;
use crate::types::{FinishReason, StreamAccumulator};

fn codec() -> BedrockAnthropicCodec {
    BedrockAnthropic::new("us-east-1", AwsAuth::unsigned())
        .codec()
        .clone()
}

fn decode(body: &[u8]) -> Result<ChatResponse, Error> {
    let key = ApiKey::new("");
    codec().decode(body, &Redactor::new(&key))
}

#[test]
fn default_max_tokens_is_settable_and_a_request_limit_wins() {
    let p = BedrockAnthropic::new("us-east-1", AwsAuth::unsigned()).default_max_tokens(1000);
    let body = |req: &ChatRequest| -> Value {
        serde_json::from_slice(&p.codec().encode(req, "m", false).expect("encode")).expect("json")
    };
    assert_eq!(body(&ChatRequest::new("m").user("Hi"))["max_tokens"], 1000);
    assert_eq!(
        body(&ChatRequest::new("m").user("Hi").max_tokens(64))["max_tokens"],
        64
    );
}

#[test]
fn the_body_names_the_version_not_the_model() {
    let req = ChatRequest::new("m").system("Be brief.").user("Hi");
    for stream in [false, true] {
        let b: Value = serde_json::from_slice(
            &codec()
                .encode(&req, "us.anthropic.claude-opus-4-8", stream)
                .expect("encode"),
        )
        .expect("json");
        assert_eq!(b["anthropic_version"], "bedrock-2023-05-31");
        assert!(b.get("model").is_none());
        assert!(b.get("stream").is_none());
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["system"], "Be brief.");
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
        );
    }
}

#[test]
fn recorded_answers_decode() {
    let r = decode(include_bytes!(
        "../../../tests/fixtures/bedrock/invoke_anthropic_text.json"
    ))
    .expect("text");
    assert!(r.id.starts_with("msg_bdrk_"), "{}", r.id);
    assert!(!r.text().is_empty());
    let u = r.usage.expect("usage");
    // The sidecar's x-amzn-bedrock-input-token-count / -output-token-count.
    assert_eq!((u.input_tokens, u.output_tokens), (68, 508));
    let r = decode(include_bytes!(
        "../../../tests/fixtures/bedrock/invoke_anthropic_cache_read.json"
    ))
    .expect("cache");
    let u = r.usage.expect("usage");
    // The sidecar: 3 input + 9511 read + 1956 written, 44 out.
    assert_eq!(u.cache_read_tokens, 9511);
    assert_eq!(u.cache_write_tokens, 1956);
    assert_eq!(u.input_tokens, 3 + 9511 + 1956);
    assert_eq!(u.output_tokens, 44);
    assert_eq!(decode(b"{}").expect_err("empty").kind(), ErrorKind::Decode);
}

/// The recorded InvokeModelWithResponseStream chunk payloads, put back into `chunk` frames.
fn recorded_stream() -> Vec<u8> {
    let log = include_str!(
        "../../../tests/fixtures/bedrock/invoke_stream_anthropic_text.chunk_payloads.jsonl"
    );
    let mut body = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        body.extend(eventstream::encode_frame(
            &[
                (":event-type", "chunk"),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            line.trim().as_bytes(),
        ));
    }
    body
}

#[test]
fn recorded_stream_chunks_decode_with_the_anthropic_logic() {
    let body = recorded_stream();
    let (whole, r) = super::stream_tests::run_with(InvokeEvents::new(), &body, &[]);
    r.expect("stream");
    let fold = |chunks: &[crate::types::ChatChunk]| {
        let mut acc = StreamAccumulator::new();
        chunks.iter().for_each(|c| acc.push(c));
        acc.finish()
    };
    let resp = fold(&whole);
    assert!(resp.id.starts_with("msg_bdrk_"), "{}", resp.id);
    assert!(!resp.text().is_empty());
    assert_eq!(resp.finish_reason(), Some(&FinishReason::Stop));
    assert!(resp.usage.is_some_and(|u| u.output_tokens > 0));
    for cut in (1..body.len()).step_by(3) {
        let (chunks, r) = super::stream_tests::run_with(InvokeEvents::new(), &body, &[cut]);
        r.unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(fold(&chunks).text(), resp.text());
    }
    // Cut before message_stop: interrupted, as the Anthropic codec says.
    let (_, r) = super::stream_tests::run_with(InvokeEvents::new(), &body[..body.len() / 2], &[]);
    assert_eq!(r.expect_err("cut").kind(), ErrorKind::StreamInterrupted);
}

#[test]
fn chunk_payloads_that_are_not_base64_are_decode_errors() {
    for payload in [&br#"{"bytes":"***"}"#[..], b"nope"] {
        let e = invoke::chunk_event(payload).expect_err("bad");
        assert_eq!(e.kind(), ErrorKind::Decode);
    }
    assert_eq!(
        invoke::chunk_event(br#"{"p":"abc"}"#).expect("no bytes"),
        None
    );
}
