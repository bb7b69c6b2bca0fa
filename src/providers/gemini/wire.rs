//! Gemini `generateContent` wire format: request encoding, response decoding and error
//! classification, as pure functions over bytes.

use std::collections::HashMap;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::schema;
use crate::http::classify;
use crate::types::{
    ChatRequest, Content, ContentPart, Message, ReasoningEffort, ResponseFormat, Role,
    ThinkingBlock, ToolCall, ToolChoice, Usage,
};
use crate::types::{Error, ErrorKind};

/// Prefix of the tool-call ids this crate makes up for calls Gemini sent without an id
/// (`gcall_` and 16 hex digits). Such ids are never sent back to Gemini.
pub(crate) const GENERATED_ID_PREFIX: &str = "gcall_";

/// The `source` of the thinking blocks this vendor signs: its signatures go back to it only.
pub(crate) const SOURCE: &str = "gemini";

/// The signature Google documents for function calls whose real signature is unknown
/// (e.g. a turn another vendor produced): Gemini 3 then skips its signature check instead of
/// answering 400.
pub(crate) const SKIP_SIGNATURE_VALIDATOR: &str = "skip_thought_signature_validator";

/// Per-model encoding choices the provider makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct EncodeOptions {
    /// Give the first function call of a model turn [`SKIP_SIGNATURE_VALIDATOR`] when none of
    /// the turn's calls carries a thought signature (Gemini 3 rejects such turns).
    pub signature_sentinel: bool,
}

/// The `thinkingBudget` sent for a `reasoning_effort`: `none` 0 (thinking off where the
/// model allows it), `minimal` 512, `low` 1024, `medium` 8192, `high` 24576. Values the
/// crate does not know send no thinking configuration.
pub fn thinking_budget(effort: &ReasoningEffort) -> Option<u32> {
    match effort {
        ReasoningEffort::None => Some(0),
        ReasoningEffort::Minimal => Some(512),
        ReasoningEffort::Low => Some(1024),
        ReasoningEffort::Medium => Some(8192),
        ReasoningEffort::High => Some(24576),
        _ => None,
    }
}

/// Encodes `req` as a Gemini `generateContent` / `streamGenerateContent` body (the model goes
/// in the URL, not the body). See the [module documentation](super) for the mapping.
pub fn encode_request(req: &ChatRequest) -> Result<Vec<u8>, Error> {
    encode(req, EncodeOptions::default())
}

/// [`encode_request`] with the provider's per-model options.
pub(crate) fn encode(req: &ChatRequest, opts: EncodeOptions) -> Result<Vec<u8>, Error> {
    let body = build(req, opts)?;
    serde_json::to_vec(&body).map_err(|e| {
        Error::new(ErrorKind::InvalidRequest, "could not encode the request").with_source(e)
    })
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidRequest, msg)
}

