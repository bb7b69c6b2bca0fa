//! The in-process text classifier ([`TextClassifier`]) and its routing rule
//! ([`ClassifierRule`]): accuracy on a held-out split of the shipped support-ticket set
//! (`tests/data/support_tickets.jsonl`), the unsure and unmapped cases, typed errors for bad
//! training input, speed, and routing through a relay on the loopback simulator.
//!
//! `cargo test --test routing_classifier -- --nocapture` prints the accuracy tables and the
//! timing.

use crate::support;

mod model_files;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use polyrelay::routing::{ClassifierRule, Rules, TextClassifier};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};
use support::*;

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/support_tickets.jsonl"
);

/// The labels of the shipped set.
const INTENTS: [&str; 10] = [
    "account_access",
    "billing",
    "cancellation",
    "complaint",
    "order_status",
    "product_question",
    "refund_dispute",
    "shipping_address_change",
    "technical_issue",
    "translation",
];

/// One line of the shipped set, with its language.
struct Ticket {
    label: String,
    text: String,
    lang: String,
}

fn tickets() -> Vec<Ticket> {
    let text = std::fs::read_to_string(DATA).expect("the shipped data set");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let field = |name: &str| v[name].as_str().expect(name).to_owned();
            Ticket {
                label: field("label"),
                text: field("text"),
                lang: field("lang"),
            }
        })
        .collect()
}

/// The deterministic split: every 5th line (the 5th, 10th…) is held out, 20 %.
fn held_out(i: usize) -> bool {
    i % 5 == 4
}

/// A classifier trained on the whole shipped file, shared by the tests.
fn full_model() -> Arc<TextClassifier> {
    static MODEL: OnceLock<Arc<TextClassifier>> = OnceLock::new();
    MODEL
        .get_or_init(|| Arc::new(TextClassifier::from_examples_file(DATA).expect("trains")))
        .clone()
}

#[derive(Default)]
struct Tally {
    right: usize,
    total: usize,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        self.right += usize::from(ok);
        self.total += 1;
    }

    fn accuracy(&self) -> f64 {
        self.right as f64 / self.total.max(1) as f64
    }
}

fn group(lang: &str) -> &'static str {
    match lang {
        "en" => "English",
        "zh" | "ja" => "Chinese + Japanese",
        _ => "es + fr + de + pt",
    }
}

#[test]
fn the_shipped_set_has_ten_intents_over_six_hundred_queries_in_seven_languages() {
    let all = tickets();
    assert!(all.len() >= 600, "{} queries", all.len());
    let mut per_label: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_lang: BTreeMap<&str, usize> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for t in &all {
        *per_label.entry(&t.label).or_default() += 1;
        *per_lang.entry(&t.lang).or_default() += 1;
        assert!(
            seen.insert(t.text.to_lowercase()),
            "duplicate query {:?}",
            t.text
        );
    }
    assert_eq!(per_label.keys().copied().collect::<Vec<_>>(), INTENTS);
    assert!(per_label.values().all(|&n| n >= 60), "{per_label:?}");
    assert_eq!(per_lang.len(), 7, "{per_lang:?}");
    assert!(
        per_lang.iter().all(|(l, &n)| *l == "en" || n >= 40),
        "{per_lang:?}"
    );
    assert!(
        per_lang["en"] * 2 < all.len() + 1,
        "English is about half: {per_lang:?}"
    );
}

