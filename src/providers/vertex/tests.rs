//! URLs, bodies, the recordings in `tests/fixtures/vertex/` through the Vertex codecs, and
//! the errors that resend.

use super::*;
use crate::provider::Provider;
use crate::providers::StreamDecoder;
use crate::providers::anthropic::VERTEX_VERSION;
use crate::secret::ApiKey;
use crate::types::{ChatRequest, Fault, FinishReason};
use serde_json::Value;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../../tests/fixtures/vertex/", $name)).as_slice()
    };
}

fn auth() -> GoogleAuth {
    GoogleAuth::access_token("ya29.SECRET-TOKEN")
}

fn key() -> ApiKey {
    ApiKey::new("")
}

fn url_of<C: Codec>(p: &crate::providers::HttpProvider<C>, model: &str, stream: bool) -> String {
    p.codec().url(model, stream).expect("url").to_string()
}

#[test]
fn hosts_by_location() {
    let cases = [
        (
            "us-central1",
            "https://us-central1-aiplatform.googleapis.com",
        ),
        (
            "europe-west4",
            "https://europe-west4-aiplatform.googleapis.com",
        ),
        ("global", "https://aiplatform.googleapis.com"),
        ("us", "https://aiplatform.us.rep.googleapis.com"),
        ("eu", "https://aiplatform.eu.rep.googleapis.com"),
    ];
    for (location, host) in cases {
        let g = VertexGemini::new("my-project", location, auth());
        assert_eq!(
            url_of(&g, "gemini-2.5-flash", false),
            format!(
                "{host}/v1/projects/my-project/locations/{location}/publishers/google/models/gemini-2.5-flash:generateContent"
            )
        );
        assert_eq!(
            url_of(&g, "gemini-2.5-flash", true),
            format!(
                "{host}/v1/projects/my-project/locations/{location}/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
            )
        );
        let c = VertexAnthropic::new("my-project", location, auth());
        assert_eq!(
            url_of(&c, "claude-sonnet-4-5@20250929", false),
            format!(
                "{host}/v1/projects/my-project/locations/{location}/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
            )
        );
        assert_eq!(
            url_of(&c, "claude-sonnet-4-5@20250929", true),
            format!(
                "{host}/v1/projects/my-project/locations/{location}/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict"
            )
        );
        let o = openai("my-project", location, auth());
        for stream in [false, true] {
            assert_eq!(
                url_of(&o, "google/gemini-2.0-flash", stream),
                format!(
                    "{host}/v1/projects/my-project/locations/{location}/endpoints/openapi/chat/completions"
                )
            );
        }
    }
}

#[test]
fn base_url_replaces_the_host_and_keeps_its_query() {
    let g = VertexGemini::new("p", "us-central1", auth()).base_url("http://127.0.0.1:9/?team=a");
    assert_eq!(
        url_of(&g, "gemini-2.5-flash", true),
        "http://127.0.0.1:9/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?team=a&alt=sse"
    );
    let c = VertexAnthropic::new("p", "global", auth()).base_url("http://psc.internal/x");
    assert_eq!(
        url_of(&c, "claude-opus-4-1@20250805", false),
        "http://psc.internal/x/v1/projects/p/locations/global/publishers/anthropic/models/claude-opus-4-1@20250805:rawPredict"
    );
    let o = openai("p", "global", auth()).base_url("http://127.0.0.1:9?team=a");
    assert_eq!(
        url_of(&o, "google/gemini-2.0-flash", false),
        "http://127.0.0.1:9/v1/projects/p/locations/global/endpoints/openapi/chat/completions?team=a"
    );
}

