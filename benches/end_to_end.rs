//! End to end (issue 20, point 8): the relay as a deployment runs it against a raw `reqwest`
//! call plus `serde_json`, both talking to the simulator on loopback.
//!
//! ```sh
//! cargo bench --bench end_to_end                       # everything, about 2 minutes
//! E2E_CALLS=1000 E2E_ROUNDS=3 E2E_STREAMS=2000 cargo bench --bench end_to_end   # quicker
//! E2E_ONLY=streamed,memory cargo bench --bench end_to_end
//! E2E_PROFILE=features:plain:1 cargo bench --bench end_to_end   # one cell, for `perf record`
//! ```
//!
//! Three sides, each through the public API only:
//! - `raw`: one pooled `reqwest::Client` POSTing an OpenAI chat body built with serde and
//!   decoding the answer with `serde_json` into a small struct; streamed, it reads the body
//!   (`bytes_stream`, the response's head dropped) to its end with a minimal hand-written SSE
//!   splitter (memchr line search, one UTF-8 check a read) and decodes each event's JSON from
//!   a `&str`. A failover is two raw calls: the 503, then the fallback.
//! - `bare`: a relay with defaults, one target per route (failover: two targets, no retries).
//! - `features`: what a deployment turns on: a rules router (intent rule, three routes),
//!   breakers ([`BreakerPolicy::default`]), stats with prices ([`Price`] on every target, a
//!   baseline model), a budget (generous, never refuses) and rate limits (generous) on every
//!   target. Requests name the router and an intent.
//!
//! The failover's primary always answers 503, so its breaker would open after five calls and
//! the relay would stop calling it; both relays set [`BreakerPolicy::disabled`] on that one
//! target so every call pays the 503 the raw side pays. All sides share one client.
//!
//! Scenarios: plain, streamed (16 events: role, 12 words, finish, usage, `[DONE]`) and
//! failover, at concurrency 1 and 32: a closed loop of N tasks each making calls back to back
//! on one current-thread runtime (`E2E_WORKERS=n` for a multi-thread one). Within a cell the
//! sides alternate (raw, bare, features, rotating the first each round) so drift hits all;
//! figures are medians over rounds. CPU per call is the whole process's user + system time
//! (`getrusage(RUSAGE_SELF)`) over the run divided by calls: the main figure on a shared
//! machine. Wall per call is the run's elapsed time × concurrency / calls (the mean latency of
//! a call in the closed loop); throughput is calls / elapsed.
//!
//! The simulator runs in a separate process (this binary re-executed with `E2E_ROLE=sim`),
//! so its CPU and memory never count. It exits when its stdin closes, and is killed by pid.
//!
//! Memory: each side opens `E2E_STREAMS` (10,000) streams at once in its own fresh child
//! process (`E2E_ROLE=mem`) against a simulator that sends the role chunk and the first word
//! and then holds the stream open; each stream is read to its first content and then awaited
//! by its own task, as a consumer would. KiB per stream = (VmRSS with N open − VmRSS before) /
//! N; heap in use per stream is the same difference of the bytes glibc's allocator has handed
//! out (`mallinfo2`), steadier than RSS. Every process raises its RLIMIT_NOFILE soft limit to the hard one (libc `setrlimit`).
//!
//! Environment: `E2E_CALLS` (calls per run, default 3000), `E2E_ROUNDS` (default 7),
//! `E2E_CONC` (default `1,32`), `E2E_STREAMS` (default 10000), `E2E_ONLY` (any of
//! `plain,streamed,failover,memory`), `E2E_WORKERS` (client runtime workers, default 0 =
//! current thread), `E2E_SIM_WORKERS` (default 1), `E2E_VERBOSE=1` (every run's figures),
//! `E2E_PROFILE=side:scenario:conc` (run that cell `E2E_ROUNDS` times and exit).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use polyrelay::providers::OpenAi;
use polyrelay::routing::{IntentRule, Rules};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    BreakerPolicy, Budget, Chain, ChatRequest, Price, RateLimit, Relay, RetryPolicy, Target,
};
use serde::{Deserialize, Serialize};

