//! Identifiers written with letters: IBANs, UK National Insurance numbers, e-mail addresses.

use super::context::{self, Cue};

/// IBAN lengths by country (the SWIFT IBAN registry).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BI", 27),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DJ", 27),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FK", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"LY", 25),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MN", 20),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NI", 28),
    (b"NL", 18),
    (b"NO", 15),
    (b"OM", 23),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"RU", 33),
    (b"SA", 24),
    (b"SC", 31),
    (b"SD", 18),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"SO", 23),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
    (b"YE", 30),
];

/// Longest IBAN of the registry.
const MAX_IBAN: usize = 34;

/// An IBAN starting at `start` (two letters, two digits), with or without spaces between its
/// groups: where it ends.
pub(super) fn iban(b: &[u8], start: usize) -> Option<usize> {
    let country = [
        b[start].to_ascii_uppercase(),
        b.get(start + 1)?.to_ascii_uppercase(),
    ];
    let len = IBAN_LENGTHS.iter().find(|(c, _)| **c == country)?.1;
    let mut chars = [0u8; MAX_IBAN];
    let mut count = 0;
    let mut p = start;
    while count < len && p < b.len() {
        let c = b[p];
        if c.is_ascii_alphanumeric() {
            chars[count] = c.to_ascii_uppercase();
            count += 1;
            p += 1;
        } else if c == b' ' && count >= 4 && p + 1 < b.len() && b[p + 1].is_ascii_alphanumeric() {
            p += 1;
        } else {
            break;
        }
    }
    if count != len || (p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_')) {
        return None;
    }
    let chars = &chars[..len];
    if !chars[2..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    // mod-97 over the rearranged string, letters as 10–35.
    let mut rem: u32 = 0;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        rem = if c.is_ascii_digit() {
            (rem * 10 + u32::from(c - b'0')) % 97
        } else {
            (rem * 100 + u32::from(c - b'A') + 10) % 97
        };
    }
    (rem == 1).then_some(p)
}

/// A UK National Insurance number starting at `start` (`AB123456C`, `AB 12 34 56 C`): where it
/// ends. Prefix letters as HMRC allocates them (first not D, F, I, Q, U, V; second not D, F,
/// I, O, Q, U, V; not BG, GB, KN, NK, NT, TN, ZZ), suffix A–D, upper case.
pub(super) fn nino(b: &[u8], start: usize) -> Option<usize> {
    let (a, c) = (b[start], *b.get(start + 1)?);
    if !a.is_ascii_uppercase()
        || !c.is_ascii_uppercase()
        || b"DFIQUV".contains(&a)
        || b"DFIOQUV".contains(&c)
        || matches!(
            &[a, c],
            b"BG" | b"GB" | b"KN" | b"NK" | b"NT" | b"TN" | b"ZZ"
        )
    {
        return None;
    }
    let mut p = start + 2;
    let spaced = b.get(p) == Some(&b' ');
    for _ in 0..3 {
        if spaced {
            if b.get(p) != Some(&b' ') {
                return None;
            }
            p += 1;
        }
        if !(b.get(p)?.is_ascii_digit() && b.get(p + 1)?.is_ascii_digit()) {
            return None;
        }
        p += 2;
    }
    if b.get(p) == Some(&b' ') {
        p += 1;
    }
    if !matches!(b.get(p), Some(b'A'..=b'D')) {
        return None;
    }
    p += 1;
    if p < b.len() && (b[p].is_ascii_alphanumeric() || b[p] == b'_') {
        return None;
    }
    (context::before(b, start) != Cue::Id).then_some(p)
}

/// Bytes of an address's local part.
fn is_local(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

/// Bytes of a domain.
fn is_domain(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'.'
}

/// An e-mail address around the `@` at `at`: its span. The local part is at most 64 bytes
/// and the domain 253, so the work per `@` is bounded.
pub(super) fn email(b: &[u8], at: usize) -> Option<(usize, usize)> {
    let floor = at.saturating_sub(64);
    let mut s = at;
    while s > floor && is_local(b[s - 1]) {
        s -= 1;
    }
    while s < at && !b[s].is_ascii_alphanumeric() {
        s += 1;
    }
    if s == at || b[at - 1] == b'.' {
        return None;
    }
    let ceiling = b.len().min(at + 1 + 253);
    let mut e = at + 1;
    while e < ceiling && is_domain(b[e]) {
        e += 1;
    }
    // A sentence's full stop or a trailing dash is not part of the domain.
    while e > at + 1 && matches!(b[e - 1], b'.' | b'-') {
        e -= 1;
    }
    let domain = &b[at + 1..e];
    let last_dot = domain.iter().rposition(|&c| c == b'.')?;
    let tld = &domain[last_dot + 1..];
    let ok = last_dot > 0
        && tld.len() >= 2
        && tld.iter().all(u8::is_ascii_alphabetic)
        && domain[0].is_ascii_alphanumeric()
        && !domain.windows(2).any(|w| w == b"..");
    ok.then_some((s, e))
}
