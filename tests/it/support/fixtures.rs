//! Reading the vendor recordings under `tests/fixtures/`, and the one conformance runner the
//! vendor suites (`fixtures_openai`, `fixtures_anthropic`, `fixtures_gemini`) drive their
//! decoders through.
//!
//! A vendor suite implements [`Vendor`] (its folders, its pure decoders, its SSE framing and
//! what one expected answer is) and gets the rest from the trait's provided methods: decoding a
//! fixture whole or split into pieces, folding stream chunks, checking a table of expected
//! answers or errors, cutting streams, comparing converted streams with their chunk logs,
//! checking sidecars and that every fixture file is covered. Each suite keeps only its tables
//! and its vendor-specific assertions.
#![allow(dead_code)]

use std::collections::{BTreeSet, VecDeque};
use std::path::PathBuf;
use std::time::Duration;

use polyrelay::providers::{ChunkDecoder, EventHandler};
use polyrelay::{ChatChunk, ChatResponse, Error, ErrorKind, StreamAccumulator, ToolCall, Usage};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// Reading fixtures
// ---------------------------------------------------------------------------------------------

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Whether `tests/fixtures/<rel>` exists.
pub fn exists(rel: &str) -> bool {
    fixtures_dir().join(rel).exists()
}

/// The bytes of `tests/fixtures/<rel>`.
pub fn read(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read fixture {rel}: {e}"))
}

