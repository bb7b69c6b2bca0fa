//! Anthropic Messages wire format: request encoding, response and error decoding, as pure
//! functions over bytes.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::http::classify::{self, VendorError};
use crate::http::retry_after::MAX_RETRY_AFTER;
use crate::types::{
    ChatRequest, ChatResponse, Choice, Content, ContentPart, FinishReason, Message,
    ReasoningEffort, ResponseFormat, Role, ThinkingBlock, Tool, ToolCall, ToolChoice, Usage,
};
use crate::types::{Error, ErrorKind};

/// The `source` of the thinking blocks this vendor signs: its signatures go back to it only.
pub(crate) const SOURCE: &str = "anthropic";

/// `max_tokens` sent when the request sets no output limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The system instruction added for `response_format: {"type": "json_object"}`, which the
/// Messages API has no parameter for.
pub const JSON_OBJECT_INSTRUCTION: &str =
    "Respond with a single valid JSON object only, with no text before or after it.";

/// The extended-thinking budget for a `reasoning_effort`: `low` 1024 tokens (Anthropic's
/// minimum), `medium` 4096, `high` 16384, the non-OpenAI `xhigh`/`max` 32768; `none`,
/// `minimal` and unknown values turn thinking off.
pub fn thinking_budget(effort: &ReasoningEffort) -> Option<u32> {
    match effort {
        ReasoningEffort::None | ReasoningEffort::Minimal => None,
        ReasoningEffort::Low => Some(1024),
        ReasoningEffort::Medium => Some(4096),
        ReasoningEffort::High => Some(16384),
        ReasoningEffort::Other(s) => match s.as_str() {
            "xhigh" | "max" => Some(32768),
            _ => None,
        },
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, msg)
}

// ---------------------------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------------------------

/// One content block of a request turn.
enum Block<'a> {
    Text(&'a str),
    ImageBase64 {
        media_type: &'a str,
        data: &'a str,
    },
    ImageUrl(&'a str),
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: ToolResultContent<'a>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking(&'a str),
    /// An Anthropic-native block (`image`, `document`) given as a raw part, sent as it is.
    Raw(&'a Value),
}

enum ToolResultContent<'a> {
    None,
    Text(&'a str),
    Blocks(Vec<Block<'a>>),
}

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Base64<'b> {
            #[serde(rename = "type")]
            kind: &'static str,
            media_type: &'b str,
            data: &'b str,
        }
        #[derive(Serialize)]
        struct Url<'b> {
            #[serde(rename = "type")]
            kind: &'static str,
            url: &'b str,
        }
        if let Block::Raw(v) = self {
            return v.serialize(s);
        }
        let mut m = s.serialize_map(None)?;
        match self {
            Block::Text(text) => {
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
            }
            Block::ImageBase64 { media_type, data } => {
                m.serialize_entry("type", "image")?;
                m.serialize_entry(
                    "source",
                    &Base64 {
                        kind: "base64",
                        media_type,
                        data,
                    },
                )?;
            }
            Block::ImageUrl(url) => {
                m.serialize_entry("type", "image")?;
                m.serialize_entry("source", &Url { kind: "url", url })?;
            }
            Block::ToolUse { id, name, input } => {
                m.serialize_entry("type", "tool_use")?;
                m.serialize_entry("id", id)?;
                m.serialize_entry("name", name)?;
                m.serialize_entry("input", input)?;
            }
            Block::ToolResult {
                tool_use_id,
                content,
            } => {
                m.serialize_entry("type", "tool_result")?;
                m.serialize_entry("tool_use_id", tool_use_id)?;
                match content {
                    ToolResultContent::None => {}
                    ToolResultContent::Text(t) => m.serialize_entry("content", t)?,
                    ToolResultContent::Blocks(b) => m.serialize_entry("content", b)?,
                }
            }
            Block::Thinking {
                thinking,
                signature,
            } => {
                m.serialize_entry("type", "thinking")?;
                m.serialize_entry("thinking", thinking)?;
                m.serialize_entry("signature", signature)?;
            }
            Block::RedactedThinking(data) => {
                m.serialize_entry("type", "redacted_thinking")?;
                m.serialize_entry("data", data)?;
            }
            Block::Raw(_) => {}
        }
        m.end()
    }
}

