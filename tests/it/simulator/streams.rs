//! SSE frames verbatim and in order, and the stream faults: `cut_after`, `stall_after`,
//! close-delimited bodies, `split_every`.

use super::*;

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
