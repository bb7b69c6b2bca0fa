//! AWS IAM Identity Center (SSO) profiles: the access token `aws sso login` cached, traded at
//! the SSO portal for the role's temporary credentials (`GetRoleCredentials`).
//!
//! A profile names its SSO settings either through an `[sso-session NAME]` section
//! (`sso_session = NAME`) or, in the legacy form, in the profile itself (`sso_start_url`,
//! `sso_region`); both add `sso_account_id` and `sso_role_name`. The AWS CLI caches the
//! token in `~/.aws/sso/cache/<hex SHA-1>.json`, hashing the session name, or the start URL
//! for the legacy form (botocore `SSOTokenLoader._generate_cache_key`, aws-config
//! `sso/cache.rs` `cached_token_path`). The token is read at every fetch of credentials, so
//! a later `aws sso login` is picked up; an expired token is not refreshed here (the SDKs
//! refresh it through SSO OIDC with the cached refresh token): the user logs in again.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;

use super::Credentials;
use super::profile_file::Properties;
use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind, Fault};

/// The SSO settings of one profile, resolved from the config file.
#[derive(Clone)]
pub(super) struct SsoConfig {
    profile: String,
    /// The `sso_session` the profile names; `None` for the legacy form.
    session: Option<String>,
    start_url: String,
    account_id: String,
    role_name: String,
    /// `~/.aws/sso/cache`, under the home directory of the environment given.
    cache_dir: PathBuf,
    /// The portal's base URL: `https://portal.sso.{sso_region}.amazonaws.com`, or the
    /// override (`AWS_ENDPOINT_URL_SSO`).
    portal: String,
}

impl std::fmt::Debug for SsoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsoConfig")
            .field("profile", &self.profile)
            .field("session", &self.session)
            .field("account_id", &self.account_id)
            .field("role_name", &self.role_name)
            .field("portal", &self.portal)
            .finish_non_exhaustive()
    }
}

/// The name of the file the AWS CLI caches an SSO token in: the lower-case hex SHA-1 of
/// `identifier` (the `sso_session` name, or the start URL for the legacy form), `.json`.
pub(super) fn cache_file_name(identifier: &str) -> String {
    let sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, identifier.as_bytes());
    format!("{}.json", super::sigv4::hex(sha1.as_ref()))
}

/// Whether a profile's properties ask for SSO.
pub(super) fn is_sso_profile(get: &dyn Fn(&str) -> Option<String>) -> bool {
    [
        "sso_session",
        "sso_start_url",
        "sso_account_id",
        "sso_role_name",
    ]
    .iter()
    .any(|key| get(key).is_some())
}

fn config_error(message: String) -> Error {
    Error::new(ErrorKind::Config, message)
}

fn source_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Auth, message).with_fault(Fault::Key)
}

