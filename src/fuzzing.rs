//! Entry points for the `cargo fuzz` targets in `fuzz/`, behind the non-default `fuzzing`
//! feature. Internal: not part of the API, and free to change with any release.
//!
//! Each function takes the fuzzer's bytes, drives one decoder the way the relay drives it on
//! the request path, and ignores every `Err`: a decoder that refuses its input is doing its
//! job. Only a panic, an abort, a hang or a runaway allocation is a finding. Inputs the relay
//! could never be handed (a status code outside `100..=999`) are skipped.
//!
//! Input layouts (the seeds in `fuzz/seed.sh` follow them):
//! - streams ([`sse`], [`openai_stream`], [`anthropic_stream`], [`gemini_stream`]): one byte
//!   choosing how the body is cut into reads, then the body;
//! - error bodies ([`openai_error`], [`anthropic_error`], [`gemini_error`]): the status code
//!   as text on the first line, header lines (`name: value`) up to a blank line, then the body;
//! - everything else: the body as it arrives.

use std::collections::VecDeque;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::http::classify;
use crate::http::sse::{SseDecoder, SseError};
use crate::providers::anthropic::{self, AnthropicEvents};
use crate::providers::gemini::{self, GeminiEvents};
use crate::providers::openai::{self, OpenAiEvents};
use crate::providers::{ChunkDecoder, EventHandler};
use crate::secret::ApiKey;
use crate::types::{ChatChunk, ChatRequest};

/// The key the stream handlers redact from their errors (a fuzzer that finds it exercises
/// the redaction).
const KEY: &str = "sk-fuzz-0123456789abcdef";

/// Most header lines taken from one input.
const MAX_HEADERS: usize = 64;

/// Splits a stream input into the read size and the body: the first byte's low seven bits
/// give reads of 1 to 128 bytes; its high bit is a switch (for [`sse`], a 64-byte event
/// bound; for the vendor streams, the whole body in one read).
fn stream_input(data: &[u8]) -> Option<(usize, bool, &[u8])> {
    let (&first, body) = data.split_first()?;
    Some((usize::from(first & 0x7f) + 1, first & 0x80 != 0, body))
}

/// The SSE decoder, fed in reads of the size the input chooses: every event it yields must
/// be the same as when the whole body arrives at once (until either way reports an error, as
/// a size bound may be noticed earlier in one of them).
pub fn sse(data: &[u8]) {
    let Some((step, small, body)) = stream_input(data) else {
        return;
    };
    let max = if small {
        64
    } else {
        crate::http::sse::DEFAULT_MAX_EVENT_BYTES
    };
    let whole = sse_events(body, body.len().max(1), max);
    let split = sse_events(body, step, max);
    let (short, long) = if whole.0.len() <= split.0.len() {
        (&whole, &split)
    } else {
        (&split, &whole)
    };
    if short.1.is_none() && long.1.is_none() {
        assert_eq!(whole.0, split.0, "events differ with reads of {step} bytes");
    } else {
        assert_eq!(
            short.0[..],
            long.0[..short.0.len()],
            "events differ with reads of {step} bytes"
        );
    }
}

/// One event as the SSE decoder yields it: name, data, id.
type OwnedEvent = (String, String, String);

