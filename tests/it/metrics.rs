//! The `metrics` feature: what the relay records through the `metrics` facade, read back from
//! `metrics-util`'s debugging recorder installed for one test at a time.
//!
//! Each test runs its relay and simulator on a current-thread runtime driven inside
//! `metrics::with_local_recorder`, so every task (the call, the simulator's connections)
//! runs on the thread where the test's recorder is installed and tests running in parallel
//! never see each other's values.
#![cfg(feature = "metrics")]

use crate::support;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use metrics::Unit;
use metrics_util::MetricKind;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use polyrelay::simulator::SimError;
use polyrelay::telemetry::metric;
use polyrelay::{
    BreakerPolicy, Chain, ChatRequest, ChatResponse, Error, ErrorKind, Price, Relay, RetryPolicy,
    Target,
};
use support::*;

/// Label keys to values.
type Labels = BTreeMap<String, String>;

/// One recorded metric: its kind, name, labels and value, and the unit and description the
/// recorder was given for its name.
#[derive(Debug)]
struct Entry {
    kind: MetricKind,
    name: String,
    labels: Labels,
    value: DebugValue,
    unit: Option<Unit>,
    description: Option<String>,
}

/// Everything recorded while a test ran.
#[derive(Debug)]
struct Recorded(Vec<Entry>);

impl Recorded {
    fn named(&self, name: &str) -> Vec<&Entry> {
        self.0.iter().filter(|e| e.name == name).collect()
    }

    /// The one series of `name`, which must exist and be the only one.
    fn only(&self, name: &str) -> &Entry {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "series of {name}: {found:#?}");
        found[0]
    }

    /// The series of `name` whose labels are exactly `labels`.
    fn series(&self, name: &str, labels: &Labels) -> &Entry {
        let found: Vec<_> = self
            .named(name)
            .into_iter()
            .filter(|e| &e.labels == labels)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "{name} with {labels:?} among {:#?}",
            self.named(name)
        );
        found[0]
    }

    /// The tokens of `kind` (`input` or `output`) recorded for calls labelled `call`.
    fn tokens(&self, call: &Labels, kind: &str) -> Vec<f64> {
        self.series(
            metric::TOKEN_USAGE,
            &with(call.clone(), "gen_ai.token.type", kind),
        )
        .histogram()
    }

    /// The durations recorded for calls labelled `call`.
    fn durations(&self, call: &Labels) -> Vec<f64> {
        self.series(metric::OPERATION_DURATION, call).histogram()
    }

    fn absent(&self, name: &str) {
        let found = self.named(name);
        assert!(
            found.is_empty(),
            "{name} should not be recorded: {found:#?}"
        );
    }
}

impl Entry {
    fn counter(&self) -> u64 {
        assert_eq!(self.kind, MetricKind::Counter, "{self:?}");
        match &self.value {
            DebugValue::Counter(n) => *n,
            v => panic!("{} is not a counter: {v:?}", self.name),
        }
    }

    fn gauge(&self) -> f64 {
        assert_eq!(self.kind, MetricKind::Gauge, "{self:?}");
        match &self.value {
            DebugValue::Gauge(v) => v.into_inner(),
            v => panic!("{} is not a gauge: {v:?}", self.name),
        }
    }

