//! The registry of provider kinds: every `kind` a configuration file may name, with the
//! places its key may go, the environment variable its key is read from by default, and
//! how the provider is built. The configuration loader reads it, and the table below is
//! checked against it by a test.
//!
//! | kind | auth modes | default key variable |
//! |---|---|---|
//! | `openai` | default, bearer, none | `OPENAI_API_KEY` |
//! | `deepseek` | default, bearer, none | `DEEPSEEK_API_KEY` |
//! | `mistral` | default, bearer, none | `MISTRAL_API_KEY` |
//! | `qwen` | default, bearer, none | `DASHSCOPE_API_KEY` |
//! | `openrouter` | default, bearer, none | `OPENROUTER_API_KEY` |
//! | `groq` | default, bearer, none | `GROQ_API_KEY` |
//! | `together` | default, bearer, none | `TOGETHER_API_KEY` |
//! | `xai` | default, bearer, none | `XAI_API_KEY` |
//! | `fireworks` | default, bearer, none | `FIREWORKS_API_KEY` |
//! | `moonshot` | default, bearer, none | `MOONSHOT_API_KEY` |
//! | `cerebras` | default, bearer, none | `CEREBRAS_API_KEY` |
//! | `perplexity` | default, bearer, none | `PERPLEXITY_API_KEY` |
//! | `zai` | default, bearer, none | `ZAI_API_KEY` |
//! | `ollama` | default, bearer, none | `OLLAMA_API_KEY` (optional) |
//! | `vllm` | default, bearer, none | `VLLM_API_KEY` (optional) |
//! | `llama.cpp` | default, bearer, none | `LLAMA_API_KEY` (optional) |
//! | `anthropic` | default, header, none | `ANTHROPIC_API_KEY` |
//! | `gemini` | default, header, query, bearer, none | `GEMINI_API_KEY` |
//! | `openai_compatible` | default, bearer, none | none: name it (needs `base_url`) |
//! | `azure` | default, bearer, none | `AZURE_OPENAI_API_KEY` (needs `resource` or `base_url`, `deployment`, `api_version`) |
//! | `bedrock` | default, bearer, profile | `AWS_BEARER_TOKEN_BEDROCK` (optional) (needs `region`; `api` = `converse` or `invoke`) |
//! | `bedrock_mantle` | default, bearer | `AWS_BEARER_TOKEN_BEDROCK` (needs `region`) |
//! | `vertex` | default, metadata, bearer | none (optional): `credentials` or Application Default Credentials (needs `project`; `location`, `publisher` = `google`, `anthropic` or `openai`) |
//!
//! Auth mode `default` is the kind's usual place for the key (`bearer` for the OpenAI
//! family, Azure's `api-key` header, Anthropic's `x-api-key`, Gemini's `x-goog-api-key`);
//! `none` sends no key. The clouds sign instead: `bedrock`'s `default` is the AWS chain (a
//! Bedrock API key in `AWS_BEARER_TOKEN_BEDROCK`, then `AWS_ACCESS_KEY_ID`…, then the shared
//! credentials and config files), `bearer` a Bedrock API key, `profile` the named profile of
//! the shared files; `vertex`'s `default` is the service-account key file named by
//! `credentials`, else Application Default Credentials, `metadata` the GCE/GKE metadata
//! server, `bearer` an access token read from `api_key_env`.

use std::sync::Arc;

use super::openai::Preset;
use super::{Anthropic, Codec, Gemini, HttpProvider, OpenAi};
use crate::provider::Provider;
use crate::secret::ApiKey;
use crate::types::Error;

/// One provider kind: its name in a configuration file, the auth modes it accepts, the
/// variable its key is read from by default, and how it is built.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ProviderKind {
    /// The `kind` a file names (`"openai"`, `"anthropic"`…).
    pub name: &'static str,
    /// The `auth` values it accepts (`"default"` always; `"none"` sends no key).
    pub auth_modes: &'static [&'static str],
    /// The environment variable the key is read from when the file names none; `None` when
    /// the file must name one.
    pub key_env: Option<&'static str>,
    /// Whether the kind works without a key (local servers): an unset default variable is
    /// then no error.
    pub key_optional: bool,
    build: Build,
}

