//! API keys in a type that never shows them.

use secrecy::{ExposeSecret, SecretString};

/// An API key. `Debug` and `Display` print `[REDACTED]`; the key is zeroized on drop and
/// only read where the auth header is built.
#[derive(Clone)]
pub struct ApiKey(SecretString);

impl ApiKey {
    /// Wraps a key.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(SecretString::from(key.into()))
    }

    /// Reads the key from an environment variable; `None` when unset or empty.
    pub fn from_env(var: &str) -> Option<Self> {
        std::env::var(var)
            .ok()
            .filter(|k| !k.trim().is_empty())
            .map(|k| ApiKey::new(k.trim()))
    }

    /// Whether the key is empty (local servers such as Ollama need none).
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }

    /// The key itself. Only header-building code calls this.
    pub(crate) fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// Replaces every occurrence of the key in `text` (vendors sometimes echo it back).
    pub(crate) fn redact(&self, text: &str) -> String {
        let key = self.expose();
        if key.len() < 4 || !text.contains(key) {
            return text.to_owned();
        }
        text.replace(key, "[REDACTED]")
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey::new(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey::new(key)
    }
}
