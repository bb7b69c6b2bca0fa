//! AWS Bedrock codecs (Converse, ConverseStream, InvokeModel, Mantle) over real HTTP
//! against the simulator: bodies, streams of event-stream frames, in-stream exceptions, cut
//! and corrupt streams, errors and whose fault they are, failover through the relay.

use crate::support;

use std::time::Duration;

use polyrelay::providers::Anthropic;
use polyrelay::providers::bedrock::{self, AwsAuth, Bedrock, BedrockAnthropic};
use polyrelay::simulator::SimError;
use polyrelay::{
    CallContext, Chain, ChatRequest, ChunkKind, ErrorKind, Fault, FinishReason, MidStreamRecovery,
    Provider, Relay,
};
use serde_json::Value;
use support::*;

const HAIKU: &str = "us.anthropic.claude-3-5-haiku-20241022-v1:0";
const NOVA: &str = "amazon.nova-micro-v1:0";
const DIRECT: &str = "claude-3-5-haiku-20241022";

fn converse(sim: &Simulator) -> Bedrock {
    Bedrock::new("us-east-1", AwsAuth::unsigned()).base_url(&sim.base_url())
}

fn invoke(sim: &Simulator) -> BedrockAnthropic {
    BedrockAnthropic::new("us-east-1", AwsAuth::unsigned()).base_url(&sim.base_url())
}

fn cx() -> CallContext {
    CallContext::new(reqwest::Client::new())
}

fn req() -> ChatRequest {
    ChatRequest::new("m").system("Be brief.").user("Say hello")
}

fn body_of(r: &RecordedRequest) -> Value {
    r.body.clone()
}

#[tokio::test]
async fn converse_plain_and_streamed() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        HAIKU,
        [Reply::text("Hi there"), Reply::text("Hello big world")],
    );
    let p = converse(&sim);
    let resp = guarded(p.chat(&req(), HAIKU, &cx())).await.expect("answer");
    assert_eq!(resp.text(), "Hi there");
    assert_eq!(resp.finish_reason(), Some(&FinishReason::Stop));
    assert!(resp.usage.is_some_and(|u| u.output_tokens > 0));
    assert!(resp.id.starts_with("chatcmpl-"));

    let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Hello big world");
    // One id for the whole answer; the finish is the last chunk, with the usage.
    assert!(chunks.iter().all(|c| c.id == chunks[0].id));
    let last = chunks.last().expect("chunks");
    assert_eq!(last.finish_reason(), Some(&FinishReason::Stop));
    assert!(last.usage.is_some());
    let finishes = chunks
        .iter()
        .filter(|c| c.finish_reason().is_some())
        .count();
    assert_eq!(finishes, 1);

    // What went out: the model in the path with `:` escaped, a Converse body.
    let sent = sim.requests_for(HAIKU);
    assert_eq!(sent.len(), 2);
    assert_eq!(
        sent[0].path,
        "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
    );
    assert_eq!(
        sent[1].path,
        "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse-stream"
    );
    let b = body_of(&sent[0]);
    assert_eq!(b["system"][0]["text"], "Be brief.");
    assert_eq!(b["messages"][0]["content"][0]["text"], "Say hello");
    assert!(b.get("model").is_none());
}

#[tokio::test]
async fn converse_tool_calls_plain_and_streamed() {
    let sim = Simulator::start().await.expect("simulator");
    let call = Reply::tool_call("get_weather", r#"{"city":"Paris"}"#);
    sim.script(NOVA, [call.clone(), call]);
    let p = converse(&sim);
    let resp = guarded(p.chat(&req(), NOVA, &cx())).await.expect("answer");
    assert_eq!(resp.finish_reason(), Some(&FinishReason::ToolCalls));
    let calls = resp.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.name, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].function.arguments).expect("args");
    assert_eq!(args["city"], "Paris");

    let stream = guarded(p.chat_stream(&req(), NOVA, &cx()))
        .await
        .expect("stream");
    let folded = guarded(stream.into_response()).await.expect("folded");
    assert_eq!(folded.tool_calls()[0].function.name, "get_weather");
    assert!(folded.tool_calls()[0].id.starts_with("tooluse_"));
    assert_eq!(folded.finish_reason(), Some(&FinishReason::ToolCalls));
}

