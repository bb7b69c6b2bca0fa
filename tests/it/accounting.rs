//! Accounting over real HTTP on the loopback simulator (and, for the rolling window, tokio's
//! paused clock with an in-process provider): cost per response and per attempt from the
//! catalog, unknown prices, streamed against plain calls, the classifier's cost under the
//! call it routed, stats rows, the baseline, observers and the span names.

use crate::support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use polyrelay::accounting::{
    AttemptEnded, AttemptStarted, BreakerEvent, FailoverEvent, Observer, RetryEvent,
};
use polyrelay::providers::{Anthropic, Gemini, OpenAi};
use polyrelay::routing::{LlmClassifier, Rules};
use polyrelay::{
    BreakerPolicy, CallRecord, Catalog, Chain, ChatRequest, ErrorKind, ModelInfo, Price, Relay,
    RetryPolicy, Target, Usage,
};
use support::*;

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

fn price_of(model: &str) -> Price {
    Catalog::builtin()
        .find(model)
        .and_then(|m| m.price.clone())
        .unwrap_or_else(|| panic!("the catalog prices {model}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 + 1e-9 * b.abs()
}

/// Relay `sim` (OpenAI dialect) with route `r` = `chain`, baseline gpt-4o.
fn relay_on(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", chain)
        .baseline("openai/gpt-4o")
        .build()
        .expect("relay")
}

#[tokio::test]
async fn cost_per_response_and_per_attempt_comes_from_the_catalog() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [Reply::openai_error(500, "server_error", None, "boom")],
    );
    sim.script("gpt-4o", [Reply::openai_text("Your order ships tomorrow.")]);
    let relay = relay_on(
        &sim,
        Chain::new()
            .target(Target::new("sim", "gpt-4o-mini").max_attempts(1))
            .target("sim/gpt-4o"),
    );
    let resp = relay
        .chat(
            ChatRequest::new("r")
                .intent("order_status")
                .user("Where is my order #123?"),
        )
        .await
        .unwrap();
    let usage = resp.usage.expect("the simulator reports usage");
    let expected = price_of("gpt-4o").cost(&usage);
    assert!(expected > 0.0);
    let m = &resp.meta;
    assert_eq!(m.attempts.len(), 2);
    // The failed attempt reported nothing and costs nothing.
    assert_eq!((m.attempts[0].usage, m.attempts[0].cost), (None, None));
    assert_eq!(m.attempts[1].usage, Some(usage));
    assert!(close(m.attempts[1].cost.unwrap(), expected));
    assert!(close(m.cost.unwrap(), expected));
    // The baseline is gpt-4o itself here: the same figure.
    assert!(close(m.baseline_cost.unwrap(), expected));
}

#[tokio::test]
async fn a_model_without_a_price_has_an_unknown_cost_never_zero() {
    let sim = sim().await;
    let relay = relay_on(&sim, Chain::of(["sim/our-finetune-7b"]));
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    assert!(resp.usage.is_some());
    assert_eq!(resp.meta.cost, None);
    assert_eq!(resp.meta.attempts[0].cost, None);
    let stats = relay.stats();
    assert_eq!(stats.total.len(), 1);
    assert_eq!(stats.total[0].cost_unknown, 1);
    assert_eq!(stats.total[0].cost, 0.0);
    // A price set on the target (or in the relay's catalog) makes it known.
    let mut catalog = Catalog::builtin().clone();
    catalog.insert(ModelInfo::new("sim", "our-finetune-7b").price(Price::per_million(1.0, 2.0)));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("r", Chain::of(["sim/our-finetune-7b"]))
        .catalog(catalog)
        .build()
        .unwrap();
    let resp = relay.chat(ChatRequest::new("r").user("hi")).await.unwrap();
    let u = resp.usage.unwrap();
    let want = (u.input_tokens as f64 * 1.0 + u.output_tokens as f64 * 2.0) / 1e6;
    assert!(close(resp.meta.cost.unwrap(), want));
}

fn three_vendors(sim: &Simulator) -> Relay {
    let base = sim.base_url();
    let one = |t: &str| Chain::of([t]);
    Relay::builder()
        .provider("openai", OpenAi::new("sk").base_url(&format!("{base}/v1")))
        .provider(
            "anthropic",
            Anthropic::new("sk").base_url(&format!("{base}/v1")),
        )
        .provider(
            "gemini",
            Gemini::new("gm").base_url(&format!("{base}/v1beta")),
        )
        .route("o", one("openai/gpt-4o"))
        .route("a", one("anthropic/claude-sonnet-4-5"))
        .route("g", one("gemini/gemini-2.5-flash"))
        .build()
        .unwrap()
}

