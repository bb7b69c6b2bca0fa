//! `cargo run --release --example dashboard --features simulator [-- path/to/dashboard.svg]`
//!
//! A day of the support bot (see `examples/support_bot.rs`) on the built-in vendor simulator — no
//! keys, no network — and the cost dashboard `Relay::stats()` gives for it:
//!
//! - 4,000 tickets over 24 simulated hours (quiet nights, busy office hours), in several
//!   languages, of every size: a one-line "where is my parcel?" with the account's recent
//!   orders, a refund dispute with the customer's whole story and transactions, a policy
//!   page to translate, help-centre articles retrieved for a walk-in question;
//! - routed by intent as the support bot is (order status → a cheap fast model, refund
//!   dispute → the strongest, translation → a multilingual one, Chinese → Qwen, sensitive →
//!   on-prem only, walk-in questions by an in-process classifier), OpenAI failing over to
//!   Anthropic;
//! - every answer also priced on a baseline, `openai/gpt-4o` (what sending everything to
//!   one strong model would have cost);
//! - OpenAI has an outage from 11:00 to 14:00 (503s, 500s and requests that never answer):
//!   the circuit breakers route around it and come back when it ends.
//!
//! The simulator reports usage as ceil(chars / 4) of the prompt and of the answer, so tokens
//! follow the size of each ticket; each scripted answer has a length and a latency drawn per
//! model. Prices come from the built-in catalog (`Catalog::builtin()`), found by model name.
//!
//! It prints cost, tokens, p50/p95 latency and error rate per query type and model, the
//! spend against the baseline, latency per hour, and writes `docs/dashboard.svg` (or the
//! path given as the first argument): cost per query type by model, actual against
//! baseline spend, and latency per hour through the outage.

mod models;
mod report;
mod svg;
mod text;
mod tickets;

use std::time::{Duration, Instant};

use futures::StreamExt;
use polyrelay::providers::{Anthropic, OpenAi};
use polyrelay::routing::{ClassifierRule, IntentRule, LanguageRule, Rules, Script, TextClassifier};
use polyrelay::simulator::Simulator;
use polyrelay::{BreakerPolicy, BreakerState, Catalog, Chain, Price, Relay, StatsSnapshot, Target};

use models::{ONPREM_MODEL, PROFILES, healthy_replies, outage_replies};
use report::{HourLatency, hour_series, print_hours, print_table};
use svg::draw_dashboard;
use tickets::day_of_tickets;

/// Tickets in the day.
const TICKETS: usize = 4_000;
/// Tickets in flight at once.
const CONCURRENCY: usize = 128;
/// The hours (simulated) of OpenAI's outage: 11:00 to 14:00.
const OUTAGE: std::ops::Range<usize> = 11..14;
/// The baseline every answer is also priced on.
const BASELINE: &str = "openai/gpt-4o";
/// Relative ticket volume per hour of the day.
const VOLUME: [f64; 24] = [
    1.0, 0.7, 0.5, 0.4, 0.4, 0.6, 1.0, 1.8, 3.0, 4.2, 5.0, 5.4, 5.2, 5.3, 5.1, 4.8, 4.4, 3.8, 3.2,
    2.8, 2.4, 2.0, 1.6, 1.2,
];

