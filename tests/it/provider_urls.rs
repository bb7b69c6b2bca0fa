//! URLs and authentication real deployments need, over real HTTP on the loopback simulator:
//! base URLs with query strings (Azure's `?api-version=`, a proxy's `?key=`), Gemini's three
//! ways to authenticate, the Azure OpenAI constructor, empty keys, headers that replace the
//! built-in credential, and base URLs refused at validation. Providers are called directly
//! through the `Provider` trait.

use crate::support;

use std::time::Duration;

use futures::StreamExt;
use polyrelay::providers::{Anthropic, Gemini, OpenAi};
use polyrelay::simulator::{RecordedRequest, Reply, Simulator};
use polyrelay::{CallContext, ChatRequest, ErrorKind, Provider};

const KEY: &str = "AIzaSy-DO-NOT-LEAK-0123456789abcdef";
const GEMINI: &str = "gemini-2.5-flash";

fn req() -> ChatRequest {
    ChatRequest::new("route").user("Hello?")
}

/// Runs `fut` under a guard so a broken test fails instead of hanging.
async fn guarded<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("test took longer than 20 s")
}

/// One plain call; returns the request the simulator saw.
async fn call(sim: &Simulator, p: &dyn Provider, model: &str) -> RecordedRequest {
    let cx = CallContext::shared().unwrap();
    let before = sim.requests().len();
    let resp = guarded(p.chat(&req(), model, &cx)).await.unwrap();
    assert_eq!(resp.text(), "hi there");
    let seen = sim.requests();
    assert_eq!(seen.len(), before + 1);
    seen[before].clone()
}

/// One streamed call, read to its end; returns the request the simulator saw.
async fn stream(sim: &Simulator, p: &dyn Provider, model: &str) -> RecordedRequest {
    let cx = CallContext::shared().unwrap();
    let before = sim.requests().len();
    let mut s = guarded(p.chat_stream(&req(), model, &cx)).await.unwrap();
    let mut text = String::new();
    while let Some(chunk) = guarded(s.next()).await {
        text.push_str(chunk.unwrap().text().unwrap_or_default());
    }
    assert_eq!(text, "hi there");
    let seen = sim.requests();
    assert_eq!(seen.len(), before + 1);
    assert!(seen[before].is_stream());
    seen[before].clone()
}

/// The simulator answering "hi there" to every request, in the dialect of each.
async fn sim() -> Simulator {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::text("hi there"));
    sim
}

/// How many headers named `name` the request carried.
fn count(r: &RecordedRequest, name: &str) -> usize {
    r.headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .count()
}

/// Whether `needle` shows anywhere in the request but where `allowed` says.
fn key_places(r: &RecordedRequest, needle: &str) -> Vec<String> {
    let mut at: Vec<String> = r
        .headers
        .iter()
        .filter(|(_, v)| v.contains(needle))
        .map(|(n, _)| format!("header {n}"))
        .collect();
    if r.path.contains(needle) {
        at.push("path".to_owned());
    }
    if String::from_utf8_lossy(&r.raw_body).contains(needle) {
        at.push("body".to_owned());
    }
    at
}

// -------------------------------------------------------------------------------------------
// Base URLs with a query string
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_base_url_query_goes_after_the_path() {
    let sim = sim().await;
    let base = format!(
        "{}/openai/deployments/gpt-4o?api-version=2024-10-21",
        sim.base_url()
    );
    let p = OpenAi::compatible("gateway", &base, "sk-test");
    let want = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21";
    assert_eq!(call(&sim, &p, "gpt-4o").await.path, want);
    assert_eq!(stream(&sim, &p, "gpt-4o").await.path, want);
    assert_eq!(p.url(), format!("{}{want}", sim.base_url()));

    // A trailing slash before the query, and `base_url` on a preset.
    let p = OpenAi::new("sk-test").base_url(&format!("{}/v1/?tenant=a&x=1", sim.base_url()));
    let want = "/v1/chat/completions?tenant=a&x=1";
    assert_eq!(call(&sim, &p, "gpt-4o").await.path, want);
    assert_eq!(stream(&sim, &p, "gpt-4o").await.path, want);
}

