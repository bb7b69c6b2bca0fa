//! Vendor error responses → [`Error`] with a kind. The one place that reads vendor error
//! codes and messages; everything downstream decides from [`ErrorKind`].

use reqwest::header::{HeaderMap, HeaderName};
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
///
/// The common shapes decode straight into borrowed fields ([`wire::Top`]); a body that does
/// not fit them (a duplicate key, a `details` that is not a list…) is read again as a
/// `serde_json::Value` by the general rules, so both paths give the same fields.
pub(crate) fn parse_error_body(body: &[u8]) -> VendorError {
    if let Ok(top) = serde_json::from_slice::<wire::Top<'_>>(body)
        && let Some(v) = top.into_vendor()
    {
        return v;
    }
    let Ok(root) = serde_json::from_slice::<Value>(body) else {
        let text = String::from_utf8_lossy(body).trim().to_owned();
        return VendorError {
            message: (!text.is_empty()).then_some(text),
            ..VendorError::default()
        };
    };
    from_value(root)
}

/// The general rules over a parsed body (any JSON).
fn from_value(root: Value) -> VendorError {
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
    let message = match err.get("message") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let mut out = fields(
        message,
        scalar(err.get("type")),
        scalar(err.get("status")),
        scalar(err.get("code")),
        scalar(root.get("request_id")),
    );
    extras(&mut out, err.get("metadata"), err.get("details"));
    out
}

/// Assembles the scalar fields: `code` falls back to the type, the type to `status`.
fn fields(
    message: Option<String>,
    ty: Option<String>,
    status: Option<String>,
    code: Option<String>,
    request_id: Option<String>,
) -> VendorError {
    let error_type = ty.or(status);
    let code = code
        // A code in the HTTP status range only repeats the status; others ("1300") are real.
        .filter(|c| !c.parse::<u16>().is_ok_and(|n| (100..600).contains(&n)))
        .or_else(|| error_type.clone());
    VendorError {
        message,
        code,
        error_type,
        request_id,
        ..VendorError::default()
    }
}

