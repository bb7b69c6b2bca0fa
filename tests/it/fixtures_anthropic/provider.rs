//! The provider over loopback, replaying recordings.

use std::time::Duration;

use polyrelay::ErrorKind;
use serde_json::Value;

use super::*;
use polyrelay::providers::Anthropic;
use polyrelay::providers::anthropic::encode_request;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{CallContext, ChatRequest, Provider};

// ---------------------------------------------------------------------------------------------
// The provider over loopback, replaying recordings
// ---------------------------------------------------------------------------------------------

async fn guarded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

fn provider_at(sim: &Simulator) -> Anthropic {
    Anthropic::new("sk-ant-test-key-0123456789")
        .base_url(&format!("{}/v1", sim.base_url()))
        .beta("structured-outputs-2025-12-15")
}

/// The provider sends what `encode_request` encodes, with Anthropic's headers, and its
/// answers (plain, streamed, error, error inside a stream) are what the codec decodes.
#[tokio::test]
async fn provider_replays_recordings() {
    guarded(async {
        let sim = Simulator::start().await.expect("simulator");
        let p = provider_at(&sim);
        let cx = CallContext::shared().expect("client");
        let req = ChatRequest::new("ignored")
            .system("Be brief.")
            .user("Hello");

        // Plain.
        let body = read_str("anthropic/messages_thinking.json");
        sim.script(
            "m-json",
            [Reply::json(200, body.clone()).header("request-id", "req_rec")],
        );
        let mut r = p.chat(&req, "m-json", &cx).await.expect("chat");
        // The simulator adds `x-request-id: req_sim_<n>`, which is read before `request-id`.
        assert_eq!(r.meta.request_id.as_deref(), Some("req_sim_0"));
        r.meta = Default::default();
        // Anthropic sends no creation time: the provider gives the answer its arrival's.
        assert!(std::mem::take(&mut r.created) > 0, "created");
        assert_eq!(r, Ant::decode_json("anthropic/messages_thinking.json"));
        let sent = &sim.requests_for("m-json")[0];
        assert_eq!(sent.method, "POST");
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some("sk-ant-test-key-0123456789"));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(
            sent.header("anthropic-beta"),
            Some("structured-outputs-2025-12-15")
        );
        assert!(sent.header("authorization").is_none());
        assert!(
            sent.header("content-type")
                .is_some_and(|c| c.contains("application/json"))
        );
        let want: Value =
            serde_json::from_slice(&encode_request(&req, "m-json", false).expect("encodes"))
                .expect("JSON");
        assert_eq!(sent.body, want);
        assert_eq!(sent.body["system"], "Be brief.");

        // Streamed.
        let rel = "anthropic/messages_stream_tool_use.sse";
        sim.script("m-sse", [Reply::sse_bytes(read(rel)).split_every(7)]);
        let s = p.chat_stream(&req, "m-sse", &cx).await.expect("stream");
        assert_eq!(s.meta().request_id.as_deref(), Some("req_sim_1"));
        let mut folded = s.into_response().await.expect("collect");
        folded.meta = Default::default();
        let (_, want) = Ant::decode_stream(rel);
        assert_eq!(folded, want);
        assert_eq!(sim.requests_for("m-sse")[0].body["stream"], true);

        // HTTP error, with the recorded headers.
        let rel = "anthropic/error_429_rate_limit_error.json";
        let mut reply = Reply::json(429, read_str(rel));
        let side = read_sidecar("anthropic/error_429_rate_limit_error.http.json");
        for (k, v) in &side.headers {
            if k != "content-length" && k != "content-type" && k != "connection" {
                reply = reply.header(k.as_str(), v.to_str().expect("ASCII"));
            }
        }
        sim.script("m-429", [reply]);
        let e = p.chat(&req, "m-429", &cx).await.expect_err("429");
        let want = Ant::decode_error_fixture(rel);
        assert_eq!(e, want);
        assert_eq!(e.request_id(), want.request_id());
        assert_eq!(e.retry_after(), None);

        // Error event inside a 200 stream.
        let rel = "anthropic/messages_stream_error_event_overloaded.sse";
        sim.script("m-err", [Reply::sse_bytes(read(rel))]);
        let s = p.chat_stream(&req, "m-err", &cx).await.expect("200 stream");
        let e = s.into_response().await.expect_err("error event");
        assert_eq!(e.kind(), ErrorKind::Overloaded);

        // A server answering JSON to a stream request: one answer, thinking blocks kept.
        sim.script("m-json-stream", [Reply::json(200, body)]);
        let s = p
            .chat_stream(&req, "m-json-stream", &cx)
            .await
            .expect("stream");
        let folded = s.into_response().await.expect("collect");
        let mut want = Ant::decode_json("anthropic/messages_thinking.json");
        want.meta = folded.meta.clone();
        // Anthropic sends no creation time: the provider gives the answer its arrival's.
        assert!(folded.created > 0, "created");
        want.created = folded.created;
        assert_eq!(folded, want);
    })
    .await;
}

/// The key never shows: not in the provider's Debug, nor in errors that echo it.
#[tokio::test]
async fn key_never_shows() {
    guarded(async {
        let sim = Simulator::start().await.expect("simulator");
        let key = "sk-ant-test-key-0123456789";
        let p = provider_at(&sim);
        assert!(!format!("{p:?}").contains(key));
        let echo = format!(
            r#"{{"type":"error","error":{{"type":"authentication_error","message":"invalid x-api-key {key}"}}}}"#
        );
        sim.script("m-401", [Reply::json(401, echo)]);
        let cx = CallContext::shared().expect("client");
        let e = p
            .chat(&ChatRequest::new("x").user("q"), "m-401", &cx)
            .await
            .expect_err("401");
        assert_eq!(e.kind(), ErrorKind::Auth);
        let shown = format!("{e} {e:?} {:?}", e.body_snippet());
        assert!(!shown.contains(key), "{shown}");
        assert_eq!(p.name(), "anthropic");
    })
    .await;
}
