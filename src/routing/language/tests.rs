//! Unit tests of the language rule.

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
