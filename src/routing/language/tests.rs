//! Unit tests of the language rule.

use super::super::script::SCRIPTS;
use super::*;

#[test]
fn script_table_is_in_declaration_order() {
    for (i, s) in SCRIPTS.iter().enumerate() {
        assert_eq!(*s as usize, i, "{s:?}");
    }
}

fn prose(text: &str) -> String {
    super::prose(text).text
}

#[test]
fn prose_drops_code_spans_fences_and_code_tokens() {
    assert_eq!(
        prose("```rust\nfn main() {}\n```\nwhy does `x` not compile?"),
        "why does not compile?"
    );
    assert_eq!(prose("~~~\nlet a = 1;\n~~~\nhelp me"), "help me");
    assert_eq!(prose("unclosed ```fn main() {"), "unclosed");
    assert_eq!(prose("a `` b `x"), "a `` b");
    assert_eq!(
        prose("see https://example.com/x or foo.bar() and u32, don't"),
        "see or and don't"
    );
    assert_eq!(prose("我的订单(12345)没到"), "我的订单(12345)没到");
    assert_eq!(prose("(please) e-mail me"), "(please) e-mail me");
}

#[test]
fn prose_is_normalised_for_whatlang_and_counted() {
    assert_eq!(prose("好？！（ＯＫ）"), "好?!(OK)");
    assert_eq!(prose("¿Qué? «oui»"), " Qué?  oui ");
    assert_eq!(prose("क्या"), "क्या");
    let p = super::prose("ｶﾀｶﾅ 退款 ok");
    assert_eq!(p.text, "     退款 ok");
    assert_eq!(
        (
            p.counts.get(Script::Kana),
            p.counts.get(Script::Han),
            p.counts.letters
        ),
        (4, 2, 8)
    );
    // A letter of an unlisted script counts, in no script.
    let p = super::prose("བད");
    assert_eq!(p.counts.letters, 2);
    assert_eq!(p.counts.dominant(), None);
}

#[test]
fn prose_is_capped() {
    let long = "word ".repeat(1000);
    assert_eq!(prose(&long).chars().count(), LanguageRule::MAX_PROSE_CHARS);
    let wide = "退".repeat(100_000);
    assert_eq!(prose(&wide).chars().count(), LanguageRule::MAX_PROSE_CHARS);
}

/// Tunes `OUTSIDER_MARGIN_LATIN` and `OUTSIDER_MARGIN_CYRILLIC` on the development split of
/// `bench/language-data` (the benchmark reports on the test split): per margin, the routed
/// languages' accuracy and how often languages without a route reach one.
/// `cargo test --all-features --lib routing::language::tests::tune -- --ignored --nocapture`
#[test]
#[ignore]
fn tune_outsider_margin_on_dev_sentences() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/language-data/dev");
    let read = |f: &str| -> Vec<String> {
        std::fs::read_to_string(format!("{dir}/{f}.txt"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let routed = ["deu", "fra", "spa", "ita", "por", "rus"];
    let mut rule = LanguageRule::new();
    for code in routed {
        rule = rule.language(code, code).unwrap();
    }
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| Some(e.ok()?.path().file_stem()?.to_str()?.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let code_of = |file: &str| match file {
        "de" => "deu",
        "fr" => "fra",
        "es" => "spa",
        "it" => "ita",
        "pt" => "por",
        "ru" => "rus",
        _ => "",
    };
    // Fixed margins, then (negative) margins relative to whatlang's confident rate.
    let margins = [
        0.0, 0.01, 0.02, 0.03, 0.05, 1e9, -0.25, -0.5, -0.75, -1.0, -1.5,
    ];
    println!("margin {margins:?}");
    for file in &files {
        let code = code_of(file);
        let mut ok = vec![0usize; margins.len()];
        let mut n = 0;
        for text in read(file) {
            let p = super::prose(&text);
            let Some(main) = main_script(&p.text, &p.counts) else {
                continue;
            };
            let script = match main {
                whatlang::Script::Latin => ModelScript::Latin,
                whatlang::Script::Cyrillic => ModelScript::Cyrillic,
                _ => continue,
            };
            let Some(model) = scorer::model(script) else {
                continue;
            };
            let Some(scores) = model.scores(&p.text, model.everything()) else {
                continue;
            };
            n += 1;
            for (i, &m) in margins.iter().enumerate() {
                let m = if m < 0.0 {
                    -m * (3.0 / scores.trigrams as f64 + 0.015)
                } else {
                    m
                };
                let routed_to = rule.pick(&scores, m).and_then(|f| {
                    (f.confidence >= rule.min_confidence && routed.contains(&f.lang.code()))
                        .then(|| f.lang.code())
                });
                let good = if code.is_empty() {
                    routed_to.is_none()
                } else {
                    routed_to == Some(code)
                };
                ok[i] += usize::from(good);
            }
        }
        if n == 0 {
            continue;
        }
        let pct: Vec<String> = ok
            .iter()
            .map(|&k| format!("{:5.1}", 100.0 * k as f64 / n.max(1) as f64))
            .collect();
        println!(
            "{file} {} {}",
            if code.is_empty() { "pass" } else { "right" },
            pct.join(" ")
        );
    }
}
