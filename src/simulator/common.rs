//! Pieces shared by the vendor dialects: what a rendered reply is, token estimates, JSON
//! formatting in each vendor's style, and small date and duration formatters.

use serde_json::Value;

use super::{DEFAULT_TEXT, RecordedRequest};

/// A vendor failure for [`Reply::error`](super::Reply::error) and
/// [`Reply::stream_error_after`](super::Reply::stream_error_after), rendered the way the vendor
/// of the request's dialect sends it.
///
/// | kind | OpenAI | Anthropic | Gemini |
/// |---|---|---|---|
/// | `RateLimited` | 429 `requests`/`rate_limit_exceeded`, `retry-after`, `x-ratelimit-*` | 429 `rate_limit_error`, `retry-after`, `anthropic-ratelimit-requests-*` | 429 `RESOURCE_EXHAUSTED`, per-minute `QuotaFailure`, `RetryInfo.retryDelay` `"<n>s"`, no header |
/// | `Overloaded` | 503 `server_error` | 529 `overloaded_error` | 503 `UNAVAILABLE` |
/// | `Server` | 500 `server_error` | 500 `api_error` | 500 `INTERNAL` |
/// | `ModelError` | 500 `server_error` | 500 `api_error` | 500 `INTERNAL` |
/// | `Auth` | 401 `invalid_api_key` | 401 `authentication_error` | 400 `INVALID_ARGUMENT`, `ErrorInfo` `API_KEY_INVALID` |
/// | `QuotaExhausted` | 429 `insufficient_quota` | 400 `invalid_request_error` "Your credit balance is too low…" | 429 `RESOURCE_EXHAUSTED`, per-day `QuotaFailure` |
/// | `ContextLength` | 400 `context_length_exceeded` | 400 "prompt is too long: …" | 400 `INVALID_ARGUMENT` "The input token count … exceeds …" |
/// | `ContentPolicy` | 400 `content_policy_violation`; in a stream, finish reason `content_filter` | 200, `stop_reason` `refusal` | 200, `finishReason` `SAFETY` |
/// | `InvalidRequest` | 400 `invalid_request_error` | 400 `invalid_request_error` | 400 `INVALID_ARGUMENT`, `BadRequest` |
///
/// On the clouds' paths (see [`Dialect`](super::Dialect)): Bedrock answers `{"message":…}`
/// with the type in header `x-amzn-ErrorType: <Type>:http://internal.amazon.com/coral/com.amazon.bedrock/`
/// (no retry header, as Bedrock sends none); in a stream, an exception frame
/// (`:message-type: exception`) whose `:exception-type` is in the second column. Vertex answers
/// `google.rpc.Status` `{"error":{"code","message","status","details"?}}`, pretty-printed, or
/// compact and wrapped in a JSON array `[{"error":…}]` on the streaming paths
/// (`:streamGenerateContent`, `:streamRawPredict`); in a stream, the inner vendor's in-stream
/// error (Gemini's or Anthropic's).
///
/// | kind | Bedrock | Bedrock in-stream | Vertex |
/// |---|---|---|---|
/// | `RateLimited` | 429 `ThrottlingException` | `throttlingException` | 429 `RESOURCE_EXHAUSTED`, `RetryInfo.retryDelay` `"<n>s"` |
/// | `Overloaded` | 503 `ServiceUnavailableException` | `serviceUnavailableException` | 503 `UNAVAILABLE` |
/// | `Server` | 500 `InternalServerException` | `internalServerException` | 500 `INTERNAL` |
/// | `ModelError` | 424 `ModelErrorException` | `modelStreamErrorException` (`originalStatusCode` 529) | 500 `INTERNAL` |
/// | `Auth` | 403 `AccessDeniedException` | `validationException` | 401 `UNAUTHENTICATED`, `ErrorInfo` `ACCESS_TOKEN_EXPIRED` |
/// | `QuotaExhausted` | 400 `ServiceQuotaExceededException` | `validationException` | 403 `PERMISSION_DENIED`, `ErrorInfo` `BILLING_DISABLED` |
/// | `ContextLength` | 400 `ValidationException` "Input is too long for requested model." | `validationException` | 400 `INVALID_ARGUMENT` "The input token count … exceeds …" |
/// | `ContentPolicy` | 200, Converse `stopReason` `guardrail_intervened` (InvokeModel: Anthropic's `refusal`) | the same, as the stream's end | the inner vendor's blocked answer |
/// | `InvalidRequest` | 400 `ValidationException` | `validationException` | 400 `INVALID_ARGUMENT` |
///
/// Google's token endpoint and metadata server answer OAuth errors
/// (`{"error","error_description"}`): `Auth` 400 `invalid_grant`, `RateLimited` 429 (with
/// `retry-after`), `Server` and `ModelError` 500, `Overloaded` 503, the rest 400
/// `invalid_request`.
///
/// Anthropic errors carry `request_id` in the body, and `request-id` and `x-should-retry`
/// headers. In a stream ([`Reply::stream_error_after`](super::Reply::stream_error_after)) the
/// error is the dialect's in-stream form: Anthropic `event: error` with
/// `{"type":"error","error":{"details":null,"type","message"}}`, OpenAI (Groq-style) `event: error` with `{"error":{…}}`, Gemini a
/// `{"error":{…}}` chunk; content policy ends the stream with the blocked finish instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SimError {
    /// Too many requests; retry after this many seconds.
    RateLimited {
        /// The delay the vendor asks for (a header or, for Gemini, `RetryInfo` in the body).
        retry_after_secs: u64,
    },
    /// The vendor is overloaded (Anthropic 529, others 503).
    Overloaded,
    /// An internal server error (500).
    Server,
    /// The model itself failed (Bedrock's 424 `ModelErrorException`, in a stream
    /// `modelStreamErrorException`); the other vendors answer it as [`SimError::Server`].
    ModelError,
    /// The API key was rejected.
    Auth,
    /// Billing quota or credit exhausted: waiting will not help.
    QuotaExhausted,
    /// The prompt is longer than the model's context window.
    ContextLength,
    /// The request or answer was blocked by the vendor's content policy.
    ContentPolicy,
    /// A malformed request.
    InvalidRequest,
}