#[tokio::test]
async fn anthropic_base_url_query_goes_after_the_path() {
    let sim = sim().await;
    let p = Anthropic::new("sk-ant").base_url(&format!("{}/v1?beta=true", sim.base_url()));
    let seen = call(&sim, &p, "claude-sonnet-4-5").await;
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(seen.dialect(), polyrelay::simulator::Dialect::Anthropic);
    let seen = stream(&sim, &p, "claude-sonnet-4-5").await;
    assert_eq!(seen.path, "/v1/messages?beta=true");
    assert_eq!(p.url(), format!("{}/v1/messages?beta=true", sim.base_url()));
}

#[tokio::test]
async fn gemini_base_url_query_is_merged_with_alt_sse() {
    let sim = sim().await;
    let p = Gemini::new(KEY).base_url(&format!("{}/v1beta/?team=a", sim.base_url()));
    let seen = call(&sim, &p, GEMINI).await;
    assert_eq!(
        seen.path,
        format!("/v1beta/models/{GEMINI}:generateContent?team=a")
    );
    assert_eq!(seen.dialect(), polyrelay::simulator::Dialect::Gemini);
    assert_eq!(seen.model.as_deref(), Some(GEMINI));
    let seen = stream(&sim, &p, GEMINI).await;
    assert_eq!(
        seen.path,
        format!("/v1beta/models/{GEMINI}:streamGenerateContent?team=a&alt=sse")
    );
    assert_eq!(
        p.endpoint(GEMINI, true).unwrap(),
        format!(
            "{}/v1beta/models/{GEMINI}:streamGenerateContent?team=a&alt=sse",
            sim.base_url()
        )
    );
}

// -------------------------------------------------------------------------------------------
// Gemini's authentication modes
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn gemini_api_key_header_mode() {
    let sim = sim().await;
    let p = Gemini::new(KEY).base_url(&format!("{}/v1beta", sim.base_url()));
    for seen in [call(&sim, &p, GEMINI).await, stream(&sim, &p, GEMINI).await] {
        assert_eq!(seen.header("x-goog-api-key"), Some(KEY));
        assert_eq!(count(&seen, "x-goog-api-key"), 1);
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(key_places(&seen, KEY), ["header x-goog-api-key"]);
    }
}

#[tokio::test]
async fn gemini_query_key_mode() {
    let sim = sim().await;
    let p = Gemini::with_query_key(KEY).base_url(&format!("{}/v1beta", sim.base_url()));
    let seen = call(&sim, &p, GEMINI).await;
    assert_eq!(
        seen.path,
        format!("/v1beta/models/{GEMINI}:generateContent?key={KEY}")
    );
    let streamed = stream(&sim, &p, GEMINI).await;
    assert_eq!(
        streamed.path,
        format!("/v1beta/models/{GEMINI}:streamGenerateContent?alt=sse&key={KEY}")
    );
    for seen in [seen, streamed] {
        assert_eq!(seen.header("x-goog-api-key"), None);
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(key_places(&seen, KEY), ["path"]);
    }
    // `endpoint` never shows the key.
    assert!(!p.endpoint(GEMINI, true).unwrap().contains(KEY));

    // With a base query too, and a key that needs percent-encoding.
    let odd = "k&y=1 +/";
    let p = Gemini::with_query_key(odd).base_url(&format!("{}/v1beta?team=a", sim.base_url()));
    let seen = stream(&sim, &p, GEMINI).await;
    assert_eq!(
        seen.path,
        format!(
            "/v1beta/models/{GEMINI}:streamGenerateContent?team=a&alt=sse&key=k%26y%3D1+%2B%2F"
        )
    );
}

#[tokio::test]
async fn gemini_bearer_mode() {
    let sim = sim().await;
    let token = "ya29.a0-DO-NOT-LEAK-token";
    let p = Gemini::with_bearer(token).base_url(&format!(
        "{}/v1/projects/p/locations/us-central1/publishers/google",
        sim.base_url()
    ));
    let seen = call(&sim, &p, GEMINI).await;
    assert_eq!(
        seen.path,
        format!(
            "/v1/projects/p/locations/us-central1/publishers/google/models/{GEMINI}:generateContent"
        )
    );
    for seen in [seen, stream(&sim, &p, GEMINI).await] {
        let bearer = format!("Bearer {token}");
        assert_eq!(seen.header("authorization"), Some(bearer.as_str()));
        assert_eq!(count(&seen, "authorization"), 1);
        assert_eq!(seen.header("x-goog-api-key"), None);
        assert_eq!(key_places(&seen, token), ["header authorization"]);
    }
}

