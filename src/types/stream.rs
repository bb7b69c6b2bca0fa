//! Streaming: chunks shaped like OpenAI's `chat.completion.chunk`, and their folding into a
//! [`ChatResponse`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::Stream;
use serde::{Deserialize, Serialize};

use super::lenient::null_as_default;
use super::{
    ChatResponse, Choice, Content, FinishReason, Message, ResponseMeta, Role, ToolCall, Usage,
};
use crate::types::Error;

/// One streamed chunk, shaped like OpenAI's `chat.completion.chunk`: text, reasoning and
/// tool-call deltas, then the finish reason and usage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChunk {
    /// The vendor's response id.
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    /// Always `chat.completion.chunk` (written so even when a chunk built in code left it
    /// empty).
    #[serde(default = "chunk_object", serialize_with = "chunk_object_out")]
    pub object: String,
    /// Unix seconds when the vendor created the response.
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: u64,
    /// The model that answers.
    #[serde(default, deserialize_with = "null_as_default")]
    pub model: String,
    /// Deltas per choice.
    #[serde(default, deserialize_with = "null_as_default")]
    pub choices: Vec<ChunkChoice>,
    /// Usage so far (the last chunk carrying it holds the final count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// The relay target that produced this chunk (set by the relay, not part of the JSON).
    #[serde(skip)]
    pub target: Option<super::TargetId>,
    /// Content, or a signal about the stream itself (not part of the JSON).
    #[serde(skip)]
    pub kind: ChunkKind,
}

/// What a chunk is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChunkKind {
    /// Deltas of the answer (the usual case).
    #[default]
    Content,
    /// The stream was interrupted and the relay starts the answer over on another target:
    /// discard everything received so far. Carries no deltas.
    Restart,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_owned()
}

/// `object` as OpenAI's wire has it: a chunk built in code (`Default`) has none of its own.
fn chunk_object_out<S: serde::Serializer>(object: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if object.is_empty() {
        "chat.completion.chunk"
    } else {
        object
    })
}

impl ChatChunk {
    /// The text delta of the first choice, if any.
    pub fn text(&self) -> Option<&str> {
        self.choices.first()?.delta.content.as_deref()
    }

    /// The reasoning delta of the first choice, if any.
    pub fn reasoning(&self) -> Option<&str> {
        self.choices.first()?.delta.reasoning.as_deref()
    }

    /// The finish reason of the first choice, if this chunk carries it.
    pub fn finish_reason(&self) -> Option<&FinishReason> {
        self.choices.first()?.finish_reason.as_ref()
    }

    /// Roughly how many bytes the chunk holds: its strings' lengths, plus a fixed amount per
    /// choice and tool-call fragment. For bounding buffers of chunks, not exact.
    pub(crate) fn approx_bytes(&self) -> usize {
        fn len(s: &Option<String>) -> usize {
            s.as_ref().map_or(0, String::len)
        }
        const FIXED: usize = 64;
        let choices: usize = self
            .choices
            .iter()
            .map(|c| {
                let d = &c.delta;
                let calls: usize = d
                    .tool_calls
                    .iter()
                    .map(|t| {
                        FIXED
                            + len(&t.id)
                            + len(&t.function.name)
                            + len(&t.function.arguments)
                            + len(&t.thought_signature)
                    })
                    .sum();
                FIXED
                    + len(&d.content)
                    + len(&d.reasoning)
                    + len(&d.refusal)
                    + len(&d.thinking_signature)
                    + len(&d.redacted_thinking)
                    + len(&d.thinking_source)
                    + calls
            })
            .sum();
        FIXED + self.id.len() + self.object.len() + self.model.len() + choices
    }

    /// Whether the chunk carries generated content (text, reasoning, refusal or a tool call).
    pub fn has_content(&self) -> bool {
        self.choices.iter().any(|c| {
            let d = &c.delta;
            d.content.as_deref().is_some_and(|s| !s.is_empty())
                || d.reasoning.as_deref().is_some_and(|s| !s.is_empty())
                || d.refusal.as_deref().is_some_and(|s| !s.is_empty())
                || !d.tool_calls.is_empty()
        })
    }
}

