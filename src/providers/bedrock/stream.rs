//! Bedrock's streams: AWS event-stream frames in, chunks out. [`BedrockStream`] reads the
//! frames and the in-stream exceptions; [`ConverseEvents`] is ConverseStream's grammar
//! (InvokeModelWithResponseStream's is in `invoke.rs`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use reqwest::header::{HeaderMap, HeaderValue};
use serde::Deserialize;
use serde_json::Value;

use super::decode::{WireUsage, finish_reason, redacted_text};
use super::eventstream::{Frame, FrameDecoder};
use crate::providers::StreamDecoder;
use crate::secret::ApiKey;
use crate::types::{
    ChatChunk, ChatResponse, ChunkChoice, Delta, FinishReason, Role, ToolCallDelta, Usage,
};
use crate::types::{Error, ErrorKind};

/// What one kind of Bedrock stream makes of its events.
pub trait FrameEvents: Send + Unpin + 'static {
    /// Handles event `event_type` with its JSON `payload`, pushing chunks. Returns `true`
    /// for the last event (nothing more is read after it).
    fn on_event(
        &mut self,
        event_type: &str,
        payload: &[u8],
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error>;

    /// The body ended before the last event: `Ok` (with any last chunks) when what came is
    /// a whole answer, a [`ErrorKind::StreamInterrupted`] error otherwise.
    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error>;
}

/// A Bedrock stream: event-stream frames (split anywhere across reads, both CRCs checked,
/// at most 16 MiB each, refused from the prelude) handed to `E`.
///
/// * `:message-type: event` frames go to the grammar by `:event-type`.
/// * `:message-type: exception` frames (`:exception-type` `throttlingException`,
///   `modelStreamErrorException`, `internalServerException`, `serviceUnavailableException`,
///   `validationException`…) and `error` frames end the stream with their typed error:
///   throttling is [`ErrorKind::RateLimited`], unavailability [`ErrorKind::Overloaded`],
///   model stream and internal errors [`ErrorKind::Server`] (all retryable), a validation
///   error [`ErrorKind::InvalidRequest`].
/// * A corrupt frame (a CRC mismatch, impossible lengths) or a body cut inside a frame is
///   [`ErrorKind::StreamInterrupted`], as is a body that ends before the answer's end.
#[derive(Debug)]
pub struct BedrockStream<E> {
    frames: FrameDecoder,
    events: E,
    region: String,
    key: ApiKey,
    done: bool,
    chunks: usize,
    content_chunks: usize,
}

impl<E: FrameEvents> BedrockStream<E> {
    pub(crate) fn new(events: E, region: &str, key: ApiKey) -> Self {
        BedrockStream {
            frames: FrameDecoder::new(),
            events,
            region: region.to_owned(),
            key,
            done: false,
            chunks: 0,
            content_chunks: 0,
        }
    }

    fn redact(&self, s: &str) -> String {
        self.key.redact(s)
    }

    /// The typed error an exception (or error) frame carries.
    fn exception(&self, frame: &Frame, kind: &str) -> Error {
        let (ty, body) = if kind == "error" {
            let msg = frame.header_str(":error-message").unwrap_or("");
            let body = serde_json::json!({ "message": msg })
                .to_string()
                .into_bytes();
            (frame.header_str(":error-code").unwrap_or(""), body)
        } else {
            (
                frame.header_str(":exception-type").unwrap_or(""),
                frame.payload.clone(),
            )
        };
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(ty) {
            headers.insert("x-amzn-errortype", v);
        }
        super::errors::decode_error(None, &headers, &body, &self.region, &|s| self.redact(s))
    }

    fn handle(&mut self, frame: Frame, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        match frame.header_str(":message-type").unwrap_or("event") {
            "event" => {
                let ty = frame.header_str(":event-type").unwrap_or("");
                if self.events.on_event(ty, &frame.payload, out)? {
                    self.done = true;
                }
                Ok(())
            }
            kind @ ("exception" | "error") => {
                self.done = true;
                Err(self.exception(&frame, kind))
            }
            // Another message type is not part of an answer.
            _ => Ok(()),
        }
    }

    fn count(&mut self, out: &VecDeque<ChatChunk>, before: usize) {
        let added = out.len().saturating_sub(before);
        self.chunks += added;
        self.content_chunks += out.range(before..).filter(|c| c.has_content()).count();
    }

    fn annotate(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::StreamInterrupted {
            let msg = format!(
                "stream ended early after {} chunks ({} with content)",
                self.chunks, self.content_chunks
            );
            Error::new(ErrorKind::StreamInterrupted, msg).with_source(e)
        } else {
            e
        }
    }
}