const ANSWER: &str = "Your order #123 shipped this morning and should arrive within two days.";
const SYSTEM: &str = "You are a concise support agent.";
const USER: &str = "Where is my order #123?";
const KEY: &str = "sk-bench";
const MODEL: &str = "gpt-4o-mini";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    match std::env::var("E2E_ROLE").as_deref() {
        Ok("sim") => run_simulator(),
        Ok("mem") => run_memory_child(),
        _ => run_bench(),
    }
}

// --- The simulator process -----------------------------------------------------------------

/// Three simulators, so no script is needed (their defaults survive `clear`, which bounds the
/// recorded requests): `ok` answers, `down` answers 503, `hold` streams two events and holds.
fn run_simulator() {
    raise_nofile();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env_or("E2E_SIM_WORKERS", 1))
        .enable_all()
        .build()
        .expect("simulator runtime");
    let sims = rt.block_on(async {
        let ok = Simulator::start().await.expect("simulator");
        ok.set_default(Reply::openai_text(ANSWER));
        let down = Simulator::start().await.expect("simulator");
        down.set_default(Reply::openai_error(
            503,
            "server_error",
            None,
            "unavailable",
        ));
        let hold = Simulator::start().await.expect("simulator");
        hold.set_default(Reply::openai_text(ANSWER).stall_after(2));
        [ok, down, hold]
    });
    let urls = sims.each_ref().map(|s| format!("{}/v1", s.base_url()));
    println!("E2E_SIM {} {} {}", urls[0], urls[1], urls[2]);
    std::io::stdout().flush().expect("stdout");
    let for_clear = sims.clone();
    rt.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            for s in &for_clear {
                s.clear();
            }
        }
    });
    // Serve until the parent closes our stdin (or dies).
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(sims);
    std::process::exit(0);
}

/// The simulator child: killed by pid when dropped, so a panicking bench leaks nothing.
struct SimProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    ok: String,
    down: String,
    hold: String,
}

