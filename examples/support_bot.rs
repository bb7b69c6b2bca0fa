//! `cargo run --example support_bot`
//!
//! The support bot of the teams that cut their model spend by routing, in code, on the
//! built-in vendor simulator (no keys, no network):
//!
//! - a sensitive ticket goes to the on-prem endpoint only (and can never fail over elsewhere):
//!   one the caller tags, and one that holds a payment card number without any tag (found in
//!   process by a `SensitiveDataRule`);
//! - a Chinese ticket goes to Qwen (by script, reliable even for two characters), and so does
//!   a mixed ticket whose Chinese part is a full sentence; a German ticket goes to the German
//!   route, and a Dutch one to the general route rather than the German one (the language
//!   rule passes on languages it has no route for);
//! - order status → a cheap fast model; refund dispute → the strongest; translation → a
//!   multilingual one; anything else → a general route;
//! - OpenAI fails over to Anthropic on a 5xx, or after a 2.5 s response window;
//! - in the middle of the run OpenAI has an outage: the circuit breaker routes around it
//!   and comes back to OpenAI when it recovers.
//!
//! It prints, per request, the rule that chose the route, the target that served, and why.
//!
//! `cargo run --example support_bot -- --config` (or `SUPPORT_BOT_CONFIG=1`) builds the same
//! relay from `examples/support_bot.toml` instead of code: the output is the same.
//!
//! The in-process classifier is not trained at start-up: it loads the model shipped beside
//! the example, `examples/support_bot.clf` (milliseconds). `cargo run --example support_bot
//! -- --train` retrains it from `tests/data/support_tickets.jsonl` and writes that file.

use std::time::{Duration, Instant};

use polyrelay::config::RelayConfig;
use polyrelay::providers::{Anthropic, OpenAi};
use polyrelay::routing::{
    ClassifierRule, IntentRule, LanguageRule, Rules, Script, SensitiveDataRule, TextClassifier,
    TrainOptions,
};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{BreakerPolicy, Chain, ChatRequest, ChatResponse, Relay, Target};

