//! Clock skew over real HTTP: a refusal for the signature's time corrects the clock offset
//! from the answer's `Date` and signs once more; other refusals are not sent again.

use std::time::{Duration, SystemTime};

use polyrelay::providers::bedrock::{AwsAuth, Bedrock};
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{CallContext, ChatRequest, ErrorKind, Provider};

use super::amz_time;

const MODEL: &str = "us.anthropic.claude-3-5-sonnet-20241022-v2:0";
const SKEW_MESSAGE: &str = "Signature expired: 20250101T000000Z is now earlier than \
                            20250101T005500Z (20250101T010000Z - 5 min.)";

fn provider(sim: &Simulator, auth: &AwsAuth) -> Bedrock {
    Bedrock::new("us-east-1", auth.clone()).base_url(&sim.base_url())
}

fn cx() -> CallContext {
    CallContext::new(polyrelay::reqwest::Client::new())
}

/// Seconds between `a` and `b`, whichever is later.
fn apart(a: SystemTime, b: SystemTime) -> u64 {
    a.duration_since(b)
        .or_else(|_| b.duration_since(a))
        .unwrap_or_default()
        .as_secs()
}

fn signed_at(sim: &Simulator, i: usize) -> SystemTime {
    amz_time(sim.requests()[i].header("x-amz-date").unwrap())
}

#[tokio::test]
async fn a_skew_refusal_corrects_the_clock_and_signs_once_more() {
    let sim = Simulator::start().await.unwrap();
    let server_time = SystemTime::now() + Duration::from_secs(3600);
    sim.script(
        MODEL,
        [
            Reply::bedrock_error(403, "InvalidSignatureException", SKEW_MESSAGE)
                .header("date", &httpdate::fmt_http_date(server_time)),
            Reply::text("on time"),
        ],
    );
    let auth = AwsAuth::credentials("AKIDEXAMPLE", "secret", None);
    let p = provider(&sim, &auth);
    let resp = p
        .chat(&ChatRequest::new(MODEL).user("hi"), MODEL, &cx())
        .await
        .unwrap();
    assert_eq!(resp.text(), "on time");
    assert_eq!(sim.requests().len(), 2, "one refusal, one resend");
    // Wide margins: the first was signed by our clock, the second by the server's.
    assert!(apart(signed_at(&sim, 0), SystemTime::now()) < 120);
    assert!(apart(signed_at(&sim, 1), server_time) < 120);
    assert_ne!(
        sim.requests()[0].header("authorization"),
        sim.requests()[1].header("authorization")
    );

    // A clone made before shares the offset: its next call is signed on the server's time
    // at once.
    let p2 = provider(&sim, &auth);
    p2.chat(&ChatRequest::new(MODEL).user("again"), MODEL, &cx())
        .await
        .unwrap();
    assert_eq!(sim.requests().len(), 3);
    assert!(apart(signed_at(&sim, 2), server_time) < 120);
}

#[tokio::test]
async fn a_second_skew_refusal_is_the_calls_error() {
    let sim = Simulator::start().await.unwrap();
    let refusal = || {
        Reply::bedrock_error(403, "InvalidSignatureException", SKEW_MESSAGE).header(
            "date",
            &httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(7200)),
        )
    };
    sim.script(MODEL, [refusal(), refusal(), Reply::text("never")]);
    let auth = AwsAuth::credentials("AKIDEXAMPLE", "secret", None);
    let e = provider(&sim, &auth)
        .chat(&ChatRequest::new(MODEL).user("hi"), MODEL, &cx())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert_eq!(sim.requests().len(), 2, "re-signed once, not more");
}

#[tokio::test]
async fn other_refusals_are_not_sent_again() {
    let sim = Simulator::start().await.unwrap();
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    sim.script(
        MODEL,
        [
            // Denied, not skewed.
            Reply::bedrock_error(403, "AccessDeniedException", "not authorized")
                .header("date", &date),
            // Skewed, but no `Date` to learn the time from.
            Reply::bedrock_error(403, "InvalidSignatureException", SKEW_MESSAGE),
        ],
    );
    let auth = AwsAuth::credentials("AKIDEXAMPLE", "secret", None);
    let p = provider(&sim, &auth);
    let e = p
        .chat(&ChatRequest::new(MODEL).user("hi"), MODEL, &cx())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(sim.requests().len(), 1);
    p.chat(&ChatRequest::new(MODEL).user("hi"), MODEL, &cx())
        .await
        .unwrap_err();
    assert_eq!(sim.requests().len(), 2);
    assert!(format!("{auth:?}").contains("clock_offset_secs: 0"));
}

/// A Bedrock API key is never re-sent for skew: there is no signature to make again.
#[tokio::test]
async fn a_bearer_key_is_not_resent_for_skew() {
    let sim = Simulator::start().await.unwrap();
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
    sim.script(
        MODEL,
        [
            Reply::bedrock_error(403, "InvalidSignatureException", SKEW_MESSAGE)
                .header("date", &date),
        ],
    );
    let auth = AwsAuth::bearer("bedrock-api-key-x");
    provider(&sim, &auth)
        .chat(&ChatRequest::new(MODEL).user("hi"), MODEL, &cx())
        .await
        .unwrap_err();
    assert_eq!(sim.requests().len(), 1);
    assert_eq!(
        sim.requests()[0].header("authorization"),
        Some("Bearer bedrock-api-key-x")
    );
}
