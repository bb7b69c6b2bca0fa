//! A scriptable LLM-vendor simulator listening on loopback.
//!
//! The simulator speaks raw HTTP/1.1 over a [`tokio::net::TcpListener`] bound to
//! `127.0.0.1:0`. It exists so that examples and tests (polyrelay's own and its users')
//! can exercise real network behaviour without reaching a real vendor: slow answers,
//! errors with `Retry-After`, connections reset before the headers, SSE streams cut or
//! stalled half-way, and clients that give up and close.
//!
//! Raw TCP (rather than an HTTP server library) is deliberate: it gives byte-level control
//! over what is written and lets the simulator see the moment a client closes its
//! connection, which every [`RecordedRequest`] reports through
//! [`RecordedRequest::is_closed`] and [`RecordedRequest::closed`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use polyrelay::simulator::{Reply, Simulator};
//! use std::time::Duration;
//!
//! let sim = Simulator::start().await?;
//! sim.script("gpt-4o-mini", [
//!     Reply::openai_error(429, "rate_limit_exceeded", None, "slow down").header("retry-after", "1"),
//!     Reply::openai_text("hi").delay(Duration::from_millis(50)),
//! ]);
//! let url = format!("{}/v1/chat/completions", sim.base_url());
//! # let _ = url;
//! # Ok(())
//! # }
//! ```
//!
//! A model (or the whole simulator) can also be given a request rate limit, which it
//! enforces as a vendor does: 429s with `retry-after` past the limit, and
//! `x-ratelimit-*-requests` headers on the answers ([`Simulator::limit_requests`]).
//!
//! Requests are matched to scripts by their model: for Bedrock paths
//! (`/model/{modelId}/converse`) and Vertex publisher paths
//! (`.../publishers/{google,anthropic}/models/{model}:method`) the percent-decoded path
//! segment; otherwise the JSON body's `"model"`, or for Gemini-style paths
//! (`/v1beta/models/{model}:generateContent`) the `{model}` segment. Requests for models
//! without a script get the default reply (see [`Simulator::set_default`]).
//!
//! The simulator speaks five vendor dialects, told apart by the request path (see
//! [`Dialect`]): OpenAI Chat Completions, Anthropic Messages (`.../messages`), Google Gemini
//! (`:generateContent`, `:streamGenerateContent`), AWS Bedrock (Converse and
//! ConverseStream with `application/vnd.amazon.eventstream` frames, and InvokeModel with
//! Anthropic's body) and Google Vertex AI (Gemini, Claude's `:rawPredict` /
//! `:streamRawPredict`, and the OpenAI-compatible endpoint, with Vertex's errors), plus
//! Google's OAuth token endpoint and GCE metadata server ([`Simulator::script_tokens`]).
//! [`Reply::text`], [`Reply::tool_call`], [`Reply::error`] and [`Reply::stream_error_after`]
//! answer in the dialect of whatever request they meet, so one script can serve a failover
//! chain across vendors:
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use polyrelay::simulator::{Reply, SimError, Simulator};
//!
//! let sim = Simulator::start().await?;
//! sim.script("gpt-4o-mini", [Reply::error(SimError::RateLimited { retry_after_secs: 1 })]);
//! sim.script("claude-sonnet-4-5", [Reply::stream_error_after(2, SimError::Overloaded)]);
//! sim.script("gemini-2.5-flash", [Reply::text("from Gemini")]);
//! // Bedrock: the model id from the path, decoded (`…-v1%3A0` → `…-v1:0`).
//! sim.script(
//!     "us.anthropic.claude-3-5-haiku-20241022-v1:0",
//!     [Reply::stream_error_after(2, SimError::RateLimited { retry_after_secs: 1 })],
//! );
//! // A ConverseStream whose third frame has a broken message CRC.
//! sim.script("us.amazon.nova-micro-v1:0", [Reply::text("hi there").bad_message_crc(2)]);
//! // Two tokens, then an OAuth error, from `POST /token` and the metadata server.
//! sim.script_tokens([
//!     Reply::google_token(Some("ya29.first"), 3599),
//!     Reply::google_token(Some("ya29.second"), 3599),
//!     Reply::error(SimError::Auth),
//! ]);
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod bedrock;
mod common;
mod conn;
mod eventstream;
mod gemini;
mod limit;
mod openai;
mod reply;
mod vertex;

