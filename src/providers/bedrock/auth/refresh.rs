//! Temporary credentials fetched over HTTP and cached until five minutes before they
//! expire: the EC2 instance metadata service (IMDSv2), STS `AssumeRoleWithWebIdentity`
//! (EKS), and the SSO portal's `GetRoleCredentials` for an SSO profile. One fetch at a
//! time: calls that find the credentials due wait for the one fetch in flight and take its
//! outcome — the credentials, or its error — so a failing source is asked once per burst.
//!
//! A failing source is the call's [`ErrorKind::Auth`] error with [`Fault::Key`]: a
//! credential fault of this provider, not an outage of the vendor.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;

use super::Credentials;
use super::sso::SsoConfig;
use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind, Fault};

/// The instance metadata service's address on EC2.
pub(super) const IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// Credentials are refreshed this long before they expire.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Each request to a credential source gives up after this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Credential answers are small; anything larger is refused.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// STS `AssumeRoleWithWebIdentity` settings.
#[derive(Clone, Debug)]
pub(super) struct WebIdentityConfig {
    token_file: PathBuf,
    role_arn: String,
    session_name: String,
    sts_endpoint: String,
}

impl WebIdentityConfig {
    pub(super) fn new(
        token_file: PathBuf,
        role_arn: String,
        session_name: Option<String>,
        sts_endpoint: String,
    ) -> Self {
        WebIdentityConfig {
            token_file,
            role_arn,
            session_name: session_name.unwrap_or_else(|| "polyrelay".to_owned()),
            sts_endpoint: sts_endpoint.trim_end_matches('/').to_owned(),
        }
    }
}

enum Fetch {
    Imds { endpoint: String },
    WebIdentity(WebIdentityConfig),
    Sso(SsoConfig),
}

/// A source of temporary credentials with its cache.
pub(super) struct Refresher {
    fetch: Fetch,
    cached: ArcSwapOption<Credentials>,
    /// Held while fetching (one fetch at a time), with the outcome of the last fetch for
    /// the calls that waited on it.
    last: tokio::sync::Mutex<Option<Result<Arc<Credentials>, Error>>>,
    /// Fetches finished so far.
    fetches: AtomicU64,
}

fn source_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Auth, message).with_fault(Fault::Key)
}

impl Refresher {
    pub(super) fn imds(endpoint: &str) -> Self {
        Refresher::new(Fetch::Imds {
            endpoint: endpoint.trim().trim_end_matches('/').to_owned(),
        })
    }

    pub(super) fn web_identity(config: WebIdentityConfig) -> Self {
        Refresher::new(Fetch::WebIdentity(config))
    }

    pub(super) fn sso(config: SsoConfig) -> Self {
        Refresher::new(Fetch::Sso(config))
    }

