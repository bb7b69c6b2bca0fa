//! Google credential files: a service account's key file (`"type": "service_account"`, a
//! JWT signed with its key exchanged for a token) and gcloud's user credentials
//! (`"type": "authorized_user"`, a refresh token exchanged for a token).

use std::sync::Arc;
use std::time::SystemTime;

use aws_lc_rs::signature::RsaKeyPair;
use serde_json::Value;

use super::jwt;
use super::token_cache::Fetched;
use super::{Source, post_form};
use crate::providers::base_url::{BaseUrl, shown_url};
use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind};

/// Google's token endpoint, for files that name none.
pub(crate) const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A service account: who it is, its key, and where it trades assertions for tokens.
#[derive(Clone)]
pub(crate) struct ServiceAccount {
    pub(crate) email: String,
    key: Arc<RsaKeyPair>,
    key_id: Option<String>,
    pub(crate) token_uri: String,
}

/// gcloud's user credentials (`gcloud auth application-default login`).
#[derive(Clone)]
pub(crate) struct AuthorizedUser {
    pub(crate) client_id: String,
    client_secret: ApiKey,
    refresh_token: ApiKey,
    pub(crate) token_uri: String,
}

/// A credential file's contents as a token source. `origin` names the file in errors
/// (never its contents).
pub(crate) fn parse(json: &str, origin: &str) -> Result<Source, Error> {
    let bad = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("Google credentials {origin}: {why}"),
        )
    };
    // Read as a generic value: serde's messages for a field of the wrong type would quote
    // the field's value, which may be the private key.
    let v: Value = serde_json::from_str(json).map_err(|e| {
        bad(&format!(
            "not JSON (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    let field = |name: &str| {
        v.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let need = |name: &str| field(name).ok_or_else(|| bad(&format!("no {name:?}")));
    let token_uri = field("token_uri").unwrap_or(GOOGLE_TOKEN_URI);
    check_uri(token_uri).map_err(|why| bad(&why))?;
    match field("type") {
        Some("service_account") => {
            let pem = need("private_key")?;
            let key = jwt::parse_private_key(pem)
                .map_err(|e| bad(&format!("\"private_key\": {}", e.0)))?;
            Ok(Source::ServiceAccount(ServiceAccount {
                email: need("client_email")?.to_owned(),
                key: Arc::new(key),
                key_id: field("private_key_id").map(str::to_owned),
                token_uri: token_uri.to_owned(),
            }))
        }
        Some("authorized_user") => Ok(Source::AuthorizedUser(AuthorizedUser {
            client_id: need("client_id")?.to_owned(),
            client_secret: ApiKey::new(need("client_secret")?),
            refresh_token: ApiKey::new(need("refresh_token")?),
            token_uri: token_uri.to_owned(),
        })),
        Some(other) => Err(bad(&format!(
            "credentials of type {other:?} are not supported (service_account and \
             authorized_user are)"
        ))),
        None => Err(bad("no \"type\"")),
    }
}

/// Refuses a token endpoint that is not an absolute `http(s)` URL.
fn check_uri(uri: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(uri).ok();
    match url {
        Some(url) if BaseUrl::check(&url, uri).is_ok() => Ok(()),
        _ => Err(format!(
            "\"token_uri\" {:?} is not an absolute http(s) URL",
            shown_url(uri)
        )),
    }
}

impl ServiceAccount {
    /// A signed assertion traded for a token at the key file's `token_uri`.
    pub(crate) async fn fetch(&self, http: &reqwest::Client) -> Result<Fetched, Error> {
        let claims = jwt::Claims {
            issuer: &self.email,
            audience: &self.token_uri,
            key_id: self.key_id.as_deref(),
            issued_at: SystemTime::now(),
        };
        let assertion = jwt::assertion(&claims, &self.key).map_err(|e| {
            Error::new(
                ErrorKind::Auth,
                format!("service account {}: {}", self.email, e.0),
            )
            .with_fault(crate::types::Fault::Key)
        })?;
        let assertion = ApiKey::new(assertion);
        post_form(
            http,
            &self.token_uri,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.expose()),
            ],
        )
        .await
    }
}

impl AuthorizedUser {
    /// The refresh token traded for an access token.
    pub(crate) async fn fetch(&self, http: &reqwest::Client) -> Result<Fetched, Error> {
        post_form(
            http,
            &self.token_uri,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("refresh_token", self.refresh_token.expose()),
            ],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_FILE: &str = include_str!(
        "../../../../tests/fixtures/vertex/auth/google_auth_test_service_account.json"
    );

    #[test]
    fn the_published_test_key_file_parses() {
        let Source::ServiceAccount(sa) = parse(KEY_FILE, "test").expect("parses") else {
            panic!("not a service account");
        };
        assert_eq!(sa.email, "service-account@example.com");
        assert_eq!(sa.key_id.as_deref(), Some("1"));
        assert_eq!(sa.token_uri, "https://accounts.google.com/o/oauth2/token");
    }

    #[test]
    fn malformed_files_are_config_errors_naming_the_file_not_the_key() {
        let file: Value = serde_json::from_str(KEY_FILE).expect("json");
        let pem = file["private_key"].as_str().expect("pem").to_owned();
        let secret_line = pem.lines().nth(1).expect("line").to_owned();
        let with = |k: &str, v: Value| {
            let mut f = file.clone();
            f[k] = v;
            f.to_string()
        };
        let without = |k: &str| {
            let mut f = file.clone();
            f.as_object_mut().expect("object").remove(k);
            f.to_string()
        };
        let cases = [
            ("{not json".to_owned(), "not JSON"),
            (without("type"), "no \"type\""),
            (with("type", "external_account".into()), "not supported"),
            (without("private_key"), "no \"private_key\""),
            (without("client_email"), "no \"client_email\""),
            (
                with(
                    "private_key",
                    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----".into(),
                ),
                "does not parse",
            ),
            (
                with(
                    "private_key",
                    pem.replacen("BEGIN RSA", "BEGIN EC", 1).into(),
                ),
                "private_key",
            ),
            (with("token_uri", "ftp://x/token".into()), "token_uri"),
            (with("token_uri", "not a url".into()), "token_uri"),
            (with("client_email", Value::from(7)), "client_email"),
            (
                with("private_key", serde_json::json!({"k": secret_line.clone()})),
                "private_key",
            ),
        ];
        for (json, says) in cases {
            let e = parse(&json, "/etc/keys/sa.json").err().expect(says);
            assert_eq!(e.kind(), ErrorKind::Config, "{e}");
            let shown = format!("{e} {e:?}");
            assert!(shown.contains("/etc/keys/sa.json"), "{shown}");
            assert!(shown.contains(says), "{says}: {shown}");
            assert!(!shown.contains(&secret_line), "{shown}");
        }
    }

    #[test]
    fn authorized_user_files_parse_with_googles_token_endpoint_by_default() {
        let json = r#"{"type":"authorized_user","client_id":"id.apps.googleusercontent.com",
            "client_secret":"d-SECRET","refresh_token":"1//REFRESH"}"#;
        let Source::AuthorizedUser(u) = parse(json, "adc").expect("parses") else {
            panic!("not a user");
        };
        assert_eq!(u.token_uri, GOOGLE_TOKEN_URI);
        assert_eq!(u.client_id, "id.apps.googleusercontent.com");
        let e = parse(r#"{"type":"authorized_user","client_id":"x"}"#, "adc")
            .err()
            .expect("incomplete");
        assert!(e.message().contains("client_secret"), "{e}");
    }
}
