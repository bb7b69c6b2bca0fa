//! Requests awaited as they arrive, Gemini paths, keep-alive, malformed and oversized
//! requests, and connections closed by either side.

use super::*;

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
