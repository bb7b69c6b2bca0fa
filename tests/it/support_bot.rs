//! The support bot as shipped (issue 22, point 6): `examples/support_bot.toml` with its saved
//! classifier model routes a ticket holding a card number on-prem without a tag, a Dutch
//! ticket to the general route rather than the German one, a mixed Chinese–English ticket
//! to Qwen, and an untagged refund dispute through the loaded classifier.

use polyrelay::config::RelayConfig;
use polyrelay::simulator::Simulator;
use polyrelay::{ChatRequest, Relay};

/// The shipped support bot's file (`examples/support_bot.toml`) on `sim`, as a builder.
pub(crate) fn builder(sim: &Simulator) -> polyrelay::RelayBuilder {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/support_bot.toml");
    let sim_url = sim.base_url();
    RelayConfig::from_file(path)
        .unwrap()
        .builder_with_env(|var| match var {
            "SIM_URL" => Some(sim_url.clone()),
            "OPENAI_API_KEY" | "DASHSCOPE_API_KEY" | "ANTHROPIC_API_KEY" => Some("sk-x".into()),
            _ => None,
        })
        .unwrap()
}

fn relay(sim: &Simulator) -> Relay {
    builder(sim).build().unwrap()
}

#[tokio::test]
async fn the_shipped_support_bot_routes_by_content_without_tags() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);
    for (text, route, rule) in [
        (
            "Please refund it to my card 4111 1111 1111 1111, it expires 09/28.",
            "onprem",
            Some("personal-data"),
        ),
        (
            "Mijn bestelling is nog steeds niet aangekomen. Kunt u mij helpen?",
            "general",
            None,
        ),
        (
            "Meine Bestellung ist nicht angekommen. Können Sie mir bitte helfen?",
            "german",
            Some("language"),
        ),
        (
            "Hi, I ordered the blue jacket last week and the tracking page has not changed \
             since Monday. 我的订单还没有到，请帮我查一下物流。",
            "qwen",
            Some("language"),
        ),
        (
            "I was charged twice and the seller refuses to refund me",
            "strong",
            Some("classifier"),
        ),
    ] {
        let resp = relay
            .chat(&ChatRequest::new("support").user(text))
            .await
            .unwrap();
        let routing = resp.meta.routing.as_ref().unwrap();
        assert_eq!(
            resp.meta.route.as_deref(),
            Some(route),
            "{text}: {routing:?}"
        );
        assert_eq!(routing.rule.as_deref(), rule, "{text}: {routing:?}");
    }
    // The card's value is nowhere in the decision.
    let resp = relay
        .chat(&ChatRequest::new("support").user("card 4111 1111 1111 1111"))
        .await
        .unwrap();
    let shown = format!("{:?}", resp.meta.routing);
    assert!(shown.contains("card") && !shown.contains("4111"), "{shown}");
}
