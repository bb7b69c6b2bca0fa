//! Key pools: several API keys for one provider, spread over requests by round robin or by
//! weight. A key the vendor throttled (429) rests for its `Retry-After`, a key whose quota
//! ran out is parked until its reset, and a key the vendor refused (401, 403) is left out
//! until the relay is rebuilt; the other keys carry on meanwhile.
//!
//! Keys are never shown: health, stats, logs and errors name a key by its [`KeyLabel`], its
//! position in the pool and a short fingerprint.
//!
//! ```
//! use std::time::Duration;
//! use polyrelay::spend::keys::KeyPool;
//! let pool = KeyPool::new()
//!     .weighted_key("sk-team-a", 3)
//!     .weighted_key("sk-team-b", 1)
//!     .weighted()
//!     .park_exhausted_for(Duration::from_secs(30 * 60));
//! assert!(pool.validate().is_ok());
//! assert!(!format!("{pool:?}").contains("sk-team"));
//! ```

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::provider::Provider;
use crate::secret::ApiKey;
use crate::spend::limiter::{Limiter, RateLimit};
use crate::store::SharedKeyState;
use crate::types::fingerprint;
use crate::types::{Error, ErrorKind};
use crate::types::{KeyLabel, KeyState};

/// How long a key whose quota ran out is parked when the vendor gives no reset time, unless
/// [`KeyPool::park_exhausted_for`] says otherwise.
pub const DEFAULT_PARK: Duration = Duration::from_secs(60 * 60);

/// How long a throttled key (429) rests when the vendor sent no `Retry-After` (nor any other
/// reset hint): the usual first back-off. Vendors that throttle nearly always send a hint,
/// which is used instead.
pub const DEFAULT_REST: Duration = Duration::from_secs(1);

/// How a pool spreads requests over its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyStrategy {
    /// Each key in turn (weights are ignored). The default.
    RoundRobin,
    /// In proportion to the keys' weights, by smooth weighted round robin (as nginx does):
    /// deterministic, and a heavy key's turns are spread out rather than bunched.
    Weighted,
}

/// The API keys of one provider, with their weights and how to spread requests over them.
///
/// `Debug` shows how many keys there are and their fingerprints ([`KeyLabel`]), never the
/// keys.
#[derive(Clone)]
#[non_exhaustive]
pub struct KeyPool {
    keys: Vec<(ApiKey, u32)>,
    strategy: KeyStrategy,
    park: Duration,
    limit: Option<RateLimit>,
}

impl Default for KeyPool {
    fn default() -> Self {
        KeyPool::new()
    }
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fingerprints: Vec<String> = self.keys.iter().map(|(k, _)| fingerprint(k)).collect();
        f.debug_struct("KeyPool")
            .field("keys", &self.keys.len())
            .field("fingerprints", &fingerprints)
            .field("strategy", &self.strategy)
            .field("park_exhausted_for", &self.park)
            .field("limit_each", &self.limit)
            .finish()
    }
}

impl KeyPool {
    /// An empty pool: round robin, quota-exhausted keys parked for [`DEFAULT_PARK`].
    pub fn new() -> Self {
        KeyPool {
            keys: Vec::new(),
            strategy: KeyStrategy::RoundRobin,
            park: DEFAULT_PARK,
            limit: None,
        }
    }

