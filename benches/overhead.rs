//! Relay overhead against a direct reqwest call, both talking to the loopback simulator with
//! the same client.
//!
//! `cargo bench --bench overhead` runs the criterion groups and then prints a summary table
//! (CPU µs added per request and throughput ratio at concurrency 1 and 32, and the failover
//! case). `cargo bench --bench overhead -- --summary-only` prints just the table.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{Criterion, Throughput};
use polyrelay::providers::OpenAi;
use polyrelay::routing::{IntentRule, Rules};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    CallContext, Chain, ChatRequest, ChatResponse, ChatStream, Error, Provider, Relay, RetryPolicy,
    Strategy,
};
use serde::{Deserialize, Serialize};

const ANSWER: &str = "Your order #123 shipped this morning and should arrive within two days.";

/// What an application using reqwest directly would decode into.
#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectResponse {
    id: String,
    object: String,
    created: u64,
    model: String,
    choices: Vec<DirectChoice>,
    usage: Option<DirectUsage>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectChoice {
    index: u32,
    message: DirectMessage,
    finish_reason: Option<String>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectMessage {
    role: String,
    content: Option<String>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct DirectUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}
#[derive(Serialize)]
struct DirectRequest<'a> {
    model: &'a str,
    messages: [DirectMsgOut<'a>; 2],
}
#[derive(Serialize)]
struct DirectMsgOut<'a> {
    role: &'a str,
    content: &'a str,
}

struct Setup {
    /// The client side: one thread, so its CPU time is the client's alone.
    rt: tokio::runtime::Runtime,
    /// The simulator on its own thread.
    _sim_rt: tokio::runtime::Runtime,
    _sim: Simulator,
    client: reqwest::Client,
    url: String,
    relay: Relay,
    provider: OpenAi,
    request: ChatRequest,
    /// The same request through a router (intent rule), to a two-target route balanced by
    /// lowest latency, breakers on.
    routed_request: ChatRequest,
    /// `relay` without stats or a baseline.
    relay_plain: Relay,
}

fn setup() -> Setup {
    let sim_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sim = sim_rt.block_on(Simulator::start()).expect("simulator");
    sim.set_default(Reply::openai_text(ANSWER));
    sim.script(
        "down",
        [Reply::openai_error(
            503,
            "server_error",
            None,
            "unavailable",
        )],
    );
    let client = polyrelay::http::default_client().expect("client");
    let base = format!("{}/v1", sim.base_url());
    let provider = OpenAi::compatible("sim", &base, "sk-bench");
    let relay = Relay::builder()
        .http_client(client.clone())
        .provider("sim", provider.clone())
        .route("direct", Chain::new().target("sim/gpt-4o-mini"))
        .route(
            "failover",
            Chain::new()
                .target("sim/down")
                .target("sim/gpt-4o-mini")
                .retry(RetryPolicy::no_retries()),
        )
        .route(
            "balanced",
            Chain::of(["sim/gpt-4o-mini", "sim/gpt-4o-mini-2"]).strategy(Strategy::LowestLatency),
        )
        .router(
            "support",
            Rules::new("direct").rule(
                "intents",
                IntentRule::new().intent("order_status", "balanced"),
            ),
        )
        .baseline("openai/gpt-4o")
        .build()
        .expect("relay");
    // The same direct route with no stats and no baseline: what accounting costs is the
    // difference (costs are still priced; that is a few float operations).
    let relay_plain = Relay::builder()
        .http_client(client.clone())
        .provider("sim", provider.clone())
        .route("direct", Chain::new().target("sim/gpt-4o-mini"))
        .without_stats()
        .build()
        .expect("relay");
    let request = ChatRequest::new("direct")
        .system("You are a concise support agent.")
        .user("Where is my order #123?");
    let mut routed_request = request.clone();
    routed_request.model = "support".into();
    let routed_request = routed_request.intent("order_status");
    Setup {
        rt,
        _sim_rt: sim_rt,
        _sim: sim,
        client,
        url: format!("{base}/chat/completions"),
        relay,
        relay_plain,
        provider,
        request,
        routed_request,
    }
}

async fn direct_call(client: &reqwest::Client, url: &str, model: &str) -> DirectResponse {
    let body = serde_json::to_vec(&DirectRequest {
        model,
        messages: [
            DirectMsgOut {
                role: "system",
                content: "You are a concise support agent.",
            },
            DirectMsgOut {
                role: "user",
                content: "Where is my order #123?",
            },
        ],
    })
    .expect("encode");
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .bearer_auth("sk-bench")
        .body(body)
        .send()
        .await
        .expect("send");
    let status = resp.status();
    let bytes = resp.bytes().await.expect("body");
    if !status.is_success() {
        // The failover baseline: what a hand-written fallback does after a 503.
        return Box::pin(direct_call(client, url, "gpt-4o-mini")).await;
    }
    serde_json::from_slice(&bytes).expect("decode")
}