/// The model echoed when the request names none.
pub(crate) const FALLBACK_MODEL: &str = "polyrelay-sim";

/// A vendor reply rendered against one request, before the [`super::Reply`] modifiers apply.
#[derive(Debug)]
pub(crate) struct Rendered {
    pub(crate) status: u16,
    pub(crate) content_type: &'static str,
    /// Vendor headers, written after the simulator's own.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: RenderedBody,
}

#[derive(Debug)]
pub(crate) enum RenderedBody {
    /// A body framed by `Content-Length`.
    Fixed(String),
    /// A streamed body, one HTTP chunk per frame.
    Frames(Vec<bytes::Bytes>),
}

impl Rendered {
    pub(crate) fn fixed(status: u16, content_type: &'static str, body: String) -> Rendered {
        Rendered {
            status,
            content_type,
            headers: Vec::new(),
            body: RenderedBody::Fixed(body),
        }
    }

    pub(crate) fn frames(content_type: &'static str, frames: Vec<String>) -> Rendered {
        Rendered {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: RenderedBody::Frames(frames.into_iter().map(bytes::Bytes::from).collect()),
        }
    }

    /// A streamed body of binary frames (AWS event-stream frames).
    pub(crate) fn binary_frames(content_type: &'static str, frames: Vec<Vec<u8>>) -> Rendered {
        Rendered {
            status: 200,
            content_type,
            headers: Vec::new(),
            body: RenderedBody::Frames(frames.into_iter().map(bytes::Bytes::from).collect()),
        }
    }

    pub(crate) fn header(mut self, name: &str, value: impl Into<String>) -> Rendered {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// How a streamed answer ends.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ending {
    /// The vendor's normal end (finish reason, usage, terminator).
    Finish,
    /// The vendor's in-stream error for this kind (or, for content policy, its blocked
    /// finish), after which nothing more is sent.
    Error(SimError),
}

/// What a dialect-rendered reply says; each dialect renders it in its own wire format.
#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// A text answer; streamed in pieces split after each space.
    Text(String),
    /// A text answer in these stream pieces (joined for a JSON answer).
    Pieces(Vec<String>),
    /// One tool call.
    ToolCall(ToolCall),
    /// The vendor's HTTP error (or blocked answer) for this kind.
    Error(SimError),
    /// A stream of `after` content events, then the vendor's in-stream error for `kind`.
    /// Requests that do not stream get the HTTP error instead.
    StreamError { after: usize, kind: SimError },
}

