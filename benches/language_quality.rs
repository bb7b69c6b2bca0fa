//! The language rule's quality on real sentences (`bench/language-data/`, see its README):
//! per-language accuracy of the routed languages, how often sentences in languages that are
//! not routed reach a route anyway (a wrong-language route), mixed Chinese–English tickets,
//! and µs per decision.
//!
//! `cargo bench --bench language_quality` reports on the test split;
//! `cargo bench --bench language_quality -- dev` on the development split (the one the
//! rule's thresholds were tuned on).

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use polyrelay::routing::{LanguageRule, Script};

/// The routed languages: (data file, ISO 639-3 code = route name).
const ROUTED: &[(&str, &str)] = &[
    ("de", "deu"),
    ("fr", "fra"),
    ("es", "spa"),
    ("it", "ita"),
    ("pt", "por"),
    ("ru", "rus"),
];

/// Languages routed by script: (data file, route).
const BY_SCRIPT: &[(&str, &str)] = &[("zh", "chinese"), ("ja", "japanese")];

/// Languages with no route: (data file, name). The first four are default candidates or the
/// issue's cases; the last four are languages whatlang has no model for.
const NOT_ROUTED: &[(&str, &str)] = &[
    ("en", "eng"),
    ("nl", "nld"),
    ("sv", "swe"),
    ("vi", "vie"),
    ("da", "dan"),
    ("nb", "nob"),
    ("pl", "pol"),
    ("tr", "tur"),
    ("id", "ind"),
    ("cs", "ces"),
    ("ro", "ron"),
    ("ca", "cat"),
    ("uk", "ukr"),
    ("bg", "bul"),
    ("mk", "mkd"),
    ("sr", "srp"),
    ("be", "bel"),
    ("fi", "fin"),
    ("hu", "hun"),
    ("is", "isl (no model)"),
    ("eu", "eus (no model)"),
    ("sw", "swa (no model)"),
];

/// The rule measured: the routed languages by language, Chinese and Japanese by script.
fn rule() -> LanguageRule {
    let mut rule = LanguageRule::new()
        .script(Script::Han, "chinese")
        .script(Script::Kana, "japanese");
    for (_, code) in ROUTED {
        rule = match rule.language(code, *code) {
            Ok(rule) => rule,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        };
    }
    rule
}

fn decide(rule: &LanguageRule, text: &str) -> Option<String> {
    rule.choose(text).map(|c| c.route.to_string())
}