    /// A client-side rate limit for each key of the pool (vendors limit per key): a key at
    /// its limit is passed over for the next one. Default: none.
    pub fn limit_each(mut self, limit: RateLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The per-key rate limit, if set.
    pub fn key_limit(&self) -> Option<&RateLimit> {
        self.limit.as_ref()
    }

    /// Adds a key of weight 1.
    pub fn key(self, key: impl Into<ApiKey>) -> Self {
        self.weighted_key(key, 1)
    }

    /// Adds a key with a weight (its share under [`weighted`](Self::weighted); 0 is refused
    /// by [`validate`](Self::validate)).
    pub fn weighted_key(mut self, key: impl Into<ApiKey>, weight: u32) -> Self {
        self.keys.push((key.into(), weight));
        self
    }

    /// Each key in turn ([`KeyStrategy::RoundRobin`], the default).
    pub fn round_robin(mut self) -> Self {
        self.strategy = KeyStrategy::RoundRobin;
        self
    }

    /// Keys in proportion to their weights ([`KeyStrategy::Weighted`]).
    pub fn weighted(mut self) -> Self {
        self.strategy = KeyStrategy::Weighted;
        self
    }

    /// How long a key whose quota ran out is parked when the vendor gives no reset time
    /// (default [`DEFAULT_PARK`], one hour).
    pub fn park_exhausted_for(mut self, d: Duration) -> Self {
        self.park = d;
        self
    }

    /// How many keys the pool has.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// How requests are spread over the keys.
    pub fn strategy(&self) -> KeyStrategy {
        self.strategy
    }

    /// Refuses a pool without keys, an empty (or blank) key, a weight of 0 and a key given
    /// twice, as [`ErrorKind::Config`] errors that name the key by its [`KeyLabel`], never by
    /// its value.
    pub fn validate(&self) -> Result<(), Error> {
        if self.keys.is_empty() {
            return Err(config("the key pool has no keys"));
        }
        if let Some(limit) = &self.limit {
            limit.validate().map_err(|e| {
                let message = format!("the key pool's limit_each: {}", e.message());
                e.with_message(message)
            })?;
        }
        for (i, (key, weight)) in self.keys.iter().enumerate() {
            if key.expose().trim().is_empty() {
                // No fingerprint: that of an empty key tells nothing.
                return Err(config(format!("key#{i} of the key pool is empty")));
            }
            let label = KeyLabel::new(i, key);
            if *weight == 0 {
                return Err(config(format!("{label} of the key pool has weight 0")));
            }
            if let Some(first) = self
                .keys
                .iter()
                .take(i)
                .position(|(k, _)| k.expose() == key.expose())
            {
                return Err(config(format!(
                    "{label} of the key pool is the same key as key#{first}"
                )));
            }
        }
        Ok(())
    }
}

fn config(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// One key's state and counts, for health pages and dashboards.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KeyHealth {
    /// Which key.
    pub label: KeyLabel,
    /// Whether it is usable now.
    pub state: KeyState,
    /// Attempts on this key that succeeded.
    pub served: u64,
    /// Attempts on this key that failed (of any kind).
    pub failures: u64,
}

// A key's state is one word, so that it is read and changed atomically: the top two bits
// say why the key is out, the rest until when (nanoseconds since the ring's epoch). 0 is
// ready; an out key whose time has passed is ready too, without anyone resetting it.
const TAG_SHIFT: u32 = 62;
const NANOS_MASK: u64 = (1 << TAG_SHIFT) - 1;
const TAG_RESTING: u64 = 1;
const TAG_PARKED: u64 = 2;
const TAG_INVALID: u64 = 3;
const INVALID: u64 = TAG_INVALID << TAG_SHIFT;

/// Why a key's state word says it is out (0 for ready), and until when.
fn split(word: u64) -> (u64, u64) {
    (word >> TAG_SHIFT, word & NANOS_MASK)
}

/// Milliseconds from `now` to `until` (both ring nanos), rounded up.
fn ms_between(now: u64, until: u64) -> u64 {
    until.saturating_sub(now).div_ceil(1_000_000)
}

struct Slot {
    /// To know the key again in a reloaded pool.
    key: ApiKey,
    provider: Arc<dyn Provider>,
    /// Shared with the next table's slot for the same key and limit, across a reload.
    limiter: Option<Arc<Limiter>>,
    label: KeyLabel,
    weight: u32,
    state: AtomicU64,
    served: AtomicU64,
    failures: AtomicU64,
}

impl Slot {
    fn usable(&self, now: u64) -> bool {
        let (tag, until) = split(self.state.load(Ordering::Acquire));
        tag == 0 || (tag != TAG_INVALID && now >= until)
    }
}

/// The keys of one provider at run time: one provider per key, the state of each key, and
/// the pool's strategy. Shared (behind an `Arc`) by every request to that provider; every
/// method takes `&self` and is safe to call concurrently.
pub(crate) struct KeyRing {
    slots: Box<[Slot]>,
    strategy: KeyStrategy,
    park: Duration,
    /// Each key's rate limit (the pool's `limit_each`).
    limit: Option<RateLimit>,
    /// What the state words count from.
    epoch: Instant,
    /// Round robin: where the next search starts.
    cursor: AtomicUsize,
    /// Smooth weighted round robin: each key's current weight.
    current: Mutex<Vec<i64>>,
    /// What [`provider`](Self::provider) and [`label`](Self::label) answer for an index out
    /// of range (a caller's bug): something that fails loudly rather than another key.
    missing: (Arc<dyn Provider>, KeyLabel),
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let labels: Vec<String> = self.slots.iter().map(|s| s.label.to_string()).collect();
        f.debug_struct("KeyRing")
            .field("keys", &labels)
            .field("strategy", &self.strategy)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Builds one provider per key with `base.with_key`; a Config error if `base` returns
    /// None, if the pool does not [`validate`](KeyPool::validate), or if a key's provider
    /// does not (a key no header can hold).
    pub(crate) fn new(
        provider_name: &str,
        base: &dyn Provider,
        pool: &KeyPool,
    ) -> Result<Self, Error> {
        let context = |e: Error, what: &str| {
            let message = format!("provider {provider_name:?}{what}: {}", e.message());
            e.with_message(message)
        };
        pool.validate().map_err(|e| context(e, ""))?;
        let mut slots = Vec::with_capacity(pool.keys.len());
        for (i, (key, weight)) in pool.keys.iter().enumerate() {
            let label = KeyLabel::new(i, key);
            let Some(provider) = base.with_key(key.clone()) else {
                return Err(config(format!(
                    "provider {provider_name:?} ({}) cannot take a key pool: it has no API key \
                     to swap",
                    base.name()
                )));
            };
            provider
                .validate()
                .map_err(|e| context(e, &format!(", {label}")))?;
            slots.push(Slot {
                key: key.clone(),
                provider,
                limiter: pool.limit.as_ref().map(|l| Arc::new(Limiter::new(l))),
                label,
                weight: *weight,
                state: AtomicU64::new(0),
                served: AtomicU64::new(0),
                failures: AtomicU64::new(0),
            });
        }
        let missing: Arc<dyn Provider> = Arc::new(MissingKey {
            name: base.name().to_owned(),
        });
        let missing_label = KeyLabel {
            index: usize::MAX,
            fingerprint: "--------".to_owned(),
        };
        Ok(KeyRing {
            current: Mutex::new(vec![0; slots.len()]),
            slots: slots.into_boxed_slice(),
            strategy: pool.strategy,
            park: pool.park,
            limit: pool.limit.clone(),
            epoch: Instant::now(),
            cursor: AtomicUsize::new(0),
            missing: (missing, missing_label),
        })
    }

