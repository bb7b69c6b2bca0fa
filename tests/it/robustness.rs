//! Nothing a vendor sends makes the decoders panic: arbitrary bytes, and real recordings with
//! bytes flipped, cut or duplicated, go through every vendor's response, error and stream
//! decoders, which answer with chunks or a typed error.

use polyrelay::providers::{Anthropic, Gemini, OpenAi, anthropic, gemini, openai};
use proptest::prelude::*;
use reqwest::header::HeaderMap;

const RECORDINGS: &[&[u8]] = &[
    include_bytes!("../fixtures/openai/chat_stream_parallel_tool_calls.sse"),
    include_bytes!("../fixtures/openai/chat_tool_calls.json"),
    include_bytes!("../fixtures/anthropic/messages_stream_thinking.sse"),
    include_bytes!("../fixtures/anthropic/messages_thinking_tool_use.json"),
    include_bytes!("../fixtures/gemini/stream_function_call.sse"),
    include_bytes!("../fixtures/gemini/generate_function_call.json"),
    include_bytes!("../fixtures/gemini/error_429_quota_failure_retry_info.json"),
    include_bytes!("../fixtures/openrouter/chat_stream_error_midstream.sse"),
];

/// Runs every decoder over `bytes` (whole and in `piece`-sized reads); only panics matter.
fn decode_everything(bytes: &[u8], piece: usize) {
    let _ = openai::decode_response(bytes);
    let _ = anthropic::decode_response(bytes);
    let _ = gemini::decode_response(bytes);
    let _ = gemini::decode_stream_array(bytes);
    for status in [200u16, 400, 429, 500, 529] {
        let _ = openai::decode_error(status, &HeaderMap::new(), bytes);
        let _ = anthropic::decode_error(status, &HeaderMap::new(), bytes);
        let _ = gemini::decode_error(status, &HeaderMap::new(), bytes);
    }
    let piece = piece.max(1);
    let mut o = OpenAi::stream_decoder();
    let mut a = Anthropic::stream_decoder();
    let mut g = Gemini::stream_decoder();
    for part in bytes.chunks(piece) {
        let _ = o.feed(part);
        let _ = a.feed(part);
        let _ = g.feed(part);
    }
    let _ = o.finish();
    let _ = a.finish();
    let _ = g.finish();
}

/// A recording with edits applied: (position, byte) overwrites, a cut, a duplicated span.
fn mangle(src: &[u8], flips: &[(usize, u8)], cut: usize, dup: (usize, usize)) -> Vec<u8> {
    let mut v = src.to_vec();
    for &(pos, byte) in flips {
        if !v.is_empty() {
            let i = pos % v.len();
            v[i] = byte;
        }
    }
    if !v.is_empty() {
        let (a, b) = (dup.0 % v.len(), dup.1 % v.len());
        let (a, b) = (a.min(b), a.max(b));
        let span = v[a..b].to_vec();
        v.splice(b..b, span);
        v.truncate(v.len() - cut % (v.len() / 4 + 1));
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048), piece in 1usize..64) {
        decode_everything(&bytes, piece);
    }

    #[test]
    fn sse_shaped_noise_never_panics(
        lines in proptest::collection::vec(
            prop_oneof![
                Just("data: [DONE]".to_owned()),
                Just("event: error".to_owned()),
                Just("event: message_stop".to_owned()),
                Just(": keep-alive".to_owned()),
                Just(String::new()),
                "data: \\{[ -~]{0,60}\\}",
                "data: [ -~]{0,40}",
                "[a-z]{1,8}: ?[ -~]{0,20}",
            ],
            0..40,
        ),
        crlf in any::<bool>(),
        piece in 1usize..32,
    ) {
        let sep = if crlf { "\r\n" } else { "\n" };
        decode_everything(lines.join(sep).as_bytes(), piece);
    }

    #[test]
    fn mangled_recordings_never_panic(
        which in 0usize..RECORDINGS.len(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        cut in any::<usize>(),
        dup in (any::<usize>(), any::<usize>()),
        piece in 1usize..512,
    ) {
        decode_everything(&mangle(RECORDINGS[which], &flips, cut, dup), piece);
    }
}