    fn histogram(&self) -> Vec<f64> {
        assert_eq!(self.kind, MetricKind::Histogram, "{self:?}");
        match &self.value {
            DebugValue::Histogram(v) => v.iter().map(|x| x.into_inner()).collect(),
            v => panic!("{} is not a histogram: {v:?}", self.name),
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Runs `test` on a current-thread runtime with a debugging recorder installed on this
/// thread, and returns its output with everything it recorded.
fn recorded<T, Fut>(test: impl FnOnce() -> Fut) -> (T, Recorded)
where
    Fut: Future<Output = T>,
{
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let out = metrics::with_local_recorder(&recorder, || runtime().block_on(guarded(test())));
    (out, Recorded::of(&snapshotter))
}

impl Recorded {
    fn of(snapshotter: &Snapshotter) -> Self {
        let entries = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(ck, unit, description, value)| {
                let (kind, key) = ck.into_parts();
                Entry {
                    kind,
                    name: key.name().to_owned(),
                    labels: key
                        .labels()
                        .map(|l| (l.key().to_owned(), l.value().to_owned()))
                        .collect(),
                    value,
                    unit,
                    description: description.map(|d| d.to_string()),
                }
            })
            .collect();
        Recorded(entries)
    }
}

/// One call on route `r` over [`primary_fallback`] with `retry`, the simulator scripted by
/// `script`.
fn one_call(
    retry: RetryPolicy,
    script: impl FnOnce(&Simulator),
) -> (Result<ChatResponse, Error>, Recorded) {
    recorded(|| async move {
        let sim = Simulator::start().await.unwrap();
        script(&sim);
        let relay = relay(&sim, primary_fallback().retry(retry));
        relay.chat(&ChatRequest::new("r").user(PROMPT)).await
    })
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The call labels of a call on route `r` served by `sim/{model}`.
fn served_labels(model: &str) -> Labels {
    labels(&[
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "sim"),
        ("relay.provider", "sim"),
        ("gen_ai.request.model", "r"),
        ("gen_ai.response.model", model),
        ("relay.route", "r"),
    ])
}

fn with(mut base: Labels, k: &str, v: &str) -> Labels {
    base.insert(k.to_owned(), v.to_owned());
    base
}

/// The labels of target `sim/{model}` on the per-event counters.
fn target_labels(model: &str) -> Labels {
    labels(&[
        ("gen_ai.provider.name", "sim"),
        ("relay.provider", "sim"),
        ("gen_ai.request.model", model),
    ])
}

/// The labels of a retry or a failover of target `sim/{model}` on route `r`.
fn event_labels(model: &str, error: &str) -> Labels {
    with(
        with(target_labels(model), "relay.route", "r"),
        "error.type",
        error,
    )
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(2)
        .backoff(Duration::from_millis(1), Duration::from_millis(1))
}

const PROMPT: &str = "please keep this prompt out of the labels";

#[test]
fn answered_calls_record_their_tokens_duration_and_cost() {
    let ((first, second), rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        let price = Price::per_million(1.0, 2.0);
        let relay = relay(
            &sim,
            Chain::new().target(Target::new("sim", "m1").price(price)),
        );
        let ask = |text: &str| ChatRequest::new("r").user(text).intent("billing");
        let first = relay.chat(&ask(PROMPT)).await.unwrap();
        let second = relay
            .chat(&ask(
                "a second, rather longer question for the simulator to count",
            ))
            .await
            .unwrap();
        (first, second)
    });
    let (u1, u2) = (first.usage.unwrap(), second.usage.unwrap());
    assert_ne!(u1.input_tokens, u2.input_tokens);
    let call = with(served_labels("m1"), "relay.query_type", "billing");

    assert_eq!(
        rec.tokens(&call, "input"),
        [u1.input_tokens as f64, u2.input_tokens as f64]
    );
    assert_eq!(
        rec.tokens(&call, "output"),
        [u1.output_tokens as f64, u2.output_tokens as f64]
    );
    assert_eq!(rec.named(metric::TOKEN_USAGE).len(), 2);

    // Once per call, in seconds, without `error.type`.
    let durations = rec.durations(&call);
    assert_eq!(durations.len(), 2);
    assert!(
        durations.iter().all(|d| *d > 0.0 && *d < 20.0),
        "{durations:?}"
    );
    assert_eq!(rec.named(metric::OPERATION_DURATION).len(), 1);

    let cost = rec.series(metric::COST, &call).gauge();
    let expected = first.meta.cost.unwrap() + second.meta.cost.unwrap();
    assert!(expected > 0.0);
    assert!((cost - expected).abs() < 1e-12, "{cost} != {expected}");

    // Not streamed, nothing failed, every cost known.
    rec.absent(metric::TIME_TO_FIRST_CHUNK);
    rec.absent(metric::COST_UNKNOWN);
    rec.absent(metric::RETRIES);
    rec.absent(metric::FAILOVERS);
    rec.absent(metric::BREAKER_OPENS);
    for e in &rec.0 {
        assert!(
            e.labels.values().all(|v| !v.contains("prompt")),
            "request text in a label: {e:?}"
        );
    }
}

#[test]
fn a_retry_is_counted_once_with_its_target_and_error() {
    let (resp, rec) = one_call(fast_retries(), |sim| {
        sim.script(
            "primary",
            [Reply::error(SimError::Server), Reply::text("second try")],
        );
    });
    let resp = resp.unwrap();
    assert_eq!(resp.meta.attempts.len(), 2);
    assert_eq!(&*resp.meta.served_by.as_ref().unwrap().model, "primary");

    let retries = rec.only(metric::RETRIES);
    assert_eq!(retries.labels, event_labels("primary", "server_error"));
    assert_eq!(retries.counter(), 1);
    rec.absent(metric::FAILOVERS);

    // One call: one duration, the answer's tokens, and a cost unknown ("primary" has no
    // price).
    let call = served_labels("primary");
    assert_eq!(rec.durations(&call).len(), 1);
    let usage = resp.usage.unwrap();
    assert_eq!(rec.tokens(&call, "output"), [usage.output_tokens as f64]);
    assert_eq!(rec.series(metric::COST_UNKNOWN, &call).counter(), 1);
    rec.absent(metric::COST);
}

#[test]
fn a_failover_is_counted_once_and_the_fallback_is_the_response_model() {
    let (resp, rec) = one_call(RetryPolicy::no_retries(), |sim| {
        sim.script("primary", [Reply::error(SimError::Server)]);
    });
    let resp = resp.unwrap();
    assert_eq!(&*resp.meta.served_by.as_ref().unwrap().model, "fallback");

    let failovers = rec.only(metric::FAILOVERS);
    assert_eq!(failovers.labels, event_labels("primary", "server_error"));
    assert_eq!(failovers.counter(), 1);
    rec.absent(metric::RETRIES);

    let call = served_labels("fallback");
    assert_eq!(rec.durations(&call).len(), 1);
    let usage = resp.usage.unwrap();
    assert_eq!(rec.tokens(&call, "input"), [usage.input_tokens as f64]);
}

#[test]
fn a_context_length_failover_is_counted_too() {
    let (resp, rec) = one_call(RetryPolicy::no_retries(), |sim| {
        sim.script(
            "primary",
            [Reply::openai_error(
                400,
                "invalid_request_error",
                Some("context_length_exceeded"),
                "This model's maximum context length is 8192 tokens.",
            )],
        );
    });
    assert_eq!(&*resp.unwrap().meta.served_by.unwrap().model, "fallback");
    let failovers = rec.only(metric::FAILOVERS);
    assert_eq!(
        failovers.labels,
        event_labels("primary", "context_length_exceeded")
    );
    assert_eq!(failovers.counter(), 1);
}

#[test]
fn a_target_failing_with_nothing_left_is_no_failover() {
    let (resp, rec) = one_call(RetryPolicy::no_retries(), |sim| {
        sim.script("primary", [Reply::error(SimError::Server)]);
        sim.script("fallback", [Reply::error(SimError::Server)]);
    });
    assert!(resp.is_err());
    // primary → fallback is one failover; fallback failing last moves nowhere.
    assert_eq!(rec.only(metric::FAILOVERS).counter(), 1);
}

#[test]
fn time_to_first_chunk_is_recorded_for_streams_only() {
    let ((ttft, stream_usage, chat_usage), rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        sim.script("m1", [Reply::sse(frames(4))]);
        let relay = relay(&sim, Chain::new().target("sim/m1"));
        let req = ChatRequest::new("r").user(PROMPT);
        let mut stream = relay.chat_stream(&req).await.unwrap();
        let (chunks, err) = drain(&mut stream).await;
        assert!(err.is_none(), "{err:?}");
        assert_eq!(joined(&chunks), text_of(0..4));
        let ttft = stream.meta().time_to_first_chunk.unwrap();
        let stream_usage = chunks.iter().rev().find_map(|c| c.usage).unwrap();
        drop(stream);
        // A plain call on the same route: a duration, no time to first chunk.
        sim.script("m1", [Reply::text("not streamed")]);
        let chat_usage = relay.chat(&req).await.unwrap().usage.unwrap();
        (ttft, stream_usage, chat_usage)
    });
    assert_eq!(
        (stream_usage.input_tokens, stream_usage.output_tokens),
        (5, 4)
    );
    let call = served_labels("m1");

