//! Google Vertex AI: the Gemini, Anthropic and OpenAI dialects on Vertex's paths, with
//! Vertex's `google.rpc.Status` errors (wrapped in a JSON array on the streaming paths), and
//! Google's OAuth token endpoint and GCE metadata server.

use std::marker::PhantomData;

use super::DEFAULT_TOKEN_LIFETIME;
use super::RecordedRequest;
use super::common::{Ending, Rendered, SimError, Speaker, ToolCall, js, model, pretty};
use super::gemini::error_json;

/// Vertex's layer over the vendor dialect `S`: `S`'s answers, Vertex's errors.
pub(crate) struct Vertex<S>(PhantomData<S>);

const JSON: &str = "application/json; charset=UTF-8";

/// Whether `request` is on one of Vertex's streaming paths, where errors come wrapped in a
/// JSON array.
fn streaming_path(request: &RecordedRequest) -> bool {
    let path = request.path.split('?').next().unwrap_or("");
    path.ends_with(":streamGenerateContent") || path.ends_with(":streamRawPredict")
}

/// A `google.rpc.Status` error as Vertex sends it on `request`'s path: pretty-printed, or
/// compact inside `[…]` on a streaming path. `details` is a JSON array, if any.
pub(crate) fn error_response(
    code: u16,
    status: &str,
    message: &str,
    details: Option<&str>,
    request: &RecordedRequest,
) -> Rendered {
    let error = error_json(code, status, message, details);
    let body = if streaming_path(request) {
        format!("[{error}]")
    } else {
        pretty(&error)
    };
    Rendered::fixed(code, JSON, body)
}

/// Vertex's error for `kind`; `None` for content policy (the vendor's blocked answer).
fn error_for(kind: SimError, request: &RecordedRequest) -> Option<Rendered> {
    let model = model(request);
    let (code, status, message, details) = match kind {
        SimError::RateLimited { retry_after_secs } => (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource exhausted. Please try again later. Please refer to https://cloud.google.com/vertex-ai/generative-ai/docs/error-code-429 for more details.".to_owned(),
            Some(format!(
                r#"[{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{retry_after_secs}s"}}]"#
            )),
        ),
        SimError::Overloaded => (
            503,
            "UNAVAILABLE",
            "The service is currently unavailable.".to_owned(),
            None,
        ),
        SimError::Server | SimError::ModelError => (
            500,
            "INTERNAL",
            "Internal error encountered.".to_owned(),
            None,
        ),
        SimError::Auth => (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.".to_owned(),
            Some(
                concat!(
                    r#"[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"ACCESS_TOKEN_EXPIRED","#,
                    r#""domain":"googleapis.com","metadata":{"service":"aiplatform.googleapis.com","#,
                    r#""method":"google.cloud.aiplatform.v1.PredictionService.GenerateContent"}}]"#
                )
                .to_owned(),
            ),
        ),
        SimError::QuotaExhausted => (
            403,
            "PERMISSION_DENIED",
            "This API method requires billing to be enabled. Please enable billing on project #polyrelay-sim by visiting https://console.developers.google.com/billing/enable?project=polyrelay-sim then retry.".to_owned(),
            Some(
                concat!(
                    r#"[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"BILLING_DISABLED","#,
                    r#""domain":"googleapis.com","metadata":{"service":"aiplatform.googleapis.com","consumer":"projects/polyrelay-sim"}}]"#
                )
                .to_owned(),
            ),
        ),
        SimError::ContextLength => (
            400,
            "INVALID_ARGUMENT",
            format!(
                "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576) for model {model}."
            ),
            None,
        ),
        SimError::ContentPolicy => return None,
        SimError::InvalidRequest => (
            400,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.".to_owned(),
            None,
        ),
    };
    Some(error_response(
        code,
        status,
        &message,
        details.as_deref(),
        request,
    ))
}

impl<S: Speaker> Speaker for Vertex<S> {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        S::text(text, request)
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        S::stream(pieces, ending, request)
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        S::tool(call, request)
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        S::tool_stream(call, request)
    }

    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered {
        error_for(kind, request).unwrap_or_else(|| S::error(kind, stream, request))
    }
}

