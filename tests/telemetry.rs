//! The names on the relay's spans: OpenTelemetry GenAI names and `relay.*` facts. In a test
//! binary of its own, so no concurrent test without a subscriber caches the span callsites as
//! uninteresting.

mod support;

use polyrelay::{Chain, ChatRequest, Relay};
use support::*;

fn relay_on(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", chain)
        .build()
        .expect("relay")
}

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

#[tokio::test]
async fn the_call_and_attempt_spans_carry_the_gen_ai_names() {
    use tracing_subscriber::fmt::format::FmtSpan;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let sim = sim().await;
    let relay = relay_on(&sim, Chain::of(["sim/gpt-4o"]));
    let resp = relay
        .chat(ChatRequest::new("r").intent("billing").user("hi"))
        .await
        .unwrap();
    let text = logs.text();
    let u = resp.usage.unwrap();
    for want in [
        "gen_ai.operation.name=\"chat\"",
        "gen_ai.request.model=r",
        "gen_ai.response.model=\"gpt-4o\"",
        &format!("gen_ai.usage.input_tokens={}", u.input_tokens),
        &format!("gen_ai.usage.output_tokens={}", u.output_tokens),
        "gen_ai.provider.name=\"sim\"",
        "relay.route=r",
        "relay.intent=\"billing\"",
        "relay.served_by=sim/gpt-4o",
        "relay.cost_usd=",
        "gen_ai.request.model=gpt-4o",
        "relay.try_number=1",
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
}
