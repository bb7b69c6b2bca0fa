//! The attempt engine: one loop runs plain, hedged and streamed calls. It walks a [`Plan`]
//! with up to `1 + max_extra` attempts in flight (one without hedging), retries or fails
//! over by [`next_move`], and keeps every attempt, by index, in the order it started. No task is
//! spawned: the attempts are polled in place, so dropping the future drops them all, which
//! closes their connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use super::accounts::Accounting;
pub(crate) use super::admission::reconcile;
use super::admission::{
    NEVER, Permits, admit, next_probe_in, note_answer, note_failure, note_skip, spent_for,
    target_policy,
};
use super::duration::saturating_add;
use super::health::{Health, Outcome, Permit};
use super::plan::Plan;
use super::policy::{Backoff, ContextOverflow};
use super::registry::ResolvedTarget;
use super::retry::{Failure, Move, Rules, next_move};
use super::strategy::Step;
use crate::accounting::cost::attempt_cost;
use crate::accounting::{
    AttemptEnded, AttemptStarted, BreakerEvent, FailoverEvent, LimitAction, LimitEvent, RetryEvent,
};
use crate::spend::limiter::WhenLimited;
use crate::telemetry::*;
use crate::types::BreakerState;
use crate::types::RateLimitInfo;
use crate::types::Usage;
use crate::types::{Attempt, AttemptOutcome, ResponseMeta, TargetId};
use crate::types::{Error, ErrorKind, Fault, Limit, LimitedBy, Skip, SkipReason};

/// What an attempt must achieve within its time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole response, within the response window (`first_token_timeout`, else
    /// `attempt_timeout`).
    Chat,
    /// The first content event of a stream, within the same window.
    Stream,
}

/// What an attempt produces, as far as the engine needs to know.
pub(crate) trait Answer: Send {
    /// The HTTP status of the answer, for providers that speak HTTP.
    fn status(&self) -> Option<u16>;
    /// The usage the answer reports, when known at this point (a stream's comes at its end).
    fn usage(&self) -> Option<Usage>;
    /// What the vendor's rate-limit headers said with the answer.
    fn rate_limit(&self) -> Option<RateLimitInfo>;
}

/// Usage an attempt's vendor reported before its answer was complete (Anthropic's stream
/// start carries the input tokens): read when the attempt fails or is cancelled, since the
/// vendor bills it anyway.
#[derive(Debug, Default)]
pub(crate) struct ReportedUsage(std::sync::Mutex<Option<Usage>>);

impl ReportedUsage {
    pub fn set(&self, usage: Usage) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
    }

    fn get(&self) -> Option<Usage> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What one attempt is sent with.
pub(crate) struct AttemptCx<'a> {
    /// The provider to send through.
    pub provider: &'a dyn crate::provider::Provider,
    /// Where a stream's opening reports usage seen before its first content (`None` for
    /// plain calls, whose usage comes with the answer).
    pub reported: Option<Arc<ReportedUsage>>,
}

/// The winning attempt's value, the plan step it ran, and the call's metadata.
pub(crate) struct Won<T> {
    pub value: T,
    pub step: Step,
    pub meta: ResponseMeta,
}

type AttemptFuture<'a, T> = Pin<
    Box<dyn Future<Output = Result<Result<T, Error>, tokio::time::error::Elapsed>> + Send + 'a>,
>;

/// An attempt's hold on its target's health: counted in flight while it lives, its outcome
/// recorded once. Dropped without an outcome (the caller dropped the call), it frees a
/// half-open probe, so the breaker does not wait forever for a probe nobody will finish.
struct InFlight<'a> {
    health: &'a Health,
    permit: Permit,
    /// The request's first attempt on this target (it adds to the retry budget).
    first: bool,
    recorded: bool,
}

impl<'a> InFlight<'a> {
    fn new(health: &'a Health, permit: Permit, first: bool) -> Self {
        health
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlight {
            health,
            permit,
            first,
            recorded: false,
        }
    }

