//! Streaming through the relay. A stream *commits* to an attempt at its first content event:
//! before that the attempt engine handles every failure (HTTP error, in-stream error event,
//! malformed event, no first token within the response window) and nothing of an abandoned
//! attempt reaches the caller. After it, a stall, a cut, an error event or the stream's
//! longest duration ends the stream with a `StreamInterrupted` error, or, when the route opts
//! in, the answer is recovered (continued from a prefill, or restarted) by the same engine.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, Sleep};

use super::accounts::Accounting;
use super::chain::MidStreamRecovery;
use super::duration::saturating_add;
use super::engine::{self, Answer, AttemptCx, Mode, ReportedUsage, Won};
use super::plan::{Plan, Route};
use super::strategy::Step;
use crate::accounting::cost::attempt_cost;
use crate::accounting::{self, CallRecord};
use crate::provider::{CallContext, Provider};
use crate::spend::budget::{Charge, Spend};
use crate::telemetry;
use crate::types::{
    AttemptOutcome, ChatChunk, ChatRequest, ChatResponse, ChatStream, ChunkKind, ChunkSource,
    Message, ResponseMeta, Usage,
};
use crate::types::{Error, ErrorKind, Limit};

impl Answer for ChatResponse {
    fn status(&self) -> Option<u16> {
        self.meta.status
    }
    fn usage(&self) -> Option<Usage> {
        self.usage
    }
    fn rate_limit(&self) -> Option<crate::types::RateLimitInfo> {
        self.meta.rate_limit.as_deref().copied()
    }
}

impl Answer for Box<ChatResponse> {
    fn status(&self) -> Option<u16> {
        (**self).status()
    }
    fn usage(&self) -> Option<Usage> {
        (**self).usage()
    }
    fn rate_limit(&self) -> Option<crate::types::RateLimitInfo> {
        (**self).rate_limit()
    }
}

/// A stream that reached its commit point: the chunks read so far, and the rest.
pub(crate) struct Opened {
    stream: ChatStream,
    head: VecDeque<ChatChunk>,
}

impl Answer for Opened {
    fn status(&self) -> Option<u16> {
        self.stream.meta().status
    }
    fn usage(&self) -> Option<Usage> {
        // A stream reports its usage at its end; the driver records it then.
        None
    }
    fn rate_limit(&self) -> Option<crate::types::RateLimitInfo> {
        self.stream.meta().rate_limit.as_deref().copied()
    }
}

/// What a stream needs to account for its call when it ends.
pub(crate) struct Finish {
    pub acct: Arc<Accounting>,
    pub intent: Option<Arc<str>>,
    pub start: Instant,
    pub span: tracing::Span,
    /// The call's budget reservation: raised as usage arrives, settled at the end.
    pub charge: Option<Charge>,
    /// The request's token estimate, which its targets' rate limits admitted it with.
    pub estimated_tokens: u32,
}

impl Drop for Finish {
    /// A call dropped before its stream opened (or a stream dropped before it could account)
    /// keeps its charge: it may have been billed.
    fn drop(&mut self) {
        self.acct.keep(self.charge.take());
    }
}

/// Most chunks a stream may send before its first content event (role-only chunks, usage,
/// signatures…): real streams send a handful. Past it the attempt fails with a `Decode`
/// error and the call fails over.
pub(crate) const MAX_HEAD_CHUNKS: usize = 256;

/// Most bytes (as [`ChatChunk::approx_bytes`] counts them) the chunks before the first
/// content event may hold: 8 MiB. Past it the attempt fails with a `Decode` error.
pub(crate) const MAX_HEAD_BYTES: usize = 8 << 20;