pub use common::SimError;
pub use reply::Reply;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The text of the reply given to requests whose model has no script, until
/// [`Simulator::set_default`] changes it.
pub(crate) const DEFAULT_TEXT: &str = "Hello from the polyrelay simulator.";

/// The `expires_in` of the tokens the token endpoints answer without a script.
pub const DEFAULT_TOKEN_LIFETIME: u64 = 3599;

/// A running simulator: an HTTP/1.1 server on `127.0.0.1` with a random port.
///
/// Cloning is cheap and every clone controls the same server. The server (its accept loop
/// and every open connection) stops when the last clone is dropped.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: tokio::task::AbortHandle,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The accept task owns the JoinSet of connection tasks, so aborting it drops the set,
        // which aborts every connection as well.
        self.accept.abort();
    }
}

/// State shared between the handles and the server tasks.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Number of requests recorded so far (reset by `clear`).
    count: watch::Sender<usize>,
}

struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    /// Replies for the token endpoints ([`Simulator::script_tokens`]).
    token_script: VecDeque<Reply>,
    default: Reply,
    requests: Vec<RecordedRequest>,
    /// Request limits by model ([`Simulator::limit_requests`]).
    limits: HashMap<String, limit::RequestLimit>,
    /// The limit on every request ([`Simulator::limit_all_requests`]).
    limit_all: Option<limit::RequestLimit>,
    /// 429s sent by the limits, by the request's model ("" for none).
    rate_limited: HashMap<String, usize>,
}

/// The next reply of a script: the front one, taken off unless it is the last.
fn next_reply(queue: &mut VecDeque<Reply>) -> Option<Reply> {
    if queue.len() > 1 {
        queue.pop_front()
    } else {
        queue.front().cloned()
    }
}

impl State {
    /// The reply to a request to a token endpoint: the metadata server's 403 without
    /// `Metadata-Flavor: Google` (the script is not read), else the token script's next reply,
    /// else a made-up token.
    fn token_reply(&mut self, request: &RecordedRequest) -> Reply {
        if vertex::is_metadata_path(&request.path)
            && request.header("metadata-flavor") != Some("Google")
        {
            return Reply::raw(
                403,
                "text/html; charset=UTF-8",
                "Missing required header: Metadata-Flavor\n",
            )
            .header("metadata-flavor", "Google");
        }
        next_reply(&mut self.token_script)
            .unwrap_or_else(|| Reply::google_token(None, DEFAULT_TOKEN_LIFETIME))
    }

