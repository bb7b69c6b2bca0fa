//! Google Vertex AI codecs and Google auth against recordings and the simulator.
//!
//! Every call here goes over loopback HTTP: the simulator serves Vertex's paths, Google's
//! token endpoint (`/token`, named as the key file's `token_uri`) and the metadata server.

use crate::support;

use std::time::Duration;

use polyrelay::providers::vertex::{self, GoogleAuth, VertexAnthropic, VertexGemini};
use polyrelay::simulator::SimError;
use polyrelay::{CallContext, Chain, ChatRequest, ErrorKind, Fault, Provider, Relay};
use support::*;

const KEY_FILE: &str = "tests/fixtures/vertex/auth/google_auth_test_service_account.json";
const GEMINI: &str = "gemini-2.5-flash";
const CLAUDE: &str = "claude-sonnet-4-5@20250929";

/// The published test key with its `token_uri` pointed at `token_uri`.
fn key_file_json(token_uri: &str) -> String {
    let raw = std::fs::read_to_string(KEY_FILE).expect("key file");
    let mut v: serde_json::Value = serde_json::from_str(&raw).expect("json");
    v["token_uri"] = token_uri.into();
    v.to_string()
}

/// A service account whose tokens come from the simulator.
fn sa_auth(sim: &Simulator) -> GoogleAuth {
    GoogleAuth::service_account_json(&key_file_json(&sim.token_url())).expect("key")
}

fn gemini(sim: &Simulator, auth: GoogleAuth) -> VertexGemini {
    VertexGemini::new("my-project", "us-central1", auth).base_url(&sim.base_url())
}

fn claude(sim: &Simulator, auth: GoogleAuth) -> VertexAnthropic {
    VertexAnthropic::new("my-project", "us-east5", auth).base_url(&sim.base_url())
}

fn cx() -> CallContext {
    CallContext::new(reqwest::Client::new())
}

fn req() -> ChatRequest {
    ChatRequest::new("m").user("Hello?")
}

fn bearer(r: &RecordedRequest) -> String {
    r.header("authorization").unwrap_or("").to_owned()
}

#[tokio::test]
async fn gemini_on_vertex_plain_and_streamed_with_a_service_account_token() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        GEMINI,
        [Reply::text("Paris."), Reply::text("Streamed Paris.")],
    );
    let p = gemini(&sim, sa_auth(&sim));

    let resp = guarded(p.chat(&req(), GEMINI, &cx()))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "Paris.");
    let mut stream = guarded(p.chat_stream(&req(), GEMINI, &cx()))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Streamed Paris.");

    // One token, fetched with a signed assertion, used by both calls.
    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].form("grant_type").as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    let assertion = tokens[0].form("assertion").expect("assertion");
    assert_eq!(assertion.split('.').count(), 3, "{assertion}");
    let calls = sim.requests_for(GEMINI);
    assert_eq!(calls.len(), 2);
    let base = "/v1/projects/my-project/locations/us-central1/publishers/google/models";
    assert_eq!(calls[0].path, format!("{base}/{GEMINI}:generateContent"));
    assert_eq!(
        calls[1].path,
        format!("{base}/{GEMINI}:streamGenerateContent?alt=sse")
    );
    assert!(calls[1].is_stream());
    for c in &calls {
        assert_eq!(bearer(c), "Bearer ya29.sim-0");
        assert_eq!(c.body["contents"][0]["parts"][0]["text"], "Hello?");
    }
}

#[tokio::test]
async fn claude_on_vertex_plain_and_streamed_through_raw_predict() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(CLAUDE, [Reply::text("Hi."), Reply::text("Streamed hi.")]);
    let p = claude(&sim, sa_auth(&sim));

    let resp = guarded(p.chat(&req(), CLAUDE, &cx()))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "Hi.");
    let mut stream = guarded(p.chat_stream(&req(), CLAUDE, &cx()))
        .await
        .expect("stream");
    let (chunks, err) = guarded(drain(&mut stream)).await;
    assert!(err.is_none(), "{err:?}");
    assert_eq!(joined(&chunks), "Streamed hi.");

    assert_eq!(sim.token_requests().len(), 1);
    let calls = sim.requests_for(CLAUDE);
    assert_eq!(calls.len(), 2);
    let base = "/v1/projects/my-project/locations/us-east5/publishers/anthropic/models";
    assert_eq!(calls[0].path, format!("{base}/{CLAUDE}:rawPredict"));
    assert_eq!(calls[1].path, format!("{base}/{CLAUDE}:streamRawPredict"));
    for (c, stream) in calls.iter().zip([false, true]) {
        assert_eq!(bearer(c), "Bearer ya29.sim-0");
        assert_eq!(c.body["anthropic_version"], "vertex-2023-10-16");
        assert!(c.body.get("model").is_none(), "{}", c.body);
        assert_eq!(c.body["stream"].as_bool().unwrap_or(false), stream);
        assert!(c.header("x-api-key").is_none() && c.header("anthropic-version").is_none());
    }
}