async fn relay_call(relay: &Relay, req: &ChatRequest) -> ChatResponse {
    relay.chat(req).await.expect("relay answer")
}

/// Runs `n` calls with `concurrency` workers on the client thread; returns (wall, client CPU).
fn run_batch<F, Fut>(s: &Setup, n: usize, concurrency: usize, make: F) -> (Duration, Duration)
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    s.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for w in 0..concurrency {
            let make = make.clone();
            let share = n / concurrency + usize::from(w < n % concurrency);
            set.spawn(async move {
                for _ in 0..share {
                    make().await;
                }
            });
        }
        while set.join_next().await.is_some() {}
    });
    (t0.elapsed(), thread_cpu() - cpu0)
}

/// User + system CPU time of the calling thread (the client runtime's only thread).
fn thread_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_THREAD is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and initialised the struct.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn criterion_groups(c: &mut Criterion, s: &Setup) {
    let mut g = c.benchmark_group("chat_c1");
    g.throughput(Throughput::Elements(1));
    g.bench_function("direct_reqwest", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(direct_call(&s.client, &s.url, "gpt-4o-mini").await) })
    });
    g.bench_function("relay", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(relay_call(&s.relay, &s.request).await) })
    });
    let failover = ChatRequest::new("failover").user("Where is my order #123?");
    g.bench_function("relay_failover_503", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(relay_call(&s.relay, &failover).await) })
    });
    g.bench_function("direct_failover_503", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(direct_call(&s.client, &s.url, "down").await) })
    });
    g.finish();

    let mut g = c.benchmark_group("chat_c32");
    g.throughput(Throughput::Elements(32));
    g.sample_size(30);
    g.bench_function("direct_reqwest", |b| {
        b.to_async(&s.rt).iter(|| async {
            let calls = (0..32).map(|_| direct_call(&s.client, &s.url, "gpt-4o-mini"));
            black_box(futures::future::join_all(calls).await)
        })
    });
    g.bench_function("relay", |b| {
        b.to_async(&s.rt).iter(|| async {
            let calls = (0..32).map(|_| relay_call(&s.relay, &s.request));
            black_box(futures::future::join_all(calls).await)
        })
    });
    g.finish();

    // Codec cost: what the OpenAI provider does to bytes vs what hand-written serde does.
    let wire = {
        let body = s.rt.block_on(async {
            let r = s
                .client
                .post(&s.url)
                .header("content-type", "application/json")
                .body(r#"{"model":"gpt-4o-mini","messages":[]}"#)
                .send()
                .await
                .expect("send");
            r.bytes().await.expect("body")
        });
        body.to_vec()
    };
    let mut g = c.benchmark_group("codec_openai");
    g.bench_function("polyrelay_encode", |b| {
        b.iter(|| {
            black_box(
                polyrelay::providers::openai::encode_request(&s.request, "gpt-4o-mini", false)
                    .expect("encode"),
            )
        })
    });
    g.bench_function("direct_encode", |b| {
        b.iter(|| {
            black_box(
                serde_json::to_vec(&DirectRequest {
                    model: "gpt-4o-mini",
                    messages: [
                        DirectMsgOut {
                            role: "system",
                            content: "You are a concise support agent.",
                        },
                        DirectMsgOut {
                            role: "user",
                            content: "Where is my order #123?",
                        },
                    ],
                })
                .expect("encode"),
            )
        })
    });
    g.bench_function("polyrelay_decode", |b| {
        b.iter(|| black_box(polyrelay::providers::openai::decode_response(&wire).expect("decode")))
    });
    g.bench_function("direct_decode", |b| {
        b.iter(|| black_box(serde_json::from_slice::<DirectResponse>(&wire).expect("decode")))
    });
    g.bench_function("request_clone", |b| b.iter(|| black_box(s.request.clone())));
    g.finish();

    // The relay's own CPU with no network: a provider that answers at once.
    let instant = instant_relay();
    let req = ChatRequest::new("r").user("Where is my order #123?");
    c.bench_function("relay_in_process_provider", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(instant.chat(req.clone()).await.expect("answer")) })
    });
}

#[derive(Debug)]
struct Instant0(ChatResponse);

#[async_trait]
impl Provider for Instant0 {
    fn name(&self) -> &str {
        "instant"
    }
    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        Ok(self.0.clone())
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Ok(ChatStream::new(futures::stream::empty()))
    }
}

