//! `cargo run --example cross_vendor`
//!
//! One request, three vendors with three wire formats: OpenAI fails, Claude (Anthropic
//! Messages) answers; then Claude is overloaded too and Gemini answers — the caller's code
//! does not change. A tool-call conversation started on one vendor continues on another.
//!
//! With no keys it runs on the built-in vendor simulator. With `OPENAI_API_KEY`,
//! `ANTHROPIC_API_KEY` and `GEMINI_API_KEY` set, it calls the real vendors (no failure is
//! injected then: the chain simply shows who answered).

use std::time::Duration;

use polyrelay::providers::{Anthropic, Gemini, OpenAi};
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{Chain, ChatRequest, ChatResponse, Message, Relay, Tool};
use serde_json::json;

fn chain() -> Chain {
    Chain::new()
        .target("openai/gpt-4o-mini")
        .target("anthropic/claude-sonnet-4-5")
        .target("gemini/gemini-2.5-flash")
        .total_timeout(Duration::from_secs(60))
}

fn show(label: &str, resp: &ChatResponse) {
    println!("{label}");
    println!("  answer:    {}", resp.text().trim());
    for call in resp.tool_calls() {
        println!(
            "  tool call: {}({})",
            call.function.name, call.function.arguments
        );
    }
    if let Some(by) = &resp.meta.served_by {
        println!("  served by: {by}");
    }
    for a in &resp.meta.attempts {
        let what = match &a.error {
            None => "ok".to_owned(),
            Some(e) => format!(
                "{} (HTTP {}): {}",
                e.kind(),
                e.status().unwrap_or(0),
                e.message()
            ),
        };
        println!("    - {} try {}: {what}", a.target, a.try_number);
    }
    println!();
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let real = (
        OpenAi::from_env(polyrelay::providers::openai::Preset::OPENAI),
        Anthropic::from_env(),
        Gemini::from_env(),
    );
    let mut sim = None;
    let relay = if let (Some(o), Some(a), Some(g)) = real {
        println!("Using the real OpenAI, Anthropic and Gemini APIs.\n");
        Relay::builder()
            .provider("openai", o)
            .provider("anthropic", a)
            .provider("gemini", g)
            .route("support", chain())
            .build()?
    } else {
        let s = Simulator::start().await?;
        println!(
            "Keys for all three vendors not set: using the simulator at {}.\n",
            s.base_url()
        );
        let base = s.base_url();
        let relay = Relay::builder()
            .provider(
                "openai",
                OpenAi::new("sk-sim").base_url(&format!("{base}/v1")),
            )
            .provider(
                "anthropic",
                Anthropic::new("sk-ant-sim").base_url(&format!("{base}/v1")),
            )
            .provider(
                "gemini",
                Gemini::new("gm-sim").base_url(&format!("{base}/v1beta")),
            )
            .route("support", chain())
            .build()?;
        sim = Some(s);
        relay
    };

    let question = ChatRequest::new("support")
        .system("You are a concise support agent.")
        .user("What's the weather where order #123 is going (Paris)?")
        .tool(Tool::function(
            "get_weather",
            "Current weather for a city",
            json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
        ));

    // 1. OpenAI fails; Claude answers with a tool call.
    if let Some(s) = &sim {
        s.script("gpt-4o-mini", [Reply::error(SimError::Server)]);
        s.script(
            "claude-sonnet-4-5",
            [Reply::tool_call("get_weather", r#"{"city":"Paris"}"#)],
        );
    }
    let turn1 = relay.chat(question.clone()).await?;
    show("Turn 1 (OpenAI down):", &turn1);

    // 2. Run the tool; now Claude is overloaded too, and Gemini picks up the conversation,
    //    tool call and result included, in its own wire format.
    if let Some(s) = &sim {
        s.script("claude-sonnet-4-5", [Reply::error(SimError::Overloaded)]);
        s.script(
            "gemini-2.5-flash",
            [Reply::text("It is 21 °C and sunny in Paris.")],
        );
    }
    let mut convo = question.message(turn1.choices[0].message.clone());
    for call in turn1.tool_calls() {
        convo = convo.message(Message::tool_result(
            call.id.clone(),
            r#"{"temp_c":21,"sky":"sunny"}"#,
        ));
    }
    let turn2 = relay.chat(convo).await?;
    show("Turn 2 (OpenAI down, Claude overloaded):", &turn2);
    Ok(())
}