/// In `?key=` mode the key is in every URL: it must still never reach Debug output, errors
/// (vendor errors that echo it, transport errors, config errors) or this process's logs.
#[tokio::test]
async fn gemini_query_key_never_shows() {
    let (logs, _guard) = support::CapturedLogs::start();

    let sim = sim().await;
    sim.script(
        GEMINI,
        [Reply::gemini_error(
            400,
            "INVALID_ARGUMENT",
            &format!("API key not valid: {KEY}"),
        )],
    );
    let cx = CallContext::shared().unwrap();
    let p = Gemini::with_query_key(KEY).base_url(&format!("{}/v1beta", sim.base_url()));
    let mut texts = vec![format!("{p:?}")];
    let vendor = guarded(p.chat(&req(), GEMINI, &cx)).await.unwrap_err();
    assert_eq!(vendor.kind(), ErrorKind::InvalidRequest);
    assert!(
        vendor.message().contains("API key not valid: [REDACTED]"),
        "{vendor}"
    );
    assert!(sim.requests()[0].path.contains(KEY), "the key was sent");
    let vendor_stream = guarded(p.chat_stream(&req(), GEMINI, &cx))
        .await
        .unwrap_err();

    // Nothing listens there any more: a connection error, with the URL in reqwest's hands.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gone = Gemini::with_query_key(KEY).base_url(&format!("http://{closed}/v1beta"));
    let transport = guarded(gone.chat(&req(), GEMINI, &cx)).await.unwrap_err();
    assert_eq!(transport.kind(), ErrorKind::Connect);
    let transport_stream = guarded(gone.chat_stream(&req(), GEMINI, &cx))
        .await
        .unwrap_err();

    // A base URL carrying the key itself, refused.
    let bad = Gemini::with_query_key(KEY).base_url(&format!("htp:/bad url?key={KEY}"));
    let config = bad.validate().unwrap_err();
    assert_eq!(config.kind(), ErrorKind::Config);
    texts.push(format!("{bad:?}"));

    for e in [vendor, vendor_stream, transport, transport_stream, config] {
        let mut chain = format!("{e} {e:?}");
        let mut cur = std::error::Error::source(&e);
        while let Some(c) = cur {
            chain.push_str(&format!(" {c} {c:?}"));
            cur = c.source();
        }
        texts.push(chain);
    }
    // The simulator stands for the vendor, whose logs are not this process's business.
    let logs = logs.text();
    // Whether a given event reaches this thread's subscriber races with other tests'
    // threads (tracing caches callsite interest globally), so only check that capture works.
    assert!(!logs.is_empty(), "nothing captured");
    texts.extend(
        logs.lines()
            .filter(|l| !l.contains("polyrelay::simulator"))
            .map(str::to_owned),
    );
    for t in &texts {
        assert!(!t.contains(KEY), "key leaked in: {t}");
    }
}