    /// Applies the request limits that concern `model`: `None` when none does.
    fn check_limits(
        &mut self,
        model: Option<&str>,
        dialect: Dialect,
        now: tokio::time::Instant,
    ) -> Option<limit::Verdict> {
        let mut applicable: Vec<&mut limit::RequestLimit> = Vec::with_capacity(2);
        if let Some(l) = model.and_then(|m| self.limits.get_mut(m)) {
            applicable.push(l);
        }
        if let Some(l) = self.limit_all.as_mut() {
            applicable.push(l);
        }
        if applicable.is_empty() {
            return None;
        }
        let verdict = limit::decide(
            &mut applicable,
            model.unwrap_or(common::FALLBACK_MODEL),
            dialect,
            now,
        );
        if matches!(verdict, limit::Verdict::Refused(_)) {
            *self
                .rate_limited
                .entry(model.unwrap_or("").to_owned())
                .or_default() += 1;
        }
        Some(verdict)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means some thread panicked while holding it; the state itself
        // is always left consistent, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records one request that has fully arrived and picks the reply for it.
    pub(crate) fn record(
        &self,
        incoming: conn::Incoming,
        closed: ClosedSignal,
    ) -> (RecordedRequest, Reply) {
        let model = extract_model(&incoming.path, &incoming.body);
        let (request, reply, count) = {
            let mut state = self.lock();
            let request = RecordedRequest {
                seq: state.requests.len(),
                at: tokio::time::Instant::now(),
                method: incoming.method,
                path: incoming.path,
                headers: incoming.headers,
                model,
                body: incoming.body,
                raw_body: incoming.raw_body,
                closed,
            };
            let dialect = request.dialect();
            // The token endpoints neither count against request limits nor read scripts.
            // Elsewhere a request over a limit is refused before it reaches the script, which
            // it therefore does not consume. `Err`: the reply, chosen without a model script.
            let verdict = match dialect {
                Dialect::GoogleToken => Err(state.token_reply(&request)),
                _ => match state.check_limits(request.model.as_deref(), dialect, request.at) {
                    Some(limit::Verdict::Refused(reply)) => Err(reply),
                    Some(limit::Verdict::Admitted(headers)) => Ok(headers),
                    None => Ok(Vec::new()),
                },
            };
            let reply = match verdict {
                Err(reply) => reply,
                Ok(headers) => {
                    let scripted = request
                        .model
                        .as_ref()
                        .and_then(|m| state.scripts.get_mut(m))
                        .and_then(next_reply);
                    let reply = match scripted {
                        Some(reply) => reply,
                        None => state.default.clone(),
                    };
                    if headers.is_empty() {
                        reply
                    } else {
                        reply.with_default_headers(headers)
                    }
                }
            };
            state.requests.push(request.clone());
            (request, reply, state.requests.len())
        };
        self.count.send_replace(count);
        (request, reply)
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Binds `127.0.0.1:0` and starts serving in a background tokio task.
    ///
    /// Must be called inside a tokio runtime. The server runs until the last handle is dropped.
    pub async fn start() -> std::io::Result<Simulator> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                scripts: HashMap::new(),
                token_script: VecDeque::new(),
                default: Reply::text(DEFAULT_TEXT),
                requests: Vec::new(),
                limits: HashMap::new(),
                limit_all: None,
                rate_limited: HashMap::new(),
            }),
            count: watch::Sender::new(0),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared))).abort_handle();
        tracing::debug!(%addr, "polyrelay simulator listening");
        Ok(Simulator {
            inner: Arc::new(Inner {
                shared,
                addr,
                accept,
            }),
        })
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The base URL of the simulator, `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// Queues replies for requests whose model is `model`.
    ///
    /// Replies are consumed in order; the last one stays and answers every later request.
    /// Calling again replaces the queue. An empty `replies` removes the script, so the model
    /// gets the default reply again.
    pub fn script(&self, model: &str, replies: impl IntoIterator<Item = Reply>) {
        let queue: VecDeque<Reply> = replies.into_iter().collect();
        let mut state = self.inner.shared.lock();
        if queue.is_empty() {
            state.scripts.remove(model);
        } else {
            state.scripts.insert(model.to_owned(), queue);
        }
    }

    /// Sets the reply for requests whose model has no script (or that name no model).
    ///
    /// The initial default is `Reply::text("Hello from the polyrelay simulator.")`, which
    /// answers in the dialect of each request (OpenAI, Anthropic or Gemini), streamed when the
    /// request streams. The default is not consumed: it answers every such request.
    pub fn set_default(&self, reply: Reply) {
        self.inner.shared.lock().default = reply;
    }

    /// Every request recorded so far (since the last [`Simulator::clear`]), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.inner.shared.lock().requests.clone()
    }

    /// The recorded requests whose model is `model`, in arrival order.
    pub fn requests_for(&self, model: &str) -> Vec<RecordedRequest> {
        self.inner
            .shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.model.as_deref() == Some(model))
            .cloned()
            .collect()
    }

    /// Resolves once at least `n` requests have been recorded (since the last
    /// [`Simulator::clear`]). A request is recorded once its head and body have fully arrived,
    /// before its reply starts.
    pub async fn wait_for_requests(&self, n: usize) {
        let mut rx = self.inner.shared.count.subscribe();
        // The sender lives in `Shared`, which `self` keeps alive, so this cannot fail.
        let _ = rx.wait_for(|count| *count >= n).await;
    }

    /// Makes `model` a rate-limited vendor: once `n` of its requests have been admitted
    /// within a sliding window of `per` (on tokio's clock, so a paused clock drives it), it
    /// answers OpenAI's 429 (`requests`/`rate_limit_exceeded`, in the OpenAI, Anthropic and
    /// Gemini dialects; on the Bedrock and Vertex paths the cloud's own 429, as
    /// [`Reply::error`]`(`[`SimError::RateLimited`]`)` renders it) with
    /// `retry-after` in whole seconds rounded up, until the oldest admitted request leaves
    /// the window. A refused request does not count against the window and does not consume
    /// the model's script.
    ///
    /// Admitted answers carry `x-ratelimit-limit-requests` (`n`),
    /// `x-ratelimit-remaining-requests` and `x-ratelimit-reset-requests` (a Go-style duration
    /// until the oldest admitted request leaves the window, when the allowance next grows),
    /// unless the scripted reply sets them with [`Reply::header`]; the 429 carries them too,
    /// remaining `0`. Calling again replaces the limit and forgets its window;
    /// [`Simulator::clear`] removes it. [`Simulator::rate_limited`] counts the 429s.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// use polyrelay::simulator::Simulator;
    /// use std::time::Duration;
    ///
    /// let sim = Simulator::start().await?;
    /// sim.limit_requests("gpt-4o-mini", 5, Duration::from_secs(60));
    /// // ...after six requests for gpt-4o-mini within a minute, the sixth answered 429:
    /// assert_eq!(sim.rate_limited("gpt-4o-mini"), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn limit_requests(&self, model: &str, n: usize, per: Duration) {
        self.inner
            .shared
            .lock()
            .limits
            .insert(model.to_owned(), limit::RequestLimit::new(n, per));
    }

    /// As [`Simulator::limit_requests`], for all requests together, whatever model they
    /// name; a model's own limit, if any, applies as well, and the answers' headers are those
    /// of the limit with fewer requests left.
    pub fn limit_all_requests(&self, n: usize, per: Duration) {
        self.inner.shared.lock().limit_all = Some(limit::RequestLimit::new(n, per));
    }

    /// How many 429s the request limits ([`Simulator::limit_requests`],
    /// [`Simulator::limit_all_requests`]) sent to requests for `model`, since the last
    /// [`Simulator::clear`]. Scripted 429s are not counted.
    pub fn rate_limited(&self, model: &str) -> usize {
        self.inner
            .shared
            .lock()
            .rate_limited
            .get(model)
            .copied()
            .unwrap_or(0)
    }

    /// Queues replies for the Google token endpoints ([`Dialect::GoogleToken`]): the OAuth
    /// token endpoint `POST /token` and the GCE metadata server's
    /// `GET /computeMetadata/v1/instance/service-accounts/default/token` share this one queue.
    ///
    /// Replies are consumed as with [`Simulator::script`] (the last one stays); an empty
    /// `replies` removes the script. Without a script each token request gets
    /// [`Reply::google_token`]`(None, 3599)`: a fresh token `ya29.sim-<seq>` valid for 3,599 s.
    /// Script [`Reply::google_token`] for a chosen token or lifetime, [`Reply::error`] for an
    /// OAuth error (e.g. [`SimError::Auth`] → 400 `invalid_grant`), any reply with
    /// [`Reply::delay`], or [`Reply::hang`] / [`Reply::reset`]. A metadata request without
    /// `Metadata-Flavor: Google` gets a 403 and does not consume the script. Token requests
    /// are never refused by the request limits.
    pub fn script_tokens(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.shared.lock().token_script = replies.into_iter().collect();
    }

    /// The recorded requests to the token endpoints and the metadata server's token path
    /// ([`Dialect::GoogleToken`]), in arrival order: `.len()` counts token fetches, and each
    /// one's [`RecordedRequest::form`] gives `grant_type` and `assertion`.
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.inner
            .shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.dialect() == Dialect::GoogleToken)
            .cloned()
            .collect()
    }

    /// The URL of the OAuth token endpoint: `http://127.0.0.1:PORT/token` (to use in a
    /// service-account key file's `token_uri`).
    pub fn token_url(&self) -> String {
        format!("{}/token", self.base_url())
    }

    /// The metadata server's host, `127.0.0.1:PORT`, as `GCE_METADATA_HOST` names it.
    pub fn metadata_host(&self) -> String {
        self.inner.addr.to_string()
    }

    /// Forgets every script (the token script too), every request limit and every recorded
    /// request. The default reply is kept, and the next request gets `seq` 0 again.
    pub fn clear(&self) {
        {
            let mut state = self.inner.shared.lock();
            state.scripts.clear();
            state.token_script.clear();
            state.requests.clear();
            state.limits.clear();
            state.limit_all = None;
            state.rate_limited.clear();
        }
        self.inner.shared.count.send_replace(0);
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::trace!(%peer, "simulator accepted a connection");
                    connections.spawn(conn::serve(Arc::clone(&shared), stream));
                }
                Err(error) => {
                    // Typically out of file descriptors: back off briefly instead of spinning.
                    tracing::warn!(%error, "simulator accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// The model a request names: for Bedrock paths (`/model/{modelId}/{op}`) and Vertex's
/// publisher paths (`.../publishers/{publisher}/models/{model}:method`) the percent-decoded
/// path segment; otherwise the JSON body's `"model"` string, or for Gemini-style paths
/// (`.../models/{model}:method`) the `{model}` segment.
fn extract_model(path: &str, body: &serde_json::Value) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or(path);
    if let Some((model, _)) = bedrock_path(path) {
        return Some(eventstream::percent_decode(model));
    }
    let from_path = || {
        let (_, rest) = path.split_once("/models/")?;
        let (model, _method) = rest.split_once(':')?;
        if model.is_empty() || model.contains('/') {
            return None;
        }
        Some(eventstream::percent_decode(model))
    };
    if path.contains("/publishers/")
        && let Some(model) = from_path()
    {
        return Some(model);
    }
    if let Some(model) = body.get("model").and_then(|m| m.as_str()) {
        return Some(model.to_owned());
    }
    from_path()
}

/// The vendor API dialect of a request, told by its path (query string ignored).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dialect {
    /// OpenAI Chat Completions (and OpenAI-compatible vendors): any path not matched below.
    OpenAi,
    /// Anthropic Messages: a path ending in `/messages`, e.g. `/v1/messages`.
    Anthropic,
    /// Google Gemini: a path with `:generateContent` or `:streamGenerateContent` (other than
    /// Vertex's, below).
    Gemini,
    /// AWS Bedrock Converse: `POST /model/{modelId}/converse` (JSON) and
    /// `/model/{modelId}/converse-stream` (an `application/vnd.amazon.eventstream` answer).
    BedrockConverse,
    /// AWS Bedrock InvokeModel with Anthropic's Messages body: `/model/{modelId}/invoke`
    /// (Anthropic's JSON) and `/model/{modelId}/invoke-with-response-stream` (event-stream
    /// `chunk` frames carrying Anthropic's events in base64).
    BedrockInvoke,
    /// Gemini on Vertex AI: `/{v1,v1beta1}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`
    /// and `:streamGenerateContent`; Gemini's answers, Vertex's errors.
    VertexGemini,
    /// Claude on Vertex AI: `/…/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`
    /// and `:streamRawPredict`; Anthropic's answers, Vertex's errors.
    VertexAnthropic,
    /// Vertex AI's OpenAI-compatible endpoint:
    /// `/…/projects/{p}/locations/{l}/endpoints/openapi/chat/completions`; OpenAI's answers,
    /// Vertex's errors.
    VertexOpenAi,
    /// Google's OAuth token endpoint (`/token`, or a path ending in `/oauth2/token` or
    /// `/oauth2/v4/token`) and the GCE metadata server's
    /// `/computeMetadata/v1/instance/service-accounts/{account}/token`; see
    /// [`Simulator::script_tokens`].
    GoogleToken,
}

