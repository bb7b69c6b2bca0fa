//! Routers through the relay on the loopback simulator: intent and label tables, size rules,
//! the default route, what `meta.routing` records (plain and streamed), and what `build`
//! refuses.

use crate::support;

use polyrelay::routing::{IntentRule, Rules, SizeRule};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay, Target};
use support::*;

fn relay(sim: &Simulator) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("cheap", Chain::of(["sim/cheap"]))
        .route("strong", Chain::of(["sim/strong"]))
        .route(
            "small",
            Chain::new().target(Target::new("sim", "small").context_window(100)),
        )
        .route(
            "long",
            Chain::new().target(Target::new("sim", "long").context_window(1_000_000)),
        )
        .router(
            "support",
            Rules::new("cheap")
                .rule("vip", IntentRule::new().intent("vip", "strong"))
                .rule("size", SizeRule::beyond_window_of("small", "long"))
                .rule(
                    "intents",
                    IntentRule::new()
                        .intent("refund_dispute", "strong")
                        .intent("order_status", "small"),
                ),
        )
        .router(
            "bulk",
            Rules::new("cheap").rule("size", SizeRule::above(1_000, "long")),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn rules_pick_routes_and_meta_says_which_rule_and_why() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);
    let resp = guarded(
        relay.chat(
            ChatRequest::new("support")
                .user("hi")
                .intent("refund_dispute"),
        ),
    )
    .await
    .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(
        (&*r.router, r.rule.as_deref(), &*r.route),
        ("support", Some("intents"), "strong")
    );
    assert_eq!(r.reason, "intent \"refund_dispute\"");
    assert_eq!(resp.meta.route.as_deref(), Some("strong"));
    assert_eq!(sim.requests_for("strong").len(), 1);
    // A label matches too, and the first matching rule wins.
    let resp = guarded(
        relay.chat(
            ChatRequest::new("support")
                .user("hi")
                .intent("refund_dispute")
                .label("vip"),
        ),
    )
    .await
    .unwrap();
    let r = resp.meta.routing.unwrap();
    assert_eq!((r.rule.as_deref(), &*r.route), (Some("vip"), "strong"));
    assert_eq!(r.reason, "label \"vip\"");
    // Nothing matches: the default route, and meta says so.
    let resp = guarded(relay.chat(ChatRequest::new("support").user("hello")))
        .await
        .unwrap();
    let r = resp.meta.routing.unwrap();
    assert_eq!((r.rule.as_deref(), &*r.route), (None, "cheap"));
    // Streamed: the same decision, on the stream's meta.
    let stream = guarded(
        relay.chat_stream(
            ChatRequest::new("support")
                .user("hi")
                .intent("refund_dispute"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        stream.meta().routing.as_ref().map(|r| &*r.route),
        Some("strong")
    );
    let resp = guarded(stream.into_response()).await.unwrap();
    assert_eq!(
        resp.meta.routing.map(|r| r.route.to_string()).as_deref(),
        Some("strong")
    );
    // A route called by name is not routed.
    let resp = guarded(relay.chat(ChatRequest::new("cheap").user("x")))
        .await
        .unwrap();
    assert!(resp.meta.routing.is_none());
}

#[tokio::test]
async fn size_rules_send_big_inputs_to_the_long_context_route() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);
    // ~600 tokens: beyond the 100-token window of "small", so "long" takes it before the
    // intent table would send it to "small".
    let big = "word ".repeat(480);
    let resp = guarded(
        relay.chat(
            ChatRequest::new("support")
                .user(big.as_str())
                .intent("order_status"),
        ),
    )
    .await
    .unwrap();
    let r = resp.meta.routing.unwrap();
    assert_eq!((r.rule.as_deref(), &*r.route), (Some("size"), "long"));
    assert!(r.reason.contains("the window of \"small\""), "{}", r.reason);
    assert_eq!(relay.context_window("small"), Some(100));
    assert_eq!(relay.context_window("cheap"), None);
    // A small input goes on to the intent table.
    let resp = guarded(
        relay.chat(
            ChatRequest::new("support")
                .user("status?")
                .intent("order_status"),
        ),
    )
    .await
    .unwrap();
    assert_eq!(resp.meta.routing.unwrap().route.as_ref(), "small");
    // A fixed threshold.
    let resp = guarded(relay.chat(ChatRequest::new("bulk").user("word ".repeat(1000))))
        .await
        .unwrap();
    assert_eq!(resp.meta.routing.unwrap().route.as_ref(), "long");
    let resp = guarded(relay.chat(ChatRequest::new("bulk").user("short")))
        .await
        .unwrap();
    assert_eq!(resp.meta.routing.unwrap().route.as_ref(), "cheap");
}

#[tokio::test]
async fn build_refuses_routers_that_cannot_work() {
    let sim = Simulator::start().await.unwrap();
    let base = || {
        Relay::builder()
            .provider("sim", openai_at(&sim, "sk-test"))
            .route("cheap", Chain::of(["sim/cheap"]))
    };
    let err = base()
        .router("r", Rules::new("nowhere"))
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().contains("nowhere"), "{err}");
    let err = base()
        .router(
            "r",
            Rules::new("cheap").rule("t", IntentRule::new().intent("x", "missing")),
        )
        .build()
        .unwrap_err();
    assert!(
        err.message().contains("rule \"t\"") && err.message().contains("missing"),
        "{err}"
    );
    let err = base()
        .router("cheap", Rules::new("cheap"))
        .build()
        .unwrap_err();
    assert!(err.message().contains("name of a route"), "{err}");
    let err = base()
        .router("sim/x", Rules::new("cheap"))
        .build()
        .unwrap_err();
    assert!(err.message().contains("shadows"), "{err}");
    // A provider/model pair is a valid destination.
    base()
        .router("r", Rules::new("sim/some-model"))
        .build()
        .expect("provider/model is a route");
}

#[tokio::test]
async fn the_routing_decision_is_on_the_calls_span() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "strong",
        [
            Reply::openai_error(500, "server_error", None, "boom"),
            Reply::openai_text("ok"),
        ],
    );
    let relay = relay(&sim);
    let (logs, _guard) = CapturedLogs::start();
    guarded(
        relay.chat(
            ChatRequest::new("support")
                .user("hi")
                .intent("refund_dispute"),
        ),
    )
    .await
    .unwrap();
    // The failed attempt's event is logged inside the call's span, which carries the decision.
    let logs = logs.text();
    let line = logs
        .lines()
        .find(|l| l.contains("attempt failed"))
        .expect("the failed attempt is logged");
    for field in [
        "relay.router=\"support\"",
        "relay.rule=\"intents\"",
        "relay.route=strong",
    ] {
        assert!(line.contains(field), "{field} not in {line}");
    }
}
