//! Temporary credentials over real HTTP: web identity (STS `AssumeRoleWithWebIdentity`)
//! against the simulator, fetched once for many waiting calls, refreshed before expiry, and
//! a failing STS as a credential fault.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use polyrelay::providers::bedrock::AwsAuth;
use polyrelay::simulator::{Reply, Simulator};
use polyrelay::{ErrorKind, Fault};

use super::{TempDir, rfc3339, sign, stand_in};

fn sts_answer(expires_in: Duration) -> Reply {
    let expiration = SystemTime::now() + expires_in;
    // RFC 3339 from the HTTP date's fields is awkward; STS sends `2025-01-01T00:00:00Z`.
    let secs = expiration
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let xml = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials>\
         <AccessKeyId>ASIASTSEXAMPLE</AccessKeyId>\
         <SecretAccessKey>sts-secret</SecretAccessKey>\
         <SessionToken>sts-session-token</SessionToken>\
         <Expiration>{}</Expiration>\
         </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
        rfc3339(secs)
    );
    Reply::raw(200, "text/xml", xml)
}

fn web_identity(sim: &Simulator, dir: &TempDir) -> AwsAuth {
    let token = dir.file("token", "eyJ-web-identity-token\n");
    let vars: HashMap<&str, String> = HashMap::from([
        ("HOME", dir.0.to_str().unwrap().to_owned()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token.to_str().unwrap().to_owned(),
        ),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/relay".to_owned(),
        ),
        ("AWS_ENDPOINT_URL_STS", sim.base_url()),
    ]);
    AwsAuth::from_env_with(move |name| vars.get(name).cloned()).unwrap()
}

#[tokio::test]
async fn many_calls_at_once_make_one_sts_request() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(sts_answer(Duration::from_secs(3600)));
    let dir = TempDir::new("wi-once");
    let auth = web_identity(&sim, &dir);
    let http = reqwest::Client::new();
    let signed = futures::future::join_all((0..50).map(|_| sign(&auth, &http))).await;
    assert_eq!(sim.requests().len(), 1, "one fetch for all 50 calls");
    for request in signed {
        let request = request.unwrap();
        let h = request.headers();
        assert!(
            h["authorization"]
                .to_str()
                .unwrap()
                .contains("Credential=ASIASTSEXAMPLE/")
        );
        assert_eq!(h["x-amz-security-token"], "sts-session-token");
    }
    let sts = &sim.requests()[0];
    assert_eq!(sts.method, "POST");
    assert_eq!(
        sts.form("Action").as_deref(),
        Some("AssumeRoleWithWebIdentity")
    );
    assert_eq!(
        sts.form("WebIdentityToken").as_deref(),
        Some("eyJ-web-identity-token")
    );
    assert_eq!(
        sts.form("RoleArn").as_deref(),
        Some("arn:aws:iam::123456789012:role/relay")
    );
    // Still fresh: no other fetch.
    sign(&auth, &http).await.unwrap();
    assert_eq!(sim.requests().len(), 1);
    assert!(!format!("{auth:?}").contains("sts-s"));
}

#[tokio::test]
async fn credentials_are_refreshed_before_they_expire() {
    let sim = Simulator::start().await.unwrap();
    // Two minutes left: inside the five-minute margin, so every call fetches again.
    sim.set_default(sts_answer(Duration::from_secs(120)));
    let dir = TempDir::new("wi-refresh");
    let auth = web_identity(&sim, &dir);
    let http = reqwest::Client::new();
    sign(&auth, &http).await.unwrap();
    sign(&auth, &http).await.unwrap();
    assert_eq!(sim.requests().len(), 2);
    // A failing refresh keeps signing with credentials that have not expired yet.
    sim.set_default(Reply::raw(503, "text/plain", "unavailable"));
    let request = sign(&auth, &http).await.unwrap();
    assert_eq!(sim.requests().len(), 3);
    assert_eq!(
        request.headers()["x-amz-security-token"],
        "sts-session-token"
    );
}

