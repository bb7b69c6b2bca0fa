//! How calls to Bedrock are authenticated: SigV4 over AWS credentials, or a Bedrock API key
//! as a bearer token.
//!
//! [`AwsAuth::from_env`] follows the usual AWS order: a Bedrock API key
//! (`AWS_BEARER_TOKEN_BEDROCK`), the access-key variables, then the shared credentials and
//! config files for `AWS_PROFILE` (static keys, web identity, or IAM Identity Center SSO
//! through the token `aws sso login` cached), then web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN`, as on EKS). EC2 instance credentials
//! are asked for explicitly with [`AwsAuth::instance_metadata`].

mod credentials;
mod profile_file;
mod refresh;
mod sigv4;
mod skew;
mod sso;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::SystemTime;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};

pub use sigv4::{SigV4, SigV4Params};

use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind};

/// AWS credentials for SigV4: an access key id, its secret, and a session token for
/// temporary credentials.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) access_key_id: String,
    pub(crate) secret: ApiKey,
    pub(crate) session_token: Option<ApiKey>,
    /// When temporary credentials stop working (`None`: they do not expire).
    pub(crate) expires: Option<SystemTime>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &key_id_hint(&self.access_key_id))
            .field("session_token", &self.session_token.is_some())
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// The last four characters of an access key id, after an ellipsis: enough to tell two keys
/// apart in a log, not enough to be one.
fn key_id_hint(id: &str) -> String {
    let tail: String = id
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("…{tail}")
}

/// Where the credentials come from.
#[derive(Clone)]
enum Source {
    /// None: requests go out unsigned ([`AwsAuth::unsigned`]).
    Unsigned,
    /// A Bedrock API key, sent as `Authorization: Bearer …`.
    Bearer(ApiKey),
    /// Fixed credentials (explicit, environment or shared files).
    Static(Arc<Credentials>),
    /// Temporary credentials fetched and refreshed before they expire (instance metadata,
    /// web identity, SSO).
    Refreshing(Arc<refresh::Refresher>),
}

/// How a Bedrock codec authenticates its calls: SigV4 with AWS credentials (service
/// `bedrock`), or a Bedrock API key as a bearer token.
///
/// Clones share one clock offset: a call refused for clock skew corrects the offset from
/// the answer's `Date`, and every later signature uses it. `Debug` shows where the
/// credentials came from and the access key id's last four characters — never a secret or a
/// session token.
///
/// There is no default: [`unsigned`](AwsAuth::unsigned) is an explicit choice.
#[derive(Clone)]
pub struct AwsAuth {
    source: Source,
    /// Where the credentials were found, for `Debug` and errors.
    origin: Arc<str>,
    /// Seconds to add to the system clock (server time minus ours), shared by clones.
    clock_offset: Arc<AtomicI64>,
}

impl std::fmt::Debug for AwsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("AwsAuth");
        s.field("origin", &&*self.origin);
        match &self.source {
            Source::Unsigned => s.field("kind", &"unsigned"),
            Source::Bearer(_) => s.field("kind", &"bearer"),
            Source::Static(creds) => s
                .field("kind", &"sigv4")
                .field("access_key_id", &key_id_hint(&creds.access_key_id))
                .field("session_token", &creds.session_token.is_some()),
            Source::Refreshing(_) => s.field("kind", &"sigv4 (temporary credentials)"),
        };
        s.field(
            "clock_offset_secs",
            &self.clock_offset.load(Ordering::Relaxed),
        )
        .finish()
    }
}

impl AwsAuth {
    /// No credentials: requests go out unsigned — for a proxy or VPC endpoint that signs
    /// them itself, or a local simulator. Never chosen by default.
    pub fn unsigned() -> Self {
        AwsAuth::with_source(Source::Unsigned, "none (unsigned)")
    }

