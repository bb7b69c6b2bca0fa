//! The default OpenAI reply, scripts consumed in order, vendor errors with `Retry-After`,
//! hanging replies and resets.

use super::*;

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