    /// Records the attempt's outcome at `now` (its end).
    fn record(&mut self, outcome: Outcome, now: Instant) -> Option<BreakerState> {
        self.recorded = true;
        self.health.record(now, self.permit, outcome, self.first)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.health
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if !self.recorded && self.permit == Permit::Probe {
            self.record(Outcome::Neutral, Instant::now());
        }
    }
}

/// What `launch!` did.
#[derive(PartialEq, Eq)]
enum Launch {
    Started,
    /// The call's deadline has passed.
    Deadline,
    /// The target's breaker is open (or its probe taken), or a client-side limit is reached
    /// and the target fails over: skipped.
    Denied,
    /// A client-side limit is reached and the target waits: ask again at this instant.
    Wait(Instant),
}

/// An attempt in flight.
struct Flight<'a, T> {
    attempt: usize,
    health: InFlight<'a>,
    step: Step,
    try_no: u32,
    started: Instant,
    limit: Duration,
    limit_kind: Limit,
    backoff: Option<Backoff>,
    fut: AttemptFuture<'a, T>,
    /// The attempt's span, to record its outcome on.
    span: tracing::Span,
    /// Usage its vendor reported before the answer (streams only).
    reported: Option<Arc<ReportedUsage>>,
    /// The pool key it was sent with.
    key: Option<usize>,
    _permits: Permits<'a>,
}

/// A retry waiting for its backoff or `Retry-After`.
struct Waiting {
    step: Step,
    try_no: u32,
    due: Instant,
    backoff: Option<Backoff>,
    /// What the try before ended with (a failover from here reports it).
    error: ErrorKind,
    /// Since when a client-side limit has held this step back (its wait is bounded).
    limited_since: Option<Instant>,
}

/// After a context-length error: which targets may still take the request.
#[derive(Default)]
struct Overflow {
    failed: Vec<TargetId>,
    largest_known: Option<u32>,
}

impl Overflow {
    fn record(&mut self, t: &ResolvedTarget) {
        self.failed.push(t.id.clone());
        if let Some(w) = t.context_window {
            self.largest_known = Some(self.largest_known.map_or(w, |l| l.max(w)));
        }
    }

    fn eligible(&self, t: &ResolvedTarget, policy: ContextOverflow) -> bool {
        if self.failed.is_empty() {
            return true;
        }
        if self.failed.contains(&t.id) {
            return false;
        }
        match policy {
            ContextOverflow::LargerWindow => match (t.context_window, self.largest_known) {
                (Some(w), Some(l)) => w > l,
                // Unknown on either side: not known to be too small, so worth a try.
                _ => true,
            },
            ContextOverflow::NextTarget => true,
            ContextOverflow::Stop => false,
        }
    }
}

enum Event<T> {
    Done(usize, Result<Result<T, Error>, tokio::time::error::Elapsed>),
    RetryDue,
    Hedge,
}

