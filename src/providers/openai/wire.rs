//! OpenAI Chat Completions wire format: request encoding and response decoding, as pure
//! functions over bytes.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::http::classify;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, FinishReason, Message,
    ReasoningEffort, ResponseFormat, Role, Tool, ToolCall, ToolChoice, Usage,
};
use crate::types::{Error, ErrorKind};

/// Per-vendor differences in what the request may contain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestQuirks {
    /// The vendor accepts `stream_options` (so we can ask for usage in streams).
    pub stream_options: bool,
    /// The vendor accepts `max_completion_tokens`; otherwise it is sent as `max_tokens`.
    pub max_completion_tokens: bool,
}

impl Default for RequestQuirks {
    fn default() -> Self {
        RequestQuirks {
            stream_options: true,
            max_completion_tokens: true,
        }
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: WireMessages<'a>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    tools: &'a [Tool],
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<&'a ToolChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<&'a ResponseFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    n: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a ReasoningEffort>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<WireStreamOptions<'a>>,
    #[serde(flatten)]
    extra: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct WireStreamOptions<'a> {
    include_usage: bool,
    #[serde(flatten)]
    extra: Option<&'a Map<String, Value>>,
}

struct WireMessages<'a>(&'a [Message]);

impl Serialize for WireMessages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(WireMessage))
    }
}

/// A message as sent to OpenAI-family vendors: reasoning text is not sent back (DeepSeek
/// rejects it, the others ignore it).
struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m = self.0;
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("role", &m.role)?;
        match &m.content {
            Some(c) => map.serialize_entry("content", c)?,
            // An assistant turn that only calls tools: OpenAI wants explicit null content.
            None => map.serialize_entry("content", &Value::Null)?,
        }
        if let Some(name) = &m.name {
            map.serialize_entry("name", name)?;
        }
        if !m.tool_calls.is_empty() {
            map.serialize_entry("tool_calls", &WireToolCalls(&m.tool_calls))?;
        }
        if let Some(id) = &m.tool_call_id {
            map.serialize_entry("tool_call_id", id)?;
        }
        if let Some(r) = &m.refusal {
            map.serialize_entry("refusal", r)?;
        }
        for (k, v) in &m.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// Tool calls as OpenAI-family vendors take them (no Gemini thought signature).
struct WireToolCalls<'a>(&'a [ToolCall]);

impl Serialize for WireToolCalls<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            function: &'a crate::types::FunctionCall,
        }
        s.collect_seq(self.0.iter().map(|c| Call {
            id: &c.id,
            kind: &c.kind,
            function: &c.function,
        }))
    }
}

/// Encodes `req` for `model` as an OpenAI Chat Completions JSON body.
pub(crate) fn encode_request(
    req: &ChatRequest,
    model: &str,
    stream: bool,
    quirks: RequestQuirks,
) -> Result<Vec<u8>, Error> {
    let (max_tokens, max_completion_tokens) = if quirks.max_completion_tokens {
        (req.max_tokens, req.max_completion_tokens)
    } else {
        (req.max_tokens.or(req.max_completion_tokens), None)
    };
    let stream_options = (stream && quirks.stream_options).then(|| WireStreamOptions {
        include_usage: true,
        extra: req.stream_options.as_ref().map(|o| &o.extra),
    });
    let body = WireRequest {
        model,
        messages: WireMessages(&req.messages),
        tools: &req.tools,
        tool_choice: req.tool_choice.as_ref(),
        parallel_tool_calls: req.parallel_tool_calls,
        response_format: req.response_format.as_ref(),
        temperature: req.temperature,
        top_p: req.top_p,
        max_tokens,
        max_completion_tokens,
        stop: &req.stop,
        seed: req.seed,
        n: req.n,
        user: req.user.as_deref(),
        reasoning_effort: req.reasoning_effort.as_ref(),
        stream,
        stream_options,
        extra: &req.extra,
    };
    // Sized up front: one allocation for typical requests instead of a doubling series.
    let hint = 256
        + req
            .messages
            .iter()
            .map(|m| {
                m.content.as_ref().map_or(0, |c| match c {
                    Content::Text(t) => t.len() + 32,
                    Content::Parts(p) => p.len() * 128,
                })
            })
            .sum::<usize>();
    let mut out = Vec::with_capacity(hint);
    serde_json::to_writer(&mut out, &body)
        .map(|()| out)
        .map_err(|e| {
            Error::new(ErrorKind::InvalidRequest, "could not encode the request").with_source(e)
        })
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    system_fingerprint: Option<String>,
    #[serde(default)]
    service_tier: Option<String>,
    /// Some gateways answer HTTP 200 with an error object.
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    message: Option<WireMessageIn>,
    #[serde(default, deserialize_with = "finish_reason")]
    finish_reason: Option<FinishReason>,
    #[serde(default)]
    logprobs: Option<Value>,
}

