//! Bedrock's errors: every recorded error body, the type from the header or the body, and
//! whose fault each is.

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use super::*;
use crate::types::Fault;

macro_rules! fixture {
    ($name:expr) => {
        include_bytes!(concat!("../../../tests/fixtures/bedrock/", $name)).as_slice()
    };
}

fn typed(ty: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-amzn-errortype",
        HeaderValue::from_str(ty).expect("header"),
    );
    h
}

fn decode_in(region: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    let key = ApiKey::new("");
    Bedrock::new(region, AwsAuth::unsigned())
        .codec()
        .decode_error(status, headers, body, &Redactor::new(&key))
}

fn decode(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    decode_in("us-east-1", status, headers, body)
}

#[test]
fn recorded_throttling_is_rate_limited_not_context_length() {
    // "Too many tokens" is a per-minute quota, not the prompt's size.
    // The recorded answer's headers, as its sidecar lists them.
    let sidecar: serde_json::Value =
        serde_json::from_slice(fixture!("error_429_throttling_too_many_tokens.http.json"))
            .expect("sidecar");
    let mut h = HeaderMap::new();
    for (name, values) in sidecar["response"]["headers"].as_object().expect("headers") {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("name");
        let value = values[0].as_str().expect("value");
        h.insert(name, HeaderValue::from_str(value).expect("value"));
    }
    let e = decode(
        429,
        &h,
        fixture!("error_429_throttling_too_many_tokens.json"),
    );
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert!(e.is_retryable());
    assert_eq!(e.status(), Some(429));
    assert_eq!(e.code(), Some("ThrottlingException"));
    assert_eq!(
        e.message(),
        "Too many tokens, please wait before trying again."
    );
    assert_eq!(e.request_id(), Some("ca47a5ce-e260-4824-aa0e-2e62669d5d6e"));
    // Without the header, the status decides.
    let e = decode(
        429,
        &HeaderMap::new(),
        fixture!("error_429_throttling_too_many_tokens.json"),
    );
    assert_eq!(e.kind(), ErrorKind::RateLimited);
}

#[test]
fn recorded_validation_errors_are_invalid_requests() {
    for (name, body) in [
        (
            "error_400_invalid_model_identifier.json",
            fixture!("error_400_invalid_model_identifier.json"),
        ),
        (
            "error_400_converse_stream_invalid_model_identifier.json",
            fixture!("error_400_converse_stream_invalid_model_identifier.json"),
        ),
        (
            "error_400_anthropic_schema_validation.json",
            fixture!("error_400_anthropic_schema_validation.json"),
        ),
        (
            "error_400_count_tokens_unsupported_model.json",
            fixture!("error_400_count_tokens_unsupported_model.json"),
        ),
    ] {
        for headers in [HeaderMap::new(), typed("ValidationException")] {
            let e = decode(400, &headers, body);
            assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{name}");
            assert_eq!(e.fault(), Fault::Request, "{name}");
            assert!(!e.message().is_empty());
            assert!(e.body_snippet().is_some());
        }
    }
    let e = decode(
        400,
        &typed("ValidationException"),
        fixture!("error_400_anthropic_schema_validation.json"),
    );
    assert!(
        e.message()
            .starts_with("tools.0: Input tag 'web_search_20250305'"),
        "{e}"
    );
}

#[test]
fn recorded_denials_are_the_keys_fault() {
    let e = decode(
        403,
        &HeaderMap::new(),
        fixture!("error_403_api_key_invalid_format.json"),
    );
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert_eq!(
        e.message(),
        "Invalid API Key format: Must start with pre-defined prefix"
    );
    let e = decode(
        403,
        &typed("AccessDeniedException"),
        fixture!("error_403_iam_explicit_deny.json"),
    );
    assert_eq!(e.kind(), ErrorKind::Auth);
    // An IAM policy denying this model: the key keeps its other models.
    assert_eq!(e.fault(), Fault::KeyOnTarget);
    assert!(
        e.message()
            .contains("bedrock:InvokeModelWithResponseStream")
    );
    // The same denial without a type header or `__type`: the status decides, alike.
    let e = decode(
        403,
        &HeaderMap::new(),
        br#"{"Message":"User: arn:aws:iam::123456789012:user/relay is not authorized to perform: bedrock:InvokeModel"}"#,
    );
    assert_eq!((e.kind(), e.fault()), (ErrorKind::Auth, Fault::KeyOnTarget));
    for ty in [
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
    ] {
        let e = decode(
            403,
            &typed(ty),
            br#"{"message":"The security token included in the request is invalid."}"#,
        );
        assert_eq!((e.kind(), e.fault()), (ErrorKind::Auth, Fault::Key), "{ty}");
        assert!(!e.is_retryable());
    }
}