/// How a kind's provider is made.
#[derive(Clone, Copy, Debug)]
enum Build {
    /// An OpenAI-compatible vendor with a preset.
    Preset(Preset),
    Anthropic,
    Gemini,
    /// Any OpenAI-compatible API by base URL.
    Compatible,
    /// Azure OpenAI through a deployment.
    Azure,
    /// AWS Bedrock (Converse, or Anthropic's body through InvokeModel).
    #[cfg(feature = "bedrock")]
    Bedrock,
    /// Bedrock's OpenAI-compatible endpoint.
    #[cfg(feature = "bedrock")]
    BedrockMantle,
    /// Google Vertex AI (Gemini, Claude, or the OpenAI-compatible endpoint).
    #[cfg(feature = "vertex")]
    Vertex,
}

/// Auth modes of the OpenAI family.
const BEARER: &[&str] = &["default", "bearer", "none"];

impl ProviderKind {
    const fn preset(preset: Preset, key_optional: bool) -> ProviderKind {
        ProviderKind {
            name: preset.name,
            auth_modes: BEARER,
            key_env: Some(preset.key_env),
            key_optional,
            build: Build::Preset(preset),
        }
    }

    /// The OpenAI-compatible preset this kind is, if it is one.
    pub fn preset_of(&self) -> Option<Preset> {
        match self.build {
            Build::Preset(p) => Some(p),
            _ => None,
        }
    }

    /// Builds this kind's provider from `settings` (the key, auth mode, base URL, headers…
    /// of one `[providers.NAME]` table, already checked and expanded).
    pub fn build(&self, settings: &KindSettings<'_>) -> Result<Arc<dyn Provider>, KindError> {
        let key = settings.key.clone();
        match self.build {
            Build::Anthropic => {
                let mut a = Anthropic::new(key);
                if let Some(url) = settings.base_url {
                    a = a.base_url(url);
                }
                finish(a, settings)
            }
            Build::Gemini => {
                let mut g = match settings.auth {
                    "query" => Gemini::with_query_key(key),
                    "bearer" => Gemini::with_bearer(key),
                    _ => Gemini::new(key),
                };
                if let Some(url) = settings.base_url {
                    g = g.base_url(url);
                }
                finish(g, settings)
            }
            Build::Preset(preset) => {
                let mut o = OpenAi::from_preset(preset, key);
                if let Some(url) = settings.base_url {
                    o = o.base_url(url);
                }
                finish(o, settings)
            }
            Build::Compatible => {
                let url = settings.base_url.ok_or(KindError::Missing("base_url"))?;
                let o = OpenAi::compatible(settings.name, url, key).base_url(url);
                finish(o, settings)
            }
            Build::Azure => {
                let resource = settings.resource.or(settings.base_url);
                let resource = resource.ok_or(KindError::Missing("resource (or base_url)"))?;
                let deployment = settings
                    .deployment
                    .ok_or(KindError::Missing("deployment"))?;
                let version = settings
                    .api_version
                    .ok_or(KindError::Missing("api_version"))?;
                finish(OpenAi::azure(resource, deployment, version, key), settings)
            }
            #[cfg(feature = "bedrock")]
            Build::Bedrock => bedrock(settings),
            #[cfg(feature = "bedrock")]
            Build::BedrockMantle => bedrock_mantle(settings),
            #[cfg(feature = "vertex")]
            Build::Vertex => vertex(settings),
        }
    }
}

/// Adds the settings' headers to `p`, in order.
fn finish<C: Codec>(
    mut p: HttpProvider<C>,
    settings: &KindSettings<'_>,
) -> Result<Arc<dyn Provider>, KindError> {
    for (index, (name, value)) in settings.headers.iter().enumerate() {
        p = p
            .header(name, value)
            .map_err(|error| KindError::Header { index, error })?;
    }
    Ok(Arc::new(p))
}

// The clouds: their own settings (region, project, location, credentials, which API) next
// to the ones every kind has.

