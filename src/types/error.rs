//! One typed error for everything that can go wrong, with the facts retry policy needs.

use std::sync::Arc;
use std::time::Duration;

use super::{BudgetExceeded, RateLimitInfo};

/// What kind of failure an [`Error`] is. Retry and failover decisions are made from this,
/// never from message strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The vendor throttled the request (HTTP 429 or equivalent); transient.
    RateLimited,
    /// Billing quota or balance exhausted (OpenAI 429 `insufficient_quota`, HTTP 402, a per-day
    /// quota); permanent for this key, so the relay fails over instead of retrying.
    QuotaExhausted,
    /// The vendor is overloaded or unavailable (503, Anthropic 529).
    Overloaded,
    /// A server error (500, 502, 504…).
    Server,
    /// No answer within the attempt timeout or the call's deadline.
    Timeout,
    /// The connection could not be made or was reset before an answer.
    Connect,
    /// The key was refused (401, 403).
    Auth,
    /// The model or endpoint does not exist here (404).
    NotFound,
    /// The vendor rejected the request as malformed (400, 422…).
    InvalidRequest,
    /// The prompt does not fit the model's context window.
    ContextLengthExceeded,
    /// The vendor's content policy blocked the prompt or the answer.
    ContentFiltered,
    /// The vendor's answer could not be decoded.
    Decode,
    /// A stream ended or stalled before its end (after content was delivered).
    StreamInterrupted,
    /// No route, provider or target matches the request.
    NoRoute,
    /// The relay or a provider was configured wrongly.
    Config,
    /// Every target of the route failed; [`Error::attempts`] lists them.
    AllTargetsFailed,
    /// An attempt the relay abandoned because a hedged attempt on another target won.
    Cancelled,
    /// No target satisfies the request's constraints (required tags): the request was sent
    /// nowhere.
    ConstraintViolated,
    /// A budget is spent for its window: the request was refused before it was sent
    /// ([`Error::budget`] says which budget, what it spent and when it resets).
    BudgetExceeded,
    /// The request is larger than the target takes at once (a vendor's 429 "Request too
    /// large" for the key's tokens-per-minute limit, an HTTP 413): the request's fault, so no
    /// key is rested and the call fails over; sent again unchanged, it fails the same way.
    RequestTooLarge,
    /// The relay's own rate or concurrency limit refused every target it could go to: nothing
    /// was sent. [`Error::skipped`] says which limit held each target back and
    /// [`Error::retry_after`] when a call would be admitted.
    LimitReached,
    /// Every target the call could go to has its circuit breaker open (or its one probe
    /// already in flight): nothing was sent. [`Error::retry_after`] says when the next probe
    /// is due, [`Error::skipped`] lists each target.
    BreakerOpen,
    /// Every key of the pools the call could use is resting, parked or invalid: nothing was
    /// sent. [`Error::retry_after`] says when the first key returns (none when every key is
    /// invalid).
    KeysExhausted,
}

