//! Memory per open stream (issue #7): N concurrent streams (default 10,000) held open through
//! the relay, against the same N through raw reqwest, in one process, as separate phases.
//!
//! ```sh
//! cargo bench --bench memory                         # 10,000 streams, the default phases
//! cargo bench --bench memory -- 2000                 # another N
//! cargo bench --bench memory -- --only raw,relay --detail
//! ```
//!
//! Each phase opens N streams against the in-process simulator, which sends three OpenAI
//! chunks (role, two text deltas) and then stalls, so the streams stay open. Each stream is
//! read to its first text chunk, then held while its consumer keeps awaiting the next one (as
//! a real consumer would). Once all N are open and have read what was sent, the benchmark
//! measures, then drops them all. At most 256 streams are opening at any time.
//!
//! Phases (`--only a,b` picks some; `raw+chunks` runs only when named):
//! - `raw`: a reqwest POST of the very body the relay sends, `bytes_stream()`, the crate's
//!   [`SseDecoder`] and serde of each event into a small struct: the floor.
//! - `raw+chunks`: the same, decoding with `OpenAi::stream_decoder()` into `ChatChunk`s.
//! - `relay`: `relay.chat_stream(req)` on a one-target route, no stream timeouts.
//! - `relay+timeouts`: the same with `first_token_timeout` and `stream_idle_timeout` set.
//! - `relay+fallback`: the timeouts route with two fallback targets (never needed).
//!
//! Measures:
//! - heap: live bytes requested from the allocator (a counting global allocator wrapping
//!   `System`: deterministic up to scheduling), per open stream, split by thread into the
//!   client's side (the client runtime's two workers and the main thread) and the
//!   simulator's (its own runtime thread). The simulator gets the same request in every
//!   phase, so its share is the same; the client's side is what the relay changes.
//! - blocks: live allocations per stream (each also costs the allocator 8–16 bytes).
//! - RSS: resident set growth (`/proc/self/statm`) per stream, whole process. Freed memory is
//!   handed back (`malloc_trim`) before each phase; RSS still depends on what earlier phases
//!   left fragmented, so compare heap figures first, and use `--only PHASE` for one clean
//!   RSS figure.
//!
//! `--detail` adds the sizes of the types and futures involved, and the client-side live
//! allocations each phase holds per stream beyond `raw`, by exact size: a dhat-style view
//! of where the relay's extra memory is. `--no-warmup` skips the unmeasured first round.
//!
//! Every stream takes two file descriptors here (the client's and the simulator's socket):
//! the soft limit is raised as far as the hard limit allows (and the hard limit too, where
//! the process may), and N is lowered, with a warning, if even that is too low.
//!
//! The relay-specific code is all in `mod relay_side`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use polyrelay::http::sse::SseDecoder;
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use tokio::sync::{Semaphore, watch};

// ---------------------------------------------------------------------------------------
// The relay-specific code: adapt this module when the relay's API changes.
// ---------------------------------------------------------------------------------------
mod relay_side {
    use std::time::Duration;

    use futures::Stream;
    use polyrelay::providers::OpenAi;
    use polyrelay::{Chain, ChatChunk, ChatRequest, Error, Relay, Target};

    /// The one user prompt every phase sends.
    pub const PROMPT: &str = "Tell me a long story.";
    /// The vendor model the routes target (the simulator's script is for it).
    pub const MODEL: &str = "m";

    /// A relay on `client` with routes to the simulator at `base` (`…/v1`): `plain` (one
    /// target, no stream timeouts), `timeouts` (one target, first-token and idle timeouts)
    /// and `fallback` (the same, with two fallback targets that are never needed).
    pub fn build(client: reqwest::Client, base: &str) -> Relay {
        Relay::builder()
            .http_client(client)
            .provider("sim", OpenAi::compatible("sim", base, "sk-bench"))
            .route("plain", Chain::new().target(Target::new("sim", MODEL)))
            .route(
                "timeouts",
                Chain::new()
                    .target(Target::new("sim", MODEL))
                    .first_token_timeout(Duration::from_secs(10))
                    .stream_idle_timeout(Duration::from_secs(60)),
            )
            .route(
                "fallback",
                Chain::new()
                    .target(Target::new("sim", MODEL))
                    .target(Target::new("sim", "fallback-1"))
                    .target(Target::new("sim", "fallback-2"))
                    .first_token_timeout(Duration::from_secs(10))
                    .stream_idle_timeout(Duration::from_secs(60)),
            )
            .build()
            .expect("relay")
    }

