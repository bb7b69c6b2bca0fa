//! Sensitive-data detection ([`detect_sensitive`], the detectors of `SensitiveDataRule`):
//! cost per KiB, recall per kind, false-positive rate.
//!
//! `cargo bench --bench sensitive` prints, in release:
//! - **recall** per kind on a seeded synthetic set made here (every card issuer range,
//!   Mastercard's 2-series included; IBANs of 20 countries with and without spaces; e-mail
//!   addresses; phone numbers in international and national formats; SSNs; API keys), and
//!   on the labelled synthetic set of microsoft/presidio-research (`bench/pii-data/`);
//! - the share of messages **flagged** among real customer queries without personal data
//!   (Banking77 and NLU++, `bench/pii-data/clean.jsonl`), and among support tickets built
//!   from those queries with order numbers (a tenth of them Luhn-valid), tracking numbers,
//!   dates, prices, times and reference numbers added;
//! - the **cost**: µs per KiB on ticket-sized messages and on one 1 MiB message.
//!
//! Data: `bench/pii-data/README.md`.

use std::hint::black_box;
use std::time::Instant;

use polyrelay::routing::{SensitiveKind, detect_sensitive};

/// A small seeded generator (xorshift64*): the same sets every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn upper(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'A' + self.below(26) as u8))
            .collect()
    }
    fn alnum(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        (0..n).map(|_| char::from(A[self.below(A.len())])).collect()
    }
}

fn luhn_digit(body: &str) -> char {
    for d in 0..10u8 {
        let n = format!("{body}{d}");
        let sum: u32 = n
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, c)| {
                let x = u32::from(c - b'0');
                if i % 2 == 1 {
                    if x * 2 > 9 { x * 2 - 9 } else { x * 2 }
                } else {
                    x
                }
            })
            .sum();
        if sum.is_multiple_of(10) {
            return char::from(b'0' + d);
        }
    }
    '0'
}

fn group(digits: &str, lens: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut at = 0;
    for &l in lens {
        if at >= digits.len() {
            break;
        }
        out.push(&digits[at..(at + l).min(digits.len())]);
        at += l;
    }
    out.join(sep)
}

/// A card number of a random issuer range, in one of its print forms.
fn card(r: &mut Rng) -> String {
    let (prefix, len): (String, usize) = match r.below(14) {
        0 => ("4".into(), *r.pick(&[13, 16, 16, 16, 19])),
        1 => (r.range(51, 55).to_string(), 16),
        2 => (r.range(2221, 2720).to_string(), 16),
        3 => (r.pick(&["34", "37"]).to_string(), 15),
        4 => ("6011".into(), 16),
        5 => (r.range(644, 649).to_string(), 16),
        6 => ("65".into(), 16),
        7 => (r.range(622126, 622925).to_string(), 16),
        8 => (r.range(3528, 3589).to_string(), 16),
        9 => (r.range(300, 305).to_string(), 14),
        10 => (r.pick(&["36", "38", "39"]).to_string(), 14),
        11 => ("62".into(), *r.pick(&[16, 19])),
        12 => (
            r.pick(&[
                "5018", "5020", "5038", "5893", "6304", "6759", "6761", "6762", "6763",
            ])
            .to_string(),
            *r.pick(&[12, 16, 19]),
        ),
        _ => (r.range(2200, 2204).to_string(), 16),
    };
    let body = format!("{prefix}{}", r.digits(len - prefix.len() - 1));
    let number = format!("{body}{}", luhn_digit(&body));
    let lens: &[usize] = match len {
        15 => &[4, 6, 5],
        14 => &[4, 6, 4],
        _ => &[4, 4, 4, 4, 4],
    };
    match r.below(3) {
        0 => number,
        1 => group(&number, lens, " "),
        _ => group(&number, lens, "-"),
    }
}

