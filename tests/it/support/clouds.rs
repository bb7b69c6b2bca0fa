//! The clouds on the simulator: a Vertex service account whose token endpoint is the
//! simulator, and a temporary file holding its key.

use polyrelay::simulator::Simulator;

/// A file removed when dropped.
pub struct TempFile(std::path::PathBuf);

impl TempFile {
    /// A new file holding `contents`, in the system's temporary directory.
    pub fn with(contents: &str) -> TempFile {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "polyrelay-it-{}-{}.json",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, contents).expect("write the temp file");
        TempFile(path)
    }

    /// Its path.
    pub fn path(&self) -> &str {
        self.0.to_str().expect("a UTF-8 temp path")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The published test service account's key (tests/fixtures/vertex/auth), with its token
/// endpoint on `sim`, as JSON.
pub fn vertex_key_json(sim: &Simulator) -> String {
    let text =
        std::fs::read_to_string("tests/fixtures/vertex/auth/google_auth_test_service_account.json")
            .expect("the test key");
    let mut key: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    key["token_uri"] = sim.token_url().into();
    key.to_string()
}

/// [`vertex_key_json`] in a file.
pub fn vertex_key_file(sim: &Simulator) -> TempFile {
    TempFile::with(&vertex_key_json(sim))
}

/// The clouds' five codecs on `sim`, added to `builder` under these names: `bedrock`
/// (Converse), `bedrock_native` (InvokeModel), `vertex` (Gemini), `vertex_claude`
/// (rawPredict) and `vertex_openai` (the OpenAI-compatible endpoint). Bedrock signs with a
/// Bedrock API key; Vertex takes its tokens from `google`.
pub fn with_clouds(
    builder: polyrelay::RelayBuilder,
    sim: &Simulator,
    google: polyrelay::providers::vertex::GoogleAuth,
) -> polyrelay::RelayBuilder {
    use polyrelay::providers::bedrock::{AwsAuth, Bedrock, BedrockAnthropic};
    use polyrelay::providers::vertex::{VertexAnthropic, VertexGemini, openai};
    let base = sim.base_url();
    builder
        .provider(
            "bedrock",
            Bedrock::new("us-east-1", AwsAuth::bearer("bedrock-api-key")).base_url(&base),
        )
        .provider(
            "bedrock_native",
            BedrockAnthropic::new("us-east-1", AwsAuth::bearer("bedrock-api-key")).base_url(&base),
        )
        .provider(
            "vertex",
            VertexGemini::new("p", "us-central1", google.clone()).base_url(&base),
        )
        .provider(
            "vertex_claude",
            VertexAnthropic::new("p", "us-east5", google.clone()).base_url(&base),
        )
        .provider(
            "vertex_openai",
            openai("p", "us-central1", google).base_url(&base),
        )
}