/// Opens a stream on one target and reads until its first content event (or finish reason).
/// Usage seen on the way goes to `reported`, so that an attempt abandoned before its commit
/// point still counts what its vendor billed.
///
/// A stream that ends before its commit point delivered nothing: a `StreamInterrupted`
/// failure of the attempt, never an empty answer. The chunks kept before the commit point are
/// bounded ([`MAX_HEAD_CHUNKS`], [`MAX_HEAD_BYTES`]): a vendor that sends endless non-content
/// events fails with a `Decode` error rather than growing the head without bound.
async fn open(
    provider: &dyn Provider,
    req: &ChatRequest,
    model: &str,
    cx: &CallContext,
    reported: Option<Arc<ReportedUsage>>,
) -> Result<Opened, Error> {
    let mut stream = provider.chat_stream(req, model, cx).await?;
    // The attempt's failure keeps the HTTP status its (2xx) answer came with.
    let status = stream.meta().status;
    let failed = |e: Error| match status {
        Some(s) => e.with_status(s),
        None => e,
    };
    let mut head = VecDeque::new();
    let mut head_bytes = 0usize;
    loop {
        let Some(item) = stream.next().await else {
            let err = Error::new(
                ErrorKind::StreamInterrupted,
                format!(
                    "the stream ended before any content or finish reason ({} chunks without \
                     content)",
                    head.len()
                ),
            );
            return Err(failed(err));
        };
        let chunk = item?;
        if let (Some(u), Some(r)) = (chunk.usage, &reported) {
            r.set(u);
        }
        let commit = chunk.has_content() || chunk.choices.iter().any(|c| c.finish_reason.is_some());
        head_bytes = head_bytes.saturating_add(chunk.approx_bytes());
        head.push_back(chunk);
        if commit {
            break;
        }
        if head.len() >= MAX_HEAD_CHUNKS || head_bytes > MAX_HEAD_BYTES {
            let err = Error::new(
                ErrorKind::Decode,
                format!(
                    "the stream sent {} chunks ({head_bytes} bytes) without content; at most \
                     {MAX_HEAD_CHUNKS} chunks and {MAX_HEAD_BYTES} bytes may come before the \
                     first content",
                    head.len()
                ),
            );
            return Err(failed(err));
        }
    }
    Ok(Opened { stream, head })
}

/// Runs `plan` until a stream commits, then returns the caller's stream, which takes
/// `finish` along; when no stream opens, `finish` stays with the caller (its budget charge
/// is then settled with the failed attempts). `keep` is the request, owned, when the route
/// recovers interrupted streams (recovery re-sends it).
pub(crate) async fn relay_stream(
    plan: Plan,
    req: &ChatRequest,
    keep: Option<Arc<ChatRequest>>,
    cx: &CallContext,
    start: Instant,
    finish: &mut Option<Finish>,
) -> Result<ChatStream, Error> {
    let route = plan.route.clone();
    let stream_deadline = saturating_add(start, route.stream.max_duration);
    let total = req.relay.timeout.unwrap_or(route.total_timeout);
    let deadline = saturating_add(start, total).min(stream_deadline);
    let won = engine::run(
        &plan,
        start,
        deadline,
        Mode::Stream,
        |_step: Step, t, a: AttemptCx<'_>| open(a.provider, req, &t.id.model, cx, a.reported),
    )
    .await?;
    let rest = plan
        .steps
        .iter()
        .position(|s| *s == won.step)
        .map(|p| plan.steps[p + 1..].to_vec())
        .unwrap_or_default();
    let recovery = match (route.stream.recovery, keep) {
        (MidStreamRecovery::Off, _) | (_, None) => None,
        (mode, Some(req)) => Some(Box::new(Recovery {
            mode,
            route: route.clone(),
            req,
            cx: cx.clone(),
            served: won.step,
            served_tries: won.meta.served_attempt().map_or(1, |a| a.try_number),
            rest,
            partial_text: String::new(),
            estimated_tokens: plan.estimated_tokens,
            saw_tool_calls: false,
            started: start,
            stream_deadline,
            pending: None,
            usage: PartsUsage::default(),
        })),
    };
    Ok(ChatStream::from_source(Driver::new(
        won,
        route,
        recovery,
        stream_deadline,
        finish.take(),
    )))
}

