//! `cargo run --release --example dashboard --features simulator [-- path/to/dashboard.svg]`
//!
//! A day of the support bot (see `support_bot.rs`) on the built-in vendor simulator — no
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

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordusize};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use polyrelay::providers::{Anthropic, OpenAi};
use polyrelay::routing::{ClassifierRule, IntentRule, LanguageRule, Rules, Script, TextClassifier};
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{
    BreakerPolicy, BreakerState, Catalog, Chain, ChatRequest, Price, Relay, StatsRow,
    StatsSnapshot, Target,
};

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
        TextClassifier::from_jsonl_str(include_str!("../tests/data/support_tickets.jsonl"))?;
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

// ---------------------------------------------------------------------------------------
// The models as the simulator plays them
// ---------------------------------------------------------------------------------------

const ONPREM_MODEL: &str = "llama-3.3-70b";

#[derive(Clone, Copy, PartialEq)]
enum Voice {
    English,
    Chinese,
    Translation,
}

/// How a simulated model answers: how long (tokens) and how fast.
struct Profile {
    model: &'static str,
    /// Time to the answer before the first token, in ms.
    base_ms: f64,
    /// Generation time per output token, in ms.
    ms_per_token: f64,
    /// Output tokens, uniform in this range.
    out_tokens: (usize, usize),
    voice: Voice,
}

const PROFILES: &[Profile] = &[
    Profile {
        model: "gpt-4o-mini",
        base_ms: 30.0,
        ms_per_token: 0.22,
        out_tokens: (25, 140),
        voice: Voice::English,
    },
    Profile {
        model: "gpt-4o",
        base_ms: 80.0,
        ms_per_token: 0.45,
        out_tokens: (140, 480),
        voice: Voice::English,
    },
    Profile {
        model: "claude-haiku-4-5",
        base_ms: 55.0,
        ms_per_token: 0.30,
        out_tokens: (30, 160),
        voice: Voice::English,
    },
    Profile {
        model: "claude-sonnet-4-5",
        base_ms: 120.0,
        ms_per_token: 0.50,
        out_tokens: (150, 520),
        voice: Voice::English,
    },
    Profile {
        model: "qwen-plus",
        base_ms: 60.0,
        ms_per_token: 0.30,
        out_tokens: (30, 120),
        voice: Voice::Chinese,
    },
    Profile {
        model: "qwen-max",
        base_ms: 100.0,
        ms_per_token: 0.40,
        out_tokens: (120, 600),
        voice: Voice::Translation,
    },
    Profile {
        model: ONPREM_MODEL,
        base_ms: 40.0,
        ms_per_token: 0.35,
        out_tokens: (50, 220),
        voice: Voice::English,
    },
];

/// `n` answers of `p`: lengths and latencies drawn per answer, with the rare 500 (retried)
/// and the rare slow answer (the p99 tail).
fn healthy_replies(p: &Profile, n: usize, rng: &mut fastrand::Rng) -> Vec<Reply> {
    (0..n)
        .map(|_| {
            let roll = rng.f64();
            if roll < 0.004 {
                return Reply::error(SimError::Server);
            }
            let tokens = rng.usize(p.out_tokens.0..=p.out_tokens.1);
            let mut ms = (p.base_ms + p.ms_per_token * tokens as f64) * lognormal(rng, 0.3);
            if roll > 0.995 {
                ms *= 3.0;
            }
            Reply::text(&answer(p.voice, tokens, rng)).delay(Duration::from_secs_f64(ms / 1000.0))
        })
        .collect()
}

/// OpenAI during the outage: overloaded, failing, or silent until the relay gives up.
fn outage_replies(rng: &mut fastrand::Rng) -> Vec<Reply> {
    (0..2_000)
        .map(|_| match rng.f64() {
            r if r < 0.55 => Reply::error(SimError::Overloaded),
            r if r < 0.85 => Reply::error(SimError::Server).delay(Duration::from_millis(40)),
            _ => Reply::hang(),
        })
        .collect()
}

/// exp(N(0, sigma²)): a latency multiplier with median 1.
fn lognormal(rng: &mut fastrand::Rng, sigma: f64) -> f64 {
    let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (sigma * z).exp()
}

/// An answer of about `tokens` tokens (4 characters each, as the simulator counts).
fn answer(voice: Voice, tokens: usize, rng: &mut fastrand::Rng) -> String {
    let pool = match voice {
        Voice::English => ANSWERS_EN,
        Voice::Chinese => ANSWERS_ZH,
        Voice::Translation => ANSWERS_TRANSLATED,
    };
    fill(pool, tokens * 4, rng)
}

/// Sentences of `pool`, in random order, up to about `chars` characters.
fn fill(pool: &[&str], chars: usize, rng: &mut fastrand::Rng) -> String {
    let mut out = String::new();
    while out.chars().count() < chars {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(pool[rng.usize(..pool.len())]);
    }
    out
}

