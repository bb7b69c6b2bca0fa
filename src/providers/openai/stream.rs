//! OpenAI Chat Completions streaming: `data: {chunk}` events ending with `data: [DONE]`.

use std::collections::VecDeque;
use std::fmt;

use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde::de::{SeqAccess, Visitor};
use serde_json::Value;

use super::wire::{finish_reason, split_reasoning};
use crate::http::classify::{self, error_from_vendor, parse_error_body};
use crate::http::sse::SseEvent;
use crate::providers::EventHandler;
use crate::types::{
    ChatChunk, ChunkChoice, Content, Delta, FinishReason, Role, ToolCallDelta, Usage,
};
use crate::types::{Error, ErrorKind};

/// The OpenAI-family stream grammar. Handles the vendors' variations: usage on a trailing
/// chunk with `choices: []` (OpenAI, Qwen, xAI) or on the finish chunk (DeepSeek, Mistral) or
/// in `x_groq.usage`; `usage: null` on content chunks; `reasoning_content` / `reasoning`
/// deltas; Mistral's content arrays; error events (Groq's `event: error`, OpenRouter's
/// in-chunk `error`); `: comment` keep-alives.
#[derive(Debug, Default)]
pub struct OpenAiEvents {
    saw_finish: bool,
}

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    created: Option<u64>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Choices>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    x_groq: Option<XGroq>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct XGroq {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default, deserialize_with = "finish_reason")]
    finish_reason: Option<FinishReason>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    role: Option<Role>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

/// `choices`, each converted into a [`ChunkChoice`] as it is read (no second vector).
struct Choices(Vec<ChunkChoice>);

impl<'de> Deserialize<'de> for Choices {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Choices;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // As `Vec`'s own, so a malformed chunk's error reads as before.
                f.write_str("a sequence")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Choices, A::Error> {
                let mut out = Vec::new();
                while let Some(c) = seq.next_element::<WireChunkChoice>()? {
                    let i = out.len();
                    out.push(c.into_choice(i));
                }
                Ok(Choices(out))
            }
        }
        d.deserialize_seq(V)
    }
}

impl WireChunkChoice {
    /// The choice at position `i` (its index when the vendor sent none).
    fn into_choice(self, i: usize) -> ChunkChoice {
        let mut choice = ChunkChoice {
            index: self.index.unwrap_or(i as u32),
            finish_reason: self.finish_reason,
            ..ChunkChoice::default()
        };
        if let Some(d) = self.delta {
            let (content, part_reasoning) = split_reasoning(d.content);
            choice.delta = Delta {
                role: d.role,
                // A plain string is moved, not copied.
                content: content.map(|c| match c {
                    Content::Text(t) => t,
                    parts => parts.text().into_owned(),
                }),
                reasoning: d.reasoning_content.or(d.reasoning).or(part_reasoning),
                refusal: d.refusal,
                tool_calls: d.tool_calls.unwrap_or_default(),
                ..Delta::default()
            };
        }
        choice
    }
}

impl OpenAiEvents {
    /// A handler for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    fn in_stream_error(&self, body: &str) -> Error {
        let root: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        // Groq: {"error":{…,"status_code":400}}; OpenRouter: {"error":{"code":400,…}}.
        let status = root
            .pointer("/error/status_code")
            .or_else(|| root.pointer("/error/code"))
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok());
        let v = parse_error_body(body.as_bytes());
        let kind = match status {
            Some(s) => classify::kind_for(s, &v),
            None => classify::kind_for(500, &v),
        };
        error_from_vendor(kind, v, status, &HeaderMap::new(), body.as_bytes(), &|s| {
            s.to_owned()
        })
    }
}

impl EventHandler for OpenAiEvents {
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        // A chunk object needs no trimming (its ends are not whitespace).
        let data = match event.data.as_bytes() {
            [b'{', .., b'}'] => event.data,
            _ => event.data.trim(),
        };
        if data == "[DONE]" {
            return Ok(true);
        }
        if event.event == "error" {
            return Err(self.in_stream_error(data));
        }
        if data.is_empty() {
            return Ok(false);
        }
        let wire: WireChunk = serde_json::from_str(data).map_err(|e| {
            Error::new(ErrorKind::Decode, "malformed stream chunk")
                .with_body(data)
                .with_source(e)
        })?;
        if wire.error.as_ref().is_some_and(|e| !e.is_null()) {
            return Err(self.in_stream_error(data));
        }
        let choices = wire.choices.map(|c| c.0).unwrap_or_default();
        self.saw_finish |= choices.iter().any(|c| c.finish_reason.is_some());
        let usage = wire.usage.or(wire.x_groq.and_then(|x| x.usage));
        out.push_back(ChatChunk {
            id: wire.id.unwrap_or_default(),
            created: wire.created.unwrap_or_default(),
            model: wire.model.unwrap_or_default(),
            choices,
            usage,
            ..ChatChunk::default()
        });
        Ok(false)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.saw_finish {
            // Finish reason seen but no [DONE]: the answer is whole; finalise now.
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended without a finish reason or [DONE]",
            ))
        }
    }
}