/// The delta of one choice in a chunk. Written as OpenAI does, with `logprobs: null`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ChunkChoice {
    /// Which choice this delta extends.
    #[serde(default, deserialize_with = "null_as_default")]
    pub index: u32,
    /// What is new.
    #[serde(default, deserialize_with = "null_as_default")]
    pub delta: Delta,
    /// Set on the choice's last chunk.
    #[serde(default)]
    pub finish_reason: Option<FinishReason>,
}

impl Serialize for ChunkChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ChunkChoice", 4)?;
        st.serialize_field("index", &self.index)?;
        st.serialize_field("delta", &self.delta)?;
        st.serialize_field("logprobs", &())?;
        st.serialize_field("finish_reason", &self.finish_reason)?;
        st.end()
    }
}

/// New content for one choice.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Delta {
    /// Set on the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Text to append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Reasoning text to append.
    #[serde(
        default,
        rename = "reasoning_content",
        alias = "reasoning",
        skip_serializing_if = "Option::is_none"
    )]
    pub reasoning: Option<String>,
    /// Refusal text to append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    /// Tool-call fragments.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCallDelta>,
    /// The signature closing the reasoning block streamed so far (Anthropic
    /// `signature_delta`, Gemini `thoughtSignature` on a thought part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_signature: Option<String>,
    /// A whole redacted reasoning block (Anthropic `redacted_thinking`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_thinking: Option<String>,
    /// The vendor family of `thinking_signature` (see [`ThinkingBlock`](crate::ThinkingBlock)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_source: Option<String>,
}

/// A fragment of a tool call: the first names the call, later ones add argument text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolCallDelta {
    /// Which call of the choice this fragment extends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    /// The call id (first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Name and argument text.
    #[serde(default, deserialize_with = "null_as_default")]
    pub function: FunctionCallDelta,
    /// Gemini's thought signature for this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

/// Name and argument fragments of a tool call.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FunctionCallDelta {
    /// The function's name (first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Argument JSON text to append.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

impl ToolCallDelta {
    /// A fragment for call `index`.
    pub fn new(
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: Option<String>,
    ) -> Self {
        ToolCallDelta {
            index: Some(index),
            id,
            function: FunctionCallDelta { name, arguments },
            thought_signature: None,
        }
    }
}

/// Folds chunks into the [`ChatResponse`] the same call would have returned unstreamed.
#[derive(Debug, Default)]
pub struct StreamAccumulator {
    id: String,
    model: String,
    created: u64,
    usage: Option<Usage>,
    choices: BTreeMap<u32, ChoiceAcc>,
}

#[derive(Debug, Default)]
struct ChoiceAcc {
    text: String,
    reasoning: String,
    /// Reasoning text since the last signed block (becomes a block when a signature comes).
    open_thinking: String,
    thinking_blocks: Vec<crate::types::ThinkingBlock>,
    refusal: String,
    calls: Vec<CallAcc>,
    /// Position in `calls` of each vendor-given call index.
    by_index: BTreeMap<u32, usize>,
    finish_reason: Option<FinishReason>,
}

#[derive(Debug, Default)]
struct CallAcc {
    id: String,
    name: String,
    arguments: String,
    thought_signature: Option<String>,
}

