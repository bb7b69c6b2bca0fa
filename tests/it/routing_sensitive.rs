//! The sensitive-data rule through a relay on the loopback simulator: a ticket with a card
//! number goes on-prem without an intent tag, an order-number ticket does not, a masking
//! rule rewrites what the vendor receives (and never what goes on-prem), and a config file's
//! mistakes are named by key.
#![cfg(feature = "sensitive")]

use crate::support;

use std::time::Duration;

use polyrelay::config::RelayConfig;
use polyrelay::routing::{Rules, SensitiveDataRule, SensitiveKind};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};
use support::*;

const CARD: &str = "4111 1111 1111 1111";
const EMAIL: &str = "jane.doe@example.com";
const PHONE: &str = "+44 20 7946 0958";

/// A real-looking ticket with a card number and no intent tag.
fn card_ticket() -> String {
    format!(
        "Hi, I was charged twice for my subscription. The card is {CARD}, exp 09/27. \
         Can you refund the second charge?"
    )
}

/// A ticket full of numbers that are not personal data.
const ORDER_TICKET: &str = "Order 4111111111111111 (placed 2024-03-02, $49.99) has not \
    arrived; tracking 1Z999AA10123456784 says 'label created' since 03/04/2024 at 10:30. \
    Invoice INV-2024-0042, order #112-3456789-1234567.";

/// Routes `onprem` and `cloud` on the simulator, and router `support`: cards, IBANs and
/// SSNs go on-prem unmasked; everything else a masking rule cleans before the default
/// route, `cloud`.
fn relay_with(sim: &Simulator) -> Relay {
    sim.script("onprem-model", [Reply::openai_text("on-prem answer")]);
    sim.set_default(Reply::openai_text("cloud answer"));
    let chain =
        |model: &str| Chain::of([format!("sim/{model}")]).total_timeout(Duration::from_secs(10));
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("onprem", chain("onprem-model"))
        .route("cloud", chain("cloud-model"))
        .router(
            "support",
            Rules::new("cloud")
                .rule(
                    "keep-on-prem",
                    SensitiveDataRule::new("onprem").kinds([
                        SensitiveKind::Card,
                        SensitiveKind::Iban,
                        SensitiveKind::Ssn,
                    ]),
                )
                .rule("mask", SensitiveDataRule::masking()),
        )
        .build()
        .expect("valid relay")
}

/// The text of every message of the one request `model` received.
fn sent_text(sim: &Simulator, model: &str) -> String {
    let seen = sim.requests_for(model);
    assert_eq!(seen.len(), 1, "{model} received {} requests", seen.len());
    seen[0].body["messages"].to_string()
}

#[tokio::test]
async fn a_ticket_with_a_card_number_goes_on_prem_unmasked() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    let req = ChatRequest::new("support")
        .system("You are a support agent.")
        .user(card_ticket());
    let resp = guarded(relay.chat(&req)).await.unwrap();
    assert_eq!(resp.text(), "on-prem answer");
    let r = resp.meta.routing.as_ref().expect("a routing decision");
    assert_eq!(r.rule.as_deref(), Some("keep-on-prem"));
    assert_eq!(&*r.route, "onprem");
    assert_eq!(r.reason, "sensitive data: card");
    assert_eq!(r.label.as_deref(), Some("card"));
    // The on-prem model got the ticket as written; nothing reached the cloud.
    assert!(sent_text(&sim, "onprem-model").contains(CARD));
    assert!(sim.requests_for("cloud-model").is_empty());
    // The decision names kinds, never values.
    assert!(!format!("{:?}", resp.meta).contains("1111"));
}

#[tokio::test]
async fn a_card_in_an_earlier_message_counts_too() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    let req = ChatRequest::new("support")
        .user(card_ticket())
        .assistant("I can help with that.")
        .user("Any news?");
    let resp = guarded(relay.chat(&req)).await.unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("onprem"));
}

