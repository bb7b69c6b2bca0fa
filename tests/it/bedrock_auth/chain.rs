//! The credential chain over an explicit environment (never the process's: tests run in
//! parallel) and temporary files: order, profiles, and errors with file and line.

use std::collections::HashMap;

use polyrelay::ErrorKind;
use polyrelay::providers::bedrock::AwsAuth;
use polyrelay::providers::bedrock::auth::SigV4Params;

use super::{TempDir, amz_time};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| map.get(name).cloned()
}

/// The `Authorization` (or `None` for bearer) and the session token a source signs with.
async fn signed(auth: &AwsAuth) -> (String, Option<String>) {
    let mut request = reqwest::Client::new()
        .post("https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse")
        .body("{}")
        .build()
        .unwrap();
    let params = SigV4Params::new("us-east-1", "bedrock", amz_time("20250101T000000Z"));
    auth.sign_with(&mut request, &params, &reqwest::Client::new())
        .await
        .unwrap();
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        header("authorization").unwrap(),
        header("x-amz-security-token"),
    )
}

fn credential_of(authorization: &str) -> &str {
    let rest = authorization.split("Credential=").nth(1).unwrap();
    rest.split('/').next().unwrap()
}

const CREDENTIALS_FILE: &str = "\
# a comment
[default]
aws_access_key_id = AKIDFILEDEFAULT
aws_secret_access_key = secret-default

[dev]
aws_access_key_id=AKIDFILEDEV
aws_secret_access_key=secret-dev
aws_session_token = token-dev
";

const CONFIG_FILE: &str = "\
[default]
region = us-east-1

; profiles in the config file are `[profile name]`
[profile ops]
region = eu-west-1
aws_access_key_id = AKIDCONFIGOPS
aws_secret_access_key = secret-ops
s3 =
  max_concurrent_requests = 10

[profile sso]
sso_session = corp
sso_account_id = 123456789012

[sso-session corp]
sso_start_url = https://corp.awsapps.com/start
";

fn home_with_files() -> TempDir {
    let home = TempDir::new("home");
    home.file(".aws/credentials", CREDENTIALS_FILE);
    home.file(".aws/config", CONFIG_FILE);
    home
}

#[tokio::test]
async fn a_bedrock_api_key_comes_first() {
    let home = home_with_files();
    let auth = AwsAuth::from_env_with(env(&[
        ("AWS_BEARER_TOKEN_BEDROCK", "bedrock-api-key-XYZ"),
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "secret-env"),
        ("HOME", home.0.to_str().unwrap()),
    ]))
    .unwrap();
    assert!(auth.is_bearer());
    assert_eq!(signed(&auth).await.0, "Bearer bedrock-api-key-XYZ");
}

#[tokio::test]
async fn environment_keys_come_before_the_files() {
    let home = home_with_files();
    let auth = AwsAuth::from_env_with(env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDENV"),
        ("AWS_SECRET_ACCESS_KEY", "secret-env"),
        ("AWS_SESSION_TOKEN", "token-env"),
        ("HOME", home.0.to_str().unwrap()),
    ]))
    .unwrap();
    let (authorization, token) = signed(&auth).await;
    assert_eq!(credential_of(&authorization), "AKIDENV");
    assert_eq!(token.as_deref(), Some("token-env"));
}

#[tokio::test]
async fn the_files_give_the_default_profile_and_aws_profile() {
    let home = home_with_files();
    let h = home.0.to_str().unwrap();
    let auth = AwsAuth::from_env_with(env(&[("HOME", h)])).unwrap();
    let (authorization, token) = signed(&auth).await;
    assert_eq!(credential_of(&authorization), "AKIDFILEDEFAULT");
    assert_eq!(token, None);

    let dev = AwsAuth::from_env_with(env(&[("HOME", h), ("AWS_PROFILE", "dev")])).unwrap();
    let (authorization, token) = signed(&dev).await;
    assert_eq!(credential_of(&authorization), "AKIDFILEDEV");
    assert_eq!(token.as_deref(), Some("token-dev"));

    // `[profile ops]` of the config file, its indented sub-properties skipped.
    let ops = AwsAuth::profile_with("ops", env(&[("HOME", h)])).unwrap();
    assert_eq!(credential_of(&signed(&ops).await.0), "AKIDCONFIGOPS");
    let debug = format!("{ops:?}");
    assert!(
        debug.contains("ops") && !debug.contains("secret-ops"),
        "{debug}"
    );
}