#[derive(Deserialize, Default)]
pub(crate) struct WireMessageIn {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(default)]
    refusal: Option<String>,
    /// Gemini's OpenAI-compatible endpoint: the turn's thought signature, here or in
    /// `extra_content.google.thought_signature`.
    #[serde(default)]
    thought_signature: Option<String>,
    #[serde(default)]
    extra_content: Option<Value>,
}

/// A finish reason, `""` and `null` meaning none.
pub(crate) fn finish_reason<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<FinishReason>, D::Error> {
    // Decoded straight into the enum (no string allocated for known values).
    Ok(Option::<FinishReason>::deserialize(d)?.filter(|r| r.as_str() != ""))
}

/// Splits content that some vendors send as an array (Mistral's magistral models put
/// `{"type":"thinking","thinking":[{"type":"text","text":…}]}` parts before the text) into
/// text and reasoning.
pub(crate) fn split_reasoning(content: Option<Content>) -> (Option<Content>, Option<String>) {
    let Some(Content::Parts(parts)) = content else {
        return (content, None);
    };
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut other = Vec::new();
    for part in parts {
        match part {
            ContentPart::Text { text: t } => text.push_str(&t),
            ContentPart::Other(v) if v.get("type").and_then(Value::as_str) == Some("thinking") => {
                collect_thinking(v.get("thinking"), &mut reasoning)
            }
            p => other.push(p),
        }
    }
    let content = if other.is_empty() {
        Some(Content::Text(text))
    } else {
        if !text.is_empty() {
            other.insert(0, ContentPart::Text { text });
        }
        Some(Content::Parts(other))
    };
    (content, (!reasoning.is_empty()).then_some(reasoning))
}

fn collect_thinking(v: Option<&Value>, out: &mut String) {
    match v {
        Some(Value::String(s)) => out.push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                if let Some(t) = item.get("text").and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
        }
        _ => {}
    }
}