/// OpenRouter's `metadata.raw` (the upstream's words, appended to the message) and Google's
/// `details` (retry delay, a per-day quota).
fn extras(out: &mut VendorError, metadata: Option<&Value>, details: Option<&Value>) {
    if let Some(raw) = metadata.and_then(|m| m.get("raw")).and_then(Value::as_str) {
        out.message = Some(match out.message.take() {
            Some(m) => format!("{m}: {raw}"),
            None => raw.to_owned(),
        });
    }
    if let Some(details) = details.and_then(Value::as_array) {
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
}

/// The typed reading of an error body: borrowed strings, only the keys the rules read, and
/// the rare nested parts (`metadata`, `details`) kept as `Value`s for the general rules.
mod wire {
    use std::borrow::Cow;
    use std::fmt;

    use serde::Deserialize;
    use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
    use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
    use serde_json::{Number, Value};

    use super::{VendorError, extras, fields};

    /// The visitor methods of the values read as `$v` (booleans, numbers, `null`).
    macro_rules! others_are {
        ($v:expr) => {
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok($v)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok($v)
            }
        };
    }

    /// The root: an object, or Google's list whose first element is one. `None` for any
    /// other root, which the general rules read.
    pub(super) struct Top<'a>(Option<Obj<'a>>);

    /// An object: the root, or the `error` object inside it (which reads the same keys; its
    /// own `error` and `request_id` go unused).
    #[derive(Deserialize)]
    pub(super) struct Obj<'a> {
        #[serde(default, borrow)]
        error: ErrorField<'a>,
        #[serde(default, borrow)]
        message: Option<Message<'a>>,
        #[serde(default, borrow, rename = "type")]
        ty: Scalar<'a>,
        #[serde(default, borrow)]
        status: Scalar<'a>,
        #[serde(default, borrow)]
        code: Scalar<'a>,
        #[serde(default, borrow)]
        request_id: Scalar<'a>,
        #[serde(default)]
        metadata: Option<Value>,
        #[serde(default)]
        details: Option<Value>,
    }

    impl Top<'_> {
        /// The fields, as [`super::from_value`] reads them; `None` when the root is no object.
        pub(super) fn into_vendor(self) -> Option<VendorError> {
            let mut root = self.0?;
            let request_id = std::mem::take(&mut root.request_id).into_string();
            let error = std::mem::take(&mut root.error);
            let err = match error {
                ErrorField::Object(e) => *e,
                ErrorField::Text(s) => {
                    return Some(VendorError {
                        message: Some(s.into_owned()),
                        request_id,
                        ..VendorError::default()
                    });
                }
                ErrorField::Other => root,
            };
            let message = err.message.map(|m| match m {
                Message::Text(s) => s.into_owned(),
                Message::Other(v) => v.to_string(),
            });
            let mut out = fields(
                message,
                err.ty.into_string(),
                err.status.into_string(),
                err.code.into_string(),
                request_id,
            );
            extras(&mut out, err.metadata.as_ref(), err.details.as_ref());
            Some(out)
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(RootVisitor { list: true })
        }
    }

    /// The first element of a root list: an object, else `None` (the value skipped).
    struct First<'a>(Top<'a>);

    impl<'de: 'a, 'a> Deserialize<'de> for First<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(RootVisitor { list: false }).map(First)
        }
    }

    /// Reads an object; a list (when `list`, the root) by its first element; anything else
    /// as `None`.
    struct RootVisitor {
        list: bool,
    }

    impl<'de> Visitor<'de> for RootVisitor {
        type Value = Top<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an error body")
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top<'de>, A::Error> {
            Obj::deserialize(MapAccessDeserializer::new(map)).map(|o| Top(Some(o)))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
            let first = if self.list {
                seq.next_element::<First<'de>>()?.and_then(|f| f.0.0)
            } else {
                None
            };
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Top(first))
        }
        others_are!(Top(None));
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(Top(None))
        }
    }

    /// `error`: an object, a string, or anything else (then the root holds the fields).
    #[derive(Default)]
    enum ErrorField<'a> {
        Object(Box<Obj<'a>>),
        Text(Cow<'a, str>),
        #[default]
        Other,
    }

    impl<'de: 'a, 'a> Deserialize<'de> for ErrorField<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = ErrorField<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("an error object or text")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                    let o = Obj::deserialize(MapAccessDeserializer::new(map))?;
                    Ok(ErrorField::Object(Box::new(o)))
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                    Ok(ErrorField::Text(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                    Ok(ErrorField::Text(Cow::Owned(s.to_owned())))
                }
                fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                    Ok(ErrorField::Text(Cow::Owned(s)))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(ErrorField::Other)
                }
                others_are!(ErrorField::Other);
            }
            d.deserialize_any(V)
        }
    }

    /// `message`: text, or any other value (kept as JSON text). `null` is `None` around it.
    enum Message<'a> {
        Text(Cow<'a, str>),
        Other(Value),
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Message<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Message<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a message")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                    Ok(Message::Text(Cow::Borrowed(s)))
                }
                fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                    Ok(Message::Text(Cow::Owned(s.to_owned())))
                }
                fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                    Ok(Message::Text(Cow::Owned(s)))
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                    Value::deserialize(MapAccessDeserializer::new(map)).map(Message::Other)
                }
                fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                    Value::deserialize(SeqAccessDeserializer::new(seq)).map(Message::Other)
                }
                fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
                    Ok(Message::Other(Value::Bool(b)))
                }
                fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                    Ok(Message::Other(Value::Number(n.into())))
                }
                fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                    Ok(Message::Other(Value::Number(n.into())))
                }
                fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                    Ok(Message::Other(
                        Number::from_f64(n).map_or(Value::Null, Value::Number),
                    ))
                }
            }
            d.deserialize_any(V)
        }
    }

    /// A string (non-empty) or a number, as text; any other value is `None`.
    #[derive(Default)]
    struct Scalar<'a>(Option<Cow<'a, str>>);

    impl Scalar<'_> {
        fn into_string(self) -> Option<String> {
            self.0.map(Cow::into_owned)
        }
    }

    impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string or a number")
                }
                fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
                    Ok(Scalar((!s.is_empty()).then_some(Cow::Borrowed(s))))
                }
                fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
                    Ok(Scalar((!s.is_empty()).then(|| Cow::Owned(s.to_owned()))))
                }
                fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
                    Ok(Scalar((!s.is_empty()).then_some(Cow::Owned(s))))
                }
                fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                    Ok(Scalar(Some(Cow::Owned(Number::from(n).to_string()))))
                }
                fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                    Ok(Scalar(Some(Cow::Owned(Number::from(n).to_string()))))
                }
                fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
                    Ok(Scalar(
                        Number::from_f64(n).map(|n| Cow::Owned(n.to_string())),
                    ))
                }
                fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                    Ok(Scalar(None))
                }
                fn visit_unit<E>(self) -> Result<Self::Value, E> {
                    Ok(Scalar(None))
                }
                fn visit_none<E>(self) -> Result<Self::Value, E> {
                    Ok(Scalar(None))
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    Ok(Scalar(None))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                    while seq.next_element::<IgnoredAny>()?.is_some() {}
                    Ok(Scalar(None))
                }
            }
            d.deserialize_any(V)
        }
    }
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
    let code = v.code.as_deref().unwrap_or("");
    let ty = v.error_type.as_deref().unwrap_or("");
    let msg = v.message.as_deref().unwrap_or("").to_ascii_lowercase();
    // Every needle is lower case, so this is `code.to_ascii_lowercase() == needle`.
    let says = |needle: &str| code.eq_ignore_ascii_case(needle) || ty.eq_ignore_ascii_case(needle);
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
    // vLLM and others answer an over-long prompt with a generic 400 (the message is searched
    // only for a 4xx, the one status it can decide).
    if (400..500).contains(&status)
        && (says("context_length_exceeded") || CONTEXT_HINTS.iter().any(|h| msg.contains(h)))
    {
        return ErrorKind::ContextLengthExceeded;
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
    // Constant names: a lookup by `&str` would parse the name on every call.
    static NAMES: [HeaderName; 4] = [
        HeaderName::from_static("x-request-id"),
        HeaderName::from_static("request-id"),
        HeaderName::from_static("x-goog-request-id"),
        // Bedrock.
        HeaderName::from_static("x-amzn-requestid"),
    ];
    NAMES
        .iter()
        .find_map(|h| headers.get(h)?.to_str().ok())
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

/// `body` as text, as [`String::from_utf8_lossy`] reads it; a valid body (the usual one)
/// is checked with the faster `from_utf8` and borrowed.
fn body_text(body: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(body) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(body),
    }
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
    let mut e = Error::new(kind, message).with_body(&redact(&body_text(body)));
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

    /// The typed reading gives the fields the general rules give, for every shape either
    /// path can meet (and leaves to them what it does not read).
    #[test]
    fn the_typed_reading_matches_the_general_rules() {
        let bodies = [
            r#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota","param":null}}"#,
            r#"{"error":{"message":"x","type":"server_error","code":null},"request_id":"req_1"}"#,
            r#"{"error":"plain text","request_id":42}"#,
            r#"{"error":"","request_id":""}"#,
            r#"{"error":null,"message":"top","type":"t","code":1300}"#,
            r#"{"error":[1,2],"message":"top","status":"UNAVAILABLE"}"#,
            r#"{"error":7,"message":null,"code":-3}"#,
            r#"{"object":"error","message":{"detail":[1]},"type":"invalid_request_error","code":null}"#,
            r#"{"message":[1,{"b":2,"a":1}],"code":2.5}"#,
            r#"{"message":true,"code":1e3,"type":{"x":1}}"#,
            r#"{"message":12,"type":[],"status":false}"#,
            r#"{"message":"Requests rate limit exceeded"}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_a"}"#,
            r#"{"error":{"code":429,"message":"Provider returned error","metadata":{"raw":"upstream busy"}}}"#,
            r#"{"error":{"code":400,"metadata":{"raw":"only raw"}}}"#,
            r#"{"error":{"message":"m","metadata":["raw"]}}"#,
            r#"{"error":{"message":"m","metadata":{"raw":5}}}"#,
            r#"[{"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"12s"},{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":"GenerateRequestsPerDayPerProject"}]}]}}]"#,
            r#"{"error":{"details":[1,{"@type":5},{"@type":"google.rpc.RetryInfo","retryDelay":3}],"message":"d"}}"#,
            r#"{"error":{"details":{"@type":"google.rpc.RetryInfo"},"message":"d"}}"#,
            r#"[["nested"],{"error":"second"}]"#,
            r#"[]"#,
            r#"["text"]"#,
            r#"[{"message":"first"},{"message":"second"}]"#,
            r#""just a string""#,
            r#"12"#,
            r#"null"#,
            r#"{"error":{"message":"a","message":"b"}}"#,
            r#"{"message":"a","message":"b"}"#,
            r#"{"error":{"message":"esc\u00e9\n","type":"t\"q","code":"c\/d"},"request_id":"r\u0031"}"#,
            r#"{"error":{"error":{"message":"inner"},"message":"outer","request_id":"ignored"}}"#,
            r#"{"error":{"code":"503","type":"x"}}"#,
            r#"{"error":{"code":99,"status":"S"}}"#,
            r#"{}"#,
        ];
        for body in bodies {
            let root: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            assert_eq!(
                parse_error_body(body.as_bytes()),
                from_value(root),
                "{body}"
            );
        }
        // The vendors' shapes take the typed path (the general rules are the exception).
        for body in &bodies[..4] {
            let top = serde_json::from_str::<wire::Top<'_>>(body);
            assert!(
                top.ok().and_then(wire::Top::into_vendor).is_some(),
                "{body}"
            );
        }
        for body in [bodies[12], bodies[13], bodies[17], bodies[7]] {
            let top = serde_json::from_str::<wire::Top<'_>>(body);
            assert!(
                top.ok().and_then(wire::Top::into_vendor).is_some(),
                "{body}"
            );
        }
        // What is not JSON is the message, trimmed.
        assert_eq!(
            parse_error_body(b"  <html>bad gateway</html>\n")
                .message
                .as_deref(),
            Some("<html>bad gateway</html>")
        );
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

    #[test]
    fn request_ids_of_every_vendor() {
        for name in [
            "x-request-id",
            "request-id",
            "x-goog-request-id",
            "x-amzn-RequestId",
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                HeaderName::from_bytes(name.as_bytes()).expect("a header name"),
                reqwest::header::HeaderValue::from_static("id-1"),
            );
            assert_eq!(request_id(&h).as_deref(), Some("id-1"), "{name}");
        }
        assert_eq!(request_id(&HeaderMap::new()), None);
    }
}
