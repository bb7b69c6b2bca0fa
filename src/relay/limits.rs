//! Reading limits and budgets while they work: [`Relay::limits`].

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::time::Instant;

use super::Relay;
use crate::spend::budget::BudgetStatus;
use crate::spend::keys::KeyHealth;
use crate::spend::limiter::{Limiter, LimiterStatus, millis, millis_some};
use crate::types::KeyState;

/// What the relay's rate limits, key pools and budgets are doing now ([`Relay::limits`]):
/// how much each has left and when it gets more. Serializes to the JSON a `/limits` page
/// shows, durations as whole milliseconds rounded up (`*_ms`). Every list is empty when
/// nothing of its kind is configured (the default).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LimitsSnapshot {
    /// Each target's own limiter (`rate_limit("provider/model", ..)`), sorted by name.
    pub targets: Vec<NamedLimiter>,
    /// Each provider-wide limiter (`rate_limit("provider", ..)`), sorted by name.
    pub providers: Vec<NamedLimiter>,
    /// Each provider's key pool, sorted by provider.
    pub key_pools: Vec<KeyPoolLimits>,
    /// Each budget, in the order they were configured.
    pub budgets: Vec<BudgetLimits>,
}

/// One rate limiter and what it limits: its requests and tokens buckets (limit, burst, cells
/// left, next cell), its concurrency and any hold the vendor asked for.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct NamedLimiter {
    /// `provider/model` for a target's limiter, `provider` for a provider's.
    pub name: String,
    /// Its state.
    #[serde(flatten)]
    pub status: LimiterStatus,
}

/// A provider's key pool: each key's state and its own limiter.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KeyPoolLimits {
    /// The provider the pool belongs to.
    pub provider: String,
    /// The keys, in pool order.
    pub keys: Vec<KeyLimits>,
}

/// One key of a pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KeyLimits {
    /// Its label (index and fingerprint, never the key), state and counts.
    #[serde(flatten)]
    pub health: KeyHealth,
    /// When a resting or parked key is usable again, from now (`returns_in_ms`); `None`
    /// when it is ready, or invalid (never).
    #[serde(rename = "returns_in_ms", serialize_with = "millis_some")]
    pub returns_in: Option<Duration>,
    /// Its own limiter (the pool's `limit_each`), if the pool sets one.
    pub limiter: Option<LimiterStatus>,
}

/// One budget's window: its limit, what is spent and reserved, the window and its reset.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BudgetLimits {
    /// The budget's status (name, unit, limit, spent, reserved, period, rolling, resets_at).
    #[serde(flatten)]
    pub status: BudgetStatus,
    /// How long until the window resets (`resets_in_ms`): a calendar window's end, or when
    /// a rolling window's oldest spend leaves it (zero when nothing is spent).
    #[serde(rename = "resets_in_ms", serialize_with = "millis")]
    pub resets_in: Duration,
}

impl Relay {
    /// What the relay's limits are doing now: per rate limiter (each target's, each
    /// provider's and each pool key's) its requests-per-minute and tokens-per-minute
    /// buckets (limit, burst, cells left, when the next cell comes) and its requests in
    /// flight against its concurrency limit; per pool key its state and when it returns;
    /// per budget its limit, spent, reserved, window and reset. A configured target limit
    /// no call has used yet shows a full bucket. Reading it changes nothing.
    pub fn limits(&self) -> LimitsSnapshot {
        let now = Instant::now();
        let inner = self.current();
        let registry = &inner.registry;
        let mut targets: Vec<NamedLimiter> = registry
            .all()
            .iter()
            .filter_map(|s| {
                let status = s.limiter.as_ref()?.status(now);
                Some(named(s.id.to_string(), status))
            })
            .collect();
        let mut providers = Vec::new();
        for (name, limit) in &registry.rate_limits {
            if !name.contains('/') {
                if let Some(l) = registry.provider_limiter(name) {
                    providers.push(named(name.clone(), l.status(now)));
                }
            } else if !targets.iter().any(|t| &t.name == name) {
                // Not registered until a call uses it: as it will start, full.
                targets.push(named(name.clone(), Limiter::new(limit).status(now)));
            }
        }
        targets.sort_by(|a, b| a.name.cmp(&b.name));
        providers.sort_by(|a, b| a.name.cmp(&b.name));
        let mut key_pools: Vec<KeyPoolLimits> = inner
            .keys
            .iter()
            .map(|(provider, ring)| KeyPoolLimits {
                provider: provider.clone(),
                keys: ring
                    .health(now)
                    .into_iter()
                    .enumerate()
                    .map(|(i, health)| KeyLimits {
                        returns_in: match health.state {
                            KeyState::Resting { for_ms } | KeyState::Parked { for_ms } => {
                                Some(Duration::from_millis(for_ms))
                            }
                            _ => None,
                        },
                        limiter: ring.limiter(i).map(|l| l.status(now)),
                        health,
                    })
                    .collect(),
            })
            .collect();
        key_pools.sort_by(|a, b| a.provider.cmp(&b.provider));
        let budgets = inner.acct.budgets.as_ref().map_or_else(Vec::new, |b| {
            let clock_now = b.now();
            b.status()
                .into_iter()
                .map(|status| BudgetLimits {
                    resets_in: until(status.resets_at, clock_now),
                    status,
                })
                .collect()
        });
        LimitsSnapshot {
            targets,
            providers,
            key_pools,
            budgets,
        }
    }
}

fn named(name: String, status: LimiterStatus) -> NamedLimiter {
    NamedLimiter { name, status }
}

/// From `now` to `at`; zero when `at` has passed.
fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or_default()
}