/// What a recovery needs: the route, the request, which step serves and which are left.
struct Recovery {
    mode: MidStreamRecovery,
    route: Arc<Route>,
    req: Arc<ChatRequest>,
    cx: CallContext,
    /// The step serving now, and the tries its target has had in this call.
    served: Step,
    served_tries: u32,
    /// Steps after the serving one, in plan order.
    rest: Vec<Step>,
    /// The answer's text so far, for a continuation.
    partial_text: String,
    /// The request's token estimate, for the rate limits of recovery attempts.
    estimated_tokens: u32,
    /// Tool-call fragments were delivered: a prefill cannot continue those.
    saw_tool_calls: bool,
    /// When the call started (attempt offsets are from here).
    started: Instant,
    stream_deadline: Instant,
    /// A recovery in flight, and the interruption it answers (reported if it fails). Here
    /// rather than in the driver, so a stream whose route does not recover holds no room
    /// for it.
    pending: Option<(RecoveryFuture, Error)>,
    /// The usage of the answer's parts before a continuation.
    usage: PartsUsage,
}

/// What the parts of a continued answer reported, so the usage handed out after a
/// continuation covers the whole answer: the continuing vendor reports only its own part
/// (its input includes the prefill), so the earlier parts' reports are added to it, and the
/// answer is flagged partial ([`ResponseMeta::usage_partial`]) when an earlier part
/// delivered text its vendor's last report did not cover (it reported none, as OpenAI's
/// wire before the end, or reported before that text, as Anthropic's `message_start`).
#[derive(Default)]
struct PartsUsage {
    /// The serving part delivered content after its last usage report (or had none).
    uncovered: bool,
    /// The interrupted part, until the recovery resumes: its usage, and whether that covers
    /// what it delivered.
    cut: Option<(Option<Usage>, bool)>,
    /// The earlier parts' usage summed (`None` when none reported any).
    carried: Option<Usage>,
    /// An earlier part's usage leaves some of its text out.
    uncounted: bool,
}

/// `a + b`, field by field, saturating (vendors' counts are not trusted to be small).
fn sum_usage(a: &Usage, b: &Usage) -> Usage {
    Usage {
        input_tokens: a.input_tokens.saturating_add(b.input_tokens),
        output_tokens: a.output_tokens.saturating_add(b.output_tokens),
        cache_read_tokens: a.cache_read_tokens.saturating_add(b.cache_read_tokens),
        cache_write_tokens: a.cache_write_tokens.saturating_add(b.cache_write_tokens),
        reasoning_tokens: a.reasoning_tokens.saturating_add(b.reasoning_tokens),
    }
}

/// A recovery in flight: the reopened stream (or why it failed) and its start offset in the call.
type RecoveryFuture = Pin<Box<dyn Future<Output = (Result<Won<Opened>, Error>, Duration)> + Send>>;

/// Feeds the caller after the commit point.
struct Driver {
    inner: ChatStream,
    /// Chunks to hand out before reading on (the committed head, a restart signal).
    queue: VecDeque<ChatChunk>,
    meta: ResponseMeta,
    /// One timer for both limits: armed for the earlier of the idle limit and the stream's
    /// deadline, and re-armed lazily when it fires early (no reset per chunk).
    timer: Pin<Box<Sleep>>,
    /// The waker the timer was last registered with (`None` until it is, or when a poll may
    /// not have registered it): while the timer has not fired and the stream is polled
    /// with this waker, waiting for the vendor needs no poll of the timer.
    timer_waker: Option<Waker>,
    last_event: Instant,
    stream_deadline: Instant,
    /// What the serving attempt delivered.
    content_chunks: usize,
    chars: usize,
    done: bool,
    /// Whether the answer finished (a finish reason was handed out): a stream dropped after
    /// it was read to its end, not cancelled.
    answered: bool,
    recovery: Option<Box<Recovery>>,
    /// The route: its stream settings (idle limit, longest duration, leniency) and the
    /// prices of the attempts' targets.
    route: Arc<Route>,
    /// Accounting still to do when the stream ends (`None` once done, or for a nested call).
    finish: Option<Finish>,
    /// The id, `created` and model every chunk carries.
    identity: StreamIdentity,
}

