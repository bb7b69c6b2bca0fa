//! Routing by language and script (`LanguageRule`): detection on real support-ticket
//! sentences in many languages, short, mixed-language and code-heavy messages, and the rule
//! at work in a relay on the loopback simulator.
#![cfg(feature = "language")]

use crate::support;

use std::time::Duration;

use polyrelay::routing::{LanguageDetection, LanguageRule, Router, Rules, Script, Verdict};
use polyrelay::{Chain, ChatRequest, ErrorKind, Relay};
use support::*;

mod passing;

/// Real sentences whatlang detects with full or high confidence (≥ 0.9), by ISO 639-3 code.
const SENTENCES: &[(&str, &str)] = &[
    (
        "eng",
        "I was charged twice for the same order, can you refund the extra payment?",
    ),
    (
        "eng",
        "I can't log in to my account since yesterday, the password reset email never arrives.",
    ),
    (
        "fra",
        "Bonjour, je n'arrive pas à me connecter à mon compte depuis hier soir. Pouvez-vous m'aider ?",
    ),
    (
        "fra",
        "J'ai été débité deux fois pour la même commande, je voudrais être remboursé.",
    ),
    (
        "deu",
        "Ich möchte meine Bestellung stornieren, weil die Lieferung viel zu lange dauert.",
    ),
    (
        "deu",
        "Mein Passwort funktioniert nicht mehr und die E-Mail zum Zurücksetzen kommt nicht an.",
    ),
    (
        "spa",
        "Quisiera cancelar mi suscripción y que me devuelvan el dinero del último mes.",
    ),
    (
        "spa",
        "Hola, pedí un par de zapatos la semana pasada y todavía no han llegado. ¿Pueden revisar mi pedido?",
    ),
    (
        "ita",
        "Vorrei annullare il mio abbonamento e ricevere il rimborso dell'ultimo mese.",
    ),
    (
        "por",
        "Gostaria de cancelar a minha assinatura e receber o reembolso do último mês.",
    ),
    (
        "por",
        "Não consigo entrar na minha conta desde ontem, vocês podem me ajudar?",
    ),
    (
        "nld",
        "Mijn pakket is beschadigd aangekomen. Kunnen jullie een nieuw exemplaar sturen of mijn geld terugstorten?",
    ),
    (
        "tur",
        "Kartımdan aynı sipariş için iki kez ödeme alındı, lütfen fazla ücreti iade edin.",
    ),
    (
        "pol",
        "Witam, w zeszłym tygodniu zamówiłem parę butów i nadal nie dotarły.",
    ),
    (
        "vie",
        "Xin chào, tôi đã đặt một đôi giày tuần trước nhưng vẫn chưa nhận được.",
    ),
    (
        "rus",
        "Добрый день. Мне нужно вернуть товар, он пришёл повреждённым. Как это сделать?",
    ),
    (
        "ukr",
        "Добрий день. Мені потрібно повернути товар, він прийшов пошкодженим. Як це зробити?",
    ),
    ("cmn", "我想取消我的订阅，并退还上个月的费用。"),
    ("cmn", "我无法登录我的账户，重置密码的邮件一直没有收到。"),
    (
        "jpn",
        "パスワードをリセットしたいのですが、メールが届きません。",
    ),
    ("jpn", "同じ注文で二回請求されました。返金をお願いします。"),
    (
        "kor",
        "비밀번호를 재설정하고 싶은데 이메일이 오지 않습니다.",
    ),
    (
        "kor",
        "같은 주문에 대해 두 번 결제되었습니다. 환불해 주세요.",
    ),
    (
        "ara",
        "لا أستطيع تسجيل الدخول إلى حسابي، كلمة المرور لا تعمل ولم تصلني رسالة إعادة التعيين.",
    ),
    (
        "hin",
        "मेरे कार्ड से एक ही ऑर्डर के लिए दो बार पैसे काटे गए हैं, कृपया इसे ठीक करें।",
    ),
    (
        "ell",
        "Γεια σας, παρήγγειλα ένα ζευγάρι παπούτσια την περασμένη εβδομάδα και δεν έχουν φτάσει ακόμα.",
    ),
    (
        "heb",
        "שלום, הזמנתי זוג נעליים בשבוע שעבר והן עדיין לא הגיעו.",
    ),
    ("tha", "สวัสดีครับ ผมสั่งรองเท้าไปเมื่อสัปดาห์ที่แล้ว แต่ยังไม่ได้รับเลย"),
];

