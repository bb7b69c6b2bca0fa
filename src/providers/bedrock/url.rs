//! Bedrock runtime URLs: the regional host, and the model id in the path as the bytes the
//! signature covers.

use reqwest::Url;

use crate::providers::base_url::{BadBaseUrl, BaseUrl};
use crate::types::{Error, ErrorKind};

/// Longest model id (the Smithy model's limit for `modelId`).
const MAX_MODEL_ID: usize = 2048;

/// The endpoint requests go to: `{prefix}/model/{id}/{action}{query}`.
#[derive(Clone, Debug)]
pub(super) struct Base(BaseUrl);

impl Base {
    /// `https://bedrock-runtime.{region}.amazonaws.com` (`.amazonaws.com.cn` in China).
    pub(super) fn for_region(region: &str) -> Result<Base, BadBaseUrl> {
        let ok = !region.is_empty()
            && region.len() <= 64
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !region.starts_with('-')
            && !region.ends_with('-');
        if !ok {
            return Err(BadBaseUrl::new(
                region,
                "the region must be an AWS region name such as us-east-1",
            ));
        }
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Base::parse(&format!("https://bedrock-runtime.{region}.{domain}"))
    }

    pub(super) fn parse(raw: &str) -> Result<Base, BadBaseUrl> {
        BaseUrl::parse(raw).map(Base)
    }

    pub(super) fn shown(&self) -> String {
        self.0.shown()
    }

    /// `{base}/model/{id}/{action}`, the base URL's query kept after the path.
    pub(super) fn model_url(&self, model: &str, action: &str) -> Result<Url, Error> {
        let id = encode_model_id(model)?;
        let url = format!(
            "{}/model/{id}/{action}{}",
            self.0.prefix(),
            self.0.query_with(&[])
        );
        Url::parse(&url).map_err(|e| {
            Error::new(
                ErrorKind::Config,
                format!("model id {model:?} does not make a Bedrock URL"),
            )
            .with_source(e)
        })
    }
}

/// The model id as a path segment: letters, digits and `.-_` as they are, `:` → `%3A`,
/// `/` → `%2F` (as boto3 sends them, and as the signature covers them). An id that is
/// empty, has an empty, `.` or `..` part between `/`, is longer than 2048 bytes or holds any other byte is a
/// [`ErrorKind::Config`] error: it could change the path.
pub(crate) fn encode_model_id(model: &str) -> Result<String, Error> {
    let refuse = |why: &str| {
        Error::new(
            ErrorKind::Config,
            format!("{model:?} is not a Bedrock model id: {why}"),
        )
    };
    // No part between `/` of an ARN may be empty or a dot segment: a server that decodes
    // `%2F` must not read a path that climbs.
    if model
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return Err(refuse("it is empty, or has an empty or dot segment"));
    }
    if model.len() > MAX_MODEL_ID {
        return Err(refuse("it is longer than 2048 bytes"));
    }
    let mut out = String::with_capacity(model.len() + 8);
    for c in model.chars() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => out.push(c),
            ':' => out.push_str("%3A"),
            '/' => out.push_str("%2F"),
            _ => {
                return Err(refuse(
                    "only letters, digits and . - _ : / may appear in a model id or ARN",
                ));
            }
        }
    }
    Ok(out)
}
