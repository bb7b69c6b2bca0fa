//! The GCE / GKE / Cloud Run metadata server: the token of the workload's attached service
//! account, without any key file.

use super::token_cache::Fetched;
use super::{auth_error, read_token};
use crate::types::Error;

/// The metadata server's host name on Google Cloud.
pub(crate) const DEFAULT_HOST: &str = "metadata.google.internal";

/// The token path under the server.
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// `http://{host}` for a host (`metadata.google.internal`, `169.254.169.254`, `127.0.0.1:8080`:
/// `GCE_METADATA_HOST`'s form), or the URL as given when it names a scheme.
pub(crate) fn base_of(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.contains("://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    }
}

/// The token from the metadata server at `base` (`http://host[:port]`).
pub(crate) async fn fetch(http: &reqwest::Client, base: &str) -> Result<Fetched, Error> {
    let url = format!("{base}{TOKEN_PATH}");
    let request = http
        .get(&url)
        .header("metadata-flavor", "Google")
        .timeout(super::TOKEN_TIMEOUT);
    let resp = request.send().await.map_err(|e| {
        auth_error(format!("the metadata server at {base} did not answer")).with_source(e)
    })?;
    read_token(resp, &format!("the metadata server at {base}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_base_urls() {
        assert_eq!(base_of(DEFAULT_HOST), "http://metadata.google.internal");
        assert_eq!(base_of("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(base_of("http://127.0.0.1:8080/"), "http://127.0.0.1:8080");
    }
}
