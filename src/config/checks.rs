//! Checks of a file as a whole and of what only a file can get wrong: a file that defines
//! nothing, gateway and stats settings, credentials written out in headers or URLs. The settings the
//! builders share (breakers, budgets, chains, targets) are checked by their own `validate`
//! when the relay is built, and placed in the file by [`RelayConfig::build_error`].

use super::{ConfigError, KeyPath, RelayConfig};

/// The smallest `[gateway] max_body_bytes`: a chat request's JSON envelope alone takes a
/// few hundred bytes, so a smaller limit refuses every request.
pub(super) const MIN_BODY_BYTES: usize = 1024;

/// Checks the file as a whole, once it has parsed.
pub(super) fn whole_file(config: &RelayConfig) -> Result<(), ConfigError> {
    let f = &config.file;
    if f.providers.is_empty() && f.routes.is_empty() && f.routers.is_empty() {
        return Err(ConfigError {
            file: config.path.clone(),
            ..ConfigError::new(
                "the file defines no route, router or provider, so a relay built from it \
                 would serve nothing; add a [providers.NAME] table and a [routes.NAME] table",
            )
        });
    }
    if let Some(n) = f.gateway.max_body_bytes
        && n < MIN_BODY_BYTES
    {
        return Err(config.error(
            &KeyPath::of(&["gateway", "max_body_bytes"]),
            format!(
                "max_body_bytes must be at least {MIN_BODY_BYTES} (a request's envelope alone \
                 takes hundreds of bytes), not {n}"
            ),
        ));
    }
    if let Some(grace) = f.gateway.shutdown_grace
        && grace > crate::relay::MAX_TIMEOUT
    {
        return Err(config.error(
            &KeyPath::of(&["gateway", "shutdown_grace"]),
            format!(
                "shutdown_grace of {} s is longer than the 24 h allowed",
                grace.as_secs()
            ),
        ));
    }
    if f.stats.window.is_some_and(|w| w.is_zero()) {
        return Err(config.error(
            &KeyPath::of(&["stats", "window"]),
            "window must be greater than zero",
        ));
    }
    Ok(())
}

/// Header names that carry credentials.
fn is_secret_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie" | "apikey" | "key" | "token"
    ) || [
        "-key",
        "apikey",
        "-token",
        "-secret",
        "-password",
        "-signature",
        "-credential",
    ]
    .iter()
    .any(|s| n.ends_with(s))
}

/// Query parameters that carry credentials.
fn is_secret_param(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase().replace('_', "-");
    matches!(
        n.as_str(),
        "key"
            | "token"
            | "secret"
            | "password"
            | "pass"
            | "passwd"
            | "sig"
            | "signature"
            | "auth"
            | "code"
    ) || is_secret_name(&n)
}

/// Whether `value`, once its `${VAR}` references are taken out, still holds text beyond an
/// authorization scheme (`Bearer`, `Basic`, `Token`…): a credential written into the file.
fn holds_literal(value: &str) -> bool {
    let mut rest = value;
    let mut literal = String::new();
    while let Some(start) = rest.find("${") {
        literal.push_str(&rest[..start]);
        match rest[start..].find('}') {
            Some(end) => rest = &rest[start + end + 1..],
            // Unclosed: `expand` reports it.
            None => return false,
        }
    }
    literal.push_str(rest);
    let words: Vec<&str> = literal.split_whitespace().collect();
    match words.as_slice() {
        [] => false,
        [scheme] => !["bearer", "basic", "token", "key", "apikey"]
            .contains(&scheme.to_ascii_lowercase().as_str()),
        _ => true,
    }
}

/// Refuses a credential written out in header `name` (at `key`): it must come from an
/// environment variable (`"${VAR}"` or `"Bearer ${VAR}"`), as `api_key` must. A value that
/// starts with an authorization scheme followed by literal text is a credential whatever
/// the header's name.
pub(super) fn header(
    config: &RelayConfig,
    key: &KeyPath,
    name: &str,
    value: &str,
) -> Result<(), ConfigError> {
    let schemed = value
        .split_whitespace()
        .next()
        .is_some_and(|w| ["bearer", "basic"].contains(&w.to_ascii_lowercase().as_str()));
    if (is_secret_name(name) || schemed) && holds_literal(value) {
        return Err(config.error(
            key,
            format!(
                "a literal credential in header {name:?} is refused: keys stay out of files \
                 (and out of version control); put it in an environment variable and write \
                 \"${{VAR}}\" (or \"Bearer ${{VAR}}\")"
            ),
        ));
    }
    Ok(())
}

/// Refuses a credential written out in a base URL (at `key`): a query parameter such as
/// `?key=…` or a password in `user:password@host` must be a `${VAR}` reference.
pub(super) fn url(config: &RelayConfig, key: &KeyPath, url: &str) -> Result<(), ConfigError> {
    let refused = |what: String| {
        Err(config.error(
            key,
            format!(
                "a literal credential in the URL ({what}) is refused: keys stay out of files \
                 (and out of version control); write ${{VAR}} in its place and set the variable"
            ),
        ))
    };
    let without_fragment = url.split('#').next().unwrap_or(url);
    let (before_query, query) = without_fragment
        .split_once('?')
        .unwrap_or((without_fragment, ""));
    let authority = before_query
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(rest));
    if let Some((userinfo, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && holds_literal(password)
    {
        return refused("the password before @".to_owned());
    }
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if is_secret_param(name) && holds_literal(value) {
            return refused(format!("query parameter {name:?}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_references() {
        for literal in ["sk-live", "Bearer sk-live", "Bearer ${A} sk", "x${A}"] {
            assert!(holds_literal(literal), "{literal}");
        }
        for reference in ["${A}", "Bearer ${A}", " ${A} ", "", "Basic ${A}${B}"] {
            assert!(!holds_literal(reference), "{reference}");
        }
        for name in [
            "Authorization",
            "x-api-key",
            "api-key",
            "X-Goog-Api-Key",
            "cookie",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "anthropic-version",
            "x-portkey-provider",
            "OpenAI-Organization",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }
}
