//! Vendor implementations of [`Provider`](crate::Provider): one [`HttpProvider`] over a
//! [`Codec`] per wire format (OpenAI and its compatibles, Anthropic, Gemini, or your own),
//! the registry of provider [`kinds`] a configuration file names, and the machinery codecs
//! share to turn a vendor's event stream into [`ChatChunk`]s.

pub mod anthropic;
pub(crate) mod base_url;
#[cfg(feature = "bedrock")]
pub mod bedrock;
mod codec;
pub mod gemini;
mod http_provider;
pub mod kinds;
pub mod openai;
#[cfg(feature = "vertex")]
pub mod vertex;

use std::collections::VecDeque;

use crate::http::sse::{SseDecoder, SseEof, SseEvent};
use crate::types::{ChatChunk, ChatResponse, Choice};
use crate::types::{Error, ErrorKind};

pub use anthropic::{Anthropic, AnthropicCodec};
pub use codec::{Codec, KeyHeader, Redactor, StreamDecoder, stream_of};
pub use gemini::{Gemini, GeminiCodec};
pub use http_provider::HttpProvider;
pub use openai::{OpenAi, OpenAiCodec};

/// Whether a choice has something in it: text or parts, reasoning, a thinking block, a tool
/// call, a refusal, or a finish reason (`length`, `content_filter`… with empty text is an
/// answer: it says why there is no text).
fn choice_has_something(c: &Choice) -> bool {
    let m = &c.message;
    c.finish_reason.is_some()
        || m.content.as_ref().is_some_and(|c| !c.is_empty())
        || m.reasoning.as_deref().is_some_and(|r| !r.is_empty())
        || !m.thinking_blocks.is_empty()
        || !m.tool_calls.is_empty()
        || m.refusal.as_deref().is_some_and(|r| !r.is_empty())
}

/// Checks that a decoded 2xx answer has something in it: at least one choice, and a choice
/// with content, reasoning, a tool call, a refusal or a finish reason. A body with nothing in
/// it (`{}`, no choices, another vendor's dialect) is a [`ErrorKind::Decode`] error saying
/// what was missing, with the (already redacted) body: the relay fails over, and the attempt
/// counts as failed.
///
/// `none` says what a body without choices lacks (e.g. "no `choices`"), `blank` what its
/// choices lack.
pub(crate) fn require_answer(
    resp: ChatResponse,
    none: &str,
    blank: &str,
    body: impl FnOnce() -> String,
) -> Result<ChatResponse, Error> {
    let missing = if resp.choices.is_empty() {
        none
    } else if !resp.choices.iter().any(choice_has_something) {
        blank
    } else {
        return Ok(resp);
    };
    Err(Error::new(
        ErrorKind::Decode,
        format!("the answer has nothing in it: {missing}"),
    )
    .with_body(&body()))
}

