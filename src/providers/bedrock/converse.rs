//! Converse request encoding: OpenAI's chat shape → a Converse / ConverseStream body.

use std::borrow::Cow;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use crate::providers::anthropic::{DEFAULT_MAX_TOKENS, JSON_OBJECT_INSTRUCTION, thinking_budget};
use crate::types::{
    ChatRequest, Content, ContentPart, Message, ReasoningEffort, ResponseFormat, Role,
    ThinkingBlock, Tool, ToolChoice,
};
use crate::types::{Error, ErrorKind};

/// The `source` of the reasoning signatures Converse returns: they go back to Bedrock only.
pub(crate) const SOURCE: &str = "bedrock";

/// Converse block names a raw content part may carry as it is (`{"cachePoint": {…}}`,
/// `{"document": {…}}`…).
const RAW_BLOCKS: &[&str] = &[
    "cachePoint",
    "document",
    "guardContent",
    "image",
    "video",
    "audio",
    "searchResult",
];

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, msg)
}

/// One content block of a Converse turn (or of `system`).
enum Block<'a> {
    Text(&'a str),
    Image {
        format: &'a str,
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        id: &'a str,
        content: Vec<Block<'a>>,
    },
    Reasoning {
        text: &'a str,
        signature: &'a str,
    },
    Redacted(String),
    CachePoint(Value),
    /// A Converse block given as a raw part, sent as it is.
    Raw(&'a Value),
}

impl Serialize for Block<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Block::Raw(v) = self {
            return v.serialize(s);
        }
        let mut m = s.serialize_map(Some(1))?;
        match self {
            Block::Text(t) => m.serialize_entry("text", t)?,
            Block::Image { format, data } => {
                // Borrowed: an image's base64 is not copied into a JSON value.
                #[derive(Serialize)]
                struct Source<'b> {
                    bytes: &'b str,
                }
                #[derive(Serialize)]
                struct Image<'b> {
                    format: &'b str,
                    source: Source<'b>,
                }
                m.serialize_entry(
                    "image",
                    &Image {
                        format,
                        source: Source { bytes: data },
                    },
                )?
            }
            Block::ToolUse { id, name, input } => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct ToolUse<'b> {
                    tool_use_id: &'b str,
                    name: &'b str,
                    input: &'b Value,
                }
                m.serialize_entry(
                    "toolUse",
                    &ToolUse {
                        tool_use_id: id,
                        name,
                        input,
                    },
                )?
            }
            Block::ToolResult { id, content } => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct R<'b, 'a> {
                    tool_use_id: &'b str,
                    content: &'b [Block<'a>],
                }
                m.serialize_entry(
                    "toolResult",
                    &R {
                        tool_use_id: id,
                        content,
                    },
                )?
            }
            Block::Reasoning { text, signature } => {
                #[derive(Serialize)]
                struct Text<'b> {
                    text: &'b str,
                    signature: &'b str,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Reasoning<'b> {
                    reasoning_text: Text<'b>,
                }
                m.serialize_entry(
                    "reasoningContent",
                    &Reasoning {
                        reasoning_text: Text { text, signature },
                    },
                )?
            }
            Block::Redacted(data) => {
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Redacted<'b> {
                    redacted_content: &'b str,
                }
                m.serialize_entry(
                    "reasoningContent",
                    &Redacted {
                        redacted_content: data,
                    },
                )?
            }
            Block::CachePoint(v) => m.serialize_entry("cachePoint", v)?,
            Block::Raw(_) => {}
        }
        m.end()
    }
}

#[derive(Serialize)]
struct Turn<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
}

impl InferenceConfig<'_> {
    fn is_empty(&self) -> bool {
        self.max_tokens.is_none()
            && self.temperature.is_none()
            && self.top_p.is_none()
            && self.stop_sequences.is_empty()
    }
}

/// One entry of `toolConfig.tools`, borrowed from the request (schemas are not copied).
enum WireTool<'a> {
    /// `{"toolSpec": {name, description?, inputSchema: {json}, strict?}}`.
    Spec {
        name: &'a str,
        description: Option<&'a str>,
        schema: Cow<'a, Value>,
        strict: Option<bool>,
    },
    /// Another Converse tool (`systemTool`…): its fields as given, but `type` and
    /// `cache_control`.
    Raw(&'a Map<String, Value>),
    CachePoint(Value),
}