/// Consecutive turns of the same role merge into one (Gemini wants alternating turns, and
/// several tool results answer one model turn together).
#[derive(Default)]
struct Turns(Vec<(&'static str, Vec<Value>)>);

impl Turns {
    fn push(&mut self, role: &'static str, parts: Vec<Value>) {
        if parts.is_empty() {
            return; // Gemini rejects a turn without parts.
        }
        match self.0.last_mut() {
            Some((r, existing)) if *r == role => existing.extend(parts),
            _ => self.0.push((role, parts)),
        }
    }

    fn into_value(self) -> Value {
        Value::Array(
            self.0
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        )
    }
}

fn build(req: &ChatRequest, opts: EncodeOptions) -> Result<Value, Error> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns = Turns::default();
    // Tool-call id → function name, from the assistant turns seen so far.
    let mut call_names: HashMap<&str, &str> = HashMap::new();

    for (i, m) in req.messages.iter().enumerate() {
        match &m.role {
            Role::System | Role::Developer => {
                let text = m.text();
                if !text.is_empty() {
                    system.push(json!({ "text": text }));
                }
            }
            Role::User => {
                let mut parts = Vec::new();
                if let Some(c) = &m.content {
                    content_parts(c, &mut parts)?;
                }
                turns.push("user", parts);
            }
            Role::Assistant => {
                for call in &m.tool_calls {
                    call_names.insert(call.id.as_str(), call.function.name.as_str());
                }
                turns.push("model", model_parts(m, opts)?);
            }
            Role::Tool => {
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let name = call_names
                    .get(id)
                    .copied()
                    .or(m.name.as_deref().filter(|_| id.is_empty()))
                    .ok_or_else(|| {
                        invalid(format!(
                            "message {i}: tool result for call {id:?} answers no earlier assistant tool call"
                        ))
                    })?;
                turns.push("user", tool_result_parts(m, id, name)?);
            }
            other => {
                return Err(invalid(format!(
                    "message {i}: role {:?} is not supported by Gemini",
                    other.as_str()
                )));
            }
        }
    }

    let mut body = Map::new();
    body.insert("contents".into(), turns.into_value());
    if !system.is_empty() {
        body.insert("systemInstruction".into(), json!({ "parts": system }));
    }
    let decls: Vec<Value> = req
        .tools
        .iter()
        .filter(|t| t.kind == "function")
        .filter_map(|t| t.function.as_ref())
        .map(|f| {
            let mut d = Map::new();
            d.insert("name".into(), Value::String(f.name.clone()));
            if let Some(desc) = f.description.as_ref().filter(|d| !d.is_empty()) {
                d.insert("description".into(), Value::String(desc.clone()));
            }
            if let Some(p) = &f.parameters {
                let cleaned = schema::clean(p);
                if !schema::is_empty_object(&cleaned) {
                    d.insert("parameters".into(), cleaned);
                }
            }
            Value::Object(d)
        })
        .collect();
    if !decls.is_empty() {
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
        if let Some(cfg) = req.tool_choice.as_ref().and_then(function_calling_config) {
            body.insert("toolConfig".into(), json!({ "functionCallingConfig": cfg }));
        }
    }
    let gc = generation_config(req);
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    Ok(Value::Object(body))
}

fn function_calling_config(choice: &ToolChoice) -> Option<Value> {
    Some(match choice {
        ToolChoice::None => json!({ "mode": "NONE" }),
        ToolChoice::Auto => json!({ "mode": "AUTO" }),
        ToolChoice::Required => json!({ "mode": "ANY" }),
        ToolChoice::Function(name) => json!({ "mode": "ANY", "allowedFunctionNames": [name] }),
        // Forms this crate does not model (e.g. OpenAI's `allowed_tools`): Gemini's default.
        _ => return None,
    })
}

fn generation_config(req: &ChatRequest) -> Map<String, Value> {
    let mut gc = Map::new();
    if let Some(t) = req.temperature {
        gc.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        gc.insert("topP".into(), json!(p));
    }
    if let Some(n) = req.output_limit() {
        gc.insert("maxOutputTokens".into(), json!(n));
    }
    if !req.stop.is_empty() {
        gc.insert("stopSequences".into(), json!(req.stop));
    }
    if let Some(n) = req.n {
        gc.insert("candidateCount".into(), json!(n));
    }
    if let Some(seed) = req.seed {
        // Gemini's seed is an int32; larger seeds are wrapped, deterministically.
        gc.insert("seed".into(), json!(seed as i32));
    }
    match &req.response_format {
        Some(ResponseFormat::JsonObject) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
        }
        Some(ResponseFormat::JsonSchema(f)) => {
            gc.insert("responseMimeType".into(), json!("application/json"));
            if let Some(s) = &f.schema {
                gc.insert("responseSchema".into(), schema::clean(s));
            }
        }
        _ => {}
    }
    if let Some(budget) = req.reasoning_effort.as_ref().and_then(thinking_budget) {
        let cfg = if budget == 0 {
            json!({ "thinkingBudget": 0 })
        } else {
            json!({ "thinkingBudget": budget, "includeThoughts": true })
        };
        gc.insert("thinkingConfig".into(), cfg);
    }
    gc
}

/// User-side content: text, images and files.
fn content_parts(content: &Content, out: &mut Vec<Value>) -> Result<(), Error> {
    match content {
        Content::Text(t) => {
            if !t.is_empty() {
                out.push(json!({ "text": t }));
            }
        }
        Content::Parts(parts) => {
            for p in parts {
                match p {
                    ContentPart::Text { text } => {
                        if !text.is_empty() {
                            out.push(json!({ "text": text }));
                        }
                    }
                    ContentPart::ImageUrl { image_url } => out.push(media_part(&image_url.url)?),
                    ContentPart::Other(v) => {
                        if let Some(part) = other_part(v)? {
                            out.push(part);
                        }
                    }
                    // A part kind added to the crate later: refuse rather than drop it.
                    #[allow(unreachable_patterns)]
                    _ => return Err(invalid("content part not supported by Gemini")),
                }
            }
        }
    }
    Ok(())
}

