//! The detectors on hand-picked cases: each kind found in its usual forms, and the look-alikes
//! of support tickets (order and tracking numbers, dates, prices, times) left alone.

use super::*;

/// The kinds found in `text`, in order.
fn kinds(text: &str) -> Vec<SensitiveKind> {
    detect_sensitive(text).into_iter().map(|f| f.kind).collect()
}

/// The one finding of `text`: its kind and its text.
#[track_caller]
fn one(text: &str) -> (SensitiveKind, &str) {
    let found = detect_sensitive(text);
    assert_eq!(found.len(), 1, "{text}: {found:?}");
    (found[0].kind.clone(), &text[found[0].span.clone()])
}

/// Each value, put in each template (`{}`), is found as one finding of `kind`.
#[track_caller]
fn found_in(kind: SensitiveKind, values: &[&str], templates: &[&str]) {
    for v in values {
        for t in templates {
            let text = t.replace("{}", v);
            assert_eq!(one(&text), (kind.clone(), *v), "{text}");
        }
    }
}

/// Nothing is found in any of `texts`.
#[track_caller]
fn nothing_in(texts: &[&str]) {
    for text in texts {
        assert!(
            kinds(text).is_empty(),
            "{text}: {:?}",
            detect_sensitive(text)
        );
    }
}

/// `body` (digits) with the Luhn check digit appended.
fn luhn_complete(body: &str) -> String {
    (0..10)
        .map(|d| format!("{body}{d}"))
        .find(|n| numbers::luhn(&n.bytes().map(|b| b - b'0').collect::<Vec<_>>()))
        .unwrap()
}

/// `digits` grouped as `lens`, joined by `sep`.
fn grouped(digits: &str, lens: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for &l in lens {
        out.push(&digits[at..at + l]);
        at += l;
    }
    out.join(sep)
}

#[test]
fn cards_of_every_issuer_range_in_every_print_form() {
    // (issuer prefix, length, grouping)
    let cases: &[(&str, usize, &[usize])] = &[
        ("4", 16, &[4, 4, 4, 4]),
        ("4", 13, &[4, 4, 4, 1]),
        ("4", 19, &[4, 4, 4, 4, 3]),
        ("51", 16, &[4, 4, 4, 4]),
        ("55", 16, &[4, 4, 4, 4]),
        ("2221", 16, &[4, 4, 4, 4]),
        ("2720", 16, &[4, 4, 4, 4]),
        ("2500", 16, &[4, 4, 4, 4]),
        ("34", 15, &[4, 6, 5]),
        ("37", 15, &[4, 6, 5]),
        ("6011", 16, &[4, 4, 4, 4]),
        ("65", 16, &[4, 4, 4, 4]),
        ("644", 16, &[4, 4, 4, 4]),
        ("622126", 16, &[4, 4, 4, 4]),
        ("3528", 16, &[4, 4, 4, 4]),
        ("3589", 16, &[4, 4, 4, 4]),
        ("36", 14, &[4, 6, 4]),
        ("300", 14, &[4, 6, 4]),
        ("62", 16, &[4, 4, 4, 4]),
        ("62", 19, &[4, 4, 4, 4, 3]),
        ("6759", 16, &[4, 4, 4, 4]),
        ("5018", 12, &[4, 4, 4]),
        ("2200", 16, &[4, 4, 4, 4]),
    ];
    for (prefix, len, lens) in cases {
        let body = format!("{prefix}{}", "3".repeat(len - prefix.len() - 1));
        let number = luhn_complete(&body);
        for form in [
            number.clone(),
            grouped(&number, lens, " "),
            grouped(&number, lens, "-"),
        ] {
            for text in [
                format!("My card is {form}, please update it"),
                form.clone(),
                format!("Charged to {form} exp 04/27"),
            ] {
                assert_eq!(one(&text), (SensitiveKind::Card, form.as_str()), "{text}");
            }
        }
    }
}

#[test]
fn card_look_alikes_are_not_cards() {
    let visa = "4111111111111111";
    for text in [
        // Luhn-valid, Visa-shaped, but an order or tracking number by its words.
        format!("Order {visa} has not arrived"),
        format!("order #{visa}"),
        format!("my order number is {visa}"),
        format!("Tracking: {visa}"),
        format!("invoice {visa} is wrong"),
        format!("{visa} is my order number"),
        // Luhn fails.
        "card 4111 1111 1111 1112".to_owned(),
        // No issuer has this range.
        "card 9111 1111 1111 1111".to_owned(),
        // Wrong grouping.
        "4111 11 1111 111 111".to_owned(),
        "411 111 111 111 1111".to_owned(),
        // Glued to an identifier.
        format!("ORD-{visa}"),
        format!("x{visa}"),
        format!("{visa}abc"),
        // Amazon-style order number.
        "113-4567890-1234567".to_owned(),
    ] {
        assert!(!kinds(&text).contains(&SensitiveKind::Card), "{text}");
    }
}