/// A rule with one language route per code in [`SENTENCES`], each route named by its code.
fn every_language() -> LanguageRule {
    SENTENCES
        .iter()
        .fold(LanguageRule::new(), |rule, (code, _)| {
            rule.language(code, *code).unwrap()
        })
}

/// A rule with a route per CJK script, and language routes for French and English.
fn cjk_and_two_languages() -> LanguageRule {
    LanguageRule::new()
        .script(Script::Han, "qwen")
        .script(Script::Kana, "japanese")
        .script(Script::Hangul, "korean")
        .language("fra", "french")
        .unwrap()
        .language("eng", "english")
        .unwrap()
}

/// What a rule with no routes and the default candidates makes of `text`.
fn detect_language(text: &str) -> LanguageDetection {
    LanguageRule::new().detect(text)
}

fn route_of(rule: &LanguageRule, text: &str) -> Option<String> {
    rule.choose(text).map(|c| c.route.to_string())
}

// ---------------------------------------------------------------------------------------
// Detection, directly
// ---------------------------------------------------------------------------------------

#[test]
fn real_sentences_in_many_languages_are_detected_confidently() {
    let mut languages: Vec<&str> = SENTENCES.iter().map(|(c, _)| *c).collect();
    languages.dedup();
    assert!(languages.len() >= 20, "{languages:?}");
    for (code, text) in SENTENCES {
        let d = detect_language(text);
        assert_eq!(d.language, Some(*code), "{text}: {d:?}");
        assert!(d.confidence >= 0.9, "{text}: {d:?}");
        assert!(d.letters > 10, "{text}: {d:?}");
    }
}

#[test]
fn each_sentence_routes_to_its_language_with_the_confidence_in_the_reason() {
    let rule = every_language();
    for (code, text) in SENTENCES {
        let choice = rule
            .choose(text)
            .unwrap_or_else(|| panic!("{text}: passed"));
        assert_eq!(&*choice.route, *code, "{text}");
        assert!(
            choice.reason.starts_with(&format!("language {code} (")),
            "{}",
            choice.reason
        );
        assert_eq!(choice.label.as_deref(), Some(*code));
    }
}

#[test]
fn scripts_of_real_sentences() {
    let expected = [
        ("eng", Script::Latin),
        ("tur", Script::Latin),
        ("vie", Script::Latin),
        ("rus", Script::Cyrillic),
        ("ukr", Script::Cyrillic),
        ("cmn", Script::Han),
        ("jpn", Script::Kana),
        ("kor", Script::Hangul),
        ("ara", Script::Arabic),
        ("hin", Script::Devanagari),
        ("ell", Script::Greek),
        ("heb", Script::Hebrew),
        ("tha", Script::Thai),
    ];
    for (code, text) in SENTENCES {
        let Some((_, script)) = expected.iter().find(|(c, _)| c == code) else {
            continue;
        };
        let d = detect_language(text);
        assert_eq!(d.script, Some(*script), "{text}: {d:?}");
        assert!(d.script_share > 0.9, "{text}: {d:?}");
    }
}

#[test]
fn japanese_with_mostly_kanji_is_still_kana() {
    // One hiragana among the kanji is enough: Chinese is never written with kana.
    let d = detect_language("東京駅の近く");
    assert_eq!(d.script, Some(Script::Kana));
    assert_eq!(d.script_share, 1.0);
    let c = cjk_and_two_languages().choose("東京駅の近く").unwrap();
    assert_eq!(&*c.route, "japanese");
    assert_eq!(c.reason, "script kana (100 % of letters in kana or han)");
    assert_eq!(c.label.as_deref(), Some("kana"));
}

// ---------------------------------------------------------------------------------------
// Short messages
// ---------------------------------------------------------------------------------------

