//! The credential chain over an environment given as a lookup function (the process's in
//! production, a map in tests): API key, access-key variables, shared files (static keys,
//! web identity, SSO), web identity.

use std::path::{Path, PathBuf};

use super::Credentials;
use super::profile_file::{FileKind, ProfileFile, Properties};
use super::refresh::WebIdentityConfig;
use super::sso::{self, SsoConfig};
use crate::secret::ApiKey;
use crate::types::{Error, ErrorKind};

/// Environment variables, through a lookup; empty or blank values count as unset.
pub(super) struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    pub(super) fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { lookup }
    }

    fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<PathBuf> {
        self.get("HOME")
            .or_else(|| self.get("USERPROFILE"))
            .map(PathBuf::from)
    }

    /// A path from variable `var`, else `~/.aws/{file}`; `~/` expanded. `None` with no
    /// home directory to start from.
    fn aws_file(&self, var: &str, file: &str) -> Option<PathBuf> {
        match self.get(var) {
            Some(path) => match path.strip_prefix("~/") {
                Some(rest) => self.home().map(|h| h.join(rest)),
                None => Some(PathBuf::from(path)),
            },
            None => self.home().map(|h| h.join(".aws").join(file)),
        }
    }
}

/// What the chain found.
pub(super) enum Found {
    Bearer {
        key: ApiKey,
        origin: String,
    },
    Static {
        creds: Credentials,
        origin: String,
    },
    WebIdentity {
        config: WebIdentityConfig,
        origin: String,
    },
    Sso {
        config: SsoConfig,
        origin: String,
    },
}

fn config_error(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::Config, message)
}

/// The whole chain, in order: `AWS_BEARER_TOKEN_BEDROCK`, the access-key variables, the
/// profile of the shared files, web identity from the environment.
pub(super) fn resolve_chain(env: &Env<'_>) -> Result<Found, Error> {
    if let Some(key) = env.get("AWS_BEARER_TOKEN_BEDROCK") {
        return Ok(Found::Bearer {
            key: ApiKey::new(key),
            origin: "AWS_BEARER_TOKEN_BEDROCK".to_owned(),
        });
    }
    match (
        env.get("AWS_ACCESS_KEY_ID"),
        env.get("AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(id), Some(secret)) => {
            let creds = Credentials {
                access_key_id: id,
                secret: ApiKey::new(secret),
                session_token: env.get("AWS_SESSION_TOKEN").map(ApiKey::new),
                expires: None,
            };
            return Ok(Found::Static {
                creds,
                origin: "environment (AWS_ACCESS_KEY_ID)".to_owned(),
            });
        }
        (Some(_), None) => {
            return Err(config_error(
                "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
            ));
        }
        (None, Some(_)) => {
            return Err(config_error(
                "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
            ));
        }
        (None, None) => {}
    }
    let named = env.get("AWS_PROFILE");
    let name = named.clone().unwrap_or_else(|| "default".to_owned());
    let files = SharedFiles::read(env)?;
    if let Some(found) = files.resolve(&name)? {
        return Ok(found);
    }
    if named.is_some() {
        return Err(config_error(format!(
            "AWS_PROFILE names profile `{name}`, which is in neither {}",
            files.describe()
        )));
    }
    if let Some(found) = web_identity_from_env(env)? {
        return Ok(found);
    }
    Err(config_error(format!(
        "no AWS credentials found: looked for AWS_BEARER_TOKEN_BEDROCK, AWS_ACCESS_KEY_ID with \
         AWS_SECRET_ACCESS_KEY, profile `default` in {}, and AWS_WEB_IDENTITY_TOKEN_FILE with \
         AWS_ROLE_ARN (on EC2, use AwsAuth::instance_metadata())",
        files.describe()
    )))
}

/// Profile `name` of the shared files only; one that is in neither file is an error.
pub(super) fn resolve_named_profile(env: &Env<'_>, name: &str) -> Result<Found, Error> {
    let files = SharedFiles::read(env)?;
    files.resolve(name)?.ok_or_else(|| {
        config_error(format!(
            "AWS profile `{name}` is in neither {}",
            files.describe()
        ))
    })
}

/// `AWS_WEB_IDENTITY_TOKEN_FILE` with `AWS_ROLE_ARN` (and optional `AWS_ROLE_SESSION_NAME`).
fn web_identity_from_env(env: &Env<'_>) -> Result<Option<Found>, Error> {
    match (
        env.get("AWS_WEB_IDENTITY_TOKEN_FILE"),
        env.get("AWS_ROLE_ARN"),
    ) {
        (Some(file), Some(role)) => {
            let config = WebIdentityConfig::new(
                PathBuf::from(file),
                role,
                env.get("AWS_ROLE_SESSION_NAME"),
                sts_endpoint(env),
            );
            Ok(Some(Found::WebIdentity {
                config,
                origin: "web identity (AWS_WEB_IDENTITY_TOKEN_FILE)".to_owned(),
            }))
        }
        (Some(_), None) => Err(config_error(
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
        )),
        _ => Ok(None),
    }
}

/// STS for web identity: `AWS_ENDPOINT_URL_STS` when set, else the regional endpoint of
/// `AWS_REGION` / `AWS_DEFAULT_REGION`, else the global one.
fn sts_endpoint(env: &Env<'_>) -> String {
    if let Some(url) = env.get("AWS_ENDPOINT_URL_STS") {
        return url;
    }
    match env
        .get("AWS_REGION")
        .or_else(|| env.get("AWS_DEFAULT_REGION"))
    {
        Some(region) => format!("https://sts.{region}.amazonaws.com"),
        None => "https://sts.amazonaws.com".to_owned(),
    }
}