/// The classifier's model, shipped with the example.
const MODEL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/support_bot.clf");
/// The labelled tickets it is trained on.
const EXAMPLES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/support_tickets.jsonl"
);

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--train") {
        let examples = TextClassifier::read_examples(EXAMPLES)?;
        let model = TextClassifier::train_with(examples, &TrainOptions::default())?;
        model.save(MODEL)?;
        println!("wrote {MODEL} ({} labels)", model.labels().len());
        return Ok(());
    }
    let sim = Simulator::start().await?;
    let url = format!("{}/v1", sim.base_url());
    sim.set_default(Reply::text(
        "Thanks for reaching out; here is what I found.",
    ));
    // OpenAI's gpt-4o-mini: fine for three requests, then an outage of seven answers (five
    // that open the breaker, then failed probes), then healthy again.
    let outage = || Reply::openai_error(503, "server_error", None, "The engine is overloaded");
    let mut mini = vec![Reply::openai_text("Your order #123 ships today."); 3];
    mini.extend(std::iter::repeat_with(outage).take(7));
    mini.push(Reply::openai_text("Your order is out for delivery."));
    sim.script("gpt-4o-mini", mini);
    // The strongest model first answers a stream only after 20 s: the 2.5 s window moves on.
    sim.script(
        "gpt-4o",
        [
            Reply::openai_stream_text(&["I ", "will ", "never ", "arrive"])
                .frame_delay(Duration::from_secs(20)),
            Reply::openai_text("I have reviewed the dispute: a refund is on its way."),
        ],
    );
    sim.script("qwen-plus", [Reply::openai_text("您好，您的退款已处理。")]);
    sim.script(
        "llama-3.3-70b",
        [Reply::openai_text("Handled on our own servers.")],
    );

    let from_file = std::env::args().any(|a| a == "--config")
        || std::env::var_os("SUPPORT_BOT_CONFIG").is_some();
    let relay = if from_file {
        println!("(relay built from examples/support_bot.toml)\n");
        relay_from_file(&sim.base_url())?
    } else {
        relay_from_code(&url)?
    };

    let tickets: Vec<(ChatRequest, bool)> = vec![
        (
            ticket("Where is my order #123?").intent("order_status"),
            false,
        ),
        (
            ticket("My card was charged twice and the seller ignores me.").intent("refund_dispute"),
            true,
        ),
        (
            ticket("Translate our return policy into Spanish.").intent("translation"),
            false,
        ),
        (ticket("退款"), false),
        (
            ticket("My medical records were in that parcel.").label("sensitive"),
            false,
        ),
        // No tag: the card number keeps it on our own servers.
        (
            ticket("Please refund it to my card 4111 1111 1111 1111, it expires 09/28."),
            false,
        ),
        (
            ticket("Meine Bestellung ist nicht angekommen. Können Sie mir bitte helfen?"),
            false,
        ),
        // Dutch: no Dutch route, so not the German one either.
        (
            ticket("Mijn bestelling is nog steeds niet aangekomen. Kunt u mij helpen?"),
            false,
        ),
        (
            ticket(
                "Hi, I ordered the blue jacket last week and the tracking page has not \
                 changed since Monday. 我的订单还没有到，请帮我查一下物流。",
            ),
            false,
        ),
        (
            ticket("Is order #124 on its way?").intent("order_status"),
            false,
        ),
        (ticket("Where is order #125?").intent("order_status"), false),
        (ticket("Do you ship to Canada?"), false),
        (
            ticket("I was charged twice and the seller refuses to refund me"),
            false,
        ),
        (
            ticket("Has order #126 shipped?").intent("order_status"),
            false,
        ),
        (ticket("Can I change my address?"), false),
        (ticket("Order #127 status?").intent("order_status"), false),
        (ticket("Order #128 status?").intent("order_status"), false),
        (ticket("Order #129 status?").intent("order_status"), false),
        (ticket("Order #130 status?").intent("order_status"), false),
    ];
    // More order-status tickets: the outage ends, a probe finds OpenAI healthy again.
    let tickets = tickets.into_iter().chain((131..139).map(|n| {
        (
            ticket(&format!("Order #{n} status?")).intent("order_status"),
            false,
        )
    }));
    let started = Instant::now();
    for (i, (req, stream)) in tickets.enumerate() {
        let resp = if stream {
            relay.chat_stream(&req).await?.into_response().await?
        } else {
            relay.chat(&req).await?
        };
        report(i + 1, &req, &resp, started.elapsed());
        let breaker = relay
            .health()
            .into_iter()
            .find(|h| h.target.to_string() == "openai/gpt-4o-mini")
            .map(|h| format!("{:?}", h.state))
            .unwrap_or_default();
        println!("     (openai/gpt-4o-mini breaker: {breaker})");
        // Tickets arrive every 250 ms, so the breaker's cooldown shows.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("\nHealth at the end:");
    for h in relay.health() {
        println!(
            "  {:<32} {:?}, error rate {:.0} %, latency {}",
            h.target.to_string(),
            h.state,
            h.error_rate * 100.0,
            h.latency
                .map(|d| format!("{} ms", d.as_millis()))
                .unwrap_or_else(|| "–".into())
        );
    }
    Ok(())
}