/// One vendor dialect's renderings.
pub(crate) trait Speaker {
    /// A non-streamed text answer.
    fn text(text: &str, request: &RecordedRequest) -> Rendered;
    /// A streamed text answer in `pieces`, ending as `ending` says.
    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered;
    /// A non-streamed tool call.
    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered;
    /// A streamed tool call.
    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered;
    /// The error (or blocked answer) for `kind`; `stream` says whether the request streams.
    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered;

    /// Renders `content` for `request`, streamed or not.
    fn render(content: &Content, stream: bool, request: &RecordedRequest) -> Rendered {
        match content {
            Content::Text(text) if stream => Self::stream(&words(text), Ending::Finish, request),
            Content::Text(text) => Self::text(text, request),
            Content::Pieces(pieces) if stream => Self::stream(pieces, Ending::Finish, request),
            Content::Pieces(pieces) => Self::text(&pieces.concat(), request),
            Content::ToolCall(call) if stream => Self::tool_stream(call, request),
            Content::ToolCall(call) => Self::tool(call, request),
            Content::Error(kind) => Self::error(*kind, stream, request),
            Content::StreamError { after, kind } if stream => {
                Self::stream(&filler_pieces(*after), Ending::Error(*kind), request)
            }
            Content::StreamError { kind, .. } => Self::error(*kind, false, request),
        }
    }
}

/// One tool call to answer with.
#[derive(Clone, Debug)]
pub(crate) struct ToolCall {
    pub(crate) name: String,
    /// The arguments as given (a JSON object, as text).
    pub(crate) arguments: String,
}

impl ToolCall {
    /// The arguments as the text of a JSON object: as given (trimmed) when they parse as an
    /// object, else `{}`. Anthropic `input` and Gemini `args` must be objects.
    pub(crate) fn object(&self) -> String {
        match serde_json::from_str::<Value>(&self.arguments) {
            Ok(Value::Object(_)) => self.arguments.trim().to_owned(),
            _ => {
                tracing::warn!(
                    arguments = %self.arguments,
                    "simulator tool-call arguments are not a JSON object; sending {{}}"
                );
                "{}".to_owned()
            }
        }
    }

    /// The characters the call is made of, for the output-token estimate.
    pub(crate) fn chars(&self) -> usize {
        self.name.chars().count() + self.arguments.chars().count()
    }
}

/// A JSON string literal (quoted and escaped).
pub(crate) fn js(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ceil(chars / 4).
pub(crate) fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// The model the request names, or [`FALLBACK_MODEL`].
pub(crate) fn model(request: &RecordedRequest) -> &str {
    request.model.as_deref().unwrap_or(FALLBACK_MODEL)
}

/// The characters of prompt text in the request, whatever its dialect: `messages` (string
/// contents and text parts; OpenAI and Anthropic), Anthropic's top-level `system` (a string or
/// text blocks), and Gemini's `contents[].parts[].text` and `systemInstruction.parts[].text`.
pub(crate) fn prompt_chars(request: &RecordedRequest) -> usize {
    let body = &request.body;
    let text_of = |value: Option<&Value>| -> usize {
        match value {
            Some(Value::String(s)) => s.chars().count(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(|t| t.chars().count())
                .sum(),
            _ => 0,
        }
    };
    let messages: usize = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|ms| ms.iter().map(|m| text_of(m.get("content"))).sum())
        .unwrap_or(0);
    let contents: usize = body
        .get("contents")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| text_of(c.get("parts"))).sum())
        .unwrap_or(0);
    let system = text_of(body.get("system"));
    let system_instruction = body
        .get("systemInstruction")
        .or_else(|| body.get("system_instruction"))
        .map(|s| text_of(s.get("parts")))
        .unwrap_or(0);
    messages + contents + system + system_instruction
}

/// The first `n` pieces of the default text, cycling: content for streams that fail part-way.
pub(crate) fn filler_pieces(n: usize) -> Vec<String> {
    DEFAULT_TEXT
        .split_inclusive(' ')
        .cycle()
        .take(n)
        .map(str::to_owned)
        .collect()
}

