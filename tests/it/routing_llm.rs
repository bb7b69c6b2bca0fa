//! The LLM classifier rule over the loopback simulator: a classifier route labels the query
//! and the label picks the route; a slow, failing or confused classifier sends the request to
//! the default route; labels are cached by normalised text.

use crate::support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use polyrelay::routing::{LlmClassifier, Rules};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay, RetryPolicy, Target};
use serde_json::{Value, json};
use support::{Reply, Simulator, guarded, openai_at};

const REFUND: &str = "I was charged twice and want my money back.";

fn classifier() -> LlmClassifier {
    LlmClassifier::new("clf")
        .label("order_status", "cheap")
        .label("refund_dispute", "strong")
        // Wide enough for a loaded CI box; the budget tests set their own.
        .budget(Duration::from_secs(5))
}

/// Routes `clf` (one attempt: a classifier error is not retried), `cheap`, `strong` and
/// `general` on the simulator, and a router `support` with `classifier` as its one rule and
/// `general` as its default.
fn relay_with(sim: &Simulator, classifier: LlmClassifier) -> Relay {
    let one = |model: &str| {
        Chain::new()
            .target(Target::new("sim", model))
            .retry(RetryPolicy::default().max_attempts(1))
            .total_timeout(Duration::from_secs(10))
    };
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("clf", one("clf"))
        .route("cheap", one("cheap"))
        .route("strong", one("strong"))
        .route(
            "general",
            Chain::new()
                .target(Target::new("sim", "general").tags(["on-prem"]))
                .total_timeout(Duration::from_secs(10)),
        )
        .router(
            "support",
            Rules::new("general").rule("classifier", classifier),
        )
        .build()
        .expect("valid relay")
}

async fn sim() -> Simulator {
    Simulator::start().await.expect("simulator starts")
}

fn served_model(resp: &polyrelay::ChatResponse) -> String {
    resp.meta
        .served_by
        .as_ref()
        .map(|t| t.model.to_string())
        .unwrap_or_default()
}

/// The request went to the default route, no rule having decided.
fn assert_default(resp: &polyrelay::ChatResponse) {
    let routing = resp.meta.routing.as_ref().expect("routed");
    assert_eq!(&*routing.route, "general", "{routing:?}");
    assert_eq!(routing.rule, None, "{routing:?}");
    assert_eq!(routing.label, None);
    assert_eq!(served_model(resp), "general");
}

#[tokio::test]
async fn the_label_picks_the_route_and_meta_records_label_latency_and_usage() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"refund_dispute"}"#)]);
    let relay = relay_with(&sim, classifier());

    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");

    assert_eq!(served_model(&resp), "strong");
    assert_eq!(resp.meta.route.as_deref(), Some("strong"));
    let routing = resp.meta.routing.as_ref().expect("routed");
    assert_eq!(&*routing.router, "support");
    assert_eq!(routing.rule.as_deref(), Some("classifier"));
    assert_eq!(&*routing.route, "strong");
    assert_eq!(routing.label.as_deref(), Some("refund_dispute"));
    assert_eq!(routing.reason, "llm classifier: refund_dispute");
    let latency = routing.classifier_latency.expect("classifier latency");
    assert!(
        latency > Duration::ZERO && latency < Duration::from_secs(5),
        "{latency:?}"
    );
    let usage = routing.classifier_usage.expect("classifier usage");
    assert!(
        usage.input_tokens > 0 && usage.output_tokens > 0,
        "{usage:?}"
    );

    // The chosen route got the caller's request, not the classifier's prompt.
    let strong = sim.requests_for("strong");
    assert_eq!(strong.len(), 1);
    assert_eq!(
        strong[0].body["messages"],
        json!([{"role": "user", "content": REFUND}])
    );
    assert!(strong[0].body.get("response_format").is_none());
    assert!(sim.requests_for("general").is_empty());
}

