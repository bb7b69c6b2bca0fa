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
