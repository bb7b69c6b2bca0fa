//! Credential and extra headers, made once when a provider is built: values marked
//! sensitive (so they never show in `Debug`), a credential that cannot be sent reported as a
//! typed error instead of a vendor's 401.

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};

use crate::types::{Error, ErrorKind};

/// Adds a caller's header to every request. The value is marked sensitive (it may be a
/// credential), so it never shows in logs.
pub(crate) fn insert_header(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), Error> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
        Error::new(ErrorKind::Config, format!("bad header name {name:?}")).with_source(e)
    })?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|e| Error::new(ErrorKind::Config, "bad header value").with_source(e))?;
    value.set_sensitive(true);
    headers.insert(name, value);
    Ok(())
}

/// Sets the JSON content type and, unless `secret` is empty, the credential header. A
/// secret with bytes a header cannot hold is left out and `false` returned, so that the
/// provider's `validate` can say so (the vendor would only answer 401).
pub(crate) fn auth_headers(headers: &mut HeaderMap, name: HeaderName, secret: &str) -> bool {
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if secret.is_empty() {
        return true;
    }
    match HeaderValue::from_str(secret) {
        Ok(mut v) => {
            v.set_sensitive(true);
            headers.insert(name, v);
            true
        }
        Err(_) => false,
    }
}

/// The error for a key that [`auth_headers`] could not put in a header.
pub(crate) fn unsendable_key() -> Error {
    Error::new(
        ErrorKind::Config,
        "the API key has characters an HTTP header cannot hold (a stray newline?)",
    )
}

/// Replaces credential header `name` in `headers` with `secret` (none when `secret` is
/// empty), leaving every other header as it is. Returns `false` when no header can hold
/// `secret`, for the provider's `validate` to report, like
/// [`auth_headers`] does at construction.
pub(crate) fn replace_credential(headers: &mut HeaderMap, name: HeaderName, secret: &str) -> bool {
    // Built in a scratch map so that the value is made exactly as at construction
    // (sensitive), without `auth_headers` resetting a content type the caller set.
    let mut fresh = HeaderMap::new();
    let sendable = auth_headers(&mut fresh, name.clone(), secret);
    headers.remove(&name);
    if let Some(value) = fresh.remove(&name) {
        headers.insert(name, value);
    }
    sendable
}
