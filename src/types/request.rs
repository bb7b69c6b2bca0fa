//! The request side of the unified, OpenAI Chat Completions shaped types.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::lenient::{lenient_enum, null_as_default};

lenient_enum! {
    /// Who wrote a message.
    pub enum Role {
        /// Instructions from the application.
        System = "system",
        /// OpenAI's newer name for system instructions on reasoning models.
        Developer = "developer",
        /// The end user.
        User = "user",
        /// The model.
        Assistant = "assistant" | "model",
        /// The result of a tool call.
        Tool = "tool",
    }
}

lenient_enum! {
    /// How hard a reasoning model should think (`reasoning_effort`).
    pub enum ReasoningEffort {
        /// No reasoning where the model allows it.
        None = "none",
        /// The least reasoning.
        Minimal = "minimal",
        /// Little reasoning.
        Low = "low",
        /// The vendor's default.
        Medium = "medium",
        /// The most reasoning.
        High = "high",
    }
}

/// One chat completion request: a JSON body written for OpenAI's Chat Completions
/// deserializes into it, and fields it does not model are kept in [`extra`](Self::extra).
///
/// `model` names a relay route, a `provider/model` pair, or (when a provider is called
/// directly) the vendor's model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// A route name, a `provider/model` pair, or a vendor model name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    /// The conversation so far.
    #[serde(default, deserialize_with = "null_as_default")]
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Tool>,
    /// Whether and which tool the model must call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether the model may call several tools in one turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Text, JSON object or JSON-schema constrained output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Legacy cap on generated tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Cap on generated tokens, reasoning included (OpenAI's newer name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    /// Sequences that end generation. Accepts a string or an array on input.
    #[serde(
        default,
        deserialize_with = "string_or_seq",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub stop: Vec<String>,
    /// Seed for best-effort deterministic sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Number of choices to generate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// An end-user identifier passed to the vendor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Reasoning effort for reasoning models.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Whether the caller asked for a stream. The relay decides from the method called
    /// (`chat` or `chat_stream`); this field only keeps what the body said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Stream options; the OpenAI provider always asks for usage in streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Fields this crate does not model, forwarded as they are to OpenAI-family vendors.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// Hints for the relay itself; never sent to a vendor.
    #[serde(skip)]
    pub relay: RelayHints,
}

/// Hints for the relay that travel with a request but are never sent to a vendor.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RelayHints {
    /// The kind of query (e.g. `"billing"`), for routing and cost accounting.
    pub intent: Option<String>,
    /// Overrides the route's total deadline for this call.
    pub timeout: Option<Duration>,
    /// Where to go when the request's own `model` fails: route names or `provider/model`
    /// pairs, tried in order after it (see [`ChatRequest::fallbacks`]).
    pub fallbacks: Vec<String>,
    /// Free-form labels for routing rules and accounting (see [`ChatRequest::label`]).
    pub labels: Vec<String>,
    /// Tags every target of this request must carry (see [`ChatRequest::require_tags`]).
    pub require_tags: Vec<String>,
    /// A call the relay makes for another one (the LLM classifier's): its cost is counted
    /// under the call it serves, not in the stats on its own.
    pub(crate) nested: bool,
}