    /// The request the relay gets (the raw phases send what the relay encodes of it).
    pub fn request(route: &str) -> ChatRequest {
        ChatRequest::new(route).user(PROMPT)
    }

    /// Opens one stream on `route`.
    pub async fn open(
        relay: &Relay,
        route: &str,
    ) -> Result<impl Stream<Item = Result<ChatChunk, Error>> + Unpin + use<>, Error> {
        relay.chat_stream(request(route)).await
    }

    /// Sizes of the crate's types a stream involves.
    pub fn type_sizes() -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        vec![
            ("ChatStream", size_of::<polyrelay::ChatStream>()),
            ("ChatChunk", size_of::<ChatChunk>()),
            ("ChatRequest", size_of::<ChatRequest>()),
            ("ResponseMeta", size_of::<polyrelay::ResponseMeta>()),
            ("Attempt", size_of::<polyrelay::Attempt>()),
            ("TargetId", size_of::<polyrelay::TargetId>()),
        ]
    }

    /// Whether a chunk carries text.
    pub fn is_text(c: &ChatChunk) -> bool {
        c.text().is_some_and(|t| !t.is_empty())
    }
}

// ---------------------------------------------------------------------------------------
// Counting allocator: live bytes and blocks per side (client / simulator), by thread; and a
// histogram of the client side's live blocks by exact size.
// ---------------------------------------------------------------------------------------
const CLIENT: usize = 0;
const SIM: usize = 1;
/// Sizes below this are counted exactly; larger ones by power of two.
const EXACT: usize = 65536;
const HIST_LEN: usize = EXACT + 64;

static LIVE_BYTES: [AtomicI64; 2] = [const { AtomicI64::new(0) }; 2];
static LIVE_BLOCKS: [AtomicI64; 2] = [const { AtomicI64::new(0) }; 2];
static ALLOC_CALLS: [AtomicU64; 2] = [const { AtomicU64::new(0) }; 2];
static HIST: [AtomicI64; HIST_LEN] = [const { AtomicI64::new(0) }; HIST_LEN];

thread_local! {
    /// Which side this thread works for (set on the simulator runtime's threads).
    static SIDE: Cell<usize> = const { Cell::new(CLIENT) };
}

fn side() -> usize {
    SIDE.try_with(Cell::get).unwrap_or(CLIENT)
}

fn bucket(size: usize) -> usize {
    if size < EXACT {
        size
    } else {
        EXACT + (usize::BITS - 1 - size.leading_zeros()) as usize
    }
}

fn on_alloc(size: usize) {
    let s = side();
    LIVE_BYTES[s].fetch_add(size as i64, Relaxed);
    LIVE_BLOCKS[s].fetch_add(1, Relaxed);
    ALLOC_CALLS[s].fetch_add(1, Relaxed);
    if s == CLIENT {
        HIST[bucket(size)].fetch_add(1, Relaxed);
    }
}

fn on_free(size: usize) {
    let s = side();
    LIVE_BYTES[s].fetch_sub(size as i64, Relaxed);
    LIVE_BLOCKS[s].fetch_sub(1, Relaxed);
    if s == CLIENT {
        HIST[bucket(size)].fetch_sub(1, Relaxed);
    }
}

struct Counting;

// SAFETY: every call is forwarded to `System` unchanged; the counters never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is forwarded as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            on_alloc(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        on_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            on_free(layout.size());
            on_alloc(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone)]
struct Snapshot {
    bytes: [i64; 2],
    blocks: [i64; 2],
    calls: [u64; 2],
    rss: u64,
    hist: Vec<i64>,
}

fn snapshot() -> Snapshot {
    let mut hist = vec![0i64; HIST_LEN];
    let rss = rss_bytes();
    for (h, a) in hist.iter_mut().zip(HIST.iter()) {
        *h = a.load(Relaxed);
    }
    Snapshot {
        bytes: [LIVE_BYTES[0].load(Relaxed), LIVE_BYTES[1].load(Relaxed)],
        blocks: [LIVE_BLOCKS[0].load(Relaxed), LIVE_BLOCKS[1].load(Relaxed)],
        calls: [ALLOC_CALLS[0].load(Relaxed), ALLOC_CALLS[1].load(Relaxed)],
        rss,
        hist,
    }
}

/// Resident set size, from /proc/self/statm.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

