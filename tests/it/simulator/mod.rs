//! Tests of the loopback vendor simulator (`polyrelay::simulator`).
//!
//! Everything waits on signals (responses, `wait_for_requests`, `closed()`), never on sleeps;
//! timeouts only bound how long a broken simulator could make a test hang, or assert that
//! nothing arrives.

use std::time::Duration;

use futures::StreamExt;
use polyrelay::simulator::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Requests awaited, paths, keep-alive, malformed requests and closed connections.
mod connections;
/// The Anthropic Messages and Google Gemini dialects against the vendors' recordings.
mod dialects;
/// Vendor errors per dialect and in-stream errors and cuts.
mod errors;
/// The default OpenAI reply, scripts, vendor errors, hangs and resets.
mod replies;
/// SSE frames and the stream faults: cuts, stalls, close-delimited and re-chunked bodies.
mod streams;
/// Tool calls in every dialect.
mod tool_calls;

/// Upper bound for anything that should happen promptly.
const PROMPT: Duration = Duration::from_secs(5);
/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("reqwest client")
}

fn chat(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "stream": stream,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Say hello"}]}
        ]
    })
}

fn chat_url(sim: &Simulator) -> String {
    format!("{}/v1/chat/completions", sim.base_url())
}

async fn post(client: &reqwest::Client, sim: &Simulator, body: &Value) -> reqwest::Response {
    timeout(PROMPT, client.post(chat_url(sim)).json(body).send())
        .await
        .expect("response in time")
        .expect("response")
}

/// The `data:` payloads of an SSE body.
fn data_lines(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

/// Sends raw bytes on a fresh connection and reads until the server closes it.
async fn raw_exchange(sim: &Simulator, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(sim.addr()).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    timeout(PROMPT, stream.read_to_end(&mut out))
        .await
        .expect("server closes in time")
        .expect("read");
    out
}

/// Decodes a chunked body, returning the chunk sizes and the data.
fn dechunk(mut body: &[u8]) -> (Vec<usize>, Vec<u8>) {
    let mut sizes = Vec::new();
    let mut data = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&body[..line_end]).expect("hex"), 16)
            .expect("size");
        body = &body[line_end + 2..];
        if size == 0 {
            assert_eq!(body, b"\r\n", "terminator");
            return (sizes, data);
        }
        sizes.push(size);
        data.extend_from_slice(&body[..size]);
        assert_eq!(&body[size..size + 2], b"\r\n");
        body = &body[size + 2..];
    }
}

fn split_head(response: &[u8]) -> (String, &[u8]) {
    let end = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    (
        String::from_utf8_lossy(&response[..end]).into_owned(),
        &response[end + 4..],
    )
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages and Google Gemini dialects: requests, URLs, SSE events, recordings.
// ---------------------------------------------------------------------------------------------

const DEFAULT_TEXT: &str = "Hello from the polyrelay simulator.";
const DEFAULT_PIECES: [&str; 5] = ["Hello ", "from ", "the ", "polyrelay ", "simulator."];

/// An Anthropic Messages request: "Be brief." (system) + "Say hello" = 18 chars, 5 tokens.
fn messages(model: &str, stream: bool) -> Value {
    json!({
        "model": model,
        "max_tokens": 1024,
        "stream": stream,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}]
    })
}

/// A Gemini request: "Be brief." (system instruction) + "Say hello" = 18 chars, 5 tokens.
fn contents() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]
    })
}

fn messages_url(sim: &Simulator) -> String {
    format!("{}/v1/messages", sim.base_url())
}

/// A Gemini URL; `method` is `generateContent`, `streamGenerateContent` or
/// `streamGenerateContent?alt=sse`.
fn gemini_url(sim: &Simulator, model: &str, method: &str) -> String {
    format!("{}/v1beta/models/{model}:{method}", sim.base_url())
}

async fn post_to(url: &str, body: &Value) -> reqwest::Response {
    timeout(PROMPT, client().post(url).json(body).send())
        .await
        .expect("response in time")
        .expect("response")
}

/// The whole body of a response as text, in time.
async fn body_text(response: reqwest::Response) -> String {
    timeout(PROMPT, response.text())
        .await
        .expect("body in time")
        .expect("body")
}

/// The events of an SSE body (`\n` or `\r\n` line ends): `(event name, data)`.
fn sse_events(body: &str) -> Vec<(Option<String>, String)> {
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let mut event = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(name) = line.strip_prefix("event: ") {
                    event = Some(name.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                } else {
                    panic!("unexpected SSE line {line:?} in {frame:?}");
                }
            }
            (event, data)
        })
        .collect()
}

fn parse(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
}

fn event_names(events: &[(Option<String>, String)]) -> Vec<&str> {
    events
        .iter()
        .map(|(name, _)| name.as_deref().unwrap_or("<none>"))
        .collect()
}

fn fixture(path: &str) -> Value {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    parse(&text)
}

/// Whether every field of the recorded `real` body is in `sim` with the same JSON type (a
/// `null` in `real` matches anything; each element of a `real` array must be matched by some
/// element of the `sim` array), except the paths in `skip`.
fn covers(real: &Value, sim: &Value, path: &str, skip: &[&str]) -> Result<(), String> {
    if skip.contains(&path) {
        return Ok(());
    }
    match (real, sim) {
        (Value::Null, _) => Ok(()),
        (Value::Object(r), Value::Object(s)) => r.iter().try_for_each(|(k, v)| {
            let p = format!("{path}/{k}");
            match s.get(k) {
                Some(sv) => covers(v, sv, &p, skip),
                None if skip.contains(&p.as_str()) => Ok(()),
                None => Err(format!("missing {p}")),
            }
        }),
        (Value::Array(r), Value::Array(s)) => r.iter().try_for_each(|rv| {
            let p = format!("{path}/[]");
            let mut why = String::from("empty");
            for sv in s {
                match covers(rv, sv, &p, skip) {
                    Ok(()) => return Ok(()),
                    Err(e) => why = e,
                }
            }
            Err(format!("no element of {p} matches {rv}: {why}"))
        }),
        (Value::String(_), Value::String(_))
        | (Value::Number(_), Value::Number(_))
        | (Value::Bool(_), Value::Bool(_)) => Ok(()),
        _ => Err(format!("{path}: recorded {real}, simulated {sim}")),
    }
}

fn assert_covers(fixture_path: &str, sim: &Value, skip: &[&str]) {
    if let Err(error) = covers(&fixture(fixture_path), sim, "", skip) {
        panic!("{fixture_path}: {error}\nsimulated: {sim:#}");
    }
}

fn events_of_fixture(path: &str) -> Vec<Value> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    sse_events(&text).iter().map(|(_, d)| parse(d)).collect()
}
