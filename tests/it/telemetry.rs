//! The names on the relay's spans: OpenTelemetry GenAI names and `relay.*` facts. In a test
//! binary of its own, so no concurrent test without a subscriber caches the span callsites as
//! uninteresting.

use crate::support;

use polyrelay::{Chain, ChatRequest};
use support::*;

/// Every event and every closed span, as text, for this thread while the guard lives.
fn spans_captured() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::fmt::format::FmtSpan;
    let logs = CapturedLogs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

#[tokio::test]
async fn the_call_and_attempt_spans_carry_the_gen_ai_names() {
    let (logs, _guard) = spans_captured();
    let sim = sim().await;
    let relay = relay(&sim, Chain::of(["sim/gpt-4o"]));
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
        "http.response.status_code=200",
    ] {
        assert!(text.contains(want), "missing {want} in:\n{text}");
    }
}

#[tokio::test]
async fn a_failed_attempts_span_carries_its_error_type_and_status() {
    let (logs, _guard) = spans_captured();
    let sim = sim().await;
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    let chain =
        Chain::of(["sim/primary", "sim/gpt-4o"]).retry(polyrelay::RetryPolicy::no_retries());
    relay(&sim, chain)
        .chat(ChatRequest::new("r").user("hi"))
        .await
        .unwrap();
    let text = logs.text();
    let failed = text
        .lines()
        .find(|l| {
            l.contains("relay.attempt")
                && l.contains("gen_ai.request.model=primary")
                && l.contains("close")
        })
        .unwrap_or_else(|| panic!("no closed attempt span for primary in:\n{text}"));
    assert!(failed.contains("http.response.status_code=503"), "{failed}");
    assert!(failed.contains("error.type=\"overloaded\""), "{failed}");
}