impl ErrorKind {
    /// A short lowercase description, also used as the `error.type` tracing field.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::Server => "server_error",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::NotFound => "not_found",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::ContextLengthExceeded => "context_length_exceeded",
            ErrorKind::ContentFiltered => "content_filtered",
            ErrorKind::Decode => "decode",
            ErrorKind::StreamInterrupted => "stream_interrupted",
            ErrorKind::NoRoute => "no_route",
            ErrorKind::Config => "config",
            ErrorKind::AllTargetsFailed => "all_targets_failed",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::ConstraintViolated => "constraint_violated",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::LimitReached => "limit_reached",
            ErrorKind::BreakerOpen => "breaker_open",
            ErrorKind::KeysExhausted => "keys_exhausted",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which time limit ended an attempt, a call or a stream ([`Error::limit`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// One attempt's time ([`Target::attempt_timeout`](crate::Target::attempt_timeout)).
    Attempt,
    /// The response window: no answer (a plain call) or no first content event (a stream)
    /// in time ([`Target::first_token_timeout`](crate::Target::first_token_timeout)).
    FirstToken,
    /// The call's own deadline ([`Chain::total_timeout`](crate::Chain::total_timeout) or
    /// [`ChatRequest::timeout`](crate::ChatRequest::timeout)).
    Deadline,
    /// A started stream stayed silent too long
    /// ([`Chain::stream_idle_timeout`](crate::Chain::stream_idle_timeout)).
    StreamIdle,
    /// A started stream ran past its longest allowed duration
    /// ([`Chain::max_stream_duration`](crate::Chain::max_stream_duration)).
    StreamDuration,
}

impl Limit {
    /// A short lowercase name (`attempt_timeout`, `deadline`…), as used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::Attempt => "attempt_timeout",
            Limit::FirstToken => "first_token_timeout",
            Limit::Deadline => "deadline",
            Limit::StreamIdle => "stream_idle_timeout",
            Limit::StreamDuration => "max_stream_duration",
        }
    }
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The crate's error: a kind, the HTTP facts, the vendor's own code and message, and the
/// target that failed. Small (one pointer) so `Result`s stay cheap.
#[derive(Clone)]
pub struct Error(Box<Inner>);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Error {
    /// The underlying cause; for an error that sums up several attempts
    /// ([`AllTargetsFailed`](ErrorKind::AllTargetsFailed)), the [`last_error`](Error::last_error).
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.0.source {
            Some(src) => Some(&**src as &(dyn std::error::Error + 'static)),
            None => self
                .own_last_error()
                .map(|e| e as &(dyn std::error::Error + 'static)),
        }
    }
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    code: Option<String>,
    error_type: Option<String>,
    limit: Option<Limit>,
    request_id: Option<String>,
    body_snippet: Option<String>,
    retry_after: Option<Duration>,
    target: Option<TargetId>,
    attempts: Vec<Attempt>,
    skipped: Vec<Skip>,
    fault: Option<Fault>,
    rate_limit: Option<RateLimitInfo>,
    budget: Option<Arc<BudgetExceeded>>,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

/// Longest vendor body kept in an error, in bytes.
pub const BODY_SNIPPET_LIMIT: usize = 2048;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            message: message.into(),
            status: None,
            code: None,
            error_type: None,
            limit: None,
            request_id: None,
            body_snippet: None,
            retry_after: None,
            target: None,
            attempts: Vec::new(),
            skipped: Vec::new(),
            fault: None,
            rate_limit: None,
            budget: None,
            source: None,
        }))
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.0.status = Some(status);
        self
    }

