//! AWS Signature Version 4 over the exact request that goes out: canonical request, string to
//! sign, the HMAC-SHA256 key chain and the `Authorization` header, on `aws-lc-rs`.
//!
//! The rules are those of smithy-rs `aws-sigv4` with its defaults for every service but S3:
//! the path as sent is percent-encoded once more (`%3A` is signed as `%253A`), the query is
//! decoded, re-encoded and sorted, every header but a few hop-level ones is signed, and no
//! `x-amz-content-sha256` header is sent unless asked for.

use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::{digest, hmac};
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};

use super::Credentials;
use crate::types::{Error, ErrorKind};

/// Hex SHA-256 of an empty payload.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Headers never signed (aws-sigv4's defaults): set or changed on the way by proxies and
/// the HTTP stack, or the signature itself.
const UNSIGNED_HEADERS: [&str; 5] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
    "connection",
];

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_SECURITY_TOKEN: HeaderName = HeaderName::from_static("x-amz-security-token");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");

/// What a SigV4 signature is made for: the region and service of its scope, the time it is
/// made at, and whether the payload hash also goes out as `x-amz-content-sha256`.
#[derive(Clone, Debug)]
pub struct SigV4Params {
    region: String,
    service: String,
    time: SystemTime,
    content_sha256: bool,
}

impl SigV4Params {
    /// A signature for `service` in `region` made at `time` (Bedrock's service name is
    /// `bedrock`). By default no `x-amz-content-sha256` header is added.
    pub fn new(region: impl Into<String>, service: impl Into<String>, time: SystemTime) -> Self {
        SigV4Params {
            region: region.into(),
            service: service.into(),
            time,
            content_sha256: false,
        }
    }

    /// Whether the payload's SHA-256 also goes out, signed, as `x-amz-content-sha256`
    /// (S3 needs it; Bedrock does not). Default: `false`.
    pub fn content_sha256(mut self, yes: bool) -> Self {
        self.content_sha256 = yes;
        self
    }
}

/// One SigV4 signature: what it was computed over and the `Authorization` header it gave.
///
/// The canonical request holds the session token in clear when there is one (it is signed
/// as a header): `Debug` shows only the signed-header list and the credential scope.
#[derive(Clone)]
pub struct SigV4 {
    canonical_request: String,
    string_to_sign: String,
    authorization: String,
}

impl SigV4 {
    /// The canonical request (method, URI, query, headers, signed-header list, payload
    /// hash, separated by `\n`).
    pub fn canonical_request(&self) -> &str {
        &self.canonical_request
    }

    /// The string to sign (`AWS4-HMAC-SHA256`, time, scope, hash of the canonical request).
    pub fn string_to_sign(&self) -> &str {
        &self.string_to_sign
    }

    /// The `Authorization` header value that was set on the request.
    pub fn authorization(&self) -> &str {
        &self.authorization
    }
}

impl std::fmt::Debug for SigV4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scope = self.string_to_sign.lines().nth(2).unwrap_or_default();
        let signed = self
            .canonical_request
            .lines()
            .rev()
            .nth(1)
            .unwrap_or_default();
        f.debug_struct("SigV4")
            .field("scope", &scope)
            .field("signed_headers", &signed)
            .finish_non_exhaustive()
    }
}

/// Signs `request` in place: replaces `x-amz-date`, `x-amz-security-token` (when the
/// credentials carry one), `x-amz-content-sha256` (when asked for) and `authorization`.
pub(crate) fn sign_request(
    request: &mut reqwest::Request,
    creds: &Credentials,
    params: &SigV4Params,
) -> Result<SigV4, Error> {
    let amz_date = amz_date(params.time);
    let payload_hash = match request.body() {
        None => EMPTY_SHA256.to_owned(),
        Some(body) => match body.as_bytes() {
            Some(bytes) => hex(digest::digest(&digest::SHA256, bytes).as_ref()),
            None => {
                return Err(Error::new(
                    ErrorKind::Config,
                    "SigV4 needs the whole request body to sign it, and this body is a stream",
                ));
            }
        },
    };
    let headers = request.headers_mut();
    headers.remove(AUTHORIZATION);
    headers.insert(X_AMZ_DATE, header_value(&amz_date)?);
    headers.remove(X_AMZ_SECURITY_TOKEN);
    if let Some(token) = &creds.session_token {
        let mut value = HeaderValue::from_str(token.expose()).map_err(|_| {
            Error::new(
                ErrorKind::Config,
                "the AWS session token has characters a header cannot hold",
            )
        })?;
        value.set_sensitive(true);
        headers.insert(X_AMZ_SECURITY_TOKEN, value);
    }
    if params.content_sha256 {
        headers.insert(X_AMZ_CONTENT_SHA256, header_value(&payload_hash)?);
    }

    let mut signed: Vec<(String, String)> = Vec::with_capacity(headers.keys_len() + 1);
    for name in headers.keys() {
        let name_str = name.as_str();
        if UNSIGNED_HEADERS.contains(&name_str) {
            continue;
        }
        let mut joined = String::new();
        for (i, value) in headers.get_all(name).iter().enumerate() {
            let value = value.to_str().map_err(|_| {
                Error::new(
                    ErrorKind::Config,
                    format!("header `{name_str}` is not visible ASCII, so SigV4 cannot sign it"),
                )
            })?;
            if i > 0 {
                joined.push(',');
            }
            joined.push_str(&normalize_value(value));
        }
        signed.push((name_str.to_owned(), joined));
    }
    if !signed.iter().any(|(name, _)| name == "host") {
        let url = request.url();
        let host = url
            .host_str()
            .ok_or_else(|| Error::new(ErrorKind::Config, "a URL with no host cannot be signed"))?;
        let host = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        signed.push(("host".to_owned(), host));
    }
    signed.sort_unstable_by(|a, b| a.0.cmp(&b.0));

    let url = request.url();
    let parts = Parts {
        method: request.method().as_str(),
        path: url.path(),
        query: url.query().unwrap_or_default(),
        headers: &signed,
        payload_hash: &payload_hash,
    };
    let sig = sign_parts(&parts, creds, params, &amz_date);
    let mut value = header_value(&sig.authorization)?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(sig)
}