// -------------------------------------------------------------------------------------------
// Azure OpenAI
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn azure_sends_api_key_to_the_deployment_url() {
    let sim = sim().await;
    let p = OpenAi::azure(&sim.base_url(), "gpt-4o-prod", "2024-10-21", KEY);
    assert_eq!(p.name(), "azure");
    let want = "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21";
    for seen in [
        call(&sim, &p, "gpt-4o").await,
        stream(&sim, &p, "gpt-4o").await,
    ] {
        assert_eq!(seen.path, want);
        assert_eq!(seen.header("api-key"), Some(KEY));
        assert_eq!(seen.header("authorization"), None);
        assert_eq!(key_places(&seen, KEY), ["header api-key"]);
        // Azure ignores it in deployment URLs; sent anyway.
        assert_eq!(seen.body["model"], "gpt-4o");
    }

    // A resource name builds the public endpoint; odd deployment names are encoded.
    assert_eq!(
        OpenAi::azure("my-resource", "gpt-4o-prod", "2024-10-21", KEY).url(),
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
    );
    let p = OpenAi::azure(&format!("{}/gw/", sim.base_url()), "a b/c", "", KEY);
    p.validate().unwrap();
    assert_eq!(
        call(&sim, &p, "gpt-4o").await.path,
        "/gw/openai/deployments/a%20b%2Fc/chat/completions"
    );
    for (resource, deployment) in [
        ("my resource", "d"),
        ("", "d"),
        ("my.resource", "d"),
        ("r", ""),
        ("r", ".."),
        ("ftp://host", "d"),
    ] {
        let e = OpenAi::azure(resource, deployment, "2024-10-21", KEY)
            .validate()
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{resource:?} {deployment:?}");
    }
}

// -------------------------------------------------------------------------------------------
// Empty keys, and headers that replace the built-in credential
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn empty_keys_send_no_credential() {
    let sim = sim().await;
    let base = sim.base_url();
    let openai = OpenAi::compatible("local", &format!("{base}/v1"), "");
    let seen = call(&sim, &openai, "m").await;
    assert_eq!(seen.header("authorization"), None);
    let azure = OpenAi::azure(&base, "d", "2024-10-21", "");
    let seen = call(&sim, &azure, "m").await;
    assert_eq!(seen.header("api-key"), None);
    assert_eq!(seen.header("authorization"), None);
    let anthropic = Anthropic::new("").base_url(&format!("{base}/v1"));
    let seen = call(&sim, &anthropic, "claude").await;
    assert_eq!(seen.header("x-api-key"), None);
    for gemini in [
        Gemini::new(""),
        Gemini::with_query_key(""),
        Gemini::with_bearer(""),
    ] {
        let gemini = gemini.base_url(&format!("{base}/v1beta"));
        let seen = call(&sim, &gemini, GEMINI).await;
        assert_eq!(seen.header("x-goog-api-key"), None);
        assert_eq!(seen.header("authorization"), None);
        assert!(!seen.path.contains("key="), "{}", seen.path);
        let seen = stream(&sim, &gemini, GEMINI).await;
        assert!(seen.path.ends_with("?alt=sse"), "{}", seen.path);
    }
}

#[tokio::test]
async fn header_replaces_the_built_in_credential() {
    let sim = sim().await;
    let base = sim.base_url();
    let cases: Vec<(Box<dyn Provider>, &str, &str)> = vec![
        (
            Box::new(
                OpenAi::compatible("gw", &format!("{base}/v1"), KEY)
                    .header("Authorization", "Bearer gateway-token")
                    .unwrap(),
            ),
            "authorization",
            "Bearer gateway-token",
        ),
        (
            Box::new(
                OpenAi::azure(&base, "d", "2024-10-21", KEY)
                    .header("api-key", "other-key")
                    .unwrap(),
            ),
            "api-key",
            "other-key",
        ),
        (
            Box::new(
                Anthropic::new(KEY)
                    .base_url(&format!("{base}/v1"))
                    .header("X-Api-Key", "other-key")
                    .unwrap(),
            ),
            "x-api-key",
            "other-key",
        ),
        (
            Box::new(
                Gemini::new(KEY)
                    .base_url(&format!("{base}/v1beta"))
                    .header("x-goog-api-key", "other-key")
                    .unwrap(),
            ),
            "x-goog-api-key",
            "other-key",
        ),
        (
            Box::new(
                Gemini::with_bearer(KEY)
                    .base_url(&format!("{base}/v1beta"))
                    .header("authorization", "Bearer other-token")
                    .unwrap(),
            ),
            "authorization",
            "Bearer other-token",
        ),
    ];
    for (p, name, value) in &cases {
        let model = if p.name() == "gemini" { GEMINI } else { "m" };
        for seen in [
            call(&sim, &**p, model).await,
            stream(&sim, &**p, model).await,
        ] {
            assert_eq!(count(&seen, name), 1, "{p:?}");
            assert_eq!(seen.header(name), Some(*value), "{p:?}");
            assert!(key_places(&seen, KEY).is_empty(), "{p:?}");
        }
    }
}

