//! OpenAI Chat Completions streaming: `data: {chunk}` events ending with `data: [DONE]`.

use std::collections::VecDeque;

use reqwest::header::HeaderMap;
use serde::Deserialize;
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
    choices: Option<Vec<WireChunkChoice>>,
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
        let data = event.data.trim();
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
        let choices: Vec<ChunkChoice> = wire
            .choices
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let fr = c.finish_reason;
                self.saw_finish |= fr.is_some();
                let mut choice = ChunkChoice {
                    index: c.index.unwrap_or(i as u32),
                    finish_reason: fr,
                    ..ChunkChoice::default()
                };
                if let Some(d) = c.delta {
                    let (content, part_reasoning) = split_reasoning(d.content);
                    choice.delta = Delta {
                        role: d.role,
                        content: content.map(|c| c.text().into_owned()),
                        reasoning: d.reasoning_content.or(d.reasoning).or(part_reasoning),
                        refusal: d.refusal,
                        tool_calls: d.tool_calls.unwrap_or_default(),
                        ..Delta::default()
                    };
                }
                choice
            })
            .collect();
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