/// The text split after each space: the pieces a whole text streams in.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split_inclusive(' ').map(str::to_owned).collect()
}

/// `s` in pieces of at most `max_chars` characters (none for an empty `s`).
pub(crate) fn fragments(s: &str, max_chars: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    chars
        .chunks(max_chars.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// Re-lays out JSON text: whitespace outside strings is dropped, then `on_token` writes each
/// structural character. Strings (with their escapes) are copied verbatim.
fn relayout(json: &str, mut on_token: impl FnMut(&mut String, char, Option<char>)) -> String {
    let mut out = String::with_capacity(json.len() + json.len() / 2);
    let mut chars = json.chars().peekable();
    let mut in_string = false;
    let mut escaped = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        // The next significant character, for empty `{}` and `[]`.
        while chars.peek().is_some_and(char::is_ascii_whitespace) {
            chars.next();
        }
        on_token(&mut out, c, chars.peek().copied());
    }
    out
}

/// JSON with every whitespace outside strings removed.
pub(crate) fn compact(json: &str) -> String {
    relayout(json, |out, c, _| out.push(c))
}

/// JSON with `": "` after keys and nothing else added, the way Gemini's SSE chunks look:
/// `{"candidates": [{"content": {"parts": [{"text": "Hi"}],"role": "model"}}]}`.
pub(crate) fn spaced(json: &str) -> String {
    relayout(json, |out, c, _| {
        out.push(c);
        if c == ':' {
            out.push(' ');
        }
    })
}

/// JSON pretty-printed with two-space indentation, the way Google's APIs send JSON bodies.
pub(crate) fn pretty(json: &str) -> String {
    let mut depth = 0usize;
    let mut empty = false;
    relayout(json, move |out, c, next| {
        let newline = |out: &mut String, depth: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(depth));
        };
        match c {
            '{' | '[' => {
                out.push(c);
                empty = matches!((c, next), ('{', Some('}')) | ('[', Some(']')));
                if !empty {
                    depth += 1;
                    newline(out, depth);
                }
            }
            '}' | ']' => {
                if empty {
                    empty = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(out, depth);
            }
            ':' => out.push_str(": "),
            other => out.push(other),
        }
    })
}

/// An RFC 3339 UTC timestamp (`2026-02-25T20:02:37Z`) for Unix time `secs`.
pub(crate) fn rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days, for days since 1970-01-01 (never negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A Go-style duration (`20s`, `6m0s`, `1h2m3s`), as OpenAI's `x-ratelimit-reset-*` headers
/// write them.
pub(crate) fn go_duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_layouts() {
        let compact = r#"{"a":[{"b":"x: \"y\", {z}"},[]],"c":{},"d":1}"#;
        assert_eq!(
            spaced(compact),
            r#"{"a": [{"b": "x: \"y\", {z}"},[]],"c": {},"d": 1}"#
        );
        assert_eq!(
            pretty(compact),
            "{\n  \"a\": [\n    {\n      \"b\": \"x: \\\"y\\\", {z}\"\n    },\n    []\n  ],\n  \"c\": {},\n  \"d\": 1\n}"
        );
        let reparsed: Value = serde_json::from_str(&pretty(compact)).unwrap_or(Value::Null);
        assert_eq!(
            reparsed,
            serde_json::from_str::<Value>(compact).unwrap_or_default()
        );
        assert_eq!(spaced("{ \"a\" : [ 1 , 2 ] }"), r#"{"a": [1,2]}"#);
    }

    #[test]
    fn dates_and_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_772_049_757), "2026-02-25T20:02:37Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(go_duration(20), "20s");
        assert_eq!(go_duration(360), "6m0s");
        assert_eq!(go_duration(3723), "1h2m3s");
    }

    #[test]
    fn pieces() {
        assert_eq!(fragments("abcdefg", 3), ["abc", "def", "g"]);
        assert!(fragments("", 3).is_empty());
        assert_eq!(filler_pieces(2), ["Hello ", "from "]);
        assert_eq!(filler_pieces(6).last().map(String::as_str), Some("Hello "));
    }
}