impl ChatRequest {
    /// A request for `model` (a route name, a `provider/model` pair or a vendor model).
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            ..Self::default()
        }
    }

    /// Appends a message.
    pub fn message(mut self, message: Message) -> Self {
        self.messages.push(message);
        self
    }

    /// Appends a system message.
    pub fn system(self, text: impl Into<String>) -> Self {
        self.message(Message::system(text))
    }

    /// Appends a user message.
    pub fn user(self, text: impl Into<String>) -> Self {
        self.message(Message::user(text))
    }

    /// Appends an assistant message.
    pub fn assistant(self, text: impl Into<String>) -> Self {
        self.message(Message::assistant(text))
    }

    /// Adds a tool the model may call.
    pub fn tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// Sets `tool_choice`.
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = Some(choice);
        self
    }

    /// Sets `response_format`.
    pub fn response_format(mut self, format: ResponseFormat) -> Self {
        self.response_format = Some(format);
        self
    }

    /// Sets the sampling temperature.
    pub fn temperature(mut self, temperature: f64) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Caps the generated tokens (`max_tokens`).
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Tags the request with an intent (query type), used by routing and cost accounting.
    pub fn intent(mut self, intent: impl Into<String>) -> Self {
        self.relay.intent = Some(intent.into());
        self
    }

    /// Adds a free-form label (e.g. `"vip"`, `"sensitive"`), which routing rules can match.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.relay.labels.push(label.into());
        self
    }

    /// Requires every target this request may reach to carry all of `tags` (e.g.
    /// `["on-prem"]`): the plan is filtered before anything is sent, and when no target
    /// qualifies the call fails with `ConstraintViolated` — the request is never sent
    /// anywhere else, whatever fails.
    pub fn require_tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.relay
            .require_tags
            .extend(tags.into_iter().map(Into::into));
        self
    }

    /// Overrides the total deadline of the call (retries and failover included). Any
    /// duration is accepted; one too large to represent means "no deadline".
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.relay.timeout = Some(timeout);
        self
    }

    /// Fallbacks for this request only, as OpenRouter's `models` and LiteLLM's `fallbacks`
    /// take them: each a route name or a `provider/model` pair, tried in order once the
    /// request's own `model` (its route's targets, or its `provider/model`) has failed. They
    /// run under the settings of the request's own route (or the relay's defaults for a
    /// `provider/model`), and a `provider/model` fallback shares its health with every route
    /// that uses the same target.
    ///
    /// ```
    /// use polyrelay::ChatRequest;
    /// let req = ChatRequest::new("openai/gpt-4o")
    ///     .user("hi")
    ///     .fallbacks(["anthropic/claude-sonnet-4", "deepseek/deepseek-chat"]);
    /// assert_eq!(req.relay.fallbacks.len(), 2);
    /// ```
    pub fn fallbacks(mut self, targets: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.relay.fallbacks = targets.into_iter().map(Into::into).collect();
        self
    }

    /// The effective output cap: `max_completion_tokens`, else `max_tokens`.
    pub fn output_limit(&self) -> Option<u32> {
        self.max_completion_tokens.or(self.max_tokens)
    }
}

/// Stream options (`stream_options`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamOptions {
    /// Ask for a final usage chunk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Other stream options, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One message of a conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Its text or parts; absent for an assistant turn that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// An optional participant name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls made by an assistant turn.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// For a `tool` message: the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// Reasoning text the model produced before answering (DeepSeek's `reasoning_content`,
    /// others' `reasoning`). Not sent back to OpenAI-family vendors.
    #[serde(
        default,
        rename = "reasoning_content",
        alias = "reasoning",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<String>,
    /// A refusal explanation from the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Signed or redacted reasoning blocks (Anthropic thinking, Gemini thought signatures),
    /// kept so a later turn can send them back to the vendor that made them. Never sent to
    /// OpenAI-family vendors.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub thinking_blocks: Vec<ThinkingBlock>,
    /// Fields this crate does not model, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A reasoning block a vendor signed (or redacted), in LiteLLM's `thinking_blocks` shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum ThinkingBlock {
    /// Reasoning text with the vendor's signature over it.
    #[serde(rename = "thinking")]
    Thinking {
        /// The reasoning text (may be empty when only a signature was sent).
        #[serde(default)]
        thinking: String,
        /// The vendor's opaque signature.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
        /// The vendor family that signed it (`"anthropic"`, `"gemini"`): a signature is only
        /// sent back to its own vendor, never to another after a failover. `None`: unknown,
        /// sent to any vendor that takes signed reasoning.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        source: Option<String>,
    },
    /// Reasoning the vendor encrypted; only the vendor can read it back.
    #[serde(rename = "redacted_thinking")]
    Redacted {
        /// The opaque data.
        data: String,
    },
    /// A block type this crate does not know (dropped on re-encoding).
    #[serde(other)]
    Unknown,
}

