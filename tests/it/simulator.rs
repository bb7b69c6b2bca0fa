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

#[tokio::test]
async fn default_reply_is_an_openai_completion_echoing_the_model() {
    let sim = Simulator::start().await.expect("start");
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    assert!(!sim.base_url().ends_with('/'));
    let client = client();

    let response = post(&client, &sim, &chat("gpt-test", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-request-id"], "req_sim_0");
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with(r#"{"id":"chatcmpl-sim-0","object":"chat.completion","created":"#),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["model"], "gpt-test");
    assert!(body["created"].as_u64().is_some_and(|c| c > 1_600_000_000));
    assert_eq!(body["system_fingerprint"], "fp_sim");
    let choice = &body["choices"][0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Hello from the polyrelay simulator."
    );
    assert_eq!(choice["message"]["refusal"], Value::Null);
    // "Be brief." (9 chars) + "Say hello" (9 chars) = 18 chars -> 5 tokens; 35 chars -> 9 tokens.
    assert_eq!(body["usage"]["prompt_tokens"], 5);
    assert_eq!(body["usage"]["completion_tokens"], 9);
    assert_eq!(body["usage"]["total_tokens"], 14);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        0
    );

    let recorded = sim.requests();
    assert_eq!(recorded.len(), 1);
    let request = &recorded[0];
    assert_eq!(request.seq, 0);
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.model.as_deref(), Some("gpt-test"));
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(request.body["messages"][0]["content"], "Be brief.");
    assert_eq!(
        serde_json::from_slice::<Value>(&request.raw_body).expect("raw json"),
        request.body
    );
    assert!(!request.is_stream());
}

#[tokio::test]
async fn default_reply_streams_when_the_request_streams() {
    let sim = Simulator::start().await.expect("start");
    let response = post(&client(), &sim, &chat("gpt-stream", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = response.text().await.expect("body");
    let data = data_lines(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk json"))
        .collect();
    for chunk in &chunks {
        assert_eq!(chunk["id"], "chatcmpl-sim-0");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-stream");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let pieces: Vec<&str> = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(
        pieces,
        ["Hello ", "from ", "the ", "polyrelay ", "simulator."]
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["completion_tokens"], 9);
    assert!(sim.requests()[0].is_stream());
}

#[tokio::test]
async fn scripts_are_consumed_in_order_and_the_last_reply_repeats() {
    let sim = Simulator::start().await.expect("start");
    sim.script(
        "m",
        [
            Reply::json(200, r#"{"n":1}"#),
            Reply::json(201, r#"{"n":2}"#),
        ],
    );
    let client = client();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let response = post(&client, &sim, &chat("m", false)).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        seen.push((status, body["n"].as_u64()));
    }
    assert_eq!(seen, [(200, Some(1)), (201, Some(2)), (201, Some(2))]);

    // Another model gets the default; replacing the script restarts the queue.
    let other: Value = post(&client, &sim, &chat("other", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(other["object"], "chat.completion");
    sim.script("m", [Reply::raw(202, "text/plain", "plain")]);
    let response = post(&client, &sim, &chat("m", false)).await;
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.text().await.expect("text"), "plain");

    assert_eq!(sim.requests().len(), 5);
    assert_eq!(sim.requests_for("m").len(), 4);
    assert_eq!(sim.requests_for("other").len(), 1);
    let seqs: Vec<usize> = sim.requests().iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4]);

    sim.set_default(Reply::json(200, r#"{"custom":true}"#));
    let custom: Value = post(&client, &sim, &chat("unscripted", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(custom["custom"], true);

    sim.clear();
    assert!(sim.requests().is_empty());
    // The script for "m" is gone, the default stays.
    let after: Value = post(&client, &sim, &chat("m", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after["custom"], true);
    assert_eq!(sim.requests()[0].seq, 0);
}

#[tokio::test]
async fn errors_pass_retry_after_through() {
    let sim = Simulator::start().await.expect("start");
    sim.script(
        "limited",
        [Reply::openai_error(
            429,
            "rate_limit_exceeded",
            Some("rate_limit_exceeded"),
            "Slow down.",
        )
        .header("Retry-After", "7")],
    );
    let response = post(&client(), &sim, &chat("limited", false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let text = response.text().await.expect("body");
    assert_eq!(
        text,
        r#"{"error":{"message":"Slow down.","type":"rate_limit_exceeded","param":null,"code":"rate_limit_exceeded"}}"#
    );
    let no_code = Reply::openai_error(500, "server_error", None, "boom");
    sim.script("broken", [no_code]);
    let body: Value = post(&client(), &sim, &chat("broken", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["error"]["code"], Value::Null);
}

#[tokio::test]
async fn a_hanging_reply_notices_the_client_dropping_the_request() {
    let sim = Simulator::start().await.expect("start");
    sim.script("hang", [Reply::hang()]);
    sim.script(
        "slow",
        [Reply::openai_text("late").delay(Duration::from_secs(3600))],
    );
    let client = client();

    for (model, index) in [("hang", 0), ("slow", 1)] {
        // Boxed so that `drop(send)` really drops the request future (a `tokio::pin!`ned one
        // would only drop the `Pin<&mut _>`).
        let mut send = Box::pin(client.post(chat_url(&sim)).json(&chat(model, false)).send());
        tokio::select! {
            biased;
            result = &mut send => panic!("{model} answered: {result:?}"),
            () = sim.wait_for_requests(index + 1) => {}
        }
        let request = sim.requests()[index].clone();
        assert!(!request.is_closed());
        // Nothing is answered while the client waits.
        assert!(timeout(QUIET, &mut send).await.is_err());
        assert!(!request.is_closed());
        drop(send);
        timeout(PROMPT, request.closed())
            .await
            .unwrap_or_else(|_| panic!("{model}: close not noticed"));
        assert!(request.is_closed());
    }
}

#[tokio::test]
async fn reset_fails_the_request_without_a_status() {
    let sim = Simulator::start().await.expect("start");
    sim.script("reset", [Reply::reset()]);
    sim.script("close", [Reply::close()]);
    for model in ["reset", "close"] {
        let error = timeout(
            PROMPT,
            client()
                .post(chat_url(&sim))
                .json(&chat(model, false))
                .send(),
        )
        .await
        .expect("in time")
        .expect_err("no response");
        assert!(
            error.is_connect() || error.is_request(),
            "{model}: {error:?}"
        );
        assert!(error.status().is_none());
    }
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        timeout(PROMPT, request.closed()).await.expect("closed");
    }
}

#[tokio::test]
async fn sse_frames_arrive_in_order_and_verbatim() {
    let sim = Simulator::start().await.expect("start");
    let frames = [
        "data: {\"n\":1}\n\n",
        "event: ping\ndata: 2\n\n",
        "data: [DONE]\n\n",
    ];
    sim.script(
        "s",
        [Reply::sse(frames)
            .frame_delay(Duration::from_millis(5))
            .header("x-extra", "yes")],
    );
    let response = post(&client(), &sim, &chat("s", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["transfer-encoding"], "chunked");
    assert_eq!(response.headers()["x-extra"], "yes");
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = timeout(PROMPT, stream.next()).await.expect("chunk in time") {
        body.extend_from_slice(&chunk.expect("chunk"));
    }
    assert_eq!(String::from_utf8(body).expect("utf8"), frames.concat());

    // The raw wire form: one HTTP chunk per frame, then the 0-chunk.
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{}",
        r#"{"model":"s"}"#.len(),
        r#"{"model":"s"}"#
    );
    let raw = raw_exchange(&sim, request.as_bytes()).await;
    let (head, body) = split_head(&raw);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    let (sizes, data) = dechunk(body);
    assert_eq!(sizes, frames.iter().map(|f| f.len()).collect::<Vec<_>>());
    assert_eq!(data, frames.concat().as_bytes());

    // The status can be overridden for SSE too.
    sim.script("s503", [Reply::sse(["data: x\n\n"]).status(503)]);
    let response = post(&client(), &sim, &chat("s503", true)).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.text().await.expect("body"), "data: x\n\n");
}

#[tokio::test]
async fn cut_after_ends_the_stream_with_an_error() {
    let sim = Simulator::start().await.expect("start");
    let frames = ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n", "data: 4\n\n"];
    sim.script("cut", [Reply::sse(frames).cut_after(2)]);
    let response = post(&client(), &sim, &chat("cut", true)).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    let error = loop {
        match timeout(PROMPT, stream.next()).await.expect("in time") {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(error)) => break error,
            None => panic!("the stream ended cleanly"),
        }
    };
    assert!(
        error.is_body() || error.is_request() || error.is_decode(),
        "{error:?}"
    );
    assert_eq!(String::from_utf8(body).expect("utf8"), frames[..2].concat());
    timeout(PROMPT, sim.requests()[0].closed())
        .await
        .expect("closed");
}

#[tokio::test]
async fn stall_after_sends_nothing_more_until_the_client_leaves() {
    let sim = Simulator::start().await.expect("start");
    let frames = ["data: 1\n\n", "data: 2\n\n", "data: 3\n\n"];
    sim.script("stall", [Reply::sse(frames).stall_after(1)]);
    let client = client();
    let response = post(&client, &sim, &chat("stall", true)).await;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while body.len() < frames[0].len() {
        let chunk = timeout(PROMPT, stream.next())
            .await
            .expect("in time")
            .expect("more")
            .expect("chunk");
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body, frames[0].as_bytes());
    assert!(
        timeout(QUIET, stream.next()).await.is_err(),
        "nothing more arrives"
    );
    let request = sim.requests()[0].clone();
    assert!(!request.is_closed());
    drop(stream);
    drop(client);
    timeout(PROMPT, request.closed())
        .await
        .expect("close noticed");
}

#[tokio::test]
async fn close_delimited_body_ends_cleanly() {
    let sim = Simulator::start().await.expect("start");
    let frames = ["data: a\n\n", "data: b\n\n"];
    sim.script("cd", [Reply::sse(frames).close_delimited()]);
    sim.script(
        "cdjson",
        [Reply::json(200, r#"{"ok":true}"#).close_delimited()],
    );
    let response = post(&client(), &sim, &chat("cd", true)).await;
    assert_eq!(response.headers()["connection"], "close");
    assert!(response.headers().get("transfer-encoding").is_none());
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(response.text().await.expect("clean end"), frames.concat());
    timeout(PROMPT, sim.requests()[0].closed())
        .await
        .expect("closed");

    let body: Value = post(&client(), &sim, &chat("cdjson", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn split_every_rechunks_the_body() {
    let sim = Simulator::start().await.expect("start");
    let recorded = "data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n";
    sim.script("split", [Reply::sse_bytes(recorded).split_every(5)]);
    sim.script("whole", [Reply::sse_bytes(recorded)]);
    sim.script(
        "frames",
        [Reply::sse(["data: 1\n\n", "data: 2\n\n"]).split_every(4)],
    );

    let request = |model: &str| {
        let body = format!(r#"{{"model":"{model}"}}"#);
        format!(
            "POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let raw = raw_exchange(&sim, request("split").as_bytes()).await;
    let (sizes, data) = dechunk(split_head(&raw).1);
    assert_eq!(data, recorded.as_bytes());
    let n = recorded.len();
    let expected: Vec<usize> = (0..n).step_by(5).map(|start| (n - start).min(5)).collect();
    assert!(expected.len() > 3);
    assert_eq!(sizes, expected);

    let raw = raw_exchange(&sim, request("whole").as_bytes()).await;
    let (sizes, data) = dechunk(split_head(&raw).1);
    assert_eq!((sizes, data), (vec![n], recorded.as_bytes().to_vec()));

    let raw = raw_exchange(&sim, request("frames").as_bytes()).await;
    let (sizes, data) = dechunk(split_head(&raw).1);
    assert_eq!(
        (sizes, data),
        (vec![4, 4, 4, 4, 2], b"data: 1\n\ndata: 2\n\n".to_vec())
    );

    // And a real client reassembles it.
    let text = post(&client(), &sim, &chat("split", true))
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(text, recorded);
}

#[tokio::test]
async fn wait_for_requests_resolves_on_arrival() {
    let sim = Simulator::start().await.expect("start");
    assert!(
        timeout(Duration::from_millis(50), sim.wait_for_requests(1))
            .await
            .is_err()
    );
    timeout(PROMPT, sim.wait_for_requests(0))
        .await
        .expect("zero is immediate");
    sim.set_default(Reply::hang());
    let client = client();
    let mut tasks = Vec::new();
    for i in 0..3 {
        let client = client.clone();
        let url = chat_url(&sim);
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&chat(&format!("w{i}"), false))
                .send()
                .await
        }));
    }
    timeout(PROMPT, sim.wait_for_requests(3))
        .await
        .expect("three requests");
    assert_eq!(sim.requests().len(), 3);
    for task in &tasks {
        task.abort();
    }
    for request in sim.requests() {
        timeout(PROMPT, request.closed())
            .await
            .expect("aborted requests close");
    }
}

#[tokio::test]
async fn gemini_paths_name_the_model() {
    let sim = Simulator::start().await.expect("start");
    let frames = ["data: {\"candidates\":[]}\r\n\r\n"];
    sim.script("gemini-2.0-flash", [Reply::sse(frames)]);
    let url = format!(
        "{}/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
        sim.base_url()
    );
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let response = timeout(PROMPT, client().post(url).json(&body).send())
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.text().await.expect("body"), frames.concat());
    let url = format!(
        "{}/v1beta/models/gemini-pro:generateContent",
        sim.base_url()
    );
    sim.script("gemini-pro", [Reply::json(200, "{}")]);
    let response = timeout(PROMPT, client().post(url).json(&body).send())
        .await
        .expect("in time")
        .expect("response");
    assert_eq!(response.status(), 200);

    let streamed = sim.requests_for("gemini-2.0-flash");
    assert_eq!(streamed.len(), 1);
    assert_eq!(
        streamed[0].path,
        "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse"
    );
    assert!(streamed[0].is_stream());
    let plain = sim.requests_for("gemini-pro");
    assert_eq!(plain.len(), 1);
    assert!(!plain[0].is_stream());
}

#[tokio::test]
async fn keep_alive_serves_several_requests_per_connection() {
    let sim = Simulator::start().await.expect("start");
    let client = client();
    for i in 0..2 {
        let response = post(&client, &sim, &chat("ka", false)).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["x-request-id"],
            format!("req_sim_{i}").as_str()
        );
        response.bytes().await.expect("body");
    }
    let requests = sim.requests();
    assert_eq!(requests.len(), 2);
    // Still open, idling in keep-alive; dropping the client closes it.
    assert!(!requests[0].is_closed());
    drop(client);
    timeout(PROMPT, requests[0].closed())
        .await
        .expect("closed after the client left");
    timeout(PROMPT, requests[1].closed())
        .await
        .expect("closed after the client left");

    // Two requests on one raw connection, the second pipelined behind the first.
    let one = "GET /a HTTP/1.1\r\nhost: x\r\n\r\n";
    let two = "POST /b HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let raw = raw_exchange(&sim, format!("{one}{two}").as_bytes()).await;
    let text = String::from_utf8(raw).expect("utf8");
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{text}");
    let paths: Vec<String> = sim
        .requests()
        .iter()
        .skip(2)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/a", "/b"]);
    assert_eq!(sim.requests()[2].body, Value::Null);
}

#[tokio::test]
async fn malformed_and_oversized_requests_are_rejected() {
    let sim = Simulator::start().await.expect("start");
    let raw = raw_exchange(&sim, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert!(
        raw.starts_with(b"HTTP/1.1 400 Bad Request\r\n"),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let big_header = format!("GET / HTTP/1.1\r\nx-big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let raw = raw_exchange(&sim, big_header.as_bytes()).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let big_body = "POST / HTTP/1.1\r\ncontent-length: 999999999\r\n\r\n{";
    let raw = raw_exchange(&sim, big_body.as_bytes()).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 413 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let bad_length = "POST / HTTP/1.1\r\ncontent-length: nope\r\n\r\n";
    let raw = raw_exchange(&sim, bad_length.as_bytes()).await;
    assert!(
        raw.starts_with(b"HTTP/1.1 400 "),
        "{}",
        String::from_utf8_lossy(&raw)
    );

    let chunked = "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n";
    assert!(raw_exchange(&sim, chunked.as_bytes()).await.is_empty());

    // None of these were recorded, and the simulator still serves.
    assert!(sim.requests().is_empty());
    let response = post(&client(), &sim, &chat("after", false)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn dropping_the_simulator_closes_its_connections() {
    let sim = Simulator::start().await.expect("start");
    let clone = sim.clone();
    let client = client();
    post(&client, &sim, &chat("d", false))
        .await
        .bytes()
        .await
        .expect("body");
    let request = sim.requests()[0].clone();
    assert!(!request.is_closed());
    drop(sim);
    // One handle is left: still serving.
    post(&client, &clone, &chat("d", false))
        .await
        .bytes()
        .await
        .expect("body");
    drop(clone);
    timeout(PROMPT, request.closed())
        .await
        .expect("connection ended with the simulator");
}

#[tokio::test]
async fn a_raw_client_closing_during_a_hang_is_noticed() {
    let sim = Simulator::start().await.expect("start");
    sim.set_default(Reply::hang());
    let mut stream = TcpStream::connect(sim.addr()).await.expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .expect("w");
    timeout(PROMPT, sim.wait_for_requests(1))
        .await
        .expect("request");
    assert!(!sim.requests()[0].is_closed());
    drop(stream);
    timeout(PROMPT, sim.requests()[0].closed())
        .await
        .expect("raw close noticed");
}

// ---------------------------------------------------------------------------------------------
// Anthropic Messages and Google Gemini dialects, tool calls, vendor errors and stream faults.
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

#[tokio::test]
async fn anthropic_messages_json_shape() {
    let sim = Simulator::start().await.expect("start");
    let response = post_to(&messages_url(&sim), &messages("claude-sim", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["request-id"], "req_sim_0");
    let text = body_text(response).await;
    assert!(
        text.starts_with(r#"{"model":"claude-sim","id":"msg_sim_0","type":"message","#),
        "{text}"
    );
    let body = parse(&text);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": DEFAULT_TEXT}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let usage = &body["usage"];
    assert_eq!(usage["input_tokens"], 5);
    assert_eq!(usage["output_tokens"], 9);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(
        usage["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0})
    );
    assert_covers("anthropic/messages_text.json", &body, &[]);
    assert_covers("anthropic/vercel_messages_text.json", &body, &[]);

    let request = &sim.requests()[0];
    assert_eq!(request.model.as_deref(), Some("claude-sim"));
    assert_eq!(request.dialect(), Dialect::Anthropic);
    assert!(!request.is_stream());
}

#[tokio::test]
async fn anthropic_stream_sends_the_events_in_order() {
    let sim = Simulator::start().await.expect("start");
    let response = post_to(&messages_url(&sim), &messages("claude-sim", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers()["request-id"], "req_sim_0");
    let text = body_text(response).await;
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains('\r'));
    let events = sse_events(&text);
    assert_eq!(
        event_names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The event name is the data's `type`; the ping is sent exactly as Anthropic sends it.
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    for ((name, _), value) in events.iter().zip(&data) {
        assert_eq!(value["type"].as_str(), name.as_deref());
    }
    assert!(
        text.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "{text}"
    );
    let start = &data[0]["message"];
    assert_eq!(start["id"], "msg_sim_0");
    assert_eq!(start["model"], "claude-sim");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let pieces: Vec<&str> = data[3..8]
        .iter()
        .map(|d| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().expect("text")
        })
        .collect();
    assert_eq!(pieces, DEFAULT_PIECES);
    assert_eq!(data[8]["index"], 0);
    assert_eq!(
        data[9]["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(data[9]["usage"]["output_tokens"], 9);
    assert_eq!(data[9]["usage"]["input_tokens"], 5);
    assert!(sim.requests()[0].is_stream());

    // The explicit helper streams whatever the request asks, in its own pieces.
    sim.script("pieces", [Reply::anthropic_stream_text(&["Hel", "lo"])]);
    let text = body_text(post_to(&messages_url(&sim), &messages("pieces", false)).await).await;
    let deltas: Vec<String> = sse_events(&text)
        .iter()
        .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| parse(d)["delta"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(deltas, ["Hel", "lo"]);
}

#[tokio::test]
async fn anthropic_stream_is_one_http_chunk_per_event() {
    let sim = Simulator::start().await.expect("start");
    sim.script("chunks", [Reply::anthropic_text("a b")]);
    let body = messages("chunks", true).to_string();
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = raw_exchange(&sim, request.as_bytes()).await;
    let (head, body) = split_head(&raw);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (sizes, data) = dechunk(body);
    let text = String::from_utf8(data).expect("utf8");
    let frames: Vec<usize> = text.split_inclusive("\n\n").map(str::len).collect();
    assert_eq!(sizes, frames);
    // message_start, content_block_start, ping, two deltas, content_block_stop,
    // message_delta, message_stop.
    assert_eq!(sizes.len(), 8, "{text}");
}

#[tokio::test]
async fn gemini_generate_content_json_shape() {
    let sim = Simulator::start().await.expect("start");
    let url = gemini_url(&sim, "gemini-sim", "generateContent");
    let response = post_to(&url, &contents()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let text = body_text(response).await;
    // Pretty-printed, as Google sends it.
    assert!(
        text.starts_with("{\n  \"candidates\": [\n    {\n"),
        "{text}"
    );
    let body = parse(&text);
    let candidate = &body["candidates"][0];
    assert_eq!(
        candidate["content"],
        json!({"parts": [{"text": DEFAULT_TEXT}], "role": "model"})
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 5);
    assert_eq!(usage["candidatesTokenCount"], 9);
    assert_eq!(usage["totalTokenCount"], 14);
    assert_eq!(
        usage["promptTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 5}])
    );
    assert_eq!(body["modelVersion"], "gemini-sim");
    assert_eq!(body["responseId"], "simResponse000000000000");
    assert_covers(
        "gemini/vercel_text.json",
        &body,
        &[
            "/candidates/[]/content/parts/[]/thoughtSignature",
            "/usageMetadata/thoughtsTokenCount",
        ],
    );
    assert_covers(
        "gemini/generate_text.json",
        &body,
        &["/usageMetadata/thoughtsTokenCount"],
    );

    let request = &sim.requests()[0];
    assert_eq!(request.model.as_deref(), Some("gemini-sim"));
    assert_eq!(request.dialect(), Dialect::Gemini);
    assert!(!request.is_stream());
}

#[tokio::test]
async fn gemini_stream_uses_crlf_frames_with_cumulative_usage() {
    let sim = Simulator::start().await.expect("start");
    let url = gemini_url(&sim, "gemini-sim", "streamGenerateContent?alt=sse");
    let response = post_to(&url, &contents()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = body_text(response).await;
    // CRLF framing throughout: every LF belongs to a CRLF, every event ends with a blank line.
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    let frames: Vec<&str> = text.split_inclusive("\r\n\r\n").collect();
    assert_eq!(frames.len(), 5, "{text}");
    let mut last_count = 0;
    for (i, frame) in frames.iter().enumerate() {
        let payload = frame
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\r\n\r\n"))
            .unwrap_or_else(|| panic!("frame {frame:?}"));
        // Gemini's stream spacing: `": "` after keys, nothing after commas.
        assert!(
            payload.starts_with(r#"{"candidates": [{"content": {"parts": [{"text": "#),
            "{payload}"
        );
        let chunk = parse(payload);
        let candidate = &chunk["candidates"][0];
        assert_eq!(candidate["content"]["parts"][0]["text"], DEFAULT_PIECES[i]);
        assert_eq!(candidate["content"]["role"], "model");
        let usage = &chunk["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], 5);
        let count = usage["candidatesTokenCount"].as_u64().expect("count");
        assert!(count >= last_count, "usage is cumulative");
        last_count = count;
        assert_eq!(usage["totalTokenCount"].as_u64(), Some(5 + count));
        assert_eq!(chunk["modelVersion"], "gemini-sim");
        assert_eq!(chunk["responseId"], "simResponse000000000000");
        if i == 4 {
            assert_eq!(candidate["finishReason"], "STOP");
            assert_eq!(count, 9);
        } else {
            assert!(candidate.get("finishReason").is_none(), "{payload}");
        }
    }
    let request = &sim.requests()[0];
    assert!(request.is_stream());
    assert_eq!(request.model.as_deref(), Some("gemini-sim"));

    // Without alt=sse: one JSON array, one element per HTTP chunk.
    let url = gemini_url(&sim, "gemini-sim", "streamGenerateContent");
    let response = post_to(&url, &contents()).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let array = parse(&body_text(response).await);
    let texts: Vec<&str> = array
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(texts, DEFAULT_PIECES);

    // The explicit helper, in its own pieces.
    sim.script("pieces", [Reply::gemini_stream_text(&["Hel", "lo"])]);
    let url = gemini_url(&sim, "pieces", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[1]["candidates"][0]["content"]["parts"][0]["text"],
        "lo"
    );
    assert_eq!(chunks[1]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn text_answers_in_the_dialect_of_the_path() {
    let sim = Simulator::start().await.expect("start");
    sim.script("any", [Reply::text("Same words.")]);

    let openai: Value = post_to(&chat_url(&sim), &chat("any", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(openai["object"], "chat.completion");
    assert_eq!(openai["choices"][0]["message"]["content"], "Same words.");

    let anthropic: Value = post_to(&messages_url(&sim), &messages("any", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(anthropic["type"], "message");
    assert_eq!(anthropic["content"][0]["text"], "Same words.");

    let gemini: Value = post_to(&gemini_url(&sim, "any", "generateContent"), &contents())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        gemini["candidates"][0]["content"]["parts"][0]["text"],
        "Same words."
    );

    // Streamed, each in its own framing.
    let openai = body_text(post_to(&chat_url(&sim), &chat("any", true)).await).await;
    assert!(openai.ends_with("data: [DONE]\n\n"), "{openai}");
    let anthropic = body_text(post_to(&messages_url(&sim), &messages("any", true)).await).await;
    assert!(
        anthropic.starts_with("event: message_start\n"),
        "{anthropic}"
    );
    assert!(
        anthropic.contains("\nevent: message_stop\ndata: "),
        "{anthropic}"
    );
    let gemini = body_text(
        post_to(
            &gemini_url(&sim, "any", "streamGenerateContent?alt=sse"),
            &contents(),
        )
        .await,
    )
    .await;
    assert!(gemini.starts_with("data: {\"candidates\": "), "{gemini}");
    assert!(gemini.ends_with("\r\n\r\n"));

    let dialects: Vec<(Dialect, bool)> = sim
        .requests()
        .iter()
        .map(|r| (r.dialect(), r.is_stream()))
        .collect();
    assert_eq!(
        dialects,
        [
            (Dialect::OpenAi, false),
            (Dialect::Anthropic, false),
            (Dialect::Gemini, false),
            (Dialect::OpenAi, true),
            (Dialect::Anthropic, true),
            (Dialect::Gemini, true),
        ]
    );
    assert_eq!(sim.requests_for("any").len(), 6);
    assert_eq!(
        Dialect::of_path("/v1/messages?beta=true"),
        Dialect::Anthropic
    );
    assert_eq!(
        Dialect::of_path("/v1beta/openai/chat/completions"),
        Dialect::OpenAi
    );
}

#[tokio::test]
async fn tool_calls_in_every_dialect() {
    let sim = Simulator::start().await.expect("start");
    let args = r#"{"location":"San Francisco, CA","units":"f"}"#;
    let args_value = parse(args);
    sim.script("tools", [Reply::tool_call("get_weather", args)]);

    // OpenAI, plain and streamed.
    let body: Value = post_to(&chat_url(&sim), &chat("tools", false))
        .await
        .json()
        .await
        .expect("json");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_sim_0_0");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], args);
    assert_covers(
        "openai/chat_tool_calls.json",
        &body,
        &[
            "/service_tier",
            "/usage/completion_tokens_details/accepted_prediction_tokens",
            "/usage/completion_tokens_details/audio_tokens",
            "/usage/completion_tokens_details/rejected_prediction_tokens",
            "/usage/prompt_tokens_details/audio_tokens",
        ],
    );

    let text = body_text(post_to(&chat_url(&sim), &chat("tools", true)).await).await;
    let data = data_lines(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| parse(d)).collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["id"], "call_sim_1_0");
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let streamed: String = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(streamed, args);
    assert!(chunks.len() > 4, "arguments arrive in fragments");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // Anthropic, plain and streamed.
    let body: Value = post_to(&messages_url(&sim), &messages("tools", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["id"], "toolu_sim_2_0");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], args_value);
    assert_covers("anthropic/messages_tool_use_empty_input.json", &body, &[]);
    assert_covers(
        "anthropic/vercel_messages_tool_use_json.json",
        &body,
        &["/content/[]/input/elements"],
    );

    let text = body_text(post_to(&messages_url(&sim), &messages("tools", true)).await).await;
    let events = sse_events(&text);
    let names = event_names(&events);
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    let block = &data[1]["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["id"], "toolu_sim_3_0");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));
    let fragments: Vec<&str> = data[3..data.len() - 3]
        .iter()
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().expect("partial_json")
        })
        .collect();
    assert_eq!(fragments[0], "");
    assert_eq!(parse(&fragments.concat()), args_value);
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "tool_use");

    // Gemini, plain and streamed (the call arrives whole, in one chunk).
    let body: Value = post_to(&gemini_url(&sim, "tools", "generateContent"), &contents())
        .await
        .json()
        .await
        .expect("json");
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(
        candidate["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": args_value})
    );
    assert_covers(
        "gemini/generate_function_call.json",
        &body,
        &[
            "/candidates/[]/content/parts/[]/thoughtSignature",
            "/candidates/[]/content/parts/[]/functionCall/args/country",
            "/candidates/[]/finishMessage",
            "/usageMetadata/thoughtsTokenCount",
        ],
    );

    let url = gemini_url(&sim, "tools", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    assert!(text.ends_with("\r\n\r\n"));
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        args_value
    );
    assert_eq!(chunks[0]["candidates"][0]["finishReason"], "STOP");
    let recorded = events_of_fixture("gemini/stream_function_call.sse");
    if let Err(error) = covers(
        &recorded[0],
        &chunks[0],
        "",
        &[
            "/candidates/[]/content/parts/[]/functionCall/args/country",
            "/usageMetadata/candidatesTokensDetails",
        ],
    ) {
        panic!("stream_function_call.sse: {error}");
    }

    // The explicit helpers answer in their own dialect whatever the path.
    sim.script("explicit", [Reply::anthropic_tool_call("f", "{}")]);
    let body: Value = post_to(&chat_url(&sim), &chat("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["content"][0]["type"], "tool_use");
    sim.script("explicit", [Reply::gemini_tool_call("f", "not json")]);
    let body: Value = post_to(&chat_url(&sim), &chat("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({})
    );
    sim.script("explicit", [Reply::openai_tool_call("f", "{\"a\":1}")]);
    let body: Value = post_to(&messages_url(&sim), &messages("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
}

fn events_of_fixture(path: &str) -> Vec<Value> {
    let full = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"));
    sse_events(&text).iter().map(|(_, d)| parse(d)).collect()
}

/// Expected status per kind and dialect: (OpenAI, Anthropic, Gemini).
const ERROR_STATUS: [(SimError, u16, u16, u16); 8] = [
    (
        SimError::RateLimited {
            retry_after_secs: 7,
        },
        429,
        429,
        429,
    ),
    (SimError::Overloaded, 503, 529, 503),
    (SimError::Server, 500, 500, 500),
    (SimError::Auth, 401, 401, 400),
    (SimError::QuotaExhausted, 429, 400, 429),
    (SimError::ContextLength, 400, 400, 400),
    (SimError::ContentPolicy, 400, 200, 200),
    (SimError::InvalidRequest, 400, 400, 400),
];

#[tokio::test]
async fn errors_are_rendered_per_dialect() {
    let sim = Simulator::start().await.expect("start");
    for (i, (kind, openai_status, anthropic_status, gemini_status)) in
        ERROR_STATUS.into_iter().enumerate()
    {
        let model = format!("kind-{i}");
        sim.script(&model, [Reply::error(kind)]);

        let response = post_to(&chat_url(&sim), &chat(&model, false)).await;
        assert_eq!(response.status(), openai_status, "{kind:?}");
        let retry_after = response.headers().get("retry-after").cloned();
        let body = parse(&body_text(response).await);
        let error = &body["error"];
        assert!(
            error["message"].is_string() && error["type"].is_string(),
            "{body}"
        );
        assert!(
            error.get("param").is_some() && error.get("code").is_some(),
            "{body}"
        );

        let response = post_to(&messages_url(&sim), &messages(&model, false)).await;
        assert_eq!(response.status(), anthropic_status, "{kind:?}");
        let headers = response.headers().clone();
        let body = parse(&body_text(response).await);
        if anthropic_status != 200 {
            assert_eq!(body["type"], "error", "{body}");
            assert!(body["error"]["type"].is_string() && body["error"]["message"].is_string());
            assert_eq!(
                body["request_id"],
                headers["request-id"].to_str().unwrap_or("")
            );
            let should_retry = headers["x-should-retry"].to_str().unwrap_or("");
            assert_eq!(should_retry == "true", anthropic_status >= 429, "{model}");
        }

        let url = gemini_url(&sim, &model, "generateContent");
        let response = post_to(&url, &contents()).await;
        assert_eq!(response.status(), gemini_status, "{kind:?}");
        assert!(response.headers().get("retry-after").is_none());
        let body = parse(&body_text(response).await);
        if gemini_status != 200 {
            let error = &body["error"];
            assert_eq!(error["code"], gemini_status, "{body}");
            assert!(error["message"].is_string() && error["status"].is_string());
        }

        match kind {
            SimError::RateLimited { .. } => {
                assert_eq!(retry_after.as_ref().map(|v| v.as_bytes()), Some(&b"7"[..]));
                assert_eq!(headers["retry-after"], "7");
            }
            _ => assert!(retry_after.is_none(), "{model}"),
        }
    }
}

#[tokio::test]
async fn error_bodies_match_the_vendor_recordings() {
    let sim = Simulator::start().await.expect("start");
    let limited = SimError::RateLimited {
        retry_after_secs: 7,
    };
    sim.script("limited", [Reply::error(limited)]);
    sim.script("overloaded", [Reply::error(SimError::Overloaded)]);
    sim.script("quota", [Reply::error(SimError::QuotaExhausted)]);
    sim.script("auth", [Reply::error(SimError::Auth)]);
    sim.script("policy", [Reply::error(SimError::ContentPolicy)]);
    sim.script("context", [Reply::error(SimError::ContextLength)]);

    // OpenAI.
    let response = post_to(&chat_url(&sim), &chat("limited", false)).await;
    assert_eq!(response.headers()["x-ratelimit-remaining-requests"], "0");
    assert_eq!(response.headers()["x-ratelimit-reset-requests"], "7s");
    let body = parse(&body_text(response).await);
    assert_eq!(body["error"]["type"], "requests");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_covers(
        "openai/error_429_rate_limit_exceeded_requests.json",
        &body,
        &[],
    );
    let body = parse(&body_text(post_to(&chat_url(&sim), &chat("quota", false)).await).await);
    assert_eq!(body["error"]["code"], "insufficient_quota");
    assert_covers("openai/error_429_insufficient_quota.json", &body, &[]);
    let body = parse(&body_text(post_to(&chat_url(&sim), &chat("context", false)).await).await);
    assert_eq!(body["error"]["code"], "context_length_exceeded");

    // Anthropic.
    let response = post_to(&messages_url(&sim), &messages("limited", false)).await;
    assert_eq!(response.headers()["x-should-retry"], "true");
    assert_eq!(
        response.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );
    let reset = response.headers()["anthropic-ratelimit-requests-reset"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        reset.len() == 20 && reset.ends_with('Z') && reset.as_bytes()[10] == b'T',
        "{reset}"
    );
    let body = parse(&body_text(response).await);
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_covers("anthropic/error_429_rate_limit_error.json", &body, &[]);
    let response = post_to(&messages_url(&sim), &messages("overloaded", false)).await;
    assert_eq!(response.status(), 529);
    let text = body_text(response).await;
    let seq = sim.requests().len() - 1;
    assert_eq!(
        text,
        format!(
            r#"{{"type":"error","error":{{"type":"overloaded_error","message":"Overloaded"}},"request_id":"req_sim_{seq}"}}"#
        )
    );
    assert_covers(
        "anthropic/error_529_overloaded_error.json",
        &parse(&text),
        &[],
    );
    let response = post_to(&messages_url(&sim), &messages("auth", false)).await;
    assert_eq!(response.headers()["x-should-retry"], "false");
    let body = parse(&body_text(response).await);
    assert_eq!(body["error"]["type"], "authentication_error");
    let body =
        parse(&body_text(post_to(&messages_url(&sim), &messages("policy", false)).await).await);
    assert_eq!(body["stop_reason"], "refusal");
    assert_eq!(body["content"], json!([]));

    // Gemini.
    let url = |model: &str| gemini_url(&sim, model, "generateContent");
    let response = post_to(&url("limited"), &contents()).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let text = body_text(response).await;
    assert!(
        text.starts_with("{\n  \"error\": {\n    \"code\": 429,\n"),
        "{text}"
    );
    let body = parse(&text);
    let error = &body["error"];
    assert_eq!(error["status"], "RESOURCE_EXHAUSTED");
    let details = error["details"].as_array().expect("details");
    let detail = |suffix: &str| {
        details
            .iter()
            .find(|d| d["@type"].as_str().is_some_and(|t| t.ends_with(suffix)))
            .unwrap_or_else(|| panic!("no {suffix} in {body}"))
    };
    assert_eq!(detail("google.rpc.RetryInfo")["retryDelay"], "7s");
    let quota_id = detail("google.rpc.QuotaFailure")["violations"][0]["quotaId"]
        .as_str()
        .unwrap_or("");
    assert!(quota_id.contains("PerMinute"), "{quota_id}");
    assert_covers(
        "gemini/error_429_quota_failure_retry_info.json",
        &body,
        &["/error/details/[]/violations/[]/quotaDimensions"],
    );
    let body = parse(&body_text(post_to(&url("quota"), &contents()).await).await);
    let quota_id = body["error"]["details"][0]["violations"][0]["quotaId"]
        .as_str()
        .unwrap_or("");
    assert!(quota_id.contains("PerDay"), "{body}");
    let body = parse(&body_text(post_to(&url("overloaded"), &contents()).await).await);
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
    let body = parse(&body_text(post_to(&url("auth"), &contents()).await).await);
    assert_covers("gemini/error_400_api_key_invalid.json", &body, &[]);
    let body = parse(&body_text(post_to(&url("policy"), &contents()).await).await);
    assert_eq!(body["candidates"][0]["finishReason"], "SAFETY");
    assert_covers("gemini/generate_finish_safety.json", &body, &[]);

    // Explicit helpers.
    sim.script(
        "explicit",
        [Reply::anthropic_error(
            404,
            "not_found_error",
            "model: claude-nope",
        )],
    );
    let response = post_to(&messages_url(&sim), &messages("explicit", false)).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["x-should-retry"], "false");
    let body = parse(&body_text(response).await);
    assert_eq!(body["error"]["message"], "model: claude-nope");
    assert_covers("anthropic/error_404_not_found.json", &body, &[]);
    sim.script(
        "gemini-nope",
        [Reply::gemini_error(
            404,
            "NOT_FOUND",
            "models/gemini-nope is not found",
        )],
    );
    let response = post_to(&url("gemini-nope"), &contents()).await;
    assert_eq!(response.status(), 404);
    let body = parse(&body_text(response).await);
    assert_eq!(
        body,
        json!({"error": {"code": 404, "message": "models/gemini-nope is not found", "status": "NOT_FOUND"}})
    );
    assert_covers("gemini/error_404_not_found.json", &body, &[]);

    // A header given on the reply replaces the vendor's own of the same name.
    sim.script(
        "override",
        [Reply::error(limited).header("Retry-After", "9")],
    );
    let response = post_to(&chat_url(&sim), &chat("override", false)).await;
    let values: Vec<_> = response.headers().get_all("retry-after").iter().collect();
    assert_eq!(values, ["9"]);
}

#[tokio::test]
async fn stream_error_after_sends_each_dialects_in_stream_error() {
    let sim = Simulator::start().await.expect("start");
    sim.script(
        "fails",
        [Reply::stream_error_after(2, SimError::Overloaded)],
    );

    // Anthropic: the opening, two deltas, then `event: error`; no message_stop.
    let response = post_to(&messages_url(&sim), &messages("fails", true)).await;
    assert_eq!(response.status(), 200);
    let text = body_text(response).await;
    let events = sse_events(&text);
    assert_eq!(
        event_names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "error"
        ]
    );
    let error = parse(&events[5].1);
    assert_eq!(
        error,
        json!({"type": "error", "error": {"details": null, "type": "overloaded_error", "message": "Overloaded"}})
    );
    assert_eq!(
        events_of_fixture("anthropic/messages_stream_error_event_overloaded.sse"),
        [error]
    );

    // OpenAI: role chunk, two content chunks, then a Groq-style `event: error`; no [DONE].
    let text = body_text(post_to(&chat_url(&sim), &chat("fails", true)).await).await;
    let events = sse_events(&text);
    assert_eq!(
        event_names(&events),
        ["<none>", "<none>", "<none>", "error"]
    );
    let contents_seen: Vec<String> = events[1..3]
        .iter()
        .map(|(_, d)| {
            parse(d)["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(contents_seen, ["Hello ", "from "]);
    let error = parse(&events[3].1);
    assert_eq!(error["error"]["type"], "server_error");
    assert!(error["error"]["message"].is_string());
    assert!(!text.contains("[DONE]"));

    // Gemini: two chunks without a finish reason, then an `{"error": …}` chunk.
    let url = gemini_url(&sim, "fails", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    let frames: Vec<&str> = text.split_inclusive("\r\n\r\n").collect();
    assert_eq!(frames.len(), 3, "{text}");
    assert!(
        frames[2].starts_with("data: {\"error\": {\"code\": 503,"),
        "{text}"
    );
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert!(chunks[1]["candidates"][0].get("finishReason").is_none());
    assert_eq!(chunks[2]["error"]["status"], "UNAVAILABLE");

    // A request that does not stream gets the HTTP error.
    let response = post_to(&messages_url(&sim), &messages("fails", false)).await;
    assert_eq!(response.status(), 529);

    // Content policy ends the stream with each vendor's blocked finish instead.
    sim.script(
        "blocked",
        [Reply::stream_error_after(1, SimError::ContentPolicy)],
    );
    let text = body_text(post_to(&messages_url(&sim), &messages("blocked", true)).await).await;
    let events = sse_events(&text);
    assert_eq!(event_names(&events).last(), Some(&"message_stop"));
    assert_eq!(
        parse(&events[events.len() - 2].1)["delta"]["stop_reason"],
        "refusal"
    );
    let text = body_text(post_to(&chat_url(&sim), &chat("blocked", true)).await).await;
    assert!(
        text.contains(r#""finish_reason":"content_filter""#),
        "{text}"
    );
    let url = gemini_url(&sim, "blocked", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["candidates"][0]["finishReason"], "SAFETY");
}

/// Reads a streamed body until it fails, returning what arrived and the error.
async fn read_until_error(response: reqwest::Response) -> (String, reqwest::Error) {
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    loop {
        match timeout(PROMPT, stream.next()).await.expect("in time") {
            Some(Ok(chunk)) => body.extend_from_slice(&chunk),
            Some(Err(error)) => return (String::from_utf8(body).expect("utf8"), error),
            None => panic!(
                "the stream ended cleanly: {}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}

#[tokio::test]
async fn cut_after_counts_anthropic_and_gemini_frames() {
    let sim = Simulator::start().await.expect("start");
    sim.script("cut", [Reply::text("a b c d e").cut_after(4)]);

    let response = post_to(&messages_url(&sim), &messages("cut", true)).await;
    let (body, error) = read_until_error(response).await;
    assert!(
        error.is_body() || error.is_request() || error.is_decode(),
        "{error:?}"
    );
    assert_eq!(
        event_names(&sse_events(&body)),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta"
        ]
    );
    assert!(body.ends_with("\n\n"));

    let url = gemini_url(&sim, "cut", "streamGenerateContent?alt=sse");
    let response = post_to(&url, &contents()).await;
    let (body, _) = read_until_error(response).await;
    let frames: Vec<&str> = body.split_inclusive("\r\n\r\n").collect();
    assert_eq!(frames.len(), 4, "{body}");
    assert!(
        frames
            .iter()
            .all(|f| f.starts_with("data: ") && f.ends_with("\r\n\r\n"))
    );
    for request in sim.requests() {
        timeout(PROMPT, request.closed()).await.expect("closed");
    }

    // Stalls count the same frames.
    sim.script("stall", [Reply::text("a b c").stall_after(2)]);
    let url = gemini_url(&sim, "stall", "streamGenerateContent?alt=sse");
    let response = post_to(&url, &contents()).await;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while body.windows(4).filter(|w| w == b"\r\n\r\n").count() < 2 {
        let chunk = timeout(PROMPT, stream.next())
            .await
            .expect("in time")
            .expect("more")
            .expect("chunk");
        body.extend_from_slice(&chunk);
    }
    assert!(
        timeout(QUIET, stream.next()).await.is_err(),
        "nothing more arrives"
    );
    assert_eq!(sse_events(&String::from_utf8(body).expect("utf8")).len(), 2);
}
