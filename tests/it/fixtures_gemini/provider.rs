//! The provider over HTTP.

use super::*;

// ---------------------------------------------------------------------------------------------
// Sidecars and the provider over HTTP
// ---------------------------------------------------------------------------------------------

/// Every sidecar belongs to a body file and agrees with it, and the recorded request URI is
/// the one `Gemini::endpoint` builds for that model.
#[test]
fn sidecars_agree_with_their_bodies_and_endpoints() {
    Gem::sidecars_agree_with_their_bodies(15, |rel, side, stem, body| {
        if side.uri.ends_with("/openai/chat/completions") {
            return; // the OpenAI-compatible endpoint
        }
        let (base, rest) = side
            .uri
            .split_once("/models/")
            .unwrap_or_else(|| panic!("{rel}: {}", side.uri));
        let (model, method) = rest.split_once(':').expect("model:method");
        let stream = method.starts_with("streamGenerateContent");
        let built = Gemini::new("k")
            .base_url(base)
            .endpoint(model, stream)
            .expect("endpoint");
        assert_eq!(built, side.uri, "{rel}");
        // Stream bodies go with stream URIs, JSON bodies with generateContent (errors aside).
        if body != Body::Error {
            assert_eq!(stream, exists(&format!("{stem}.sse")), "{rel}");
        }
    });
}

const KEY: &str = "AIzaSy-DO-NOT-LEAK-0123456789abcdef";

async fn sim_and_provider() -> (Simulator, Gemini, CallContext) {
    let sim = Simulator::start().await.expect("simulator");
    let g = Gemini::new(KEY).base_url(&format!("{}/v1beta", sim.base_url()));
    let cx = CallContext::new(reqwest::Client::new());
    (sim, g, cx)
}

#[tokio::test]
async fn provider_chat_over_http() {
    let (sim, g, cx) = sim_and_provider().await;
    sim.script(
        "gemini-2.5-pro",
        [Reply::json(
            200,
            read_str("gemini/generate_function_call.json"),
        )],
    );
    let req = ChatRequest::new("route")
        .system("Be brief.")
        .user("Capital of France?");
    let mut r = g.chat(&req, "gemini-2.5-pro", &cx).await.expect("chat");
    // The simulator's `x-request-id`.
    assert_eq!(r.meta.request_id.take().as_deref(), Some("req_sim_0"));
    assert_eq!(
        r.meta.status.take(),
        Some(200),
        "an HTTP provider reports the status"
    );
    // Gemini sends no creation time: the provider gives the answer its arrival's.
    assert!(std::mem::take(&mut r.created) > 0, "created");
    assert_eq!(r, Gem::decode_json("gemini/generate_function_call.json"));
    assert_eq!(g.name(), "gemini");

    let seen = &sim.requests()[0];
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1beta/models/gemini-2.5-pro:generateContent");
    assert_eq!(seen.header("x-goog-api-key"), Some(KEY));
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert!(!seen.path.contains(KEY) && !seen.path.contains("key="));
    assert_eq!(
        seen.body,
        json!({
            "contents": [{"role": "user", "parts": [{"text": "Capital of France?"}]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]}
        })
    );
}

#[tokio::test]
async fn provider_stream_over_http_sse_and_json_array() {
    let (sim, g, cx) = sim_and_provider().await;
    let req = ChatRequest::new("route").user("Capital of France?");
    sim.script(
        "gemini-2.0-flash-exp",
        [
            Reply::sse_bytes(read("gemini/stream_text.sse")).split_every(7),
            Reply::raw(
                200,
                "application/json",
                read("gemini/stream_text.json_array.json"),
            ),
        ],
    );
    let (_, want) = Gem::decode_stream("gemini/stream_text.sse");
    for (n, model) in ["gemini-2.0-flash-exp", "models/gemini-2.0-flash-exp"]
        .into_iter()
        .enumerate()
    {
        let s = g.chat_stream(&req, model, &cx).await.expect("stream");
        assert_eq!(
            s.meta().request_id.as_deref(),
            Some(format!("req_sim_{n}").as_str())
        );
        let mut r = s.into_response().await.expect("collect");
        r.meta = Default::default();
        assert_eq!(r, want, "request {n}");
    }
    let paths: Vec<String> = sim.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [
            "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse",
            "/v1beta/models/gemini-2.0-flash-exp:streamGenerateContent?alt=sse"
        ]
    );
}