/// Trains on 80 % of the shipped set and measures accuracy on the held-out 20 %, overall,
/// per intent, per language and per language group, and the share of held-out queries a
/// rule would act on at several confidence thresholds.
///
/// Measured (this split): 75.8 % overall; see the printed table. The floors leave a few
/// points for changes in the set or the model.
#[test]
fn held_out_accuracy_on_the_support_ticket_set() {
    let all = tickets();
    let train: Vec<(&str, &str)> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| !held_out(*i))
        .map(|(_, t)| (t.text.as_str(), t.label.as_str()))
        .collect();
    let test: Vec<&Ticket> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| held_out(*i))
        .map(|(_, t)| t)
        .collect();
    let started = Instant::now();
    let clf = TextClassifier::train(train.iter().copied()).expect("trains");
    let train_time = started.elapsed();

    let mut overall = Tally::default();
    let mut by_label: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_lang: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_group: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut confidences: Vec<(f32, bool)> = Vec::new();
    for t in &test {
        let p = clf.predict(&t.text);
        let ok = *p.label == *t.label;
        overall.add(ok);
        by_label.entry(&t.label).or_default().add(ok);
        by_lang.entry(&t.lang).or_default().add(ok);
        by_group.entry(group(&t.lang)).or_default().add(ok);
        confidences.push((p.confidence, ok));
    }

    println!(
        "trained on {} queries in {train_time:?}; held out {}",
        train.len(),
        test.len()
    );
    println!(
        "overall: {:.1} % ({}/{})",
        100.0 * overall.accuracy(),
        overall.right,
        overall.total
    );
    for (name, table) in [
        ("intent", &by_label),
        ("language", &by_lang),
        ("group", &by_group),
    ] {
        for (k, t) in table {
            println!(
                "  {name:8} {k:24} {:5.1} % ({}/{})",
                100.0 * t.accuracy(),
                t.right,
                t.total
            );
        }
    }
    for threshold in [0.3f32, 0.5, 0.7, 0.9] {
        let acted: Vec<_> = confidences.iter().filter(|c| c.0 >= threshold).collect();
        let right = acted.iter().filter(|c| c.1).count();
        println!(
            "  min_confidence {threshold:.1}: acts on {:5.1} %, right on {:5.1} % of those",
            100.0 * acted.len() as f64 / confidences.len() as f64,
            100.0 * right as f64 / acted.len().max(1) as f64
        );
    }

    assert_eq!(test.len(), 124);
    assert!(
        overall.accuracy() >= 0.72,
        "overall {:.3}",
        overall.accuracy()
    );
    assert!(
        by_group["English"].accuracy() >= 0.72,
        "English {:.3}",
        by_group["English"].accuracy()
    );
    assert!(
        by_group["es + fr + de + pt"].accuracy() >= 0.65,
        "es/fr/de/pt {:.3}",
        by_group["es + fr + de + pt"].accuracy()
    );
    assert!(
        by_group["Chinese + Japanese"].accuracy() >= 0.50,
        "zh/ja {:.3}",
        by_group["Chinese + Japanese"].accuracy()
    );
    // Confident answers are mostly right: the confidence is calibrated.
    let sure: Vec<_> = confidences.iter().filter(|c| c.0 >= 0.7).collect();
    let sure_right = sure.iter().filter(|c| c.1).count() as f64 / sure.len().max(1) as f64;
    assert!(sure.len() >= test.len() / 3, "{} confident", sure.len());
    assert!(
        sure_right >= 0.85,
        "right on {sure_right:.3} of confident ones"
    );
}

/// 5-fold cross-validation over the whole set (fold `f` holds out lines `i % 5 == f`), for
/// steadier figures than one split: `cargo test --release --test routing_classifier --
/// --ignored --nocapture`. Measured: 73.3 % overall.
#[test]
#[ignore = "five trainings; run by hand when changing the model or the set"]
fn cross_validated_accuracy_on_the_support_ticket_set() {
    let all = tickets();
    let mut overall = Tally::default();
    let mut by_label: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_lang: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut by_group: BTreeMap<&str, Tally> = BTreeMap::new();
    for fold in 0..5 {
        let clf = TextClassifier::train(
            all.iter()
                .enumerate()
                .filter(|(i, _)| i % 5 != fold)
                .map(|(_, t)| (t.text.as_str(), t.label.as_str())),
        )
        .expect("trains");
        for t in all.iter().skip(fold).step_by(5) {
            let ok = *clf.predict(&t.text).label == *t.label;
            overall.add(ok);
            by_label.entry(&t.label).or_default().add(ok);
            by_lang.entry(&t.lang).or_default().add(ok);
            by_group.entry(group(&t.lang)).or_default().add(ok);
        }
    }
    println!(
        "5-fold: {:.1} % ({}/{})",
        100.0 * overall.accuracy(),
        overall.right,
        overall.total
    );
    for (name, table) in [
        ("intent", &by_label),
        ("language", &by_lang),
        ("group", &by_group),
    ] {
        for (k, t) in table {
            println!(
                "  {name:8} {k:24} {:5.1} % ({}/{})",
                100.0 * t.accuracy(),
                t.right,
                t.total
            );
        }
    }
    assert!(overall.accuracy() >= 0.70, "{:.3}", overall.accuracy());
}

