//! Hedged requests: when the first target has not answered (or, for streams, produced its
//! first token) within `hedge_after`, the next target starts in parallel; the first to
//! succeed wins and the others are dropped at once (closing their connections), their
//! attempts recorded as `Cancelled`. No task is spawned: the attempts are polled together.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::time::Instant;

use super::executor::Mode;
use super::policy::{Decision, decide};
use super::{Route, Target};
use crate::error::{Error, ErrorKind};
use crate::types::{Attempt, ResponseMeta};

/// How a route hedges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hedge {
    /// Start the next target when nothing has won after this long.
    pub after: Duration,
    /// At most this many extra attempts in flight at once.
    pub max_extra: usize,
}

type Flight<'a, T> = Pin<Box<dyn Future<Output = (usize, Duration, Result<T, Error>)> + Send + 'a>>;

/// Runs `targets` hedged. Hedged routes do not retry a target: a failure moves on to the
/// next target at once.
pub(crate) async fn execute_hedged<'a, T, F, Fut>(
    route: &Route,
    targets: &'a [Target],
    deadline: Instant,
    start: Instant,
    mode: Mode,
    hedge: Hedge,
    mut call: F,
) -> Result<(T, ResponseMeta), Error>
where
    F: FnMut(&Target) -> Fut,
    Fut: Future<Output = Result<T, Error>> + Send + 'a,
    T: Send + 'a,
{
    let mut attempts: Vec<Attempt> = Vec::new();
    let mut in_flight: FuturesUnordered<Flight<'a, T>> = FuturesUnordered::new();
    let mut launched: Vec<Instant> = Vec::new();
    let mut next = 0usize;
    let mut launch = |i: usize, launched: &mut Vec<Instant>| -> Flight<'a, T> {
        let target = &targets[i];
        let limit = target
            .limit(mode)
            .min(deadline.saturating_duration_since(Instant::now()));
        let fut = call(target);
        launched.push(Instant::now());
        let t0 = Instant::now();
        Box::pin(async move {
            let out = match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorKind::Timeout,
                    format!("no answer within {} ms", limit.as_millis()),
                )),
            };
            (i, t0.elapsed(), out)
        })
    };
    if targets.is_empty() {
        return Err(Error::new(ErrorKind::NoRoute, "no target to try"));
    }
    in_flight.push(launch(0, &mut launched));
    next = next.max(1);
    let hedge_timer = tokio::time::sleep(hedge.after);
    tokio::pin!(hedge_timer);
    let deadline_timer = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline_timer);
    loop {
        let can_hedge = next < targets.len() && in_flight.len() <= hedge.max_extra;
        tokio::select! {
            Some((i, latency, result)) = in_flight.next() => {
                let target = &targets[i];
                match result {
                    Ok(value) => {
                        attempts.push(Attempt {
                            target: target.id.clone(),
                            try_number: 1,
                            failure: None,
                            status: Some(200),
                            latency,
                            error: None,
                        });
                        record_losers(&mut attempts, &in_flight, targets, &launched, i);
                        drop(in_flight); // closes the losers' connections now
                        let meta = ResponseMeta {
                            route: Some(route.name.clone()),
                            served_by: Some(target.id.clone()),
                            attempts,
                            latency: start.elapsed(),
                            request_id: None,
                        };
                        return Ok((value, meta));
                    }
                    Err(e) => {
                        let e = e.with_target(target.id.clone());
                        attempts.push(Attempt {
                            target: target.id.clone(),
                            try_number: 1,
                            failure: Some(e.kind()),
                            status: e.status(),
                            latency,
                            error: Some(e.clone()),
                        });
                        let remaining = deadline.saturating_duration_since(Instant::now());
                        let mut no_backoff = target.retry.schedule();
                        let decision = decide(&e, u32::MAX, &target.retry, &mut no_backoff, remaining, route.fail_over_invalid);
                        if decision == Decision::Stop {
                            return Err(e.with_attempts(attempts));
                        }
                        // A failure frees its slot: the next target starts at once.
                        if next < targets.len() {
                            in_flight.push(launch(next, &mut launched));
                            next += 1;
                            hedge_timer.as_mut().reset(Instant::now() + hedge.after);
                        } else if in_flight.is_empty() {
                            break;
                        }
                    }
                }
            }
            () = &mut hedge_timer, if can_hedge => {
                tracing::debug!(target = %targets[next].id, "hedging: starting the next target");
                in_flight.push(launch(next, &mut launched));
                next += 1;
                hedge_timer.as_mut().reset(Instant::now() + hedge.after);
            }
            () = &mut deadline_timer => {
                record_losers(&mut attempts, &in_flight, targets, &launched, usize::MAX);
                break;
            }
        }
    }
    let passed = Instant::now() >= deadline;
    let mut msg = format!(
        "route {:?}: {} hedged attempts failed in {} ms",
        route.name,
        attempts.len(),
        start.elapsed().as_millis()
    );
    if passed {
        msg.push_str(" (deadline reached)");
    }
    Err(Error::new(ErrorKind::AllTargetsFailed, msg).with_attempts(attempts))
}

/// Records every attempt still in flight (other than `winner`) as cancelled.
fn record_losers<T>(
    attempts: &mut Vec<Attempt>,
    in_flight: &FuturesUnordered<Flight<'_, T>>,
    targets: &[Target],
    launched: &[Instant],
    winner: usize,
) {
    // FuturesUnordered does not say which futures remain; they are the launched indexes
    // with no attempt recorded yet.
    let _ = in_flight;
    for (i, at) in launched.iter().enumerate() {
        if i == winner || attempts.iter().any(|a| a.target == targets[i].id) {
            continue;
        }
        attempts.push(Attempt {
            target: targets[i].id.clone(),
            try_number: 1,
            failure: Some(ErrorKind::Cancelled),
            status: None,
            latency: at.elapsed(),
            error: Some(
                Error::new(
                    ErrorKind::Cancelled,
                    "abandoned: another hedged attempt won",
                )
                .with_target(targets[i].id.clone()),
            ),
        });
    }
}
