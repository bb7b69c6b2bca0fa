//! Targets and chains as values: a [`Target`] is built on its own, a [`Chain`] is a list of
//! targets plus chain-wide settings. Both deserialize, so a configuration file is the
//! builder written down (durations as `"2.5s"`, `"250ms"`).

use std::time::Duration;

use serde::Deserialize;

use super::duration::{self, check_span};
use super::policy::{ContextOverflow, RetryPolicy, check_attempts};
use super::strategy::Strategy;
use crate::catalog::Price;
use crate::types::{Error, ErrorKind};

/// One provider + model, with its own settings. Every setting left unset comes from the
/// chain, then from the relay's defaults ([`RelayBuilder::defaults`](crate::RelayBuilder::defaults)),
/// then from the built-in default each setter names.
///
/// ```
/// use std::time::Duration;
/// use polyrelay::Target;
/// let t = Target::new("anthropic", "claude-sonnet-4")
///     .attempt_timeout(Duration::from_secs(30))
///     .first_token_timeout(Duration::from_millis(2500))
///     .prefill(true)
///     .context_window(200_000)
///     .tags(["eu"])
///     .weight(2.0);
/// assert_eq!(t.to_string(), "anthropic/claude-sonnet-4");
/// // The same from a configuration file, or as "provider/model" text:
/// let parsed: Target = serde_json::from_str(r#"{"provider": "anthropic",
///     "model": "claude-sonnet-4", "first_token_timeout": "2.5s"}"#).unwrap();
/// assert_eq!(parsed.first_token_timeout, Some(Duration::from_millis(2500)));
/// let short: Target = serde_json::from_str(r#""openai/gpt-4o""#).unwrap();
/// assert_eq!(short, Target::new("openai", "gpt-4o"));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
// `remote = "Self"`: the derived code becomes an inherent `Target::deserialize` for maps, and
// the `Deserialize` impl below adds the `"provider/model"` text form around it.
#[serde(remote = "Self", deny_unknown_fields)]
#[non_exhaustive]
pub struct Target {
    /// The registered provider name ([`RelayBuilder::provider`](crate::RelayBuilder::provider)).
    pub provider: String,
    /// The vendor's model name.
    pub model: String,
    /// Time allowed for one attempt: to the whole answer for `chat`, to the response headers
    /// (and, without a first-token timeout, the first content event) for streams.
    #[serde(default, with = "duration::opt")]
    pub attempt_timeout: Option<Duration>,
    /// The response window of a stream: from sending to its first content event. A target
    /// silent that long is abandoned for the next, and nothing it sent reaches the caller.
    #[serde(default, with = "duration::opt")]
    pub first_token_timeout: Option<Duration>,
    /// How this target is retried before the relay moves on.
    #[serde(default)]
    pub retry: Option<RetryPolicy>,
    /// Tries on this target, the first included; overrides the retry policy's count.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// The model's context window in tokens: after a context-length error the relay goes on
    /// only to targets whose window is larger or unknown. Default: the catalog's.
    #[serde(default)]
    pub context_window: Option<u32>,
    /// Whether the model continues an assistant prefill (Anthropic does; most
    /// OpenAI-compatible APIs do not), for [`MidStreamRecovery::Continue`]. Default: the
    /// catalog's `prefill` capability for the model, else false.
    #[serde(default)]
    pub prefill: Option<bool>,
    /// Free-form tags (`on-prem`, `eu`, `zdr`…), for constraints and routing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Relative weight for weighted strategies. Default 1.
    #[serde(default)]
    pub weight: Option<f64>,
    /// The model's price, for costs and the cheapest-first strategy. Default: the
    /// [catalog](crate::catalog)'s price for the model (unknown if it has none).
    #[serde(default)]
    pub price: Option<Price>,
}