    /// Takes over the state of the keys `previous` (the same provider's ring in the table a
    /// reload replaces) also has: a resting or parked key stays out until its time, its counts
    /// go on, and so does its rate limiter when the limit is unchanged (with the requests it
    /// has in flight). An invalid key gets another chance: a reload is how a fixed key comes
    /// back. Call before the ring serves.
    pub(crate) fn take_over(&mut self, previous: &KeyRing) {
        // The state words count from the epoch: with the previous one they carry over as
        // they are.
        self.epoch = previous.epoch;
        for slot in self.slots.iter_mut() {
            let Some(old) = previous
                .slots
                .iter()
                .find(|o| o.key.expose() == slot.key.expose())
            else {
                continue;
            };
            let state = old.state.load(Ordering::Acquire);
            if split(state).0 != TAG_INVALID {
                *slot.state.get_mut() = state;
            }
            *slot.served.get_mut() = old.served.load(Ordering::Relaxed);
            *slot.failures.get_mut() = old.failures.load(Ordering::Relaxed);
            if self.limit == previous.limit {
                slot.limiter.clone_from(&old.limiter);
            }
        }
    }

    /// Whether a key other than `exclude` is usable now (without moving the round robin).
    pub(crate) fn any_usable(&self, now: Instant, exclude: &[usize]) -> bool {
        let now = self.nanos(now);
        self.slots
            .iter()
            .enumerate()
            .any(|(i, s)| !exclude.contains(&i) && s.usable(now))
    }

    /// Key `i`'s own rate limiter, when the pool sets one.
    pub(crate) fn limiter(&self, i: usize) -> Option<&Limiter> {
        self.slots.get(i)?.limiter.as_deref()
    }