/// One turn of the conversation; thinking blocks go first, as Anthropic requires.
struct Turn<'a> {
    role: &'static str,
    thinking: Vec<Block<'a>>,
    blocks: Vec<Block<'a>>,
}

impl Serialize for Turn<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Blocks<'b, 'a>(&'b [Block<'a>], &'b [Block<'a>]);
        impl Serialize for Blocks<'_, '_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter().chain(self.1.iter()))
            }
        }
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("role", self.role)?;
        m.serialize_entry("content", &Blocks(&self.thinking, &self.blocks))?;
        m.end()
    }
}

enum WireTool<'a> {
    Function {
        name: &'a str,
        description: Option<&'a str>,
        input_schema: Cow<'a, Value>,
    },
    /// A non-function tool (an Anthropic server tool such as `web_search_20250305`),
    /// sent as `{"type": kind, ...extra}`.
    Raw {
        kind: &'a str,
        extra: &'a Map<String, Value>,
    },
}

impl Serialize for WireTool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            WireTool::Function {
                name,
                description,
                input_schema,
            } => {
                m.serialize_entry("name", name)?;
                if let Some(d) = description {
                    m.serialize_entry("description", d)?;
                }
                m.serialize_entry("input_schema", input_schema)?;
            }
            WireTool::Raw { kind, extra } => {
                m.serialize_entry("type", kind)?;
                for (k, v) in *extra {
                    if k != "type" {
                        m.serialize_entry(k, v)?;
                    }
                }
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Metadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct OutputConfig<'a> {
    format: OutputFormat<'a>,
}

#[derive(Serialize)]
struct OutputFormat<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    schema: &'a Value,
}

#[derive(Serialize)]
struct WireRequest<'a> {
    /// `None` where the URL names the model (Bedrock's InvokeModel, Vertex's rawPredict).
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    /// The body's API version, where the platform wants it there instead of a header
    /// (`bedrock-2023-05-31`, `vertex-2023-10-16`).
    #[serde(skip_serializing_if = "Option::is_none")]
    anthropic_version: Option<&'static str>,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Thinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<OutputConfig<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

/// Appends blocks to the last turn when it has the same role, else starts a new turn.
fn push_turn<'a>(
    turns: &mut Vec<Turn<'a>>,
    role: &'static str,
    thinking: Vec<Block<'a>>,
    blocks: Vec<Block<'a>>,
) {
    if thinking.is_empty() && blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => {
            last.thinking.extend(thinking);
            last.blocks.extend(blocks);
        }
        _ => turns.push(Turn {
            role,
            thinking,
            blocks,
        }),
    }
}

/// An image part: `data:<mime>;base64,<data>` or an `http(s)` URL.
fn image_block(url: &str) -> Result<Block<'_>, Error> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("image data URL has no data"))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| invalid("image data URLs must be base64 (data:<mime>;base64,…)"))?;
        return Ok(Block::ImageBase64 { media_type, data });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Block::ImageUrl(url));
    }
    Err(invalid(
        "image URLs must be data:<mime>;base64,… or http(s)://…",
    ))
}