#[test]
fn the_type_comes_from_the_header_or_the_body() {
    let cases = [
        (
            503,
            "ServiceUnavailableException",
            ErrorKind::Overloaded,
            true,
        ),
        (429, "ModelNotReadyException", ErrorKind::Overloaded, true),
        (500, "InternalServerException", ErrorKind::Server, true),
        (424, "ModelErrorException", ErrorKind::Server, true),
        (424, "ModelStreamErrorException", ErrorKind::Server, true),
        (408, "ModelTimeoutException", ErrorKind::Timeout, true),
        (404, "ResourceNotFoundException", ErrorKind::NotFound, false),
        (
            400,
            "ServiceQuotaExceededException",
            ErrorKind::QuotaExhausted,
            false,
        ),
        (400, "ConflictException", ErrorKind::InvalidRequest, false),
    ];
    for (status, ty, kind, retryable) in cases {
        let from_header = decode(status, &typed(ty), br#"{"message":"m"}"#);
        let body = json!({"__type": format!("com.amazon.coral.service#{ty}"), "Message": "m"});
        let from_body = decode(status, &HeaderMap::new(), body.to_string().as_bytes());
        for e in [from_header, from_body] {
            assert_eq!(e.kind(), kind, "{ty}");
            assert_eq!(e.is_retryable(), retryable, "{ty}");
            assert_eq!(e.code(), Some(ty));
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.message(), "m");
        }
    }
    // Statuses alone.
    assert_eq!(
        decode(503, &HeaderMap::new(), b"").kind(),
        ErrorKind::Overloaded
    );
    assert_eq!(
        decode(424, &HeaderMap::new(), b"").kind(),
        ErrorKind::Server
    );
    assert_eq!(
        decode(502, &HeaderMap::new(), b"<html>").kind(),
        ErrorKind::Server
    );
}

#[test]
fn too_long_inputs_go_to_the_context_overflow_rule() {
    for msg in [
        "Input is too long for requested model.",
        "prompt is too long: 215000 tokens > 200000 maximum",
        "The model's maximum context length is 8192 tokens.",
    ] {
        let body = json!({"message": msg}).to_string();
        let e = decode(400, &typed("ValidationException"), body.as_bytes());
        assert_eq!(e.kind(), ErrorKind::ContextLengthExceeded, "{msg}");
    }
}

#[test]
fn on_demand_refusals_name_the_profile_to_use() {
    let body = json!({"message": "Invocation of model ID anthropic.claude-sonnet-4-5-20250929-v1:0 with on-demand throughput isn\u{2019}t supported. Retry your request with the ID or ARN of an inference profile that contains this model."}).to_string();
    for (region, prefix) in [
        ("us-west-2", "us."),
        ("eu-central-1", "eu."),
        ("ap-northeast-1", "apac."),
    ] {
        let e = decode_in(region, 400, &typed("ValidationException"), body.as_bytes());
        assert_eq!(e.kind(), ErrorKind::Config, "{region}");
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.code(), Some("ValidationException"));
        let want = format!("{prefix}anthropic.claude-sonnet-4-5-20250929-v1:0");
        assert!(e.message().contains(&want), "{region}: {e}");
        assert!(
            e.message().starts_with("Invocation of model ID"),
            "keeps Bedrock's words"
        );
    }
}

#[test]
fn the_key_is_redacted_from_errors() {
    let key = ApiKey::new("ABSKsecretkey");
    let e = Bedrock::new("us-east-1", AwsAuth::unsigned())
        .codec()
        .decode_error(
            403,
            &HeaderMap::new(),
            br#"{"Message":"Invalid API Key ABSKsecretkey"}"#,
            &Redactor::new(&key),
        );
    assert!(!format!("{e} {e:?}").contains("ABSKsecretkey"));
}
