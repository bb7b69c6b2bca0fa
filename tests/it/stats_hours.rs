//! The stats by UTC hour and the log of the latest failovers (issue 23, point 4), on tokio's
//! paused clock with in-process providers: the hours turn as the test advances the clock.

use std::time::{Duration, SystemTime};

use polyrelay::accounting::{MAX_FAILOVER_RECORDS, STATS_HOURS};
use polyrelay::{
    BreakerPolicy, CallContext, Chain, ChatRequest, ChatResponse, ChatStream, Error, ErrorKind,
    Price, Relay, RetryPolicy, Target,
};

use crate::support::FixedProvider;

/// Fails every call with a 500 after 10 ms.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl polyrelay::Provider for Down {
    fn name(&self) -> &str {
        "down"
    }
    async fn chat(&self, _: &ChatRequest, _: &str, _: &CallContext) -> Result<ChatResponse, Error> {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Err(Error::new(ErrorKind::Server, "down for maintenance").with_status(500))
    }
    async fn chat_stream(
        &self,
        _: &ChatRequest,
        _: &str,
        _: &CallContext,
    ) -> Result<ChatStream, Error> {
        Err(Error::new(
            ErrorKind::InvalidRequest,
            "Down does not stream",
        ))
    }
}

/// $1 per million tokens each way: a FixedProvider call (10 in, 5 out) costs $0.000015.
fn priced(provider: &str, model: &str) -> Target {
    Target::new(provider, model).price(Price::per_million(1.0, 1.0))
}

fn relay() -> Relay {
    Relay::builder()
        .provider("fixed", FixedProvider)
        .provider("down", Down)
        .route("r", Chain::new().target(priced("fixed", "m")))
        .route(
            "fo",
            Chain::new()
                .target(priced("down", "a"))
                .target(priced("fixed", "m"))
                .retry(RetryPolicy::no_retries()),
        )
        .route(
            "retried",
            Chain::new()
                .target(priced("down", "a"))
                .target(priced("fixed", "m"))
                .retry(RetryPolicy::default().max_attempts(2)),
        )
        .route(
            "dead",
            Chain::new()
                .target(priced("down", "a"))
                .target(priced("down", "b"))
                .retry(RetryPolicy::no_retries()),
        )
        .breaker(BreakerPolicy::disabled())
        .build()
        .unwrap()
}