#[test]
fn names_that_would_change_the_url_are_config_errors() {
    for (project, location) in [
        ("", "us-central1"),
        ("p/../q", "us-central1"),
        ("p?x", "us-central1"),
        ("p", ""),
        ("p", "us-central1/x"),
        ("p", "us.evil.com"),
    ] {
        let g = VertexGemini::new(project, location, auth());
        let e = Provider::validate(&g).expect_err(project);
        assert_eq!(e.kind(), ErrorKind::Config, "{project:?} {location:?}");
        assert_eq!(
            g.codec()
                .url("gemini-2.5-flash", false)
                .expect_err("url")
                .kind(),
            ErrorKind::Config
        );
        let c = VertexAnthropic::new(project, location, auth());
        assert_eq!(
            Provider::validate(&c).expect_err("c").kind(),
            ErrorKind::Config
        );
        let o = openai(project, location, auth());
        assert_eq!(
            Provider::validate(&o).expect_err("o").kind(),
            ErrorKind::Config
        );
        assert_eq!(
            o.codec().url("google/x", false).expect_err("o").kind(),
            ErrorKind::Config
        );
    }
    assert!(
        Provider::validate(&VertexGemini::new("google.com:my-proj", "us-east5", auth())).is_ok()
    );
    let bad_host = VertexGemini::new("p", "global", auth()).base_url("not a url");
    assert_eq!(
        Provider::validate(&bad_host).expect_err("host").kind(),
        ErrorKind::Config
    );

    let g = VertexGemini::new("p", "global", auth());
    let c = VertexAnthropic::new("p", "global", auth());
    for model in [
        "",
        "a/b",
        "a?b",
        "a#b",
        "a:b",
        "../x",
        "a b",
        "models/gemini-2.5-flash",
    ] {
        assert_eq!(
            g.codec().url(model, false).expect_err(model).kind(),
            ErrorKind::Config
        );
        assert_eq!(
            c.codec().url(model, true).expect_err(model).kind(),
            ErrorKind::Config
        );
    }
}

#[test]
fn debug_shows_place_not_token() {
    let shown = format!(
        "{:?} {:?} {:?}",
        VertexGemini::new("p", "global", auth()),
        VertexAnthropic::new("p", "global", auth()),
        openai("p", "global", auth())
    );
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        shown.contains("aiplatform.googleapis.com") && shown.contains("\"p\""),
        "{shown}"
    );
}

#[test]
fn claude_bodies_name_no_model_and_carry_vertex_version() {
    let c = VertexAnthropic::new("p", "us-east5", auth()).default_max_tokens(123);
    let req = ChatRequest::new("claude-sonnet-4-5@20250929")
        .system("Be brief.")
        .user("Hello?");
    for stream in [false, true] {
        let body: Value = serde_json::from_slice(
            &c.codec()
                .encode(&req, "claude-sonnet-4-5@20250929", stream)
                .expect("body"),
        )
        .expect("json");
        assert!(body.get("model").is_none(), "{body}");
        assert_eq!(body["anthropic_version"], VERTEX_VERSION);
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        // `stream: true` for streamRawPredict; a plain call sends none.
        assert_eq!(
            body.get("stream").and_then(Value::as_bool),
            stream.then_some(true)
        );
        assert_eq!(body["max_tokens"], 123);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["messages"][0]["content"][0]["text"], "Hello?");
    }
}

#[test]
fn gemini_and_openai_bodies_are_their_codecs() {
    let req = ChatRequest::new("m").user("Hello?");
    let g = VertexGemini::new("p", "global", auth());
    let body: Value = serde_json::from_slice(
        &g.codec()
            .encode(&req, "gemini-2.5-flash", false)
            .expect("body"),
    )
    .expect("json");
    assert_eq!(body["contents"][0]["parts"][0]["text"], "Hello?");
    let o = openai("p", "global", auth());
    let body: Value = serde_json::from_slice(
        &o.codec()
            .encode(&req, "google/gemini-2.0-flash", true)
            .expect("body"),
    )
    .expect("json");
    assert_eq!(body["model"], "google/gemini-2.0-flash");
    assert_eq!(body["stream"], true);
}

// --- The recordings ------------------------------------------------------------------------

fn decode(body: &[u8]) -> crate::types::ChatResponse {
    let g = VertexGemini::new("p", "global", auth());
    let k = key();
    g.codec().decode(body, &Redactor::new(&k)).expect("decodes")
}

#[test]
fn recorded_answers_decode() {
    let text = decode(fixture!("generate_text.json"));
    assert_eq!(text.text(), "The capital of France is Paris.\n");
    assert_eq!(text.finish_reason(), Some(&FinishReason::Stop));
    assert_eq!(text.id, "1VpeaKq4CfH_2PgPh_z--AY");
    assert_eq!(text.model, "gemini-2.0-flash");
    assert!(
        text.created > 1_700_000_000,
        "createTime is the creation time"
    );
    let usage = text.usage.expect("usage");
    assert_eq!((usage.input_tokens, usage.output_tokens), (13, 8));

    let flex = decode(fixture!("generate_text_flex_thought_signature.json"));
    assert_eq!(flex.text(), "OK");
    let usage = flex.usage.expect("usage");
    // Thoughts are counted outside candidatesTokenCount: 1 + 51.
    assert_eq!(
        (
            usage.input_tokens,
            usage.output_tokens,
            usage.reasoning_tokens
        ),
        (5, 52, 51)
    );

    let call = decode(fixture!("generate_function_call_thought_signature.json"));
    let calls = call.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].function.name, "get_mixed_content");
    assert_eq!(calls[0].function.arguments, r#"{"type":"all"}"#);
    assert!(
        calls[0]
            .thought_signature
            .as_deref()
            .is_some_and(|s| s.starts_with("CosCAY89"))
    );
    // Vertex reports function calls with STOP; the answer still says tool_calls.
    assert_eq!(call.finish_reason(), Some(&FinishReason::ToolCalls));

    let logprobs = decode(fixture!("generate_logprobs.json"));
    assert_eq!(logprobs.text(), "Hello");

    let armor = decode(fixture!("generate_finish_model_armor.json"));
    assert_eq!(armor.text(), "");
    // A Model Armor block has a finishMessage and no content: an answer that says why
    // (`content_filter`), not an empty one.
    assert_eq!(armor.finish_reason(), Some(&FinishReason::ContentFilter));
}