/// The Bedrock operations, by the last segment of their path.
const BEDROCK_OPS: [(&str, Dialect); 4] = [
    ("converse", Dialect::BedrockConverse),
    ("converse-stream", Dialect::BedrockConverse),
    ("invoke", Dialect::BedrockInvoke),
    ("invoke-with-response-stream", Dialect::BedrockInvoke),
];

/// For a Bedrock path `.../model/{modelId}/{op}`: the raw (still percent-encoded) model id
/// and the dialect of the operation. The id may itself hold `/` (an ARN sent unencoded).
fn bedrock_path(path: &str) -> Option<(&str, Dialect)> {
    let (_, rest) = path.split_once("/model/")?;
    let (model, op) = rest.rsplit_once('/')?;
    let dialect = BEDROCK_OPS.iter().find(|(o, _)| *o == op)?.1;
    (!model.is_empty()).then_some((model, dialect))
}

/// Whether `path` is one of Vertex's `projects/{p}/locations/{l}` paths.
fn is_vertex(path: &str) -> bool {
    path.contains("/projects/") && path.contains("/locations/")
}

impl Dialect {
    /// The dialect of a request to `path`.
    pub fn of_path(path: &str) -> Dialect {
        let path = path.split(['?', '#']).next().unwrap_or(path);
        let gemini = path.contains(":generateContent") || path.contains(":streamGenerateContent");
        if let Some((_, dialect)) = bedrock_path(path) {
            dialect
        } else if vertex::is_metadata_path(path) || vertex::is_token_path(path) {
            Dialect::GoogleToken
        } else if is_vertex(path) && gemini {
            Dialect::VertexGemini
        } else if is_vertex(path)
            && path.contains("/publishers/anthropic/models/")
            && (path.ends_with(":rawPredict") || path.ends_with(":streamRawPredict"))
        {
            Dialect::VertexAnthropic
        } else if is_vertex(path) && path.ends_with("/endpoints/openapi/chat/completions") {
            Dialect::VertexOpenAi
        } else if gemini {
            Dialect::Gemini
        } else if path.trim_end_matches('/').ends_with("/messages") {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        }
    }
}