#[tokio::test]
async fn an_order_number_ticket_goes_to_the_default_route_unchanged() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    let resp = guarded(relay.chat(ChatRequest::new("support").user(ORDER_TICKET)))
        .await
        .unwrap();
    assert_eq!(resp.text(), "cloud answer");
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(r.rule, None, "{r:?}");
    assert_eq!(r.reason, "no rule matched: the default route");
    assert!(sim.requests_for("onprem-model").is_empty());
    let seen = sim.requests_for("cloud-model");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body["messages"][0]["content"], ORDER_TICKET);
}

#[tokio::test]
async fn masking_rewrites_what_the_vendor_receives() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    let text = format!("Please update my contact: {EMAIL}, phone {PHONE}. Order 4521 is late.");
    let req = ChatRequest::new("support")
        .system(format!("The customer's address on file is {EMAIL}."))
        .user(text.clone());
    let resp = guarded(relay.chat(&req)).await.unwrap();
    assert_eq!(resp.text(), "cloud answer");
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(r.rule, None);
    assert_eq!(&*r.route, "cloud");
    assert_eq!(
        r.reason,
        "no rule matched: the default route; mask: masked email, phone"
    );
    let sent = sim.requests_for("cloud-model");
    let messages = &sent[0].body["messages"];
    assert_eq!(
        messages[0]["content"],
        "The customer's address on file is [EMAIL]."
    );
    assert_eq!(
        messages[1]["content"],
        "Please update my contact: [EMAIL], phone [PHONE]. Order 4521 is late."
    );
    // The caller's request is untouched.
    assert_eq!(req.messages[1].text(), text);
}

#[tokio::test]
async fn national_phone_numbers_are_masked_and_look_alikes_kept() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    // Phone numbers as Faker's locales write them, no `phone` word before them; beside
    // them a time range, an order number and an amount that must reach the vendor intact.
    let text = "They're not answering at 699 956 915. Front desk:\n781 1704 office\n\
                We are open 9.30-17.30; order 48213377, $ 1 299 000 in total, ZIP 90210-1234.";
    let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
        .await
        .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(&*r.route, "cloud");
    assert_eq!(
        r.reason,
        "no rule matched: the default route; mask: masked phone"
    );
    let sent = sim.requests_for("cloud-model");
    assert_eq!(
        sent[0].body["messages"][0]["content"],
        "They're not answering at [PHONE]. Front desk:\n[PHONE] office\n\
         We are open 9.30-17.30; order 48213377, $ 1 299 000 in total, ZIP 90210-1234."
    );
}

#[tokio::test]
async fn a_streamed_call_sends_the_masked_request_too() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with(&sim);
    sim.set_default(Reply::openai_stream_text(&["cloud ", "answer"]));
    let req = ChatRequest::new("support").user(format!("mail me at {EMAIL}"));
    let mut stream = guarded(relay.chat_stream(&req)).await.unwrap();
    let (chunks, err) = drain(&mut stream).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "cloud answer");
    let sent = sent_text(&sim, "cloud-model");
    assert!(
        sent.contains("mail me at [EMAIL]") && !sent.contains(EMAIL),
        "{sent}"
    );
}

#[tokio::test]
async fn a_route_with_masking_gets_the_masked_request() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("zero-retention", Chain::of(["sim/zdr-model"]))
        .route("cloud", Chain::of(["sim/cloud-model"]))
        .router(
            "support",
            Rules::new("cloud").rule(
                "pii",
                SensitiveDataRule::new("zero-retention")
                    .masked(true)
                    .pattern("employee_id", "EMP-[0-9]{6}")
                    .unwrap(),
            ),
        )
        .build()
        .unwrap();
    let req = ChatRequest::new("support").user(format!("EMP-123456 paid with {CARD}"));
    let resp = guarded(relay.chat(&req)).await.unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(r.rule.as_deref(), Some("pii"));
    assert_eq!(
        r.reason,
        "sensitive data: card, employee_id; pii: masked card, employee_id"
    );
    assert_eq!(r.label.as_deref(), Some("card,employee_id"));
    let sent = sent_text(&sim, "zdr-model");
    assert!(sent.contains("[EMPLOYEE_ID] paid with [CARD]"), "{sent}");
}

