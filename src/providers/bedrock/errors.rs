//! Bedrock's errors: `{"message"}` (or IAM's `{"Message"}`) bodies, the type in the
//! `x-amzn-ErrorType` header or the body's `__type`, mapped to whose fault they are.

use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::http::classify::{self, VendorError};
use crate::types::{Error, ErrorKind, Fault};

/// Words of a `ValidationException` that says the prompt does not fit the model.
const CONTEXT_HINTS: &[&str] = &[
    "too long",
    "maximum context",
    "context length",
    "context window",
    "too many input tokens",
    "exceeds the maximum number of tokens",
];

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireError {
    message: Option<String>,
    #[serde(rename = "Message")]
    message_cap: Option<String>,
    #[serde(rename = "errorMessage")]
    error_message: Option<String>,
    #[serde(rename = "__type")]
    kind: Option<String>,
    code: Option<String>,
    /// A `modelStreamErrorException`'s model status and words.
    #[serde(rename = "originalStatusCode")]
    original_status: Option<u16>,
    #[serde(rename = "originalMessage")]
    original_message: Option<String>,
}

/// An AWS error type as smithy-rs reads it: everything from `:` cut off, and the namespace
/// up to `#` (`com.amazon.coral.service#ThrottlingException`).
fn error_type(raw: &str) -> &str {
    let raw = raw.split(':').next().unwrap_or(raw);
    raw.rsplit('#').next().unwrap_or(raw).trim()
}

/// The profile prefix for `region` (`us-*` → `us.`, `eu-*` → `eu.`, `ap-*` → `apac.`…).
pub(crate) fn profile_prefix(region: &str) -> &'static str {
    let family = region.split('-').next().unwrap_or("");
    match family {
        "eu" => "eu.",
        "ap" => "apac.",
        "ca" => "ca.",
        _ if region.starts_with("us-gov") => "us-gov.",
        _ => "us.",
    }
}

