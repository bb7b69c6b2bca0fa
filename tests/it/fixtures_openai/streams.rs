//! Every stream of the family: stream/non-stream pairs, chunk logs, endings, arbitrary splits.

use serde_json::Value;

use super::{Oai, raw_chunk_finishes, raw_chunk_has_content};
use crate::support::fixtures::*;
use polyrelay::{ErrorKind, FinishReason};

// ---------------------------------------------------------------------------------------------
// Stream / non-stream pairs
// ---------------------------------------------------------------------------------------------

/// The vercel fixtures record the same prompt twice, streamed and not. They are separate
/// generations (different ids, texts and token counts), so only what the model decided the same
/// way both times is compared: the tool called and its arguments, and the finish reason.
#[test]
fn streamed_and_unstreamed_tool_calls_agree() {
    for (stream, json) in [
        (
            "deepseek/vercel_chat_stream_tool_call.sse",
            "deepseek/vercel_chat_tool_call.json",
        ),
        (
            "qwen/vercel_chat_stream_tool_call.sse",
            "qwen/vercel_chat_tool_call.json",
        ),
        (
            "groq/vercel_chat_stream_tool_call.sse",
            "groq/vercel_chat_tool_call.json",
        ),
        (
            "xai/vercel_chat_stream_tool_call.sse",
            "xai/vercel_chat_tool_call.json",
        ),
    ] {
        let (_, s) = Oai::decode_stream(stream);
        let j = Oai::decode_json(json);
        assert_ne!(s.id, j.id, "{stream}: separate generations");
        assert_eq!(s.finish_reason(), j.finish_reason(), "{stream}");
        assert_eq!(s.tool_calls().len(), 1, "{stream}");
        assert_eq!(j.tool_calls().len(), 1, "{json}");
        let (a, b) = (&s.tool_calls()[0], &j.tool_calls()[0]);
        assert_eq!(a.function.name, b.function.name, "{stream}");
        let pa: Value = serde_json::from_str(&a.function.arguments).expect("JSON");
        let pb: Value = serde_json::from_str(&b.function.arguments).expect("JSON");
        assert_eq!(pa, pb, "{stream}: arguments");
    }
}