impl Target {
    /// A target: `provider` is a name given to
    /// [`RelayBuilder::provider`](crate::RelayBuilder::provider), `model` the vendor's model.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Target {
            provider: provider.into(),
            model: model.into(),
            ..Target::default()
        }
    }

    /// Parses `"provider/model"` (the model may itself contain `/`, as OpenRouter's do:
    /// `"openrouter/meta-llama/llama-3.3-70b"`). `None` without a `/`.
    pub fn parse(text: &str) -> Option<Self> {
        let (provider, model) = text.split_once('/')?;
        (!provider.is_empty() && !model.is_empty()).then(|| Target::new(provider, model))
    }

    /// Time allowed for one attempt, 1 ms to 24 h. Default: the chain's, else the relay's,
    /// else 120 s.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The response window: from sending to the answer of a plain call, to the first content
    /// event of a stream; missed, the call moves on. 1 ms to 24 h and no longer than the call's
    /// [`total_timeout`](Chain::total_timeout) (a window the deadline always closes first is
    /// a mistake, refused at build). Default: the chain's, else the relay's, else the attempt
    /// timeout.
    pub fn first_token_timeout(mut self, timeout: Duration) -> Self {
        self.first_token_timeout = Some(timeout);
        self
    }

    /// The retry policy. Default: the chain's, else the relay's, else [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// Tries on this target, the first included. 0 is raised to 1; more than 10 (the
    /// ceiling) makes the relay's build fail with a `Config` error. Default: the retry
    /// policy's.
    pub fn max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = Some(n.max(1));
        self
    }

    /// Declares the model's context window, in tokens. Default: the catalog's, else unknown.
    pub fn context_window(mut self, tokens: u32) -> Self {
        self.context_window = Some(tokens);
        self
    }

    /// Declares whether the model continues an assistant prefill. Default: the catalog's
    /// `prefill` capability, else false.
    pub fn prefill(mut self, on: bool) -> Self {
        self.prefill = Some(on);
        self
    }

    /// Sets the tags (replacing any). Default: none.
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// This target with every setting it leaves unset taken from `o` (the settings registered
    /// for it with [`RelayBuilder::target`](crate::RelayBuilder::target)).
    pub(crate) fn filled_from(mut self, o: &Target) -> Target {
        self.attempt_timeout = self.attempt_timeout.or(o.attempt_timeout);
        self.first_token_timeout = self.first_token_timeout.or(o.first_token_timeout);
        if self.retry.is_none() {
            self.retry = o.retry.clone();
        }
        self.max_attempts = self.max_attempts.or(o.max_attempts);
        self.context_window = self.context_window.or(o.context_window);
        self.prefill = self.prefill.or(o.prefill);
        if self.tags.is_empty() {
            self.tags = o.tags.clone();
        }
        self.weight = self.weight.or(o.weight);
        if self.price.is_none() {
            self.price = o.price.clone();
        }
        self
    }

    /// Relative weight for weighted strategies. Default: 1.
    pub fn weight(mut self, weight: f64) -> Self {
        self.weight = Some(weight);
        self
    }

    /// The model's price, for costs and the cheapest-first strategy, in place of the
    /// catalog's. Default: the [catalog](crate::catalog)'s price for the model.
    pub fn price(mut self, price: Price) -> Self {
        self.price = Some(price);
        self
    }

    /// Checks the target's own settings: timeouts from 1 ms to 24 h, a valid retry policy
    /// ([`RetryPolicy::validate`]), 1 to 10 attempts, a finite weight ≥ 0.
    /// [`RelayBuilder::build`](crate::RelayBuilder::build) calls it for every target of every
    /// route (with the checks that need the chain, such as a first-token window no longer
    /// than the total timeout). The message starts with the setting at fault.
    pub fn validate(&self) -> Result<(), Error> {
        check_opt_span("attempt_timeout", self.attempt_timeout)?;
        check_opt_span("first_token_timeout", self.first_token_timeout)?;
        if let Some(r) = &self.retry {
            r.validate().map_err(|e| prefixed("retry.", e))?;
        }
        if let Some(n) = self.max_attempts {
            check_attempts("max_attempts", n)?;
        }
        if let Some(w) = self.weight
            && !(w.is_finite() && w >= 0.0)
        {
            return Err(Error::new(
                ErrorKind::Config,
                format!("weight must be a finite number ≥ 0, not {w}"),
            ));
        }
        Ok(())
    }
}

/// Checks a span that may be unset.
fn check_opt_span(what: &str, d: Option<Duration>) -> Result<(), Error> {
    d.map_or(Ok(()), |d| check_span(what, d))
}

/// `e` with `prefix` before its message (a place, or a table such as `retry.`).
pub(crate) fn prefixed(prefix: &str, e: Error) -> Error {
    let message = format!("{prefix}{}", e.message());
    e.with_message(message)
}

