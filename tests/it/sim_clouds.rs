//! The simulator speaking Bedrock and Vertex AI: event-stream frames, paths, token endpoint, metadata server.
//!
//! Every request goes over real HTTP with a plain reqwest client (not the codecs); the AWS
//! event-stream frames are decoded here with an independent check of both CRCs. Nothing
//! waits on sleeps: timeouts only bound a broken simulator, or watch that nothing arrives.

use std::time::Duration;

use futures::StreamExt;
use polyrelay::simulator::{Dialect, Reply, SimError, Simulator};
use serde_json::{Value, json};
use tokio::time::timeout;

/// Upper bound for anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

const HAIKU: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const HAIKU_PATH: &str = "us.anthropic.claude-3-5-haiku-20241022-v1%3A0";
const VERTEX: &str = "/v1/projects/p/locations/us-central1/publishers";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

/// A Converse request body (no model: it is in the path).
fn converse() -> Value {
    json!({
        "system": [{"text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"text": "Say hello"}]}]
    })
}

/// An Anthropic body as Bedrock's InvokeModel and Vertex's rawPredict take it.
fn anthropic_body(version: &str, stream: bool) -> Value {
    json!({
        "anthropic_version": version,
        "max_tokens": 100,
        "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}]
    })
}

async fn post(sim: &Simulator, path: &str, body: &Value) -> reqwest::Response {
    timeout(
        PROMPT,
        client()
            .post(format!("{}{path}", sim.base_url()))
            .json(body)
            .send(),
    )
    .await
    .expect("response in time")
    .expect("response")
}

async fn bytes(response: reqwest::Response) -> Vec<u8> {
    timeout(PROMPT, response.bytes())
        .await
        .expect("body in time")
        .expect("body")
        .to_vec()
}

async fn json_of(response: reqwest::Response) -> Value {
    serde_json::from_slice(&bytes(response).await).expect("JSON body")
}

/// One decoded AWS event-stream frame.
#[derive(Debug)]
struct Frame {
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Frame {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).expect("JSON payload")
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Decodes an event stream, checking both CRCs of every frame with crc32fast: `Err` names the
/// first frame that fails and why. A partial last frame is an error too.
fn decode_frames(mut body: &[u8]) -> Result<Vec<Frame>, String> {
    let mut frames = Vec::new();
    while !body.is_empty() {
        let i = frames.len();
        if body.len() < 16 {
            return Err(format!("frame {i}: truncated prelude"));
        }
        let total = be32(&body[0..4]) as usize;
        let headers_len = be32(&body[4..8]) as usize;
        if be32(&body[8..12]) != crc32fast::hash(&body[..8]) {
            return Err(format!("frame {i}: prelude CRC"));
        }
        if body.len() < total {
            return Err(format!("frame {i}: truncated ({} of {total})", body.len()));
        }
        if be32(&body[total - 4..total]) != crc32fast::hash(&body[..total - 4]) {
            return Err(format!("frame {i}: message CRC"));
        }
        let mut h = &body[12..12 + headers_len];
        let mut headers = Vec::new();
        while !h.is_empty() {
            let n = h[0] as usize;
            let name = String::from_utf8(h[1..1 + n].to_vec()).expect("name");
            assert_eq!(h[1 + n], 7, "string header");
            let len = u16::from_be_bytes([h[2 + n], h[3 + n]]) as usize;
            let value = String::from_utf8(h[4 + n..4 + n + len].to_vec()).expect("value");
            headers.push((name, value));
            h = &h[4 + n + len..];
        }
        frames.push(Frame {
            headers,
            payload: body[12 + headers_len..total - 4].to_vec(),
        });
        body = &body[total..];
    }
    Ok(frames)
}

/// Standard base64 decoding, written here to check the simulator's encoder independently.
fn unbase64(s: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let mut out = Vec::new();
    for quad in s.as_bytes().chunks(4) {
        let digits: Vec<u8> = quad
            .iter()
            .filter(|c| **c != b'=')
            .map(|c| value(*c))
            .collect();
        let n = digits
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, d)| n | (u32::from(*d) << (18 - 6 * i)));
        for i in 0..digits.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

/// Reads a streamed body until it fails, returning what arrived; panics if it ends cleanly.
async fn read_until_error(response: reqwest::Response) -> Vec<u8> {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    loop {
        match timeout(PROMPT, stream.next()).await.expect("in time") {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(_)) => return body,
            None => panic!("the stream ended cleanly"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Bedrock
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bedrock_converse_answers_with_the_model_from_the_decoded_path() {
    let sim = Simulator::start().await.expect("start");
    sim.script(HAIKU, [Reply::text("Hi there")]);
    let response = post(&sim, &format!("/model/{HAIKU_PATH}/converse"), &converse()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.headers().contains_key("x-amzn-requestid"));
    let body = json_of(response).await;
    assert_eq!(
        body["output"],
        json!({"message": {"role": "assistant", "content": [{"text": "Hi there"}]}})
    );
    assert_eq!(body["stopReason"], "end_turn");
    // "Be brief." + "Say hello" = 18 chars → 5 tokens; "Hi there" → 2.
    assert_eq!(
        body["usage"],
        json!({"inputTokens": 5, "outputTokens": 2, "totalTokens": 7})
    );
    assert!(body["metrics"]["latencyMs"].is_u64());
    let seen = &sim.requests_for(HAIKU)[0];
    assert_eq!(seen.dialect(), Dialect::BedrockConverse);
    assert!(!seen.is_stream());

    // An ARN with its `/` and `:` encoded, and one sent raw, name the same model.
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.amazon.nova-micro-v1:0";
    sim.script(arn, [Reply::text("from the profile")]);
    let encoded = arn.replace(':', "%3A").replace('/', "%2F");
    for path in [encoded.as_str(), arn] {
        let body = json_of(post(&sim, &format!("/model/{path}/converse"), &converse()).await).await;
        assert_eq!(
            body["output"]["message"]["content"][0]["text"],
            "from the profile"
        );
    }
    assert_eq!(sim.requests_for(arn).len(), 2);
}

#[tokio::test]
async fn bedrock_converse_stream_sends_crc_checked_frames_in_bedrocks_order() {
    let sim = Simulator::start().await.expect("start");
    sim.script(HAIKU, [Reply::text("Hello big world")]);
    let response = post(
        &sim,
        &format!("/model/{HAIKU_PATH}/converse-stream"),
        &converse(),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    let frames = decode_frames(&bytes(response).await).expect("valid frames");
    let types: Vec<&str> = frames
        .iter()
        .map(|f| f.header(":event-type").expect("event type"))
        .collect();
    assert_eq!(
        types,
        [
            "messageStart",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockDelta",
            "contentBlockStop",
            "messageStop",
            "metadata"
        ]
    );
    for frame in &frames {
        let names: Vec<&str> = frame.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [":event-type", ":content-type", ":message-type"]);
        assert_eq!(frame.header(":content-type"), Some("application/json"));
        assert_eq!(frame.header(":message-type"), Some("event"));
        let json = frame.json();
        assert!(json["p"].as_str().is_some_and(|p| !p.is_empty()), "{json}");
        // Keys sorted, as Bedrock sends them.
        let keys: Vec<&String> = json.as_object().expect("object").keys().collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }
    assert_eq!(frames[0].json()["role"], "assistant");
    let text: String = frames[1..4]
        .iter()
        .map(|f| {
            let json = f.json();
            assert_eq!(json["contentBlockIndex"], 0);
            json["delta"]["text"].as_str().expect("text").to_owned()
        })
        .collect();
    assert_eq!(text, "Hello big world");
    assert_eq!(frames[5].json()["stopReason"], "end_turn");
    assert_eq!(
        frames[6].json()["usage"],
        json!({"inputTokens": 5, "outputTokens": 4, "totalTokens": 9})
    );
    assert!(sim.requests()[0].is_stream());
}

#[tokio::test]
async fn bedrock_tool_calls_in_converse_shape() {
    let sim = Simulator::start().await.expect("start");
    sim.script(
        HAIKU,
        [Reply::tool_call("get_weather", r#"{"city":"Paris"}"#)],
    );
    let body =
        json_of(post(&sim, &format!("/model/{HAIKU_PATH}/converse"), &converse()).await).await;
    assert_eq!(body["stopReason"], "tool_use");
    assert_eq!(
        body["output"]["message"]["content"][0]["toolUse"],
        json!({"input": {"city": "Paris"}, "name": "get_weather", "toolUseId": "tooluse_sim_0_0", "type": "tool_use"})
    );

    let response = post(
        &sim,
        &format!("/model/{HAIKU_PATH}/converse-stream"),
        &converse(),
    )
    .await;
    let frames = decode_frames(&bytes(response).await).expect("valid frames");
    assert_eq!(frames[1].header(":event-type"), Some("contentBlockStart"));
    assert_eq!(
        frames[1].json()["start"]["toolUse"],
        json!({"name": "get_weather", "toolUseId": "tooluse_sim_1_0", "type": "tool_use"})
    );
    let deltas: Vec<String> = frames
        .iter()
        .filter(|f| f.header(":event-type") == Some("contentBlockDelta"))
        .map(|f| {
            f.json()["delta"]["toolUse"]["input"]
                .as_str()
                .expect("input")
                .to_owned()
        })
        .collect();
    assert_eq!(deltas[0], "", "Claude's first fragment is empty");
    assert_eq!(deltas.concat(), r#"{"city":"Paris"}"#);
    let stop = frames
        .iter()
        .find(|f| f.header(":event-type") == Some("messageStop"))
        .expect("messageStop");
    assert_eq!(stop.json()["stopReason"], "tool_use");
}

#[tokio::test]
async fn bedrock_invoke_answers_anthropic_json_and_base64_chunks() {
    let sim = Simulator::start().await.expect("start");
    sim.script(HAIKU, [Reply::text("Hi there")]);
    let body = anthropic_body("bedrock-2023-05-31", false);
    let response = post(&sim, &format!("/model/{HAIKU_PATH}/invoke"), &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-amzn-bedrock-output-token-count"], "2");
    assert!(!response.headers().contains_key("request-id"));
    let message = json_of(response).await;
    assert_eq!(message["type"], "message");
    assert_eq!(message["model"], HAIKU);
    assert_eq!(message["content"][0]["text"], "Hi there");
    assert_eq!(message["stop_reason"], "end_turn");

    let response = post(
        &sim,
        &format!("/model/{HAIKU_PATH}/invoke-with-response-stream"),
        &body,
    )
    .await;
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let frames = decode_frames(&bytes(response).await).expect("valid frames");
    let events: Vec<Value> = frames
        .iter()
        .map(|f| {
            assert_eq!(f.header(":event-type"), Some("chunk"));
            let payload = f.json();
            assert!(payload["p"].is_string());
            let decoded = unbase64(payload["bytes"].as_str().expect("bytes"));
            // Compact JSON: none of Anthropic's padding before the closing brace.
            assert!(!String::from_utf8_lossy(&decoded).contains(" }"));
            serde_json::from_slice(&decoded).expect("an Anthropic event")
        })
        .collect();
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        types,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ],
        "no ping on Bedrock"
    );
    assert_eq!(
        events[6]["amazon-bedrock-invocationMetrics"]["outputTokenCount"],
        2
    );
    assert_eq!(sim.requests()[1].dialect(), Dialect::BedrockInvoke);
    assert!(sim.requests()[1].is_stream());
}

#[tokio::test]
async fn bedrock_errors_carry_the_type_header() {
    let sim = Simulator::start().await.expect("start");
    let cases = [
        (
            SimError::RateLimited {
                retry_after_secs: 3,
            },
            429,
            "ThrottlingException",
        ),
        (SimError::Overloaded, 503, "ServiceUnavailableException"),
        (SimError::ModelError, 424, "ModelErrorException"),
        (SimError::Server, 500, "InternalServerException"),
        (SimError::InvalidRequest, 400, "ValidationException"),
        (SimError::ContextLength, 400, "ValidationException"),
        (SimError::Auth, 403, "AccessDeniedException"),
    ];
    for (kind, status, error_type) in cases {
        sim.script(HAIKU, [Reply::error(kind)]);
        for op in ["converse", "converse-stream", "invoke"] {
            let response = post(&sim, &format!("/model/{HAIKU_PATH}/{op}"), &converse()).await;
            assert_eq!(response.status(), status, "{kind:?} {op}");
            assert_eq!(
                response.headers()["x-amzn-errortype"],
                format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/")
            );
            assert_eq!(response.headers()["content-type"], "application/json");
            let body = json_of(response).await;
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
            assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
        }
    }
    sim.script(
        HAIKU,
        [Reply::bedrock_error(
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
        )],
    );
    let response = post(&sim, &format!("/model/{HAIKU_PATH}/converse"), &converse()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        json_of(response).await,
        json!({"message": "The provided model identifier is invalid."})
    );

    // Content policy: a guardrail's answer, not an error.
    sim.script(HAIKU, [Reply::error(SimError::ContentPolicy)]);
    let body =
        json_of(post(&sim, &format!("/model/{HAIKU_PATH}/converse"), &converse()).await).await;
    assert_eq!(body["stopReason"], "guardrail_intervened");
}

#[tokio::test]
async fn bedrock_stream_error_after_sends_an_exception_frame() {
    let sim = Simulator::start().await.expect("start");
    let cases = [
        (
            SimError::RateLimited {
                retry_after_secs: 1,
            },
            "throttlingException",
        ),
        (SimError::ModelError, "modelStreamErrorException"),
        (SimError::Server, "internalServerException"),
        (SimError::Overloaded, "serviceUnavailableException"),
    ];
    for (kind, exception) in cases {
        sim.script(HAIKU, [Reply::stream_error_after(2, kind)]);
        let response = post(
            &sim,
            &format!("/model/{HAIKU_PATH}/converse-stream"),
            &converse(),
        )
        .await;
        assert_eq!(response.status(), 200);
        let frames = decode_frames(&bytes(response).await).expect("valid frames");
        assert_eq!(frames.len(), 4, "messageStart, 2 deltas, the exception");
        let last = &frames[3];
        assert_eq!(last.header(":message-type"), Some("exception"));
        assert_eq!(last.header(":exception-type"), Some(exception));
        assert_eq!(last.header(":event-type"), None);
        assert!(last.json()["message"].is_string());

        // InvokeModelWithResponseStream: the same exception after Anthropic's chunks.
        let response = post(
            &sim,
            &format!("/model/{HAIKU_PATH}/invoke-with-response-stream"),
            &anthropic_body("bedrock-2023-05-31", false),
        )
        .await;
        let frames = decode_frames(&bytes(response).await).expect("valid frames");
        let last = frames.last().expect("frames");
        assert_eq!(last.header(":exception-type"), Some(exception));
        assert!(
            frames[..frames.len() - 1]
                .iter()
                .all(|f| f.header(":event-type") == Some("chunk"))
        );
    }
    // Content policy ends the stream as a guardrail does, cleanly.
    sim.script(
        HAIKU,
        [Reply::stream_error_after(1, SimError::ContentPolicy)],
    );
    let response = post(
        &sim,
        &format!("/model/{HAIKU_PATH}/converse-stream"),
        &converse(),
    )
    .await;
    let frames = decode_frames(&bytes(response).await).expect("valid frames");
    let stop = &frames[frames.len() - 2];
    assert_eq!(stop.header(":event-type"), Some("messageStop"));
    assert_eq!(stop.json()["stopReason"], "guardrail_intervened");
    assert_eq!(
        frames[frames.len() - 1].header(":event-type"),
        Some("metadata")
    );

    // A request that does not stream gets the HTTP error.
    sim.script(HAIKU, [Reply::stream_error_after(2, SimError::ModelError)]);
    let response = post(&sim, &format!("/model/{HAIKU_PATH}/converse"), &converse()).await;
    assert_eq!(response.status(), 424);
}

#[tokio::test]
async fn bedrock_stream_faults_cut_inside_a_frame_and_break_crcs() {
    let sim = Simulator::start().await.expect("start");
    let url = format!("/model/{HAIKU_PATH}/converse-stream");

    sim.script(HAIKU, [Reply::text("one two three").cut_inside_frame(2)]);
    let body = read_until_error(post(&sim, &url, &converse()).await).await;
    let error = decode_frames(&body).expect_err("a partial frame");
    assert!(error.starts_with("frame 2: truncated"), "{error}");
    timeout(PROMPT, sim.requests()[0].closed())
        .await
        .expect("the simulator closed the connection");

    sim.script(HAIKU, [Reply::text("one two three").bad_message_crc(2)]);
    let body = bytes(post(&sim, &url, &converse()).await).await;
    assert_eq!(
        decode_frames(&body).expect_err("bad CRC"),
        "frame 2: message CRC"
    );

    sim.script(HAIKU, [Reply::text("one two three").bad_prelude_crc(0)]);
    let body = bytes(post(&sim, &url, &converse()).await).await;
    assert_eq!(
        decode_frames(&body).expect_err("bad CRC"),
        "frame 0: prelude CRC"
    );

    // cut_after counts whole frames: two frames arrive intact, then the connection resets.
    sim.script(HAIKU, [Reply::text("one two three").cut_after(2)]);
    let body = read_until_error(post(&sim, &url, &converse()).await).await;
    let frames = decode_frames(&body).expect("whole frames");
    assert_eq!(frames.len(), 2);

    // Re-chunked across frame boundaries, the bytes are the same.
    sim.script(HAIKU, [Reply::text("one two three").split_every(7)]);
    let body = bytes(post(&sim, &url, &converse()).await).await;
    assert_eq!(decode_frames(&body).expect("valid frames").len(), 7);
}

#[tokio::test]
async fn generic_faults_work_on_the_clouds_paths() {
    let sim = Simulator::start().await.expect("start");
    let paths = [
        format!("/model/{HAIKU_PATH}/converse-stream"),
        format!("{VERTEX}/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
        format!("{VERTEX}/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"),
    ];
    for reply in [Reply::reset(), Reply::close()] {
        sim.set_default(reply);
        for path in &paths {
            let sent = client()
                .post(format!("{}{path}", sim.base_url()))
                .json(&converse())
                .send();
            let result = timeout(PROMPT, sent).await.expect("in time");
            assert!(result.is_err(), "{path}: {result:?}");
        }
    }
    sim.set_default(Reply::hang());
    for path in &paths {
        let sent = client()
            .post(format!("{}{path}", sim.base_url()))
            .json(&converse())
            .send();
        assert!(timeout(QUIET, sent).await.is_err(), "{path} hangs");
    }
    // A delay holds the status line back on every path.
    sim.set_default(Reply::text("late").delay(Duration::from_millis(100)));
    for path in &paths {
        let started = std::time::Instant::now();
        let response = post(&sim, path, &converse()).await;
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() >= Duration::from_millis(100), "{path}");
    }
    sim.set_default(Reply::raw(
        200,
        "application/vnd.amazon.eventstream",
        "not frames",
    ));
    let body = bytes(post(&sim, &paths[0], &converse()).await).await;
    assert!(decode_frames(&body).is_err());
    // A recorded stream replays frame by frame.
    let recorded = std::fs::read("tests/fixtures/bedrock/converse_stream_text_nova.eventstream")
        .expect("fixture");
    sim.set_default(Reply::event_stream_bytes(recorded.clone()).cut_after(3));
    let body = read_until_error(post(&sim, &paths[0], &converse()).await).await;
    assert_eq!(decode_frames(&body).expect("frames").len(), 3);
    assert!(recorded.starts_with(&body));
}

#[tokio::test]
async fn request_limits_refuse_in_the_clouds_words() {
    let sim = Simulator::start().await.expect("start");
    sim.limit_requests(HAIKU, 1, Duration::from_secs(60));
    let url = format!("/model/{HAIKU_PATH}/converse");
    assert_eq!(post(&sim, &url, &converse()).await.status(), 200);
    let refused = post(&sim, &url, &converse()).await;
    assert_eq!(refused.status(), 429);
    let headers = refused.headers().clone();
    assert!(
        headers["x-amzn-errortype"]
            .to_str()
            .is_ok_and(|t| t.starts_with("ThrottlingException:"))
    );
    assert_eq!(headers["x-ratelimit-remaining-requests"], "0");
    assert!(headers.contains_key("retry-after"));
    assert!(json_of(refused).await["message"].is_string());
    assert_eq!(sim.rate_limited(HAIKU), 1);

    sim.limit_requests("gemini-2.0-flash", 0, Duration::from_secs(60));
    let refused = post(
        &sim,
        &format!("{VERTEX}/google/models/gemini-2.0-flash:generateContent"),
        &converse(),
    )
    .await;
    assert_eq!(refused.status(), 429);
    let error = json_of(refused).await;
    assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(error["error"]["details"][0]["retryDelay"], "60s");
}

// ---------------------------------------------------------------------------------------------
// Vertex AI
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn vertex_paths_answer_gemini_anthropic_and_openai() {
    let sim = Simulator::start().await.expect("start");
    let contents = json!({"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]});
    for version in ["v1", "v1beta1"] {
        let path = format!(
            "/{version}/projects/p/locations/global/publishers/google/models/gemini-2.0-flash:generateContent"
        );
        let body = json_of(post(&sim, &path, &contents).await).await;
        assert_eq!(
            body["candidates"][0]["content"]["parts"][0]["text"],
            "Hello from the polyrelay simulator."
        );
        assert_eq!(body["modelVersion"], "gemini-2.0-flash");
    }
    let response = post(
        &sim,
        &format!("{VERTEX}/google/models/gemini-2.0-flash:streamGenerateContent?alt=sse"),
        &contents,
    )
    .await;
    let text = String::from_utf8(bytes(response).await).expect("utf8");
    assert!(text.starts_with("data: {\"candidates\": "), "{text}");

    sim.script(
        "claude-sonnet-4-5@20250929",
        [Reply::text("Hi from Claude")],
    );
    let claude = format!("{VERTEX}/anthropic/models/claude-sonnet-4-5@20250929");
    let body = anthropic_body("vertex-2023-10-16", false);
    let message = json_of(post(&sim, &format!("{claude}:rawPredict"), &body).await).await;
    assert_eq!(message["content"][0]["text"], "Hi from Claude");
    assert_eq!(message["model"], "claude-sonnet-4-5@20250929");
    let response = post(&sim, &format!("{claude}:streamRawPredict"), &body).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let sse = String::from_utf8(bytes(response).await).expect("utf8");
    assert!(sse.contains("event: message_stop"), "{sse}");

    let chat = json!({"model": "google/gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]});
    let completion = json_of(
        post(
            &sim,
            "/v1/projects/p/locations/us-central1/endpoints/openapi/chat/completions",
            &chat,
        )
        .await,
    )
    .await;
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "google/gemini-2.0-flash");

    let seen: Vec<(Dialect, Option<String>, bool)> = sim
        .requests()
        .iter()
        .map(|r| (r.dialect(), r.model.clone(), r.is_stream()))
        .collect();
    let gemini = Some("gemini-2.0-flash".to_owned());
    let claude = Some("claude-sonnet-4-5@20250929".to_owned());
    assert_eq!(
        seen,
        [
            (Dialect::VertexGemini, gemini.clone(), false),
            (Dialect::VertexGemini, gemini.clone(), false),
            (Dialect::VertexGemini, gemini, true),
            (Dialect::VertexAnthropic, claude.clone(), false),
            (Dialect::VertexAnthropic, claude, true),
            (
                Dialect::VertexOpenAi,
                Some("google/gemini-2.0-flash".to_owned()),
                false
            ),
        ]
    );
}

#[tokio::test]
async fn vertex_errors_are_google_status_wrapped_on_streaming_paths() {
    let sim = Simulator::start().await.expect("start");
    let claude = format!("{VERTEX}/anthropic/models/claude-sonnet-4-5@20250929");
    let gemini = format!("{VERTEX}/google/models/gemini-2.0-flash");
    sim.set_default(Reply::error(SimError::RateLimited {
        retry_after_secs: 7,
    }));
    let body = anthropic_body("vertex-2023-10-16", false);

    for path in [
        format!("{claude}:rawPredict"),
        format!("{gemini}:generateContent"),
    ] {
        let response = post(&sim, &path, &body).await;
        assert_eq!(response.status(), 429);
        let text = String::from_utf8(bytes(response).await).expect("utf8");
        assert!(
            text.starts_with("{\n  \"error\": {"),
            "pretty-printed: {text}"
        );
        let error: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(error["error"]["code"], 429);
        assert_eq!(error["error"]["status"], "RESOURCE_EXHAUSTED");
        assert_eq!(
            error["error"]["details"][0],
            json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"})
        );
    }
    for path in [
        format!("{claude}:streamRawPredict"),
        format!("{gemini}:streamGenerateContent?alt=sse"),
    ] {
        let response = post(&sim, &path, &body).await;
        assert_eq!(response.status(), 429);
        let wrapped = json_of(response).await;
        assert_eq!(
            wrapped[0]["error"]["status"], "RESOURCE_EXHAUSTED",
            "{path}"
        );
        assert_eq!(wrapped.as_array().map(Vec::len), Some(1));
    }

    sim.set_default(Reply::error(SimError::Auth));
    let response = post(&sim, &format!("{gemini}:generateContent"), &body).await;
    assert_eq!(response.status(), 401);
    let error = json_of(response).await;
    assert_eq!(error["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(
        error["error"]["details"][0]["reason"],
        "ACCESS_TOKEN_EXPIRED"
    );

    sim.set_default(Reply::vertex_error(
        403,
        "PERMISSION_DENIED",
        "Permission denied.",
    ));
    let response = post(&sim, &format!("{claude}:streamRawPredict"), &body).await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        json_of(response).await,
        json!([{"error": {"code": 403, "message": "Permission denied.", "status": "PERMISSION_DENIED"}}])
    );
}

// ---------------------------------------------------------------------------------------------
// Google auth: the token endpoint and the metadata server
// ---------------------------------------------------------------------------------------------

async fn fetch_token(sim: &Simulator, form: &str) -> reqwest::Response {
    timeout(
        PROMPT,
        client()
            .post(sim.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send(),
    )
    .await
    .expect("in time")
    .expect("response")
}

#[tokio::test]
async fn token_endpoint_is_scriptable_and_counted() {
    let sim = Simulator::start().await.expect("start");
    let jwt_grant =
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=eyJ.a.b";

    // No script: a fresh token each time.
    let first = fetch_token(&sim, jwt_grant).await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["cache-control"], "no-store");
    let first = json_of(first).await;
    assert_eq!(first["access_token"], "ya29.sim-0");
    assert_eq!(first["expires_in"], 3599);
    assert_eq!(first["token_type"], "Bearer");

    sim.script_tokens([
        Reply::google_token(Some("ya29.short"), 5),
        Reply::error(SimError::Auth),
        Reply::error(SimError::Server).delay(Duration::from_millis(1)),
    ]);
    let short =
        json_of(fetch_token(&sim, "grant_type=refresh_token&refresh_token=1%2F2").await).await;
    assert_eq!(short["access_token"], "ya29.short");
    assert_eq!(short["expires_in"], 5);
    let denied = fetch_token(&sim, jwt_grant).await;
    assert_eq!(denied.status(), 400);
    assert_eq!(json_of(denied).await["error"], "invalid_grant");
    for _ in 0..2 {
        assert_eq!(
            fetch_token(&sim, jwt_grant).await.status(),
            500,
            "the last reply stays"
        );
    }

    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 5);
    assert_eq!(tokens[0].dialect(), Dialect::GoogleToken);
    assert_eq!(
        tokens[0].form("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(tokens[0].form("assertion").as_deref(), Some("eyJ.a.b"));
    assert_eq!(tokens[1].form("refresh_token").as_deref(), Some("1/2"));
    assert_eq!(tokens[1].form("missing"), None);
    assert!(tokens.iter().all(|t| t.model.is_none()));

    // Request limits neither refuse token requests nor count them: under a limit of one,
    // two token requests get the token script's reply and a model request is still admitted.
    sim.limit_all_requests(1, Duration::from_secs(60));
    for _ in 0..2 {
        assert_eq!(fetch_token(&sim, jwt_grant).await.status(), 500);
    }
    assert_eq!(sim.rate_limited(""), 0);
    let url = format!("/model/{HAIKU_PATH}/converse");
    assert_eq!(post(&sim, &url, &converse()).await.status(), 200);
}

#[tokio::test]
async fn metadata_server_requires_its_header() {
    let sim = Simulator::start().await.expect("start");
    let url = format!(
        "http://{}/computeMetadata/v1/instance/service-accounts/default/token",
        sim.metadata_host()
    );
    // Two replies, so that a refused request which consumed one would show.
    sim.script_tokens([
        Reply::google_token(Some("ya29.gce"), 1967),
        Reply::google_token(Some("ya29.next"), 1967),
    ]);
    let refused = timeout(PROMPT, client().get(&url).send())
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(refused.status(), 403);
    let response = timeout(
        PROMPT,
        client()
            .get(&url)
            .header("Metadata-Flavor", "Google")
            .send(),
    )
    .await
    .expect("in time")
    .expect("response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["metadata-flavor"], "Google");
    assert_eq!(
        json_of(response).await,
        json!({"access_token": "ya29.gce", "expires_in": 1967, "token_type": "Bearer"})
    );
    let seen = sim.token_requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].header("metadata-flavor"), Some("Google"));
}

/// Recorded requests keep the headers the signers add, for the auth engineers' tests.
#[tokio::test]
async fn recorded_requests_expose_signing_headers_and_body() {
    let sim = Simulator::start().await.expect("start");
    let response = timeout(
        PROMPT,
        client()
            .post(format!("{}/model/{HAIKU_PATH}/converse", sim.base_url()))
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKID/20250101/us-east-1/bedrock/aws4_request",
            )
            .header("x-amz-date", "20250101T000000Z")
            .json(&converse())
            .send(),
    )
    .await
    .expect("in time")
    .expect("response");
    assert_eq!(response.status(), 200);
    let seen = &sim.requests_for(HAIKU)[0];
    assert_eq!(seen.path, format!("/model/{HAIKU_PATH}/converse"));
    assert_eq!(seen.header("x-amz-date"), Some("20250101T000000Z"));
    assert!(
        seen.header("authorization")
            .is_some_and(|a| a.contains("/bedrock/"))
    );
    assert_eq!(seen.body, converse());
}