// ---------------------------------------------------------------------------------------
// The day's tickets
// ---------------------------------------------------------------------------------------

/// `TICKETS` tickets, hour by hour, spread over the day by `VOLUME`.
fn day_of_tickets(rng: &mut fastrand::Rng) -> Vec<Vec<ChatRequest>> {
    let total: f64 = VOLUME.iter().sum();
    let mut per_hour: Vec<usize> = VOLUME
        .iter()
        .map(|v| (v / total * TICKETS as f64).round() as usize)
        .collect();
    // Rounding: the busiest hour takes up the difference.
    let diff = TICKETS as isize - per_hour.iter().sum::<usize>() as isize;
    per_hour[11] = (per_hour[11] as isize + diff) as usize;
    let walk_ins: Vec<String> = include_str!("../tests/data/support_tickets.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect();
    per_hour
        .iter()
        .map(|&n| (0..n).map(|_| ticket(rng, &walk_ins)).collect())
        .collect()
}

/// One ticket: its intent (or none, for the classifier), language and context.
fn ticket(rng: &mut fastrand::Rng, walk_ins: &[String]) -> ChatRequest {
    let base = ChatRequest::new("support").system(SYSTEM_PROMPT);
    let roll = rng.f64();
    if roll < 0.05 {
        // Sensitive: health, legal or identity data. On-prem only, whatever the language.
        return base
            .system(account_context(rng, 1..3))
            .user(SENSITIVE[rng.usize(..SENSITIVE.len())])
            .intent("sensitive");
    }
    if roll < 0.12 {
        // Chinese: Qwen, by script, whatever the intent.
        let (intent, pool) = if rng.f64() < 0.7 {
            ("order_status", ZH_ORDER)
        } else {
            ("refund_dispute", ZH_REFUND)
        };
        let text = pool[rng.usize(..pool.len())].replace("{n}", &order_number(rng));
        return base
            .system(account_context(rng, 1..4))
            .user(text)
            .intent(intent);
    }
    if roll < 0.47 {
        let pool = if rng.f64() < 0.15 {
            ORDER_OTHER_LANGS
        } else {
            ORDER_EN
        };
        let question = pool[rng.usize(..pool.len())].replace("{n}", &order_number(rng));
        let req = base.system(account_context(rng, 1..7));
        return with_history(req, rng).user(question).intent("order_status");
    }
    if roll < 0.58 {
        // The whole story, and the transactions in question.
        let story = fill(REFUND_STORY, rng.usize(300..2_400), rng);
        let mut tx = String::from("Transactions on the card:\n");
        for _ in 0..rng.usize(2..9) {
            tx.push_str(&format!(
                "- {} 2024-{:02}-{:02} ${}.{:02} ref {}\n",
                ["CHARGE", "CHARGE", "REFUND", "AUTH"][rng.usize(..4)],
                rng.usize(1..13),
                rng.usize(1..29),
                rng.usize(9..480),
                rng.usize(..100),
                rng.u32(100_000..999_999)
            ));
        }
        let req = base.system(account_context(rng, 2..8));
        return with_history(req, rng)
            .user(format!("{story}\n\n{tx}"))
            .intent("refund_dispute");
    }
    if roll < 0.67 {
        let lang = [
            "Spanish",
            "German",
            "French",
            "Portuguese",
            "Japanese",
            "Italian",
        ][rng.usize(..6)];
        let doc = [
            "return policy",
            "shipping FAQ",
            "warranty terms",
            "reply to the customer",
        ][rng.usize(..4)];
        let text = format!(
            "Please translate the following {doc} into {lang}, keeping the formatting:\n\n{}",
            fill(POLICY, rng.usize(200..3_000), rng)
        );
        return base.user(text).intent("translation");
    }
    // A walk-in question with the help-centre articles retrieved for it; the classifier
    // decides where it goes.
    let question = walk_ins[rng.usize(..walk_ins.len())].as_str();
    let mut kb = String::from("Relevant help-centre articles:\n");
    for _ in 0..rng.usize(1..5) {
        kb.push_str(&format!(
            "### {}\n{}\n",
            KB_TITLES[rng.usize(..KB_TITLES.len())],
            fill(POLICY, rng.usize(200..700), rng)
        ));
    }
    base.system(kb).user(question)
}

/// Earlier turns of the conversation, for some tickets.
fn with_history(mut req: ChatRequest, rng: &mut fastrand::Rng) -> ChatRequest {
    if rng.f64() < 0.3 {
        for _ in 0..rng.usize(1..4) {
            req = req
                .user(ORDER_EN[rng.usize(..ORDER_EN.len())].replace("{n}", &order_number(rng)))
                .assistant(fill(ANSWERS_EN, rng.usize(120..500), rng));
        }
    }
    req
}

fn order_number(rng: &mut fastrand::Rng) -> String {
    rng.u32(100_000..999_999).to_string()
}

/// The account and its recent orders, as the bot's back end attaches them (a system message,
/// so that routing by language and the classifier look at the customer's own words).
fn account_context(rng: &mut fastrand::Rng, orders: std::ops::Range<usize>) -> String {
    let mut s = format!(
        "[account C-{} · member since {} · {} orders · tier {}]\nRecent orders:\n",
        rng.u32(10_000..99_999),
        rng.u32(2012..2025),
        rng.u32(1..80),
        ["standard", "plus", "business"][rng.usize(..3)]
    );
    for _ in 0..rng.usize(orders) {
        let items: Vec<&str> = (0..rng.usize(1..4))
            .map(|_| ITEMS[rng.usize(..ITEMS.len())])
            .collect();
        s.push_str(&format!(
            "- #{} placed 2024-{:02}-{:02}: {}; {}; {} tracking {}{:09}\n",
            order_number(rng),
            rng.usize(1..13),
            rng.usize(1..29),
            items.join(", "),
            [
                "processing",
                "shipped",
                "out for delivery",
                "delivered",
                "delayed at customs"
            ][rng.usize(..5)],
            ["DHL", "UPS", "FedEx", "USPS", "La Poste"][rng.usize(..5)],
            ["JD", "1Z", "FX", "94", "LP"][rng.usize(..5)],
            rng.u32(..1_000_000_000)
        ));
    }
    s
}

// ---------------------------------------------------------------------------------------
// The printed dashboard
// ---------------------------------------------------------------------------------------

/// The query type of a row, for the dashboard: calls with no intent and no classifier label
/// (e.g. routed by the language rule) count as unlabelled.
fn query_type(r: &StatsRow) -> &str {
    match r.query_type.as_deref() {
        None => "unlabelled",
        Some(q) => q,
    }
}

/// Attempts on a row's target: one per call that tried it, plus its retries.
fn attempts(r: &StatsRow) -> u64 {
    r.requests + r.retries
}

fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        100.0 * part / whole
    } else {
        0.0
    }
}