/// Runs `plan` until an attempt succeeds, the policy says stop, or nothing is left.
/// `call` starts one attempt of a step on its target.
pub(crate) async fn run<'a, T, F, Fut>(
    plan: &'a Plan,
    start: Instant,
    deadline: Instant,
    mode: Mode,
    mut call: F,
) -> Result<Won<T>, Error>
where
    F: FnMut(Step, &'a ResolvedTarget, AttemptCx<'a>) -> Fut,
    Fut: Future<Output = Result<T, Error>> + Send + 'a,
    T: Answer + 'a,
{
    let route = &*plan.route;
    let acct = &*route.acct;
    let capacity = route.hedge.map_or(1, |h| 1 + h.max_extra);
    let mut attempts: Vec<Attempt> = Vec::with_capacity(plan.steps.len().min(4));
    let mut flights: Vec<Flight<'a, T>> = Vec::with_capacity(capacity);
    let mut waiting: Vec<Waiting> = Vec::new();
    let mut retry_timer: Option<Pin<Box<Sleep>>> = None;
    let mut hedge_timer: Option<Pin<Box<Sleep>>> = None;
    let mut cursor = 0usize;
    let mut overflow = Overflow::default();
    let mut deadline_hit = false;
    // The call made its most attempts (`MAX_ATTEMPTS_PER_CALL`).
    let mut ceiling_hit = false;
    // Targets passed over because their breaker was open or a limit was reached, and why
    // (no allocation unless one was).
    let mut skipped: Vec<Skip> = Vec::new();
    // Pool keys that failed for the key's sake in this call, by target index.
    let mut spent_keys: Vec<(usize, usize)> = Vec::new();

    // The next step to start fresh, skipping targets a context overflow rules out.
    let next_fresh = |cursor: &mut usize, overflow: &Overflow, advance: bool| -> Option<Step> {
        let mut c = *cursor;
        while let Some(step) = plan.steps.get(c) {
            c += 1;
            if overflow.eligible(plan.target(step), route.context_overflow) {
                if advance {
                    *cursor = c;
                }
                return Some(*step);
            }
            tracing::debug!(target = %plan.target(step).id, "skipped: context window not larger");
        }
        if advance {
            *cursor = c;
        }
        None
    };

    macro_rules! launch {
        ($step:expr, $try_no:expr, $backoff:expr, $limited_since:expr) => {{
            let step: Step = $step;
            let now = Instant::now();
            let target = plan.target(&step);
            let limited_since: Option<Instant> = $limited_since;
            // The deadline first, then the client-side limits: asking the breaker for a
            // permit may take a half-open probe.
            // The breaker first, so that a target it skips takes nothing from its limits; a
            // probe the limits then hold back is given back at once.
            if attempts.len() >= MAX_ATTEMPTS_PER_CALL {
                ceiling_hit = true;
            }
            let permit = if now >= deadline || ceiling_hit {
                Permit::Denied
            } else {
                target.state.health.permit(now, step.last_resort)
            };
            let admitted = if now >= deadline || ceiling_hit || permit == Permit::Denied {
                Err(None)
            } else if target.limited() {
                admit(target, step.target, &spent_keys, plan.estimated_tokens, now).map_err(Some)
            } else {
                Ok((None, [None, None, None]))
            };
            if admitted.is_err() && permit == Permit::Probe {
                target
                    .state
                    .health
                    .record(now, permit, Outcome::Neutral, false);
            }
            if ceiling_hit {
                Launch::Deadline
            } else if now >= deadline {
                deadline_hit = true;
                Launch::Deadline
            } else if let Err(Some((until, reason))) = admitted {
                let dry_lease = matches!(
                    reason,
                    SkipReason::RateLimited {
                        by: LimitedBy::FleetLease,
                        ..
                    }
                );
                let wait = match target_policy(target) {
                    // A fleet lease's refill is a store round trip away: waited for whatever
                    // the policy (the lease bounds it by the store's timeout).
                    _ if dry_lease => (until < deadline).then_some(until),
                    WhenLimited::Wait(max) => {
                        let bound = saturating_add(limited_since.unwrap_or(now), max);
                        (until <= bound && until < deadline).then(|| until)
                    }
                    _ => None,
                };
                let action = match wait {
                    Some(at) => LimitAction::Wait(at.saturating_duration_since(now)),
                    None => LimitAction::FailOver,
                };
                tracing::debug!(target = %target.id, ?action, "held back by a client-side limit");
                acct.observers.each(|o| {
                    o.rate_limited(&LimitEvent {
                        route: &route.name,
                        target: &target.id,
                        action,
                    })
                });
                match wait {
                    Some(at) => Launch::Wait(at),
                    None => {
                        // A key pool with every key invalid never comes back by itself.
                        let back = until.saturating_duration_since(now);
                        let retry_in = (back < NEVER / 2).then_some(back);
                        note_skip(&mut skipped, Skip::new(target.id.clone(), reason, retry_in));
                        Launch::Denied
                    }
                }
            } else if permit == Permit::Denied {
                tracing::debug!(target = %target.id, "skipped: circuit breaker open");
                let retry_in = next_probe_in(target, now);
                note_skip(
                    &mut skipped,
                    Skip::new(target.id.clone(), SkipReason::BreakerOpen, retry_in),
                );
                Launch::Denied
            } else {
                let remaining = deadline.saturating_duration_since(now);
                // The response window means the same for both modes: time to the answer
                // of a plain call, to the first content event of a stream.
                let (full, kind) = match target.first_token_timeout {
                    Some(ft) if ft < target.attempt_timeout => (ft, Limit::FirstToken),
                    _ => (target.attempt_timeout, Limit::Attempt),
                };
                let (limit, limit_kind) = if remaining < full {
                    (remaining, Limit::Deadline)
                } else {
                    (full, kind)
                };
                let try_no: u32 = $try_no;
                let (key, permits) = match admitted {
                    Ok(a) => a,
                    Err(_) => (None, [None, None, None]),
                };
                attempts.push(Attempt {
                    target: target.id.clone(),
                    try_number: try_no,
                    outcome: AttemptOutcome::Cancelled,
                    status: None,
                    started: now.saturating_duration_since(start),
                    latency: Duration::ZERO,
                    error: None,
                    usage: None,
                    cost: None,
                    key: key.and_then(|i| Some(target.keys.as_ref()?.label(i).clone())),
                });
                acct.observers.each(|o| {
                    o.attempt_started(&AttemptStarted {
                        route: &route.name,
                        target: &target.id,
                        try_number: try_no,
                        streamed: mode == Mode::Stream,
                    })
                });
                let span = tracing::info_span!(
                    "relay.attempt",
                    { GEN_AI_PROVIDER_NAME } = target.provider.name(),
                    { GEN_AI_REQUEST_MODEL } = %target.id.model,
                    { RELAY_PROVIDER } = %target.id.provider,
                    { RELAY_ATTEMPT } = attempts.len(),
                    { RELAY_TRY_NUMBER } = try_no,
                    { HTTP_RESPONSE_STATUS_CODE } = tracing::field::Empty,
                    { ERROR_TYPE } = tracing::field::Empty,
                );
                let reported = (mode == Mode::Stream).then(Arc::<ReportedUsage>::default);
                let provider: &dyn crate::provider::Provider = match (key, &target.keys) {
                    (Some(i), Some(ring)) => &**ring.provider(i),
                    _ => &*target.provider,
                };
                let cx = AttemptCx {
                    provider,
                    reported: reported.clone(),
                };
                let fut = call(step, target, cx).instrument(span.clone());
                flights.push(Flight {
                    attempt: attempts.len() - 1,
                    health: InFlight::new(&target.state.health, permit, try_no == 1),
                    step,
                    try_no,
                    started: now,
                    limit,
                    limit_kind,
                    backoff: $backoff,
                    fut: Box::pin(tokio::time::timeout(limit, fut)),
                    span,
                    reported,
                    key,
                    _permits: permits,
                });
                if let Some(h) = route.hedge {
                    let at = saturating_add(now, h.after);
                    match &mut hedge_timer {
                        Some(t) => t.as_mut().reset(at),
                        None => hedge_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                }
                Launch::Started
            }
        }};
    }

    // Parks a step a client-side limit holds back until `due`.
    macro_rules! hold_back {
        ($step:expr, $try_no:expr, $backoff:expr, $due:expr, $since:expr) => {{
            waiting.push(Waiting {
                step: $step,
                try_no: $try_no,
                due: $due,
                backoff: $backoff,
                error: ErrorKind::RateLimited,
                limited_since: Some($since),
            });
            arm(&mut retry_timer, &waiting);
        }};
    }

    // Starts the next step that may start (or parks it behind a limit); whether one did.
    macro_rules! launch_next {
        () => {{
            let mut started = false;
            while let Some(step) = next_fresh(&mut cursor, &overflow, true) {
                match launch!(step, step.prior_tries + 1, None, None) {
                    Launch::Started => {
                        started = true;
                        break;
                    }
                    Launch::Wait(due) => {
                        hold_back!(step, step.prior_tries + 1, None, due, Instant::now());
                        started = true;
                        break;
                    }
                    Launch::Deadline => break,
                    Launch::Denied => {}
                }
            }
            started
        }};
    }

    // Moves on from a failed target: tells the observers when there is a next target to go
    // to (so a failover with nothing left is none), then starts it.
    macro_rules! fail_over {
        ($from:expr, $error:expr) => {{
            if next_fresh(&mut cursor.clone(), &overflow, true).is_some() {
                failed_over(acct, &route.name, $from, $error);
            }
            launch_next!();
        }};
    }

    launch_next!();
    loop {
        if flights.is_empty() && waiting.is_empty() {
            // Nothing in flight or waiting: start the next step, or stop.
            if !deadline_hit && !ceiling_hit && launch_next!() {
                continue;
            }
            break;
        }
        let can_hedge = route.hedge.is_some()
            && flights.len() + waiting.len() < capacity
            && next_fresh(&mut cursor.clone(), &overflow, false).is_some();
        let event = std::future::poll_fn(|cx| {
            for (i, f) in flights.iter_mut().enumerate() {
                if let Poll::Ready(out) = f.fut.as_mut().poll(cx) {
                    return Poll::Ready(Event::Done(i, out));
                }
            }
            if !waiting.is_empty()
                && let Some(t) = &mut retry_timer
                && t.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Event::RetryDue);
            }
            if can_hedge
                && let Some(t) = &mut hedge_timer
                && t.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Event::Hedge);
            }
            Poll::Pending
        })
        .await;
        match event {
            Event::Done(i, out) => {
                let mut f = flights.swap_remove(i);
                let target = plan.target(&f.step);
                // One clock read for the attempt's end: its latency, its health record, the
                // call's latency and what is open now.
                let end = Instant::now();
                let latency = end.saturating_duration_since(f.started);
                let err = match out {
                    Ok(Ok(value)) => {
                        let changed = f.health.record(Outcome::Success(latency), end);
                        note_answer(
                            target,
                            f.key,
                            value.rate_limit(),
                            value.usage(),
                            plan.estimated_tokens,
                        );
                        let a = &mut attempts[f.attempt];
                        a.outcome = AttemptOutcome::Served;
                        a.status = value.status();
                        if let Some(status) = a.status {
                            f.span.record(HTTP_RESPONSE_STATUS_CODE, status);
                        }
                        a.latency = latency;
                        a.usage = value.usage();
                        a.cost = attempt_cost(target.price.as_ref(), a.usage.as_ref());
                        attempt_ended(acct, &route.name, a, changed);
                        cancel_all(plan, &mut attempts, flights, "another attempt won");
                        // A stream keeps the list for its whole life: no spare room.
                        if mode == Mode::Stream {
                            attempts.shrink_to_fit();
                        }
                        let span = tracing::Span::current();
                        if !span.is_disabled() {
                            span.record(RELAY_ATTEMPTS, attempts.len());
                            span.record(RELAY_SERVED_BY, tracing::field::display(&target.id));
                            span.record(GEN_AI_PROVIDER_NAME, target.provider.name());
                        }
                        // Open targets the plan put last and never reached were passed over too.
                        for step in plan.steps.get(cursor..).unwrap_or(&[]) {
                            let t = plan.target(step);
                            if t.state.health.is_open(end).is_some() {
                                let retry_in = next_probe_in(t, end);
                                let skip =
                                    Skip::new(t.id.clone(), SkipReason::BreakerOpen, retry_in);
                                note_skip(&mut skipped, skip);
                            }
                        }
                        let meta = ResponseMeta {
                            route: Some(route.name.clone()),
                            served_by: Some(target.id.clone()),
                            served: Some(f.attempt),
                            attempts,
                            skipped,
                            latency: end.saturating_duration_since(start),
                            ..ResponseMeta::default()
                        };
                        return Ok(Won {
                            value,
                            step: f.step,
                            meta,
                        });
                    }
                    Ok(Err(e)) => e,
                    Err(_) => {
                        let why = match f.limit_kind {
                            Limit::Deadline => "the call's deadline",
                            Limit::FirstToken => "the response window",
                            _ => "the attempt timeout",
                        };
                        Error::new(
                            ErrorKind::Timeout,
                            format!("no answer within {} ms ({why})", f.limit.as_millis()),
                        )
                        .with_limit(f.limit_kind)
                    }
                };
                let err = err.with_target(target.id.clone());
                deadline_hit |= err.limit() == Some(Limit::Deadline);
                let key_spent = note_failure(acct, &route.name, target, f.key, &err);
                // A deadline the caller set says nothing about the target, nor does the
                // request's own fault, nor a key's own failure while the pool has another
                // key for this target; with one key, the key's failure is the target's.
                let other_key = key_spent
                    && target.keys.as_ref().is_some_and(|ring| {
                        let mut exclude = spent_for(&spent_keys, f.step.target);
                        exclude.extend(f.key);
                        target.state.key_rests.resting(end, &mut exclude);
                        ring.any_usable(end, &exclude)
                    });
                let outcome = if err.limit() == Some(Limit::Deadline)
                    || err.fault() == Fault::Request
                    || other_key
                {
                    Outcome::Neutral
                } else {
                    Outcome::of_error(err.kind(), err.retry_after())
                };
                let changed = f.health.record(outcome, end);
                f.span.record(ERROR_TYPE, err.kind().as_str());
                if let Some(status) = err.status() {
                    f.span.record(HTTP_RESPONSE_STATUS_CODE, status);
                }
                tracing::warn!(
                    target = %target.id,
                    { ERROR_TYPE } = err.kind().as_str(),
                    { HTTP_RESPONSE_STATUS_CODE } = err.status(),
                    "attempt failed: {err}"
                );
                let a = &mut attempts[f.attempt];
                a.outcome = AttemptOutcome::Failed(err.kind());
                a.status = err.status();
                a.latency = latency;
                a.error = Some(err.clone());
                bill_reported(a, f.reported.as_deref(), target);
                attempt_ended(acct, &route.name, a, changed);
                // A key's own failure (429, quota, refused) is remembered for the call.
                if key_spent && let Some(k) = f.key {
                    spent_keys.push((f.step.target, k));
                }
                let failure = Failure {
                    error: &err,
                    try_no: f.try_no,
                    latency,
                    remaining: deadline.saturating_duration_since(end),
                    probe: f.health.permit == Permit::Probe,
                    other_key: other_key && f.key.is_some(),
                };
                let rules = Rules {
                    retry: &target.retry,
                    fail_over_invalid: route.fail_over_invalid,
                    context_overflow: route.context_overflow,
                };
                let health = f.health.health;
                let next = next_move(&failure, &rules, &mut f.backoff, || {
                    let left = health.withdraw_retry();
                    if !left {
                        tracing::debug!(target = %target.id, "retry budget spent: failing over");
                    }
                    left
                });
                match next {
                    Move::NextKey => {
                        tracing::debug!(target = %target.id, "next key of the pool");
                        match launch!(f.step, f.try_no + 1, f.backoff.take(), None) {
                            Launch::Denied => fail_over!(&target.id, err.kind()),
                            Launch::Wait(due) => {
                                hold_back!(f.step, f.try_no + 1, None, due, Instant::now())
                            }
                            Launch::Started | Launch::Deadline => {}
                        }
                    }
                    Move::Retry { wait } => {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, "retrying same target");
                        acct.observers.each(|o| {
                            o.retry(&RetryEvent {
                                route: &route.name,
                                target: &target.id,
                                next_try: f.try_no + 1,
                                wait,
                                error: err.kind(),
                            })
                        });
                        let due = saturating_add(Instant::now(), wait);
                        waiting.push(Waiting {
                            step: f.step,
                            try_no: f.try_no + 1,
                            due,
                            backoff: f.backoff.take(),
                            error: err.kind(),
                            limited_since: None,
                        });
                        arm(&mut retry_timer, &waiting);
                    }
                    Move::Overflow => {
                        overflow.record(target);
                        // Steps already waiting for a retry of an overflowed target are moot.
                        waiting.retain(|w| {
                            overflow.eligible(plan.target(&w.step), route.context_overflow)
                        });
                        fail_over!(&target.id, err.kind());
                    }
                    Move::FailOver => fail_over!(&target.id, err.kind()),
                    Move::Stop => {
                        let why = match err.kind() {
                            ErrorKind::ContextLengthExceeded => "the call stopped",
                            _ => "the call stopped on another error",
                        };
                        cancel_all(plan, &mut attempts, flights, why);
                        return Err(err.with_attempts(attempts));
                    }
                }
            }
            Event::RetryDue => {
                let now = Instant::now();
                let mut i = 0;
                while i < waiting.len() {
                    if waiting[i].due <= now {
                        let w = waiting.swap_remove(i);
                        let mut backoff = w.backoff;
                        match launch!(w.step, w.try_no, backoff.take(), w.limited_since) {
                            // The breaker opened (or a limit held it past its bound)
                            // meanwhile: the next target instead.
                            Launch::Denied => fail_over!(&plan.target(&w.step).id, w.error),
                            Launch::Wait(due) => {
                                let since = w.limited_since.unwrap_or(now);
                                hold_back!(w.step, w.try_no, backoff, due, since);
                            }
                            Launch::Started | Launch::Deadline => {}
                        }
                    } else {
                        i += 1;
                    }
                }
                arm(&mut retry_timer, &waiting);
            }
            Event::Hedge => {
                tracing::debug!("hedging: starting the next target");
                launch_next!();
            }
        }
    }
    Err(exhausted(
        plan,
        attempts,
        skipped,
        start,
        deadline,
        deadline_hit,
    ))
}