impl Serialize for WireTool<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            WireTool::Spec {
                name,
                description,
                schema,
                strict,
            } => {
                #[derive(Serialize)]
                struct Schema<'b> {
                    json: &'b Value,
                }
                #[derive(Serialize)]
                #[serde(rename_all = "camelCase")]
                struct Spec<'b> {
                    name: &'b str,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    description: Option<&'b str>,
                    input_schema: Schema<'b>,
                    #[serde(skip_serializing_if = "Option::is_none")]
                    strict: Option<bool>,
                }
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry(
                    "toolSpec",
                    &Spec {
                        name,
                        description: *description,
                        input_schema: Schema { json: schema },
                        strict: *strict,
                    },
                )?;
                m.end()
            }
            WireTool::Raw(fields) => s.collect_map(
                fields
                    .iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "type" | "cache_control")),
            ),
            WireTool::CachePoint(point) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("cachePoint", point)?;
                m.end()
            }
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolConfig<'a> {
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRequest<'a> {
    messages: Vec<Turn<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "InferenceConfig::is_empty")]
    inference_config: InferenceConfig<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    additional_model_request_fields: Map<String, Value>,
}

/// Whether `model` (an id, a profile id or an ARN) names an Anthropic model.
pub(crate) fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.") || model.contains("claude")
}

/// The cache point a message's (or tool's) `cache_control` asks for, LiteLLM's convention:
/// `{"type": "ephemeral", "ttl": "1h"}` → `{"type": "default", "ttl": "1h"}`.
fn cache_point(extra: &Map<String, Value>) -> Option<Value> {
    let cc = extra.get("cache_control")?;
    if cc.is_null() {
        return None;
    }
    let mut point = Map::new();
    point.insert("type".to_owned(), Value::from("default"));
    if let Some(ttl) = cc.get("ttl").filter(|t| t.is_string()) {
        point.insert("ttl".to_owned(), ttl.clone());
    }
    Some(Value::Object(point))
}

/// An image part: a `data:image/<format>;base64,…` URL. Converse takes image bytes only.
fn image_block(url: &str) -> Result<Block<'_>, Error> {
    let Some(rest) = url.strip_prefix("data:") else {
        return Err(invalid(
            "Bedrock's Converse API takes images as bytes only: send the image as a \
             data:image/<png|jpeg|gif|webp>;base64,… URL, not an http(s) URL",
        ));
    };
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| invalid("image data URL has no data"))?;
    let mime = meta
        .strip_suffix(";base64")
        .ok_or_else(|| invalid("image data URLs must be base64 (data:<mime>;base64,…)"))?;
    let format = match mime.strip_prefix("image/").unwrap_or("") {
        "png" => "png",
        "jpeg" | "jpg" => "jpeg",
        "gif" => "gif",
        "webp" => "webp",
        _ => {
            return Err(invalid(format!(
                "image type {mime:?} is not supported by Bedrock (png, jpeg, gif, webp)"
            )));
        }
    };
    Ok(Block::Image { format, data })
}

/// The blocks of user-side content (text, images, raw Converse blocks). Empty text is left
/// out (Converse rejects blank text blocks).
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
                        let raw = v.as_object().is_some_and(|o| {
                            o.len() == 1 && o.keys().all(|k| RAW_BLOCKS.contains(&k.as_str()))
                        });
                        if !raw {
                            let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
                            return Err(invalid(format!(
                                "content part type {kind:?} is not supported by Bedrock Converse"
                            )));
                        }
                        out.push(Block::Raw(v));
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The reasoning blocks of an assistant turn that Bedrock can take back: signed reasoning
/// it made (or of unknown origin), and redacted reasoning.
fn reasoning_blocks(m: &Message) -> Vec<Block<'_>> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for b in &m.thinking_blocks {
        match b {
            ThinkingBlock::Thinking {
                thinking,
                signature: Some(sig),
                source,
            } if !sig.is_empty() && source.as_deref().is_none_or(|s| s == SOURCE) => {
                out.push(Block::Reasoning {
                    text: thinking,
                    signature: sig,
                })
            }
            // A blob: its bytes go as base64 (the decoder kept them as text).
            ThinkingBlock::Redacted { data } => out.push(Block::Redacted(
                base64::engine::general_purpose::STANDARD.encode(data.as_bytes()),
            )),
            _ => {}
        }
    }
    out
}

