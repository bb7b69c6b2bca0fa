//! Error bodies.

use std::time::Duration;

use polyrelay::ErrorKind;
use reqwest::header::{HeaderMap, HeaderValue};

use super::*;

// ---------------------------------------------------------------------------------------------
// Error bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn error_400_invalid_request() {
    let e = Ant::check_error(
        "anthropic/error_400_invalid_request.json",
        &WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("invalid_request_error"),
            message: Msg::Exact(
                "This model does not support effort level 'xhigh'. Supported levels: high, low, max, medium.",
            ),
            request_id: Some("req_011Ca7jT9AHpgXgdv8igm4z9"),
            retry_after: None,
        },
    );
    assert_eq!(e.retry_after(), None);
}

#[test]
fn error_400_tool_result_without_tool_use() {
    let e = Ant::check_error(
        "anthropic/error_400_invalid_request_tool_result.json",
        &WantErr {
            kind: ErrorKind::InvalidRequest,
            status: 400,
            code: Some("invalid_request_error"),
            message: Msg::Shape(
                "messages.0.content.1: unexpected `tool_use_id` found in `tool_result` blocks: toolu_01GHndag5wQmbzNihYmV2UBj.",
                "must have a corresponding `tool_use` block in the previous message.",
                202,
            ),
            request_id: Some("req_011CYHyk9NPsBYeGbC9LuDNK"),
            retry_after: None,
        },
    );
    assert_eq!(e.retry_after(), None);
    let side = read_sidecar("anthropic/error_400_invalid_request_tool_result.http.json");
    assert_eq!(side.headers["x-should-retry"], "false");
}

#[test]
fn error_404_not_found() {
    Ant::check_error(
        "anthropic/error_404_not_found.json",
        &WantErr {
            kind: ErrorKind::NotFound,
            status: 404,
            code: Some("not_found_error"),
            message: Msg::Exact("model: claude-sonet-4-5"),
            request_id: Some("req_011CdufXo8Y2LVfY2veyuQWG"),
            retry_after: None,
        },
    );
}

/// A real 429 (prompt bytes per hour). The recording has `x-should-retry: true` but neither
/// `retry-after` nor `anthropic-ratelimit-*` headers: no retry hint.
#[test]
fn error_429_rate_limit_error() {
    let e = Ant::check_error(
        "anthropic/error_429_rate_limit_error.json",
        &WantErr {
            kind: ErrorKind::RateLimited,
            status: 429,
            code: Some("rate_limit_error"),
            message: Msg::Shape(
                "This request would exceed your organization's rate limit of 20,000,000 prompt bytes per hour",
                "to discuss your options for a rate limit increase.",
                497,
            ),
            request_id: Some("req_011CYK5mje9HkutJtmfPzzNC"),
            retry_after: None,
        },
    );
    assert_eq!(e.retry_after(), None);
    let side = read_sidecar("anthropic/error_429_rate_limit_error.http.json");
    assert_eq!(side.headers["x-should-retry"], "true");
    assert!(side.headers.get("retry-after").is_none());
    // With a retry-after header, it is the hint.
    let mut h = side.headers;
    h.insert("retry-after", HeaderValue::from_static("30"));
    let e = decode_error(429, &h, &read("anthropic/error_429_rate_limit_error.json"));
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
}

#[test]
fn error_529_overloaded() {
    Ant::check_error(
        "anthropic/error_529_overloaded_error.json",
        &WantErr {
            kind: ErrorKind::Overloaded,
            status: 529,
            code: Some("overloaded_error"),
            message: Msg::Exact("Overloaded"),
            request_id: Some("req_011CZAau32QzxDkriovTaFCB"),
            retry_after: None,
        },
    );
    Ant::check_error(
        "anthropic/error_529_overloaded_error_no_request_id.json",
        &WantErr {
            kind: ErrorKind::Overloaded,
            status: 529,
            code: Some("overloaded_error"),
            message: Msg::Exact("Overloaded"),
            request_id: None,
            retry_after: None,
        },
    );
    // The request id also comes from the `request-id` header when the body has none.
    let mut h = HeaderMap::new();
    h.insert("request-id", HeaderValue::from_static("req_from_header"));
    let e = decode_error(
        529,
        &h,
        &read("anthropic/error_529_overloaded_error_no_request_id.json"),
    );
    assert_eq!(e.request_id(), Some("req_from_header"));
}