#[tokio::test]
async fn streamed_and_plain_calls_give_the_same_usage_and_cost() {
    let sim = sim().await;
    sim.set_default(Reply::text(
        "Your refund of 42 euros was approved and will reach your card in three days.",
    ));
    let relay = three_vendors(&sim);
    for route in ["o", "a", "g"] {
        let req = ChatRequest::new(route).user("I want my money back for order 991.");
        let plain = relay.chat(&req).await.unwrap();
        let mut stream = relay.chat_stream(&req).await.unwrap();
        let (chunks, err) = drain(&mut stream).await;
        assert!(err.is_none(), "{route}: {err:?}");
        let streamed_meta = stream.meta().clone();
        let streamed_usage = chunks.iter().rev().find_map(|c| c.usage);
        assert_eq!(plain.text(), joined(&chunks), "{route}");
        assert_eq!(plain.usage, streamed_usage, "{route}");
        assert!(plain.meta.cost.is_some(), "{route}: priced");
        assert_eq!(plain.meta.cost, streamed_meta.cost, "{route}");
        assert_eq!(
            plain.meta.attempts[0].usage, streamed_meta.attempts[0].usage,
            "{route}"
        );
    }
}

#[tokio::test]
async fn a_cut_stream_that_reported_usage_counts() {
    let sim = sim().await;
    // Content, then a usage frame, then the connection closes: no finish, no [DONE].
    let mut frames = tokens("s", 0, 5, 40);
    frames.retain(|f| !f.contains("[DONE]") && !f.contains("\"stop\""));
    sim.script("gpt-4o", [Reply::sse(frames).close_delimited()]);
    let relay = relay_on(&sim, Chain::of(["sim/gpt-4o"]));
    let mut stream = relay
        .chat_stream(ChatRequest::new("r").user("hi"))
        .await
        .unwrap();
    let (_, err) = drain(&mut stream).await;
    assert_eq!(err.unwrap().kind(), ErrorKind::StreamInterrupted);
    let meta = stream.meta();
    let a = &meta.attempts[0];
    assert_eq!(a.usage, Some(Usage::new(40, 5)));
    let want = price_of("gpt-4o").cost(&Usage::new(40, 5));
    assert!(close(a.cost.unwrap(), want));
    assert!(close(meta.cost.unwrap(), want));
    let row = &relay.stats().total[0];
    assert_eq!((row.input_tokens, row.output_tokens), (40, 5));
    assert!(close(row.cost, want));
    assert_eq!(row.errors.get("stream_interrupted"), Some(&1));
}

#[tokio::test]
async fn the_classifiers_call_is_counted_under_the_request_it_routed() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_text(r#"{"label":"refund_dispute"}"#),
            // The second request: a label the rule does not know, then the default route.
            Reply::openai_text(r#"{"label":"shipping"}"#),
            Reply::openai_text("We ship tomorrow."),
        ],
    );
    sim.script("gpt-4o", [Reply::openai_text("Refund approved.")]);
    let one = |m: &str| {
        Chain::new()
            .target(Target::new("sim", m))
            .retry(RetryPolicy::default().max_attempts(1))
    };
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("clf", one("gpt-4o-mini"))
        .route("strong", one("gpt-4o"))
        .route("general", one("gpt-4o-mini"))
        .router(
            "support",
            Rules::new("general").rule(
                "classifier",
                LlmClassifier::new("clf")
                    .label("refund_dispute", "strong")
                    .budget(Duration::from_secs(5)),
            ),
        )
        .build()
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("support").user("I was charged twice, refund me."))
        .await
        .unwrap();
    let cost = classifier_counted(&resp);
    // One row: the routed call, under its label; the classifier's call is not a row of its own.
    let stats = relay.stats();
    assert_eq!(stats.total.len(), 1, "{:#?}", stats.total);
    let row = &stats.total[0];
    assert_eq!(row.route, "strong");
    assert_eq!(row.query_type.as_deref(), Some("refund_dispute"));
    assert!(close(row.cost, cost));

    // A classifier that answers no configured label passes, and its call still counts.
    let resp = relay
        .chat(ChatRequest::new("support").user("When do you ship?"))
        .await
        .unwrap();
    assert_eq!(resp.meta.routing.as_ref().unwrap().rule, None);
    let cost = classifier_counted(&resp);
    let stats = relay.stats();
    let general = stats.total.iter().find(|r| r.route == "general").unwrap();
    assert!(close(general.cost, cost));
}