    /// How many keys the ring has.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The next usable key (not resting, parked or invalid) by the pool's strategy, skipping
    /// `exclude` (keys this request already tried); None when none is usable now.
    pub(crate) fn pick(&self, now: Instant, exclude: &[usize]) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let now = self.nanos(now);
        let eligible =
            |i: usize| !exclude.contains(&i) && self.slots.get(i).is_some_and(|s| s.usable(now));
        match self.strategy {
            KeyStrategy::RoundRobin => {
                let mut start = self.cursor.load(Ordering::Relaxed);
                // Bounded, though each failed exchange means another pick went through.
                for _ in 0..8 {
                    let from = start % n;
                    let found = (0..n).map(|k| (from + k) % n).find(|&i| eligible(i))?;
                    match self.cursor.compare_exchange_weak(
                        start,
                        found + 1,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    ) {
                        Ok(_) => return Some(found),
                        Err(actual) => start = actual,
                    }
                }
                let from = start % n;
                (0..n).map(|k| (from + k) % n).find(|&i| eligible(i))
            }
            KeyStrategy::Weighted => {
                // A poisoned lock only means a panic elsewhere mid-update; any weights are fine.
                let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
                let mut total = 0_i64;
                let mut best: Option<(usize, i64)> = None;
                for (i, (slot, cur)) in self.slots.iter().zip(current.iter_mut()).enumerate() {
                    if !eligible(i) {
                        continue;
                    }
                    let weight = i64::from(slot.weight);
                    *cur = cur.saturating_add(weight);
                    total = total.saturating_add(weight);
                    if best.is_none_or(|(_, b)| *cur > b) {
                        best = Some((i, *cur));
                    }
                }
                let (i, _) = best?;
                if let Some(cur) = current.get_mut(i) {
                    *cur = cur.saturating_sub(total);
                }
                Some(i)
            }
        }
    }

    /// How long a key out of quota is parked when the vendor names no reset (the pool's
    /// `park_exhausted_for`); also how long a key forbidden a model rests for that model.
    pub(crate) fn park(&self) -> Duration {
        self.park
    }

    /// The provider that sends key `i`. For an index out of range, a provider whose every
    /// call fails with a Config error (never another key's).
    pub(crate) fn provider(&self, i: usize) -> &Arc<dyn Provider> {
        self.slots.get(i).map_or(&self.missing.0, |s| &s.provider)
    }

    /// Key `i`'s label (for an index out of range, one with index `usize::MAX`).
    pub(crate) fn label(&self, i: usize) -> &KeyLabel {
        self.slots.get(i).map_or(&self.missing.1, |s| &s.label)
    }

    /// After an attempt on key i failed with `kind`: RateLimited rests the key for
    /// `retry_after` (else [`DEFAULT_REST`]); QuotaExhausted parks it for `retry_after` (the
    /// vendor's reset) if given, else the pool's park duration; Auth marks it Invalid.
    /// Returns the new state when it changed in kind (a usable key going out, a resting key
    /// parked, any key invalid), so the relay can tell observers; a key already out for as
    /// long or longer, a key already invalid and other kinds give None. Every call counts a
    /// failure.
    pub(crate) fn report_failure(
        &self,
        i: usize,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        now: Instant,
    ) -> Option<KeyState> {
        let slot = self.slots.get(i)?;
        slot.failures.fetch_add(1, Ordering::Relaxed);
        let (tag, out_for) = match kind {
            ErrorKind::RateLimited => (TAG_RESTING, retry_after.unwrap_or(DEFAULT_REST)),
            ErrorKind::QuotaExhausted => (TAG_PARKED, retry_after.unwrap_or(self.park)),
            ErrorKind::Auth => {
                let before = slot.state.swap(INVALID, Ordering::AcqRel);
                return (split(before).0 != TAG_INVALID).then_some(KeyState::Invalid);
            }
            _ => return None,
        };
        self.report_state(i, tag, out_for, now)
    }

