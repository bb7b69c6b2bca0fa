//! Streaming through the relay. A stream *commits* to a target at its first content event:
//! before that, any failure (HTTP error, in-stream error event, malformed event, no first
//! token within the response window) moves on to the next attempt or target and nothing of
//! the abandoned attempt reaches the caller. After it, a stall (idle timeout), a cut or an
//! error event ends the stream with a `StreamInterrupted` error — or, when the route opts in,
//! the answer is recovered on the next targets (continued from a prefill, or restarted).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
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
    };
    let mut stream = ChatStream::new(futures::stream::unfold(driver, Driver::step));
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
}

impl Driver {
    async fn step(mut self) -> Option<(Result<ChatChunk, Error>, Self)> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                let chunk = self.tag(chunk);
                return Some((Ok(chunk), self));
            }
            if self.done {
                return None;
            }
            let next = match (&mut self.sleep, self.idle) {
                (Some(sleep), Some(idle)) => {
                    tokio::select! {
                        biased;
                        item = self.inner.next() => {
                            sleep.as_mut().reset(Instant::now() + idle);
                            item
                        }
                        () = sleep.as_mut() => Some(Err(Error::new(
                            ErrorKind::StreamInterrupted,
                            format!("stream stalled: no event for {} ms", idle.as_millis()),
                        ))),
                    }
                }
                _ => self.inner.next().await,
            };
            match next {
                Some(Ok(chunk)) => {
                    let chunk = self.tag(chunk);
                    return Some((Ok(chunk), self));
                }
                Some(Err(e)) if e.kind() == ErrorKind::Decode && self.route.stream.lenient => {
                    tracing::warn!(error = %e, "skipped a malformed stream event");
                }
                Some(Err(e)) => {
                    let err = self.interrupted(e);
                    match self.recover(err).await {
                        Ok(()) => continue,
                        Err(err) => {
                            self.done = true;
                            return Some((Err(err), self));
                        }
                    }
                }
                None => {
                    self.done = true;
                    return None;
                }
            }
        }
    }

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

    /// Opens the answer again on the remaining targets, if the route wants that. On failure
    /// the original error is returned (with the recovery attempts added), never the
    /// fallback's own complaint about the prefill.
    async fn recover(&mut self, err: Error) -> Result<(), Error> {
        let mode = self.route.stream.recovery;
        if mode == MidStreamRecovery::Off || self.remaining.is_empty() {
            return Err(err);
        }
        tracing::info!(error = %err, "recovering an interrupted stream on the next target");
        let continuation = mode == MidStreamRecovery::Continue && !self.partial_text.is_empty();
        let cont_req = if continuation {
            let mut r = (*self.req).clone();
            r.messages
                .push(Message::assistant(self.partial_text.clone()));
            Arc::new(r)
        } else {
            self.req.clone()
        };
        let remaining = std::mem::take(&mut self.remaining);
        // The recovery gets a fresh deadline: the original one may be long gone by now.
        let opened = open_on(
            &self.route,
            &remaining,
            &self.req,
            &cont_req,
            &self.cx,
            continuation,
        )
        .await;
        match opened {
            Ok((opened, meta)) => {
                let continues = continuation
                    && meta
                        .served_by
                        .as_ref()
                        .and_then(|s| remaining.iter().find(|t| &t.id == s))
                        .is_some_and(|t| t.prefill);
                self.attempts.extend(meta.attempts);
                self.remaining = after(&remaining, meta.served_by.as_ref());
                self.target = meta.served_by;
                if !continues {
                    self.partial_text.clear();
                    self.queue.push_back(ChatChunk {
                        kind: ChunkKind::Restart,
                        ..ChatChunk::default()
                    });
                }
                self.queue.extend(opened.head);
                self.inner = opened.stream;
                if let (Some(sleep), Some(idle)) = (&mut self.sleep, self.idle) {
                    sleep.as_mut().reset(Instant::now() + idle);
                }
                Ok(())
            }
            Err(recovery_err) => {
                let mut attempts = self.attempts.clone();
                attempts.extend(recovery_err.attempts().iter().cloned());
                Err(err.with_attempts(attempts))
            }
        }
    }
}
