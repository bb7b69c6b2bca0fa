//! Routes: ordered chains of targets with their timeouts and retry policy.

use std::time::Duration;

use super::policy::{ContextOverflow, RetryPolicy};

/// One provider + model in a chain, with its own overrides.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TargetSpec {
    /// The registered provider name.
    pub provider: String,
    /// The vendor's model name.
    pub model: String,
    /// Time allowed for one attempt (to response headers for streams, to the whole body
    /// otherwise). `None`: the chain's, then the relay's default.
    pub attempt_timeout: Option<Duration>,
    /// Tries on this target. `None`: the chain's retry policy.
    pub max_attempts: Option<u32>,
    /// The model's context window in tokens, used to pick a larger model after a
    /// context-length error.
    pub context_window: Option<u32>,
    /// Time allowed from sending a stream request to its first content event (the
    /// "response window"). `None`: the chain's, then `attempt_timeout`.
    pub first_token_timeout: Option<Duration>,
    /// Whether the target continues an assistant prefill (Anthropic does; most
    /// OpenAI-compatible APIs do not), for mid-stream continuation.
    pub prefill: bool,
}

/// What a stream does after its first content event (its commit point).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamPolicy {
    /// Longest silence between two events once the stream has started; a stall ends it with
    /// a `StreamInterrupted` error. `None` (the default): no idle limit.
    pub idle_timeout: Option<Duration>,
    /// Skip malformed events after the commit point instead of ending the stream
    /// (default: end it with the error).
    pub lenient: bool,
    /// What to do when a committed stream is interrupted (default: report the error).
    pub recovery: MidStreamRecovery,
}

/// Recovery of a stream interrupted after content reached the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MidStreamRecovery {
    /// End the stream with a `StreamInterrupted` error. The default.
    #[default]
    Off,
    /// Ask the next targets for the whole answer again; a chunk of kind
    /// [`ChunkKind::Restart`](crate::ChunkKind::Restart) first tells the caller to discard
    /// what it received.
    Restart,
    /// Send the partial answer as an assistant prefill to the next target that declares
    /// [`Chain::prefill`] and stream the continuation; targets without prefill restart.
    Continue,
}

/// An ordered fallback chain: the request goes to the first target, then to the next when
/// the error calls for it.
///
/// Setters that configure a target (`attempt_timeout`, `max_attempts`, `context_window`)
/// apply to the target added last; called before any `target`, they set the chain's default.
///
/// ```
/// use std::time::Duration;
/// use polyrelay::Chain;
/// let chain = Chain::new()
///     .target("openai", "gpt-4o").attempt_timeout(Duration::from_millis(2500))
///     .target("deepseek", "deepseek-chat")
///     .total_timeout(Duration::from_secs(20));
/// assert_eq!(chain.targets().len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Chain {
    pub(crate) targets: Vec<TargetSpec>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) total_timeout: Option<Duration>,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) context_overflow: ContextOverflow,
    pub(crate) fail_over_invalid: bool,
    pub(crate) first_token_timeout: Option<Duration>,
    pub(crate) stream: StreamPolicy,
    pub(crate) hedge_after: Option<Duration>,
    pub(crate) max_hedges: Option<usize>,
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a target: `provider` is a name given to [`RelayBuilder::provider`](crate::RelayBuilder::provider).
    pub fn target(mut self, provider: impl Into<String>, model: impl Into<String>) -> Self {
        self.targets.push(TargetSpec {
            provider: provider.into(),
            model: model.into(),
            attempt_timeout: None,
            max_attempts: None,
            context_window: None,
            first_token_timeout: None,
            prefill: false,
        });
        self
    }

    /// The response window for streams: time from sending to the first content event of the
    /// last target (or, before any target, of every target). A target silent that long is
    /// abandoned for the next one, and nothing it sent reaches the caller.
    pub fn first_token_timeout(mut self, timeout: Duration) -> Self {
        match self.targets.last_mut() {
            Some(t) => t.first_token_timeout = Some(timeout),
            None => self.first_token_timeout = Some(timeout),
        }
        self
    }

    /// Declares that the last target continues an assistant prefill (see
    /// [`MidStreamRecovery::Continue`]).
    pub fn prefill(mut self, on: bool) -> Self {
        if let Some(t) = self.targets.last_mut() {
            t.prefill = on;
        }
        self
    }

    /// Longest silence in a started stream before it is reported as stalled.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream.idle_timeout = Some(timeout);
        self
    }

    /// Skip malformed events after a stream started instead of ending it.
    pub fn lenient_streams(mut self, on: bool) -> Self {
        self.stream.lenient = on;
        self
    }

    /// Hedged requests: when no target has answered (for streams: produced its first token)
    /// after `delay`, start the next target in parallel; the first to succeed wins and the
    /// others are closed at once (recorded in `meta.attempts` as `Cancelled`). Hedged routes
    /// move on after a failure instead of retrying the same target.
    pub fn hedge_after(mut self, delay: Duration) -> Self {
        self.hedge_after = Some(delay);
        self
    }

    /// At most `n` extra attempts in flight at once when hedging (default 1).
    pub fn max_hedges(mut self, n: usize) -> Self {
        self.max_hedges = Some(n.max(1));
        self
    }

    /// What to do when a started stream is interrupted.
    pub fn mid_stream_recovery(mut self, recovery: MidStreamRecovery) -> Self {
        self.stream.recovery = recovery;
        self
    }

    /// Time allowed for one attempt of the last target (or, before any target, of every
    /// target without its own).
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        match self.targets.last_mut() {
            Some(t) => t.attempt_timeout = Some(timeout),
            None => self.attempt_timeout = Some(timeout),
        }
        self
    }

    /// Tries on the last target (or, before any target, on every target).
    pub fn max_attempts(mut self, n: u32) -> Self {
        let n = n.max(1);
        match self.targets.last_mut() {
            Some(t) => t.max_attempts = Some(n),
            None => self.max_attempts = Some(n),
        }
        self
    }

    /// Declares the last target's context window, in tokens.
    pub fn context_window(mut self, tokens: u32) -> Self {
        if let Some(t) = self.targets.last_mut() {
            t.context_window = Some(tokens);
        }
        self
    }

    /// One deadline for the whole call: every attempt, wait and failover fits inside it.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// The retry policy for this chain's targets.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// What a context-length error does (default: go on only to a larger declared window).
    pub fn on_context_overflow(mut self, what: ContextOverflow) -> Self {
        self.context_overflow = what;
        self
    }

    /// Whether invalid-request and content-filter errors go to the next target instead of
    /// back to the caller (default: back to the caller, with the vendor's reason).
    pub fn fail_over_invalid_requests(mut self, on: bool) -> Self {
        self.fail_over_invalid = on;
        self
    }

    /// The targets, in order.
    pub fn targets(&self) -> &[TargetSpec] {
        &self.targets
    }
}