#[tokio::test]
async fn provider_errors_over_http_are_typed_and_redacted() {
    let (sim, g, cx) = sim_and_provider().await;
    sim.script(
        "gemini-3.6-flash",
        [Reply::raw(
            429,
            "application/json; charset=UTF-8",
            read("gemini/error_429_quota_failure_retry_info.json"),
        )],
    );
    let req = ChatRequest::new("route").user("hi");
    let e = g
        .chat(&req, "gemini-3.6-flash", &cx)
        .await
        .expect_err("429");
    assert_eq!(e.kind(), ErrorKind::QuotaExhausted);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(36)));

    // A vendor echoing the key: never in the error, whatever its form.
    let echo = format!(
        r#"{{"error":{{"code":400,"message":"API key not valid: {KEY}","status":"INVALID_ARGUMENT","details":[{{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}}]}}}}"#
    );
    sim.script(
        "gemini-2.5-flash",
        [Reply::raw(400, "text/event-stream", echo)],
    );
    let e = g
        .chat_stream(&req, "gemini-2.5-flash", &cx)
        .await
        .expect_err("400");
    assert_eq!(e.kind(), ErrorKind::Auth);
    for text in [format!("{e}"), format!("{e:?}"), format!("{g:?}")] {
        assert!(!text.contains(KEY), "key leaked: {text}");
    }
    assert!(e.message().contains("[REDACTED]"));

    // Errors inside a 200 answer: an SSE error event, a JSON-array error element, a body that
    // is not a response. The key is redacted from each (message, body, and source chain).
    let event = format!(
        r#"{{"error": {{"code": 500, "message": "internal error for key {KEY}", "status": "INTERNAL"}}}}"#
    );
    sim.script(
        "gemini-2.5-pro",
        [
            Reply::sse_bytes(format!("data: {event}\r\n\r\n")),
            Reply::raw(200, "application/json", format!("[{event}]")),
            Reply::json(200, format!("<html>proxy error {KEY}</html>")),
        ],
    );
    let s = g
        .chat_stream(&req, "gemini-2.5-pro", &cx)
        .await
        .expect("200");
    let sse_err = s.into_response().await.expect_err("error event");
    assert_eq!(sse_err.kind(), ErrorKind::Server);
    let array_err = g
        .chat_stream(&req, "gemini-2.5-pro", &cx)
        .await
        .expect_err("error element before any chunk");
    assert_eq!(array_err.kind(), ErrorKind::Server);
    let decode_err = g
        .chat(&req, "gemini-2.5-pro", &cx)
        .await
        .expect_err("not JSON");
    assert_eq!(decode_err.kind(), ErrorKind::Decode);
    for e in [sse_err, array_err, decode_err] {
        let mut texts = vec![format!("{e}"), format!("{e:?}")];
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(&e);
        while let Some(s) = src {
            texts.push(format!("{s} {s:?}"));
            src = s.source();
        }
        for t in texts {
            assert!(!t.contains(KEY), "key leaked: {t}");
        }
    }
}

#[tokio::test]
async fn provider_replays_signed_tool_turns() {
    // The call from a recorded Gemini 3 answer goes back with its signature; a Gemini 3 turn
    // whose calls came from elsewhere gets the documented sentinel.
    let (sim, g, cx) = sim_and_provider().await;
    let first = Gem::decode_json("gemini/vercel_function_call_gemini3.json");
    let call = first.tool_calls()[0].clone();
    let foreign = ToolCall::function("call_from_openai", "weather", r#"{"location":"Paris"}"#);
    let req = ChatRequest::new("route")
        .user("Weather in SF?")
        .message(first.choices[0].message.clone())
        .message(Message::tool_result(call.id.clone(), r#"{"temp": 18}"#))
        .message(Message::assistant_tool_calls(vec![foreign]))
        .message(Message::tool_result("call_from_openai", "sunny"));
    sim.script(
        "gemini-3-pro-preview",
        [Reply::json(200, read_str("gemini/vercel_text.json"))],
    );
    g.chat(&req, "gemini-3-pro-preview", &cx)
        .await
        .expect("chat");
    let body = &sim.requests()[0].body;
    let turns = body["contents"].as_array().expect("contents");
    assert_eq!(turns.len(), 5);
    assert_eq!(
        turns[1]["parts"][0]["thoughtSignature"].as_str(),
        call.thought_signature.as_deref()
    );
    assert!(
        turns[1]["parts"][0]["functionCall"].get("id").is_none(),
        "generated ids stay here"
    );
    assert_eq!(
        turns[2]["parts"][0],
        json!({"functionResponse": {"name": "weather", "response": {"temp": 18}}})
    );
    assert_eq!(
        turns[3]["parts"][0]["thoughtSignature"],
        "skip_thought_signature_validator"
    );
    assert_eq!(
        turns[3]["parts"][0]["functionCall"]["id"],
        "call_from_openai"
    );
}

#[test]
fn fixture_folder_is_fully_covered() {
    Gem::fully_covered(
        COVERED,
        &[
            include_str!("mod.rs"),
            include_str!("answers.rs"),
            include_str!("streams.rs"),
            include_str!("forms.rs"),
            include_str!("errors.rs"),
            include_str!("provider.rs"),
        ],
    );
}