#[test]
fn recorded_stream_decodes_split_anywhere() {
    let body = fixture!("stream_text_flex.sse");
    let g = VertexGemini::new("p", "global", auth());
    let k = key();
    for split in [1, 7, 64, body.len()] {
        let mut decoder = g.codec().stream_decoder(&Redactor::new(&k));
        let mut out = std::collections::VecDeque::new();
        for piece in body.chunks(split) {
            StreamDecoder::buffer(&mut decoder, piece);
            while {
                let before = out.len();
                StreamDecoder::decode_some(&mut decoder, &mut out).expect("decodes");
                out.len() > before
            } {}
        }
        StreamDecoder::finish_into(&mut decoder, &mut out).expect("whole");
        let text: String = out
            .iter()
            .filter_map(|c| c.choices.first())
            .filter_map(|c| c.delta.content.as_deref())
            .collect();
        assert_eq!(text, "OK", "split {split}");
        let finish = out
            .iter()
            .filter_map(|c| c.choices.first())
            .find_map(|c| c.finish_reason.clone());
        assert_eq!(finish, Some(FinishReason::Stop));
        let usage = out.iter().find_map(|c| c.usage).expect("usage");
        assert_eq!((usage.input_tokens, usage.output_tokens), (5, 101));
    }
}

#[test]
fn count_tokens_is_not_an_answer() {
    // countTokens is not a chat call: a body of its shape where an answer was due is a
    // Decode error (the relay fails over), never an empty answer.
    let g = VertexGemini::new("p", "global", auth());
    let k = key();
    let e = g
        .codec()
        .decode(fixture!("count_tokens.json"), &Redactor::new(&k))
        .expect_err("not an answer");
    assert_eq!(e.kind(), ErrorKind::Decode);
}

fn decode_error<C: Codec>(codec: &C, status: u16, body: &[u8]) -> Error {
    let k = key();
    codec.decode_error(status, &HeaderMap::new(), body, &Redactor::new(&k))
}

#[test]
fn recorded_errors_decode_on_every_vertex_codec() {
    let g = VertexGemini::new("p", "global", auth());
    let c = VertexAnthropic::new("p", "global", auth());
    let o = openai("p", "global", auth());
    let check = |status: u16, body: &[u8], kind: ErrorKind, code: &str| {
        for e in [
            decode_error(g.codec(), status, body),
            decode_error(c.codec(), status, body),
            decode_error(o.codec(), status, body),
        ] {
            assert_eq!(e.kind(), kind, "{e}");
            assert_eq!(e.status(), Some(status));
            assert_eq!(e.code(), Some(code), "{e}");
            assert!(
                e.message().contains("Quota exceeded") || status != 429,
                "{e}"
            );
        }
    };
    check(
        429,
        fixture!("error_429_anthropic_quota_exceeded.json"),
        ErrorKind::RateLimited,
        "RESOURCE_EXHAUSTED",
    );
    check(
        429,
        fixture!("error_429_anthropic_quota_exceeded_array_wrapped.json"),
        ErrorKind::RateLimited,
        "RESOURCE_EXHAUSTED",
    );
    check(
        401,
        fixture!("error_401_access_token_expired.json"),
        ErrorKind::Auth,
        "ACCESS_TOKEN_EXPIRED",
    );
    let e = decode_error(
        c.codec(),
        401,
        fixture!("error_401_access_token_expired.json"),
    );
    assert_eq!(e.fault(), Fault::Key);
}