// -------------------------------------------------------------------------------------------
// Base URLs refused at validation
// -------------------------------------------------------------------------------------------

#[tokio::test]
async fn validate_rejects_bad_base_urls() {
    let sim = sim().await;
    let cx = CallContext::shared().unwrap();
    for bad in [
        "htp:/bad url",
        "not a url",
        "",
        "ftp://host/v1",
        "http://",
        "/v1",
    ] {
        let providers: Vec<Box<dyn Provider>> = vec![
            Box::new(OpenAi::compatible("gw", bad, KEY)),
            Box::new(OpenAi::new(KEY).base_url(bad)),
            Box::new(OpenAi::azure(bad, "d", "2024-10-21", KEY)),
            Box::new(Anthropic::new(KEY).base_url(bad)),
            Box::new(Gemini::new(KEY).base_url(bad)),
            Box::new(Gemini::with_query_key(KEY).base_url(bad)),
            Box::new(Gemini::with_bearer(KEY).base_url(bad)),
        ];
        for p in &providers {
            let e = p.validate().unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?} {p:?}");
            assert!(e.message().contains("does not parse"), "{e}");
            assert!(!format!("{e} {e:?} {p:?}").contains(KEY), "{e}");
            // Called anyway: the same error, and nothing sent.
            let model = if p.name() == "gemini" { GEMINI } else { "m" };
            let e = guarded(p.chat(&req(), model, &cx)).await.unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?} {p:?}");
            let e = guarded(p.chat_stream(&req(), model, &cx))
                .await
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad:?} {p:?}");
        }
    }
    assert!(sim.requests().is_empty());

    // The error names the URL, with its credentials hidden.
    let e = OpenAi::compatible(
        "gw",
        &format!("htp://u:pw@h/v1?api-version=1&key={KEY}"),
        "k",
    )
    .validate()
    .unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("htp://[REDACTED]@h/v1?api-version=1&key=[REDACTED]"),
        "{shown}"
    );
    assert!(!shown.contains(KEY) && !shown.contains("pw"), "{shown}");

    // A later good base URL clears the problem; good ones validate.
    let fixed = OpenAi::new(KEY).base_url("nope").base_url(&sim.base_url());
    fixed.validate().unwrap();
    for p in [
        Box::new(OpenAi::new(KEY)) as Box<dyn Provider>,
        Box::new(OpenAi::ollama()),
        Box::new(Anthropic::new(KEY)),
        Box::new(Gemini::new(KEY)),
        Box::new(Gemini::with_query_key(KEY)),
        Box::new(Gemini::with_bearer(KEY)),
    ] {
        p.validate().unwrap();
    }
}

#[tokio::test]
async fn validate_rejects_keys_no_header_can_hold() {
    let sim = sim().await;
    let cx = CallContext::shared().unwrap();
    let base = sim.base_url();
    let key = "sk-with-a-newline\n";
    let providers: Vec<Box<dyn Provider>> = vec![
        Box::new(OpenAi::compatible("gw", &format!("{base}/v1"), key)),
        Box::new(OpenAi::azure(&base, "d", "2024-10-21", key)),
        Box::new(Anthropic::new(key).base_url(&format!("{base}/v1"))),
        Box::new(Gemini::new(key).base_url(&format!("{base}/v1beta"))),
        Box::new(Gemini::with_bearer(key).base_url(&format!("{base}/v1beta"))),
    ];
    for p in &providers {
        assert_eq!(p.validate().unwrap_err().kind(), ErrorKind::Config, "{p:?}");
        let model = if p.name() == "gemini" { GEMINI } else { "m" };
        let e = guarded(p.chat(&req(), model, &cx)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{p:?}");
    }
    assert!(sim.requests().is_empty());
    // In the query it is just percent-encoded.
    let p = Gemini::with_query_key(key).base_url(&format!("{base}/v1beta"));
    p.validate().unwrap();
    assert!(
        call(&sim, &p, GEMINI)
            .await
            .path
            .ends_with("key=sk-with-a-newline%0A")
    );
}