#[test]
fn ibans_with_and_without_spaces() {
    found_in(
        SensitiveKind::Iban,
        &[
            "DE89370400440532013000",
            "DE89 3704 0044 0532 0130 00",
            "GB82WEST12345698765432",
            "GB82 WEST 1234 5698 7654 32",
            "NL91ABNA0417164300",
            "NL91 ABNA 0417 1643 00",
            "FR1420041010050500013M02606",
            "BE68539007547034",
            "CH9300762011623852957",
            "NO9386011117947",
        ],
        &["Please refund to {}."],
    );
    // A wrong checksum, a wrong length, an unknown country.
    nothing_in(&[
        "DE89370400440532013001",
        "DE8937040044053201300",
        "DE893704004405320130000",
        "ZZ89370400440532013000",
    ]);
}

#[test]
fn email_addresses() {
    found_in(
        SensitiveKind::Email,
        &[
            "jane@example.com",
            "jane.doe+support@mail.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@sub-domain.example.org",
        ],
        &["Contact me at {}."],
    );
    nothing_in(&[
        "@AmazonHelp where is my parcel?",
        "meet @ 5pm",
        "foo@bar",
        "user@localhost",
        "a@b.c",
        "@@@@@",
    ]);
}

#[test]
fn phone_numbers_international_and_national() {
    found_in(
        SensitiveKind::Phone,
        &[
            "+44 20 7946 0958",
            "+1 (555) 234-5678",
            "+4915112345678",
            "+33 1 23 45 67 89",
            "+31 6 12345678",
            "0044 20 7946 0958",
            "(555) 234-5678",
            "555-234-5678",
            "555.234.5678",
            "1-800-555-0199",
            "020 7946 0958",
            "07700 900123",
            "030 12345678",
            "030/1234567",
            "0151-12345678",
            "01 23 45 67 89",
            "01.23.45.67.89",
            "06-12345678",
            "020 123 4567",
        ],
        &[
            "You can reach me on {} after 5.",
            "Hi, {} is the number to use",
        ],
    );
    // Bare digits only after a phone word.
    assert_eq!(
        one("my mobile is 0612345678"),
        (SensitiveKind::Phone, "0612345678")
    );
    assert_eq!(
        one("call me: 5552345678"),
        (SensitiveKind::Phone, "5552345678")
    );
    assert!(kinds("ticket 5552345678").is_empty());
}

#[test]
fn phone_look_alikes_are_not_phones() {
    nothing_in(&[
        "Delivered on 2023-10-15 at 10:30",
        "ordered 15.10.2023, paid 12/10/2023",
        "It cost $1,299.00 (about 1 299,00 EUR)",
        "Order 555-234-5678 is late",
        "tracking number 1Z999AA10123456784",
        "tracking 9400 1118 9922 3456 7890 12",
        "order #112-3456789-1234567",
        "Version 10.0.19045.3570",
        "between 9 and 5, Monday to Friday",
        "room 1203, floor 12",
        "invoice 0123456789",
        "ISBN 978-3-16-148410-0",
        "5552345678",
        "123-456-7890",
    ]);
}

#[test]
fn bare_national_numbers_with_a_phone_word_or_label_are_phones() {
    // The shapes of presidio-research's Faker locales: 3-3-3, 2-3-3, 3-2-3, 3-4, 2-2-2-2,
    // 2-6, (2) 3-3, 2-3-3-4, ten bare digits.
    found_in(
        SensitiveKind::Phone,
        &[
            "699 956 915",
            "78 651 450",
            "416 60 039",
            "781 1704",
            "71-33-52-22",
            "99 668472",
            "(37) 788-063",
            "21 253 109 8211",
            "3660170548",
        ],
        &[
            "They're not answering at {}",
            "I would like to stop receiving messages to {}",
            "I didn't get any message on my registered {}. Could you look into it?",
            "Jane Doe\nAcme Ltd.\nHungary 34796\n{} office\n",
            "Hungary 34796\n{}-Office\\,",
            "PSC 3294, Box 9168\n{}-Fax",
            "Mobile: {}\nDesk: ask for Jane",
            "I called {} twice and left a voicemail",
            "{} (home)",
        ],
    );
}

