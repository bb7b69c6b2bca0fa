//! Hot reload: the table swaps atomically, calls in flight finish on the old one, per-target
//! state and stats survive, and an invalid configuration changes nothing.

use std::time::Duration;

use futures::StreamExt;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    BreakerPolicy, BreakerState, Chain, ChatRequest, Relay, RelayBuilder, RetryPolicy,
};

use crate::support;

fn builder(sim: &Simulator, route: Chain) -> RelayBuilder {
    Relay::builder()
        .provider("sim", support::openai_at(sim, "sk-sim"))
        .route("support", route)
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_the_old_table_and_the_next_call_takes_the_new() {
    let sim = Simulator::start().await.unwrap();
    // The old table's primary answers 503 late: by then the table has changed, and the call
    // fails over along its own (old) chain, to the old backup.
    sim.script(
        "old-primary",
        [Reply::openai_error(503, "server_error", None, "down").delay(Duration::from_secs(2))],
    );
    sim.script(
        "old-backup",
        [Reply::openai_stream_text(&[
            "from ", "the ", "old ", "table",
        ])],
    );
    sim.script("new-model", [Reply::openai_text("from the new table")]);
    let old = Chain::of(["sim/old-primary", "sim/old-backup"]).retry(RetryPolicy::no_retries());
    let relay = builder(&sim, old).build().unwrap();
    let in_flight = tokio::spawn({
        let relay = relay.clone();
        async move {
            let mut stream = relay
                .chat_stream(ChatRequest::new("support").user("hi"))
                .await
                .unwrap();
            let mut text = String::new();
            while let Some(chunk) = stream.next().await {
                text.push_str(chunk.unwrap().text().unwrap_or_default());
            }
            (text, stream.meta().served_by.as_ref().unwrap().to_string())
        }
    });
    // The first attempt is at the vendor; now the table changes.
    sim.wait_for_requests(1).await;
    relay
        .reload(builder(&sim, Chain::of(["sim/new-model"])))
        .unwrap();
    let (text, served) = in_flight.await.unwrap();
    assert_eq!(text, "from the old table");
    assert_eq!(served, "sim/old-backup");
    assert!(sim.requests_for("new-model").is_empty());
    let next = relay
        .chat(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    assert_eq!(next.text(), "from the new table");
    assert_eq!(next.meta.served_by.unwrap().to_string(), "sim/new-model");
}

#[tokio::test]
async fn a_removed_target_leaves_the_health_table_and_a_changed_breaker_starts_fresh() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "a",
        [
            Reply::openai_error(503, "server_error", None, "down"),
            Reply::openai_text("ok"),
        ],
    );
    sim.set_default(Reply::openai_text("ok"));
    let chain = || Chain::of(["sim/a", "sim/b"]).retry(RetryPolicy::no_retries());
    let one_failure = BreakerPolicy::default()
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(600));
    let relay = builder(&sim, chain()).breaker(one_failure).build().unwrap();
    relay
        .chat(ChatRequest::new("support").user("x"))
        .await
        .unwrap();
    let state = |relay: &Relay, t: &str| {
        relay
            .health()
            .into_iter()
            .find(|h| h.target.to_string() == t)
            .map(|h| h.state)
    };
    assert_eq!(state(&relay, "sim/a"), Some(BreakerState::Open));
    // b is dropped; a gets a breaker of its own: its open state does not carry over.
    relay
        .reload(
            builder(&sim, Chain::of(["sim/a"]))
                .breaker(one_failure)
                .breaker_for("sim/a", BreakerPolicy::default().consecutive_failures(3)),
        )
        .unwrap();
    assert_eq!(
        state(&relay, "sim/b"),
        None,
        "a removed target is forgotten"
    );
    assert_eq!(state(&relay, "sim/a"), Some(BreakerState::Closed));
    let resp = relay
        .chat(ChatRequest::new("support").user("y"))
        .await
        .unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/a");
}

#[tokio::test]
async fn breaker_state_and_stats_survive_a_reload() {
    let sim = Simulator::start().await.unwrap();
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.set_default(Reply::openai_text("ok"));
    let chain = || Chain::of(["sim/primary", "sim/backup"]).retry(RetryPolicy::no_retries());
    let breaker = BreakerPolicy::default()
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(600));
    let relay = builder(&sim, chain()).breaker(breaker).build().unwrap();
    let first = relay
        .chat(ChatRequest::new("support").user("a"))
        .await
        .unwrap();
    assert_eq!(first.meta.served_by.unwrap().to_string(), "sim/backup");
    let open = |relay: &Relay| {
        relay
            .health()
            .into_iter()
            .find(|h| h.target.to_string() == "sim/primary")
            .map(|h| h.state)
    };
    assert!(matches!(open(&relay), Some(BreakerState::Open)));
    let counted = relay.stats().totals().requests;
    assert!(counted > 0);
    // A new route is added; the primary remains.
    relay
        .reload(
            builder(&sim, chain())
                .breaker(breaker)
                .route("other", Chain::of(["sim/third"])),
        )
        .unwrap();
    assert_eq!(relay.routes(), ["other", "support"]);
    assert!(matches!(open(&relay), Some(BreakerState::Open)));
    let second = relay
        .chat(ChatRequest::new("support").user("b"))
        .await
        .unwrap();
    assert_eq!(second.meta.served_by.unwrap().to_string(), "sim/backup");
    assert_eq!(
        second
            .meta
            .skipped
            .iter()
            .map(|s| s.target.to_string())
            .collect::<Vec<_>>(),
        ["sim/primary"],
        "the open breaker survived the reload"
    );
    assert_eq!(sim.requests_for("primary").len(), 1);
    // The stats kept counting across the swap.
    assert_eq!(relay.stats().totals().requests, counted + 1);
}

#[tokio::test]
async fn an_invalid_reload_is_refused_and_the_old_table_serves() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = builder(&sim, Chain::of(["sim/m"])).build().unwrap();
    let before = relay.describe();
    let err = relay
        .reload(builder(&sim, Chain::of(["nowhere/m"])))
        .unwrap_err();
    assert_eq!(err.kind(), polyrelay::ErrorKind::Config);
    assert!(err.message().contains("nowhere"), "{err}");
    assert_eq!(relay.describe(), before);
    let resp = relay
        .chat(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/m");
}

#[tokio::test]
async fn a_configuration_file_reloads_and_a_bad_one_is_refused_with_its_line() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let dir = std::env::temp_dir().join(format!("polyrelay-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("relay.toml");
    let file = |model: &str| {
        format!(
            "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{}/v1\"\n\n[routes.support]\ntargets = [\"sim/{model}\"]\n",
            sim.base_url()
        )
    };
    std::fs::write(&path, file("a")).unwrap();
    let relay = Relay::from_config_file(&path).unwrap();
    std::fs::write(&path, file("b")).unwrap();
    relay.reload_config_file(&path).unwrap();
    let resp = relay
        .chat(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/b");
    std::fs::write(&path, file("c").replace("targets", "target")).unwrap();
    let err = relay.reload_config_file(&path).unwrap_err();
    assert_eq!(err.line(), Some(6), "{err}");
    assert_eq!(err.file(), Some(path.as_path()));
    let resp = relay
        .chat(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    assert_eq!(resp.meta.served_by.unwrap().to_string(), "sim/b");
    std::fs::remove_dir_all(&dir).ok();
}
