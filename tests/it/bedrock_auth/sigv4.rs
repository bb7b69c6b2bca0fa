//! SigV4 reproduces every smithy-rs vector in `tests/fixtures/bedrock/sigv4/` exactly
//! (canonical request, string to sign, `Authorization`), and signs a Bedrock request with
//! `:` in its model id over the bytes it sends.

use std::path::{Path, PathBuf};

use polyrelay::providers::bedrock::AwsAuth;
use polyrelay::providers::bedrock::auth::{SigV4, SigV4Params};
use reqwest::header::{HeaderName, HeaderValue};

use super::amz_time;

const SUITE: &str = "tests/fixtures/bedrock/sigv4";
const SUITE_KEY_ID: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// One vector's `request.txt`: method, path as sent, headers (the `Host` header is left out:
/// the signer takes it from the URL), body.
struct VectorRequest {
    method: String,
    path: String,
    host: String,
    headers: Vec<(String, String)>,
    body: String,
}

fn read_request(dir: &Path) -> VectorRequest {
    let text = std::fs::read_to_string(dir.join("request.txt")).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let first: Vec<&str> = lines.next().unwrap().split(' ').collect();
    let mut req = VectorRequest {
        method: first[0].to_owned(),
        path: first[1].to_owned(),
        host: String::new(),
        headers: Vec::new(),
        body: body.to_owned(),
    };
    for line in lines {
        let (name, value) = line.split_once(':').unwrap();
        if name.eq_ignore_ascii_case("host") {
            req.host = value.trim().to_owned();
        } else {
            req.headers.push((name.to_owned(), value.to_owned()));
        }
    }
    req
}

fn build(req: &VectorRequest) -> reqwest::Request {
    let url = format!("https://{}{}", req.host, req.path);
    let method = reqwest::Method::from_bytes(req.method.as_bytes()).unwrap();
    let mut request = reqwest::Request::new(method, url.parse().unwrap());
    for (name, value) in &req.headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    if !req.body.is_empty() {
        *request.body_mut() = Some(req.body.clone().into());
    }
    request
}

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

/// The `Authorization` value in `header-signed-request.txt` (`Authorization:` or
/// `Authorization: `).
fn expected_authorization(dir: &Path) -> String {
    let text = read(dir, "header-signed-request.txt").unwrap();
    let line = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization:"))
        .unwrap();
    line.split_once(':').unwrap().1.trim().to_owned()
}

/// What a vector is signed with: `context.json` where there is one, else the values
/// smithy-rs's own tests use for the two cases migrated from the old suite.
struct Context {
    auth: AwsAuth,
    region: String,
    service: String,
    sign_body: bool,
    time: std::time::SystemTime,
}

fn context(dir: &Path, req: &VectorRequest) -> Context {
    let header_date = || {
        req.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-amz-date"))
            .map(|(_, v)| amz_time(v.trim()))
            .unwrap()
    };
    match read(dir, "context.json") {
        Some(json) => {
            let c: serde_json::Value = serde_json::from_str(&json).unwrap();
            let creds = &c["credentials"];
            let token = creds["token"].as_str().map(|t| t.into());
            // "2015-08-30T12:36:00Z" → "20150830T123600Z".
            let stamp: String = c["timestamp"]
                .as_str()
                .unwrap()
                .chars()
                .filter(|ch| !matches!(ch, '-' | ':'))
                .collect();
            Context {
                auth: AwsAuth::credentials(
                    creds["access_key_id"].as_str().unwrap(),
                    creds["secret_access_key"].as_str().unwrap(),
                    token,
                ),
                region: c["region"].as_str().unwrap().to_owned(),
                service: c["service"].as_str().unwrap().to_owned(),
                sign_body: c["sign_body"].as_bool().unwrap(),
                time: amz_time(&stamp),
            }
        }
        // smithy-rs signs this one with `Credentials::for_tests()`.
        None if dir.ends_with("double-encode-path") => Context {
            auth: AwsAuth::credentials("ANOTREAL", "notrealrnrELgWzOk3IfjzDKtFBhDby", None),
            region: "us-east-1".to_owned(),
            service: "service".to_owned(),
            sign_body: false,
            time: header_date(),
        },
        None => Context {
            auth: AwsAuth::credentials(SUITE_KEY_ID, SUITE_SECRET, None),
            region: "us-east-2".to_owned(),
            service: "lambda".to_owned(),
            sign_body: false,
            time: header_date(),
        },
    }
}

fn vector_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(SUITE)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// `request` signed by `auth` as `params` say.
async fn signed(auth: &AwsAuth, request: &mut reqwest::Request, params: &SigV4Params) -> SigV4 {
    let http = reqwest::Client::new();
    auth.sign_with(request, params, &http)
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn every_smithy_vector_is_reproduced_exactly() {
    let dirs = vector_dirs();
    assert_eq!(dirs.len(), 8, "the suite has 8 cases");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let req = read_request(dir);
        let cx = context(dir, &req);
        let params =
            SigV4Params::new(&cx.region, &cx.service, cx.time).content_sha256(cx.sign_body);
        let mut request = build(&req);
        let sig = signed(&cx.auth, &mut request, &params).await;
        let auth = expected_authorization(dir);
        assert_eq!(sig.authorization(), auth, "{name}: authorization");
        assert_eq!(
            request.headers()["authorization"].to_str().unwrap(),
            auth,
            "{name}: the header set"
        );
        assert!(request.headers()["authorization"].is_sensitive());
        if let Some(sts) = read(dir, "header-string-to-sign.txt") {
            // `double-url-encode`'s file ends with a newline the others do not have.
            assert_eq!(
                sig.string_to_sign(),
                sts.strip_suffix('\n').unwrap_or(&sts),
                "{name}: string to sign"
            );
        }
        if let Some(sig_hex) = read(dir, "header-signature.txt") {
            assert!(auth.ends_with(&format!("Signature={sig_hex}")), "{name}");
        }
        let canonical = read(dir, "header-canonical-request.txt").unwrap();
        if name == "double-encode-path" {
            // This case's canonical request was generated at 20210511T154045Z although its
            // request says 20150830T123600Z (smithy-rs checks them in separate tests with
            // those two times): compare it at its own time.
            let at = SigV4Params::new("us-east-1", "service", amz_time("20210511T154045Z"));
            let mut again = build(&req);
            let sig = signed(&cx.auth, &mut again, &at).await;
            assert_eq!(
                sig.canonical_request(),
                canonical,
                "{name}: canonical request"
            );
        } else {
            assert_eq!(
                sig.canonical_request(),
                canonical,
                "{name}: canonical request"
            );
        }
        assert_eq!(
            request.headers()["x-amz-date"].to_str().unwrap(),
            sig.string_to_sign().lines().nth(1).unwrap(),
            "{name}: x-amz-date is the time signed"
        );
    }
}

