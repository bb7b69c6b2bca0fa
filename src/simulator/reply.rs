//! What the simulator answers: [`Reply`] and its resolution against a request.

use std::time::Duration;

use bytes::Bytes;

use super::anthropic::{self, Anthropic};
use super::bedrock::{self, Converse, Invoke};
use super::common::{Content, Rendered, RenderedBody, SimError, Speaker, ToolCall};
use super::eventstream::{self, Crc};
use super::gemini::{self, Gemini};
use super::openai::{self, OpenAi};
use super::vertex::{self, GoogleToken, Vertex};
use super::{Dialect, RecordedRequest};

/// One scripted answer to one request, built in builder style.
///
/// A reply is a template: vendor bodies depend on the request and are rendered when a request
/// arrives. The vendor helpers echo the requested model, number their ids after the request's
/// `seq` (`chatcmpl-sim-<seq>`, `msg_sim_<seq>`, `toolu_sim_<seq>_0`, Gemini `responseId`
/// `simResponse<seq, 12 digits>`), estimate token usage as ceil(chars / 4) of the request's
/// prompt text and of the reply, and answer with JSON or a stream as the request asks
/// ([`RecordedRequest::is_stream`]).
///
/// The dialect-neutral helpers ([`Reply::text`], [`Reply::tool_call`], [`Reply::error`],
/// [`Reply::stream_error_after`]) answer in the dialect of the request they meet (see
/// [`RecordedRequest::dialect`]), Bedrock's and Vertex's included; the `openai_*`,
/// `anthropic_*` and `gemini_*` helpers always answer in their own. [`Reply::bedrock_error`]
/// and [`Reply::vertex_error`] give a cloud's error with any status and type, and
/// [`Reply::google_token`] a token for the Google token endpoints.
///
/// Modifiers that only make sense for some kinds of reply are ignored by the others:
/// [`Reply::cut_after`] and [`Reply::stall_after`] only act on streamed replies,
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
    /// Event-stream frames whose CRC to break, by index.
    corrupt: Vec<(usize, Crc)>,
}

