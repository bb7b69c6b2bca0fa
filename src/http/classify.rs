//! Vendor error responses → [`Error`] with a kind. The one place that reads vendor error
//! codes and messages; everything downstream decides from [`ErrorKind`].

use reqwest::header::HeaderMap;
use serde_json::Value;

use super::{ratelimit, retry_after};
use crate::types::{Error, ErrorKind, Fault};

/// The fields an error body may carry, whatever its vendor's shape.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct VendorError {
    pub message: Option<String>,
    /// `code` (string or integer) or, failing that, `type`.
    pub code: Option<String>,
    /// `type` (OpenAI, Anthropic) or `status` (Google).
    pub error_type: Option<String>,
    pub request_id: Option<String>,
    /// Google `RetryInfo.retryDelay`.
    pub retry_delay: Option<std::time::Duration>,
    /// Google `QuotaFailure` names a per-day quota: waiting will not help today.
    pub daily_quota: bool,
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Extracts the fields of a vendor error body. Shapes handled: OpenAI `{"error":{message,type,
/// code,param}}` (code string, integer or null), `{"error":"text"}`, Mistral/vLLM top-level
/// `{"object":"error",message,type,code}` (message may be an object), `{"message":…}`,
/// Anthropic `{"type":"error","error":{type,message},"request_id"}`, Google `google.rpc.Status`
/// with `details`, OpenRouter `{"error":{code:int,message,metadata:{raw}}}`.
pub(crate) fn parse_error_body(body: &[u8]) -> VendorError {
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return VendorError {
            message: (!text.is_empty()).then_some(text),
            ..VendorError::default()
        };
    };
    // Google streams errors as a one-element array.
    let root = match root {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let err = match root.get("error") {
        Some(e @ Value::Object(_)) => e,
        Some(Value::String(s)) => {
            return VendorError {
                message: Some(s.clone()),
                request_id: scalar(root.get("request_id")),
                ..VendorError::default()
            };
        }
        _ => &root,
    };
    let mut message = match err.get("message") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    // OpenRouter wraps the upstream's words in metadata.raw.
    if let Some(raw) = err.pointer("/metadata/raw").and_then(Value::as_str) {
        message = Some(match message {
            Some(m) => format!("{m}: {raw}"),
            None => raw.to_owned(),
        });
    }
    let error_type = scalar(err.get("type")).or_else(|| scalar(err.get("status")));
    let code = scalar(err.get("code"))
        // A code in the HTTP status range only repeats the status; others ("1300") are real.
        .filter(|c| !c.parse::<u16>().is_ok_and(|n| (100..600).contains(&n)))
        .or_else(|| error_type.clone());
    let mut out = VendorError {
        message,
        code,
        error_type,
        request_id: scalar(root.get("request_id")),
        ..VendorError::default()
    };
    if let Some(details) = err.get("details").and_then(Value::as_array) {
        for d in details {
            let ty = d.get("@type").and_then(Value::as_str).unwrap_or("");
            if ty.ends_with("google.rpc.RetryInfo") {
                out.retry_delay = d
                    .get("retryDelay")
                    .and_then(Value::as_str)
                    .and_then(retry_after::parse_duration_str);
            } else if ty.ends_with("google.rpc.QuotaFailure") {
                out.daily_quota |=
                    d.get("violations")
                        .and_then(Value::as_array)
                        .is_some_and(|vs| {
                            vs.iter().any(|v| {
                                v.get("quotaId")
                                    .and_then(Value::as_str)
                                    .is_some_and(|q| q.contains("PerDay"))
                            })
                        });
            }
        }
    }
    out
}

const CONTEXT_HINTS: &[&str] = &[
    "context length",
    "context_length",
    "context window",
    "maximum context",
    "prompt is too long",
    "input is too long",
    "too many tokens",
    "reduce the length",
    "exceeds the maximum number of tokens",
    "input token count",
];

const CONTENT_FILTER_CODES: &[&str] = &[
    "content_filter",
    "content_policy_violation",
    "responsibleaipolicyviolation",
    "moderation_blocked",
    "safety",
];