impl WireMessageIn {
    pub(crate) fn into_message(self) -> Message {
        let (content, part_reasoning) = split_reasoning(self.content);
        let mut m = Message::new(self.role.unwrap_or(Role::Assistant), "");
        let tool_calls = self.tool_calls.unwrap_or_default();
        m.content = match content {
            // Tool-call turns often carry `content: null` or "": keep it absent.
            Some(c) if c.is_empty() && !tool_calls.is_empty() => None,
            None if tool_calls.is_empty() => Some(Content::Text(String::new())),
            c => c,
        };
        m.reasoning = self
            .reasoning_content
            .or(self.reasoning)
            .or(part_reasoning)
            .filter(|r| !r.is_empty());
        m.tool_calls = tool_calls;
        // Gemini signs a turn's first function call; keep it there so a failover to the
        // native Gemini API can send it back.
        let signature = self.thought_signature.or_else(|| {
            self.extra_content
                .as_ref()
                .and_then(|e| e.pointer("/google/thought_signature"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if let (Some(sig), Some(first)) = (signature, m.tool_calls.first_mut())
            && first.thought_signature.is_none()
        {
            first.thought_signature = Some(sig);
        }
        m.refusal = self.refusal;
        m
    }
}

/// Decodes a successful (HTTP 2xx) OpenAI Chat Completions body. A body with nothing in it
/// (`{}`, no `choices`, another vendor's dialect, or only choices without content, tool calls,
/// refusal or finish reason) is an [`ErrorKind::Decode`] error, not an empty answer.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, Error> {
    decode_response_with(body, &|s| s.to_owned())
}

/// [`decode_response`], redacting what goes into errors. A gateway that answers HTTP 200 with
/// an error object gets that error, classified by the code inside; a body with nothing in it
/// is a `Decode` error ([`require_answer`](crate::providers::require_answer)).
pub(crate) fn decode_response_with(
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Result<ChatResponse, Error> {
    let wire: WireResponse = serde_json::from_slice(body).map_err(|e| {
        Error::new(ErrorKind::Decode, "response is not a chat completion")
            .with_body(&redact(&String::from_utf8_lossy(body)))
            .with_source(e)
    })?;
    if let Some(err) = wire.error.as_ref().filter(|e| !e.is_null()) {
        let status = err
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        let v = classify::parse_error_body(body);
        let kind = classify::kind_for(status, &v);
        return Err(classify::error_from_vendor(
            kind,
            v,
            Some(status),
            &reqwest::header::HeaderMap::new(),
            body,
            redact,
        ));
    }
    crate::providers::require_answer(
        wire.into_response(),
        "no `choices` (an empty body, or not a chat completion)",
        "no choice has content, a tool call, a refusal or a finish reason",
        || redact(&String::from_utf8_lossy(body)),
    )
}

impl WireResponse {
    fn into_response(self) -> ChatResponse {
        let choices = self
            .choices
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut choice = Choice::new(
                    c.index.unwrap_or(i as u32),
                    c.message.unwrap_or_default().into_message(),
                    c.finish_reason,
                );
                choice.logprobs = c.logprobs.filter(|v| !v.is_null());
                choice
            })
            .collect();
        let mut resp = ChatResponse {
            id: self.id.unwrap_or_default(),
            created: self.created.unwrap_or_default(),
            model: self.model.unwrap_or_default(),
            choices,
            usage: self.usage,
            system_fingerprint: self.system_fingerprint,
            service_tier: self.service_tier,
            ..ChatResponse::default()
        };
        resp.object = "chat.completion".to_owned();
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(req: &ChatRequest, stream: bool, quirks: RequestQuirks) -> Value {
        serde_json::from_slice(&encode_request(req, "m", stream, quirks).unwrap()).unwrap()
    }

    #[test]
    fn quirks_shape_the_body() {
        let mut req = ChatRequest::new("route").user("hi");
        req.max_completion_tokens = Some(64);
        let openai = body(&req, true, RequestQuirks::default());
        assert_eq!(openai["max_completion_tokens"], 64);
        assert_eq!(openai["stream_options"], json!({"include_usage": true}));
        let mistral = body(
            &req,
            true,
            RequestQuirks {
                stream_options: false,
                max_completion_tokens: false,
            },
        );
        assert_eq!(
            mistral["max_tokens"], 64,
            "sent under the name the vendor accepts"
        );
        assert!(mistral.get("max_completion_tokens").is_none());
        assert!(mistral.get("stream_options").is_none());
    }

    #[test]
    fn vendor_only_fields_are_not_sent_back() {
        let mut asst = Message::assistant("answer");
        asst.reasoning = Some("thought".into());
        asst.thinking_blocks = vec![crate::types::ThinkingBlock::Redacted { data: "x".into() }];
        let mut call = ToolCall::function("c1", "f", "{}");
        call.thought_signature = Some("sig".into());
        asst.tool_calls = vec![call];
        let req = ChatRequest::new("r").user("q").message(asst);
        let b = body(&req, false, RequestQuirks::default());
        let m = &b["messages"][1];
        assert!(m.get("reasoning_content").is_none() && m.get("thinking_blocks").is_none());
        assert_eq!(
            m["tool_calls"][0],
            json!({"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}})
        );
        assert!(b.get("stream").is_none());
    }
}