/// A vendor's stream grammar: turns SSE events into chunks and knows its terminal event.
pub trait EventHandler: Send + 'static {
    /// Handles one event, pushing any chunks it yields. Returns `true` for the vendor's
    /// terminal event (`[DONE]`, `message_stop`…), after which nothing more is read.
    fn on_event(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<bool, Error>;

    /// The byte stream ended without a terminal event (a last event left without its blank
    /// line has already been handed to [`on_event`](Self::on_event)). Returns `Ok` if what was
    /// received is nonetheless a whole answer (e.g. a finish reason arrived), an error otherwise.
    fn on_eof(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error>;
}

/// Sans-I/O stream decoder: bytes in (split anywhere), chunks out. The providers use it
/// over HTTP; tests and tools can feed it recorded bytes.
#[derive(Debug)]
pub struct ChunkDecoder<H> {
    sse: SseDecoder,
    handler: H,
    done: bool,
    delivered: Delivered,
}

/// How much a stream delivered, for interruption reports.
#[derive(Clone, Copy, Debug, Default)]
struct Delivered {
    chunks: usize,
    content_chunks: usize,
}

impl<H: EventHandler> ChunkDecoder<H> {
    /// A decoder driving `handler`.
    pub fn new(handler: H) -> Self {
        ChunkDecoder {
            sse: SseDecoder::new(),
            handler,
            done: false,
            delivered: Delivered::default(),
        }
    }

    /// Whether the vendor's terminal event has been seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Feeds bytes; appends the chunks they complete to `out`.
    pub fn feed_into(&mut self, bytes: &[u8], out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.sse.feed(bytes);
        self.decode(out, false)
    }

    /// Buffers bytes without decoding them (see [`decode_some`](Self::decode_some)).
    pub(crate) fn buffer(&mut self, bytes: &[u8]) {
        if !self.done {
            self.sse.feed(bytes);
        }
    }

    /// Decodes buffered events until one yields chunks (appended to `out`) or none is left,
    /// so that `out` holds one event's chunks at a time.
    pub(crate) fn decode_some(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.decode(out, true)
    }

    /// Decodes the buffered events (with `one_event`, only until one yields chunks). A
    /// malformed event (a `Decode` error from the handler) leaves the decoder usable:
    /// decoding more goes on after it. Any other error ends the stream.
    fn decode(&mut self, out: &mut VecDeque<ChatChunk>, one_event: bool) -> Result<(), Error> {
        let before = out.len();
        let result = loop {
            if one_event && out.len() > before {
                break Ok(());
            }
            let event = match self.sse.next_event() {
                Ok(Some(ev)) => ev,
                Ok(None) => break Ok(()),
                Err(e) => {
                    self.done = true;
                    break Err(
                        Error::new(ErrorKind::Decode, "malformed event stream").with_source(e)
                    );
                }
            };
            match self.handler.on_event(&event, out) {
                Ok(true) => {
                    self.done = true;
                    break Ok(());
                }
                Ok(false) => {}
                Err(e) => {
                    self.done |= e.kind() != ErrorKind::Decode;
                    break Err(e);
                }
            }
        };
        self.count(out, before);
        result
    }

    /// Counts the chunks appended to `out` after its first `before`.
    fn count(&mut self, out: &VecDeque<ChatChunk>, before: usize) {
        let added = out.len().saturating_sub(before);
        if added == 0 {
            return;
        }
        self.delivered.chunks += added;
        self.delivered.content_chunks += out.range(before..).filter(|c| c.has_content()).count();
    }

    /// Feeds bytes and returns the chunks they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<ChatChunk>, Error> {
        let mut out = VecDeque::new();
        self.feed_into(bytes, &mut out)?;
        Ok(out.into())
    }

    /// Ends the byte stream; an answer without its end is an error.
    pub fn finish_into(&mut self, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        self.done = true;
        let eof = self
            .sse
            .finish()
            .map_err(|e| Error::new(ErrorKind::Decode, "malformed event stream").with_source(e))?;
        let before = out.len();
        let r = self.end(eof, out);
        self.count(out, before);
        r.map_err(|e| self.annotate(e))
    }

    /// A last event without its blank line still counts if it is whole; one cut inside
    /// matters only if the answer was not already whole (the handler's call at EOF).
    fn end(&mut self, eof: SseEof, out: &mut VecDeque<ChatChunk>) -> Result<(), Error> {
        let mut cut = None;
        if let Some((data, name)) = eof.unterminated {
            let ev = SseEvent {
                event: &name,
                data: &data,
                id: "",
            };
            match self.handler.on_event(&ev, out) {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) if e.kind() == ErrorKind::Decode => cut = Some(e),
                Err(e) => return Err(e),
            }
        }
        self.handler.on_eof(out).map_err(|e| match cut {
            Some(c) => Error::new(ErrorKind::StreamInterrupted, "stream cut inside an event")
                .with_source(c),
            None => e,
        })
    }

    /// Ends the byte stream and returns any last chunks.
    pub fn finish(&mut self) -> Result<Vec<ChatChunk>, Error> {
        let mut out = VecDeque::new();
        self.finish_into(&mut out)?;
        Ok(out.into())
    }

    /// A transport failure mid-body, reported with how much was delivered.
    pub(crate) fn interrupted(&self, cause: Error) -> Error {
        let d = self.delivered;
        Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "stream cut after {} chunks ({} with content)",
                d.chunks, d.content_chunks,
            ),
        )
        .with_source(cause)
    }

    fn annotate(&self, e: Error) -> Error {
        if e.kind() == ErrorKind::StreamInterrupted {
            let d = self.delivered;
            let msg = format!(
                "stream ended early after {} chunks ({} with content)",
                d.chunks, d.content_chunks
            );
            Error::new(ErrorKind::StreamInterrupted, msg).with_source(e)
        } else {
            e
        }
    }
}