    let first_chunk = rec.series(metric::TIME_TO_FIRST_CHUNK, &call).histogram();
    assert_eq!(first_chunk, [ttft.as_secs_f64()]);
    assert_eq!(rec.named(metric::TIME_TO_FIRST_CHUNK).len(), 1);

    let durations = rec.durations(&call);
    assert_eq!(durations.len(), 2);
    // The stream's whole duration is at least its time to the first chunk.
    assert!(durations[0] >= ttft.as_secs_f64(), "{durations:?} {ttft:?}");

    assert_eq!(
        rec.tokens(&call, "input"),
        [
            stream_usage.input_tokens as f64,
            chat_usage.input_tokens as f64
        ]
    );
    assert_eq!(
        rec.tokens(&call, "output"),
        [
            stream_usage.output_tokens as f64,
            chat_usage.output_tokens as f64
        ]
    );
}

#[test]
fn a_failed_call_records_its_error_type_and_no_tokens() {
    // The fallback is registered under a provider of its own, so that the call's provider
    // labels show which attempt they come from.
    let (err, rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::error(SimError::Server)]);
        sim.script("fallback", [Reply::error(SimError::Overloaded)]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .provider("other", openai_at(&sim, "sk-test"))
            .route(
                "r",
                Chain::new()
                    .target("sim/primary")
                    .target("other/fallback")
                    .retry(RetryPolicy::no_retries()),
            )
            .build()
            .unwrap();
        relay
            .chat(&ChatRequest::new("r").user(PROMPT))
            .await
            .unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);

    // The provider of the last attempt; no response model, since nothing served.
    let failed = rec.only(metric::OPERATION_DURATION);
    assert_eq!(
        failed.labels,
        labels(&[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.provider.name", "other"),
            ("relay.provider", "other"),
            ("gen_ai.request.model", "r"),
            ("relay.route", "r"),
            ("error.type", "all_targets_failed"),
        ])
    );
    assert_eq!(failed.histogram().len(), 1);
    rec.absent(metric::TOKEN_USAGE);
    rec.absent(metric::COST_UNKNOWN);
    rec.absent(metric::COST);
    let from_primary = rec.series(metric::FAILOVERS, &event_labels("primary", "server_error"));
    assert_eq!(from_primary.counter(), 1);
    for e in &rec.0 {
        for attempt in err.attempts() {
            let message = attempt.error.as_ref().unwrap().message();
            assert!(
                e.labels.values().all(|v| v != message),
                "an error message in a label: {e:?}"
            );
        }
    }
}

