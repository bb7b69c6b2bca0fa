//! Bodies in AWS Bedrock's dialects: Converse (`POST /model/{modelId}/converse`), its event
//! stream (`/converse-stream`), and InvokeModel with Anthropic's Messages body (`/invoke`,
//! `/invoke-with-response-stream`, whose `chunk` frames carry Anthropic's events in base64).
//!
//! JSON keys are sorted as Bedrock sends them, and every event payload carries the random
//! padding field `"p"` the recordings show (here of a length that depends on the request's
//! `seq` and the event's index).

use super::RecordedRequest;
use super::anthropic::Anthropic;
use super::common::{
    Ending, Rendered, RenderedBody, SimError, Speaker, ToolCall, compact, estimate_tokens,
    fragments, js, prompt_chars,
};
use super::eventstream::{self, CONTENT_TYPE as EVENTSTREAM};

/// The Converse dialect.
pub(crate) struct Converse;

/// InvokeModel with Anthropic's Messages body.
pub(crate) struct Invoke;

const JSON: &str = "application/json";
/// The latency Bedrock reports (`metrics.latencyMs`, `invocationLatency`).
const LATENCY_MS: u64 = 120;

/// The `x-amzn-RequestId` of the answer to `request`: a UUID made of its `seq`.
fn request_id(request: &RecordedRequest) -> String {
    format!("00000000-0000-4000-8000-{:012}", request.seq)
}

fn tool_use_id(request: &RecordedRequest) -> String {
    format!("tooluse_sim_{}_0", request.seq)
}

fn input_tokens(request: &RecordedRequest) -> usize {
    estimate_tokens(prompt_chars(request))
}

/// The padding of the `i`-th event of the answer to `request`.
fn pad(request: &RecordedRequest, i: usize) -> &'static str {
    const P: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let len = 1 + request.seq.wrapping_mul(7).wrapping_add(i.wrapping_mul(13)) % 58;
    &P[..len]
}

fn usage(request: &RecordedRequest, output: usize) -> String {
    let input = input_tokens(request);
    format!(
        r#"{{"inputTokens":{input},"outputTokens":{output},"totalTokens":{}}}"#,
        input + output
    )
}

/// A Converse JSON answer whose message content is `content` (a JSON array).
fn converse_body(request: &RecordedRequest, content: &str, stop: &str, output: usize) -> String {
    format!(
        concat!(
            r#"{{"metrics":{{"latencyMs":{latency}}},"output":{{"message":{{"content":{content},"role":"assistant"}}}},"#,
            r#""stopReason":"{stop}","usage":{usage}}}"#
        ),
        latency = LATENCY_MS,
        content = content,
        stop = stop,
        usage = usage(request, output),
    )
}

/// A 200 Converse JSON answer (see [`converse_body`]) with Bedrock's request id.
fn converse_answer(
    request: &RecordedRequest,
    content: &str,
    stop: &str,
    output: usize,
) -> Rendered {
    Rendered::fixed(200, JSON, converse_body(request, content, stop, output))
        .header("x-amzn-RequestId", request_id(request))
}

/// Bedrock's answer to [`SimError::Server`] (see [`error_parts`]).
const SERVER_ERROR: (u16, &str, &str, &str) = (
    500,
    "InternalServerException",
    "internalServerException",
    "The system encountered an unexpected error during processing. Try your request again.",
);

/// The exception Bedrock answers `kind` with: HTTP status, type (header `x-amzn-ErrorType`),
/// in-stream `:exception-type`, message. `None` for content policy, a guardrail's answer.
fn error_parts(kind: SimError) -> Option<(u16, &'static str, &'static str, &'static str)> {
    Some(match kind {
        SimError::RateLimited { .. } => (
            429,
            "ThrottlingException",
            "throttlingException",
            "Too many requests, please wait before trying again.",
        ),
        SimError::Overloaded => (
            503,
            "ServiceUnavailableException",
            "serviceUnavailableException",
            "Bedrock is unable to process your request.",
        ),
        SimError::Server => SERVER_ERROR,
        SimError::ModelError => (
            424,
            "ModelErrorException",
            "modelStreamErrorException",
            "The model returned an error: Overloaded. Try your request again.",
        ),
        SimError::Auth => (
            403,
            "AccessDeniedException",
            "validationException",
            "You don't have access to the model with the specified model ID.",
        ),
        SimError::QuotaExhausted => (
            400,
            "ServiceQuotaExceededException",
            "validationException",
            "Your request exceeds the service quota for your account. You can view your quotas at https://docs.aws.amazon.com/servicequotas/latest/userguide/gs-request-quota.html.",
        ),
        SimError::ContextLength => (
            400,
            "ValidationException",
            "validationException",
            "Input is too long for requested model.",
        ),
        SimError::ContentPolicy => return None,
        SimError::InvalidRequest => (
            400,
            "ValidationException",
            "validationException",
            "Malformed input request: #: required key [messages] not found, please reformat your input and try again.",
        ),
    })
}

