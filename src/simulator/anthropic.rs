//! Bodies in the Anthropic Messages dialect (`POST /v1/messages`), with keys in the order
//! Anthropic sends them. Stream events carry the whitespace padding before their last brace
//! that the raw recordings show (`{"type":"message_stop"     }`).

use super::RecordedRequest;
use super::common::SimError;
use super::common::{
    Ending, Rendered, Speaker, ToolCall, estimate_tokens, fragments, js, model, prompt_chars,
    rfc3339, unix_now,
};

/// The Anthropic Messages dialect.
pub(crate) struct Anthropic;

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream; charset=utf-8";

fn message_id(request: &RecordedRequest) -> String {
    format!("msg_sim_{}", request.seq)
}

fn tool_id(request: &RecordedRequest, i: usize) -> String {
    format!("toolu_sim_{}_{i}", request.seq)
}

fn request_id(request: &RecordedRequest) -> String {
    format!("req_sim_{}", request.seq)
}

fn input_tokens(request: &RecordedRequest) -> usize {
    estimate_tokens(prompt_chars(request))
}

/// The `usage` object of a message (non-streamed, or `message_start`).
fn usage(input: usize, output: usize) -> String {
    format!(
        concat!(
            r#"{{"input_tokens":{input},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"#,
            r#""cache_creation":{{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0}},"#,
            r#""output_tokens":{output},"service_tier":"standard","inference_geo":"not_available"}}"#
        ),
        input = input,
        output = output,
    )
}

/// A `message` object.
fn message(
    request: &RecordedRequest,
    content: &str,
    stop_reason: &str,
    output_tokens: usize,
) -> String {
    format!(
        concat!(
            r#"{{"model":{model},"id":"{id}","type":"message","role":"assistant","content":{content},"#,
            r#""stop_reason":{stop_reason},"stop_sequence":null,"usage":{usage}}}"#
        ),
        model = js(model(request)),
        id = message_id(request),
        content = content,
        stop_reason = stop_reason,
        usage = usage(input_tokens(request), output_tokens),
    )
}

fn tool_use_block(call: &ToolCall, request: &RecordedRequest, input: &str) -> String {
    format!(
        r#"{{"type":"tool_use","id":{},"name":{},"input":{input},"caller":{{"type":"direct"}}}}"#,
        js(&tool_id(request, 0)),
        js(&call.name),
    )
}

/// Spaces before the closing brace of the `i`-th event, as the raw recordings have them.
fn pad(request: &RecordedRequest, i: usize) -> &'static str {
    const SPACES: &str = "              ";
    const WIDTHS: [usize; 13] = [1, 13, 0, 14, 8, 4, 13, 2, 10, 14, 11, 12, 5];
    &SPACES[..WIDTHS[request.seq.wrapping_add(i) % WIDTHS.len()]]
}

/// Builds the events of one stream, padding each as it goes.
struct Events<'a> {
    request: &'a RecordedRequest,
    frames: Vec<String>,
}

