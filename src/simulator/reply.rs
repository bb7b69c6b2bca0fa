//! What the simulator answers: [`Reply`] and its resolution against a request.

use std::time::Duration;

use bytes::Bytes;

use super::RecordedRequest;
use super::openai;

/// One scripted answer to one request, built in builder style.
///
/// A reply is a template: bodies that depend on the request (the OpenAI helpers echo the
/// requested model, number the id after the request's `seq`, estimate token usage, and pick
/// JSON or SSE by whether the request streams) are rendered when a request arrives.
///
/// Modifiers that only make sense for some kinds of reply are ignored by the others:
/// [`Reply::cut_after`] and [`Reply::stall_after`] only act on SSE replies,
/// [`Reply::status`] and [`Reply::header`] do nothing to [`Reply::hang`], [`Reply::reset`]
/// and [`Reply::close`], while [`Reply::delay`] acts on every kind.
#[derive(Clone, Debug)]
pub struct Reply {
    action: Action,
    status: Option<u16>,
    headers: Vec<(String, String)>,
    delay: Option<Duration>,
    frame_delay: Option<Duration>,
    end: End,
    close_delimited: bool,
    split_every: Option<usize>,
}

#[derive(Clone, Debug)]
enum Action {
    /// A body with a known length.
    Fixed {
        status: u16,
        content_type: String,
        body: BodyTemplate,
    },
    /// A `text/event-stream` body.
    Sse {
        frames: FramesTemplate,
        whole: bool,
    },
    /// JSON or SSE, chosen by whether the request asks for a stream.
    Auto(AutoTemplate),
    Hang,
    Reset,
    Close,
}

/// Fixed bodies, possibly rendered per request. New vendor dialects add variants here.
#[derive(Clone, Debug)]
enum BodyTemplate {
    Static(Bytes),
    OpenAiCompletion { text: String },
}

/// SSE frame lists, possibly rendered per request. New vendor dialects add variants here.
#[derive(Clone, Debug)]
enum FramesTemplate {
    Static(Vec<Bytes>),
    OpenAiStream { pieces: Vec<String> },
}

/// Replies whose form (JSON or SSE) depends on the request.
#[derive(Clone, Debug)]
enum AutoTemplate {
    OpenAiText(String),
}

/// How an SSE body ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum End {
    /// All frames, then the clean end (the 0-chunk, or closing a close-delimited body).
    #[default]
    Normal,
    /// After this many frames, reset the connection.
    Cut(usize),
    /// After this many frames, send nothing more while the client stays.
    Stall(usize),
}

/// A reply resolved against one request: everything the connection task needs to write.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) delay: Option<Duration>,
    pub(crate) kind: PlanKind,
}

#[derive(Debug)]
pub(crate) enum PlanKind {
    Hang,
    Reset,
    Close,
    Respond(Response),
}

#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: PlanBody,
    pub(crate) frame_delay: Option<Duration>,
    pub(crate) close_delimited: bool,
}

#[derive(Debug)]
pub(crate) enum PlanBody {
    /// Written in these pieces (one piece unless re-split), framed by Content-Length.
    Fixed(Vec<Bytes>),
    /// Written as one HTTP chunk per element, then ended as `end` says.
    Sse { chunks: Vec<Bytes>, end: End },
}

impl Reply {
    fn new(action: Action) -> Reply {
        Reply {
            action,
            status: None,
            headers: Vec::new(),
            delay: None,
            frame_delay: None,
            end: End::Normal,
            close_delimited: false,
            split_every: None,
        }
    }

