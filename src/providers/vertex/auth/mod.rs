//! Google OAuth 2 access tokens for Vertex AI: a service account's key file, gcloud's user
//! credentials, the metadata server, or a fixed token — cached and refreshed once for all
//! waiting calls.

mod adc;
mod jwt;
mod metadata;
mod service_account;
mod token_cache;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind, Fault};
#[cfg(test)]
pub(crate) use service_account::GOOGLE_TOKEN_URI;
use service_account::{AuthorizedUser, ServiceAccount};
use token_cache::{Fetched, TokenCache};

/// How long a token request may take before it counts as failed.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest token answer read.
const TOKEN_BODY_LIMIT: usize = 64 * 1024;

/// Where Vertex AI calls get their `Authorization: Bearer` token.
///
/// | Constructor | Token |
/// |---|---|
/// | [`from_env`](Self::from_env) | Application Default Credentials, in Google's order |
/// | [`service_account_file`](Self::service_account_file), [`service_account_json`](Self::service_account_json) | a service account's key (an RS256 JWT traded at the file's `token_uri`), or gcloud's `authorized_user` file (its refresh token traded) |
/// | [`metadata_server`](Self::metadata_server) | the GCE / GKE / Cloud Run metadata server |
/// | [`access_token`](Self::access_token) | a fixed token (`gcloud auth print-access-token`), never refreshed |
///
/// Tokens are cached and refreshed 3 min 45 s before they expire (half their lifetime for
/// tokens that live less than 7.5 min). One refresh serves every call waiting for it: a
/// hundred calls at expiry make one token request, and every one of them gets its outcome.
/// Clones share the cache. A token request goes through the relay's HTTP client, with a
/// 30 s timeout.
///
/// A token endpoint that fails (refuses the connection, answers 5xx, refuses the key, sends
/// something that is not a token) fails the call with an [`ErrorKind::Auth`] error whose
/// [`fault`](Error::fault) is [`Fault::Key`]: the credential's fault, not a vendor outage,
/// so the relay moves on to the next target instead of retrying this one.
///
/// `Debug` shows the kind of credential and the account, never a key, secret or token.
#[derive(Clone)]
pub struct GoogleAuth {
    inner: Arc<Inner>,
}

struct Inner {
    source: Source,
    cache: TokenCache,
}

/// Where tokens come from.
#[derive(Clone)]
pub(crate) enum Source {
    Fixed(ApiKey),
    ServiceAccount(ServiceAccount),
    AuthorizedUser(AuthorizedUser),
    /// The metadata server's base URL (`http://metadata.google.internal`).
    Metadata(String),
}

impl std::fmt::Debug for GoogleAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("GoogleAuth");
        match &self.inner.source {
            Source::Fixed(_) => d.field("source", &"access_token"),
            Source::ServiceAccount(sa) => d
                .field("source", &"service_account")
                .field("email", &sa.email)
                .field("token_uri", &sa.token_uri),
            Source::AuthorizedUser(u) => d
                .field("source", &"authorized_user")
                .field("client_id", &u.client_id)
                .field("token_uri", &u.token_uri),
            Source::Metadata(base) => d.field("source", &"metadata_server").field("url", base),
        };
        d.finish_non_exhaustive()
    }
}

impl GoogleAuth {
    fn of(source: Source) -> Self {
        GoogleAuth {
            inner: Arc::new(Inner {
                source,
                cache: TokenCache::default(),
            }),
        }
    }

    /// Application Default Credentials, in google-auth's order: the file
    /// `GOOGLE_APPLICATION_CREDENTIALS` names (an error if it cannot be read); else gcloud's
    /// `application_default_credentials.json` in `$CLOUDSDK_CONFIG` (default
    /// `~/.config/gcloud`, `%APPDATA%\gcloud` on Windows) when it exists; else the metadata
    /// server at `$GCE_METADATA_HOST` (default `metadata.google.internal`). Whether a
    /// metadata server answers is known only at the first call.
    ///
    /// Errors: [`ErrorKind::Config`] for a credential file that cannot be read or parsed,
    /// naming the file.
    pub fn from_env() -> Result<GoogleAuth, Error> {
        adc::find(&|name| std::env::var_os(name))
    }

