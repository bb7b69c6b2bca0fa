//! The base URLs vendor codecs build their endpoints from: checked once at construction,
//! shown without their secrets.

use reqwest::Url;

use crate::types::{Error, ErrorKind};

/// A base URL checked once, at construction, so that endpoint URLs are then built by plain
/// concatenation: `{prefix}{endpoint path}{query}`. The endpoint path goes before the base
/// URL's query string, which is kept (Azure's `?api-version=`, a proxy's `?key=`).
#[derive(Clone)]
pub(crate) struct BaseUrl {
    /// Scheme, authority and path, without a trailing `/`.
    prefix: String,
    /// The parsed URL, without fragment and with an empty query removed.
    url: Url,
}

impl std::fmt::Debug for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `Url`'s own Debug would show the query, which may hold a credential.
        f.write_str(&self.shown())
    }
}

impl BaseUrl {
    /// Parses `raw`: it must be an absolute `http` or `https` URL.
    pub(crate) fn parse(raw: &str) -> Result<BaseUrl, BadBaseUrl> {
        let url = Url::parse(raw).map_err(|e| BadBaseUrl::new(raw, e.to_string()))?;
        BaseUrl::from_url(url, raw)
    }

    /// Checks an already parsed URL; `raw` is what to show in the error.
    pub(crate) fn from_url(mut url: Url, raw: &str) -> Result<BaseUrl, BadBaseUrl> {
        BaseUrl::check(&url, raw)?;
        url.set_fragment(None);
        if url.query() == Some("") {
            url.set_query(None);
        }
        let mut bare = url.clone();
        bare.set_query(None);
        let prefix = bare.as_str().trim_end_matches('/').to_owned();
        Ok(BaseUrl { prefix, url })
    }

    /// Refuses what is not an absolute `http(s)` URL with a host; `raw` is what to show.
    pub(crate) fn check(url: &Url, raw: &str) -> Result<(), BadBaseUrl> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BadBaseUrl::new(raw, "the scheme must be http or https"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(BadBaseUrl::new(raw, "it has no host"));
        }
        Ok(())
    }

    /// The URL as it may be shown ([`shown_url`]).
    pub(crate) fn shown(&self) -> String {
        shown_url(self.url.as_str())
    }

    /// Scheme, authority and path, without a trailing `/` or the query.
    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The base URL's query followed by `extra` pairs (form-encoded), with its `?`; empty
    /// when there is none.
    pub(crate) fn query_with(&self, extra: &[(&str, &str)]) -> String {
        if extra.is_empty() {
            return self
                .url
                .query()
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
        }
        let mut url = self.url.clone();
        url.query_pairs_mut().extend_pairs(extra);
        url.query().map(|q| format!("?{q}")).unwrap_or_default()
    }

    /// `{prefix}{path}` with the base query and `extra` pairs, parsed once so every call can
    /// reuse it. `path` starts with `/`.
    pub(crate) fn endpoint(&self, path: &str, extra: &[(&str, &str)]) -> Result<Url, BadBaseUrl> {
        let full = format!("{}{path}{}", self.prefix, self.query_with(extra));
        Url::parse(&full).map_err(|e| BadBaseUrl::new(self.url.as_str(), e.to_string()))
    }
}

/// A base URL refused at construction. Constructors do not fail; the provider's `validate`
/// (and every call) reports this as an [`ErrorKind::Config`] error. Holds only the redacted
/// form of the URL.
#[derive(Clone, Debug)]
pub(crate) struct BadBaseUrl {
    shown: String,
    reason: String,
}

impl BadBaseUrl {
    pub(crate) fn new(raw: &str, reason: impl Into<String>) -> Self {
        BadBaseUrl {
            shown: shown_url(raw),
            reason: reason.into(),
        }
    }

    /// The URL as it may be shown.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// The error every use of the provider reports.
    pub(crate) fn error(&self) -> Error {
        Error::new(
            ErrorKind::Config,
            format!("base URL {:?} does not parse: {}", self.shown, self.reason),
        )
    }
}

/// An endpoint that does not depend on the model (OpenAI's, Anthropic's): parsed once at
/// construction, or the refusal every use reports.
#[derive(Clone)]
pub(crate) struct Endpoint(Result<Url, BadBaseUrl>);

impl Endpoint {
    /// `{base}{path}`, keeping the base URL's query after the path.
    pub(crate) fn new(base: Result<BaseUrl, BadBaseUrl>, path: &str) -> Endpoint {
        Endpoint(base.and_then(|b| b.endpoint(path, &[])))
    }

