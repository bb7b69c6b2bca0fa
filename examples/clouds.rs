//! `cargo run --example clouds --features simulator`
//!
//! Claude and Gemini through the clouds enterprise teams buy them from — AWS Bedrock and
//! Google Vertex AI — next to Anthropic's own API, in one chain that fails over between
//! them. Runs on the built-in simulator, with no keys and no network: Bedrock gets a Bedrock
//! API key (`AwsAuth::bearer`; `Bedrock::from_env()` takes the AWS chain instead), Vertex the
//! published test service account whose token endpoint is the simulator
//! (`GoogleAuth::from_env()` takes Application Default Credentials instead).

use polyrelay::providers::Anthropic;
use polyrelay::providers::bedrock::{AwsAuth, Bedrock};
use polyrelay::providers::vertex::{GoogleAuth, VertexAnthropic, VertexGemini};
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{Chain, ChatRequest, Relay};

const BEDROCK_CLAUDE: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const VERTEX_CLAUDE: &str = "claude-sonnet-4-5@20250929";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sim = Simulator::start().await?;
    let base = sim.base_url();

    // A service-account key file's contents, with its token endpoint on the simulator.
    let key = include_str!("../tests/fixtures/vertex/auth/google_auth_test_service_account.json");
    let mut key: serde_json::Value = serde_json::from_str(key)?;
    key["token_uri"] = sim.token_url().into();
    let google = GoogleAuth::service_account_json(&key.to_string())?;

    let relay = Relay::builder()
        .provider(
            "bedrock",
            Bedrock::new("us-east-1", AwsAuth::bearer("bedrock-api-key")).base_url(&base),
        )
        .provider(
            "anthropic",
            Anthropic::new("sk-ant-…").base_url(&format!("{base}/v1")),
        )
        .provider(
            "vertex",
            VertexAnthropic::new("support-prod", "us-east5", google.clone()).base_url(&base),
        )
        .provider(
            "gemini",
            VertexGemini::new("support-prod", "europe-west4", google).base_url(&base),
        )
        .route(
            "claude",
            Chain::new()
                .target(format!("bedrock/{BEDROCK_CLAUDE}").as_str())
                .target("anthropic/claude-sonnet-4-5")
                .target(format!("vertex/{VERTEX_CLAUDE}").as_str()),
        )
        .build()?;

    // Plain calls, each cloud on its own path and auth.
    sim.script(
        BEDROCK_CLAUDE,
        [Reply::text("Claude on Bedrock (Converse).")],
    );
    let resp = relay
        .chat(ChatRequest::new("claude").user("Hello?"))
        .await?;
    println!("bedrock:  {}", resp.text());
    sim.script("gemini-2.5-flash", [Reply::text("Gemini on Vertex.")]);
    let resp = relay
        .chat(ChatRequest::new("gemini/gemini-2.5-flash").user("Hello?"))
        .await?;
    println!("vertex:   {}", resp.text());

    // A stream from Bedrock: AWS's binary event stream, decoded as it arrives.
    sim.script(
        BEDROCK_CLAUDE,
        [Reply::text("Streamed through ConverseStream.")],
    );
    let stream = relay
        .chat_stream(ChatRequest::new("claude").user("Hello?"))
        .await?;
    println!("streamed: {}", stream.into_response().await?.text());

    // Failover: Bedrock throttles, Anthropic is overloaded, Claude on Vertex answers.
    sim.script(
        BEDROCK_CLAUDE,
        [Reply::error(SimError::RateLimited {
            retry_after_secs: 30,
        })],
    );
    sim.script("claude-sonnet-4-5", [Reply::error(SimError::Overloaded)]);
    sim.script(
        VERTEX_CLAUDE,
        [Reply::text("Claude on Vertex, after two failures.")],
    );
    let resp = relay
        .chat(ChatRequest::new("claude").user("Hello?"))
        .await?;
    println!("failover: {}", resp.text());
    for attempt in &resp.meta.attempts {
        let outcome = attempt
            .error
            .as_ref()
            .map_or("answered".to_owned(), |e| format!("{:?}", e.kind()));
        println!("          {} → {outcome}", attempt.target);
    }
    if let Some(cost) = resp.meta.cost {
        println!("cost:     {cost:.6} USD (the catalog prices Bedrock and Vertex ids)");
    }
    Ok(())
}
