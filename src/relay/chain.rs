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
        });
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