impl StreamAccumulator {
    /// An empty accumulator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one chunk.
    pub fn push(&mut self, chunk: &ChatChunk) {
        if chunk.kind == ChunkKind::Restart {
            *self = StreamAccumulator::default();
            return;
        }
        if self.id.is_empty() && !chunk.id.is_empty() {
            self.id.clone_from(&chunk.id);
        }
        if self.model.is_empty() && !chunk.model.is_empty() {
            self.model.clone_from(&chunk.model);
        }
        if self.created == 0 {
            self.created = chunk.created;
        }
        if chunk.usage.is_some() {
            // Vendors that repeat usage send it cumulative: the last one is the total.
            self.usage = chunk.usage;
        }
        for c in &chunk.choices {
            let acc = self.choices.entry(c.index).or_default();
            let d = &c.delta;
            if let Some(t) = &d.content {
                acc.text.push_str(t);
            }
            if let Some(r) = &d.reasoning {
                acc.reasoning.push_str(r);
                acc.open_thinking.push_str(r);
            }
            if let Some(sig) = &d.thinking_signature {
                acc.thinking_blocks
                    .push(crate::types::ThinkingBlock::Thinking {
                        thinking: std::mem::take(&mut acc.open_thinking),
                        signature: Some(sig.clone()),
                        source: d.thinking_source.clone(),
                    });
            }
            if let Some(data) = &d.redacted_thinking {
                acc.thinking_blocks
                    .push(crate::types::ThinkingBlock::Redacted { data: data.clone() });
            }
            if let Some(r) = &d.refusal {
                acc.refusal.push_str(r);
            }
            for tc in &d.tool_calls {
                acc.push_call(tc);
            }
            if c.finish_reason.is_some() {
                acc.finish_reason.clone_from(&c.finish_reason);
            }
        }
    }

    /// Whether any choice has a finish reason yet.
    pub fn is_finished(&self) -> bool {
        self.choices.values().any(|c| c.finish_reason.is_some())
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// The response folded so far.
    pub fn finish(self) -> ChatResponse {
        let choices = self
            .choices
            .into_iter()
            .map(|(index, acc)| {
                let mut message = Message::new(Role::Assistant, "");
                // As unstreamed decoding does: an empty text beside tool calls is no content.
                message.content = if acc.text.is_empty() && !acc.calls.is_empty() {
                    None
                } else {
                    Some(Content::Text(acc.text))
                };
                message.reasoning = (!acc.reasoning.is_empty()).then_some(acc.reasoning);
                message.refusal = (!acc.refusal.is_empty()).then_some(acc.refusal);
                // Unsigned reasoning stays in `reasoning` only: blocks exist to be sent back.
                message.thinking_blocks = acc.thinking_blocks;
                message.tool_calls = acc
                    .calls
                    .into_iter()
                    .map(|c| {
                        let mut call = ToolCall::function(c.id, c.name, c.arguments);
                        call.thought_signature = c.thought_signature;
                        call
                    })
                    .collect();
                Choice::new(index, message, acc.finish_reason)
            })
            .collect();
        ChatResponse {
            id: self.id,
            object: "chat.completion".to_owned(),
            created: self.created,
            model: self.model,
            choices,
            usage: self.usage,
            system_fingerprint: None,
            service_tier: None,
            meta: ResponseMeta::default(),
        }
    }
}

impl ChoiceAcc {
    fn push_call(&mut self, tc: &ToolCallDelta) {
        let id = tc.id.as_deref().filter(|s| !s.is_empty());
        let pos = match tc.index {
            Some(i) => *self.by_index.entry(i).or_insert_with(|| {
                self.calls.push(CallAcc::default());
                self.calls.len() - 1
            }),
            // No index: a new id starts a new call; otherwise the fragment extends the last one.
            None => match id {
                Some(id) => match self.calls.iter().position(|c| c.id == id) {
                    Some(p) => p,
                    None => {
                        self.calls.push(CallAcc::default());
                        self.calls.len() - 1
                    }
                },
                None if self.calls.is_empty() => {
                    self.calls.push(CallAcc::default());
                    0
                }
                None => self.calls.len() - 1,
            },
        };
        let Some(call) = self.calls.get_mut(pos) else {
            return;
        };
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_owned();
        }
        if let Some(name) = tc.function.name.as_deref().filter(|s| !s.is_empty())
            && call.name.is_empty()
        {
            call.name = name.to_owned();
        }
        if let Some(args) = &tc.function.arguments {
            call.arguments.push_str(args);
        }
        if tc.thought_signature.is_some() {
            call.thought_signature.clone_from(&tc.thought_signature);
        }
    }
}

