//! Stats recording: what recording one finished call costs (through the `bench-internals`
//! feature's `polyrelay::relay::bench::stats`), with 32 tasks on a 2-worker runtime all
//! recording into the same rows (the contended case), and on one task.
//!
//! `cargo bench --features bench-internals --bench accounting` prints wall ns per recorded
//! call; `--count N` records N calls per task on 32 tasks and exits (for callgrind, see
//! BENCHMARKS.md).

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use polyrelay::providers::OpenAi;
use polyrelay::relay::bench;
use polyrelay::{Chain, Relay};

const INTENTS: [&str; 4] = [
    "order_status",
    "refund_dispute",
    "translation",
    "product_question",
];

fn record_n(rt: &tokio::runtime::Runtime, relay: &Relay, tasks: usize, per_task: usize) -> f64 {
    let stats = Arc::new(["gpt-4o-mini", "gpt-4o"].map(|m| bench::stats(relay, "sim", m)));
    let start = Instant::now();
    rt.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|t| {
                let stats = stats.clone();
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let intent = INTENTS[(i + t) % INTENTS.len()];
                        stats[i % 2].record(black_box(Some(intent)));
                        if i % 64 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.await;
        }
    });
    start.elapsed().as_nanos() as f64 / (tasks * per_task) as f64
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let relay = Relay::builder()
        .provider(
            "sim",
            OpenAi::compatible("sim", "http://127.0.0.1:9/v1", "k"),
        )
        .route("support", Chain::of(["sim/gpt-4o-mini"]))
        .build()
        .expect("relay");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--count") {
        let n = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(1000);
        record_n(&rt, &relay, 32, n);
        return;
    }
    // Warm up (rows and histograms allocated), then measure.
    record_n(&rt, &relay, 32, 2_000);
    println!("stats recording, wall ns per finished call (2 workers):");
    for (tasks, per_task) in [(1, 200_000), (32, 20_000)] {
        let mut runs: Vec<f64> = (0..5)
            .map(|_| record_n(&rt, &relay, tasks, per_task))
            .collect();
        runs.sort_by(f64::total_cmp);
        println!(
            "  {tasks:>2} tasks: median {:.0} ns (min {:.0}, max {:.0})",
            runs[2], runs[0], runs[4]
        );
    }
    let s = relay.stats();
    black_box(s.total.len());
}