/// Checks that `resp`'s cost is its answer's plus its gpt-4o-mini classifier call's (priced
/// from the catalog), and returns that cost.
fn classifier_counted(resp: &polyrelay::ChatResponse) -> f64 {
    let routing = resp.meta.routing.as_ref().unwrap();
    let clf_usage = routing.classifier_usage.unwrap();
    let clf_cost = routing.classifier_cost.unwrap();
    assert!(close(clf_cost, price_of("gpt-4o-mini").cost(&clf_usage)));
    let answer_cost = resp.meta.attempts[0].cost.unwrap();
    let cost = resp.meta.cost.unwrap();
    assert!(close(cost, answer_cost + clf_cost));
    cost
}

/// gpt-4o-mini, tried twice (1–2 ms apart), then gpt-4o.
fn retried_then_backup() -> Chain {
    let retry = RetryPolicy::default()
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(2));
    Chain::new()
        .target(Target::new("sim", "gpt-4o-mini").retry(retry))
        .target("sim/gpt-4o")
}

#[tokio::test]
async fn stats_count_calls_failovers_retries_and_errors_per_query_type_and_model() {
    let sim = sim().await;
    let relay = relay_on(&sim, retried_then_backup());
    // 1: served by the primary. 2: primary fails twice (one retry), backup serves.
    sim.script("gpt-4o-mini", [Reply::openai_text("ok")]);
    relay
        .chat(
            ChatRequest::new("r")
                .intent("order_status")
                .user("where is it"),
        )
        .await
        .unwrap();
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(503, "server_error", None, "busy"),
            Reply::openai_error(500, "server_error", None, "boom"),
        ],
    );
    relay
        .chat(
            ChatRequest::new("r")
                .intent("refund_dispute")
                .user("refund me"),
        )
        .await
        .unwrap();
    let s = relay.stats();
    let row = |q: &str, model: &str| {
        s.total
            .iter()
            .find(|r| r.query_type.as_deref() == Some(q) && r.model == model)
            .unwrap_or_else(|| panic!("row {q} {model}: {:#?}", s.total))
    };
    let a = row("order_status", "gpt-4o-mini");
    assert_eq!(
        (a.requests, a.successes, a.retries, a.error_count()),
        (1, 1, 0, 0)
    );
    assert_eq!(a.latency.count, 1);
    let b = row("refund_dispute", "gpt-4o-mini");
    assert_eq!((b.requests, b.successes, b.retries), (1, 0, 1));
    assert_eq!(b.error_count(), 2, "{b:#?}");
    assert_eq!(b.errors.get("server_error"), Some(&1), "{b:#?}");
    assert_eq!((b.failovers_out, b.failovers_in), (1, 0));
    let c = row("refund_dispute", "gpt-4o");
    assert_eq!((c.requests, c.successes, c.failovers_in), (1, 1, 1));
    assert!(c.cost > 0.0 && c.baseline_cost > 0.0);
    assert_eq!(s.total.len(), 3);
    assert_eq!(s.recent.len(), 3, "the rolling window has them too");
    let by_q = s.by_query_type();
    assert_eq!(by_q.len(), 2);
    // The snapshot serializes.
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["total"][0]["route"], "r");
    assert!(json["total"][0]["latency"]["p95_ms"].is_number());
    relay.reset_stats();
    assert!(relay.stats().total.is_empty());
}

