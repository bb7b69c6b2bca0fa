//! Chunk logs, unstreamed forms, splits, cuts.

use super::*;

// ---------------------------------------------------------------------------------------------
// Chunk logs, unstreamed forms, splits, cuts
// ---------------------------------------------------------------------------------------------

/// Each `.sse` converted from a chunk log is exactly the log framed as `data: <line>\r\n\r\n`,
/// decodes to one chunk per line, and the same lines carry content.
#[test]
fn converted_streams_match_their_chunk_logs() {
    const LOGS: &[&str] = &[
        "gemini/vercel_function_call_gemini3_stream.chunks.jsonl",
        "gemini/vercel_function_call_stream.chunks.jsonl",
        "gemini/vercel_reasoning_gemini3_stream.chunks.jsonl",
        "gemini/vercel_reasoning_stream.chunks.jsonl",
        "gemini/vercel_text_stream.chunks.jsonl",
        "gemini/vertex_stream_function_call_no_args_partial.chunks.jsonl",
        "gemini/vertex_stream_function_call_partial_args.chunks.jsonl",
        "gemini/vertex_stream_function_call_partial_args_nested.chunks.jsonl",
    ];
    let frame = |lines: &[String]| -> String {
        lines.iter().map(|l| format!("data: {l}\r\n\r\n")).collect()
    };
    for (sse, lines) in Gem::converted_streams(LOGS, frame) {
        Gem::one_chunk_per_logged_line(&sse, &lines, raw_content_flags);
    }
}

/// Content chunks of every stream, against the independent reading of the events.
#[test]
fn content_chunks_follow_the_events() {
    for rel in Gem::all_sse() {
        let (chunks, _) = Gem::decode_stream(&rel);
        let decoded: Vec<bool> = chunks.iter().map(ChatChunk::has_content).collect();
        assert_eq!(
            decoded,
            raw_content_flags(&sse_events(&read_str(&rel))),
            "{rel}"
        );
    }
}

/// Every stream folds to what `decode_response` gives for the same answer sent whole: text,
/// reasoning, thinking blocks, tool calls (generated ids included), finish reason, usage.
#[test]
fn every_stream_folds_like_its_unstreamed_form() {
    for rel in Gem::all_sse() {
        let (_, folded) = Gem::decode_stream(&rel);
        let whole = merge_events(&sse_events(&read_str(&rel)));
        let r = decode_response(whole.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: merged form: {e:?}"));
        assert_eq!(r, folded, "{rel}");
        // And as the JSON-array form of the stream.
        let array = Value::Array(sse_events(&read_str(&rel)));
        let chunks = decode_stream_array(array.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("{rel}: array form: {e:?}"));
        assert_eq!(fold(&chunks), folded, "{rel}: array form");
    }
}

#[test]
fn any_split_decodes_like_the_whole_body() {
    Gem::any_split_decodes_like_the_whole(15, true);
    Gem::one_byte_pieces_decode_like_the_whole();
}

/// Cut before the finish event is complete: interrupted, with what came before delivered.
/// Cut after the finish event's JSON (even without its blank line): whole.
#[test]
fn cuts_before_and_after_the_finish_event() {
    for rel in Gem::all_sse() {
        let text = read_str(&rel);
        let whole = Gem::decode_whole(text.as_bytes());
        let blocks = Gem::sse_blocks(&text);
        let (start, end) = *blocks
            .iter()
            .find(|(s, e)| text[*s..*e].contains("\"finishReason\""))
            .unwrap_or_else(|| panic!("{rel}: no finish event"));
        let json_end = start + text[start..end].trim_end().len();
        for cut in [
            start,
            start + "data: ".len(),
            (start + json_end) / 2,
            json_end - 1,
        ] {
            Gem::assert_cut_is_interrupted(&rel, text.as_bytes(), &whole.chunks, cut);
        }
        for cut in [json_end, json_end + 1, json_end + 2, end] {
            Gem::assert_cut_is_whole(&rel, text.as_bytes(), &whole, cut);
        }
    }
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    Gem::interrupted_stream_reports_what_was_delivered("gemini/stream_thinking.sse", 10, 10, 10);
}