#[test]
fn numbers_near_phone_words_that_are_no_phones() {
    nothing_in(&[
        // An identifier word is nearer than the phone word.
        "I got a text message about order 48213377",
        "you called me about case 12345678",
        "texted me the tracking number 123456789012",
        "the voicemail said reference 1234567890",
        "reach me about receipt 123456789012 from the office",
        // Dates, times, time ranges.
        "they called me on 3/14/2024",
        "I called on 14 03 2024",
        "I called on 2024 03 14 at 10:45",
        "messages from 2024-03-14 at 10:45",
        "please call us 9.30-17.30",
        // Prices and amounts: a currency sign before, a unit or currency after.
        "message me about the $1,299,000 refund",
        "call me about the $ 1 299 000 transfer",
        "call me about the €12 345 678 transfer",
        "they called about 12 345 678 EUR",
        "the message says I have 1 250 000 points",
        "the office ordered 1 250 000 units",
        // ZIP+4.
        "contact me at my home, ZIP 90210-1234",
        "call me, I live in 90210-1234",
        // A label after a number that follows an identifier word.
        "order 781 1704 office",
        "invoice 3660170548-Fax",
    ]);
    // Without the phone word, bare groups stay clean as before.
    nothing_in(&[
        "They're not answering at the store",
        "699 956 915",
        "Please reply to 78 651 450",
        "416 60 039 is the total",
    ]);
}

#[test]
fn ssns_by_their_rules() {
    assert_eq!(one("SSN 123-45-6789"), (SensitiveKind::Ssn, "123-45-6789"));
    assert_eq!(
        one("it is 536 22 1234"),
        (SensitiveKind::Ssn, "536 22 1234")
    );
    assert_eq!(one("my ssn: 536221234"), (SensitiveKind::Ssn, "536221234"));
    nothing_in(&[
        "000-12-3456",
        "666-12-3456",
        "912-12-3456",
        "123-00-4567",
        "123-45-0000",
        "536221234",
        "order 123-45-6789",
    ]);
}

#[test]
fn national_insurance_numbers_and_bsns() {
    found_in(
        SensitiveKind::NationalId,
        &["AB123456C", "AB 12 34 56 C", "JG103759A"],
        &["NI number {}, thanks"],
    );
    // Invalid prefixes and suffixes.
    nothing_in(&[
        "DA123456C",
        "AO123456C",
        "GB123456A",
        "AB123456E",
        "ab123456c",
    ]);
    // 111222333 passes the 11-test; only after a BSN word.
    assert_eq!(
        one("mijn BSN is 111222333"),
        (SensitiveKind::NationalId, "111222333")
    );
    assert!(kinds("bsn 111222334").is_empty());
    assert!(kinds("ref 111222333").is_empty());
}

#[test]
fn api_keys_tokens_and_private_keys() {
    found_in(
        SensitiveKind::ApiKey,
        &[
            "sk-proj-4fT9xQ2LmZ8vB1nR7kW3pY6s",
            "sk-ant-api03-Zx8Kq2Lm9Vb4Nc7Rt1Ys5Wd3",
            "sk_live_51HcKq2Lm9Vb4Nc7Rt1",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",
            "github_pat_11ABCDEFG0abcdefghij12",
            "xoxb-1234567890-abcdefABCDEF",
            "AIzaSyD-1a2b3c4d5e6f7g8h9i0jKLMNOPQRSTU",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "xY7/kQ2+LmZ8vB1nR7kW3pY6sT0aE5dF9gH4jK1l",
            "Zx8Kq2Lm9Vb4Nc7Rt1Ys5Wd3",
        ],
        &["the key is {} ok"],
    );
    let pem =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq\nabc\n-----END RSA PRIVATE KEY-----";
    let text = format!("here:\n{pem}\nthanks");
    assert_eq!(one(&text), (SensitiveKind::ApiKey, pem));
    nothing_in(&[
        "https://example.com/a8F3kL0pQ9zX2mN7vB4cR6tY1uI5oP0w",
        "see getUserAccountBalance2024 in the docs",
        "sk-short",
        "-----BEGIN CERTIFICATE-----",
        "f47ac10b-58cc-4372-a567-0e02b2c3d479",
        "d41d8cd98f00b204e9800998ecf8427e",
    ]);
}