fn lines(path: &str) -> Vec<String> {
    let full = format!("{}/bench/language-data/{path}", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read_to_string(&full) {
        Ok(text) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        Err(e) => {
            eprintln!("cannot read {full}: {e}");
            std::process::exit(1);
        }
    }
}

/// Routes every text; returns the routes chosen and the mean µs per decision (best of 7
/// rounds: the machine may be busy).
fn run(rule: &LanguageRule, texts: &[String]) -> (Vec<Option<String>>, f64) {
    let out: Vec<Option<String>> = texts.iter().map(|t| decide(rule, t)).collect();
    let mut best = f64::MAX;
    for _ in 0..7 {
        let start = Instant::now();
        for t in texts {
            black_box(rule.choose(black_box(t)));
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / texts.len().max(1) as f64);
    }
    (out, best)
}

fn han_count(s: &str) -> usize {
    s.chars()
        .filter(|c| matches!(*c as u32, 0x4E00..=0x9FFF))
        .count()
}

/// English sentences with `words` inserted between two words, one each.
fn with_words(en: &[String], words: &[String], skip: usize) -> Vec<String> {
    words
        .iter()
        .zip(en.iter().rev().skip(skip))
        .enumerate()
        .map(|(i, (w, e))| {
            let parts: Vec<&str> = e.split(' ').collect();
            let at = ((i * 7) % parts.len().max(1) + 1).min(parts.len());
            format!("{} {w} {}", parts[..at].join(" "), parts[at..].join(" "))
        })
        .collect()
}

/// Mixed Chinese–English tickets: a Chinese sentence beside a longer English one (either
/// order), and English sentences with an incidental Chinese single character, word pair,
/// or name (brand, product, person, place), by kind.
fn mixed(split: &str) -> (Vec<String>, Vec<(&'static str, Vec<String>)>) {
    let en = lines(&format!("{split}/en.txt"));
    let zh: Vec<String> = lines(&format!("{split}/zh.txt"))
        .into_iter()
        .filter(|s| (8..=40).contains(&han_count(s)))
        .collect();
    let mut full = Vec::new();
    let mut j = 0;
    for (i, e) in en.iter().enumerate() {
        if full.len() == 150 || zh.is_empty() {
            break;
        }
        let z = &zh[j % zh.len()];
        if e.chars().count() <= z.chars().count() {
            continue;
        }
        j += 1;
        full.push(if i % 2 == 0 {
            format!("{e} {z}")
        } else {
            format!("{z} {e}")
        });
    }
    let take = |f: &str, n: usize| lines(f).into_iter().take(n).collect::<Vec<_>>();
    let incidental = vec![
        (
            "a single character (lingua)",
            with_words(&en, &take("mixed/zh-single-words.txt", 75), 0),
        ),
        (
            "a two-character word (lingua)",
            with_words(&en, &take("mixed/zh-word-pairs.txt", 75), 75),
        ),
        (
            "a brand, product, person or place name",
            with_words(&en, &take("mixed/zh-names.txt", 60), 150),
        ),
    ];
    (full, incidental)
}

fn share(n: usize, of: usize) -> f64 {
    100.0 * n as f64 / of.max(1) as f64
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Accuracy of the routed languages and wrong-route rate of the others on `dir`'s files:
/// one table row per language, and the two means.
fn quality(rule: &LanguageRule, dir: &str, print: bool) -> (f64, f64, f64) {
    let mut total_us = 0.0;
    let mut decisions = 0usize;
    let mut routed_acc = Vec::new();
    let mut wrong = Vec::new();
    let exists = |file: &str| {
        std::path::Path::new(&format!(
            "{}/bench/language-data/{dir}/{file}.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .exists()
    };
    for &(file, route) in ROUTED.iter().chain(BY_SCRIPT) {
        if !exists(file) {
            continue;
        }
        let texts = lines(&format!("{dir}/{file}.txt"));
        let (out, us) = run(rule, &texts);
        let right = out.iter().filter(|r| r.as_deref() == Some(route)).count();
        let passed = out.iter().filter(|r| r.is_none()).count();
        routed_acc.push(share(right, out.len()));
        if print {
            println!(
                "| {route} (routed) | {} | {:.1} % | {:.1} % | {:.1} % | {us:.1} |",
                out.len(),
                share(right, out.len()),
                share(passed, out.len()),
                share(out.len() - right - passed, out.len())
            );
        }
        total_us += us * out.len() as f64;
        decisions += out.len();
    }
    for &(file, name) in NOT_ROUTED {
        if !exists(file) {
            continue;
        }
        let texts = lines(&format!("{dir}/{file}.txt"));
        let (out, us) = run(rule, &texts);
        let passed = out.iter().filter(|r| r.is_none()).count();
        let mut to: BTreeMap<&str, usize> = BTreeMap::new();
        for r in out.iter().flatten() {
            *to.entry(r.as_str()).or_default() += 1;
        }
        let worst = to
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(r, n)| format!(" (most to {r}: {n})"))
            .unwrap_or_default();
        wrong.push(share(out.len() - passed, out.len()));
        if print {
            println!(
                "| {name} | {} | – | {:.1} % | {:.1} %{worst} | {us:.1} |",
                out.len(),
                share(passed, out.len()),
                share(out.len() - passed, out.len())
            );
        }
        total_us += us * out.len() as f64;
        decisions += out.len();
    }
    (
        mean(&routed_acc),
        mean(&wrong),
        total_us / decisions.max(1) as f64,
    )
}

const HEADER: &str = "| language | texts | right route | passed | wrong route | µs/decision |\n|---|---:|---:|---:|---:|---:|";

fn main() {
    let split = if std::env::args().any(|a| a == "dev") {
        "dev"
    } else {
        "test"
    };
    let rule = rule();
    println!("split: {split}\n\n### Sentences\n\n{HEADER}");
    let (acc, wrong, us) = quality(&rule, split, true);
    println!(
        "\nrouted languages, mean accuracy: {acc:.1} %; languages without a route, mean \
         wrong-route rate: {wrong:.1} %; {us:.2} µs per decision"
    );
    println!("\n### Short texts (word pairs)\n\n{HEADER}");
    let short = if split == "dev" { "short-dev" } else { "short" };
    let (acc_s, wrong_s, us_s) = quality(&rule, short, true);
    println!(
        "\nrouted languages, mean accuracy: {acc_s:.1} %; languages without a route, mean \
         wrong-route rate: {wrong_s:.1} %; {us_s:.2} µs per decision"
    );
    let all = rule.clone().all_languages();
    let (a1, w1, u1) = quality(&all, split, false);
    let (a2, w2, u2) = quality(&all, short, false);
    println!(
        "\nthe same rule with all_languages(): sentences {a1:.1} % / {w1:.1} % / {u1:.2} µs; \
         short texts {a2:.1} % / {w2:.1} % / {u2:.2} µs"
    );

    let (full, incidental) = mixed(split);
    let chinese =
        |v: &[Option<String>]| v.iter().filter(|r| r.as_deref() == Some("chinese")).count();
    println!(
        "\n### Mixed Chinese–English tickets\n\n| ticket | tickets | to the Chinese route | µs/decision |\n|---|---:|---:|---:|"
    );
    let (f, us_f) = run(&rule, &full);
    println!(
        "| a Chinese sentence beside a longer English one | {} | {} ({:.1} %) | {us_f:.1} |",
        full.len(),
        chinese(&f),
        share(chinese(&f), full.len())
    );
    for (kind, texts) in &incidental {
        let (i, us_i) = run(&rule, texts);
        println!(
            "| an English sentence with {kind} | {} | {} ({:.1} %) | {us_i:.1} |",
            texts.len(),
            chinese(&i),
            share(chinese(&i), texts.len())
        );
    }

    // 500 characters of English prose, as benches/routing.rs measures.
    let en = lines(&format!("{split}/en.txt"));
    let mut long = String::new();
    for s in &en {
        if long.chars().count() >= 500 {
            break;
        }
        long.push_str(s);
        long.push(' ');
    }
    let long: String = long.chars().take(500).collect();
    let n = 2_000;
    let mut best = f64::MAX;
    for _ in 0..15 {
        let start = Instant::now();
        for _ in 0..n {
            black_box(rule.choose(black_box(&long)));
        }
        best = best.min(start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    println!("\n500 characters of English: {best:.2} µs per decision (best of 15 rounds)");
}
