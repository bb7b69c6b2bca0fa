//! API keys never show: not in Debug or Display of providers, relays or errors, not in logs
//! and traces — even when the vendor echoes the key back in its error message.

use crate::support;

use polyrelay::providers::OpenAi;
use polyrelay::{ApiKey, Chain, ChatRequest, ErrorKind, Relay};
use support::*;

const KEY: &str = "sk-live-DO-NOT-LEAK-4f9a8b7c6d5e";

#[tokio::test]
async fn keys_never_appear_in_debug_display_errors_or_traces() {
    let (logs, _guard) = support::CapturedLogs::start();

    let sim = Simulator::start().await.unwrap();
    // A vendor that echoes the key it was given (some do, partially masked or not).
    sim.script(
        "primary",
        [Reply::openai_error(
            401,
            "invalid_request_error",
            Some("invalid_api_key"),
            &format!("Incorrect API key provided: {KEY}."),
        )],
    );
    sim.script("fallback", [Reply::json(200, format!("not json {KEY}"))]);
    let provider = OpenAi::compatible("sim", &format!("{}/v1", sim.base_url()), KEY)
        .header("x-extra-secret", KEY)
        .unwrap();
    let relay = Relay::builder()
        .provider("sim", provider.clone())
        .route(
            "r",
            Chain::new().target("sim/primary").target("sim/fallback"),
        )
        .build()
        .unwrap();
    let err = relay
        .chat(ChatRequest::new("r").user("hello"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AllTargetsFailed);

    // The key did reach the vendor, in the header only.
    let seen = &sim.requests()[0];
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(!seen.path.contains(KEY));

    let mut texts = vec![
        format!("{provider:?}"),
        format!("{relay:?}"),
        format!("{err}"),
        format!("{err:?}"),
        format!("{:?}", ApiKey::new(KEY)),
        format!("{}", ApiKey::new(KEY)),
    ];
    for a in err.attempts() {
        let e = a.error.as_ref().unwrap();
        texts.push(format!("{e} {e:?} {:?}", e.body_snippet()));
    }
    texts.push(logs.text());
    for t in &texts {
        assert!(!t.contains(KEY), "key leaked in: {t}");
    }
    // The redaction left the vendor's words readable.
    let first = err.attempts()[0].error.as_ref().unwrap();
    assert!(
        first
            .message()
            .contains("Incorrect API key provided: [REDACTED]")
    );
    // …and the traces did record the attempts.
    let log = texts.last().unwrap();
    assert!(
        log.contains("relay.attempt") && log.contains("error.type"),
        "{log}"
    );
}