    /// The credential file at `path`: a service account's key file
    /// (`"type": "service_account"`), or gcloud's user credentials
    /// (`"type": "authorized_user"`). Its `token_uri` (default
    /// `https://oauth2.googleapis.com/token`) is where tokens are asked for.
    ///
    /// Errors: [`ErrorKind::Config`] naming the file when it cannot be read, is not JSON,
    /// lacks a field, or holds a key that does not parse (PKCS#8 `BEGIN PRIVATE KEY` or
    /// PKCS#1 `BEGIN RSA PRIVATE KEY` PEM); never with the file's contents.
    pub fn service_account_file(path: impl AsRef<Path>) -> Result<GoogleAuth, Error> {
        let path = path.as_ref();
        let origin = format!("file {}", path.display());
        let json = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("Google credentials {origin}: cannot be read: {e}"),
            )
        })?;
        service_account::parse(&json, &origin).map(GoogleAuth::of)
    }

    /// A credential file's contents (see [`service_account_file`](Self::service_account_file)),
    /// e.g. from a secret manager. Errors as there, without a file name.
    pub fn service_account_json(json: &str) -> Result<GoogleAuth, Error> {
        service_account::parse(json, "JSON").map(GoogleAuth::of)
    }

    /// The metadata server of GCE, GKE (Workload Identity) or Cloud Run, at
    /// `metadata.google.internal`: the token of the workload's service account.
    pub fn metadata_server() -> GoogleAuth {
        Self::metadata_server_at(metadata::DEFAULT_HOST)
    }

    /// The metadata server at another host (`GCE_METADATA_HOST`'s form, `host[:port]`, or
    /// an `http://` URL): an emulator, a test server.
    pub fn metadata_server_at(host: &str) -> GoogleAuth {
        Self::of(Source::Metadata(metadata::base_of(host)))
    }

    /// A fixed access token (e.g. `gcloud auth print-access-token`), sent as it is and never
    /// refreshed: calls fail with [`ErrorKind::Auth`] once it expires (about an hour).
    pub fn access_token(token: impl Into<ApiKey>) -> GoogleAuth {
        Self::of(Source::Fixed(token.into()))
    }

    /// The current token: the cached one, or a new one (one request for all waiting calls).
    pub(crate) async fn token(&self, http: &reqwest::Client) -> Result<ApiKey, Error> {
        let inner = &self.inner;
        if let Source::Fixed(token) = &inner.source {
            return Ok(token.clone());
        }
        inner.cache.get(|| inner.source.fetch(http)).await
    }

    /// Drops the cached token after the vendor refused it; whether a new one can be had
    /// (not for a fixed token).
    pub(crate) fn invalidate(&self) -> bool {
        if matches!(self.inner.source, Source::Fixed(_)) {
            return false;
        }
        self.inner.cache.invalidate();
        true
    }
}

impl Source {
    async fn fetch(&self, http: &reqwest::Client) -> Result<Fetched, Error> {
        let fetched = match self {
            Source::Fixed(token) => Ok(Fetched {
                token: token.clone(),
                expires_in: None,
            }),
            Source::ServiceAccount(sa) => sa.fetch(http).await,
            Source::AuthorizedUser(u) => u.fetch(http).await,
            Source::Metadata(base) => metadata::fetch(http, base).await,
        };
        if let Err(e) = &fetched {
            tracing::warn!(error = %e, "no Google access token");
        }
        fetched
    }
}

/// The credential's fault: a token could not be had.
pub(crate) fn auth_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Auth, message).with_fault(Fault::Key)
}

/// POSTs a form to a token endpoint and reads the token it answers.
pub(crate) async fn post_form(
    http: &reqwest::Client,
    uri: &str,
    fields: &[(&str, &str)],
) -> Result<Fetched, Error> {
    let body = crate::http::form::form_encode(fields);
    let resp = http
        .post(uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .timeout(TOKEN_TIMEOUT)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            auth_error(format!("the token endpoint {uri} did not answer")).with_source(e)
        })?;
    read_token(resp, &format!("the token endpoint {uri}")).await
}

/// The token in a token answer (`access_token`, `expires_in` as a number or a string), or
/// the error an error answer says (`{"error", "error_description"}`).
pub(crate) async fn read_token(resp: reqwest::Response, from: &str) -> Result<Fetched, Error> {
    let status = resp.status();
    let body = crate::http::read_body(resp, TOKEN_BODY_LIMIT)
        .await
        .map_err(|e| auth_error(format!("{from} answered {status}, then failed")).with_source(e))?;
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let code = v.get("error").and_then(Value::as_str);
        let says = [code, v.get("error_description").and_then(Value::as_str)]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(": ");
        let mut e = auth_error(format!(
            "{from} refused a token ({}){}",
            status.as_u16(),
            if says.is_empty() {
                String::new()
            } else {
                format!(": {}", crate::types::truncate_utf8(&says, 300))
            }
        ));
        if let Some(code) = code {
            e = e.with_code(code);
        }
        return Err(e);
    }
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| auth_error(format!("{from} answered {status} without an access_token")))?;
    let expires_in = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .map(Duration::from_secs);
    Ok(Fetched {
        token: ApiKey::new(token),
        expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            crate::http::form::form_encode(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("a", "x y/+=&é")
            ]),
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&a=x+y%2F%2B%3D%26%C3%A9"
        );
    }

    #[test]
    fn debug_shows_no_secret() {
        let fixed = GoogleAuth::access_token("ya29.SECRET-TOKEN");
        assert!(!format!("{fixed:?}").contains("SECRET"));
        assert!(format!("{fixed:?}").contains("access_token"));
        let user = GoogleAuth::service_account_json(
            r#"{"type":"authorized_user","client_id":"cid","client_secret":"d-SECRET","refresh_token":"1//SECRET"}"#,
        )
        .expect("user");
        assert!(!format!("{user:?}").contains("SECRET"), "{user:?}");
        assert!(!fixed.invalidate() && user.invalidate());
    }

    #[test]
    fn unreadable_files_are_config_errors_naming_the_file() {
        let e = GoogleAuth::service_account_file("/nonexistent/dir/key.json").expect_err("missing");
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.message().contains("/nonexistent/dir/key.json"), "{e}");
        let ok = GoogleAuth::service_account_file(
            "tests/fixtures/vertex/auth/google_auth_test_service_account.json",
        )
        .expect("fixture");
        assert!(format!("{ok:?}").contains("service-account@example.com"));
    }
}