#[test]
fn trains_from_the_shipped_file_and_labels_new_queries_in_several_languages() {
    let clf = full_model();
    assert_eq!(
        clf.labels().iter().map(|l| &**l).collect::<Vec<_>>(),
        INTENTS
    );
    for (text, label) in [
        (
            "Hi, my parcel still hasn't arrived and the tracking page shows nothing",
            "order_status",
        ),
        (
            "I returned the shoes two weeks ago, when do I get my refund?",
            "refund_dispute",
        ),
        ("I forgot my password and can't log in", "account_access"),
        (
            "please cancel my subscription before it renews",
            "cancellation",
        ),
        ("¿Dónde está mi paquete? No llega", "order_status"),
        ("Je veux annuler mon abonnement", "cancellation"),
        ("Ich kann mich nicht mehr einloggen", "account_access"),
        ("我想取消这个订单", "cancellation"),
        ("パスワードを忘れてログインできません", "account_access"),
    ] {
        let p = clf.predict(text);
        assert_eq!(&*p.label, label, "{text:?}: {p:?}");
    }
}

fn text_of_refund() -> String {
    "I was charged twice, please refund one of the payments".to_owned()
}

#[test]
fn a_prediction_lists_every_label_by_probability() {
    let clf = full_model();
    let p = clf.predict(&text_of_refund());
    assert_eq!(&*p.label, "refund_dispute");
    assert_eq!(p.scores.len(), INTENTS.len());
    assert_eq!(p.scores[0].0, p.label);
    // The confidence is the calibrated counterpart of the best probability.
    assert_eq!(
        clf.classify(&text_of_refund()),
        Some((&*p.label, p.confidence))
    );
    assert!(p.scores.windows(2).all(|w| w[0].1 >= w[1].1));
    let sum: f32 = p.scores.iter().map(|s| s.1).sum();
    assert!((sum - 1.0).abs() < 1e-3, "{sum}");
    assert!((p.margin - (p.scores[0].1 - p.scores[1].1)).abs() < 1e-6);
    assert!(p.confidence > 0.5 && p.confidence <= 1.0, "{p:?}");
}

#[test]
fn text_with_nothing_known_has_zero_confidence_and_gibberish_a_low_one() {
    let clf = full_model();
    for text in ["", "   ", "?!…"] {
        let p = clf.predict(text);
        assert_eq!((p.confidence, p.margin), (0.0, 0.0), "{text:?}: {p:?}");
    }
    for text in ["zzxq vvbnk qqwpl", "asdf"] {
        let p = clf.predict(text);
        assert!(p.confidence < 0.3, "{text:?}: {p:?}");
    }
}

#[test]
fn training_is_deterministic() {
    let a = TextClassifier::from_examples_file(DATA).unwrap();
    let b = full_model();
    for t in tickets().iter().step_by(37) {
        assert_eq!(a.predict(&t.text), b.predict(&t.text), "{:?}", t.text);
    }
}

#[test]
fn training_accepts_pairs_from_code() {
    let owned = vec![
        ("hello there".to_owned(), "greeting".to_owned()),
        ("good morning".to_owned(), "greeting".to_owned()),
        ("goodbye".to_owned(), "farewell".to_owned()),
        ("see you later".to_owned(), "farewell".to_owned()),
    ];
    let clf = TextClassifier::train(owned).unwrap();
    assert_eq!(&*clf.predict("hello!").label, "greeting");
    let borrowed = TextClassifier::train([("alpha beta", "a"), ("gamma delta", "b")]).unwrap();
    assert_eq!(&*borrowed.predict("gamma").label, "b");
}