/// OpenAI content parts the crate keeps as JSON: audio and files map to Gemini media;
/// other vendors' reasoning and refusal parts are not content and are skipped.
fn other_part(v: &Value) -> Result<Option<Value>, Error> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "input_audio" => {
            let data = v.pointer("/input_audio/data").and_then(Value::as_str);
            let format = v
                .pointer("/input_audio/format")
                .and_then(Value::as_str)
                .unwrap_or("wav");
            match data {
                Some(d) => Ok(Some(json!({
                    "inlineData": { "mimeType": format!("audio/{format}"), "data": d }
                }))),
                None => Err(invalid("input_audio part without data")),
            }
        }
        "file" => {
            let file = v.get("file");
            let data = file
                .and_then(|f| f.get("file_data"))
                .and_then(Value::as_str);
            let id = file.and_then(|f| f.get("file_id")).and_then(Value::as_str);
            match (data, id) {
                (Some(d), _) if d.starts_with("data:") => media_part(d).map(Some),
                (_, Some(uri)) if is_remote(uri) => media_part(uri).map(Some),
                _ => Err(invalid(
                    "file part needs a data: URL or a URL Gemini can fetch",
                )),
            }
        }
        "thinking" | "redacted_thinking" | "reasoning" | "refusal" => Ok(None),
        // A `text` part whose text was not a string.
        "text" => Ok(None),
        other => Err(invalid(format!(
            "content part type {other:?} is not supported by Gemini"
        ))),
    }
}

fn is_remote(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("gs://")
}

/// An image or file reference: `data:` URLs inline, `http(s)://` and `gs://` URLs by
/// reference (`fileData`, with a MIME type guessed from the extension when obvious).
fn media_part(url: &str) -> Result<Value, Error> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| invalid("malformed data: URL (no comma)"))?;
        let (mime, is_b64) = match meta.strip_suffix(";base64") {
            Some(m) => (m, true),
            None => (meta, false),
        };
        // Parameters such as `;charset=utf-8` are not part of the MIME type Gemini takes.
        let mime = mime.split(';').next().unwrap_or("").trim();
        if mime.is_empty() {
            return Err(invalid("data: URL without a MIME type"));
        }
        let data = if is_b64 {
            data.to_owned()
        } else {
            base64_encode(&percent_decode(data))
        };
        return Ok(json!({ "inlineData": { "mimeType": mime, "data": data } }));
    }
    if !is_remote(url) {
        let scheme = url.split(':').next().unwrap_or("");
        return Err(invalid(format!(
            "URL scheme {scheme:?} is not supported by Gemini (use data:, https:// or gs://)"
        )));
    }
    let mut fd = Map::new();
    if let Some(mime) = guess_mime(url) {
        fd.insert("mimeType".into(), json!(mime));
    }
    fd.insert("fileUri".into(), json!(url));
    Ok(json!({ "fileData": fd }))
}