impl<'a> Events<'a> {
    fn new(request: &'a RecordedRequest) -> Events<'a> {
        Events {
            request,
            frames: Vec::new(),
        }
    }

    /// One `event: <name>` frame whose data is the JSON object `json`.
    fn push(&mut self, name: &str, json: &str) {
        let pad = pad(self.request, self.frames.len());
        let data = match json.strip_suffix('}') {
            Some(open) => format!("{open}{pad}}}"),
            None => json.to_owned(),
        };
        self.frames.push(format!("event: {name}\ndata: {data}\n\n"));
    }

    fn message_start(&mut self) {
        let message = format!(
            concat!(
                r#"{{"model":{},"id":"{}","type":"message","role":"assistant","content":[],"#,
                r#""stop_reason":null,"stop_sequence":null,"usage":{}}}"#
            ),
            js(model(self.request)),
            message_id(self.request),
            usage(input_tokens(self.request), 1),
        );
        self.push(
            "message_start",
            &format!(r#"{{"type":"message_start","message":{message}}}"#),
        );
    }

    fn block_start(&mut self, block: &str) {
        self.push(
            "content_block_start",
            &format!(r#"{{"type":"content_block_start","index":0,"content_block":{block}}}"#),
        );
    }

    fn ping(&mut self) {
        // Pings are sent exactly so: a space after the colon, no padding.
        self.frames
            .push("event: ping\ndata: {\"type\": \"ping\"}\n\n".to_owned());
    }

    fn delta(&mut self, delta: &str) {
        self.push(
            "content_block_delta",
            &format!(r#"{{"type":"content_block_delta","index":0,"delta":{delta}}}"#),
        );
    }

    /// `content_block_stop`, `message_delta` with `stop_reason`, `message_stop`.
    fn finish(&mut self, stop_reason: &str, output_tokens: usize) {
        self.push(
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        );
        self.push(
            "message_delta",
            &format!(
                concat!(
                    r#"{{"type":"message_delta","delta":{{"stop_reason":"{}","stop_sequence":null}},"#,
                    r#""usage":{{"input_tokens":{},"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":{}}}}}"#
                ),
                stop_reason,
                input_tokens(self.request),
                output_tokens,
            ),
        );
        self.push("message_stop", r#"{"type":"message_stop"}"#);
    }

    /// The in-stream `error` event; the stream ends after it.
    fn error(&mut self, error_type: &str, message: &str) {
        self.push(
            "error",
            &format!(
                r#"{{"type":"error","error":{{"details":null,"type":{},"message":{}}}}}"#,
                js(error_type),
                js(message)
            ),
        );
    }

    fn rendered(self) -> Rendered {
        Rendered::frames(SSE, self.frames).header("request-id", request_id(self.request))
    }
}

/// The HTTP status, error type and message Anthropic answers `kind` with. `None` for content
/// policy, which Anthropic answers with a `refusal` stop reason instead of an error.
fn error_parts(kind: SimError) -> Option<(u16, &'static str, &'static str)> {
    Some(match kind {
        SimError::RateLimited { .. } => (
            429,
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (polyrelay-sim) of 50 requests per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later. You may also contact sales at https://www.anthropic.com/contact-sales to discuss your options for a rate limit increase.",
        ),
        SimError::Overloaded => (529, "overloaded_error", "Overloaded"),
        SimError::Server | SimError::ModelError => (500, "api_error", "Internal server error"),
        SimError::Auth => (401, "authentication_error", "invalid x-api-key"),
        SimError::QuotaExhausted => (
            400,
            "invalid_request_error",
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
        ),
        SimError::ContextLength => (
            400,
            "invalid_request_error",
            "prompt is too long: 208310 tokens > 200000 maximum",
        ),
        SimError::ContentPolicy => return None,
        SimError::InvalidRequest => (
            400,
            "invalid_request_error",
            "messages: at least one message is required",
        ),
    })
}

/// An Anthropic HTTP error: `{"type":"error","error":{"type","message"},"request_id"}` with
/// `request-id` and `x-should-retry` headers.
pub(crate) fn error_response(
    status: u16,
    error_type: &str,
    message: &str,
    request: &RecordedRequest,
) -> Rendered {
    let body = format!(
        r#"{{"type":"error","error":{{"type":{},"message":{}}},"request_id":"{}"}}"#,
        js(error_type),
        js(message),
        request_id(request),
    );
    let retry = matches!(status, 408 | 409 | 429) || status >= 500;
    Rendered::fixed(status, JSON, body)
        .header("request-id", request_id(request))
        .header("x-should-retry", if retry { "true" } else { "false" })
}

impl Speaker for Anthropic {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        let content = format!(r#"[{{"type":"text","text":{}}}]"#, js(text));
        let output = estimate_tokens(text.chars().count());
        let body = message(request, &content, r#""end_turn""#, output);
        Rendered::fixed(200, JSON, body).header("request-id", request_id(request))
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        let mut events = Events::new(request);
        events.message_start();
        events.block_start(r#"{"type":"text","text":""}"#);
        events.ping();
        for piece in pieces {
            events.delta(&format!(r#"{{"type":"text_delta","text":{}}}"#, js(piece)));
        }
        let output = estimate_tokens(pieces.iter().map(|p| p.chars().count()).sum());
        match ending {
            Ending::Finish => events.finish("end_turn", output),
            Ending::Error(kind) => match error_parts(kind) {
                Some((_, error_type, message)) => events.error(error_type, message),
                None => events.finish("refusal", output),
            },
        }
        events.rendered()
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let content = format!("[{}]", tool_use_block(call, request, &call.object()));
        let output = estimate_tokens(call.chars());
        let body = message(request, &content, r#""tool_use""#, output);
        Rendered::fixed(200, JSON, body).header("request-id", request_id(request))
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let mut events = Events::new(request);
        events.message_start();
        events.block_start(&tool_use_block(call, request, "{}"));
        events.ping();
        // The first fragment is always empty, as Anthropic sends it.
        let input = call.object();
        for fragment in std::iter::once(String::new()).chain(fragments(&input, 8)) {
            events.delta(&format!(
                r#"{{"type":"input_json_delta","partial_json":{}}}"#,
                js(&fragment)
            ));
        }
        events.finish("tool_use", estimate_tokens(call.chars()));
        events.rendered()
    }

    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered {
        let Some((status, error_type, message)) = error_parts(kind) else {
            // Content policy: a refusal, with no content.
            return if stream {
                Self::stream(&[], Ending::Error(kind), request)
            } else {
                let body = message_refusal(request);
                Rendered::fixed(200, JSON, body).header("request-id", request_id(request))
            };
        };
        let rendered = error_response(status, error_type, message, request);
        match kind {
            SimError::RateLimited { retry_after_secs } => rendered
                .header("retry-after", retry_after_secs.to_string())
                .header("anthropic-ratelimit-requests-limit", "50")
                .header("anthropic-ratelimit-requests-remaining", "0")
                .header(
                    "anthropic-ratelimit-requests-reset",
                    rfc3339(unix_now().saturating_add(retry_after_secs)),
                ),
            _ => rendered,
        }
    }
}

fn message_refusal(request: &RecordedRequest) -> String {
    message(request, "[]", r#""refusal""#, 0)
}
