//! The attempt engine: one loop runs plain, hedged and streamed calls. It walks a [`Plan`]
//! with up to `1 + max_extra` attempts in flight (one without hedging), retries or fails
//! over by [`decide`], and keeps every attempt, by index, in the order it started. No task is
//! spawned: the attempts are polled in place, so dropping the future drops them all, which
//! closes their connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::time::{Instant, Sleep};
use tracing::Instrument;

use super::health::{BreakerState, Health, Outcome, Permit};
use super::plan::{Plan, ResolvedTarget, Step};
use super::policy::{Backoff, ContextOverflow, Decision, decide};
use crate::accounting::{
    Accounting, AttemptEnded, AttemptStarted, BreakerEvent, FailoverEvent, RetryEvent, attempt_cost,
};
use crate::error::{Error, ErrorKind, Limit};
use crate::telemetry::*;
use crate::types::Usage;
use crate::types::{Attempt, AttemptOutcome, ResponseMeta, TargetId};

/// What an attempt must achieve within its time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole response (`attempt_timeout`).
    Chat,
    /// The first content event of a stream (`first_token_timeout`, else `attempt_timeout`).
    Stream,
}

/// What an attempt produces, as far as the engine needs to know.
pub(crate) trait Answer: Send {
    /// The HTTP status of the answer, for providers that speak HTTP.
    fn status(&self) -> Option<u16>;
    /// The usage the answer reports, when known at this point (a stream's comes at its end).
    fn usage(&self) -> Option<Usage>;
}

/// The winning attempt's value, the plan step it ran, and the call's metadata.
pub(crate) struct Won<T> {
    pub value: T,
    pub step: Step,
    pub meta: ResponseMeta,
}

