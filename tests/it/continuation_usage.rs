//! Usage after a mid-stream continuation (issue 23, point 7): the usage handed out covers
//! the whole answer — the interrupted part's report plus the continuation's — and the
//! answer is flagged partial when the interrupted part's report leaves some of its text out.
//! And a gateway over a route whose recovery may restart an answer warns at start.

use futures::StreamExt;
#[cfg(feature = "gateway")]
use polyrelay::gateway::GatewayOptions;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{ChatRequest, MidStreamRecovery, Relay, RetryPolicy, Target};
#[cfg(feature = "gateway")]
use serde_json::{Value, json};

#[cfg(feature = "gateway")]
use crate::gateway::{Gateway, KEY, gateway, get_json};
use crate::support::{drain, guarded, joined, three_dialects};

/// Route `r`: `primary` (a cut stream), then `continuer`, which takes an assistant prefill.
fn continuing(sim: &Simulator, primary: &str, continuer: &str) -> Relay {
    let (p, m) = continuer.split_once('/').unwrap();
    three_dialects(sim)
        .route(
            "r",
            polyrelay::Chain::new()
                .target(primary)
                .target(Target::new(p, m).prefill(true))
                .retry(RetryPolicy::no_retries())
                .mid_stream_recovery(MidStreamRecovery::Continue),
        )
        .build()
        .unwrap()
}

/// A streamed request to route `r` through `gw` with `include_usage`: its raw body, checked
/// to end with `[DONE]`, and the JSON of its events before that.
#[cfg(feature = "gateway")]
async fn streamed(gw: &Gateway, question: &str) -> (String, Vec<Value>) {
    let body = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .json(&json!({
            "model": "r",
            "messages": [{ "role": "user", "content": question }],
            "stream": true,
            "stream_options": { "include_usage": true },
        }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    let events = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    (body, events)
}

/// Gemini reports cumulative usage on every chunk, so a Gemini stream cut after two chunks
/// has reported its part in full: through the gateway, the client's final usage chunk is
/// that part's usage plus the continuation's, as the stats count the two attempts.
#[cfg(feature = "gateway")]
#[tokio::test]
async fn through_the_gateway_the_usage_after_a_continuation_covers_both_parts() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "gemini-2.5-flash",
        [Reply::gemini_stream_text(&["Grüße ", "aus ", "Berlin ", "und ", "Bonn"]).cut_after(2)],
    );
    sim.script(
        "claude-sonnet-4-5",
        [Reply::anthropic_stream_text(&["Köln ", "am ", "Rhein!"])],
    );
    let relay = continuing(
        &sim,
        "gemini/gemini-2.5-flash",
        "anthropic/claude-sonnet-4-5",
    );
    let gw = gateway(relay, GatewayOptions::new().client_key(KEY)).await;
    let (body, events) = streamed(&gw, "Grüße aus?").await;
    let text: String = events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "Grüße aus Köln am Rhein!", "{body}");
    // One usage chunk, the last, `choices: []`.
    let usage: Vec<&Value> = events.iter().filter(|e| !e["usage"].is_null()).collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert_eq!(usage[0]["choices"], json!([]), "{body}");
    // Both parts reported in full: no flag.
    assert!(usage[0].get("polyrelay").is_none(), "{body}");
    let usage = &usage[0]["usage"];

    // What each part reported, as the stats count it per attempt.
    let stats = get_json(&gw.url, "/stats").await;
    let rows = stats["total"].as_array().unwrap();
    let row = |provider: &str| {
        rows.iter()
            .find(|r| r["provider"] == provider)
            .unwrap_or_else(|| panic!("a {provider} row: {stats:#}"))
    };
    let (cut, cont) = (row("gemini"), row("anthropic"));
    let tokens = |r: &Value, f: &str| r[f].as_u64().unwrap();
    assert!(
        tokens(cut, "output_tokens") > 0,
        "the cut part reported: {cut}"
    );
    let prompt = tokens(cut, "input_tokens") + tokens(cont, "input_tokens");
    let completion = tokens(cut, "output_tokens") + tokens(cont, "output_tokens");
    assert_eq!(
        (
            usage["prompt_tokens"].as_u64(),
            usage["completion_tokens"].as_u64(),
            usage["total_tokens"].as_u64()
        ),
        (Some(prompt), Some(completion), Some(prompt + completion)),
        "the client's usage against the parts': {usage} / {cut} / {cont}"
    );
}