/// What Bedrock said: type, message, request id.
struct Said {
    ty: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

fn read(headers: &HeaderMap, body: &[u8]) -> Said {
    let wire: WireError = serde_json::from_slice(body).unwrap_or_default();
    let header = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(error_type);
    let ty = header
        .or(wire.kind.as_deref().map(error_type))
        .or(wire.code.as_deref().map(error_type))
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let mut message = wire
        .message
        .or(wire.message_cap)
        .or(wire.error_message)
        .or_else(|| {
            let text = String::from_utf8_lossy(body).trim().to_owned();
            (!text.is_empty() && !text.starts_with('{')).then_some(text)
        });
    if let Some(orig) = wire.original_message.filter(|m| !m.is_empty()) {
        let status = wire
            .original_status
            .map(|s| format!(" (model status {s})"))
            .unwrap_or_default();
        message = Some(match message {
            Some(m) => format!("{m}: {orig}{status}"),
            None => format!("{orig}{status}"),
        });
    }
    let request_id = headers
        .get("x-amzn-requestid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    Said {
        ty,
        message,
        request_id,
    }
}

/// The kind and fault of an error: its type first, the status when the type says nothing.
fn classify(status: u16, ty: &str, msg: &str) -> (ErrorKind, Option<Fault>) {
    let lower = msg.to_ascii_lowercase();
    let ty_l = ty.to_ascii_lowercase();
    let key_words = lower.contains("api key")
        || lower.contains("signature")
        || lower.contains("security token")
        || lower.contains("credential");
    // An IAM policy that denies this model or action: the key keeps its other uses.
    let denied = if !key_words && lower.contains("not authorized to perform") {
        (ErrorKind::Auth, Some(Fault::KeyOnTarget))
    } else {
        (ErrorKind::Auth, Some(Fault::Key))
    };
    match ty_l.as_str() {
        "throttlingexception" | "toomanyrequestsexception" => (ErrorKind::RateLimited, None),
        "modelnotreadyexception" | "serviceunavailableexception" => (ErrorKind::Overloaded, None),
        "internalserverexception" | "internalfailure" => (ErrorKind::Server, None),
        "modelerrorexception" | "modelstreamerrorexception" => (ErrorKind::Server, None),
        "modeltimeoutexception" => (ErrorKind::Timeout, None),
        "servicequotaexceededexception" => (ErrorKind::QuotaExhausted, None),
        "resourcenotfoundexception" => (ErrorKind::NotFound, None),
        "unrecognizedclientexception"
        | "invalidsignatureexception"
        | "incompletesignatureexception"
        | "expiredtokenexception"
        | "missingauthenticationtokenexception" => (ErrorKind::Auth, Some(Fault::Key)),
        "accessdeniedexception" => denied,
        "validationexception" if CONTEXT_HINTS.iter().any(|h| lower.contains(h)) => {
            (ErrorKind::ContextLengthExceeded, None)
        }
        "validationexception" | "conflictexception" => (ErrorKind::InvalidRequest, None),
        _ => match status {
            429 => (ErrorKind::RateLimited, None),
            503 => (ErrorKind::Overloaded, None),
            424 | 500..=599 => (ErrorKind::Server, None),
            408 => (ErrorKind::Timeout, None),
            404 => (ErrorKind::NotFound, None),
            401 => (ErrorKind::Auth, Some(Fault::Key)),
            403 => denied,
            400..=499 if CONTEXT_HINTS.iter().any(|h| lower.contains(h)) => {
                (ErrorKind::ContextLengthExceeded, None)
            }
            _ => {
                let v = VendorError {
                    message: Some(msg.to_owned()),
                    ..VendorError::default()
                };
                (classify::kind_for(status, &v), None)
            }
        },
    }
}

/// The model id an on-demand refusal names ("Invocation of model ID {id} with on-demand
/// throughput isn’t supported…").
fn refused_model(msg: &str) -> Option<&str> {
    let (_, rest) = msg.split_once("model ID ")?;
    let id = rest.split_whitespace().next()?.trim_end_matches(['.', ',']);
    (!id.is_empty()).then_some(id)
}

/// The error of a failed Bedrock call (`status` `None` for an error inside a stream, whose
/// type then decides alone). `region` picks the inference profile named when Bedrock
/// refuses a bare model id on demand.
pub(crate) fn decode_error(
    status: Option<u16>,
    headers: &HeaderMap,
    body: &[u8],
    region: &str,
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let said = read(headers, body);
    let ty = said.ty.clone().unwrap_or_default();
    let msg = said.message.clone().unwrap_or_default();
    let nominal = status.unwrap_or(match ty.to_ascii_lowercase().as_str() {
        "throttlingexception" => 429,
        "serviceunavailableexception" => 503,
        "modelstreamerrorexception" | "modelerrorexception" => 424,
        "validationexception" => 400,
        "modeltimeoutexception" => 408,
        _ => 500,
    });
    let (mut kind, fault) = classify(nominal, &ty, &msg);
    let mut message = said.message;
    let lower = msg.to_ascii_lowercase();
    if kind == ErrorKind::InvalidRequest
        && lower.contains("on-demand throughput")
        && lower.contains("inference profile")
    {
        kind = ErrorKind::Config;
        let prefix = profile_prefix(region);
        message = Some(match refused_model(&msg) {
            Some(model) => format!(
                "{msg} (Bedrock serves {model} only through an inference profile here: use \
                 the model id {prefix}{model}, or global.{model} where it is offered)"
            ),
            None => format!(
                "{msg} (use an inference profile id: the model id with the {prefix} prefix)"
            ),
        });
    }
    let v = VendorError {
        message,
        code: said.ty.clone(),
        error_type: said.ty,
        request_id: said.request_id,
        ..VendorError::default()
    };
    let e = classify::error_from_vendor(kind, v, status, headers, body, redact);
    match fault {
        Some(f) => e.with_fault(f),
        None => e,
    }
}