/// An IBAN of one of 20 countries, with or without spaces.
fn iban(r: &mut Rng) -> String {
    // country, BBAN shape: d digit, u upper, a alphanumeric
    let (cc, shape) = *r.pick(&[
        ("DE", "dddddddddddddddddd"),
        ("GB", "uuuudddddddddddddd"),
        ("NL", "uuuudddddddddd"),
        ("FR", "ddddddddddaaaaaaaaaaadd"),
        ("ES", "dddddddddddddddddddd"),
        ("IT", "uddddddddddaaaaaaaaaaaa"),
        ("BE", "dddddddddddd"),
        ("CH", "dddddaaaaaaaaaaaa"),
        ("AT", "dddddddddddddddd"),
        ("PL", "dddddddddddddddddddddddd"),
        ("SE", "dddddddddddddddddddd"),
        ("NO", "ddddddddddd"),
        ("DK", "dddddddddddddd"),
        ("FI", "dddddddddddddd"),
        ("IE", "uuuudddddddddddddd"),
        ("PT", "ddddddddddddddddddddd"),
        ("LU", "dddaaaaaaaaaaaaa"),
        ("CZ", "dddddddddddddddddddd"),
        ("HU", "dddddddddddddddddddddddd"),
        ("RO", "uuuuaaaaaaaaaaaaaaaa"),
    ]);
    let bban: String = shape
        .bytes()
        .map(|c| match c {
            b'd' => char::from(b'0' + r.below(10) as u8),
            b'u' => char::from(b'A' + r.below(26) as u8),
            _ => {
                let x = r.below(36) as u8;
                char::from(if x < 10 { b'0' + x } else { b'A' + x - 10 })
            }
        })
        .collect();
    let rearranged = format!("{bban}{cc}00");
    let mut rem = 0u32;
    for c in rearranged.bytes() {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    let iban = format!("{cc}{:02}{bban}", 98 - rem);
    if r.below(2) == 0 {
        iban
    } else {
        iban.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap_or(""))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn email(r: &mut Rng) -> String {
    let first = r.pick(&[
        "jane",
        "john",
        "maria",
        "li.wei",
        "o.brien",
        "anna-lena",
        "j",
        "kowalski",
    ]);
    let last = r.pick(&["doe", "smith", "garcia", "mueller", "nguyen", "", "1987"]);
    let sep = if last.is_empty() {
        ""
    } else {
        r.pick(&["", ".", "_", "+support."])
    };
    let domain = r.pick(&[
        "gmail.com",
        "example.co.uk",
        "mail.example.de",
        "outlook.fr",
        "company-name.io",
        "uni.edu",
        "web.nl",
    ]);
    format!("{first}{sep}{last}@{domain}")
}

fn phone(r: &mut Rng) -> String {
    let area = r.range(201, 989);
    let area = if area % 100 == 11 { area + 1 } else { area };
    let ex = r.range(200, 999);
    let line = r.digits(4);
    match r.below(14) {
        0 => format!("({area}) {ex}-{line}"),
        1 => format!("{area}-{ex}-{line}"),
        2 => format!("{area}.{ex}.{line}"),
        3 => format!("+1 {area} {ex} {line}"),
        4 => format!("+1 ({area}) {ex}-{line}"),
        5 => format!("1-{area}-{ex}-{line}"),
        6 => format!("+44 20 {} {}", r.range(7000, 8999), r.digits(4)),
        7 => format!("07{} {}", r.digits(3), r.digits(6)),
        8 => format!("0{} {}", r.range(30, 89), r.digits(8)),
        9 => format!("+49 {} {}", r.range(151, 179), r.digits(8)),
        10 => format!(
            "0{} {} {} {} {}",
            r.range(1, 9),
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
        11 => format!(
            "+33 {} {} {} {} {}",
            r.range(1, 9),
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
        12 => format!("06-{}", r.digits(8)),
        _ => format!("+31 20 {} {}", r.digits(3), r.digits(4)),
    }
}

fn ssn(r: &mut Rng) -> String {
    let mut area = r.range(1, 899);
    if area == 666 {
        area = 667;
    }
    format!("{area:03}-{:02}-{:04}", r.range(1, 99), r.range(1, 9999))
}

fn api_key(r: &mut Rng) -> String {
    match r.below(9) {
        0 => format!("sk-proj-{}", r.alnum(40)),
        1 => format!("sk-ant-api03-{}", r.alnum(48)),
        2 => format!("sk_live_{}", r.alnum(24)),
        3 => format!("AKIA{}", r.upper(16)),
        4 => format!("ghp_{}", r.alnum(36)),
        5 => format!("xoxb-{}-{}", r.digits(12), r.alnum(24)),
        6 => format!("AIza{}", r.alnum(35)),
        7 => format!("eyJhbGciOiJIUzI1NiJ9.eyJ{}.{}", r.alnum(30), r.alnum(43)),
        _ => r.alnum(32),
    }
}

/// Sentences around a value of each kind: with and without the words that usually come
/// with it.
const TEMPLATES: &[(&str, &[&str])] = &[
    (
        "card",
        &[
            "My card number is {}",
            "card: {}",
            "Please charge {} for the order",
            "{} exp 08/27 cvv 123",
            "I paid with {} yesterday and was charged twice.",
            "The number on my credit card is {}.",
            "{}",
            "Use {} for the renewal, thanks",
            "Zahlung mit Karte {} fehlgeschlagen",
            "Mi tarjeta es {}",
        ],
    ),
    (
        "iban",
        &[
            "My IBAN is {}",
            "Please refund to {}.",
            "{}",
            "Bank account: {} (Jane Doe)",
            "Überweisung an {} bitte",
        ],
    ),
    (
        "email",
        &[
            "You can email me at {}",
            "{}",
            "my address is {}, please update it",
            "Send the invoice to <{}>",
            "Contact: {}.",
        ],
    ),
    (
        "phone",
        &[
            "Please call me at {}",
            "My number is {}",
            "{}",
            "Reach me on {} after 6pm",
            "Tel: {}",
            "You can text {} anytime.",
            "Is {} the right number to call?",
        ],
    ),
    (
        "ssn",
        &[
            "My SSN is {}",
            "social security number {}",
            "{}",
            "Here it is: {}",
        ],
    ),
    (
        "api_key",
        &[
            "My API key is {}",
            "Authorization: Bearer {}",
            "{}",
            "the script fails with key={} set",
        ],
    ),
];

fn value(kind: &str, r: &mut Rng) -> String {
    match kind {
        "card" => card(r),
        "iban" => iban(r),
        "email" => email(r),
        "phone" => phone(r),
        "ssn" => ssn(r),
        _ => api_key(r),
    }
}

fn kind_of(name: &str) -> SensitiveKind {
    SensitiveKind::from_name(name).unwrap_or(SensitiveKind::ApiKey)
}

/// Recall: `(found, exact, total)` — found: a finding of the kind overlaps the value;
/// exact: its span is the value's.
fn recall(samples: &[(String, &str, std::ops::Range<usize>)]) -> (usize, usize, usize) {
    let (mut found, mut exact) = (0, 0);
    for (text, kind, span) in samples {
        let want = kind_of(kind);
        let hits = detect_sensitive(text);
        let over = hits
            .iter()
            .filter(|f| f.kind == want && f.span.start < span.end && span.start < f.span.end);
        let mut any = false;
        for f in over {
            any = true;
            if f.span == *span {
                exact += 1;
                break;
            }
        }
        found += usize::from(any);
        if !any && std::env::var_os("SENSITIVE_BENCH_MISSES").is_some() {
            println!("  missed {kind}: {:?}", &text[span.clone()]);
        }
    }
    (found, exact, samples.len())
}

fn synthetic(r: &mut Rng, per_kind: usize) -> Vec<(String, &'static str, std::ops::Range<usize>)> {
    let mut out = Vec::new();
    for (kind, templates) in TEMPLATES {
        for _ in 0..per_kind {
            let v = value(kind, r);
            let t = r.pick(templates);
            let at = t.find("{}").unwrap_or(0);
            let text = t.replacen("{}", &v, 1);
            out.push((text, *kind, at..at + v.len()));
        }
    }
    out
}

/// Look-alikes of a support ticket: order, tracking, invoice and reference numbers, dates,
/// prices and times.
fn ticket_numbers(r: &mut Rng) -> String {
    let luhn_order = {
        let body = format!("4{}", r.digits(14));
        format!("{body}{}", luhn_digit(&body))
    };
    let pieces = [
        format!("Order #{}", r.digits(8)),
        format!("order number {}", r.digits(16)),
        format!("My order {luhn_order} has not arrived"),
        format!("order {}-{}-{}", r.digits(3), r.digits(7), r.digits(7)),
        format!("Tracking: 1Z{}{}", r.upper(6), r.digits(10)),
        format!("tracking number 9400{}", r.digits(18)),
        format!("FedEx tracking {}", r.digits(12)),
        format!("DHL waybill {}", r.digits(10)),
        format!("Invoice INV-{}-{}", r.range(2019, 2026), r.digits(5)),
        format!(
            "placed on {}/{}/{}",
            r.range(1, 12),
            r.range(1, 28),
            r.range(2019, 2026)
        ),
        format!(
            "delivered {}-{:02}-{:02}",
            r.range(2019, 2026),
            r.range(1, 12),
            r.range(1, 28)
        ),
        format!(
            "on {:02}.{:02}.{}",
            r.range(1, 28),
            r.range(1, 12),
            r.range(2019, 2026)
        ),
        format!("I paid ${}.{:02}", r.range(1, 2999), r.range(0, 99)),
        format!("it was €{},{:02}", r.range(1, 999), r.range(0, 99)),
        format!("total 1,{:03}.{:02} USD", r.range(0, 999), r.range(0, 99)),
        format!("at {}:{:02} pm", r.range(1, 12), r.range(0, 59)),
        format!("Ref: {}", r.digits(10)),
        format!("case {}", r.digits(8)),
        format!("ticket #{}", r.digits(6)),
        format!("SKU {}-{}", r.upper(3), r.digits(5)),
        format!(
            "version {}.{}.{}",
            r.range(1, 20),
            r.range(0, 20),
            r.range(0, 999)
        ),
        format!("confirmation code {}", r.upper(6)),
        format!("receipt {} from store {}", r.digits(12), r.digits(4)),
        format!("qty {} x {}g", r.range(1, 9), r.range(100, 999)),
    ];
    let n = 1 + r.below(3);
    (0..n)
        .map(|_| pieces[r.below(pieces.len())].clone())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The messages of `texts` detect_sensitive flags, and their share.
fn flagged<'a>(texts: impl Iterator<Item = &'a str>) -> (usize, usize, Vec<&'a str>) {
    let (mut n, mut f) = (0, 0);
    let mut examples = Vec::new();
    for t in texts {
        n += 1;
        if !detect_sensitive(t).is_empty() {
            f += 1;
            if examples.len() < 12 {
                examples.push(t);
            }
        }
    }
    (f, n, examples)
}

fn read_jsonl(path: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// µs per KiB to scan `texts` (each once), best of `rounds`.
fn cost(texts: &[String], rounds: usize) -> f64 {
    let bytes: usize = texts.iter().map(String::len).sum();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let start = Instant::now();
        for t in texts {
            black_box(detect_sensitive(black_box(t)));
        }
        let us = start.elapsed().as_secs_f64() * 1e6;
        best = best.min(us / (bytes as f64 / 1024.0));
    }
    best
}

/// Recall per kind on a labelled presidio-research file, and the share of its records
/// without these kinds that are flagged.
fn presidio_recall(path: &str, title: &str) {
    println!("\n## Recall, {title}\n");
    println!("| kind | found | exact span | total | recall |");
    println!("|---|---:|---:|---:|---:|");
    let presidio = read_jsonl(path);
    let mut labelled: Vec<(String, &str, std::ops::Range<usize>)> = Vec::new();
    let mut unlabelled: Vec<String> = Vec::new();
    for ex in &presidio {
        let text = ex["text"].as_str().unwrap_or_default().to_owned();
        let spans = ex["spans"].as_array().cloned().unwrap_or_default();
        if spans.is_empty() {
            unlabelled.push(text.clone());
        }
        for s in spans {
            // Offsets are in characters: to bytes.
            let to_byte = |c: u64| {
                text.char_indices()
                    .nth(c as usize)
                    .map_or(text.len(), |(b, _)| b)
            };
            let (start, end) = (
                to_byte(s["start"].as_u64().unwrap_or(0)),
                to_byte(s["end"].as_u64().unwrap_or(0)),
            );
            let kind: &'static str = match s["kind"].as_str().unwrap_or("") {
                "card" => "card",
                "iban" => "iban",
                "email" => "email",
                "phone" => "phone",
                _ => "ssn",
            };
            labelled.push((text.clone(), kind, start..end));
        }
    }
    for kind in ["card", "iban", "email", "phone", "ssn"] {
        let of: Vec<_> = labelled.iter().filter(|s| s.1 == kind).cloned().collect();
        let (found, exact, total) = recall(&of);
        println!(
            "| {kind} | {found} | {exact} | {total} | {:.1} % |",
            100.0 * found as f64 / total.max(1) as f64
        );
    }
    let (f, n, ex) = flagged(unlabelled.iter().map(String::as_str));
    println!(
        "\npresidio records with none of these kinds (names, addresses, dates, zip codes, \
         IPs, driver's licences): {f} of {n} flagged ({:.2} %)",
        100.0 * f as f64 / n as f64
    );
    for e in ex {
        println!("  flagged: {e:?}");
    }
}

/// Near misses for phone numbers: a phone or message word, or a phone's label, near a number
/// that is no phone (an order or case number, a date, a time range, a price, an amount, a
/// ZIP+4 code, a count).
fn phone_near_miss(r: &mut Rng) -> String {
    let pieces = [
        format!("I got a text message about order {}", r.digits(8)),
        format!("you called me about case {}", r.digits(8)),
        format!(
            "they called me on {}/{}/{}",
            r.range(1, 12),
            r.range(1, 28),
            r.range(2019, 2026)
        ),
        format!(
            "I called on {:02} {:02} {}",
            r.range(1, 28),
            r.range(1, 12),
            r.range(2019, 2026)
        ),
        format!(
            "please call us {}.{:02}-{}.{:02}",
            r.range(8, 10),
            r.range(0, 3) * 15,
            r.range(16, 18),
            r.range(0, 3) * 15
        ),
        format!(
            "message me about the ${},{:03},{:03} refund",
            r.range(1, 9),
            r.range(0, 999),
            r.range(0, 999)
        ),
        format!(
            "call me about the $ {} {:03} {:03} transfer",
            r.range(1, 9),
            r.range(0, 999),
            r.range(0, 999)
        ),
        format!(
            "they called about {} {:03} {:03} EUR",
            r.range(1, 99),
            r.range(0, 999),
            r.range(0, 999)
        ),
        format!(
            "the message says I have {} {:03} {:03} points",
            r.range(1, 99),
            r.range(0, 999),
            r.range(0, 999)
        ),
        format!("contact me at my home, ZIP {}-{}", r.digits(5), r.digits(4)),
        format!("texted me the tracking number {}", r.digits(12)),
        format!(
            "I called {} times about invoice {}-{}",
            r.range(2, 9),
            r.range(2019, 2026),
            r.digits(5)
        ),
        format!("the voicemail said reference {}", r.digits(10)),
        format!("reach me about receipt {} from the office", r.digits(12)),
        format!(
            "messages from {}-{:02}-{:02} at {}:{:02}",
            r.range(2019, 2026),
            r.range(1, 12),
            r.range(1, 28),
            r.range(1, 12),
            r.range(0, 59)
        ),
        format!(
            "the office ordered {} {:03} {:03} units",
            r.range(1, 9),
            r.range(0, 999),
            r.range(0, 999)
        ),
    ];
    pieces[r.below(pieces.len())].clone()
}

fn main() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/pii-data");
    let mut r = Rng(0x5eed_2026_0022);

    println!("## Recall, seeded synthetic set (2,000 per kind)\n");
    println!("| kind | found | exact span | total | recall |");
    println!("|---|---:|---:|---:|---:|");
    let synth = synthetic(&mut r, 2000);
    for (kind, _) in TEMPLATES {
        let of: Vec<_> = synth.iter().filter(|s| s.1 == *kind).cloned().collect();
        let (found, exact, total) = recall(&of);
        println!(
            "| {kind} | {found} | {exact} | {total} | {:.1} % |",
            100.0 * found as f64 / total as f64
        );
    }

    presidio_recall(
        &format!("{dir}/presidio.jsonl"),
        "microsoft/presidio-research synth_dataset_v2 (labelled)",
    );
    presidio_recall(
        &format!("{dir}/presidio_large.jsonl"),
        "microsoft/presidio-research tests/data/generated_large (labelled; not looked at \
         while tuning)",
    );

    println!("\n## False positives: messages without personal data\n");
    let clean = read_jsonl(&format!("{dir}/clean.jsonl"));
    let clean: Vec<String> = clean
        .iter()
        .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    let (f, n, ex) = flagged(clean.iter().map(String::as_str));
    println!(
        "real customer queries (Banking77 + NLU++): {f} of {n} flagged ({:.2} %)",
        100.0 * f as f64 / n as f64
    );
    for e in ex {
        println!("  flagged: {e:?}");
    }
    let tickets: Vec<String> = (0..10_000)
        .map(|i| {
            let q = &clean[(i * 7919) % clean.len()];
            format!("{q} {}.", ticket_numbers(&mut r))
        })
        .collect();
    let (f, n, ex) = flagged(tickets.iter().map(String::as_str));
    println!(
        "tickets with order/tracking/invoice numbers, dates, prices, times: {f} of {n} \
         flagged ({:.2} %)",
        100.0 * f as f64 / n as f64
    );
    for e in ex {
        println!("  flagged: {e:?}");
    }

    let mut near = Rng(0x5eed_2026_0522);
    let near_misses: Vec<String> = (0..2_000)
        .map(|i| {
            let q = &clean[(i * 104_729) % clean.len()];
            format!("{q} {}.", phone_near_miss(&mut near))
        })
        .collect();
    let (f, n, ex) = flagged(near_misses.iter().map(String::as_str));
    println!(
        "tickets with phone or message words near numbers that are no phone: {f} of {n} \
         flagged ({:.2} %)",
        100.0 * f as f64 / n as f64
    );
    for e in ex {
        println!("  flagged: {e:?}");
    }

    // For the comparison with Presidio (bench/pii-data/presidio_compare.py): the same
    // synthetic samples and tickets, character offsets.
    if let Ok(out) = std::env::var("SENSITIVE_BENCH_DUMP") {
        let mut synth_out = String::new();
        for (text, kind, span) in &synth {
            let start = text[..span.start].chars().count();
            let end = start + text[span.clone()].chars().count();
            let line = serde_json::json!({"text": text, "kind": kind, "start": start, "end": end});
            synth_out.push_str(&format!("{line}\n"));
        }
        let tickets_out: String = tickets
            .iter()
            .map(|t| format!("{}\n", serde_json::json!({ "text": t })))
            .collect();
        std::fs::write(format!("{out}/synthetic.jsonl"), synth_out).expect("dump");
        std::fs::write(format!("{out}/tickets.jsonl"), tickets_out).expect("dump");
        println!("\n(dumped synthetic.jsonl and tickets.jsonl to {out})");
    }

    println!("\n## Cost (release, best of 15)\n");
    let small: Vec<String> = tickets.iter().take(5000).cloned().collect();
    let avg = small.iter().map(String::len).sum::<usize>() / small.len();
    println!(
        "ticket-sized messages (avg {avg} bytes): {:.3} µs per KiB",
        cost(&small, 15)
    );
    let mut big = String::with_capacity(1 << 20);
    let mut i = 0;
    while big.len() < (1 << 20) {
        big.push_str(&tickets[i % tickets.len()]);
        big.push('\n');
        if i % 50 == 0 {
            big.push_str(&synth[i % synth.len()].0);
            big.push('\n');
        }
        i += 1;
    }
    let big = vec![big];
    println!("one 1 MiB message: {:.3} µs per KiB", cost(&big, 15));
    let hostile: Vec<String> = vec![
        "1 ".repeat(1 << 19),
        "a@".repeat(1 << 19),
        "aB3".repeat(1 << 18),
        "4111 ".repeat(1 << 18),
    ];
    println!(
        "1 MiB hostile inputs (\"1 1 1…\", \"a@a@…\", \"aB3aB3…\", \"4111 4111…\"): {:.3} µs per KiB",
        cost(&hostile, 3)
    );
}