impl Driver {
    fn new(
        mut won: Won<Opened>,
        route: Arc<Route>,
        recovery: Option<Box<Recovery>>,
        stream_deadline: Instant,
        finish: Option<Finish>,
    ) -> Self {
        let mut meta = won.meta;
        meta.time_to_first_chunk = Some(meta.latency);
        // One metadata a stream: the provider's goes into the driver's.
        let opened = won.value.stream.take_meta();
        meta.request_id = opened.request_id;
        meta.status = opened.status;
        meta.rate_limit = opened.rate_limit;
        let served_model = meta.served_by.as_ref().map_or("", |t| &*t.model);
        let identity = StreamIdentity::of(&won.value.head, served_model);
        let now = Instant::now();
        let idle = route.stream.idle_timeout;
        let first_due = idle.map_or(stream_deadline, |d| {
            saturating_add(now, d).min(stream_deadline)
        });
        Driver {
            inner: won.value.stream,
            queue: won.value.head,
            meta,
            timer: Box::pin(tokio::time::sleep_until(first_due)),
            timer_waker: None,
            last_event: now,
            stream_deadline,
            content_chunks: 0,
            chars: 0,
            done: false,
            answered: false,
            recovery,
            route,
            finish,
            identity,
        }
    }

    /// Accounts for the call: the attempts' costs from the usage their streams reported,
    /// the call's cost, then the stats and observers. Runs once, when the stream ends, fails
    /// or is dropped.
    fn finish(&mut self, error: Option<&Error>) {
        let Some(mut f) = self.finish.take() else {
            return;
        };
        let now = Instant::now();
        for a in &mut self.meta.attempts {
            let Some(usage) = a.usage else { continue };
            let target = self.route.targets.iter().find(|t| t.id == a.target);
            if a.cost.is_none() {
                a.cost = attempt_cost(target.and_then(|t| t.price.as_ref()), Some(&usage));
            }
            // Tokens per minute, on the target's limit and its pool key's.
            if let Some(t) = target {
                let key = a.key.as_ref().map(|k| k.index);
                engine::reconcile(t, key, f.estimated_tokens, usage.total_tokens(), now);
            }
        }
        let mut usage = self
            .meta
            .served_attempt()
            .or_else(|| self.meta.attempts.iter().rev().find(|a| a.usage.is_some()))
            .and_then(|a| a.usage);
        // A continued answer's usage is its parts' (what the caller was handed).
        if let (Some(u), Some(r)) = (&mut usage, &self.recovery)
            && let Some(c) = &r.usage.carried
            && self.meta.served.is_some()
        {
            *u = sum_usage(c, u);
        }
        f.acct.price_call(&mut self.meta, usage.as_ref());
        f.acct.settle(f.charge.take(), &self.meta, now);
        let model = self.meta.served_by.as_ref().map_or("", |t| &*t.model);
        telemetry::record_answer(&f.span, &self.meta, usage.as_ref(), model);
        f.acct.finish(&CallRecord {
            route: &self.route.name,
            query_type: accounting::query_type(f.intent.as_deref(), &self.meta),
            streamed: true,
            meta: &self.meta,
            usage: usage.as_ref(),
            error,
            duration: now.saturating_duration_since(f.start),
        });
    }