/// In the relay: the same continuation is whole (not flagged partial), its usage the sum;
/// an Anthropic stream cut mid-answer reported its input at `message_start` but not the
/// text after it, so the sum is flagged partial.
#[tokio::test]
async fn a_continued_answer_sums_its_parts_and_is_partial_only_when_a_part_is_uncounted() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "gemini-2.5-flash",
        [Reply::gemini_stream_text(&["Grüße ", "aus ", "Berlin"]).cut_after(2)],
    );
    sim.script(
        "claude-sonnet-4-5",
        [Reply::anthropic_stream_text(&["Köln!"])],
    );
    let relay = continuing(
        &sim,
        "gemini/gemini-2.5-flash",
        "anthropic/claude-sonnet-4-5",
    );
    let mut stream = guarded(relay.chat_stream(ChatRequest::new("r").user("Grüße?")))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    let parts: Vec<_> = meta.attempts.iter().map(|a| a.usage.unwrap()).collect();
    let last = chunks.iter().rev().find_map(|c| c.usage).unwrap();
    assert_eq!(
        (last.input_tokens, last.output_tokens),
        (
            parts[0].input_tokens + parts[1].input_tokens,
            parts[0].output_tokens + parts[1].output_tokens
        ),
        "{parts:?}"
    );
    assert!(!meta.usage_partial, "both parts reported in full");

    // Anthropic cut after its first text delta (message_start, content_block_start, ping,
    // one delta): its usage so far is its input, not the text it sent.
    sim.clear();
    sim.script(
        "claude-sonnet-4-5",
        [Reply::anthropic_stream_text(&["Grüße ", "aus ", "Berlin"]).cut_after(4)],
    );
    sim.script("gpt-4o", [Reply::openai_stream_text(&["aus Köln!"])]);
    let relay = continuing(&sim, "anthropic/claude-sonnet-4-5", "openai/gpt-4o");
    let mut stream = guarded(relay.chat_stream(ChatRequest::new("r").user("Grüße?")))
        .await
        .unwrap();
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Grüße aus Köln!");
    let meta = stream.meta();
    let cut = meta.attempts[0].usage.expect("message_start's usage");
    let own = meta.attempts[1].usage.unwrap();
    let last = chunks.iter().rev().find_map(|c| c.usage).unwrap();
    assert_eq!(
        (last.input_tokens, last.output_tokens),
        (
            cut.input_tokens + own.input_tokens,
            cut.output_tokens + own.output_tokens
        )
    );
    assert!(meta.usage_partial, "the cut part's text is not counted");
    let _ = stream.next().await;
}

/// Through the gateway, a continued answer whose usage leaves part of it out says so in its
/// final usage chunk: an Anthropic stream cut after its first delta reported its input, not
/// the text it sent.
#[cfg(feature = "gateway")]
#[tokio::test]
async fn through_the_gateway_a_partial_usage_is_flagged_to_the_client() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "claude-sonnet-4-5",
        [Reply::anthropic_stream_text(&["Grüße ", "aus ", "Berlin"]).cut_after(4)],
    );
    sim.script("gpt-4o", [Reply::openai_stream_text(&["aus Köln!"])]);
    let relay = continuing(&sim, "anthropic/claude-sonnet-4-5", "openai/gpt-4o");
    let gw = gateway(relay, GatewayOptions::new().client_key(KEY)).await;
    let (body, events) = streamed(&gw, "Grüße?").await;
    let usage: Vec<&Value> = events.iter().filter(|e| !e["usage"].is_null()).collect();
    assert_eq!(usage.len(), 1, "{body}");
    assert_eq!(
        usage[0]["polyrelay"],
        json!({ "usage_partial": true }),
        "{body}"
    );
    assert_eq!(usage[0]["object"], "chat.completion.chunk", "{body}");
}

/// A gateway over a route whose recovery may restart an answer it has already sent
/// (`continue` falls back to a restart when no prefill target is left) warns at start,
/// naming the route; over `continue_only` it says nothing.
#[cfg(feature = "gateway")]
#[tokio::test]
async fn a_gateway_over_a_route_that_may_restart_an_answer_warns_at_start() {
    let sim = Simulator::start().await.unwrap();
    let warned = |relay: Relay| {
        let (logs, guard) = crate::support::CapturedLogs::start();
        drop(polyrelay::gateway::router(relay, GatewayOptions::new()));
        drop(guard);
        logs.text()
    };
    let logs = warned(continuing(
        &sim,
        "gemini/gemini-2.5-flash",
        "anthropic/claude-sonnet-4-5",
    ));
    assert!(
        logs.contains("WARN") && logs.contains("relay.route=r") && logs.contains("continue_only"),
        "{logs}"
    );
    let only = three_dialects(&sim)
        .route(
            "r",
            polyrelay::Chain::of(["gemini/gemini-2.5-flash"])
                .mid_stream_recovery(MidStreamRecovery::ContinueOnly),
        )
        .build()
        .unwrap();
    let logs = warned(only);
    assert!(!logs.contains("mid-stream recovery"), "{logs}");
}