/// A setting with a value the kind does not take.
#[cfg(any(feature = "bedrock", feature = "vertex"))]
fn invalid(field: &'static str, message: String) -> KindError {
    KindError::Invalid {
        field,
        error: Error::new(crate::types::ErrorKind::Config, message),
    }
}

/// `kind = "bedrock"`: `region` (or `AWS_REGION` / `AWS_DEFAULT_REGION`), `api` = `converse`
/// (default) or `invoke` (Anthropic's body through InvokeModel), auth `default` (the AWS
/// chain; a key read from `api_key_env` or `AWS_BEARER_TOKEN_BEDROCK` comes first), `bearer`
/// (a Bedrock API key) or `profile` (`profile = "name"` of the shared files).
#[cfg(feature = "bedrock")]
fn bedrock(s: &KindSettings<'_>) -> Result<Arc<dyn Provider>, KindError> {
    use super::bedrock::{AwsAuth, Bedrock, BedrockAnthropic};

    let region = region(s)?;
    let auth = match s.auth {
        "profile" => {
            let name = s.profile.ok_or(KindError::Missing("profile"))?;
            AwsAuth::profile_with(name, s.env).map_err(|error| KindError::Invalid {
                field: "profile",
                error,
            })?
        }
        "bearer" => {
            if s.key.is_empty() {
                return Err(KindError::Missing(
                    "a Bedrock API key (AWS_BEARER_TOKEN_BEDROCK, or name one with api_key_env)",
                ));
            }
            AwsAuth::bearer(s.key.clone())
        }
        _ if !s.key.is_empty() => AwsAuth::bearer(s.key.clone()),
        _ => AwsAuth::from_env_with(s.env)
            .map_err(|error| KindError::Invalid { field: "", error })?,
    };
    match s.api.unwrap_or("converse") {
        "converse" => {
            let mut p = Bedrock::new(&region, auth);
            if let Some(url) = s.base_url {
                p = p.base_url(url);
            }
            finish(p, s)
        }
        "invoke" => {
            let mut p = BedrockAnthropic::new(&region, auth);
            if let Some(url) = s.base_url {
                p = p.base_url(url);
            }
            finish(p, s)
        }
        other => Err(invalid(
            "api",
            format!("api {other:?} is not one of converse, invoke for kind \"bedrock\""),
        )),
    }
}

/// `kind = "bedrock_mantle"`: Bedrock's OpenAI-compatible endpoint in `region`, with a
/// Bedrock API key.
#[cfg(feature = "bedrock")]
fn bedrock_mantle(s: &KindSettings<'_>) -> Result<Arc<dyn Provider>, KindError> {
    let region = region(s)?;
    let mut p = super::bedrock::mantle(&region, s.key.clone());
    if let Some(url) = s.base_url {
        p = p.base_url(url);
    }
    finish(p, s)
}

/// The table's `region`, else the AWS variables; a region must be a plain name.
#[cfg(feature = "bedrock")]
fn region(s: &KindSettings<'_>) -> Result<String, KindError> {
    let region = match s.region {
        Some(r) => r.to_owned(),
        None => (s.env)("AWS_REGION")
            .or_else(|| (s.env)("AWS_DEFAULT_REGION"))
            .filter(|r| !r.is_empty())
            .ok_or(KindError::Missing(
                "region (or the environment variable AWS_REGION)",
            ))?,
    };
    let plain = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !plain {
        return Err(invalid(
            "region",
            format!("region {region:?} is not a region name such as \"us-east-1\""),
        ));
    }
    Ok(region)
}