#[test]
fn degenerate_training_input_is_a_config_error() {
    let none: [(&str, &str); 0] = [];
    let e = TextClassifier::train(none).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("no training examples"), "{e}");

    let e = TextClassifier::train([("one", "a"), ("two", "a")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("at least two labels"), "{e}");

    let e = TextClassifier::train([("one", "a"), ("two", " ")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("example 2: empty label"), "{e}");

    let e = TextClassifier::train([("one", "a"), ("two", "b"), ("?!", "b")]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("example 3 (b)"), "{e}");
}

#[test]
fn a_bad_jsonl_line_is_a_config_error_with_its_line_number() {
    let good = r#"{"text": "where is my order", "label": "order_status"}"#;
    let other = r#"{"text": "refund please", "label": "refund_dispute", "lang": "en"}"#;
    let cases = [
        (format!("{good}\n\n{other}\n{{not json\n"), "line 4"),
        (format!("{good}\n{{\"text\": \"no label\"}}\n"), "line 2"),
        (
            format!("{good}\n{other}\n{{\"text\": \"x\", \"label\": 3}}\n"),
            "line 3",
        ),
        (
            format!("{good}\n{{\"text\": \" \", \"label\": \"a\"}}\n"),
            "line 2: empty text",
        ),
        (
            format!("{{\"text\": \"x\", \"label\": \"\"}}\n{good}\n"),
            "line 1: empty label",
        ),
    ];
    for (jsonl, expected) in cases {
        let e = TextClassifier::from_jsonl_str(&jsonl).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config, "{jsonl:?}");
        assert!(e.message().contains(expected), "{jsonl:?}: {e}");
    }
    assert_eq!(
        TextClassifier::parse_jsonl(&format!("{good}\n\n{other}\n"))
            .unwrap()
            .len(),
        2
    );

    // From a file: the error names the file and the line.
    let dir = std::env::temp_dir().join(format!("polyrelay-clf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, format!("{good}\n{other}\n[1, 2]\n")).unwrap();
    let e = TextClassifier::from_examples_file(&path).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(
        e.message().contains("bad.jsonl") && e.message().contains("line 3"),
        "{e}"
    );

    let e = TextClassifier::from_examples_file(dir.join("missing.jsonl")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("missing.jsonl"), "{e}");
}

/// A rough timing (the benchmark to write: `TextClassifier::predict`, and the rule's
/// `Router::route`, on the queries of the shipped set). In a release build the median must be
/// within the 50 µs budget.
#[test]
fn a_decision_takes_microseconds() {
    let clf = full_model();
    let ticket = "Hello, I'm writing about order 55120. I was promised next-day delivery for a \
                  birthday present and it hasn't shown up. Can you find out where it is and \
                  whether it will arrive today?";
    assert!(ticket.chars().count() >= 180);
    for _ in 0..50 {
        std::hint::black_box(clf.predict(ticket));
    }
    let mut times: Vec<Duration> = (0..500)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(clf.predict(std::hint::black_box(ticket)));
            t.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    let p99 = times[times.len() * 99 / 100];
    let all = tickets();
    let t = Instant::now();
    for q in &all {
        std::hint::black_box(clf.predict(&q.text));
    }
    let per_query = t.elapsed() / all.len() as u32;
    println!(
        "predict on a {}-char ticket: median {median:?}, p99 {p99:?}; over the {} shipped \
         queries: {per_query:?} each ({} build)",
        ticket.chars().count(),
        all.len(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    if !cfg!(debug_assertions) {
        assert!(median <= Duration::from_micros(50), "median {median:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Through a relay
// ---------------------------------------------------------------------------------------

fn relay_with(sim: &Simulator, rule: ClassifierRule) -> Result<Relay, polyrelay::Error> {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("cheap", Chain::of(["sim/cheap-model"]))
        .route("strong", Chain::of(["sim/strong-model"]))
        .route("general", Chain::of(["sim/general-model"]))
        .router("support", Rules::new("general").rule("classifier", rule))
        .build()
}

fn support_rule() -> ClassifierRule {
    ClassifierRule::new(full_model())
        .label("order_status", "cheap")
        .label("shipping_address_change", "cheap")
        .label("refund_dispute", "strong")
        .label("complaint", "strong")
}

#[tokio::test]
async fn the_relay_routes_by_the_classifier_label() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = relay_with(&sim, support_rule()).unwrap();

    let resp = guarded(relay.chat(
        ChatRequest::new("support").user("Where is my parcel? The tracking has not moved in days."),
    ))
    .await
    .unwrap();
    let r = resp.meta.routing.as_ref().expect("a routing decision");
    assert_eq!(&*r.router, "support");
    assert_eq!(r.rule.as_deref(), Some("classifier"));
    assert_eq!(&*r.route, "cheap");
    assert_eq!(r.label.as_deref(), Some("order_status"));
    assert!(
        r.reason.starts_with("classifier: order_status (") && r.reason.ends_with(')'),
        "{}",
        r.reason
    );
    let latency = r.classifier_latency.expect("the classifier's latency");
    assert!(latency < Duration::from_millis(50), "{latency:?}");
    assert!(r.classifier_usage.is_none());
    assert_eq!(resp.meta.route.as_deref(), Some("cheap"));

    let resp =
        guarded(relay.chat(
            ChatRequest::new("support").user(
                "I sent the item back a month ago and still no refund. I want my money back.",
            ),
        ))
        .await
        .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(
        (&*r.route, r.label.as_deref()),
        ("strong", Some("refund_dispute"))
    );

    // The classifier reads the last user message.
    let resp = guarded(
        relay.chat(
            ChatRequest::new("support")
                .user("Hi, I want my money back")
                .assistant("Sorry to hear that. What is the order number?")
                .user("Actually, where is my other order? It has not arrived."),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        resp.meta.routing.as_ref().unwrap().label.as_deref(),
        Some("order_status")
    );

    assert_eq!(sim.requests_for("cheap-model").len(), 2);
    assert_eq!(sim.requests_for("strong-model").len(), 1);
    assert!(sim.requests_for("general-model").is_empty());
}

#[tokio::test]
async fn an_unsure_or_unmapped_label_goes_to_the_default_route() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let relay = relay_with(&sim, support_rule()).unwrap();

    // Gibberish: a low confidence, below the default threshold.
    let resp = guarded(relay.chat(ChatRequest::new("support").user("zzxq vvbnk qqwpl")))
        .await
        .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!((r.rule.as_deref(), &*r.route), (None, "general"));
    assert!(r.label.is_none());

    // A confident label with no route: passes.
    let resp = guarded(
        relay.chat(ChatRequest::new("support").user("I forgot my password and cannot log in")),
    )
    .await
    .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!((r.rule.as_deref(), &*r.route), (None, "general"));

    assert_eq!(sim.requests_for("general-model").len(), 2);
    assert!(sim.requests_for("cheap-model").is_empty());
}

#[tokio::test]
async fn below_min_confidence_the_rule_passes_to_the_next_rule() {
    let sim = Simulator::start().await.unwrap();
    sim.set_default(Reply::openai_text("ok"));
    let query = "my package is late";
    let confidence = full_model().predict(query).confidence;
    assert!(confidence > 0.5 && confidence < 0.99, "{confidence}");

    // A threshold above the query's confidence: the classifier passes, the next rule decides.
    let strict = ClassifierRule::new(full_model())
        .label("order_status", "cheap")
        .min_confidence(confidence + (1.0 - confidence) / 2.0);
    let fallback = ClassifierRule::new(full_model())
        .label("order_status", "strong")
        .min_confidence(0.0);
    let relay = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("cheap", Chain::of(["sim/cheap-model"]))
        .route("strong", Chain::of(["sim/strong-model"]))
        .route("general", Chain::of(["sim/general-model"]))
        .router(
            "support",
            Rules::new("general")
                .rule("strict", strict)
                .rule("lenient", fallback),
        )
        .build()
        .unwrap();
    let resp = guarded(relay.chat(ChatRequest::new("support").user(query)))
        .await
        .unwrap();
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(
        (r.rule.as_deref(), &*r.route, r.label.as_deref()),
        (Some("lenient"), "strong", Some("order_status"))
    );
    assert_eq!(sim.requests_for("strong-model").len(), 1);
}

#[tokio::test]
async fn a_rule_naming_an_unknown_route_fails_the_build() {
    let sim = Simulator::start().await.unwrap();
    let rule = ClassifierRule::new(full_model()).label("order_status", "no-such-route");
    let e = relay_with(&sim, rule).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.message().contains("no-such-route"), "{e}");

    // A label the classifier does not know is ignored (logged), not routed.
    let rule = ClassifierRule::new(full_model()).label("no_such_label", "no-such-route");
    assert!(relay_with(&sim, rule).is_ok());
}