#[test]
fn a_breaker_opening_is_counted_once() {
    let ((first, second), rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        sim.script("primary", [Reply::error(SimError::Server)]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .breaker(BreakerPolicy::default().consecutive_failures(1))
            .route("r", primary_fallback().retry(RetryPolicy::no_retries()))
            .build()
            .unwrap();
        let req = ChatRequest::new("r").user(PROMPT);
        let first = relay.chat(&req).await.unwrap();
        // The breaker is open now: the second call skips "primary" without an attempt.
        let second = relay.chat(&req).await.unwrap();
        (first, second)
    });
    assert_eq!(first.meta.attempts.len(), 2);
    assert_eq!(second.meta.attempts.len(), 1);
    assert_eq!(second.meta.skipped.len(), 1);

    let opens = rec.only(metric::BREAKER_OPENS);
    assert_eq!(opens.labels, target_labels("primary"));
    assert_eq!(opens.counter(), 1);
    assert_eq!(rec.only(metric::FAILOVERS).counter(), 1);
    assert_eq!(rec.durations(&served_labels("fallback")).len(), 2);
}

#[test]
fn a_call_refused_before_any_attempt_has_no_provider_labels() {
    let (err, rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        let relay = relay(&sim, Chain::new().target("sim/m1"));
        // No target carries the tag: nothing is sent.
        let req = ChatRequest::new("r").user(PROMPT).require_tags(["on-prem"]);
        relay.chat(&req).await.unwrap_err()
    });
    assert_eq!(err.kind(), ErrorKind::ConstraintViolated);
    assert!(err.attempts().is_empty(), "{err:?}");

    let refused = rec.only(metric::OPERATION_DURATION);
    assert_eq!(
        refused.labels,
        labels(&[
            ("gen_ai.operation.name", "chat"),
            ("gen_ai.request.model", "r"),
            ("relay.route", "r"),
            ("error.type", "constraint_violated"),
        ])
    );
    assert_eq!(refused.histogram().len(), 1);
    rec.absent(metric::TOKEN_USAGE);
    rec.absent(metric::COST_UNKNOWN);
    rec.absent(metric::COST);
    // Counted as a refusal of its route, with why.
    let refusal = rec.only(metric::REFUSALS);
    assert_eq!(
        refusal.labels,
        labels(&[("relay.route", "r"), ("relay.refusal", "constraint")])
    );
    assert_eq!(refusal.counter(), 1);
}

