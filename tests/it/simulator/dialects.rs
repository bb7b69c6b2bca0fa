//! The Anthropic Messages and Google Gemini dialects: JSON and stream shapes against the
//! vendors' recordings, and text answered in the dialect of the path.

use super::*;

#[tokio::test]
async fn anthropic_messages_json_shape() {
    let sim = Simulator::start().await.expect("start");
    let response = post_to(&messages_url(&sim), &messages("claude-sim", false)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["request-id"], "req_sim_0");
    let text = body_text(response).await;
    assert!(
        text.starts_with(r#"{"model":"claude-sim","id":"msg_sim_0","type":"message","#),
        "{text}"
    );
    let body = parse(&text);
    assert_eq!(body["type"], "message");
    assert_eq!(body["role"], "assistant");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": DEFAULT_TEXT}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["stop_sequence"], Value::Null);
    let usage = &body["usage"];
    assert_eq!(usage["input_tokens"], 5);
    assert_eq!(usage["output_tokens"], 9);
    assert_eq!(usage["cache_creation_input_tokens"], 0);
    assert_eq!(usage["cache_read_input_tokens"], 0);
    assert_eq!(
        usage["cache_creation"],
        json!({"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0})
    );
    assert_covers("anthropic/messages_text.json", &body, &[]);
    assert_covers("anthropic/vercel_messages_text.json", &body, &[]);

    let request = &sim.requests()[0];
    assert_eq!(request.model.as_deref(), Some("claude-sim"));
    assert_eq!(request.dialect(), Dialect::Anthropic);
    assert!(!request.is_stream());
}

#[tokio::test]
async fn anthropic_stream_sends_the_events_in_order() {
    let sim = Simulator::start().await.expect("start");
    let response = post_to(&messages_url(&sim), &messages("claude-sim", true)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(response.headers()["request-id"], "req_sim_0");
    let text = body_text(response).await;
    assert!(!text.contains("[DONE]"));
    assert!(!text.contains('\r'));
    let events = sse_events(&text);
    assert_eq!(
        event_names(&events),
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    // The event name is the data's `type`; the ping is sent exactly as Anthropic sends it.
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    for ((name, _), value) in events.iter().zip(&data) {
        assert_eq!(value["type"].as_str(), name.as_deref());
    }
    assert!(
        text.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "{text}"
    );
    let start = &data[0]["message"];
    assert_eq!(start["id"], "msg_sim_0");
    assert_eq!(start["model"], "claude-sim");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    assert_eq!(start["usage"]["input_tokens"], 5);
    assert_eq!(start["usage"]["cache_read_input_tokens"], 0);
    assert_eq!(
        data[1]["content_block"],
        json!({"type": "text", "text": ""})
    );
    let pieces: Vec<&str> = data[3..8]
        .iter()
        .map(|d| {
            assert_eq!(d["index"], 0);
            assert_eq!(d["delta"]["type"], "text_delta");
            d["delta"]["text"].as_str().expect("text")
        })
        .collect();
    assert_eq!(pieces, DEFAULT_PIECES);
    assert_eq!(data[8]["index"], 0);
    assert_eq!(
        data[9]["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(data[9]["usage"]["output_tokens"], 9);
    assert_eq!(data[9]["usage"]["input_tokens"], 5);
    assert!(sim.requests()[0].is_stream());

    // The explicit helper streams whatever the request asks, in its own pieces.
    sim.script("pieces", [Reply::anthropic_stream_text(&["Hel", "lo"])]);
    let text = body_text(post_to(&messages_url(&sim), &messages("pieces", false)).await).await;
    let deltas: Vec<String> = sse_events(&text)
        .iter()
        .filter(|(name, _)| name.as_deref() == Some("content_block_delta"))
        .map(|(_, d)| parse(d)["delta"]["text"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(deltas, ["Hel", "lo"]);
}

#[tokio::test]
async fn anthropic_stream_is_one_http_chunk_per_event() {
    let sim = Simulator::start().await.expect("start");
    sim.script("chunks", [Reply::anthropic_text("a b")]);
    let body = messages("chunks", true).to_string();
    let request = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let raw = raw_exchange(&sim, request.as_bytes()).await;
    let (head, body) = split_head(&raw);
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let (sizes, data) = dechunk(body);
    let text = String::from_utf8(data).expect("utf8");
    let frames: Vec<usize> = text.split_inclusive("\n\n").map(str::len).collect();
    assert_eq!(sizes, frames);
    // message_start, content_block_start, ping, two deltas, content_block_stop,
    // message_delta, message_stop.
    assert_eq!(sizes.len(), 8, "{text}");
}

#[tokio::test]
async fn gemini_generate_content_json_shape() {
    let sim = Simulator::start().await.expect("start");
    let url = gemini_url(&sim, "gemini-sim", "generateContent");
    let response = post_to(&url, &contents()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let text = body_text(response).await;
    // Pretty-printed, as Google sends it.
    assert!(
        text.starts_with("{\n  \"candidates\": [\n    {\n"),
        "{text}"
    );
    let body = parse(&text);
    let candidate = &body["candidates"][0];
    assert_eq!(
        candidate["content"],
        json!({"parts": [{"text": DEFAULT_TEXT}], "role": "model"})
    );
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(candidate["index"], 0);
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 5);
    assert_eq!(usage["candidatesTokenCount"], 9);
    assert_eq!(usage["totalTokenCount"], 14);
    assert_eq!(
        usage["promptTokensDetails"],
        json!([{"modality": "TEXT", "tokenCount": 5}])
    );
    assert_eq!(body["modelVersion"], "gemini-sim");
    assert_eq!(body["responseId"], "simResponse000000000000");
    assert_covers(
        "gemini/vercel_text.json",
        &body,
        &[
            "/candidates/[]/content/parts/[]/thoughtSignature",
            "/usageMetadata/thoughtsTokenCount",
        ],
    );
    assert_covers(
        "gemini/generate_text.json",
        &body,
        &["/usageMetadata/thoughtsTokenCount"],
    );

    let request = &sim.requests()[0];
    assert_eq!(request.model.as_deref(), Some("gemini-sim"));
    assert_eq!(request.dialect(), Dialect::Gemini);
    assert!(!request.is_stream());
}

#[tokio::test]
async fn gemini_stream_uses_crlf_frames_with_cumulative_usage() {
    let sim = Simulator::start().await.expect("start");
    let url = gemini_url(&sim, "gemini-sim", "streamGenerateContent?alt=sse");
    let response = post_to(&url, &contents()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let text = body_text(response).await;
    // CRLF framing throughout: every LF belongs to a CRLF, every event ends with a blank line.
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    let frames: Vec<&str> = text.split_inclusive("\r\n\r\n").collect();
    assert_eq!(frames.len(), 5, "{text}");
    let mut last_count = 0;
    for (i, frame) in frames.iter().enumerate() {
        let payload = frame
            .strip_prefix("data: ")
            .and_then(|f| f.strip_suffix("\r\n\r\n"))
            .unwrap_or_else(|| panic!("frame {frame:?}"));
        // Gemini's stream spacing: `": "` after keys, nothing after commas.
        assert!(
            payload.starts_with(r#"{"candidates": [{"content": {"parts": [{"text": "#),
            "{payload}"
        );
        let chunk = parse(payload);
        let candidate = &chunk["candidates"][0];
        assert_eq!(candidate["content"]["parts"][0]["text"], DEFAULT_PIECES[i]);
        assert_eq!(candidate["content"]["role"], "model");
        let usage = &chunk["usageMetadata"];
        assert_eq!(usage["promptTokenCount"], 5);
        let count = usage["candidatesTokenCount"].as_u64().expect("count");
        assert!(count >= last_count, "usage is cumulative");
        last_count = count;
        assert_eq!(usage["totalTokenCount"].as_u64(), Some(5 + count));
        assert_eq!(chunk["modelVersion"], "gemini-sim");
        assert_eq!(chunk["responseId"], "simResponse000000000000");
        if i == 4 {
            assert_eq!(candidate["finishReason"], "STOP");
            assert_eq!(count, 9);
        } else {
            assert!(candidate.get("finishReason").is_none(), "{payload}");
        }
    }
    let request = &sim.requests()[0];
    assert!(request.is_stream());
    assert_eq!(request.model.as_deref(), Some("gemini-sim"));

    // Without alt=sse: one JSON array, one element per HTTP chunk.
    let url = gemini_url(&sim, "gemini-sim", "streamGenerateContent");
    let response = post_to(&url, &contents()).await;
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=UTF-8"
    );
    let array = parse(&body_text(response).await);
    let texts: Vec<&str> = array
        .as_array()
        .expect("array")
        .iter()
        .map(|c| {
            c["candidates"][0]["content"]["parts"][0]["text"]
                .as_str()
                .unwrap_or("")
        })
        .collect();
    assert_eq!(texts, DEFAULT_PIECES);

    // The explicit helper, in its own pieces.
    sim.script("pieces", [Reply::gemini_stream_text(&["Hel", "lo"])]);
    let url = gemini_url(&sim, "pieces", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(chunks.len(), 2);
    assert_eq!(
        chunks[1]["candidates"][0]["content"]["parts"][0]["text"],
        "lo"
    );
    assert_eq!(chunks[1]["candidates"][0]["finishReason"], "STOP");
}

#[tokio::test]
async fn text_answers_in_the_dialect_of_the_path() {
    let sim = Simulator::start().await.expect("start");
    sim.script("any", [Reply::text("Same words.")]);

    let openai: Value = post_to(&chat_url(&sim), &chat("any", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(openai["object"], "chat.completion");
    assert_eq!(openai["choices"][0]["message"]["content"], "Same words.");

    let anthropic: Value = post_to(&messages_url(&sim), &messages("any", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(anthropic["type"], "message");
    assert_eq!(anthropic["content"][0]["text"], "Same words.");

    let gemini: Value = post_to(&gemini_url(&sim, "any", "generateContent"), &contents())
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        gemini["candidates"][0]["content"]["parts"][0]["text"],
        "Same words."
    );

    // Streamed, each in its own framing.
    let openai = body_text(post_to(&chat_url(&sim), &chat("any", true)).await).await;
    assert!(openai.ends_with("data: [DONE]\n\n"), "{openai}");
    let anthropic = body_text(post_to(&messages_url(&sim), &messages("any", true)).await).await;
    assert!(
        anthropic.starts_with("event: message_start\n"),
        "{anthropic}"
    );
    assert!(
        anthropic.contains("\nevent: message_stop\ndata: "),
        "{anthropic}"
    );
    let gemini = body_text(
        post_to(
            &gemini_url(&sim, "any", "streamGenerateContent?alt=sse"),
            &contents(),
        )
        .await,
    )
    .await;
    assert!(gemini.starts_with("data: {\"candidates\": "), "{gemini}");
    assert!(gemini.ends_with("\r\n\r\n"));

    let dialects: Vec<(Dialect, bool)> = sim
        .requests()
        .iter()
        .map(|r| (r.dialect(), r.is_stream()))
        .collect();
    assert_eq!(
        dialects,
        [
            (Dialect::OpenAi, false),
            (Dialect::Anthropic, false),
            (Dialect::Gemini, false),
            (Dialect::OpenAi, true),
            (Dialect::Anthropic, true),
            (Dialect::Gemini, true),
        ]
    );
    assert_eq!(sim.requests_for("any").len(), 6);
    assert_eq!(
        Dialect::of_path("/v1/messages?beta=true"),
        Dialect::Anthropic
    );
    assert_eq!(
        Dialect::of_path("/v1beta/openai/chat/completions"),
        Dialect::OpenAi
    );
}