#[test]
fn two_character_cjk_messages_route_by_script() {
    let rule = cjk_and_two_languages();
    let c = rule.choose("退款").unwrap();
    assert_eq!(&*c.route, "qwen");
    assert_eq!(c.reason, "script han (100 % of letters)");
    assert_eq!(c.label.as_deref(), Some("han"));
    assert_eq!(route_of(&rule, "환불").as_deref(), Some("korean"));
    assert_eq!(
        rule.choose("환불").unwrap().reason,
        "script hangul (100 % of letters)"
    );
    assert_eq!(route_of(&rule, "返品したい").as_deref(), Some("japanese"));
    assert_eq!(route_of(&rule, "キャンセル").as_deref(), Some("japanese"));
    // Kanji alone cannot be told from Chinese: 返品 ("return", Japanese) is Han.
    assert_eq!(route_of(&rule, "返品").as_deref(), Some("qwen"));
    assert_eq!(route_of(&rule, "退款？").as_deref(), Some("qwen"));
    assert_eq!(route_of(&rule, "  退款!!  ").as_deref(), Some("qwen"));
}

#[test]
fn short_han_text_is_not_confidently_chinese_without_a_script_rule() {
    // whatlang calls any Han-only text Chinese with full confidence; the rule scales that
    // down below 10 characters, so a language-only rule passes on "返品" (Japanese) rather
    // than guessing, and routes a real Chinese sentence.
    let rule = LanguageRule::new()
        .language("cmn", "chinese")
        .unwrap()
        .language("jpn", "japanese")
        .unwrap();
    for short in ["退款", "返品", "我要退款"] {
        let d = detect_language(short);
        assert_eq!(d.language, Some("cmn"), "{short}");
        assert!(d.confidence < 0.5, "{short}: {d:?}");
        assert_eq!(rule.choose(short), None, "{short}");
    }
    let c = rule
        .choose("我无法登录我的账户，重置密码的邮件一直没有收到。")
        .unwrap();
    assert_eq!(
        (&*c.route, c.reason.as_str()),
        ("chinese", "language cmn (1.00)")
    );
    // Short Korean or kana text is unambiguous: whatlang's confidence stands.
    let rule = rule.language("kor", "korean").unwrap();
    assert_eq!(route_of(&rule, "환불").as_deref(), Some("korean"));
    assert_eq!(route_of(&rule, "返品したい").as_deref(), Some("japanese"));
}

#[test]
fn short_latin_messages_pass_rather_than_guess() {
    let rule = every_language();
    for text in [
        "ok",
        "hi",
        "thanks",
        "merci",
        "danke",
        "gracias",
        "refund please",
        "where is my order",
        "help",
    ] {
        let d = rule.detect(text);
        assert!(d.confidence < 0.5, "{text}: {d:?}");
        assert_eq!(d.verdict, Verdict::Unsure, "{text}");
        assert_eq!(rule.choose(text), None, "{text}");
        assert_eq!(d.script, Some(Script::Latin), "{text}");
    }
    // A script rule still routes them: the script of "ok" is certain.
    let latin = LanguageRule::new().script(Script::Latin, "western");
    assert_eq!(route_of(&latin, "ok").as_deref(), Some("western"));
}

#[test]
fn messages_without_letters_pass() {
    let rule = cjk_and_two_languages().script(Script::Latin, "western");
    for text in ["", "   ", "12345", "#123 !!!", "👍", "😡😡😡", "？？"] {
        let d = detect_language(text);
        assert_eq!(
            (d.letters, d.script, d.language),
            (0, None, None),
            "{text:?}"
        );
        assert_eq!(rule.choose(text), None, "{text:?}");
    }
}

#[test]
fn full_width_punctuation_is_not_korean() {
    // whatlang alone counts `？！，` (the full-width block) as Hangul: "好？？？" would be
    // Korean with full confidence. The rule hands it punctuation as ASCII.
    let rule = LanguageRule::new()
        .language("kor", "korean")
        .unwrap()
        .language("cmn", "chinese")
        .unwrap();
    for text in ["好？？？", "退款！！！", "？？", "（退款）", "「返品」"] {
        assert_eq!(rule.choose(text), None, "{text}");
        assert_ne!(detect_language(text).language, Some("kor"), "{text}");
    }
    let d = detect_language("ＯＫ，谢谢");
    assert_eq!(d.letters, 4);
    assert_eq!(d.script, Some(Script::Han));
    assert_eq!(
        route_of(&cjk_and_two_languages(), "好的，谢谢！").as_deref(),
        Some("qwen")
    );
}