    /// A JSON body: `Content-Type: application/json`, framed by `Content-Length`.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::new(Action::Fixed {
            status,
            content_type: "application/json".to_owned(),
            body: BodyTemplate::Static(Bytes::from(body.into())),
        })
    }

    /// Any body with the given content type, framed by `Content-Length`.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply::new(Action::Fixed {
            status,
            content_type: content_type.to_owned(),
            body: BodyTemplate::Static(body.into()),
        })
    }

    /// A 200 `text/event-stream` answer with `Transfer-Encoding: chunked`, one HTTP chunk per
    /// frame. Frames are written verbatim: give complete frames such as `"data: {...}\n\n"`.
    /// Empty frames are skipped (an empty HTTP chunk would end the body).
    pub fn sse(frames: impl IntoIterator<Item = impl Into<String>>) -> Reply {
        let frames = frames.into_iter().map(|f| Bytes::from(f.into())).collect();
        Reply::new(Action::Sse {
            frames: FramesTemplate::Static(frames),
            whole: false,
        })
    }

    /// A 200 `text/event-stream` answer whose body is a whole recorded stream (e.g. a `.sse`
    /// file), sent as one HTTP chunk unless [`Reply::split_every`] or [`Reply::frame_delay`]
    /// say otherwise. For [`Reply::cut_after`], [`Reply::stall_after`] and
    /// [`Reply::frame_delay`] the body counts as frames split after each blank line.
    pub fn sse_bytes(body: impl Into<Bytes>) -> Reply {
        let frames = split_events(&body.into());
        Reply::new(Action::Sse {
            frames: FramesTemplate::Static(frames),
            whole: true,
        })
    }

    /// Reads the request and never answers; the request still notices when the client closes.
    pub fn hang() -> Reply {
        Reply::new(Action::Hang)
    }

    /// Closes the connection with a TCP RST before any response byte.
    pub fn reset() -> Reply {
        Reply::new(Action::Reset)
    }

    /// Closes the connection cleanly (FIN) before any response byte.
    pub fn close() -> Reply {
        Reply::new(Action::Close)
    }

    /// Overrides the status code (SSE replies included).
    pub fn status(mut self, status: u16) -> Reply {
        self.status = Some(status);
        self
    }

    /// Adds a response header, e.g. `Retry-After`. A `Content-Type` given here replaces the
    /// reply's own; other names are added after the simulator's headers. CR and LF are removed.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        let clean = |s: &str| {
            s.chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect::<String>()
        };
        self.headers.push((clean(name), clean(value)));
        self
    }

    /// Waits this long (after the request has arrived) before the status line, or before
    /// hanging, resetting or closing.
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }

    /// Waits this long between HTTP chunks: between SSE frames, or between the pieces made by
    /// [`Reply::split_every`].
    pub fn frame_delay(mut self, d: Duration) -> Reply {
        self.frame_delay = Some(d);
        self
    }

    /// SSE: after `n_frames` frames, aborts the connection with a TCP RST, without the
    /// terminating 0-chunk. Replaces an earlier [`Reply::stall_after`].
    pub fn cut_after(mut self, n_frames: usize) -> Reply {
        self.end = End::Cut(n_frames);
        self
    }

    /// SSE: after `n_frames` frames, keeps the connection open sending nothing, until the
    /// client closes it. Replaces an earlier [`Reply::cut_after`].
    pub fn stall_after(mut self, n_frames: usize) -> Reply {
        self.end = End::Stall(n_frames);
        self
    }

    /// Frames the body by closing the connection instead: no chunked encoding and no
    /// `Content-Length`, `Connection: close`, and the body ends with a clean close (FIN).
    /// Without it, SSE bodies end with the terminating 0-chunk and fixed bodies use
    /// `Content-Length`, and the connection stays open for the next request.
    pub fn close_delimited(mut self) -> Reply {
        self.close_delimited = true;
        self
    }

    /// Re-chunks the body into HTTP chunks of `n_bytes` bytes (the last may be shorter),
    /// regardless of frame boundaries, to test decoders across splits. Fixed-length bodies are
    /// written in separate writes of `n_bytes`. `0` turns re-chunking off.
    pub fn split_every(mut self, n_bytes: usize) -> Reply {
        self.split_every = (n_bytes > 0).then_some(n_bytes);
        self
    }

    /// An OpenAI Chat Completions answer with `text`, in the form the request asks for: the
    /// SSE form of [`Reply::openai_stream_text`] (the text split after each space) when the
    /// request streams, else a `chat.completion` JSON object. Either echoes the requested
    /// model, has id `chatcmpl-sim-<seq>`, and reports usage estimated as ceil(chars / 4) of
    /// the request's message text and of the reply text.
    pub fn openai_text(text: &str) -> Reply {
        Reply::new(Action::Auto(AutoTemplate::OpenAiText(text.to_owned())))
    }

    /// An OpenAI Chat Completions stream: a chunk with delta `{"role":"assistant","content":""}`,
    /// one chunk per piece, a chunk with an empty delta and `finish_reason` `"stop"`, a
    /// usage-only chunk with `"choices":[]`, then `data: [DONE]`.
    pub fn openai_stream_text(pieces: &[&str]) -> Reply {
        let pieces = pieces.iter().map(|p| (*p).to_owned()).collect();
        Reply::new(Action::Sse {
            frames: FramesTemplate::OpenAiStream { pieces },
            whole: false,
        })
    }

    /// An OpenAI error: `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
    pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Reply {
        Reply::json(status, openai::error_body(error_type, code, message))
    }

    /// Resolves this reply against the request it answers.
    pub(crate) fn plan(&self, request: &RecordedRequest) -> Plan {
        let delay = self.delay;
        let kind = match &self.action {
            Action::Hang => PlanKind::Hang,
            Action::Reset => PlanKind::Reset,
            Action::Close => PlanKind::Close,
            Action::Fixed {
                status,
                content_type,
                body,
            } => self.respond(*status, content_type, self.fixed_body(body.render(request))),
            Action::Sse { frames, whole } => self.respond(
                200,
                "text/event-stream",
                self.sse_body(frames.render(request), *whole),
            ),
            Action::Auto(AutoTemplate::OpenAiText(text)) => {
                if request.is_stream() {
                    let pieces = text.split_inclusive(' ').map(str::to_owned).collect();
                    let frames = FramesTemplate::OpenAiStream { pieces }.render(request);
                    self.respond(200, "text/event-stream", self.sse_body(frames, false))
                } else {
                    let body =
                        BodyTemplate::OpenAiCompletion { text: text.clone() }.render(request);
                    self.respond(200, "application/json", self.fixed_body(body))
                }
            }
        };
        Plan { delay, kind }
    }

    fn respond(&self, status: u16, content_type: &str, body: PlanBody) -> PlanKind {
        let mut content_type = content_type.to_owned();
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            if name.eq_ignore_ascii_case("content-type") {
                content_type.clone_from(value);
            } else {
                headers.push((name.clone(), value.clone()));
            }
        }
        PlanKind::Respond(Response {
            status: self.status.unwrap_or(status),
            content_type,
            headers,
            body,
            frame_delay: self.frame_delay,
            close_delimited: self.close_delimited,
        })
    }

    fn fixed_body(&self, body: Bytes) -> PlanBody {
        PlanBody::Fixed(match self.split_every {
            Some(n) => split_bytes(&body, n),
            None => vec![body],
        })
    }

    fn sse_body(&self, frames: Vec<Bytes>, whole: bool) -> PlanBody {
        let limit = match self.end {
            End::Normal => frames.len(),
            End::Cut(n) | End::Stall(n) => n.min(frames.len()),
        };
        let frames = &frames[..limit];
        let chunks: Vec<Bytes> = if let Some(n) = self.split_every {
            split_bytes(&concat(frames), n)
        } else if whole && self.frame_delay.is_none() {
            vec![concat(frames)]
        } else {
            frames.to_vec()
        };
        let chunks = chunks.into_iter().filter(|c| !c.is_empty()).collect();
        PlanBody::Sse {
            chunks,
            end: self.end,
        }
    }
}