/// The blocks of user-side content (text and images). Empty text is left out (Anthropic
/// rejects empty text blocks).
fn content_blocks(content: Option<&Content>) -> Result<Vec<Block<'_>>, Error> {
    let mut out = Vec::new();
    match content {
        Some(Content::Text(t)) if !t.is_empty() => out.push(Block::Text(t)),
        None | Some(Content::Text(_)) => {}
        Some(Content::Parts(parts)) => {
            for p in parts {
                match p {
                    ContentPart::Text { text } if !text.is_empty() => out.push(Block::Text(text)),
                    ContentPart::Text { .. } => {}
                    ContentPart::ImageUrl { image_url } => out.push(image_block(&image_url.url)?),
                    ContentPart::Other(v) => {
                        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
                        if matches!(kind, "image" | "document") {
                            out.push(Block::Raw(v));
                        } else {
                            return Err(invalid(format!(
                                "content part type {kind:?} is not supported by Anthropic"
                            )));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn assistant_blocks(m: &Message) -> Result<(Vec<Block<'_>>, Vec<Block<'_>>), Error> {
    let mut thinking = Vec::new();
    for b in &m.thinking_blocks {
        match b {
            ThinkingBlock::Thinking {
                thinking: text,
                signature: Some(sig),
                source,
            } if !sig.is_empty() && source.as_deref().is_none_or(|s| s == SOURCE) => {
                thinking.push(Block::Thinking {
                    thinking: text,
                    signature: sig,
                })
            }
            ThinkingBlock::Redacted { data } => thinking.push(Block::RedactedThinking(data)),
            // Unsigned reasoning cannot be sent back; unknown blocks are dropped.
            _ => {}
        }
    }
    let mut blocks = content_blocks(m.content.as_ref())?;
    for call in &m.tool_calls {
        let args = call.function.arguments.trim();
        let input = if args.is_empty() {
            Value::Object(Map::new())
        } else {
            match serde_json::from_str::<Value>(args) {
                Ok(v @ Value::Object(_)) => v,
                Ok(_) => {
                    return Err(invalid(format!(
                        "arguments of tool call {:?} ({}) are not a JSON object",
                        call.id, call.function.name
                    )));
                }
                Err(e) => {
                    return Err(invalid(format!(
                        "arguments of tool call {:?} ({}) are not JSON",
                        call.id, call.function.name
                    ))
                    .with_source(e));
                }
            }
        };
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input,
        });
    }
    Ok((thinking, blocks))
}

fn tool_result_block(m: &Message) -> Result<Block<'_>, Error> {
    let tool_use_id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| invalid("a tool message has no tool_call_id"))?;
    let content = match &m.content {
        None => ToolResultContent::None,
        Some(Content::Text(t)) if t.is_empty() => ToolResultContent::None,
        Some(Content::Text(t)) => ToolResultContent::Text(t),
        Some(c @ Content::Parts(_)) => {
            let blocks = content_blocks(Some(c))?;
            if blocks.is_empty() {
                ToolResultContent::None
            } else {
                ToolResultContent::Blocks(blocks)
            }
        }
    };
    Ok(Block::ToolResult {
        tool_use_id,
        content,
    })
}

fn wire_tool(t: &Tool) -> Result<WireTool<'_>, Error> {
    if t.kind != "function" {
        return Ok(WireTool::Raw {
            kind: &t.kind,
            extra: &t.extra,
        });
    }
    let f = t
        .function
        .as_ref()
        .ok_or_else(|| invalid("a function tool has no function declaration"))?;
    let input_schema = match &f.parameters {
        Some(v) if v.get("type").is_some() => Cow::Borrowed(v),
        // Anthropic requires `"type": "object"`; OpenAI tolerates its absence.
        Some(Value::Object(o)) => {
            let mut o = o.clone();
            o.insert("type".to_owned(), Value::from("object"));
            Cow::Owned(Value::Object(o))
        }
        _ => Cow::Owned(serde_json::json!({"type": "object", "properties": {}})),
    };
    Ok(WireTool::Function {
        name: &f.name,
        description: f.description.as_deref(),
        input_schema,
    })
}

fn wire_tool_choice(req: &ChatRequest) -> Result<Option<Value>, Error> {
    use serde_json::json;
    if req.tools.is_empty() {
        // Anthropic rejects a tool_choice without tools.
        return Ok(None);
    }
    let no_parallel = req.parallel_tool_calls == Some(false);
    let mut choice = match &req.tool_choice {
        None if no_parallel => json!({"type": "auto"}),
        None => return Ok(None),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::None) => return Ok(Some(json!({"type": "none"}))),
        Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
        Some(ToolChoice::Other(v)) => match v.get("type").and_then(Value::as_str) {
            // Already in Anthropic's shape.
            Some("auto" | "any" | "tool" | "none") => v.clone(),
            _ => {
                return Err(invalid(format!(
                    "tool_choice {v} is not supported by Anthropic"
                )));
            }
        },
    };
    if no_parallel && let Value::Object(o) = &mut choice {
        o.insert("disable_parallel_tool_use".to_owned(), Value::Bool(true));
    }
    Ok(Some(choice))
}