    /// Sets the vendor's error code (`rate_limit_exceeded`, `overloaded_error`…).
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.0.code = Some(code.into());
        self
    }

    /// Sets the vendor's error `type` (OpenAI `invalid_request_error`, Anthropic
    /// `overloaded_error`, Google `RESOURCE_EXHAUSTED`…), kept beside its `code`.
    pub fn with_error_type(mut self, error_type: impl Into<String>) -> Self {
        self.0.error_type = Some(error_type.into());
        self
    }

    /// Records which time limit ended the call or attempt.
    pub fn with_limit(mut self, limit: Limit) -> Self {
        self.0.limit = Some(limit);
        self
    }

    /// Sets the vendor's request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.0.request_id = Some(id.into());
        self
    }

    /// Keeps (at most [`BODY_SNIPPET_LIMIT`] bytes of) the vendor's response body.
    pub fn with_body(mut self, body: &str) -> Self {
        self.0.body_snippet = Some(truncate_utf8(body, BODY_SNIPPET_LIMIT).to_owned());
        self
    }

    /// Sets how long the vendor asked us to wait before retrying.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.0.retry_after = Some(after);
        self
    }

    /// Keeps what the vendor's rate-limit headers said (sent with its error).
    pub fn with_rate_limit(mut self, info: RateLimitInfo) -> Self {
        self.0.rate_limit = (!info.is_empty()).then_some(info);
        self
    }

    /// Sets the budget that refused the request.
    pub fn with_budget(mut self, budget: BudgetExceeded) -> Self {
        self.0.budget = Some(Arc::new(budget));
        self
    }

    /// Sets the target that failed.
    pub fn with_target(mut self, target: TargetId) -> Self {
        self.0.target = Some(target);
        self
    }

    /// Attaches the relay's attempts.
    pub fn with_attempts(mut self, attempts: Vec<Attempt>) -> Self {
        self.0.attempts = attempts;
        self
    }

    /// Sets the targets the relay passed over without sending to them, and why.
    pub fn with_skipped(mut self, skipped: Vec<Skip>) -> Self {
        self.0.skipped = skipped;
        self
    }

    /// Says whose fault the failure is, replacing what its kind implies
    /// ([`fault`](Self::fault)).
    pub fn with_fault(mut self, fault: Fault) -> Self {
        self.0.fault = Some(fault);
        self
    }

    /// Sets the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Arc::new(source));
        self
    }

    /// Replaces the message, keeping everything else (the cause included).
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Self {
        self.0.message = message.into();
        self
    }

    /// Changes the kind, keeping everything else.
    pub fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.0.kind = kind;
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message (the vendor's, when it sent one).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The HTTP status, when a response was received. For an error that sums up several
    /// attempts ([`AllTargetsFailed`](ErrorKind::AllTargetsFailed)), the status of the
    /// [`last_error`](Self::last_error); the same holds for [`code`](Self::code),
    /// [`error_type`](Self::error_type), [`target`](Self::target) and
    /// [`request_id`](Self::request_id).
    pub fn status(&self) -> Option<u16> {
        self.0
            .status
            .or_else(|| self.own_last_error().and_then(Error::status))
    }

    /// The vendor's error code (`rate_limit_exceeded`, `context_length_exceeded`, a numeric
    /// code…), or its error type when it sent no code.
    pub fn code(&self) -> Option<&str> {
        match &self.0.code {
            Some(c) => Some(c),
            None => self.own_last_error().and_then(Error::code),
        }
    }

    /// The vendor's error `type` (OpenAI, Anthropic) or `status` (Google), kept beside its
    /// [`code`](Self::code).
    pub fn error_type(&self) -> Option<&str> {
        match &self.0.error_type {
            Some(t) => Some(t),
            None => self.own_last_error().and_then(Error::error_type),
        }
    }

    /// The vendor's request id, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        match &self.0.request_id {
            Some(r) => Some(r),
            None => self.own_last_error().and_then(Error::request_id),
        }
    }

    /// The start of the vendor's response body.
    pub fn body_snippet(&self) -> Option<&str> {
        self.0.body_snippet.as_deref()
    }

    /// How long the vendor asked us to wait (already capped by the parser).
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// What the vendor's rate-limit headers said with this error, when it sent them.
    pub fn rate_limit(&self) -> Option<&RateLimitInfo> {
        self.0.rate_limit.as_ref()
    }

    /// For [`BudgetExceeded`](ErrorKind::BudgetExceeded): which budget, what it spent, its
    /// limit and when it resets.
    pub fn budget(&self) -> Option<&BudgetExceeded> {
        self.0.budget.as_deref()
    }

    /// The target that failed (for [`AllTargetsFailed`](ErrorKind::AllTargetsFailed), the
    /// target of the [`last_error`](Self::last_error)).
    pub fn target(&self) -> Option<&TargetId> {
        match &self.0.target {
            Some(t) => Some(t),
            None => self.own_last_error().and_then(Error::target),
        }
    }

    /// The provider name of the [`target`](Self::target) that failed.
    pub fn provider(&self) -> Option<&str> {
        self.target().map(|t| &*t.provider)
    }

    /// Every attempt the relay made, in the order they started (empty for errors from a
    /// provider called directly).
    pub fn attempts(&self) -> &[Attempt] {
        &self.0.attempts
    }

    /// The targets of the plan the relay passed over without sending to them, each with why
    /// (breaker open, a client-side limit, every pool key out) and when it may be tried
    /// again (as [`ResponseMeta::skipped`](crate::ResponseMeta::skipped) on a success): with
    /// [`attempts`](Self::attempts), where every target of the plan went.
    pub fn skipped(&self) -> &[Skip] {
        &self.0.skipped
    }

    /// Whose fault the failure is: what the classifier read from the vendor's answer, else
    /// what the kind implies ([`Fault::of_kind`]). For an error that sums up several
    /// attempts, the [`last_error`](Self::last_error)'s. Key pools act only on
    /// [`Fault::Key`] and [`Fault::KeyOnTarget`].
    pub fn fault(&self) -> Fault {
        if let Some(last) = self.own_last_error() {
            return last.fault();
        }
        self.0.fault.unwrap_or_else(|| Fault::of_kind(self.0.kind))
    }

    /// The error that decides what a failed call reports: the error of the last attempt, in
    /// start order, that failed (attempts the relay cancelled itself are passed over). `None`
    /// when the relay made no attempt; for an error from a single attempt, that error.
    pub fn last_error(&self) -> Option<&Error> {
        self.own_last_error().or(Some(self))
    }

    /// The last failed attempt's error, for errors that sum up attempts.
    fn own_last_error(&self) -> Option<&Error> {
        if self.0.kind != ErrorKind::AllTargetsFailed {
            return None;
        }
        self.0
            .attempts
            .iter()
            .rev()
            .filter(|a| a.outcome != AttemptOutcome::Cancelled)
            .find_map(|a| a.error.as_ref())
    }

    /// Which time limit ended the call, the attempt or the stream, if one did.
    pub fn limit(&self) -> Option<Limit> {
        self.0.limit
    }

    /// Whether a time limit passed: an attempt or first-token timeout, the call's deadline,
    /// a stream's idle timeout or its longest duration ([`limit`](Self::limit) says which).
    /// Like every predicate here, it answers for the [`last_error`](Self::last_error) of an
    /// error that sums up several attempts.
    pub fn is_timeout(&self) -> bool {
        self.0.kind == ErrorKind::Timeout
            || self.0.limit.is_some()
            || self.own_last_error().is_some_and(Error::is_timeout)
    }

    /// Whether the call's own deadline passed ([`Limit::Deadline`]): the relay gave up
    /// because the time the caller allowed was used up, not because a target refused.
    pub fn is_deadline(&self) -> bool {
        self.0.limit == Some(Limit::Deadline)
            || self.own_last_error().is_some_and(Error::is_deadline)
    }

    /// Whether the connection could not be made, or broke before an answer.
    pub fn is_connect(&self) -> bool {
        self.0.kind == ErrorKind::Connect || self.own_last_error().is_some_and(Error::is_connect)
    }

    /// Whether the vendor throttled the request (HTTP 429 and the like; not an exhausted
    /// quota, see [`ErrorKind::QuotaExhausted`]).
    pub fn is_rate_limited(&self) -> bool {
        self.0.kind == ErrorKind::RateLimited
            || self.own_last_error().is_some_and(Error::is_rate_limited)
    }

    /// Whether the same request may succeed if sent again later: rate limits, overload,
    /// server errors, connection failures, timeouts and interrupted streams, and the relay's
    /// own refusals that pass with time (its rate limits, open breakers, pool keys that
    /// return; [`retry_after`](Self::retry_after) says when). For
    /// [`AllTargetsFailed`](ErrorKind::AllTargetsFailed), whether the
    /// [`last_error`](Self::last_error) is. Errors the caller must fix (invalid request,
    /// context length, content filter, auth, quota) are not.
    pub fn is_retryable(&self) -> bool {
        if let Some(last) = self.own_last_error() {
            return last.is_retryable();
        }
        matches!(
            self.0.kind,
            ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Server
                | ErrorKind::Connect
                | ErrorKind::Timeout
                | ErrorKind::StreamInterrupted
                | ErrorKind::LimitReached
                | ErrorKind::BreakerOpen
        ) || self.0.limit == Some(Limit::Deadline)
            || (self.0.kind == ErrorKind::KeysExhausted && self.0.retry_after.is_some())
    }

    fn render(&self) -> String {
        use std::fmt::Write;
        let i = &self.0;
        let mut s = String::with_capacity(64 + i.message.len());
        s.push_str(describe(i.kind));
        if let Some(t) = &i.target {
            let _ = write!(s, " at {t}");
        }
        match (i.status, &i.code) {
            (Some(st), Some(c)) => {
                let _ = write!(s, " (HTTP {st}, {c})");
            }
            (Some(st), None) => {
                let _ = write!(s, " (HTTP {st})");
            }
            (None, Some(c)) => {
                let _ = write!(s, " ({c})");
            }
            (None, None) => {}
        }
        if !i.message.is_empty() {
            let _ = write!(s, ": {}", i.message);
        }
        if i.kind == ErrorKind::AllTargetsFailed {
            for (n, a) in i.attempts.iter().enumerate() {
                let what = match (&a.error, a.outcome) {
                    (Some(e), _) => e.short(),
                    (None, AttemptOutcome::Served) => "ok".to_owned(),
                    (None, other) => other.to_string(),
                };
                let _ = write!(s, "; #{} {} try {}: {what}", n + 1, a.target, a.try_number);
            }
        }
        s
    }

    /// Kind, status and code without the target, for attempt lists.
    fn short(&self) -> String {
        let i = &self.0;
        match i.status {
            Some(st) => format!("{} (HTTP {st})", i.kind),
            None => i.kind.to_string(),
        }
    }
}

