//! A user's own strategy: a `TargetOrder` plugged into a chain orders its targets for each
//! request, over loopback through the simulator.

use std::sync::Mutex;
use std::time::Duration;

use polyrelay::relay::{Candidate, Candidates};
use polyrelay::{Chain, ChatRequest, RetryPolicy, Strategy, Target, TargetOrder};

use crate::support::*;

/// The target tagged with the request's intent first, the others heaviest first; it notes
/// the targets it was given, as it was given them.
#[derive(Debug, Default)]
struct IntentFirst {
    seen: Mutex<Vec<Vec<(String, f64)>>>,
}

impl TargetOrder for IntentFirst {
    fn order(&self, targets: &mut Candidates<'_>) {
        let given = targets
            .iter()
            .map(|c| (c.id().to_string(), c.weight()))
            .collect();
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(given);
        let intent = targets.request().relay.intent.clone();
        let wanted = |c: &Candidate<'_>| {
            intent
                .as_deref()
                .is_some_and(|i| c.tags().iter().any(|t| t == i))
        };
        targets.sort_by(|a, b| {
            wanted(b)
                .cmp(&wanted(a))
                .then(b.weight().total_cmp(&a.weight()))
        });
    }
}

fn served(resp: &polyrelay::ChatResponse) -> String {
    resp.meta
        .served_by
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_users_strategy_picks_the_target_and_orders_the_fallbacks() {
    let sim = Simulator::start().await.unwrap();
    let order = std::sync::Arc::new(IntentFirst::default());
    let shared: std::sync::Arc<dyn TargetOrder> = order.clone();
    let chain = Chain::new()
        .target(Target::new("sim", "alpha").tags(["code"]).weight(1.0))
        .target(Target::new("sim", "beta").tags(["chat"]).weight(3.0))
        .target(Target::new("sim", "gamma").weight(2.0))
        .retry(RetryPolicy::no_retries())
        .total_timeout(Duration::from_secs(10))
        .strategy(Strategy::from(shared));
    let relay1 = relay(&sim, chain);
    let ask = |intent: &str| ChatRequest::new("r").user("hi").intent(intent);

    // The intent picks the first target: not the first written (alpha) for "chat".
    sim.script("beta", [Reply::openai_text("from beta")]);
    let resp = guarded(relay1.chat(ask("chat"))).await.unwrap();
    assert_eq!(served(&resp), "sim/beta");
    assert_eq!(resp.text(), "from beta");

    // Its first pick failing, the next is the strategy's next (heaviest: beta, not gamma).
    sim.script(
        "alpha",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.script("beta", [Reply::openai_text("beta again")]);
    let resp = guarded(relay1.chat(ask("code"))).await.unwrap();
    let tried: Vec<String> = resp
        .meta
        .attempts
        .iter()
        .map(|a| a.target.to_string())
        .collect();
    assert_eq!(tried, ["sim/alpha", "sim/beta"]);
    assert_eq!(served(&resp), "sim/beta");

    // Streamed calls go through the same order.
    sim.script("gamma", [Reply::openai_stream_text(&["from ", "gamma"])]);
    let only_gamma = Chain::new()
        .target(Target::new("sim", "beta").weight(1.0))
        .target(Target::new("sim", "gamma").weight(2.0))
        .strategy(Strategy::custom(IntentFirst::default()));
    let relay2 = relay(&sim, only_gamma);
    let resp = folded(&relay2, ChatRequest::new("r").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from gamma");
    assert_eq!(served(&resp), "sim/gamma");

    // It was asked once per call, with every target, in the order written.
    let seen = order.seen.lock().unwrap().clone();
    let written = vec![
        ("sim/alpha".to_owned(), 1.0),
        ("sim/beta".to_owned(), 3.0),
        ("sim/gamma".to_owned(), 2.0),
    ];
    assert_eq!(seen, [written.clone(), written]);
}
