//! Bodies in the OpenAI Chat Completions dialect, with keys in the order OpenAI sends them.

use serde_json::Value;

use super::RecordedRequest;

/// The model echoed when the request names none.
const FALLBACK_MODEL: &str = "polyrelay-sim";

/// A JSON string literal (quoted and escaped).
fn js(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn created() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// ceil(chars / 4).
fn estimate_tokens(chars: usize) -> usize {
    chars.div_ceil(4)
}

/// The characters of text in the request's `messages` (string contents and text parts).
fn prompt_chars(request: &RecordedRequest) -> usize {
    let Some(messages) = request.body.get("messages").and_then(Value::as_array) else {
        return 0;
    };
    messages
        .iter()
        .map(|message| match message.get("content") {
            Some(Value::String(s)) => s.chars().count(),
            Some(Value::Array(parts)) => parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .map(|t| t.chars().count())
                .sum(),
            _ => 0,
        })
        .sum()
}

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

fn model(request: &RecordedRequest) -> String {
    js(request.model.as_deref().unwrap_or(FALLBACK_MODEL))
}

/// A non-streaming `chat.completion` object.
pub(crate) fn completion(text: &str, request: &RecordedRequest) -> String {
    format!(
        concat!(
            r#"{{"id":"chatcmpl-sim-{seq}","object":"chat.completion","created":{created},"model":{model},"#,
            r#""choices":[{{"index":0,"message":{{"role":"assistant","content":{content},"refusal":null}},"#,
            r#""logprobs":null,"finish_reason":"stop"}}],"usage":{usage},"system_fingerprint":"fp_sim"}}"#
        ),
        seq = request.seq,
        created = created(),
        model = model(request),
        content = js(text),
        usage = usage(request, text.chars().count()),
    )
}

/// The SSE frames of a streamed completion of `pieces`, ending with `data: [DONE]`.
pub(crate) fn stream_frames(pieces: &[String], request: &RecordedRequest) -> Vec<String> {
    let prefix = format!(
        r#"data: {{"id":"chatcmpl-sim-{}","object":"chat.completion.chunk","created":{},"model":{},"system_fingerprint":"fp_sim","choices":"#,
        request.seq,
        created(),
        model(request),
    );
    let choice = |delta: &str, finish: &str| {
        format!(
            r#"{prefix}[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]}}"#
        ) + "\n\n"
    };
    let mut frames = Vec::with_capacity(pieces.len() + 4);
    frames.push(choice(r#"{"role":"assistant","content":""}"#, "null"));
    for piece in pieces {
        frames.push(choice(&format!(r#"{{"content":{}}}"#, js(piece)), "null"));
    }
    frames.push(choice("{}", r#""stop""#));
    let completion_chars = pieces.iter().map(|p| p.chars().count()).sum();
    frames.push(
        format!(
            r#"{prefix}[],"usage":{}}}"#,
            usage(request, completion_chars)
        ) + "\n\n",
    );
    frames.push("data: [DONE]\n\n".to_owned());
    frames
}

/// An OpenAI error body.
pub(crate) fn error_body(error_type: &str, code: Option<&str>, message: &str) -> String {
    format!(
        r#"{{"error":{{"message":{},"type":{},"param":null,"code":{}}}}}"#,
        js(message),
        js(error_type),
        code.map_or_else(|| "null".to_owned(), js),
    )
}