#[tokio::test]
async fn a_call_refused_by_its_constraints_is_counted_as_a_refusal() {
    let sim = sim().await;
    let relay = relay_on(&sim, Chain::of(["sim/gpt-4o"]));
    let err = relay
        .chat(
            ChatRequest::new("r")
                .require_tags(["on-prem"])
                .user("secret"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConstraintViolated);
    // Not an upstream failure: no target row, one refusal by route and reason.
    let s = relay.stats();
    assert!(s.total.is_empty(), "{:?}", s.total);
    let r = &s.refused[0];
    assert_eq!(
        (r.route.as_str(), r.reason.as_str(), r.calls),
        ("r", "constraint", 1)
    );
}

#[tokio::test]
async fn the_baseline_shows_what_routing_saved() {
    let sim = sim().await;
    let relay = relay_on(&sim, Chain::of(["sim/gpt-4o-mini"]));
    let resp = relay
        .chat(ChatRequest::new("r").user("where is my parcel"))
        .await
        .unwrap();
    let u = resp.usage.unwrap();
    assert!(close(
        resp.meta.cost.unwrap(),
        price_of("gpt-4o-mini").cost(&u)
    ));
    assert!(close(
        resp.meta.baseline_cost.unwrap(),
        price_of("gpt-4o").cost(&u)
    ));
    let t = relay.stats().totals();
    assert!(t.saved() > 0.0 && t.baseline_cost > t.cost * 10.0, "{t:?}");
    // A baseline the catalog cannot price is a configuration error.
    let err = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("r", Chain::of(["sim/gpt-4o"]))
        .baseline("nobody/no-such-model")
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("baseline"), "{err}");
}

/// Records every event as a line.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<String>>>);

