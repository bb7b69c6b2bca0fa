//! Streaming through the relay. A stream *commits* to a target at its first content event:
//! before that, any failure (HTTP error, in-stream error event, malformed event, no first
//! token within the response window) moves on to the next attempt or target and nothing of
//! the abandoned attempt reaches the caller. After it, a stall (idle timeout), a cut or an
//! error event ends the stream with a `StreamInterrupted` error — or, when the route opts in,
//! the answer is recovered on the next targets (continued from a prefill, or restarted).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::{Instant, Sleep};

use super::chain::MidStreamRecovery;
use super::executor::{self, Mode};
use super::{Route, Target};
use crate::error::{Error, ErrorKind};
use crate::provider::{CallContext, Provider};
use crate::types::{
    ChatChunk, ChatRequest, ChatStream, ChunkKind, Message, ResponseMeta, TargetId,
};

/// A stream that reached its commit point: the chunks read so far, and the rest.
pub(crate) struct Opened {
    stream: ChatStream,
    head: VecDeque<ChatChunk>,
}

/// Opens a stream on one target and reads until its first content event (or its end).
pub(crate) async fn open(
    provider: Arc<dyn Provider>,
    req: &ChatRequest,
    model: &str,
    cx: &CallContext,
) -> Result<Opened, Error> {
    let mut stream = provider.chat_stream(req, model, cx).await?;
    let mut head = VecDeque::new();
    while let Some(item) = stream.next().await {
        let chunk = item?;
        let commit = chunk.has_content() || chunk.choices.iter().any(|c| c.finish_reason.is_some());
        head.push_back(chunk);
        if commit {
            break;
        }
    }
    Ok(Opened { stream, head })
}

/// Runs the route until a stream commits, then returns the caller's stream.
pub(crate) async fn relay_stream(
    route: Arc<Route>,
    req: Arc<ChatRequest>,
    cx: CallContext,
) -> Result<ChatStream, Error> {
    let (opened, meta) = open_on(&route, &route.targets, &req, &req, &cx, false).await?;
    let served = meta.served_by.clone();
    let remaining = after(&route.targets, served.as_ref());
    let driver = Driver {
        idle: route.stream.idle_timeout,
        sleep: route
            .stream
            .idle_timeout
            .map(|d| Box::pin(tokio::time::sleep(d))),
        route,
        req,
        cx,
        remaining,
        target: served,
        inner: opened.stream,
        queue: opened.head,
        partial_text: String::new(),
        content_chunks: 0,
        attempts: meta.attempts.clone(),
        done: false,
        recovery: None,
    };
    let mut stream = ChatStream::new(driver);
    *stream.meta_mut() = meta;
    Ok(stream)
}

/// Walks `targets` until one commits. With `continuation`, prefill-capable targets get
/// `cont_req` (the partial answer as an assistant prefill) and the others `req`; the bool
/// says whether the winner continues (true) or restarts.
async fn open_on(
    route: &Route,
    targets: &[Target],
    req: &Arc<ChatRequest>,
    cont_req: &Arc<ChatRequest>,
    cx: &CallContext,
    continuation: bool,
) -> Result<(Opened, ResponseMeta), Error> {
    let ((opened, _), meta) = executor::execute(route, targets, req, Mode::Stream, |t: &Target| {
        let provider = t.provider.clone();
        let model = t.id.model.clone();
        let continues = continuation && t.prefill;
        let r = if continues {
            cont_req.clone()
        } else {
            req.clone()
        };
        async move { open(provider, &r, &model, cx).await.map(|o| (o, continues)) }
    })
    .await?;
    Ok((opened, meta))
}

/// The targets after `served` in `targets`.
fn after(targets: &[Target], served: Option<&TargetId>) -> Vec<Target> {
    let pos = served.and_then(|s| targets.iter().position(|t| &t.id == s));
    match pos {
        Some(p) => targets[p + 1..].to_vec(),
        None => Vec::new(),
    }
}

/// Feeds the caller after the commit point.
struct Driver {
    route: Arc<Route>,
    req: Arc<ChatRequest>,
    cx: CallContext,
    /// Targets left for recovery.
    remaining: Vec<Target>,
    target: Option<TargetId>,
    inner: ChatStream,
    /// Chunks to hand out before reading on (the committed head, a restart signal).
    queue: VecDeque<ChatChunk>,
    idle: Option<Duration>,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The answer's text so far, for a continuation.
    partial_text: String,
    content_chunks: usize,
    attempts: Vec<crate::types::Attempt>,
    done: bool,
    /// A recovery in flight, and the interruption it answers (reported if it fails).
    recovery: Option<(RecoveryFuture, Error)>,
}

/// What a recovery produces: the reopened stream, or why it could not be reopened.
type RecoveryFuture = Pin<Box<dyn Future<Output = Result<Recovered, Error>> + Send>>;

struct Recovered {
    opened: Opened,
    meta: ResponseMeta,
    /// The targets the recovery walked (those after its winner are left for next time).
    tried: Vec<Target>,
    continuation: bool,
}