/// Encodes `req` for `model` as an Anthropic Messages request body. See the module docs of
/// [`crate::providers::anthropic`] for the mapping.
pub(crate) fn encode_request(
    req: &ChatRequest,
    model: &str,
    stream: bool,
    default_max_tokens: u32,
) -> Result<Vec<u8>, Error> {
    encode_request_on(req, &Platform::direct(model, stream), default_max_tokens)
}

/// Where a Messages body goes, for the fields that differ by platform: Anthropic's own API
/// names the model and the stream flag in the body; Bedrock's InvokeModel names the model in
/// the URL and the API version in the body; Vertex's rawPredict likewise, with its own
/// version, and keeps the stream flag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Platform<'a> {
    /// The model in the body (`None`: the URL names it).
    pub(crate) model: Option<&'a str>,
    /// `anthropic_version` in the body (`None`: it goes in a header).
    pub(crate) anthropic_version: Option<&'static str>,
    /// `stream` in the body (`None`: left out, the URL says whether it streams).
    pub(crate) stream: Option<bool>,
}

impl<'a> Platform<'a> {
    /// Anthropic's own API.
    pub(crate) fn direct(model: &'a str, stream: bool) -> Self {
        Platform {
            model: Some(model),
            anthropic_version: None,
            stream: Some(stream),
        }
    }
}

/// [`encode_request`] for a platform other than Anthropic's own API.
pub(crate) fn encode_request_on(
    req: &ChatRequest,
    platform: &Platform<'_>,
    default_max_tokens: u32,
) -> Result<Vec<u8>, Error> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid(
            "Anthropic generates one choice per request (n > 1)",
        ));
    }
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());
    for m in &req.messages {
        match &m.role {
            Role::System | Role::Developer => {
                let t = m.text();
                if !t.is_empty() {
                    system.push(t.into_owned());
                }
            }
            Role::User => push_turn(
                &mut turns,
                "user",
                Vec::new(),
                content_blocks(m.content.as_ref())?,
            ),
            Role::Tool => push_turn(&mut turns, "user", Vec::new(), vec![tool_result_block(m)?]),
            Role::Assistant => {
                let (thinking, blocks) = assistant_blocks(m)?;
                push_turn(&mut turns, "assistant", thinking, blocks);
            }
            Role::Other(r) => {
                return Err(invalid(format!(
                    "message role {r:?} is not supported by Anthropic"
                )));
            }
        }
    }
    let mut output_config = None;
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => system.push(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some(ResponseFormat::JsonSchema(f)) => match &f.schema {
            Some(schema) => {
                output_config = Some(OutputConfig {
                    format: OutputFormat {
                        kind: "json_schema",
                        schema,
                    },
                })
            }
            None => system.push(JSON_OBJECT_INSTRUCTION.to_owned()),
        },
        _ => {}
    }
    let budget = req.reasoning_effort.as_ref().and_then(thinking_budget);
    let limit = req.output_limit();
    let max_tokens = match (budget, limit) {
        (None, l) => l.unwrap_or(default_max_tokens),
        // The limit leaves room for the answer after the budget: keep it.
        (Some(b), Some(l)) if l > b => l,
        // Otherwise the answer gets the room asked for (or the default) after the budget.
        (Some(b), l) => b.saturating_add(l.unwrap_or(default_max_tokens)),
    };
    let thinking = budget.map(|budget_tokens| Thinking {
        kind: "enabled",
        budget_tokens,
    });
    // Extended thinking rejects sampling changes: they are left out when it is on.
    let (temperature, top_p) = if thinking.is_some() {
        (None, None)
    } else {
        (req.temperature.map(|t| t.clamp(0.0, 1.0)), req.top_p)
    };
    let body = WireRequest {
        model: platform.model,
        anthropic_version: platform.anthropic_version,
        max_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages: turns,
        tools: req.tools.iter().map(wire_tool).collect::<Result<_, _>>()?,
        tool_choice: wire_tool_choice(req)?,
        stop_sequences: &req.stop,
        temperature,
        top_p,
        metadata: req.user.as_deref().map(|user_id| Metadata { user_id }),
        thinking,
        output_config,
        stream: platform.stream.unwrap_or(false),
    };
    serde_json::to_vec(&body).map_err(|e| {
        Error::new(ErrorKind::InvalidRequest, "could not encode the request").with_source(e)
    })
}