    fn with_source(source: Source, origin: &str) -> Self {
        AwsAuth {
            source,
            origin: Arc::from(origin),
            clock_offset: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Credentials found the usual AWS way, read once here (files are not read again per
    /// call):
    ///
    /// 1. `AWS_BEARER_TOKEN_BEDROCK`: a Bedrock API key, sent as `Authorization: Bearer`
    ///    (no SigV4);
    /// 2. `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, with `AWS_SESSION_TOKEN` when set;
    /// 3. profile `AWS_PROFILE` (default `default`) in the shared credentials file
    ///    (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`) and config file
    ///    (`AWS_CONFIG_FILE`, default `~/.aws/config`, `[profile name]` sections); the
    ///    credentials file wins where both set a property. In a profile, static keys
    ///    (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`) come first;
    ///    then `web_identity_token_file` with `role_arn` assumes that role; then an IAM
    ///    Identity Center (SSO) profile — `sso_account_id` and `sso_role_name`, with
    ///    `sso_session = NAME` and an `[sso-session NAME]` section giving `sso_start_url` and
    ///    `sso_region`, or those two in the profile itself (the legacy form) — trades the
    ///    access token `aws sso login` cached in `~/.aws/sso/cache/` for the role's
    ///    temporary credentials at the SSO portal (`https://portal.sso.{sso_region}.amazonaws.com`,
    ///    or `AWS_ENDPOINT_URL_SSO`), refreshed before they expire. The cached token is read
    ///    at each refresh, so a later `aws sso login` is picked up; a missing or expired one
    ///    fails the call with an [`ErrorKind::Auth`] error (a key fault) that says to run
    ///    `aws sso login --profile NAME` (the token is not refreshed through SSO OIDC here);
    /// 4. `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (EKS): STS
    ///    `AssumeRoleWithWebIdentity`, refreshed before the credentials expire.
    ///
    /// Empty variables count as unset. Nothing found, a profile named by `AWS_PROFILE` that
    /// does not exist, half a key pair, an SSO profile missing a setting or naming an
    /// `sso-session` the config file lacks, a profile with `credential_process` or
    /// `source_profile` (not supported), or a malformed file (with its path and line number)
    /// is an [`ErrorKind::Config`] error.
    pub fn from_env() -> Result<AwsAuth, Error> {
        AwsAuth::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over the variables `env` returns instead of the
    /// process's (the home directory is `HOME`, else `USERPROFILE`, through `env` too): for
    /// tests, and for hosts that keep their settings elsewhere.
    pub fn from_env_with(env: impl Fn(&str) -> Option<String>) -> Result<AwsAuth, Error> {
        let env = credentials::Env::new(&env);
        credentials::resolve_chain(&env).map(AwsAuth::from_found)
    }

    /// A Bedrock API key (long- or short-term), sent as `Authorization: Bearer …` instead of
    /// a signature.
    pub fn bearer(key: impl Into<ApiKey>) -> AwsAuth {
        AwsAuth::with_source(Source::Bearer(key.into()), "API key")
    }

    /// Fixed AWS credentials: an access key id, its secret, and the session token of
    /// temporary credentials (`None` for long-term keys).
    pub fn credentials(
        access_key_id: &str,
        secret_access_key: impl Into<ApiKey>,
        session_token: Option<ApiKey>,
    ) -> AwsAuth {
        let creds = Credentials {
            access_key_id: access_key_id.trim().to_owned(),
            secret: secret_access_key.into(),
            session_token,
            expires: None,
        };
        AwsAuth::with_source(Source::Static(Arc::new(creds)), "explicit credentials")
    }

    /// Profile `name` of the shared files (paths as for [`from_env`](Self::from_env):
    /// `AWS_SHARED_CREDENTIALS_FILE`, `AWS_CONFIG_FILE`, `~/.aws/`), read once here; static
    /// keys, web identity or SSO, as step 3 of [`from_env`](Self::from_env) says. A profile
    /// that exists in neither file, has no credentials, or a malformed file is an
    /// [`ErrorKind::Config`] error.
    pub fn profile(name: &str) -> Result<AwsAuth, Error> {
        AwsAuth::profile_with(name, |var| std::env::var(var).ok())
    }

    /// [`profile`](Self::profile) with the file paths, the home directory (and so the SSO
    /// token cache) and `AWS_ENDPOINT_URL_SSO` / `AWS_ENDPOINT_URL_STS` taken from `env`
    /// instead of the process's variables.
    pub fn profile_with(
        name: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<AwsAuth, Error> {
        let env = credentials::Env::new(&env);
        credentials::resolve_named_profile(&env, name).map(AwsAuth::from_found)
    }

    /// Temporary credentials of the EC2 instance's role from the instance metadata service
    /// (IMDSv2: a session token, then the role's credentials), fetched at the first call and
    /// refreshed five minutes before they expire, once for all waiting calls. The endpoint
    /// is `AWS_EC2_METADATA_SERVICE_ENDPOINT` when set, else `http://169.254.169.254`. A
    /// failing metadata service is an [`ErrorKind::Auth`] error of the call.
    pub fn instance_metadata() -> AwsAuth {
        let endpoint = std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| refresh::IMDS_ENDPOINT.to_owned());
        AwsAuth::instance_metadata_at(&endpoint)
    }

    /// [`instance_metadata`](Self::instance_metadata) from the service at `endpoint` (e.g.
    /// `http://127.0.0.1:8080`, a simulator).
    pub fn instance_metadata_at(endpoint: &str) -> AwsAuth {
        let refresher = refresh::Refresher::imds(endpoint);
        AwsAuth::with_source(
            Source::Refreshing(Arc::new(refresher)),
            &format!("instance metadata at {}", endpoint.trim_end_matches('/')),
        )
    }

    fn from_found(found: credentials::Found) -> AwsAuth {
        match found {
            credentials::Found::Bearer { key, origin } => {
                AwsAuth::with_source(Source::Bearer(key), &origin)
            }
            credentials::Found::Static { creds, origin } => {
                AwsAuth::with_source(Source::Static(Arc::new(creds)), &origin)
            }
            credentials::Found::WebIdentity { config, origin } => AwsAuth::with_source(
                Source::Refreshing(Arc::new(refresh::Refresher::web_identity(config))),
                &origin,
            ),
            credentials::Found::Sso { config, origin } => AwsAuth::with_source(
                Source::Refreshing(Arc::new(refresh::Refresher::sso(config))),
                &origin,
            ),
        }
    }

    /// Whether calls carry a bearer API key rather than a signature.
    pub fn is_bearer(&self) -> bool {
        matches!(self.source, Source::Bearer(_))
    }

    /// The system clock corrected by the offset a clock-skew refusal taught.
    fn now(&self) -> SystemTime {
        skew::shifted(SystemTime::now(), self.clock_offset.load(Ordering::Relaxed))
    }

    /// Signs `request` in place as [`SigV4Params`] say (region, service, time): sets
    /// `x-amz-date`, `x-amz-security-token` for temporary credentials, and `authorization`
    /// (marked sensitive), over the request's exact URL, headers and body. A bearer key sets
    /// `authorization: Bearer …` and returns `None`, as does the unsigned default. `http`
    /// fetches temporary credentials when they are due. The clock offset is not applied:
    /// the time is the one given.
    pub async fn sign_with(
        &self,
        request: &mut reqwest::Request,
        params: &SigV4Params,
        http: &reqwest::Client,
    ) -> Result<Option<SigV4>, Error> {
        match &self.source {
            Source::Unsigned => Ok(None),
            Source::Bearer(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| {
                        Error::new(
                            ErrorKind::Config,
                            "the Bedrock API key has characters a header cannot hold",
                        )
                    })?;
                value.set_sensitive(true);
                request.headers_mut().insert(AUTHORIZATION, value);
                Ok(None)
            }
            Source::Static(creds) => sigv4::sign_request(request, creds, params).map(Some),
            Source::Refreshing(refresher) => {
                let creds = refresher.credentials(http).await?;
                sigv4::sign_request(request, &creds, params).map(Some)
            }
        }
    }

    /// Signs `request` (the exact bytes sent) for `region`, service `bedrock`, at the
    /// system time corrected by the clock offset.
    pub(crate) async fn sign(
        &self,
        request: &mut reqwest::Request,
        region: &str,
        http: &reqwest::Client,
    ) -> Result<(), Error> {
        let params = SigV4Params::new(region, "bedrock", self.now());
        self.sign_with(request, &params, http).await.map(|_| ())
    }

    /// Whether a refused call is cured by signing again: a 400 or 403 for clock skew
    /// (signature expired or not yet current, `RequestTimeTooSkewed`) whose `Date` moves
    /// the clock offset by a minute or more. The offset is stored for every clone.
    pub(crate) fn should_resend(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
        if !matches!(self.source, Source::Static(_) | Source::Refreshing(_)) {
            return false;
        }
        if !skew::is_skew_refusal(status, headers, body) {
            return false;
        }
        let Some(offset) = skew::offset_from_date(headers, SystemTime::now()) else {
            return false;
        };
        let old = self.clock_offset.swap(offset, Ordering::Relaxed);
        let moved = offset.saturating_sub(old).unsigned_abs() >= skew::MIN_CORRECTION_SECS;
        if moved {
            tracing::warn!(
                clock_offset_secs = offset,
                "AWS refused the signature for clock skew; signing with the server's time"
            );
        }
        moved
    }
}