    fn tag(&mut self, chunk: &mut ChatChunk) {
        self.answered |= chunk.choices.iter().any(|c| c.finish_reason.is_some());
        if chunk.usage.is_some()
            && let Some(a) = self.meta.served.and_then(|i| self.meta.attempts.get_mut(i))
        {
            // Vendors that repeat usage send it cumulative: the last one is the total.
            a.usage = chunk.usage;
            if let Some(f) = &self.finish
                && let Some(charge) = &f.charge
            {
                // Budgets count a stream's usage as it arrives.
                let price = self
                    .route
                    .targets
                    .iter()
                    .find(|t| t.id == a.target)
                    .and_then(|t| t.price.as_ref());
                if let Some(u) = &a.usage {
                    let so_far = Spend {
                        usd: attempt_cost(price, Some(u)),
                        tokens: u.total_tokens(),
                    };
                    f.acct.update(charge, so_far);
                }
            }
        }
        if chunk.kind == ChunkKind::Content && chunk.has_content() {
            self.content_chunks += 1;
            for c in &chunk.choices {
                let d = &c.delta;
                self.chars += d.content.as_deref().map_or(0, |s| s.chars().count())
                    + d.reasoning.as_deref().map_or(0, |s| s.chars().count());
            }
            if let Some(r) = &mut self.recovery {
                if let Some(t) = chunk.text() {
                    r.partial_text.push_str(t);
                }
                r.saw_tool_calls |= chunk.choices.iter().any(|c| !c.delta.tool_calls.is_empty());
            }
        }
        if let Some(r) = &mut self.recovery {
            let parts = &mut r.usage;
            if chunk.usage.is_some() {
                // Vendors that report as they go report cumulative counts: this one covers
                // the text so far, this chunk's included.
                parts.uncovered = false;
            } else if chunk.kind == ChunkKind::Content && chunk.has_content() {
                parts.uncovered = true;
            }
            // After a continuation, the caller gets the whole answer's usage: the earlier
            // parts' and this part's (the attempt keeps its own, for its cost).
            if let (Some(c), Some(u)) = (&parts.carried, &mut chunk.usage) {
                *u = sum_usage(c, u);
            }
        }
        chunk.target.clone_from(&self.meta.served_by);
        self.identity.stamp(chunk);
    }

    /// The error that ends a stream at its longest duration.
    fn duration_error(&self) -> Error {
        Error::new(
            ErrorKind::StreamInterrupted,
            format!(
                "the stream ran past its longest duration of {} ms",
                self.route.stream.max_duration.as_millis()
            ),
        )
        .with_limit(Limit::StreamDuration)
    }