/// A stream of chunks that also keeps the metadata of the call behind it. The relay's own
/// stream updates its metadata as it goes (a recovered stream changes who serves it), so the
/// metadata lives with the stream rather than beside it.
pub(crate) trait ChunkSource:
    Stream<Item = Result<ChatChunk, Error>> + Send + Unpin
{
    /// What the call did so far.
    fn meta(&self) -> &ResponseMeta;
    /// Mutable access to the same.
    fn meta_mut(&mut self) -> &mut ResponseMeta;
    /// Takes the metadata out, leaving an empty one.
    fn take_meta(&mut self) -> ResponseMeta {
        std::mem::take(self.meta_mut())
    }
}

/// Any stream of chunks, with metadata kept beside it: boxed, and only once something sets
/// it (a provider's stream hands its metadata to the relay's at open, then holds none).
struct WithMeta<S> {
    stream: S,
    meta: Option<Box<ResponseMeta>>,
}

impl<S: Stream<Item = Result<ChatChunk, Error>> + Send + Unpin> Stream for WithMeta<S> {
    type Item = Result<ChatChunk, Error>;

    #[inline]
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.stream).poll_next(cx)
    }
}

impl<S: Stream<Item = Result<ChatChunk, Error>> + Send + Unpin> ChunkSource for WithMeta<S> {
    fn meta(&self) -> &ResponseMeta {
        self.meta.as_deref().unwrap_or(&super::response::EMPTY_META)
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        self.meta.get_or_insert_with(Box::default)
    }
    fn take_meta(&mut self) -> ResponseMeta {
        self.meta.take().map(|m| *m).unwrap_or_default()
    }
}

/// A stream of [`ChatChunk`]s (a [`futures::Stream`]); [`into_response`](Self::into_response)
/// folds it into the [`ChatResponse`] the same call would have returned unstreamed, and
/// [`meta`](Self::meta) tells what the relay did.
pub struct ChatStream {
    inner: Box<dyn ChunkSource>,
}

impl std::fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatStream")
            .field("meta", self.meta())
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// Wraps any stream of chunks (for providers and wrappers).
    pub fn new(stream: impl Stream<Item = Result<ChatChunk, Error>> + Send + 'static) -> Self {
        Self::from_unpin(Box::pin(stream))
    }

    /// Wraps an `Unpin` stream without boxing it a second time.
    pub(crate) fn from_unpin(
        stream: impl Stream<Item = Result<ChatChunk, Error>> + Send + Unpin + 'static,
    ) -> Self {
        ChatStream {
            inner: Box::new(WithMeta { stream, meta: None }),
        }
    }

    /// Wraps a source that keeps its own metadata (the relay's stream).
    pub(crate) fn from_source(source: impl ChunkSource + 'static) -> Self {
        ChatStream {
            inner: Box::new(source),
        }
    }

    /// What the relay did for this stream: who serves it and every attempt so far. After a
    /// mid-stream recovery it names the target that took over, and the interrupted attempt
    /// is marked [`Interrupted`](crate::AttemptOutcome::Interrupted).
    pub fn meta(&self) -> &ResponseMeta {
        self.inner.meta()
    }

    /// Mutable access to the metadata (for providers and wrappers; the relay keeps it up to
    /// date through the stream).
    pub fn meta_mut(&mut self) -> &mut ResponseMeta {
        self.inner.meta_mut()
    }

    /// Takes the metadata out, leaving an empty one (the relay's stream takes its serving
    /// attempt's at open, so that one stream holds one).
    pub(crate) fn take_meta(&mut self) -> ResponseMeta {
        self.inner.take_meta()
    }

    /// Reads the whole stream and folds it into the response `chat` would have returned,
    /// with [`meta`](Self::meta) as it stands at the end. The first error ends the stream
    /// and is returned. A [`Restart`](ChunkKind::Restart) chunk discards what came before it.
    pub async fn into_response(mut self) -> Result<ChatResponse, Error> {
        use futures::StreamExt;
        let mut acc = StreamAccumulator::new();
        while let Some(chunk) = self.next().await {
            acc.push(&chunk?);
        }
        let mut resp = acc.finish();
        resp.meta = self.take_meta();
        Ok(resp)
    }
}

