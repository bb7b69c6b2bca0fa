//! Reading the vendor recordings under `tests/fixtures/` and driving the OpenAI-family
//! decoders over them (whole, or split into pieces), for the conformance tests.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::PathBuf;

use polyrelay::providers::openai::{decode_error, decode_response};
use polyrelay::providers::{ChunkDecoder, EventHandler, OpenAi};
use polyrelay::{ChatChunk, ChatResponse, Error, StreamAccumulator, ToolCall, Usage};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

/// `tests/fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
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

/// Parses a sidecar (`tests/fixtures/<rel>`, a `*.http.json` file).
pub fn read_sidecar(rel: &str) -> Sidecar {
    let v = read_json(rel);
    let status = v
        .pointer("/response/status/code")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{rel}: no response.status.code"));
    let mut headers = HeaderMap::new();
    if let Some(map) = v.pointer("/response/headers").and_then(Value::as_object) {
        for (name, values) in map {
            let name = HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|e| panic!("{rel}: bad header name {name:?}: {e}"));
            for value in values.as_array().into_iter().flatten() {
                let value = value.as_str().expect("header values are strings");
                let value = HeaderValue::from_str(value)
                    .unwrap_or_else(|e| panic!("{rel}: bad header value {value:?}: {e}"));
                headers.append(name.clone(), value);
            }
        }
    }
    Sidecar {
        method: v
            .pointer("/request/method")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        uri: v
            .pointer("/request/uri")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        status: u16::try_from(status).expect("status fits u16"),
        headers,
    }
}

/// The sidecar of body file `rel`, if the fixture has one.
pub fn sidecar_of(rel: &str) -> Option<Sidecar> {
    let side = sidecar_path(rel);
    fixtures_dir()
        .join(&side)
        .exists()
        .then(|| read_sidecar(&side))
}

/// Decodes a non-streaming success body.
pub fn decode_json(rel: &str) -> ChatResponse {
    decode_response(&read(rel)).unwrap_or_else(|e| panic!("{rel} did not decode: {e:?}"))
}

/// The HTTP status in an error fixture's name: `error_429_…` → 429.
pub fn status_from_name(rel: &str) -> u16 {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    name.split('_')
        .find_map(|part| part.parse::<u16>().ok().filter(|s| (100..600).contains(s)))
        .unwrap_or_else(|| panic!("no HTTP status in the name of {rel}"))
}

/// Decodes an error fixture with the status (and headers) of its sidecar when it has one,
/// else with the status from its file name and no headers.
pub fn decode_error_fixture(rel: &str) -> Error {
    let body = read(rel);
    match sidecar_of(rel) {
        Some(side) => {
            assert_eq!(
                side.status,
                status_from_name(rel),
                "{rel}: the sidecar status and the file name disagree"
            );
            decode_error(side.status, &side.headers, &body)
        }
        None => decode_error(status_from_name(rel), &HeaderMap::new(), &body),
    }
}

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

/// Feeds `bytes` in pieces of the given sizes (cycled; a size of 0 counts as 1) and then ends
/// the stream. Stops at the first error, keeping the chunks decoded before it.
pub fn decode_pieces(bytes: &[u8], sizes: &[usize]) -> Outcome {
    decode_pieces_with(OpenAi::stream_decoder(), bytes, sizes)
}

/// [`decode_pieces`] with any vendor's decoder.
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

/// Feeds `bytes` whole, then ends the stream.
pub fn decode_whole(bytes: &[u8]) -> Outcome {
    decode_pieces(bytes, &[usize::MAX])
}

/// Decodes a successful stream the plain way (`feed` the whole body, then `finish`), and
/// returns its chunks and their fold. Panics on any error.
pub fn decode_stream_bytes(what: &str, bytes: &[u8]) -> (Vec<ChatChunk>, ChatResponse) {
    let mut dec = OpenAi::stream_decoder();
    let mut chunks = dec
        .feed(bytes)
        .unwrap_or_else(|e| panic!("{what}: feed failed: {e:?}"));
    chunks.extend(
        dec.finish()
            .unwrap_or_else(|e| panic!("{what}: finish failed: {e:?}")),
    );
    let folded = fold(&chunks);
    (chunks, folded)
}

/// [`decode_stream_bytes`] over a fixture file.
pub fn decode_stream(rel: &str) -> (Vec<ChatChunk>, ChatResponse) {
    decode_stream_bytes(rel, &read(rel))
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

/// The `data:` payloads of a `.chunks.jsonl` log (one per non-blank line).
pub fn chunk_log_lines(rel: &str) -> Vec<String> {
    read_str(rel)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether a raw OpenAI-family chunk (JSON) carries content: non-empty text (string or text
/// parts), reasoning (`reasoning_content`/`reasoning`/thinking parts), refusal, or tool calls.
pub fn raw_chunk_has_content(chunk: &Value) -> bool {
    let nonempty = |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            let Some(d) = c.get("delta") else {
                return false;
            };
            let parts_have_text = d
                .get("content")
                .and_then(Value::as_array)
                .is_some_and(|parts| {
                    parts.iter().any(|p| {
                        nonempty(p.get("text"))
                            || p.get("thinking")
                                .and_then(Value::as_array)
                                .is_some_and(|t| t.iter().any(|x| nonempty(x.get("text"))))
                    })
                });
            nonempty(d.get("content"))
                || parts_have_text
                || nonempty(d.get("reasoning_content"))
                || nonempty(d.get("reasoning"))
                || nonempty(d.get("refusal"))
                || d.get("tool_calls")
                    .and_then(Value::as_array)
                    .is_some_and(|t| !t.is_empty())
        })
}

/// Byte ranges `(start, end)` of the SSE blocks of a body (each ending with its blank line;
/// LF framing, as in every OpenAI-family recording here). Comment-only blocks are included.
pub fn sse_blocks(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(i) = text[start..].find("\n\n") {
        let end = start + i + 2;
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

/// Whether a raw chunk sets a (non-empty) finish reason on any choice.
pub fn raw_chunk_finishes(chunk: &Value) -> bool {
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| {
            c.get("finish_reason")
                .and_then(Value::as_str)
                .is_some_and(|s| !s.is_empty())
        })
}