/// Hands freed heap memory back to the kernel, so the next phase's RSS starts clean.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

// ---------------------------------------------------------------------------------------
// File descriptors: two per stream in this process (client and simulator sockets).
// ---------------------------------------------------------------------------------------
fn ensure_fds(n: usize) -> usize {
    use libc::rlim_t;
    // Descriptors open now, plus room for the runtimes' own (epoll, eventfds, the listener).
    let open_now = std::fs::read_dir("/proc/self/fd").map_or(16, |d| d.count());
    let spare = (open_now + 48) as rlim_t;
    let need = (2 * n) as rlim_t + spare;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur >= need {
        return n;
    }
    let set = |cur: rlim_t, max: rlim_t| {
        let l = libc::rlimit {
            rlim_cur: cur,
            rlim_max: max,
        };
        // SAFETY: `l` is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) == 0 }
    };
    let hard = lim.rlim_max;
    if hard >= need && set(need, hard) {
        return n;
    }
    // Raising the hard limit needs CAP_SYS_RESOURCE; try, a privileged process may.
    if set(need, need) {
        eprintln!("note: raised the file-descriptor hard limit from {hard} to {need}");
        return n;
    }
    set(hard, hard);
    let fit = (hard.saturating_sub(spare) / 2) as usize;
    eprintln!(
        "warning: {n} streams need {need} file descriptors (two per stream, the simulator being \
         in this process) and the hard limit is {hard}: measuring {fit} streams instead. A \
         privileged shell can raise it (`ulimit -Hn {need}`)."
    );
    fit
}

// ---------------------------------------------------------------------------------------
// Phases.
// ---------------------------------------------------------------------------------------
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Raw,
    RawChunks,
    Relay,
    RelayTimeouts,
    RelayFallback,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::Raw,
        Phase::RawChunks,
        Phase::Relay,
        Phase::RelayTimeouts,
        Phase::RelayFallback,
    ];
    /// What runs without `--only`.
    const DEFAULT: [Phase; 4] = [
        Phase::Raw,
        Phase::Relay,
        Phase::RelayTimeouts,
        Phase::RelayFallback,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Raw => "raw",
            Phase::RawChunks => "raw+chunks",
            Phase::Relay => "relay",
            Phase::RelayTimeouts => "relay+timeouts",
            Phase::RelayFallback => "relay+fallback",
        }
    }
}

/// Streams allowed to be opening at once (the rest wait; open ones stay open).
const OPENING: usize = 256;

