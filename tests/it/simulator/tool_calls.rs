//! Tool calls in every dialect.

use super::*;

#[tokio::test]
async fn tool_calls_in_every_dialect() {
    let sim = Simulator::start().await.expect("start");
    let args = r#"{"location":"San Francisco, CA","units":"f"}"#;
    let args_value = parse(args);
    sim.script("tools", [Reply::tool_call("get_weather", args)]);

    // OpenAI, plain and streamed.
    let body: Value = post_to(&chat_url(&sim), &chat("tools", false))
        .await
        .json()
        .await
        .expect("json");
    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_sim_0_0");
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], args);
    assert_covers(
        "openai/chat_tool_calls.json",
        &body,
        &[
            "/service_tier",
            "/usage/completion_tokens_details/accepted_prediction_tokens",
            "/usage/completion_tokens_details/audio_tokens",
            "/usage/completion_tokens_details/rejected_prediction_tokens",
            "/usage/prompt_tokens_details/audio_tokens",
        ],
    );

    let text = body_text(post_to(&chat_url(&sim), &chat("tools", true)).await).await;
    let data = data_lines(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|d| parse(d)).collect();
    let first = &chunks[0]["choices"][0]["delta"]["tool_calls"][0];
    assert_eq!(first["id"], "call_sim_1_0");
    assert_eq!(first["function"]["name"], "get_weather");
    assert_eq!(first["function"]["arguments"], "");
    let streamed: String = chunks[1..]
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    assert_eq!(streamed, args);
    assert!(chunks.len() > 4, "arguments arrive in fragments");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );

    // Anthropic, plain and streamed.
    let body: Value = post_to(&messages_url(&sim), &messages("tools", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["id"], "toolu_sim_2_0");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], args_value);
    assert_covers("anthropic/messages_tool_use_empty_input.json", &body, &[]);
    assert_covers(
        "anthropic/vercel_messages_tool_use_json.json",
        &body,
        &["/content/[]/input/elements"],
    );

    let text = body_text(post_to(&messages_url(&sim), &messages("tools", true)).await).await;
    let events = sse_events(&text);
    let names = event_names(&events);
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    let data: Vec<Value> = events.iter().map(|(_, d)| parse(d)).collect();
    let block = &data[1]["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["id"], "toolu_sim_3_0");
    assert_eq!(block["name"], "get_weather");
    assert_eq!(block["input"], json!({}));
    let fragments: Vec<&str> = data[3..data.len() - 3]
        .iter()
        .map(|d| {
            assert_eq!(d["delta"]["type"], "input_json_delta");
            d["delta"]["partial_json"].as_str().expect("partial_json")
        })
        .collect();
    assert_eq!(fragments[0], "");
    assert_eq!(parse(&fragments.concat()), args_value);
    assert_eq!(data[data.len() - 2]["delta"]["stop_reason"], "tool_use");

    // Gemini, plain and streamed (the call arrives whole, in one chunk).
    let body: Value = post_to(&gemini_url(&sim, "tools", "generateContent"), &contents())
        .await
        .json()
        .await
        .expect("json");
    let candidate = &body["candidates"][0];
    assert_eq!(candidate["finishReason"], "STOP");
    assert_eq!(
        candidate["content"]["parts"][0]["functionCall"],
        json!({"name": "get_weather", "args": args_value})
    );
    assert_covers(
        "gemini/generate_function_call.json",
        &body,
        &[
            "/candidates/[]/content/parts/[]/thoughtSignature",
            "/candidates/[]/content/parts/[]/functionCall/args/country",
            "/candidates/[]/finishMessage",
            "/usageMetadata/thoughtsTokenCount",
        ],
    );

    let url = gemini_url(&sim, "tools", "streamGenerateContent?alt=sse");
    let text = body_text(post_to(&url, &contents()).await).await;
    assert!(text.ends_with("\r\n\r\n"));
    let chunks: Vec<Value> = sse_events(&text).iter().map(|(_, d)| parse(d)).collect();
    assert_eq!(chunks.len(), 1);
    assert_eq!(
        chunks[0]["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        args_value
    );
    assert_eq!(chunks[0]["candidates"][0]["finishReason"], "STOP");
    let recorded = events_of_fixture("gemini/stream_function_call.sse");
    if let Err(error) = covers(
        &recorded[0],
        &chunks[0],
        "",
        &[
            "/candidates/[]/content/parts/[]/functionCall/args/country",
            "/usageMetadata/candidatesTokensDetails",
        ],
    ) {
        panic!("stream_function_call.sse: {error}");
    }

    // The explicit helpers answer in their own dialect whatever the path.
    sim.script("explicit", [Reply::anthropic_tool_call("f", "{}")]);
    let body: Value = post_to(&chat_url(&sim), &chat("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["content"][0]["type"], "tool_use");
    sim.script("explicit", [Reply::gemini_tool_call("f", "not json")]);
    let body: Value = post_to(&chat_url(&sim), &chat("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["candidates"][0]["content"]["parts"][0]["functionCall"]["args"],
        json!({})
    );
    sim.script("explicit", [Reply::openai_tool_call("f", "{\"a\":1}")]);
    let body: Value = post_to(&messages_url(&sim), &messages("explicit", false))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{\"a\":1}"
    );
}