// ---------------------------------------------------------------------------------------
// Mixed-language messages
// ---------------------------------------------------------------------------------------

#[test]
fn mixed_latin_languages_pass_unless_one_is_clear() {
    let rule = every_language();
    // A French greeting on an English sentence: whatlang is unsure, so the rule passes.
    let text = "Bonjour, my order #123 never arrived";
    assert!(detect_language(text).confidence < 0.5);
    assert_eq!(rule.choose(text), None);
    // One foreign word in a full sentence does not change the language.
    assert_eq!(
        route_of(
            &rule,
            "Merci for the quick reply, but I was charged twice for the same order and I would like a refund."
        )
        .as_deref(),
        Some("eng")
    );
}

#[test]
fn cjk_with_some_latin_is_cjk_and_latin_with_a_cjk_word_is_not() {
    let rule = cjk_and_two_languages();
    // 6 Han letters of 8: Chinese.
    assert_eq!(
        route_of(&rule, "Hi, 我的订单还没到").as_deref(),
        Some("qwen")
    );
    // A brand name in Latin letters inside Japanese.
    assert_eq!(
        route_of(&rule, "iPhoneの画面が割れました").as_deref(),
        Some("japanese")
    );
    // A URL does not count: the message is Chinese.
    let d = detect_language("我的订单 https://shop.example.com/order/12345 没到");
    assert_eq!((d.script, d.script_share), (Some(Script::Han), 1.0));
    // One Chinese word in an English sentence: under 30 % of the letters, not Han.
    let text = "My order 订单 still hasn't arrived after two weeks";
    let d = detect_language(text);
    assert_eq!(d.script, Some(Script::Latin), "{d:?}");
    assert_ne!(route_of(&rule, text).as_deref(), Some("qwen"));
    // A Japanese product name in English: not Japanese.
    let text = "I ordered the ポケモン starter set but it never came";
    assert_eq!(detect_language(text).script, Some(Script::Latin));
    assert_ne!(route_of(&rule, text).as_deref(), Some("japanese"));
}

#[test]
fn no_script_decides_without_half_of_the_letters() {
    // 6 Cyrillic, 4 Greek and 5 Latin letters: none has half, the script stage passes.
    let rule = LanguageRule::new()
        .script(Script::Cyrillic, "ru")
        .script(Script::Greek, "el")
        .script(Script::Latin, "western");
    let text = "Привет γεια hello";
    assert_eq!(detect_language(text).script, None);
    assert_eq!(rule.choose(text), None);
}

#[test]
fn the_last_user_message_decides() {
    // Earlier turns in another language do not count (through the router's query).
    let rule = cjk_and_two_languages();
    let req = ChatRequest::new("support")
        .user("我想退款")
        .assistant("好的，请提供订单号。")
        .user("J'ai été débité deux fois pour la même commande, je voudrais être remboursé.");
    let q = polyrelay::routing::RoutingQuery::new(&req);
    let c = rule.choose(&q.last_user_text).unwrap();
    assert_eq!(&*c.route, "french");
}

// ---------------------------------------------------------------------------------------
// Code-heavy messages
// ---------------------------------------------------------------------------------------

const RUST_FENCED: &str = "```rust\nfn main() {\n    let v: Vec<u32> = vec![1, 2, 3];\n    let doubled: Vec<_> = v.iter().map(|x| x * 2).collect();\n    println!(\"{:?}\", doubled);\n}\n```\nWhy does this not compile on stable Rust? I get a type error on the collect call.";

const RUST_BARE: &str = "fn main() { let v: Vec<u32> = vec![1, 2, 3]; println!(\"{:?}\", v.iter().map(|x| x * 2).collect::<Vec<_>>()); } why does this not compile?";

const PYTHON_ONLY: &str = "import numpy as np\nx = np.array([1, 2, 3])\nprint(x.mean())\nfor i in range(10):\n    print(i)";

const COMPILER_ERROR: &str = "error[E0382]: borrow of moved value: `x`\n --> src/main.rs:4:20\n  |\n2 |     let x = String::from(\"hi\");\n  |         - move occurs because `x` has type `String`, which does not implement the `Copy` trait\nhow do I fix this?";

