//! An access token cached until minutes before it expires, refreshed once for every call
//! waiting on it (single flight).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::secret::ApiKey;
use crate::types::Error;

/// How long before its expiry a token is refreshed: google-auth's 3 min 45 s
/// (`google/auth/_helpers.py` `REFRESH_THRESHOLD`), or half the token's lifetime for a token
/// that lives shorter than twice that.
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(225);

/// The lifetime assumed for a token whose answer named none.
pub(crate) const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// A token as a token source handed it out.
pub(crate) struct Fetched {
    pub(crate) token: ApiKey,
    /// `expires_in` (`None`: the answer said nothing, [`DEFAULT_LIFETIME`] is assumed).
    pub(crate) expires_in: Option<Duration>,
}

#[derive(Clone)]
struct Cached {
    token: ApiKey,
    /// When to fetch a new one.
    refresh_at: Instant,
}

/// The cached token and the one refresh in flight.
///
/// The fast path reads the cached token under a short lock. A call that finds none (or a
/// stale one) queues on the refresh lock; the first fetches, and every call that was
/// waiting meanwhile takes the outcome of that fetch — the new token, or its error — instead
/// of fetching again: 100 calls at expiry make one token request, and a failing token
/// endpoint is asked once per burst, not once per waiting call.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: Mutex<Option<Cached>>,
    /// The outcome of the last fetch, for the calls that waited on it.
    last: tokio::sync::Mutex<Option<Result<ApiKey, Error>>>,
    /// Fetches finished so far.
    fetches: AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The cached token if it is not due for refresh.
    fn fresh(&self) -> Option<ApiKey> {
        let now = Instant::now();
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|c| now < c.refresh_at)
            .map(|c| c.token.clone())
    }

    /// The token: the cached one, or the outcome of one `fetch` shared with every call that
    /// waited for it.
    pub(crate) async fn get<F, Fut>(&self, fetch: F) -> Result<ApiKey, Error>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Fetched, Error>>,
    {
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        let seen = self.fetches.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        if let Some(token) = self.fresh() {
            return Ok(token);
        }
        if self.fetches.load(Ordering::Acquire) != seen
            && let Some(outcome) = last.as_ref()
        {
            // A fetch finished while this call waited: its outcome is this call's too.
            return outcome.clone();
        }
        let outcome = fetch().await.map(|f| {
            let cached = Cached {
                refresh_at: refresh_at(Instant::now(), f.expires_in),
                token: f.token,
            };
            let token = cached.token.clone();
            *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(cached);
            token
        });
        *last = Some(outcome.clone());
        self.fetches.fetch_add(1, Ordering::Release);
        outcome
    }

    /// Drops the cached token (the vendor refused it): the next call fetches a new one.
    pub(crate) fn invalidate(&self) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// When a token obtained at `now` and valid for `expires_in` is refreshed.
fn refresh_at(now: Instant, expires_in: Option<Duration>) -> Instant {
    let lifetime = expires_in.unwrap_or(DEFAULT_LIFETIME);
    let margin = REFRESH_MARGIN.min(lifetime / 2);
    now.checked_add(lifetime.saturating_sub(margin))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::ErrorKind;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn fetched(token: &str, secs: u64) -> Fetched {
        Fetched {
            token: ApiKey::new(token),
            expires_in: Some(Duration::from_secs(secs)),
        }
    }

    #[test]
    fn refreshes_minutes_before_expiry() {
        let now = Instant::now();
        let hour = refresh_at(now, Some(Duration::from_secs(3599)));
        assert_eq!(hour - now, Duration::from_secs(3599 - 225));
        assert!(Duration::from_secs(3599) - (hour - now) >= Duration::from_secs(180));
        assert_eq!(
            refresh_at(now, Some(Duration::from_secs(100))) - now,
            Duration::from_secs(50)
        );
        assert_eq!(refresh_at(now, None) - now, Duration::from_secs(3600 - 225));
        assert_eq!(refresh_at(now, Some(Duration::ZERO)), now);
        assert_eq!(refresh_at(now, Some(Duration::MAX)), now);
    }

    #[tokio::test(start_paused = true)]
    async fn cached_until_the_margin_then_one_fetch_for_all_waiters() {
        let cache = Arc::new(TokenCache::default());
        let first = cache
            .get(|| async { Ok(fetched("one", 3600)) })
            .await
            .expect("token");
        assert_eq!(first.expose(), "one");

        // Fresh: no fetch.
        tokio::time::advance(Duration::from_secs(3600 - 226)).await;
        let again = cache
            .get(|| async { panic!("fetched a fresh token again") })
            .await
            .expect("token");
        assert_eq!(again.expose(), "one");

        // Due: 100 calls at once.
        tokio::time::advance(Duration::from_secs(2)).await;
        let (outcomes, fetches) = burst(&cache, 100, || Ok(fetched("two", 3600))).await;
        for token in outcomes {
            assert_eq!(token.expect("token").expose(), "two");
        }
        assert_eq!(fetches, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_fetch_is_shared_by_its_waiters_and_retried_by_the_next_call() {
        let cache = Arc::new(TokenCache::default());
        let (outcomes, fetches) = burst(&cache, 10, || {
            Err(Error::new(ErrorKind::Auth, "token endpoint down"))
        })
        .await;
        for e in outcomes {
            let e = e.expect_err("shared failure");
            assert_eq!(e.kind(), ErrorKind::Auth);
        }
        assert_eq!(fetches, 1);
        // A later call tries again.
        let token = cache
            .get(|| async { Ok(fetched("back", 3600)) })
            .await
            .expect("token");
        assert_eq!(token.expose(), "back");
    }

    /// `n` calls at once, each fetching `outcome` behind a gate that opens once every call
    /// waits (and stays open, so that a second fetch shows as a count, not a hang): their
    /// outcomes and the number of fetches made. Asserts that one fetch ran while all waited.
    async fn burst(
        cache: &Arc<TokenCache>,
        n: usize,
        outcome: fn() -> Result<Fetched, Error>,
    ) -> (Vec<Result<ApiKey, Error>>, usize) {
        let fetches = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let calls: Vec<_> = (0..n)
            .map(|_| {
                let (cache, fetches, gate) = (cache.clone(), fetches.clone(), gate.clone());
                tokio::spawn(async move {
                    cache
                        .get(|| async move {
                            fetches.fetch_add(1, Ordering::SeqCst);
                            let _open = gate.acquire().await;
                            outcome()
                        })
                        .await
                })
            })
            .collect();
        // Every task runs until it waits (the paused clock only moves when all are idle).
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch while all wait"
        );
        gate.add_permits(1);
        let mut outcomes = Vec::with_capacity(n);
        for call in calls {
            outcomes.push(call.await.expect("task"));
        }
        (outcomes, fetches.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn invalidate_forces_a_new_fetch() {
        let cache = TokenCache::default();
        let t = cache.get(|| async { Ok(fetched("a", 3600)) }).await;
        assert_eq!(t.expect("a").expose(), "a");
        cache.invalidate();
        let t = cache.get(|| async { Ok(fetched("b", 3600)) }).await;
        assert_eq!(t.expect("b").expose(), "b");
    }
}