    /// The stream's time limits, checked when the timer fires. Cheap while it has not: the
    /// timer registered with this task's waker needs no poll until it fires.
    fn poll_limits(&mut self, cx: &mut Context<'_>) -> Option<Error> {
        if !self.timer.is_elapsed()
            && self
                .timer_waker
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return None;
        }
        loop {
            // A poll refused for the task's budget registers no waker (the runtime wakes the
            // task instead): the next wait polls the timer again.
            let registers = tokio::task::coop::has_budget_remaining();
            if self.timer.as_mut().poll(cx).is_pending() {
                self.timer_waker = registers.then(|| cx.waker().clone());
                return None;
            }
            self.timer_waker = None;
            let now = Instant::now();
            if now >= self.stream_deadline {
                return Some(self.duration_error());
            }
            let idle = self.route.stream.idle_timeout;
            let idle_due = idle.map(|d| saturating_add(self.last_event, d));
            if let (Some(due), Some(idle)) = (idle_due, idle)
                && now >= due
            {
                return Some(
                    Error::new(
                        ErrorKind::StreamInterrupted,
                        format!("stream stalled: no event for {} ms", idle.as_millis()),
                    )
                    .with_limit(Limit::StreamIdle),
                );
            }
            // Fired early (events came since it was armed): re-arm for the next due time.
            let next = idle_due.map_or(self.stream_deadline, |d| d.min(self.stream_deadline));
            self.timer.as_mut().reset(next);
        }
    }

    /// A failure after the commit point, as the caller sees it: a `StreamInterrupted`
    /// error that keeps the original's facts and says how much was delivered. The serving
    /// attempt is marked interrupted.
    fn interrupted(&mut self, e: Error) -> Error {
        let what = if e.kind() == ErrorKind::StreamInterrupted {
            e.message().to_owned()
        } else {
            format!("{}: {}", e.kind(), e.message())
        };
        let msg = format!(
            "{what}; {} content chunks ({} characters) were delivered",
            self.content_chunks, self.chars
        );
        // Said once, with where and why: the recovery that may follow logs only that it runs.
        tracing::warn!(
            relay.route = %self.route.name,
            relay.target = %self.meta.served_by.as_ref().map(ToString::to_string).unwrap_or_default(),
            error.type = e.kind().as_str(),
            content_chunks = self.content_chunks,
            chars = self.chars,
            "stream interrupted mid-answer: {what}"
        );
        let mut err = e.with_kind(ErrorKind::StreamInterrupted).with_message(msg);
        if let Some(t) = self.meta.served_by.clone() {
            err = err.with_target(t);
        }
        if let Some(a) = self.meta.served.and_then(|i| self.meta.attempts.get_mut(i)) {
            a.outcome = AttemptOutcome::Interrupted {
                content_chunks: self.content_chunks,
                chars: self.chars,
            };
            a.error = Some(err.clone());
            if let Some(r) = &mut self.recovery {
                let covered = a.usage.is_some() && !r.usage.uncovered;
                r.usage.cut = Some((a.usage, covered));
            }
        }
        self.meta.served = None;
        err
    }

    /// Starts reopening the answer, if the route recovers streams and a step is left.
    fn start_recovery(&mut self) -> Option<RecoveryFuture> {
        let r = self.recovery.as_mut()?;
        let route = &r.route;
        let continuable = matches!(
            r.mode,
            MidStreamRecovery::Continue | MidStreamRecovery::ContinueOnly
        ) && !r.partial_text.is_empty()
            && !r.saw_tool_calls;
        let mut steps = Vec::new();
        if continuable {
            let served = &route.targets[r.served.target];
            if served.prefill && r.served_tries < served.retry.max_attempts {
                steps.push(Step {
                    target: r.served.target,
                    continuation: true,
                    prior_tries: r.served_tries,
                    last_resort: false,
                });
            }
            steps.extend(
                r.rest
                    .iter()
                    .filter(|s| route.targets[s.target].prefill)
                    .map(|s| Step {
                        continuation: true,
                        ..*s
                    }),
            );
        }
        if r.mode != MidStreamRecovery::ContinueOnly {
            steps.extend(
                r.rest
                    .iter()
                    .filter(|s| !(continuable && route.targets[s.target].prefill))
                    .copied(),
            );
        }
        if steps.is_empty() {
            return None;
        }
        tracing::info!(
            continuation = continuable,
            "recovering an interrupted stream"
        );
        let plan = Plan {
            route: route.clone(),
            steps,
            estimated_tokens: r.estimated_tokens,
        };
        let req = r.req.clone();
        let cont_req = continuable.then(|| {
            let mut c = (*r.req).clone();
            c.messages.push(Message::assistant(r.partial_text.clone()));
            c
        });
        let cx = r.cx.clone();
        let now = Instant::now();
        let offset = now.saturating_duration_since(r.started);
        // A fresh window to reach the next first token (the request's own deadline if it set
        // one, else the route's), within the stream's longest duration.
        let window = r.req.relay.timeout.unwrap_or(route.total_timeout);
        let deadline = saturating_add(now, window).min(r.stream_deadline);
        Some(Box::pin(async move {
            let won = engine::run(&plan, now, deadline, Mode::Stream, |step: Step, t, a| {
                let r = match (&cont_req, step.continuation) {
                    (Some(c), true) => c,
                    _ => &*req,
                };
                open(a.provider, r, &t.id.model, &cx, a.reported)
            })
            .await;
            (won, offset)
        }))
    }

    /// Carries on with a reopened stream: a continuation goes on seamlessly, a restart first
    /// tells the caller to discard what it had.
    fn resume(&mut self, mut won: Won<Opened>, offset: Duration) {
        let continued = won.step.continuation;
        let base = self.meta.attempts.len();
        let served = won.meta.served.map(|i| base + i);
        let served_tries = won.meta.served_attempt().map_or(1, |a| a.try_number);
        self.meta
            .attempts
            .extend(won.meta.attempts.into_iter().map(|mut a| {
                a.started += offset;
                a
            }));
        self.meta.served = served;
        self.meta.served_by = won.meta.served_by;
        let opened = won.value.stream.take_meta();
        self.meta.request_id = opened.request_id;
        self.meta.rate_limit = opened.rate_limit;
        self.meta.status = opened.status;
        if let Some(r) = &mut self.recovery {
            let parts = &mut r.usage;
            let cut = parts.cut.take();
            if continued {
                let (usage, covered) = cut.unwrap_or((None, false));
                if let Some(u) = usage {
                    parts.carried = Some(match &parts.carried {
                        Some(c) => sum_usage(c, &u),
                        None => u,
                    });
                }
                parts.uncounted |= !covered;
            } else {
                // A restart is a whole answer of its own.
                parts.carried = None;
                parts.uncounted = false;
            }
            parts.uncovered = false;
            self.meta.usage_partial = parts.uncounted;
            if won.step.target != r.served.target
                && let Some(p) = r.rest.iter().position(|s| s.target == won.step.target)
            {
                r.rest.drain(..=p);
            }
            r.served = won.step;
            r.served_tries = served_tries;
            if !continued {
                r.partial_text.clear();
                r.saw_tool_calls = false;
            }
        }
        if !continued {
            self.queue.push_back(ChatChunk {
                kind: ChunkKind::Restart,
                ..ChatChunk::default()
            });
        }
        let served_model = self.meta.served_by.as_ref().map_or("", |t| &*t.model);
        self.identity.take_over(&won.value.head, served_model);
        self.queue.extend(won.value.head);
        self.inner = won.value.stream;
        self.content_chunks = 0;
        self.chars = 0;
        self.last_event = Instant::now();
    }
}