impl Message {
    /// A message with a role and text.
    pub fn new(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: Some(Content::Text(text.into())),
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            reasoning: None,
            refusal: None,
            thinking_blocks: Vec::new(),
            extra: Map::new(),
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::new(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new(Role::User, text)
    }

    /// A user message made of parts (text and images).
    pub fn user_parts(parts: Vec<ContentPart>) -> Self {
        let mut m = Self::new(Role::User, "");
        m.content = Some(Content::Parts(parts));
        m
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new(Role::Assistant, text)
    }

    /// An assistant turn that calls tools.
    pub fn assistant_tool_calls(calls: Vec<ToolCall>) -> Self {
        let mut m = Self::new(Role::Assistant, "");
        m.content = None;
        m.tool_calls = calls;
        m
    }

    /// The result of tool call `call_id`.
    pub fn tool_result(call_id: impl Into<String>, result: impl Into<String>) -> Self {
        let mut m = Self::new(Role::Tool, result);
        m.tool_call_id = Some(call_id.into());
        m
    }

    /// The message's text: the string content (borrowed), or its text parts joined.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        match &self.content {
            Some(c) => c.text(),
            None => std::borrow::Cow::Borrowed(""),
        }
    }
}

/// Message content: a plain string or a list of parts.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Text and image parts.
    Parts(Vec<ContentPart>),
}

impl Content {
    /// The text of the content, text parts joined without separator. Borrows a plain
    /// string and a single text part.
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            Content::Text(t) => Cow::Borrowed(t),
            Content::Parts(parts) => {
                let mut texts = parts.iter().filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                });
                let Some(first) = texts.next() else {
                    return Cow::Borrowed("");
                };
                match texts.next() {
                    None => Cow::Borrowed(first),
                    Some(second) => {
                        let mut s = String::from(first);
                        s.push_str(second);
                        texts.for_each(|t| s.push_str(t));
                        Cow::Owned(s)
                    }
                }
            }
        }
    }

    /// Whether there is no text and no part.
    pub fn is_empty(&self) -> bool {
        match self {
            Content::Text(t) => t.is_empty(),
            Content::Parts(p) => p.is_empty(),
        }
    }
}

impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_owned())
    }
}

impl Serialize for Content {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Content::Text(t) => s.serialize_str(t),
            Content::Parts(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Content, E> {
                Ok(Content::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Content, E> {
                Ok(Content::Text(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Content, A::Error> {
                let parts = Vec::<ContentPart>::deserialize(
                    serde::de::value::SeqAccessDeserializer::new(seq),
                )?;
                Ok(Content::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

/// One part of a multi-part message.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ContentPart {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image by URL or `data:` URL.
    ImageUrl {
        /// The image reference.
        image_url: ImageUrl,
    },
    /// A part type this crate does not model (audio, file, vendor thinking blocks…), kept as JSON.
    Other(Value),
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }

    /// An image part from a URL (`https://…` or `data:image/png;base64,…`).
    pub fn image_url(url: impl Into<String>) -> Self {
        ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: url.into(),
                detail: None,
            },
        }
    }
}

/// An image reference in a content part.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ImageUrl {
    /// `https://…` or `data:<mime>;base64,<data>`.
    pub url: String,
    /// `low`, `high` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Serialize for ContentPart {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ContentPart::Text { text } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "text")?;
                m.serialize_entry("text", text)?;
                m.end()
            }
            ContentPart::ImageUrl { image_url } => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "image_url")?;
                m.serialize_entry("image_url", image_url)?;
                m.end()
            }
            ContentPart::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ContentPart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let kind = v.get("type").and_then(Value::as_str);
        Ok(match (kind, &v) {
            (Some("text"), _) => match v.get("text").and_then(Value::as_str) {
                Some(text) => ContentPart::Text {
                    text: text.to_owned(),
                },
                None => ContentPart::Other(v),
            },
            (Some("image_url"), _) => match v.get("image_url") {
                // `image_url` may be an object or (some SDKs) a bare string.
                Some(Value::String(url)) => ContentPart::image_url(url.clone()),
                Some(obj) => match ImageUrl::deserialize(obj) {
                    Ok(image_url) => ContentPart::ImageUrl { image_url },
                    Err(_) => ContentPart::Other(v),
                },
                None => ContentPart::Other(v),
            },
            _ => ContentPart::Other(v),
        })
    }
}

/// A tool the model may call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tool {
    /// `function` for function tools.
    #[serde(rename = "type", default = "function_str")]
    pub kind: String,
    /// The function's declaration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDef>,
    /// Fields of other tool types, kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn function_str() -> String {
    "function".to_owned()
}

