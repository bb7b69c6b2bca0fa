//! Vendor implementations of [`Provider`](crate::Provider), and the machinery they share to
//! turn a vendor's event stream into [`ChatChunk`]s.

pub mod anthropic;
pub mod gemini;
pub mod openai;
pub(crate) mod transport;

use std::collections::VecDeque;

use futures::StreamExt;

use crate::http::sse::{SseDecoder, SseEof, SseEvent};
use crate::types::{ChatChunk, ChatResponse, ChatStream, Choice};
use crate::types::{Error, ErrorKind};

pub use anthropic::Anthropic;
pub use gemini::Gemini;
pub use openai::OpenAi;

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

    fn count(&mut self, out: &VecDeque<ChatChunk>, before: usize) {
        for c in out.iter().skip(before) {
            self.delivered.chunks += 1;
            if c.has_content() {
                self.delivered.content_chunks += 1;
            }
        }
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
    fn interrupted(&self, cause: Error) -> Error {
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

/// Drives a [`ChunkDecoder`] over an HTTP response body. Stops reading (and so releases the
/// connection) at the terminal event; dropping the stream drops the response, which closes
/// the connection.
pub(crate) fn sse_chat_stream<H: EventHandler + Unpin>(
    resp: reqwest::Response,
    handler: H,
) -> ChatStream {
    ChatStream::from_unpin(SseChatStream {
        body: resp.bytes_stream().boxed(),
        decoder: ChunkDecoder::new(handler),
        queue: VecDeque::with_capacity(1),
        error: None,
        ended: false,
    })
}

/// The stream behind [`sse_chat_stream`]. Written as a plain `poll_next` (not an `unfold`),
/// so its state stays in place instead of being moved in and out for every chunk.
struct SseChatStream<H> {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    decoder: ChunkDecoder<H>,
    queue: VecDeque<ChatChunk>,
    error: Option<Error>,
    ended: bool,
}

impl<H: EventHandler + Unpin> futures::Stream for SseChatStream<H> {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let st = self.get_mut();
        loop {
            if let Some(chunk) = st.queue.pop_front() {
                return Poll::Ready(Some(Ok(chunk)));
            }
            if let Some(e) = st.error.take() {
                return Poll::Ready(Some(Err(e)));
            }
            if st.ended {
                return Poll::Ready(None);
            }
            // Buffered events first, one at a time: the queue holds one event's chunks. A
            // malformed event leaves the stream readable (the consumer decides whether to go
            // on); anything else ends it.
            if let Err(e) = st.decoder.decode_some(&mut st.queue) {
                st.ended = st.decoder.is_done();
                st.error = Some(e);
                continue;
            }
            if !st.queue.is_empty() {
                continue;
            }
            if st.decoder.is_done() {
                st.ended = true;
                continue;
            }
            let step = match st.body.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(bytes))) => {
                    st.decoder.buffer(&bytes);
                    continue;
                }
                Poll::Ready(Some(Err(e))) => {
                    let cause = crate::http::transport_error(e);
                    Err(st.decoder.interrupted(cause))
                }
                Poll::Ready(None) => st.decoder.finish_into(&mut st.queue),
            };
            // Chunks decoded before the error go out first, then the error.
            st.ended = true;
            if let Err(e) = step {
                st.error = Some(e);
            }
        }
    }
}