#[tokio::test]
async fn openai_compatible_endpoint_names_the_model_in_the_body() {
    let sim = Simulator::start().await.expect("simulator");
    let model = "google/gemini-2.0-flash";
    sim.script(model, [Reply::text("compatible")]);
    let p = vertex::openai("my-project", "global", sa_auth(&sim)).base_url(&sim.base_url());
    let resp = guarded(p.chat(&req(), model, &cx())).await.expect("answer");
    assert_eq!(resp.text(), "compatible");
    let calls = sim.requests_for(model);
    assert_eq!(
        calls[0].path,
        "/v1/projects/my-project/locations/global/endpoints/openapi/chat/completions"
    );
    assert_eq!(calls[0].body["model"], model);
    assert_eq!(bearer(&calls[0]), "Bearer ya29.sim-0");
}

#[tokio::test]
async fn a_hundred_calls_at_expiry_make_one_token_request() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script_tokens([
        Reply::google_token(Some("ya29.first"), 3599),
        Reply::google_token(Some("ya29.second"), 3599),
    ]);
    sim.set_default(Reply::text("ok"));
    let p = gemini(&sim, sa_auth(&sim));
    let cx = cx();
    guarded(p.chat(&req(), GEMINI, &cx)).await.expect("first");
    // Still fresh 3 minutes 45 s before expiry: no token request.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3599 - 226)).await;
    tokio::time::resume();
    guarded(p.chat(&req(), GEMINI, &cx)).await.expect("fresh");
    assert_eq!(sim.token_requests().len(), 1);

    // Past the refresh point: a hundred calls at once.
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::time::resume();
    let request = req();
    let calls = (0..100).map(|_| p.chat(&request, GEMINI, &cx));
    let results = guarded(futures::future::join_all(calls)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(sim.token_requests().len(), 2, "one refresh for all of them");
    let seen = sim.requests_for(GEMINI);
    assert_eq!(seen.len(), 102);
    assert!(seen[..2].iter().all(|r| bearer(r) == "Bearer ya29.first"));
    assert!(seen[2..].iter().all(|r| bearer(r) == "Bearer ya29.second"));
}

#[tokio::test]
async fn an_expired_token_is_refreshed_and_the_call_sent_once_more() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        GEMINI,
        [Reply::error(SimError::Auth), Reply::text("after refresh")],
    );
    let p = gemini(&sim, sa_auth(&sim));
    let resp = guarded(p.chat(&req(), GEMINI, &cx()))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "after refresh");
    assert_eq!(sim.token_requests().len(), 2);
    let calls = sim.requests_for(GEMINI);
    assert_eq!(calls.len(), 2);
    assert_eq!(bearer(&calls[0]), "Bearer ya29.sim-0");
    assert!(bearer(&calls[1]).starts_with("Bearer ya29.sim-"));
    assert_ne!(bearer(&calls[1]), bearer(&calls[0]), "a new token");

    // Refused again after the refresh: one resend only, then the Auth error.
    let sim = Simulator::start().await.expect("simulator");
    sim.script(CLAUDE, [Reply::error(SimError::Auth)]);
    let p = claude(&sim, sa_auth(&sim));
    let e = guarded(p.chat_stream(&req(), CLAUDE, &cx()))
        .await
        .expect_err("refused twice");
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.code(), Some("ACCESS_TOKEN_EXPIRED"));
    assert_eq!(sim.requests_for(CLAUDE).len(), 2);
    assert_eq!(sim.token_requests().len(), 2);

    // A fixed token cannot be refreshed: no resend.
    let sim = Simulator::start().await.expect("simulator");
    sim.script(GEMINI, [Reply::error(SimError::Auth), Reply::text("never")]);
    let p = gemini(&sim, GoogleAuth::access_token("ya29.fixed"));
    let e = guarded(p.chat(&req(), GEMINI, &cx()))
        .await
        .expect_err("expired");
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(sim.requests_for(GEMINI).len(), 1);
    assert!(sim.token_requests().is_empty());
    assert!(!format!("{e} {e:?} {p:?}").contains("ya29.fixed"));
}