/// The support bot's relay, in code, with every provider at `url` (the simulator's `/v1`).
pub fn relay_from_code(url: &str) -> Result<Relay, Box<dyn std::error::Error>> {
    // The in-process classifier, loaded from the model shipped with the example (trained on
    // labelled tickets with `--train`): it routes tickets that come without an intent.
    let classifier = TextClassifier::load(MODEL)?;
    let window = Duration::from_millis(2500);
    let openai = |model: &str| Target::new("openai", model).first_token_timeout(window);
    let relay = Relay::builder()
        .provider("openai", OpenAi::new("sk-sim").base_url(url))
        .provider("anthropic", Anthropic::new("sk-ant-sim").base_url(url))
        .provider("qwen", OpenAi::qwen("sk-sim").base_url(url))
        .provider("onprem", OpenAi::vllm().base_url(url))
        .route(
            "fast",
            Chain::new()
                .target(openai("gpt-4o-mini"))
                .target("anthropic/claude-haiku-4-5"),
        )
        .route(
            "strong",
            Chain::new()
                .target(openai("gpt-4o"))
                .target("anthropic/claude-sonnet-4-5"),
        )
        .route(
            "multilingual",
            Chain::of(["qwen/qwen-max", "anthropic/claude-sonnet-4-5"]),
        )
        .route(
            "qwen",
            Chain::of(["qwen/qwen-plus", "anthropic/claude-haiku-4-5"]),
        )
        .route(
            "onprem",
            Chain::new()
                .target(Target::new("onprem", "llama-3.3-70b").tags(["on-prem"]))
                .require_tags(["on-prem"]),
        )
        .route(
            "german",
            Chain::new()
                .target("anthropic/claude-haiku-4-5")
                .target(openai("gpt-4o-mini")),
        )
        .route(
            "general",
            Chain::new()
                .target(openai("gpt-4o-mini"))
                .target("anthropic/claude-haiku-4-5"),
        )
        .router(
            "support",
            Rules::new("general")
                .rule("sensitive", IntentRule::new().intent("sensitive", "onprem"))
                .rule(
                    "personal-data",
                    SensitiveDataRule::new("onprem").pattern("employee_id", "EMP-[0-9]{6}")?,
                )
                .rule(
                    "language",
                    LanguageRule::new()
                        .script(Script::Han, "qwen")
                        .language("de", "german")?,
                )
                .rule(
                    "intents",
                    IntentRule::new()
                        .intent("order_status", "fast")
                        .intent("refund_dispute", "strong")
                        .intent("translation", "multilingual"),
                )
                .rule(
                    "classifier",
                    ClassifierRule::new(classifier)
                        .label("order_status", "fast")
                        .label("refund_dispute", "strong")
                        .label("translation", "multilingual")
                        .min_confidence(0.6),
                ),
        )
        .breaker(BreakerPolicy::default().cooldown(Duration::from_millis(600)))
        .build()?;
    Ok(relay)
}

/// The same relay from `examples/support_bot.toml`, with `${SIM_URL}` and the API keys'
/// variables answered for the simulator at `sim_url`.
pub fn relay_from_file(sim_url: &str) -> Result<Relay, Box<dyn std::error::Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/support_bot.toml");
    let config = RelayConfig::from_file(path)?;
    let relay = config
        .builder_with_env(|var| match var {
            "SIM_URL" => Some(sim_url.to_owned()),
            "OPENAI_API_KEY" | "DASHSCOPE_API_KEY" => Some("sk-sim".to_owned()),
            "ANTHROPIC_API_KEY" => Some("sk-ant-sim".to_owned()),
            _ => None,
        })?
        .build()?;
    Ok(relay)
}

fn ticket(text: &str) -> ChatRequest {
    ChatRequest::new("support")
        .system("You are a concise support agent.")
        .user(text)
}

fn report(n: usize, req: &ChatRequest, resp: &ChatResponse, at: Duration) {
    let question = req
        .messages
        .last()
        .map(|m| m.text().into_owned())
        .unwrap_or_default();
    let routing = resp.meta.routing.as_ref();
    let rule = routing
        .and_then(|r| r.rule.as_deref())
        .unwrap_or("(default)");
    let reason = routing.map(|r| r.reason.as_str()).unwrap_or("");
    let served = resp
        .meta
        .served_by
        .as_ref()
        .map(|t| t.to_string())
        .unwrap_or_default();
    println!(
        "#{n:<2} {:>6.1}s  {question:?}\n     rule {rule} ({reason}) → route {} → served by {served}",
        at.as_secs_f64(),
        resp.meta.route.as_deref().unwrap_or("?"),
    );
    let why: Vec<String> = resp
        .meta
        .attempts
        .iter()
        .filter(|a| !a.served())
        .map(|a| format!("{} {}", a.target, a.outcome))
        .chain(resp.meta.skipped.iter().map(|s| s.to_string()))
        .collect();
    if !why.is_empty() {
        println!("     because: {}", why.join("; "));
    }
}