/// Every event of `body` read `step` bytes at a time, and the error that ended it, if any
/// (a last unterminated event counts as an event).
fn sse_events(body: &[u8], step: usize, max: usize) -> (Vec<OwnedEvent>, Option<SseError>) {
    let mut dec = SseDecoder::with_max_event_bytes(max);
    let mut events = Vec::new();
    for piece in body.chunks(step) {
        dec.feed(piece);
        loop {
            match dec.next_event() {
                Ok(Some(ev)) => {
                    events.push((ev.event.to_owned(), ev.data.to_owned(), ev.id.to_owned()))
                }
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    match dec.finish() {
        Ok(eof) => {
            if let Some((data, event)) = eof.unterminated {
                events.push((event, data, String::new()));
            }
            (events, None)
        }
        Err(e) => (events, Some(e)),
    }
}

/// Drives a stream decoder the way the relay's SSE stream does: buffer a read, decode one
/// event's chunks at a time until none is left, go on after a malformed event, stop at the
/// end of the stream or an error that ends it.
fn drive<H: EventHandler>(handler: H, data: &[u8]) {
    let Some((step, whole, body)) = stream_input(data) else {
        return;
    };
    let mut dec = ChunkDecoder::new(handler);
    let mut queue: VecDeque<ChatChunk> = VecDeque::new();
    let step = if whole { body.len().max(1) } else { step };
    for piece in body.chunks(step) {
        dec.buffer(piece);
        loop {
            let before = queue.len();
            let result = dec.decode_some(&mut queue);
            if dec.is_done() {
                return;
            }
            if result.is_ok() && queue.len() == before {
                break; // nothing left buffered
            }
            queue.clear();
        }
    }
    let _ = dec.finish_into(&mut queue);
}

/// The OpenAI-family stream decoder (also every OpenAI-compatible vendor's).
pub fn openai_stream(data: &[u8]) {
    drive(OpenAiEvents::new(), data);
}

/// The Anthropic Messages stream decoder.
pub fn anthropic_stream(data: &[u8]) {
    drive(AnthropicEvents::with_key(ApiKey::new(KEY)), data);
}

/// The Gemini / Vertex `?alt=sse` stream decoder.
pub fn gemini_stream(data: &[u8]) {
    drive(GeminiEvents::with_key(Some(ApiKey::new(KEY))), data);
}

/// The OpenAI-family response decoder (a 2xx body).
pub fn openai_response(data: &[u8]) {
    let _ = openai::decode_response(data);
}

/// The Anthropic response decoder (a 2xx body, which may be an in-band error).
pub fn anthropic_response(data: &[u8]) {
    let _ = anthropic::decode_response(data);
}

/// The Gemini response decoders: a `generateContent` body, and the same bytes as the JSON
/// array `streamGenerateContent` answers without `?alt=sse`.
pub fn gemini_response(data: &[u8]) {
    let _ = gemini::decode_response(data);
    let _ = gemini::decode_stream_array(data);
}

/// Splits an error input into status, headers and body (see the module docs). `None` for a
/// status no HTTP response can have.
fn error_input(data: &[u8]) -> Option<(u16, HeaderMap, &[u8])> {
    let (status_line, rest) = match memchr::memchr(b'\n', data) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let status = std::str::from_utf8(status_line)
        .ok()
        .and_then(|s| s.trim().parse::<u16>().ok())
        .unwrap_or(500);
    if !(100..=999).contains(&status) {
        return None;
    }
    let (head, body) = match memchr::memmem::find(rest, b"\n\n") {
        Some(i) => (&rest[..i], &rest[i + 2..]),
        None => (&[][..], rest),
    };
    let mut headers = HeaderMap::new();
    for line in head.split(|&b| b == b'\n').take(MAX_HEADERS) {
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let (name, value) = (line[..colon].trim_ascii(), line[colon + 1..].trim_ascii());
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    Some((status, headers, body))
}

/// The OpenAI-family error decoder (the shared classifier) for an HTTP error response.
pub fn openai_error(data: &[u8]) {
    let Some((status, headers, body)) = error_input(data) else {
        return;
    };
    let _ = classify::http_error(status, &headers, body, &|s| s.to_owned());
    let _ = openai::decode_error(status, &headers, body);
}

/// The Anthropic error decoder for an HTTP error response (with its rate-limit headers).
pub fn anthropic_error(data: &[u8]) {
    let Some((status, headers, body)) = error_input(data) else {
        return;
    };
    let _ = anthropic::decode_error(status, &headers, body);
}

/// The Gemini error decoder for an HTTP error response.
pub fn gemini_error(data: &[u8]) {
    let Some((status, headers, body)) = error_input(data) else {
        return;
    };
    let _ = gemini::decode_error(status, &headers, body);
}

/// The configuration loader: parse a TOML file's text, then build the relay it describes
/// (every environment variable it names set to a placeholder key).
#[cfg(feature = "config")]
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = crate::config::RelayConfig::from_toml_str(text) else {
        return;
    };
    let _ = config.gateway_settings();
    let _ = config.build_with_env(|_| Some(KEY.to_owned()));
}

/// A gateway request body: parse it as the gateway does; a request that parses must
/// serialize, parse again, and be encoded (or refused) by each vendor's encoder.
pub fn chat_request(data: &[u8]) {
    let Ok(req) = serde_json::from_slice::<ChatRequest>(data) else {
        return;
    };
    let json = serde_json::to_vec(&req).expect("a parsed request serializes");
    if let Err(e) = serde_json::from_slice::<ChatRequest>(&json) {
        panic!("a serialized request does not parse again: {e}");
    }
    let model = if req.model.is_empty() {
        "m"
    } else {
        &req.model
    };
    let stream = req.stream == Some(true);
    let _ = openai::encode_request(&req, model, stream);
    let _ = anthropic::encode_request(&req, model, stream);
    let _ = gemini::encode_request(&req);
}