// ---------------------------------------------------------------------------------------------
// Response
// ---------------------------------------------------------------------------------------------

/// Anthropic's usage object (every field optional: stream events repeat some, not all).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(default)]
struct OutputDetails {
    thinking_tokens: Option<u64>,
}

impl WireUsage {
    /// Fields present in `newer` replace those here (stream counts are cumulative).
    pub(crate) fn merge(&mut self, newer: &WireUsage) {
        fn take(old: &mut Option<u64>, new: Option<u64>) {
            if new.is_some() {
                *old = new;
            }
        }
        take(&mut self.input_tokens, newer.input_tokens);
        take(&mut self.output_tokens, newer.output_tokens);
        take(
            &mut self.cache_creation_input_tokens,
            newer.cache_creation_input_tokens,
        );
        take(
            &mut self.cache_read_input_tokens,
            newer.cache_read_input_tokens,
        );
        if let Some(d) = newer.output_tokens_details {
            let mut mine = self.output_tokens_details.unwrap_or_default();
            take(&mut mine.thinking_tokens, d.thinking_tokens);
            self.output_tokens_details = Some(mine);
        }
    }

    /// Normalised usage: input counts cached tokens too (Anthropic's `input_tokens` does not).
    pub(crate) fn normalise(&self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0) + read + write,
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: read,
            cache_write_tokens: write,
            reasoning_tokens: self
                .output_tokens_details
                .and_then(|d| d.thinking_tokens)
                .unwrap_or(0),
        }
    }
}

/// A content block of a response (also a `content_block_start` payload).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WireBlock {
    Text {
        #[serde(default)]
        text: Option<String>,
    },
    ToolUse {
        #[serde(default)]
        id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        input: Option<Value>,
    },
    Thinking {
        #[serde(default)]
        thinking: Option<String>,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        #[serde(default)]
        data: Option<String>,
    },
    /// Server tool calls and results, citations containers… (not client-side content).
    #[serde(other)]
    Other,
}

