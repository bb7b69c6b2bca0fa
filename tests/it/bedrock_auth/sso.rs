//! IAM Identity Center (SSO) profiles over real HTTP: the token `aws sso login` cached under
//! a temporary home, traded at a stand-in SSO portal for the role's credentials — once for
//! many waiting calls, again before they expire — in the `sso-session` and legacy forms; an
//! expired or missing token and a refusing portal as credential faults that say to log in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use polyrelay::providers::bedrock::AwsAuth;
use polyrelay::{ErrorKind, Fault};

use super::{TempDir, rfc3339, sign, stand_in};

/// The cache file of `sso_session = admin`: SHA-1 of `admin` (aws-config `sso/cache.rs`
/// `determine_correct_cache_filenames`).
const SESSION_CACHE: &str = ".aws/sso/cache/d033e22ae348aeb5660fc2140aec35850c4da997.json";
/// The cache file of the legacy form with this start URL: SHA-1 of the URL (same vectors).
const LEGACY_URL: &str = "https://d-92671207e4.awsapps.com/start";
const LEGACY_CACHE: &str = ".aws/sso/cache/13f9d35043871d073ab260e020f0ffde092cb14b.json";

const CONFIG: &str = "\
[profile dev]
sso_session = admin
sso_account_id = 123456789012
sso_role_name = BedrockUser
region = us-east-1

[sso-session admin]
sso_start_url = https://corp.awsapps.com/start
sso_region = eu-west-1
sso_registration_scopes = sso:account:access

[profile legacy]
sso_start_url = https://d-92671207e4.awsapps.com/start
sso_region = us-west-2
sso_account_id = 210987654321
sso_role_name = Reader

[profile no-role]
sso_session = admin
sso_account_id = 123456789012

[profile lost]
sso_session = nowhere
sso_account_id = 123456789012
sso_role_name = BedrockUser
";

const PATH_DEV: &str = "/federation/credentials?account_id=123456789012&role_name=BedrockUser";

/// One request to the stand-in portal: path with query, and the bearer token it carried.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A stand-in for the SSO portal on loopback (the simulator does not speak it):
/// `GET /federation/credentials` with a known `x-amz-sso_bearer_token` gets credentials
/// expiring after `lifetime`; any other token a 401 `UnauthorizedException`; every request
/// the status in `refuse` instead when it is not 0.
struct Portal {
    url: String,
    seen: Seen,
    refuse: Arc<AtomicU16>,
}

async fn portal(lifetime: Duration) -> Portal {
    let seen: Seen = Default::default();
    let refuse = Arc::new(AtomicU16::new(0));
    let (log, refusing) = (seen.clone(), refuse.clone());
    let url = stand_in(move |head| {
        let token = head.header("x-amz-sso_bearer_token");
        log.lock().unwrap().push((head.path.clone(), token.clone()));
        let known = matches!(token.as_deref(), Some("sso-access-token" | "fresh-login"));
        let expiration = (SystemTime::now() + lifetime)
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        match refusing.load(Ordering::SeqCst) {
            0 if head.method == "GET"
                && head.path.starts_with("/federation/credentials?")
                && known =>
            {
                (
                    200,
                    format!(
                        r#"{{"roleCredentials":{{"accessKeyId":"ASIASSOEXAMPLE","secretAccessKey":"sso-secret","sessionToken":"sso-session-token","expiration":{expiration}}}}}"#
                    ),
                )
            }
            0 => (
                401,
                r#"{"message":"Session token not found or invalid"}"#.to_owned(),
            ),
            status => (status, r#"{"message":"No access"}"#.to_owned()),
        }
    })
    .await;
    Portal { url, seen, refuse }
}

/// A cached token as the AWS CLI writes it, expiring `expires_in` from now (or before).
fn cached_token(token: &str, expires_at: SystemTime) -> String {
    let secs = expires_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    format!(
        r#"{{"startUrl":"https://corp.awsapps.com/start","region":"eu-west-1","accessToken":"{token}","expiresAt":"{}","clientId":"client-id","clientSecret":"client-secret","refreshToken":"refresh-token","registrationExpiresAt":"2099-01-01T00:00:00Z"}}"#,
        rfc3339(secs)
    )
}

fn in_an_hour() -> SystemTime {
    SystemTime::now() + Duration::from_secs(3600)
}

/// A home with the config file, and the environment that points at it and at `portal`.
fn home(name: &str) -> TempDir {
    let home = TempDir::new(name);
    home.file(".aws/config", CONFIG);
    home
}

fn env(home: &TempDir, portal: &Portal) -> impl Fn(&str) -> Option<String> + 'static {
    let vars: HashMap<&str, String> = HashMap::from([
        ("HOME", home.0.to_str().unwrap().to_owned()),
        ("AWS_ENDPOINT_URL_SSO", portal.url.clone()),
    ]);
    move |name| vars.get(name).cloned()
}

fn assert_signed_with_sso_credentials(request: &reqwest::Request) {
    let h = request.headers();
    let authorization = h["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("Credential=ASIASSOEXAMPLE/"),
        "{authorization}"
    );
    assert!(
        authorization.contains("x-amz-security-token"),
        "{authorization}"
    );
    assert_eq!(h["x-amz-security-token"], "sso-session-token");
}

