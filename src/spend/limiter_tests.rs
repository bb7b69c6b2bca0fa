//! The limiter's unit tests (a file of their own, to keep limiter.rs short).

use super::*;

const MIN: Duration = Duration::from_secs(60);

fn limiter(limit: RateLimit) -> Limiter {
    assert!(limit.validate().is_ok(), "{limit:?}");
    Limiter::new(&limit)
}

fn admitted(l: &Limiter, tokens: u32) -> LimitPermit<'_> {
    match l.try_acquire(tokens, Instant::now()) {
        Ok(p) => p,
        Err((at, _)) => panic!("refused until {:?} from now", at - Instant::now()),
    }
}

/// How long from now the limiter says to wait.
fn refused(l: &Limiter, tokens: u32) -> Duration {
    let now = Instant::now();
    match l.try_acquire(tokens, now) {
        Ok(_) => panic!("admitted"),
        Err((at, _)) => at.saturating_duration_since(now),
    }
}

#[tokio::test(start_paused = true)]
async fn rpm_admits_its_burst_then_refuses_until_a_cell_refills() {
    let l = limiter(RateLimit::new().requests_per_minute(3).burst(3));
    for _ in 0..3 {
        drop(admitted(&l, 0));
    }
    // One cell refills every 20 s.
    assert_eq!(refused(&l, 0), Duration::from_secs(20));
    tokio::time::advance(Duration::from_secs(19)).await;
    assert_eq!(refused(&l, 0), Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    drop(admitted(&l, 0));
    assert_eq!(refused(&l, 0), Duration::from_secs(20));
    // A whole minute refills the whole bucket.
    tokio::time::advance(MIN).await;
    for _ in 0..3 {
        drop(admitted(&l, 0));
    }
    assert!(l.try_acquire(0, Instant::now()).is_err());
}

#[tokio::test(start_paused = true)]
async fn tpm_admits_on_estimates_and_charges_the_excess() {
    let l = limiter(RateLimit::new().tokens_per_minute(6000));
    let p = admitted(&l, 4000);
    drop(p);
    // 2000 left: 3000 more needs 1000 to refill, at 100 per second.
    assert_eq!(refused(&l, 3000), Duration::from_secs(10));
    drop(admitted(&l, 2000));
    // The first request used 5000, not 4000: the excess goes into debt.
    l.reconcile(4000, 5000, Instant::now());
    assert_eq!(refused(&l, 1), Duration::from_millis(10_010));
    // Using less than estimated gives nothing back.
    l.reconcile(2000, 10, Instant::now());
    assert_eq!(refused(&l, 1), Duration::from_millis(10_010));
    tokio::time::advance(Duration::from_millis(10_010)).await;
    drop(admitted(&l, 1));
}

#[tokio::test(start_paused = true)]
async fn debt_is_bounded() {
    let l = limiter(RateLimit::new().tokens_per_minute(600));
    drop(admitted(&l, 600));
    l.reconcile(600, 1_000_000, Instant::now());
    // At most two minutes booked ahead, so a token is free again a minute and a cell on.
    assert_eq!(refused(&l, 1), MIN + Duration::from_millis(100));
}

#[tokio::test(start_paused = true)]
async fn a_request_larger_than_the_bucket_waits_for_a_full_bucket() {
    let l = limiter(RateLimit::new().tokens_per_minute(1000));
    drop(admitted(&l, 10));
    // Not refused for ever: admitted once the bucket is full again.
    assert_eq!(refused(&l, 5000), Duration::from_millis(600));
    tokio::time::advance(Duration::from_millis(600)).await;
    drop(admitted(&l, 5000));
    // Charged in full: 4000 of debt on an empty bucket, capped at two minutes booked.
    assert_eq!(refused(&l, 1), MIN + Duration::from_millis(60));
}

#[tokio::test(start_paused = true)]
async fn a_refusal_takes_nothing_from_the_other_limits() {
    let l = limiter(
        RateLimit::new()
            .requests_per_minute(2)
            .burst(2)
            .tokens_per_minute(100),
    );
    drop(admitted(&l, 100));
    // TPM refuses: the request cell taken for it is given back.
    for _ in 0..5 {
        assert!(l.try_acquire(100, Instant::now()).is_err());
    }
    drop(admitted(&l, 0));
    assert_eq!(refused(&l, 0), Duration::from_secs(30));
    // Concurrency refuses: no request or token cell is taken.
    let l = limiter(
        RateLimit::new()
            .requests_per_minute(2)
            .burst(2)
            .tokens_per_minute(100)
            .max_concurrent(1),
    );
    let held = admitted(&l, 50);
    for _ in 0..5 {
        assert_eq!(refused(&l, 50), CONCURRENCY_POLL);
    }
    drop(held);
    drop(admitted(&l, 50));
}

#[tokio::test(start_paused = true)]
async fn concurrency_slots_come_back_when_permits_drop() {
    let l = limiter(RateLimit::new().max_concurrent(2));
    let a = admitted(&l, 0);
    let b = admitted(&l, 0);
    assert_eq!(l.status(Instant::now()).in_flight, 2);
    assert_eq!(refused(&l, 0), CONCURRENCY_POLL);
    drop(a);
    assert_eq!(l.status(Instant::now()).in_flight, 1);
    let c = admitted(&l, 0);
    drop((b, c));
    assert_eq!(l.status(Instant::now()).in_flight, 0);
    // Without a concurrency limit, requests in flight are still counted.
    let l = limiter(RateLimit::new().requests_per_minute(10));
    let p = admitted(&l, 0);
    assert_eq!(l.status(Instant::now()).in_flight, 1);
    drop(p);
    assert_eq!(l.status(Instant::now()).in_flight, 0);
}

#[tokio::test(start_paused = true)]
async fn vendor_headers_hold_the_limiter() {
    let l = limiter(RateLimit::new().requests_per_minute(100).burst(2));
    let info = RateLimitInfo {
        limit_requests: Some(50),
        remaining_requests: Some(0),
        reset_requests: Some(Duration::from_secs(7)),
        ..RateLimitInfo::default()
    };
    l.observe(&info, Instant::now());
    assert_eq!(refused(&l, 0), Duration::from_secs(7));
    let status = l.status(Instant::now());
    assert_eq!(status.held_for, Some(Duration::from_secs(7)));
    assert_eq!(status.last_vendor_info, Some(info));
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(l.status(Instant::now()).held_for, None);
    drop(admitted(&l, 0));
    // Requests left: no hold, whatever the reset.
    l.observe(
        &RateLimitInfo {
            remaining_requests: Some(1),
            reset_requests: Some(MIN),
            ..RateLimitInfo::default()
        },
        Instant::now(),
    );
    drop(admitted(&l, 0));
}

#[tokio::test(start_paused = true)]
async fn few_tokens_left_hold_until_the_tokens_reset() {
    let l = limiter(RateLimit::new().max_concurrent(4));
    let tokens = |left: u64, limit: u64| RateLimitInfo {
        limit_tokens: Some(limit),
        remaining_tokens: Some(left),
        reset_tokens: Some(Duration::from_secs(3)),
        ..RateLimitInfo::default()
    };
    // Nothing known of a typical request yet: only none left holds.
    l.observe(&tokens(10, 1000), Instant::now());
    drop(admitted(&l, 0));
    l.reconcile(0, 500, Instant::now());
    l.observe(&tokens(600, 1000), Instant::now());
    drop(admitted(&l, 0));
    l.observe(&tokens(400, 1000), Instant::now());
    assert_eq!(refused(&l, 0), Duration::from_secs(3));
    tokio::time::advance(Duration::from_secs(3)).await;
    // A full allowance smaller than a typical request does not hold.
    l.observe(&tokens(300, 300), Instant::now());
    drop(admitted(&l, 0));
    l.observe(&tokens(0, 300), Instant::now());
    assert_eq!(refused(&l, 0), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_and_holds_only_extend() {
    let l = limiter(RateLimit::new().requests_per_minute(100));
    let now = Instant::now();
    l.hold(now + Duration::from_secs(5));
    l.hold(now + Duration::from_secs(2));
    assert_eq!(refused(&l, 0), Duration::from_secs(5));
    // A hold in the past does nothing.
    tokio::time::advance(Duration::from_secs(5)).await;
    l.hold(now);
    drop(admitted(&l, 0));
    let full = BucketStatus {
        per_minute: 100,
        burst: 1,
        remaining: 1,
        next_cell_in: None,
    };
    assert_eq!(
        l.status(Instant::now()),
        LimiterStatus {
            requests: Some(BucketStatus {
                remaining: 0,
                next_cell_in: Some(Duration::from_millis(600)),
                ..full
            }),
            tokens: None,
            max_concurrent: None,
            in_flight: 0,
            held_for: None,
            last_vendor_info: None,
            fleet_slots: None,
            fleet_tokens: None,
        }
    );
}

/// The most requests admitted in any 60 s window (`[t, t + 60 s)`) by a limiter asked
/// every 10 ms for 3 minutes from a cold start.
async fn busiest_minute(limit: RateLimit) -> usize {
    let l = limiter(limit);
    let start = Instant::now();
    let mut admitted: Vec<Duration> = Vec::new();
    while start.elapsed() < 3 * MIN {
        if l.try_acquire(0, Instant::now()).is_ok() {
            admitted.push(start.elapsed());
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    (0..admitted.len())
        .map(|i| {
            admitted[i..]
                .iter()
                .take_while(|t| **t < admitted[i] + MIN)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(start_paused = true)]
async fn any_minute_sees_at_most_rpm_plus_burst_minus_one() {
    assert_eq!(
        busiest_minute(RateLimit::new().requests_per_minute(60)).await,
        60
    );
    for burst in [1, 2, 10, 60] {
        let limit = RateLimit::new().requests_per_minute(60).burst(burst);
        assert_eq!(
            busiest_minute(limit).await,
            59 + burst as usize,
            "burst {burst}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn status_shows_cells_left_and_the_next_one() {
    let l = limiter(
        RateLimit::new()
            .requests_per_minute(6)
            .burst(3)
            .tokens_per_minute(600)
            .max_concurrent(4),
    );
    let s = l.status(Instant::now());
    let requests = |remaining, next: Option<u64>| BucketStatus {
        per_minute: 6,
        burst: 3,
        remaining,
        next_cell_in: next.map(Duration::from_millis),
    };
    assert_eq!(s.requests, Some(requests(3, None)));
    assert_eq!(s.max_concurrent, Some(4));
    drop(admitted(&l, 100));
    drop(admitted(&l, 0));
    let s = l.status(Instant::now());
    // Two cells out, each back 10 s after the one before.
    assert_eq!(s.requests, Some(requests(1, Some(10_000))));
    let tokens = s.tokens.unwrap();
    assert_eq!((tokens.burst, tokens.remaining), (600, 500));
    assert_eq!(tokens.next_cell_in, Some(Duration::from_millis(100)));
    tokio::time::advance(Duration::from_millis(12_500)).await;
    assert_eq!(
        l.status(Instant::now()).requests,
        Some(requests(2, Some(7_500)))
    );
    drop(admitted(&l, 0));
    drop(admitted(&l, 0));
    assert_eq!(
        l.status(Instant::now()).requests,
        Some(requests(0, Some(7_500)))
    );
    // In debt: the next cell that counts is the one that lets a request through.
    l.reconcile(0, 1500, Instant::now());
    let tokens = l.status(Instant::now()).tokens.unwrap();
    assert_eq!(tokens.remaining, 0);
    assert_eq!(
        tokens.next_cell_in,
        // Booked two minutes ahead (the cap); a token fits again once that is down to
        // 599 cells: 120 s - 59.9 s.
        Some(Duration::from_millis(60_100)),
    );
    let json = serde_json::to_value(l.status(Instant::now())).unwrap();
    assert_eq!(json["requests"]["next_cell_in_ms"], 7_500);
    assert_eq!(json["held_for_ms"], serde_json::Value::Null);
}

#[test]
fn builder_getters_and_validation() {
    let l = RateLimit::new();
    assert_eq!(l, RateLimit::default());
    assert_eq!(l.when_limited(), WhenLimited::FailOver);
    assert_eq!((l.rpm(), l.tpm(), l.concurrency()), (None, None, None));
    assert_eq!(l.request_burst(), None);
    assert_eq!(
        RateLimit::new().requests_per_minute(9).request_burst(),
        Some(DEFAULT_BURST)
    );
    assert_eq!(l.validate().map_err(|e| e.kind()), Err(ErrorKind::Config));
    let l = RateLimit::new()
        .requests_per_minute(1)
        .tokens_per_minute(2)
        .max_concurrent(3)
        .wait_up_to(Duration::from_secs(4));
    assert_eq!(
        (l.rpm(), l.tpm(), l.concurrency()),
        (Some(1), Some(2), Some(3))
    );
    assert_eq!(l.when_limited(), WhenLimited::Wait(Duration::from_secs(4)));
    assert_eq!(l.clone().fail_over().when_limited(), WhenLimited::FailOver);
    assert!(l.validate().is_ok());
    for bad in [
        RateLimit::new().requests_per_minute(0),
        RateLimit::new().tokens_per_minute(0).max_concurrent(1),
        RateLimit::new().max_concurrent(0),
        RateLimit::new()
            .requests_per_minute(1)
            .wait_up_to(Duration::ZERO),
        RateLimit::new().requests_per_minute(5).burst(0),
        RateLimit::new().requests_per_minute(5).burst(6),
        RateLimit::new().max_concurrent(5).burst(1),
    ] {
        let e = bad.validate().err();
        assert_eq!(
            e.as_ref().map(Error::kind),
            Some(ErrorKind::Config),
            "{bad:?}"
        );
    }
    // A zero limit that slipped past validation limits nothing.
    let zero = RateLimit::new().requests_per_minute(0).max_concurrent(0);
    let l = Limiter::new(&zero);
    assert_eq!(l.limit(), &zero);
    assert!(l.try_acquire(5, Instant::now()).is_ok());
}

#[test]
fn shared_across_threads() {
    fn is_send_sync<T: Send + Sync>() {}
    is_send_sync::<Limiter>();
    is_send_sync::<LimitPermit>();
}

#[tokio::test(start_paused = true)]
async fn a_refusal_says_which_bucket_refused() {
    let by = |l: &Limiter, tokens: u32| match l.try_acquire(tokens, Instant::now()) {
        Ok(_) => panic!("admitted"),
        Err((_, by)) => by,
    };
    let rpm = limiter(RateLimit::new().requests_per_minute(1));
    drop(admitted(&rpm, 0));
    assert_eq!(by(&rpm, 0), LimitedBy::Requests);
    let tpm = limiter(RateLimit::new().tokens_per_minute(100));
    drop(admitted(&tpm, 100));
    assert_eq!(by(&tpm, 50), LimitedBy::Tokens);
    let conc = limiter(RateLimit::new().max_concurrent(1));
    let _held = admitted(&conc, 0);
    assert_eq!(by(&conc, 0), LimitedBy::Concurrency);
    let held = limiter(RateLimit::new().requests_per_minute(100));
    held.hold(Instant::now() + Duration::from_secs(5));
    assert_eq!(by(&held, 0), LimitedBy::VendorHold);
}
