//! The clouds in a configuration file: `kind = "bedrock"` (region, API, the AWS chain, a
//! Bedrock API key or a profile) and `kind = "vertex"` (project, location, a key file or
//! Application Default Credentials, publisher), built and called over the simulator, and
//! every mistake reported at its line.

use polyrelay::ChatRequest;
use polyrelay::config::{ConfigError, RelayConfig};
use polyrelay::simulator::{Reply, Simulator};

use crate::support::clouds::vertex_key_file;

/// The relay a file builds, with `env` answering from `vars`.
fn relay(text: &str, vars: &[(&str, &str)]) -> Result<polyrelay::Relay, ConfigError> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    RelayConfig::from_toml_str(text)?
        .build_with_env(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

fn error_of(text: &str, vars: &[(&str, &str)]) -> ConfigError {
    match relay(text, vars) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn bedrock_from_a_file_with_an_api_key_and_with_the_aws_chain() {
    let sim = Simulator::start().await.unwrap();
    let model = "us.anthropic.claude-haiku-4-5-20251001-v1:0";
    sim.set_default(Reply::text("from Bedrock"));
    let text = format!(
        r#"
[providers.aws]
kind = "bedrock"
region = "us-west-2"
base_url = "{base}"

[providers.aws_keyed]
kind = "bedrock"
region = "us-west-2"
auth = "bearer"
api_key_env = "TEAM_BEDROCK_KEY"
base_url = "{base}"

[providers.aws_invoke]
kind = "bedrock"
api = "invoke"
base_url = "{base}"

[routes.signed]
targets = ["aws/{model}"]
[routes.keyed]
targets = ["aws_keyed/{model}"]
[routes.invoke]
targets = ["aws_invoke/{model}"]
"#,
        base = sim.base_url()
    );
    let relay = relay(
        &text,
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            ),
            ("TEAM_BEDROCK_KEY", "bedrock-api-key-1"),
            // The region of a table that names none.
            ("AWS_REGION", "eu-central-1"),
        ],
    )
    .expect("the file builds");
    for (route, path_end) in [
        ("signed", "/converse"),
        ("keyed", "/converse"),
        ("invoke", "/invoke"),
    ] {
        let resp = relay
            .chat(&ChatRequest::new(route).user("hello"))
            .await
            .unwrap_or_else(|e| panic!("{route}: {e}"));
        assert_eq!(resp.text(), "from Bedrock", "{route}");
        let req = sim.requests().last().cloned().expect("a request");
        assert!(
            req.path.ends_with(&format!(
                "/model/us.anthropic.claude-haiku-4-5-20251001-v1%3A0{path_end}"
            )),
            "{route}: {}",
            req.path
        );
        let auth = req.header("authorization").unwrap_or_default().to_owned();
        match route {
            "keyed" => assert_eq!(auth, "Bearer bedrock-api-key-1"),
            "signed" => {
                assert!(
                    auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                        && auth.contains("/us-west-2/bedrock/aws4_request"),
                    "{auth}"
                );
                assert!(req.header("x-amz-date").is_some());
            }
            _ => assert!(auth.contains("/eu-central-1/bedrock/"), "{auth}"),
        }
    }
}

#[tokio::test]
async fn vertex_from_a_file_with_a_key_file() {
    let sim = Simulator::start().await.unwrap();
    let key = vertex_key_file(&sim);
    sim.script("gemini-2.5-flash", [Reply::text("from Gemini on Vertex")]);
    sim.script(
        "claude-sonnet-4-5@20250929",
        [Reply::text("from Claude on Vertex")],
    );
    let text = format!(
        r#"
[providers.gcp]
kind = "vertex"
project = "support-prod"
location = "europe-west4"
credentials = "{key}"
base_url = "{base}"

[providers.gcp_claude]
kind = "vertex"
project = "support-prod"
location = "us-east5"
publisher = "anthropic"
credentials = "{key}"
base_url = "{base}"

[routes.gemini]
targets = ["gcp/gemini-2.5-flash"]
[routes.claude]
targets = ["gcp_claude/claude-sonnet-4-5@20250929"]
"#,
        key = key.path(),
        base = sim.base_url()
    );
    let relay = relay(&text, &[]).expect("the file builds");
    let resp = relay
        .chat(&ChatRequest::new("gemini").user("hello"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from Gemini on Vertex");
    let resp = relay
        .chat(&ChatRequest::new("claude").user("hello"))
        .await
        .unwrap();
    assert_eq!(resp.text(), "from Claude on Vertex");
    let paths: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/projects/"))
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/projects/support-prod/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent",
            "/v1/projects/support-prod/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
        ]
    );
    // One service account, one token each (the providers are two).
    assert!(!sim.token_requests().is_empty());
    for r in sim
        .requests()
        .iter()
        .filter(|r| r.path.contains("/projects/"))
    {
        assert!(
            r.header("authorization")
                .is_some_and(|a| a.starts_with("Bearer ya29.")),
            "{:?}",
            r.header("authorization")
        );
    }
}

#[test]
fn cloud_mistakes_are_reported_at_their_line() {
    // No region in the table nor in the environment: the table's line.
    let e = error_of(
        "[providers.aws]\nkind = \"bedrock\"\nauth = \"bearer\"\napi_key_env = \"K\"\n",
        &[("K", "key")],
    );
    assert_eq!(e.line(), Some(1), "{e}");
    assert!(e.message().contains("region"), "{e}");
    // A region that is not one.
    let e = error_of(
        "[providers.aws]\nkind = \"bedrock\"\nregion = \"us-east-1/../x\"\napi_key_env = \"K\"\n",
        &[("K", "key")],
    );
    assert_eq!(e.line(), Some(3), "{e}");
    // An API Bedrock does not have.
    let e = error_of(
        "[providers.aws]\nkind = \"bedrock\"\nregion = \"us-east-1\"\napi_key_env = \"K\"\napi = \"chat\"\n",
        &[("K", "key")],
    );
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.message().contains("converse, invoke"), "{e}");
    // An auth mode the kind does not take.
    let e = error_of(
        "[providers.aws]\nkind = \"bedrock\"\nregion = \"us-east-1\"\nauth = \"query\"\n",
        &[],
    );
    assert_eq!(e.line(), Some(4), "{e}");
    // A profile named but absent from the shared files.
    let e = error_of(
        "[providers.aws]\nkind = \"bedrock\"\nregion = \"us-east-1\"\nauth = \"profile\"\nprofile = \"nope\"\n",
        &[
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials"),
            ("AWS_CONFIG_FILE", "/nonexistent/config"),
        ],
    );
    assert_eq!(e.line(), Some(5), "{e}");
    // Vertex without a project.
    let e = error_of(
        "[providers.gcp]\nkind = \"vertex\"\nauth = \"metadata\"\n",
        &[],
    );
    assert_eq!(e.line(), Some(1), "{e}");
    assert!(e.message().contains("project"), "{e}");
    // An unreadable key file: its line, its name, never its contents.
    let e = error_of(
        "[providers.gcp]\nkind = \"vertex\"\nproject = \"p\"\n\ncredentials = \"/nonexistent/key.json\"\n",
        &[],
    );
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.message().contains("/nonexistent/key.json"), "{e}");
    // A publisher Vertex does not serve.
    let e = error_of(
        "[providers.gcp]\nkind = \"vertex\"\nproject = \"p\"\nauth = \"metadata\"\npublisher = \"meta\"\n",
        &[],
    );
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.message().contains("google, anthropic, openai"), "{e}");
}