fn tool_use_blocks(m: &Message) -> Result<Vec<Block<'_>>, Error> {
    let mut out = Vec::with_capacity(m.tool_calls.len());
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
        out.push(Block::ToolUse {
            id: &call.id,
            name: &call.function.name,
            input,
        });
    }
    Ok(out)
}

fn tool_result_block(m: &Message) -> Result<Block<'_>, Error> {
    let id = m
        .tool_call_id
        .as_deref()
        .ok_or_else(|| invalid("a tool message has no tool_call_id"))?;
    Ok(Block::ToolResult {
        id,
        content: content_blocks(m.content.as_ref())?,
    })
}

/// Appends blocks to the last turn when it has the same role (Converse requires turns to
/// alternate), else starts a turn. Tool results go first in their user turn.
fn push_turn<'a>(turns: &mut Vec<Turn<'a>>, role: &'static str, blocks: Vec<Block<'a>>) {
    if blocks.is_empty() {
        return;
    }
    match turns.last_mut() {
        Some(last) if last.role == role => {
            let results_first = blocks.iter().all(|b| matches!(b, Block::ToolResult { .. }));
            if results_first {
                let at = last
                    .content
                    .iter()
                    .take_while(|b| matches!(b, Block::ToolResult { .. }))
                    .count();
                last.content.splice(at..at, blocks);
            } else {
                last.content.extend(blocks);
            }
        }
        _ => turns.push(Turn {
            role,
            content: blocks,
        }),
    }
}

fn wire_tool(t: &Tool) -> Result<WireTool<'_>, Error> {
    if t.kind != "function" {
        return Ok(WireTool::Raw(&t.extra));
    }
    let f = t
        .function
        .as_ref()
        .ok_or_else(|| invalid("a function tool has no function declaration"))?;
    let schema = match &f.parameters {
        Some(v @ Value::Object(_)) => Cow::Borrowed(v),
        _ => Cow::Owned(json!({"type": "object", "properties": {}})),
    };
    Ok(WireTool::Spec {
        name: &f.name,
        description: f.description.as_deref(),
        schema,
        strict: f.strict,
    })
}

/// `toolConfig`: the tools and the choice. `tool_choice: "none"` leaves the tools out —
/// unless the conversation already holds tool calls or results, which Converse refuses
/// without a `toolConfig` (the tools are then sent without a choice).
fn tool_config(req: &ChatRequest, has_tool_blocks: bool) -> Result<Option<ToolConfig<'_>>, Error> {
    if req.tools.is_empty() {
        return Ok(None);
    }
    let choice = match &req.tool_choice {
        None | Some(ToolChoice::Auto) => None,
        Some(ToolChoice::None) if !has_tool_blocks => return Ok(None),
        Some(ToolChoice::None) => None,
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::Function(name)) => Some(json!({"tool": {"name": name}})),
        Some(ToolChoice::Other(v)) => {
            let converse = v.as_object().is_some_and(|o| {
                o.len() == 1
                    && o.keys()
                        .all(|k| matches!(k.as_str(), "auto" | "any" | "tool"))
            });
            if !converse {
                return Err(invalid(format!(
                    "tool_choice {v} is not supported by Bedrock Converse"
                )));
            }
            Some(v.clone())
        }
    };
    let mut tools = Vec::with_capacity(req.tools.len());
    for t in &req.tools {
        tools.push(wire_tool(t)?);
        if let Some(point) = cache_point(&t.extra) {
            tools.push(WireTool::CachePoint(point));
        }
    }
    Ok(Some(ToolConfig {
        tools,
        tool_choice: choice,
    }))
}

/// The instruction for a JSON response format (Converse has no parameter every model takes).
fn format_instruction(req: &ChatRequest) -> Option<String> {
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => Some(JSON_OBJECT_INSTRUCTION.to_owned()),
        Some(ResponseFormat::JsonSchema(f)) => Some(match &f.schema {
            Some(schema) => {
                format!("{JSON_OBJECT_INSTRUCTION} It must follow this JSON Schema: {schema}")
            }
            None => JSON_OBJECT_INSTRUCTION.to_owned(),
        }),
        _ => None,
    }
}

