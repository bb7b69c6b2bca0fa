//! Fleet store (issue 21): what a shared store costs a relay per request, and how many Redis
//! operations a relay makes per second.
//!
//! ```sh
//! cargo bench --bench fleet                          # everything, about 70 s
//! FLEET_CALLS=2000 FLEET_ROUNDS=3 FLEET_IDLE_SECS=3 FLEET_LOAD_SECS=3 cargo bench --bench fleet
//! FLEET_LIMIT=none cargo bench --bench fleet         # without the requests limit
//! FLEET_PROFILE=redis:1 cargo bench --bench fleet    # one cell, for `perf record`
//! ```
//!
//! One relay configuration, through the public API only: route `chat` = `sim/gpt-4o-mini`
//! then `sim/gpt-4o` (both on the simulator, priced), breakers ([`BreakerPolicy::default`]),
//! a daily budget that is never reached, a key pool of two keys for `sim`, and on the first
//! target a requests-per-minute limit (`FLEET_RPM`, default 6,000,000 with a second's burst:
//! above any throughput here, so a relay without a store never refuses) that fails over to
//! the second target when it holds a request back. Built three ways, all alive for the whole
//! run:
//! - `none`: no store;
//! - `memory`: `Store::new(MemoryStore::new())`;
//! - `redis`: `Store::redis(url)` on a `redis-server` this bench starts on a free loopback
//!   port (no persistence) and stops by its pid.
//!
//! With a store the sync task exchanges breakers, the budget, the limit's lease and the pool
//! keys every 250 ms (the default), and the requests limit is leased slot by slot from the
//! fleet's schedule: a request the lease does not cover is held back and fails over, so the
//! bench counts the calls served by the second target ("refused") and reads the lease's
//! `fleet_slots` after every run.
//!
//! **Overhead** (part 1): closed loop, N tasks (1 and 32) calling back to back on one
//! current-thread runtime; the simulator runs in a child process (this binary re-executed
//! with `FLEET_ROLE=sim`) and Redis in its own, so neither's CPU counts. Sides alternate
//! each round (the first rotating); CPU per call = the process's user + system time over a
//! run / calls (the sync tasks of all three relays run meanwhile: at 4 exchanges a second
//! they cost well under 0.1 µs a call); deltas are medians of each round's own pair.
//!
//! **Redis operations** (part 2), on a fresh relay alone in its namespace (the part-1 relays
//! are dropped first): `CONFIG RESETSTAT`, then `INFO commandstats` and `INFO cpu` after
//! each phase: idle right after the build, 5,000 requests a second (open loop, paced every
//! millisecond), idle after that traffic.
//!
//! Environment: `FLEET_CALLS` (calls a run, default 5000), `FLEET_ROUNDS` (default 9),
//! `FLEET_CONC` (default `1,32`), `FLEET_RPM` (default 6000000), `FLEET_LIMIT` (`rpm`, the
//! default, or `none`), `FLEET_RATE` (part 2's requests a second, default 5000),
//! `FLEET_IDLE_SECS` / `FLEET_LOAD_SECS` (default 10 each), `FLEET_ONLY` (`overhead`,
//! `ops`), `FLEET_VERBOSE=1`, `FLEET_PROFILE=side:conc` (that cell `FLEET_ROUNDS` times).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::store::{MemoryStore, Store};
use polyrelay::{
    BreakerPolicy, Budget, Chain, ChatRequest, KeyPool, Price, RateLimit, Relay, Target,
};

const ANSWER: &str = "Your order #123 shipped this morning and should arrive within two days.";
const PRIMARY: &str = "gpt-4o-mini";
const FALLBACK: &str = "gpt-4o";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var("FLEET_ROLE").as_deref() == Ok("sim") {
        return serve_simulator();
    }
    let only = std::env::var("FLEET_ONLY").unwrap_or_else(|_| "overhead,ops".to_owned());
    let sim = Child0::spawn_simulator();
    let redis = LocalRedis::start();
    println!(
        "fleet: simulator in pid {}, {} in pid {} on port {}",
        sim.child.id(),
        redis.version(),
        redis.child.id(),
        redis.port
    );
    if let Ok(cell) = std::env::var("FLEET_PROFILE") {
        return profile(&sim.url, &redis, &cell);
    }
    if only.contains("overhead") {
        overhead(&sim.url, &redis);
    }
    if only.contains("ops") {
        operations(&sim.url, &redis);
    }
}