/// `start + d`, saturating far in the future instead of overflowing.
pub(crate) fn saturating_add(start: Instant, d: Duration) -> Instant {
    start
        .checked_add(d)
        .or_else(|| start.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(start)
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

    fn record(&mut self, outcome: Outcome) -> Option<BreakerState> {
        self.recorded = true;
        self.health
            .record(Instant::now(), self.permit, outcome, self.first)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.health
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        if !self.recorded && self.permit == Permit::Probe {
            self.record(Outcome::Neutral);
        }
    }
}

/// What `launch!` did.
#[derive(PartialEq, Eq)]
enum Launch {
    Started,
    /// The call's deadline has passed.
    Deadline,
    /// The target's breaker is open (or its probe taken): skipped.
    Denied,
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
}

/// A retry waiting for its backoff or `Retry-After`.
struct Waiting {
    step: Step,
    try_no: u32,
    due: Instant,
    backoff: Option<Backoff>,
    /// What the try before ended with (a failover from here reports it).
    error: ErrorKind,
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
    F: FnMut(Step, &'a ResolvedTarget) -> Fut,
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
    // Targets passed over because their breaker was open (no allocation unless one was).
    let mut skipped: Vec<TargetId> = Vec::new();

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
        ($step:expr, $try_no:expr, $backoff:expr) => {{
            let step: Step = $step;
            let now = Instant::now();
            let target = plan.target(&step);
            // The deadline first: asking for a permit may take a half-open probe.
            let permit = if now >= deadline {
                Permit::Denied
            } else {
                target.state.health.permit(now, step.last_resort)
            };
            if now >= deadline {
                deadline_hit = true;
                Launch::Deadline
            } else if permit == Permit::Denied {
                tracing::debug!(target = %target.id, "skipped: circuit breaker open");
                if !skipped.contains(&target.id) {
                    skipped.push(target.id.clone());
                }
                Launch::Denied
            } else {
                let remaining = deadline - now;
                let (full, kind) = match (mode, target.first_token_timeout) {
                    (Mode::Stream, Some(ft)) => (ft, Limit::FirstToken),
                    _ => (target.attempt_timeout, Limit::Attempt),
                };
                let (limit, limit_kind) = if remaining < full {
                    (remaining, Limit::Deadline)
                } else {
                    (full, kind)
                };
                let try_no: u32 = $try_no;
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
                let fut = call(step, target).instrument(span.clone());
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
                });
                if let Some(h) = route.hedge {
                    let at = now + h.after;
                    match &mut hedge_timer {
                        Some(t) => t.as_mut().reset(at),
                        None => hedge_timer = Some(Box::pin(tokio::time::sleep_until(at))),
                    }
                }
                Launch::Started
            }
        }};
    }

    // Starts the next step that may start; whether one did.
    macro_rules! launch_next {
        () => {{
            let mut started = false;
            while let Some(step) = next_fresh(&mut cursor, &overflow, true) {
                match launch!(step, step.prior_tries + 1, None) {
                    Launch::Started => {
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
            if !deadline_hit && launch_next!() {
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
                let latency = f.started.elapsed();
                let err = match out {
                    Ok(Ok(value)) => {
                        let changed = f.health.record(Outcome::Success(latency));
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
                        cancel_all(&mut attempts, flights, "another attempt won");
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
                        let now = Instant::now();
                        for step in plan.steps.get(cursor..).unwrap_or(&[]) {
                            let t = plan.target(step);
                            if t.state.health.is_open(now).is_some() && !skipped.contains(&t.id) {
                                skipped.push(t.id.clone());
                            }
                        }
                        let meta = ResponseMeta {
                            route: Some(route.name.clone()),
                            served_by: Some(target.id.clone()),
                            served: Some(f.attempt),
                            attempts,
                            skipped,
                            latency: start.elapsed(),
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
                            Limit::FirstToken => "the first-token timeout",
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
                // A deadline the caller set says nothing about the target.
                let outcome = if err.limit() == Some(Limit::Deadline) {
                    Outcome::Neutral
                } else {
                    Outcome::of_error(err.kind(), err.retry_after())
                };
                let changed = f.health.record(outcome);
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
                attempt_ended(acct, &route.name, a, changed);
                if err.kind() == ErrorKind::ContextLengthExceeded {
                    if route.context_overflow == ContextOverflow::Stop {
                        cancel_all(&mut attempts, flights, "the call stopped");
                        return Err(err.with_attempts(attempts));
                    }
                    overflow.record(target);
                    // Steps already waiting for a retry of an overflowed target are moot.
                    waiting.retain(|w| {
                        overflow.eligible(plan.target(&w.step), route.context_overflow)
                    });
                    fail_over!(&target.id, err.kind());
                    continue;
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                let mut backoff = f.backoff.unwrap_or_else(|| target.retry.schedule());
                let decision = decide(
                    &err,
                    f.try_no,
                    latency,
                    &target.retry,
                    &mut backoff,
                    remaining,
                    route.fail_over_invalid,
                );
                // A probe is tried once, and retries come out of the target's budget.
                let decision = match decision {
                    Decision::Retry(_) if f.health.permit == Permit::Probe => Decision::FailOver,
                    Decision::Retry(_) if !f.health.health.withdraw_retry() => {
                        tracing::debug!(target = %target.id, "retry budget spent: failing over");
                        Decision::FailOver
                    }
                    d => d,
                };
                match decision {
                    Decision::Retry(wait) => {
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
                        let due = Instant::now() + wait;
                        waiting.push(Waiting {
                            step: f.step,
                            try_no: f.try_no + 1,
                            due,
                            backoff: Some(backoff),
                            error: err.kind(),
                        });
                        arm(&mut retry_timer, &waiting);
                    }
                    Decision::FailOver => fail_over!(&target.id, err.kind()),
                    Decision::Stop => {
                        cancel_all(&mut attempts, flights, "the call stopped on another error");
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
                        if launch!(w.step, w.try_no, w.backoff) == Launch::Denied {
                            // The breaker opened meanwhile: the next target instead.
                            fail_over!(&plan.target(&w.step).id, w.error);
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
    Err(exhausted(plan, attempts, start, deadline, deadline_hit).with_skipped(skipped))
}

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
fn cancel_all<T>(attempts: &mut [Attempt], flights: Vec<Flight<'_, T>>, why: &str) {
    for mut f in flights {
        // Cancelled by the relay: says nothing about the target (and frees a probe).
        f.health.record(Outcome::Neutral);
        let a = &mut attempts[f.attempt];
        a.outcome = AttemptOutcome::Cancelled;
        a.latency = f.started.elapsed();
        a.error = Some(
            Error::new(ErrorKind::Cancelled, format!("abandoned: {why}"))
                .with_target(a.target.clone()),
        );
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

/// The error when nothing is left to try.
fn exhausted(
    plan: &Plan,
    attempts: Vec<Attempt>,
    start: Instant,
    deadline: Instant,
    deadline_hit: bool,
) -> Error {
    // A context overflow with no larger target: the caller needs that reason, not a summary.
    if let Some(last) = attempts.last().and_then(|a| a.error.clone())
        && last.kind() == ErrorKind::ContextLengthExceeded
    {
        return last.with_attempts(attempts);
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
        msg.push_str(&format!(
            " (deadline of {} ms reached)",
            deadline.saturating_duration_since(start).as_millis()
        ));
    }
    let err = Error::new(ErrorKind::AllTargetsFailed, msg).with_attempts(attempts);
    if deadline_hit {
        err.with_limit(Limit::Deadline)
    } else {
        err
    }
}