    /// Key i out (`tag`: resting or parked) for `out_for` from `now`, unless already out as
    /// long or invalid; the new state when it changed in kind.
    fn report_state(
        &self,
        i: usize,
        tag: u64,
        out_for: Duration,
        now: Instant,
    ) -> Option<KeyState> {
        let slot = self.slots.get(i)?;
        let now = self.nanos(now);
        let out_nanos = u64::try_from(out_for.as_nanos()).unwrap_or(u64::MAX);
        let until = now.saturating_add(out_nanos).min(NANOS_MASK);
        if until <= now {
            return None;
        }
        let word = (tag << TAG_SHIFT) | until;
        let before = slot
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |cur| {
                let (cur_tag, cur_until) = split(cur);
                let out = cur_tag != 0 && now < cur_until;
                // Never shorten an absence nor lift an invalid mark.
                (cur_tag != TAG_INVALID && !(out && cur_until >= until)).then_some(word)
            })
            .ok()?;
        let (before_tag, before_until) = split(before);
        let was_out_alike = before_tag == tag && now < before_until;
        if was_out_alike {
            return None;
        }
        let for_ms = ms_between(now, until);
        Some(if tag == TAG_RESTING {
            KeyState::Resting { for_ms }
        } else {
            KeyState::Parked { for_ms }
        })
    }

    /// Key i's state for the fleet at `now`.
    pub(crate) fn shared_state(&self, i: usize, now: Instant) -> SharedKeyState {
        let Some(slot) = self.slots.get(i) else {
            return SharedKeyState::Ready;
        };
        let now = self.nanos(now);
        let (tag, until) = split(slot.state.load(Ordering::Acquire));
        let left = Duration::from_nanos(until.saturating_sub(now));
        match tag {
            TAG_INVALID => SharedKeyState::Invalid,
            _ if left.is_zero() => SharedKeyState::Ready,
            TAG_RESTING => SharedKeyState::Resting(left),
            TAG_PARKED => SharedKeyState::Parked(left),
            _ => SharedKeyState::Ready,
        }
    }

    /// Takes the fleet's state of key i (another replica rested, parked or found it
    /// invalid), by the rules of [`report_failure`](Self::report_failure): an absence is
    /// never shortened. Returns the new state when it changed in kind.
    pub(crate) fn apply_shared_state(
        &self,
        i: usize,
        state: SharedKeyState,
        now: Instant,
    ) -> Option<KeyState> {
        match state {
            SharedKeyState::Ready => None,
            SharedKeyState::Resting(d) => self.report_state(i, TAG_RESTING, d, now),
            SharedKeyState::Parked(d) => self.report_state(i, TAG_PARKED, d, now),
            SharedKeyState::Invalid => {
                let before = self.slots.get(i)?.state.swap(INVALID, Ordering::AcqRel);
                (split(before).0 != TAG_INVALID).then_some(KeyState::Invalid)
            }
        }
    }

    /// After an attempt on key i succeeded.
    pub(crate) fn report_success(&self, i: usize) {
        if let Some(slot) = self.slots.get(i) {
            slot.served.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// When the earliest resting/parked key becomes usable again (None if every key is invalid
    /// or none is out).
    pub(crate) fn next_ready(&self, now: Instant) -> Option<Instant> {
        let now_nanos = self.nanos(now);
        let until = self
            .slots
            .iter()
            .filter_map(|s| {
                let (tag, until) = split(s.state.load(Ordering::Acquire));
                (matches!(tag, TAG_RESTING | TAG_PARKED) && until > now_nanos).then_some(until)
            })
            .min()?;
        self.epoch.checked_add(Duration::from_nanos(until))
    }

    /// Every key's label, state and counts, in pool order.
    pub(crate) fn health(&self, now: Instant) -> Vec<KeyHealth> {
        let now = self.nanos(now);
        self.slots
            .iter()
            .map(|s| {
                let (tag, until) = split(s.state.load(Ordering::Acquire));
                let for_ms = ms_between(now, until);
                let state = match tag {
                    TAG_INVALID => KeyState::Invalid,
                    TAG_RESTING if until > now => KeyState::Resting { for_ms },
                    TAG_PARKED if until > now => KeyState::Parked { for_ms },
                    _ => KeyState::Ready,
                };
                KeyHealth {
                    label: s.label.clone(),
                    state,
                    served: s.served.load(Ordering::Relaxed),
                    failures: s.failures.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// `t` as nanoseconds since the epoch (0 before it), as state words count.
    fn nanos(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since).unwrap_or(u64::MAX).min(NANOS_MASK)
    }
}

/// What [`KeyRing::provider`] hands out for a key that does not exist.
#[derive(Debug)]
struct MissingKey {
    name: String,
}

impl MissingKey {
    fn error() -> Error {
        config("no such key in the provider's key pool (an index out of range)")
    }
}

#[async_trait::async_trait]
impl Provider for MissingKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn validate(&self) -> Result<(), Error> {
        Err(MissingKey::error())
    }

    async fn chat(
        &self,
        _req: &crate::types::ChatRequest,
        _model: &str,
        _cx: &crate::provider::CallContext,
    ) -> Result<crate::types::ChatResponse, Error> {
        Err(MissingKey::error())
    }

    async fn chat_stream(
        &self,
        _req: &crate::types::ChatRequest,
        _model: &str,
        _cx: &crate::provider::CallContext,
    ) -> Result<crate::types::ChatStream, Error> {
        Err(MissingKey::error())
    }
}

#[cfg(test)]
#[path = "keys_tests.rs"]
mod tests;