/// What every chunk of one stream carries alike, as OpenAI sends it: one non-empty `id`, one
/// `created` and a non-empty `model`. Built once a stream (from what its vendor sent before
/// the commit point, the rest made up) and stamped on each chunk: a chunk whose values are
/// already these costs a comparison, not an allocation.
#[derive(Debug, Default)]
pub(crate) struct StreamIdentity {
    id: String,
    created: u64,
    model: String,
}

impl StreamIdentity {
    /// The identity of a stream whose first chunks are `head`: the first non-empty id, the
    /// first non-zero `created` and the first non-empty model among them, else a new id
    /// ([`ChatResponse::new_id`]), the time now and `model` (the serving target's).
    pub(crate) fn of<'a>(head: impl IntoIterator<Item = &'a ChatChunk>, model: &str) -> Self {
        let mut me = StreamIdentity::default();
        for c in head {
            if me.id.is_empty() && !c.id.is_empty() {
                me.id.clone_from(&c.id);
            }
            if me.created == 0 {
                me.created = c.created;
            }
            if me.model.is_empty() && !c.model.is_empty() {
                me.model.clone_from(&c.model);
            }
        }
        ChatResponse::complete_fields(&mut me.id, &mut me.created, &mut me.model, model);
        me
    }

    /// Another serving stream takes over (a recovery): the id and `created` stay, the model
    /// becomes the new head's (else `model`).
    pub(crate) fn take_over<'a>(
        &mut self,
        head: impl IntoIterator<Item = &'a ChatChunk>,
        model: &str,
    ) {
        match head.into_iter().find(|c| !c.model.is_empty()) {
            Some(c) => self.model.clone_from(&c.model),
            None => model.clone_into(&mut self.model),
        }
    }

    /// Gives `chunk` the stream's id and `created`, and its model when it has none.
    #[inline]
    pub(crate) fn stamp(&self, chunk: &mut ChatChunk) {
        if chunk.id != self.id {
            chunk.id.clone_from(&self.id);
        }
        chunk.created = self.created;
        if chunk.model.is_empty() {
            chunk.model.clone_from(&self.model);
        }
    }
}

impl ChunkSource for Driver {
    fn meta(&self) -> &ResponseMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ResponseMeta {
        &mut self.meta
    }
}