/// Units and descriptions go to the recorder once per process, with the first value
/// recorded; this test checks them in a process of its own (the test binary run again for
/// this test alone), where the recorder is installed after the relay was built.
#[test]
fn units_and_descriptions_reach_a_recorder_installed_after_the_relay_was_built() {
    const NAME: &str =
        "units_and_descriptions_reach_a_recorder_installed_after_the_relay_was_built";
    const ALONE: &str = "POLYRELAY_METRICS_TEST_ALONE";
    if std::env::var_os(ALONE).is_none() {
        // The test's full name in this binary: its module path without the crate's name.
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &format!("{module}::{NAME}"), "--nocapture"])
            .env(ALONE, "1")
            .output()
            .unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "the test alone: {}\n{stdout}\n{stderr}",
            out.status
        );
        return;
    }

    let rt = runtime();
    let (_sim, relay) = rt.block_on(async {
        let sim = Simulator::start().await.unwrap();
        // "primary" fails twice (a retry, its breaker opens, a failover); "fallback" has no
        // price (its cost is unknown); "m1" streams at a known price.
        sim.script(
            "primary",
            [
                Reply::error(SimError::Server),
                Reply::error(SimError::Server),
            ],
        );
        sim.script("m1", [Reply::sse(frames(2))]);
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .breaker(BreakerPolicy::default().consecutive_failures(2))
            .route("r", primary_fallback().retry(fast_retries()))
            .route(
                "priced",
                Chain::new().target(Target::new("sim", "m1").price(Price::per_million(1.0, 2.0))),
            )
            .build()
            .unwrap();
        (sim, relay)
    });
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        rt.block_on(guarded(async {
            let mut stream = relay
                .chat_stream(&ChatRequest::new("priced").user(PROMPT))
                .await
                .unwrap();
            let (_, err) = drain(&mut stream).await;
            assert!(err.is_none(), "{err:?}");
            drop(stream);
            relay
                .chat(&ChatRequest::new("r").user(PROMPT))
                .await
                .unwrap();
        }))
    });
    let rec = Recorded::of(&snapshotter);

    let expected = [
        (metric::TOKEN_USAGE, Some(Unit::Count)),
        (metric::OPERATION_DURATION, Some(Unit::Seconds)),
        (metric::TIME_TO_FIRST_CHUNK, Some(Unit::Seconds)),
        (metric::COST, None),
        (metric::COST_UNKNOWN, Some(Unit::Count)),
        (metric::RETRIES, Some(Unit::Count)),
        (metric::FAILOVERS, Some(Unit::Count)),
        (metric::BREAKER_OPENS, Some(Unit::Count)),
    ];
    for (name, unit) in expected {
        let entries = rec.named(name);
        assert!(!entries.is_empty(), "{name} not recorded: {:#?}", rec.0);
        for e in entries {
            assert_eq!(e.unit, unit, "{e:?}");
            assert!(
                e.description.as_ref().is_some_and(|d| !d.is_empty()),
                "{e:?}"
            );
        }
    }
    assert!(
        rec.0
            .iter()
            .all(|e| expected.iter().any(|(n, _)| e.name == *n)),
        "a metric this test does not know: {:#?}",
        rec.0
    );
}

