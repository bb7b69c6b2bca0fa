//! Anthropic Messages streaming: `event: <type>` SSE events ending with `message_stop`.

use std::collections::{BTreeMap, VecDeque};

use serde::Deserialize;

use super::wire::{WireBlock, WireUsage, arguments_text, finish_reason, in_band_error};
use crate::http::sse::SseEvent;
use crate::providers::EventHandler;
use crate::secret::ApiKey;
use crate::types::{ChatChunk, ChunkChoice, Delta, FinishReason, Role, ToolCallDelta, Usage};
use crate::types::{Error, ErrorKind};

/// The Anthropic Messages stream grammar.
///
/// * `message_start` → a chunk with the role (and the id and model every chunk carries);
///   its usage (input and cache counts so far) rides on it, and is merged into the final count.
/// * `content_block_start`: a `tool_use` block → a tool-call fragment with the call's id and
///   name (its index counts tool blocks only: 0 for the first call, 1 for the second…); a
///   `redacted_thinking` block → [`Delta::redacted_thinking`]; text and thinking blocks
///   yield a chunk only if they start non-empty.
/// * `content_block_delta`: `text_delta` → content, `thinking_delta` → reasoning,
///   `signature_delta` → [`Delta::thinking_signature`], `input_json_delta` → argument text.
///   Empty deltas (the `""` that starts most tool inputs) yield nothing.
/// * `content_block_stop` of a tool block that received no argument text → the arguments
///   `{}` (or the block's non-empty start `input`), as the unstreamed response has them.
/// * `message_delta` → a chunk with the finish reason and the final [`Usage`] (the start's
///   counts merged with whatever fields this event repeats).
/// * `message_stop` ends the stream; `ping` and unknown events are skipped; `error` events
///   become typed errors (`overloaded_error` → [`ErrorKind::Overloaded`]…).
///
/// A stream that ends without `message_stop` is whole if a stop reason arrived, and
/// [`ErrorKind::StreamInterrupted`] otherwise.
#[derive(Debug, Default)]
pub struct AnthropicEvents {
    id: String,
    model: String,
    usage: WireUsage,
    have_usage: bool,
    usage_sent: bool,
    started: bool,
    saw_stop: bool,
    /// Open tool blocks by content-block index.
    tools_open: BTreeMap<u32, ToolBlock>,
    tools_seen: u32,
    key: Option<ApiKey>,
}

#[derive(Debug)]
struct ToolBlock {
    call_index: u32,
    has_args: bool,
    start_input: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        #[serde(default)]
        message: Option<StartMessage>,
    },
    ContentBlockStart {
        #[serde(default)]
        index: u32,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        #[serde(default)]
        index: u32,
        delta: WireDelta,
    },
    ContentBlockStop {
        #[serde(default)]
        index: u32,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageDeltaBody>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        #[serde(default)]
        text: Option<String>,
    },
    InputJsonDelta {
        #[serde(default)]
        partial_json: Option<String>,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: Option<String>,
    },
    SignatureDelta {
        #[serde(default)]
        signature: Option<String>,
    },
    #[serde(other)]
    Other,
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

impl AnthropicEvents {
    /// A handler for one stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handler that redacts `key` from the errors it reports.
    pub(crate) fn with_key(key: ApiKey) -> Self {
        AnthropicEvents {
            key: Some(key),
            ..Self::default()
        }
    }

