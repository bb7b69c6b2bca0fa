//! Bodies in the OpenAI Chat Completions dialect, with keys in the order OpenAI sends them.

use super::RecordedRequest;
use super::common::SimError;
use super::common::{
    Ending, Rendered, Speaker, ToolCall, estimate_tokens, fragments, go_duration, js, model,
    pretty, prompt_chars, unix_now,
};

/// The OpenAI Chat Completions dialect.
pub(crate) struct OpenAi;

const JSON: &str = "application/json";
const SSE: &str = "text/event-stream";

fn usage(request: &RecordedRequest, completion_chars: usize) -> String {
    let prompt = estimate_tokens(prompt_chars(request));
    let completion = estimate_tokens(completion_chars);
    format!(
        concat!(
            r#"{{"prompt_tokens":{},"completion_tokens":{},"total_tokens":{},"#,
            r#""prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}}"#
        ),
        prompt,
        completion,
        prompt + completion
    )
}

/// A non-streaming `chat.completion` object with one choice holding `message`.
fn completion_with(
    message: &str,
    finish: &str,
    completion_chars: usize,
    request: &RecordedRequest,
) -> String {
    format!(
        concat!(
            r#"{{"id":"chatcmpl-sim-{seq}","object":"chat.completion","created":{created},"model":{model},"#,
            r#""choices":[{{"index":0,"message":{message},"#,
            r#""logprobs":null,"finish_reason":"{finish}"}}],"usage":{usage},"system_fingerprint":"fp_sim"}}"#
        ),
        seq = request.seq,
        created = unix_now(),
        model = js(model(request)),
        message = message,
        finish = finish,
        usage = usage(request, completion_chars),
    )
}

/// A non-streaming `chat.completion` object.
pub(crate) fn completion(text: &str, request: &RecordedRequest) -> String {
    let message = format!(
        r#"{{"role":"assistant","content":{},"refusal":null}}"#,
        js(text)
    );
    completion_with(&message, "stop", text.chars().count(), request)
}

/// The id of the `i`-th tool call of the reply to request `seq`.
fn call_id(request: &RecordedRequest, i: usize) -> String {
    format!("call_sim_{}_{i}", request.seq)
}

/// Builds the frames of one streamed completion: every chunk shares id, created and model.
struct Chunks {
    prefix: String,
}

impl Chunks {
    fn new(request: &RecordedRequest) -> Chunks {
        Chunks {
            prefix: format!(
                r#"data: {{"id":"chatcmpl-sim-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_sim","choices":"#,
                request.seq,
                unix_now(),
                js(model(request)),
            ),
        }
    }

    fn choice(&self, delta: &str, finish: &str) -> String {
        format!(
            r#"{}[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#,
            self.prefix
        ) + "\n\n"
    }

    fn usage(&self, request: &RecordedRequest, completion_chars: usize) -> String {
        format!(
            r#"{}[],"usage":{}}}"#,
            self.prefix,
            usage(request, completion_chars)
        ) + "\n\n"
    }
}