/// `kind = "vertex"`: `project`, `location` (default `global`), `publisher` = `google`
/// (default: Gemini), `anthropic` (Claude through rawPredict) or `openai` (the
/// OpenAI-compatible endpoint); auth `default` (the key file `credentials` names, else
/// Application Default Credentials), `metadata` (the GCE/GKE metadata server) or `bearer`
/// (an access token read from `api_key_env`).
#[cfg(feature = "vertex")]
fn vertex(s: &KindSettings<'_>) -> Result<Arc<dyn Provider>, KindError> {
    use super::vertex::{GoogleAuth, VertexAnthropic, VertexGemini};

    let project = s.project.ok_or(KindError::Missing("project"))?;
    let location = s.location.unwrap_or("global");
    let auth = match (s.auth, s.credentials) {
        ("bearer", _) => {
            if s.key.is_empty() {
                return Err(KindError::Missing(
                    "an access token (name its variable with api_key_env)",
                ));
            }
            GoogleAuth::access_token(s.key.clone())
        }
        ("metadata", _) => GoogleAuth::metadata_server(),
        (_, Some(path)) => {
            GoogleAuth::service_account_file(path).map_err(|error| KindError::Invalid {
                field: "credentials",
                error,
            })?
        }
        _ => GoogleAuth::from_env().map_err(|error| KindError::Invalid { field: "", error })?,
    };
    match s.api.unwrap_or("google") {
        "google" => {
            let mut p = VertexGemini::new(project, location, auth);
            if let Some(url) = s.base_url {
                p = p.base_url(url);
            }
            finish(p, s)
        }
        "anthropic" => {
            let mut p = VertexAnthropic::new(project, location, auth);
            if let Some(url) = s.base_url {
                p = p.base_url(url);
            }
            finish(p, s)
        }
        "openai" => {
            let mut p = super::vertex::openai(project, location, auth);
            if let Some(url) = s.base_url {
                p = p.base_url(url);
            }
            finish(p, s)
        }
        other => Err(invalid(
            "publisher",
            format!(
                "publisher {other:?} is not one of google, anthropic, openai for kind \"vertex\""
            ),
        )),
    }
}

/// What a kind's provider is built from: one `[providers.NAME]` table, checked and with its
/// `${VAR}`s expanded. Every field but `name` and `key` is unset by default ([`new`](Self::new)).
#[derive(Clone)]
#[non_exhaustive]
pub struct KindSettings<'a> {
    /// The provider's name in the file (the name an `openai_compatible` provider reports).
    pub name: &'a str,
    /// The key (empty: none sent).
    pub key: ApiKey,
    /// The auth mode, one of the kind's [`auth_modes`](ProviderKind::auth_modes); default
    /// `"default"`.
    pub auth: &'a str,
    /// The base URL replacing the kind's own; default none.
    pub base_url: Option<&'a str>,
    /// Azure's resource name or URL; default none.
    pub resource: Option<&'a str>,
    /// Azure's deployment; default none.
    pub deployment: Option<&'a str>,
    /// Azure's `api-version`; default none.
    pub api_version: Option<&'a str>,
    /// Headers added to every request, in order; default none.
    pub headers: &'a [(&'a str, String)],
    /// A cloud's region (`bedrock`: `us-east-1`…); default none.
    pub region: Option<&'a str>,
    /// The AWS profile for auth mode `profile`; default none.
    pub profile: Option<&'a str>,
    /// Vertex's Google Cloud project; default none.
    pub project: Option<&'a str>,
    /// Vertex's location (`us-central1`, `europe-west4`, `global`…); default none (`global`).
    pub location: Option<&'a str>,
    /// Vertex's service-account key file; default none (Application Default Credentials).
    pub credentials: Option<&'a str>,
    /// Which of a cloud's APIs: Bedrock `converse` or `invoke`, Vertex's publisher
    /// `google`, `anthropic` or `openai`; default none (`converse`, `google`).
    pub api: Option<&'a str>,
    /// How environment variables are read (the AWS chain, ADC); default the process's.
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl std::fmt::Debug for KindSettings<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindSettings")
            .field("name", &self.name)
            .field("key", &self.key)
            .field("auth", &self.auth)
            .field("base_url", &self.base_url)
            .field("region", &self.region)
            .field("project", &self.project)
            .field("location", &self.location)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

/// The process's environment variables, the default of [`KindSettings::env`].
fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