fn describe(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::RateLimited => "rate limited",
        ErrorKind::QuotaExhausted => "quota exhausted",
        ErrorKind::Overloaded => "vendor overloaded",
        ErrorKind::Server => "vendor server error",
        ErrorKind::Timeout => "timed out",
        ErrorKind::Connect => "connection failed",
        ErrorKind::Auth => "authentication failed",
        ErrorKind::NotFound => "not found",
        ErrorKind::InvalidRequest => "invalid request",
        ErrorKind::ContextLengthExceeded => "context length exceeded",
        ErrorKind::ContentFiltered => "blocked by content filter",
        ErrorKind::Decode => "could not decode the response",
        ErrorKind::StreamInterrupted => "stream interrupted",
        ErrorKind::NoRoute => "no route",
        ErrorKind::Config => "configuration error",
        ErrorKind::AllTargetsFailed => "all targets failed",
        ErrorKind::Cancelled => "cancelled",
        ErrorKind::ConstraintViolated => "no target satisfies the constraints",
        ErrorKind::BudgetExceeded => "budget exceeded",
        ErrorKind::RequestTooLarge => "request too large for the target",
        ErrorKind::LimitReached => "refused by the relay's rate limit",
        ErrorKind::BreakerOpen => "every circuit breaker open",
        ErrorKind::KeysExhausted => "every pool key out",
    }
}

