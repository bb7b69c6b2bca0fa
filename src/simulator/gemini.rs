//! Bodies in the Google Gemini dialect (`POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent`). JSON bodies are pretty-printed as Google sends them; stream
//! chunks use `": "` after keys, and `?alt=sse` streams are framed with CRLF line ends.
//! Without `alt=sse` the stream is one JSON array whose elements arrive one per HTTP chunk.

use super::RecordedRequest;
use super::common::SimError;
use super::common::{
    Ending, Rendered, Speaker, ToolCall, estimate_tokens, js, model, pretty, prompt_chars, spaced,
};

/// The Gemini dialect.
pub(crate) struct Gemini;

const JSON: &str = "application/json; charset=UTF-8";
const SSE: &str = "text/event-stream";

fn response_id(request: &RecordedRequest) -> String {
    format!("simResponse{:012}", request.seq)
}

fn prompt_tokens(request: &RecordedRequest) -> usize {
    estimate_tokens(prompt_chars(request))
}

/// `usageMetadata`; `candidates` is `None` when nothing was generated.
fn usage(request: &RecordedRequest, candidates: Option<usize>) -> String {
    let prompt = prompt_tokens(request);
    let candidates_field =
        candidates.map_or_else(String::new, |c| format!(r#""candidatesTokenCount":{c},"#));
    format!(
        concat!(
            r#"{{"promptTokenCount":{prompt},{candidates_field}"totalTokenCount":{total},"#,
            r#""promptTokensDetails":[{{"modality":"TEXT","tokenCount":{prompt}}}]}}"#
        ),
        prompt = prompt,
        candidates_field = candidates_field,
        total = prompt + candidates.unwrap_or(0),
    )
}

/// A `GenerateContentResponse` with one candidate (compact JSON).
fn response(request: &RecordedRequest, candidate: &str, usage: &str) -> String {
    format!(
        r#"{{"candidates":[{candidate}],"usageMetadata":{usage},"modelVersion":{},"responseId":"{}"}}"#,
        js(model(request)),
        response_id(request),
    )
}

/// A candidate whose content is `parts`.
fn candidate(parts: &str, finish: Option<&str>) -> String {
    let finish = finish.map_or_else(String::new, |f| format!(r#""finishReason":"{f}","#));
    format!(r#"{{"content":{{"parts":{parts},"role":"model"}},{finish}"index":0}}"#)
}

fn text_part(text: &str) -> String {
    format!(r#"[{{"text":{}}}]"#, js(text))
}

fn call_part(call: &ToolCall) -> String {
    format!(
        r#"[{{"functionCall":{{"name":{},"args":{}}}}}]"#,
        js(&call.name),
        call.object()
    )
}

/// The candidate of an answer blocked for safety: empty content, finish reason `SAFETY`.
const SAFETY_CANDIDATE: &str = concat!(
    r#"{"content":{},"finishReason":"SAFETY","index":0,"safetyRatings":["#,
    r#"{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"NEGLIGIBLE"},"#,
    r#"{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"HIGH","blocked":true},"#,
    r#"{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"},"#,
    r#"{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"NEGLIGIBLE"}]}"#
);

/// Whether a streamed answer to `request` is SSE (`alt=sse`, or not a
/// `:streamGenerateContent` request at all) rather than a JSON array.
fn wants_sse(request: &RecordedRequest) -> bool {
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    !path.contains(":streamGenerateContent") || query.split('&').any(|p| p == "alt=sse")
}

/// Frames compact JSON chunks as the request's stream form asks.
fn stream_of(chunks: Vec<String>, request: &RecordedRequest) -> Rendered {
    if wants_sse(request) {
        let frames = chunks
            .iter()
            .map(|c| format!("data: {}\r\n\r\n", spaced(c)))
            .collect();
        Rendered::frames(SSE, frames).header("content-disposition", "attachment")
    } else {
        let last = chunks.len().saturating_sub(1);
        let mut frames: Vec<String> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{}{}", if i == 0 { "[" } else { ",\r\n" }, spaced(c)))
            .collect();
        match frames.get_mut(last) {
            Some(frame) => frame.push(']'),
            None => frames.push("[]".to_owned()),
        }
        Rendered::frames(JSON, frames)
    }
}

/// The `error` object Google answers `kind` with, and its HTTP status. `None` for content
/// policy, which Gemini answers with a `SAFETY` finish instead of an error.
fn error_object(kind: SimError, request: &RecordedRequest) -> Option<(u16, String)> {
    let quota = |per: &str, limit: u32, retry_secs: u64, message_delay: &str| {
        let model = model(request);
        let message = format!(
            concat!(
                "You exceeded your current quota, please check your plan and billing details. ",
                "For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. ",
                "To monitor your current usage, head to: https://ai.dev/rate-limit. \n",
                "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, ",
                "limit: {limit}, model: {model}\nPlease retry in {delay}."
            ),
            limit = limit,
            model = model,
            delay = message_delay,
        );
        let details = format!(
            concat!(
                r#"[{{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{{"#,
                r#""quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","#,
                r#""quotaId":"GenerateRequestsPer{per}PerProjectPerModel-FreeTier","#,
                r#""quotaDimensions":{{"location":"global","model":{model}}},"quotaValue":"{limit}"}}]}},"#,
                r#"{{"@type":"type.googleapis.com/google.rpc.Help","links":[{{"#,
                r#""description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}}]}},"#,
                r#"{{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"{retry}s"}}]"#
            ),
            per = per,
            model = js(model),
            limit = limit,
            retry = retry_secs,
        );
        (429, "RESOURCE_EXHAUSTED", message, Some(details))
    };
    let (code, status, message, details) = match kind {
        SimError::RateLimited { retry_after_secs } => quota(
            "Minute",
            10,
            retry_after_secs,
            &format!("{retry_after_secs}s"),
        ),
        SimError::QuotaExhausted => quota("Day", 20, 36, "36.429760048s"),
        SimError::Overloaded => (
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.".to_owned(),
            None,
        ),
        SimError::Server | SimError::ModelError => (
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting".to_owned(),
            None,
        ),
        SimError::Auth => (
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.".to_owned(),
            Some(
                concat!(
                    r#"[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","#,
                    r#""domain":"googleapis.com","metadata":{"service":"generativelanguage.googleapis.com"}},"#,
                    r#"{"@type":"type.googleapis.com/google.rpc.LocalizedMessage","locale":"en-US","#,
                    r#""message":"API key not valid. Please pass a valid API key."}]"#
                )
                .to_owned(),
            ),
        ),
        SimError::ContextLength => (
            400,
            "INVALID_ARGUMENT",
            "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576).".to_owned(),
            None,
        ),
        SimError::ContentPolicy => return None,
        SimError::InvalidRequest => {
            let message = r#"Invalid JSON payload received. Unknown name "temprature" at 'generation_config': Cannot find field."#;
            (
                400,
                "INVALID_ARGUMENT",
                message.to_owned(),
                Some(format!(
                    r#"[{{"@type":"type.googleapis.com/google.rpc.BadRequest","fieldViolations":[{{"field":"generation_config","description":{}}}]}}]"#,
                    js(message)
                )),
            )
        }
    };
    Some((code, error_json(code, status, &message, details.as_deref())))
}

/// A `google.rpc.Status` error body, compact: `{"error":{"code","message","status","details"}}`.
pub(crate) fn error_json(code: u16, status: &str, message: &str, details: Option<&str>) -> String {
    let details = details.map_or_else(String::new, |d| format!(r#","details":{d}"#));
    format!(
        r#"{{"error":{{"code":{code},"message":{},"status":{}{details}}}}}"#,
        js(message),
        js(status)
    )
}

/// A Gemini HTTP error, pretty-printed as Google sends it. Gemini sends no retry headers.
pub(crate) fn error_response(code: u16, status: &str, message: &str) -> Rendered {
    Rendered::fixed(code, JSON, pretty(&error_json(code, status, message, None)))
}

impl Speaker for Gemini {
    fn text(text: &str, request: &RecordedRequest) -> Rendered {
        let output = estimate_tokens(text.chars().count());
        let body = response(
            request,
            &candidate(&text_part(text), Some("STOP")),
            &usage(request, Some(output)),
        );
        Rendered::fixed(200, JSON, pretty(&body))
    }

    fn stream(pieces: &[String], ending: Ending, request: &RecordedRequest) -> Rendered {
        let mut chunks = Vec::with_capacity(pieces.len() + 1);
        let mut chars = 0;
        let last = pieces.len().saturating_sub(1);
        for (i, piece) in pieces.iter().enumerate() {
            chars += piece.chars().count();
            let finish = (i == last && matches!(ending, Ending::Finish)).then_some("STOP");
            chunks.push(response(
                request,
                &candidate(&text_part(piece), finish),
                &usage(request, Some(estimate_tokens(chars))),
            ));
        }
        match ending {
            Ending::Finish if pieces.is_empty() => chunks.push(response(
                request,
                &candidate(&text_part(""), Some("STOP")),
                &usage(request, Some(0)),
            )),
            Ending::Finish => {}
            Ending::Error(kind) => match error_object(kind, request) {
                Some((_, error)) => chunks.push(error),
                None => chunks.push(response(
                    request,
                    SAFETY_CANDIDATE,
                    &usage(request, Some(estimate_tokens(chars))),
                )),
            },
        }
        stream_of(chunks, request)
    }

    fn tool(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        let body = response(
            request,
            &candidate(&call_part(call), Some("STOP")),
            &usage(request, Some(estimate_tokens(call.chars()))),
        );
        Rendered::fixed(200, JSON, pretty(&body))
    }

    fn tool_stream(call: &ToolCall, request: &RecordedRequest) -> Rendered {
        // Gemini sends a function call whole, in one chunk.
        let chunk = response(
            request,
            &candidate(&call_part(call), Some("STOP")),
            &usage(request, Some(estimate_tokens(call.chars()))),
        );
        stream_of(vec![chunk], request)
    }

    fn error(kind: SimError, stream: bool, request: &RecordedRequest) -> Rendered {
        match error_object(kind, request) {
            Some((code, error)) => Rendered::fixed(code, JSON, pretty(&error)),
            // Content policy: a 200 answer whose candidate was blocked.
            None => {
                let body = response(request, SAFETY_CANDIDATE, &usage(request, None));
                if stream {
                    stream_of(vec![body], request)
                } else {
                    Rendered::fixed(200, JSON, pretty(&body))
                }
            }
        }
    }
}