#[tokio::test]
async fn a_failing_token_endpoint_is_the_credentials_fault() {
    // Refused connection, 5xx, a refused key, and a body that is not a token.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/token", l.local_addr().expect("addr"))
    };
    let sim = Simulator::start().await.expect("simulator");
    sim.set_default(Reply::text("never"));
    let cases: Vec<(GoogleAuth, Option<Reply>)> = vec![
        (
            GoogleAuth::service_account_json(&key_file_json(&closed)).expect("key"),
            None,
        ),
        (sa_auth(&sim), Some(Reply::error(SimError::Server))),
        (sa_auth(&sim), Some(Reply::error(SimError::Auth))),
        (
            sa_auth(&sim),
            Some(Reply::raw(200, "application/json", "<html>proxy</html>")),
        ),
    ];
    for (auth, token_reply) in cases {
        if let Some(r) = token_reply {
            sim.script_tokens([r]);
        }
        let p = gemini(&sim, auth);
        let e = guarded(p.chat(&req(), GEMINI, &cx()))
            .await
            .expect_err("no token");
        assert_eq!(e.kind(), ErrorKind::Auth, "{e}");
        assert_eq!(e.fault(), Fault::Key, "{e}");
        assert!(!e.is_retryable(), "{e}");
        assert!(e.message().contains("token"), "{e}");
    }
    assert!(
        sim.requests_for(GEMINI).is_empty(),
        "nothing sent without a token"
    );
}

#[tokio::test]
async fn a_failing_token_endpoint_fails_over_to_the_next_target() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script_tokens([Reply::error(SimError::Server)]);
    sim.script("backup-model", [Reply::text("served by the backup")]);
    let relay = Relay::builder()
        .provider("vertex", claude(&sim, sa_auth(&sim)))
        .provider("backup", openai_at(&sim, "sk-test"))
        .route(
            "r",
            Chain::new()
                .target(format!("vertex/{CLAUDE}").as_str())
                .target("backup/backup-model")
                .total_timeout(Duration::from_secs(10)),
        )
        .build()
        .expect("relay");
    let resp = guarded(relay.chat(ChatRequest::new("r").user("Hello?")))
        .await
        .expect("failed over");
    assert_eq!(resp.text(), "served by the backup");
    let attempts = &resp.meta.attempts;
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(&*attempts[0].target.provider, "vertex");
    assert_eq!(attempts[0].failure(), Some(ErrorKind::Auth));
    // Not retried as an outage: one token request, nothing sent to Vertex.
    assert_eq!(sim.token_requests().len(), 1);
    assert!(sim.requests_for(CLAUDE).is_empty());
}

#[tokio::test]
async fn metadata_server_tokens() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(CLAUDE, [Reply::text("from GCE")]);
    let p = claude(&sim, GoogleAuth::metadata_server_at(&sim.metadata_host()));
    let resp = guarded(p.chat(&req(), CLAUDE, &cx()))
        .await
        .expect("answer");
    assert_eq!(resp.text(), "from GCE");
    let tokens = sim.token_requests();
    assert_eq!(tokens.len(), 1);
    assert_eq!(
        tokens[0].path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
    assert_eq!(tokens[0].header("metadata-flavor"), Some("Google"));
    assert_eq!(bearer(&sim.requests_for(CLAUDE)[0]), "Bearer ya29.sim-0");
}

#[tokio::test]
async fn gcloud_user_credentials_trade_their_refresh_token() {
    let sim = Simulator::start().await.expect("simulator");
    sim.set_default(Reply::text("ok"));
    let user = format!(
        r#"{{"type":"authorized_user","client_id":"cid.apps.googleusercontent.com",
            "client_secret":"d-SECRET","refresh_token":"1//REFRESH-SECRET","token_uri":"{}"}}"#,
        sim.token_url()
    );
    // The recorded refresh answer (its tokens scrubbed by the source), as Google sent it.
    let recorded =
        std::fs::read_to_string("tests/fixtures/vertex/auth/oauth2_token_refresh_response.json")
            .expect("recording");
    sim.script_tokens([
        Reply::raw(200, "application/json; charset=utf-8", recorded).header(
            "cache-control",
            "no-cache, no-store, max-age=0, must-revalidate",
        ),
    ]);
    let auth = GoogleAuth::service_account_json(&user).expect("user credentials");
    assert!(!format!("{auth:?}").contains("SECRET"));
    guarded(gemini(&sim, auth).chat(&req(), GEMINI, &cx()))
        .await
        .expect("answer");
    let t = &sim.token_requests()[0];
    assert_eq!(t.form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        t.form("refresh_token").as_deref(),
        Some("1//REFRESH-SECRET")
    );
    assert_eq!(
        t.form("client_id").as_deref(),
        Some("cid.apps.googleusercontent.com")
    );
}

