//! Codec costs per vendor: encoding a request plus decoding a real recorded response (one
//! request's codec work), and stream decode throughput on real recorded streams.
//!
//! `cargo bench --bench codecs`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use polyrelay::providers::{Anthropic, Gemini, OpenAi, anthropic, gemini, openai};
use polyrelay::{ChatRequest, Tool};
use serde_json::json;

const OPENAI_BODY: &[u8] = include_bytes!("../tests/fixtures/openai/chat_tool_calls.json");
const ANTHROPIC_BODY: &[u8] =
    include_bytes!("../tests/fixtures/anthropic/messages_thinking_tool_use.json");
const GEMINI_BODY: &[u8] = include_bytes!("../tests/fixtures/gemini/generate_function_call.json");

const OPENAI_STREAM: &[u8] = include_bytes!("../tests/fixtures/openai/chat_stream_json_object.sse");
const ANTHROPIC_STREAM: &[u8] =
    include_bytes!("../tests/fixtures/anthropic/messages_stream_thinking.sse");
const GEMINI_STREAM: &[u8] = include_bytes!("../tests/fixtures/gemini/stream_thinking.sse");

fn request() -> ChatRequest {
    ChatRequest::new("route")
        .system("You are a concise support agent.")
        .user("Where is my order #123? Also, what's the weather in Paris?")
        .tool(Tool::function(
            "get_weather",
            "Current weather for a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ))
        .max_tokens(512)
}

fn per_request(c: &mut Criterion) {
    let req = request();
    let mut g = c.benchmark_group("codec_per_request");
    g.bench_function("openai", |b| {
        b.iter(|| {
            black_box(openai::encode_request(&req, "gpt-4o", false).expect("encode"));
            black_box(openai::decode_response(OPENAI_BODY).expect("decode"))
        })
    });
    g.bench_function("anthropic", |b| {
        b.iter(|| {
            black_box(anthropic::encode_request(&req, "claude-sonnet-4-5", false).expect("encode"));
            black_box(anthropic::decode_response(ANTHROPIC_BODY).expect("decode"))
        })
    });
    g.bench_function("gemini", |b| {
        b.iter(|| {
            black_box(gemini::encode_request(&req).expect("encode"));
            black_box(gemini::decode_response(GEMINI_BODY).expect("decode"))
        })
    });
    g.finish();
}

fn stream_throughput(c: &mut Criterion) {
    let mut g = c.benchmark_group("stream_decode_per_vendor");
    g.throughput(Throughput::Bytes(OPENAI_STREAM.len() as u64));
    g.bench_function("openai", |b| {
        b.iter(|| {
            let mut d = OpenAi::stream_decoder();
            let n = d.feed(OPENAI_STREAM).expect("valid").len();
            black_box(n + d.finish().expect("whole").len())
        })
    });
    g.throughput(Throughput::Bytes(ANTHROPIC_STREAM.len() as u64));
    g.bench_function("anthropic", |b| {
        b.iter(|| {
            let mut d = Anthropic::stream_decoder();
            let n = d.feed(ANTHROPIC_STREAM).expect("valid").len();
            black_box(n + d.finish().expect("whole").len())
        })
    });
    g.throughput(Throughput::Bytes(GEMINI_STREAM.len() as u64));
    g.bench_function("gemini", |b| {
        b.iter(|| {
            let mut d = Gemini::stream_decoder();
            let n = d.feed(GEMINI_STREAM).expect("valid").len();
            black_box(n + d.finish().expect("whole").len())
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = per_request, stream_throughput
}
criterion_main!(benches);