impl BodyTemplate {
    fn render(&self, request: &RecordedRequest) -> Bytes {
        match self {
            BodyTemplate::Static(body) => body.clone(),
            BodyTemplate::OpenAiCompletion { text } => {
                Bytes::from(openai::completion(text, request))
            }
        }
    }
}

impl FramesTemplate {
    fn render(&self, request: &RecordedRequest) -> Vec<Bytes> {
        match self {
            FramesTemplate::Static(frames) => frames.clone(),
            FramesTemplate::OpenAiStream { pieces } => openai::stream_frames(pieces, request)
                .into_iter()
                .map(Bytes::from)
                .collect(),
        }
    }
}

fn concat(frames: &[Bytes]) -> Bytes {
    let mut out = Vec::with_capacity(frames.iter().map(Bytes::len).sum());
    for frame in frames {
        out.extend_from_slice(frame);
    }
    Bytes::from(out)
}

fn split_bytes(body: &Bytes, n: usize) -> Vec<Bytes> {
    let n = n.max(1);
    (0..body.len())
        .step_by(n)
        .map(|start| body.slice(start..(start + n).min(body.len())))
        .collect()
}

/// Splits a recorded SSE body into events, each ending after its blank line (`\n`, `\r\n`
/// or `\r` line ends). A trailing part without a blank line is kept as the last frame.
fn split_events(body: &Bytes) -> Vec<Bytes> {
    let mut frames = Vec::new();
    let mut start = 0;
    let mut line_start = 0;
    let mut i = 0;
    while i < body.len() {
        let end_of_line = match body[i] {
            b'\r' if body.get(i + 1) == Some(&b'\n') => Some(i + 2),
            b'\r' | b'\n' => Some(i + 1),
            _ => None,
        };
        match end_of_line {
            Some(next) => {
                if i == line_start && i > start {
                    // An empty line: the event ends after it.
                    frames.push(body.slice(start..next));
                    start = next;
                }
                line_start = next;
                i = next;
            }
            None => i += 1,
        }
    }
    if start < body.len() {
        frames.push(body.slice(start..));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(frames: &[Bytes]) -> Vec<&str> {
        frames
            .iter()
            .map(|f| std::str::from_utf8(f).unwrap_or("<bad>"))
            .collect()
    }

    #[test]
    fn events_split_after_blank_lines() {
        let body = Bytes::from_static(b"data: a\n\ndata: b\r\n\r\nevent: x\rdata: c\r\rtail");
        assert_eq!(
            strs(&split_events(&body)),
            vec![
                "data: a\n\n",
                "data: b\r\n\r\n",
                "event: x\rdata: c\r\r",
                "tail"
            ]
        );
        assert!(split_events(&Bytes::new()).is_empty());
    }

    #[test]
    fn bytes_split_in_pieces() {
        let body = Bytes::from_static(b"abcdefg");
        assert_eq!(strs(&split_bytes(&body, 3)), vec!["abc", "def", "g"]);
    }
}
