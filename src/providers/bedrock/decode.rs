//! Converse response decoding: a Converse body → OpenAI's chat shape, and the pieces the
//! stream shares (stop reasons, usage, reasoning blobs).

use serde::Deserialize;
use serde_json::{Map, Value};

use super::converse::SOURCE;
use crate::types::{
    ChatResponse, Choice, Content, FinishReason, Message, Role, ThinkingBlock, ToolCall, Usage,
};
use crate::types::{Error, ErrorKind};

/// Converse's token usage (`usage` of an answer, of a stream's `metadata`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub(crate) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    cache_write_input_tokens: Option<u64>,
    /// Claude's answers repeat the cache counts under these names.
    cache_read_input_token_count: Option<u64>,
    cache_write_input_token_count: Option<u64>,
}

impl WireUsage {
    /// Normalised usage: Converse's `inputTokens` leaves out cached tokens, polyrelay's
    /// input counts them (`totalTokens = input + cacheRead + cacheWrite + output`).
    pub(crate) fn normalise(&self) -> Usage {
        let read = self
            .cache_read_input_tokens
            .or(self.cache_read_input_token_count)
            .unwrap_or(0);
        let write = self
            .cache_write_input_tokens
            .or(self.cache_write_input_token_count)
            .unwrap_or(0);
        let mut u = Usage::new(
            self.input_tokens
                .unwrap_or(0)
                .saturating_add(read)
                .saturating_add(write),
            self.output_tokens.unwrap_or(0),
        );
        u.cache_read_tokens = read;
        u.cache_write_tokens = write;
        u
    }
}

/// A stop reason: `Ok(None)` for none, an error for the ones that are failures
/// (`malformed_model_output`, `malformed_tool_use`: the model's output could not be used;
/// a retry may do better).
pub(crate) fn finish_reason(stop: Option<&str>) -> Result<Option<FinishReason>, Error> {
    Ok(Some(match stop.unwrap_or("") {
        "" => return Ok(None),
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        bad @ ("malformed_model_output" | "malformed_tool_use") => {
            return Err(Error::new(
                ErrorKind::Server,
                format!("Bedrock stopped the answer with {bad}: the model's output was malformed"),
            )
            .with_code(bad));
        }
        other => FinishReason::from(other),
    }))
}

/// A reasoning blob (`redactedContent`, base64 in JSON) as the text polyrelay keeps:
/// the decoded bytes when they are UTF-8 (Claude's are), else the base64 as sent.
pub(crate) fn redacted_text(b64: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| b64.to_owned())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAnswer {
    #[serde(default)]
    output: Option<WireOutput>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireOutput {
    #[serde(default)]
    message: Option<WireMessage>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<WireBlock>,
}

/// One content block of an answer (a union: one member set).
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireBlock {
    text: Option<String>,
    tool_use: Option<WireToolUse>,
    reasoning_content: Option<WireReasoning>,
    citations_content: Option<WireCitations>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireToolUse {
    #[serde(default)]
    tool_use_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    input: Option<Value>,
    /// `tool_use`, or `server_tool_use` for a tool Bedrock ran itself.
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireReasoning {
    reasoning_text: Option<WireReasoningText>,
    redacted_content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireReasoningText {
    text: String,
    signature: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireCitations {
    citations: Vec<Value>,
    content: Vec<WireBlock>,
}

/// The arguments text of a tool input object: compact JSON, `{}` when absent.
fn arguments_text(input: Option<&Value>) -> String {
    match input {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// Decodes a successful (2xx) Converse body, redacting what goes into errors. A body with
/// nothing in it is a `Decode` error ([`require_answer`](crate::providers::require_answer)).
pub(crate) fn decode_response(
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Result<ChatResponse, Error> {
    let shown = || redact(&String::from_utf8_lossy(body));
    let wire: WireAnswer = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            "response is not a Bedrock Converse answer",
        )
        .with_body(&shown())
        .with_source(e)
    })?;
    let finish = finish_reason(wire.stop_reason.as_deref())?;
    let blocks = wire
        .output
        .and_then(|o| o.message)
        .map(|m| m.content)
        .unwrap_or_default();
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut thinking = Vec::new();
    let mut calls = Vec::new();
    let mut annotations = Vec::new();
    let push_text = |b: &WireBlock, text: &mut String| {
        if let Some(t) = &b.text {
            text.push_str(t);
        }
    };
    for b in blocks {
        push_text(&b, &mut text);
        if let Some(tu) = b.tool_use
            && tu.kind.as_deref() != Some("server_tool_use")
        {
            let arguments = arguments_text(tu.input.as_ref());
            calls.push(ToolCall::function(tu.tool_use_id, tu.name, arguments));
        }
        if let Some(r) = b.reasoning_content {
            if let Some(rt) = r.reasoning_text {
                reasoning.push_str(&rt.text);
                if let Some(sig) = rt.signature.filter(|s| !s.is_empty()) {
                    thinking.push(ThinkingBlock::Thinking {
                        thinking: rt.text,
                        signature: Some(sig),
                        source: Some(SOURCE.to_owned()),
                    });
                }
            }
            if let Some(data) = &r.redacted_content {
                thinking.push(ThinkingBlock::Redacted {
                    data: redacted_text(data),
                });
            }
        }
        if let Some(c) = &b.citations_content {
            let start = text.chars().count();
            for inner in &c.content {
                push_text(inner, &mut text);
            }
            let end = text.chars().count();
            for citation in &c.citations {
                annotations.push(citation_annotation(citation, start, end));
            }
        }
    }
    let mut message = Message::new(Role::Assistant, "");
    message.content = if text.is_empty() && !calls.is_empty() {
        None
    } else {
        Some(Content::Text(text))
    };
    message.reasoning = (!reasoning.is_empty()).then_some(reasoning);
    message.thinking_blocks = thinking;
    message.tool_calls = calls;
    if !annotations.is_empty() {
        message
            .extra
            .insert("annotations".to_owned(), Value::Array(annotations));
    }
    let mut resp = ChatResponse {
        choices: vec![Choice::new(0, message, finish)],
        usage: wire.usage.map(|u| u.normalise()),
        ..ChatResponse::default()
    };
    resp.object = "chat.completion".to_owned();
    crate::providers::require_answer(
        resp,
        "no output message",
        "no content block and no `stopReason` (an empty body, or not a Converse answer)",
        shown,
    )
}

/// A Converse citation as an annotation on the answer: `{"type": "citation", "start_index",
/// "end_index"` (characters of the cited text in the content), `"citation"`: Bedrock's own
/// object (`title`, `location`, `sourceContent`)`}`.
fn citation_annotation(citation: &Value, start: usize, end: usize) -> Value {
    let mut m = Map::new();
    m.insert("type".to_owned(), Value::from("citation"));
    m.insert("start_index".to_owned(), Value::from(start));
    m.insert("end_index".to_owned(), Value::from(end));
    m.insert("citation".to_owned(), citation.clone());
    Value::Object(m)
}
