//! Test support: the loopback vendor simulator (shipped in the crate behind the `simulator`
//! feature, so examples and users' tests can use it too) and helpers around it.
#![allow(dead_code, unused_imports)]

#[cfg(all(feature = "bedrock", feature = "vertex"))]
pub mod clouds;
pub mod fixtures;
pub mod redis;

use std::time::Duration;

use futures::StreamExt;
use polyrelay::providers::OpenAi;
pub use polyrelay::simulator::{RecordedRequest, Reply, Simulator};
use polyrelay::{Chain, ChatChunk, ChatRequest, ChatResponse, ChatStream, Error, Relay};

/// An OpenAI-compatible provider pointed at the simulator.
/// A relay builder with one provider per dialect on `sim`, named after it: `openai`,
/// `anthropic` and `gemini` (keys `sk-o`, `sk-a`, `gm`).
pub fn three_dialects(sim: &Simulator) -> polyrelay::RelayBuilder {
    let base = sim.base_url();
    Relay::builder()
        .provider(
            "openai",
            OpenAi::new("sk-o").base_url(&format!("{base}/v1")),
        )
        .provider(
            "anthropic",
            polyrelay::providers::Anthropic::new("sk-a").base_url(&format!("{base}/v1")),
        )
        .provider(
            "gemini",
            polyrelay::providers::Gemini::new("gm").base_url(&format!("{base}/v1beta")),
        )
}

pub fn openai_at(sim: &Simulator, key: &str) -> OpenAi {
    OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), key)
}

/// A relay with one provider `sim` (the simulator) and one route `r` over `chain`.
pub fn relay(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("r", chain)
        .build()
        .expect("valid relay")
}

/// A two-target chain on the simulator: `primary` then `fallback`.
pub fn primary_fallback() -> Chain {
    Chain::new()
        .target("sim/primary")
        .target("sim/fallback")
        .total_timeout(Duration::from_secs(10))
}

/// Runs `fut` under a generous guard so a broken test fails instead of hanging.
pub async fn guarded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

/// Streams `req` through `relay` and folds the stream into one response, within
/// [`guarded`]'s bound. Panics if the stream does not open.
pub async fn folded(
    relay: &Relay,
    req: impl std::borrow::Borrow<ChatRequest> + Send,
) -> Result<ChatResponse, Error> {
    guarded(async {
        relay
            .chat_stream(req)
            .await
            .expect("the stream opens")
            .into_response()
            .await
    })
    .await
}

/// Reads a stream to its end, leaving it in place (its meta stays readable): the chunks, and
/// the error it ended with.
pub async fn drain(s: &mut ChatStream) -> (Vec<ChatChunk>, Option<Error>) {
    let mut chunks = Vec::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(c) => chunks.push(c),
            Err(e) => return (chunks, Some(e)),
        }
    }
    (chunks, None)
}

/// The text of the chunks, joined.
pub fn joined(chunks: &[ChatChunk]) -> String {
    chunks.iter().filter_map(|c| c.text()).collect()
}

/// Everything the process logs (every level) while the guard lives, as text.
#[derive(Clone, Default)]
pub struct CapturedLogs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Starts capturing on this thread; capture stops when the guard is dropped.
    pub fn start() -> (CapturedLogs, tracing::subscriber::DefaultGuard) {
        let logs = CapturedLogs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    /// What was logged so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut b) = self.0.lock() {
            b.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One OpenAI `chat.completion.chunk` SSE frame.
pub fn chunk(id: &str, delta: serde_json::Value, finish: Option<&str>) -> String {
    let c = serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": 1,
        "model": "m", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// An OpenAI usage-only SSE frame.
pub fn usage_frame(id: &str, prompt: u64, completion: u64) -> String {
    let u = serde_json::json!({"id": id, "object": "chat.completion.chunk", "created": 1,
        "model": "m", "choices": [], "usage": {"prompt_tokens": prompt,
        "completion_tokens": completion, "total_tokens": prompt + completion}});
    format!("data: {u}\n\n")
}

/// A whole OpenAI stream of tokens `t{from} … t{to-1}`: role frame, content frames, finish,
/// usage (`prompt` in, one token per content frame out), `[DONE]`.
pub fn tokens(id: &str, from: usize, to: usize, prompt: u64) -> Vec<String> {
    let mut f = vec![chunk(
        id,
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
    )];
    f.extend((from..to).map(|i| chunk(id, serde_json::json!({"content": format!("t{i} ")}), None)));
    f.push(chunk(id, serde_json::json!({}), Some("stop")));
    f.push(usage_frame(id, prompt, (to - from) as u64));
    f.push("data: [DONE]\n\n".into());
    f
}

/// The whole answer "t0 … t{n-1}" as an OpenAI stream.
pub fn frames(n: usize) -> Vec<String> {
    tokens("s", 0, n, 5)
}

/// The first `n` tokens of a 60-token answer, then a clean close (FIN, no finish reason, no
/// `[DONE]`): every byte sent arrives, so the cut point is exact.
pub fn cut_at(n: usize) -> Reply {
    Reply::sse(frames(60).into_iter().take(n + 1)).close_delimited()
}

/// The text of tokens `t{i} ` for `i` in `range`.
pub fn text_of(range: std::ops::Range<usize>) -> String {
    range.map(|i| format!("t{i} ")).collect()
}

/// An in-process provider for tests on tokio's paused clock (the loopback simulator needs
/// real time): answers "ok" after 30 ms with usage 10 in, 5 out.
#[derive(Debug)]
pub struct FixedProvider;

#[async_trait::async_trait]
impl polyrelay::Provider for FixedProvider {
    fn name(&self) -> &str {
        "fixed"
    }
    async fn chat(
        &self,
        _: &ChatRequest,
        model: &str,
        _: &polyrelay::CallContext,
    ) -> Result<ChatResponse, Error> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let mut r = ChatResponse::default();
        r.model = model.to_owned();
        r.choices = vec![polyrelay::Choice::new(
            0,
            polyrelay::Message::assistant("ok"),
            Some(polyrelay::FinishReason::Stop),
        )];
        r.usage = Some(polyrelay::Usage::new(10, 5));
        Ok(r)
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &polyrelay::CallContext,
    ) -> Result<ChatStream, Error> {
        Err(Error::new(
            polyrelay::ErrorKind::InvalidRequest,
            "FixedProvider does not stream",
        ))
    }
}

/// A reqwest client with no idle pool and no proxy: each request opens its own connection,
/// so a test counting what the simulator receives sees every call.
pub fn unpooled_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("reqwest client")
}

/// The config error names `key` on `line`, in its fields and in what it displays, and says
/// `says`.
#[track_caller]
pub fn assert_at(e: &polyrelay::config::ConfigError, line: usize, key: &str, says: &str) {
    assert_eq!(e.line(), Some(line), "{e}");
    assert_eq!(e.key(), Some(key), "{e}");
    assert!(e.message().contains(says), "{e}");
    let shown = e.to_string();
    assert!(shown.contains(&format!(":{line}:")), "{shown}");
    assert!(shown.contains(key), "{shown}");
}