/// What every stream task shares.
struct Shared {
    client: reqwest::Client,
    relay: polyrelay::Relay,
    url: String,
    body: Bytes,
    opening: Semaphore,
    /// Streams that delivered their first text chunk.
    ready: AtomicUsize,
    /// Streams that have also read everything the simulator sends before it stalls.
    settled: AtomicUsize,
    failed: AtomicUsize,
    release: watch::Sender<bool>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawChunk {
    id: String,
    model: String,
    choices: Vec<RawChoice>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct RawChoice {
    index: u32,
    delta: RawDelta,
    finish_reason: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[allow(dead_code)]
struct RawDelta {
    role: Option<String>,
    content: Option<String>,
}

/// The simulator's answer: a role chunk and two text chunks, then silence.
fn stalled_reply() -> Reply {
    let frame = |delta: &str| {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        )
    };
    let mut frames = vec![
        frame(r#"{"role":"assistant","content":""}"#),
        frame(r#"{"content":"Once"}"#),
        frame(r#"{"content":" upon"}"#),
    ];
    frames.extend((0..100).map(|i| frame(&format!(r#"{{"content":" word{i}"}}"#))));
    Reply::sse(frames).stall_after(3)
}

/// One stream of a phase: open, read to the first text chunk, then hold until released.
/// Generic, so that each phase's task is exactly as large as its own future.
async fn stream_task(
    sh: Arc<Shared>,
    phase: Phase,
    run: impl AsyncFnOnce(&Shared) -> Result<(), String>,
) {
    if let Err(e) = run(&sh).await
        && sh.failed.fetch_add(1, Relaxed) < 3
    {
        eprintln!("{}: stream failed: {e}", phase.name());
    }
}

fn spawn(sh: &Arc<Shared>, phase: Phase) -> tokio::task::JoinHandle<()> {
    let sh = sh.clone();
    match phase {
        Phase::Raw => tokio::spawn(stream_task(sh, phase, async |sh| {
            raw_stream(sh, sse_texts()).await
        })),
        Phase::RawChunks => tokio::spawn(stream_task(sh, phase, async |sh| {
            raw_stream(sh, chunk_texts()).await
        })),
        Phase::Relay => tokio::spawn(stream_task(sh, phase, async |sh| {
            relay_stream(sh, "plain").await
        })),
        Phase::RelayTimeouts => tokio::spawn(stream_task(sh, phase, async |sh| {
            relay_stream(sh, "timeouts").await
        })),
        Phase::RelayFallback => tokio::spawn(stream_task(sh, phase, async |sh| {
            relay_stream(sh, "fallback").await
        })),
    }
}

/// Counts the text events in each read: SSE framing + serde into a small struct.
fn sse_texts() -> impl FnMut(&[u8]) -> Result<usize, String> + Send {
    let mut sse = SseDecoder::new();
    move |bytes| {
        sse.feed(bytes);
        let mut n = 0;
        while let Some(ev) = sse.next_event().map_err(|e| e.to_string())? {
            let c: RawChunk = serde_json::from_str(ev.data).map_err(|e| e.to_string())?;
            n += usize::from(
                c.choices
                    .first()
                    .and_then(|c| c.delta.content.as_deref())
                    .is_some_and(|t| !t.is_empty()),
            );
        }
        Ok(n)
    }
}

/// Counts the text chunks in each read, with the crate's OpenAI stream decoder.
fn chunk_texts() -> impl FnMut(&[u8]) -> Result<usize, String> + Send {
    let mut decoder = OpenAi::stream_decoder();
    move |bytes| {
        let chunks = decoder.feed(bytes).map_err(|e| e.to_string())?;
        Ok(chunks.iter().filter(|c| relay_side::is_text(c)).count())
    }
}

async fn raw_stream(
    sh: &Shared,
    mut read: impl FnMut(&[u8]) -> Result<usize, String> + Send,
) -> Result<(), String> {
    let permit = sh.opening.acquire().await.map_err(|e| e.to_string())?;
    let resp = sh
        .client
        .post(&sh.url)
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(sh.body.clone())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let mut body = resp.bytes_stream();
    let mut texts = 0usize;
    while texts == 0 {
        match body.next().await {
            Some(b) => texts += read(&b.map_err(|e| e.to_string())?)?,
            None => return Err("stream ended".into()),
        }
    }
    drop(permit);
    let mut hold = Hold::new(sh, texts);
    let mut rx = sh.release.subscribe();
    loop {
        tokio::select! {
            _ = rx.wait_for(|r| *r) => return Ok(()),
            b = body.next() => match b {
                Some(b) => hold.texts(read(&b.map_err(|e| e.to_string())?)?),
                None => return Err("stream ended".into()),
            },
        }
    }
}

async fn relay_stream(sh: &Shared, route: &str) -> Result<(), String> {
    let permit = sh.opening.acquire().await.map_err(|e| e.to_string())?;
    let mut s = relay_side::open(&sh.relay, route)
        .await
        .map_err(|e| e.to_string())?;
    let mut texts = 0usize;
    while texts == 0 {
        match s.next().await {
            Some(c) => texts += usize::from(relay_side::is_text(&c.map_err(|e| e.to_string())?)),
            None => return Err("stream ended".into()),
        }
    }
    drop(permit);
    let mut hold = Hold::new(sh, texts);
    let mut rx = sh.release.subscribe();
    loop {
        tokio::select! {
            _ = rx.wait_for(|r| *r) => return Ok(()),
            c = s.next() => match c {
                Some(c) => hold.texts(usize::from(relay_side::is_text(&c.map_err(|e| e.to_string())?))),
                None => return Err("stream ended".into()),
            },
        }
    }
}

/// A stream that delivered its first text chunk: counted ready, and settled once it has also
/// read the second (the last the simulator sends before it stalls).
struct Hold<'a> {
    sh: &'a Shared,
    texts: usize,
}

impl<'a> Hold<'a> {
    fn new(sh: &'a Shared, texts: usize) -> Self {
        sh.ready.fetch_add(1, Relaxed);
        let mut h = Hold { sh, texts: 0 };
        h.texts(texts);
        h
    }

    fn texts(&mut self, n: usize) {
        let before = self.texts;
        self.texts += n;
        if before < 2 && self.texts >= 2 {
            self.sh.settled.fetch_add(1, Relaxed);
        }
    }
}

/// What a phase measured.
struct Measured {
    phase: Phase,
    streams: usize,
    failed: usize,
    open_secs: f64,
    base: Snapshot,
    hold: Snapshot,
}

impl Measured {
    fn per(&self, v: i64) -> f64 {
        v as f64 / self.streams.max(1) as f64
    }
    fn heap(&self, side: usize) -> f64 {
        self.per(self.hold.bytes[side] - self.base.bytes[side])
    }
    fn blocks(&self, side: usize) -> f64 {
        self.per(self.hold.blocks[side] - self.base.blocks[side])
    }
    fn calls(&self, side: usize) -> f64 {
        self.per((self.hold.calls[side] - self.base.calls[side]) as i64)
    }
    fn rss(&self) -> f64 {
        self.per(self.hold.rss as i64 - self.base.rss as i64)
    }
    /// Client-side live blocks held per stream, by size bucket.
    fn hist(&self) -> Vec<f64> {
        self.hold
            .hist
            .iter()
            .zip(&self.base.hist)
            .map(|(h, b)| self.per(h - b))
            .collect()
    }
}

struct Bench {
    rt: tokio::runtime::Runtime,
    sim_rt: tokio::runtime::Runtime,
    sim: Simulator,
    shared: Arc<Shared>,
}

impl Bench {
    fn setup() -> Bench {
        let sim_rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("simulator")
            .on_thread_start(|| SIDE.with(|s| s.set(SIM)))
            .enable_all()
            .build()
            .expect("runtime");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let sim = sim_rt
            .block_on(sim_rt.spawn(Simulator::start()))
            .expect("task")
            .expect("simulator");
        let base = format!("{}/v1", sim.base_url());
        let client = polyrelay::http::default_client().expect("client");
        let relay = relay_side::build(client.clone(), &base);
        let body = polyrelay::providers::openai::encode_request(
            &relay_side::request("plain"),
            relay_side::MODEL,
            true,
        )
        .expect("encode");
        let b = Bench {
            shared: Arc::new(Shared {
                client,
                relay,
                url: format!("{base}/chat/completions"),
                body: Bytes::from(body),
                opening: Semaphore::new(OPENING),
                ready: AtomicUsize::new(0),
                settled: AtomicUsize::new(0),
                failed: AtomicUsize::new(0),
                release: watch::Sender::new(false),
            }),
            rt,
            sim_rt,
            sim,
        };
        b.on_sim(|sim| sim.script(relay_side::MODEL, [stalled_reply()]));
        b
    }

    /// Runs `f` on the simulator's thread, so what it allocates or frees counts there.
    fn on_sim<T: Send + 'static>(&self, f: impl FnOnce(&Simulator) -> T + Send + 'static) -> T {
        let sim = self.sim.clone();
        self.sim_rt
            .block_on(self.sim_rt.spawn(async move { f(&sim) }))
            .expect("simulator task")
    }

    /// Waits until the simulator's live heap stops shrinking (its connections have ended).
    fn sim_quiesce(&self) {
        let t = Instant::now();
        let mut last = i64::MAX;
        let mut stable = 0;
        while stable < 5 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
            let now = LIVE_BLOCKS[SIM].load(Relaxed);
            stable = if now >= last { stable + 1 } else { 0 };
            last = now;
        }
    }

    fn run(&self, phase: Phase, n: usize) -> Measured {
        let sh = &self.shared;
        self.on_sim(|sim| sim.clear());
        self.on_sim(|sim| sim.script(relay_side::MODEL, [stalled_reply()]));
        sh.ready.store(0, Relaxed);
        sh.settled.store(0, Relaxed);
        sh.failed.store(0, Relaxed);
        sh.release.send_replace(false);
        let mut tasks = Vec::with_capacity(n);
        trim();
        std::thread::sleep(Duration::from_millis(50));
        let base = snapshot();
        let t = Instant::now();
        let (open_secs, hold) = self.rt.block_on(async {
            for _ in 0..n {
                tasks.push(spawn(sh, phase));
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let (settled, failed) = (sh.settled.load(Relaxed), sh.failed.load(Relaxed));
                if settled + failed >= n || Instant::now() > deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let open_secs = t.elapsed().as_secs_f64();
            // Let the last reads finish their bookkeeping before measuring.
            tokio::time::sleep(Duration::from_millis(100)).await;
            (open_secs, snapshot())
        });
        let failed = sh.failed.load(Relaxed);
        let settled = sh.settled.load(Relaxed);
        if settled + failed < n {
            eprintln!(
                "{}: only {settled} of {n} streams settled in time ({} opened, {failed} failed)",
                phase.name(),
                sh.ready.load(Relaxed)
            );
        }
        sh.release.send_replace(true);
        self.rt.block_on(async {
            for t in tasks.drain(..) {
                let _ = t.await;
            }
        });
        drop(tasks);
        self.sim_quiesce();
        Measured {
            phase,
            streams: n - failed,
            failed,
            open_secs,
            base,
            hold,
        }
    }
}

struct Opts {
    streams: usize,
    phases: Vec<Phase>,
    detail: bool,
    warmup: bool,
}

fn opts() -> Opts {
    let mut o = Opts {
        streams: 10_000,
        phases: Phase::DEFAULT.to_vec(),
        detail: false,
        warmup: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--detail" => o.detail = true,
            "--no-warmup" => o.warmup = false,
            "--only" => {
                let list = args.next().unwrap_or_default();
                o.phases = list
                    .split(',')
                    .map(|name| {
                        *Phase::ALL
                            .iter()
                            .find(|p| p.name() == name)
                            .unwrap_or_else(|| panic!("unknown phase {name:?}"))
                    })
                    .collect();
            }
            "--streams" => {
                o.streams = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--streams N")
            }
            // `cargo bench` passes `--bench`; ignore it and other harness flags.
            other => {
                if let Ok(n) = other.replace('_', "").parse() {
                    o.streams = n;
                }
            }
        }
    }
    o
}

fn kib(b: f64) -> String {
    format!("{:.1} KiB", b / 1024.0)
}

fn main() {
    let o = opts();
    let n = ensure_fds(o.streams);
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let t0 = Instant::now();
    let b = Bench::setup();
    if o.detail {
        sizes(&b);
    }
    if o.warmup {
        // One full-size round first: pools, tables and queues (the simulator's request log
        // among them) grow to their N-stream size here, not in the first measured phase.
        let w = b.run(Phase::Raw, n);
        println!(
            "warm-up: {} raw streams opened in {:.1} s",
            w.streams, w.open_secs
        );
    }
    let results: Vec<Measured> = o.phases.iter().map(|&p| b.run(p, n)).collect();
    let raw = results.iter().find(|m| m.phase == Phase::Raw);

    println!(
        "\n== memory per open stream: {n} concurrent streams, each held after its first text chunk ==",
    );
    println!(
        "{:<15} {:>7} {:>11} {:>11} {:>11} {:>8} {:>11} {:>9} {:>9} {:>6}",
        "phase",
        "streams",
        "heap/strm",
        "client",
        "simulator",
        "blocks",
        "RSS/strm",
        "heap/raw",
        "RSS/raw",
        "open s"
    );
    for m in &results {
        let heap = m.heap(CLIENT) + m.heap(SIM);
        let ratio = |a: f64, b: f64| format!("{:.3}", a / b);
        let (hr, rr) = match raw {
            Some(r) => (
                ratio(heap, r.heap(CLIENT) + r.heap(SIM)),
                ratio(m.rss(), r.rss()),
            ),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<15} {:>7} {:>11} {:>11} {:>11} {:>8.1} {:>11} {:>9} {:>9} {:>6.1}",
            m.phase.name(),
            m.streams,
            kib(heap),
            kib(m.heap(CLIENT)),
            kib(m.heap(SIM)),
            m.blocks(CLIENT) + m.blocks(SIM),
            kib(m.rss()),
            hr,
            rr,
            m.open_secs,
        );
        if m.failed > 0 {
            println!("  ({} streams failed to open)", m.failed);
        }
    }
    if let Some(r) = raw {
        for m in results.iter().filter(|m| m.phase != Phase::Raw) {
            println!(
                "{} vs raw: heap {:+.0} B/stream ({:+.1} %), client side {:+.0} B ({:+.1} %), blocks {:+.1}, RSS {:+.0} B/stream ({:+.1} %)",
                m.phase.name(),
                m.heap(CLIENT) + m.heap(SIM) - r.heap(CLIENT) - r.heap(SIM),
                100.0 * ((m.heap(CLIENT) + m.heap(SIM)) / (r.heap(CLIENT) + r.heap(SIM)) - 1.0),
                m.heap(CLIENT) - r.heap(CLIENT),
                100.0 * (m.heap(CLIENT) / r.heap(CLIENT) - 1.0),
                m.blocks(CLIENT) + m.blocks(SIM) - r.blocks(CLIENT) - r.blocks(SIM),
                m.rss() - r.rss(),
                100.0 * (m.rss() / r.rss() - 1.0),
            );
        }
    }
    println!(
        "heap = live bytes requested from the allocator (client + simulator; the simulator's \
         share is the same request in every phase); blocks = live allocations; RSS = resident \
         growth, whole process. Total run {:.1} s.",
        t0.elapsed().as_secs_f64()
    );
    if o.detail {
        detail(&results);
    }
}

/// Sizes of the values a stream holds, and of the futures a task holding one is built from.
fn sizes(b: &Bench) {
    use std::mem::{size_of, size_of_val};
    println!("\n== sizes (bytes) ==");
    let relay = b.shared.relay.clone();
    let open = async move { relay_side::open(&relay, "plain").await };
    let send = b.shared.client.post(&b.shared.url).send();
    let raw_task = raw_stream(&b.shared, sse_texts());
    let relay_task = relay_stream(&b.shared, "plain");
    let mut rows = relay_side::type_sizes();
    rows.extend([
        ("SseDecoder", size_of::<SseDecoder>()),
        (
            "OpenAi::stream_decoder()",
            size_of_val(&OpenAi::stream_decoder()),
        ),
        ("tokio::time::Sleep", size_of::<tokio::time::Sleep>()),
        ("reqwest::Response", size_of::<reqwest::Response>()),
        ("future: relay.chat_stream(req)", size_of_val(&open)),
        ("future: reqwest send()", size_of_val(&send)),
        (
            "future: this bench's raw stream task",
            size_of_val(&raw_task),
        ),
        (
            "future: this bench's relay stream task",
            size_of_val(&relay_task),
        ),
    ]);
    for (name, size) in rows {
        println!("{name:<40} {size:>6}");
    }
}

/// Client-side live blocks each phase holds per stream beyond `raw`, by exact size.
fn detail(results: &[Measured]) {
    let Some(raw) = results.iter().find(|m| m.phase == Phase::Raw) else {
        return;
    };
    let label = |i: usize| {
        if i < EXACT {
            format!("{i}")
        } else {
            let k = i - EXACT;
            format!("{}..{}", 1u64 << k, 1u64 << (k + 1))
        }
    };
    let size_of_bucket = |i: usize| {
        if i < EXACT {
            i as f64
        } else {
            (1u64 << (i - EXACT)) as f64 * 1.5
        }
    };
    let rh = raw.hist();
    println!("\n== raw: client-side live blocks per stream, by size (≥ 0.5 block/stream) ==");
    for (i, c) in rh.iter().enumerate() {
        if c.abs() >= 0.5 {
            println!("  {:>12} B x {:>6.2}", label(i), c);
        }
    }
    println!(
        "  client heap/stream {:.0} B; allocation calls per stream (opening included): client {:.1}, simulator {:.1}",
        raw.heap(CLIENT),
        raw.calls(CLIENT),
        raw.calls(SIM)
    );
    for m in results.iter().filter(|m| m.phase != Phase::Raw) {
        let h = m.hist();
        println!(
            "\n== {}: client-side live blocks per stream beyond raw, by size (|Δ| ≥ 0.05 block) ==",
            m.phase.name()
        );
        let mut rows: Vec<(usize, f64)> = h
            .iter()
            .zip(&rh)
            .map(|(a, b)| a - b)
            .enumerate()
            .filter(|(_, d)| d.abs() >= 0.05)
            .collect();
        rows.sort_by(|a, b| {
            (b.1 * size_of_bucket(b.0))
                .abs()
                .total_cmp(&(a.1 * size_of_bucket(a.0)).abs())
        });
        for (i, d) in rows {
            println!(
                "  {:>12} B x {:>+6.2} = {:>+8.0} B",
                label(i),
                d,
                d * size_of_bucket(i)
            );
        }
        println!(
            "  client heap/stream {:.0} B ({:+.0} vs raw); allocation calls per stream: client {:.1} ({:+.1}), simulator {:.1}",
            m.heap(CLIENT),
            m.heap(CLIENT) - raw.heap(CLIENT),
            m.calls(CLIENT),
            m.calls(CLIENT) - raw.calls(CLIENT),
            m.calls(SIM)
        );
    }
}