fn instant_relay() -> Relay {
    let body = format!(
        r#"{{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"{ANSWER}"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":14,"completion_tokens":18,"total_tokens":32}}}}"#
    );
    let resp = polyrelay::providers::openai::decode_response(body.as_bytes()).expect("fixture");
    Relay::builder()
        .provider_arc("instant", Arc::new(Instant0(resp)))
        .route("r", Chain::new().target("instant/m"))
        .build()
        .expect("relay")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Alternates blocks of direct and relay calls (so drift and noise hit both alike) and
/// reports medians over the blocks.
fn summary(s: &Setup) {
    println!(
        "\n== summary: medians over alternating blocks (same client; client CPU = its one thread; simulator on another thread) =="
    );
    println!(
        "{:<14} {:>7} {:>12} {:>12} {:>12} {:>12}",
        "case", "blocks", "direct req/s", "relay req/s", "direct CPU", "relay CPU"
    );
    for (concurrency, per_block, blocks) in [(1usize, 500usize, 30usize), (32, 2000, 30)] {
        let mut rps = [Vec::new(), Vec::new(), Vec::new()];
        let mut cpu = [Vec::new(), Vec::new(), Vec::new()];
        for block in 0..=blocks {
            for mode in 0..3 {
                let (client, url) = (s.client.clone(), Arc::<str>::from(s.url.as_str()));
                let (relay, req) = (s.relay.clone(), Arc::new(s.request.clone()));
                let provider = s.provider.clone();
                let cx = polyrelay::CallContext::new(s.client.clone());
                let req2 = Arc::new(s.request.clone());
                let (wall, used) = if mode == 2 {
                    run_batch(s, per_block, concurrency, move || {
                        let (p, cx, q) = (provider.clone(), cx.clone(), req2.clone());
                        async move {
                            black_box(p.chat(&q, "gpt-4o-mini", &cx).await.expect("answer"));
                        }
                    })
                } else if mode == 0 {
                    run_batch(s, per_block, concurrency, move || {
                        let (c, u) = (client.clone(), url.clone());
                        async move {
                            black_box(direct_call(&c, &u, "gpt-4o-mini").await);
                        }
                    })
                } else {
                    run_batch(s, per_block, concurrency, move || {
                        let (r, q) = (relay.clone(), req.clone());
                        async move {
                            black_box(relay_call(&r, &q).await);
                        }
                    })
                };
                if block == 0 {
                    continue; // warm-up block
                }
                rps[mode].push(per_block as f64 / wall.as_secs_f64());
                cpu[mode].push(used.as_secs_f64() * 1e6 / per_block as f64);
            }
        }
        let [d_rps, r_rps, p_rps] = rps.map(median);
        let [d_cpu, r_cpu, p_cpu] = cpu.map(median);
        println!("  provider alone: {p_rps:.0} req/s, {p_cpu:.1} µs CPU");
        println!(
            "{:<14} {:>7} {:>12.0} {:>12.0} {:>10.1}µs {:>10.1}µs",
            format!("c={concurrency}"),
            blocks,
            d_rps,
            r_rps,
            d_cpu,
            r_cpu
        );
        println!(
            "  => c={concurrency}: relay adds {:.1} CPU µs/request; throughput ratio relay/direct = {:.3}",
            r_cpu - d_cpu,
            r_rps / d_rps
        );
    }
}

/// `--count <direct|relay|plain|routed> <n> <concurrency>`: just run `n` calls and exit, for counting
/// instructions with `valgrind --tool=callgrind` (deterministic, unlike timings on a shared
/// 2-core machine). See BENCHMARKS.md.
fn count_mode(s: &Setup) -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--count") else {
        return false;
    };
    let mode = args.get(i + 1).cloned().unwrap_or_default();
    let n: usize = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let c: usize = args.get(i + 3).and_then(|v| v.parse().ok()).unwrap_or(1);
    // Shared, so a call clones reference counts only (on both sides alike).
    let (client, url) = (s.client.clone(), Arc::<str>::from(s.url.as_str()));
    let (relay, req) = (s.relay.clone(), Arc::new(s.request.clone()));
    let routed = Arc::new(s.routed_request.clone());
    let plain = s.relay_plain.clone();
    match mode.as_str() {
        "plain" => run_batch(s, n, c, move || {
            let (r, q) = (plain.clone(), req.clone());
            async move {
                black_box(relay_call(&r, &q).await);
            }
        }),
        "routed" => run_batch(s, n, c, move || {
            let (r, q) = (relay.clone(), routed.clone());
            async move {
                black_box(relay_call(&r, &q).await);
            }
        }),
        "direct" => run_batch(s, n, c, move || {
            let (cl, u) = (client.clone(), url.clone());
            async move {
                black_box(direct_call(&cl, &u, "gpt-4o-mini").await);
            }
        }),
        _ => run_batch(s, n, c, move || {
            let (r, q) = (relay.clone(), req.clone());
            async move {
                black_box(relay_call(&r, &q).await);
            }
        }),
    };
    true
}

fn main() {
    let s = setup();
    if count_mode(&s) {
        return;
    }
    let summary_only = std::env::args().any(|a| a == "--summary-only");
    if !summary_only {
        let mut c = Criterion::default()
            .configure_from_args()
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        criterion_groups(&mut c, &s);
        c.final_summary();
    }
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        summary(&s);
    }
}
