//! Saved models through a relay: a configuration file pointing at a saved model routes as the
//! examples file did, a corrupt model is a `Config` error naming the key, training with one
//! seed gives one file, and a model's own abstain threshold travels with it.

use std::path::{Path, PathBuf};

use polyrelay::routing::{ClassifierRule, Rules, TextClassifier, TrainOptions};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};

use super::{DATA, full_model};
use crate::support::*;

/// A fresh directory for one test's files, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("polyrelay-clf-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

/// A configuration whose router `support` has one classifier rule, `classifier` being the
/// inline table's source key (`examples = "…"` or `model = "…"`), its provider an
/// OpenAI-compatible server (no key) at `base`.
fn config_text(base: &str, classifier: &str) -> String {
    format!(
        "[providers.sim]\nkind = \"vllm\"\nbase_url = \"{base}/v1\"\n\n\
         [routes.cheap]\ntargets = [\"sim/cheap-model\"]\n\
         [routes.strong]\ntargets = [\"sim/strong-model\"]\n\
         [routes.general]\ntargets = [\"sim/general-model\"]\n\n\
         [routers.support]\ndefault = \"general\"\n\
         [[routers.support.rules]]\nname = \"classifier\"\n\
         [routers.support.rules.classifier]\n{classifier}\n\
         labels = {{ order_status = \"cheap\", refund_dispute = \"strong\" }}\n"
    )
}

fn relay_from(path: &Path) -> Result<Relay, polyrelay::config::ConfigError> {
    Relay::from_config_file(path)
}

const TICKETS: [&str; 5] = [
    "Where is my parcel? The tracking has not moved in days.",
    "I sent the item back a month ago and still no refund. I want my money back.",
    "I forgot my password and cannot log in",
    "¿Dónde está mi paquete? No llega",
    "zzxq vvbnk qqwpl",
];

#[tokio::test]
async fn a_config_pointing_at_a_saved_model_routes_as_the_examples_file_did() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let dir = TempDir::new("config");
    full_model().save(dir.path("support.clf")).unwrap();
    std::fs::write(
        dir.path("examples.toml"),
        config_text(&sim.base_url(), &format!("examples = {DATA:?}")),
    )
    .unwrap();
    // Relative to the configuration file.
    std::fs::write(
        dir.path("model.toml"),
        config_text(&sim.base_url(), "model = \"support.clf\""),
    )
    .unwrap();
    let from_examples = relay_from(&dir.path("examples.toml")).unwrap();
    let from_model = relay_from(&dir.path("model.toml")).unwrap();

    let mut routes = Vec::new();
    for text in TICKETS {
        let mut seen = Vec::new();
        for relay in [&from_examples, &from_model] {
            let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
                .await
                .unwrap();
            let r = resp.meta.routing.clone().expect("a routing decision");
            seen.push((r.route.to_string(), r.label.clone(), r.reason.clone()));
        }
        assert_eq!(seen[0], seen[1], "{text}");
        routes.push(seen[0].0.clone());
    }
    // Not vacuous: the rule routed some tickets and passed others.
    assert_eq!(routes, ["cheap", "strong", "general", "cheap", "general"]);
    assert_eq!(sim.requests_for("cheap-model").len(), 4);
}

#[test]
fn a_corrupt_or_missing_model_is_a_config_error_naming_the_key() {
    let dir = TempDir::new("corrupt");
    let bytes = full_model().to_bytes();
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("flipped.clf", flipped, "checksum mismatch"),
        ("short.clf", bytes[..bytes.len() / 3].to_vec(), "truncated"),
        ("text.clf", b"{\"text\": \"hi\"}".to_vec(), "magic"),
    ];
    // The simulator is never called: a placeholder URL.
    let sim_url = "http://127.0.0.1:9";
    for (file, contents, expected) in cases {
        std::fs::write(dir.path(file), contents).unwrap();
        let toml = dir.path("relay.toml");
        std::fs::write(&toml, config_text(sim_url, &format!("model = \"{file}\""))).unwrap();
        let e = relay_from(&toml).unwrap_err();
        assert_eq!(
            e.key(),
            Some("routers.support.rules[0].classifier.model"),
            "{e}"
        );
        assert!(e.message().contains(expected), "{file}: {e}");
        assert!(e.message().contains(file), "{file}: {e}");
    }
    // A missing file, both sources, neither.
    for (classifier, key, expected) in [
        (
            "model = \"missing.clf\"",
            "routers.support.rules[0].classifier.model",
            "missing.clf",
        ),
        (
            &format!("model = \"a.clf\"\nexamples = {DATA:?}"),
            "routers.support.rules[0].classifier",
            "exactly one of examples, model",
        ),
        (
            "",
            "routers.support.rules[0].classifier",
            "exactly one of examples, model",
        ),
    ] {
        let toml = dir.path("relay.toml");
        std::fs::write(&toml, config_text(sim_url, classifier)).unwrap();
        let e = relay_from(&toml).unwrap_err();
        assert_eq!(e.key(), Some(key), "{e}");
        assert!(e.message().contains(expected), "{e}");
    }
}