#[test]
fn code_is_set_aside_and_never_yields_a_random_confident_language() {
    let rule = every_language();
    for text in [RUST_FENCED, RUST_BARE, PYTHON_ONLY, COMPILER_ERROR] {
        let d = detect_language(text);
        assert!(
            d.confidence < 0.5 || d.language == Some("eng"),
            "{text}: {d:?}"
        );
        let route = route_of(&rule, text);
        assert!(
            route.is_none() || route.as_deref() == Some("eng"),
            "{text}: {route:?}"
        );
    }
    // The fenced question is judged on its prose: a full English sentence.
    assert_eq!(route_of(&rule, RUST_FENCED).as_deref(), Some("eng"));
    // Code alone has no language.
    assert_eq!(route_of(&rule, "```\nfn main() {}\n```"), None);
    assert_eq!(detect_language("`let x = 1;`").letters, 0);
    assert_eq!(rule.choose(PYTHON_ONLY), None);
}

#[test]
fn code_does_not_outweigh_a_cjk_question() {
    let rule = cjk_and_two_languages();
    let fenced_only_code = "为什么这段代码编译不过？\n```rust\nfn main() {\n    let v: Vec<u32> = vec![1, 2, 3];\n    println!(\"{:?}\", v);\n}\n```";
    assert_eq!(route_of(&rule, fenced_only_code).as_deref(), Some("qwen"));
    let d = detect_language(fenced_only_code);
    assert_eq!((d.script, d.script_share), (Some(Script::Han), 1.0));
    // Unfenced code inline in a Chinese sentence.
    let bare = "这行 let v: Vec<u32> = vec![1, 2, 3]; 报错了，怎么办？";
    assert_eq!(route_of(&rule, bare).as_deref(), Some("qwen"));
    // Japanese with an inline code span.
    let ja = "`cargo build` を実行するとエラーになります。どうすればいいですか？";
    assert_eq!(route_of(&rule, ja).as_deref(), Some("japanese"));
}

// ---------------------------------------------------------------------------------------
// Rule configuration
// ---------------------------------------------------------------------------------------

#[test]
fn script_rules_come_before_language_rules() {
    let rule = LanguageRule::new()
        .language("cmn", "chinese-by-language")
        .unwrap()
        .script(Script::Han, "qwen");
    let c = rule
        .choose("我无法登录我的账户，重置密码的邮件一直没有收到。")
        .unwrap();
    assert_eq!(&*c.route, "qwen");
    assert!(c.reason.starts_with("script han"), "{}", c.reason);
}

#[test]
fn the_confidence_threshold_is_inclusive_and_configurable() {
    assert_eq!(LanguageRule::DEFAULT_MIN_CONFIDENCE, 0.5);
    // A near-neighbour language: Swedish at a middling confidence among every language.
    let text = "Hej, jag beställde ett par skor förra veckan och de har fortfarande inte kommit.";
    let rule = |min: f64| {
        LanguageRule::new()
            .all_languages()
            .language("swe", "nordic")
            .unwrap()
            .min_confidence(min)
    };
    let d = rule(0.0).detect(text);
    assert_eq!(d.language, Some("swe"));
    assert!(d.confidence > 0.0 && d.confidence < 1.0, "{d:?}");
    assert_eq!(
        route_of(&rule(d.confidence), text).as_deref(),
        Some("nordic")
    );
    assert_eq!(route_of(&rule(d.confidence + 0.01), text), None);
    assert_eq!(
        rule(d.confidence + 0.01).detect(text).verdict,
        Verdict::Unsure
    );
    assert_eq!(
        rule(0.0).choose(text).unwrap().reason,
        format!("language swe ({:.2})", d.confidence)
    );
    // Out-of-range values are clamped; NaN keeps the current threshold.
    let sure = "Ich möchte meine Bestellung stornieren, weil die Lieferung viel zu lange dauert.";
    let strict = LanguageRule::new()
        .language("deu", "de")
        .unwrap()
        .min_confidence(7.0);
    assert_eq!(route_of(&strict, sure).as_deref(), Some("de"));
    let nan = LanguageRule::new()
        .all_languages()
        .language("swe", "nordic")
        .unwrap()
        .min_confidence(0.99)
        .min_confidence(f64::NAN);
    assert_eq!(route_of(&nan, text), None);
}

