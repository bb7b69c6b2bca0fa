//! The language rule passes rather than guesses: languages without a route, mixed
//! Chinese–English tickets judged by content, languages named by any code, and the rule's
//! own answer ([`LanguageRule::detect`]).

use polyrelay::config::RelayConfig;
use polyrelay::routing::{LanguageRule, Rules, Script, Verdict};
use polyrelay::{Chain, ChatRequest, Error, ErrorKind, Relay};

use crate::support::*;

/// Real sentences (lingua-rs test data, see bench/language-data/README.md).
const DUTCH: &str = include_str!("../../../bench/language-data/test/nl.txt");
const SWEDISH: &str = include_str!("../../../bench/language-data/test/sv.txt");
const VIETNAMESE: &str = include_str!("../../../bench/language-data/test/vi.txt");
const GERMAN: &str = include_str!("../../../bench/language-data/test/de.txt");
const PORTUGUESE: &str = include_str!("../../../bench/language-data/test/pt.txt");

const DUTCH_TICKET: &str = "Mijn pakket is beschadigd aangekomen. Kunnen jullie een nieuw \
    exemplaar sturen of mijn geld terugstorten?";
const GERMAN_TICKET: &str =
    "Ich möchte meine Bestellung stornieren, weil die Lieferung viel zu lange dauert.";
const ENGLISH: &str = "I ordered a replacement charger for my laptop two weeks ago and the \
    tracking page still says that the parcel is waiting at the warehouse.";
const CHINESE: &str = "我的订单已经两个星期了还没有收到，请帮我查一下物流。";

/// A relay whose router sends German to "german", Portuguese to "portuguese", Chinese (by
/// script) to "qwen", and everything else to "general".
fn relay(sim: &Simulator, rule: LanguageRule) -> Relay {
    super::relay_with(
        sim,
        &[
            ("german", "german-model", "Hallo"),
            ("portuguese", "portuguese-model", "Olá"),
            ("qwen", "qwen-plus", "您好"),
            ("general", "general-model", "Hello"),
        ],
        rule,
    )
}

fn german_and_portuguese() -> LanguageRule {
    LanguageRule::new()
        .script(Script::Han, "qwen")
        .language("de", "german")
        .and_then(|r| r.language("Portuguese", "portuguese"))
        .expect("known languages")
}

/// The route and the deciding rule of one call.
async fn route_of(relay: &Relay, text: &str) -> (String, Option<String>) {
    let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
        .await
        .unwrap();
    let r = resp.meta.routing.as_ref().expect("a routing decision");
    (r.route.to_string(), r.rule.as_deref().map(str::to_owned))
}

#[tokio::test]
async fn a_dutch_ticket_falls_to_the_default_route_not_the_german_one() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim, german_and_portuguese());
    assert_eq!(
        route_of(&relay, DUTCH_TICKET).await,
        ("general".to_owned(), None)
    );
    assert_eq!(
        route_of(&relay, GERMAN_TICKET).await,
        ("german".to_owned(), Some("language".to_owned()))
    );
    assert_eq!(sim.requests_for("general-model").len(), 1);
    assert_eq!(sim.requests_for("german-model").len(), 1);
    // The rule's own answer: sure it is Dutch, which has no route.
    let d = german_and_portuguese().detect(DUTCH_TICKET);
    assert_eq!((d.language, &d.verdict), (Some("nld"), &Verdict::NoRoute));
    assert!(d.confidence >= 0.5, "{d:?}");
}

#[test]
fn dutch_swedish_and_vietnamese_sentences_rarely_reach_a_route() {
    // Before: 65 %, 69 % and 75 % of these sentences went to German or Portuguese.
    let rule = german_and_portuguese();
    for (name, text) in [
        ("Dutch", DUTCH),
        ("Swedish", SWEDISH),
        ("Vietnamese", VIETNAMESE),
    ] {
        let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let routed = sentences
            .iter()
            .filter(|s| rule.choose(s).is_some())
            .count();
        assert!(sentences.len() >= 300, "{name}");
        assert!(
            routed * 100 < sentences.len() * 5,
            "{name}: {routed} of {} routed",
            sentences.len()
        );
    }
    // The routed languages keep their sentences (about 96 % and 93 %).
    for (route, text) in [("german", GERMAN), ("portuguese", PORTUGUESE)] {
        let sentences: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let right = sentences
            .iter()
            .filter(|s| rule.choose(s).is_some_and(|c| &*c.route == route))
            .count();
        assert!(
            right * 100 >= sentences.len() * 90,
            "{route}: {right} of {}",
            sentences.len()
        );
    }
}

#[tokio::test]
async fn a_mixed_ticket_goes_to_the_chinese_route_only_with_a_chinese_sentence() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay(&sim, german_and_portuguese());
    // A full Chinese sentence beside a longer English one, either order: 25 Han characters
    // against 120 Latin letters (a Han character counted as one letter made it 17 %).
    for text in [
        format!("{ENGLISH} {CHINESE}"),
        format!("{CHINESE}\n\n{ENGLISH}"),
    ] {
        assert_eq!(
            route_of(&relay, &text).await,
            ("qwen".to_owned(), Some("language".to_owned())),
            "{text}"
        );
    }
    let d = german_and_portuguese().detect(&format!("{ENGLISH} {CHINESE}"));
    assert_eq!(d.script, Some(Script::Han));
    assert!(d.script_share < 0.3, "{d:?}");
    assert!(
        d.to_string().starts_with("script han (a sentence of"),
        "{d}"
    );
    // An incidental Chinese word (a product, a person, a place) does not make it Chinese.
    for text in [
        "I paid with 微信支付 yesterday but the order still shows as unpaid, can you check it?",
        "My colleague 王小明 placed the order for our team and now we need an invoice.",
        "The parcel has been stuck at 上海浦东机场 for a week, when will it be delivered?",
        "Does the 小米 charger work with the new model, or do I need to buy another one?",
    ] {
        assert_eq!(
            route_of(&relay, text).await,
            ("general".to_owned(), None),
            "{text}"
        );
    }
    assert_eq!(sim.requests_for("qwen-plus").len(), 2);
}