#[test]
fn several_kinds_in_one_text_in_order() {
    let text = "Card 5555 5555 5555 4444, IBAN NL91ABNA0417164300, mail jane@example.com, \
        phone +44 20 7946 0958, order 4111111111111111, key AKIAIOSFODNN7EXAMPLE";
    assert_eq!(
        kinds(text),
        [
            SensitiveKind::Card,
            SensitiveKind::Iban,
            SensitiveKind::Email,
            SensitiveKind::Phone,
            SensitiveKind::ApiKey
        ]
    );
}

#[test]
fn the_rule_masks_with_its_kinds_and_patterns() {
    let rule = SensitiveDataRule::masking()
        .kinds([SensitiveKind::Card, SensitiveKind::Email])
        .pattern("employee_id", "EMP-[0-9]{6}")
        .unwrap();
    let text = "EMP-123456 paid with 4111 1111 1111 1111, call +44 20 7946 0958, jane@example.com";
    assert_eq!(
        rule.mask_text(text),
        "[EMPLOYEE_ID] paid with [CARD], call +44 20 7946 0958, [EMAIL]"
    );
    assert_eq!(rule.mask_text("nothing here"), "nothing here");
    assert!(matches!(
        rule.mask_text("nothing here"),
        std::borrow::Cow::Borrowed(_)
    ));
}

#[test]
fn bad_patterns_are_config_errors_naming_the_pattern() {
    for (name, re, says) in [
        ("employee_id", "EMP-[0-9", "not a valid regex"),
        ("bad name", "x", "may hold only"),
        ("card", "x", "built-in"),
        ("", "x", "1 to 64"),
        ("big", "\\w{1000}{1000}", "not a valid regex"),
    ] {
        let e = SensitiveDataRule::new("onprem")
            .pattern(name, re)
            .unwrap_err();
        assert_eq!(e.kind(), crate::types::ErrorKind::Config);
        assert!(e.to_string().contains(says), "{e}");
        assert!(e.to_string().contains(&format!("{name:?}")), "{e}");
    }
    let e = SensitiveDataRule::new("onprem")
        .pattern("x", "a")
        .unwrap()
        .pattern("x", "b")
        .unwrap_err();
    assert!(e.to_string().contains("twice"), "{e}");
}

#[test]
fn debug_shows_no_values() {
    let rule = SensitiveDataRule::new("onprem")
        .pattern("employee_id", "EMP-[0-9]{6}")
        .unwrap();
    let found = rule.scan("card 4111 1111 1111 1111 EMP-123456");
    let shown = format!("{rule:?} {found:?}");
    assert!(!shown.contains("4111"), "{shown}");
    assert!(!shown.contains("123456"), "{shown}");
    assert!(
        shown.contains("Card") && shown.contains("employee_id"),
        "{shown}"
    );
}

#[test]
fn huge_and_hostile_texts_take_linear_time() {
    // Each is 1 MiB or more; a quadratic scan would take minutes.
    let mib = 1 << 20;
    let texts = [
        "1 ".repeat(mib / 2),
        "1-".repeat(mib / 2),
        "a@".repeat(mib / 2),
        "@a.".repeat(mib / 3),
        "a/".repeat(mib / 2),
        "aB3".repeat(mib / 3),
        "-----BEGIN ".repeat(mib / 11),
        "-----BEGIN RSA PRIVATE KEY-----".repeat(mib / 31),
        "eyJ".repeat(mib / 3),
        "DE89 ".repeat(mib / 5),
        "+(".repeat(mib / 2),
        "card 4111 1111 1111 1111 ".repeat(mib / 25),
    ];
    let start = std::time::Instant::now();
    for t in &texts {
        std::hint::black_box(detect_sensitive(t));
    }
    // Release takes a few ms each; debug builds are ~30x slower. Wide margin.
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        detect_sensitive(&texts[11]).len(),
        mib / 25,
        "every card in a long text is found"
    );
}

#[test]
fn payment_words_and_hash_signs_read_in_context() {
    let visa = "4111111111111111";
    // A payment verb before bare digits outweighs an order word after them.
    assert_eq!(
        one(&format!("Please charge {visa} for the order")),
        (SensitiveKind::Card, visa)
    );
    // `card #` is a card; `order #` and a bare `#` are identifiers.
    assert_eq!(
        one(&format!("limit on my card # {visa} please")),
        (SensitiveKind::Card, visa)
    );
    nothing_in(&[&format!("order # {visa}"), &format!("#{visa}")]);
    // A phone number's extension belongs to it; other letters glued to digits do not.
    assert_eq!(
        one("call 345-899-3560x4587 today"),
        (SensitiveKind::Phone, "345-899-3560x4587")
    );
    nothing_in(&["345-899-3560xyz", "SN 345-899-3560x4587"]);
}