#[tokio::test]
async fn a_failing_sts_is_a_credential_fault() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::raw(
        403,
        "text/xml",
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
         <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>\
         </Error></ErrorResponse>",
    ));
    let dir = TempDir::new("wi-fail");
    let auth = web_identity(&sim, &dir);
    let e = sign(&auth, &reqwest::Client::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert!(e.message().contains("AccessDenied"), "{}", e.message());
    assert!(!e.to_string().contains("eyJ-web"), "{e}");
}

#[tokio::test]
async fn a_failing_sts_is_asked_once_for_the_calls_waiting_on_it() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::raw(503, "text/plain", "unavailable"));
    let dir = TempDir::new("wi-fail-once");
    let auth = web_identity(&sim, &dir);
    let http = reqwest::Client::new();
    let signed = futures::future::join_all((0..20).map(|_| sign(&auth, &http))).await;
    assert_eq!(sim.requests().len(), 1, "one failed fetch for all 20 calls");
    for outcome in signed {
        let e = outcome.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert_eq!(e.fault(), Fault::Key);
    }
    // A later call asks again.
    sign(&auth, &http).await.unwrap_err();
    assert_eq!(sim.requests().len(), 2);
}

/// One request to the stand-in instance metadata service: method, path, the session token
/// it carried.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, Option<String>)>>>;

/// A stand-in for the EC2 instance metadata service on loopback (the simulator does not
/// speak IMDS): a token for `PUT /latest/api/token` with a TTL header, the role name and
/// its credentials for the GETs with that token, 401 otherwise.
async fn imds_server(expiration: String) -> (String, Seen) {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let url = stand_in(move |head| {
        let token = head.header("x-aws-ec2-metadata-token");
        log.lock()
            .unwrap()
            .push((head.method.clone(), head.path.clone(), token.clone()));
        let ok = token.as_deref() == Some("imds-session");
        match (head.method.as_str(), head.path.as_str()) {
            ("PUT", "/latest/api/token")
                if head.header("x-aws-ec2-metadata-token-ttl-seconds").is_some() =>
            {
                (200, "imds-session".to_owned())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if ok => {
                (200, "relay-role\n".to_owned())
            }
            ("GET", "/latest/meta-data/iam/security-credentials/relay-role") if ok => (
                200,
                format!(
                    r#"{{"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDSEXAMPLE","SecretAccessKey":"imds-secret","Token":"imds-token","Expiration":"{expiration}"}}"#
                ),
            ),
            _ => (401, String::new()),
        }
    })
    .await;
    (url, seen)
}

#[tokio::test]
async fn instance_metadata_gives_the_roles_credentials() {
    let secs = (SystemTime::now() + Duration::from_secs(6 * 3600))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (url, seen) = imds_server(rfc3339(secs)).await;
    let auth = AwsAuth::instance_metadata_at(&url);
    let http = reqwest::Client::new();
    let request = sign(&auth, &http).await.unwrap();
    let h = request.headers();
    assert!(
        h["authorization"]
            .to_str()
            .unwrap()
            .contains("Credential=ASIAIMDSEXAMPLE/")
    );
    assert_eq!(h["x-amz-security-token"], "imds-token");
    let paths: Vec<(String, String)> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert_eq!(
        paths,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            (
                "GET".to_owned(),
                "/latest/meta-data/iam/security-credentials/".to_owned()
            ),
            (
                "GET".to_owned(),
                "/latest/meta-data/iam/security-credentials/relay-role".to_owned()
            ),
        ]
    );
    // Cached until five minutes before they expire.
    sign(&auth, &http).await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert!(!format!("{auth:?}").contains("imds-"));
}

#[tokio::test]
async fn an_unreachable_metadata_service_is_a_credential_fault() {
    // A port nothing listens on: bind one, then let it go.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let auth = AwsAuth::instance_metadata_at(&format!("http://{addr}"));
    let e = sign(&auth, &reqwest::Client::new()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert!(e.message().contains("instance metadata"), "{}", e.message());
}