#[tokio::test]
async fn an_sso_session_profile_fetches_credentials_once_for_many_calls() {
    let portal = portal(Duration::from_secs(3600)).await;
    let home = home("sso-once");
    home.file(
        SESSION_CACHE,
        &cached_token("sso-access-token", in_an_hour()),
    );
    let lookup = env(&home, &portal);
    let auth = AwsAuth::from_env_with(move |name| match name {
        "AWS_PROFILE" => Some("dev".to_owned()),
        _ => lookup(name),
    })
    .unwrap();
    let http = reqwest::Client::new();
    let signed = futures::future::join_all((0..50).map(|_| sign(&auth, &http))).await;
    assert_eq!(
        *portal.seen.lock().unwrap(),
        [(PATH_DEV.to_owned(), Some("sso-access-token".to_owned()))],
        "one GetRoleCredentials, with the query and the cached token, for 50 calls"
    );
    for request in signed {
        assert_signed_with_sso_credentials(&request.unwrap());
    }
    // Cached until five minutes before they expire.
    sign(&auth, &http).await.unwrap();
    assert_eq!(portal.seen.lock().unwrap().len(), 1);
    let debug = format!("{auth:?}");
    assert!(debug.contains("dev"), "{debug}");
    for secret in ["sso-access-token", "sso-secret", "sso-session-token"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

#[tokio::test]
async fn a_legacy_profile_hashes_its_start_url() {
    let portal = portal(Duration::from_secs(3600)).await;
    let home = home("sso-legacy");
    home.file(
        LEGACY_CACHE,
        &cached_token("sso-access-token", in_an_hour()),
    );
    assert!(CONFIG.contains(LEGACY_URL));
    let auth = AwsAuth::profile_with("legacy", env(&home, &portal)).unwrap();
    let request = sign(&auth, &reqwest::Client::new()).await.unwrap();
    assert_signed_with_sso_credentials(&request);
    assert_eq!(
        *portal.seen.lock().unwrap(),
        [(
            "/federation/credentials?account_id=210987654321&role_name=Reader".to_owned(),
            Some("sso-access-token".to_owned())
        )]
    );
}

#[tokio::test]
async fn credentials_are_refreshed_with_the_latest_login() {
    // Two minutes left: inside the five-minute margin, so every call fetches again.
    let portal = portal(Duration::from_secs(120)).await;
    let home = home("sso-refresh");
    home.file(
        SESSION_CACHE,
        &cached_token("sso-access-token", in_an_hour()),
    );
    let auth = AwsAuth::profile_with("dev", env(&home, &portal)).unwrap();
    let http = reqwest::Client::new();
    sign(&auth, &http).await.unwrap();
    // `aws sso login` again: the next refresh reads the new token.
    home.file(SESSION_CACHE, &cached_token("fresh-login", in_an_hour()));
    assert_signed_with_sso_credentials(&sign(&auth, &http).await.unwrap());
    let tokens: Vec<Option<String>> = portal
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.clone())
        .collect();
    assert_eq!(
        tokens,
        [
            Some("sso-access-token".to_owned()),
            Some("fresh-login".to_owned())
        ]
    );
}

#[tokio::test]
async fn an_expired_or_missing_token_says_to_log_in() {
    let portal = portal(Duration::from_secs(3600)).await;
    let home = home("sso-expired");
    let auth = AwsAuth::profile_with("dev", env(&home, &portal)).unwrap();
    let http = reqwest::Client::new();

    let e = sign(&auth, &http).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert!(
        e.message().contains("aws sso login --profile dev"),
        "{}",
        e.message()
    );
    assert!(e.message().contains("d033e22ae348"), "{}", e.message());

    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    home.file(
        SESSION_CACHE,
        &cached_token("sso-access-token", an_hour_ago),
    );
    let e = sign(&auth, &http).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert!(e.message().contains("expired"), "{}", e.message());
    assert!(
        e.message().contains("aws sso login --profile dev"),
        "{}",
        e.message()
    );
    assert!(!e.to_string().contains("sso-access-token"), "{e}");
    assert!(
        portal.seen.lock().unwrap().is_empty(),
        "no portal call without a valid token"
    );
}

#[tokio::test]
async fn a_refusing_portal_is_a_credential_fault() {
    let portal = portal(Duration::from_secs(3600)).await;
    let home = home("sso-refused");
    // A token the portal does not know: 401 UnauthorizedException.
    home.file(SESSION_CACHE, &cached_token("revoked-token", in_an_hour()));
    let auth = AwsAuth::profile_with("dev", env(&home, &portal)).unwrap();
    let http = reqwest::Client::new();
    let e = sign(&auth, &http).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert_eq!(e.status(), Some(401));
    assert!(
        e.message().contains("aws sso login --profile dev"),
        "{}",
        e.message()
    );
    assert!(!e.to_string().contains("revoked-token"), "{e}");

    home.file(
        SESSION_CACHE,
        &cached_token("sso-access-token", in_an_hour()),
    );
    portal.refuse.store(403, Ordering::SeqCst);
    let e = sign(&auth, &http).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.fault(), Fault::Key);
    assert_eq!(e.status(), Some(403));
    assert!(!e.to_string().contains("sso-access-token"), "{e}");
}

#[test]
fn an_sso_profile_missing_a_setting_is_a_config_error() {
    let home = home("sso-config");
    let lookup = |name: &str| (name == "HOME").then(|| home.0.to_str().unwrap().to_owned());
    let e = AwsAuth::profile_with("no-role", lookup).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("sso_role_name"), "{}", e.message());
    let e = AwsAuth::profile_with("lost", lookup).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("[sso-session nowhere]"),
        "{}",
        e.message()
    );
}