    /// `Ok` when the URL parsed; the [`ErrorKind::Config`] error otherwise.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.0.as_ref().map(|_| ()).map_err(BadBaseUrl::error)
    }

    /// The URL to send to: a clone of the parsed URL is cheaper than reqwest parsing a
    /// string on every call.
    pub(crate) fn url(&self) -> Result<Url, Error> {
        self.0.clone().map_err(|bad| bad.error())
    }

    /// The URL (which may hold a credential: do not log it); empty when it was refused.
    pub(crate) fn as_str(&self) -> &str {
        self.0.as_ref().map_or("", Url::as_str)
    }

    /// The URL as it may be shown ([`shown_url`]).
    pub(crate) fn shown(&self) -> String {
        match &self.0 {
            Ok(url) => shown_url(url.as_str()),
            Err(bad) => bad.shown().to_owned(),
        }
    }
}

/// Query parameters known to carry no secret, shown as they are.
const PUBLIC_QUERY_PARAMS: &[&str] = &["api-version", "alt"];

/// `raw` as it may appear in Debug output and errors: credentials in the user-info part and
/// every query value (but those of [`PUBLIC_QUERY_PARAMS`]) become `[REDACTED]`, and the
/// fragment is dropped. Works on text that is not a URL at all.
pub(crate) fn shown_url(raw: &str) -> String {
    let raw = raw.split('#').next().unwrap_or(raw);
    let (head, query) = match raw.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (raw, None),
    };
    let mut out = String::with_capacity(raw.len() + 16);
    match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            out.push_str(scheme);
            out.push_str("://");
            if let Some((_, host)) = authority.rsplit_once('@') {
                out.push_str("[REDACTED]@");
                out.push_str(host);
            } else {
                out.push_str(authority);
            }
            out.push_str(path);
        }
        None => out.push_str(head),
    }
    if let Some(query) = query {
        out.push('?');
        for (i, pair) in query.split('&').enumerate() {
            if i > 0 {
                out.push('&');
            }
            match pair.split_once('=') {
                Some((name, _)) if PUBLIC_QUERY_PARAMS.contains(&name) => out.push_str(pair),
                Some((name, _)) => {
                    out.push_str(name);
                    out.push_str("=[REDACTED]");
                }
                None if pair.is_empty() => {}
                None => out.push_str("[REDACTED]"),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_keeps_the_query_after_the_path() {
        let b = BaseUrl::parse("https://x.openai.azure.com/openai/deployments/d/?api-version=1")
            .expect("parses");
        assert_eq!(
            b.prefix(),
            "https://x.openai.azure.com/openai/deployments/d"
        );
        assert_eq!(
            b.endpoint("/chat/completions", &[]).expect("url").as_str(),
            "https://x.openai.azure.com/openai/deployments/d/chat/completions?api-version=1"
        );
        assert_eq!(b.query_with(&[("alt", "sse")]), "?api-version=1&alt=sse");
        let plain = BaseUrl::parse("http://127.0.0.1:9").expect("parses");
        assert_eq!(plain.prefix(), "http://127.0.0.1:9");
        assert_eq!(plain.query_with(&[]), "");
        assert_eq!(plain.query_with(&[("k", "a b&c")]), "?k=a+b%26c");
        let empty_query = BaseUrl::parse("http://h/v1?#frag").expect("parses");
        assert_eq!(empty_query.query_with(&[]), "");
        assert_eq!(
            empty_query
                .endpoint("/messages", &[])
                .expect("url")
                .as_str(),
            "http://h/v1/messages"
        );
    }

    #[test]
    fn bad_base_urls_are_refused_without_their_secrets() {
        for bad in [
            "",
            "not a url",
            "htp:/bad url",
            "http://",
            "mailto:a@b",
            "/v1",
        ] {
            let e = BaseUrl::parse(bad).expect_err(bad).error();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(e.message().contains("does not parse"), "{e}");
        }
        let e = BaseUrl::parse("htp://user:pw@h/v1?key=SECRET&api-version=2")
            .expect_err("scheme")
            .error();
        let shown = e.to_string();
        assert!(
            !shown.contains("SECRET") && !shown.contains("pw"),
            "{shown}"
        );
        assert!(shown.contains("api-version=2"), "{shown}");
    }

    #[test]
    fn shown_urls_hide_credentials() {
        assert_eq!(
            shown_url("https://u:p@h/v1?key=abc&alt=sse&flag&#x"),
            "https://[REDACTED]@h/v1?key=[REDACTED]&alt=sse&[REDACTED]&"
        );
        assert_eq!(shown_url("not a url"), "not a url");
        assert_eq!(shown_url("http://h/v1"), "http://h/v1");
    }
}