#[tokio::test]
async fn errors_over_http_say_whose_fault() {
    let sim = Simulator::start().await.expect("simulator");
    let cases = [
        (
            SimError::RateLimited {
                retry_after_secs: 3,
            },
            ErrorKind::RateLimited,
            "ThrottlingException",
            429,
        ),
        (
            SimError::Overloaded,
            ErrorKind::Overloaded,
            "ServiceUnavailableException",
            503,
        ),
        (
            SimError::Server,
            ErrorKind::Server,
            "InternalServerException",
            500,
        ),
        (
            SimError::ModelError,
            ErrorKind::Server,
            "ModelErrorException",
            424,
        ),
        (
            SimError::Auth,
            ErrorKind::Auth,
            "AccessDeniedException",
            403,
        ),
        (
            SimError::QuotaExhausted,
            ErrorKind::QuotaExhausted,
            "ServiceQuotaExceededException",
            400,
        ),
        (
            SimError::ContextLength,
            ErrorKind::ContextLengthExceeded,
            "ValidationException",
            400,
        ),
        (
            SimError::InvalidRequest,
            ErrorKind::InvalidRequest,
            "ValidationException",
            400,
        ),
    ];
    sim.script(HAIKU, cases.iter().map(|(e, ..)| Reply::error(*e)));
    let p = converse(&sim);
    for (sim_error, kind, code, status) in cases {
        let e = guarded(p.chat(&req(), HAIKU, &cx()))
            .await
            .expect_err("an error");
        assert_eq!(e.kind(), kind, "{sim_error:?}: {e}");
        assert_eq!(e.code(), Some(code), "{sim_error:?}");
        assert_eq!(e.status(), Some(status), "{sim_error:?}");
        assert!(!e.message().is_empty());
        if kind == ErrorKind::Auth {
            // A bad key or an IAM denial is the key's, never the target's for everyone.
            assert!(matches!(e.fault(), Fault::Key | Fault::KeyOnTarget));
        }
    }
    // A guardrail's block is an answer that says why it is empty.
    sim.script(HAIKU, [Reply::error(SimError::ContentPolicy)]);
    let resp = guarded(p.chat(&req(), HAIKU, &cx()))
        .await
        .expect("blocked");
    assert_eq!(resp.finish_reason(), Some(&FinishReason::ContentFilter));
    // An error before the stream starts is an ordinary HTTP error.
    sim.script(
        HAIKU,
        [Reply::bedrock_error(
            400,
            "ValidationException",
            "The provided model identifier is invalid.",
        )],
    );
    let Err(e) = guarded(p.chat_stream(&req(), HAIKU, &cx())).await else {
        panic!("a 400 before the stream");
    };
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
}

#[tokio::test]
async fn in_stream_exceptions_are_typed_mid_stream_errors() {
    let sim = Simulator::start().await.expect("simulator");
    let cases = [
        (
            SimError::RateLimited {
                retry_after_secs: 1,
            },
            ErrorKind::RateLimited,
            true,
        ),
        (SimError::ModelError, ErrorKind::Server, true),
        (SimError::Server, ErrorKind::Server, true),
        (SimError::Overloaded, ErrorKind::Overloaded, true),
        (SimError::InvalidRequest, ErrorKind::InvalidRequest, false),
    ];
    sim.script(
        HAIKU,
        cases.iter().map(|(e, ..)| Reply::stream_error_after(2, *e)),
    );
    let p = converse(&sim);
    for (sim_error, kind, retryable) in cases {
        let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
            .await
            .expect("stream opens");
        let (chunks, err) = guarded(drain(&mut stream)).await;
        let e = err.unwrap_or_else(|| panic!("{sim_error:?}: the stream ended silently"));
        assert_eq!(e.kind(), kind, "{sim_error:?}: {e}");
        assert_eq!(e.is_retryable(), retryable, "{sim_error:?}");
        assert!(!joined(&chunks).is_empty(), "content came first");
        assert!(chunks.iter().all(|c| c.finish_reason().is_none()));
    }
}

