//! The fault soak: a primary that fails at random in every way a vendor can (5xx, 429 with
//! `Retry-After`, hangs, resets, cut streams, malformed events, empty 200s), a healthy
//! fallback, plain and streamed calls at once. Every call must complete with the whole
//! answer, inside its deadline; none may end truncated or empty and count as a success.
//!
//! A few thousand calls by default; `POLYRELAY_SOAK_CALLS=20000` (and
//! `POLYRELAY_SOAK_CONCURRENCY`, default 64) for the full soak.

use crate::support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use polyrelay::{Chain, ChatRequest, MidStreamRecovery, Relay, RetryPolicy, Target};
use support::*;

const ANSWER: &str = "Your order ships today from the Köln warehouse.";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One of the primary's failures, or (one time in five) a good answer.
fn primary_reply(rng: &mut fastrand::Rng) -> Reply {
    match rng.u8(0..12) {
        0 => Reply::text("x").status(500),
        1 => Reply::text("x").status(503),
        2 => Reply::openai_error(429, "requests", None, "Rate limit reached")
            .header("retry-after", "1"),
        3 => Reply::hang(),
        4 => Reply::reset(),
        // Streams cut after some content; plain answers cut the same way.
        5 => Reply::text(ANSWER).cut_after(2),
        6 => Reply::sse([
            "data: {\"choices\":[{\"delta\":{\"content\":\n\n",
            "data: [DONE]\n\n",
        ]),
        7 => Reply::json(200, "{}"),
        8 => Reply::json(200, r#"{"id":"x","object":"chat.completion","choices":[]}"#),
        9 => Reply::raw(200, "text/html", "<html>gateway</html>"),
        _ => Reply::text(ANSWER),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_completes_whole_while_the_primary_fails_at_random() {
    let calls = env_usize("POLYRELAY_SOAK_CALLS", 2000);
    let concurrency = env_usize("POLYRELAY_SOAK_CONCURRENCY", 64).max(1);
    let sim = Simulator::start().await.expect("simulator starts");
    let mut rng = fastrand::Rng::with_seed(19);
    // Enough scripted replies for every try of the primary (the last one stays).
    sim.script("primary", (0..calls * 2).map(|_| primary_reply(&mut rng)));
    sim.script("fallback", [Reply::text(ANSWER)]);
    let deadline = Duration::from_secs(15);
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route(
            "support",
            Chain::new()
                .target(
                    Target::new("sim", "primary")
                        .first_token_timeout(Duration::from_millis(400))
                        .retry(RetryPolicy::no_retries()),
                )
                .target("sim/fallback")
                .total_timeout(deadline)
                .mid_stream_recovery(MidStreamRecovery::Restart),
        )
        .build()
        .expect("valid relay");
    let relay = Arc::new(relay);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (relay, next) = (relay.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut failures: Vec<String> = Vec::new();
            let mut slowest = Duration::ZERO;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                let req = ChatRequest::new("support").user("Where is my order?");
                let started = Instant::now();
                let outcome = if i % 2 == 0 {
                    relay.chat(&req).await.map(|r| r.text().to_string())
                } else {
                    match relay.chat_stream(&req).await {
                        Ok(stream) => stream.into_response().await.map(|r| r.text().to_string()),
                        Err(e) => Err(e),
                    }
                };
                slowest = slowest.max(started.elapsed());
                match outcome {
                    Ok(text) if text == ANSWER => {}
                    Ok(text) => failures.push(format!("call {i}: served {text:?}")),
                    Err(e) => failures.push(format!("call {i}: {e}")),
                }
            }
            (failures, slowest)
        }));
    }
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for w in workers {
        let (f, s) = w.await.expect("worker");
        failures.extend(f);
        slowest = slowest.max(s);
    }
    assert!(
        failures.is_empty(),
        "{} of {calls} calls did not complete whole: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    // The relay keeps every call inside its deadline (a wide margin for a loaded CI).
    assert!(slowest <= deadline + Duration::from_secs(5), "{slowest:?}");
    let stats = relay.stats();
    let fallback_served: u64 = stats
        .total
        .iter()
        .filter(|r| r.model == "fallback")
        .map(|r| r.successes)
        .sum();
    assert!(
        fallback_served > 0,
        "the primary's failures reached the fallback"
    );
    assert_eq!(stats.totals().successes, calls as u64);
}