impl SsoConfig {
    /// The SSO settings of profile `profile` (its properties through `get`), with the
    /// `[sso-session]` section it names looked up through `session_section`. `home`: the
    /// home directory the cache is under; `portal_override`: `AWS_ENDPOINT_URL_SSO`. A
    /// missing setting, an unknown session, or a setting the profile and its session give
    /// differently is an [`ErrorKind::Config`] error naming the profile (`place`).
    pub(super) fn from_profile(
        profile: &str,
        place: &str,
        get: &dyn Fn(&str) -> Option<String>,
        session_section: &dyn Fn(&str) -> Option<Properties>,
        home: Option<PathBuf>,
        portal_override: Option<String>,
    ) -> Result<SsoConfig, Error> {
        let session = get("sso_session");
        let mut missing = Vec::new();
        let mut setting = |key: &'static str, from_session: Option<&Properties>| {
            let in_profile = get(key);
            let in_session = from_session
                .and_then(|props| props.get(key))
                .filter(|v| !v.is_empty())
                .cloned();
            match (in_profile, in_session) {
                (Some(p), Some(s)) if p != s => Err(config_error(format!(
                    "{place} sets {key} differently from its sso-session `{}`",
                    session.as_deref().unwrap_or_default()
                ))),
                (p, s) => {
                    let value = s.or(p);
                    if value.is_none() {
                        missing.push(key);
                    }
                    Ok(value.unwrap_or_default())
                }
            }
        };
        let section = match &session {
            Some(name) => Some(session_section(name).ok_or_else(|| {
                config_error(format!(
                    "{place} names sso_session `{name}`, but the config file has no \
                     [sso-session {name}] section"
                ))
            })?),
            None => None,
        };
        let start_url = setting("sso_start_url", section.as_ref())?;
        let region = setting("sso_region", section.as_ref())?;
        let account_id = setting("sso_account_id", None)?;
        let role_name = setting("sso_role_name", None)?;
        if !missing.is_empty() {
            return Err(config_error(format!(
                "{place} uses SSO but lacks {}",
                missing.join(", ")
            )));
        }
        if !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(config_error(format!(
                "{place}: sso_region `{region}` is not a region name"
            )));
        }
        let home = home.ok_or_else(|| {
            config_error(format!(
                "{place} uses SSO, whose cached token is under the home directory: set HOME"
            ))
        })?;
        let portal = portal_override
            .unwrap_or_else(|| format!("https://portal.sso.{region}.amazonaws.com"))
            .trim_end_matches('/')
            .to_owned();
        Ok(SsoConfig {
            profile: profile.to_owned(),
            session,
            start_url,
            account_id,
            role_name,
            cache_dir: home.join(".aws").join("sso").join("cache"),
            portal,
        })
    }

    /// Where the cached token is: the session name's hash, else the start URL's.
    pub(super) fn token_path(&self) -> PathBuf {
        let identifier = self.session.as_deref().unwrap_or(&self.start_url);
        self.cache_dir.join(cache_file_name(identifier))
    }

    /// For errors and `Debug`: `SSO account 123456789012, role Dev`.
    pub(super) fn describe(&self) -> String {
        format!("SSO account {}, role {}", self.account_id, self.role_name)
    }

    fn login_hint(&self) -> String {
        format!("run `aws sso login --profile {}`", self.profile)
    }

    /// The cached access token, if it is there and has not expired at `now`.
    pub(super) fn cached_token(&self, now: SystemTime) -> Result<ApiKey, Error> {
        let path = self.token_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(source_error(format!(
                    "AWS SSO: no cached token for profile `{}` at {}: {}",
                    self.profile,
                    path.display(),
                    self.login_hint()
                )));
            }
            Err(e) => {
                return Err(source_error(format!(
                    "AWS SSO: the cached token {} cannot be read: {e}",
                    path.display()
                )));
            }
        };
        let (token, expires) = parse_cached_token(&text).map_err(|what| {
            source_error(format!(
                "AWS SSO: the cached token {} {what}: {}",
                path.display(),
                self.login_hint()
            ))
        })?;
        if expires <= now {
            return Err(source_error(format!(
                "AWS SSO: the cached token for profile `{}` has expired: {}",
                self.profile,
                self.login_hint()
            )));
        }
        Ok(token)
    }

    /// `GET /federation/credentials?account_id=…&role_name=…` with the token as
    /// `x-amz-sso_bearer_token` (marked sensitive).
    pub(super) fn request(
        &self,
        http: &reqwest::Client,
        token: &ApiKey,
    ) -> Result<reqwest::RequestBuilder, Error> {
        let mut value = reqwest::header::HeaderValue::from_str(token.expose()).map_err(|_| {
            source_error(format!(
                "AWS SSO: the cached token for profile `{}` has characters a header cannot \
                 hold: {}",
                self.profile,
                self.login_hint()
            ))
        })?;
        value.set_sensitive(true);
        let query = crate::http::form::form_encode(&[
            ("account_id", self.account_id.as_str()),
            ("role_name", self.role_name.as_str()),
        ]);
        Ok(http
            .get(format!("{}/federation/credentials?{query}", self.portal))
            .header("x-amz-sso_bearer_token", value))
    }

    /// The credentials in the portal's answer (`status`, `body`); a refusal names its
    /// error type and, for 401 and 403, says to log in again.
    pub(super) fn credentials_from(&self, status: u16, body: &str) -> Result<Credentials, Error> {
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        if !(200..300).contains(&status) {
            let field = |name: &str| {
                json.as_ref()
                    .and_then(|j| j.get(name))
                    .and_then(|v| v.as_str())
                    .map(|s| s.chars().take(200).collect::<String>())
            };
            let detail = match (field("__type").or_else(|| field("code")), field("message")) {
                (Some(kind), Some(message)) => format!(": {kind}: {message}"),
                (Some(text), None) | (None, Some(text)) => format!(": {text}"),
                (None, None) => String::new(),
            };
            let hint = if matches!(status, 401 | 403) {
                format!(" ({})", self.login_hint())
            } else {
                String::new()
            };
            return Err(source_error(format!(
                "AWS SSO GetRoleCredentials for profile `{}` ({}): HTTP {status}{detail}{hint}",
                self.profile,
                self.describe()
            ))
            .with_status(status));
        }
        let creds = json
            .as_ref()
            .and_then(|j| j.get("roleCredentials"))
            .ok_or_else(|| {
                source_error("AWS SSO GetRoleCredentials: the answer has no roleCredentials")
            })?;
        let text = |name: &str| {
            creds
                .get(name)
                .and_then(|v| v.as_str())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let (Some(id), Some(secret)) = (text("accessKeyId"), text("secretAccessKey")) else {
            return Err(source_error(
                "AWS SSO GetRoleCredentials: the answer has no accessKeyId and secretAccessKey",
            ));
        };
        // Epoch milliseconds (botocore `SSOCredentialFetcher._parse_timestamp`).
        let expires = creds
            .get("expiration")
            .and_then(serde_json::Value::as_u64)
            .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)));
        Ok(Credentials {
            access_key_id: id,
            secret: ApiKey::new(secret),
            session_token: text("sessionToken").map(ApiKey::new),
            expires,
        })
    }
}

