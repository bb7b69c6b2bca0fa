//! `cargo run --example quickstart`
//!
//! A support-bot route: OpenAI first, DeepSeek when OpenAI fails. With no API keys in the
//! environment it runs against the built-in vendor simulator on loopback, where "OpenAI"
//! answers 503 so the failover is visible. With `OPENAI_API_KEY` and/or `DEEPSEEK_API_KEY`
//! set, it calls the real vendors instead.

use std::time::Duration;

use futures::StreamExt;
use polyrelay::providers::OpenAi;
use polyrelay::providers::openai::Preset;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{Chain, ChatRequest, Relay, Target};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let openai = OpenAi::from_env(Preset::OPENAI);
    let deepseek = OpenAi::from_env(Preset::DEEPSEEK);
    // Keep the simulator alive for the whole run when we use it.
    let mut _simulator = None;

    let builder = if openai.is_some() || deepseek.is_some() {
        println!("Using the real vendors whose keys are set.\n");
        let mut chain = Chain::new();
        let mut b = Relay::builder();
        if let Some(p) = openai {
            b = b.provider("openai", p);
            chain = chain.target(
                Target::new("openai", "gpt-4o-mini").attempt_timeout(Duration::from_secs(20)),
            );
        }
        if let Some(p) = deepseek {
            b = b.provider("deepseek", p);
            chain = chain.target(
                Target::new("deepseek", "deepseek-chat").attempt_timeout(Duration::from_secs(30)),
            );
        }
        b.route("support", chain.total_timeout(Duration::from_secs(60)))
    } else {
        let sim = Simulator::start().await?;
        println!(
            "No API keys set: using the vendor simulator at {}.",
            sim.base_url()
        );
        println!("Its \"OpenAI\" answers 503 Service Unavailable; its \"DeepSeek\" answers.\n");
        sim.script(
            "gpt-4o-mini",
            [Reply::openai_error(
                503,
                "server_error",
                None,
                "The engine is currently overloaded, please try again later",
            )],
        );
        sim.script(
            "deepseek-chat",
            [Reply::openai_text(
                "Order #123 left our warehouse this morning; it should arrive within two days.",
            )
            .delay(Duration::from_millis(40))],
        );
        let url = format!("{}/v1", sim.base_url());
        _simulator = Some(sim);
        Relay::builder()
            .provider("openai", OpenAi::new("sk-simulated").base_url(&url))
            .provider("deepseek", OpenAi::deepseek("sk-simulated").base_url(&url))
            .route(
                "support",
                // A 2.5 s response window on OpenAI, then DeepSeek; 10 s for the whole call.
                Chain::new()
                    .target(
                        Target::new("openai", "gpt-4o-mini")
                            .attempt_timeout(Duration::from_millis(2500))
                            .first_token_timeout(Duration::from_millis(2500)),
                    )
                    .target("deepseek/deepseek-chat")
                    .total_timeout(Duration::from_secs(10)),
            )
    };
    let relay = builder.build()?;

    let question = ChatRequest::new("support")
        .system("You are a concise support agent.")
        .user("Where is my order #123?");

    let resp = relay.chat(&question).await?;
    println!("answer:    {}", resp.text());
    if let Some(by) = &resp.meta.served_by {
        println!("served by: {by}");
    }
    if let Some(u) = &resp.usage {
        println!(
            "usage:     {} in / {} out tokens",
            u.input_tokens, u.output_tokens
        );
    }
    println!("latency:   {} ms", resp.meta.latency.as_millis());
    println!("attempts:  {}", resp.meta.attempts.len());
    for (i, a) in resp.meta.attempts.iter().enumerate() {
        let status = a.status.map(|s| format!(" HTTP {s}")).unwrap_or_default();
        let outcome = match &a.error {
            None => format!("{}{status}", a.outcome),
            Some(e) => format!("{}{status} → {}", a.outcome, e.message()),
        };
        println!(
            "  #{} {} try {} in {} ms: {outcome}",
            i + 1,
            a.target,
            a.try_number,
            a.latency.as_millis()
        );
    }

    println!("\nThe same question, streamed:");
    let mut stream = relay.chat_stream(&question).await?;
    if let Some(by) = &stream.meta().served_by {
        print!("[{by}] ");
    }
    while let Some(chunk) = stream.next().await {
        if let Some(text) = chunk?.text() {
            print!("{text}");
        }
    }
    println!();
    Ok(())
}