#[tokio::test]
async fn a_two_letter_code_routes_its_language() {
    let sim = Simulator::start().await.unwrap();
    let rule = LanguageRule::new()
        .language("zh", "qwen")
        .and_then(|r| r.language("GERMAN", "german"))
        .unwrap();
    let relay = relay(&sim, rule);
    let resp = guarded(relay.chat(ChatRequest::new("support").user(CHINESE)))
        .await
        .unwrap();
    assert_eq!(resp.text(), "您好");
    let r = resp.meta.routing.as_ref().unwrap();
    assert_eq!(
        (&*r.route, r.reason.as_str(), r.label.as_deref()),
        ("qwen", "language cmn (1.00)", Some("cmn"))
    );
    assert_eq!(
        route_of(&relay, GERMAN_TICKET).await.0,
        "german",
        "an English name"
    );
    // A mixed ticket with a Chinese sentence is Chinese to a language rule too.
    assert_eq!(
        route_of(&relay, &format!("{ENGLISH} {CHINESE}")).await.0,
        "qwen"
    );
}

/// Builds the relay of a deployment whose language rule names `code`.
fn build_with(sim: &Simulator, code: &str) -> Result<Relay, Error> {
    Relay::builder()
        .provider("sim", openai_at(sim, "sk-test"))
        .route("general", Chain::of(["sim/general-model"]))
        .router(
            "support",
            Rules::new("general").rule("language", LanguageRule::new().language(code, "general")?),
        )
        .build()
}

#[tokio::test]
async fn an_unknown_language_code_fails_the_build_with_a_config_error_naming_it() {
    let sim = Simulator::start().await.unwrap();
    let err = build_with(&sim, "zz").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("\"zz\""), "{err}");
    assert!(build_with(&sim, "zh").is_ok());
    assert!(build_with(&sim, "Swedish").is_ok());
}

const FILE: &str = "[providers.sim]\nkind = \"openai_compatible\"\n\
    base_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"SIM_KEY\"\n\n\
    [routes.r]\ntargets = [\"sim/primary\"]\n\n\
    [routers.s]\ndefault = \"r\"\n[[routers.s.rules]]\nname = \"n\"\n";

fn build_file(language: &str) -> Result<Relay, polyrelay::config::ConfigError> {
    RelayConfig::from_toml_str(&format!("{FILE}language = {language}\n"))
        .and_then(|c| c.build_with_env(|_| Some("sk-test".to_owned())))
}

#[test]
fn the_config_file_takes_any_code_and_names_the_key_of_an_unknown_one() {
    build_file("{ languages = { zh = \"r\", German = \"r\", por = \"r\" } }").unwrap();
    build_file("{ languages = { fr = \"r\" }, candidates = [\"en\", \"Dutch\", \"swe\"] }")
        .unwrap();
    let Err(e) = build_file("{ languages = { zh = \"r\", zz = \"r\" } }") else {
        panic!("accepted an unknown language")
    };
    assert_eq!(
        e.key(),
        Some("routers.s.rules[0].language.languages.zz"),
        "{e}"
    );
    assert!(e.message().contains("\"zz\""), "{e}");
    let Err(e) = build_file("{ languages = { fr = \"r\" }, candidates = [\"en\", \"xx\"] }") else {
        panic!("accepted an unknown candidate")
    };
    assert_eq!(
        e.key(),
        Some("routers.s.rules[0].language.candidates[1]"),
        "{e}"
    );
    assert!(e.message().contains("\"xx\""), "{e}");
}

#[test]
fn detect_tells_unsure_from_no_route() {
    let rule = german_and_portuguese();
    let d = rule.detect(GERMAN_TICKET);
    assert_eq!(d.verdict, Verdict::Route("german".into()));
    assert_eq!(d.to_string(), "language deu (1.00)");
    // Too short to be sure.
    for text in ["ok", "danke", "obrigado", "refund please"] {
        let d = rule.detect(text);
        assert_eq!(d.verdict, Verdict::Unsure, "{text}: {d:?}");
        assert!(d.to_string().starts_with("unsure: "), "{d}");
    }
    // Nothing to judge.
    let d = rule.detect("12345 !!!");
    assert_eq!((d.letters, &d.verdict), (0, &Verdict::Unsure));
    assert_eq!(d.to_string(), "unsure: no letters");
    // Sure, and not routed: English (a candidate) and Swedish (not one).
    let d = rule.detect(ENGLISH);
    assert_eq!((d.language, &d.verdict), (Some("eng"), &Verdict::NoRoute));
    assert!(
        d.to_string().starts_with("no route for language eng ("),
        "{d}"
    );
    let d = rule
        .detect("Hej, jag beställde ett par skor förra veckan och de har fortfarande inte kommit.");
    assert_eq!((d.language, &d.verdict), (Some("swe"), &Verdict::NoRoute));
    // A script rule's answer.
    let d = rule.detect(CHINESE);
    assert_eq!(
        (d.script, d.language, &d.verdict),
        (Some(Script::Han), None, &Verdict::Route("qwen".into()))
    );
    // A rule without language routes still names the language.
    let d = LanguageRule::new().detect(DUTCH_TICKET);
    assert_eq!((d.language, &d.verdict), (Some("nld"), &Verdict::NoRoute));
}