/// The kind of an HTTP error response.
pub(crate) fn kind_for(status: u16, v: &VendorError) -> ErrorKind {
    let code = v.code.as_deref().unwrap_or("").to_ascii_lowercase();
    let ty = v.error_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let msg = v.message.as_deref().unwrap_or("").to_ascii_lowercase();
    let says = |needle: &str| code == needle || ty == needle;
    // Anthropic answers an exhausted prepaid balance with a plain 400.
    let billing = msg.contains("credit balance is too low") || msg.contains("insufficient balance");
    if says("insufficient_quota")
        || says("billing_hard_limit_reached")
        || says("billing_error")
        || billing
        || v.daily_quota
    {
        return ErrorKind::QuotaExhausted;
    }
    if says("context_length_exceeded") || CONTEXT_HINTS.iter().any(|h| msg.contains(h)) {
        // vLLM and others answer an over-long prompt with a generic 400.
        if (400..500).contains(&status) {
            return ErrorKind::ContextLengthExceeded;
        }
    }
    if CONTENT_FILTER_CODES.iter().any(|c| says(c)) {
        return ErrorKind::ContentFiltered;
    }
    match status {
        401 | 403 => ErrorKind::Auth,
        402 => ErrorKind::QuotaExhausted,
        413 => ErrorKind::RequestTooLarge,
        404 => ErrorKind::NotFound,
        408 => ErrorKind::Timeout,
        // A single request above the key's per-minute token limit never fits: retrying is
        // futile, and it is the request's size, not the key, that is wrong.
        429 if msg.starts_with("request too large") => ErrorKind::RequestTooLarge,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        409 | 425 | 500..=599 => {
            if says("overloaded_error") {
                ErrorKind::Overloaded
            } else {
                ErrorKind::Server
            }
        }
        _ if says("overloaded_error") => ErrorKind::Overloaded,
        _ if says("rate_limit_error") || says("rate_limit_exceeded") => ErrorKind::RateLimited,
        _ => ErrorKind::InvalidRequest,
    }
}

/// Codes vendors use for a key that is wrong, not merely forbidden a model.
const INVALID_KEY_CODES: &[&str] = &[
    "invalid_api_key",
    "api_key_invalid",
    "authentication_error",
    "unauthenticated",
    "invalid_key",
];

/// Whose fault an error of `kind` is, when the status and the vendor's words say more than
/// the kind ([`Fault::of_kind`] otherwise): a 403 that names no invalid key is the key's on
/// this model only (OpenAI's "does not have access to model", Anthropic's
/// `permission_error`, Google's `PERMISSION_DENIED`), so the key keeps serving its other
/// models.
pub(crate) fn fault_for(kind: ErrorKind, status: Option<u16>, v: &VendorError) -> Option<Fault> {
    if kind != ErrorKind::Auth || status != Some(403) {
        return None;
    }
    let code = v.code.as_deref().unwrap_or("").to_ascii_lowercase();
    let ty = v.error_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let invalid = INVALID_KEY_CODES.iter().any(|c| code == *c || ty == *c);
    Some(if invalid {
        Fault::Key
    } else {
        Fault::KeyOnTarget
    })
}

/// Reads the vendor's request id from the usual headers.
pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-request-id", "request-id", "x-goog-request-id"]
        .iter()
        .find_map(|h| headers.get(*h)?.to_str().ok())
        .map(str::to_owned)
}

/// Builds the error for a non-success HTTP response.
pub(crate) fn http_error(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let v = parse_error_body(body);
    let kind = kind_for(status, &v);
    error_from_vendor(kind, v, Some(status), headers, body, redact)
}