#[derive(Clone, Debug)]
enum Action {
    /// A body with a known length.
    Fixed {
        status: u16,
        content_type: String,
        body: Bytes,
    },
    /// A streamed body (`text/event-stream`, or an AWS event stream).
    Sse {
        content_type: &'static str,
        frames: Vec<Bytes>,
        whole: bool,
    },
    /// A vendor answer rendered per request.
    Vendor {
        /// `None`: the dialect of the request.
        dialect: Option<Dialect>,
        /// Stream even when the request does not ask for it.
        always_stream: bool,
        content: Content,
    },
    AnthropicError {
        status: u16,
        error_type: String,
        message: String,
    },
    GeminiError {
        code: u16,
        status: String,
        message: String,
    },
    BedrockError {
        status: u16,
        error_type: String,
        message: String,
    },
    VertexError {
        code: u16,
        status: String,
        message: String,
    },
    /// An OAuth access token; `None` makes one up from the request's `seq`.
    GoogleToken {
        access_token: Option<String>,
        expires_in: u64,
    },
    Hang,
    Reset,
    Close,
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
    /// After this many frames, the first half of the next one, then reset the connection.
    CutInside(usize),
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

fn pieces_of(pieces: &[&str]) -> Vec<String> {
    pieces.iter().map(|p| (*p).to_owned()).collect()
}

fn tool(name: &str, arguments_json: &str) -> Content {
    Content::ToolCall(ToolCall {
        name: name.to_owned(),
        arguments: arguments_json.to_owned(),
    })
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
            corrupt: Vec::new(),
        }
    }

    fn vendor(dialect: Option<Dialect>, always_stream: bool, content: Content) -> Reply {
        Reply::new(Action::Vendor {
            dialect,
            always_stream,
            content,
        })
    }

    /// A JSON body: `Content-Type: application/json`, framed by `Content-Length`.
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::new(Action::Fixed {
            status,
            content_type: "application/json".to_owned(),
            body: Bytes::from(body.into()),
        })
    }

    /// Any body with the given content type, framed by `Content-Length`.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Reply {
        Reply::new(Action::Fixed {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        })
    }

    /// A 200 `text/event-stream` answer with `Transfer-Encoding: chunked`, one HTTP chunk per
    /// frame. Frames are written verbatim: give complete frames such as `"data: {...}\n\n"`.
    /// Empty frames are skipped (an empty HTTP chunk would end the body).
    pub fn sse(frames: impl IntoIterator<Item = impl Into<String>>) -> Reply {
        let frames = frames.into_iter().map(|f| Bytes::from(f.into())).collect();
        Reply::new(Action::Sse {
            content_type: "text/event-stream",
            frames,
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
            content_type: "text/event-stream",
            frames,
            whole: true,
        })
    }

    /// A 200 `application/vnd.amazon.eventstream` answer whose body is a whole recorded AWS
    /// event stream (e.g. a `.eventstream` file), chunked, sent as one HTTP chunk unless
    /// [`Reply::split_every`] or [`Reply::frame_delay`] say otherwise. For
    /// [`Reply::cut_after`], [`Reply::stall_after`], [`Reply::cut_inside_frame`],
    /// [`Reply::bad_message_crc`] and [`Reply::frame_delay`] the body counts as frames split
    /// by their length prefixes.
    pub fn event_stream_bytes(body: impl Into<Bytes>) -> Reply {
        let frames = eventstream::split_frames(&body.into());
        Reply::new(Action::Sse {
            content_type: eventstream::CONTENT_TYPE,
            frames,
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

    /// Overrides the status code (streamed replies included).
    pub fn status(mut self, status: u16) -> Reply {
        self.status = Some(status);
        self
    }

    /// Adds a response header, e.g. `Retry-After`. A `Content-Type` given here replaces the
    /// reply's own, and a header the vendor helpers set (e.g. `retry-after` of
    /// [`Reply::error`]) is replaced by one of the same name given here; other names are added
    /// after the simulator's headers. CR and LF are removed.
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        let clean = |s: &str| {
            s.chars()
                .filter(|c| *c != '\r' && *c != '\n')
                .collect::<String>()
        };
        self.headers.push((clean(name), clean(value)));
        self
    }

    /// Adds headers the simulator works out itself (a request limit's), each unless one of
    /// the same name was given with [`Reply::header`].
    pub(crate) fn with_default_headers(mut self, headers: Vec<(String, String)>) -> Reply {
        for (name, value) in headers {
            if !self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                self.headers.push((name, value));
            }
        }
        self
    }

    /// Waits this long (after the request has arrived) before the status line, or before
    /// hanging, resetting or closing.
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = Some(d);
        self
    }

    /// Waits this long between HTTP chunks: between stream frames (SSE events, or Gemini
    /// JSON-array elements), or between the pieces made by [`Reply::split_every`].
    pub fn frame_delay(mut self, d: Duration) -> Reply {
        self.frame_delay = Some(d);
        self
    }

    /// Streams: after `n_frames` frames, aborts the connection with a TCP RST, without the
    /// terminating 0-chunk. Frames are whole SSE events (for Anthropic, `event:` and `data:`
    /// together; a `ping` counts), Gemini JSON-array elements, or AWS event-stream frames
    /// (Bedrock; `messageStart` counts). Replaces an earlier [`Reply::stall_after`] or
    /// [`Reply::cut_inside_frame`].
    pub fn cut_after(mut self, n_frames: usize) -> Reply {
        self.end = End::Cut(n_frames);
        self
    }

    /// Streams: after `n_frames` whole frames (counted as for [`Reply::cut_after`]; on
    /// Bedrock's paths, event-stream frames), writes the first half of the next frame (at
    /// least one byte) and aborts the connection with a TCP RST: the body ends inside a frame.
    /// When there is no next frame it acts as [`Reply::cut_after`]. Replaces an earlier
    /// [`Reply::cut_after`] or [`Reply::stall_after`].
    pub fn cut_inside_frame(mut self, n_frames: usize) -> Reply {
        self.end = End::CutInside(n_frames);
        self
    }

    /// AWS event streams (Bedrock's streamed answers, [`Reply::event_stream_bytes`]): inverts
    /// the message CRC (the frame's last four bytes) of frame `index` (0-based, the
    /// `messageStart` event of a ConverseStream is 0), leaving everything else intact. Can be
    /// given more than once. Ignored by other bodies, and when there is no such frame.
    pub fn bad_message_crc(mut self, index: usize) -> Reply {
        self.corrupt.push((index, Crc::Message));
        self
    }

    /// As [`Reply::bad_message_crc`], for the prelude CRC (bytes 8 to 11 of frame `index`,
    /// the CRC of its two length fields).
    pub fn bad_prelude_crc(mut self, index: usize) -> Reply {
        self.corrupt.push((index, Crc::Prelude));
        self
    }

    /// Streams: after `n_frames` frames (counted as for [`Reply::cut_after`]), keeps the
    /// connection open sending nothing, until the client closes it. Replaces an earlier
    /// [`Reply::cut_after`].
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

    // --- Dialect-neutral vendor replies ---

    /// A text answer in the dialect of the request it meets ([`RecordedRequest::dialect`]):
    /// [`Reply::openai_text`], [`Reply::anthropic_text`] or [`Reply::gemini_text`]. Streams
    /// (split after each space) when the request does. The simulator's initial default reply
    /// is `Reply::text("Hello from the polyrelay simulator.")`.
    pub fn text(text: &str) -> Reply {
        Reply::vendor(None, false, Content::Text(text.to_owned()))
    }

    /// One tool call in the dialect of the request it meets: [`Reply::openai_tool_call`],
    /// [`Reply::anthropic_tool_call`] or [`Reply::gemini_tool_call`]. `arguments_json` should
    /// be a JSON object; Anthropic and Gemini get `{}` for anything else (OpenAI's
    /// `arguments` string carries it verbatim).
    pub fn tool_call(name: &str, arguments_json: &str) -> Reply {
        Reply::vendor(None, false, tool(name, arguments_json))
    }

    /// The vendor's error for `kind`, in the dialect of the request it meets: status, headers
    /// and body as that vendor sends them (see [`SimError`]). Content policy is answered the
    /// way each vendor does, which for Anthropic and Gemini is a 200 blocked answer.
    pub fn error(kind: SimError) -> Reply {
        Reply::vendor(None, false, Content::Error(kind))
    }

    /// A stream that fails part-way, in the dialect of the request it meets: the stream's
    /// opening, `n_content_events` content deltas (pieces of "Hello from the polyrelay
    /// simulator.", cycling), then the dialect's in-stream error for `kind` (see
    /// [`SimError`]) and the end of the body; no normal ending is sent. The HTTP status is 200.
    /// Requests that do not stream get [`Reply::error`]`(kind)` instead.
    pub fn stream_error_after(n_content_events: usize, kind: SimError) -> Reply {
        Reply::vendor(
            None,
            false,
            Content::StreamError {
                after: n_content_events,
                kind,
            },
        )
    }

    // --- OpenAI Chat Completions ---

    /// An OpenAI Chat Completions answer with `text`, in the form the request asks for: the
    /// SSE form of [`Reply::openai_stream_text`] (the text split after each space) when the
    /// request streams, else a `chat.completion` JSON object. Either echoes the requested
    /// model, has id `chatcmpl-sim-<seq>`, and reports usage estimated as ceil(chars / 4) of
    /// the request's message text and of the reply text.
    pub fn openai_text(text: &str) -> Reply {
        Reply::vendor(Some(Dialect::OpenAi), false, Content::Text(text.to_owned()))
    }

    /// An OpenAI Chat Completions stream: a chunk with delta `{"role":"assistant","content":""}`,
    /// one chunk per piece, a chunk with an empty delta and `finish_reason` `"stop"`, a
    /// usage-only chunk with `"choices":[]`, then `data: [DONE]`.
    pub fn openai_stream_text(pieces: &[&str]) -> Reply {
        Reply::vendor(
            Some(Dialect::OpenAi),
            true,
            Content::Pieces(pieces_of(pieces)),
        )
    }

    /// An OpenAI error: `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
    pub fn openai_error(status: u16, error_type: &str, code: Option<&str>, message: &str) -> Reply {
        Reply::json(status, openai::error_body(error_type, code, message))
    }

    /// An OpenAI tool call with id `call_sim_<seq>_0` and `finish_reason` `"tool_calls"`:
    /// `message.tool_calls[0].function` `{name, arguments}` with `content` null, or when the
    /// request streams, a first delta with the id, name and `arguments:""`, then `arguments`
    /// fragments, then the finish chunk, the usage chunk and `[DONE]`.
    pub fn openai_tool_call(name: &str, arguments_json: &str) -> Reply {
        Reply::vendor(Some(Dialect::OpenAi), false, tool(name, arguments_json))
    }

    // --- Anthropic Messages ---

    /// An Anthropic Messages answer with `text`: a `message` object (id `msg_sim_<seq>`,
    /// `stop_reason` `end_turn`, usage with the cache fields 0), or when the request streams
    /// (`"stream": true`), the events of [`Reply::anthropic_stream_text`] with the text split
    /// after each space. Echoes the body's `model`.
    pub fn anthropic_text(text: &str) -> Reply {
        Reply::vendor(
            Some(Dialect::Anthropic),
            false,
            Content::Text(text.to_owned()),
        )
    }

    /// An Anthropic Messages stream (`text/event-stream; charset=utf-8`): `message_start`
    /// (with input usage), `content_block_start` (an empty text block), `ping`, one
    /// `content_block_delta` `text_delta` per piece, `content_block_stop`, `message_delta`
    /// (`stop_reason` `end_turn`, usage with `output_tokens`), `message_stop`.
    pub fn anthropic_stream_text(pieces: &[&str]) -> Reply {
        Reply::vendor(
            Some(Dialect::Anthropic),
            true,
            Content::Pieces(pieces_of(pieces)),
        )
    }

    /// An Anthropic error: `{"type":"error","error":{"type":..,"message":..},"request_id":..}`
    /// with the `request-id` header and `x-should-retry` (`true` for 408, 409, 429 and 5xx).
    pub fn anthropic_error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::new(Action::AnthropicError {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        })
    }

    /// An Anthropic `tool_use` answer (id `toolu_sim_<seq>_0`, `stop_reason` `tool_use`), or
    /// when the request streams, a `tool_use` block started with `input:{}`, then
    /// `input_json_delta` fragments (the first one `""`).
    pub fn anthropic_tool_call(name: &str, arguments_json: &str) -> Reply {
        Reply::vendor(Some(Dialect::Anthropic), false, tool(name, arguments_json))
    }

    // --- Google Gemini ---

    /// A Gemini answer with `text`: a pretty-printed `GenerateContentResponse` (finish reason
    /// `STOP`, `usageMetadata`, `modelVersion` from the path, `responseId`), or for
    /// `:streamGenerateContent`, the stream of [`Reply::gemini_stream_text`] with the text
    /// split after each space.
    pub fn gemini_text(text: &str) -> Reply {
        Reply::vendor(Some(Dialect::Gemini), false, Content::Text(text.to_owned()))
    }

    /// A Gemini stream: one chunk per piece, each with cumulative `usageMetadata`, the last with
    /// `finishReason` `STOP`. With `alt=sse` (or for a request that is not
    /// `:streamGenerateContent`), SSE `data: {..}\r\n\r\n` frames; otherwise one JSON array,
    /// sent one element per HTTP chunk.
    pub fn gemini_stream_text(pieces: &[&str]) -> Reply {
        Reply::vendor(
            Some(Dialect::Gemini),
            true,
            Content::Pieces(pieces_of(pieces)),
        )
    }

    /// A Gemini (`google.rpc.Status`) error: `{"error":{"code":..,"message":..,"status":..}}`,
    /// pretty-printed, `application/json; charset=UTF-8`.
    pub fn gemini_error(code: u16, status: &str, message: &str) -> Reply {
        Reply::new(Action::GeminiError {
            code,
            status: status.to_owned(),
            message: message.to_owned(),
        })
    }

    /// A Gemini `functionCall` answer (`args` an object, `finishReason` `STOP`), or when the
    /// request streams, the same in a single chunk.
    pub fn gemini_tool_call(name: &str, arguments_json: &str) -> Reply {
        Reply::vendor(Some(Dialect::Gemini), false, tool(name, arguments_json))
    }

    // --- AWS Bedrock and Google Vertex AI ---

    /// A Bedrock error: status `status`, body `{"message":…}`, header
    /// `x-amzn-ErrorType: <error_type>:http://internal.amazon.com/coral/com.amazon.bedrock/`
    /// (e.g. `ThrottlingException`, `ValidationException`) and `x-amzn-RequestId`.
    pub fn bedrock_error(status: u16, error_type: &str, message: &str) -> Reply {
        Reply::new(Action::BedrockError {
            status,
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        })
    }

    /// A Vertex AI (`google.rpc.Status`) error: `{"error":{"code","message","status"}}`,
    /// pretty-printed, or compact and wrapped in a JSON array (`[{"error":…}]`) when the
    /// request is on a streaming path (`:streamGenerateContent`, `:streamRawPredict`).
    pub fn vertex_error(code: u16, status: &str, message: &str) -> Reply {
        Reply::new(Action::VertexError {
            code,
            status: status.to_owned(),
            message: message.to_owned(),
        })
    }

    /// An OAuth access token, in the shape of the endpoint it answers: on the metadata
    /// server's path `{"access_token","expires_in","token_type":"Bearer"}` with
    /// `metadata-flavor: Google`; elsewhere (the token endpoint) the same plus `"scope"`, with
    /// `cache-control: no-store`. `None` makes up `ya29.sim-<seq>` (a new token each request).
    /// See [`Simulator::script_tokens`](super::Simulator::script_tokens).
    pub fn google_token(access_token: Option<&str>, expires_in: u64) -> Reply {
        Reply::new(Action::GoogleToken {
            access_token: access_token.map(str::to_owned),
            expires_in,
        })
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
            } => self.respond(
                *status,
                content_type,
                Vec::new(),
                self.fixed_body(body.clone()),
            ),
            Action::Sse {
                content_type,
                frames,
                whole,
            } => self.respond(
                200,
                content_type,
                Vec::new(),
                self.sse_body(self.corrupted(content_type, frames.clone()), *whole),
            ),
            Action::Vendor {
                dialect,
                always_stream,
                content,
            } => {
                let dialect = dialect.unwrap_or_else(|| request.dialect());
                let stream = *always_stream || request.is_stream();
                self.respond_rendered(match dialect {
                    Dialect::OpenAi => OpenAi::render(content, stream, request),
                    Dialect::Anthropic => Anthropic::render(content, stream, request),
                    Dialect::Gemini => Gemini::render(content, stream, request),
                    Dialect::BedrockConverse => Converse::render(content, stream, request),
                    Dialect::BedrockInvoke => Invoke::render(content, stream, request),
                    Dialect::VertexGemini => Vertex::<Gemini>::render(content, stream, request),
                    Dialect::VertexAnthropic => {
                        Vertex::<Anthropic>::render(content, stream, request)
                    }
                    Dialect::VertexOpenAi => Vertex::<OpenAi>::render(content, stream, request),
                    Dialect::GoogleToken => GoogleToken::render(content, stream, request),
                })
            }
            Action::AnthropicError {
                status,
                error_type,
                message,
            } => self.respond_rendered(anthropic::error_response(
                *status, error_type, message, request,
            )),
            Action::GeminiError {
                code,
                status,
                message,
            } => self.respond_rendered(gemini::error_response(*code, status, message)),
            Action::BedrockError {
                status,
                error_type,
                message,
            } => self.respond_rendered(bedrock::error_response(
                *status, error_type, message, request,
            )),
            Action::VertexError {
                code,
                status,
                message,
            } => self.respond_rendered(vertex::error_response(
                *code, status, message, None, request,
            )),
            Action::GoogleToken {
                access_token,
                expires_in,
            } => {
                self.respond_rendered(vertex::token(access_token.as_deref(), *expires_in, request))
            }
        };
        Plan { delay, kind }
    }

    fn respond_rendered(&self, rendered: Rendered) -> PlanKind {
        let Rendered {
            status,
            content_type,
            headers,
            body,
        } = rendered;
        let body = match body {
            RenderedBody::Fixed(body) => self.fixed_body(Bytes::from(body)),
            RenderedBody::Frames(frames) => {
                self.sse_body(self.corrupted(content_type, frames), false)
            }
        };
        self.respond(status, content_type, headers, body)
    }

    /// `base_headers` are the reply's own; a header of the same name given with
    /// [`Reply::header`] replaces them.
    fn respond(
        &self,
        status: u16,
        content_type: &str,
        base_headers: Vec<(String, String)>,
        body: PlanBody,
    ) -> PlanKind {
        let mut content_type = content_type.to_owned();
        let overridden = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut headers: Vec<(String, String)> = base_headers
            .into_iter()
            .filter(|(name, _)| !overridden(name))
            .collect();
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

    /// `frames` with the CRCs [`Reply::bad_message_crc`] and [`Reply::bad_prelude_crc`] chose
    /// broken, when they are AWS event-stream frames.
    fn corrupted(&self, content_type: &str, mut frames: Vec<Bytes>) -> Vec<Bytes> {
        if content_type == eventstream::CONTENT_TYPE {
            for (index, crc) in &self.corrupt {
                if let Some(frame) = frames.get_mut(*index) {
                    *frame = Bytes::from(eventstream::corrupt(frame, *crc));
                }
            }
        }
        frames
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
            End::CutInside(n) => n.saturating_add(1).min(frames.len()),
        };
        let mut frames = frames[..limit].to_vec();
        if let End::CutInside(n) = self.end
            && n < limit
            && let Some(last) = frames.last_mut()
        {
            *last = last.slice(..(last.len() / 2).max(1).min(last.len()));
        }
        let frames = &frames[..];
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