#[tokio::test]
async fn vertex_errors_over_http_say_whose_fault() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(
        CLAUDE,
        [
            Reply::error(SimError::RateLimited {
                retry_after_secs: 7,
            }),
            Reply::vertex_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'aiplatform.endpoints.predict' denied on resource",
            ),
            Reply::error(SimError::Overloaded),
        ],
    );
    let p = claude(&sim, sa_auth(&sim));
    // On the streaming path the 429 comes wrapped in a JSON array.
    let e = guarded(p.chat_stream(&req(), CLAUDE, &cx()))
        .await
        .expect_err("429");
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    let e = guarded(p.chat(&req(), CLAUDE, &cx()))
        .await
        .expect_err("403");
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(
        matches!(e.fault(), Fault::Key | Fault::KeyOnTarget),
        "{:?}",
        e.fault()
    );
    assert!(!e.is_retryable());
    let e = guarded(p.chat(&req(), CLAUDE, &cx()))
        .await
        .expect_err("503");
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert!(e.is_retryable());
    // None of them is cured by a new token.
    assert_eq!(sim.requests_for(CLAUDE).len(), 3);
    assert_eq!(sim.token_requests().len(), 1);
}

#[tokio::test]
async fn a_pool_key_without_a_token_gives_way_to_the_next_without_charging_the_breaker() {
    let sim = Simulator::start().await.expect("simulator");
    sim.set_default(Reply::text("ok"));
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/token", l.local_addr().expect("addr"))
    };
    let relay = Relay::builder()
        // The provider's own credential is never used: each pool key is one.
        .provider(
            "vertex",
            gemini(&sim, GoogleAuth::access_token("ya29.unused")),
        )
        .key_pool(
            "vertex",
            polyrelay::KeyPool::new()
                .key(key_file_json(&closed))
                .key(key_file_json(&sim.token_url())),
        )
        .build()
        .expect("relay");
    let mut failed = Vec::new();
    for _ in 0..6 {
        let resp = guarded(relay.chat(ChatRequest::new(format!("vertex/{GEMINI}")).user("Hi")))
            .await
            .expect("served by the good key");
        assert_eq!(resp.text(), "ok");
        failed.extend(resp.meta.attempts.iter().filter_map(|a| a.failure()));
    }
    // The bad key was tried once, failed as a credential, and was taken out of the pool.
    assert_eq!(failed, [ErrorKind::Auth]);
    // Every call was sent with the good key's token; the bad key got none.
    let calls = sim.requests_for(GEMINI);
    assert_eq!(calls.len(), 6);
    assert!(
        calls
            .iter()
            .all(|r| bearer(r).starts_with("Bearer ya29.sim-"))
    );
    assert_eq!(sim.token_requests().len(), 1);
    let health = relay.health();
    let h = health
        .iter()
        .find(|h| &*h.target.provider == "vertex")
        .expect("vertex target");
    assert_eq!(h.state, polyrelay::BreakerState::Closed, "{h:?}");
    assert_eq!(h.consecutive_failures, 0, "{h:?}");
}

#[tokio::test]
async fn a_stream_cut_on_vertex_is_an_interruption_not_an_answer() {
    let sim = Simulator::start().await.expect("simulator");
    sim.script(GEMINI, [Reply::text("one two three four").cut_after(1)]);
    sim.script(CLAUDE, [Reply::text("one two three four").cut_after(2)]);
    let auth = sa_auth(&sim);
    let g = gemini(&sim, auth.clone());
    let c = claude(&sim, auth);
    for stream in [
        guarded(g.chat_stream(&req(), GEMINI, &cx())).await,
        guarded(c.chat_stream(&req(), CLAUDE, &cx())).await,
    ] {
        let mut stream = stream.expect("stream starts");
        let (_, err) = guarded(drain(&mut stream)).await;
        let e = err.expect("cut");
        assert_eq!(e.kind(), ErrorKind::StreamInterrupted, "{e}");
        assert!(e.is_retryable());
    }
    // Clones of one credential share its token.
    assert_eq!(sim.token_requests().len(), 1);
}