impl<E: FrameEvents> StreamDecoder for BedrockStream<E> {
    fn buffer(&mut self, bytes: &[u8]) {
        if !self.done {
            self.frames.feed(bytes);
        }
    }

    fn decode_some(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        let before = out.len();
        let result = loop {
            if self.done || out.len() > before {
                break Ok(());
            }
            match self.frames.next_frame() {
                Ok(Some(frame)) => {
                    if let Err(e) = self.handle(frame, out) {
                        self.done |= e.kind() != ErrorKind::Decode;
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => {
                    self.done = true;
                    break Err(e.into_error());
                }
            }
        };
        self.count(out, before);
        result
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn finish_into(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let before = out.len();
        let cut = self.frames.pending();
        let r = self.events.on_eof(out).map_err(|e| {
            if cut > 0 {
                Error::new(
                    ErrorKind::StreamInterrupted,
                    format!("stream cut inside a frame ({cut} bytes of it arrived)"),
                )
                .with_source(e)
            } else {
                e
            }
        });
        self.count(out, before);
        r.map_err(|e| self.annotate(e))
    }

    fn interrupted(&self, cause: Error) -> Error {
        Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "stream cut after {} chunks ({} with content)",
                self.chunks, self.content_chunks
            ),
        )
        .with_source(cause)
    }
}

/// The ConverseStream grammar.
///
/// * `messageStart` → a chunk with the role. Every chunk of the answer carries the same id
///   (Converse sends none: one is made per answer) and creation time.
/// * `contentBlockStart` of a `toolUse` → a tool-call fragment with the call's id and name
///   (its index counts client tool calls only); a server tool's blocks (`server_tool_use`,
///   its `toolResult`) are skipped.
/// * `contentBlockDelta`: `text` → content (empty text yields nothing), `toolUse.input` →
///   argument text, `reasoningContent.text` → reasoning, `.signature` →
///   [`Delta::thinking_signature`] (source `bedrock`), `.redactedContent` →
///   [`Delta::redacted_thinking`]; citations are not carried in chunks.
/// * `contentBlockStop` of a tool call that received no argument text → `{}`.
/// * `messageStop` and `metadata` (either order) → one last chunk with the finish reason
///   (`guardrail_intervened`/`content_filtered` → `content_filter`, `max_tokens` → `length`,
///   `tool_use` → `tool_calls`) and the usage; nothing comes after it. A
///   `malformed_model_output` / `malformed_tool_use` stop is a [`ErrorKind::Server`] error.
///
/// A body that ends after `messageStop` without `metadata` is whole (the finish goes out
/// without usage); one that ends before it is [`ErrorKind::StreamInterrupted`].
#[derive(Debug)]
pub struct ConverseEvents {
    id: String,
    created: u64,
    started: bool,
    stop: Option<Option<FinishReason>>,
    usage: Option<Usage>,
    /// Open client tool blocks by content-block index.
    tools: BTreeMap<u32, ToolBlock>,
    /// Blocks of server tools, whose deltas are skipped.
    skipped: BTreeSet<u32>,
    calls: u32,
}

#[derive(Debug)]
struct ToolBlock {
    call_index: u32,
    has_args: bool,
}

impl Default for ConverseEvents {
    fn default() -> Self {
        ConverseEvents {
            id: ChatResponse::new_id(),
            created: ChatResponse::created_now(),
            started: false,
            stop: None,
            usage: None,
            tools: BTreeMap::new(),
            skipped: BTreeSet::new(),
            calls: 0,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    #[serde(default)]
    content_block_index: u32,
    #[serde(default)]
    start: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    #[serde(default)]
    content_block_index: u32,
    #[serde(default)]
    delta: WireDelta,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct WireDelta {
    text: Option<String>,
    tool_use: Option<ToolUseDelta>,
    reasoning_content: Option<ReasoningDelta>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolUseDelta {
    input: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ReasoningDelta {
    text: Option<String>,
    signature: Option<String>,
    redacted_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStop {
    #[serde(default)]
    content_block_index: u32,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    usage: Option<WireUsage>,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn parse<'a, T: Deserialize<'a>>(event: &str, payload: &'a [u8]) -> Result<T, Error> {
    serde_json::from_slice(payload).map_err(|e| {
        Error::new(
            ErrorKind::Decode,
            format!("malformed {event} event in a Bedrock stream"),
        )
        .with_body(&String::from_utf8_lossy(payload))
        .with_source(e)
    })
}

impl ConverseEvents {
    /// A grammar for one answer.
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(&self, delta: Delta, finish: Option<FinishReason>, usage: Option<Usage>) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            created: self.created,
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage,
            ..ChatChunk::default()
        }
    }

    fn push(&self, out: &mut VecDeque<ChatChunk>, delta: Delta) {
        out.push_back(self.chunk(delta, None, None));
    }

    fn push_call(&self, out: &mut VecDeque<ChatChunk>, call: ToolCallDelta) {
        self.push(
            out,
            Delta {
                tool_calls: vec![call],
                ..Delta::default()
            },
        );
    }

    fn block_start(&mut self, s: BlockStart, out: &mut VecDeque<ChatChunk>) {
        let Some(start) = s.start else { return };
        let idx = s.content_block_index;
        let Some(tu) = start.get("toolUse") else {
            // A tool result (of a server tool), an image…: not client-side content.
            if start.get("toolResult").is_some() {
                self.skipped.insert(idx);
            }
            return;
        };
        if tu.get("type").and_then(Value::as_str) == Some("server_tool_use") {
            self.skipped.insert(idx);
            return;
        }
        let text = |k: &str| tu.get(k).and_then(Value::as_str).map(str::to_owned);
        let call_index = self.calls;
        self.calls += 1;
        self.tools.insert(
            idx,
            ToolBlock {
                call_index,
                has_args: false,
            },
        );
        let call = ToolCallDelta::new(
            call_index,
            text("toolUseId"),
            text("name"),
            Some(String::new()),
        );
        self.push_call(out, call);
    }

    fn block_delta(&mut self, d: BlockDelta, out: &mut VecDeque<ChatChunk>) {
        let idx = d.content_block_index;
        if self.skipped.contains(&idx) {
            return;
        }
        let w = d.delta;
        if let Some(input) = w.tool_use.and_then(|t| nonempty(t.input)) {
            if let Some(tool) = self.tools.get_mut(&idx) {
                tool.has_args = true;
                let call = ToolCallDelta::new(tool.call_index, None, None, Some(input));
                self.push_call(out, call);
            }
            return;
        }
        let mut delta = Delta {
            content: nonempty(w.text),
            ..Delta::default()
        };
        if let Some(r) = w.reasoning_content {
            delta.reasoning = nonempty(r.text);
            if let Some(sig) = nonempty(r.signature) {
                delta.thinking_signature = Some(sig);
                delta.thinking_source = Some(super::converse::SOURCE.to_owned());
            }
            delta.redacted_thinking = nonempty(r.redacted_content).map(|b| redacted_text(&b));
        }
        if delta != Delta::default() {
            self.push(out, delta);
        }
    }

    fn block_stop(&mut self, idx: u32, out: &mut VecDeque<ChatChunk>) {
        if let Some(tool) = self.tools.remove(&idx)
            && !tool.has_args
        {
            let call = ToolCallDelta::new(tool.call_index, None, None, Some("{}".to_owned()));
            self.push_call(out, call);
        }
    }

    /// The last chunk, once both the stop reason and the usage are in (or at the end of
    /// the body).
    fn finish(&mut self, out: &mut VecDeque<ChatChunk>) {
        let finish = self.stop.take().flatten();
        let usage = self.usage.take();
        out.push_back(self.chunk(Delta::default(), finish, usage));
    }
}

impl FrameEvents for ConverseEvents {
    fn on_event(
        &mut self,
        event_type: &str,
        payload: &[u8],
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        match event_type {
            "messageStart" => {
                self.started = true;
                let role = Delta {
                    role: Some(Role::Assistant),
                    ..Delta::default()
                };
                self.push(out, role);
            }
            "contentBlockStart" => self.block_start(parse(event_type, payload)?, out),
            "contentBlockDelta" => self.block_delta(parse(event_type, payload)?, out),
            "contentBlockStop" => {
                let s: BlockStop = parse(event_type, payload)?;
                self.block_stop(s.content_block_index, out);
            }
            "messageStop" => {
                let s: MessageStop = parse(event_type, payload)?;
                self.stop = Some(finish_reason(s.stop_reason.as_deref())?);
                if self.usage.is_some() {
                    self.finish(out);
                    return Ok(true);
                }
            }
            "metadata" => {
                let m: Metadata = parse(event_type, payload)?;
                self.usage = Some(m.usage.unwrap_or_default().normalise());
                if self.stop.is_some() {
                    self.finish(out);
                    return Ok(true);
                }
            }
            _ => {}
        }
        Ok(false)
    }

    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.stop.is_some() {
            self.finish(out);
            Ok(())
        } else if self.started {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended before messageStop",
            ))
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended before messageStart",
            ))
        }
    }
}