/// Whether `path` (query ignored) is the GCE metadata server's token path,
/// `/computeMetadata/v1/instance/service-accounts/{account}/token`.
pub(crate) fn is_metadata_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    path.starts_with("/computeMetadata/v1/instance/service-accounts/") && path.ends_with("/token")
}

/// Whether `path` (query ignored) is an OAuth token endpoint: `/token` (oauth2.googleapis.com),
/// or a path ending in `/oauth2/token` or `/oauth2/v4/token` (the legacy ones).
pub(crate) fn is_token_path(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or("");
    path == "/token" || path.ends_with("/oauth2/token") || path.ends_with("/oauth2/v4/token")
}

/// The token made up for `request` when the reply names none: `ya29.sim-<seq>`.
fn made_up_token(request: &RecordedRequest) -> String {
    format!("ya29.sim-{}", request.seq)
}

/// An access token answer in the shape of the endpoint `request` went to: the metadata
/// server's `{access_token, expires_in, token_type}` with `metadata-flavor: Google`, or the
/// token endpoint's, which adds `scope`, with `cache-control: no-store`.
pub(crate) fn token(
    access_token: Option<&str>,
    expires_in: u64,
    request: &RecordedRequest,
) -> Rendered {
    let made_up;
    let access_token = match access_token {
        Some(t) => t,
        None => {
            made_up = made_up_token(request);
            &made_up
        }
    };
    if is_metadata_path(&request.path) {
        let body = format!(
            r#"{{"access_token":{},"expires_in":{expires_in},"token_type":"Bearer"}}"#,
            js(access_token)
        );
        Rendered::fixed(200, "application/json", body).header("metadata-flavor", "Google")
    } else {
        let body = format!(
            r#"{{"access_token":{},"expires_in":{expires_in},"scope":"https://www.googleapis.com/auth/cloud-platform","token_type":"Bearer"}}"#,
            js(access_token)
        );
        Rendered::fixed(200, "application/json; charset=utf-8", body)
            .header("cache-control", "no-store")
    }
}

/// The token endpoints' dialect: text answers are tokens (the text the access token),
/// errors are OAuth errors.
pub(crate) struct GoogleToken;

/// The OAuth error for `kind`.
fn oauth_error(kind: SimError) -> Rendered {
    let (status, error, description) = match kind {
        SimError::Auth => (400, "invalid_grant", "Invalid JWT Signature."),
        SimError::RateLimited { .. } => (429, "rate_limit_exceeded", "Rate Limit Exceeded"),
        SimError::Server | SimError::ModelError => (500, "internal_failure", "Backend Error"),
        SimError::Overloaded => (503, "temporarily_unavailable", "Service Unavailable"),
        _ => (400, "invalid_request", "Invalid request."),
    };
    let body = format!(
        r#"{{"error":"{error}","error_description":{}}}"#,
        js(description)
    );
    let rendered = Rendered::fixed(status, "application/json; charset=utf-8", body);
    match kind {
        SimError::RateLimited { retry_after_secs } => {
            rendered.header("retry-after", retry_after_secs.to_string())
        }
        _ => rendered,
    }
}

impl Speaker for GoogleToken {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        token(Some(text), DEFAULT_TOKEN_LIFETIME, request)
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        match ending {
            Ending::Finish => token(Some(&pieces.concat()), DEFAULT_TOKEN_LIFETIME, request),
            Ending::Error(kind) => oauth_error(kind),
        }
    }

    fn tool(_call: &ToolCall, request: &RecordedRequest) -> Rendered {
        token(None, DEFAULT_TOKEN_LIFETIME, request)
    }

    fn tool_stream(_call: &ToolCall, request: &RecordedRequest) -> Rendered {
        token(None, DEFAULT_TOKEN_LIFETIME, request)
    }

    fn error(kind: SimError, _stream: bool, _request: &RecordedRequest) -> Rendered {
        oauth_error(kind)
    }
}