fn guess_mime(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "heic" => "image/heic",
        "heif" => "image/heif",
        "pdf" => "application/pdf",
        "mp3" => "audio/mp3",
        "wav" => "audio/wav",
        "flac" => "audio/flac",
        "ogg" => "audio/ogg",
        "aac" => "audio/aac",
        "mp4" => "video/mp4",
        "mov" => "video/mov",
        "webm" => "video/webm",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        _ => return None,
    })
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (k, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if k <= chunk.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The parts of an assistant (model) turn: signed reasoning, text, function calls.
fn model_parts(m: &Message, opts: EncodeOptions) -> Result<Vec<Value>, Error> {
    let mut parts = Vec::new();
    // Signatures that came without reasoning text (Gemini puts them on a text part).
    let mut loose: Vec<&str> = Vec::new();
    for b in &m.thinking_blocks {
        if let ThinkingBlock::Thinking {
            thinking,
            signature: Some(sig),
            source,
        } = b
            && source.as_deref().is_none_or(|s| s == SOURCE)
        {
            if sig.is_empty() {
                continue;
            }
            if thinking.is_empty() {
                loose.push(sig);
            } else {
                parts.push(json!({ "text": thinking, "thought": true, "thoughtSignature": sig }));
            }
        }
    }
    let text_start = parts.len();
    if let Some(c) = &m.content {
        content_parts(c, &mut parts)?;
    }
    let mut loose = loose.into_iter();
    for p in parts.iter_mut().skip(text_start) {
        if let Some(obj) = p.as_object_mut()
            && obj.contains_key("text")
        {
            match loose.next() {
                Some(sig) => {
                    obj.insert("thoughtSignature".into(), json!(sig));
                }
                None => break,
            }
        }
    }
    let first_call = parts.len();
    let mut signed = false;
    for call in &m.tool_calls {
        let mut fc = Map::new();
        if let Some(id) = vendor_call_id(&call.id) {
            fc.insert("id".into(), json!(id));
        }
        fc.insert("name".into(), json!(call.function.name));
        fc.insert("args".into(), call_args(call)?);
        let mut part = Map::new();
        part.insert("functionCall".into(), Value::Object(fc));
        if let Some(sig) = call.thought_signature.as_deref().filter(|s| !s.is_empty()) {
            part.insert("thoughtSignature".into(), json!(sig));
            signed = true;
        }
        parts.push(Value::Object(part));
    }
    if opts.signature_sentinel
        && !signed
        && let Some(Value::Object(first)) = parts.get_mut(first_call)
    {
        first.insert("thoughtSignature".into(), json!(SKIP_SIGNATURE_VALIDATOR));
    }
    Ok(parts)
}

/// A tool call's arguments as the JSON object Gemini wants.
fn call_args(call: &ToolCall) -> Result<Value, Error> {
    let text = call.function.arguments.trim();
    if text.is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(invalid(format!(
            "tool call {:?} ({}): arguments are not a JSON object",
            call.id, call.function.name
        ))),
        Err(e) => Err(invalid(format!(
            "tool call {:?} ({}): arguments are not valid JSON",
            call.id, call.function.name
        ))
        .with_source(e)),
    }
}

/// The id to send back to Gemini: the vendor's own (or another vendor's), never one this
/// crate made up.
fn vendor_call_id(id: &str) -> Option<&str> {
    (!id.is_empty() && !id.starts_with(GENERATED_ID_PREFIX)).then_some(id)
}

