//! Failover across clouds: Claude on Bedrock, Anthropic direct and Claude on Vertex in one
//! chain, each vendor failing in its own shape, over real HTTP on the simulator — there and
//! back, plain and streamed.

use polyrelay::providers::Anthropic;
use polyrelay::providers::bedrock::{AwsAuth, Bedrock};
use polyrelay::providers::vertex::{GoogleAuth, VertexAnthropic};
use polyrelay::simulator::{Reply, SimError, Simulator};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay, RetryPolicy};

use crate::support::clouds::vertex_key_json;

const BEDROCK: &str = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
const DIRECT: &str = "claude-sonnet-4-5";
const VERTEX: &str = "claude-sonnet-4-5@20250929";

/// One relay, three ways to Claude: `to-vertex` tries Bedrock, Anthropic, Vertex; `to-bedrock`
/// the other way round. One attempt per target: this is about failing over, not retrying.
fn relay(sim: &Simulator) -> Relay {
    let bedrock =
        Bedrock::new("us-east-1", AwsAuth::bearer("bedrock-api-key")).base_url(&sim.base_url());
    let direct = Anthropic::new("sk-ant-test").base_url(&format!("{}/v1", sim.base_url()));
    let auth = GoogleAuth::service_account_json(&vertex_key_json(sim)).expect("the test key");
    let vertex = VertexAnthropic::new("support-prod", "us-east5", auth).base_url(&sim.base_url());
    Relay::builder()
        .provider("bedrock", bedrock)
        .provider("anthropic", direct)
        .provider("vertex", vertex)
        .route(
            "to-vertex",
            Chain::new()
                .target(format!("bedrock/{BEDROCK}").as_str())
                .target(format!("anthropic/{DIRECT}").as_str())
                .target(format!("vertex/{VERTEX}").as_str())
                .retry(RetryPolicy::default().max_attempts(1)),
        )
        .route(
            "to-bedrock",
            Chain::new()
                .target(format!("vertex/{VERTEX}").as_str())
                .target(format!("anthropic/{DIRECT}").as_str())
                .target(format!("bedrock/{BEDROCK}").as_str())
                .retry(RetryPolicy::default().max_attempts(1)),
        )
        .build()
        .expect("the relay builds")
}

/// The targets a call went through, in order, with the error kind each gave.
fn walk(meta: &polyrelay::ResponseMeta) -> Vec<(String, Option<ErrorKind>)> {
    meta.attempts
        .iter()
        .map(|a| (a.target.to_string(), a.error.as_ref().map(|e| e.kind())))
        .collect()
}

#[tokio::test]
async fn bedrock_throttled_anthropic_overloaded_vertex_answers_and_back() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);

    // There: Bedrock throttles (429 ThrottlingException), Anthropic is overloaded (529),
    // Vertex answers.
    sim.script(
        BEDROCK,
        [Reply::error(SimError::RateLimited {
            retry_after_secs: 30,
        })],
    );
    sim.script(DIRECT, [Reply::error(SimError::Overloaded)]);
    sim.script(VERTEX, [Reply::text("Claude on Vertex")]);
    let resp = relay
        .chat(&ChatRequest::new("to-vertex").user("Where is my parcel?"))
        .await
        .expect("Vertex answers");
    assert_eq!(resp.text(), "Claude on Vertex");
    assert_eq!(
        resp.meta
            .served_by
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some(format!("vertex/{VERTEX}").as_str())
    );
    let steps = walk(&resp.meta);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0].1, Some(ErrorKind::RateLimited), "{steps:?}");
    assert!(steps[1].1.is_some(), "{steps:?}");
    assert_eq!(steps[2].1, None, "{steps:?}");

    // And back: Vertex's quota is out (429 RESOURCE_EXHAUSTED), Anthropic fails (500),
    // Bedrock answers. Its 429 a moment ago was for one call: a throttled target is tried
    // again by the next call.
    sim.script(
        VERTEX,
        [Reply::error(SimError::RateLimited {
            retry_after_secs: 30,
        })],
    );
    sim.script(DIRECT, [Reply::error(SimError::Server)]);
    sim.script(BEDROCK, [Reply::text("Claude on Bedrock")]);
    let resp = relay
        .chat(&ChatRequest::new("to-bedrock").user("Where is my parcel?"))
        .await
        .expect("Bedrock answers");
    assert_eq!(resp.text(), "Claude on Bedrock");
    let steps = walk(&resp.meta);
    assert_eq!(steps.len(), 3, "{steps:?}");
    assert_eq!(steps[0].1, Some(ErrorKind::RateLimited), "{steps:?}");
    assert_eq!(steps[1].1, Some(ErrorKind::Server), "{steps:?}");
    assert_eq!(steps[2].1, None, "{steps:?}");
}