impl std::fmt::Debug for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = &self.0;
        let mut d = f.debug_struct("Error");
        d.field("kind", &i.kind);
        if let Some(t) = &i.target {
            d.field("target", &format_args!("{t}"));
        }
        d.field("status", &i.status)
            .field("code", &i.code)
            .field("message", &i.message);
        if i.error_type.is_some() {
            d.field("error_type", &i.error_type);
        }
        if i.limit.is_some() {
            d.field("limit", &i.limit);
        }
        if i.request_id.is_some() {
            d.field("request_id", &i.request_id);
        }
        if i.retry_after.is_some() {
            d.field("retry_after", &i.retry_after);
        }
        if i.body_snippet.is_some() {
            d.field("body", &i.body_snippet);
        }
        if !i.attempts.is_empty() {
            d.field("attempts", &i.attempts);
        }
        if !i.skipped.is_empty() {
            d.field("skipped", &i.skipped);
        }
        if let Some(src) = &i.source {
            d.field("source", &format_args!("{src}"));
        }
        d.finish()
    }
}

impl PartialEq for Error {
    /// Errors compare by kind, status, code, message and target (not by source).
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (&self.0, &other.0);
        a.kind == b.kind
            && a.status == b.status
            && a.code == b.code
            && a.message == b.message
            && a.target == b.target
    }
}

impl Error {
    /// The underlying cause, if any (also available through `std::error::Error::source`).
    pub fn cause(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.0.source.as_deref()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// What the relay reports per attempt lives beside the error that carries it, at the bottom
// layer: every other module (types included) imports from here, nothing here imports back.

/// Which provider and model a relay target names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct TargetId {
    /// The name the provider was registered under (e.g. `"openai"`).
    pub provider: Arc<str>,
    /// The vendor's model name.
    pub model: Arc<str>,
}

impl TargetId {
    /// A target identity.
    pub fn new(provider: impl Into<Arc<str>>, model: impl Into<Arc<str>>) -> Self {
        TargetId {
            provider: provider.into(),
            model: model.into(),
        }
    }
}

impl std::fmt::Display for TargetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// How one attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// It produced the answer the caller got.
    Served,
    /// It failed before anything of it reached the caller; [`Attempt::error`] says why.
    Failed(ErrorKind),
    /// The relay abandoned it: a hedged attempt won, or the call stopped on another
    /// attempt's error. Its connection was closed.
    Cancelled,
    /// A stream that delivered content to the caller, then broke (cut, stalled, error event
    /// or time limit); the answer was recovered on another attempt or the error returned.
    Interrupted {
        /// Chunks with content the caller received from this attempt.
        content_chunks: usize,
        /// Characters of text and reasoning the caller received from this attempt.
        chars: usize,
    },
}