// --- Child processes -----------------------------------------------------------------------

/// The simulator process: one simulator answering every chat; exits when stdin closes.
fn serve_simulator() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("simulator runtime");
    let sim = rt.block_on(async { Simulator::start().await.expect("simulator") });
    sim.set_default(Reply::openai_text(ANSWER));
    println!("FLEET_SIM {}/v1", sim.base_url());
    std::io::stdout().flush().expect("stdout");
    let recorded = sim.clone();
    rt.spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            recorded.clear();
        }
    });
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    std::process::exit(0);
}

/// A child process killed by pid when dropped, and the URL it printed.
struct Child0 {
    child: Child,
    url: String,
}

impl Child0 {
    fn spawn_simulator() -> Child0 {
        let mut child = Command::new(std::env::current_exe().expect("current exe"))
            .env("FLEET_ROLE", "sim")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the simulator process");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("simulator address");
        let url = line.trim().trim_start_matches("FLEET_SIM ").to_owned();
        Child0 { child, url }
    }
}

impl Drop for Child0 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `redis-server` on a free loopback port, without persistence, stopped by pid on drop.
struct LocalRedis {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl LocalRedis {
    fn start() -> LocalRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("polyrelay-fleet-bench-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile", ""])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("Ready to accept connections"));
        std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
        let redis = LocalRedis { child, port, dir };
        assert!(ready, "redis-server exited before it was ready");
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// One command on a connection of its own (RESP), its reply as text.
    fn command(&self, args: &[&str]) -> String {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).expect("redis connect");
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        conn.write_all(out.as_bytes()).expect("redis write");
        let mut reader = BufReader::new(conn);
        let mut head = String::new();
        reader.read_line(&mut head).expect("redis reply");
        match head.as_bytes().first() {
            Some(b'$') => {
                let len: usize = head[1..].trim().parse().expect("bulk length");
                let mut body = vec![0; len + 2];
                reader.read_exact(&mut body).expect("bulk body");
                String::from_utf8_lossy(&body[..len]).into_owned()
            }
            Some(b'+' | b':') => head[1..].trim().to_owned(),
            _ => panic!("redis answered {head:?} to {args:?}"),
        }
    }

    fn version(&self) -> String {
        let server = self.command(&["INFO", "server"]);
        let v = info_field(&server, "redis_version").unwrap_or_default();
        format!("redis-server {v}")
    }
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

// --- The relays ----------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    None,
    Memory,
    Redis,
}

const SIDES: [Side; 3] = [Side::None, Side::Memory, Side::Redis];

impl Side {
    fn name(self) -> &'static str {
        ["none", "memory", "redis"][self as usize]
    }
}

/// The one configuration, with `store` (built inside a runtime: a store's sync task starts
/// with the relay).
fn relay(client: &reqwest::Client, sim_url: &str, store: Option<Store>) -> Relay {
    let target = |model: &str, price: Price| Target::new("sim", model).price(price);
    let mut b = Relay::builder()
        .http_client(client.clone())
        .provider("sim", OpenAi::compatible("sim", sim_url, "sk-unused"))
        .key_pool("sim", KeyPool::new().key("sk-fleet-a").key("sk-fleet-b"))
        .route(
            "chat",
            Chain::new()
                .target(target(PRIMARY, Price::per_million(0.15, 0.6)))
                .target(target(FALLBACK, Price::per_million(2.5, 10.0))),
        )
        .breaker(BreakerPolicy::default())
        .budget(Budget::usd("daily", 1e9));
    if std::env::var("FLEET_LIMIT").as_deref() != Ok("none") {
        let rpm: u32 = env_or("FLEET_RPM", 6_000_000);
        b = b.rate_limit(
            format!("sim/{PRIMARY}"),
            RateLimit::new()
                .requests_per_minute(rpm)
                .burst((rpm / 60).max(1)),
        );
    }
    if let Some(store) = store {
        b = b.store(store);
    }
    b.build().expect("relay")
}

