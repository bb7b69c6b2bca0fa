//! Vendor errors rendered per dialect as the vendors' recordings show them, in-stream
//! errors, and cuts counted in Anthropic and Gemini frames.

use super::*;

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