impl Tool {
    /// A function tool with a JSON Schema for its arguments.
    pub fn function(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
    ) -> Self {
        Tool {
            kind: function_str(),
            function: Some(FunctionDef {
                name: name.into(),
                description: Some(description.into()),
                parameters: Some(parameters),
                strict: None,
            }),
            extra: Map::new(),
        }
    }
}

/// A function declaration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionDef {
    /// The function's name.
    pub name: String,
    /// What it does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON Schema of its arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// OpenAI strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// A tool call made by the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCall {
    /// The call's id, echoed by the tool result.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Always `function` today.
    #[serde(
        rename = "type",
        default = "function_str",
        deserialize_with = "null_as_function"
    )]
    pub kind: String,
    /// Which function, with which arguments.
    pub function: FunctionCall,
    /// Gemini's thought signature for this call, sent back to Gemini on the next turn (and
    /// to no other vendor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

fn null_as_function<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(function_str))
}

impl ToolCall {
    /// A function call.
    pub fn function(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            kind: function_str(),
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
            thought_signature: None,
        }
    }
}

/// The function and arguments of a tool call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionCall {
    /// The function's name.
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    /// The arguments as a JSON string (an object on the wire is turned into its JSON text).
    #[serde(default, deserialize_with = "json_text")]
    pub arguments: String,
}

/// Accepts a string as is, `null` as empty, and any other JSON value as its JSON text.
fn json_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

fn string_or_seq<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// Whether and which tool the model must call.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// Never call a tool.
    None,
    /// The model decides.
    Auto,
    /// The model must call some tool.
    Required,
    /// The model must call this function.
    Function(String),
    /// A form this crate does not model, kept as JSON.
    Other(Value),
}

impl Serialize for ToolChoice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ToolChoice::None => s.serialize_str("none"),
            ToolChoice::Auto => s.serialize_str("auto"),
            ToolChoice::Required => s.serialize_str("required"),
            ToolChoice::Function(name) => serde_json::json!({
                "type": "function",
                "function": { "name": name }
            })
            .serialize(s),
            ToolChoice::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(match v.as_str() {
            Some("none") => ToolChoice::None,
            Some("auto") => ToolChoice::Auto,
            Some("required") | Some("any") => ToolChoice::Required,
            _ => match v.pointer("/function/name").and_then(Value::as_str) {
                Some(name) if v.get("type").and_then(Value::as_str) == Some("function") => {
                    ToolChoice::Function(name.to_owned())
                }
                _ => ToolChoice::Other(v),
            },
        })
    }
}

/// The output format the model must follow.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any valid JSON object.
    JsonObject,
    /// JSON that follows a schema.
    JsonSchema(JsonSchemaFormat),
    /// A form this crate does not model, kept as JSON.
    Other(Value),
}

/// A named JSON Schema for structured output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JsonSchemaFormat {
    /// The schema's name.
    pub name: String,
    /// What the output is, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The JSON Schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// OpenAI strict schema adherence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

impl JsonSchemaFormat {
    /// A strict schema with a name.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        JsonSchemaFormat {
            name: name.into(),
            description: None,
            schema: Some(schema),
            strict: Some(true),
        }
    }
}

impl Serialize for ResponseFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            ResponseFormat::Text | ResponseFormat::JsonObject => {
                let mut m = s.serialize_map(Some(1))?;
                let kind = if matches!(self, ResponseFormat::Text) {
                    "text"
                } else {
                    "json_object"
                };
                m.serialize_entry("type", kind)?;
                m.end()
            }
            ResponseFormat::JsonSchema(schema) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("type", "json_schema")?;
                m.serialize_entry("json_schema", schema)?;
                m.end()
            }
            ResponseFormat::Other(v) => v.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ResponseFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Ok(match v.get("type").and_then(Value::as_str) {
            Some("text") => ResponseFormat::Text,
            Some("json_object") => ResponseFormat::JsonObject,
            Some("json_schema") => match v.get("json_schema").map(JsonSchemaFormat::deserialize) {
                Some(Ok(schema)) => ResponseFormat::JsonSchema(schema),
                _ => ResponseFormat::Other(v),
            },
            _ => ResponseFormat::Other(v),
        })
    }
}
