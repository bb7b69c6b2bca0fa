//! `cargo run --example streaming`
//!
//! Real-time chat with a 2.5 s response window: the primary vendor accepts the request but
//! is slow to produce its first token, so the relay abandons it inside the window and the
//! fallback's answer streams live. Runs on the built-in vendor simulator: no keys, no network.

use std::io::Write;
use std::time::{Duration, Instant};

use futures::StreamExt;
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{Chain, ChatRequest, ChunkKind, Relay, Target};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start().await?;
    // The primary: headers at once, then 20 s before each token (a vendor under load).
    sim.script(
        "gpt-4o",
        [Reply::openai_stream_text(&["Too ", "late."]).frame_delay(Duration::from_secs(20))],
    );
    // The fallback: a token every 60 ms.
    let answer = "Your order #123 left the warehouse this morning and should arrive on Thursday. \
                  You will get a tracking link by email within the hour.";
    let pieces: Vec<&str> = answer.split_inclusive(' ').collect();
    sim.script(
        "deepseek-chat",
        [Reply::openai_stream_text(&pieces).frame_delay(Duration::from_millis(60))],
    );

    let url = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .provider("openai", OpenAi::new("sk-simulated").base_url(&url))
        .provider("deepseek", OpenAi::deepseek("sk-simulated").base_url(&url))
        .route(
            "chat",
            Chain::new()
                .target(
                    Target::new("openai", "gpt-4o")
                        .first_token_timeout(Duration::from_millis(2500)),
                )
                .target("deepseek/deepseek-chat")
                .stream_idle_timeout(Duration::from_secs(10))
                .total_timeout(Duration::from_secs(30)),
        )
        .build()?;

    println!("Primary (simulated \"OpenAI\") will not produce a token for 20 s; window: 2.5 s.\n");
    let started = Instant::now();
    let mut stream = relay
        .chat_stream(ChatRequest::new("chat").user("Where is my order #123?"))
        .await?;
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if chunk.kind == ChunkKind::Restart {
            println!("\n[restarting on another target]");
            continue;
        }
        if let Some(text) = chunk.text().filter(|t| !t.is_empty()) {
            if first {
                let by = chunk
                    .target
                    .as_ref()
                    .map(|t| t.to_string())
                    .unwrap_or_default();
                println!(
                    "[first token after {} ms, from {by}]",
                    started.elapsed().as_millis()
                );
                first = false;
            }
            print!("{text}");
            std::io::stdout().flush()?;
        }
    }
    println!("\n\n[done in {} ms]", started.elapsed().as_millis());
    for a in &stream.meta().attempts {
        let outcome = a
            .failure()
            .map(|k| k.to_string())
            .unwrap_or_else(|| "ok".into());
        println!(
            "  attempt {} try {}: {outcome} after {} ms",
            a.target,
            a.try_number,
            a.latency.as_millis()
        );
    }
    Ok(())
}