/// Encodes `req` for `model` as a Converse body. See the module docs of
/// [`crate::providers::bedrock`] for the mapping.
pub(crate) fn encode(req: &ChatRequest, model: &str) -> Result<Vec<u8>, Error> {
    if req.n.is_some_and(|n| n > 1) {
        return Err(invalid("Bedrock generates one choice per request (n > 1)"));
    }
    let mut system: Vec<Block<'_>> = Vec::new();
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(req.messages.len());
    let mut has_tool_blocks = false;
    for m in &req.messages {
        let point = cache_point(&m.extra);
        match &m.role {
            Role::System | Role::Developer => {
                if let Some(Content::Text(t)) = &m.content {
                    if !t.is_empty() {
                        system.push(Block::Text(t));
                    }
                } else {
                    for p in content_blocks(m.content.as_ref())? {
                        if let Block::Text(_) = p {
                            system.push(p);
                        }
                    }
                }
                if let Some(p) = point {
                    system.push(Block::CachePoint(p));
                }
                continue;
            }
            Role::User => {
                let blocks = content_blocks(m.content.as_ref())?;
                push_turn(&mut turns, "user", blocks);
            }
            Role::Tool => {
                has_tool_blocks = true;
                push_turn(&mut turns, "user", vec![tool_result_block(m)?]);
            }
            Role::Assistant => {
                let mut blocks = reasoning_blocks(m);
                blocks.extend(content_blocks(m.content.as_ref())?);
                let calls = tool_use_blocks(m)?;
                has_tool_blocks |= !calls.is_empty();
                blocks.extend(calls);
                push_turn(&mut turns, "assistant", blocks);
            }
            Role::Other(r) => {
                return Err(invalid(format!(
                    "message role {r:?} is not supported by Bedrock"
                )));
            }
        }
        if let (Some(p), Some(last)) = (point, turns.last_mut()) {
            last.content.push(Block::CachePoint(p));
        }
    }
    let format = format_instruction(req);
    if let Some(f) = &format {
        system.push(Block::Text(f));
    }
    let anthropic = is_anthropic(model);
    let mut extra = Map::new();
    let budget = if anthropic {
        req.reasoning_effort.as_ref().and_then(thinking_budget)
    } else {
        None
    };
    if let Some(b) = budget {
        extra.insert(
            "thinking".to_owned(),
            json!({"type": "enabled", "budget_tokens": b}),
        );
    } else if model.contains("openai.")
        && let Some(effort) = req.reasoning_effort.as_ref().and_then(effort_name)
    {
        extra.insert("reasoning_effort".to_owned(), Value::from(effort));
    }
    let limit = req.output_limit();
    let max_tokens = match (budget, limit) {
        (None, l) => l,
        (Some(b), Some(l)) if l > b => Some(l),
        (Some(b), l) => Some(b.saturating_add(l.unwrap_or(DEFAULT_MAX_TOKENS))),
    };
    // Claude's thinking rejects sampling changes; Claude takes temperatures up to 1.
    let (temperature, top_p) = match (budget, anthropic) {
        (Some(_), _) => (None, None),
        (None, true) => (req.temperature.map(|t| t.clamp(0.0, 1.0)), req.top_p),
        (None, false) => (req.temperature, req.top_p),
    };
    let body = WireRequest {
        tool_config: tool_config(req, has_tool_blocks)?,
        messages: turns,
        system,
        inference_config: InferenceConfig {
            max_tokens,
            temperature,
            top_p,
            stop_sequences: &req.stop,
        },
        additional_model_request_fields: extra,
    };
    serde_json::to_vec(&body).map_err(|e| invalid("could not encode the request").with_source(e))
}

/// `reasoning_effort` as gpt-oss on Bedrock takes it (low, medium, high).
fn effort_name(effort: &ReasoningEffort) -> Option<&'static str> {
    match effort {
        ReasoningEffort::Low | ReasoningEffort::Minimal => Some("low"),
        ReasoningEffort::Medium => Some("medium"),
        ReasoningEffort::High => Some("high"),
        _ => None,
    }
}