async fn call(relay: &Relay, route: &str, intent: &str) -> Result<ChatResponse, Error> {
    relay
        .chat(ChatRequest::new(route).user("x").intent(intent))
        .await
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test(start_paused = true)]
async fn each_row_keeps_the_last_24_utc_hours_with_exact_costs() {
    let before = unix_secs();
    let relay = relay();
    for intent in ["billing", "billing", "refund"] {
        call(&relay, "r", intent).await.unwrap();
    }
    let s = relay.stats();
    assert_eq!(s.hours.len(), 1, "{:#?}", s.hours);
    let h0 = &s.hours[0];
    // A UTC hour, the one the calls ended in.
    assert_eq!(h0.start % 3600, 0);
    assert!(
        h0.start <= unix_secs() && h0.start + 3600 > before,
        "{} against {before}",
        h0.start
    );
    let rows: Vec<_> = h0
        .rows
        .iter()
        .map(|r| (r.query_type.as_deref(), r.requests, r.successes, r.cost))
        .collect();
    // Money to the nano-dollar, as /stats writes it: 2 × $0.000015 is 0.00003, not noise.
    assert_eq!(
        rows,
        [
            (Some("billing"), 2, 2, 0.00003),
            (Some("refund"), 1, 1, 0.000015)
        ]
    );
    assert_eq!(h0.cost(), 0.000045);
    assert_eq!(h0.rows[0].route, "r");
    assert_eq!(
        (h0.rows[0].provider.as_str(), h0.rows[0].model.as_str()),
        ("fixed", "m")
    );

    // An hour on, a failover: the new hour has its own bucket, with the failed attempt.
    tokio::time::advance(HOUR).await;
    call(&relay, "fo", "billing").await.unwrap();
    let s = relay.stats();
    assert_eq!(s.hours.len(), 2, "{:#?}", s.hours);
    assert_eq!(s.hours[0], *h0, "the past hour does not change");
    let h1 = &s.hours[1];
    assert_eq!(h1.start, h0.start + 3600);
    let down = h1.rows.iter().find(|r| r.provider == "down").unwrap();
    assert_eq!(
        (down.requests, down.errors, down.failovers_out, down.cost),
        (1, 1, 1, 0.0)
    );
    let fixed = h1.rows.iter().find(|r| r.provider == "fixed").unwrap();
    assert_eq!((fixed.route.as_str(), fixed.successes), ("fo", 1));

    // 23 hours later the first hour has left the day; its ring entry, reused by this hour,
    // holds only this hour's call.
    tokio::time::advance(23 * HOUR).await;
    call(&relay, "r", "billing").await.unwrap();
    let s = relay.stats();
    let starts: Vec<u64> = s.hours.iter().map(|h| h.start).collect();
    assert_eq!(
        starts,
        [h0.start + 3600, h0.start + 24 * 3600],
        "{:#?}",
        s.hours
    );
    assert_eq!(s.hours[1].rows.len(), 1);
    assert_eq!(s.hours[1].rows[0].requests, 1);
    // The totals still count everything.
    assert_eq!(s.totals().requests, 3 + 2 + 1);
    // At most STATS_HOURS buckets however long it runs.
    for _ in 0..30 {
        tokio::time::advance(HOUR).await;
        call(&relay, "r", "billing").await.unwrap();
    }
    assert_eq!(relay.stats().hours.len(), STATS_HOURS);

    relay.reset_stats();
    assert!(relay.stats().hours.is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_latest_failovers_are_kept_with_their_targets_and_reasons() {
    let relay = relay();
    let start = unix_secs() * 1000;
    call(&relay, "r", "billing").await.unwrap();
    assert!(relay.stats().failovers.is_empty(), "no failover yet");

    call(&relay, "fo", "billing").await.unwrap();
    let f = relay.stats().failovers;
    assert_eq!(f.len(), 1, "{f:#?}");
    let r = &f[0];
    assert_eq!(
        (
            r.route.as_str(),
            r.query_type.as_deref(),
            r.from.as_str(),
            r.to.as_deref(),
            r.error.as_str(),
            r.status,
            r.tries
        ),
        (
            "fo",
            Some("billing"),
            "down/a",
            Some("fixed/m"),
            "server_error",
            Some(500),
            1
        )
    );
    // When the failed try ended: 10 ms into the call (the paused clock adds nothing else).
    assert!(
        r.at_ms >= start && r.at_ms < start + 60_000,
        "{} against {start}",
        r.at_ms
    );

    // A target tried twice before the call moved on.
    tokio::time::advance(Duration::from_secs(60)).await;
    call(&relay, "retried", "refund").await.unwrap();
    let f = relay.stats().failovers;
    assert_eq!(f.len(), 2);
    assert_eq!(
        (f[0].route.as_str(), f[0].tries),
        ("retried", 2),
        "newest first"
    );
    assert!(f[0].at_ms >= f[1].at_ms + 60_000, "{f:#?}");

    // Nothing left: the call moves from a to b, then fails at b with nowhere to go.
    tokio::time::advance(Duration::from_secs(60)).await;
    let e = call(&relay, "dead", "billing").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AllTargetsFailed, "{e}");
    let f = relay.stats().failovers;
    let dead: Vec<_> = f
        .iter()
        .filter(|r| r.route == "dead")
        .map(|r| (r.from.as_str(), r.to.as_deref()))
        .collect();
    assert_eq!(dead, [("down/b", None), ("down/a", Some("down/b"))]);

    // Bounded: the latest MAX_FAILOVER_RECORDS, newest first.
    for _ in 0..MAX_FAILOVER_RECORDS + 10 {
        tokio::time::advance(Duration::from_secs(1)).await;
        call(&relay, "fo", "billing").await.unwrap();
    }
    let f = relay.stats().failovers;
    assert_eq!(f.len(), MAX_FAILOVER_RECORDS);
    assert!(f.iter().all(|r| r.route == "fo"), "the oldest were dropped");
    assert!(
        f.windows(2).all(|w| w[0].at_ms > w[1].at_ms),
        "newest first"
    );
    // The row counts agree with the log's length for the route (every one kept).
    relay.reset_stats();
    assert!(relay.stats().failovers.is_empty());
}