/// Builds an error of `kind` from parsed vendor fields (also used for in-stream errors).
pub(crate) fn error_from_vendor(
    kind: ErrorKind,
    v: VendorError,
    status: Option<u16>,
    headers: &HeaderMap,
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let fault = fault_for(kind, status, &v);
    let message = v
        .message
        .as_deref()
        .map(redact)
        .unwrap_or_else(|| match status {
            Some(s) => format!("HTTP {s} with no error message"),
            None => "error with no message".to_owned(),
        });
    let mut e = Error::new(kind, message).with_body(&redact(&String::from_utf8_lossy(body)));
    if let Some(s) = status {
        e = e.with_status(s);
    }
    if let Some(c) = v.code {
        e = e.with_code(c);
    }
    if let Some(t) = v.error_type {
        e = e.with_error_type(t);
    }
    if let Some(id) = v.request_id.or_else(|| request_id(headers)) {
        e = e.with_request_id(id);
    }
    if let Some(after) = retry_after::from_headers(headers).or(v.retry_delay) {
        e = e.with_retry_after(after);
    }
    if let Some(f) = fault {
        e = e.with_fault(f);
    }
    // Kept only when the vendor sent some (`with_rate_limit` drops an empty one).
    e.with_rate_limit(ratelimit::rate_limit_info(headers))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(status: u16, body: &str) -> ErrorKind {
        kind_for(status, &parse_error_body(body.as_bytes()))
    }

    #[test]
    fn shapes_and_kinds() {
        assert_eq!(
            kind(
                429,
                r#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#
            ),
            ErrorKind::QuotaExhausted
        );
        assert_eq!(
            kind(429, r#"{"message":"Requests rate limit exceeded"}"#),
            ErrorKind::RateLimited
        );
        assert_eq!(
            kind(
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            ErrorKind::Overloaded
        );
        assert_eq!(
            kind(
                400,
                r#"{"error":{"message":"x","code":"context_length_exceeded"}}"#
            ),
            ErrorKind::ContextLengthExceeded
        );
        assert_eq!(kind(400, "not json at all"), ErrorKind::InvalidRequest);
        assert_eq!(kind(502, ""), ErrorKind::Server);
        assert_eq!(
            kind(
                429,
                r#"{"error":{"message":"Request too large for gpt-4o in organization org-x on tokens per min (TPM): Limit 30000, Requested 50000.","type":"tokens","code":"rate_limit_exceeded"}}"#
            ),
            ErrorKind::RequestTooLarge
        );
        assert_eq!(kind(413, "too big"), ErrorKind::RequestTooLarge);
        let v = parse_error_body(br#"{"object":"error","message":{"detail":[1]},"type":"invalid_request_error","code":null}"#);
        assert_eq!(v.message.as_deref(), Some(r#"{"detail":[1]}"#));
        assert_eq!(v.code.as_deref(), Some("invalid_request_error"));
        let v = parse_error_body(br#"{"error":{"code":429,"message":"Provider returned error","metadata":{"raw":"upstream busy"}}}"#);
        assert_eq!(
            v.message.as_deref(),
            Some("Provider returned error: upstream busy")
        );
        assert_eq!(v.code, None);
    }

    #[test]
    fn a_403_is_the_keys_fault_on_this_model_unless_the_key_is_invalid() {
        let fault = |status: u16, body: &str| {
            let v = parse_error_body(body.as_bytes());
            let k = kind_for(status, &v);
            fault_for(k, Some(status), &v).unwrap_or_else(|| Fault::of_kind(k))
        };
        let no_access = r#"{"error":{"message":"The model `gpt-5` does not exist or you do not have access to it.","type":"invalid_request_error","code":"model_not_found"}}"#;
        assert_eq!(fault(403, no_access), Fault::KeyOnTarget);
        assert_eq!(
            fault(
                403,
                r#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#
            ),
            Fault::KeyOnTarget
        );
        assert_eq!(
            fault(
                403,
                r#"{"error":{"message":"bad","code":"invalid_api_key"}}"#
            ),
            Fault::Key
        );
        assert_eq!(fault(401, r#"{"error":{"message":"bad key"}}"#), Fault::Key);
        assert_eq!(
            fault(
                429,
                r#"{"error":{"message":"Request too large for gpt-4o"}}"#
            ),
            Fault::Request
        );
        assert_eq!(
            fault(429, r#"{"error":{"message":"slow down"}}"#),
            Fault::Key
        );
        assert_eq!(fault(503, ""), Fault::Vendor);
    }
}