/// `StreamAccumulator` promises the response the call would have returned unstreamed. An
/// assistant turn that only calls tools decodes with `content` absent even when the vendor
/// sent `content: ""` (see `deepseek_vercel_tool_call_empty_content`); the fold of a stream
/// that sent `content: ""` beside its tool calls must look the same.
///
/// (`deepseek/vercel_chat_stream_tool_call.sse`'s first delta is
/// `{"role":"assistant","content":"",…}`, the only `content` key of the stream.)
#[test]
fn streamed_tool_call_turns_fold_like_unstreamed_ones() {
    for rel in [
        "deepseek/vercel_chat_stream_tool_call.sse",
        "qwen/vercel_chat_stream_tool_call.sse",
        "groq/vercel_chat_stream_tool_call.sse",
        "xai/vercel_chat_stream_tool_call.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
        "openai/chat_stream_tool_call_include_usage.sse",
        "openai/chat_stream_tool_call_non_strict.sse",
        "openai/chat_stream_tool_call_strict.sse",
        "openai/chat_stream_tool_call_strict_2.sse",
        "openai_compat/github_copilot_chat_stream_tool_call.sse",
    ] {
        let (_, r) = Oai::decode_stream(rel);
        assert!(!r.tool_calls().is_empty(), "{rel}");
        assert_eq!(
            r.choices[0].message.content, None,
            "{rel}: a tool-call turn with no text has no content"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Chunk logs
// ---------------------------------------------------------------------------------------------

/// Each `.sse` converted from a vercel chunk log: the `.sse` is exactly the log framed as
/// `data: <line>\n\n` plus `data: [DONE]\n\n`, every line decodes to one chunk, and the same
/// lines carry content.
#[test]
fn converted_streams_match_their_chunk_logs() {
    const PAIRS: &[&str] = &[
        "openai/azure_chat_stream_content_filter_results.chunks.jsonl",
        "openai/vercel_chat_stream_text_include_usage.chunks.jsonl",
        "deepseek/vercel_chat_stream_reasoning.chunks.jsonl",
        "deepseek/vercel_chat_stream_text.chunks.jsonl",
        "deepseek/vercel_chat_stream_tool_call.chunks.jsonl",
        "qwen/vercel_chat_stream_reasoning.chunks.jsonl",
        "qwen/vercel_chat_stream_text.chunks.jsonl",
        "qwen/vercel_chat_stream_tool_call.chunks.jsonl",
        "groq/vercel_chat_stream_reasoning.chunks.jsonl",
        "groq/vercel_chat_stream_tool_call.chunks.jsonl",
        "xai/vercel_chat_stream_text.chunks.jsonl",
        "xai/vercel_chat_stream_tool_call.chunks.jsonl",
        "perplexity/vercel_chat_stream_citations.chunks.jsonl",
    ];
    let frame = |lines: &[String]| -> String {
        lines
            .iter()
            .map(|l| format!("data: {l}\n\n"))
            .chain(std::iter::once("data: [DONE]\n\n".to_owned()))
            .collect()
    };
    for (sse, lines) in Oai::converted_streams(PAIRS, frame) {
        Oai::one_chunk_per_logged_line(&sse, &lines, |raw| {
            raw.iter().map(raw_chunk_has_content).collect()
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Stream endings: no [DONE], truncation
// ---------------------------------------------------------------------------------------------

#[test]
fn stream_with_finish_reason_but_no_done_finishes_ok() {
    for rel in [
        "openai/chat_stream_text_include_usage_gpt4o.sse",
        "openai/chat_stream_parallel_tool_calls.sse",
        "deepseek/chat_stream_reasoning_content.sse",
        "mistral/chat_stream_thinking.sse",
        "openrouter/chat_stream_reasoning.sse",
        "zai/chat_stream_reasoning_content.sse",
    ] {
        let text = read_str(rel);
        let (full_chunks, full) = Oai::decode_stream(rel);
        let without_done = text
            .strip_suffix("data: [DONE]\n\n")
            .unwrap_or_else(|| panic!("{rel} ends with [DONE]"));
        let (chunks, folded) = Oai::decode_stream_bytes(rel, without_done.as_bytes());
        assert_eq!(chunks, full_chunks, "{rel} without [DONE]");
        assert_eq!(folded, full, "{rel} without [DONE]");
        // Nor the blank line after the last event.
        let no_blank = without_done.strip_suffix('\n').expect("blank line");
        let (chunks, _) = Oai::decode_stream_bytes(rel, no_blank.as_bytes());
        assert_eq!(
            chunks, full_chunks,
            "{rel} without [DONE] and last blank line"
        );
    }
}

#[test]
fn stream_ending_right_after_the_finish_chunk_finishes_ok_without_usage() {
    let rel = "openai/chat_stream_text_include_usage_gpt4o.sse";
    let text = read_str(rel);
    let blocks = Oai::sse_blocks(&text);
    // Keep everything up to and including the finish chunk (drop usage chunk and [DONE]).
    let end = blocks[blocks.len() - 3].1;
    let (chunks, r) = Oai::decode_stream_bytes(rel, &text.as_bytes()[..end]);
    assert_eq!(chunks.len(), 32);
    assert_eq!(r.finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(r.usage, None);
}

/// A stream whose answer arrived whole (finish chunk and usage chunk) finishes OK wherever the
/// connection drops afterwards — also inside the `[DONE]` marker (`data: [DON`).
#[test]
fn stream_cut_inside_done_marker_after_a_whole_answer_finishes_ok() {
    let rel = "openai/chat_stream_text_include_usage_gpt4o.sse";
    let text = read_str(rel);
    let whole = Oai::decode_whole(text.as_bytes());
    assert_eq!(whole.chunks, Oai::decode_stream(rel).0);
    let done_at = text.rfind("data: [DONE]").expect("[DONE]");
    for end in [
        "data: ",
        "data: [",
        "data: [DON",
        "data: [DONE]",
        "data: [DONE]\n",
    ] {
        Oai::assert_cut_is_whole(rel, text.as_bytes(), &whole, done_at + end.len());
    }
}

#[test]
fn stream_cut_before_its_finish_chunk_is_interrupted() {
    let mut checked = 0;
    for rel in Oai::all_sse() {
        let text = read_str(&rel);
        let blocks = Oai::sse_blocks(&text);
        let Some(&(start, end)) = blocks
            .iter()
            .find(|(s, e)| block_json(&text[*s..*e]).is_some_and(|v| raw_chunk_finishes(&v)))
        else {
            continue; // no finish reason anywhere (Groq's error stream)
        };
        // (The OpenRouter stream ends in an error; its chunks before the error count.)
        let full_chunks = Oai::decode_whole(text.as_bytes()).chunks;
        let mid = start + (end - start) / 2;
        // Cut at the event boundary, just after `data: `, and in the middle of the JSON.
        for cut in [start, start + "data: ".len(), mid, end - 3] {
            Oai::assert_cut_is_interrupted(&rel, text.as_bytes(), &full_chunks, cut);
            // `finish()` on the plain API reports the same.
            let mut dec = Oai::stream_decoder();
            dec.feed(&text.as_bytes()[..cut])
                .expect("no error before the cut");
            let err = dec.finish().expect_err("cut stream");
            assert_eq!(
                err.kind(),
                ErrorKind::StreamInterrupted,
                "{rel} cut at {cut}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 37, "streams with a finish chunk");
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    // The role chunk and ten text chunks.
    Oai::interrupted_stream_reports_what_was_delivered(
        "openai/chat_stream_text_include_usage_gpt4o.sse",
        11,
        11,
        10,
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitrary splits
// ---------------------------------------------------------------------------------------------

#[test]
fn any_split_decodes_like_the_whole_body() {
    Oai::any_split_decodes_like_the_whole(38, false);
}

#[test]
fn one_byte_pieces_decode_like_the_whole_body() {
    Oai::one_byte_pieces_decode_like_the_whole();
}