fn store_of(side: Side, redis: &LocalRedis, namespace: &str) -> Option<Store> {
    match side {
        Side::None => None,
        Side::Memory => Some(Store::new(MemoryStore::new())),
        Side::Redis => Some(
            Store::redis(&redis.url())
                .expect("redis store")
                .namespace(namespace),
        ),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("client")
}

fn request() -> ChatRequest {
    ChatRequest::new("chat")
        .system("You are a concise support agent.")
        .user("Where is my order #123?")
}

/// The three relays, their request, and the calls the fallback served.
struct Ctx {
    relays: [Relay; 3],
    req: ChatRequest,
    fallbacks: [AtomicU64; 3],
}

/// One call; counts it when the fallback served it (the primary's limit held it back).
async fn one_call(relay: &Relay, req: &ChatRequest, fallbacks: &AtomicU64) {
    let resp = relay.chat(req).await.expect("relay answer");
    if resp
        .meta
        .served_by
        .as_ref()
        .is_some_and(|t| &*t.model != PRIMARY)
    {
        fallbacks.fetch_add(1, Ordering::Relaxed);
    }
}

/// The lease the relay holds on the primary's requests limit now (`None`: not shared).
fn fleet_slots(relay: &Relay) -> Option<u32> {
    let name = format!("sim/{PRIMARY}");
    relay
        .limits()
        .targets
        .iter()
        .find(|t| t.name == name)
        .and_then(|t| t.status.fleet_slots)
}

// --- Part 1: overhead per request ----------------------------------------------------------

/// User and system CPU time of the whole process.
fn process_cpu() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a valid `who`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and initialised the struct.
    let u = unsafe { usage.assume_init() };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(u.ru_utime) + tv(u.ru_stime)
}

#[derive(Clone, Copy, Debug)]
struct Run {
    cpu_us: f64,
    per_sec: f64,
    /// Share of the calls the fallback served.
    refused: f64,
    /// The lease after the run.
    slots: Option<u32>,
}