/// Most attempts one call makes, retries and failovers included, whatever its routes and
/// fallbacks add up to.
pub const MAX_ATTEMPTS_PER_CALL: usize = 32;

/// Points the retry timer at the earliest waiting retry.
fn arm(timer: &mut Option<Pin<Box<Sleep>>>, waiting: &[Waiting]) {
    let Some(due) = waiting.iter().map(|w| w.due).min() else {
        return;
    };
    match timer {
        Some(t) => t.as_mut().reset(due),
        None => *timer = Some(Box::pin(tokio::time::sleep_until(due))),
    }
}

/// Records every attempt still in flight as cancelled; dropping them closes their
/// connections now.
fn cancel_all<T>(plan: &Plan, attempts: &mut [Attempt], flights: Vec<Flight<'_, T>>, why: &str) {
    if flights.is_empty() {
        return;
    }
    let now = Instant::now();
    for mut f in flights {
        bill_reported(
            &mut attempts[f.attempt],
            f.reported.as_deref(),
            plan.target(&f.step),
        );
        // Cancelled by the relay: says nothing about the target (and frees a probe).
        f.health.record(Outcome::Neutral, now);
        let a = &mut attempts[f.attempt];
        a.outcome = AttemptOutcome::Cancelled;
        a.latency = now.saturating_duration_since(f.started);
        a.error = Some(
            Error::new(ErrorKind::Cancelled, format!("abandoned: {why}"))
                .with_target(a.target.clone()),
        );
    }
}