/// Written as a plain `poll_next` (not an `unfold`) so the driver's state stays in place
/// rather than being moved in and out for every chunk.
impl futures::Stream for Driver {
    type Item = Result<ChatChunk, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let d = self.get_mut();
        loop {
            if let Some((fut, _)) = &mut d.recovery {
                let outcome = match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(outcome) => outcome,
                };
                let Some((_, original)) = d.recovery.take() else {
                    continue;
                };
                match outcome {
                    Ok(recovered) => d.resume(recovered),
                    Err(recovery_err) => {
                        // Never hide the original interruption behind the fallback's error.
                        d.attempts.extend(recovery_err.attempts().iter().cloned());
                        d.done = true;
                        return Poll::Ready(Some(Err(original.with_attempts(d.attempts.clone()))));
                    }
                }
                continue;
            }
            if let Some(chunk) = d.queue.pop_front() {
                return Poll::Ready(Some(Ok(d.tag(chunk))));
            }
            if d.done {
                return Poll::Ready(None);
            }
            let item = match d.inner.poll_next_unpin(cx) {
                Poll::Ready(item) => {
                    if let (Some(sleep), Some(idle)) = (&mut d.sleep, d.idle) {
                        sleep.as_mut().reset(Instant::now() + idle);
                    }
                    item
                }
                Poll::Pending => {
                    let stalled = match (&mut d.sleep, d.idle) {
                        (Some(sleep), Some(idle)) => {
                            sleep.as_mut().poll(cx).is_ready().then_some(idle)
                        }
                        _ => None,
                    };
                    let Some(idle) = stalled else {
                        return Poll::Pending;
                    };
                    Some(Err(Error::new(
                        ErrorKind::StreamInterrupted,
                        format!("stream stalled: no event for {} ms", idle.as_millis()),
                    )))
                }
            };
            match item {
                Some(Ok(chunk)) => return Poll::Ready(Some(Ok(d.tag(chunk)))),
                Some(Err(e)) if e.kind() == ErrorKind::Decode && d.route.stream.lenient => {
                    tracing::warn!(error = %e, "skipped a malformed stream event");
                }
                Some(Err(e)) => {
                    // Close the failed attempt's connection now, whatever happens next.
                    d.inner = ChatStream::new(futures::stream::empty());
                    let err = d.interrupted(e);
                    match d.start_recovery() {
                        Some(fut) => d.recovery = Some((fut, err)),
                        None => {
                            d.done = true;
                            return Poll::Ready(Some(Err(err)));
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

impl Driver {
    fn tag(&mut self, mut chunk: ChatChunk) -> ChatChunk {
        if chunk.kind == ChunkKind::Content {
            if chunk.has_content() {
                self.content_chunks += 1;
            }
            if self.route.stream.recovery == MidStreamRecovery::Continue
                && let Some(t) = chunk.text()
            {
                self.partial_text.push_str(t);
            }
        }
        chunk.target.clone_from(&self.target);
        chunk
    }

    /// A failure after the commit point, as the caller sees it.
    fn interrupted(&self, e: Error) -> Error {
        let mut err = if e.kind() == ErrorKind::StreamInterrupted {
            e
        } else {
            let mut out = Error::new(
                ErrorKind::StreamInterrupted,
                format!(
                    "{} after {} content chunks: {}",
                    e.kind(),
                    self.content_chunks,
                    e.message()
                ),
            );
            if let Some(s) = e.status() {
                out = out.with_status(s);
            }
            if let Some(c) = e.code() {
                out = out.with_code(c);
            }
            out.with_source(e)
        };
        if let Some(t) = &self.target {
            err = err.with_target(t.clone());
        }
        err.with_attempts(self.attempts.clone())
    }

    /// Starts reopening the answer on the remaining targets, if the route wants that.
    fn start_recovery(&mut self) -> Option<RecoveryFuture> {
        let mode = self.route.stream.recovery;
        if mode == MidStreamRecovery::Off || self.remaining.is_empty() {
            return None;
        }
        tracing::info!("recovering an interrupted stream on the next target");
        let continuation = mode == MidStreamRecovery::Continue && !self.partial_text.is_empty();
        let cont_req = if continuation {
            let mut r = (*self.req).clone();
            r.messages
                .push(Message::assistant(self.partial_text.clone()));
            Arc::new(r)
        } else {
            self.req.clone()
        };
        let (route, req, cx) = (self.route.clone(), self.req.clone(), self.cx.clone());
        let tried = std::mem::take(&mut self.remaining);
        // The recovery gets a fresh deadline: the original one may be long gone by now.
        Some(Box::pin(async move {
            let (opened, meta) =
                open_on(&route, &tried, &req, &cont_req, &cx, continuation).await?;
            Ok(Recovered {
                opened,
                meta,
                tried,
                continuation,
            })
        }))
    }

    /// Carries on with a reopened stream: a continuation goes on seamlessly, a restart first
    /// tells the caller to discard what it had.
    fn resume(&mut self, r: Recovered) {
        let served = r.meta.served_by.clone();
        let continues = r.continuation
            && served
                .as_ref()
                .and_then(|s| r.tried.iter().find(|t| &t.id == s))
                .is_some_and(|t| t.prefill);
        self.attempts.extend(r.meta.attempts);
        self.remaining = after(&r.tried, served.as_ref());
        self.target = served;
        if !continues {
            self.partial_text.clear();
            self.queue.push_back(ChatChunk {
                kind: ChunkKind::Restart,
                ..ChatChunk::default()
            });
        }
        self.queue.extend(r.opened.head);
        self.inner = r.opened.stream;
        if let (Some(sleep), Some(idle)) = (&mut self.sleep, self.idle) {
            sleep.as_mut().reset(Instant::now() + idle);
        }
    }
}