fn header_value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text).map_err(|_| {
        Error::new(
            ErrorKind::Config,
            "a SigV4 header has characters a header cannot hold (check the access key id, region and service)",
        )
    })
}

/// The request as signed: method, path and query as sent, the headers to sign (lower-case
/// names, sorted, values normalized), and the payload's hex SHA-256.
struct Parts<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    headers: &'a [(String, String)],
    payload_hash: &'a str,
}

/// The pure signature over `parts`, made at `amz_date` (`YYYYMMDDTHHMMSSZ`).
fn sign_parts(
    parts: &Parts<'_>,
    creds: &Credentials,
    params: &SigV4Params,
    amz_date: &str,
) -> SigV4 {
    let mut canonical = String::with_capacity(256);
    canonical.push_str(parts.method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(parts.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(parts.query));
    canonical.push('\n');
    let mut signed_names = String::new();
    for (name, value) in parts.headers {
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(value);
        canonical.push('\n');
        if !signed_names.is_empty() {
            signed_names.push(';');
        }
        signed_names.push_str(name);
    }
    canonical.push('\n');
    canonical.push_str(&signed_names);
    canonical.push('\n');
    canonical.push_str(parts.payload_hash);

    let date = amz_date.get(..8).unwrap_or(amz_date);
    let scope = format!("{date}/{}/{}/aws4_request", params.region, params.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let secret = format!("AWS4{}", creds.secret.expose());
    let mut key = hmac_sha256(secret.as_bytes(), date.as_bytes());
    for part in [
        params.region.as_str(),
        params.service.as_str(),
        "aws4_request",
    ] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
        creds.access_key_id
    );
    SigV4 {
        canonical_request: canonical,
        string_to_sign,
        authorization,
    }
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&key, data).as_ref().to_vec()
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// `YYYYMMDDTHHMMSSZ` (UTC) of `time`; a time before 1970 counts as 1970.
pub(crate) fn amz_date(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let (y, m, d) = crate::time::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Trims a header value and folds runs of spaces into one, as SigV4 canonicalizes it.
fn normalize_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split_ascii_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte but the unreserved ones (and `/` when `keep_slash`).
fn uri_encode(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
        }
    }
}

/// The path as sent, encoded once more (non-S3 services sign the encoded path: a model id's
/// `%3A` is signed as `%253A`). An empty path is `/`.
fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    let mut out = String::with_capacity(path.len() + 16);
    uri_encode(&mut out, path.as_bytes(), true);
    out
}

/// The query's parameters decoded, encoded strictly, and sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut params: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let mut key = String::new();
            uri_encode(&mut key, &percent_decode(k), false);
            let mut value = String::new();
            uri_encode(&mut value, &percent_decode(v), false);
            (key, value)
        })
        .collect();
    params.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

fn percent_decode(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex_at = |j: usize| b.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                // Two hex digits make one byte (< 256).
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_encodings() {
        let t = UNIX_EPOCH + std::time::Duration::from_secs(1_440_938_160);
        assert_eq!(amz_date(t), "20150830T123600Z");
        assert_eq!(
            canonical_uri("/model/us.anthropic.x-v1%3A0/converse"),
            "/model/us.anthropic.x-v1%253A0/converse"
        );
        assert_eq!(canonical_query("b=2&a=x%20y&a=1"), "a=1&a=x%20y&b=2");
        assert_eq!(normalize_value("  a   b "), "a b");
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
    }
}