    fn chunk(
        &self,
        delta: Delta,
        finish_reason: Option<FinishReason>,
        usage: Option<Usage>,
    ) -> ChatChunk {
        ChatChunk {
            id: self.id.clone(),
            model: self.model.clone(),
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                finish_reason,
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

    fn merge_usage(&mut self, u: Option<WireUsage>) {
        if let Some(u) = u {
            self.usage.merge(&u);
            self.have_usage = true;
        }
    }

    fn final_usage(&self) -> Option<Usage> {
        self.have_usage.then(|| self.usage.normalise())
    }

    fn error(&self, data: &str) -> Error {
        match &self.key {
            Some(k) => in_band_error(data.as_bytes(), &|s| k.redact(s)),
            None => in_band_error(data.as_bytes(), &|s| s.to_owned()),
        }
    }

    fn block_start(&mut self, index: u32, block: WireBlock, out: &mut VecDeque<ChatChunk>) {
        match block {
            WireBlock::Text { text } => {
                if let Some(text) = nonempty(text) {
                    self.push(
                        out,
                        Delta {
                            content: Some(text),
                            ..Delta::default()
                        },
                    );
                }
            }
            WireBlock::Thinking {
                thinking,
                signature,
            } => {
                let reasoning = nonempty(thinking);
                let thinking_signature = nonempty(signature);
                if reasoning.is_some() || thinking_signature.is_some() {
                    self.push(
                        out,
                        Delta {
                            reasoning,
                            thinking_source: source_of(&thinking_signature),
                            thinking_signature,
                            ..Delta::default()
                        },
                    );
                }
            }
            WireBlock::RedactedThinking { data } => self.push(
                out,
                Delta {
                    redacted_thinking: Some(data.unwrap_or_default()),
                    ..Delta::default()
                },
            ),
            WireBlock::ToolUse { id, name, input } => {
                let call_index = self.tools_seen;
                self.tools_seen += 1;
                let start_input = input
                    .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                    .map(|v| arguments_text(Some(&v)));
                self.tools_open.insert(
                    index,
                    ToolBlock {
                        call_index,
                        has_args: false,
                        start_input,
                    },
                );
                self.push_call(
                    out,
                    ToolCallDelta::new(call_index, id, name, Some(String::new())),
                );
            }
            WireBlock::Other => {}
        }
    }

    fn block_delta(&mut self, index: u32, delta: WireDelta, out: &mut VecDeque<ChatChunk>) {
        let d = match delta {
            WireDelta::TextDelta { text } => Delta {
                content: nonempty(text),
                ..Delta::default()
            },
            WireDelta::ThinkingDelta { thinking } => Delta {
                reasoning: nonempty(thinking),
                ..Delta::default()
            },
            WireDelta::SignatureDelta { signature } => Delta {
                thinking_signature: nonempty(signature),
                thinking_source: Some(super::wire::SOURCE.to_owned()),
                ..Delta::default()
            },
            WireDelta::InputJsonDelta { partial_json } => {
                // Input of a block that is not a client tool call (a server tool) is skipped.
                let (Some(json), Some(tool)) =
                    (nonempty(partial_json), self.tools_open.get_mut(&index))
                else {
                    return;
                };
                tool.has_args = true;
                let call = ToolCallDelta::new(tool.call_index, None, None, Some(json));
                self.push_call(out, call);
                return;
            }
            WireDelta::Other => return,
        };
        if d != Delta::default() {
            self.push(out, d);
        }
    }

    fn block_stop(&mut self, index: u32, out: &mut VecDeque<ChatChunk>) {
        if let Some(tool) = self.tools_open.remove(&index)
            && !tool.has_args
        {
            let args = tool.start_input.unwrap_or_else(|| "{}".to_owned());
            self.push_call(
                out,
                ToolCallDelta::new(tool.call_index, None, None, Some(args)),
            );
        }
    }
}

impl EventHandler for AnthropicEvents {
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error> {
        let data = event.data.trim();
        if event.event == "error" {
            return Err(self.error(data));
        }
        if data.is_empty() {
            return Ok(false);
        }
        let ev: WireEvent = serde_json::from_str(data).map_err(|e| {
            let body = match &self.key {
                Some(k) => k.redact(data),
                None => data.to_owned(),
            };
            Error::new(ErrorKind::Decode, "malformed stream event")
                .with_body(&body)
                .with_source(e)
        })?;
        match ev {
            WireEvent::MessageStart { message } => {
                if let Some(m) = message {
                    if let Some(id) = m.id {
                        self.id = id;
                    }
                    if let Some(model) = m.model {
                        self.model = model;
                    }
                    self.merge_usage(m.usage);
                }
                self.started = true;
                // The start's usage (input and cache counts) goes out at once: an attempt
                // abandoned before its first content was still billed for its input.
                let role = Delta {
                    role: Some(Role::Assistant),
                    ..Delta::default()
                };
                out.push_back(self.chunk(role, None, self.final_usage()));
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            WireEvent::ContentBlockStop { index } => self.block_stop(index, out),
            WireEvent::MessageDelta { delta, usage } => {
                let fr = finish_reason(delta.and_then(|d| d.stop_reason).as_deref());
                self.saw_stop |= fr.is_some();
                self.merge_usage(usage);
                let usage = self.final_usage();
                self.usage_sent |= usage.is_some();
                out.push_back(self.chunk(Delta::default(), fr, usage));
            }
            WireEvent::MessageStop => {
                // No message_delta came: the start's usage is all there is.
                if !self.usage_sent
                    && let Some(u) = self.final_usage()
                {
                    self.usage_sent = true;
                    out.push_back(self.chunk(Delta::default(), None, Some(u)));
                }
                return Ok(true);
            }
            WireEvent::Error => return Err(self.error(data)),
            WireEvent::Other => {}
        }
        Ok(false)
    }

    fn on_eof(&mut self, _out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.saw_stop {
            Ok(())
        } else if self.started {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended before a stop reason or message_stop",
            ))
        } else {
            Err(Error::new(
                ErrorKind::StreamInterrupted,
                "stream ended before message_start",
            ))
        }
    }
}

/// The source tag for a signature this stream carries.
fn source_of(signature: &Option<String>) -> Option<String> {
    signature.as_ref().map(|_| super::wire::SOURCE.to_owned())
}