/// A Converse call as the codec builds it: `:` in the model id sent as `%3A` and signed as
/// `%253A`, a session token signed and sent, `content-type` signed, the body hashed.
/// Expected values computed independently (Python `hmac`/`hashlib`).
#[tokio::test]
async fn a_bedrock_request_is_signed_over_the_bytes_it_sends() {
    let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse";
    let body = r#"{"messages":[{"role":"user","content":[{"text":"hi"}]}]}"#;
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .build()
        .unwrap();
    assert_eq!(
        request.url().path(),
        "/model/us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse",
        "the path as sent"
    );
    let auth = AwsAuth::credentials(
        SUITE_KEY_ID,
        SUITE_SECRET,
        Some("SESSIONTOKEN-EXAMPLE".into()),
    );
    let params = SigV4Params::new("us-east-1", "bedrock", amz_time("20250101T000000Z"));
    let sig = signed(&auth, &mut request, &params).await;
    let payload = "c3335e07d6e89650bf94cb98664be69f8774dbc3198df221f113db0a59ea14f0";
    assert_eq!(
        sig.canonical_request(),
        format!(
            "POST\n/model/us.anthropic.claude-3-5-sonnet-20241022-v2%253A0/converse\n\n\
             content-type:application/json\nhost:bedrock-runtime.us-east-1.amazonaws.com\n\
             x-amz-date:20250101T000000Z\nx-amz-security-token:SESSIONTOKEN-EXAMPLE\n\n\
             content-type;host;x-amz-date;x-amz-security-token\n{payload}"
        )
    );
    assert_eq!(
        sig.authorization(),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250101/us-east-1/bedrock/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
         Signature=b120356eb7d44cd58be39af03f8e2e5b63a3fcb849a8c65f195cce1222db230e"
    );
    let headers = request.headers();
    assert_eq!(headers["x-amz-date"], "20250101T000000Z");
    assert_eq!(headers["x-amz-security-token"], "SESSIONTOKEN-EXAMPLE");
    assert!(headers["x-amz-security-token"].is_sensitive());
    assert!(
        headers.get("x-amz-content-sha256").is_none(),
        "not sent for bedrock"
    );
    // Debug of the signature names no token.
    assert!(!format!("{sig:?}").contains("SESSIONTOKEN"));
}

/// A port other than the scheme's goes into the signed host, as the HTTP stack sends it.
#[tokio::test]
async fn the_signed_host_carries_a_non_default_port() {
    let mut request = reqwest::Client::new()
        .post("http://127.0.0.1:4566/model/m/converse")
        .body("{}")
        .build()
        .unwrap();
    let auth = AwsAuth::credentials(SUITE_KEY_ID, SUITE_SECRET, None);
    let params = SigV4Params::new("us-east-1", "bedrock", amz_time("20250101T000000Z"));
    let sig = signed(&auth, &mut request, &params).await;
    assert!(sig.canonical_request().contains("\nhost:127.0.0.1:4566\n"));
}

#[tokio::test]
async fn a_bearer_key_is_sent_as_is_and_nothing_is_signed() {
    let mut request = reqwest::Client::new()
        .post("https://bedrock-runtime.us-west-2.amazonaws.com/model/m/converse")
        .body("{}")
        .build()
        .unwrap();
    let auth = AwsAuth::bearer("bedrock-api-key-EXAMPLE");
    let params = SigV4Params::new("us-west-2", "bedrock", amz_time("20250101T000000Z"));
    let sig = auth
        .sign_with(&mut request, &params, &reqwest::Client::new())
        .await
        .unwrap();
    assert!(sig.is_none());
    let value = &request.headers()["authorization"];
    assert_eq!(value, "Bearer bedrock-api-key-EXAMPLE");
    assert!(value.is_sensitive());
    assert!(request.headers().get("x-amz-date").is_none());
    assert!(!format!("{auth:?}").contains("EXAMPLE"));
}

/// `Debug` shows where credentials came from and the key id's last four characters, never
/// the secret or the session token.
#[test]
fn debug_shows_no_secret() {
    let auth = AwsAuth::credentials(
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY",
        Some("FwoGZXIvYXdzEXAMPLETOKEN".into()),
    );
    let debug = format!("{auth:?}");
    assert!(debug.contains("…MPLE"), "{debug}");
    assert!(!debug.contains("AKIAIOSFODNN7"), "{debug}");
    assert!(!debug.contains("SECRETKEY"), "{debug}");
    assert!(!debug.contains("FwoGZXIv"), "{debug}");
}