#[tokio::test]
async fn a_throttling_exception_inside_bedrocks_stream_fails_over_to_vertex() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);
    // Bedrock opens the stream, then an exception frame before any text; Anthropic refuses
    // with a 500; Vertex streams the answer.
    sim.script(
        BEDROCK,
        [Reply::stream_error_after(
            0,
            SimError::RateLimited {
                retry_after_secs: 1,
            },
        )],
    );
    sim.script(DIRECT, [Reply::error(SimError::Server)]);
    sim.script(VERTEX, [Reply::text("streamed from Vertex")]);
    let stream = relay
        .chat_stream(&ChatRequest::new("to-vertex").user("Where is my parcel?"))
        .await
        .expect("a stream");
    let resp = stream.into_response().await.expect("a whole answer");
    assert_eq!(resp.text(), "streamed from Vertex");
    let steps = walk(&resp.meta);
    assert_eq!(steps.len(), 3, "{steps:?}");
    // The in-stream exception is a typed, retryable error, not a silent empty answer.
    assert_eq!(steps[0].1, Some(ErrorKind::RateLimited), "{steps:?}");
    // Every vendor was really called, each on its own path.
    let paths: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .filter(|p| !p.starts_with("/token"))
        .collect();
    assert_eq!(paths.len(), 3, "{paths:?}");
    assert!(paths[0].ends_with("-v1%3A0/converse-stream"), "{paths:?}");
    assert!(paths[1].ends_with("/v1/messages"), "{paths:?}");
    assert!(paths[2].ends_with(":streamRawPredict"), "{paths:?}");
}