fn tool_result_parts(m: &Message, id: &str, name: &str) -> Result<Vec<Value>, Error> {
    let text = m.text();
    let response = match serde_json::from_str::<Value>(&text) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({ "result": text }),
    };
    let mut fr = Map::new();
    if let Some(id) = vendor_call_id(id) {
        fr.insert("id".into(), json!(id));
    }
    fr.insert("name".into(), json!(name));
    fr.insert("response".into(), response);
    let mut parts = vec![json!({ "functionResponse": fr })];
    // Images returned by a tool travel beside the response.
    if let Some(Content::Parts(ps)) = &m.content {
        for p in ps {
            match p {
                ContentPart::ImageUrl { image_url } => parts.push(media_part(&image_url.url)?),
                ContentPart::Other(v) => {
                    if let Some(part) = other_part(v)? {
                        parts.push(part);
                    }
                }
                _ => {}
            }
        }
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// A `GenerateContentResponse` (a whole answer, or one streamed piece of it).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireResponse {
    pub candidates: Option<Vec<WireCandidate>>,
    pub prompt_feedback: Option<WirePromptFeedback>,
    pub usage_metadata: Option<WireUsage>,
    pub model_version: Option<String>,
    pub response_id: Option<String>,
    /// Vertex only.
    pub create_time: Option<String>,
    /// An error object in place of a response (streams, JSON arrays).
    pub error: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireCandidate {
    pub content: Option<WireContent>,
    pub finish_reason: Option<String>,
    pub index: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireContent {
    pub parts: Option<Vec<WirePart>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WirePart {
    pub text: Option<String>,
    pub thought: Option<bool>,
    pub thought_signature: Option<String>,
    pub function_call: Option<WireFunctionCall>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireFunctionCall {
    pub id: Option<String>,
    pub name: Option<String>,
    pub args: Option<Value>,
    /// Vertex streamed arguments.
    pub partial_args: Option<Vec<WirePartialArg>>,
    pub will_continue: Option<bool>,
}

/// One Vertex `PartialArg`: a value at a JSON path, strings possibly in several pieces.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WirePartialArg {
    pub json_path: String,
    pub string_value: Option<String>,
    pub number_value: Option<serde_json::Number>,
    pub bool_value: Option<bool>,
    /// Present (whatever its value, `null` included) for a null argument.
    #[serde(deserialize_with = "present")]
    pub null_value: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WirePromptFeedback {
    pub block_reason: Option<String>,
    pub block_reason_message: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WireUsage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    tool_use_prompt_token_count: Option<u64>,
}

impl WireUsage {
    /// The normalised usage; `None` when no count was sent (Vertex's `{trafficType}` only).
    pub(crate) fn to_usage(self) -> Option<Usage> {
        let counts = [
            self.prompt_token_count,
            self.candidates_token_count,
            self.cached_content_token_count,
            self.thoughts_token_count,
            self.tool_use_prompt_token_count,
        ];
        if counts.iter().all(Option::is_none) {
            return None;
        }
        let thoughts = self.thoughts_token_count.unwrap_or(0);
        let mut u = Usage::new(
            self.prompt_token_count.unwrap_or(0) + self.tool_use_prompt_token_count.unwrap_or(0),
            self.candidates_token_count.unwrap_or(0) + thoughts,
        );
        u.cache_read_tokens = self.cached_content_token_count.unwrap_or(0);
        u.reasoning_tokens = thoughts;
        Some(u)
    }
}

/// A body that is not a `GenerateContentResponse` (`body`: already redacted).
pub(crate) fn not_a_response(body: &str, e: serde_json::Error) -> Error {
    Error::new(
        ErrorKind::Decode,
        "response is not a Gemini GenerateContentResponse",
    )
    .with_body(body)
    .with_source(e)
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Builds the error for a Gemini error body (`google.rpc.Status`, possibly wrapped in a
/// one-element array). `status` is the HTTP status; for an error inside a 200 stream it is
/// `None` and the body's `error.code` is used.
pub(crate) fn error_from_body(
    status: Option<u16>,
    headers: &HeaderMap,
    body: &[u8],
    redact: &dyn Fn(&str) -> String,
) -> Error {
    let root: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let root = match root {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let err = root.get("error");
    let status = status.or_else(|| {
        err.and_then(|e| e.get("code"))
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
    });
    let rpc_status = err
        .and_then(|e| e.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let reason = err
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .and_then(|ds| {
            ds.iter().find_map(|d| {
                let ty = d.get("@type").and_then(Value::as_str).unwrap_or("");
                ty.ends_with("google.rpc.ErrorInfo")
                    .then(|| d.get("reason").and_then(Value::as_str))
                    .flatten()
            })
        })
        .map(str::to_owned);

    let mut v = classify::parse_error_body(body);
    let mut kind = classify::kind_for(status.unwrap_or(500), &v);
    let key_problem = reason.as_deref().is_some_and(|r| {
        r.starts_with("API_KEY_") || r == "ACCESS_TOKEN_EXPIRED" || r == "CREDENTIALS_MISSING"
    });
    kind = match rpc_status {
        _ if key_problem => ErrorKind::Auth,
        "UNAUTHENTICATED" | "PERMISSION_DENIED" => ErrorKind::Auth,
        // "User location is not supported", "enable billing": the key cannot be used here.
        "FAILED_PRECONDITION" => ErrorKind::Auth,
        "NOT_FOUND" => ErrorKind::NotFound,
        "RESOURCE_EXHAUSTED" if kind != ErrorKind::QuotaExhausted => ErrorKind::RateLimited,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "INTERNAL" | "UNKNOWN" => ErrorKind::Server,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        _ => kind,
    };
    if let Some(r) = reason {
        v.code = Some(r);
    }
    classify::error_from_vendor(kind, v, status, headers, body, redact)
}

/// The error for a prompt Gemini blocked before generating anything (`body`: the response,
/// already redacted).
pub(crate) fn blocked_prompt(feedback: &WirePromptFeedback, body: &str) -> Option<Error> {
    let reason = feedback.block_reason.as_deref()?;
    let message = match feedback.block_reason_message.as_deref() {
        Some(m) if !m.is_empty() => format!("prompt blocked ({reason}): {m}"),
        _ => format!("prompt blocked ({reason})"),
    };
    Some(
        Error::new(ErrorKind::ContentFiltered, message)
            .with_code(reason)
            .with_body(body),
    )
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (Vertex's `createTime`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<u64> {
    let t = crate::time::parse_rfc3339(s)?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs())
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
