//! The key pool's unit tests (a file of their own, to keep keys.rs short).

use super::*;
use crate::provider::CallContext;
use crate::types::{ChatRequest, ChatResponse, ChatStream};

const SECRETS: [&str; 3] = ["sk-alpha-0001", "sk-bravo-0002", "sk-charlie-0003"];

/// A provider that takes keys, recording each key it was given.
#[derive(Debug, Default)]
struct Keyed {
    key: String,
    given: Arc<Mutex<Vec<String>>>,
}

/// A provider without a key to swap.
#[derive(Debug)]
struct Keyless;

#[async_trait::async_trait]
impl Provider for Keyed {
    fn name(&self) -> &str {
        "keyed"
    }

    fn validate(&self) -> Result<(), Error> {
        if self.key.contains('\n') {
            return Err(config(
                "the API key has characters an HTTP header cannot hold",
            ));
        }
        Ok(())
    }

    fn with_key(&self, key: ApiKey) -> Option<Arc<dyn Provider>> {
        let key = key.expose().to_owned();
        self.given.lock().ok()?.push(key.clone());
        Some(Arc::new(Keyed {
            key,
            given: Arc::clone(&self.given),
        }))
    }

    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        Err(config("not a real provider"))
    }

    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Err(config("not a real provider"))
    }
}

#[async_trait::async_trait]
impl Provider for Keyless {
    fn name(&self) -> &str {
        "keyless"
    }

    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        Err(config("not a real provider"))
    }

    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Err(config("not a real provider"))
    }
}

fn pool(n: usize) -> KeyPool {
    SECRETS
        .iter()
        .take(n)
        .fold(KeyPool::new(), |p, k| p.key(*k))
}

fn ring(pool: &KeyPool) -> KeyRing {
    KeyRing::new("test", &Keyed::default(), pool).expect("ring")
}