/// The "connection closed" signal shared by every request that arrived on one connection.
#[derive(Clone)]
pub(crate) struct ClosedSignal(watch::Receiver<bool>);

impl ClosedSignal {
    pub(crate) fn new() -> (watch::Sender<bool>, ClosedSignal) {
        let (tx, rx) = watch::channel(false);
        (tx, ClosedSignal(rx))
    }

    fn is_closed(&self) -> bool {
        // A dropped sender means the connection task is gone (e.g. the simulator was dropped).
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    async fn closed(&self) {
        let mut rx = self.0.clone();
        // Err means the sender is gone, which also means the connection is gone.
        let _ = rx.wait_for(|closed| *closed).await;
    }
}

impl fmt::Debug for ClosedSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_closed() { "closed" } else { "open" })
    }
}

/// One request as the simulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// 0-based arrival index (since the last [`Simulator::clear`]); also in the
    /// response's `x-request-id: req_sim_<seq>` header.
    pub seq: usize,
    /// When the request had fully arrived (a tokio instant, so paused-time tests can use it).
    pub at: tokio::time::Instant,
    /// The request method, e.g. `POST`.
    pub method: String,
    /// The request target, including any query string.
    pub path: String,
    /// The request headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The model the request names: for Bedrock (`/model/{modelId}/converse`…) and Vertex
    /// publisher paths (`…/publishers/google/models/{model}:generateContent`…) the
    /// percent-decoded path segment (`…-v1%3A0` → `…-v1:0`, an ARN's `%2F` → `/`); otherwise
    /// the JSON body's `"model"`, or for Gemini-style paths
    /// (`/v1beta/models/{model}:generateContent`, `:streamGenerateContent`) the `{model}`
    /// segment. `None` for the token endpoints.
    pub model: Option<String>,
    /// The body parsed as JSON, or `Value::Null` if it is not JSON.
    pub body: serde_json::Value,
    /// The body as received.
    pub raw_body: Bytes,
    closed: ClosedSignal,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client asked for a streamed answer: body `"stream": true` (OpenAI,
    /// Anthropic), or a streaming path: `:streamGenerateContent` (Gemini), `:streamRawPredict`
    /// (Claude on Vertex), `/converse-stream` or `/invoke-with-response-stream` (Bedrock).
    pub fn is_stream(&self) -> bool {
        let path = self.path.split(['?', '#']).next().unwrap_or("");
        self.body.get("stream").and_then(|s| s.as_bool()) == Some(true)
            || path.contains(":streamGenerateContent")
            || path.ends_with(":streamRawPredict")
            || path.ends_with("/converse-stream")
            || path.ends_with("/invoke-with-response-stream")
    }

    /// The value of `key` in a form-encoded body (`application/x-www-form-urlencoded`, as
    /// OAuth token requests send), decoded: e.g. `form("grant_type")`, `form("assertion")`.
    /// `None` when the body has no such key.
    pub fn form(&self, key: &str) -> Option<String> {
        let body = std::str::from_utf8(&self.raw_body).ok()?;
        body.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (eventstream::form_decode(k) == key).then(|| eventstream::form_decode(v))
        })
    }

    /// The vendor dialect the request speaks, by its path ([`Dialect::of_path`]).
    pub fn dialect(&self) -> Dialect {
        Dialect::of_path(&self.path)
    }

    /// Whether the connection this request came on has ended: the client closed it (at any
    /// point: during a delay, a hang, a stream, a stall, or idling in keep-alive afterwards),
    /// or the simulator closed it (a [`Reply::close`], [`Reply::reset`], cut stream, a
    /// close-delimited body, or the simulator being dropped).
    pub fn is_closed(&self) -> bool {
        self.closed.is_closed()
    }

    /// Resolves when the connection this request came on has ended (immediately if it
    /// already has); see [`RecordedRequest::is_closed`].
    pub async fn closed(&self) {
        self.closed.closed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::extract_model;
    use serde_json::{Value, json};

    #[test]
    fn model_from_body_or_gemini_path() {
        assert_eq!(
            extract_model("/v1/chat/completions", &json!({"model": "m"})).as_deref(),
            Some("m")
        );
        assert_eq!(
            extract_model(
                "/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse",
                &Value::Null
            )
            .as_deref(),
            Some("gemini-2.0-flash")
        );
        assert_eq!(
            extract_model("/v1/models/x:generateContent", &Value::Null).as_deref(),
            Some("x")
        );
        assert_eq!(extract_model("/v1/chat/completions", &Value::Null), None);
        assert_eq!(extract_model("/v1/models/abc", &Value::Null), None);
    }

    #[test]
    fn clouds_by_path() {
        use super::Dialect::*;
        let model = |path: &str| extract_model(path, &json!({"model": "from-body"}));
        assert_eq!(
            model("/model/us.amazon.nova-micro-v1%3A0/converse-stream").as_deref(),
            Some("us.amazon.nova-micro-v1:0")
        );
        assert_eq!(
            model("/model/arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0/invoke")
                .as_deref(),
            Some("arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0")
        );
        let vertex = "/v1/projects/p/locations/global/publishers";
        assert_eq!(
            model(&format!(
                "{vertex}/anthropic/models/claude-x%4020250101:rawPredict"
            ))
            .as_deref(),
            Some("claude-x@20250101")
        );
        assert_eq!(
            model("/v1/projects/p/locations/l/endpoints/openapi/chat/completions").as_deref(),
            Some("from-body")
        );
        for (path, dialect) in [
            ("/model/m/converse", BedrockConverse),
            ("/model/m/converse-stream", BedrockConverse),
            ("/model/m/invoke", BedrockInvoke),
            ("/model/m/invoke-with-response-stream", BedrockInvoke),
            ("/model/m/count-tokens", OpenAi),
            (
                &format!("{vertex}/google/models/g:streamGenerateContent?alt=sse"),
                VertexGemini,
            ),
            (
                &format!("{vertex}/anthropic/models/c:streamRawPredict"),
                VertexAnthropic,
            ),
            (
                "/v1beta1/projects/p/locations/l/endpoints/openapi/chat/completions",
                VertexOpenAi,
            ),
            ("/v1beta/models/g:generateContent", Gemini),
            ("/token", GoogleToken),
            ("/o/oauth2/token", GoogleToken),
            (
                "/computeMetadata/v1/instance/service-accounts/default/token?scopes=x",
                GoogleToken,
            ),
            ("/v1/messages", Anthropic),
        ] {
            assert_eq!(super::Dialect::of_path(path), dialect, "{path}");
        }
    }
}