#[tokio::test]
async fn cut_and_corrupt_streams_are_interrupted_and_split_ones_whole() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        HAIKU,
        [
            Reply::text("one two three").cut_inside_frame(2),
            Reply::text("one two three").bad_message_crc(2),
            Reply::text("one two three").bad_prelude_crc(0),
            Reply::text("one two three").cut_after(2),
            Reply::text("one two three").split_every(7),
        ],
    );
    let p = converse(&sim);
    for what in [
        "cut inside a frame",
        "bad message CRC",
        "bad prelude CRC",
        "cut after frames",
    ] {
        let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
            .await
            .expect("stream opens");
        let (_, err) = guarded(drain(&mut stream)).await;
        let e = err.unwrap_or_else(|| panic!("{what}: no error"));
        assert_eq!(e.kind(), ErrorKind::StreamInterrupted, "{what}: {e}");
        assert!(e.is_retryable(), "{what}");
    }
    let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
        .await
        .expect("stream opens");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "one two three");
}

#[tokio::test]
async fn invoke_model_plain_and_streamed() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        HAIKU,
        [Reply::text("Hi there"), Reply::text("Hello big world")],
    );
    let p = invoke(&sim);
    let resp = guarded(p.chat(&req(), HAIKU, &cx())).await.expect("answer");
    assert_eq!(resp.text(), "Hi there");
    let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Hello big world");
    assert_eq!(
        chunks.last().and_then(|c| c.finish_reason()),
        Some(&FinishReason::Stop)
    );
    let sent = sim.requests_for(HAIKU);
    assert!(sent[0].path.ends_with("v1%3A0/invoke"), "{}", sent[0].path);
    assert!(sent[1].path.ends_with("/invoke-with-response-stream"));
    for r in &sent {
        let b = body_of(r);
        assert_eq!(b["anthropic_version"], "bedrock-2023-05-31");
        assert!(b.get("model").is_none() && b.get("stream").is_none());
    }
    // An exception frame in an InvokeModel stream too.
    sim.script(
        HAIKU,
        [Reply::stream_error_after(
            1,
            SimError::RateLimited {
                retry_after_secs: 1,
            },
        )],
    );
    let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
        .await
        .expect("stream");
    let (_, err) = guarded(drain(&mut stream)).await;
    assert_eq!(err.expect("exception").kind(), ErrorKind::RateLimited);
}

fn relay_bedrock_then_anthropic(sim: &Simulator, chain: Chain) -> Relay {
    Relay::builder()
        .provider("bedrock", converse(sim))
        .provider(
            "anthropic",
            Anthropic::new("sk-a").base_url(&format!("{}/v1", sim.base_url())),
        )
        .route("r", chain)
        .build()
        .expect("relay")
}

#[tokio::test]
async fn the_relay_names_the_model_asked_for_and_fails_over_from_bedrock() {
    let sim = Simulator::start().await.expect("simulator");
    let chain = Chain::new()
        .target(format!("bedrock/{HAIKU}").as_str())
        .target(format!("anthropic/{DIRECT}").as_str())
        .total_timeout(Duration::from_secs(10));
    let relay = relay_bedrock_then_anthropic(&sim, chain);
    sim.script(HAIKU, [Reply::text("from Bedrock")]);
    let resp = guarded(relay.chat(ChatRequest::new("r").user("Hello?")))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "from Bedrock");
    // Converse names no model: the answer carries the id asked for, streamed or not.
    assert_eq!(resp.model, HAIKU);
    sim.script(HAIKU, [Reply::text("streamed from Bedrock")]);
    let mut stream = guarded(relay.chat_stream(ChatRequest::new("r").user("Hello?")))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "streamed from Bedrock");
    assert!(chunks.iter().all(|c| c.model == HAIKU), "{chunks:?}");

    // A bad key on Bedrock: the key's fault, and the call moves on to Anthropic.
    sim.script(HAIKU, [Reply::error(SimError::Auth)]);
    sim.script(DIRECT, [Reply::text("from Anthropic")]);
    let resp = guarded(relay.chat(ChatRequest::new("r").user("Hello?")))
        .await
        .expect("failed over");
    assert_eq!(resp.text(), "from Anthropic");
    let first = &resp.meta.attempts[0];
    assert_eq!(first.failure(), Some(ErrorKind::Auth));
}