#[test]
fn languages_are_named_by_iso_639_1_or_639_3_code_or_english_name() {
    let sure = "Quisiera cancelar mi suscripción y que me devuelvan el dinero del último mes.";
    let chinese = "我无法登录我的账户，重置密码的邮件一直没有收到。";
    for (es, zh) in [
        (" SPA ", "cmn"),
        ("es", "zh"),
        ("Spanish", "Chinese"),
        ("spanish", "ZHO"),
    ] {
        let rule = LanguageRule::new()
            .language(es, "es")
            .unwrap()
            .language(zh, "qwen")
            .unwrap();
        assert_eq!(route_of(&rule, sure).as_deref(), Some("es"), "{es}");
        let c = rule.choose(chinese).unwrap();
        assert_eq!(
            (&*c.route, c.label.as_deref()),
            ("qwen", Some("cmn")),
            "{zh}"
        );
    }
    // Candidates too.
    let rule = LanguageRule::new()
        .candidates(["en", "German", "fra"])
        .unwrap()
        .language("it", "it")
        .unwrap();
    let de = "Ich möchte meine Bestellung stornieren, weil die Lieferung viel zu lange dauert.";
    assert_eq!(rule.detect(de).language, Some("deu"));
    // Naming a language (by any name) or a script again replaces its route.
    let rule = LanguageRule::new()
        .language("spa", "a")
        .unwrap()
        .language("es", "b")
        .unwrap()
        .script(Script::Han, "x")
        .script(Script::Han, "y");
    assert_eq!(route_of(&rule, sure).as_deref(), Some("b"));
    assert_eq!(route_of(&rule, "退款").as_deref(), Some("y"));
    assert_eq!(rule.routes().len(), 2);
}

#[test]
fn an_unknown_language_is_a_config_error_naming_it() {
    for name in ["zz", "zh-CN", "Klingon", "isl", ""] {
        let err = LanguageRule::new().language(name, "x").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}");
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
        let err = LanguageRule::new().candidates(["eng", name]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config, "{name}");
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
    }
}

#[test]
fn a_language_of_another_script_is_not_matched() {
    // Only CJK languages configured: a Latin-script message passes (and whatlang's
    // Latin-script model is not even run).
    let rule = LanguageRule::new()
        .language("cmn", "qwen")
        .unwrap()
        .language("jpn", "japanese")
        .unwrap()
        .language("kor", "korean")
        .unwrap();
    assert_eq!(
        rule.choose(
            "I can't log in to my account since yesterday, the password reset email never arrives."
        ),
        None
    );
    assert_eq!(
        route_of(
            &rule,
            "パスワードをリセットしたいのですが、メールが届きません。"
        )
        .as_deref(),
        Some("japanese")
    );
}

#[test]
fn known_weak_spots_pass_or_route_right_but_never_elsewhere() {
    // whatlang sometimes reads Russian as Bulgarian, and scores Hindi low. With only `rus`
    // and `hin` configured such messages route right or pass; a script rule routes them all.
    let hard = [
        (
            "rus",
            "Здравствуйте, я заказал пару обуви на прошлой неделе, и она до сих пор не пришла.",
        ),
        (
            "rus",
            "Подскажите, пожалуйста, можно ли изменить адрес доставки после оплаты?",
        ),
        (
            "rus",
            "Не могу войти в личный кабинет: пароль не подходит, а письмо для сброса не приходит.",
        ),
        (
            "hin",
            "नमस्ते, मैंने पिछले हफ्ते जूते ऑर्डर किए थे और वे अभी तक नहीं पहुंचे हैं।",
        ),
        ("hin", "मुझे अपने पैसे वापस चाहिए क्योंकि सामान टूटा हुआ आया है।"),
    ];
    let by_language = LanguageRule::new()
        .language("rus", "rus")
        .unwrap()
        .language("hin", "hin")
        .unwrap();
    let by_script = LanguageRule::new()
        .script(Script::Cyrillic, "rus")
        .script(Script::Devanagari, "hin");
    for (code, text) in hard {
        let r = route_of(&by_language, text);
        assert!(r.is_none() || r.as_deref() == Some(code), "{text}: {r:?}");
        assert_eq!(route_of(&by_script, text).as_deref(), Some(code), "{text}");
    }
}

