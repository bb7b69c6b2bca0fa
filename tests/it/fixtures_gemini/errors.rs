//! Error bodies, errors inside streams.

use super::*;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn error_400_api_key_invalid_is_auth() {
    // INVALID_ARGUMENT by status, but ErrorInfo.reason says the key is the problem.
    let e = Gem::check_error(
        "gemini/error_400_api_key_invalid.json",
        &WantErr {
            kind: ErrorKind::Auth,
            status: 400,
            code: Some("API_KEY_INVALID"),
            message: Msg::Body,
            request_id: None,
            retry_after: None,
        },
    );
    assert_eq!(
        e.message(),
        "API key not valid. Please pass a valid API key."
    );
    // The recorded response said `text/event-stream` although the body is JSON.
    let side = read_sidecar("gemini/error_400_api_key_invalid.http.json");
    assert_eq!(
        side.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
}

#[test]
fn error_404_not_found() {
    let e = Gem::check_error(
        "gemini/error_404_not_found.json",
        &WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: Some("NOT_FOUND"),
            message: Msg::Body,
            request_id: None,
            retry_after: None,
        },
    );
    assert!(
        e.message()
            .starts_with("models/gemini-3.6-flahs is not found")
    );
}

#[test]
fn error_429_per_day_quota_is_quota_exhausted_with_retry_delay() {
    // QuotaFailure names GenerateRequestsPerDayPerProjectPerModel-FreeTier; RetryInfo says 36s
    // (the message says 36.43s).
    Gem::check_error(
        "gemini/error_429_quota_failure_retry_info.json",
        &WantErr {
            kind: ErrorKind::QuotaExhausted,
            status: 429,
            code: Some("RESOURCE_EXHAUSTED"),
            message: Msg::Body,
            request_id: None,
            retry_after: Some(Duration::from_secs(36)),
        },
    );
}

#[test]
fn error_429_resource_exhausted_is_rate_limited() {
    Gem::check_error(
        "gemini/error_429_resource_exhausted.json",
        &WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: Some("RESOURCE_EXHAUSTED"),
            message: Msg::Body,
            request_id: None,
            retry_after: None,
        },
    );
}

#[test]
fn retry_info_without_per_day_quota_is_rate_limited() {
    // The recorded body with a per-minute quota instead: a transient limit with its delay.
    let body = read_str("gemini/error_429_quota_failure_retry_info.json")
        .replace(
            "GenerateRequestsPerDayPerProjectPerModel",
            "GenerateRequestsPerMinutePerProjectPerModel",
        )
        .replace("\"36s\"", "\"45.8s\"");
    let e = decode_error(429, &HeaderMap::new(), body.as_bytes());
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_millis(45_800)));
}

#[test]
fn vertex_error_400_invalid_argument() {
    Gem::check_error(
        "gemini/vertex_error_400_invalid_argument.json",
        &WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("INVALID_ARGUMENT"),
            message: Msg::Body,
            request_id: None,
            retry_after: None,
        },
    );
}

#[test]
fn other_statuses() {
    let body = |code: u16, status: &str, msg: &str| {
        format!(r#"{{"error":{{"code":{code},"message":"{msg}","status":"{status}"}}}}"#)
    };
    for (code, status, msg, kind) in [
        (
            403,
            "PERMISSION_DENIED",
            "Permission denied.",
            ErrorKind::Auth,
        ),
        (
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
            ErrorKind::Auth,
        ),
        (
            500,
            "INTERNAL",
            "An internal error has occurred.",
            ErrorKind::Server,
        ),
        (
            503,
            "UNAVAILABLE",
            "The model is overloaded.",
            ErrorKind::Overloaded,
        ),
        (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline exceeded.",
            ErrorKind::Timeout,
        ),
        (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).",
            ErrorKind::ContextLengthExceeded,
        ),
    ] {
        let e = decode_error(code, &HeaderMap::new(), body(code, status, msg).as_bytes());
        assert_eq!(e.kind(), kind, "{status}");
        assert_eq!(e.code(), Some(status));
        assert_eq!(e.message(), msg);
    }
}

#[test]
fn errors_inside_streams() {
    // The README's shape for the JSON-array stream: `[{"error": {…}}]`.
    let array = br#"[{"error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}]"#;
    let e = decode_stream_array(array).expect_err("error element");
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.status(), Some(503));
    assert_eq!(
        decode_error(503, &HeaderMap::new(), array).kind(),
        ErrorKind::Overloaded
    );

    // An error event after two events of a recorded SSE stream: those chunks, then the error.
    let text = read_str("gemini/stream_text.sse");
    let cut = Gem::sse_blocks(&text)[1].1;
    let body = format!(
        "{}data: {{\"error\": {{\"code\": 500, \"message\": \"Internal error encountered.\", \"status\": \"INTERNAL\"}}}}\r\n\r\n",
        &text[..cut]
    );
    let out = Gem::decode_whole(body.as_bytes());
    assert_eq!(out.chunks.len(), 2);
    let (stage, e) = out.error.expect("error");
    assert_eq!(stage, Stage::Feed);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.status(), Some(500));
    assert_eq!(e.message(), "Internal error encountered.");

    // A truncated JSON array is an interrupted stream.
    let arr = read_str("gemini/stream_text.json_array.json");
    let e = decode_stream_array(&arr.as_bytes()[..arr.len() / 2]).expect_err("cut");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
    // An array whose last element has no finish reason is too.
    let first_two = Value::Array(sse_events(&text).into_iter().take(2).collect());
    let e = decode_stream_array(first_two.to_string().as_bytes()).expect_err("no finish");
    assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
}

#[test]
fn blocked_prompt_is_content_filtered() {
    let body = br#"{"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "gemini-2.5-flash"}"#;
    let e = decode_response(body).expect_err("blocked");
    assert_eq!(e.kind(), ErrorKind::ContentFiltered);
    assert_eq!(e.code(), Some("PROHIBITED_CONTENT"));
    let sse = format!("data: {}\r\n\r\n", String::from_utf8_lossy(body));
    let (_, e) = Gem::decode_whole(sse.as_bytes())
        .error
        .expect("blocked stream");
    assert_eq!(e.kind(), ErrorKind::ContentFiltered);
}