#[tokio::test]
async fn a_throttled_bedrock_stream_restarts_on_anthropic() {
    let sim = Simulator::start().await.expect("simulator");
    let chain = Chain::new()
        .target(format!("bedrock/{HAIKU}").as_str())
        .target(format!("anthropic/{DIRECT}").as_str())
        .mid_stream_recovery(MidStreamRecovery::Restart)
        .total_timeout(Duration::from_secs(10));
    let relay = relay_bedrock_then_anthropic(&sim, chain);
    sim.script(
        HAIKU,
        [Reply::stream_error_after(
            2,
            SimError::RateLimited {
                retry_after_secs: 1,
            },
        )],
    );
    sim.script(DIRECT, [Reply::text("the whole answer")]);
    let mut stream = guarded(relay.chat_stream(ChatRequest::new("r").user("Hello?")))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    let restart = chunks
        .iter()
        .position(|c| c.kind == ChunkKind::Restart)
        .expect("a restart signal: the exception was not a silent end");
    assert_eq!(joined(&chunks[restart..]), "the whole answer");
    assert!(!joined(&chunks[..restart]).is_empty());
}

#[tokio::test]
async fn dropping_a_stream_closes_the_connection() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        HAIKU,
        [Reply::text("one two three four five").frame_delay(Duration::from_millis(50))],
    );
    let p = converse(&sim);
    let mut stream = guarded(p.chat_stream(&req(), HAIKU, &cx()))
        .await
        .expect("stream");
    let first = guarded(futures::StreamExt::next(&mut stream)).await;
    assert!(first.is_some());
    drop(stream);
    let sent = sim.requests_for(HAIKU);
    guarded(sent[0].closed()).await;
    assert!(sent[0].is_closed());
}

#[tokio::test]
async fn signing_is_the_auth_s_and_mantle_is_openai_shaped() {
    let sim = Simulator::start().await.expect("simulator");
    sim.set_default(Reply::text("ok"));
    let p = Bedrock::new("us-east-1", AwsAuth::bearer("ABSK-sim-key")).base_url(&sim.base_url());
    guarded(p.chat(&req(), NOVA, &cx())).await.expect("answer");
    let sent = sim.requests_for(NOVA);
    assert_eq!(sent[0].header("authorization"), Some("Bearer ABSK-sim-key"));
    assert!(!format!("{p:?}").contains("ABSK-sim-key"));

    let m = bedrock::mantle("us-east-1", "ABSK-mantle").base_url(&format!("{}/v1", sim.base_url()));
    let resp = guarded(m.chat(&req(), "openai.gpt-oss-120b", &cx()))
        .await
        .expect("mantle");
    assert_eq!(resp.text(), "ok");
    let sent = sim.requests_for("openai.gpt-oss-120b");
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), Some("Bearer ABSK-mantle"));
    assert_eq!(Provider::name(&m), "bedrock_mantle");
}

#[tokio::test]
async fn sigv4_signs_the_escaped_model_path_and_a_clock_skew_is_signed_again() {
    let sim = Simulator::start().await.expect("simulator");
    // A signature refused for clock skew, then the answer: the codec hands the refusal to
    // its AwsAuth, which re-signs once with the server's clock.
    let date = httpdate_in_an_hour();
    sim.script(
        HAIKU,
        [
            Reply::bedrock_error(
                403,
                "InvalidSignatureException",
                "Signature expired: 20250101T000000Z is now earlier than 20250101T000500Z (20250101T001000Z - 5 min.)",
            )
            .header("date", &date),
            Reply::text("signed"),
        ],
    );
    let auth = AwsAuth::credentials("AKIDSIM", "sim-secret-key", None);
    let p = Bedrock::new("us-east-1", auth).base_url(&sim.base_url());
    let resp = guarded(p.chat(&req(), HAIKU, &cx())).await.expect("answer");
    assert_eq!(resp.text(), "signed");
    let sent = sim.requests_for(HAIKU);
    assert_eq!(sent.len(), 2, "one refusal, one re-signed request");
    for r in &sent {
        let authz = r.header("authorization").expect("signed");
        assert!(
            authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDSIM/")
                && authz.contains("/us-east-1/bedrock/aws4_request"),
            "{authz}"
        );
        assert!(r.header("x-amz-date").is_some());
        assert!(r.path.contains("v1%3A0/converse"), "{}", r.path);
    }
    assert_ne!(sent[0].header("x-amz-date"), sent[1].header("x-amz-date"));
    assert!(!format!("{p:?}").contains("sim-secret-key"));
}

/// An HTTP date an hour from now: a server clock the signer must move to.
fn httpdate_in_an_hour() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600))
}