/// `accessToken` and `expiresAt` (RFC 3339) of a cached token file; an error says what is
/// wrong, never the token. Keys match without regard to case, as aws-config reads them.
fn parse_cached_token(text: &str) -> Result<(ApiKey, SystemTime), &'static str> {
    let json: serde_json::Value = serde_json::from_str(text).map_err(|_| "is not JSON")?;
    let object = json.as_object().ok_or("is not a JSON object")?;
    let field = |name: &str| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .filter(|s| !s.trim().is_empty())
    };
    let token = field("accessToken").ok_or("has no accessToken")?;
    let expires = field("expiresAt").ok_or("has no expiresAt")?;
    let expires = parse_expiry(expires).ok_or("has an expiresAt that is not an RFC 3339 time")?;
    Ok((ApiKey::new(token.trim()), expires))
}

/// RFC 3339, and the `…UTC` suffix some AWS CLI versions wrote for `Z`.
fn parse_expiry(value: &str) -> Option<SystemTime> {
    let value = value.trim();
    match value.strip_suffix("UTC") {
        Some(rest) => crate::time::parse_rfc3339(&format!("{rest}Z")),
        None => crate::time::parse_rfc3339(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_file_names_match_the_aws_sdk_vectors() {
        // aws-config `sso/cache.rs` `determine_correct_cache_filenames` and
        // `save_cached_token` (SHA-1 of the session name or start URL, lower-case hex).
        assert_eq!(
            cache_file_name("admin"),
            "d033e22ae348aeb5660fc2140aec35850c4da997.json"
        );
        assert_eq!(
            cache_file_name("dev-scopes"),
            "75e4d41276d8bd17f85986fc6cccef29fd725ce3.json"
        );
        assert_eq!(
            cache_file_name("https://d-92671207e4.awsapps.com/start"),
            "13f9d35043871d073ab260e020f0ffde092cb14b.json"
        );
        assert_eq!(
            cache_file_name("test"),
            "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3.json"
        );
    }

    #[test]
    fn a_cached_token_is_read_with_its_expiry() {
        let (token, at) = parse_cached_token(
            r#"{"startUrl":"https://d-123.awsapps.com/start","region":"us-west-2",
                "accessToken":"cachedtoken","expiresAt":"2021-12-25T21:30:00Z",
                "refreshToken":"r","clientId":"c","clientSecret":"s"}"#,
        )
        .unwrap();
        assert_eq!(token.expose(), "cachedtoken");
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(1_640_467_800));
        let (_, at) =
            parse_cached_token(r#"{"accessToken":"t","expiresAt":"2021-12-25T21:30:00UTC"}"#)
                .unwrap();
        assert_eq!(at, UNIX_EPOCH + Duration::from_secs(1_640_467_800));
        for (text, what) in [
            (
                r#"{"expiresAt":"2021-12-25T21:30:00Z"}"#,
                "has no accessToken",
            ),
            (r#"{"accessToken":"secret-t"}"#, "has no expiresAt"),
            (
                r#"{"accessToken":"secret-t","expiresAt":"soon"}"#,
                "has an expiresAt that is not an RFC 3339 time",
            ),
            ("secret-t", "is not JSON"),
        ] {
            assert_eq!(parse_cached_token(text).err(), Some(what), "{text}");
        }
    }
}