/// Every 4th line of the shipped set: a quick training in a debug build (a weak model: the
/// tests below check the file and the thresholds, not the labels).
fn small_set() -> Vec<(String, String)> {
    TextClassifier::read_examples(DATA)
        .unwrap()
        .into_iter()
        .step_by(4)
        .collect()
}

#[tokio::test]
async fn one_seed_gives_one_model_file_and_the_same_routes() {
    let options = TrainOptions::default().seed(11).epochs(8).average_from(4);
    let a = TextClassifier::train_with(small_set(), &options).unwrap();
    let b = TextClassifier::train_with(small_set(), &options).unwrap();
    assert_eq!(a.to_bytes(), b.to_bytes());
    let other = TextClassifier::train_with(small_set(), &options.clone().seed(12)).unwrap();
    assert_ne!(a.to_bytes(), other.to_bytes());

    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let dir = TempDir::new("seed");
    a.save(dir.path("a.clf")).unwrap();
    let loaded = TextClassifier::load(dir.path("a.clf")).unwrap();
    let label = a.predict(TICKETS[0]).label;
    let mut reasons = Vec::new();
    for clf in [a, loaded] {
        let rule = ClassifierRule::new(clf)
            .label(&*label, "cheap")
            .min_confidence(0.0);
        let relay = relay_with_rule(&sim, rule);
        let resp = guarded(relay.chat(ChatRequest::new("support").user(TICKETS[0])))
            .await
            .unwrap();
        assert_eq!(resp.meta.route.as_deref(), Some("cheap"));
        reasons.push(resp.meta.routing.unwrap().reason);
    }
    // The same label with the same confidence.
    assert_eq!(reasons[0], reasons[1]);
}

fn relay_with_rule(sim: &Simulator, rule: ClassifierRule) -> Relay {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("cheap", Chain::of(["sim/cheap-model"]))
        .route("general", Chain::of(["sim/general-model"]))
        .router("support", Rules::new("general").rule("classifier", rule))
        .build()
        .unwrap()
}

/// The model's own threshold (trained in, saved, loaded) is where `classify` abstains and
/// where the rule passes by default; `min_confidence` overrides it.
#[tokio::test]
async fn a_model_abstains_below_its_own_threshold_and_the_rule_follows_it() {
    let options = TrainOptions::default().epochs(8).average_from(4);
    let clf = TextClassifier::train_with(small_set(), &options).unwrap();
    let text = "my package is late";
    let (label, confidence) = clf
        .clone()
        .with_abstain_below(0.0)
        .classify(text)
        .map(|(l, c)| (l.to_owned(), c))
        .unwrap();
    assert!(confidence > 0.0 && confidence < 1.0, "{confidence}");
    let above = (confidence + 1.0) / 2.0;
    let strict = TextClassifier::train_with(small_set(), &options.abstain_below(above)).unwrap();
    let strict = TextClassifier::from_bytes(&strict.to_bytes()).unwrap();
    assert_eq!(strict.abstain_below(), above);
    assert_eq!(strict.classify(text), None);
    assert!(strict.predict(text).confidence < above);

    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    // By default the rule abstains where the model does: the default route.
    let relay = relay_with_rule(
        &sim,
        ClassifierRule::new(strict.clone()).label(&label, "cheap"),
    );
    let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
        .await
        .unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("general"));
    // A lower min_confidence acts on it.
    let relay = relay_with_rule(
        &sim,
        ClassifierRule::new(strict)
            .label(&label, "cheap")
            .min_confidence(confidence / 2.0),
    );
    let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
        .await
        .unwrap();
    assert_eq!(resp.meta.route.as_deref(), Some("cheap"));
    let e = TextClassifier::load(Path::new("/nonexistent/polyrelay.clf")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}