#[test]
fn spend_control_events_are_counted_with_labels_that_hold_no_key() {
    use polyrelay::spend::budget::Budget;
    use polyrelay::spend::keys::KeyPool;
    use polyrelay::spend::limiter::RateLimit;
    let ((), rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        sim.set_default(Reply::openai_text("ok"));
        sim.script(
            "primary",
            [
                Reply::openai_error(429, "insufficient_quota", Some("insufficient_quota"), "q"),
                Reply::openai_text("ok"),
            ],
        );
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-first-key"))
            .key_pool(
                "sim",
                KeyPool::new().key("sk-first-key").key("sk-second-key"),
            )
            .rate_limit(
                "sim/primary",
                RateLimit::new().requests_per_minute(2).burst(2),
            )
            .budget(Budget::tokens("tiny", 1).for_route("other"))
            .route("r", primary_fallback())
            .route("other", Chain::of(["sim/fallback"]))
            .build()
            .unwrap();
        let req = ChatRequest::new("r").user(PROMPT).max_tokens(5);
        // Key 0 is out of quota, key 1 serves (two requests of the two a minute allows); the
        // next call finds the limit spent and fails over.
        relay.chat(&req).await.unwrap();
        relay.chat(&req).await.unwrap();
        let refused = relay
            .chat(ChatRequest::new("other").user(PROMPT))
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::BudgetExceeded);
    });
    let key = rec.only(metric::KEY_STATE_CHANGES);
    assert_eq!(key.labels["relay.provider"], "sim");
    assert_eq!(key.labels["relay.key.state"], "parked");
    assert_eq!(key.labels["error.type"], "quota_exhausted");
    assert!(key.labels["relay.key"].starts_with("key#0 (fp "), "{key:?}");
    let limited = rec.only(metric::RATE_LIMITED);
    assert_eq!(
        limited.labels,
        with(
            with(target_labels("primary"), "relay.route", "r"),
            "relay.action",
            "fail_over"
        )
    );
    assert_eq!(limited.counter(), 1);
    let budget: Vec<_> = rec
        .named(metric::BUDGET_EVENTS)
        .iter()
        .map(|e| e.labels["relay.budget.event"].clone())
        .collect();
    assert_eq!(budget.len(), 2, "{budget:?}");
    assert!(budget.contains(&"rejected".to_owned()) && budget.contains(&"exhausted".to_owned()));
    let all = format!("{:?}", rec.0);
    assert!(!all.contains("sk-first-key") && !all.contains("sk-second-key"));
}

#[test]
fn names_a_client_makes_up_share_one_label_past_the_limit() {
    let ((), rec) = recorded(|| async {
        let sim = Simulator::start().await.unwrap();
        sim.set_default(Reply::openai_text("ok"));
        let relay = Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .build()
            .unwrap();
        for i in 0..1100 {
            let req = ChatRequest::new(format!("sim/made-up-{i}")).user(PROMPT);
            relay.chat(&req).await.unwrap();
        }
    });
    let routes: std::collections::BTreeSet<&str> = rec
        .named(metric::OPERATION_DURATION)
        .iter()
        .map(|e| e.labels["relay.route"].as_str())
        .collect();
    // Route and model share the bound: at most 1,000 values in all, then "(other)".
    assert!(routes.len() <= 1001, "{} routes", routes.len());
    assert!(routes.contains("(other)"));
}
