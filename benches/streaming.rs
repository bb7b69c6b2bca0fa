//! Streaming costs: SSE decode throughput, per-vendor stream decode throughput, per-chunk
//! relay overhead against reading the raw SSE with reqwest, and peak memory with 1,000
//! concurrent streams through the relay.
//!
//! `cargo bench --bench streaming` (criterion groups, then a summary);
//! `cargo bench --bench streaming -- --summary-only` prints just the summary.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use futures::StreamExt;
use polyrelay::http::sse::SseDecoder;
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{Chain, ChatRequest, Relay};

/// An OpenAI stream of `n` content chunks, as the vendor frames it.
fn openai_stream(n: usize) -> String {
    let mut s = String::new();
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n");
    for i in 0..n {
        s.push_str(&format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" token{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"));
    }
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":20,\"total_tokens\":30}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s
}

/// Raw SSE events only: how fast the framing layer goes.
fn sse_only(bytes: &[u8], read: usize) -> usize {
    let mut d = SseDecoder::new();
    let mut n = 0;
    for part in bytes.chunks(read) {
        d.feed(part);
        while let Ok(Some(ev)) = d.next_event() {
            n += ev.data.len();
        }
    }
    n
}

fn decode_openai(bytes: &[u8], read: usize) -> usize {
    let mut d = OpenAi::stream_decoder();
    let mut n = 0;
    for part in bytes.chunks(read) {
        n += d.feed(part).expect("valid stream").len();
    }
    n + d.finish().expect("whole stream").len()
}

fn criterion_groups(c: &mut Criterion) {
    let body = openai_stream(5000);
    let mut g = c.benchmark_group("stream_decode");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("sse_framing_16KiB_reads", |b| {
        b.iter(|| black_box(sse_only(body.as_bytes(), 16 * 1024)))
    });
    g.bench_function("openai_chunks_16KiB_reads", |b| {
        b.iter(|| black_box(decode_openai(body.as_bytes(), 16 * 1024)))
    });
    g.finish();
}

struct Bench {
    rt: tokio::runtime::Runtime,
    _sim_rt: tokio::runtime::Runtime,
    sim: Simulator,
    client: reqwest::Client,
    relay: Relay,
    url: String,
}

fn setup() -> Bench {
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
    let client = polyrelay::http::default_client().expect("client");
    let base = format!("{}/v1", sim.base_url());
    let relay = Relay::builder()
        .http_client(client.clone())
        .provider("sim", OpenAi::compatible("sim", &base, "sk-bench"))
        .route(
            "r",
            Chain::new()
                .target("sim/long")
                .stream_idle_timeout(Duration::from_secs(30)),
        )
        .build()
        .expect("relay");
    Bench {
        rt,
        _sim_rt: sim_rt,
        sim,
        client,
        relay,
        url: format!("{base}/chat/completions"),
    }
}