#[test]
fn routes_lists_every_route_once() {
    let rule = LanguageRule::new()
        .script(Script::Han, "qwen")
        .script(Script::Kana, "japanese")
        .language("cmn", "qwen")
        .unwrap()
        .language("fra", "mistral")
        .unwrap();
    let routes: Vec<String> = rule.routes().iter().map(|r| r.to_string()).collect();
    assert_eq!(routes, ["qwen", "japanese", "mistral"]);
    assert!(LanguageRule::new().routes().is_empty());
    assert_eq!(LanguageRule::new().choose("退款"), None);
}

#[test]
fn script_names_and_characters() {
    assert_eq!(Script::Han.to_string(), "han");
    assert_eq!(Script::Kana.name(), "kana");
    for (c, s) in [
        ('a', Some(Script::Latin)),
        ('ß', Some(Script::Latin)),
        ('ş', Some(Script::Latin)),
        ('Ａ', Some(Script::Latin)),
        ('я', Some(Script::Cyrillic)),
        ('λ', Some(Script::Greek)),
        ('ש', Some(Script::Hebrew)),
        ('ع', Some(Script::Arabic)),
        ('ह', Some(Script::Devanagari)),
        ('ก', Some(Script::Thai)),
        ('退', Some(Script::Han)),
        ('々', Some(Script::Han)),
        ('𠀋', Some(Script::Han)),
        ('の', Some(Script::Kana)),
        ('カ', Some(Script::Kana)),
        ('ｶ', Some(Script::Kana)),
        ('ー', Some(Script::Kana)),
        ('한', Some(Script::Hangul)),
        ('ㅎ', Some(Script::Hangul)),
        ('1', None),
        ('。', None),
        ('，', None),
        ('×', None),
        ('😀', None),
        (' ', None),
    ] {
        assert_eq!(Script::of(c), s, "{c:?}");
    }
}

#[test]
fn long_messages_are_judged_on_their_beginning() {
    // 500 characters of prose at most: a long English ticket with a French signature.
    let english = "I was charged twice for the same order, can you refund the extra payment? ";
    let text = format!(
        "{}Cordialement, et merci beaucoup pour votre aide précieuse.",
        english.repeat(20)
    );
    assert_eq!(route_of(&every_language(), &text).as_deref(), Some("eng"));
    // A huge message costs no more than its first 64 KiB.
    let huge = format!("{}{}", "退".repeat(200_000), "hello");
    assert_eq!(detect_language(&huge).script, Some(Script::Han));
}

// ---------------------------------------------------------------------------------------
// Through a relay
// ---------------------------------------------------------------------------------------

/// A relay whose router "support" has `rule` and the default route "general"; each
/// (route, model, reply) is a route to a simulated model scripted with that reply.
pub(super) fn relay_with(
    sim: &Simulator,
    routes: &[(&str, &str, &str)],
    rule: LanguageRule,
) -> Relay {
    let mut builder = Relay::builder().provider("sim", openai_at(sim, "sk-test"));
    for (route, model, reply) in routes {
        sim.script(model, [Reply::openai_text(reply)]);
        builder = builder.route(
            *route,
            Chain::of([format!("sim/{model}")]).total_timeout(Duration::from_secs(10)),
        );
    }
    builder
        .router("support", Rules::new("general").rule("language", rule))
        .build()
        .expect("valid relay")
}

fn relay_with_language_router(sim: &Simulator) -> Relay {
    let rule = LanguageRule::new()
        .script(Script::Han, "qwen")
        .script(Script::Kana, "japanese")
        .script(Script::Hangul, "korean")
        .language("fra", "french")
        .unwrap();
    relay_with(
        sim,
        &[
            ("qwen", "qwen-plus", "您好"),
            ("japanese", "japanese-model", "こんにちは"),
            ("korean", "korean-model", "안녕하세요"),
            ("french", "mistral-small", "Bonjour"),
            ("general", "general-model", "Hello"),
        ],
        rule,
    )
}