/// Written as a plain `poll_next` (not an `unfold`) so the driver's state stays in place
/// rather than being moved in and out for every chunk.
impl futures::Stream for Driver {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let d = self.get_mut();
        let polled = d.poll_chunk(cx);
        if d.finish.is_some() {
            match &polled {
                Poll::Ready(None) => d.finish(None),
                Poll::Ready(Some(Err(e))) if d.done => d.finish(Some(e)),
                _ => {}
            }
        }
        polled
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Dropped before its end: what was reported so far still counts, and a caller that
        // went away before the answer finished cancelled the call (neither a success nor a
        // failure in the stats).
        if self.finish.is_some() && !self.answered {
            let cancelled = Error::new(
                ErrorKind::Cancelled,
                "the caller dropped the stream before the answer finished",
            );
            self.finish(Some(&cancelled));
        } else {
            self.finish(None);
        }
    }
}

impl Driver {
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<ChatChunk, Error>>> {
        let d = self;
        loop {
            if let Some((fut, _)) = d.recovery.as_mut().and_then(|r| r.pending.as_mut()) {
                let Poll::Ready((outcome, offset)) = fut.as_mut().poll(cx) else {
                    return Poll::Pending;
                };
                let Some((_, original)) = d.recovery.as_mut().and_then(|r| r.pending.take()) else {
                    continue;
                };
                match outcome {
                    Ok(won) => d.resume(won, offset),
                    Err(recovery_err) => {
                        // Never hide the original interruption behind the fallback's error.
                        d.meta
                            .attempts
                            .extend(recovery_err.attempts().iter().cloned().map(|mut a| {
                                a.started += offset;
                                a
                            }));
                        d.done = true;
                        return Poll::Ready(Some(Err(
                            original.with_attempts(d.meta.attempts.clone())
                        )));
                    }
                }
                continue;
            }
            if let Some(mut chunk) = d.queue.pop_front() {
                if d.queue.is_empty() {
                    // The head is handed out: give its memory back for the stream's long life.
                    d.queue = VecDeque::new();
                }
                d.tag(&mut chunk);
                return Poll::Ready(Some(Ok(chunk)));
            }
            if d.done {
                return Poll::Ready(None);
            }
            let mut polled = d.inner.poll_next_unpin(cx);
            let item = match &mut polled {
                Poll::Ready(item) => {
                    // The longest duration is checked on every event, not only when the
                    // vendor makes us wait: chunks that are always ready (a reader slower
                    // than the vendor) must not outlive it. One clock read serves both limits.
                    let now = Instant::now();
                    d.last_event = now;
                    if now >= d.stream_deadline && item.is_some() {
                        Some(Err(d.duration_error()))
                    } else if let Some(Ok(chunk)) = item {
                        // Tagged in place, and handed out as polled: the chunk is not moved
                        // in and out.
                        d.tag(chunk);
                        return polled;
                    } else {
                        std::mem::take(item)
                    }
                }
                Poll::Pending => match d.poll_limits(cx) {
                    Some(e) => Some(Err(e)),
                    None => return Poll::Pending,
                },
            };
            match item {
                Some(Ok(_)) => {}
                Some(Err(e)) if e.kind() == ErrorKind::Decode && d.route.stream.lenient => {
                    tracing::warn!(error = %e, "skipped a malformed stream event");
                }
                Some(Err(e)) => {
                    // Close the failed attempt's connection now, whatever happens next.
                    d.inner = ChatStream::from_unpin(futures::stream::empty());
                    let limit = e.limit();
                    let err = d.interrupted(e);
                    // A time limit of the whole stream is final: no recovery runs past it.
                    let recovery = match limit {
                        Some(Limit::StreamDuration) => None,
                        _ => d.start_recovery(),
                    };
                    match (recovery, d.recovery.as_mut()) {
                        (Some(fut), Some(r)) => r.pending = Some((fut, err)),
                        _ => {
                            d.done = true;
                            return Poll::Ready(Some(Err(
                                err.with_attempts(d.meta.attempts.clone())
                            )));
                        }
                    }
                }
                None => {
                    d.done = true;
                    return Poll::Ready(None);
                }
            }
        }
    }
}