#[tokio::test]
async fn the_classifier_request_constrains_the_answer_to_the_labels() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"order_status"}"#)]);
    let relay = relay_with(
        &sim,
        classifier()
            .describe("order_status", "where a parcel is or when it arrives")
            .instructions("Questions about invoices are order_status."),
    );

    let req = ChatRequest::new("support")
        .system("You are a support agent.")
        .user("hello")
        .assistant("Hi! How can I help?")
        .user("Where is my order #123?");
    let resp = guarded(relay.chat(req)).await.expect("answered");
    assert_eq!(served_model(&resp), "cheap");

    let clf = sim.requests_for("clf");
    assert_eq!(clf.len(), 1);
    let body = &clf[0].body;
    assert_eq!(
        body["response_format"],
        json!({
            "type": "json_schema",
            "json_schema": {
                "name": "route_label",
                "schema": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "enum": ["order_status", "refund_dispute"]}
                    },
                    "required": ["label"],
                    "additionalProperties": false
                },
                "strict": true
            }
        })
    );
    assert_eq!(body["temperature"], json!(0.0));
    assert_eq!(body["max_tokens"], json!(20));
    let messages = body["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().expect("system text");
    assert!(
        system.contains("- order_status: where a parcel is or when it arrives\n"),
        "{system}"
    );
    assert!(system.contains("- refund_dispute\n"), "{system}");
    assert!(
        system.contains("Questions about invoices are order_status."),
        "{system}"
    );
    // Only the last user message is classified.
    assert_eq!(
        messages[1],
        json!({"role": "user", "content": "Where is my order #123?"})
    );
}

#[tokio::test]
async fn the_classifier_sees_at_most_the_first_characters_of_the_query() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"order_status"}"#)]);
    let relay = relay_with(&sim, classifier());
    let long = "é".repeat(5_000);

    let resp = guarded(relay.chat(ChatRequest::new("support").user(&long)))
        .await
        .expect("answered");
    assert_eq!(served_model(&resp), "cheap");

    let clf = sim.requests_for("clf");
    let sent = clf[0].body["messages"][1]["content"]
        .as_str()
        .expect("user text");
    assert_eq!(sent.chars().count(), 2_000);
    // The routed request is whole.
    let cheap = sim.requests_for("cheap");
    assert_eq!(cheap[0].body["messages"][0]["content"], Value::String(long));
}