#[tokio::test]
async fn relay_routes_a_two_character_chinese_message_by_script() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with_language_router(&sim);
    let resp = guarded(relay.chat(ChatRequest::new("support").user("退款")))
        .await
        .unwrap();
    assert_eq!(resp.text(), "您好");
    let r = resp.meta.routing.as_ref().expect("a routing decision");
    assert_eq!(&*r.router, "support");
    assert_eq!(r.rule.as_deref(), Some("language"));
    assert_eq!(&*r.route, "qwen");
    assert_eq!(r.reason, "script han (100 % of letters)");
    assert_eq!(r.label.as_deref(), Some("han"));
    assert_eq!(resp.meta.route.as_deref(), Some("qwen"));
    assert_eq!(sim.requests_for("qwen-plus").len(), 1);
    assert_eq!(sim.requests().len(), 1);
}

#[tokio::test]
async fn relay_routes_japanese_korean_and_french() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with_language_router(&sim);
    for (text, route, model, reason) in [
        (
            "返品したいのですが、どうすればいいですか？",
            "japanese",
            "japanese-model",
            "script kana (100 % of letters in kana or han)",
        ),
        (
            "환불",
            "korean",
            "korean-model",
            "script hangul (100 % of letters)",
        ),
        (
            "J'ai été débité deux fois pour la même commande, je voudrais être remboursé.",
            "french",
            "mistral-small",
            "language fra (1.00)",
        ),
    ] {
        let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
            .await
            .unwrap();
        let r = resp.meta.routing.as_ref().unwrap();
        assert_eq!((&*r.route, r.reason.as_str()), (route, reason), "{text}");
        assert_eq!(r.rule.as_deref(), Some("language"));
        assert_eq!(sim.requests_for(model).len(), 1, "{text}");
    }
    assert!(sim.requests_for("general-model").is_empty());
}

#[tokio::test]
async fn relay_sends_unsure_and_code_heavy_messages_to_the_next_rule() {
    let sim = Simulator::start().await.unwrap();
    let relay = relay_with_language_router(&sim);
    for text in [
        "ok",
        "merci",
        "Bonjour, my order #123 never arrived",
        RUST_BARE,
        PYTHON_ONLY,
        "I was charged twice for the same order, can you refund the extra payment?",
    ] {
        let resp = guarded(relay.chat(ChatRequest::new("support").user(text)))
            .await
            .unwrap();
        let r = resp.meta.routing.as_ref().unwrap();
        assert_eq!(r.rule, None, "{text}: {r:?}");
        assert_eq!(&*r.route, "general", "{text}");
        assert_eq!(resp.text(), "Hello");
    }
    assert_eq!(sim.requests_for("general-model").len(), 6);
    assert!(sim.requests_for("mistral-small").is_empty());
}

#[tokio::test]
async fn relay_rejects_a_language_rule_naming_an_unknown_route() {
    let sim = Simulator::start().await.unwrap();
    let err = Relay::builder()
        .provider("sim", openai_at(&sim, "sk-test"))
        .route("general", Chain::of(["sim/general-model"]))
        .router(
            "support",
            Rules::new("general").rule(
                "language",
                LanguageRule::new().script(Script::Han, "no-such-route"),
            ),
        )
        .build()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("no-such-route"), "{err}");
}

#[test]
fn default_candidates_keep_neighbours_apart_and_can_be_widened() {
    // Swedish is routed, so it is a candidate: its near neighbours are not (by default).
    let text = "Hej, jag beställde ett par skor förra veckan och de har fortfarande inte kommit.";
    let rule = LanguageRule::new().language("swe", "nordic").unwrap();
    assert_eq!(route_of(&rule, text).as_deref(), Some("nordic"));
    // A German ticket is told apart from a routed English one by default.
    let rule = LanguageRule::new().language("eng", "english").unwrap();
    let de =
        "Guten Tag, meine Bestellung ist seit zwei Wochen nicht angekommen, bitte helfen Sie mir.";
    assert_eq!(route_of(&rule, de), None);
    // Narrowed candidates: still the routed language for its own text.
    let rule = LanguageRule::new()
        .candidates(["eng", "deu"])
        .unwrap()
        .language("fra", "french")
        .unwrap();
    let fr = "Bonjour, ma commande n'est toujours pas arrivée et personne ne me répond.";
    assert_eq!(route_of(&rule, fr).as_deref(), Some("french"));
}