/// The two shared files, read once.
struct SharedFiles<'e, 'a> {
    env: &'e Env<'a>,
    credentials: Option<(PathBuf, Option<ProfileFile>)>,
    config: Option<(PathBuf, Option<ProfileFile>)>,
}

impl<'e, 'a> SharedFiles<'e, 'a> {
    fn read(env: &'e Env<'a>) -> Result<Self, Error> {
        let load = |var: &str, file: &str, kind: FileKind| -> Result<_, Error> {
            match env.aws_file(var, file) {
                Some(path) => {
                    let parsed = ProfileFile::read(&path, kind)?;
                    Ok(Some((path, parsed)))
                }
                None => Ok(None),
            }
        };
        Ok(SharedFiles {
            env,
            credentials: load(
                "AWS_SHARED_CREDENTIALS_FILE",
                "credentials",
                FileKind::Credentials,
            )?,
            config: load("AWS_CONFIG_FILE", "config", FileKind::Config)?,
        })
    }

    /// Which files were looked in, for errors: `/x/credentials (not found) and /x/config`.
    fn describe(&self) -> String {
        let one = |f: &Option<(PathBuf, Option<ProfileFile>)>, what: &str| match f {
            Some((path, Some(_))) => path.display().to_string(),
            Some((path, None)) => format!("{} (not found)", path.display()),
            None => format!("the {what} file (no home directory: set HOME)"),
        };
        format!(
            "{} and {}",
            one(&self.credentials, "credentials"),
            one(&self.config, "config")
        )
    }

    /// Profile `name`, merged (the credentials file wins), as credentials; `None` when
    /// neither file has it.
    fn resolve(&self, name: &str) -> Result<Option<Found>, Error> {
        let in_credentials = profile_in(&self.credentials, name);
        let in_config = profile_in(&self.config, name);
        if in_credentials.is_none() && in_config.is_none() {
            return Ok(None);
        }
        // Each property with the file it came from; the credentials file wins.
        let get = |key: &str| -> Option<(&Path, &str)> {
            [in_credentials, in_config].into_iter().flatten().find_map(
                |(path, props): (&Path, &Properties)| {
                    props
                        .get(key)
                        .filter(|v| !v.is_empty())
                        .map(|v| (path, v.as_str()))
                },
            )
        };
        let place = |path: &Path| format!("AWS profile `{name}` ({})", path.display());
        match (get("aws_access_key_id"), get("aws_secret_access_key")) {
            (Some((path, id)), Some((_, secret))) => {
                let creds = Credentials {
                    access_key_id: id.to_owned(),
                    secret: ApiKey::new(secret),
                    session_token: get("aws_session_token").map(|(_, t)| ApiKey::new(t)),
                    expires: None,
                };
                return Ok(Some(Found::Static {
                    creds,
                    origin: place(path),
                }));
            }
            (Some((path, _)), None) => {
                return Err(config_error(format!(
                    "{} has aws_access_key_id but no aws_secret_access_key",
                    place(path)
                )));
            }
            (None, Some((path, _))) => {
                return Err(config_error(format!(
                    "{} has aws_secret_access_key but no aws_access_key_id",
                    place(path)
                )));
            }
            (None, None) => {}
        }
        let any_path = in_credentials
            .or(in_config)
            .map(|(p, _)| p)
            .unwrap_or(Path::new(""));
        if let (Some((path, file)), Some((_, role))) =
            (get("web_identity_token_file"), get("role_arn"))
        {
            let config = WebIdentityConfig::new(
                PathBuf::from(file),
                role.to_owned(),
                get("role_session_name").map(|(_, s)| s.to_owned()),
                sts_endpoint(self.env),
            );
            return Ok(Some(Found::WebIdentity {
                config,
                origin: format!("{} web identity", place(path)),
            }));
        }
        let value = |key: &str| get(key).map(|(_, v)| v.to_owned());
        if sso::is_sso_profile(&value) {
            let sso_place = ["sso_session", "sso_start_url", "sso_account_id"]
                .iter()
                .find_map(|key| get(key))
                .map_or_else(|| place(any_path), |(path, _)| place(path));
            let session_section = |session: &str| {
                self.config
                    .as_ref()
                    .and_then(|(_, file)| file.as_ref())
                    .and_then(|file| file.sso_session(session))
                    .cloned()
            };
            let config = SsoConfig::from_profile(
                name,
                &sso_place,
                &value,
                &session_section,
                self.env.home(),
                self.env.get("AWS_ENDPOINT_URL_SSO"),
            )?;
            let origin = format!("{sso_place} {}", config.describe());
            return Ok(Some(Found::Sso { config, origin }));
        }
        let unsupported = if get("credential_process").is_some() {
            Some("uses credential_process, which polyrelay does not support")
        } else if get("role_arn").is_some() {
            Some(
                "assumes a role with source_profile or credential_source, which polyrelay does \
                 not support (only web_identity_token_file)",
            )
        } else {
            None
        };
        Err(config_error(match unsupported {
            Some(what) => format!("{} {what}", place(any_path)),
            None => format!(
                "{} has no credentials (aws_access_key_id and aws_secret_access_key)",
                place(any_path)
            ),
        }))
    }
}

/// Profile `name` of one read file, with the file's path.
fn profile_in<'f>(
    file: &'f Option<(PathBuf, Option<ProfileFile>)>,
    name: &str,
) -> Option<(&'f Path, &'f Properties)> {
    let (path, file) = file.as_ref()?;
    let props = file.as_ref()?.profile(name)?;
    Some((path.as_path(), props))
}
