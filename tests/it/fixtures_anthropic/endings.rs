//! Stream endings and arbitrary splits.

use super::*;

// ---------------------------------------------------------------------------------------------
// Stream endings
// ---------------------------------------------------------------------------------------------

fn successful_streams() -> Vec<String> {
    Ant::all_sse()
        .into_iter()
        .filter(|f| !f.contains("error_event"))
        .collect()
}

/// Without `message_stop` (or only part of it) a stream whose stop reason arrived is whole;
/// cut before its `message_delta` it is interrupted, delivering a prefix of its chunks.
#[test]
fn stream_endings() {
    for rel in successful_streams() {
        let text = read_str(&rel);
        let whole = Ant::decode_whole(text.as_bytes());
        let (full_chunks, full) = Ant::decode_stream(&rel);
        assert_eq!((&whole.chunks, fold(&whole.chunks)), (&full_chunks, full));
        let blocks = Ant::sse_blocks(&text);
        let stop = blocks
            .iter()
            .position(|(s, e)| event_json(&text[*s..*e])["type"] == "message_stop")
            .expect("message_stop");
        let delta = blocks
            .iter()
            .position(|(s, e)| event_json(&text[*s..*e])["type"] == "message_delta")
            .expect("message_delta");
        let (stop_start, stop_end) = blocks[stop];
        // Whole after the stop reason: no message_stop, or cut inside it.
        for cut in [
            stop_start,
            stop_start + 10,
            (stop_start + stop_end) / 2,
            stop_end - 2,
        ] {
            Ant::assert_cut_is_whole(&rel, text.as_bytes(), &whole, cut);
        }
        // Interrupted before it: at the message_delta, inside it, and mid-stream.
        let (ds, de) = blocks[delta];
        for cut in [ds, (ds + de) / 2, de - 3, blocks[1].1] {
            Ant::assert_cut_is_interrupted(&rel, text.as_bytes(), &full_chunks, cut);
        }
    }
}

#[test]
fn interrupted_stream_reports_what_was_delivered() {
    // message_start, block start, ping and three text deltas.
    Ant::interrupted_stream_reports_what_was_delivered(
        "anthropic/vercel_messages_stream_text.sse",
        6,
        4,
        3,
    );
}

// ---------------------------------------------------------------------------------------------
// Arbitrary splits

// ---------------------------------------------------------------------------------------------
// Arbitrary splits
// ---------------------------------------------------------------------------------------------

#[test]
fn any_split_decodes_like_the_whole_body() {
    Ant::any_split_decodes_like_the_whole(10, false);
}

#[test]
fn one_byte_pieces_decode_like_the_whole_body() {
    Ant::one_byte_pieces_decode_like_the_whole();
}