type AnyError = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> Result<(), AnyError> {
    let svg_path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/docs/dashboard.svg").into());
    let mut rng = fastrand::Rng::with_seed(2024);

    // --- The vendors, simulated on loopback ---
    let sim = Simulator::start().await?;
    let url = format!("{}/v1", sim.base_url());
    for p in PROFILES {
        let info = Catalog::builtin().find(p.model);
        if p.model != ONPREM_MODEL && info.and_then(|m| m.price.as_ref()).is_none() {
            return Err(format!("the built-in catalog has no price for {}", p.model).into());
        }
        sim.script(p.model, healthy_replies(p, TICKETS + 200, &mut rng));
    }

    // --- The support bot's relay ---
    let classifier =
        TextClassifier::from_jsonl_str(include_str!("../../tests/data/support_tickets.jsonl"))?;
    // OpenAI answers within 1.5 s or the relay moves on to Anthropic.
    let openai =
        |model: &str| Target::new("openai", model).attempt_timeout(Duration::from_millis(1500));
    let relay = Relay::builder()
        .provider("openai", OpenAi::new("sk-sim").base_url(&url))
        .provider("anthropic", Anthropic::new("sk-ant-sim").base_url(&url))
        .provider("qwen", OpenAi::qwen("sk-sim").base_url(&url))
        .provider("onprem", OpenAi::vllm().base_url(&url))
        .route(
            "fast",
            Chain::new()
                .target(openai("gpt-4o-mini"))
                .target("anthropic/claude-haiku-4-5"),
        )
        .route(
            "strong",
            Chain::new()
                .target(openai("gpt-4o"))
                .target("anthropic/claude-sonnet-4-5"),
        )
        .route(
            "multilingual",
            Chain::of(["qwen/qwen-max", "anthropic/claude-sonnet-4-5"]),
        )
        .route(
            "qwen",
            Chain::of(["qwen/qwen-plus", "anthropic/claude-haiku-4-5"]),
        )
        .route(
            "onprem",
            // Our own GPUs: no vendor price, so the amortised cost of the cluster per token.
            Chain::new()
                .target(
                    Target::new("onprem", ONPREM_MODEL)
                        .tags(["on-prem"])
                        .price(Price::per_million(0.20, 0.20)),
                )
                .require_tags(["on-prem"]),
        )
        .route(
            "general",
            Chain::new()
                .target(openai("gpt-4o-mini"))
                .target("anthropic/claude-haiku-4-5"),
        )
        .router(
            "support",
            Rules::new("general")
                .rule("sensitive", IntentRule::new().intent("sensitive", "onprem"))
                .rule("chinese", LanguageRule::new().script(Script::Han, "qwen"))
                .rule(
                    "intents",
                    IntentRule::new()
                        .intent("order_status", "fast")
                        .intent("refund_dispute", "strong")
                        .intent("translation", "multilingual"),
                )
                .rule(
                    "classifier",
                    ClassifierRule::new(classifier)
                        .label("order_status", "fast")
                        .label("refund_dispute", "strong")
                        .label("translation", "multilingual")
                        .label("billing", "general")
                        .label("product_question", "general")
                        .min_confidence(0.6),
                ),
        )
        // A simulated hour lasts about half a second here: breakers probe every 250 ms.
        .breaker(
            BreakerPolicy::default()
                .cooldown(Duration::from_millis(250))
                .window(Duration::from_secs(2)),
        )
        .baseline(BASELINE)
        .build()?;

    // --- The day's tickets, hour by hour ---
    let tickets = day_of_tickets(&mut rng);
    println!(
        "Simulating a support-bot day: {} tickets, {} at a time, OpenAI down {:02}:00–{:02}:00 …",
        TICKETS, CONCURRENCY, OUTAGE.start, OUTAGE.end
    );

    let started = Instant::now();
    // Cumulative stats at the start of each hour and at the end of the day: an hour's
    // counters are the difference of two of them.
    let mut marks: Vec<StatsSnapshot> = Vec::with_capacity(25);
    let mut hourly: Vec<HourLatency> = Vec::with_capacity(24);
    let mut outage_rng = fastrand::Rng::with_seed(11);
    for (hour, requests) in tickets.into_iter().enumerate() {
        if hour == OUTAGE.start {
            for model in ["gpt-4o-mini", "gpt-4o"] {
                sim.script(model, outage_replies(&mut outage_rng));
            }
        } else if hour == OUTAGE.end {
            for p in PROFILES.iter().filter(|p| p.model.starts_with("gpt-")) {
                sim.script(p.model, healthy_replies(p, TICKETS, &mut outage_rng));
            }
        }
        marks.push(relay.stats());
        let relay = &relay;
        // The hour's tickets, CONCURRENCY at a time; the next hour starts when all are done.
        let results: Vec<(bool, Duration)> = futures::stream::iter(requests)
            .map(|req| async move {
                let at = Instant::now();
                let result = relay.chat(&req).await;
                (result.is_ok(), at.elapsed())
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let open: Vec<String> = relay
            .health()
            .into_iter()
            .filter(|h| &*h.target.provider == "openai" && h.state != BreakerState::Closed)
            .map(|h| format!("{} {:?}", h.target.model, h.state).to_lowercase())
            .collect();
        hourly.push(HourLatency {
            samples: results
                .iter()
                .map(|(_, d)| d.as_secs_f64() * 1000.0)
                .collect(),
            failed: results.iter().filter(|(ok, _)| !ok).count() as u64,
            breakers: open.join(", "),
        });
    }
    let elapsed = started.elapsed();
    let day = relay.stats();
    marks.push(day.clone());
    println!(
        "… done in {:.1} s ({:.0} calls/s; {} calls failed).\n",
        elapsed.as_secs_f64(),
        TICKETS as f64 / elapsed.as_secs_f64(),
        hourly.iter().map(|h| h.failed).sum::<u64>()
    );

    print_table(&day);
    let hours = hour_series(&marks, &mut hourly);
    print_hours(&hours);

    draw_dashboard(&svg_path, &day, &hours)?;
    println!("\nDashboard written to {svg_path}");
    Ok(())
}