fn print_table(day: &StatsSnapshot) {
    println!(
        "{:<17} {:<13} {:<26} {:>6} {:>6} {:>6} {:>6} {:>10} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "query type",
        "route",
        "model",
        "calls",
        "served",
        "err %",
        "fo in",
        "in tok",
        "out tok",
        "cost $",
        "base $",
        "p50 ms",
        "p95 ms"
    );
    let mut rows: Vec<&StatsRow> = day.total.iter().collect();
    rows.sort_by(|a, b| {
        (query_type(a), &a.route)
            .cmp(&(query_type(b), &b.route))
            .then(b.successes.cmp(&a.successes))
    });
    for r in rows {
        println!(
            "{:<17} {:<13} {:<26} {:>6} {:>6} {:>6.1} {:>6} {:>10} {:>9} {:>9.4} {:>9.4} {:>7.0} {:>7.0}",
            query_type(r),
            r.route,
            format!("{}/{}", r.provider, r.model),
            r.requests,
            r.successes,
            pct(r.error_count() as f64, attempts(r) as f64),
            r.failovers_in,
            r.input_tokens,
            r.output_tokens,
            r.cost,
            r.baseline_cost,
            r.latency.p50_ms,
            r.latency.p95_ms
        );
    }

    println!("\nPer query type (all routes):");
    println!(
        "{:<17} {:>6} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "query type", "served", "in tok", "out tok", "cost $", "base $", "saved"
    );
    for (q, t) in by_query_type(day) {
        println!(
            "{:<17} {:>6} {:>10} {:>9} {:>9.4} {:>9.4} {:>6.1}%",
            q,
            t.successes,
            t.input_tokens,
            t.output_tokens,
            t.cost,
            t.baseline_cost,
            pct(t.baseline_cost - t.cost, t.baseline_cost)
        );
    }
    let t = day.totals();
    println!(
        "\nTotal: {} calls served ({} failed), {} input + {} output tokens.",
        t.successes, t.failures, t.input_tokens, t.output_tokens
    );
    println!(
        "Spend: ${:.2} actual vs ${:.2} on the baseline ({BASELINE}): ${:.2} saved ({:.1} %).",
        t.cost,
        t.baseline_cost,
        t.saved(),
        pct(t.saved(), t.baseline_cost)
    );
    if t.cost_unknown > 0 {
        println!(
            "({} answers of unknown cost are not in the spend.)",
            t.cost_unknown
        );
    }
}

/// What one query type added up to, over every route and model.
#[derive(Default, Clone, Copy)]
struct QtTotals {
    successes: u64,
    input_tokens: u64,
    output_tokens: u64,
    cost: f64,
    baseline_cost: f64,
}