/// The arguments text of a `tool_use` input object: compact JSON, `{}` when absent.
pub(crate) fn arguments_text(input: Option<&Value>) -> String {
    match input {
        None | Some(Value::Null) => "{}".to_owned(),
        Some(v) => v.to_string(),
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Vec<WireBlock>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

/// A stop reason; `null`/`""` are none.
pub(crate) fn finish_reason(s: Option<&str>) -> Option<FinishReason> {
    s.filter(|s| !s.is_empty()).map(FinishReason::from)
}

/// Decodes a successful (HTTP 2xx) Messages body, redacting what goes into errors. A body with
/// nothing in it (no content block and no `stop_reason`: `{}`, another vendor's dialect) is a
/// `Decode` error ([`require_answer`](crate::providers::require_answer)).
pub(crate) fn decode_response_with(
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Result<ChatResponse, Error> {
    let wire: WireMessage = serde_json::from_slice(body).map_err(|e| {
        Error::new(ErrorKind::Decode, "response is not an Anthropic message")
            .with_body(&redact(&String::from_utf8_lossy(body)))
            .with_source(e)
    })?;
    if wire.kind.as_deref() == Some("error") {
        return Err(in_band_error(body, redact));
    }
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut blocks = Vec::new();
    let mut calls = Vec::new();
    for b in wire.content.unwrap_or_default() {
        match b {
            WireBlock::Text { text: t } => text.push_str(t.as_deref().unwrap_or("")),
            WireBlock::ToolUse { id, name, input } => calls.push(ToolCall::function(
                id.unwrap_or_default(),
                name.unwrap_or_default(),
                arguments_text(input.as_ref()),
            )),
            WireBlock::Thinking {
                thinking,
                signature,
            } => {
                let thinking = thinking.unwrap_or_default();
                reasoning.push_str(&thinking);
                // Only signed blocks can be sent back (as the stream fold keeps them).
                if let Some(sig) = signature.filter(|s| !s.is_empty()) {
                    blocks.push(ThinkingBlock::Thinking {
                        thinking,
                        signature: Some(sig),
                        source: Some(SOURCE.to_owned()),
                    });
                }
            }
            WireBlock::RedactedThinking { data } => blocks.push(ThinkingBlock::Redacted {
                data: data.unwrap_or_default(),
            }),
            WireBlock::Other => {}
        }
    }
    let mut message = Message::new(Role::Assistant, "");
    message.content = if text.is_empty() && !calls.is_empty() {
        None
    } else {
        Some(Content::Text(text))
    };
    message.reasoning = (!reasoning.is_empty()).then_some(reasoning);
    message.thinking_blocks = blocks;
    message.tool_calls = calls;
    let choice = Choice::new(0, message, finish_reason(wire.stop_reason.as_deref()));
    let mut resp = ChatResponse {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        choices: vec![choice],
        usage: wire.usage.map(|u| u.normalise()),
        ..ChatResponse::default()
    };
    resp.object = "chat.completion".to_owned();
    crate::providers::require_answer(
        resp,
        "no message",
        "no content block and no `stop_reason` (an empty body, or not an Anthropic message)",
        || redact(&String::from_utf8_lossy(body)),
    )
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// The HTTP status Anthropic documents for each error type (used to classify errors that
/// arrive without one: in a stream, or in a 200 body).
fn nominal_status(error_type: Option<&str>) -> u16 {
    match error_type.unwrap_or("") {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}

/// The kind of an Anthropic error: the shared classification, plus Anthropic's billing
/// failure, which arrives as a 400 `invalid_request_error` ("Your credit balance is too low").
fn kind_of(status: u16, v: &VendorError) -> ErrorKind {
    let msg = v.message.as_deref().unwrap_or("").to_ascii_lowercase();
    if msg.contains("credit balance is too low") {
        return ErrorKind::QuotaExhausted;
    }
    classify::kind_for(status, v)
}

/// An error that arrived without an HTTP error status: an `event: error` in a stream, or an
/// error object in a 200 body. Its kind comes from its type (`overloaded_error` → Overloaded…).
pub(crate) fn in_band_error(body: &[u8], redact: &dyn Fn(&str) -> String) -> Error {
    let v = classify::parse_error_body(body);
    let kind = kind_of(nominal_status(v.error_type.as_deref()), &v);
    classify::error_from_vendor(kind, v, None, &HeaderMap::new(), body, redact)
}

/// Decodes an HTTP error response, with `retry-after` or, failing that, the
/// `anthropic-ratelimit-*-reset` headers as the retry hint of a 429.
pub(crate) fn decode_error_with(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let v = classify::parse_error_body(body);
    let kind = kind_of(status, &v);
    let e = classify::error_from_vendor(kind, v, Some(status), headers, body, redact);
    if e.retry_after().is_none()
        && kind == ErrorKind::RateLimited
        && let Some(after) = ratelimit_reset_at(headers, SystemTime::now())
    {
        return e.with_retry_after(after);
    }
    e
}

/// When the exhausted rate limit resets, from `anthropic-ratelimit-{requests,tokens,
/// input-tokens,output-tokens}-{remaining,reset}`: the latest reset among the limits whose
/// `remaining` is 0 (or among all resets when no `remaining` header was sent). `None` when
/// no limit is exhausted or no reset parses. Capped at [`MAX_RETRY_AFTER`].
pub(crate) fn ratelimit_reset_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    const LIMITS: [&str; 4] = ["requests", "tokens", "input-tokens", "output-tokens"];
    let get = |name: String| {
        headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut any_remaining = false;
    let mut exhausted: Option<SystemTime> = None;
    let mut latest: Option<SystemTime> = None;
    for limit in LIMITS {
        let remaining = get(format!("anthropic-ratelimit-{limit}-remaining"))
            .and_then(|v| v.parse::<u64>().ok());
        any_remaining |= remaining.is_some();
        let Some(reset) = get(format!("anthropic-ratelimit-{limit}-reset")).and_then(parse_rfc3339)
        else {
            continue;
        };
        latest = latest.max(Some(reset));
        if remaining == Some(0) {
            exhausted = exhausted.max(Some(reset));
        }
    }
    let at = if any_remaining { exhausted } else { latest }?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_RETRY_AFTER),
    )
}

pub(crate) use crate::time::parse_rfc3339;