    fn new(fetch: Fetch) -> Self {
        Refresher {
            fetch,
            cached: ArcSwapOption::empty(),
            last: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// Credentials good for at least the refresh margin, fetched if needed.
    pub(super) async fn credentials(
        &self,
        http: &reqwest::Client,
    ) -> Result<Arc<Credentials>, Error> {
        if let Some(creds) = self.fresh() {
            return Ok(creds);
        }
        let seen = self.fetches.load(Ordering::Acquire);
        let mut last = self.last.lock().await;
        // Another call may have fetched while this one waited.
        if let Some(creds) = self.fresh() {
            return Ok(creds);
        }
        if self.fetches.load(Ordering::Acquire) != seen
            && let Some(outcome) = last.as_ref()
        {
            // A fetch finished while this call waited: its outcome is this call's too.
            return outcome.clone();
        }
        let outcome = match self.fetch_now(http).await {
            Ok(creds) => {
                let creds = Arc::new(creds);
                self.cached.store(Some(Arc::clone(&creds)));
                Ok(creds)
            }
            Err(e) => {
                // Credentials inside the margin but not yet expired still sign.
                let now = SystemTime::now();
                match self.cached.load_full() {
                    Some(old) if old.expires.is_none_or(|at| at > now) => {
                        tracing::warn!(error = %e, "refreshing AWS credentials failed; using the ones that have not expired yet");
                        Ok(old)
                    }
                    _ => Err(e),
                }
            }
        };
        *last = Some(outcome.clone());
        self.fetches.fetch_add(1, Ordering::Release);
        outcome
    }

    fn fresh(&self) -> Option<Arc<Credentials>> {
        let creds = self.cached.load_full()?;
        let due = SystemTime::now()
            .checked_add(REFRESH_MARGIN)
            .unwrap_or(SystemTime::now());
        creds.expires.is_none_or(|at| at > due).then_some(creds)
    }

    async fn fetch_now(&self, http: &reqwest::Client) -> Result<Credentials, Error> {
        match &self.fetch {
            Fetch::Imds { endpoint } => imds(http, endpoint).await,
            Fetch::WebIdentity(config) => web_identity(http, config).await,
            Fetch::Sso(config) => sso(http, config).await,
        }
    }
}

/// Sends `request`, and returns the answer's status and body (bounded) as text.
async fn answer_of(request: reqwest::RequestBuilder, what: &str) -> Result<(u16, String), Error> {
    let resp = request
        .timeout(FETCH_TIMEOUT)
        .send()
        .await
        .map_err(|e| source_error(format!("{what}: {e}")))?;
    let status = resp.status().as_u16();
    let body = crate::http::read_body(resp, MAX_ANSWER_BYTES)
        .await
        .map_err(|e| source_error(format!("{what}: {}", e.message())))?;
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Sends `request`, and returns the body of a 2xx answer (bounded) as text.
async fn text_of(request: reqwest::RequestBuilder, what: &str) -> Result<String, Error> {
    let (status, text) = answer_of(request, what).await?;
    if !(200..300).contains(&status) {
        return Err(source_error(format!(
            "{what}: HTTP {status}{}",
            sts_error(&text).unwrap_or_default()
        ))
        .with_status(status));
    }
    Ok(text)
}

/// IMDSv2: a session token (PUT), the role's name, then its credentials.
async fn imds(http: &reqwest::Client, endpoint: &str) -> Result<Credentials, Error> {
    let what = "EC2 instance metadata";
    let token = text_of(
        http.put(format!("{endpoint}/latest/api/token"))
            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        what,
    )
    .await?;
    let token = token.trim().to_owned();
    let base = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
    let roles = text_of(
        http.get(&base)
            .header("x-aws-ec2-metadata-token", token.as_str()),
        what,
    )
    .await?;
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| source_error(format!("{what}: the instance has no IAM role")))?;
    if !role
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    {
        return Err(source_error(format!(
            "{what}: the role name is not a valid IAM name"
        )));
    }
    let body = text_of(
        http.get(format!("{base}{role}"))
            .header("x-aws-ec2-metadata-token", token.as_str()),
        what,
    )
    .await?;
    let json: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| source_error(format!("{what}: the credentials are not JSON")))?;
    let field = |name: &str| json.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    if let Some(code) = field("Code").filter(|c| c != "Success") {
        return Err(source_error(format!(
            "{what}: the role's credentials: {code}"
        )));
    }
    temporary(what, &field, "Token")
}

/// STS `AssumeRoleWithWebIdentity` with the token file's current contents (read at each
/// refresh: the platform rotates it).
async fn web_identity(
    http: &reqwest::Client,
    config: &WebIdentityConfig,
) -> Result<Credentials, Error> {
    let what = "STS AssumeRoleWithWebIdentity";
    let token = std::fs::read_to_string(&config.token_file).map_err(|e| {
        source_error(format!(
            "{what}: the web identity token file {} cannot be read: {e}",
            config.token_file.display()
        ))
    })?;
    let form = [
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", "2011-06-15"),
        ("RoleArn", config.role_arn.as_str()),
        ("RoleSessionName", config.session_name.as_str()),
        ("WebIdentityToken", token.trim()),
    ];
    let body = crate::http::form::form_encode(&form);
    let xml = text_of(
        http.post(format!("{}/", config.sts_endpoint))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/xml")
            .body(body),
        what,
    )
    .await?;
    let field = |tag: &str| xml_text(&xml, tag);
    temporary(what, &field, "SessionToken")
}

/// SSO: the token `aws sso login` cached (read at each refresh), traded at the portal for
/// the role's credentials.
async fn sso(http: &reqwest::Client, config: &SsoConfig) -> Result<Credentials, Error> {
    let token = config.cached_token(SystemTime::now())?;
    let (status, body) =
        answer_of(config.request(http, &token)?, "AWS SSO GetRoleCredentials").await?;
    config.credentials_from(status, &body)
}

/// Temporary credentials from an answer's fields (`AccessKeyId`, `SecretAccessKey`, the
/// token under `token_field`, `Expiration` in RFC 3339).
fn temporary(
    what: &str,
    field: &dyn Fn(&str) -> Option<String>,
    token_field: &str,
) -> Result<Credentials, Error> {
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret: ApiKey::new(secret),
            session_token: field(token_field).map(ApiKey::new),
            expires: field("Expiration").and_then(|e| crate::time::parse_rfc3339(&e)),
        }),
        _ => Err(source_error(format!(
            "{what}: the answer has no AccessKeyId and SecretAccessKey"
        ))),
    }
}

/// `: Code: Message` of an STS XML error body, if it is one.
fn sts_error(body: &str) -> Option<String> {
    let code = xml_text(body, "Code")?;
    let message = xml_text(body, "Message").unwrap_or_default();
    Some(format!(": {code}: {message}"))
}

/// The text of the first `<tag>…</tag>` in `xml`, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&close)?;
    let raw = xml.get(start..start + len)?.trim();
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}