/// `StatsSnapshot::by_query_type` groups by route too; a query type can go to several
/// routes (Chinese order-status tickets go to Qwen), so sum per query type alone.
fn by_query_type(day: &StatsSnapshot) -> Vec<(String, QtTotals)> {
    let mut m: BTreeMap<String, QtTotals> = BTreeMap::new();
    for r in &day.total {
        let t = m.entry(query_type(r).to_owned()).or_default();
        t.successes += r.successes;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cost += r.cost;
        t.baseline_cost += r.baseline_cost;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.baseline_cost.total_cmp(&a.1.baseline_cost));
    v
}

/// What the example measured of one hour's calls itself. The relay's stats keep latency
/// percentiles per row since start (or the last reset): an hour's cannot be had from two
/// snapshots, nor one for all rows together.
struct HourLatency {
    /// Latency of each call, in ms.
    samples: Vec<f64>,
    failed: u64,
    /// OpenAI's breakers not closed at the end of the hour.
    breakers: String,
}

struct HourStats {
    calls: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    /// Failed attempts (any target), from the stats.
    errors: u64,
    /// Attempts, from the stats.
    attempts: u64,
    /// Of the calls served on the routes that start at OpenAI, the share Anthropic served.
    fallback_share: f64,
    cost: f64,
    failed: u64,
    breakers: String,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

fn hour_series(marks: &[StatsSnapshot], hourly: &mut [HourLatency]) -> Vec<HourStats> {
    let index =
        |s: &StatsSnapshot| -> BTreeMap<(String, Option<String>, String, String), StatsRow> {
            s.total
                .iter()
                .map(|r| {
                    (
                        (
                            r.route.clone(),
                            r.query_type.clone(),
                            r.provider.clone(),
                            r.model.clone(),
                        ),
                        r.clone(),
                    )
                })
                .collect()
        };
    (0..24)
        .map(|h| {
            let before = index(&marks[h]);
            let after = index(&marks[h + 1]);
            let (mut errors, mut att, mut cost) = (0, 0, 0.0);
            let (mut openai_first, mut by_fallback) = (0u64, 0u64);
            for (k, r) in &after {
                let prev = before.get(k);
                let d = |f: fn(&StatsRow) -> u64| f(r) - prev.map_or(0, f);
                errors += d(StatsRow::error_count);
                att += d(attempts);
                cost += r.cost - prev.map_or(0.0, |p| p.cost);
                if ["fast", "strong", "general"].contains(&r.route.as_str()) {
                    let served = d(|r| r.successes);
                    openai_first += served;
                    if r.provider == "anthropic" {
                        by_fallback += served;
                    }
                }
            }
            let s = &mut hourly[h].samples;
            s.sort_by(f64::total_cmp);
            HourStats {
                calls: s.len(),
                p50: quantile(s, 0.50),
                p95: quantile(s, 0.95),
                p99: quantile(s, 0.99),
                errors,
                attempts: att,
                fallback_share: pct(by_fallback as f64, openai_first as f64),
                cost,
                failed: hourly[h].failed,
                breakers: hourly[h].breakers.clone(),
            }
        })
        .collect()
}

fn print_hours(hours: &[HourStats]) {
    println!("\nPer hour (→ Anthropic: the share of the OpenAI-first routes' calls it served):");
    println!(
        "{:<6} {:>6} {:>7} {:>7} {:>7} {:>9} {:>11} {:>8} {:>7}  OpenAI breakers at the end of the hour",
        "hour",
        "calls",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "att. err",
        "→ Anthropic",
        "cost $",
        "failed"
    );
    for (h, s) in hours.iter().enumerate() {
        println!(
            "{:02}:00{} {:>6} {:>7.0} {:>7.0} {:>7.0} {:>8.1}% {:>10.1}% {:>8.3} {:>7}  {}",
            h,
            if OUTAGE.contains(&h) { "!" } else { " " },
            s.calls,
            s.p50,
            s.p95,
            s.p99,
            pct(s.errors as f64, s.attempts as f64),
            s.fallback_share,
            s.cost,
            s.failed,
            if s.breakers.is_empty() {
                "closed"
            } else {
                &s.breakers
            }
        );
    }
}

// ---------------------------------------------------------------------------------------
// The SVG dashboard
// ---------------------------------------------------------------------------------------

fn model_color(model: &str) -> RGBColor {
    match model {
        "gpt-4o-mini" => RGBColor(102, 194, 165),
        "gpt-4o" => RGBColor(27, 120, 98),
        "claude-haiku-4-5" => RGBColor(252, 174, 97),
        "claude-sonnet-4-5" => RGBColor(215, 95, 40),
        "qwen-plus" => RGBColor(158, 154, 224),
        "qwen-max" => RGBColor(84, 62, 170),
        _ => RGBColor(140, 140, 140),
    }
}

fn money(v: f64) -> String {
    if v >= 10.0 {
        format!("${v:.0}")
    } else if v >= 1.0 {
        format!("${v:.1}")
    } else {
        format!("${v:.2}")
    }
}

fn draw_dashboard(path: &str, day: &StatsSnapshot, hours: &[HourStats]) -> Result<(), AnyError> {
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1400, 1900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(90);
    let totals = day.totals();
    header.draw(&Text::new(
        "polyrelay · a support-bot day on the vendor simulator",
        (40, 22),
        ("sans-serif", 30).into_font().style(FontStyle::Bold),
    ))?;
    header.draw(&Text::new(
        format!(
            "{} tickets · spend ${:.2} vs ${:.2} on the baseline ({BASELINE}): {:.0} % saved · \
             OpenAI outage {:02}:00–{:02}:00 routed to Anthropic",
            totals.successes + totals.failures,
            totals.cost,
            totals.baseline_cost,
            pct(totals.saved(), totals.baseline_cost),
            OUTAGE.start,
            OUTAGE.end
        ),
        (40, 62),
        ("sans-serif", 18).into_font().color(&RGBColor(70, 70, 70)),
    ))?;
    let panels = body.split_evenly((3, 1));
    let qts: Vec<(String, QtTotals)> = by_query_type(day);
    draw_cost_by_model(&panels[0], day, &qts)?;
    draw_actual_vs_baseline(&panels[1], &qts)?;
    draw_latency(&panels[2], hours)?;
    root.present()?;
    Ok(())
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type QueryTypeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<SegmentedCoord<RangedCoordusize>, RangedCoordf64>>;

/// The frame of panels (a) and (b): a segment per query type, spend up to `top`.
fn query_type_chart<'a, 'b>(
    area: &Area<'b>,
    caption: &str,
    names: &[&str],
    top: f64,
) -> Result<QueryTypeChart<'a, 'b>, AnyError> {
    let mut chart = ChartBuilder::on(&area.margin(10, 10, 20, 20))
        .caption(caption, ("sans-serif", 22))
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d((0..names.len() - 1).into_segmented(), 0f64..top)?;
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .disable_x_mesh()
        .x_labels(names.len() + 1)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => names.get(*i).map_or(String::new(), |s| s.to_string()),
            _ => String::new(),
        })
        .y_label_formatter(&|v| money(*v))
        .x_desc("query type")
        .y_desc("spend (USD)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    Ok(chart)
}

/// A label centred above the bar of segment `i` whose top is at `y`.
fn above_bar(
    text: String,
    i: usize,
    y: f64,
    size: u32,
) -> Text<'static, (SegmentValue<usize>, f64), String> {
    Text::new(
        text,
        (SegmentValue::CenterOf(i), y),
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom)),
    )
}