impl std::fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptOutcome::Served => f.write_str("served"),
            AttemptOutcome::Failed(k) => write!(f, "failed: {k}"),
            AttemptOutcome::Cancelled => f.write_str("cancelled"),
            AttemptOutcome::Interrupted {
                content_chunks,
                chars,
            } => write!(
                f,
                "interrupted after {content_chunks} content chunks ({chars} characters)"
            ),
        }
    }
}

/// One try of one target.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Attempt {
    /// The target tried.
    pub target: TargetId,
    /// 1 for the first try of this target in this call, 2 for its first retry…
    pub try_number: u32,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// The HTTP status received, if any (`None` for a provider that does not speak HTTP, or
    /// when no response came).
    pub status: Option<u16>,
    /// When it started, from the start of the call.
    pub started: Duration,
    /// Time from sending to the answer (for streams: to the first content event) or the error.
    pub latency: Duration,
    /// The error, when it failed or was interrupted.
    pub error: Option<Error>,
    /// The usage its vendor reported: the answer's, or a failed attempt's when the vendor
    /// reported some (e.g. a stream cut after its usage event).
    pub usage: Option<crate::types::Usage>,
    /// What it cost, in US dollars, from `usage` and the target's price (`None` when either
    /// is unknown).
    pub cost: Option<f64>,
    /// The key of its provider's pool it was sent with (its position and fingerprint, never
    /// the key), when the provider has a [`KeyPool`](crate::spend::keys::KeyPool).
    pub key: Option<crate::types::KeyLabel>,
}

impl Attempt {
    /// Whether this attempt produced the answer.
    pub fn served(&self) -> bool {
        self.outcome == AttemptOutcome::Served
    }

    /// The kind of failure: the error's kind when it failed,
    /// [`Cancelled`](ErrorKind::Cancelled) or
    /// [`StreamInterrupted`](ErrorKind::StreamInterrupted) for those outcomes, `None` when it
    /// served.
    pub fn failure(&self) -> Option<ErrorKind> {
        match self.outcome {
            AttemptOutcome::Served => None,
            AttemptOutcome::Failed(k) => Some(k),
            AttemptOutcome::Cancelled => Some(ErrorKind::Cancelled),
            AttemptOutcome::Interrupted { .. } => Some(ErrorKind::StreamInterrupted),
        }
    }
}

/// Whose fault a failure is: what decides who pays for it. Key pools act only on the key's
/// faults, breakers count the target's and the vendor's, and a request's own fault moves on
/// without blaming anyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Fault {
    /// The request as sent: malformed, too long for the context window, blocked by a content
    /// filter, or larger than the key may send at once. Another target may take it; no key
    /// is rested and no breaker counts it.
    Request,
    /// The API key: refused (401 or an explicit invalid-key code), out of quota or credit, or
    /// throttled (429). The pool rests, parks or invalidates that key.
    Key,
    /// The key on this target only: the key may not use this model (403). The key rests for
    /// this target; its other models keep using it.
    KeyOnTarget,
    /// The target: the model does not exist here (404), or its answer was empty or could not
    /// be decoded.
    Target,
    /// The vendor's service: server errors, overload, timeouts, dropped connections,
    /// interrupted streams.
    Vendor,
    /// The relay: its own limits, breakers or budgets refused the call, no route matched, or
    /// it is configured wrongly.
    Relay,
}

impl Fault {
    /// What a kind implies when the classifier said nothing more.
    pub fn of_kind(kind: ErrorKind) -> Fault {
        match kind {
            ErrorKind::InvalidRequest
            | ErrorKind::ContextLengthExceeded
            | ErrorKind::ContentFiltered
            | ErrorKind::RequestTooLarge => Fault::Request,
            ErrorKind::RateLimited | ErrorKind::QuotaExhausted | ErrorKind::Auth => Fault::Key,
            ErrorKind::NotFound | ErrorKind::Decode => Fault::Target,
            ErrorKind::NoRoute
            | ErrorKind::Config
            | ErrorKind::ConstraintViolated
            | ErrorKind::BudgetExceeded
            | ErrorKind::LimitReached
            | ErrorKind::BreakerOpen
            | ErrorKind::KeysExhausted => Fault::Relay,
            _ => Fault::Vendor,
        }
    }