/// Reads a stream with plain reqwest + the SSE decoder + serde per event: the floor.
async fn raw_stream(client: &reqwest::Client, url: &str) -> usize {
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Chunk {
        id: String,
        model: String,
        choices: Vec<Choice>,
    }
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Choice {
        index: u32,
        delta: Delta,
        finish_reason: Option<String>,
    }
    #[derive(serde::Deserialize, Default)]
    #[allow(dead_code)]
    struct Delta {
        role: Option<String>,
        content: Option<String>,
    }
    let resp = client
        .post(url)
        .header("content-type", "application/json")
        .body(r#"{"model":"long","stream":true,"messages":[{"role":"user","content":"go"}]}"#)
        .send()
        .await
        .expect("send");
    let mut body = resp.bytes_stream();
    let mut d = SseDecoder::new();
    let mut n = 0;
    while let Some(bytes) = body.next().await {
        d.feed(&bytes.expect("bytes"));
        while let Ok(Some(ev)) = d.next_event() {
            if ev.data != "[DONE]" {
                let _: Chunk = serde_json::from_str(ev.data).expect("chunk");
                n += 1;
            }
        }
    }
    n
}

async fn relay_stream(relay: &Relay) -> usize {
    let mut s = relay
        .chat_stream(ChatRequest::new("r").user("go"))
        .await
        .expect("stream");
    let mut n = 0;
    while let Some(c) = s.next().await {
        black_box(c.expect("chunk"));
        n += 1;
    }
    n
}

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

/// Peak and current resident memory of this process, from /proc/self/status.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn summary(b: &Bench) {
    println!("\n== streaming summary ==");
    // Decode throughput.
    let body = openai_stream(20_000);
    for (name, f) in [
        ("SSE framing", sse_only as fn(&[u8], usize) -> usize),
        ("OpenAI chunks (SSE + JSON)", decode_openai),
    ] {
        let mut rates = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            black_box(f(body.as_bytes(), 16 * 1024));
            rates.push(body.len() as f64 / t.elapsed().as_secs_f64() / 1e6);
        }
        println!(
            "{name:<28} {:>8.0} MB/s (median of 7, {} KiB stream, 16 KiB reads)",
            median(rates),
            body.len() / 1024
        );
    }

    // Per-chunk relay overhead against raw reqwest + SSE + serde.
    let chunks = 2000;
    let frames: Vec<String> = openai_stream(chunks)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    b.sim.script("long", [Reply::sse(frames)]);
    let (mut raw, mut relay) = (Vec::new(), Vec::new());
    for block in 0..=20 {
        for mode in 0..2 {
            let c0 = thread_cpu();
            let n = if mode == 0 {
                b.rt.block_on(raw_stream(&b.client, &b.url))
            } else {
                b.rt.block_on(relay_stream(&b.relay))
            };
            let per = (thread_cpu() - c0).as_secs_f64() * 1e9 / n as f64;
            if block > 0 {
                if mode == 0 {
                    raw.push(per)
                } else {
                    relay.push(per)
                }
            }
        }
    }
    let (raw, relay) = (median(raw), median(relay));
    println!(
        "per chunk, client CPU: raw reqwest+SSE+serde {raw:.0} ns, relay {relay:.0} ns => relay adds {:.0} ns/chunk ({chunks} chunks/stream, median of 20)",
        relay - raw
    );

    // 1,000 concurrent streams: peak memory.
    let concurrent = 1000;
    let slow: Vec<String> = openai_stream(40)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    b.sim.script(
        "long",
        [Reply::sse(slow).frame_delay(Duration::from_millis(25))],
    );
    let (hwm_before, rss_before) = rss_kib();
    let t = Instant::now();
    let total: usize = b.rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..concurrent {
            let relay = b.relay.clone();
            set.spawn(async move { relay_stream(&relay).await });
        }
        let mut total = 0;
        while let Some(n) = set.join_next().await {
            total += n.expect("task");
        }
        total
    });
    let (hwm_after, _) = rss_kib();
    println!(
        "{concurrent} concurrent streams ({} chunks, {:.1} s): RSS before {} MiB, peak {} MiB (previous peak {} MiB) => ≤ {:.1} KiB per open stream, simulator included",
        total,
        t.elapsed().as_secs_f64(),
        rss_before / 1024,
        hwm_after / 1024,
        hwm_before / 1024,
        hwm_after.saturating_sub(rss_before) as f64 / concurrent as f64
    );

    // Dropping a stream: how soon the vendor sees its connection closed.
    let endless: Vec<String> = openai_stream(100_000)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    let mut waits = Vec::new();
    for _ in 0..20 {
        b.sim.clear();
        b.sim.script(
            "long",
            [Reply::sse(endless.clone()).frame_delay(Duration::from_millis(2))],
        );
        let waited = b.rt.block_on(async {
            let mut s = b
                .relay
                .chat_stream(ChatRequest::new("r").user("go"))
                .await
                .expect("stream");
            let _ = s.next().await;
            let seen = b.sim.requests().pop().expect("request");
            let t = Instant::now();
            drop(s);
            seen.closed().await;
            t.elapsed()
        });
        waits.push(waited.as_secs_f64() * 1e3);
    }
    let worst = waits.iter().cloned().fold(0.0, f64::max);
    println!(
        "drop → vendor sees the connection closed: median {:.2} ms, worst {:.2} ms (20 streams)",
        median(waits),
        worst
    );
}

/// `--count <raw|relay> <streams>`: read that many 2,000-chunk streams and exit, for counting
/// instructions with `valgrind --tool=callgrind` (see BENCHMARKS.md).
fn count_mode() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let Some(i) = args.iter().position(|a| a == "--count") else {
        return false;
    };
    let relay_mode = args.get(i + 1).is_some_and(|m| m == "relay");
    let n: usize = args.get(i + 2).and_then(|v| v.parse().ok()).unwrap_or(1);
    let b = setup();
    let frames: Vec<String> = openai_stream(2000)
        .split_inclusive("\n\n")
        .map(str::to_owned)
        .collect();
    b.sim.script("long", [Reply::sse(frames)]);
    for _ in 0..n {
        if relay_mode {
            b.rt.block_on(relay_stream(&b.relay));
        } else {
            b.rt.block_on(raw_stream(&b.client, &b.url));
        }
    }
    true
}

fn main() {
    if count_mode() {
        return;
    }
    let summary_only = std::env::args().any(|a| a == "--summary-only");
    if !summary_only {
        let mut c = Criterion::default()
            .configure_from_args()
            .measurement_time(Duration::from_secs(3))
            .warm_up_time(Duration::from_secs(1));
        criterion_groups(&mut c);
        c.final_summary();
    }
    if !std::env::args().any(|a| a == "--list" || a == "--test") {
        summary(&setup());
    }
}