fn picks(ring: &KeyRing, n: usize) -> Vec<usize> {
    let now = Instant::now();
    (0..n)
        .map(|_| ring.pick(now, &[]).expect("a key"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn round_robin_order() {
    let r = ring(&pool(3));
    assert_eq!(r.len(), 3);
    assert_eq!(picks(&r, 7), [0, 1, 2, 0, 1, 2, 0]);
    // A key out of turn is skipped without unbalancing the others.
    let r = ring(&pool(3));
    r.report_failure(1, ErrorKind::RateLimited, None, Instant::now());
    assert_eq!(picks(&r, 6), [0, 2, 0, 2, 0, 2]);
}

#[tokio::test(start_paused = true)]
async fn weighted_proportions() {
    let pool = KeyPool::new()
        .weighted_key(SECRETS[0], 3)
        .weighted_key(SECRETS[1], 1)
        .weighted();
    assert_eq!(pool.strategy(), KeyStrategy::Weighted);
    let r = ring(&pool);
    let seq = picks(&r, 100);
    // Smooth: the light key's turn comes between the heavy key's, not after them all.
    assert_eq!(seq[..4], [0, 0, 1, 0]);
    let heavy = seq.iter().filter(|&&i| i == 0).count();
    assert_eq!((heavy, 100 - heavy), (75, 25));
    // Deterministic: the same pool gives the same sequence.
    assert_eq!(picks(&ring(&pool), 100), seq);
    // A key out of turn leaves the others to share everything.
    r.report_failure(0, ErrorKind::Auth, None, Instant::now());
    assert!(picks(&r, 10).iter().all(|&i| i == 1));
}

#[tokio::test(start_paused = true)]
async fn exclude_skips_keys_already_tried() {
    let now = Instant::now();
    for pool in [pool(3), pool(3).weighted()] {
        let r = ring(&pool);
        assert_eq!(r.pick(now, &[0]), Some(1));
        assert_eq!(r.pick(now, &[0, 1]), Some(2));
        assert_eq!(r.pick(now, &[0, 1, 2]), None);
        assert_eq!(r.pick(now, &[2, 1]), Some(0));
        // Indexes that are not keys are ignored.
        assert!(r.pick(now, &[7, usize::MAX]).is_some());
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limited_rests_for_retry_after_then_comes_back() {
    let r = ring(&pool(2));
    let t0 = Instant::now();
    let state = r.report_failure(0, ErrorKind::RateLimited, Some(Duration::from_secs(2)), t0);
    assert_eq!(state, Some(KeyState::Resting { for_ms: 2000 }));
    assert_eq!(picks(&r, 4), [1, 1, 1, 1]);
    assert_eq!(r.next_ready(t0), Some(t0 + Duration::from_secs(2)));
    assert_eq!(r.health(t0)[0].state, KeyState::Resting { for_ms: 2000 });
    // A shorter rest does not cut the longer one short, nor is it news.
    let again = r.report_failure(0, ErrorKind::RateLimited, Some(Duration::from_secs(1)), t0);
    assert_eq!(again, None);
    tokio::time::advance(Duration::from_millis(1999)).await;
    assert_eq!(r.pick(Instant::now(), &[1]), None);
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_eq!(r.pick(Instant::now(), &[1]), Some(0));
    assert_eq!(r.health(Instant::now())[0].state, KeyState::Ready);
    assert_eq!(r.next_ready(Instant::now()), None);
    // No Retry-After: the default rest.
    let t1 = Instant::now();
    r.report_failure(1, ErrorKind::RateLimited, None, t1);
    assert_eq!(r.next_ready(t1), Some(t1 + DEFAULT_REST));
    // Retry-After: 0 means now: the key stays in.
    assert_eq!(
        r.report_failure(0, ErrorKind::RateLimited, Some(Duration::ZERO), t1),
        None
    );
    assert_eq!(r.pick(t1, &[]), Some(0));
}

#[tokio::test(start_paused = true)]
async fn quota_exhausted_parks_for_the_pool_duration_or_the_reset() {
    let pool = pool(2).park_exhausted_for(Duration::from_secs(600));
    let r = ring(&pool);
    let t0 = Instant::now();
    let state = r.report_failure(0, ErrorKind::QuotaExhausted, None, t0);
    assert_eq!(state, Some(KeyState::Parked { for_ms: 600_000 }));
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(r.pick(Instant::now(), &[1]), None);
    assert_eq!(
        r.health(Instant::now())[0].state,
        KeyState::Parked { for_ms: 1000 }
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(r.pick(Instant::now(), &[1]), Some(0));
    // The vendor's reset wins over the pool's duration.
    let t1 = Instant::now();
    let reset = Some(Duration::from_secs(30));
    let state = r.report_failure(1, ErrorKind::QuotaExhausted, reset, t1);
    assert_eq!(state, Some(KeyState::Parked { for_ms: 30_000 }));
    assert_eq!(r.next_ready(t1), Some(t1 + Duration::from_secs(30)));
    // A resting key that runs out of quota is news: it is parked now.
    r.report_failure(0, ErrorKind::RateLimited, Some(Duration::from_secs(5)), t1);
    let state = r.report_failure(0, ErrorKind::QuotaExhausted, None, t1);
    assert_eq!(state, Some(KeyState::Parked { for_ms: 600_000 }));
    assert_eq!(
        KeyPool::new().park_exhausted_for(DEFAULT_PARK).park,
        KeyPool::new().park
    );
}

#[tokio::test(start_paused = true)]
async fn auth_failure_makes_a_key_invalid_for_good() {
    let r = ring(&pool(2));
    let t0 = Instant::now();
    assert_eq!(
        r.report_failure(1, ErrorKind::Auth, None, t0),
        Some(KeyState::Invalid)
    );
    assert_eq!(r.report_failure(1, ErrorKind::Auth, None, t0), None);
    // Nothing lifts it: time, nor a later throttle or quota report.
    let later = Some(Duration::from_millis(1));
    assert_eq!(r.report_failure(1, ErrorKind::RateLimited, later, t0), None);
    assert_eq!(
        r.report_failure(1, ErrorKind::QuotaExhausted, later, t0),
        None
    );
    tokio::time::advance(Duration::from_secs(1000 * 3600)).await;
    let now = Instant::now();
    assert_eq!(r.pick(now, &[0]), None);
    assert_eq!(r.health(now)[1].state, KeyState::Invalid);
    r.report_failure(0, ErrorKind::Auth, None, now);
    assert_eq!(r.pick(now, &[]), None);
    assert_eq!(r.next_ready(now), None, "every key invalid");
}

#[tokio::test(start_paused = true)]
async fn all_keys_out_pick_none_and_next_ready_says_when() {
    let r = ring(&pool(3));
    let t0 = Instant::now();
    r.report_failure(0, ErrorKind::RateLimited, Some(Duration::from_secs(5)), t0);
    r.report_failure(
        1,
        ErrorKind::QuotaExhausted,
        Some(Duration::from_secs(3)),
        t0,
    );
    r.report_failure(2, ErrorKind::Auth, None, t0);
    assert_eq!(r.pick(t0, &[]), None);
    let at = r.next_ready(t0).expect("a key comes back");
    assert_eq!(at, t0 + Duration::from_secs(3));
    tokio::time::advance(at - t0).await;
    assert_eq!(r.pick(Instant::now(), &[]), Some(1));
    assert_eq!(
        r.next_ready(Instant::now()),
        Some(t0 + Duration::from_secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn counts_and_other_failures() {
    let r = ring(&pool(2));
    let now = Instant::now();
    r.report_success(0);
    r.report_success(0);
    for kind in [
        ErrorKind::Server,
        ErrorKind::Timeout,
        ErrorKind::InvalidRequest,
    ] {
        assert_eq!(
            r.report_failure(0, kind, Some(Duration::from_secs(9)), now),
            None
        );
    }
    let h = r.health(now);
    assert_eq!((h[0].served, h[0].failures), (2, 3));
    assert_eq!((h[1].served, h[1].failures), (0, 0));
    assert_eq!(h[0].state, KeyState::Ready);
    assert_eq!(h[1].label, *r.label(1));
    let json = serde_json::to_value(&h[0]).expect("json");
    assert_eq!(json["state"], serde_json::json!({"state": "ready"}));
    let resting = serde_json::to_value(KeyState::Resting { for_ms: 5 }).expect("json");
    assert_eq!(
        resting,
        serde_json::json!({"state": "resting", "for_ms": 5})
    );
    assert_eq!(json["label"]["index"], 0);
}

#[tokio::test(start_paused = true)]
async fn indexes_out_of_range_do_not_panic() {
    let r = ring(&pool(2));
    let now = Instant::now();
    for i in [2, 99, usize::MAX] {
        assert_eq!(r.report_failure(i, ErrorKind::Auth, None, now), None);
        r.report_success(i);
        assert_eq!(r.label(i).index, usize::MAX);
        let e = r.provider(i).validate().expect_err("no such key");
        assert_eq!(e.kind(), ErrorKind::Config);
    }
    assert_eq!(picks(&r, 2), [0, 1]);
    // Instants before the ring was made count as its start.
    let before = now.checked_sub(Duration::from_secs(5)).unwrap_or(now);
    assert!(r.pick(before, &[]).is_some());
}

#[test]
fn labels_and_fingerprints_are_stable_distinct_and_secret() {
    let keys: Vec<ApiKey> = SECRETS.iter().map(|k| ApiKey::new(*k)).collect();
    let labels: Vec<KeyLabel> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| KeyLabel::new(i, k))
        .collect();
    assert_eq!(labels[0], KeyLabel::new(0, &ApiKey::new(SECRETS[0])));
    // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
    assert_eq!(fingerprint(&ApiKey::new("a")), "af63dc4c");
    for (i, l) in labels.iter().enumerate() {
        assert_eq!(l.fingerprint.len(), 8);
        assert!(l.fingerprint.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(l.to_string(), format!("key#{i} (fp {})", l.fingerprint));
        for other in &labels[i + 1..] {
            assert_ne!(l.fingerprint, other.fingerprint);
        }
    }
    let p = pool(3);
    let shown = format!("{p:?} {:?} {}", labels, labels[0]);
    for (l, secret) in labels.iter().zip(SECRETS) {
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains(&l.fingerprint), "{shown}");
    }
    assert!(shown.contains("keys: 3"), "{shown}");
    let r = ring(&p);
    let shown = format!("{r:?} {:?}", r.health(Instant::now()));
    assert!(SECRETS.iter().all(|s| !shown.contains(s)), "{shown}");
    assert_eq!(r.label(2), &labels[2]);
}

#[test]
fn validate_refuses_bad_pools_without_showing_keys() {
    assert!(pool(3).validate().is_ok());
    assert_eq!(
        (KeyPool::default().len(), KeyPool::default().is_empty()),
        (0, true)
    );
    assert_eq!(KeyPool::default().strategy(), KeyStrategy::RoundRobin);
    assert_eq!(
        pool(2).weighted().round_robin().strategy(),
        KeyStrategy::RoundRobin
    );
    let cases = [
        (KeyPool::new(), "no keys"),
        (pool(1).key(""), "key#1 of the key pool is empty"),
        (pool(1).key("  "), "key#1 of the key pool is empty"),
        (pool(2).weighted_key("sk-zero-weight", 0), "weight 0"),
        (pool(3).key(SECRETS[1]), "is the same key as key#1"),
    ];
    for (pool, expected) in cases {
        let e = pool.validate().expect_err(expected);
        assert_eq!(e.kind(), ErrorKind::Config);
        let shown = format!("{e} {e:?}");
        assert!(shown.contains(expected), "{shown}");
        for secret in SECRETS.iter().chain(&["sk-zero-weight"]) {
            assert!(!shown.contains(secret), "{shown}");
        }
    }
    let e = pool(3).key(SECRETS[1]).validate().expect_err("duplicate");
    let label = KeyLabel::new(3, &ApiKey::new(SECRETS[1]));
    assert!(e.message().contains(&label.to_string()), "{e}");
}

#[test]
fn ring_builds_one_provider_per_key() {
    let base = Keyed::default();
    let r = KeyRing::new("test", &base, &pool(3)).expect("ring");
    let given = base.given.lock().map(|g| g.clone()).unwrap_or_default();
    assert_eq!(given, SECRETS);
    assert_eq!(r.provider(1).name(), "keyed");
    // A provider that cannot swap keys, a bad pool, a key its provider cannot send.
    let e = KeyRing::new("local", &Keyless, &pool(2)).expect_err("no keys to swap");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("\"local\" (keyless)"), "{e}");
    let e = KeyRing::new("test", &base, &KeyPool::new()).expect_err("empty pool");
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().starts_with("provider \"test\""), "{e}");
    let e = KeyRing::new("test", &base, &pool(1).key("sk-bad\nkey")).expect_err("bad key");
    assert_eq!(e.kind(), ErrorKind::Config);
    let label = KeyLabel::new(1, &ApiKey::new("sk-bad\nkey"));
    assert!(e.message().contains(&label.to_string()), "{e}");
    assert!(!format!("{e} {e:?}").contains("sk-bad"), "{e:?}");
}

#[test]
fn concurrent_picks_share_the_keys_evenly() {
    fn shared<T: Send + Sync>(_: &T) {}
    let r = ring(&pool(3));
    shared(&r);
    let now = Instant::now();
    let counts: Vec<AtomicU64> = (0..3).map(|_| AtomicU64::new(0)).collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..3000 {
                    if let Some(i) = r.pick(now, &[]) {
                        counts[i].fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let counts: Vec<u64> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    assert_eq!(counts.iter().sum::<u64>(), 12_000);
    assert!(
        counts.iter().all(|&c| (3500..=4500).contains(&c)),
        "{counts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_reloaded_ring_takes_over_state_and_limiters_of_the_same_keys() {
    let now = Instant::now();
    let limited = |n| pool(n).limit_each(RateLimit::new().requests_per_minute(1));
    let old = ring(&limited(3));
    let _held = old.limiter(0).unwrap().try_acquire(1, now).unwrap();
    old.report_failure(
        1,
        ErrorKind::RateLimited,
        Some(Duration::from_secs(30)),
        now,
    );
    old.report_failure(2, ErrorKind::Auth, None, now);
    old.report_success(0);

    let mut new = ring(&limited(3));
    new.take_over(&old);
    let h = new.health(now);
    assert_eq!((h[0].state.clone(), h[0].served), (KeyState::Ready, 1));
    assert!(matches!(h[1].state, KeyState::Resting { .. }), "{h:?}");
    // Another chance for the invalid key; the failure is still counted.
    assert_eq!((h[2].state.clone(), h[2].failures), (KeyState::Ready, 1));
    // Key 0's minute is spent in the limiter it shares with the old ring.
    assert!(new.limiter(0).unwrap().try_acquire(1, now).is_err());
    assert!(new.limiter(1).unwrap().try_acquire(1, now).is_ok());
    // The rest ends when it would have.
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(new.pick(Instant::now(), &[0, 2]), Some(1));

    // A changed limit starts a fresh limiter; a key the old ring lacks starts fresh.
    let four = pool(3).key("sk-fourth-0000000000000000");
    let mut changed = ring(&four.limit_each(RateLimit::new().requests_per_minute(2)));
    changed.take_over(&old);
    assert!(changed.limiter(0).unwrap().try_acquire(1, now).is_ok());
    assert_eq!(changed.health(now)[3].state, KeyState::Ready);
}