/// An attempt that ended without an answer keeps the usage its vendor reported on the way
/// (and its cost): the vendor bills it.
fn bill_reported(a: &mut Attempt, reported: Option<&ReportedUsage>, target: &ResolvedTarget) {
    if a.usage.is_none()
        && let Some(u) = reported.and_then(ReportedUsage::get)
    {
        a.usage = Some(u);
        a.cost = attempt_cost(target.price.as_ref(), Some(&u));
    }
}

/// Tells the observers an attempt ended, and whether that changed its target's breaker.
fn attempt_ended(
    acct: &Accounting,
    route: &Arc<str>,
    attempt: &Attempt,
    changed: Option<BreakerState>,
) {
    acct.observers
        .each(|o| o.attempt_ended(&AttemptEnded { route, attempt }));
    if let Some(state) = changed {
        let target = &attempt.target;
        acct.observers
            .each(|o| o.breaker(&BreakerEvent { target, state }));
    }
}

/// Tells the observers the call moves on from `from`, which failed with `error`.
fn failed_over(acct: &Accounting, route: &Arc<str>, from: &TargetId, error: ErrorKind) {
    acct.observers
        .each(|o| o.failover(&FailoverEvent { route, from, error }));
}

/// The error when nothing is left to try. With no attempt made, the relay refused the call
/// itself, and the error names why: the deadline, or the skips (their reason and when the
/// first target may be tried again) — never "0 attempts on 0 targets".
fn exhausted(
    plan: &Plan,
    attempts: Vec<Attempt>,
    skipped: Vec<Skip>,
    start: Instant,
    deadline: Instant,
    deadline_hit: bool,
) -> Error {
    // A context overflow with no larger target: the caller needs that reason, not a summary.
    if let Some(last) = attempts.last().and_then(|a| a.error.clone())
        && last.kind() == ErrorKind::ContextLengthExceeded
    {
        return last.with_attempts(attempts).with_skipped(skipped);
    }
    let allowed = deadline.saturating_duration_since(start).as_millis();
    let skips = || {
        skipped
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    };
    if attempts.is_empty() {
        let route = &plan.route.name;
        if deadline_hit {
            return Error::new(
                ErrorKind::Timeout,
                format!("route {route:?}: the deadline of {allowed} ms passed before any attempt"),
            )
            .with_limit(Limit::Deadline)
            .with_skipped(skipped);
        }
        // The skip that comes back first says what the caller waits for.
        let first = skipped
            .iter()
            .enumerate()
            .min_by_key(|(i, s)| (s.retry_in.is_none(), s.retry_in, *i))
            .map(|(_, s)| (s.reason, s.retry_in));
        if let Some((reason, retry_in)) = first {
            let kind = match reason {
                SkipReason::RateLimited { .. } => ErrorKind::LimitReached,
                SkipReason::KeysExhausted => ErrorKind::KeysExhausted,
                _ => ErrorKind::BreakerOpen,
            };
            let mut err = Error::new(
                kind,
                format!("route {route:?}: nothing was sent: {}", skips()),
            );
            if let Some(wait) = retry_in {
                err = err.with_retry_after(wait);
            }
            return err.with_skipped(skipped);
        }
    }
    let targets: std::collections::HashSet<&TargetId> =
        attempts.iter().map(|a| &a.target).collect();
    let mut msg = format!(
        "route {:?}: {} attempts on {} targets failed in {} ms",
        plan.route.name,
        attempts.len(),
        targets.len(),
        start.elapsed().as_millis()
    );
    if deadline_hit {
        msg.push_str(&format!(" (deadline of {allowed} ms reached)"));
    }
    if !skipped.is_empty() {
        msg.push_str(&format!("; {}", skips()));
    }
    let err = Error::new(ErrorKind::AllTargetsFailed, msg)
        .with_attempts(attempts)
        .with_skipped(skipped);
    if deadline_hit {
        err.with_limit(Limit::Deadline)
    } else {
        err
    }
}