/// The SSE frames of a streamed completion of `pieces`, ending as `ending` says: normally a
/// finish chunk, a usage chunk and `data: [DONE]`.
pub(crate) fn stream_frames(
    pieces: &[String],
    ending: Ending,
    request: &RecordedRequest,
) -> Vec<String> {
    let chunks = Chunks::new(request);
    let mut frames = Vec::with_capacity(pieces.len() + 4);
    frames.push(chunks.choice(r#"{"role":"assistant","content":""}"#, "null"));
    for piece in pieces {
        frames.push(chunks.choice(&format!(r#"{{"content":{}}}"#, js(piece)), "null"));
    }
    let completion_chars = pieces.iter().map(|p| p.chars().count()).sum();
    let finish = match ending {
        Ending::Finish => r#""stop""#,
        Ending::Error(SimError::ContentPolicy) => r#""content_filter""#,
        Ending::Error(kind) => {
            // Groq-style: an `error` event carrying the error object; no [DONE] follows.
            let (_, error) = error_parts(kind, request);
            frames.push(format!("event: error\ndata: {{\"error\":{error}}}\n\n"));
            return frames;
        }
    };
    frames.push(chunks.choice("{}", finish));
    frames.push(chunks.usage(request, completion_chars));
    frames.push("data: [DONE]\n\n".to_owned());
    frames
}

/// An OpenAI error body.
pub(crate) fn error_body(error_type: &str, code: Option<&str>, message: &str) -> String {
    format!(
        r#"{{"error":{}}}"#,
        error_object(error_type, code, None, message)
    )
}

fn error_object(
    error_type: &str,
    code: Option<&str>,
    param: Option<&str>,
    message: &str,
) -> String {
    let opt = |v: Option<&str>| v.map_or_else(|| "null".to_owned(), js);
    format!(
        r#"{{"message":{},"type":{},"param":{},"code":{}}}"#,
        js(message),
        js(error_type),
        opt(param),
        opt(code),
    )
}

/// The HTTP status and error object OpenAI answers `kind` with.
fn error_parts(kind: SimError, request: &RecordedRequest) -> (u16, String) {
    match kind {
        SimError::RateLimited { retry_after_secs } => (
            429,
            error_object(
                "requests",
                Some("rate_limit_exceeded"),
                None,
                &format!(
                    "Rate limit reached for {} in organization org-polyrelaysim on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in {retry_after_secs}s. Visit https://platform.openai.com/account/rate-limits to learn more.",
                    model(request)
                ),
            ),
        ),
        SimError::Overloaded => (
            503,
            error_object(
                "server_error",
                None,
                None,
                "The engine is currently overloaded, please try again later.",
            ),
        ),
        SimError::Server | SimError::ModelError => (
            500,
            error_object(
                "server_error",
                None,
                None,
                &format!(
                    "The server had an error processing your request. Sorry about that! You can retry your request, or contact us through our help center at help.openai.com if you keep seeing this error. (Please include the request ID req_sim_{} in your email.)",
                    request.seq
                ),
            ),
        ),
        SimError::Auth => (
            401,
            error_object(
                "invalid_request_error",
                Some("invalid_api_key"),
                None,
                "Incorrect API key provided: sk-sim-****. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
        ),
        SimError::QuotaExhausted => (
            429,
            error_object(
                "insufficient_quota",
                Some("insufficient_quota"),
                None,
                "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            ),
        ),
        SimError::ContextLength => (
            400,
            error_object(
                "invalid_request_error",
                Some("context_length_exceeded"),
                Some("messages"),
                "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens. Please reduce the length of the messages.",
            ),
        ),
        SimError::ContentPolicy => (
            400,
            error_object(
                "invalid_request_error",
                Some("content_policy_violation"),
                None,
                "Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.",
            ),
        ),
        SimError::InvalidRequest => (
            400,
            error_object(
                "invalid_request_error",
                None,
                None,
                "[] is too short - 'messages'",
            ),
        ),
    }
}

impl Speaker for OpenAi {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        Rendered::fixed(200, JSON, completion(text, request))
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        Rendered::frames(SSE, stream_frames(pieces, ending, request))
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let message = format!(
            concat!(
                r#"{{"role":"assistant","content":null,"tool_calls":[{{"id":{},"type":"function","#,
                r#""function":{{"name":{},"arguments":{}}}}}],"refusal":null,"annotations":[]}}"#
            ),
            js(&call_id(request, 0)),
            js(&call.name),
            js(&call.arguments),
        );
        let body = completion_with(&message, "tool_calls", call.chars(), request);
        Rendered::fixed(200, JSON, body)
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let chunks = Chunks::new(request);
        let mut frames = Vec::new();
        frames.push(chunks.choice(
            &format!(
                concat!(
                    r#"{{"role":"assistant","content":null,"tool_calls":[{{"index":0,"id":{},"#,
                    r#""type":"function","function":{{"name":{},"arguments":""}}}}],"refusal":null}}"#
                ),
                js(&call_id(request, 0)),
                js(&call.name),
            ),
            "null",
        ));
        for fragment in fragments(&call.arguments, 8) {
            frames.push(chunks.choice(
                &format!(
                    r#"{{"tool_calls":[{{"index":0,"function":{{"arguments":{}}}}}]}}"#,
                    js(&fragment)
                ),
                "null",
            ));
        }
        frames.push(chunks.choice("{}", r#""tool_calls""#));
        frames.push(chunks.usage(request, call.chars()));
        frames.push("data: [DONE]\n\n".to_owned());
        Rendered::frames(SSE, frames)
    }

    fn error(kind: SimError, _stream: bool, request: &RecordedRequest) -> Rendered {
        let (status, error) = error_parts(kind, request);
        let rendered = Rendered::fixed(status, JSON, pretty(&format!(r#"{{"error":{error}}}"#)));
        match kind {
            SimError::RateLimited { retry_after_secs } => rendered
                .header("retry-after", retry_after_secs.to_string())
                .header("x-ratelimit-limit-requests", "3")
                .header("x-ratelimit-remaining-requests", "0")
                .header("x-ratelimit-reset-requests", go_duration(retry_after_secs)),
            _ => rendered,
        }
    }
}