fn run(rt: &tokio::runtime::Runtime, ctx: &Arc<Ctx>, side: Side, calls: usize, conc: usize) -> Run {
    let i = side as usize;
    let fell_back = ctx.fallbacks[i].load(Ordering::Relaxed);
    let (cpu0, t0) = (process_cpu(), Instant::now());
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for w in 0..conc {
            let ctx = Arc::clone(ctx);
            let share = calls / conc + usize::from(w < calls % conc);
            set.spawn(async move {
                for _ in 0..share {
                    one_call(&ctx.relays[i], &ctx.req, &ctx.fallbacks[i]).await;
                }
            });
        }
        while let Some(done) = set.join_next().await {
            done.expect("task");
        }
    });
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), process_cpu() - cpu0);
    let n = calls as f64;
    Run {
        cpu_us: cpu.as_secs_f64() * 1e6 / n,
        per_sec: n / wall,
        refused: (ctx.fallbacks[i].load(Ordering::Relaxed) - fell_back) as f64 / n,
        slots: fleet_slots(&ctx.relays[i]),
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The three relays, built on `rt`, their stores reached once.
fn context(rt: &tokio::runtime::Runtime, sim_url: &str, redis: &LocalRedis) -> Arc<Ctx> {
    let _in_rt = rt.enter();
    let client = client();
    let ns = format!("overhead{}", std::process::id());
    let relays = SIDES.map(|s| relay(&client, sim_url, store_of(s, redis, &ns)));
    rt.block_on(async {
        for r in &relays[1..] {
            r.sync_store().await.expect("the store answers");
        }
    });
    Arc::new(Ctx {
        relays,
        req: request(),
        fallbacks: Default::default(),
    })
}

fn overhead(sim_url: &str, redis: &LocalRedis) {
    let rt = runtime();
    let ctx = context(&rt, sim_url, redis);
    let (calls, rounds) = (
        env_or("FLEET_CALLS", 5000usize),
        env_or("FLEET_ROUNDS", 9usize),
    );
    let concs: Vec<usize> = std::env::var("FLEET_CONC")
        .unwrap_or_else(|_| "1,32".to_owned())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let verbose = std::env::var("FLEET_VERBOSE").is_ok_and(|v| v == "1");
    println!(
        "\noverhead: {calls} calls a run, {rounds} rounds, current-thread runtime, limit {}",
        match std::env::var("FLEET_LIMIT").as_deref() {
            Ok("none") => "none".to_owned(),
            _ => format!("{} rpm on the primary", env_or("FLEET_RPM", 6_000_000u32)),
        }
    );
    let mut table = Vec::new();
    for &conc in &concs {
        for side in SIDES {
            run(&rt, &ctx, side, calls / 4 + conc, conc);
        }
        let mut runs: [Vec<Run>; 3] = Default::default();
        for round in 0..rounds {
            for k in 0..3 {
                let i = (round + k) % 3;
                let r = run(&rt, &ctx, SIDES[i], calls, conc);
                if verbose {
                    eprintln!(
                        "  c={conc} round {round} {}: {:.2} µs CPU, {:.0}/s, {:.1} % refused, lease {:?}",
                        SIDES[i].name(),
                        r.cpu_us,
                        r.per_sec,
                        r.refused * 100.0,
                        r.slots
                    );
                }
                runs[i].push(r);
            }
        }
        table.push((conc, runs));
    }
    println!(
        "\n| c | side | CPU µs/call | Δ vs none µs | calls/s | throughput vs none | refused (fallback served) | lease after runs (slots) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---|");
    for (conc, runs) in &table {
        for (i, side) in SIDES.iter().enumerate() {
            let med = |f: fn(&Run) -> f64| median(runs[i].iter().map(f).collect());
            let paired = |f: fn(&Run, &Run) -> f64| {
                median(runs[i].iter().zip(&runs[0]).map(|(r, n)| f(r, n)).collect())
            };
            let (delta, ratio) = if i == 0 {
                ("".to_owned(), "".to_owned())
            } else {
                (
                    format!("{:+.2}", paired(|r, n| r.cpu_us - n.cpu_us)),
                    format!("{:.3}", paired(|r, n| r.per_sec / n.per_sec)),
                )
            };
            let slots: Vec<u32> = runs[i].iter().filter_map(|r| r.slots).collect();
            let lease = match (slots.iter().min(), slots.iter().max()) {
                (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
                _ => "not shared".to_owned(),
            };
            let refused = runs[i].iter().map(|r| r.refused).fold(0.0, f64::max);
            println!(
                "| {conc} | {} | {:.2} | {delta} | {:.0} | {ratio} | {:.1} % (max {:.1} %) | {lease} |",
                side.name(),
                med(|r| r.cpu_us),
                med(|r| r.per_sec),
                med(|r| r.refused) * 100.0,
                refused * 100.0,
            );
        }
    }
}

/// `side:conc`: that cell only, `FLEET_ROUNDS` runs of `FLEET_CALLS`, for a profiler.
fn profile(sim_url: &str, redis: &LocalRedis, cell: &str) {
    let rt = runtime();
    let ctx = context(&rt, sim_url, redis);
    let mut parts = cell.split(':');
    let side = parts
        .next()
        .and_then(|s| SIDES.into_iter().find(|x| x.name() == s))
        .expect("FLEET_PROFILE side: none, memory or redis");
    let conc = parts.next().and_then(|c| c.parse().ok()).unwrap_or(1);
    let calls = env_or("FLEET_CALLS", 5000usize);
    for _ in 0..env_or("FLEET_ROUNDS", 9usize) {
        let r = run(&rt, &ctx, side, calls, conc);
        println!(
            "{cell}: {:.2} µs CPU, {:.0} calls/s, {:.1} % refused, lease {:?}",
            r.cpu_us,
            r.per_sec,
            r.refused * 100.0,
            r.slots
        );
    }
}

// --- Part 2: Redis operations per relay per second -----------------------------------------

/// What the server did over a phase: commands by name (the bench's own INFO and CONFIG
/// left out), and its CPU seconds.
struct ServerStats {
    commands: Vec<(String, u64)>,
    cpu_s: f64,
}

impl ServerStats {
    fn reset(redis: &LocalRedis) -> f64 {
        redis.command(&["CONFIG", "RESETSTAT"]);
        Self::cpu(redis)
    }

    fn cpu(redis: &LocalRedis) -> f64 {
        let info = redis.command(&["INFO", "cpu"]);
        ["used_cpu_sys", "used_cpu_user"]
            .iter()
            .filter_map(|f| info_field(&info, f)?.parse::<f64>().ok())
            .sum()
    }

    fn read(redis: &LocalRedis, cpu0: f64) -> ServerStats {
        let info = redis.command(&["INFO", "commandstats"]);
        let mut commands: Vec<(String, u64)> = info
            .lines()
            .filter_map(|l| {
                let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
                let calls = rest
                    .strip_prefix("calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()?;
                Some((name.to_owned(), calls))
            })
            .filter(|(name, _)| name != "info" && !name.starts_with("config"))
            .collect();
        commands.sort_by_key(|c| std::cmp::Reverse(c.1));
        ServerStats {
            commands,
            cpu_s: Self::cpu(redis) - cpu0,
        }
    }

    fn total(&self) -> u64 {
        self.commands.iter().map(|c| c.1).sum()
    }
}

/// One phase's figures.
struct Phase {
    name: String,
    secs: f64,
    server: ServerStats,
    exchanges: u64,
    calls: u64,
    refused: u64,
    slots: Option<u32>,
}

fn operations(sim_url: &str, redis: &LocalRedis) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let _in_rt = rt.enter();
    let (idle, load) = (
        Duration::from_secs(env_or("FLEET_IDLE_SECS", 10)),
        Duration::from_secs(env_or("FLEET_LOAD_SECS", 10)),
    );
    let rate: u64 = env_or("FLEET_RATE", 5000);
    let ns = format!("ops{}", std::process::id());
    let relay = relay(&client(), sim_url, store_of(Side::Redis, redis, &ns));
    rt.block_on(relay.sync_store()).expect("the store answers");
    let exchanges = || relay.store_health().map_or(0, |h| h.exchanges);
    let mut phases = Vec::new();
    let mut phase = |name: String, secs: Duration, traffic: u64| {
        let (cpu0, ex0, t0) = (ServerStats::reset(redis), exchanges(), Instant::now());
        let (calls, refused) = if traffic == 0 {
            std::thread::sleep(secs);
            (0, 0)
        } else {
            rt.block_on(paced(&relay, traffic, secs))
        };
        phases.push(Phase {
            name,
            secs: t0.elapsed().as_secs_f64(),
            server: ServerStats::read(redis, cpu0),
            exchanges: exchanges() - ex0,
            calls,
            refused,
            slots: fleet_slots(&relay),
        });
    };
    phase("idle, just built (no target used yet)".to_owned(), idle, 0);
    phase(format!("{rate} requests/s"), load, rate);
    phase("idle, after traffic".to_owned(), idle, 0);
    println!(
        "\nRedis operations, one relay alone in its namespace (sync interval 250 ms, {}):",
        redis.version()
    );
    println!(
        "| phase | s | calls | refused (fallback served) | exchanges/s | Redis ops/s | ops per exchange | commands | redis-server CPU | lease after |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---|---:|---|");
    for p in &phases {
        let mix: Vec<String> = p
            .server
            .commands
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        println!(
            "| {} | {:.1} | {} | {} | {:.2} | {:.1} | {:.1} | {} | {:.2} % | {:?} |",
            p.name,
            p.secs,
            p.calls,
            p.refused,
            p.exchanges as f64 / p.secs,
            p.server.total() as f64 / p.secs,
            p.server.total() as f64 / p.exchanges.max(1) as f64,
            mix.join(", "),
            p.server.cpu_s / p.secs * 100.0,
            p.slots
        );
    }
}

/// `rate` calls a second for `secs`, open loop (each its own task, launched on a 1 ms
/// tick as many as are due); returns the calls and those the fallback served.
async fn paced(relay: &Relay, rate: u64, secs: Duration) -> (u64, u64) {
    let fallbacks = Arc::new(AtomicU64::new(0));
    let req = Arc::new(request());
    let mut set = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let (t0, total) = (Instant::now(), rate * secs.as_secs());
    let mut sent = 0;
    while sent < total {
        tick.tick().await;
        let due = ((t0.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        for _ in sent..due {
            let (relay, req, fallbacks) = (relay.clone(), Arc::clone(&req), Arc::clone(&fallbacks));
            set.spawn(async move { one_call(&relay, &req, &fallbacks).await });
        }
        sent = due;
        while set.try_join_next().is_some() {}
    }
    while let Some(done) = set.join_next().await {
        done.expect("task");
    }
    (total, fallbacks.load(Ordering::Relaxed))
}