/// The faults every vendor is tested against, for each cloud codec: a 5xx, a 429, a reset
/// before the headers, a hang past the response window, malformed JSON, and a stream cut
/// before its first token. Each fails over to a healthy OpenAI target on the same simulator,
/// and the failed attempt says what went wrong.
#[tokio::test]
async fn every_fault_fails_over_from_every_cloud_codec() {
    use polyrelay::providers::OpenAi;
    use std::time::Duration;

    let sim = Simulator::start().await.unwrap();
    let base = sim.base_url();
    let auth = GoogleAuth::service_account_json(&vertex_key_json(&sim)).expect("the test key");
    // (provider name, model) — each cloud codec under its own model id.
    let clouds = [
        ("bedrock", "amazon.nova-pro-v1:0"),
        ("bedrock_native", "anthropic.claude-haiku-4-5-20251001-v1:0"),
        ("vertex", "gemini-2.5-flash"),
        ("vertex_claude", "claude-haiku-4-5@20251001"),
        ("vertex_openai", "meta/llama-3.3-70b-instruct-maas"),
    ];
    // A fresh relay for every fault: five failures in a row would open a breaker, and this
    // test is about each fault on its own.
    let relay = || {
        let mut builder = crate::support::clouds::with_clouds(Relay::builder(), &sim, auth.clone())
            .provider("openai", OpenAi::new("sk").base_url(&format!("{base}/v1")));
        for (provider, model) in clouds {
            builder = builder.route(
                provider,
                Chain::new()
                    .target(format!("{provider}/{model}").as_str())
                    .target("openai/gpt-4o-mini")
                    .retry(RetryPolicy::default().max_attempts(1))
                    // The response window: a cloud that hangs is left after it.
                    .attempt_timeout(Duration::from_millis(400)),
            );
        }
        builder.build().expect("the relay builds")
    };
    sim.script("gpt-4o-mini", [Reply::text("the fallback answered")]);

    // (name, the reply, whether the call streams, the kinds the failed attempt may report)
    type Fault = (&'static str, fn() -> Reply, bool, &'static [ErrorKind]);
    let faults: [Fault; 7] = [
        (
            "5xx",
            || Reply::error(SimError::Server),
            false,
            &[ErrorKind::Server],
        ),
        (
            "503",
            || Reply::error(SimError::Overloaded),
            false,
            &[ErrorKind::Overloaded, ErrorKind::Server],
        ),
        (
            "429",
            || {
                Reply::error(SimError::RateLimited {
                    retry_after_secs: 1,
                })
            },
            false,
            &[ErrorKind::RateLimited],
        ),
        (
            "reset",
            Reply::reset,
            false,
            &[ErrorKind::Connect, ErrorKind::StreamInterrupted],
        ),
        ("hang", Reply::hang, false, &[ErrorKind::Timeout]),
        (
            "malformed",
            || Reply::json(200, "{\"not\": json"),
            false,
            &[ErrorKind::Decode],
        ),
        (
            "stream cut before its first token",
            || Reply::text("never seen").cut_after(0),
            true,
            &[ErrorKind::StreamInterrupted, ErrorKind::Decode],
        ),
    ];
    for (provider, model) in clouds {
        for (fault, reply, streamed, kinds) in &faults {
            sim.script(model, [reply()]);
            let relay = relay();
            let req = ChatRequest::new(provider).user("Where is my parcel?");
            let resp = if *streamed {
                let stream = relay.chat_stream(&req).await;
                match stream {
                    Ok(s) => s.into_response().await,
                    Err(e) => Err(e),
                }
            } else {
                relay.chat(&req).await
            }
            .unwrap_or_else(|e| panic!("{provider} / {fault}: {e}"));
            assert_eq!(resp.text(), "the fallback answered", "{provider} / {fault}");
            let steps = walk(&resp.meta);
            assert_eq!(steps.len(), 2, "{provider} / {fault}: {steps:?}");
            let kind = steps[0]
                .1
                .unwrap_or_else(|| panic!("{provider} / {fault}: {steps:?}"));
            assert!(
                kinds.contains(&kind),
                "{provider} / {fault}: {kind:?} is not one of {kinds:?}"
            );
        }
    }
}

/// Inference-profile ids, ARNs and Vertex's `@version` ids work wherever a model is named —
/// as a request's `provider/model` and as a request-scoped fallback — reach the vendor as
/// the bytes signed, and are priced by the catalog.
#[tokio::test]
async fn profile_ids_arns_and_versions_work_wherever_a_model_is_named() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim);
    let arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0";
    sim.script(arn, [Reply::error(SimError::Server)]);
    sim.script("claude-haiku-4-5@20251001", [Reply::text("from Vertex")]);
    let resp = relay
        .chat(
            &ChatRequest::new(format!("bedrock/{arn}").as_str())
                .user("Hello")
                .fallbacks(["vertex/claude-haiku-4-5@20251001"]),
        )
        .await
        .expect("the fallback answers");
    assert_eq!(resp.text(), "from Vertex");
    let steps = walk(&resp.meta);
    assert_eq!(steps[0].0, format!("bedrock/{arn}"), "{steps:?}");
    assert_eq!(
        steps.last().map(|s| s.0.as_str()),
        Some("vertex/claude-haiku-4-5@20251001")
    );
    // The ARN went out escaped, as one path segment.
    let bedrock_paths: Vec<String> = sim
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .filter(|p| p.starts_with("/model/"))
        .collect();
    assert!(!bedrock_paths.is_empty());
    for p in &bedrock_paths {
        assert_eq!(
            p,
            "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-haiku-4-5-20251001-v1%3A0/converse"
        );
    }
    // Priced: the Vertex id through its @version, the ARN through the profile it names.
    assert!(
        resp.meta.cost.is_some_and(|c| c > 0.0),
        "{:?}",
        resp.meta.cost
    );
    sim.script(arn, [Reply::text("from Bedrock")]);
    let resp = relay
        .chat(&ChatRequest::new(format!("bedrock/{arn}").as_str()).user("Hello"))
        .await
        .expect("Bedrock answers");
    assert_eq!(resp.text(), "from Bedrock");
    assert!(
        resp.meta.cost.is_some_and(|c| c > 0.0),
        "{:?}",
        resp.meta.cost
    );
}