/// The text of `tests/fixtures/<rel>`.
pub fn read_str(rel: &str) -> String {
    String::from_utf8(read(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not UTF-8: {e}"))
}

/// The fixture parsed as JSON.
pub fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&read(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not JSON: {e}"))
}

/// Every file directly inside `tests/fixtures/<folder>`, as `folder/name`, sorted. A folder
/// that does not exist has no files.
pub fn list_folder(folder: &str) -> Vec<String> {
    let dir = fixtures_dir().join(folder);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<String> = entries
        .map(|e| e.expect("readable directory entry"))
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .map(|e| format!("{folder}/{}", e.file_name().to_string_lossy()))
        .collect();
    out.sort();
    out
}

/// A `*.http.json` sidecar: the recorded request line, response status and headers.
#[derive(Debug)]
pub struct Sidecar {
    pub method: String,
    pub uri: String,
    pub status: u16,
    pub headers: HeaderMap,
}

/// The sidecar file for a body file: `x.json` / `x.sse` → `x.http.json`.
pub fn sidecar_path(rel: &str) -> String {
    let stem = rel
        .strip_suffix(".json")
        .or_else(|| rel.strip_suffix(".sse"))
        .unwrap_or_else(|| panic!("{rel} is neither .json nor .sse"));
    format!("{stem}.http.json")
}

/// Parses a sidecar (`tests/fixtures/<rel>`, a `*.http.json` file). Two shapes are recorded
/// (VCR-style cassettes: `status: {code, message}` and header values as arrays; SDK
/// snapshots: `status: 400` and header values as strings); both are read.
pub fn read_sidecar(rel: &str) -> Sidecar {
    let v = read_json(rel);
    let status = v
        .pointer("/response/status/code")
        .or_else(|| v.pointer("/response/status"))
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{rel}: no response status"));
    let mut headers = HeaderMap::new();
    for (name, values) in v
        .pointer("/response/headers")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("{rel}: no response headers"))
    {
        let name = HeaderName::from_bytes(name.as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: bad header name {name:?}: {e}"));
        let values: Vec<&Value> = match values {
            Value::Array(a) => a.iter().collect(),
            one => vec![one],
        };
        for value in values {
            let value = value.as_str().expect("header values are strings");
            let value = HeaderValue::from_str(value)
                .unwrap_or_else(|e| panic!("{rel}: bad header value {value:?}: {e}"));
            headers.append(name.clone(), value);
        }
    }
    let text = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Sidecar {
        method: text("/request/method"),
        uri: text("/request/uri"),
        status: u16::try_from(status).expect("status fits u16"),
        headers,
    }
}

/// The sidecar of body file `rel`, if the fixture has one.
pub fn sidecar_of(rel: &str) -> Option<Sidecar> {
    let side = sidecar_path(rel);
    exists(&side).then(|| read_sidecar(&side))
}

/// The HTTP status in an error fixture's name: `error_429_…` → 429.
pub fn status_from_name(rel: &str) -> u16 {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.split('_')
        .find_map(|part| part.parse::<u16>().ok().filter(|s| (100..600).contains(s)))
        .unwrap_or_else(|| panic!("no HTTP status in the name of {rel}"))
}

/// Byte ranges `(start, end)` of the blocks of a body separated by `sep` (each block ending
/// with its separator; the rest, if any, is a last block). Comment-only blocks are included.
pub fn blocks_by(text: &str, sep: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = text[start..].find(sep) {
        let end = start + i + sep.len();
        out.push((start, end));
        start = end;
    }
    if start < text.len() {
        out.push((start, text.len()));
    }
    out
}

/// The JSON of an SSE block's `data:` lines, if it has any and they parse.
pub fn block_json(block: &str) -> Option<Value> {
    let data: Vec<&str> = block
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|v| v.strip_prefix(' ').unwrap_or(v))
        .collect();
    if data.is_empty() {
        return None;
    }
    serde_json::from_str(&data.join("\n")).ok()
}

/// The `data:` payloads of a `.chunks.jsonl` log (one per non-blank line).
pub fn chunk_log_lines(rel: &str) -> Vec<String> {
    read_str(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Decoding outcomes
// ---------------------------------------------------------------------------------------------

/// Where a stream decode stopped with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Feed,
    Finish,
}

/// Everything a decoder delivered for a byte stream: all chunks (from `feed` and `finish`),
/// then the first error and where it came from.
#[derive(Debug, PartialEq)]
pub struct Outcome {
    pub chunks: Vec<ChatChunk>,
    pub error: Option<(Stage, Error)>,
}

impl Outcome {
    /// The error's body snippet too, which `Error`'s `PartialEq` leaves out.
    pub fn same_as(&self, other: &Outcome) -> bool {
        self == other
            && self.error.as_ref().map(|(_, e)| e.body_snippet())
                == other.error.as_ref().map(|(_, e)| e.body_snippet())
    }
}

/// Feeds `bytes` to `dec` in pieces of the given sizes (cycled; a size of 0 counts as 1) and
/// then ends the stream. Stops at the first error, keeping the chunks decoded before it.
pub fn decode_pieces_with<H: EventHandler>(
    mut dec: ChunkDecoder<H>,
    bytes: &[u8],
    sizes: &[usize],
) -> Outcome {
    let mut out = VecDeque::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(usize::MAX).max(1).min(rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        if let Err(e) = dec.feed_into(piece, &mut out) {
            return Outcome {
                chunks: out.into(),
                error: Some((Stage::Feed, e)),
            };
        }
    }
    let error = dec.finish_into(&mut out).err().map(|e| (Stage::Finish, e));
    Outcome {
        chunks: out.into(),
        error,
    }
}

/// Folds chunks with the crate's accumulator.
pub fn fold(chunks: &[ChatChunk]) -> ChatResponse {
    let mut acc = StreamAccumulator::new();
    for c in chunks {
        acc.push(c);
    }
    acc.finish()
}

/// How many chunks carry content (the decoder's own definition).
pub fn content_chunks(chunks: &[ChatChunk]) -> usize {
    chunks.iter().filter(|c| c.has_content()).count()
}

/// Piece sizes, cycled over a body: mostly tiny (1-byte pieces included), some medium, a few
/// large.
pub fn piece_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(
        prop_oneof![
            3 => 1usize..=3,
            3 => 1usize..=64,
            2 => 1usize..=1024,
            1 => 1usize..=16384,
        ],
        1..24,
    )
}

// ---------------------------------------------------------------------------------------------
// Expectations shared by every vendor
// ---------------------------------------------------------------------------------------------

/// What a text field must be.
#[derive(Clone, Copy, Debug)]
pub enum Txt {
    /// Exactly this.
    Exact(&'static str),
    /// Starts with the first, ends with the second, this many characters long.
    Shape(&'static str, &'static str, usize),
}

impl Txt {
    #[track_caller]
    pub fn check(self, what: &str, actual: &str) {
        match self {
            Txt::Exact(s) => assert_eq!(actual, s, "{what}"),
            Txt::Shape(prefix, suffix, len) => assert_text_shape(what, actual, prefix, suffix, len),
        }
    }
}

/// Expected normalised usage, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct U {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
    pub reasoning: u64,
}

/// Shorthand for [`U`]: input, output, cache read, cache write, reasoning.
pub const fn u(input: u64, output: u64, cache_read: u64, cache_write: u64, reasoning: u64) -> U {
    U {
        input,
        output,
        cache_read,
        cache_write,
        reasoning,
    }
}

/// Asserts every field of a usage.
#[track_caller]
pub fn assert_usage(what: &str, actual: Option<Usage>, expected: U) {
    let a = actual.unwrap_or_else(|| panic!("{what}: no usage"));
    let got = U {
        input: a.input_tokens,
        output: a.output_tokens,
        cache_read: a.cache_read_tokens,
        cache_write: a.cache_write_tokens,
        reasoning: a.reasoning_tokens,
    };
    assert_eq!(got, expected, "{what}: usage");
}

/// Asserts a long text by its start and its length in characters.
#[track_caller]
pub fn assert_prefix_len(what: &str, actual: &str, prefix: &str, chars: usize) {
    assert!(
        actual.starts_with(prefix),
        "{what}: expected to start with {prefix:?}, got {:?}",
        actual
            .chars()
            .take(prefix.chars().count() + 20)
            .collect::<String>()
    );
    assert_eq!(
        actual.chars().count(),
        chars,
        "{what}: length in characters"
    );
}

/// Asserts a text's start and that it ends with `suffix`, with its length in characters.
#[track_caller]
pub fn assert_text_shape(what: &str, actual: &str, prefix: &str, suffix: &str, chars: usize) {
    assert_prefix_len(what, actual, prefix, chars);
    assert!(
        actual.ends_with(suffix),
        "{what}: expected to end with {suffix:?}, got …{:?}",
        actual
            .chars()
            .rev()
            .take(suffix.chars().count() + 20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
    );
}

/// Asserts one tool call: id, kind `function`, name, and arguments as JSON.
#[track_caller]
pub fn assert_call(what: &str, call: &ToolCall, id: &str, name: &str, args: Value) {
    assert_eq!(call.id, id, "{what}: tool call id");
    assert_eq!(call.kind, "function", "{what}: tool call type");
    assert_eq!(call.function.name, name, "{what}: tool call name");
    let parsed: Value = serde_json::from_str(&call.function.arguments).unwrap_or_else(|e| {
        panic!(
            "{what}: arguments {:?} are not JSON: {e}",
            call.function.arguments
        )
    });
    assert_eq!(parsed, args, "{what}: tool call arguments");
}

/// [`assert_call`] with the expected arguments as JSON text.
#[track_caller]
pub fn assert_call_text(what: &str, call: &ToolCall, id: &str, name: &str, args: &str) {
    let args: Value = serde_json::from_str(args).expect("expected arguments are JSON");
    assert_call(what, call, id, name, args);
}

/// An expected error message.
#[derive(Clone, Copy, Debug)]
pub enum Msg {
    /// Exactly this.
    Exact(&'static str),
    /// Starts with this and equals the body's `error.message`.
    Prefix(&'static str),
    /// Starts with the first, ends with the second, this many characters long.
    Shape(&'static str, &'static str, usize),
    /// Equals the body's `error.message`.
    Body,
}

/// An expected decoded error: one row of a vendor's error table.
#[derive(Clone, Copy, Debug)]
pub struct WantErr {
    pub kind: ErrorKind,
    pub status: u16,
    pub code: Option<&'static str>,
    pub message: Msg,
    pub request_id: Option<&'static str>,
    pub retry_after: Option<Duration>,
}

/// What the body file next to a sidecar is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// A `.sse` stream.
    Stream,
    /// An error body (`error_` in its name).
    Error,
    /// A successful JSON answer.
    Json,
}

// ---------------------------------------------------------------------------------------------
// The runner
// ---------------------------------------------------------------------------------------------

/// One vendor family's conformance suite: its fixture folders, its pure decoders, its SSE
/// framing and what an expected answer is. Everything else is the provided methods: the one
/// runner every vendor suite drives.
pub trait Vendor {
    /// The fixture folders the suite covers.
    const FOLDERS: &'static [&'static str];
    /// What ends one SSE event in the recordings (`"\n\n"`, or `"\r\n\r\n"` for Gemini).
    const BLOCK_END: &'static str;
    /// Whether a whole successful stream must have reached the vendor's terminal event.
    const DONE_AFTER_FEED: bool = false;

    /// The expected first choice of an answer (a row of the vendor's table).
    type Want<'a>;

    /// A fresh stream decoder.
    fn stream_decoder() -> ChunkDecoder<impl EventHandler>;
    /// The vendor's non-streaming decoder.
    fn decode_response(body: &[u8]) -> Result<ChatResponse, Error>;
    /// The vendor's error decoder.
    fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> Error;
    /// Checks an answer (decoded, or folded from a stream) against a row.
    fn check(what: &str, r: &ChatResponse, w: &Self::Want<'_>);
    /// The vendor's own checks of a decoded error fixture, after the table's.
    fn check_error_extra(rel: &str, e: &Error, w: &WantErr) {
        let _ = (rel, e, w);
    }

    /// Every fixture file of the folders, sorted by folder then name.
    fn files() -> Vec<String> {
        Self::FOLDERS.iter().flat_map(|f| list_folder(f)).collect()
    }

    /// Every `.sse` file of the folders.
    fn all_sse() -> Vec<String> {
        Self::files()
            .into_iter()
            .filter(|f| f.ends_with(".sse"))
            .collect()
    }

    /// Byte ranges of the SSE events of a body, each with its blank line.
    fn sse_blocks(text: &str) -> Vec<(usize, usize)> {
        blocks_by(text, Self::BLOCK_END)
    }

    /// Decodes a non-streaming success body.
    fn decode_json(rel: &str) -> ChatResponse {
        Self::decode_response(&read(rel)).unwrap_or_else(|e| panic!("{rel} did not decode: {e:?}"))
    }

    /// Feeds `bytes` in pieces of the given sizes (cycled; 0 counts as 1), then ends the
    /// stream.
    fn decode_pieces(bytes: &[u8], sizes: &[usize]) -> Outcome {
        decode_pieces_with(Self::stream_decoder(), bytes, sizes)
    }

    /// Feeds `bytes` whole, then ends the stream.
    fn decode_whole(bytes: &[u8]) -> Outcome {
        Self::decode_pieces(bytes, &[usize::MAX])
    }

    /// Decodes a successful stream the plain way (`feed` the whole body, then `finish`), and
    /// returns its chunks and their fold. Panics on any error.
    fn decode_stream_bytes(what: &str, bytes: &[u8]) -> (Vec<ChatChunk>, ChatResponse) {
        let mut dec = Self::stream_decoder();
        let mut chunks = dec
            .feed(bytes)
            .unwrap_or_else(|e| panic!("{what}: feed failed: {e:?}"));
        if Self::DONE_AFTER_FEED {
            assert!(dec.is_done(), "{what}: terminal event seen");
        }
        chunks.extend(
            dec.finish()
                .unwrap_or_else(|e| panic!("{what}: finish failed: {e:?}")),
        );
        let folded = fold(&chunks);
        (chunks, folded)
    }

    /// [`decode_stream_bytes`](Self::decode_stream_bytes) over a fixture file.
    fn decode_stream(rel: &str) -> (Vec<ChatChunk>, ChatResponse) {
        Self::decode_stream_bytes(rel, &read(rel))
    }

    /// Decodes a non-streaming fixture and checks it.
    #[track_caller]
    fn check_json(rel: &str, w: &Self::Want<'_>) -> ChatResponse {
        let r = Self::decode_json(rel);
        Self::check(rel, &r, w);
        r
    }

    /// Decodes a stream fixture (feed whole, finish), folds it and checks the fold.
    #[track_caller]
    fn check_sse(rel: &str, w: &Self::Want<'_>) -> (Vec<ChatChunk>, ChatResponse) {
        let (chunks, r) = Self::decode_stream(rel);
        Self::check(rel, &r, w);
        (chunks, r)
    }

    /// Checks a table of answers: each `.sse` row decoded as a stream and folded, each other
    /// row decoded as a JSON body.
    #[track_caller]
    fn check_table(rows: &[(&str, Self::Want<'_>)]) {
        for (rel, w) in rows {
            if rel.ends_with(".sse") {
                Self::check_sse(rel, w);
            } else {
                Self::check_json(rel, w);
            }
        }
    }

    /// Decodes an error fixture with the status (and headers) of its sidecar when it has one,
    /// else with the status from its file name and no headers.
    fn decode_error_fixture(rel: &str) -> Error {
        let body = read(rel);
        match sidecar_of(rel) {
            Some(side) => {
                assert_eq!(
                    side.status,
                    status_from_name(rel),
                    "{rel}: the sidecar status and the file name disagree"
                );
                Self::decode_error(side.status, &side.headers, &body)
            }
            None => Self::decode_error(status_from_name(rel), &HeaderMap::new(), &body),
        }
    }

    /// Decodes an error fixture and checks it against its row, then the vendor's own checks.
    #[track_caller]
    fn check_error(rel: &str, w: &WantErr) -> Error {
        let e = Self::decode_error_fixture(rel);
        assert_eq!(e.kind(), w.kind, "{rel}: kind ({e:?})");
        assert_eq!(e.status(), Some(w.status), "{rel}: status");
        assert_eq!(e.code(), w.code, "{rel}: code");
        let body_message = || {
            read_json(rel)
                .pointer("/error/message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        match w.message {
            Msg::Exact(m) => assert_eq!(e.message(), m, "{rel}: message"),
            Msg::Prefix(p) => {
                assert!(
                    e.message().starts_with(p),
                    "{rel}: message {:?}",
                    e.message()
                );
                assert_eq!(
                    Some(e.message().to_owned()),
                    body_message(),
                    "{rel}: the whole vendor message"
                );
            }
            Msg::Shape(p, s, n) => {
                assert_text_shape(&format!("{rel}: message"), e.message(), p, s, n)
            }
            Msg::Body => assert_eq!(
                Some(e.message().to_owned()),
                body_message(),
                "{rel}: message"
            ),
        }
        assert_eq!(e.request_id(), w.request_id, "{rel}: request id");
        assert_eq!(e.retry_after(), w.retry_after, "{rel}: retry-after");
        Self::check_error_extra(rel, &e, w);
        e
    }

    /// Checks a table of error fixtures.
    #[track_caller]
    fn check_error_table(rows: &[(&str, WantErr)]) {
        for (rel, w) in rows {
            Self::check_error(rel, w);
        }
    }

    /// Every stream (there must be `files` of them) decodes split into arbitrary pieces
    /// exactly as whole: chunks, error and its body snippet, fold. With `ok`, every stream
    /// also decodes without error.
    fn any_split_decodes_like_the_whole(files: usize, ok: bool) {
        let all = Self::all_sse();
        assert_eq!(all.len(), files, ".sse files");
        for rel in all {
            let bytes = read(&rel);
            let whole = Self::decode_whole(&bytes);
            if ok {
                assert!(whole.error.is_none(), "{rel}: {:?}", whole.error);
            }
            let folded = fold(&whole.chunks);
            let mut runner = TestRunner::new(Config {
                cases: 32,
                failure_persistence: None,
                ..Config::default()
            });
            let result = runner.run(&piece_sizes(), |sizes| {
                let split = Self::decode_pieces(&bytes, &sizes);
                if !split.same_as(&whole) || fold(&split.chunks) != folded {
                    return Err(TestCaseError::fail(format!(
                        "{rel}: pieces {sizes:?} give {} chunks / {:?}, whole gives {} chunks / {:?}",
                        split.chunks.len(),
                        split.error,
                        whole.chunks.len(),
                        whole.error
                    )));
                }
                Ok(())
            });
            if let Err(e) = result {
                panic!("{rel}: {e}");
            }
        }
    }

    /// Every stream fed one byte at a time decodes exactly as whole.
    fn one_byte_pieces_decode_like_the_whole() {
        for rel in Self::all_sse() {
            let bytes = read(&rel);
            let whole = Self::decode_whole(&bytes);
            let split = Self::decode_pieces(&bytes, &[1]);
            assert!(split.same_as(&whole), "{rel}: 1-byte pieces");
        }
    }

    /// `rel` cut at byte `cut` is interrupted at `finish`, after delivering a prefix of
    /// `full` (the whole stream's chunks).
    #[track_caller]
    fn assert_cut_is_interrupted(rel: &str, bytes: &[u8], full: &[ChatChunk], cut: usize) {
        let out = Self::decode_whole(&bytes[..cut]);
        let (stage, e) = out
            .error
            .as_ref()
            .unwrap_or_else(|| panic!("{rel} cut at {cut}: no error: {out:?}"));
        assert_eq!(*stage, Stage::Finish, "{rel} cut at {cut}");
        assert_eq!(
            e.kind(),
            ErrorKind::StreamInterrupted,
            "{rel} cut at {cut}: {e:?}"
        );
        assert!(
            full.starts_with(&out.chunks),
            "{rel} cut at {cut}: delivered chunks are a prefix of the whole stream's"
        );
    }

    /// `rel` cut at byte `cut` decodes as the whole stream: no error, the same chunks and
    /// fold.
    #[track_caller]
    fn assert_cut_is_whole(rel: &str, bytes: &[u8], full: &Outcome, cut: usize) {
        let out = Self::decode_whole(&bytes[..cut]);
        assert_eq!(
            out.error.as_ref().map(|(_, e)| e),
            None,
            "{rel} cut at {cut}"
        );
        assert_eq!(out.chunks, full.chunks, "{rel} cut at {cut}");
        assert_eq!(fold(&out.chunks), fold(&full.chunks), "{rel} cut at {cut}");
    }

    /// `rel` cut after its first `events` events, fed with the plain API: `chunks` chunks
    /// (`content` with content), then `finish` reports an interrupted stream saying so.
    fn interrupted_stream_reports_what_was_delivered(
        rel: &str,
        events: usize,
        chunks: usize,
        content: usize,
    ) {
        let text = read_str(rel);
        let cut = Self::sse_blocks(&text)[events - 1].1;
        let mut dec = Self::stream_decoder();
        let got = dec.feed(&text.as_bytes()[..cut]).expect("feed");
        assert_eq!((got.len(), content_chunks(&got)), (chunks, content));
        let e = dec.finish().expect_err("cut stream");
        assert_eq!(e.kind(), ErrorKind::StreamInterrupted);
        assert!(
            e.message().contains(&format!("{chunks} chunks"))
                && e.message().contains(&format!("{content} with content")),
            "message says what was delivered: {:?}",
            e.message()
        );
    }

    /// The chunk logs of the folders are exactly `listed`; each `.sse` converted from one is
    /// the log's lines framed by `frame`. Returns (stream, log lines) per log.
    fn converted_streams(
        listed: &[&str],
        frame: fn(&[String]) -> String,
    ) -> Vec<(String, Vec<String>)> {
        let on_disk: BTreeSet<String> = Self::files()
            .into_iter()
            .filter(|f| f.ends_with(".chunks.jsonl"))
            .collect();
        let want: BTreeSet<String> = listed.iter().map(|s| s.to_string()).collect();
        assert_eq!(on_disk, want, "chunk logs");
        listed
            .iter()
            .map(|log| {
                let sse = log.replace(".chunks.jsonl", ".sse");
                let lines = chunk_log_lines(log);
                assert_eq!(
                    read_str(&sse),
                    frame(&lines),
                    "{sse} is {log} framed as SSE"
                );
                (sse, lines)
            })
            .collect()
    }

    /// Each logged line decodes to one chunk, and the same lines carry content as `raw` (an
    /// independent reading of the logged JSON) says.
    fn one_chunk_per_logged_line(sse: &str, lines: &[String], raw: fn(&[Value]) -> Vec<bool>) {
        let (chunks, _) = Self::decode_stream(sse);
        assert_eq!(
            chunks.len(),
            lines.len(),
            "{sse}: one chunk per logged line"
        );
        let values: Vec<Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).expect("JSON line"))
            .collect();
        let raw = raw(&values);
        let decoded: Vec<bool> = chunks.iter().map(|c| c.has_content()).collect();
        assert_eq!(
            decoded.iter().filter(|b| **b).count(),
            raw.iter().filter(|b| **b).count(),
            "{sse}: number of content chunks"
        );
        assert_eq!(decoded, raw, "{sse}: which chunks carry content");
    }

    /// Every `.http.json` sidecar (there must be `expected` of them) belongs to a body file
    /// and agrees with it: a POST; a `.sse` body was HTTP 200 `text/event-stream`; an error
    /// body has the status of its file name; any other body was HTTP 200 `application/json`.
    /// `extra` gets each sidecar, its stem and its body's kind for the vendor's own checks.
    fn sidecars_agree_with_their_bodies(
        expected: usize,
        mut extra: impl FnMut(&str, &Sidecar, &str, Body),
    ) {
        let mut seen = 0;
        for rel in Self::files() {
            let Some(stem) = rel.strip_suffix(".http.json") else {
                continue;
            };
            seen += 1;
            let side = read_sidecar(&rel);
            assert_eq!(side.method, "POST", "{rel}");
            let content_type = side
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let sse = format!("{stem}.sse");
            let json = format!("{stem}.json");
            let name = json.rsplit('/').next().unwrap_or_default();
            let body = if exists(&sse) {
                assert_eq!(side.status, 200, "{rel}");
                assert!(
                    content_type.contains("event-stream"),
                    "{rel}: {content_type}"
                );
                Body::Stream
            } else {
                assert!(exists(&json), "{rel}: no body file next to it");
                if name.starts_with("error_") || name.contains("_error_") {
                    assert_eq!(side.status, status_from_name(&json), "{rel}");
                    Body::Error
                } else {
                    assert_eq!(side.status, 200, "{rel}");
                    assert!(
                        content_type.contains("application/json"),
                        "{rel}: {content_type}"
                    );
                    Body::Json
                }
            };
            extra(&rel, &side, stem, body);
        }
        assert_eq!(seen, expected, "sidecars found");
    }

    /// Fails when a fixture file exists that `covered` does not list, or when a listed file is
    /// gone. Every listed body file (not sidecars) must also be named, quoted, at least twice
    /// in `sources` (the list and a test).
    fn fully_covered(covered: &[&str], sources: &[&str]) {
        let on_disk: BTreeSet<String> = Self::files().into_iter().collect();
        let listed: BTreeSet<String> = covered.iter().map(|s| s.to_string()).collect();
        assert_eq!(listed.len(), covered.len(), "duplicates in COVERED");
        let uncovered: Vec<&String> = on_disk.difference(&listed).collect();
        assert!(
            uncovered.is_empty(),
            "fixture files no test covers (add tests and list them in COVERED): {uncovered:#?}"
        );
        let missing: Vec<&String> = listed.difference(&on_disk).collect();
        assert!(
            missing.is_empty(),
            "COVERED lists missing files: {missing:#?}"
        );
        let source = sources.concat();
        for rel in covered.iter().filter(|f| !f.ends_with(".http.json")) {
            let quoted = format!("\"{rel}\"");
            assert!(
                source.matches(&quoted).count() >= 2,
                "{rel} is listed in COVERED but no test names it"
            );
        }
    }
}
