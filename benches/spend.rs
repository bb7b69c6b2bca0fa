//! Spend control bookkeeping: what one request's budget and rate-limit bookkeeping costs
//! (`polyrelay::relay::bench::spend(..).cycle()`, behind the `bench-internals` feature: three
//! matching budgets reserve an estimate and settle the actual; the target's limiter admits,
//! frees and reconciles), with 32 tasks on a 2-worker runtime all on the same budgets and
//! limiter (the contended case), and on one task; with both (three budgets, the third
//! rolling; three calendar budgets; one budget, calendar or rolling), budgets only and
//! limiter only.
//!
//! `cargo bench --features bench-internals --bench spend` runs the criterion groups
//! (`spend_1_task`, `spend_32_tasks`), then prints wall ns per cycle (median of 5 runs);
//! `-- --summary-only` prints only the latter. `--count N [VARIANT]` runs N cycles per task on 32 tasks and exits (for callgrind,
//! see BENCHMARKS.md; keep N ≤ 15,000 so that one relay serves the whole run).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use polyrelay::relay::bench;
use polyrelay::{Budget, Chain, Price, RateLimit, Relay, Target};

mod support;
use support::Idle;

/// What a variant's relay has: how many of the three budgets, whether the last of them is
/// rolling rather than calendar, and the rate limit.
#[derive(Clone, Copy)]
struct Setup {
    budgets: usize,
    rolling: bool,
    limiter: bool,
}

const fn setup(budgets: usize, rolling: bool, limiter: bool) -> Setup {
    Setup {
        budgets,
        rolling,
        limiter,
    }
}

/// The variants.
const VARIANTS: [(&str, Setup); 6] = [
    ("budgets_and_limiter", setup(3, true, true)),
    ("calendar_budgets_and_limiter", setup(3, false, true)),
    ("one_budget_and_limiter", setup(1, false, true)),
    ("one_rolling_budget_and_limiter", setup(1, true, true)),
    ("budgets_only", setup(3, true, false)),
    ("limiter_only", setup(0, false, true)),
];

/// Cycles one relay runs before the next is built. A cycle's estimate (700 tokens) takes
/// 700 cells of the tokens-per-minute bucket (2^31 - 1 cells, one every ~28 ns), so a fresh
/// relay admits about 3 M cycles at the bench's pace and then refuses until the bucket
/// refills (51 k cycles/s); 500 k stays well clear of that.
const FRESH_EVERY: usize = 500_000;

/// A relay with route `r` over `p/m`: up to three budgets that match every cycle (global USD,
/// route USD, intent `billing` tokens, rolling or calendar) and/or a rate limit on `p/m`,
/// none of them ever reached.
fn relay(
    Setup {
        budgets,
        rolling,
        limiter,
    }: Setup,
) -> Relay {
    let mut b = Relay::builder().provider("p", Idle).route(
        "r",
        Chain::of([Target::new("p", "m").price(Price::per_million(2.5, 10.0))]),
    );
    let all = [
        Budget::usd("global", 1e9),
        Budget::usd("route", 1e9).for_route("r"),
        Budget::tokens("billing", u64::MAX / 4).for_intent("billing"),
    ];
    for (i, budget) in all.into_iter().take(budgets).enumerate() {
        b = b.budget(if i + 1 == budgets && rolling {
            budget.rolling()
        } else {
            budget
        });
    }
    if limiter {
        b = b.rate_limit(
            "p/m",
            RateLimit::new()
                .requests_per_minute(u32::MAX / 2)
                .tokens_per_minute(u32::MAX / 2)
                .max_concurrent(1024),
        );
    }
    b.build().expect("relay")
}

/// `per_task` cycles on each of `tasks` tasks, on fresh relays of variant `setup` every [`FRESH_EVERY`] cycles: the wall time of the cycles (relay builds and
/// their first checking cycle not counted). Panics if any cycle was refused.
fn spend_n(rt: &tokio::runtime::Runtime, setup: Setup, tasks: usize, per_task: usize) -> Duration {
    let chunk = (FRESH_EVERY / tasks).max(1);
    let mut elapsed = Duration::ZERO;
    let mut left = per_task;
    while left > 0 {
        let n = left.min(chunk);
        left -= n;
        let relay = relay(setup);
        let spend = std::sync::Arc::new(bench::spend(&relay, "r").expect("route r"));
        assert!(spend.cycle(), "the budgets or the limit refused a cycle");
        let start = Instant::now();
        let refused: usize = rt.block_on(async {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let spend = spend.clone();
                    tokio::spawn(async move {
                        let mut refused = 0;
                        for i in 0..n {
                            refused += usize::from(!black_box(spend.cycle()));
                            if i % 64 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                        refused
                    })
                })
                .collect();
            let mut refused = 0;
            for h in handles {
                refused += h.await.expect("task");
            }
            refused
        });
        elapsed += start.elapsed();
        assert_eq!(
            refused, 0,
            "refused cycles: the figure would not be the admitted path"
        );
    }
    elapsed
}

fn criterion_groups(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    for (group, tasks) in [("spend_1_task", 1), ("spend_32_tasks", 32)] {
        let mut g = c.benchmark_group(group);
        for (name, setup) in VARIANTS {
            g.bench_function(name, |b| {
                // One iteration is one cycle; the cycles are spread over the tasks.
                b.iter_custom(|iters| {
                    let per_task = (iters as usize).div_ceil(tasks);
                    let d = spend_n(rt, setup, tasks, per_task);
                    d.mul_f64(iters as f64 / (tasks * per_task) as f64)
                })
            });
        }
        g.finish();
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(1000);
        let variant = args
            .get(i + 2)
            .map_or("budgets_and_limiter", String::as_str);
        let (_, setup) = VARIANTS
            .into_iter()
            .find(|v| v.0 == variant)
            .expect("a variant named in VARIANTS");
        spend_n(&rt, setup, 32, n);
        return;
    }
    if !args.iter().any(|a| a == "--summary-only") {
        let mut c = Criterion::default()
            .configure_from_args()
            .measurement_time(Duration::from_secs(2))
            .warm_up_time(Duration::from_millis(500));
        criterion_groups(&mut c, &rt);
        c.final_summary();
    }
    if args.iter().any(|a| a == "--list" || a == "--test") {
        return;
    }
    // Warm up, then measure.
    spend_n(&rt, VARIANTS[0].1, 32, 2_000);
    println!("\nspend bookkeeping, wall ns per cycle (2 workers; median of 5 runs):");
    for (name, setup) in VARIANTS {
        for (tasks, per_task) in [(1, 200_000), (32, 20_000)] {
            let mut runs: Vec<f64> = (0..5)
                .map(|_| {
                    let d = spend_n(&rt, setup, tasks, per_task);
                    d.as_nanos() as f64 / (tasks * per_task) as f64
                })
                .collect();
            runs.sort_by(f64::total_cmp);
            println!(
                "  {name:<30} {tasks:>2} tasks: median {:>4.0} ns (min {:.0}, max {:.0})",
                runs[2], runs[0], runs[4]
            );
        }
    }
}
