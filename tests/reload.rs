//! Hot reload: the table swaps atomically, calls in flight finish on the old one, per-target
//! state and stats survive, and an invalid configuration changes nothing.

use std::time::Duration;

use futures::StreamExt;
use polyrelay::providers::OpenAi;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{
    BreakerPolicy, BreakerState, Chain, ChatRequest, Relay, RelayBuilder, RetryPolicy,
};

fn builder(url: &str, route: Chain) -> RelayBuilder {
    Relay::builder()
        .provider("sim", OpenAi::new("sk-sim").base_url(url))
        .route("support", route)
}

#[tokio::test]
async fn a_stream_in_flight_finishes_on_the_old_table_and_the_next_call_takes_the_new() {
    let sim = Simulator::start().await.unwrap();
    let url = format!("{}/v1", sim.base_url());
    sim.script(
        "old-model",
        [Reply::openai_stream_text(&[
            "from ", "the ", "old ", "table",
        ])],
    );
    sim.script("new-model", [Reply::openai_text("from the new table")]);
    let relay = builder(&url, Chain::of(["sim/old-model"])).build().unwrap();
    let mut stream = relay
        .chat_stream(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    // The stream has committed to the old table's target; now the table changes.
    relay
        .reload(builder(&url, Chain::of(["sim/new-model"])))
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(chunk.unwrap().text().unwrap_or_default());
    }
    assert_eq!(text, "from the old table");
    assert_eq!(
        stream.meta().served_by.as_ref().unwrap().to_string(),
        "sim/old-model"
    );
    let next = relay
        .chat(ChatRequest::new("support").user("hi"))
        .await
        .unwrap();
    assert_eq!(next.text(), "from the new table");
    assert_eq!(next.meta.served_by.unwrap().to_string(), "sim/new-model");
}

#[tokio::test]
async fn breaker_state_and_stats_survive_a_reload() {
    let sim = Simulator::start().await.unwrap();
    let url = format!("{}/v1", sim.base_url());
    sim.script(
        "primary",
        [Reply::openai_error(503, "server_error", None, "down")],
    );
    sim.set_default(Reply::openai_text("ok"));
    let chain = || Chain::of(["sim/primary", "sim/backup"]).retry(RetryPolicy::no_retries());
    let breaker = BreakerPolicy::default()
        .consecutive_failures(1)
        .cooldown(Duration::from_secs(600));
    let relay = builder(&url, chain()).breaker(breaker).build().unwrap();
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
            builder(&url, chain())
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
            .map(|t| t.to_string())
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
    let url = format!("{}/v1", sim.base_url());
    sim.set_default(Reply::openai_text("ok"));
    let relay = builder(&url, Chain::of(["sim/m"])).build().unwrap();
    let before = relay.describe();
    let err = relay
        .reload(builder(&url, Chain::of(["nowhere/m"])))
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