#[tokio::test]
async fn a_slow_classifier_is_dropped_at_its_budget_and_the_default_route_serves() {
    let sim = sim().await;
    sim.script(
        "clf",
        [Reply::openai_text(r#"{"label":"refund_dispute"}"#).delay(Duration::from_secs(2))],
    );
    let relay = relay_with(&sim, classifier().budget(Duration::from_millis(80)));

    let started = Instant::now();
    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered, never a classifier error");
    let elapsed = started.elapsed();

    assert_default(&resp);
    // 80 ms of budget and one quick answer, not the classifier's 2 s (a wide margin for a
    // loaded machine: the point is that the classifier's answer was not waited for).
    assert!(elapsed < Duration::from_millis(1_500), "{elapsed:?}");
    assert!(sim.requests_for("strong").is_empty());
}

#[tokio::test]
async fn a_classifier_out_of_budget_has_its_connection_closed() {
    let sim = sim().await;
    sim.script(
        "clf",
        [Reply::openai_text(r#"{"label":"refund_dispute"}"#).delay(Duration::from_secs(5))],
    );
    // A budget long enough for the request to arrive even on a loaded machine, far shorter
    // than the classifier's 5 s.
    let relay = relay_with(&sim, classifier().budget(Duration::from_millis(400)));

    let started = Instant::now();
    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_default(&resp);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let clf = sim.requests_for("clf");
    assert_eq!(clf.len(), 1);
    // The classifier call was cancelled: its connection closes long before its answer.
    tokio::time::timeout(Duration::from_secs(3), clf[0].closed())
        .await
        .expect("the classifier's connection was closed");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn the_default_budget_is_80_ms() {
    let sim = sim().await;
    sim.script(
        "clf",
        [Reply::openai_text(r#"{"label":"refund_dispute"}"#).delay(Duration::from_secs(5))],
    );
    let relay = relay_with(
        &sim,
        LlmClassifier::new("clf").label("refund_dispute", "strong"),
    );

    let started = Instant::now();
    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_default(&resp);
    assert!(started.elapsed() < Duration::from_millis(2_500));
}

#[tokio::test]
async fn a_classifier_error_sends_the_request_to_the_default_route() {
    let sim = sim().await;
    sim.script(
        "clf",
        [Reply::openai_error(
            500,
            "server_error",
            None,
            "The server had an error",
        )],
    );
    let relay = relay_with(&sim, classifier());

    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered, never the classifier's error");
    assert_default(&resp);
    assert_eq!(sim.requests_for("clf").len(), 1);
    assert_eq!(sim.requests_for("general").len(), 1);
}

#[tokio::test]
async fn an_unknown_label_or_prose_sends_the_request_to_the_default_route() {
    let sim = sim().await;
    sim.script(
        "clf",
        [
            Reply::openai_text(r#"{"label":"shipping"}"#),
            Reply::openai_text("I think this is about a refund."),
            Reply::openai_text(r#"{"category":"refund_dispute"}"#),
        ],
    );
    let relay = relay_with(&sim, classifier());

    for _ in 0..3 {
        let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
            .await
            .expect("answered");
        assert_default(&resp);
        // The classifier was called: its usage is counted under the request all the same.
        let routing = resp.meta.routing.as_ref().expect("routed");
        let usage = routing.classifier_usage.expect("the passing call's usage");
        assert!(usage.input_tokens > 0, "{usage:?}");
    }
    assert_eq!(sim.requests_for("clf").len(), 3);
    assert!(sim.requests_for("strong").is_empty());
}

#[tokio::test]
async fn bare_and_fenced_labels_are_accepted() {
    let sim = sim().await;
    sim.script(
        "clf",
        [
            Reply::openai_text("refund_dispute"),
            Reply::openai_text("```json\n{\"label\": \"Order_Status\"}\n```"),
        ],
    );
    let relay = relay_with(&sim, classifier());

    let first = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_eq!(served_model(&first), "strong");
    let second = guarded(relay.chat(ChatRequest::new("support").user("Where is it?")))
        .await
        .expect("answered");
    assert_eq!(served_model(&second), "cheap");
    // The label recorded is the configured spelling.
    let routing = second.meta.routing.expect("routed");
    assert_eq!(routing.label.as_deref(), Some("order_status"));
}

#[tokio::test]
async fn a_repeated_query_is_routed_from_the_cache() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"order_status"}"#)]);
    let relay = relay_with(&sim, classifier().cache(16));

    let first = guarded(relay.chat(ChatRequest::new("support").user("Where is my order?")))
        .await
        .expect("answered");
    assert_eq!(served_model(&first), "cheap");
    let second = guarded(relay.chat(ChatRequest::new("support").user("  where IS my\n\torder?  ")))
        .await
        .expect("answered");

    assert_eq!(served_model(&second), "cheap");
    assert_eq!(
        sim.requests_for("clf").len(),
        1,
        "the classifier was called again"
    );
    let routing = second.meta.routing.expect("routed");
    assert_eq!(routing.rule.as_deref(), Some("classifier"));
    assert_eq!(routing.label.as_deref(), Some("order_status"));
    assert_eq!(routing.reason, "llm classifier (cached): order_status");
    assert_eq!(routing.classifier_usage, None);
    let latency = routing.classifier_latency.expect("latency");
    assert!(latency < Duration::from_millis(500), "{latency:?}");
}

#[tokio::test]
async fn the_cache_is_bounded_and_drops_the_least_recently_used() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"order_status"}"#)]);
    let relay = relay_with(&sim, classifier().cache(2));
    let ask = |text: &'static str| {
        let relay = relay.clone();
        async move {
            guarded(relay.chat(ChatRequest::new("support").user(text)))
                .await
                .expect("answered")
        }
    };

    ask("first").await;
    ask("second").await;
    ask("third").await; // evicts "first"
    assert_eq!(sim.requests_for("clf").len(), 3);
    ask("third").await;
    ask("second").await;
    assert_eq!(
        sim.requests_for("clf").len(),
        3,
        "second and third are cached"
    );
    ask("first").await; // evicted: asked again, and evicts "third" (least recently used)
    assert_eq!(sim.requests_for("clf").len(), 4);
    ask("second").await;
    assert_eq!(sim.requests_for("clf").len(), 4);
    ask("third").await;
    assert_eq!(sim.requests_for("clf").len(), 5);
}

#[tokio::test]
async fn failures_are_not_cached() {
    let sim = sim().await;
    sim.script(
        "clf",
        [
            Reply::openai_error(500, "server_error", None, "The server had an error"),
            Reply::openai_text(r#"{"label":"refund_dispute"}"#),
        ],
    );
    let relay = relay_with(&sim, classifier().cache(16));

    let first = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_default(&first);
    let second = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_eq!(served_model(&second), "strong");
    assert_eq!(sim.requests_for("clf").len(), 2);
}

#[tokio::test]
async fn the_classifier_call_keeps_the_requests_required_tags() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"refund_dispute"}"#)]);
    let relay = relay_with(&sim, classifier());

    // Only `general` is tagged on-prem: the query must not reach the classifier.
    let req = ChatRequest::new("support")
        .user(REFUND)
        .require_tags(["on-prem"]);
    let resp = guarded(relay.chat(req)).await.expect("answered");
    assert_default(&resp);
    assert!(sim.requests_for("clf").is_empty());
}

#[tokio::test]
async fn nothing_to_classify_passes_without_a_call() {
    let sim = sim().await;
    let relay = relay_with(&sim, classifier());

    let resp = guarded(relay.chat(ChatRequest::new("support").system("Say hello.")))
        .await
        .expect("answered");
    assert_default(&resp);
    assert!(sim.requests_for("clf").is_empty());
}

#[tokio::test]
async fn a_classifier_that_names_a_router_passes_without_a_call() {
    let sim = sim().await;
    // The classifier names its own router: calling it would route back to the classifier.
    let relay = relay_with(
        &sim,
        LlmClassifier::new("support").label("refund_dispute", "strong"),
    );

    let resp = guarded(relay.chat(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("answered");
    assert_default(&resp);
    assert_eq!(sim.requests().len(), 1, "only the default route was called");
}

#[tokio::test]
async fn streams_are_routed_by_the_classifier_too() {
    let sim = sim().await;
    sim.script("clf", [Reply::openai_text(r#"{"label":"refund_dispute"}"#)]);
    let relay = relay_with(&sim, classifier());

    let mut stream = guarded(relay.chat_stream(ChatRequest::new("support").user(REFUND)))
        .await
        .expect("stream opens");
    while let Some(chunk) = guarded(stream.next()).await {
        chunk.expect("chunk");
    }
    let routing = stream.meta().routing.as_ref().expect("routed");
    assert_eq!(&*routing.route, "strong");
    assert_eq!(routing.label.as_deref(), Some("refund_dispute"));
    // The classifier call itself does not stream.
    assert!(!sim.requests_for("clf")[0].is_stream());
    assert!(sim.requests_for("strong")[0].is_stream());
}

#[test]
fn label_routes_are_checked_when_the_relay_is_built() {
    let err = Relay::builder()
        .provider(
            "sim",
            polyrelay::providers::OpenAi::compatible("sim", "http://127.0.0.1:9/v1", "k"),
        )
        .route("general", Chain::new().target("sim/general"))
        .router(
            "support",
            Rules::new("general").rule(
                "classifier",
                LlmClassifier::new("sim/clf").label("refund_dispute", "missing"),
            ),
        )
        .build()
        .expect_err("an unknown label route");
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("\"missing\""), "{err}");
}