#[test]
fn vertex_status_errors_say_whose_fault() {
    let c = VertexAnthropic::new("p", "global", auth());
    let status = |code: u16, status: &str, details: &str| {
        format!(
            r#"{{"error":{{"code":{code},"message":"m","status":"{status}","details":[{details}]}}}}"#
        )
    };
    let retry = r#"{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"17s"}"#;
    let e = decode_error(
        c.codec(),
        429,
        format!("[{}]", status(429, "RESOURCE_EXHAUSTED", retry)).as_bytes(),
    );
    assert_eq!(e.kind(), ErrorKind::RateLimited);
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(17)));
    assert!(e.is_retryable());
    let e = decode_error(c.codec(), 503, status(503, "UNAVAILABLE", "").as_bytes());
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.fault(), Fault::Vendor);
    assert!(e.is_retryable());
    let denied =
        r#"{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED"}"#;
    let e = decode_error(
        c.codec(),
        403,
        status(403, "PERMISSION_DENIED", denied).as_bytes(),
    );
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert!(
        matches!(e.fault(), Fault::Key | Fault::KeyOnTarget),
        "{:?}",
        e.fault()
    );
    assert!(!e.is_retryable());
    // Claude's own errors keep Anthropic's decoding.
    let e = decode_error(
        c.codec(),
        529,
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(e.kind(), ErrorKind::Overloaded);
    assert_eq!(e.error_type(), Some("overloaded_error"));
}

#[test]
fn an_expired_token_resends_once_and_a_fixed_token_does_not() {
    let sa = GoogleAuth::service_account_file(
        "tests/fixtures/vertex/auth/google_auth_test_service_account.json",
    )
    .expect("key file");
    let g = VertexGemini::new("p", "global", sa);
    let h = HeaderMap::new();
    let expired = fixture!("error_401_access_token_expired.json");
    assert!(g.codec().should_resend(401, &h, expired));
    assert!(g.codec().should_resend(
        401,
        &h,
        br#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#
    ));
    assert!(!g.codec().should_resend(403, &h, expired));
    assert!(!g.codec().should_resend(401, &h, b"nope"));
    let fixed = VertexGemini::new("p", "global", auth());
    assert!(!fixed.codec().should_resend(401, &h, expired));
}

#[test]
fn pool_keys_become_credentials() {
    let base = VertexAnthropic::new("p", "global", auth());
    let token = base.keyed(ApiKey::new("ya29.POOL-TOKEN"));
    assert!(Provider::validate(&token).is_ok());
    assert!(!format!("{token:?}").contains("POOL-TOKEN"));
    let json =
        std::fs::read_to_string("tests/fixtures/vertex/auth/google_auth_test_service_account.json")
            .expect("key file");
    let sa = base.keyed(ApiKey::new(json));
    assert!(Provider::validate(&sa).is_ok());
    assert!(format!("{sa:?}").contains("service-account@example.com"));
    let bad = base.keyed(ApiKey::new(r#"{"type":"service_account"}"#));
    assert_eq!(
        Provider::validate(&bad).expect_err("bad key").kind(),
        ErrorKind::Config
    );
    // The empty key of construction keeps the provider's own credential.
    assert!(format!("{:?}", base.keyed(ApiKey::new(""))).contains("access_token"));
}

/// The URL each recorded call went to (`*.http.json`), rebuilt from its project, location
/// and model: the same host (global or regional) and method; the recordings used
/// `v1beta1`, this crate calls the GA `v1`.
#[test]
fn recorded_request_urls_are_rebuilt() {
    let mut seen = 0;
    for entry in std::fs::read_dir("tests/fixtures/vertex").expect("fixtures") {
        let path = entry.expect("entry").path();
        let name = path.to_string_lossy().into_owned();
        if !name.ends_with(".http.json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        let uri = v["request"]["uri"].as_str().expect("uri");
        if uri.contains(":countTokens") {
            continue; // not a chat call (count_tokens_is_not_an_answer)
        }
        let segs: Vec<&str> = uri.split('/').collect();
        let at = |s: &str| {
            segs.iter()
                .position(|x| *x == s)
                .map(|i| segs[i + 1])
                .expect(s)
        };
        let (project, location) = (at("projects"), at("locations"));
        let (model, method) = at("models").split_once(':').expect("method");
        let stream = method.starts_with("streamGenerateContent");
        let g = VertexGemini::new(project, location, auth());
        assert_eq!(
            url_of(&g, model, stream),
            uri.replace("/v1beta1/", "/v1/"),
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, 6);
    // The token endpoint the recorded refresh went to is the default `token_uri`.
    let t: Value = serde_json::from_slice(fixture!("auth/oauth2_token_refresh_response.http.json"))
        .expect("json");
    assert_eq!(t["request"]["uri"], auth::GOOGLE_TOKEN_URI);
}
