//! How calls to Bedrock are authenticated: SigV4 over AWS credentials, or a Bedrock API key
//! as a bearer token.

use reqwest::header::HeaderMap;

use crate::types::Error;

/// How a Bedrock codec authenticates its calls. Placeholder until the signer lands: signs
/// nothing.
#[derive(Clone, Debug, Default)]
pub struct AwsAuth {}

impl AwsAuth {
    /// Signs `request` (the exact bytes sent) for `region`, service `bedrock`.
    pub(crate) async fn sign(
        &self,
        request: &mut reqwest::Request,
        region: &str,
        http: &reqwest::Client,
    ) -> Result<(), Error> {
        let _ = (request, region, http);
        Ok(())
    }

    /// Whether a refused call is cured by signing again (clock skew: the offset is taken
    /// from the answer's `Date`).
    pub(crate) fn should_resend(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> bool {
        let _ = (status, headers, body);
        false
    }
}