impl SimProcess {
    fn spawn() -> SimProcess {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .env("E2E_ROLE", "sim")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the simulator process");
        let stdin = child.stdin.take();
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("simulator address");
        let mut parts = line.split_whitespace().skip(1).map(str::to_owned);
        let mut next = || parts.next().expect("simulator printed three URLs");
        let (ok, down, hold) = (next(), next(), next());
        SimProcess {
            child,
            stdin,
            ok,
            down,
            hold,
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// RLIMIT_NOFILE soft limit up to the hard one: 10,000 streams need 10,000 sockets a side.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max
    {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit no higher than the hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

// --- The three sides -----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Raw,
    Bare,
    Features,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Plain,
    Streamed,
    Failover,
}

const SIDES: [Side; 3] = [Side::Raw, Side::Bare, Side::Features];
const SCENARIOS: [Scenario; 3] = [Scenario::Plain, Scenario::Streamed, Scenario::Failover];

impl Side {
    fn name(self) -> &'static str {
        ["raw", "bare", "features"][self as usize]
    }
}

impl Scenario {
    fn name(self) -> &'static str {
        ["plain", "streamed", "failover"][self as usize]
    }
}

/// The one of `all` named `name`.
fn named<T: Copy>(all: &[T], name: &str, name_of: fn(T) -> &'static str) -> Option<T> {
    all.iter().copied().find(|&x| name_of(x) == name)
}

/// What the sides share for a run: the client, the URLs, the relays and their requests.
struct Ctx {
    client: reqwest::Client,
    ok_url: String,
    down_url: String,
    bare: Relay,
    features: Relay,
    /// `[bare, features]` × `[plain/streamed, failover]`.
    requests: [[ChatRequest; 2]; 2],
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client")
}

fn relay(side: Side, client: &reqwest::Client, ok_base: &str, down_base: &str) -> Relay {
    let down_target = format!("down/{MODEL}");
    let b = Relay::builder()
        .http_client(client.clone())
        .provider("sim", OpenAi::compatible("sim", ok_base, KEY))
        .provider("down", OpenAi::compatible("down", down_base, KEY))
        .breaker_for(down_target.as_str(), BreakerPolicy::disabled());
    let failover = |primary: Target, fallback: Target| {
        Chain::new()
            .target(primary)
            .target(fallback)
            .retry(RetryPolicy::no_retries())
    };
    let b = if side == Side::Features {
        let price = Price::per_million(0.15, 0.6);
        let mini = || Target::new("sim", MODEL).price(price.clone());
        let generous = || {
            RateLimit::new()
                .requests_per_minute(100_000_000)
                .burst(1_000_000)
                .tokens_per_minute(u32::MAX)
                .max_concurrent(1_000_000)
        };
        b.route("chat", Chain::new().target(mini()))
            .route(
                "premium",
                Chain::new()
                    .target(Target::new("sim", "gpt-4o").price(Price::per_million(2.5, 10.0)))
                    .target(mini()),
            )
            .route(
                "failover",
                failover(Target::new("down", MODEL).price(price.clone()), mini()),
            )
            .router(
                "support",
                Rules::new("chat").rule(
                    "intents",
                    IntentRule::new()
                        .intent("order_status", "chat")
                        .intent("refund", "premium")
                        .intent("outage", "failover"),
                ),
            )
            .breaker(BreakerPolicy::default())
            .baseline("openai/gpt-4o")
            .budget(Budget::usd("daily", 1e9))
            .rate_limit(format!("sim/{MODEL}"), generous())
            .rate_limit(down_target, generous())
    } else {
        b.route("chat", Chain::new().target(format!("sim/{MODEL}")))
            .route(
                "failover",
                failover(Target::new("down", MODEL), Target::new("sim", MODEL)),
            )
    };
    b.build().expect("relay")
}

/// The request a relay side sends: `[plain/streamed, failover]`.
fn requests(side: Side) -> [ChatRequest; 2] {
    let base = |model: &str| ChatRequest::new(model).system(SYSTEM).user(USER);
    match side {
        Side::Features => [
            base("support").intent("order_status"),
            base("support").intent("outage"),
        ],
        _ => [base("chat"), base("failover")],
    }
}

// --- Raw reqwest + serde_json --------------------------------------------------------------

#[derive(Serialize)]
struct RawRequest<'a> {
    model: &'a str,
    messages: [RawMessageOut<'a>; 2],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<RawStreamOptions>,
}
#[derive(Serialize)]
struct RawMessageOut<'a> {
    role: &'a str,
    content: &'a str,
}
#[derive(Serialize)]
struct RawStreamOptions {
    include_usage: bool,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct RawResponse {
    id: String,
    model: String,
    choices: Vec<RawChoice>,
    usage: Option<RawUsage>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawChoice {
    index: u32,
    message: RawMessage,
    finish_reason: Option<String>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawMessage {
    role: String,
    content: Option<String>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawUsage {
    prompt_tokens: u64,
    completion_tokens: u64,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawChunk {
    id: String,
    model: String,
    choices: Vec<RawChunkChoice>,
    usage: Option<RawUsage>,
}
#[derive(Deserialize)]
#[allow(dead_code)]
struct RawChunkChoice {
    index: u32,
    #[serde(default)]
    delta: RawDelta,
    finish_reason: Option<String>,
}
#[derive(Deserialize, Default)]
#[allow(dead_code)]
struct RawDelta {
    role: Option<String>,
    content: Option<String>,
}

fn raw_post(client: &reqwest::Client, url: &str, stream: bool) -> reqwest::RequestBuilder {
    let message = |role, content| RawMessageOut { role, content };
    client.post(url).bearer_auth(KEY).json(&RawRequest {
        model: MODEL,
        messages: [message("system", SYSTEM), message("user", USER)],
        stream,
        stream_options: stream.then_some(RawStreamOptions {
            include_usage: true,
        }),
    })
}

async fn raw_plain(client: &reqwest::Client, url: &str) -> String {
    let resp = raw_post(client, url, false).send().await.expect("send");
    assert!(resp.status().is_success(), "raw status {}", resp.status());
    let bytes = resp.bytes().await.expect("body");
    let answer: RawResponse = serde_json::from_slice(&bytes).expect("decode");
    let first = answer.choices.into_iter().next().expect("a choice");
    first.message.content.unwrap_or_default()
}

/// A hand-written fallback: the primary's 5xx, then the fallback.
async fn raw_failover(client: &reqwest::Client, down: &str, ok: &str) -> String {
    let resp = raw_post(client, down, false).send().await.expect("send");
    let status = resp.status();
    let _ = resp.bytes().await.expect("body");
    assert!(status.is_server_error(), "primary answered {status}");
    raw_plain(client, ok).await
}

/// Calls `on_data` with each complete SSE event's `data` (one `data:` line an event, as
/// OpenAI sends) and drops what it consumed. The
/// buffer is validated as UTF-8 once (up to a character cut by the read), so each event's JSON
/// is parsed from a `&str`.
fn drain_events(buf: &mut Vec<u8>, mut on_data: impl FnMut(&str)) {
    let text = match std::str::from_utf8(buf) {
        Ok(text) => text,
        Err(e) => std::str::from_utf8(&buf[..e.valid_up_to()]).expect("a valid prefix"),
    };
    // Line by line (a `char` search is a memchr); a blank line ends an event.
    let (mut start, mut consumed, mut data) = (0, 0, None);
    while let Some(nl) = text[start..].find('\n') {
        let line = &text[start..start + nl];
        start += nl + 1;
        if line.is_empty() {
            consumed = start;
            if let Some(data) = data.take() {
                on_data(data);
            }
        } else if let Some(d) = line.strip_prefix("data:") {
            data = Some(d.strip_prefix(' ').unwrap_or(d));
        }
    }
    buf.drain(..consumed);
}

/// Decodes one event's JSON; `None` for `[DONE]`.
fn raw_event(data: &str) -> Option<RawChunk> {
    (data != "[DONE]").then(|| serde_json::from_str(data).expect("chunk"))
}

/// The body of a raw stream, the response's head dropped.
type RawBody = std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// Opens a raw stream and reads it until `stop` says so (or to its end); returns the body
/// (still open unless it ended), what is buffered of it, and the text seen.
async fn raw_stream_until(
    client: &reqwest::Client,
    url: &str,
    mut stop: impl FnMut(&RawChunk) -> bool,
) -> (RawBody, Vec<u8>, String) {
    let resp = raw_post(client, url, true).send().await.expect("send");
    assert!(resp.status().is_success(), "raw status {}", resp.status());
    let mut body: RawBody = Box::pin(resp.bytes_stream());
    let (mut buf, mut text, mut stopped) = (Vec::new(), String::new(), false);
    while !stopped {
        let Some(bytes) = body.next().await else {
            break;
        };
        let bytes = bytes.expect("body");
        buf.extend_from_slice(&bytes);
        drain_events(&mut buf, |data| {
            if let Some(chunk) = raw_event(data) {
                if let Some(piece) = chunk.choices.first().and_then(|c| c.delta.content.as_ref()) {
                    text.push_str(piece);
                }
                stopped |= stop(&chunk);
            }
        });
    }
    (body, buf, text)
}

async fn raw_streamed(client: &reqwest::Client, url: &str) -> String {
    raw_stream_until(client, url, |_| false).await.2
}

// --- Relay calls ---------------------------------------------------------------------------

async fn relay_plain(relay: &Relay, req: &ChatRequest) -> polyrelay::ChatResponse {
    relay.chat(req).await.expect("relay answer")
}

async fn relay_streamed(relay: &Relay, req: &ChatRequest) -> String {
    let mut stream = relay.chat_stream(req).await.expect("relay stream");
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        if let Some(piece) = chunk.expect("chunk").text() {
            text.push_str(piece);
        }
    }
    text
}

async fn one_call(ctx: &Ctx, side: Side, scenario: Scenario) {
    let (relay, reqs) = match side {
        Side::Raw => {
            let text = match scenario {
                Scenario::Plain => raw_plain(&ctx.client, &ctx.ok_url).await,
                Scenario::Streamed => raw_streamed(&ctx.client, &ctx.ok_url).await,
                Scenario::Failover => raw_failover(&ctx.client, &ctx.down_url, &ctx.ok_url).await,
            };
            std::hint::black_box(text);
            return;
        }
        Side::Bare => (&ctx.bare, &ctx.requests[0]),
        Side::Features => (&ctx.features, &ctx.requests[1]),
    };
    match scenario {
        Scenario::Plain => drop(std::hint::black_box(relay_plain(relay, &reqs[0]).await)),
        Scenario::Streamed => drop(std::hint::black_box(relay_streamed(relay, &reqs[0]).await)),
        Scenario::Failover => drop(std::hint::black_box(relay_plain(relay, &reqs[1]).await)),
    }
}

/// One call of each kind, checked, before anything is measured.
async fn check(ctx: &Ctx) {
    let c = &ctx.client;
    assert_eq!(raw_plain(c, &ctx.ok_url).await, ANSWER);
    assert_eq!(raw_streamed(c, &ctx.ok_url).await, ANSWER);
    assert_eq!(raw_failover(c, &ctx.down_url, &ctx.ok_url).await, ANSWER);
    for (relay, reqs) in [
        (&ctx.bare, &ctx.requests[0]),
        (&ctx.features, &ctx.requests[1]),
    ] {
        assert_eq!(relay_plain(relay, &reqs[0]).await.text(), ANSWER);
        assert_eq!(relay_streamed(relay, &reqs[0]).await, ANSWER);
        let failover = relay_plain(relay, &reqs[1]).await;
        assert_eq!(failover.text(), ANSWER);
        assert_eq!(failover.meta.attempts.len(), 2, "the failover tries both");
    }
    let priced = relay_plain(&ctx.features, &ctx.requests[1][0]).await;
    assert!(priced.meta.cost.is_some() && priced.meta.routing.is_some());
}

// --- Measuring -----------------------------------------------------------------------------

/// User and system CPU time of the whole process.
fn process_cpu() -> [Duration; 2] {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return [Duration::ZERO; 2];
    }
    // SAFETY: getrusage succeeded and initialised the struct.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    [tv(u.ru_utime), tv(u.ru_stime)]
}

fn runtime() -> tokio::runtime::Runtime {
    let workers: usize = env_or("E2E_WORKERS", 0);
    let mut b = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    b.enable_all().build().expect("runtime")
}

/// One run's figures, per call.
#[derive(Clone, Copy, Debug)]
struct Run {
    cpu_us: f64,
    /// The system (kernel) part of `cpu_us`.
    sys_us: f64,
    wall_us: f64,
    per_sec: f64,
}

/// `calls` calls from `concurrency` tasks, each calling back to back.
fn run(
    rt: &tokio::runtime::Runtime,
    ctx: &Arc<Ctx>,
    side: Side,
    scenario: Scenario,
    calls: usize,
    concurrency: usize,
) -> Run {
    let (cpu0, t0) = (process_cpu(), Instant::now());
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for w in 0..concurrency {
            let ctx = Arc::clone(ctx);
            let share = calls / concurrency + usize::from(w < calls % concurrency);
            set.spawn(async move {
                for _ in 0..share {
                    one_call(&ctx, side, scenario).await;
                }
            });
        }
        while let Some(done) = set.join_next().await {
            done.expect("task");
        }
    });
    let (wall, [user1, sys1]) = (t0.elapsed().as_secs_f64(), process_cpu());
    let [user, sys] = [user1 - cpu0[0], sys1 - cpu0[1]].map(|d| d.as_secs_f64());
    let n = calls as f64;
    Run {
        cpu_us: (user + sys) * 1e6 / n,
        sys_us: sys * 1e6 / n,
        wall_us: wall * 1e6 * concurrency as f64 / n,
        per_sec: n / wall,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn run_bench() {
    raise_nofile();
    let sim = SimProcess::spawn();
    let rt = runtime();
    let client = client();
    let ctx = Arc::new(Ctx {
        ok_url: format!("{}/chat/completions", sim.ok),
        down_url: format!("{}/chat/completions", sim.down),
        bare: relay(Side::Bare, &client, &sim.ok, &sim.down),
        features: relay(Side::Features, &client, &sim.ok, &sim.down),
        requests: [requests(Side::Bare), requests(Side::Features)],
        client,
    });
    rt.block_on(check(&ctx));
    let (calls, rounds) = (env_or("E2E_CALLS", 3000usize), env_or("E2E_ROUNDS", 7usize));
    if let Ok(cell) = std::env::var("E2E_PROFILE") {
        return profile(&rt, &ctx, &cell, calls, rounds);
    }
    let only = list("E2E_ONLY", "plain,streamed,failover,memory");
    let concurrencies: Vec<usize> = list("E2E_CONC", "1,32")
        .iter()
        .filter_map(|c| c.parse().ok())
        .collect();
    let verbose = std::env::var("E2E_VERBOSE").is_ok_and(|v| v == "1");
    println!(
        "end to end: {calls} calls a run, {rounds} rounds, client runtime {}, simulator in pid {}",
        match env_or("E2E_WORKERS", 0usize) {
            0 => "current-thread".to_owned(),
            n => format!("{n} workers"),
        },
        sim.child.id()
    );
    let mut table = Vec::new();
    for scenario in SCENARIOS
        .into_iter()
        .filter(|s| only.iter().any(|o| o == s.name()))
    {
        for &concurrency in &concurrencies {
            // Warm-up: pools filled, caches hot, every side once.
            for side in SIDES {
                run(
                    &rt,
                    &ctx,
                    side,
                    scenario,
                    calls / 4 + concurrency,
                    concurrency,
                );
            }
            let mut runs: [Vec<Run>; 3] = Default::default();
            for round in 0..rounds {
                for k in 0..3 {
                    let i = (round + k) % 3;
                    let r = run(&rt, &ctx, SIDES[i], scenario, calls, concurrency);
                    if verbose {
                        eprintln!(
                            "  {} c={concurrency} round {round} {}: {:.1} µs CPU ({:.1} system), {:.1} µs wall, {:.0}/s",
                            scenario.name(),
                            SIDES[i].name(),
                            r.cpu_us,
                            r.sys_us,
                            r.wall_us,
                            r.per_sec
                        );
                    }
                    runs[i].push(r);
                }
            }
            table.push((scenario, concurrency, runs));
        }
    }
    print_table(&table);
    if only.iter().any(|o| o == "memory") {
        memory(&sim);
    }
}

/// Medians over rounds; the deltas and the ratio are medians of each round's own (relay
/// against the raw run of the same round), so drift between rounds cancels.
fn print_table(table: &[(Scenario, usize, [Vec<Run>; 3])]) {
    println!();
    println!(
        "| scenario | c | relay | raw CPU µs | relay CPU µs | Δ CPU µs | raw wall µs | relay wall µs | Δ wall µs | raw calls/s | relay calls/s | throughput relay/raw |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (scenario, c, runs) in table {
        let med = |i: usize, f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
        let paired = |i: usize, f: fn(&Run, &Run) -> f64| {
            median(
                runs[i]
                    .iter()
                    .zip(&runs[0])
                    .map(|(r, raw)| f(r, raw))
                    .collect(),
            )
        };
        for (i, name) in [(1, "bare"), (2, "features")] {
            println!(
                "| {} | {c} | {name} | {:.1} | {:.1} | {:+.1} | {:.1} | {:.1} | {:+.1} | {:.0} | {:.0} | {:.3} |",
                scenario.name(),
                med(0, |r| r.cpu_us),
                med(i, |r| r.cpu_us),
                paired(i, |r, raw| r.cpu_us - raw.cpu_us),
                med(0, |r| r.wall_us),
                med(i, |r| r.wall_us),
                paired(i, |r, raw| r.wall_us - raw.wall_us),
                med(0, |r| r.per_sec),
                med(i, |r| r.per_sec),
                paired(i, |r, raw| r.per_sec / raw.per_sec),
            );
        }
    }
}

/// `side:scenario:conc`: that cell only, `rounds` runs of `calls`, for a profiler.
fn profile(rt: &tokio::runtime::Runtime, ctx: &Arc<Ctx>, cell: &str, calls: usize, rounds: usize) {
    let mut parts = cell.split(':');
    let side = parts
        .next()
        .and_then(|s| named(&SIDES, s, Side::name))
        .expect("E2E_PROFILE side");
    let scenario = parts
        .next()
        .and_then(|p| named(&SCENARIOS, p, Scenario::name))
        .expect("E2E_PROFILE scenario");
    let concurrency = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    for _ in 0..rounds {
        let r = run(rt, ctx, side, scenario, calls, concurrency);
        println!(
            "{cell}: {:.1} µs CPU ({:.1} system), {:.1} µs wall, {:.0} calls/s",
            r.cpu_us, r.sys_us, r.wall_us, r.per_sec
        );
    }
}

// --- Memory: N open streams, each side in a fresh process ----------------------------------

fn memory(sim: &SimProcess) {
    let streams: usize = env_or("E2E_STREAMS", 10_000);
    println!(
        "\n{streams} streams open at once, whole-process VmRSS, each side in a fresh process:"
    );
    println!(
        "| side | RSS before KiB | RSS open KiB | KiB per stream | vs raw | heap in use, B per stream | vs raw |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut raw_per = None;
    let mut raw_heap = None;
    for side in SIDES {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .env("E2E_ROLE", "mem")
            .env("E2E_SIDE", side.name())
            .env("E2E_STREAMS", streams.to_string())
            .env("E2E_HOLD", &sim.hold)
            .env("E2E_DOWN", &sim.down)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a memory child");
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("child output");
        let status = child.wait().expect("child");
        let figures: Vec<f64> = out
            .lines()
            .find_map(|l| l.strip_prefix("E2E_MEM "))
            .map(|l| {
                l.split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        let [before, open, heap_before, heap_open] = figures[..] else {
            println!("| {} | failed ({status}) | | | | | |", side.name());
            continue;
        };
        let per = (open - before) / streams as f64;
        let heap = (heap_open - heap_before) / streams as f64;
        let vs = |base: Option<f64>, v: f64| {
            base.map_or("".to_owned(), |r| {
                format!("{:+.1} %", (v / r - 1.0) * 100.0)
            })
        };
        let (vs_rss, vs_heap) = (vs(raw_per, per), vs(raw_heap, heap));
        raw_per = raw_per.or(Some(per));
        raw_heap = raw_heap.or(Some(heap));
        println!(
            "| {} | {before:.0} | {open:.0} | {per:.1} | {vs_rss} | {heap:.0} | {vs_heap} |",
            side.name()
        );
    }
}

/// Bytes the allocator has handed out and not taken back (glibc's `mallinfo2().uordblks`):
/// steadier than RSS, which also moves with what the kernel keeps resident.
fn heap_in_use() -> f64 {
    // SAFETY: `mallinfo2` only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    info.uordblks as f64
}

fn vm_rss_kib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Opens one stream, reads it to its first content, calls `opened`, then holds the stream,
/// awaiting its next event as a consumer would.
async fn open_and_hold(ctx: Arc<Ctx>, side: Side, opened: impl FnOnce()) {
    match side {
        Side::Raw => {
            let has_content = |c: &RawChunk| {
                c.choices
                    .first()
                    .and_then(|c| c.delta.content.as_deref())
                    .is_some_and(|t| !t.is_empty())
            };
            // Boxed, as the relay boxes its opening: the task keeps the open stream, not
            // the state machine that opened it.
            let (mut body, mut buf, _) =
                Box::pin(raw_stream_until(&ctx.client, &ctx.ok_url, has_content)).await;
            opened();
            while let Some(Ok(bytes)) = body.next().await {
                buf.extend_from_slice(&bytes);
                drain_events(&mut buf, |d| drop(std::hint::black_box(raw_event(d))));
            }
        }
        Side::Bare | Side::Features => {
            let (relay, req) = match side {
                Side::Bare => (&ctx.bare, &ctx.requests[0][0]),
                _ => (&ctx.features, &ctx.requests[1][0]),
            };
            let mut stream = relay.chat_stream(req).await.expect("relay stream");
            while let Some(chunk) = stream.next().await {
                if chunk.expect("chunk").has_content() {
                    break;
                }
            }
            opened();
            while let Some(chunk) = stream.next().await {
                drop(std::hint::black_box(chunk));
            }
        }
    }
}

fn run_memory_child() {
    raise_nofile();
    let side = std::env::var("E2E_SIDE")
        .ok()
        .and_then(|s| named(&SIDES, &s, Side::name))
        .expect("E2E_SIDE");
    let n: usize = env_or("E2E_STREAMS", 10_000);
    let hold = std::env::var("E2E_HOLD").expect("E2E_HOLD");
    let down = std::env::var("E2E_DOWN").expect("E2E_DOWN");
    let rt = runtime();
    let client = client();
    let ctx = Arc::new(Ctx {
        ok_url: format!("{hold}/chat/completions"),
        down_url: format!("{down}/chat/completions"),
        bare: relay(Side::Bare, &client, &hold, &down),
        features: relay(Side::Features, &client, &hold, &down),
        requests: [requests(Side::Bare), requests(Side::Features)],
        client,
    });
    let opened = Arc::new(AtomicUsize::new(0));
    let (before, open) = rt.block_on(async {
        // One stream opened and dropped first, so lazily built state counts as "before".
        let (tx, rx) = tokio::sync::oneshot::channel();
        let warm = tokio::spawn(open_and_hold(Arc::clone(&ctx), side, move || {
            let _ = tx.send(());
        }));
        rx.await.expect("the first stream opens");
        warm.abort();
        let _ = warm.await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = (vm_rss_kib(), heap_in_use());
        // At most 256 streams opening at once, so the simulator's accept backlog holds.
        let gate = Arc::new(tokio::sync::Semaphore::new(256));
        for _ in 0..n {
            let permit = Arc::clone(&gate).acquire_owned().await.expect("gate");
            let opened = Arc::clone(&opened);
            tokio::spawn(open_and_hold(Arc::clone(&ctx), side, move || {
                opened.fetch_add(1, Ordering::Relaxed);
                drop(permit);
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        while opened.load(Ordering::Relaxed) < n {
            assert!(
                Instant::now() < deadline,
                "streams did not all open in 120 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        (before, (vm_rss_kib(), heap_in_use()))
    });
    println!("E2E_MEM {} {} {} {}", before.0, open.0, before.1, open.1);
    std::io::stdout().flush().expect("stdout");
    std::process::exit(0);
}