#[tokio::test]
async fn a_rule_naming_an_unknown_route_fails_the_build() {
    let sim = Simulator::start().await.unwrap();
    let err = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("cloud", Chain::of(["sim/cloud-model"]))
        .router(
            "support",
            Rules::new("cloud").rule("pii", SensitiveDataRule::new("no-such-route")),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("no-such-route"), "{err}");
}

/// A configuration with the simulator as its one provider and `rule` as the router's rule.
fn config(sim_url: &str, rule: &str) -> String {
    format!(
        r#"[providers.sim]
kind = "openai"
base_url = "{sim_url}/v1"
api_key_env = "SIM_KEY"

[routes.onprem]
targets = ["sim/onprem-model"]

[routes.cloud]
targets = ["sim/cloud-model"]

[routers.support]
default = "cloud"

[[routers.support.rules]]
name = "pii"
{rule}
"#
    )
}

fn build(text: &str) -> Result<Relay, polyrelay::config::ConfigError> {
    RelayConfig::from_toml_str(text)?
        .builder_with_env(|v| (v == "SIM_KEY").then(|| "sk-test".to_owned()))?
        .build()
        .map_err(|e| panic!("the builder refused what the file accepted: {e}"))
}

#[tokio::test]
async fn a_config_file_rule_routes_and_masks() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let rule = r#"sensitive = { route = "onprem", kinds = ["card", "iban"], patterns = { employee_id = "EMP-[0-9]{6}" } }

[[routers.support.rules]]
name = "mask"
sensitive = { mask = true, kinds = ["email"] }"#;
    let relay = build(&config(&sim.base_url(), rule)).unwrap();
    let resp = guarded(relay.chat(ChatRequest::new("support").user("I am EMP-123456")))
        .await
        .unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("onprem"));
    assert_eq!(
        resp.meta.routing.unwrap().reason,
        "sensitive data: employee_id"
    );
    let resp = guarded(relay.chat(ChatRequest::new("support").user(format!("{EMAIL} here"))))
        .await
        .unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("cloud"));
    assert!(sent_text(&sim, "cloud-model").contains("[EMAIL] here"));
}

#[test]
fn config_mistakes_are_named_by_key() {
    let url = "http://127.0.0.1:9";
    for (rule, key, says) in [
        (
            r#"sensitive = { route = "onprem", patterns = { employee_id = "EMP-[0-9" } }"#,
            "routers.support.rules[0].sensitive.patterns.employee_id",
            "not a valid regex",
        ),
        (
            r#"sensitive = { route = "onprem", kinds = ["card", "passport"] }"#,
            "routers.support.rules[0].sensitive.kinds[1]",
            "unknown kind \"passport\"",
        ),
        (
            r#"sensitive = { route = "nowhere" }"#,
            "routers.support.rules[0].sensitive.route",
            "nowhere",
        ),
        (
            r#"sensitive = { kinds = ["card"] }"#,
            "routers.support.rules[0].sensitive",
            "needs a route, or mask = true",
        ),
        (
            r#"sensitive = { route = "onprem", kinds = [] }"#,
            "routers.support.rules[0].sensitive.kinds",
            "never match",
        ),
    ] {
        let text = config(url, rule);
        let Err(e) = build(&text) else {
            panic!("accepted: {rule}");
        };
        assert_eq!(e.key(), Some(key), "{e}");
        assert!(e.message().contains(says), "{e}");
        assert!(e.to_string().contains(key), "{e}");
    }
    // An unknown field is refused by name.
    let Err(e) = build(&config(
        url,
        r#"sensitive = { route = "onprem", mask_all = true }"#,
    )) else {
        panic!("accepted an unknown field");
    };
    assert!(e.to_string().contains("mask_all"), "{e}");
}