impl Stream for ChatStream {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut *self.inner).poll_next(cx)
    }
}

/// Turns a whole response into the chunks a stream of it would carry (one per choice, plus
/// usage), for servers that answer a stream request with plain JSON.
pub(crate) fn response_to_chunks(resp: ChatResponse) -> Vec<ChatChunk> {
    let chunk = |index: u32, delta: Delta, finish_reason: Option<FinishReason>| ChatChunk {
        id: resp.id.clone(),
        created: resp.created,
        model: resp.model.clone(),
        choices: vec![ChunkChoice {
            index,
            delta,
            finish_reason,
        }],
        ..ChatChunk::default()
    };
    let mut chunks = Vec::new();
    for c in resp.choices.clone() {
        let m = c.message;
        // Signed and redacted reasoning first, one chunk per block, as a vendor streams it.
        let mut covered = String::new();
        for block in m.thinking_blocks {
            let delta = match block {
                crate::types::ThinkingBlock::Thinking {
                    thinking,
                    signature,
                    source,
                } => {
                    covered.push_str(&thinking);
                    Delta {
                        reasoning: (!thinking.is_empty()).then_some(thinking),
                        thinking_signature: signature,
                        thinking_source: source,
                        ..Delta::default()
                    }
                }
                crate::types::ThinkingBlock::Redacted { data } => Delta {
                    redacted_thinking: Some(data),
                    ..Delta::default()
                },
                crate::types::ThinkingBlock::Unknown => continue,
            };
            chunks.push(chunk(c.index, delta, None));
        }
        let reasoning = m
            .reasoning
            .map(|r| r.strip_prefix(covered.as_str()).unwrap_or(&r).to_owned())
            .filter(|r| !r.is_empty());
        let tool_calls = m
            .tool_calls
            .into_iter()
            .enumerate()
            .map(|(i, tc)| {
                let mut d = ToolCallDelta::new(
                    i as u32,
                    Some(tc.id),
                    Some(tc.function.name),
                    Some(tc.function.arguments),
                );
                d.thought_signature = tc.thought_signature;
                d
            })
            .collect();
        let delta = Delta {
            role: Some(Role::Assistant),
            content: m.content.map(|c| c.text().into_owned()),
            reasoning,
            refusal: m.refusal,
            tool_calls,
            ..Delta::default()
        };
        chunks.push(chunk(c.index, delta, c.finish_reason));
    }
    if let Some(usage) = resp.usage {
        chunks.push(ChatChunk {
            id: resp.id,
            created: resp.created,
            model: resp.model,
            usage: Some(usage),
            ..ChatChunk::default()
        });
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ThinkingBlock;

    #[test]
    fn a_response_survives_chunking_and_folding() {
        let mut m = Message::assistant("Paris.");
        m.reasoning = Some("first thought. second thought. unsigned tail".into());
        m.thinking_blocks = vec![
            ThinkingBlock::Thinking {
                thinking: "first thought. ".into(),
                signature: Some("sig-1".into()),
                source: None,
            },
            ThinkingBlock::Redacted {
                data: "opaque".into(),
            },
            ThinkingBlock::Thinking {
                thinking: "second thought. ".into(),
                signature: Some("sig-2".into()),
                source: None,
            },
        ];
        let mut call = ToolCall::function("call_1", "lookup", r#"{"q":1}"#);
        call.thought_signature = Some("ts".into());
        m.tool_calls = vec![call];
        let resp = ChatResponse {
            id: "r1".into(),
            model: "m".into(),
            choices: vec![Choice::new(0, m, Some(FinishReason::ToolCalls))],
            usage: Some(Usage::new(10, 5)),
            ..ChatResponse::default()
        };
        let mut acc = StreamAccumulator::new();
        for c in response_to_chunks(resp.clone()) {
            acc.push(&c);
        }
        let folded = acc.finish();
        assert_eq!(folded.choices, resp.choices);
        assert_eq!(folded.usage, resp.usage);
        assert_eq!(folded.id, "r1");
    }
}
