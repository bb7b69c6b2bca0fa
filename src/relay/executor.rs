//! Walks a route's targets: attempts under per-attempt timeouts, backoff or `Retry-After`
//! waits, failover, all inside one deadline. No task is spawned: dropping the future drops
//! the in-flight request, which closes its connection.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use super::policy::{ContextOverflow, Decision, decide};
use super::{Route, Target};
use crate::error::{Error, ErrorKind};
use crate::types::{Attempt, ChatRequest, ResponseMeta};

/// What an attempt must achieve within its time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The whole response (`attempt_timeout`).
    Chat,
    /// The first content event of a stream (`first_token_timeout`, else `attempt_timeout`).
    Stream,
}

impl Target {
    pub(crate) fn limit(&self, mode: Mode) -> Duration {
        match mode {
            Mode::Chat => self.attempt_timeout,
            Mode::Stream => self.first_token_timeout.unwrap_or(self.attempt_timeout),
        }
    }
}

/// Runs `call` against `targets` (a route's, or what is left of them) until one succeeds,
/// the policy says stop, or the deadline passes.
pub(crate) async fn execute<T, F, Fut>(
    route: &Route,
    targets: &[Target],
    req: &ChatRequest,
    mode: Mode,
    mut call: F,
) -> Result<(T, ResponseMeta), Error>
where
    F: FnMut(&Target) -> Fut,
    Fut: Future<Output = Result<T, Error>> + Send,
    T: Send,
{
    let start = Instant::now();
    let deadline = start + req.relay.timeout.unwrap_or(route.total_timeout);
    if let Some(h) = route.hedge {
        let span =
            tracing::info_span!("relay.chat", relay.route = %route.name, relay.hedged = true);
        // Boxed: the hedging state is large and rare; it should not grow every call's future.
        return Box::pin(super::hedge::execute_hedged(
            route, targets, deadline, start, mode, h, call,
        ))
        .instrument(span)
        .await;
    }
    let span = tracing::info_span!(
        "relay.chat",
        relay.route = %route.name,
        relay.intent = req.relay.intent.as_deref(),
        relay.attempts = tracing::field::Empty,
        relay.served_by = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let mut attempts: Vec<Attempt> = Vec::new();
    // After a context-length error: the window the next target must exceed.
    let mut overflow_from: Option<Option<u32>> = None;
    let mut deadline_passed = false;

    let run = async {
        'targets: for target in targets {
            if let Some(window) = overflow_from {
                let larger = matches!((window, target.context_window), (Some(w), Some(t)) if t > w);
                let eligible = match route.context_overflow {
                    ContextOverflow::LargerWindow => larger,
                    ContextOverflow::NextTarget => true,
                    ContextOverflow::Stop => false,
                };
                if !eligible {
                    tracing::debug!(target = %target.id, "skipped: context window not larger");
                    continue;
                }
            }
            let mut backoff = target.retry.schedule();
            let mut try_no = 0u32;
            loop {
                try_no += 1;
                let now = Instant::now();
                if now >= deadline {
                    deadline_passed = true;
                    break 'targets;
                }
                let remaining = deadline - now;
                let limit = target.limit(mode).min(remaining);
                let attempt_span = tracing::info_span!(
                    "relay.attempt",
                    gen_ai.provider.name = target.provider.name(),
                    gen_ai.request.model = %target.id.model,
                    relay.provider = %target.id.provider,
                    relay.attempt = try_no,
                    http.response.status_code = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                );
                let t0 = Instant::now();
                let attempt = tokio::time::timeout(limit, call(target));
                // Wrapping in a disabled span only costs moves: skip it when nothing listens.
                let outcome = if attempt_span.is_disabled() {
                    attempt.await
                } else {
                    attempt.instrument(attempt_span.clone()).await
                };
                let latency = t0.elapsed();
                let err = match outcome {
                    Ok(Ok(value)) => {
                        attempts.push(Attempt {
                            target: target.id.clone(),
                            try_number: try_no,
                            failure: None,
                            status: Some(200),
                            latency,
                            error: None,
                        });
                        let span = tracing::Span::current();
                        span.record("relay.attempts", attempts.len());
                        span.record("relay.served_by", tracing::field::display(&target.id));
                        let meta = ResponseMeta {
                            route: Some(route.name.clone()),
                            served_by: Some(target.id.clone()),
                            attempts: std::mem::take(&mut attempts),
                            latency: start.elapsed(),
                            request_id: None,
                        };
                        return Ok((value, meta));
                    }
                    Ok(Err(e)) => e,
                    Err(_) => {
                        let why = match mode {
                            _ if limit < target.limit(mode) => "the call's deadline",
                            Mode::Chat => "the attempt timeout",
                            Mode::Stream => "the first-token timeout",
                        };
                        Error::new(
                            ErrorKind::Timeout,
                            format!("no answer within {} ms ({why})", limit.as_millis()),
                        )
                    }
                };
                let err = err.with_target(target.id.clone());
                attempt_span.record("error.type", err.kind().as_str());
                if let Some(s) = err.status() {
                    attempt_span.record("http.response.status_code", s);
                }
                tracing::warn!(
                    parent: &attempt_span,
                    error.type = err.kind().as_str(),
                    http.status = err.status(),
                    "attempt failed: {err}"
                );
                attempts.push(Attempt {
                    target: target.id.clone(),
                    try_number: try_no,
                    failure: Some(err.kind()),
                    status: err.status(),
                    latency,
                    error: Some(err.clone()),
                });
                if err.kind() == ErrorKind::ContextLengthExceeded {
                    if route.context_overflow == ContextOverflow::Stop {
                        return Err(err.with_attempts(attempts));
                    }
                    overflow_from = Some(target.context_window);
                    continue 'targets;
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                match decide(
                    &err,
                    try_no,
                    &target.retry,
                    &mut backoff,
                    remaining,
                    route.fail_over_invalid,
                ) {
                    Decision::Retry(wait) => {
                        tracing::debug!(wait_ms = wait.as_millis() as u64, "retrying same target");
                        tokio::time::sleep(wait).await;
                    }
                    Decision::FailOver => continue 'targets,
                    Decision::Stop => return Err(err.with_attempts(attempts)),
                }
            }
        }
        Err(exhausted(
            route,
            attempts,
            overflow_from.is_some(),
            deadline_passed.then_some(deadline - start),
            start.elapsed(),
        ))
    };
    let result = if span.is_disabled() {
        run.await
    } else {
        run.instrument(span.clone()).await
    };
    result.inspect_err(|e| {
        span.record("error.type", e.kind().as_str());
    })
}

/// The error when no target answered.
fn exhausted(
    route: &Route,
    attempts: Vec<Attempt>,
    overflowed: bool,
    deadline_passed: Option<Duration>,
    elapsed: Duration,
) -> Error {
    // A context overflow with no larger target: the caller needs that reason, not a summary.
    if overflowed
        && let Some(last) = attempts.last().and_then(|a| a.error.clone())
        && last.kind() == ErrorKind::ContextLengthExceeded
    {
        return last.with_attempts(attempts);
    }
    let targets: std::collections::HashSet<&crate::types::TargetId> =
        attempts.iter().map(|a| &a.target).collect();
    let mut msg = format!(
        "route {:?}: {} attempts on {} targets failed in {} ms",
        route.name,
        attempts.len(),
        targets.len(),
        elapsed.as_millis()
    );
    if let Some(total) = deadline_passed {
        msg.push_str(&format!(" (deadline of {} ms reached)", total.as_millis()));
    }
    Error::new(ErrorKind::AllTargetsFailed, msg).with_attempts(attempts)
}