/// Checks that a first-token window (`window`, set on this level when `own`) fits inside the
/// call's deadline (`total`, set on this level when `total_own`).
fn window_fits(
    window: Option<Duration>,
    own: bool,
    total: Duration,
    total_own: bool,
) -> Result<(), Error> {
    match window {
        Some(w) if w > total => {
            let (blamed, other) = if own || !total_own {
                ("first_token_timeout", "the total_timeout")
            } else {
                ("total_timeout", "the first_token_timeout it takes")
            };
            let (w, t) = (w.as_secs_f64(), total.as_secs_f64());
            let message = if blamed == "total_timeout" {
                format!(
                    "{blamed} of {t} s is shorter than {other} ({w} s): no attempt could wait for its first token"
                )
            } else {
                format!(
                    "{blamed} of {w} s is longer than {other} ({t} s): the call's deadline would always close it first"
                )
            };
            Err(Error::new(ErrorKind::Config, message))
        }
        _ => Ok(()),
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Target;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"provider/model\" or a table with provider and model")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Target, E> {
                Target::parse(v).ok_or_else(|| {
                    E::custom(format!("{v:?} is not of the form \"provider/model\""))
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Target, A::Error> {
                Target::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(Visit)
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// `"provider/model"` as a target; text without a `/` becomes a target with no model,
/// which [`RelayBuilder::build`](crate::RelayBuilder::build) rejects with a `Config` error.
impl From<&str> for Target {
    fn from(text: &str) -> Self {
        Target::parse(text).unwrap_or_else(|| Target::new(text, ""))
    }
}

impl From<String> for Target {
    fn from(text: String) -> Self {
        Target::from(text.as_str())
    }
}

/// Hedged requests: when no attempt has answered (for streams: produced its first token)
/// after `after`, the next target starts in parallel; the first to succeed wins and the
/// others are closed at once (recorded as [`Cancelled`](crate::AttemptOutcome::Cancelled)).
/// Failures are handled as without hedging: retried or failed over by the same rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Hedge {
    /// Start another attempt when nothing has won after this long.
    #[serde(with = "duration::req")]
    pub after: Duration,
    /// At most this many attempts in flight besides the first. Default 1.
    #[serde(default = "one")]
    pub max_extra: usize,
}

fn one() -> usize {
    1
}

impl Hedge {
    /// Hedge after `after`, with one extra attempt at most.
    pub fn after(after: Duration) -> Self {
        Hedge {
            after,
            max_extra: 1,
        }
    }

    /// At most `n` extra attempts in flight (at least 1).
    pub fn max_extra(mut self, n: usize) -> Self {
        self.max_extra = n.max(1);
        self
    }
}

/// Recovery of a stream interrupted after content reached the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MidStreamRecovery {
    /// End the stream with a `StreamInterrupted` error. The default.
    #[default]
    Off,
    /// Ask the next targets for the whole answer again; a chunk of kind
    /// [`ChunkKind::Restart`](crate::ChunkKind::Restart) first tells the caller to discard
    /// what it received.
    Restart,
    /// Continue the answer: the text delivered so far goes as an assistant prefill, first to
    /// the same target (when it takes prefill and its retry policy allows another attempt),
    /// then to the next targets that take prefill; only when none is left (or what was
    /// delivered cannot be continued, e.g. tool calls) does the answer restart on the
    /// remaining targets, as with `Restart`.
    Continue,
    /// Like `Continue`, but never restarts: for callers that have already shown the words
    /// (a gateway cannot take them back). When no prefill target can continue, the stream
    /// ends with the interruption's error.
    ContinueOnly,
}

/// An ordered fallback chain: targets plus chain-wide settings. The request goes to the
/// first target, then to the next when the error calls for it. Each chain-wide setting is
/// the default for every target without its own; settings left unset come from the relay's
/// defaults ([`RelayBuilder::defaults`](crate::RelayBuilder::defaults)). No setter depends on
/// where it stands.
///
/// ```
/// use std::time::Duration;
/// use polyrelay::{Chain, Target};
/// let chain = Chain::new()
///     .target(Target::new("openai", "gpt-4o").first_token_timeout(Duration::from_millis(2500)))
///     .target("deepseek/deepseek-chat")
///     .total_timeout(Duration::from_secs(20));
/// assert_eq!(chain.targets.len(), 2);
/// assert_eq!(Chain::of(["openai/gpt-4o", "deepseek/deepseek-chat"]).targets.len(), 2);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Chain {
    /// The targets, in order.
    pub targets: Vec<Target>,
    /// Default time for one attempt of each target (see [`Target::attempt_timeout`]).
    #[serde(with = "duration::opt")]
    pub attempt_timeout: Option<Duration>,
    /// Default response window of each target (see [`Target::first_token_timeout`]).
    #[serde(with = "duration::opt")]
    pub first_token_timeout: Option<Duration>,
    /// Default retry policy of each target.
    pub retry: Option<RetryPolicy>,
    /// The call's deadline up to its answer (for streams: its first content event): every
    /// attempt, wait and failover fits inside it.
    #[serde(with = "duration::opt")]
    pub total_timeout: Option<Duration>,
    /// What a context-length error does.
    pub context_overflow: Option<ContextOverflow>,
    /// Whether invalid-request and content-filter errors go to the next target.
    pub fail_over_invalid_requests: Option<bool>,
    /// Longest silence in a started stream.
    #[serde(with = "duration::opt")]
    pub stream_idle_timeout: Option<Duration>,
    /// Longest duration of a whole stream, from the call's start.
    #[serde(with = "duration::opt")]
    pub max_stream_duration: Option<Duration>,
    /// Whether malformed events after a stream's start are skipped.
    pub lenient_streams: Option<bool>,
    /// What a stream interrupted after its start does.
    pub mid_stream_recovery: Option<MidStreamRecovery>,
    /// Hedged requests.
    pub hedge: Option<Hedge>,
    /// How targets are ordered for each request.
    pub strategy: Option<Strategy>,
    /// Tags every target must carry for every request of this route.
    pub require_tags: Vec<String>,
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Self {
        Self::default()
    }

    /// A chain of `targets` (values or `"provider/model"` text) with default settings.
    pub fn of(targets: impl IntoIterator<Item = impl Into<Target>>) -> Self {
        Chain {
            targets: targets.into_iter().map(Into::into).collect(),
            ..Chain::default()
        }
    }

    /// Appends a target (a [`Target`] or `"provider/model"` text).
    pub fn target(mut self, target: impl Into<Target>) -> Self {
        self.targets.push(target.into());
        self
    }

    /// Time allowed for one attempt of every target without its own. Built-in default: 120 s.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The response window for every target without its own: from sending to the answer of a
    /// plain call, to the first content event of a stream; 1 ms to 24 h, and no longer than
    /// the call's
    /// [`total_timeout`](Self::total_timeout) (refused at build). Built-in default: the
    /// attempt timeout.
    pub fn first_token_timeout(mut self, timeout: Duration) -> Self {
        self.first_token_timeout = Some(timeout);
        self
    }

    /// The retry policy of every target without its own. Built-in default:
    /// [`RetryPolicy::default`].
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// One deadline for the call up to its answer (for a stream: up to its first content
    /// event): every attempt, wait and failover fits inside it. A started stream is bounded
    /// by [`max_stream_duration`](Self::max_stream_duration) instead. 1 ms to 24 h (a
    /// shorter or longer one makes the relay's build fail with a `Config` error). Built-in
    /// default: 300 s.
    pub fn total_timeout(mut self, timeout: Duration) -> Self {
        self.total_timeout = Some(timeout);
        self
    }

    /// What a context-length error does. Built-in default: [`ContextOverflow::LargerWindow`].
    pub fn on_context_overflow(mut self, what: ContextOverflow) -> Self {
        self.context_overflow = Some(what);
        self
    }

    /// Whether invalid-request and content-filter errors go to the next target instead of
    /// back to the caller. Built-in default: false (back to the caller, with the vendor's
    /// reason).
    pub fn fail_over_invalid_requests(mut self, on: bool) -> Self {
        self.fail_over_invalid_requests = Some(on);
        self
    }

    /// Longest silence between two events once a stream has started; a stall ends it with a
    /// `StreamInterrupted` error ([`Limit::StreamIdle`](crate::types::Limit::StreamIdle)).
    /// Built-in default: none.
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = Some(timeout);
        self
    }

    /// Longest duration of a whole stream, counted from the call's start (long reasoning
    /// streams are legitimate, so this is apart from
    /// [`total_timeout`](Self::total_timeout)). When it passes, the stream ends with a
    /// `StreamInterrupted` error ([`Limit::StreamDuration`](crate::types::Limit::StreamDuration)),
    /// never a clean end. Built-in default: 30 minutes.
    pub fn max_stream_duration(mut self, limit: Duration) -> Self {
        self.max_stream_duration = Some(limit);
        self
    }

    /// Skip malformed events after a stream started instead of ending it. Built-in default:
    /// false.
    pub fn lenient_streams(mut self, on: bool) -> Self {
        self.lenient_streams = Some(on);
        self
    }

    /// What to do when a started stream is interrupted. Built-in default:
    /// [`MidStreamRecovery::Off`].
    pub fn mid_stream_recovery(mut self, recovery: MidStreamRecovery) -> Self {
        self.mid_stream_recovery = Some(recovery);
        self
    }

    /// Hedged requests (see [`Hedge`]). Built-in default: none.
    pub fn hedge(mut self, hedge: Hedge) -> Self {
        self.hedge = Some(hedge);
        self
    }

    /// How targets are ordered for each request: a built-in, or a user's own
    /// ([`Strategy::custom`]). Built-in default: [`Strategy::Ordered`].
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = Some(strategy);
        self
    }

    /// Tags every target must carry for every request of this route (e.g. `["on-prem"]`):
    /// other targets are never tried, whatever fails. Adds to a request's own
    /// [`require_tags`](crate::ChatRequest::require_tags). Built-in default: none.
    pub fn require_tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.require_tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Checks the chain's settings and its targets' own ([`Target::validate`]): every
    /// timeout from 1 ms to 24 h, a valid retry policy, a hedge of 1 to 8 extra attempts,
    /// and no first-token window (the chain's or a target's) longer than the chain's
    /// `total_timeout` when it sets one. [`RelayBuilder::build`](crate::RelayBuilder::build)
    /// calls it for the defaults and every route, then checks each route's windows against
    /// the total timeout it ends up with (its own, the defaults', else 300 s). A message
    /// about a target starts with `target "provider/model": `, then the setting at fault.
    pub fn validate(&self) -> Result<(), Error> {
        for (what, d) in [
            ("attempt_timeout", self.attempt_timeout),
            ("first_token_timeout", self.first_token_timeout),
            ("total_timeout", self.total_timeout),
            ("stream_idle_timeout", self.stream_idle_timeout),
            ("max_stream_duration", self.max_stream_duration),
        ] {
            check_opt_span(what, d)?;
        }
        if let Some(r) = &self.retry {
            r.validate().map_err(|e| prefixed("retry.", e))?;
        }
        if let Some(h) = &self.hedge {
            check_span("hedge.after", h.after)?;
            if h.max_extra == 0 || h.max_extra > 8 {
                return Err(Error::new(
                    ErrorKind::Config,
                    "hedge.max_extra must be 1 to 8",
                ));
            }
        }
        for t in &self.targets {
            t.validate()
                .map_err(|e| prefixed(&format!("target {:?}: ", t.to_string()), e))?;
        }
        match self.total_timeout {
            Some(_) => self.windows_fit(&Chain::default()),
            None => Ok(()),
        }
    }

    /// Checks that the first-token windows of this chain and its targets fit inside the
    /// total timeout the chain ends up with under `defaults` (its own, the defaults', else
    /// the built-in 300 s).
    pub(crate) fn windows_fit(&self, defaults: &Chain) -> Result<(), Error> {
        let total_own = self.total_timeout.is_some();
        let total = self
            .total_timeout
            .or(defaults.total_timeout)
            .unwrap_or(duration::DEFAULT_TOTAL_TIMEOUT);
        let own = self.first_token_timeout.is_some();
        let window = self.first_token_timeout.or(defaults.first_token_timeout);
        window_fits(window, own, total, total_own)?;
        for t in &self.targets {
            window_fits(t.first_token_timeout, true, total, total_own)
                .map_err(|e| prefixed(&format!("target {:?}: ", t.to_string()), e))?;
        }
        Ok(())
    }
}