impl<'a> KindSettings<'a> {
    /// Settings for provider `name` with `key`, auth mode `"default"`, and nothing else.
    pub fn new(name: &'a str, key: impl Into<ApiKey>) -> Self {
        KindSettings {
            name,
            key: key.into(),
            auth: "default",
            base_url: None,
            resource: None,
            deployment: None,
            api_version: None,
            headers: &[],
            region: None,
            profile: None,
            project: None,
            location: None,
            credentials: None,
            api: None,
            env: &process_env,
        }
    }
}

/// Why a kind's provider could not be built from its settings.
#[derive(Debug)]
#[non_exhaustive]
pub enum KindError {
    /// A setting the kind needs is missing (e.g. `"base_url"`, `"deployment"`).
    Missing(&'static str),
    /// The setting `field` was refused: a value the kind does not take, a key file that
    /// cannot be read, credentials that cannot be found.
    Invalid {
        /// The setting (`"region"`, `"credentials"`, `"api"`…), or `""` for the table.
        field: &'static str,
        /// Why.
        error: Error,
    },
    /// The header at `index` of [`KindSettings::headers`] was refused.
    Header {
        /// Its position in [`KindSettings::headers`].
        index: usize,
        /// Why.
        error: Error,
    },
}

/// Every provider kind, in the order error messages list them: the OpenAI-compatible
/// presets ([`Preset::ALL`]), then `anthropic`, `gemini`, `openai_compatible`, `azure`, and
/// the clouds `bedrock`, `bedrock_mantle` (feature `bedrock`) and `vertex` (feature `vertex`).
pub const KINDS: &[ProviderKind] = &[
    ProviderKind::preset(Preset::OPENAI, false),
    ProviderKind::preset(Preset::DEEPSEEK, false),
    ProviderKind::preset(Preset::MISTRAL, false),
    ProviderKind::preset(Preset::QWEN, false),
    ProviderKind::preset(Preset::OPENROUTER, false),
    ProviderKind::preset(Preset::GROQ, false),
    ProviderKind::preset(Preset::TOGETHER, false),
    ProviderKind::preset(Preset::XAI, false),
    ProviderKind::preset(Preset::FIREWORKS, false),
    ProviderKind::preset(Preset::MOONSHOT, false),
    ProviderKind::preset(Preset::CEREBRAS, false),
    ProviderKind::preset(Preset::PERPLEXITY, false),
    ProviderKind::preset(Preset::ZAI, false),
    ProviderKind::preset(Preset::OLLAMA, true),
    ProviderKind::preset(Preset::VLLM, true),
    ProviderKind::preset(Preset::LLAMA_CPP, true),
    ProviderKind {
        name: "anthropic",
        auth_modes: &["default", "header", "none"],
        key_env: Some("ANTHROPIC_API_KEY"),
        key_optional: false,
        build: Build::Anthropic,
    },
    ProviderKind {
        name: "gemini",
        auth_modes: &["default", "header", "query", "bearer", "none"],
        key_env: Some("GEMINI_API_KEY"),
        key_optional: false,
        build: Build::Gemini,
    },
    ProviderKind {
        name: "openai_compatible",
        auth_modes: BEARER,
        key_env: None,
        key_optional: false,
        build: Build::Compatible,
    },
    ProviderKind {
        name: "azure",
        auth_modes: BEARER,
        key_env: Some("AZURE_OPENAI_API_KEY"),
        key_optional: false,
        build: Build::Azure,
    },
    #[cfg(feature = "bedrock")]
    ProviderKind {
        name: "bedrock",
        auth_modes: &["default", "bearer", "profile"],
        key_env: Some("AWS_BEARER_TOKEN_BEDROCK"),
        key_optional: true,
        build: Build::Bedrock,
    },
    #[cfg(feature = "bedrock")]
    ProviderKind {
        name: "bedrock_mantle",
        auth_modes: &["default", "bearer"],
        key_env: Some("AWS_BEARER_TOKEN_BEDROCK"),
        key_optional: false,
        build: Build::BedrockMantle,
    },
    #[cfg(feature = "vertex")]
    ProviderKind {
        name: "vertex",
        auth_modes: &["default", "metadata", "bearer"],
        key_env: None,
        key_optional: true,
        build: Build::Vertex,
    },
];

/// The kind called `name`, if any.
pub fn kind(name: &str) -> Option<&'static ProviderKind> {
    KINDS.iter().find(|k| k.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of the table in this module's documentation: (kind, auth modes, key text).
    fn doc_rows() -> Vec<(String, String, String)> {
        include_str!("kinds.rs")
            .lines()
            .filter_map(|l| l.strip_prefix("//! | `"))
            .map(|row| {
                let cells: Vec<&str> = row.split(" | ").collect();
                let cell = |i: usize| cells.get(i).map_or("", |c| c.trim_end_matches(" |"));
                (
                    cell(0).trim_end_matches('`').to_owned(),
                    cell(1).to_owned(),
                    cell(2).to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_documented_table_is_the_registry() {
        let rows = doc_rows();
        let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        assert_eq!(names, kinds);
        for (row, kind) in rows.iter().zip(KINDS) {
            assert_eq!(row.1, kind.auth_modes.join(", "), "{}", kind.name);
            match kind.key_env {
                Some(var) => assert!(row.2.starts_with(&format!("`{var}`")), "{row:?}"),
                None => assert!(row.2.starts_with("none"), "{row:?}"),
            }
            assert_eq!(row.2.contains("(optional)"), kind.key_optional, "{row:?}");
        }
    }

    #[test]
    fn the_readme_lists_every_kind() {
        // The annotated configuration file: `kind = "openai" # a preset: …, azure`.
        let readme = include_str!("../../README.md");
        let start = readme
            .find("# a preset:")
            .expect("the README lists the kinds");
        let end = start + readme[start..].find("vertex").expect("…up to vertex") + "vertex".len();
        let listed: Vec<&str> = readme[start..end]
            .lines()
            .filter_map(|l| l.split('#').nth(1))
            .flat_map(|c| c.split([',', ';']))
            .map(|w| {
                let w = w.trim().trim_start_matches("a preset:").trim();
                let w = w.trim_start_matches("or ").trim();
                w.split_whitespace().next().unwrap_or("")
            })
            .filter(|w| !w.is_empty())
            .collect();
        let kinds: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
        assert_eq!(listed, kinds);
    }

    #[test]
    fn presets_are_kinds_in_their_order() {
        let presets: Vec<&str> = Preset::ALL.iter().map(|p| p.name).collect();
        let kinds: Vec<&str> = KINDS
            .iter()
            .filter_map(|k| k.preset_of())
            .map(|p| p.name)
            .collect();
        assert_eq!(kinds, presets);
        for p in Preset::ALL {
            assert_eq!(kind(p.name).and_then(ProviderKind::preset_of), Some(*p));
        }
        assert!(kind("sagemaker").is_none());
    }

    #[test]
    fn kinds_build_their_provider() {
        let headers = [("x-team", "support".to_owned())];
        let mut s = KindSettings::new("gw", "k");
        s.headers = &headers;
        for k in KINDS {
            let mut s = s.clone();
            s.base_url = Some("http://127.0.0.1:9/v1");
            s.resource = Some("res");
            s.deployment = Some("dep");
            s.api_version = Some("2024-10-21");
            s.region = Some("us-east-1");
            s.project = Some("proj");
            s.credentials =
                Some("tests/fixtures/vertex/auth/google_auth_test_service_account.json");
            let p = k.build(&s).expect(k.name);
            let expected = match k.name {
                "openai_compatible" => "gw",
                name => name,
            };
            assert_eq!(p.name(), expected);
            assert!(p.validate().is_ok(), "{}", k.name);
        }
        let compatible = kind("openai_compatible").expect("kind");
        assert!(matches!(
            compatible.build(&s),
            Err(KindError::Missing("base_url"))
        ));
        let azure = kind("azure").expect("kind");
        assert!(matches!(azure.build(&s), Err(KindError::Missing(_))));
        let bad = [("x-ok", "v".to_owned()), ("bad name", "v".to_owned())];
        s.headers = &bad;
        let Err(KindError::Header { index, .. }) = kind("openai").expect("kind").build(&s) else {
            panic!("a bad header name is refused");
        };
        assert_eq!(index, 1);
    }
}