/// A Bedrock HTTP error: `{"message":…}`, the type in `x-amzn-ErrorType` with Bedrock's
/// suffix, and `x-amzn-RequestId`.
pub(crate) fn error_response(
    status: u16,
    error_type: &str,
    message: &str,
    request: &RecordedRequest,
) -> Rendered {
    Rendered::fixed(status, JSON, format!(r#"{{"message":{}}}"#, js(message)))
        .header(
            "x-amzn-ErrorType",
            format!("{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"),
        )
        .header("x-amzn-RequestId", request_id(request))
}

/// The exception frame for `kind` in a stream.
fn exception_frame(kind: SimError) -> Vec<u8> {
    // Content policy has no exception (a guardrail ends the stream); the caller never asks.
    let (_, _, exception_type, message) = error_parts(kind).unwrap_or(SERVER_ERROR);
    let payload = if kind == SimError::ModelError {
        format!(
            r#"{{"message":{},"originalMessage":"Overloaded","originalStatusCode":529}}"#,
            js(message)
        )
    } else {
        format!(r#"{{"message":{}}}"#, js(message))
    };
    eventstream::exception(exception_type, &payload)
}

/// The events of one Converse stream.
struct Events<'a> {
    request: &'a RecordedRequest,
    frames: Vec<Vec<u8>>,
}

impl<'a> Events<'a> {
    fn new(request: &'a RecordedRequest) -> Events<'a> {
        let mut events = Events {
            request,
            frames: Vec::new(),
        };
        events.push("messageStart", |p| {
            format!(r#"{{"p":"{p}","role":"assistant"}}"#)
        });
        events
    }

    /// One event whose payload `json` makes from the padding.
    fn push(&mut self, event_type: &str, json: impl FnOnce(&str) -> String) {
        let payload = json(pad(self.request, self.frames.len()));
        self.frames.push(eventstream::event(event_type, &payload));
    }

    fn delta(&mut self, delta: &str) {
        self.push("contentBlockDelta", |p| {
            format!(r#"{{"contentBlockIndex":0,"delta":{delta},"p":"{p}"}}"#)
        });
    }

    /// `contentBlockStop`, `messageStop` and `metadata`.
    fn finish(&mut self, stop: &str, output: usize) {
        self.push("contentBlockStop", |p| {
            format!(r#"{{"contentBlockIndex":0,"p":"{p}"}}"#)
        });
        self.push("messageStop", |p| {
            format!(r#"{{"p":"{p}","stopReason":"{stop}"}}"#)
        });
        let usage = usage(self.request, output);
        self.push("metadata", |p| {
            format!(r#"{{"metrics":{{"latencyMs":{LATENCY_MS}}},"p":"{p}","usage":{usage}}}"#)
        });
    }

    fn rendered(self) -> Rendered {
        Rendered::binary_frames(EVENTSTREAM, self.frames)
            .header("x-amzn-RequestId", request_id(self.request))
    }
}

/// The text a guardrail answers with when it blocks.
const GUARDRAIL_TEXT: &str = "Sorry, the model cannot answer this question.";

impl Speaker for Converse {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        let content = format!(r#"[{{"text":{}}}]"#, js(text));
        let output = estimate_tokens(text.chars().count());
        converse_answer(request, &content, "end_turn", output)
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        let mut events = Events::new(request);
        for piece in pieces {
            events.delta(&format!(r#"{{"text":{}}}"#, js(piece)));
        }
        let output = estimate_tokens(pieces.iter().map(|p| p.chars().count()).sum());
        match ending {
            Ending::Finish => events.finish("end_turn", output),
            Ending::Error(SimError::ContentPolicy) => {
                events.delta(&format!(r#"{{"text":{}}}"#, js(GUARDRAIL_TEXT)));
                events.finish("guardrail_intervened", output);
            }
            Ending::Error(kind) => events.frames.push(exception_frame(kind)),
        }
        events.rendered()
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let content = format!(
            r#"[{{"toolUse":{{"input":{},"name":{},"toolUseId":"{}","type":"tool_use"}}}}]"#,
            call.object(),
            js(&call.name),
            tool_use_id(request),
        );
        let output = estimate_tokens(call.chars());
        converse_answer(request, &content, "tool_use", output)
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let mut events = Events::new(request);
        let (name, id) = (js(&call.name), tool_use_id(request));
        events.push("contentBlockStart", |p| {
            format!(
                r#"{{"contentBlockIndex":0,"p":"{p}","start":{{"toolUse":{{"name":{name},"toolUseId":"{id}","type":"tool_use"}}}}}}"#
            )
        });
        // Claude sends an empty fragment first, then the input in pieces.
        let input = call.object();
        for fragment in std::iter::once(String::new()).chain(fragments(&input, 8)) {
            events.delta(&format!(r#"{{"toolUse":{{"input":{}}}}}"#, js(&fragment)));
        }
        events.finish("tool_use", estimate_tokens(call.chars()));
        events.rendered()
    }

    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered {
        match error_parts(kind) {
            Some((status, error_type, _, message)) => {
                error_response(status, error_type, message, request)
            }
            None if stream => Self::stream(&[], Ending::Error(kind), request),
            None => {
                let content = format!(r#"[{{"text":{}}}]"#, js(GUARDRAIL_TEXT));
                let output = estimate_tokens(GUARDRAIL_TEXT.len());
                converse_answer(request, &content, "guardrail_intervened", output)
            }
        }
    }
}

/// Anthropic's answer made Bedrock's: Bedrock's request id and token-count headers instead of
/// Anthropic's `request-id`.
fn invoke_fixed(rendered: Rendered, request: &RecordedRequest, output: usize) -> Rendered {
    let mut rendered = rendered;
    rendered.headers.retain(|(name, _)| name != "request-id");
    rendered
        .header("x-amzn-RequestId", request_id(request))
        .header(
            "x-amzn-bedrock-input-token-count",
            input_tokens(request).to_string(),
        )
        .header("x-amzn-bedrock-output-token-count", output.to_string())
        .header("x-amzn-bedrock-invocation-latency", LATENCY_MS.to_string())
}

/// Anthropic's SSE events re-framed as InvokeModelWithResponseStream `chunk` frames: each
/// event's JSON compacted and base64-encoded in `{"bytes":…,"p":…}`; `ping`s dropped (Bedrock
/// sends none); `message_stop` gains `amazon-bedrock-invocationMetrics`; an Anthropic `error`
/// event becomes the exception frame for `error`.
fn chunks_of(rendered: Rendered, error: Option<SimError>, request: &RecordedRequest) -> Rendered {
    let RenderedBody::Frames(sse) = rendered.body else {
        return rendered;
    };
    let mut frames = Vec::with_capacity(sse.len());
    let mut output_tokens = 0u64;
    for event in &sse {
        let text = String::from_utf8_lossy(event);
        let mut name = "";
        let mut data = "";
        for line in text.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = n;
            } else if let Some(d) = line.strip_prefix("data: ") {
                data = d;
            }
        }
        let mut json = compact(data);
        match name {
            "ping" => continue,
            "error" => {
                frames.push(exception_frame(error.unwrap_or(SimError::Server)));
                continue;
            }
            "message_delta" => {
                output_tokens = serde_json::from_str::<serde_json::Value>(&json)
                    .ok()
                    .and_then(|v| v.pointer("/usage/output_tokens")?.as_u64())
                    .unwrap_or(0);
            }
            "message_stop" => {
                json = format!(
                    concat!(
                        r#"{{"type":"message_stop","amazon-bedrock-invocationMetrics":{{"inputTokenCount":{},"#,
                        r#""outputTokenCount":{},"invocationLatency":{},"firstByteLatency":{}}}}}"#
                    ),
                    input_tokens(request),
                    output_tokens,
                    LATENCY_MS,
                    LATENCY_MS / 2,
                );
            }
            _ => {}
        }
        let p = pad(request, frames.len());
        let payload = format!(
            r#"{{"bytes":"{}","p":"{p}"}}"#,
            eventstream::base64(json.as_bytes())
        );
        frames.push(eventstream::event("chunk", &payload));
    }
    Rendered::binary_frames(EVENTSTREAM, frames)
        .header("x-amzn-RequestId", request_id(request))
        .header("x-amzn-bedrock-content-type", JSON)
}

impl Speaker for Invoke {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        let output = estimate_tokens(text.chars().count());
        invoke_fixed(Anthropic::text(text, request), request, output)
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        let error = match ending {
            Ending::Error(kind) => Some(kind),
            Ending::Finish => None,
        };
        chunks_of(Anthropic::stream(pieces, ending, request), error, request)
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let output = estimate_tokens(call.chars());
        invoke_fixed(Anthropic::tool(call, request), request, output)
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        chunks_of(Anthropic::tool_stream(call, request), None, request)
    }

    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered {
        match error_parts(kind) {
            Some((status, error_type, _, message)) => {
                error_response(status, error_type, message, request)
            }
            // Content policy: Anthropic's refusal.
            None if stream => Self::stream(&[], Ending::Error(kind), request),
            None => invoke_fixed(Anthropic::error(kind, false, request), request, 0),
        }
    }
}
