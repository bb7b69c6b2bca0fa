//! Routing costs: an intent rule's decision, language detection on a 500-character message,
//! the in-process classifier, and per-request health and strategy bookkeeping with 32
//! concurrent tasks (the last two through the `bench-internals` feature's
//! `polyrelay::relay::bench`).
//!
//! `cargo bench --features bench-internals --bench routing` runs the criterion groups, then
//! prints the bookkeeping figures measured with 32 tasks on a 2-worker runtime.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use polyrelay::relay::bench;
use polyrelay::routing::{
    IntentRule, LanguageRule, Router, RouterContext, RoutingQuery, Script, TextClassifier,
};
use polyrelay::{Chain, ChatRequest, Relay, Strategy};

mod support;
use support::Idle;

fn relay() -> Relay {
    let mut b = Relay::builder().provider("p", Idle);
    for (name, strategy) in [
        ("ordered", Strategy::Ordered),
        ("round_robin", Strategy::RoundRobin),
        ("least_busy", Strategy::LeastBusy),
        ("lowest_latency", Strategy::LowestLatency),
        ("weighted_random", Strategy::WeightedRandom),
        ("cheapest_first", Strategy::CheapestFirst),
    ] {
        b = b.route(name, Chain::of(["p/a", "p/b", "p/c"]).strategy(strategy));
    }
    b.build().expect("relay")
}

const MESSAGE_500: &str = "Hello, I ordered a pair of running shoes three weeks ago (order \
    #48213) and the tracking page has said 'label created' ever since. I contacted the seller \
    twice through your messaging system but nobody answered. I would like to know whether the \
    parcel was actually handed to the carrier, and if not, I want a full refund to my credit \
    card rather than store credit. Please also tell me how long a refund usually takes to \
    appear on my statement, because I need the money before the end of the month. Thanks!";

/// The language rule the benchmark measures, and its 500-character message.
fn language_case() -> (LanguageRule, String) {
    let rule = LanguageRule::new()
        .script(Script::Han, "qwen")
        .language("fra", "mistral")
        .and_then(|r| r.language("eng", "general"))
        .expect("known languages");
    (rule, MESSAGE_500.chars().take(500).collect())
}

fn criterion_groups(c: &mut Criterion, rt: &tokio::runtime::Runtime, relay: &Relay) {
    let rule = IntentRule::new()
        .intent("order_status", "cheap")
        .intent("refund_dispute", "strong")
        .intent("translation", "multilingual");
    let req = ChatRequest::new("support")
        .user("Where is my order?")
        .intent("refund_dispute");
    let cx = RouterContext::new(relay);
    c.bench_function("intent_rule_decision", |b| {
        b.iter(|| {
            let q = RoutingQuery::new(black_box(&req));
            // The rule never waits: one poll with a no-op waker finishes it.
            let mut fut = rule.route(&q, &cx);
            let mut task = std::task::Context::from_waker(std::task::Waker::noop());
            black_box(fut.as_mut().poll(&mut task))
        })
    });
    let (language, text) = language_case();
    c.bench_function("language_rule_500_chars_latin", |b| {
        b.iter(|| black_box(language.choose(black_box(&text))))
    });
    let short: String = MESSAGE_500.chars().take(150).collect();
    c.bench_function("language_rule_150_chars_latin", |b| {
        b.iter(|| black_box(language.choose(black_box(&short))))
    });
    let everything = language.clone().all_languages();
    c.bench_function("language_rule_500_chars_latin_all_languages", |b| {
        b.iter(|| black_box(everything.choose(black_box(&text))))
    });
    let chinese: String = "您好，我三周前订购了一双跑鞋，物流页面一直显示已创建标签。".repeat(8);
    let chinese: String = chinese.chars().take(500).collect();
    c.bench_function("language_rule_500_chars_han", |b| {
        b.iter(|| black_box(language.choose(black_box(&chinese))))
    });
    let classifier =
        TextClassifier::from_jsonl_str(include_str!("../tests/data/support_tickets.jsonl"))
            .expect("classifier");
    let ticket = "Hi, I was charged twice for order #48213 and the seller will not refund me. \
                  Can you open a dispute? I want my money back on my card, not store credit.";
    c.bench_function("classifier_predict_ticket", |b| {
        b.iter(|| black_box(classifier.predict(black_box(ticket))))
    });
    let plan_req = ChatRequest::new("lowest_latency").user("x");
    let route = bench::route(relay, "lowest_latency").expect("route");
    c.bench_function("plan_lowest_latency_3_targets", |b| {
        b.iter(|| black_box(route.plan(black_box(&plan_req))))
    });
    let health = bench::health(relay, "p", "a");
    c.bench_function("health_cycle_1_task", |b| {
        b.iter(|| health.cycle(Duration::from_millis(120)))
    });
    let _ = rt;
}

/// Per-request bookkeeping (plan with a strategy + health of the served target) with 32
/// tasks on two workers, all on the same targets: ns per request.
fn bookkeeping_32_tasks(rt: &tokio::runtime::Runtime, relay: &Relay, route: &str) -> f64 {
    bookkeeping_n(rt, relay, route, 20_000)
}

fn bookkeeping_n(rt: &tokio::runtime::Runtime, relay: &Relay, route: &str, per_task: usize) -> f64 {
    let req = Arc::new(ChatRequest::new(route).user("x"));
    let targets = Arc::new(["a", "b", "c"].map(|m| bench::health(relay, "p", m)));
    let plan = Arc::new(bench::route(relay, route).expect("route"));
    let start = Instant::now();
    rt.block_on(async {
        let tasks: Vec<_> = (0..32)
            .map(|_| {
                let (plan, req, targets) = (plan.clone(), req.clone(), targets.clone());
                tokio::spawn(async move {
                    for i in 0..per_task {
                        black_box(plan.plan(&req).ok());
                        targets[i % 3].cycle(Duration::from_millis(100));
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    });
    start.elapsed().as_nanos() as f64 / (32 * per_task) as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let relay = relay();
    // `--count ROUTE N`: N requests' bookkeeping per task on 32 tasks, then exit (for
    // instruction counts with callgrind; see BENCHMARKS.md).
    let args: Vec<String> = std::env::args().collect();
    // `--count-language N`: N decisions of the language rule on the 500-character message.
    if let Some(i) = args.iter().position(|a| a == "--count-language") {
        let n: usize = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(100);
        let (rule, text) = language_case();
        for _ in 0..n {
            black_box(rule.choose(black_box(&text)));
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let route = args.get(i + 1).map(String::as_str).unwrap_or("ordered");
        let n = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(1000);
        bookkeeping_n(&rt, &relay, route, n);
        return;
    }
    let summary_only = std::env::args().any(|a| a == "--summary-only");
    if !summary_only {
        let mut c = Criterion::default()
            .configure_from_args()
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        criterion_groups(&mut c, &rt, &relay);
        c.final_summary();
    }
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    println!("\nbookkeeping per request (plan + health), 32 tasks on 2 workers, wall ns/request:");
    for route in [
        "ordered",
        "round_robin",
        "least_busy",
        "lowest_latency",
        "weighted_random",
        "cheapest_first",
    ] {
        // Two cores shared by 32 tasks: wall time per request is the cost per core / 2.
        let ns = bookkeeping_32_tasks(&rt, &relay, route);
        println!(
            "  {route:<16} {ns:>7.0} ns wall  ({:>7.0} ns CPU on 2 cores)",
            ns * 2.0
        );
    }
}