#[tokio::test]
async fn file_paths_come_from_the_variables() {
    let dir = TempDir::new("paths");
    let creds = dir.file(
        "elsewhere/creds",
        "[team]\naws_access_key_id = AKIDTEAM\naws_secret_access_key = s\n",
    );
    let auth = AwsAuth::from_env_with(env(&[
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", dir.0.join("none").to_str().unwrap()),
        ("AWS_PROFILE", "team"),
    ]))
    .unwrap();
    assert_eq!(credential_of(&signed(&auth).await.0), "AKIDTEAM");
}

#[test]
fn the_credentials_file_wins_over_the_config_file() {
    let home = TempDir::new("merge");
    home.file(
        ".aws/credentials",
        "[both]\naws_access_key_id = AKIDCREDS\naws_secret_access_key = from-creds\n",
    );
    home.file(
        ".aws/config",
        "[profile both]\naws_access_key_id = AKIDCONFIG\naws_secret_access_key = from-config\n",
    );
    let auth = AwsAuth::profile_with("both", env(&[("HOME", home.0.to_str().unwrap())])).unwrap();
    let debug = format!("{auth:?}");
    assert!(debug.contains("…REDS"), "{debug}");
    assert!(debug.contains("credentials"), "names the file: {debug}");
}

#[test]
fn nothing_found_says_what_was_looked_for() {
    let home = TempDir::new("empty");
    let e = AwsAuth::from_env_with(env(&[("HOME", home.0.to_str().unwrap())])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    let m = e.message();
    for looked in [
        "AWS_BEARER_TOKEN_BEDROCK",
        "AWS_ACCESS_KEY_ID",
        "credentials (not found)",
        "config (not found)",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ] {
        assert!(m.contains(looked), "{looked} in {m}");
    }
}

#[test]
fn half_configurations_are_refused() {
    let home = home_with_files();
    let h = home.0.to_str().unwrap();
    let e = AwsAuth::from_env_with(env(&[("AWS_ACCESS_KEY_ID", "AKID"), ("HOME", h)])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("AWS_SECRET_ACCESS_KEY"),
        "{}",
        e.message()
    );

    let e = AwsAuth::from_env_with(env(&[("AWS_PROFILE", "nope"), ("HOME", h)])).unwrap_err();
    assert!(e.message().contains("`nope`"), "{}", e.message());

    // An SSO profile without its region and role: what is missing, by name.
    let e = AwsAuth::profile_with("sso", env(&[("HOME", h)])).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("sso_region, sso_role_name"),
        "{}",
        e.message()
    );
}

/// A malformed file is an error naming the file and line, never the line's text (it may
/// hold a secret).
#[test]
fn a_malformed_file_names_its_line() {
    let cases: [(&str, usize); 5] = [
        (
            "[default]\naws_access_key_id = A\nthis line is broken SECRETVALUE\n",
            3,
        ),
        ("aws_access_key_id = SECRETVALUE\n[default]\n", 1),
        ("# c\n\n[default\naws_access_key_id = SECRETVALUE\n", 3),
        ("[default]\n  indented = SECRETVALUE\n", 2),
        ("[default]\n= SECRETVALUE\n", 2),
    ];
    for (text, line) in cases {
        let dir = TempDir::new("bad");
        let path = dir.file("credentials", text);
        let e = AwsAuth::from_env_with(env(&[
            ("AWS_SHARED_CREDENTIALS_FILE", path.to_str().unwrap()),
            ("AWS_CONFIG_FILE", dir.0.join("none").to_str().unwrap()),
        ]))
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        let m = e.to_string();
        assert!(
            m.contains(&format!("{}:{line}", path.display())),
            "line {line} in {m}"
        );
        assert!(!m.contains("SECRETVALUE"), "{m}");
    }
}

#[test]
fn web_identity_comes_from_the_environment() {
    let dir = TempDir::new("wi");
    let token = dir.file("token", "eyJ-token");
    let auth = AwsAuth::from_env_with(env(&[
        ("HOME", dir.0.to_str().unwrap()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap()),
        ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/relay"),
    ]))
    .unwrap();
    assert!(format!("{auth:?}").contains("web identity"));
}