impl Events {
    fn push(&self, s: String) {
        self.0.lock().unwrap().push(s);
    }
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Observer for Events {
    fn attempt_started(&self, e: &AttemptStarted<'_>) {
        self.push(format!("start {} #{}", e.target, e.try_number));
    }
    fn attempt_ended(&self, e: &AttemptEnded<'_>) {
        self.push(format!(
            "end {} {:?}",
            e.attempt.target,
            e.attempt.failure().map(|k| k.as_str())
        ));
    }
    fn retry(&self, e: &RetryEvent<'_>) {
        self.push(format!("retry {} #{}", e.target, e.next_try));
    }
    fn failover(&self, e: &FailoverEvent<'_>) {
        self.push(format!("failover {} {}", e.from, e.error));
    }
    fn breaker(&self, e: &BreakerEvent<'_>) {
        self.push(format!("breaker {} {:?}", e.target, e.state));
    }
    fn completed(&self, c: &CallRecord<'_>) {
        self.push(format!(
            "done {} {:?} cost={}",
            c.route,
            c.query_type,
            c.meta.cost.is_some()
        ));
    }
}

struct Panics;
impl Observer for Panics {
    fn attempt_started(&self, _: &AttemptStarted<'_>) {
        panic!("observer bug");
    }
    fn completed(&self, _: &CallRecord<'_>) {
        panic!("observer bug");
    }
}

#[tokio::test]
async fn observers_see_attempts_retries_failovers_breakers_and_completion() {
    let sim = sim().await;
    sim.script(
        "gpt-4o-mini",
        [
            Reply::openai_error(500, "server_error", None, "boom"),
            Reply::openai_error(500, "server_error", None, "boom"),
        ],
    );
    let events = Events::default();
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("r", retried_then_backup())
        .breaker_for(
            "sim/gpt-4o-mini",
            BreakerPolicy::default().consecutive_failures(2),
        )
        .observer(Panics)
        .observer(events.clone())
        .build()
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("r").intent("billing").user("hi"))
        .await
        .expect("a panicking observer never breaks a call");
    assert_eq!(
        resp.meta.served_by.as_ref().unwrap().model.as_ref(),
        "gpt-4o"
    );
    assert_eq!(
        events.all(),
        [
            "start sim/gpt-4o-mini #1",
            "end sim/gpt-4o-mini Some(\"server_error\")",
            "retry sim/gpt-4o-mini #2",
            "start sim/gpt-4o-mini #2",
            "end sim/gpt-4o-mini Some(\"server_error\")",
            "breaker sim/gpt-4o-mini Open",
            "failover sim/gpt-4o-mini server_error",
            "start sim/gpt-4o #1",
            "end sim/gpt-4o None",
            "done r Some(\"billing\") cost=true",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_rolling_window_keeps_the_last_hour_and_the_total_keeps_everything() {
    let relay = Relay::builder()
        .provider("fixed", FixedProvider)
        .route(
            "r",
            Chain::new().target(Target::new("fixed", "m").price(Price::per_million(1.0, 1.0))),
        )
        .stats_window(Duration::from_secs(3600))
        .build()
        .unwrap();
    for _ in 0..3 {
        relay.chat(ChatRequest::new("r").user("x")).await.unwrap();
    }
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    relay.chat(ChatRequest::new("r").user("x")).await.unwrap();
    let s = relay.stats();
    assert_eq!(s.total[0].requests, 4);
    assert_eq!(s.recent[0].requests, 1, "older calls left the window");
    assert_eq!(s.total[0].input_tokens, 40);
    assert!(close(s.total[0].cost, 4.0 * 15.0 / 1e6));
    // 30 ms per call on the paused clock: the percentiles say so (two significant digits).
    let p = s.total[0].latency;
    assert!((29.0..=31.0).contains(&p.p50_ms), "{p:?}");
    assert!(s.since_secs >= 7200.0);
    // Half an hour later both recent calls are in the window (it is more than one slot).
    tokio::time::advance(Duration::from_secs(30 * 60)).await;
    relay.chat(ChatRequest::new("r").user("x")).await.unwrap();
    assert_eq!(relay.stats().recent[0].requests, 2);
    // 100 minutes on, the ring has wrapped: slots reused hold nothing of their past.
    tokio::time::advance(Duration::from_secs(100 * 60)).await;
    relay.chat(ChatRequest::new("r").user("x")).await.unwrap();
    let s = relay.stats();
    assert_eq!(s.recent[0].requests, 1, "reused slots start empty");
    assert_eq!(s.total[0].requests, 6);
}

#[tokio::test]
async fn targets_take_their_window_price_and_prefill_from_the_catalog() {
    use polyrelay::{MidStreamRecovery, Strategy};
    let sim = sim().await;
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("window", Chain::of(["sim/gpt-4o"]))
        .route(
            "declared",
            Chain::new().target(Target::new("sim", "gpt-4o").context_window(1000)),
        )
        .route(
            "cheapest",
            Chain::of(["sim/gpt-4o", "sim/gpt-4o-mini"]).strategy(Strategy::CheapestFirst),
        )
        .route(
            "continue",
            Chain::of(["sim/primary", "sim/claude-sonnet-4-5"])
                .mid_stream_recovery(MidStreamRecovery::Continue),
        )
        .build()
        .unwrap();
    // The window (size routing, overflow) from the catalog, unless the target declares one.
    assert_eq!(relay.context_window("window"), Some(128_000));
    assert_eq!(relay.context_window("declared"), Some(1000));
    // Cheapest first from the catalog's prices: gpt-4o-mini before gpt-4o.
    let resp = relay
        .chat(ChatRequest::new("cheapest").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.meta.attempts[0].target.model.as_ref(), "gpt-4o-mini");
    // The catalog says Claude Sonnet 4.5 continues a prefill: a cut stream is continued
    // there, not restarted, with no `prefill(true)` on the target.
    sim.script("primary", [cut_at(40)]);
    sim.script("claude-sonnet-4-5", [Reply::sse(tokens("c", 40, 60, 5))]);
    let answer = folded(&relay, ChatRequest::new("continue").user("count"))
        .await
        .unwrap();
    assert_eq!(answer.text(), text_of(0..60));
    let sent = &sim.requests_for("claude-sonnet-4-5")[0].body;
    let last = sent["messages"].as_array().unwrap().last().unwrap();
    assert_eq!(last["role"], "assistant");
    assert_eq!(last["content"], text_of(0..40));
}

#[cfg(feature = "language")]
#[tokio::test]
async fn a_language_rules_label_is_not_a_query_type() {
    use polyrelay::routing::{LanguageRule, Script};
    let sim = sim().await;
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "k"))
        .route("qwen", Chain::of(["sim/qwen-plus"]))
        .route("general", Chain::of(["sim/gpt-4o-mini"]))
        .router(
            "support",
            Rules::new("general").rule("language", LanguageRule::new().script(Script::Han, "qwen")),
        )
        .build()
        .unwrap();
    let resp = relay
        .chat(ChatRequest::new("support").user("我的订单还没有到，请帮我查一下物流状态。"))
        .await
        .unwrap();
    assert_eq!(
        resp.meta.routing.as_ref().unwrap().label.as_deref(),
        Some("han")
    );
    let rows = relay.stats().total;
    assert_eq!(
        (rows[0].route.as_str(), rows[0].query_type.as_deref()),
        ("qwen", None)
    );
}

#[tokio::test]
async fn a_hedge_loser_that_reported_usage_is_billed() {
    let sim = sim().await;
    // Anthropic's stream opens with message_start (the input tokens), then stalls before any
    // content: the hedge starts the second target, which wins.
    sim.script(
        "claude-sonnet-4-5",
        [Reply::text("slow answer").stall_after(1)],
    );
    sim.script("gpt-4o", [Reply::text("fast answer")]);
    let base = sim.base_url();
    let relay = Relay::builder()
        .provider(
            "anthropic",
            Anthropic::new("sk").base_url(&format!("{base}/v1")),
        )
        .provider("openai", OpenAi::new("sk").base_url(&format!("{base}/v1")))
        .route(
            "r",
            Chain::of(["anthropic/claude-sonnet-4-5", "openai/gpt-4o"])
                .hedge(polyrelay::Hedge::after(Duration::from_millis(100))),
        )
        .build()
        .unwrap();
    let resp = folded(&relay, ChatRequest::new("r").user("Where is my parcel?"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "fast answer");
    let loser = &resp.meta.attempts[0];
    assert_eq!(loser.target.model.as_ref(), "claude-sonnet-4-5");
    assert_eq!(loser.failure(), Some(ErrorKind::Cancelled));
    let u = loser
        .usage
        .expect("the loser's input tokens, from message_start");
    assert!(u.input_tokens > 0, "{u:?}");
    let loser_cost = loser.cost.expect("priced");
    assert!(close(loser_cost, price_of("claude-sonnet-4-5").cost(&u)));
    let winner_cost = resp.meta.attempts[1].cost.expect("priced");
    assert!(close(resp.meta.cost.unwrap(), loser_cost + winner_cost));
    // The stats count the loser's tokens too.
    let billed: u64 = relay.stats().total.iter().map(|r| r.input_tokens).sum();
    assert_eq!(billed, u.input_tokens + resp.usage.unwrap().input_tokens);
}

/// Money in the stats is summed in nano-dollars: many small costs add up to the decimal they
/// make, not to floating-point noise (`0.00012150000000000001`).
#[tokio::test]
async fn stats_money_is_exact_to_the_nano_dollar() {
    let sim = sim().await;
    sim.set_default(Reply::openai_text("ok"));
    let target = Target::new("sim", "m").price(Price::per_million(0.15, 0.6));
    let relay = relay_on(&sim, Chain::new().target(target));
    let mut nanos = 0u64;
    for _ in 0..30 {
        let resp = relay.chat(&ChatRequest::new("r").user("hi")).await.unwrap();
        nanos += (resp.meta.cost.expect("priced") * 1e9).round() as u64;
    }
    let stats = relay.stats();
    let row = stats.total.iter().find(|r| r.model == "m").unwrap();
    let printed = serde_json::to_value(row).unwrap()["cost"].to_string();
    assert_eq!(printed, (nanos as f64 / 1e9).to_string());
    let decimals = printed.split('.').nth(1).map_or(0, str::len);
    assert!(decimals <= 9, "{printed}");
    let totals = serde_json::to_value(stats.totals()).unwrap()["cost"].to_string();
    assert_eq!(totals, printed);
}

/// A caller that drops its stream before the answer finished cancelled the call: the stats
/// count it as cancelled, not as a success (nor a failure), and keep what the vendor
/// reported; a stream read to its finish is a success (issue 23, point 3).
#[tokio::test]
async fn a_stream_dropped_before_its_end_is_counted_as_cancelled() {
    use futures::StreamExt;
    let sim = sim().await;
    sim.set_default(Reply::openai_stream_text(&["a", "b", "c", "d"]));
    let relay = relay_on(&sim, Chain::of(["sim/gpt-4o"]));
    let mut stream = relay
        .chat_stream(&ChatRequest::new("r").user("hi"))
        .await
        .unwrap();
    assert!(stream.next().await.is_some());
    drop(stream);
    let whole = relay
        .chat_stream(&ChatRequest::new("r").user("hi"))
        .await
        .unwrap()
        .into_response()
        .await
        .unwrap();
    assert_eq!(whole.meta.served_by.unwrap().to_string(), "sim/gpt-4o");
    let stats = relay.stats();
    let row = stats.total.iter().find(|r| r.model == "gpt-4o").unwrap();
    assert_eq!(
        (row.cancelled, row.successes, row.failures),
        (1, 1, 0),
        "{row:?}"
    );
}