/// A legend entry's colour square.
fn swatch(color: RGBColor) -> impl Fn((i32, i32)) -> Rectangle<(i32, i32)> {
    move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
}

/// The legend of every panel, at `position`.
fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> Result<(), AnyError> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

/// (a) Cost per query type, stacked by model.
fn draw_cost_by_model(
    area: &Area<'_>,
    day: &StatsSnapshot,
    qts: &[(String, QtTotals)],
) -> Result<(), AnyError> {
    let names: Vec<&str> = qts.iter().map(|(q, _)| q.as_str()).collect();
    let mut cost: BTreeMap<(&str, &str), f64> = BTreeMap::new();
    for r in &day.total {
        *cost.entry((query_type(r), r.model.as_str())).or_default() += r.cost;
    }
    let top = qts.iter().map(|(_, t)| t.cost).fold(0.0, f64::max) * 1.18;
    let mut chart = query_type_chart(
        area,
        "(a) Spend per query type, by the model that answered",
        &names,
        top,
    )?;
    let seg_px = chart.plotting_area().dim_in_pixel().0 / names.len() as u32;
    let pad = seg_px / 5;
    let mut stacked = vec![0.0; names.len()];
    for p in PROFILES {
        if !cost.keys().any(|(_, m)| *m == p.model) {
            continue;
        }
        let color = model_color(p.model);
        let bars: Vec<_> = names
            .iter()
            .enumerate()
            .filter_map(|(i, q)| {
                let c = *cost.get(&(*q, p.model))?;
                let y0 = stacked[i];
                stacked[i] += c;
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), y0),
                        (SegmentValue::Exact(i + 1), y0 + c),
                    ],
                    color.filled(),
                );
                r.set_margin(0, 0, pad, pad);
                Some(r)
            })
            .collect();
        chart
            .draw_series(bars)?
            .label(if p.model == ONPREM_MODEL {
                "llama-3.3-70b (on-prem)"
            } else {
                p.model
            })
            .legend(swatch(color));
    }
    chart.draw_series(
        stacked
            .iter()
            .enumerate()
            .map(|(i, &y)| above_bar(money(y), i, y + top * 0.01, 15)),
    )?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// (b) Actual spend against the baseline per query type.