    /// A short lowercase name (`request`, `key`, `key_on_target`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Request => "request",
            Fault::Key => "key",
            Fault::KeyOnTarget => "key_on_target",
            Fault::Target => "target",
            Fault::Vendor => "vendor",
            Fault::Relay => "relay",
        }
    }
}

/// Why the relay passed over a target without sending to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SkipReason {
    /// Its circuit breaker is open, or its one half-open probe is already in flight.
    BreakerOpen,
    /// A client-side rate or concurrency limit refused it (and `wait_up_to`, if set, could
    /// not wait long enough).
    RateLimited {
        /// Whose limit refused: the target's, its provider's or the pool key's.
        scope: LimitScope,
        /// Which of its buckets: requests, tokens, requests in flight, or a hold the
        /// vendor's headers put on it.
        by: LimitedBy,
    },
    /// Every key of its provider's pool is resting, parked or invalid.
    KeysExhausted,
}

impl SkipReason {
    /// A short lowercase name (`breaker_open`, `rate_limited`, `keys_exhausted`).
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::BreakerOpen => "breaker_open",
            SkipReason::RateLimited { .. } => "rate_limited",
            SkipReason::KeysExhausted => "keys_exhausted",
        }
    }
}

/// Whose client-side limit held a target back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitScope {
    /// The target's own limit (`rate_limit("provider/model", ..)`).
    Target,
    /// The provider's limit over all its models (`rate_limit("provider", ..)`).
    Provider,
    /// The pool key's limit (`KeyPool::limit_each`): every usable key was at its limit.
    Key,
}

impl LimitScope {
    /// A short lowercase name (`target`, `provider`, `key`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Target => "target",
            LimitScope::Provider => "provider",
            LimitScope::Key => "key",
        }
    }
}

/// Which part of a client-side limit refused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LimitedBy {
    /// Requests per minute (`RateLimit::requests_per_minute`).
    Requests,
    /// Tokens per minute (`RateLimit::tokens_per_minute`), by the request's estimate.
    Tokens,
    /// Requests in flight (`RateLimit::max_concurrent`).
    Concurrency,
    /// The vendor's own word: its rate-limit headers said none left, or a 429's
    /// `Retry-After` holds the limit until then.
    VendorHold,
    /// This replica's lease of a limit shared by a fleet
    /// ([`RelayBuilder::store`](crate::RelayBuilder::store)) was empty: its refill (one store
    /// round trip) was on its way. A call waits for it, within the store's timeout, whatever
    /// [`WhenLimited`](crate::spend::limiter::WhenLimited) says.
    FleetLease,
}

impl LimitedBy {
    /// A short lowercase name (`requests`, `tokens`, `concurrency`, `vendor_hold`,
    /// `fleet_lease`).
    pub fn as_str(self) -> &'static str {
        match self {
            LimitedBy::Requests => "requests",
            LimitedBy::Tokens => "tokens",
            LimitedBy::Concurrency => "concurrency",
            LimitedBy::VendorHold => "vendor_hold",
            LimitedBy::FleetLease => "fleet_lease",
        }
    }
}

/// A target of the plan the relay passed over without sending to it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Skip {
    /// The target passed over.
    pub target: TargetId,
    /// Why.
    pub reason: SkipReason,
    /// How long after the skip the target may be tried again: the breaker's next probe, the
    /// limit's next cell, the first pool key's return. `None` when unknown (a probe already
    /// in flight) or never (every pool key invalid).
    pub retry_in: Option<Duration>,
}

impl Skip {
    /// A skip of `target` for `reason`.
    pub fn new(target: TargetId, reason: SkipReason, retry_in: Option<Duration>) -> Self {
        Skip {
            target,
            reason,
            retry_in,
        }
    }
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            SkipReason::RateLimited { scope, by } => write!(
                f,
                "{} skipped: the {} rate limit ({})",
                self.target,
                scope.as_str(),
                by.as_str()
            )?,
            SkipReason::BreakerOpen => write!(f, "{} skipped: breaker open", self.target)?,
            SkipReason::KeysExhausted => write!(f, "{} skipped: every pool key out", self.target)?,
        }
        match self.retry_in {
            Some(d) => write!(f, ", again in {} ms", d.as_millis()),
            None => Ok(()),
        }
    }
}