fn draw_actual_vs_baseline(area: &Area<'_>, qts: &[(String, QtTotals)]) -> Result<(), AnyError> {
    let names: Vec<&str> = qts.iter().map(|(q, _)| q.as_str()).collect();
    let top = qts
        .iter()
        .map(|(_, t)| t.baseline_cost.max(t.cost))
        .fold(0.0, f64::max)
        * 1.18;
    let mut chart = query_type_chart(
        area,
        &format!("(b) Actual spend against the baseline: every answer priced on {BASELINE}"),
        &names,
        top,
    )?;
    let seg = chart.plotting_area().dim_in_pixel().0 / names.len() as u32;
    let (outer, gap) = (seg / 8, seg / 40);
    let half = seg / 2;
    let bar = |i: usize, y: f64, left: bool, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), 0.0),
                (SegmentValue::Exact(i + 1), y),
            ],
            color.filled(),
        );
        if left {
            r.set_margin(0, 0, outer, seg - half + gap);
        } else {
            r.set_margin(0, 0, half + gap, outer);
        }
        r
    };
    let baseline_color = RGBColor(190, 190, 190);
    let actual_color = RGBColor(31, 119, 180);
    chart
        .draw_series(
            qts.iter()
                .enumerate()
                .map(|(i, (_, t))| bar(i, t.baseline_cost, true, baseline_color)),
        )?
        .label(format!("baseline: all on {BASELINE}"))
        .legend(swatch(baseline_color));
    chart
        .draw_series(
            qts.iter()
                .enumerate()
                .map(|(i, (_, t))| bar(i, t.cost, false, actual_color)),
        )?
        .label("actual: routed by polyrelay")
        .legend(swatch(actual_color));
    chart.draw_series(qts.iter().enumerate().map(|(i, (_, t))| {
        let saved = pct(t.baseline_cost - t.cost, t.baseline_cost);
        let text = format!(
            "{} → {} ({:+.0} %)",
            money(t.baseline_cost),
            money(t.cost),
            -saved
        );
        above_bar(text, i, t.baseline_cost.max(t.cost) + top * 0.01, 14)
    }))?;
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// (c) p50/p95/p99 latency per hour through the outage, and the share served by the fallback.
fn draw_latency(area: &Area<'_>, hours: &[HourStats]) -> Result<(), AnyError> {
    let top = hours.iter().map(|h| h.p99).fold(0.0, f64::max) * 1.6;
    // A log scale, so the median's move shows as well as the tail's.
    let fastest = hours
        .iter()
        .map(|h| h.p50)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    let bottom = if fastest > 25.0 { 20.0 } else { fastest * 0.6 };
    let mut chart = ChartBuilder::on(&area.margin(10, 10, 20, 20))
        .caption(
            "(c) Latency per hour through the OpenAI outage",
            ("sans-serif", 22),
        )
        .margin(10)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .right_y_label_area_size(80)
        .build_cartesian_2d(0f64..24f64, (bottom..top).log_scale())?
        .set_secondary_coord(0f64..24f64, 0f64..115f64);
    chart
        .configure_mesh()
        .light_line_style(TRANSPARENT)
        .x_labels(13)
        .x_label_formatter(&|h| format!("{:02}:00", *h as u32))
        // plotters' log axis labels only some decades: ticks at 1, 2, 5 × 10^k are drawn below.
        .y_labels(0)
        .y_label_formatter(&|_| String::new())
        .x_desc("hour of the simulated day")
        .y_desc("latency of the call")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let ticks: Vec<f64> = [
        10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 2e4,
    ]
    .into_iter()
    .filter(|v| (bottom..top).contains(v))
    .collect();
    let grid = BLACK.mix(0.2);
    chart.draw_series(
        ticks
            .iter()
            .map(|&v| PathElement::new(vec![(0.0, v), (24.0, v)], grid)),
    )?;
    let base = area.get_base_pixel();
    for &v in &ticks {
        let (x, y) = chart.backend_coord(&(0.0, v));
        let (x, y) = (x - base.0, y - base.1);
        area.draw(&PathElement::new(vec![(x - 5, y), (x, y)], BLACK))?;
        area.draw(&Text::new(
            format!("{v:.0} ms"),
            (x - 9, y),
            ("sans-serif", 15)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
    }
    chart
        .configure_secondary_axes()
        .y_label_formatter(&|v| {
            if *v <= 100.0 {
                format!("{v:.0} %")
            } else {
                String::new()
            }
        })
        .y_desc("served by the fallback (OpenAI-first routes)")
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 16))
        .draw()?;
    let (start, end) = (OUTAGE.start as f64, OUTAGE.end as f64);
    chart.draw_series(std::iter::once(Rectangle::new(
        [(start, bottom), (end, top)],
        RGBColor(214, 39, 40).mix(0.10).filled(),
    )))?;
    chart.draw_series(std::iter::once(Text::new(
        "OpenAI outage: 503 / 500 / no answer",
        ((start + end) / 2.0, top * 0.98),
        ("sans-serif", 15)
            .into_font()
            .color(&RGBColor(160, 30, 30))
            .pos(Pos::new(HPos::Center, VPos::Top)),
    )))?;
    let series = |f: fn(&HourStats) -> f64| -> Vec<(f64, f64)> {
        hours
            .iter()
            .enumerate()
            .map(|(h, s)| (h as f64 + 0.5, f(s)))
            .collect()
    };
    type Line = (&'static str, fn(&HourStats) -> f64, RGBColor, u32);
    let lines: [Line; 3] = [
        ("p50", |s| s.p50, RGBColor(31, 119, 180), 3),
        ("p95", |s| s.p95, RGBColor(255, 127, 14), 3),
        ("p99", |s| s.p99, RGBColor(214, 39, 40), 2),
    ];
    for (name, f, color, width) in lines {
        chart
            .draw_series(LineSeries::new(series(f), color.stroke_width(width)).point_size(3))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
    }
    let fallback = RGBColor(120, 120, 120);
    chart
        .draw_secondary_series(DashedLineSeries::new(
            series(|s| s.fallback_share),
            8,
            5,
            fallback.stroke_width(2),
        ))?
        .label("% served by Anthropic (right axis)")
        .legend(move |(x, y)| {
            plotters::element::DashedPathElement::new(
                [(x, y), (x + 20, y)],
                5,
                3,
                fallback.stroke_width(2),
            )
        });
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}

// ---------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------

const SYSTEM_PROMPT: &str = "You are the customer-support assistant of Northwind Outfitters, \
an online shop for outdoor gear. Answer in the customer's language, briefly and politely. \
Use only the account and order data given below; never invent tracking numbers, dates or \
amounts. For refunds, follow the policy: items may be returned within 30 days of delivery \
in their original condition; refunds go back to the original payment method within 5 to 10 \
business days; duplicate charges are reversed at once once confirmed by the payments team. \
If a question needs a human (legal threats, safety issues, chargebacks already filed with \
the bank), say that a colleague will follow up within one business day and summarise the \
case in one line for them, prefixed with HANDOFF:.";

const ORDER_EN: &[&str] = &[
    "Where is my order #{n}?",
    "Hi, my order #{n} was supposed to arrive yesterday and the tracking hasn't moved in four days. Is it lost?",
    "Can you tell me when #{n} will be delivered? I need it before the weekend for a camping trip.",
    "The tracking for order {n} says delivered but there's nothing at my door or with the neighbours.",
    "Has #{n} shipped yet?",
    "I ordered a tent and two sleeping bags (order {n}); only the tent arrived. Where is the rest?",
    "order {n} status pls",
    "Why is my order #{n} stuck at customs, and do I have to pay anything to get it released?",
];

const ORDER_OTHER_LANGS: &[&str] = &[
    "¿Dónde está mi pedido #{n}? Lo hice hace una semana y no tengo noticias.",
    "Wo bleibt meine Bestellung {n}? Die Sendungsverfolgung zeigt seit Tagen nichts Neues.",
    "Bonjour, ma commande {n} devait arriver hier, pouvez-vous me dire où elle en est ?",
    "Olá, o meu pedido {n} ainda não chegou. Podem verificar?",
];

const ZH_ORDER: &[&str] = &[
    "你好，我的订单{n}什么时候能到？已经一个星期了。",
    "订单{n}的物流信息三天没有更新了，是不是丢件了？",
    "请问我的包裹{n}现在在哪里？",
    "我的订单{n}显示已签收，但我没有收到。",
];

const ZH_REFUND: &[&str] = &[
    "我的信用卡被扣了两次款（订单{n}），请尽快退款。",
    "订单{n}的商品有质量问题，我已经寄回去两周了，为什么还没有退款？",
    "你们拒绝了我的退款申请，但商品根本没有送到，我要投诉。",
];

const REFUND_STORY: &[&str] = &[
    "I ordered a down jacket three weeks ago and it arrived with a torn seam along the left sleeve.",
    "I sent it back the same day with the prepaid label, and the tracking shows you received it on the 12th.",
    "Since then I have written to you twice and got an automatic reply each time.",
    "Meanwhile my card was charged a second time for the same order, which I only noticed on my statement.",
    "Your chat agent last week promised a full refund within five business days; nothing has arrived.",
    "I have been a customer for six years and have never had a problem like this before.",
    "The seller on your marketplace now says the return was never received and refuses to refund me.",
    "I have the courier's proof of delivery with a signature and a photo of the parcel at your warehouse.",
    "If this is not resolved by Friday I will file a chargeback with my bank and leave a review.",
    "To be clear, I am asking for the duplicate charge to be reversed and the original amount refunded.",
    "I also paid 14.90 for express shipping that turned out to take nine days.",
    "Please do not send me another voucher; I want the money back on my card.",
];

const SENSITIVE: &[&str] = &[
    "My prescription glasses and my medical records from the clinic were in the parcel that went missing. Who has seen its contents?",
    "I am writing on behalf of my late father; I have the death certificate and his passport number if you need them to close his account.",
    "Our lawyer asks for every message you hold about my order and my address history, under data-protection law.",
    "Please delete my health data: I told your agent about my diagnosis when I asked about the heated insoles.",
    "Someone used my social security number to open an account with you and placed orders in my name.",
];

const KB_TITLES: &[&str] = &[
    "Returns and refunds",
    "Changing a delivery address",
    "Payment methods and duplicate charges",
    "Warranty on tents and backpacks",
    "International shipping and customs",
    "Gift cards and vouchers",
    "Product care: down and synthetic insulation",
];

const POLICY: &[&str] = &[
    "Items can be returned within 30 days of delivery in their original condition, with tags attached.",
    "Refunds are issued to the original payment method within 5 to 10 business days of our receiving the item.",
    "Return shipping is free for members of the Plus and Business tiers; others pay a flat fee of 4.95.",
    "Tents, backpacks and sleeping bags carry a two-year warranty against defects in materials and workmanship.",
    "The warranty does not cover normal wear, damage from misuse, or repairs made by third parties.",
    "Orders placed before 2 pm ship the same business day; express orders arrive within one to two business days.",
    "International orders may be subject to import duties and taxes, which are paid by the recipient.",
    "A delivery address can be changed until the order has been handed to the carrier.",
    "Gift cards are valid for three years and cannot be exchanged for cash.",
    "If a parcel is marked as delivered but has not arrived, please wait 48 hours and check with neighbours before contacting us.",
    "Down products should be washed at low temperature with a dedicated detergent and tumble dried with tennis balls.",
    "Duplicate charges are usually authorisations that disappear within three business days; confirmed duplicates are reversed at once.",
];

const ANSWERS_EN: &[&str] = &[
    "Thanks for getting in touch, and sorry for the wait.",
    "I have checked your order: it left our warehouse on Monday and is now with the carrier.",
    "The latest tracking event shows it at the regional depot, and delivery is expected tomorrow before 6 pm.",
    "I can see the duplicate charge on your card; I have asked the payments team to reverse it, which takes up to three business days.",
    "Your return was received at our warehouse and the refund of the full amount has been issued to your card.",
    "If the parcel has not arrived by Friday, reply to this message and I will send a replacement at no cost.",
    "Customs duties for your country are paid by the recipient; the carrier will contact you with the amount.",
    "I have updated the delivery address on the order, since it has not yet been handed to the carrier.",
    "The remaining items of your order ship separately from our second warehouse and have their own tracking number.",
    "Under our policy, items can be returned within 30 days of delivery in their original condition.",
    "I understand how frustrating this is, and I have added a note to your account so that the next agent sees the whole history.",
    "HANDOFF: customer disputes a refusal to refund a returned item; proof of delivery attached; wants a card refund, not a voucher.",
];

const ANSWERS_ZH: &[&str] = &[
    "您好，感谢您的耐心等待。",
    "我们已经查询了您的订单，包裹目前在转运中心，预计明天送达。",
    "重复扣款已确认，我们已经通知支付团队退款，预计三个工作日内到账。",
    "您寄回的商品我们已经收到，全额退款已经原路退回。",
    "如果周五前仍未收到包裹，请回复此消息，我们将免费为您补发。",
    "给您带来的不便，我们深表歉意。",
];

const ANSWERS_TRANSLATED: &[&str] = &[
    "Los artículos pueden devolverse en un plazo de 30 días desde la entrega, en su estado original y con las etiquetas.",
    "Die Erstattung erfolgt innerhalb von 5 bis 10 Werktagen nach Eingang der Ware auf das ursprüngliche Zahlungsmittel.",
    "Les tentes, sacs à dos et sacs de couchage sont garantis deux ans contre tout défaut de matériau ou de fabrication.",
    "As encomendas feitas antes das 14h são enviadas no mesmo dia útil.",
    "国際注文には輸入関税および税金がかかる場合があり、受取人のご負担となります。",
    "L'indirizzo di consegna può essere modificato finché l'ordine non è stato affidato al corriere.",
];

const ITEMS: &[&str] = &[
    "2-person tent",
    "down jacket (M)",
    "trail running shoes 42",
    "sleeping bag -5 °C",
    "headlamp",
    "merino base layer",
    "40 L backpack",
    "water filter",
    "trekking poles",
    "insulated bottle",
];
